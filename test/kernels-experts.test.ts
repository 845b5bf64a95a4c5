/**
 * The fused expert kernel (expertsForward, native/experts.cc) against its reference, moe/layer.ts's
 * per-expert loop on the same kernels: bit for bit, for f32 and bf16 experts, biases, gpt-oss's clamped
 * SwiGLU, shared experts around it, 1–3 threads and both row-kernel sets; and against the naive block
 * (src/moe/reference.ts). A store that does not hold every expert (held unset) keeps the loop.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { f32ToBf16Array } from '../src/io/dtypes.js';
import { EagerExperts } from '../src/models/expert-store.js';
import { moeDefaults } from '../src/models/common.js';
import { moeForward } from '../src/moe/layer.js';
import { referenceMoe } from '../src/moe/reference.js';
import type { Ffn, LayerExperts, MoeDesc, MoeWeights } from '../src/moe/types.js';
import type { Kernels } from '../src/tensor/kernels.js';
import type { Linear } from '../src/tensor/linear.js';
import { nativeAddon, nativeKernels, nativeLoadError } from '../src/tensor/native.js';
import { bf16Weight, f32Weight, weightF32 } from '../src/tensor/weight.js';
import { referenceKernels } from '../src/tensor/ref/index.js';
import { maxAbsDiff, randomTools } from './helpers.js';

if (!nativeKernels || !nativeAddon) throw new Error(`native addon missing: ${nativeLoadError}`);
const nat: Kernels = nativeKernels;
const loopOnly: Kernels = { ...nat, expertsForward: undefined };
const threads0 = nativeAddon.info().threads;
afterAll(() => { nativeAddon!.setThreads(threads0); nativeAddon!.setSimd('auto'); });
const simdSets = nativeAddon.info().avx2 ? ['avx2', 'scalar'] : ['scalar'];

const KINDS: [string, Partial<MoeDesc>][] = [
  ['softmax_topk renormalised', { router: 'softmax_topk', normTopK: true }],
  ['gpt-oss: clamped SwiGLU, biases', { router: 'topk_softmax', routerBias: true, act: 'swiglu_clamped', expertBias: true, swigluLimit: 0.8 }],
  ['DeepSeek-V3 groups + shared expert', { router: 'sigmoid_group', normTopK: true, routedScaling: 2.5, nGroup: 4, topkGroup: 2, selectionBias: true, sharedFfn: 6 }],
];
// N tokens (1: decode of one; 64: a batched decode step; 200: prefill), H, E, K, I
const TABLE: [number, number, number, number, number][] = [[1, 16, 8, 2, 24], [7, 32, 8, 3, 16], [64, 64, 16, 2, 48], [200, 32, 16, 4, 40]];

function block(m: MoeDesc, H: number, bf16: boolean, rand: (n: number, s?: number) => Float32Array): MoeWeights {
  const w = (n: number) => (bf16 ? bf16Weight(f32ToBf16Array(rand(n, 0.6))) : f32Weight(rand(n, 0.6)));
  const lin = (o: number, i: number, bias: boolean): Linear => ({ w: w(o * i), b: bias ? rand(o, 0.2) : null, out: o, in: i });
  const ffn = (I: number, bias: boolean): Ffn => ({ gate: lin(I, H, bias), up: lin(I, H, bias), down: lin(H, I, bias) });
  return {
    router: { w: f32Weight(rand(m.experts * H, 0.6)), b: m.routerBias ? rand(m.experts, 0.2) : null, out: m.experts, in: H },
    selectionBias: m.selectionBias ? rand(m.experts, 0.3) : null,
    experts: new EagerExperts(Array.from({ length: m.experts }, () => ffn(m.expertFfn, m.expertBias))),
    shared: m.sharedFfn ? ffn(m.sharedFfn, false) : null,
    sharedGate: null,
  };
}

/** the same weights as f32, for the naive reference */
function widened(w: MoeWeights): MoeWeights {
  const lin = (L: Linear): Linear => ({ ...L, w: f32Weight(weightF32(referenceKernels, L.w)) });
  const ffn = (f: Ffn): Ffn => ({ gate: lin(f.gate), up: lin(f.up), down: lin(f.down) });
  const E = w.experts.count;
  return { ...w, experts: new EagerExperts(Array.from({ length: E }, (_, e) => ffn(w.experts.get(e)))), shared: w.shared && ffn(w.shared) };
}

describe.each(simdSets)('expertsForward (%s row kernels) = the per-expert loop, bit for bit', (simd) => {
  it.each(KINDS)('%s', (_, over) => {
    nativeAddon!.setSimd(simd as 'avx2' | 'scalar');
    for (const [N, H, E, K, I] of TABLE) {
      for (const bf16 of [false, true]) {
        const { randn } = randomTools(N * 31 + E + (bf16 ? 7 : 0));
        const m = moeDefaults({ experts: E, topK: K, expertFfn: I, router: 'softmax_topk', ...over });
        const w = block(m, H, bf16, randn);
        const x = randn(N * H);
        const loop = moeForward({ k: loopOnly, m, w, x, N, H, save: false }).y;
        for (const t of [1, 2, 3]) {
          nativeAddon!.setThreads(t);
          const fused = moeForward({ k: nat, m, w, x, N, H, save: false }).y;
          expect(fused, `N ${N} E ${E} K ${K} bf16 ${bf16} threads ${t}`).toEqual(loop);
        }
        nativeAddon!.setThreads(threads0);
        const want = referenceMoe(m, widened(w), x, N, H);
        expect(maxAbsDiff(loop, want), `vs the naive block: N ${N} bf16 ${bf16}`).toBeLessThanOrEqual(2e-5 * Math.max(1, Math.sqrt(I)));
      }
    }
  });
});

describe('expertsForward: which path runs, and bad arguments', () => {
  it('is called for inference on held experts, not when saving, asking for expert outputs, or on a lazy store', () => {
    const { randn } = randomTools(5);
    const m = moeDefaults({ experts: 8, topK: 2, expertFfn: 8, router: 'softmax_topk' });
    const w = block(m, 16, true, randn), x = randn(4 * 16);
    let calls = 0;
    const counting: Kernels = { ...nat, expertsForward: (...a) => { calls++; nat.expertsForward!(...a); } };
    moeForward({ k: counting, m, w, x, N: 4, H: 16, save: false });
    expect(calls).toBe(1);
    moeForward({ k: counting, m, w, x, N: 4, H: 16, save: true });
    moeForward({ k: counting, m, w, x, N: 4, H: 16, save: false, expertOutputs: true });
    const e = w.experts;
    const lazy: LayerExperts = { count: e.count, has: (i) => e.has(i), get: (i) => e.get(i), residentBytes: () => e.residentBytes() };
    const y = moeForward({ k: counting, m, w: { ...w, experts: lazy }, x, N: 4, H: 16, save: false }).y;
    expect(calls).toBe(1);
    expect(y).toEqual(moeForward({ k: nat, m, w, x, N: 4, H: 16, save: false }).y);
  });
  it('names the problem in a bad call', () => {
    const f = nat.expertsForward!;
    const x = new Float32Array(8), out = new Float32Array(8), wts = new Float32Array(2);
    const W = new Float32Array(4 * 4);
    const ok = () => [W, W, W];
    // N 2, H 4, K 1, E 2: token 0 → expert 0, token 1 → expert 1
    const args = (o: Partial<{ order: Int32Array; offsets: Int32Array; ws: (Float32Array | Uint16Array | null)[]; bs: (Float32Array | null)[]; widths: Int32Array }>) =>
      [x, 2, 4, 1, o.order ?? new Int32Array([0, 1]), o.offsets ?? new Int32Array([0, 1, 2]), wts, out, false, 0, 0,
        o.ws ?? [...ok(), ...ok()], o.bs ?? new Array(6).fill(null), o.widths ?? new Int32Array([4, 4])] as Parameters<typeof f>;
    expect(() => f(...args({}))).not.toThrow();
    expect(() => f(...args({ order: new Int32Array([0, 2]) }))).toThrow(/order\[1\] is out of/);
    expect(() => f(...args({ offsets: new Int32Array([0, 2, 1]) }))).toThrow(/offsets must/);
    expect(() => f(...args({ ws: [W, W, W] }))).toThrow(/3 entries per expert/);
    expect(() => f(...args({ ws: [...ok(), W, new Float32Array(3), W] }))).toThrow(/expert 1 up weight has 3 elements, needs 16/);
    expect(() => f(...args({ ws: [...ok(), W, W, null] }))).toThrow(/expert 1 down weight must be/);
    expect(() => f(...args({ bs: [null, null, null, new Float32Array(1), null, null] }))).toThrow(/expert 1 gate bias has 1 elements, needs 4/);
    expect(() => f(...args({ widths: new Int32Array([4, 0]) }))).toThrow(/widths\[1\] must be positive/);
  });
});
