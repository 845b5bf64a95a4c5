/**
 * Load balancing of the routers, each loss with its gradient with respect to the router logits beside it
 * (the selection counts as constant, as in every implementation):
 * - switch: Switch Transformer / GShard auxiliary loss (Fedus et al. 2021, eq. 4), as transformers'
 *   load_balancing_loss_func computes it: E · Σ_e f_e · P_e with f_e = count_e / N (assignments to e over
 *   the k slots, per token) and P_e the mean over tokens of the router's probability of e.
 * - seq: DeepSeek-V3's sequence-wise balance loss (DeepSeek-V3 report, eqs. 17-20): per sequence of T tokens,
 *   f_e = E / (K·T) · count_e, P_e = mean_t s'_{t,e} with s' the scores normalised per token; Σ_e f_e P_e,
 *   averaged over the sequences.
 * - global: the switch loss with f counted over the whole global batch (every micro-batch of the step,
 *   Qiu et al. 2025, "global-batch load balancing"): pass the global counts.
 * - zloss: router z-loss (ST-MoE, Zoph et al. 2022, eq. 5): mean_t (log Σ_e exp(logit_{t,e}))².
 * - auxiliary-loss-free balancing (DeepSeek-V3 §2.1.2): no loss; after each step the selection-only bias
 *   moves b_e ← b_e + γ · sign(mean load − load_e) (updateSelectionBias).
 * Per-layer statistics (max/mean load, normalised entropy of the load) come from the counts.
 */
import { scoresBackward, type Routing } from './router.js';
import type { MoeDesc } from './types.js';

export interface BalanceWeights {
  /** coefficient of the switch (GShard) auxiliary loss */
  switch?: number;
  /** coefficient of DeepSeek-V3's sequence-wise loss; needs the sequence length T */
  seq?: number;
  /** coefficient of the global-batch balance loss (counts from the whole step) */
  global?: number;
  /** coefficient of the router z-loss */
  zloss?: number;
}

export interface BalanceResult {
  /** Σ coefficient · loss for this layer */
  loss: number;
  /** each loss, unscaled */
  parts: { switch?: number; seq?: number; global?: number; zloss?: number };
  /** d loss / d router logits [N, E] */
  dlogits: Float32Array;
}

/**
 * the balance losses of one MoE layer's routing over N = B·T tokens; `globalCounts` [E] (assignments over the
 * global batch, and the token count) for the global loss
 */
export function balanceLoss(m: MoeDesc, r: Routing, N: number, T: number, w: BalanceWeights,
                            globalCounts?: { counts: Float64Array; tokens: number }): BalanceResult {
  const E = m.experts, K = r.K;
  const dl = new Float32Array(N * E);
  const parts: BalanceResult['parts'] = {};
  let loss = 0;
  // the probabilities the losses use, and the gradient of a loss with respect to them
  const dp = new Float64Array(N * E);
  const counts = new Float64Array(E);
  for (const e of r.experts) counts[e]++;
  const switchLike = (c: Float64Array, tokens: number, coef: number): number => {
    // E · Σ_e (c_e / tokens) · mean_n p[n, e]
    let l = 0;
    for (let e = 0; e < E; e++) {
      let mean = 0;
      for (let n = 0; n < N; n++) mean += r.scores[n * E + e];
      mean /= N;
      l += (c[e] / tokens) * mean;
      for (let n = 0; n < N; n++) dp[n * E + e] += (coef * E * c[e]) / tokens / N;
    }
    return E * l;
  };
  if (w.switch) { parts.switch = switchLike(counts, N, w.switch); loss += w.switch * parts.switch; }
  if (w.global && globalCounts) { parts.global = switchLike(globalCounts.counts, globalCounts.tokens, w.global); loss += w.global * parts.global; }
  if (w.seq) {
    // per sequence b: Σ_e f_e · P_e with f_e = E/(K·T) count_e(b), P_e = mean_t s'_{t,e}, s' = s / Σ_j s_j
    const B = N / T;
    let total = 0;
    for (let b = 0; b < B; b++) {
      const c = new Float64Array(E);
      for (let t = 0; t < T; t++) for (let j = 0; j < K; j++) c[r.experts[(b * T + t) * K + j]]++;
      for (let t = 0; t < T; t++) {
        const n = b * T + t, row = r.scores.subarray(n * E, (n + 1) * E);
        let S = 0;
        for (let e = 0; e < E; e++) S += row[e];
        // L_b = Σ_e f_e · (1/T) Σ_t s_{t,e} / S_t;  ∂/∂s_{t,i} = (1/T)(f_i − Σ_e f_e s_{t,e} / S_t) / S_t
        let fs = 0;
        for (let e = 0; e < E; e++) fs += ((E / (K * T)) * c[e] * row[e]) / S;
        total += fs / T;
        for (let i = 0; i < E; i++) dp[n * E + i] += (w.seq / B) * (((E / (K * T)) * c[i] - fs) / S) / T;
      }
    }
    parts.seq = total / B;
    loss += w.seq * parts.seq;
  }
  // through the router's normalisation to the logits
  for (let n = 0; n < N; n++) scoresBackward(m, r.scores.subarray(n * E, (n + 1) * E), dp.subarray(n * E, (n + 1) * E), dl.subarray(n * E, (n + 1) * E));
  if (w.zloss) {
    let z = 0;
    for (let n = 0; n < N; n++) {
      const row = r.logits.subarray(n * E, (n + 1) * E);
      let mx = -Infinity;
      for (let e = 0; e < E; e++) if (Number.isFinite(row[e])) mx = Math.max(mx, row[e]);
      let s = 0;
      for (let e = 0; e < E; e++) s += Math.exp(row[e] - mx);
      const lse = mx + Math.log(s);
      z += lse * lse;
      // d/dlogit (lse²)/N = 2 lse softmax / N
      for (let e = 0; e < E; e++) dl[n * E + e] += (w.zloss * 2 * lse * Math.exp(row[e] - lse)) / N;
    }
    parts.zloss = z / N;
    loss += w.zloss * parts.zloss;
  }
  return { loss, parts, dlogits: dl };
}

/** DeepSeek-V3's auxiliary-loss-free update of the selection-only bias: b_e += γ · sign(mean load − load_e) */
export function updateSelectionBias(bias: Float32Array, counts: ArrayLike<number>, gamma: number): void {
  let mean = 0;
  for (let e = 0; e < bias.length; e++) mean += counts[e];
  mean /= bias.length;
  for (let e = 0; e < bias.length; e++) bias[e] += gamma * Math.sign(mean - counts[e]);
}

/** load statistics of one layer: max / mean load and the normalised entropy of the load distribution (1 = even) */
export function loadStats(counts: ArrayLike<number>): { maxOverMean: number; entropy: number } {
  const E = counts.length;
  let total = 0, mx = 0;
  for (let e = 0; e < E; e++) { total += counts[e]; mx = Math.max(mx, counts[e]); }
  if (total === 0) return { maxOverMean: 0, entropy: 0 };
  let h = 0;
  for (let e = 0; e < E; e++) if (counts[e] > 0) { const p = counts[e] / total; h -= p * Math.log(p); }
  return { maxOverMean: mx / (total / E), entropy: E > 1 ? h / Math.log(E) : 1 };
}
