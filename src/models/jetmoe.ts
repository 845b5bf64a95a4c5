/**
 * JetMoE (jetmoe: JetMoE-8B). A mixture of attention heads (models/moa.ts) beside a MoE MLP, both routed by
 * JetMoeTopKGating (top-k of the logits, softmax over the k: 'topk_softmax') with num_local_experts experts and
 * num_experts_per_tok per token. Attention: kv_channels D per head, num_key_value_heads nKV shared key/value heads
 * (kv_proj [2·nKV·D, H]: keys, then values), experts' query projections input_linear [E, nKV·D, H] and output
 * projections output_linear [E, H, nKV·D], a bias [H] after their combine; nH = nKV · K query heads (transformers sets
 * num_attention_heads so, whatever the config says). MLP: Granite's fused layout input_linear [E, 2I, H] (gate rows,
 * then up) and output_linear [E, H, I], a bias [H] after the combine (MoeDesc.outputBias). The decoder layers' RMSNorms
 * keep eps 1e-6 (transformers builds them so), the final norm reads rms_norm_eps. Inference only.
 */
import { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { AttentionDesc, ModelDesc } from './desc.js';
import { baseDesc, moeDefaults, norms } from './common.js';
import { graniteFfn } from './granite.js';
import { sliceWeight } from '../tensor/weight.js';
import { linear, type Linear } from './weights.js';

function describeJetmoe(c: ConfigReader): ModelDesc {
  // JetMoeConfig's defaults
  const H = c.int('hidden_size', 2048), L = c.int('num_hidden_layers', 12);
  const nKV = c.int('num_key_value_heads', 16, { min: 1 }), D = c.int('kv_channels', 128, { min: 1 });
  const E = c.int('num_local_experts', 8, { min: 1 }), K = c.int('num_experts_per_tok', 2, { min: 1 });
  c.ensure(K <= E, `key 'num_experts_per_tok' (${K}) must be ≤ num_local_experts (${E})`);
  const act = c.str('activation_function', 'silu');
  c.ensure(act === 'silu', `key 'activation_function' must be 'silu' (JetMoE's GLU experts), got '${act}'`);
  const attention: AttentionDesc = {
    kind: 'gqa', nHeads: nKV * K, nKvHeads: nKV, headDim: D, vHeadDim: D, qkvBias: false, oBias: true, qkNorm: 'none',
    sinks: false, scale: 1 / Math.sqrt(D), clipQkv: null,
    moa: moeDefaults({ experts: E, topK: K, expertFfn: nKV * D, router: 'topk_softmax' }),
  };
  // RoPE over kv_channels (transformers' head_dim maps to it); rope_theta's default where neither form gives one
  const ropeSrc = c.has('rope_theta') || (c.raw['rope_parameters'] as Record<string, unknown> | undefined)?.['rope_theta'] !== undefined
    ? c : new ConfigReader({ ...c.raw, rope_theta: 10000 }, c.file);
  const I = c.int('intermediate_size', 5632);
  const d = baseDesc(c, 'jetmoe', attention, ropeSrc.rope(D, false), {
    layers: Array.from({ length: L }, () => ({ mlp: 'moe' as const, slidingWindow: null })),
    denseFfn: I,
    moe: moeDefaults({ experts: E, topK: K, expertFfn: I, router: 'topk_softmax', outputBias: true }),
  });
  d.rmsEps = c.num('rms_norm_eps', 1e-6);
  d.layerNormEps = 1e-6;
  d.tieEmbeddings = c.bool('tie_word_embeddings', true); // JetMoeConfig's default
  return d;
}

export const jetmoe: ArchSpec = {
  name: 'jetmoe',
  modelTypes: ['jetmoe'],
  describe: describeJetmoe,
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`, a = d.attention, H = d.hidden, E = a.moa!.experts, W = a.nKvHeads * a.headDim;
    const s = `${p}.self_attention`, x = `${s}.experts`;
    const kv = src.getMatrix(`${s}.kv_proj.weight`, [2 * W, H]); // [keys | values rows, H]
    const qs = src.getMatrix(`${x}.input_linear.weight`, [E, W, H]); // [E, nKV·D, H]
    const os = src.getMatrix(`${x}.output_linear.weight`, [E, H, W]); // [E, H, nKV·D]
    const per = (w: typeof qs, out: number, inp: number): Linear[] =>
      Array.from({ length: E }, (_, e) => ({ w: sliceWeight(w, e * out * inp, (e + 1) * out * inp), b: null, out, in: inp }));
    return {
      ...norms(src, d, p),
      attn: {
        k: { w: sliceWeight(kv, 0, W * H), b: null, out: W, in: H }, // [nKV·D, H]
        v: { w: sliceWeight(kv, W * H, 2 * W * H), b: null, out: W, in: H }, // [nKV·D, H]
        moa: { router: linear(src, `${x}.router.layer`, E, H, false), q: per(qs, W, H), o: per(os, H, W), bias: src.get(`${x}.bias`, [H]) },
      },
      moe: {
        router: linear(src, `${p}.mlp.router.layer`, d.moe.experts, H, false), selectionBias: null, shared: null, sharedGate: null,
        bias: src.get(`${p}.mlp.bias`, [H]),
      },
    };
  },
  /** expert e's rows [e, e + 1) of input_linear [E, 2I, H] (gate rows, then up rows) and output_linear [E, H, I] */
  expert(src, d, l, e) {
    const m = `model.layers.${l}.mlp`, H = d.hidden, { experts: E, expertFfn: I } = d.moe;
    const inp = src.getMatrix(`${m}.input_linear.weight`, [E, 2 * I, H], [e, e + 1]); // [2I, H]
    return graniteFfn(inp, src.getMatrix(`${m}.output_linear.weight`, [E, H, I], [e, e + 1]), H, I); // down [H, I]
  },
  expertTensors: () => [], // fused: every expert is in the same tensors
};
