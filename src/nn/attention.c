/* Multi-head self-attention: per (sequence, head) register-blocked products (small_gemm.h) on
 * strided views of the qkv buffer (K or V transposed into a small scratch where a product
 * needs it), softmax probabilities saved for the backward pass. OpenMP over (sequence, head)
 * when called outside a parallel region. */
#include <math.h>

#include "fastmath.h"
#include "gradbrain/arena.h"
#include "gradbrain/nn.h"
#include "par.h"
#include "small_gemm.h"

/* In place: row = softmax(row). */
GB_VEC512 static void softmax_row(float *row, int T) {
  float mx = row[0];
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < T; j++) mx = row[j] > mx ? row[j] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < T; j++) {
    row[j] = gb_fast_expf(row[j] - mx);
    sum += row[j];
  }
  float inv = 1.0f / sum;
#pragma omp simd
  for (int j = 0; j < T; j++) row[j] *= inv;
}

/* In place: d = dL/d(logits) from d = dL/d(probabilities) and the probabilities p. */
GB_VEC512 static void softmax_row_backward(float *d, const float *p, int T) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int j = 0; j < T; j++) dot += p[j] * d[j];
#pragma omp simd
  for (int j = 0; j < T; j++) d[j] = p[j] * (d[j] - dot);
}

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
  int hd = C / NH, C3 = 3 * C, Tp = (T + 15) / 16 * 16;
  float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel if (GB_PAR_IF(((int64_t)B * NH * T * T * hd) / 64))
  {
    float *kt = gb_alloc((size_t)hd * Tp * sizeof(float), "attention scratch"); /* K^T of one head */
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH;
      const float *q = qkv + (int64_t)b * T * C3 + h * hd;
      const float *k = q + C, *v = q + 2 * C;
      float *P = att + (int64_t)bh * T * T;
      small_transpose(kt, Tp, k, C3, T, hd);
      small_gemm(T, T, hd, scale, q, C3, 1, kt, Tp, P, T); /* S = s Q K^T */
      for (int i = 0; i < T; i++) softmax_row(P + (int64_t)i * T, T);
      small_gemm(T, hd, T, 1.0f, P, T, 1, v, C3, out + (int64_t)b * T * C + h * hd, C); /* O = P V */
    }
    gb_free(kt);
  }
}

void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B,
                        int T, int C, int NH) {
  int hd = C / NH, C3 = 3 * C, Tp = (T + 15) / 16 * 16;
  float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel if (GB_PAR_IF(((int64_t)B * NH * T * T * hd) / 64))
  {
    float *vt = gb_alloc((size_t)hd * Tp * sizeof(float), "attention scratch"); /* V^T of one head */
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH;
      int64_t off = (int64_t)b * T * C3 + h * hd;
      const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
      float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
      const float *dO = dout + (int64_t)b * T * C + h * hd;
      const float *P = att + (int64_t)bh * T * T;
      float *dS = datt + (int64_t)bh * T * T;
      small_transpose(vt, Tp, v, C3, T, hd);
      small_gemm(T, T, hd, 1.0f, dO, C, 1, vt, Tp, dS, T); /* dP = dO V^T */
      /* the softmax backward (dS in place) first: it reads P row by row, which brings P into
       * cache for the column-wise reads of dV = P^T dO */
      for (int i = 0; i < T; i++) softmax_row_backward(dS + (int64_t)i * T, P + (int64_t)i * T, T);
      small_gemm(T, hd, T, 1.0f, P, 1, T, dO, C, dv, C3); /* dV = P^T dO */
      small_gemm(T, hd, T, scale, dS, T, 1, k, C3, dq, C3); /* dQ = s dS K */
      small_gemm(T, hd, T, scale, dS, 1, T, q, C3, dk, C3); /* dK = s dS^T Q */
    }
    gb_free(vt);
  }
}

GB_VEC512 void attention_backward_first_row(float *dqkv, float *datt, const float *dout0, const float *qkv, const float *att,
                                  int B, int T, int C, int NH) {
  int hd = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) if (GB_PAR_IF((int64_t)B * T * C3))
  for (int b = 0; b < B; b++) {
    float *dqkv_b = dqkv + (int64_t)b * T * C3;
    for (int64_t r = 0; r < T; r++) /* dQ is zero below row 0 */
      for (int j = 0; j < C; j++) dqkv_b[r * C3 + j] = 0.0f;
    for (int h = 0; h < NH; h++) {
      const float *q0 = qkv + (int64_t)b * T * C3 + h * hd, *k = q0 + C, *v = q0 + 2 * C;
      const float *p0 = att + ((int64_t)b * NH + h) * T * T; /* row 0 of P */
      const float *dO = dout0 + (int64_t)b * C + h * hd;
      float *dq0 = dqkv_b + h * hd, *dk = dq0 + C, *dv = dq0 + 2 * C;
      float *dS = datt + ((int64_t)b * NH + h) * T; /* T scratch floats */
      for (int t = 0; t < T; t++) { /* dP = dO V^T (row 0); dV = P^T dO is the outer product p0 dO */
        const float *vt = v + (int64_t)t * C3;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < hd; d++) s += dO[d] * vt[d];
        dS[t] = s;
        float *dvt = dv + (int64_t)t * C3;
#pragma omp simd
        for (int d = 0; d < hd; d++) dvt[d] = p0[t] * dO[d];
      }
      softmax_row_backward(dS, p0, T);
      for (int d = 0; d < hd; d++) dq0[d] = 0.0f;
      for (int t = 0; t < T; t++) { /* dQ_0 = s dS K; dK = s dS^T q_0 (outer product) */
        const float *kt = k + (int64_t)t * C3;
        float st = scale * dS[t];
        float *dkt = dk + (int64_t)t * C3;
#pragma omp simd
        for (int d = 0; d < hd; d++) {
          dq0[d] += st * kt[d];
          dkt[d] = st * q0[d];
        }
      }
    }
  }
}
