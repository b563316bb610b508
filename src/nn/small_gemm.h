/* Register-blocked products for the small per-(image, head) matrices of attention (T x T
 * scores times T x hd values, with T ~ 200 and hd = 64), where a BLAS call spends much of
 * its time on edges and packing. Single-threaded; each output element is one float sum over
 * k in increasing order, so a row never depends on the other rows. Internal to src/nn. */
#ifndef GRADBRAIN_NN_SMALL_GEMM_H
#define GRADBRAIN_NN_SMALL_GEMM_H

#include <stdint.h>

/* C (M x N, row-major, ldc) = alpha * A B with A(i, k) = A[i * sai + k * sak] (so sak = 1 is
 * row-major A, sai = 1 is A transposed) and B row-major (K x N, ldb). Requires sai == 1 or
 * sak == 1. */
void small_gemm(int M, int N, int K, float alpha, const float *A, int64_t sai, int64_t sak, const float *B,
                int64_t ldb, float *C, int64_t ldc);

/* dst (cols x rows, row-major, ld = ldd) = transpose of src (rows x cols, ld = lds). With
 * cols a multiple of 16 and ldd >= rows rounded up to 16, the padding columns of dst up to
 * that multiple are written too (zeros). */
void small_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int rows, int cols);

#endif
