/**
 * DeepSeek-V3 and V2: multi-head latent attention (q and kv low-rank projections, decoupled
 * RoPE on qk_rope_head_dim, interleaved pairs), the first `first_k_dense_replace` layers dense,
 * then MoE with shared experts. V3 routes on sigmoid scores + a selection-only correction bias
 * with group-limited top-k and routed scaling; V2 on softmax with group-limited greedy top-k.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { AttentionDesc, ModelDesc } from './desc.js';
import { baseDesc, loadPerExpertMoe, moeDefaults, norms, perExpert, type PerExpertNames } from './common.js';
import { ffn, linear, type AttnWeights, type TensorSource } from './weights.js';

export function yarnMscale(scale: number, m: number): number {
  return scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1;
}

/** the routing methods DeepSeek configs name (V3 routes group-limited whatever it says but 'greedy') */
const TOPK_METHODS = ['greedy', 'group_limited_greedy', 'noaux_tc'];

function describeDeepseek(c: ConfigReader, v3: boolean): ModelDesc {
  const nH = c.int('num_attention_heads');
  const qLora = c.has('q_lora_rank') ? c.int('q_lora_rank') : null;
  const mla = {
    qLoraRank: qLora, kvLoraRank: c.int('kv_lora_rank'), qkNopeDim: c.int('qk_nope_head_dim'),
    qkRopeDim: c.int('qk_rope_head_dim'), vHeadDim: c.int('v_head_dim'),
  };
  const qkDim = mla.qkNopeDim + mla.qkRopeDim;
  // DeepSeek-V3's config may choose (rope_interleave); V2 is always interleaved (transformers 5.17 ignores the key)
  const rope = c.rope(mla.qkRopeDim, v3 ? c.bool('rope_interleave', true) : true);
  let scale = 1 / Math.sqrt(qkDim);
  if (rope.type !== 'default' && rope.mscaleAllDim) {
    const m = yarnMscale(rope.factor, rope.mscaleAllDim);
    scale *= m * m;
  }
  const attention: AttentionDesc = {
    kind: 'mla', nHeads: nH, nKvHeads: nH, headDim: qkDim, vHeadDim: mla.vHeadDim,
    qkvBias: c.bool('attention_bias', false), oBias: false, qkNorm: 'none', sinks: false, scale,
    clipQkv: null, mla,
  };
  const L = c.int('num_hidden_layers');
  const firstDense = c.int('first_k_dense_replace', 0);
  // transformers computes layer_idx % moe_layer_freq: 0 is a ZeroDivisionError there, an error here
  const freq = c.int('moe_layer_freq', 1, { min: 1 });
  const E = c.int('n_routed_experts');
  const topkMethod = c.str('topk_method', v3 ? 'noaux_tc' : 'greedy');
  c.ensure(TOPK_METHODS.includes(topkMethod), `key 'topk_method' must be one of ${TOPK_METHODS.join(', ')}, got '${topkMethod}'`);
  const grouped = topkMethod !== 'greedy';
  return baseDesc(c, v3 ? 'deepseek_v3' : 'deepseek_v2', attention, rope, {
    layers: Array.from({ length: L }, (_, l) => ({
      mlp: E > 0 && l >= firstDense && l % freq === 0 ? ('moe' as const) : ('dense' as const),
      slidingWindow: null,
    })),
    denseFfn: c.int('intermediate_size'),
    moe: moeDefaults({
      experts: E, topK: c.int('num_experts_per_tok'), expertFfn: c.int('moe_intermediate_size'),
      router: v3 ? 'sigmoid_group' : 'softmax_group',
      normTopK: c.bool('norm_topk_prob', v3),
      routedScaling: c.num('routed_scaling_factor', 1),
      nGroup: grouped ? c.int('n_group', 1, { min: 1 }) : 1,
      topkGroup: grouped ? c.int('topk_group', 1, { min: 1 }) : 1,
      selectionBias: v3,
      sharedFfn: c.int('n_shared_experts', 0) * c.int('moe_intermediate_size'),
    }),
  });
}

/** MLA tensors under `<p>.<attn>` (LongCat-Flash: `self_attn.0`, `self_attn.1`) */
export function loadMla(src: TensorSource, d: ModelDesc, p: string, attn = 'self_attn'): AttnWeights {
  const a = d.attention;
  const m = a.mla!;
  const H = d.hidden, nH = a.nHeads, bias = a.qkvBias;
  const s = `${p}.${attn}`;
  const w: AttnWeights = {
    kvA: linear(src, `${s}.kv_a_proj_with_mqa`, m.kvLoraRank + m.qkRopeDim, H, bias),
    kvANorm: src.get(`${s}.kv_a_layernorm.weight`, [m.kvLoraRank]),
    kvB: linear(src, `${s}.kv_b_proj`, nH * (m.qkNopeDim + m.vHeadDim), m.kvLoraRank, false),
    o: linear(src, `${s}.o_proj`, H, nH * m.vHeadDim, bias),
  };
  if (m.qLoraRank !== null) {
    w.qA = linear(src, `${s}.q_a_proj`, m.qLoraRank, H, bias);
    w.qANorm = src.get(`${s}.q_a_layernorm.weight`, [m.qLoraRank]);
    w.qB = linear(src, `${s}.q_b_proj`, nH * a.headDim, m.qLoraRank, false);
  } else {
    w.q = linear(src, `${s}.q_proj`, nH * a.headDim, H, false);
  }
  return w;
}

const moeNames = (d: ModelDesc, l: number): PerExpertNames => ({
  block: `model.layers.${l}.mlp`, shared: 'shared_experts',
  selectionBias: d.moe.selectionBias ? { name: 'gate.e_score_correction_bias', shape: [d.moe.experts] } : undefined,
});

function loadLayer(src: TensorSource, d: ModelDesc, l: number) {
  const p = `model.layers.${l}`;
  const H = d.hidden;
  const base = { ...norms(src, d, p), attn: loadMla(src, d, p) };
  if (d.layers[l].mlp === 'dense') return { ...base, dense: ffn(src, `${p}.mlp`, H, d.denseFfn) };
  return { ...base, moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
}

export const deepseekV3: ArchSpec = {
  name: 'deepseek_v3', modelTypes: ['deepseek_v3', 'kimi_k2'],
  describe: (c) => describeDeepseek(c, true), loadLayer, ...perExpert(moeNames),
};

export const deepseekV2: ArchSpec = {
  name: 'deepseek_v2', modelTypes: ['deepseek_v2'],
  describe: (c) => describeDeepseek(c, false), loadLayer, ...perExpert(moeNames),
};
