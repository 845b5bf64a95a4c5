// Training kernels: the element-wise backward passes, the MoE dispatch row moves and AdamW, written to compute
// exactly what their TypeScript references (src/tensor/ref/train.ts) compute: float64 arithmetic in the same order,
// one rounding to float32 per stored value, and V8's exp (fdlibm) for the sigmoid, so the trainer's numbers do not
// depend on which implementation runs. This file is compiled with the baseline x86-64 flags only (no FMA, so no
// contraction of a·b + c; the AVX2 lanes of the SwiGLU backward are compiled for avx2 without fma) and never with
// -ffast-math: the reductions stay sequential.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOEKIT_TRAIN_AVX2 1
#endif

namespace moekit {

namespace {

// fdlibm's e_exp.c as V8 carries it (src/base/ieee754.cc), so that sigmoid(x) here is bit for bit Math.exp's
const double kHalf[2] = {0.5, -0.5};
const double kLn2Hi[2] = {6.93147180369123816490e-01, -6.93147180369123816490e-01};
const double kLn2Lo[2] = {1.90821492927058770002e-10, -1.90821492927058770002e-10};
const double kInvLn2 = 1.44269504088896338700e+00;
const double kP1 = 1.66666666666666019037e-01, kP2 = -2.77777777770155933842e-03;
const double kP3 = 6.61375632143793436117e-05, kP4 = -1.65339022054652515390e-06;
const double kP5 = 4.13813679705723846039e-08;
const double kE = 2.718281828459045;
const double kHuge = 1.0e+300, kTwom1000 = 9.33263618503218878990e-302;
const double kOThreshold = 7.09782712893383973096e+02, kUThreshold = -7.45133219101941108420e+02;

inline uint32_t high_word(double x) { uint64_t b; std::memcpy(&b, &x, 8); return static_cast<uint32_t>(b >> 32); }
inline uint32_t low_word(double x) { uint64_t b; std::memcpy(&b, &x, 8); return static_cast<uint32_t>(b); }
inline double from_words(uint32_t hi, uint32_t lo) {
  const uint64_t b = (static_cast<uint64_t>(hi) << 32) | lo;
  double x; std::memcpy(&x, &b, 8); return x;
}

double fdlibm_exp(double x) {
  double y, hi = 0, lo = 0, c, t, twopk;
  int32_t k = 0;
  uint32_t hx = high_word(x);
  const int32_t xsb = (hx >> 31) & 1;
  hx &= 0x7fffffff;
  if (hx >= 0x40862E42) {  // |x| >= 709.78...
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | low_word(x)) != 0) return x + x;  // NaN
      return xsb == 0 ? x : 0.0;  // exp(+-inf) = {inf, 0}
    }
    if (x > kOThreshold) return kHuge * kHuge;  // overflow
    if (x < kUThreshold) return kTwom1000 * kTwom1000;  // underflow
  }
  if (hx > 0x3fd62e42) {  // |x| > 0.5 ln2
    if (hx < 0x3FF0A2B2) {  // and |x| < 1.5 ln2
      if (x == 1.0) return kE;
      hi = x - kLn2Hi[xsb];
      lo = kLn2Lo[xsb];
      k = 1 - xsb - xsb;
    } else {
      k = static_cast<int32_t>(kInvLn2 * x + kHalf[xsb]);
      t = k;
      hi = x - t * kLn2Hi[0];
      lo = t * kLn2Lo[0];
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {  // |x| < 2**-28
    if (kHuge + x > 1.0) return 1.0 + x;
  } else {
    k = 0;
  }
  t = x * x;
  if (k >= -1021) twopk = from_words(0x3ff00000 + (static_cast<uint32_t>(k) << 20), 0);
  else twopk = from_words(0x3ff00000 + (static_cast<uint32_t>(k + 1000) << 20), 0);
  c = x - t * (kP1 + t * (kP2 + t * (kP3 + t * (kP4 + t * kP5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * 8.98846567431158e307;  // 0x1p1023
    return y * twopk;
  }
  return y * twopk * kTwom1000;
}

}  // namespace

double js_exp(double x) { return fdlibm_exp(x); }

namespace {
// rstd of one row from its float64 sum of squares, rounded as the reference does (f32 at each step)
inline double rstd_of(double ss, int64_t dim, double eps) {
  const float ms = static_cast<float>(ss / static_cast<double>(dim));
  return static_cast<float>(1 / std::sqrt(static_cast<double>(static_cast<float>(ms + eps))));
}
}  // namespace

void rmsnorm_backward(float* dx, const float* dy, const float* x, const float* w, float* dw, int64_t rows,
                      int64_t dim, double eps) {
  int64_t r0 = 0;
  {
    // four rows at a time: each row's sums run in its own order (four independent chains) and the rows then update
    // dx and dw one after the other, so every value is the one the row-by-row loop below computes
    for (; r0 + 4 <= rows; r0 += 4) {
      const float *x0 = x + r0 * dim, *x1 = x0 + dim, *x2 = x1 + dim, *x3 = x2 + dim;
      const float *d0 = dy + r0 * dim, *d1 = d0 + dim, *d2 = d1 + dim, *d3 = d2 + dim;
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t j = 0; j < dim; j++) {
        s0 += static_cast<double>(x0[j]) * x0[j]; s1 += static_cast<double>(x1[j]) * x1[j];
        s2 += static_cast<double>(x2[j]) * x2[j]; s3 += static_cast<double>(x3[j]) * x3[j];
      }
      const double q0 = rstd_of(s0, dim, eps), q1 = rstd_of(s1, dim, eps), q2 = rstd_of(s2, dim, eps), q3 = rstd_of(s3, dim, eps);
      double t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (int64_t j = 0; j < dim; j++) {
        const double wj = w ? w[j] : 1.0;
        t0 += static_cast<double>(d0[j]) * wj * x0[j]; t1 += static_cast<double>(d1[j]) * wj * x1[j];
        t2 += static_cast<double>(d2[j]) * wj * x2[j]; t3 += static_cast<double>(d3[j]) * wj * x3[j];
      }
      const double c[4] = {(t0 * q0 * q0 * q0) / static_cast<double>(dim), (t1 * q1 * q1 * q1) / static_cast<double>(dim),
                           (t2 * q2 * q2 * q2) / static_cast<double>(dim), (t3 * q3 * q3 * q3) / static_cast<double>(dim)};
      const double q[4] = {q0, q1, q2, q3};
      for (int i = 0; i < 4; i++) {
        const int64_t o = (r0 + i) * dim;
        for (int64_t j = 0; j < dim; j++) {
          dx[o + j] = static_cast<float>(dx[o + j] + (q[i] * dy[o + j] * (w ? w[j] : 1.0) - x[o + j] * c[i]));
          if (dw) dw[j] = static_cast<float>(dw[j] + static_cast<double>(dy[o + j]) * x[o + j] * q[i]);
        }
      }
    }
  }
  for (int64_t r = r0; r < rows; r++) {
    const int64_t o = r * dim;
    double ss = 0;
    for (int64_t j = 0; j < dim; j++) ss += static_cast<double>(x[o + j]) * x[o + j];
    const float ms = static_cast<float>(ss / static_cast<double>(dim));
    const double rs = static_cast<float>(1 / std::sqrt(static_cast<double>(static_cast<float>(ms + eps))));
    double dot = 0;
    for (int64_t j = 0; j < dim; j++) dot += static_cast<double>(dy[o + j]) * (w ? w[j] : 1.0) * x[o + j];
    const double c = (dot * rs * rs * rs) / static_cast<double>(dim);
    for (int64_t j = 0; j < dim; j++) {
      dx[o + j] = static_cast<float>(dx[o + j] + (rs * dy[o + j] * (w ? w[j] : 1.0) - x[o + j] * c));
      if (dw) dw[j] = static_cast<float>(dw[j] + static_cast<double>(dy[o + j]) * x[o + j] * rs);
    }
  }
}

#ifdef MOEKIT_TRAIN_AVX2
// four lanes of swiglu_backward: fdlibm's exp on its general path (k != 0: 0.5 ln2 < |x| < 700) and its k = 0 path
// (2^-28 <= |x| <= 0.5 ln2), the same IEEE operations in the same order as the scalar code, lane by lane (AVX2 without
// FMA, so nothing is contracted). Returns false, writing nothing, when a lane needs another path (tiny, huge, NaN,
// x = 1), which the caller then runs scalar.
__attribute__((target("avx2"))) bool swiglu_backward4(float* dg, float* du, const float* da, const float* g,
                                                      const float* u) {
  const __m256d gd = _mm256_cvtps_pd(_mm_loadu_ps(g));
  const __m256d x = _mm256_sub_pd(_mm256_setzero_pd(), gd);  // exp(-g)
  const __m256d ax = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
  // every lane inside [2^-28, 700], and no x = 1 (fdlibm returns E there)
  const __m256d ok = _mm256_and_pd(_mm256_cmp_pd(ax, _mm256_set1_pd(3.7252902984619140625e-09), _CMP_GE_OQ),
                                   _mm256_cmp_pd(ax, _mm256_set1_pd(700.0), _CMP_LT_OQ));
  const __m256d one = _mm256_set1_pd(1.0);
  if (_mm256_movemask_pd(ok) != 0xf || _mm256_movemask_pd(_mm256_cmp_pd(x, one, _CMP_EQ_OQ)) != 0) return false;
  // k = 0 where the high word of |x| <= 0x3fd62e42, i.e. |x| < 0x3fd62e4300000000 as a double
  const __m256d kzero = _mm256_cmp_pd(ax, _mm256_castsi256_pd(_mm256_set1_epi64x(0x3fd62e4300000000LL)), _CMP_LT_OQ);
  const __m256d neg = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ);
  const __m256d half = _mm256_blendv_pd(_mm256_set1_pd(0.5), _mm256_set1_pd(-0.5), neg);
  const __m128i k32 = _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(kInvLn2), x), half));
  const __m256d t = _mm256_cvtepi32_pd(k32);
  const __m256d hi = _mm256_sub_pd(x, _mm256_mul_pd(t, _mm256_set1_pd(kLn2Hi[0])));
  const __m256d lo = _mm256_mul_pd(t, _mm256_set1_pd(kLn2Lo[0]));
  const __m256d r = _mm256_blendv_pd(_mm256_sub_pd(hi, lo), x, kzero);
  const __m256d tt = _mm256_mul_pd(r, r);
  __m256d c = _mm256_add_pd(_mm256_set1_pd(kP4), _mm256_mul_pd(tt, _mm256_set1_pd(kP5)));
  c = _mm256_add_pd(_mm256_set1_pd(kP3), _mm256_mul_pd(tt, c));
  c = _mm256_add_pd(_mm256_set1_pd(kP2), _mm256_mul_pd(tt, c));
  c = _mm256_add_pd(_mm256_set1_pd(kP1), _mm256_mul_pd(tt, c));
  c = _mm256_sub_pd(r, _mm256_mul_pd(tt, c));
  const __m256d xc = _mm256_mul_pd(r, c);
  const __m256d two = _mm256_set1_pd(2.0);
  // k = 0: 1 - ((x c) / (c - 2) - x);  else (1 - ((lo - (x c) / (2 - c)) - hi)) · 2^k
  const __m256d e0 = _mm256_sub_pd(one, _mm256_sub_pd(_mm256_div_pd(xc, _mm256_sub_pd(c, two)), r));
  const __m256d y = _mm256_sub_pd(one, _mm256_sub_pd(_mm256_sub_pd(lo, _mm256_div_pd(xc, _mm256_sub_pd(two, c))), hi));
  const __m256i k64 = _mm256_cvtepi32_epi64(k32);
  const __m256d twopk = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(k64, _mm256_set1_epi64x(1023)), 52));
  const __m256d e = _mm256_blendv_pd(_mm256_mul_pd(y, twopk), e0, kzero);
  const __m256d sg = _mm256_div_pd(one, _mm256_add_pd(one, e));
  const __m256d dad = _mm256_cvtps_pd(_mm_loadu_ps(da)), ud = _mm256_cvtps_pd(_mm_loadu_ps(u));
  const __m256d duv = _mm256_mul_pd(_mm256_mul_pd(dad, gd), sg);
  const __m256d dgv = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(dad, ud), sg),
                                    _mm256_add_pd(one, _mm256_mul_pd(gd, _mm256_sub_pd(one, sg))));
  _mm_storeu_ps(du, _mm256_cvtpd_ps(duv));
  _mm_storeu_ps(dg, _mm256_cvtpd_ps(dgv));
  return true;
}
#endif

void swiglu_backward(float* dg, float* du, const float* da, const float* g, const float* u, int64_t n) {
  int64_t i0 = 0;
#ifdef MOEKIT_TRAIN_AVX2
  if (cpu_has_avx2_fma()) {
    for (; i0 + 4 <= n; i0 += 4) {
      if (swiglu_backward4(dg + i0, du + i0, da + i0, g + i0, u + i0)) continue;
      for (int64_t i = i0; i < i0 + 4; i++) {
        const double gi = g[i];
        const double sg = 1 / (1 + fdlibm_exp(-gi));
        du[i] = static_cast<float>(static_cast<double>(da[i]) * gi * sg);
        dg[i] = static_cast<float>(static_cast<double>(da[i]) * u[i] * sg * (1 + gi * (1 - sg)));
      }
    }
  }
#endif
  for (int64_t i = i0; i < n; i++) {
    const double gi = g[i];
    const double sg = 1 / (1 + fdlibm_exp(-gi));
    du[i] = static_cast<float>(static_cast<double>(da[i]) * gi * sg);
    dg[i] = static_cast<float>(static_cast<double>(da[i]) * u[i] * sg * (1 + gi * (1 - sg)));
  }
}

void softmax_backward(float* dp, const float* p, int64_t rows, int64_t n, int64_t ld) {
  for (int64_t t = 0; t < rows; t++) {
    float* d = dp + t * ld;
    const float* q = p + t * ld;
    double dot = 0;
    for (int64_t j = 0; j < n; j++) dot += static_cast<double>(q[j]) * d[j];
    for (int64_t j = 0; j < n; j++) d[j] = static_cast<float>(q[j] * (d[j] - dot));
  }
}

#ifdef MOEKIT_TRAIN_AVX2
// four lanes at a time of the scalar loop below: the same float64 operations, float32 stores (AVX2, no FMA)
__attribute__((target("avx2"))) int64_t adamw_avx2(float* p, const float* g, float* m, float* v, int64_t n,
                                                   double b1, double b2, double step_size, double bc2, double eps,
                                                   double wd) {
  const __m256d vb1 = _mm256_set1_pd(b1), vb2 = _mm256_set1_pd(b2), c1 = _mm256_set1_pd(1 - b1);
  const __m256d c2 = _mm256_set1_pd(1 - b2), vs = _mm256_set1_pd(step_size), vbc2 = _mm256_set1_pd(bc2);
  const __m256d veps = _mm256_set1_pd(eps), vwd = _mm256_set1_pd(wd);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 pf = _mm_loadu_ps(p + i);
    if (wd != 1) pf = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(pf), vwd));
    const __m256d gd = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
    const __m128 mf = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(vb1, _mm256_cvtps_pd(_mm_loadu_ps(m + i))),
                                                    _mm256_mul_pd(c1, gd)));
    const __m128 vf = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(vb2, _mm256_cvtps_pd(_mm_loadu_ps(v + i))),
                                                    _mm256_mul_pd(_mm256_mul_pd(c2, gd), gd)));
    _mm_storeu_ps(m + i, mf);
    _mm_storeu_ps(v + i, vf);
    const __m256d den = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(_mm256_cvtps_pd(vf)), vbc2), veps);
    const __m256d upd = _mm256_div_pd(_mm256_mul_pd(vs, _mm256_cvtps_pd(mf)), den);
    _mm_storeu_ps(p + i, _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_cvtps_pd(pf), upd)));
  }
  return i;
}
#endif

void adamw(float* p, const float* g, float* m, float* v, int64_t n, double b1, double b2, double step_size,
           double bc2, double eps, double wd) {
  int64_t i0 = 0;
#ifdef MOEKIT_TRAIN_AVX2
  if (cpu_has_avx2_fma()) i0 = adamw_avx2(p, g, m, v, n, b1, b2, step_size, bc2, eps, wd);
#endif
  for (int64_t i = i0; i < n; i++) {
    if (wd != 1) p[i] = static_cast<float>(p[i] * wd);
    m[i] = static_cast<float>(b1 * m[i] + (1 - b1) * g[i]);
    v[i] = static_cast<float>(b2 * v[i] + (1 - b2) * g[i] * g[i]);
    p[i] = static_cast<float>(p[i] - (step_size * m[i]) / (std::sqrt(static_cast<double>(v[i])) / bc2 + eps));
  }
}

void add_to(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

void scale(float* x, int64_t n, double s) {
  for (int64_t i = 0; i < n; i++) x[i] = static_cast<float>(x[i] * s);
}

double sum_squares(const float* x, int64_t n, double acc) {
  double s = acc;
  for (int64_t i = 0; i < n; i++) s += static_cast<double>(x[i]) * x[i];
  return s;
}

void gather_rows(float* y, const float* x, int64_t H, int64_t K, const int32_t* order, int64_t lo, int64_t hi) {
  for (int64_t r = lo; r < hi; r++) std::memcpy(y + (r - lo) * H, x + (order[r] / K) * H, H * sizeof(float));
}

void scatter_rows(float* dx, const float* dxe, int64_t H, int64_t K, const int32_t* order, int64_t lo, int64_t hi) {
  for (int64_t r = lo; r < hi; r++) {
    float* d = dx + (order[r] / K) * H;
    const float* s = dxe + (r - lo) * H;
    for (int64_t j = 0; j < H; j++) d[j] += s[j];
  }
}

void combine_rows(float* out, const float* y, int64_t H, int64_t K, const float* w, const int32_t* order, int64_t lo,
                  int64_t hi) {
  for (int64_t r = lo; r < hi; r++) {
    const int32_t a = order[r];
    const double s = w[a];
    float* o = out + (a / K) * H;
    const float* yr = y + (r - lo) * H;
    for (int64_t j = 0; j < H; j++) o[j] = static_cast<float>(o[j] + s * yr[j]);
  }
}

void combine_rows_backward(float* dw, float* dye, const float* dy, const float* y, int64_t H, int64_t K,
                           const float* w, const int32_t* order, int64_t lo, int64_t hi) {
  for (int64_t r = lo; r < hi; r++) {
    const int32_t a = order[r];
    const float wa = w[a];
    const float* d = dy + (a / K) * H;
    const float* yr = y + (r - lo) * H;
    float* de = dye + (r - lo) * H;
    double dot = 0;
    for (int64_t j = 0; j < H; j++) {
      dot += static_cast<double>(d[j]) * yr[j];
      de[j] = wa * d[j];
    }
    dw[a] = static_cast<float>(dot);
  }
}

}  // namespace moekit
