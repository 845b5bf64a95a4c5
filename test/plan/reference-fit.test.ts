/**
 * The slow half of the reference-set tests (seconds each: the framework fit's grid and the Pangu search over its
 * assumptions), apart from reference.test.ts so that `npm run mutate` (scripts/mutate.mjs) can leave them out of the
 * plan module's list: every mutant of the simulator would otherwise run them.
 */
import { describe, expect, it } from 'vitest';
import { FITTED } from '../../src/plan/fitted.js';
import { fitReference, predictRow, REFERENCE, REFERENCE_SPLIT } from '../../src/plan/reference.js';

const fitRows = REFERENCE.filter((r) => REFERENCE_SPLIT.fit.includes(r.id));

describe('reference set: the framework fit', () => {
  it('the committed framework constants are the fit on the fit rows alone (refit within 2%)', () => {
    const f = fitReference(fitRows);
    expect(f.launch_train_s / FITTED.launch_train_s.value).toBeGreaterThan(0.98);
    expect(f.launch_train_s / FITTED.launch_train_s.value).toBeLessThan(1.02);
    expect(f.host_kernel_s / FITTED.host_kernel_s.value).toBeGreaterThan(0.98);
    expect(f.host_kernel_s / FITTED.host_kernel_s.value).toBeLessThan(1.02);
    expect(f.blackwell_kernel_eff / FITTED.blackwell_kernel_eff.value).toBeGreaterThan(0.98);
    expect(f.blackwell_kernel_eff / FITTED.blackwell_kernel_eff.value).toBeLessThan(1.02);
    // the fit changes when a fit row's published number changes: the constants come from these rows
    const moved = fitReference(fitRows.map((r) => (r.id === 'qwen3-30b-h100' ? { ...r, tokens_per_s_per_device: r.tokens_per_s_per_device * 0.7 } : r)));
    // (the launch or the host constant absorbs it: either way that row's prediction follows its number down)
    const row = fitRows.find((r) => r.id === 'qwen3-30b-h100')!;
    expect(predictRow(row, moved) / predictRow(row, f)).toBeLessThan(0.85);
    expect(moved.launch_train_s !== f.launch_train_s || moved.host_kernel_s !== f.host_kernel_s).toBe(true);
    // and the Blackwell factor comes from the GB200 fit rows: slower published GB200 rows, a smaller factor
    const slowGb = fitReference(fitRows.map((r) => (r.hardware === 'gb200' ? { ...r, tokens_per_s_per_device: r.tokens_per_s_per_device * 0.8 } : r)));
    expect(slowGb.blackwell_kernel_eff).toBeLessThan(f.blackwell_kernel_eff * 0.95);
  }, 60_000);
});

describe('Pangu Ultra MoE over its named assumptions', () => {
  it('the published layout ranks among the fitting layouts at 6,144 NPUs; at 5,632 no batch of the range divides its 44 replicas x micro-batch 2', async () => {
    const { panguOverAssumptions } = await import('../../src/plan/pangu.js');
    const pts = panguOverAssumptions([
      { name: 'seq_len', values: [4096], why: '' }, { name: 'global_batch', values: [3072], why: '' },
      { name: 'devices', values: [6144, 5632], why: '' }, { name: 'peak_bf16_tflops', values: [220], why: '' },
    ]);
    const at6k = pts.find((p) => p.assumptions.devices === 6144)!;
    expect(at6k.rank).toBeGreaterThan(0);
    expect(at6k.rank / at6k.of).toBeLessThan(0.05);
    expect(at6k.tokens_per_s).toBeLessThanOrEqual(at6k.best_tokens_per_s);
    expect(pts.find((p) => p.assumptions.devices === 5632)!.rank).toBe(-1);
    expect(3072 % (44 * 2)).not.toBe(0);
  }, 120_000);
});
