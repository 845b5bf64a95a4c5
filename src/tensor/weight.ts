/**
 * A weight tensor tagged with its storage type: the model never asks `instanceof`; kernels pick
 * their path by `dtype`. f32 holds floats; bf16 holds the raw bfloat16 bits as the checkpoint
 * stores them (half the memory, widened to f32 inside the kernels). A quantised kind joins the union
 * with its blocks and scales (e.g. `{ dtype: 'q8_0'; data: Uint8Array; scales: Float32Array }`) and a
 * case in linearFwd; nothing in the model changes.
 */
import type { Kernels } from './kernels.js';

export interface F32Weight { readonly dtype: 'f32'; readonly data: Float32Array }
export interface Bf16Weight { readonly dtype: 'bf16'; readonly data: Uint16Array }
export type Weight = F32Weight | Bf16Weight;

export const f32Weight = (data: Float32Array): F32Weight => ({ dtype: 'f32', data });
export const bf16Weight = (data: Uint16Array): Bf16Weight => ({ dtype: 'bf16', data });

/** elements [lo, hi) of a weight, as a weight of the same dtype (a view, no copy) */
export function sliceWeight(w: Weight, lo: number, hi: number): Weight {
  return w.dtype === 'f32' ? f32Weight(w.data.subarray(lo, hi)) : bf16Weight(w.data.subarray(lo, hi));
}

/** bytes held in memory */
export function weightBytes(w: Weight): number {
  return w.data.byteLength;
}

/** the values as f32: the array itself for f32, a widened copy for bf16 */
export function weightF32(k: Kernels, w: Weight): Float32Array {
  if (w.dtype === 'f32') return w.data;
  const out = new Float32Array(w.data.length);
  k.bf16ToF32(out, w.data, w.data.length);
  return out;
}

/** rows [r0, r1) of a row-major weight with `cols` columns, widened into dst [r1 − r0, cols] */
export function weightRows(k: Kernels, w: Weight, cols: number, r0: number, r1: number, dst: Float32Array): void {
  if (w.dtype === 'f32') dst.set(w.data.subarray(r0 * cols, r1 * cols));
  else k.bf16ToF32(dst, w.data.subarray(r0 * cols, r1 * cols), (r1 - r0) * cols);
}
