/**
 * Phase 1, route: router logits [N, E] → the router's probabilities, the K experts of each token and
 * their combine weights, for every router kind the supported families use (RouterKind in types.ts);
 * and its backward beside it (the gradient reaches the logits through the selected weights; the
 * selection itself has none).
 *
 * An allowed-experts mask (a sub-model, a pruning pattern, a per-request pattern) removes experts
 * before the router normalises: their logits count as −∞, so softmax / sigmoid / top-k / group limits /
 * correction biases all see only the allowed experts — exactly what a checkpoint with the other experts
 * sliced away computes. `topK` overrides the description's k.
 */
import type { Kernels } from '../tensor/kernels.js';
import { MoekitError } from '../util/errors.js';
import type { MoeDesc } from './types.js';

export interface RouteOptions {
  /** [E] 1 = the expert may be chosen; null / absent: all */
  allowed?: Uint8Array | null;
  /** experts per token (default: the description's topK) */
  topK?: number;
}

export interface Routing {
  K: number;
  logits: Float32Array; // [N, E] raw (the router linear's output, its bias included), before softmax/sigmoid and any selection bias
  scores: Float32Array; // [N, E] the router's own probabilities over the allowed experts (softmax or sigmoid; 0 where masked)
  experts: Int32Array; // [N, K] chosen experts
  weights: Float32Array; // [N, K] their combine weights
}

const f = Math.fround;

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * How the k selected probabilities r_j (sum S) become combine weights, per router kind — the one
 * place these rules live (forward and backward read them):
 * w_j = c · r_j / den when `renorm`, else c · r_j. `throughS`: whether the gradient flows through S
 * (ERNIE's floor at normMin cuts it).
 */
export function renormRule(m: MoeDesc, K: number, S: number): { renorm: boolean; den: number; c: number; throughS: boolean } {
  switch (m.router) {
    case 'softmax_topk': return { renorm: m.normTopK, den: S, c: 1, throughS: true };
    case 'softmax_bias': return { renorm: true, den: Math.max(S, m.normMin), c: 1, throughS: S > m.normMin };
    // DeepSeek-V2: renormalised (k > 1 and norm_topk_prob) or else scaled, never both
    case 'softmax_group': {
      const renorm = K > 1 && m.normTopK;
      return { renorm, den: f(S + 1e-20), c: renorm ? 1 : m.routedScaling, throughS: true };
    }
    case 'sigmoid_group': return { renorm: m.normTopK, den: f(S + 1e-20), c: m.routedScaling, throughS: true };
    case 'topk_softmax': case 'sparsemixer': case 'topk_sigmoid': return { renorm: false, den: 1, c: 1, throughS: false };
  }
}

/** top groups of `choice` [E] (group score = sum of its top-2, or max): 0 outside them */
function maskGroups(choice: Float32Array, E: number, nGroup: number, topkGroup: number, byMax: boolean): void {
  if (nGroup <= 1) return;
  const per = E / nGroup;
  const gs: { g: number; s: number }[] = [];
  for (let g = 0; g < nGroup; g++) {
    let a = -Infinity, b = -Infinity;
    for (let j = 0; j < per; j++) {
      const v = choice[g * per + j];
      if (v > a) { b = a; a = v; } else if (v > b) b = v;
    }
    gs.push({ g, s: byMax || per < 2 ? a : f(a + b) });
  }
  gs.sort((x, y) => y.s - x.s || x.g - y.g);
  const keep = new Set(gs.slice(0, topkGroup).map((x) => x.g));
  for (let g = 0; g < nGroup; g++) if (!keep.has(g)) choice.fill(0, g * per, (g + 1) * per);
}

/**
 * PhiMoE's sparsemixer at inference (transformers' `sparsemixer`, training=False), logits [N, E] → experts, weights
 * [N, K]: round 1 picks e1 = argmax s and weighs it by softmax(s masked)[e1], where s_j is masked (−∞) when
 * (max − s_j) / max(|s_j|, max) > 2·eps; round 2 does the same over s with e1 removed (its max the second largest).
 * PhiMoE configs route K = 2; a sub-model's other k runs k such rounds (k = 1: round 1 alone). Disallowed experts
 * count as −∞ throughout.
 */
function sparsemixer(logits: Float32Array, N: number, E: number, K: number, eps: number, allowed: Uint8Array | null,
                     experts: Int32Array, weights: Float32Array): void {
  const s = new Float64Array(E);
  for (let n = 0; n < N; n++) {
    for (let e = 0; e < E; e++) s[e] = allowed && !allowed[e] ? -Infinity : logits[n * E + e];
    for (let r = 0; r < K; r++) {
      let top = 0;
      for (let e = 1; e < E; e++) if (s[e] > s[top]) top = e;
      const mx = s[top];
      // softmax over the logits within the round's relative window of its maximum
      let z = 0;
      // (written as transformers compares, in f32: a 0 / 0 is not "> 2·eps", so it is kept)
      const keep = (e: number) => s[e] !== -Infinity && !(f(f(mx - s[e]) / Math.max(Math.abs(logits[n * E + e]), mx)) > f(2 * eps));
      for (let e = 0; e < E; e++) if (keep(e)) z += Math.exp(s[e] - mx);
      experts[n * K + r] = top;
      weights[n * K + r] = f(1 / z);
      s[top] = -Infinity;
    }
  }
}

/** the k a route call uses, checked against the mask */
export function routeK(m: MoeDesc, o: RouteOptions): number {
  const K = o.topK ?? m.topK;
  if (!Number.isInteger(K) || K < 1 || K > m.experts) throw new MoekitError(`top-k must be an integer in [1, ${m.experts}], got ${K}`);
  if (o.allowed) {
    if (o.allowed.length !== m.experts) throw new MoekitError(`the allowed-experts mask has ${o.allowed.length} entries, the layer ${m.experts} experts`);
    let n = 0;
    for (let e = 0; e < m.experts; e++) if (o.allowed[e]) n++;
    if (K > n) throw new MoekitError(`top-k ${K} exceeds the ${n} allowed experts`);
  }
  return K;
}

/**
 * logits [N, E] (not modified) → Routing. `bias` [E] is the selection-only correction bias.
 */
export function route(k: Kernels, m: MoeDesc, logits: Float32Array, N: number, bias: Float32Array | null,
                      o: RouteOptions = {}): Routing {
  const E = m.experts, K = routeK(m, o), allowed = o.allowed ?? null;
  const experts = new Int32Array(N * K);
  const weights = new Float32Array(N * K);
  const scores = logits.slice(); // [N, E]
  if (allowed) for (let n = 0; n < N; n++) for (let e = 0; e < E; e++) if (!allowed[e]) scores[n * E + e] = -Infinity;
  if (m.router === 'sigmoid_group' || m.router === 'topk_sigmoid') for (let i = 0; i < scores.length; i++) scores[i] = f(sigmoid(scores[i]));
  else k.softmax(scores, N, E);
  const tmp = new Float32Array(K);
  if (m.router === 'sparsemixer') {
    sparsemixer(logits, N, E, K, m.jitterEps, allowed, experts, weights);
  } else if (m.router === 'topk_sigmoid') {
    // top-k of the logits, each weighed by σ(logit)
    const masked = allowed ? logits.map((v, i) => (allowed[i % E] ? v : -Infinity)) : logits;
    k.topk(masked, N, E, K, experts, weights);
    for (let i = 0; i < weights.length; i++) weights[i] = f(sigmoid(weights[i]));
  } else if (m.router === 'topk_softmax') {
    // top-k of the logits, softmax over those k
    const masked = allowed ? logits.map((v, i) => (allowed[i % E] ? v : -Infinity)) : logits;
    k.topk(masked, N, E, K, experts, weights);
    k.softmax(weights, N, K);
  } else if (m.router === 'softmax_topk') {
    k.topk(scores, N, E, K, experts, weights);
  } else {
    const choice = new Float32Array(E);
    const ci = new Int32Array(K);
    for (let n = 0; n < N; n++) {
      const p = scores.subarray(n * E, (n + 1) * E);
      for (let e = 0; e < E; e++) choice[e] = bias ? f(p[e] + bias[e]) : p[e];
      if (allowed) for (let e = 0; e < E; e++) if (!allowed[e]) choice[e] = -Infinity;
      if (m.router !== 'softmax_bias') {
        maskGroups(choice, E, m.nGroup, m.topkGroup, m.router === 'softmax_group');
        if (allowed) for (let e = 0; e < E; e++) if (!allowed[e]) choice[e] = -Infinity;
      }
      k.topk(choice, 1, E, K, ci, tmp);
      for (let j = 0; j < K; j++) {
        if (tmp[j] === -Infinity) throw new MoekitError(`top-k ${K} exceeds the allowed experts in the selected groups`);
        experts[n * K + j] = ci[j]; weights[n * K + j] = p[ci[j]];
      }
    }
  }
  // renormalisation and scaling, per family
  if (m.router !== 'topk_softmax' && m.router !== 'sparsemixer' && m.router !== 'topk_sigmoid') {
    for (let n = 0; n < N; n++) {
      const r = weights.subarray(n * K, (n + 1) * K);
      let s = 0;
      for (let j = 0; j < K; j++) s += r[j];
      const { renorm, den, c } = renormRule(m, K, f(s));
      for (let j = 0; j < K; j++) r[j] = renorm ? f(f(r[j] / den) * c) : f(r[j] * c);
    }
  }
  return { K, logits, scores, experts, weights };
}

/**
 * dweights [N, K] (gradient of the combine weights) → dlogits [N, E].
 * Renormalisation w_j = c · r_j / S: ∂L/∂r_j = (c·dw_j − Σ_i c·dw_i · r_i / S) / S; without it w_j = c · r_j;
 * then softmax (p ⊙ (dp − p·dp)) or sigmoid (dp · p · (1 − p)). topk_softmax (Granite, gpt-oss): the
 * softmax over the k selected logits, backward on those k only. Masked experts (p = 0) get no gradient.
 */
export function routeBackward(m: MoeDesc, r: Routing, dw: Float32Array, N: number): Float32Array {
  const E = m.experts, K = r.K;
  if (m.router === 'sparsemixer') throw new MoekitError('the sparsemixer router (PhiMoE) has no backward in the trainer');
  if (m.router === 'topk_sigmoid') throw new MoekitError('the top-k sigmoid router (Llama 4) has no backward in the trainer');
  const dl = new Float32Array(N * E); // [N, E]
  if (m.router === 'topk_softmax') {
    // w = softmax over the k selected logits: dl_j = w_j (dw_j − Σ_i w_i dw_i) on the selected, 0 elsewhere
    for (let n = 0; n < N; n++) {
      let dot = 0;
      for (let j = 0; j < K; j++) dot += r.weights[n * K + j] * dw[n * K + j];
      for (let j = 0; j < K; j++) dl[n * E + r.experts[n * K + j]] += r.weights[n * K + j] * (dw[n * K + j] - dot);
    }
    return dl;
  }
  const dp = new Float64Array(E);
  for (let n = 0; n < N; n++) {
    const p = r.scores.subarray(n * E, (n + 1) * E);
    let S = 0;
    for (let j = 0; j < K; j++) S += p[r.experts[n * K + j]];
    const { renorm, den, c, throughS } = renormRule(m, K, S);
    dp.fill(0);
    let dot = 0;
    if (renorm && throughS) {
      for (let j = 0; j < K; j++) dot += c * dw[n * K + j] * p[r.experts[n * K + j]] / den;
    }
    for (let j = 0; j < K; j++) {
      const e = r.experts[n * K + j];
      dp[e] = renorm ? (c * dw[n * K + j] - dot) / den : c * dw[n * K + j];
    }
    scoresBackward(m, p, dp, dl.subarray(n * E, (n + 1) * E));
  }
  return dl;
}

/**
 * One token's gradient through the router's normalisation: d scores [E] → d logits [E] (written), for the
 * router's own probabilities p [E]: sigmoid dp · p · (1 − p), or softmax p ⊙ (dp − p·dp). Masked experts (p = 0)
 * get none. Shared by the routing backward and the balance losses.
 */
export function scoresBackward(m: MoeDesc, p: ArrayLike<number>, dp: ArrayLike<number>, dl: Float32Array): void {
  const E = dl.length;
  if (m.router === 'sigmoid_group' || m.router === 'topk_sigmoid') {
    for (let e = 0; e < E; e++) dl[e] = dp[e] * p[e] * (1 - p[e]);
  } else {
    let pd = 0;
    for (let e = 0; e < E; e++) pd += p[e] * dp[e];
    for (let e = 0; e < E; e++) dl[e] = p[e] * (dp[e] - pd);
  }
}
