/* DINO's photometric augmentations of training crops, seeded per crop (DINOv1/v2
 * DataAugmentationDINO): colour jitter (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1,
 * in random order) with p = 0.8, grayscale with p = 0.2, Gaussian blur with p = 1.0 on the
 * first global crop, 0.1 on the second and 0.5 on local crops (sigma U(0.1, 2.0) pixels at
 * 224 px, scaled to the crop size), solarization (p = 0.2) on the second global crop.
 * Applied to normalized CHW crops: undone to RGB in [0, 1], transformed, normalized again. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradbrain/image.h"
#include "gradbrain/train.h"

static float clamp01(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }

static float gray_of(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

/* x = clamp(f x + (1 - f) ref) per pixel and channel; ref per pixel (NULL: the scalar ref0). */
static void blend(float *x, int64_t n, float f, const float *ref, float ref0) {
  for (int c = 0; c < 3; c++)
    for (int64_t i = 0; i < n; i++) x[c * n + i] = clamp01(f * x[c * n + i] + (1.0f - f) * (ref ? ref[i] : ref0));
}

static void gray_plane(const float *x, int64_t n, float *g) {
  for (int64_t i = 0; i < n; i++) g[i] = gray_of(x[i], x[n + i], x[2 * n + i]);
}

/* Hue rotation by `shift` turns (torchvision adjust_hue: RGB -> HSV, h += shift mod 1, back). */
static void hue_shift(float *x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; i++) {
    float r = x[i], g = x[n + i], b = x[2 * n + i];
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
    if (d <= 0.0f) continue; /* gray: hue undefined, unchanged */
    float h = mx == r ? (g - b) / d : mx == g ? 2.0f + (b - r) / d : 4.0f + (r - g) / d;
    h = h / 6.0f + shift;
    h -= floorf(h);
    float s = d / mx, v = mx, hh = h * 6.0f;
    int k = (int)hh % 6;
    float f = hh - floorf(hh), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    float o[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    x[i] = o[k][0];
    x[n + i] = o[k][1];
    x[2 * n + i] = o[k][2];
  }
}

/* Separable Gaussian blur (kernel radius ceil(3 sigma), reflected borders) of 3 planes s x s. */
static void blur(float *x, int s, float sigma, float *tmp) {
  int rad = (int)ceilf(3.0f * sigma);
  if (rad < 1) return;
  if (rad > s - 1) rad = s - 1;
  float w[64];
  if (rad > 31) rad = 31;
  float sum = 0.0f;
  for (int k = -rad; k <= rad; k++) sum += (w[k + rad] = expf(-0.5f * (float)(k * k) / (sigma * sigma)));
  for (int k = 0; k <= 2 * rad; k++) w[k] /= sum;
  for (int c = 0; c < 3; c++) {
    float *p = x + (int64_t)c * s * s;
    for (int pass = 0; pass < 2; pass++) { /* rows, then columns */
      for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
          float a = 0.0f;
          for (int k = -rad; k <= rad; k++) {
            int jj = j + k;
            jj = jj < 0 ? -jj : jj >= s ? 2 * s - 2 - jj : jj;
            a += w[k + rad] * (pass ? p[(int64_t)jj * s + i] : p[(int64_t)i * s + jj]);
          }
          tmp[pass ? (int64_t)j * s + i : (int64_t)i * s + j] = a;
        }
      memcpy(p, tmp, (size_t)s * s * sizeof(float));
    }
  }
}

void gb_photometric_draw(gb_rng *rng, int crop_kind, gb_photometric *d) {
  /* every draw is made whether or not it is used, so the stream does not depend on outcomes */
  double u_jit = gb_rng_uniform(rng), u_gray = gb_rng_uniform(rng), u_blur = gb_rng_uniform(rng);
  double u_sol = gb_rng_uniform(rng), u_sigma = gb_rng_uniform(rng);
  d->brightness = (float)(0.6 + 0.8 * gb_rng_uniform(rng));
  d->contrast = (float)(0.6 + 0.8 * gb_rng_uniform(rng));
  d->saturation = (float)(0.8 + 0.4 * gb_rng_uniform(rng));
  d->hue = (float)(-0.1 + 0.2 * gb_rng_uniform(rng));
  for (int i = 0; i < 4; i++) d->order[i] = i;
  for (int i = 3; i > 0; i--) { /* Fisher-Yates */
    int j = (int)gb_rng_below(rng, (uint64_t)i + 1), t = d->order[i];
    d->order[i] = d->order[j];
    d->order[j] = t;
  }
  d->jitter = u_jit < 0.8;
  d->gray = u_gray < 0.2;
  d->blur = u_blur < (crop_kind == 0 ? 1.0 : crop_kind == 1 ? 0.1 : 0.5);
  d->sigma = (float)(0.1 + 1.9 * u_sigma); /* pixels at 224 px */
  d->solarize = crop_kind == 1 && u_sol < 0.2;
}

gb_status gb_photometric_apply(float *rgb, int size, const gb_photometric *d) {
  int64_t n = (int64_t)size * size;
  float *tmp = malloc((size_t)n * sizeof(float));
  if (!tmp) return gb_fail(GB_ERR_NOMEM, "out of memory");
  for (int k = 0; d->jitter && k < 4; k++) {
    if (d->order[k] == 0) {
      blend(rgb, n, d->brightness, NULL, 0.0f);
    } else if (d->order[k] == 1) {
      gray_plane(rgb, n, tmp);
      double m = 0;
      for (int64_t i = 0; i < n; i++) m += tmp[i];
      blend(rgb, n, d->contrast, NULL, (float)(m / (double)n));
    } else if (d->order[k] == 2) {
      gray_plane(rgb, n, tmp);
      blend(rgb, n, d->saturation, tmp, 0.0f);
    } else {
      hue_shift(rgb, n, d->hue);
    }
  }
  if (d->gray) {
    gray_plane(rgb, n, tmp);
    for (int c = 0; c < 3; c++) memcpy(rgb + c * n, tmp, (size_t)n * sizeof(float));
  }
  if (d->blur) blur(rgb, size, d->sigma * (float)size / 224.0f, tmp);
  if (d->solarize)
    for (int64_t i = 0; i < 3 * n; i++) rgb[i] = rgb[i] >= 0.5f ? 1.0f - rgb[i] : rgb[i];
  free(tmp);
  return GB_OK;
}

gb_status gb_photometric_augment(float *chw, int size, int crop_kind, gb_rng *rng, const float mean[3],
                                 const float std[3]) {
  int64_t n = (int64_t)size * size;
  gb_photometric d;
  gb_photometric_draw(rng, crop_kind, &d);
  for (int c = 0; c < 3; c++)
    for (int64_t i = 0; i < n; i++) chw[c * n + i] = chw[c * n + i] * std[c] + mean[c];
  GB_TRY(gb_photometric_apply(chw, size, &d));
  gb_image_normalize(chw, n, mean, std);
  return GB_OK;
}
