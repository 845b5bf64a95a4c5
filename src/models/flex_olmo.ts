/**
 * FlexOlmo (flex_olmo): OLMo 2's decoder layer with OLMoE's MoE. Norms after each block, none before it
 * (`desc.normPlacement: 'post'`: x + norm(attn(x)), then x + norm(moe(x)); post_attention_layernorm and
 * post_feedforward_layernorm [H]); RMSNorm over the whole q and k projections (q_norm [nH·D], k_norm [nKV·D]) before
 * RoPE, no clip_qkv; router softmax → top-k → optional renormalisation (norm_topk_prob). Per-expert tensors, as
 * transformers saves them.
 */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, moeDefaults, perExpert, type PerExpertNames } from './common.js';

const moeNames = (_d: unknown, l: number): PerExpertNames => ({ block: `model.layers.${l}.mlp` });

export const flexOlmo: ArchSpec = {
  name: 'flex_olmo',
  modelTypes: ['flex_olmo'],
  describe(c) {
    const bias = c.bool('attention_bias', false);
    const attention = gqa(c, { qkvBias: bias, oBias: bias, qkNorm: 'full' });
    const L = c.int('num_hidden_layers');
    const d = baseDesc(c, 'flex_olmo', attention, c.rope(attention.headDim, false), {
      layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null })),
      denseFfn: c.int('intermediate_size'),
      moe: moeDefaults({
        experts: c.int('num_experts'), topK: c.int('num_experts_per_tok'),
        expertFfn: c.int('intermediate_size'), router: 'softmax_topk', normTopK: c.bool('norm_topk_prob', false),
      }),
    });
    d.normPlacement = 'post';
    return d;
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`, H = d.hidden;
    return {
      // the norms of the attention and FFN blocks, on their outputs
      attnNorm: src.get(`${p}.post_attention_layernorm.weight`, [H]),
      ffnNorm: src.get(`${p}.post_feedforward_layernorm.weight`, [H]),
      attn: loadGqa(src, d, p),
      moe: loadPerExpertMoe(src, d, moeNames(d, l)),
    };
  },
  ...perExpert(moeNames),
};
