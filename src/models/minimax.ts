/**
 * MiniMax (minimax: MiniMax-Text-01, MiniMax-M1): a hybrid of lightning attention (`linear_attention` layers:
 * models/lightning.ts, a linear attention with a fixed decay per head, its state the decode cache) and softmax GQA
 * (`full_attention` layers; RoPE over the whole head, as transformers 5.17's MiniMax rotary embedding builds it);
 * Mixtral's MoE (softmax top-k renormalised, per-expert w1 / w3 / w2 under block_sparse_moe). Each block adds to its
 * normalised input, scaled: h = α · norm(x) + β · block(norm(x)), with α, β per kind of block
 * (linear_attn_*, full_attn_*, mlp_*_factor). Inference only.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec, BufferSpec } from './arch.js';
import type { LayerDesc, LightningDesc, ModelDesc } from './desc.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, moeDefaults, norms, perExpert, type PerExpertNames } from './common.js';
import { lightningDecayTables, lightningSlopes } from './lightning.js';
import { linear, type LayerTensors, type TensorSource } from './weights.js';

function describeMiniMax(c: ConfigReader): ModelDesc {
  const attention = gqa(c);
  const L = c.int('num_hidden_layers');
  // transformers' default: full attention on the even layers, lightning on the odd ones
  const types = c.arr('layer_types') ?? Array.from({ length: L }, (_, l) => ((l + 1) % 2 ? 'full_attention' : 'linear_attention'));
  c.ensure(types.length === L && types.every((t) => t === 'full_attention' || t === 'linear_attention'), `key 'layer_types' must list ${L} of 'full_attention' / 'linear_attention', got ${JSON.stringify(types).slice(0, 80)}`);
  const act = c.has('hidden_act') ? c.str('hidden_act') : 'silu';
  c.ensure(act === 'silu', `key 'hidden_act' must be 'silu' (the experts' SwiGLU and the lightning q/k/v activation), got '${act}'`);
  const lightning: LightningDesc = { nHeads: attention.nHeads, headDim: attention.headDim, blockSize: c.int('block_size', 256, { min: 1 }) };
  const factor = (key: string) => c.num(key, 1);
  const scale = (kind: 'linear_attn' | 'full_attn'): LayerDesc['residualScale'] => ({
    mixer: [factor(`${kind}_alpha_factor`), factor(`${kind}_beta_factor`)], mlp: [factor('mlp_alpha_factor'), factor('mlp_beta_factor')],
  });
  const win = c.int('sliding_window', 0) || null;
  const d = baseDesc(c, 'minimax', attention, c.rope(attention.headDim, false), {
    layers: types.map((t) => (t === 'linear_attention'
      ? { mlp: 'moe' as const, slidingWindow: null, mixer: 'lightning' as const, residualScale: scale('linear_attn') }
      : { mlp: 'moe' as const, slidingWindow: win, residualScale: scale('full_attn') })),
    denseFfn: c.int('intermediate_size'),
    moe: moeDefaults({
      experts: c.int('num_local_experts'), topK: c.int('num_experts_per_tok'), expertFfn: c.int('intermediate_size'),
      router: 'softmax_topk', normTopK: true,
    }),
  });
  d.lightning = lightning;
  d.residualNormed = true;
  return d;
}

const moeNames = (_d: ModelDesc, l: number): PerExpertNames => ({ block: `model.layers.${l}.block_sparse_moe`, proj: ['w1', 'w3', 'w2'] });

/** the decay tables transformers saves with each lightning layer (nn.Buffer: persistent), from the config's slopes */
function buffers(d: ModelDesc, l: number): BufferSpec[] {
  if (d.layers[l].mixer !== 'lightning') return [];
  const { nHeads: nH, blockSize: bs } = d.lightning!, p = `model.layers.${l}.self_attn`;
  const s = () => lightningSlopes(nH, l, d.nLayers);
  return [
    { name: `${p}.slope_rate`, shape: [nH, 1, 1], value: s },
    { name: `${p}.query_decay`, shape: [nH, bs, 1], value: () => lightningDecayTables(s(), bs).query },
    { name: `${p}.key_decay`, shape: [nH, bs, 1], value: () => lightningDecayTables(s(), bs).key },
    { name: `${p}.diagonal_decay`, shape: [1, nH, bs, bs], value: () => lightningDecayTables(s(), bs).diagonal },
  ];
}

function loadLayer(src: TensorSource, d: ModelDesc, l: number): LayerTensors {
  const p = `model.layers.${l}`, H = d.hidden;
  const base = { ...norms(src, d, p), moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
  if (d.layers[l].mixer !== 'lightning') return { ...base, attn: loadGqa(src, d, p) };
  const { nHeads: nH, headDim: D } = d.lightning!, s = `${p}.self_attn`;
  // the slopes the checkpoint holds (transformers loads its saved buffer: a sub-model extracted with layers dropped keeps
  // its layers' slopes), else those of the layer's index
  const slope = src.has(`${s}.slope_rate`) ? src.get(`${s}.slope_rate`, [nH, 1, 1]) : lightningSlopes(nH, l, d.nLayers);
  return {
    ...base,
    lightning: {
      qkv: linear(src, `${s}.qkv_proj`, 3 * nH * D, H, false),
      gate: linear(src, `${s}.output_gate`, nH * D, H, false),
      norm: src.get(`${s}.norm.weight`, [nH * D]),
      out: linear(src, `${s}.out_proj`, H, nH * D, false),
      slope,
    },
  };
}

export const minimax: ArchSpec = {
  name: 'minimax', modelTypes: ['minimax'], describe: describeMiniMax, loadLayer, buffers, ...perExpert(moeNames),
};
