/**
 * Reference training kernels: the element-wise backward passes, AdamW and the MoE dispatch row moves, in plain
 * TypeScript (float64 arithmetic, one rounding per stored float32). The native ones (native/train.cc) compute the
 * same operations in the same order and are held to these bit for bit (test/kernels.test.ts).
 * Dimension names: rows × dim (norms), n elements, H hidden, K experts per token; `order` holds assignment ids
 * a = token·K + slot grouped by expert (moe/dispatch.ts), lo..hi the rows of one expert.
 */
const f = Math.fround;

/**
 * RMSNorm backward, y = x · rstd · w with rstd = 1 / sqrt(mean(x²) + eps) recomputed from x (in f32, as torch):
 * dx[rows, dim] += rstd · (dy ⊙ w) − x · rstd³ / dim · Σ (dy ⊙ w ⊙ x);  dw[dim] += Σ_rows dy ⊙ x · rstd
 */
export function rmsnormBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, w: Float32Array | null,
                                dw: Float32Array | null, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[o + j] * x[o + j];
    const rs = f(1 / Math.sqrt(f(f(ss / dim) + eps)));
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += dy[o + j] * (w ? w[j] : 1) * x[o + j];
    const c = (dot * rs * rs * rs) / dim;
    for (let j = 0; j < dim; j++) {
      dx[o + j] += rs * dy[o + j] * (w ? w[j] : 1) - x[o + j] * c;
      if (dw) dw[j] += dy[o + j] * x[o + j] * rs;
    }
  }
}

/** SwiGLU backward, a = silu(g) · u:  du[n] = da · silu(g);  dg[n] = da · u · σ(g) (1 + g (1 − σ(g))) */
export function swigluBackward(dg: Float32Array, du: Float32Array, da: Float32Array, g: Float32Array, u: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const sg = 1 / (1 + Math.exp(-g[i]));
    du[i] = da[i] * g[i] * sg; // ∂/∂u = silu(g)
    dg[i] = da[i] * u[i] * sg * (1 + g[i] * (1 - sg)); // silu'(g) = σ(g)(1 + g(1 − σ(g)))
  }
}

/** softmax backward in place, per row t of dp, p [rows, ld] over the first n columns: dp = p ⊙ (dp − Σ_j p ⊙ dp) */
export function softmaxBackward(dp: Float32Array, p: Float32Array, rows: number, n: number, ld: number): void {
  for (let t = 0; t < rows; t++) {
    const o = t * ld;
    let dot = 0;
    for (let j = 0; j < n; j++) dot += p[o + j] * dp[o + j];
    for (let j = 0; j < n; j++) dp[o + j] = p[o + j] * (dp[o + j] - dot);
  }
}

/**
 * One AdamW update of n elements (torch.optim.AdamW, see train/adamw.ts): p ← p · wd (wd = 1 − lr · weight_decay, or
 * 1), m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², p ← p − stepSize · m / (√v / bc2 + eps)
 */
export function adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, b1: number, b2: number,
                      stepSize: number, bc2: number, eps: number, wd: number): void {
  for (let i = 0; i < n; i++) {
    if (wd !== 1) p[i] *= wd;
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2 + eps);
  }
}

/** dst[n] += src[n] */
export function addTo(dst: Float32Array, src: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i] += src[i];
}

/** x[n] *= s (the product in float64, rounded once) */
export function scale(x: Float32Array, n: number, s: number): void {
  for (let i = 0; i < n; i++) x[i] *= s;
}

/** acc + Σ x[i]², summed in order in float64 */
export function sumSquares(x: Float32Array, n: number, acc: number): number {
  let s = acc;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}

/** dispatch: y[r − lo] = x[order[r] / K], y [hi − lo, H] */
export function gatherRows(y: Float32Array, x: Float32Array, H: number, K: number, order: Int32Array, lo: number, hi: number): void {
  for (let r = lo; r < hi; r++) {
    const t = Math.floor(order[r] / K);
    y.set(x.subarray(t * H, (t + 1) * H), (r - lo) * H);
  }
}

/** dispatch backward: dx[order[r] / K] += dxe[r − lo] */
export function scatterRows(dx: Float32Array, dxe: Float32Array, H: number, K: number, order: Int32Array, lo: number, hi: number): void {
  for (let r = lo; r < hi; r++) {
    const t = Math.floor(order[r] / K);
    for (let j = 0; j < H; j++) dx[t * H + j] += dxe[(r - lo) * H + j];
  }
}

/** combine: out[a / K] += w[a] · y[r − lo], a = order[r] */
export function combineRows(out: Float32Array, y: Float32Array, H: number, K: number, w: Float32Array, order: Int32Array,
                            lo: number, hi: number): void {
  for (let r = lo; r < hi; r++) {
    const a = order[r];
    const t = Math.floor(a / K), s = w[a];
    const o = t * H, yo = (r - lo) * H;
    for (let j = 0; j < H; j++) out[o + j] += s * y[yo + j];
  }
}

/** combine backward: dw[a] = dy[a / K] · y[r − lo];  dye[r − lo] = w[a] · dy[a / K] */
export function combineRowsBackward(dw: Float32Array, dye: Float32Array, dy: Float32Array, y: Float32Array, H: number, K: number,
                                    w: Float32Array, order: Int32Array, lo: number, hi: number): void {
  for (let r = lo; r < hi; r++) {
    const a = order[r], t = Math.floor(a / K), wa = w[a];
    let dot = 0;
    for (let j = 0; j < H; j++) {
      dot += dy[t * H + j] * y[(r - lo) * H + j];
      dye[(r - lo) * H + j] = wa * dy[t * H + j];
    }
    dw[a] = dot;
  }
}
