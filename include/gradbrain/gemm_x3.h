/* gradbrain — float32 matrix products on Intel AMX tiles, "bf16x3".
 *
 * Each float32 operand x is split into two bfloat16 numbers, x = hi + lo + O(2^-17 |x|)
 * (hi = x rounded to bf16, lo = (x - hi) rounded to bf16), and a product is summed from the
 * three largest partial products, a_hi b_hi + a_hi b_lo + a_lo b_hi, accumulated in float32
 * by the AMX unit. Each term of a dot product therefore carries a relative error of about
 * 2^-16 (1.5e-5) instead of float32's 2^-24: good enough where the result only ranks
 * alternatives (ridge's leave-one-out errors choose an alpha), not for reported values.
 * On a core with AMX the three bf16 products run ~3-4x faster than one float32 SGEMM.
 *
 * Use: check gb_x3_available(), pack the left operand once (rows), the right operand once
 * (VNNI pairs), then multiply any 32-aligned block of rows. Operand structs start zeroed
 * ({0}); packing into a struct that already holds buffers reuses them when large enough. Without AMX (or with the
 * environment variable GB_AMX=0) gb_x3_available() is 0 and callers use gb_sgemm. */
#ifndef GRADBRAIN_GEMM_X3_H
#define GRADBRAIN_GEMM_X3_H

#include <stddef.h>
#include <stdint.h>

#include "gradbrain/status.h"

/* Operands are stored tile by tile: each AMX tile is one contiguous 1 KB block (rows 64
 * bytes apart), so tile loads never stride across pages or collide in cache sets. */

/* Left operand A (M x K), M and K padded to multiples of 32: tile (i/16, k/32) holds 16 rows
 * x 32 k of bfloat16, tiles ordered by row block, then k block. */
typedef struct {
  int64_t M, K, Mp, Kp;
  uint16_t *hi, *lo;
  size_t cap; /* bytes allocated per array */
} gb_x3_left;

/* Right operand B (K x N) in AMX's VNNI form: tile (j/16, k/32) holds 16 pairs of k x 16
 * columns x 2 bfloat16, tiles ordered by column block, then k block. */
typedef struct {
  int64_t K, N, Kp, Np;
  uint16_t *hi, *lo;
  size_t cap;
} gb_x3_right;

/* 1 when this process may use AMX bf16 tiles (CPU support + kernel permission, GB_AMX != 0). */
int gb_x3_available(void);
/* A short description of the path in use, for provenance ("amx-bf16x3" or "sgemm"). */
const char *gb_x3_path(void);

/* Packs row-major A (M x K, leading dimension lda). Caller frees with gb_x3_left_free. */
gb_status gb_x3_pack_left(const float *A, int64_t M, int64_t K, int64_t lda, gb_x3_left *out);
/* Packs row-major B (K x N, leading dimension ldb). Caller frees with gb_x3_right_free. */
gb_status gb_x3_pack_right(const float *B, int64_t K, int64_t N, int64_t ldb, gb_x3_right *out);
/* Packs B = [S[:,0] .* Z | S[:,1] .* Z | ... ] (K x k*m) without forming it: Z is K x m
 * (leading dimension ldz), S is K x k row-major (row j of block q scaled by S[j*k + q]). */
gb_status gb_x3_pack_right_scaled(const float *Z, int64_t K, int64_t m, int64_t ldz, const float *S, int k,
                                  gb_x3_right *out);
/* Packs B = W^T (K x N) from row-major W (N x K, leading dimension ldw), e.g. a PyTorch
 * nn.Linear weight (out x in) for x W^T. */
gb_status gb_x3_pack_right_t(const float *W, int64_t N, int64_t K, int64_t ldw, gb_x3_right *out);
void gb_x3_left_free(gb_x3_left *a);
void gb_x3_right_free(gb_x3_right *b);

/* C[0:nrows, 0:N] = A[row0:row0+nrows, :] B (row-major C with leading dimension ldc).
 * row0 must be a multiple of 32. Only call when gb_x3_available(). Runs on all threads
 * (OpenMP over column blocks) when called outside a parallel region. */
void gb_x3_gemm(const gb_x3_left *A, int64_t row0, int64_t nrows, const gb_x3_right *B, float *C, int64_t ldc);

#endif
