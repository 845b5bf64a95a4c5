/** Small compositions of kernels the forward pass uses. */

/** copy columns [off, off + w) of x[N, stride] into a contiguous [N, w] */
export function sliceCols(x: Float32Array, N: number, stride: number, off: number, w: number): Float32Array {
  const y = new Float32Array(N * w);
  for (let r = 0; r < N; r++) y.set(x.subarray(r * stride + off, r * stride + off + w), r * w);
  return y;
}
