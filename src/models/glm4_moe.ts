/**
 * GLM-4.5 / 4.6 / 4.5-Air (glm4_moe): Llama attention with qkv biases (o_proj without), optional per-head q/k
 * RMSNorm (`use_qk_norm`), partial rotary (the first head_dim · partial_rotary_factor dims of each head, halves
 * rotated); the first `first_k_dense_replace` layers dense, then DeepSeek-V3 routing (sigmoid + selection bias,
 * group-limited top-k, routed scaling) with ungated shared experts. Per-expert tensors as published.
 */
import type { ArchSpec } from './arch.js';
import type { ModelDesc } from './desc.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, norms, perExpert, rotaryDim, sigmoidGroupMoe, type PerExpertNames } from './common.js';
import { ffn } from './weights.js';

const moeNames = (d: ModelDesc, l: number): PerExpertNames => ({
  block: `model.layers.${l}.mlp`, shared: 'shared_experts',
  selectionBias: { name: 'gate.e_score_correction_bias', shape: [d.moe.experts] },
});

export const glm4Moe: ArchSpec = {
  name: 'glm4_moe',
  modelTypes: ['glm4_moe'],
  describe(c) {
    const attention = gqa(c, { qkvBias: c.bool('attention_bias', false), qkNorm: c.bool('use_qk_norm', false) ? 'head' : 'none' });
    const L = c.int('num_hidden_layers');
    const { moe, firstDense } = sigmoidGroupMoe(c, true);
    return baseDesc(c, 'glm4_moe', attention, c.rope(rotaryDim(c, attention.headDim), false), {
      layers: Array.from({ length: L }, (_, l) => ({ mlp: moe.experts > 0 && l >= firstDense ? ('moe' as const) : ('dense' as const), slidingWindow: null })),
      denseFfn: c.int('intermediate_size'),
      moe,
    });
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    const base = { ...norms(src, d, p), attn: loadGqa(src, d, p) };
    if (d.layers[l].mlp === 'dense') return { ...base, dense: ffn(src, `${p}.mlp`, d.hidden, d.denseFfn) };
    return { ...base, moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
  },
  ...perExpert(moeNames),
};
