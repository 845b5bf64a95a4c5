/** Reference RMSNorm: float64 mean of squares, one rounding per output. */
import { dim, f32, len } from './check.js';

/**
 * out[rows, dim] = x[rows, dim] / sqrt(mean(x²) + eps) · w[dim]   (w null → 1).
 * out may alias x: each row's statistic is computed before the row is written.
 */
export function rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array | null, rows: number,
                        dimension: number, eps: number): void {
  const k = 'rmsnorm';
  dim(k, 'rows', rows); dim(k, 'dim', dimension);
  f32(k, 'out', out); f32(k, 'x', x);
  len(k, 'x', x, rows * dimension);
  len(k, 'out', out, rows * dimension);
  if (w !== null) {
    f32(k, 'w', w);
    if (rows > 0) len(k, 'w', w, dimension);
  }
  for (let r = 0; r < rows; r++) {
    const o = r * dimension; // row r is [o, o + dim)
    let ss = 0; // float64 sum of squares
    for (let c = 0; c < dimension; c++) ss += x[o + c] * x[o + c];
    const inv = 1 / Math.sqrt(ss / dimension + eps);
    for (let c = 0; c < dimension; c++) {
      out[o + c] = x[o + c] * inv * (w === null ? 1 : w[c]);
    }
  }
}
