/**
 * The MoE block as named phases: route → dispatch → experts → combine, plus shared experts.
 * The tracing hook sees each layer's raw router logits and the routing it produced.
 */
import type { Kernels } from '../tensor/kernels.js';
import type { MoeDesc } from '../models/desc.js';
import { linearFwd } from '../models/ops.js';
import type { MoeWeights } from '../models/weights.js';
import { MoekitError } from '../util/errors.js';
import { combineRows, dispatch, gatherRows } from './dispatch.js';
import { ffnForward } from './experts.js';
import { route } from './router.js';

export interface RouterEvent {
  /** index among MoE layers (0-based) and among all decoder layers */
  moeLayer: number;
  layer: number;
  N: number;
  E: number;
  K: number;
  logits: Float32Array; // [N, E] raw, before softmax/sigmoid and any bias
  experts: Int32Array; // [N, K]
  weights: Float32Array; // [N, K]
}

export function moeForward(k: Kernels, m: MoeDesc, w: MoeWeights, x: Float32Array, N: number, H: number,
                           onRoute?: (logits: Float32Array, idx: Int32Array, wts: Float32Array) => void): Float32Array {
  // route
  const logits = linearFwd(k, x, N, w.router); // [N, E]
  const { idx, w: wts } = route(k, m, logits, N, w.selectionBias);
  onRoute?.(logits, idx, wts);
  // dispatch
  const { offsets, order } = dispatch(idx, N, m.topK, m.experts);
  const out = new Float32Array(N * H); // [N, H]
  // experts → combine
  for (let e = 0; e < m.experts; e++) {
    const lo = offsets[e], hi = offsets[e + 1];
    if (hi === lo) continue;
    const f = w.experts[e];
    if (!f) throw new MoekitError(`expert ${e} was routed to but is not loaded (pruned checkpoint?)`);
    const xe = gatherRows(x, H, m.topK, order, lo, hi); // [n_e, H]
    const ye = ffnForward(k, xe, hi - lo, f, m.act, m.swigluLimit, m.swigluAlpha); // [n_e, H]
    combineRows(out, ye, H, m.topK, wts, order, lo, hi);
  }
  if (w.shared) {
    const s = ffnForward(k, x, N, w.shared); // [N, H]
    if (w.sharedGate) {
      const g = linearFwd(k, x, N, w.sharedGate); // [N, 1]
      for (let n = 0; n < N; n++) {
        const gate = 1 / (1 + Math.exp(-g[n]));
        for (let j = 0; j < H; j++) out[n * H + j] += gate * s[n * H + j];
      }
    } else {
      for (let i = 0; i < N * H; i++) out[i] += s[i];
    }
  }
  return out;
}
