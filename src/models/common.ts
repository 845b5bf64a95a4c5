/**
 * Pieces most architectures share: the base of the description (sizes, norms, token ids),
 * the defaults of the MoE description, and the Llama-style attention tensors.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { ArchName, AttentionDesc, ModelDesc, MoeDesc, RopeDesc } from './desc.js';
import { f32Linear, ffn, linear, transpose, type AttnWeights, type Ffn, type LayerTensors, type TensorSource } from './weights.js';

export function moeDefaults(over: Partial<MoeDesc> & Pick<MoeDesc, 'experts' | 'topK' | 'expertFfn' | 'router'>): MoeDesc {
  return {
    normTopK: false, routedScaling: 1, nGroup: 1, topkGroup: 1, normMin: 0, jitterEps: 0, weightInput: false, routerBias: false,
    selectionBias: false, sharedFfn: 0, sharedGated: false, act: 'swiglu', expertBias: false,
    swigluLimit: 7, swigluAlpha: 1.702, outputBias: false, ...over,
  };
}

export interface GqaOptions {
  qkvBias?: boolean;
  oBias?: boolean;
  qkNorm?: AttentionDesc['qkNorm'];
  qkNormAfterRope?: boolean;
  sinks?: boolean;
  scale?: number;
  clipQkv?: number | null;
  headDim?: number;
}

/** standard multi-head / grouped-query attention description */
export function gqa(c: ConfigReader, o: GqaOptions = {}): AttentionDesc {
  const H = c.int('hidden_size');
  const nH = c.int('num_attention_heads');
  c.ensure(nH > 0, `key 'num_attention_heads' must be positive`);
  const nKV = c.int('num_key_value_heads', nH);
  c.ensure(nKV > 0 && nH % nKV === 0, `num_attention_heads (${nH}) must be a multiple of num_key_value_heads (${nKV})`);
  const D = o.headDim ?? c.int('head_dim', Math.floor(H / nH));
  c.ensure(D > 0, `head_dim must be positive`);
  return {
    kind: 'gqa', nHeads: nH, nKvHeads: nKV, headDim: D, vHeadDim: D,
    qkvBias: o.qkvBias ?? false, oBias: o.oBias ?? false, qkNorm: o.qkNorm ?? 'none',
    ...(o.qkNormAfterRope ? { qkNormAfterRope: true } : {}),
    sinks: o.sinks ?? false, scale: o.scale ?? 1 / Math.sqrt(D), clipQkv: o.clipQkv ?? null,
  };
}

/** fields every architecture reads the same way */
export function baseDesc(c: ConfigReader, arch: ArchName, attention: AttentionDesc, rope: RopeDesc,
                         rest: Pick<ModelDesc, 'layers' | 'denseFfn' | 'moe'> & Partial<ModelDesc>): ModelDesc {
  const archs = c.arr('architectures');
  return {
    arch,
    hfClass: archs && typeof archs[0] === 'string' ? archs[0] : c.str('model_type'),
    vocab: c.int('vocab_size'),
    hidden: c.int('hidden_size'),
    nLayers: rest.nLayers ?? c.int('num_hidden_layers'), // LongCat-Flash counts its layers in num_layers
    rmsEps: c.num('rms_norm_eps', 1e-6),
    norm: 'rms', lmHeadBias: false,
    // transformers' default when the config omits the key: false but for ERNIE 4.5
    tieEmbeddings: c.bool('tie_word_embeddings', arch === 'ernie4_5_moe'),
    attention, rope,
    denseBias: false,
    embeddingMultiplier: 1, residualMultiplier: 1, logitsScale: 1,
    maxPositions: c.int('max_position_embeddings', 4096),
    nextnLayers: c.int('num_nextn_predict_layers', 0),
    groupHeads: c.int('next_group_heads', 0),
    bosTokenId: c.has('bos_token_id') ? c.ids('bos_token_id')[0] ?? null : null,
    eosTokenIds: c.ids('eos_token_id'),
    padTokenId: c.has('pad_token_id') ? c.ids('pad_token_id')[0] ?? null : null,
    ...rest,
  };
}

/** sliding window per layer from `layer_types` (transformers ≥ 4.5x) or a global window */
export function windows(c: ConfigReader, nLayers: number, globalWindow: number | null): (number | null)[] {
  const types = c.arr('layer_types');
  if (types) {
    c.ensure(types.length === nLayers, `layer_types has ${types.length} entries, expected ${nLayers}`);
    const w = c.int('sliding_window', 0) || null;
    return types.map((t) => (t === 'sliding_attention' ? w : null));
  }
  return new Array<number | null>(nLayers).fill(globalWindow);
}

/** Llama-style attention tensors under `<prefix>.self_attn` */
export function loadGqa(src: TensorSource, d: ModelDesc, prefix: string): AttnWeights {
  const a = d.attention;
  const H = d.hidden, D = a.headDim;
  const p = `${prefix}.self_attn`;
  const w: AttnWeights = {
    q: linear(src, `${p}.q_proj`, a.nHeads * D, H, a.qkvBias),
    k: linear(src, `${p}.k_proj`, a.nKvHeads * D, H, a.qkvBias),
    v: linear(src, `${p}.v_proj`, a.nKvHeads * D, H, a.qkvBias),
    o: linear(src, `${p}.o_proj`, H, a.nHeads * D, a.oBias),
  };
  if (a.qkNorm === 'head') {
    w.qNorm = src.get(`${p}.q_norm.weight`, [D]);
    w.kNorm = src.get(`${p}.k_norm.weight`, [D]);
  } else if (a.qkNorm === 'full') {
    w.qNorm = src.get(`${p}.q_norm.weight`, [a.nHeads * D]);
    w.kNorm = src.get(`${p}.k_norm.weight`, [a.nKvHeads * D]);
  }
  if (a.sinks) w.sinks = src.get(`${p}.sinks`, [a.nHeads]);
  return w;
}

export function norms(src: TensorSource, d: ModelDesc, prefix: string): Pick<LayerTensors, 'attnNorm' | 'ffnNorm' | 'attnNormBias' | 'ffnNormBias'> {
  const H = d.hidden;
  const w = { attnNorm: src.get(`${prefix}.input_layernorm.weight`, [H]), ffnNorm: src.get(`${prefix}.post_attention_layernorm.weight`, [H]) };
  if (d.norm === 'rms') return w;
  return { ...w, attnNormBias: src.get(`${prefix}.input_layernorm.bias`, [H]), ffnNormBias: src.get(`${prefix}.post_attention_layernorm.bias`, [H]) };
}

export interface PerExpertNames {
  /** the MoE block's prefix, e.g. `model.layers.3.mlp` */
  block: string;
  /** router linear under the block (default `gate`) */
  router?: string;
  /** the three projections of one expert (default gate_proj, up_proj, down_proj) */
  proj?: [string, string, string];
  /** shared expert FFN and its sigmoid gate, under the block */
  shared?: string;
  sharedGate?: string;
  /** selection-only bias tensor under the block, with its stored shape */
  selectionBias?: { name: string; shape: number[] };
  /** expert and shared FFNs have biases */
  ffnBias?: boolean;
}

/** the MoE block of checkpoints that store one tensor per expert and projection, all but the routed experts */
export function loadPerExpertMoe(src: TensorSource, d: ModelDesc, n: PerExpertNames): NonNullable<LayerTensors['moe']> {
  const { experts: E, sharedFfn } = d.moe;
  const H = d.hidden, b = n.ffnBias ?? false;
  return {
    router: linear(src, `${n.block}.${n.router ?? 'gate'}`, E, H, false),
    selectionBias: n.selectionBias ? src.get(`${n.block}.${n.selectionBias.name}`, n.selectionBias.shape) : null,
    shared: sharedFfn > 0 && n.shared ? ffn(src, `${n.block}.${n.shared}`, H, sharedFfn, b) : null,
    sharedGate: sharedFfn > 0 && n.sharedGate ? linear(src, `${n.block}.${n.sharedGate}`, 1, H, false) : null,
  };
}

const PROJ: [string, string, string] = ['gate_proj', 'up_proj', 'down_proj'];

/**
 * The routed experts of per-expert checkpoints: expert e of layer l is `<block>.experts.<e>.{gate,up,down}_proj`
 * (or n.proj), with `.weight` (and `.bias` when n.ffnBias); `names(d, l)` is the layer's PerExpertNames.
 */
export function perExpert(names: (d: ModelDesc, l: number) => PerExpertNames): Pick<ArchSpec, 'expert' | 'expertTensors'> {
  return {
    expert(src, d, l, e) {
      const n = names(d, l);
      return ffn(src, `${n.block}.experts.${e}`, d.hidden, d.moe.expertFfn, n.ffnBias ?? false, n.proj);
    },
    expertTensors(d, l, e) {
      const n = names(d, l);
      const kinds = n.ffnBias ? ['weight', 'bias'] : ['weight'];
      return (n.proj ?? PROJ).flatMap((p) => kinds.map((k) => `${n.block}.experts.${e}.${p}.${k}`));
    },
  };
}

/**
 * rotated dims per head: head_dim · partial_rotary_factor (transformers: int(D · f)), the factor read from
 * `rope_parameters` (transformers 5) or the top level (older configs); 1 when absent
 */
export function rotaryDim(c: ConfigReader, D: number): number {
  const rp = c.raw['rope_parameters'];
  const inner = rp && typeof rp === 'object' ? (rp as Record<string, unknown>)['partial_rotary_factor'] : undefined;
  const f = typeof inner === 'number' ? inner : c.num('partial_rotary_factor', 1, { min: 0, exclusiveMin: true, max: 1 });
  c.ensure(Number.isFinite(f) && f > 0 && f <= 1, `key 'partial_rotary_factor' must be a number in (0, 1], got ${String(inner)}`);
  const dim = Math.floor(D * f);
  c.ensure(dim % 2 === 0 && dim > 0, `head_dim × partial_rotary_factor (${D} × ${f} = ${dim}) must be a positive even number of rotated dims`);
  return dim;
}

/**
 * DeepSeek-V3-style MoE keys (GLM-4.5, dots.llm1): n_routed_experts experts of moe_intermediate_size, sigmoid scores
 * with a selection-only correction bias, group-limited top-k (n_group, topk_group), routed_scaling_factor,
 * n_shared_experts ungated shared experts; the first `first_k_dense_replace` layers dense
 */
export function sigmoidGroupMoe(c: ConfigReader, normDefault: boolean): { moe: MoeDesc; firstDense: number } {
  const I = c.int('moe_intermediate_size');
  return {
    firstDense: c.int('first_k_dense_replace', 0),
    moe: moeDefaults({
      experts: c.int('n_routed_experts'), topK: c.int('num_experts_per_tok'), expertFfn: I, router: 'sigmoid_group',
      normTopK: c.bool('norm_topk_prob', normDefault), routedScaling: c.num('routed_scaling_factor', 1),
      nGroup: c.int('n_group', 1, { min: 1 }), topkGroup: c.int('topk_group', 1, { min: 1 }),
      selectionBias: true, sharedFfn: c.int('n_shared_experts', 0) * I,
    }),
  };
}

/**
 * Routed expert e of fused tensors stored (in, out), applied as x · W: `gateUp` [E, H, 2I] (gate columns, then up
 * columns) and `down` [E, I, H] (Llama 4's gate_up_proj / down_proj, Aria's fc1 / fc2): its rows [e, e + 1)
 * transposed to the engine's [out, in] (f32 copies)
 */
export function inOutExpert(src: TensorSource, d: ModelDesc, gateUp: string, down: string, e: number): Ffn {
  const H = d.hidden, { experts: E, expertFfn: I } = d.moe;
  const gu = transpose(src.get(gateUp, [E, H, 2 * I], [e, e + 1]), H, 2 * I); // [2I, H]
  const dn = transpose(src.get(down, [E, I, H], [e, e + 1]), I, H); // [H, I]
  return { gate: f32Linear(gu.slice(0, I * H), null, I, H), up: f32Linear(gu.slice(I * H), null, I, H), down: f32Linear(dn, null, H, I) };
}
