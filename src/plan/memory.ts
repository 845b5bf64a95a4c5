/**
 * Peak memory per device (the first pipeline stage, which holds the most activations).
 *
 * Model states (Rajbhandari et al. 2020, ZeRO), per local parameter:
 *   weights 2 B (bf16), gradients 4 B (fp32 grad buffer: Megatron-LM forces accumulate_allreduce_grads_in_fp32 for
 *   bf16 training, arguments.py) or 2 B with training.grad_precision bf16 (--grad-reduce-in-bf16),
 *   optimizer: fp32 master 4 B + Adam m, v (4 + 4 B fp32, or 2 + 2 B bf16 as DeepSeek-V3 sec. 3.3.3).
 *   ZeRO-1 shards the optimizer, ZeRO-2 also the gradients, ZeRO-3 also the weights, over the data-parallel
 *   group of each parameter: dp*cp for dense parameters, the expert-data-parallel group tp*cp*dp/(ep*etp) for
 *   expert parameters (Megatron-Core distributed optimizer).
 * Local parameters: dense ones (attention, dense FFN, shared experts, router) split by tp; routed experts
 *   split over ep (whole experts) and etp (expert width); layers split over pp; the embedding (first stage) or
 *   LM head + MTP modules (last stage), whichever is larger, on the stage we report.
 *
 * Activations per token per layer with sequence parallelism and FlashAttention (Korthikanti et al. 2022,
 * "Reducing Activation Recomputation", Table 2, without the s^2 softmax term that flash removes and without
 * dropout masks), in bytes, each tagged with the module whose recomputation frees it:
 *   layernorm inputs 2h (x2; residual additions store nothing), QKV / MLA projections' outputs, flash output 2*n*d_v (+ fp32 lse),
 *   dense FFN: fc1 input 2h, fc1 output 4f, activation output 2f;
 *   MoE: router input 2h + fp32 probabilities 8E, per routed row: expert input 2h (1h when FP8), fc1 output 4I/etp,
 *   activation output 2I/etp (1I when FP8), expert output 2h; shared experts as a dense FFN of width s*I.
 * FP8 training (DeepSeek-V3 sec. 3.3.3) also caches the attention output and, when the SwiGLU is recomputed, its input in FP8.
 * Full recompute keeps only each layer's input (2h per token). Offload swaps a fraction to host memory.
 * The plan fits when the total is at most USABLE_HBM_FRACTION of HBM (transient backward buffers not modelled).
 * Communication buffers: the all-to-all send/receive buffers of one layer, the TP all-gather buffer, two DP
 * buckets (Megatron's 40M-element default); plus a fixed runtime reserve (CUDA context, NCCL, allocator slack).
 */
import type { ModelShape } from './models.js';
import { paramCounts, sharedWidth } from './flops.js';
import { inFlight, paramCopies } from './schedule.js';
import { loadImbalance } from './balance.js';
import type { Parallel, RecomputeModule, Training } from './spec.js';

/** bytes per gradient element in the grad buffer and the DP reduction */
export function gradBytes(t: Training): number {
  return t.grad_precision === 'bf16' ? 2 : 4;
}
/**
 * Fraction of HBM a plan may use. 1.0: the published runs of the calibration table sit at 90-99% of HBM in this
 * model (it ignores some of their memory tricks: early buffer release, uneven first/last stages), so a safety
 * margin would call some of them infeasible. Lower it for a conservative plan.
 */
export const USABLE_HBM_FRACTION = 1.0;
export const RUNTIME_RESERVED_BYTES = 3 * 2 ** 30; // assumption: CUDA context + NCCL/HCCL buffers + fragmentation

export interface MemoryBreakdown {
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  comm_buffers: number;
  reserved: number;
  total: number;
}

export function recomputeModules(r: Parallel['recompute']): Set<RecomputeModule | 'all'> {
  if (r === 'none') return new Set();
  if (r === 'full') return new Set(['all']);
  if (r === 'selective') return new Set(['core_attn']);
  return new Set(r);
}

export interface LocalParams {
  dense: number;
  expert: number;
  moeLayersPerStage: number;
  layersPerStage: number;
}

export function localParams(m: ModelShape, par: Parallel): LocalParams {
  const pc = paramCounts(m);
  const layersPerStage = m.layers / par.pp;
  const moeLayersPerStage = pc.moe_layers / par.pp;
  const denseLayersPerStage = m.dense_layers / par.pp;
  // attention on every layer; the router and shared experts only on MoE layers (the leading dense layers have a dense
  // FFN instead, counted below)
  const perLayerDense = pc.attention;
  const perMoeLayerDense = pc.shared + pc.router;
  const mtpExperts = m.experts > 0 ? m.mtp_layers * m.experts * pc.expert : 0;
  // tied embeddings with pp > 1: the last stage keeps its own copy of the embedding for the LM head (Megatron-Core
  // share_embeddings_and_output_weights; the copies' gradients are all-reduced); with pp = 1 the one copy serves both
  const head = m.tied_embeddings && par.pp > 1 ? pc.embedding : pc.head;
  const last = head + pc.mtp - mtpExperts;
  // the embedding sits on the first stage, the LM head and MTP modules on the last; with pp > 1 we report the
  // larger of the two stages, with pp = 1 the one stage holds both
  const lastIsLarger = last > pc.embedding;
  const edge = par.pp === 1 ? pc.embedding + last : Math.max(pc.embedding, last);
  const edgeExperts = par.pp === 1 || lastIsLarger ? mtpExperts : 0;
  const dense = (layersPerStage * perLayerDense + moeLayersPerStage * perMoeLayerDense + denseLayersPerStage * pc.dense_ffn + edge) / par.tp;
  const expert = (moeLayersPerStage * m.experts * pc.expert + edgeExperts) / (par.ep * par.etp);
  return { dense, expert, moeLayersPerStage, layersPerStage };
}

/** Activation bytes per token per layer on one device, [dense layer, MoE layer]. */
export function activationBytesPerToken(m: ModelShape, par: Parallel, t: Training): [number, number] {
  const rc = recomputeModules(par.recompute);
  const h = m.hidden;
  const tp = par.tp;
  if (rc.has('all')) return [(2 * h) / tp, (2 * h) / tp];
  const keep = (mod: RecomputeModule | 'none', bytes: number) => (mod !== 'none' && rc.has(mod) ? 0 : bytes);
  const n = m.heads;
  // FP8 training caches the attention output (the output projection's input) in FP8 (DeepSeek-V3 sec. 3.3.3)
  const fp8Out = t.precision === 'fp8' ? 1 : 2;
  let attnProj: number;
  let flashOut: number;
  if (m.attention === 'mla') {
    const dqk = m.qk_nope_head_dim + m.qk_rope_head_dim;
    // q_b / kv_b (up-projection) outputs are freed by recomputing them (DeepSeek-V3 sec. 3.2.3)
    // down-projection input on the sequence-parallel shard (h/tp per token of the TP group), the gathered latents whole
    attnProj = (2 * h) / tp + 2 * (m.q_lora_rank + m.kv_lora_rank + m.qk_rope_head_dim) + keep('mla_up', (2 * n * (2 * dqk + m.v_head_dim)) / tp);
    flashOut = (fp8Out * n * m.v_head_dim + 4 * n) / tp;
  } else {
    attnProj = (2 * h + 2 * (n + 2 * m.kv_heads) * m.head_dim) / tp;
    flashOut = (fp8Out * n * m.head_dim + 4 * n) / tp;
  }
  // (residual additions store nothing for their backward)
  const attnBlock = keep('layernorm', (2 * h) / tp) + keep('attention', keep('core_attn', attnProj + flashOut));
  const dense = keep('layernorm', (2 * h) / tp) + keep('mlp', (2 * h + 4 * m.dense_ffn + 2 * m.dense_ffn) / tp);
  const rowsPerToken = (m.top_k * par.etp * loadImbalance(m, par, t)) / tp; // rows through this device's experts per token of the TP group
  const I = m.expert_ffn / par.etp;
  // FP8 training caches the experts' GEMM inputs in FP8 (DeepSeek-V3 report sec. 3.3.3)
  const inB = t.precision === 'fp8' ? 1 : 2;
  // with the SwiGLU recomputed under FP8, its input (fc1's output) is cached in FP8 too (DeepSeek-V3 sec. 3.3.3)
  const fc1Out = t.precision === 'fp8' && rc.has('moe_act') ? 2 * I : 4 * I;
  const perRow = keep('moe', inB * h + 2 * h + fc1Out) + keep('moe_act', keep('moe', inB * I));
  const shared = m.shared_experts > 0 ? keep('moe', (2 * h + 6 * sharedWidth(m)) / tp) : 0;
  const moe = keep('layernorm', (2 * h) / tp) + keep('moe', (2 * h) / tp + 8 * m.experts / tp) + rowsPerToken * perRow + shared;
  return [attnBlock + dense, attnBlock + moe];
}

/** Activation bytes one micro-batch leaves on the device (first stage, before offload). */
export function activationBytesPerMicrobatch(m: ModelShape, par: Parallel, t: Training): number {
  const lp = localParams(m, par);
  const [aDense, aMoe] = activationBytesPerToken(m, par, t);
  return ((t.micro_batch * t.seq_len) / par.cp) * ((m.dense_layers / par.pp) * aDense + lp.moeLayersPerStage * aMoe);
}

export function memoryPerDevice(m: ModelShape, par: Parallel, t: Training, microbatches: number): MemoryBreakdown {
  const lp = localParams(m, par);
  const copies = paramCopies(par.schedule);
  const denseShard = par.dp * par.cp;
  const expertShard = Math.max(1, (par.tp * par.cp * par.dp) / (par.ep * par.etp));
  const optBytes = t.optimizer_precision === 'fp32' ? 12 : 8;
  const shard = (p: number, stage: number, n: number) => (par.zero >= stage ? p / n : p);
  const weights = copies * 2 * (shard(lp.dense, 3, denseShard) + shard(lp.expert, 3, expertShard));
  const gradients = copies * gradBytes(t) * (shard(lp.dense, 2, denseShard) + shard(lp.expert, 2, expertShard));
  // a second parameter copy (DualPipe) is one more data-parallel replica of those layers: with ZeRO >= 1 its optimizer
  // state shards over both copies, so the per-device optimizer memory does not double
  const optCopies = par.zero >= 1 ? 1 : copies;
  const optimizer = optCopies * optBytes * (shard(lp.dense, 1, denseShard) + shard(lp.expert, 1, expertShard));
  const tokensMb = (t.micro_batch * t.seq_len) / par.cp;
  const [aDense, aMoe] = activationBytesPerToken(m, par, t);
  const denseLayers = m.dense_layers / par.pp;
  const perMb = tokensMb * (denseLayers * aDense + lp.moeLayersPerStage * aMoe);
  const mbs = inFlight(par.schedule, par.pp, par.vpp, microbatches);
  // the last stage also keeps fp32 logits of one micro-batch (and MTP's) for the loss
  const logits = (tokensMb * m.vocab * 4 * (1 + m.mtp_layers)) / par.tp;
  const activations = perMb * mbs * (1 - par.offload) + (par.pp === 1 ? logits : 0);
  const a2aRows = (tokensMb / par.tp) * m.top_k * par.etp * loadImbalance(m, par, t);
  const comm_buffers = (m.experts > 0 && par.ep > 1 ? 2 * a2aRows * m.hidden * 2 : 0) + tokensMb * m.hidden * 2 + 2 * 40e6 * 4;
  const reserved = RUNTIME_RESERVED_BYTES;
  const lastStage = par.pp > 1 ? (perMb * Math.min(mbs, 1) * (1 - par.offload) + logits) : 0;
  const acts = Math.max(activations, lastStage);
  const total = weights + gradients + optimizer + acts + comm_buffers + reserved;
  return { weights, gradients, optimizer, activations: acts, comm_buffers, reserved, total };
}
