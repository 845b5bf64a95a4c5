// src/plan/band.ts by hand: the generation a preset names, the linear quantile, which residuals a band draws on and
// the overlap rule, on small made-up residual lists (the reference set's own numbers move with every refit).
import { describe, expect, it } from 'vitest';
import { bandFor, generationOf, MIN_ROWS, quantile, validationResiduals, withinBands, type Band } from '../../src/plan/band.js';
import { REFERENCE, type Generation, type ReferenceResult } from '../../src/plan/reference.js';

function row(id: string, generation: Generation, error: number): ReferenceResult {
  return { id, name: id, split: 'validation', generation, moe: true, predicted: 1 + error, published: 1, error, metric: 'throughput' };
}

describe('generationOf', () => {
  it('reads the generation from the start of the preset name, any case', () => {
    const cases: [string, Generation][] = [
      ['b200', 'blackwell'], ['gb200', 'blackwell'], ['B200', 'blackwell'], ['GB300', 'blackwell'],
      ['a800', 'ampere'], ['A100', 'ampere'], ['910b', 'ascend'], ['910B3', 'ascend'],
      ['h100', 'hopper'], ['h800', 'hopper'], ['h200', 'hopper'],
      // anchored and digit-checked: these are none of the three patterns
      ['hb2', 'hopper'], ['xgb2', 'hopper'], ['xa1', 'hopper'], ['ab', 'hopper'], ['x910', 'hopper'], ['9a1', 'hopper'], ['91x', 'hopper'], ['b', 'hopper'],
    ];
    for (const [preset, gen] of cases) expect([preset, generationOf({ preset })]).toEqual([preset, gen]);
  });
});

describe('quantile', () => {
  it('is linear between order statistics of the sorted list, NaN for none', () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(quantile([7], 0.8)).toBe(7);
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([1, 3], 0.5)).toBe(2);
    expect(quantile([40, 0, 30, 10, 20], 0.8)).toBeCloseTo(32, 12); // i = 3.2: 30 + 0.2 (40 - 30)
    expect(quantile([40, 0, 30, 10, 20], 0.1)).toBeCloseTo(4, 12); // i = 0.4: 0 + 0.4 (10 - 0)
    expect(quantile([40, 0, 30, 10, 20], 1)).toBe(40);
    expect(quantile([40, 0, 30, 10, 20], 0)).toBe(0);
  });
  it('does not reorder its argument', () => {
    const xs = [3, 1, 2];
    quantile(xs, 0.5);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe('bandFor', () => {
  const hopper = [row('h1', 'hopper', 0.1), row('h2', 'hopper', -0.2), row('h3', 'hopper', 0.05)];
  const others = [row('b1', 'blackwell', 0.3), row('b2', 'blackwell', -0.4), row('a1', 'ampere', 0.01)];

  it('uses the generation\'s rows when it has MIN_ROWS of them', () => {
    expect(MIN_ROWS).toBe(3);
    const b = bandFor({ preset: 'h100' }, [...hopper, ...others]);
    const p = quantile([0.1, 0.2, 0.05], 0.8); // 0.1 + 0.6 (0.2 - 0.1) = 0.16
    expect(p).toBeCloseTo(0.16, 12);
    expect(b.p80_rel_error).toBeCloseTo(p, 12);
    expect(b.lo_factor).toBeCloseTo(1 / 1.16, 12);
    expect(b.hi_factor).toBeCloseTo(1 / 0.84, 12);
    expect(b.rows).toBe(3);
    expect(b.basis).toBe('3 validation MoE rows on hopper GPUs, docs/planner.md "Reference set"');
  });

  it('falls back to every row when the generation has fewer', () => {
    const all = [...hopper, ...others];
    const b = bandFor({ preset: 'b200' }, all);
    expect(b.rows).toBe(6);
    expect(b.p80_rel_error).toBeCloseTo(quantile(all.map((r) => Math.abs(r.error)), 0.8), 12);
    expect(b.basis).toBe('all 6 validation MoE rows (fewer than 3 on blackwell)');
    const none = bandFor({ preset: '910b' }, all);
    expect(none.basis).toBe('all 6 validation MoE rows (fewer than 3 on ascend)');
  });

  it('caps the band at 95%', () => {
    const b = bandFor({ preset: 'h100' }, [row('x', 'hopper', 3), row('y', 'hopper', -2), row('z', 'hopper', 5)]);
    expect(b.p80_rel_error).toBe(0.95);
    expect(b.hi_factor).toBeCloseTo(20, 9);
  });

  it('defaults to the committed validation residuals: validation MoE rows only, computed once', () => {
    const r = validationResiduals();
    expect(validationResiduals()).toBe(r);
    const ids = new Set(REFERENCE.filter((x) => x.split === 'validation').map((x) => x.id));
    expect(r.length).toBeGreaterThanOrEqual(8);
    for (const x of r) {
      expect(ids.has(x.id)).toBe(true);
      expect(x.split).toBe('validation');
      expect(x.moe).toBe(true);
    }
    // the dense anchor is a validation row but not a MoE one
    expect(r.length).toBeLessThan(ids.size);
    expect(bandFor({ preset: 'h100' })).toEqual(bandFor({ preset: 'h100' }, r));
  });
});

describe('withinBands', () => {
  const band: Band = { p80_rel_error: 1 / 3, lo_factor: 0.5, hi_factor: 2, basis: '', rows: 0 };
  it('overlap holds at the boundary and in either order', () => {
    expect(withinBands(100, 400, band)).toBe(true); // 100 x 2 = 400 x 0.5
    expect(withinBands(400, 100, band)).toBe(true);
    expect(withinBands(100, 401, band)).toBe(false);
    expect(withinBands(401, 100, band)).toBe(false);
    expect(withinBands(100, 100, band)).toBe(true);
  });
});
