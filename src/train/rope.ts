/**
 * RoPE for training: the forward rotates q/k by the position angles (the engine's kernel); the
 * backward is the inverse rotation (the same kernel with sin negated), since a rotation's
 * Jacobian transpose is its inverse.
 */
import type { Kernels } from '../tensor/kernels.js';
import type { RopeDesc } from '../models/desc.js';
import { RopeTable } from '../models/rope.js';

export class TrainRope {
  readonly cos: Float32Array; // [T, dim/2]
  readonly sin: Float32Array; // [T, dim/2]
  readonly negSin: Float32Array; // [T, dim/2]
  constructor(readonly r: RopeDesc, readonly T: number) {
    const tab = new RopeTable(r);
    const half = r.dim / 2;
    const { cos, sin } = tab.at(0, T);
    this.cos = cos.slice(0, T * half);
    this.sin = sin.slice(0, T * half);
    this.negSin = this.sin.map((v) => -v);
  }

  /**
   * rotate columns [off, off + dim) of every head of x viewed as [B, T, nHeads, stride], at
   * positions 0..T−1; inverse = the backward (rotation by −angle)
   */
  apply(k: Kernels, x: Float32Array, B: number, nHeads: number, stride: number, off: number, inverse = false): void {
    const T = this.T, per = T * nHeads * stride;
    for (let b = 0; b < B; b++) {
      k.rope(x.subarray(b * per, (b + 1) * per), T * nHeads, stride, off, this.r.dim, this.cos,
        inverse ? this.negSin : this.sin, nHeads, this.r.interleaved);
    }
  }
}
