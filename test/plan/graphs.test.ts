/**
 * CUDA graphs and the Blackwell efficiencies in the simulator (issue 13). The launch counts are checked on a machine
 * whose compute is free (infinite peak and HBM bandwidth, one device, so no communication): the step is then the
 * kernel launches alone, counted by hand from the kernel lists of simulate.ts.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { FITTED } from '../../src/plan/fitted.js';
import { blackwellEfficiencies, hardwarePreset, resolveHardware, type Hardware } from '../../src/plan/hardware.js';
import { kernelTime } from '../../src/plan/op.js';
import { simulate, trainConstants } from '../../src/plan/simulate.js';
import { resolveSpec, type Spec } from '../../src/plan/spec.js';

// (set in beforeEach, not at collection time: StrykerJS runs every test file for a mutant reached while a file is collected)
let FREE: Hardware;
beforeEach(() => { FREE = { ...hardwarePreset('h100'), peak_bf16: 1e30, peak_fp8: 0, hbm_bw: 1e30 }; });
const L = 10e-6;

/** Qwen3-30B-A3B (48 MoE layers, 128 experts, no shared experts) on one device, bf16, micro-batch 1, 4 micro-batches */
function spec(cudaGraphs: boolean, capacityFactor: number): Spec {
  const s = resolveSpec({
    model: { preset: 'qwen3-30b-a3b' }, hardware: { preset: 'h100', devices: 1 },
    parallel: { tp: 1, pp: 1, ep: 1, cuda_graphs: cudaGraphs, recompute: 'none' },
    training: { seq_len: 1024, micro_batch: 1, global_batch: 4, precision: 'bf16', capacity_factor: capacityFactor },
  });
  return { ...s, hardware: FREE };
}
const close = (got: number, want: number) => expect(Math.abs(got / want - 1), `${got} vs ${want}`).toBeLessThan(1e-9);

describe('CUDA graphs', () => {
  it('without graphs every kernel pays the framework launch cost: 4 micro-batches x (head 3 + 48 layers x kernels)', () => {
    // per MoE layer (bf16, no recompute): attention qkv + o (3 launches each: fwd, dgrad, wgrad), flash fwd + bwd,
    // elementwise fwd + bwd, router GEMM 3, top-k 2, permute 2, unpermute 2, swiglu 2, and the 128 experts' w13 and
    // w2 GEMMs, 3 launches each per expert
    const layer = 6 + 2 + 2 + 3 + 2 + 2 + 2 + 2 + 6 * 128;
    const sim = simulate(spec(false, 1), { launchS: L, hostKernelS: 0, graphLaunchS: 0 });
    close(sim.step_time_s, 4 * (3 + 48 * layer) * L);
  });

  it('with graphs a token-drop layer is captured whole: only the LM head (outside the layers) pays the launch cost', () => {
    const sim = simulate(spec(true, 1), { launchS: L, hostKernelS: 0, graphLaunchS: 0 });
    close(sim.step_time_s, 4 * 3 * L);
    // a captured kernel pays the in-graph gap instead
    const g = simulate(spec(true, 1), { launchS: L, hostKernelS: 0, graphLaunchS: 1e-6 });
    close(g.step_time_s, 4 * 3 * L + 4 * 48 * (6 + 2 + 2 + 3 + 2 + 2 + 2 + 2 + 6 * 128) * 1e-6);
  });

  it('a dropless MoE block\'s routed part (permute, experts, unpermute) is not captured: its shapes change every step', () => {
    const sim = simulate(spec(true, 0), { launchS: L, hostKernelS: 0, graphLaunchS: 0 });
    const routed = 2 + 2 + 2 + 6 * 128; // permute, unpermute, swiglu, the experts' GEMMs
    close(sim.step_time_s, 4 * (3 + 48 * routed) * L);
  });

  it('a graph launch at the framework cost is no graph at all; the default in-graph cost is the measured one', () => {
    const a = simulate(spec(true, 1), { launchS: L, hostKernelS: 0, graphLaunchS: L });
    const b = simulate(spec(false, 1), { launchS: L, hostKernelS: 0 });
    close(a.step_time_s, b.step_time_s);
    const d = simulate(spec(true, 1), { launchS: L, hostKernelS: 0 });
    const m = simulate(spec(true, 1), { launchS: L, hostKernelS: 0, graphLaunchS: FITTED.graph_launch_s.value });
    close(d.step_time_s, m.step_time_s);
    expect(FITTED.graph_launch_s.value).toBeGreaterThan(0.5e-6);
    expect(FITTED.graph_launch_s.value).toBeLessThan(2e-6);
  });
});

describe('Blackwell efficiencies', () => {
  it('B200 and GB200 take the Hopper-measured efficiencies times the fitted factor; Hopper presets are unscaled', () => {
    const f = FITTED.blackwell_kernel_eff.value;
    for (const p of ['b200', 'gb200']) {
      const hw = hardwarePreset(p);
      close(hw.gemm_eff, FITTED.gemm_eff.value * f);
      close(hw.fp8_gemm_eff, FITTED.fp8_gemm_eff.value * f);
      close(hw.attn_eff!, f);
      expect(hw.source.gemm_eff).toMatch(/blackwell_kernel_eff/);
    }
    expect(hardwarePreset('h100').gemm_eff).toBe(FITTED.gemm_eff.value);
    expect(hardwarePreset('h100').attn_eff).toBeUndefined();
    expect(blackwellEfficiencies(0.5)).toEqual({ gemm_eff: FITTED.gemm_eff.value * 0.5, fp8_gemm_eff: FITTED.fp8_gemm_eff.value * 0.5, attn_eff: 0.5 });
  });

  it('attn_eff divides the attention kernels\' rate: half the efficiency, twice the time (launch aside)', () => {
    const hw = hardwarePreset('h100');
    const c = { ...trainConstants(hw), launch_s: 0 };
    const k = { kind: 'flash' as const, name: 'flash', flops: 1e12, bwd: false };
    const t1 = kernelTime(k, hw, c);
    close(t1, 1e12 / (FITTED.sdpa_cudnn_fwd_eff.value * hw.peak_bf16));
    close(kernelTime(k, { ...hw, attn_eff: 0.5 }, c), 2 * t1);
  });

  it('an attn_eff override is range-checked', () => {
    expect(resolveHardware({ preset: 'h100', attn_eff: 0.8 }).attn_eff).toBe(0.8);
    expect(() => resolveHardware({ preset: 'h100', attn_eff: 2.5 })).toThrow(/\[0, 1\.9\] \(got 2\.5\)/);
    expect(() => resolveHardware({ preset: 'h100', attn_eff: 'x' })).toThrow(/non-negative number/);
  });
});
