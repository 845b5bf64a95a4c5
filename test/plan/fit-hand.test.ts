/**
 * src/plan/fit-op.ts and src/plan/fit-kernels.ts worked by hand (fast: the mutation run executes this file for every
 * covered mutant; test/plan/op.test.ts and test/plan/kernels.test.ts run the real fits on the H200 measurements):
 *  - the Nelder-Mead steps (reflect, expand, contract, shrink, each boundary) traced point by point on tiny functions;
 *  - row selection, shape keys, errors and their statistics on made-up rows, every field;
 *  - the kernel models (GEMM, SDPA, route / permute / unpermute) on a toy device with round numbers;
 *  - the fits on a handful of synthetic rows made from KNOWN constants: they must come back, and where the rows
 *    cannot all be met, the optimum and its rms log error are worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import {
  errorStats, fitOpConstants, nelderMead, OP_FIT_START, opErrors, opShapeKey, selectOpRows, type OpError, type OpMeasurementFile, type OpRow,
} from '../../src/plan/fit-op.js';
import {
  fitKernelConstants, gemmTime, KERNEL_CONSTANTS, KERNEL_FIT_START, kernelNumbers, kernelStats, predictKernelRow, SDPA_BACKENDS, sdpaTime,
  type KernelConstants, type KernelNumber, type KernelRow,
} from '../../src/plan/fit-kernels.js';
import { FITTED } from '../../src/plan/fitted.js';
import type { Hardware } from '../../src/plan/hardware.js';
import { OP_CONSTANTS, predictAttention, predictMoeLayer, type OpConstants } from '../../src/plan/op.js';

/** relative agreement to `tol` (exact for 0) */
function close(got: number, want: number, what = '', tol = 1e-12): void {
  if (want === 0) expect(got, what).toBe(0);
  else expect(Math.abs(got / want - 1), `${what}: got ${got}, want ${want}`).toBeLessThan(tol);
}
const closeVec = (got: number[], want: number[], what = '') => {
  expect(got.length, what).toBe(want.length);
  got.forEach((v, i) => expect(Math.abs(v - want[i]), `${what}[${i}]: got ${v}, want ${want[i]}`).toBeLessThan(1e-12));
};

/** runs nelderMead and records every point it evaluates */
function trace(f: (x: number[]) => number, x0: number[], iters: number) {
  const calls: number[][] = [];
  const r = nelderMead((x) => { calls.push([...x]); return f(x); }, x0, iters);
  return { ...r, calls };
}
const expectCalls = (got: number[][], want: number[][]) => {
  expect(got.length, `calls ${JSON.stringify(got)}`).toBe(want.length);
  got.forEach((x, i) => closeVec(x, want[i], `call ${i}`));
};

describe('nelderMead', () => {
  // the start simplex is x0 and x0 + 0.3 along each axis; each step reflects the worst vertex through the centroid of the
  // others (r = 2c - w), expands (3c - 2w) when r beats the best, contracts (c + (w - c)/2) when r beats no one, and
  // shrinks every vertex but the best halfway to it when the contraction does not beat the worst
  it('0 iterations: the best vertex of the start simplex', () => {
    // f(0,0) = 1 + 4 = 5; f(.3,0) = .49 + 4 = 4.49; f(0,.3) = 1 + 5.29 = 6.29
    const r = trace((x) => (x[0] - 1) ** 2 + (x[1] + 2) ** 2, [0, 0], 0);
    expectCalls(r.calls, [[0, 0], [0.3, 0], [0, 0.3]]);
    closeVec(r.x, [0.3, 0]);
    expect(r.f).toBeCloseTo(4.49, 14);
  });
  it('expansion accepted (2-D): r beats the best and the expansion beats r', () => {
    // sorted: (.3,0) 4.49, (0,0) 5, (0,.3) 6.29; c = (.15, 0), w = (0, .3)
    // r = (.3, -.3): .49 + 2.89 = 3.38 < 4.49 -> e = (.45, -.6): .3025 + 1.96 = 2.2625 < 3.38: kept
    const r = trace((x) => (x[0] - 1) ** 2 + (x[1] + 2) ** 2, [0, 0], 1);
    expectCalls(r.calls, [[0, 0], [0.3, 0], [0, 0.3], [0.3, -0.3], [0.45, -0.6]]);
    closeVec(r.x, [0.45, -0.6]);
    expect(r.f).toBeCloseTo(2.2625, 14);
  });
  it('expansion rejected (1-D): r is kept when the expansion is worse', () => {
    // f = (x-1)^2 from .5: .5 -> .25, .8 -> .04; c = .8, w = .5; r = 1.1 -> .01 < .04; e = 1.4 -> .16 > .01: keep r
    const r = trace((x) => (x[0] - 1) ** 2, [0.5], 1);
    expectCalls(r.calls, [[0.5], [0.8], [1.1], [1.4]]);
    closeVec(r.x, [1.1]);
    expect(r.f).toBeCloseTo(0.01, 14);
  });
  it('expansion tie: r is kept when the expansion is only as good', () => {
    // f = 0 below -.1, 1 up to .2, 2 above: 0 -> 1, .3 -> 2; r = -.3 -> 0 < 1; e = -.6 -> 0, not < 0: keep r = -.3
    const r = trace((x) => (x[0] < -0.1 ? 0 : x[0] < 0.2 ? 1 : 2), [0], 1);
    expectCalls(r.calls, [[0], [0.3], [-0.3], [-0.6]]);
    closeVec(r.x, [-0.3]);
    expect(r.f).toBe(0);
  });
  it('reflection accepted (2-D): r beats the second worst but not the best, then a contraction', () => {
    // f = (x - .2)^2 + (y + .125)^2: (0,0) .055625, (.3,0) .025625, (0,.3) .220625
    // iter 1: c = (.15, 0), w = (0, .3); r = (.3, -.3): .01 + .030625 = .040625, between .025625 and .055625: replaces w
    // iter 2: sorted (.3,0), (.3,-.3), (0,0); c = (.3, -.15); r = (.6, -.3): .190625 beats no one;
    //   k = (.15, -.075): .0025 + .0025 = .005 < .055625: replaces w; best
    const r = trace((x) => (x[0] - 0.2) ** 2 + (x[1] + 0.125) ** 2, [0, 0], 2);
    expectCalls(r.calls, [[0, 0], [0.3, 0], [0, 0.3], [0.3, -0.3], [0.6, -0.3], [0.15, -0.075]]);
    closeVec(r.x, [0.15, -0.075]);
    expect(r.f).toBeCloseTo(0.005, 14);
  });
  it('reflection tie with the second worst (2-D): contraction, not acceptance', () => {
    // f = 2 where x > .2, else 3 where y > .2, else 1: (0,0) 1, (.3,0) 2, (0,.3) 3; c = (.15,0), w = (0,.3)
    // r = (.3, -.3) -> 2, not < 2 (the second worst): k = (.075, .15) -> 1 < 3: replaces w
    const r = trace((x) => (x[0] > 0.2 ? 2 : x[1] > 0.2 ? 3 : 1), [0, 0], 1);
    expectCalls(r.calls, [[0, 0], [0.3, 0], [0, 0.3], [0.3, -0.3], [0.075, 0.15]]);
    closeVec(r.x, [0, 0]); // the best stays (0,0): (.075,.15) ties it and sorts after it
    expect(r.f).toBe(1);
  });
  it('contraction accepted (1-D), and the result is the sorted best', () => {
    // f = (x-1)^2 from .9: .9 -> .01, 1.2 -> .04; c = .9, w = 1.2; r = .6 -> .16 beats no one; k = 1.05 -> .0025 < .04
    const r = trace((x) => (x[0] - 1) ** 2, [0.9], 1);
    expectCalls(r.calls, [[0.9], [1.2], [0.6], [1.05]]);
    closeVec(r.x, [1.05]);
    expect(r.f).toBeCloseTo(0.0025, 14);
  });
  it('shrink when the contraction only ties the worst (1-D step), then the next step from the shrunk simplex', () => {
    // f = 2 above .1, else 1: 0 -> 1, .3 -> 2; r = -.3 -> 1 ties the best: no; k = .15 -> 2, not < 2: shrink
    // .3 -> 0 + (.3 - 0)/2 = .15 (evaluated again); iter 2: c = 0, w = .15; r = -.15 -> 1 ties; k = .075 -> 1 < 2: kept
    const r = trace((x) => (x[0] > 0.1 ? 2 : 1), [0], 2);
    expectCalls(r.calls, [[0], [0.3], [-0.3], [0.15], [0.15], [-0.15], [0.075]]);
    closeVec(r.x, [0]);
    expect(r.f).toBe(1);
  });
  it('converges on a smooth bowl', () => {
    const r = nelderMead((x) => (x[0] - 1) ** 2 + 10 * (x[1] + 2) ** 2, [0, 0], 300);
    expect(Math.abs(r.x[0] - 1)).toBeLessThan(1e-6);
    expect(Math.abs(r.x[1] + 2)).toBeLessThan(1e-6);
    expect(r.f).toBeLessThan(1e-12);
  });
});

// ---------------------------------------------------------------- fit-op.ts

/** the toy device of test/plan/op-hand.test.ts: bw 5e8 B/s, BF16 GEMMs at 5e11 FLOP/s */
const HW: Hardware = {
  preset: 'toy', name: 'toy device', devices_per_node: 1, scaleup_domain: 1, intra_bw: 1e9, intra_topology: 'switch', inter_bw: 1e9,
  host_bw: 1e9, hbm_bytes: 1e9, hbm_bw: 1e9, peak_bf16: 1e12, peak_fp8: 4e12, gemm_eff: 0.5, fp8_gemm_eff: 0.25, bw_eff: 0.5,
  coll_eff: 1, coll_latency: 0, source: {},
};
const C: OpConstants = { scatter_eff: 0.25, launch_s: 1e-6, flash_fwd_eff: 0.5, flash_bwd_eff: 0.25 };
const MOE = { tokens: 3, hidden: 4, experts: 5, top_k: 2, expert_ffn: 7 };
const ATTN = { batch: 2, seq: 3, hidden: 8, heads: 4, kv_heads: 2, head_dim: 5 };
const moeRow = (name: string, s: typeof MOE, fwd_ms: number, fwd_bwd_ms: number, lease = 'A'): OpRow => ({ kind: 'moe', name, lease, impl: 'grouped', ...s, fwd_ms, fwd_bwd_ms });
const attnRow = (name: string, s: typeof ATTN, fwd_ms: number, fwd_bwd_ms: number, lease = 'A'): OpRow => ({ kind: 'attention', name, lease, ...s, fwd_ms, fwd_bwd_ms });

describe('selectOpRows', () => {
  const t = { fwd_ms: 1, fwd_bwd_ms: 2 };
  const data: OpMeasurementFile = {
    moe_layer: [
      { name: 'g-fit', impl: 'grouped', set: 'fit', ...MOE, ...t },
      { name: 'g-hold', impl: 'grouped', set: 'holdout', ...MOE, ...t },
      { name: 'loop-fit', impl: 'loop', set: 'fit', ...MOE, ...t },
      { name: 'noimpl-fit', set: 'fit', ...MOE, ...t },
      { name: 'g-noset', impl: 'grouped', ...MOE, ...t },
    ],
    attention: [{ name: 'a-fit', set: 'fit', ...ATTN, ...t }, { name: 'a-hold', set: 'holdout', ...ATTN, ...t }, { name: 'a-noset', ...ATTN, ...t }],
  };
  it("'all': every grouped MoE row (not the per-expert loop, not rows without impl) and every attention row, tagged", () => {
    const rows = selectOpRows(data, { file: 'x.json', lease: 'B', rows: 'all' });
    expect(rows.map((r) => r.name)).toEqual(['g-fit', 'g-hold', 'g-noset', 'a-fit', 'a-hold', 'a-noset']);
    expect(rows[0]).toEqual({ kind: 'moe', lease: 'B', name: 'g-fit', impl: 'grouped', set: 'fit', ...MOE, ...t });
    expect(rows[3]).toEqual({ kind: 'attention', lease: 'B', name: 'a-fit', set: 'fit', ...ATTN, ...t });
    expect(rows.map((r) => r.kind)).toEqual(['moe', 'moe', 'moe', 'attention', 'attention', 'attention']);
    expect(new Set(rows.map((r) => r.lease))).toEqual(new Set(['B']));
  });
  it("'fit' / 'holdout': only the rows whose set field says so", () => {
    expect(selectOpRows(data, { file: 'x.json', lease: 'A', rows: 'fit' }).map((r) => r.name)).toEqual(['g-fit', 'a-fit']);
    expect(selectOpRows(data, { file: 'x.json', lease: 'C', rows: 'holdout' }).map((r) => [r.name, r.lease])).toEqual([['g-hold', 'C'], ['a-hold', 'C']]);
    expect(selectOpRows({ moe_layer: [], attention: [] }, { file: 'x.json', lease: 'A', rows: 'all' })).toEqual([]);
  });
});

describe('opShapeKey', () => {
  it('names every dimension of the shape', () => {
    expect(opShapeKey(moeRow('m', MOE, 1, 2))).toBe('moe T3 H4 E5 K2 I7');
    expect(opShapeKey(attnRow('a', ATTN, 1, 2))).toBe('attention B2 S3 H8 N4 G2 D5');
  });
});

describe('opErrors', () => {
  // op-hand.test.ts: the MoE shape takes 28.072e-3 ms forward, 58.244e-3 ms forward + backward on the toy device;
  // the attention shape 8.70592e-3 and 26.08352e-3 ms
  const rows = [moeRow('m', MOE, 2 * 28.072e-3, 58.244e-3 / 2, 'B'), attnRow('a', ATTN, 8.70592e-3, 4 * 26.08352e-3, 'C')];
  it('predicted / measured - 1 of fwd and fwd+bwd, with the row name, kind and lease', () => {
    const e = opErrors(rows, HW, C);
    expect(e.length).toBe(2);
    expect([e[0].name, e[0].kind, e[0].lease, e[1].name, e[1].kind, e[1].lease]).toEqual(['m', 'moe', 'B', 'a', 'attention', 'C']);
    expect(Object.keys(e[0])).toEqual(['name', 'kind', 'lease', 'fwd', 'fwd_bwd']);
    const want = [
      [28.072e-3, 2 * 28.072e-3, -0.5, 58.244e-3, 58.244e-3 / 2, 1],
      [8.70592e-3, 8.70592e-3, 0, 26.08352e-3, 4 * 26.08352e-3, -0.75],
    ];
    e.forEach((x, i) => {
      const [pf, mf, ef, pb, mb, eb] = want[i];
      close(x.fwd.predicted_ms, pf, `${x.name} fwd predicted`);
      expect(x.fwd.measured_ms).toBe(mf);
      expect(Math.abs(x.fwd.error - ef), `${x.name} fwd error`).toBeLessThan(1e-12);
      close(x.fwd_bwd.predicted_ms, pb, `${x.name} fwd_bwd predicted`);
      expect(x.fwd_bwd.measured_ms).toBe(mb);
      expect(Math.abs(x.fwd_bwd.error - eb), `${x.name} fwd_bwd error`).toBeLessThan(1e-12);
    });
  });
  it('defaults to OP_CONSTANTS', () => {
    const e = opErrors(rows, HW);
    close(e[0].fwd.predicted_ms, predictMoeLayer(MOE, HW, OP_CONSTANTS).fwd_ms);
    close(e[1].fwd_bwd.predicted_ms, predictAttention(ATTN, HW, OP_CONSTANTS).fwd_bwd_ms);
    expect(opErrors([], HW)).toEqual([]);
  });
});

describe('errorStats', () => {
  const err = (name: string, lease: string, f: number, fb: number): OpError => ({
    name, kind: 'moe', lease, fwd: { predicted_ms: 1 + f, measured_ms: 1, error: f }, fwd_bwd: { predicted_ms: 1 + fb, measured_ms: 1, error: fb },
  });
  it('rms over both numbers of every shape; the worst |error| and where (first of a tie)', () => {
    // squares .01 + .09 + .09 + .04 = .23 over 4 numbers; worst .3 first at a's fwd+bwd (b's fwd ties it later)
    const s = errorStats([err('a', 'B', 0.1, -0.3), err('b', 'C', 0.3, 0.2)]);
    expect(s.shapes).toBe(2);
    expect(s.numbers).toBe(4);
    expect(s.rms).toBeCloseTo(Math.sqrt(0.0575), 14);
    expect(s.worst).toBeCloseTo(0.3, 14);
    expect(s.worst_at).toBe('a fwd+bwd (lease B)');
    expect(Object.keys(s)).toEqual(['shapes', 'numbers', 'rms', 'worst', 'worst_at']);
  });
  it('a negative forward error can be the worst', () => {
    // squares .16 + .01 over 2 numbers
    const s = errorStats([err('x', 'A', -0.4, 0.1)]);
    expect(s).toEqual({ shapes: 1, numbers: 2, rms: Math.sqrt(0.085), worst: 0.4, worst_at: 'x fwd (lease A)' });
  });
  it('no errors: zeros, no worst', () => {
    expect(errorStats([])).toEqual({ shapes: 0, numbers: 0, rms: 0, worst: 0, worst_at: '' });
    expect(errorStats([err('z', 'A', 0, 0)])).toEqual({ shapes: 1, numbers: 2, rms: 0, worst: 0, worst_at: '' });
  });
});

describe('fitOpConstants', () => {
  it('OP_FIT_START is a neutral start', () => {
    expect(OP_FIT_START).toEqual({ gemm_eff: 0.6, scatter_eff: 0.1, launch_s: 20e-6, flash_fwd_eff: 0.5, flash_bwd_eff: 0.5 });
  });
  it('no rows: nothing moves the start (every step shrinks onto it), rms 0', () => {
    const start = { gemm_eff: 0.7, scatter_eff: 0.2, launch_s: 3e-5, flash_fwd_eff: 0.4, flash_bwd_eff: 0.3 };
    const f = fitOpConstants([], HW, start, 50);
    for (const k of Object.keys(start) as (keyof typeof start)[]) close(f[k], start[k], k);
    expect(f.rms_log_err).toBe(0);
    expect(Object.keys(f)).toEqual(['gemm_eff', 'scatter_eff', 'launch_s', 'flash_fwd_eff', 'flash_bwd_eff', 'rms_log_err']);
    const d = fitOpConstants([], HW, undefined, 5);
    close(d.gemm_eff, 0.6);
    close(d.launch_s, 20e-6);
  });
  // an all-zero MoE shape moves no bytes and does no math: each kernel costs one launch, 21 forward and 21 backward
  // (route 7 + dispatch 6 + experts 4 + combine 4; 7 + 3 + 7 + 4), so only launch_s matters
  const ZERO = { tokens: 0, hidden: 0, experts: 0, top_k: 0, expert_ffn: 0 };
  it('0 iterations: the best start vertex; here the one with launch_s raised by e^0.3', () => {
    // measured at 30 us a launch: fwd 21 * 30e-6 s = 0.63 ms, fwd+bwd 42 * 30e-6 = 1.26 ms (two rows alike)
    // start 20 us: log error ln(2/3) = -.405 on all four; launch vertex 20e-6 e^.3 = 27.0 us: .3 - ln 1.5 = -.105 (best)
    const f = fitOpConstants([moeRow('zero', ZERO, 0.63, 1.26), moeRow('zero2', ZERO, 0.63, 1.26)], HW, OP_FIT_START, 0);
    close(f.gemm_eff, 0.6);
    close(f.scatter_eff, 0.1);
    close(f.launch_s, 20e-6 * Math.exp(0.3));
    close(f.flash_fwd_eff, 0.5);
    close(f.flash_bwd_eff, 0.5);
    // rms of the four equal log errors over 2 rows x 2 numbers: |.3 - ln 1.5| = .40546510811 - .3
    expect(f.rms_log_err).toBeCloseTo(Math.log(1.5) - 0.3, 12);
  });
  it('a row no launch cost meets exactly: the geometric mean, and rms log error = half the log gap', () => {
    // fwd wants 1e-5 s a launch (0.21 ms / 21), fwd+bwd 9e-5 (3.78 ms / 42): least squares on logs -> sqrt(1e-5 * 9e-5) = 3e-5,
    // both residuals ln 3 in size; rms over 2 numbers = ln 3
    const f = fitOpConstants([moeRow('z', ZERO, 0.21, 3.78)], HW, OP_FIT_START, 100);
    close(f.launch_s, 3e-5, 'launch_s', 1e-6);
    expect(f.rms_log_err).toBeCloseTo(Math.log(3), 9);
  });
  it('recovers known constants from rows made with them (and bw_eff stays the device\'s)', () => {
    const truth = { gemm_eff: 0.5, scatter_eff: 0.25, launch_s: 1e-6, flash_fwd_eff: 0.4, flash_bwd_eff: 0.2 };
    const hw = { ...HW, hbm_bw: 1e11 };
    const th = { ...hw, gemm_eff: truth.gemm_eff };
    const made = (name: string, s: typeof MOE) => { const p = predictMoeLayer(s, th, truth); return moeRow(name, s, p.fwd_ms, p.fwd_bwd_ms); };
    const madeA = (name: string, s: typeof ATTN) => { const p = predictAttention(s, th, truth); return attnRow(name, s, p.fwd_ms, p.fwd_bwd_ms); };
    const rows = [
      made('coarse', { tokens: 1024, hidden: 512, experts: 4, top_k: 2, expert_ffn: 1024 }), // compute-bound experts: gemm_eff
      made('fine', { tokens: 4096, hidden: 64, experts: 64, top_k: 8, expert_ffn: 32 }), // byte-bound, scatters: scatter_eff
      made('tiny', { tokens: 8, hidden: 8, experts: 2, top_k: 1, expert_ffn: 8 }), // launch-bound: launch_s
      madeA('attn', { batch: 1, seq: 1024, hidden: 64, heads: 4, kv_heads: 4, head_dim: 64 }), // flash fwd / bwd
    ];
    const f = fitOpConstants(rows, { ...hw, gemm_eff: 0.9 }, OP_FIT_START, 1000);
    for (const k of Object.keys(truth) as (keyof typeof truth)[]) close(f[k], truth[k], k, 1e-9);
    expect(f.rms_log_err).toBeLessThan(1e-12);
  });
});

// ---------------------------------------------------------------- fit-kernels.ts

/**
 * toy device: HBM 1e11 B/s at bw_eff .5 -> 5e10 B/s; BF16 1e12 and FP8 4e12 FLOP/s peaks. Constants: bf16 GEMMs at .5
 * (5e11), fp8 at .25 (1e12), host floors 1 us and 3 us (fp8), scatter at .25 of raw HBM (2.5e10 B/s); SDPA fractions
 * of the BF16 peak fwd / bwd: flash .5 / .25, efficient .4 / .2, cudnn .8 / .5
 */
const KHW: Hardware = { ...HW, hbm_bw: 1e11 };
const KC: KernelConstants = {
  alpha_bf16: 0.5, alpha_fp8: 0.25, host_s: 1e-6, host_fp8_s: 3e-6, scatter_eff: 0.25,
  sdpa: { flash: { fwd: 0.5, bwd: 0.25 }, efficient: { fwd: 0.4, bwd: 0.2 }, cudnn: { fwd: 0.8, bwd: 0.5 } },
};

describe('kernel constants', () => {
  it('SDPA_BACKENDS, the neutral start, and the committed values from fitted.ts', () => {
    expect(SDPA_BACKENDS).toEqual(['flash', 'efficient', 'cudnn']);
    expect(KERNEL_FIT_START).toEqual({
      alpha_bf16: 0.5, alpha_fp8: 0.5, host_s: 10e-6, host_fp8_s: 10e-6, scatter_eff: 0.1,
      sdpa: { flash: { fwd: 0.3, bwd: 0.3 }, efficient: { fwd: 0.3, bwd: 0.3 }, cudnn: { fwd: 0.3, bwd: 0.3 } },
    });
    expect(KERNEL_CONSTANTS).toEqual({
      alpha_bf16: FITTED.kernel_alpha_bf16.value, alpha_fp8: FITTED.fp8_gemm_eff.value, host_s: FITTED.kernel_host_s.value,
      host_fp8_s: FITTED.kernel_host_fp8_s.value, scatter_eff: FITTED.kernel_scatter_eff.value,
      sdpa: {
        flash: { fwd: FITTED.sdpa_flash_fwd_eff.value, bwd: FITTED.sdpa_flash_bwd_eff.value },
        efficient: { fwd: FITTED.sdpa_efficient_fwd_eff.value, bwd: FITTED.sdpa_efficient_bwd_eff.value },
        cudnn: { fwd: FITTED.sdpa_cudnn_fwd_eff.value, bwd: FITTED.sdpa_cudnn_bwd_eff.value },
      },
    });
  });
});

describe('gemmTime', () => {
  it('bf16 compute-bound: math, plus the weight bytes', () => {
    // 2e9 / 5e11 = 4e-3 vs (2*1e6 + 2*1e6) / 5e10 = 8e-5; + 2e6 / 5e10 = 4e-5 -> 4.04e-3 s
    close(gemmTime(KHW, KC, 1000, 1000, 1000, false), 4.04e-3);
  });
  it('bf16 grouped: every group\'s weights stream', () => {
    close(gemmTime(KHW, KC, 1000, 1000, 1000, false, 4), 4.16e-3); // 4e-3 + 4 * 2e6 / 5e10 = 1.6e-4
  });
  it('bf16 memory-bound: the activation bytes beat the math', () => {
    // M 1e5, N = K = 10: 2e7 / 5e11 = 4e-5 vs (2e6 + 2e6) / 5e10 = 8e-5; + 200 / 5e10 = 4e-9 -> 8.0004e-5 s
    close(gemmTime(KHW, KC, 100000, 10, 10, false), 8.0004e-5);
  });
  it('fp8: 1-byte operands at alpha_fp8 * peak_fp8', () => {
    // 2e9 / 1e12 = 2e-3 vs (1e6 + 2e6) / 5e10 = 6e-5; + 1e6 / 5e10 = 2e-5 -> 2.02e-3 s
    close(gemmTime(KHW, KC, 1000, 1000, 1000, true), 2.02e-3);
  });
  it('small GEMMs cost the host floor, its own for fp8', () => {
    expect(gemmTime(KHW, KC, 10, 10, 10, false)).toBe(1e-6);
    expect(gemmTime(KHW, KC, 10, 10, 10, true)).toBe(3e-6);
  });
});

describe('sdpaTime', () => {
  // B 1, S 999, N 4, D 100: F = 4 * 4 * 100 * 999 * 500 = 7.992e8; backward 2.5 F = 1.998e9
  const s = { B: 1, S: 999, N: 4, G: 4, D: 100 };
  it('MHA (no kv expansion): math at each backend\'s fraction, plus the kernel\'s own bytes (twice backward)', () => {
    // io = 2 * 999 * 100 * (2*4 + 2*4) = 3.1968e6 B / 5e10 = 6.3936e-5 s
    // flash: fwd 7.992e8 / 5e11 = 1.5984e-3 + io = 1.662336e-3; bwd 1.998e9 / 2.5e11 = 7.992e-3 + 2 io = 8.119872e-3
    // efficient: 7.992e8 / 4e11 = 1.998e-3 + io = 2.061936e-3; 1.998e9 / 2e11 = 9.99e-3 + 2 io = 10.117872e-3
    // cudnn: 7.992e8 / 8e11 = 9.99e-4 + io = 1.062936e-3; 1.998e9 / 5e11 = 3.996e-3 + 2 io = 4.123872e-3
    const want = { flash: [1.662336e-3, 9.782208e-3], efficient: [2.061936e-3, 12.179808e-3], cudnn: [1.062936e-3, 5.186808e-3] };
    for (const b of SDPA_BACKENDS) {
      const t = sdpaTime(KHW, KC, b, s);
      close(t.fwd, want[b][0], `${b} fwd`);
      close(t.fwd_bwd, want[b][1], `${b} fwd_bwd`);
      expect(Object.keys(t)).toEqual(['fwd', 'fwd_bwd']);
    }
  });
  it('GQA: the kv expansion copy is added to both directions', () => {
    // G 2: io = 2 * 999 * 100 * (8 + 4) = 2.3976e6 B -> 4.7952e-5; expand = 2*2 * 999 * 100 * (2 + 4) = 2.3976e6 B -> 4.7952e-5
    // fwd = 1.5984e-3 + 4.7952e-5 + 4.7952e-5 = 1.694304e-3; bwd = 7.992e-3 + 9.5904e-5 + 4.7952e-5 = 8.135856e-3
    const t = sdpaTime(KHW, KC, 'flash', { ...s, G: 2 });
    close(t.fwd, 1.694304e-3);
    close(t.fwd_bwd, 9.83016e-3);
  });
  it('tiny shapes: host floors on the kernel and on the expansion copy', () => {
    // all 1: F = 4 FLOPs, io 8 B: both directions at the 1 us floor
    const one = sdpaTime(KHW, KC, 'cudnn', { B: 1, S: 1, N: 1, G: 1, D: 1 });
    expect(one.fwd).toBe(1e-6);
    expect(one.fwd_bwd).toBe(2e-6);
    // N 2, G 1: the expansion copy (12 B) also costs the floor: fwd 2 us, bwd 2 us
    const gqa = sdpaTime(KHW, KC, 'cudnn', { B: 1, S: 1, N: 2, G: 1, D: 1 });
    expect(gqa.fwd).toBe(2e-6);
    expect(gqa.fwd_bwd).toBe(4e-6);
  });
});

describe('predictKernelRow', () => {
  const row = (group: KernelRow['group'], o: Record<string, unknown>): KernelRow => ({ group, name: group, set: 'fit', ...o });
  it('gemm: the bf16 and fp8 times in ms', () => {
    const p = predictKernelRow(row('gemm', { M: 1000, N: 1000, K: 1000 }), KHW, KC);
    expect(Object.keys(p)).toEqual(['bf16_ms', 'fp8_ms']);
    close(p.bf16_ms, 4.04);
    close(p.fp8_ms, 2.02);
  });
  it('grouped: w13 (N = 2I) and w2 over G groups of R rows, bf16 only', () => {
    // G 4 x R 250 = 1000 rows, H 1000, I 500: w13 gemm(1000, 1000, 1000, 4 groups) = 4.16e-3 s
    // w2 gemm(1000, 1000, 500, 4): 1e9 / 5e11 = 2e-3 vs (1e6 + 2e6) / 5e10 = 6e-5; + 4 * 2 * 5e5 / 5e10 = 8e-5 -> 2.08e-3 s
    const p = predictKernelRow(row('grouped', { G: 4, R: 250, H: 1000, I: 500 }), KHW, KC);
    expect(Object.keys(p)).toEqual(['w13_bf16_ms', 'w2_bf16_ms']);
    close(p.w13_bf16_ms, 4.16);
    close(p.w2_bf16_ms, 2.08);
  });
  it('sdpa: fwd and fwd+bwd of the row\'s backend', () => {
    const p = predictKernelRow(row('sdpa', { backend: 'efficient', B: 1, S: 999, N: 4, G: 4, D: 100 }), KHW, KC);
    expect(Object.keys(p)).toEqual(['fwd_ms', 'fwd_bwd_ms']);
    close(p.fwd_ms, 2.061936);
    close(p.fwd_bwd_ms, 12.179808);
  });
  it('route: router GEMM + 3 eager ops; argsort passes + gathers; zeros + weighting + scatter', () => {
    // T 1000, H 100, E 10, K 2: TE 1e4, TK 2e3, TKH 2e5
    // route: gemm(1000, 10, 100): 2e6/5e11 = 4e-6 vs (2e5 + 2e4)/5e10 = 4.4e-6; + 2e3/5e10 = 4e-8 -> 4.44e-6;
    //   6e4, 8e4, 4e4 + 2.4e4 bytes / 5e10 = 1.2e-6 + 1.6e-6 + 1.28e-6 -> 8.52e-6 s
    // permute: 4 x 32*2e3 B = 4 x 1.28e-6; 24*2e3 = 4.8e4 B -> 9.6e-7, floor 1e-6; 4*2e5 B -> 1.6e-5 -> 2.212e-5 s
    // unpermute: 2*1e5 B -> 4e-6; 6*2e5 B -> 2.4e-5; scatter 4e5 B / 2.5e10 = 1.6e-5 -> 4.4e-5 s
    const p = predictKernelRow(row('route', { T: 1000, H: 100, E: 10, K: 2 }), KHW, KC);
    expect(Object.keys(p)).toEqual(['route_ms', 'permute_ms', 'unpermute_ms']);
    close(p.route_ms, 8.52e-3);
    close(p.permute_ms, 2.212e-2);
    close(p.unpermute_ms, 4.4e-2);
  });
  it('route at the host floor: every eager op costs 1 us (4 + 6 + 3 ops)', () => {
    const p = predictKernelRow(row('route', { T: 1, H: 1, E: 1, K: 1 }), KHW, KC);
    close(p.route_ms, 4e-3);
    close(p.permute_ms, 6e-3);
    close(p.unpermute_ms, 3e-3);
  });
  it('casts and copies are data only', () => {
    expect(predictKernelRow(row('cast', { M: 1000, N: 1000, bf16_ms: 1 }), KHW, KC)).toEqual({});
    expect(predictKernelRow(row('copy', { bytes: 1e9, ms: 1 }), KHW, KC)).toEqual({});
  });
});

describe('kernelNumbers', () => {
  it('one number per measured positive field with a prediction; sdpa ones named by backend', () => {
    const rows: KernelRow[] = [
      { group: 'gemm', name: 'big', set: 'fit', M: 1000, N: 1000, K: 1000, bf16_ms: 8.08, fp8_ms: 0 }, // fp8 0: not measured
      { group: 'gemm', name: 'tiny', set: 'check', M: 10, N: 10, K: 10, bf16_ms: 0.0005, fp8_ms: 'n/a' },
      { group: 'sdpa', name: 'attn', set: 'check', backend: 'flash', B: 1, S: 999, N: 4, G: 4, D: 100, fwd_ms: 1.662336, fwd_bwd_ms: -1 },
      { group: 'cast', name: 'cast', set: 'fit', bf16_ms: 1 },
      { group: 'grouped', name: 'moe', set: 'fit', G: 4, R: 250, H: 1000, I: 500, w13_bf16_ms: 4.16 }, // w2 absent
      { group: 'route', name: 'r', set: 'fit', T: 1000, H: 100, E: 10, K: 2, route_ms: NaN, permute_ms: 0.02212, unpermute_ms: 0.088 },
    ];
    const ns = kernelNumbers(rows, KHW, KC);
    expect(ns.map((n) => [n.row, n.what, n.set, n.measured_ms])).toEqual([
      ['big', 'bf16_ms', 'fit', 8.08], ['tiny', 'bf16_ms', 'check', 0.0005], ['attn', 'flash fwd_ms', 'check', 1.662336],
      ['moe', 'w13_bf16_ms', 'fit', 4.16], ['r', 'permute_ms', 'fit', 0.02212], ['r', 'unpermute_ms', 'fit', 0.088],
    ]);
    const want = [[4.04, -0.5], [0.001, 1], [1.662336, 0], [4.16, 0], [0.02212, 0], [0.044, -0.5]];
    ns.forEach((n, i) => {
      close(n.predicted_ms, want[i][0], `${n.row} ${n.what}`);
      expect(Math.abs(n.error - want[i][1]), `${n.row} ${n.what} error`).toBeLessThan(1e-12);
    });
    expect(Object.keys(ns[0])).toEqual(['row', 'what', 'set', 'measured_ms', 'predicted_ms', 'error']);
    expect(kernelNumbers([], KHW, KC)).toEqual([]);
  });
});

describe('kernelStats', () => {
  const n = (row: string, error: number): KernelNumber => ({ row, what: 'w', set: 'check', measured_ms: 1, predicted_ms: 1 + error, error });
  it('even count: median of the middle two |errors|; within 15% includes 15% itself', () => {
    // |e| sorted .1 .15 .2 .3 -> median .175; squares .01 + .04 + .0225 + .09 = .1625 / 4
    const s = kernelStats([n('a', 0.1), n('b', -0.2), n('c', 0.15), n('d', -0.3)]);
    expect(s.numbers).toBe(4);
    expect(s.rms).toBeCloseTo(Math.sqrt(0.040625), 14);
    expect(s.median_abs).toBeCloseTo(0.175, 14);
    expect(s.worst).toBe(0.3);
    expect(s.worst_at).toBe('d w');
    expect(s.within_15).toBe(2);
    expect(Object.keys(s)).toEqual(['numbers', 'rms', 'median_abs', 'worst', 'worst_at', 'within_15']);
  });
  it('odd count: the middle |error| of the sorted list; the first of tied worsts', () => {
    // |e| .5 .1 .2 -> sorted .1 .2 .5 -> .2; squares .25 + .01 + .04 + .25 = .55 / 4 with a tying -.5 last
    const s = kernelStats([n('a', 0.5), n('b', -0.1), n('c', 0.2)]);
    expect(s.median_abs).toBe(0.2);
    expect(s.worst_at).toBe('a w');
    expect(s.within_15).toBe(1);
    const t = kernelStats([n('a', 0.5), n('b', -0.1), n('c', 0.2), n('z', -0.5)]);
    expect(t.worst).toBe(0.5);
    expect(t.worst_at).toBe('a w');
    expect(t.rms).toBeCloseTo(Math.sqrt(0.55 / 4), 14);
    expect(t.median_abs).toBeCloseTo(0.35, 14); // (.2 + .5) / 2
  });
  it('a single number; none', () => {
    expect(kernelStats([n('a', -0.15)])).toEqual({ numbers: 1, rms: 0.15, median_abs: 0.15, worst: 0.15, worst_at: 'a w', within_15: 1 });
    expect(kernelStats([])).toEqual({ numbers: 0, rms: 0, median_abs: 0, worst: 0, worst_at: '', within_15: 0 });
  });
});

describe('fitKernelConstants', () => {
  const flat = (k: KernelConstants) => [k.alpha_bf16, k.alpha_fp8, k.host_s, k.host_fp8_s, k.scatter_eff, ...SDPA_BACKENDS.flatMap((b) => [k.sdpa[b].fwd, k.sdpa[b].bwd])];
  it('recovers every constant from rows made with them, from the neutral start; two floors that disagree meet halfway', () => {
    // the measured numbers are the model at KC, worked out above (gemm, route, sdpa tests), in ms; except that a second
    // tiny GEMM has its fp8 call at 12 us against the first's 3 us: host_fp8_s (which only those two floors see) goes to
    // sqrt(3e-6 * 12e-6) = 6 us, residuals -+ln 2, and the other ten constants are still met exactly
    const rows: KernelRow[] = [
      { group: 'gemm', name: 'big', set: 'fit', M: 1000, N: 1000, K: 1000, bf16_ms: 4.04, fp8_ms: 2.02 },
      { group: 'gemm', name: 'tiny', set: 'fit', M: 10, N: 10, K: 10, bf16_ms: 0.001, fp8_ms: 0.003 },
      { group: 'gemm', name: 'tiny2', set: 'fit', M: 10, N: 10, K: 10, bf16_ms: 0.001, fp8_ms: 0.012 },
      { group: 'route', name: 'route', set: 'fit', T: 1000, H: 100, E: 10, K: 2, route_ms: 0.00852, permute_ms: 0.02212, unpermute_ms: 0.044 },
      { group: 'sdpa', name: 'flash', set: 'fit', backend: 'flash', B: 1, S: 999, N: 4, G: 4, D: 100, fwd_ms: 1.662336, fwd_bwd_ms: 9.782208 },
      { group: 'sdpa', name: 'efficient', set: 'fit', backend: 'efficient', B: 1, S: 999, N: 4, G: 4, D: 100, fwd_ms: 2.061936, fwd_bwd_ms: 12.179808 },
      { group: 'sdpa', name: 'cudnn', set: 'fit', backend: 'cudnn', B: 1, S: 999, N: 4, G: 4, D: 100, fwd_ms: 1.062936, fwd_bwd_ms: 5.186808 },
      { group: 'cast', name: 'cast', set: 'fit', bf16_ms: 1 },
    ];
    const f = fitKernelConstants(rows, KHW);
    const got = flat(f.constants), want = flat({ ...KC, host_fp8_s: 6e-6 });
    got.forEach((v, i) => close(v, want[i], `constant ${i}`, 1e-6)); // the optimum's residual floors the precision at ~sqrt(eps)
    expect(Object.keys(f.constants)).toEqual(['alpha_bf16', 'alpha_fp8', 'host_s', 'host_fp8_s', 'scatter_eff', 'sdpa']);
    expect(Object.keys(f.constants.sdpa)).toEqual(['flash', 'efficient', 'cudnn']);
    // 15 numbers (2 + 2 + 2 + 3 + 6; the cast has none), squared log errors 2 ln^2 2: rms = ln 2 * sqrt(2 / 15)
    expect(f.rms_log_err).toBeCloseTo(Math.log(2) * Math.sqrt(2 / 15), 9);
  });
});
