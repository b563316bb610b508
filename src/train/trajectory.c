/* `gradbrain trajectory`: for every training checkpoint, `extract` (forward + backprop of the
 * checkpoint's own DINO objective) and `encode` through their library entry points, then the
 * scores of all checkpoints stacked into T.h5 with the half-time of each score. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gradbrain/arena.h"
#include "gradbrain/encode.h"
#include "gradbrain/extract.h"
#include "gradbrain/h5.h"
#include "gradbrain/log.h"
#include "gradbrain/textfile.h"
#include "gradbrain/train.h"

#define N_TMODELS 4
static const char *TMODEL[N_TMODELS] = {"forward", "signal", "joint", "residual"};
static const char *SCORE_PATH[N_TMODELS] = {"/forward/r", "/signal/r", "/joint/r", "/residual"};

void gb_trajectory_opts_default(gb_trajectory_opts *o) {
  memset(o, 0, sizeof *o);
  o->layers = "all";
  o->pool = "cls+mean";
  o->batch = 16;
  o->n_folds = 5;
}

double gb_half_time(const double *x, const double *y, int n) {
  if (n <= 0 || !(y[n - 1] > 0)) return NAN;
  double half = 0.5 * y[n - 1];
  for (int i = 0; i < n; i++) {
    if (!(y[i] >= half)) continue;
    if (i == 0 || !isfinite(y[i - 1])) return x[i];
    double t = (half - y[i - 1]) / (y[i] - y[i - 1]);
    return x[i - 1] + t * (x[i] - x[i - 1]);
  }
  return NAN;
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

/* image_size from CKPT_DIR/config.json, or 0. */
static int config_image_size(const char *dir) {
  char p[4096];
  snprintf(p, sizeof p, "%s/config.json", dir);
  char *txt = NULL;
  if (!file_exists(p) || gb_read_text_file(p, &txt) != GB_OK) return 0;
  cJSON *o = cJSON_Parse(txt);
  free(txt);
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "image_size");
  int v = cJSON_IsNumber(j) ? (int)j->valuedouble : 0;
  cJSON_Delete(o);
  return v;
}

static double nanmean(const float *x, int64_t n) {
  double s = 0;
  int64_t c = 0;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(x[i])) {
      s += x[i];
      c++;
    }
  return c ? s / (double)c : NAN;
}

/* One checkpoint: extract + encode into the work dir (skipped when --resume finds the scores).
 * extract runs the checkpoint's own training objective: taps and student logits from the student
 * (backbone + head), targets from the teacher (backbone + head), the checkpoint's EMA center and
 * temperatures (extract --teacher-model --center-from, gradbrain/teacher.h). */
static gb_status run_checkpoint(const gb_trajectory_opts *o, const char *model, const char *teacher,
                                const char *ckpt_json, const char *feat, const char *scores, int image_size) {
  if (o->resume && file_exists(scores)) {
    gb_info("%s: reusing %s (--resume)", model, scores);
    return GB_OK;
  }
  gb_pool pool;
  int pl = gb_pool_parse(o->pool);
  if (pl < 0) return gb_fail(GB_ERR_ARG, "--pool '%s': expected cls, mean, cls+mean or tokens", o->pool);
  pool = (gb_pool)pl;
  gb_extract_opts e;
  gb_extract_opts_default(&e);
  e.model_path = model;
  e.teacher_model_path = teacher;
  e.center_from = ckpt_json;
  e.images = o->images;
  e.out_path = feat;
  e.signals = "forward,backprop";
  e.objective = GB_OBJ_DINO;
  e.pool = pool;
  e.layers = o->layers;
  e.image_size = image_size;
  e.views_augment = o->views_augment;
  e.seed = o->seed;
  e.batch = o->batch;
  e.overwrite = 1; /* work files are ours */
  e.cmdline = o->cmdline;
  GB_TRY(gb_extract_run(&e));
  gb_encode_opts c;
  gb_encode_defaults(&c);
  double *alphas = NULL;
  int n_alpha = 0;
  GB_TRY(gb_parse_alphas(o->alphas ? o->alphas : "1e-1:1e8:10", &alphas, &n_alpha)); /* encode's default grid */
  c.features_path = feat;
  c.brain_path = o->brain;
  c.out_path = scores;
  c.base = "forward";
  c.add = "backprop";
  c.n_folds = o->n_folds;
  c.inner_k = o->inner_k;
  c.pca = o->pca;
  c.alphas = alphas;
  c.n_alpha = n_alpha;
  c.seed = o->seed;
  c.overwrite = 1;
  c.command_line = o->cmdline;
  c.defaults_applied = "set by gradbrain trajectory";
  gb_status s = gb_encode_run(&c);
  gb_free(alphas);
  return s;
}

typedef struct {
  int C, L, nd_t;
  int64_t T, tshape[2];
  char **layers;
  float *r[N_TMODELS];   /* C x L x T */
  double *loss;          /* C */
} collected;

static gb_status collect_one(collected *k, int ci, const char *scores, const char *feat) {
  gb_h5 *f = NULL;
  GB_TRY(gb_h5_open(scores, &f));
  gb_status s = GB_OK;
  for (int m = 0; m < N_TMODELS && s == GB_OK; m++) {
    float *r = NULL;
    int nd;
    int64_t sh[GB_H5_MAXDIM];
    s = gb_h5_read_f32(f, SCORE_PATH[m], &r, &nd, sh);
    if (s != GB_OK) break;
    int64_t T = 1;
    for (int d = 1; d < nd; d++) T *= sh[d];
    if (!k->r[m]) {
      if (m == 0) {
        k->L = (int)sh[0];
        k->T = T;
        k->nd_t = nd - 1;
        for (int d = 1; d < nd && d < 3; d++) k->tshape[d - 1] = sh[d];
      }
      k->r[m] = gb_alloc((size_t)k->C * k->L * k->T * sizeof(float), "trajectory scores");
      if (!k->r[m]) s = GB_ERR_NOMEM;
    }
    if (s == GB_OK && (sh[0] != k->L || T != k->T))
      s = gb_fail(GB_ERR_SHAPE, "%s: dataset '%s' is %lld layers x %lld targets, the first checkpoint had %d x %lld",
                  scores, SCORE_PATH[m], (long long)sh[0], (long long)T, k->L, (long long)k->T);
    if (s == GB_OK) memcpy(k->r[m] + (int64_t)ci * k->L * k->T, r, (size_t)k->L * k->T * sizeof(float));
    gb_free(r);
  }
  if (s == GB_OK && !k->layers) {
    int64_t nl;
    s = gb_h5_read_strings(f, "/layers", &k->layers, &nl);
    if (s == GB_OK && nl != k->L) s = gb_fail(GB_ERR_SHAPE, "%s: /layers has %lld names for %d layers", scores, (long long)nl, k->L);
  }
  gb_h5_close(f);
  GB_TRY(s);
  k->loss[ci] = NAN;
  if (gb_h5_open(feat, &f) == GB_OK) {
    float *l = NULL;
    int64_t sh[GB_H5_MAXDIM];
    int nd;
    if (gb_h5_exists(f, "/loss") && gb_h5_read_f32(f, "/loss", &l, &nd, sh) == GB_OK) {
      int64_t n = 1;
      for (int d = 0; d < nd; d++) n *= sh[d];
      k->loss[ci] = nanmean(l, n);
    }
    gb_free(l);
    gb_h5_close(f);
  }
  return GB_OK;
}

static gb_status write_json(const gb_trajectory_opts *o, const double *x, int C, double *const mean_all[N_TMODELS],
                            const double *half_all) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddItemToObject(j, "x", cJSON_CreateDoubleArray(x, C));
  cJSON_AddStringToObject(j, "x_label", "training iteration");
  cJSON_AddStringToObject(j, "y_label", "mean Pearson r (all layers, all targets)");
  cJSON *se = cJSON_AddObjectToObject(j, "series");
  cJSON *ht = cJSON_AddObjectToObject(j, "half_time");
  for (int m = 0; m < N_TMODELS; m++) {
    if (m == 1) continue; /* the signal alone is in T.h5; the figure shows forward, joint, residual */
    cJSON *arr = cJSON_CreateArray();
    for (int c = 0; c < C; c++)
      cJSON_AddItemToArray(arr, isfinite(mean_all[m][c]) ? cJSON_CreateNumber(mean_all[m][c]) : cJSON_CreateNull());
    cJSON_AddItemToObject(se, TMODEL[m], arr);
    cJSON_AddItemToObject(ht, TMODEL[m], isfinite(half_all[m]) ? cJSON_CreateNumber(half_all[m]) : cJSON_CreateNull());
  }
  char *txt = cJSON_Print(j);
  cJSON_Delete(j);
  char path[4200], tmp[4300];
  size_t n = strlen(o->out_path);
  if (n > 3 && !strcmp(o->out_path + n - 3, ".h5")) snprintf(path, sizeof path, "%.*s.json", (int)(n - 3), o->out_path);
  else snprintf(path, sizeof path, "%s.json", o->out_path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = txt ? fopen(tmp, "wb") : NULL;
  int ok = f && fputs(txt, f) >= 0;
  if (f) ok = fclose(f) == 0 && ok;
  free(txt);
  if (!ok || rename(tmp, path) != 0) return gb_fail(GB_ERR_IO, "%s: cannot write", path);
  return GB_OK;
}

/* The training curves from the last checkpoint's history into /training/: iteration, loss,
 * dino, teacher_entropy, teacher_batch_entropy (NaN where a run did not record them), and the
 * k-NN curve (knn_iteration, knn) when the run measured it. */
static gb_status write_training_history(gb_h5 *f, const char *json_path) {
  char *txt = NULL;
  GB_TRY(gb_read_text_file(json_path, &txt));
  cJSON *j = cJSON_Parse(txt);
  free(txt);
  const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "history");
  if (!cJSON_IsArray(h)) {
    cJSON_Delete(j);
    return gb_fail(GB_ERR_FORMAT, "%s: field 'history': expected an array of iterations", json_path);
  }
  static const char *KEY[] = {"it", "loss", "dino", "teacher_entropy", "teacher_batch_entropy"};
  enum { NK = sizeof KEY / sizeof KEY[0] };
  int n = cJSON_GetArraySize(h), nl = 0, nk = 0;
  double *v = malloc(((size_t)NK + 2) * (n ? n : 1) * sizeof(double));
  gb_status s = v ? GB_OK : gb_fail(GB_ERR_NOMEM, "out of memory");
  double *knn_it = v + (size_t)NK * n, *knn = knn_it + n;
  const cJSON *e;
  cJSON_ArrayForEach(e, h) {
    if (s != GB_OK) break;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(e, "it"), *kv = cJSON_GetObjectItemCaseSensitive(e, "knn");
    if (cJSON_IsNumber(it) && cJSON_IsNumber(kv)) {
      knn_it[nk] = it->valuedouble;
      knn[nk++] = kv->valuedouble;
    }
    if (!cJSON_IsNumber(it) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "loss"))) continue;
    for (int q = 0; q < NK; q++) {
      const cJSON *x = cJSON_GetObjectItemCaseSensitive(e, KEY[q]);
      v[(size_t)q * n + nl] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    }
    nl++;
  }
  char name[64];
  int64_t snl = nl, snk = nk;
  for (int q = 0; q < NK && s == GB_OK && nl > 0; q++) {
    snprintf(name, sizeof name, "/training/%s", q ? KEY[q] : "iteration");
    s = gb_h5_write_f64(f, name, v + (size_t)q * n, 1, &snl);
  }
  if (s == GB_OK && nk > 0) s = gb_h5_write_f64(f, "/training/knn_iteration", knn_it, 1, &snk);
  if (s == GB_OK && nk > 0) s = gb_h5_write_f64(f, "/training/knn", knn, 1, &snk);
  if (s == GB_OK && nl > 0) s = gb_h5_attr_set_str(f, "/", "training_history", json_path);
  free(v);
  cJSON_Delete(j);
  return s;
}

static gb_status write_trajectory(const gb_trajectory_opts *o, collected *k, const double *x, char **names,
                                  int image_size, const char *last_json) {
  int C = k->C, L = k->L;
  gb_h5 *f = NULL;
  GB_TRY(gb_h5_create(o->out_path, o->overwrite, &f));
  int64_t sC = C, sL = L, one = 1;
  gb_status s = gb_h5_write_f64(f, "/iterations", x, 1, &sC);
  if (s == GB_OK) s = gb_h5_write_strings(f, "/checkpoints", (const char *const *)names, C);
  if (s == GB_OK) s = gb_h5_write_strings(f, "/layers", (const char *const *)k->layers, L);
  if (s == GB_OK) s = gb_h5_write_f64(f, "/extract_loss", k->loss, 1, &sC);
  double *mean = malloc((size_t)C * L * sizeof(double)), *mean_all[N_TMODELS] = {0};
  double *half = malloc((size_t)L * sizeof(double)), *col = malloc((size_t)C * sizeof(double));
  double half_all[N_TMODELS];
  if (!mean || !half || !col) s = gb_fail(GB_ERR_NOMEM, "out of memory");
  for (int m = 0; m < N_TMODELS && s == GB_OK; m++) {
    char name[128];
    int64_t shp[4] = {C, L, k->tshape[0], k->tshape[1]};
    snprintf(name, sizeof name, "/%s/r", TMODEL[m]);
    s = gb_h5_write_f32(f, name, k->r[m], 2 + k->nd_t, shp);
    mean_all[m] = malloc((size_t)C * sizeof(double));
    if (!mean_all[m]) s = gb_fail(GB_ERR_NOMEM, "out of memory");
    for (int c = 0; s == GB_OK && c < C; c++) {
      for (int l = 0; l < L; l++) mean[(int64_t)c * L + l] = nanmean(k->r[m] + ((int64_t)c * L + l) * k->T, k->T);
      mean_all[m][c] = nanmean(k->r[m] + (int64_t)c * L * k->T, (int64_t)L * k->T);
    }
    for (int l = 0; s == GB_OK && l < L; l++) {
      for (int c = 0; c < C; c++) col[c] = mean[(int64_t)c * L + l];
      half[l] = gb_half_time(x, col, C);
    }
    if (s == GB_OK) half_all[m] = gb_half_time(x, mean_all[m], C);
    int64_t shm[2] = {C, L};
    snprintf(name, sizeof name, "/%s/mean", TMODEL[m]);
    if (s == GB_OK) s = gb_h5_write_f64(f, name, mean, 2, shm);
    snprintf(name, sizeof name, "/%s/mean_all", TMODEL[m]);
    if (s == GB_OK) s = gb_h5_write_f64(f, name, mean_all[m], 1, &sC);
    snprintf(name, sizeof name, "/%s/half_time", TMODEL[m]);
    if (s == GB_OK) s = gb_h5_write_f64(f, name, half, 1, &sL);
    snprintf(name, sizeof name, "/%s/half_time_all", TMODEL[m]);
    if (s == GB_OK) s = gb_h5_write_f64(f, name, &half_all[m], 1, &one);
  }
  char buf[64];
  int64_t v;
  if (s == GB_OK) s = write_training_history(f, last_json);
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "version", GB_VERSION);
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "command", o->cmdline ? o->cmdline : "");
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "checkpoints", o->checkpoints);
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "images", o->images);
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "brain", o->brain);
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "objective", "dino: each checkpoint's training objective (student backbone + head: taps; teacher backbone + head: targets; the checkpoint's EMA center and temperatures)");
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "pool", o->pool);
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "views", o->views_augment ? "augment" : "identity");
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "x_label", "training iteration");
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "half_time_definition",
                                         "first iteration at which the mean score reaches half its value at the last checkpoint, linearly interpolated; NaN if that value <= 0");
  v = image_size;
  if (s == GB_OK) s = gb_h5_attr_set_i64(f, "/", "image_size", &v, 1);
  v = (int64_t)o->seed;
  if (s == GB_OK) s = gb_h5_attr_set_i64(f, "/", "seed", &v, 1);
  v = o->n_folds;
  if (s == GB_OK) s = gb_h5_attr_set_i64(f, "/", "n_folds", &v, 1);
  v = o->pca;
  if (s == GB_OK) s = gb_h5_attr_set_i64(f, "/", "pca", &v, 1);
  snprintf(buf, sizeof buf, "%d checkpoints", C);
  if (s == GB_OK) s = gb_h5_attr_set_str(f, "/", "n_checkpoints", buf);
  if (s == GB_OK) s = gb_h5_commit(f);
  else gb_h5_close(f);
  if (s == GB_OK) s = write_json(o, x, C, mean_all, half_all);
  if (s == GB_OK)
    gb_info("%s: %d checkpoints; half-time (iteration) of the mean residual %.4g, forward %.4g, joint %.4g",
            o->out_path, C, half_all[3], half_all[0], half_all[2]);
  free(mean);
  free(half);
  free(col);
  for (int m = 0; m < N_TMODELS; m++) free(mean_all[m]);
  return s;
}

gb_status gb_trajectory_run(const gb_trajectory_opts *o) {
  if (!o->checkpoints || !o->images || !o->brain || !o->out_path)
    return gb_fail(GB_ERR_ARG, "trajectory: --checkpoints, --images, --brain and --out are required");
  if (!o->overwrite && file_exists(o->out_path))
    return gb_fail(GB_ERR_EXISTS, "%s: exists (pass --overwrite to replace it)", o->out_path);
  int64_t *its = NULL;
  int C = 0;
  GB_TRY(gb_ckpt_list(o->checkpoints, &its, &C));
  if (C == 0) {
    free(its);
    return gb_fail(GB_ERR_ARG, "%s: no checkpoints (expected ckpt_XXXXXX.json + ckpt_XXXXXX.safetensors from gradbrain train)",
                   o->checkpoints);
  }
  int image_size = o->image_size > 0 ? o->image_size : config_image_size(o->checkpoints);
  if (image_size <= 0) image_size = 224;
  char work[4200];
  snprintf(work, sizeof work, "%s.work", o->out_path);
  if (mkdir(work, 0777) != 0 && errno != EEXIST) {
    free(its);
    return gb_fail(GB_ERR_IO, "%s: cannot create work directory", work);
  }
  collected k;
  memset(&k, 0, sizeof k);
  k.C = C;
  k.loss = calloc((size_t)C, sizeof(double));
  double *x = malloc((size_t)C * sizeof(double));
  char **names = calloc((size_t)C, sizeof(char *));
  gb_status s = k.loss && x && names ? GB_OK : gb_fail(GB_ERR_NOMEM, "out of memory");
  for (int c = 0; c < C && s == GB_OK; c++) {
    char model[4200], student[4200], cjson[4200], feat[4400], scores[4400];
    gb_ckpt_path(model, sizeof model, o->checkpoints, its[c], ".safetensors");
    gb_ckpt_path(student, sizeof student, o->checkpoints, its[c], ".student.safetensors");
    gb_ckpt_path(cjson, sizeof cjson, o->checkpoints, its[c], ".json");
    snprintf(feat, sizeof feat, "%s/ckpt_%06lld.features.h5", work, (long long)its[c]);
    snprintf(scores, sizeof scores, "%s/ckpt_%06lld.scores.h5", work, (long long)its[c]);
    const char *base = strrchr(model, '/');
    names[c] = strdup(base ? base + 1 : model);
    x[c] = (double)its[c];
    if (!file_exists(model)) s = gb_fail(GB_ERR_IO, "%s: missing (its .json exists)", model);
    else if (!file_exists(student)) s = gb_fail(GB_ERR_IO, "%s: missing (the student of the checkpoint; its .json exists)", student);
    gb_info("checkpoint %d/%d: iteration %lld", c + 1, C, (long long)its[c]);
    if (s == GB_OK) s = run_checkpoint(o, student, model, cjson, feat, scores, image_size);
    if (s == GB_OK) s = collect_one(&k, c, scores, feat);
    if (s != GB_OK) s = gb_fail_context(s, "checkpoint %s", model);
  }
  if (s == GB_OK) {
    char last_json[4200];
    gb_ckpt_path(last_json, sizeof last_json, o->checkpoints, its[C - 1], ".json");
    s = write_trajectory(o, &k, x, names, image_size, last_json);
  }
  for (int c = 0; c < C; c++) free(names ? names[c] : NULL);
  free(names);
  free(x);
  free(its);
  free(k.loss);
  for (int m = 0; m < N_TMODELS; m++) gb_free(k.r[m]);
  if (k.layers) gb_strings_free(k.layers, k.L);
  return s;
}
