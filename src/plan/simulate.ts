/**
 * Step-time simulation of one training step of an (MoE) transformer on a cluster.
 *
 * One micro-batch through one device's share of one layer (tokens T = micro_batch * seq / cp per TP group,
 * T/tp per device under sequence parallelism):
 *   attention  QKV (or MLA down/up) projections, FlashAttention (causal), output projection; TP all-gather +
 *              reduce-scatter around it (Korthikanti et al. 2022)
 *   CP         ring attention: K/V blocks passed around the cp ranks, exposed beyond the attention compute
 *   dense FFN  SwiGLU, TP-split
 *   MoE        route -> dispatch -> experts -> combine (the engine's phase names):
 *              route: router GEMM + top-k; dispatch: permute + EP all-to-all (+ ETP all-gather);
 *              experts: grouped GEMMs over the E/ep local experts, rows = T/tp * k * etp * skew (the most-loaded
 *              rank), and the shared experts as a TP-split dense FFN; combine: EP all-to-all back + unpermute.
 *              The breakdown reports the MoE blocks' time under these four names (Breakdown below).
 * Kernel times come from op.ts' roofline (training kernels: fused permutation, framework launch overhead).
 * Backward = dgrad + wgrad for every GEMM, 2.5x for flash, plus the recomputed forward of whatever
 * `recompute` names. The step:
 *   step = m (t_f + t_b) + bubble(schedule) + exposed PP p2p + exposed DP + optimizer,
 * m = global_batch / (dp * micro_batch) micro-batches per pipeline, t_f/t_b per micro-batch per stage with exposed
 * TP and EP communication folded in, stages balanced (layers, embedding and head spread evenly: the
 * published runs all rebalance their first/last stages; whole-layer granularity is not modelled, docs/planner.md).
 * EP overlap (exposed = max(c - eta * compute, (1 - eta) c) per layer, fwd+bwd):
 *   none: eta = 0; adaptive (Pangu's adaptive pipe overlap): eta = EP_OVERLAP.adaptive;
 *   dualpipe (DeepSeek-V3's forward/backward chunk pairing): eta = EP_OVERLAP.dualpipe.
 * Offload: the swapped fraction of a micro-batch's activations goes out over the host link during its forward and
 * back during its backward; the part longer than that compute is exposed.
 * DP: gradient reduce-scatter (all-reduce at ZeRO-0) and parameter all-gather, overlapped with the last
 * micro-batch's backward / first forward of each model chunk (Megatron --overlap-grad-reduce /
 * --overlap-param-gather; schedule.ts dpExposed), gradients in fp32 unless training.grad_precision is bf16.
 * MFU = tokens/s * modelFlopsPerToken / (devices * peak_bf16); HFU adds recomputed FLOPs.
 */
import { allGather, allReduce, epAllToAll, groupBw, p2p, reduceScatter } from './comm.js';
import { attnCoreFlopsPerToken, attnHeadDims, modelFlopsPerToken, paramCounts, sharedWidth } from './flops.js';
import { FITTED } from './fitted.js';
import type { Hardware } from './hardware.js';
import { gradBytes, USABLE_HBM_FRACTION, activationBytesPerMicrobatch, memoryPerDevice, recomputeModules, localParams, type MemoryBreakdown } from './memory.js';
import type { ModelShape } from './models.js';
import { kernelsTime, launchesOf, linearFwdBwd, MOE_PHASES, type Kernel, type MoePhase, type OpConstants, OP_CONSTANTS } from './op.js';
import { bubbleTime, dpExposed, pairedChunkExposed, stageSplit, type EpStages, type StageSplit } from './schedule.js';
import { loadImbalance } from './balance.js';
import { MoekitError } from '../util/errors.js';
import type { Parallel, Spec, Training } from './spec.js';

/** Kernel constants inside a training framework: fused permute/unpermute (no atomic scatter), launch overhead hidden by async queues. */
export function trainConstants(hw: Hardware): OpConstants {
  // attention: Transformer Engine's fused attention is cuDNN's (its default backend on Hopper): the cuDNN SDPA
  // efficiencies measured on the H200 (docs/plan-kernels-h200.json, fit-kernels.ts), not eager flash's
  return { ...OP_CONSTANTS, scatter_eff: hw.bw_eff, launch_s: FITTED.launch_train_s.value, flash_fwd_eff: FITTED.sdpa_cudnn_fwd_eff.value, flash_bwd_eff: FITTED.sdpa_cudnn_bwd_eff.value };
}

/**
 * Host time per kernel inside the training framework (Megatron-Core + Transformer Engine: Python module calls, FP8
 * amax/scale bookkeeping, autograd), per kernel of the simulator's kernel lists: fitted on the reference fit rows
 * (reference.ts, fitted.ts host_kernel_s). A layer's forward (backward) takes max(GPU time, host time): the host
 * issues asynchronously and the slower of the two paces the stream. With CUDA graphs (the recipes' cuda_graphs) a
 * captured layer costs one graph launch; dropless MoE blocks are not captured (their shapes change every step).
 */
export const HOST_KERNEL_S = (): number => FITTED.host_kernel_s.value;
/** GPU seconds per kernel inside a replayed CUDA graph (measured: fitted.ts graph_launch_s) */
export const GRAPH_LAUNCH_S = (): number => FITTED.graph_launch_s.value;

/** Fraction of EP all-to-all time hidden behind compute, per ep_overlap mode (chosen, not measured: fitted.ts says how). */
export const EP_OVERLAP = { none: 0, adaptive: FITTED.ep_overlap_adaptive.value, dualpipe: FITTED.ep_overlap_dualpipe.value } as const;
/**
 * DualPipe reserves SMs for communication while it overlaps (DeepSeek-V3 report sec. 3.2.2: 20 of the H800's 132 SMs),
 * so the MoE layers' compute runs on the rest: their compute time is scaled by 132/112.
 */
export const DUALPIPE_COMM_SM_FRACTION = 20 / 132;
/**
 * DeepEP's kernels run on SMs of their own (Megatron-Core's moe_deepep_num_sms, default 20): while the flex
 * dispatcher's all-to-all overlaps compute (ep_overlap a2a-1f1b), the MoE layers' compute runs on the other
 * 112 of an H100's 132 SMs, as under DualPipe.
 */
export const DEEPEP_COMM_SM_FRACTION = 20 / 132;
/** Fraction of TP collective time left exposed with --tp-comm-overlap (chosen, not measured: fitted.ts), and without. */
export const TP_EXPOSED = { overlap: FITTED.tp_exposed_overlap.value, none: 1 } as const;

/**
 * Seconds per step; the entries sum to the step time. The MoE blocks' time is under the engine's phase names
 * (src/moe: router.ts route, dispatch.ts dispatch and combineRows, experts.ts experts); `compute` is the compute
 * outside the MoE blocks. Before the phases were split out, `compute` also held the MoE blocks' compute and
 * `ep_comm` the exposed EP all-to-all, which is now inside `dispatch` and `combine` (docs/planner.md).
 */
export interface Breakdown {
  /** forward + backward compute outside the MoE blocks: attention, dense FFNs, norms, LM head(s) */
  compute: number;
  /** router GEMM + top-k, forward + backward */
  route: number;
  /** permutation of the rows to their experts, the exposed EP dispatch all-to-all (and ETP all-gather); the backward of both */
  dispatch: number;
  /** routed experts' grouped GEMMs and activation, and the shared experts' FFN, forward + backward */
  experts: number;
  /** unpermute (weighted sum back to tokens), the exposed EP combine all-to-all (and ETP reduce-scatter); the backward of both */
  combine: number;
  /** recomputed forwards (every module the recompute setting names, MoE phases included) */
  recompute: number;
  tp_comm: number;
  cp_comm: number;
  /** host (framework) time per kernel beyond the GPU time of each layer: small layers wait for the host (HOST_KERNEL_S) */
  host: number;
  pp_comm: number;
  dp_comm: number;
  bubble: number;
  /** activation swap to host memory not hidden behind compute */
  offload: number;
  optimizer: number;
}

export interface SimResult {
  step_time_s: number;
  tokens_per_s: number;
  tokens_per_s_per_device: number;
  mfu: number;
  hfu: number;
  memory_gib_per_device: number;
  memory_breakdown_gib: Record<keyof MemoryBreakdown, number>;
  fits: boolean;
  breakdown: Breakdown;
  microbatches: number;
  model_flops_per_token: number;
  parallel: Parallel;
  /**
   * Whole layers per stage (a diagnostic: the step time assumes evenly balanced stages, as the calibrated runs
   * rebalance theirs; busiest_over_mean > 1 is the extra time the busiest stage would add to every micro-batch)
   */
  stage_split: StageSplit;
}

const mem = (name: string, bytes: number): Kernel => ({ kind: 'mem', name, bytes });

/** f, b, rc: seconds forward, backward, recomputed forward; flopsF: recomputed FLOPs; kf, kb: kernels forward, backward (+ recomputed) */
interface Part { f: number; b: number; rc: number; flopsF: number; kf: number; kb: number }

function part(fwd: Kernel[], bwd: Kernel[], hw: Hardware, c: OpConstants, recomputed: boolean): Part {
  const f = kernelsTime(fwd, hw, c);
  let flopsF = 0;
  for (const k of fwd) if (k.kind === 'gemm' || k.kind === 'flash') flopsF += k.flops;
  return { f, b: kernelsTime(bwd, hw, c), rc: recomputed ? f : 0, flopsF: recomputed ? flopsF : 0, kf: launchesOf(fwd), kb: launchesOf(bwd) + (recomputed ? launchesOf(fwd) : 0) };
}

function sum(parts: Part[]): Part {
  const s = { f: 0, b: 0, rc: 0, flopsF: 0, kf: 0, kb: 0 };
  for (const p of parts) { s.f += p.f; s.b += p.b; s.rc += p.rc; s.flopsF += p.flopsF; s.kf += p.kf; s.kb += p.kb; }
  return s;
}

interface LayerCost {
  comp: Part;
  /** the MoE block's compute by engine phase (part of comp; zero for a dense layer) */
  phases: Record<MoePhase, Part>;
  tp: number;
  tpF: number;
  ep: number;
  epRecompute: number;
  /** share of ep + epRecompute that belongs to the dispatch phase (the rest is combine's) */
  epDispatchShare: number;
  /** forward EP communication of one layer (dispatch + combine, ETP collectives): what the shared experts can hide */
  epF: number;
  /** the shared experts' forward compute, seconds */
  sharedF: number;
  /**
   * the EP communication by the stage of Megatron-Core's combined 1F1B schedule it runs in: the forward's dispatch and
   * combine, and the backward's (combine's gradient first, then dispatch's; a recomputed forward's all-to-alls with them)
   */
  epStages: EpStages;
  cp: number;
  /** kernels of the MoE block's routed part (dispatch, experts, combine: not CUDA-graph-captured when dropless) */
  moeKernels: { f: number; b: number };
}

const ZERO_PART: Part = { f: 0, b: 0, rc: 0, flopsF: 0, kf: 0, kb: 0 };

/**
 * One layer's cost. `c` prices the kernels of the layer; `cr` those of the MoE block's routed part (dispatch, experts,
 * combine), which differ when the layer is captured in a CUDA graph but a dropless MoE block is not (its shapes change
 * every step).
 */
function layerCost(m: ModelShape, hw: Hardware, par: Parallel, t: Training, moe: boolean, c: OpConstants, cr: OpConstants = c): LayerCost {
  const rc = recomputeModules(par.recompute);
  const all = rc.has('all');
  const has = (x: 'attention' | 'core_attn' | 'mla_up' | 'mlp' | 'moe' | 'moe_act' | 'layernorm') => all || rc.has(x);
  const e = t.precision === 'fp8' ? 1 : 2;
  const tp = par.tp;
  const T = (t.micro_batch * t.seq_len) / par.cp;
  const Tsp = T / tp;
  const h = m.hidden;
  const n = m.heads;
  const parts: Part[] = [];
  // attention projections
  const lin: { fwd: Kernel[]; bwd: Kernel[] }[] = [];
  if (m.attention === 'mla') {
    const dqk = m.qk_nope_head_dim + m.qk_rope_head_dim;
    const up: { fwd: Kernel[]; bwd: Kernel[] }[] = [];
    if (m.q_lora_rank > 0) {
      // MLA down-projections run on the sequence-parallel shard (T/tp tokens, weights duplicated across TP); the
      // compressed latents are then all-gathered for the column-parallel up-projections (Megatron-Core
      // multi_latent_attention.py: "linear_q_down_proj is Linear: q_compressed: [s / TP, b, q_lora_rank]")
      lin.push(linearFwdBwd('q_a', Tsp, m.q_lora_rank, h, 1, e));
      up.push(linearFwdBwd('q_b', T, (n * dqk) / tp, m.q_lora_rank, 1, e));
    } else lin.push(linearFwdBwd('q', T, (n * dqk) / tp, h, 1, e));
    lin.push(linearFwdBwd('kv_a', Tsp, m.kv_lora_rank + m.qk_rope_head_dim, h, 1, e));
    up.push(linearFwdBwd('kv_b', T, (n * (m.qk_nope_head_dim + m.v_head_dim)) / tp, m.kv_lora_rank, 1, e));
    lin.push(linearFwdBwd('o', T, h, (n * m.v_head_dim) / tp, 1, e));
    parts.push(part(up.flatMap((l) => l.fwd), up.flatMap((l) => l.bwd), hw, c, has('attention') || has('mla_up')));
  } else {
    lin.push(linearFwdBwd('qkv', T, ((n + 2 * m.kv_heads) * m.head_dim) / tp, h, 1, e));
    lin.push(linearFwdBwd('o', T, h, (n * m.head_dim) / tp, 1, e));
  }
  parts.push(part(lin.flatMap((l) => l.fwd), lin.flatMap((l) => l.bwd), hw, c, has('attention')));
  const flashF = (T * attnCoreFlopsPerToken(m, t.seq_len)) / tp;
  const flashPart = part([{ kind: 'flash', name: 'flash', flops: flashF, bwd: false }], [{ kind: 'flash', name: 'flash.bwd', flops: 2.5 * flashF, bwd: true }], hw, c, has('attention') || has('core_attn'));
  parts.push(flashPart);
  // context parallelism (ring attention, Megatron-Core's p2p CP): each rank passes its K/V block around the ring,
  // cp-1 steps forward, and K/V plus their gradients backward; it overlaps the blocks' attention compute
  let cpExposed = 0;
  if (par.cp > 1) {
    const [dqk, dv] = attnHeadDims(m);
    const kvHeads = m.attention === 'mla' ? n : m.kv_heads;
    const kvBytes = (T * kvHeads * (dqk + dv) * 2) / Math.min(tp, kvHeads);
    const step = kvBytes / groupBw(hw, par.cp, tp) + hw.coll_latency;
    const fwd = (par.cp - 1) * step;
    cpExposed = Math.max(0, fwd - flashPart.f) + Math.max(0, 2 * fwd - flashPart.b);
  }
  // norms, residuals, rope: ~24 bytes per hidden element per token forward, twice that backward
  parts.push(part([mem('elementwise', 24 * Tsp * h)], [mem('elementwise.bwd', 48 * Tsp * h)], hw, c, has('layernorm')));
  // TP collectives (sequence parallel): all-gather + reduce-scatter of the [T, h] activation per block, fwd and bwd
  const blockColl = tp > 1 ? allGather(hw, T * h * 2, tp, 1) + reduceScatter(hw, T * h * 2, tp, 1) : 0;
  const tpExposed = par.tp_overlap ? TP_EXPOSED.overlap : TP_EXPOSED.none;
  // MLA gathers its compressed latents (q_lora + kv_lora + rope wide) instead of the hidden state
  const latent = m.q_lora_rank + m.kv_lora_rank + m.qk_rope_head_dim;
  const attnColl = m.attention === 'mla' && m.q_lora_rank > 0 && tp > 1
    ? allGather(hw, T * latent * 2, tp, 1) + reduceScatter(hw, T * h * 2, tp, 1) : blockColl;
  let tpF = attnColl;
  let ep = 0;
  let epRecompute = 0;
  let epDispatchShare = 0;
  let epFwd = 0;
  let sharedF = 0;
  let epStages: EpStages = { dF: 0, cF: 0, dB: 0, cB: 0 };
  const moeKernels = { f: 0, b: 0 };
  const phases: Record<MoePhase, Part> = { route: ZERO_PART, dispatch: ZERO_PART, experts: ZERO_PART, combine: ZERO_PART };
  if (!moe) {
    const f1 = linearFwdBwd('fc1', T, (2 * m.dense_ffn) / tp, h, 1, e);
    const f2 = linearFwdBwd('fc2', T, h, m.dense_ffn / tp, 1, e);
    parts.push(part([...f1.fwd, mem('swiglu', (10 * T * m.dense_ffn) / tp), ...f2.fwd], [...f1.bwd, mem('swiglu.bwd', (20 * T * m.dense_ffn) / tp), ...f2.bwd], hw, c, has('mlp')));
    tpF += blockColl;
  } else {
    const E = m.experts;
    const k = m.top_k;
    const skew = loadImbalance(m, par, t);
    const R = Tsp * k * par.etp * skew;
    const I = m.expert_ffn / par.etp;
    const localE = E / par.ep;
    // route: router GEMM + top-k
    const router = linearFwdBwd('route.router', Tsp, E, h);
    const route = part([...router.fwd, mem('route.topk', 20 * Tsp * E)], [...router.bwd, mem('route.topk.bwd', 20 * Tsp * E)], hw, c, has('moe'));
    // dispatch (permute) and combine (unpermute), fused kernels
    const dispatch = part([mem('dispatch.permute', 4 * R * h)], [mem('dispatch.permute.bwd', 4 * R * h)], hw, cr, has('moe'));
    const combine = part([mem('combine.unpermute', 4 * R * h + 2 * Tsp * h)], [mem('combine.unpermute.bwd', 6 * R * h)], hw, cr, has('moe'));
    // experts: the routed experts' grouped GEMMs and activation, and the shared experts (the engine runs both with experts.ts)
    // Transformer Engine's GroupedLinear runs one GEMM (and, in FP8, one quantisation) per local expert
    // (transformer_engine/pytorch/module/grouped_linear.py: general_grouped_gemm over the m_splits): localE launches
    const perExpert = (l: { fwd: Kernel[]; bwd: Kernel[] }) => ({ fwd: l.fwd.map((k) => ({ ...k, launches: localE })), bwd: l.bwd.map((k) => ({ ...k, launches: localE })) });
    const w13 = perExpert(linearFwdBwd('experts.w13', R, 2 * I, h, localE, e));
    const w2 = perExpert(linearFwdBwd('experts.w2', R, h, I, localE, e));
    const experts = [
      part(w13.fwd, w13.bwd, hw, cr, has('moe')),
      part([mem('experts.swiglu', 10 * R * I)], [mem('experts.swiglu.bwd', 20 * R * I)], hw, cr, has('moe') || has('moe_act')),
      part(w2.fwd, w2.bwd, hw, cr, has('moe')),
    ];
    if (m.shared_experts > 0) {
      const sI = sharedWidth(m);
      const s1 = linearFwdBwd('experts.shared.fc1', T, (2 * sI) / tp, h, 1, e);
      const s2 = linearFwdBwd('experts.shared.fc2', T, h, sI / tp, 1, e);
      const sh = part([...s1.fwd, mem('experts.shared.swiglu', (10 * T * sI) / tp), ...s2.fwd], [...s1.bwd, mem('experts.shared.swiglu.bwd', (20 * T * sI) / tp), ...s2.bwd], hw, c, has('moe'));
      sharedF = sh.f;
      experts.push(sh);
      tpF += blockColl;
    }
    for (const p of [dispatch, ...experts.slice(0, 3), combine]) { moeKernels.f += p.kf; moeKernels.b += p.kb; }
    phases.route = route;
    phases.dispatch = dispatch;
    phases.experts = sum(experts);
    phases.combine = combine;
    parts.push(route, dispatch, ...experts, combine);
    // EP all-to-all: dispatch (dispatch_bytes) + combine (bf16) forward; their gradients (bf16) backward
    const a = { tokens: Tsp, hidden: h, top_k: k, ep: par.ep, stride: par.etp, skew, hierarchical: par.a2a === 'hierarchical', nodeLimit: t.node_limit, allgatherInner: par.a2a === 'hierarchical-allgather' ? tp : undefined };
    // allgather dispatcher: every rank gathers the EP group's tokens (all of them, whatever their routing) and keeps
    // its experts' rows; the combine reduce-scatters the partial outputs back (Megatron MoEAllGatherTokenDispatcher)
    const agDisp = (bytes: number) => allGather(hw, par.ep * Tsp * h * bytes, par.ep, par.etp);
    const disp = par.dispatcher === 'allgather' ? agDisp(t.dispatch_bytes) : epAllToAll(hw, { ...a, bytes: t.dispatch_bytes });
    const comb = par.dispatcher === 'allgather' ? agDisp(2) : epAllToAll(hw, { ...a, bytes: 2 });
    // ETP: rows all-gathered before and reduce-scattered after the experts within the etp group
    const etpColl = par.etp > 1 ? allGather(hw, R * h * 2, par.etp, 1) + reduceScatter(hw, R * h * 2, par.etp, 1) : 0;
    const epF = disp + comb + etpColl;
    const epB = 2 * comb + etpColl;
    ep = epF + epB;
    epFwd = epF;
    if (has('moe')) epRecompute = epF;
    // dispatch's share: its all-to-all and the ETP all-gather forward (again when recomputed), and its gradient's
    // all-to-all (bf16, combine-sized) and reduce-scatter backward; the rest (combine's all-to-all and the ETP
    // reduce-scatter forward, their gradients backward) is combine's
    const dispF = disp + etpColl / 2;
    const dispatchComm = dispF + comb + etpColl / 2 + (has('moe') ? dispF : 0);
    epDispatchShare = ep + epRecompute > 0 ? dispatchComm / (ep + epRecompute) : 0;
    const combF = comb + etpColl / 2;
    epStages = { dF: dispF, cF: combF, dB: comb + etpColl / 2 + (has('moe') ? dispF : 0), cB: comb + etpColl / 2 + (has('moe') ? combF : 0) };
  }
  const comp = sum(parts);
  return { comp, phases, tp: 2 * tpF * tpExposed, tpF: tpF * tpExposed, ep, epRecompute, epDispatchShare, epF: epFwd, sharedF, epStages, cp: cpExposed, moeKernels };
}

export interface SimOptions {
  /** kernel constants (default: trainConstants(hardware)) */
  constants?: OpConstants;
  /** host seconds per kernel (default: HOST_KERNEL_S(), fitted.ts host_kernel_s); the reference fit varies it */
  hostKernelS?: number;
  /** GPU seconds per kernel launch inside the framework (default: fitted.ts launch_train_s); the reference fit varies it */
  launchS?: number;
  /** GPU seconds per kernel inside a captured CUDA graph (default: fitted.ts graph_launch_s, measured) */
  graphLaunchS?: number;
}

export function simulate(spec: Pick<Spec, 'model' | 'hardware' | 'devices' | 'parallel' | 'training'>, opts: SimOptions = {}): SimResult {
  const { model: m, hardware: hw, parallel: par, training: t } = spec;
  const c0 = opts.constants ?? trainConstants(hw);
  const c = opts.launchS === undefined ? c0 : { ...c0, launch_s: opts.launchS };
  const pc = paramCounts(m);
  const microbatches = t.global_batch / (par.dp * t.micro_batch);
  const T = (t.micro_batch * t.seq_len) / par.cp;
  const etaOv = par.ep_overlap === 'a2a-1f1b' ? 0 : EP_OVERLAP[par.ep_overlap];

  // CUDA graphs (Megatron-Core's enable_cuda_graph: each TransformerLayer captured and replayed): the GPU walks the
  // graph, so a captured kernel pays the in-graph gap (measured on the H200, docs/plan-graph-gap-h200.json) instead of
  // the framework's launch cost; a dropless MoE block's routed part is not captured (its shapes change every step),
  // the token-drop one with padding to capacity is; the LM head and loss are outside the layers
  const captured = par.cuda_graphs;
  const staticMoe = t.capacity_factor > 0;
  const cg = captured ? { ...c, launch_s: opts.graphLaunchS ?? GRAPH_LAUNCH_S() } : c;
  // per-layer costs for one micro-batch on one device
  const dense = layerCost(m, hw, par, t, false, cg);
  const moe = pc.moe_layers > 0 ? layerCost(m, hw, par, t, true, cg, staticMoe ? cg : c) : undefined;
  const deepEpOverlap = par.ep_overlap === 'a2a-1f1b' && par.dispatcher === 'flex';
  if (moe && (par.ep_overlap === 'dualpipe' || deepEpOverlap)) {
    const slow = 1 / (1 - (deepEpOverlap ? DEEPEP_COMM_SM_FRACTION : DUALPIPE_COMM_SM_FRACTION));
    const scale = (p: Part): Part => ({ ...p, f: p.f * slow, b: p.b * slow, rc: p.rc * slow });
    moe.comp = scale(moe.comp);
    for (const ph of MOE_PHASES) moe.phases[ph] = scale(moe.phases[ph]);
  }
  // Megatron-Core's EP overlap (--overlap-moe-expert-parallel-comm, with --delay-wgrad-compute): in the 1F1B steady
  // state the forward of one micro-batch and the backward of another run as one interleaved chunk, each one's
  // dispatch/combine all-to-alls behind the other's attention/expert compute (combined_1f1b.py); the warm-up and
  // cool-down chunks have no partner: 2(p-1) + (v-1)p of the m v chunk-forwards (Megatron's interleaved warm-up
  // count), one with p = 1
  const chunkFwds = microbatches * Math.max(1, par.vpp);
  const warm = par.pp > 1 ? 2 * (par.pp - 1) + (Math.max(1, par.vpp) - 1) * par.pp : 1;
  const unpaired = Math.min(1, warm / chunkFwds);
  // a paired chunk: stage against stage (schedule.ts pairedChunkExposed)
  const pairedExposed = (lc: LayerCost) => {
    let mF = 0, mB = 0;
    for (const ph of MOE_PHASES) { mF += lc.phases[ph].f; mB += lc.phases[ph].b + lc.phases[ph].rc; }
    return pairedChunkExposed(lc.epStages, { aF: lc.comp.f - mF, aB: lc.comp.b + lc.comp.rc - mB, mF, mB });
  };
  const exposedEp = (lc: LayerCost) => {
    const cc = lc.ep + lc.epRecompute;
    if (cc <= 0) return 0;
    const comp = lc.comp.f + lc.comp.b + lc.comp.rc;
    let x = par.ep_overlap === 'a2a-1f1b'
      ? unpaired * cc + (1 - unpaired) * pairedExposed(lc)
      : Math.max(cc - etaOv * comp, (1 - etaOv) * cc);
    // --moe-shared-expert-overlap: the shared experts' forward runs on its own stream while the forward dispatch and
    // combine all-to-alls are in flight (Megatron-Core moe_layer.py / shared_experts.py)
    if (par.shared_expert_overlap) x = Math.max(0, x - Math.min(lc.epF, lc.sharedF));
    return x;
  };
  // host time (HOST_KERNEL_S per kernel) beyond the GPU time of each layer, forward and backward
  const hostK = opts.hostKernelS ?? HOST_KERNEL_S();
  const hostExposed = (lc: LayerCost) => {
    const moeK = staticMoe ? { f: 0, b: 0 } : lc.moeKernels;
    const kf = captured ? 1 + moeK.f : lc.comp.kf;
    const kb = captured ? 1 + moeK.b : lc.comp.kb;
    return { f: Math.max(0, kf * hostK - lc.comp.f), b: Math.max(0, kb * hostK - (lc.comp.b + lc.comp.rc)) };
  };
  // head (+ loss) and MTP modules, embedding: spread over stages (balanced)
  // the LM head stays in BF16 under FP8 training (DeepSeek-V3 sec. 3.3.1; Transformer Engine recipes)
  const head = linearFwdBwd('head', T, m.vocab / par.tp, m.hidden, 1, 2);
  const headPart = { f: kernelsTime(head.fwd, hw, c), b: kernelsTime(head.bwd, hw, c) };
  const mtpLayers = m.mtp_layers;
  const nDense = m.dense_layers;
  const nMoe = pc.moe_layers + (moe ? mtpLayers : 0);
  const nDenseAll = nDense + (moe ? 0 : mtpLayers);
  const heads = 1 + mtpLayers;
  const tot = (fn: (lc: LayerCost) => number) => nDenseAll * fn(dense) + (moe ? nMoe * fn(moe) : 0);
  const compF = tot((l) => l.comp.f) + heads * headPart.f;
  const compB = tot((l) => l.comp.b) + heads * headPart.b;
  const recompute = tot((l) => l.comp.rc);
  const tpAll = tot((l) => l.tp + (l.comp.rc > 0 ? l.tpF : 0));
  const cpAll = tot((l) => l.cp);
  const epAll = tot(exposedEp);
  const hostF = tot((l) => hostExposed(l).f);
  const hostB = tot((l) => hostExposed(l).b);
  // the MoE blocks by engine phase: their forward + backward compute, and dispatch's / combine's share of the exposed
  // all-to-all; what is left of the compute (attention, dense FFNs, norms, heads) is `compute`
  const phaseTime = {} as Record<MoePhase, number>;
  for (const ph of MOE_PHASES) phaseTime[ph] = moe ? nMoe * (moe.phases[ph].f + moe.phases[ph].b) : 0;
  const moeCompute = MOE_PHASES.reduce((a, ph) => a + phaseTime[ph], 0);
  if (moe) {
    // epAll is the MoE layers' exposed all-to-all (dense layers have none)
    phaseTime.dispatch += epAll * moe.epDispatchShare;
    phaseTime.combine += epAll * (1 - moe.epDispatchShare);
  }
  const pp = par.pp;
  // whole layers per stage (reported, not folded into the step): one decoder layer's work, and the last stage's
  // LM head(s), loss and MTP modules
  const perLayer = (lc: LayerCost) => lc.comp.f + lc.comp.b + lc.comp.rc + lc.tp + (lc.comp.rc > 0 ? lc.tpF : 0) + lc.cp + exposedEp(lc);
  const mtpWork = mtpLayers * perLayer(moe ?? dense);
  // computed when read: the search simulates ~10^5 layouts and reports a few
  let split: StageSplit | undefined;
  const stageSplitOf = () => (split ??= stageSplit(pp, m.layers, (tot(perLayer) - mtpWork) / m.layers, 0, mtpWork + heads * (headPart.f + headPart.b)));
  // per micro-batch per stage
  const tf = (compF + tpAll / 2 + epAll / 2 + cpAll / 3 + hostF) / pp;
  const tb = (compB + recompute + tpAll / 2 + epAll / 2 + (2 * cpAll) / 3 + hostB) / pp;
  const bubble = bubbleTime(par.schedule, pp, par.vpp, tf, tb);
  // activation offload: swapped out during the forward, back in during the backward, over the host link
  // (at coll_eff of its rate); what does not fit in the compute of that micro-batch is exposed
  const swap = par.offload > 0 ? (par.offload * activationBytesPerMicrobatch(m, par, t)) / (hw.host_bw * hw.coll_eff) : 0;
  const offload = microbatches * (Math.max(0, swap - tf) + Math.max(0, swap - tb));
  // PP p2p on the critical path: (pp-1) sends each way per chunk round; the rest overlap compute
  const p2pOne = p2p(hw, ((T / par.tp) * m.hidden * 2), false);
  const ppComm = pp > 1 ? 2 * (pp - 1) * par.vpp * p2pOne : 0;
  // DP
  const lp = localParams(m, par);
  const denseDp = par.dp * par.cp;
  const edp = Math.max(1, (par.tp * par.cp * par.dp) / (par.ep * par.etp));
  const gb = gradBytes(t);
  const gradColl = par.zero >= 1
    ? reduceScatter(hw, lp.dense * gb, denseDp, par.tp) + reduceScatter(hw, lp.expert * gb, edp, par.ep * par.etp)
    : allReduce(hw, lp.dense * gb, denseDp, par.tp) + allReduce(hw, lp.expert * gb, edp, par.ep * par.etp);
  const paramColl = par.zero >= 1 ? allGather(hw, lp.dense * 2, denseDp, par.tp) + allGather(hw, lp.expert * 2, edp, par.ep * par.etp) : 0;
  // without --overlap-grad-reduce / --overlap-param-gather the collectives run after the last backward / before the first forward
  let dpComm = par.dp_overlap ? dpExposed(par.schedule, pp, par.vpp, gradColl, paramColl, tf, tb) : gradColl + paramColl;
  if (par.zero === 3) dpComm += microbatches * Math.max(0, 2 * paramColl - (tf + tb));
  // optimizer: ~30 bytes of HBM traffic per locally updated parameter
  const optShard = (par.zero >= 1 ? lp.dense / denseDp + lp.expert / edp : lp.dense + lp.expert);
  const optimizer = (optShard * 30) / (hw.hbm_bw * hw.bw_eff);

  const pipeline = microbatches * (tf + tb) + bubble + ppComm + offload;
  const step = pipeline + dpComm + optimizer;
  const tokens = t.global_batch * t.seq_len;
  const tokensPerS = tokens / step;
  const mfpt = modelFlopsPerToken(m, t.seq_len);
  // recomputed FLOPs per token: forward FLOPs of recomputed parts, per device per micro-batch -> per token
  const rcFlopsPerMb = tot((l) => l.comp.flopsF);
  const rcFlopsPerToken = (rcFlopsPerMb * par.tp * par.cp) / (t.micro_batch * t.seq_len);
  const peak = spec.devices * hw.peak_bf16;
  const memB = memoryPerDevice(m, par, t, microbatches);
  const gib = (x: number) => x / 2 ** 30;
  const perStep = (x: number) => (microbatches * x) / pp;
  const breakdown: Breakdown = {
    compute: perStep(compF + compB - moeCompute),
    route: perStep(phaseTime.route),
    dispatch: perStep(phaseTime.dispatch),
    experts: perStep(phaseTime.experts),
    combine: perStep(phaseTime.combine),
    recompute: perStep(recompute),
    tp_comm: perStep(tpAll),
    cp_comm: perStep(cpAll),
    host: perStep(hostF + hostB),
    pp_comm: ppComm,
    dp_comm: dpComm,
    bubble,
    offload,
    optimizer,
  };
  // every input is bounded (spec.ts PLAN_LIMITS, hardware.ts OVERRIDE_RANGE), so this is a guard, not a path
  const outputs: Record<string, number> = { step_time_s: step, tokens_per_s: tokensPerS, model_flops_per_token: mfpt, memory_bytes: memB.total, ...breakdown };
  for (const [k, v] of Object.entries(outputs)) {
    if (!Number.isFinite(v)) throw new MoekitError(`the simulation of this layout gives a non-finite ${k} (${v}); a spec value is out of any modelled range`, 'spec');
  }
  if (!(step > 0)) throw new MoekitError(`the simulation of this layout gives a step time of ${step} s`, 'spec');
  return {
    step_time_s: step,
    tokens_per_s: tokensPerS,
    tokens_per_s_per_device: tokensPerS / spec.devices,
    mfu: (tokensPerS * mfpt) / peak,
    hfu: (tokensPerS * (mfpt + rcFlopsPerToken)) / peak,
    memory_gib_per_device: gib(memB.total),
    memory_breakdown_gib: Object.fromEntries(Object.entries(memB).map(([k, v]) => [k, gib(v)])) as Record<keyof MemoryBreakdown, number>,
    fits: memB.total <= USABLE_HBM_FRACTION * hw.hbm_bytes,
    breakdown,
    microbatches,
    model_flops_per_token: mfpt,
    parallel: par,
    get stage_split() { return stageSplitOf(); },
  };
}
