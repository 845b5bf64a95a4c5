// Per-row top-k. Peer: src/tensor/ref/topk.ts (sort everything, keep k).
// Order: larger value first, ties -> lower index, NaN after everything (a strict total order,
// so the answer is unique and both implementations must agree exactly).
#include <algorithm>
#include <vector>

#include "kernels.h"

namespace moekit {

static inline bool ranks_before(float va, int32_t ia, float vb, int32_t ib) {
  const bool na = va != va, nb = vb != vb;
  if (na != nb) return nb;
  if (!na && va != vb) return va > vb;
  return ia < ib;
}

// Small k (MoE routing: k = 1..8 of 8..512 experts): one pass keeping a sorted list of k.
static void topk_row_insert(const float* x, int64_t cols, int64_t k, int32_t* idx, float* val) {
  int64_t n = 0;  // entries in idx/val so far (sorted by ranks_before)
  for (int64_t c = 0; c < cols; c++) {
    const float v = x[c];
    const int32_t ci = static_cast<int32_t>(c);
    if (n == k && !ranks_before(v, ci, val[k - 1], idx[k - 1])) continue;
    int64_t j = n < k ? n++ : k - 1;  // slot to fill, shifting worse entries down
    while (j > 0 && ranks_before(v, ci, val[j - 1], idx[j - 1])) {
      val[j] = val[j - 1];
      idx[j] = idx[j - 1];
      j--;
    }
    val[j] = v;
    idx[j] = ci;
  }
}

// Large k (sampling over a vocabulary): partial sort of the index list.
static void topk_row_sort(const float* x, int64_t cols, int64_t k, int32_t* idx, float* val,
                          std::vector<int32_t>& order) {
  order.resize(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; c++) order[c] = static_cast<int32_t>(c);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [x](int32_t a, int32_t b) {
    return ranks_before(x[a], a, x[b], b);
  });
  for (int64_t j = 0; j < k; j++) {
    idx[j] = order[j];
    val[j] = x[order[j]];
  }
}

void topk(const float* x, int64_t rows, int64_t cols, int64_t k, int32_t* idx, float* val) {
  if (k == 0) return;
  std::vector<int32_t> order;
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;  // [cols]
    if (k <= 32) {
      topk_row_insert(xr, cols, k, idx + r * k, val + r * k);
    } else {
      topk_row_sort(xr, cols, k, idx + r * k, val + r * k, order);
    }
  }
}

}  // namespace moekit
