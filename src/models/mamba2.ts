/**
 * The Mamba-2 mixer (Granite 4.0-H's `linear_attention` layers; transformers' GraniteMoeHybridMambaLayer / BambaMixer,
 * its torch paths): the forward in two forms that compute the same thing, and its backward.
 *  - `mamba2Forward`, the engine's: the selective state-space recurrence one token at a time, its state carried in the
 *    layer's cache from call to call — the conv window (the last K − 1 conv inputs) and, per head, S [P, N]. One pass
 *    serves a prompt and a decode step.
 *  - `mamba2Reference`, the slow obvious one: one whole sequence from zeros, the conv over the zero-padded sequence and
 *    the scan written as its quadratic ("attention-like", SSD) form, plain f64 loops. test/mamba2.test.ts holds the two
 *    together; transformers' chunked scan is this same quadratic form within a chunk plus the recurrence across chunks.
 *
 * `mamba2Backward`, below the forward, is the training pass's (fresh sequences): the recurrence run backwards over the
 * states the saving forward kept ([N, nH, P, N_s]: memory for small models, what the trainer trains).
 *
 * x [T, H] of one sequence (I = nH·P the inner width, G groups of the N-wide B and C, C_ch = I + 2·G·N) →
 *   in_proj [H → I + C_ch + nH]: z [I] (the gate) | xBC [C_ch] | dt [nH];
 *   xBC → causal depthwise conv1d (kernel K, bias) over the previous inputs → SiLU → x [I] | B [G·N] | C [G·N];
 *   per head h (group g = ⌊h / (nH / G)⌋): Δ = clamp(softplus(dt + dt_bias), time_step_limit), A = −exp(A_log),
 *     per token  S ← S · exp(Δ·A) + Δ · x_h ⊗ B_g   (S [P, N]);   y_h = S · C_g + D_h · x_h;
 *   y [I] · SiLU(z) → RMSNorm over I (weight norm.weight; the gated norm: gate first) → out_proj [I → H].
 * Δ is clamped at every token, prompt or decode step; transformers clamps it in its chunked prefill only (its one-token
 * selective_state_update does not), which differs only for a time_step_limit other than the published (0, ∞): softplus
 * is positive.
 */
import { MoekitError } from '../util/errors.js';
import type { Grads } from '../tensor/grads.js';
import type { Linear } from '../tensor/linear.js';
import { linearBackward, linearFwd } from '../tensor/linear.js';
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

/** what the backward reads, per token n of the N = B·T (a training pass: every sequence from a zero state) */
export interface Mamba2Saved {
  x: Float32Array; // [N, H] the normalised input, in_proj's
  zxd: Float32Array; // [N, I + C_ch + nH] in_proj's output
  pre: Float32Array; // [N, C_ch] the conv's output before SiLU
  xbc: Float32Array; // [N, C_ch] after SiLU: x | B | C
  dt: Float32Array; // [N, nH] Δ
  S: Float32Array; // [N, nH, P, N_s] each head's state after token n
  y: Float32Array; // [N, I] the scan's output, before the gated norm
  core: Float32Array; // [N, I] the gated norm's output, out_proj's input
}

/** the mixer's widths: inner I = nH·P, conv channels C_ch = I + 2·G·N, in_proj rows I + C_ch + nH */
export function mamba2Dims(m: Mamba2Desc): { I: number; Cch: number; proj: number } {
  const I = m.nHeads * m.headDim, Cch = I + 2 * m.nGroups * m.dState;
  return { I, Cch, proj: I + Cch + m.nHeads };
}

const f = Math.fround;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const silu = (x: number) => x * sigmoid(x);
/** d SiLU(x) / dx */
const dsilu = (x: number) => { const s = sigmoid(x); return s * (1 + x * (1 - s)); };
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

/**
 * x [B·T, H] (normalised) → y [B·T, H]; each sequence's state in kv[b] is read and advanced by its T tokens. With
 * `save` (training: every state fresh), what the backward reads.
 */
export function mamba2Forward(k: Kernels, d: ModelDesc, w: Mamba2Weights, x: Float32Array, B: number, T: number,
                              kv: LayerKv[], save = false): { y: Float32Array; s?: Mamba2Saved } {
  const m = d.mamba2!, N = B * T;
  const { nHeads: nH, headDim: P, dState: Ns, convKernel: K } = m;
  const { I, Cch, proj } = mamba2Dims(m);
  const perGroup = nH / m.nGroups;
  const zxd = linearFwd(k, x, N, w.inProj); // [N, I + C_ch + nH]
  const core = new Float32Array(N * I); // [N, I] gated, normalised scan outputs
  const xbc = new Float32Array(Cch); // [C_ch] after conv and SiLU
  const y = new Float64Array(I); // [I] scan output of one token
  const sv = save ? {
    x, zxd, pre: new Float32Array(N * Cch), xbc: new Float32Array(N * Cch), dt: new Float32Array(N * nH),
    S: new Float32Array(N * nH * P * Ns), y: new Float32Array(N * I), core,
  } : undefined;
  for (let b = 0; b < B; b++) {
    if (save && kv[b].rec) throw new MoekitError('a saving (training) Mamba-2 pass starts every sequence from a zero state');
    const st = stateOf(kv[b], m);
    for (let t = 0; t < T; t++) {
      const n = b * T + t, row = n * proj;
      // causal depthwise conv over [previous K − 1 inputs, this one] + bias, then SiLU; the window moves on
      for (let c = 0; c < Cch; c++) {
        let s = w.convBias ? w.convBias[c] : 0;
        for (let j = 0; j < K - 1; j++) s += w.conv[c * K + j] * st.conv[j * Cch + c];
        s += w.conv[c * K + K - 1] * zxd[row + I + c];
        xbc[c] = f(silu(f(s)));
        if (sv) sv.pre[n * Cch + c] = s;
      }
      sv?.xbc.set(xbc, n * Cch);
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
        if (sv) { sv.dt[n * nH + h] = dt; sv.S.set(S, (n * nH + h) * P * Ns); }
      }
      sv?.y.set(y, n * I);
      gatedNorm(y, zxd, row, w.norm, d.rmsEps, core.subarray(n * I, (n + 1) * I));
    }
  }
  return { y: linearFwd(k, core, N, w.out), s: sv }; // [N, H]
}

/**
 * Backward of mamba2Forward (B sequences of T tokens, each from a zero state): dy [N, H] the gradient of the output in;
 * dx [N, H] += the gradient of the input; every weight's gradient into g.
 */
export function mamba2Backward(k: Kernels, d: ModelDesc, w: Mamba2Weights, s: Mamba2Saved, B: number, T: number,
                               dy: Float32Array, dx: Float32Array, g: Grads): void {
  const m = d.mamba2!, N = B * T;
  const { nHeads: nH, headDim: P, dState: Ns, convKernel: K, nGroups: G } = m;
  const { I, Cch, proj } = mamba2Dims(m);
  const perGroup = nH / G;
  const dcore = new Float32Array(N * I); // [N, I]
  linearBackward(k, w.out, s.core, dy, N, dcore, g);
  const dzxd = new Float32Array(N * proj); // [N, I + C_ch + nH]
  const dY = new Float64Array(N * I); // [N, I] gradient of the scan output
  // gated norm: out = w ⊙ v · r, v = y ⊙ SiLU(z), r = (mean(v²) + ε)^(−1/2)
  const dnw = g.of(w.norm), v = new Float64Array(I);
  for (let n = 0; n < N; n++) {
    let ms = 0;
    for (let i = 0; i < I; i++) { v[i] = s.y[n * I + i] * silu(s.zxd[n * proj + i]); ms += v[i] * v[i]; }
    const r = 1 / Math.sqrt(ms / I + d.rmsEps);
    let dot = 0;
    for (let i = 0; i < I; i++) dot += dcore[n * I + i] * w.norm[i] * v[i];
    for (let i = 0; i < I; i++) {
      const go = dcore[n * I + i], z = s.zxd[n * proj + i];
      dnw[i] += go * v[i] * r;
      const dv = r * go * w.norm[i] - (v[i] * r * r * r * dot) / I;
      dY[n * I + i] = dv * silu(z);
      dzxd[n * proj + i] = dv * s.y[n * I + i] * dsilu(z);
    }
  }
  // the scan, backwards in time per sequence and head: Gs = ∂L/∂S_t, carried to t − 1 through exp(Δ·A)
  const dxbc = new Float64Array(N * Cch); // [N, C_ch]
  const ddt = new Float64Array(N * nH); // [N, nH]
  const dD = g.of(w.D), daLog = g.of(w.aLog), Gs = new Float64Array(P * Ns);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      const grp = Math.floor(h / perGroup), bOff = I + grp * Ns, cOff = I + G * Ns + grp * Ns, A = -Math.exp(w.aLog[h]);
      Gs.fill(0);
      let dA = 0;
      for (let t = T - 1; t >= 0; t--) {
        const n = b * T + t, xr = n * Cch, dt = s.dt[n * nH + h], a = Math.exp(dt * A);
        const St = (n * nH + h) * P * Ns, Sp = t > 0 ? ((n - 1) * nH + h) * P * Ns : -1;
        let da = 0, dd = 0;
        for (let p = 0; p < P; p++) {
          // y = S_t · C + D · x
          const dyv = dY[n * I + h * P + p], xv = s.xbc[xr + h * P + p];
          dD[h] += dyv * xv;
          dxbc[xr + h * P + p] += w.D[h] * dyv;
          let dxv = 0;
          for (let j = 0; j < Ns; j++) {
            const gs = Gs[p * Ns + j] + dyv * s.xbc[xr + cOff + j];
            dxbc[xr + cOff + j] += dyv * s.S[St + p * Ns + j];
            // S_t = a · S_{t−1} + Δ · x ⊗ B
            if (Sp >= 0) da += gs * s.S[Sp + p * Ns + j];
            dd += gs * xv * s.xbc[xr + bOff + j];
            dxv += gs * s.xbc[xr + bOff + j];
            dxbc[xr + bOff + j] += dt * gs * xv;
            Gs[p * Ns + j] = a * gs;
          }
          dxbc[xr + h * P + p] += dt * dxv;
        }
        ddt[n * nH + h] = dd + da * a * A;
        dA += da * a * dt;
      }
      daLog[h] += dA * A; // A = −exp(A_log): dA / dA_log = A
    }
  }
  // Δ = clamp(softplus(dt + dt_bias)): softplus' = σ, nothing where the clamp holds
  const ddb = g.of(w.dtBias);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < nH; h++) {
      const u = f(s.zxd[n * proj + I + Cch + h] + w.dtBias[h]), sp = softplus(u);
      if (sp < m.dtMin || sp > m.dtMax) continue;
      const du = ddt[n * nH + h] * (u > 20 ? 1 : sigmoid(u));
      dzxd[n * proj + I + Cch + h] = du;
      ddb[h] += du;
    }
  }
  // SiLU, then the causal depthwise conv over each sequence's in_proj xBC columns
  const dw = g.of(w.conv), dcb = w.convBias ? g.of(w.convBias) : null;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      for (let c = 0; c < Cch; c++) {
        const dp = dxbc[n * Cch + c] * dsilu(s.pre[n * Cch + c]);
        if (dcb) dcb[c] += dp;
        for (let j = 0; j < K; j++) {
          const u = t - (K - 1) + j;
          if (u < 0) continue;
          dw[c * K + j] += dp * s.zxd[(b * T + u) * proj + I + c];
          dzxd[(b * T + u) * proj + I + c] += w.conv[c * K + j] * dp;
        }
      }
    }
  }
  linearBackward(k, w.inProj, s.x, dzxd, N, dx, g);
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
