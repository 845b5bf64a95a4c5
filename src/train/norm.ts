/** RMSNorm: y[rows, dim] = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps), computed as torch does in f32. */

const f = Math.fround;

export interface NormSaved {
  x: Float32Array; // [rows, dim] the input
  rstd: Float32Array; // [rows]
  rows: number;
  dim: number;
}

/** out[rows, dim] = x / sqrt(mean(x²) + eps) · w (out must not alias x: x is saved) */
export function rmsnormForward(out: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number,
                               eps: number): NormSaved {
  const rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[o + j] * x[o + j];
    const rs = f(1 / Math.sqrt(f(f(ss / dim) + eps)));
    rstd[r] = rs;
    for (let j = 0; j < dim; j++) out[o + j] = w ? f(f(x[o + j] * rs) * w[j]) : f(x[o + j] * rs);
  }
  return { x, rstd, rows, dim };
}

/**
 * dx[rows, dim] += rstd · (dy ⊙ w) − x · rstd³ / dim · Σ (dy ⊙ w ⊙ x);  dw[dim] += Σ_rows dy ⊙ x · rstd
 */
export function rmsnormBackward(dx: Float32Array, dy: Float32Array, s: NormSaved, w: Float32Array | null,
                                dw: Float32Array | null): void {
  const { x, rstd, rows, dim } = s;
  for (let r = 0; r < rows; r++) {
    const o = r * dim, rs = rstd[r];
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += dy[o + j] * (w ? w[j] : 1) * x[o + j];
    const c = (dot * rs * rs * rs) / dim;
    for (let j = 0; j < dim; j++) {
      dx[o + j] += rs * dy[o + j] * (w ? w[j] : 1) - x[o + j] * c;
      if (dw) dw[j] += dy[o + j] * x[o + j] * rs;
    }
  }
}
