/**
 * RMSNorm, y[rows, dim] = x · rstd · w with rstd = 1 / sqrt(mean(x²) + eps), forward on the kernels and
 * its backward beside it. A saving forward keeps its input (it must not be overwritten: out ≠ x).
 */
import { getKernels } from '../tensor/index.js';
import type { Kernels } from '../tensor/kernels.js';

export interface NormSaved {
  x: Float32Array; // [rows, dim] the input
  rows: number;
  dim: number;
  eps: number;
}

/** out[rows, dim] = rmsnorm(x) · w; with `save`, what the backward needs (out may alias x only without it) */
export function rmsnormForward(k: Kernels, out: Float32Array, x: Float32Array, w: Float32Array | null, rows: number,
                               dim: number, eps: number, save: boolean): NormSaved | undefined {
  k.rmsnorm(out, x, w, rows, dim, eps);
  return save ? { x, rows, dim, eps } : undefined;
}

/**
 * dx[rows, dim] += rstd · (dy ⊙ w) − x · rstd³ / dim · Σ (dy ⊙ w ⊙ x);  dw[dim] += Σ_rows dy ⊙ x · rstd
 * (rstd recomputed from the saved input, in f32 as torch does)
 */
export function rmsnormBackward(dx: Float32Array, dy: Float32Array, s: NormSaved, w: Float32Array | null,
                                dw: Float32Array | null): void {
  getKernels().rmsnormBackward(dx, dy, s.x, w, dw, s.rows, s.dim, s.eps); // reference: tensor/ref/train.ts
}
