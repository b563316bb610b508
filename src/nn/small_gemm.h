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

/* Called after each output tile of small_gemm_panels is stored (rows i0..i0+mr-1, columns
 * j0..j0+n-1), while the tile is still in L1: fused elementwise epilogues. */
typedef void (*small_gemm_post_fn)(void *ctx, int i0, int mr, int j0, int n);

/* Floats of small_panels(w, rows, cols). */
int64_t small_panels_size(int rows, int cols);
/* W^T of W (rows x cols, row-major) in panels of 64 columns: panel p is the contiguous
 * (cols x 64) row-major block of columns 64p..64p+63 of W^T (zero beyond `rows`). */
void small_panels(float *dst, const float *w, int rows, int cols);
/* B (K x N, row-major) in panels of 64 columns: panel p is the contiguous (K x 64) block of
 * columns 64p..64p+63 (zero beyond N); small_panels_size(N, K) floats. Then A B is
 * small_gemm_panels(M, N, K, A, lda, panels, ...). */
void small_panels_copy(float *dst, const float *b, int K, int N);
/* C (M x N, ldc) = A (M x K, row-major, lda) W^T for W (N x K) given as small_panels(W, N, K),
 * panel by panel (each stays in cache while all rows stream past); then post (may be NULL)
 * on every tile. */
void small_gemm_panels(int M, int N, int K, const float *A, int64_t lda, const float *Wp, float *C, int64_t ldc,
                       small_gemm_post_fn post, void *ctx);

#endif
