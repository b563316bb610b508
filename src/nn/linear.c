/* Linear layer: out = inp W^T + b (PyTorch nn.Linear layout).
 *
 * Batch invariance: a row's result must not depend on how many other rows (images) share the
 * call. OpenBLAS's regular GEMM path is row-invariant (the k order is fixed by its blocking),
 * but for small problems (M*N*K <= 1e6 in 0.3.21 on AVX-512; measured) it switches to
 * small-matrix kernels, and to GEMV when M = 1, whose rounding differs. So a call goes
 * straight to GEMM only when a slice of R rows (R = 16, 32 or 64, the smallest with
 * R*K*N >= 2^23, 8x above that limit) is already large and there are >= R rows; fewer rows
 * are zero-padded to R. Shapes too small even at 64 rows are always processed in slices of
 * exactly 64 rows (the last one padded), so every row always sees the same kernel. */
#include <string.h>

#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/nn.h"
#include "linear_x3.h"
#include "par.h"

enum { BIG = 1 << 23 };

/* Rows r0..r0+n-1 of out set to bias (the GEMM then accumulates onto it with beta = 1, which
 * spares OpenBLAS's zeroing pass for beta = 0 and a separate bias pass). */
static void fill_bias(float *out, const float *bias, int64_t n, int ncols) {
#pragma omp parallel for schedule(static) if (GB_PAR_IF(n * ncols))
  for (int64_t i = 0; i < n; i++) memcpy(out + i * ncols, bias, (size_t)ncols * sizeof(float));
}

/* out (N x ncols) = A (N x K) op(W) [+ bias], op(W) = W^T for tb 'T' (W ncols x K), W for 'N'
 * (K x ncols); bias may be NULL. */
static void rows_gemm(char tb, int64_t N, int ncols, int K, const float *A, const float *W, int ldw,
                      const float *bias, float *out) {
  if (linear_x3(tb, N, ncols, K, A, W, ldw, bias, out)) return; /* opt-in bf16x3 mode */
  int64_t kn = (int64_t)K * ncols;
  int R = 16 * kn >= BIG ? 16 : 32 * kn >= BIG ? 32 : 64;
  float beta = bias ? 1.0f : 0.0f;
  if (N >= R && (int64_t)R * kn >= BIG) {
    if (bias) fill_bias(out, bias, N, ncols);
    gb_sgemm('N', tb, (int)N, ncols, K, 1.0f, A, K, W, ldw, beta, out, ncols);
    return;
  }
  float *pa = NULL, *po = NULL;
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    int64_t nr = N - r0 < R ? N - r0 : R;
    if (nr == R) {
      if (bias) fill_bias(out + r0 * ncols, bias, R, ncols);
      gb_sgemm('N', tb, R, ncols, K, 1.0f, A + r0 * K, K, W, ldw, beta, out + r0 * ncols, ncols);
      continue;
    }
    if (!pa) pa = gb_calloc((size_t)R * K * sizeof(float), "GEMM padding");
    if (!po) po = gb_alloc((size_t)R * ncols * sizeof(float), "GEMM padding");
    if (!pa || !po) { /* no memory for padding: still correct, only not batch-invariant */
      if (bias) fill_bias(out + r0 * ncols, bias, nr, ncols);
      gb_sgemm('N', tb, (int)nr, ncols, K, 1.0f, A + r0 * K, K, W, ldw, beta, out + r0 * ncols, ncols);
      continue;
    }
    memcpy(pa, A + r0 * K, (size_t)nr * K * sizeof(float));
    if (bias) fill_bias(po, bias, R, ncols);
    gb_sgemm('N', tb, R, ncols, K, 1.0f, pa, K, W, ldw, beta, po, ncols);
    memcpy(out + r0 * ncols, po, (size_t)nr * ncols * sizeof(float));
  }
  gb_free(pa);
  gb_free(po);
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int C,
                    int OC) {
  rows_gemm('T', N, OC, C, inp, weight, C, bias, out);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int64_t N, int C, int OC) {
  if (dinp) rows_gemm('N', N, C, OC, dout, weight, C, NULL, dinp);
  if (dweight) gb_sgemm('T', 'N', OC, C, (int)N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
  if (dbias)
    for (int64_t i = 0; i < N; i++) {
      const float *d = dout + i * OC;
      for (int j = 0; j < OC; j++) dbias[j] += d[j];
    }
}
