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

// Scores of 8 keys at once: p[u] = scale · q · K[u] for u < 8 (Dk a multiple of 8), one accumulator
// per key (independent FMA chains), reduced together by a horizontal-add tree instead of 8 dot-product tails.
AVX2 void scores8_avx2(const float* q, const float* K, int64_t Dk, float scale, float* p) {
  __m256 a[8];
  for (int u = 0; u < 8; u++) a[u] = _mm256_setzero_ps();
  for (int64_t d = 0; d < Dk; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
    for (int u = 0; u < 8; u++) a[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(K + u * Dk + d), a[u]);
  }
  // hadd(x, y) = [x0+x1, x2+x3, y0+y1, y2+y3 | x4+x5, x6+x7, y4+y5, y6+y7]
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));  // keys 0-3: [lo half | hi half]
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));  // keys 4-7
  const __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
  _mm256_storeu_ps(p, _mm256_mul_ps(s, _mm256_set1_ps(scale)));
}

// oh[Dv] = Σ_j p[j] · V[j] (Dv a multiple of 8): 32 columns at a time held in registers over every key
AVX2 void weighted_sum_avx2(const float* p, const float* V, int64_t n, int64_t Dv, float* oh) {
  int64_t c = 0;
  for (; c + 32 <= Dv; c += 32) {
    __m256 o0 = _mm256_setzero_ps(), o1 = _mm256_setzero_ps(), o2 = _mm256_setzero_ps(), o3 = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; j++) {
      const __m256 w = _mm256_set1_ps(p[j]);
      const float* v = V + j * Dv + c;
      o0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), o0);
      o1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), o1);
      o2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 16), o2);
      o3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 24), o3);
    }
    _mm256_storeu_ps(oh + c, o0); _mm256_storeu_ps(oh + c + 8, o1);
    _mm256_storeu_ps(oh + c + 16, o2); _mm256_storeu_ps(oh + c + 24, o3);
  }
  for (; c < Dv; c += 8) {
    __m256 o = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; j++) o = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(V + j * Dv + c), o);
    _mm256_storeu_ps(oh + c, o);
  }
}
#endif

}  // namespace

void attn_decode(const float* q, const float* K, const float* V, float* out, int64_t nH, int64_t nKv,
                 int64_t cap, int64_t Dk, int64_t Dv, int64_t lo, int64_t S, float scale,
                 const float* sinks) {
  const int64_t group = nH / nKv, n = S - lo;
  thread_local std::vector<float> p;
  if (p.size() < static_cast<size_t>(n + 8)) p.resize(static_cast<size_t>(n + 8));
  const auto& kern = active_kernels();
  auto dot = dot_scalar;
  auto axpy = axpy_scalar;
  bool blocked = false;  // the 8-key score blocks and the register-held weighted sum (AVX2, Dk and Dv multiples of 8)
#if defined(__x86_64__) || defined(__i386__)
  if (&kern == &kAvx2Kernels) { dot = dot_avx2; axpy = axpy_avx2; blocked = Dk % 8 == 0 && Dv % 8 == 0; }
#endif
  for (int64_t h = 0; h < nH; h++) {
    const int64_t kvh = h / group;
    const float* qh = q + h * Dk;
    const float* Kh = K + (kvh * cap + lo) * Dk;
    const float* Vh = V + (kvh * cap + lo) * Dv;
    int64_t j = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (blocked) for (; j + 8 <= n; j += 8) scores8_avx2(qh, Kh + j * Dk, Dk, scale, p.data() + j);
#endif
    for (; j < n; j++) p[j] = scale * dot(qh, Kh + j * Dk, Dk);
    const int64_t cols = sinks ? n + 1 : n;
    if (sinks) p[n] = sinks[h];
    if (cols > 0) kern.softmax_row(p.data(), cols);
    float* oh = out + h * Dv;
#if defined(__x86_64__) || defined(__i386__)
    if (blocked) { weighted_sum_avx2(p.data(), Vh, n, Dv, oh); continue; }
#endif
    std::fill(oh, oh + Dv, 0.f);
    for (int64_t jj = 0; jj < n; jj++) axpy(p[jj], Vh + jj * Dv, oh, Dv);
  }
}

namespace {
struct BatchJob {
  const AttnSeq* seqs;
  int64_t B, nH, nKv, Dk, Dv;
  float scale;
  const float* sinks;
  int parts;
};
void batch_part(void* ctx, int part) {
  const BatchJob& j = *static_cast<const BatchJob*>(ctx);
  // contiguous ranges of sequences, one per part
  const int64_t b0 = j.B * part / j.parts, b1 = j.B * (part + 1) / j.parts;
  for (int64_t b = b0; b < b1; b++) {
    const AttnSeq& s = j.seqs[b];
    attn_decode(s.q, s.K, s.V, s.out, j.nH, j.nKv, s.cap, j.Dk, j.Dv, s.lo, s.S, j.scale, j.sinks);
  }
}
}  // namespace

void attn_decode_batch(const AttnSeq* seqs, int64_t B, int64_t nH, int64_t nKv, int64_t Dk, int64_t Dv,
                       float scale, const float* sinks) {
  // work: the keys × head dims the batch reads; below kBatchThreadMinWork one thread does it all
  constexpr int64_t kBatchThreadMinWork = int64_t(1) << 16;
  int64_t work = 0;
  for (int64_t b = 0; b < B; b++) work += (seqs[b].S - seqs[b].lo) * nH * (Dk + Dv);
  int parts = work <= kBatchThreadMinWork ? 1 : static_cast<int>(std::min<int64_t>(blas_get_threads(), B));
  BatchJob j{seqs, B, nH, nKv, Dk, Dv, scale, sinks, std::max(parts, 1)};
  parallel_run(j.parts, batch_part, &j);
}

}  // namespace moekit
