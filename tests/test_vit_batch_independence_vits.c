/* Batch independence at the benchmark's scale (issue 3, acceptance 2): ViT-S/16 at 224 px
 * (DINOv3-style: RoPE, 4 registers, LayerScale), DINO objective with K = 65536 and a fixed
 * center, 2 threads. An image's forward and backprop taps of every block must be bit-identical
 * whether it runs alone (one shard of one image) or second in a batch of 3 (second shard of
 * two images, next to another image). At this size the linear layers are single large GEMMs
 * (no padded slices, linear.c), so this checks that the GEMM kernels treat a row the same for
 * any row count, and that the shards and the CLS-only last block keep images apart. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/extract.h"
#include "gradbrain/log.h"
#include "gradbrain/rng.h"

enum { S = 224, NB = 3 };

int main(void) {
  gb_log_set_level(GB_LOG_WARN);
  gb_set_threads(2);
  gb_vit_config cfg;
  gb_vit_config_default(&cfg, GB_VIT_DINOV3, 384, 12, 6, 16, 4);
  gb_vit *m;
  gb_objective obj;
  gb_signal_batch sb;
  if (gb_vit_create_random(&cfg, 1, &m) != GB_OK ||
      gb_objective_init(&obj, GB_OBJ_DINO, 384, NULL, 2, 65536, 0, NB) != GB_OK ||
      gb_signal_batch_init(&sb, m, &obj, NB, S, 1) != GB_OK) {
    printf("FAIL setup: %s\n", gb_errmsg());
    return 1;
  }
  int64_t per = 3 * S * S;
  float *imgs = gb_alloc((size_t)NB * per * sizeof(float), "images");
  float *center = gb_alloc((size_t)65536 * sizeof(float), "center");
  gb_rng r;
  gb_rng_seed(&r, 21);
  gb_rng_fill_normal(&r, imgs, (long)(NB * per), 1.0f);
  gb_rng_fill_normal(&r, center, 65536, 0.1f);
  gb_objective_set_center(&obj, center);

  int64_t TD = (int64_t)m->T * cfg.dim, n = (int64_t)2 * cfg.depth * TD;
  float *alone = gb_alloc((size_t)n * sizeof(float), "taps"), *batch = gb_alloc((size_t)n * sizeof(float), "taps");
  /* image 1 alone, then images 0, 1, 2 together (image 1 at position 1) */
  int ok = gb_signal_batch_run(&sb, imgs + per, NULL, NULL, 1) == GB_OK;
  for (int l = 1; ok && l <= cfg.depth; l++)
    for (int g = 0; g < 2; g++) memcpy(alone + ((l - 1) * 2 + g) * TD, gb_vit_tap(m, l, g), (size_t)TD * 4);
  ok = ok && gb_signal_batch_run(&sb, imgs, NULL, NULL, NB) == GB_OK;
  for (int l = 1; ok && l <= cfg.depth; l++)
    for (int g = 0; g < 2; g++) memcpy(batch + ((l - 1) * 2 + g) * TD, gb_vit_tap(m, l, g) + TD, (size_t)TD * 4);
  CHECK(ok, "run: %s", gb_errmsg());
  int64_t differ = 0;
  for (int64_t i = 0; i < n; i++) differ += alone[i] != batch[i];
  printf("ViT-S/16 224 px, DINO K=65536: %lld of %lld tap values differ (alone vs second of %d)\n", (long long)differ,
         (long long)n, NB);
  CHECK(ok && differ == 0, "image 1's taps depend on its batch: %lld values differ", (long long)differ);
  gb_free(alone);
  gb_free(batch);
  gb_free(imgs);
  gb_free(center);
  gb_signal_batch_free(&sb);
  gb_objective_free(&obj);
  gb_vit_free(m);
  printf("%s: %d failure(s)\n", check_failures ? "FAIL" : "PASS", check_failures);
  return check_failures ? 1 : 0;
}
