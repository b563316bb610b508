/* bf16x3 GEMM kernel on AMX tiles (see include/gradbrain/gemm_x3.h).
 *
 * Tiles: tmm0-3 accumulate a 32 x 32 block of C (2 x 2 tiles of 16 x 16 float32); tmm4-5
 * hold two 16-row slices of A (16 x 32 bf16), tmm6-7 two 16-column slices of B (16 pairs of
 * k x 16 columns, VNNI), each tile a contiguous 1 KB block. Per step of 32 in k: hi*hi, hi*lo, lo*hi into the same
 * accumulators. Column blocks are shared among threads; each thread walks all row blocks of
 * its columns, so its B panel stays in L2. */
#include "gradbrain/gemm_x3.h"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)
#include <immintrin.h>
#include <string.h>

#include "gradbrain/arena.h"

static int64_t up32(int64_t v) { return (v + 31) / 32 * 32; }

/* Makes *hi, *lo hold `bytes` zeroed bytes each, reusing them when *cap is large enough
 * (repeated packs of similar operands then cost no allocation or page faults). */
static gb_status storage(uint16_t **hi, uint16_t **lo, size_t *cap, size_t bytes, const char *what) {
  if (!*hi || !*lo || *cap < bytes) {
    gb_free(*hi);
    gb_free(*lo);
    *hi = gb_alloc(bytes, what);
    *lo = gb_alloc(bytes, what);
    *cap = *hi && *lo ? bytes : 0;
    if (!*cap) {
      gb_free(*hi), gb_free(*lo);
      *hi = *lo = NULL;
      return GB_ERR_NOMEM;
    }
  }
  memset(*hi, 0, bytes);
  memset(*lo, 0, bytes);
  return GB_OK;
}

/* 32 floats (two vectors) -> bf16 hi and lo parts, 32 each (round to nearest even; the
 * conversion treats float32 subnormals as zero, which only drops terms below 1e-38). */
static inline void split32(__m512 a, __m512 b, uint16_t *hi, uint16_t *lo) {
  __m512bh h = _mm512_cvtne2ps_pbh(b, a); /* a -> elements 0-15, b -> 16-31 */
  __m512i hb = (__m512i)h;
  __m512 ha = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hb)), 16));
  __m512 hbf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hb, 1)), 16));
  __m512bh l = _mm512_cvtne2ps_pbh(_mm512_sub_ps(b, hbf), _mm512_sub_ps(a, ha));
  _mm512_storeu_si512(hi, hb);
  _mm512_storeu_si512(lo, (__m512i)l);
}

/* mask of the first w of 16 lanes (w may be <= 0 or >= 16) */
static __mmask16 cols_mask(int64_t w) {
  return w >= 16 ? (__mmask16)0xffff : w <= 0 ? (__mmask16)0 : (__mmask16)((1u << w) - 1u);
}

void gb_x3_left_free(gb_x3_left *a);
void gb_x3_right_free(gb_x3_right *b);

gb_status gb_x3_pack_left(const float *A, int64_t M, int64_t K, int64_t lda, gb_x3_left *out) {
  out->M = M, out->K = K, out->Mp = up32(M > 0 ? M : 1), out->Kp = up32(K > 0 ? K : 1);
  GB_TRY(storage(&out->hi, &out->lo, &out->cap, (size_t)(out->Mp * out->Kp) * 2, "bf16 left operand"));
  int64_t kt = out->Kp / 32;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++)
    for (int64_t kb = 0; kb < kt; kb++) { /* row i of tile (i/16, kb): 32 k values */
      int64_t k0 = kb * 32, at = ((i / 16) * kt + kb) * 512 + (i % 16) * 32;
      const float *src = A + i * lda + k0;
      __m512 a = _mm512_maskz_loadu_ps(cols_mask(K - k0), src);
      __m512 b = _mm512_maskz_loadu_ps(cols_mask(K - k0 - 16), src + 16);
      split32(a, b, out->hi + at, out->lo + at);
    }
  return GB_OK;
}

gb_status gb_x3_pack_right(const float *B, int64_t K, int64_t N, int64_t ldb, gb_x3_right *out) {
  out->K = K, out->N = N, out->Kp = up32(K > 0 ? K : 1), out->Np = up32(N > 0 ? N : 1);
  GB_TRY(storage(&out->hi, &out->lo, &out->cap, (size_t)(out->Kp * out->Np) * 2, "bf16 right operand"));
  int64_t kt = out->Kp / 32, nt = (N + 15) / 16;
  const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i second = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
#pragma omp parallel for schedule(static)
  for (int64_t jt = 0; jt < nt; jt++) { /* one column tile, one pair of k rows at a time */
    int64_t j0 = jt * 16;
    __mmask16 m = cols_mask(N - j0);
    for (int64_t k = 0; k < K; k += 2) {
      __m512 r0 = _mm512_maskz_loadu_ps(m, B + k * ldb + j0);
      __m512 r1 = k + 1 < K ? _mm512_maskz_loadu_ps(m, B + (k + 1) * ldb + j0) : _mm512_setzero_ps();
      /* VNNI: column j holds (k, k+1) side by side */
      __m512 a = _mm512_permutex2var_ps(r0, first, r1), b = _mm512_permutex2var_ps(r0, second, r1);
      int64_t at = (jt * kt + k / 32) * 512 + ((k % 32) / 2) * 32;
      split32(a, b, out->hi + at, out->lo + at);
    }
  }
  return GB_OK;
}

typedef struct {
  uint8_t palette, start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tile_config;

static void configure_tiles(void) {
  tile_config c;
  memset(&c, 0, sizeof c);
  c.palette = 1;
  for (int t = 0; t < 8; t++) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  _tile_loadconfig(&c);
}

/* Copies the valid part of a 16 x 16 tile stored in buf into C. */
static void store_edge(const float *buf, float *C, int64_t ldc, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; i++) memcpy(C + i * ldc, buf + i * 16, (size_t)cols * sizeof(float));
}

/* the 2 x 2 block of products: C tiles 0-3 += A tiles 4-5 x B tiles 6-7 */
#define DP_2X2()              \
  do {                        \
    _tile_dpbf16ps(0, 4, 6);  \
    _tile_dpbf16ps(1, 4, 7);  \
    _tile_dpbf16ps(2, 5, 6);  \
    _tile_dpbf16ps(3, 5, 7);  \
  } while (0)

void gb_x3_gemm(const gb_x3_left *A, int64_t row0, int64_t nrows, const gb_x3_right *B, float *C, int64_t ldc) {
  const int64_t N = B->N, kt = A->Kp / 32; /* k blocks */
  const int64_t ncb = (N + 31) / 32;
#pragma omp parallel
  {
    configure_tiles();
    float buf[4][16 * 16] __attribute__((aligned(64)));
#pragma omp for schedule(static)
    for (int64_t cb = 0; cb < ncb; cb++) {
      int64_t j0 = cb * 32;
      const uint16_t *bh0 = B->hi + (2 * cb) * kt * 512, *bh1 = bh0 + kt * 512;
      const uint16_t *bl0 = B->lo + (2 * cb) * kt * 512, *bl1 = bl0 + kt * 512;
      for (int64_t i0 = 0; i0 < nrows; i0 += 32) {
        int64_t ib = (row0 + i0) / 16;
        const uint16_t *ah0 = A->hi + ib * kt * 512, *ah1 = ah0 + kt * 512;
        const uint16_t *al0 = A->lo + ib * kt * 512, *al1 = al0 + kt * 512;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t kb = 0; kb < kt; kb++) {
          int64_t o = kb * 512;
          _tile_loadd(4, ah0 + o, 64); /* A_hi B_hi */
          _tile_loadd(5, ah1 + o, 64);
          _tile_loadd(6, bh0 + o, 64);
          _tile_loadd(7, bh1 + o, 64);
          DP_2X2();
          _tile_loadd(6, bl0 + o, 64); /* A_hi B_lo */
          _tile_loadd(7, bl1 + o, 64);
          DP_2X2();
          _tile_loadd(4, al0 + o, 64); /* A_lo B_hi */
          _tile_loadd(5, al1 + o, 64);
          _tile_loadd(6, bh0 + o, 64);
          _tile_loadd(7, bh1 + o, 64);
          DP_2X2();
        }
        int64_t r0 = nrows - i0, c0 = N - j0;
        int full = r0 >= 32 && c0 >= 32;
        float *c = C + i0 * ldc + j0;
        if (full) {
          _tile_stored(0, c, ldc * 4);
          _tile_stored(1, c + 16, ldc * 4);
          _tile_stored(2, c + 16 * ldc, ldc * 4);
          _tile_stored(3, c + 16 * ldc + 16, ldc * 4);
          continue;
        }
        _tile_stored(0, buf[0], 64);
        _tile_stored(1, buf[1], 64);
        _tile_stored(2, buf[2], 64);
        _tile_stored(3, buf[3], 64);
        for (int t = 0; t < 4; t++) {
          int64_t ri = (t / 2) * 16, cj = (t % 2) * 16;
          int64_t rows = r0 - ri > 16 ? 16 : r0 - ri, cols = c0 - cj > 16 ? 16 : c0 - cj;
          if (rows > 0 && cols > 0) store_edge(buf[t], c + ri * ldc + cj, ldc, rows, cols);
        }
      }
    }
    _tile_release();
  }
}
gb_status gb_x3_pack_right_t(const float *W, int64_t N, int64_t K, int64_t ldw, gb_x3_right *out) {
  out->K = K, out->N = N, out->Kp = up32(K > 0 ? K : 1), out->Np = up32(N > 0 ? N : 1);
  GB_TRY(storage(&out->hi, &out->lo, &out->cap, (size_t)(out->Kp * out->Np) * 2, "bf16 right operand"));
  int64_t kt = out->Kp / 32, nt = (N + 15) / 16;
  /* B = W^T: the VNNI pair (k, k+1) of column j is W[j][k], W[j][k+1], adjacent in W, so a
   * tile (16 columns x 16 pairs) is the pair-wise transpose of a 16 x 32 block of W: read
   * the block's rows (contiguous), transpose through an L1 buffer, split row by row. */
#pragma omp parallel for schedule(static)
  for (int64_t jt = 0; jt < nt; jt++) {
    uint64_t t[16][16] __attribute__((aligned(64))); /* [pair][column], a pair = 2 floats */
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      int64_t kw = K - k0 < 32 ? K - k0 : 32;
      for (int64_t c = 0; c < 16; c++) {
        int64_t j = jt * 16 + c;
        float row[32] __attribute__((aligned(64)));
        memset(row, 0, sizeof row);
        if (j < N) memcpy(row, W + j * ldw + k0, (size_t)kw * sizeof(float));
        for (int p = 0; p < 16; p++) memcpy(&t[p][c], row + 2 * p, 8);
      }
      for (int p = 0; p < 16 && 2 * p < kw; p++) {
        int64_t at = (jt * kt + k0 / 32) * 512 + p * 32;
        split32(_mm512_load_ps((const float *)t[p]), _mm512_load_ps((const float *)t[p] + 16), out->hi + at,
                out->lo + at);
      }
    }
  }
  return GB_OK;
}

gb_status gb_x3_pack_right_scaled(const float *Z, int64_t K, int64_t m, int64_t ldz, const float *S, int k,
                                  gb_x3_right *out) {
  int64_t N = (int64_t)k * m;
  out->K = K, out->N = N, out->Kp = up32(K > 0 ? K : 1), out->Np = up32(N > 0 ? N : 1);
  GB_TRY(storage(&out->hi, &out->lo, &out->cap, (size_t)(out->Kp * out->Np) * 2, "bf16 right operand"));
  int64_t kt = out->Kp / 32, nt = (N + 15) / 16;
  const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i second = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
#pragma omp parallel for schedule(static)
  for (int64_t jt = 0; jt < nt; jt++) {
    int64_t j0 = jt * 16, w = N - j0 < 16 ? N - j0 : 16;
    int qc[16];
    int64_t tcol[16];
    for (int64_t c = 0; c < 16; c++) qc[c] = c < w ? (int)((j0 + c) / m) : 0, tcol[c] = c < w ? (j0 + c) % m : 0;
    float v[2][16] __attribute__((aligned(64)));
    /* the common case: the tile's columns are consecutive targets of one block q */
    int one_block = qc[0] == qc[w - 1] && tcol[w - 1] == tcol[0] + w - 1;
    __mmask16 mk = cols_mask(w);
    for (int64_t kk = 0; kk < K; kk += 2) {
      __m512 r0, r1;
      if (one_block) {
        /* masked lanes stay +0 (not -0 from a negative scale): the padding is exactly zero */
        r0 = _mm512_maskz_mul_ps(mk, _mm512_set1_ps(S[kk * k + qc[0]]), _mm512_maskz_loadu_ps(mk, Z + kk * ldz + tcol[0]));
        r1 = kk + 1 < K ? _mm512_maskz_mul_ps(mk, _mm512_set1_ps(S[(kk + 1) * k + qc[0]]),
                                              _mm512_maskz_loadu_ps(mk, Z + (kk + 1) * ldz + tcol[0]))
                        : _mm512_setzero_ps();
      } else {
        for (int h = 0; h < 2; h++) {
          int64_t row = kk + h;
          for (int64_t c = 0; c < 16; c++)
            v[h][c] = row < K && c < w ? S[row * k + qc[c]] * Z[row * ldz + tcol[c]] : 0.0f;
        }
        r0 = _mm512_load_ps(v[0]), r1 = _mm512_load_ps(v[1]);
      }
      __m512 a = _mm512_permutex2var_ps(r0, first, r1), b = _mm512_permutex2var_ps(r0, second, r1);
      int64_t at = (jt * kt + kk / 32) * 512 + ((kk % 32) / 2) * 32;
      split32(a, b, out->hi + at, out->lo + at);
    }
  }
  return GB_OK;
}
#else
/* Built without AMX support in the compiler: gb_x3_available() reports 0 (GB_HAVE_AMX_KERNEL
 * is not defined), so these are never reached; refuse rather than compute garbage. */
#include <stdlib.h>
gb_status gb_x3_pack_left(const float *A, int64_t M, int64_t K, int64_t lda, gb_x3_left *out) {
  (void)A, (void)M, (void)K, (void)lda, (void)out;
  abort();
}
gb_status gb_x3_pack_right(const float *B, int64_t K, int64_t N, int64_t ldb, gb_x3_right *out) {
  (void)B, (void)K, (void)N, (void)ldb, (void)out;
  abort();
}
gb_status gb_x3_pack_right_t(const float *W, int64_t N, int64_t K, int64_t ldw, gb_x3_right *out) {
  (void)W, (void)N, (void)K, (void)ldw, (void)out;
  abort();
}
gb_status gb_x3_pack_right_scaled(const float *Z, int64_t K, int64_t m, int64_t ldz, const float *S, int k,
                                  gb_x3_right *out) {
  (void)Z, (void)K, (void)m, (void)ldz, (void)S, (void)k, (void)out;
  abort();
}
void gb_x3_gemm(const gb_x3_left *A, int64_t row0, int64_t nrows, const gb_x3_right *B, float *C, int64_t ldc) {
  (void)A, (void)row0, (void)nrows, (void)B, (void)C, (void)ldc;
  abort();
}
#endif
