/**
 * src/plan/pangu.ts: Pangu Ultra MoE's named assumptions and panguOverAssumptions on reduced assumption lists (fast:
 * test/plan/reference-fit.test.ts runs the published-scale search). Most cases pick values under which no layout can
 * take the batch (an odd global batch: every layout needs dp x micro-batch 2 to divide it), so the search only
 * enumerates; one case runs one real search on a cluster chosen to have few layouts (512 x 67 NPUs, odd sequence
 * length: no context parallelism) and checks its numbers against the published layout simulated on its own.
 */
import { describe, expect, it } from 'vitest';
import { CALIBRATION, PANGU_IMPLIED_PEAK_TFLOPS } from '../../src/plan/calibration.js';
import { hardwarePreset } from '../../src/plan/hardware.js';
import { PANGU_ASSUMPTIONS, PANGU_LAYOUT, panguOverAssumptions, type PanguAssumption } from '../../src/plan/pangu.js';
import { search } from '../../src/plan/search.js';
import { resolveSpec, type Parallel, type Spec } from '../../src/plan/spec.js';
import { MoekitError } from '../../src/util/errors.js';

type Raw = { hardware: Record<string, unknown>; parallel: Record<string, unknown>; training: Record<string, unknown> };
const base = CALIBRATION.find((r) => r.id === 'pangu-ultra-moe')!.spec as Raw;
const A = (name: string, ...values: number[]): PanguAssumption => ({ name, values, why: 'test' });
/** 128 x 67 NPUs: dp must hold the prime 67 (pp <= 61 layers cannot), so dp x 2 never divides 3,072 or an odd batch */
const NO_LAYOUT = { rank: -1, of: 0, tokens_per_s: NaN, best_tokens_per_s: NaN, best_layout: '' };
const thrown = (f: () => unknown): MoekitError => {
  try { f(); } catch (e) { return e as MoekitError; }
  throw new Error('did not throw');
};

describe('PANGU_ASSUMPTIONS', () => {
  it('names the four unknowns with their ranges, in this order', () => {
    expect(PANGU_ASSUMPTIONS.map((a) => [a.name, a.values])).toEqual([
      ['seq_len', [4096, 8192]],
      ['global_batch', [1536, 3072, 6144]],
      ['devices', [5632, 6144]],
      ['peak_bf16_tflops', [220, 280, 313]],
    ]);
    // 2 x 3 x 2 x 3 = 36 combinations (docs/planner.md: "searches all 36 combinations")
    expect(PANGU_ASSUMPTIONS.reduce((n, a) => n * a.values.length, 1)).toBe(36);
  });

  it('each range comes from where its reason says', () => {
    const [seq, gb, dev, peak] = PANGU_ASSUMPTIONS;
    // the calibration row's sequence length is the range's low end
    expect(seq.values[0]).toBe(base.training.seq_len);
    expect(seq.why).toContain('4K is the DeepSeek-V3 and Pangu Ultra (dense) pre-training length, 8K its long stage');
    // 3,072 (the calibration row) halved and doubled
    expect(gb.values).toEqual([3072 / 2, 3072, 3072 * 2]);
    expect(base.training.global_batch).toBe(3072);
    expect(gb.why).toContain('3,072 sequences (the calibration row) halved and doubled');
    // whole replicas of the 128-NPU model-parallel group TP8 x PP16: 44 x 128 = 5632, 48 x 128 = 6144
    expect(dev.values).toEqual([44 * 8 * 16, 48 * 8 * 16]);
    expect(dev.why).toContain('44 or 48 replicas');
    // 220 the implied peak, 313 the 910B preset's figure
    expect(peak.values[0]).toBe(PANGU_IMPLIED_PEAK_TFLOPS);
    expect(peak.values[2] * 1e12).toBe(hardwarePreset('910b').peak_bf16);
    expect(peak.why).toContain('313 the widely reported figure (unverified), 280 between');
  });
});

describe('PANGU_LAYOUT', () => {
  it('is the calibration row\'s layout: TP8 PP16 VPP2, experts over tp x ep = 32 NPUs whole (ETP1), no CP', () => {
    expect(PANGU_LAYOUT).toEqual({ tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, cp: 1 });
    for (const k of ['tp', 'pp', 'vpp', 'ep', 'etp'] as const) expect(base.parallel[k], k).toBe(PANGU_LAYOUT[k]);
    expect(resolveSpec(structuredClone(base), 'pangu').parallel.cp).toBe(PANGU_LAYOUT.cp);
  });
});

describe('panguOverAssumptions: the combinations', () => {
  it('every combination once, the first assumption varying slowest; a layout no batch suits ranks -1 of 0', () => {
    const pts = panguOverAssumptions([A('devices', 8576), A('global_batch', 7, 9), A('seq_len', 4096, 4095)]);
    expect(8576).toBe(128 * 67);
    expect(pts).toEqual([
      { assumptions: { devices: 8576, global_batch: 7, seq_len: 4096 }, ...NO_LAYOUT },
      { assumptions: { devices: 8576, global_batch: 7, seq_len: 4095 }, ...NO_LAYOUT },
      { assumptions: { devices: 8576, global_batch: 9, seq_len: 4096 }, ...NO_LAYOUT },
      { assumptions: { devices: 8576, global_batch: 9, seq_len: 4095 }, ...NO_LAYOUT },
    ]);
  });

  it('a name it does not know multiplies the combinations and changes nothing', () => {
    const pts = panguOverAssumptions([A('devices', 8576), A('nonsense', 1, 2)]);
    expect(pts).toEqual([
      { assumptions: { devices: 8576, nonsense: 1 }, ...NO_LAYOUT },
      { assumptions: { devices: 8576, nonsense: 2 }, ...NO_LAYOUT },
    ]);
  });

  it('an assumption with no values leaves no combination', () => {
    expect(panguOverAssumptions([A('devices', 8576), A('seq_len')])).toEqual([]);
  });

  it('the spec is a template: 67 replicas break the strict rules (ep 32 does not divide tp 8 x dp 67) and still search', () => {
    // strict resolution of the same spec throws; panguOverAssumptions answers instead
    const raw = structuredClone(base);
    raw.hardware.devices = 8576;
    expect(() => resolveSpec(raw, 'pangu')).toThrow();
    expect(panguOverAssumptions([A('devices', 8576)])).toEqual([{ assumptions: { devices: 8576 }, ...NO_LAYOUT }]);
    // likewise a batch no layout divides (odd): strict resolution rejects it as the calibration row's layout's batch
    const odd = structuredClone(base);
    odd.training.global_batch = 7;
    expect(thrown(() => resolveSpec(odd, 'pangu')).message).toBe('global_batch 7 not divisible by micro_batch*dp = 96');
    expect(panguOverAssumptions([A('global_batch', 7)])).toEqual([{ assumptions: { global_batch: 7 }, ...NO_LAYOUT }]);
  });

  it('leaves the calibration row as it was', () => {
    const before = structuredClone(base);
    panguOverAssumptions([A('devices', 8576), A('global_batch', 7), A('seq_len', 8191), A('peak_bf16_tflops', 100)]);
    expect(base).toEqual(before);
    expect(base.training.seq_len).toBe(4096);
    expect(base.hardware.devices).toBe(6144);
  });
});

describe('panguOverAssumptions: each assumption reaches its spec field', () => {
  // out-of-range values make resolveSpec name the field it landed in
  it.each([
    ['seq_len', 0, 'training.seq_len', 'must be an integer in [1, '],
    ['global_batch', 0, 'training.global_batch', 'must be an integer in [1, '],
    ['devices', 0, 'hardware.devices', 'must be an integer in [1, '],
    ['peak_bf16_tflops', -1, 'hardware.peak_bf16_tflops', 'must be a non-negative number (got -1)'],
  ])('%s = %d lands in %s', (name, v, field, msg) => {
    const e = thrown(() => panguOverAssumptions([A(name, v)]));
    expect(e).toBeInstanceOf(MoekitError);
    expect(e.file).toBe(field);
    expect(e.message.startsWith(msg)).toBe(true);
  });

  it('a peak of 1 TFLOPS reaches the hardware (valid, so the call answers)', () => {
    // 1 TFLOPS is in range: resolved, no throw; on 128 x 67 NPUs no layout suits the row's 3,072, so nothing is simulated
    expect(panguOverAssumptions([A('devices', 8576), A('peak_bf16_tflops', 1)])).toEqual([{ assumptions: { devices: 8576, peak_bf16_tflops: 1 }, ...NO_LAYOUT }]);
  });
});

describe('panguOverAssumptions: one real search', () => {
  it('the published layout\'s rank, its best knob setting\'s throughput, and the best layout, each as simulated on its own', () => {
    // 34,304 = 512 x 67 NPUs: the published layout has dp = 34304 / 128 = 268 (ep 32 divides tp 8 x 268 = 2144);
    // global batch 8,576 = 268 x micro-batch 2 x 16 micro-batches (16 = a multiple of pp 16, as interleaving needs);
    // seq 4,095 (odd): cp 1 only. Every assumption differs from the calibration row's value (4096, 3072, 6144, 220).
    const values = { seq_len: 4095, global_batch: 8576, devices: 34304, peak_bf16_tflops: 313 };
    const [pt] = panguOverAssumptions(Object.entries(values).map(([k, v]) => A(k, v)));
    expect(pt.assumptions).toEqual(values);
    const raw = structuredClone(base);
    raw.training.seq_len = 4095; raw.training.global_batch = 8576; raw.hardware.devices = 34304; raw.hardware.peak_bf16_tflops = 313;
    const spec: Spec = resolveSpec(raw, 'pangu', { template: true });
    expect(spec.hardware.peak_bf16).toBe(313e12);
    // the published layout alone (its best recompute / all-to-all setting): the point's throughput
    const mine = search(spec, { fixed: { ...PANGU_LAYOUT, dp: 268 }, top: Infinity });
    expect(mine.top.length).toBe(1);
    expect(mine.top[0].layout).toBe('TP8 PP16 VPP2 EP32 ETP1 DP268');
    expect(pt.tokens_per_s).toBe(mine.top[0].result.tokens_per_s);
    // it fits and is not the best: ranked among several
    expect(pt.rank).toBeGreaterThan(1);
    expect(pt.of).toBeGreaterThanOrEqual(pt.rank);
    expect(pt.best_tokens_per_s).toBeGreaterThan(pt.tokens_per_s);
    // the best layout named, searched alone, gives the best throughput
    const m = /^TP(\d+) PP(\d+)(?: VPP(\d+))? EP(\d+)(?: ETP(\d+))?(?: CP(\d+))? DP(\d+)$/.exec(pt.best_layout)!;
    expect(m).not.toBeNull();
    const [tp, pp, vpp, ep, etp, cp, dp] = m.slice(1).map((x) => (x === undefined ? undefined : Number(x)));
    const fixed: Partial<Parallel> = { tp, pp, vpp: vpp ?? 1, ep, etp: etp ?? tp, cp: cp ?? 1, dp };
    const best = search(spec, { fixed, top: Infinity });
    expect(best.top.map((r) => r.layout)).toEqual([pt.best_layout]);
    expect(pt.best_tokens_per_s).toBe(best.top[0].result.tokens_per_s);
  });
});
