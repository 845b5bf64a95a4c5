/**
 * The MoE block as named phases, route → dispatch → experts → combine, plus shared experts (ungated,
 * or through a sigmoid gate as Qwen2-MoE), with its backward beside it. One forward serves inference
 * and training (`save` keeps what the backward needs); it emits one trace event per call with the
 * routing (logits, scores, experts, weights), the per-expert counts and, on request, each
 * assignment's expert output. The slow, obvious version is reference.ts; tests hold the two together.
 * Dimension names: N tokens, H hidden, E experts, K experts per token, I FFN width.
 */
import type { Grads } from '../tensor/grads.js';
import type { Kernels } from '../tensor/kernels.js';
import { MoekitError } from '../util/errors.js';
import { linearBackward, linearFwd } from '../tensor/linear.js';
import { combineRows, combineRowsBackward, dispatch, gatherRows, scatterRows } from './dispatch.js';
import { actOf, ffnBackward, ffnForward, type FfnSaved } from './experts.js';
import { route, routeBackward, type RouteOptions, type Routing } from './router.js';
import { routedExperts, type MoeDesc, type MoeWeights } from './types.js';

/** what one MoE block call routed: the trace event (the decoder adds which layer) */
export interface MoeRouting extends Routing {
  N: number;
  E: number;
  /** assignments per expert */
  counts: Int32Array; // [E]
  /**
   * on request: y [N, K, H], the output of token n's j-th expert before its weight (REAP's saliency); for blocks that
   * weigh the inputs (MoeDesc.weightInput) its output on the weighted input, i.e. its contribution
   */
  expertOutputs?: Float32Array;
}

export interface MoeCall extends RouteOptions {
  k: Kernels;
  m: MoeDesc;
  w: MoeWeights;
  x: Float32Array; // [N, H] normalised input
  N: number;
  H: number;
  save: boolean;
  /** the trace hook: called once with the routing */
  onRoute?: (r: MoeRouting) => void;
  /** fill MoeRouting.expertOutputs */
  expertOutputs?: boolean;
}

export interface MoeSaved {
  x: Float32Array; // [N, H] input
  N: number;
  r: Routing;
  offsets: Int32Array; // [E + 1]
  order: Int32Array; // [N·K] assignment ids grouped by expert
  experts: (FfnSaved | null)[]; // per expert, over its n_e rows
  ys: (Float32Array | null)[]; // per expert y [n_e, H]
  shared: FfnSaved | null;
  sharedY: Float32Array | null; // [N, H] shared expert output before its gate
  sharedGate: Float32Array | null; // [N] σ(gate logit) (Qwen2-MoE)
}

/**
 * The weights of the experts with rows, as the fused kernel takes them (null when one is not f32 or bf16:
 * the loop handles every weight type)
 */
function groupedExperts(w: MoeWeights, offsets: Int32Array, E: number): { ws: (Float32Array | Uint16Array | Uint8Array | null)[]; bs: (Float32Array | null)[]; widths: Int32Array; qtypes: Int32Array } | null {
  const ws: (Float32Array | Uint16Array | Uint8Array | null)[] = new Array(3 * E).fill(null), bs: (Float32Array | null)[] = new Array(3 * E).fill(null);
  const widths = new Int32Array(E), qtypes = new Int32Array(3 * E).fill(-1);
  for (let e = 0; e < E; e++) {
    if (offsets[e + 1] === offsets[e]) continue;
    const f = w.experts.get(e);
    const ls = [f.gate, f.up, f.down];
    for (let i = 0; i < 3; i++) {
      const L = ls[i], dt = L.w.dtype;
      if (dt === 'q8_0' || dt === 'q4_0') qtypes[3 * e + i] = dt === 'q8_0' ? 0 : 1;
      else if (dt !== 'f32' && dt !== 'bf16') return null;
      ws[3 * e + i] = L.w.data; bs[3 * e + i] = L.b;
    }
    widths[e] = f.gate.out;
  }
  return { ws, bs, widths, qtypes };
}

/** x [N, H] → y [N, H]; s when c.save */
export function moeForward(c: MoeCall): { y: Float32Array; s?: MoeSaved } {
  const { k, m, w, x, N, H, save } = c;
  const act = actOf(m);
  // route
  const logits = linearFwd(k, x, N, w.router); // [N, E]
  const r = route(k, m, logits, N, w.selectionBias, c);
  const K = r.K;
  // dispatch
  const { counts, offsets, order } = dispatch(r.experts, N, K, m.experts);
  const outs = c.expertOutputs ? new Float32Array(N * K * H) : undefined; // [N, K, H]
  const out = new Float32Array(N * H); // [N, H]
  const experts: (FfnSaved | null)[] = [], ys: (Float32Array | null)[] = [];
  // Llama 4: the weight scales each expert's input, the outputs are summed (combine weight 1)
  const combineW = m.weightInput ? new Float32Array(N * K).fill(1) : r.weights; // [N, K]
  if (m.weightInput && save) throw new MoekitError('an MoE block that weighs its experts\' inputs (Llama 4) has no backward in the trainer');
  // experts → combine: one native call for inference when the kernels have it (the loop below is its reference;
  // it weighs outputs, so blocks that weigh inputs take the loop)
  // (zero-computation experts are no weights for it: such blocks take the loop)
  const Er = routedExperts(m);
  const grouped = !save && !outs && !m.weightInput && Er === m.experts && k.expertsForward && w.experts.held ? groupedExperts(w, offsets, m.experts) : null;
  if (grouped) {
    k.expertsForward!(x, N, H, K, order, offsets, r.weights, out, act.clamped, act.limit, act.alpha, grouped.ws, grouped.bs, grouped.widths, grouped.qtypes);
  }
  for (let e = 0; e < m.experts && !grouped; e++) {
    const lo = offsets[e], hi = offsets[e + 1];
    experts.push(null); ys.push(null);
    if (hi === lo) continue;
    const xe = gatherRows(k, x, H, K, order, lo, hi); // [n_e, H]
    if (m.weightInput) for (let q = lo; q < hi; q++) { const wq = r.weights[order[q]]; for (let j = 0; j < H; j++) xe[(q - lo) * H + j] *= wq; }
    // a zero-computation expert (MoeDesc.zeroExperts) returns its input: y = x
    const { y, s } = e >= Er ? { y: xe, s: null } : ffnForward(k, w.experts.get(e), xe, hi - lo, act, save); // [n_e, H]
    if (save) { experts[e] = s ?? null; ys[e] = y; }
    if (outs) for (let q = lo; q < hi; q++) outs.set(y.subarray((q - lo) * H, (q - lo + 1) * H), order[q] * H);
    combineRows(k, out, y, H, K, combineW, order, lo, hi);
  }
  c.onRoute?.({ ...r, N, E: m.experts, counts, expertOutputs: outs });
  let shared: FfnSaved | null = null, sharedY: Float32Array | null = null, sharedGate: Float32Array | null = null;
  if (w.shared) {
    const { y, s } = ffnForward(k, w.shared, x, N, undefined, save); // [N, H]
    if (save) { shared = s!; sharedY = y; }
    if (w.sharedGate) {
      // out += σ(x · g) · shared(x)
      const gl = linearFwd(k, x, N, w.sharedGate); // [N, 1]
      for (let n = 0; n < N; n++) {
        const gate = (gl[n] = 1 / (1 + Math.exp(-gl[n])));
        for (let j = 0; j < H; j++) out[n * H + j] += gate * y[n * H + j];
      }
      if (save) sharedGate = gl;
    } else {
      for (let i = 0; i < N * H; i++) out[i] += y[i];
    }
  }
  if (w.bias) for (let n = 0; n < N; n++) for (let j = 0; j < H; j++) out[n * H + j] += w.bias[j]; // JetMoE's output bias
  if (!save) return { y: out };
  return { y: out, s: { x, N, r, offsets, order, experts, ys, shared, sharedY, sharedGate } };
}

/** dy [N, H] → dx [N, H] (+=), weight gradients into g */
export function moeBackward(k: Kernels, m: MoeDesc, w: MoeWeights, s: MoeSaved, dy: Float32Array, dx: Float32Array,
                            H: number, g: Grads, dlExtra?: Float32Array): void {
  const K = s.r.K, N = s.N;
  if (w.bias) { const gb = g.of(w.bias); for (let n = 0; n < N; n++) for (let j = 0; j < H; j++) gb[j] += dy[n * H + j]; }
  const dw = new Float32Array(N * K); // [N, K] gradient of the combine weights
  const Er = routedExperts(m);
  for (let e = 0; e < m.experts; e++) {
    const es = s.experts[e], ye = s.ys[e];
    if (!ye || (!es && e < Er)) continue;
    const lo = s.offsets[e], hi = s.offsets[e + 1], n = hi - lo;
    // combine backward: dw[a] = dy[t] · y[r];  dy_e[r] = w[a] · dy[t]
    const dye = combineRowsBackward(k, dw, dy, ye, H, K, s.r.weights, s.order, lo, hi); // [n_e, H]
    // experts backward (a zero-computation expert is the identity: dx_e = dy_e), then dispatch backward: scatter-add
    // rows to their tokens
    let dxe = dye;
    if (e < Er) {
      dxe = new Float32Array(n * H);
      ffnBackward(k, w.experts.get(e), es!, dye, dxe, g, actOf(m));
    }
    scatterRows(k, dx, dxe, H, K, s.order, lo, hi);
  }
  // route backward
  const dl = routeBackward(m, s.r, dw, N); // [N, E]
  if (dlExtra) for (let i = 0; i < dl.length; i++) dl[i] += dlExtra[i]; // e.g. balance losses on the router logits
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

/**
 * transformers' load_balancing_loss_func over the routing of every MoE layer, tokens of all layers
 * pooled: with P [L·N, E] the router's probabilities and M [L·N, K, E] the one-hot of each token's top-k
 * of P (no selection bias), aux = E · Σ_{k,e} mean_rows(M)[k, e] · mean_rows(P)[e]. Softmax routers
 * only (null otherwise). Not scaled by router_aux_loss_coef. For topk_softmax routers P is the softmax
 * over all (allowed) experts.
 */
export function loadBalancingLoss(m: MoeDesc, routes: Routing[], N: number): number | null {
  if (routes.length === 0 || m.router === 'sigmoid_group' || m.router === 'topk_sigmoid') return null;
  const E = m.experts, K = routes[0].K, rows = routes.length * N;
  const tokens = new Float64Array(K * E); // [K, E] fraction of rows sending slot k to e
  const prob = new Float64Array(E); // [E] mean router probability
  const order = Array.from({ length: E }, (_, e) => e);
  for (const r of routes) {
    for (let n = 0; n < N; n++) {
      const p = r.scores.subarray(n * E, (n + 1) * E);
      for (let e = 0; e < E; e++) prob[e] += p[e] / rows;
      const top = order.slice().sort((a, b) => p[b] - p[a] || a - b);
      for (let k = 0; k < K; k++) tokens[k * E + top[k]] += 1 / rows;
    }
  }
  let s = 0;
  for (let k = 0; k < K; k++) for (let e = 0; e < E; e++) s += tokens[k * E + e] * prob[e];
  return s * E;
}
