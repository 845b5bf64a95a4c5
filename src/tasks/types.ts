/** What a built-in task is: a seeded generator of (prompt, answer) pairs and an exact checker. */

export type Modality = 'text' | 'image';

/** a source of uniform floats in [0, 1) (src/util/rng.ts) */
export type Rand = () => number;

export interface Pair { prompt: string; answer: string }

export interface Task {
  /** the name `--tasks` and reports use */
  readonly name: string;
  /** 'image' when the prompt or the answer holds an image */
  readonly modality: Modality;
  /** image tasks: reading an image (understanding) or drawing one (generation); text tasks: 'text' */
  readonly kind: 'text' | 'understanding' | 'generation';
  /** every prompt of the task starts with this, and no other task's does */
  readonly prefix: string;
  /** the most tokens an answer has (without <eos>): the evaluator's generation budget */
  readonly maxAnswerTokens: number;
  /** one line for docs and help */
  readonly description: string;
  /** a fresh example; everything random comes from rand */
  generate(rand: Rand): Pair;
  /** whether a model's output (decoded, <eos> removed) is right */
  check(answer: string, output: string): boolean;
}

/** the checker of every built-in task: the output must be the answer, character for character */
export const exact = (answer: string, output: string): boolean => output === answer;

/** an integer in [lo, hi] */
export function int(rand: Rand, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

export function pick<T>(rand: Rand, xs: ArrayLike<T>): T {
  return xs[Math.floor(rand() * xs.length)];
}

/** n characters drawn from alphabet */
export function randomString(rand: Rand, alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}
