/**
 * A weight tensor tagged with its storage type: the model never asks `instanceof`; kernels pick
 * their path by `dtype`. f32 holds floats; bf16 holds the raw bfloat16 bits as the checkpoint
 * stores them (half the memory, widened to f32 inside the kernels). q8_0 and q4_0 hold llama.cpp's blocks
 * (src/tensor/quant.ts: each row of `cols` weights is cols/32 blocks of a binary16 scale and 8- or
 * 4-bit integers, the bytes GGUF stores); linearFwd runs them through the fused qgemm kernel.
 */
import type { Kernels } from './kernels.js';
import { QK, QUANT_BLOCK_BYTES, type QuantType } from './quant.js';

export interface F32Weight { readonly dtype: 'f32'; readonly data: Float32Array }
export interface Bf16Weight { readonly dtype: 'bf16'; readonly data: Uint16Array }
export interface QuantWeight { readonly dtype: QuantType; readonly data: Uint8Array }
export type Weight = F32Weight | Bf16Weight | QuantWeight;

export const f32Weight = (data: Float32Array): F32Weight => ({ dtype: 'f32', data });
export const bf16Weight = (data: Uint16Array): Bf16Weight => ({ dtype: 'bf16', data });
export const quantWeight = (dtype: QuantType, data: Uint8Array): QuantWeight => ({ dtype, data });

/** the byte offset of element i of a quantised weight (i a multiple of 32: a block boundary) */
function blockOffset(w: QuantWeight, i: number): number {
  if (i % QK !== 0) throw new RangeError(`a ${w.dtype} weight is cut at element ${i}, inside a ${QK}-weight block`);
  return (i / QK) * QUANT_BLOCK_BYTES[w.dtype];
}

/** elements in a weight */
export function weightLength(w: Weight): number {
  return w.dtype === 'f32' || w.dtype === 'bf16' ? w.data.length : (w.data.length / QUANT_BLOCK_BYTES[w.dtype]) * QK;
}

/** elements [lo, hi) of a weight, as a weight of the same dtype (a view, no copy) */
export function sliceWeight(w: Weight, lo: number, hi: number): Weight {
  switch (w.dtype) {
    case 'f32': return f32Weight(w.data.subarray(lo, hi));
    case 'bf16': return bf16Weight(w.data.subarray(lo, hi));
    default: return quantWeight(w.dtype, w.data.subarray(blockOffset(w, lo), blockOffset(w, hi)));
  }
}

/** bytes held in memory */
export function weightBytes(w: Weight): number {
  return w.data.byteLength;
}

/** the values as f32: the array itself for f32, a widened (dequantised) copy otherwise */
export function weightF32(k: Kernels, w: Weight): Float32Array {
  if (w.dtype === 'f32') return w.data;
  const out = new Float32Array(weightLength(w));
  if (w.dtype === 'bf16') k.bf16ToF32(out, w.data, w.data.length);
  else k.dequantize(w.dtype, out, w.data, out.length);
  return out;
}

/** rows [r0, r1) of a row-major weight with `cols` columns, widened into dst [r1 − r0, cols] */
export function weightRows(k: Kernels, w: Weight, cols: number, r0: number, r1: number, dst: Float32Array): void {
  if (w.dtype === 'f32') dst.set(w.data.subarray(r0 * cols, r1 * cols));
  else if (w.dtype === 'bf16') k.bf16ToF32(dst, w.data.subarray(r0 * cols, r1 * cols), (r1 - r0) * cols);
  else k.dequantize(w.dtype, dst, w.data.subarray(blockOffset(w, r0 * cols), blockOffset(w, r1 * cols)), (r1 - r0) * cols);
}
