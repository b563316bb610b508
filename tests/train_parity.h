/* Shared pieces of the training-step parity tests (test_train_parity*.c): relative L2
 * comparison of parameter groups (counts failures), numbers and settings from train_ref.py's
 * case.json, and a loaded file's DINO head flattened into the trainer's layout. */
#ifndef GRADBRAIN_TESTS_TRAIN_PARITY_H
#define GRADBRAIN_TESTS_TRAIN_PARITY_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gradbrain/train.h"
#include "gradbrain/vit.h"

static int failures = 0;

static double rel_l2(const char *what, const float *c, const float *r, int64_t n, double tol) {
  double dn = 0, rn = 0, dmax = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)c[i] - r[i];
    dn += d * d;
    rn += (double)r[i] * r[i];
    if (fabs(d) > dmax) dmax = fabs(d);
  }
  double rel = rn > 0 ? sqrt(dn / rn) : sqrt(dn);
  int bad = !(rel <= tol);
  printf("    %-22s rel L2 %.2e  max|diff| %.2e  (tol %.0e)%s\n", what, rel, dmax, tol, bad ? "  FAIL" : "");
  failures += bad;
  return rel;
}

static double jnum(const cJSON *o, const char *k) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsNumber(j)) {
    fprintf(stderr, "case.json: missing number '%s'\n", k);
    exit(1);
  }
  return j->valuedouble;
}

/* The schedule and step settings of train_ref.py's case.json, into c. */
static void case_config(gb_train_config *c, const cJSON *cj) {
  c->batch = (int)jnum(cj, "batch");
  c->n_global = (int)jnum(cj, "n_global");
  c->n_local = (int)jnum(cj, "n_local");
  c->global_size = (int)jnum(cj, "global_size");
  c->local_size = (int)jnum(cj, "local_size");
  c->iters = (int64_t)jnum(cj, "iters");
  c->warmup_iters = (int64_t)jnum(cj, "warmup");
  c->teacher_temp_warmup = (int64_t)jnum(cj, "tt_warmup");
  c->lr = jnum(cj, "lr");
  c->min_lr = jnum(cj, "min_lr");
  c->wd0 = jnum(cj, "wd0");
  c->wd1 = jnum(cj, "wd1");
  c->mom0 = jnum(cj, "mom0");
  c->mom1 = jnum(cj, "mom1");
  c->teacher_temp0 = jnum(cj, "tt0");
  c->teacher_temp1 = jnum(cj, "tt1");
  c->student_temp = jnum(cj, "ts");
  c->center_momentum = jnum(cj, "center_m");
  c->clip = jnum(cj, "clip");
  c->koleo_weight = jnum(cj, "koleo");
  c->sinkhorn = (int)jnum(cj, "sinkhorn");
  c->norm_last_layer = (int)jnum(cj, "norm_last_layer");
}

/* Flattened head parameters of a loaded file, in the trainer's layout. */
static void head_flat(const gb_vit_heads *h, const gb_dhead_config *c, float *out) {
  gb_dhead_params p;
  gb_dhead_layout(c, out, &p);
  memcpy(p.w0, h->dino_w[0], (size_t)c->hidden * c->in * 4);
  memcpy(p.b0, h->dino_b[0], (size_t)c->hidden * 4);
  memcpy(p.w1, h->dino_w[1], (size_t)c->hidden * c->hidden * 4);
  memcpy(p.b1, h->dino_b[1], (size_t)c->hidden * 4);
  memcpy(p.w2, h->dino_w[2], (size_t)c->bottleneck * c->hidden * 4);
  memcpy(p.b2, h->dino_b[2], (size_t)c->bottleneck * 4);
  memcpy(p.last, h->dino_last, (size_t)c->k * c->bottleneck * 4);
}

#endif
