/* DINO's photometric augmentations (src/train/photometric.c) against an independent numpy
 * reference (tests/ref/photometric_ref.py: torchvision's formulas re-derived in float64, hue
 * through Python's colorsys, blur through scipy.ndimage). Each case is one fixed set of choices
 * (gb_photometric) on the same random RGB image: every operation alone, then all of them.
 * Tolerance 1e-5 absolute (pixels in [0, 1]; float32 vs float64 arithmetic).
 * Also: gb_photometric_draw is deterministic, draws every probability (a fixed number of
 * draws: the next value of the stream does not depend on the outcomes) and the augmentation
 * of normalized crops keeps pixels in the normalized image of [0, 1]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradbrain/npy.h"
#include "gradbrain/rng.h"
#include "gradbrain/train.h"

enum { S = 24, NCASE = 9 };

int main(void) {
  const char *src = getenv("GB_SRC");
  if (!src) {
    fprintf(stderr, "GB_SRC not set\n");
    return 1;
  }
  int failures = 0;
  int64_t n = 3LL * S * S;
  float *img = malloc((size_t)n * sizeof(float)), *out = malloc((size_t)NCASE * n * sizeof(float));
  float *params = calloc((size_t)NCASE * 16, sizeof(float));
  gb_rng r;
  gb_rng_seed(&r, 11);
  for (int64_t i = 0; i < n; i++) img[i] = (float)gb_rng_uniform(&r);
  gb_photometric cases[NCASE];
  memset(cases, 0, sizeof cases);
  for (int k = 0; k < NCASE; k++) {
    gb_photometric *d = &cases[k];
    for (int j = 0; j < 4; j++) d->order[j] = j;
    d->brightness = d->contrast = d->saturation = 1.0f;
  }
  cases[0].jitter = 1, cases[0].brightness = 1.3f, cases[0].order[0] = 0; /* brightness (clamps) */
  cases[1].jitter = 1, cases[1].contrast = 0.65f;
  cases[2].jitter = 1, cases[2].saturation = 1.17f;
  cases[3].jitter = 1, cases[3].hue = 0.083f;
  cases[4].jitter = 1, cases[4].hue = -0.061f;
  cases[5].gray = 1;
  cases[6].blur = 1, cases[6].sigma = 1.9f * 224.0f / S; /* 1.9 px at this size */
  cases[7].solarize = 1;
  gb_photometric *all = &cases[8];
  all->jitter = 1, all->brightness = 0.8f, all->contrast = 1.25f, all->saturation = 0.9f, all->hue = 0.04f;
  all->order[0] = 3, all->order[1] = 1, all->order[2] = 0, all->order[3] = 2;
  all->gray = 0, all->blur = 1, all->sigma = 9.0f, all->solarize = 1;
  for (int k = 0; k < NCASE; k++) {
    float *o = out + k * n, *p = params + k * 16;
    memcpy(o, img, (size_t)n * sizeof(float));
    if (gb_photometric_apply(o, S, &cases[k]) != GB_OK) {
      printf("FAIL case %d: %s\n", k, gb_errmsg());
      failures++;
    }
    const gb_photometric *d = &cases[k];
    float v[16] = {(float)d->jitter, (float)d->order[0], (float)d->order[1], (float)d->order[2], (float)d->order[3],
                   d->brightness, d->contrast, d->saturation, d->hue, (float)d->gray, (float)d->blur,
                   d->sigma * (float)S / 224.0f, (float)d->solarize, 0, 0, 0};
    memcpy(p, v, sizeof v);
  }
  char dir[] = "/tmp/gb_photometric_XXXXXX", path[4096], cmd[8192];
  if (!mkdtemp(dir)) return 1;
  int64_t shp_img[3] = {3, S, S}, shp_out[4] = {NCASE, 3, S, S}, shp_par[2] = {NCASE, 16};
  snprintf(path, sizeof path, "%s/img.npy", dir);
  gb_npy_write(path, img, 3, shp_img);
  snprintf(path, sizeof path, "%s/out.npy", dir);
  gb_npy_write(path, out, 4, shp_out);
  snprintf(path, sizeof path, "%s/params.npy", dir);
  gb_npy_write(path, params, 2, shp_par);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/photometric_ref.py %s", src, dir);
  if (system(cmd) != 0) {
    printf("FAIL: the reference comparison failed (%s)\n", cmd);
    failures++;
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);

  /* draws: deterministic, and a fixed number of them per call */
  gb_rng a, b;
  gb_rng_derive(&a, 5, 7);
  gb_rng_derive(&b, 5, 7);
  gb_photometric da, db;
  gb_photometric_draw(&a, 0, &da);
  gb_photometric_draw(&b, 2, &db); /* another crop kind: other probabilities, same number of draws */
  if (da.brightness != db.brightness || da.hue != db.hue || gb_rng_uniform(&a) != gb_rng_uniform(&b)) {
    printf("FAIL: the draws depend on the crop kind or are not deterministic\n");
    failures++;
  }
  int nblur = 0, nsol = 0, ngray = 0, njit = 0;
  for (int i = 0; i < 2000; i++) {
    gb_photometric d;
    gb_rng_derive(&a, 9, (uint64_t)i);
    gb_photometric_draw(&a, 1, &d);
    nblur += d.blur, nsol += d.solarize, ngray += d.gray, njit += d.jitter;
  }
  /* expected 200 / 400 / 400 / 1600 of 2000 for the second global crop; +-5 sigma */
  printf("second global crop, 2000 draws: blur %d (p 0.1), solarize %d (p 0.2), gray %d (p 0.2), jitter %d (p 0.8)\n",
         nblur, nsol, ngray, njit);
  if (abs(nblur - 200) > 68 || abs(nsol - 400) > 90 || abs(ngray - 400) > 90 || abs(njit - 1600) > 90) {
    printf("FAIL: probabilities off\n");
    failures++;
  }
  /* normalized crops stay inside the normalized image of [0, 1] */
  const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  float *x = malloc((size_t)n * sizeof(float));
  for (int i = 0; i < 50; i++) {
    for (int c = 0; c < 3; c++)
      for (int64_t j = 0; j < S * S; j++) x[c * S * S + j] = (img[c * S * S + j] - mean[c]) / sd[c];
    gb_rng_derive(&a, 3, (uint64_t)i);
    gb_photometric_augment(x, S, i % 3, &a, mean, sd);
    for (int c = 0; c < 3; c++)
      for (int64_t j = 0; j < S * S; j++) {
        float v = x[c * S * S + j] * sd[c] + mean[c];
        if (!(v >= -1e-5f && v <= 1.0f + 1e-5f)) {
          printf("FAIL: augmented pixel %g outside [0, 1]\n", v);
          failures++;
          i = 50;
          c = 3;
          break;
        }
      }
  }
  free(x);
  free(img);
  free(out);
  free(params);
  printf(failures ? "FAILED (%d)\n" : "all photometric checks passed\n", failures);
  return failures ? 1 : 0;
}
