/**
 * src/plan/sweep.ts by hand, every sweep run inside its test (fast: a few milliseconds a sweep on one H100; the
 * mutation run executes this file for every covered mutant). sweep.test.ts holds the same checks on a larger grid; a
 * sweep run while the file is collected (outside any test) is invisible to the mutation run, so the ranking, Pareto
 * front, time-to-quality and timing are checked here again inside tests.
 *
 * FINE_GRAINED_LAW and SWEEP_KEYS are evaluated once, when sweep.ts is imported; under the mutation run's shared module
 * graph that happens before any mutant is active, so their tests import sweep.ts afresh inside the test (`freshSweep`:
 * a query string makes it a module instance of its own, evaluated then).
 */
import { describe, expect, it } from 'vitest';
import { paramCounts } from '../../src/plan/flops.js';
import type { ModelShape } from '../../src/plan/models.js';
import { resolveSpec, type Spec } from '../../src/plan/spec.js';
import { granularity, lawParams, predictedLoss, sweep, sweepShapes, type SweepRow } from '../../src/plan/sweep.js';
import { MoekitError } from '../../src/util/errors.js';
import { PAPER, errorOf, paperLoss, rel } from './helpers.js';

type SweepModule = typeof import('../../src/plan/sweep.js');
let instance = 0;
/** src/plan/sweep.ts evaluated now, as a module instance of its own (see the header) */
async function freshSweep(): Promise<SweepModule> {
  const url = `../../src/plan/sweep.js?sweep-hand=${++instance}`;
  return (await import(/* @vite-ignore */ url)) as SweepModule;
}

/**
 * The base of sweep.test.ts: 4 layers (the first dense, FFN 512), hidden 256, 4 heads x 64, vocab 1000, 8 experts of
 * width 256, top-2, one shared expert, untied. At hidden 256 (attention 4 h^2 = 262144, dense FFN 3 h 512 = 393216,
 * expert = shared = 3 h 256 = 196608, router 256 E, embedding = head = 256000):
 *   total(L, E) = 512000 + (262144 + 393216) + (L - 1)(262144 + 196608 + 256 E + 196608 E)
 *               = 1167360 + (L - 1)(458752 + 196864 E)
 */
const BASE = {
  name: 'tiny', layers: 4, hidden: 256, heads: 4, kv_heads: 4, head_dim: 64, vocab: 1000, dense_layers: 1, dense_ffn: 512,
  experts: 8, shared_experts: 1, top_k: 2, expert_ffn: 256,
};
const total = (L: number, E: number) => 1167360 + (L - 1) * (458752 + 196864 * E);
const specOf = (sw: Record<string, unknown> | undefined, model: Record<string, unknown> = BASE): Spec =>
  resolveSpec({ model, hardware: { preset: 'h100', devices: 1 }, training: { seq_len: 1024, global_batch: 8 }, ...(sw ? { sweep: sw } : {}) }, 'spec', { template: true });
const key = (s: Pick<ModelShape, 'layers' | 'hidden' | 'experts' | 'top_k' | 'expert_ffn'>) => `L${s.layers} H${s.hidden} E${s.experts} K${s.top_k} I${s.expert_ffn}`;

describe('module constants (sweep.ts evaluated inside the test)', () => {
  it('FINE_GRAINED_LAW is the paper\'s fitted MoE row, and the default law of predictedLoss', async () => {
    const s = await freshSweep();
    expect({ ...s.FINE_GRAINED_LAW }).toStrictEqual(PAPER);
    // N = 6.7e9, D = 1.3e12, G = 14 (DeepSeek-V3-like): the law written out with the paper's numbers
    rel(s.predictedLoss(6.7e9, 1.3e12, 14), paperLoss(6.7e9, 1.3e12, 14));
    rel(s.tokensToLoss(6.7e9, 14, paperLoss(6.7e9, 1.3e12, 14)), 1.3e12, 1e-9);
  });
  it('SWEEP_KEYS: the nine known fields, each accepted, all at once too; anything else is named with the list', async () => {
    const s = await freshSweep();
    const all = { layers: [4], hidden: [256], experts: [8], top_k: [2], expert_ffn: [256], granularity: true, total_params_b: [0, 1], active_params_b: [0, 1], quality_tokens: 1e9 };
    expect(s.sweepShapes(specOf(all)).map(key)).toEqual(['L4 H256 E8 K2 I256']);
    for (const [k, v] of Object.entries(all)) expect(s.sweepShapes(specOf({ [k]: v })).map(key), k).toEqual(['L4 H256 E8 K2 I256']);
    const e = errorOf(() => s.sweepShapes(specOf({ layers: [4], expert: [8] })));
    expect(e.message).toBe("unknown sweep field 'expert' (known: layers, hidden, experts, top_k, expert_ffn, granularity, total_params_b, active_params_b, quality_tokens)");
    expect(e.file).toBe('sweep.expert');
  });
});

describe('sweepShapes: lists', () => {
  it('1 is a positive integer in every list', () => {
    const shapes = sweepShapes(specOf({ layers: [1], hidden: [1], experts: [1], top_k: [1], expert_ffn: [1] }));
    expect(shapes.map(key)).toEqual(['L1 H1 E1 K1 I1']);
    // min(base dense_layers 1, layers 1) = 1 leading dense layer; the shared expert keeps the base's width 1 x 256
    expect(shapes[0]).toMatchObject({ name: 'L1 H1 E1 K1 I1', dense_layers: 1, shared_ffn: 256 });
  });
  it('0 and negatives are not', () => {
    for (const bad of [[0], [1, 0], [-1]]) {
      const e = errorOf(() => sweepShapes(specOf({ top_k: bad })));
      expect(e.message).toBe('must be a list of positive integers');
      expect(e.file).toBe('sweep.top_k');
    }
  });
});

describe('sweep: time-to-quality with no shape left', () => {
  it('a MoE base whose every MoE setting is dropped (top_k > experts): no rows, no error, the target still set', () => {
    const spec = specOf({ experts: [2], top_k: [4], quality_tokens: 1e9 });
    const r = sweep(spec);
    expect(r.shapes_considered).toBe(0);
    expect(r.shapes_in_budget).toBe(0);
    expect(r.rows).toEqual([]);
    expect(r.pareto_front).toEqual([]);
    expect(r.by_time_to_quality).toEqual([]);
    // the base's loss after 1e9 tokens: N = total(4, 8) - embedding - head, G = 4 x 256 / 256 = 4
    expect(r.quality_target!.tokens).toBe(1e9);
    rel(r.quality_target!.loss, paperLoss(total(4, 8) - 512000, 1e9, 4));
  });
});

describe('sweep: ranking, Pareto front, time-to-quality and timing (one H100)', () => {
  // depths 2, 4 and 4 again (duplicate rows) x hidden 256 or 2^20 x experts 4, 8 x top_k 1, 2: 24 shapes. The 2^20-wide
  // ones fit no layout on one 80 GB device: their embedding alone is 2^20 x 1000 = 1.05e9 parameters, 16+ bytes each
  // in training (bf16 weight, fp32 gradient, fp32 master and Adam moments), and each expert 3 x 2^20 x 256 = 0.8e9 more
  const sw = { layers: [2, 4, 4], hidden: [256, 2 ** 20], experts: [4, 8], top_k: [1, 2], quality_tokens: 1e9 };
  const run = () => {
    const spec = specOf(sw);
    const t0 = performance.now();
    const r = sweep(spec);
    return { spec, r, wall: (performance.now() - t0) / 1e3 };
  };
  /** o beats x: at least as large and as fast, strictly one of the two */
  const beats = (o: SweepRow, x: SweepRow) => !!(o.best && x.best && o.total_params_b >= x.total_params_b && o.best.mfu >= x.best.mfu &&
    (o.total_params_b > x.total_params_b || o.best.mfu > x.best.mfu));

  it('one row per shape; the totals by hand; exactly the 2^20-wide shapes have no layout', () => {
    const { spec, r } = run();
    expect(r.shapes_considered).toBe(24);
    expect(r.shapes_in_budget).toBe(24);
    expect(r.rows.map((x) => key(x.shape)).sort()).toEqual(sweepShapes(spec).map(key).sort());
    for (const x of r.rows) {
      expect(x.best === undefined, key(x.shape)).toBe(x.shape.hidden === 2 ** 20);
      if (x.shape.hidden === 256) expect(x.total_params_b, key(x.shape)).toBe(total(x.shape.layers, x.shape.experts) / 1e9);
    }
    // e.g. L2 E4: 1167360 + 458752 + 787456 = 2413568; L4 E8: 1167360 + 3 x 2033664 = 7268352
    expect(total(2, 4)).toBe(2413568);
    expect(total(4, 8)).toBe(7268352);
  });
  it('rows by MFU, highest first; the rows without a layout last (the sweep order is not that order)', () => {
    const { spec, r } = run();
    const fit = r.rows.filter((x) => x.best);
    expect(fit.length).toBe(12);
    expect(r.rows.slice(0, 12)).toEqual(fit);
    expect(r.rows.slice(12).every((x) => x.best === undefined)).toBe(true);
    for (let i = 1; i < 12; i++) expect(r.rows[i].best!.mfu).toBeLessThanOrEqual(r.rows[i - 1].best!.mfu);
    expect(r.rows[0].best!.mfu).toBe(Math.max(...fit.map((x) => x.best!.mfu)));
    // premise: the sweep's own order (depth, then width, ...) puts no-layout rows between fitting ones
    expect(sweepShapes(spec).map((s) => s.hidden).slice(0, 8)).toEqual([256, 256, 256, 256, 2 ** 20, 2 ** 20, 2 ** 20, 2 ** 20]);
  });
  it('the Pareto flags: exactly the fitting rows no other row beats; the fastest and the largest are on it', () => {
    const { r } = run();
    for (const x of r.rows) expect(x.pareto, key(x.shape)).toBe(!!x.best && !r.rows.some((o) => o !== x && beats(o, x)));
    expect(r.rows.filter((x) => !x.best).some((x) => x.pareto)).toBe(false);
    // the fastest row: nothing is faster, and a larger slower row does not beat it
    expect(r.rows[0].pareto).toBe(true);
    expect(r.rows.some((o) => o.best && o.total_params_b > r.rows[0].total_params_b)).toBe(true);
    // top_k leaves the total alone (total(L, E) has no K): of two rows of one total, the slower is beaten
    const byKey = (k: string) => r.rows.filter((x) => key(x.shape) === k);
    const [k1] = byKey('L2 H256 E4 K1 I256'), [k2] = byKey('L2 H256 E4 K2 I256');
    expect(k1.total_params_b).toBe(k2.total_params_b);
    expect(k1.best!.mfu).not.toBe(k2.best!.mfu);
    const [slow, fast] = k1.best!.mfu < k2.best!.mfu ? [k1, k2] : [k2, k1];
    expect(fast.pareto).toBe(true);
    expect(slow.pareto).toBe(false);
    // the largest fitting total (L4 E8), its faster top_k: both duplicate rows on the front (twins do not beat each other)
    const largest = Math.max(...r.rows.filter((x) => x.best).map((x) => x.total_params_b));
    expect(largest).toBe(total(4, 8) / 1e9);
    const top = r.rows.filter((x) => x.best && x.total_params_b === largest);
    const topMfu = Math.max(...top.map((x) => x.best!.mfu));
    const twins = top.filter((x) => x.best!.mfu === topMfu);
    expect(twins.length).toBe(2);
    expect(twins.every((x) => x.pareto)).toBe(true);
  });
  it('pareto_front: the Pareto rows by total parameters, ascending', () => {
    const { r } = run();
    const front = r.rows.filter((x) => x.pareto);
    expect(front.length).toBeGreaterThanOrEqual(3);
    expect(r.pareto_front).toEqual([...front].sort((a, b) => a.total_params_b - b.total_params_b));
    for (let i = 1; i < r.pareto_front.length; i++) expect(r.pareto_front[i].total_params_b).toBeGreaterThanOrEqual(r.pareto_front[i - 1].total_params_b);
  });
  it('time-to-quality: days = tokens to the target / (tokens/s) / 86400 s; Infinity without a layout', () => {
    const { spec, r } = run();
    rel(r.quality_target!.loss, paperLoss(lawParams(spec.model), 1e9, granularity(spec.model)));
    for (const x of r.rows) {
      const q = x.quality!;
      expect(q.granularity).toBe((4 * x.shape.hidden) / 256);
      const s = sweepShapes(spec).find((y) => key(y) === key(x.shape))!;
      const N = paramCounts(s).total - paramCounts(s).embedding - paramCounts(s).head;
      rel(q.loss_at_budget, paperLoss(N, 1e9, q.granularity));
      if (x.best) {
        expect(Number.isFinite(q.tokens_to_target)).toBe(true);
        rel(q.days_to_target, q.tokens_to_target / x.best.tokens_per_s / 86400);
      } else expect(q.days_to_target).toBe(Infinity);
    }
  });
  it('by_time_to_quality: every row, fewest days first, not the MFU order', () => {
    const { r } = run();
    expect(r.by_time_to_quality.length).toBe(24);
    expect(new Set(r.by_time_to_quality)).toEqual(new Set(r.rows));
    const days = r.by_time_to_quality.map((x) => x.quality!.days_to_target);
    for (let i = 1; i < days.length; i++) expect(days[i]).toBeGreaterThanOrEqual(days[i - 1]);
    expect(Number.isFinite(days[0])).toBe(true);
    expect(days[0]).toBe(Math.min(...r.rows.map((x) => x.quality!.days_to_target)));
    expect(r.by_time_to_quality.map((x) => key(x.shape))).not.toEqual(r.rows.map((x) => key(x.shape)));
  });
  it('elapsed_s: the sweep\'s own wall time in seconds', () => {
    const { r, wall } = run();
    expect(r.elapsed_s).toBeGreaterThan(0);
    expect(r.elapsed_s).toBeLessThanOrEqual(wall);
  });
  it('without quality_tokens: no target, no quality, no second ranking; the same rows and flags', () => {
    const { r } = run();
    const plain = sweep(specOf({ ...sw, quality_tokens: undefined }));
    expect(plain.quality_target).toBeUndefined();
    expect(plain.by_time_to_quality).toEqual([]);
    expect(plain.rows.every((x) => x.quality === undefined)).toBe(true);
    expect(plain.rows.map((x) => [key(x.shape), x.best, x.pareto])).toEqual(r.rows.map((x) => [key(x.shape), x.best, x.pareto]));
  });
});
