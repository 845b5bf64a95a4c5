/**
 * RMSNorm, y[rows, dim] = x · rstd · w with rstd = 1 / sqrt(mean(x²) + eps), forward on the kernels and
 * its backward beside it. A saving forward keeps its input (it must not be overwritten: out ≠ x).
 * LayerNorm (PhiMoE; DBRX without b), y = (x − mean) / sqrt(var + eps) · w + b, forward only (the trainer refuses it).
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

/**
 * out[rows, dim] = (x − mean) / sqrt(var + eps) · w + b (b null: no bias), the biased variance of each row, as
 * torch's LayerNorm (f32 results; sums in f64). out may alias x. Inference only: no backward.
 */
export function layernormForward(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, rows: number,
                                 dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let mean = 0;
    for (let j = 0; j < dim; j++) mean += x[o + j];
    mean /= dim;
    let v = 0;
    for (let j = 0; j < dim; j++) { const c = x[o + j] - mean; v += c * c; }
    const rstd = 1 / Math.sqrt(v / dim + eps);
    if (b) for (let j = 0; j < dim; j++) out[o + j] = (x[o + j] - mean) * rstd * w[j] + b[j];
    else for (let j = 0; j < dim; j++) out[o + j] = (x[o + j] - mean) * rstd * w[j];
  }
}
