// moekit native core: raw-pointer kernels behind the N-API layer (addon.cc validates every
// argument and buffer length before any of these is called; they never check bounds).
// All tensors are row-major float32; shapes are written [rows, cols].
#pragma once
#include <cstdint>

namespace moekit {

// ---- per-row kernels with a scalar and an AVX2+FMA variant, chosen at run time -------------
struct RowKernels {
  const char* name;  // "avx2" | "scalar"
  // x[cols] in place: softmax (max-subtracted, expf, double sum; all -inf row -> zeros)
  void (*softmax_row)(float* x, int64_t cols);
  // out[dim] = x[dim] * (1/sqrt(mean(x^2)+eps)) * w[dim] (w may be null; out may alias x)
  void (*rmsnorm_row)(float* out, const float* x, const float* w, int64_t dim, float eps);
  // x[2*half] in place, pairs (i, i+half) rotated by cos[i], sin[i] (NeoX rotate_half)
  void (*rope_half_row)(float* x, const float* cos, const float* sin, int64_t half);
  // x[2*half] in place, pairs (2i, 2i+1) rotated by cos[i], sin[i] (GPT-J interleaved)
  void (*rope_interleaved_row)(float* x, const float* cos, const float* sin, int64_t half);
};

extern const RowKernels kScalarKernels;   // kernels_scalar.cc, baseline x86-64 / any CPU
extern const RowKernels kAvx2Kernels;     // kernels_avx2.cc, needs avx2 + fma
bool cpu_has_avx2_fma();                  // kernels_avx2.cc
const RowKernels& active_kernels();       // kernels_avx2.cc: the one in use
// select "avx2" | "scalar" | "auto"; returns false if the CPU cannot run the request
bool select_kernels(const char* which);

// ---- element-wise (scalar expf; memory-bound, one code path) --------------------------------
// out[n] = gate * sigmoid(gate) * up; out may alias gate or up
void swiglu(float* out, const float* gate, const float* up, int64_t n);
// g = min(gate, limit); u = clamp(up, -limit, limit); out = (u + 1) * g * sigmoid(alpha * g)
void swiglu_clamped(float* out, const float* gate, const float* up, int64_t n, float limit,
                    float alpha);

// ---- top-k (topk.cc) ------------------------------------------------------------------------
// per row of x[rows, cols]: k best (value desc, index asc, NaN last) -> idx[rows, k], val[rows, k]
void topk(const float* x, int64_t rows, int64_t cols, int64_t k, int32_t* idx, float* val);

// ---- BLAS (gemm.cc) -------------------------------------------------------------------------
// C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C; BLAS semantics, beta = 0 never reads C,
// alpha = 0 or K = 0 never reads A or B.
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);
// y[N] = alpha W[N,K] x[K] + beta y[N]; W contiguous
void sgemv(int64_t N, int64_t K, float alpha, const float* W, const float* x, float beta,
           float* y);
// ---- bfloat16 weights (bf16.cc): W holds raw bf16 bits, f32 value = bits << 16 ------------
// dst[n] = widened src[n] (exact, integer shifts only)
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n);

// gemm_small.cc: the small-M linear layer (A · Wᵀ, AVX2); false when it does not apply (OpenBLAS then)
bool sgemm_nt_small(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* W, int64_t ldw, float beta, float* C, int64_t ldc);

// attn.cc: decode attention of one sequence and layer, every head (see src/tensor/kernels.ts attnDecode)
void attn_decode(const float* q, const float* K, const float* V, float* out, int64_t nH, int64_t nKv,
                 int64_t cap, int64_t Dk, int64_t Dv, int64_t lo, int64_t S, float scale,
                 const float* sinks);
// attn.cc: attn_decode for B sequences of one layer (each its own cache), split over the pool's threads
// kNew / vNew (optional, nullptr for none): the sequence's new key [nKv, Dk] and value [nKv, Dv] heads, written at
// position S − 1 of its cache before it is read (a decode step's cache write, fused)
struct AttnSeq { const float* q; float* K; float* V; float* out; int64_t cap, lo, S; const float* kNew; const float* vNew; };
void attn_decode_batch(const AttnSeq* seqs, int64_t B, int64_t nH, int64_t nKv, int64_t Dk, int64_t Dv,
                       float scale, const float* sinks);
// bf16.cc: fn(ctx, i) for i in [0, parts) over the addon's persistent thread pool (part 0 on the caller)
void parallel_run(int parts, void (*fn)(void* ctx, int part), void* ctx);
// y[N] = alpha W[N,K] x[K] + beta y[N]; W rows at stride ldw; beta = 0 never reads y,
// alpha = 0 or K = 0 never reads W or x. Threaded above 1M weights (blas_get_threads()).
void sgemv_bf16(int64_t N, int64_t K, float alpha, const uint16_t* W, int64_t ldw,
                const float* x, float beta, float* y);
// C[M,N] = alpha A[M,K] W[N,K]^T + beta C. M = 1: the GEMV; M >= 8 with AMX: tiles; 2 <= M <= 64 with AVX2: a direct
// kernel reading W once; else W widened in row panels, cblas_sgemm per panel. Same beta/alpha
// conventions as sgemm. M, N, K, lda, ldc must fit a BLAS int.
void sgemm_bf16(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const uint16_t* W, int64_t ldw, float beta, float* C, int64_t ldc);
// amx.cc: the same product on AMX tiles (A carried as three bf16 parts); sgemm_bf16 takes it for M >= 8 when
// amx_enabled() (the CPU has AMX-BF16, Linux granted the tile state, set_amx has not turned it off)
bool amx_available();
bool amx_enabled();
void set_amx(bool on);
void sgemm_bf16_amx(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const uint16_t* W, int64_t ldw, float beta, float* C, int64_t ldc);
// bf16_avx512.cc: the same product on AVX512-BF16 (VDPBF16PS, A carried as two bf16 parts) for 2 <= M <= 3 where AMX
// is not in use. set_avx512(false) turns every AVX-512 path off (this one and quant_vnni.cc's); force = true has
// sgemm_bf16 take this one for every M >= 2 (tests, benchmarks)
bool avx512_bf16_available();
bool avx512_allowed();
bool avx512_forced();
void set_avx512(bool on, bool force = false);
void sgemm_bf16_avx512(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                       const uint16_t* W, int64_t ldw, float beta, float* C, int64_t ldc);

// the persistent thread pool of bf16.cc: fn(ctx, i) for i in [0, parts), part 0 on the caller
void pool_run(int parts, void (*fn)(void* ctx, int part), void* ctx);
// threads for `work` weights: 1 for small jobs, else up to the addon's thread count and `items`
int threads_for(int64_t work, int64_t items);

// ---- block-quantised weights (quant.cc; formats in src/tensor/quant.ts) ---------------------
// type 0 = q8_0 (34-byte blocks), 1 = q4_0 (18-byte blocks); 32 weights per block, K % 32 == 0.
// dst[n] = values of the first n/32 blocks of src (exact)
void dequantize(int type, float* dst, const uint8_t* src, int64_t n);
// dst = the n/32 blocks of src[n], llama.cpp's reference rounding (src/tensor/quant.ts quantize, bit for bit)
void quantize(int type, uint8_t* dst, const float* src, int64_t n);
// C[M,N] = A[M,K] W[N,K]^T with W rows of K/32 blocks and A quantised to 8 bits per 32-value
// block (src/tensor/ref/quant.ts quantizeActs); AVX2 (+F16C) or scalar with the row-kernel set.
// quant_vnni.cc: qgemm on AVX512-VNNI from the quantised activations (dA [M, K/32], qA [M, K]), split over the pool
bool avx512_vnni_available();
void qgemm_vnni(int type, int64_t M, int64_t N, int64_t K, const float* dA, const int8_t* qA, const uint8_t* W,
                float* C, int64_t ldc);
void qgemm(int type, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint8_t* W,
           float* C, int64_t ldc);

// ---- training (train.cc): float64 arithmetic in the order of src/tensor/ref/train.ts, bit for bit ----------
double js_exp(double x);  // V8's Math.exp (fdlibm)
// dx[rows, dim] += rstd (dy w) - x rstd^3 / dim sum(dy w x);  dw[dim] += sum_rows dy x rstd (w, dw may be null)
void rmsnorm_backward(float* dx, const float* dy, const float* x, const float* w, float* dw, int64_t rows,
                      int64_t dim, double eps);
// s = sigmoid(g): du = da silu(g), dg = da u s (1 + g (1 - s))
void swiglu_backward(float* dg, float* du, const float* da, const float* g, const float* u, int64_t n);
// per row t of dp, p [rows, ld], first n columns: dp = p (dp - sum_j p dp)
void softmax_backward(float* dp, const float* p, int64_t rows, int64_t n, int64_t ld);
// torch AdamW on n elements (wd = 1 - lr weight_decay, 1 for none)
void adamw(float* p, const float* g, float* m, float* v, int64_t n, double b1, double b2, double step_size,
           double bc2, double eps, double wd);
void add_to(float* dst, const float* src, int64_t n);  // dst += src
double sum_squares(const float* x, int64_t n, double acc);
void scale(float* x, int64_t n, double s);  // x = (float)(x s), the product in float64  // acc + sum x^2, sequential
// the MoE dispatch rows (order: assignment ids a = token K + slot; rows lo..hi of one expert)
void gather_rows(float* y, const float* x, int64_t H, int64_t K, const int32_t* order, int64_t lo, int64_t hi);
void scatter_rows(float* dx, const float* dxe, int64_t H, int64_t K, const int32_t* order, int64_t lo, int64_t hi);
void combine_rows(float* out, const float* y, int64_t H, int64_t K, const float* w, const int32_t* order, int64_t lo,
                  int64_t hi);
void combine_rows_backward(float* dw, float* dye, const float* dy, const float* y, int64_t H, int64_t K,
                           const float* w, const int32_t* order, int64_t lo, int64_t hi);

// ---- the routed experts of one MoE block (experts.cc) -------------------------------------------
// W [out, in]: f32, bf16 bits (bf16), or q8_0 / q4_0 blocks (qtype 0 / 1, else -1); b [out] or null
struct ExpertLinear { const void* w; bool bf16; const float* b; int64_t out, in; int qtype = -1; };
struct ExpertFfn { ExpertLinear gate, up, down; };
struct ExpertsCall {
  const float* x;  // [N, H] the block's normalised input
  int64_t N, H, K, E;
  const int32_t* order;    // [N·K] assignment ids grouped by expert
  const int32_t* offsets;  // [E + 1]
  const float* weights;    // [N·K] combine weights
  const ExpertFfn* experts;  // [E] (entries of experts with no rows are not read)
  bool clamped; float limit, alpha;  // gpt-oss's clamped SwiGLU, else SwiGLU
  float* out;  // [N, H] += the combined expert outputs
};
// every expert's FFN over its rows, then the combine (as moe/layer.ts's loop, bit for bit); experts split over the pool
void experts_forward(const ExpertsCall& c);

void blas_set_threads(int n);
int blas_get_threads();
const char* blas_config();
const char* blas_core();

}  // namespace moekit
