/**
 * Kernel tests: hand-computed cases for the TypeScript reference, then every native kernel held
 * to the reference on random shapes (odd sizes, strides, transposes, alpha/beta, subarray views
 * with guard zones that must stay untouched), under both native row-kernel sets (avx2, scalar).
 * The native addon is REQUIRED: a missing build fails here instead of skipping.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Kernels } from '../src/tensor/kernels.js';
import { referenceKernels as ref } from '../src/tensor/ref/index.js';
import * as fs from 'node:fs';
import { blasCoreFor, nativeAddon, nativeKernels, nativeLoadError } from '../src/tensor/native.js';
import { getKernels, kernelsInfo } from '../src/tensor/index.js';
import { MoekitError } from '../src/util/errors.js';
import { randomTools } from './helpers.js';

// ---------------------------------------------------------------------------------------------
// helpers

const { R, int, pick, randn } = randomTools(20240607); // MOEKIT_TEST_SEED varies it
const GUARD = 12345.5; // value planted around views; must survive every kernel

/**
 * A view of `n` elements at a random offset inside a bigger buffer filled with GUARD, so a kernel
 * reading past its view sees junk and one writing past it is caught by `guardsIntact`.
 */
function view(data: Float32Array): { buf: Float32Array; v: Float32Array; off: number } {
  const off = int(0, 9), tail = int(0, 9);
  const buf = new Float32Array(off + data.length + tail).fill(GUARD);
  buf.set(data, off);
  return { buf, v: buf.subarray(off, off + data.length), off };
}
function guardsIntact(w: { buf: Float32Array; v: Float32Array; off: number }): boolean {
  for (let i = 0; i < w.off; i++) if (w.buf[i] !== GUARD) return false;
  for (let i = w.off + w.v.length; i < w.buf.length; i++) if (w.buf[i] !== GUARD) return false;
  return true;
}

/** |got - want| <= atol + rtol · scale (scale defaults to |want|), NaN matching NaN */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number,
                     what: string, scale?: ArrayLike<number>): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (g === w) continue;
    const s = scale ? scale[i] : Math.abs(w);
    if (!(Math.abs(g - w) <= atol + rtol * s)) {
      expect.fail(`${what}: element ${i}: native ${g} vs reference ${w} (scale ${s})`);
    }
  }
}

const abs = (a: Float32Array): Float32Array => a.map(Math.abs);

// ---------------------------------------------------------------------------------------------
// the reference itself, on cases small enough to check by hand

describe('reference kernels: hand-computed cases', () => {
  it('sgemm: 2x2 in all four transpose combos, alpha/beta, and a strided C', () => {
    const A = new Float32Array([1, 2, 3, 4]); // [2,2] [[1,2],[3,4]]
    const B = new Float32Array([5, 6, 7, 8]); // [2,2] [[5,6],[7,8]]
    const C = new Float32Array(4);            // [2,2]
    ref.sgemm(false, false, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2);
    expect([...C]).toEqual([19, 22, 43, 50]);
    ref.sgemm(true, false, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2); // Aᵀ·B
    expect([...C]).toEqual([26, 30, 38, 44]);
    ref.sgemm(false, true, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2); // A·Bᵀ
    expect([...C]).toEqual([17, 23, 39, 53]);
    ref.sgemm(true, true, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2); // Aᵀ·Bᵀ
    expect([...C]).toEqual([23, 31, 34, 46]);
    ref.sgemm(false, false, 2, 2, 2, 2, A, 2, B, 2, -1, C, 2); // 2·A·B − C
    expect([...C]).toEqual([38 - 23, 44 - 31, 86 - 34, 100 - 46]);
    const Cs = new Float32Array([9, 9, 9, 9, 9, 9]); // [2,3] with ldc 3, only 2 columns written
    ref.sgemm(false, false, 2, 2, 2, 1, A, 2, B, 2, 0, Cs, 3);
    expect([...Cs]).toEqual([19, 22, 9, 43, 50, 9]);
  });

  it('sgemm: beta = 0 ignores NaN in C, alpha = 0 never reads A or B', () => {
    const A = new Float32Array([NaN, 1]);       // [1,2]
    const B = new Float32Array([1, 1]);         // [2,1]
    const C = new Float32Array([NaN]);          // [1,1]
    ref.sgemm(false, false, 1, 1, 2, 1, new Float32Array([2, 3]), 2, B, 1, 0, C, 1);
    expect(C[0]).toBe(5);
    ref.sgemm(false, false, 1, 1, 2, 0, A, 2, B, 1, 2, C, 1);
    expect(C[0]).toBe(10);
  });

  it('sgemv: y = W·x and the linear-layer form of sgemm agree', () => {
    const W = new Float32Array([1, 2, 3, 4, 5, 6]); // [2,3]
    const x = new Float32Array([1, 0, -1]);         // [3]
    const y = new Float32Array([10, 20]);           // [2]
    ref.sgemv(2, 3, 1, W, x, 0.5, y);
    expect([...y]).toEqual([-2 + 5, -2 + 10]);
    const y2 = new Float32Array(2);                  // [1,2] = x[1,3] · W[2,3]ᵀ
    ref.sgemm(false, true, 1, 2, 3, 1, x, 3, W, 3, 0, y2, 2);
    expect([...y2]).toEqual([-2, -2]);
  });

  it('softmax: a 2x2 case, a masked entry, a fully masked row', () => {
    const x = new Float32Array([0, Math.log(3), 5, 5]); // [2,2]
    ref.softmax(x, 2, 2);
    expect(x[0]).toBeCloseTo(0.25, 7);
    expect(x[1]).toBeCloseTo(0.75, 7);
    expect([x[2], x[3]]).toEqual([0.5, 0.5]);
    const m = new Float32Array([1, -Infinity, 1, -Infinity, -Infinity, -Infinity]); // [2,3]
    ref.softmax(m, 2, 3);
    expect([...m]).toEqual([0.5, 0, 0.5, 0, 0, 0]);
    const big = new Float32Array([1000, 1000]); // max-subtraction keeps this finite
    ref.softmax(big, 1, 2);
    expect([...big]).toEqual([0.5, 0.5]);
  });

  it('rmsnorm: x = [3, 4] has rms sqrt(12.5); weights scale; out may alias x', () => {
    const x = new Float32Array([3, 4]); // [1,2]
    const out = new Float32Array(2);
    ref.rmsnorm(out, x, new Float32Array([2, 0.5]), 1, 2, 0);
    const rms = Math.sqrt(12.5);
    expect(out[0]).toBeCloseTo((3 / rms) * 2, 6);
    expect(out[1]).toBeCloseTo((4 / rms) * 0.5, 6);
    ref.rmsnorm(x, x, null, 1, 2, 0);
    expect(x[0]).toBeCloseTo(3 / rms, 6);
    expect(x[1]).toBeCloseTo(4 / rms, 6);
  });

  it('rope: a known rotation, interleaved (2i, 2i+1) vs half (i, i + d/2) pairing', () => {
    // rotDim 4 → 2 angles: θ0 = π/2 (cos 0, sin 1), θ1 = π (cos −1, sin 0)
    const cos = new Float32Array([0, -1]), sin = new Float32Array([1, 0]); // [1,2]
    const xi = new Float32Array([1, 2, 3, 4]); // [1,4]
    ref.rope(xi, 1, 4, 0, 4, cos, sin, 1, true);
    // pairs (1,2)@θ0 → (−2, 1); (3,4)@θ1 → (−3, −4)
    expect([...xi]).toEqual([-2, 1, -3, -4]);
    const xh = new Float32Array([1, 2, 3, 4]);
    ref.rope(xh, 1, 4, 0, 4, cos, sin, 1, false);
    // pairs (1,3)@θ0 → (−3, 1); (2,4)@θ1 → (−2, −4); same as HF x·cos + rotate_half(x)·sin
    expect([...xh]).toEqual([-3, -2, 1, -4]);
  });

  it('rope: off/stride leave other columns alone; rowsPerPos shares a position', () => {
    // 4 rows (2 heads × 2 positions) of stride 5, rotating columns [1, 3)
    const x = new Float32Array(20).fill(1); // [4,5]
    const cos = new Float32Array([1, 0]), sin = new Float32Array([0, 1]); // [2,1]: θ = 0, π/2
    ref.rope(x, 4, 5, 1, 2, cos, sin, 2, false);
    expect([...x]).toEqual([1, 1, 1, 1, 1,  1, 1, 1, 1, 1,  1, -1, 1, 1, 1,  1, -1, 1, 1, 1]);
  });

  it('swiglu and the gpt-oss clamped variant', () => {
    const out = new Float32Array(3);
    ref.swiglu(out, new Float32Array([0, 1, -1]), new Float32Array([5, 2, 2]), 3);
    const sig = (v: number): number => 1 / (1 + Math.exp(-v));
    expect(out[0]).toBe(0);
    expect(out[1]).toBeCloseTo(2 * sig(1), 6);
    expect(out[2]).toBeCloseTo(-2 * sig(-1), 6);
    const c = new Float32Array(2);
    ref.swigluClamped(c, new Float32Array([10, -3]), new Float32Array([-9, 0.5]), 2, 7, 1.702);
    expect(c[0]).toBeCloseTo(-6 * 7 * sig(1.702 * 7), 5); // g → 7, u → −7
    expect(c[1]).toBeCloseTo(1.5 * -3 * sig(1.702 * -3), 6); // unclamped
  });

  it('topk: descending, ties to the lower index, NaN last', () => {
    const x = new Float32Array([1, 3, 3, 2,  NaN, -Infinity, 0, 0]); // [2,4]
    const idx = new Int32Array(6), val = new Float32Array(6);        // [2,3]
    ref.topk(x, 2, 4, 3, idx, val);
    expect([...idx]).toEqual([1, 2, 3,  2, 3, 1]); // column indices within each row
    expect([...val]).toEqual([3, 3, 2,  0, 0, -Infinity]);
  });
});

// ---------------------------------------------------------------------------------------------
// native vs reference

describe('native addon', () => {
  it('is built and loads (CI must build it: this fails instead of skipping)', () => {
    expect(nativeLoadError, 'native addon load error').toBeNull();
    expect(nativeKernels).not.toBeNull();
    expect(nativeKernels!.name).toBe('native');
  });
});

const simdSets = nativeAddon?.info().avx2 ? (['avx2', 'scalar'] as const) : (['scalar'] as const);

describe.each(simdSets)('native kernels vs reference (%s row kernels)', (simd) => {
  let nat: Kernels;
  beforeAll(() => {
    if (!nativeAddon || !nativeKernels) throw new Error(`native addon missing: ${nativeLoadError}`);
    expect(nativeAddon.setSimd(simd)).toBe(simd);
    nat = nativeKernels;
  });
  afterAll(() => { nativeAddon?.setSimd('auto'); });

  /** one random sgemm case compared element-wise, guards checked */
  function gemmCase(tA: boolean, tB: boolean, M: number, N: number, K: number): void {
    const alpha = pick([1, -0.75, 2.5]), beta = pick([0, 1, 0.5, -1.25]);
    const aRows = tA ? K : M, aCols = tA ? M : K, bRows = tB ? N : K, bCols = tB ? K : N;
    const lda = aCols + pick([0, 0, 1, 3, 8]), ldb = bCols + pick([0, 0, 2, 5]);
    const ldc = N + pick([0, 0, 1, 7]);
    const A = view(randn(aRows * lda)), B = view(randn(bRows * ldb));
    const C0 = randn(M * ldc);
    if (beta === 0) C0.fill(NaN); // must be ignored
    const Cn = view(C0), Cr = C0.slice();
    nat.sgemm(tA, tB, M, N, K, alpha, A.v, lda, B.v, ldb, beta, Cn.v, ldc);
    ref.sgemm(tA, tB, M, N, K, alpha, A.v, lda, B.v, ldb, beta, Cr, ldc);
    // error scale: |alpha|·|A|·|B| + |beta|·|C|, itself computed by the reference
    const scale = beta === 0 ? new Float32Array(M * ldc) : abs(C0);
    ref.sgemm(tA, tB, M, N, K, Math.abs(alpha), abs(A.v), lda, abs(B.v), ldb, Math.abs(beta),
      scale, ldc);
    const what = `sgemm(${tA}, ${tB}, M=${M}, N=${N}, K=${K}, alpha=${alpha}, lda=${lda}, ` +
      `ldb=${ldb}, beta=${beta}, ldc=${ldc})`;
    // padding columns [N, ldc) of C are not part of the output: reference leaves them as-is
    expectClose(Cn.v, Cr, 1e-5, 1e-6, what, scale);
    expect(guardsIntact(Cn), `${what}: wrote outside C`).toBe(true);
  }

  it('sgemm: random shapes, all transposes, alpha/beta, strides, offset views', () => {
    for (let t = 0; t < 160; t++) {
      gemmCase(t % 2 === 1, (t >> 1) % 2 === 1, int(1, 37), int(1, 37), int(1, 45));
    }
  });

  it('sgemm: larger blocked/threaded shapes and degenerate dims', () => {
    const shapes: [number, number, number][] = [
      [129, 257, 300], [300, 7, 513], [1, 1000, 333], [517, 1, 64], [64, 64, 64], [33, 65, 1],
      [64, 130, 100], [50, 37, 129], [8, 128, 128], [2, 3, 4096], [65, 16, 64], [64, 9, 129], // the small-M direct kernel (M ≤ 64, M·K ≤ 8192) and just past it
    ];
    for (const [M, N, K] of shapes) {
      for (const tA of [false, true]) for (const tB of [false, true]) gemmCase(tA, tB, M, N, K);
    }
    // K = 0 → C = beta·C; alpha = 0 → A, B unread (NaN there must not leak)
    const C = new Float32Array([1, 2, 3, 4]);
    nat.sgemm(false, false, 2, 2, 0, 1, new Float32Array(0), 1, new Float32Array(0), 2, 3, C, 2);
    expect([...C]).toEqual([3, 6, 9, 12]);
    nat.sgemm(false, false, 2, 2, 2, 0, new Float32Array(4).fill(NaN), 2,
      new Float32Array(4).fill(NaN), 2, 0.5, C, 2);
    expect([...C]).toEqual([1.5, 3, 4.5, 6]);
    // M = 0: nothing written (a longer C keeps its values), no error
    const C0 = new Float32Array([7, 8]);
    expect(() => nat.sgemm(false, false, 0, 2, 2, 1, new Float32Array(0), 2, new Float32Array(4), 2, 0, C0, 2)).not.toThrow();
    expect([...C0]).toEqual([7, 8]);
  });

  it('sgemv: random shapes, alpha/beta, offset views', () => {
    for (let t = 0; t < 60; t++) {
      const N = int(1, 300), K = int(1, 300);
      const alpha = pick([1, -0.5, 3]), beta = pick([0, 1, 0.25]);
      const W = view(randn(N * K)), x = view(randn(K));
      const y0 = beta === 0 ? new Float32Array(N).fill(NaN) : randn(N);
      const yn = view(y0), yr = y0.slice();
      nat.sgemv(N, K, alpha, W.v, x.v, beta, yn.v);
      ref.sgemv(N, K, alpha, W.v, x.v, beta, yr);
      const scale = beta === 0 ? new Float32Array(N) : abs(y0);
      ref.sgemv(N, K, Math.abs(alpha), abs(W.v), abs(x.v), Math.abs(beta), scale);
      expectClose(yn.v, yr, 1e-5, 1e-6, `sgemv(N=${N}, K=${K})`, scale);
      expect(guardsIntact(yn)).toBe(true);
    }
  });

  it('attnDecode: GQA groups, sliding windows (lo > 0), sinks, empty key ranges, cache capacity > S', () => {
    for (let t = 0; t < 60; t++) {
      const nKv = pick([1, 2, 4]), nH = nKv * pick([1, 2, 4]), Dk = pick([8, 16, 32, 13]), Dv = pick([8, 16, 7]);
      const S = int(0, 70), cap = S + pick([0, 0, 5, 33]), lo = t % 3 === 0 ? int(0, S) : 0;
      const sinks = t % 4 === 0 ? randn(nH, 2) : null;
      const q = view(randn(nH * Dk)), K = view(randn(nKv * cap * Dk)), V = view(randn(nKv * cap * Dv));
      const outN = view(new Float32Array(nH * Dv).fill(NaN)), outR = new Float32Array(nH * Dv);
      const scale = 1 / Math.sqrt(Dk);
      nat.attnDecode(q.v, K.v, V.v, outN.v, nH, nKv, cap, Dk, Dv, lo, S, scale, sinks);
      ref.attnDecode(q.v, K.v, V.v, outR, nH, nKv, cap, Dk, Dv, lo, S, scale, sinks);
      expectClose(outN.v, outR, 1e-4, 1e-5, `attnDecode(nH=${nH}, nKv=${nKv}, S=${S}, lo=${lo}, sinks=${sinks !== null})`);
      expect(guardsIntact(outN)).toBe(true);
    }
    expect(() => nat.attnDecode(new Float32Array(4), new Float32Array(8), new Float32Array(8), new Float32Array(4), 3, 2, 4, 1, 1, 0, 4, 1, null)).toThrow(/multiple of nKv/);
    expect(() => nat.attnDecode(new Float32Array(4), new Float32Array(8), new Float32Array(8), new Float32Array(4), 2, 2, 4, 1, 1, 0, 5, 1, null)).toThrow(/S <= cap/);
    expect(() => nat.attnDecode(new Float32Array(4), new Float32Array(7), new Float32Array(8), new Float32Array(4), 2, 2, 4, 1, 1, 0, 4, 1, null)).toThrow(/K has 7 elements, needs 8/);
  });

  it('attnDecode: a long cache splits the heads over 1, 2 and 3 threads, the same bits as one, within the reference', () => {
    // native: heads split by KV head above 2^18 keys × heads × dims (here 700 × 8 × 96 ≈ 538k)
    const threads0 = nativeAddon!.info().threads;
    for (const [nH, nKv, Dk, Dv, S, cap, lo, withSinks] of [[8, 4, 64, 32, 700, 720, 0, false], [8, 2, 32, 64, 1000, 1000, 300, true], [6, 3, 40, 24, 1500, 1600, 0, false]] as const) {
      const q = randn(nH * Dk), K = randn(nKv * cap * Dk), V = randn(nKv * cap * Dv), sinks = withSinks ? randn(nH, 2) : null;
      const scale = 1 / Math.sqrt(Dk), outs: Float32Array[] = [];
      try {
        for (const t of [1, 2, 3]) {
          nativeAddon!.setThreads(t);
          const o = new Float32Array(nH * Dv).fill(NaN);
          nat.attnDecode(q, K, V, o, nH, nKv, cap, Dk, Dv, lo, S, scale, sinks);
          outs.push(o);
        }
      } finally {
        nativeAddon!.setThreads(threads0);
      }
      expect(outs[1]).toEqual(outs[0]);
      expect(outs[2]).toEqual(outs[0]);
      const outR = new Float32Array(nH * Dv);
      ref.attnDecode(q, K, V, outR, nH, nKv, cap, Dk, Dv, lo, S, scale, sinks);
      expectClose(outs[1], outR, 1e-4, 1e-5, `attnDecode(nH=${nH}, nKv=${nKv}, S=${S}, lo=${lo})`);
    }
  });

  it('attnDecodeBatch: B sequences of different lengths and capacities, as attnDecode one by one; threads on and off', () => {
    for (let t = 0; t < 30; t++) {
      const nKv = pick([1, 2]), nH = nKv * pick([1, 2, 4]), Dk = pick([8, 32, 13, 64]), Dv = pick([8, 32, 7]), B = pick([1, 2, 7, 64]);
      const sinks = t % 4 === 0 ? randn(nH, 2) : null;
      const meta = new Int32Array(3 * B), Ks: Float32Array[] = [], Vs: Float32Array[] = [];
      for (let b = 0; b < B; b++) {
        const S = int(0, 150), cap = S + pick([0, 3, 40]), lo = b % 3 === 0 ? int(0, S) : 0;
        meta.set([cap, lo, S], 3 * b);
        Ks.push(randn(nKv * cap * Dk)); Vs.push(randn(nKv * cap * Dv));
      }
      const q = randn(B * nH * Dk), scale = 1 / Math.sqrt(Dk);
      const outN = view(new Float32Array(B * nH * Dv).fill(NaN)), outR = new Float32Array(B * nH * Dv);
      const threads = t % 3 + 1, threads0 = nativeAddon!.info().threads; // 1, 2 or 3 threads split the sequences
      try {
        nativeAddon!.setThreads(threads);
        nat.attnDecodeBatch(q, Ks, Vs, meta, outN.v, nH, nKv, Dk, Dv, scale, sinks);
      } finally {
        nativeAddon!.setThreads(threads0);
      }
      for (let b = 0; b < B; b++) {
        ref.attnDecode(q.subarray(b * nH * Dk, (b + 1) * nH * Dk), Ks[b], Vs[b], outR.subarray(b * nH * Dv, (b + 1) * nH * Dv), nH, nKv,
          meta[3 * b], Dk, Dv, meta[3 * b + 1], meta[3 * b + 2], scale, sinks);
      }
      expectClose(outN.v, outR, 1e-4, 1e-5, `attnDecodeBatch(threads=${threads}, B=${B}, nH=${nH}, nKv=${nKv}, Dk=${Dk}, Dv=${Dv})`);
      expect(guardsIntact(outN)).toBe(true);
      const outRB = new Float32Array(B * nH * Dv);
      ref.attnDecodeBatch(q, Ks, Vs, meta, outRB, nH, nKv, Dk, Dv, scale, sinks);
      expect(outRB).toEqual(outR);
    }
    const one = [new Float32Array(8)];
    expect(() => nat.attnDecodeBatch(new Float32Array(4), one, one, new Int32Array([4, 0, 5]), new Float32Array(4), 2, 2, 1, 1, 1, null)).toThrow(/sequence 0 needs 0 <= lo <= S <= cap/);
    expect(() => nat.attnDecodeBatch(new Float32Array(4), one, [], new Int32Array([4, 0, 4]), new Float32Array(4), 2, 2, 1, 1, 1, null)).toThrow(/Ks has 1 caches, Vs 0/);
    expect(() => nat.attnDecodeBatch(new Float32Array(4), one, one, new Int32Array([8, 0, 4]), new Float32Array(4), 2, 2, 1, 1, 1, null)).toThrow(/shorter than/);
    expect(() => nat.attnDecodeBatch(new Float32Array(4), one, one, new Int32Array([4, 0]), new Float32Array(4), 2, 2, 1, 1, 1, null)).toThrow(/meta has 2 elements, needs 3/);
  });

  it('attnDecodeBatch with kNew / vNew: each new key and value lands at S − 1 of its cache, then attended, as the reference', () => {
    for (let t = 0; t < 20; t++) {
      const nKv = pick([1, 2]), nH = nKv * pick([1, 2]), Dk = pick([8, 32, 13]), Dv = pick([8, 32, 7]), B = pick([2, 5, 64]);
      const meta = new Int32Array(3 * B), Ks: Float32Array[] = [], Vs: Float32Array[] = [];
      for (let b = 0; b < B; b++) {
        const S = int(1, 90), cap = S + pick([0, 3]), lo = b % 4 === 1 ? int(0, S - 1) : 0;
        meta.set([cap, lo, S], 3 * b);
        Ks.push(randn(nKv * cap * Dk)); Vs.push(randn(nKv * cap * Dv));
      }
      const q = randn(B * nH * Dk), kNew = randn(B * nKv * Dk), vNew = randn(B * nKv * Dv), scale = 1 / Math.sqrt(Dk);
      const KsR = Ks.map((x) => x.slice()), VsR = Vs.map((x) => x.slice());
      const outN = new Float32Array(B * nH * Dv), outR = new Float32Array(B * nH * Dv);
      nat.attnDecodeBatch(q, Ks, Vs, meta, outN, nH, nKv, Dk, Dv, scale, null, kNew, vNew);
      // the naive way: copy each head's row in by hand, then attend one sequence at a time
      for (let b = 0; b < B; b++) {
        const cap = meta[3 * b], p = meta[3 * b + 2] - 1;
        for (let h = 0; h < nKv; h++) {
          for (let i = 0; i < Dk; i++) KsR[b][(h * cap + p) * Dk + i] = kNew[(b * nKv + h) * Dk + i];
          for (let i = 0; i < Dv; i++) VsR[b][(h * cap + p) * Dv + i] = vNew[(b * nKv + h) * Dv + i];
        }
        ref.attnDecode(q.subarray(b * nH * Dk, (b + 1) * nH * Dk), KsR[b], VsR[b], outR.subarray(b * nH * Dv, (b + 1) * nH * Dv), nH, nKv,
          cap, Dk, Dv, meta[3 * b + 1], meta[3 * b + 2], scale, null);
      }
      for (let b = 0; b < B; b++) { expect(Ks[b]).toEqual(KsR[b]); expect(Vs[b]).toEqual(VsR[b]); }
      expectClose(outN, outR, 1e-4, 1e-5, `attnDecodeBatch kNew (B=${B}, nH=${nH}, nKv=${nKv}, Dk=${Dk}, Dv=${Dv})`);
      const outRB = new Float32Array(B * nH * Dv), KsB = Ks.map((x) => x.slice());
      for (let b = 0; b < B; b++) Ks[b].fill(0); // the reference batch writes them again
      ref.attnDecodeBatch(q, KsB, Vs.map((x) => x.slice()), meta, outRB, nH, nKv, Dk, Dv, scale, null, kNew, vNew);
      expect(outRB).toEqual(outR);
    }
    const one = [new Float32Array(8)];
    expect(() => nat.attnDecodeBatch(new Float32Array(2), one, one, new Int32Array([4, 0, 0]), new Float32Array(2), 2, 2, 1, 1, 1, null, new Float32Array(2), new Float32Array(2)))
      .toThrow(/needs S >= 1/);
    expect(() => nat.attnDecodeBatch(new Float32Array(2), one, one, new Int32Array([4, 0, 2]), new Float32Array(2), 2, 2, 1, 1, 1, null, new Float32Array(1), new Float32Array(2)))
      .toThrow(/kNew has 1 elements, needs 2/);
  });

  it('attnDecode over wide score ranges (the fast exponential): sharp and flat rows, scores far below the max, as the float64 reference', () => {
    for (let t = 0; t < 40; t++) {
      const nKv = 2, nH = 4, Dk = pick([8, 32, 64]), Dv = pick([8, 32]), S = int(1, 200), cap = S;
      const q = randn(nH * Dk), K = randn(nKv * cap * Dk), V = randn(nKv * cap * Dv);
      const scale = pick([1e-3, 0.1, 1, 8, 40]) / Math.sqrt(Dk); // scores from ~0 apart to hundreds apart (e^−87 and below)
      const sinks = t % 5 === 0 ? randn(nH, 3) : null;
      const outN = new Float32Array(nH * Dv), outR = new Float32Array(nH * Dv);
      nat.attnDecode(q, K, V, outN, nH, nKv, cap, Dk, Dv, 0, S, scale, sinks);
      ref.attnDecode(q, K, V, outR, nH, nKv, cap, Dk, Dv, 0, S, scale, sinks);
      expectClose(outN, outR, 1e-5, 1e-6, `attnDecode(S=${S}, Dk=${Dk}, scale=${scale})`);
    }
  });

  it('softmax: random rows/cols, large logits, masks, NaN rows', () => {
    for (let t = 0; t < 60; t++) {
      const rows = int(1, 9), cols = pick([1, 2, 7, 8, 9, 16, 33, int(1, 300)]);
      const x0 = randn(rows * cols, pick([1, 10, 40]));
      for (let i = 0; i < x0.length; i++) if (R() < 0.1) x0[i] = -Infinity;
      if (t % 7 === 0) x0.fill(-Infinity, 0, cols);  // fully masked row → zeros
      if (t % 11 === 0) x0[x0.length - 1] = NaN;     // NaN row → NaN
      const xn = view(x0), xr = x0.slice();
      nat.softmax(xn.v, rows, cols);
      ref.softmax(xr, rows, cols);
      expectClose(xn.v, xr, 1e-5, 1e-7, `softmax(rows=${rows}, cols=${cols})`);
      expect(guardsIntact(xn)).toBe(true);
    }
  });

  it('rmsnorm: with and without weights, aliasing, odd dims', () => {
    for (let t = 0; t < 60; t++) {
      const rows = int(1, 6), dim = pick([1, 3, 8, 15, 64, 65, int(1, 600)]);
      const eps = pick([1e-6, 1e-5, 0.1]);
      const x0 = randn(rows * dim, pick([0.01, 1, 100]));
      const w = t % 3 === 0 ? null : view(randn(dim, 2));
      const alias = t % 2 === 0;
      const xn = view(x0), on = alias ? xn : view(new Float32Array(rows * dim));
      const xr = x0.slice(), or = alias ? xr : new Float32Array(rows * dim);
      nat.rmsnorm(on.v, xn.v, w ? w.v : null, rows, dim, eps);
      ref.rmsnorm(or, xr, w ? w.v : null, rows, dim, eps);
      expectClose(on.v, or, 1e-5, 1e-7, `rmsnorm(rows=${rows}, dim=${dim}, alias=${alias})`);
      expect(guardsIntact(on)).toBe(true);
      if (!alias) expectClose(xn.v, x0, 0, 0, 'rmsnorm must not touch x');
    }
  });

  it('rope: both pairings, offsets, strides, rowsPerPos, vector and tail widths', () => {
    for (let t = 0; t < 80; t++) {
      const rotDim = pick([2, 4, 6, 8, 10, 16, 18, 34, 64, 128]), half = rotDim / 2;
      const off = pick([0, 0, 1, 5]), stride = off + rotDim + pick([0, 0, 3, 16]);
      const rowsPerPos = int(1, 4), rows = int(1, 12);
      const P = Math.floor((rows - 1) / rowsPerPos) + 1;
      const ang = randn(P * half, 10);
      const cos = view(ang.map(Math.cos)), sin = view(ang.map(Math.sin));
      const interleaved = t % 2 === 0;
      const x0 = randn((rows - 1) * stride + off + rotDim);
      const xn = view(x0), xr = x0.slice();
      nat.rope(xn.v, rows, stride, off, rotDim, cos.v, sin.v, rowsPerPos, interleaved);
      ref.rope(xr, rows, stride, off, rotDim, cos.v, sin.v, rowsPerPos, interleaved);
      expectClose(xn.v, xr, 1e-5, 1e-6,
        `rope(rows=${rows}, stride=${stride}, off=${off}, rotDim=${rotDim}, ` +
        `rowsPerPos=${rowsPerPos}, interleaved=${interleaved})`);
      expect(guardsIntact(xn)).toBe(true);
    }
  });

  it('swiglu / swigluClamped: random values incl. large magnitudes, aliasing', () => {
    for (let t = 0; t < 40; t++) {
      const n = pick([1, 7, 8, 31, int(1, 2000)]);
      const g0 = randn(n, pick([1, 10, 100])), u0 = randn(n, pick([1, 10]));
      const clamped = t % 2 === 1;
      const limit = 7, alpha = 1.702;
      const gn = view(g0), un = view(u0), gr = g0.slice(), ur = u0.slice();
      const outAlias = t % 4 < 2; // write into gate
      const on = outAlias ? gn : view(new Float32Array(n));
      const or = outAlias ? gr : new Float32Array(n);
      if (clamped) {
        nat.swigluClamped(on.v, gn.v, un.v, n, limit, alpha);
        ref.swigluClamped(or, gr, ur, n, limit, alpha);
      } else {
        nat.swiglu(on.v, gn.v, un.v, n);
        ref.swiglu(or, gr, ur, n);
      }
      expectClose(on.v, or, 1e-5, 1e-6, `${clamped ? 'swigluClamped' : 'swiglu'}(n=${n})`);
      expect(guardsIntact(on)).toBe(true);
    }
  });

  it('topk: exact agreement incl. ties, NaN, -Infinity, small and large k', () => {
    for (let t = 0; t < 60; t++) {
      const rows = int(1, 8), cols = pick([1, 4, 8, 33, 64, int(1, 400)]);
      const k = Math.min(cols, pick([1, 2, 4, 8, cols, int(1, cols), 40]));
      const x = randn(rows * cols);
      const levels = t % 2 === 0 ? 5 : 0; // quantize → many ties
      for (let i = 0; i < x.length; i++) {
        if (levels) x[i] = Math.round(x[i] * levels) / levels;
        if (R() < 0.02) x[i] = NaN;
        else if (R() < 0.02) x[i] = -Infinity;
      }
      const xv = view(x);
      const idxN = new Int32Array(rows * k + 3).fill(-7), valN = view(new Float32Array(rows * k));
      const idxR = new Int32Array(rows * k), valR = new Float32Array(rows * k);
      nat.topk(xv.v, rows, cols, k, idxN.subarray(1, 1 + rows * k), valN.v);
      ref.topk(xv.v, rows, cols, k, idxR, valR);
      expect([...idxN.subarray(1, 1 + rows * k)], `topk(rows=${rows}, cols=${cols}, k=${k})`)
        .toEqual([...idxR]);
      expect([...valN.v]).toEqual([...valR]);
      expect([idxN[0], idxN[rows * k + 1], idxN[rows * k + 2]]).toEqual([-7, -7, -7]);
      expect(guardsIntact(valN)).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// argument validation: both implementations throw the same errors before touching memory

describe.each(['reference', 'native'] as const)('%s: too-small buffers and bad dims', (which) => {
  const K = (): Kernels => {
    if (which === 'reference') return ref;
    if (!nativeKernels) throw new Error(`native addon missing: ${nativeLoadError}`);
    return nativeKernels;
  };
  const f = (n: number): Float32Array => new Float32Array(n);
  const big = new Float32Array(100);

  it('sgemm names the short buffer and the bad leading dimension', () => {
    const k = K();
    // A [3,4] needs 12; a 12-element view at offset 90 of a 100-element buffer has only 10
    expect(() => k.sgemm(false, false, 3, 2, 4, 1, big.subarray(90), 4, f(8), 2, 0, f(6), 2))
      .toThrow(/sgemm: A has 10 elements, needs 12/);
    expect(() => k.sgemm(false, false, 3, 2, 4, 1, f(12), 4, f(7), 2, 0, f(6), 2))
      .toThrow(/sgemm: B has 7 elements, needs 8/);
    expect(() => k.sgemm(false, false, 3, 2, 4, 1, f(12), 4, f(8), 2, 0, f(6), 3))
      .toThrow(/sgemm: C has 6 elements, needs 8/);
    expect(() => k.sgemm(true, false, 3, 2, 4, 1, f(12), 4, f(8), 2, 0, f(6), 2))
      .toThrow(/sgemm: A has 12 elements, needs 15/); // Aᵀ stored [4,3] with lda 4
    expect(() => k.sgemm(false, false, 3, 2, 4, 1, f(12), 3, f(8), 2, 0, f(6), 2))
      .toThrow(RangeError);
    expect(() => k.sgemm(false, false, 3, 2, 4, 1, f(12), 3, f(8), 2, 0, f(6), 2))
      .toThrow(/lda=3 must be >= max\(1, 4\)/);
    expect(() => k.sgemm(false, false, -1, 2, 4, 1, f(12), 4, f(8), 2, 0, f(6), 2))
      .toThrow(/sgemm: M must be a non-negative integer/);
    expect(() => k.sgemm(false, false, 1.5, 2, 4, 1, f(12), 4, f(8), 2, 0, f(6), 2))
      .toThrow(RangeError);
    expect(() => k.sgemm(false, false, 3, 2, 4, 1, new Float64Array(12) as unknown as Float32Array,
      4, f(8), 2, 0, f(6), 2)).toThrow(TypeError);
  });

  it('the other kernels name their short buffer', () => {
    const k = K();
    expect(() => k.sgemv(3, 4, 1, f(12), f(3), 0, f(3))).toThrow(/sgemv: x has 3 elements, needs 4/);
    expect(() => k.sgemv(3, 4, 1, f(11), f(4), 0, f(3))).toThrow(/sgemv: W has 11/);
    expect(() => k.sgemv(3, 4, 1, f(12), f(4), 0, f(2))).toThrow(/sgemv: y has 2/);
    expect(() => k.softmax(big.subarray(95), 2, 3)).toThrow(/softmax: x has 5 elements, needs 6/);
    expect(() => k.rmsnorm(f(6), f(5), null, 2, 3, 1e-5)).toThrow(/rmsnorm: x has 5/);
    expect(() => k.rmsnorm(f(5), f(6), null, 2, 3, 1e-5)).toThrow(/rmsnorm: out has 5/);
    expect(() => k.rmsnorm(f(6), f(6), f(2), 2, 3, 1e-5)).toThrow(/rmsnorm: w has 2/);
    // rope: x [2 rows, stride 6], columns [2, 6) → needs 6 + 2 + 4 = 12
    expect(() => k.rope(f(11), 2, 6, 2, 4, f(4), f(4), 1, false)).toThrow(/rope: x has 11/);
    expect(() => k.rope(f(12), 2, 6, 2, 4, f(3), f(4), 1, false)).toThrow(/rope: cos has 3/);
    expect(() => k.rope(f(12), 2, 6, 2, 4, f(4), f(2), 2, true)).not.toThrow(); // 1 position
    expect(() => k.rope(f(12), 2, 6, 2, 4, f(2), f(1), 2, true)).toThrow(/rope: sin has 1/);
    expect(() => k.rope(f(12), 2, 6, 3, 4, f(4), f(4), 1, false)).toThrow(/exceeds stride/);
    expect(() => k.rope(f(12), 2, 6, 2, 3, f(4), f(4), 1, false)).toThrow(/rotDim must be even/);
    expect(() => k.swiglu(f(4), f(4), f(3), 4)).toThrow(/swiglu: up has 3/);
    expect(() => k.swigluClamped(f(3), f(4), f(4), 4, 7, 1.7)).toThrow(/swigluClamped: out has 3/);
    expect(() => k.topk(f(8), 2, 4, 2, new Int32Array(3), f(4))).toThrow(/topk: idx has 3/);
    expect(() => k.topk(f(8), 2, 4, 2, new Int32Array(4), f(3))).toThrow(/topk: val has 3/);
    expect(() => k.topk(f(8), 2, 4, 5, new Int32Array(10), f(10))).toThrow(/k=5 exceeds cols=4/);
    expect(() => k.topk(f(8), 2, 4, 2, new Uint32Array(4) as unknown as Int32Array, f(4)))
      .toThrow(TypeError);
  });
});

// ---------------------------------------------------------------------------------------------
// selection

describe('getKernels / kernelsInfo', () => {
  const saved = process.env.MOEKIT_KERNELS;
  afterAll(() => {
    if (saved === undefined) delete process.env.MOEKIT_KERNELS;
    else process.env.MOEKIT_KERNELS = saved;
  });

  it('prefers native, honours MOEKIT_KERNELS, rejects bad values', () => {
    delete process.env.MOEKIT_KERNELS;
    expect(getKernels().name).toBe('native');
    expect(kernelsInfo()).toMatchObject({ name: 'native', nativeError: null });
    expect(kernelsInfo().threads).toBeGreaterThanOrEqual(1);
    process.env.MOEKIT_KERNELS = 'reference';
    expect(getKernels()).toBe(ref);
    expect(kernelsInfo().name).toBe('reference');
    process.env.MOEKIT_KERNELS = 'native';
    expect(getKernels()).toBe(nativeKernels);
    process.env.MOEKIT_KERNELS = 'fast';
    expect(() => getKernels()).toThrow(MoekitError);
  });

  it('MOEKIT_KERNELS=native without the addon is a MoekitError; auto falls back', async () => {
    vi.resetModules();
    vi.doMock('../src/tensor/native.js', () => ({
      nativeAddon: null, nativeKernels: null, nativeThreadsError: null,
      nativeLoadError: 'cannot load build/Release/moekit_native.node: gone',
    }));
    try {
      const m = await import('../src/tensor/index.js');
      const errors = await import('../src/util/errors.js'); // the fresh module graph's class
      process.env.MOEKIT_KERNELS = 'native';
      expect(() => m.getKernels()).toThrow(errors.MoekitError);
      expect(() => m.getKernels()).toThrow(/native kernels requested but unavailable: .*gone/);
      delete process.env.MOEKIT_KERNELS;
      expect(m.getKernels().name).toBe('reference');
      expect(m.kernelsInfo()).toMatchObject({ name: 'reference', threads: null });
      expect(m.kernelsInfo().nativeError).toMatch(/gone/);
    } finally {
      vi.doUnmock('../src/tensor/native.js');
      vi.resetModules();
    }
  });
});

describe('OpenBLAS kernel set (blasCoreFor)', () => {
  const cpu = (vendor: string, flags: string) => `processor\t: 0\nvendor_id\t: ${vendor}\nflags\t\t: ${flags}\n`;
  it('names SkylakeX for AVX-512 Intel, Haswell for AVX2 + FMA, nothing otherwise', () => {
    expect(blasCoreFor(cpu('GenuineIntel', 'fpu sse2 avx2 fma avx512f avx512dq avx512bw avx512vl'))).toBe('SkylakeX');
    expect(blasCoreFor(cpu('GenuineIntel', 'fpu sse2 avx2 fma avx512f'))).toBe('Haswell');
    expect(blasCoreFor(cpu('GenuineIntel', 'fpu sse2 sse3'))).toBeNull();
    expect(blasCoreFor(cpu('AuthenticAMD', 'avx2 fma avx512f avx512dq avx512bw avx512vl'))).toBeNull();
    expect(blasCoreFor('')).toBeNull();
  });
  it('the addon runs the set named for this CPU, or the one OPENBLAS_CORETYPE asked for', () => {
    let info = '';
    try { info = fs.readFileSync('/proc/cpuinfo', 'utf8'); } catch { return; }
    const want = blasCoreFor(info);
    if (want && process.env.OPENBLAS_CORETYPE === want) expect(nativeAddon!.info().blasCore).toBe(want);
  });
});
