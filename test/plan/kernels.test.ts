/**
 * The H200 kernel measurements (scripts/plan_h200_kernels.py -> docs/plan-kernels-h200.json): the constants are
 * fitted on the rows the script marks 'fit' only, the committed values the simulator uses are that fit, and the
 * model is scored on the 'check' rows (other expert shapes, row counts, attention shapes), which no fit reads.
 */
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { FITTED } from '../../src/plan/fitted.js';
import { fitKernelConstants, gemmTime, KERNEL_CONSTANTS, kernelNumbers, kernelStats, KERNEL_FIT_START, type KernelFile } from '../../src/plan/fit-kernels.js';
import { hardwarePreset, type Hardware } from '../../src/plan/hardware.js';

const data = JSON.parse(readFileSync(new URL('../../docs/plan-kernels-h200.json', import.meta.url), 'utf8')) as KernelFile;
// (set in beforeEach, not at collection time: StrykerJS runs every test file for a mutant reached while a file is collected)
let hw: Hardware;
beforeEach(() => { hw = hardwarePreset('h200'); });
const fitRows = data.rows.filter((r) => r.set === 'fit');
const checkRows = data.rows.filter((r) => r.set === 'check');

// the fit runs inside each test that reads it, not at collection time (StrykerJS: simulate.test.ts says why)
const fitted = () => fitKernelConstants(fitRows, hw).constants;

describe('H200 kernel fit', () => {

  it('the split is by shape: no check row repeats a fit row\'s shape', () => {
    const shape = (r: Record<string, unknown>) => JSON.stringify(Object.entries(r).filter(([k]) => !/_ms$|^name$|^set$/.test(k)));
    const fitShapes = new Set(fitRows.map(shape));
    for (const r of checkRows) expect(fitShapes.has(shape(r)), r.name).toBe(false);
    expect(checkRows.length).toBeGreaterThanOrEqual(20);
  });

  it('the simulator\'s FP8 GEMM and cuDNN attention efficiencies are this fit (within 1%), from a neutral start', () => {
    const c = fitted();
    expect(KERNEL_FIT_START.alpha_fp8).not.toBeCloseTo(FITTED.fp8_gemm_eff.value, 2);
    expect(Math.abs(c.alpha_fp8 / FITTED.fp8_gemm_eff.value - 1)).toBeLessThan(0.01);
    expect(Math.abs(c.sdpa.cudnn.fwd / FITTED.sdpa_cudnn_fwd_eff.value - 1)).toBeLessThan(0.01);
    expect(Math.abs(c.sdpa.cudnn.bwd / FITTED.sdpa_cudnn_bwd_eff.value - 1)).toBeLessThan(0.01);
  }, 60_000);

  it('every committed kernel constant (fitted.ts, what plan op gemm / sdpa use) is this fit within 1%', () => {
    const c = fitted();
    const flat = (k: typeof c) => [k.alpha_bf16, k.alpha_fp8, k.host_s, k.host_fp8_s, k.scatter_eff, k.sdpa.flash.fwd, k.sdpa.flash.bwd, k.sdpa.efficient.fwd, k.sdpa.efficient.bwd, k.sdpa.cudnn.fwd, k.sdpa.cudnn.bwd];
    const want = flat(c);
    flat(KERNEL_CONSTANTS).forEach((v, i) => expect(Math.abs(v / want[i] - 1), `constant ${i}`).toBeLessThan(0.01));
  });

  it('the check rows (never fitted), with the committed constants: RMS within 15%, half within 10%; attention included', () => {
    const ns = kernelNumbers(checkRows, hw, KERNEL_CONSTANTS);
    const s = kernelStats(ns);
    expect(s.rms).toBeLessThanOrEqual(0.15);
    expect(s.median_abs).toBeLessThanOrEqual(0.10);
    const attn = kernelStats(ns.filter((n) => /fwd/.test(n.what)));
    expect(attn.numbers).toBeGreaterThanOrEqual(12);
    expect(attn.rms).toBeLessThanOrEqual(0.2);
  }, 60_000);

  it('the GEMM model against a naive roofline: large GEMMs at alpha x peak, small ones at the host floor', () => {
    const c = KERNEL_CONSTANTS;
    const big = gemmTime(hw, c, 16384, 16384, 16384, false);
    expect(big).toBeCloseTo((2 * 16384 ** 3) / (c.alpha_bf16 * hw.peak_bf16) + (2 * 16384 * 16384) / (hw.hbm_bw * hw.bw_eff), 9);
    expect(gemmTime(hw, c, 16, 64, 64, true)).toBe(c.host_fp8_s);
    expect(gemmTime(hw, c, 16384, 16384, 16384, true)).toBeLessThan(big);
  });
});
