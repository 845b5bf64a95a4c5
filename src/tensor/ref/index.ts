/**
 * The reference kernels: plain TypeScript, slow and obvious, float64 accumulation. The native
 * addon (src/tensor/native.ts) is tested against these on random shapes (test/kernels.test.ts).
 */
import type { Kernels } from '../kernels.js';
import { swiglu, swigluClamped } from './activation.js';
import { attnDecode, attnDecodeBatch } from './attn.js';
import { bf16ToF32, sgemmBf16, sgemvBf16 } from './bf16.js';
import { dequantize, qgemm, quantize } from './quant.js';
import { sgemm, sgemv } from './gemm.js';
import { rmsnorm } from './norm.js';
import { rope } from './rope.js';
import { softmax } from './softmax.js';
import { topk } from './topk.js';
import * as train from './train.js';

export const referenceKernels: Kernels = Object.freeze({
  name: 'reference' as const,
  sgemm, sgemv, softmax, attnDecode, attnDecodeBatch, rmsnorm, rope, swiglu, swigluClamped, topk,
  bf16ToF32, sgemvBf16, sgemmBf16, quantize, dequantize, qgemm, ...train,
});

export { sgemm, sgemv, softmax, attnDecode, attnDecodeBatch, rmsnorm, rope, swiglu, swigluClamped, topk };
export { bf16ToF32, sgemvBf16, sgemmBf16 };
export { dequantize, qgemm, quantize } from './quant.js';
export { ranksBefore } from './topk.js';
