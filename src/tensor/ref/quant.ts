/**
 * Reference kernels for block-quantised weights (src/tensor/quant.ts has the formats): plain and
 * obvious, float64 accumulation; native/quant.cc must agree.
 *  - dequantize: blocks → f32, exact (d · q, both small enough for an exact f32 product).
 *  - quantizeActs: the 8-bit activations the dot products use, per 32-value block of each row:
 *    d = max|x| / 127, q = round(x · (127 / max|x|)) half to even, in [−127, 127] (all in f32).
 *  - qgemm: C[M, N] = A[M, K] · W[N, K]ᵀ with W blocks and A quantised as above:
 *    C[i, j] = Σ_b dW[j, b] · dA[i, b] · Σ_t qW[j, b, t] · qA[i, b, t]  (integer inner sums).
 */
import { QK, QUANT_BLOCK_BYTES, halfToF32Table, isQuantType, quantize as quantizeBlocks, type QuantType } from '../quant.js';
import { dim, f32, lead, len, span } from './check.js';

function qtype(kernel: string, type: unknown): asserts type is QuantType {
  if (!isQuantType(type)) throw new RangeError(`${kernel}: type must be 'q8_0' or 'q4_0', got ${String(type)}`);
}
function u8(kernel: string, name: string, buf: unknown): asserts buf is Uint8Array {
  if (!(buf instanceof Uint8Array)) throw new TypeError(`${kernel}: ${name} must be a Uint8Array`);
}
function blocksOf(kernel: string, name: string, K: number): void {
  if (K % QK !== 0) throw new RangeError(`${kernel}: ${name}=${K} must be a multiple of ${QK}`);
}

/** the 32 integer weights of block b of `W` (q8_0: q; q4_0: q − 8) into q[32] */
export function blockInts(type: QuantType, W: Uint8Array, b: number, q: Int32Array): void {
  const o = b * QUANT_BLOCK_BYTES[type] + 2;
  if (type === 'q8_0') {
    for (let t = 0; t < QK; t++) q[t] = (W[o + t] << 24) >> 24;
  } else {
    for (let t = 0; t < QK / 2; t++) {
      q[t] = (W[o + t] & 0x0f) - 8;
      q[t + 16] = (W[o + t] >> 4) - 8;
    }
  }
}

/** the scale d of block b */
export function blockScale(type: QuantType, W: Uint8Array, b: number): number {
  const o = b * QUANT_BLOCK_BYTES[type];
  return halfToF32Table()[W[o] | (W[o + 1] << 8)];
}

/** dst = the n / 32 blocks of src[n] (src/tensor/quant.ts quantize: llama.cpp's reference rounding) */
export function quantize(type: QuantType, dst: Uint8Array, src: Float32Array, n: number): void {
  const k = 'quantize';
  qtype(k, type); dim(k, 'n', n); blocksOf(k, 'n', n);
  u8(k, 'dst', dst); f32(k, 'src', src);
  len(k, 'src', src, n);
  len(k, 'dst', dst, (n / QK) * QUANT_BLOCK_BYTES[type]);
  quantizeBlocks(type, src, n, dst.subarray(0, (n / QK) * QUANT_BLOCK_BYTES[type]));
}

/** dst[n] = the values of the first n / 32 blocks of src */
export function dequantize(type: QuantType, dst: Float32Array, src: Uint8Array, n: number): void {
  const k = 'dequantize';
  qtype(k, type); dim(k, 'n', n); blocksOf(k, 'n', n);
  f32(k, 'dst', dst); u8(k, 'src', src);
  len(k, 'src', src, (n / QK) * QUANT_BLOCK_BYTES[type]);
  len(k, 'dst', dst, n);
  const q = new Int32Array(QK);
  for (let b = 0; b < n / QK; b++) {
    const d = blockScale(type, src, b);
    blockInts(type, src, b, q);
    for (let t = 0; t < QK; t++) dst[b * QK + t] = d * q[t];
  }
}

/** round half to even (nearbyint in the default rounding mode) */
function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** x [K] (K a multiple of 32) → per block its scale d[K/32] and q[K] (see the header) */
export function quantizeActs(x: Float32Array, K: number, d: Float32Array, q: Int8Array): void {
  const f = Math.fround;
  for (let b = 0; b < K / QK; b++) {
    let amax = 0;
    for (let t = 0; t < QK; t++) amax = Math.max(amax, Math.abs(x[b * QK + t]));
    d[b] = f(amax / 127);
    const id = amax ? f(127 / amax) : 0;
    for (let t = 0; t < QK; t++) q[b * QK + t] = Math.max(-127, Math.min(127, roundEven(f(x[b * QK + t] * id))));
  }
}

/** C[M, N] = A[M, K] · W[N, K]ᵀ, W rows of K/32 blocks, A quantised to 8 bits per block (see the header) */
export function qgemm(type: QuantType, M: number, N: number, K: number, A: Float32Array, lda: number,
                      W: Uint8Array, C: Float32Array, ldc: number): void {
  const k = 'qgemm';
  qtype(k, type);
  dim(k, 'M', M); dim(k, 'N', N); dim(k, 'K', K); blocksOf(k, 'K', K);
  f32(k, 'A', A); u8(k, 'W', W); f32(k, 'C', C);
  lead(k, 'lda', lda, K); lead(k, 'ldc', ldc, N);
  const nb = K / QK;
  if (M > 0 && K > 0) len(k, 'A', A, span(M, K, lda));
  if (N > 0 && K > 0) len(k, 'W', W, N * nb * QUANT_BLOCK_BYTES[type]);
  len(k, 'C', C, span(M, N, ldc));
  const dA = new Float32Array(nb), qA = new Int8Array(K), qW = new Int32Array(QK);
  for (let i = 0; i < M; i++) {
    quantizeActs(A.subarray(i * lda, i * lda + K), K, dA, qA);
    for (let j = 0; j < N; j++) {
      let acc = 0; // float64
      for (let b = 0; b < nb; b++) {
        const blk = j * nb + b;
        blockInts(type, W, blk, qW);
        let s = 0; // exact integer sum
        for (let t = 0; t < QK; t++) s += qW[t] * qA[b * QK + t];
        acc += blockScale(type, W, blk) * dA[b] * s;
      }
      C[i * ldc + j] = acc;
    }
  }
}
