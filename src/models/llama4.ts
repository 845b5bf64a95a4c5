/**
 * Llama 4 text (llama4_text: Scout, Maverick): MoE on the layers of `moe_layers` (default every
 * interleave_moe_layer_step-th), dense FFNs of intermediate_size_mlp between; a top-k router whose weights are the
 * sigmoids of the chosen logits and scale each expert's input (expert(w · x), summed) beside an ungated shared
 * expert; interleaved (complex-pair) RoPE skipped on the NoPE layers (`no_rope_layers` 0), where attention
 * temperature tuning scales q instead; per-head L2 q/k norm (no weight) after RoPE on the RoPE layers
 * (`use_qk_norm`); chunked attention (attention_chunk_size) on the `chunked_attention` layers.
 * Fused experts as transformers stores them: gate_up_proj [E, H, 2I] (x · W; gate columns, then up), down_proj
 * [E, I, H]. Inference only.
 */
import { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { LayerDesc, ModelDesc } from './desc.js';
import { baseDesc, gqa, inOutExpert, loadGqa, moeDefaults, norms } from './common.js';
import { ffn, linear, type LayerTensors } from './weights.js';

function describeLlama4(c: ConfigReader): ModelDesc {
  const bias = c.bool('attention_bias', false);
  const L = c.int('num_hidden_layers');
  const qk = c.bool('use_qk_norm', true);
  const attention = gqa(c, { qkvBias: bias, oBias: bias, qkNorm: qk ? 'l2' : 'none', qkNormAfterRope: true });
  const ints = (key: string): number[] | null => {
    const v = c.arr(key);
    if (v === null) return null;
    c.ensure(v.every((x) => Number.isInteger(x)), `key '${key}' must list integers, got ${JSON.stringify(v).slice(0, 80)}`);
    return v as number[];
  };
  const step = c.int('interleave_moe_layer_step', 1, { min: 1 });
  const moeLayers = new Set(ints('moe_layers') ?? Array.from({ length: L }, (_, l) => l).filter((l) => l % step === step - 1));
  const interval = c.int('no_rope_layer_interval', 4, { min: 1 });
  // 1: the layer uses RoPE; absent or empty (as transformers reads it): a NoPE layer every no_rope_layer_interval
  const given = ints('no_rope_layers');
  const ropeLayers = given && given.length > 0 ? given : Array.from({ length: L }, (_, l) => ((l + 1) % interval !== 0 ? 1 : 0));
  c.ensure(ropeLayers.length === L, `no_rope_layers has ${ropeLayers.length} entries, expected ${L}`);
  const types = c.arr('layer_types') ?? ropeLayers.map((r) => (r ? 'chunked_attention' : 'full_attention'));
  c.ensure(types.length === L, `layer_types has ${types.length} entries, expected ${L}`);
  const chunk = c.int('attention_chunk_size', 8192, { min: 1 });
  // a boolean in transformers' config, a number (4) in some published ones: any non-zero value turns it on
  const tt = c.raw['attn_temperature_tuning'];
  c.ensure(tt === undefined || tt === null || typeof tt === 'boolean' || (typeof tt === 'number' && Number.isFinite(tt)), `key 'attn_temperature_tuning' must be true, false or a number, got ${JSON.stringify(tt)}`);
  const tuning = tt === undefined || tt === null ? true : Boolean(tt);
  const layers: LayerDesc[] = Array.from({ length: L }, (_, l) => {
    const nope = ropeLayers[l] === 0;
    return {
      mlp: moeLayers.has(l) ? 'moe' : 'dense', slidingWindow: null,
      ...(types[l] === 'chunked_attention' ? { chunk } : {}),
      ...(nope ? { noRope: true, noQkNorm: true, ...(tuning ? { tempTuned: true } : {}) } : {}),
    };
  });
  const I = c.int('intermediate_size');
  const d = baseDesc(c, 'llama4_text', attention, c.rope(attention.headDim, true), {
    layers,
    denseFfn: c.int('intermediate_size_mlp'),
    moe: moeDefaults({
      experts: c.int('num_local_experts'), topK: c.int('num_experts_per_tok'), expertFfn: I, router: 'topk_sigmoid',
      weightInput: true, sharedFfn: I,
    }),
  });
  if (tuning) d.attention.tempTuning = { floorScale: c.num('floor_scale', 8192, { min: 0, exclusiveMin: true }), attnScale: c.num('attn_scale', 0.1) };
  return d;
}

/**
 * Llama 4 as published (Llama4ForConditionalGeneration, model_type `llama4`): the text model's config under
 * `text_config`, its tensors under `language_model.`; the vision tower and projector are not read (moekit runs the
 * text model: the images' tokens are not supported).
 */
export const llama4: ArchSpec = {
  name: 'llama4_text',
  modelTypes: ['llama4'],
  describe(c: ConfigReader) {
    const t = c.raw['text_config'];
    c.ensure(t !== null && typeof t === 'object' && !Array.isArray(t), `key 'text_config' must be an object (Llama 4's language model config)`);
    return describeLlama4(new ConfigReader(t as Record<string, unknown>, c.file));
  },
  loadLayer: (src, d, l) => llama4Text.loadLayer(src, d, l),
  expert: (src, d, l, e) => llama4Text.expert(src, d, l, e),
  expertTensors: () => [],
  tensorPrefix: 'language_model.',
};

export const llama4Text: ArchSpec = {
  name: 'llama4_text',
  modelTypes: ['llama4_text'],
  describe: describeLlama4,
  loadLayer(src, d, l): LayerTensors {
    const p = `model.layers.${l}`, H = d.hidden, f = `${p}.feed_forward`;
    const base = { ...norms(src, d, p), attn: loadGqa(src, d, p) };
    if (d.layers[l].mlp === 'dense') return { ...base, dense: ffn(src, f, H, d.denseFfn) };
    return {
      ...base,
      moe: { router: linear(src, `${f}.router`, d.moe.experts, H, false), selectionBias: null, shared: ffn(src, `${f}.shared_expert`, H, d.moe.sharedFfn), sharedGate: null },
    };
  },
  /** expert e's rows of gate_up_proj [E, H, 2I] (columns: gate, then up) and down_proj [E, I, H], transposed to [out, in] */
  expert: (src, d, l, e) => inOutExpert(src, d, `model.layers.${l}.feed_forward.experts.gate_up_proj`, `model.layers.${l}.feed_forward.experts.down_proj`, e),
  expertTensors: () => [], // fused: every expert is in the same tensors
};
