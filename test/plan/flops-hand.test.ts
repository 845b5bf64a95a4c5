/**
 * src/plan/flops.ts by hand on small made-up shapes (fast: the mutation run executes this file for every covered
 * mutant; flops.test.ts checks the presets against published totals). Every expected number is worked out in a
 * comment from the formulas in flops.ts's header: GQA attention h n d + 2 h g d + n d h, SwiGLU 3 h f, router h E,
 * embedding and head V h, an MTP module one layer + a 2h x h projection plus one more head pass, 2 FLOPs per weight per
 * token forward, the causal core 2 n (d_qk + d_v) per (query, key) with (S + 1) / 2 keys per query on average.
 */
import { describe, expect, it } from 'vitest';
import { attnCoreFlopsPerToken, layerFwdFlops, meanKeys, modelFlopsPerToken, paramCounts, sharedWidth } from '../../src/plan/flops.js';
import type { ModelShape } from '../../src/plan/models.js';

const NO_MLA = { q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0 };

/**
 * 2 layers, hidden 64, 4 heads of 16 over 2 KV heads, vocab 100, untied; 4 experts of width 32, top-2, 2 shared experts
 * (of the expert width); a dense FFN width of 96 for the dense-layer case.
 *   attention 64*64 + 2*64*2*16 + 64*64 = 4096 + 4096 + 4096 = 12288; dense FFN 3*64*96 = 18432
 *   expert 3*64*32 = 6144; shared 2*32 = 64 wide: 3*64*64 = 12288; router 64*4 = 256
 */
const MOE: ModelShape = {
  name: 'tiny-moe', layers: 2, hidden: 64, heads: 4, kv_heads: 2, head_dim: 16, attention: 'gqa', ...NO_MLA,
  vocab: 100, dense_layers: 0, dense_ffn: 96, experts: 4, shared_experts: 2, top_k: 2, expert_ffn: 32, mtp_layers: 0, tied_embeddings: false,
};
/** the same attention, every layer a dense FFN of 96, one MTP module */
const DENSE_MTP: ModelShape = {
  ...MOE, name: 'tiny-dense-mtp', dense_layers: 2, experts: 0, shared_experts: 0, top_k: 0, expert_ffn: 0, mtp_layers: 1,
};

describe('layerFwdFlops: forward FLOPs per token of one layer, by part', () => {
  it('a MoE layer: 2 x attention weights, the causal core, 2 x (top_k experts + shared), 2 x router', () => {
    // core at S = 8: 2 * 4 heads * (16 + 16) * (8 + 1) / 2 = 256 * 4.5 = 1152
    expect(layerFwdFlops(MOE, 8, true)).toStrictEqual({ attn_linear: 2 * 12288, attn_core: 1152, ffn: 2 * (2 * 6144 + 12288), route: 2 * 256 });
    expect(2 * (2 * 6144 + 12288)).toBe(49152);
  });
  it('a dense layer: 2 x the dense FFN, no router', () => {
    expect(layerFwdFlops(MOE, 8, false)).toStrictEqual({ attn_linear: 24576, attn_core: 1152, ffn: 2 * 18432, route: 0 });
  });
  it('the core follows the sequence length: S = 2 gives (2 + 1) / 2 = 1.5 keys, 256 * 1.5 = 384', () => {
    expect(layerFwdFlops(MOE, 2, true).attn_core).toBe(384);
    expect(layerFwdFlops(MOE, 2, true).attn_linear).toBe(24576);
  });
});

describe('paramCounts: a dense model with an MTP module', () => {
  it('the module is a dense layer + its 2h x h projection, in the matmul count with its own head pass', () => {
    const pc = paramCounts(DENSE_MTP);
    // dense layer 12288 + 18432 = 30720; embedding = head = 100 * 64 = 6400
    expect([pc.attention, pc.dense_ffn, pc.router, pc.moe_layers, pc.embedding, pc.head]).toEqual([12288, 18432, 0, 0, 6400, 6400]);
    // total = active = 6400 + 6400 + 2 * 30720 = 74240
    expect(pc.total).toBe(74240);
    expect(pc.active).toBe(74240);
    // the MTP module: 30720 + 2 * 64 * 64 = 38912
    expect(pc.mtp).toBe(38912);
    // matmuls per token: active - embedding + the module (38912) + its head pass (6400) = 67840 + 45312
    expect(pc.active_matmul).toBe(113152);
  });
  it('a MoE model with an MTP module: the module is an active MoE layer + the projection', () => {
    const pc = paramCounts({ ...MOE, mtp_layers: 1 });
    // MoE layer active: 12288 + 12288 + 256 + 2 * 6144 = 37120; total: + 4 experts: 12288 + 12288 + 256 + 24576 = 49408
    expect(pc.total).toBe(12800 + 2 * 49408);
    expect(pc.active).toBe(12800 + 2 * 37120);
    expect(pc.mtp).toBe(49408 + 8192);
    // 87040 - 6400 + (37120 + 8192) + 6400
    expect(pc.active_matmul).toBe(12800 + 2 * 37120 - 6400 + (37120 + 8192) + 6400);
  });
});

describe('modelFlopsPerToken: 6 x matmul parameters + 3 x the core of every layer, MTP modules included', () => {
  it('dense with one MTP module: 6 * 113152 + 3 * (2 + 1) layers * 1152 at S = 8', () => {
    expect(modelFlopsPerToken(DENSE_MTP, 8)).toBe(6 * 113152 + 3 * 3 * 1152);
    expect(6 * 113152 + 3 * 3 * 1152).toBe(689280);
  });
  it('two MTP modules: 3 * (2 + 2) cores', () => {
    // active_matmul: 67840 + 2 * (38912 + 6400) = 158464
    expect(paramCounts({ ...DENSE_MTP, mtp_layers: 2 }).active_matmul).toBe(158464);
    expect(modelFlopsPerToken({ ...DENSE_MTP, mtp_layers: 2 }, 8)).toBe(6 * 158464 + 3 * 4 * 1152);
  });
});

describe('meanKeys: sliding windows', () => {
  it('a window of 0 is no window: every layer full causal, (S + 1) / 2', () => {
    expect(meanKeys({ layers: 4, sliding_window: 0, window_layers: 2 }, 8)).toBe(4.5);
    expect(attnCoreFlopsPerToken({ ...MOE, layers: 4, sliding_window: 0, window_layers: 2 }, 8)).toBe(1152);
  });
  it('no window layers, or a window as long as the sequence: full', () => {
    expect(meanKeys({ layers: 4, sliding_window: 2, window_layers: 0 }, 8)).toBe(4.5);
    expect(meanKeys({ layers: 4, sliding_window: 8, window_layers: 2 }, 8)).toBe(4.5);
    expect(meanKeys({ layers: 4, sliding_window: 9, window_layers: 2 }, 8)).toBe(4.5);
  });
  it('window 2 on 2 of 4 layers at S = 4: window layers see 1, 2, 2, 2 keys (1.75), full ones 2.5; mean 2.125', () => {
    // (w (w + 1) / 2 + (S - w) w) / S = (3 + 4) / 4 = 1.75; (2 * 2.5 + 2 * 1.75) / 4 = 2.125
    expect(meanKeys({ layers: 4, sliding_window: 2, window_layers: 2 }, 4)).toBe(2.125);
    // window_layers over layers counts as every layer
    expect(meanKeys({ layers: 4, sliding_window: 2, window_layers: 9 }, 4)).toBe(1.75);
    // the core: 256 * 2.125
    expect(attnCoreFlopsPerToken({ ...MOE, layers: 4, sliding_window: 2, window_layers: 2 }, 4)).toBe(544);
  });
});

describe('sharedWidth', () => {
  it('shared_ffn 0 or absent: count x expert width; set: that width; no shared expert: 0', () => {
    expect(sharedWidth(MOE)).toBe(64);
    expect(sharedWidth({ ...MOE, shared_ffn: 0 })).toBe(64);
    expect(sharedWidth({ ...MOE, shared_ffn: 40 })).toBe(40);
    expect(sharedWidth({ ...MOE, shared_experts: 0, shared_ffn: 40 })).toBe(0);
  });
});
