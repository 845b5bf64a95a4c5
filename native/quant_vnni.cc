// qgemm's rows on AVX512-VNNI (VPDPBUSD on 256-bit registers, EVEX-encoded: AMD Zen 4 and later, Intel Ice Lake,
// Sapphire Rapids and later): C[M, N] = A[M, K] W[N, K]^T for q8_0 / q4_0 weights and activations already quantised
// to 8 bits per 32-value block (quant.cc does that, as the reference's quantizeActs). Peer: src/tensor/ref/quant.ts
// qgemm (test/kernels-quant.test.ts holds this path to it, beside the AVX2 and scalar ones).
//
// VPDPBUSD adds to each i32 lane the dot of four unsigned bytes with four signed bytes: one instruction where AVX2
// needs sign, sign, maddubs and madd. Neither format has an unsigned side, so each gets one by an offset, the
// correction riding in the accumulator the instruction starts from (exact integer arithmetic, as the AVX2 path):
//  - q8_0: x + 128 (x in [-127, 127] -> [1, 255]) against w: sum (x + 128) w = sum x w + 128 sum w; the start value
//    -128 sum w is one VPDPBUSD of 128s against w per W block, shared by the MB rows of A.
//  - q4_0: the stored nibbles u in [0, 15] (w = u - 8) against x: sum u x = sum w x + 8 sum x; the start value
//    -8 sum x is one VPDPBUSD of 8s against x per A block, shared by the NB rows of W.
// Each (row of A, row of W, block) is then VPDPBUSD, convert, multiply by the block's scale product, add: the
// register tile is MB = 4 rows of A by NB = 4 rows of W (NB = 4, MB = 1 for the GEMV), 16 accumulators of 8 lanes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define MOEKIT_VNNI 1
#endif

namespace moekit {

#ifdef MOEKIT_VNNI
namespace {

constexpr int64_t QK = 32;

#define VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma,f16c")))

VNNI inline float hsum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

VNNI inline float scale_of(const uint8_t* blk) {
  uint16_t h;
  std::memcpy(&h, blk, 2);  // one 16-bit load (x86 is little-endian)
  return _cvtsh_ss(h);
}

// the 32 weight bytes of one block: q8_0 signed w; q4_0 the nibbles u (w = u - 8), low nibbles first
template <int QT>
VNNI inline __m256i load_block(const uint8_t* blk) {
  if (QT == 0) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  // the 16 bytes in both halves, the high half shifted right by 4, then the low nibble of every byte (3 instructions)
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
  return _mm256_and_si256(_mm256_srlv_epi64(raw, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// pf: the next rows of W (the GEMV's next group of NB rows, or null): short rows (K <= ~2048 is <= 1.2 KiB of
// q4_0) give the hardware prefetcher no time to ramp up, so one line of each next row is prefetched per block
template <int QT, int MB, int NB>
VNNI void tile(const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, float* C, int64_t ldc,
               const uint8_t* pf = nullptr) {
  constexpr int64_t bs = QT == 0 ? 34 : 18;
  const __m256i zero = _mm256_setzero_si256();
  const __m256i k128 = _mm256_set1_epi8(static_cast<char>(0x80)), k8 = _mm256_set1_epi8(8);
  __m256 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    if (pf != nullptr) {
      for (int j = 0; j < NB; j++) _mm_prefetch(reinterpret_cast<const char*>(pf + (j * nb + b) * bs), _MM_HINT_T0);
    }
    __m256i w[NB], start[NB];
    __m256 dw[NB];
    for (int j = 0; j < NB; j++) {
      const uint8_t* blk = W + (j * nb + b) * bs;
      w[j] = load_block<QT>(blk);
      dw[j] = _mm256_set1_ps(scale_of(blk));
      if (QT == 0) start[j] = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, k128, w[j]));  // -128 sum w
    }
    for (int i = 0; i < MB; i++) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qA + (i * nb + b) * QK));
      const __m256 da = _mm256_set1_ps(dA[i * nb + b]);
      if (QT == 0) {
        const __m256i xu = _mm256_xor_si256(x, k128);  // x + 128 as unsigned bytes
        for (int j = 0; j < NB; j++) {
          const __m256 d = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(start[j], xu, w[j]));
          acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw[j], da), d, acc[i][j]);
        }
      } else {
        const __m256i s = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, k8, x));  // -8 sum x
        for (int j = 0; j < NB; j++) {
          const __m256 d = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(s, w[j], x));
          acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw[j], da), d, acc[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) C[i * ldc + j] = hsum8(acc[i][j]);
}

template <int QT, int NB>
VNNI void tiles(const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, int64_t M, float* C, int64_t ldc) {
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
VNNI void rows_t(const uint8_t* W, int64_t nb, const float* dA, const int8_t* qA, int64_t M, float* C, int64_t ldc,
                 int64_t n0, int64_t n1) {
  constexpr int64_t bs = QT == 0 ? 34 : 18;
  int64_t n = n0;
  if (M == 1) {  // the GEMV: prefetch the next four rows
    for (; n + 4 <= n1; n += 4) {
      tile<QT, 1, 4>(W + n * nb * bs, nb, dA, qA, C + n, ldc, n + 8 <= n1 ? W + (n + 4) * nb * bs : nullptr);
    }
  }
  for (; n + 4 <= n1; n += 4) tiles<QT, 4>(W + n * nb * bs, nb, dA, qA, M, C + n, ldc);
  switch (n1 - n) {
    case 3: tiles<QT, 3>(W + n * nb * bs, nb, dA, qA, M, C + n, ldc); break;
    case 2: tiles<QT, 2>(W + n * nb * bs, nb, dA, qA, M, C + n, ldc); break;
    case 1: tiles<QT, 1>(W + n * nb * bs, nb, dA, qA, M, C + n, ldc); break;
    default: break;
  }
}

// ---- the 16-row kernel (M >= kWideMinM): one output lane per row of W ----------------------------------------
// Above, each (row of A, row of W, block) costs VPDPBUSD + convert + multiply + add, the lanes being partial sums
// along K; the three float operations bound it. Here a group of 16 W rows is transposed per block into eight
// vectors whose lane r holds 4 weights of row r (t-th 4-byte group of the block), so one broadcast 4-byte group of
// a row of A against each of them gives, in 8 VPDPBUSD, the block's integer dots for all 16 rows at once: then one
// convert, one multiply by the 16 scale products and one add serve 16 outputs. The transpose (16 loads, 8 inserts,
// 24 shuffles) is shared by every row of A in the chunk; the per-row accumulators live in an L1 buffer [rows][16].
constexpr int64_t kWideRows = 16;     // W rows per group (zmm lanes)
constexpr int64_t kWideChunkM = 64;   // rows of A per pass over a W group (accumulators: 4 KiB)
constexpr int64_t kWideMinM = 4;      // the 16-row kernel from this many rows of A

alignas(64) const uint8_t kZeroBlock[64] = {};  // stands in for the rows past N of the last group

// rows[r] (r < 16): the block of row r -> v[t] lane r = bytes 4t..4t+3 of that block
template <int QT>
VNNI inline void transpose16(const uint8_t* const* rows, __m512i v[8]) {
  __m512i z[8];
  for (int p = 0; p < 8; p++)
    z[p] = _mm512_inserti64x4(_mm512_castsi256_si512(load_block<QT>(rows[p])), load_block<QT>(rows[p + 8]), 1);
  // an 8 x 8 dword transpose in each 256-bit half (rows p in the low half, p + 8 in the high one)
  __m512i a[8], b[8];
  for (int p = 0; p < 4; p++) {
    a[2 * p] = _mm512_unpacklo_epi32(z[2 * p], z[2 * p + 1]);
    a[2 * p + 1] = _mm512_unpackhi_epi32(z[2 * p], z[2 * p + 1]);
  }
  for (int p = 0; p < 2; p++) {
    b[4 * p] = _mm512_unpacklo_epi64(a[4 * p], a[4 * p + 2]);
    b[4 * p + 1] = _mm512_unpackhi_epi64(a[4 * p], a[4 * p + 2]);
    b[4 * p + 2] = _mm512_unpacklo_epi64(a[4 * p + 1], a[4 * p + 3]);
    b[4 * p + 3] = _mm512_unpackhi_epi64(a[4 * p + 1], a[4 * p + 3]);
  }
  // b[q] (q < 4, rows 0-3 / 8-11) and b[q + 4] (rows 4-7 / 12-15): 128-bit lane l of b holds dwords t = q + 4 (l & 1)
  // of its four rows; output t takes lane (t / 4) of each 256-bit half from both
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int q = 0; q < 4; q++) {
    v[q] = _mm512_permutex2var_epi64(b[q], lo, b[q + 4]);
    v[q + 4] = _mm512_permutex2var_epi64(b[q], hi, b[q + 4]);
  }
}

template <int QT>
VNNI void wide_rows(const uint8_t* W, int64_t nb, int64_t N, const float* dA, const int8_t* qA, const uint8_t* xu,
                    const int32_t* xbias, int64_t M, float* C, int64_t ldc, int64_t n0, int64_t n1) {
  constexpr int64_t bs = QT == 0 ? 34 : 18;
  alignas(64) float acc[kWideChunkM * kWideRows];
  alignas(64) uint16_t hs[kWideRows];
  const __m512i k128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t m0 = 0; m0 < M; m0 += kWideChunkM) {
    const int64_t mc = std::min(kWideChunkM, M - m0);
    for (int64_t g = n0; g < n1; g += kWideRows) {
      const int64_t rows = std::min(kWideRows, N - g);
      std::memset(acc, 0, sizeof(float) * static_cast<size_t>(mc * kWideRows));
      for (int64_t b = 0; b < nb; b++) {
        const uint8_t* blk[kWideRows];
        for (int64_t r = 0; r < kWideRows; r++) {
          if (r < rows) {
            blk[r] = W + ((g + r) * nb + b) * bs;
            hs[r] = static_cast<uint16_t>(blk[r][0] | (blk[r][1] << 8));
          } else {
            blk[r] = kZeroBlock;
            hs[r] = 0;
          }
        }
        __m512i v[8];
        transpose16<QT>(blk, v);
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(hs)));
        __m512i start = _mm512_setzero_si512();
        if (QT == 0) {  // -128 sum w per row
          for (int t = 0; t < 8; t++) start = _mm512_dpbusd_epi32(start, k128, v[t]);
          start = _mm512_sub_epi32(_mm512_setzero_si512(), start);
        }
        for (int64_t i = 0; i < mc; i++) {
          const int64_t m = m0 + i;
          __m512i d;
          if (QT == 0) {
            const int32_t* x = reinterpret_cast<const int32_t*>(xu + (m * nb + b) * QK);
            d = start;  // x + 128 (unsigned) against w (signed)
            for (int t = 0; t < 8; t++) d = _mm512_dpbusd_epi32(d, _mm512_set1_epi32(x[t]), v[t]);
          } else {
            const int32_t* x = reinterpret_cast<const int32_t*>(qA + (m * nb + b) * QK);
            d = _mm512_set1_epi32(xbias[m * nb + b]);
            for (int t = 0; t < 8; t++) d = _mm512_dpbusd_epi32(d, v[t], _mm512_set1_epi32(x[t]));  // u against x
          }
          const __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(dA[m * nb + b]));
          float* a = acc + i * kWideRows;
          _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, _mm512_load_ps(a)));
        }
      }
      const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
      for (int64_t i = 0; i < mc; i++) _mm512_mask_storeu_ps(C + (m0 + i) * ldc + g, mask, _mm512_load_ps(acc + i * kWideRows));
    }
  }
}

bool detect() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c");
}

}  // namespace

bool avx512_vnni_available() {
  static const bool ok = detect();
  return ok;
}

namespace {
struct Job {
  int type;
  const uint8_t* W;
  int64_t nb, N, M;
  const float* dA;
  const int8_t* qA;
  const uint8_t* xu;      // q8_0, wide: qA + 128 as unsigned bytes [M, K]
  const int32_t* xbias;   // q4_0, wide: -8 sum of each block of qA [M, nb]
  float* C;
  int64_t ldc;
  bool wide;
  int parts;
};

void run_part(void* ctx, int p) {
  const Job& j = *static_cast<const Job*>(ctx);
  const int64_t unit = j.wide ? kWideRows : 4;  // contiguous ranges of W rows, multiples of the unit
  const int64_t units = (j.N + unit - 1) / unit;
  const int64_t n0 = std::min(j.N, units * p / j.parts * unit), n1 = std::min(j.N, units * (p + 1) / j.parts * unit);
  if (n0 >= n1) return;
  if (j.wide) {
    if (j.type == 0) wide_rows<0>(j.W, j.nb, j.N, j.dA, j.qA, j.xu, j.xbias, j.M, j.C, j.ldc, n0, n1);
    else wide_rows<1>(j.W, j.nb, j.N, j.dA, j.qA, j.xu, j.xbias, j.M, j.C, j.ldc, n0, n1);
  } else if (j.type == 0) {
    rows_t<0>(j.W, j.nb, j.dA, j.qA, j.M, j.C, j.ldc, n0, n1);
  } else {
    rows_t<1>(j.W, j.nb, j.dA, j.qA, j.M, j.C, j.ldc, n0, n1);
  }
}

VNNI void prepare(int type, const int8_t* qA, int64_t M, int64_t K, uint8_t* xu, int32_t* xbias) {
  const int64_t nb = K / QK;
  if (type == 0) {
    const __m256i k128 = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t i = 0; i < M * nb; i++) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qA + i * QK));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(xu + i * QK), _mm256_xor_si256(x, k128));
    }
  } else {
    for (int64_t i = 0; i < M * nb; i++) {
      int32_t s = 0;
      for (int t = 0; t < QK; t++) s += qA[i * QK + t];
      xbias[i] = -8 * s;
    }
  }
}
}  // namespace

void qgemm_vnni(int type, int64_t M, int64_t N, int64_t K, const float* dA, const int8_t* qA, const uint8_t* W,
                float* C, int64_t ldc) {
  const int64_t nb = K / QK;
  Job j{type, W, nb, N, M, dA, qA, nullptr, nullptr, C, ldc, M >= kWideMinM, 0};
  thread_local std::vector<uint8_t> xu;
  thread_local std::vector<int32_t> xbias;
  if (j.wide) {
    if (type == 0) {
      if (xu.size() < static_cast<size_t>(M * K)) xu.resize(static_cast<size_t>(M * K));
      j.xu = xu.data();
    } else {
      if (xbias.size() < static_cast<size_t>(M * nb)) xbias.resize(static_cast<size_t>(M * nb));
      j.xbias = xbias.data();
    }
    prepare(type, qA, M, K, xu.data(), xbias.data());
  }
  j.parts = threads_for(N * K * M, (N + 3) / 4);
  pool_run(j.parts, run_part, &j);
}

#else

bool avx512_vnni_available() { return false; }
void qgemm_vnni(int, int64_t, int64_t, int64_t, const float*, const int8_t*, const uint8_t*, float*, int64_t) {}

#endif

}  // namespace moekit
