// N-API layer of the moekit native core. Every argument is validated here, with the same
// messages as src/tensor/ref/check.ts, before a raw-pointer kernel runs: dims must be
// non-negative integers, leading dimensions >= max(1, cols), and every buffer (a TypedArray,
// possibly a subarray view: Data() already includes its byteOffset) long enough for the dims,
// else a JS RangeError naming the argument. Nothing is read or written out of bounds.
#include <napi.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace {

using moekit::active_kernels;

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e21) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

[[noreturn]] void range_error(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}
[[noreturn]] void type_error(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

// Reads the arguments of one kernel call in order, validating as it goes.
struct Args {
  const Napi::CallbackInfo& info;
  const char* k;  // kernel name, first word of every message
  Napi::Env env() const { return info.Env(); }
  std::string pre(const char* name) const { return std::string(k) + ": " + name; }

  // non-negative safe integer; `blas` also requires it to fit a 32-bit BLAS int
  int64_t dim(size_t i, const char* name, bool blas = false) const {
    const Napi::Value v = info[i];
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 0 && d <= 9007199254740991.0 && d == std::floor(d))) {
      range_error(env(), pre(name) + " must be a non-negative integer, got " +
                             (v.IsNumber() ? num(d) : v.ToString().Utf8Value()));
    }
    if (blas && d > INT_MAX) {
      range_error(env(), pre(name) + "=" + num(d) + " exceeds the 32-bit BLAS integer range");
    }
    return static_cast<int64_t>(d);
  }
  // leading dimension >= max(1, cols)
  int64_t lead(size_t i, const char* name, int64_t cols) const {
    const int64_t ld = dim(i, name, true);
    if (ld < (cols > 1 ? cols : 1)) {
      range_error(env(), pre(name) + "=" + std::to_string(ld) + " must be >= max(1, " +
                             std::to_string(cols) + ")");
    }
    return ld;
  }
  double number(size_t i, const char* name) const {
    const Napi::Value v = info[i];
    if (!v.IsNumber()) type_error(env(), pre(name) + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  bool flag(size_t i) const { return info[i].ToBoolean().Value(); }
  bool is_null(size_t i) const { return info[i].IsNull() || info[i].IsUndefined(); }

  struct F32 { float* p; int64_t n; };
  F32 f32(size_t i, const char* name) const {
    const Napi::Value v = info[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      type_error(env(), pre(name) + " must be a Float32Array");
    }
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    return {a.Data(), static_cast<int64_t>(a.ElementLength())};
  }
  struct I32 { int32_t* p; int64_t n; };
  I32 i32(size_t i, const char* name) const {
    const Napi::Value v = info[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      type_error(env(), pre(name) + " must be an Int32Array");
    }
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    return {a.Data(), static_cast<int64_t>(a.ElementLength())};
  }
  struct U16 { uint16_t* p; int64_t n; };
  U16 u16(size_t i, const char* name) const {
    const Napi::Value v = info[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) {
      type_error(env(), pre(name) + " must be a Uint16Array");
    }
    Napi::Uint16Array a = v.As<Napi::Uint16Array>();
    return {a.Data(), static_cast<int64_t>(a.ElementLength())};
  }
  struct U8 { uint8_t* p; int64_t n; };
  U8 u8(size_t i, const char* name) const {
    const Napi::Value v = info[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      type_error(env(), pre(name) + " must be a Uint8Array");
    }
    Napi::Uint8Array a = v.As<Napi::Uint8Array>();
    return {a.Data(), static_cast<int64_t>(a.ElementLength())};
  }
  // a block-quantised type: 'q8_0' -> 0, 'q4_0' -> 1
  int qtype(size_t i) const {
    const Napi::Value v = info[i];
    const std::string t = v.IsString() ? v.As<Napi::String>().Utf8Value() : v.ToString().Utf8Value();
    if (t == "q8_0") return 0;
    if (t == "q4_0") return 1;
    range_error(env(), std::string(k) + ": type must be 'q8_0' or 'q4_0', got " + t);
  }
  void blocks(const char* name, int64_t n) const {
    if (n % 32 != 0) range_error(env(), pre(name) + "=" + std::to_string(n) + " must be a multiple of 32");
  }
  void len(const char* name, int64_t have, int64_t need) const {
    if (have < need) {
      range_error(env(), pre(name) + " has " + std::to_string(have) + " elements, needs " +
                             std::to_string(need));
    }
  }
};

// a·b saturating at INT64_MAX (a too-large product can then only fail the length check)
int64_t mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}
int64_t add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}
// elements a strided matrix [rows, cols] with row stride ld touches
int64_t span(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 || cols == 0 ? 0 : add(mul(rows - 1, ld), cols);
}

// sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Args a{info, "sgemm"};
  const bool tA = a.flag(0), tB = a.flag(1);
  const int64_t M = a.dim(2, "M", true), N = a.dim(3, "N", true), K = a.dim(4, "K", true);
  const auto A = a.f32(6, "A"), B = a.f32(8, "B"), C = a.f32(11, "C");
  const int64_t aRows = tA ? K : M, aCols = tA ? M : K;  // A stored [aRows, aCols]
  const int64_t bRows = tB ? N : K, bCols = tB ? K : N;  // B stored [bRows, bCols]
  const int64_t lda = a.lead(7, "lda", aCols), ldb = a.lead(9, "ldb", bCols);
  const int64_t ldc = a.lead(12, "ldc", N);
  const double alpha = a.number(5, "alpha"), beta = a.number(10, "beta");
  if (alpha != 0 && K > 0 && M > 0 && N > 0) {
    a.len("A", A.n, span(aRows, aCols, lda));
    a.len("B", B.n, span(bRows, bCols, ldb));
  }
  a.len("C", C.n, span(M, N, ldc));
  moekit::sgemm(tA, tB, M, N, K, static_cast<float>(alpha), A.p, lda, B.p, ldb,
                static_cast<float>(beta), C.p, ldc);
  return info.Env().Undefined();
}

// sgemv(N, K, alpha, W, x, beta, y)
Napi::Value Sgemv(const Napi::CallbackInfo& info) {
  Args a{info, "sgemv"};
  const int64_t N = a.dim(0, "N", true), K = a.dim(1, "K", true);
  const auto W = a.f32(3, "W"), x = a.f32(4, "x"), y = a.f32(6, "y");
  const double alpha = a.number(2, "alpha"), beta = a.number(5, "beta");
  if (alpha != 0 && K > 0) {
    a.len("W", W.n, mul(N, K));
    a.len("x", x.n, K);
  }
  a.len("y", y.n, N);
  moekit::sgemv(N, K, static_cast<float>(alpha), W.p, x.p, static_cast<float>(beta), y.p);
  return info.Env().Undefined();
}

// bf16ToF32(dst, src, n)
Napi::Value Bf16ToF32(const Napi::CallbackInfo& info) {
  Args a{info, "bf16ToF32"};
  const int64_t n = a.dim(2, "n");
  const auto dst = a.f32(0, "dst");
  const auto src = a.u16(1, "src");
  a.len("src", src.n, n);
  a.len("dst", dst.n, n);
  moekit::bf16_to_f32(dst.p, src.p, n);
  return info.Env().Undefined();
}

// sgemvBf16(N, K, alpha, W, x, beta, y)
Napi::Value SgemvBf16(const Napi::CallbackInfo& info) {
  Args a{info, "sgemvBf16"};
  const int64_t N = a.dim(0, "N"), K = a.dim(1, "K");
  const auto W = a.u16(3, "W");
  const auto x = a.f32(4, "x"), y = a.f32(6, "y");
  const double alpha = a.number(2, "alpha"), beta = a.number(5, "beta");
  if (alpha != 0 && K > 0) {
    a.len("W", W.n, mul(N, K));
    a.len("x", x.n, K);
  }
  a.len("y", y.n, N);
  moekit::sgemv_bf16(N, K, static_cast<float>(alpha), W.p, K, x.p, static_cast<float>(beta), y.p);
  return info.Env().Undefined();
}

// sgemmBf16(M, N, K, alpha, A, lda, W, ldw, beta, C, ldc)
Napi::Value SgemmBf16(const Napi::CallbackInfo& info) {
  Args a{info, "sgemmBf16"};
  const int64_t M = a.dim(0, "M", true), N = a.dim(1, "N", true), K = a.dim(2, "K", true);
  const auto A = a.f32(4, "A");
  const auto W = a.u16(6, "W");
  const auto C = a.f32(9, "C");
  const int64_t lda = a.lead(5, "lda", K), ldw = a.lead(7, "ldw", K), ldc = a.lead(10, "ldc", N);
  const double alpha = a.number(3, "alpha"), beta = a.number(8, "beta");
  if (alpha != 0 && K > 0 && M > 0 && N > 0) {
    a.len("A", A.n, span(M, K, lda));
    a.len("W", W.n, span(N, K, ldw));
  }
  a.len("C", C.n, span(M, N, ldc));
  moekit::sgemm_bf16(M, N, K, static_cast<float>(alpha), A.p, lda, W.p, ldw,
                     static_cast<float>(beta), C.p, ldc);
  return info.Env().Undefined();
}

// dequantize(type, dst, src, n)
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Args a{info, "dequantize"};
  const int type = a.qtype(0);
  const int64_t n = a.dim(3, "n");
  a.blocks("n", n);
  const auto dst = a.f32(1, "dst");
  const auto src = a.u8(2, "src");
  a.len("src", src.n, mul(n / 32, type == 0 ? 34 : 18));
  a.len("dst", dst.n, n);
  moekit::dequantize(type, dst.p, src.p, n);
  return info.Env().Undefined();
}

// quantize(type, dst, src, n)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Args a{info, "quantize"};
  const int type = a.qtype(0);
  const int64_t n = a.dim(3, "n");
  a.blocks("n", n);
  const auto dst = a.u8(1, "dst");
  const auto src = a.f32(2, "src");
  a.len("src", src.n, n);
  a.len("dst", dst.n, mul(n / 32, type == 0 ? 34 : 18));
  moekit::quantize(type, dst.p, src.p, n);
  return info.Env().Undefined();
}

// qgemm(type, M, N, K, A, lda, W, C, ldc)
Napi::Value Qgemm(const Napi::CallbackInfo& info) {
  Args a{info, "qgemm"};
  const int type = a.qtype(0);
  const int64_t M = a.dim(1, "M"), N = a.dim(2, "N"), K = a.dim(3, "K");
  a.blocks("K", K);
  const auto A = a.f32(4, "A");
  const auto W = a.u8(6, "W");
  const auto C = a.f32(7, "C");
  const int64_t lda = a.lead(5, "lda", K), ldc = a.lead(8, "ldc", N);
  if (M > 0 && K > 0) a.len("A", A.n, span(M, K, lda));
  if (N > 0 && K > 0) a.len("W", W.n, mul(mul(N, K / 32), type == 0 ? 34 : 18));
  a.len("C", C.n, span(M, N, ldc));
  moekit::qgemm(type, M, N, K, A.p, lda, W.p, C.p, ldc);
  return info.Env().Undefined();
}

// softmax(x, rows, cols)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Args a{info, "softmax"};
  const int64_t rows = a.dim(1, "rows"), cols = a.dim(2, "cols");
  const auto x = a.f32(0, "x");
  a.len("x", x.n, mul(rows, cols));
  const auto& kern = active_kernels();
  for (int64_t r = 0; r < rows; r++) kern.softmax_row(x.p + r * cols, cols);
  return info.Env().Undefined();
}

// attnDecode(q, K, V, out, nH, nKv, cap, Dk, Dv, lo, S, scale, sinks | null)
Napi::Value AttnDecode(const Napi::CallbackInfo& info) {
  Args a{info, "attnDecode"};
  const auto q = a.f32(0, "q"), K = a.f32(1, "K"), V = a.f32(2, "V"), out = a.f32(3, "out");
  const int64_t nH = a.dim(4, "nH"), nKv = a.dim(5, "nKv"), cap = a.dim(6, "cap"), Dk = a.dim(7, "Dk"),
                Dv = a.dim(8, "Dv"), lo = a.dim(9, "lo"), S = a.dim(10, "S");
  const double scale = a.number(11, "scale");
  if (nKv == 0 || nH % nKv != 0) {
    range_error(a.env(), "attnDecode: nH=" + std::to_string(nH) + " must be a multiple of nKv=" + std::to_string(nKv));
  }
  if (S > cap || lo > S) {
    range_error(a.env(), "attnDecode: need lo <= S <= cap, got lo=" + std::to_string(lo) + ", S=" + std::to_string(S) + ", cap=" + std::to_string(cap));
  }
  a.len("q", q.n, mul(nH, Dk));
  a.len("K", K.n, mul(mul(nKv, cap), Dk));
  a.len("V", V.n, mul(mul(nKv, cap), Dv));
  a.len("out", out.n, mul(nH, Dv));
  const float* sinks = nullptr;
  if (!a.is_null(12)) {
    const auto sa = a.f32(12, "sinks");
    a.len("sinks", sa.n, nH);
    sinks = sa.p;
  }
  moekit::attn_decode(q.p, K.p, V.p, out.p, nH, nKv, cap, Dk, Dv, lo, S, static_cast<float>(scale), sinks);
  return info.Env().Undefined();
}

// attnDecodeBatch(q, Ks, Vs, meta, out, nH, nKv, Dk, Dv, scale, sinks | null[, kNew, vNew]): attnDecode for B =
// Ks.length sequences of one layer; q [B, nH, Dk], out [B, nH, Dv], meta Int32Array [B, 3] = (cap, lo, S) per sequence,
// Ks[b] [nKv, cap_b, Dk] and Vs[b] [nKv, cap_b, Dv] their caches; kNew [B, nKv, Dk] / vNew [B, nKv, Dv] (optional)
// written at position S_b − 1 of each cache first. Split over the thread pool.
Napi::Value AttnDecodeBatch(const Napi::CallbackInfo& info) {
  Args a{info, "attnDecodeBatch"};
  const auto q = a.f32(0, "q");
  if (!info[1].IsArray() || !info[2].IsArray()) type_error(a.env(), "attnDecodeBatch: Ks and Vs must be arrays of Float32Array");
  const Napi::Array Ka = info[1].As<Napi::Array>(), Va = info[2].As<Napi::Array>();
  const auto meta = a.i32(3, "meta");
  const auto out = a.f32(4, "out");
  const int64_t nH = a.dim(5, "nH"), nKv = a.dim(6, "nKv"), Dk = a.dim(7, "Dk"), Dv = a.dim(8, "Dv");
  const double scale = a.number(9, "scale");
  const int64_t B = Ka.Length();
  if (static_cast<int64_t>(Va.Length()) != B) range_error(a.env(), "attnDecodeBatch: Ks has " + std::to_string(B) + " caches, Vs " + std::to_string(Va.Length()));
  if (nKv == 0 || nH % nKv != 0) range_error(a.env(), "attnDecodeBatch: nH=" + std::to_string(nH) + " must be a multiple of nKv=" + std::to_string(nKv));
  a.len("meta", meta.n, mul(B, 3));
  a.len("q", q.n, mul(mul(B, nH), Dk));
  a.len("out", out.n, mul(mul(B, nH), Dv));
  const float* sinks = nullptr;
  if (!a.is_null(10)) {
    const auto sa = a.f32(10, "sinks");
    a.len("sinks", sa.n, nH);
    sinks = sa.p;
  }
  // kNew [B, nKv, Dk], vNew [B, nKv, Dv] (both or neither): the step's new keys and values, written at S − 1 first
  const float *kNew = nullptr, *vNew = nullptr;
  if (info.Length() > 11 && !a.is_null(11)) {
    const auto kn = a.f32(11, "kNew"), vn = a.f32(12, "vNew");
    a.len("kNew", kn.n, mul(mul(B, nKv), Dk));
    a.len("vNew", vn.n, mul(mul(B, nKv), Dv));
    kNew = kn.p; vNew = vn.p;
  }
  std::vector<moekit::AttnSeq> seqs(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; b++) {
    const Napi::Value kv = Ka.Get(static_cast<uint32_t>(b)), vv = Va.Get(static_cast<uint32_t>(b));
    if (!kv.IsTypedArray() || kv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        !vv.IsTypedArray() || vv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      type_error(a.env(), "attnDecodeBatch: Ks[" + std::to_string(b) + "] and Vs[" + std::to_string(b) + "] must be Float32Arrays");
    }
    Napi::Float32Array K = kv.As<Napi::Float32Array>(), V = vv.As<Napi::Float32Array>();
    const int64_t cap = meta.p[3 * b], lo = meta.p[3 * b + 1], S = meta.p[3 * b + 2];
    if (cap < 0 || lo < 0 || S > cap || lo > S) {
      range_error(a.env(), "attnDecodeBatch: sequence " + std::to_string(b) + " needs 0 <= lo <= S <= cap, got lo=" + std::to_string(lo) +
                               ", S=" + std::to_string(S) + ", cap=" + std::to_string(cap));
    }
    if (static_cast<int64_t>(K.ElementLength()) < mul(mul(nKv, cap), Dk) || static_cast<int64_t>(V.ElementLength()) < mul(mul(nKv, cap), Dv)) {
      range_error(a.env(), "attnDecodeBatch: the cache of sequence " + std::to_string(b) + " is shorter than nKv × cap × D");
    }
    seqs[static_cast<size_t>(b)] = {q.p + b * nH * Dk, K.Data(), V.Data(), out.p + b * nH * Dv, cap, lo, S,
                                    kNew ? kNew + b * nKv * Dk : nullptr, vNew ? vNew + b * nKv * Dv : nullptr};
    if (kNew && S < 1) range_error(a.env(), "attnDecodeBatch: sequence " + std::to_string(b) + " gets a new key at S − 1 and needs S >= 1");
  }
  moekit::attn_decode_batch(seqs.data(), B, nH, nKv, Dk, Dv, static_cast<float>(scale), sinks);
  return info.Env().Undefined();
}

// expertsForward(x, N, H, K, order, offsets, weights, out, clamped, limit, alpha, ws, bs, widths): the routed experts
// of one MoE block and their combine (experts.cc). x [N, H]; order, weights [N·K]; offsets [E + 1]; out [N, H] (+=);
// ws [3E]: per expert gate [I, H], up [I, H], down [H, I] (Float32Array or Uint16Array of bf16 bits; null for an
// expert with no rows); bs [3E]: their biases (Float32Array or null); widths Int32Array [E]: I per expert;
// qtypes (optional) Int32Array [3E]: 0 (q8_0) or 1 (q4_0) where ws holds a Uint8Array of blocks, else -1.
Napi::Value ExpertsForward(const Napi::CallbackInfo& info) {
  Args a{info, "expertsForward"};
  const auto x = a.f32(0, "x");
  const int64_t N = a.dim(1, "N", true), H = a.dim(2, "H", true), K = a.dim(3, "K", true);
  const auto order = a.i32(4, "order"), offsets = a.i32(5, "offsets");
  const auto weights = a.f32(6, "weights"), out = a.f32(7, "out");
  const bool clamped = a.flag(8);
  const double limit = a.number(9, "limit"), alpha = a.number(10, "alpha");
  if (!info[11].IsArray() || !info[12].IsArray()) type_error(a.env(), "expertsForward: ws and bs must be arrays");
  const Napi::Array ws = info[11].As<Napi::Array>(), bs = info[12].As<Napi::Array>();
  const auto widths = a.i32(13, "widths");
  const int64_t E = widths.n, NK = mul(N, K);
  const bool hasQ = info.Length() > 14 && !info[14].IsUndefined() && !info[14].IsNull();
  const int32_t* qtypes = nullptr;
  if (hasQ) {
    const auto q = a.i32(14, "qtypes");
    a.len("qtypes", q.n, 3 * E);
    qtypes = q.p;
  }
  a.len("x", x.n, mul(N, H));
  a.len("out", out.n, mul(N, H));
  a.len("order", order.n, NK);
  a.len("weights", weights.n, NK);
  a.len("offsets", offsets.n, E + 1);
  if (static_cast<int64_t>(ws.Length()) != 3 * E || static_cast<int64_t>(bs.Length()) != 3 * E) {
    range_error(a.env(), "expertsForward: ws and bs need 3 entries per expert (" + std::to_string(3 * E) + "), got " +
                             std::to_string(ws.Length()) + " and " + std::to_string(bs.Length()));
  }
  if (offsets.p[0] != 0 || offsets.p[E] != NK) range_error(a.env(), "expertsForward: offsets must run from 0 to N·K");
  for (int64_t e = 0; e < E; e++) {
    if (offsets.p[e + 1] < offsets.p[e]) range_error(a.env(), "expertsForward: offsets must not decrease (expert " + std::to_string(e) + ")");
  }
  for (int64_t q = 0; q < NK; q++) {
    if (order.p[q] < 0 || order.p[q] >= NK) range_error(a.env(), "expertsForward: order[" + std::to_string(q) + "] is out of [0, N·K)");
  }
  std::vector<moekit::ExpertFfn> experts(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; e++) {
    if (offsets.p[e + 1] == offsets.p[e]) continue;  // no rows: not read
    const int64_t I = widths.p[e];
    if (I <= 0) range_error(a.env(), "expertsForward: widths[" + std::to_string(e) + "] must be positive");
    moekit::ExpertLinear* Ls[3] = {&experts[e].gate, &experts[e].up, &experts[e].down};
    const int64_t outs[3] = {I, I, H}, ins[3] = {H, H, I};
    static const char* names[3] = {"gate", "up", "down"};
    for (int i = 0; i < 3; i++) {
      const Napi::Value w = ws.Get(static_cast<uint32_t>(3 * e + i)), b = bs.Get(static_cast<uint32_t>(3 * e + i));
      const std::string what = "expertsForward: expert " + std::to_string(e) + " " + names[i];
      const int64_t need = mul(outs[i], ins[i]);
      if (w.IsTypedArray() && w.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
        Napi::Float32Array t = w.As<Napi::Float32Array>();
        if (static_cast<int64_t>(t.ElementLength()) < need) range_error(a.env(), what + " weight has " + std::to_string(t.ElementLength()) + " elements, needs " + std::to_string(need));
        *Ls[i] = {t.Data(), false, nullptr, outs[i], ins[i]};
      } else if (w.IsTypedArray() && w.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
        Napi::Uint16Array t = w.As<Napi::Uint16Array>();
        if (static_cast<int64_t>(t.ElementLength()) < need) range_error(a.env(), what + " weight has " + std::to_string(t.ElementLength()) + " elements, needs " + std::to_string(need));
        *Ls[i] = {t.Data(), true, nullptr, outs[i], ins[i]};
      } else if (w.IsTypedArray() && w.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array && qtypes &&
                 (qtypes[3 * e + i] == 0 || qtypes[3 * e + i] == 1)) {
        const int qt = qtypes[3 * e + i];
        Napi::Uint8Array t = w.As<Napi::Uint8Array>();
        if (ins[i] % 32 != 0) range_error(a.env(), what + ": a quantised weight needs its input width (" + std::to_string(ins[i]) + ") to be a multiple of 32");
        const int64_t bytes = mul(need / 32, qt == 0 ? 34 : 18);
        if (static_cast<int64_t>(t.ElementLength()) < bytes) range_error(a.env(), what + " weight has " + std::to_string(t.ElementLength()) + " bytes, needs " + std::to_string(bytes));
        *Ls[i] = {t.Data(), false, nullptr, outs[i], ins[i], qt};
      } else {
        type_error(a.env(), what + " weight must be a Float32Array, a Uint16Array (bf16) or a Uint8Array of q8_0 / q4_0 blocks (with qtypes)");
      }
      if (!(b.IsNull() || b.IsUndefined())) {
        if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) type_error(a.env(), what + " bias must be a Float32Array or null");
        Napi::Float32Array t = b.As<Napi::Float32Array>();
        if (static_cast<int64_t>(t.ElementLength()) < outs[i]) range_error(a.env(), what + " bias has " + std::to_string(t.ElementLength()) + " elements, needs " + std::to_string(outs[i]));
        Ls[i]->b = t.Data();
      }
    }
  }
  moekit::ExpertsCall c{x.p, N, H, K, E, order.p, offsets.p, weights.p, experts.data(), clamped, static_cast<float>(limit), static_cast<float>(alpha), out.p};
  moekit::experts_forward(c);
  return info.Env().Undefined();
}

// rmsnorm(out, x, w | null, rows, dim, eps)
Napi::Value Rmsnorm(const Napi::CallbackInfo& info) {
  Args a{info, "rmsnorm"};
  const int64_t rows = a.dim(3, "rows"), dim = a.dim(4, "dim");
  const auto out = a.f32(0, "out"), x = a.f32(1, "x");
  a.len("x", x.n, mul(rows, dim));
  a.len("out", out.n, mul(rows, dim));
  const float* w = nullptr;
  if (!a.is_null(2)) {
    const auto wa = a.f32(2, "w");
    if (rows > 0) a.len("w", wa.n, dim);
    w = wa.p;
  }
  const float eps = static_cast<float>(a.number(5, "eps"));
  const auto& kern = active_kernels();
  for (int64_t r = 0; r < rows; r++) kern.rmsnorm_row(out.p + r * dim, x.p + r * dim, w, dim, eps);
  return info.Env().Undefined();
}

// rope(x, rows, stride, off, rotDim, cos, sin, rowsPerPos, interleaved)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Args a{info, "rope"};
  const int64_t rows = a.dim(1, "rows"), stride = a.dim(2, "stride"), off = a.dim(3, "off");
  const int64_t rotDim = a.dim(4, "rotDim"), rowsPerPos = a.dim(7, "rowsPerPos");
  const auto x = a.f32(0, "x"), cos = a.f32(5, "cos"), sin = a.f32(6, "sin");
  const bool interleaved = a.flag(8);
  if (rotDim % 2 != 0) range_error(a.env(), "rope: rotDim must be even, got " + std::to_string(rotDim));
  if (add(off, rotDim) > stride) {
    range_error(a.env(), "rope: off + rotDim = " + std::to_string(add(off, rotDim)) +
                             " exceeds stride " + std::to_string(stride));
  }
  if (rowsPerPos < 1) range_error(a.env(), "rope: rowsPerPos must be >= 1, got 0");
  if (rows == 0 || rotDim == 0) return info.Env().Undefined();
  const int64_t half = rotDim / 2;
  const int64_t positions = (rows - 1) / rowsPerPos + 1;
  a.len("x", x.n, add(mul(rows - 1, stride), off + rotDim));
  a.len("cos", cos.n, mul(positions, half));
  a.len("sin", sin.n, mul(positions, half));
  const auto& kern = active_kernels();
  const auto row = interleaved ? kern.rope_interleaved_row : kern.rope_half_row;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t p = r / rowsPerPos;
    row(x.p + r * stride + off, cos.p + p * half, sin.p + p * half, half);
  }
  return info.Env().Undefined();
}

// swiglu(out, gate, up, n)
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  Args a{info, "swiglu"};
  const int64_t n = a.dim(3, "n");
  const auto out = a.f32(0, "out"), gate = a.f32(1, "gate"), up = a.f32(2, "up");
  a.len("gate", gate.n, n); a.len("up", up.n, n); a.len("out", out.n, n);
  moekit::swiglu(out.p, gate.p, up.p, n);
  return info.Env().Undefined();
}

// swigluClamped(out, gate, up, n, limit, alpha)
Napi::Value SwigluClamped(const Napi::CallbackInfo& info) {
  Args a{info, "swigluClamped"};
  const int64_t n = a.dim(3, "n");
  const auto out = a.f32(0, "out"), gate = a.f32(1, "gate"), up = a.f32(2, "up");
  a.len("gate", gate.n, n); a.len("up", up.n, n); a.len("out", out.n, n);
  const double limit = a.number(4, "limit"), alpha = a.number(5, "alpha");
  moekit::swiglu_clamped(out.p, gate.p, up.p, n, static_cast<float>(limit),
                         static_cast<float>(alpha));
  return info.Env().Undefined();
}

// topk(x, rows, cols, k, idx, val)
Napi::Value Topk(const Napi::CallbackInfo& info) {
  Args a{info, "topk"};
  const int64_t rows = a.dim(1, "rows"), cols = a.dim(2, "cols"), k = a.dim(3, "k");
  const auto x = a.f32(0, "x"), val = a.f32(5, "val");
  const auto idx = a.i32(4, "idx");
  if (k > cols) {
    range_error(a.env(), "topk: k=" + std::to_string(k) + " exceeds cols=" + std::to_string(cols));
  }
  if (cols > INT32_MAX) range_error(a.env(), "topk: cols exceeds the Int32Array index range");
  a.len("x", x.n, mul(rows, cols));
  a.len("idx", idx.n, mul(rows, k));
  a.len("val", val.n, mul(rows, k));
  moekit::topk(x.p, rows, cols, k, idx.p, val.p);
  return info.Env().Undefined();
}

// ---- training kernels (train.cc) ------------------------------------------------------------

// rmsnormBackward(dx, dy, x, w | null, dw | null, rows, dim, eps)
Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  Args a{info, "rmsnormBackward"};
  const int64_t rows = a.dim(5, "rows"), dim = a.dim(6, "dim");
  const auto dx = a.f32(0, "dx"), dy = a.f32(1, "dy"), x = a.f32(2, "x");
  const int64_t n = mul(rows, dim);
  a.len("dx", dx.n, n); a.len("dy", dy.n, n); a.len("x", x.n, n);
  const float* w = nullptr;
  float* dw = nullptr;
  if (!a.is_null(3)) { const auto wa = a.f32(3, "w"); if (rows > 0) a.len("w", wa.n, dim); w = wa.p; }
  if (!a.is_null(4)) { const auto da = a.f32(4, "dw"); if (rows > 0) a.len("dw", da.n, dim); dw = da.p; }
  moekit::rmsnorm_backward(dx.p, dy.p, x.p, w, dw, rows, dim, a.number(7, "eps"));
  return info.Env().Undefined();
}

// swigluBackward(dg, du, da, g, u, n)
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  Args a{info, "swigluBackward"};
  const int64_t n = a.dim(5, "n");
  const auto dg = a.f32(0, "dg"), du = a.f32(1, "du"), da = a.f32(2, "da"), g = a.f32(3, "g"), u = a.f32(4, "u");
  a.len("dg", dg.n, n); a.len("du", du.n, n); a.len("da", da.n, n); a.len("g", g.n, n); a.len("u", u.n, n);
  moekit::swiglu_backward(dg.p, du.p, da.p, g.p, u.p, n);
  return info.Env().Undefined();
}

// softmaxBackward(dp, p, rows, n, ld)
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Args a{info, "softmaxBackward"};
  const int64_t rows = a.dim(2, "rows"), n = a.dim(3, "n");
  const int64_t ld = a.lead(4, "ld", n);
  const auto dp = a.f32(0, "dp"), p = a.f32(1, "p");
  a.len("dp", dp.n, span(rows, n, ld)); a.len("p", p.n, span(rows, n, ld));
  moekit::softmax_backward(dp.p, p.p, rows, n, ld);
  return info.Env().Undefined();
}

// adamw(p, g, m, v, n, b1, b2, stepSize, bc2, eps, wd)
Napi::Value Adamw(const Napi::CallbackInfo& info) {
  Args a{info, "adamw"};
  const int64_t n = a.dim(4, "n");
  const auto p = a.f32(0, "p"), g = a.f32(1, "g"), m = a.f32(2, "m"), v = a.f32(3, "v");
  a.len("p", p.n, n); a.len("g", g.n, n); a.len("m", m.n, n); a.len("v", v.n, n);
  moekit::adamw(p.p, g.p, m.p, v.p, n, a.number(5, "b1"), a.number(6, "b2"), a.number(7, "stepSize"),
                a.number(8, "bc2"), a.number(9, "eps"), a.number(10, "wd"));
  return info.Env().Undefined();
}

// addTo(dst, src, n)
Napi::Value AddTo(const Napi::CallbackInfo& info) {
  Args a{info, "addTo"};
  const int64_t n = a.dim(2, "n");
  const auto dst = a.f32(0, "dst"), src = a.f32(1, "src");
  a.len("dst", dst.n, n); a.len("src", src.n, n);
  moekit::add_to(dst.p, src.p, n);
  return info.Env().Undefined();
}

// scale(x, n, s): x *= s
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Args a{info, "scale"};
  const int64_t n = a.dim(1, "n");
  const auto x = a.f32(0, "x");
  a.len("x", x.n, n);
  moekit::scale(x.p, n, a.number(2, "s"));
  return info.Env().Undefined();
}

// sumSquares(x, n, acc) -> acc + sum x^2
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Args a{info, "sumSquares"};
  const int64_t n = a.dim(1, "n");
  const auto x = a.f32(0, "x");
  a.len("x", x.n, n);
  return Napi::Number::New(info.Env(), moekit::sum_squares(x.p, n, a.number(2, "acc")));
}

// the rows lo..hi of `order` (assignment ids): every token row a / K of a [rows, H] buffer `name` holding `have`
// elements, and (with wn >= 0) every assignment a inside a weight buffer of wn elements
void check_rows(const Args& a, const Args::I32& order, int64_t lo, int64_t hi, int64_t H, int64_t K,
                const char* name, int64_t have, int64_t wn) {
  if (lo > hi) range_error(a.env(), a.pre("lo") + "=" + std::to_string(lo) + " exceeds hi=" + std::to_string(hi));
  a.len("order", order.n, hi);
  if (K < 1) range_error(a.env(), a.pre("K") + " must be >= 1, got 0");
  for (int64_t r = lo; r < hi; r++) {
    const int64_t id = order.p[r];
    if (id < 0 || (wn >= 0 && id >= wn) || mul(id / K + 1, H) > have) {
      range_error(a.env(), a.pre("order") + "[" + std::to_string(r) + "]=" + std::to_string(id) +
                               " is outside " + name + (wn >= 0 ? " or w" : ""));
    }
  }
}

// gatherRows(y, x, H, K, order, lo, hi): y[r - lo] = x[order[r] / K]
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  Args a{info, "gatherRows"};
  const int64_t H = a.dim(2, "H"), K = a.dim(3, "K"), lo = a.dim(5, "lo"), hi = a.dim(6, "hi");
  const auto y = a.f32(0, "y"), x = a.f32(1, "x");
  const auto order = a.i32(4, "order");
  check_rows(a, order, lo, hi, H, K, "x", x.n, -1);
  a.len("y", y.n, mul(hi - lo, H));
  moekit::gather_rows(y.p, x.p, H, K, order.p, lo, hi);
  return info.Env().Undefined();
}

// scatterRows(dx, dxe, H, K, order, lo, hi): dx[order[r] / K] += dxe[r - lo]
Napi::Value ScatterRows(const Napi::CallbackInfo& info) {
  Args a{info, "scatterRows"};
  const int64_t H = a.dim(2, "H"), K = a.dim(3, "K"), lo = a.dim(5, "lo"), hi = a.dim(6, "hi");
  const auto dx = a.f32(0, "dx"), dxe = a.f32(1, "dxe");
  const auto order = a.i32(4, "order");
  check_rows(a, order, lo, hi, H, K, "dx", dx.n, -1);
  a.len("dxe", dxe.n, mul(hi - lo, H));
  moekit::scatter_rows(dx.p, dxe.p, H, K, order.p, lo, hi);
  return info.Env().Undefined();
}

// combineRows(out, y, H, K, w, order, lo, hi): out[a / K] += w[a] y[r - lo], a = order[r]
Napi::Value CombineRows(const Napi::CallbackInfo& info) {
  Args a{info, "combineRows"};
  const int64_t H = a.dim(2, "H"), K = a.dim(3, "K"), lo = a.dim(6, "lo"), hi = a.dim(7, "hi");
  const auto out = a.f32(0, "out"), y = a.f32(1, "y"), w = a.f32(4, "w");
  const auto order = a.i32(5, "order");
  check_rows(a, order, lo, hi, H, K, "out", out.n, w.n);
  a.len("y", y.n, mul(hi - lo, H));
  moekit::combine_rows(out.p, y.p, H, K, w.p, order.p, lo, hi);
  return info.Env().Undefined();
}

// combineRowsBackward(dw, dye, dy, y, H, K, w, order, lo, hi): dw[a] = dy[a / K] . y[r - lo], dye[r - lo] = w[a] dy[a / K]
Napi::Value CombineRowsBackward(const Napi::CallbackInfo& info) {
  Args a{info, "combineRowsBackward"};
  const int64_t H = a.dim(4, "H"), K = a.dim(5, "K"), lo = a.dim(8, "lo"), hi = a.dim(9, "hi");
  const auto dw = a.f32(0, "dw"), dye = a.f32(1, "dye"), dy = a.f32(2, "dy"), y = a.f32(3, "y"), w = a.f32(6, "w");
  const auto order = a.i32(7, "order");
  check_rows(a, order, lo, hi, H, K, "dy", dy.n, w.n < dw.n ? w.n : dw.n);
  a.len("y", y.n, mul(hi - lo, H));
  a.len("dye", dye.n, mul(hi - lo, H));
  moekit::combine_rows_backward(dw.p, dye.p, dy.p, y.p, H, K, w.p, order.p, lo, hi);
  return info.Env().Undefined();
}

// info() -> { simd, avx2, threads, blasConfig, blasCore }
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("simd", active_kernels().name);
  o.Set("avx2", moekit::cpu_has_avx2_fma());
  o.Set("threads", moekit::blas_get_threads());
  o.Set("blasConfig", moekit::blas_config());
  o.Set("blasCore", moekit::blas_core());
  o.Set("amx", moekit::amx_available());
  o.Set("amxOn", moekit::amx_enabled());
  o.Set("avx512bf16", moekit::avx512_bf16_available());
  o.Set("avx512vnni", moekit::avx512_vnni_available());
  o.Set("avx512On", moekit::avx512_allowed() && (moekit::avx512_bf16_available() || moekit::avx512_vnni_available()));
  return o;
}

// setThreads(n): OpenBLAS thread count (n >= 1)
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args a{info, "setThreads"};
  const int64_t n = a.dim(0, "n");
  if (n < 1 || n > 4096) range_error(a.env(), "setThreads: n must be in [1, 4096], got " + std::to_string(n));
  moekit::blas_set_threads(static_cast<int>(n));
  return Napi::Number::New(info.Env(), moekit::blas_get_threads());
}

// setSimd("avx2" | "scalar" | "auto") -> the row-kernel set now in use (for tests)
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  const std::string which = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (!moekit::select_kernels(which.c_str())) {
    range_error(info.Env(), "setSimd: '" + which + "' is not available on this CPU (avx2 | scalar | auto)");
  }
  return Napi::String::New(info.Env(), active_kernels().name);
}

// setAmx(on) -> whether sgemm_bf16 now takes the AMX path (false where the CPU or the OS does not offer it)
Napi::Value SetAmx(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) type_error(info.Env(), "setAmx: on must be a boolean");
  moekit::set_amx(info[0].As<Napi::Boolean>().Value());
  return Napi::Boolean::New(info.Env(), moekit::amx_enabled());
}

// setAvx512(on) -> whether AVX-512 paths (sgemm_bf16 on VDPBF16PS, qgemm on VNNI) are now in use (false where the CPU
// has neither); setAvx512(true, true): sgemm_bf16 on VDPBF16PS at every M >= 2, not only where it wins (tests, benchmarks)
Napi::Value SetAvx512(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) type_error(info.Env(), "setAvx512: on must be a boolean");
  if (info.Length() > 1 && !info[1].IsBoolean() && !info[1].IsUndefined()) type_error(info.Env(), "setAvx512: force must be a boolean");
  moekit::set_avx512(info[0].As<Napi::Boolean>().Value(), info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value());
  return Napi::Boolean::New(info.Env(), moekit::avx512_allowed() &&
                                            (moekit::avx512_bf16_available() || moekit::avx512_vnni_available()));
}

// mapFile(path, offset, length) -> ArrayBuffer over bytes [offset - skew, offset + length) of the file, skew =
// offset mod the page size (so a view at byte skew is the range itself): a private, copy-on-write mapping (writes
// into it never reach the file; pages are read on first touch and shared with the page cache), ended when the
// ArrayBuffer is collected. One range per call: Node 20's ArrayBuffers stop at 4 GiB, files (and shards) do not.
// A file truncated by another process while mapped faults on access, as llama.cpp's mappings do; files moekit
// writes are replaced by rename, which leaves a mapping intact.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    type_error(info.Env(), "mapFile: expected (path, offset, length)");
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const double off = info[1].As<Napi::Number>().DoubleValue(), len = info[2].As<Napi::Number>().DoubleValue();
  const int64_t page = static_cast<int64_t>(sysconf(_SC_PAGESIZE));
  if (!(off >= 0 && len > 0 && off == std::floor(off) && len == std::floor(len) && len + page <= 4294967296.0)) {
    range_error(info.Env(), "mapFile: offset and length must be integers, 0 < length <= 4 GiB - one page");
  }
  const int64_t o = static_cast<int64_t>(off), skew = o % page, n = static_cast<int64_t>(len) + skew;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(info.Env(), "mapFile: cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || o + static_cast<int64_t>(len) > static_cast<int64_t>(st.st_size)) {
    close(fd);
    range_error(info.Env(), "mapFile: the range is not inside " + path);
  }
  void* p = mmap(nullptr, static_cast<size_t>(n), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, static_cast<off_t>(o - skew));
  const int e = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throw Napi::Error::New(info.Env(), "mapFile: cannot map " + path + ": " + std::strerror(e));
  return Napi::ArrayBuffer::New(
      info.Env(), p, static_cast<size_t>(n), [](Napi::Env, void* data, size_t* sz) { munmap(data, *sz); delete sz; },
      new size_t(static_cast<size_t>(n)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("sgemv", Napi::Function::New(env, Sgemv, "sgemv"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("attnDecode", Napi::Function::New(env, AttnDecode, "attnDecode"));
  exports.Set("attnDecodeBatch", Napi::Function::New(env, AttnDecodeBatch, "attnDecodeBatch"));
  exports.Set("expertsForward", Napi::Function::New(env, ExpertsForward, "expertsForward"));
  exports.Set("rmsnorm", Napi::Function::New(env, Rmsnorm, "rmsnorm"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("swiglu", Napi::Function::New(env, Swiglu, "swiglu"));
  exports.Set("swigluClamped", Napi::Function::New(env, SwigluClamped, "swigluClamped"));
  exports.Set("topk", Napi::Function::New(env, Topk, "topk"));
  exports.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32, "bf16ToF32"));
  exports.Set("sgemvBf16", Napi::Function::New(env, SgemvBf16, "sgemvBf16"));
  exports.Set("sgemmBf16", Napi::Function::New(env, SgemmBf16, "sgemmBf16"));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  exports.Set("qgemm", Napi::Function::New(env, Qgemm, "qgemm"));
  exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  exports.Set("rmsnormBackward", Napi::Function::New(env, RmsnormBackward, "rmsnormBackward"));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward, "swigluBackward"));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward, "softmaxBackward"));
  exports.Set("adamw", Napi::Function::New(env, Adamw, "adamw"));
  exports.Set("addTo", Napi::Function::New(env, AddTo, "addTo"));
  exports.Set("scale", Napi::Function::New(env, Scale, "scale"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows, "gatherRows"));
  exports.Set("scatterRows", Napi::Function::New(env, ScatterRows, "scatterRows"));
  exports.Set("combineRows", Napi::Function::New(env, CombineRows, "combineRows"));
  exports.Set("combineRowsBackward", Napi::Function::New(env, CombineRowsBackward, "combineRowsBackward"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd, "setSimd"));
  exports.Set("setAmx", Napi::Function::New(env, SetAmx, "setAmx"));
  exports.Set("setAvx512", Napi::Function::New(env, SetAvx512, "setAvx512"));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  return exports;
}

}  // namespace

NODE_API_MODULE(moekit_native, Init)
