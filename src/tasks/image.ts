/**
 * The image tasks, on 8×8 binary images (glyphs.ts): three that read an image (which digit, which
 * shape, how many dots) and two that draw one (two digits side by side; four icons in the quadrants),
 * the drawings checked exactly against the one canonical rendering. Pictures that are read are placed
 * anywhere they fit, with 0-2 stray pixels kept clear of the figure so the label is never ambiguous.
 */
import { DIGITS, ICONS, IMAGE_TOKENS, SHAPES, SHAPE_SIZES, SIZE, emptyGrid, renderImage, shapePattern, stamp,
         type Grid, type Pattern } from './glyphs.js';
import { exact, int, pick, type Rand, type Task } from './types.js';

/** stamp p at a random place where it fits, then up to maxNoise stray pixels, each clear of the figure's box
 *  by one pixel and of each other */
function placed(rand: Rand, p: Pattern, maxNoise: number): Grid {
  const g = emptyGrid();
  const h = p.length, w = p[0].length;
  const x = int(rand, 0, SIZE - w), y = int(rand, 0, SIZE - h);
  stamp(g, p, x, y);
  const noise: number[] = [];
  const free = (i: number): boolean => {
    const r = Math.floor(i / SIZE), c = i % SIZE;
    if (r >= y - 1 && r <= y + h && c >= x - 1 && c <= x + w) return false;
    return noise.every((j) => Math.abs(Math.floor(j / SIZE) - r) > 1 || Math.abs((j % SIZE) - c) > 1);
  };
  for (let k = int(rand, 0, maxNoise); k > 0; k--) {
    const cands = Array.from({ length: SIZE * SIZE }, (_, i) => i).filter(free);
    if (cands.length === 0) break;
    const i = pick(rand, cands);
    noise.push(i);
    g[i] = 1;
  }
  return g;
}

/** n pixels, no two touching (not even at a corner) */
function dots(rand: Rand, n: number): Grid {
  const g = emptyGrid();
  const at: number[] = [];
  while (at.length < n) {
    const r = int(rand, 0, SIZE - 1), c = int(rand, 0, SIZE - 1);
    if (at.some((j) => Math.abs(Math.floor(j / SIZE) - r) <= 1 && Math.abs((j % SIZE) - c) <= 1)) continue;
    at.push(r * SIZE + c);
    g[r * SIZE + c] = 1;
  }
  return g;
}

/** the canonical drawing of two digits: a's glyph at column 0, b's at column 5, both from row 1 */
export function drawDigits(a: number, b: number): string {
  const g = emptyGrid();
  stamp(g, DIGITS[a], 0, 1);
  stamp(g, DIGITS[b], 5, 1);
  return renderImage(g);
}

/** the canonical drawing of four icon codes (ICONS, or '.' for none) in the quadrants top-left, top-right,
 *  bottom-left, bottom-right: each icon at its quadrant's top-left corner */
export function drawIcons(codes: string): string {
  const g = emptyGrid();
  [...codes].forEach((code, q) => { if (code !== '.') stamp(g, ICONS[code], (q % 2) * 4, Math.floor(q / 2) * 4); });
  return renderImage(g);
}

const ICON_CODES = [...Object.keys(ICONS), '.'];

function imageTask(name: string, kind: 'understanding' | 'generation', prefix: string, maxAnswerTokens: number,
                   description: string, generate: Task['generate']): Task {
  return { name, modality: 'image', kind, prefix, maxAnswerTokens, description, generate, check: exact };
}

export const IMAGE_TASKS: Task[] = [
  imageTask('digit', 'understanding', 'digit <img>', 1, 'which digit (3×5 font, anywhere, with stray pixels) an image shows', (r) => {
    const d = int(r, 0, 9);
    return { prompt: `digit ${renderImage(placed(r, DIGITS[d], 2))}=`, answer: String(d) };
  }),
  imageTask('shape', 'understanding', 'shape <img>', 8, `which shape (${SHAPES.join(', ')}; several sizes, anywhere, with stray pixels) an image shows`, (r) => {
    const s = pick(r, SHAPES);
    const p = shapePattern(s, pick(r, SHAPE_SIZES[s]), r() < 0.5);
    return { prompt: `shape ${renderImage(placed(r, p, 2))}=`, answer: s };
  }),
  imageTask('dots', 'understanding', 'dots <img>', 1, 'how many dots (1-5, none touching) an image shows', (r) => {
    const n = int(r, 1, 5);
    return { prompt: `dots ${renderImage(dots(r, n))}=`, answer: String(n) };
  }),
  imageTask('draw', 'generation', 'draw ', IMAGE_TOKENS, 'draw two digits side by side in the 3×5 font', (r) => {
    const a = int(r, 0, 9), b = int(r, 0, 9);
    return { prompt: `draw ${a}${b}=`, answer: drawDigits(a, b) };
  }),
  imageTask('icons', 'generation', 'icons ', IMAGE_TOKENS, 'draw four 3×3 icons (s c t x p l, or . for none) in the quadrants', (r) => {
    const codes = Array.from({ length: 4 }, () => pick(r, ICON_CODES)).join('');
    return { prompt: `icons ${codes}=`, answer: drawIcons(codes) };
  }),
];
