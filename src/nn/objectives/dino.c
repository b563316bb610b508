/* DINO self-distillation objective: head, center, per-image cross-entropy. */
#include <math.h>
#include <string.h>

#include "../fastmath.h"
#include "gradbrain/arena.h"
#include "gradbrain/nn.h"
#include "gradbrain/objective.h"
#include "internal.h"
#include "../small_gemm.h"

/* out (rows x OC) = in (rows x C) W^T + bias, with W^T in 64-column panels (objective.c):
 * register-blocked products (small_gemm.h), panels spread over the threads. With few rows a
 * BLAS call spends most of its time packing the large weight matrices (the last layer has
 * 16.8M entries); here each weight streams once from memory. Each output is one sum in k
 * order: a row never depends on the other rows. */
static void head_linear(float *out, const float *in, const float *wt, const float *bias, int rows, int C, int OC) {
  int np = (OC + 63) / 64;
#pragma omp parallel for schedule(dynamic, 8)
  for (int p = 0; p < np; p++) {
    int j0 = 64 * p, n = OC - j0 < 64 ? OC - j0 : 64;
    small_gemm(rows, n, C, 1.0f, in, C, 1, wt + (int64_t)p * 64 * C, 64, out + j0, OC);
    if (bias)
      for (int i = 0; i < rows; i++)
        for (int j = 0; j < n; j++) out[(int64_t)i * OC + j0 + j] += bias[j0 + j];
  }
}

void dino_head_forward(gb_objective *o, const float *f, int nb, float *logits) {
  gb_dino_head *h = &o->dino;
  memcpy(o->fin, f, (size_t)nb * h->in * sizeof(float));
  memset(o->fin + (int64_t)nb * h->in, 0, (size_t)(o->rows - nb) * h->in * sizeof(float));
  nb = o->rows; /* whole 16-row slices; the extra rows are zeros and ignored */
  head_linear(o->h1p, o->fin, h->wt[0], h->b[0], nb, h->in, h->hidden);
  gelu_forward(o->h1, o->h1p, (int64_t)nb * h->hidden);
  head_linear(o->h2p, o->h1, h->wt[1], h->b[1], nb, h->hidden, h->hidden);
  gelu_forward(o->h2, o->h2p, (int64_t)nb * h->hidden);
  head_linear(o->z, o->h2, h->wt[2], h->b[2], nb, h->hidden, h->bottleneck);
  for (int i = 0; i < nb; i++) { /* F.normalize: z / max(|z|, 1e-12) */
    const float *z = o->z + (int64_t)i * h->bottleneck;
    float *zn = o->zn + (int64_t)i * h->bottleneck;
    double s = 0;
    for (int j = 0; j < h->bottleneck; j++) s += (double)z[j] * z[j];
    float n = (float)sqrt(s);
    o->zl[i] = n;
    float inv = 1.0f / (n > 1e-12f ? n : 1e-12f);
    for (int j = 0; j < h->bottleneck; j++) zn[j] = z[j] * inv;
  }
  head_linear(logits, o->zn, h->last_t, NULL, nb, h->bottleneck, h->k);
}

void dino_head_backward(gb_objective *o, const float *dlogits, int nb, float *df) {
  gb_dino_head *h = &o->dino;
  int nb_real = nb;
  nb = o->rows; /* dlogits has o->rows rows, those >= nb_real zero */
  linear_backward(o->dzn, NULL, NULL, dlogits, o->zn, h->last, nb, h->bottleneck, h->k);
  for (int i = 0; i < nb; i++) {
    const float *zn = o->zn + (int64_t)i * h->bottleneck, *dzn = o->dzn + (int64_t)i * h->bottleneck;
    float *dz = o->dz + (int64_t)i * h->bottleneck;
    float n = o->zl[i];
    if (n > 1e-12f) {
      float dot = 0.0f;
      for (int j = 0; j < h->bottleneck; j++) dot += zn[j] * dzn[j];
      for (int j = 0; j < h->bottleneck; j++) dz[j] = (dzn[j] - zn[j] * dot) / n;
    } else {
      for (int j = 0; j < h->bottleneck; j++) dz[j] = dzn[j] / 1e-12f;
    }
  }
  linear_backward(o->dh2, NULL, NULL, o->dz, o->h2, h->w[2], nb, h->hidden, h->bottleneck);
  gelu_backward(o->dh2, o->h2p, o->dh2, (int64_t)nb * h->hidden);
  linear_backward(o->dh1, NULL, NULL, o->dh2, o->h1, h->w[1], nb, h->hidden, h->hidden);
  gelu_backward(o->dh1, o->h1p, o->dh1, (int64_t)nb * h->hidden);
  linear_backward(o->dfin, NULL, NULL, o->dh1, NULL, h->w[0], nb, h->in, h->hidden);
  memcpy(df, o->dfin, (size_t)nb_real * h->in * sizeof(float));
}

gb_status gb_objective_center_add(gb_objective *o, const float *ft, int nb) {
  if (o->kind != GB_OBJ_DINO) return GB_OK;
  if (nb > o->max_batch) return gb_fail(GB_ERR_ARG, "DINO center: %d features, scratch for %d", nb, o->max_batch);
  dino_head_forward(o, ft, nb, o->lt);
  int K = o->dino.k;
  for (int i = 0; i < nb; i++)
    for (int j = 0; j < K; j++) o->center_sum[j] += o->lt[(int64_t)i * K + j];
  o->center_count += nb;
  return GB_OK;
}

gb_status gb_objective_center_finish(gb_objective *o) {
  if (o->kind != GB_OBJ_DINO) return GB_OK;
  if (o->center_count == 0) return gb_fail(GB_ERR_ARG, "DINO center: no teacher features were added");
  for (int j = 0; j < o->dino.k; j++) o->center[j] = (float)(o->center_sum[j] / (double)o->center_count);
  o->center_ready = 1;
  return GB_OK;
}

gb_status gb_objective_set_center(gb_objective *o, const float *c) {
  memcpy(o->center, c, (size_t)o->dino.k * sizeof(float));
  o->center_ready = 1;
  return GB_OK;
}

/* L_i = -sum_k p_k log q_k, p = softmax((t - c)/tt), q = softmax(s/ts); dL/ds = (q - p)/ts. */
gb_status dino_loss_grad(gb_objective *o, const float *fs, const float *ft, int nb, float *loss, float *dfs) {
  if (!o->center_ready) return gb_fail(GB_ERR_ARG, "DINO objective: the center has not been computed");
  int K = o->dino.k;
  float ts = o->student_temp, tt = o->teacher_temp;
  if (ft != fs) dino_head_forward(o, ft, nb, o->lt);
  dino_head_forward(o, fs, nb, o->ls);
  const float *lt = ft != fs ? o->lt : o->ls;
  const float *c = o->center;
  /* Per image (images are independent): float exponentials (fastmath.h, rel. error 2e-7)
   * of the max-shifted logits, sums and the loss in double. */
#pragma omp parallel for schedule(static) if (nb > 1)
  for (int i = 0; i < nb; i++) {
    const float *s = o->ls + (int64_t)i * K, *t = lt + (int64_t)i * K;
    float *d = o->dl + (int64_t)i * K;
    float tmax = -INFINITY, smax = -INFINITY;
    for (int j = 0; j < K; j++) {
      float a = (t[j] - c[j]) / tt, b = s[j] / ts;
      tmax = a > tmax ? a : tmax;
      smax = b > smax ? b : smax;
    }
    double tsum = 0, ssum = 0;
#pragma omp simd reduction(+ : tsum, ssum)
    for (int j = 0; j < K; j++) {
      tsum += gb_fast_expf((t[j] - c[j]) / tt - tmax);
      ssum += gb_fast_expf(s[j] / ts - smax);
    }
    float lse_s = smax + (float)log(ssum), itsum = (float)(1.0 / tsum), issum = (float)(1.0 / ssum);
    double l = 0;
#pragma omp simd reduction(+ : l)
    for (int j = 0; j < K; j++) {
      float p = gb_fast_expf((t[j] - c[j]) / tt - tmax) * itsum;
      float q = gb_fast_expf(s[j] / ts - smax) * issum;
      l -= p * (s[j] / ts - lse_s);
      d[j] = (q - p) / ts;
    }
    loss[i] = (float)l;
  }
  memset(o->dl + (int64_t)nb * K, 0, (size_t)(o->rows - nb) * K * sizeof(float));
  dino_head_backward(o, o->dl, nb, dfs);
  return GB_OK;
}
