/** The fitted constants live in one file (src/plan/fitted.ts), each with its provenance; every user reads them there. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PANGU_IMPLIED_PEAK_TFLOPS } from '../../src/plan/calibration.js';
import { FITTED, type Fitted } from '../../src/plan/fitted.js';
import { hardwarePreset, presetNames } from '../../src/plan/hardware.js';
import { OP_CONSTANTS } from '../../src/plan/op.js';
import { EP_OVERLAP, TP_EXPOSED } from '../../src/plan/simulate.js';
import { DEFAULT_EXPERT_LOAD_CV } from '../../src/plan/spec.js';
import { FINE_GRAINED_LAW } from '../../src/plan/sweep.js';

const entries = Object.entries(FITTED) as [string, Fitted][];

describe('src/plan/fitted.ts', () => {
  it('every constant says what it was fitted on, its source and what it is checked on', () => {
    for (const [k, f] of entries) {
      expect(Number.isFinite(f.value), k).toBe(true);
      for (const field of ['fitted_on', 'source', 'checked_on'] as const) expect(f[field].length, `${k}.${field}`).toBeGreaterThan(10);
      expect(['fit', 'measured', 'derived', 'chosen', 'published-fit'], k).toContain(f.kind);
    }
  });
  it('names the constants set while looking at the calibration rows (the simulator\'s check set)', () => {
    expect(entries.filter(([, f]) => f.tuned_on_calibration).map(([k]) => k).sort()).toEqual(
      ['ep_overlap_adaptive', 'ep_overlap_dualpipe', 'expert_load_cv', 'goodput_hours_lost', 'pangu_implied_peak_tflops', 'tp_exposed_overlap']);
    // the op fit is checked on measurements it never saw, not on the calibration rows
    for (const [k, f] of entries) if (f.kind === 'fit') expect(f.tuned_on_calibration, k).toBe(false);
  });
  it('is where the cost model reads them', () => {
    for (const p of presetNames().map((n) => hardwarePreset(n)).filter((h) => /NVIDIA/.test(h.name))) {
      // Blackwell presets: the same fitted values times the fitted Blackwell factor (test/plan/graphs.test.ts)
      const f = /B200/.test(p.name) ? FITTED.blackwell_kernel_eff.value : 1;
      expect(p.gemm_eff, p.preset).toBe(FITTED.gemm_eff.value * f);
      expect(p.fp8_gemm_eff, p.preset).toBe(FITTED.fp8_gemm_eff.value * f);
      expect(p.bw_eff, p.preset).toBe(FITTED.bw_eff.value);
      expect(p.source.gemm_eff, p.preset).toMatch(/fitted\.ts/);
    }
    expect(OP_CONSTANTS).toEqual({ scatter_eff: FITTED.scatter_eff.value, launch_s: FITTED.launch_s.value, flash_fwd_eff: FITTED.flash_fwd_eff.value, flash_bwd_eff: FITTED.flash_bwd_eff.value });
    expect(EP_OVERLAP).toEqual({ none: 0, adaptive: FITTED.ep_overlap_adaptive.value, dualpipe: FITTED.ep_overlap_dualpipe.value });
    expect(TP_EXPOSED.overlap).toBe(FITTED.tp_exposed_overlap.value);
    expect(DEFAULT_EXPERT_LOAD_CV).toBe(FITTED.expert_load_cv.value);
    expect(PANGU_IMPLIED_PEAK_TFLOPS).toBe(FITTED.pangu_implied_peak_tflops.value);
    expect(FINE_GRAINED_LAW).toEqual({ a: 18.1, alpha: 0.115, b: 30.8, beta: 0.147, g: 2.1, gamma: 0.58, c: 0.47 });
  });
  it('no second copy of a fitted value is left in the cost model\'s files', () => {
    const src = (f: string) => readFileSync(`src/plan/${f}`, 'utf8');
    expect(src('hardware.ts')).not.toMatch(/\bgemm_eff: 0\.73\b|fp8_gemm_eff: 0\.55|bw_eff: 0\.87/);
    expect(src('op.ts')).not.toMatch(/38e-6|0\.044\b/);
    expect(src('simulate.ts')).not.toMatch(/adaptive: 0\.8|dualpipe: 0\.95|overlap: 0\.3|1\.13e-6/);
    expect(src('hardware.ts')).not.toMatch(/0\.425/);
    expect(src('spec.ts')).not.toMatch(/= 0\.12;/);
    expect(src('sweep.ts')).not.toMatch(/18\.1|0\.115/);
    expect(src('calibration.ts')).not.toMatch(/= 220;|466 \/ \(54/);
  });
});
