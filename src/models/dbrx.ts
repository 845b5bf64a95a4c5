/**
 * DBRX (dbrx: Databricks DBRX Base / Instruct). The config as DbrxConfig nests it: d_model, n_heads, n_layers,
 * max_seq_len, vocab_size at the top (transformers' attribute_map: hidden_size, num_attention_heads, …), the
 * attention under `attn_config` (kv_n_heads, clip_qkv, rope_theta), the MoE under `ffn_config` (moe_num_experts,
 * moe_top_k, ffn_hidden_size, moe_normalize_expert_weights, ffn_act_fn).
 * Attention: one fused Wqkv [nH·D + 2·nKV·D, H] (q rows, then k, then v), every element clamped to ±clip_qkv
 * before RoPE (AttentionDesc.clipQkv, no q/k norm here); out_proj [H, nH·D]; no biases. LayerNorms with a weight
 * only (nn.LayerNorm(bias=False), eps 1e-5). Router: softmax over E → top-k → divided by their p-norm, p =
 * moe_normalize_expert_weights (1: their sum, softmax_topk's renormalisation; null: none).
 * Experts fused as published: w1 (gate) and v1 (up) [E·I, H], w2 [E·I, H] applied as x · w2 (down transposed);
 * expert e is rows [e·I, (e + 1)·I) of each. Inference only: the trainer refuses LayerNorm.
 */
import { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { AttentionDesc, ModelDesc } from './desc.js';
import { baseDesc, moeDefaults } from './common.js';
import { sliceWeight } from '../tensor/weight.js';
import { f32Linear, linear, transpose } from './weights.js';

/** the object under `key`, as a reader whose keys (and error messages) are `key.<name>` */
function section(c: ConfigReader, key: string): ConfigReader {
  const v = c.raw[key];
  c.ensure(v === undefined || v === null || (typeof v === 'object' && !Array.isArray(v)), `key '${key}' must be an object`);
  return new ConfigReader(Object.fromEntries(Object.entries((v ?? {}) as Record<string, unknown>).map(([k, x]) => [`${key}.${k}`, x])), c.file);
}

function describeDbrx(c: ConfigReader): ModelDesc {
  const at: ConfigReader = section(c, 'attn_config'), ff: ConfigReader = section(c, 'ffn_config');
  // DbrxConfig's defaults
  const H = c.int('d_model', 2048), nH = c.int('n_heads', 16), L = c.int('n_layers', 24);
  c.ensure(nH > 0 && H % nH === 0, `key 'd_model' (${H}) must be a multiple of n_heads (${nH})`);
  const nKV = at.int('attn_config.kv_n_heads', 1);
  c.ensure(nKV > 0 && nH % nKV === 0, `key 'attn_config.kv_n_heads' (${nKV}) must divide n_heads (${nH})`);
  const D = H / nH;
  const clip = at.raw['attn_config.clip_qkv'];
  at.ensure(clip === undefined || clip === null || typeof clip === 'number', `key 'attn_config.clip_qkv' must be a number or null, got ${JSON.stringify(clip)}`);
  const act = (ff.raw['ffn_config.ffn_act_fn'] ?? { name: 'silu' }) as Record<string, unknown>;
  ff.ensure(typeof act === 'object' && (act.name ?? 'silu') === 'silu', `key 'ffn_config.ffn_act_fn' must be {"name": "silu"} (DBRX's GLU experts), got ${JSON.stringify(act)}`);
  const p = ff.raw['ffn_config.moe_normalize_expert_weights'];
  ff.ensure(p === undefined || p === null || p === 1, `key 'ffn_config.moe_normalize_expert_weights' must be 1 (weights divided by their sum) or null (not renormalised), got ${JSON.stringify(p)}`);
  c.ensure(!c.bool('tie_word_embeddings', false), `key 'tie_word_embeddings' must be false (DBRX keeps its own lm_head)`);
  // the standard names transformers maps DBRX's keys to; RoPE from rope_parameters (transformers 5) or attn_config.rope_theta
  const std = new ConfigReader({
    ...c.raw, hidden_size: H, num_hidden_layers: L, max_position_embeddings: c.int('max_seq_len', 2048),
    rope_theta: at.num('attn_config.rope_theta', 10000),
  }, c.file);
  const attention: AttentionDesc = {
    kind: 'gqa', nHeads: nH, nKvHeads: nKV, headDim: D, vHeadDim: D, qkvBias: false, oBias: false, qkNorm: 'none',
    sinks: false, scale: 1 / Math.sqrt(D), clipQkv: typeof clip === 'number' ? clip : null,
  };
  const d = baseDesc(std, 'dbrx', attention, std.rope(D, false), {
    layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null })),
    denseFfn: ff.int('ffn_config.ffn_hidden_size', 3584),
    moe: moeDefaults({
      experts: ff.int('ffn_config.moe_num_experts', 4), topK: ff.int('ffn_config.moe_top_k', 1),
      expertFfn: ff.int('ffn_config.ffn_hidden_size', 3584), router: 'softmax_topk', normTopK: p !== null,
    }),
  });
  d.norm = 'layer_nobias';
  d.rmsEps = 1e-5; // nn.LayerNorm's default
  d.tieEmbeddings = false;
  return d;
}

export const dbrx: ArchSpec = {
  name: 'dbrx',
  modelTypes: ['dbrx'],
  describe: describeDbrx,
  globalNames: { embed: 'transformer.wte', norm: 'transformer.norm_f' },
  loadLayer(src, d, l) {
    const p = `transformer.blocks.${l}`, a = d.attention, H = d.hidden;
    const q = a.nHeads * a.headDim, kv = a.nKvHeads * a.headDim;
    const wqkv = src.getMatrix(`${p}.norm_attn_norm.attn.Wqkv.weight`, [q + 2 * kv, H]); // [q | k | v rows, H]
    return {
      attnNorm: src.get(`${p}.norm_attn_norm.norm_1.weight`, [H]),
      ffnNorm: src.get(`${p}.norm_attn_norm.norm_2.weight`, [H]),
      attn: {
        q: { w: sliceWeight(wqkv, 0, q * H), b: null, out: q, in: H }, // [nH·D, H]
        k: { w: sliceWeight(wqkv, q * H, (q + kv) * H), b: null, out: kv, in: H }, // [nKV·D, H]
        v: { w: sliceWeight(wqkv, (q + kv) * H, (q + 2 * kv) * H), b: null, out: kv, in: H }, // [nKV·D, H]
        o: linear(src, `${p}.norm_attn_norm.attn.out_proj`, H, q, false), // [H, nH·D]
      },
      moe: { router: linear(src, `${p}.ffn.router.layer`, d.moe.experts, H, false), selectionBias: null, shared: null, sharedGate: null },
    };
  },
  /** expert e's rows [e·I, (e + 1)·I) of w1 (gate), v1 (up) and w2 (down, stored [I, H]: transposed to [H, I]) */
  expert(src, d, l, e) {
    const H = d.hidden, { experts: E, expertFfn: I } = d.moe, m = `transformer.blocks.${l}.ffn.experts.mlp`;
    const rows = [e * I, (e + 1) * I] as const;
    return {
      gate: { w: src.getMatrix(`${m}.w1`, [E * I, H], rows), b: null, out: I, in: H }, // [I, H]
      up: { w: src.getMatrix(`${m}.v1`, [E * I, H], rows), b: null, out: I, in: H }, // [I, H]
      down: f32Linear(transpose(src.get(`${m}.w2`, [E * I, H], rows), I, H), null, H, I), // [H, I]
    };
  },
  expertTensors: () => [], // fused: every expert is in the same tensors
};
