/**
 * Model shapes known to the planner (spec `model: { preset: NAME }`), each from its published
 * config.json or paper; and the shape of a model the engine describes (`model: { config: PATH }`).
 */
import { readConfig } from '../io/config.js';
import type { ModelDesc } from '../models/desc.js';
import { describeModel } from '../models/registry.js';
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
  /**
   * sliding-window attention (gpt-oss's `layer_types`, Mistral's `sliding_window`): `window_layers` of the layers
   * attend to the last `sliding_window` tokens only; absent = every layer full causal
   */
  sliding_window?: number;
  window_layers?: number;
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
  'glm-4.5': {
    name: 'GLM-4.5', layers: 92, hidden: 5120, heads: 96, kv_heads: 8, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 151552, dense_layers: 3, dense_ffn: 12288, experts: 160, shared_experts: 1, top_k: 8, expert_ffn: 1536,
    mtp_layers: 1, tied_embeddings: false,
    source: 'zai-org/GLM-4.5 config.json (fixtures/configs/glm-4.5.json); model card: 355B total, 32B active',
  },
  'dots.llm1': {
    name: 'dots.llm1', layers: 62, hidden: 4096, heads: 32, kv_heads: 32, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 152064, dense_layers: 1, dense_ffn: 10944, experts: 128, shared_experts: 2, top_k: 6, expert_ffn: 1408,
    mtp_layers: 0, tied_embeddings: false,
    source: 'rednote-hilab/dots.llm1.base config.json (fixtures/configs/dots.llm1.json); arXiv 2506.05767: 142B total, 14B activated',
  },
  'hunyuan-a13b': {
    name: 'Hunyuan-A13B', layers: 32, hidden: 4096, heads: 32, kv_heads: 8, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 128167, dense_layers: 0, dense_ffn: 0, experts: 64, shared_experts: 1, top_k: 8, expert_ffn: 3072,
    mtp_layers: 0, tied_embeddings: true,
    source: 'tencent/Hunyuan-A13B-Instruct config.json (fixtures/configs/hunyuan-a13b.json); model card: 80B total, 13B active',
  },
  'llama-4-scout': {
    name: 'Llama 4 Scout 17B-16E', layers: 48, hidden: 5120, heads: 40, kv_heads: 8, head_dim: 128, attention: 'gqa', ...MLA_NONE,
    vocab: 202048, dense_layers: 0, dense_ffn: 0, experts: 16, shared_experts: 1, top_k: 1, expert_ffn: 8192,
    mtp_layers: 0, tied_embeddings: false,
    source: 'meta-llama/Llama-4-Scout-17B-16E config.json text_config (fixtures/configs/llama-4-scout-17b-16e.json); model card: 109B total with the vision encoder, 17B active',
  },
  'gpt-oss-120b': {
    name: 'GPT-OSS-120B', layers: 36, hidden: 2880, heads: 64, kv_heads: 8, head_dim: 64, attention: 'gqa', ...MLA_NONE,
    vocab: 201088, dense_layers: 0, dense_ffn: 0, experts: 128, shared_experts: 0, top_k: 4, expert_ffn: 2880,
    mtp_layers: 0, tied_embeddings: false, sliding_window: 128, window_layers: 18,
    source: 'openai/gpt-oss-120b config.json: 36 layers alternating sliding_attention (window 128) and full_attention (layer_types), 128 experts top-4, attention sinks and biases (their FLOPs are O(tokens x hidden): not counted)',
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
 * The planner's shape of a model as the engine describes it (src/models/desc.ts: the one description every
 * architecture's config.json is normalised into). The planner models the dense layers first, then the MoE layers
 * (DeepSeek's first_k_dense_replace, ERNIE's moe_layer_start_index, a Qwen mlp_only_layers prefix); any other
 * pattern (dense layers between or after MoE layers: moe_layer_freq, decoder_sparse_step, moe_layer_interval,
 * moe_layer_end_index) is refused. `extra` carries what the description does not: the name and the MTP modules.
 */
/** the sliding-window layers of a description (the first window size; gpt-oss uses one), when it has any */
function windowOf(d: ModelDesc): { sliding_window?: number; window_layers?: number } {
  const w = d.layers.filter((l) => l.slidingWindow !== null && l.slidingWindow > 0);
  return w.length === 0 ? {} : { sliding_window: w[0].slidingWindow as number, window_layers: w.length };
}

export function shapeFromDesc(d: ModelDesc, extra: { name?: string; mtp_layers?: number } = {}, where?: string): ModelShape {
  const L = d.layers.length;
  const ssm = d.layers.filter((l) => l.mixer === 'mamba2').length;
  if (ssm > 0) throw new MoekitError(`${ssm} of the ${L} layers are Mamba-2 state-space mixers: the planner's cost model has attention layers only`, where);
  const linear = d.layers.filter((l) => l.mixer === 'deltanet').length;
  if (linear > 0) throw new MoekitError(`${linear} of the ${L} layers are Gated DeltaNet linear attention: the planner's cost model has attention layers only`, where);
  const lightning = d.layers.filter((l) => l.mixer === 'lightning').length;
  if (lightning > 0) throw new MoekitError(`${lightning} of the ${L} layers are lightning linear attention: the planner's cost model has attention layers only`, where);
  if (d.layers.some((l) => l.shortcutMoe)) {
    throw new MoekitError(`shortcut-connected MoE layers (LongCat-Flash: two attention + MLP sublayers per layer, zero-computation experts) are not modelled: the planner's cost model has one attention and one FFN per layer`, where);
  }
  if (d.attention.moa) throw new MoekitError(`a mixture of attention heads (routed query and output projections, ${d.arch}): the planner's cost model has dense attention projections only`, where);
  const firstMoe = d.layers.findIndex((l) => l.mlp === 'moe');
  const moe = firstMoe >= 0 && d.moe.experts > 0;
  if (moe) {
    const late: number[] = [];
    for (let l = firstMoe; l < L; l++) if (d.layers[l].mlp !== 'moe') late.push(l);
    if (late.length > 0) {
      const list = late.length <= 4 ? late.join(', ') : `${late.slice(0, 3).join(', ')} and ${late.length - 3} more`;
      throw new MoekitError(`dense layer${late.length > 1 ? 's' : ''} ${list} after MoE layer ${firstMoe}: interleaved dense/MoE layers are not modelled (dense layers first, then MoE)`, where);
    }
  }
  const a = d.attention;
  const mla = a.kind === 'mla' ? a.mla : undefined;
  // shared experts: the description has their total width; DeepSeek and ERNIE build it as count x expert width, Qwen2-MoE
  // has one gated shared expert of its own width (shared_expert_intermediate_size)
  const sharedFfn = moe ? d.moe.sharedFfn : 0;
  const byCount = sharedFfn > 0 && !d.moe.sharedGated && sharedFfn % d.moe.expertFfn === 0;
  return {
    name: extra.name ?? d.arch,
    layers: L,
    hidden: d.hidden,
    heads: a.nHeads,
    kv_heads: a.nKvHeads,
    head_dim: a.headDim,
    attention: a.kind,
    q_lora_rank: mla?.qLoraRank ?? 0,
    kv_lora_rank: mla?.kvLoraRank ?? 0,
    qk_nope_head_dim: mla?.qkNopeDim ?? 0,
    qk_rope_head_dim: mla?.qkRopeDim ?? 0,
    v_head_dim: mla?.vHeadDim ?? 0,
    vocab: d.vocab,
    dense_layers: moe ? firstMoe : L,
    dense_ffn: d.denseFfn,
    experts: moe ? d.moe.experts : 0,
    shared_experts: sharedFfn === 0 ? 0 : byCount ? sharedFfn / d.moe.expertFfn : 1,
    shared_ffn: byCount ? 0 : sharedFfn,
    top_k: moe ? d.moe.topK : 0,
    expert_ffn: moe ? d.moe.expertFfn : 0,
    mtp_layers: extra.mtp_layers ?? 0,
    tied_embeddings: d.tieEmbeddings,
    ...windowOf(d),
  };
}

/**
 * A Hugging Face config.json (or a model directory holding one) read by the engine: `readConfig` and the
 * architecture's own `describe` (src/models/registry.ts), so the planner accepts exactly the architectures
 * `moekit inspect` does and reads their keys the same way. DeepSeek-V3's MTP modules (num_nextn_predict_layers),
 * which the engine does not run, are read here.
 */
export function modelFromConfig(path: string): ModelShape {
  const c = readConfig(path);
  const d = describeModel(c).desc;
  return shapeFromDesc(d, { name: c.str('model_type'), mtp_layers: c.int('num_nextn_predict_layers', 0) }, c.file);
}
