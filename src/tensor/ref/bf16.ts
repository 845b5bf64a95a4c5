/**
 * Reference kernels for weights kept as bfloat16: a Uint16Array of raw bf16 bit patterns (the
 * top half of an IEEE-754 float32, as stored in BF16 safetensors). Widening is exact: the f32
 * bits are `bits << 16`. Plain and obvious, float64 accumulation; native/bf16.cc must agree.
 */
import { dim, f32, lead, len, span, u16 } from './check.js';

/** f32 value of every bf16 bit pattern (256 KiB, built on first use; NaN payloads kept) */
let table: Float32Array | null = null;
function bf16Table(): Float32Array {
  if (!table) {
    const bits = new Uint32Array(65536);
    for (let b = 0; b < 65536; b++) bits[b] = b << 16;
    table = new Float32Array(bits.buffer);
  }
  return table;
}

/** dst[n] = f32(src[n]): bits << 16, exact, NaN payloads, -0 and subnormals kept bit for bit. */
export function bf16ToF32(dst: Float32Array, src: Uint16Array, n: number): void {
  const k = 'bf16ToF32';
  dim(k, 'n', n);
  f32(k, 'dst', dst); u16(k, 'src', src);
  len(k, 'src', src, n);
  len(k, 'dst', dst, n);
  // write bit patterns through an integer view: a float store could quiet a signalling NaN
  const out = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = src[i] << 16;
}

/**
 * y[N] = alpha · W[N,K] · x[K] + beta · y[N]; W row-major bf16 bits, contiguous (row stride K).
 * beta = 0 overwrites y without reading it; alpha = 0 or K = 0 never reads W or x (as sgemv).
 */
export function sgemvBf16(N: number, K: number, alpha: number, W: Uint16Array, x: Float32Array,
                          beta: number, y: Float32Array): void {
  const k = 'sgemvBf16';
  dim(k, 'N', N); dim(k, 'K', K);
  u16(k, 'W', W); f32(k, 'x', x); f32(k, 'y', y);
  const useWx = alpha !== 0 && K > 0;
  if (useWx) {
    len(k, 'W', W, N * K);
    len(k, 'x', x, K);
  }
  len(k, 'y', y, N);
  const t = bf16Table();
  for (let n = 0; n < N; n++) {
    let acc = 0; // float64
    if (useWx) for (let p = 0; p < K; p++) acc += t[W[n * K + p]] * x[p];
    const old = beta === 0 ? 0 : beta * y[n];
    y[n] = (useWx ? alpha * acc : 0) + old;
  }
}

/**
 * C[M,N] = alpha · A[M,K] · W[N,K]ᵀ + beta · C[M,N]: a linear layer with bf16 weights.
 * A row stride lda, W (bf16 bits) row stride ldw, C row stride ldc. beta = 0 overwrites C
 * without reading it; alpha = 0 or K = 0 never reads A or W (as sgemm).
 */
export function sgemmBf16(M: number, N: number, K: number, alpha: number, A: Float32Array,
                          lda: number, W: Uint16Array, ldw: number, beta: number,
                          C: Float32Array, ldc: number): void {
  const k = 'sgemmBf16';
  dim(k, 'M', M); dim(k, 'N', N); dim(k, 'K', K);
  f32(k, 'A', A); u16(k, 'W', W); f32(k, 'C', C);
  lead(k, 'lda', lda, K); lead(k, 'ldw', ldw, K); lead(k, 'ldc', ldc, N);
  const useAW = alpha !== 0 && K > 0 && M > 0 && N > 0;
  if (useAW) {
    len(k, 'A', A, span(M, K, lda));
    len(k, 'W', W, span(N, K, ldw));
  }
  len(k, 'C', C, span(M, N, ldc));
  const t = bf16Table();
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0; // float64
      if (useAW) for (let p = 0; p < K; p++) acc += A[i * lda + p] * t[W[j * ldw + p]];
      const old = beta === 0 ? 0 : beta * C[i * ldc + j];
      C[i * ldc + j] = (useAW ? alpha * acc : 0) + old;
    }
  }
}
