/**
 * Gradient buffers and the linear layer's backward. Gradients live beside the weights they belong
 * to: `Grads.of(w)` is the zero-initialised buffer of weight array `w` (same length), so tied
 * weights (one array reached twice) accumulate into one buffer, and a view into a parameter
 * accumulates into the same view of that parameter's gradient.
 */
import type { Kernels } from '../tensor/kernels.js';
import type { Linear, Matrix } from '../models/weights.js';
import { MoekitError } from '../util/errors.js';

export class Grads {
  private readonly m = new Map<Float32Array, Float32Array>();
  private readonly byBuffer = new Map<ArrayBufferLike, Float32Array[]>();
  /**
   * `params`: the trainable tensors. A weight that is a view into one of them (a fused checkpoint tensor sliced per
   * expert, as Granite's input_linear [E, 2I, H]) gets the matching view of that tensor's gradient.
   */
  constructor(params: Iterable<Float32Array> = []) {
    for (const p of params) {
      const list = this.byBuffer.get(p.buffer) ?? [];
      list.push(p);
      this.byBuffer.set(p.buffer, list);
    }
  }
  /** the gradient buffer of weight w (created as zeros on first use) */
  of(w: Matrix): Float32Array {
    const p = f32(w);
    let g = this.m.get(p);
    if (g) return g;
    const owner = this.byBuffer.get(p.buffer)?.find((q) => q !== p && q.byteOffset <= p.byteOffset && p.byteOffset + p.byteLength <= q.byteOffset + q.byteLength);
    if (owner) {
      const off = (p.byteOffset - owner.byteOffset) / Float32Array.BYTES_PER_ELEMENT;
      g = this.of(owner).subarray(off, off + p.length);
    } else {
      g = new Float32Array(p.length);
    }
    this.m.set(p, g);
    return g;
  }
  get(w: Float32Array): Float32Array | undefined {
    return this.m.get(w);
  }
}

/** the trainer holds every weight as f32 */
export function f32(w: Matrix): Float32Array {
  if (!(w instanceof Float32Array)) throw new MoekitError('the trainer needs f32 weights (load with dtype f32)');
  return w;
}

/**
 * Backward of y[N, out] = x[N, in] · Wᵀ + b:
 * dx[N, in] += dy[N, out] · W[out, in]   (skipped when dx is null)
 * dW[out, in] += dyᵀ · x;  db[out] += Σ_rows dy
 */
export function linearBackward(k: Kernels, L: Linear, x: Float32Array, dy: Float32Array, N: number,
                               dx: Float32Array | null, g: Grads): void {
  const W = f32(L.w);
  if (dx) k.sgemm(false, false, N, L.in, L.out, 1, dy, L.out, W, L.in, 1, dx, L.in);
  k.sgemm(true, false, L.out, L.in, N, 1, dy, L.out, x, L.in, 1, g.of(W), L.in);
  if (L.b) {
    const db = g.of(L.b);
    for (let r = 0; r < N; r++) for (let j = 0; j < L.out; j++) db[j] += dy[r * L.out + j];
  }
}
