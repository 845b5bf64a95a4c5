// Kernels over weights kept in memory as bfloat16 (raw bit patterns, uint16_t; f32 = bits << 16).
// Peers: src/tensor/ref/bf16.ts; test/kernels-bf16.test.ts holds these to it.
//
//  - bf16_to_f32: exact widening (integer shifts only, NaN payloads kept).
//  - sgemv_bf16:  hand-written row kernels, AVX2+FMA (8 x u16 -> zero-extend to 32 bits ->
//    shift left 16 -> f32 -> FMA into f32 lanes, horizontal sum at the end) or scalar, picked
//    with the row-kernel set (active_kernels(), so setSimd('scalar') selects the scalar path
//    here too). Decode is memory-bound, so above kThreadMinWork weights the rows are split
//    over a small persistent thread pool, up to the addon's thread count (MOEKIT_THREADS /
//    setThreads, the OpenBLAS count), one thread per kWorkPerThread weights.
//  - sgemm_bf16:  M = 1 is the GEMV. M >= kAmxMinM where the CPU has AMX: tiles (amx.cc). 2 <= M <= kSmallMaxM
//    (AVX2 only): a direct kernel reads
//    each W row once and multiplies it into all M rows of A through a 4 x 3 register tile
//    (prefill of a few tokens, MoE experts with few routed tokens; far faster than widening W,
//    which costs as much as the GEMM itself there). Otherwise W is widened in row panels
//    (kPanelBytes of f32, 128..512 rows) into a thread-local scratch buffer, and cblas_sgemm
//    writes each panel's own columns of C (so beta applies exactly once per output column).
//
// As in kernels_avx2.cc, the AVX2 functions are static, use intrinsics only and call no
// inline/template code from headers, so no AVX2-compiled copy of a shared inline function can
// leak into the scalar path; the pool and the dispatch are ordinary baseline code.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels.h"

namespace moekit {

namespace {

// ---- tuning ---------------------------------------------------------------------------------
constexpr int64_t kThreadMinWork = int64_t(1) << 17;  // N*K above this: use the pool
constexpr int64_t kWorkPerThread = int64_t(1) << 16;  // ... with one thread per 64K weights
constexpr int64_t kPanelBytes = int64_t(4) << 20;     // f32 panel of W for sgemm_bf16 (L2/L3)
constexpr int64_t kPanelMinRows = 128, kPanelMaxRows = 512;
constexpr int64_t kSmallMaxM = 64;  // sgemm_bf16: 2 <= M <= this reads W directly (AVX2)
// sgemm_bf16 on AMX from this many rows (scripts/native-check/run.sh on an Intel Xeon with AMX, the device host,
// N x K = 1024 x 2048, A in three bf16 parts: one thread ×1.02 the AVX2 small-M kernel's speed at M = 4, ×1.22 at
// 8, ×2.1 at 16, ×3.0 at 64; two threads ×0.96, ×1.04, ×1.8, ×3.1)
constexpr int64_t kAmxMinM = 8;
// sgemm_bf16 on AVX512-BF16 up to this many rows: none by default. On AMD EPYC (Zen 4, bench/gemm-paths.mjs, one
// thread) it ran at ×0.66-1.5 the AVX2 kernels' speed over M = 2..512, rounds A to 16 significant bits (the two
// bf16 parts: ~2e-6 of max |C| against the f32 paths' ~1e-7) and breaks the bit-for-bit agreement of f32 and bf16
// weights of equal value that the AVX2 kernels keep (their accumulation orders match). setAvx512(true, true) forces it.
constexpr int64_t kAvx512MaxM = 0;
constexpr int64_t kScratchMaxBytes = int64_t(64) << 20;  // cap for very long rows (huge K)

// ---- scalar variants ------------------------------------------------------------------------

inline float bf16_scalar(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

void to_f32_scalar(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const uint32_t u = static_cast<uint32_t>(src[i]) << 16;
    std::memcpy(dst + i, &u, sizeof u);
  }
}

// y[n] for n in [n0, n1): alpha * dot(W[n, :K], x) + beta * y[n] (beta = 0: y not read).
// Eight f32 partial sums per row, the same shape as the 8-lane AVX2 accumulator.
void rows_scalar(const uint16_t* W, int64_t ldw, int64_t K, const float* x, float alpha,
                 float beta, float* y, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n++) {
    const uint16_t* w = W + n * ldw;  // row n: [K]
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      for (int l = 0; l < 8; l++) acc[l] += bf16_scalar(w[k + l]) * x[k + l];
    }
    for (; k < K; k++) acc[k & 7] += bf16_scalar(w[k]) * x[k];
    const float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    y[n] = beta == 0.0f ? alpha * s : alpha * s + beta * y[n];
  }
}

// ---- AVX2 + FMA variants --------------------------------------------------------------------

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOEKIT_BF16_X86 1
#define AVX2 __attribute__((target("avx2,fma")))

// 8 bf16 at p -> 8 f32: zero-extend u16 -> u32, shift left 16, reinterpret
AVX2 static inline __m256 load8_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX2 static inline float hsum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// one bf16 -> f32 without memcpy (intrinsics only in AVX2 code)
AVX2 static inline float bf16_avx2(uint16_t b) {
  return _mm_cvtss_f32(
      _mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(static_cast<uint32_t>(b) << 16))));
}

AVX2 static void to_f32_avx2(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(dst + i, load8_bf16(src + i));
    _mm256_storeu_ps(dst + i + 8, load8_bf16(src + i + 8));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8_bf16(src + i));
  for (; i < n; i++) dst[i] = bf16_avx2(src[i]);
}

// tail of one row (k from k0 to K) folded into a lane accumulator's horizontal sum
AVX2 static inline float finish_row(__m256 acc, const uint16_t* w, const float* x, int64_t k0,
                                    int64_t K) {
  float s = hsum8(acc);
  for (int64_t k = k0; k < K; k++) s += bf16_avx2(w[k]) * x[k];
  return s;
}

// As rows_scalar. Four rows at a time share each load of x; two accumulators per row (16
// weights per step) keep eight independent FMA chains in flight.
AVX2 static void rows_avx2(const uint16_t* W, int64_t ldw, int64_t K, const float* x,
                           float alpha, float beta, float* y, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const uint16_t* w0 = W + n * ldw;  // rows n..n+3: [K] each
    const uint16_t* w1 = w0 + ldw;
    const uint16_t* w2 = w1 + ldw;
    const uint16_t* w3 = w2 + ldw;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    __m256 b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    // Short rows (K <= 1024, <= 2 KiB each): the hardware prefetcher does not keep four short
    // streams busy, so prefetch the next group of four rows, one cache line of each per 64
    // bytes of progress here (measured: +50-60 % at K = 512..1024, no change above).
    const bool prefetch = K <= 1024 && n + 8 <= n1;
    const char* next = reinterpret_cast<const char*>(w0 + 4 * ldw);
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      if (prefetch && (k & 31) == 0) {
        const char* p = next + 2 * k;
        _mm_prefetch(p, _MM_HINT_T0);
        _mm_prefetch(p + 2 * ldw, _MM_HINT_T0);
        _mm_prefetch(p + 4 * ldw, _MM_HINT_T0);
        _mm_prefetch(p + 6 * ldw, _MM_HINT_T0);
      }
      const __m256 xa = _mm256_loadu_ps(x + k), xb = _mm256_loadu_ps(x + k + 8);
      a0 = _mm256_fmadd_ps(load8_bf16(w0 + k), xa, a0);
      b0 = _mm256_fmadd_ps(load8_bf16(w0 + k + 8), xb, b0);
      a1 = _mm256_fmadd_ps(load8_bf16(w1 + k), xa, a1);
      b1 = _mm256_fmadd_ps(load8_bf16(w1 + k + 8), xb, b1);
      a2 = _mm256_fmadd_ps(load8_bf16(w2 + k), xa, a2);
      b2 = _mm256_fmadd_ps(load8_bf16(w2 + k + 8), xb, b2);
      a3 = _mm256_fmadd_ps(load8_bf16(w3 + k), xa, a3);
      b3 = _mm256_fmadd_ps(load8_bf16(w3 + k + 8), xb, b3);
    }
    if (k + 8 <= K) {
      const __m256 xa = _mm256_loadu_ps(x + k);
      a0 = _mm256_fmadd_ps(load8_bf16(w0 + k), xa, a0);
      a1 = _mm256_fmadd_ps(load8_bf16(w1 + k), xa, a1);
      a2 = _mm256_fmadd_ps(load8_bf16(w2 + k), xa, a2);
      a3 = _mm256_fmadd_ps(load8_bf16(w3 + k), xa, a3);
      k += 8;
    }
    const float s[4] = {
        finish_row(_mm256_add_ps(a0, b0), w0, x, k, K),
        finish_row(_mm256_add_ps(a1, b1), w1, x, k, K),
        finish_row(_mm256_add_ps(a2, b2), w2, x, k, K),
        finish_row(_mm256_add_ps(a3, b3), w3, x, k, K),
    };
    for (int r = 0; r < 4; r++) {
      y[n + r] = beta == 0.0f ? alpha * s[r] : alpha * s[r] + beta * y[n + r];
    }
  }
  for (; n < n1; n++) {
    const uint16_t* w = W + n * ldw;
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      a = _mm256_fmadd_ps(load8_bf16(w + k), _mm256_loadu_ps(x + k), a);
      b = _mm256_fmadd_ps(load8_bf16(w + k + 8), _mm256_loadu_ps(x + k + 8), b);
    }
    if (k + 8 <= K) {
      a = _mm256_fmadd_ps(load8_bf16(w + k), _mm256_loadu_ps(x + k), a);
      k += 8;
    }
    const float s = finish_row(_mm256_add_ps(a, b), w, x, k, K);
    y[n] = beta == 0.0f ? alpha * s : alpha * s + beta * y[n];
  }
}

// Small-M linear layer, C[m, n] = alpha * dot(A[m, :K], W[n, :K]) + beta * C[m, n] for all
// m < M and n in [n0, n1), reading W once: for each pair of W rows (kept in L1), every block of
// up to 4 rows of A (kept in L2) runs through an MB x NB register tile of f32 accumulators.
template <int MB, int NB>
AVX2 static void tile_avx2(const uint16_t* w, int64_t ldw, int64_t K, const float* a,
                           int64_t lda, float alpha, float beta, float* c, int64_t ldc) {
  __m256 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NB];
    for (int j = 0; j < NB; j++) wv[j] = load8_bf16(w + j * ldw + k);
    for (int i = 0; i < MB; i++) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + k);
      for (int j = 0; j < NB; j++) acc[i][j] = _mm256_fmadd_ps(wv[j], av, acc[i][j]);
    }
  }
  for (int i = 0; i < MB; i++) {
    for (int j = 0; j < NB; j++) {
      float s = hsum8(acc[i][j]);
      for (int64_t t = k; t < K; t++) s += bf16_avx2(w[j * ldw + t]) * a[i * lda + t];
      float* out = c + i * ldc + j;
      *out = beta == 0.0f ? alpha * s : alpha * s + beta * *out;
    }
  }
}

template <int NB>
AVX2 static void tiles_avx2(const uint16_t* w, int64_t ldw, int64_t K, const float* A,
                            int64_t lda, int64_t M, float alpha, float beta, float* c,
                            int64_t ldc) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile_avx2<4, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc);
  switch (M - m) {
    case 3: tile_avx2<3, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc); break;
    case 2: tile_avx2<2, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc); break;
    case 1: tile_avx2<1, NB>(w, ldw, K, A + m * lda, lda, alpha, beta, c + m * ldc, ldc); break;
    default: break;
  }
}

AVX2 static void small_m_avx2(const uint16_t* W, int64_t ldw, int64_t K, const float* A,
                              int64_t lda, int64_t M, float alpha, float beta, float* C,
                              int64_t ldc, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 3 <= n1; n += 3) tiles_avx2<3>(W + n * ldw, ldw, K, A, lda, M, alpha, beta, C + n, ldc);
  if (n1 - n == 2) tiles_avx2<2>(W + n * ldw, ldw, K, A, lda, M, alpha, beta, C + n, ldc);
  if (n1 - n == 1) tiles_avx2<1>(W + n * ldw, ldw, K, A, lda, M, alpha, beta, C + n, ldc);
}
#endif

using RowsFn = void (*)(const uint16_t*, int64_t, int64_t, const float*, float, float, float*,
                        int64_t, int64_t);
using ToF32Fn = void (*)(float*, const uint16_t*, int64_t);

// the variant matching the row-kernel set in use (setSimd switches both)
bool use_avx2() {
#ifdef MOEKIT_BF16_X86
  return &active_kernels() == &kAvx2Kernels;
#else
  return false;
#endif
}
RowsFn rows_fn() {
#ifdef MOEKIT_BF16_X86
  if (use_avx2()) return rows_avx2;
#endif
  return rows_scalar;
}
ToF32Fn to_f32_fn() {
#ifdef MOEKIT_BF16_X86
  if (use_avx2()) return to_f32_avx2;
#endif
  return to_f32_scalar;
}

// ---- a tiny persistent thread pool ------------------------------------------------------------
// run(parts, fn, ctx) calls fn(ctx, i) for i in [0, parts): part 0 on the caller, part i on
// worker i-1 (workers start on first use and are kept). Decode calls GEMVs back to back, so a
// worker spins (pause, then sched_yield so it never starves another thread) for up to kSpin
// after a job before parking on its condition variable: a wake-up then costs well under a
// microsecond instead of a futex round trip. One job at a time: a second caller (another
// worker_thread's isolate) that finds the pool busy runs all parts itself. The pool is never
// destroyed: its threads are detached and end with the process.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class Pool {
 public:
  using Fn = void (*)(void* ctx, int part);

  void run(int parts, Fn fn, void* ctx) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (parts <= 1 || !busy.owns_lock()) {
      for (int i = 0; i < parts; i++) fn(ctx, i);
      return;
    }
    while (static_cast<int>(workers_.size()) < parts - 1) {
      workers_.push_back(std::make_unique<Worker>());
      Worker* w = workers_.back().get();
      const int part = static_cast<int>(workers_.size());
      std::thread([this, w, part] { loop(w, part); }).detach();
    }
    fn_ = fn;  // published to the workers by the release store in post()
    ctx_ = ctx;
    pending_.store(parts - 1, std::memory_order_relaxed);
    const uint64_t g = ++gen_;
    for (int i = 0; i < parts - 1; i++) workers_[i]->post(g);
    fn(ctx, 0);
    for (int i = 1; pending_.load(std::memory_order_acquire) != 0; i++) {
      if (i % 64) cpu_relax(); else std::this_thread::yield();
    }
  }

 private:
  static constexpr std::chrono::microseconds kSpin{200};

  struct Worker {
    std::atomic<uint64_t> go{0};  // the job generation to run
    std::mutex m;
    std::condition_variable cv;
    bool sleeping = false;  // guarded by m
    void post(uint64_t g) {
      go.store(g, std::memory_order_release);
      std::lock_guard<std::mutex> l(m);
      if (sleeping) cv.notify_one();
    }
    uint64_t wait(uint64_t seen) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 1;; i++) {
        const uint64_t g = go.load(std::memory_order_acquire);
        if (g != seen) return g;
        if (i % 64) {
          cpu_relax();
          continue;
        }
        std::this_thread::yield();
        if (std::chrono::steady_clock::now() - t0 > kSpin) break;
      }
      std::unique_lock<std::mutex> l(m);
      sleeping = true;
      cv.wait(l, [&] { return go.load(std::memory_order_acquire) != seen; });
      sleeping = false;
      return go.load(std::memory_order_acquire);
    }
  };

  void loop(Worker* w, int part) {
    for (uint64_t seen = 0;;) {
      seen = w->wait(seen);
      fn_(ctx_, part);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::mutex run_mu_;  // held for a whole job; everything below is written only under it
  std::vector<std::unique_ptr<Worker>> workers_;
  uint64_t gen_ = 0;
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<int> pending_{0};
};

Pool& pool() {
  static Pool* p = new Pool();  // intentionally leaked (see above)
  return *p;
}

}  // namespace

void pool_run(int parts, void (*fn)(void* ctx, int part), void* ctx) { pool().run(parts, fn, ctx); }

// threads for `work` weights: 1 at or below kThreadMinWork, else one per kWorkPerThread, at
// most the addon's thread count and at most `items` (rows)
int threads_for(int64_t work, int64_t items) {
  if (work <= kThreadMinWork) return 1;
  int64_t t = std::min<int64_t>(work / kWorkPerThread, blas_get_threads());
  t = std::min<int64_t>(t, items);
  return static_cast<int>(std::max<int64_t>(t, 1));
}

namespace {

// rows [0, N) split into `parts` contiguous ranges, multiples of 4 rows where possible
void split(int64_t N, int parts, int part, int64_t* n0, int64_t* n1) {
  const int64_t quads = (N + 3) / 4;
  *n0 = std::min(N, quads * part / parts * 4);
  *n1 = std::min(N, quads * (part + 1) / parts * 4);
}

struct GemvJob {
  RowsFn rows;
  const uint16_t* W;
  int64_t ldw, N, K;
  const float* x;
  float alpha, beta;
  float* y;
  int parts;
};

void gemv_part(void* ctx, int part) {
  const GemvJob& j = *static_cast<const GemvJob*>(ctx);
  int64_t n0, n1;
  split(j.N, j.parts, part, &n0, &n1);
  if (n0 < n1) j.rows(j.W, j.ldw, j.K, j.x, j.alpha, j.beta, j.y, n0, n1);
}

struct SmallMJob {
  const uint16_t* W;
  int64_t ldw, N, K;
  const float* A;
  int64_t lda, M;
  float alpha, beta;
  float* C;
  int64_t ldc;
  int parts;
};

#ifdef MOEKIT_BF16_X86
void small_m_part(void* ctx, int part) {
  const SmallMJob& j = *static_cast<const SmallMJob*>(ctx);
  int64_t n0, n1;
  split(j.N, j.parts, part, &n0, &n1);
  if (n0 < n1) small_m_avx2(j.W, j.ldw, j.K, j.A, j.lda, j.M, j.alpha, j.beta, j.C, j.ldc, n0, n1);
}
#endif

// dst[rows, K] (contiguous) = widened W[rows, K] (row stride ldw)
struct ConvJob {
  ToF32Fn to_f32;
  float* dst;
  const uint16_t* src;
  int64_t ldw, rows, K;
  int parts;
};

void conv_part(void* ctx, int part) {
  const ConvJob& j = *static_cast<const ConvJob*>(ctx);
  int64_t r0, r1;
  split(j.rows, j.parts, part, &r0, &r1);
  if (j.ldw == j.K) {  // contiguous: one run
    j.to_f32(j.dst + r0 * j.K, j.src + r0 * j.K, (r1 - r0) * j.K);
  } else {
    for (int64_t r = r0; r < r1; r++) j.to_f32(j.dst + r * j.K, j.src + r * j.ldw, j.K);
  }
}

struct FlatConvJob {
  ToF32Fn to_f32;
  float* dst;
  const uint16_t* src;
  int64_t n;
  int parts;
};

void flat_conv_part(void* ctx, int part) {
  const FlatConvJob& j = *static_cast<const FlatConvJob*>(ctx);
  const int64_t blocks = (j.n + 15) / 16;  // split on 16-element (64-byte output) boundaries
  const int64_t i0 = std::min(j.n, blocks * part / j.parts * 16);
  const int64_t i1 = std::min(j.n, blocks * (part + 1) / j.parts * 16);
  if (i0 < i1) j.to_f32(j.dst + i0, j.src + i0, i1 - i0);
}

// y[N] = beta * y (beta = 0 writes zeros without reading)
void scale(float* y, int64_t N, float beta) {
  if (beta == 0.0f) {
    std::memset(y, 0, sizeof(float) * static_cast<size_t>(N));
  } else if (beta != 1.0f) {
    for (int64_t i = 0; i < N; i++) y[i] *= beta;
  }
}

// rows of W per sgemm panel for row length K
int64_t panel_rows(int64_t K) {
  const int64_t row = 4 * std::max<int64_t>(K, 1);
  int64_t p = std::clamp(kPanelBytes / row, kPanelMinRows, kPanelMaxRows);
  p = std::min(p, std::max<int64_t>(kScratchMaxBytes / row, 16));
  return std::max<int64_t>(p / 16 * 16, 16);
}

}  // namespace

void bf16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  FlatConvJob j{to_f32_fn(), dst, src, n, 0};
  j.parts = threads_for(n, (n + 15) / 16);
  pool().run(j.parts, flat_conv_part, &j);
}

void sgemv_bf16(int64_t N, int64_t K, float alpha, const uint16_t* W, int64_t ldw,
                const float* x, float beta, float* y) {
  if (N == 0) return;
  if (K == 0 || alpha == 0.0f) {  // W and x are not read
    scale(y, N, beta);
    return;
  }
  GemvJob j{rows_fn(), W, ldw, N, K, x, alpha, beta, y, 0};
  j.parts = threads_for(N * K, (N + 3) / 4);
  pool().run(j.parts, gemv_part, &j);
}

void sgemm_bf16(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const uint16_t* W, int64_t ldw, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {  // A and W are not read
    for (int64_t i = 0; i < M; i++) scale(C + i * ldc, N, beta);
    return;
  }
  if (M == 1) {
    sgemv_bf16(N, K, alpha, W, ldw, A, beta, C);
    return;
  }
#ifdef MOEKIT_BF16_X86
  if (M >= kAmxMinM && use_avx2() && amx_enabled()) {  // AMX tiles: W as stored, A as two bf16 parts (amx.cc)
    sgemm_bf16_amx(M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
    return;
  }
  if ((M <= kAvx512MaxM || avx512_forced()) && use_avx2() && avx512_allowed() && avx512_bf16_available()) {  // VDPBF16PS (bf16_avx512.cc)
    sgemm_bf16_avx512(M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
    return;
  }
  if (M <= kSmallMaxM && use_avx2()) {  // read W once, no scratch, no BLAS call
    SmallMJob j{W, ldw, N, K, A, lda, M, alpha, beta, C, ldc, 0};
    j.parts = threads_for(N * K * M, (N + 3) / 4);
    pool().run(j.parts, small_m_part, &j);
    return;
  }
#endif
  // NaN-safe beta = 0 independent of the BLAS version (as sgemm in gemm.cc)
  if (beta == 0.0f) {
    for (int64_t i = 0; i < M; i++) scale(C + i * ldc, N, 0.0f);
  }
  const int64_t P = std::min(panel_rows(K), N);
  thread_local std::vector<float> scratch;  // [P, K] widened panel, kept between calls
  if (scratch.size() < static_cast<size_t>(P * K)) {
    scratch.clear();
    scratch.shrink_to_fit();
    scratch.resize(static_cast<size_t>(P * K));
  }
  const ToF32Fn to_f32 = to_f32_fn();
  for (int64_t j0 = 0; j0 < N; j0 += P) {
    const int64_t p = std::min(P, N - j0);  // panel: rows [j0, j0 + p) of W = columns of C
    ConvJob cj{to_f32, scratch.data(), W + j0 * ldw, ldw, p, K, 0};
    cj.parts = threads_for(p * K, (p + 3) / 4);
    pool().run(cj.parts, conv_part, &cj);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(M),
                static_cast<blasint>(p), static_cast<blasint>(K), alpha, A,
                static_cast<blasint>(lda), scratch.data(), static_cast<blasint>(K), beta,
                C + j0, static_cast<blasint>(ldc));
  }
}

void parallel_run(int parts, void (*fn)(void* ctx, int part), void* ctx) { pool().run(parts, fn, ctx); }

}  // namespace moekit
