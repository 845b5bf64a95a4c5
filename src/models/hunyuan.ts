/**
 * Hunyuan-A13B (hunyuan_v1_moe), as transformers 5.17 runs it: Llama attention (biases from `attention_bias`)
 * whose per-head q/k RMSNorms (query_layernorm, key_layernorm) act after RoPE; RoPE 'dynamic' with NTK alpha
 * (io/config.ts); every layer MoE: softmax → top-k → renormalised, experts and the ungated shared MLP both of
 * `intermediate_size` (the published per-layer lists moe_intermediate_size / moe_topk / num_shared_expert are
 * read only where transformers reads them: a list of top-k must hold one value). Per-expert tensors.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadPerExpertMoe, moeDefaults, norms, perExpert, type PerExpertNames } from './common.js';
import type { ModelDesc } from './desc.js';
import { linear, type AttnWeights, type TensorSource } from './weights.js';

/** one value of a key that may be a number or a per-layer list of equal numbers */
function uniform(c: ConfigReader, key: string): number {
  const v = c.raw[key];
  if (Array.isArray(v)) {
    c.ensure(v.length > 0 && v.every((x) => x === v[0]) && Number.isInteger(v[0]) && v[0] > 0, `key '${key}' must be a positive integer or a list of one repeated positive integer, got ${JSON.stringify(v).slice(0, 80)}`);
    return v[0] as number;
  }
  return c.int(key);
}

const moeNames = (_d: ModelDesc, l: number): PerExpertNames => ({ block: `model.layers.${l}.mlp`, router: 'gate.wg', shared: 'shared_mlp' });

function loadAttn(src: TensorSource, d: ModelDesc, p: string): AttnWeights {
  const a = d.attention, H = d.hidden, D = a.headDim, s = `${p}.self_attn`;
  return {
    q: linear(src, `${s}.q_proj`, a.nHeads * D, H, a.qkvBias),
    k: linear(src, `${s}.k_proj`, a.nKvHeads * D, H, a.qkvBias),
    v: linear(src, `${s}.v_proj`, a.nKvHeads * D, H, a.qkvBias),
    o: linear(src, `${s}.o_proj`, H, a.nHeads * D, a.oBias),
    qNorm: src.get(`${s}.query_layernorm.weight`, [D]),
    kNorm: src.get(`${s}.key_layernorm.weight`, [D]),
  };
}

export const hunyuanMoe: ArchSpec = {
  name: 'hunyuan_v1_moe',
  modelTypes: ['hunyuan_v1_moe'],
  describe(c) {
    const bias = c.bool('attention_bias', false);
    const attention = gqa(c, { qkvBias: bias, oBias: bias, qkNorm: 'head', qkNormAfterRope: true });
    const L = c.int('num_hidden_layers');
    const I = c.int('intermediate_size');
    const E = uniform(c, 'num_experts');
    return baseDesc(c, 'hunyuan_v1_moe', attention, c.rope(attention.headDim, false), {
      layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null })),
      denseFfn: I,
      moe: moeDefaults({ experts: E, topK: uniform(c, 'moe_topk'), expertFfn: I, router: 'softmax_topk', normTopK: true, sharedFfn: I }),
    });
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    return { ...norms(src, d, p), attn: loadAttn(src, d, p), moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
  },
  ...perExpert(moeNames),
};
