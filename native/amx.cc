// sgemm_bf16 on Intel AMX (AMX-TILE + AMX-BF16: Sapphire Rapids and later): C[M,N] = alpha A[M,K] W[N,K]^T + beta C
// with W in bfloat16 and A in f32. Peer: src/tensor/ref/bf16.ts sgemmBf16 (test/kernels-bf16.test.ts holds this
// path to it, as it does the AVX2 one).
//
// Precision. TDPBF16PS multiplies bfloat16 pairs exactly and accumulates in f32, so W (already bf16) is used as
// stored, while A is split in three bfloat16 parts, hi = bf16(a), mid = bf16(a - hi), lo = bf16(a - hi - mid) (each
// rounding to nearest even, each difference exact in f32), all multiplied into the same accumulator: hi + mid + lo
// = a exactly (8 + 8 + 8 significant bits) unless lo falls below bf16's normal range, so every product is the f32
// path's and only the order of the f32 sums differs (two parts, 16 bits, were ~20 times less accurate: ~2e-6 of
// max |C|, enough to flip greedy tokens of batched decode against single-sequence decode). A plain bf16 cast of A,
// what llama.cpp and torch's bf16 matmul do, keeps 8 bits. Non-finite activations are carried in hi alone (mid = lo
// = 0); a non-finite weight meets mid = 0 and gives NaN where the f32 path gives ±Inf (a checkpoint with Inf weights
// is broken anyway). The hardware treats bf16 subnormals as zero.
//
// Layout. The product is computed transposed, C^T[N, M] = W · A^T, so that W rows load straight from memory as
// the tiles' A operand (16 rows of 32 bf16 = 64 bytes, row stride ldw): no weight is ever repacked or widened. A^T
// is the B operand, which TDPBF16PS wants in pairs ("VNNI" layout: row kk holds, for each of 16 columns m, the
// pair A[m][2kk], A[m][2kk+1]); A is small (the tokens of one call), so it is converted and packed once per call,
// hi, mid and lo, zero-padded to whole 16 × 32 blocks. Each thread owns a range of W rows (multiples of 16); partial W
// tiles (the last rows, the last 32-wide K chunk) are copied into a zero-padded buffer first, so no load reads
// past W. Register use: 8 tiles = NT × MT accumulators + NT W tiles + MT A tiles, (2, 2) or, for M <= 16, (3, 1).
//
// Enabling: the CPU must report AMX-TILE and AMX-BF16 (CPUID 7.0 EDX bits 24, 22) and Linux must grant the
// process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM, kernel 5.16+), else the AVX2 / BLAS paths run.
// Each thread loads the tile configuration on its first AMX call (one palette for every call). set_amx(false)
// turns the path off (tests, benchmarks: the other paths stay reachable).
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

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define MOEKIT_AMX 1
#endif

namespace moekit {

#ifdef MOEKIT_AMX
namespace {

constexpr int64_t kTileRows = 16;  // rows of every tile
constexpr int64_t kChunk = 32;     // bf16 values of K per tile row (64 bytes)

bool detect() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
  if (!tile || !bf16) return false;
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;  // <asm/prctl.h>, arch/x86/include/asm/fpu/types.h
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
}

bool available() {
  static const bool ok = detect();
  return ok;
}

// MOEKIT_AMX=0 in the environment starts with the AMX path off (as setAmx(false))
bool env_allows() {
  const char* v = std::getenv("MOEKIT_AMX");
  return v == nullptr || std::strcmp(v, "0") != 0;
}
std::atomic<bool> g_on{env_allows()};

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

AMX void configure() {
  thread_local bool done = false;
  if (done) return;
  TileConfig cfg;
  for (int t = 0; t < 8; t++) { cfg.colsb[t] = 64; cfg.rows[t] = kTileRows; }
  _tile_loadconfig(&cfg);
  done = true;
}

constexpr int kParts = 3;  // hi, mid, lo

// the packed B operands: for block (mb, kc), hi, mid, lo, each 16 rows (kk) x 16 columns (m) of bf16 pairs
struct Packed {
  int64_t mBlocks, kChunks;
  std::vector<uint32_t> data;  // [mBlocks][kChunks][kParts][16][16]
  const uint32_t* at(int64_t mb, int64_t kc, int part) const {
    return data.data() + ((mb * kChunks + kc) * kParts + part) * 256;
  }
};

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512bf16")))

// one row m of A into the packed operands: per K chunk, 32 values -> hi, mid, lo bf16 (round to nearest even; a
// non-finite hi keeps mid = lo = 0), 16 pairs scattered to rows kk of column m
AVX512 inline __m512i widen_lo(__m512i b) { return _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(b)), 16); }
AVX512 inline __m512i widen_hi(__m512i b) { return _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(b, 1)), 16); }

AVX512 void pack_row(Packed& p, const float* a, int64_t K, int64_t m) {
  const int64_t mb = m / 16, col = m % 16;
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(16));
  constexpr int kNonFinite = 0x01 | 0x80 | 0x08 | 0x10;  // QNaN, SNaN, +Inf, -Inf
  for (int64_t kc = 0; kc < p.kChunks; kc++) {
    const int64_t k0 = kc * kChunk;
    const int64_t n0 = std::clamp<int64_t>(K - k0, 0, 16), n1 = std::clamp<int64_t>(K - k0 - 16, 0, 16);
    __m512 x0 = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n0) - 1), a + k0);
    __m512 x1 = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n1) - 1), a + k0 + 16);
    uint32_t* dst = p.data.data() + ((mb * p.kChunks + kc) * kParts) * 256 + col;
    __mmask16 f0 = 0xffff, f1 = 0xffff;  // lanes whose hi is finite
    for (int part = 0; part < kParts; part++) {
      const __m512i b = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(x1, x0));  // words in k order
      _mm512_i32scatter_epi32(dst + part * 256, rows, b, 4);
      const __m512 h0 = _mm512_castsi512_ps(widen_lo(b)), h1 = _mm512_castsi512_ps(widen_hi(b));
      if (part == 0) {
        f0 = static_cast<__mmask16>(~_mm512_fpclass_ps_mask(h0, kNonFinite));
        f1 = static_cast<__mmask16>(~_mm512_fpclass_ps_mask(h1, kNonFinite));
      }
      x0 = _mm512_maskz_sub_ps(f0, x0, h0);  // the remainder, exact in f32
      x1 = _mm512_maskz_sub_ps(f1, x1, h1);
    }
  }
}

void pack(Packed& p, const float* A, int64_t lda, int64_t M, int64_t K) {
  p.mBlocks = (M + 15) / 16;
  p.kChunks = (K + kChunk - 1) / kChunk;
  const size_t n = static_cast<size_t>(p.mBlocks * p.kChunks * kParts * 256);
  if (p.data.size() < n) p.data.resize(n);
  for (int64_t m = 0; m < M; m++) pack_row(p, A + m * lda, K, m);
  // the padding columns of the last block read as zeros
  const int64_t used = M - (p.mBlocks - 1) * 16;
  if (used < 16) {
    uint32_t* last = p.data.data() + (p.mBlocks - 1) * p.kChunks * kParts * 256;
    for (int64_t r = 0; r < p.kChunks * kParts * 16; r++) std::memset(last + r * 16 + used, 0, (16 - used) * 4);
  }
}

struct Job {
  const Packed* p;
  const uint16_t* W;
  int64_t ldw, M, N, K;
  float alpha, beta;
  float* C;
  int64_t ldc;
  int parts;
};

// W rows [n, n + 16) x K chunk kc as a tile source: straight from W when whole, else a zero-padded copy
inline const void* w_tile(const Job& j, int64_t n, int64_t kc, uint16_t* buf, int64_t* stride) {
  const int64_t k0 = kc * kChunk;
  if (n + kTileRows <= j.N && k0 + kChunk <= j.K) {
    *stride = j.ldw * 2;
    return j.W + n * j.ldw + k0;
  }
  std::memset(buf, 0, kTileRows * kChunk * 2);
  const int64_t rows = std::max<int64_t>(0, std::min<int64_t>(kTileRows, j.N - n)), cols = std::min(kChunk, j.K - k0);
  for (int64_t r = 0; r < rows; r++) std::memcpy(buf + r * kChunk, j.W + (n + r) * j.ldw + k0, cols * 2);
  *stride = 64;
  return buf;
}

// out [16 n][16 m] -> C[m][n'] = alpha out[n'][m] + beta C[m][n'] for the valid rows and columns: the tile is
// transposed in registers (four shuffle stages), then each m row is one masked store of up to 16 n values
AVX512 void emit(const Job& j, const float* out, int64_t n0, int64_t m0) {
  if (n0 >= j.N || m0 >= j.M) return;
  const int64_t rows = std::min<int64_t>(16, j.N - n0), cols = std::min<int64_t>(16, j.M - m0);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_load_ps(out + 16 * i);
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 2; h++) {
    for (int i = 0; i < 4; i++) {
      t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
      t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
    }
  }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
  }
  const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
  const __m512 alpha = _mm512_set1_ps(j.alpha), beta = _mm512_set1_ps(j.beta);
  for (int64_t c = 0; c < cols; c++) {
    float* y = j.C + (m0 + c) * j.ldc + n0;
    __m512 v = _mm512_mul_ps(alpha, r[c]);
    if (j.beta != 0.0f) v = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask, y), v);
    _mm512_mask_storeu_ps(y, mask, v);
  }
}

// The blocks. Tile numbers must be literals (GCC's intrinsics paste them into the instruction), hence one
// function per shape. 2 x 2: accumulators 0-3 (W tile a, A tile b at 2a + b), W tiles 4-5, A tiles 6-7.
AMX void block22(const Job& j, int64_t n, int64_t mb) {
  alignas(64) uint16_t wbuf[2][kTileRows * kChunk];
  alignas(64) float out[kTileRows * 16];
  _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
  for (int64_t kc = 0; kc < j.p->kChunks; kc++) {
    int64_t s0 = 0, s1 = 0;
    const void* w0 = w_tile(j, n, kc, wbuf[0], &s0);
    const void* w1 = w_tile(j, n + 16, kc, wbuf[1], &s1);
    _tile_loadd(4, w0, s0);
    _tile_loadd(5, w1, s1);
    for (int part = 0; part < kParts; part++) {  // hi, mid, lo
      _tile_loadd(6, j.p->at(mb, kc, part), 64);
      _tile_loadd(7, j.p->at(mb + 1, kc, part), 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  const int64_t m0 = 16 * mb;
  _tile_stored(0, out, 64); emit(j, out, n, m0);
  _tile_stored(1, out, 64); emit(j, out, n, m0 + 16);
  _tile_stored(2, out, 64); emit(j, out, n + 16, m0);
  _tile_stored(3, out, 64); emit(j, out, n + 16, m0 + 16);
}

// 2 x 1 (the last odd column block): accumulators 0-1, W tiles 4-5, A tile 6
AMX void block21(const Job& j, int64_t n, int64_t mb) {
  alignas(64) uint16_t wbuf[2][kTileRows * kChunk];
  alignas(64) float out[kTileRows * 16];
  _tile_zero(0); _tile_zero(1);
  for (int64_t kc = 0; kc < j.p->kChunks; kc++) {
    int64_t s0 = 0, s1 = 0;
    const void* w0 = w_tile(j, n, kc, wbuf[0], &s0);
    const void* w1 = w_tile(j, n + 16, kc, wbuf[1], &s1);
    _tile_loadd(4, w0, s0);
    _tile_loadd(5, w1, s1);
    for (int part = 0; part < kParts; part++) {
      _tile_loadd(6, j.p->at(mb, kc, part), 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 5, 6);
    }
  }
  const int64_t m0 = 16 * mb;
  _tile_stored(0, out, 64); emit(j, out, n, m0);
  _tile_stored(1, out, 64); emit(j, out, n + 16, m0);
}

// 3 x 1 (M <= 16: one column block, three W tiles per step): accumulators 0-2, W tiles 3-5, A tile 6
AMX void block31(const Job& j, int64_t n) {
  alignas(64) uint16_t wbuf[3][kTileRows * kChunk];
  alignas(64) float out[kTileRows * 16];
  _tile_zero(0); _tile_zero(1); _tile_zero(2);
  for (int64_t kc = 0; kc < j.p->kChunks; kc++) {
    int64_t s0 = 0, s1 = 0, s2 = 0;
    const void* w0 = w_tile(j, n, kc, wbuf[0], &s0);
    const void* w1 = w_tile(j, n + 16, kc, wbuf[1], &s1);
    const void* w2 = w_tile(j, n + 32, kc, wbuf[2], &s2);
    _tile_loadd(3, w0, s0);
    _tile_loadd(4, w1, s1);
    _tile_loadd(5, w2, s2);
    for (int part = 0; part < kParts; part++) {
      _tile_loadd(6, j.p->at(0, kc, part), 64);
      _tile_dpbf16ps(0, 3, 6);
      _tile_dpbf16ps(1, 4, 6);
      _tile_dpbf16ps(2, 5, 6);
    }
  }
  _tile_stored(0, out, 64); emit(j, out, n, 0);
  _tile_stored(1, out, 64); emit(j, out, n + 16, 0);
  _tile_stored(2, out, 64); emit(j, out, n + 32, 0);
}

AMX void run_part(void* ctx, int part) {
  const Job& j = *static_cast<const Job*>(ctx);
  configure();
  const int64_t NT = j.p->mBlocks == 1 ? 3 : 2, step = 16 * NT;
  const int64_t blocks = (j.N + step - 1) / step;
  const int64_t b0 = blocks * part / j.parts, b1 = blocks * (part + 1) / j.parts;
  for (int64_t b = b0; b < b1; b++) {
    const int64_t n = b * step;
    if (NT == 3) {
      block31(j, n);
    } else {
      int64_t mb = 0;
      for (; mb + 2 <= j.p->mBlocks; mb += 2) block22(j, n, mb);
      if (mb < j.p->mBlocks) block21(j, n, mb);
    }
  }
}

}  // namespace

bool amx_available() { return available(); }
bool amx_enabled() { return available() && g_on.load(std::memory_order_relaxed); }
void set_amx(bool on) { g_on.store(on, std::memory_order_relaxed); }

void sgemm_bf16_amx(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const uint16_t* W,
                    int64_t ldw, float beta, float* C, int64_t ldc) {
  thread_local Packed p;
  pack(p, A, lda, M, K);
  Job j{&p, W, ldw, M, N, K, alpha, beta, C, ldc, 0};
  const int64_t step = p.mBlocks == 1 ? 48 : 32;
  j.parts = threads_for(N * K * M, (N + step - 1) / step);
  pool_run(j.parts, run_part, &j);
}

#else

bool amx_available() { return false; }
bool amx_enabled() { return false; }
void set_amx(bool) {}
void sgemm_bf16_amx(int64_t, int64_t, int64_t, float, const float*, int64_t, const uint16_t*, int64_t, float, float*,
                    int64_t) {}

#endif

}  // namespace moekit
