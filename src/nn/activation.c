/* Elementwise activations: GELU (exact erf form) and QuickGELU (CLIP). */
#include "fastmath.h"
#include "gradbrain/nn.h"
#include "par.h"

GB_VEC512 void gelu_forward(float *out, const float *inp, int64_t n) {
#pragma omp parallel for simd schedule(static) if (GB_PAR_IF(n))
  for (int64_t i = 0; i < n; i++) {
    float pdf, x = inp[i];
    out[i] = x * gb_fast_phi(x, &pdf);
  }
}

GB_VEC512 void gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n) {
#pragma omp parallel for simd schedule(static) if (GB_PAR_IF(n))
  for (int64_t i = 0; i < n; i++) {
    float pdf, x = inp[i];
    float cdf = gb_fast_phi(x, &pdf);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}

GB_VEC512 void quickgelu_forward(float *out, const float *inp, int64_t n) {
#pragma omp parallel for simd schedule(static) if (GB_PAR_IF(n))
  for (int64_t i = 0; i < n; i++) {
    float x = inp[i];
    out[i] = x / (1.0f + gb_fast_expf(-1.702f * x));
  }
}

GB_VEC512 void quickgelu_backward(float *dinp, const float *inp, const float *dout, int64_t n) {
#pragma omp parallel for simd schedule(static) if (GB_PAR_IF(n))
  for (int64_t i = 0; i < n; i++) {
    float x = inp[i];
    float s = 1.0f / (1.0f + gb_fast_expf(-1.702f * x));
    dinp[i] = dout[i] * (s + 1.702f * x * s * (1.0f - s));
  }
}
