/* bf16x3 AMX GEMM (src/core/gemm_x3*.c) against a float64 product.
 * Bound per element: |C - C64| <= 2^-15 * sum_k |A_ik| |B_kj| (each of the three kept
 * partial products is exact in float32; the dropped lo*lo term and the lo rounding are each
 * <= 2^-17 relative, float32 accumulation adds ~K * 2^-24). Also checks the float32 rounding
 * level is not reached trivially (the error is > 0 somewhere), odd shapes, row offsets,
 * that the padding between rows (filled with NaN) is never read.
 * Skips (exit 77) on a machine without AMX. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradbrain/arena.h"
#include "gradbrain/gemm_x3.h"
#include "gradbrain/rng.h"

static void one_case(int64_t M, int64_t K, int64_t N, int64_t row0, int64_t nrows, uint64_t seed) {
  gb_rng r;
  gb_rng_seed(&r, seed);
  int64_t lda = K + 3, ldb = N + 5, ldc = N + 7;
  float *A = gb_alloc((size_t)(M * lda) * 4, "A"), *B = gb_alloc((size_t)(K * ldb) * 4, "B");
  float *C = gb_alloc((size_t)(nrows * ldc) * 4, "C");
  for (int64_t i = 0; i < M * lda; i++) A[i] = (float)(gb_rng_normal(&r) * (1 + (i % 7)));
  for (int64_t i = 0; i < K * ldb; i++) B[i] = (float)(gb_rng_normal(&r) * 1e-3);
  /* the padding between rows must never be read: NaN there would poison the result */
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = K; k < lda; k++) A[i * lda + k] = NAN;
  for (int64_t k = 0; k < K; k++)
    for (int64_t j = N; j < ldb; j++) B[k * ldb + j] = NAN;
  for (int64_t i = 0; i < nrows * ldc; i++) C[i] = -12345.f; /* padding columns must stay */
  gb_x3_left pa = {0};
  gb_x3_right pb = {0};
  CHECK(gb_x3_pack_left(A, M, K, lda, &pa) == GB_OK, "pack left");
  CHECK(gb_x3_pack_right(B, K, N, ldb, &pb) == GB_OK, "pack right");
  gb_x3_gemm(&pa, row0, nrows, &pb, C, ldc);
  double worst = 0, maxerr = 0;
  for (int64_t i = 0; i < nrows; i++) {
    for (int64_t j = 0; j < N; j++) {
      double s = 0, sa = 0;
      for (int64_t k = 0; k < K; k++) {
        double p = (double)A[(row0 + i) * lda + k] * B[k * ldb + j];
        s += p;
        sa += fabs(p);
      }
      double e = fabs(C[i * ldc + j] - s);
      CHECK(isfinite(C[i * ldc + j]), "C(%lld,%lld) = %g", (long long)i, (long long)j, C[i * ldc + j]);
      if (!isfinite(C[i * ldc + j])) return;
      if (e > maxerr) maxerr = e;
      if (sa > 0 && e / sa > worst) worst = e / sa;
    }
    for (int64_t j = N; j < ldc; j++) CHECK(C[i * ldc + j] == -12345.f, "wrote past column N at (%lld,%lld)", (long long)i, (long long)j);
  }
  CHECK(worst <= ldexp(1.0, -15), "M=%lld K=%lld N=%lld row0=%lld: worst error %.3g of sum|ab| (limit 2^-15 = %.3g)",
        (long long)M, (long long)K, (long long)N, (long long)row0, worst, ldexp(1.0, -15));
  CHECK(maxerr > 0, "no rounding at all: the bf16 path was not exercised");
  printf("M=%lld K=%lld N=%lld rows %lld+%lld: worst |err|/sum|ab| = %.3g\n", (long long)M, (long long)K,
         (long long)N, (long long)row0, (long long)nrows, worst);
  gb_x3_left_free(&pa);
  gb_x3_right_free(&pb);
  gb_free(A), gb_free(B), gb_free(C);
}

/* pack_right_scaled must pack exactly what pack_right packs from the formed matrix */
static void scaled_case(int64_t K, int64_t m, int k) {
  gb_rng r;
  gb_rng_seed(&r, 7);
  float *Z = gb_alloc((size_t)(K * m) * 4, "Z"), *S = gb_alloc((size_t)(K * k) * 4, "S");
  float *B = gb_alloc((size_t)(K * k * m) * 4, "B");
  for (int64_t i = 0; i < K * m; i++) Z[i] = (float)gb_rng_normal(&r);
  for (int64_t i = 0; i < K * k; i++) S[i] = (float)gb_rng_normal(&r);
  for (int64_t j = 0; j < K; j++)
    for (int q = 0; q < k; q++)
      for (int64_t t = 0; t < m; t++) B[j * k * m + q * m + t] = S[j * k + q] * Z[j * m + t];
  gb_x3_right a = {0}, b = {0};
  CHECK(gb_x3_pack_right(B, K, (int64_t)k * m, (int64_t)k * m, &a) == GB_OK, "pack");
  CHECK(gb_x3_pack_right_scaled(Z, K, m, m, S, k, &b) == GB_OK, "pack scaled");
  size_t bytes = (size_t)(a.Kp * a.Np) * 2;
  CHECK(a.Np == b.Np && a.Kp == b.Kp && memcmp(a.hi, b.hi, bytes) == 0 && memcmp(a.lo, b.lo, bytes) == 0,
        "K=%lld m=%lld k=%d: scaled packing differs from packing the formed matrix", (long long)K, (long long)m, k);
  gb_x3_right_free(&a);
  gb_x3_right_free(&b);
  gb_free(Z), gb_free(S), gb_free(B);
}

/* pack_right_t(W) must pack exactly what pack_right packs from the formed W^T */
static void transposed_case(int64_t N, int64_t K) {
  gb_rng r;
  gb_rng_seed(&r, 9);
  int64_t ldw = K + 2;
  float *W = gb_alloc((size_t)(N * ldw) * 4, "W"), *Wt = gb_alloc((size_t)(K * N) * 4, "W^T");
  for (int64_t i = 0; i < N * ldw; i++) W[i] = (float)gb_rng_normal(&r);
  for (int64_t j = 0; j < N; j++)
    for (int64_t k = 0; k < K; k++) Wt[k * N + j] = W[j * ldw + k];
  gb_x3_right a = {0}, b = {0};
  CHECK(gb_x3_pack_right(Wt, K, N, N, &a) == GB_OK, "pack");
  CHECK(gb_x3_pack_right_t(W, N, K, ldw, &b) == GB_OK, "pack transposed");
  size_t bytes = (size_t)(a.Kp * a.Np) * 2;
  CHECK(a.Np == b.Np && a.Kp == b.Kp && memcmp(a.hi, b.hi, bytes) == 0 && memcmp(a.lo, b.lo, bytes) == 0,
        "N=%lld K=%lld: transposed packing differs from packing the formed W^T", (long long)N, (long long)K);
  gb_x3_right_free(&a);
  gb_x3_right_free(&b);
  gb_free(W), gb_free(Wt);
}

int main(void) {
  if (!gb_x3_available()) {
    printf("AMX bf16 not available here (%s): skipped\n", gb_x3_path());
    return 77;
  }
  one_case(64, 64, 64, 0, 64, 1);
  one_case(100, 77, 45, 32, 68, 2);   /* odd shapes, row offset, edge tiles */
  one_case(33, 1, 1, 0, 33, 3);       /* K = 1, N = 1 */
  one_case(40, 40, 20, 0, 40, 5);     /* K = 40: the second k block is partly empty */
  one_case(64, 8, 70, 32, 32, 6);     /* K < 16 */
  one_case(480, 768, 300, 64, 416, 4); /* the LOO shape, smaller */
  scaled_case(77, 13, 9);  /* blocks straddle column tiles */
  scaled_case(64, 48, 3);
  transposed_case(45, 77);
  transposed_case(384, 64);
  return check_failures ? 1 : 0;
}
