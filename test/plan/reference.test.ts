/**
 * The reference set of issue 13: published MoE runs as plain specs from their recipes, split into fit and validation
 * rows. The fit reads only fit rows (it throws otherwise); a refit from the fit rows alone gives the committed
 * constants (reference-fit.test.ts: seconds a run, so left out of `npm run mutate`'s list); the validation rows are
 * scored against their published throughput, never fitted.
 */
import { describe, expect, it } from 'vitest';
import { fitReference, MB_ROWS, REFERENCE, REFERENCE_SPLIT, referenceErrors, referenceStats, SAME_RUN } from '../../src/plan/reference.js';
import { resolveSpec } from '../../src/plan/spec.js';
import { bandFor, quantile, validationResiduals, withinBands } from '../../src/plan/band.js';
import { hardwarePreset } from '../../src/plan/hardware.js';

const fitRows = REFERENCE.filter((r) => REFERENCE_SPLIT.fit.includes(r.id));
const validation = REFERENCE.filter((r) => REFERENCE_SPLIT.validation.includes(r.id));

describe('reference set', () => {
  it('the split: fit and validation are disjoint, by family and hardware; no published run is in both', () => {
    const fit = new Set(REFERENCE_SPLIT.fit);
    for (const id of REFERENCE_SPLIT.validation) expect(fit.has(id), id).toBe(false);
    // the fit is Qwen3 on H100 and GB200: DeepSeek-V3 (every system) and B200 (every model) are held out
    for (const r of fitRows) { expect(r.family).toBe('qwen3'); expect(['h100', 'gb200']).toContain(r.hardware); }
    for (const r of MB_ROWS.filter((x) => x.family !== 'qwen3' || x.hardware === 'b200')) expect(r.split).toBe('validation');
    // a calibration row that is the same published run as a reference row is not a second row
    for (const [cal, mb] of Object.entries(SAME_RUN)) {
      expect(REFERENCE.some((r) => r.id === cal)).toBe(false);
      expect(REFERENCE.some((r) => r.id === mb)).toBe(true);
    }
    const key = (r: (typeof REFERENCE)[number]) => JSON.stringify(r.spec);
    const fitSpecs = new Set(fitRows.map(key));
    for (const r of validation) expect(fitSpecs.has(key(r)) && r.tokens_per_s_per_device === fitRows.find((f) => key(f) === key(r))?.tokens_per_s_per_device, r.id).toBe(false);
  });

  it('every Megatron-Bridge row resolves as a spec and names the source of its fields (file and commit)', () => {
    for (const r of MB_ROWS) {
      expect(() => resolveSpec(structuredClone(r.spec), r.id)).not.toThrow();
      expect(Object.keys(r.sources).length).toBeGreaterThanOrEqual(8);
      for (const s of Object.values(r.sources)) expect(s).toMatch(/Megatron-Bridge@fa0315ae2/);
    }
  });

  it('a validation row given to the fit is refused', () => {
    expect(() => fitReference([...fitRows, validation[0]])).toThrow(/outside the fit set/);
    expect(() => fitReference(validation.filter((r) => !r.calibration).slice(0, 2))).toThrow(/outside the fit set/);
  });

  // simulated inside each test, not at collection time (StrykerJS: simulate.test.ts says why)
  const validationStats = () => referenceStats(referenceErrors().filter((r) => r.split === 'validation' && r.moe));

  it('the validation set: at least 8 MoE rows over at least 2 GPU generations', () => {
    const stats = validationStats();
    expect(stats.rows).toBeGreaterThanOrEqual(8);
    expect(stats.generations.filter((g) => g !== 'ascend').length).toBeGreaterThanOrEqual(2);
  });

  // the target, not met by this model (docs/planner.md, "Reference set"): it.fails records the miss and turns
  // red the day the model meets it, so the claim is checked either way
  it.fails('meets the issue target on the validation rows: median |error| <= 7% and every row within 15%', () => {
    const stats = validationStats();
    expect(stats.median_abs).toBeLessThanOrEqual(0.07);
    expect(stats.worst).toBeLessThanOrEqual(0.15);
  });

  it('regression bounds of the validation errors as measured now (median 9.9%, worst 35.9%: docs/planner.md)', () => {
    const stats = validationStats();
    expect(stats.median_abs).toBeLessThanOrEqual(0.105);
    expect(stats.worst).toBeLessThanOrEqual(0.37);
    expect(stats.within_15).toBeGreaterThanOrEqual(8);
  });

  it('uncertainty band: the p80 of the generation\'s validation residuals, and it covers about 4 of 5 of them', () => {
    const resid = validationResiduals();
    for (const hw of ['h100', 'b200']) {
      const b = bandFor(hardwarePreset(hw), resid);
      const gen = resid.filter((r) => r.generation === (hw === 'h100' ? 'hopper' : 'blackwell'));
      expect(b.p80_rel_error).toBeCloseTo(quantile(gen.map((r) => Math.abs(r.error)), 0.8), 12);
      const inside = gen.filter((r) => Math.abs(r.error) <= b.p80_rel_error + 1e-12).length;
      expect(inside / gen.length).toBeGreaterThanOrEqual(0.6);
      expect(b.lo_factor).toBeLessThan(1);
      expect(b.hi_factor).toBeGreaterThan(1);
    }
    const b = bandFor(hardwarePreset('h100'), resid);
    expect(withinBands(100, 100 * (1 + b.p80_rel_error / 2), b)).toBe(true);
    expect(withinBands(100, 300, b)).toBe(false);
  });
});
