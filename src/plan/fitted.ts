/**
 * Every constant of the planner's cost model that was set from data (fitted to measurements, measured, derived from a
 * published run, chosen against the calibration rows, or fitted by a paper), in one place, each with its value, what
 * it was fitted on, its source, what it is checked on, and whether the calibration rows were used to set it.
 *
 * Not here: hardware datasheet numbers (peaks, bandwidths, memory sizes: hardware.ts, each with its source) and the
 * assumptions no data stands behind (collective efficiency and latency, the Ascend efficiencies, the training
 * framework's 5 us per kernel, memory reserves: hardware.ts, simulate.ts, memory.ts say which).
 *
 * Fitting is kept apart from checking:
 *  - `plan op` (one MoE layer, one attention block on one H200): the five constants of kind 'fit' are fitted on the
 *    fit set only (OP_MEASUREMENT_SETS.fit: lease A, 17 shapes) by `fitOpConstants` (fit-op.ts;
 *    `node bench/plan/fit_op_model.mjs`); they are checked on the check set (OP_MEASUREMENT_SETS.check: 9 other shapes,
 *    predicted before they were measured, on leases B and C), which no fit reads (test/plan/op.test.ts).
 *  - the simulator: the calibration rows (calibration.ts, published training runs) are its check set. Constants with
 *    `tuned_on_calibration: true` were chosen while looking at those rows, so the rows are not an independent check
 *    of them; docs/planner.md says so beside the table.
 */

export interface Fitted {
  value: number;
  /**
   * fit: least squares on measurements; measured: read off one microbenchmark; derived: computed from published
   * figures; chosen: picked (within a published range, or without data) against the calibration rows;
   * published-fit: a paper's fitted coefficient, used as published
   */
  kind: 'fit' | 'measured' | 'derived' | 'chosen' | 'published-fit';
  /** the data it was fitted (or chosen) on, and how */
  fitted_on: string;
  /** where that data and procedure are */
  source: string;
  /** the data it is checked on, disjoint from fitted_on; or why there is no independent check */
  checked_on: string;
  /** true when the calibration rows (published runs) were used to set it: they are then no independent check of it */
  tuned_on_calibration: boolean;
}

/** The H200 measurements of `plan op` (bench/plan/measure_ops.py), split into a fit set and a disjoint check set. */
export interface OpMeasurementSet {
  file: string;
  lease: 'A' | 'B' | 'C';
  /** which rows of the file: all, or those whose `set` field is 'fit' / 'holdout' */
  rows: 'all' | 'fit' | 'holdout';
}

export const OP_MEASUREMENT_SETS: { fit: OpMeasurementSet[]; check: OpMeasurementSet[]; repeat: OpMeasurementSet[] } = {
  /** lease A: the 12 MoE-layer (grouped GEMM) and 5 attention shapes the constants are fitted on */
  fit: [{ file: 'docs/plan-op-measurements.json', lease: 'A', rows: 'all' }],
  /**
   * the 6 MoE-layer and 3 attention shapes held out (`--set holdout`), predicted with the fitted constants and the
   * predictions committed (docs/plan-op-holdout-predictions.json) before they were measured, on leases B and C
   */
  check: [
    { file: 'docs/plan-op-holdout.json', lease: 'B', rows: 'all' },
    { file: 'docs/plan-op-measurements-lease3.json', lease: 'C', rows: 'holdout' },
  ],
  /** lease C re-measured the fit set's shapes: the same shapes on another machine (reproducibility, not a check) */
  repeat: [{ file: 'docs/plan-op-measurements-lease3.json', lease: 'C', rows: 'fit' }],
};

const OP_FIT = 'least squares on log time of fwd and fwd+bwd over the fit set, lease A (docs/plan-op-measurements.json: 12 MoE-layer shapes with grouped GEMMs, 5 attention blocks = 34 numbers), Nelder-Mead, all five op constants at once';
const OP_SOURCE = 'bench/plan/measure_ops.py on one H200 (torch 2.11, bf16, CUDA events, median of 20); fit: fitOpConstants in src/plan/fit-op.ts, run by node bench/plan/fit_op_model.mjs';
const KERNEL_FIT = 'least squares on log time over the fit rows of docs/plan-kernels-h200.json (the split fixed in scripts/plan_h200_kernels.py before measuring, by shape), fitKernelConstants in src/plan/fit-kernels.ts, all eleven kernel constants at once';
const KERNEL_SOURCE = 'scripts/plan_h200_kernels.py on one H200 (torch 2.11, CUDA events, back-to-back calls, median of 5 rounds): docs/plan-kernels-h200.json';
const KERNEL_CHECK = 'the check rows of docs/plan-kernels-h200.json (GPT-OSS and Mixtral expert shapes, 2,048-row GEMMs, other grouped shapes, GPT-OSS and TP2 attention, other router shapes), test/plan/kernels.test.ts';
/** a constant of the H200 kernel fit (fit-kernels.ts; `plan op gemm`, `plan op sdpa`) */
function kfit(value: number, what: string): Fitted {
  return { value, kind: 'fit', fitted_on: `${KERNEL_FIT}; ${what}`, source: KERNEL_SOURCE, checked_on: KERNEL_CHECK, tuned_on_calibration: false };
}
const OP_CHECK = 'the check set: 9 held-out shapes (6 MoE, 3 attention) measured on leases B and C (docs/plan-op-holdout.json, the holdout rows of docs/plan-op-measurements-lease3.json), test/plan/op.test.ts';

/** Days of DeepSeek-V3 pre-training: 2,664K H800 GPU-hours on 2,048 GPUs (report sec. 1) = 54.2 days */
export const DSV3_PRETRAIN_DAYS = 2664e3 / 2048 / 24;

/**
 * Llama 3's published interruption record (arXiv 2407.21783 sec. 3.3.4, Table 5): 466 job interruptions (47 planned,
 * 419 unexpected) in a 54-day snapshot on 16,384 H100. Data, not fitted; the goodput below scales it.
 */
export const LLAMA3_INTERRUPTIONS = { count: 466, days: 54, gpus: 16384 } as const;

/**
 * Goodput of a synchronous pre-training run from Llama 3's interruption rate: scaled per GPU-day to `gpus` over
 * `days`, each interruption costing `hours_lost` (restart, checkpoint reload and the work since the last checkpoint).
 */
export function goodputFromInterruptions(gpus: number, days: number, hours_lost: number): number {
  const perGpuDay = LLAMA3_INTERRUPTIONS.count / (LLAMA3_INTERRUPTIONS.days * LLAMA3_INTERRUPTIONS.gpus);
  const interruptions = perGpuDay * gpus * days;
  return 1 - (interruptions * hours_lost) / (days * 24);
}

function LAW(k: string): string {
  return `coefficient ${k} of L(N, D, G) = c + (g / G^gamma + a) / N^alpha + b / D^beta, fitted by Krajewski et al. on their MoE runs (expansion rate 64, 129M-3.7B parameters, 16B-130B tokens), the MoE row of their Table 1`;
}
const LAW_SRC = 'Krajewski et al. 2024, "Scaling Laws for Fine-Grained Mixture of Experts", arXiv 2402.07871, Table 1 (checked against the paper\'s text)';
const LAW_CHECK = 'not checked here: the sweep uses it only to compare shapes of nearly equal size, far outside its fitted range (docs/planner.md, "Shape sweep")';

export const FITTED = {
  // --- plan op: PyTorch eager on one H200; fitted on lease A, checked on the held-out shapes ------------------------
  gemm_eff: {
    value: 0.73, kind: 'fit',
    fitted_on: `${OP_FIT}; the fit gives 0.731 of the 989 TFLOP/s BF16 peak, with op.ts' roofline (weight bytes additive, activation bytes overlapped). Used as the GEMM efficiency of every NVIDIA preset (Hopper measured; A100/A800/Blackwell carried over)`,
    source: OP_SOURCE, checked_on: OP_CHECK, tuned_on_calibration: false,
  },
  scatter_eff: {
    value: 0.044, kind: 'fit',
    fitted_on: `${OP_FIT}; the fit gives 0.0439 of HBM bandwidth for bf16 atomic scatter-add (index_add_, the gather's backward)`,
    source: OP_SOURCE, checked_on: OP_CHECK, tuned_on_calibration: false,
  },
  launch_s: {
    value: 38e-6, kind: 'fit',
    fitted_on: `${OP_FIT}; the fit gives 37.8 us per kernel: eager PyTorch's per-op cost on lease A's host (sort, top-k, indexing, allocation), not bare launch latency (7.9 us per op in a chain of 400 tiny ops on lease C)`,
    source: OP_SOURCE, checked_on: `${OP_CHECK}; a property of the lease's host as much as of the GPU (lease B's faster host ran the overhead-bound shapes up to 24% faster than predicted)`, tuned_on_calibration: false,
  },
  flash_fwd_eff: {
    value: 0.36, kind: 'fit',
    fitted_on: `${OP_FIT}; the fit gives 0.358 of the BF16 peak for F.scaled_dot_product_attention (flash backend, causal) forward`,
    source: OP_SOURCE, checked_on: OP_CHECK, tuned_on_calibration: false,
  },
  flash_bwd_eff: {
    value: 0.30, kind: 'fit',
    fitted_on: `${OP_FIT}; the fit gives 0.302 of the BF16 peak for the flash backward (2.5x the forward FLOPs)`,
    source: OP_SOURCE, checked_on: OP_CHECK, tuned_on_calibration: false,
  },
  bw_eff: {
    value: 0.87, kind: 'measured',
    fitted_on: 'device-to-device copy on one H200 against the 4.8 TB/s datasheet bandwidth: 4.1-4.2 TB/s in lease A\'s session (the committed lease A run: 4.09 TB/s = 0.85; leases B and C: 4.16 and 4.14 TB/s); 0.87 = 4.18 TB/s, set before leases B and C. Not fitted: the op fit takes it as given. Used for every NVIDIA preset',
    source: 'calibration.copy of docs/plan-op-measurements.json, docs/plan-op-holdout.json, docs/plan-op-measurements-lease3.json (bench/plan/measure_ops.py)',
    checked_on: 'indirectly by the op check set (every memory-bound kernel runs at it)', tuned_on_calibration: false,
  },

  // --- H200 kernels (scripts/plan_h200_kernels.py, docs/plan-kernels-h200.json): fitted on its fit rows ---------------
  sdpa_cudnn_fwd_eff: {
    value: 0.52, kind: 'fit',
    fitted_on: `${KERNEL_FIT}; the fit gives 0.522 of the BF16 peak for causal cuDNN SDPA forward (Transformer Engine's fused attention on Hopper is cuDNN's); the simulator's attention`,
    source: KERNEL_SOURCE, checked_on: KERNEL_CHECK, tuned_on_calibration: false,
  },
  sdpa_cudnn_bwd_eff: {
    value: 0.44, kind: 'fit',
    fitted_on: `${KERNEL_FIT}; the fit gives 0.438 of the BF16 peak for the cuDNN SDPA backward (2.5x the forward FLOPs)`,
    source: KERNEL_SOURCE, checked_on: KERNEL_CHECK, tuned_on_calibration: false,
  },

  kernel_alpha_bf16: kfit(0.77, 'the fit gives 0.767 of the BF16 peak for torch.mm (and torch._grouped_mm) over the expert shapes'),
  kernel_host_s: kfit(21.2e-6, 'the fit gives 21.2 us: the host floor of one eager PyTorch op in back-to-back calls'),
  kernel_host_fp8_s: kfit(26.2e-6, 'the fit gives 26.2 us: the host floor of torch._scaled_mm'),
  kernel_scatter_eff: kfit(0.047, 'the fit gives 0.047 of HBM bandwidth for bf16 index_add_ (the unpermute)'),
  sdpa_flash_fwd_eff: kfit(0.274, 'the fit gives 0.274 of the BF16 peak, causal SDPA flash backend forward'),
  sdpa_flash_bwd_eff: kfit(0.242, 'the fit gives 0.242, flash backward (2.5x the forward FLOPs)'),
  sdpa_efficient_fwd_eff: kfit(0.153, 'the fit gives 0.153, memory-efficient backend forward'),
  sdpa_efficient_bwd_eff: kfit(0.114, 'the fit gives 0.114, memory-efficient backend backward'),

  // --- the simulator: fitted on the reference FIT rows (reference.ts) only ------------------------------------------
  host_kernel_s: {
    value: 4.83e-8, kind: 'fit',
    fitted_on: 'the fit gives 0.048 us, the floor of its grid: on the fit rows the host never binds (not identified; the model keeps the mechanism, with this value it is inert). Host (framework) seconds per kernel of the simulator\'s kernel lists, inside Megatron-Core + Transformer Engine; least squares on log throughput over the reference set\'s FIT rows only (REFERENCE_SPLIT.fit in reference.ts: Qwen3 on H100 and GB200), together with launch_train_s and blackwell_kernel_eff (fitReference in reference.ts, a 3-D grid; node bench/plan/fit_reference.mjs)',
    source: 'src/plan/reference.ts (the Megatron-Bridge 25.09 performance summary rows and their recipes)',
    checked_on: 'the reference set\'s validation rows (DeepSeek-V3 on H100/B200/GB200, Qwen3 on B200, the papers\' runs), test/plan/reference.test.ts', tuned_on_calibration: false,
  },

  blackwell_kernel_eff: {
    value: 0.425, kind: 'fit',
    fitted_on: 'the fit gives 0.425: B200/GB200 GEMMs and attention reach 0.425 of the fraction of peak measured on the H200 (so a Blackwell BF16 GEMM runs at 0.77 x 0.425 x 2.25 PF = 0.74 PF, about an H100\'s). It absorbs what the roofline leaves out on Blackwell (fixed per-kernel latencies that do not shrink with the peak, small expert GEMMs that do not fill the tensor cores, and the CUDA-graph rows\' remaining per-kernel costs); no Blackwell GPU was measured. least squares on log throughput over the reference set\'s FIT rows only (REFERENCE_SPLIT.fit in reference.ts: Qwen3 on H100 and GB200), together with launch_train_s and blackwell_kernel_eff (fitReference in reference.ts, a 3-D grid; node bench/plan/fit_reference.mjs)',
    source: 'src/plan/reference.ts (the Megatron-Bridge 25.09 performance summary rows and their recipes)',
    checked_on: 'the reference set\'s Blackwell validation rows (Qwen3 and DeepSeek-V3 on B200, DeepSeek-V3 on GB200), test/plan/reference.test.ts', tuned_on_calibration: false,
  },

  graph_launch_s: {
    value: 1.13e-6, kind: 'measured',
    fitted_on: 'GPU seconds per kernel inside a replayed CUDA graph: a chain of 1,000 in-place adds on 256 bf16 elements captured with torch.cuda.CUDAGraph on one H200 takes 1.13 us a kernel (200 kernels: 1.16 us), against 9.3 us a kernel launched eagerly. Not fitted: the simulator takes it as the cost of one captured kernel launch',
    source: 'docs/plan-graph-gap-h200.json (bench/plan/measure_graph_gap.py, device machine, torch 2.11, CUDA 13.0)',
    checked_on: 'the same file\'s per-expert GEMM chains (256-512 rows): captured, each GEMM takes 6.5-8.1 us against 11.5-12.2 us eager', tuned_on_calibration: false,
  },

  launch_train_s: {
    value: 28.5e-6, kind: 'fit',
    fitted_on: 'the fit gives 28.5 us (RMS log error 1.4% on the 6 fit rows; 31.6 us before CUDA graphs were modelled). GPU seconds per kernel launch inside the training framework outside a CUDA graph (the gap and tail of each kernel, each of Transformer Engine\'s per-expert GEMMs counted); least squares on log throughput over the reference set\'s FIT rows only (REFERENCE_SPLIT.fit in reference.ts: Qwen3 on H100 and GB200), together with launch_train_s and blackwell_kernel_eff (fitReference in reference.ts, a 3-D grid; node bench/plan/fit_reference.mjs)',
    source: 'src/plan/reference.ts (the Megatron-Bridge 25.09 performance summary rows and their recipes)',
    checked_on: 'the reference set\'s validation rows, test/plan/reference.test.ts', tuned_on_calibration: false,
  },

  // --- the simulator: chosen against the calibration rows (the rows are then no independent check) -----------------
  fp8_gemm_eff: {
    value: 0.60, kind: 'fit',
    fitted_on: `${KERNEL_FIT}; the fit gives 0.600 of the 1,979 TFLOP/s FP8 peak for torch._scaled_mm (e4m3, per-tensor scales, bf16 out) over the expert shapes; replaces 0.55, which was chosen against the calibration rows. Used for every FP8-capable NVIDIA preset (Blackwell carried over, not measured), block-scaled (DeepSeek-V3) and MXFP8 recipes alike`,
    source: KERNEL_SOURCE, checked_on: KERNEL_CHECK, tuned_on_calibration: false,
  },
  expert_load_cv: {
    value: 0.12, kind: 'chosen',
    fitted_on: 'coefficient of variation of one expert\'s token count per micro-batch (balance.ts), chosen together with fp8_gemm_eff against the whole calibration table (commit 3e7184f, replacing per-row load imbalances of 1.1-1.3)',
    source: 'calibration rows with routed experts and a derived load: DeepSeek-V3, Pangu Ultra MoE (both), Mixtral 8x22B, Skywork-MoE (Qwen3-235B-A22B fixes max/mean = 1.0: token drop)',
    checked_on: 'nothing independent: the calibration rows were used to choose it; no router trace of a real training run was measured (docs/planner.md: expert_load_cv 0.3 moves the Pangu ranking)', tuned_on_calibration: true,
  },
  ep_overlap_adaptive: {
    value: 0.8, kind: 'chosen',
    fitted_on: 'fraction of the EP all-to-all hidden behind compute by Pangu Ultra MoE\'s adaptive pipe overlap; no data: set in the commit that added the calibration rows (5c3dfed) and unchanged since; whether it was chosen while looking at the rows is not recorded, so it is counted as tuned on them',
    source: 'simulate.ts EP_OVERLAP; calibration row: Pangu Ultra MoE (final)',
    checked_on: 'nothing independent: only the Pangu (final) calibration row exercises it', tuned_on_calibration: true,
  },
  ep_overlap_dualpipe: {
    value: 0.95, kind: 'chosen',
    fitted_on: 'fraction of the EP all-to-all hidden behind compute by DeepSeek-V3\'s DualPipe (the report describes the all-to-all as fully hidden, sec. 3.2, without a number); set with the calibration rows (5c3dfed) and unchanged since, counted as tuned on them',
    source: 'simulate.ts EP_OVERLAP; DeepSeek-V3 technical report sec. 3.2.2; calibration row: DeepSeek-V3',
    checked_on: 'nothing independent: only the DeepSeek-V3 calibration row exercises it', tuned_on_calibration: true,
  },
  tp_exposed_overlap: {
    value: 0.3, kind: 'chosen',
    fitted_on: 'fraction of the TP collectives left exposed with Megatron\'s --tp-comm-overlap; no data: set with the calibration rows (5c3dfed) and unchanged since, counted as tuned on them',
    source: 'simulate.ts TP_EXPOSED; calibration rows with tp > 1 and TP overlap: Pangu Ultra MoE (both), Mixtral 8x22B, Qwen3-235B-A22B, Skywork-MoE',
    checked_on: 'nothing independent', tuned_on_calibration: true,
  },
  pangu_implied_peak_tflops: {
    value: 220, kind: 'derived',
    fitted_on: 'the 910B dense BF16 peak the Pangu Ultra MoE paper\'s own figures imply under our FLOP count (277.9 GFLOP per token): 1.46M tokens/s x 277.9G / (0.300 MFU x 6,144 NPUs) = 220 TFLOPS; the baseline pair (0.61M tokens/s at 18.9% on 4,096) gives 219. The paper states neither its peak nor its FLOP convention; the widely reported 313 TFLOPS (the 910B preset) puts the row at +35%',
    source: 'arXiv 2505.04519 (the published throughput and MFU of both Pangu calibration rows); calibration.ts',
    checked_on: 'nothing independent: derived from the same published pairs the two Pangu rows are compared on, so those rows check the rest of the model only given the paper\'s MFU (a throughput check at this peak is an MFU check)', tuned_on_calibration: true,
  },
  goodput_hours_lost: {
    value: 1, kind: 'chosen',
    fitted_on: 'hours lost per job interruption (restart, checkpoint reload, work since the last checkpoint) in goodputFromInterruptions: an assumption, no data; with Llama 3\'s interruption rate (LLAMA3_INTERRUPTIONS, published) it gives DeepSeek-V3\'s goodput 0.955 over 2,048 GPUs x 54.2 days (58 interruptions). Introduced when the DeepSeek-V3 row, compared on the report\'s cost-accounting figure, was +10% at steady state',
    source: 'arXiv 2407.21783 sec. 3.3.4 (the rate); calibration.ts (the DeepSeek-V3 row\'s accounting)',
    checked_on: 'nothing independent: only the DeepSeek-V3 row uses it; that row stays within 10% for any goodput up to 0.965 (test/plan/simulate.test.ts; 0.985 before the global model of issue 13 raised the steady state to +13.6%), so the pass does not hinge on the hour', tuned_on_calibration: true,
  },

  // --- the sweep's scaling law: a paper's fit, used as published --------------------------------------------------
  krajewski_a: { value: 18.1, kind: 'published-fit', fitted_on: LAW('a'), source: LAW_SRC, checked_on: LAW_CHECK, tuned_on_calibration: false },
  krajewski_alpha: { value: 0.115, kind: 'published-fit', fitted_on: LAW('alpha'), source: LAW_SRC, checked_on: LAW_CHECK, tuned_on_calibration: false },
  krajewski_b: { value: 30.8, kind: 'published-fit', fitted_on: LAW('b'), source: LAW_SRC, checked_on: LAW_CHECK, tuned_on_calibration: false },
  krajewski_beta: { value: 0.147, kind: 'published-fit', fitted_on: LAW('beta'), source: LAW_SRC, checked_on: LAW_CHECK, tuned_on_calibration: false },
  krajewski_g: { value: 2.1, kind: 'published-fit', fitted_on: LAW('g'), source: LAW_SRC, checked_on: LAW_CHECK, tuned_on_calibration: false },
  krajewski_gamma: { value: 0.58, kind: 'published-fit', fitted_on: LAW('gamma'), source: LAW_SRC, checked_on: LAW_CHECK, tuned_on_calibration: false },
  krajewski_c: { value: 0.47, kind: 'published-fit', fitted_on: LAW('c'), source: LAW_SRC, checked_on: LAW_CHECK, tuned_on_calibration: false },
} satisfies Record<string, Fitted>;

export type FittedName = keyof typeof FITTED;
