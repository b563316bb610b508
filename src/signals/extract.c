/* Extraction pipeline: images -> ViT forward (+ objective + backward) -> pooled taps -> F.h5. */
#include "gradbrain/extract.h"
#include "gradbrain/nn.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gradbrain/arena.h"
#include "gradbrain/h5.h"
#include "gradbrain/image.h"
#include "gradbrain/log.h"
#include "gradbrain/sha256.h"
#include "gradbrain/teacher.h"

/* ---- pooling ---- */

int gb_pool_parse(const char *s) {
  if (!strcmp(s, "cls")) return GB_POOL_CLS;
  if (!strcmp(s, "mean")) return GB_POOL_MEAN;
  if (!strcmp(s, "cls+mean")) return GB_POOL_CLS_MEAN;
  if (!strcmp(s, "tokens")) return GB_POOL_TOKENS;
  return -1;
}

const char *gb_pool_name(gb_pool p) {
  static const char *n[] = {"cls", "mean", "cls+mean", "tokens"};
  return n[p];
}

int64_t gb_pool_dim(gb_pool p, int T, int D) {
  return p == GB_POOL_CLS_MEAN ? 2 * (int64_t)D : p == GB_POOL_TOKENS ? (int64_t)T * D : D;
}

void gb_pool_tokens(float *out, const float *tap, int nb, int T, int n_prefix, int D, gb_pool pool) {
  int64_t od = gb_pool_dim(pool, T, D);
  for (int b = 0; b < nb; b++) {
    const float *x = tap + (int64_t)b * T * D;
    float *o = out + b * od;
    if (pool == GB_POOL_TOKENS) {
      memcpy(o, x, (size_t)T * D * sizeof(float));
      continue;
    }
    if (pool == GB_POOL_CLS || pool == GB_POOL_CLS_MEAN) memcpy(o, x, (size_t)D * sizeof(float));
    if (pool == GB_POOL_CLS) continue;
    float *m = pool == GB_POOL_MEAN ? o : o + D;
    for (int j = 0; j < D; j++) {
      double s = 0;
      for (int t = n_prefix; t < T; t++) s += x[(int64_t)t * D + j];
      m[j] = (float)(s / (T - n_prefix));
    }
  }
}

/* ---- per-batch signals ---- */

gb_status gb_signal_batch_init(gb_signal_batch *s, gb_vit *m, gb_objective *obj, int max_batch, int image_size,
                               int stop_layer) {
  memset(s, 0, sizeof *s);
  s->m = m;
  s->obj = obj;
  s->max_batch = max_batch;
  s->stop_layer = stop_layer < 1 ? 1 : stop_layer;
  m->lean = 1; /* signals need activation gradients only: less memory traffic (vit.h) */
  GB_TRY(gb_vit_prepare(m, max_batch, image_size, obj != NULL));
  int D = m->cfg.dim;
  s->ft = gb_alloc((size_t)max_batch * D * 4, "teacher features");
  s->dfs = gb_alloc((size_t)max_batch * D * 4, "feature gradients");
  s->loss = gb_alloc((size_t)max_batch * 4, "losses");
  s->labels_used = gb_alloc((size_t)max_batch * sizeof(int), "labels");
  if (!s->ft || !s->dfs || !s->loss || !s->labels_used) return GB_ERR_NOMEM;
  return GB_OK;
}

void gb_signal_batch_free(gb_signal_batch *s) {
  gb_free(s->ft);
  gb_free(s->dfs);
  gb_free(s->loss);
  gb_free(s->labels_used);
  memset(s, 0, sizeof *s);
}

gb_status gb_signal_batch_center(gb_signal_batch *s, const float *teacher, int nb) {
  if (s->teacher) return gb_dino_teacher_center_add(s->teacher, s->obj, teacher, nb); /* a distinct teacher */
  GB_TRY(gb_vit_forward(s->m, teacher, nb));
  return gb_objective_center_add(s->obj, s->m->a.final, nb);
}

gb_status gb_signal_batch_run(gb_signal_batch *s, const float *student, const float *teacher, const int *labels,
                              int nb) {
  if (s->teacher) return gb_dino_teacher_batch_run(s, student, teacher, nb); /* a distinct teacher (teacher.h) */
  gb_vit *m = s->m;
  int D = m->cfg.dim;
  const float *ft = NULL;
  if (s->obj && teacher && s->obj->kind != GB_OBJ_XENT) {
    GB_TRY(gb_vit_forward(m, teacher, nb));
    memcpy(s->ft, m->a.final, (size_t)nb * D * sizeof(float));
    ft = s->ft;
  }
  GB_TRY(gb_vit_forward(m, student, nb));
  if (!s->obj) return GB_OK;
  if (!ft) ft = m->a.final; /* identity views: the teacher sees what the student sees */
  GB_TRY(gb_objective_loss_grad(s->obj, m->a.final, ft, labels, nb, s->loss, s->dfs, s->labels_used));
  gb_vit_backward(m, s->dfs, nb, s->stop_layer, NULL);
  return GB_OK;
}

/* ---- signal table ---- */

typedef struct {
  const char *name;   /* group in F.h5 */
  int needs_backward; /* needs the objective and the gradient arena */
  int grad_arena;     /* tap lives in the gradient arena */
  gb_rule_kind rule;  /* learning rule computed by gb_rules_compute (taps: gb_rules_tap) */
} signal_def;

/* Add further learning signals here (feedback alignment, temporal difference, predictive
 * coding): each computes into an arena laid out like the activations. */
static const signal_def SIGNALS[] = {
    {"forward", 0, 0, GB_RULE_NONE},
    {"backprop", 1, 1, GB_RULE_NONE},
    /* learning rules (learning_rules.h), computed in this order after the two above */
    {"fa", 1, 0, GB_RULE_FA},
    {"dfa", 1, 0, GB_RULE_DFA},
    {"td-nudge", 1, 0, GB_RULE_TD_NUDGE},
    {"pc", 1, 0, GB_RULE_PC},
    {"td-view", 0, 0, GB_RULE_TD_VIEW},
};
enum { N_SIGNALS = (int)(sizeof SIGNALS / sizeof SIGNALS[0]) };

/* Parses "forward,backprop" into flags; names the unknown one. */
static gb_status parse_signals(const char *s, int on[N_SIGNALS]) {
  memset(on, 0, sizeof(int) * N_SIGNALS);
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  int any = 0;
  for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
    int found = 0;
    for (int i = 0; i < N_SIGNALS; i++) /* "td" (the name) = both temporal-difference variants */
      if (!strcmp(tok, SIGNALS[i].name) || (!strcmp(tok, "td") && !strncmp(SIGNALS[i].name, "td-", 3)))
        on[i] = found = any = 1;
    if (!found)
      return gb_fail(GB_ERR_ARG, "--signals: unknown signal '%s' (known: forward, backprop, fa, dfa, td-nudge, td-view, td = both, pc)", tok);
  }
  if (!any) return gb_fail(GB_ERR_ARG, "--signals: no signal given");
  return GB_OK;
}

/* "all" or "1,4,8" -> sorted unique 1-based layer list. */
static gb_status parse_layers(const char *s, int depth, int *layers, int *n) {
  *n = 0;
  if (!strcmp(s, "all")) {
    for (int l = 1; l <= depth; l++) layers[(*n)++] = l;
    return GB_OK;
  }
  int mark[1024] = {0};
  if (depth > 1023) return gb_fail(GB_ERR_UNSUPPORTED, "models with more than 1023 blocks");
  const char *p = s;
  while (*p) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > depth)
      return gb_fail(GB_ERR_ARG, "--layers '%s': expected 'all' or block numbers 1..%d separated by commas", s, depth);
    mark[v] = 1;
    p = end;
    if (*p == ',') p++;
    else if (*p) return gb_fail(GB_ERR_ARG, "--layers '%s': unexpected '%c'", s, *p);
  }
  for (int l = 1; l <= depth; l++)
    if (mark[l]) layers[(*n)++] = l;
  return GB_OK;
}

/* Labels: one integer per line (image order), or "id label" / "id,label" lines; -1 = argmax. */
static gb_status read_labels(const char *path, char **ids, int64_t n, int *labels) {
  for (int64_t i = 0; i < n; i++) labels[i] = -1;
  FILE *f = fopen(path, "r");
  if (!f) return gb_fail(GB_ERR_IO, "%s: cannot open labels: %s", path, strerror(errno));
  char line[4096];
  int64_t row = 0, lineno = 0;
  gb_status s = GB_OK;
  while (s == GB_OK && fgets(line, sizeof line, f)) {
    lineno++;
    char *p = line;
    while (isspace((unsigned char)*p)) p++;
    if (!*p || *p == '#') continue;
    char *e = p + strlen(p);
    while (e > p && isspace((unsigned char)e[-1])) *--e = 0;
    char *sep = strrchr(p, ',');
    if (!sep) sep = strrchr(p, '\t');
    if (!sep) sep = strrchr(p, ' ');
    char *num = sep ? sep + 1 : p, *end;
    long v = strtol(num, &end, 10);
    if (end == num || *end || v < -1)
      s = gb_fail(GB_ERR_FORMAT, "%s:%lld: label '%s': expected an integer >= -1", path, (long long)lineno, num);
    else if (!sep) {
      if (row >= n) s = gb_fail(GB_ERR_SHAPE, "%s: more labels than the %lld images", path, (long long)n);
      else labels[row++] = (int)v;
    } else {
      *sep = 0;
      int64_t k = 0;
      while (k < n && strcmp(ids[k], p)) k++;
      if (k == n) s = gb_fail(GB_ERR_FORMAT, "%s:%lld: image id '%s' is not among the images", path, (long long)lineno, p);
      else labels[k] = (int)v;
      row = -1;
    }
  }
  fclose(f);
  if (s == GB_OK && row >= 0 && row != n)
    s = gb_fail(GB_ERR_SHAPE, "%s: %lld labels for %lld images (one per line in image order, or 'id label' lines)",
                path, (long long)row, (long long)n);
  return s;
}

/* Loads images [i0, i0+nb) in parallel (student: clean view; teacher: augmented view). */
static gb_status load_batch(char **paths, int64_t i0, int nb, int size, const gb_vit_config *c, int augment,
                            uint64_t seed, float *out) {
  int64_t per = 3 * (int64_t)size * size;
  gb_status first = GB_OK;
  char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 1)
  for (int b = 0; b < nb; b++) {
    gb_status s = augment ? gb_image_load_augmented(paths[i0 + b], size, c->mean, c->std, seed, (uint64_t)(i0 + b),
                                                    out + b * per)
                          : gb_image_load(paths[i0 + b], size, c->mean, c->std, out + b * per);
    if (s != GB_OK) {
#pragma omp critical(gb_extract_load_err)
      if (first == GB_OK) {
        first = s;
        snprintf(msg, sizeof msg, "%s", gb_errmsg());
      }
    }
  }
  if (first != GB_OK) return gb_fail(first, "%s", msg);
  return GB_OK;
}

void gb_extract_opts_default(gb_extract_opts *o) {
  memset(o, 0, sizeof *o);
  o->arch = GB_VIT_AUTO;
  o->signals = "forward,backprop";
  o->objective = GB_OBJ_DINO;
  o->pool = GB_POOL_CLS_MEAN;
  o->layers = "all";
  o->image_size = 224;
  o->batch = 16;
  gb_rule_opts_default(&o->rules);
}

/* pc pseudo-time (--pc-save-iters): after every inference iteration t the prediction errors of
 * the selected blocks are pooled into /pc_tNN/layer_XX, rows of the current batch. */
typedef struct {
  gb_h5 *f;
  const int *layers;
  int nl, T, npre, D, nb;
  gb_pool pool;
  int64_t i0, slot;
  float *pooled;
} pc_iter_ctx;

static gb_status pc_iter_write(void *ctx, int iter, const float *slots) {
  pc_iter_ctx *c = ctx;
  for (int k = 0; k < c->nl; k++) {
    char name[64];
    snprintf(name, sizeof name, "/pc_t%02d/layer_%02d", iter, c->layers[k]);
    gb_pool_tokens(c->pooled, slots + c->layers[k] * c->slot, c->nb, c->T, c->npre, c->D, c->pool);
    GB_TRY(gb_h5_write_rows(c->f, name, c->i0, c->i0 + c->nb, c->pooled));
  }
  return GB_OK;
}

/* Provenance attributes that must match for --resume, and the rest. */
typedef struct {
  const char *name;
  char val[1024];
} attr_kv;

static int file_exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

/* Closes a resumed tmp file and moves it into place. */
static gb_status finish_resumed(gb_h5 *f, const char *tmp, const char *path) {
  gb_h5_close(f);
  int fd = open(tmp, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (rename(tmp, path) != 0) return gb_fail(GB_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  return GB_OK;
}

typedef struct {
  gb_vit *m;
  gb_vit_heads heads;
  gb_objective obj;
  int have_obj;
  gb_signal_batch sb;
  gb_dino_teacher teacher; /* --teacher-model */
  gb_rules rules;
  int have_rules;
  char **ids, **paths;
  int64_t n;
  int *labels;
  float *img_s, *img_t, *pooled;
  gb_h5 *f;
} run_state;

static void run_state_free(run_state *r) {
  if (r->have_rules) gb_rules_free(&r->rules);
  gb_signal_batch_free(&r->sb);
  gb_dino_teacher_free(&r->teacher);
  if (r->have_obj) gb_objective_free(&r->obj);
  gb_vit_heads_free(&r->heads);
  gb_vit_free(r->m);
  if (r->ids) gb_strings_free(r->ids, r->n);
  if (r->paths) gb_strings_free(r->paths, r->n);
  free(r->labels);
  gb_free(r->img_s);
  gb_free(r->img_t);
  gb_free(r->pooled);
  gb_h5_close(r->f); /* a created, uncommitted file is deleted: nothing half-written */
}

static gb_status check_resume_attrs(gb_h5 *f, const char *tmp, const attr_kv *kv, int nkv) {
  for (int i = 0; i < nkv; i++) {
    char *v = NULL;
    if (gb_h5_attr_get_str(f, "/", kv[i].name, &v) != GB_OK)
      return gb_fail(GB_ERR_FORMAT, "--resume: %s has no attribute '%s'; not a run of this version (delete it to start over)", tmp, kv[i].name);
    int same = !strcmp(v, kv[i].val);
    if (!same) {
      gb_status s = gb_fail(GB_ERR_ARG, "--resume: %s was started with %s = '%s', this run has '%s' (delete it or use the same options)",
                            tmp, kv[i].name, v, kv[i].val);
      gb_free(v);
      return s;
    }
    gb_free(v);
  }
  return GB_OK;
}

static gb_status run(const gb_extract_opts *o, run_state *r) {
  int on[N_SIGNALS];
  GB_TRY(parse_signals(o->signals, on));
  int need_bwd = 0, need_rules = 0, td_view = 0;
  for (int i = 0; i < N_SIGNALS; i++) {
    need_bwd |= on[i] && SIGNALS[i].needs_backward;
    need_rules |= on[i] && SIGNALS[i].rule != GB_RULE_NONE;
    td_view |= on[i] && SIGNALS[i].rule == GB_RULE_TD_VIEW;
  }
  if (td_view && !o->views_augment)
    return gb_fail(GB_ERR_ARG, "--signals td-view needs --views augment (its plus phase is the teacher view; with identity views it is zero)");
  need_bwd |= need_rules; /* every rule starts from the objective's error (td-view: the minus phase of the same run) */
  if (o->batch < 1 || o->batch > 4096) return gb_fail(GB_ERR_ARG, "--batch %d: expected 1..4096", o->batch);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", o->out_path);
  if (o->resume && file_exists(o->out_path) && !file_exists(tmp)) {
    gb_info("%s is already complete; nothing to resume", o->out_path);
    return GB_OK;
  }
  int resuming = o->resume && file_exists(tmp);
  if (!resuming && !o->overwrite && file_exists(o->out_path))
    return gb_fail(GB_ERR_EXISTS, "output %s already exists (remove it, pass --overwrite, or --resume an interrupted run)", o->out_path);

  char sha[65];
  GB_TRY(gb_sha256_file(o->model_path, sha));
  GB_TRY(gb_vit_load(o->model_path, o->config_path, o->arch, &r->m, &r->heads));
  gb_vit *m = r->m;
  const gb_vit_config *c = &m->cfg;
  int layers[1024], nl;
  GB_TRY(parse_layers(o->layers, c->depth, layers, &nl));
  if (o->image_size % c->patch)
    return gb_fail(GB_ERR_ARG, "--image-size %d is not a multiple of the patch size %d of %s", o->image_size, c->patch, o->model_path);
  GB_TRY(gb_image_list(o->images, &r->ids, &r->paths, &r->n));
  if (r->n == 0) return gb_fail(GB_ERR_ARG, "%s: no images found", o->images);
  int64_t N = r->n;
  r->labels = malloc((size_t)N * sizeof(int));
  if (!r->labels) return gb_fail(GB_ERR_NOMEM, "out of memory");
  for (int64_t i = 0; i < N; i++) r->labels[i] = -1;
  if (o->labels_path) {
    if (o->objective != GB_OBJ_XENT) return gb_fail(GB_ERR_ARG, "--labels is only used by --objective xent");
    GB_TRY(read_labels(o->labels_path, r->ids, N, r->labels));
  }
  if (need_bwd) {
    GB_TRY(gb_objective_init(&r->obj, o->objective, c->dim, &r->heads, o->seed, o->head_k, o->n_classes, o->batch));
    r->have_obj = 1;
    if (o->objective == GB_OBJ_INVARIANCE && !o->views_augment)
      gb_warn("--objective invariance with --views identity: student and teacher see the same image, so the loss and every gradient are zero");
  }
  int B = o->batch < N ? o->batch : (int)N;
  GB_TRY(gb_signal_batch_init(&r->sb, m, r->have_obj ? &r->obj : NULL, B, o->image_size, need_rules ? 1 : layers[0]));
  int center_set = 0; /* --teacher-model / --center-from (teacher.h) */
  char teacher_desc[1000], teacher_sha[65];
  GB_TRY(gb_extract_teacher_setup(o, m, r->have_obj ? &r->obj : NULL, B, need_rules, &r->teacher, &center_set,
                                  teacher_desc, (int)sizeof teacher_desc, teacher_sha));
  if (r->teacher.m) r->sb.teacher = &r->teacher;
  if (need_rules) {
    GB_TRY(gb_rules_init(&r->rules, m, &r->obj, B, &o->rules));
    r->have_rules = 1;
  }
  int T = m->T, D = c->dim, npre = 1 + c->n_reg;
  int64_t pdim = gb_pool_dim(o->pool, T, D), per = 3 * (int64_t)o->image_size * o->image_size;
  r->img_s = gb_alloc((size_t)(B * per) * 4, "images");
  r->img_t = gb_alloc((size_t)(B * per) * 4, "images");
  r->pooled = gb_alloc((size_t)(B * pdim) * 4, "pooled features");
  if (!r->img_s || !r->img_t || !r->pooled) return GB_ERR_NOMEM;

  /* provenance: the first block must match to resume */
  attr_kv kv[28];
  int nkv = 0;
#define KV(k, ...) (kv[nkv].name = (k), snprintf(kv[nkv].val, sizeof kv[nkv].val, __VA_ARGS__), nkv++)
  KV("model_sha256", "%s", sha);
  KV("arch", "%s", gb_vit_arch_name(c->arch));
  KV("signals", "%s", o->signals);
  KV("objective", "%s", need_bwd ? gb_objective_name(o->objective) : "none");
  KV("pool", "%s", gb_pool_name(o->pool));
  KV("views", "%s", o->views_augment ? "augment" : "identity");
  KV("linear_precision", "%s", gb_nn_precision() == GB_NN_BF16X3 ? "bf16x3 (AMX tiles, two bfloat16 terms per operand)" : "float32");
  KV("seed", "%llu", (unsigned long long)o->seed);
  KV("image_size", "%d", o->image_size);
  KV("layers", "%s", o->layers);
  KV("n_images", "%lld", (long long)N);
  for (int s = 0; s < N_SIGNALS; s++)
    if (on[s] && SIGNALS[s].rule != GB_RULE_NONE && nkv < 26) {
      kv[nkv].name = SIGNALS[s].name; /* e.g. attribute "pc" = "beta=0.1 iters=24 ..." */
      gb_rule_params(SIGNALS[s].rule, &o->rules, c->depth, kv[nkv].val, (int)sizeof kv[nkv].val);
      nkv++;
    }
  if (o->teacher_model_path) KV("teacher_sha256", "%s", teacher_sha);
  if (o->center_from) KV("center_from", "%s", o->center_from);
  int n_match = nkv;
  KV("gradbrain_version", "%s", GB_VERSION);
  KV("command_line", "%s", o->cmdline ? o->cmdline : "");
  KV("defaults_applied", "%s", o->defaults_applied ? o->defaults_applied : "");
  KV("model", "%s", o->model_path);
  KV("config", "%s", c->config_source);
  KV("objective_head", "%s", r->have_obj ? r->obj.head_desc : "none");
  if (o->teacher_model_path || o->center_from) KV("dino_objective", "%s", teacher_desc);
  KV("views_definition", "%s", o->views_augment ? "student = clean center crop (the stimulus as shown); teacher = random-resized-crop (scale 0.32-1) + flip seeded by (seed, image index)"
                                                : "student = teacher = clean center crop");
#undef KV

  int64_t done = 0;
  if (resuming) {
    GB_TRY(gb_h5_open_rw(tmp, &r->f));
    GB_TRY(check_resume_attrs(r->f, tmp, kv, n_match));
    char **old_ids = NULL;
    int64_t n_old = 0;
    GB_TRY(gb_h5_read_strings(r->f, "/image_ids", &old_ids, &n_old));
    int64_t bad = -1;
    for (int64_t i = 0; i < n_old && i < N && bad < 0; i++)
      if (strcmp(old_ids[i], r->ids[i])) bad = i;
    gb_status ids_ok = (n_old != N || bad >= 0)
                           ? gb_fail(GB_ERR_ARG, "--resume: %s lists different images (first difference at row %lld: '%s' vs '%s'); delete it to start over",
                                     tmp, (long long)(bad < 0 ? 0 : bad), bad < 0 ? "?" : old_ids[bad], bad < 0 ? "?" : r->ids[bad])
                           : GB_OK;
    gb_strings_free(old_ids, n_old);
    GB_TRY(ids_ok);
    double *v = NULL;
    int64_t nv = 0;
    GB_TRY(gb_h5_attr_get_f64(r->f, "/", "rows_done", &v, &nv));
    done = nv > 0 ? (int64_t)v[0] : 0;
    gb_free(v);
    gb_info("resuming %s at image %lld of %lld", tmp, (long long)done, (long long)N);
  } else {
    GB_TRY(gb_h5_create(o->out_path, o->overwrite, &r->f));
    GB_TRY(gb_h5_write_strings(r->f, "/image_ids", (const char *const *)r->ids, N));
    for (int i = 0; i < nkv; i++) GB_TRY(gb_h5_attr_set_str(r->f, "/", kv[i].name, kv[i].val));
    double mean_std[6];
    for (int i = 0; i < 3; i++) mean_std[i] = c->mean[i], mean_std[3 + i] = c->std[i];
    GB_TRY(gb_h5_attr_set_f64(r->f, "/", "normalization_mean_std", mean_std, 6));
    int64_t geo[6] = {c->dim, c->depth, c->heads, c->patch, c->n_reg, T};
    GB_TRY(gb_h5_attr_set_i64(r->f, "/", "dim_depth_heads_patch_registers_tokens", geo, 6));
    for (int s = 0; s < N_SIGNALS; s++) {
      if (!on[s]) continue;
      for (int k = 0; k < nl; k++) {
        char name[64];
        snprintf(name, sizeof name, "/%s/layer_%02d", SIGNALS[s].name, layers[k]);
        GB_TRY(gb_h5_create_f32(r->f, name, N, pdim));
      }
      if (SIGNALS[s].rule != GB_RULE_NONE) { /* the definition travels with the data */
        char grp[64], par[1024];
        snprintf(grp, sizeof grp, "/%s", SIGNALS[s].name);
        gb_rule_params(SIGNALS[s].rule, &o->rules, c->depth, par, (int)sizeof par);
        GB_TRY(gb_h5_attr_set_str(r->f, grp, "definition", gb_rule_definition(SIGNALS[s].rule)));
        GB_TRY(gb_h5_attr_set_str(r->f, grp, "parameters", par));
        GB_TRY(gb_h5_attr_set_str(r->f, grp, "objective", gb_objective_name(o->objective)));
      }
    }
    int pc_on = 0;
    for (int s = 0; s < N_SIGNALS; s++) pc_on |= on[s] && SIGNALS[s].rule == GB_RULE_PC;
    if (pc_on && o->rules.pc_save_iters) {
      int n_it = gb_rule_pc_iters(&o->rules, c->depth);
      for (int t = 1; t <= n_it; t++) {
        char grp[64], def[256];
        snprintf(grp, sizeof grp, "/pc_t%02d", t);
        for (int k = 0; k < nl; k++) {
          char name[96];
          snprintf(name, sizeof name, "%s/layer_%02d", grp, layers[k]);
          GB_TRY(gb_h5_create_f32(r->f, name, N, pdim));
        }
        snprintf(def, sizeof def, "pc prediction errors after %d of the %d inference iterations (pseudo-time; see /pc)", t, n_it);
        GB_TRY(gb_h5_attr_set_str(r->f, grp, "definition", def));
      }
    }
    if (need_bwd) GB_TRY(gb_h5_create_f32(r->f, "/loss", N, 1));
    int64_t zero = 0;
    GB_TRY(gb_h5_attr_set_i64(r->f, "/", "rows_done", &zero, 1));
    GB_TRY(gb_h5_flush(r->f));
  }

  int teacher_view = need_bwd && o->views_augment && o->objective != GB_OBJ_XENT;
  int load_teacher = teacher_view || td_view;
  if (center_set && !gb_h5_exists(r->f, "/dino_center")) { /* the checkpoint's EMA center (--center-from) */
    int64_t shp[1] = {r->obj.dino.k};
    GB_TRY(gb_h5_write_f32(r->f, "/dino_center", r->obj.center, 1, shp));
    GB_TRY(gb_h5_flush(r->f));
  }
  if (need_bwd && o->objective == GB_OBJ_DINO) { /* first pass: the teacher center */
    int K = r->obj.dino.k;
    if (gb_h5_exists(r->f, "/dino_center")) {
      float *cbuf = NULL;
      int64_t shp[GB_H5_MAXDIM];
      int nd;
      GB_TRY(gb_h5_read_f32(r->f, "/dino_center", &cbuf, &nd, shp));
      gb_status s = shp[0] == K ? gb_objective_set_center(&r->obj, cbuf)
                                : gb_fail(GB_ERR_SHAPE, "%s: /dino_center has %lld entries, head has K = %d", tmp, (long long)shp[0], K);
      gb_free(cbuf);
      GB_TRY(s);
    } else {
      gb_progress pg;
      gb_progress_start(&pg, "DINO center (teacher pass)", N, "images");
      for (int64_t i0 = 0; i0 < N; i0 += B) {
        int nb = (int)(N - i0 < B ? N - i0 : B);
        GB_TRY(load_batch(r->paths, i0, nb, o->image_size, c, o->views_augment, o->seed, r->img_t));
        GB_TRY(gb_signal_batch_center(&r->sb, r->img_t, nb));
        gb_progress_add(&pg, nb);
      }
      gb_progress_end(&pg);
      GB_TRY(gb_objective_center_finish(&r->obj));
      int64_t shp[1] = {K};
      GB_TRY(gb_h5_write_f32(r->f, "/dino_center", r->obj.center, 1, shp));
      GB_TRY(gb_h5_flush(r->f));
    }
  }

  pc_iter_ctx pcx = {r->f, layers, nl, T, npre, D, 0, o->pool, 0, gb_vit_tap(m, 1, 0) - gb_vit_tap(m, 0, 0), r->pooled};
  if (need_rules && o->rules.pc_save_iters) {
    r->rules.pc_observer = pc_iter_write;
    r->rules.pc_observer_ctx = &pcx;
  }
  gb_progress pg;
  gb_progress_start(&pg, "extract", N - done, "images");
  double t0 = gb_now();
  for (int64_t i0 = done; i0 < N; i0 += B) {
    int nb = (int)(N - i0 < B ? N - i0 : B);
    GB_TRY(load_batch(r->paths, i0, nb, o->image_size, c, 0, o->seed, r->img_s));
    if (load_teacher) GB_TRY(load_batch(r->paths, i0, nb, o->image_size, c, 1, o->seed, r->img_t));
    GB_TRY(gb_signal_batch_run(&r->sb, r->img_s, teacher_view ? r->img_t : NULL, r->labels + i0, nb));
    if (need_rules) GB_TRY(gb_rules_begin(&r->rules, r->sb.dfs, teacher_view ? r->sb.ft : NULL, r->sb.labels_used, nb));
    pcx.i0 = i0;
    pcx.nb = nb;
    for (int s = 0; s < N_SIGNALS; s++) {
      if (!on[s]) continue;
      if (SIGNALS[s].rule != GB_RULE_NONE) GB_TRY(gb_rules_compute(&r->rules, SIGNALS[s].rule, r->img_t));
      for (int k = 0; k < nl; k++) {
        char name[64];
        snprintf(name, sizeof name, "/%s/layer_%02d", SIGNALS[s].name, layers[k]);
        const float *tap = SIGNALS[s].rule != GB_RULE_NONE ? gb_rules_tap(&r->rules, layers[k])
                                                           : gb_vit_tap(m, layers[k], SIGNALS[s].grad_arena);
        gb_pool_tokens(r->pooled, tap, nb, T, npre, D, o->pool);
        GB_TRY(gb_h5_write_rows(r->f, name, i0, i0 + nb, r->pooled));
      }
    }
    if (need_bwd) GB_TRY(gb_h5_write_rows(r->f, "/loss", i0, i0 + nb, r->sb.loss));
    int64_t d = i0 + nb;
    GB_TRY(gb_h5_attr_set_i64(r->f, "/", "rows_done", &d, 1));
    GB_TRY(gb_h5_flush(r->f));
    gb_progress_add(&pg, nb);
  }
  gb_progress_end(&pg);
  double dt = gb_now() - t0;
  if (N > done) gb_info("%lld images in %.1f s (%.2f images/s)", (long long)(N - done), dt, (double)(N - done) / dt);
  gb_h5 *f = r->f;
  r->f = NULL;
  if (resuming) return finish_resumed(f, tmp, o->out_path);
  return gb_h5_commit(f);
}

gb_status gb_extract_run(const gb_extract_opts *o) {
  if (!o->model_path || !o->images || !o->out_path)
    return gb_fail(GB_ERR_ARG, "extract needs --model, --images and --out");
  run_state r;
  memset(&r, 0, sizeof r);
  gb_status s = run(o, &r);
  run_state_free(&r); /* on error a created file is deleted; a resumed one is kept as it was */
  return s;
}
