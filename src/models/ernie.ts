/**
 * ERNIE 4.5 MoE: interleaved RoPE, optional biases everywhere (`use_bias`), MoE layers from
 * moe_layer_start_index to moe_layer_end_index every moe_layer_interval; softmax router with a
 * selection-only correction bias and renormalisation floored at moe_norm_min; ungated shared experts.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { ModelDesc } from './desc.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, moeDefaults, norms, perExpert, type PerExpertNames } from './common.js';
import { ffn } from './weights.js';

const moeNames = (d: ModelDesc, l: number): PerExpertNames => ({
  block: `model.layers.${l}.mlp`, shared: 'shared_experts', ffnBias: d.denseBias,
  selectionBias: { name: 'moe_statics.e_score_correction_bias', shape: [1, d.moe.experts] },
});

export const ernie45Moe: ArchSpec = {
  name: 'ernie4_5_moe',
  modelTypes: ['ernie4_5_moe'],
  describe(c: ConfigReader) {
    const bias = c.bool('use_bias', false);
    const attention = gqa(c, { qkvBias: bias, oBias: bias });
    const L = c.int('num_hidden_layers');
    const start = c.int('moe_layer_start_index', 0);
    const endRaw = c.num('moe_layer_end_index', -1);
    const end = endRaw < 0 ? L - 1 : endRaw;
    // transformers computes (layer_idx + 1) % moe_layer_interval: 0 is a ZeroDivisionError there, an error here
    const interval = c.int('moe_layer_interval', 1, { min: 1 });
    const I = c.num('moe_intermediate_size');
    const E = c.num('moe_num_experts');
    c.ensure(Number.isInteger(I) && Number.isInteger(E), 'moe_intermediate_size and moe_num_experts must be integers (multimodal ERNIE lists are not supported)');
    const d = baseDesc(c, 'ernie4_5_moe', attention, c.rope(attention.headDim, true), {
      layers: Array.from({ length: L }, (_, l) => ({
        mlp: E > 0 && (l + 1) % interval === 0 && l >= start && l <= end ? ('moe' as const) : ('dense' as const),
        slidingWindow: null,
      })),
      denseFfn: c.int('intermediate_size'),
      moe: moeDefaults({
        experts: E, topK: c.int('moe_k'), expertFfn: I, router: 'softmax_bias', normTopK: true,
        normMin: c.num('moe_norm_min', 1e-12), selectionBias: true,
        sharedFfn: c.int('moe_num_shared_experts', 0) * I,
      }),
    });
    d.denseBias = bias;
    return d;
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    const H = d.hidden, b = d.denseBias;
    const base = { ...norms(src, d, p), attn: loadGqa(src, d, p) };
    if (d.layers[l].mlp === 'dense') return { ...base, dense: ffn(src, `${p}.mlp`, H, d.denseFfn, b) };
    return { ...base, moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
  },
  ...perExpert(moeNames),
};
