/**
 * Published training runs the planner is calibrated against. Each row: the spec as far as the source states
 * it, the assumptions where it is silent, the published figure and which metric it is compared on
 * (MFU points, or throughput when the source gives throughput). The rows are the simulator's check set; the
 * constants chosen while looking at them are marked `tuned_on_calibration` in fitted.ts.
 */
import { DSV3_PRETRAIN_DAYS, FITTED, goodputFromInterruptions } from './fitted.js';
import { resolveSpec } from './spec.js';
import { simulate } from './simulate.js';

export interface CalibrationRow {
  id: string;
  name: string;
  spec: Record<string, unknown>;
  /** the published figure: MFU as a fraction, or tokens/s per device */
  published: { mfu?: number; tokens_per_s_per_device?: number; tokens_per_s?: number };
  /** compare on MFU points (+-0.03) or throughput (+-10%) */
  metric: 'mfu' | 'throughput';
  source: string;
  assumptions: string;
  /**
   * When the published figure is cost accounting (GPU-hours of a whole run per token) rather than a measured
   * steady-state step time, what separates the two: the batch-size ramp-up the source states (simulated at each
   * batch size) and the goodput (useful training time / elapsed time), an assumption with its reason.
   */
  accounting?: {
    ramp?: { from_batch: number; to_batch: number; ramp_tokens: number; total_tokens: number };
    goodput: number;
    goodput_why: string;
  };
}

/**
 * Goodput of a synchronous pre-training run from Llama 3's published interruption rate, with the hours lost per
 * interruption an assumption: both in fitted.ts (goodputFromInterruptions, LLAMA3_INTERRUPTIONS, goodput_hours_lost).
 */
export { goodputFromInterruptions } from './fitted.js';

/**
 * Dense BF16 peak of the 910B the Pangu Ultra MoE paper's figures imply under our FLOP count (220 TFLOPS): derived from
 * the two Pangu rows' own published throughput and MFU, so those rows are no independent check of it (fitted.ts).
 */
export const PANGU_IMPLIED_PEAK_TFLOPS = FITTED.pangu_implied_peak_tflops.value;

export const CALIBRATION: CalibrationRow[] = [
  {
    id: 'deepseek-v3',
    name: 'DeepSeek-V3 671B, 2,048 H800',
    spec: {
      model: { preset: 'deepseek-v3' },
      hardware: { preset: 'h800', devices: 2048 },
      parallel: { tp: 1, pp: 16, ep: 64, etp: 1, zero: 1, schedule: 'dualpipe', ep_overlap: 'dualpipe', a2a: 'hierarchical', recompute: ['layernorm', 'mla_up', 'moe_act'] },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 15360, precision: 'fp8', optimizer_precision: 'bf16', node_limit: 4, dispatch_bytes: 1 },
    },
    published: { tokens_per_s_per_device: 1e12 / (180e3 * 3600) },
    metric: 'throughput',
    source: 'DeepSeek-V3 technical report (arXiv 2412.19437): 2,048 H800, PP16, EP64 over 8 nodes, ZeRO-1 DP, DualPipe, FP8 GEMMs, BF16 Adam moments, fp32 master weights and gradients (sec. 3.3); 180K H800 GPU-hours per trillion tokens = 1,543 tokens/s/GPU; seq 4K, batch 15,360 sequences (after ramp-up), node-limited (hierarchical) dispatch, recomputes RMSNorm and MLA up-projections',
    assumptions: 'micro-batch 1 sequence; expert load imbalance from the global expert_load_cv 0.12 (max/mean 1.17 at EP64 with 4 experts per GPU); recompute of norms, MLA up-projections (as the report) and the expert activation; dispatch in FP8, combine in BF16 (as the report). The published figure is cost accounting: 2,664K GPU-hours for the whole 14.8T-token pre-training stage (report sec. 1, 3.7 days per trillion tokens on 2,048 GPUs), so it includes the batch ramp-up the report states (3,072 -> 15,360 sequences over the first 469B tokens, sec. 4.2; simulated, taken linear in tokens) and every checkpoint, restart and evaluation (the report gives no breakdown): goodput 0.955 assumed, from Llama 3\'s interruption rate (466 in 54 days on 16,384 GPUs) scaled to 2,048 GPUs x 54.2 days = 58 interruptions at 1 h lost each (assumption). The steady-state prediction alone is +15%',
    accounting: {
      ramp: { from_batch: 3072, to_batch: 15360, ramp_tokens: 469e9, total_tokens: 14.8e12 },
      goodput: goodputFromInterruptions(2048, DSV3_PRETRAIN_DAYS, FITTED.goodput_hours_lost.value),
      goodput_why: 'Llama 3 interruption rate (466 per 54 days per 16,384 GPUs) scaled to 2,048 GPUs over the 54.2-day run, 1 h lost per interruption (assumption)',
    },
  },
  {
    id: 'pangu-ultra-moe',
    name: 'Pangu Ultra MoE 718B, ~6K Ascend 910B (final)',
    spec: {
      model: { preset: 'pangu-ultra-moe' },
      hardware: { preset: '910b', devices: 6144, peak_bf16_tflops: PANGU_IMPLIED_PEAK_TFLOPS },
      parallel: { tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, zero: 1, schedule: 'interleaved', ep_overlap: 'adaptive', a2a: 'hierarchical-allgather', recompute: ['moe', 'layernorm'] },
      training: { seq_len: 4096, micro_batch: 2, global_batch: 3072, precision: 'bf16' },
    },
    published: { mfu: 0.3, tokens_per_s: 1.46e6, tokens_per_s_per_device: 1.46e6 / 6144 },
    metric: 'throughput',
    source: 'Pangu Ultra MoE (arXiv 2505.04519): ~6K Ascend NPUs, TP8 PP16 VPP2 EP4, hierarchical EP all-to-all, adaptive pipe overlap, fine-grained recompute + swap; 1.46M tokens/s at 30.0% MFU; micro-batch size 2 and the 61 layers counted as 64 with MTP for the pipeline split (the paper\'s system section as summarised in a public reading note of the PDF, github notes on 2505.04519; the PDF itself could not be read here). MindSpeed (the Ascend Megatron stack) docs: --moe-hierarchical-alltoallv (all-gather over the EP group, all-to-allv inside the TP group) is only supported together with --moe-tp-extend-ep (docs/features/hierarchical-alltoallv.md), and --moe-tp-extend-ep keeps experts whole and spreads them over tp x ep devices (docs/features/tp-extend-ep.md: "the expert TP group splits the number of experts, not the expert parameters"; num_experts divisible by tp*ep)',
    assumptions: '6,144 NPUs (48 DP replicas of 128); "TP8 EP4" with the hierarchical all-to-all read as MindSpeed TP-extend-EP: 256 experts over 8 x 4 = 32 NPUs (8 whole experts each, no expert TP), all-gather over the 4 nodes then all-to-allv in the node; dense BF16 peak 220 TFLOPS: the value the paper\'s own pair (1.46M tokens/s at 30.0% MFU) implies under our FLOP count (6 x active matmul parameters + causal attention, MTP included), the paper states neither its peak nor its FLOP convention (the 910B preset\'s 313 TFLOPS is the widely reported figure, unverified; with it this row is +35%); seq 4K, global batch 3,072 sequences (not stated), micro-batch 2 (as the paper); gradients reduced in fp32 (MindSpeed/Megatron-LM default for bf16); fine-grained recompute modelled as recomputing the MoE block and the norms (the paper also swaps activations to host; not modelled)',
  },
  {
    id: 'pangu-ultra-moe-baseline',
    name: 'Pangu Ultra MoE 718B, 4K Ascend 910B (baseline)',
    spec: {
      model: { preset: 'pangu-ultra-moe' },
      hardware: { preset: '910b', devices: 4096, peak_bf16_tflops: PANGU_IMPLIED_PEAK_TFLOPS },
      parallel: { tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, zero: 1, schedule: 'interleaved', ep_overlap: 'none', a2a: 'flat', recompute: 'full' },
      training: { seq_len: 4096, micro_batch: 2, global_batch: 3072, precision: 'bf16' },
    },
    published: { mfu: 0.189, tokens_per_s: 0.61e6, tokens_per_s_per_device: 0.61e6 / 4096 },
    metric: 'throughput',
    source: 'Pangu Ultra MoE (arXiv 2505.04519): baseline 18.9% MFU, 0.61M tokens/s on 4K NPUs before the EP-communication and memory optimisations',
    assumptions: 'same layout as the final run (TP-extend-EP, experts over 32 NPUs) with flat all-to-all, no EP overlap, full recompute (the optimisations the paper adds); 4,096 NPUs; micro-batch 2 and global batch 3,072 as the final row; the same implied 220 TFLOPS peak (this pair, 0.61M tokens/s at 18.9%, implies 219)',
  },
  {
    id: 'mixtral-8x22b',
    name: 'Mixtral 8x22B, 128 H100 (Megatron-Core, MoE Parallel Folding)',
    spec: {
      model: { preset: 'mixtral-8x22b' },
      hardware: { preset: 'h100', devices: 128 },
      parallel: { tp: 2, pp: 8, vpp: 7, ep: 8, etp: 1, zero: 1, schedule: 'interleaved', recompute: 'none' },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 256, precision: 'bf16' },
    },
    published: { mfu: 0.463 },
    metric: 'mfu',
    source: 'MoE Parallel Folding (arXiv 2504.14960), Mixtral 8x22B on 128 H100: 46.3% MFU',
    assumptions: 'TP2 PP8 (VPP7: seven layers per stage, one per chunk) EP8 ETP1 as folding allows; seq 4K, global batch 256, micro-batch 1, BF16; dropless, max/mean load 1.25 from the global expert_load_cv at one expert per GPU',
  },
  {
    id: 'qwen3-235b-a22b',
    name: 'Qwen3-235B-A22B, 256 H100 (NeMo)',
    spec: {
      model: { preset: 'qwen3-235b-a22b' },
      hardware: { preset: 'h100', devices: 256 },
      parallel: { tp: 2, pp: 8, vpp: 4, ep: 32, etp: 1, zero: 1, schedule: 'interleaved', recompute: 'none', ep_overlap: 'none', a2a: 'flat', tp_overlap: true },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 2048, precision: 'fp8', dispatch_bytes: 2, load_imbalance: 1, grad_precision: 'bf16' },
    },
    published: { tokens_per_s_per_device: 1204 },
    metric: 'throughput',
    source: 'NVIDIA Megatron-Bridge performance summary, 25.09 NeMo container, DGX-H100 (docs/performance-summary-archive.md): Qwen3_235B_a22B (tokendrop), 256 GPUs, GBS 2048, MBS 1, seq 4096, TP2 PP8 CP1 VP4 EP32, GA 128, 1,204 tokens/s/GPU, 178 model TFLOP/s/GPU; its recipe (scripts/performance/configs/qwen3/qwen3_235b_a22b_llm_pretrain.yaml and run_script.py, Megatron-Bridge commit cac49dcd7): recompute_granularity null, apply_moe_token_drop (capacity factor 1.0, expert inputs padded to capacity, alltoall dispatcher), TP comm overlap on, no MoE A2A overlap (enabled only for DeepSeek-V3 on H100 in that release)',
    assumptions: 'gradients reduced in bf16 (NVIDIA\'s Megatron-Bridge performance recipes set ddp.grad_reduce_in_fp32 = False, e.g. the DeepSeek-V3 and Qwen3 perf configs; not checked for this release\'s Qwen3 file); FP8 GEMMs: the 25.09 table has no precision column, but its H100 rows are FP8 (Llama3 70B at 727 model TFLOP/s is 73% of the BF16 peak, impossible in BF16); the FP8 GEMM efficiency is the global (block-scaled) one, so a per-tensor recipe would be slightly faster than modelled; all-to-all payload in BF16 (Megatron\'s alltoall dispatcher sends the BF16 hidden states, TE quantises inside the GEMM); expert load max/mean = 1.0 because token drop pads every expert to exactly its capacity (capacity factor 1.0); flat NCCL all-to-all (EP32 spans 4 nodes)',
  },
  {
    id: 'skywork-moe',
    name: 'Skywork-MoE 146B, 1,536 A800',
    spec: {
      model: { preset: 'skywork-moe' },
      hardware: { preset: 'a800', devices: 1536 },
      parallel: { tp: 4, pp: 12, ep: 4, etp: 1, zero: 1, schedule: '1f1b', recompute: 'none' },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 1536, precision: 'bf16' },
    },
    published: { mfu: 0.38 },
    metric: 'mfu',
    source: 'Skywork-MoE technical report (arXiv 2406.06563): 192 nodes of 8 A800 (1,536 GPUs), 38% MFU, expert data parallelism, uneven pipeline split',
    assumptions: 'TP4 PP12 EP4 ETP1, seq 4K, global batch 1,536 sequences (6M tokens), micro-batch 1, 1F1B, max/mean load 1.10 from the global expert_load_cv; gradients reduced in fp32 (Megatron-LM\'s default for bf16; the report does not say: with bf16 reduction the row would be 2 points higher)',
  },
  {
    id: 'llama3.1-405b',
    name: 'Llama 3.1 405B, 16,384 H100 (dense anchor)',
    spec: {
      model: { preset: 'llama3.1-405b' },
      hardware: { preset: 'h100', devices: 16384 },
      parallel: { tp: 8, pp: 16, vpp: 4, cp: 1, zero: 2, schedule: 'interleaved', recompute: 'none', tp_overlap: false },
      training: { seq_len: 8192, micro_batch: 1, global_batch: 2048, precision: 'bf16' },
    },
    published: { mfu: 0.41 },
    metric: 'mfu',
    source: 'The Llama 3 Herd of Models (arXiv 2407.21783) Table 4: 16,384 H100, TP8 CP1 PP16 DP128, seq 8,192, 16M tokens per batch, 400 TFLOPs/GPU, 41% BF16 MFU; sec. 3.3.2: FSDP sharding optimizer states and gradients but not resharding parameters after the forward (ZeRO-2), FP32 gradient accumulation and FP32 reduce-scatter, an interleaved schedule, no activation checkpointing at 8K sequences',
    assumptions: 'VPP4 and no TP communication overlap (the paper states neither); micro-batch 1 (batch per DP rank 16 -> 16 micro-batches).',
  },
];

/**
 * Whole-run throughput of a row whose published figure is cost accounting: tokens / (time at steady state over the
 * tokens after the ramp + time over the ramp, each batch size simulated) x goodput.
 */
export function accountedThroughput(row: CalibrationRow, steady: number): number {
  const a = row.accounting;
  if (!a) return steady;
  let time = 0;
  let tokens = 0;
  if (a.ramp) {
    const n = 16;
    const dp = resolveSpec(structuredClone(row.spec), row.id).parallel.dp;
    const raw = row.spec as { training: Record<string, unknown> };
    const mb = (raw.training.micro_batch as number | undefined) ?? 1;
    for (let i = 0; i < n; i++) {
      const b = a.ramp.from_batch + ((i + 0.5) / n) * (a.ramp.to_batch - a.ramp.from_batch);
      const unit = dp * mb;
      const batch = Math.max(unit, Math.round(b / unit) * unit);
      const spec = structuredClone(row.spec) as { training: Record<string, unknown> };
      spec.training = { ...spec.training, global_batch: batch };
      const r = simulate(resolveSpec(spec as Record<string, unknown>, row.id));
      time += a.ramp.ramp_tokens / n / r.tokens_per_s_per_device;
    }
    tokens = a.ramp.total_tokens;
    time += (a.ramp.total_tokens - a.ramp.ramp_tokens) / steady;
  } else {
    tokens = 1;
    time = 1 / steady;
  }
  return (tokens / time) * a.goodput;
}
