/**
 * Reference GEMM / GEMV: the textbook triple loop, one float64 dot product per output element.
 * Slow (no blocking, strided reads) and obviously correct; native/gemm.cc must agree with it.
 */
import { dim, f32, lead, len, span } from './check.js';

/**
 * C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C[M,N]  (BLAS semantics).
 * A: [M,K] stride lda, or [K,M] when transA. B: [K,N] stride ldb, or [N,K] when transB.
 * beta = 0 overwrites C without reading it (NaN-safe); alpha = 0 or K = 0 skips A·B entirely
 * (A and B are not read), exactly as BLAS does.
 */
export function sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number,
                      alpha: number, A: Float32Array, lda: number, B: Float32Array, ldb: number,
                      beta: number, C: Float32Array, ldc: number): void {
  const k = 'sgemm';
  dim(k, 'M', M); dim(k, 'N', N); dim(k, 'K', K);
  f32(k, 'A', A); f32(k, 'B', B); f32(k, 'C', C);
  const aRows = transA ? K : M, aCols = transA ? M : K; // A stored [aRows, aCols]
  const bRows = transB ? N : K, bCols = transB ? K : N; // B stored [bRows, bCols]
  lead(k, 'lda', lda, aCols); lead(k, 'ldb', ldb, bCols); lead(k, 'ldc', ldc, N);
  const useAB = alpha !== 0 && K > 0 && M > 0 && N > 0;
  if (useAB) {
    len(k, 'A', A, span(aRows, aCols, lda));
    len(k, 'B', B, span(bRows, bCols, ldb));
  }
  len(k, 'C', C, span(M, N, ldc));
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0; // float64
      if (useAB) {
        for (let p = 0; p < K; p++) {
          const a = transA ? A[p * lda + i] : A[i * lda + p]; // op(A)[i, p]
          const b = transB ? B[j * ldb + p] : B[p * ldb + j]; // op(B)[p, j]
          acc += a * b;
        }
      }
      const old = beta === 0 ? 0 : beta * C[i * ldc + j];
      C[i * ldc + j] = (useAB ? alpha * acc : 0) + old;
    }
  }
}

/**
 * y[N] = alpha · W[N,K] · x[K] + beta · y[N]; W row-major and contiguous (row stride K).
 * beta = 0 overwrites y without reading it.
 */
export function sgemv(N: number, K: number, alpha: number, W: Float32Array, x: Float32Array,
                      beta: number, y: Float32Array): void {
  const k = 'sgemv';
  dim(k, 'N', N); dim(k, 'K', K);
  f32(k, 'W', W); f32(k, 'x', x); f32(k, 'y', y);
  const useWx = alpha !== 0 && K > 0;
  if (useWx) {
    len(k, 'W', W, N * K);
    len(k, 'x', x, K);
  }
  len(k, 'y', y, N);
  for (let n = 0; n < N; n++) {
    let acc = 0; // float64
    if (useWx) for (let p = 0; p < K; p++) acc += W[n * K + p] * x[p];
    const old = beta === 0 ? 0 : beta * y[n];
    y[n] = (useWx ? alpha * acc : 0) + old;
  }
}
