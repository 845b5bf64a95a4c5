/**
 * The one attention implementation: GQA and MLA projections, q/k norms, RoPE, the KV cache,
 * causal and sliding-window masks, attention sinks. Tokens are flattened batch-major:
 * x [N = B·T, H]; every sequence of the batch sits at positions pos0 .. pos0 + T − 1.
 */
import type { Kernels } from '../tensor/kernels.js';
import type { LayerKv } from '../runtime/kv-cache.js';
import type { ModelDesc } from './desc.js';
import { linearFwd, sliceCols } from './ops.js';
import type { RopeTable } from './rope.js';
import type { AttnWeights } from './weights.js';

export interface AttnCall {
  k: Kernels;
  d: ModelDesc;
  w: AttnWeights;
  rope: RopeTable;
  x: Float32Array; // [N, H], already normalised
  B: number;
  T: number;
  pos0: number;
  kv: LayerKv;
  window: number | null;
}

/** rotate q/k heads of every sequence at their positions */
function applyRope(c: AttnCall, x: Float32Array, nHeads: number, stride: number, off: number): void {
  const { k, B, T, pos0, rope } = c;
  const { cos, sin } = rope.at(pos0, T);
  const per = T * nHeads * stride;
  for (let b = 0; b < B; b++) {
    k.rope(x.subarray(b * per, (b + 1) * per), T * nHeads, stride, off, c.d.rope.dim, cos, sin, nHeads, c.d.rope.interleaved);
  }
}

function clamp(x: Float32Array, lim: number): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(lim, Math.max(-lim, x[i]));
}

/** q [N, nH·Dk]; new keys/values written into the cache */
function projectGqa(c: AttnCall): Float32Array {
  const { k, d, w, x, B, T, pos0, kv } = c;
  const a = d.attention, N = B * T, D = a.headDim;
  const q = linearFwd(k, x, N, w.q!); // [N, nH·D]
  const kk = linearFwd(k, x, N, w.k!); // [N, nKV·D]
  const v = linearFwd(k, x, N, w.v!); // [N, nKV·D]
  if (a.qkNorm === 'full') {
    k.rmsnorm(q, q, w.qNorm!, N, a.nHeads * D, d.rmsEps);
    k.rmsnorm(kk, kk, w.kNorm!, N, a.nKvHeads * D, d.rmsEps);
  } else if (a.qkNorm === 'head') {
    k.rmsnorm(q, q, w.qNorm!, N * a.nHeads, D, d.rmsEps);
    k.rmsnorm(kk, kk, w.kNorm!, N * a.nKvHeads, D, d.rmsEps);
  }
  // OLMoE clamps after its q/k norms (transformers' OlmoeAttention: clamp_(q_norm(q_proj(x))))
  if (a.clipQkv !== null) { clamp(q, a.clipQkv); clamp(kk, a.clipQkv); clamp(v, a.clipQkv); }
  applyRope(c, q, a.nHeads, D, 0);
  applyRope(c, kk, a.nKvHeads, D, 0);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < a.nKvHeads; h++) {
      const K = kv.kOf(b, h), V = kv.vOf(b, h);
      for (let t = 0; t < T; t++) {
        const src = ((b * T + t) * a.nKvHeads + h) * D;
        K.set(kk.subarray(src, src + D), (pos0 + t) * D);
        V.set(v.subarray(src, src + D), (pos0 + t) * D);
      }
    }
  }
  return q;
}

/** MLA: q [N, nH·(nope+rope)]; keys [nope | rope] and values per head into the cache */
function projectMla(c: AttnCall): Float32Array {
  const { k, d, w, x, B, T, pos0, kv } = c;
  const a = d.attention, m = a.mla!, N = B * T, nH = a.nHeads;
  let q: Float32Array;
  if (w.qA) {
    const qa = linearFwd(k, x, N, w.qA); // [N, qLora]
    k.rmsnorm(qa, qa, w.qANorm!, N, m.qLoraRank!, d.rmsEps);
    q = linearFwd(k, qa, N, w.qB!); // [N, nH·Dk]
  } else {
    q = linearFwd(k, x, N, w.q!);
  }
  const ckv = linearFwd(k, x, N, w.kvA!); // [N, kvLora + rope]
  const wA = m.kvLoraRank + m.qkRopeDim;
  const latent = sliceCols(ckv, N, wA, 0, m.kvLoraRank); // [N, kvLora]
  k.rmsnorm(latent, latent, w.kvANorm!, N, m.kvLoraRank, d.rmsEps);
  const kvb = linearFwd(k, latent, N, w.kvB!); // [N, nH·(nope+v)]
  applyRope(c, q, nH, a.headDim, m.qkNopeDim);
  applyRope(c, ckv, 1, wA, m.kvLoraRank); // k_pe, shared by all heads
  const per = m.qkNopeDim + m.vHeadDim;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      const K = kv.kOf(b, h), V = kv.vOf(b, h);
      for (let t = 0; t < T; t++) {
        const n = b * T + t;
        const dst = (pos0 + t) * a.headDim;
        K.set(kvb.subarray(n * nH * per + h * per, n * nH * per + h * per + m.qkNopeDim), dst);
        K.set(ckv.subarray(n * wA + m.kvLoraRank, (n + 1) * wA), dst + m.qkNopeDim);
        V.set(kvb.subarray(n * nH * per + h * per + m.qkNopeDim, n * nH * per + (h + 1) * per), (pos0 + t) * m.vHeadDim);
      }
    }
  }
  return q;
}

/**
 * Causal (and sliding-window) mask of one score row: keys j > p, and j ≤ p − window, get −∞.
 * row holds S key columns starting at `off`; p is the query's absolute position.
 */
export function maskRow(scores: Float32Array, off: number, S: number, p: number, window: number | null): void {
  const lo = window === null ? 0 : Math.max(0, p - window + 1);
  for (let j = 0; j < lo; j++) scores[off + j] = -Infinity;
  for (let j = p + 1; j < S; j++) scores[off + j] = -Infinity;
}

/** attention output projected back: [N, H] */
export function attentionForward(c: AttnCall): Float32Array {
  const { k, d, w, B, T, pos0, kv, window } = c;
  const a = d.attention, N = B * T, nH = a.nHeads, Dk = a.headDim, Dv = a.vHeadDim;
  kv.reserve(pos0 + T);
  const q = a.kind === 'mla' ? projectMla(c) : projectGqa(c);
  const S = pos0 + T; // keys visible to the last query
  const cols = a.sinks ? S + 1 : S; // one extra column holds the sink logit
  const scores = new Float32Array(T * cols); // [T, S(+1)]
  const out = new Float32Array(N * nH * Dv); // [N, nH·Dv]
  const group = nH / a.nKvHeads;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group);
      const qh = q.subarray((b * T) * nH * Dk + h * Dk); // [T, Dk], row stride nH·Dk
      // scores[T, S] = scale · q_h · K_hᵀ
      k.sgemm(false, true, T, S, Dk, a.scale, qh, nH * Dk, kv.kOf(b, kvh), Dk, 0, scores, cols);
      for (let t = 0; t < T; t++) {
        maskRow(scores, t * cols, S, pos0 + t, window);
        if (a.sinks) scores[t * cols + S] = w.sinks![h];
      }
      k.softmax(scores, T, cols);
      // out_h[T, Dv] = P[T, S] · V_h[S, Dv]
      k.sgemm(false, false, T, Dv, S, 1, scores, cols, kv.vOf(b, kvh), Dv, 0, out.subarray((b * T) * nH * Dv + h * Dv), nH * Dv);
    }
  }
  return linearFwd(k, out, N, w.o);
}
