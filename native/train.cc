// Training kernels: the element-wise backward passes, the MoE dispatch row moves and AdamW, written to compute
// exactly what their TypeScript references (src/tensor/ref/train.ts) compute: float64 arithmetic in the same order,
// one rounding to float32 per stored value, and V8's exp (fdlibm) for the sigmoid, so the trainer's numbers do not
// depend on which implementation runs. This file is compiled with the baseline x86-64 flags only (no FMA, so no
// contraction of a·b + c) and never with -ffast-math: the reductions stay sequential.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels.h"

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

void rmsnorm_backward(float* dx, const float* dy, const float* x, const float* w, float* dw, int64_t rows,
                      int64_t dim, double eps) {
  for (int64_t r = 0; r < rows; r++) {
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

void swiglu_backward(float* dg, float* du, const float* da, const float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
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

void adamw(float* p, const float* g, float* m, float* v, int64_t n, double b1, double b2, double step_size,
           double bc2, double eps, double wd) {
  for (int64_t i = 0; i < n; i++) {
    if (wd != 1) p[i] = static_cast<float>(p[i] * wd);
    m[i] = static_cast<float>(b1 * m[i] + (1 - b1) * g[i]);
    v[i] = static_cast<float>(b2 * v[i] + (1 - b2) * g[i] * g[i]);
    p[i] = static_cast<float>(p[i] - (step_size * m[i]) / (std::sqrt(static_cast<double>(v[i])) / bc2 + eps));
  }
}

void add_to(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] += src[i];
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
