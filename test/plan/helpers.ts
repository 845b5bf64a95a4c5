// Helpers shared by the planner's test files.
import { expect } from 'vitest';
import { CALIBRATION } from '../../src/plan/calibration.js';
import { resolveSpec } from '../../src/plan/spec.js';
import { MoekitError } from '../../src/util/errors.js';

/** the MoekitError `f` throws (fails when it throws nothing or something else) */
export function errorOf(f: () => unknown): MoekitError {
  try {
    f();
  } catch (e) {
    if (e instanceof MoekitError) return e;
    throw e;
  }
  throw new Error('no error');
}

/** a calibration row's spec, resolved (a search template with `template`) */
export const rowSpec = (id: string, template = false) =>
  resolveSpec(structuredClone(CALIBRATION.find((r) => r.id === id)!.spec), id, { template });

/** Krajewski et al. 2024 (arXiv 2402.07871) Table 1, the MoE row */
export const PAPER = { a: 18.1, alpha: 0.115, b: 30.8, beta: 0.147, g: 2.1, gamma: 0.58, c: 0.47 };
export const paperLoss = (N: number, D: number, G: number) =>
  PAPER.c + (PAPER.g / Math.pow(G, PAPER.gamma) + PAPER.a) / Math.pow(N, PAPER.alpha) + PAPER.b / Math.pow(D, PAPER.beta);

/** |got / want - 1| <= tol */
export const rel = (got: number, want: number, tol = 1e-12) => expect(Math.abs(got / want - 1)).toBeLessThanOrEqual(tol);
