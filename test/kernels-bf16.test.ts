/**
 * bf16-weight kernels (bf16ToF32, sgemvBf16, sgemmBf16): hand-computed cases for the TypeScript
 * reference, exact widening of every special bit pattern, the native addon held to the
 * reference on random shapes (odd sizes, offsets, alpha/beta, M = 1 and M > 1, N·K above the
 * threading threshold) under both SIMD sets, and argument errors in both implementations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../src/tensor/kernels.js';
import { referenceKernels as ref } from '../src/tensor/ref/index.js';
import { nativeAddon, nativeKernels, nativeLoadError } from '../src/tensor/native.js';
import { randomTools } from './helpers.js';

// ---------------------------------------------------------------------------------------------
// helpers

const { R, int, pick, randn } = randomTools(20240611); // MOEKIT_TEST_SEED varies it
const GUARD = 12345.5; // planted around f32 views; must survive every kernel

/** f32 → bf16 bits, round to nearest even (NaN stays NaN) */
function toBf16(v: Float32Array): Uint16Array {
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const b = u[i];
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x40;
    else out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}
/** f32 value of bf16 bits, computed independently of the kernels (sign · 2^e · mantissa) */
function bf16Value(b: number): number {
  const sign = b & 0x8000 ? -1 : 1, e = (b >>> 7) & 0xff, m = b & 0x7f;
  if (e === 0xff) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -133; // subnormal: m/128 · 2^-126
  return sign * (1 + m / 128) * 2 ** (e - 127);
}

/** random bf16 weights: n values in [-scale, scale) */
const randBf16 = (n: number, scale = 1): Uint16Array => toBf16(randn(n, scale));

/** a view of `data` at a random offset inside a bigger buffer filled with `fill` */
function view<T extends Float32Array | Uint16Array>(data: T, fill: number):
  { buf: T; v: T; off: number } {
  const off = int(0, 9), tail = int(0, 9);
  const Ctor = data.constructor as new (n: number) => T;
  const buf = new Ctor(off + data.length + tail);
  buf.fill(fill);
  buf.set(data, off);
  return { buf, v: buf.subarray(off, off + data.length) as T, off };
}
const fview = (d: Float32Array): { buf: Float32Array; v: Float32Array; off: number } =>
  view(d, GUARD);
/** bf16 views are padded with NaN bits, so a kernel reading past its view poisons results */
const wview = (d: Uint16Array): { buf: Uint16Array; v: Uint16Array; off: number } =>
  view(d, 0x7fc0);
function guardsIntact(w: { buf: Float32Array; v: Float32Array; off: number }): boolean {
  for (let i = 0; i < w.off; i++) if (w.buf[i] !== GUARD) return false;
  for (let i = w.off + w.v.length; i < w.buf.length; i++) if (w.buf[i] !== GUARD) return false;
  return true;
}

/** |got - want| <= atol + rtol · scale[i], NaN matching NaN */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number,
                     what: string, scale: ArrayLike<number>): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (g === w) continue;
    if (!(Math.abs(g - w) <= atol + rtol * scale[i])) {
      expect.fail(`${what}: element ${i}: native ${g} vs reference ${w} (scale ${scale[i]})`);
    }
  }
}
const abs = (a: Float32Array): Float32Array => a.map(Math.abs);
const absBf16 = (a: Uint16Array): Uint16Array => a.map((b) => b & 0x7fff);
const bits = (a: Float32Array): number[] => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

/** every special class of bf16 bit pattern, plus a sweep of ordinary ones */
const SPECIAL = [
  0x0000, 0x8000,                 // +0, -0
  0x0001, 0x8001, 0x007f, 0x807f, // smallest / largest subnormals, both signs
  0x0080, 0x8080,                 // smallest normals
  0x3f80, 0xbf80, 0x4049,         // 1, -1, ~3.14
  0x7f7f, 0xff7f,                 // ±max finite
  0x7f80, 0xff80,                 // ±Infinity
  0x7fc0, 0xffc0,                 // quiet NaNs
  0x7f81, 0xff81, 0x7fff, 0xffff, // signalling / payload NaNs
];

// ---------------------------------------------------------------------------------------------
// the reference itself

describe('reference bf16 kernels: hand-computed cases', () => {
  it('bf16ToF32: bits << 16 for every special class and all 65536 patterns', () => {
    const src = new Uint16Array(SPECIAL);
    const dst = new Float32Array(src.length + 2).fill(GUARD);
    ref.bf16ToF32(dst.subarray(1), src, src.length);
    expect(bits(dst.subarray(1, 1 + src.length))).toEqual(SPECIAL.map((b) => (b << 16) >>> 0));
    expect([dst[0], dst[src.length + 1]]).toEqual([GUARD, GUARD]);
    expect(Object.is(dst[2], -0)).toBe(true);
    expect(dst[3]).toBe(2 ** -133);
    expect(dst[9]).toBe(1);
    expect(dst[14]).toBe(Infinity);
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = new Float32Array(65536);
    ref.bf16ToF32(out, all, 65536);
    for (let b = 0; b < 65536; b++) {
      const want = bf16Value(b), got = out[b];
      if (!(Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want))) {
        expect.fail(`bf16 0x${b.toString(16)}: ${got} vs ${want}`);
      }
    }
    expect(bits(out)).toEqual([...all].map((b) => (b << 16) >>> 0));
  });

  it('sgemvBf16 / sgemmBf16: small exact cases, alpha/beta, strides, beta = 0 ignores NaN', () => {
    const W = toBf16(new Float32Array([1, 2, 3, 4, 5, 6])); // [2,3], exact in bf16
    const x = new Float32Array([1, 0, -1]);                 // [3]
    const y = new Float32Array([10, 20]);                   // [2]
    ref.sgemvBf16(2, 3, 1, W, x, 0.5, y);
    expect([...y]).toEqual([-2 + 5, -2 + 10]);
    y.fill(NaN);
    ref.sgemvBf16(2, 3, 2, W, x, 0, y);
    expect([...y]).toEqual([-4, -4]);
    // A [2,3] with lda 4; W [2,3] with ldw 5; C [2,2] with ldc 3 (column 2 untouched)
    const A = new Float32Array([1, 2, 3, 99, 4, 5, 6, 99]);
    const Ws = toBf16(new Float32Array([1, 0, -1, 7, 7, 0.5, 0.5, 0.5, 7, 7]));
    const C = new Float32Array([1, 1, 9, 1, 1, 9]);
    ref.sgemmBf16(2, 2, 3, 1, A, 4, Ws, 5, -1, C, 3);
    expect([...C]).toEqual([-2 - 1, 3 - 1, 9, -2 - 1, 7.5 - 1, 9]);
    // the linear-layer form equals sgemm(false, true, ...) on the widened weights
    const Wf = new Float32Array(6);
    ref.bf16ToF32(Wf, W, 6);
    const c1 = new Float32Array(2), c2 = new Float32Array(2);
    ref.sgemmBf16(1, 2, 3, 1, x, 3, W, 3, 0, c1, 2);
    ref.sgemm(false, true, 1, 2, 3, 1, x, 3, Wf, 3, 0, c2, 2);
    expect([...c1]).toEqual([...c2]);
    // alpha = 0 / K = 0: A and W are not read, C = beta · C
    const c3 = new Float32Array([2, 4]);
    ref.sgemmBf16(1, 2, 3, 0, new Float32Array(3).fill(NaN), 3, new Uint16Array(6).fill(0x7fc0),
      3, 0.5, c3, 2);
    expect([...c3]).toEqual([1, 2]);
    ref.sgemvBf16(2, 0, 1, new Uint16Array(0), new Float32Array(0), 3, c3);
    expect([...c3]).toEqual([3, 6]);
  });
});

// ---------------------------------------------------------------------------------------------
// argument validation: both implementations throw the same errors before touching memory

describe.each(['reference', 'native'] as const)('%s bf16 kernels: bad arguments', (which) => {
  const K = (): Kernels => {
    if (which === 'reference') return ref;
    if (!nativeKernels) throw new Error(`native addon missing: ${nativeLoadError}`);
    return nativeKernels;
  };
  const f = (n: number): Float32Array => new Float32Array(n);
  const u = (n: number): Uint16Array => new Uint16Array(n);

  it('bf16ToF32 names the short buffer and rejects wrong array types', () => {
    const k = K();
    expect(() => k.bf16ToF32(f(4), u(3), 4)).toThrow(/bf16ToF32: src has 3 elements, needs 4/);
    expect(() => k.bf16ToF32(f(3), u(4), 4)).toThrow(/bf16ToF32: dst has 3 elements, needs 4/);
    expect(() => k.bf16ToF32(f(100).subarray(97), u(4), 4)).toThrow(RangeError);
    expect(() => k.bf16ToF32(f(4), u(4), -1)).toThrow(/bf16ToF32: n must be a non-negative/);
    expect(() => k.bf16ToF32(f(4), u(4), 2.5)).toThrow(RangeError);
    expect(() => k.bf16ToF32(f(4), new Int16Array(4) as unknown as Uint16Array, 4))
      .toThrow(/bf16ToF32: src must be a Uint16Array/);
    expect(() => k.bf16ToF32(new Uint32Array(4) as unknown as Float32Array, u(4), 4))
      .toThrow(TypeError);
    expect(() => k.bf16ToF32(f(0), u(0), 0)).not.toThrow();
  });

  it('sgemvBf16 names the short buffer and rejects wrong array types', () => {
    const k = K();
    expect(() => k.sgemvBf16(3, 4, 1, u(12), f(3), 0, f(3))).toThrow(/sgemvBf16: x has 3 elements, needs 4/);
    expect(() => k.sgemvBf16(3, 4, 1, u(11), f(4), 0, f(3))).toThrow(/sgemvBf16: W has 11 elements, needs 12/);
    expect(() => k.sgemvBf16(3, 4, 1, u(12), f(4), 0, f(2))).toThrow(/sgemvBf16: y has 2 elements, needs 3/);
    expect(() => k.sgemvBf16(3, -4, 1, u(12), f(4), 0, f(3))).toThrow(/sgemvBf16: K must be a non-negative/);
    expect(() => k.sgemvBf16(3, 4, 1, f(12) as unknown as Uint16Array, f(4), 0, f(3)))
      .toThrow(/sgemvBf16: W must be a Uint16Array/);
    expect(() => k.sgemvBf16(3, 4, 1, u(12), new Float64Array(4) as unknown as Float32Array, 0,
      f(3))).toThrow(/sgemvBf16: x must be a Float32Array/);
    expect(() => k.sgemvBf16(3, 4, 0, u(0), f(0), 0, f(3))).not.toThrow(); // alpha = 0: W, x unread
  });

  it('sgemmBf16 names the short buffer and the bad leading dimension', () => {
    const k = K();
    // A [3,4] needs 12; a view of the last 10 elements of a 100-element buffer is short
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(100).subarray(90), 4, u(8), 4, 0, f(6), 2))
      .toThrow(/sgemmBf16: A has 10 elements, needs 12/);
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 4, u(7), 4, 0, f(6), 2))
      .toThrow(/sgemmBf16: W has 7 elements, needs 8/);
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 4, u(8), 5, 0, f(6), 2))
      .toThrow(/sgemmBf16: W has 8 elements, needs 9/); // W [2,4] with ldw 5
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 4, u(8), 4, 0, f(6), 3))
      .toThrow(/sgemmBf16: C has 6 elements, needs 8/);
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 3, u(8), 4, 0, f(6), 2))
      .toThrow(/sgemmBf16: lda=3 must be >= max\(1, 4\)/);
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 4, u(8), 3, 0, f(6), 2))
      .toThrow(/sgemmBf16: ldw=3 must be >= max\(1, 4\)/);
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 4, u(8), 4, 0, f(6), 1))
      .toThrow(/sgemmBf16: ldc=1 must be >= max\(1, 2\)/);
    expect(() => k.sgemmBf16(-3, 2, 4, 1, f(12), 4, u(8), 4, 0, f(6), 2))
      .toThrow(/sgemmBf16: M must be a non-negative integer/);
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 4, f(8) as unknown as Uint16Array, 4, 0, f(6), 2))
      .toThrow(/sgemmBf16: W must be a Uint16Array/);
    expect(() => k.sgemmBf16(3, 2, 4, 1, f(12), 4, u(8), 4, 0,
      new Float64Array(6) as unknown as Float32Array, 2)).toThrow(TypeError);
  });
});

// ---------------------------------------------------------------------------------------------
// native vs reference

describe('native addon: bf16 kernels', () => {
  it('come from the addon itself, not the reference fallback for an old build', () => {
    expect(nativeLoadError, 'native addon load error').toBeNull();
    for (const name of ['bf16ToF32', 'sgemvBf16', 'sgemmBf16'] as const) {
      expect(typeof nativeAddon![name], `addon exports ${name} (rebuild it)`).toBe('function');
      expect(nativeKernels![name]).toBe(nativeAddon![name]);
    }
  });
});

// 'amx': the AVX2 row kernels with sgemmBf16 on AMX tiles (native/amx.cc), where the CPU and the OS offer them;
// 'avx512': sgemmBf16 on AVX512-BF16 (native/bf16_avx512.cc) with AMX off, where the CPU has it; 'avx2' runs with
// both off, so its small-M kernel and panel path stay tested on such a machine too
const info = nativeAddon?.info();
const modes = info?.avx2
  ? ([...(info.amx ? ['amx'] as const : []), ...(info.avx512bf16 ? ['avx512'] as const : []), 'avx2', 'scalar'] as const)
  : (['scalar'] as const);

describe.each(modes)('native bf16 kernels vs reference (%s)', (mode) => {
  const simd = mode === 'scalar' ? 'scalar' : 'avx2';
  let nat: Kernels;
  let threads0 = 1;
  beforeAll(() => {
    if (!nativeAddon || !nativeKernels) throw new Error(`native addon missing: ${nativeLoadError}`);
    expect(nativeAddon.setSimd(simd)).toBe(simd);
    expect(nativeAddon.setAmx!(mode === 'amx')).toBe(mode === 'amx');
    const avx512 = info!.avx512bf16 === true || info!.avx512vnni === true;
    // forced: VDPBF16PS at every M, not only the few rows sgemmBf16 picks it for
    expect(nativeAddon.setAvx512!(mode !== 'avx2', mode === 'avx512')).toBe(mode !== 'avx2' && avx512);
    threads0 = nativeAddon.info().threads;
    nat = nativeKernels;
  });
  afterAll(() => {
    nativeAddon?.setSimd('auto');
    nativeAddon?.setAmx?.(true);
    nativeAddon?.setAvx512?.(true);
    nativeAddon?.setThreads(threads0);
  });
  /** run `f` with the addon's thread count set to each of `counts` in turn */
  const withThreads = (counts: number[], f: (t: number) => void): void => {
    try {
      for (const t of counts) {
        nativeAddon!.setThreads(t);
        f(t);
      }
    } finally {
      nativeAddon!.setThreads(threads0);
    }
  };

  it('bf16ToF32: bit-exact on specials, all 65536 patterns, odd lengths, offsets, threaded', () => {
    const cases: Uint16Array[] = [new Uint16Array(SPECIAL), new Uint16Array(65536).map((_, i) => i)];
    for (const n of [0, 1, 7, 8, 15, 16, 17, 31, 33, int(1, 1000), int(1, 1000)]) {
      cases.push(new Uint16Array(n).map(() => int(0, 0xffff)));
    }
    cases.push(new Uint16Array((1 << 20) * 3 + 5).map(() => int(0, 0xffff))); // > 1M: pool
    withThreads([1, 2, 3], (t) => {
      for (const src of cases) {
        const s = wview(src), d = fview(new Float32Array(src.length));
        const want = new Float32Array(src.length);
        nat.bf16ToF32(d.v, s.v, src.length);
        ref.bf16ToF32(want, s.v, src.length);
        const gotBits = new Uint32Array(d.buf.buffer, d.buf.byteOffset + 4 * d.off, src.length);
        const wantBits = new Uint32Array(want.buffer);
        for (let i = 0; i < src.length; i++) {
          if (gotBits[i] !== wantBits[i] || wantBits[i] !== ((src[i] << 16) >>> 0)) {
            expect.fail(`bf16ToF32(n=${src.length}, threads=${t}): element ${i} ` +
              `bits 0x${gotBits[i].toString(16)} vs 0x${wantBits[i].toString(16)}`);
          }
        }
        expect(guardsIntact(d), `bf16ToF32(n=${src.length}) wrote outside dst`).toBe(true);
      }
    });
    // n smaller than both buffers: only the first n written
    const d = new Float32Array(10).fill(GUARD);
    nat.bf16ToF32(d, new Uint16Array(10).fill(0x3f80), 4);
    expect([...d]).toEqual([1, 1, 1, 1, ...new Array(6).fill(GUARD)]);
  });

  /** one random sgemvBf16 case compared element-wise, guards checked */
  function gemvCase(N: number, K: number, specials = false): void {
    const alpha = pick([1, -0.5, 3]), beta = pick([0, 1, 0.25]);
    const Wd = randBf16(N * K);
    if (specials) {
      for (let i = 0; i < 6; i++) Wd[int(0, Wd.length - 1)] = pick([0x7f80, 0xff80, 0x7fc0, 0x8000, 0x0001]);
    }
    const W = wview(Wd), x = fview(randn(K));
    const y0 = beta === 0 ? new Float32Array(N).fill(NaN) : randn(N);
    const yn = fview(y0), yr = y0.slice();
    nat.sgemvBf16(N, K, alpha, W.v, x.v, beta, yn.v);
    ref.sgemvBf16(N, K, alpha, W.v, x.v, beta, yr);
    // error scale: |alpha|·|W|·|x| + |beta|·|y|, itself computed by the reference
    const scale = beta === 0 ? new Float32Array(N) : abs(y0);
    ref.sgemvBf16(N, K, Math.abs(alpha), absBf16(W.v), abs(x.v), Math.abs(beta), scale);
    const what = `sgemvBf16(N=${N}, K=${K}, alpha=${alpha}, beta=${beta})`;
    expectClose(yn.v, yr, 1e-5, 1e-6, what, scale);
    expect(guardsIntact(yn), `${what}: wrote outside y`).toBe(true);
  }

  it('sgemvBf16: random shapes (every K mod 16), alpha/beta, offset views', () => {
    for (let t = 0; t < 80; t++) gemvCase(int(1, 300), t < 40 ? int(1, 40) : int(1, 700));
    for (const N of [1, 2, 3, 4, 5, 7, 8, 9]) for (const K of [1, 8, 15, 16, 17, 32, 47]) gemvCase(N, K);
  });

  it('sgemvBf16: Infinity, NaN, -0 and subnormal weights propagate as in the reference', () => {
    for (let t = 0; t < 20; t++) gemvCase(int(1, 40), int(1, 100), true);
  });

  it('sgemvBf16: N·K above the threading threshold, 1/2/3 threads, decode-like shapes', () => {
    const shapes: [number, number][] = [[257, 4096], [1031, 1031], [4099, 300], [5, 300000]];
    withThreads([1, 2, 3], () => { for (const [N, K] of shapes) gemvCase(N, K); });
  });

  /** one random sgemmBf16 case compared element-wise, guards checked */
  function gemmCase(M: number, N: number, K: number): void {
    const alpha = pick([1, -0.75, 2.5]), beta = pick([0, 1, 0.5, -1.25]);
    const lda = K + pick([0, 0, 1, 3, 8]), ldw = K + pick([0, 0, 2, 5]), ldc = N + pick([0, 0, 1, 7]);
    const A = fview(randn(M * lda)), W = wview(randBf16(N * ldw));
    const C0 = randn(M * ldc);
    if (beta === 0) C0.fill(NaN); // must be ignored
    const Cn = fview(C0), Cr = C0.slice();
    nat.sgemmBf16(M, N, K, alpha, A.v, lda, W.v, ldw, beta, Cn.v, ldc);
    ref.sgemmBf16(M, N, K, alpha, A.v, lda, W.v, ldw, beta, Cr, ldc);
    const scale = beta === 0 ? new Float32Array(M * ldc) : abs(C0);
    ref.sgemmBf16(M, N, K, Math.abs(alpha), abs(A.v), lda, absBf16(W.v), ldw, Math.abs(beta),
      scale, ldc);
    const what = `sgemmBf16(M=${M}, N=${N}, K=${K}, alpha=${alpha}, lda=${lda}, ldw=${ldw}, ` +
      `beta=${beta}, ldc=${ldc})`;
    // padding columns [N, ldc) of C are not part of the output: reference leaves them as-is
    expectClose(Cn.v, Cr, 1e-5, 1e-6, what, scale);
    expect(guardsIntact(Cn), `${what}: wrote outside C`).toBe(true);
  }

  it('sgemmBf16: random shapes, M = 1 (the GEMV) and M > 1, strides, alpha/beta, offsets', () => {
    for (let t = 0; t < 80; t++) gemmCase(t % 4 === 0 ? 1 : int(1, 20), int(1, 60), int(1, 70));
    // the native small-M kernel (2 <= M <= 64: 4 x 3 tiles) and the panel path (M > 64)
    for (let t = 0; t < 30; t++) gemmCase(int(2, 64), int(1, 40), int(1, 90));
    for (const M of [2, 3, 4, 5, 7, 8, 31, 47, 48, 49, 50, 63, 64, 65, 66]) gemmCase(M, int(1, 50), int(1, 50));
  });

  it('sgemmBf16: the edges of AMX tiles (16 rows of W, 16 columns of A, 32-wide K chunks) and its blockings', () => {
    // amx: W rows in blocks of 32 (2 x 2 tiles) or 48 (M <= 16: 3 x 1), partial tiles copied zero-padded; A packed
    // in 16-column blocks, an odd last block 2 x 1. The tolerance (1e-5 of |A|·|W|) holds only because A is carried
    // in several bf16 parts (amx three, avx512 two): a plain bf16 cast of A would be off by up to 2^-9 of it
    for (const M of [4, 15, 16, 17, 31, 32, 33, 48]) {
      for (const N of [1, 15, 16, 17, 33, 47, 48, 49, 97]) gemmCase(M, N, pick([31, 32, 33, 64, 65]));
    }
    withThreads([1, 2, 3], () => { for (const [M, N, K] of [[20, 1000, 96], [7, 999, 130], [70, 301, 64]] as const) gemmCase(M, N, K); });
  });

  it('sgemmBf16: non-finite activations reach the output as in the reference', () => {
    const M = 6, N = 5, K = 40;
    const A = randn(M * K), W = randBf16(N * K);
    A[3] = Infinity; A[K + 7] = -Infinity; A[2 * K + 1] = NaN; // amx: carried in the hi part, lo = 0
    const Cn = new Float32Array(M * N), Cr = new Float32Array(M * N);
    nat.sgemmBf16(M, N, K, 1, A, K, W, K, 0, Cn, N);
    ref.sgemmBf16(M, N, K, 1, A, K, W, K, 0, Cr, N);
    for (let i = 0; i < M * N; i++) {
      if (!Number.isFinite(Cr[i])) expect(Cn[i], `C[${i}]`).toBe(Cr[i]);
      else expect(Math.abs(Cn[i] - Cr[i]), `C[${i}]`).toBeLessThanOrEqual(1e-5 * Math.abs(Cr[i]) + 1e-3);
    }
  });

  it('sgemmBf16: threaded small-M kernel; several panels, threaded panel conversion', () => {
    // native: M = 1 is the GEMV; 2 <= M <= 64 the small-M kernel under avx2; else panels of
    // 512 rows for K <= 2048, ~4 MiB of f32 for larger K (208 rows for K = 5000)
    const shapes: [number, number, number][] = [
      [3, 1100, 37], [2, 1030, 300], [5, 433, 5000], [1, 300, 4096], [17, 520, 1025],
      [49, 1100, 37], [56, 433, 5000], [48, 301, 1500], [64, 700, 129], [65, 300, 200],
    ];
    withThreads([1, 2], () => { for (const [M, N, K] of shapes) gemmCase(M, N, K); });
  });

  it('sgemvBf16 / sgemmBf16: degenerate dims, alpha = 0 never reads A, W, x', () => {
    const nanW = new Uint16Array(8).fill(0x7fc0), nanF = new Float32Array(8).fill(NaN);
    const y = new Float32Array([1, 2]);
    nat.sgemvBf16(2, 4, 0, nanW, nanF, 2, y);
    expect([...y]).toEqual([2, 4]);
    nat.sgemvBf16(2, 0, 1, new Uint16Array(0), new Float32Array(0), 0, y.fill(NaN));
    expect([...y]).toEqual([0, 0]);
    // N = 0: nothing written (a longer y keeps its values), no error
    const y0 = new Float32Array([7, 8]);
    expect(() => nat.sgemvBf16(0, 4, 1, nanW, nanF, 1, y0)).not.toThrow();
    expect([...y0]).toEqual([7, 8]);
    const C = new Float32Array([1, 2, 3, 4]); // [2,2]
    nat.sgemmBf16(2, 2, 4, 0, nanF, 4, nanW, 4, 0.5, C, 2);
    expect([...C]).toEqual([0.5, 1, 1.5, 2]);
    nat.sgemmBf16(2, 2, 0, 1, new Float32Array(0), 1, new Uint16Array(0), 1, 2, C, 2);
    expect([...C]).toEqual([1, 2, 3, 4]);
    nat.sgemmBf16(0, 2, 4, 1, new Float32Array(0), 4, nanW, 4, 0, new Float32Array(0), 2);
    nat.sgemmBf16(2, 0, 4, 1, nanF, 4, new Uint16Array(0), 4, 0, new Float32Array(0), 1);
  });
});
