/**
 * Loaded weights in the engine's own layout: every linear is W [out, in] row-major (as
 * nn.Linear stores it) with an optional bias [out]. Fused checkpoint layouts are split and
 * transposed into this at load time by their architecture file.
 */
import { MoekitError } from '../util/errors.js';
import { EagerExperts } from './expert-store.js';

export type { Linear } from '../tensor/linear.js';
export type { Ffn, MoeWeights } from '../moe/types.js';
import type { Linear } from '../tensor/linear.js';
import type { Ffn, MoeWeights } from '../moe/types.js';
import { f32Weight, type Weight } from '../tensor/weight.js';
import type { MtpWeights } from './mtp.js';
import type { DeltaNetWeights } from './deltanet.js';
import type { LightningWeights } from './lightning.js';
import type { Mamba2Weights } from './mamba2.js';
import type { MoaWeights } from './moa.js';

export interface AttnWeights {
  // GQA
  q?: Linear; // [nH·D, H]
  k?: Linear; // [nKV·D, H]
  v?: Linear; // [nKV·D, H]
  qNorm?: Float32Array; // [D] (per head) or [nH·D] (full)
  kNorm?: Float32Array; // [D] or [nKV·D]
  sinks?: Float32Array; // [nH]
  // MLA
  qA?: Linear; // [qLora, H]
  qANorm?: Float32Array; // [qLora]
  qB?: Linear; // [nH·(nope+rope), qLora]
  kvA?: Linear; // [kvLora + rope, H]
  kvANorm?: Float32Array; // [kvLora]
  kvB?: Linear; // [nH·(nope+v), kvLora]
  /** [H, nH·Dv] (absent with a mixture of attention heads: its experts' output projections, `moa.o`) */
  o?: Linear;
  /** JetMoE's mixture of attention heads (AttentionDesc.moa): its router, the experts' q and o projections, the bias */
  moa?: MoaWeights;
}

export interface LayerWeights {
  attnNorm: Float32Array; // [H]
  ffnNorm: Float32Array; // [H]
  /** LayerNorm biases [H] (desc.norm 'layer') */
  attnNormBias?: Float32Array;
  ffnNormBias?: Float32Array;
  /** the token mixer: attention, or (LayerDesc.mixer 'deltanet') a Gated DeltaNet, or ('lightning') a lightning attention, or ('mamba2') a Mamba-2 */
  attn?: AttnWeights;
  deltanet?: DeltaNetWeights;
  lightning?: LightningWeights;
  mamba2?: Mamba2Weights;
  dense?: Ffn;
  moe?: MoeWeights;
  /** the second sublayer of a shortcut-MoE layer (LayerDesc.shortcutMoe, LongCat-Flash): its norms, attention, MLP */
  second?: SecondSublayer;
}

/** attention then a dense MLP, each behind its RMSNorm [H] */
export interface SecondSublayer {
  attnNorm: Float32Array; // [H]
  ffnNorm: Float32Array; // [H]
  attn: AttnWeights;
  dense: Ffn;
}

/** a decoder layer as its architecture file reads it: all but the routed experts, which an expert store holds */
export interface LayerTensors extends Omit<LayerWeights, 'moe'> {
  moe?: Omit<MoeWeights, 'experts'>;
}

export interface ModelWeights {
  embed: Weight; // [V, H]
  norm: Float32Array; // [H]
  normBias?: Float32Array; // [H] LayerNorm (desc.norm 'layer')
  lmHead: Linear; // [V, H], bias [V] when desc.lmHeadBias
  layers: LayerWeights[];
  /** multi-token prediction modules or heads (models/mtp.ts): loaded by the trainer when it trains them */
  mtp?: MtpWeights;
}

/** rows [r0, r1) along dim 0 of a tensor (for fused experts [E, …]: expert e is rows [e, e + 1)) */
export type Rows = readonly [number, number];

/**
 * Where an architecture file gets tensors from, by Hugging Face name with the shape it
 * expects (the whole tensor's). The loader checks every shape; a recording source lists the table
 * without reading. With `rows`, only those rows along dim 0 are read and returned
 * ([r1 − r0, …shape[1:]]): how one expert of a fused tensor is read by itself.
 */
export interface TensorSource {
  get(name: string, shape: number[], rows?: Rows): Float32Array;
  /** a weight matrix: bf16 when the checkpoint holds bf16 and the load keeps it, else f32 */
  getMatrix(name: string, shape: number[], rows?: Rows): Weight;
  /** the raw bytes of an 8-bit tensor (quantised blocks and scales) */
  getU8(name: string, shape: number[], rows?: Rows): Uint8Array;
  has(name: string): boolean;
}

export function linear(src: TensorSource, name: string, out: number, inp: number, bias: boolean): Linear {
  const w = src.getMatrix(`${name}.weight`, [out, inp]);
  const b = bias ? src.get(`${name}.bias`, [out]) : null;
  return { w, b, out, in: inp };
}

export function ffn(src: TensorSource, prefix: string, H: number, I: number, bias = false,
                    names: [string, string, string] = ['gate_proj', 'up_proj', 'down_proj']): Ffn {
  return {
    gate: linear(src, `${prefix}.${names[0]}`, I, H, bias),
    up: linear(src, `${prefix}.${names[1]}`, I, H, bias),
    down: linear(src, `${prefix}.${names[2]}`, H, I, bias),
  };
}

/** [rows, cols] → [cols, rows] */
export function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[c * rows + r] = x[r * cols + c];
  return y;
}

export function shapeError(name: string, want: number[], got: number[], file: string): MoekitError {
  return new MoekitError(`tensor '${name}' has shape [${got.join(', ')}], expected [${want.join(', ')}]`, file);
}

/** an f32 linear over a fresh array (fused layouts split at load time) */
export function f32Linear(w: Float32Array, b: Float32Array | null, out: number, inp: number): Linear {
  return { w: f32Weight(w), b, out, in: inp };
}

export { EagerExperts };
