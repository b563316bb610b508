/* LayerScale: a learned per-channel gain on a residual branch. */
#include "fastmath.h"
#include "gradbrain/nn.h"
#include "par.h"

GB_VEC512 void layerscale_forward(float *out, const float *inp, const float *scale, int64_t N, int C) {
#pragma omp parallel for schedule(static) if (GB_PAR_IF(N * C))
  for (int64_t i = 0; i < N; i++)
    for (int j = 0; j < C; j++) out[i * C + j] = inp[i * C + j] * scale[j];
}

GB_VEC512 void layerscale_backward(float *dinp, float *dscale, const float *dout, const float *inp, const float *scale,
                         int64_t N, int C) {
  if (dinp) {
#pragma omp parallel for schedule(static) if (GB_PAR_IF(N * C))
    for (int64_t i = 0; i < N; i++)
      for (int j = 0; j < C; j++) dinp[i * C + j] = dout[i * C + j] * scale[j];
  }
  if (dscale)
    for (int64_t i = 0; i < N; i++)
      for (int j = 0; j < C; j++) dscale[j] += dout[i * C + j] * inp[i * C + j];
}
