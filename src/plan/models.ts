/**
 * Model shapes known to the planner (spec `model: { preset: NAME }`), each from its published
 * config.json or paper; and the reader of a Hugging Face `config.json`.
 */
import { readFileSync } from 'node:fs';
import { MoekitError } from '../util/errors.js';

export interface ModelShape {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kv_heads: number;
  head_dim: number;
  attention: 'gqa' | 'mla';
  q_lora_rank: number;
  kv_lora_rank: number;
  qk_nope_head_dim: number;
  qk_rope_head_dim: number;
  v_head_dim: number;
  vocab: number;
  /** the first `dense_layers` layers have a dense FFN of width `dense_ffn`; the rest are MoE */
  dense_layers: number;
  dense_ffn: number;
  /** routed experts per MoE layer (0: a dense model) */
  experts: number;
  shared_experts: number;
  top_k: number;
  expert_ffn: number;
  /** total width of the shared experts when it differs from shared_experts * expert_ffn (0 = that product) */
  shared_ffn?: number;
  mtp_layers: number;
  tied_embeddings: boolean;
}

const MLA_NONE = { q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0 };

export const MODEL_PRESETS: Record<string, ModelShape & { source: string }> = {
  'deepseek-v3': {
    name: 'DeepSeek-V3', layers: 61, hidden: 7168, heads: 128, kv_heads: 128, head_dim: 192, attention: 'mla',
    q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128,
    vocab: 129280, dense_layers: 3, dense_ffn: 18432, experts: 256, shared_experts: 1, top_k: 8, expert_ffn: 2048,
    mtp_layers: 1, tied_embeddings: false,
    source: 'deepseek-ai/DeepSeek-V3 config.json; arXiv 2412.19437 (671B total, 37B active)',
  },
  'pangu-ultra-moe': {
    name: 'Pangu Ultra MoE 718B', layers: 61, hidden: 7680, heads: 128, kv_heads: 128, head_dim: 192, attention: 'mla',
    q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128,
    vocab: 153376, dense_layers: 3, dense_ffn: 18432, experts: 256, shared_experts: 1, top_k: 8, expert_ffn: 2048,
    mtp_layers: 1, tied_embeddings: false,
    source: 'arXiv 2505.04519 (61 layers, hidden 7680, 256 experts + 1 shared, top-8, MLA, MTP; 718B total, 39B active); MLA ranks, dense FFN and vocab from openPangu-Ultra-MoE-718B config.json as we recall it (assumption where the paper is silent)',
  },
  'mixtral-8x7b': {
    name: 'Mixtral 8x7B', layers: 32, hidden: 4096, heads: 32, kv_heads: 8, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 32000, dense_layers: 0, dense_ffn: 0, experts: 8, shared_experts: 0, top_k: 2, expert_ffn: 14336,
    mtp_layers: 0, tied_embeddings: false, source: 'mistralai/Mixtral-8x7B-v0.1 config.json (46.7B total, 12.9B active)',
  },
  'mixtral-8x22b': {
    name: 'Mixtral 8x22B', layers: 56, hidden: 6144, heads: 48, kv_heads: 8, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 32768, dense_layers: 0, dense_ffn: 0, experts: 8, shared_experts: 0, top_k: 2, expert_ffn: 16384,
    mtp_layers: 0, tied_embeddings: false, source: 'mistralai/Mixtral-8x22B-v0.1 config.json (141B total, 39B active)',
  },
  'qwen3-235b-a22b': {
    name: 'Qwen3-235B-A22B', layers: 94, hidden: 4096, heads: 64, kv_heads: 4, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 151936, dense_layers: 0, dense_ffn: 0, experts: 128, shared_experts: 0, top_k: 8, expert_ffn: 1536,
    mtp_layers: 0, tied_embeddings: false, source: 'Qwen/Qwen3-235B-A22B config.json (235B total, 22B active)',
  },
  'qwen3-30b-a3b': {
    name: 'Qwen3-30B-A3B', layers: 48, hidden: 2048, heads: 32, kv_heads: 4, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 151936, dense_layers: 0, dense_ffn: 0, experts: 128, shared_experts: 0, top_k: 8, expert_ffn: 768,
    mtp_layers: 0, tied_embeddings: false, source: 'Qwen/Qwen3-30B-A3B config.json',
  },
  'skywork-moe': {
    name: 'Skywork-MoE 146B', layers: 52, hidden: 4608, heads: 36, kv_heads: 36, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 65536, dense_layers: 0, dense_ffn: 0, experts: 16, shared_experts: 0, top_k: 2, expert_ffn: 12288,
    mtp_layers: 0, tied_embeddings: false, source: 'Skywork/Skywork-MoE-Base config.json (146B total, 22B active; arXiv 2406.06563)',
  },
  'llama3.1-405b': {
    name: 'Llama 3.1 405B', layers: 126, hidden: 16384, heads: 128, kv_heads: 8, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 128256, dense_layers: 126, dense_ffn: 53248, experts: 0, shared_experts: 0, top_k: 0, expert_ffn: 0,
    mtp_layers: 0, tied_embeddings: false, source: 'meta-llama/Llama-3.1-405B config.json; arXiv 2407.21783',
  },
};

export function modelPresetNames(): string[] {
  return Object.keys(MODEL_PRESETS);
}

export function modelPreset(name: string, where = 'model.preset'): ModelShape {
  const p = MODEL_PRESETS[name.toLowerCase()];
  if (!p) throw new MoekitError(`unknown model preset '${name}' (known: ${modelPresetNames().join(', ')})`, where);
  const { source: _s, ...shape } = p;
  return { ...shape };
}

/**
 * Read a Hugging Face config.json (Llama/Mixtral/Qwen2-3 MoE/OLMoE/Granite MoE/gpt-oss/DeepSeek-V2-V3/ERNIE 4.5 MoE
 * field names). Dense layers must come first (DeepSeek's first_k_dense_replace, ERNIE's moe_layer_start_index, a
 * Qwen mlp_only_layers prefix): interleaved dense/MoE layers are not modelled and are refused.
 */
export function modelFromHfConfig(path: string): Partial<ModelShape> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new MoekitError(`cannot read config.json: ${(e as Error).message}`, path);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new MoekitError('config.json must be a JSON object', path);
  const cfg = parsed as Record<string, unknown>;
  const n = (k: string): number | undefined => (typeof cfg[k] === 'number' ? (cfg[k] as number) : undefined);
  const hidden = n('hidden_size');
  const heads = n('num_attention_heads');
  const layers = n('num_hidden_layers');
  if (!hidden || !heads || !layers) throw new MoekitError('config.json lacks hidden_size / num_attention_heads / num_hidden_layers', path);
  if (Array.isArray(cfg.moe_num_experts)) throw new MoekitError('moe_num_experts as a list (multimodal expert groups) is not modelled', path);
  const experts = n('n_routed_experts') ?? n('num_local_experts') ?? n('num_experts') ?? n('moe_num_experts') ?? 0;
  const mla = n('kv_lora_rank') !== undefined;
  const notModelled = (what: string) => new MoekitError(`${what} (interleaved dense/MoE layers) is not modelled`, path);
  // leading dense layers: DeepSeek first_k_dense_replace, ERNIE 4.5 moe_layer_start_index, Qwen mlp_only_layers
  let firstDense = n('first_k_dense_replace') ?? n('moe_layer_start_index') ?? 0;
  const mlpOnly = cfg.mlp_only_layers;
  if (Array.isArray(mlpOnly) && mlpOnly.length > 0) {
    const sorted = [...mlpOnly].sort((a, b) => Number(a) - Number(b));
    if (!sorted.every((x, i) => x === i)) throw notModelled(`mlp_only_layers ${JSON.stringify(mlpOnly)}`);
    firstDense = Math.max(firstDense, sorted.length);
  }
  const decoderSparse = n('decoder_sparse_step');
  if (decoderSparse !== undefined && decoderSparse > 1) throw notModelled('decoder_sparse_step > 1');
  const freq = n('moe_layer_freq') ?? n('moe_layer_interval');
  if (freq !== undefined && freq > 1) throw notModelled(`${cfg.moe_layer_freq !== undefined ? 'moe_layer_freq' : 'moe_layer_interval'} ${freq}`);
  const moeEnd = n('moe_layer_end_index');
  if (experts > 0 && moeEnd !== undefined && moeEnd >= 0 && moeEnd < layers - 1) throw notModelled(`moe_layer_end_index ${moeEnd} < num_hidden_layers - 1`);
  const out: Partial<ModelShape> = {
    name: String(cfg.model_type ?? 'config.json'),
    layers, hidden, heads,
    kv_heads: n('num_key_value_heads') ?? heads,
    head_dim: n('head_dim') ?? (mla ? (n('qk_nope_head_dim') ?? 0) + (n('qk_rope_head_dim') ?? 0) : hidden / heads),
    attention: mla ? 'mla' : 'gqa',
    q_lora_rank: n('q_lora_rank') ?? 0,
    kv_lora_rank: n('kv_lora_rank') ?? 0,
    qk_nope_head_dim: n('qk_nope_head_dim') ?? 0,
    qk_rope_head_dim: n('qk_rope_head_dim') ?? 0,
    v_head_dim: n('v_head_dim') ?? 0,
    vocab: n('vocab_size'),
    dense_layers: experts > 0 ? firstDense : layers,
    dense_ffn: n('intermediate_size') ?? 0,
    experts,
    // ERNIE 4.5: one shared MLP of moe_num_shared_experts x moe_intermediate_size (= shared_experts x expert_ffn)
    shared_experts: n('n_shared_experts') ?? n('moe_num_shared_experts') ?? (n('shared_expert_intermediate_size') ? 1 : 0),
    shared_ffn: n('shared_expert_intermediate_size') ?? 0,
    top_k: n('num_experts_per_tok') ?? n('num_experts_per_token') ?? n('moe_k') ?? 0,
    expert_ffn: n('moe_intermediate_size') ?? (experts > 0 ? n('intermediate_size') ?? 0 : 0),
    mtp_layers: n('num_nextn_predict_layers') ?? 0,
    tied_embeddings: cfg.tie_word_embeddings === true,
  };
  return out;
}
