/**
 * The MoE block's backward (src/moe: layer.ts moeBackward, router.ts routeBackward, experts.ts ffnBackward,
 * dispatch.ts) against central finite differences of its own forward, for every router kind, with masks, top-k
 * overrides and an extra gradient on the router logits; every weight of the block: the router (and its bias), each
 * expert's gate / up / down (and biases), the shared expert and its gate. L = Σ c ⊙ moe(x); a perturbation that
 * changes the selection (top-k has no gradient there) or crosses a kink of the clamped SwiGLU is not compared.
 * Both kernel sets.
 */
import { describe, expect, it } from 'vitest';
import { EagerExperts } from '../src/models/expert-store.js';
import { moeDefaults } from '../src/models/common.js';
import { ffnBackward, ffnForward, SWIGLU } from '../src/moe/experts.js';
import { moeBackward, moeForward } from '../src/moe/layer.js';
import type { MoeDesc, MoeWeights } from '../src/moe/types.js';
import { Grads } from '../src/tensor/grads.js';
import { getKernels, referenceKernels } from '../src/tensor/index.js';
import type { Linear } from '../src/tensor/linear.js';
import { f32Weight } from '../src/tensor/weight.js';
import { rng } from './helpers.js';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);

const KINDS: [string, Partial<MoeDesc>][] = [
  ['softmax → top-k', { router: 'softmax_topk', normTopK: false }],
  ['softmax → top-k → renormalise', { router: 'softmax_topk', normTopK: true }],
  ['top-k → softmax, router bias, clamped SwiGLU with biases (gpt-oss)', { router: 'topk_softmax', routerBias: true, act: 'swiglu_clamped', expertBias: true, swigluLimit: 0.8 }],
  ['softmax + selection bias, min-norm (ERNIE)', { router: 'softmax_bias', normTopK: true, normMin: 1e-12, selectionBias: true, sharedFfn: 5 }],
  ['softmax + selection bias, min-norm floor reached', { router: 'softmax_bias', normTopK: true, normMin: 0.9, selectionBias: true }],
  ['sigmoid + bias, groups, routed scaling, shared expert (DeepSeek-V3)', { router: 'sigmoid_group', normTopK: true, routedScaling: 2.5, nGroup: 2, topkGroup: 1, selectionBias: true, sharedFfn: 5 }],
  ['sigmoid, unnormalised, scaled', { router: 'sigmoid_group', normTopK: false, routedScaling: 1.5 }],
  ['softmax groups, scaled (DeepSeek-V2)', { router: 'softmax_group', routedScaling: 1.7, nGroup: 2, topkGroup: 1 }],
  ['softmax groups, renormalised', { router: 'softmax_group', normTopK: true, nGroup: 2, topkGroup: 2 }],
  ['softmax → top-k, gated shared expert (Qwen2-MoE)', { router: 'softmax_topk', sharedFfn: 4, sharedGated: true }],
  ['softmax + selection bias, scaled, a zero-computation expert (LongCat-Flash)', { router: 'softmax_group', routedScaling: 2, selectionBias: true, zeroExperts: 1 }],
  ['top-k → softmax, a bias after the combine (JetMoE)', { router: 'topk_softmax', outputBias: true }],
];

function block(m: MoeDesc, H: number, rand: (n: number, s: number) => Float32Array): MoeWeights {
  const I = m.expertFfn;
  const lin = (o: number, i: number, bias: boolean): Linear => ({ w: f32Weight(rand(o * i, 0.7)), b: bias ? rand(o, 0.3) : null, out: o, in: i });
  const ffn = (wd: number, bias: boolean) => ({ gate: lin(wd, H, bias), up: lin(wd, H, bias), down: lin(H, wd, bias) });
  return {
    router: lin(m.experts, H, m.routerBias),
    selectionBias: m.selectionBias ? rand(m.experts, 0.1) : null,
    experts: new EagerExperts(Array.from({ length: m.experts - (m.zeroExperts ?? 0) }, () => ffn(I, m.expertBias))), // with weights
    shared: m.sharedFfn ? ffn(m.sharedFfn, false) : null,
    sharedGate: m.sharedGated ? lin(1, H, false) : null,
    bias: m.outputBias ? rand(H, 0.3) : null,
  };
}

describe.each([['native', getKernels()], ['reference', referenceKernels]] as const)('MoE block backward = finite differences (%s kernels)', (_, k) => {
  it.each(KINDS)('%s', (name, over) => {
    const r = rng(name.length * 31 + 7);
    const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);
    const N = 6, H = 8, E = 4, K = 2, I = 5;
    const m = moeDefaults({ experts: E, topK: K, expertFfn: I, router: 'softmax_topk', ...over });
    const w = block(m, H, rand);
    const options: { allowed?: Uint8Array; topK?: number; extra: boolean }[] = [
      { extra: false }, { topK: 1, extra: true },
      ...(m.nGroup > 1 ? [] : [{ allowed: Uint8Array.from([1, 0, 1, 1]), extra: false }]),
    ];
    let checked = 0, total = 0;
    for (const o of options) {
      const x = rand(N * H, 1), c = rand(N * H, 1);
      const extra = o.extra ? rand(N * E, 0.5) : undefined; // dL/dlogits from elsewhere (e.g. a balance loss): L += Σ extra ⊙ logits
      const call = (save: boolean) => moeForward({ k, m, w, x, N, H, save, allowed: o.allowed, topK: o.topK });
      const logitsOf = (ev: { logits: Float32Array }) => (extra ? dot(ev.logits, extra) : 0);
      let ev0: { logits: Float32Array; experts: Int32Array } | undefined;
      const { y, s } = moeForward({ k, m, w, x, N, H, save: true, allowed: o.allowed, topK: o.topK, onRoute: (e) => { ev0 = e; } });
      const idx0 = s!.r.experts.join();
      const g = new Grads(), dx = new Float32Array(N * H);
      moeBackward(k, m, w, s!, c, dx, H, g, extra);
      // L, or NaN when the perturbation changed the selection
      const L = () => {
        let ev: { logits: Float32Array } | undefined;
        const rr = moeForward({ k, m, w, x, N, H, save: true, allowed: o.allowed, topK: o.topK, onRoute: (e) => { ev = e; } });
        return rr.s!.r.experts.join() === idx0 ? dot(rr.y, c) + logitsOf(ev!) : NaN;
      };
      expect(dot(y, c) + logitsOf(ev0!)).toBeCloseTo(L(), 4);
      expect(dot(call(false).y, c)).toBeCloseTo(dot(y, c), 5);
      const check = (t: Float32Array, an: Float32Array | null, i: number, what: string) => {
        total++;
        const h = 2e-3, x0 = t[i];
        const f0 = L();
        t[i] = x0 + h; const a = L();
        t[i] = x0 - h; const b = L();
        t[i] = x0;
        if ([a, b, f0].some(Number.isNaN)) return;
        // a kink (the clamp) between the two sides: the one-sided slopes disagree
        if (Math.abs((a - f0) - (f0 - b)) / h > 0.05 + 0.05 * Math.abs((a - b) / (2 * h))) return;
        const num = (a - b) / (2 * h), got = an ? an[i] : 0;
        checked++;
        expect(Math.abs(num - got), `${what}[${i}] ${JSON.stringify({ ...o, allowed: o.allowed && [...o.allowed] })}`).toBeLessThanOrEqual(3e-3 + 1e-2 * Math.abs(got));
      };
      const grad = (lin: Linear) => g.of(lin.w);
      for (let i = 0; i < N * H; i += 3) check(x, dx, i, 'x');
      for (let i = 0; i < E * H; i += 2) check(w.router.w.data as Float32Array, grad(w.router), i, 'router.w');
      if (w.router.b) for (let i = 0; i < E; i++) check(w.router.b, g.get(w.router.b) ?? null, i, 'router.b');
      if (w.bias) for (let i = 0; i < H; i++) check(w.bias, g.get(w.bias) ?? null, i, 'bias');
      // the experts' weights: each of gate / up / down (and biases), sampled
      for (let e = 0; e < w.experts.count; e++) {
        const f = w.experts.get(e);
        for (const [part, lin] of [['gate', f.gate], ['up', f.up], ['down', f.down]] as const) {
          const arr = lin.w.data as Float32Array, gw = g.get(lin.w.data as Float32Array) ?? null;
          for (let i = e; i < arr.length; i += 11) check(arr, gw, i, `experts.${e}.${part}.w`);
          if (lin.b) for (let i = 0; i < lin.b.length; i += 2) check(lin.b, g.get(lin.b) ?? null, i, `experts.${e}.${part}.b`);
        }
      }
      if (w.shared) {
        for (const [part, lin] of [['gate', w.shared.gate], ['up', w.shared.up], ['down', w.shared.down]] as const) {
          const arr = lin.w.data as Float32Array;
          for (let i = 0; i < arr.length; i += 7) check(arr, grad(lin), i, `shared.${part}.w`);
        }
      }
      if (w.sharedGate) for (let i = 0; i < H; i++) check(w.sharedGate.w.data as Float32Array, grad(w.sharedGate), i, 'sharedGate.w');
    }
    // most comparisons are made (a selection change or a kink skips a few)
    expect(checked).toBeGreaterThan(0.6 * total);
    expect(total).toBeGreaterThan(150);
  });
});

describe('SwiGLU FFN backward = finite differences', () => {
  it.each([['SwiGLU', SWIGLU], ['clamped SwiGLU (gpt-oss: limit 0.6, alpha 1.702)', { clamped: true, limit: 0.6, alpha: 1.702 }]] as const)('%s: dx, and every weight and bias', (_, act) => {
    const r = rng(3);
    const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);
    const k = getKernels();
    const n = 4, H = 6, I = 5;
    const lin = (o: number, i: number): Linear => ({ w: f32Weight(rand(o * i, 0.8)), b: rand(o, 0.3), out: o, in: i });
    const f = { gate: lin(I, H), up: lin(I, H), down: lin(H, I) };
    const x = rand(n * H, 1), c = rand(n * H, 1);
    const L = () => dot(ffnForward(k, f, x, n, act).y, c);
    const s = ffnForward(k, f, x, n, act, true).s!;
    expect(dot(ffnForward(k, f, x, n, act, true).y, c)).toBeCloseTo(L(), 6);
    const g = new Grads(), dx = new Float32Array(n * H);
    ffnBackward(k, f, s, c, dx, g, act);
    let checked = 0;
    const check = (t: Float32Array, an: Float32Array, i: number) => {
      const h = 1e-3, x0 = t[i];
      const f0 = L();
      t[i] = x0 + h; const a = L();
      t[i] = x0 - h; const b = L();
      t[i] = x0;
      if (Math.abs((a - f0) - (f0 - b)) / h > 0.05) return; // a kink of the clamp
      checked++;
      expect(Math.abs((a - b) / (2 * h) - an[i])).toBeLessThanOrEqual(2e-3 + 1e-2 * Math.abs(an[i]));
    };
    for (let i = 0; i < n * H; i++) check(x, dx, i);
    for (const l of [f.gate, f.up, f.down]) {
      const arr = l.w.data as Float32Array;
      for (let i = 0; i < arr.length; i++) check(arr, g.of(l.w), i);
      for (let i = 0; i < l.b!.length; i++) check(l.b!, g.of(l.b!), i);
    }
    expect(checked).toBeGreaterThan(0.8 * (n * H + 3 * (I * H) + 2 * I + H));
  });
});
