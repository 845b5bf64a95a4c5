/**
 * The one check of a model description, after the architecture file built it from config.json: every
 * field in its range and the cross-field rules (top-k ≤ experts, groups divide the experts, kv heads
 * divide the heads, positive finite epsilons, thetas and factors, sizes under limits that keep every
 * allocation possible). registry.ts `describeModel` (architecture → describe → validateDesc) is the one way
 * descriptions are built. Errors are one line
 * naming the config file, the key and the allowed range.
 */
import { rangeText, SIZE_LIMITS, type NumRange } from '../io/config.js';
import { MoekitError } from '../util/errors.js';
import type { ArchName, ModelDesc } from './desc.js';
import { paramCounts } from './params.js';

/** the config keys the description's expert fields come from, per architecture (for the messages): the expert count,
 * top-k and one expert's FFN width */
const EXPERT_KEYS: Record<ArchName, { experts: string; topK: string; expertFfn: string }> = {
  mixtral: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  gpt_oss: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  granitemoe: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  qwen2_moe: { experts: 'num_experts', topK: 'num_experts_per_tok', expertFfn: 'moe_intermediate_size' },
  qwen3_moe: { experts: 'num_experts', topK: 'num_experts_per_tok', expertFfn: 'moe_intermediate_size' },
  olmoe: { experts: 'num_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  deepseek_v2: { experts: 'n_routed_experts', topK: 'num_experts_per_tok', expertFfn: 'moe_intermediate_size' },
  deepseek_v3: { experts: 'n_routed_experts', topK: 'num_experts_per_tok', expertFfn: 'moe_intermediate_size' },
  ernie4_5_moe: { experts: 'moe_num_experts', topK: 'moe_k', expertFfn: 'moe_intermediate_size' },
  glm4_moe: { experts: 'n_routed_experts', topK: 'num_experts_per_tok', expertFfn: 'moe_intermediate_size' },
  dots1: { experts: 'n_routed_experts', topK: 'num_experts_per_tok', expertFfn: 'moe_intermediate_size' },
  granitemoeshared: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  hunyuan_v1_moe: { experts: 'num_experts', topK: 'moe_topk', expertFfn: 'intermediate_size' },
  phimoe: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  llama4_text: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  qwen3_next: { experts: 'num_experts', topK: 'num_experts_per_tok', expertFfn: 'moe_intermediate_size' },
  minimax: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  longcat_flash: { experts: 'n_routed_experts + zero_expert_num', topK: 'moe_topk', expertFfn: 'expert_ffn_hidden_size' },
  flex_olmo: { experts: 'num_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  aria_text: { experts: 'moe_num_experts', topK: 'moe_topk', expertFfn: 'intermediate_size' },
  granitemoehybrid: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
  dbrx: { experts: 'ffn_config.moe_num_experts', topK: 'ffn_config.moe_top_k', expertFfn: 'ffn_config.ffn_hidden_size' },
  jetmoe: { experts: 'num_local_experts', topK: 'num_experts_per_tok', expertFfn: 'intermediate_size' },
};

/** the most magnitude a multiplier or scale may have (and 1 / the least): beyond it f32 activations overflow */
export const MAX_MULTIPLIER = 1e6;

/** throws a MoekitError naming `file` at the first field out of its range; returns `d` */
export function validateDesc(d: ModelDesc, file: string): ModelDesc {
  const fail = (msg: string): never => { throw new MoekitError(msg, file); };
  const range = (key: string, v: number, r: NumRange & { int?: boolean }) => {
    const max = r.max ?? SIZE_LIMITS[key];
    const bad = !Number.isFinite(v) || (r.int && !Number.isInteger(v)) ||
      (r.min !== undefined && (r.exclusiveMin ? !(v > r.min) : !(v >= r.min))) ||
      (max !== undefined && !(v <= max)) || (r.nonZero && v === 0);
    if (bad) fail(`key '${key}' must be ${rangeText(r, max, r.int ?? false)}, got ${v}`);
  };
  const pos = (key: string, v: number) => range(key, v, { int: true, min: 1 });
  const multiplier = (key: string, v: number) => {
    if (!(Number.isFinite(v) && Math.abs(v) >= 1 / MAX_MULTIPLIER && Math.abs(v) <= MAX_MULTIPLIER)) {
      fail(`key '${key}' must be a number with magnitude in [${1 / MAX_MULTIPLIER}, ${MAX_MULTIPLIER}], got ${v}`);
    }
  };
  const keys = EXPERT_KEYS[d.arch];

  // sizes
  pos('vocab_size', d.vocab);
  pos('hidden_size', d.hidden);
  pos('num_hidden_layers', d.nLayers);
  pos('max_position_embeddings', d.maxPositions);
  if (d.layers.length !== d.nLayers) fail(`the description has ${d.layers.length} layers, expected num_hidden_layers = ${d.nLayers}`);
  range('rms_norm_eps', d.rmsEps, { min: 0, exclusiveMin: true, max: 1 });

  // attention
  const a = d.attention;
  pos('num_attention_heads', a.nHeads);
  if (a.kind === 'gqa') {
    pos('num_key_value_heads', a.nKvHeads);
    if (a.nHeads % a.nKvHeads !== 0) fail(`key 'num_key_value_heads' (${a.nKvHeads}) must divide num_attention_heads (${a.nHeads})`);
    pos('head_dim', a.headDim);
  } else {
    const m = a.mla!;
    if (m.qLoraRank !== null) pos('q_lora_rank', m.qLoraRank);
    pos('kv_lora_rank', m.kvLoraRank);
    range('qk_nope_head_dim', m.qkNopeDim, { int: true, min: 0 });
    pos('qk_rope_head_dim', m.qkRopeDim);
    pos('v_head_dim', m.vHeadDim);
  }
  pos('head_dim', a.vHeadDim);
  if (a.nHeads * a.headDim > 2 ** 20) fail(`num_attention_heads × head_dim (${a.nHeads} × ${a.headDim}) must be ≤ ${2 ** 20}`);
  multiplier(d.arch === 'granitemoe' || d.arch === 'granitemoeshared' || d.arch === 'granitemoehybrid' ? 'attention_multiplier' : 'head_dim', a.scale);
  if (a.clipQkv !== null) range('clip_qkv', a.clipQkv, { min: 0, exclusiveMin: true });
  for (const l of d.layers) {
    if (l.slidingWindow !== null) range('sliding_window', l.slidingWindow, { int: true, min: 1 });
  }
  // lightning attention (MiniMax) and its residual scalings
  if (d.layers.some((l) => l.mixer === 'lightning')) {
    if (!d.lightning) return fail('lightning attention layers without their description');
    range('block_size', d.lightning.blockSize, { int: true, min: 1, max: 2 ** 16 });
  }
  d.layers.forEach((l, i) => {
    const s = l.residualScale;
    if (!s) return;
    const kind = l.mixer === 'lightning' ? 'linear_attn' : 'full_attn';
    for (const [key, v] of [[`${kind}_alpha_factor`, s.mixer[0]], [`${kind}_beta_factor`, s.mixer[1]], ['mlp_alpha_factor', s.mlp[0]], ['mlp_beta_factor', s.mlp[1]]] as const) {
      if (!(Number.isFinite(v) && Math.abs(v) <= MAX_MULTIPLIER)) fail(`key '${key}' (layer ${i}) must be a number with magnitude ≤ ${MAX_MULTIPLIER}, got ${v}`);
    }
  });

  // RoPE
  const r = d.rope;
  range('rope_theta', r.theta, { min: 0, exclusiveMin: true });
  range('rope_scaling.factor', r.factor, { min: 0, exclusiveMin: true, max: MAX_MULTIPLIER });
  if (!(Number.isInteger(r.dim) && r.dim >= 0 && r.dim <= a.headDim && r.dim % 2 === 0)) {
    fail(`the rotated dims per head (${r.dim}) must be an even integer in [0, head_dim = ${a.headDim}]`);
  }
  if (r.originalMaxPositions !== undefined) range('rope_scaling.original_max_position_embeddings', r.originalMaxPositions, { int: true, min: 1, max: 2 ** 24 });
  for (const [k, v] of [['beta_fast', r.betaFast], ['beta_slow', r.betaSlow], ['mscale', r.mscale], ['mscale_all_dim', r.mscaleAllDim],
    ['attention_factor', r.attentionFactor], ['low_freq_factor', r.lowFreqFactor], ['high_freq_factor', r.highFreqFactor]] as const) {
    if (v !== undefined) range(`rope_scaling.${k}`, v, { min: 0, max: MAX_MULTIPLIER });
  }
  if (r.type === 'llama3' && r.lowFreqFactor !== undefined && r.highFreqFactor !== undefined && !(r.highFreqFactor > r.lowFreqFactor)) {
    fail(`key 'rope_scaling.high_freq_factor' (${r.highFreqFactor}) must exceed low_freq_factor (${r.lowFreqFactor})`);
  }

  // FFNs and experts
  const m = d.moe;
  const moeLayers = d.layers.filter((l) => l.mlp === 'moe').length;
  if (d.layers.some((l) => l.mlp === 'dense')) pos('intermediate_size', d.denseFfn);
  range(keys.experts, m.experts, { int: true, min: 0 });
  if (moeLayers > 0) {
    pos(keys.experts, m.experts);
    range(keys.topK, m.topK, { int: true, min: 1, max: m.experts });
    pos(keys.expertFfn, m.expertFfn);
    if (m.zeroExperts !== undefined) range('zero_expert_num', m.zeroExperts, { int: true, min: 0, max: m.experts - 1 });
    range('n_group', m.nGroup, { int: true, min: 1, max: m.experts });
    if (m.experts % m.nGroup !== 0) fail(`key 'n_group' (${m.nGroup}) must divide ${keys.experts} (${m.experts})`);
    range('topk_group', m.topkGroup, { int: true, min: 1, max: m.nGroup });
    const reachable = m.topkGroup * (m.experts / m.nGroup);
    if (m.topK > reachable) fail(`key '${keys.topK}' (${m.topK}) must be ≤ the ${reachable} experts of topk_group (${m.topkGroup}) groups`);
    range('shared expert width', m.sharedFfn, { int: true, min: 0, max: 2 ** 24 });
    multiplier('routed_scaling_factor', m.routedScaling);
    range('moe_norm_min', m.normMin, { min: 0, max: 1 });
    if (m.act === 'swiglu_clamped') {
      range('swiglu_limit', m.swigluLimit, { min: 0, exclusiveMin: true });
      multiplier('swiglu_alpha', m.swigluAlpha);
    }
  }

  // multipliers (Granite)
  multiplier('embedding_multiplier', d.embeddingMultiplier);
  multiplier('residual_multiplier', d.residualMultiplier);
  multiplier('logits_scaling', d.logitsScale);

  // token ids
  for (const [k, v] of [['bos_token_id', d.bosTokenId], ['pad_token_id', d.padTokenId], ...d.eosTokenIds.map((x) => ['eos_token_id', x] as const)] as const) {
    if (v !== null && !Number.isSafeInteger(v)) fail(`key '${k}' must be an integer, got ${v}`);
  }

  // everything together
  const total = paramCounts(d).total;
  if (!(Number.isFinite(total) && total <= Number.MAX_SAFE_INTEGER)) fail(`the model would have ${total} parameters: too many to hold`);
  return d;
}

/**
 * Whether the LM head is the embedding: the checkpoint's own `lm_head.weight` when it has one, whatever
 * tie_word_embeddings says (as transformers loads it); the embedding when it has none and the description is
 * tied; an error naming the tensor (and `dir`) when it has none and tie_word_embeddings is false.
 */
export function lmHeadIsEmbedding(hasLmHead: boolean, d: ModelDesc, dir: string): boolean {
  if (hasLmHead) return false;
  if (!d.tieEmbeddings) throw new MoekitError(`missing tensor 'lm_head.weight' (tie_word_embeddings is false, so the LM head is not the embedding)`, dir);
  return true;
}
