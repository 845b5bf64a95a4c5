/**
 * Aria's text decoder (aria_text: AriaTextForCausalLM; Rhymes' Aria as published, AriaForConditionalGeneration
 * `aria`, holds it under `text_config` and `language_model.`). A Llama decoder (pre-norms, GQA, RoPE) whose every MLP
 * is a MoE: router linear [E, H] → top-k of the logits → softmax over those k (`topk_softmax`), routed experts of
 * intermediate_size I in grouped-GEMM layout, fused over all experts and stored (in, out): fc1 [E, H, 2I] (x · W; the
 * columns of the SiLU branch, then those of the linear one) and fc2 [E, I, H]; beside them an ungated shared SwiGLU of
 * I · moe_num_shared_experts (shared_experts.{gate,up,down}_proj), added to the routed sum.
 */
import { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { ModelDesc } from './desc.js';
import { baseDesc, gqa, inOutExpert, loadGqa, moeDefaults, norms } from './common.js';
import { ffn, linear } from './weights.js';

function describeAria(c: ConfigReader): ModelDesc {
  const bias = c.bool('attention_bias', false);
  // transformers puts mlp_bias on the shared experts only (the grouped GEMMs have none): not read here
  c.ensure(!c.bool('mlp_bias', false), `key 'mlp_bias' true (biases on Aria's shared experts only) is not supported`);
  const attention = gqa(c, { qkvBias: bias, oBias: bias });
  const L = c.int('num_hidden_layers');
  const I = c.int('intermediate_size');
  const d = baseDesc(c, 'aria_text', attention, c.rope(attention.headDim, false), {
    layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null })),
    denseFfn: I,
    moe: moeDefaults({
      experts: c.int('moe_num_experts', 8), topK: c.int('moe_topk', 2), expertFfn: I, router: 'topk_softmax',
      sharedFfn: I * c.int('moe_num_shared_experts', 2, { min: 0 }),
    }),
  });
  // AriaTextConfig's token ids where the config leaves them out (the published text_config does)
  if (!c.has('bos_token_id')) d.bosTokenId = 1;
  if (!c.has('eos_token_id')) d.eosTokenIds = [2];
  if (!c.has('pad_token_id')) d.padTokenId = 2;
  return d;
}

export const ariaText: ArchSpec = {
  name: 'aria_text',
  modelTypes: ['aria_text'],
  describe: describeAria,
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`, m = `${p}.mlp`, H = d.hidden, S = d.moe.sharedFfn;
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: { router: linear(src, `${m}.router`, d.moe.experts, H, false), selectionBias: null, shared: S > 0 ? ffn(src, `${m}.shared_experts`, H, S) : null, sharedGate: null },
    };
  },
  /** expert e's rows of fc1 [E, H, 2I] (SiLU columns, then linear ones) and fc2 [E, I, H], transposed to [out, in] */
  expert: (src, d, l, e) => inOutExpert(src, d, `model.layers.${l}.mlp.experts.fc1.weight`, `model.layers.${l}.mlp.experts.fc2.weight`, e),
  expertTensors: () => [], // fused: every expert is in the same tensors
};

/**
 * Aria as published (AriaForConditionalGeneration, model_type `aria`): the text decoder's config under `text_config`,
 * its tensors under `language_model.`; the vision tower and projector are not read (moekit runs the text decoder:
 * images are not supported).
 */
export const aria: ArchSpec = {
  ...ariaText,
  modelTypes: ['aria'],
  describe(c: ConfigReader) {
    const t = c.raw['text_config'];
    c.ensure(t !== null && typeof t === 'object' && !Array.isArray(t), `key 'text_config' must be an object (Aria's text decoder config)`);
    return describeAria(new ConfigReader(t as Record<string, unknown>, c.file));
  },
  tensorPrefix: 'language_model.',
};
