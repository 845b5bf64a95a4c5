/**
 * LongCat-Flash (longcat_flash: Meituan's LongcatFlashForCausalLM). Each of its num_layers decoder layers is two
 * sublayers — MLA attention then a dense SwiGLU MLP of ffn_hidden_size, each behind its RMSNorm — and a
 * shortcut-connected MoE (LayerDesc.shortcutMoe): the MoE reads the first sublayer's MLP input and its output joins
 * the residual after the second sublayer. MLA as DeepSeek-V2/V3 (q and kv LoRA, decoupled interleaved RoPE on
 * qk_rope_head_dim) with LongCat's LoRA scaling: q · √(H / q_lora_rank), the normalised latent · √(H / kv_lora_rank)
 * (MlaDesc.qScale, kvScale). The router is a linear [E + Z, H] over the n_routed_experts E experts and the
 * zero_expert_num Z zero-computation (identity) experts (MoeDesc.zeroExperts: chosen, one returns its input):
 * softmax over all E + Z, top-moe_topk on softmax + e_score_correction_bias (selection only), weights the softmax
 * at the chosen times routed_scaling_factor, not renormalised (the 'softmax_group' rule with one group). The
 * checkpoint stores experts one tensor each (`mlp.experts.<e>.{gate,up,down}_proj`, e < E; the gate/up projections
 * transformers 5.17 also saves for the zero experts are left unread: unreadTensors); MTP tensors (`model.mtp.*`) are
 * left unread, as transformers does. Inference only.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { AttentionDesc, ModelDesc } from './desc.js';
import { baseDesc, moeDefaults, perExpert, type PerExpertNames } from './common.js';
import { loadMla, yarnMscale } from './deepseek.js';
import { ffn, linear, type LayerTensors, type TensorSource } from './weights.js';
import { routedExperts } from '../moe/types.js';

function describeLongcat(c: ConfigReader): ModelDesc {
  const H = c.int('hidden_size'), nH = c.int('num_attention_heads');
  c.ensure(c.str('hidden_act', 'silu') === 'silu', `key 'hidden_act' must be 'silu' (the experts and MLPs are SwiGLU), got '${c.str('hidden_act', 'silu')}'`);
  c.ensure(c.raw['q_lora_rank'] !== null, `key 'q_lora_rank' must be a number, not null: LongCat-Flash scales q by √(hidden_size / q_lora_rank)`);
  const qLora = c.int('q_lora_rank', 1536, { min: 1 }), kvLora = c.int('kv_lora_rank', 512, { min: 1 });
  const mla = {
    qLoraRank: qLora, kvLoraRank: kvLora, qkNopeDim: c.int('qk_nope_head_dim', 128), qkRopeDim: c.int('qk_rope_head_dim', 64),
    vHeadDim: c.int('v_head_dim', 128), qScale: Math.sqrt(H / qLora), kvScale: Math.sqrt(H / kvLora),
  };
  const qkDim = mla.qkNopeDim + mla.qkRopeDim;
  c.ensure(c.int('qk_head_dim', qkDim) === qkDim, `key 'qk_head_dim' (${c.int('qk_head_dim', qkDim)}) must be qk_nope_head_dim + qk_rope_head_dim (${qkDim})`);
  // transformers rotates head_dim dims of the rope part: it must be qk_rope_head_dim
  const rotary = c.int('head_dim', mla.qkRopeDim);
  c.ensure(rotary === mla.qkRopeDim, `key 'head_dim' (${rotary}, the rotary embedding's width) must equal qk_rope_head_dim (${mla.qkRopeDim})`);
  const rope = c.rope(mla.qkRopeDim, true);
  let scale = 1 / Math.sqrt(qkDim);
  if (rope.type !== 'default' && rope.mscaleAllDim) {
    const m = yarnMscale(rope.factor, rope.mscaleAllDim);
    scale *= m * m;
  }
  const bias = c.bool('attention_bias', false);
  const attention: AttentionDesc = {
    kind: 'mla', nHeads: nH, nKvHeads: nH, headDim: qkDim, vHeadDim: mla.vHeadDim,
    qkvBias: bias, oBias: bias, qkNorm: 'none', sinks: false, scale, clipQkv: null, mla,
  };
  const L = c.int('num_layers');
  const E = c.int('n_routed_experts', 512, { min: 1 });
  // transformers: `config.zero_expert_num or 0` with 256 as the configuration's default
  const Z = c.raw['zero_expert_num'] === null ? 0 : c.int('zero_expert_num', 256, { min: 0 });
  return baseDesc(c, 'longcat_flash', attention, rope, {
    nLayers: L,
    rmsEps: c.num('rms_norm_eps', 1e-5),
    layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null, shortcutMoe: true })),
    denseFfn: c.int('ffn_hidden_size', 12288),
    moe: moeDefaults({
      experts: E + Z, zeroExperts: Z, topK: c.int('moe_topk', 12), expertFfn: c.int('expert_ffn_hidden_size', 2048),
      router: 'softmax_group', normTopK: false, routedScaling: c.num('routed_scaling_factor', 6),
      selectionBias: true, routerBias: c.bool('router_bias', false),
    }),
  });
}

const moeNames = (_d: ModelDesc, l: number): PerExpertNames => ({ block: `model.layers.${l}.mlp` });

function loadLayer(src: TensorSource, d: ModelDesc, l: number): LayerTensors {
  const p = `model.layers.${l}`, H = d.hidden, m = d.moe;
  const sub = (i: number) => ({
    attnNorm: src.get(`${p}.input_layernorm.${i}.weight`, [H]),
    ffnNorm: src.get(`${p}.post_attention_layernorm.${i}.weight`, [H]),
    attn: loadMla(src, d, p, `self_attn.${i}`),
    dense: ffn(src, `${p}.mlps.${i}`, H, d.denseFfn),
  });
  return {
    ...sub(0),
    second: sub(1),
    moe: {
      router: linear(src, `${p}.mlp.router.classifier`, m.experts, H, m.routerBias), // [E + Z, H]
      selectionBias: src.get(`${p}.mlp.router.e_score_correction_bias`, [m.experts]), // [E + Z]
      shared: null, sharedGate: null,
    },
  };
}

/**
 * transformers 5.17 holds the experts fused, gate_up_proj [E + Z, 2I, H] (rows for the zero-computation experts too)
 * and down_proj [E, H, I], and saves them per expert: gate/up projections of the zero experts [I, H] nothing reads
 */
function unreadTensors(d: ModelDesc, l: number): { name: string; shape: number[] }[] {
  const m = d.moe, Er = routedExperts(m), I = m.expertFfn, H = d.hidden;
  return Array.from({ length: m.experts - Er }, (_, z) => ['gate_proj', 'up_proj'].map((p) => ({
    name: `model.layers.${l}.mlp.experts.${Er + z}.${p}.weight`, shape: [I, H],
  }))).flat();
}

export const longcatFlash: ArchSpec = {
  name: 'longcat_flash', modelTypes: ['longcat_flash'], describe: describeLongcat, loadLayer, ...perExpert(moeNames), unreadTensors,
};
