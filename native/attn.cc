// Decode attention, one query position per head over a sequence's cache (the T = 1 case of
// attentionForward, fused): scores = scale · q_h · K[kvh, lo:S]ᵀ, softmax (with an optional sink
// logit that carries no value), out_h = P · V[kvh, lo:S]. One call covers every head of one
// sequence and layer, so a batched decode step makes one call per (sequence, layer) instead of
// three BLAS/softmax calls per head. Float accumulation. The dot products, the weighted sum of values
// and the softmax's exponentials (exp_avx2, about 2 ulp) use AVX2 + FMA when the AVX2 row kernels are in
// use (setSimd); eight partial sums and the row kernels' softmax (libm's expf) otherwise. A batched call
// can also write each sequence's new key and value into its cache first (the decode step's cache write); src/tensor/ref/attn.ts is the reference test/kernels.test.ts holds both to.
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

AVX2 float hsum_avx2(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// e^x for 8 lanes (x <= 0 here: scores minus their max), to about 2 ulp: x = n·ln2 + r with |r| <= ln2/2
// (ln2 split in two for an exact reduction), e^r by its degree-6 Taylor polynomial in Horner form, 2^n through
// the exponent bits; below −87.3 (where e^x leaves the normal floats) the lane is 0, as softmax's weights then are
// to within 1e-38. The decode softmax calls libm's expf once per key otherwise: over a third of the kernel's time.
AVX2 __m256 exp_avx2(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lo);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // x − n·ln2_hi (ln2_hi: 9 bits, exact product)
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);     // − n·ln2_lo
  __m256 p = _mm256_set1_ps(1.f / 720.f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// softmax of one decode score row p[0, cols) in place with exp_avx2 (the row kernels' softmax, libm's expf, for a row
// with a NaN or no finite score, whose handling it owns)
AVX2 void softmax_decode_avx2(float* p, int64_t cols, void (*exact)(float*, int64_t)) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= cols; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(p + i));
  float m[8];
  _mm256_storeu_ps(m, vmax);
  float max = m[0];
  for (int u = 1; u < 8; u++) max = m[u] > max ? m[u] : max;
  bool finite = true;
  for (; i < cols; i++) max = p[i] > max ? p[i] : max;
  for (int64_t c = 0; c < cols && finite; c++) finite = std::isfinite(p[c]);
  if (!finite) { exact(p, cols); return; }
  const __m256 vm = _mm256_set1_ps(max);
  __m256 vs = _mm256_setzero_ps();
  i = 0;
  for (; i + 8 <= cols; i += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(p + i), vm));
    _mm256_storeu_ps(p + i, e);
    vs = _mm256_add_ps(vs, e);
  }
  float tail[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  const int64_t rest = cols - i;
  for (int64_t u = 0; u < rest; u++) tail[u] = p[i + u] - max;
  __m256 et = exp_avx2(_mm256_loadu_ps(tail));
  et = _mm256_and_ps(et, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rest)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
  _mm256_storeu_ps(tail, et);
  for (int64_t u = 0; u < rest; u++) p[i + u] = tail[u];
  vs = _mm256_add_ps(vs, et);
  const float inv = 1.f / hsum_avx2(vs);
  const __m256 vinv = _mm256_set1_ps(inv);
  i = 0;
  for (; i + 8 <= cols; i += 8) _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), vinv));
  for (; i < cols; i++) p[i] *= inv;
}
#endif

}  // namespace

namespace {
// heads [h0, h1) of attn_decode
void decode_heads(const float* q, const float* K, const float* V, float* out, int64_t nH, int64_t nKv,
                  int64_t cap, int64_t Dk, int64_t Dv, int64_t lo, int64_t S, float scale,
                  const float* sinks, int64_t h0, int64_t h1) {
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
  for (int64_t h = h0; h < h1; h++) {
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
#if defined(__x86_64__) || defined(__i386__)
    if (blocked && cols > 0) softmax_decode_avx2(p.data(), cols, kern.softmax_row);
    else
#endif
    if (cols > 0) kern.softmax_row(p.data(), cols);
    float* oh = out + h * Dv;
#if defined(__x86_64__) || defined(__i386__)
    if (blocked) { weighted_sum_avx2(p.data(), Vh, n, Dv, oh); continue; }
#endif
    std::fill(oh, oh + Dv, 0.f);
    for (int64_t jj = 0; jj < n; jj++) axpy(p[jj], Vh + jj * Dv, oh, Dv);
  }
}

struct HeadsJob {
  const float *q, *K, *V;
  float* out;
  int64_t nH, nKv, cap, Dk, Dv, lo, S;
  float scale;
  const float* sinks;
  int parts;
};
void heads_part(void* ctx, int part) {
  const HeadsJob& j = *static_cast<const HeadsJob*>(ctx);
  // contiguous ranges of KV heads (each part reads its own slice of the cache), all their query heads
  const int64_t group = j.nH / j.nKv;
  const int64_t g0 = j.nKv * part / j.parts, g1 = j.nKv * (part + 1) / j.parts;
  if (g0 < g1) decode_heads(j.q, j.K, j.V, j.out, j.nH, j.nKv, j.cap, j.Dk, j.Dv, j.lo, j.S, j.scale, j.sinks, g0 * group, g1 * group);
}
}  // namespace

// One sequence's heads, split over the pool's threads by KV head once the keys × head dims it reads pass
// kHeadsThreadMinWork (a long prompt's decode: 640 keys × 32 heads × 256 dims on a 2.7B qwen3_moe), else on the
// caller (the demo model's ~100 keys × 4 heads). Every head is its own computation: any split gives the same bits.
void attn_decode(const float* q, const float* K, const float* V, float* out, int64_t nH, int64_t nKv,
                 int64_t cap, int64_t Dk, int64_t Dv, int64_t lo, int64_t S, float scale,
                 const float* sinks) {
  constexpr int64_t kHeadsThreadMinWork = int64_t(1) << 18;
  const int64_t work = (S - lo) * nH * (Dk + Dv);
  const int parts = work <= kHeadsThreadMinWork ? 1 : static_cast<int>(std::min<int64_t>(blas_get_threads(), nKv));
  if (parts <= 1) {
    decode_heads(q, K, V, out, nH, nKv, cap, Dk, Dv, lo, S, scale, sinks, 0, nH);
    return;
  }
  HeadsJob j{q, K, V, out, nH, nKv, cap, Dk, Dv, lo, S, scale, sinks, parts};
  parallel_run(parts, heads_part, &j);
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
    if (s.kNew) {  // the step's new key and value at position S − 1
      for (int64_t h = 0; h < j.nKv; h++) {
        std::copy(s.kNew + h * j.Dk, s.kNew + (h + 1) * j.Dk, s.K + (h * s.cap + s.S - 1) * j.Dk);
        std::copy(s.vNew + h * j.Dv, s.vNew + (h + 1) * j.Dv, s.V + (h * s.cap + s.S - 1) * j.Dv);
      }
    }
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
