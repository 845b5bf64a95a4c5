/**
 * The reference set (issue 13): published MoE pre-training runs written as plain specs from their sources alone,
 * split into a FIT set (the only rows any simulator constant is fitted on) and a VALIDATION set (never fitted on),
 * by model family and hardware.
 *
 * Rows from NVIDIA's Megatron-Bridge performance summary, release 25.09 (the NeMo 25.09 container): the table in
 * docs/performance-summary.md and the recipes in scripts/performance/ of NVIDIA-NeMo/Megatron-Bridge at commit
 * fa0315ae2684693a666be9d247adf9baf1e30028 (2025-10-10, "update 25.09 performance summary"; the same table is in
 * docs/performance-summary-archive.md later). Every field of every row names where it comes from (`sources`). The
 * table gives the layout, batch and throughput; the recipe the rest. Where the two disagree (the recipes' b200
 * blocks of Qwen3 name layouts that do not fit 8 GPUs; DeepSeek-V3's pp/vp) the published table's layout is used.
 * The table's main numbers are FP8 with per-tensor current scaling (fp8_cs); the numbers in parentheses use MXFP8
 * (B200/GB200) or 128x128 block scaling (H100) and are rows of their own where the table gives tokens/s for them.
 *
 * The papers' runs are the calibration rows (calibration.ts), all in the validation set.
 */
import { accountedThroughput, CALIBRATION, type CalibrationRow } from './calibration.js';
import { FITTED } from './fitted.js';
import { blackwellEfficiencies } from './hardware.js';
import { resolveSpec } from './spec.js';
import { simulate } from './simulate.js';

export const MB_COMMIT = 'fa0315ae2684693a666be9d247adf9baf1e30028';
const MB = `NVIDIA-NeMo/Megatron-Bridge@${MB_COMMIT.slice(0, 9)}`;
const TABLE = `${MB} docs/performance-summary.md (25.09 NeMo Container, Pre-Training Performance)`;
const RUN = `${MB} scripts/performance/run_script.py`;
const CFG = (f: string) => `${MB} scripts/performance/configs/${f}`;
const DSV3_RECIPE = `${MB} src/megatron/bridge/recipes/deepseek/deepseek_v3.py`;
const QWEN_RECIPE = `${MB} src/megatron/bridge/recipes/qwen/qwen3_moe.py`;
const TOKEN_DROP = `${MB} src/megatron/bridge/training/utils/moe_token_drop.py (capacity factor 1.0, moe_pad_expert_input_to_capacity True, alltoall dispatcher)`;

export type Generation = 'ampere' | 'hopper' | 'blackwell' | 'ascend';
export type Split = 'fit' | 'validation';

export interface ReferenceRow {
  id: string;
  name: string;
  family: string;
  hardware: string;
  generation: Generation;
  split: Split;
  spec: Record<string, unknown>;
  /** the published throughput, tokens/s per GPU (steady state) */
  tokens_per_s_per_device: number;
  /** where each spec field and the published number come from */
  sources: Record<string, string>;
  /** the calibration row it is, for the papers' runs (their accounting and assumptions live there) */
  calibration?: CalibrationRow;
}

/** Qwen3 on the reference table's systems; `mx` the MXFP8 number in parentheses where the table gives one */
function qwen(id: string, size: '30b' | '235b', hw: 'h100' | 'b200' | 'gb200', split: Split, lay: Record<string, number>, t: { mbs: number; gbs: number; devices: number; cuda_graphs: boolean }, tokens: number, recipe: 'fp8_cs' | 'fp8_mx' = 'fp8_cs'): ReferenceRow {
  const file = CFG(`qwen3/qwen3_${size === '30b' ? '30b_a3b' : '235b_a22b'}_llm_pretrain.yaml`);
  const model = size === '30b' ? 'qwen3-30b-a3b' : 'qwen3-235b-a22b';
  return {
    id, name: `Qwen3-${size === '30b' ? '30B-A3B' : '235B-A22B'} (tokendrop), ${t.devices} ${hw.toUpperCase()}, ${recipe === 'fp8_mx' ? 'MXFP8' : 'FP8 per-tensor'}`,
    family: 'qwen3', hardware: hw, generation: hw === 'h100' ? 'hopper' : 'blackwell', split,
    spec: {
      model: { preset: model },
      hardware: { preset: hw, devices: t.devices },
      parallel: { ...lay, etp: 1, zero: 1, schedule: (lay.vpp ?? 1) > 1 ? 'interleaved' : '1f1b', recompute: 'none', dispatcher: 'alltoall', ep_overlap: 'none', tp_overlap: true, dp_overlap: true, cuda_graphs: t.cuda_graphs },
      training: { seq_len: 4096, micro_batch: t.mbs, global_batch: t.gbs, precision: 'fp8', grad_precision: 'bf16', optimizer_precision: 'fp32', capacity_factor: 1 },
    },
    tokens_per_s_per_device: tokens,
    sources: {
      'published tokens/s/GPU': `${TABLE}, System: DGX-${hw.toUpperCase()}, row Qwen3_${size === '30b' ? '30B_a3B' : '235B_a22B'} (tokendrop)${recipe === 'fp8_mx' ? ', the number in parentheses (MXFP8, 32x32 scaling: the table\'s footnote)' : ''}`,
      'hardware.devices, training.global_batch/micro_batch/seq_len, parallel.tp/pp/vpp/ep': `${TABLE}, the same row (#-GPUs, GBS, MBS, Sequence Length, TP, PP, VP, EP)`,
      'parallel.etp': `${file}: perf_matrix.${hw}.*.common.etp 1`,
      'parallel.cuda_graphs': `${file}: perf_matrix.${hw}.*.common.cuda_graphs`,
      'parallel.recompute': `${file}: model.recompute_granularity null`,
      'parallel.dispatcher, training.capacity_factor': `${RUN}: apply_moe_token_drop for qwen3; ${TOKEN_DROP}`,
      'parallel.tp_overlap': `${RUN}: CommOverlapConfig(tp_comm_overlap=True) for qwen3`,
      'parallel.ep_overlap': `${RUN}: overlap_moe_expert_parallel_comm set only for DeepSeek-V3 on H100`,
      'parallel.dp_overlap, parallel.zero': `${QWEN_RECIPE}: DistributedDataParallelConfig(overlap_grad_reduce=True, overlap_param_gather=True, use_distributed_optimizer=True)`,
      'training.grad_precision': `${file}: mixed_precision.grad_reduce_in_fp32 false`,
      'training.precision': `${TABLE}: main numbers FP8 current (per-tensor) scaling (recipe fp8_cs, scripts/performance/utils/helpers.py get_precision_config); parentheses MXFP8`,
      'training.optimizer_precision': `${RUN}: the precision-aware optimizer (bf16 moments) only for compute_dtype bf16`,
    },
  };
}

function dsv3(id: string, hw: 'h100' | 'b200' | 'gb200', split: Split, lay: Record<string, number>, devices: number, gbs: number, tokens: number, recipe: 'fp8_cs' | 'fp8_mx' = 'fp8_cs'): ReferenceRow {
  const file = CFG('deepseek/deepseek_v3_llm_pretrain.yaml');
  const h100 = hw === 'h100';
  const recompute = hw === 'h100' ? ['mla_up', 'mlp'] : hw === 'gb200' ? ['mla_up', 'mlp', 'moe_act'] : ['core_attn'];
  return {
    id, name: `DeepSeek-V3 (${h100 ? 'dropless' : 'tokendrop'}), ${devices} ${hw.toUpperCase()}, ${recipe === 'fp8_mx' ? 'MXFP8' : 'FP8 per-tensor'}`,
    family: 'deepseek-v3', hardware: hw, generation: h100 ? 'hopper' : 'blackwell', split,
    spec: {
      model: { preset: 'deepseek-v3' },
      hardware: { preset: hw, devices },
      parallel: {
        ...lay, etp: 1, zero: 1, schedule: (lay.vpp ?? 1) > 1 ? 'interleaved' : '1f1b', recompute,
        dispatcher: h100 ? 'flex' : 'alltoall', ep_overlap: h100 ? 'a2a-1f1b' : 'none', shared_expert_overlap: !h100,
        tp_overlap: false, dp_overlap: !h100, cuda_graphs: hw === 'b200',
      },
      training: {
        seq_len: 4096, micro_batch: 1, global_batch: gbs, precision: 'fp8', grad_precision: 'bf16', optimizer_precision: 'bf16', node_limit: 4,
        ...(h100 ? { load_imbalance: 1 } : { capacity_factor: 1 }),
      },
    },
    tokens_per_s_per_device: tokens,
    sources: {
      'published tokens/s/GPU': `${TABLE}, System: DGX-${hw.toUpperCase()}, row DeepSeekV3 (${h100 ? 'dropless' : 'tokendrop'})${recipe === 'fp8_mx' ? ', the number in parentheses (MXFP8)' : ''}`,
      'hardware.devices, training.global_batch/micro_batch/seq_len, parallel.tp/pp/vpp/ep': `${TABLE}, the same row${recipe === 'fp8_mx' ? ' (its parenthesised PP/VP)' : ''}`,
      'model (61 layers, 1 MTP layer)': `${DSV3_RECIPE}: mtp_num_layers 1; ${file}: pipeline_model_parallel_layout "Et|(tt|)*30mL"`,
      'parallel.recompute': `${RUN}: recompute_modules ["mla_up_proj", "mlp"] on h100, ["mla_up_proj", "mlp", "moe_act"] on gb200; b200: ${file} recompute_granularity selective with the default modules (Megatron-Core: core_attn)`,
      'parallel.dispatcher, training.capacity_factor / load_imbalance': `${RUN}: DeepEP (flex dispatcher) and moe_router_force_load_balancing on h100 (${TABLE} footnote: "In token-dropless MoE training benchmarks, we force-balance the token distribution among experts"); apply_moe_token_drop on b200/gb200 (${TOKEN_DROP})`,
      'parallel.ep_overlap': `${RUN}: overlap_moe_expert_parallel_comm and delay_wgrad_compute True on h100 only (A2A_1F1B)`,
      'parallel.shared_expert_overlap': `${RUN}: moe_shared_expert_overlap True when A2A_1F1B is off (b200, gb200), False on h100`,
      'parallel.dp_overlap': `${RUN}: overlap_grad_reduce True on b200/gb200, False on h100`,
      'parallel.tp_overlap': `${DSV3_RECIPE}: CommOverlapConfig(tp_comm_overlap=False) when none is given (run_script gives none for DeepSeek-V3)`,
      'parallel.cuda_graphs': `${file}: perf_matrix.b200 fp8_cs/fp8_mx cuda_graphs true; h100, gb200 false`,
      'training.grad_precision': `${file}: mixed_precision.grad_reduce_in_fp32 false`,
      'training.optimizer_precision': `${DSV3_RECIPE}: use_precision_aware_optimizer, exp_avg/exp_avg_sq bfloat16`,
      'training.node_limit': `${MB} src/megatron/bridge/models/deepseek/deepseek_provider.py: DeepSeekV3ModelProvider moe_router_num_groups 8, moe_router_group_topk 4 (group-limited routing; with 256 experts over EP64 on 8 nodes a group is a node's 32 experts: at most 4 nodes a token)`,
      'training.precision': `${TABLE}: FP8 current scaling (main numbers); parentheses MXFP8 (B200/GB200)`,
    },
  };
}

/**
 * the Megatron-Bridge 25.09 rows (the table's MoE pre-training rows, main numbers and the MXFP8 numbers with tokens/s).
 * Left out: DeepSeek-V3 on GB200 in MXFP8 (2,835): its parenthesised layout (PP8 VP2, GA 64: DP 32) cannot hold EP64
 * (Megatron-Core needs ep | tp x dp), so the table does not say what ran; Qwen3-30B-A3B on B200 has no MXFP8 number.
 */
export const MB_ROWS: ReferenceRow[] = [
  qwen('qwen3-30b-h100', '30b', 'h100', 'fit', { tp: 1, pp: 2, vpp: 24, ep: 8 }, { mbs: 2, gbs: 512, devices: 16, cuda_graphs: false }, 10494),
  qwen('qwen3-235b-h100', '235b', 'h100', 'fit', { tp: 2, pp: 8, vpp: 4, ep: 32 }, { mbs: 1, gbs: 2048, devices: 256, cuda_graphs: false }, 1204),
  qwen('qwen3-30b-gb200', '30b', 'gb200', 'fit', { tp: 1, pp: 1, ep: 8 }, { mbs: 4, gbs: 512, devices: 8, cuda_graphs: true }, 22775),
  qwen('qwen3-30b-gb200-mx', '30b', 'gb200', 'fit', { tp: 1, pp: 1, ep: 8 }, { mbs: 4, gbs: 512, devices: 8, cuda_graphs: true }, 23723, 'fp8_mx'),
  qwen('qwen3-235b-gb200', '235b', 'gb200', 'fit', { tp: 2, pp: 1, ep: 64 }, { mbs: 1, gbs: 1024, devices: 64, cuda_graphs: true }, 4452),
  qwen('qwen3-235b-gb200-mx', '235b', 'gb200', 'fit', { tp: 2, pp: 1, ep: 64 }, { mbs: 1, gbs: 1024, devices: 64, cuda_graphs: true }, 4416, 'fp8_mx'),
  qwen('qwen3-30b-b200', '30b', 'b200', 'validation', { tp: 1, pp: 1, ep: 8 }, { mbs: 1, gbs: 512, devices: 8, cuda_graphs: true }, 18066),
  qwen('qwen3-235b-b200', '235b', 'b200', 'validation', { tp: 1, pp: 8, vpp: 2, ep: 8 }, { mbs: 1, gbs: 1024, devices: 64, cuda_graphs: false }, 4104),
  qwen('qwen3-235b-b200-mx', '235b', 'b200', 'validation', { tp: 1, pp: 8, vpp: 2, ep: 8 }, { mbs: 1, gbs: 1024, devices: 64, cuda_graphs: false }, 4275, 'fp8_mx'),
  dsv3('deepseek-v3-h100', 'h100', 'validation', { tp: 2, pp: 8, vpp: 4, ep: 64 }, 1024, 8192, 1297),
  dsv3('deepseek-v3-b200', 'b200', 'validation', { tp: 1, pp: 16, ep: 8 }, 256, 2048, 2265),
  dsv3('deepseek-v3-b200-mx', 'b200', 'validation', { tp: 1, pp: 16, ep: 8 }, 256, 2048, 2159, 'fp8_mx'),
  dsv3('deepseek-v3-gb200', 'gb200', 'validation', { tp: 1, pp: 4, vpp: 4, ep: 64 }, 256, 2048, 3454),
];

const GEN: Record<string, Generation> = { h800: 'hopper', h100: 'hopper', a800: 'ampere', '910b': 'ascend' };

/** the papers' runs (the calibration rows, MoE and the dense anchor), all validation */
/** calibration rows that are the same published run as a Megatron-Bridge row (so not a second, independent row) */
export const SAME_RUN: Record<string, string> = { 'qwen3-235b-a22b': 'qwen3-235b-h100' };

export const PAPER_ROWS: ReferenceRow[] = CALIBRATION.filter((c) => !(c.id in SAME_RUN)).map((c) => {
  const hw = (c.spec.hardware as { preset: string }).preset;
  const preset = (c.spec.model as { preset: string }).preset;
  return {
    id: c.id, name: c.name, family: preset.replace(/-(ultra-moe|moe)$/, ''), hardware: hw, generation: GEN[hw] ?? 'hopper', split: 'validation' as const,
    spec: c.spec, tokens_per_s_per_device: 0, sources: { all: c.source, assumptions: c.assumptions }, calibration: c,
  };
});

export const REFERENCE: ReferenceRow[] = [...MB_ROWS, ...PAPER_ROWS];

/** the split: the fit rows are the only ones fitReference may read */
export const REFERENCE_SPLIT = {
  fit: REFERENCE.filter((r) => r.split === 'fit').map((r) => r.id),
  validation: REFERENCE.filter((r) => r.split === 'validation').map((r) => r.id),
} as const;

export interface ReferenceResult { id: string; name: string; split: Split; generation: Generation; moe: boolean; predicted: number; published: number; error: number; metric: 'throughput' | 'mfu' }

/** the constants fitted on the fit rows (fitted.ts host_kernel_s, launch_train_s, blackwell_kernel_eff) */
export interface FrameworkConstants { host_kernel_s: number; launch_train_s: number; blackwell_kernel_eff: number }

/** the committed values of the fitted constants */
export function committedFramework(): FrameworkConstants {
  return { host_kernel_s: FITTED.host_kernel_s.value, launch_train_s: FITTED.launch_train_s.value, blackwell_kernel_eff: FITTED.blackwell_kernel_eff.value };
}

/** one row simulated with the framework constants given (a Blackwell row gets its efficiencies from k's factor) */
/** one reference row's resolved spec (Blackwell rows at the fitted kernel-efficiency factor) and its simulation with the framework constants given */
export function simulateRow(r: ReferenceRow, k: FrameworkConstants) {
  const spec = resolveSpec(structuredClone(r.spec), r.id);
  if (r.generation === 'blackwell') spec.hardware = { ...spec.hardware, ...blackwellEfficiencies(k.blackwell_kernel_eff) };
  return { spec, sim: simulate(spec, { hostKernelS: k.host_kernel_s, launchS: k.launch_train_s }) };
}

/** predicted tokens/s/GPU of one Megatron-Bridge row with the fitted framework constants given */
export function predictRow(r: ReferenceRow, k: FrameworkConstants): number {
  return simulateRow(r, k).sim.tokens_per_s_per_device;
}

export interface ReferenceFit extends FrameworkConstants { rms_log_err: number }

/**
 * Least squares on log throughput over the rows given, which must all be fit rows (it throws otherwise): the host
 * seconds per kernel and the GPU seconds per launch of the training framework (0.1-100 us each, log-spaced) and the
 * Blackwell kernel-efficiency factor (0.25-1), by a grid refined twice around its best point. A grid, not a descent:
 * below the point where the host or the launches start to bind the loss is flat.
 */
export function fitReference(rows: ReferenceRow[]): ReferenceFit {
  const bad = rows.filter((r) => r.split !== 'fit' || r.calibration);
  if (bad.length) throw new Error(`fitReference was given rows outside the fit set: ${bad.map((r) => r.id).join(', ')}`);
  const loss = (k: FrameworkConstants) => rows.reduce((a, r) => a + Math.log(predictRow(r, k) / r.tokens_per_s_per_device) ** 2, 0);
  let best = { k: { host_kernel_s: 1e-6, launch_train_s: 1e-6, blackwell_kernel_eff: 1 }, f: Infinity };
  const grid = (lo: FrameworkConstants, hi: FrameworkConstants, n: number) => {
    const at = (a: number, b: number, i: number) => a * (b / a) ** (i / n);
    for (let i = 0; i <= n; i++) for (let j = 0; j <= n; j++) for (let q = 0; q <= n; q++) {
      const k = { host_kernel_s: at(lo.host_kernel_s, hi.host_kernel_s, i), launch_train_s: at(lo.launch_train_s, hi.launch_train_s, j), blackwell_kernel_eff: Math.min(1, at(lo.blackwell_kernel_eff, hi.blackwell_kernel_eff, q)) };
      const f = loss(k);
      if (f < best.f) best = { k, f };
    }
  };
  grid({ host_kernel_s: 1e-7, launch_train_s: 1e-7, blackwell_kernel_eff: 0.25 }, { host_kernel_s: 1e-4, launch_train_s: 1e-4, blackwell_kernel_eff: 1 }, 12);
  for (const r of [1.8, 1.15]) {
    const b = best.k;
    grid({ host_kernel_s: b.host_kernel_s / r, launch_train_s: b.launch_train_s / r, blackwell_kernel_eff: b.blackwell_kernel_eff / r },
      { host_kernel_s: b.host_kernel_s * r, launch_train_s: b.launch_train_s * r, blackwell_kernel_eff: b.blackwell_kernel_eff * r }, 6);
  }
  return { ...best.k, rms_log_err: Math.sqrt(best.f / rows.length) };
}

/**
 * Every row's error, predicted / published - 1 of throughput (the MFU-only papers: of MFU, which is throughput
 * times a constant): the Megatron-Bridge rows at steady state, the papers' rows as calibration.ts accounts them.
 * `fit`: the framework constants to use (default: the committed ones).
 */
export function referenceErrors(rows: ReferenceRow[] = REFERENCE, fit: FrameworkConstants = committedFramework()): ReferenceResult[] {
  return rows.map((r) => {
    const { spec, sim } = simulateRow(r, fit);
    const moe = spec.model.experts > 0;
    const c = r.calibration;
    if (!c) {
      const predicted = sim.tokens_per_s_per_device;
      return { id: r.id, name: r.name, split: r.split, generation: r.generation, moe, predicted, published: r.tokens_per_s_per_device, error: predicted / r.tokens_per_s_per_device - 1, metric: 'throughput' as const };
    }
    if (c.metric === 'mfu') {
      const pub = c.published.mfu ?? NaN;
      return { id: r.id, name: r.name, split: r.split, generation: r.generation, moe, predicted: sim.mfu, published: pub, error: sim.mfu / pub - 1, metric: 'mfu' as const };
    }
    const predicted = accountedThroughput(c, sim.tokens_per_s_per_device);
    const pub = c.published.tokens_per_s_per_device ?? NaN;
    return { id: r.id, name: r.name, split: r.split, generation: r.generation, moe, predicted, published: pub, error: predicted / pub - 1, metric: 'throughput' as const };
  });
}

export interface ReferenceStats { rows: number; median_abs: number; worst: number; worst_at: string; within_15: number; generations: Generation[] }

export function referenceStats(res: ReferenceResult[]): ReferenceStats {
  const abs = res.map((r) => Math.abs(r.error)).sort((a, b) => a - b);
  const n = abs.length;
  const median_abs = n === 0 ? 0 : n % 2 ? abs[(n - 1) / 2] : (abs[n / 2 - 1] + abs[n / 2]) / 2;
  let worst = 0, worst_at = '';
  for (const r of res) if (Math.abs(r.error) >= worst) { worst = Math.abs(r.error); worst_at = r.id; }
  return { rows: n, median_abs, worst, worst_at, within_15: res.filter((r) => Math.abs(r.error) <= 0.15).length, generations: [...new Set(res.map((r) => r.generation))] };
}
