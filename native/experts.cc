// The routed experts of one MoE block in one call (inference): for each expert e with rows
// order[offsets[e] .. offsets[e+1]) — gather its tokens' rows, gate and up projections, the
// activation, the down projection — then combine: out[token] += w · y. It makes exactly the
// calls moe/layer.ts's per-expert loop makes through the kernels (gather_rows, sgemm / sgemv, their
// bf16 forms or qgemm for q8_0 / q4_0 experts, bias adds, swiglu, combine_rows), in the same order per expert, so the result
// is bit-identical to that loop (its reference; test/kernels-experts.test.ts holds them together).
// What it saves is the loop's per-expert trips through JavaScript (seven kernel calls and four
// allocations an expert) and it can run experts on several threads: the experts are split into
// contiguous ranges of about equal rows over the addon's pool, each writing its own rows of Y
// [N·K, H]; the combine then runs on the caller in expert order, as the loop does.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace moekit {

namespace {

// y[n, out] = x[n, in] · Wᵀ (+ b): what linearFwd (src/tensor/linear.ts) calls for n rows
void linear(const ExpertLinear& L, const float* x, int64_t n, float* y) {
  if (L.qtype >= 0) {
    qgemm(L.qtype, n, L.out, L.in, x, L.in, static_cast<const uint8_t*>(L.w), y, L.out);
  } else if (L.bf16) {
    if (n == 1) sgemv_bf16(L.out, L.in, 1.0f, static_cast<const uint16_t*>(L.w), L.in, x, 0.0f, y);
    else sgemm_bf16(n, L.out, L.in, 1.0f, x, L.in, static_cast<const uint16_t*>(L.w), L.in, 0.0f, y, L.out);
  } else {
    if (n == 1) sgemv(L.out, L.in, 1.0f, static_cast<const float*>(L.w), x, 0.0f, y);
    else sgemm(false, true, n, L.out, L.in, 1.0f, x, L.in, static_cast<const float*>(L.w), L.in, 0.0f, y, L.out);
  }
  if (L.b) {
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < L.out; j++) y[r * L.out + j] += L.b[j];
  }
}

struct Job {
  const ExpertsCall* c;
  float* Y;  // [N·K, H], rows in `order` positions
  std::vector<int64_t> bounds;  // part p runs experts [bounds[p], bounds[p+1])
};

void part(void* ctx, int p) {
  const Job& j = *static_cast<const Job*>(ctx);
  const ExpertsCall& c = *j.c;
  thread_local std::vector<float> xe, g, u;
  for (int64_t e = j.bounds[p]; e < j.bounds[p + 1]; e++) {
    const int64_t lo = c.offsets[e], hi = c.offsets[e + 1], n = hi - lo;
    if (n == 0) continue;
    const ExpertFfn& f = c.experts[e];
    const int64_t I = f.gate.out;
    if (xe.size() < static_cast<size_t>(n * c.H)) xe.resize(static_cast<size_t>(n * c.H));
    if (g.size() < static_cast<size_t>(n * I)) { g.resize(static_cast<size_t>(n * I)); u.resize(static_cast<size_t>(n * I)); }
    gather_rows(xe.data(), c.x, c.H, c.K, c.order, lo, hi);  // [n, H]
    linear(f.gate, xe.data(), n, g.data());  // [n, I]
    linear(f.up, xe.data(), n, u.data());    // [n, I]
    if (c.clamped) swiglu_clamped(g.data(), g.data(), u.data(), n * I, c.limit, c.alpha);
    else swiglu(g.data(), g.data(), u.data(), n * I);
    linear(f.down, g.data(), n, j.Y + lo * c.H);  // [n, H]
  }
}

}  // namespace

void experts_forward(const ExpertsCall& c) {
  const int64_t rows = c.offsets[c.E];
  // parts: one per thread, never more than the experts with rows; one for small blocks (below kMinWorkPerPart
  // multiply-adds per part the pool's wake-up costs more than it saves). Work, not rows: decode routes one row to
  // each of top-k experts, and their GEMVs (each one thread here) are worth both cores
  constexpr int64_t kMinWorkPerPart = int64_t(1) << 17;
  int64_t busy = 0, work = 0;
  for (int64_t e = 0; e < c.E; e++) {
    const int64_t n = c.offsets[e + 1] - c.offsets[e];
    if (n == 0) continue;
    busy++;
    const ExpertFfn& f = c.experts[e];
    work += n * (f.gate.out * f.gate.in + f.up.out * f.up.in + f.down.out * f.down.in);
  }
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({blas_get_threads(), busy, work / kMinWorkPerPart})));
  std::vector<float> Y(static_cast<size_t>(rows * c.H));
  Job j{&c, Y.data(), std::vector<int64_t>(static_cast<size_t>(parts) + 1, c.E)};
  // contiguous expert ranges of about rows / parts rows each
  j.bounds[0] = 0;
  for (int p = 1, e = 0; p < parts; p++) {
    const int64_t target = rows * p / parts;
    while (e < c.E && c.offsets[e] < target) e++;
    j.bounds[static_cast<size_t>(p)] = e;
  }
  parallel_run(parts, part, &j);
  // combine, in expert order (as the loop)
  for (int64_t e = 0; e < c.E; e++) {
    const int64_t lo = c.offsets[e], hi = c.offsets[e + 1];
    if (hi > lo) combine_rows(c.out, Y.data() + lo * c.H, c.H, c.K, c.weights, c.order, lo, hi);
  }
}

}  // namespace moekit
