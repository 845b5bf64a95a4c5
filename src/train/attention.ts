/**
 * Attention forward with saved activations, and its backward: GQA (optional per-head or full
 * q/k RMSNorm) and MLA (low-rank q, compressed kv with a shared decoupled-RoPE key), causal or
 * sliding-window, with gpt-oss's attention sinks. Tokens are flattened batch-major: x [N = B·T, H], positions 0..T−1.
 * Dimension names: nH query heads, nKV key/value heads, Dk q/k head dim, Dv value head dim.
 */
import type { Kernels } from '../tensor/kernels.js';
import type { ModelDesc } from '../models/desc.js';
import { maskRow } from '../models/attention.js';
import { linearFwd } from '../models/ops.js';
import type { AttnWeights } from '../models/weights.js';
import { Grads, linearBackward } from './linear.js';
import { rmsnormBackward, rmsnormForward, type NormSaved } from './norm.js';
import type { TrainRope } from './rope.js';

export interface AttnCtx {
  k: Kernels;
  d: ModelDesc;
  rope: TrainRope;
  B: number;
  T: number;
  window: number | null;
}

export interface AttnSaved {
  x: Float32Array; // [N, H] the (normalised) input
  q: Float32Array; // [N, nH·Dk] after norm and RoPE
  kk: Float32Array; // [N, nKV·Dk] after norm and RoPE
  v: Float32Array; // [N, nKV·Dv]
  probs: Float32Array; // [B, nH, T, T] softmax of the masked scores
  out: Float32Array; // [N, nH·Dv] heads concatenated, input of o_proj
  clipMask?: [Uint8Array, Uint8Array, Uint8Array]; // OLMoE clip_qkv: q, k, v elements inside ±clip
  qNorm?: NormSaved; // GQA q/k norm inputs
  kNorm?: NormSaved;
  qa?: NormSaved; // MLA: q_a_proj output [N, qLora] (input of q_a_layernorm)
  qan?: Float32Array; // MLA: [N, qLora] normalised, input of q_b_proj
  ckv?: Float32Array; // MLA: kv_a_proj_with_mqa output [N, kvLora + R]
  lat?: NormSaved; // MLA: latent [N, kvLora] (input of kv_a_layernorm)
  latn?: Float32Array; // MLA: [N, kvLora] normalised, input of kv_b_proj
}

function dims(d: ModelDesc) {
  const a = d.attention;
  return { nH: a.nHeads, nKV: a.nKvHeads, Dk: a.headDim, Dv: a.vHeadDim };
}

/** GQA projections → q [N, nH·Dk], k [N, nKV·Dk], v [N, nKV·Dv] with norms and RoPE */
function projectGqa(c: AttnCtx, w: AttnWeights, x: Float32Array, s: Partial<AttnSaved>): void {
  const { k, d, B, T } = c, a = d.attention, N = B * T, { nH, nKV, Dk } = dims(d);
  let q = linearFwd(k, x, N, w.q!); // [N, nH·Dk]
  let kk = linearFwd(k, x, N, w.k!); // [N, nKV·Dk]
  s.v = linearFwd(k, x, N, w.v!); // [N, nKV·Dv]
  if (a.qkNorm !== 'none') {
    const head = a.qkNorm === 'head';
    const qo = new Float32Array(q.length), ko = new Float32Array(kk.length);
    s.qNorm = rmsnormForward(qo, q, w.qNorm!, head ? N * nH : N, head ? Dk : nH * Dk, d.rmsEps);
    s.kNorm = rmsnormForward(ko, kk, w.kNorm!, head ? N * nKV : N, head ? Dk : nKV * Dk, d.rmsEps);
    q = qo; kk = ko;
  }
  if (a.clipQkv !== null) {
    // OLMoE: clamp to ±clip after the norms; the clamp passes gradient only inside the range (masks kept)
    const L = a.clipQkv, clip = (t: Float32Array) => {
      const inside = new Uint8Array(t.length);
      for (let i = 0; i < t.length; i++) { inside[i] = t[i] >= -L && t[i] <= L ? 1 : 0; t[i] = Math.min(L, Math.max(-L, t[i])); }
      return inside;
    };
    s.clipMask = [clip(q), clip(kk), clip(s.v)];
  }
  c.rope.apply(k, q, B, nH, Dk, 0);
  c.rope.apply(k, kk, B, nKV, Dk, 0);
  s.q = q; s.kk = kk;
}

function projectGqaBackward(c: AttnCtx, w: AttnWeights, s: AttnSaved, dq: Float32Array, dk: Float32Array,
                            dv: Float32Array, dx: Float32Array, g: Grads): void {
  const { k, d, B, T } = c, N = B * T, { nH, nKV, Dk } = dims(d);
  c.rope.apply(k, dq, B, nH, Dk, 0, true);
  c.rope.apply(k, dk, B, nKV, Dk, 0, true);
  if (s.clipMask) {
    const [mq, mk, mv] = s.clipMask;
    for (let i = 0; i < dq.length; i++) if (!mq[i]) dq[i] = 0;
    for (let i = 0; i < dk.length; i++) if (!mk[i]) dk[i] = 0;
    for (let i = 0; i < dv.length; i++) if (!mv[i]) dv[i] = 0;
  }
  if (s.qNorm && s.kNorm) {
    const dq0 = new Float32Array(dq.length), dk0 = new Float32Array(dk.length);
    rmsnormBackward(dq0, dq, s.qNorm, w.qNorm!, g.of(w.qNorm!));
    rmsnormBackward(dk0, dk, s.kNorm, w.kNorm!, g.of(w.kNorm!));
    dq = dq0; dk = dk0;
  }
  linearBackward(k, w.q!, s.x, dq, N, dx, g);
  linearBackward(k, w.k!, s.x, dk, N, dx, g);
  linearBackward(k, w.v!, s.x, dv, N, dx, g);
}

/**
 * MLA projections, expanded per head: q [N, nH·(nope+R)], k [N, nH·(nope+R)] whose rope part is
 * the one shared k_pe, v [N, nH·Dv]
 */
function projectMla(c: AttnCtx, w: AttnWeights, x: Float32Array, s: Partial<AttnSaved>): void {
  const { k, d, B, T } = c, m = d.attention.mla!, N = B * T, { nH, Dk, Dv } = dims(d);
  const nope = m.qkNopeDim, R = m.qkRopeDim, L = m.kvLoraRank, wA = L + R;
  let q: Float32Array;
  if (w.qA) {
    const qa = linearFwd(k, x, N, w.qA); // [N, qLora]
    s.qan = new Float32Array(qa.length);
    s.qa = rmsnormForward(s.qan, qa, w.qANorm!, N, m.qLoraRank!, d.rmsEps);
    q = linearFwd(k, s.qan, N, w.qB!); // [N, nH·Dk]
  } else {
    q = linearFwd(k, x, N, w.q!);
  }
  const ckv = linearFwd(k, x, N, w.kvA!); // [N, kvLora + R]
  const lat = new Float32Array(N * L); // [N, kvLora]
  for (let n = 0; n < N; n++) lat.set(ckv.subarray(n * wA, n * wA + L), n * L);
  s.latn = new Float32Array(N * L);
  s.lat = rmsnormForward(s.latn, lat, w.kvANorm!, N, L, d.rmsEps);
  const kvb = linearFwd(k, s.latn, N, w.kvB!); // [N, nH·(nope + Dv)]
  c.rope.apply(k, q, B, nH, Dk, nope);
  const kpe = ckv.slice(); // rope part rotated in place (the latent part is not used from here)
  c.rope.apply(k, kpe, B, 1, wA, L);
  const kk = new Float32Array(N * nH * Dk), v = new Float32Array(N * nH * Dv);
  const per = nope + Dv;
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < nH; h++) {
      const src = n * nH * per + h * per, dst = (n * nH + h) * Dk;
      kk.set(kvb.subarray(src, src + nope), dst);
      kk.set(kpe.subarray(n * wA + L, (n + 1) * wA), dst + nope);
      v.set(kvb.subarray(src + nope, src + per), (n * nH + h) * Dv);
    }
  }
  s.q = q; s.kk = kk; s.v = v; s.ckv = ckv;
}

function projectMlaBackward(c: AttnCtx, w: AttnWeights, s: AttnSaved, dq: Float32Array, dk: Float32Array,
                            dv: Float32Array, dx: Float32Array, g: Grads): void {
  const { k, d, B, T } = c, m = d.attention.mla!, N = B * T, { nH, Dk, Dv } = dims(d);
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
  c.rope.apply(k, dckv, B, 1, wA, L, true);
  const dlatn = new Float32Array(N * L);
  linearBackward(k, w.kvB!, s.latn!, dkvb, N, dlatn, g);
  const dlat = new Float32Array(N * L);
  rmsnormBackward(dlat, dlatn, s.lat!, w.kvANorm!, g.of(w.kvANorm!));
  for (let n = 0; n < N; n++) for (let j = 0; j < L; j++) dckv[n * wA + j] += dlat[n * L + j];
  linearBackward(k, w.kvA!, s.x, dckv, N, dx, g);
  // queries
  c.rope.apply(k, dq, B, nH, Dk, nope, true);
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

/**
 * row-wise softmax of S [T, T] with one extra logit `sink` per row in the denominator (gpt-oss's learned attention
 * sink): P_j = exp(S_j) / (Σ_i exp(S_i) + exp(sink)); the sink's own probability is not kept
 */
function softmaxWithSink(S: Float32Array, T: number, sink: number): void {
  for (let t = 0; t < T; t++) {
    const row = S.subarray(t * T, (t + 1) * T);
    let m = sink;
    for (let j = 0; j < T; j++) if (row[j] > m) m = row[j];
    let z = Math.exp(sink - m);
    for (let j = 0; j < T; j++) { const e = Math.exp(row[j] - m); row[j] = e; z += e; }
    for (let j = 0; j < T; j++) row[j] /= z;
  }
}

/** x [N, H] (normalised) → y [N, H], with what the backward needs */
export function attentionForward(c: AttnCtx, w: AttnWeights, x: Float32Array): { y: Float32Array; s: AttnSaved } {
  const { k, d, B, T, window } = c, a = d.attention, N = B * T, { nH, nKV, Dk, Dv } = dims(d);
  const p: Partial<AttnSaved> = { x };
  if (a.kind === 'mla') projectMla(c, w, x, p); else projectGqa(c, w, x, p);
  const s = p as AttnSaved;
  const kvH = a.kind === 'mla' ? nH : nKV, group = nH / kvH;
  s.probs = new Float32Array(B * nH * T * T);
  s.out = new Float32Array(N * nH * Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group);
      const P = s.probs.subarray((b * nH + h) * T * T, (b * nH + h + 1) * T * T); // [T, T]
      // P = softmax(mask(scale · q_h · k_hᵀ))
      k.sgemm(false, true, T, T, Dk, a.scale, s.q.subarray(b * T * nH * Dk + h * Dk), nH * Dk,
        s.kk.subarray(b * T * kvH * Dk + kvh * Dk), kvH * Dk, 0, P, T);
      for (let t = 0; t < T; t++) maskRow(P, t * T, T, t, window);
      if (a.sinks) softmaxWithSink(P, T, w.sinks![h]);
      else k.softmax(P, T, T);
      // out_h[T, Dv] = P · v_h
      k.sgemm(false, false, T, Dv, T, 1, P, T, s.v.subarray(b * T * kvH * Dv + kvh * Dv), kvH * Dv, 0,
        s.out.subarray(b * T * nH * Dv + h * Dv), nH * Dv);
    }
  }
  return { y: linearFwd(k, s.out, N, w.o), s };
}

/** dy [N, H] → dx [N, H] (+=), weight gradients into g */
export function attentionBackward(c: AttnCtx, w: AttnWeights, s: AttnSaved, dy: Float32Array, dx: Float32Array, g: Grads): void {
  const { k, d, B, T } = c, a = d.attention, N = B * T, { nH, nKV, Dk, Dv } = dims(d);
  const kvH = a.kind === 'mla' ? nH : nKV, group = nH / kvH;
  const dout = new Float32Array(N * nH * Dv); // [N, nH·Dv]
  linearBackward(k, w.o, s.out, dy, N, dout, g);
  const dq = new Float32Array(s.q.length), dk = new Float32Array(s.kk.length), dv = new Float32Array(s.v.length);
  const dP = new Float32Array(T * T); // [T, T]
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group);
      const P = s.probs.subarray((b * nH + h) * T * T, (b * nH + h + 1) * T * T);
      const qo = b * T * nH * Dk + h * Dk, ko = b * T * kvH * Dk + kvh * Dk;
      const vo = b * T * kvH * Dv + kvh * Dv, oo = b * T * nH * Dv + h * Dv;
      // dP[T, T] = dout_h · v_hᵀ;  dv_h[T, Dv] += Pᵀ · dout_h
      k.sgemm(false, true, T, T, Dv, 1, dout.subarray(oo), nH * Dv, s.v.subarray(vo), kvH * Dv, 0, dP, T);
      k.sgemm(true, false, T, Dv, T, 1, P, T, dout.subarray(oo), nH * Dv, 1, dv.subarray(vo), kvH * Dv);
      // softmax backward: dS = P ⊙ (dP − Σ_j P ⊙ dP); a sink (gpt-oss) is one more logit that carries no value:
      // its probability 1 − Σ_j P_j gets dP = 0, so d sink = −(1 − Σ_j P_j) · Σ_j P_j dP_j
      let dSink = 0;
      for (let t = 0; t < T; t++) {
        let dot = 0, mass = 0;
        for (let j = 0; j < T; j++) { dot += P[t * T + j] * dP[t * T + j]; mass += P[t * T + j]; }
        for (let j = 0; j < T; j++) dP[t * T + j] = P[t * T + j] * (dP[t * T + j] - dot);
        if (a.sinks) dSink -= (1 - mass) * dot;
      }
      if (a.sinks) g.of(w.sinks!)[h] += dSink;
      // dq_h[T, Dk] += scale · dS · k_h;  dk_h[T, Dk] += scale · dSᵀ · q_h
      k.sgemm(false, false, T, Dk, T, a.scale, dP, T, s.kk.subarray(ko), kvH * Dk, 1, dq.subarray(qo), nH * Dk);
      k.sgemm(true, false, T, Dk, T, a.scale, dP, T, s.q.subarray(qo), nH * Dk, 1, dk.subarray(ko), kvH * Dk);
    }
  }
  if (a.kind === 'mla') projectMlaBackward(c, w, s, dq, dk, dv, dx, g);
  else projectGqaBackward(c, w, s, dq, dk, dv, dx, g);
}
