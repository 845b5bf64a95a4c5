/** Helpers shared by the tests. */
import { expect } from 'vitest';
export { rng } from '../src/runtime/sampling.js';

/** max |a[i] − b[i]|; the lengths must agree */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
