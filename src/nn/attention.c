/* Multi-head self-attention: per (sequence, head) GEMMs on strided views of the qkv buffer
 * (no transposes), softmax probabilities saved for the backward pass. OpenMP over
 * (sequence, head); BLAS runs single-threaded inside the parallel region (OpenMP OpenBLAS). */
#include <math.h>

#include "fastmath.h"
#include "gradbrain/blas.h"
#include "gradbrain/nn.h"
#include "par.h"

/* In place: row = softmax(row). */
static void softmax_row(float *row, int T) {
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
static void softmax_row_backward(float *d, const float *p, int T) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int j = 0; j < T; j++) dot += p[j] * d[j];
#pragma omp simd
  for (int j = 0; j < T; j++) d[j] = p[j] * (d[j] - dot);
}

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
  int hd = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(dynamic, 1) if (GB_PAR_IF(((int64_t)B * NH * T * T * hd) / 64))
  for (int bh = 0; bh < B * NH; bh++) {
    int b = bh / NH, h = bh % NH;
    const float *q = qkv + (int64_t)b * T * C3 + h * hd;
    const float *k = q + C, *v = q + 2 * C;
    float *P = att + (int64_t)bh * T * T;
    gb_sgemm('N', 'T', T, T, hd, scale, q, C3, k, C3, 0.0f, P, T);
    for (int i = 0; i < T; i++) softmax_row(P + (int64_t)i * T, T);
    gb_sgemm('N', 'N', T, hd, T, 1.0f, P, T, v, C3, 0.0f, out + (int64_t)b * T * C + h * hd, C);
  }
}

void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B,
                        int T, int C, int NH) {
  int hd = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(dynamic, 1) if (GB_PAR_IF(((int64_t)B * NH * T * T * hd) / 64))
  for (int bh = 0; bh < B * NH; bh++) {
    int b = bh / NH, h = bh % NH;
    int64_t off = (int64_t)b * T * C3 + h * hd;
    const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
    float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
    const float *dO = dout + (int64_t)b * T * C + h * hd;
    const float *P = att + (int64_t)bh * T * T;
    float *dS = datt + (int64_t)bh * T * T;
    gb_sgemm('N', 'T', T, T, hd, 1.0f, dO, C, v, C3, 0.0f, dS, T);  /* dP = dO V^T */
    gb_sgemm('T', 'N', T, hd, T, 1.0f, P, T, dO, C, 0.0f, dv, C3);  /* dV = P^T dO */
    for (int i = 0; i < T; i++) softmax_row_backward(dS + (int64_t)i * T, P + (int64_t)i * T, T);
    gb_sgemm('N', 'N', T, hd, T, scale, dS, T, k, C3, 0.0f, dq, C3); /* dQ = s dS K */
    gb_sgemm('T', 'N', T, hd, T, scale, dS, T, q, C3, 0.0f, dk, C3); /* dK = s dS^T Q */
  }
}

void attention_backward_first_row(float *dqkv, float *datt, const float *dout0, const float *qkv, const float *att,
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
