/**
 * AdamW (src/train/adamw.ts) with weight decay, held to an independent float64 loop written from the algorithm in
 * torch.optim.AdamW's documentation (the fixtures' torch curves all use weight_decay = 0):
 *   θ ← θ − γλθ;  m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;  m̂ = m / (1 − β1ᵗ);  v̂ = v / (1 − β2ᵗ);
 *   θ ← θ − γ m̂ / (√v̂ + ε)
 * on a quadratic loss ½ Σ aᵢ (θᵢ − cᵢ)² (gradient a (θ − c), so the gradient follows the parameters), with a
 * learning rate that changes every step, a parameter exempt from decay and a parameter without a gradient on
 * some steps; with both kernel sets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW, TORCH_ADAMW_DEFAULTS } from '../src/train/adamw.js';
import { rng } from '../src/util/rng.js';

interface Param { theta: number[]; m: number[]; v: number[]; a: number[]; c: number[]; t: number }

/** the documentation's loop in float64; `t` counts the optimizer's steps (all parameters share it, as torch's step) */
function naiveStep(p: Param, g: number[], t: number, lr: number, b1: number, b2: number, eps: number, wd: number): void {
  for (let i = 0; i < p.theta.length; i++) {
    p.theta[i] = p.theta[i] - lr * wd * p.theta[i];
    p.m[i] = b1 * p.m[i] + (1 - b1) * g[i];
    p.v[i] = b2 * p.v[i] + (1 - b2) * g[i] * g[i];
    const mhat = p.m[i] / (1 - b1 ** t), vhat = p.v[i] / (1 - b2 ** t);
    p.theta[i] = p.theta[i] - (lr * mhat) / (Math.sqrt(vhat) + eps);
  }
}

function makeParam(n: number, seed: number): Param {
  const r = rng(seed);
  const u = () => 2 * r() - 1;
  return {
    theta: Array.from({ length: n }, u), m: new Array(n).fill(0), v: new Array(n).fill(0),
    a: Array.from({ length: n }, () => 0.5 + r()), c: Array.from({ length: n }, u), t: 0,
  };
}

const grad = (a: number[], c: number[], theta: ArrayLike<number>) => Array.from(theta, (x, i) => a[i] * (x - c[i]));

describe.each(['native', 'reference'])('AdamW with weight decay against the documented algorithm (%s kernels)', (kernels) => {
  const saved = process.env.MOEKIT_KERNELS;
  beforeAll(() => { process.env.MOEKIT_KERNELS = kernels; });
  afterAll(() => { if (saved === undefined) delete process.env.MOEKIT_KERNELS; else process.env.MOEKIT_KERNELS = saved; });

  it.each([
    [0.1, [0.9, 0.999], 1e-8],
    [0.5, [0.8, 0.95], 1e-3],
  ] as const)('weight decay %s, betas %j, eps %s: 30 steps at a changing learning rate', (weightDecay, betas, eps) => {
    const w = makeParam(37, 1), b = makeParam(5, 2), s = makeParam(3, 3); // s gets a gradient on even steps only
    const params = new Map([['w', Float32Array.from(w.theta)], ['b', Float32Array.from(b.theta)], ['s', Float32Array.from(s.theta)]]);
    const opt = new AdamW(params, { lr: 0.05, betas: [betas[0], betas[1]], eps, weightDecay }, (n) => n !== 'b');
    let compared = 0;
    for (let t = 1; t <= 30; t++) {
      const lr = 0.05 * (1 - t / 40); // a schedule: step(grads, lr) overrides opts.lr
      const grads = new Map([['w', Float32Array.from(grad(w.a, w.c, params.get('w')!))], ['b', Float32Array.from(grad(b.a, b.c, params.get('b')!))]]);
      if (t % 2 === 0) grads.set('s', Float32Array.from(grad(s.a, s.c, params.get('s')!)));
      naiveStep(w, grad(w.a, w.c, w.theta), t, lr, betas[0], betas[1], eps, weightDecay);
      naiveStep(b, grad(b.a, b.c, b.theta), t, lr, betas[0], betas[1], eps, 0); // exempt from decay
      if (t % 2 === 0) naiveStep(s, grad(s.a, s.c, s.theta), t, lr, betas[0], betas[1], eps, weightDecay);
      opt.step(grads, lr);
      expect(opt.steps).toBe(t);
      for (const [name, ref] of [['w', w], ['b', b], ['s', s]] as const) {
        const got = params.get(name)!;
        for (let i = 0; i < got.length; i++) {
          expect(Math.abs(got[i] - ref.theta[i]), `${name}[${i}] at step ${t}`).toBeLessThan(2e-6 * (1 + Math.abs(ref.theta[i])));
          compared++;
        }
      }
    }
    expect(compared).toBe(30 * (37 + 5 + 3));
  });

  it('defaults to torch.optim.AdamW: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2 on every parameter', () => {
    expect(TORCH_ADAMW_DEFAULTS).toEqual({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 });
    const w = makeParam(11, 4);
    const params = new Map([['w', Float32Array.from(w.theta)]]);
    const opt = new AdamW(params);
    expect(opt.opts).toEqual(TORCH_ADAMW_DEFAULTS);
    for (let t = 1; t <= 5; t++) {
      naiveStep(w, grad(w.a, w.c, w.theta), t, 1e-3, 0.9, 0.999, 1e-8, 1e-2);
      opt.step(new Map([['w', Float32Array.from(grad(w.a, w.c, params.get('w')!))]]));
    }
    for (let i = 0; i < 11; i++) expect(Math.abs(params.get('w')![i] - w.theta[i])).toBeLessThan(1e-6);
  });

  it('a restored state continues as the uninterrupted run; a state of the wrong size is refused', () => {
    const mk = () => new Map([['w', Float32Array.from(makeParam(9, 5).theta)]]);
    const c = makeParam(9, 5);
    const g = (p: Map<string, Float32Array>) => new Map([['w', Float32Array.from(grad(c.a, c.c, p.get('w')!))]]);
    const pa = mk(), a = new AdamW(pa, { lr: 0.02, weightDecay: 0.1 });
    for (let t = 0; t < 6; t++) a.step(g(pa));
    const pb = mk(), b = new AdamW(pb, { lr: 0.02, weightDecay: 0.1 });
    for (let t = 0; t < 3; t++) b.step(g(pb));
    const st = b.state();
    expect(st.t).toBe(3);
    const pc = new Map([['w', Float32Array.from(pb.get('w')!)]]), cOpt = new AdamW(pc, { lr: 0.02, weightDecay: 0.1 });
    cOpt.restore(st.t, (kind, name) => st[kind].get(name));
    expect(cOpt.steps).toBe(3);
    for (let t = 0; t < 3; t++) cOpt.step(g(pc));
    expect(Array.from(pc.get('w')!)).toEqual(Array.from(pa.get('w')!));
    expect(() => cOpt.restore(1, (kind) => (kind === 'm' ? new Float32Array(9) : new Float32Array(8)))).toThrow(/optimizer state: v\.w is missing or has the wrong size/);
    expect(() => cOpt.restore(1, () => undefined)).toThrow(/optimizer state: m\.w is missing/);
  });
});
