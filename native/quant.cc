// Fused dequantising linear layers over llama.cpp's block formats (q8_0, q4_0; src/tensor/quant.ts
// has the byte layouts). Peers: src/tensor/ref/quant.ts; test/kernels-quant.test.ts holds these to it.
//
// qgemm: C[M, N] = A[M, K] W[N, K]^T. Each row of A is first quantised to 8 bits per 32-value block
// (d = max|x| / 127, q = nearbyint(x * 127 / max|x|), all in f32: quantizeActs in the reference), so
// every block product is an integer dot of 32 int8 pairs times dW * dA. One template over the
// weight-block loader (q8_0: 32 int8; q4_0: 16 bytes of nibbles minus 8) serves both formats and
// every M: an MB x NB register tile of 8-lane accumulators (MB rows of A, NB rows of W read once
// per MB rows), M = 1 being the decode GEMV. AVX2: sign trick + maddubs/madd for the int8 dot,
// F16C for the block scales; scalar: the same integer sums, one f32 accumulator per output.
// Rows of W are split over the pool of bf16.cc (threads_for). As in bf16.cc, AVX2 code is static,
// intrinsics only.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace moekit {

namespace {

constexpr int64_t QK = 32;
inline int64_t block_bytes(int type) { return type == 0 ? 34 : 18; }

inline float half_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
  uint32_t u;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);  // zero or subnormal, exact
    return sign ? -v : v;
  }
  if (e == 0x1f) u = sign | 0x7f800000u | (m << 13);
  else u = sign | ((e + 112) << 23) | (m << 13);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint16_t scale_bits(const uint8_t* blk) { return static_cast<uint16_t>(blk[0] | (blk[1] << 8)); }

// ---- scalar ---------------------------------------------------------------------------------

// one row x[K] -> d[K/32], q[K]
void quantize_acts_scalar(const float* x, int64_t K, float* d, int8_t* q) {
  for (int64_t b = 0; b < K / QK; b++) {
    float amax = 0;
    for (int t = 0; t < QK; t++) amax = std::max(amax, std::fabs(x[b * QK + t]));
    d[b] = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int t = 0; t < QK; t++) {
      const float v = std::nearbyint(x[b * QK + t] * id);
      q[b * QK + t] = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, v)));
    }
  }
}

// the 32 integer weights of one block
inline void block_ints(int type, const uint8_t* blk, int32_t* w) {
  if (type == 0) {
    for (int t = 0; t < QK; t++) w[t] = static_cast<int8_t>(blk[2 + t]);
  } else {
    for (int t = 0; t < QK / 2; t++) {
      w[t] = (blk[2 + t] & 0x0f) - 8;
      w[t + 16] = (blk[2 + t] >> 4) - 8;
    }
  }
}

// C[i, n] for n in [n0, n1), all i < M
void rows_scalar(int type, const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, int64_t M,
                 float* C, int64_t ldc, int64_t n0, int64_t n1) {
  const int64_t bs = block_bytes(type);
  int32_t w[QK];
  for (int64_t n = n0; n < n1; n++) {
    for (int64_t i = 0; i < M; i++) {
      float acc = 0;
      for (int64_t b = 0; b < nb; b++) {
        const uint8_t* blk = W + (n * nb + b) * bs;
        block_ints(type, blk, w);
        const int8_t* x = qA + (i * nb + b) * QK;
        int32_t s = 0;
        for (int t = 0; t < QK; t++) s += w[t] * x[t];
        acc += half_to_f32(scale_bits(blk)) * dA[i * nb + b] * static_cast<float>(s);
      }
      C[i * ldc + n] = acc;
    }
  }
}

void dequantize_scalar(int type, float* dst, const uint8_t* src, int64_t n) {
  const int64_t bs = block_bytes(type);
  int32_t w[QK];
  for (int64_t b = 0; b < n / QK; b++) {
    const float d = half_to_f32(scale_bits(src + b * bs));
    block_ints(type, src + b * bs, w);
    for (int t = 0; t < QK; t++) dst[b * QK + t] = d * static_cast<float>(w[t]);
  }
}

// ---- AVX2 + FMA + F16C ----------------------------------------------------------------------

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOEKIT_QUANT_X86 1
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

AVX2 static inline float scale_avx2(const uint8_t* blk) {
  return _cvtsh_ss(static_cast<unsigned short>(blk[0] | (blk[1] << 8)));
}

AVX2 static void quantize_acts_avx2(const float* x, int64_t K, float* d, int8_t* q) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < K / QK; b++) {
    const float* p = x + b * QK;
    __m256 v[4];
    for (int t = 0; t < 4; t++) v[t] = _mm256_loadu_ps(p + 8 * t);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], absmask), _mm256_and_ps(v[1], absmask)),
                             _mm256_max_ps(_mm256_and_ps(v[2], absmask), _mm256_and_ps(v[3], absmask)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    d[b] = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    __m256i i[4];
    for (int t = 0; t < 4; t++) {
      i[t] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[t], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // i32 -> i8 (values already in [-127, 127]); packs interleave 128-bit lanes, the permute undoes it
    const __m256i p16a = _mm256_packs_epi32(i[0], i[1]), p16b = _mm256_packs_epi32(i[2], i[3]);
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), perm);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * QK), p8);
  }
}

// 32 int8 weights of one block
template <int QT>
AVX2 static inline __m256i load_block(const uint8_t* blk) {
  if (QT == 0) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
  const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

// 8 int32 partial sums of the dot of 32 int8 pairs (w may be -128; x is in [-127, 127])
AVX2 static inline __m256 dot_i8(__m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// C[i, j] for MB rows of A and NB rows of W. pf: the next rows of W (the GEMV's next group, or null), one line of
// each prefetched per block: short rows give the hardware prefetcher no time to ramp up (×2-3 on q8_0 / q4_0 GEMVs)
template <int QT, int MB, int NB>
AVX2 static void tile(const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, float* C, int64_t ldc,
                      const uint8_t* pf = nullptr) {
  constexpr int64_t bs = QT == 0 ? 34 : 18;
  __m256 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    if (pf != nullptr) {
      for (int j = 0; j < NB; j++) _mm_prefetch(reinterpret_cast<const char*>(pf + (j * nb + b) * bs), _MM_HINT_T0);
    }
    __m256i w[NB];
    float dw[NB];
    for (int j = 0; j < NB; j++) {
      const uint8_t* blk = W + (j * nb + b) * bs;
      w[j] = load_block<QT>(blk);
      dw[j] = scale_avx2(blk);
    }
    for (int i = 0; i < MB; i++) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qA + (i * nb + b) * QK));
      const float da = dA[i * nb + b];
      for (int j = 0; j < NB; j++) acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dw[j] * da), dot_i8(w[j], x), acc[i][j]);
    }
  }
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) C[i * ldc + j] = hsum8(acc[i][j]);
}

template <int QT, int NB>
AVX2 static void tiles(const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, int64_t M, float* C,
                       int64_t ldc) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile<QT, 4, NB>(W, nb, dA + m * nb, qA + m * nb * QK, C + m * ldc, ldc);
  switch (M - m) {
    case 3: tile<QT, 3, NB>(W, nb, dA + m * nb, qA + m * nb * QK, C + m * ldc, ldc); break;
    case 2: tile<QT, 2, NB>(W, nb, dA + m * nb, qA + m * nb * QK, C + m * ldc, ldc); break;
    case 1: tile<QT, 1, NB>(W, nb, dA + m * nb, qA + m * nb * QK, C + m * ldc, ldc); break;
    default: break;
  }
}

template <int QT>
AVX2 static void rows_avx2_t(const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, int64_t M, float* C,
                             int64_t ldc, int64_t n0, int64_t n1) {
  constexpr int64_t bs = QT == 0 ? 34 : 18;
  int64_t n = n0;
  if (M == 1) {  // the GEMV: four W rows per step keep four streams in flight, the next four prefetched
    for (; n + 4 <= n1; n += 4) {
      tile<QT, 1, 4>(W + n * nb * bs, nb, dA, qA, C + n, ldc, n + 8 <= n1 ? W + (n + 4) * nb * bs : nullptr);
    }
  } else {
    for (; n + 2 <= n1; n += 2) tiles<QT, 2>(W + n * nb * bs, nb, dA, qA, M, C + n, ldc);
  }
  for (; n < n1; n++) tiles<QT, 1>(W + n * nb * bs, nb, dA, qA, M, C + n, ldc);
}

AVX2 static void rows_avx2(int type, const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, int64_t M,
                           float* C, int64_t ldc, int64_t n0, int64_t n1) {
  if (type == 0) rows_avx2_t<0>(W, nb, dA, qA, M, C, ldc, n0, n1);
  else rows_avx2_t<1>(W, nb, dA, qA, M, C, ldc, n0, n1);
}
#endif

bool use_avx2() {
#ifdef MOEKIT_QUANT_X86
  static const bool f16c = __builtin_cpu_supports("f16c");
  return f16c && &active_kernels() == &kAvx2Kernels;
#else
  return false;
#endif
}

struct Job {
  bool avx2;
  int type;
  const uint8_t* W;
  int64_t nb, N, M;
  const float* dA;
  const int8_t* qA;
  float* C;
  int64_t ldc;
  int parts;
};

void part(void* ctx, int p) {
  const Job& j = *static_cast<const Job*>(ctx);
  const int64_t quads = (j.N + 3) / 4;  // contiguous ranges of W rows, multiples of 4
  const int64_t n0 = std::min(j.N, quads * p / j.parts * 4), n1 = std::min(j.N, quads * (p + 1) / j.parts * 4);
  if (n0 >= n1) return;
#ifdef MOEKIT_QUANT_X86
  if (j.avx2) {
    rows_avx2(j.type, j.W, j.nb, j.dA, j.qA, j.M, j.C, j.ldc, n0, n1);
    return;
  }
#endif
  rows_scalar(j.type, j.W, j.nb, j.dA, j.qA, j.M, j.C, j.ldc, n0, n1);
}

// f32 -> binary16 bits, round to nearest even (overflow -> inf, NaN stays NaN): src/util/half.ts f32ToF16Bits
uint16_t f32_to_half(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  const uint32_t sign = (b >> 16) & 0x8000, e = (b >> 23) & 0xff, m = b & 0x7fffff;
  if (e == 0xff) return static_cast<uint16_t>(m ? sign | 0x7e00 | (m >> 13) : sign | 0x7c00);
  const int exp = static_cast<int>(e) - 112;
  if (exp >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    const uint32_t full = m | 0x800000;
    const int shift = 14 - exp;
    uint32_t q = full >> shift;
    const uint32_t rem = full & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (m >> 13);
  const uint32_t rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return static_cast<uint16_t>(h);
}

// llama.cpp's reference quantisers (src/tensor/quant.ts quantize, bit for bit): one block of 32 values
void quantize_block(int type, const float* x, uint8_t* out) {
  float amax = 0, max = 0;
  for (int j = 0; j < QK; j++) {
    if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
  }
  const float d = type == 0 ? amax / 127.0f : max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const uint16_t h = f32_to_half(d);
  out[0] = static_cast<uint8_t>(h & 0xff);
  out[1] = static_cast<uint8_t>(h >> 8);
  if (type == 0) {
    for (int j = 0; j < QK; j++) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
  } else {
    for (int j = 0; j < QK / 2; j++) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      out[2 + j] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
    }
  }
}

struct QuantizeJob { int type; const float* src; uint8_t* dst; int64_t blocks; int parts; };

void quantize_part(void* ctx, int p) {
  const QuantizeJob& j = *static_cast<const QuantizeJob*>(ctx);
  const int64_t b0 = j.blocks * p / j.parts, b1 = j.blocks * (p + 1) / j.parts;
  const int64_t bs = block_bytes(j.type);
  for (int64_t b = b0; b < b1; b++) quantize_block(j.type, j.src + b * QK, j.dst + b * bs);
}

}  // namespace

void dequantize(int type, float* dst, const uint8_t* src, int64_t n) { dequantize_scalar(type, dst, src, n); }

void quantize(int type, uint8_t* dst, const float* src, int64_t n) {
  QuantizeJob j{type, src, dst, n / QK, 0};
  j.parts = threads_for(n, j.blocks);
  pool_run(j.parts, quantize_part, &j);
}

void qgemm(int type, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint8_t* W, float* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; i++) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  const int64_t nb = K / QK;
  const bool avx2 = use_avx2();
  thread_local std::vector<float> dA;  // [M, nb] activation scales
  thread_local std::vector<int8_t> qA;  // [M, K] 8-bit activations
  if (dA.size() < static_cast<size_t>(M * nb)) dA.resize(static_cast<size_t>(M * nb));
  if (qA.size() < static_cast<size_t>(M * K)) qA.resize(static_cast<size_t>(M * K));
  for (int64_t i = 0; i < M; i++) {
#ifdef MOEKIT_QUANT_X86
    if (avx2) {
      quantize_acts_avx2(A + i * lda, K, dA.data() + i * nb, qA.data() + i * K);
      continue;
    }
#endif
    quantize_acts_scalar(A + i * lda, K, dA.data() + i * nb, qA.data() + i * K);
  }
  if (avx2 && avx512_allowed() && avx512_vnni_available()) {  // quant_vnni.cc
    qgemm_vnni(type, M, N, K, dA.data(), qA.data(), W, C, ldc);
    return;
  }
  Job j{avx2, type, W, nb, N, M, dA.data(), qA.data(), C, ldc, 0};
  j.parts = threads_for(N * K * M, (N + 3) / 4);
  pool_run(j.parts, part, &j);
}

}  // namespace moekit
