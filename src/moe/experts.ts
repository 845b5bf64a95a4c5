/**
 * Phase 3, experts: the SwiGLU FFN of one expert (or a shared / dense FFN) over its rows, and its
 * backward beside it. The activation is SwiGLU, or gpt-oss's clamped SwiGLU with (up + 1).
 */
import type { Grads } from '../tensor/grads.js';
import type { Kernels } from '../tensor/kernels.js';
import { linearBackward, linearFwd } from '../tensor/linear.js';
import type { Ffn, MoeDesc } from './types.js';

/**
 * The FFN's activation: SwiGLU, or gpt-oss's clamped SwiGLU (gate clamped above at `limit`, up to ±limit,
 * (up + 1) · gate · σ(alpha · gate)).
 */
export interface Act { clamped: boolean; limit: number; alpha: number }
export const SWIGLU: Act = { clamped: false, limit: Infinity, alpha: 1 };

export function actOf(m: MoeDesc): Act {
  return m.act === 'swiglu_clamped' ? { clamped: true, limit: m.swigluLimit, alpha: m.swigluAlpha } : SWIGLU;
}

export interface FfnSaved {
  x: Float32Array; // [n, H] input
  g: Float32Array; // [n, I] gate projection
  u: Float32Array; // [n, I] up projection
  a: Float32Array; // [n, I] act(g, u), input of down
  n: number;
}

/** x [n, H] → y [n, H] = down(act(gate(x), up(x))); s when saving */
export function ffnForward(k: Kernels, f: Ffn, x: Float32Array, n: number, act: Act = SWIGLU, save = false): { y: Float32Array; s?: FfnSaved } {
  const g = linearFwd(k, x, n, f.gate); // [n, I]
  const u = linearFwd(k, x, n, f.up); // [n, I]
  const a = save ? new Float32Array(g.length) : g;
  if (act.clamped) k.swigluClamped(a, g, u, g.length, act.limit, act.alpha);
  else k.swiglu(a, g, u, g.length);
  const y = linearFwd(k, a, n, f.down); // [n, H]
  return save ? { y, s: { x, g, u, a, n } } : { y };
}

/** dy [n, H] → dx [n, H] (+=), weight gradients into gr */
export function ffnBackward(k: Kernels, f: Ffn, s: FfnSaved, dy: Float32Array, dx: Float32Array, gr: Grads, act: Act = SWIGLU): void {
  const { g, u, n } = s;
  const da = new Float32Array(g.length); // [n, I]
  linearBackward(k, f.down, s.a, dy, n, da, gr);
  const dg = new Float32Array(g.length), du = new Float32Array(g.length); // [n, I]
  if (act.clamped) {
    // a = (ũ + 1) · g̃ σ(α g̃), g̃ = min(g, L), ũ = clamp(u, −L, L); clamps pass the gradient inside [−L, L] only
    const { limit: L, alpha } = act;
    for (let i = 0; i < g.length; i++) {
      const gc = Math.min(g[i], L), uc = Math.min(Math.max(u[i], -L), L);
      const sg = 1 / (1 + Math.exp(-alpha * gc));
      du[i] = u[i] >= -L && u[i] <= L ? da[i] * gc * sg : 0;
      dg[i] = g[i] <= L ? da[i] * (uc + 1) * sg * (1 + alpha * gc * (1 - sg)) : 0;
    }
  } else {
    k.swigluBackward(dg, du, da, g, u, g.length); // du = da · silu(g), dg = da · u · silu'(g)
  }
  linearBackward(k, f.gate, s.x, dg, n, dx, gr);
  linearBackward(k, f.up, s.x, du, n, dx, gr);
}
