// Small-M f32 linear layer without BLAS: C[m, n] = alpha · dot(A[m, :K], W[n, :K]) + beta · C[m, n]
// for 2 <= M and M·K small enough that A stays in L1/L2 (kSmallMK). A decode step's expert GEMMs
// (a few rows each) and a small model's projections are this shape, where OpenBLAS's packing costs
// more than the products (≈ 12 GFLOP/s at 8×128×128 on one core). Same register tiling as
// sgemm_bf16's small-M kernel (bf16.cc): for each group of W rows, every block of up to 4 rows of A
// runs through an MB × NB tile of 8-lane accumulators. AVX2 + FMA only; sgemm (gemm.cc) falls back
// to OpenBLAS when this returns false. test/kernels.test.ts holds it to the reference.
#include <cstdint>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace moekit {

constexpr int64_t kSmallMaxM = 64;
constexpr int64_t kSmallMK = 8192;  // M·K floats of A (32 KiB)

#if defined(__x86_64__) || defined(__i386__)
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

template <int MB, int NB>
AVX2 static void tile(const float* w, int64_t ldw, int64_t K, const float* a, int64_t lda, float alpha,
                      float beta, float* c, int64_t ldc) {
  __m256 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NB];
    for (int j = 0; j < NB; j++) wv[j] = _mm256_loadu_ps(w + j * ldw + k);
    for (int i = 0; i < MB; i++) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + k);
      for (int j = 0; j < NB; j++) acc[i][j] = _mm256_fmadd_ps(wv[j], av, acc[i][j]);
    }
  }
  for (int i = 0; i < MB; i++) {
    for (int j = 0; j < NB; j++) {
      float s = hsum8(acc[i][j]);
      for (int64_t t = k; t < K; t++) s += w[j * ldw + t] * a[i * lda + t];
      float* out = c + i * ldc + j;
      *out = beta == 0.0f ? alpha * s : alpha * s + beta * *out;
    }
  }
}

template <int NB>
AVX2 static void tiles(const float* w, int64_t ldw, int64_t K, const float* A, int64_t lda, int64_t M,
                       float alpha, float beta, float* c, int64_t ldc) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile<4, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc);
  switch (M - m) {
    case 3: tile<3, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc); break;
    case 2: tile<2, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc); break;
    case 1: tile<1, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc); break;
    default: break;
  }
}

AVX2 static void small_nt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                          const float* W, int64_t ldw, float beta, float* C, int64_t ldc) {
  int64_t n = 0;
  for (; n + 3 <= N; n += 3) tiles<3>(W + n * ldw, ldw, K, A, lda, M, alpha, beta, C + n, ldc);
  if (N - n == 2) tiles<2>(W + n * ldw, ldw, K, A, lda, M, alpha, beta, C + n, ldc);
  if (N - n == 1) tiles<1>(W + n * ldw, ldw, K, A, lda, M, alpha, beta, C + n, ldc);
}

bool sgemm_nt_small(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* W, int64_t ldw, float beta, float* C, int64_t ldc) {
  if (M < 2 || M > kSmallMaxM || M * K > kSmallMK || &active_kernels() != &kAvx2Kernels) return false;
  small_nt(M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
  return true;
}
#else
bool sgemm_nt_small(int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                    float*, int64_t) {
  return false;
}
#endif

}  // namespace moekit
