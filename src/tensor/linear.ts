/**
 * The linear layer, y[N, out] = x[N, in] · Wᵀ + b, over any weight dtype, and its backward beside it.
 * W [out, in] row-major as nn.Linear stores it.
 */
import type { Grads } from './grads.js';
import type { Kernels } from './kernels.js';
import { weightF32, type Weight } from './weight.js';

export interface Linear {
  w: Weight; // [out, in]
  b: Float32Array | null; // [out]
  out: number;
  in: number;
}

/** y[N, out] = x[N, in] · Wᵀ + b */
export function linearFwd(k: Kernels, x: Float32Array, N: number, L: Linear, y = new Float32Array(N * L.out)): Float32Array {
  const w = L.w;
  switch (w.dtype) {
    case 'bf16':
      if (N === 1) k.sgemvBf16(L.out, L.in, 1, w.data, x, 0, y);
      else k.sgemmBf16(N, L.out, L.in, 1, x, L.in, w.data, L.in, 0, y, L.out);
      break;
    case 'f32':
      if (N === 1) k.sgemv(L.out, L.in, 1, w.data, x, 0, y);
      else k.sgemm(false, true, N, L.out, L.in, 1, x, L.in, w.data, L.in, 0, y, L.out);
      break;
    default: // q8_0, q4_0: activations to 8 bits, integer block dots
      k.qgemm(w.dtype, N, L.out, L.in, x, L.in, w.data, y, L.out);
      break;
  }
  if (L.b) addBias(y, N, L.b);
  return y;
}

/**
 * Backward of y[N, out] = x[N, in] · Wᵀ + b:
 * dx[N, in] += dy[N, out] · W[out, in]   (skipped when dx is null)
 * dW[out, in] += dyᵀ · x;  db[out] += Σ_rows dy
 * (a bf16 or quantised W is widened for the dx product; its gradient is f32)
 */
export function linearBackward(k: Kernels, L: Linear, x: Float32Array, dy: Float32Array, N: number,
                               dx: Float32Array | null, g: Grads): void {
  if (dx) k.sgemm(false, false, N, L.in, L.out, 1, dy, L.out, weightF32(k, L.w), L.in, 1, dx, L.in);
  k.sgemm(true, false, L.out, L.in, N, 1, dy, L.out, x, L.in, 1, g.of(L.w), L.in);
  if (L.b) {
    const db = g.of(L.b);
    for (let r = 0; r < N; r++) for (let j = 0; j < L.out; j++) db[j] += dy[r * L.out + j];
  }
}

/** y[N, n] += b[n] for every row */
export function addBias(y: Float32Array, N: number, b: Float32Array): void {
  const n = b.length;
  for (let r = 0; r < N; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) y[o + j] += b[j];
  }
}
