// sgemm / sgemv over OpenBLAS (cblas, row-major). The slow obvious peer is
// src/tensor/ref/gemm.ts; test/kernels.test.ts holds these to it.
#include <cblas.h>

#include <cstring>

#include "kernels.h"

namespace moekit {

// C[M,N] (row stride ldc) = beta * C, with beta = 0 writing zeros without reading C (NaN-safe).
static void scale_rows(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * ldc;  // row i: [N]
    if (beta == 0.0f) {
      std::memset(c, 0, sizeof(float) * static_cast<size_t>(N));
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
  }
}

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {  // BLAS: A and B are not referenced
    scale_rows(M, N, beta, C, ldc);
    return;
  }
  // a linear layer of a few rows: the direct kernel (gemm_small.cc), when it applies
  if (!transA && transB && sgemm_nt_small(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  // OpenBLAS's beta = 0 path already overwrites C, but zeroing first keeps the NaN-safety
  // independent of the library version (costs M*N stores against M*N*K FMAs).
  if (beta == 0.0f) scale_rows(M, N, 0.0f, C, ldc);
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
              transB ? CblasTrans : CblasNoTrans, static_cast<blasint>(M),
              static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C,
              static_cast<blasint>(ldc));
}

void sgemv(int64_t N, int64_t K, float alpha, const float* W, const float* x, float beta,
           float* y) {
  if (N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    scale_rows(1, N, beta, y, N);
    return;
  }
  if (beta == 0.0f) scale_rows(1, N, 0.0f, y, N);  // older OpenBLAS scal(0) kept NaN
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(N), static_cast<blasint>(K),
              alpha, W, static_cast<blasint>(K), x, 1, beta, y, 1);
}

void blas_set_threads(int n) { openblas_set_num_threads(n); }
int blas_get_threads() { return openblas_get_num_threads(); }
const char* blas_config() { return openblas_get_config(); }
const char* blas_core() { return openblas_get_corename(); }

}  // namespace moekit
