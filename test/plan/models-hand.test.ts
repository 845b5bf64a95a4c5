/**
 * src/plan/models.ts by hand (fast: the mutation run executes this file for every covered mutant; models.test.ts reads
 * the fixture configs through the engine). Every preset is pinned field by field against the published config.json its
 * `source` names (the fixture copies in fixtures/configs/ where we have them, re-read here as raw JSON), its `source`
 * text exactly; shapeFromDesc runs on small hand-made descriptions, one per branch, with every error message exact.
 *
 * MODEL_PRESETS and MLA_NONE are evaluated once, when models.ts is imported; under the mutation run's shared module
 * graph that happens before any mutant is active, so a test reading the module every file imports cannot see a mutant
 * of a preset. The preset tests therefore import models.ts afresh inside the test (`freshModels`: a query string makes
 * it a module instance of its own, evaluated then), which is where the mutant is active.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AttentionDesc, LayerDesc, ModelDesc, MoeDesc } from '../../src/models/desc.js';
import { modelPreset, modelPresetNames, shapeFromDesc, type ModelShape } from '../../src/plan/models.js';
import { MoekitError } from '../../src/util/errors.js';
import { errorOf } from './helpers.js';

type ModelsModule = typeof import('../../src/plan/models.js');
let instance = 0;
/** src/plan/models.ts evaluated now, as a module instance of its own (see the header) */
async function freshModels(): Promise<ModelsModule> {
  const url = `../../src/plan/models.js?models-hand=${++instance}`;
  return (await import(/* @vite-ignore */ url)) as ModelsModule;
}

const NO_MLA = { q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0 };
const DS_MLA = { q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128 };

/**
 * Every preset as its config.json gives it (HF key names in the comments). MLA head_dim = qk_nope + qk_rope = 192.
 * Dense layers: DeepSeek / GLM / dots first_k_dense_replace; the others have none (every layer MoE) except Llama 3.1.
 */
const PRESETS: Record<string, ModelShape & { source: string }> = {
  // deepseek-ai/DeepSeek-V3: num_hidden_layers 61, hidden_size 7168, 128 heads (kv 128), MLA ranks q 1536 / kv 512,
  // nope 128, rope 64, v 128, vocab_size 129280, first_k_dense_replace 3, intermediate_size 18432, n_routed_experts 256,
  // n_shared_experts 1, num_experts_per_tok 8, moe_intermediate_size 2048, num_nextn_predict_layers 1, untied
  'deepseek-v3': {
    name: 'DeepSeek-V3', layers: 61, hidden: 7168, heads: 128, kv_heads: 128, head_dim: 192, attention: 'mla', ...DS_MLA,
    vocab: 129280, dense_layers: 3, dense_ffn: 18432, experts: 256, shared_experts: 1, top_k: 8, expert_ffn: 2048,
    mtp_layers: 1, tied_embeddings: false,
    source: 'deepseek-ai/DeepSeek-V3 config.json; arXiv 2412.19437 (671B total, 37B active)',
  },
  // arXiv 2505.04519: 61 layers, hidden 7680, 256 routed + 1 shared expert, top-8, MLA, one MTP module; the rest is the
  // DeepSeek-V3 layout the preset assumes (its source says so), vocab 153376
  'pangu-ultra-moe': {
    name: 'Pangu Ultra MoE 718B', layers: 61, hidden: 7680, heads: 128, kv_heads: 128, head_dim: 192, attention: 'mla', ...DS_MLA,
    vocab: 153376, dense_layers: 3, dense_ffn: 18432, experts: 256, shared_experts: 1, top_k: 8, expert_ffn: 2048,
    mtp_layers: 1, tied_embeddings: false,
    source: 'arXiv 2505.04519 (61 layers, hidden 7680, 256 experts + 1 shared, top-8, MLA, MTP; 718B total, 39B active); MLA ranks, dense FFN and vocab from openPangu-Ultra-MoE-718B config.json as we recall it (assumption where the paper is silent)',
  },
  // mistralai/Mixtral-8x7B-v0.1: 32 layers, hidden 4096, 32 heads / 8 kv (head 128), vocab 32000, 8 local experts
  // top-2, intermediate_size 14336
  'mixtral-8x7b': {
    name: 'Mixtral 8x7B', layers: 32, hidden: 4096, heads: 32, kv_heads: 8, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 32000, dense_layers: 0, dense_ffn: 0, experts: 8, shared_experts: 0, top_k: 2, expert_ffn: 14336,
    mtp_layers: 0, tied_embeddings: false, source: 'mistralai/Mixtral-8x7B-v0.1 config.json (46.7B total, 12.9B active)',
  },
  // mistralai/Mixtral-8x22B-v0.1: 56 layers, hidden 6144, 48 heads / 8 kv, vocab 32768, 8 experts top-2, width 16384
  'mixtral-8x22b': {
    name: 'Mixtral 8x22B', layers: 56, hidden: 6144, heads: 48, kv_heads: 8, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 32768, dense_layers: 0, dense_ffn: 0, experts: 8, shared_experts: 0, top_k: 2, expert_ffn: 16384,
    mtp_layers: 0, tied_embeddings: false, source: 'mistralai/Mixtral-8x22B-v0.1 config.json (141B total, 39B active)',
  },
  // Qwen/Qwen3-235B-A22B: 94 layers, hidden 4096, 64 heads / 4 kv, head_dim 128, vocab 151936, 128 experts top-8,
  // moe_intermediate_size 1536
  'qwen3-235b-a22b': {
    name: 'Qwen3-235B-A22B', layers: 94, hidden: 4096, heads: 64, kv_heads: 4, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 151936, dense_layers: 0, dense_ffn: 0, experts: 128, shared_experts: 0, top_k: 8, expert_ffn: 1536,
    mtp_layers: 0, tied_embeddings: false, source: 'Qwen/Qwen3-235B-A22B config.json (235B total, 22B active)',
  },
  // Qwen/Qwen3-30B-A3B: 48 layers, hidden 2048, 32 heads / 4 kv, head_dim 128, vocab 151936, 128 experts top-8, width 768
  'qwen3-30b-a3b': {
    name: 'Qwen3-30B-A3B', layers: 48, hidden: 2048, heads: 32, kv_heads: 4, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 151936, dense_layers: 0, dense_ffn: 0, experts: 128, shared_experts: 0, top_k: 8, expert_ffn: 768,
    mtp_layers: 0, tied_embeddings: false, source: 'Qwen/Qwen3-30B-A3B config.json',
  },
  // Skywork/Skywork-MoE-Base: 52 layers, hidden 4608, 36 heads (MHA), vocab 65536, 16 experts top-2, width 12288
  'skywork-moe': {
    name: 'Skywork-MoE 146B', layers: 52, hidden: 4608, heads: 36, kv_heads: 36, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 65536, dense_layers: 0, dense_ffn: 0, experts: 16, shared_experts: 0, top_k: 2, expert_ffn: 12288,
    mtp_layers: 0, tied_embeddings: false, source: 'Skywork/Skywork-MoE-Base config.json (146B total, 22B active; arXiv 2406.06563)',
  },
  // zai-org/GLM-4.5: 92 layers, hidden 5120, 96 heads / 8 kv, head_dim 128, vocab 151552, first_k_dense_replace 3,
  // intermediate_size 12288, 160 experts + 1 shared, top-8, width 1536, num_nextn_predict_layers 1
  'glm-4.5': {
    name: 'GLM-4.5', layers: 92, hidden: 5120, heads: 96, kv_heads: 8, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 151552, dense_layers: 3, dense_ffn: 12288, experts: 160, shared_experts: 1, top_k: 8, expert_ffn: 1536,
    mtp_layers: 1, tied_embeddings: false,
    source: 'zai-org/GLM-4.5 config.json (fixtures/configs/glm-4.5.json); model card: 355B total, 32B active',
  },
  // rednote-hilab/dots.llm1.base: 62 layers, hidden 4096, 32 heads (MHA), head_dim 128, vocab 152064,
  // first_k_dense_replace 1, intermediate_size 10944, 128 experts + 2 shared, top-6, width 1408
  'dots.llm1': {
    name: 'dots.llm1', layers: 62, hidden: 4096, heads: 32, kv_heads: 32, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 152064, dense_layers: 1, dense_ffn: 10944, experts: 128, shared_experts: 2, top_k: 6, expert_ffn: 1408,
    mtp_layers: 0, tied_embeddings: false,
    source: 'rednote-hilab/dots.llm1.base config.json (fixtures/configs/dots.llm1.json); arXiv 2506.05767: 142B total, 14B activated',
  },
  // tencent/Hunyuan-A13B-Instruct: 32 layers, hidden 4096, 32 heads / 8 kv, vocab 128167, 64 experts + 1 shared
  // (num_shared_expert), moe_topk 8, width 3072; tie_word_embeddings true (the only tied preset)
  'hunyuan-a13b': {
    name: 'Hunyuan-A13B', layers: 32, hidden: 4096, heads: 32, kv_heads: 8, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 128167, dense_layers: 0, dense_ffn: 0, experts: 64, shared_experts: 1, top_k: 8, expert_ffn: 3072,
    mtp_layers: 0, tied_embeddings: true,
    source: 'tencent/Hunyuan-A13B-Instruct config.json (fixtures/configs/hunyuan-a13b.json); model card: 80B total, 13B active',
  },
  // meta-llama/Llama-4-Scout-17B-16E text_config: 48 layers, hidden 5120, 40 heads / 8 kv, vocab 202048, 16 local
  // experts + 1 shared, top-1, intermediate_size 8192, every layer MoE (interleave_moe_layer_step 1)
  'llama-4-scout': {
    name: 'Llama 4 Scout 17B-16E', layers: 48, hidden: 5120, heads: 40, kv_heads: 8, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 202048, dense_layers: 0, dense_ffn: 0, experts: 16, shared_experts: 1, top_k: 1, expert_ffn: 8192,
    mtp_layers: 0, tied_embeddings: false,
    source: 'meta-llama/Llama-4-Scout-17B-16E config.json text_config (fixtures/configs/llama-4-scout-17b-16e.json); model card: 109B total with the vision encoder, 17B active',
  },
  // openai/gpt-oss-120b: 36 layers, hidden 2880, 64 heads / 8 kv, head_dim 64, vocab 201088, 128 experts top-4, width
  // 2880; sliding_window 128 on the 18 sliding_attention layers of layer_types
  'gpt-oss-120b': {
    name: 'GPT-OSS-120B', layers: 36, hidden: 2880, heads: 64, kv_heads: 8, head_dim: 64, attention: 'gqa', ...NO_MLA,
    vocab: 201088, dense_layers: 0, dense_ffn: 0, experts: 128, shared_experts: 0, top_k: 4, expert_ffn: 2880,
    mtp_layers: 0, tied_embeddings: false, sliding_window: 128, window_layers: 18,
    source: 'openai/gpt-oss-120b config.json: 36 layers alternating sliding_attention (window 128) and full_attention (layer_types), 128 experts top-4, attention sinks and biases (their FLOPs are O(tokens x hidden): not counted)',
  },
  // meta-llama/Llama-3.1-405B: 126 layers, hidden 16384, 128 heads / 8 kv, vocab 128256, intermediate_size 53248, dense
  'llama3.1-405b': {
    name: 'Llama 3.1 405B', layers: 126, hidden: 16384, heads: 128, kv_heads: 8, head_dim: 128, attention: 'gqa', ...NO_MLA,
    vocab: 128256, dense_layers: 126, dense_ffn: 53248, experts: 0, shared_experts: 0, top_k: 0, expert_ffn: 0,
    mtp_layers: 0, tied_embeddings: false, source: 'meta-llama/Llama-3.1-405B config.json; arXiv 2407.21783',
  },
};
const NAMES = ['deepseek-v3', 'pangu-ultra-moe', 'mixtral-8x7b', 'mixtral-8x22b', 'qwen3-235b-a22b', 'qwen3-30b-a3b', 'skywork-moe',
  'glm-4.5', 'dots.llm1', 'hunyuan-a13b', 'llama-4-scout', 'gpt-oss-120b', 'llama3.1-405b'];

describe('MODEL_PRESETS (module evaluated inside the test)', () => {
  it('holds exactly the thirteen presets, in this order', async () => {
    const m = await freshModels();
    expect(Object.keys(m.MODEL_PRESETS)).toEqual(NAMES);
    expect(m.modelPresetNames()).toEqual(NAMES);
  });
  for (const name of NAMES) {
    it(`${name}: every field and the source text as published`, async () => {
      const m = await freshModels();
      expect(m.MODEL_PRESETS[name]).toStrictEqual(PRESETS[name]);
      // modelPreset: the same fields without the source, a copy (changing it leaves the preset alone)
      const { source: _s, ...shape } = PRESETS[name];
      const got = m.modelPreset(name);
      expect(got).toStrictEqual(shape);
      got.layers = 1;
      expect(m.modelPreset(name).layers).toBe(shape.layers);
    });
  }
  it('a GQA preset carries the five MLA fields as 0 (MLA_NONE), not absent', async () => {
    const m = await freshModels();
    for (const name of NAMES.filter((n) => PRESETS[n].attention === 'gqa')) {
      for (const k of Object.keys(NO_MLA) as (keyof typeof NO_MLA)[]) {
        expect(Object.prototype.hasOwnProperty.call(m.MODEL_PRESETS[name], k), `${name}.${k}`).toBe(true);
        expect(m.MODEL_PRESETS[name][k], `${name}.${k}`).toBe(0);
      }
    }
  });
  it('only Hunyuan-A13B ties its embeddings; only DeepSeek-V3, Pangu and GLM-4.5 have an MTP module', async () => {
    const m = await freshModels();
    expect(NAMES.filter((n) => m.MODEL_PRESETS[n].tied_embeddings)).toEqual(['hunyuan-a13b']);
    expect(NAMES.filter((n) => m.MODEL_PRESETS[n].mtp_layers > 0)).toEqual(['deepseek-v3', 'pangu-ultra-moe', 'glm-4.5']);
    expect(NAMES.filter((n) => m.MODEL_PRESETS[n].attention === 'mla')).toEqual(['deepseek-v3', 'pangu-ultra-moe']);
  });
});

describe('the presets against the raw config.json copies in fixtures/configs', () => {
  /** a config.json's own keys (a multimodal config's text_config merged over it); per-layer lists read at layer 0 */
  const raw = (file: string): Record<string, unknown> => {
    const c = JSON.parse(readFileSync(`fixtures/configs/${file}`, 'utf8')) as Record<string, unknown>;
    const all = { ...c, ...((c.text_config as Record<string, unknown> | undefined) ?? {}) };
    return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, Array.isArray(v) && typeof v[0] === 'number' ? v[0] : v]));
  };
  const cases: [string, string, Record<string, string>][] = [
    ['deepseek-v3', 'deepseek-v3.json', { layers: 'num_hidden_layers', hidden: 'hidden_size', heads: 'num_attention_heads', kv_heads: 'num_key_value_heads', q_lora_rank: 'q_lora_rank', kv_lora_rank: 'kv_lora_rank', qk_nope_head_dim: 'qk_nope_head_dim', qk_rope_head_dim: 'qk_rope_head_dim', v_head_dim: 'v_head_dim', vocab: 'vocab_size', dense_layers: 'first_k_dense_replace', dense_ffn: 'intermediate_size', experts: 'n_routed_experts', shared_experts: 'n_shared_experts', top_k: 'num_experts_per_tok', expert_ffn: 'moe_intermediate_size', mtp_layers: 'num_nextn_predict_layers', tied_embeddings: 'tie_word_embeddings' }],
    ['mixtral-8x7b', 'mixtral-8x7b.json', { layers: 'num_hidden_layers', hidden: 'hidden_size', heads: 'num_attention_heads', kv_heads: 'num_key_value_heads', vocab: 'vocab_size', experts: 'num_local_experts', top_k: 'num_experts_per_tok', expert_ffn: 'intermediate_size', tied_embeddings: 'tie_word_embeddings' }],
    ['qwen3-30b-a3b', 'qwen3-30b-a3b.json', { layers: 'num_hidden_layers', hidden: 'hidden_size', heads: 'num_attention_heads', kv_heads: 'num_key_value_heads', head_dim: 'head_dim', vocab: 'vocab_size', experts: 'num_experts', top_k: 'num_experts_per_tok', expert_ffn: 'moe_intermediate_size', tied_embeddings: 'tie_word_embeddings' }],
    ['glm-4.5', 'glm-4.5.json', { layers: 'num_hidden_layers', hidden: 'hidden_size', heads: 'num_attention_heads', kv_heads: 'num_key_value_heads', head_dim: 'head_dim', vocab: 'vocab_size', dense_layers: 'first_k_dense_replace', dense_ffn: 'intermediate_size', experts: 'n_routed_experts', shared_experts: 'n_shared_experts', top_k: 'num_experts_per_tok', expert_ffn: 'moe_intermediate_size', mtp_layers: 'num_nextn_predict_layers', tied_embeddings: 'tie_word_embeddings' }],
    ['dots.llm1', 'dots.llm1.json', { layers: 'num_hidden_layers', hidden: 'hidden_size', heads: 'num_attention_heads', kv_heads: 'num_key_value_heads', head_dim: 'head_dim', vocab: 'vocab_size', dense_layers: 'first_k_dense_replace', dense_ffn: 'intermediate_size', experts: 'n_routed_experts', shared_experts: 'n_shared_experts', top_k: 'num_experts_per_tok', expert_ffn: 'moe_intermediate_size', tied_embeddings: 'tie_word_embeddings' }],
    ['hunyuan-a13b', 'hunyuan-a13b.json', { layers: 'num_hidden_layers', hidden: 'hidden_size', heads: 'num_attention_heads', kv_heads: 'num_key_value_heads', head_dim: 'head_dim', vocab: 'vocab_size', experts: 'num_experts', shared_experts: 'num_shared_expert', top_k: 'moe_topk', expert_ffn: 'moe_intermediate_size', tied_embeddings: 'tie_word_embeddings' }],
    ['llama-4-scout', 'llama-4-scout-17b-16e.json', { layers: 'num_hidden_layers', hidden: 'hidden_size', heads: 'num_attention_heads', kv_heads: 'num_key_value_heads', head_dim: 'head_dim', vocab: 'vocab_size', experts: 'num_local_experts', top_k: 'num_experts_per_tok', expert_ffn: 'intermediate_size', tied_embeddings: 'tie_word_embeddings' }],
  ];
  it('each field equals its config.json key', () => {
    for (const [name, file, keys] of cases) {
      const c = raw(file);
      for (const [field, key] of Object.entries(keys)) {
        expect(PRESETS[name][field as keyof ModelShape], `${name}.${field} = ${key}`).toBe(c[key]);
        expect(modelPreset(name)[field as keyof ModelShape], `${name}.${field} = ${key}`).toBe(c[key]);
      }
    }
  });
});

describe('modelPreset', () => {
  it('is case-insensitive', () => {
    expect(modelPreset('DeepSeek-V3')).toEqual(modelPreset('deepseek-v3'));
    expect(modelPreset('GLM-4.5').name).toBe('GLM-4.5');
  });
  it('an unknown name: the message lists every preset, the error names the spec field (model.preset by default)', async () => {
    const m = await freshModels();
    const msg = `unknown model preset 'deepseek-v4' (known: ${NAMES.join(', ')})`;
    expect(msg).toBe("unknown model preset 'deepseek-v4' (known: deepseek-v3, pangu-ultra-moe, mixtral-8x7b, mixtral-8x22b, qwen3-235b-a22b, qwen3-30b-a3b, skywork-moe, glm-4.5, dots.llm1, hunyuan-a13b, llama-4-scout, gpt-oss-120b, llama3.1-405b)");
    for (const f of [modelPreset, m.modelPreset]) {
      const e = errorOf(() => f('deepseek-v4'));
      expect(e.message).toBe(msg);
      expect(e.file).toBe('model.preset');
      expect(errorOf(() => f('deepseek-v4', 'runs[2].model')).file).toBe('runs[2].model');
    }
    expect(modelPresetNames()).toEqual(NAMES);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// shapeFromDesc on hand-made descriptions: only the fields it reads are filled in
// ---------------------------------------------------------------------------------------------------------------

const L = (mlp: 'dense' | 'moe', extra: Partial<LayerDesc> = {}): LayerDesc => ({ mlp, slidingWindow: null, ...extra });
/**
 * hidden 64, vocab 100, 4 query heads of 16 over 2 KV heads (GQA), dense FFN 96; 8 routed experts of width 32, top-2,
 * no shared expert; untied
 */
function desc(layers: LayerDesc[], o: { moe?: Partial<MoeDesc>; attention?: Partial<AttentionDesc>; tie?: boolean } = {}): ModelDesc {
  return {
    arch: 'qwen3_moe', hfClass: 'Qwen3MoeForCausalLM', hidden: 64, vocab: 100, nLayers: layers.length, denseFfn: 96, tieEmbeddings: o.tie ?? false,
    attention: { kind: 'gqa', nHeads: 4, nKvHeads: 2, headDim: 16, vHeadDim: 16, ...o.attention },
    moe: { experts: 8, topK: 2, expertFfn: 32, sharedFfn: 0, sharedGated: false, ...o.moe },
    layers,
  } as unknown as ModelDesc;
}
/** the shape of desc([dense, moe, moe, moe]) */
const SHAPE: ModelShape = {
  name: 'qwen3_moe', layers: 4, hidden: 64, heads: 4, kv_heads: 2, head_dim: 16, attention: 'gqa', ...NO_MLA, vocab: 100,
  dense_layers: 1, dense_ffn: 96, experts: 8, shared_experts: 0, shared_ffn: 0, top_k: 2, expert_ffn: 32, mtp_layers: 0, tied_embeddings: false,
};
const DMMM = [L('dense'), L('moe'), L('moe'), L('moe')];

describe('shapeFromDesc: the fields', () => {
  it('dense layers first, then MoE: every field from the description; name = arch, no MTP unless given', () => {
    expect(shapeFromDesc(desc(DMMM))).toStrictEqual(SHAPE);
    expect(shapeFromDesc(desc(DMMM), { name: 'tiny', mtp_layers: 2 })).toStrictEqual({ ...SHAPE, name: 'tiny', mtp_layers: 2 });
    expect(shapeFromDesc(desc(DMMM, { tie: true })).tied_embeddings).toBe(true);
  });
  it('MLA: the ranks and head dims from the description; no q LoRA (null) reads as 0', () => {
    const mla = { qLoraRank: 24, kvLoraRank: 16, qkNopeDim: 8, qkRopeDim: 4, vHeadDim: 8 };
    const s = shapeFromDesc(desc(DMMM, { attention: { kind: 'mla', nKvHeads: 4, headDim: 12, vHeadDim: 8, mla } }));
    expect(s).toStrictEqual({ ...SHAPE, kv_heads: 4, head_dim: 12, attention: 'mla', q_lora_rank: 24, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8 });
    const noQ = shapeFromDesc(desc(DMMM, { attention: { kind: 'mla', nKvHeads: 4, headDim: 12, vHeadDim: 8, mla: { ...mla, qLoraRank: null } } }));
    expect(noQ.q_lora_rank).toBe(0);
    expect(noQ.kv_lora_rank).toBe(16);
  });
  it('shared experts: a multiple of the expert width is that many experts (DeepSeek), else one of its own width', () => {
    // 64 = 2 x 32, ungated: two shared experts, shared_ffn 0 (= the product)
    expect(shapeFromDesc(desc(DMMM, { moe: { sharedFfn: 64 } }))).toMatchObject({ shared_experts: 2, shared_ffn: 0 });
    // 32 = 1 x 32: one
    expect(shapeFromDesc(desc(DMMM, { moe: { sharedFfn: 32 } }))).toMatchObject({ shared_experts: 1, shared_ffn: 0 });
    // 48 is not a multiple of 32: one shared expert of width 48
    expect(shapeFromDesc(desc(DMMM, { moe: { sharedFfn: 48 } }))).toMatchObject({ shared_experts: 1, shared_ffn: 48 });
    // gated (Qwen2-MoE shared_expert_intermediate_size): one expert of its own width even when it is a multiple
    expect(shapeFromDesc(desc(DMMM, { moe: { sharedFfn: 64, sharedGated: true } }))).toMatchObject({ shared_experts: 1, shared_ffn: 64 });
    // none
    expect(shapeFromDesc(desc(DMMM, { moe: { sharedFfn: 0 } }))).toMatchObject({ shared_experts: 0, shared_ffn: 0 });
  });
  it('no MoE layer, or MoE layers without experts: a dense shape, every layer dense, whatever the layer pattern', () => {
    const dense = { dense_layers: 4, experts: 0, shared_experts: 0, shared_ffn: 0, top_k: 0, expert_ffn: 0 };
    expect(shapeFromDesc(desc([L('dense'), L('dense'), L('dense'), L('dense')], { moe: { sharedFfn: 64 } }))).toStrictEqual({ ...SHAPE, ...dense });
    // layers marked MoE but experts 0: dense too, and a MoE-dense-MoE pattern is not refused (there is no MoE layer)
    expect(shapeFromDesc(desc([L('moe'), L('dense'), L('moe'), L('dense')], { moe: { experts: 0, sharedFfn: 64 } }))).toStrictEqual({ ...SHAPE, ...dense });
  });
});

describe('shapeFromDesc: sliding windows', () => {
  it('the layers with a window: their count and the first window size', () => {
    const s = shapeFromDesc(desc([L('moe', { slidingWindow: 128 }), L('moe'), L('moe', { slidingWindow: 128 }), L('moe')]));
    expect(s).toStrictEqual({ ...SHAPE, dense_layers: 0, sliding_window: 128, window_layers: 2 });
    expect(shapeFromDesc(desc([L('moe'), L('moe', { slidingWindow: 64 }), L('moe', { slidingWindow: 32 })]))).toMatchObject({ sliding_window: 64, window_layers: 2 });
  });
  it('a window of 0 is no window: no window fields at all', () => {
    const s = shapeFromDesc(desc([L('dense', { slidingWindow: 0 }), L('moe', { slidingWindow: 0 }), L('moe'), L('moe', { slidingWindow: 0 })]));
    expect(s).toStrictEqual(SHAPE);
    expect('sliding_window' in s).toBe(false);
    expect('window_layers' in s).toBe(false);
    // a 0 beside a real window does not count either
    expect(shapeFromDesc(desc([L('moe', { slidingWindow: 0 }), L('moe', { slidingWindow: 16 }), L('moe')]))).toMatchObject({ sliding_window: 16, window_layers: 1 });
  });
});

describe('shapeFromDesc: what the planner refuses, with the exact message and the file', () => {
  const where = 'fixtures/x/config.json';
  const refuse = (d: ModelDesc, message: string) => {
    const e = errorOf(() => shapeFromDesc(d, {}, where));
    expect(e.message).toBe(message);
    expect(e.file).toBe(where);
  };
  const tail = 'interleaved dense/MoE layers are not modelled (dense layers first, then MoE)';
  it('one dense layer after a MoE layer: "dense layer", singular', () => {
    refuse(desc([L('dense'), L('moe'), L('dense')]), `dense layer 2 after MoE layer 1: ${tail}`);
  });
  it('two: "dense layers", plural, listed', () => {
    refuse(desc([L('moe'), L('dense'), L('dense')]), `dense layers 1, 2 after MoE layer 0: ${tail}`);
  });
  it('four are all listed; five or more: the first three and a count of the rest', () => {
    refuse(desc([L('moe'), L('dense'), L('dense'), L('dense'), L('dense')]), `dense layers 1, 2, 3, 4 after MoE layer 0: ${tail}`);
    // late layers 2..6 (five): 2, 3, 4 and 5 - 3 = 2 more
    refuse(desc([L('dense'), L('moe'), L('dense'), L('dense'), L('dense'), L('dense'), L('dense')]), `dense layers 2, 3, 4 and 2 more after MoE layer 1: ${tail}`);
    // seven late layers: 7 - 3 = 4 more
    refuse(desc([L('moe'), L('moe'), ...Array.from({ length: 7 }, () => L('dense'))]), `dense layers 2, 3, 4 and 4 more after MoE layer 0: ${tail}`);
  });
  it('a shortcut-connected MoE layer anywhere (one is enough)', () => {
    const msg = "shortcut-connected MoE layers (LongCat-Flash: two attention + MLP sublayers per layer, zero-computation experts) are not modelled: the planner's cost model has one attention and one FFN per layer";
    refuse(desc([L('moe'), L('moe', { shortcutMoe: true }), L('moe')]), msg);
    refuse(desc([L('moe', { shortcutMoe: true }), L('moe', { shortcutMoe: true })]), msg);
  });
  it('state-space, linear and lightning mixers, counted; a mixture of attention heads', () => {
    refuse(desc([L('moe', { mixer: 'mamba2' }), L('moe'), L('moe', { mixer: 'mamba2' })]),
      "2 of the 3 layers are Mamba-2 state-space mixers: the planner's cost model has attention layers only");
    refuse(desc([L('moe', { mixer: 'deltanet' }), L('moe', { mixer: 'deltanet' }), L('moe', { mixer: 'deltanet' }), L('moe')]),
      "3 of the 4 layers are Gated DeltaNet linear attention: the planner's cost model has attention layers only");
    refuse(desc([L('moe', { mixer: 'lightning' }), L('moe')]),
      "1 of the 2 layers are lightning linear attention: the planner's cost model has attention layers only");
    const moa = { experts: 8, topK: 2, expertFfn: 32, sharedFfn: 0, sharedGated: false } as unknown as MoeDesc;
    refuse({ ...desc(DMMM, { attention: { moa } }), arch: 'jetmoe' } as ModelDesc,
      "a mixture of attention heads (routed query and output projections, jetmoe): the planner's cost model has dense attention projections only");
    // an attention mixer named outright is attention
    expect(shapeFromDesc(desc([L('dense', { mixer: 'attention' }), L('moe', { mixer: 'attention' })]))).toMatchObject({ layers: 2, dense_layers: 1 });
  });
});
