/**
 * Granite-MoE: Llama attention scaled by attention_multiplier; embedding, residual and logit
 * multipliers; router = linear → top-k → softmax over the k; fused experts stored nn.Linear-style:
 * input_linear [E, 2I, H] (gate rows first, then up), output_linear [E, H, I].
 */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms } from './common.js';
import { sliceWeight } from '../tensor/weight.js';
import { EagerExperts, linear, type Ffn } from './weights.js';

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
    const m = `${p}.block_sparse_moe`;
    const H = d.hidden;
    const { experts: E, expertFfn: I } = d.moe;
    const inp = src.getMatrix(`${m}.input_linear.weight`, [E, 2 * I, H]); // [E, 2I, H]
    const out = src.getMatrix(`${m}.output_linear.weight`, [E, H, I]); // [E, H, I]
    const experts: Ffn[] = Array.from({ length: E }, (_, e) => ({
      gate: { w: sliceWeight(inp, e * 2 * I * H, e * 2 * I * H + I * H), b: null, out: I, in: H },
      up: { w: sliceWeight(inp, e * 2 * I * H + I * H, (e + 1) * 2 * I * H), b: null, out: I, in: H },
      down: { w: sliceWeight(out, e * H * I, (e + 1) * H * I), b: null, out: H, in: I },
    }));
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: { router: linear(src, `${m}.router.layer`, E, H, false), selectionBias: null, experts: new EagerExperts(experts), shared: null, sharedGate: null },
    };
  },
};
