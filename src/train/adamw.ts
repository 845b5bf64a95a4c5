/**
 * AdamW with torch.optim.AdamW's semantics: decoupled weight decay (p ← p · (1 − lr·wd)), then
 * m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², p ← p − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps):
 * bias correction on both moments, eps outside the square root.
 */

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

  constructor(readonly params: Map<string, Float32Array>, opts: Partial<AdamWOptions> = {}) {
    this.opts = { ...TORCH_ADAMW_DEFAULTS, ...opts };
    for (const [n, p] of params) {
      this.m.set(n, new Float32Array(p.length));
      this.v.set(n, new Float32Array(p.length));
    }
  }

  get steps(): number {
    return this.t;
  }

  /** one update of every parameter that has a gradient in `grads` (same names) */
  step(grads: Map<string, Float32Array>): void {
    const { lr, betas: [b1, b2], eps, weightDecay } = this.opts;
    this.t++;
    const bc1 = 1 - Math.pow(b1, this.t), bc2 = Math.sqrt(1 - Math.pow(b2, this.t));
    const stepSize = lr / bc1;
    for (const [n, p] of this.params) {
      const g = grads.get(n);
      if (!g) continue;
      const m = this.m.get(n)!, v = this.v.get(n)!;
      for (let i = 0; i < p.length; i++) {
        if (weightDecay !== 0) p[i] *= 1 - lr * weightDecay;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2 + eps);
      }
    }
  }
}
