import { describe, expect, it } from 'vitest';
import { attentionParams, attnCoreFlopsPerToken, attnHeadDims, modelFlopsPerToken, paramCounts, sharedWidth } from '../../src/plan/flops.js';
import { modelPreset, type ModelShape } from '../../src/plan/models.js';
import { resolveModel } from '../../src/plan/spec.js';

const within = (x: number, want: number, rel: number) => expect(Math.abs(x / want - 1)).toBeLessThanOrEqual(rel);

describe('parameter counts against published totals', () => {
  // published total / active parameters (billions) from the model cards and papers
  const cases: [string, number, number, number][] = [
    ['deepseek-v3', 671, 37, 0.02], // arXiv 2412.19437: 671B total, 37B activated (MTP module's 14B not included)
    ['pangu-ultra-moe', 718, 39, 0.03], // arXiv 2505.04519: 718B total, 39B activated
    ['mixtral-8x22b', 141, 39, 0.02], // Mistral: 141B total, 39B active
    ['mixtral-8x7b', 46.7, 12.9, 0.02], // Mistral: 46.7B total, 12.9B active
    ['qwen3-235b-a22b', 235, 22, 0.03], // Qwen3: 235B total, 22B activated
    ['skywork-moe', 146, 22, 0.05], // arXiv 2406.06563: 146B total, 22B activated
    ['llama3.1-405b', 405, 405, 0.01],
    // model card: 355B total (the MTP layer counted), 32B active without the embedding and LM head (1.55B; 33.6B with them)
    ['glm-4.5', 355, 32, 0.025],
    ['dots.llm1', 142, 14, 0.01], // arXiv 2506.05767: 142B total, 14B activated
    ['hunyuan-a13b', 80, 13, 0.01], // model card: 80B total, 13B active
    ['llama-4-scout', 109, 17, 0.02], // model card: 109B total (its vision encoder included: 107.8B text), 17B active
  ];
  for (const [name, total, active, tol] of cases) {
    it(`${name}: ${total}B total, ${active}B active`, () => {
      const pc = paramCounts(modelPreset(name));
      within(pc.total / 1e9, total, tol);
      within(pc.active / 1e9, active, tol + 0.03);
    });
  }

  it('reads a real HF config.json (DeepSeek-V3) into the same shape as the preset', () => {
    const fromCfg = resolveModel({ config: 'fixtures/configs/deepseek-v3.json' });
    const pc = paramCounts(fromCfg);
    expect(pc.total).toBe(paramCounts(modelPreset('deepseek-v3')).total);
    // the MTP module: one MoE layer (11.5B with its 256 experts) + a 2h x h projection, about 14B per the report
    within(pc.mtp / 1e9, 11.7, 0.05);
  });

  it('reads Mixtral 8x7B config.json: 46.7B total', () => {
    const m = resolveModel({ config: 'fixtures/configs/mixtral-8x7b.json' });
    within(paramCounts(m).total / 1e9, 46.7, 0.01);
  });
});

describe('parameters of a small MLA model with a dense layer, a shared expert, MTP and tied embeddings, by hand', () => {
  // hidden 64, 4 heads; MLA: q_lora 32, kv_lora 16, nope 8, rope 4, v 8; layer 0 dense (ffn 48), layers 1-2 MoE
  // (4 experts top-2 of width 16, one shared expert of the same width); one MTP module; vocab 50, tied
  const mla: ModelShape = {
    name: 'tiny-mla', layers: 3, hidden: 64, heads: 4, kv_heads: 4, head_dim: 0, attention: 'mla',
    q_lora_rank: 32, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8,
    vocab: 50, dense_layers: 1, dense_ffn: 48, experts: 4, shared_experts: 1, top_k: 2, expert_ffn: 16, mtp_layers: 1, tied_embeddings: true,
  };
  it('attention: q down 64x32 + q up 32x4x12, kv down 64x(16+4), kv up 16x4x(8+8), out 4x8x64', () => {
    expect(attentionParams(mla)).toBe(2048 + 1536 + 1280 + 1024 + 2048);
    // no q LoRA: q straight from the hidden state, 64 x 4 x 12
    expect(attentionParams({ ...mla, q_lora_rank: 0 })).toBe(3072 + 1280 + 1024 + 2048);
    expect(attnHeadDims(mla)).toEqual([12, 8]);
  });
  it('every count', () => {
    const pc = paramCounts(mla);
    expect([pc.dense_ffn, pc.expert, pc.shared, pc.router, pc.embedding, pc.head, pc.moe_layers]).toEqual([9216, 3072, 3072, 256, 3200, 0, 2]);
    // MoE layer: 7936 + 3072 + 256 + 4 x 3072 = 23552 (active: 2 experts, 17408)
    expect(pc.total).toBe(3200 + (7936 + 9216) + 2 * 23552);
    expect(pc.active).toBe(3200 + (7936 + 9216) + 2 * 17408);
    // the MTP module: one MoE layer + its 2h x h projection
    expect(pc.mtp).toBe(23552 + 2 * 64 * 64);
    // matmuls per token: active - embedding + the (tied) head's matmul + the MTP module's active part and its head pass
    expect(pc.active_matmul).toBe(3200 + (7936 + 9216) + 2 * 17408 - 3200 + 3200 + (17408 + 8192 + 3200));
  });
  it('an explicit shared width (shared_ffn) wins over shared_experts x expert_ffn; no shared expert, none', () => {
    expect(sharedWidth({ ...mla, shared_ffn: 40 })).toBe(40);
    expect(sharedWidth(mla)).toBe(16);
    expect(sharedWidth({ ...mla, shared_experts: 2 })).toBe(32);
    expect(sharedWidth({ ...mla, shared_experts: 0, shared_ffn: 40 })).toBe(0);
  });
  it('a dense model with an MTP module: the module is a dense layer + its projection; no router, no MoE layers', () => {
    const dense = { ...mla, experts: 0, top_k: 0, shared_experts: 0, dense_layers: 3 };
    const pc = paramCounts(dense);
    expect([pc.router, pc.moe_layers]).toEqual([0, 0]);
    expect(pc.mtp).toBe(7936 + 9216 + 8192);
    expect(pc.total).toBe(3200 + 3 * (7936 + 9216));
  });
});

describe('FLOPs of a small config, by hand', () => {
  // 2 layers, hidden 64, 4 heads of 16, 2 KV heads, 4 experts top-2 of width 32, vocab 100, untied
  const tiny: ModelShape = {
    name: 'tiny', layers: 2, hidden: 64, heads: 4, kv_heads: 2, head_dim: 16, attention: 'gqa',
    q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0,
    vocab: 100, dense_layers: 0, dense_ffn: 0, experts: 4, shared_experts: 0, top_k: 2, expert_ffn: 32, mtp_layers: 0, tied_embeddings: false,
  };
  it('parameters', () => {
    const pc = paramCounts(tiny);
    // attention: Q 64*64 + K,V 2*64*32 + O 64*64 = 4096 + 4096 + 4096
    expect(pc.attention).toBe(12288);
    expect(pc.expert).toBe(3 * 64 * 32);
    expect(pc.router).toBe(256);
    // embedding 6400 + head 6400 + 2 layers * (12288 + 256 + 4 * 6144)
    expect(pc.total).toBe(87040);
    // active: 2 of 4 experts
    expect(pc.active).toBe(12800 + 2 * (12288 + 256 + 2 * 6144));
  });
  it('6 N_active plus causal attention', () => {
    // per layer per token forward: 2 * heads * (d_qk + d_v) * (S+1)/2 = 2*4*32*4.5 at S = 8
    expect(attnCoreFlopsPerToken(tiny, 8)).toBe(1152);
    // 6 * (active - input embedding) + 3 * layers * 1152
    expect(modelFlopsPerToken(tiny, 8)).toBe(6 * (62464 - 6400) + 3 * 2 * 1152);
  });
  it('DeepSeek-V3: 6 N_active is within the published 37B-active budget', () => {
    const m = modelPreset('deepseek-v3');
    // model FLOPs per token at 4K: 6 * (37B + MTP) + attention, between 250 and 300 GFLOP
    const f = modelFlopsPerToken(m, 4096) / 1e9;
    expect(f).toBeGreaterThan(6 * 37);
    expect(f).toBeLessThan(6 * 37 + 80);
  });
});

describe('sliding-window attention (gpt-oss: alternating window-128 and full layers)', () => {
  it('the mean keys per query match a naive count over positions and layers', async () => {
    const { meanKeys } = await import('../../src/plan/flops.js');
    const m = { layers: 36, sliding_window: 128, window_layers: 18 };
    for (const seq of [64, 128, 1000, 4096]) {
      let keys = 0;
      for (let l = 0; l < 36; l++) for (let i = 0; i < seq; i++) keys += l % 2 === 0 ? Math.min(i + 1, 128) : i + 1;
      expect(meanKeys(m, seq)).toBeCloseTo(keys / (36 * seq), 9);
    }
    expect(meanKeys({ layers: 4 }, 4096)).toBe(4097 / 2);
  });
  it('GPT-OSS-120B is not costed as full attention: its attention FLOPs at 4K are about half', async () => {
    const { attnCoreFlopsPerToken } = await import('../../src/plan/flops.js');
    const { modelPreset } = await import('../../src/plan/models.js');
    const g = modelPreset('gpt-oss-120b');
    const full = attnCoreFlopsPerToken({ ...g, sliding_window: undefined, window_layers: undefined }, 4096);
    const r = attnCoreFlopsPerToken(g, 4096) / full;
    expect(r).toBeGreaterThan(0.5);
    expect(r).toBeLessThan(0.54);
  });
});
