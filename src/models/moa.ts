/**
 * JetMoE's mixture of attention heads (MoA): the query and output projections are E experts, K of them routed per
 * token by the attention's own router (top-k of its logits, softmax over the k: the `topk_softmax` rule, through the
 * MoE block's route() and dispatch(), so its trace event is a MoeRouting like the MLP's); the key and value projections
 * are shared. Slot s (of K) of token n, through its expert e = e(n, s), gives nKV query heads Q_e x [nKV·D]; the
 * attention runs nH = K·nKV heads over the nKV shared key/value heads, head (j, s) on key/value head j; the heads of
 * slot s, concatenated [nKV·D], go through O_e [H, nKV·D], weighed by the slot's weight, summed over the slots, + bias [H].
 * Heads are laid out key/value-head-major, h = j·K + s, so GQA's grouping (h / K = j) is transformers' `repeat` of
 * the key/value heads and the rest of attention.ts (RoPE, the cache, the decode kernels) is unchanged.
 * The fast forms group the (token, slot) rows by expert (dispatch → one GEMM per expert → scatter / combine);
 * moaReference below is the layer's whole attention written as plain loops, the yardstick of test/moa.test.ts.
 * Dimension names: N tokens, H hidden, E attention experts, K per token, nKV key/value heads, D head dim.
 */
import type { Kernels } from '../tensor/kernels.js';
import { linearFwd, type Linear } from '../tensor/linear.js';
import { weightF32 } from '../tensor/weight.js';
import { referenceKernels } from '../tensor/ref/index.js';
import { combineRows, dispatch, gatherRows } from '../moe/dispatch.js';
import type { MoeRouting } from '../moe/layer.js';
import { referenceRoute } from '../moe/reference.js';
import { route } from '../moe/router.js';
import type { MoeDesc } from '../moe/types.js';
import type { ModelDesc } from './desc.js';

export interface MoaWeights {
  router: Linear; // [E, H]
  q: Linear[]; // E × [nKV·D, H]: expert e's query projection
  o: Linear[]; // E × [H, nKV·D]: expert e's output projection
  bias: Float32Array; // [H], added after the combine
}

/** one layer's routing among its attention experts, with the assignments grouped by expert */
export interface MoaRouting extends MoeRouting {
  offsets: Int32Array; // [E + 1]
  order: Int32Array; // [N·K] assignment ids a = n·K + s, grouped by expert
}

/** route: router logits of x [N, H] → the K attention experts of each token and their weights */
export function moaRoute(k: Kernels, m: MoeDesc, w: MoaWeights, x: Float32Array, N: number): MoaRouting {
  const logits = linearFwd(k, x, N, w.router); // [N, E]
  const r = route(k, m, logits, N, null);
  const { counts, offsets, order } = dispatch(r.experts, N, r.K, m.experts);
  return { ...r, N, E: m.experts, counts, offsets, order };
}

/** q [N, nH·D] with h = j·K + s: each slot's expert's query projection of its token, split into its nKV heads */
export function moaQuery(k: Kernels, w: MoaWeights, x: Float32Array, N: number, H: number, nKV: number, D: number,
                         r: MoaRouting): Float32Array {
  const K = r.K, W = nKV * D;
  const q = new Float32Array(N * K * W);
  for (let e = 0; e < r.E; e++) {
    const lo = r.offsets[e], hi = r.offsets[e + 1];
    if (hi === lo) continue;
    const ye = linearFwd(k, gatherRows(k, x, H, K, r.order, lo, hi), hi - lo, w.q[e]); // [n_e, nKV·D]
    for (let i = lo; i < hi; i++) {
      const a = r.order[i], n = Math.floor(a / K), s = a % K;
      for (let j = 0; j < nKV; j++) q.set(ye.subarray((i - lo) * W + j * D, (i - lo) * W + (j + 1) * D), ((n * nKV + j) * K + s) * D);
    }
  }
  return q;
}

/** y [N, H] = Σ_s w(n, s) · O_e(n,s) · [heads (j, s) of out, j = 0 .. nKV − 1] + bias, out [N, nH·D] with h = j·K + s */
export function moaOutput(k: Kernels, w: MoaWeights, out: Float32Array, N: number, H: number, nKV: number, D: number,
                          r: MoaRouting): Float32Array {
  const K = r.K, W = nKV * D;
  const y = new Float32Array(N * H);
  for (let e = 0; e < r.E; e++) {
    const lo = r.offsets[e], hi = r.offsets[e + 1];
    if (hi === lo) continue;
    const z = new Float32Array((hi - lo) * W); // [n_e, nKV·D] the heads of each assignment's slot
    for (let i = lo; i < hi; i++) {
      const a = r.order[i], n = Math.floor(a / K), s = a % K;
      for (let j = 0; j < nKV; j++) z.set(out.subarray(((n * nKV + j) * K + s) * D, ((n * nKV + j) * K + s + 1) * D), (i - lo) * W + j * D);
    }
    combineRows(k, y, linearFwd(k, z, hi - lo, w.o[e]), H, K, r.weights, r.order, lo, hi); // y[n] += w · O_e z
  }
  for (let n = 0; n < N; n++) for (let j = 0; j < H; j++) y[n * H + j] += w.bias[j];
  return y;
}

// ---------------------------------------------------------------------------------------------
// the slow, obvious reference

/** W x for one row x, in f64 */
function matvec(L: Linear, x: ArrayLike<number>): Float64Array {
  const W = weightF32(referenceKernels, L.w);
  const y = new Float64Array(L.out);
  for (let o = 0; o < L.out; o++) {
    let s = L.b ? L.b[o] : 0;
    for (let i = 0; i < L.in; i++) s += W[o * L.in + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** rotate_half RoPE of one head v [D] at position p, default frequencies θ^(−2i/D) */
function ropeRow(v: Float64Array, p: number, theta: number): Float64Array {
  const D = v.length, half = D / 2, y = new Float64Array(D);
  for (let i = 0; i < half; i++) {
    const a = p * Math.pow(theta, (-2 * i) / D), c = Math.cos(a), s = Math.sin(a);
    y[i] = v[i] * c - v[i + half] * s;
    y[i + half] = v[i + half] * c + v[i] * s;
  }
  return y;
}

/**
 * One sequence's MoA attention from position 0, x [T, H] (normalised) → y [T, H], token by token: route, each slot's
 * query heads, the shared keys and values, RoPE (the default kind), causal softmax per head, each slot's output
 * projection weighed, + bias. k, v are the shared projections [nKV·D, H].
 */
export function moaReference(d: ModelDesc, w: { moa: MoaWeights; k: Linear; v: Linear }, x: Float32Array, T: number): Float32Array {
  const a = d.attention, m = a.moa!, H = d.hidden, nKV = a.nKvHeads, D = a.headDim, K = m.topK;
  const rows = Array.from({ length: T }, (_, t) => x.subarray(t * H, (t + 1) * H));
  const keys = rows.map((xt, t) => { const kk = matvec(w.k, xt); return Array.from({ length: nKV }, (_, j) => ropeRow(kk.subarray(j * D, (j + 1) * D), t, d.rope.theta)); });
  const vals = rows.map((xt) => { const v = matvec(w.v, xt); return Array.from({ length: nKV }, (_, j) => v.subarray(j * D, (j + 1) * D)); });
  const y = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    const { experts, weights } = referenceRoute(m, matvec(w.moa.router, rows[t]), null, {});
    const acc = new Float64Array(H);
    for (let s = 0; s < K; s++) {
      const qe = matvec(w.moa.q[experts[s]], rows[t]); // [nKV·D]
      const heads = new Float64Array(nKV * D);
      for (let j = 0; j < nKV; j++) {
        const q = ropeRow(qe.subarray(j * D, (j + 1) * D), t, d.rope.theta);
        const sc = Array.from({ length: t + 1 }, (_, u) => { let z = 0; for (let i = 0; i < D; i++) z += q[i] * keys[u][j][i]; return z * a.scale; });
        const mx = Math.max(...sc), ex = sc.map((z) => Math.exp(z - mx)), Z = ex.reduce((p, c) => p + c, 0);
        for (let u = 0; u <= t; u++) for (let i = 0; i < D; i++) heads[j * D + i] += (ex[u] / Z) * vals[u][j][i];
      }
      const o = matvec(w.moa.o[experts[s]], heads);
      for (let h = 0; h < H; h++) acc[h] += weights[s] * o[h];
    }
    for (let h = 0; h < H; h++) y[t * H + h] = acc[h] + w.moa.bias[h];
  }
  return y;
}
