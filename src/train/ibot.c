/* iBOT masked-patch loss for the DINO trainer (see gradbrain/ibot.h): block-wise masks, mask
 * token hooks on the student's global-crop models, the patch loss through the shared DINO head,
 * the patch center, and the mask token's optimizer step. */
#include "gradbrain/ibot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradbrain/arena.h"
#include "gradbrain/nn.h"
#include "gradbrain/rng.h"

#define SALT_IBOT 0x49424f54ULL          /* "IBOT" */
#define SALT_IBOT_HEAD 0x49424f5448ULL    /* "IBOTH": init of a separate iBOT head */
#define IBOT_CHUNK 256          /* head rows per pass (bounds the K-wide scratch) */

/* ---- masks ---- */

/* One rectangle of at most max_new new patches (10 attempts); returns the patches added. */
static int mask_block(gb_rng *r, uint8_t *mask, int gh, int gw, int max_new) {
  const double min_area = 4.0, la0 = log(0.3), la1 = log(1.0 / 0.3);
  for (int attempt = 0; attempt < 10; attempt++) {
    double area = min_area + (max_new - min_area) * gb_rng_uniform(r);
    double ar = exp(la0 + (la1 - la0) * gb_rng_uniform(r));
    int h = (int)lround(sqrt(area * ar)), w = (int)lround(sqrt(area / ar));
    if (h < 1 || w < 1 || h >= gh || w >= gw) continue;
    int top = (int)gb_rng_below(r, (uint64_t)(gh - h + 1)), left = (int)gb_rng_below(r, (uint64_t)(gw - w + 1));
    int have = 0;
    for (int y = top; y < top + h; y++)
      for (int x = left; x < left + w; x++) have += mask[y * gw + x];
    int add = h * w - have;
    if (add > 0 && add <= max_new) {
      for (int y = top; y < top + h; y++)
        for (int x = left; x < left + w; x++) mask[y * gw + x] = 1;
      return add;
    }
  }
  return 0;
}

/* The mask of crop j of iteration it (gh x gw); returns its masked patches. */
static int crop_mask(const gb_train_config *c, int64_t it, int j, int gh, int gw, uint8_t *mask) {
  int N = gh * gw, G = c->n_global, B = c->batch;
  memset(mask, 0, (size_t)N);
  gb_rng r;
  gb_rng_derive(&r, c->seed ^ SALT_IBOT, (uint64_t)it * (uint64_t)(G * B) + (uint64_t)j);
  if (!(gb_rng_uniform(&r) < c->ibot_mask_prob)) return 0;
  double ratio = c->ibot_ratio[0] + (c->ibot_ratio[1] - c->ibot_ratio[0]) * gb_rng_uniform(&r);
  int target = (int)(N * ratio), per_block = N / 2 > 1 ? N / 2 : 1, count = 0;
  while (count < target) {
    int left = target - count, add = mask_block(&r, mask, gh, gw, left < per_block ? left : per_block);
    if (add == 0) break;
    count += add;
  }
  return count;
}

int64_t gb_ibot_make_masks(const gb_train_config *c, int64_t it, int gh, int gw, uint8_t *mask) {
  int64_t total = 0;
  for (int j = 0; j < c->n_global * c->batch; j++) total += crop_mask(c, it, j, gh, gw, mask + (int64_t)j * gh * gw);
  return total;
}

/* ---- state ---- */

gb_status gb_ibot_create(gb_trainer *t) {
  const gb_train_config *c = &t->cfg;
  if (!(c->ibot_weight > 0)) return GB_OK;
  if (!(c->ibot_mask_prob >= 0 && c->ibot_mask_prob <= 1) || !(c->ibot_ratio[0] >= 0) ||
      !(c->ibot_ratio[1] >= c->ibot_ratio[0]) || !(c->ibot_ratio[1] <= 1))
    return gb_fail(GB_ERR_ARG, "--ibot: mask probability %g (expected 0..1) and ratio range %g:%g (expected 0 <= a <= b <= 1)",
                   c->ibot_mask_prob, c->ibot_ratio[0], c->ibot_ratio[1]);
  gb_ibot *ib = calloc(1, sizeof *ib);
  if (!ib) return gb_fail(GB_ERR_NOMEM, "out of memory");
  t->ibot = ib;
  ib->gh = ib->gw = c->global_size / c->vit.patch;
  ib->N = ib->gh * ib->gw;
  ib->npre = 1 + c->vit.n_reg;
  ib->D = c->vit.dim;
  ib->K = c->head.k;
  ib->GB = c->n_global * c->batch;
  ib->n_shards = GB_IBOT_MAX_SHARDS;
  int64_t R = (int64_t)ib->GB * ib->N, D = ib->D, K = ib->K;
  ib->chunk = IBOT_CHUNK;
  ib->mask = gb_calloc((size_t)R, "iBOT masks");
  ib->token = gb_calloc((size_t)D * 4, "iBOT mask token");
  ib->dtoken = gb_calloc((size_t)D * 4, "iBOT mask token");
  ib->adam_m = gb_calloc((size_t)D * 4, "iBOT mask token");
  ib->adam_v = gb_calloc((size_t)D * 4, "iBOT mask token");
  ib->decay = gb_alloc((size_t)D, "iBOT mask token");
  ib->center = gb_calloc((size_t)K * 4, "iBOT patch center");
  ib->shard_m = calloc((size_t)ib->n_shards, sizeof *ib->shard_m);
  ib->shard_c0 = calloc((size_t)ib->n_shards, sizeof(int));
  ib->shard_nc = calloc((size_t)ib->n_shards, sizeof(int));
  ib->shard_dx = calloc((size_t)ib->n_shards, sizeof(float *));
  ib->shard_dtok = calloc((size_t)ib->n_shards, sizeof(float *));
  ib->row_crop = malloc((size_t)R * sizeof(int));
  ib->row_patch = malloc((size_t)R * sizeof(int));
  ib->tfeat = gb_alloc((size_t)(R * D) * 4, "iBOT teacher tokens");
  ib->sfeat = gb_alloc((size_t)(R * D) * 4, "iBOT student tokens");
  ib->dsfeat = gb_alloc((size_t)(R * D) * 4, "iBOT student tokens");
  ib->smean = gb_alloc((size_t)R * 4, "iBOT norm statistics");
  ib->srstd = gb_alloc((size_t)R * 4, "iBOT norm statistics");
  ib->dnorm_w = gb_calloc((size_t)D * 4, "iBOT norm gradients");
  ib->dnorm_b = gb_calloc((size_t)D * 4, "iBOT norm gradients");
  ib->cin = gb_alloc((size_t)ib->chunk * D * 4, "iBOT head input");
  ib->tl = gb_alloc((size_t)ib->chunk * K * 4, "iBOT logits");
  ib->sl = gb_alloc((size_t)ib->chunk * K * 4, "iBOT logits");
  ib->dl = gb_alloc((size_t)ib->chunk * K * 4, "iBOT logits");
  ib->tsum = calloc((size_t)K, sizeof(double));
  if (!ib->mask || !ib->token || !ib->dtoken || !ib->adam_m || !ib->adam_v || !ib->decay || !ib->center ||
      !ib->shard_m || !ib->shard_c0 || !ib->shard_nc || !ib->shard_dx || !ib->shard_dtok || !ib->row_crop ||
      !ib->row_patch || !ib->tfeat || !ib->sfeat || !ib->dsfeat || !ib->smean || !ib->srstd || !ib->dnorm_w ||
      !ib->dnorm_b || !ib->cin || !ib->tl || !ib->sl || !ib->dl || !ib->tsum)
    return gb_fail(GB_ERR_NOMEM, "out of memory (iBOT state)");
  memset(ib->decay, 1, (size_t)D); /* decayed like the CLS token (DINOv2's parameter groups) */
  for (int sh = 0; sh < ib->n_shards; sh++) {
    ib->shard_dtok[sh] = gb_calloc((size_t)D * 4, "iBOT mask token");
    if (!ib->shard_dtok[sh]) return GB_ERR_NOMEM;
  }
  if (c->ibot_separate_head) { /* own head: seeded like the DINO head, teacher = copy */
    ib->separate = 1;
    ib->ihn = gb_dhead_param_count(&c->head);
    size_t bytes = (size_t)ib->ihn * sizeof(float);
    ib->ishead_mem = gb_alloc(bytes, "iBOT head");
    ib->ithead_mem = gb_alloc(bytes, "iBOT head");
    ib->ig = gb_calloc(bytes, "iBOT head gradients");
    ib->im = gb_calloc(bytes, "iBOT head moments");
    ib->iv = gb_calloc(bytes, "iBOT head moments");
    ib->idecay = gb_calloc((size_t)ib->ihn, "iBOT head decay mask");
    if (!ib->ishead_mem || !ib->ithead_mem || !ib->ig || !ib->im || !ib->iv || !ib->idecay)
      return gb_fail(GB_ERR_NOMEM, "out of memory (iBOT head)");
    gb_dhead_init(&c->head, ib->ishead_mem, c->seed ^ SALT_IBOT_HEAD);
    memcpy(ib->ithead_mem, ib->ishead_mem, bytes);
    gb_dhead_layout(&c->head, ib->ishead_mem, &ib->ishead);
    gb_dhead_layout(&c->head, ib->ithead_mem, &ib->ithead);
    gb_dhead_layout(&c->head, ib->ig, &ib->idhead);
    const gb_dhead_config *h = &c->head; /* weight decay on the weight matrices, not on biases */
    memset(ib->idecay + (ib->ishead.w0 - ib->ishead_mem), 1, (size_t)h->hidden * h->in);
    memset(ib->idecay + (ib->ishead.w1 - ib->ishead_mem), 1, (size_t)h->hidden * h->hidden);
    memset(ib->idecay + (ib->ishead.w2 - ib->ishead_mem), 1, (size_t)h->bottleneck * h->hidden);
    memset(ib->idecay + (ib->ishead.last - ib->ishead_mem), 1, (size_t)h->k * h->bottleneck);
    ib->isfw = ib->ishead;
    ib->itfw = ib->ithead;
    if (c->norm_last_layer) { /* weight-normed last layer, as the DINO head's */
      GB_TRY(gb_dhead_wn_init(&ib->iswn, h));
      GB_TRY(gb_dhead_wn_init(&ib->itwn, h));
      ib->isfw.last = ib->iswn.w;
      ib->itfw.last = ib->itwn.w;
    }
  }
  return gb_dhead_acts_init(&ib->acts, &c->head, ib->chunk);
}

void gb_ibot_free(gb_trainer *t) {
  gb_ibot *ib = t->ibot;
  if (!ib) return;
  for (int sh = 0; sh < ib->n_shards; sh++) {
    if (ib->shard_dx) gb_free(ib->shard_dx[sh]);
    if (ib->shard_dtok) gb_free(ib->shard_dtok[sh]);
  }
  float *f[] = {ib->token, ib->dtoken, ib->adam_m, ib->adam_v, ib->center, ib->tfeat, ib->sfeat, ib->dsfeat,
                ib->smean, ib->srstd, ib->dnorm_w, ib->dnorm_b, ib->cin, ib->tl, ib->sl, ib->dl};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) gb_free(f[i]);
  gb_free(ib->mask);
  gb_free(ib->decay);
  float *h[] = {ib->ishead_mem, ib->ithead_mem, ib->ig, ib->im, ib->iv};
  for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) gb_free(h[i]);
  gb_free(ib->idecay);
  gb_free(ib->tall);
  gb_dhead_wn_free(&ib->iswn);
  gb_dhead_wn_free(&ib->itwn);
  free(ib->shard_m);
  free(ib->shard_c0);
  free(ib->shard_nc);
  free(ib->shard_dx);
  free(ib->shard_dtok);
  free(ib->row_crop);
  free(ib->row_patch);
  free(ib->tsum);
  gb_dhead_acts_free(&ib->acts);
  free(ib);
  t->ibot = NULL;
}

/* ---- one step ---- */

void gb_ibot_shard_hook(gb_trainer *t, int sh, gb_vit *tv, gb_vit *m, int c0, int nc) {
  gb_ibot *ib = t->ibot;
  const gb_train_config *c = &t->cfg;
  int N = ib->N, D = ib->D, T = tv->T;
  if (sh < 0 || sh >= ib->n_shards) { /* cannot happen (the trainer's shards are few); the loss turns NaN */
    ib->bad = 1;
    return;
  }
  const float *xl = gb_vit_tap(tv, c->vit.depth, 0);
  for (int j = c0; j < c0 + nc; j++) {
    uint8_t *mk = ib->mask + (int64_t)j * N;
    crop_mask(c, t->it, j, ib->gh, ib->gw, mk);
    for (int n = 0; n < N; n++)
      if (mk[n]) {
        float mu, rs;
        layernorm_forward(ib->tfeat + ((int64_t)j * N + n) * D, &mu, &rs,
                          xl + ((int64_t)(j - c0) * T + ib->npre + n) * D, tv->p.norm_w, tv->p.norm_b, 1, D, c->vit.eps);
      }
  }
  if (!ib->shard_dx[sh] || ib->shard_nc[sh] < nc) {
    gb_free(ib->shard_dx[sh]);
    ib->shard_dx[sh] = gb_alloc((size_t)nc * T * D * sizeof(float), "iBOT token gradients");
    if (!ib->shard_dx[sh]) { /* out of memory: the loss turns NaN and the trainer stops */
      ib->bad = 1;
      return;
    }
  }
  ib->shard_m[sh] = m;
  ib->shard_c0[sh] = c0;
  ib->shard_nc[sh] = nc;
  memset(ib->shard_dtok[sh], 0, (size_t)D * sizeof(float));
  m->patch_mask = ib->mask + (int64_t)c0 * N;
  m->mask_token = ib->token;
  m->dmask_token = ib->shard_dtok[sh];
  m->dx_last = NULL; /* set by gb_ibot_loss */
}

/* The shard holding global crop j. */
static int shard_of(const gb_ibot *ib, int j) {
  for (int sh = 0; sh < ib->n_shards; sh++)
    if (ib->shard_m[sh] && j >= ib->shard_c0[sh] && j < ib->shard_c0[sh] + ib->shard_nc[sh]) return sh;
  return -1;
}

/* The teacher's final patch tokens of masked rows r0 .. r0 + nr - 1 into ib->cin. */
static void teacher_rows(gb_ibot *ib, int r0, int nr) {
  int N = ib->N, D = ib->D;
  for (int r = 0; r < nr; r++)
    memcpy(ib->cin + (int64_t)r * D, ib->tfeat + ((int64_t)ib->row_crop[r0 + r] * N + ib->row_patch[r0 + r]) * D,
           (size_t)D * sizeof(float));
}

double gb_ibot_loss(gb_trainer *t, const gb_train_sched *s) {
  gb_ibot *ib = t->ibot;
  const gb_train_config *c = &t->cfg;
  int N = ib->N, D = ib->D, K = ib->K, GB = ib->GB;
  double tt = s->teacher_temp, ts = c->student_temp;
  if (ib->bad) return NAN; /* the trainer stops on a non-finite loss */
  /* the head: the shared DINO head (gradients into the trainer's head group) or the separate one */
  const gb_dhead_params *shp = ib->separate ? &ib->isfw : &t->sfw, *thp = ib->separate ? &ib->itfw : &t->tfw;
  gb_dhead_params *dhp = ib->separate ? &ib->idhead : &t->dhead;
  if (ib->separate) memset(ib->ig, 0, (size_t)ib->ihn * sizeof(float));
  if (ib->separate && c->norm_last_layer) {
    gb_dhead_wn_forward(&c->head, ib->ishead.last, &ib->iswn);
    gb_dhead_wn_forward(&c->head, ib->ithead.last, &ib->itwn);
  }
  /* masked rows in (crop, patch) order; the student's final-normed tokens there */
  int nm = 0;
  for (int j = 0; j < GB; j++) {
    int sh = shard_of(ib, j);
    if (sh < 0) continue; /* not reached: every crop is in a shard */
    gb_vit *m = ib->shard_m[sh];
    const float *xl = gb_vit_tap(m, c->vit.depth, 0);
    for (int n = 0; n < N; n++)
      if (ib->mask[(int64_t)j * N + n]) {
        ib->row_crop[nm] = j;
        ib->row_patch[nm] = n;
        layernorm_forward(ib->sfeat + (int64_t)nm * D, ib->smean + nm, ib->srstd + nm,
                          xl + ((int64_t)(j - ib->shard_c0[sh]) * m->T + ib->npre + n) * D, m->p.norm_w, m->p.norm_b,
                          1, D, c->vit.eps);
        nm++;
      }
  }
  ib->n_masked = nm;
  int *cnt = calloc(GB > 0 ? (size_t)GB : 1, sizeof(int));
  if (!cnt) return NAN; /* the trainer stops on a non-finite loss */
  for (int r = 0; r < nm; r++) cnt[ib->row_crop[r]]++;
  memset(ib->tsum, 0, (size_t)K * sizeof(double));
  if (c->sinkhorn && nm > 0) { /* Sinkhorn-Knopp couples every masked patch: all teacher logits first */
    if (nm > ib->tall_rows) {
      gb_free(ib->tall);
      ib->tall = gb_alloc((size_t)nm * K * sizeof(float), "iBOT Sinkhorn-Knopp targets");
      ib->tall_rows = ib->tall ? nm : 0;
      if (!ib->tall) {
        free(cnt);
        return NAN; /* the trainer stops on a non-finite loss */
      }
    }
    for (int r0 = 0; r0 < nm; r0 += ib->chunk) {
      int nr = nm - r0 < ib->chunk ? nm - r0 : ib->chunk;
      teacher_rows(ib, r0, nr);
      gb_dhead_forward(&c->head, thp, &ib->acts, ib->cin, nr, ib->tall + (int64_t)r0 * K);
    }
    gb_dino_teacher_sinkhorn(ib->tall, ib->tall, nm, K, (float)tt, 3); /* DINOv2/v3: over the masked patches */
  }
  double loss = 0;
  for (int r0 = 0; r0 < nm; r0 += ib->chunk) {
    int nr = nm - r0 < ib->chunk ? nm - r0 : ib->chunk;
    const float *targets = c->sinkhorn ? ib->tall + (int64_t)r0 * K : ib->tl;
    if (!c->sinkhorn) {
      teacher_rows(ib, r0, nr);
      gb_dhead_forward(&c->head, thp, &ib->acts, ib->cin, nr, ib->tl);
      for (int r = 0; r < nr; r++) /* for the center update (row order: deterministic) */
        for (int k = 0; k < K; k++) ib->tsum[k] += ib->tl[(int64_t)r * K + k];
      gb_dino_teacher_softmax(ib->tl, ib->tl, ib->center, nr, K, (float)tt); /* in place: logits -> targets */
    }
    gb_dhead_forward(&c->head, shp, &ib->acts, ib->sfeat + (int64_t)r0 * D, nr, ib->sl);
    for (int r = 0; r < nr; r++) {
      const float *p = targets + (int64_t)r * K, *sv = ib->sl + (int64_t)r * K;
      float *d = ib->dl + (int64_t)r * K;
      double smax = -INFINITY, ssum = 0, ce = 0;
      for (int k = 0; k < K; k++) smax = fmax(smax, sv[k] / ts);
      for (int k = 0; k < K; k++) ssum += exp(sv[k] / ts - smax);
      double lse = smax + log(ssum), w = 1.0 / ((double)GB * cnt[ib->row_crop[r0 + r]]);
      for (int k = 0; k < K; k++) {
        double ls = sv[k] / ts - lse;
        ce -= p[k] * ls;
        d[k] = (float)(c->ibot_weight * w * (exp(ls) - p[k]) / ts);
      }
      loss += w * ce;
    }
    gb_dhead_backward(&c->head, shp, &ib->acts, ib->sfeat + (int64_t)r0 * D, ib->dl, nr,
                      ib->dsfeat + (int64_t)r0 * D, dhp);
  }
  free(cnt);
  /* back through the final norm into each shard's last-block gradient */
  memset(ib->dnorm_w, 0, (size_t)D * sizeof(float));
  memset(ib->dnorm_b, 0, (size_t)D * sizeof(float));
  for (int sh = 0; sh < ib->n_shards; sh++)
    if (ib->shard_m[sh]) {
      memset(ib->shard_dx[sh], 0, (size_t)ib->shard_nc[sh] * ib->shard_m[sh]->T * D * sizeof(float));
      ib->shard_m[sh]->dx_last = ib->shard_dx[sh];
    }
  for (int r = 0; r < nm; r++) {
    int j = ib->row_crop[r], sh = shard_of(ib, j);
    gb_vit *m = ib->shard_m[sh];
    int64_t row = (int64_t)(j - ib->shard_c0[sh]) * m->T + ib->npre + ib->row_patch[r];
    const float *xl = gb_vit_tap(m, c->vit.depth, 0);
    layernorm_backward(ib->shard_dx[sh] + row * D, ib->dnorm_w, ib->dnorm_b, ib->dsfeat + (int64_t)r * D,
                       xl + row * D, m->p.norm_w, ib->smean + r, ib->srstd + r, 1, D);
  }
  if (ib->separate && c->norm_last_layer) gb_dhead_wn_backward(&c->head, &ib->iswn, ib->idhead.last); /* dW -> dV */
  ib->loss = loss;
  return loss;
}

double gb_ibot_clip_backbone(gb_trainer *t, double max_norm) {
  gb_ibot *ib = t->ibot;
  int D = ib->D;
  for (int j = 0; j < D; j++) {
    t->dback.norm_w[j] += ib->dnorm_w[j];
    t->dback.norm_b[j] += ib->dnorm_b[j];
  }
  memset(ib->dtoken, 0, (size_t)D * sizeof(float));
  for (int sh = 0; sh < ib->n_shards; sh++) /* shard order: deterministic */
    for (int j = 0; j < D; j++) ib->dtoken[j] += ib->shard_dtok[sh][j];
  double ss = 0;
  const float *g = t->back.g;
#pragma omp parallel for schedule(static) reduction(+ : ss)
  for (int64_t i = 0; i < t->back.n; i++) ss += (double)g[i] * g[i];
  for (int j = 0; j < D; j++) ss += (double)ib->dtoken[j] * ib->dtoken[j];
  double norm = sqrt(ss), coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    float cf = (float)coef, *gw = t->back.g;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < t->back.n; i++) gw[i] *= cf;
    for (int j = 0; j < D; j++) ib->dtoken[j] *= cf;
  }
  if (ib->separate) gb_clip_grad_norm(ib->ig, ib->ihn, max_norm); /* a module of its own */
  return norm;
}

void gb_ibot_update(gb_trainer *t, const gb_train_sched *s) {
  gb_ibot *ib = t->ibot;
  const gb_train_config *c = &t->cfg;
  gb_adamw_step(ib->token, ib->dtoken, ib->adam_m, ib->adam_v, ib->decay, ib->D, s->lr, s->wd, c->beta1, c->beta2,
                c->adam_eps, t->adam_t);
  if (ib->separate) { /* AdamW, then the teacher head's EMA (as the trainer's head) */
    gb_adamw_step(ib->ishead_mem, ib->ig, ib->im, ib->iv, ib->idecay, ib->ihn, s->lr, s->wd, c->beta1, c->beta2,
                  c->adam_eps, t->adam_t);
    float a = (float)s->momentum, b = (float)(1.0 - s->momentum);
    for (int64_t i = 0; i < ib->ihn; i++) ib->ithead_mem[i] = ib->ithead_mem[i] * a + b * ib->ishead_mem[i];
  }
  if (ib->n_masked > 0 && !c->sinkhorn) { /* (Sinkhorn-Knopp centering keeps no center) */
    double cm = c->center_momentum;
    for (int k = 0; k < ib->K; k++)
      ib->center[k] = (float)(ib->center[k] * cm + ib->tsum[k] / ib->n_masked * (1.0 - cm));
  }
  for (int sh = 0; sh < ib->n_shards; sh++)
    if (ib->shard_m[sh]) {
      gb_vit *m = ib->shard_m[sh];
      m->patch_mask = NULL;
      m->mask_token = NULL;
      m->dmask_token = NULL;
      m->dx_last = NULL;
      ib->shard_m[sh] = NULL;
    }
}
