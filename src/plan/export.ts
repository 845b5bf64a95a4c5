/**
 * Hand-off: the launch arguments that run a plan on an existing distributed engine.
 *
 *  - megatron: Megatron-LM / Megatron-Core `pretrain_gpt.py` flags (megatron/training/arguments.py, core_r0.13+).
 *  - mindspeed: MindSpeed-LLM (Ascend) on Megatron core_r0.8.0, the stack of Pangu Ultra MoE's time (early 2025):
 *    core_r0.8.0's flags, MindSpeed-LLM's MLA / MoE / MTP names and MindSpeed's MoE and memory features
 *    (TP-extend-EP, hierarchical all-to-allv, all-to-all overlap, swap-attention, activation-function recompute),
 *    each checked against those repositories' argument parsers and validation rules (test/plan/export.test.ts).
 *
 * Where two requested features are refused together by the engine's validation (Megatron-Core transformer_config.py
 * __post_init__), one is dropped and `notes` says which and why.
 *
 * Where the engine has no counterpart (DualPipe and zero-bubble in upstream Megatron, per-module activation
 * offload fractions), the export says so in `notes` and emits the nearest supported setting.
 */
import type { Spec } from './spec.js';
import { MoekitError } from '../util/errors.js';
import { sharedWidth } from './flops.js';
import { hierarchicalAllgatherValid } from './search.js';

export type Engine = 'megatron' | 'mindspeed';

export interface ExportResult {
  engine: Engine;
  args: string[];
  /** one shell line: torchrun ... pretrain_gpt.py <args> */
  command: string;
  notes: string[];
}

export function exportPlan(spec: Spec, engine: Engine): ExportResult {
  if (engine !== 'megatron' && engine !== 'mindspeed') throw new MoekitError(`unknown engine '${engine}' (megatron or mindspeed)`, '--engine');
  const { model: m, parallel: p, training: t, hardware: hw } = spec;
  const a: string[] = [];
  const notes: string[] = [];
  const f = (k: string, v?: string | number) => { a.push(`--${k}`); if (v !== undefined) a.push(String(v)); };
  const ms = engine === 'mindspeed';
  // MindSpeed-LLM on Megatron core_r0.8.0 (its own MLA, MoE and MTP flag names; no expert TP of its own; VPP as layers
  // per virtual stage, uneven layer counts padded with no-op layers, as Pangu Ultra MoE counts 61 layers as 64)
  const chunks = p.pp * p.vpp;
  const tpExtendEp = ms && p.tp > 1 && p.etp === 1 && p.ep % p.tp === 0 && p.ep > p.tp;
  // Megatron: the dispatcher that runs. a2a hierarchical is DeepEP, i.e. the flex dispatcher; flex asserts TP x EP > 1
  // (token_dispatcher.py MoEFlexTokenDispatcher), and with tp 1 and ep 1 alltoall moves nothing off the device either.
  // MindSpeed's stack has alltoall only for its overlap.
  const wanted = p.a2a === 'hierarchical' ? 'flex' : p.dispatcher;
  const disp = ms ? 'alltoall' : wanted === 'flex' && p.tp * p.ep === 1 ? 'alltoall' : wanted;
  // the EP all-to-all overlap, decided here: --moe-shared-expert-overlap and the schedule note depend on it
  let epOverlap: string[] = [];
  let epNote = '';
  if (m.experts > 0 && p.ep > 1 && p.ep_overlap !== 'none') {
    if (!ms) {
      // Megatron-Core's own rules for the EP all-to-all overlap (transformer_config.py __post_init__, in its order)
      const rc = p.recompute;
      const why = p.pp > 1 && p.vpp <= 1 ? 'needs a virtual pipeline (vpp > 1) when pp > 1'
        : disp === 'allgather' ? 'needs the alltoall or flex token dispatcher, not allgather'
        : rc === 'full' ? 'is incompatible with full recompute'
        : Array.isArray(rc) && rc.includes('moe') ? "is incompatible with recomputing 'moe'"
        : m.mtp_layers > 1 ? 'supports at most one MTP layer' : '';
      if (why) epNote = `--overlap-moe-expert-parallel-comm ${why}: no EP overlap emitted`;
      else epOverlap = p.ep_overlap === 'a2a-1f1b' ? ['--overlap-moe-expert-parallel-comm', '--delay-wgrad-compute'] : ['--overlap-moe-expert-parallel-comm'];
    }
    // MindSpeed rejects --moe-alltoall-overlap-comm with tp > 1 unless --moe-tp-extend-ep
    else if (p.tp > 1 && !tpExtendEp) epNote = 'MindSpeed overlaps the EP all-to-all only with tp 1 or --moe-tp-extend-ep: no overlap emitted';
    else epOverlap = ['--moe-alltoall-overlap-comm'];
  }
  const padded = ms && chunks > 1 && m.layers % chunks !== 0 ? Math.ceil(m.layers / chunks) * chunks : m.layers;
  // model
  f('num-layers', padded); f('hidden-size', m.hidden); f('num-attention-heads', m.heads);
  if (padded !== m.layers) {
    f('noop-layers', Array.from({ length: padded - m.layers }, (_, i) => m.layers + i).join(','));
    notes.push(`${m.layers} layers padded to ${padded} with no-op layers (--noop-layers) so that ${chunks} pipeline chunks split evenly`);
  }
  f('seq-length', t.seq_len); f('max-position-embeddings', t.seq_len);
  f('normalization', 'RMSNorm'); f('swiglu'); f('position-embedding-type', 'rope'); f('disable-bias-linear');
  if (!m.tied_embeddings) f('untie-embeddings-and-output-weights');
  if (m.attention === 'mla') {
    f(ms ? 'multi-head-latent-attention' : 'multi-latent-attention');
    if (m.q_lora_rank > 0) f('q-lora-rank', m.q_lora_rank);
    f('kv-lora-rank', m.kv_lora_rank);
    if (ms) { f('qk-rope-head-dim', m.qk_rope_head_dim); f('qk-nope-head-dim', m.qk_nope_head_dim); }
    else { f('qk-head-dim', m.qk_nope_head_dim); f('qk-pos-emb-head-dim', m.qk_rope_head_dim); }
    f('v-head-dim', m.v_head_dim);
  } else {
    f('kv-channels', m.head_dim);
    if (m.kv_heads !== m.heads) { f('group-query-attention'); f('num-query-groups', m.kv_heads); }
  }
  if (m.dense_ffn > 0) f('ffn-hidden-size', m.dense_ffn);
  if (m.experts > 0) {
    f('num-experts', m.experts); f('moe-router-topk', m.top_k);
    if (ms) {
      f('moe-intermediate-size', m.expert_ffn);
      if (m.shared_experts > 0) {
        // MindSpeed-LLM builds the shared experts as one MLP of --n-shared-experts x --moe-intermediate-size
        // (mindspeed_llm/core/transformer/moe/moe_layer.py): a custom total width is a count of expert widths
        const w = sharedWidth(m);
        const n = w % m.expert_ffn === 0 ? w / m.expert_ffn : m.shared_experts;
        f('n-shared-experts', n);
        if (w % m.expert_ffn !== 0) notes.push(`shared expert width ${w} is not a multiple of --moe-intermediate-size ${m.expert_ffn}: not expressible on MindSpeed-LLM (width = --n-shared-experts x --moe-intermediate-size); ${n} x ${m.expert_ffn} = ${n * m.expert_ffn} emitted`);
        else if (n !== m.shared_experts) notes.push(`shared expert width ${w} = ${n} x --moe-intermediate-size ${m.expert_ffn}: --n-shared-experts ${n} emitted, not the plan's ${m.shared_experts} (MindSpeed-LLM sizes the shared experts as one MLP of that width)`);
      }
      if (m.dense_layers > 0) f('first-k-dense-replace', m.dense_layers);
    } else {
      f('moe-ffn-hidden-size', m.expert_ffn);
      if (m.shared_experts > 0) f('moe-shared-expert-intermediate-size', sharedWidth(m));
      if (m.dense_layers > 0) f('moe-layer-freq', `([0]*${m.dense_layers}+[1]*${m.layers - m.dense_layers})`);
    }
    f('moe-token-dispatcher-type', disp); f('moe-grouped-gemm'); f('moe-router-load-balancing-type', 'aux_loss');
    if (ms && p.dispatcher !== 'alltoall') notes.push(`dispatcher ${p.dispatcher}: MindSpeed's all-to-all overlap needs alltoall, emitted instead`);
    if (!ms && disp !== wanted) notes.push('DeepEP (the flex dispatcher) needs tp x ep > 1 (Megatron-Core asserts it): alltoall emitted; with tp 1 and ep 1 no token leaves its device');
    if (t.capacity_factor > 0) {
      f('moe-expert-capacity-factor', t.capacity_factor);
      // transformer_config.py: "Flex token dispatcher does not support moe_pad_expert_input_to_capacity"
      if (disp === 'flex') notes.push('--moe-pad-expert-input-to-capacity dropped: the flex (DeepEP) dispatcher refuses it; tokens over capacity are still dropped, the experts\' inputs are not padded to capacity');
      else f('moe-pad-expert-input-to-capacity');
    }
    if (p.shared_expert_overlap && m.shared_experts > 0 && !ms) {
      // transformer_config.py: "disable moe_shared_expert_overlap when enabling overlap_moe_expert_parallel_comm", and
      // "moe_shared_expert_overlap only works with alltoall token dispatcher" (core_r0.13 to core_r0.17)
      if (epOverlap.length > 0) notes.push('--moe-shared-expert-overlap dropped: Megatron-Core refuses it together with --overlap-moe-expert-parallel-comm');
      else if (disp !== 'alltoall') notes.push(`--moe-shared-expert-overlap needs the alltoall token dispatcher, not ${disp}: not emitted`);
      else f('moe-shared-expert-overlap');
    }
    // MindSpeed: --moe-tp-extend-ep and --moe-alltoall-overlap-comm both require the asynchronous permutation
    if (ms) f('moe-permutation-async-comm');
    else f('moe-permute-fusion');
  }
  if (m.mtp_layers > 0) f(ms ? 'num-nextn-predict-layers' : 'mtp-num-layers', m.mtp_layers);
  // parallelism
  f('tensor-model-parallel-size', p.tp); f('pipeline-model-parallel-size', p.pp);
  if (p.tp > 1) f('sequence-parallel');
  if (p.vpp > 1) {
    if (ms) f('num-layers-per-virtual-pipeline-stage', padded / chunks);
    else f('num-virtual-stages-per-pipeline-rank', p.vpp);
  }
  if (m.experts > 0) {
    if (tpExtendEp) f('expert-model-parallel-size', p.ep / p.tp);
    else if (ms) {
      // core_r0.8.0 has no expert tensor parallelism of its own: experts are split over the TP group
      f('expert-model-parallel-size', p.ep);
      if (p.etp !== p.tp) notes.push(`expert TP ${p.etp} is not expressible on Megatron core_r0.8.0 (experts use the TP group, ${p.tp}); plan with etp = tp or TP-extend-EP`);
    } else { f('expert-model-parallel-size', p.ep); f('expert-tensor-parallel-size', p.etp); }
  }
  if (p.cp > 1) f('context-parallel-size', p.cp);
  if (!ms && m.layers % chunks !== 0) notes.push('layers do not divide evenly over pipeline chunks: set --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers');
  if (p.schedule === 'dualpipe' || p.schedule === 'dualpipev' || p.schedule === 'zero-bubble') {
    // on Megatron, dualpipe(v) means vpp 1 and an even pp >= 2, so the EP overlap is always refused there
    notes.push(`schedule ${p.schedule} has no upstream ${engine === 'megatron' ? 'Megatron-LM' : 'MindSpeed'} flag; emitted 1F1B${epOverlap.length > 0 ? ' with EP all-to-all overlap' : ''} instead`);
  }
  // batch, precision
  f('micro-batch-size', t.micro_batch); f('global-batch-size', t.global_batch);
  f('bf16');
  if (t.precision === 'fp8') {
    if (engine === 'mindspeed') notes.push('Ascend 910B/910C have no FP8 GEMMs: fp8 ignored, bf16 emitted');
    else { f('fp8-format', 'e4m3'); f('fp8-recipe', 'blockwise'); }
  }
  // ZeRO
  if ((p.zero >= 1 && p.zero <= 2) || (p.zero === 3 && ms)) { f('use-distributed-optimizer'); if (p.dp_overlap) { f('overlap-grad-reduce'); f('overlap-param-gather'); } }
  if (p.zero === 3 && ms) {
    notes.push('ZeRO-3 has no MindSpeed-LLM (core_r0.8.0) flag: the distributed optimizer (ZeRO-1) emitted; memory will exceed the plan');
  }
  if (p.zero === 3 && !ms) { f('use-megatron-fsdp'); f('data-parallel-sharding-strategy', 'optim_grads_params'); }
  if (p.zero === 0 && p.dp_overlap) f('overlap-grad-reduce');
  if (p.cuda_graphs && !ms) { f('enable-cuda-graph'); }
  else if (p.cuda_graphs) notes.push('CUDA graphs: no Ascend counterpart, not emitted');
  if (t.grad_precision === 'bf16') {
    if (engine === 'megatron') f('grad-reduce-in-bf16');
    else notes.push('grad_precision bf16: Megatron core_r0.8.0 (MindSpeed-LLM\'s base) has no --grad-reduce-in-bf16; gradients stay fp32');
  }
  if (t.optimizer_precision === 'bf16') {
    if (ms) notes.push('optimizer_precision bf16: core_r0.8.0 has no precision-aware optimizer; Adam moments stay fp32 (memory will exceed the plan)');
    else { f('use-precision-aware-optimizer'); f('exp-avg-dtype', 'bf16'); f('exp-avg-sq-dtype', 'bf16'); }
  }
  // recompute
  if (p.recompute === 'full') { f('recompute-granularity', 'full'); f('recompute-method', 'uniform'); f('recompute-num-layers', 1); }
  else if (p.recompute === 'selective') f('recompute-granularity', 'selective');
  else if (Array.isArray(p.recompute) && p.recompute.length > 0) {
    const map: Record<string, string> = { core_attn: 'core_attn', mla_up: 'mla_up_proj', moe_act: 'moe_act', layernorm: 'layernorm', moe: 'moe', mlp: 'mlp', attention: 'core_attn' };
    if (engine === 'megatron') { f('recompute-granularity', 'selective'); f('recompute-modules'); a.push(...new Set(p.recompute.map((r) => map[r]))); }
    else {
      if (p.recompute.includes('moe_act')) f('recompute-activation-function');
      if (p.recompute.includes('layernorm')) f('recompute-norm');
      if (p.recompute.some((r) => r !== 'moe_act' && r !== 'layernorm')) { f('recompute-granularity', 'selective'); }
    }
  }
  // communication features
  if (p.tp_overlap && p.tp > 1 && engine === 'megatron') f('tp-comm-overlap');
  a.push(...epOverlap);
  if (epNote) notes.push(epNote);
  if (m.experts > 0 && disp === 'flex') {
    // core_r0.13: the flex dispatcher asserts --moe-enable-deepep (later cores default its backend to DeepEP)
    f('moe-enable-deepep');
    if (p.a2a === 'hierarchical') notes.push('hierarchical all-to-all: DeepEP (--moe-enable-deepep, the flex dispatcher) does node-deduplicated dispatch on NVIDIA');
    else notes.push(`dispatcher flex: Megatron-Core runs it on DeepEP (--moe-enable-deepep), whose dispatch is node-deduplicated (a2a hierarchical), not the plan's a2a ${p.a2a}`);
  }
  if (m.experts > 0 && ms && p.a2a === 'hierarchical') notes.push('node-deduplicated (DeepEP-style) dispatch has no MindSpeed (2025) flag: plain all-to-all emitted; its --moe-hierarchical-alltoallv is the all-gather variant (a2a: hierarchical-allgather)');
  if (tpExtendEp && m.experts > 0) {
    // MindSpeed's EP size excludes the TP part under --moe-tp-extend-ep (experts over tp x ep devices)
    notes.push(`--moe-tp-extend-ep: experts spread over the TP group too; MindSpeed's --expert-model-parallel-size is ep/tp = ${p.ep / p.tp}`);
    f('moe-tp-extend-ep');
  }
  if (m.experts > 0 && p.a2a === 'hierarchical-allgather') {
    if (ms && tpExtendEp && hierarchicalAllgatherValid(p, hw.devices_per_node)) f('moe-hierarchical-alltoallv');
    else if (disp !== 'flex') notes.push(`hierarchical-allgather needs MindSpeed --moe-tp-extend-ep with tp = ${hw.devices_per_node} (the NPUs of a node): plain all-to-all emitted`);
  }
  if (p.offload > 0) {
    if (engine === 'mindspeed') { f('swap-attention'); notes.push(`activation offload fraction ${p.offload}: MindSpeed swaps attention activations (--swap-attention); tune --swap-modules`); }
    else {
      // Megatron-Core's fine-grained activation offloading: the inputs of these modules, a fraction of them
      f('fine-grained-activation-offloading');
      f('offload-modules'); a.push(...(m.experts > 0 ? ['core_attn', 'attn_proj', 'expert_fc1', 'moe_act'] : ['qkv_linear', 'core_attn', 'attn_proj', 'mlp_norm']));
      f('activation-offload-fraction', p.offload);
    }
  }
  if (engine === 'mindspeed') { f('use-mcore-models'); f('use-flash-attn'); f('use-fused-rmsnorm'); f('use-fused-swiglu'); f('use-fused-rotary-pos-emb'); }
  else f('attention-backend', 'fused');
  // torchrun starts nnodes x nproc-per-node processes, the same number on every node: that product must be the
  // device count (1 device, or a count not a multiple of devices_per_node, used to start whole nodes' worth)
  let perNode = Math.min(hw.devices_per_node, spec.devices);
  while (spec.devices % perNode !== 0) perNode--;
  const nodes = spec.devices / perNode;
  if (perNode !== hw.devices_per_node && spec.devices > hw.devices_per_node) {
    notes.push(`${spec.devices} devices are not a multiple of ${hw.devices_per_node} per node: launched as ${nodes} nodes x ${perNode} processes`);
  }
  const launcher = `torchrun --nnodes ${nodes} --nproc-per-node ${perNode} --node-rank $NODE_RANK --master-addr $MASTER_ADDR --master-port 6000`;
  const script = engine === 'mindspeed' ? 'pretrain_gpt.py  # MindSpeed-LLM' : 'pretrain_gpt.py';
  return { engine, args: a, command: `${launcher} ${script.split(' ')[0]} ${a.map(shq).join(' ')}`, notes };
}

function shq(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
