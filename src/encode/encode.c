/* The encoding pipeline: folds x layers x models, streamed over target batches.
 *
 * Per layer, every fold's design matrices are prepared once (standardize, PCA, decompose)
 * for the three models; then target batches stream through: for each fold and model,
 * LOO (or inner K-fold) scores for every alpha, the per-target best alpha, test predictions
 * and Pearson r. */
#include "gradbrain/encode.h"
#include "gradbrain/gemm_x3.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/brain.h"
#include "gradbrain/h5.h"
#include "gradbrain/log.h"
#include "gradbrain/ridge.h"
#include "gradbrain/rng.h"

/* Models in order; a run scores a prefix: forward only (1), + signal and joint (3), + the
 * joint-null control (4): [forward, signal with its image rows shuffled], which measures what
 * adding that many uninformative dimensions does to r (the baseline a residual should beat). */
enum { M_FORWARD = 0, M_SIGNAL = 1, M_JOINT = 2, M_JOINT_NULL = 3, N_MODELS = 4 };
static const char *model_name[N_MODELS] = {"forward", "signal", "joint", "joint_null"};

void gb_encode_defaults(gb_encode_opts *o) {
  memset(o, 0, sizeof *o);
  o->layers = "all";
  o->base = "forward";
  o->add = "backprop";
  o->n_folds = 5;
  o->inner_k = 0;
  o->pca = 0;
  o->pca_power_iters = 4;
  o->targets_batch = 4096;
  o->seed = 0;
}

gb_status gb_parse_alphas(const char *spec, double **alphas, int *n) {
  *alphas = NULL;
  *n = 0;
  double lo, hi;
  int cnt;
  char tail;
  if (sscanf(spec, "%lf:%lf:%d%c", &lo, &hi, &cnt, &tail) == 3) {
    if (!(lo > 0) || !(hi >= lo) || cnt < 1 || cnt > 1000)
      return gb_fail(GB_ERR_ARG, "--alphas '%s': expected lo:hi:n with 0 < lo <= hi and 1 <= n <= 1000", spec);
    double *a = gb_alloc((size_t)cnt * 8, "alphas");
    if (!a) return GB_ERR_NOMEM;
    for (int i = 0; i < cnt; i++)
      a[i] = cnt == 1 ? lo : pow(10.0, log10(lo) + (log10(hi) - log10(lo)) * i / (cnt - 1));
    *alphas = a;
    *n = cnt;
    return GB_OK;
  }
  int cap = 1;
  for (const char *p = spec; *p; p++) cap += *p == ',';
  double *a = gb_alloc((size_t)cap * 8, "alphas");
  if (!a) return GB_ERR_NOMEM;
  const char *p = spec;
  int k = 0;
  while (*p) {
    char *end;
    double v = strtod(p, &end);
    if (end == p || !(v > 0) || (*end && *end != ',')) {
      gb_free(a);
      return gb_fail(GB_ERR_ARG, "--alphas '%s': expected lo:hi:n or a comma list of positive numbers", spec);
    }
    a[k++] = v;
    p = *end ? end + 1 : end;
  }
  if (k == 0) {
    gb_free(a);
    return gb_fail(GB_ERR_ARG, "--alphas is empty");
  }
  *alphas = a;
  *n = k;
  return GB_OK;
}

/* One fold's prepared design for one model. */
typedef struct {
  gb_ridge_decomp d;         /* on the outer training rows (GCV) */
  float *Xte;                /* n_te x p */
  /* inner K-fold: decompositions and validation designs per inner fold */
  gb_ridge_decomp *inner_d;
  float **inner_Xval;
} model_fold;

typedef struct {
  int64_t n_tr, n_te;
  int64_t *tr, *te;          /* row indices */
  int64_t *inner_start, *inner_stop; /* inner folds over positions in tr */
  model_fold m[N_MODELS];
} fold;

/* The feature spaces of one layer, per fold: standardized (and PCA'd) train/test parts. */
static gb_status prepare_space(const float *X, int64_t p, const fold *f, int pca, int power_iters,
                               uint64_t seed, float **Ztr_out, float **Zte_out, int64_t *p_out) {
  double *mean = gb_alloc((size_t)p * 8, "feature means"), *scale = gb_alloc((size_t)p * 8, "feature scales");
  float *Ztr = gb_alloc((size_t)(f->n_tr * p) * 4, "standardized train features");
  float *Zte = gb_alloc((size_t)(f->n_te * p) * 4, "standardized test features");
  if (!mean || !scale || !Ztr || !Zte) {
    gb_free(mean), gb_free(scale), gb_free(Ztr), gb_free(Zte);
    return GB_ERR_NOMEM;
  }
  gb_standardize_fit(X, p, f->tr, f->n_tr, mean, scale);
  gb_standardize_apply(X, p, f->tr, f->n_tr, mean, scale, Ztr);
  gb_standardize_apply(X, p, f->te, f->n_te, mean, scale, Zte);
  gb_free(mean);
  gb_free(scale);
  if (pca > 0) {
    int k = pca;
    if (k > p) k = (int)p;
    if (k > f->n_tr) k = (int)f->n_tr;
    float *C = gb_alloc((size_t)(p * k) * 4, "PCA components");
    float *Ptr = gb_alloc((size_t)(f->n_tr * k) * 4, "PCA train scores");
    float *Pte = gb_alloc((size_t)(f->n_te * k) * 4, "PCA test scores");
    gb_status st = (!C || !Ptr || !Pte) ? GB_ERR_NOMEM : gb_pca_randomized(Ztr, f->n_tr, p, k, power_iters, seed, C);
    if (st == GB_OK) {
      gb_sgemm('N', 'N', (int)f->n_tr, k, (int)p, 1.f, Ztr, (int)p, C, k, 0.f, Ptr, k);
      gb_sgemm('N', 'N', (int)f->n_te, k, (int)p, 1.f, Zte, (int)p, C, k, 0.f, Pte, k);
    }
    gb_free(C);
    gb_free(Ztr);
    gb_free(Zte);
    if (st != GB_OK) {
      gb_free(Ptr), gb_free(Pte);
      return st;
    }
    Ztr = Ptr;
    Zte = Pte;
    p = k;
  }
  *Ztr_out = Ztr;
  *Zte_out = Zte;
  *p_out = p;
  return GB_OK;
}

static float *hconcat(const float *A, int64_t pa, const float *B, int64_t pb, int64_t n) {
  float *C = gb_alloc((size_t)(n * (pa + pb)) * 4, "joint design");
  if (!C) return NULL;
  for (int64_t i = 0; i < n; i++) {
    memcpy(C + i * (pa + pb), A + i * pa, (size_t)pa * 4);
    memcpy(C + i * (pa + pb) + pa, B + i * pb, (size_t)pb * 4);
  }
  return C;
}

static void model_fold_free(model_fold *m, int inner_k) {
  gb_ridge_decomp_free(&m->d);
  gb_free(m->Xte);
  if (m->inner_d) {
    for (int k = 0; k < inner_k; k++) {
      gb_ridge_decomp_free(&m->inner_d[k]);
      gb_free(m->inner_Xval[k]);
    }
    free(m->inner_d);
    free(m->inner_Xval);
  }
  memset(m, 0, sizeof *m);
}

/* Prepares model m of fold f from its training design Xtr (n_tr x p) and test design. */
static gb_status prepare_model(model_fold *m, const fold *f, float *Xtr, float *Xte, int64_t p, int inner_k) {
  m->Xte = Xte;
  GB_TRY(gb_ridge_decompose(Xtr, f->n_tr, p, &m->d));
  if (inner_k >= 2) {
    m->inner_d = calloc((size_t)inner_k, sizeof *m->inner_d);
    m->inner_Xval = calloc((size_t)inner_k, sizeof *m->inner_Xval);
    if (!m->inner_d || !m->inner_Xval) return gb_fail(GB_ERR_NOMEM, "out of memory for inner folds");
    for (int k = 0; k < inner_k; k++) {
      int64_t v0 = f->inner_start[k], v1 = f->inner_stop[k], nv = v1 - v0, nt = f->n_tr - nv;
      float *Xi = gb_alloc((size_t)(nt * p) * 4, "inner training design");
      m->inner_Xval[k] = gb_alloc((size_t)(nv * p) * 4, "inner validation design");
      if (!Xi || !m->inner_Xval[k]) {
        gb_free(Xi);
        return GB_ERR_NOMEM;
      }
      memcpy(Xi, Xtr, (size_t)(v0 * p) * 4);
      memcpy(Xi + v0 * p, Xtr + v1 * p, (size_t)((f->n_tr - v1) * p) * 4);
      memcpy(m->inner_Xval[k], Xtr + v0 * p, (size_t)(nv * p) * 4);
      gb_status st = gb_ridge_decompose(Xi, nt, p, &m->inner_d[k]);
      gb_free(Xi);
      GB_TRY(st);
    }
  }
  return GB_OK;
}

/* Reads one feature dataset and checks it. */
static gb_status read_features(gb_h5 *fh, const char *space, const char *layer, int64_t n_expect,
                               float **X, int64_t *p) {
  char name[512];
  snprintf(name, sizeof name, "/%s/%s", space, layer);
  if (!gb_h5_exists(fh, name))
    return gb_fail(GB_ERR_FORMAT, "%s: dataset %s not found (feature space '%s' has no layer '%s')", gb_h5_path(fh), name, space, layer);
  int nd;
  int64_t shape[GB_H5_MAXDIM];
  GB_TRY(gb_h5_read_f32(fh, name, X, &nd, shape));
  gb_status st = GB_OK;
  if (nd != 2) st = gb_fail(GB_ERR_SHAPE, "%s: %s has %d dimensions (expected 2: images x features)", gb_h5_path(fh), name, nd);
  else if (shape[0] != n_expect)
    st = gb_fail(GB_ERR_SHAPE, "%s: %s has %lld rows (expected %lld, the number of images)", gb_h5_path(fh), name, (long long)shape[0], (long long)n_expect);
  else if (shape[1] < 1) st = gb_fail(GB_ERR_SHAPE, "%s: %s has no features", gb_h5_path(fh), name);
  for (int64_t i = 0; st == GB_OK && i < shape[0] * shape[1]; i++)
    if (!isfinite((*X)[i]))
      st = gb_fail(GB_ERR_VALUE, "%s: %s has a non-finite value (%g) at row %lld, column %lld", gb_h5_path(fh), name, (double)(*X)[i], (long long)(i / shape[1]), (long long)(i % shape[1]));
  if (st != GB_OK) {
    gb_free(*X);
    *X = NULL;
    return st;
  }
  *p = shape[1];
  return GB_OK;
}

typedef struct {
  float *r_folds[N_MODELS]; /* K x L x T */
  float *alpha[N_MODELS];   /* K x L x T */
  float *pred[N_MODELS];    /* L x N x T out-of-fold predictions (only with save_predictions) */
  int64_t N;
} results;

/* Fits and scores one target batch (Y: N x w, columns c0..) for every fold and model. */
static gb_status score_batch(const gb_encode_opts *o, fold *folds, int K, int n_models, const float *Y,
                             int64_t w, int64_t c0, int64_t T, int L, int layer, results *res) {
  int n_alpha = o->n_alpha;
  gb_status st = GB_OK;
  for (int f = 0; f < K && st == GB_OK; f++) {
    fold *fd = &folds[f];
    int64_t ntr = fd->n_tr, nte = fd->n_te;
    float *Yc = gb_alloc((size_t)(ntr * w) * 4, "centered training targets");
    float *Yte = gb_alloc((size_t)(nte * w) * 4, "test targets");
    double *ymean = gb_calloc((size_t)w * 8, "target means");
    double *score = gb_alloc((size_t)(n_alpha * w) * 8, "alpha scores");
    int *best = gb_alloc((size_t)w * sizeof(int), "best alphas");
    float *pred = gb_alloc((size_t)(nte * w) * 4, "predictions");
    float *rr = gb_alloc((size_t)w * 4, "correlations");
    float *Z = NULL;
    if (!Yc || !Yte || !ymean || !score || !best || !pred || !rr) st = GB_ERR_NOMEM;
    for (int64_t i = 0; st == GB_OK && i < ntr; i++)
      for (int64_t t = 0; t < w; t++) ymean[t] += Y[fd->tr[i] * w + t];
    for (int64_t t = 0; st == GB_OK && t < w; t++) ymean[t] /= (double)ntr;
    for (int64_t i = 0; st == GB_OK && i < ntr; i++)
      for (int64_t t = 0; t < w; t++) Yc[i * w + t] = (float)(Y[fd->tr[i] * w + t] - ymean[t]);
    for (int64_t i = 0; st == GB_OK && i < nte; i++) memcpy(Yte + i * w, Y + fd->te[i] * w, (size_t)w * 4);
    for (int mi = 0; mi < n_models && st == GB_OK; mi++) {
      model_fold *m = &fd->m[mi];
      Z = gb_alloc((size_t)((m->d.r ? m->d.r : 1) * w) * 4, "U^T Y");
      if (!Z) {
        st = GB_ERR_NOMEM;
        break;
      }
      if (o->inner_k >= 2) {
        /* inner K-fold: summed validation squared error per alpha */
        memset(score, 0, (size_t)(n_alpha * w) * 8);
        for (int k = 0; k < o->inner_k && st == GB_OK; k++) {
          int64_t v0 = fd->inner_start[k], v1 = fd->inner_stop[k], nv = v1 - v0, nt = ntr - nv;
          float *Yi = gb_alloc((size_t)(nt * w) * 4, "inner targets"), *Yv = gb_alloc((size_t)(nv * w) * 4, "inner validation targets");
          double *im = gb_calloc((size_t)w * 8, "inner means");
          float *Zi = gb_alloc((size_t)((m->inner_d[k].r ? m->inner_d[k].r : 1) * w) * 4, "inner U^T Y");
          if (!Yi || !Yv || !im || !Zi) st = GB_ERR_NOMEM;
          if (st == GB_OK) {
            /* Yc rows are centered over all outer-train rows; re-center over inner-train rows */
            int64_t q = 0;
            for (int64_t i = 0; i < ntr; i++) {
              if (i >= v0 && i < v1) continue;
              for (int64_t t = 0; t < w; t++) im[t] += Yc[i * w + t];
              q++;
            }
            for (int64_t t = 0; t < w; t++) im[t] /= (double)q;
            q = 0;
            for (int64_t i = 0; i < ntr; i++) {
              if (i >= v0 && i < v1) continue;
              for (int64_t t = 0; t < w; t++) Yi[q * w + t] = (float)(Yc[i * w + t] - im[t]);
              q++;
            }
            memcpy(Yv, Yc + v0 * w, (size_t)(nv * w) * 4);
            st = gb_ridge_coef(&m->inner_d[k], Yi, w, Zi);
          }
          if (st == GB_OK) st = gb_ridge_val_sse(&m->inner_d[k], m->inner_Xval[k], nv, Zi, w, o->alphas, n_alpha, Yv, im, score);
          gb_free(Yi), gb_free(Yv), gb_free(im), gb_free(Zi);
        }
        /* Z for the final refit on all outer-training rows */
        if (st == GB_OK) {
          st = gb_ridge_coef(&m->d, Yc, w, Z);
        }
      } else {
        st = gb_ridge_loo(&m->d, Yc, w, o->alphas, n_alpha, score, Z);
      }
      if (st == GB_OK) {
        gb_argmin_alpha(score, n_alpha, w, best);
        st = gb_ridge_predict(&m->d, m->Xte, nte, Z, w, o->alphas, best, NULL, pred);
      }
      if (st == GB_OK) {
        gb_pearson_columns(pred, Yte, nte, w, rr);
        int64_t base = ((int64_t)f * L + layer) * T + c0;
        memcpy(res->r_folds[mi] + base, rr, (size_t)w * 4);
        for (int64_t t = 0; t < w; t++) res->alpha[mi][base + t] = (float)o->alphas[best[t]];
        if (res->pred[mi])
          for (int64_t i = 0; i < nte; i++)
            for (int64_t t = 0; t < w; t++)
              res->pred[mi][((int64_t)layer * res->N + fd->te[i]) * T + c0 + t] = (float)(pred[i * w + t] + ymean[t]);
      }
      gb_free(Z);
      Z = NULL;
    }
    gb_free(Yc), gb_free(Yte), gb_free(ymean), gb_free(score), gb_free(best), gb_free(pred), gb_free(rr);
  }
  return st;
}

static gb_status read_lines(const char *path, char ***out, int64_t *n) {
  FILE *fp = fopen(path, "r");
  if (!fp) return gb_fail(GB_ERR_IO, "cannot open --test-ids file %s", path);
  char **v = NULL;
  int64_t cnt = 0, cap = 0;
  char line[4096];
  while (fgets(line, sizeof line, fp)) {
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
    if (!l) continue;
    if (cnt == cap) {
      cap = cap ? 2 * cap : 64;
      char **nv = realloc(v, (size_t)cap * sizeof *nv);
      if (!nv) break;
      v = nv;
    }
    v[cnt++] = strdup(line);
  }
  fclose(fp);
  *out = v;
  *n = cnt;
  return GB_OK;
}

/* Builds the outer folds (and inner folds inside each training set). */
static gb_status make_folds(const gb_encode_opts *o, int64_t N, char **ids, fold **out, int *K_out,
                            int64_t *starts, int64_t *stops) {
  int K = o->test_ids_path ? 1 : o->n_folds;
  fold *folds = calloc((size_t)K, sizeof *folds);
  if (!folds) return gb_fail(GB_ERR_NOMEM, "out of memory");
  char *is_test = calloc((size_t)N, 1);
  gb_status st = GB_OK;
  if (o->test_ids_path) {
    if (!ids) st = gb_fail(GB_ERR_ARG, "--test-ids needs image ids: the features file has no /image_ids");
    char **tid = NULL;
    int64_t nt = 0;
    if (st == GB_OK) st = read_lines(o->test_ids_path, &tid, &nt);
    for (int64_t k = 0; st == GB_OK && k < nt; k++) {
      int64_t hit = -1;
      for (int64_t i = 0; i < N; i++)
        if (!strcmp(ids[i], tid[k])) {
          hit = i;
          break;
        }
      if (hit < 0) st = gb_fail(GB_ERR_FORMAT, "%s line %lld: id '%s' is not among the features' /image_ids", o->test_ids_path, (long long)k + 1, tid[k]);
      else is_test[hit] = 1;
    }
    gb_strings_free(tid, nt);
    starts[0] = stops[0] = -1;
  } else {
    st = gb_kfold_bounds(N, K, starts, stops);
  }
  for (int f = 0; f < K && st == GB_OK; f++) {
    fold *fd = &folds[f];
    fd->tr = malloc((size_t)N * 8);
    fd->te = malloc((size_t)N * 8);
    for (int64_t i = 0; i < N; i++) {
      int test = o->test_ids_path ? is_test[i] : (i >= starts[f] && i < stops[f]);
      if (test) fd->te[fd->n_te++] = i;
      else fd->tr[fd->n_tr++] = i;
    }
    if (fd->n_te < 3 || fd->n_tr < 3) {
      st = gb_fail(GB_ERR_ARG, "fold %d has %lld training and %lld test images (need at least 3 of each)", f, (long long)fd->n_tr, (long long)fd->n_te);
      break;
    }
    if (o->inner_k >= 2) {
      fd->inner_start = malloc((size_t)o->inner_k * 8);
      fd->inner_stop = malloc((size_t)o->inner_k * 8);
      st = gb_kfold_bounds(fd->n_tr, o->inner_k, fd->inner_start, fd->inner_stop);
    }
  }
  free(is_test);
  *out = folds;
  *K_out = K;
  return st;
}

static void free_folds(fold *folds, int K, int inner_k) {
  if (!folds) return;
  for (int f = 0; f < K; f++) {
    for (int m = 0; m < N_MODELS; m++) model_fold_free(&folds[f].m[m], inner_k);
    free(folds[f].tr), free(folds[f].te), free(folds[f].inner_start), free(folds[f].inner_stop);
  }
  free(folds);
}

/* Splits "a,b,c" or "all" into layer names present under /<base>. */
static gb_status pick_layers(gb_h5 *fh, const gb_encode_opts *o, char ***names, int64_t *n) {
  char grp[256];
  snprintf(grp, sizeof grp, "/%s", o->base);
  if (!gb_h5_exists(fh, grp))
    return gb_fail(GB_ERR_FORMAT, "%s: group %s not found (the base feature space; datasets should be /%s/<layer>)", gb_h5_path(fh), grp, o->base);
  char **all = NULL;
  int64_t na = 0;
  GB_TRY(gb_h5_list(fh, grp, &all, &na));
  if (na == 0) {
    gb_strings_free(all, na);
    return gb_fail(GB_ERR_FORMAT, "%s: group %s has no layers", gb_h5_path(fh), grp);
  }
  if (!strcmp(o->layers, "all")) {
    *names = all;
    *n = na;
    return GB_OK;
  }
  char *spec = strdup(o->layers);
  char **sel = calloc((size_t)na + 64, sizeof *sel);
  int64_t k = 0;
  gb_status st = GB_OK;
  for (char *tok = strtok(spec, ","); tok && st == GB_OK; tok = strtok(NULL, ",")) {
    int found = 0;
    for (int64_t i = 0; i < na; i++) found |= !strcmp(all[i], tok);
    if (!found) st = gb_fail(GB_ERR_ARG, "--layers: '%s' is not a layer of %s (it has %s ... %s)", tok, gb_h5_path(fh), all[0], all[na - 1]);
    else if (k < na + 63) sel[k++] = strdup(tok);
  }
  free(spec);
  gb_strings_free(all, na);
  if (st != GB_OK) {
    gb_strings_free(sel, k);
    return st;
  }
  *names = sel;
  *n = k;
  return GB_OK;
}

static double nanmean_f(const float *x, int64_t n, int64_t *n_nan) {
  double s = 0;
  int64_t c = 0;
  for (int64_t i = 0; i < n; i++)
    if (!isnan(x[i])) {
      s += x[i];
      c++;
    }
  if (n_nan) *n_nan = n - c;
  return c ? s / (double)c : NAN;
}

static gb_status write_outputs(const gb_encode_opts *o, char **layers, char **ids, int L, int K, int n_models,
                               const gb_brain *b, int64_t T, results *res, const int64_t *starts,
                               const int64_t *stops, int64_t n_images, int64_t n_const, int64_t n_nonfinite,
                               gb_h5 *bh) {
  gb_h5 *out = NULL;
  GB_TRY(gb_h5_create(o->out_path, o->overwrite, &out));
  gb_status st = gb_h5_write_strings(out, "/layers", (const char *const *)layers, L);
  /* image ids in features order: the row order of /<model>/pred */
  if (st == GB_OK && ids) st = gb_h5_write_strings(out, "/image_ids", (const char *const *)ids, n_images);
  int64_t shp[5];
  int nd_t = b->ndim == 3 ? 2 : 1;
  int64_t tshape[2] = {b->ndim == 3 ? b->shape[1] : T, b->ndim == 3 ? b->shape[2] : 0};
  float *mean_r[N_MODELS] = {0};
  for (int mi = 0; mi < n_models && st == GB_OK; mi++) {
    mean_r[mi] = gb_alloc((size_t)(L * T) * 4, "mean r");
    if (!mean_r[mi]) {
      st = GB_ERR_NOMEM;
      break;
    }
    for (int64_t q = 0; q < L * T; q++) {
      double s = 0;
      for (int f = 0; f < K; f++) s += res->r_folds[mi][(int64_t)f * L * T + q];
      mean_r[mi][q] = (float)(s / K);
    }
    char name[64];
    shp[0] = L;
    memcpy(shp + 1, tshape, sizeof(int64_t) * (size_t)nd_t);
    snprintf(name, sizeof name, "/%s/r", model_name[mi]);
    st = gb_h5_write_f32(out, name, mean_r[mi], 1 + nd_t, shp);
    shp[0] = K;
    shp[1] = L;
    memcpy(shp + 2, tshape, sizeof(int64_t) * (size_t)nd_t);
    snprintf(name, sizeof name, "/%s/r_folds", model_name[mi]);
    if (st == GB_OK) st = gb_h5_write_f32(out, name, res->r_folds[mi], 2 + nd_t, shp);
    snprintf(name, sizeof name, "/%s/alpha", model_name[mi]);
    if (st == GB_OK) st = gb_h5_write_f32(out, name, res->alpha[mi], 2 + nd_t, shp);
    if (st == GB_OK && res->pred[mi]) {
      shp[0] = L;
      shp[1] = n_images;
      memcpy(shp + 2, tshape, sizeof(int64_t) * (size_t)nd_t);
      snprintf(name, sizeof name, "/%s/pred", model_name[mi]);
      st = gb_h5_write_f32(out, name, res->pred[mi], 2 + nd_t, shp);
    }
  }
  if (st == GB_OK && n_models >= 3) {
    float *resid = gb_alloc((size_t)(L * T) * 4, "residual");
    if (!resid) st = GB_ERR_NOMEM;
    for (int64_t q = 0; st == GB_OK && q < L * T; q++) resid[q] = mean_r[M_JOINT][q] - mean_r[M_FORWARD][q];
    shp[0] = L;
    memcpy(shp + 1, tshape, sizeof(int64_t) * (size_t)nd_t);
    if (st == GB_OK) st = gb_h5_write_f32(out, "/residual", resid, 1 + nd_t, shp);
    gb_free(resid);
  }
  /* copy MEG/fMRI metadata that analyses need */
  if (st == GB_OK && bh) {
    const char *meta[] = {"/times", "/ch_names", "/roi", "/roi_names", "/roi_rank"};
    for (int i = 0; i < 5 && st == GB_OK; i++) {
      if (!gb_h5_exists(bh, meta[i])) continue;
      char **s = NULL;
      int64_t ns = 0;
      if (gb_h5_read_strings(bh, meta[i], &s, &ns) == GB_OK) {
        st = gb_h5_write_strings(out, meta[i], (const char *const *)s, ns);
        gb_strings_free(s, ns);
      } else {
        float *v = NULL;
        int nd;
        int64_t sh[GB_H5_MAXDIM];
        if (gb_h5_read_f32(bh, meta[i], &v, &nd, sh) == GB_OK) st = gb_h5_write_f32(out, meta[i], v, nd, sh);
        gb_free(v);
      }
    }
  }
  /* provenance */
  char buf[256];
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "command", o->command_line ? o->command_line : "");
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "version", GB_VERSION);
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "features", o->features_path);
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "brain", o->brain_path);
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "base", o->base);
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "signal", n_models >= 3 ? o->add : "none");
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "defaults_applied", o->defaults_applied ? o->defaults_applied : "");
  int64_t nf = K;
  if (st == GB_OK) st = gb_h5_attr_set_i64(out, "/", "n_folds", &nf, 1);
  if (st == GB_OK && !o->test_ids_path) st = gb_h5_attr_set_i64(out, "/", "fold_starts", starts, K);
  if (st == GB_OK && !o->test_ids_path) st = gb_h5_attr_set_i64(out, "/", "fold_stops", stops, K);
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "test_ids", o->test_ids_path ? o->test_ids_path : "");
  if (st == GB_OK) st = gb_h5_attr_set_f64(out, "/", "alphas", o->alphas, o->n_alpha);
  snprintf(buf, sizeof buf, o->inner_k >= 2 ? "kfold:%d" : "gcv", o->inner_k);
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "inner", buf);
  int64_t v64 = o->pca;
  if (st == GB_OK) st = gb_h5_attr_set_i64(out, "/", "pca", &v64, 1);
  v64 = (int64_t)o->seed;
  if (st == GB_OK) st = gb_h5_attr_set_i64(out, "/", "seed", &v64, 1);
  if (st == GB_OK) st = gb_h5_attr_set_i64(out, "/", "n_images", &n_images, 1);
  if (st == GB_OK) st = gb_h5_attr_set_i64(out, "/", "n_targets", &T, 1);
  if (st == GB_OK) st = gb_h5_attr_set_i64(out, "/", "constant_targets", &n_const, 1);
  if (st == GB_OK) st = gb_h5_attr_set_i64(out, "/", "nonfinite_targets", &n_nonfinite, 1);
  if (st == GB_OK && n_models == 4)
    st = gb_h5_attr_set_str(out, "/", "joint_null", "joint model with the signal's image rows shuffled (one permutation seeded by --seed, same folds and alphas): the r that adding as many uninformative dimensions gives");
  if (st == GB_OK)
    st = gb_h5_attr_set_str(out, "/", "selection_products",
                            gb_x3_available() ? "amx-bf16x3: the alpha-ranking products (LOO / validation fits through the shrinkage basis) on AMX tiles, each float32 operand split into two bfloat16 terms (~1e-5 relative per term); coefficients and predictions in float32 SGEMM; GB_AMX=0 selects float32 throughout"
                                              : "sgemm: float32 throughout");
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "r_definition", "Pearson r between test-fold predictions and brain data, per target, mean over outer folds (NaN if a fold's test column or prediction is constant)");
  time_t now = time(NULL);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  if (st == GB_OK) st = gb_h5_attr_set_str(out, "/", "created", buf);

  /* JSON summary */
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "scores", o->out_path);
  cJSON_AddStringToObject(j, "features", o->features_path);
  cJSON_AddStringToObject(j, "brain", o->brain_path);
  cJSON_AddStringToObject(j, "signal", n_models >= 3 ? o->add : "none");
  cJSON_AddStringToObject(j, "version", GB_VERSION);
  cJSON_AddStringToObject(j, "command", o->command_line ? o->command_line : "");
  cJSON_AddNumberToObject(j, "n_images", (double)n_images);
  cJSON_AddNumberToObject(j, "n_targets", (double)T);
  cJSON_AddNumberToObject(j, "n_folds", K);
  cJSON_AddNumberToObject(j, "constant_targets", (double)n_const);
  cJSON_AddNumberToObject(j, "nonfinite_targets", (double)n_nonfinite);
  cJSON *arr = cJSON_AddArrayToObject(j, "layers");
  for (int l = 0; l < L && st == GB_OK; l++) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "layer", layers[l]);
    int64_t nnan = 0;
    for (int mi = 0; mi < n_models; mi++) {
      char key[64];
      snprintf(key, sizeof key, "%s_mean_r", model_name[mi]);
      double v = nanmean_f(mean_r[mi] + (int64_t)l * T, T, mi == 0 ? &nnan : NULL);
      cJSON_AddItemToObject(e, key, isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v));
    }
    if (n_models >= 3) {
      double s = 0;
      int64_t c = 0;
      for (int64_t t = 0; t < T; t++) {
        double d = (double)mean_r[M_JOINT][l * T + t] - mean_r[M_FORWARD][l * T + t];
        if (!isnan(d)) s += d, c++;
      }
      cJSON_AddItemToObject(e, "residual_mean", c ? cJSON_CreateNumber(s / (double)c) : cJSON_CreateNull());
    }
    cJSON_AddNumberToObject(e, "nan_targets", (double)nnan);
    cJSON_AddItemToArray(arr, e);
  }
  char *text = cJSON_Print(j);
  cJSON_Delete(j);
  for (int mi = 0; mi < N_MODELS; mi++) gb_free(mean_r[mi]);
  char jpath[4200], jtmp[4300];
  snprintf(jpath, sizeof jpath, "%s", o->out_path);
  char *dot = strrchr(jpath, '.');
  char *slash = strrchr(jpath, '/');
  if (dot && (!slash || dot > slash)) strcpy(dot, ".json");
  else strcat(jpath, ".json");
  snprintf(jtmp, sizeof jtmp, "%s.tmp", jpath);
  if (st == GB_OK) {
    FILE *fp = fopen(jtmp, "w");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) st = gb_fail(GB_ERR_IO, "cannot write %s", jtmp);
  }
  free(text);
  if (st == GB_OK) st = gb_h5_commit(out);
  else gb_h5_close(out);
  if (st == GB_OK && rename(jtmp, jpath) != 0) st = gb_fail(GB_ERR_IO, "cannot rename %s", jtmp);
  if (st != GB_OK) remove(jtmp);
  return st;
}

gb_status gb_encode_run(const gb_encode_opts *o) {
  gb_status st = GB_OK;
  gb_h5 *fh = NULL;
  gb_brain brain = {0};
  char **ids = NULL, **layers = NULL;
  int64_t N = 0, n_ids = 0, L = 0;
  fold *folds = NULL;
  int K = 0;
  results res = {{0}, {0}, {0}, 0};
  float *Y = NULL;
  int n_models = (o->add && strcmp(o->add, "none") != 0) ? (o->joint_null ? 4 : 3) : 1;
  int64_t *perm = NULL;
  int64_t starts[64], stops[64];
  if (!o->alphas || o->n_alpha < 1) return gb_fail(GB_ERR_ARG, "no alphas given");
  if (!o->test_ids_path && (o->n_folds < 2 || o->n_folds > 64)) return gb_fail(GB_ERR_ARG, "--cv %d: expected 2..64 folds", o->n_folds);
  if (o->inner_k == 1 || o->inner_k > 64) return gb_fail(GB_ERR_ARG, "--inner kfold:%d: expected 2..64 inner folds", o->inner_k);
  {
    /* refuse early, before any work, if the output exists */
    FILE *ex = o->overwrite ? NULL : fopen(o->out_path, "r");
    if (ex) {
      fclose(ex);
      return gb_fail(GB_ERR_EXISTS, "output %s already exists (remove it or pass --overwrite)", o->out_path);
    }
  }
  GB_TRY(gb_h5_open(o->features_path, &fh));
  st = pick_layers(fh, o, &layers, &L);
  if (st != GB_OK) goto done;
  {
    int nd;
    int64_t shape[GB_H5_MAXDIM];
    char name[512];
    snprintf(name, sizeof name, "/%s/%s", o->base, layers[0]);
    st = gb_h5_shape(fh, name, &nd, shape);
    if (st != GB_OK) goto done;
    N = shape[0];
  }
  if (gb_h5_exists(fh, "/image_ids")) {
    st = gb_h5_read_strings(fh, "/image_ids", &ids, &n_ids);
    if (st == GB_OK && n_ids != N)
      st = gb_fail(GB_ERR_SHAPE, "%s: /image_ids has %lld entries but /%s/%s has %lld rows", o->features_path, (long long)n_ids, o->base, layers[0], (long long)N);
    if (st != GB_OK) goto done;
  }
  if (n_models >= 3) {
    char grp[256];
    snprintf(grp, sizeof grp, "/%s", o->add);
    if (!gb_h5_exists(fh, grp)) {
      st = gb_fail(GB_ERR_FORMAT, "%s: signal group %s not found (--add %s; use --add none for forward only)", o->features_path, grp, o->add);
      goto done;
    }
  }
  st = gb_brain_open(o->brain_path, ids, N, &brain);
  if (st != GB_OK) goto done;
  st = make_folds(o, N, ids, &folds, &K, starts, stops);
  if (st != GB_OK) goto done;
  int64_t T = brain.n_targets;
  res.N = N;
  if (o->save_predictions && (double)(L * N * T) * 4 * n_models > 2e9)
    gb_warn("--save-predictions keeps %.1f GB of predictions in memory", (double)(L * N * T) * 4 * n_models / 1e9);
  for (int mi = 0; mi < n_models; mi++) {
    res.r_folds[mi] = gb_alloc((size_t)(K * L * T) * 4, "fold scores");
    res.alpha[mi] = gb_alloc((size_t)(K * L * T) * 4, "chosen alphas");
    if (o->save_predictions) {
      res.pred[mi] = gb_alloc((size_t)(L * N * T) * 4, "out-of-fold predictions (--save-predictions)");
      if (res.pred[mi])
        for (int64_t q = 0; q < L * N * T; q++) res.pred[mi][q] = NAN;
    }
    if (!res.r_folds[mi] || !res.alpha[mi] || (o->save_predictions && !res.pred[mi])) {
      st = GB_ERR_NOMEM;
      goto done;
    }
  }
  int64_t B = o->targets_batch > 0 ? o->targets_batch : 4096;
  if (B > T) B = T;
  Y = gb_alloc((size_t)(N * B) * 4, "brain batch");
  if (!Y) {
    st = GB_ERR_NOMEM;
    goto done;
  }
  gb_info("encode: %lld images, %lld targets%s, %lld layers, %d folds, %d alphas, models: %s%s; batches of %lld targets",
          (long long)N, (long long)T, brain.ndim == 3 ? " (channels x times)" : "", (long long)L, K, o->n_alpha,
          n_models >= 3 ? "forward, signal=" : "forward", n_models >= 3 ? o->add : "", (long long)B);
  if (n_models == 4) {
    /* one seeded permutation of the images for the joint-null control, the same for all layers */
    perm = malloc((size_t)N * sizeof *perm);
    if (!perm) {
      st = gb_fail(GB_ERR_NOMEM, "out of memory");
      goto done;
    }
    gb_rng pr;
    gb_rng_derive(&pr, o->seed, 0x6e756c6cULL);
    for (int64_t i = 0; i < N; i++) perm[i] = i;
    for (int64_t i = N - 1; i > 0; i--) {
      int64_t j = (int64_t)gb_rng_below(&pr, (uint64_t)(i + 1)), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
  }
  int64_t n_const = 0, n_nonfinite = 0;
  gb_progress prog;
  int64_t nbatch = (T + B - 1) / B;
  gb_progress_start(&prog, "encode", L * nbatch, "batches");
  for (int64_t l = 0; l < L && st == GB_OK; l++) {
    float *Xf = NULL, *Xs = NULL;
    int64_t pf = 0, ps = 0;
    st = read_features(fh, o->base, layers[l], N, &Xf, &pf);
    if (st == GB_OK && n_models >= 3) st = read_features(fh, o->add, layers[l], N, &Xs, &ps);
    float *Xn = NULL; /* shuffled signal rows for the joint-null control */
    if (st == GB_OK && n_models == 4) {
      Xn = gb_alloc((size_t)(N * ps) * 4, "shuffled signal features");
      if (!Xn) st = GB_ERR_NOMEM;
      for (int64_t i = 0; st == GB_OK && i < N; i++) memcpy(Xn + i * ps, Xs + perm[i] * ps, (size_t)ps * 4);
    }
    for (int f = 0; f < K && st == GB_OK; f++) {
      fold *fd = &folds[f];
      float *Ftr = NULL, *Fte = NULL, *Str = NULL, *Ste = NULL;
      int64_t qf = 0, qs = 0;
      uint64_t sd = o->seed * 1000003u + (uint64_t)(l * 64 + f) * 2;
      st = prepare_space(Xf, pf, fd, o->pca, o->pca_power_iters, sd, &Ftr, &Fte, &qf);
      if (st == GB_OK && n_models >= 3) st = prepare_space(Xs, ps, fd, o->pca, o->pca_power_iters, sd + 1, &Str, &Ste, &qs);
      if (st == GB_OK && n_models == 4) {
        float *Ntr = NULL, *Nte = NULL;
        int64_t qn = 0;
        st = prepare_space(Xn, ps, fd, o->pca, o->pca_power_iters, sd + 1, &Ntr, &Nte, &qn);
        float *Jtr = st == GB_OK ? hconcat(Ftr, qf, Ntr, qn, fd->n_tr) : NULL;
        float *Jte = st == GB_OK ? hconcat(Fte, qf, Nte, qn, fd->n_te) : NULL;
        if (st == GB_OK && (!Jtr || !Jte)) st = GB_ERR_NOMEM;
        if (st == GB_OK) st = prepare_model(&fd->m[M_JOINT_NULL], fd, Jtr, Jte, qf + qn, o->inner_k);
        else gb_free(Jte);
        gb_free(Jtr), gb_free(Ntr), gb_free(Nte);
      }
      if (st == GB_OK && n_models >= 3) {
        float *Jtr = hconcat(Ftr, qf, Str, qs, fd->n_tr), *Jte = hconcat(Fte, qf, Ste, qs, fd->n_te);
        if (!Jtr || !Jte) st = GB_ERR_NOMEM;
        if (st == GB_OK) st = prepare_model(&fd->m[M_JOINT], fd, Jtr, Jte, qf + qs, o->inner_k);
        else gb_free(Jte);
        gb_free(Jtr);
        if (st == GB_OK) st = prepare_model(&fd->m[M_SIGNAL], fd, Str, Ste, qs, o->inner_k);
        gb_free(Str);
      }
      if (st == GB_OK) st = prepare_model(&fd->m[M_FORWARD], fd, Ftr, Fte, qf, o->inner_k);
      gb_free(Ftr);
    }
    gb_free(Xf);
    gb_free(Xs);
    gb_free(Xn);
    for (int64_t c0 = 0; c0 < T && st == GB_OK; c0 += B) {
      int64_t w = T - c0 < B ? T - c0 : B;
      st = gb_brain_read(&brain, c0, c0 + w, Y);
      if (st != GB_OK) break;
      /* non-finite targets: zeroed here, reported as NaN and counted */
      char *bad = calloc((size_t)w, 1);
      for (int64_t i = 0; i < N; i++)
        for (int64_t t = 0; t < w; t++)
          if (!isfinite(Y[i * w + t])) bad[t] = 1;
      for (int64_t t = 0; t < w; t++) {
        if (bad[t]) {
          for (int64_t i = 0; i < N; i++) Y[i * w + t] = 0;
          if (l == 0) n_nonfinite++;
        } else if (l == 0) {
          int cst = 1;
          for (int64_t i = 1; i < N && cst; i++) cst = Y[i * w + t] == Y[t];
          n_const += cst;
        }
      }
      st = score_batch(o, folds, K, n_models, Y, w, c0, T, (int)L, (int)l, &res);
      for (int mi = 0; mi < n_models && st == GB_OK; mi++)
        for (int f = 0; f < K; f++)
          for (int64_t t = 0; t < w; t++)
            if (bad[t]) res.r_folds[mi][((int64_t)f * L + l) * T + c0 + t] = NAN;
      free(bad);
      gb_progress_add(&prog, 1);
    }
    for (int f = 0; f < K; f++)
      for (int mi = 0; mi < N_MODELS; mi++) model_fold_free(&folds[f].m[mi], o->inner_k);
  }
  gb_progress_end(&prog);
  if (n_nonfinite) gb_warn("%s: %lld targets contain NaN/Inf; their scores are NaN", o->brain_path, (long long)n_nonfinite);
  if (n_const) gb_warn("%s: %lld targets are constant; their scores are NaN", o->brain_path, (long long)n_const);
  if (st == GB_OK) {
    gb_h5 *bh = brain.is_npy ? NULL : brain.h5;
    st = write_outputs(o, layers, ids, (int)L, K, n_models, &brain, T, &res, starts, stops, N, n_const, n_nonfinite, bh);
  }
done:
  free(perm);
  free_folds(folds, K, o->inner_k);
  for (int mi = 0; mi < N_MODELS; mi++) gb_free(res.r_folds[mi]), gb_free(res.alpha[mi]), gb_free(res.pred[mi]);
  gb_free(Y);
  gb_brain_close(&brain);
  gb_strings_free(ids, n_ids);
  gb_strings_free(layers, L);
  gb_h5_close(fh);
  return st;
}
