/** OLMoE: RMSNorm over the whole q and k projections, optional clip_qkv, softmax → top-k. */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, moeDefaults, norms, perExpert, type PerExpertNames } from './common.js';

const moeNames = (_d: unknown, l: number): PerExpertNames => ({ block: `model.layers.${l}.mlp` });

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
    return { ...norms(src, d, p), attn: loadGqa(src, d, p), moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
  },
  ...perExpert(moeNames),
};
