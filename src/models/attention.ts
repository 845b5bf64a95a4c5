/**
 * The one attention block, forward and backward: GQA (optional per-head or full q/k RMSNorm, OLMoE's
 * clip_qkv) and MLA expanded per head (low-rank q, compressed kv with a shared decoupled-RoPE key), RoPE,
 * the KV cache, causal and sliding-window masks, gpt-oss's attention sinks. Tokens are flattened
 * batch-major, x [N = B·T, H]; sequence b's T new tokens sit at positions pos0[b] .. pos0[b] + T − 1 and
 * are appended to its cache. A saving forward (training) starts every sequence at position 0 and keeps
 * what the backward needs; the cache then holds exactly the keys and values the backward reads.
 * MLA's compressed-cache inference path is attention-mla.ts, held to this one by tests.
 * Dimension names: nH query heads, nKV key/value heads, Dk q/k head dim, Dv value head dim, S keys.
 */
import { linearBackward, linearFwd } from '../tensor/linear.js';
import type { Grads } from '../tensor/grads.js';
import type { Kernels } from '../tensor/kernels.js';
import { MoekitError } from '../util/errors.js';
import type { LayerDesc, ModelDesc } from './desc.js';
import type { LayerKv } from './kv-cache.js';
import { rmsnormBackward, rmsnormForward, type NormSaved } from './norm.js';
import { sliceCols } from './ops.js';
import type { RopeTable } from './rope.js';
import type { AttnWeights } from './weights.js';
import type { MoeRouting } from '../moe/layer.js';
import { moaOutput, moaQuery, moaRoute, type MoaRouting } from './moa.js';

export interface AttnCall {
  k: Kernels;
  d: ModelDesc;
  w: AttnWeights;
  rope: RopeTable;
  x: Float32Array; // [N, H], already normalised
  B: number;
  T: number;
  /** [B] position of each sequence's first new token (its cache length) */
  pos0: number[];
  /** [B] this layer's cache of each sequence */
  kv: LayerKv[];
  window: number | null;
  /** keep what the backward needs (every pos0 must be 0) */
  save: boolean;
  /** the decoder layer's own attention settings (chunked attention, NoPE, q/k norm off, temperature tuning) */
  layer?: LayerDesc;
  /**
   * training on packed rows: [B·T] the first position of each token's document in its row (a query does not see
   * keys before it: intra-document masking), or undefined to see the whole row
   */
  docStart?: Int32Array;
  /** the trace hook of a mixture of attention heads (AttentionDesc.moa): called once with its routing */
  onRoute?: (r: MoeRouting) => void;
}

export interface AttnSaved {
  x: Float32Array; // [N, H] the (normalised) input
  q: Float32Array; // [N, nH·Dk] after norm and RoPE
  kv: LayerKv[]; // [B] caches holding k (after norm and RoPE) [kvH, T, Dk] and v [kvH, T, Dv]
  probs: Float32Array; // [B, nH, T, cols] softmax of the masked scores (cols = T, + 1 with a sink)
  out: Float32Array; // [N, nH·Dv] heads concatenated, input of o_proj
  clipMask?: [Uint8Array, Uint8Array, Uint8Array]; // OLMoE clip_qkv: q, k, v elements inside ±clip
  qNorm?: NormSaved; // GQA q/k norm inputs
  kNorm?: NormSaved;
  qa?: NormSaved; // MLA: q_a_proj output [N, qLora] (input of q_a_layernorm)
  qan?: Float32Array; // MLA: [N, qLora] normalised, input of q_b_proj
  lat?: NormSaved; // MLA: latent [N, kvLora] (input of kv_a_layernorm)
  latn?: Float32Array; // MLA: [N, kvLora] normalised, input of kv_b_proj
  gate?: Float32Array; // gated attention (outputGate): [N, nH·D] the gate logits
  moa?: MoaRouting; // mixture of attention heads: the routing among its experts
  /** a batched decode step's new keys [B, kvH·Dk] and values [B, kvH·Dv], not yet in the caches (decodeFused writes them) */
  newKv?: { k: Float32Array; v: Float32Array };
}

function dims(d: ModelDesc) {
  const a = d.attention;
  // MLA expanded: one key/value head per query head
  return { nH: a.nHeads, kvH: a.kind === 'mla' ? a.nHeads : a.nKvHeads, Dk: a.headDim, Dv: a.vHeadDim };
}

/** rotate columns [off, off + rope.dim) of every head of x [B, T, nHeads, stride] at each sequence's positions */
export function rotate(c: Pick<AttnCall, 'k' | 'd' | 'rope' | 'B' | 'T' | 'pos0'>, x: Float32Array, nHeads: number,
                       stride: number, off: number, inverse = false): void {
  const { k, B, T, rope } = c;
  const per = T * nHeads * stride;
  if (T === 1 && B > 1) {
    // decode: each sequence's one position gathered into [B, dim/2] tables (once per step: every layer's q and k
    // share them), one kernel call for all rows
    const { cos, sin } = decodeTables(rope, c.pos0, c.d.rope.dim / 2, inverse);
    k.rope(x.subarray(0, B * per), B * nHeads, stride, off, c.d.rope.dim, cos, sin, nHeads, c.d.rope.interleaved);
    return;
  }
  for (let b = 0; b < B; b++) {
    const { cos, sin } = rope.at(c.pos0[b], T, inverse);
    k.rope(x.subarray(b * per, (b + 1) * per), T * nHeads, stride, off, c.d.rope.dim, cos, sin, nHeads, c.d.rope.interleaved);
  }
}

/**
 * cos and sin [B, half] at each sequence's position pos0[b], kept per rope table for the last positions array asked
 * (a decode step's one pos0, read by every layer's q and k rotation); a new array, direction or regrown table
 * gathers them again
 */
const gathered = new WeakMap<RopeTable, { pos0: number[]; inverse: boolean; table: Float32Array; cos: Float32Array; sin: Float32Array }>();
function decodeTables(rope: RopeTable, pos0: number[], half: number, inverse: boolean): { cos: Float32Array; sin: Float32Array } {
  const B = pos0.length, hit = gathered.get(rope);
  rope.ensure(Math.max(...pos0) + 1);
  if (hit && hit.pos0 === pos0 && hit.inverse === inverse && hit.table === rope.cos) return hit;
  const cos = new Float32Array(B * half), sin = new Float32Array(B * half);
  for (let b = 0; b < B; b++) {
    const t = rope.at(pos0[b], 1, inverse);
    cos.set(t.cos.subarray(0, half), b * half);
    sin.set(t.sin.subarray(0, half), b * half);
  }
  gathered.set(rope, { pos0, inverse, table: rope.cos, cos, sin });
  return { cos, sin };
}

/** clamp to ±lim in place; the mask of elements inside (where the gradient passes) when asked */
function clamp(x: Float32Array, lim: number, save: boolean): Uint8Array | undefined {
  const inside = save ? new Uint8Array(x.length) : undefined;
  for (let i = 0; i < x.length; i++) {
    if (inside) inside[i] = x[i] >= -lim && x[i] <= lim ? 1 : 0;
    x[i] = Math.min(lim, Math.max(-lim, x[i]));
  }
  return inside;
}

/** keys [N, heads·Dk] and values [N, heads·Dv] (batch-major) into each sequence's cache at its positions */
function writeCache(c: AttnCall, kk: Float32Array, v: Float32Array, heads: number, Dk: number, Dv: number): void {
  const { B, T } = c;
  if (T === 1) { // decode: copy element-wise, no views
    for (let b = 0; b < B; b++) {
      const kv = c.kv[b], p = c.pos0[b], K = kv.k, V = kv.v, cap = kv.cap;
      for (let h = 0; h < heads; h++) {
        const ks = (b * heads + h) * Dk, kd = (h * cap + p) * Dk, vs = (b * heads + h) * Dv, vd = (h * cap + p) * Dv;
        for (let i = 0; i < Dk; i++) K[kd + i] = kk[ks + i];
        for (let i = 0; i < Dv; i++) V[vd + i] = v[vs + i];
      }
    }
    return;
  }
  for (let b = 0; b < B; b++) {
    const kv = c.kv[b], p0 = c.pos0[b];
    for (let h = 0; h < heads; h++) {
      const K = kv.kOf(h), V = kv.vOf(h);
      for (let t = 0; t < T; t++) {
        const n = b * T + t;
        K.set(kk.subarray((n * heads + h) * Dk, (n * heads + h + 1) * Dk), (p0 + t) * Dk);
        V.set(v.subarray((n * heads + h) * Dv, (n * heads + h + 1) * Dv), (p0 + t) * Dv);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GQA projections

/** q [N, nH·D]; k, v written into the cache */
function projectGqa(c: AttnCall, s: Partial<AttnSaved>): Float32Array {
  const { k, d, w, x, B, T, save } = c;
  const a = d.attention, N = B * T, D = a.headDim, nH = a.nHeads, nKV = a.nKvHeads;
  // [N, nH·D]; gated attention: [N, nH, 2D] (per head the query, then its gate); MoA: the routed experts' queries
  let q = a.moa ? moaProject(c, s) : linearFwd(k, x, N, w.q!);
  if (a.outputGate) {
    const qg = q, g = new Float32Array(N * nH * D);
    q = new Float32Array(N * nH * D);
    for (let r = 0; r < N * nH; r++) {
      q.set(qg.subarray(r * 2 * D, r * 2 * D + D), r * D);
      g.set(qg.subarray(r * 2 * D + D, (r + 1) * 2 * D), r * D);
    }
    s.gate = g;
  }
  let kk = linearFwd(k, x, N, w.k!); // [N, nKV·D]
  const v = linearFwd(k, x, N, w.v!); // [N, nKV·D]
  const after = a.qkNormAfterRope === true, useRope = !c.layer?.noRope;
  if (after && useRope) { rotate(c, q, nH, D, 0); rotate(c, kk, nKV, D, 0); }
  if (a.qkNorm !== 'none' && !c.layer?.noQkNorm) {
    const head = a.qkNorm !== 'full';
    const qo = save ? new Float32Array(q.length) : q, ko = save ? new Float32Array(kk.length) : kk;
    // 'l2' (Llama 4): per head without a weight
    s.qNorm = rmsnormForward(k, qo, q, w.qNorm ?? null, head ? N * nH : N, head ? D : nH * D, d.rmsEps, save);
    s.kNorm = rmsnormForward(k, ko, kk, w.kNorm ?? null, head ? N * nKV : N, head ? D : nKV * D, d.rmsEps, save);
    q = qo; kk = ko;
  }
  // OLMoE clamps after its q/k norms (transformers' OlmoeAttention: clamp_(q_norm(q_proj(x))))
  if (a.clipQkv !== null) {
    const m = [clamp(q, a.clipQkv, save), clamp(kk, a.clipQkv, save), clamp(v, a.clipQkv, save)];
    if (save) s.clipMask = m as [Uint8Array, Uint8Array, Uint8Array];
  }
  if (!after && useRope) { rotate(c, q, nH, D, 0); rotate(c, kk, nKV, D, 0); }
  if (c.layer?.tempTuned) temperature(c, q, nH * D);
  if (T === 1 && B > 1 && !save) s.newKv = { k: kk, v }; // a batched decode step: decodeFused writes them
  else writeCache(c, kk, v, nKV, D, D);
  return q;
}

/** the mixture of attention heads' route and queries q [N, nH·D] (h = j·K + s); the routing kept in s.moa and traced */
function moaProject(c: AttnCall, s: Partial<AttnSaved>): Float32Array {
  const { k, d, w, x, B, T } = c, a = d.attention, N = B * T;
  if (c.save) throw new MoekitError('the mixture of attention heads (JetMoE) has no backward in the trainer');
  const r = moaRoute(k, a.moa!, w.moa!, x, N);
  c.onRoute?.(r);
  s.moa = r;
  return moaQuery(k, w.moa!, x, N, d.hidden, a.nKvHeads, a.headDim, r);
}

/** the heads' output out [N, nH·Dv] projected back: o_proj, or the mixture of attention heads' routed experts */
function outProject(c: AttnCall, out: Float32Array, s: Partial<AttnSaved>): Float32Array {
  const { k, d, w, B, T } = c, a = d.attention, N = B * T;
  return s.moa ? moaOutput(k, w.moa!, out, N, d.hidden, a.nKvHeads, a.headDim, s.moa) : linearFwd(k, out, N, w.o!);
}

/**
 * Llama 4's attention temperature tuning, in place on q [B, T, width]: the row at position p times
 * log(1 + floor((p + 1) / floorScale)) · attnScale + 1 (f32, as transformers). Its own backward (a per-row scale).
 */
function temperature(c: AttnCall, q: Float32Array, width: number): void {
  const t = c.d.attention.tempTuning;
  if (!t) throw new MoekitError('a layer with temperature tuning needs attention.tempTuning');
  const f = Math.fround;
  for (let b = 0; b < c.B; b++) {
    for (let i = 0; i < c.T; i++) {
      const p = c.pos0[b] + i;
      const sc = f(f(f(Math.log1p(Math.floor(f(f(p + 1) / t.floorScale)))) * t.attnScale) + 1);
      const row = q.subarray((b * c.T + i) * width, (b * c.T + i + 1) * width);
      for (let j = 0; j < width; j++) row[j] = f(row[j] * sc);
    }
  }
}

/** dq [N, nH·D], dk [N, nKV·D], dv [N, nKV·D] (all consumed) → dx (+=) */
function projectGqaBackward(c: AttnCall, s: AttnSaved, dq: Float32Array, dk: Float32Array, dv: Float32Array,
                            dx: Float32Array, g: Grads): void {
  const { k, d, w, B, T } = c, a = d.attention, N = B * T, D = a.headDim;
  const after = a.qkNormAfterRope === true, useRope = !c.layer?.noRope;
  if (c.layer?.tempTuned) temperature(c, dq, a.nHeads * D); // a per-row scale is its own backward
  if (!after && useRope) { rotate(c, dq, a.nHeads, D, 0, true); rotate(c, dk, a.nKvHeads, D, 0, true); }
  if (s.clipMask) {
    const [mq, mk, mv] = s.clipMask;
    for (let i = 0; i < dq.length; i++) if (!mq[i]) dq[i] = 0;
    for (let i = 0; i < dk.length; i++) if (!mk[i]) dk[i] = 0;
    for (let i = 0; i < dv.length; i++) if (!mv[i]) dv[i] = 0;
  }
  if (s.qNorm && s.kNorm) {
    const dq0 = new Float32Array(dq.length), dk0 = new Float32Array(dk.length);
    rmsnormBackward(dq0, dq, s.qNorm, w.qNorm ?? null, w.qNorm ? g.of(w.qNorm) : null);
    rmsnormBackward(dk0, dk, s.kNorm, w.kNorm ?? null, w.kNorm ? g.of(w.kNorm) : null);
    dq = dq0; dk = dk0;
  }
  if (after && useRope) { rotate(c, dq, a.nHeads, D, 0, true); rotate(c, dk, a.nKvHeads, D, 0, true); }
  linearBackward(k, w.q!, s.x, dq, N, dx, g);
  linearBackward(k, w.k!, s.x, dk, N, dx, g);
  linearBackward(k, w.v!, s.x, dv, N, dx, g);
}

// ---------------------------------------------------------------------------------------------
// MLA projections, expanded per head

/** x ·= c in place (f32), when a scale is set and not 1 (MlaDesc.qScale, kvScale) */
export function scaleBy(x: Float32Array, c: number | undefined): void {
  if (c === undefined || c === 1) return;
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] * c);
}

/**
 * q [N, nH·(nope+R)]; per head, keys [nope | k_pe] (k_pe shared by all heads) and values [Dv] into the cache
 */
function projectMla(c: AttnCall, s: Partial<AttnSaved>): Float32Array {
  const { k, d, w, x, B, T, save } = c;
  const a = d.attention, m = a.mla!, N = B * T, nH = a.nHeads, Dk = a.headDim, Dv = m.vHeadDim;
  const nope = m.qkNopeDim, L = m.kvLoraRank, wA = L + m.qkRopeDim;
  let q: Float32Array;
  if (w.qA) {
    const qa = linearFwd(k, x, N, w.qA); // [N, qLora]
    const qan = save ? new Float32Array(qa.length) : qa;
    s.qa = rmsnormForward(k, qan, qa, w.qANorm!, N, m.qLoraRank!, d.rmsEps, save);
    if (save) s.qan = qan;
    q = linearFwd(k, qan, N, w.qB!); // [N, nH·Dk]
  } else {
    q = linearFwd(k, x, N, w.q!);
  }
  scaleBy(q, m.qScale); // LongCat-Flash's LoRA scaling (MlaDesc.qScale)
  const ckv = linearFwd(k, x, N, w.kvA!); // [N, kvLora + R]
  const lat = sliceCols(ckv, N, wA, 0, L); // [N, kvLora]
  const latn = save ? new Float32Array(lat.length) : lat;
  s.lat = rmsnormForward(k, latn, lat, w.kvANorm!, N, L, d.rmsEps, save);
  scaleBy(latn, m.kvScale); // kv_b_proj's input, as the backward reads it
  if (save) s.latn = latn;
  const kvb = linearFwd(k, latn, N, w.kvB!); // [N, nH·(nope + Dv)]
  rotate(c, q, nH, Dk, nope);
  rotate(c, ckv, 1, wA, L); // k_pe, shared by all heads
  const kk = new Float32Array(N * nH * Dk), v = new Float32Array(N * nH * Dv); // [N, nH·Dk], [N, nH·Dv]
  const per = nope + Dv;
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < nH; h++) {
      const src = n * nH * per + h * per, dst = (n * nH + h) * Dk;
      kk.set(kvb.subarray(src, src + nope), dst);
      kk.set(ckv.subarray(n * wA + L, (n + 1) * wA), dst + nope);
      v.set(kvb.subarray(src + nope, src + per), (n * nH + h) * Dv);
    }
  }
  writeCache(c, kk, v, nH, Dk, Dv);
  return q;
}

function projectMlaBackward(c: AttnCall, s: AttnSaved, dq: Float32Array, dk: Float32Array, dv: Float32Array,
                            dx: Float32Array, g: Grads): void {
  const { k, d, w, B, T } = c, a = d.attention, m = a.mla!, N = B * T, nH = a.nHeads, Dk = a.headDim, Dv = m.vHeadDim;
  const nope = m.qkNopeDim, R = m.qkRopeDim, L = m.kvLoraRank, wA = L + R, per = nope + Dv;
  // keys and values back to kv_b_proj's output and the shared k_pe
  const dkvb = new Float32Array(N * nH * per); // [N, nH·(nope + Dv)]
  const dckv = new Float32Array(N * wA); // [N, kvLora + R]
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < nH; h++) {
      const o = n * nH * per + h * per, ko = (n * nH + h) * Dk, vo = (n * nH + h) * Dv;
      for (let j = 0; j < nope; j++) dkvb[o + j] = dk[ko + j];
      for (let j = 0; j < Dv; j++) dkvb[o + nope + j] = dv[vo + j];
      for (let j = 0; j < R; j++) dckv[n * wA + L + j] += dk[ko + nope + j];
    }
  }
  rotate(c, dckv, 1, wA, L, true);
  const dlatn = new Float32Array(N * L);
  linearBackward(k, w.kvB!, s.latn!, dkvb, N, dlatn, g);
  scaleBy(dlatn, m.kvScale); // a constant scale is its own backward
  const dlat = new Float32Array(N * L);
  rmsnormBackward(dlat, dlatn, s.lat!, w.kvANorm!, g.of(w.kvANorm!));
  for (let n = 0; n < N; n++) for (let j = 0; j < L; j++) dckv[n * wA + j] += dlat[n * L + j];
  linearBackward(k, w.kvA!, s.x, dckv, N, dx, g);
  // queries
  rotate(c, dq, nH, Dk, nope, true);
  scaleBy(dq, m.qScale);
  if (w.qA) {
    const qL = m.qLoraRank!;
    const dqan = new Float32Array(N * qL), dqa = new Float32Array(N * qL);
    linearBackward(k, w.qB!, s.qan!, dq, N, dqan, g);
    rmsnormBackward(dqa, dqan, s.qa!, w.qANorm!, g.of(w.qANorm!));
    linearBackward(k, w.qA, s.x, dqa, N, dx, g);
  } else {
    linearBackward(k, w.q!, s.x, dq, N, dx, g);
  }
}

// ---------------------------------------------------------------------------------------------
// the block

/** the first key position a query at p sees: its sliding window's, or its attention chunk's start (Llama 4) */
export function firstKey(p: number, window: number | null, chunk?: number): number {
  const w = window === null ? 0 : Math.max(0, p - window + 1);
  return chunk ? Math.max(w, Math.floor(p / chunk) * chunk) : w;
}

/**
 * Causal (and sliding-window or chunked) mask of one score row: keys j > p, and j < firstKey(p) or before the
 * query's document start (packed training rows), get −∞.
 * row holds S key columns starting at `off`; p is the query's absolute position.
 */
export function maskRow(scores: Float32Array, off: number, S: number, p: number, window: number | null, chunk?: number, docStart = 0): void {
  const lo = Math.max(firstKey(p, window, chunk), docStart);
  for (let j = 0; j < lo; j++) scores[off + j] = -Infinity;
  for (let j = p + 1; j < S; j++) scores[off + j] = -Infinity;
}

/**
 * Floats in one block of attention scores at inference (16 MiB): a prompt's [T, S] scores are computed a block of
 * query rows at a time, so a 60k-token prompt needs 16 MiB of scores, not 14 GB. Row blocks give the same numbers
 * (every score row is its own dot products and its own softmax).
 */
export const ATTENTION_LIMITS = { scoreBlockFloats: 1 << 22 };
/** query rows per score block for rows of `cols` scores */
export const scoreRows = (T: number, cols: number): number =>
  Math.max(1, Math.min(T, Math.floor(ATTENTION_LIMITS.scoreBlockFloats / cols)));
/**
 * The most floats a training forward may keep as attention probabilities ([B, nH, T, T], kept whole for the
 * backward): 2^30 floats, 4 GiB
 */
export const SAVED_PROBS_MAX_FLOATS = 2 ** 30;

/** attention output projected back: y [N, H]; s when c.save */
export function attentionForward(c: AttnCall): { y: Float32Array; s?: AttnSaved } {
  const { k, d, w, B, T, window, save } = c;
  const a = d.attention, N = B * T, { nH, kvH, Dk, Dv } = dims(d);
  if (save && c.pos0.some((p) => p !== 0)) throw new MoekitError('a saving (training) forward starts every sequence at position 0');
  if (c.docStart && (c.docStart.length !== B * T || c.pos0.some((p) => p !== 0))) {
    throw new MoekitError(`document starts: expected ${B * T} (B·T) for a forward from position 0, got ${c.docStart.length}`);
  }
  for (let b = 0; b < B; b++) c.kv[b].reserve(c.pos0[b] + T);
  const p: Partial<AttnSaved> = {};
  const q = a.kind === 'mla' ? projectMla(c, p) : projectGqa(c, p);
  const maxS = Math.max(...c.pos0) + T;
  const colsMax = a.sinks ? maxS + 1 : maxS; // one extra column holds the sink logit
  if (save && B * nH * T * colsMax > SAVED_PROBS_MAX_FLOATS) {
    throw new MoekitError(`a training forward of ${B} × ${T} tokens keeps ${B} × ${nH} heads × ${T} × ${colsMax} attention probabilities ` +
      `(${((B * nH * T * colsMax * 4) / 2 ** 30).toFixed(1)} GiB, over the 4 GiB limit): use a shorter sequence or a smaller micro-batch`);
  }
  const probs = save ? new Float32Array(B * nH * T * colsMax) : null; // [B, nH, T, cols]
  const rows = save ? T : scoreRows(T, colsMax); // query rows per score block
  const scratch = save ? null : new Float32Array(rows * colsMax); // [rows, cols]
  const out = new Float32Array(N * nH * Dv); // [N, nH·Dv]
  const group = nH / kvH;
  if (T === 1 && !save && !c.docStart) {
    decodeFused(c, q, out, p.newKv ?? null);
    if (p.gate) outputGate(out, p.gate);
    return { y: outProject(c, out, p) };
  }
  for (let b = 0; b < B; b++) {
    const S = c.pos0[b] + T, cols = a.sinks ? S + 1 : S, kv = c.kv[b];
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group);
      for (let t0 = 0; t0 < T; t0 += rows) {
        const n = Math.min(rows, T - t0); // query rows t0 .. t0 + n − 1
        const scores = probs ? probs.subarray((b * nH + h) * T * cols, (b * nH + h + 1) * T * cols) : scratch!; // [n, cols]
        const qh = q.subarray((b * T + t0) * nH * Dk + h * Dk); // [n, Dk], row stride nH·Dk
        // scores[n, S] = scale · q_h · K_hᵀ
        k.sgemm(false, true, n, S, Dk, a.scale, qh, nH * Dk, kv.kOf(kvh), Dk, 0, scores, cols);
        for (let t = 0; t < n; t++) {
          maskRow(scores, t * cols, S, c.pos0[b] + t0 + t, window, c.layer?.chunk, c.docStart ? c.docStart[b * T + t0 + t] : 0);
          if (a.sinks) scores[t * cols + S] = w.sinks![h];
        }
        k.softmax(scores, n, cols);
        // out_h[n, Dv] = P[n, S] · V_h[S, Dv]
        k.sgemm(false, false, n, Dv, S, 1, scores, cols, kv.vOf(kvh), Dv, 0, out.subarray((b * T + t0) * nH * Dv + h * Dv), nH * Dv);
      }
    }
  }
  if (p.gate) {
    if (save) throw new MoekitError('gated attention (Qwen3-Next) has no backward in the trainer');
    outputGate(out, p.gate);
  }
  const y = outProject(c, out, p);
  if (!save) return { y };
  return { y, s: { ...p, x: c.x, q, kv: c.kv.slice(), probs: probs!, out } as AttnSaved };
}

/** out [N, nH·D] ⊙= σ(gate) (gated attention, before o_proj), f32 as transformers */
function outputGate(out: Float32Array, gate: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i] * Math.fround(1 / (1 + Math.exp(-gate[i]))));
}

/**
 * The decode fast path (one new token per sequence): every head of a sequence in one fused kernel call
 * (scores, mask, softmax, P · V as the loop above computes them) instead of two GEMMs and a softmax per head.
 */
function decodeFused(c: AttnCall, q: Float32Array, out: Float32Array, newKv: AttnSaved['newKv'] | null): void {
  const { k, d, w, B, window } = c;
  const a = d.attention, { nH, kvH, Dk, Dv } = dims(d);
  const sinks = a.sinks ? w.sinks! : null;
  if (B === 1) {
    if (newKv) throw new MoekitError('decodeFused: new keys for a batch of one (projectGqa writes those)');
    const p = c.pos0[0], kv = c.kv[0];
    k.attnDecode(q, kv.k, kv.v, out, nH, kvH, kv.cap, Dk, Dv, firstKey(p, window, c.layer?.chunk), p + 1, a.scale, sinks);
    return;
  }
  // one call for the batch: each sequence's cache and (cap, lo, S)
  const Ks: Float32Array[] = new Array(B), Vs: Float32Array[] = new Array(B), meta = new Int32Array(3 * B);
  for (let b = 0; b < B; b++) {
    const p = c.pos0[b], kv = c.kv[b];
    Ks[b] = kv.k; Vs[b] = kv.v;
    meta[3 * b] = kv.cap; meta[3 * b + 1] = firstKey(p, window, c.layer?.chunk); meta[3 * b + 2] = p + 1;
  }
  k.attnDecodeBatch(q, Ks, Vs, meta, out, nH, kvH, Dk, Dv, a.scale, sinks, newKv?.k ?? null, newKv?.v ?? null);
}

/** dy [N, H] → dx [N, H] (+=), weight gradients into g */
export function attentionBackward(c: AttnCall, s: AttnSaved, dy: Float32Array, dx: Float32Array, g: Grads): void {
  const { k, d, w, B, T } = c, a = d.attention, N = B * T, { nH, kvH, Dk, Dv } = dims(d);
  const group = nH / kvH, cols = a.sinks ? T + 1 : T;
  const dout = new Float32Array(N * nH * Dv); // [N, nH·Dv]
  linearBackward(k, w.o!, s.out, dy, N, dout, g);
  const dq = new Float32Array(N * nH * Dk), dk = new Float32Array(N * kvH * Dk), dv = new Float32Array(N * kvH * Dv);
  const dP = new Float32Array(T * cols); // [T, cols]; the sink column keeps dP = 0
  for (let b = 0; b < B; b++) {
    const kv = s.kv[b];
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group);
      const P = s.probs.subarray((b * nH + h) * T * cols, (b * nH + h + 1) * T * cols); // [T, cols]
      const K = kv.kOf(kvh), V = kv.vOf(kvh); // [T, Dk], [T, Dv]
      const qo = b * T * nH * Dk + h * Dk, ko = b * T * kvH * Dk + kvh * Dk;
      const vo = b * T * kvH * Dv + kvh * Dv, oo = b * T * nH * Dv + h * Dv;
      // dP[T, T] = dout_h · V_hᵀ;  dv_h[T, Dv] += Pᵀ · dout_h
      k.sgemm(false, true, T, T, Dv, 1, dout.subarray(oo), nH * Dv, V, Dv, 0, dP, cols);
      k.sgemm(true, false, T, Dv, T, 1, P, cols, dout.subarray(oo), nH * Dv, 1, dv.subarray(vo), kvH * Dv);
      // softmax backward: dS = P ⊙ (dP − Σ_j P ⊙ dP); a sink (gpt-oss) is one more logit that carries no value:
      // its probability 1 − Σ_j P_j gets dP = 0, so d sink = −(1 − Σ_j P_j) · Σ_j P_j dP_j
      if (a.sinks) {
        let dSink = 0;
        for (let t = 0; t < T; t++) {
          let dot = 0, mass = 0;
          for (let j = 0; j < T; j++) { dot += P[t * cols + j] * dP[t * cols + j]; mass += P[t * cols + j]; }
          for (let j = 0; j < T; j++) dP[t * cols + j] = P[t * cols + j] * (dP[t * cols + j] - dot);
          dSink -= (1 - mass) * dot;
        }
        g.of(w.sinks!)[h] += dSink;
      } else {
        k.softmaxBackward(dP, P, T, T, cols);
      }
      // dq_h[T, Dk] += scale · dS · K_h;  dk_h[T, Dk] += scale · dSᵀ · q_h
      k.sgemm(false, false, T, Dk, T, a.scale, dP, cols, K, Dk, 1, dq.subarray(qo), nH * Dk);
      k.sgemm(true, false, T, Dk, T, a.scale, dP, cols, s.q.subarray(qo), nH * Dk, 1, dk.subarray(ko), kvH * Dk);
    }
  }
  if (a.kind === 'mla') projectMlaBackward(c, s, dq, dk, dv, dx, g);
  else projectGqaBackward(c, s, dq, dk, dv, dx, g);
}
