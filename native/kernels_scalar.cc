// Scalar (baseline x86-64, any CPU) row kernels and the element-wise activations.
// Peers: src/tensor/ref/{softmax,norm,rope,activation}.ts.
#include <cmath>

#include "kernels.h"

namespace moekit {

static void softmax_row_scalar(float* x, int64_t cols) {
  float max = -INFINITY;
  bool nan = false;
  for (int64_t c = 0; c < cols; c++) {
    if (x[c] > max) max = x[c];
    if (x[c] != x[c]) nan = true;
  }
  if (nan) {  // same as the reference: a NaN poisons the whole row
    for (int64_t c = 0; c < cols; c++) x[c] = NAN;
    return;
  }
  if (max == -INFINITY) {  // fully masked row -> zeros
    for (int64_t c = 0; c < cols; c++) x[c] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int64_t c = 0; c < cols; c++) {
    x[c] = std::exp(x[c] - max);
    sum += x[c];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t c = 0; c < cols; c++) x[c] *= inv;
}

static void rmsnorm_row_scalar(float* out, const float* x, const float* w, int64_t dim,
                               float eps) {
  double ss = 0.0;
  for (int64_t c = 0; c < dim; c++) ss += static_cast<double>(x[c]) * x[c];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  if (w) {
    for (int64_t c = 0; c < dim; c++) out[c] = x[c] * inv * w[c];
  } else {
    for (int64_t c = 0; c < dim; c++) out[c] = x[c] * inv;
  }
}

static void rope_half_row_scalar(float* x, const float* cos, const float* sin, int64_t half) {
  float* a = x;         // [half] first halves
  float* b = x + half;  // [half] second halves
  for (int64_t i = 0; i < half; i++) {
    const float va = a[i], vb = b[i];
    a[i] = va * cos[i] - vb * sin[i];
    b[i] = va * sin[i] + vb * cos[i];
  }
}

static void rope_interleaved_row_scalar(float* x, const float* cos, const float* sin,
                                        int64_t half) {
  for (int64_t i = 0; i < half; i++) {
    const float va = x[2 * i], vb = x[2 * i + 1];
    x[2 * i] = va * cos[i] - vb * sin[i];
    x[2 * i + 1] = va * sin[i] + vb * cos[i];
  }
}

const RowKernels kScalarKernels = {
    "scalar", softmax_row_scalar, rmsnorm_row_scalar, rope_half_row_scalar,
    rope_interleaved_row_scalar,
};

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void swiglu_clamped(float* out, const float* gate, const float* up, int64_t n, float limit,
                    float alpha) {
  for (int64_t i = 0; i < n; i++) {
    // NaN-propagating min/clamp like Math.min/Math.max in the reference
    float g = gate[i];
    if (!(g != g) && g > limit) g = limit;
    float u = up[i];
    if (!(u != u)) u = u < -limit ? -limit : (u > limit ? limit : u);
    out[i] = (u + 1.0f) * g / (1.0f + std::exp(-alpha * g));
  }
}

}  // namespace moekit
