// Decode attention, one query position per head over a sequence's cache (the T = 1 case of
// attentionForward, fused): scores = scale · q_h · K[kvh, lo:S]ᵀ, softmax (with an optional sink
// logit that carries no value), out_h = P · V[kvh, lo:S]. One call covers every head of one
// sequence and layer, so a batched decode step makes one call per (sequence, layer) instead of
// three BLAS/softmax calls per head. Float accumulation; the row kernels' softmax.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace moekit {

void attn_decode(const float* q, const float* K, const float* V, float* out, int64_t nH, int64_t nKv,
                 int64_t cap, int64_t Dk, int64_t Dv, int64_t lo, int64_t S, float scale,
                 const float* sinks) {
  const int64_t group = nH / nKv, n = S - lo;
  std::vector<float> p(static_cast<size_t>(n + 1));
  const auto& kern = active_kernels();
  for (int64_t h = 0; h < nH; h++) {
    const int64_t kvh = h / group;
    const float* qh = q + h * Dk;
    const float* Kh = K + (kvh * cap + lo) * Dk;
    const float* Vh = V + (kvh * cap + lo) * Dv;
    for (int64_t j = 0; j < n; j++) {
      const float* kj = Kh + j * Dk;
      // eight independent partial sums (the compiler vectorises them; one running sum it may not reorder)
      float a[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      int64_t d = 0;
      for (; d + 8 <= Dk; d += 8)
        for (int u = 0; u < 8; u++) a[u] += qh[d + u] * kj[d + u];
      float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      for (; d < Dk; d++) s += qh[d] * kj[d];
      p[j] = scale * s;
    }
    const int64_t cols = sinks ? n + 1 : n;
    if (sinks) p[n] = sinks[h];
    if (cols > 0) kern.softmax_row(p.data(), cols);
    float* oh = out + h * Dv;
    std::fill(oh, oh + Dv, 0.f);
    for (int64_t j = 0; j < n; j++) {
      const float w = p[j];
      const float* vj = Vh + j * Dv;
      for (int64_t d = 0; d < Dv; d++) oh[d] += w * vj[d];
    }
  }
}

}  // namespace moekit
