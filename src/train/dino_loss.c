/* DINO training losses: teacher targets (centering or Sinkhorn-Knopp), the multi-crop
 * cross-entropy and its gradient, and KoLeo. Sums that need it run in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradbrain/train.h"

void gb_dino_teacher_softmax(float *P, const float *t, const float *center, int rows, int k, float temp) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; i++) {
    const float *ti = t + (int64_t)i * k;
    float *pi = P + (int64_t)i * k;
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < k; j++) {
      double a = ((double)ti[j] - center[j]) / temp;
      if (a > mx) mx = a;
    }
    for (int j = 0; j < k; j++) sum += exp(((double)ti[j] - center[j]) / temp - mx);
    for (int j = 0; j < k; j++) pi[j] = (float)(exp(((double)ti[j] - center[j]) / temp - mx) / sum);
  }
}

void gb_dino_teacher_sinkhorn(float *P, const float *t, int rows, int k, float temp, int iters) {
  int64_t n = (int64_t)rows * k;
  double *q = malloc((size_t)n * sizeof(double)), *acc = malloc((size_t)k * sizeof(double));
  if (!q || !acc) { /* cannot happen for the sizes used; fall back to uniform targets */
    for (int64_t i = 0; i < n; i++) P[i] = 1.0f / k;
    free(q);
    free(acc);
    return;
  }
  double mx = -INFINITY, total = 0;
  for (int64_t i = 0; i < n; i++)
    if (t[i] / (double)temp > mx) mx = t[i] / (double)temp;
  /* exp(t/temp) up to a global factor, which the first normalization removes */
  for (int64_t i = 0; i < n; i++) total += (q[i] = exp(t[i] / (double)temp - mx));
  for (int64_t i = 0; i < n; i++) q[i] /= total;
  for (int it = 0; it < iters; it++) {
    memset(acc, 0, (size_t)k * sizeof(double));
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < k; j++) acc[j] += q[(int64_t)i * k + j];
    for (int i = 0; i < rows; i++) /* each prototype gets total mass 1/k */
      for (int j = 0; j < k; j++) q[(int64_t)i * k + j] /= acc[j] * k;
    for (int i = 0; i < rows; i++) { /* each sample gets total mass 1/rows */
      double s = 0;
      for (int j = 0; j < k; j++) s += q[(int64_t)i * k + j];
      for (int j = 0; j < k; j++) q[(int64_t)i * k + j] /= s * rows;
    }
  }
  for (int64_t i = 0; i < n; i++) P[i] = (float)(q[i] * rows);
  free(q);
  free(acc);
}

void gb_dino_target_entropy(const float *P, int rows, int k, double *row_mean, double *batch_mean) {
  double hr = 0, hb = 0;
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < k; j++) {
      double p = P[(int64_t)i * k + j];
      if (p > 0) hr -= p * log(p);
    }
  for (int j = 0; j < k; j++) {
    double m = 0;
    for (int i = 0; i < rows; i++) m += P[(int64_t)i * k + j];
    m /= rows;
    if (m > 0) hb -= m * log(m);
  }
  *row_mean = hr / rows;
  *batch_mean = hb;
}

double gb_dino_multicrop_loss(const float *P, const float *S, float *dS, int n_teacher, int n_student, int B, int k,
                              float student_temp) {
  int npairs = 0;
  for (int c = 0; c < n_teacher; c++)
    for (int v = 0; v < n_student; v++) npairs += v != c;
  double total = 0;
  double scale = 1.0 / ((double)npairs * B);
  for (int v = 0; v < n_student; v++) {
    double lv = 0;
#pragma omp parallel for schedule(static) reduction(+ : lv)
    for (int b = 0; b < B; b++) {
      const float *s = S + ((int64_t)v * B + b) * k;
      float *d = dS + ((int64_t)v * B + b) * k;
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < k; j++)
        if (s[j] / (double)student_temp > mx) mx = s[j] / (double)student_temp;
      for (int j = 0; j < k; j++) sum += exp(s[j] / (double)student_temp - mx);
      double lse = mx + log(sum);
      int nc = 0;
      for (int c = 0; c < n_teacher; c++) nc += c != v;
      double l = 0;
      for (int j = 0; j < k; j++) {
        double logq = s[j] / (double)student_temp - lse, psum = 0;
        for (int c = 0; c < n_teacher; c++)
          if (c != v) psum += P[((int64_t)c * B + b) * k + j];
        l -= psum * logq;
        /* d/ds_j of -sum_c p_cj log q_j = (nc q_j - sum_c p_cj) / ts */
        d[j] = (float)((nc * exp(logq) - psum) / student_temp * scale);
      }
      lv += l;
    }
    total += lv;
  }
  return total * scale;
}

double gb_koleo_loss(const float *f, int n, int d, float weight, float *df) {
  if (n < 2) return 0.0;
  double *x = malloc((size_t)n * d * sizeof(double)), *nrm = malloc((size_t)n * sizeof(double));
  double *dx = calloc((size_t)n * d, sizeof(double));
  int *nn = malloc((size_t)n * sizeof(int));
  if (!x || !nrm || !dx || !nn) {
    free(x);
    free(nrm);
    free(dx);
    free(nn);
    return NAN;
  }
  for (int i = 0; i < n; i++) { /* F.normalize(eps=1e-8) */
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)f[(int64_t)i * d + j] * f[(int64_t)i * d + j];
    nrm[i] = sqrt(s);
    double inv = 1.0 / (nrm[i] > 1e-8 ? nrm[i] : 1e-8);
    for (int j = 0; j < d; j++) x[(int64_t)i * d + j] = f[(int64_t)i * d + j] * inv;
  }
  for (int i = 0; i < n; i++) { /* nearest neighbour = largest inner product, self excluded */
    double best = -INFINITY;
    nn[i] = -1;
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      double dot = 0;
      for (int q = 0; q < d; q++) dot += x[(int64_t)i * d + q] * x[(int64_t)j * d + q];
      if (dot > best) {
        best = dot;
        nn[i] = j;
      }
    }
  }
  double loss = 0;
  for (int i = 0; i < n; i++) { /* dist = |x_i - x_nn + 1e-8| (torch pairwise_distance) */
    const double *a = x + (int64_t)i * d, *b = x + (int64_t)nn[i] * d;
    double s = 0;
    for (int q = 0; q < d; q++) s += (a[q] - b[q] + 1e-8) * (a[q] - b[q] + 1e-8);
    double dist = sqrt(s);
    loss -= log(dist + 1e-8);
    double g = -1.0 / (n * (dist + 1e-8) * (dist > 0 ? dist : 1.0));
    for (int q = 0; q < d; q++) {
      double e = (a[q] - b[q] + 1e-8) * g;
      dx[(int64_t)i * d + q] += e;
      dx[(int64_t)nn[i] * d + q] -= e;
    }
  }
  loss /= n;
  for (int i = 0; i < n; i++) { /* back through the normalization */
    double dot = 0, r = nrm[i] > 1e-8 ? nrm[i] : 1e-8;
    for (int q = 0; q < d; q++) dot += x[(int64_t)i * d + q] * dx[(int64_t)i * d + q];
    for (int q = 0; q < d; q++) {
      double g = nrm[i] > 1e-8 ? (dx[(int64_t)i * d + q] - x[(int64_t)i * d + q] * dot) / r : dx[(int64_t)i * d + q] / r;
      df[(int64_t)i * d + q] += (float)(weight * g);
    }
  }
  free(x);
  free(nrm);
  free(dx);
  free(nn);
  return loss;
}
