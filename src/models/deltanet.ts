/**
 * Gated DeltaNet linear attention (Qwen3-Next's `linear_attention` layers), forward only, written as its recurrence
 * (transformers' torch_recurrent_gated_delta_rule; its chunked form computes the same sums in another order, and the
 * fixtures hold this one to it). One pass serves a prompt and a decode step: the layer's cache is its state, carried
 * from call to call — the conv window (the last K − 1 mixed q, k, v inputs) and, per value head, S [Dk, Dv].
 *
 * x [T, H] of one sequence →
 *   in_proj_qkvz [H → nK·(2Dk + 2r·Dv)] grouped per key head g: q_g [Dk], k_g [Dk], v_g [r·Dv], z_g [r·Dv] (r = nV / nK);
 *   in_proj_ba [H → nK·2r]: b_g [r], a_g [r];
 *   mixed = [q | k | v] [T, C] (C = 2·nK·Dk + nV·Dv) → causal depthwise conv1d (kernel K, over the previous inputs) → SiLU;
 *   β = σ(b), g = −exp(A_log) · softplus(a + dt_bias)  [T, nV];
 *   per value head h (key head ⌊h / r⌋): q, k L2-normalised, q / √Dk; per token
 *     S ← S · exp(g);  S ← S + k ⊗ β (v − Sᵀk);  o = Sᵀq;
 *   o → RMSNorm over Dv (weight norm.weight) · SiLU(z) → out_proj [nV·Dv → H].
 */
import type { Linear } from '../tensor/linear.js';
import { linearFwd } from '../tensor/linear.js';
import type { Kernels } from '../tensor/kernels.js';
import type { DeltaNetDesc, ModelDesc } from './desc.js';
import type { LayerKv } from './kv-cache.js';

export interface DeltaNetWeights {
  qkvz: Linear; // [nK·(2Dk + 2r·Dv), H]
  ba: Linear; // [2nV, H]
  conv: Float32Array; // [C, K] depthwise kernel (conv1d.weight [C, 1, K])
  aLog: Float32Array; // [nV]
  dtBias: Float32Array; // [nV]
  norm: Float32Array; // [Dv] gated RMSNorm weight
  out: Linear; // [H, nV·Dv]
}

const f = Math.fround;
const silu = (x: number) => x / (1 + Math.exp(-x));
/** torch's softplus (beta 1, threshold 20) */
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** the state a sequence carries through a DeltaNet layer, created on first use (zeros: the sequence's start) */
function stateOf(kv: LayerKv, dn: DeltaNetDesc): { conv: Float32Array; S: Float32Array } {
  const C = 2 * dn.nK * dn.Dk + dn.nV * dn.Dv;
  kv.conv ??= new Float32Array(C * (dn.convKernel - 1)); // [K − 1, C] the previous mixed inputs, oldest first
  kv.rec ??= new Float32Array(dn.nV * dn.Dk * dn.Dv); // [nV, Dk, Dv]
  return { conv: kv.conv, S: kv.rec };
}

/** x [B·T, H] (normalised) → y [B·T, H]; each sequence's state in kv[b] is read and advanced by its T tokens */
export function deltanetForward(k: Kernels, d: ModelDesc, w: DeltaNetWeights, x: Float32Array, B: number, T: number,
                                kv: LayerKv[]): Float32Array {
  const dn = d.deltanet!, H = d.hidden, N = B * T;
  const { nK, nV, Dk, Dv, convKernel: K } = dn;
  const r = nV / nK, C = 2 * nK * Dk + nV * Dv, per = 2 * Dk + 2 * r * Dv;
  const qkvz = linearFwd(k, x, N, w.qkvz); // [N, nK·per]
  const ba = linearFwd(k, x, N, w.ba); // [N, nK·2r]
  const core = new Float32Array(N * nV * Dv); // [N, nV·Dv] gated, normalised outputs
  const mixed = new Float32Array(C), conv = new Float32Array(C);
  const q = new Float64Array(Dk), kk = new Float64Array(Dk), kvm = new Float64Array(Dv), o = new Float64Array(Dv);
  for (let b = 0; b < B; b++) {
    const st = stateOf(kv[b], dn);
    for (let t = 0; t < T; t++) {
      const n = b * T + t, row = qkvz.subarray(n * nK * per, (n + 1) * nK * per);
      // mixed = [q (nK·Dk) | k (nK·Dk) | v (nV·Dv)] from the per-key-head groups
      for (let g = 0; g < nK; g++) {
        const o0 = g * per;
        for (let i = 0; i < Dk; i++) { mixed[g * Dk + i] = row[o0 + i]; mixed[nK * Dk + g * Dk + i] = row[o0 + Dk + i]; }
        for (let i = 0; i < r * Dv; i++) mixed[2 * nK * Dk + g * r * Dv + i] = row[o0 + 2 * Dk + i];
      }
      // causal depthwise conv over [previous K − 1 inputs, this one], then SiLU; the window moves on
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < K - 1; j++) s += w.conv[c * K + j] * st.conv[j * C + c];
        s += w.conv[c * K + K - 1] * mixed[c];
        conv[c] = f(silu(f(s)));
      }
      st.conv.copyWithin(0, C);
      st.conv.set(mixed, (K - 2) * C);
      for (let h = 0; h < nV; h++) {
        const g = Math.floor(h / r);
        const bRaw = ba[n * nK * 2 * r + g * 2 * r + (h % r)], aRaw = ba[n * nK * 2 * r + g * 2 * r + r + (h % r)];
        const beta = 1 / (1 + Math.exp(-bRaw));
        const decay = Math.exp(-Math.exp(w.aLog[h]) * softplus(aRaw + w.dtBias[h]));
        // q, k of key head g: L2-normalised (eps 1e-6 inside the root), q scaled by 1/√Dk
        let sq = 0, sk = 0;
        for (let i = 0; i < Dk; i++) { q[i] = conv[g * Dk + i]; kk[i] = conv[nK * Dk + g * Dk + i]; sq += q[i] * q[i]; sk += kk[i] * kk[i]; }
        const iq = 1 / Math.sqrt(sq + 1e-6) / Math.sqrt(Dk), ik = 1 / Math.sqrt(sk + 1e-6);
        for (let i = 0; i < Dk; i++) { q[i] *= iq; kk[i] *= ik; }
        const S = st.S.subarray(h * Dk * Dv, (h + 1) * Dk * Dv); // [Dk, Dv]
        const v0 = 2 * nK * Dk + h * Dv;
        kvm.fill(0);
        for (let i = 0; i < Dk; i++) for (let j = 0; j < Dv; j++) { S[i * Dv + j] *= decay; kvm[j] += S[i * Dv + j] * kk[i]; }
        o.fill(0);
        for (let j = 0; j < Dv; j++) kvm[j] = (conv[v0 + j] - kvm[j]) * beta; // delta
        for (let i = 0; i < Dk; i++) for (let j = 0; j < Dv; j++) { S[i * Dv + j] += kk[i] * kvm[j]; o[j] += S[i * Dv + j] * q[i]; }
        // gated RMSNorm over Dv, times SiLU(z)
        let ms = 0;
        for (let j = 0; j < Dv; j++) ms += f(o[j]) * f(o[j]);
        const rstd = 1 / Math.sqrt(ms / Dv + d.rmsEps);
        const z0 = g * per + 2 * Dk + r * Dv + (h % r) * Dv;
        for (let j = 0; j < Dv; j++) core[n * nV * Dv + h * Dv + j] = f(f(f(o[j]) * rstd) * w.norm[j]) * silu(row[z0 + j]);
      }
    }
  }
  return linearFwd(k, core, N, w.out); // [N, H]
}
