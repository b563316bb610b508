/* Linear-layer products in bf16x3 on AMX tiles (internal to src/nn). */
#ifndef GRADBRAIN_NN_LINEAR_X3_H
#define GRADBRAIN_NN_LINEAR_X3_H

#include <stdint.h>

/* out (N x ncols) = A (N x K) op(W) [+ bias] as linear.c's rows_gemm, when the bf16x3 mode
 * is on (gb_nn_set_precision) and the CPU has AMX; returns 0 (nothing done) otherwise. */
int linear_x3(char tb, int64_t N, int ncols, int K, const float *A, const float *W, int ldw, const float *bias,
              float *out);

#endif
