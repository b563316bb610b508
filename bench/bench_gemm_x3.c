/* bf16x3 AMX GEMM vs OpenBLAS SGEMM on the shape of ridge's leave-one-out product
 * (a block of U rows, n_b x r, times the scaled basis coefficients, r x k*m), same threads.
 *   bench_gemm_x3 [threads=2] [M=480] [K=768] [N=18000] [reps=5]
 * Prints the best time of each, GFLOP/s (nominal 2MNK, the float32-equivalent work) and the
 * ratio; packing of the right operand is timed separately (done once per target batch). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/gemm_x3.h"
#include "gradbrain/rng.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
  int th = argc > 1 ? atoi(argv[1]) : 2;
  int64_t M = argc > 2 ? atoll(argv[2]) : 480, K = argc > 3 ? atoll(argv[3]) : 768, N = argc > 4 ? atoll(argv[4]) : 18000;
  int reps = argc > 5 ? atoi(argv[5]) : 5;
  gb_set_threads(th);
  if (!gb_x3_available()) {
    printf("AMX not available: nothing to compare\n");
    return 0;
  }
  gb_rng r;
  gb_rng_seed(&r, 1);
  float *A = gb_alloc((size_t)(M * K) * 4, "A"), *B = gb_alloc((size_t)(K * N) * 4, "B"), *C = gb_alloc((size_t)(M * N) * 4, "C");
  for (int64_t i = 0; i < M * K; i++) A[i] = (float)gb_rng_normal(&r);
  for (int64_t i = 0; i < K * N; i++) B[i] = (float)gb_rng_normal(&r);
  double flop = 2.0 * M * N * K, ts = 1e9, tx = 1e9, tp = 1e9;
  gb_x3_left pa = {0};
  gb_x3_pack_left(A, M, K, K, &pa);
  for (int i = 0; i < reps; i++) {
    double t0 = now();
    gb_sgemm('N', 'N', (int)M, (int)N, (int)K, 1.f, A, (int)K, B, (int)N, 0.f, C, (int)N);
    double t1 = now();
    gb_x3_right pb = {0};
    gb_x3_pack_right(B, K, N, N, &pb);
    double t2 = now();
    gb_x3_gemm(&pa, 0, M, &pb, C, N);
    double t3 = now();
    gb_x3_right_free(&pb);
    if (t1 - t0 < ts) ts = t1 - t0;
    if (t2 - t1 < tp) tp = t2 - t1;
    if (t3 - t2 < tx) tx = t3 - t2;
  }
  printf("shape %lld x %lld x %lld, %d threads\n", (long long)M, (long long)K, (long long)N, th);
  printf("sgemm   %.4f s  %.1f GFLOP/s\n", ts, flop / ts / 1e9);
  printf("x3 amx  %.4f s  %.1f GFLOP/s (float32-equivalent)  + right packing %.4f s\n", tx, flop / tx / 1e9, tp);
  printf("ratio sgemm/x3 %.2fx (kernel only)\n", ts / tx);
  return 0;
}
