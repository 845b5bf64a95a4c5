/**
 * Block-quantised weights (q8_0, q4_0): llama.cpp's byte layouts built by hand, the quantisers' rounding,
 * the reference qgemm held to "dequantise, then f32" within the activations' 8-bit rounding, the native
 * qgemm / dequantize held to the reference on random shapes (M = 1 the GEMV, small and large M, offsets,
 * 1–3 threads) under both SIMD sets, and argument errors in both implementations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../src/tensor/kernels.js';
import { QUANT_BLOCK_BYTES, quantize, type QuantType } from '../src/tensor/quant.js';
import { referenceKernels as ref } from '../src/tensor/ref/index.js';
import { quantizeActs } from '../src/tensor/ref/quant.js';
import { nativeAddon, nativeKernels, nativeLoadError } from '../src/tensor/native.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/util/half.js';
import { randomTools } from './helpers.js';

const { int, pick, randn } = randomTools(20261202);
const TYPES: QuantType[] = ['q8_0', 'q4_0'];

/** one block from a scale and 32 integers, laid out as llama.cpp's block_q8_0 / block_q4_0 */
function block(type: QuantType, d: number, q: number[]): Uint8Array {
  const b = new Uint8Array(QUANT_BLOCK_BYTES[type]);
  const h = f32ToF16Bits(d);
  b[0] = h & 0xff; b[1] = h >> 8;
  if (type === 'q8_0') for (let t = 0; t < 32; t++) b[2 + t] = q[t] & 0xff;
  else for (let t = 0; t < 16; t++) b[2 + t] = ((q[t] + 8) & 0x0f) | (((q[t + 16] + 8) & 0x0f) << 4);
  return b;
}
/** the values a block holds, read independently of the kernels */
function blockValues(type: QuantType, b: Uint8Array): number[] {
  const d = f16BitsToF32(b[0] | (b[1] << 8));
  const out: number[] = [];
  for (let t = 0; t < 32; t++) {
    const q = type === 'q8_0' ? (b[2 + t] > 127 ? b[2 + t] - 256 : b[2 + t]) : (t < 16 ? b[2 + t] & 15 : b[2 + t - 16] >> 4) - 8;
    out.push(q * d);
  }
  return out;
}

describe('block formats and quantisers (reference)', () => {
  it('q4_0 keeps element j in the low nibble of byte j and j + 16 in its high nibble; dequantize reads both', () => {
    const q = Array.from({ length: 32 }, (_, t) => (t % 16) - 8); // -8 … 7, twice
    q[3] = 7; q[19] = -8;
    const b = block('q4_0', 0.5, q);
    expect(b[2 + 3]).toBe(0x0f); // low nibble: element 3 = 7 + 8; high nibble: element 19 = -8 + 8
    const out = new Float32Array(32);
    ref.dequantize('q4_0', out, b, 32);
    expect([...out]).toEqual(q.map((v) => v * 0.5));
  });

  it('q8_0: d = max|x| / 127 as binary16, q = round(x / d) half away from zero', () => {
    const x = new Float32Array(32);
    for (let t = 0; t < 32; t++) x[t] = (t - 15) * 0.25;
    x[7] = -12.7; // max |x|: d = 0.1
    const b = quantize('q8_0', x);
    expect(b.length).toBe(34);
    expect(b[0] | (b[1] << 8)).toBe(f32ToF16Bits(Math.fround(12.7 / 127)));
    const id = Math.fround(1 / Math.fround(12.7 / 127));
    for (let t = 0; t < 32; t++) {
      const v = Math.fround(x[t] * id);
      expect((b[2 + t] << 24) >> 24).toBe(Math.sign(v) * Math.round(Math.abs(v)));
    }
    expect((b[2 + 7] << 24) >> 24).toBe(-127);
  });

  it('q4_0: d = m / −8 for the value m of largest magnitude, q = min(15, trunc(x / d + 8.5))', () => {
    const x = new Float32Array(32).map((_, t) => Math.sin(t) * 3);
    x[20] = 4; // the largest magnitude, positive: d = −0.5, so 4 → q = 0 and −4 → 16 clamps to 15
    x[21] = -4;
    const b = quantize('q4_0', x);
    expect(f16BitsToF32(b[0] | (b[1] << 8))).toBe(-0.5);
    const v = blockValues('q4_0', b);
    expect(v[20]).toBe(4);
    expect(v[21]).toBe(-3.5);
  });

  it('dequantize(quantize(x)) is within half a step of x (plus the binary16 rounding of d)', () => {
    for (const type of TYPES) {
      const n = 32 * 50;
      const x = randn(n, 3);
      const b = quantize(type, x);
      const y = new Float32Array(n);
      ref.dequantize(type, y, b, n);
      for (let blk = 0; blk < n / 32; blk++) {
        const d = Math.abs(f16BitsToF32(b[blk * QUANT_BLOCK_BYTES[type]] | (b[blk * QUANT_BLOCK_BYTES[type] + 1] << 8)));
        for (let t = 0; t < 32; t++) {
          const i = blk * 32 + t;
          expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(d * 0.5 + Math.abs(x[i]) * 2e-3 + (type === 'q4_0' ? d * 0.5 : 0));
        }
      }
    }
  });

  it('quantizeActs rounds half to even and an all-zero block to zeros', () => {
    const x = new Float32Array(64);
    x[0] = 127; x[1] = 2.5; x[2] = 3.5; x[3] = -2.5; x[4] = -3.5; x[5] = 0.5; x[6] = 1.5; // amax 127: id = 1
    const d = new Float32Array(2), q = new Int8Array(64);
    quantizeActs(x, 64, d, q);
    expect(d[0]).toBe(1);
    expect([...q.subarray(0, 7)]).toEqual([127, 2, 4, -2, -4, 0, 2]);
    expect(d[1]).toBe(0);
    expect([...q.subarray(32)].every((v) => v === 0)).toBe(true);
  });

  it('qgemm equals dequantise-then-f32 within the 8-bit rounding of the activations', () => {
    for (const type of TYPES) {
      const M = 3, N = 5, K = 96;
      const W = quantize(type, randn(N * K, 0.5));
      const A = randn(M * K, 2);
      const C = new Float32Array(M * N);
      ref.qgemm(type, M, N, K, A, K, W, C, N);
      const Wf = new Float32Array(N * K);
      ref.dequantize(type, Wf, W, N * K);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let exact = 0, bound = 0;
          for (let b = 0; b < K / 32; b++) {
            let amax = 0;
            for (let t = 0; t < 32; t++) amax = Math.max(amax, Math.abs(A[i * K + b * 32 + t]));
            for (let t = 0; t < 32; t++) {
              const p = b * 32 + t;
              exact += Wf[j * K + p] * A[i * K + p];
              bound += Math.abs(Wf[j * K + p]) * (amax / 127) * 0.5001;
            }
          }
          expect(Math.abs(C[i * N + j] - exact)).toBeLessThanOrEqual(bound);
          expect(Math.abs(C[i * N + j] - exact)).toBeGreaterThan(0); // the activations really are rounded
        }
      }
    }
  });
});

describe.each(['reference', 'native'] as const)('%s quantised kernels: bad arguments', (which) => {
  const k = (): Kernels => (which === 'reference' ? ref : nativeKernels!);
  it('name the bad type, the K that is not whole blocks and the short buffers', () => {
    const f = (n: number) => new Float32Array(n), u = (n: number) => new Uint8Array(n);
    expect(() => k().qgemm('q5_1' as QuantType, 1, 1, 32, f(32), 32, u(34), f(1), 1)).toThrow(/qgemm: type must be 'q8_0' or 'q4_0', got q5_1/);
    expect(() => k().qgemm('q8_0', 1, 1, 40, f(40), 40, u(34), f(1), 1)).toThrow(/qgemm: K=40 must be a multiple of 32/);
    expect(() => k().qgemm('q8_0', 2, 3, 64, f(128), 64, u(203), f(6), 3)).toThrow(/qgemm: W has 203 elements, needs 204/);
    expect(() => k().qgemm('q4_0', 2, 3, 64, f(127), 64, u(108), f(6), 3)).toThrow(/qgemm: A has 127 elements, needs 128/);
    expect(() => k().qgemm('q4_0', 2, 3, 64, f(128), 64, u(108), f(5), 3)).toThrow(/qgemm: C has 5 elements, needs 6/);
    expect(() => k().qgemm('q4_0', 2, 3, 64, f(128), 32, u(108), f(6), 3)).toThrow(/qgemm: lda=32 must be >= max\(1, 64\)/);
    expect(() => k().qgemm('q4_0', 1, 1, 32, f(32), 32, new Uint16Array(9) as unknown as Uint8Array, f(1), 1)).toThrow(/qgemm: W must be a Uint8Array/);
    expect(() => k().quantize('q8_0', u(67), f(64), 64)).toThrow(/quantize: dst has 67 elements, needs 68/);
    expect(() => k().quantize('q4_0', u(36), f(63), 64)).toThrow(/quantize: src has 63 elements, needs 64/);
    expect(() => k().quantize('q4_0', u(36), f(64), 40)).toThrow(/quantize: n=40 must be a multiple of 32/);
    expect(() => k().dequantize('q8_0', f(64), u(67), 64)).toThrow(/dequantize: src has 67 elements, needs 68/);
    expect(() => k().dequantize('q4_0', f(63), u(36), 64)).toThrow(/dequantize: dst has 63 elements, needs 64/);
    expect(() => k().dequantize('q4_0', f(64), u(36), 48)).toThrow(/dequantize: n=48 must be a multiple of 32/);
  });
});

describe('native addon: quantised kernels', () => {
  it('come from the addon itself, not the reference fallback for an old build', () => {
    expect(nativeLoadError, 'native addon load error').toBeNull();
    for (const name of ['quantize', 'dequantize', 'qgemm'] as const) {
      expect(typeof nativeAddon![name], `addon exports ${name} (rebuild it)`).toBe('function');
      expect(nativeKernels![name]).toBe(nativeAddon![name]);
    }
  });
});

// 'avx512': qgemm's rows on AVX512-VNNI (native/quant_vnni.cc) where the CPU has it; 'avx2' runs with it off
const info = nativeAddon?.info();
const modes = info?.avx2
  ? ([...(info.avx512vnni ? ['avx512'] as const : []), 'avx2', 'scalar'] as const)
  : (['scalar'] as const);

describe.each(modes)('native quantised kernels vs reference (%s)', (mode) => {
  const simd = mode === 'scalar' ? 'scalar' : 'avx2';
  let nat: Kernels;
  let threads0 = 1;
  beforeAll(() => {
    if (!nativeAddon || !nativeKernels) throw new Error(`native addon missing: ${nativeLoadError}`);
    expect(nativeAddon.setSimd(simd)).toBe(simd);
    if (nativeAddon.setAvx512) expect(nativeAddon.setAvx512(mode === 'avx512')).toBe(mode === 'avx512');
    threads0 = nativeAddon.info().threads;
    nat = nativeKernels;
  });
  afterAll(() => {
    nativeAddon?.setSimd('auto');
    nativeAddon?.setAvx512?.(true);
    nativeAddon?.setThreads(threads0);
  });

  /** |native − reference| ≤ 2⁻¹⁸ · Σ |terms| (the sums' order differs; the integer dots are exact in both) */
  function check(type: QuantType, M: number, N: number, K: number, lda: number, ldc: number, W: Uint8Array): void {
    const off = int(0, 5);
    const Abuf = randn(off + (M - 1) * lda + K, 4);
    const A = Abuf.subarray(off);
    const Cn = new Float32Array((M - 1) * ldc + N).fill(777), Cr = Cn.slice();
    nat.qgemm(type, M, N, K, A, lda, W, Cn, ldc);
    ref.qgemm(type, M, N, K, A, lda, W, Cr, ldc);
    const Wf = new Float32Array(N * K);
    ref.dequantize(type, Wf, W, N * K);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let mag = 0;
        for (let p = 0; p < K; p++) mag += Math.abs(Wf[j * K + p] * A[i * lda + p]);
        const c = i * ldc + j;
        expect(Math.abs(Cn[c] - Cr[c]), `${type} M=${M} N=${N} K=${K} [${i}, ${j}]`).toBeLessThanOrEqual(mag * 2 ** -18 + 1e-30);
      }
      for (let j = N; j < ldc && i < M - 1; j++) expect(Cn[i * ldc + j]).toBe(777); // between rows: untouched
    }
  }

  it('qgemm: random shapes, M = 1 (the GEMV) to 9, odd N, strides, offsets', () => {
    for (let rep = 0; rep < 40; rep++) {
      const type = pick(TYPES);
      const M = pick([1, 1, 2, 3, 4, 5, 8, 9]), N = int(1, 13), K = 32 * int(1, 6);
      const lda = K + pick([0, 0, 3]), ldc = N + pick([0, 0, 2]);
      check(type, M, N, K, lda, ldc, quantize(type, randn(N * K, 0.3)));
    }
  });

  it('qgemm: every byte value in q8_0 weights (−128 included, which llama.cpp files may hold) and q4_0 nibbles', () => {
    for (const type of TYPES) {
      const N = 8, K = 256;
      const W = new Uint8Array(N * (K / 32) * QUANT_BLOCK_BYTES[type]).map(() => int(0, 255));
      for (let b = 0; b < N * K / 32; b++) { // finite scales in [2⁻⁸, 2)
        const h = f32ToF16Bits((int(1, 512) / 256) * (int(0, 1) ? -1 : 1));
        W[b * QUANT_BLOCK_BYTES[type]] = h & 0xff; W[b * QUANT_BLOCK_BYTES[type] + 1] = h >> 8;
      }
      check(type, 1, N, K, K, N, W);
      check(type, 5, N, K, K, N, W);
    }
  });

  it('qgemm: activation rounding ties to even and zero blocks, exactly as the reference', () => {
    // W = one block per row with a single 1 at position r (d = 1): C[0, r] reads the activation's q back
    const W = new Uint8Array(32 * 34);
    for (let r = 0; r < 32; r++) W.set(block('q8_0', 1, Array.from({ length: 32 }, (_, t) => (t === r ? 1 : 0))), r * 34);
    const x = new Float32Array(32);
    x.set([127, 2.5, 3.5, -2.5, -3.5, 0.5, 1.5, -0.5, 126.5]);
    const Cn = new Float32Array(32), Cr = new Float32Array(32);
    nat.qgemm('q8_0', 1, 32, 32, x, 32, W, Cn, 32);
    ref.qgemm('q8_0', 1, 32, 32, x, 32, W, Cr, 32);
    expect([...Cn.subarray(0, 9)]).toEqual([127, 2, 4, -2, -4, 0, 2, 0, 126]);
    expect([...Cn]).toEqual([...Cr]);
    nat.qgemm('q8_0', 1, 32, 32, new Float32Array(32), 32, W, Cn, 32);
    expect([...Cn].every((v) => v === 0)).toBe(true);
  });

  it('qgemm: above the threading threshold with 1, 2 and 3 threads, decode and prefill shapes', () => {
    for (const threads of [1, 2, 3]) {
      nativeAddon!.setThreads(threads);
      for (const type of TYPES) {
        const N = 515, K = 512;
        const W = quantize(type, randn(N * K, 0.2));
        check(type, 1, N, K, K, N, W);
        check(type, 7, N, K, K, N, W);
      }
    }
    nativeAddon!.setThreads(threads0);
  });

  it('quantize: the reference\'s blocks bit for bit (random, rounding ties, zero and constant blocks, large, threaded)', () => {
    for (const threads of [1, 2, 3]) {
      nativeAddon!.setThreads(threads);
      for (const type of TYPES) {
        for (const n of [32, 96, 32 * 1000, 32 * 40000]) {
          const x = randn(n, 3);
          for (let i = 0; i < Math.min(n, 64); i++) x[i] = (i % 5) - 2; // amax 2: x·(127/2) = ±63.5 ties
          if (n >= 96) { x.fill(0, 32, 64); x.fill(-1.25, 64, 96); }
          const a = new Uint8Array((n / 32) * QUANT_BLOCK_BYTES[type]).fill(7), b = a.slice();
          nat.quantize(type, a, x, n);
          ref.quantize(type, b, x, n);
          expect(Buffer.from(a).equals(Buffer.from(b)), `${type} n=${n} threads=${threads}`).toBe(true);
          expect(Buffer.from(b).equals(Buffer.from(quantize(type, x)))).toBe(true);
        }
      }
    }
    nativeAddon!.setThreads(threads0);
  });

  it('dequantize: exact, every byte pattern', () => {
    for (const type of TYPES) {
      const n = 32 * 300;
      const src = new Uint8Array((n / 32) * QUANT_BLOCK_BYTES[type]).map(() => int(0, 255));
      const a = new Float32Array(n), b = new Float32Array(n);
      nat.dequantize(type, a, src, n);
      ref.dequantize(type, b, src, n);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
  });
});
