/**
 * Granite-MoE: Llama attention scaled by attention_multiplier; embedding, residual and logit
 * multipliers; router = linear → top-k → softmax over the k; fused experts stored nn.Linear-style:
 * input_linear [E, 2I, H] (gate rows first, then up), output_linear [E, H, I].
 */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms } from './common.js';
import { sliceWeight } from '../tensor/weight.js';
import { linear } from './weights.js';

export const graniteMoe: ArchSpec = {
  name: 'granitemoe',
  modelTypes: ['granitemoe'],
  describe(c) {
    const bias = c.bool('attention_bias', false);
    const attention = gqa(c, { qkvBias: bias, oBias: bias, scale: c.num('attention_multiplier') });
    const L = c.int('num_hidden_layers');
    const d = baseDesc(c, 'granitemoe', attention, c.rope(attention.headDim, false), {
      layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null })),
      denseFfn: c.int('intermediate_size'),
      moe: moeDefaults({
        experts: c.int('num_local_experts'), topK: c.int('num_experts_per_tok'),
        expertFfn: c.int('intermediate_size'), router: 'topk_softmax',
      }),
    });
    d.embeddingMultiplier = c.num('embedding_multiplier', 1);
    d.residualMultiplier = c.num('residual_multiplier', 1);
    d.logitsScale = c.num('logits_scaling', 1);
    return d;
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: { router: linear(src, `${p}.block_sparse_moe.router.layer`, d.moe.experts, d.hidden, false), selectionBias: null, shared: null, sharedGate: null },
    };
  },
  /** expert e's rows [e, e + 1) of input_linear [E, 2I, H] (gate rows, then up rows) and output_linear [E, H, I] */
  expert(src, d, l, e) {
    const m = `model.layers.${l}.block_sparse_moe`;
    const H = d.hidden;
    const { experts: E, expertFfn: I } = d.moe;
    const inp = src.getMatrix(`${m}.input_linear.weight`, [E, 2 * I, H], [e, e + 1]); // [2I, H]
    return {
      gate: { w: sliceWeight(inp, 0, I * H), b: null, out: I, in: H },
      up: { w: sliceWeight(inp, I * H, 2 * I * H), b: null, out: I, in: H },
      down: { w: src.getMatrix(`${m}.output_linear.weight`, [E, H, I], [e, e + 1]), b: null, out: H, in: I }, // [H, I]
    };
  },
  expertTensors: () => [], // fused: every expert is in the same tensors
};
