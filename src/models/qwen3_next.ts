/**
 * Qwen3-Next (qwen3_next): a hybrid of Gated DeltaNet linear attention (`linear_attention` layers: models/deltanet.ts)
 * and gated full attention every full_attention_interval-th layer (q_proj gives per head the query and a sigmoid gate
 * on the heads' output; per-head q/k norm; partial rotary, halves rotated); zero-centred RMSNorms (1 + w: the loader
 * adds the 1) on the decoder, final and q/k norms; Qwen2-MoE's MLP: softmax top-k (renormalised by norm_topk_prob)
 * plus a shared expert behind a sigmoid gate. The recurrent state is the decode cache. Inference only.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { DeltaNetDesc, ModelDesc } from './desc.js';
import { baseDesc, gqa, loadPerExpertMoe, moeDefaults, perExpert, rotaryDim, type PerExpertNames } from './common.js';
import { ffn, linear, type LayerTensors, type TensorSource } from './weights.js';

/** a zero-centred RMSNorm weight [n] as the multiplier it stands for: 1 + w (f32) */
function plusOne(src: TensorSource, name: string, n: number): Float32Array {
  return src.get(name, [n]).map((v) => Math.fround(1 + v));
}

function describeQwen3Next(c: ConfigReader): ModelDesc {
  const attention = gqa(c, { qkvBias: c.bool('attention_bias', false), oBias: c.bool('attention_bias', false), qkNorm: 'head' });
  attention.outputGate = true;
  const L = c.int('num_hidden_layers');
  const interval = c.int('full_attention_interval', 4, { min: 1 });
  const types = c.arr('layer_types') ?? Array.from({ length: L }, (_, l) => ((l + 1) % interval === 0 ? 'full_attention' : 'linear_attention'));
  c.ensure(types.length === L && types.every((t) => t === 'full_attention' || t === 'linear_attention'), `key 'layer_types' must list ${L} of 'full_attention' / 'linear_attention', got ${JSON.stringify(types).slice(0, 80)}`);
  const E = c.int('num_experts');
  const step = c.int('decoder_sparse_step', 1, { min: 1 });
  const mlpOnly = new Set((c.arr('mlp_only_layers') ?? []) as number[]);
  const deltanet: DeltaNetDesc = {
    nK: c.int('linear_num_key_heads', 16, { min: 1 }), nV: c.int('linear_num_value_heads', 32, { min: 1 }),
    Dk: c.int('linear_key_head_dim', 128, { min: 1 }), Dv: c.int('linear_value_head_dim', 128, { min: 1 }),
    convKernel: c.int('linear_conv_kernel_dim', 4, { min: 2, max: 64 }),
  };
  c.ensure(deltanet.nV % deltanet.nK === 0, `linear_num_value_heads (${deltanet.nV}) must be a multiple of linear_num_key_heads (${deltanet.nK})`);
  const d = baseDesc(c, 'qwen3_next', attention, c.rope(rotaryDim(c, attention.headDim), false), {
    layers: Array.from({ length: L }, (_, l) => ({
      mlp: !mlpOnly.has(l) && E > 0 && (l + 1) % step === 0 ? ('moe' as const) : ('dense' as const), slidingWindow: null,
      ...(types[l] === 'linear_attention' ? { mixer: 'deltanet' as const } : {}),
    })),
    denseFfn: c.int('intermediate_size'),
    moe: moeDefaults({
      experts: E, topK: c.int('num_experts_per_tok'), expertFfn: c.int('moe_intermediate_size'), router: 'softmax_topk',
      normTopK: c.bool('norm_topk_prob', true), sharedFfn: c.int('shared_expert_intermediate_size', 0), sharedGated: true,
    }),
  });
  d.deltanet = deltanet;
  d.normPlusOne = true;
  return d;
}

const moeNames = (_d: ModelDesc, l: number): PerExpertNames => ({ block: `model.layers.${l}.mlp`, shared: 'shared_expert', sharedGate: 'shared_expert_gate' });

function loadLayer(src: TensorSource, d: ModelDesc, l: number): LayerTensors {
  const p = `model.layers.${l}`, H = d.hidden, a = d.attention, D = a.headDim;
  const base = {
    attnNorm: plusOne(src, `${p}.input_layernorm.weight`, H),
    ffnNorm: plusOne(src, `${p}.post_attention_layernorm.weight`, H),
  };
  let mixer: Pick<LayerTensors, 'attn' | 'deltanet'>;
  if (d.layers[l].mixer === 'deltanet') {
    const { nK, nV, Dk, Dv, convKernel: K } = d.deltanet!;
    const s = `${p}.linear_attn`, C = 2 * nK * Dk + nV * Dv;
    mixer = {
      deltanet: {
        qkvz: linear(src, `${s}.in_proj_qkvz`, 2 * nK * Dk + 2 * nV * Dv, H, false),
        ba: linear(src, `${s}.in_proj_ba`, 2 * nV, H, false),
        conv: src.get(`${s}.conv1d.weight`, [C, 1, K]), // [C, K]
        aLog: src.get(`${s}.A_log`, [nV]),
        dtBias: src.get(`${s}.dt_bias`, [nV]),
        norm: src.get(`${s}.norm.weight`, [Dv]), // the gated norm: a plain weight
        out: linear(src, `${s}.out_proj`, H, nV * Dv, false),
      },
    };
  } else {
    const s = `${p}.self_attn`;
    mixer = {
      attn: {
        q: linear(src, `${s}.q_proj`, 2 * a.nHeads * D, H, a.qkvBias), // per head [query | gate]
        k: linear(src, `${s}.k_proj`, a.nKvHeads * D, H, a.qkvBias),
        v: linear(src, `${s}.v_proj`, a.nKvHeads * D, H, a.qkvBias),
        o: linear(src, `${s}.o_proj`, H, a.nHeads * D, a.oBias),
        qNorm: plusOne(src, `${s}.q_norm.weight`, D),
        kNorm: plusOne(src, `${s}.k_norm.weight`, D),
      },
    };
  }
  if (d.layers[l].mlp === 'dense') return { ...base, ...mixer, dense: ffn(src, `${p}.mlp`, H, d.denseFfn) };
  return { ...base, ...mixer, moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
}

export const qwen3Next: ArchSpec = {
  name: 'qwen3_next', modelTypes: ['qwen3_next'], describe: describeQwen3Next, loadLayer, ...perExpert(moeNames),
};
