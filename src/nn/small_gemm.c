/* Small register-blocked matrix products (see small_gemm.h). With AVX-512 a tile of 6 rows x
 * 64 columns lives in 24 vector registers while k runs; elsewhere the product goes to BLAS. */
#include "small_gemm.h"

#include "gradbrain/blas.h"

/* Scalar transpose; 16 source rows (in L1) give one contiguous run of dst. */
static void transpose_scalar(float *dst, int64_t ldd, const float *src, int64_t lds, int rows, int cols) {
  for (int i0 = 0; i0 < rows; i0 += 16) {
    int n = rows - i0 < 16 ? rows - i0 : 16;
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < n; i++) dst[(int64_t)j * ldd + i0 + i] = src[(int64_t)(i0 + i) * lds + j];
  }
}

int64_t small_panels_size(int rows, int cols) { return (int64_t)(rows + 63) / 64 * 64 * cols; }

void small_panels(float *dst, const float *w, int rows, int cols) {
  for (int64_t p = 0; p < (rows + 63) / 64; p++) {
    int n = rows - 64 * (int)p < 64 ? rows - 64 * (int)p : 64;
    float *d = dst + p * 64 * cols;
    if (n < 64)
      for (int64_t i = 0; i < (int64_t)64 * cols; i++) d[i] = 0.0f;
    small_transpose(d, 64, w + p * 64 * cols, cols, n, cols);
  }
}

void small_panels_copy(float *dst, const float *b, int K, int N) {
  for (int64_t p = 0; p < (N + 63) / 64; p++) {
    int n = N - 64 * (int)p < 64 ? N - 64 * (int)p : 64;
    float *d = dst + p * 64 * K;
    for (int64_t k = 0; k < K; k++)
      for (int j = 0; j < 64; j++) d[k * 64 + j] = j < n ? b[k * N + 64 * p + j] : 0.0f;
  }
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* 16 x 16 block transpose in registers (rows beyond `n` of the source read as zeros). */
static void transpose16(float *dst, int64_t ldd, const float *src, int64_t lds, int n) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = i < n ? _mm512_loadu_ps(src + (int64_t)i * lds) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) { /* interleave pairs of rows: 32-bit elements */
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) { /* 64-bit pairs */
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) { /* 128-bit lanes across groups of 4 rows */
    t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xDD);
    t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xDD);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
    r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
    r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
  }
  for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + (int64_t)j * ldd, r[j]);
}

void small_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int rows, int cols) {
  if (cols % 16 || ldd < (rows + 15) / 16 * 16) {
    transpose_scalar(dst, ldd, src, lds, rows, cols);
    return;
  }
  for (int i0 = 0; i0 < rows; i0 += 16)
    for (int j0 = 0; j0 < cols; j0 += 16)
      transpose16(dst + (int64_t)j0 * ldd + i0, ldd, src + (int64_t)i0 * lds + j0, lds, rows - i0 < 16 ? rows - i0 : 16);
}

enum { MR = 6, NV = 4 }; /* tile: MR rows x NV vectors of 16 columns */

/* One tile: rows i0..i0+mr-1, columns j0..j0+16nv-1 (the last vector masked by `last`). With
 * mr and nv compile-time constants after inlining, acc stays in registers. */
static inline __attribute__((always_inline)) void tile(int mr, int nv, __mmask16 last, int K, float alpha,
                                                       const float *A, int64_t sai, int64_t sak, const float *B,
                                                       int64_t ldb, float *C, int64_t ldc) {
  __m512 acc[MR][NV];
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    const float *b = B + (int64_t)k * ldb, *a = A + (int64_t)k * sak;
    __m512 bv[NV];
    for (int v = 0; v < nv; v++)
      bv[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
    for (int i = 0; i < mr; i++) {
      __m512 ai = _mm512_set1_ps(a[i * sai]);
      for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  __m512 al = _mm512_set1_ps(alpha);
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) {
      float *c = C + (int64_t)i * ldc + 16 * v;
      __m512 r = _mm512_mul_ps(al, acc[i][v]);
      if (v == nv - 1) _mm512_mask_storeu_ps(c, last, r);
      else _mm512_storeu_ps(c, r);
    }
}

/* Dispatches a tile to a specialization with constant mr (1..6) for a given constant nv. */
#define TILE_ROWS(nv)                                                                            \
  switch (mr) {                                                                                  \
    case 6: tile(6, nv, last, K, alpha, a, sai, sak, b, ldb, c, ldc); break;                     \
    case 5: tile(5, nv, last, K, alpha, a, sai, sak, b, ldb, c, ldc); break;                     \
    case 4: tile(4, nv, last, K, alpha, a, sai, sak, b, ldb, c, ldc); break;                     \
    case 3: tile(3, nv, last, K, alpha, a, sai, sak, b, ldb, c, ldc); break;                     \
    case 2: tile(2, nv, last, K, alpha, a, sai, sak, b, ldb, c, ldc); break;                     \
    default: tile(1, nv, last, K, alpha, a, sai, sak, b, ldb, c, ldc); break;                    \
  }

void small_gemm(int M, int N, int K, float alpha, const float *A, int64_t sai, int64_t sak, const float *B,
                int64_t ldb, float *C, int64_t ldc) {
  for (int j0 = 0; j0 < N; j0 += 16 * NV) {
    int ncol = N - j0 < 16 * NV ? N - j0 : 16 * NV;
    int nv = (ncol + 15) / 16;
    __mmask16 last = (__mmask16)(ncol % 16 ? (1u << (ncol % 16)) - 1 : 0xFFFFu);
    const float *b = B + j0;
    for (int i0 = 0; i0 < M; i0 += MR) {
      int mr = M - i0 < MR ? M - i0 : MR;
      const float *a = A + (int64_t)i0 * sai;
      float *c = C + (int64_t)i0 * ldc + j0;
      switch (nv) {
        case 4: TILE_ROWS(4); break;
        case 3: TILE_ROWS(3); break;
        case 2: TILE_ROWS(2); break;
        default: TILE_ROWS(1); break;
      }
    }
  }
}

void small_gemm_panels(int M, int N, int K, const float *A, int64_t lda, const float *Wp, float *C, int64_t ldc,
                       small_gemm_post_fn post, void *ctx) {
  const float alpha = 1.0f;
  const int64_t sai = lda, sak = 1, ldb = 16 * NV;
  /* row blocks of ~512 KB of A stay in L2 while every panel streams past them */
  int mb = (131072 / K) / MR * MR;
  if (mb < MR) mb = MR;
  for (int r0 = 0; r0 < M; r0 += mb) {
    int r1 = M - r0 < mb ? M : r0 + mb;
    for (int j0 = 0; j0 < N; j0 += 16 * NV) {
      int ncol = N - j0 < 16 * NV ? N - j0 : 16 * NV;
      int nv = (ncol + 15) / 16;
      __mmask16 last = (__mmask16)(ncol % 16 ? (1u << (ncol % 16)) - 1 : 0xFFFFu);
      const float *b = Wp + (int64_t)j0 * K; /* panel j0 / 64 */
      for (int i0 = r0; i0 < r1; i0 += MR) {
        int mr = r1 - i0 < MR ? r1 - i0 : MR;
        const float *a = A + (int64_t)i0 * sai;
        float *c = C + (int64_t)i0 * ldc + j0;
        switch (nv) {
          case 4: TILE_ROWS(4); break;
          case 3: TILE_ROWS(3); break;
          case 2: TILE_ROWS(2); break;
          default: TILE_ROWS(1); break;
        }
        if (post) post(ctx, i0, mr, j0, ncol);
      }
    }
  }
}

#else

void small_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int rows, int cols) {
  transpose_scalar(dst, ldd, src, lds, rows, cols);
}

void small_gemm(int M, int N, int K, float alpha, const float *A, int64_t sai, int64_t sak, const float *B,
                int64_t ldb, float *C, int64_t ldc) {
  if (sak == 1) gb_sgemm('N', 'N', M, N, K, alpha, A, (int)sai, B, (int)ldb, 0.0f, C, (int)ldc);
  else gb_sgemm('T', 'N', M, N, K, alpha, A, (int)sak, B, (int)ldb, 0.0f, C, (int)ldc);
}

void small_gemm_panels(int M, int N, int K, const float *A, int64_t lda, const float *Wp, float *C, int64_t ldc,
                       small_gemm_post_fn post, void *ctx) {
  for (int j0 = 0; j0 < N; j0 += 64) {
    int n = N - j0 < 64 ? N - j0 : 64;
    gb_sgemm('N', 'N', M, n, K, 1.0f, A, (int)lda, Wp + (int64_t)j0 * K, 64, 0.0f, C + j0, (int)ldc);
    if (post)
      for (int i0 = 0; i0 < M; i0 += 6) post(ctx, i0, M - i0 < 6 ? M - i0 : 6, j0, n);
  }
}

#endif
