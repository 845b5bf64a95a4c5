/**
 * The Mamba-2 mixer (Granite 4.0-H's `linear_attention` layers; transformers' GraniteMoeHybridMambaLayer / BambaMixer,
 * its torch paths), forward only, in two forms that compute the same thing:
 *  - `mamba2Forward`, the engine's: the selective state-space recurrence one token at a time, its state carried in the
 *    layer's cache from call to call — the conv window (the last K − 1 conv inputs) and, per head, S [P, N]. One pass
 *    serves a prompt and a decode step.
 *  - `mamba2Reference`, the slow obvious one: one whole sequence from zeros, the conv over the zero-padded sequence and
 *    the scan written as its quadratic ("attention-like", SSD) form, plain f64 loops. test/mamba2.test.ts holds the two
 *    together; transformers' chunked scan is this same quadratic form within a chunk plus the recurrence across chunks.
 *
 * x [T, H] of one sequence (I = nH·P the inner width, G groups of the N-wide B and C, C_ch = I + 2·G·N) →
 *   in_proj [H → I + C_ch + nH]: z [I] (the gate) | xBC [C_ch] | dt [nH];
 *   xBC → causal depthwise conv1d (kernel K, bias) over the previous inputs → SiLU → x [I] | B [G·N] | C [G·N];
 *   per head h (group g = ⌊h / (nH / G)⌋): Δ = clamp(softplus(dt + dt_bias), time_step_limit), A = −exp(A_log),
 *     per token  S ← S · exp(Δ·A) + Δ · x_h ⊗ B_g   (S [P, N]);   y_h = S · C_g + D_h · x_h;
 *   y [I] · SiLU(z) → RMSNorm over I (weight norm.weight; the gated norm: gate first) → out_proj [I → H].
 */
import type { Linear } from '../tensor/linear.js';
import { linearFwd } from '../tensor/linear.js';
import type { Kernels } from '../tensor/kernels.js';
import { weightF32 } from '../tensor/weight.js';
import type { Mamba2Desc, ModelDesc } from './desc.js';
import type { LayerKv } from './kv-cache.js';

export interface Mamba2Weights {
  inProj: Linear; // [I + C_ch + nH, H]: z | xBC | dt
  conv: Float32Array; // [C_ch, K] depthwise kernel (conv1d.weight [C_ch, 1, K])
  convBias: Float32Array | null; // [C_ch]
  dtBias: Float32Array; // [nH]
  aLog: Float32Array; // [nH]
  D: Float32Array; // [nH] skip
  norm: Float32Array; // [I] gated RMSNorm weight
  out: Linear; // [H, I]
}

/** the mixer's widths: inner I = nH·P, conv channels C_ch = I + 2·G·N, in_proj rows I + C_ch + nH */
export function mamba2Dims(m: Mamba2Desc): { I: number; Cch: number; proj: number } {
  const I = m.nHeads * m.headDim, Cch = I + 2 * m.nGroups * m.dState;
  return { I, Cch, proj: I + Cch + m.nHeads };
}

const f = Math.fround;
const silu = (x: number) => x / (1 + Math.exp(-x));
/** torch's softplus (beta 1, threshold 20) */
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));
/** Δ of head h from its raw projection: softplus(dt + dt_bias) clamped to time_step_limit */
const delta = (m: Mamba2Desc, raw: number, bias: number) => Math.min(m.dtMax, Math.max(m.dtMin, softplus(f(raw + bias))));

/** the state a sequence carries through a Mamba-2 layer, created on first use (zeros: the sequence's start) */
function stateOf(kv: LayerKv, m: Mamba2Desc): { conv: Float32Array; S: Float32Array } {
  const { Cch } = mamba2Dims(m);
  kv.conv ??= new Float32Array(Cch * (m.convKernel - 1)); // [K − 1, C_ch] the previous conv inputs, oldest first
  kv.rec ??= new Float32Array(m.nHeads * m.headDim * m.dState); // [nH, P, N]
  return { conv: kv.conv, S: kv.rec };
}

/** y [I] · SiLU(z) → RMSNorm over I → · weight, in place into out [I] (f32 as transformers computes it) */
function gatedNorm(y: Float64Array, z: Float32Array, zOff: number, w: Float32Array, eps: number, out: Float32Array): void {
  const I = w.length;
  let ms = 0;
  for (let i = 0; i < I; i++) { const v = f(f(y[i]) * f(silu(z[zOff + i]))); out[i] = v; ms += v * v; }
  const rstd = 1 / Math.sqrt(f(ms / I) + eps);
  for (let i = 0; i < I; i++) out[i] = f(w[i] * f(out[i] * rstd));
}

/** x [B·T, H] (normalised) → [B·T, H]; each sequence's state in kv[b] is read and advanced by its T tokens */
export function mamba2Forward(k: Kernels, d: ModelDesc, w: Mamba2Weights, x: Float32Array, B: number, T: number,
                              kv: LayerKv[]): Float32Array {
  const m = d.mamba2!, N = B * T;
  const { nHeads: nH, headDim: P, dState: Ns, convKernel: K } = m;
  const { I, Cch, proj } = mamba2Dims(m);
  const perGroup = nH / m.nGroups;
  const zxd = linearFwd(k, x, N, w.inProj); // [N, I + C_ch + nH]
  const core = new Float32Array(N * I); // [N, I] gated, normalised scan outputs
  const xbc = new Float32Array(Cch); // [C_ch] after conv and SiLU
  const y = new Float64Array(I); // [I] scan output of one token
  for (let b = 0; b < B; b++) {
    const st = stateOf(kv[b], m);
    for (let t = 0; t < T; t++) {
      const n = b * T + t, row = n * proj;
      // causal depthwise conv over [previous K − 1 inputs, this one] + bias, then SiLU; the window moves on
      for (let c = 0; c < Cch; c++) {
        let s = w.convBias ? w.convBias[c] : 0;
        for (let j = 0; j < K - 1; j++) s += w.conv[c * K + j] * st.conv[j * Cch + c];
        s += w.conv[c * K + K - 1] * zxd[row + I + c];
        xbc[c] = f(silu(f(s)));
      }
      st.conv.copyWithin(0, Cch);
      st.conv.set(zxd.subarray(row + I, row + I + Cch), (K - 2) * Cch);
      for (let h = 0; h < nH; h++) {
        const g = Math.floor(h / perGroup), bOff = I + g * Ns, cOff = I + m.nGroups * Ns + g * Ns;
        const dt = delta(m, zxd[row + I + Cch + h], w.dtBias[h]);
        const dA = Math.exp(dt * -Math.exp(w.aLog[h]));
        const S = st.S.subarray(h * P * Ns, (h + 1) * P * Ns); // [P, N]
        for (let p = 0; p < P; p++) {
          const xv = xbc[h * P + p], dx = dt * xv;
          let acc = 0;
          for (let s = 0; s < Ns; s++) {
            const v = S[p * Ns + s] * dA + dx * xbc[bOff + s];
            S[p * Ns + s] = v;
            acc += v * xbc[cOff + s];
          }
          y[h * P + p] = acc + w.D[h] * xv;
        }
      }
      gatedNorm(y, zxd, row, w.norm, d.rmsEps, core.subarray(n * I, (n + 1) * I));
    }
  }
  return linearFwd(k, core, N, w.out); // [N, H]
}

/** y[out] = W x + b in f64 (W [out, in] of any stored dtype, widened) */
function matvec(k: Kernels, L: Linear, x: ArrayLike<number>): Float64Array {
  const W = weightF32(k, L.w), y = new Float64Array(L.out);
  for (let o = 0; o < L.out; o++) {
    let s = L.b ? L.b[o] : 0;
    for (let i = 0; i < L.in; i++) s += W[o * L.in + i] * x[i];
    y[o] = s;
  }
  return y;
}

/**
 * The slow, obvious Mamba-2 of one whole sequence x [T, H] from a zero state → [T, H]: the conv over the sequence
 * padded with K − 1 zeros, the scan as its quadratic form
 *   y_t = Σ_{s ≤ t} (C_t · B_s) · exp(A · Σ_{s < r ≤ t} Δ_r) · Δ_s · x_s + D · x_t,
 * every product a plain f64 loop.
 */
export function mamba2Reference(k: Kernels, d: ModelDesc, w: Mamba2Weights, x: Float32Array, T: number): Float32Array {
  const m = d.mamba2!, H = d.hidden;
  const { nHeads: nH, headDim: P, dState: Ns, convKernel: K, nGroups: G } = m;
  const { I, Cch } = mamba2Dims(m);
  const zxd = Array.from({ length: T }, (_, t) => matvec(k, w.inProj, x.subarray(t * H, (t + 1) * H))); // T × [I + C_ch + nH]
  // conv: out[t][c] = bias[c] + Σ_j kernel[c, j] · in[t − (K − 1) + j][c], zeros before the sequence
  const xbc = Array.from({ length: T }, (_, t) => {
    const o = new Float64Array(Cch);
    for (let c = 0; c < Cch; c++) {
      let s = w.convBias ? w.convBias[c] : 0;
      for (let j = 0; j < K; j++) {
        const u = t - (K - 1) + j;
        if (u >= 0) s += w.conv[c * K + j] * zxd[u][I + c];
      }
      o[c] = silu(s);
    }
    return o;
  });
  const out = new Float32Array(T * H);
  const y = new Float64Array(I), v = new Float64Array(I);
  const dts = Array.from({ length: T }, (_, t) => Float64Array.from({ length: nH }, (_, h) => delta(m, zxd[t][I + Cch + h], w.dtBias[h])));
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nH; h++) {
      const g = Math.floor(h / (nH / G)), A = -Math.exp(w.aLog[h]);
      for (let p = 0; p < P; p++) {
        let acc = 0;
        for (let s = 0; s <= t; s++) {
          let cb = 0; // C_t · B_s
          for (let i = 0; i < Ns; i++) cb += xbc[t][I + G * Ns + g * Ns + i] * xbc[s][I + g * Ns + i];
          let sum = 0; // Σ_{s < r ≤ t} Δ_r
          for (let r = s + 1; r <= t; r++) sum += dts[r][h];
          acc += cb * Math.exp(A * sum) * dts[s][h] * xbc[s][h * P + p];
        }
        y[h * P + p] = acc + w.D[h] * xbc[t][h * P + p];
      }
    }
    // gated RMSNorm: v = y · SiLU(z), v / √(mean(v²) + ε) · weight
    let ms = 0;
    for (let i = 0; i < I; i++) { v[i] = y[i] * silu(zxd[t][i]); ms += v[i] * v[i]; }
    const rstd = 1 / Math.sqrt(ms / I + d.rmsEps);
    for (let i = 0; i < I; i++) v[i] = w.norm[i] * v[i] * rstd;
    out.set(Float32Array.from(matvec(k, w.out, v)), t * H);
  }
  return out;
}
