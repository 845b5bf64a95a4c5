/**
 * Lightning attention (MiniMax-Text-01 / MiniMax-M1 `linear_attention` layers): linear attention with a fixed
 * exponential decay per head, forward only. Per head, with decay rate s (slope) and no softmax and no scale:
 *
 *   o_t = Σ_{j ≤ t} e^{−s(t − j)} (q_t · k_j) v_j  (+ e^{−s(t + 1)} q_t S₀ when a state S₀ [Dk, Dv] is carried in)
 *
 * written three ways, each holding the same sums in another order:
 *   lightningNaive      the quadratic form with its decay mask (the slow, obvious reference; tests only);
 *   lightningBlocks     transformers' prefill: blocks of `blockSize` positions, inside a block (Q Kᵀ ⊙ decay) V, from
 *                       the earlier blocks (Q ⊙ e^{−s(i+1)}) S, then S ← e^{−s·n} S + (K ⊙ e^{−s(n−1−j)})ᵀ V — GEMMs;
 *   lightningRecurrent  transformers' decode: per token S ← e^{−s} S + k vᵀ, o = q S.
 * The carried S [nH, Dk, Dv] of each sequence is the layer's decode cache (LayerKv.rec), of fixed size.
 *
 * The layer (MiniMaxLightningAttention), x [T, H] of one sequence (normalised) →
 *   qkv = SiLU(qkv_proj x) [T, nH·3D], per head [q | k | v];  o per head as above [T, nH·D];
 *   RMSNorm over nH·D (its own eps 1e-6) ⊙ σ(output_gate x) → out_proj [nH·D → H].
 * Slopes (transformers' get_slope_rate): s_h = (1 / 2^{8/nH})^{h+1} · (1 − l / (L − 1 + 1e−5) + 1e−5) for layer l of L.
 */
import type { Kernels } from '../tensor/kernels.js';
import type { Linear } from '../tensor/linear.js';
import { linearFwd } from '../tensor/linear.js';
import type { ModelDesc } from './desc.js';
import type { LayerKv } from './kv-cache.js';

export interface LightningWeights {
  qkv: Linear; // [nH·3D, H] per head [q | k | v]
  gate: Linear; // [nH·D, H] output_gate
  norm: Float32Array; // [nH·D] the RMSNorm over the heads' outputs
  out: Linear; // [H, nH·D]
  slope: Float32Array; // [nH] decay rate per head
}

/** transformers' MiniMaxLightningAttention norm: MiniMaxRMSNorm(nH·D) with its default eps, not rms_norm_eps */
export const LIGHTNING_NORM_EPS = 1e-6;

/** the decay rate of each head of decoder layer `layer` of `L` (get_slope_rate, in f32 as torch computes it) */
export function lightningSlopes(nH: number, layer: number, L: number): Float32Array {
  const base = 1 / 2 ** (8 / nH);
  const factor = Math.fround(1 - layer / (L - 1 + 1e-5) + 1e-5);
  return Float32Array.from({ length: nH }, (_, h) => Math.fround(Math.fround(base ** (h + 1)) * factor));
}

/**
 * The buffers transformers keeps beside each lightning layer's weights (and saves), from the slopes s [nH]:
 * query_decay [nH, bs, 1] = e^{−s(i+1)}, key_decay [nH, bs, 1] = e^{−s(bs−1−i)}, diagonal_decay [1, nH, bs, bs] =
 * e^{−s(i−j)} for i ≥ j, else 0.
 */
export function lightningDecayTables(s: Float32Array, bs: number): { query: Float32Array; key: Float32Array; diagonal: Float32Array } {
  const nH = s.length;
  const query = new Float32Array(nH * bs), key = new Float32Array(nH * bs), diagonal = new Float32Array(nH * bs * bs);
  for (let h = 0; h < nH; h++) {
    for (let i = 0; i < bs; i++) {
      query[h * bs + i] = Math.exp(-s[h] * (i + 1));
      key[h * bs + i] = Math.exp(-s[h] * (bs - 1 - i));
      for (let j = 0; j <= i; j++) diagonal[(h * bs + i) * bs + j] = Math.exp(-s[h] * (i - j));
    }
  }
  return { query, key, diagonal };
}

/**
 * One head, the quadratic form: q, k [T, Dk], v [T, Dv] (row strides ldq, ldv) → o [T, Dv], and the state after T
 * tokens, from S0 [Dk, Dv] (zeros when null). Sums in f64. The slow, obvious reference of the two forms below.
 */
export function lightningNaive(q: Float32Array, k: Float32Array, v: Float32Array, T: number, Dk: number, Dv: number, s: number,
                               S0: Float32Array | null, ldq = Dk, ldv = Dv): { o: Float32Array; S: Float32Array } {
  const o = new Float32Array(T * Dv);
  const acc = new Float64Array(Dv);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j <= t; j++) {
      let qk = 0;
      for (let i = 0; i < Dk; i++) qk += q[t * ldq + i] * k[j * ldq + i];
      const w = Math.exp(-s * (t - j)) * qk;
      for (let c = 0; c < Dv; c++) acc[c] += w * v[j * ldv + c];
    }
    if (S0) {
      const dq = Math.exp(-s * (t + 1));
      for (let i = 0; i < Dk; i++) for (let c = 0; c < Dv; c++) acc[c] += dq * q[t * ldq + i] * S0[i * Dv + c];
    }
    for (let c = 0; c < Dv; c++) o[t * Dv + c] = acc[c];
  }
  // S_T = e^{−sT} S0 + Σ_j e^{−s(T−1−j)} k_j v_jᵀ
  const S = new Float32Array(Dk * Dv);
  for (let i = 0; i < Dk; i++) {
    for (let c = 0; c < Dv; c++) {
      let a = S0 ? Math.exp(-s * T) * S0[i * Dv + c] : 0;
      for (let j = 0; j < T; j++) a += Math.exp(-s * (T - 1 - j)) * k[j * ldq + i] * v[j * ldv + c];
      S[i * Dv + c] = a;
    }
  }
  return { o, S };
}

/**
 * One head, in blocks of bs positions (transformers' prefill): q, k [T, Dk] (row stride ldq), v [T, Dv] (row stride
 * ldv) → o [T, Dv] (row stride ldo); S [Dk, Dv] is read and advanced by the T tokens. Per block of n positions:
 *   o = (Q Kᵀ ⊙ M) V + (Q ⊙ e^{−s(i+1)}) S, M[i, j] = e^{−s(i−j)} (i ≥ j, else 0);
 *   S ← e^{−s·n} S + (K ⊙ e^{−s(n−1−j)})ᵀ V.
 */
export function lightningBlocks(kr: Kernels, q: Float32Array, k: Float32Array, v: Float32Array, T: number, Dk: number, Dv: number,
                                s: number, S: Float32Array, bs: number, o: Float32Array, ldq = Dk, ldv = Dv, ldo = Dv): void {
  const nb = Math.min(bs, T); // the longest block
  const pw = Float64Array.from({ length: nb + 1 }, (_, m) => Math.exp(-s * m)); // [nb + 1] e^{−s·m}
  const sc = new Float32Array(nb * nb); // [n, n] Q Kᵀ ⊙ M
  const qd = new Float32Array(nb * Dk); // [n, Dk] Q ⊙ query decay
  const kd = new Float32Array(nb * Dk); // [n, Dk] K ⊙ key decay
  for (let t0 = 0; t0 < T; t0 += bs) {
    const n = Math.min(bs, T - t0);
    const Q = q.subarray(t0 * ldq), K = k.subarray(t0 * ldq), V = v.subarray(t0 * ldv), O = o.subarray(t0 * ldo);
    // intra: (Q Kᵀ ⊙ M) V
    kr.sgemm(false, true, n, n, Dk, 1, Q, ldq, K, ldq, 0, sc, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sc[i * n + j] = j <= i ? sc[i * n + j] * pw[i - j] : 0;
    kr.sgemm(false, false, n, Dv, n, 1, sc, n, V, ldv, 0, O, ldo);
    // inter: (Q ⊙ e^{−s(i+1)}) S, added
    for (let i = 0; i < n; i++) for (let c = 0; c < Dk; c++) qd[i * Dk + c] = Q[i * ldq + c] * pw[i + 1];
    kr.sgemm(false, false, n, Dv, Dk, 1, qd, Dk, S, Dv, 1, O, ldo);
    // the state for the next block: S · e^{−s·n} + (K ⊙ e^{−s(n−1−j)})ᵀ V
    for (let j = 0; j < n; j++) for (let c = 0; c < Dk; c++) kd[j * Dk + c] = K[j * ldq + c] * pw[n - 1 - j];
    for (let i = 0; i < Dk * Dv; i++) S[i] *= pw[n];
    kr.sgemm(true, false, Dk, Dv, n, 1, kd, Dk, V, ldv, 1, S, Dv);
  }
}

/**
 * One head, token by token (transformers' decode): S ← e^{−s} S + k_t v_tᵀ, o_t = q_t S. Same strides as
 * lightningBlocks; S [Dk, Dv] read and advanced.
 */
export function lightningRecurrent(q: Float32Array, k: Float32Array, v: Float32Array, T: number, Dk: number, Dv: number, s: number,
                                   S: Float32Array, o: Float32Array, ldq = Dk, ldv = Dv, ldo = Dv): void {
  const ratio = Math.exp(-s);
  const acc = new Float64Array(Dv);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let i = 0; i < Dk; i++) {
      const ki = k[t * ldq + i], qi = q[t * ldq + i];
      for (let c = 0; c < Dv; c++) {
        const x = Math.fround(ratio * S[i * Dv + c] + ki * v[t * ldv + c]);
        S[i * Dv + c] = x;
        acc[c] += qi * x;
      }
    }
    for (let c = 0; c < Dv; c++) o[t * ldo + c] = acc[c];
  }
}

/**
 * x [B·T, H] (normalised) → y [B·T, H]. Each sequence's state in kv[b].rec [nH, D, D] (zeros at its start) is read and
 * advanced by its T tokens: a step of one token by the recurrence, longer runs (prefills) in blocks.
 */
export function lightningForward(kr: Kernels, d: ModelDesc, w: LightningWeights, x: Float32Array, B: number, T: number,
                                 kv: LayerKv[]): Float32Array {
  const { nHeads: nH, headDim: D, blockSize } = d.lightning!;
  const N = B * T, W = 3 * nH * D, HD = nH * D;
  const qkv = linearFwd(kr, x, N, w.qkv); // [N, nH·3D]
  for (let i = 0; i < qkv.length; i++) { const z = qkv[i]; qkv[i] = z / (1 + Math.exp(-z)); } // SiLU
  const core = new Float32Array(N * HD); // [N, nH·D]
  for (let b = 0; b < B; b++) {
    kv[b].rec ??= new Float32Array(nH * D * D); // [nH, Dk, Dv]
    for (let h = 0; h < nH; h++) {
      const S = kv[b].rec!.subarray(h * D * D, (h + 1) * D * D);
      const q = qkv.subarray(b * T * W + h * 3 * D), k = q.subarray(D), v = q.subarray(2 * D);
      const o = core.subarray(b * T * HD + h * D);
      if (T === 1) lightningRecurrent(q, k, v, T, D, D, w.slope[h], S, o, W, W, HD);
      else lightningBlocks(kr, q, k, v, T, D, D, w.slope[h], S, blockSize, o, W, W, HD);
    }
  }
  kr.rmsnorm(core, core, w.norm, N, HD, LIGHTNING_NORM_EPS);
  const g = linearFwd(kr, x, N, w.gate); // [N, nH·D]
  for (let i = 0; i < core.length; i++) core[i] *= 1 / (1 + Math.exp(-g[i]));
  return linearFwd(kr, core, N, w.out); // [N, H]
}
