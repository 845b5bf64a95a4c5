/**
 * Qwen2-MoE and Qwen3-MoE: softmax → top-k (renormalised when norm_topk_prob); Qwen2-MoE adds
 * qkv biases and a shared expert scaled by a sigmoid gate; Qwen3-MoE adds per-head q/k RMSNorm.
 * Dense layers where `mlp_only_layers` or `decoder_sparse_step` say so.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { ArchName, ModelDesc } from './desc.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, moeDefaults, norms, perExpert, windows, type PerExpertNames } from './common.js';
import { ffn, type LayerTensors, type TensorSource } from './weights.js';

function describeQwen(c: ConfigReader, arch: ArchName): ModelDesc {
  const v2 = arch === 'qwen2_moe';
  const attention = gqa(c, v2 ? { qkvBias: c.bool('qkv_bias', true) } : { qkvBias: c.bool('attention_bias', false), qkNorm: 'head' });
  const L = c.int('num_hidden_layers');
  const E = c.has('num_experts') ? c.int('num_experts') : c.int('num_local_experts');
  // transformers computes (layer_idx + 1) % decoder_sparse_step: 0 is a ZeroDivisionError there, an error here
  const step = c.int('decoder_sparse_step', 1, { min: 1 });
  const mlpOnly = new Set((c.arr('mlp_only_layers') ?? []) as number[]);
  c.ensure([...mlpOnly].every((l) => Number.isInteger(l) && l >= 0 && l < L), `key 'mlp_only_layers' must list layer indices in [0, ${L - 1}], got ${JSON.stringify(c.arr('mlp_only_layers'))}`);
  // sliding windows as transformers 5.17 reads them (held to it by test/variants.test.ts): an explicit `layer_types`
  // wins; otherwise Qwen2-MoE slides on its first max_window_layers layers, Qwen3-MoE (no layer_types) on every layer
  const useWin = c.bool('use_sliding_window', false);
  const win = useWin ? c.int('sliding_window', 0) || null : null;
  const slides = (l: number) => (v2 ? l < c.int('max_window_layers', L) : true);
  const slide = c.arr('layer_types') ? windows(c, L, null) : Array.from({ length: L }, (_, l) => (win !== null && slides(l) ? win : null));
  return baseDesc(c, arch, attention, c.rope(attention.headDim, false), {
    layers: Array.from({ length: L }, (_, l) => ({
      mlp: !mlpOnly.has(l) && E > 0 && (l + 1) % step === 0 ? ('moe' as const) : ('dense' as const),
      slidingWindow: slide[l],
    })),
    denseFfn: c.int('intermediate_size'),
    moe: moeDefaults({
      experts: E, topK: c.int('num_experts_per_tok'), expertFfn: c.int('moe_intermediate_size'),
      router: 'softmax_topk', normTopK: c.bool('norm_topk_prob', false),
      sharedFfn: v2 ? c.int('shared_expert_intermediate_size', 0) : 0, sharedGated: v2,
    }),
  });
}

const moeNames = (_d: ModelDesc, l: number): PerExpertNames => ({ block: `model.layers.${l}.mlp`, shared: 'shared_expert', sharedGate: 'shared_expert_gate' });

function loadQwen(src: TensorSource, d: ModelDesc, l: number): LayerTensors {
  const p = `model.layers.${l}`;
  const H = d.hidden;
  const base = { ...norms(src, d, p), attn: loadGqa(src, d, p) };
  if (d.layers[l].mlp === 'dense') return { ...base, dense: ffn(src, `${p}.mlp`, H, d.denseFfn) };
  return { ...base, moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
}

export const qwen2Moe: ArchSpec = {
  name: 'qwen2_moe', modelTypes: ['qwen2_moe'],
  describe: (c) => describeQwen(c, 'qwen2_moe'), loadLayer: loadQwen, ...perExpert(moeNames),
};

export const qwen3Moe: ArchSpec = {
  name: 'qwen3_moe', modelTypes: ['qwen3_moe'],
  describe: (c) => describeQwen(c, 'qwen3_moe'), loadLayer: loadQwen, ...perExpert(moeNames),
};
