// AVX2 + FMA row kernels, compiled per function with __attribute__((target("avx2,fma"))) so the
// rest of the addon stays baseline x86-64; chosen at run time by __builtin_cpu_supports.
// Every function here is static and calls no inline/template code from headers (only
// intrinsics and libm's expf), so no AVX2-compiled copy of a shared inline function can leak
// into the scalar path. Peers: kernels_scalar.cc and src/tensor/ref/*.ts.
#include <cmath>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOEKIT_X86 1
#define AVX2 __attribute__((target("avx2,fma")))

namespace moekit {

// sum of squares of x[n] in double (4 doubles per lane group, two accumulators)
AVX2 static double sumsq_avx2(const float* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  }
  double t[4];
  _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
  double s = (t[0] + t[1]) + (t[2] + t[3]);
  for (; i < n; i++) s += static_cast<double>(x[i]) * x[i];
  return s;
}

AVX2 static void rmsnorm_row_avx2(float* out, const float* x, const float* w, int64_t dim,
                                  float eps) {
  const double ss = sumsq_avx2(x, dim);
  const float inv = static_cast<float>(1.0 / __builtin_sqrt(ss / static_cast<double>(dim) + eps));
  const __m256 vinv = _mm256_set1_ps(inv);
  int64_t i = 0;
  if (w) {
    for (; i + 8 <= dim; i += 8) {
      const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv);
      _mm256_storeu_ps(out + i, _mm256_mul_ps(v, _mm256_loadu_ps(w + i)));
    }
    for (; i < dim; i++) out[i] = x[i] * inv * w[i];
  } else {
    for (; i + 8 <= dim; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    for (; i < dim; i++) out[i] = x[i] * inv;
  }
}

AVX2 static void softmax_row_avx2(float* x, int64_t cols) {
  // max and a NaN flag in one pass (max_ps drops NaNs, the unordered compare catches them)
  __m256 vmax = _mm256_set1_ps(-INFINITY), vnan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= cols; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    vmax = _mm256_max_ps(vmax, v);
    vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  float m[8];
  _mm256_storeu_ps(m, vmax);
  float max = m[0];
  for (int j = 1; j < 8; j++) max = m[j] > max ? m[j] : max;
  bool nan = _mm256_movemask_ps(vnan) != 0;
  for (; i < cols; i++) {
    if (x[i] > max) max = x[i];
    if (x[i] != x[i]) nan = true;
  }
  if (nan) {
    for (int64_t c = 0; c < cols; c++) x[c] = NAN;
    return;
  }
  if (max == -INFINITY) {
    std::memset(x, 0, sizeof(float) * static_cast<size_t>(cols));
    return;
  }
  double sum = 0.0;
  for (int64_t c = 0; c < cols; c++) {  // exact expf: libm, one element at a time
    x[c] = expf(x[c] - max);
    sum += x[c];
  }
  const float inv = static_cast<float>(1.0 / sum);
  const __m256 vinv = _mm256_set1_ps(inv);
  i = 0;
  for (; i + 8 <= cols; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
  for (; i < cols; i++) x[i] *= inv;
}

AVX2 static void rope_half_row_avx2(float* x, const float* cos, const float* sin, int64_t half) {
  float* a = x;         // [half]
  float* b = x + half;  // [half]
  int64_t i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);
    const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
    _mm256_storeu_ps(a + i, _mm256_fmsub_ps(va, c, _mm256_mul_ps(vb, s)));  // a c - b s
    _mm256_storeu_ps(b + i, _mm256_fmadd_ps(va, s, _mm256_mul_ps(vb, c)));  // a s + b c
  }
  for (; i < half; i++) {
    const float va = a[i], vb = b[i];
    a[i] = va * cos[i] - vb * sin[i];
    b[i] = va * sin[i] + vb * cos[i];
  }
}

AVX2 static void rope_interleaved_row_avx2(float* x, const float* cos, const float* sin,
                                           int64_t half) {
  // 4 pairs per step: v = [a0 b0 a1 b1 a2 b2 a3 b3], cc = [c0 c0 c1 c1 ..], ss = [s0 s0 ..]
  // fmaddsub(v, cc, swap(v)·ss): even lanes a·c − b·s, odd lanes b·c + a·s.
  int64_t i = 0;
  for (; i + 4 <= half; i += 4) {
    const __m256 v = _mm256_loadu_ps(x + 2 * i);
    const __m128 c4 = _mm_loadu_ps(cos + i), s4 = _mm_loadu_ps(sin + i);
    const __m256 cc = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
    const __m256 ss = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
    const __m256 sw = _mm256_permute_ps(v, 0xB1);  // [b0 a0 b1 a1 ...]
    _mm256_storeu_ps(x + 2 * i, _mm256_fmaddsub_ps(v, cc, _mm256_mul_ps(sw, ss)));
  }
  for (; i < half; i++) {
    const float va = x[2 * i], vb = x[2 * i + 1];
    x[2 * i] = va * cos[i] - vb * sin[i];
    x[2 * i + 1] = va * sin[i] + vb * cos[i];
  }
}

const RowKernels kAvx2Kernels = {
    "avx2", softmax_row_avx2, rmsnorm_row_avx2, rope_half_row_avx2, rope_interleaved_row_avx2,
};

bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

}  // namespace moekit

#else  // not x86: the scalar kernels only

namespace moekit {
const RowKernels kAvx2Kernels = {"scalar", nullptr, nullptr, nullptr, nullptr};  // never selected
bool cpu_has_avx2_fma() { return false; }
}  // namespace moekit

#endif

namespace moekit {

static const RowKernels* g_active = nullptr;

const RowKernels& active_kernels() {
  if (!g_active) g_active = cpu_has_avx2_fma() ? &kAvx2Kernels : &kScalarKernels;
  return *g_active;
}

bool select_kernels(const char* which) {
  if (std::strcmp(which, "scalar") == 0) {
    g_active = &kScalarKernels;
  } else if (std::strcmp(which, "avx2") == 0) {
    if (!cpu_has_avx2_fma()) return false;
    g_active = &kAvx2Kernels;
  } else if (std::strcmp(which, "auto") == 0) {
    g_active = cpu_has_avx2_fma() ? &kAvx2Kernels : &kScalarKernels;
  } else {
    return false;
  }
  return true;
}

}  // namespace moekit
