/** Mixtral (MixtralForCausalLM): GQA, softmax → top-k → renormalise, per-expert w1/w3/w2. */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, moeDefaults, norms, perExpert, type PerExpertNames } from './common.js';

const moeNames = (_d: unknown, l: number): PerExpertNames => ({ block: `model.layers.${l}.block_sparse_moe`, proj: ['w1', 'w3', 'w2'] });

export const mixtral: ArchSpec = {
  name: 'mixtral',
  modelTypes: ['mixtral'],
  describe(c) {
    const attention = gqa(c);
    const L = c.int('num_hidden_layers');
    const win = c.int('sliding_window', 0) || null;
    return baseDesc(c, 'mixtral', attention, c.rope(attention.headDim, false), {
      layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: win })),
      denseFfn: c.int('intermediate_size'),
      moe: moeDefaults({
        experts: c.int('num_local_experts'), topK: c.int('num_experts_per_tok'),
        expertFfn: c.int('intermediate_size'), router: 'softmax_topk', normTopK: true,
      }),
    });
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: loadPerExpertMoe(src, d, moeNames(d, l)),
    };
  },
  ...perExpert(moeNames),
};
