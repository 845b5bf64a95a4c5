/**
 * The fused expert kernel (expertsForward, native/experts.cc) against its reference, moe/layer.ts's
 * per-expert loop on the same kernels: bit for bit, for f32, bf16, q8_0 and q4_0 experts, biases, gpt-oss's clamped
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
import { bf16Weight, f32Weight, quantWeight, weightF32 } from '../src/tensor/weight.js';
import { quantize } from '../src/tensor/ref/quant.js';
import { QUANT_BLOCK_BYTES } from '../src/tensor/quant.js';
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
// quantised experts: H and I multiples of the 32-weight block (the 16-row VNNI kernel from 4 rows of A on, the GEMV
// at 1; test/kernels-quant.test.ts cuts its groups of 16 W rows). Not H = 96 at N = 200: OpenBLAS's f32 router GEMM
// there gives other bits with 1 thread than with 2, routing the loop and the fused call differently
const QTABLE: [number, number, number, number, number][] = [[1, 32, 8, 2, 64], [7, 64, 8, 3, 32], [64, 64, 16, 2, 96], [200, 64, 16, 4, 64]];
type Dtype = 'f32' | 'bf16' | 'q8_0' | 'q4_0';

function qweight(t: 'q8_0' | 'q4_0', f: Float32Array) {
  const b = new Uint8Array((f.length / 32) * QUANT_BLOCK_BYTES[t]);
  quantize(t, b, f, f.length);
  return quantWeight(t, b);
}

function block(m: MoeDesc, H: number, dt: Dtype, rand: (n: number, s?: number) => Float32Array): MoeWeights {
  const w = (n: number) => (dt === 'bf16' ? bf16Weight(f32ToBf16Array(rand(n, 0.6))) : dt === 'f32' ? f32Weight(rand(n, 0.6)) : qweight(dt, rand(n, 0.6)));
  const lin = (o: number, i: number, bias: boolean): Linear => ({ w: w(o * i), b: bias ? rand(o, 0.2) : null, out: o, in: i });
  const ffn = (I: number, bias: boolean): Ffn => ({ gate: lin(I, H, bias), up: lin(I, H, bias), down: lin(H, I, bias) });
  // a quantised block's shared expert (width 6 here: not whole blocks) stays f32
  const f32Lin = (o: number, i: number): Linear => ({ w: f32Weight(rand(o * i, 0.6)), b: null, out: o, in: i });
  const sharedF32 = (I: number): Ffn => ({ gate: f32Lin(I, H), up: f32Lin(I, H), down: f32Lin(H, I) });
  return {
    router: { w: f32Weight(rand(m.experts * H, 0.6)), b: m.routerBias ? rand(m.experts, 0.2) : null, out: m.experts, in: H },
    selectionBias: m.selectionBias ? rand(m.experts, 0.3) : null,
    experts: new EagerExperts(Array.from({ length: m.experts }, () => ffn(m.expertFfn, m.expertBias))),
    shared: m.sharedFfn ? (dt === 'q8_0' || dt === 'q4_0' ? sharedF32(m.sharedFfn) : ffn(m.sharedFfn, false)) : null,
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
    for (const dt of ['f32', 'bf16', 'q8_0', 'q4_0'] as const) {
      for (const [N, H, E, K, I] of dt === 'f32' || dt === 'bf16' ? TABLE : QTABLE) {
        const { randn } = randomTools(N * 31 + E + (dt === 'bf16' ? 7 : dt === 'q8_0' ? 11 : dt === 'q4_0' ? 13 : 0));
        const m = moeDefaults({ experts: E, topK: K, expertFfn: I, router: 'softmax_topk', ...over });
        const w = block(m, H, dt, randn);
        const x = randn(N * H);
        const loop = moeForward({ k: loopOnly, m, w, x, N, H, save: false }).y;
        for (const t of [1, 2, 3]) {
          nativeAddon!.setThreads(t);
          const fused = moeForward({ k: nat, m, w, x, N, H, save: false }).y;
          expect(fused, `N ${N} E ${E} K ${K} ${dt} threads ${t}`).toEqual(loop);
        }
        nativeAddon!.setThreads(threads0);
        // the naive block on the same (dequantised) weights; quantised experts also round activations to 8 bits
        const want = referenceMoe(m, widened(w), x, N, H);
        const big = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        const tol = dt === 'q8_0' ? 0.02 * big : dt === 'q4_0' ? 0.2 * big : 2e-5 * Math.max(1, Math.sqrt(I));
        expect(maxAbsDiff(loop, want), `vs the naive block: N ${N} ${dt}`).toBeLessThanOrEqual(tol);
      }
    }
  });
});

describe('expertsForward: which path runs, and bad arguments', () => {
  it('is called for inference on held experts, not when saving, asking for expert outputs, or on a lazy store', () => {
    const { randn } = randomTools(5);
    const m = moeDefaults({ experts: 8, topK: 2, expertFfn: 8, router: 'softmax_topk' });
    const w = block(m, 16, 'bf16', randn), x = randn(4 * 16);
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
    // q8_0 blocks: need qtypes, whole blocks and the bytes of out × in weights
    const H = 32, q = new Uint8Array(34 * 4); // [4, 32]: 4 blocks
    const qd = new Uint8Array(34 * 4);         // down [32, 4]: K = 4, not whole blocks
    const qx = new Float32Array(2 * H), qout = new Float32Array(2 * H);
    const qargs = (ws: (Uint8Array | Float32Array | null)[], qt?: Int32Array) =>
      [qx, 2, H, 1, new Int32Array([0, 1]), new Int32Array([0, 1, 2]), wts, qout, false, 0, 0, ws, new Array(6).fill(null), new Int32Array([4, 4]), qt] as Parameters<typeof f>;
    const Wd = new Float32Array(H * 4);
    expect(() => f(...qargs([q, q, Wd, q, q, Wd], new Int32Array([0, 0, -1, 0, 0, -1])))).not.toThrow();
    expect(() => f(...qargs([q, q, Wd, q, q, Wd]))).toThrow(/expert 0 gate weight must be .*Uint8Array of q8_0/);
    expect(() => f(...qargs([q, q, Wd, q, q, Wd], new Int32Array(3)))).toThrow(/qtypes has 3 elements/);
    expect(() => f(...qargs([q, q, qd, q, q, Wd], new Int32Array([0, 0, 0, 0, 0, -1])))).toThrow(/expert 0 down: a quantised weight needs its input width \(4\) to be a multiple of 32/);
    expect(() => f(...qargs([q.subarray(0, 100), q, Wd, q, q, Wd], new Int32Array([0, 0, -1, 0, 0, -1])))).toThrow(/expert 0 gate weight has 100 bytes, needs 136/);
  });
});
