/**
 * `moekit export gguf MODEL_DIR OUT.gguf --type f32|f16|bf16|q8_0|q4_0`: a GGUF file as llama.cpp's own
 * converter would name it (models/gguf.ts has the tensor table), with metadata that says what the model
 * computes, as transformers runs it: where llama.cpp's converter (commit de3ff81) writes something else, this
 * writes what is right — DeepSeek-V3's router is sigmoid-gated whatever the config omits, OLMoE's q/k norms
 * keep their grouped-KV widths, every norm epsilon is the config's. Matrices take the requested type; with
 * q8_0 / q4_0 the classes follow models/quantize.ts' plan (q4_0 keeps the LM head and embedding at q8_0)
 * and a matrix whose rows are not whole 32-weight blocks stays F32; norms, biases, routers and sinks are F32.
 * Tokenizer: a model directory's tokenizer.json (byte-level BPE) goes in as llama.cpp's gpt2 tokenizer;
 * without one, a placeholder byte-level vocabulary of vocab_size tokens (ids are what the fixtures use).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { f32ToBf16Array, f32ToF16Array } from '../io/dtypes.js';
import { GGML, gv, writeGguf, type GgufEntry, type GgufWriteTensor } from '../io/gguf.js';
import { readJsonCapped, TOKENIZER_MAX_BYTES } from '../io/read.js';
import type { Ffn } from '../moe/types.js';
import { getKernels } from '../tensor/index.js';
import type { Linear } from '../tensor/linear.js';
import { QK, quantBytes, type QuantType } from '../tensor/quant.js';
import type { Kernels } from '../tensor/kernels.js';
import { weightF32 } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';
import type { ModelDesc } from './desc.js';
import { ggufArchFor, permuteBytes, permuteRows } from './gguf.js';
import { MoeModel } from './model.js';
import { describeModel } from './registry.js';
import { readConfig } from '../io/config.js';
import { quantPlan, type WeightClass } from './quantize.js';

export type ExportType = 'f32' | 'f16' | 'bf16' | QuantType;
export const EXPORT_TYPES: readonly ExportType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];

type Kind = WeightClass | 'f32';

/** the ggml type a tensor of class `kind` with innermost dim ne0 is written as */
function ggmlType(kind: Kind, ne0: number, type: ExportType): number {
  if (kind === 'f32') return GGML.F32;
  switch (type) {
    case 'f32': return GGML.F32;
    case 'f16': return GGML.F16;
    case 'bf16': return GGML.BF16;
    default: {
      const t = quantPlan(type)[kind];
      if (!t || ne0 % QK !== 0) return GGML.F32;
      return t === 'q8_0' ? GGML.Q8_0 : GGML.Q4_0;
    }
  }
}

function encode(k: Kernels, x: Float32Array, t: number): Uint8Array {
  const q = (type: QuantType) => { const out = new Uint8Array(quantBytes(type, x.length)); k.quantize(type, out, x, x.length); return out; };
  switch (t) {
    case GGML.F32: return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    case GGML.F16: { const h = f32ToF16Array(x); return new Uint8Array(h.buffer); }
    case GGML.BF16: { const h = f32ToBf16Array(x); return new Uint8Array(h.buffer); }
    case GGML.Q8_0: return q('q8_0');
    default: return q('q4_0');
  }
}

/** GPT-2's byte → printable character map (byte-level BPE vocabularies are written in it) */
function byteChars(): string[] {
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return out;
}

/** tokenizer metadata: the directory's byte-level BPE tokenizer.json, else a placeholder vocabulary */
function tokenizerMeta(dir: string, d: ModelDesc): [string, GgufEntry][] {
  const V = d.vocab;
  let tokens: string[] | null = null, merges: string[] = [];
  const tj = path.join(dir, 'tokenizer.json');
  if (fs.existsSync(tj)) {
    const t = readJsonCapped(tj, TOKENIZER_MAX_BYTES, 'tokenizer') as { model?: { type?: string; vocab?: Record<string, number>; merges?: (string | string[])[] }; added_tokens?: { id: number; content: string }[] };
    if (t.model?.type === 'BPE' && t.model.vocab) {
      tokens = new Array<string>(V).fill('');
      for (const [s, id] of Object.entries(t.model.vocab)) if (id < V) tokens[id] = s;
      for (const a of t.added_tokens ?? []) if (a.id < V) tokens[a.id] = a.content;
      merges = (t.model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
      tokens = tokens.map((s, i) => s || `[PAD${i}]`);
    }
  }
  const embedded: [string, GgufEntry][] = [];
  if (fs.existsSync(tj)) { // moekit reads its own exports with the very tokenizer (io/tokenizer.ts)
    embedded.push(['moekit.tokenizer_json', gv.str(JSON.stringify(readJsonCapped(tj, TOKENIZER_MAX_BYTES, 'tokenizer')))]);
    const tc = path.join(dir, 'tokenizer_config.json');
    if (fs.existsSync(tc)) {
      const c = readJsonCapped(tc, TOKENIZER_MAX_BYTES, 'tokenizer config') as Record<string, unknown>;
      embedded.push(['moekit.tokenizer_config_json', gv.str(JSON.stringify(c))]);
      if (typeof c['chat_template'] === 'string') embedded.push(['tokenizer.chat_template', gv.str(c['chat_template'])]);
    }
  }
  if (!tokens) {
    const bytes = byteChars();
    tokens = Array.from({ length: V }, (_, i) => (i < 256 ? bytes[i] : `<moekit_${i}>`));
  }
  const out: [string, GgufEntry][] = [
    ['tokenizer.ggml.model', gv.str('gpt2')], ['tokenizer.ggml.pre', gv.str('default')],
    ['tokenizer.ggml.tokens', gv.strs(tokens)], ['tokenizer.ggml.token_type', gv.i32s(tokens.map(() => 1))],
    ['tokenizer.ggml.merges', gv.strs(merges)], ...embedded,
  ];
  if (d.bosTokenId !== null && d.bosTokenId < V) out.push(['tokenizer.ggml.bos_token_id', gv.u32(d.bosTokenId)]);
  if (d.eosTokenIds.length && d.eosTokenIds[0] < V) out.push(['tokenizer.ggml.eos_token_id', gv.u32(d.eosTokenIds[0])]);
  if (d.padTokenId !== null && d.padTokenId < V) out.push(['tokenizer.ggml.padding_token_id', gv.u32(d.padTokenId)]);
  return out;
}

function metadata(d: ModelDesc, arch: string, name: string, cfgJson: string): [string, GgufEntry][] {
  const a = d.attention, m = d.moe, r = d.rope;
  const k = (key: string) => `${arch}.${key}`;
  const out: [string, GgufEntry][] = [
    ['general.architecture', gv.str(arch)], ['general.name', gv.str(name)],
    [k('vocab_size'), gv.u32(d.vocab)], [k('context_length'), gv.u32(d.maxPositions)],
    [k('embedding_length'), gv.u32(d.hidden)], [k('block_count'), gv.u32(d.nLayers)],
    [k('attention.head_count'), gv.u32(a.nHeads)], [k('attention.layer_norm_rms_epsilon'), gv.f32(d.rmsEps)],
    [k('rope.freq_base'), gv.f32(r.theta)], [k('rope.dimension_count'), gv.u32(r.dim)],
    [k('expert_count'), gv.u32(m.experts)], [k('expert_used_count'), gv.u32(m.topK)],
    [k('expert_feed_forward_length'), gv.u32(m.expertFfn)],
  ];
  if (r.type === 'yarn') {
    out.push([k('rope.scaling.type'), gv.str('yarn')], [k('rope.scaling.factor'), gv.f32(r.factor)],
      [k('rope.scaling.original_context_length'), gv.u32(r.originalMaxPositions ?? d.maxPositions)]);
    if (r.betaFast !== undefined) out.push([k('rope.scaling.yarn_beta_fast'), gv.f32(r.betaFast)]);
    if (r.betaSlow !== undefined) out.push([k('rope.scaling.yarn_beta_slow'), gv.f32(r.betaSlow)]);
    if (r.mscaleAllDim !== undefined && arch === 'deepseek2') out.push([k('rope.scaling.yarn_log_multiplier'), gv.f32(0.1 * r.mscaleAllDim)]);
  } else if (r.type === 'linear') out.push([k('rope.scaling.type'), gv.str('linear')], [k('rope.scaling.factor'), gv.f32(r.factor)]);
  if (a.kind === 'mla') {
    const ml = a.mla!;
    out.push([k('attention.head_count_kv'), gv.u32(1)], [k('feed_forward_length'), gv.u32(d.denseFfn)],
      [k('leading_dense_block_count'), gv.u32(d.layers.findIndex((l) => l.mlp === 'moe'))],
      [k('attention.kv_lora_rank'), gv.u32(ml.kvLoraRank)],
      [k('attention.key_length'), gv.u32(ml.kvLoraRank + ml.qkRopeDim)], [k('attention.value_length'), gv.u32(ml.kvLoraRank)],
      [k('attention.key_length_mla'), gv.u32(ml.qkNopeDim + ml.qkRopeDim)], [k('attention.value_length_mla'), gv.u32(ml.vHeadDim)],
      [k('expert_shared_count'), gv.u32(m.sharedFfn / m.expertFfn)], [k('expert_weights_scale'), gv.f32(m.routedScaling)],
      [k('expert_weights_norm'), gv.bool(m.normTopK)], [k('expert_group_count'), gv.u32(m.nGroup)],
      [k('expert_group_used_count'), gv.u32(m.topkGroup)],
      // transformers' DeepSeek-V3 router is sigmoid whatever the config says; V2's softmax
      [k('expert_gating_func'), gv.u32(d.arch === 'deepseek_v3' ? 2 : 1)]);
    out.push([k('attention.q_lora_rank'), gv.u32(ml.qLoraRank ?? 0)]); // 0: q_proj (llama.cpp needs the key but for its 'lite' sizes)
  } else {
    out.push([k('attention.head_count_kv'), gv.u32(a.nKvHeads)], [k('attention.key_length'), gv.u32(a.headDim)],
      [k('attention.value_length'), gv.u32(a.vHeadDim)],
      [k('feed_forward_length'), gv.u32(d.layers.some((l) => l.mlp === 'dense') ? d.denseFfn : m.expertFfn)]);
    if (m.normTopK) out.push([k('expert_weights_norm'), gv.bool(true)]);
    if (m.sharedFfn > 0) out.push([k('expert_shared_feed_forward_length'), gv.u32(m.sharedFfn)]);
    const win = d.layers.find((l) => l.slidingWindow !== null)?.slidingWindow;
    if (win) out.push([k('attention.sliding_window'), gv.u32(win)]);
  }
  out.push(['moekit.hf_config', gv.str(cfgJson)]);
  return out;
}

export interface ExportResult { file: string; bytes: number; tensors: number; arch: string; types: Record<string, number> }

/** write `dir`'s model as a GGUF file of `type` */
export function exportGguf(dir: string, file: string, type: ExportType): ExportResult {
  if (!EXPORT_TYPES.includes(type)) throw new MoekitError(`--type must be one of ${EXPORT_TYPES.join(', ')}, got '${String(type)}'`);
  const arch = ggufArchFor(describeModel(readConfig(dir)).desc.arch); // before reading any weights
  const model = MoeModel.load(dir, { dtype: 'f32' });
  const d = model.desc, w = model.weights, k = getKernels();
  const tensors: GgufWriteTensor[] = [];
  const types: Record<string, number> = {};
  const add = (name: string, shape: number[], kind: Kind, values: () => Float32Array) => {
    const t = ggmlType(kind, shape[shape.length - 1], type);
    types[t] = (types[t] ?? 0) + 1;
    tensors.push({ name, shape, type: t, data: () => encode(k, values(), t) });
  };
  const f32 = (L: Linear) => weightF32(k, L.w);
  const lin = (name: string, L: Linear, kind: WeightClass | 'f32', perm?: Int32Array) => {
    add(`${name}.weight`, [L.out, L.in], kind, () => (perm ? new Float32Array(permuteBytes(new Uint8Array(f32(L).slice().buffer), perm).buffer) : f32(L)));
    if (L.b) add(`${name}.bias`, [L.out], 'f32', () => (perm ? Float32Array.from(perm, (p) => L.b![p]) : L.b!));
  };
  const vec = (name: string, v: Float32Array) => add(name, [v.length], 'f32', () => v);
  const ffn = (p: string, f: Ffn, suffix: string) => {
    lin(`${p}.ffn_gate${suffix}`, f.gate, 'experts'); lin(`${p}.ffn_up${suffix}`, f.up, 'experts'); lin(`${p}.ffn_down${suffix}`, f.down, 'experts');
  };
  const H = d.hidden, V = d.vocab, a = d.attention;
  add('token_embd.weight', [V, H], 'lmHead', () => weightF32(k, w.embed));
  vec('output_norm.weight', w.norm);
  if (!d.tieEmbeddings) lin('output', w.lmHead, 'lmHead');
  d.layers.forEach((ld, l) => {
    const p = `blk.${l}`, lw = w.layers[l];
    if (!lw.attn) throw new MoekitError(`GGUF export: layer ${l} is not an attention layer (${ld.mixer}); the exporter writes attention layers only`);
    const at = lw.attn;
    vec(`${p}.attn_norm.weight`, lw.attnNorm);
    vec(`${p}.${arch.ffnNorm}.weight`, lw.ffnNorm);
    if (a.kind === 'mla') {
      const ml = a.mla!, nope = ml.qkNopeDim, v = ml.vHeadDim, R = ml.kvLoraRank, nH = a.nHeads;
      if (at.qA) { lin(`${p}.attn_q_a`, at.qA, 'attention'); vec(`${p}.attn_q_a_norm.weight`, at.qANorm!); lin(`${p}.attn_q_b`, at.qB!, 'attention'); }
      else lin(`${p}.attn_q`, at.q!, 'attention');
      lin(`${p}.attn_kv_a_mqa`, at.kvA!, 'attention');
      vec(`${p}.attn_kv_a_norm.weight`, at.kvANorm!);
      const kv = f32(at.kvB!); // [nH·(nope + v), kvLora]
      add(`${p}.attn_k_b.weight`, [nH, R, nope], 'attention', () => {
        const kb = new Float32Array(nH * R * nope); // [nH, kvLora, nope]
        for (let h = 0; h < nH; h++) for (let i = 0; i < nope; i++) for (let c = 0; c < R; c++) kb[(h * R + c) * nope + i] = kv[(h * (nope + v) + i) * R + c];
        return kb;
      });
      add(`${p}.attn_v_b.weight`, [nH, v, R], 'attention', () => {
        const vb = new Float32Array(nH * v * R); // [nH, v, kvLora]
        for (let h = 0; h < nH; h++) vb.set(kv.subarray((h * (nope + v) + nope) * R, (h + 1) * (nope + v) * R), h * v * R);
        return vb;
      });
    } else {
      const D = a.headDim;
      lin(`${p}.attn_q`, at.q!, 'attention', arch.permuteQK ? permuteRows(a.nHeads * D, a.nHeads, true) : undefined);
      lin(`${p}.attn_k`, at.k!, 'attention', arch.permuteQK ? permuteRows(a.nKvHeads * D, a.nKvHeads, true) : undefined);
      lin(`${p}.attn_v`, at.v!, 'attention');
      if (at.qNorm) vec(`${p}.attn_q_norm.weight`, at.qNorm);
      if (at.kNorm) vec(`${p}.attn_k_norm.weight`, at.kNorm);
      if (at.sinks) vec(`${p}.attn_sinks.weight`, at.sinks);
    }
    lin(`${p}.attn_output`, at.o!, 'attention');
    if (ld.mlp === 'dense') { ffn(p, lw.dense!, ''); return; }
    const moe = lw.moe!, m = d.moe, E = m.experts;
    lin(`${p}.ffn_gate_inp`, moe.router, 'f32');
    if (moe.selectionBias) vec(`${p}.exp_probs_b.bias`, moe.selectionBias);
    if (moe.shared) ffn(p, moe.shared, '_shexp');
    if (moe.sharedGate) lin(`${p}.ffn_gate_inp_shexp`, moe.sharedGate, 'f32');
    for (const proj of ['gate', 'up', 'down'] as const) {
      const L0 = moe.experts.get(0)[proj];
      const stack = (get: (f: Ffn) => Float32Array, n: number) => () => {
        const out = new Float32Array(E * n);
        for (let e = 0; e < E; e++) out.set(get(moe.experts.get(e)), e * n);
        return out;
      };
      add(`${p}.ffn_${proj}_exps.weight`, [E, L0.out, L0.in], 'experts', stack((f) => f32(f[proj]), L0.out * L0.in));
      if (L0.b) add(`${p}.ffn_${proj}_exps.bias`, [E, L0.out], 'f32', stack((f) => f[proj].b!, L0.out));
    }
  });
  const cfgJson = fs.readFileSync(path.join(path.dirname(path.resolve(dir, 'config.json')), 'config.json'), 'utf8');
  const meta = [...metadata(d, arch.name, path.basename(path.resolve(dir)), JSON.stringify(JSON.parse(cfgJson))), ...tokenizerMeta(dir, d)];
  const bytes = writeGguf(file, meta, tensors);
  return { file, bytes, tensors: tensors.length, arch: arch.name, types };
}
