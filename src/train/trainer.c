/* The DINO trainer: student/teacher ViTs and heads, one training step (forward, loss,
 * backward with weight gradients, clipping, AdamW, EMA, center update). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include <cjson/cJSON.h>

#include "gradbrain/arena.h"
#include "gradbrain/ibot.h"
#include "gradbrain/log.h"
#include "gradbrain/textfile.h"
#include "gradbrain/train.h"

/* Backbone hyperparameters from an HF-style config.json (hidden_size, num_hidden_layers,
 * num_attention_heads, patch_size, num_register_tokens, intermediate_size, image_size). */
static gb_status arch_from_json(gb_train_config *c, const char *path) {
  char *txt = NULL;
  GB_TRY(gb_read_text_file(path, &txt));
  cJSON *o = cJSON_Parse(txt);
  free(txt);
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return gb_fail(GB_ERR_FORMAT, "%s: not a JSON object", path);
  }
  const char *keys[] = {"hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size"};
  int v[4];
  for (int i = 0; i < 4; i++) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
    if (!cJSON_IsNumber(j) || j->valuedouble < 1) {
      cJSON_Delete(o);
      return gb_fail(GB_ERR_FORMAT, "%s: field '%s': expected a positive integer", path, keys[i]);
    }
    v[i] = (int)j->valuedouble;
  }
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "num_register_tokens");
  const cJSON *mlp = cJSON_GetObjectItemCaseSensitive(o, "intermediate_size");
  const cJSON *img = cJSON_GetObjectItemCaseSensitive(o, "image_size");
  gb_vit_config_default(&c->vit, GB_VIT_DINOV3, v[0], v[1], v[2], v[3], cJSON_IsNumber(r) ? (int)r->valuedouble : 4);
  if (cJSON_IsNumber(mlp)) c->vit.mlp_hidden = (int)mlp->valuedouble;
  c->global_size = cJSON_IsNumber(img) ? (int)img->valuedouble : 8 * v[3];
  c->local_size = c->global_size / 2 / v[3] * v[3];
  if (c->local_size < v[3]) c->local_size = v[3];
  cJSON_Delete(o);
  if (v[0] % v[2] || (v[0] / v[2]) % 4)
    return gb_fail(GB_ERR_ARG, "%s: hidden_size %d / num_attention_heads %d must be a head dim divisible by 4 (RoPE)",
                   path, v[0], v[2]);
  c->head = (gb_dhead_config){v[0], 4 * v[0], v[0] / 2 > 8 ? v[0] / 2 : 8, 256};
  c->batch = 16;
  c->n_local = 2;
  snprintf(c->vit.config_source, sizeof c->vit.config_source, "%.500s", path);
  return GB_OK;
}

gb_status gb_train_config_default(gb_train_config *c, const char *arch_name) {
  memset(c, 0, sizeof *c);
  size_t al = strlen(arch_name);
  if (al > 5 && !strcmp(arch_name + al - 5, ".json")) {
    GB_TRY(arch_from_json(c, arch_name));
  } else if (!strcmp(arch_name, "vit-tiny")) {
    /* small enough to train in about a minute on 2 cores at 64 px */
    gb_vit_config_default(&c->vit, GB_VIT_DINOV3, 192, 4, 3, 8, 4);
    c->head = (gb_dhead_config){192, 512, 128, 1024};
    c->batch = 32;
    c->n_local = 4;
    c->global_size = 64;
    c->local_size = 32;
  } else if (!strcmp(arch_name, "vit-small")) {
    gb_vit_config_default(&c->vit, GB_VIT_DINOV3, 384, 12, 6, 16, 4);
    c->head = (gb_dhead_config){384, 2048, 256, 65536};
    c->batch = 64;
    c->n_local = 8;
    c->global_size = 224;
    c->local_size = 96;
  } else {
    return gb_fail(GB_ERR_ARG, "--arch '%s': expected vit-tiny, vit-small or a config.json", arch_name);
  }
  c->vit.native_size = c->global_size;
  c->n_global = 2;
  c->global_scale[0] = 0.32;
  c->global_scale[1] = 1.0;
  c->local_scale[0] = 0.05;
  c->local_scale[1] = 0.32;
  c->iters = 1000;
  c->save_every = 100;
  c->lr = 5e-4;
  c->min_lr = 1e-6;
  c->warmup_iters = -1; /* -1: 10% of iters */
  c->wd0 = 0.04;
  c->wd1 = 0.4;
  c->mom0 = 0.992;
  c->mom1 = 1.0;
  c->teacher_temp0 = 0.04;
  c->teacher_temp1 = 0.07;
  c->student_temp = 0.1;
  c->teacher_temp_warmup = -1; /* -1: 30% of iters */
  c->center_momentum = 0.9;
  c->clip = 3.0;
  c->beta1 = 0.9;
  c->beta2 = 0.999;
  c->adam_eps = 1e-8;
  if (!strcmp(arch_name, "vit-tiny")) {
    /* tuned for minutes of training on procedural images (bench/bench_train_learning.sh): a
     * constant sharp teacher temperature (the warm-up to 0.07 collapses to uniform targets) and
     * KoLeo 0.3 on the CLS features. No photometric augmentation: with it, on these 64-px crops,
     * the head's targets lose their sharpness after ~100 iterations (loss back up to ln K) */
    c->teacher_temp1 = 0.04;
    c->koleo_weight = 0.3;
  }
  c->ibot_mask_prob = 0.5; /* iBOT (off unless ibot_weight > 0): DINOv2's mask sampling */
  c->ibot_ratio[0] = 0.1;
  c->ibot_ratio[1] = 0.5;
  return GB_OK;
}

static int64_t warmup_of(const gb_train_config *c) { return c->warmup_iters >= 0 ? c->warmup_iters : c->iters / 10; }
static int64_t ttwarm_of(const gb_train_config *c) {
  return c->teacher_temp_warmup >= 0 ? c->teacher_temp_warmup : (c->iters * 3) / 10;
}

void gb_train_schedule(const gb_train_config *c, int64_t it, gb_train_sched *s) {
  s->lr = gb_cosine_schedule(it, c->iters, warmup_of(c), c->lr, c->min_lr);
  s->wd = gb_cosine_schedule(it, c->iters, 0, c->wd0, c->wd1);
  s->momentum = gb_cosine_schedule(it, c->iters, 0, c->mom0, c->mom1);
  int64_t tw = ttwarm_of(c);
  /* DINO: linspace(t0, t1, tw) over the warm-up, then t1 */
  s->teacher_temp = it >= tw ? c->teacher_temp1
                    : tw > 1 ? c->teacher_temp0 + (c->teacher_temp1 - c->teacher_temp0) * (double)it / (double)(tw - 1)
                             : c->teacher_temp0;
}

/* A model sharing `src`'s parameters with its own activation buffers (a second crop size). */
static gb_status make_twin(const gb_vit *src, gb_vit **out) {
  gb_vit *m = calloc(1, sizeof *m);
  if (!m) return gb_fail(GB_ERR_NOMEM, "out of memory");
  m->cfg = src->cfg;
  m->p = src->p;
  m->n_params = src->n_params;
  *out = m;
  return GB_OK;
}

/* Crop range [*c0, *c0 + *nc) of shard sh when n crops are split into ns contiguous shards. */
static void shard_range(int n, int sh, int ns, int *c0, int *nc) {
  *c0 = (int)((int64_t)sh * n / ns);
  *nc = (int)((int64_t)(sh + 1) * n / ns) - *c0;
}

static void mark(uint8_t *mask, const float *base, const float *field, int64_t n) {
  if (field) memset(mask + (field - base), 1, (size_t)n);
}

/* Weight decay on weight matrices, patch embedding and CLS/register tokens; not on biases,
 * norms or LayerScale (as DINO's parameter groups). */
static void backbone_decay_mask(const gb_vit *m, uint8_t *mask) {
  const gb_vit_config *c = &m->cfg;
  const gb_vit_params *p = &m->p;
  int64_t D = c->dim, L = c->depth, F = c->mlp_hidden, P = c->patch;
  const float *b = m->param_mem;
  memset(mask, 0, (size_t)m->n_params);
  mark(mask, b, p->patch_w, D * 3 * P * P);
  mark(mask, b, p->cls, D);
  mark(mask, b, p->reg, (int64_t)c->n_reg * D);
  mark(mask, b, p->pos, p->pos ? (1 + (int64_t)c->pos_grid * c->pos_grid) * D : 0);
  mark(mask, b, p->qkv_w, L * 3 * D * D);
  mark(mask, b, p->proj_w, L * D * D);
  mark(mask, b, p->fc1_w, L * F * D);
  mark(mask, b, p->fc2_w, L * D * F);
}

/* The k-projection bias of every block (kept at zero). */
static void zero_k_bias(const gb_vit_config *c, float *qkv_b) {
  int64_t D = c->dim;
  for (int l = 0; l < c->depth; l++) memset(qkv_b + (int64_t)l * 3 * D + D, 0, (size_t)D * sizeof(float));
}

static gb_status group_init(gb_param_group *g, float *p, int64_t n) {
  g->n = n;
  g->p = p;
  g->g = gb_calloc((size_t)n * sizeof(float), "gradients");
  g->m = gb_calloc((size_t)n * sizeof(float), "AdamW moments");
  g->v = gb_calloc((size_t)n * sizeof(float), "AdamW moments");
  g->decay = gb_calloc((size_t)n, "weight-decay mask");
  return g->g && g->m && g->v && g->decay ? GB_OK : GB_ERR_NOMEM;
}

static void group_free(gb_param_group *g) {
  gb_free(g->g);
  gb_free(g->m);
  gb_free(g->v);
  gb_free(g->decay);
}

gb_status gb_trainer_create(gb_trainer *t, const gb_train_config *c, const gb_vit *init,
                            const gb_vit_heads *init_head) {
  memset(t, 0, sizeof *t);
  t->cfg = *c;
  gb_train_config *cf = &t->cfg;
  cf->head.in = cf->vit.dim;
  if (cf->vit.arch != GB_VIT_DINOV3 || !cf->vit.rope || cf->vit.pos_grid)
    return gb_fail(GB_ERR_UNSUPPORTED, "train: only the DINOv3 ViT (RoPE, no learned position embedding) is trainable; found %s",
                   gb_vit_arch_name(cf->vit.arch));
  if (cf->batch < 2 || cf->n_global < 1 || cf->n_local < 0 || cf->global_size % cf->vit.patch ||
      (cf->n_local && cf->local_size % cf->vit.patch))
    return gb_fail(GB_ERR_ARG, "train: batch %d (>= 2), %d global crops (>= 1), %d local, crop sizes %d/%d (multiples of patch %d)",
                   cf->batch, cf->n_global, cf->n_local, cf->global_size, cf->local_size, cf->vit.patch);
  int B = cf->batch, G = cf->n_global, L = cf->n_local, D = cf->vit.dim, K = cf->head.k;
  gb_status s = gb_vit_create_random(&cf->vit, cf->seed, &t->student);
  if (s == GB_OK && init) {
    if (init->n_params != t->student->n_params || init->cfg.dim != D || init->cfg.depth != cf->vit.depth)
      s = gb_fail(GB_ERR_SHAPE, "train: initial model has %lld parameters, the config %lld", (long long)init->n_params,
                  (long long)t->student->n_params);
    else memcpy(t->student->param_mem, init->param_mem, (size_t)init->n_params * sizeof(float));
  }
  if (s != GB_OK) return s;
  zero_k_bias(&cf->vit, t->student->p.qkv_b);
  GB_TRY(gb_vit_create_random(&cf->vit, 0, &t->teacher));
  memcpy(t->teacher->param_mem, t->student->param_mem, (size_t)t->student->n_params * sizeof(float));
  /* activations live in the shards (the teacher runs over the student shards' buffers); the
   * models themselves get buffers only when someone else needs them (gb_vit_prepare) */
  int NS = GB_TRAIN_SHARDS;
  t->n_shards = NS;
  t->sh_global = calloc((size_t)NS, sizeof *t->sh_global);
  t->sh_local = calloc((size_t)NS, sizeof *t->sh_local);
  t->sh_grad = calloc((size_t)NS, sizeof *t->sh_grad);
  if (!t->sh_global || !t->sh_local || !t->sh_grad) return gb_fail(GB_ERR_NOMEM, "out of memory");
  for (int sh = 0; sh < NS; sh++) {
    int c0, ng, nl;
    shard_range(G * B, sh, NS, &c0, &ng);
    shard_range(L * B, sh, NS, &c0, &nl);
    if (ng) {
      GB_TRY(make_twin(t->student, &t->sh_global[sh]));
      GB_TRY(gb_vit_prepare(t->sh_global[sh], ng, cf->global_size, 1));
    }
    if (nl) {
      GB_TRY(make_twin(t->student, &t->sh_local[sh]));
      GB_TRY(gb_vit_prepare(t->sh_local[sh], nl, cf->local_size, 1));
    }
    t->sh_grad[sh] = gb_alloc((size_t)t->student->n_params * sizeof(float), "shard gradients");
    if (!t->sh_grad[sh]) return GB_ERR_NOMEM;
  }

  int64_t nh = gb_dhead_param_count(&cf->head);
  t->shead_mem = gb_alloc((size_t)nh * sizeof(float), "DINO head");
  t->thead_mem = gb_alloc((size_t)nh * sizeof(float), "DINO head");
  if (!t->shead_mem || !t->thead_mem) return GB_ERR_NOMEM;
  gb_dhead_layout(&cf->head, t->shead_mem, &t->shead);
  gb_dhead_layout(&cf->head, t->thead_mem, &t->thead);
  if (init_head && init_head->dino_present) {
    if (init_head->dino_in != D || init_head->dino_hidden != cf->head.hidden ||
        init_head->dino_bottleneck != cf->head.bottleneck || init_head->dino_k != K)
      return gb_fail(GB_ERR_SHAPE, "train: initial DINO head (%d, %d, %d, %d) differs from the config (%d, %d, %d, %d)",
                     init_head->dino_in, init_head->dino_hidden, init_head->dino_bottleneck, init_head->dino_k, D,
                     cf->head.hidden, cf->head.bottleneck, K);
    const gb_dhead_config *h = &cf->head;
    memcpy(t->shead.w0, init_head->dino_w[0], (size_t)h->hidden * h->in * 4);
    memcpy(t->shead.b0, init_head->dino_b[0], (size_t)h->hidden * 4);
    memcpy(t->shead.w1, init_head->dino_w[1], (size_t)h->hidden * h->hidden * 4);
    memcpy(t->shead.b1, init_head->dino_b[1], (size_t)h->hidden * 4);
    memcpy(t->shead.w2, init_head->dino_w[2], (size_t)h->bottleneck * h->hidden * 4);
    memcpy(t->shead.b2, init_head->dino_b[2], (size_t)h->bottleneck * 4);
    memcpy(t->shead.last, init_head->dino_last, (size_t)h->k * h->bottleneck * 4);
  } else {
    gb_dhead_init(&cf->head, t->shead_mem, cf->seed ^ 0x68656164ULL);
  }
  memcpy(t->thead_mem, t->shead_mem, (size_t)nh * sizeof(float));

  GB_TRY(group_init(&t->back, t->student->param_mem, t->student->n_params));
  GB_TRY(group_init(&t->head, t->shead_mem, nh));
  gb_vit_params_layout(&cf->vit, t->back.g, &t->dback);
  gb_dhead_layout(&cf->head, t->head.g, &t->dhead);
  backbone_decay_mask(t->student, t->back.decay);
  {
    const gb_dhead_config *h = &cf->head;
    mark(t->head.decay, t->shead_mem, t->shead.w0, (int64_t)h->hidden * h->in);
    mark(t->head.decay, t->shead_mem, t->shead.w1, (int64_t)h->hidden * h->hidden);
    mark(t->head.decay, t->shead_mem, t->shead.w2, (int64_t)h->bottleneck * h->hidden);
    mark(t->head.decay, t->shead_mem, t->shead.last, (int64_t)h->k * h->bottleneck); /* V if weight-normed */
  }
  t->sfw = t->shead;
  t->tfw = t->thead;
  if (cf->norm_last_layer) { /* the head passes use W = V / ||V||, recomputed every step */
    GB_TRY(gb_dhead_wn_init(&t->swn, &cf->head));
    GB_TRY(gb_dhead_wn_init(&t->twn, &cf->head));
    t->sfw.last = t->swn.w;
    t->tfw.last = t->twn.w;
  }
  int S = (G + L) * B;
  GB_TRY(gb_dhead_acts_init(&t->sacts, &cf->head, S));
  GB_TRY(gb_dhead_acts_init(&t->tacts, &cf->head, G * B));
  t->center = gb_calloc((size_t)K * sizeof(float), "DINO center");
  t->feat = gb_alloc((size_t)S * D * sizeof(float), "features");
  t->dfeat = gb_alloc((size_t)S * D * sizeof(float), "feature gradients");
  t->slog = gb_alloc((size_t)S * K * sizeof(float), "student logits");
  t->dslog = gb_alloc((size_t)S * K * sizeof(float), "student logit gradients");
  t->tlog = gb_alloc((size_t)G * B * K * sizeof(float), "teacher logits");
  t->tfeat = gb_alloc((size_t)G * B * D * sizeof(float), "teacher features");
  if (!t->tfeat) return GB_ERR_NOMEM;
  t->P = gb_alloc((size_t)G * B * K * sizeof(float), "teacher targets");
  if (!t->center || !t->feat || !t->dfeat || !t->slog || !t->dslog || !t->tlog || !t->P) return GB_ERR_NOMEM;
  return gb_ibot_create(t); /* iBOT state when ibot_weight > 0 (ibot.h) */
}

void gb_trainer_free(gb_trainer *t) {
  gb_ibot_free(t);
  for (int sh = 0; sh < t->n_shards; sh++) {
    if (t->sh_global) gb_vit_free(t->sh_global[sh]);
    if (t->sh_local) gb_vit_free(t->sh_local[sh]);
    if (t->sh_grad) gb_free(t->sh_grad[sh]);
  }
  free(t->sh_global);
  free(t->sh_local);
  free(t->sh_grad);
  gb_free(t->tfeat);
  gb_vit_free(t->student_local);
  gb_vit_free(t->student);
  gb_vit_free(t->teacher);
  gb_free(t->shead_mem);
  gb_free(t->thead_mem);
  group_free(&t->back);
  group_free(&t->head);
  gb_dhead_acts_free(&t->sacts);
  gb_dhead_acts_free(&t->tacts);
  gb_dhead_wn_free(&t->swn);
  gb_dhead_wn_free(&t->twn);
  float *all[] = {t->center, t->feat, t->dfeat, t->slog, t->dslog, t->tlog, t->P};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) gb_free(all[i]);
  memset(t, 0, sizeof *t);
}

static void ema(float *teacher, const float *student, int64_t n, double m) {
  float a = (float)m, b = (float)(1.0 - m);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) teacher[i] = teacher[i] * a + b * student[i];
}

static int all_finite(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Forward of shard sh: the teacher, then the student, on its global crops (same buffers: the
 * teacher's activations are not needed after its CLS is copied out); the student on its local
 * crops. CLS features go to t->tfeat / t->feat at the shard's rows. */
static gb_status shard_forward(gb_trainer *t, int sh, const float *global, const float *local) {
  const gb_train_config *c = &t->cfg;
  int B = c->batch, G = c->n_global, L = c->n_local, D = c->vit.dim, c0, nc;
  int64_t gsz = 3LL * c->global_size * c->global_size, lsz = 3LL * c->local_size * c->local_size;
  shard_range(G * B, sh, t->n_shards, &c0, &nc);
  if (nc) {
    gb_vit *m = t->sh_global[sh], tv = *m; /* the teacher's parameters over this shard's buffers */
    tv.p = t->teacher->p;
    tv.param_mem = t->teacher->param_mem;
    /* iBOT needs every final patch token: the full passes of vit.c (with its mask hooks) */
    GB_TRY(t->ibot ? gb_vit_forward(&tv, global + c0 * gsz, nc) : gb_vit_train_forward(&tv, global + c0 * gsz, nc));
    memcpy(t->tfeat + (int64_t)c0 * D, tv.a.final, (size_t)nc * D * sizeof(float));
    if (t->ibot) gb_ibot_shard_hook(t, sh, &tv, m, c0, nc); /* iBOT: teacher patch tokens, student masks */
    GB_TRY(t->ibot ? gb_vit_forward(m, global + c0 * gsz, nc) : gb_vit_train_forward(m, global + c0 * gsz, nc));
    memcpy(t->feat + (int64_t)c0 * D, m->a.final, (size_t)nc * D * sizeof(float));
  }
  shard_range(L * B, sh, t->n_shards, &c0, &nc);
  if (nc) {
    GB_TRY(gb_vit_train_forward(t->sh_local[sh], local + c0 * lsz, nc));
    memcpy(t->feat + ((int64_t)G * B + c0) * D, t->sh_local[sh]->a.final, (size_t)nc * D * sizeof(float));
  }
  return GB_OK;
}

/* Backward of shard sh from t->dfeat into its own weight-gradient buffer (overwritten). */
static void shard_backward(gb_trainer *t, int sh) {
  const gb_train_config *c = &t->cfg;
  int B = c->batch, G = c->n_global, L = c->n_local, D = c->vit.dim, c0, nc;
  gb_vit_params dp;
  memset(t->sh_grad[sh], 0, (size_t)t->back.n * sizeof(float));
  gb_vit_params_layout(&c->vit, t->sh_grad[sh], &dp);
  shard_range(G * B, sh, t->n_shards, &c0, &nc);
  if (nc && t->ibot) gb_vit_backward(t->sh_global[sh], t->dfeat + (int64_t)c0 * D, nc, 1, &dp); /* iBOT: full pass */
  else if (nc) gb_vit_train_backward(t->sh_global[sh], t->dfeat + (int64_t)c0 * D, nc, &dp);
  shard_range(L * B, sh, t->n_shards, &c0, &nc);
  if (nc) gb_vit_train_backward(t->sh_local[sh], t->dfeat + ((int64_t)G * B + c0) * D, nc, &dp);
}

/* t->back.g = sum of the shard gradients, added in shard order (deterministic). */
static void sum_shard_grads(gb_trainer *t) {
  int64_t n = t->back.n;
  float *g = t->back.g;
  const float *const *sg = (const float *const *)t->sh_grad;
  int NS = t->n_shards;
#pragma omp parallel for schedule(static)
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    int64_t i1 = i0 + 4096 < n ? i0 + 4096 : n;
    for (int64_t i = i0; i < i1; i++) g[i] = sg[0][i];
    for (int sh = 1; sh < NS; sh++)
      for (int64_t i = i0; i < i1; i++) g[i] += sg[sh][i];
  }
}

gb_status gb_trainer_step(gb_trainer *t, const float *global, const float *local, gb_train_stats *st) {
  const gb_train_config *c = &t->cfg;
  int B = c->batch, G = c->n_global, L = c->n_local, D = c->vit.dim, K = c->head.k, S = (G + L) * B;
  gb_train_stats s;
  memset(&s, 0, sizeof s);
  gb_train_schedule(c, t->it, &s.sched);

  /* backbones, data-parallel over the shards: teacher on the global crops (no gradient),
   * student on all crops */
  gb_status sst[GB_TRAIN_SHARDS];
#pragma omp parallel for schedule(dynamic, 1)
  for (int sh = 0; sh < t->n_shards; sh++) sst[sh] = shard_forward(t, sh, global, local);
  for (int sh = 0; sh < t->n_shards; sh++) GB_TRY(sst[sh]);
  if (c->norm_last_layer) {
    gb_dhead_wn_forward(&c->head, t->thead.last, &t->twn);
    gb_dhead_wn_forward(&c->head, t->shead.last, &t->swn);
  }
  gb_dhead_forward(&c->head, &t->tfw, &t->tacts, t->tfeat, G * B, t->tlog);
  if (c->sinkhorn) gb_dino_teacher_sinkhorn(t->P, t->tlog, G * B, K, (float)s.sched.teacher_temp, 3);
  else gb_dino_teacher_softmax(t->P, t->tlog, t->center, G * B, K, (float)s.sched.teacher_temp);
  gb_dino_target_entropy(t->P, G * B, K, &s.teacher_entropy, &s.teacher_batch_entropy);

  gb_dhead_forward(&c->head, &t->sfw, &t->sacts, t->feat, S, t->slog);
  s.dino = gb_dino_multicrop_loss(t->P, t->slog, t->dslog, G, G + L, B, K, (float)c->student_temp);

  /* backward */
  memset(t->head.g, 0, (size_t)t->head.n * sizeof(float));
  gb_dhead_backward(&c->head, &t->sfw, &t->sacts, t->feat, t->dslog, S, t->dfeat, &t->dhead);
  if (c->koleo_weight > 0)
    for (int g = 0; g < G; g++)
      s.koleo += gb_koleo_loss(t->feat + (int64_t)g * B * D, B, D, (float)c->koleo_weight,
                               t->dfeat + (int64_t)g * B * D);
  s.loss = s.dino + c->koleo_weight * s.koleo;
  if (t->ibot) { /* iBOT masked-patch loss (ibot.h): head gradients now, token gradients via the shard hooks */
    s.ibot = gb_ibot_loss(t, &s.sched);
    s.loss += c->ibot_weight * s.ibot;
  }
  if (c->norm_last_layer) gb_dhead_wn_backward(&c->head, &t->swn, t->dhead.last); /* dW -> dV, all losses in */
  if (!isfinite(s.loss))
    return gb_fail(GB_ERR_NUMERIC, "train: loss is %g at iteration %lld (lr %g); lower --lr", s.loss,
                   (long long)t->it, s.sched.lr);
#pragma omp parallel for schedule(dynamic, 1)
  for (int sh = 0; sh < t->n_shards; sh++) shard_backward(t, sh);
  sum_shard_grads(t);
  zero_k_bias(&c->vit, t->dback.qkv_b);
  s.grad_norm_backbone = t->ibot ? gb_ibot_clip_backbone(t, c->clip) /* backbone + mask token */
                                 : gb_clip_grad_norm(t->back.g, t->back.n, c->clip);
  s.grad_norm_head = gb_clip_grad_norm(t->head.g, t->head.n, c->clip);
  if (!isfinite(s.grad_norm_backbone) || !isfinite(s.grad_norm_head))
    return gb_fail(GB_ERR_NUMERIC, "train: gradient norm is not finite at iteration %lld", (long long)t->it);

  /* AdamW, then the teacher EMA and the center */
  t->adam_t++;
  gb_adamw_step(t->back.p, t->back.g, t->back.m, t->back.v, t->back.decay, t->back.n, s.sched.lr, s.sched.wd,
                c->beta1, c->beta2, c->adam_eps, t->adam_t);
  gb_adamw_step(t->head.p, t->head.g, t->head.m, t->head.v, t->head.decay, t->head.n, s.sched.lr, s.sched.wd,
                c->beta1, c->beta2, c->adam_eps, t->adam_t);
  ema(t->teacher->param_mem, t->student->param_mem, t->student->n_params, s.sched.momentum);
  ema(t->thead_mem, t->shead_mem, t->head.n, s.sched.momentum);
  if (!c->sinkhorn) {
    double cm = c->center_momentum;
    for (int j = 0; j < K; j++) {
      double mean = 0;
      for (int i = 0; i < G * B; i++) mean += t->tlog[(int64_t)i * K + j];
      mean /= (double)(G * B);
      t->center[j] = (float)(t->center[j] * cm + mean * (1.0 - cm));
    }
  }
  if (t->ibot) gb_ibot_update(t, &s.sched); /* mask token AdamW, patch center, hooks off */
  if (!all_finite(t->student->param_mem, t->student->n_params))
    return gb_fail(GB_ERR_NUMERIC, "train: parameters became non-finite at iteration %lld", (long long)t->it);
  t->it++;
  if (st) *st = s;
  return GB_OK;
}
