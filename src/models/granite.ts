/**
 * Granite-MoE: Llama attention scaled by attention_multiplier; embedding, residual and logit
 * multipliers; router = linear → top-k → softmax over the k; fused experts stored nn.Linear-style:
 * input_linear [E, 2I, H] (gate rows first, then up), output_linear [E, H, I].
 * Granite-MoE-Shared adds an ungated shared expert of shared_intermediate_size S beside the block, stored the
 * same way: shared_mlp.input_linear [2S, H] (gate rows, then up), shared_mlp.output_linear [H, S].
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { ModelDesc } from './desc.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms } from './common.js';
import { sliceWeight } from '../tensor/weight.js';
import { linear, type Ffn, type TensorSource } from './weights.js';

/** gate, up and down of a Granite FFN: input [2I, H] (gate rows, then up) and output [H, I] */
export function graniteFfn(inp: ReturnType<TensorSource['getMatrix']>, out: ReturnType<TensorSource['getMatrix']>, H: number, I: number): Ffn {
  return {
    gate: { w: sliceWeight(inp, 0, I * H), b: null, out: I, in: H },
    up: { w: sliceWeight(inp, I * H, 2 * I * H), b: null, out: I, in: H },
    down: { w: out, b: null, out: H, in: I },
  };
}

function describeGranite(c: ConfigReader, shared: boolean): ModelDesc {
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
  if (shared) d.moe.sharedFfn = c.int('shared_intermediate_size', 0);
  return d;
}

const graniteCommon: Omit<ArchSpec, 'name' | 'modelTypes' | 'describe'> = {
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`, H = d.hidden, S = d.moe.sharedFfn;
    const shared = S > 0
      ? graniteFfn(src.getMatrix(`${p}.shared_mlp.input_linear.weight`, [2 * S, H]), src.getMatrix(`${p}.shared_mlp.output_linear.weight`, [H, S]), H, S)
      : null;
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: { router: linear(src, `${p}.block_sparse_moe.router.layer`, d.moe.experts, H, false), selectionBias: null, shared, sharedGate: null },
    };
  },
  /** expert e's rows [e, e + 1) of input_linear [E, 2I, H] (gate rows, then up rows) and output_linear [E, H, I] */
  expert(src, d, l, e) {
    const m = `model.layers.${l}.block_sparse_moe`;
    const H = d.hidden;
    const { experts: E, expertFfn: I } = d.moe;
    const inp = src.getMatrix(`${m}.input_linear.weight`, [E, 2 * I, H], [e, e + 1]); // [2I, H]
    return graniteFfn(inp, src.getMatrix(`${m}.output_linear.weight`, [E, H, I], [e, e + 1]), H, I); // down [H, I]
  },
  expertTensors: () => [], // fused: every expert is in the same tensors
};

export const graniteMoe: ArchSpec = { name: 'granitemoe', modelTypes: ['granitemoe'], describe: (c) => describeGranite(c, false), ...graniteCommon };

export const graniteMoeShared: ArchSpec = {
  name: 'granitemoeshared', modelTypes: ['granitemoeshared'], describe: (c) => describeGranite(c, true), ...graniteCommon,
};
