/** Mixtral (MixtralForCausalLM): GQA, softmax → top-k → renormalise, per-expert w1/w3/w2. */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms } from './common.js';
import { ffn, linear } from './weights.js';

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
    const m = `${p}.block_sparse_moe`;
    const { experts: E, expertFfn: I } = d.moe;
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: {
        router: linear(src, `${m}.gate`, E, d.hidden, false),
        selectionBias: null,
        experts: Array.from({ length: E }, (_, e) => ffn(src, `${m}.experts.${e}`, d.hidden, I, false, ['w1', 'w3', 'w2'])),
        shared: null, sharedGate: null,
      },
    };
  },
};
