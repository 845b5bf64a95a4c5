/**
 * GGUF models as llama.cpp names them, for qwen3moe, qwen2moe, olmoe, llama (Mixtral), deepseek2 (DeepSeek-V2/V3)
 * and gpt-oss: the architecture table (data: llama.cpp's name, what differs in its tensors, how its
 * metadata maps to a Hugging Face config.json), and the loader that builds a MoeModel from a .gguf file.
 *
 * Tensors (PyTorch-order shapes; GGUF stores them reversed) map to the engine's own weights the same way
 * for every architecture: token_embd [V, H], output_norm, output [V, H] (absent: tied), and per block
 * attn_norm, ffn_norm (gpt-oss: post_attention_norm), attn_q/k/v/output (+ .bias), attn_q_norm/k_norm,
 * attn_sinks; MLA: attn_q_a, attn_q_a_norm, attn_q_b (or attn_q), attn_kv_a_mqa, attn_kv_a_norm,
 * attn_k_b [nH, kvLora, nope] + attn_v_b [nH, v, kvLora] (kv_b_proj split, k transposed; a legacy
 * attn_kv_b is read too); MoE: ffn_gate_inp [E, H] (+ .bias), exp_probs_b.bias [E], ffn_{gate,up}_exps
 * [E, I, H], ffn_down_exps [E, H, I] (+ .bias), ffn_{gate,up,down}_shexp, ffn_gate_inp_shexp; dense:
 * ffn_{gate,up,down}. llama.cpp's `llama` graph applies RoPE to interleaved pairs, so its converter
 * permutes q and k rows per head (HF's rotate_half order → pairs): read back, they are un-permuted.
 *
 * The reader follows the file's metadata: the config comes from the llama.cpp keys (a moekit export
 * also carries the source config.json as `moekit.hf_config`, the base the metadata is laid over, for
 * what llama.cpp's keys cannot say). Weights stay in their stored type where a kernel computes with it
 * (F32, BF16, Q8_0, Q4_0; F16 is widened to f32); other ggml types are refused by name.
 */
import { ConfigReader } from '../io/config.js';
import { bf16ToF32Array, f16ToF32Array } from '../io/dtypes.js';
import { GGML, GgufFile, type GgufTensorInfo } from '../io/gguf.js';
import type { Ffn, MoeWeights } from '../moe/types.js';
import type { Kernels } from '../tensor/kernels.js';
import type { Linear } from '../tensor/linear.js';
import { bf16Weight, f32Weight, quantWeight, weightF32, type Weight } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';
import type { ArchSpec } from './arch.js';
import type { ArchName, ModelDesc } from './desc.js';
import { EagerExperts } from './expert-store.js';
import { quantizeFfn, quantizeLayer, quantizeWeight, type QuantPlan } from './quantize.js';
import { describeModel } from './registry.js';
import type { AttnWeights, LayerWeights, ModelWeights } from './weights.js';

type Json = Record<string, unknown>;

/** what differs per llama.cpp architecture */
export interface GgufArch {
  /** general.architecture */
  name: string;
  /** the moekit architectures written as this one */
  from: ArchName[];
  /** q and k rows permuted per head for llama.cpp's interleaved RoPE (its `llama` graph) */
  permuteQK: boolean;
  /** the norm before the FFN */
  ffnNorm: 'ffn_norm' | 'post_attention_norm';
  /** the Hugging Face model_type of a file of this architecture */
  modelType(g: GgufFile): ArchName;
  /** rope_parameters llama.cpp's keys do not carry, as the architecture's published configs have them */
  ropeDefaults?: Json;
}

export const GGUF_ARCHS: readonly GgufArch[] = [
  { name: 'qwen3moe', from: ['qwen3_moe'], permuteQK: false, ffnNorm: 'ffn_norm', modelType: () => 'qwen3_moe' },
  { name: 'qwen2moe', from: ['qwen2_moe'], permuteQK: false, ffnNorm: 'ffn_norm', modelType: () => 'qwen2_moe' },
  { name: 'olmoe', from: ['olmoe'], permuteQK: false, ffnNorm: 'ffn_norm', modelType: () => 'olmoe' },
  { name: 'llama', from: ['mixtral'], permuteQK: true, ffnNorm: 'ffn_norm', modelType: () => 'mixtral' },
  {
    name: 'deepseek2', from: ['deepseek_v2', 'deepseek_v3'], permuteQK: false, ffnNorm: 'ffn_norm',
    // sigmoid gating (or a selection bias) is DeepSeek-V3's router; softmax V2's
    modelType: (g) => (Number(g.get('deepseek2.expert_gating_func') ?? 1) === 2 || [...g.tensors.keys()].some((n) => n.endsWith('exp_probs_b.bias')) ? 'deepseek_v3' : 'deepseek_v2'),
  },
  // gpt-oss's YaRN does not truncate its correction range (its config.json: "truncate": false)
  { name: 'gpt-oss', from: ['gpt_oss'], permuteQK: false, ffnNorm: 'post_attention_norm', modelType: () => 'gpt_oss', ropeDefaults: { truncate: false } },
];

export function ggufArchFor(arch: ArchName): GgufArch {
  const a = GGUF_ARCHS.find((x) => x.from.includes(arch));
  if (!a) throw new MoekitError(`GGUF export supports ${GGUF_ARCHS.flatMap((x) => x.from).join(', ')}; not ${arch}`);
  return a;
}

/** rows [R] of a [R, C] matrix permuted per head (R = nHeads · D): HF rotate_half order ↔ llama.cpp pairs */
export function permuteRows(R: number, nHeads: number, toGguf: boolean): Int32Array {
  const D = R / nHeads, half = D / 2;
  const p = new Int32Array(R); // p[new] = old
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const gguf = h * D + 2 * i + j, hf = h * D + j * half + i;
        if (toGguf) p[gguf] = hf; else p[hf] = gguf;
      }
    }
  }
  return p;
}

/** the bytes of a row-major [R, rowBytes] buffer with rows reordered: out[r] = in[p[r]] */
export function permuteBytes(src: Uint8Array, p: Int32Array): Uint8Array {
  const rb = src.byteLength / p.length;
  const out = new Uint8Array(src.byteLength);
  for (let r = 0; r < p.length; r++) out.set(src.subarray(p[r] * rb, (p[r] + 1) * rb), r * rb);
  return out;
}

// ---- metadata → config.json -------------------------------------------------------------------

/** the Hugging Face config a GGUF file describes (metadata over the embedded moekit.hf_config, if any) */
export function configFromGguf(g: GgufFile): { cfg: ConfigReader; arch: GgufArch } {
  const name = String(g.get('general.architecture') ?? '');
  const arch = GGUF_ARCHS.find((a) => a.name === name);
  if (!arch) throw new MoekitError(`GGUF architecture '${name}' is not one moekit reads (${GGUF_ARCHS.map((a) => a.name).join(', ')})`, g.file);
  let base: Json = {};
  const embedded = g.get('moekit.hf_config');
  if (typeof embedded === 'string') {
    try { base = JSON.parse(embedded) as Json; } catch { throw new MoekitError('GGUF metadata moekit.hf_config is not JSON', g.file); }
  }
  const k = (key: string) => g.get(`${name}.${key}`);
  const num = (key: string): number | undefined => { const v = k(key); return v === undefined ? undefined : Number(v); };
  const need = (key: string): number => {
    const v = num(key);
    if (v === undefined || !Number.isFinite(v)) throw new MoekitError(`GGUF metadata '${name}.${key}' is missing`, g.file);
    return v;
  };
  const c: Json = { ...base };
  const set = (key: string, v: unknown) => { if (v !== undefined) c[key] = v; };
  const modelType = arch.modelType(g);
  c['model_type'] = modelType;
  const embd = g.info('token_embd.weight');
  set('vocab_size', num('vocab_size') ?? embd.shape[0]);
  set('hidden_size', need('embedding_length'));
  set('num_hidden_layers', need('block_count'));
  set('max_position_embeddings', num('context_length'));
  set('num_attention_heads', need('attention.head_count'));
  set('rms_norm_eps', num('attention.layer_norm_rms_epsilon'));
  set('num_experts_per_tok', num('expert_used_count'));
  c['tie_word_embeddings'] = !g.tensors.has('output.weight');
  const theta = num('rope.freq_base') ?? 10000;
  const rp: Json = { ...((base['rope_parameters'] as Json | undefined) ?? { rope_type: 'default' }), rope_theta: theta };
  const scaling = k('rope.scaling.type');
  if (scaling === 'yarn') {
    Object.assign(rp, { ...arch.ropeDefaults, ...((base['rope_parameters'] as Json | undefined) ?? {}) });
    Object.assign(rp, { rope_type: 'yarn', factor: num('rope.scaling.factor'), original_max_position_embeddings: num('rope.scaling.original_context_length') });
    if (num('rope.scaling.yarn_beta_fast') !== undefined) rp['beta_fast'] = num('rope.scaling.yarn_beta_fast');
    if (num('rope.scaling.yarn_beta_slow') !== undefined) rp['beta_slow'] = num('rope.scaling.yarn_beta_slow');
  } else if (scaling === 'linear') Object.assign(rp, { rope_type: 'linear', factor: num('rope.scaling.factor') });
  else if (scaling === 'none') Object.assign(rp, { rope_type: 'default' });
  c['rope_parameters'] = rp;
  delete c['rope_theta']; delete c['rope_scaling'];
  const E = num('expert_count');
  if (arch.name === 'deepseek2') {
    set('n_routed_experts', E);
    set('num_key_value_heads', need('attention.head_count'));
    set('kv_lora_rank', need('attention.kv_lora_rank'));
    set('q_lora_rank', num('attention.q_lora_rank') || null); // 0 or absent: q_proj
    const rope = need('rope.dimension_count');
    set('qk_rope_head_dim', rope);
    set('qk_nope_head_dim', (num('attention.key_length_mla') ?? need('attention.key_length')) - rope);
    set('v_head_dim', num('attention.value_length_mla') ?? need('attention.value_length'));
    set('moe_intermediate_size', need('expert_feed_forward_length'));
    set('intermediate_size', num('feed_forward_length'));
    set('n_shared_experts', num('expert_shared_count') ?? 0);
    set('first_k_dense_replace', num('leading_dense_block_count') ?? 0);
    set('routed_scaling_factor', num('expert_weights_scale') ?? 1);
    c['norm_topk_prob'] = k('expert_weights_norm') === true;
    const nGroup = num('expert_group_count'), topkGroup = num('expert_group_used_count');
    set('n_group', nGroup); set('topk_group', topkGroup);
    if (modelType === 'deepseek_v2') c['topk_method'] = (nGroup ?? 1) > 1 ? 'group_limited_greedy' : 'greedy';
    else c['scoring_func'] = 'sigmoid';
    c['rope_interleave'] = true;
  } else {
    set('num_key_value_heads', num('attention.head_count_kv'));
    const hd = num('attention.key_length');
    set('head_dim', hd ?? (c['head_dim'] as number | undefined));
    const I = num('expert_feed_forward_length') ?? num('feed_forward_length');
    if (modelType === 'qwen3_moe') {
      set('num_experts', E); set('moe_intermediate_size', I);
      set('intermediate_size', num('feed_forward_length') ?? I);
      c['norm_topk_prob'] = base['norm_topk_prob'] ?? true; // llama.cpp's qwen3moe graph normalises the top-k weights
    } else if (modelType === 'qwen2_moe') {
      set('num_experts', E); set('moe_intermediate_size', I);
      set('intermediate_size', num('feed_forward_length') ?? I);
      set('shared_expert_intermediate_size', num('expert_shared_feed_forward_length') ?? 0);
      c['norm_topk_prob'] = base['norm_topk_prob'] ?? k('expert_weights_norm') === true; // llama.cpp's qwen2moe graph does not renormalise
    } else if (modelType === 'olmoe') {
      set('num_experts', E); set('intermediate_size', I);
    } else if (modelType === 'mixtral') {
      set('num_local_experts', E); set('intermediate_size', I);
    } else if (modelType === 'gpt_oss') {
      set('num_local_experts', E); set('intermediate_size', I);
      const win = num('attention.sliding_window');
      set('sliding_window', win);
      if (!base['layer_types']) {
        c['layer_types'] = Array.from({ length: Number(c['num_hidden_layers']) }, (_, l) => (l % 2 === 0 ? 'sliding_attention' : 'full_attention'));
      }
    }
  }
  const bos = g.get('tokenizer.ggml.bos_token_id'), eos = g.get('tokenizer.ggml.eos_token_id');
  if (bos !== undefined) c['bos_token_id'] = Number(bos);
  if (eos !== undefined) c['eos_token_id'] = Number(eos);
  return { cfg: new ConfigReader(c, g.file), arch };
}

// ---- tensors → weights ------------------------------------------------------------------------

const KEEP_TYPES = `F32, F16, BF16, Q8_0 and Q4_0`;

/** a GGUF tensor (or rows of its outermost dim) as f32 values */
function readF32(k: Kernels, g: GgufFile, t: GgufTensorInfo, rows?: readonly [number, number]): Float32Array {
  const b = g.read(t.name, rows);
  const u8 = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  switch (t.type) {
    case GGML.F32: return new Float32Array(u8.slice().buffer);
    case GGML.F16: return f16ToF32Array(new Uint16Array(u8.slice().buffer));
    case GGML.BF16: return bf16ToF32Array(new Uint16Array(u8.slice().buffer));
    case GGML.Q8_0: return weightF32(k, quantWeight('q8_0', u8));
    case GGML.Q4_0: return weightF32(k, quantWeight('q4_0', u8));
    default: throw new MoekitError(`GGUF tensor '${t.name}' is ${t.typeName}: moekit computes with ${KEEP_TYPES}`, g.file);
  }
}

/** a GGUF tensor (or rows of it) as a weight in its own type where a kernel takes it */
function readWeight(k: Kernels, g: GgufFile, t: GgufTensorInfo, keep: boolean, rows?: readonly [number, number]): Weight {
  if (!keep || t.type === GGML.F32 || t.type === GGML.F16) return f32Weight(readF32(k, g, t, rows));
  const b = g.read(t.name, rows);
  const u8 = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  switch (t.type) {
    case GGML.BF16: return bf16Weight(u8.byteOffset % 2 === 0 ? new Uint16Array(u8.buffer, u8.byteOffset, u8.byteLength / 2) : new Uint16Array(u8.slice().buffer));
    case GGML.Q8_0: return quantWeight('q8_0', u8);
    case GGML.Q4_0: return quantWeight('q4_0', u8);
    default: return f32Weight(readF32(k, g, t, rows));
  }
}

export interface GgufLoadOptions { keep: boolean; plan: QuantPlan | null }

/** weights and description of a GGUF file; every shape checked against what the metadata implies */
export function loadGgufWeights(k: Kernels, g: GgufFile, o: GgufLoadOptions): { desc: ModelDesc; weights: ModelWeights; cfg: ConfigReader; spec: ArchSpec } {
  const { cfg, arch } = configFromGguf(g);
  const { desc: d, arch: spec } = describeModel(cfg);
  const H = d.hidden, V = d.vocab, a = d.attention;
  const tensor = (name: string, shape: number[]): GgufTensorInfo => {
    const t = g.info(name);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new MoekitError(`GGUF tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] from the metadata`, g.file);
    }
    return t;
  };
  const has = (name: string) => g.tensors.has(name);
  const vec = (name: string, n: number) => readF32(k, g, tensor(name, [n]));
  const lin = (name: string, out: number, inp: number, bias: boolean, perm?: Int32Array): Linear => {
    let w = readWeight(k, g, tensor(`${name}.weight`, [out, inp]), o.keep);
    let b = bias || has(`${name}.bias`) ? vec(`${name}.bias`, out) : null;
    if (perm) {
      w = permuteWeight(w, perm);
      if (b) b = Float32Array.from(perm, (p) => b![p]);
    }
    return { w, b, out, in: inp };
  };
  const ffn = (p: string, I: number, suffix: string, bias = false): Ffn => ({
    gate: lin(`${p}.ffn_gate${suffix}`, I, H, bias), up: lin(`${p}.ffn_up${suffix}`, I, H, bias), down: lin(`${p}.ffn_down${suffix}`, H, I, bias),
  });
  const embed = readWeight(k, g, tensor('token_embd.weight', [V, H]), o.keep);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < d.nLayers; l++) {
    const p = `blk.${l}`;
    const attn: AttnWeights = { o: lin(`${p}.attn_output`, H, a.nHeads * a.vHeadDim, a.oBias) };
    if (a.kind === 'mla') {
      const m = a.mla!, nope = m.qkNopeDim, rope = m.qkRopeDim, qd = a.nHeads * (nope + rope);
      if (m.qLoraRank) {
        attn.qA = lin(`${p}.attn_q_a`, m.qLoraRank, H, false);
        attn.qANorm = vec(`${p}.attn_q_a_norm.weight`, m.qLoraRank);
        attn.qB = lin(`${p}.attn_q_b`, qd, m.qLoraRank, false);
      } else attn.q = lin(`${p}.attn_q`, qd, H, false);
      attn.kvA = lin(`${p}.attn_kv_a_mqa`, m.kvLoraRank + rope, H, false);
      attn.kvANorm = vec(`${p}.attn_kv_a_norm.weight`, m.kvLoraRank);
      const v = m.vHeadDim, R = m.kvLoraRank, nH = a.nHeads;
      if (has(`${p}.attn_kv_b.weight`)) attn.kvB = lin(`${p}.attn_kv_b`, nH * (nope + v), R, false);
      else {
        const kb = readF32(k, g, tensor(`${p}.attn_k_b.weight`, [nH, R, nope])); // [nH, kvLora, nope]
        const vb = readF32(k, g, tensor(`${p}.attn_v_b.weight`, [nH, v, R])); // [nH, v, kvLora]
        const kv = new Float32Array(nH * (nope + v) * R); // [nH·(nope + v), kvLora]
        for (let h = 0; h < nH; h++) {
          const r0 = h * (nope + v);
          for (let i = 0; i < nope; i++) for (let c = 0; c < R; c++) kv[(r0 + i) * R + c] = kb[(h * R + c) * nope + i];
          kv.set(vb.subarray(h * v * R, (h + 1) * v * R), (r0 + nope) * R);
        }
        attn.kvB = { w: f32Weight(kv), b: null, out: nH * (nope + v), in: R };
      }
    } else {
      const D = a.headDim;
      const pq = arch.permuteQK ? permuteRows(a.nHeads * D, a.nHeads, false) : undefined;
      const pk = arch.permuteQK ? permuteRows(a.nKvHeads * D, a.nKvHeads, false) : undefined;
      attn.q = lin(`${p}.attn_q`, a.nHeads * D, H, a.qkvBias, pq);
      attn.k = lin(`${p}.attn_k`, a.nKvHeads * D, H, a.qkvBias, pk);
      attn.v = lin(`${p}.attn_v`, a.nKvHeads * D, H, a.qkvBias);
      if (a.qkNorm === 'head') {
        attn.qNorm = vec(`${p}.attn_q_norm.weight`, D);
        attn.kNorm = vec(`${p}.attn_k_norm.weight`, D);
      } else if (a.qkNorm === 'full') {
        attn.qNorm = vec(`${p}.attn_q_norm.weight`, a.nHeads * D);
        attn.kNorm = vec(`${p}.attn_k_norm.weight`, a.nKvHeads * D);
      }
      if (a.sinks) attn.sinks = vec(`${p}.attn_sinks.weight`, a.nHeads);
    }
    const lw: LayerWeights = { attnNorm: vec(`${p}.attn_norm.weight`, H), ffnNorm: vec(`${p}.${arch.ffnNorm}.weight`, H), attn };
    if (d.layers[l].mlp === 'dense') lw.dense = ffn(p, d.denseFfn, '');
    else {
      const m = d.moe, E = m.experts, I = m.expertFfn;
      const list: Ffn[] = [];
      const gi = tensor(`${p}.ffn_gate_exps.weight`, [E, I, H]), ui = tensor(`${p}.ffn_up_exps.weight`, [E, I, H]);
      const di = tensor(`${p}.ffn_down_exps.weight`, [E, H, I]);
      const bias = (n: string, rows: number) => (m.expertBias ? readF32(k, g, tensor(`${p}.${n}.bias`, [E, rows])) : null);
      const gb = bias('ffn_gate_exps', I), ub = bias('ffn_up_exps', I), db = bias('ffn_down_exps', H);
      for (let e = 0; e < E; e++) {
        const one = [e, e + 1] as const;
        list.push({
          gate: { w: readWeight(k, g, gi, o.keep, one), b: gb && gb.slice(e * I, (e + 1) * I), out: I, in: H },
          up: { w: readWeight(k, g, ui, o.keep, one), b: ub && ub.slice(e * I, (e + 1) * I), out: I, in: H },
          down: { w: readWeight(k, g, di, o.keep, one), b: db && db.slice(e * H, (e + 1) * H), out: H, in: I },
        });
      }
      const moe: MoeWeights = {
        router: lin(`${p}.ffn_gate_inp`, E, H, m.routerBias),
        selectionBias: m.selectionBias ? vec(`${p}.exp_probs_b.bias`, E) : null,
        shared: m.sharedFfn > 0 ? ffn(p, m.sharedFfn, '_shexp') : null,
        sharedGate: m.sharedGated ? lin(`${p}.ffn_gate_inp_shexp`, 1, H, false) : null,
        experts: new EagerExperts(o.plan ? list.map((f) => quantizeFfn(k, f, o.plan!.experts)) : list, l),
      };
      lw.moe = moe;
    }
    layers.push(o.plan ? (quantizeLayer(k, lw, o.plan) as LayerWeights) : lw);
  }
  const q = (w: Weight) => quantizeWeight(k, w, V, H, o.plan?.lmHead ?? null);
  const embedQ = q(embed);
  const lmHead: Linear = { w: d.tieEmbeddings ? embedQ : q(readWeight(k, g, tensor('output.weight', [V, H]), o.keep)), b: null, out: V, in: H };
  return { desc: d, weights: { embed: embedQ, norm: vec('output_norm.weight', H), lmHead, layers }, cfg, spec };
}

/** a weight with its rows (dim 0) reordered: out row r = row p[r] (raw bytes: any type) */
function permuteWeight(w: Weight, p: Int32Array): Weight {
  const bytes = new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
  const out = permuteBytes(bytes, p);
  switch (w.dtype) {
    case 'f32': return f32Weight(new Float32Array(out.buffer));
    case 'bf16': return bf16Weight(new Uint16Array(out.buffer));
    default: return quantWeight(w.dtype, out);
  }
}
