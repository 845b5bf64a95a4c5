/**
 * Gradient buffers. Gradients live beside the weights they belong to: `Grads.of(w)` is the
 * zero-initialised f32 buffer of weight array `w` (same length), so tied weights (one array reached
 * twice) accumulate into one buffer, and a view into a parameter accumulates into the same view of
 * that parameter's gradient.
 */
import { MoekitError } from '../util/errors.js';
import type { Weight } from './weight.js';

type Data = Float32Array | Uint16Array;

export class Grads {
  private readonly m = new Map<Data, Float32Array>();
  private readonly byBuffer = new Map<ArrayBufferLike, Data[]>();
  /**
   * `params`: the trainable tensors. A weight that is a view into one of them (a fused checkpoint tensor sliced per
   * expert, as Granite's input_linear [E, 2I, H]) gets the matching view of that tensor's gradient. `storage`: preset
   * gradient buffers, [parameter, zeroed buffer of its length] (e.g. views of a shared buffer the gradient goes to).
   */
  constructor(params: Iterable<Data> = [], storage?: Iterable<[Data, Float32Array]>) {
    for (const [p, g] of storage ?? []) this.m.set(p, g);
    for (const p of params) {
      const list = this.byBuffer.get(p.buffer) ?? [];
      list.push(p);
      this.byBuffer.set(p.buffer, list);
    }
  }
  /** the gradient buffer of weight w (created as zeros on first use) */
  of(w: Data | Weight): Float32Array {
    if ('dtype' in w && w.dtype !== 'f32' && w.dtype !== 'bf16') {
      throw new MoekitError(`a ${w.dtype} weight has no gradient here: train from f32 or bf16 weights`);
    }
    const p: Data = 'dtype' in w ? w.data : w;
    let g = this.m.get(p);
    if (g) return g;
    const owner = this.byBuffer.get(p.buffer)?.find((q) => q !== p && q.byteOffset <= p.byteOffset && p.byteOffset + p.byteLength <= q.byteOffset + q.byteLength);
    if (owner) {
      const off = (p.byteOffset - owner.byteOffset) / p.BYTES_PER_ELEMENT;
      g = this.of(owner).subarray(off, off + p.length);
    } else {
      g = new Float32Array(p.length);
    }
    this.m.set(p, g);
    return g;
  }
  get(w: Data): Float32Array | undefined {
    return this.m.get(w);
  }
}
