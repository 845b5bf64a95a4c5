// Checks and times the native kernel paths of CPUs this project's 2-core machines may lack (AMX, AVX512-BF16,
// AVX512-VNNI) on another host, without Node: native/{amx,bf16,bf16_avx512,quant,quant_vnni,kernels_*}.cc linked
// with a plain-loop cblas_sgemm. Each sgemm_bf16 path is held to a float64 loop over the same bf16 weights
// (|error| <= 2^-15 sum |a w| for AVX512-BF16, whose two bf16 parts of A keep 16 bits; 2^-20 for AMX's three
// parts and AVX2, f32 products) and each qgemm path to the AVX2 one; then
// GFLOP/s of each path side by side, interleaved, median of 5. Run: scripts/native-check/run.sh [threads]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../../native/kernels.h"
#include "cblas.h"

static int g_threads = 1;
namespace moekit {
int blas_get_threads() { return g_threads; }
}
void cblas_sgemm(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint M, blasint N, blasint K, float alpha,
                 const float* A, blasint lda, const float* B, blasint ldb, float beta, float* C, blasint ldc) {
  for (int m = 0; m < M; m++)  // row-major, A [M,K], B transposed: B [N,K]
    for (int n = 0; n < N; n++) {
      float s = 0;
      for (int k = 0; k < K; k++) s += A[m * lda + k] * B[n * ldb + k];
      C[m * ldc + n] = alpha * s + (beta == 0.0f ? 0.0f : beta * C[m * ldc + n]);
    }
}

using namespace moekit;
static std::mt19937 rng(20261204);
static float randf() { return std::uniform_real_distribution<float>(-1, 1)(rng); }
static uint16_t to_bf16(float f) { uint32_t u; std::memcpy(&u, &f, 4); return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16); }
static float bf(uint16_t b) { uint32_t u = static_cast<uint32_t>(b) << 16; float f; std::memcpy(&f, &u, 4); return f; }

enum Path { kAvx2, kAvx512, kAmx };
static const char* kName[] = {"avx2", "avx512", "amx"};
static void use(Path p) {
  select_kernels("avx2");
  set_amx(p == kAmx);
  set_avx512(p != kAvx2, p == kAvx512);
}
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

static int failures = 0;

static void check_bf16(Path p, int64_t M, int64_t N, int64_t K, float beta) {
  const int64_t lda = K + 3, ldw = K + 5, ldc = N + 2;
  std::vector<float> A(M * lda), C(M * ldc), C0;
  std::vector<uint16_t> W(N * ldw);
  for (auto& a : A) a = randf();
  for (auto& w : W) w = to_bf16(randf());
  for (auto& c : C) c = randf();
  C0 = C;
  use(p);
  sgemm_bf16(M, N, K, 0.75f, A.data(), lda, W.data(), ldw, beta, C.data(), ldc);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < ldc; n++) {
      const float got = C[m * ldc + n];
      if (n >= N) { if (got != C0[m * ldc + n]) { failures++; std::printf("FAIL %s: wrote past N\n", kName[p]); return; } continue; }
      double s = 0, mag = 0;
      for (int64_t k = 0; k < K; k++) { const double t = double(A[m * lda + k]) * bf(W[n * ldw + k]); s += t; mag += std::fabs(t); }
      const double want = 0.75 * s + beta * C0[m * ldc + n];
      if (!(std::fabs(got - want) <= std::ldexp(mag, p == kAvx512 ? -15 : -20) + 1e-6)) {
        failures++;
        std::printf("FAIL %s bf16 M=%ld N=%ld K=%ld [%ld,%ld]: %g vs %g\n", kName[p], (long)M, (long)N, (long)K, (long)m, (long)n, got, want);
        return;
      }
    }
}

static double median(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }

int main(int argc, char** argv) {
  g_threads = argc > 1 ? std::atoi(argv[1]) : 1;
  std::printf("amx %d, avx512-bf16 %d, avx512-vnni %d, threads %d\n", amx_available(), avx512_bf16_available(),
              avx512_vnni_available(), g_threads);
  std::vector<Path> paths = {kAvx2};
  if (avx512_bf16_available()) paths.push_back(kAvx512);
  if (amx_available()) paths.push_back(kAmx);
  // correctness: tile edges, odd sizes, beta, threads
  for (Path p : paths)
    for (int64_t M : {2, 3, 4, 5, 15, 16, 17, 31, 33, 48, 64, 65, 130})
      for (int64_t N : {1, 15, 16, 17, 47, 49, 97})
        for (int64_t K : {1, 31, 32, 33, 65, 300}) check_bf16(p, M, N, K, (M + N) % 2 ? 0.0f : 0.5f);
  for (Path p : paths) check_bf16(p, 40, 2000, 1024, 0.0f);
  // qgemm: VNNI against AVX2 (test/kernels-quant.test.ts holds AVX2 to the reference)
  for (int type = 0; type < 2; type++)
    for (int64_t M : {1, 2, 3, 4, 7, 16, 65})
      for (int64_t N : {1, 5, 16, 17, 33}) {
        const int64_t K = 32 * (1 + (M + N) % 5), bs = type == 0 ? 34 : 18;
        std::vector<float> A(M * K), Wf(N * K), C1(M * N), C2(M * N);
        for (auto& a : A) a = randf();
        for (auto& w : Wf) w = randf();
        std::vector<uint8_t> W(N * K / 32 * bs);
        quantize(type, W.data(), Wf.data(), N * K);
        use(kAvx2); qgemm(type, M, N, K, A.data(), K, W.data(), C1.data(), N);
        use(kAvx512); qgemm(type, M, N, K, A.data(), K, W.data(), C2.data(), N);
        double big = 0, d = 0;
        for (int64_t i = 0; i < M * N; i++) { big = std::max(big, (double)std::fabs(C1[i])); d = std::max(d, (double)std::fabs(C1[i] - C2[i])); }
        if (avx512_vnni_available() && d > 1e-5 * big + 1e-6) { failures++; std::printf("FAIL vnni q%d M=%ld N=%ld: %g of %g\n", type, (long)M, (long)N, d, big); }
      }
  std::printf("correctness: %d failure(s)\n", failures);
  // timings
  const int64_t shapes[][3] = {{4, 1024, 2048}, {8, 1024, 2048}, {16, 1024, 2048}, {16, 2048, 1024}, {64, 1024, 2048},
                               {64, 2048, 1024}, {128, 2048, 2048}, {512, 2048, 2048}};
  std::printf("| weights | M×N×K | GFLOP/s per path |\n|---|---|---|\n");
  for (int type = -1; type < 2; type++) {
    for (auto& s : shapes) {
      const int64_t M = s[0], N = s[1], K = s[2];
      std::vector<float> A(M * K), C(M * N), Wf(N * K);
      for (auto& a : A) a = randf();
      for (auto& w : Wf) w = randf();
      std::vector<uint16_t> Wb(N * K);
      for (int64_t i = 0; i < N * K; i++) Wb[i] = to_bf16(Wf[i]);
      std::vector<uint8_t> Wq(N * K / 32 * 34);
      if (type >= 0) quantize(type, Wq.data(), Wf.data(), N * K);
      std::vector<Path> ps = type < 0 ? paths : std::vector<Path>{kAvx2, kAvx512};
      if (type >= 0 && !avx512_vnni_available()) ps = {kAvx2};
      const double flop = 2.0 * M * N * K;
      const int calls = std::max(1, int(2e9 / flop));
      std::vector<std::vector<double>> t(ps.size());
      for (int r = 0; r < 5; r++)
        for (size_t i = 0; i < ps.size(); i++) {
          use(ps[i]);
          auto run = [&] {
            if (type < 0) sgemm_bf16(M, N, K, 1, A.data(), K, Wb.data(), K, 0, C.data(), N);
            else qgemm(type, M, N, K, A.data(), K, Wq.data(), C.data(), N);
          };
          run();
          const double t0 = now();
          for (int c = 0; c < calls; c++) run();
          t[i].push_back((now() - t0) / calls);
        }
      std::printf("| %s | %ld×%ld×%ld |", type < 0 ? "bf16" : type == 0 ? "q8_0" : "q4_0", (long)M, (long)N, (long)K);
      for (size_t i = 0; i < ps.size(); i++) std::printf(" %s %.1f%s", kName[ps[i]], flop / median(t[i]) / 1e9, i + 1 < ps.size() ? "," : "");
      std::printf(" |\n");
    }
  }
  return failures ? 1 : 0;
}
