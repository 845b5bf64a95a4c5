/**
 * AdamW with torch.optim.AdamW's semantics: decoupled weight decay (p ← p · (1 − lr·wd)), then
 * m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², p ← p − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps):
 * bias correction on both moments, eps outside the square root.
 */
import { getKernels } from '../tensor/index.js';

export interface AdamWOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export const TORCH_ADAMW_DEFAULTS: AdamWOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 };

export class AdamW {
  readonly opts: AdamWOptions;
  private t = 0;
  private readonly m = new Map<string, Float32Array>(); // first moments, per parameter
  private readonly v = new Map<string, Float32Array>(); // second moments, per parameter

  /** `decays(name)`: whether weight decay applies to a parameter (default: all, as torch) */
  constructor(readonly params: Map<string, Float32Array>, opts: Partial<AdamWOptions> = {},
              private readonly decays: (name: string) => boolean = () => true) {
    this.opts = { ...TORCH_ADAMW_DEFAULTS, ...opts };
    for (const [n, p] of params) {
      this.m.set(n, new Float32Array(p.length));
      this.v.set(n, new Float32Array(p.length));
    }
  }

  get steps(): number {
    return this.t;
  }

  /** one update of every parameter that has a gradient in `grads` (same names), at learning rate `lr` */
  step(grads: Map<string, Float32Array>, lr = this.opts.lr): void {
    const { betas: [b1, b2], eps, weightDecay } = this.opts;
    this.t++;
    const bc1 = 1 - Math.pow(b1, this.t), bc2 = Math.sqrt(1 - Math.pow(b2, this.t));
    const stepSize = lr / bc1;
    const k = getKernels();
    for (const [n, p] of this.params) {
      const g = grads.get(n);
      if (!g) continue;
      const m = this.m.get(n)!, v = this.v.get(n)!;
      const wd = weightDecay !== 0 && this.decays(n) ? 1 - lr * weightDecay : 1;
      k.adamw(p, g, m, v, p.length, b1, b2, stepSize, bc2, eps, wd); // reference: tensor/ref/train.ts
    }
  }

  /** the state a checkpoint keeps: the step count and both moments of every parameter (live arrays) */
  state(): { t: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> } {
    return { t: this.t, m: this.m, v: this.v };
  }

  /** restore a saved state (same parameter names and sizes) */
  restore(t: number, get: (kind: 'm' | 'v', name: string) => Float32Array | undefined): void {
    for (const kind of ['m', 'v'] as const) {
      for (const [n, buf] of this[kind]) {
        const src = get(kind, n);
        if (!src || src.length !== buf.length) throw new Error(`optimizer state: ${kind}.${n} is missing or has the wrong size`);
        buf.set(src);
      }
    }
    this.t = t;
  }
}
