/**
 * Phase 2, dispatch: group the N·K (token, slot) assignments by expert with a counting sort,
 * stable in token order. Phase 4, combine, is its inverse: out[token] += w · y. Each row move's backward is its
 * inverse move (gather ↔ scatter-add); the row kernels are the Kernels' (native/train.cc, reference ref/train.ts).
 */
import type { Kernels } from '../tensor/kernels.js';

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

/** rows x[token] of the assignments order[lo..hi) gathered into [hi − lo, H] (reference: tensor/ref/train.ts) */
export function gatherRows(k: Kernels, x: Float32Array, H: number, K: number, order: Int32Array, lo: number, hi: number): Float32Array {
  const y = new Float32Array((hi - lo) * H);
  k.gatherRows(y, x, H, K, order, lo, hi);
  return y;
}

/** out[token] += w[a] · y[r] for the assignments order[lo..hi) */
export function combineRows(k: Kernels, out: Float32Array, y: Float32Array, H: number, K: number, w: Float32Array,
                            order: Int32Array, lo: number, hi: number): void {
  k.combineRows(out, y, H, K, w, order, lo, hi);
}

/** combine backward for the assignments order[lo..hi): dw[a] = dy[token] · y[r];  returns dy_e[r] = w[a] · dy[token] */
export function combineRowsBackward(k: Kernels, dw: Float32Array, dy: Float32Array, y: Float32Array, H: number, K: number,
                                    w: Float32Array, order: Int32Array, lo: number, hi: number): Float32Array {
  const dye = new Float32Array((hi - lo) * H); // [n_e, H]
  k.combineRowsBackward(dw, dye, dy, y, H, K, w, order, lo, hi);
  return dye;
}

/** gather backward (dispatch backward): dx[token] += dx_e[r] for the assignments order[lo..hi) */
export function scatterRows(k: Kernels, dx: Float32Array, dxe: Float32Array, H: number, K: number, order: Int32Array,
                            lo: number, hi: number): void {
  k.scatterRows(dx, dxe, H, K, order, lo, hi);
}
