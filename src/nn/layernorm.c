/* LayerNorm over the last dimension; saves mean and 1/std for the backward pass. The row sums
 * are vectorized (partial sums per SIMD lane, then combined): a fixed order per row. */
#include <math.h>

#include "fastmath.h"
#include "gradbrain/nn.h"
#include "par.h"

GB_VEC512 void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int64_t N, int C, float eps) {
#pragma omp parallel for schedule(static) if (GB_PAR_IF(N * C))
  for (int64_t i = 0; i < N; i++) {
    const float *x = inp + i * C;
    float m = 0.0f;
#pragma omp simd reduction(+ : m)
    for (int j = 0; j < C; j++) m += x[j];
    m /= (float)C;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int j = 0; j < C; j++) v += (x[j] - m) * (x[j] - m);
    v /= (float)C;
    float r = 1.0f / sqrtf(v + eps);
    float *o = out + i * C;
    for (int j = 0; j < C; j++) o[j] = (x[j] - m) * r * weight[j] + bias[j];
    mean[i] = m;
    rstd[i] = r;
  }
}

GB_VEC512 void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int64_t N, int C) {
  if (dinp) {
#pragma omp parallel for schedule(static) if (GB_PAR_IF(N * C))
    for (int64_t i = 0; i < N; i++) {
      const float *x = inp + i * C, *dy = dout + i * C;
      float m = mean[i], r = rstd[i];
      float s1 = 0.0f, s2 = 0.0f; /* mean of dnorm, mean of dnorm * norm */
#pragma omp simd reduction(+ : s1, s2)
      for (int j = 0; j < C; j++) {
        float dn = dy[j] * weight[j];
        s1 += dn;
        s2 += dn * (x[j] - m) * r;
      }
      s1 /= (float)C;
      s2 /= (float)C;
      float *dx = dinp + i * C;
      for (int j = 0; j < C; j++) {
        float n = (x[j] - m) * r;
        dx[j] += r * (dy[j] * weight[j] - s1 - n * s2);
      }
    }
  }
  if (dweight || dbias)
    for (int64_t i = 0; i < N; i++) {
      const float *x = inp + i * C, *dy = dout + i * C;
      for (int j = 0; j < C; j++) {
        if (dweight) dweight[j] += dy[j] * (x[j] - mean[i]) * rstd[i];
        if (dbias) dbias[j] += dy[j];
      }
    }
}
