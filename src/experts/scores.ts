/**
 * Per-task expert scores from the router tracing hook, accumulated as running sums so that profiling
 * memory stays flat in the number of calibration tokens. For MoE layer l, expert i, over the task's
 * counted tokens t (T of them) and the assignments a = (t, j) the router made:
 *
 *   TCESS_i     = (1/T) Σ_t s_t,i · 1[i ∈ TopK(t)] · 1[s_t,i ≥ r]      (PreMoe, eq. 1)
 *   frequency_i = (1/T) Σ_t 1[i ∈ TopK(t)]                            (selection frequency)
 *   soft_i      = (1/T) Σ_t s_t,i                                     (mean routing score, all tokens)
 *   REAP_i      = (1/|X_i|) Σ_{t ∈ X_i} g_t,i · ‖f_i(x_t)‖₂           (Cerebras' REAP; X_i = tokens routed to i)
 *
 * s is the router's own probability (Routing.scores: softmax, or the sigmoid score of DeepSeek-V3-style
 * routers, before any selection-only correction bias), TopK the experts the router actually chose (bias
 * and group limits included), r a confidence threshold (the store's default: DEFAULT_R), g the combine weight (renormalised,
 * routed scaling included) and f_i(x) the expert's output before its weight.
 */
import type { MoeEvent } from '../models/pass.js';

export const SCORES = ['tcess', 'frequency', 'soft', 'reap'] as const;
export type ScoreName = (typeof SCORES)[number];

/** one MoE layer's running sums, [E] each */
export interface LayerSums {
  tcess: Float64Array; // Σ_t s·1[i ∈ TopK]·1[s ≥ r]
  count: Float64Array; // Σ_t 1[i ∈ TopK] (= |X_i|)
  soft: Float64Array; // Σ_t s
  reap: Float64Array; // Σ_{t ∈ X_i} g·‖f‖₂
}

export function emptyLayerSums(E: number): LayerSums {
  return { tcess: new Float64Array(E), count: new Float64Array(E), soft: new Float64Array(E), reap: new Float64Array(E) };
}

/**
 * Add one traced MoE call to `s`: tokens n in [t0, t1) of the event count (the rest, e.g. positions past a
 * prompt, are ignored). REAP needs the event's expertOutputs (Tracer.expertOutputs: true); without them its
 * sums stay 0. H: hidden size.
 */
export function accumulate(s: LayerSums, ev: MoeEvent, H: number, r: number, t0 = 0, t1 = ev.N): void {
  const { E, K, scores, experts, weights } = ev;
  const y = ev.expertOutputs; // [N, K, H]
  for (let n = t0; n < t1; n++) {
    for (let e = 0; e < E; e++) s.soft[e] += scores[n * E + e];
    for (let j = 0; j < K; j++) {
      const a = n * K + j, e = experts[a], p = scores[n * E + e];
      s.count[e] += 1;
      if (p >= r) s.tcess[e] += p;
      if (y) {
        let q = 0;
        for (let h = 0; h < H; h++) q += y[a * H + h] * y[a * H + h];
        s.reap[e] += weights[a] * Math.sqrt(q);
      }
    }
  }
}

/** the scores of one layer from its sums over T counted tokens */
export function layerScores(s: LayerSums, T: number): Record<ScoreName, number[]> {
  const E = s.tcess.length, per = (f: (e: number) => number) => Array.from({ length: E }, (_, e) => f(e));
  return {
    tcess: per((e) => (T ? s.tcess[e] / T : 0)),
    frequency: per((e) => (T ? s.count[e] / T : 0)),
    soft: per((e) => (T ? s.soft[e] / T : 0)),
    reap: per((e) => (s.count[e] ? s.reap[e] / s.count[e] : 0)),
  };
}

/** a += b, layer by layer */
export function addSums(a: LayerSums, b: LayerSums): void {
  for (const k of ['tcess', 'count', 'soft', 'reap'] as const) for (let e = 0; e < a[k].length; e++) a[k][e] += b[k][e];
}
