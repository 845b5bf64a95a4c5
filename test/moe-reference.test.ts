/**
 * The fast MoE block (route → dispatch → experts → combine, on the kernels) against the slow, obvious
 * one (src/moe/reference.ts: a loop over tokens and their experts), on tables of (tokens, hidden,
 * experts, top-k) for every router kind, with allowed-experts masks and top-k overrides; and the routing
 * contract: scores, counts and expert outputs agree with what they claim.
 */
import { describe, expect, it } from 'vitest';
import { EagerExperts } from '../src/models/expert-store.js';
import { moeDefaults } from '../src/models/common.js';
import { moeForward, type MoeRouting } from '../src/moe/layer.js';
import { referenceMoe, referenceRoute } from '../src/moe/reference.js';
import type { MoeDesc, MoeWeights } from '../src/moe/types.js';
import { getKernels, referenceKernels } from '../src/tensor/index.js';
import type { Linear } from '../src/tensor/linear.js';
import { f32Weight } from '../src/tensor/weight.js';
import { maxAbsDiff, randomTools } from './helpers.js';

const KINDS: [string, Partial<MoeDesc>][] = [
  ['softmax_topk', { router: 'softmax_topk' }],
  ['softmax_topk renormalised', { router: 'softmax_topk', normTopK: true }],
  ['topk_softmax, router bias, clamped SwiGLU with biases (gpt-oss)', { router: 'topk_softmax', routerBias: true, act: 'swiglu_clamped', expertBias: true, swigluLimit: 0.8 }],
  ['softmax_bias, min-norm, shared expert (ERNIE)', { router: 'softmax_bias', normTopK: true, normMin: 0.3, selectionBias: true, sharedFfn: 5 }],
  ['sigmoid_group, bias, groups, scaling (DeepSeek-V3)', { router: 'sigmoid_group', normTopK: true, routedScaling: 2.5, nGroup: 4, topkGroup: 2, selectionBias: true, sharedFfn: 6 }],
  ['softmax_group scaled (DeepSeek-V2)', { router: 'softmax_group', routedScaling: 1.7, nGroup: 4, topkGroup: 2 }],
  ['softmax_group renormalised', { router: 'softmax_group', normTopK: true, nGroup: 2, topkGroup: 1 }],
  ['softmax_topk, gated shared expert (Qwen2-MoE)', { router: 'softmax_topk', sharedFfn: 7, sharedGated: true }],
  ['sparsemixer, wide window (PhiMoE)', { router: 'sparsemixer', jitterEps: 0.5 }],
  ['sparsemixer, narrow window', { router: 'sparsemixer', jitterEps: 0.01 }],
  ['topk_sigmoid, weighted inputs, shared expert (Llama 4)', { router: 'topk_sigmoid', weightInput: true, sharedFfn: 6 }],
  ['softmax_group + bias, scaled, 3 zero-computation experts (LongCat-Flash)', { router: 'softmax_group', routedScaling: 2, selectionBias: true, zeroExperts: 3 }],
  ['topk_softmax, a bias after the combine (JetMoE)', { router: 'topk_softmax', outputBias: true }],
];
const TABLE: [number, number, number, number][] = [[1, 8, 8, 2], [7, 16, 8, 3], [13, 12, 16, 4], [5, 8, 8, 1]];

function block(m: MoeDesc, H: number, rand: (n: number, s?: number) => Float32Array): MoeWeights {
  const I = m.expertFfn;
  const lin = (o: number, i: number, bias: boolean): Linear => ({ w: f32Weight(rand(o * i, 0.6)), b: bias ? rand(o, 0.2) : null, out: o, in: i });
  const ffn = (w: number, bias: boolean) => ({ gate: lin(w, H, bias), up: lin(w, H, bias), down: lin(H, w, bias) });
  return {
    router: lin(m.experts, H, m.routerBias),
    selectionBias: m.selectionBias ? rand(m.experts, 0.3) : null,
    // the experts with weights (zero-computation ones have none)
    experts: new EagerExperts(Array.from({ length: m.experts - (m.zeroExperts ?? 0) }, () => ffn(I, m.expertBias))),
    shared: m.sharedFfn ? ffn(m.sharedFfn, false) : null,
    sharedGate: m.sharedGated ? lin(1, H, false) : null,
    bias: m.outputBias ? rand(H, 0.2) : null,
  };
}

describe.each(KINDS)('MoE block, %s: fast = naive loop', (_, over) => {
  it.each(TABLE)('N %i, H %i, E %i, K %i: all experts, a mask, a top-k override', (N, H, E, K) => {
    const { randn, R } = randomTools(N * 131 + E * 7 + K);
    const m = moeDefaults({ experts: E, topK: K, expertFfn: 6, router: 'softmax_topk', ...over });
    if (m.nGroup > 1 && E % m.nGroup !== 0) return;
    const w = block(m, H, randn);
    const x = randn(N * H);
    // a mask keeping the same count in each group (so group limits stay satisfiable), and a smaller k
    const per = E / m.nGroup;
    const allowed = Uint8Array.from({ length: E }, (_, e) => (e % per === 0 || R() < 0.6 ? 1 : 0));
    const nAllowed = allowed.reduce((a, b) => a + b, 0);
    const groupsOk = (a: Uint8Array) => [...Array(m.nGroup).keys()].every((g) => a.slice(g * per, (g + 1) * per).reduce((s, v) => s + v, 0) >= 2 || m.router !== 'sigmoid_group');
    const cases: { allowed?: Uint8Array; topK?: number }[] = [{}, { topK: Math.max(1, K - 1) }];
    if (groupsOk(allowed) && nAllowed >= K) cases.push({ allowed, topK: Math.min(K, Math.max(1, Math.floor((nAllowed * m.topkGroup) / m.nGroup))) });
    for (const o of cases) {
      for (const k of [getKernels(), referenceKernels]) {
        let ev: MoeRouting | undefined;
        const { y } = moeForward({ k, m, w, x, N, H, save: false, ...o, onRoute: (r) => { ev = r; }, expertOutputs: true });
        const want = referenceMoe(m, w, x, N, H, o);
        expect(maxAbsDiff(y, want), `${k.name} ${JSON.stringify({ ...o, allowed: o.allowed && [...o.allowed] })}`).toBeLessThanOrEqual(2e-5);
        // the routing contract
        const Kx = o.topK ?? K;
        expect(ev!.K).toBe(Kx);
        expect(ev!.counts.reduce((a, b) => a + b, 0)).toBe(N * Kx);
        for (let e = 0; e < E; e++) expect(ev!.counts[e]).toBe(ev!.experts.filter((v) => v === e).length);
        for (let n = 0; n < N; n++) {
          const r = referenceRoute(m, Float64Array.from(ev!.logits.subarray(n * E, (n + 1) * E)), w.selectionBias, o);
          expect([...ev!.experts.subarray(n * Kx, (n + 1) * Kx)].sort()).toEqual(r.experts.slice().sort());
          if (o.allowed) for (let j = 0; j < Kx; j++) expect(o.allowed[ev!.experts[n * Kx + j]]).toBe(1);
          // scores: the router's probabilities over the allowed experts (softmax sums to 1; 0 where masked)
          const sc = ev!.scores.subarray(n * E, (n + 1) * E);
          if (m.router !== 'sigmoid_group' && m.router !== 'topk_sigmoid') expect(sc.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
          if (o.allowed) for (let e = 0; e < E; e++) if (!o.allowed[e]) expect(sc[e]).toBe(0);
        }
        // expert outputs: token n's j-th expert applied to x[n]
        const outs = ev!.expertOutputs!;
        for (const n of [0, N - 1]) {
          const e = ev!.experts[n * Kx];
          const one = moeForward({ k, m: { ...m, sharedFfn: 0 }, w: { ...w, shared: null, bias: null }, x: x.subarray(n * H, (n + 1) * H), N: 1, H, save: false, topK: 1, allowed: Uint8Array.from({ length: E }, (_, q) => (q === e ? 1 : 0)) });
          // with a single allowed expert and k = 1, the combine weight is 1 for renormalising / topk-softmax routers
          const w1 = referenceRoute(m, Float64Array.from(ev!.logits.subarray(n * E, (n + 1) * E)), w.selectionBias, { topK: 1, allowed: Uint8Array.from({ length: E }, (_, q) => (q === e ? 1 : 0)) }).weights[0];
          // (weighted inputs, Llama 4: the expert's output on its weighted input is already its contribution)
          const got = outs.subarray((n * Kx) * H, (n * Kx + 1) * H).map((v) => (m.weightInput ? v : v * w1));
          expect(maxAbsDiff(got, one.y)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(w1)));
        }
      }
    }
  });
});
