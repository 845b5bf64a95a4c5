/**
 * src/plan/sweep.ts on small made-up shapes (fast: the mutation run executes this file for every covered mutant; the
 * Pangu-scale sweeps are in search.test.ts): the fine-grained MoE law of Krajewski et al. 2024 written out by hand,
 * the shape enumeration (product, paired granularity, dense bases) and every error message, the budget filter at its
 * boundaries, and the sweep's rows, Pareto front and time-to-quality ranking on one or two H100s.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { paramCounts } from '../../src/plan/flops.js';
import type { ModelShape } from '../../src/plan/models.js';
import { search } from '../../src/plan/search.js';
import { resolveSpec, type Spec } from '../../src/plan/spec.js';
import { FINE_GRAINED_LAW, granularity, lawParams, predictedLoss, sweep, sweepShapes, tokensToLoss, type SweepRow } from '../../src/plan/sweep.js';
import { MoekitError } from '../../src/util/errors.js';
import { PAPER, errorOf, paperLoss, rel } from './helpers.js';

/**
 * Krajewski et al. 2024, "Scaling Laws for Fine-Grained Mixture of Experts" (arXiv 2402.07871), the fitted MoE law
 *   L(N, D, G) = c + (g / G^gamma + a) / N^alpha + b / D^beta
 * with a = 18.1, alpha = 0.115, b = 30.8, beta = 0.147, g = 2.1, gamma = 0.58, c = 0.47 (their Table 1): PAPER and
 * paperLoss in ./helpers.ts.
 */

const expectError = (f: () => unknown, file: string, message: string) => {
  const e = errorOf(f);
  expect(e.message).toBe(message);
  expect(e.file).toBe(file);
};

/**
 * A small MoE base: 4 layers (the first dense, FFN 512), hidden 256, 4 heads x 64 (MHA), vocab 1000, 8 routed experts of
 * width 256, top-2, one shared expert (width 256), untied. Parameters (flops.ts formulas):
 *   attention 4 h^2 = 262144; dense FFN 3 h 512 = 393216; expert 3 h 256 = 196608 = shared; router h E = 256 E;
 *   embedding = head = 256000
 *   total(E)  = 2 x 256000 + (262144 + 393216) + 3 x (262144 + 196608 + 256 E + 196608 E) = 2543616 + 590592 E
 *   active(E, K) = 512000 + 655360 + 3 x (262144 + 196608 + 256 E + 196608 K)       = 2543616 + 768 E + 589824 K
 */
const BASE = {
  name: 'tiny', layers: 4, hidden: 256, heads: 4, kv_heads: 4, head_dim: 64, vocab: 1000, dense_layers: 1, dense_ffn: 512,
  experts: 8, shared_experts: 1, top_k: 2, expert_ffn: 256,
};
const DENSE = { name: 'tiny-dense', layers: 4, hidden: 256, heads: 4, kv_heads: 4, head_dim: 64, vocab: 1000, dense_ffn: 512 };
const total = (E: number) => 2543616 + 590592 * E;
const active = (E: number, K: number) => 2543616 + 768 * E + 589824 * K;

const specOf = (sw: Record<string, unknown> | undefined, model: Record<string, unknown> = BASE, devices = 1): Spec =>
  resolveSpec({ model, hardware: { preset: 'h100', devices }, training: { seq_len: 1024, global_batch: 8 }, ...(sw ? { sweep: sw } : {}) }, 'spec', { template: true });
const key = (s: Pick<ModelShape, 'layers' | 'hidden' | 'experts' | 'top_k' | 'expert_ffn'>) => `L${s.layers} H${s.hidden} E${s.experts} K${s.top_k} I${s.expert_ffn}`;

describe('the fine-grained MoE law (Krajewski et al. 2024)', () => {
  it('carries the paper\'s fitted coefficients', () => {
    expect({ ...FINE_GRAINED_LAW }).toEqual(PAPER);
  });
  it('granularity G = d_ff / d_expert with d_ff = 4 hidden: DeepSeek-V3 4 x 7168 / 2048 = 14, Mixtral 4 x 4096 / 14336 = 8/7', () => {
    expect(granularity({ hidden: 7168, expert_ffn: 2048 })).toBe(14);
    rel(granularity({ hidden: 4096, expert_ffn: 14336 }), 8 / 7);
    expect(granularity({ hidden: 256, expert_ffn: 64 })).toBe(16);
  });
  it('N = total non-embedding parameters: the base shape\'s total less the embedding and the untied head', () => {
    // total(8) = 7268352; less 256000 (embedding) and 256000 (head)
    expect(paramCounts(specOf(undefined).model).total).toBe(total(8));
    expect(lawParams(specOf(undefined).model)).toBe(total(8) - 512000);
    // tied: the head holds no parameters of its own, so N loses only the embedding (the same 6756352)
    const tied = specOf(undefined, { ...BASE, tied_embeddings: true }).model;
    expect(lawParams(tied)).toBe(total(8) - 512000);
    expect(paramCounts(tied).total).toBe(total(8) - 256000);
  });
  it('predictedLoss is the law written out, with the paper\'s coefficients by default', () => {
    for (const [N, D, G] of [[6.7e9, 1.3e12, 14], [1e8, 2e10, 1], [3.7e9, 1.3e11, 8 / 7]]) rel(predictedLoss(N, D, G), paperLoss(N, D, G));
    // a made-up law with every coefficient 1: L = 1 + (1/G + 1)/N + 1/D; N = 2, D = 4, G = 2: 1 + 1.5/2 + 1/4 = 2
    const ones = { a: 1, alpha: 1, b: 1, beta: 1, g: 1, gamma: 1, c: 1 };
    expect(predictedLoss(2, 4, 2, ones)).toBe(2);
    // and with beta = 1/2, b = 3, the rest 0: L = 3 / sqrt(D), so L(D = 9) = 1
    const half = { a: 0, alpha: 1, b: 3, beta: 0.5, g: 0, gamma: 1, c: 0 };
    expect(predictedLoss(1, 9, 1, half)).toBe(1);
  });
  it('tokensToLoss inverts it: D = (b / (L - c - (g/G^gamma + a)/N^alpha))^(1/beta), Infinity at or below the asymptote', () => {
    const ones = { a: 1, alpha: 1, b: 1, beta: 1, g: 1, gamma: 1, c: 1 };
    expect(tokensToLoss(2, 2, 2, ones)).toBe(4); // rest 2 - 1 - 0.75 = 0.25, D = 1 / 0.25
    expect(tokensToLoss(1, 1, 1, { a: 0, alpha: 1, b: 3, beta: 0.5, g: 0, gamma: 1, c: 0 })).toBe(9); // (3 / 1)^2
    expect(tokensToLoss(2, 2, 1.75, ones)).toBe(Infinity); // exactly the N, G terms: no D reaches it
    expect(tokensToLoss(2, 2, 1.5, ones)).toBe(Infinity); // below them
    for (const [N, D, G] of [[6.7e9, 1.3e12, 14], [1e8, 2e10, 1]]) {
      const L = paperLoss(N, D, G);
      rel(tokensToLoss(N, G, L), D, 1e-9);
      rel(predictedLoss(N, tokensToLoss(N, G, L + 0.01), G), L + 0.01, 1e-12);
    }
    // the paper's asymptote for N = 1e8, G = 1: c + (g + a) / N^alpha; any loss at or under it needs infinite data
    const floor = PAPER.c + (PAPER.g + PAPER.a) / Math.pow(1e8, PAPER.alpha);
    expect(tokensToLoss(1e8, 1, floor - 1e-6)).toBe(Infinity);
  });
});

describe('sweepShapes', () => {
  it('the product of the lists, top_k > experts dropped, in the order layers, hidden, experts, top_k, expert_ffn', () => {
    const shapes = sweepShapes(specOf({ layers: [1, 6], hidden: [128], experts: [4, 16], top_k: [2, 8], expert_ffn: [64, 128] }));
    // experts 4 pairs with top_k 2 only (8 > 4), experts 16 with both: (1 + 2) x 2 widths = 6 MoE settings, x 2 depths
    const moe = ['E4 K2 I64', 'E4 K2 I128', 'E16 K2 I64', 'E16 K2 I128', 'E16 K8 I64', 'E16 K8 I128'];
    expect(shapes.map((s) => s.name)).toEqual([...moe.map((x) => `L1 H128 ${x}`), ...moe.map((x) => `L6 H128 ${x}`)]);
    for (const s of shapes) {
      expect(s.name).toBe(key(s));
      // the rest of the base model is kept: heads, vocab, the dense FFN, the shared expert's width (256 = 1 x the
      // base's expert_ffn, not the new one), and the leading dense layers, min(base's 1, layers)
      expect(s).toMatchObject({ heads: 4, kv_heads: 4, head_dim: 64, vocab: 1000, dense_ffn: 512, shared_experts: 1, shared_ffn: 256, dense_layers: 1, attention: 'gqa' });
    }
  });
  it('lists default to the base model; a single number is a one-element list', () => {
    const one = sweepShapes(specOf({ layers: 6 }));
    expect(one.map((s) => s.name)).toEqual(['L6 H256 E8 K2 I256']);
    expect(one[0]).toEqual({ ...specOf(undefined).model, layers: 6, name: 'L6 H256 E8 K2 I256', shared_ffn: 256 });
    expect(sweepShapes(specOf({})).map(key)).toEqual(['L4 H256 E8 K2 I256']);
    expect(sweepShapes(specOf({ top_k: [1] })).map(key)).toEqual(['L4 H256 E8 K1 I256']); // 1 is a positive integer
  });
  it('a base with more leading dense layers than a shape has layers: every layer of that shape dense-FFN', () => {
    const shapes = sweepShapes(specOf({ layers: [1, 2, 6] }, { ...BASE, dense_layers: 2 }));
    expect(shapes.map((s) => [s.layers, s.dense_layers])).toEqual([[1, 1], [2, 2], [6, 2]]);
  });
  it('granularity: true pairs experts, top_k and expert_ffn by index (top_k = experts allowed)', () => {
    const shapes = sweepShapes(specOf({ layers: [4, 6], experts: [4, 16, 2], top_k: [1, 4, 2], expert_ffn: [512, 128, 64], granularity: true }));
    expect(shapes.map(key)).toEqual(['L4 H256 E4 K1 I512', 'L4 H256 E16 K4 I128', 'L4 H256 E2 K2 I64', 'L6 H256 E4 K1 I512', 'L6 H256 E16 K4 I128', 'L6 H256 E2 K2 I64']);
    // granularity: false is the product (3 x 3 x 3 less the top_k > experts ones: experts 2 with top_k 4)
    expect(sweepShapes(specOf({ experts: [4, 16, 2], top_k: [1, 4, 2], expert_ffn: [512, 128, 64], granularity: false })).length).toBe(3 * 3 * 3 - 3);
    // unequal lengths are fine for the product
    expect(sweepShapes(specOf({ experts: [4, 16], top_k: [1, 2, 4], expert_ffn: [512] })).map(key)).toEqual(
      ['L4 H256 E4 K1 I512', 'L4 H256 E4 K2 I512', 'L4 H256 E4 K4 I512', 'L4 H256 E16 K1 I512', 'L4 H256 E16 K2 I512', 'L4 H256 E16 K4 I512']);
  });
  it('a dense base stays dense (every layer dense) unless the sweep gives experts, top_k and expert_ffn', () => {
    const dense = sweepShapes(specOf({ layers: [4, 6] }, DENSE));
    expect(dense.map((s) => [s.name, s.experts, s.dense_layers])).toEqual([['L4 H256 E0 K0 I0', 0, 4], ['L6 H256 E0 K0 I0', 0, 6]]);
    // a MoE made from a dense base has every layer MoE
    const moe = sweepShapes(specOf({ layers: [4], experts: [8], top_k: [1], expert_ffn: [1] }, DENSE));
    expect(moe.map((s) => [s.name, s.dense_layers, s.shared_ffn])).toEqual([['L4 H256 E8 K1 I1', 0, 0]]);
  });
  it('every malformed sweep section is a MoekitError naming its field', () => {
    expectError(() => sweepShapes(specOf(undefined)), 'sweep', 'spec has no sweep section (layers, hidden, experts, top_k, expert_ffn, total_params_b, active_params_b)');
    expectError(() => sweepShapes(specOf({ layer: [4] })), 'sweep.layer',
      "unknown sweep field 'layer' (known: layers, hidden, experts, top_k, expert_ffn, granularity, total_params_b, active_params_b, quality_tokens)");
    expectError(() => sweepShapes(specOf({ granularity: 'yes' })), 'sweep.granularity', 'must be true or false (got "yes")');
    for (const f of ['layers', 'hidden', 'experts', 'top_k', 'expert_ffn']) {
      for (const bad of [0, [4, 0], [1.5], ['4'], [null], -2]) expectError(() => sweepShapes(specOf({ [f]: bad })), `sweep.${f}`, 'must be a list of positive integers');
    }
    const paired = 'with granularity: true, experts, top_k and expert_ffn must have the same length';
    expectError(() => sweepShapes(specOf({ experts: [8, 16], top_k: [2, 2], expert_ffn: [256], granularity: true })), 'sweep.granularity', paired);
    expectError(() => sweepShapes(specOf({ experts: [8], top_k: [2, 2], expert_ffn: [256, 128], granularity: true })), 'sweep.granularity', paired);
    expectError(() => sweepShapes(specOf({ experts: [8, 16], top_k: [2, 2, 4], expert_ffn: [256, 128, 64], granularity: true })), 'sweep.granularity', paired);
    expectError(() => sweepShapes(specOf({ experts: [4, 128], top_k: [8, 8], expert_ffn: [768, 768], granularity: true })), 'sweep.top_k', 'top_k 8 exceeds experts 4 (pair 0)');
    expectError(() => sweepShapes(specOf({ experts: [16, 4], top_k: [8, 5], expert_ffn: [768, 768], granularity: true })), 'sweep.top_k', 'top_k 5 exceeds experts 4 (pair 1)');
    expectError(() => sweepShapes(specOf({ experts: [8], expert_ffn: [512] }, DENSE)), 'sweep.top_k', 'needed: the base model is dense (top_k 0) and the sweep gives experts 8');
    expectError(() => sweepShapes(specOf({ experts: [8], top_k: [2] }, DENSE)), 'sweep.expert_ffn', 'needed: the base model is dense (expert_ffn 0) and the sweep gives experts 8');
  });
  it('accepts every known field at once', () => {
    const all = { layers: [4], hidden: [256], experts: [8], top_k: [2], expert_ffn: [256], granularity: true, total_params_b: [0, 1], active_params_b: [0, 1], quality_tokens: 1e9 };
    expect(sweepShapes(specOf(all)).map(key)).toEqual(['L4 H256 E8 K2 I256']);
  });
});

describe('sweep: the budget filter', () => {
  // experts 4, 8, 16 x top_k 1, 2, 4 on the base: totals 4905984, 7268352, 11993088 (by experts); actives by top_k
  const grid = { experts: [4, 8, 16], top_k: [1, 2, 4] };
  const billions = (n: number) => n / 1e9;
  it('each bound alone drops a shape, and a shape on a bound is kept', () => {
    // total in [total(8), total(8)], active in [active(4, 2), active(16, 2)] = [3726336, 3735552]:
    // E4 K2 falls only under the total's min, E16 K2 only over its max, E8 K1 only under the active min (3139584),
    // E8 K4 only over the active max (4909056): one shape left, E8 K2, on both total bounds
    const r = sweep(specOf({ ...grid, total_params_b: [billions(total(8)), billions(total(8))], active_params_b: [billions(active(4, 2)), billions(active(16, 2))] }));
    expect(r.shapes_considered).toBe(9);
    expect(r.shapes_in_budget).toBe(1);
    expect(r.rows.map((x) => key(x.shape))).toEqual(['L4 H256 E8 K2 I256']);
    expect(r.rows[0].total_params_b).toBe(0.007268352);
    expect(r.rows[0].active_params_b).toBe(0.003729408);
  });
  it('shapes on the active bounds are kept too', () => {
    // total in [total(4), total(16)], active in [active(4, 2), active(16, 2)]: the three top-2 shapes, E4 K2 on the
    // active min and E16 K2 on the active max
    const r = sweep(specOf({ ...grid, total_params_b: [billions(total(4)), billions(total(16))], active_params_b: [billions(active(4, 2)), billions(active(16, 2))] }));
    expect(r.shapes_in_budget).toBe(3);
    expect(r.rows.map((x) => key(x.shape)).sort()).toEqual(['L4 H256 E16 K2 I256', 'L4 H256 E4 K2 I256', 'L4 H256 E8 K2 I256']);
    const byE = Object.fromEntries(r.rows.map((x) => [x.shape.experts, x]));
    for (const E of [4, 8, 16]) {
      expect(byE[E].total_params_b).toBe(billions(total(E)));
      expect(byE[E].active_params_b).toBe(billions(active(E, 2)));
    }
  });
  it('no bounds: every shape is in budget', () => {
    const r = sweep(specOf(grid));
    expect(r.shapes_considered).toBe(9); // top_k <= experts in all nine (4 <= 4)
    expect(r.shapes_in_budget).toBe(9);
  });
  it('malformed bounds and quality_tokens are MoekitErrors naming the field', () => {
    for (const f of ['total_params_b', 'active_params_b']) {
      for (const bad of [5, [1], [1, 2, 3], ['a', 2], [1, 'b'], [NaN, 2], [1, NaN], { min: 1, max: 2 }]) {
        expectError(() => sweep(specOf({ [f]: bad })), `sweep.${f}`, 'must be [min, max] in billions');
      }
      expectError(() => sweep(specOf({ [f]: [40, 10] })), `sweep.${f}`, 'must be [min, max] in billions: min 40 > max 10');
    }
    for (const bad of ['1e9', 0, -1, NaN, [1e9]]) expectError(() => sweep(specOf({ quality_tokens: bad })), 'sweep.quality_tokens', 'must be a positive number of tokens');
    const lawMsg = 'time-to-quality (Krajewski et al. fine-grained MoE law) needs a MoE base model and MoE shapes (experts > 0)';
    expectError(() => sweep(specOf({ layers: [4, 6], quality_tokens: 1e9 }, DENSE)), 'sweep.quality_tokens', lawMsg);
    // the law's target is the base shape's loss: a dense base has none, even when the shapes are MoE
    expectError(() => sweep(specOf({ experts: [8], top_k: [2], expert_ffn: [256], quality_tokens: 1e9 }, DENSE)), 'sweep.quality_tokens', lawMsg);
  });
});

describe('sweep: rows, Pareto front and time-to-quality on one H100', () => {
  // 3 depths (8 twice: duplicate rows) x hidden 512 or 2^20 x experts 4, 8 x top_k 1, 2: the 2^20-wide shapes (the
  // embedding alone 2^20 x 1000 x 2 = 2.1B parameters, each expert 3 x 2^20 x 256 = 0.8B) fit no layout on one 80 GB device
  const sw = { layers: [4, 8, 8], hidden: [512, 2 ** 20], experts: [4, 8], top_k: [1, 2], quality_tokens: 1e9 };
  let spec: Spec;
  // swept inside each test, not at collection time (StrykerJS counts code run while a file is collected as covered by
  // no test and runs every test file for a mutant it reaches: test/plan/simulate.test.ts); the module-level `r`,
  // `wall`, `shapes` are set by beforeEach for the test about to run
  let r: ReturnType<typeof sweep>;
  let wall: number;
  let shapes: ReturnType<typeof sweepShapes>;
  beforeEach(() => {
    spec = specOf(sw);
    const t0 = performance.now();
    r = sweep(spec);
    wall = (performance.now() - t0) / 1e3;
    shapes = sweepShapes(spec);
  });
  const rowOf = (x: SweepRow) => shapes.find((s) => key(s) === key(x.shape))!;
  /** o beats r: at least as large and as fast, and strictly one of the two */
  const beats = (o: SweepRow, x: SweepRow) => !!(o.best && x.best && o.total_params_b >= x.total_params_b && o.best.mfu >= x.best.mfu &&
    (o.total_params_b > x.total_params_b || o.best.mfu > x.best.mfu));

  it('one row per shape in budget, each with its counts and its best layout as search finds it', () => {
    expect(r.shapes_considered).toBe(24);
    expect(r.shapes_in_budget).toBe(24);
    expect(r.rows.length).toBe(24);
    expect(r.elapsed_s).toBeGreaterThanOrEqual(0);
    expect(r.elapsed_s).toBeLessThanOrEqual(wall);
    const fit = r.rows.filter((x) => x.best);
    expect(fit.length).toBeGreaterThan(4);
    expect(fit.length).toBeLessThan(24);
    for (const x of r.rows) {
      const s = rowOf(x);
      expect(Object.keys(x.shape).sort()).toEqual(['expert_ffn', 'experts', 'hidden', 'layers', 'top_k']);
      expect(x.total_params_b).toBe(paramCounts(s).total / 1e9);
      expect(x.active_params_b).toBe(paramCounts(s).active / 1e9);
      const b = search({ ...spec, model: s }, { top: 1 }).top[0];
      if (!b) {
        expect(x.best).toBeUndefined();
        continue;
      }
      expect(x.best).toEqual({ layout: b.layout, tokens_per_s: b.result.tokens_per_s, mfu: b.result.mfu, memory_gib_per_device: b.result.memory_gib_per_device });
    }
  });
  it('rows ordered by MFU, the shapes no layout fits last', () => {
    const mfu = r.rows.map((x) => x.best?.mfu ?? -1);
    for (let i = 1; i < mfu.length; i++) expect(mfu[i]).toBeLessThanOrEqual(mfu[i - 1]);
    expect(r.rows[r.rows.length - 1].best).toBeUndefined();
    // the sweep's own order (depth first) is not that order, so the sort did something
    expect(r.rows.map((x) => key(x.shape))).not.toEqual(shapes.map(key));
  });
  it('the Pareto front: exactly the rows no other row beats on (total parameters, MFU)', () => {
    for (const x of r.rows) expect(x.pareto, key(x.shape)).toBe(!!x.best && !r.rows.some((o) => o !== x && beats(o, x)));
    // rows without a layout are never on it
    expect(r.rows.filter((x) => !x.best).every((x) => !x.pareto)).toBe(true);
    // the fastest row is on it, and so is the fastest of the largest fitting shapes, in both of its duplicate rows
    expect(r.rows[0].pareto).toBe(true);
    const fit = r.rows.filter((x) => x.best);
    const maxTotal = Math.max(...fit.map((x) => x.total_params_b));
    const largest = fit.filter((x) => x.total_params_b === maxTotal);
    const top = Math.max(...largest.map((x) => x.best!.mfu));
    const topRows = largest.filter((x) => x.best!.mfu === top);
    expect(topRows.length).toBe(2); // layers 8 twice
    expect(topRows.every((x) => x.pareto)).toBe(true);
    // the same total, lower MFU (another top_k): beaten by its twin
    const beaten = largest.filter((x) => x.best!.mfu < top);
    expect(beaten.length).toBeGreaterThan(0);
    expect(beaten.every((x) => !x.pareto)).toBe(true);
    // the front: the Pareto rows by total, ascending (and so by MFU, descending)
    const front = r.rows.filter((x) => x.pareto);
    expect(front.length).toBeGreaterThan(2);
    expect(front.length).toBeLessThan(fit.length);
    expect(r.pareto_front).toEqual([...front].sort((a, b) => a.total_params_b - b.total_params_b));
    for (let i = 1; i < r.pareto_front.length; i++) {
      expect(r.pareto_front[i].total_params_b).toBeGreaterThanOrEqual(r.pareto_front[i - 1].total_params_b);
      expect(r.pareto_front[i].best!.mfu).toBeLessThanOrEqual(r.pareto_front[i - 1].best!.mfu);
    }
  });
  it('time-to-quality: the target is the base shape\'s loss after quality_tokens; each row the tokens and days to reach it', () => {
    const N0 = lawParams(spec.model);
    const G0 = (4 * 256) / 256;
    expect(r.quality_target!.tokens).toBe(1e9);
    rel(r.quality_target!.loss, paperLoss(N0, 1e9, G0));
    for (const x of r.rows) {
      const s = rowOf(x);
      const q = x.quality!;
      const N = paramCounts(s).total - paramCounts(s).embedding - paramCounts(s).head;
      expect(q.granularity).toBe((4 * x.shape.hidden) / 256); // 8 or 16384
      rel(q.loss_at_budget, paperLoss(N, 1e9, q.granularity));
      // D* reaches the target loss (Infinity only when the N, G terms alone are above it)
      if (Number.isFinite(q.tokens_to_target)) rel(paperLoss(N, q.tokens_to_target, q.granularity), r.quality_target!.loss, 1e-9);
      else expect(paperLoss(N, 1e300, q.granularity)).toBeGreaterThanOrEqual(r.quality_target!.loss);
      // days = D* / (tokens/s) / 86400 s
      if (x.best) rel(q.days_to_target, q.tokens_to_target / x.best.tokens_per_s / 86400);
      else expect(q.days_to_target).toBe(Infinity);
    }
    // these shapes are larger than the base (hidden 512 vs 256), so reach its loss in fewer tokens
    const small = r.rows.find((x) => key(x.shape) === 'L4 H512 E4 K1 I256')!;
    expect(small.quality!.tokens_to_target).toBeLessThan(1e9);
    expect(small.quality!.tokens_to_target).toBeGreaterThan(0);
  });
  it('by_time_to_quality: every row, fastest to the target first, an order of its own', () => {
    const days = r.by_time_to_quality.map((x) => x.quality!.days_to_target);
    expect(r.by_time_to_quality.length).toBe(24);
    expect(new Set(r.by_time_to_quality)).toEqual(new Set(r.rows));
    for (let i = 1; i < days.length; i++) expect(days[i]).toBeGreaterThanOrEqual(days[i - 1]);
    expect(r.by_time_to_quality.map((x) => key(x.shape))).not.toEqual(r.rows.map((x) => key(x.shape)));
  });
  it('without quality_tokens: no target, no quality fields, no second ranking', () => {
    const plain = sweep(specOf({ ...sw, quality_tokens: undefined }));
    expect(plain.quality_target).toBeUndefined();
    expect(plain.by_time_to_quality).toEqual([]);
    expect(plain.rows.every((x) => x.quality === undefined)).toBe(true);
    expect(plain.rows.map((x) => [key(x.shape), x.best, x.pareto])).toEqual(r.rows.map((x) => [key(x.shape), x.best, x.pareto]));
  });
});

describe('sweep: pinned layout fields', () => {
  it('each shape\'s best layout keeps the caller\'s pinned fields (the CLI\'s --tp ...)', () => {
    const spec = specOf({ layers: [4, 6] }, BASE, 2);
    const free = sweep(spec);
    const pinned = sweep(spec, { fixed: { tp: 2 } });
    for (const x of pinned.rows) {
      const s = sweepShapes(spec).find((y) => key(y) === key(x.shape))!;
      expect(x.best!.layout).toBe(search({ ...spec, model: s }, { top: 1, fixed: { tp: 2 } }).top[0].layout);
      expect(x.best!.layout).toMatch(/^TP2 /);
    }
    // unpinned, two devices go to data (and expert) parallelism
    for (const x of free.rows) expect(x.best!.layout).toBe('TP1 PP1 EP2 DP2');
  });
});
