/**
 * The MoE block for training, as the engine's named phases with a backward for each:
 * route (router linear → softmax / sigmoid → top-k → renormalise / scale, or top-k of the logits →
 * softmax over the k; the gradient reaches the router logits through the selected weights, the
 * selection itself has none), dispatch (counting sort), experts (SwiGLU FFN), combine
 * (out[t] += w · y); shared experts added, ungated or through a sigmoid gate (Qwen2-MoE).
 * Dimension names: N tokens, H hidden, E experts, K experts per token, I FFN width.
 */
import type { Kernels } from '../tensor/kernels.js';
import type { MoeDesc } from '../models/desc.js';
import { linearFwd } from '../models/ops.js';
import type { Ffn, MoeWeights } from '../models/weights.js';
import { combineRows, dispatch, gatherRows } from '../moe/dispatch.js';
import { route } from '../moe/router.js';
import { MoekitError } from '../util/errors.js';
import { Grads, linearBackward } from './linear.js';

// ---------------------------------------------------------------------------------------------
// experts: SwiGLU FFN

export interface FfnSaved {
  x: Float32Array; // [n, H] input
  g: Float32Array; // [n, I] gate projection
  u: Float32Array; // [n, I] up projection
  a: Float32Array; // [n, I] silu(g) · u, input of down
  n: number;
}

/**
 * The FFN's activation: SwiGLU, or gpt-oss's clamped SwiGLU (gate clamped above at `limit`, up to ±limit,
 * (up + 1) · gate · σ(alpha · gate)).
 */
export interface Act { clamped: boolean; limit: number; alpha: number }
export const SWIGLU: Act = { clamped: false, limit: Infinity, alpha: 1 };

export function actOf(m: MoeDesc): Act {
  return m.act === 'swiglu_clamped' ? { clamped: true, limit: m.swigluLimit, alpha: m.swigluAlpha } : SWIGLU;
}

/** x [n, H] → y [n, H] = down(act(gate(x), up(x))) */
export function ffnForward(k: Kernels, f: Ffn, x: Float32Array, n: number, act: Act = SWIGLU): { y: Float32Array; s: FfnSaved } {
  const g = linearFwd(k, x, n, f.gate); // [n, I]
  const u = linearFwd(k, x, n, f.up); // [n, I]
  const a = new Float32Array(g.length);
  if (act.clamped) k.swigluClamped(a, g, u, g.length, act.limit, act.alpha);
  else k.swiglu(a, g, u, g.length);
  return { y: linearFwd(k, a, n, f.down), s: { x, g, u, a, n } };
}

/** dy [n, H] → dx [n, H] (+=) */
export function ffnBackward(k: Kernels, f: Ffn, s: FfnSaved, dy: Float32Array, dx: Float32Array, gr: Grads, act: Act = SWIGLU): void {
  const { g, u, n } = s;
  const da = new Float32Array(g.length); // [n, I]
  linearBackward(k, f.down, s.a, dy, n, da, gr);
  const dg = new Float32Array(g.length), du = new Float32Array(g.length); // [n, I]
  if (act.clamped) {
    // a = (ũ + 1) · g̃ σ(α g̃), g̃ = min(g, L), ũ = clamp(u, −L, L); clamps pass the gradient inside [−L, L] only
    const { limit: L, alpha } = act;
    for (let i = 0; i < g.length; i++) {
      const gc = Math.min(g[i], L), uc = Math.min(Math.max(u[i], -L), L);
      const sg = 1 / (1 + Math.exp(-alpha * gc));
      du[i] = u[i] >= -L && u[i] <= L ? da[i] * gc * sg : 0;
      dg[i] = g[i] <= L ? da[i] * (uc + 1) * sg * (1 + alpha * gc * (1 - sg)) : 0;
    }
  } else {
    for (let i = 0; i < g.length; i++) {
      const sg = 1 / (1 + Math.exp(-g[i]));
      du[i] = da[i] * g[i] * sg; // ∂/∂u = silu(g)
      dg[i] = da[i] * u[i] * sg * (1 + g[i] * (1 - sg)); // silu'(g) = σ(g)(1 + g(1 − σ(g)))
    }
  }
  linearBackward(k, f.gate, s.x, dg, n, dx, gr);
  linearBackward(k, f.up, s.x, du, n, dx, gr);
}

// ---------------------------------------------------------------------------------------------
// route

export interface RouteSaved {
  probs: Float32Array; // [N, E] softmax (or sigmoid) of the router logits
  idx: Int32Array; // [N, K] chosen experts
  w: Float32Array; // [N, K] combine weights
}

const SUPPORTED = new Set(['softmax_topk', 'topk_softmax', 'softmax_bias', 'softmax_group', 'sigmoid_group']);

function routeForward(k: Kernels, m: MoeDesc, logits: Float32Array, N: number, bias: Float32Array | null): RouteSaved {
  if (!SUPPORTED.has(m.router)) throw new MoekitError(`the trainer does not support the ${m.router} router yet`);
  const { idx, w } = route(k, m, logits, N, bias);
  // probs: what the weights came from (softmax or sigmoid over all experts); for topk_softmax, whose weights are a
  // softmax over the k selected logits, the full softmax is kept only for the auxiliary loss
  const probs = logits.slice();
  if (m.router === 'sigmoid_group') for (let i = 0; i < probs.length; i++) probs[i] = 1 / (1 + Math.exp(-probs[i]));
  else k.softmax(probs, N, m.experts);
  return { probs, idx, w };
}

/**
 * dw [N, K] (gradient of the combine weights) → dlogits [N, E].
 * Renormalisation w_j = c · r_j / S (S = Σ r, floored at normMin for ERNIE, + 1e-20 for
 * DeepSeek-V2/V3, c the routed scaling): ∂L/∂r_j = (c·dw_j − Σ_i c·dw_i · r_i / S) / S; without it
 * w_j = c · r_j; then softmax (p ⊙ (dp − p·dp)) or sigmoid (dp · p · (1 − p)). topk_softmax
 * (Granite, gpt-oss): the softmax over the k selected logits, backward on those k only.
 */
function routeBackward(m: MoeDesc, s: RouteSaved, dw: Float32Array, N: number): Float32Array {
  const E = m.experts, K = m.topK;
  const dl = new Float32Array(N * E); // [N, E]
  if (m.router === 'topk_softmax') {
    // w = softmax over the k selected logits: dl_j = w_j (dw_j − Σ_i w_i dw_i) on the selected, 0 elsewhere
    for (let n = 0; n < N; n++) {
      let dot = 0;
      for (let j = 0; j < K; j++) dot += s.w[n * K + j] * dw[n * K + j];
      for (let j = 0; j < K; j++) dl[n * E + s.idx[n * K + j]] += s.w[n * K + j] * (dw[n * K + j] - dot);
    }
    return dl;
  }
  const dp = new Float64Array(E);
  for (let n = 0; n < N; n++) {
    const p = s.probs.subarray(n * E, (n + 1) * E);
    let S = 0;
    for (let j = 0; j < K; j++) S += p[s.idx[n * K + j]];
    let den = 1, c = 1, renorm = false;
    if (m.router === 'softmax_topk') { renorm = m.normTopK; den = S; }
    else if (m.router === 'softmax_bias') { renorm = true; den = Math.max(S, m.normMin); }
    // DeepSeek-V2: renormalised (k > 1 and norm_topk_prob) or else scaled, never both
    else if (m.router === 'softmax_group') { renorm = K > 1 && m.normTopK; den = S + 1e-20; c = renorm ? 1 : m.routedScaling; }
    else { renorm = m.normTopK; den = S + 1e-20; c = m.routedScaling; }
    dp.fill(0);
    // the floor (ERNIE's clamp at normMin) cuts the path through S
    const throughS = m.router !== 'softmax_bias' || S > m.normMin;
    let dot = 0;
    if (renorm && throughS) {
      for (let j = 0; j < K; j++) dot += c * dw[n * K + j] * p[s.idx[n * K + j]] / den;
    }
    for (let j = 0; j < K; j++) {
      const e = s.idx[n * K + j];
      dp[e] = renorm ? (c * dw[n * K + j] - dot) / den : c * dw[n * K + j];
    }
    if (m.router === 'sigmoid_group') {
      for (let e = 0; e < E; e++) dl[n * E + e] = dp[e] * p[e] * (1 - p[e]);
    } else {
      let pd = 0;
      for (let e = 0; e < E; e++) pd += p[e] * dp[e];
      for (let e = 0; e < E; e++) dl[n * E + e] = p[e] * (dp[e] - pd);
    }
  }
  return dl;
}

// ---------------------------------------------------------------------------------------------
// the block

export interface MoeSaved {
  x: Float32Array; // [N, H] input
  N: number;
  r: RouteSaved;
  offsets: Int32Array; // [E + 1]
  order: Int32Array; // [N·K] assignment ids grouped by expert
  experts: (FfnSaved | null)[]; // per expert, over its n_e rows
  ys: (Float32Array | null)[]; // per expert y [n_e, H]
  shared: FfnSaved | null;
  sharedY: Float32Array | null; // [N, H] shared expert output before its gate
  sharedGate: Float32Array | null; // [N] σ(gate logit) (Qwen2-MoE)
}

/** x [N, H] → y [N, H] */
export function moeForward(k: Kernels, m: MoeDesc, w: MoeWeights, x: Float32Array, N: number, H: number): { y: Float32Array; s: MoeSaved } {
  const act = actOf(m);
  // route
  const logits = linearFwd(k, x, N, w.router); // [N, E]
  const r = routeForward(k, m, logits, N, w.selectionBias);
  // dispatch
  const { offsets, order } = dispatch(r.idx, N, m.topK, m.experts);
  const out = new Float32Array(N * H); // [N, H]
  const experts: (FfnSaved | null)[] = [], ys: (Float32Array | null)[] = [];
  // experts → combine
  for (let e = 0; e < m.experts; e++) {
    const lo = offsets[e], hi = offsets[e + 1];
    experts.push(null); ys.push(null);
    if (hi === lo) continue;
    const f = w.experts[e];
    if (!f) throw new MoekitError(`expert ${e} was routed to but is not loaded`);
    const xe = gatherRows(x, H, m.topK, order, lo, hi); // [n_e, H]
    const { y, s } = ffnForward(k, f, xe, hi - lo, act); // [n_e, H]
    experts[e] = s; ys[e] = y;
    combineRows(out, y, H, m.topK, r.w, order, lo, hi);
  }
  let shared: FfnSaved | null = null, sharedY: Float32Array | null = null, sharedGate: Float32Array | null = null;
  if (w.shared) {
    const { y, s } = ffnForward(k, w.shared, x, N);
    shared = s; sharedY = y;
    if (w.sharedGate) {
      // out += σ(x · g) · shared(x)
      sharedGate = linearFwd(k, x, N, w.sharedGate); // [N, 1]
      for (let n = 0; n < N; n++) {
        const gate = (sharedGate[n] = 1 / (1 + Math.exp(-sharedGate[n])));
        for (let j = 0; j < H; j++) out[n * H + j] += gate * y[n * H + j];
      }
    } else {
      for (let i = 0; i < N * H; i++) out[i] += y[i];
    }
  }
  return { y: out, s: { x, N, r, offsets, order, experts, ys, shared, sharedY, sharedGate } };
}

/** dy [N, H] → dx [N, H] (+=) */
export function moeBackward(k: Kernels, m: MoeDesc, w: MoeWeights, s: MoeSaved, dy: Float32Array, dx: Float32Array,
                            H: number, g: Grads): void {
  const K = m.topK, N = s.N;
  const dw = new Float32Array(N * K); // [N, K] gradient of the combine weights
  for (let e = 0; e < m.experts; e++) {
    const es = s.experts[e], ye = s.ys[e];
    if (!es || !ye) continue;
    const lo = s.offsets[e], hi = s.offsets[e + 1], n = hi - lo;
    // combine backward: dw[a] = dy[t] · y[r];  dy_e[r] = w[a] · dy[t]
    const dye = new Float32Array(n * H);
    for (let r = lo; r < hi; r++) {
      const a = s.order[r], t = Math.floor(a / K), wa = s.r.w[a];
      let dot = 0;
      for (let j = 0; j < H; j++) {
        dot += dy[t * H + j] * ye[(r - lo) * H + j];
        dye[(r - lo) * H + j] = wa * dy[t * H + j];
      }
      dw[a] = dot;
    }
    // experts backward, then dispatch backward: scatter-add rows to their tokens
    const dxe = new Float32Array(n * H);
    ffnBackward(k, w.experts[e]!, es, dye, dxe, g, actOf(m));
    for (let r = lo; r < hi; r++) {
      const t = Math.floor(s.order[r] / K);
      for (let j = 0; j < H; j++) dx[t * H + j] += dxe[(r - lo) * H + j];
    }
  }
  // route backward
  const dl = routeBackward(m, s.r, dw, N); // [N, E]
  linearBackward(k, w.router, s.x, dl, N, dx, g);
  if (w.shared && s.shared) {
    if (w.sharedGate && s.sharedGate && s.sharedY) {
      // y = σ · s: ds = σ · dy;  dσ-logit = (dy · s) σ (1 − σ)
      const ds = new Float32Array(N * H), dgl = new Float32Array(N); // [N, H], [N, 1]
      for (let n = 0; n < N; n++) {
        const gate = s.sharedGate[n];
        let dot = 0;
        for (let j = 0; j < H; j++) { dot += dy[n * H + j] * s.sharedY[n * H + j]; ds[n * H + j] = gate * dy[n * H + j]; }
        dgl[n] = dot * gate * (1 - gate);
      }
      linearBackward(k, w.sharedGate, s.x, dgl, N, dx, g);
      ffnBackward(k, w.shared, s.shared, ds, dx, g);
    } else {
      ffnBackward(k, w.shared, s.shared, dy, dx, g);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// load-balancing auxiliary loss (reported only: no gradient)

/**
 * transformers' load_balancing_loss_func over the routing of every MoE layer, tokens of all layers
 * pooled: with P [L·N, E] the softmax of the raw router logits and M [L·N, K, E] the one-hot of each
 * token's top-k of P (no selection bias), aux = E · Σ_{k,e} mean_rows(M)[k, e] · mean_rows(P)[e].
 * Softmax routers only (null otherwise). Not scaled by router_aux_loss_coef.
 */
export function loadBalancingLoss(m: MoeDesc, routes: RouteSaved[], N: number): number | null {
  if (routes.length === 0 || m.router === 'sigmoid_group') return null;
  const E = m.experts, K = m.topK, rows = routes.length * N;
  const tokens = new Float64Array(K * E); // [K, E] fraction of rows sending slot k to e
  const prob = new Float64Array(E); // [E] mean router probability
  const order = Array.from({ length: E }, (_, e) => e);
  for (const r of routes) {
    for (let n = 0; n < N; n++) {
      const p = r.probs.subarray(n * E, (n + 1) * E);
      for (let e = 0; e < E; e++) prob[e] += p[e] / rows;
      const top = order.slice().sort((a, b) => p[b] - p[a] || a - b);
      for (let k = 0; k < K; k++) tokens[k * E + top[k]] += 1 / rows;
    }
  }
  let s = 0;
  for (let k = 0; k < K; k++) for (let e = 0; e < E; e++) s += tokens[k * E + e] * prob[e];
  return s * E;
}
