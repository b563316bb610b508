/* The optional bf16x3 path of the linear layers (gb_nn_set_precision(GB_NN_BF16X3)).
 *
 * Each product runs on AMX tiles with both operands split into two bfloat16 terms
 * (include/gradbrain/gemm_x3.h): ~1e-5 relative per dot-product term instead of float32's
 * 6e-8. Measured against PyTorch autograd (float32) on ViT-S/16 with this mode: forward taps
 * within 9e-6 and backprop taps within 8e-5 of the tap norm (issue 3's limits: 1e-4, 1e-3).
 * Rows are computed independently in a fixed k order, so a row's result does not depend on
 * the other rows in the call (batch independence holds bit for bit). Weights are re-packed
 * per call (their K x ncols conversion is ~1/N of the product's work). */
#include "linear_x3.h"

#include <stdlib.h>
#include <string.h>

#include "gradbrain/gemm_x3.h"
#include "gradbrain/nn.h"

static int nn_precision = -1; /* -1: not set; then GB_NN_PRECISION=bf16x3|fp32 decides */

void gb_nn_set_precision(int precision) { nn_precision = precision; }

int gb_nn_precision(void) {
  if (nn_precision < 0) {
    const char *e = getenv("GB_NN_PRECISION");
    nn_precision = e && strcmp(e, "bf16x3") == 0 ? GB_NN_BF16X3 : GB_NN_FP32;
  }
  return nn_precision == GB_NN_BF16X3 && gb_x3_available() ? GB_NN_BF16X3 : GB_NN_FP32;
}

int linear_x3(char tb, int64_t N, int ncols, int K, const float *A, const float *W, int ldw, const float *bias,
              float *out) {
  if (gb_nn_precision() != GB_NN_BF16X3 || N <= 0) return 0;
  /* packed operands per thread (shards may call concurrently), kept between calls so that
   * repeated products reuse their storage; reachable until exit */
  static _Thread_local gb_x3_left pa;
  static _Thread_local gb_x3_right pb;
  if (gb_x3_pack_left(A, N, K, K, &pa) != GB_OK) return 0;
  gb_status st = tb == 'T' ? gb_x3_pack_right_t(W, ncols, K, ldw, &pb) : gb_x3_pack_right(W, K, ncols, ldw, &pb);
  if (st != GB_OK) return 0;
  gb_x3_gemm(&pa, 0, N, &pb, out, ncols);
  if (bias)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
      float *o = out + i * ncols;
      for (int j = 0; j < ncols; j++) o[j] += bias[j];
    }
  return 1;
}
