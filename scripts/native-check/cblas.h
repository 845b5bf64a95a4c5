// A stand-in for <cblas.h> (the device host has no OpenBLAS headers): only what native/bf16.cc calls.
#pragma once
typedef int blasint;
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint M, blasint N, blasint K, float alpha,
                 const float* A, blasint lda, const float* B, blasint ldb, float beta, float* C, blasint ldc);
