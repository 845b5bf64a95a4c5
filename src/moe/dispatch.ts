/**
 * Phase 2, dispatch: group the N·K (token, slot) assignments by expert with a counting sort,
 * stable in token order. Phase 4, combine, is its inverse: out[token] += w · y.
 */
export interface Dispatch {
  /** tokens (assignments) per expert */
  counts: Int32Array; // [E]
  /** offsets[e] .. offsets[e+1] index `order` for expert e */
  offsets: Int32Array; // [E + 1]
  /** assignment ids a = token·K + slot, grouped by expert */
  order: Int32Array; // [N·K]
}

export function dispatch(idx: Int32Array, N: number, K: number, E: number): Dispatch {
  const offsets = new Int32Array(E + 1);
  for (let a = 0; a < N * K; a++) offsets[idx[a] + 1]++;
  for (let e = 0; e < E; e++) offsets[e + 1] += offsets[e];
  const fill = offsets.slice(0, E);
  const order = new Int32Array(N * K);
  for (let a = 0; a < N * K; a++) order[fill[idx[a]]++] = a;
  const counts = new Int32Array(E);
  for (let e = 0; e < E; e++) counts[e] = offsets[e + 1] - offsets[e];
  return { counts, offsets, order };
}

/** rows x[token] of the assignments order[lo..hi) gathered into [hi − lo, H] */
export function gatherRows(x: Float32Array, H: number, K: number, order: Int32Array, lo: number, hi: number): Float32Array {
  const y = new Float32Array((hi - lo) * H);
  for (let r = lo; r < hi; r++) {
    const t = Math.floor(order[r] / K);
    y.set(x.subarray(t * H, (t + 1) * H), (r - lo) * H);
  }
  return y;
}

/** out[token] += w[a] · y[r] for the assignments order[lo..hi) */
export function combineRows(out: Float32Array, y: Float32Array, H: number, K: number, w: Float32Array,
                            order: Int32Array, lo: number, hi: number): void {
  for (let r = lo; r < hi; r++) {
    const a = order[r];
    const t = Math.floor(a / K), s = w[a];
    const o = t * H, yo = (r - lo) * H;
    for (let j = 0; j < H; j++) out[o + j] += s * y[yo + j];
  }
}
