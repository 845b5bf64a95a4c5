/**
 * src/plan/op.ts worked by hand on made-up hardware with round numbers (fast: the mutation run executes this file for
 * every covered mutant; test/plan/op.test.ts checks the same model against the H200 measurements). The hardware:
 *   HBM 1e9 B/s at bw_eff 0.5           -> streaming bandwidth bw = 5e8 B/s
 *   BF16 peak 1e12 FLOP/s at gemm 0.5   -> BF16 GEMM rate 5e11 FLOP/s
 *   FP8 peak 4e12 FLOP/s at fp8 0.25    -> FP8 GEMM rate 1e12 FLOP/s
 * and constants: scatter at 0.25 of raw HBM (2.5e8 B/s), 1 us a launch, flash at 0.5 (fwd) / 0.25 (bwd) of BF16 peak.
 * Every expected number is derived in a comment from op.ts' header formulas:
 *   gemm  t = max(F / rate, (B - B_w) / bw) + B_w / bw + launches * lambda
 *   mem   t = B / bw + launches * lambda;  scatter t = B / (hbm_bw * eta_s) + lambda
 *   flash t = F / (eff * attn_eff * peak_bf16) + lambda
 */
import { describe, expect, it } from 'vitest';
import { FITTED } from '../../src/plan/fitted.js';
import type { Hardware } from '../../src/plan/hardware.js';
import {
  attentionKernels, gemm, kernelsTime, kernelTime, launchesOf, linearFwdBwd, MOE_PHASES, moeLayerKernels, OP_CONSTANTS,
  predictAttention, predictMoeLayer, type Kernel, type OpConstants,
} from '../../src/plan/op.js';

const HW: Hardware = {
  preset: 'toy', name: 'toy device', devices_per_node: 1, scaleup_domain: 1, intra_bw: 1e9, intra_topology: 'switch', inter_bw: 1e9,
  host_bw: 1e9, hbm_bytes: 1e9, hbm_bw: 1e9, peak_bf16: 1e12, peak_fp8: 4e12, gemm_eff: 0.5, fp8_gemm_eff: 0.25, bw_eff: 0.5,
  coll_eff: 1, coll_latency: 0, source: {},
};
const C: OpConstants = { scatter_eff: 0.25, launch_s: 1e-6, flash_fwd_eff: 0.5, flash_bwd_eff: 0.25 };

/** relative agreement to 1e-12 (exact for 0) */
function close(got: number, want: number, what = ''): void {
  if (want === 0) expect(got, what).toBe(0);
  else expect(Math.abs(got / want - 1), `${what}: got ${got}, want ${want}`).toBeLessThan(1e-12);
}

describe('OP_CONSTANTS', () => {
  it('are the fitted values of fitted.ts', () => {
    expect(OP_CONSTANTS).toEqual({ scatter_eff: FITTED.scatter_eff.value, launch_s: FITTED.launch_s.value, flash_fwd_eff: FITTED.flash_fwd_eff.value, flash_bwd_eff: FITTED.flash_bwd_eff.value });
  });
});

describe('kernelTime: gemm', () => {
  const g = (o: Partial<Extract<Kernel, { kind: 'gemm' }>> = {}): Kernel => ({ kind: 'gemm', name: 'g', flops: 1e9, bytes: 1.5e5, weight_bytes: 5e4, ...o });
  it('compute-bound: the math hides the activation bytes, the weight bytes add', () => {
    // max(1e9 / 5e11 = 2e-3, (1.5e5 - 5e4) / 5e8 = 2e-4) + 5e4 / 5e8 = 1e-4 + 1e-6 = 2.101e-3 s
    close(kernelTime(g(), HW, C), 2.101e-3);
  });
  it('memory-bound: the activation bytes win the max, the weight bytes still add', () => {
    // max(1e7 / 5e11 = 2e-5, 1e5 / 5e8 = 2e-4) + 1e-4 + 1e-6 = 3.01e-4 s
    close(kernelTime(g({ flops: 1e7 }), HW, C), 3.01e-4);
  });
  it('at the balance point compute and activation bytes take the same time', () => {
    // 1e8 / 5e11 = 2e-4 = 1e5 / 5e8; + 1e-4 + 1e-6 = 3.01e-4 s
    close(kernelTime(g({ flops: 1e8 }), HW, C), 3.01e-4);
  });
  it('all weight bytes: no activation term, the weights stream after the math', () => {
    // max(1e7 / 5e11 = 2e-5, 0) + 1.5e5 / 5e8 = 3e-4 + 1e-6 = 3.21e-4 s
    close(kernelTime(g({ flops: 1e7, weight_bytes: 1.5e5 }), HW, C), 3.21e-4);
  });
  it('launches: n launches cost n lambda; absent = 1; 0 = none', () => {
    close(kernelTime(g({ launches: 4 }), HW, C), 2.104e-3); // 2.1e-3 + 4 * 1e-6
    close(kernelTime(g({ launches: 0 }), HW, C), 2.1e-3);
    close(kernelTime(g({ launches: 1 }), HW, C), 2.101e-3);
  });
  it('fp8 runs at fp8_gemm_eff * peak_fp8 when the device has FP8', () => {
    // 1e9 / (0.25 * 4e12 = 1e12) = 1e-3 + 1e-4 + 1e-6 = 1.101e-3 s
    close(kernelTime(g({ fp8: true }), HW, C), 1.101e-3);
  });
  it('fp8 on a device without FP8 (peak_fp8 0) falls back to the BF16 rate', () => {
    close(kernelTime(g({ fp8: true }), { ...HW, peak_fp8: 0 }, C), 2.101e-3);
  });
  it('fp8 false or absent uses the BF16 rate even with FP8 hardware', () => {
    close(kernelTime(g({ fp8: false }), HW, C), 2.101e-3);
  });
  it('an empty GEMM costs one launch', () => {
    close(kernelTime(g({ flops: 0, bytes: 0, weight_bytes: 0 }), HW, C), 1e-6);
  });
});

describe('kernelTime: mem, scatter, flash', () => {
  it('mem streams at hbm_bw * bw_eff plus launches', () => {
    const m = (o = {}): Kernel => ({ kind: 'mem', name: 'm', bytes: 1e6, ...o });
    close(kernelTime(m(), HW, C), 2.001e-3); // 1e6 / 5e8 = 2e-3 + 1e-6
    close(kernelTime(m({ launches: 3 }), HW, C), 2.003e-3);
    close(kernelTime(m({ launches: 0 }), HW, C), 2e-3);
    close(kernelTime(m({ bytes: 0 }), HW, C), 1e-6);
  });
  it('scatter runs at scatter_eff of raw HBM (not of the measured copy bandwidth), one launch', () => {
    // 1e6 / (1e9 * 0.25) = 4e-3 + 1e-6
    close(kernelTime({ kind: 'scatter', name: 's', bytes: 1e6 }, HW, C), 4.001e-3);
  });
  it('flash forward / backward at their own fraction of peak_bf16, scaled by attn_eff (absent: 1)', () => {
    const f = (bwd: boolean): Kernel => ({ kind: 'flash', name: 'f', flops: 1e9, bwd });
    close(kernelTime(f(false), HW, C), 2.001e-3); // 1e9 / (0.5 * 1e12) + 1e-6
    close(kernelTime(f(true), HW, C), 4.001e-3); // 1e9 / (0.25 * 1e12) + 1e-6
    close(kernelTime(f(false), { ...HW, attn_eff: 0.5 }, C), 4.001e-3); // 1e9 / (0.5 * 0.5 * 1e12) + 1e-6
    close(kernelTime(f(true), { ...HW, attn_eff: 0.5 }, C), 8.001e-3);
    close(kernelTime(f(true), { ...HW, attn_eff: 1 }, C), 4.001e-3);
  });
  it('defaults to OP_CONSTANTS', () => {
    const L = FITTED.launch_s.value;
    close(kernelTime({ kind: 'mem', name: 'm', bytes: 1e6 }, HW), 2e-3 + L);
    close(kernelTime({ kind: 'scatter', name: 's', bytes: 1e6 }, HW), 1e6 / (1e9 * FITTED.scatter_eff.value) + L);
    close(kernelTime({ kind: 'flash', name: 'f', flops: 1e9, bwd: false }, HW), 1e9 / (FITTED.flash_fwd_eff.value * 1e12) + L);
    close(kernelTime({ kind: 'flash', name: 'f', flops: 1e9, bwd: true }, HW), 1e9 / (FITTED.flash_bwd_eff.value * 1e12) + L);
  });
});

describe('launchesOf / kernelsTime', () => {
  const ks: Kernel[] = [
    { kind: 'gemm', name: 'a', flops: 1e9, bytes: 1.5e5, weight_bytes: 5e4, launches: 4 }, // 4 launches, 2.104e-3 s
    { kind: 'gemm', name: 'b', flops: 1e9, bytes: 1.5e5, weight_bytes: 5e4 }, // 1, 2.101e-3 s
    { kind: 'mem', name: 'c', bytes: 1e6, launches: 2 }, // 2, 2.002e-3 s
    { kind: 'mem', name: 'd', bytes: 1e6 }, // 1, 2.001e-3 s
    { kind: 'scatter', name: 'e', bytes: 1e6, launches: 5 } as Kernel, // a scatter is one launch whatever it says; 4.001e-3 s
    { kind: 'flash', name: 'f', flops: 1e9, bwd: false, launches: 7 } as Kernel, // likewise; 2.001e-3 s
  ];
  it('counts gemm / mem launches (default 1) and one for scatter and flash', () => {
    expect(launchesOf(ks)).toBe(10); // 4 + 1 + 2 + 1 + 1 + 1
    expect(launchesOf([])).toBe(0);
    expect(launchesOf([{ kind: 'mem', name: 'z', bytes: 0, launches: 0 }])).toBe(0);
  });
  it('sums the kernel times', () => {
    // 2.104e-3 + 2.101e-3 + 2.002e-3 + 2.001e-3 + 4.001e-3 + 2.001e-3 = 14.21e-3 s
    close(kernelsTime(ks, HW, C), 14.21e-3);
    expect(kernelsTime([], HW, C)).toBe(0);
  });
  it('defaults to OP_CONSTANTS', () => {
    close(kernelsTime([{ kind: 'mem', name: 'd', bytes: 1e6 }, { kind: 'mem', name: 'd', bytes: 1e6 }], HW), 4e-3 + 2 * FITTED.launch_s.value);
  });
});

describe('gemm', () => {
  it('bf16 C[2,3] = A[2,4] B[4,3]: 2MNK FLOPs, e(MK + KN) + 2MN bytes, weights eKN', () => {
    // flops 2*2*3*4 = 48; bytes 2*(8 + 12) + 2*6 = 52; weights 2*12 = 24
    expect(gemm('g', 2, 3, 4)).toEqual({ kind: 'gemm', name: 'g', flops: 48, bytes: 52, weight_bytes: 24, fp8: false });
  });
  it('grouped: every group has its own weights, the rows are shared', () => {
    // bytes 2*(8 + 5*12) + 12 = 148; weights 2*5*12 = 120
    expect(gemm('g', 2, 3, 4, 5)).toEqual({ kind: 'gemm', name: 'g', flops: 48, bytes: 148, weight_bytes: 120, fp8: false });
  });
  it('fp8 (e = 1): one byte operands, bf16 output, fp8 flag', () => {
    // bytes 1*(8 + 5*12) + 2*6 = 80; weights 60
    expect(gemm('g', 2, 3, 4, 5, 1)).toEqual({ kind: 'gemm', name: 'g', flops: 48, bytes: 80, weight_bytes: 60, fp8: true });
  });
});

describe('linearFwdBwd', () => {
  it('bf16 x[2,4] W[4,3]: the GEMM forward, dgrad and wgrad backward', () => {
    // fwd = gemm(2, 3, 4); dgrad = gemm(2, 4, 3): bytes 2*(2*3 + 3*4) + 2*2*4 = 52, weights 24;
    // wgrad: bytes 2*(8 + 6) + 2*12 = 52, weights (the weight gradient written) 2*12 = 24
    expect(linearFwdBwd('lin', 2, 3, 4)).toEqual({
      fwd: [{ kind: 'gemm', name: 'lin', flops: 48, bytes: 52, weight_bytes: 24, fp8: false }],
      bwd: [
        { kind: 'gemm', name: 'lin.dgrad', flops: 48, bytes: 52, weight_bytes: 24, fp8: false },
        { kind: 'gemm', name: 'lin.wgrad', flops: 48, bytes: 52, weight_bytes: 24, fp8: false },
      ],
    });
  });
  it('bf16 grouped (2 groups): weights and weight gradients per group', () => {
    // fwd: bytes 2*(8 + 2*12) + 12 = 76, w 48; dgrad gemm(2,4,3,2): 2*(6 + 2*12) + 16 = 76, w 48;
    // wgrad: 2*(8 + 6) + 2*2*12 = 76, w 48
    const l = linearFwdBwd('lin', 2, 3, 4, 2);
    expect(l.fwd.map((k) => [k.name, (k as { bytes: number }).bytes])).toEqual([['lin', 76]]);
    expect(l.bwd).toEqual([
      { kind: 'gemm', name: 'lin.dgrad', flops: 48, bytes: 76, weight_bytes: 48, fp8: false },
      { kind: 'gemm', name: 'lin.wgrad', flops: 48, bytes: 76, weight_bytes: 48, fp8: false },
    ]);
  });
  it('fp8 (e = 1, 2 groups): 1-byte operands, and the on-the-fly quantisation kernels first', () => {
    // fwd gemm: 1*(8 + 24) + 12 = 44, w 24; quant of x: 3*M*K = 24
    // dgrad gemm(2,4,3,2,1): 1*(6 + 24) + 16 = 46, w 24; wgrad: 1*(8 + 6) + 2*2*12 = 62, w (bf16 gradient) 48
    // quant.bwd: dy 3*M*N = 18, x^T and dy^T 3*(8 + 6) = 42 -> 60
    expect(linearFwdBwd('lin', 2, 3, 4, 2, 1)).toEqual({
      fwd: [{ kind: 'mem', name: 'lin.quant', bytes: 24 }, { kind: 'gemm', name: 'lin', flops: 48, bytes: 44, weight_bytes: 24, fp8: true }],
      bwd: [
        { kind: 'mem', name: 'lin.quant.bwd', bytes: 60 },
        { kind: 'gemm', name: 'lin.dgrad', flops: 48, bytes: 46, weight_bytes: 24, fp8: true },
        { kind: 'gemm', name: 'lin.wgrad', flops: 48, bytes: 62, weight_bytes: 48, fp8: true },
      ],
    });
  });
});

/** T 3 tokens, H 4, E 5 experts, top-2, expert width 7: T*K = 6, T*E = 15, rows R = T*K*skew */
const MOE = { tokens: 3, hidden: 4, experts: 5, top_k: 2, expert_ffn: 7 };
const G = (name: string, flops: number, bytes: number, weight_bytes: number, fp8 = false): Kernel => ({ kind: 'gemm', name, flops, bytes, weight_bytes, fp8 });
const M = (name: string, bytes: number): Kernel => ({ kind: 'mem', name, bytes });
const S = (name: string, bytes: number): Kernel => ({ kind: 'scatter', name, bytes });

describe('moeLayerKernels', () => {
  it('MOE_PHASES in engine order', () => {
    expect(MOE_PHASES).toEqual(['route', 'dispatch', 'experts', 'combine']);
  });
  it('bf16, no skew: every kernel of every phase', () => {
    // router x[3,4] Wr[4,5]: flops 2*3*5*4 = 120, bytes 2*(12 + 20) + 2*15 = 94, weights 40 (dgrad / wgrad alike for bf16)
    // experts.w13 rows 6, N 2I = 14, K 4, 5 groups: flops 2*6*14*4 = 672, bytes 2*(24 + 5*56) + 2*84 = 776, weights 2*5*56 = 560
    //   dgrad: 2*(6*14 + 5*56) + 2*24 = 776; wgrad: 2*(24 + 84) + 2*5*56 = 776
    // experts.w2 rows 6, N 4, K 7: flops 2*6*4*7 = 336, bytes 2*(42 + 5*28) + 2*24 = 412, weights 280 (dgrad, wgrad: 412)
    const k = moeLayerKernels(MOE);
    expect(Object.keys(k)).toEqual(['route', 'dispatch', 'experts', 'combine']);
    const router = [G('router', 120, 94, 40), G('router.dgrad', 120, 94, 40), G('router.wgrad', 120, 94, 40)];
    expect(k.route).toEqual({
      // softmax.cast 6*15, softmax 8*15, topk 4*15 + 12*6, topk.sum 4*6, topk.div 8*6, topk.cast 6*6
      fwd: [router[0], M('softmax.cast', 90), M('softmax', 120), M('topk', 132), M('topk.sum', 24), M('topk.div', 48), M('topk.cast', 36)],
      // 6*6, 12*6, 4*15, 12*15, 6*15
      bwd: [M('topk.cast.bwd', 36), M('topk.div.bwd', 72), M('topk.scatter.bwd', 60), M('softmax.bwd', 180), M('cast.bwd', 90), router[1], router[2]],
    });
    expect(k.dispatch).toEqual({
      // argsort 8*16*6, aux 16*6, tok 16*6, bincount 8*6, cumsum 8*5, gather 4*R*H = 4*6*4
      fwd: [M('argsort', 768), M('argsort.aux', 96), M('tok', 96), M('bincount', 48), M('cumsum', 40), M('gather', 96)],
      // zeros 2*T*H = 24, scatter 2*R*H = 48, add 6*T*H = 72
      bwd: [M('zeros', 24), S('gather.bwd', 48), M('x.grad.add', 72)],
    });
    expect(k.experts).toEqual({
      // silu 4*R*I = 4*42, mul 6*42
      fwd: [G('experts.w13', 672, 776, 560), M('silu', 168), M('mul', 252), G('experts.w2', 336, 412, 280)],
      // mul.bwd 10*42, silu.bwd 6*42, chunk.bwd 8*42
      bwd: [G('experts.w2.dgrad', 336, 412, 280), G('experts.w2.wgrad', 336, 412, 280), M('mul.bwd', 420), M('silu.bwd', 252), M('chunk.bwd', 336),
        G('experts.w13.dgrad', 672, 776, 560), G('experts.w13.wgrad', 672, 776, 560)],
    });
    expect(k.combine).toEqual({
      // w.gather 4*T*K, scale 4*R*H, zeros 2*T*H, index_add 2*R*H
      fwd: [M('w.gather', 24), M('scale', 96), M('zeros', 24), S('index_add', 48)],
      // 4*R*H, 6*R*H, 4*R*H, 8*T*K
      bwd: [M('index_add.bwd', 96), M('scale.bwd.x', 144), M('scale.bwd.w', 96), M('w.gather.bwd', 48)],
    });
  });
  it('skew 2 doubles the rows the experts see (R = 12); fp8 (e = 1) quantises the expert GEMMs only, not the router', () => {
    const k = moeLayerKernels(MOE, 2, 1);
    // the router stays bf16 and the routing kernels do not depend on R
    expect(k.route.fwd.slice(0, 4)).toEqual([G('router', 120, 94, 40), M('softmax.cast', 90), M('softmax', 120), M('topk', 132)]);
    expect(k.route.bwd.length).toBe(7);
    // gather 4*12*4 = 192, its backward 2*12*4 = 96; argsort etc. on T*K = 6 ids
    expect(k.dispatch.fwd).toEqual([M('argsort', 768), M('argsort.aux', 96), M('tok', 96), M('bincount', 48), M('cumsum', 40), M('gather', 192)]);
    expect(k.dispatch.bwd).toEqual([M('zeros', 24), S('gather.bwd', 96), M('x.grad.add', 72)]);
    // w13 x[12,4] W[4,14] x5, fp8: quant 3*12*4 = 144; flops 2*12*14*4 = 1344; bytes 1*(48 + 5*56) + 2*12*14 = 664; w 280
    // w2 x[12,7] W[7,4] x5: quant 3*12*7 = 252; flops 2*12*4*7 = 672; bytes 1*(84 + 5*28) + 2*48 = 320; w 140
    // silu 4*12*7 = 336, mul 6*84 = 504
    expect(k.experts.fwd).toEqual([M('experts.w13.quant', 144), G('experts.w13', 1344, 664, 280, true), M('silu', 336), M('mul', 504),
      M('experts.w2.quant', 252), G('experts.w2', 672, 320, 140, true)]);
    // w2.quant.bwd: 3*12*4 + 3*(84 + 48) = 540; w13.quant.bwd: 3*12*14 + 3*(48 + 168) = 504 + 648 = 1152
    // w2 dgrad gemm(12,7,4,5,1): 1*(48 + 5*28) + 2*84 = 356, w 140; wgrad: (84 + 48) + 2*5*28 = 412, w 280
    // w13 dgrad gemm(12,4,14,5,1): (168 + 5*56) + 2*48 = 544, w 280; wgrad: (48 + 168) + 2*5*56 = 776, w 560
    expect(k.experts.bwd).toEqual([M('experts.w2.quant.bwd', 540), G('experts.w2.dgrad', 672, 356, 140, true), G('experts.w2.wgrad', 672, 412, 280, true),
      M('mul.bwd', 840), M('silu.bwd', 504), M('chunk.bwd', 672),
      M('experts.w13.quant.bwd', 1152), G('experts.w13.dgrad', 1344, 544, 280, true), G('experts.w13.wgrad', 1344, 776, 560, true)]);
    // scale 4*12*4 = 192, index_add 96; backward 192, 288, 192, w.gather.bwd 8*6 = 48
    expect(k.combine).toEqual({
      fwd: [M('w.gather', 24), M('scale', 192), M('zeros', 24), S('index_add', 96)],
      bwd: [M('index_add.bwd', 192), M('scale.bwd.x', 288), M('scale.bwd.w', 192), M('w.gather.bwd', 48)],
    });
  });
});

describe('predictMoeLayer', () => {
  it('phase times, totals and forward FLOPs on the toy device', () => {
    const p = predictMoeLayer(MOE, HW, C);
    // route fwd: router max(120/5e11, 54/5e8 = 1.08e-7) + 40/5e8 = 8e-8 + 1e-6 = 1.188e-6; mem 450 B / 5e8 = 9e-7 + 6 us -> 8.088e-6 s
    // route bwd: mem 438 B -> 8.76e-7 + 5 us; dgrad and wgrad 1.188e-6 each -> 8.252e-6 s
    // dispatch fwd: 1144 B / 5e8 = 2.288e-6 + 6 us = 8.288e-6; bwd: 96 B -> 1.92e-7 + 2 us, scatter 48 / 2.5e8 = 1.92e-7 + 1 us -> 3.384e-6
    // experts fwd: w13 216/5e8 = 4.32e-7 + 560/5e8 = 1.12e-6 + 1 us = 2.552e-6; silu+mul 420 B -> 8.4e-7 + 2 us;
    //   w2 132/5e8 = 2.64e-7 + 5.6e-7 + 1 us = 1.824e-6 -> 7.216e-6; bwd: 2*1.824e-6 + (1008 B -> 2.016e-6 + 3 us) + 2*2.552e-6 = 13.768e-6
    // combine fwd: 144 B -> 2.88e-7 + 3 us, scatter 48 B -> 1.92e-7 + 1 us -> 4.48e-6; bwd: 384 B -> 7.68e-7 + 4 us = 4.768e-6
    const want = { route: [8.088e-3, 8.252e-3], dispatch: [8.288e-3, 3.384e-3], experts: [7.216e-3, 13.768e-3], combine: [4.48e-3, 4.768e-3] };
    expect(Object.keys(p.phases_fwd_ms)).toEqual(MOE_PHASES);
    expect(Object.keys(p.phases_bwd_ms)).toEqual(MOE_PHASES);
    for (const [ph, [f, b]] of Object.entries(want)) {
      close(p.phases_fwd_ms[ph], f, `${ph} fwd`);
      close(p.phases_bwd_ms[ph], b, `${ph} bwd`);
    }
    close(p.fwd_ms, 28.072e-3); // 8.088 + 8.288 + 7.216 + 4.48 us
    close(p.fwd_bwd_ms, 58.244e-3); // + 8.252 + 3.384 + 13.768 + 4.768 us
    expect(p.flops_fwd).toBe(1128); // forward GEMMs only: router 120 + w13 672 + w2 336
    expect(Object.keys(p)).toEqual(['fwd_ms', 'fwd_bwd_ms', 'phases_fwd_ms', 'phases_bwd_ms', 'flops_fwd']);
  });
  it('defaults to OP_CONSTANTS', () => {
    const k = moeLayerKernels(MOE);
    const p = predictMoeLayer(MOE, HW);
    close(p.phases_fwd_ms.dispatch, kernelsTime(k.dispatch.fwd, HW, OP_CONSTANTS) * 1e3);
    close(p.phases_bwd_ms.combine, kernelsTime(k.combine.bwd, HW, OP_CONSTANTS) * 1e3);
  });
});

/** batch 2 x seq 3 (T = 6), hidden 8, 4 query heads and 2 KV heads of 5: qkv width (4 + 2*2)*5 = 40, o input 4*5 = 20 */
const ATTN = { batch: 2, seq: 3, hidden: 8, heads: 4, kv_heads: 2, head_dim: 5 };

describe('attentionKernels', () => {
  it('bf16: QKV projection, causal flash, output projection', () => {
    // flash F = 4 * B * N * D * S * (S+1)/2 = 4*2*4*5*3*2 = 960; backward 2.5 F = 2400
    // qkv x[6,8] W[8,40]: flops 2*6*40*8 = 3840, bytes 2*(48 + 320) + 2*240 = 1216, w 640 (dgrad, wgrad alike)
    // o x[6,20] W[20,8]: flops 2*6*8*20 = 1920, bytes 2*(120 + 160) + 2*48 = 656, w 320
    const k = attentionKernels(ATTN);
    expect(Object.keys(k)).toEqual(['qkv', 'flash', 'out']);
    expect(k.qkv).toEqual({
      fwd: [G('qkv', 3840, 1216, 640)],
      bwd: [M('qkv.cat.bwd', 960), G('qkv.dgrad', 3840, 1216, 640), G('qkv.wgrad', 3840, 1216, 640)], // cat 4*T*qkvN = 4*6*40
    });
    expect(k.flash).toEqual({
      fwd: [{ kind: 'flash', name: 'flash.fwd', flops: 960, bwd: false }],
      bwd: [{ kind: 'flash', name: 'flash.bwd', flops: 2400, bwd: true }],
    });
    expect(k.out).toEqual({
      fwd: [M('o.transpose', 480), G('o', 1920, 656, 320)], // transpose 4*T*oK = 4*6*20
      bwd: [G('o.dgrad', 1920, 656, 320), G('o.wgrad', 1920, 656, 320), M('o.transpose.bwd', 480)],
    });
  });
  it('multi-head (kv_heads = heads) and a longer sequence', () => {
    // qkv width (2 + 2*2)*3 = 18 with batch 1, seq 5, hidden 4, 2 heads of 3: F = 4*1*2*3*5*3 = 360
    const k = attentionKernels({ batch: 1, seq: 5, hidden: 4, heads: 2, kv_heads: 2, head_dim: 3 });
    expect(k.flash.fwd[0]).toEqual({ kind: 'flash', name: 'flash.fwd', flops: 360, bwd: false });
    // qkv x[5,4] W[4,18]: flops 2*5*18*4 = 720; cat.bwd 4*5*18 = 360; o.transpose 4*5*6 = 120
    expect((k.qkv.fwd[0] as { flops: number }).flops).toBe(720);
    expect(k.qkv.bwd[0]).toEqual(M('qkv.cat.bwd', 360));
    expect(k.out.fwd[0]).toEqual(M('o.transpose', 120));
  });
  it('fp8 (e = 1): quantised projections, flash unchanged', () => {
    const k = attentionKernels(ATTN, 1);
    // qkv quant 3*6*8 = 144; gemm bytes 1*(48 + 320) + 480 = 848, w 320
    expect(k.qkv.fwd).toEqual([M('qkv.quant', 144), G('qkv', 3840, 848, 320, true)]);
    expect(k.qkv.bwd.map((x) => x.name)).toEqual(['qkv.cat.bwd', 'qkv.quant.bwd', 'qkv.dgrad', 'qkv.wgrad']);
    expect(k.flash.fwd[0]).toEqual({ kind: 'flash', name: 'flash.fwd', flops: 960, bwd: false });
    expect(k.out.fwd.map((x) => x.name)).toEqual(['o.transpose', 'o.quant', 'o']);
  });
});

describe('predictAttention', () => {
  it('phase times, totals and forward FLOPs (GEMMs and flash) on the toy device', () => {
    const p = predictAttention(ATTN, HW, C);
    // qkv fwd: max(3840/5e11, 576/5e8 = 1.152e-6) + 640/5e8 = 1.28e-6 + 1 us = 3.432e-6 s
    // qkv bwd: cat 960/5e8 = 1.92e-6 + 1 us; dgrad, wgrad 3.432e-6 each -> 9.784e-6
    // flash fwd: 960 / 5e11 = 1.92e-9 + 1 us = 1.00192e-6; bwd 2400 / 2.5e11 = 9.6e-9 + 1 us = 1.0096e-6
    // out fwd: transpose 480/5e8 = 9.6e-7 + 1 us; o 336/5e8 = 6.72e-7 + 320/5e8 = 6.4e-7 + 1 us = 2.312e-6 -> 4.272e-6
    // out bwd: 2 * 2.312e-6 + 1.96e-6 = 6.584e-6
    const want = { qkv: [3.432e-3, 9.784e-3], flash: [1.00192e-3, 1.0096e-3], out: [4.272e-3, 6.584e-3] };
    expect(Object.keys(p.phases_fwd_ms)).toEqual(['qkv', 'flash', 'out']);
    for (const [ph, [f, b]] of Object.entries(want)) {
      close(p.phases_fwd_ms[ph], f, `${ph} fwd`);
      close(p.phases_bwd_ms[ph], b, `${ph} bwd`);
    }
    close(p.fwd_ms, 8.70592e-3); // 3.432 + 1.00192 + 4.272 us
    close(p.fwd_bwd_ms, 26.08352e-3); // + 9.784 + 1.0096 + 6.584 us
    expect(p.flops_fwd).toBe(6720); // qkv 3840 + flash 960 + o 1920
  });
  it('attn_eff slows only the flash phase; defaults to OP_CONSTANTS', () => {
    const p = predictAttention(ATTN, { ...HW, attn_eff: 0.5 }, C);
    close(p.phases_fwd_ms.flash, 1.00384e-3); // 960 / 2.5e11 = 3.84e-9 + 1 us
    close(p.phases_fwd_ms.qkv, 3.432e-3);
    const d = predictAttention(ATTN, HW);
    close(d.phases_fwd_ms.flash, (960 / (FITTED.flash_fwd_eff.value * 1e12) + FITTED.launch_s.value) * 1e3);
  });
});
