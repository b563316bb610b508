/* Rotary position embedding (DINOv3 layout): rotate-half pairs (i, i + hd/2) of q and k of
 * the patch tokens; prefix tokens (CLS, registers) are not rotated. */
#include <math.h>

#include "fastmath.h"
#include "gradbrain/nn.h"
#include "par.h"

void rope_tables(float *cos_t, float *sin_t, int gh, int gw, int hd, double base) {
  int q4 = hd / 4, half = hd / 2;
  for (int r = 0; r < gh; r++)
    for (int c = 0; c < gw; c++) {
      double y = (r + 0.5) / gh * 2.0 - 1.0, x = (c + 0.5) / gw * 2.0 - 1.0;
      float *co = cos_t + ((int64_t)r * gw + c) * half, *si = sin_t + ((int64_t)r * gw + c) * half;
      for (int j = 0; j < q4; j++) {
        double inv = 1.0 / pow(base, (double)j / q4);
        double ay = 2.0 * M_PI * y * inv, ax = 2.0 * M_PI * x * inv;
        co[j] = (float)cos(ay);
        si[j] = (float)sin(ay);
        co[q4 + j] = (float)cos(ax);
        si[q4 + j] = (float)sin(ax);
      }
    }
}

/* Rotates (x1, x2) pairs by +angle (dir = 1) or -angle (dir = -1). */
GB_VEC512 static void rotate(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int n_prefix, int C, int NH,
                   float dir) {
  int hd = C / NH, half = hd / 2, np = T - n_prefix;
#pragma omp parallel for schedule(static) if (GB_PAR_IF((int64_t)B * np * C))
  for (int64_t bt = 0; bt < (int64_t)B * np; bt++) {
    int64_t b = bt / np, p = bt % np;
    float *row = qkv + (b * T + n_prefix + p) * 3 * C;
    const float *co = cos_t + p * half, *si = sin_t + p * half;
    for (int part = 0; part < 2; part++) /* q, then k */
      for (int h = 0; h < NH; h++) {
        float *x = row + part * C + h * hd;
        for (int i = 0; i < half; i++) {
          float x1 = x[i], x2 = x[i + half], c = co[i], s = dir * si[i];
          x[i] = x1 * c - x2 * s;
          x[i + half] = x2 * c + x1 * s;
        }
      }
  }
}

void rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int n_prefix, int C, int NH) {
  rotate(qkv, cos_t, sin_t, B, T, n_prefix, C, NH, 1.0f);
}

void rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int n_prefix, int C,
                   int NH) {
  rotate(dqkv, cos_t, sin_t, B, T, n_prefix, C, NH, -1.0f); /* a rotation's transpose is its inverse */
}
