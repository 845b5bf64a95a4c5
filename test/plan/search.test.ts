import { describe, expect, it } from 'vitest';
import { CALIBRATION } from '../../src/plan/calibration.js';
import { batchProblem, enumerateLayouts, rankOf, search } from '../../src/plan/search.js';
import { loadSpec, resolveSpec } from '../../src/plan/spec.js';
import { lawParams, FINE_GRAINED_LAW, granularity, predictedLoss, sweep, sweepShapes, tokensToLoss } from '../../src/plan/sweep.js';
import { rowSpec } from './helpers.js';

/** a calibration row's spec, resolved (a search template with `template`) */

describe('layout search', () => {
  it('enumerates only valid layouts (divisibility rules)', () => {
    const s = resolveSpec({ model: 'mixtral-8x22b', hardware: { preset: 'h100', devices: 128 }, parallel: {}, training: { seq_len: 4096, global_batch: 256 } }, 'spec', { template: true });
    const ls = enumerateLayouts(s);
    expect(ls.length).toBeGreaterThan(100);
    for (const p of ls) {
      expect(p.tp * p.pp * p.cp * p.dp).toBe(128);
      expect(48 % p.tp).toBe(0);
      expect(8 % p.ep).toBe(0);
      expect((p.tp * p.cp * p.dp) % (p.ep * p.etp)).toBe(0);
    }
  });
  it('ranks fitting layouts by throughput', () => {
    const s = resolveSpec({ model: 'mixtral-8x22b', hardware: { preset: 'h100', devices: 128 }, parallel: {}, training: { seq_len: 4096, global_batch: 256 } }, 'spec', { template: true });
    const r = search(s, { top: 5 });
    expect(r.top.length).toBe(5);
    for (let i = 1; i < r.top.length; i++) expect(r.top[i - 1].result.tokens_per_s).toBeGreaterThanOrEqual(r.top[i].result.tokens_per_s);
    for (const x of r.top) expect(x.result.fits).toBe(true);
  });
  it('no fitting layout: says so and shows the closest', () => {
    const s = resolveSpec({ model: 'deepseek-v3', hardware: { preset: 'h100', devices: 16 }, parallel: {}, training: { seq_len: 4096, global_batch: 64 } }, 'spec', { template: true });
    const r = search(s);
    expect(r.top.length).toBe(0);
    expect(r.closest).toBeDefined();
    expect(r.closest!.result.fits).toBe(false);
  });
  const PANGU = { tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, cp: 1 }; // TP8 EP4 under MindSpeed TP-extend-EP: experts over 32 NPUs
  it('Pangu Ultra MoE on 6K 910B: the published layout is enumerated, fits, and matches simulate', () => {
    const s = rowSpec('pangu-ultra-moe', true);
    const { rank, of, result } = rankOf(s, PANGU);
    expect(rank).toBeGreaterThan(0);
    expect(of).toBeGreaterThan(1000);
    const mine = result.top[rank - 1];
    // its best knob setting is at least as fast as the calibrated spec's own setting (236 t/s/NPU)
    expect(mine.result.tokens_per_s_per_device).toBeGreaterThanOrEqual(0.99 * 236);
    // with TP-extend-EP it keeps the hierarchical (all-gather) all-to-all
    expect(mine.parallel.a2a).toBe('hierarchical-allgather');
    // the old reading (expert TP 8) is far down: every device repeats the permutation and activations of 8 ranks
    const etp8 = rankOf(s, { tp: 8, pp: 16, vpp: 2, ep: 4, etp: 8, cp: 1 });
    expect(etp8.rank).toBeGreaterThan(rank);
  });
  it('Pangu Ultra MoE on 6K 910B: the published layout is in the top 5% and within 20% of the best', () => {
    const s = rowSpec('pangu-ultra-moe', true);
    const { rank, of, result } = rankOf(s, PANGU);
    expect(rank / of).toBeLessThan(0.05);
    expect(result.top[rank - 1].result.tokens_per_s / result.top[0].result.tokens_per_s).toBeGreaterThan(0.8);
  });
  // Not met (docs/planner.md, "Layout search"): ranked ~90th of ~5,400 at the paper's micro-batch 2; the model
  // prefers fewer pipeline stages with more virtual stages (PP4-6 x VPP8: a 4-5% bubble against the published
  // PP16 x VPP2's 18%) and a wider EP (64-128), about 15% faster than the published layout.
  it.todo('Pangu Ultra MoE on 6K 910B: ranks the published TP8 PP16 VPP2 EP4 layout in the top 5');
  it('interleaved schedule: micro-batches must be a multiple of pp (Megatron-Core r0.8.0); batch divisibility', () => {
    const base = resolveSpec({ model: 'mixtral-8x22b', hardware: { preset: 'h100', devices: 128 }, parallel: { tp: 2, pp: 8, vpp: 7, ep: 8 }, training: { seq_len: 4096, global_batch: 256 } });
    expect(batchProblem(base.parallel, base.training)).toBeUndefined(); // 32 micro-batches, pp 8
    expect(batchProblem(base.parallel, { ...base.training, global_batch: 96 })).toMatch(/not a multiple of pp/); // 12 % 8
    expect(batchProblem({ ...base.parallel, vpp: 1, schedule: '1f1b' }, { ...base.training, global_batch: 96 })).toBeUndefined();
    expect(batchProblem(base.parallel, { ...base.training, global_batch: 100 })).toMatch(/not divisible/);
    // and the search never returns a layout that breaks it
    const s = resolveSpec({ model: 'mixtral-8x22b', hardware: { preset: 'h100', devices: 128 }, parallel: {}, training: { seq_len: 4096, global_batch: 96 } }, 'spec', { template: true });
    for (const x of search(s, { top: Infinity }).top) expect(batchProblem(x.parallel, x.training)).toBeUndefined();
  });
});

describe('shape sweep (Pangu Ultra MoE study)', () => {
  const r = sweep(loadSpec('test/plan/fixtures/pangu-sweep.yaml', { template: true }));
  const find = (L: number, H: number, E: number) => r.rows.find((x) => x.shape.layers === L && x.shape.hidden === H && x.shape.experts === E)!;
  it('keeps only shapes in the parameter budget and marks a Pareto front', () => {
    expect(r.shapes_in_budget).toBeGreaterThan(5);
    for (const x of r.rows) {
      expect(x.total_params_b).toBeGreaterThanOrEqual(640);
      expect(x.active_params_b).toBeLessThanOrEqual(45);
    }
    expect(r.pareto_front.length).toBeGreaterThan(0);
  });
  it('61 layers x 7680 ahead of the deeper 69 x 7168 on throughput (the paper compares depth on throughput)', () => {
    for (const E of [64, 128, 256]) {
      expect(find(61, 7680, E).best!.mfu).toBeGreaterThan(find(69, 7168, E).best!.mfu);
      expect(find(61, 7680, E).best!.tokens_per_s).toBeGreaterThan(find(69, 7168, E).best!.tokens_per_s);
    }
  });
  it('the paper\'s own depth comparison: 61 x 7680 ahead of both 66-layer shapes on throughput', () => {
    const d = sweep(loadSpec('test/plan/fixtures/pangu-depth.yaml', { template: true }));
    const tps = (L: number, H: number) => d.rows.find((x) => x.shape.layers === L && x.shape.hidden === H)!.best!.tokens_per_s;
    expect(tps(61, 7680) / tps(66, 7680)).toBeGreaterThan(1.05);
    expect(tps(61, 7680) / tps(66, 7168)).toBeGreaterThan(1.0);
  });
  it('expert granularity: on throughput alone coarser experts win (the paper prefers 256 on model quality)', () => {
    expect(find(61, 7680, 64).best!.mfu).toBeGreaterThan(find(61, 7680, 256).best!.mfu);
  });
  it('time-to-quality (Krajewski et al. 2024 law): 256 experts reach the target loss first, then 128, then 64', () => {
    expect(r.quality_target!.tokens).toBe(13.2e12);
    for (const [L, H] of [[53, 8192], [61, 7168], [61, 7680], [61, 8192], [69, 7168]]) {
      const d = (E: number) => find(L, H, E).quality!.days_to_target;
      expect(d(256)).toBeLessThan(d(128));
      expect(d(128)).toBeLessThan(d(64));
    }
    // the base shape needs exactly the budget to reach its own loss
    expect(find(61, 7680, 256).quality!.tokens_to_target / 13.2e12).toBeCloseTo(1, 9);
    // by_time_to_quality is sorted
    const t = r.by_time_to_quality.map((x) => x.quality!.days_to_target);
    for (let i = 1; i < t.length; i++) expect(t[i]).toBeGreaterThanOrEqual(t[i - 1]);
  });
  it('time-to-quality does not see depth vs width: the law rewards the deeper shape\'s 5% more active parameters', () => {
    // (recorded, not a target: the depth/width conclusion holds on throughput, see the test above)
    expect(find(69, 7168, 256).active_params_b).toBeGreaterThan(find(61, 7680, 256).active_params_b);
    expect(find(69, 7168, 256).quality!.days_to_target).toBeLessThan(find(61, 7680, 256).quality!.days_to_target);
  });
  it('time-to-quality: 256 experts stay first with a granularity coefficient g three times smaller (they tie with 128 at g/4)', () => {
    const spec = loadSpec('test/plan/fixtures/pangu-sweep.yaml', { template: true });
    const shapes = sweepShapes(spec);
    const k = { ...FINE_GRAINED_LAW, g: FINE_GRAINED_LAW.g / 3 };
    const target = predictedLoss(lawParams(spec.model), 13.2e12, granularity(spec.model), k);
    const days = (E: number) => {
      const s = shapes.find((x) => x.layers === 61 && x.hidden === 7680 && x.experts === E)!;
      return tokensToLoss(lawParams(s), granularity(s), target, k) / find(61, 7680, E).best!.tokens_per_s;
    };
    expect(days(256)).toBeLessThan(days(128));
    expect(days(256)).toBeLessThan(days(64));
  });
  it('the scaling law: tokensToLoss inverts predictedLoss; finer experts (larger G) lower the loss', () => {
    const N = 40e9, G = 15, D = 13.2e12;
    expect(tokensToLoss(N, G, predictedLoss(N, D, G)) / D).toBeCloseTo(1, 9);
    expect(predictedLoss(N, D, 15)).toBeLessThan(predictedLoss(N, D, 3.75));
    expect(tokensToLoss(N, G, 0.4)).toBe(Infinity);
    expect(granularity({ hidden: 7680, expert_ffn: 2048 })).toBe(15);
  });
});

