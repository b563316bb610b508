/* The trajectory section of A.json: scores across training checkpoints, read from the T.h5
 * written by `gradbrain trajectory` (layout in train.h), with each score's half-time (the
 * iteration at which it first reaches half its final value). */
#include <math.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "analyze_internal.h"
#include "gradbrain/arena.h"
#include "gradbrain/h5.h"

static cJSON *numbers(const double *v, int64_t n) {
  cJSON *a = cJSON_CreateArray();
  for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
  return a;
}

/* The training run's curves (/training/ of T.h5, from the checkpoint history), or NULL. */
static cJSON *training_curves(gb_h5 *f) {
  static const char *KEY[] = {"iteration", "loss", "dino", "teacher_entropy", "teacher_batch_entropy", "knn_iteration",
                              "knn"};
  if (!gb_h5_exists(f, "/training/iteration")) return NULL;
  cJSON *o = cJSON_CreateObject();
  for (size_t q = 0; q < sizeof KEY / sizeof KEY[0]; q++) {
    char name[64];
    snprintf(name, sizeof name, "/training/%s", KEY[q]);
    double *v = NULL;
    int nd;
    int64_t sh[GB_H5_MAXDIM];
    if (gb_h5_exists(f, name) && gb_h5_read_f64(f, name, &v, &nd, sh) == GB_OK && nd == 1)
      cJSON_AddItemToObject(o, KEY[q], numbers(v, sh[0]));
    gb_free(v);
  }
  return o;
}

gb_status an_trajectory(const char *path, cJSON *root) {
  gb_h5 *f = NULL;
  GB_TRY(gb_h5_open(path, &f));
  double *x = NULL;
  int nd;
  int64_t shp[GB_H5_MAXDIM];
  gb_status st = gb_h5_read_f64(f, "/iterations", &x, &nd, shp);
  if (st == GB_OK && (nd != 1 || shp[0] < 1))
    st = gb_fail(GB_ERR_FORMAT, "%s: /iterations must be a non-empty 1-D array (is this a `gradbrain trajectory` file?)", path);
  int64_t n = st == GB_OK ? shp[0] : 0;
  int all_positive = 1;
  for (int64_t i = 0; i < n; i++) all_positive &= x[i] > 0;
  cJSON *t = cJSON_CreateObject();
  cJSON *series = cJSON_CreateObject(), *half = cJSON_CreateObject(), *per_layer = cJSON_CreateObject();
  const char *models[4] = {"forward", "signal", "joint", "residual"};
  char **layers = NULL;
  int64_t nl = 0;
  if (st == GB_OK) st = gb_h5_read_strings(f, "/layers", &layers, &nl);
  for (int m = 0; m < 4 && st == GB_OK; m++) {
    char name[256];
    snprintf(name, sizeof name, "/%s/mean_all", models[m]);
    if (m == 1 && !gb_h5_exists(f, name)) continue; /* the signal alone is optional */
    double *y = NULL;
    int64_t ys[GB_H5_MAXDIM];
    st = gb_h5_read_f64(f, name, &y, &nd, ys);
    if (st == GB_OK && ys[0] != n) st = gb_fail(GB_ERR_SHAPE, "%s: %s has %lld values for %lld checkpoints", path, name, (long long)ys[0], (long long)n);
    if (st == GB_OK) cJSON_AddItemToObject(series, models[m], numbers(y, n));
    gb_free(y);
    snprintf(name, sizeof name, "/%s/half_time_all", models[m]);
    double *h = NULL;
    if (st == GB_OK && gb_h5_exists(f, name) && gb_h5_read_f64(f, name, &h, &nd, ys) == GB_OK)
      cJSON_AddItemToObject(half, models[m], isfinite(h[0]) ? cJSON_CreateNumber(h[0]) : cJSON_CreateNull());
    gb_free(h);
    /* per layer means (C x L) */
    snprintf(name, sizeof name, "/%s/mean", models[m]);
    double *v = NULL;
    if (st == GB_OK && gb_h5_exists(f, name) && gb_h5_read_f64(f, name, &v, &nd, ys) == GB_OK && nd == 2 && ys[0] == n &&
        ys[1] == nl) {
      cJSON *pl = cJSON_CreateObject();
      double *col = gb_alloc((size_t)n * 8, "trajectory column");
      for (int64_t l = 0; col && l < nl; l++) {
        for (int64_t c = 0; c < n; c++) col[c] = v[c * nl + l];
        cJSON_AddItemToObject(pl, layers[l], numbers(col, n));
      }
      gb_free(col);
      cJSON_AddItemToObject(per_layer, models[m], pl);
    }
    gb_free(v);
  }
  gb_strings_free(layers, nl);
  if (st == GB_OK) {
    cJSON_AddItemToObject(t, "x", numbers(x, n));
    cJSON_AddStringToObject(t, "x_label", "training iteration");
    cJSON_AddBoolToObject(t, "x_log", all_positive && n > 1);
    cJSON_AddStringToObject(t, "y_label", "mean Pearson r over layers and targets");
    cJSON_AddItemToObject(t, "series", series);
    cJSON_AddItemToObject(t, "half_time", half);
    cJSON_AddStringToObject(t, "half_time_definition",
                            "first iteration at which the score reaches half its value at the last checkpoint (linear interpolation between checkpoints); null if the final value is <= 0");
    cJSON_AddItemToObject(t, "per_layer", per_layer);
    cJSON_AddStringToObject(t, "source", path);
    cJSON *tr = training_curves(f);
    if (tr) cJSON_AddItemToObject(t, "training", tr);
    cJSON_AddItemToObject(root, "trajectory", t);
  } else {
    cJSON_Delete(series), cJSON_Delete(half), cJSON_Delete(per_layer), cJSON_Delete(t);
  }
  gb_free(x);
  gb_h5_close(f);
  return st;
}
