/**
 * src/plan/balance.ts by hand: the most-loaded EP rank's load over the mean. A spec's fixed ratio wins, then token
 * drop's capacity factor, then 1 + cv / sqrt(E / ep) * sqrt(2 ln ep) (the expected maximum of ep Gaussian loads).
 */
import { describe, expect, it } from 'vitest';
import { loadImbalance } from '../../src/plan/balance.js';
import type { ModelShape } from '../../src/plan/models.js';

const moe = (experts: number) => ({ experts }) as ModelShape;
const t = (expert_load_cv: number, load_imbalance = 0, capacity_factor?: number) => ({ expert_load_cv, load_imbalance, capacity_factor });

describe('expert load imbalance', () => {
  it('64 experts on 8 EP ranks at cv 0.4: 1 + 0.4 / sqrt(8) x sqrt(2 ln 8)', () => {
    expect(loadImbalance(moe(64), { ep: 8 }, t(0.4))).toBeCloseTo(1 + (0.4 / Math.sqrt(8)) * Math.sqrt(2 * Math.log(8)), 12);
    // one expert a rank: the rank's load varies as much as an expert's
    expect(loadImbalance(moe(64), { ep: 64 }, t(0.4))).toBeCloseTo(1 + 0.4 * Math.sqrt(2 * Math.log(64)), 12);
    // 256 experts on 32 ranks, cv 0.25
    expect(loadImbalance(moe(256), { ep: 32 }, t(0.25))).toBeCloseTo(1 + (0.25 / Math.sqrt(8)) * Math.sqrt(2 * Math.log(32)), 12);
  });
  it('balanced without EP, without experts or at cv 0 (or below)', () => {
    expect(loadImbalance(moe(64), { ep: 1 }, t(0.4))).toBe(1);
    expect(loadImbalance(moe(64), { ep: 0 }, t(0.4))).toBe(1);
    expect(loadImbalance(moe(0), { ep: 8 }, t(0.4))).toBe(1);
    expect(loadImbalance(moe(64), { ep: 8 }, t(0))).toBe(1);
    expect(loadImbalance(moe(64), { ep: 8 }, t(-0.2))).toBe(1);
  });
  it('a fixed load_imbalance wins over everything; then the capacity factor of token drop', () => {
    expect(loadImbalance(moe(64), { ep: 8 }, t(0.4, 1.3, 1.25))).toBe(1.3);
    expect(loadImbalance(moe(0), { ep: 1 }, t(0, 1.7))).toBe(1.7);
    expect(loadImbalance(moe(64), { ep: 8 }, t(0.4, 0, 1.25))).toBe(1.25);
    expect(loadImbalance(moe(64), { ep: 1 }, t(0, 0, 2))).toBe(2);
    // capacity 0 or below means no token drop: the cv model
    const cvModel = loadImbalance(moe(64), { ep: 8 }, t(0.4));
    expect(loadImbalance(moe(64), { ep: 8 }, t(0.4, 0, 0))).toBe(cvModel);
    expect(loadImbalance(moe(64), { ep: 8 }, t(0.4, 0, -1))).toBe(cvModel);
  });
});
