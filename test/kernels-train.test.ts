/**
 * The training kernels (native/train.cc) held to their TypeScript references (src/tensor/ref/train.ts) bit for bit
 * on random shapes, subarray views with guard zones, null weights; the references checked against the plain
 * formulas they stand for (hand-computed and finite-difference cases), and the addon's argument checks.
 */
import { describe, expect, it } from 'vitest';
import * as ref from '../src/tensor/ref/train.js';
import { nativeAddon, nativeKernels } from '../src/tensor/native.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { randomTools } from './helpers.js';

const { int, randn } = randomTools(20261201);
const GUARD = 777.25;
const k = nativeKernels as Kernels;

/** a view of `data` inside a buffer with guard values on both sides */
function view(data: Float32Array) {
  const off = int(0, 7), tail = int(0, 7);
  const buf = new Float32Array(off + data.length + tail).fill(GUARD);
  buf.set(data, off);
  return { buf, v: buf.subarray(off, off + data.length) };
}
/** both implementations from the same inputs; every output array equal bit for bit, guards intact */
function same(outs: Float32Array[], run: (impl: Kernels | typeof ref, o: Float32Array[]) => number | void): void {
  const a = outs.map((o) => view(o.slice())), b = outs.map((o) => o.slice());
  const rn = run(k, a.map((w) => w.v));
  const rr = run(ref, b);
  if (typeof rr === 'number') expect(Object.is(rn, rr)).toBe(true);
  a.forEach((w, i) => {
    expect(Buffer.from(w.v.buffer, w.v.byteOffset, w.v.byteLength).equals(Buffer.from(b[i].buffer))).toBe(true);
    const off = w.v.byteOffset / 4;
    for (let j = 0; j < off; j++) expect(w.buf[j]).toBe(GUARD);
    for (let j = off + w.v.length; j < w.buf.length; j++) expect(w.buf[j]).toBe(GUARD);
  });
}
/** assignment ids grouped by expert (as moe/dispatch.ts) for N tokens, K slots, E experts */
function order(N: number, K: number, E: number) {
  const idx = Int32Array.from({ length: N * K }, () => int(0, E - 1));
  const ord = Int32Array.from({ length: N * K }, (_, a) => a).sort((x, y) => idx[x] - idx[y] || x - y);
  return ord;
}

describe('training kernels: native = reference, bit for bit', () => {
  it('the addon has them', () => {
    for (const n of Object.keys(ref)) expect(typeof (nativeAddon as unknown as Record<string, unknown>)[n], n).toBe('function');
  });
  it('rmsnormBackward (with and without w, dw)', () => {
    for (let c = 0; c < 12; c++) {
      const rows = int(0, 9), dim = int(1, 70), eps = c % 2 ? 1e-6 : 1e-5;
      const x = randn(rows * dim, 3), dy = randn(rows * dim), w = c % 3 ? randn(dim, 2) : null;
      const withDw = c % 4 !== 1;
      same([randn(rows * dim), randn(dim)], (impl, [dx, dw]) => impl.rmsnormBackward(dx, dy, x, w, withDw ? dw : null, rows, dim, eps));
    }
  });
  it('swigluBackward, including large and tiny gates', () => {
    for (let c = 0; c < 8; c++) {
      const n = int(0, 300);
      const g = randn(n, c < 4 ? 4 : 60), u = randn(n), da = randn(n);
      if (n > 3) { g[0] = 0; g[1] = 1; g[2] = -1; g[3] = -745.5; }
      same([new Float32Array(n), new Float32Array(n)], (impl, [dg, du]) => impl.swigluBackward(dg, du, da, g, u, n));
    }
  });
  it('softmaxBackward over the first n columns of rows with stride ld', () => {
    for (let c = 0; c < 8; c++) {
      const rows = int(0, 12), n = int(1, 40), ld = n + int(0, 3);
      const p = randn(rows * ld).map(Math.abs);
      same([randn(rows * ld)], (impl, [dp]) => impl.softmaxBackward(dp, p, rows, n, ld));
    }
  });
  it('adamw, with and without decay', () => {
    for (let c = 0; c < 6; c++) {
      const n = int(0, 500), g = randn(n, 0.1);
      const wd = c % 2 ? 1 - 3e-3 * 0.1 : 1, t = int(1, 50);
      same([randn(n), randn(n, 0.01), randn(n, 1e-4).map(Math.abs)], (impl, [p, m, v]) =>
        impl.adamw(p, g, m, v, n, 0.9, 0.95, 3e-3 / (1 - 0.9 ** t), Math.sqrt(1 - 0.95 ** t), 1e-8, wd));
    }
  });
  it('addTo, scale and sumSquares', () => {
    const n = int(1, 1000), src = randn(n, 1e3);
    same([randn(n)], (impl, [dst]) => impl.addTo(dst, src, n));
    same([randn(n, 50)], (impl, [x]) => impl.scale(x, n, 0.123456789));
    const x = randn(n, 7);
    expect(Object.is(k.sumSquares(x, n, 0.125), ref.sumSquares(x, n, 0.125))).toBe(true);
  });
  it('gatherRows, scatterRows, combineRows, combineRowsBackward', () => {
    for (let c = 0; c < 6; c++) {
      const N = int(1, 30), K = int(1, 3), E = int(1, 6), H = int(1, 20);
      const ord = order(N, K, E), lo = int(0, N * K), hi = int(lo, N * K), n = hi - lo;
      const x = randn(N * H), y = randn(n * H), wts = randn(N * K), dy = randn(N * H);
      same([new Float32Array(n * H)], (impl, [out]) => impl.gatherRows(out, x, H, K, ord, lo, hi));
      same([randn(N * H)], (impl, [dx]) => impl.scatterRows(dx, y, H, K, ord, lo, hi));
      same([randn(N * H)], (impl, [out]) => impl.combineRows(out, y, H, K, wts, ord, lo, hi));
      same([randn(N * K), new Float32Array(n * H)], (impl, [dw, dye]) => impl.combineRowsBackward(dw, dye, dy, y, H, K, wts, ord, lo, hi));
    }
  });
});

describe('training kernels: the references', () => {
  it('rmsnormBackward is the gradient of Σ c ⊙ rmsnorm(x) · w (finite differences)', () => {
    const rows = 2, dim = 5, eps = 1e-6, x = randn(rows * dim), w = randn(dim), c = randn(rows * dim);
    const loss = (xx: Float64Array, ww: Float64Array) => {
      let s = 0;
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let j = 0; j < dim; j++) ss += xx[r * dim + j] ** 2;
        const rs = 1 / Math.sqrt(ss / dim + eps);
        for (let j = 0; j < dim; j++) s += c[r * dim + j] * xx[r * dim + j] * rs * ww[j];
      }
      return s;
    };
    const dx = new Float32Array(rows * dim), dw = new Float32Array(dim);
    ref.rmsnormBackward(dx, c, x, w, dw, rows, dim, eps);
    const X = Float64Array.from(x), W = Float64Array.from(w), h = 1e-6;
    for (let i = 0; i < rows * dim; i++) {
      const a = X.slice(), b = X.slice(); a[i] += h; b[i] -= h;
      expect(dx[i]).toBeCloseTo((loss(a, W) - loss(b, W)) / (2 * h), 4);
    }
    for (let j = 0; j < dim; j++) {
      const a = W.slice(), b = W.slice(); a[j] += h; b[j] -= h;
      expect(dw[j]).toBeCloseTo((loss(X, a) - loss(X, b)) / (2 * h), 4);
    }
  });
  it('swigluBackward and softmaxBackward by hand', () => {
    const dg = new Float32Array(1), du = new Float32Array(1);
    ref.swigluBackward(dg, du, Float32Array.of(2), Float32Array.of(0), Float32Array.of(3), 1);
    expect(du[0]).toBe(0); // silu(0) = 0
    expect(dg[0]).toBeCloseTo(2 * 3 * 0.5, 6); // silu'(0) = 1/2
    const dp = Float32Array.of(1, 0, 9), p = Float32Array.of(0.25, 0.75, 0);
    ref.softmaxBackward(dp, p, 1, 2, 3); // Σ p dp = 0.25
    expect([...dp]).toEqual([0.25 * 0.75, 0.75 * -0.25, 9]);
  });
  it('combine and gather are each other\'s adjoints', () => {
    const N = 7, K = 2, H = 3, ord = order(N, K, 3), w = randn(N * K);
    const y = randn(N * K * H), dy = randn(N * H);
    const out = new Float32Array(N * H);
    ref.combineRows(out, y, H, K, w, ord, 0, N * K);
    const dw = new Float32Array(N * K), dye = new Float32Array(N * K * H);
    ref.combineRowsBackward(dw, dye, dy, y, H, K, w, ord, 0, N * K);
    // <dy, combine(y)> = <dye, y>
    let l = 0, r = 0;
    for (let i = 0; i < N * H; i++) l += dy[i] * out[i];
    for (let i = 0; i < N * K * H; i++) r += dye[i] * y[i];
    expect(l).toBeCloseTo(r, 4);
    const xe = new Float32Array(N * K * H), back = new Float32Array(N * H);
    ref.gatherRows(xe, dy, H, K, ord, 0, N * K);
    ref.scatterRows(back, xe, H, K, ord, 0, N * K);
    for (let i = 0; i < N * H; i++) expect(back[i]).toBeCloseTo(K * dy[i], 5); // every token sent to K experts
  });
});

describe('training kernels: argument checks', () => {
  it('a too-short buffer or an order entry outside the rows is a RangeError', () => {
    expect(() => k.addTo(new Float32Array(2), new Float32Array(3), 3)).toThrow(/dst has 2 elements, needs 3/);
    expect(() => k.gatherRows(new Float32Array(4), new Float32Array(4), 2, 1, Int32Array.of(0, 5), 0, 2)).toThrow(/order\[1\]=5/);
    expect(() => k.combineRows(new Float32Array(4), new Float32Array(4), 2, 1, new Float32Array(1), Int32Array.of(0, 1), 0, 2)).toThrow(RangeError);
    expect(() => k.softmaxBackward(new Float32Array(3), new Float32Array(4), 2, 2, 2)).toThrow(/dp has 3/);
  });
});
