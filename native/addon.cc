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

#include "kernels.h"

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

// info() -> { simd, avx2, threads, blasConfig, blasCore }
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("simd", active_kernels().name);
  o.Set("avx2", moekit::cpu_has_avx2_fma());
  o.Set("threads", moekit::blas_get_threads());
  o.Set("blasConfig", moekit::blas_config());
  o.Set("blasCore", moekit::blas_core());
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("sgemv", Napi::Function::New(env, Sgemv, "sgemv"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("attnDecode", Napi::Function::New(env, AttnDecode, "attnDecode"));
  exports.Set("rmsnorm", Napi::Function::New(env, Rmsnorm, "rmsnorm"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("swiglu", Napi::Function::New(env, Swiglu, "swiglu"));
  exports.Set("swigluClamped", Napi::Function::New(env, SwigluClamped, "swigluClamped"));
  exports.Set("topk", Napi::Function::New(env, Topk, "topk"));
  exports.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32, "bf16ToF32"));
  exports.Set("sgemvBf16", Napi::Function::New(env, SgemvBf16, "sgemvBf16"));
  exports.Set("sgemmBf16", Napi::Function::New(env, SgemmBf16, "sgemmBf16"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd, "setSimd"));
  return exports;
}

}  // namespace

NODE_API_MODULE(moekit_native, Init)
