/** OLMoE: RMSNorm over the whole q and k projections, optional clip_qkv, softmax → top-k. */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms } from './common.js';
import { ffn, linear } from './weights.js';

export const olmoe: ArchSpec = {
  name: 'olmoe',
  modelTypes: ['olmoe'],
  describe(c) {
    const attention = gqa(c, { qkvBias: c.bool('attention_bias', false), oBias: c.bool('attention_bias', false), qkNorm: 'full', clipQkv: c.has('clip_qkv') ? c.num('clip_qkv') : null });
    const L = c.int('num_hidden_layers');
    return baseDesc(c, 'olmoe', attention, c.rope(attention.headDim, false), {
      layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null })),
      denseFfn: c.int('intermediate_size'),
      moe: moeDefaults({
        experts: c.int('num_experts'), topK: c.int('num_experts_per_tok'),
        expertFfn: c.int('intermediate_size'), router: 'softmax_topk', normTopK: c.bool('norm_topk_prob', false),
      }),
    });
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    const { experts: E, expertFfn: I } = d.moe;
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: {
        router: linear(src, `${p}.mlp.gate`, E, d.hidden, false),
        selectionBias: null,
        experts: Array.from({ length: E }, (_, e) => ffn(src, `${p}.mlp.experts.${e}`, d.hidden, I)),
        shared: null, sharedGate: null,
      },
    };
  },
};
