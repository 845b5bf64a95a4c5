/**
 * The MoE block written the slow, obvious way: a loop over tokens, then over that token's chosen
 * experts, plain loops for every product (no kernels, no dispatch), the selection by sorting. It is the
 * yardstick for layer.ts (route → dispatch → experts → combine): tests hold the two together on tables of
 * (tokens, hidden, experts, top-k) for every router kind, with masks and top-k overrides. Only the
 * renormalisation rule (renormRule) is shared, as the one place those rules live.
 */
import type { Linear } from '../tensor/linear.js';
import { weightF32 } from '../tensor/weight.js';
import { referenceKernels } from '../tensor/ref/index.js';
import { renormRule, type RouteOptions } from './router.js';
import { routedExperts, type Ffn, type MoeDesc, type MoeWeights } from './types.js';

const f = Math.fround;

/** W x + b for one row x [in] */
function matvec(L: Linear, x: Float32Array): Float64Array {
  const W = weightF32(referenceKernels, L.w);
  const y = new Float64Array(L.out);
  for (let o = 0; o < L.out; o++) {
    let s = 0;
    for (let i = 0; i < L.in; i++) s += W[o * L.in + i] * x[i];
    y[o] = s + (L.b ? L.b[o] : 0);
  }
  return y;
}

function act(m: MoeDesc, g: number, u: number): number {
  if (m.act === 'swiglu') return (g / (1 + Math.exp(-g))) * u;
  const L = m.swigluLimit, gc = Math.min(g, L), uc = Math.min(Math.max(u, -L), L);
  return (uc + 1) * gc / (1 + Math.exp(-m.swigluAlpha * gc));
}

/** one expert on one token: down(act(gate x, up x)) */
function ffnRow(m: MoeDesc, F: Ffn, x: Float32Array, clamped: boolean): Float64Array {
  const g = matvec(F.gate, x), u = matvec(F.up, x);
  const a = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) a[i] = clamped ? act(m, g[i], u[i]) : act({ ...m, act: 'swiglu' }, g[i], u[i]);
  return matvec(F.down, a);
}

/** the experts token x goes to, and their weights, by the description's rule */
export function referenceRoute(m: MoeDesc, logits: Float64Array, bias: Float32Array | null, o: RouteOptions): { experts: number[]; weights: number[] } {
  const E = m.experts, K = o.topK ?? m.topK;
  const ok = (e: number) => !o.allowed || o.allowed[e] === 1;
  const byDesc = (v: number[]) => (a: number, b: number) => v[b] - v[a] || a - b;
  const ids = [...Array(E).keys()].filter(ok);
  if (m.router === 'sparsemixer') {
    // K rounds: the best remaining expert, weighed by the softmax of the remaining logits within the round's window
    const left = new Set(ids);
    const experts: number[] = [], weights: number[] = [];
    for (let r = 0; r < K; r++) {
      const top = [...left].sort(byDesc(Array.from(logits)))[0];
      const mx = logits[top];
      const inWindow = [...left].filter((e) => !((mx - logits[e]) / Math.max(Math.abs(logits[e]), mx) > 2 * m.jitterEps));
      const z = inWindow.reduce((s, e) => s + Math.exp(logits[e] - mx), 0);
      experts.push(top); weights.push(1 / z);
      left.delete(top);
    }
    return { experts, weights };
  }
  if (m.router === 'topk_sigmoid') {
    const top = ids.slice().sort(byDesc(Array.from(logits))).slice(0, K);
    return { experts: top, weights: top.map((e) => 1 / (1 + Math.exp(-logits[e]))) };
  }
  if (m.router === 'topk_softmax') {
    const top = ids.slice().sort(byDesc(Array.from(logits))).slice(0, K);
    const mx = Math.max(...top.map((e) => logits[e]));
    const ex = top.map((e) => Math.exp(logits[e] - mx));
    const z = ex.reduce((a, b) => a + b, 0);
    return { experts: top, weights: ex.map((v) => v / z) };
  }
  // the router's probabilities over the allowed experts
  const p = new Array<number>(E).fill(0);
  if (m.router === 'sigmoid_group') for (const e of ids) p[e] = 1 / (1 + Math.exp(-logits[e]));
  else {
    const mx = Math.max(...ids.map((e) => logits[e]));
    let z = 0;
    for (const e of ids) z += Math.exp(logits[e] - mx);
    for (const e of ids) p[e] = Math.exp(logits[e] - mx) / z;
  }
  // selection scores: + correction bias; group limits keep the best groups (others' scores become 0)
  const choice = p.map((v, e) => (ok(e) ? v + (bias && m.router !== 'softmax_topk' ? bias[e] : 0) : -Infinity));
  if ((m.router === 'sigmoid_group' || m.router === 'softmax_group') && m.nGroup > 1) {
    const per = E / m.nGroup;
    const score = [...Array(m.nGroup).keys()].map((g) => {
      const v = choice.slice(g * per, (g + 1) * per).sort((a, b) => b - a);
      return m.router === 'softmax_group' || per < 2 ? v[0] : v[0] + v[1];
    });
    const keep = [...score.keys()].sort(byDesc(score)).slice(0, m.topkGroup);
    for (let e = 0; e < E; e++) if (!keep.includes(Math.floor(e / per)) && ok(e)) choice[e] = 0;
  }
  const top = [...Array(E).keys()].filter(ok).sort(byDesc(choice)).slice(0, K);
  const r = top.map((e) => p[e]);
  const S = r.reduce((a, b) => a + b, 0);
  const { renorm, den, c } = renormRule(m, K, f(S));
  return { experts: top, weights: r.map((v) => (renorm ? (c * v) / den : c * v)) };
}

/** x [N, H] → y [N, H], token by token */
export function referenceMoe(m: MoeDesc, w: MoeWeights, x: Float32Array, N: number, H: number, o: RouteOptions = {}): Float32Array {
  const y = new Float32Array(N * H);
  const clamped = m.act === 'swiglu_clamped';
  for (let n = 0; n < N; n++) {
    const xn = x.subarray(n * H, (n + 1) * H);
    const { experts, weights } = referenceRoute(m, matvec(w.router, xn), w.selectionBias, o);
    const acc = new Float64Array(H);
    const Er = routedExperts(m);
    experts.forEach((e, j) => {
      if (e >= Er) { // a zero-computation expert returns its input
        for (let h = 0; h < H; h++) acc[h] += weights[j] * xn[h];
        return;
      }
      if (m.weightInput) { // Llama 4: expert(w · x), summed
        const ye = ffnRow(m, w.experts.get(e), xn.map((v) => v * weights[j]), clamped);
        for (let h = 0; h < H; h++) acc[h] += ye[h];
        return;
      }
      const ye = ffnRow(m, w.experts.get(e), xn, clamped);
      for (let h = 0; h < H; h++) acc[h] += weights[j] * ye[h];
    });
    if (w.shared) {
      const s = ffnRow(m, w.shared, xn, false);
      const gate = w.sharedGate ? 1 / (1 + Math.exp(-matvec(w.sharedGate, xn)[0])) : 1;
      for (let h = 0; h < H; h++) acc[h] += gate * s[h];
    }
    if (w.bias) for (let h = 0; h < H; h++) acc[h] += w.bias[h];
    for (let h = 0; h < H; h++) y[n * H + h] = acc[h];
  }
  return y;
}
