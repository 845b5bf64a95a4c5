/** Small compositions of kernels the forward pass uses everywhere. */
import type { Kernels } from '../tensor/kernels.js';
import type { Linear } from './weights.js';

/** y[N, out] = x[N, in] · Wᵀ + b */
export function linearFwd(k: Kernels, x: Float32Array, N: number, L: Linear, y = new Float32Array(N * L.out)): Float32Array {
  if (L.w instanceof Uint16Array) {
    if (N === 1) k.sgemvBf16(L.out, L.in, 1, L.w, x, 0, y);
    else k.sgemmBf16(N, L.out, L.in, 1, x, L.in, L.w, L.in, 0, y, L.out);
  } else if (N === 1) {
    k.sgemv(L.out, L.in, 1, L.w, x, 0, y);
  } else {
    k.sgemm(false, true, N, L.out, L.in, 1, x, L.in, L.w, L.in, 0, y, L.out);
  }
  if (L.b) addBias(y, N, L.b);
  return y;
}

/** y[N, n] += b[n] for every row */
export function addBias(y: Float32Array, N: number, b: Float32Array): void {
  const n = b.length;
  for (let r = 0; r < N; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) y[o + j] += b[j];
  }
}

/** x += alpha · y (elementwise) */
export function axpy(x: Float32Array, y: Float32Array, alpha = 1): void {
  if (alpha === 1) for (let i = 0; i < x.length; i++) x[i] += y[i];
  else for (let i = 0; i < x.length; i++) x[i] += alpha * y[i];
}

/** copy columns [off, off + w) of x[N, stride] into a contiguous [N, w] */
export function sliceCols(x: Float32Array, N: number, stride: number, off: number, w: number): Float32Array {
  const y = new Float32Array(N * w);
  for (let r = 0; r < N; r++) y.set(x.subarray(r * stride + off, r * stride + off + w), r * w);
  return y;
}
