/** Reference gated activations (SwiGLU and gpt-oss's clamped SwiGLU), float64 per element. */
import { dim, f32, len } from './check.js';

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** out[n] = silu(gate[n]) · up[n] = gate · sigmoid(gate) · up; out may alias gate or up. */
export function swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  const k = 'swiglu';
  dim(k, 'n', n);
  f32(k, 'out', out); f32(k, 'gate', gate); f32(k, 'up', up);
  len(k, 'gate', gate, n); len(k, 'up', up, n); len(k, 'out', out, n);
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    out[i] = g * sigmoid(g) * up[i];
  }
}

/**
 * gpt-oss: g = min(gate, limit); u = clamp(up, -limit, limit); out = (u + 1) · g · sigmoid(alpha·g).
 * out may alias gate or up.
 */
export function swigluClamped(out: Float32Array, gate: Float32Array, up: Float32Array, n: number,
                              limit: number, alpha: number): void {
  const k = 'swigluClamped';
  dim(k, 'n', n);
  f32(k, 'out', out); f32(k, 'gate', gate); f32(k, 'up', up);
  len(k, 'gate', gate, n); len(k, 'up', up, n); len(k, 'out', out, n);
  for (let i = 0; i < n; i++) {
    const g = Math.min(gate[i], limit);
    const u = Math.min(Math.max(up[i], -limit), limit);
    out[i] = (u + 1) * g * sigmoid(alpha * g);
  }
}
