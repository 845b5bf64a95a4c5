/**
 * src/plan/fitted.ts beyond its table (test/plan/fitted.test.ts checks the table's shape and where it is read): the
 * goodput model from Llama 3's interruption record worked by hand, DeepSeek-V3's pre-training days, the measurement
 * sets of `plan op`, and the shared provenance texts (op fit, kernel fit, the scaling law) each constant is built from.
 */
import { describe, expect, it } from 'vitest';
import { DSV3_PRETRAIN_DAYS, FITTED, goodputFromInterruptions, LLAMA3_INTERRUPTIONS, OP_MEASUREMENT_SETS, type Fitted } from '../../src/plan/fitted.js';

const entries = Object.entries(FITTED) as [string, Fitted][];

describe('published data', () => {
  it('DeepSeek-V3 pre-training: 2,664K H800 GPU-hours / 2,048 GPUs / 24 h = 54.19921875 days', () => {
    // 2,664,000 / 2,048 = 1,300.78125 h; / 24 = 54.19921875 (exact in binary: 54 + 51/256)
    expect(DSV3_PRETRAIN_DAYS).toBe(54.19921875);
  });
  it("Llama 3's interruptions: 466 in 54 days on 16,384 H100 (arXiv 2407.21783 Table 5)", () => {
    expect(LLAMA3_INTERRUPTIONS).toEqual({ count: 466, days: 54, gpus: 16384 });
  });
});

describe('goodputFromInterruptions', () => {
  it("Llama 3's own run, 1 h lost each: 466 h of 54 x 24 = 1,296 h lost", () => {
    expect(goodputFromInterruptions(16384, 54, 1)).toBeCloseTo(1 - 466 / 1296, 14);
  });
  it("DeepSeek-V3's run: 2,048 GPUs over 54.2 days, 1 h each: 58.3 interruptions, goodput 1 - 466 / 10,368 = 0.95505", () => {
    // 466 / (54 x 16,384) x 2,048 x 54.2 = 58.27 interruptions; x 1 h / (54.2 x 24 h) = 466 x 2,048 / (54 x 16,384 x 24) = 466 / 10,368
    expect(goodputFromInterruptions(2048, DSV3_PRETRAIN_DAYS, 1)).toBeCloseTo(1 - 466 / 10368, 14);
    expect(goodputFromInterruptions(2048, DSV3_PRETRAIN_DAYS, 1)).toBeCloseTo(0.955054, 6);
  });
  it('the rate is per GPU-day, so the run\'s length cancels: the lost fraction is rate x GPUs x hours / 24', () => {
    // 16,384 GPUs, 2 h each: 466 / (54 x 16,384) x 16,384 x 2 / 24 = 932 / 1,296, for 27, 54 or 1 day alike
    for (const days of [27, 54, 1]) expect(goodputFromInterruptions(16384, days, 2), String(days)).toBeCloseTo(1 - 932 / 1296, 14);
    // 8,192 GPUs for 10 days at 3 h: 466 x 8,192 x 3 / (54 x 16,384 x 24) = 699 / 1,296
    expect(goodputFromInterruptions(8192, 10, 3)).toBeCloseTo(1 - 699 / 1296, 14);
  });
  it('no GPUs or no hours lost: goodput 1', () => {
    expect(goodputFromInterruptions(0, 54, 1)).toBe(1);
    expect(goodputFromInterruptions(16384, 54, 0)).toBe(1);
  });
});

describe('the measurement sets of plan op', () => {
  it('fit on lease A; checked on leases B and C (holdout rows); lease C\'s fit-shape rows are a repeat, not a check', () => {
    expect(OP_MEASUREMENT_SETS).toStrictEqual({
      fit: [{ file: 'docs/plan-op-measurements.json', lease: 'A', rows: 'all' }],
      check: [
        { file: 'docs/plan-op-holdout.json', lease: 'B', rows: 'all' },
        { file: 'docs/plan-op-measurements-lease3.json', lease: 'C', rows: 'holdout' },
      ],
      repeat: [{ file: 'docs/plan-op-measurements-lease3.json', lease: 'C', rows: 'fit' }],
    });
  });
});

describe('provenance texts', () => {
  it('each constant\'s kind', () => {
    expect(Object.fromEntries(entries.map(([k, f]) => [k, f.kind]))).toEqual({
      gemm_eff: 'fit', scatter_eff: 'fit', launch_s: 'fit', flash_fwd_eff: 'fit', flash_bwd_eff: 'fit', bw_eff: 'measured',
      sdpa_cudnn_fwd_eff: 'fit', sdpa_cudnn_bwd_eff: 'fit', kernel_alpha_bf16: 'fit', kernel_host_s: 'fit', kernel_host_fp8_s: 'fit',
      kernel_scatter_eff: 'fit', sdpa_flash_fwd_eff: 'fit', sdpa_flash_bwd_eff: 'fit', sdpa_efficient_fwd_eff: 'fit', sdpa_efficient_bwd_eff: 'fit',
      host_kernel_s: 'fit', blackwell_kernel_eff: 'fit', graph_launch_s: 'measured', launch_train_s: 'fit', fp8_gemm_eff: 'fit',
      expert_load_cv: 'chosen', ep_overlap_adaptive: 'chosen', ep_overlap_dualpipe: 'chosen', tp_exposed_overlap: 'chosen',
      pangu_implied_peak_tflops: 'derived', goodput_hours_lost: 'chosen',
      krajewski_a: 'published-fit', krajewski_alpha: 'published-fit', krajewski_b: 'published-fit', krajewski_beta: 'published-fit',
      krajewski_g: 'published-fit', krajewski_gamma: 'published-fit', krajewski_c: 'published-fit',
    });
  });

  it('the plan op constants: the op fit on lease A, bench/plan/measure_ops.py, checked on the held-out shapes', () => {
    const OP_FIT = 'least squares on log time of fwd and fwd+bwd over the fit set, lease A (docs/plan-op-measurements.json: 12 MoE-layer shapes with grouped GEMMs, 5 attention blocks = 34 numbers), Nelder-Mead, all five op constants at once';
    const OP_SOURCE = 'bench/plan/measure_ops.py on one H200 (torch 2.11, bf16, CUDA events, median of 20); fit: fitOpConstants in src/plan/fit-op.ts, run by node bench/plan/fit_op_model.mjs';
    const OP_CHECK = 'the check set: 9 held-out shapes (6 MoE, 3 attention) measured on leases B and C (docs/plan-op-holdout.json, the holdout rows of docs/plan-op-measurements-lease3.json), test/plan/op.test.ts';
    const gives: Record<string, string> = { gemm_eff: '0.731', scatter_eff: '0.0439', launch_s: '37.8 us', flash_fwd_eff: '0.358', flash_bwd_eff: '0.302' };
    for (const [k, g] of Object.entries(gives)) {
      const f = FITTED[k as keyof typeof FITTED] as Fitted;
      expect(f.fitted_on.startsWith(`${OP_FIT}; the fit gives ${g}`), k).toBe(true);
      expect(f.source, k).toBe(OP_SOURCE);
      expect(f.checked_on.startsWith(OP_CHECK), k).toBe(true);
      expect(f.tuned_on_calibration, k).toBe(false);
    }
    expect(FITTED.gemm_eff.checked_on).toBe(OP_CHECK);
    expect(FITTED.launch_s.checked_on).toMatch(/^the check set: .*; a property of the lease's host as much as of the GPU/);
  });

  it('the H200 kernel constants: one kernel fit (fit-kernels.ts), its source, its check rows, and what each fit gives', () => {
    const KERNEL_FIT = 'least squares on log time over the fit rows of docs/plan-kernels-h200.json (the split fixed in scripts/plan_h200_kernels.py before measuring, by shape), fitKernelConstants in src/plan/fit-kernels.ts, all eleven kernel constants at once';
    const KERNEL_SOURCE = 'scripts/plan_h200_kernels.py on one H200 (torch 2.11, CUDA events, back-to-back calls, median of 5 rounds): docs/plan-kernels-h200.json';
    const KERNEL_CHECK = 'the check rows of docs/plan-kernels-h200.json (GPT-OSS and Mixtral expert shapes, 2,048-row GEMMs, other grouped shapes, GPT-OSS and TP2 attention, other router shapes), test/plan/kernels.test.ts';
    const what: Record<string, [number, string]> = {
      kernel_alpha_bf16: [0.77, 'the fit gives 0.767 of the BF16 peak for torch.mm (and torch._grouped_mm) over the expert shapes'],
      kernel_host_s: [21.2e-6, 'the fit gives 21.2 us: the host floor of one eager PyTorch op in back-to-back calls'],
      kernel_host_fp8_s: [26.2e-6, 'the fit gives 26.2 us: the host floor of torch._scaled_mm'],
      kernel_scatter_eff: [0.047, 'the fit gives 0.047 of HBM bandwidth for bf16 index_add_ (the unpermute)'],
      sdpa_flash_fwd_eff: [0.274, 'the fit gives 0.274 of the BF16 peak, causal SDPA flash backend forward'],
      sdpa_flash_bwd_eff: [0.242, 'the fit gives 0.242, flash backward (2.5x the forward FLOPs)'],
      sdpa_efficient_fwd_eff: [0.153, 'the fit gives 0.153, memory-efficient backend forward'],
      sdpa_efficient_bwd_eff: [0.114, 'the fit gives 0.114, memory-efficient backend backward'],
    };
    for (const [k, [value, w]] of Object.entries(what)) {
      expect(FITTED[k as keyof typeof FITTED], k).toStrictEqual({ value, kind: 'fit', fitted_on: `${KERNEL_FIT}; ${w}`, source: KERNEL_SOURCE, checked_on: KERNEL_CHECK, tuned_on_calibration: false });
    }
    // the cuDNN SDPA and FP8 GEMM constants come from the same fit
    for (const k of ['sdpa_cudnn_fwd_eff', 'sdpa_cudnn_bwd_eff', 'fp8_gemm_eff'] as const) {
      expect(FITTED[k].fitted_on.startsWith(`${KERNEL_FIT}; the fit gives `), k).toBe(true);
      expect(FITTED[k].source, k).toBe(KERNEL_SOURCE);
      expect(FITTED[k].checked_on, k).toBe(KERNEL_CHECK);
    }
  });

  it('the scaling law: Krajewski et al.\'s coefficients, each named in the law, with the paper and why it is not checked', () => {
    const src = 'Krajewski et al. 2024, "Scaling Laws for Fine-Grained Mixture of Experts", arXiv 2402.07871, Table 1 (checked against the paper\'s text)';
    const check = 'not checked here: the sweep uses it only to compare shapes of nearly equal size, far outside its fitted range (docs/planner.md, "Shape sweep")';
    const coef: Record<string, number> = { a: 18.1, alpha: 0.115, b: 30.8, beta: 0.147, g: 2.1, gamma: 0.58, c: 0.47 };
    for (const [c, value] of Object.entries(coef)) {
      expect(FITTED[`krajewski_${c}` as keyof typeof FITTED], c).toStrictEqual({
        value, kind: 'published-fit',
        fitted_on: `coefficient ${c} of L(N, D, G) = c + (g / G^gamma + a) / N^alpha + b / D^beta, fitted by Krajewski et al. on their MoE runs (expansion rate 64, 129M-3.7B parameters, 16B-130B tokens), the MoE row of their Table 1`,
        source: src, checked_on: check, tuned_on_calibration: false,
      });
    }
  });

  it('the framework constants name the reference fit they come from', () => {
    for (const k of ['host_kernel_s', 'blackwell_kernel_eff', 'launch_train_s'] as const) {
      expect(FITTED[k].fitted_on, k).toMatch(/FIT rows only \(REFERENCE_SPLIT\.fit in reference\.ts: Qwen3 on H100 and GB200\)/);
      expect(FITTED[k].source, k).toBe('src/plan/reference.ts (the Megatron-Bridge 25.09 performance summary rows and their recipes)');
      expect(FITTED[k].checked_on, k).toMatch(/validation rows/);
    }
  });
});
