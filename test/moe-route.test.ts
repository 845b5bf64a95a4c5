/**
 * Routing (src/moe/router.ts) by hand-computed cases: the combine weights of each router kind on logits small enough
 * to work out (softmax, sigmoid, group limits by max and by top-2 sum, the min-norm floor, scaling), the requests it
 * refuses with a clear error (top-k outside [1, E], a mask of the wrong length, fewer allowed experts than k, group
 * limits that leave too few), and the routing's scores over a mask.
 */
import { describe, expect, it } from 'vitest';
import { moeDefaults } from '../src/models/common.js';
import { renormRule, route, routeK } from '../src/moe/router.js';
import { dispatch } from '../src/moe/dispatch.js';
import type { MoeDesc } from '../src/moe/types.js';
import { getKernels, referenceKernels } from '../src/tensor/index.js';
import { MoekitError } from '../src/util/errors.js';

const desc = (over: Partial<MoeDesc>) => moeDefaults({ experts: 4, topK: 2, expertFfn: 3, router: 'softmax_topk', ...over });
const softmax = (v: number[]) => { const mx = Math.max(...v); const e = v.map((x) => Math.exp(x - mx)); const s = e.reduce((a, b) => a + b, 0); return e.map((x) => x / s); };
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const L = Float32Array.from([0.5, 2, -1, 1.5]); // one token, 4 experts

describe.each([['native', getKernels()], ['reference', referenceKernels]] as const)('route by hand (%s kernels)', (_, k) => {
  const near = (got: ArrayLike<number>, want: number[]) => {
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(2e-6);
  };
  const p = softmax([0.5, 2, -1, 1.5]);

  it('softmax → top-2: the two largest probabilities as they are, or renormalised', () => {
    const r = route(k, desc({}), L, 1, null);
    expect(Array.from(r.experts)).toEqual([1, 3]);
    near(r.weights, [p[1], p[3]]);
    near(r.scores, p);
    expect(r.logits).toBe(L);
    near(route(k, desc({ normTopK: true }), L, 1, null).weights, [p[1] / (p[1] + p[3]), p[3] / (p[1] + p[3])]);
  });

  it('top-2 → softmax over the two logits', () => {
    const r = route(k, desc({ router: 'topk_softmax' }), L, 1, null);
    expect(Array.from(r.experts)).toEqual([1, 3]);
    near(r.weights, softmax([2, 1.5]));
  });

  it('softmax + selection bias: the bias picks, the weights are unbiased, renormalised above the floor', () => {
    const bias = Float32Array.from([2, 0, 0, 0]);
    const r = route(k, desc({ router: 'softmax_bias', normTopK: true, normMin: 1e-12, selectionBias: true }), L, 1, bias);
    expect(Array.from(r.experts).sort()).toEqual([0, 1]);
    const s = p[0] + p[1];
    near(Array.from(r.experts).map((e, j) => r.weights[j] * (e === 0 ? 1 : 1)), Array.from(r.experts).map((e) => p[e] / s));
    // the floor: the sum is below normMin, so it divides by normMin
    const f = route(k, desc({ router: 'softmax_bias', normTopK: true, normMin: 2, selectionBias: true }), L, 1, bias);
    near(f.weights, Array.from(f.experts).map((e) => p[e] / 2));
  });

  it('sigmoid, groups by the sum of their top two, renormalised and scaled (DeepSeek-V3)', () => {
    // groups {0, 1} and {2, 3}: sums of sigmoids 1.50 vs 1.09: group 0 is kept
    const m = desc({ router: 'sigmoid_group', nGroup: 2, topkGroup: 1, normTopK: true, routedScaling: 2.5 });
    const r = route(k, m, L, 1, null);
    expect(Array.from(r.experts)).toEqual([1, 0]);
    const s = sig(2) + sig(0.5);
    near(r.weights, [2.5 * sig(2) / s, 2.5 * sig(0.5) / s]);
    near(r.scores, [0.5, 2, -1, 1.5].map(sig));
    // unnormalised: the sigmoids times the scale
    near(route(k, { ...m, normTopK: false }, L, 1, null).weights, [2.5 * sig(2), 2.5 * sig(0.5)]);
    // a selection bias moves the groups: +3 on expert 2 makes group 1 the larger
    const b = route(k, { ...m, selectionBias: true }, L, 1, Float32Array.from([0, 0, 3, 0]));
    expect(Array.from(b.experts)).toEqual([2, 3]);
    near(b.weights, [2.5 * sig(-1) / (sig(-1) + sig(1.5)), 2.5 * sig(1.5) / (sig(-1) + sig(1.5))]);
  });

  it('softmax groups by their maximum, scaled when not renormalised (DeepSeek-V2); renormalised only for k > 1', () => {
    // group maxima: group 0 p[1], group 1 p[3]: with top-1 group, experts 1 and 0
    const m = desc({ router: 'softmax_group', nGroup: 2, topkGroup: 1, routedScaling: 1.7 });
    const r = route(k, m, Float32Array.from([0.5, 2, 1.9, 1.8]), 1, null);
    const q = softmax([0.5, 2, 1.9, 1.8]);
    // by maximum group 0 (2 > 1.9) wins; by the top-2 sum it would be group 1 (1.9 + 1.8 > 2 + 0.5)
    expect(Array.from(r.experts)).toEqual([1, 0]);
    near(r.weights, [1.7 * q[1], 1.7 * q[0]]);
    const n = route(k, { ...m, normTopK: true }, Float32Array.from([0.5, 2, 1.9, 1.8]), 1, null);
    near(n.weights, [q[1] / (q[1] + q[0]), q[0] / (q[1] + q[0])]);
    // k = 1 with normTopK: scaled, not renormalised
    near(route(k, { ...m, normTopK: true }, Float32Array.from([0.5, 2, 1.9, 1.8]), 1, null, { topK: 1 }).weights, [1.7 * q[1]]);
    expect(renormRule({ ...m, normTopK: true }, 1, 0.5)).toEqual({ renorm: false, den: Math.fround(0.5 + 1e-20), c: 1.7, throughS: true });
    expect(renormRule({ ...m, normTopK: true }, 2, 0.5)).toEqual({ renorm: true, den: Math.fround(0.5 + 1e-20), c: 1, throughS: true });
  });

  it('three groups of two, two kept, by the top-2 sum', () => {
    const m = moeDefaults({ experts: 6, topK: 2, expertFfn: 3, router: 'sigmoid_group', nGroup: 3, topkGroup: 2 });
    // group sums: g0 sig(3)+sig(-3) = 1.0, g1 sig(1)+sig(1) = 1.46, g2 sig(0.9)+sig(0.8) = 1.40: g0 (with the best single expert) is dropped
    const r = route(k, m, Float32Array.from([3, -3, 1, 1, 0.9, 0.8]), 1, null);
    expect(Array.from(r.experts)).toEqual([2, 3]);
  });

  it('an allowed-experts mask: masked experts get score 0 and are never chosen; softmax over the allowed ones', () => {
    const allowed = Uint8Array.from([1, 0, 1, 1]);
    const r = route(k, desc({}), L, 1, null, { allowed });
    const q = softmax([0.5, -1, 1.5]);
    near(r.scores, [q[0], 0, q[1], q[2]]);
    expect(Array.from(r.experts)).toEqual([3, 0]);
    const t = route(k, desc({ router: 'topk_softmax' }), L, 1, null, { allowed, topK: 3 });
    expect(Array.from(t.experts)).toEqual([3, 0, 2]);
    near(t.weights, softmax([1.5, 0.5, -1]));
    const g = route(k, desc({ router: 'sigmoid_group', nGroup: 2, topkGroup: 2 }), L, 1, null, { allowed: Uint8Array.from([0, 1, 1, 1]) });
    expect(g.scores[0]).toBe(0);
    expect(Array.from(g.experts)).toEqual([1, 3]);
    // one group kept: the dropped group's experts count as score 0 (transformers' masked_fill), still above a masked one
    const one = route(k, desc({ router: 'sigmoid_group', nGroup: 2, topkGroup: 1 }), L, 1, null, { allowed: Uint8Array.from([0, 1, 0, 1]) });
    expect(Array.from(one.experts)).toEqual([1, 3]);
    near(one.weights, [sig(2), sig(1.5)]);
  });
});

describe('route refuses what it cannot do, naming it', () => {
  const k = getKernels();
  const err = (fn: () => unknown, re: RegExp) => {
    let e: unknown;
    try { fn(); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(MoekitError);
    expect((e as Error).message).toMatch(re);
  };
  it('top-k outside [1, E] or not an integer', () => {
    for (const topK of [0, 5, 1.5, -1, NaN]) err(() => routeK(desc({}), { topK }), /^top-k must be an integer in \[1, 4\], got/);
    expect(routeK(desc({}), {})).toBe(2);
    expect(routeK(desc({}), { topK: 4 })).toBe(4);
    expect(routeK(desc({}), { topK: 1 })).toBe(1);
  });
  it('a mask of the wrong length, or fewer allowed experts than k', () => {
    err(() => routeK(desc({}), { allowed: Uint8Array.from([1, 1, 1]) }), /^the allowed-experts mask has 3 entries, the layer 4 experts$/);
    err(() => routeK(desc({}), { allowed: Uint8Array.from([1, 0, 0, 0]) }), /^top-k 2 exceeds the 1 allowed experts$/);
    expect(routeK(desc({}), { allowed: Uint8Array.from([0, 1, 0, 1]) })).toBe(2);
    err(() => route(k, desc({}), L, 1, null, { allowed: Uint8Array.from([0, 0, 1, 0]) }), /exceeds the 1 allowed experts/);
  });
});

describe('dispatch', () => {
  it('counts per expert, offsets, and assignments grouped by expert in token order', () => {
    // 3 tokens, k = 2: (1, 3), (3, 0), (1, 2)
    const d = dispatch(Int32Array.from([1, 3, 3, 0, 1, 2]), 3, 2, 5);
    expect(Array.from(d.counts)).toEqual([1, 2, 1, 2, 0]);
    expect(Array.from(d.offsets)).toEqual([0, 1, 3, 4, 6, 6]);
    expect(Array.from(d.order)).toEqual([3, 0, 4, 5, 1, 2]);
  });
});
