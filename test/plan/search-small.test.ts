/**
 * The layout search on clusters small enough to check by brute force (fast: the mutation runs use this file rather
 * than search.test.ts's published-run searches): divisors against a count to n; the enumeration against every
 * (tp, cp, pp, vpp, ep, etp) tuple passed through spec.layoutProblem; the ranking against simulate() of each layout;
 * pinned fields, the exhaustive knobs, the batch rule, and a cluster where nothing fits or nothing is valid.
 */
import { describe, expect, it } from 'vitest';
import { batchProblem, divisors, enumerateLayouts, hierarchicalAllgatherValid, layoutKey, rankOf, search } from '../../src/plan/search.js';
import { simulate } from '../../src/plan/simulate.js';
import { layoutProblem, resolveSpec, type Parallel } from '../../src/plan/spec.js';

const spec = (devices: number, extra: Record<string, unknown> = {}, training: Record<string, unknown> = {}) =>
  resolveSpec({ model: 'mixtral-8x7b', hardware: { preset: 'h100', devices }, parallel: { ...extra }, training: { seq_len: 4096, global_batch: 64, ...training } }, 'spec', { template: true });

describe('divisors', () => {
  it('equal a count to n, ascending, for 1..400 and a few large n', () => {
    for (let n = 1; n <= 400; n++) expect(divisors(n), `${n}`).toEqual(Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0));
    expect(divisors(6144)).toEqual(Array.from({ length: 6144 }, (_, i) => i + 1).filter((d) => 6144 % d === 0));
    expect(divisors(9973)).toEqual([1, 9973]); // a prime
    expect(divisors(2 * 9973)).toEqual([1, 2, 9973, 2 * 9973]);
  });
});

describe('layout enumeration by brute force', () => {
  it.each([8, 16, 24])('%i devices: exactly the tuples that pass layoutProblem', (devices) => {
    const s = spec(devices);
    const got = enumerateLayouts(s).map(layoutKey).sort();
    const want: string[] = [];
    for (const tp of [1, 2, 4, 8]) for (const cp of [1, 2, 4, 8]) for (let pp = 1; pp <= devices; pp++) for (const vpp of [1, 2, 4, 8]) {
      for (let ep = 1; ep <= s.model.experts; ep++) for (const etp of [1, 2, 4, 8]) {
        if (devices % (tp * cp * pp) !== 0 || etp > tp) continue;
        const dp = devices / (tp * cp * pp);
        const p: Parallel = { ...s.parallel, tp, cp, pp, vpp, ep, etp, dp, schedule: vpp > 1 ? 'interleaved' : '1f1b' };
        if (!layoutProblem(p, devices, s.model)) want.push(layoutKey(p));
      }
    }
    expect(got).toEqual([...new Set(want)].sort());
    expect(got.length).toBeGreaterThan(10);
  });

  it('pinned fields keep only the layouts with those values', () => {
    const s = spec(16);
    const all = enumerateLayouts(s);
    const tp2 = enumerateLayouts(s, { tp: 2, ep: 4 });
    expect(tp2.length).toBe(all.filter((p) => p.tp === 2 && p.ep === 4).length);
    expect(tp2.every((p) => p.tp === 2 && p.ep === 4)).toBe(true);
    expect(enumerateLayouts(s, { tp: undefined }).length).toBe(all.length);
  });

  it('layout keys name the non-default fields only', () => {
    const base = spec(16).parallel;
    expect(layoutKey({ ...base, tp: 2, pp: 2, vpp: 1, ep: 4, etp: 2, cp: 1, dp: 4 })).toBe('TP2 PP2 EP4 DP4');
    expect(layoutKey({ ...base, tp: 2, pp: 4, vpp: 2, ep: 8, etp: 1, cp: 2, dp: 1 })).toBe('TP2 PP4 VPP2 EP8 ETP1 CP2 DP1');
  });
});

describe('search', () => {
  it('ranks every fitting layout by throughput, each result the simulation of that layout', () => {
    const s = spec(16);
    const r = search(s, { top: Infinity });
    const layouts = enumerateLayouts(s);
    expect(r.layouts_enumerated).toBe(layouts.length);
    expect(r.simulations).toBe(layouts.filter((p) => !batchProblem(p, s.training)).length * 3); // none, selective, full
    expect(r.fitting_layouts).toBe(r.top.length);
    expect(r.fitting_layouts).toBeGreaterThan(0);
    for (let i = 1; i < r.top.length; i++) expect(r.top[i - 1].result.tokens_per_s).toBeGreaterThanOrEqual(r.top[i].result.tokens_per_s);
    for (const t of r.top.slice(0, 5)) {
      expect(t.result.fits).toBe(true);
      const again = simulate({ model: s.model, hardware: s.hardware, devices: s.devices, parallel: t.parallel, training: t.training });
      expect(again.tokens_per_s).toBe(t.result.tokens_per_s);
      expect(t.layout).toBe(layoutKey(t.parallel));
      // each layout's best recompute setting: no other setting of the same layout that fits is faster
      for (const recompute of ['none', 'selective', 'full'] as const) {
        const o = simulate({ model: s.model, hardware: s.hardware, devices: s.devices, parallel: { ...t.parallel, recompute }, training: t.training });
        if (o.fits) expect(o.tokens_per_s).toBeLessThanOrEqual(t.result.tokens_per_s);
      }
    }
    expect(search(s, { top: 3 }).top.map((x) => x.layout)).toEqual(r.top.slice(0, 3).map((x) => x.layout));
    expect(search(s).top.length).toBe(Math.min(10, r.top.length));
    expect(r.closest).toBeUndefined();
    expect(r.no_valid_layout).toBeUndefined();
    expect(r.elapsed_s).toBeGreaterThan(0);
    // rankOf finds the best layout first, and a layout the search never enumerates nowhere
    const best = r.top[0].parallel;
    expect(rankOf(s, { tp: best.tp, pp: best.pp, ep: best.ep, cp: best.cp, vpp: best.vpp }).rank).toBe(1);
    expect(rankOf(s, { tp: 3 }).rank).toBe(-1);
  });

  it('exhaustive: also micro-batch 1 and 2 and ZeRO 0-3, never slower than the plain search', () => {
    const s = resolveSpec({ model: 'qwen3-30b-a3b', hardware: { preset: 'h100', devices: 8 }, parallel: {}, training: { seq_len: 4096, global_batch: 64, micro_batch: 1 } }, 'spec', { template: true });
    const plain = search(s, { top: 1 }), ex = search(s, { top: 1, exhaustive: true });
    const layouts = enumerateLayouts(s);
    // four ZeRO stages x micro-batches {1, 2} x three recompute settings, where the batch rule allows
    const allowed = (mb: number) => layouts.filter((p) => !batchProblem(p, { ...s.training, micro_batch: mb })).length;
    expect(ex.simulations).toBe(4 * 3 * (allowed(1) + allowed(2)));
    expect(plain.simulations).toBe(3 * allowed(1));
    expect(plain.fitting_layouts).toBeGreaterThan(0);
    expect(ex.fitting_layouts).toBeGreaterThanOrEqual(plain.fitting_layouts);
    expect(ex.top[0].result.tokens_per_s).toBeGreaterThanOrEqual(plain.top[0].result.tokens_per_s);
  });

  it('nothing fits on 1 device: no top, the layout closest to fitting', () => {
    const r = search(spec(1));
    expect(r.fitting_layouts).toBe(0);
    expect(r.top).toEqual([]);
    expect(r.closest).toBeDefined();
    expect(r.closest!.result.fits).toBe(false);
    expect(r.no_valid_layout).toBeUndefined();
  });

  it('no layout suits the batch: says which rule every layout broke', () => {
    const r = search(spec(16, {}, { global_batch: 3, micro_batch: 2 }));
    expect(r.simulations).toBe(0);
    expect(r.no_valid_layout).toMatch(/^none of the \d+ layouts suits the batch \(e\.g\. TP\d.*global_batch 3 not divisible by micro_batch\*dp = \d+\)$/);
    expect(r.top).toEqual([]);
  });

  it('the batch rule: global batch a multiple of micro-batch × dp; interleaving needs micro-batches a multiple of pp', () => {
    const p = spec(16).parallel;
    const t = spec(16).training;
    expect(batchProblem({ ...p, dp: 4 }, { ...t, global_batch: 64, micro_batch: 2 })).toBeUndefined();
    expect(batchProblem({ ...p, dp: 3 }, { ...t, global_batch: 64, micro_batch: 1 })).toBe('global_batch 64 not divisible by micro_batch*dp = 3');
    expect(batchProblem({ ...p, dp: 2, pp: 4, vpp: 2, schedule: 'interleaved' }, { ...t, global_batch: 12, micro_batch: 2 })).toBe('interleaved schedule: 3 micro-batches not a multiple of pp 4');
    expect(batchProblem({ ...p, dp: 2, pp: 4, vpp: 2, schedule: 'interleaved' }, { ...t, global_batch: 16, micro_batch: 2 })).toBeUndefined();
    expect(batchProblem({ ...p, dp: 2, pp: 4, vpp: 1, schedule: '1f1b' }, { ...t, global_batch: 12, micro_batch: 2 })).toBeUndefined();
  });

  it("MindSpeed's hierarchical all-to-allv: tp > 1 equal to a node, etp 1, ep a multiple of tp", () => {
    expect(hierarchicalAllgatherValid({ tp: 8, etp: 1, ep: 16 }, 8)).toBe(true);
    expect(hierarchicalAllgatherValid({ tp: 8, etp: 1, ep: 12 }, 8)).toBe(false);
    expect(hierarchicalAllgatherValid({ tp: 8, etp: 2, ep: 16 }, 8)).toBe(false);
    expect(hierarchicalAllgatherValid({ tp: 4, etp: 1, ep: 16 }, 8)).toBe(false);
    expect(hierarchicalAllgatherValid({ tp: 1, etp: 1, ep: 1 }, 1)).toBe(false);
  });
});
