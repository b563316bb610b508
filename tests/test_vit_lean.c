/* The extraction path's shortcuts give the same numbers as the full backward pass:
 * - lean forward (weight-gradient inputs not kept per block) + a backward with weight
 *   gradients, which then recomputes each block's forward: every weight gradient and every
 *   tap bit-identical to the non-lean run (same code on the same inputs);
 * - the backward without weight gradients (batch sharded over threads; last block on the CLS
 *   rows only) against the taps of the full backward: equal up to float rounding (1e-5
 *   relative to the tap's max |value|; the sums run in a different order).
 * Every arch (RoPE + registers + LayerScale, learned position embedding, CLIP's ln_pre and
 * QuickGELU), batch 3 on 2 threads (shards of 1 and 2 images). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/log.h"
#include "gradbrain/rng.h"
#include "gradbrain/vit.h"

enum { S = 16, NB = 3 };

static double max_rel(const float *a, const float *b, int64_t n) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < n; i++) {
    d = fmax(d, fabs((double)a[i] - b[i]));
    m = fmax(m, fabs((double)b[i]));
  }
  return m > 0 ? d / m : (d > 0 ? INFINITY : 0);
}

/* Forward + backward of the batch; copies every tap gradient to taps and, if dp_mem, the
 * weight gradients. */
static void run(gb_vit *m, int lean, const float *img, const float *dfinal, float *dp_mem, float *taps) {
  m->lean = lean;
  CHECK(gb_vit_forward(m, img, NB) == GB_OK, "forward: %s", gb_errmsg());
  gb_vit_params dp;
  if (dp_mem) {
    memset(dp_mem, 0, (size_t)m->n_params * sizeof(float));
    gb_vit_params_layout(&m->cfg, dp_mem, &dp);
  }
  gb_vit_backward(m, dfinal, NB, 1, dp_mem ? &dp : NULL);
  int64_t n = (int64_t)NB * m->T * m->cfg.dim;
  for (int l = 1; l <= m->cfg.depth; l++) memcpy(taps + (l - 1) * n, gb_vit_tap(m, l, 1), (size_t)n * sizeof(float));
}

int main(void) {
  gb_log_set_level(GB_LOG_WARN);
  gb_set_threads(2);
  const gb_vit_arch archs[3] = {GB_VIT_DINOV3, GB_VIT_DINOV2, GB_VIT_CLIP};
  for (int a = 0; a < 3; a++) {
    gb_vit_config cfg;
    gb_vit_config_default(&cfg, archs[a], 64, 3, 4, 4, archs[a] == GB_VIT_CLIP ? 0 : 4);
    if (cfg.pos_grid) cfg.pos_grid = 4;
    gb_vit *m;
    if (gb_vit_create_random(&cfg, 3, &m) != GB_OK || gb_vit_prepare(m, NB, S, 1) != GB_OK) return 1;
    float img[NB * 3 * S * S], dfinal[NB * 64];
    gb_rng r;
    gb_rng_seed(&r, 9);
    gb_rng_fill_normal(&r, img, NB * 3 * S * S, 1.0f);
    gb_rng_fill_normal(&r, dfinal, NB * 64, 1.0f);
    int64_t ntap = (int64_t)cfg.depth * NB * m->T * cfg.dim;
    float *dp_full = gb_alloc((size_t)m->n_params * 4, "t"), *dp_lean = gb_alloc((size_t)m->n_params * 4, "t");
    float *t_full = gb_alloc((size_t)ntap * 4, "t"), *t_lean = gb_alloc((size_t)ntap * 4, "t");
    float *t_extract = gb_alloc((size_t)ntap * 4, "t");
    run(m, 0, img, dfinal, dp_full, t_full);
    run(m, 1, img, dfinal, dp_lean, t_lean);
    run(m, 1, img, dfinal, NULL, t_extract);
    const char *name = gb_vit_arch_name(archs[a]);
    CHECK(!memcmp(dp_full, dp_lean, (size_t)m->n_params * 4), "%s: weight gradients differ after the lean forward",
          name);
    CHECK(!memcmp(t_full, t_lean, (size_t)ntap * 4), "%s: taps differ after the lean forward", name);
    double rel = max_rel(t_extract, t_full, ntap);
    printf("%-7s lean + weight gradients: %s; extraction taps vs full backward: max rel %.2e\n", name,
           memcmp(dp_full, dp_lean, (size_t)m->n_params * 4) ? "DIFFER" : "bit-identical", rel);
    CHECK(rel <= 1e-5, "%s: extraction-path taps differ from the full backward by %.2e", name, rel);
    gb_free(dp_full);
    gb_free(dp_lean);
    gb_free(t_full);
    gb_free(t_lean);
    gb_free(t_extract);
    gb_vit_free(m);
  }
  printf("%s: %d failure(s)\n", check_failures ? "FAIL" : "PASS", check_failures);
  return check_failures ? 1 : 0;
}
