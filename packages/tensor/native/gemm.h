// The one matrix product every kernel calls, on BLIS kernels fedclr chooses for this CPU.
#ifndef FEDCLR_GEMM_H
#define FEDCLR_GEMM_H
#include <stddef.h>

enum { NO_TRANSPOSE = 0, TRANSPOSE = 1 };

// Chooses the kernels, once per process. Returns NULL, or why they cannot run (a static string).
const char* gemmInit(void);
// What runs, e.g. "BLIS 0.9.0 skx kernels (AVX-512, chosen by fedclr)".
const char* gemmDescription(void);
// Row-major c[m, n] = op(a) · op(b) + beta · c; op(a) is [m, k] (stored [k, m] when transposed).
void sgemm(int transposeA, int transposeB, size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b,
           size_t ldb, float beta, float* c, size_t ldc);

#endif
