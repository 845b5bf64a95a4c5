// Decode attention, one query position per head over a sequence's cache (the T = 1 case of
// attentionForward, fused): scores = scale · q_h · K[kvh, lo:S]ᵀ, softmax (with an optional sink
// logit that carries no value), out_h = P · V[kvh, lo:S]. One call covers every head of one
// sequence and layer, so a batched decode step makes one call per (sequence, layer) instead of
// three BLAS/softmax calls per head. Float accumulation; the row kernels' softmax. The dot products
// and the weighted sum of values use AVX2 + FMA when the AVX2 row kernels are in use (setSimd),
// eight partial sums otherwise; src/tensor/ref/attn.ts is the reference test/kernels.test.ts holds both to.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace moekit {

namespace {

float dot_scalar(const float* a, const float* b, int64_t n) {
  // eight independent partial sums (the compiler vectorises them; one running sum it may not reorder)
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t d = 0;
  for (; d + 8 <= n; d += 8)
    for (int u = 0; u < 8; u++) acc[u] += a[d + u] * b[d + u];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; d < n; d++) s += a[d] * b[d];
  return s;
}

void axpy_scalar(float w, const float* x, float* y, int64_t n) {
  for (int64_t d = 0; d < n; d++) y[d] += w * x[d];
}

#if defined(__x86_64__) || defined(__i386__)
#define AVX2 __attribute__((target("avx2,fma")))
AVX2 float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= n; d += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8), _mm256_loadu_ps(b + d + 8), s1);
  }
  if (d + 8 <= n) { s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), s0); d += 8; }
  const __m256 v = _mm256_add_ps(s0, s1);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  float s = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  for (; d < n; d++) s += a[d] * b[d];
  return s;
}
AVX2 void axpy_avx2(float w, const float* x, float* y, int64_t n) {
  const __m256 wv = _mm256_set1_ps(w);
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) _mm256_storeu_ps(y + d, _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + d), _mm256_loadu_ps(y + d)));
  for (; d < n; d++) y[d] += w * x[d];
}
#endif

}  // namespace

void attn_decode(const float* q, const float* K, const float* V, float* out, int64_t nH, int64_t nKv,
                 int64_t cap, int64_t Dk, int64_t Dv, int64_t lo, int64_t S, float scale,
                 const float* sinks) {
  const int64_t group = nH / nKv, n = S - lo;
  thread_local std::vector<float> p;
  if (p.size() < static_cast<size_t>(n + 1)) p.resize(static_cast<size_t>(n + 1));
  const auto& kern = active_kernels();
  auto dot = dot_scalar;
  auto axpy = axpy_scalar;
#if defined(__x86_64__) || defined(__i386__)
  if (&kern == &kAvx2Kernels) { dot = dot_avx2; axpy = axpy_avx2; }
#endif
  for (int64_t h = 0; h < nH; h++) {
    const int64_t kvh = h / group;
    const float* qh = q + h * Dk;
    const float* Kh = K + (kvh * cap + lo) * Dk;
    const float* Vh = V + (kvh * cap + lo) * Dv;
    for (int64_t j = 0; j < n; j++) p[j] = scale * dot(qh, Kh + j * Dk, Dk);
    const int64_t cols = sinks ? n + 1 : n;
    if (sinks) p[n] = sinks[h];
    if (cols > 0) kern.softmax_row(p.data(), cols);
    float* oh = out + h * Dv;
    std::fill(oh, oh + Dv, 0.f);
    for (int64_t j = 0; j < n; j++) axpy(p[j], Vh + j * Dv, oh, Dv);
  }
}

}  // namespace moekit
