/* Objective set-up (heads from the weights file or seeded) and per-objective dispatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradbrain/arena.h"
#include "gradbrain/log.h"
#include "gradbrain/objective.h"
#include "gradbrain/rng.h"
#include "internal.h"
#include "../small_gemm.h"

int gb_objective_parse(const char *s) {
  if (!strcmp(s, "dino")) return GB_OBJ_DINO;
  if (!strcmp(s, "xent")) return GB_OBJ_XENT;
  if (!strcmp(s, "invariance")) return GB_OBJ_INVARIANCE;
  return -1;
}

const char *gb_objective_name(gb_objective_kind k) {
  return k == GB_OBJ_DINO ? "dino" : k == GB_OBJ_XENT ? "xent" : "invariance";
}

/* Normal(0, std) truncated at +-2 std, as trunc_normal_ in the DINO code. */
static void fill_trunc_normal(gb_rng *r, float *x, int64_t n, float std) {
  for (int64_t i = 0; i < n; i++) {
    double v;
    do v = gb_rng_normal(r);
    while (v < -2.0 || v > 2.0);
    x[i] = (float)(v * std);
  }
}

static gb_status seeded_dino_head(gb_dino_head *h, int dim, int k, uint64_t seed) {
  h->in = dim;
  h->hidden = 2048;
  h->bottleneck = 256;
  h->k = k;
  int64_t sz[3] = {(int64_t)h->hidden * dim, (int64_t)h->hidden * h->hidden, (int64_t)h->bottleneck * h->hidden};
  int64_t bs[3] = {h->hidden, h->hidden, h->bottleneck};
  gb_rng r;
  gb_rng_seed(&r, seed);
  for (int i = 0; i < 3; i++) {
    h->w[i] = gb_alloc((size_t)sz[i] * 4, "DINO head");
    h->b[i] = gb_calloc((size_t)bs[i] * 4, "DINO head");
    if (!h->w[i] || !h->b[i]) return GB_ERR_NOMEM;
    fill_trunc_normal(&r, h->w[i], sz[i], 0.02f);
  }
  h->last = gb_alloc((size_t)k * h->bottleneck * 4, "DINO head");
  if (!h->last) return GB_ERR_NOMEM;
  fill_trunc_normal(&r, h->last, (int64_t)k * h->bottleneck, 0.02f);
  for (int i = 0; i < k; i++) { /* weight norm with g = 1: unit rows */
    float *row = h->last + (int64_t)i * h->bottleneck;
    double s = 0;
    for (int j = 0; j < h->bottleneck; j++) s += (double)row[j] * row[j];
    float inv = (float)(1.0 / sqrt(s));
    for (int j = 0; j < h->bottleneck; j++) row[j] *= inv;
  }
  return GB_OK;
}

/* W^T of a weight W (rows x cols) in panels of 64 columns of W^T: panel p holds columns
 * 64p..64p+63 of W^T as a contiguous (cols x 64) row-major block, so a product streams it
 * without strided rows. NULL when out of memory. */
static float *panels(const float *w, int rows, int cols) {
  int64_t np = (rows + 63) / 64;
  float *dst = gb_calloc((size_t)(np * 64 * cols) * sizeof(float), "DINO head (W^T panels)");
  if (!dst)
    return NULL;
  for (int64_t p = 0; p < np; p++) {
    int n = rows - 64 * (int)p < 64 ? rows - 64 * (int)p : 64;
    small_transpose(dst + p * 64 * cols, 64, w + p * 64 * cols, cols, n, cols);
  }
  return dst;
}

/* The head's forward products run as in (rows x in) times W^T: one panelled copy of each
 * weight, made once (see dino.c). */
static gb_status transpose_weights(gb_dino_head *h) {
  int out[3] = {h->hidden, h->hidden, h->bottleneck}, in[3] = {h->in, h->hidden, h->hidden};
  for (int i = 0; i < 3; i++)
    if (!(h->wt[i] = panels(h->w[i], out[i], in[i]))) return GB_ERR_NOMEM;
  if (!(h->last_t = panels(h->last, h->k, h->bottleneck))) return GB_ERR_NOMEM;
  return GB_OK;
}

gb_status gb_objective_init(gb_objective *o, gb_objective_kind kind, int dim, gb_vit_heads *fh, uint64_t seed,
                            int head_k, int n_classes, int max_batch) {
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->dim = dim;
  o->max_batch = max_batch;
  o->head_seed = seed;
  o->student_temp = 0.1f;
  o->teacher_temp = 0.07f;
  o->rows = (max_batch + 15) / 16 * 16; /* whole 16-row slices, see linear.c */
  int64_t B = o->rows;
  o->fin = gb_calloc((size_t)(B * dim) * 4, "head input");
  o->dfin = gb_calloc((size_t)(B * dim) * 4, "head input gradient");
  if (!o->fin || !o->dfin) return GB_ERR_NOMEM;
  if (kind == GB_OBJ_DINO) {
    gb_dino_head *h = &o->dino;
    if (fh && fh->dino_present) {
      h->in = fh->dino_in;
      h->hidden = fh->dino_hidden;
      h->bottleneck = fh->dino_bottleneck;
      h->k = fh->dino_k;
      for (int i = 0; i < 3; i++) {
        h->w[i] = fh->dino_w[i];
        h->b[i] = fh->dino_b[i];
        fh->dino_w[i] = fh->dino_b[i] = NULL;
      }
      h->last = fh->dino_last;
      fh->dino_last = NULL;
      fh->dino_present = 0;
      o->head_from_file = 1;
      snprintf(o->head_desc, sizeof o->head_desc, "DINO head from the weights file: %d-%d-%d-%d, K = %d", h->in,
               h->hidden, h->hidden, h->bottleneck, h->k);
    } else {
      int k = head_k > 0 ? head_k : 65536;
      GB_TRY(seeded_dino_head(h, dim, k, seed));
      snprintf(o->head_desc, sizeof o->head_desc,
               "DINO head built from seed %llu (trunc-normal 0.02, unit last-layer rows): %d-2048-2048-256, K = %d",
               (unsigned long long)seed, dim, k);
      gb_warn("the weights file has no DINO head (dino_head.*): using a %s", o->head_desc);
    }
    GB_TRY(transpose_weights(h));
    int64_t Hd = h->hidden, Bn = h->bottleneck, K = h->k;
    float **bufs[] = {&o->h1p, &o->h1, &o->h2p, &o->h2, &o->dh2, &o->dh1};
    for (int i = 0; i < 6; i++)
      if (!(*bufs[i] = gb_calloc((size_t)(B * Hd) * 4, "DINO head scratch"))) return GB_ERR_NOMEM;
    float **bb[] = {&o->z, &o->zn, &o->dzn, &o->dz};
    for (int i = 0; i < 4; i++)
      if (!(*bb[i] = gb_calloc((size_t)(B * Bn) * 4, "DINO head scratch"))) return GB_ERR_NOMEM;
    o->zl = gb_calloc((size_t)B * 4, "DINO head scratch");
    o->ls = gb_calloc((size_t)(B * K) * 4, "DINO logits");
    o->lt = gb_calloc((size_t)(B * K) * 4, "DINO logits");
    o->dl = gb_calloc((size_t)(B * K) * 4, "DINO logits");
    o->center = gb_calloc((size_t)K * 4, "DINO center");
    o->center_sum = calloc((size_t)K, sizeof(double));
    if (!o->zl || !o->ls || !o->lt || !o->dl || !o->center || !o->center_sum) return gb_fail(GB_ERR_NOMEM, "out of memory");
    if (h->in != dim) return gb_fail(GB_ERR_SHAPE, "DINO head input %d, backbone dim %d", h->in, dim);
  } else if (kind == GB_OBJ_XENT) {
    if (fh && fh->cls_present) {
      o->n_classes = fh->n_classes;
      o->cls_w = fh->cls_w;
      o->cls_b = fh->cls_b;
      fh->cls_w = fh->cls_b = NULL;
      fh->cls_present = 0;
      o->head_from_file = 1;
      snprintf(o->head_desc, sizeof o->head_desc, "linear classifier from the weights file ('%s.*'), %d classes",
               fh->cls_source, o->n_classes);
    } else {
      o->n_classes = n_classes > 0 ? n_classes : 1000;
      o->cls_w = gb_alloc((size_t)o->n_classes * dim * 4, "classifier");
      o->cls_b = gb_calloc((size_t)o->n_classes * 4, "classifier");
      if (!o->cls_w || !o->cls_b) return GB_ERR_NOMEM;
      gb_rng r;
      gb_rng_seed(&r, seed);
      fill_trunc_normal(&r, o->cls_w, (int64_t)o->n_classes * dim, 0.02f);
      snprintf(o->head_desc, sizeof o->head_desc, "linear classifier built from seed %llu (trunc-normal 0.02, zero bias), %d classes",
               (unsigned long long)seed, o->n_classes);
      gb_warn("the weights file has no classifier (head.* / classifier.*): using a %s", o->head_desc);
    }
    o->ls = gb_calloc((size_t)(B * o->n_classes) * 4, "logits");
    o->dl = gb_calloc((size_t)(B * o->n_classes) * 4, "logits");
    if (!o->ls || !o->dl) return GB_ERR_NOMEM;
  } else {
    snprintf(o->head_desc, sizeof o->head_desc, "none (backbone CLS)");
  }
  return GB_OK;
}

void gb_objective_free(gb_objective *o) {
  if (!o) return;
  for (int i = 0; i < 3; i++) {
    gb_free(o->dino.w[i]);
    gb_free(o->dino.b[i]);
  }
  gb_free(o->dino.last);
  for (int i = 0; i < 3; i++) gb_free(o->dino.wt[i]);
  gb_free(o->dino.last_t);
  float *bufs[] = {o->h1p, o->h1, o->h2p, o->h2, o->z, o->zn, o->zl, o->ls, o->lt, o->dl, o->dzn, o->dz, o->dh2,
                   o->dh1, o->center, o->cls_w, o->cls_b, o->fin, o->dfin};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gb_free(bufs[i]);
  free(o->center_sum);
  memset(o, 0, sizeof *o);
}

gb_status gb_objective_loss_grad(gb_objective *o, const float *fs, const float *ft, const int *labels, int nb,
                                 float *loss, float *dfs, int *used_labels) {
  if (nb > o->max_batch) return gb_fail(GB_ERR_ARG, "objective: batch of %d, set up for %d", nb, o->max_batch);
  switch (o->kind) {
    case GB_OBJ_DINO: return dino_loss_grad(o, fs, ft ? ft : fs, nb, loss, dfs);
    case GB_OBJ_XENT: return xent_loss_grad(o, fs, labels, nb, loss, dfs, used_labels);
    case GB_OBJ_INVARIANCE: return invariance_loss_grad(o, fs, ft ? ft : fs, nb, loss, dfs);
  }
  return gb_fail(GB_ERR_ARG, "unknown objective %d", (int)o->kind);
}
