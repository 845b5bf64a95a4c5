// sgemm_bf16 on AVX512-BF16 (VDPBF16PS: AMD Zen 4 and later, Intel Cooper Lake, Sapphire Rapids and later):
// C[M,N] = alpha A[M,K] W[N,K]^T + beta C with W in bfloat16 and A in f32. Peer: src/tensor/ref/bf16.ts sgemmBf16
// (test/kernels-bf16.test.ts holds this path to it, beside the AVX2, AMX and scalar ones).
//
// Precision, as the AMX path (amx.cc): VDPBF16PS multiplies pairs of bfloat16 values into f32 lanes, so W is used
// as stored and A is carried in two bfloat16 parts, hi = bf16(a) and lo = bf16(a - hi), both multiplied into the
// same accumulator (|a - hi - lo| <= 2^-17 |a|; a plain bf16 cast of A would be off by up to 2^-9). Non-finite
// activations ride in hi alone (lo = 0). The instruction treats bf16 subnormals as zero.
//
// Layout. A is converted once per call into hi and lo rows of Kp = K rounded up to 32 values (zero-padded), so
// every step of the K loop is one 64-byte load of each. W rows load straight from memory (32 bf16 per step, the
// last partial step a masked load that reads nothing past the row). The register tile is MB = 4 rows of A by
// NB = 4 rows of W: 16 accumulators of 16 f32 lanes, each K step 4 W loads + 8 A loads for 32 VDPBF16PS. At the
// end each group of four accumulators is reduced to four sums in one 128-bit vector (one store per row of C).
// W is split over the pool's threads in quads of rows; A is walked in chunks of rows that stay in L2 (kAChunkBytes)
// with each thread's W rows re-read once per chunk.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"

// GCC 12 warns of "__Y may be used uninitialized" inside its own AVX-512 headers (_mm512_undefined_* in the
// masked intrinsics): a false positive of the headers, not of this file
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__x86_64__)
#include <immintrin.h>
#define MOEKIT_AVX512 1
#endif

namespace moekit {

#ifdef MOEKIT_AVX512
namespace {

constexpr int64_t kStep = 32;                         // bf16 values of K per VDPBF16PS
constexpr int64_t kAChunkBytes = int64_t(256) << 10;  // packed A (hi + lo) walked per pass over W: half an L2

bool detect() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}

bool available() {
  static const bool ok = detect();
  return ok;
}

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

// A [M, K] -> hi, lo [M, Kp]: round to nearest even, lo = bf16(a - hi) (0 where hi is not finite), zero padding
AVX512 void pack(const float* A, int64_t lda, int64_t M, int64_t K, int64_t Kp, uint16_t* hi, uint16_t* lo) {
  constexpr int kNonFinite = 0x01 | 0x80 | 0x08 | 0x10;  // QNaN, SNaN, +Inf, -Inf
  for (int64_t m = 0; m < M; m++) {
    const float* a = A + m * lda;
    for (int64_t k0 = 0; k0 < Kp; k0 += kStep) {
      const int64_t n0 = std::clamp<int64_t>(K - k0, 0, 16), n1 = std::clamp<int64_t>(K - k0 - 16, 0, 16);
      const __m512 x0 = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n0) - 1), a + k0);
      const __m512 x1 = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n1) - 1), a + k0 + 16);
      const __m512i h = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(x1, x0));  // 32 words in k order
      const __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
      const __m512 h1 =
          _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
      const __m512 l0 = _mm512_maskz_sub_ps(static_cast<__mmask16>(~_mm512_fpclass_ps_mask(h0, kNonFinite)), x0, h0);
      const __m512 l1 = _mm512_maskz_sub_ps(static_cast<__mmask16>(~_mm512_fpclass_ps_mask(h1, kNonFinite)), x1, h1);
      const __m512i l = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(l1, l0));
      _mm512_storeu_si512(hi + m * Kp + k0, h);
      _mm512_storeu_si512(lo + m * Kp + k0, l);
    }
  }
}

// the sums of the 16 lanes of a, b, c, d, in that order
AVX512 inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  // a0+a2 b0+b2 a1+a3 b1+b3
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));  // per 128-bit lane: a b c d
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
  return _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
}

struct Job {
  const uint16_t* hi;  // [M, Kp]
  const uint16_t* lo;
  int64_t Kp, M, N, K;
  const uint16_t* W;
  int64_t ldw;
  float alpha, beta;
  float* C;
  int64_t ldc;
  int64_t mChunk;
  int parts;
};

// C[m0 .. m0 + MB, n .. n + NB): MB rows of packed A times NB rows of W
template <int MB, int NB>
AVX512 void tile(const Job& j, int64_t m0, int64_t n) {
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int t = 0; t < NB; t++) acc[i][t] = _mm512_setzero_ps();
  const uint16_t* w = j.W + n * j.ldw;  // rows n .. n + NB: [K] each
  const uint16_t* hi = j.hi + m0 * j.Kp;
  const uint16_t* lo = j.lo + m0 * j.Kp;
  const int64_t full = j.K / kStep * kStep;
  for (int64_t k = 0; k < j.Kp; k += kStep) {
    __m512bh wv[NB];
    if (k < full) {
      for (int t = 0; t < NB; t++) wv[t] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + t * j.ldw + k));
    } else {  // the last partial step: masked load, nothing read past the row
      const __mmask32 mask = static_cast<__mmask32>((uint64_t(1) << (j.K - k)) - 1);
      for (int t = 0; t < NB; t++) wv[t] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, w + t * j.ldw + k));
    }
    for (int i = 0; i < MB; i++) {
      const __m512bh h = reinterpret_cast<__m512bh>(_mm512_loadu_si512(hi + i * j.Kp + k));
      const __m512bh l = reinterpret_cast<__m512bh>(_mm512_loadu_si512(lo + i * j.Kp + k));
      for (int t = 0; t < NB; t++) {
        acc[i][t] = _mm512_dpbf16_ps(acc[i][t], h, wv[t]);
        acc[i][t] = _mm512_dpbf16_ps(acc[i][t], l, wv[t]);
      }
    }
  }
  const __m128 alpha = _mm_set1_ps(j.alpha), beta = _mm_set1_ps(j.beta);
  const __mmask8 mask = static_cast<__mmask8>((1u << NB) - 1);
  for (int i = 0; i < MB; i++) {
    const __m512 z = _mm512_setzero_ps();
    __m128 s = hsum4(acc[i][0], NB > 1 ? acc[i][1 % NB] : z, NB > 2 ? acc[i][2 % NB] : z, NB > 3 ? acc[i][3 % NB] : z);
    float* c = j.C + (m0 + i) * j.ldc + n;
    s = _mm_mul_ps(alpha, s);
    if (j.beta != 0.0f) s = _mm_fmadd_ps(beta, _mm_maskz_loadu_ps(mask, c), s);
    _mm_mask_storeu_ps(c, mask, s);
  }
}

template <int NB>
AVX512 void tiles(const Job& j, int64_t m0, int64_t m1, int64_t n) {
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) tile<4, NB>(j, m, n);
  switch (m1 - m) {
    case 3: tile<3, NB>(j, m, n); break;
    case 2: tile<2, NB>(j, m, n); break;
    case 1: tile<1, NB>(j, m, n); break;
    default: break;
  }
}

AVX512 void run_part(void* ctx, int part) {
  const Job& j = *static_cast<const Job*>(ctx);
  const int64_t quads = (j.N + 3) / 4;
  const int64_t n0 = std::min(j.N, quads * part / j.parts * 4), n1 = std::min(j.N, quads * (part + 1) / j.parts * 4);
  for (int64_t m0 = 0; m0 < j.M; m0 += j.mChunk) {
    const int64_t m1 = std::min(j.M, m0 + j.mChunk);
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) tiles<4>(j, m0, m1, n);
    switch (n1 - n) {
      case 3: tiles<3>(j, m0, m1, n); break;
      case 2: tiles<2>(j, m0, m1, n); break;
      case 1: tiles<1>(j, m0, m1, n); break;
      default: break;
    }
  }
}

}  // namespace

bool avx512_bf16_available() { return available(); }

void sgemm_bf16_avx512(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const uint16_t* W,
                       int64_t ldw, float beta, float* C, int64_t ldc) {
  const int64_t Kp = (K + kStep - 1) / kStep * kStep;
  thread_local std::vector<uint16_t> buf;  // hi then lo, [M, Kp] each, kept between calls
  const size_t need = static_cast<size_t>(2 * M * Kp);
  if (buf.size() < need) buf.resize(need);
  pack(A, lda, M, K, Kp, buf.data(), buf.data() + M * Kp);
  Job j{buf.data(), buf.data() + M * Kp, Kp, M, N, K, W, ldw, alpha, beta, C, ldc, 0, 0};
  j.mChunk = std::max<int64_t>(4, kAChunkBytes / (4 * Kp) / 4 * 4);
  j.parts = threads_for(N * K * M, (N + 3) / 4);
  pool_run(j.parts, run_part, &j);
}

#else

bool avx512_bf16_available() { return false; }
void sgemm_bf16_avx512(int64_t, int64_t, int64_t, float, const float*, int64_t, const uint16_t*, int64_t, float,
                       float*, int64_t) {}

#endif

namespace {
// MOEKIT_AVX512=0 in the environment starts with every AVX-512 path off (as setAvx512(false))
bool env_allows() {
  const char* v = std::getenv("MOEKIT_AVX512");
  return v == nullptr || std::strcmp(v, "0") != 0;
}
std::atomic<bool> g_avx512_on{env_allows()}, g_avx512_forced{false};
}
bool avx512_allowed() { return g_avx512_on.load(std::memory_order_relaxed); }
bool avx512_forced() { return g_avx512_forced.load(std::memory_order_relaxed); }
void set_avx512(bool on, bool force) {
  g_avx512_on.store(on, std::memory_order_relaxed);
  g_avx512_forced.store(on && force, std::memory_order_relaxed);
}

}  // namespace moekit
