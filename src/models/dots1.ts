/**
 * dots.llm1 (dots1): Qwen3 attention (per-head q/k RMSNorm, optional biases, sliding windows from `layer_types`)
 * with DeepSeek-V3's MoE: the first `first_k_dense_replace` layers dense, then sigmoid + selection-bias routing,
 * group-limited top-k, routed scaling and ungated shared experts. Per-expert tensors as published.
 */
import type { ArchSpec } from './arch.js';
import type { ModelDesc } from './desc.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, norms, perExpert, sigmoidGroupMoe, windows, type PerExpertNames } from './common.js';
import { ffn } from './weights.js';

const moeNames = (d: ModelDesc, l: number): PerExpertNames => ({
  block: `model.layers.${l}.mlp`, shared: 'shared_experts',
  selectionBias: { name: 'gate.e_score_correction_bias', shape: [d.moe.experts] },
});

export const dots1: ArchSpec = {
  name: 'dots1',
  modelTypes: ['dots1'],
  describe(c) {
    const bias = c.bool('attention_bias', false);
    const attention = gqa(c, { qkvBias: bias, oBias: bias, qkNorm: 'head' });
    const L = c.int('num_hidden_layers');
    const { moe, firstDense } = sigmoidGroupMoe(c, false);
    // transformers 5.17 (Dots1Config): layer_types, else sliding from max_window_layers on when sliding_window is set
    const win = c.int('sliding_window', 0) || null;
    const maxWin = c.int('max_window_layers', L);
    const slide = c.arr('layer_types') ? windows(c, L, null) : Array.from({ length: L }, (_, l) => (win !== null && l >= maxWin ? win : null));
    return baseDesc(c, 'dots1', attention, c.rope(attention.headDim, false), {
      layers: Array.from({ length: L }, (_, l) => ({ mlp: moe.experts > 0 && l >= firstDense ? ('moe' as const) : ('dense' as const), slidingWindow: slide[l] })),
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
