/**
 * RoPE frequency tables: default, linear, llama3 and YaRN, computed as transformers does
 * (float32 inverse frequencies, float32 angles), and cos/sin tables [P, dim/2] that grow on demand.
 * YaRN also returns the attention factor that multiplies cos and sin.
 */
import type { RopeDesc } from './desc.js';

const f = Math.fround;

/** inverse frequencies [dim/2] and the factor applied to cos/sin */
export function ropeFrequencies(r: RopeDesc): { invFreq: Float32Array; attentionFactor: number } {
  const half = r.dim / 2;
  const pos = new Float32Array(half); // base^(2i/dim)
  for (let i = 0; i < half; i++) pos[i] = f(Math.pow(r.theta, f(f(2 * i) / r.dim)));
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / pos[i]);
  let attentionFactor = 1;
  if (r.type === 'longrope') {
    // 1 / (short_factor_i · base^(2i/dim)), f32 as transformers; cos and sin scaled by the attention factor
    for (let i = 0; i < half; i++) inv[i] = f(1 / f(r.shortFactor![i] * pos[i]));
    attentionFactor = r.attentionFactor ?? 1;
  } else if (r.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = f(inv[i] / r.factor);
  } else if (r.type === 'llama3') {
    const low = r.lowFreqFactor ?? 1, high = r.highFreqFactor ?? 4;
    const orig = r.originalMaxPositions ?? 8192;
    const lowWl = orig / low, highWl = orig / high;
    for (let i = 0; i < half; i++) {
      const wl = (2 * Math.PI) / inv[i];
      if (wl > lowWl) inv[i] = f(inv[i] / r.factor);
      else if (wl >= highWl) {
        const smooth = (orig / wl - low) / (high - low);
        inv[i] = f((1 - smooth) * (inv[i] / r.factor) + smooth * inv[i]);
      }
    }
  } else if (r.type === 'yarn') {
    const factor = r.factor;
    const mscale = (s: number, m = 1): number => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
    if (r.attentionFactor !== undefined) attentionFactor = r.attentionFactor;
    else if (r.mscale && r.mscaleAllDim) attentionFactor = mscale(factor, r.mscale) / mscale(factor, r.mscaleAllDim);
    else attentionFactor = mscale(factor);
    const betaFast = r.betaFast || 32, betaSlow = r.betaSlow || 1;
    const orig = r.originalMaxPositions ?? 4096;
    const corrDim = (rot: number): number => (r.dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(r.theta));
    let lo = corrDim(betaFast), hi = corrDim(betaSlow);
    if (r.truncate ?? true) { lo = Math.floor(lo); hi = Math.ceil(hi); }
    lo = Math.max(lo, 0); hi = Math.min(hi, r.dim - 1);
    if (lo === hi) hi += 0.001;
    for (let i = 0; i < half; i++) {
      const ramp = Math.min(1, Math.max(0, f(f(i - lo) / f(hi - lo))));
      const extrap = f(1 - ramp); // inv_freq_extrapolation_factor
      const interp = f(1 / f(factor * pos[i]));
      inv[i] = f(f(interp * f(1 - extrap)) + f(inv[i] * extrap));
    }
  }
  return { invFreq: inv, attentionFactor };
}

/** cos/sin [P, dim/2] for positions 0..P-1, extended on demand */
export class RopeTable {
  private readonly inv: Float32Array;
  private readonly scale: number;
  private n = 0;
  cos = new Float32Array(0);
  sin = new Float32Array(0);
  /** −sin: rotating by −angle is the inverse rotation, i.e. RoPE's backward */
  negSin = new Float32Array(0);
  readonly half: number;
  constructor(r: RopeDesc) {
    const { invFreq, attentionFactor } = ropeFrequencies(r);
    this.inv = invFreq;
    this.scale = attentionFactor;
    this.half = r.dim / 2;
  }
  /** make sure positions [0, upTo) are in the table */
  ensure(upTo: number): void {
    if (upTo <= this.n) return;
    const n = Math.max(upTo, this.n * 2, 64);
    const cos = new Float32Array(n * this.half), sin = new Float32Array(n * this.half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < this.half; i++) {
        const a = f(this.inv[i] * p);
        cos[p * this.half + i] = f(Math.cos(a) * this.scale);
        sin[p * this.half + i] = f(Math.sin(a) * this.scale);
      }
    }
    this.cos = cos; this.sin = sin; this.n = n;
    this.negSin = sin.map((v) => -v);
  }
  /** views starting at position p0 (inverse: the backward's rotation by −angle) */
  at(p0: number, count: number, inverse = false): { cos: Float32Array; sin: Float32Array } {
    this.ensure(p0 + count);
    return { cos: this.cos.subarray(p0 * this.half), sin: (inverse ? this.negSin : this.sin).subarray(p0 * this.half) };
  }
}
