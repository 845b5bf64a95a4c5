/**
 * Tiny images as tokens: an 8×8 grid of binary pixels written as text, one character (one token) per
 * pixel, rows separated by '\n', between <img> and </img> (73 tokens in all), and the fixed pictures
 * the image tasks draw: a 3×5 digit font, 3×3 icons and procedural shapes. docs/tasks.md shows them.
 */

export const SIZE = 8;
export const PIXEL_OFF = '░';
export const PIXEL_ON = '█';
export const IMG_START = '<img>';
export const IMG_END = '</img>';
export const ROW_SEP = '\n';
/** tokens of one image: the markers, SIZE² pixels, SIZE − 1 row separators */
export const IMAGE_TOKENS = 2 + SIZE * SIZE + SIZE - 1;

/** a picture: rows of '#' (on) and '.' (off), all the same width */
export type Pattern = readonly string[];
/** [SIZE, SIZE] row-major, 1 = on */
export type Grid = Uint8Array;

export const emptyGrid = (): Grid => new Uint8Array(SIZE * SIZE);

/** draw pattern's on pixels into g with its top-left corner at column x, row y */
export function stamp(g: Grid, p: Pattern, x: number, y: number): void {
  for (let r = 0; r < p.length; r++) {
    for (let c = 0; c < p[r].length; c++) {
      if (p[r][c] !== '#') continue;
      if (x + c < 0 || x + c >= SIZE || y + r < 0 || y + r >= SIZE) throw new Error(`stamp: pixel (${x + c}, ${y + r}) outside the image`);
      g[(y + r) * SIZE + x + c] = 1;
    }
  }
}

/** <img>row\nrow\n…row</img> */
export function renderImage(g: Grid): string {
  const rows: string[] = [];
  for (let r = 0; r < SIZE; r++) {
    let s = '';
    for (let c = 0; c < SIZE; c++) s += g[r * SIZE + c] ? PIXEL_ON : PIXEL_OFF;
    rows.push(s);
  }
  return IMG_START + rows.join(ROW_SEP) + IMG_END;
}

/** the grid of a rendered image, or null when s is not exactly one well-formed image */
export function parseImage(s: string): Grid | null {
  if (!s.startsWith(IMG_START) || !s.endsWith(IMG_END)) return null;
  const rows = s.slice(IMG_START.length, s.length - IMG_END.length).split(ROW_SEP);
  if (rows.length !== SIZE) return null;
  const g = emptyGrid();
  for (let r = 0; r < SIZE; r++) {
    const px = [...rows[r]];
    if (px.length !== SIZE) return null;
    for (let c = 0; c < SIZE; c++) {
      if (px[c] === PIXEL_ON) g[r * SIZE + c] = 1;
      else if (px[c] !== PIXEL_OFF) return null;
    }
  }
  return g;
}

/** the 3×5 digit font: every glyph fills its 3×5 box (touches all four sides) */
export const DIGITS: readonly Pattern[] = [
  ['###', '#.#', '#.#', '#.#', '###'], // 0
  ['.#.', '##.', '.#.', '.#.', '###'], // 1
  ['###', '..#', '###', '#..', '###'], // 2
  ['###', '..#', '###', '..#', '###'], // 3
  ['#.#', '#.#', '###', '..#', '..#'], // 4
  ['###', '#..', '###', '..#', '###'], // 5
  ['###', '#..', '###', '#.#', '###'], // 6
  ['###', '..#', '..#', '..#', '..#'], // 7
  ['###', '#.#', '###', '#.#', '###'], // 8
  ['###', '#.#', '###', '..#', '###'], // 9
];

/** 3×3 icons, by the one-letter code the icons task uses (the first letter of the shape's name) */
export const ICONS: Readonly<Record<string, Pattern>> = {
  s: ['###', '#.#', '###'], // square
  c: ['.#.', '#.#', '.#.'], // circle
  t: ['#..', '##.', '###'], // triangle
  x: ['#.#', '.#.', '#.#'], // cross
  p: ['.#.', '###', '.#.'], // plus
  l: ['...', '###', '...'], // line
};

export const SHAPES = ['square', 'circle', 'triangle', 'cross', 'plus', 'line'] as const;
export type Shape = typeof SHAPES[number];

const CIRCLES: Readonly<Record<number, Pattern>> = {
  4: ['.##.', '#..#', '#..#', '.##.'],
  5: ['.###.', '#...#', '#...#', '#...#', '.###.'],
  6: ['..##..', '.#..#.', '#....#', '#....#', '.#..#.', '..##..'],
};

function pattern(h: number, w: number, on: (r: number, c: number) => boolean): Pattern {
  return Array.from({ length: h }, (_, r) => Array.from({ length: w }, (_, c) => (on(r, c) ? '#' : '.')).join(''));
}

/**
 * The shapes of the shape task, by size (SHAPE_SIZES): square outline (side), circle ring (diameter),
 * filled triangle with its apex up (height h, base 2h − 1), cross ✕ (side), plus (arm a, side
 * 2a + 1), line (length; horizontal or vertical).
 */
export function shapePattern(shape: Shape, size: number, vertical = false): Pattern {
  switch (shape) {
    case 'square': return pattern(size, size, (r, c) => r === 0 || c === 0 || r === size - 1 || c === size - 1);
    case 'circle': return CIRCLES[size];
    case 'triangle': return pattern(size, 2 * size - 1, (r, c) => Math.abs(c - (size - 1)) <= r);
    case 'cross': return pattern(size, size, (r, c) => r === c || r + c === size - 1);
    case 'plus': return pattern(2 * size + 1, 2 * size + 1, (r, c) => r === size || c === size);
    case 'line': return vertical ? pattern(size, 1, () => true) : pattern(1, size, () => true);
  }
}

/** the sizes each shape is drawn at */
export const SHAPE_SIZES: Readonly<Record<Shape, readonly number[]>> = {
  square: [3, 4, 5, 6], circle: [4, 5, 6], triangle: [2, 3, 4], cross: [3, 4, 5, 6], plus: [1, 2, 3], line: [3, 4, 5, 6, 7, 8],
};
