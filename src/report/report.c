/* The HTML report: reads A.json, draws inline SVG figures, writes one self-contained file. */
#include "gradbrain/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gradbrain/svg.h"
#include "gradbrain/textfile.h"

static const char *const MODELS[4] = {"forward", "joint", "residual", "signal"};
static const char *const MODEL_COLOR[4] = {"#0072B2", "#009E73", "#D55E00", "#CC79A7"};
static const char *const MODEL_DASH[4] = {NULL, "6 3", NULL, "2 3"};
static const char MODEL_MARK[4] = {'o', 's', '^', 'd'};

typedef struct {
  gb_sb *s;
  int fig;
  const char *apath;
} rep;

/* ---- JSON access ---- */
static const cJSON *get(const cJSON *o, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *cur = o;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) cur = cJSON_GetObjectItem(cur, tok);
  return cur;
}
static double num(const cJSON *o, const char *path) {
  const cJSON *v = get(o, path);
  return (v && cJSON_IsNumber(v)) ? v->valuedouble : NAN;
}
static const char *str(const cJSON *o, const char *path, const char *def) {
  const cJSON *v = get(o, path);
  return (v && cJSON_IsString(v)) ? v->valuestring : def;
}
/* Flattens a numeric array or array of arrays into a new buffer; rows/cols may be NULL. */
static double *nums(const cJSON *a, int *rows, int *cols) {
  if (!a || !cJSON_IsArray(a)) return NULL;
  int r = cJSON_GetArraySize(a), c = 1, mat = r > 0 && cJSON_IsArray(cJSON_GetArrayItem(a, 0));
  if (mat) c = cJSON_GetArraySize(cJSON_GetArrayItem(a, 0));
  double *v = malloc((size_t)(r * c > 0 ? r * c : 1) * sizeof *v);
  if (!v) return NULL;
  for (int i = 0; i < r; i++) {
    const cJSON *row = cJSON_GetArrayItem(a, i);
    for (int j = 0; j < c; j++) {
      const cJSON *e = mat ? cJSON_GetArrayItem(row, j) : row;
      v[i * c + j] = (e && cJSON_IsNumber(e)) ? e->valuedouble : NAN;
    }
  }
  if (rows) *rows = r;
  if (cols) *cols = c;
  return v;
}
static char **strs(const cJSON *a, int *n) {
  *n = a ? cJSON_GetArraySize(a) : 0;
  char **v = calloc((size_t)(*n ? *n : 1), sizeof *v);
  for (int i = 0; v && i < *n; i++) {
    const cJSON *e = cJSON_GetArrayItem(a, i);
    v[i] = (char *)(cJSON_IsString(e) ? e->valuestring : "?");
  }
  return v;
}
static void minmax(const double *v, int n, double *lo, double *hi) {
  for (int i = 0; i < n; i++)
    if (isfinite(v[i])) {
      if (v[i] < *lo) *lo = v[i];
      if (v[i] > *hi) *hi = v[i];
    }
}
static void pad(double *lo, double *hi) {
  double d = (*hi - *lo) * 0.08;
  if (!(d > 0)) d = 0.05;
  *lo -= d;
  *hi += d;
}

/* Layer names without a shared "xxx_" prefix ("layer_01" -> "01") for crowded axes; the
 * returned array points into the originals. */
static char **short_names(char **names, int n) {
  char **out = calloc((size_t)(n ? n : 1), sizeof *out);
  if (!out) return NULL;
  const char *us = n ? strrchr(names[0], '_') : NULL;
  size_t k = us ? (size_t)(us - names[0]) + 1 : 0;
  for (int i = 0; i < n; i++)
    if (k && strncmp(names[i], names[0], k)) k = 0;
  for (int i = 0; i < n; i++) out[i] = names[i] + (names[i][k] ? k : 0);
  return out;
}

/* ---- figure scaffolding ---- */
static void fig_open(rep *r, const char *id) {
  r->fig++;
  gb_sb_printf(r->s, "<figure id=\"%s\"><div class=\"panels\">", id);
}
static void fig_close(rep *r, const char *caption, const char *source) {
  gb_sb_printf(r->s, "</div><figcaption><b>Figure %d.</b> ", r->fig);
  gb_sb_escape(r->s, caption);
  gb_sb_printf(r->s, " <span class=\"src\">Source: ");
  gb_sb_escape(r->s, r->apath);
  gb_sb_printf(r->s, " &rarr; ");
  gb_sb_escape(r->s, source);
  gb_sb_printf(r->s, "</span></figcaption></figure>\n");
}

static void order_text(char *buf, size_t n, const cJSON *o) {
  double lo = NAN, hi = NAN;
  const cJSON *ci = o ? cJSON_GetObjectItem(o, "ci") : NULL;
  if (ci && cJSON_GetArraySize(ci) == 2) {
    const cJSON *a = cJSON_GetArrayItem(ci, 0), *b = cJSON_GetArrayItem(ci, 1);
    lo = cJSON_IsNumber(a) ? a->valuedouble : NAN;
    hi = cJSON_IsNumber(b) ? b->valuedouble : NAN;
  }
  snprintf(buf, n, "rho %+.2f [%.2f, %.2f], p %.3g", num(o, "spearman"), lo, hi, num(o, "p"));
}

/* ---- fMRI figures ---- */
static void fmri_r_by_layer(rep *r, const cJSON *A, const cJSON *fm, const char *sigkey) {
  int L, R;
  char **layers = strs(get(fm, "layers"), &L), **rois = strs(get(fm, "rois"), &R);
  double *m[4] = {0};
  int rows, cols;
  double lo = 0, hi = 0;
  for (int k = 0; k < 4; k++) {
    char path[128];
    snprintf(path, sizeof path, "%s.roi_mean", MODELS[k]);
    m[k] = nums(get(fm, path), &rows, &cols);
    if (m[k]) minmax(m[k], rows * cols, &lo, &hi);
  }
  const cJSON *st = get(A, "stats");
  double *sig = nums(get(st, "fmri.significant"), NULL, NULL);
  double *frac = sig ? NULL : nums(get(st, "fmri.frac_sig_residual"), NULL, NULL);
  pad(&lo, &hi);
  char **short_layers = short_names(layers, L);
  fig_open(r, "fig-fmri-r-by-layer");
  for (int roi = 0; roi < R && m[0]; roi++) {
    gb_plot p = {0};
    char title[160];
    snprintf(title, sizeof title, "%s (rank %d)", rois[roi], roi + 1);
    gb_plot_begin_cat(r->s, &p, 330, 240, short_layers, L, lo, hi, title, "layer", "Pearson r (held-out)");
    gb_plot_hline(r->s, &p, 0, "#888", "3 3");
    double *x = malloc((size_t)L * sizeof *x), *y = malloc((size_t)L * sizeof *y);
    for (int k = 0; k < 4; k++) {
      if (!m[k]) continue;
      for (int l = 0; l < L; l++) {
        x[l] = l + 1;
        y[l] = m[k][l * R + roi];
      }
      gb_plot_line(r->s, &p, x, y, L, MODEL_COLOR[k], 2, MODEL_DASH[k]);
      for (int l = 0; l < L; l++) gb_plot_marker(r->s, &p, x[l], y[l], MODEL_MARK[k], 3, MODEL_COLOR[k], 1, NULL);
      if (k == 2)
        for (int l = 0; l < L; l++) {
          int mark = sig ? sig[l * R + roi] > 0 : (frac ? frac[l * R + roi] > 0 : 0);
          if (mark) gb_plot_text(r->s, &p, l + 1, y[l] + (hi - lo) * 0.04, "*", MODEL_COLOR[2], 16, "middle");
        }
      if (roi == 0) gb_plot_legend(r->s, &p, MODELS[k], MODEL_COLOR[k], MODEL_DASH[k], 0);
    }
    free(x);
    free(y);
    gb_plot_end(r->s, &p);
  }
  char cap[512], src[256];
  snprintf(cap, sizeof cap,
           "Encoding performance by layer in each ROI (mean over voxels%s) for the forward model, the joint model "
           "(forward + %s) and the residual = joint - forward. * = residual significant (%s).",
           num(fm, "n_subjects") > 1 ? " and subjects" : "", sigkey,
           sig ? "across subjects, one-sided t-test, FDR q < alpha"
               : frac ? "at least one voxel with permutation q < alpha, FDR over layers x voxels" : "no test available");
  snprintf(src, sizeof src, "fmri.<model>.roi_mean; stats.%s", sig ? "fmri.significant" : "fmri.frac_sig_residual");
  fig_close(r, cap, src);
  for (int k = 0; k < 4; k++) free(m[k]);
  free(sig);
  free(frac);
  free(short_layers);
  free(layers);
  free(rois);
}

static void fmri_best_layer(rep *r, const cJSON *A, const cJSON *fm) {
  int L, R;
  char **layers = strs(get(fm, "layers"), &L), **rois = strs(get(fm, "rois"), &R);
  double *rank = nums(get(fm, "roi_rank"), NULL, NULL);
  fig_open(r, "fig-fmri-best-layer");
  gb_plot p = {0};
  char **names = calloc((size_t)R, sizeof *names);
  for (int i = 0; i < R; i++) {
    int at = rank ? (int)rank[i] : i;
    if (at >= 0 && at < R) names[at] = rois[i];
  }
  for (int i = 0; i < R; i++)
    if (!names[i]) names[i] = "?";
  p.legend_w = 280;
  gb_plot_begin_cat(r->s, &p, 820, 330, names, R, 0.5, L + 0.5, "Best layer vs ROI hierarchy", "ROI (ordered by hierarchy rank)",
                    "best layer (1 = first)");
  const int show[3] = {0, 2, 1};
  for (int q = 0; q < 3; q++) {
    int k = show[q];
    char path[64];
    snprintf(path, sizeof path, "%s.best_layer", MODELS[k]);
    double *b = nums(get(fm, path), NULL, NULL);
    if (!b) continue;
    double *x = malloc((size_t)R * sizeof *x), *y = malloc((size_t)R * sizeof *y);
    for (int i = 0; i < R; i++) {
      x[(int)(rank ? rank[i] : i)] = (rank ? rank[i] : i) + 1 + (q - 1) * 0.12;
      y[(int)(rank ? rank[i] : i)] = b[i];
    }
    gb_plot_line(r->s, &p, x, y, R, MODEL_COLOR[k], 1.2, "4 3");
    for (int i = 0; i < R; i++) gb_plot_marker(r->s, &p, x[i], y[i], MODEL_MARK[k], 5, MODEL_COLOR[k], 1, NULL);
    char lab[160], ord[96];
    snprintf(path, sizeof path, "spatial_order.%s", MODELS[k]);
    order_text(ord, sizeof ord, get(fm, path));
    snprintf(lab, sizeof lab, "%s: %s", MODELS[k], ord);
    gb_plot_legend(r->s, &p, lab, MODEL_COLOR[k], NULL, MODEL_MARK[k]);
    free(x);
    free(y);
    free(b);
  }
  const cJSON *tr = get(A, "truth.fmri");
  double *tf = nums(get(tr, "fwd_layer"), NULL, NULL), *ts = nums(get(tr, "signal_layer"), NULL, NULL);
  for (int i = 0; i < R && (tf || ts); i++) {
    double xr = (rank ? rank[i] : i) + 1;
    if (tf) gb_plot_marker(r->s, &p, xr - 0.12, tf[i], 'o', 8, MODEL_COLOR[0], 0, "planted forward layer");
    if (ts && ts[i] > 0) gb_plot_marker(r->s, &p, xr + 0.12, ts[i], '^', 8, MODEL_COLOR[2], 0, "planted signal layer");
  }
  if (tf) gb_plot_legend(r->s, &p, "planted (hollow): forward o, signal ^", "#555", NULL, 0);
  gb_plot_end(r->s, &p);
  fig_close(r, "The spatial-order test: layer with the highest ROI-mean r for each ROI, against the ROI's rank in the "
               "cortical hierarchy. Spearman rho with bootstrap 95% CI and permutation p in the legend; a positive rho "
               "means deeper layers map to higher areas.",
            "fmri.<model>.best_layer, fmri.spatial_order, truth (simulated data only)");
  free(rank);
  free(names);
  free(tf);
  free(ts);
  free(layers);
  free(rois);
}

/* ---- MEG figures ---- */
static void meg_courses(rep *r, const cJSON *A, const cJSON *meg, int k) {
  int T, L, rows, cols;
  double *times = nums(get(meg, "times"), &T, NULL);
  char **layers = strs(get(meg, "layers"), &L);
  char path[96];
  snprintf(path, sizeof path, "%s.curve", MODELS[k]);
  double *c = nums(get(meg, path), &rows, &cols);
  snprintf(path, sizeof path, "%s.peak_latency_s", MODELS[k]);
  double *pk = nums(get(meg, path), NULL, NULL);
  if (!times || !c || rows != L || cols != T) goto out;
  double lo = 0, hi = 0;
  minmax(c, L * T, &lo, &hi);
  pad(&lo, &hi);
  double band = (hi - lo) * 0.035;
  lo -= band * (L + 1);
  char id[64], title[128];
  snprintf(id, sizeof id, "fig-meg-%s", MODELS[k]);
  snprintf(title, sizeof title, "MEG: %s model, r(t) per layer", MODELS[k]);
  fig_open(r, id);
  gb_plot p = {0};
  p.legend_w = 150;
  gb_plot_begin(r->s, &p, 860, 380, times[0], times[T - 1], lo, hi, title, "time after image onset (s)",
                "Pearson r (mean over channels)");
  gb_plot_hline(r->s, &p, 0, "#888", "3 3");
  const cJSON *st = get(A, "stats");
  double *sig = NULL, *frac = NULL;
  if (k == 2) {
    sig = nums(get(st, "meg.significant"), NULL, NULL);
    if (!sig) frac = nums(get(st, "meg.frac_sig_residual"), NULL, NULL);
  }
  for (int l = 0; l < L; l++) {
    char col[8];
    gb_viridis(L > 1 ? (double)l / (L - 1) : 0, col);
    gb_plot_line(r->s, &p, times, c + (size_t)l * T, T, col, 1.8, NULL);
    if (pk && isfinite(pk[l])) {
      int i = 0;
      while (i < T - 1 && fabs(times[i] - pk[l]) > 1e-9) i++;
      char tip[128];
      snprintf(tip, sizeof tip, "%s peak %.3f s", layers[l], pk[l]);
      gb_plot_marker(r->s, &p, pk[l], c[(size_t)l * T + i], '^', 5, col, 1, tip);
    }
    /* significance strip for this layer under the curves */
    double ys = lo + band * (l + 0.5);
    for (int t = 0; t < T && (sig || frac); t++) {
      double v = sig ? sig[(size_t)l * T + t] : frac[(size_t)l * T + t];
      if (sig ? v > 0 : v >= 0.1) {
        double dt = T > 1 ? (times[1] - times[0]) / 2 : 0.005;
        double xs[2] = {times[t] - dt, times[t] + dt}, yy[2] = {ys, ys};
        gb_plot_line(r->s, &p, xs, yy, 2, col, 3, NULL);
      }
    }
    if (l == 0 || l == L - 1 || L <= 6) {
      char lab[96];
      snprintf(lab, sizeof lab, "%s%s", layers[l], l == 0 ? " (first)" : l == L - 1 ? " (last)" : "");
      gb_plot_legend(r->s, &p, lab, col, NULL, 0);
    }
  }
  const cJSON *cl = get(st, "meg.clusters");
  const cJSON *e;
  if (k == 2 && cl)
    cJSON_ArrayForEach(e, cl) {
      if (!cJSON_IsTrue(cJSON_GetObjectItem(e, "significant"))) continue;
      int l = (int)num(e, "layer_index") - 1;
      char col[8];
      gb_viridis(L > 1 ? (double)l / (L - 1) : 0, col);
      double ys = lo + band * (l + 0.5) + band * 0.4, xs[2] = {num(e, "start_s"), num(e, "end_s")}, yy[2] = {ys, ys};
      gb_plot_line(r->s, &p, xs, yy, 2, "#000", 1, NULL);
    }
  gb_plot_end(r->s, &p);
  char cap[600];
  snprintf(cap, sizeof cap,
           "Time course of the %s model's held-out r for each layer (colour: viridis, dark = first layer, light = last). "
           "Triangles: peak latency (argmax of the lightly smoothed curve). %s",
           MODELS[k],
           k != 2 ? ""
           : sig ? "Strips under the curves: time points with residual > 0 across subjects (t-test, FDR q < alpha); black "
                   "lines: significant time clusters (sign-flip permutation)."
           : frac ? "Strips under the curves: time points where at least 10% of the channels have residual q < alpha "
                    "(per-target permutation null, FDR over layers x channels x times)."
                  : "No significance test was available.");
  snprintf(path, sizeof path, "meg.%s.curve, meg.%s.peak_latency_s%s", MODELS[k], MODELS[k], k == 2 ? ", stats.meg" : "");
  fig_close(r, cap, path);
  free(sig);
  free(frac);
out:
  free(times);
  free(layers);
  free(c);
  free(pk);
}

static void meg_latency(rep *r, const cJSON *A, const cJSON *meg) {
  int L;
  char **layers = strs(get(meg, "layers"), &L);
  double lo = INFINITY, hi = -INFINITY;
  double *lat[4] = {0}, *ci[4] = {0};
  for (int k = 0; k < 3; k++) {
    char path[96];
    snprintf(path, sizeof path, "%s.peak_latency_s", MODELS[k]);
    lat[k] = nums(get(meg, path), NULL, NULL);
    snprintf(path, sizeof path, "%s.peak_latency_ci", MODELS[k]);
    ci[k] = nums(get(meg, path), NULL, NULL);
    if (lat[k]) minmax(lat[k], L, &lo, &hi);
    if (ci[k]) minmax(ci[k], 2 * L, &lo, &hi);
  }
  const cJSON *tr = get(A, "truth.meg");
  double *tf = nums(get(tr, "fwd_peak_s"), NULL, NULL), *ts = nums(get(tr, "signal_peak_s"), NULL, NULL);
  if (tf) minmax(tf, L, &lo, &hi);
  if (ts) minmax(ts, L, &lo, &hi);
  pad(&lo, &hi);
  char **short_layers = short_names(layers, L);
  fig_open(r, "fig-meg-latency");
  gb_plot p = {0};
  p.legend_w = 300;
  gb_plot_begin_cat(r->s, &p, 900, 360, short_layers, L, lo, hi, "Peak latency vs layer (temporal order)", "layer",
                    "peak latency (s)");
  for (int k = 0; k < 3; k++) {
    if (!lat[k]) continue;
    double *x = malloc((size_t)L * sizeof *x);
    for (int l = 0; l < L; l++) x[l] = l + 1 + (k - 1) * 0.12;
    gb_plot_line(r->s, &p, x, lat[k], L, MODEL_COLOR[k], 1.5, MODEL_DASH[k]);
    for (int l = 0; l < L; l++) {
      if (ci[k]) gb_plot_errorbar(r->s, &p, x[l], ci[k][2 * l], ci[k][2 * l + 1], MODEL_COLOR[k]);
      gb_plot_marker(r->s, &p, x[l], lat[k][l], MODEL_MARK[k], 4, MODEL_COLOR[k], 1, NULL);
    }
    char path[96], ord[96], lab[160];
    snprintf(path, sizeof path, "temporal_order.%s", MODELS[k]);
    order_text(ord, sizeof ord, get(meg, path));
    snprintf(lab, sizeof lab, "%s: %s", MODELS[k], ord);
    gb_plot_legend(r->s, &p, lab, MODEL_COLOR[k], MODEL_DASH[k], 0);
    free(x);
  }
  for (int l = 0; l < L; l++) {
    if (tf) gb_plot_marker(r->s, &p, l + 1 - 0.12, tf[l], 'o', 7, MODEL_COLOR[0], 0, "planted forward peak");
    if (ts) gb_plot_marker(r->s, &p, l + 1 + 0.12, ts[l], '^', 7, MODEL_COLOR[2], 0, "planted signal peak");
  }
  if (tf) gb_plot_legend(r->s, &p, "planted (hollow): forward o, signal ^", "#555", NULL, 0);
  gb_plot_end(r->s, &p);
  char cap[512];
  snprintf(cap, sizeof cap,
           "The temporal-order test: peak latency of each layer's r(t) with 95%% CIs (%s). Spearman rho(layer depth, "
           "latency): positive = deeper layers peak later; backprop predicts a negative rho for its gradients.",
           str(meg, "peak_latency_ci_method", "bootstrap"));
  fig_close(r, cap, "meg.<model>.peak_latency_s, meg.<model>.peak_latency_ci, meg.temporal_order, truth");
  for (int k = 0; k < 4; k++) {
    free(lat[k]);
    free(ci[k]);
  }
  free(tf);
  free(ts);
  free(short_layers);
  free(layers);
}

static void ceiling_fig(rep *r, const cJSON *A, int is_meg) {
  const cJSON *nc = get(A, is_meg ? "noise_ceiling.meg" : "noise_ceiling.fmri");
  if (!nc) return;
  gb_plot p = {0};
  if (is_meg) {
    int T, L, rows, cols;
    double *times = nums(get(A, "meg.times"), &T, NULL), *rm = nums(get(nc, "rmax_curve"), NULL, NULL);
    double *c = nums(get(A, "meg.forward.curve"), &rows, &cols);
    (void)L;
    if (!times || !rm || !c) {
      free(times);
      free(rm);
      free(c);
      return;
    }
    double *best = malloc((size_t)T * sizeof *best);
    for (int t = 0; t < T; t++) {
      best[t] = -INFINITY;
      for (int l = 0; l < rows; l++)
        if (c[(size_t)l * cols + t] > best[t]) best[t] = c[(size_t)l * cols + t];
    }
    double lo = 0, hi = 0;
    minmax(rm, T, &lo, &hi);
    minmax(best, T, &lo, &hi);
    pad(&lo, &hi);
    fig_open(r, "fig-ceiling-meg");
    p.legend_w = 230;
    gb_plot_begin(r->s, &p, 820, 320, times[0], times[T - 1], lo, hi, "Noise ceiling (MEG)", "time after image onset (s)",
                  "Pearson r");
    gb_plot_line(r->s, &p, times, rm, T, "#000000", 2, "5 3");
    gb_plot_line(r->s, &p, times, best, T, MODEL_COLOR[0], 2, NULL);
    gb_plot_legend(r->s, &p, "noise ceiling r_max (NSD ncsnr)", "#000000", "5 3", 0);
    gb_plot_legend(r->s, &p, "forward, best layer", MODEL_COLOR[0], NULL, 0);
    gb_plot_end(r->s, &p);
    free(times);
    free(rm);
    free(c);
    free(best);
  } else {
    int R, rows, cols;
    char **rois = strs(get(A, "fmri.rois"), &R);
    double *rm = nums(get(nc, "roi_rmax"), NULL, NULL), *sh = nums(get(nc, "roi_splithalf"), NULL, NULL);
    double *c = nums(get(A, "fmri.forward.roi_mean"), &rows, &cols);
    if (!rm || !c) {
      free(rois);
      free(rm);
      free(sh);
      free(c);
      return;
    }
    double *best = malloc((size_t)R * sizeof *best), *x = malloc((size_t)R * sizeof *x);
    for (int i = 0; i < R; i++) {
      x[i] = i + 1;
      best[i] = -INFINITY;
      for (int l = 0; l < rows; l++)
        if (c[(size_t)l * cols + i] > best[i]) best[i] = c[(size_t)l * cols + i];
      if (sh) sh[i] = sh[i] > 0 ? sqrt(sh[i]) : NAN;
    }
    double lo = 0, hi = 0;
    minmax(rm, R, &lo, &hi);
    minmax(best, R, &lo, &hi);
    pad(&lo, &hi);
    fig_open(r, "fig-ceiling-fmri");
    p.legend_w = 230;
    gb_plot_begin_cat(r->s, &p, 760, 320, rois, R, lo, hi, "Noise ceiling per ROI (fMRI)", "ROI", "Pearson r");
    for (int i = 0; i < R; i++) {
      gb_plot_marker(r->s, &p, x[i], rm[i], 's', 5, "#000000", 0, "r_max (NSD)");
      if (sh) gb_plot_marker(r->s, &p, x[i] + 0.15, sh[i], 'd', 4, "#E69F00", 1, "sqrt split-half reliability");
      gb_plot_marker(r->s, &p, x[i] - 0.15, best[i], 'o', 5, MODEL_COLOR[0], 1, "forward, best layer");
    }
    gb_plot_legend(r->s, &p, "r_max (NSD ncsnr)", "#000000", NULL, 's');
    if (sh) gb_plot_legend(r->s, &p, "sqrt(split-half, Spearman-Brown)", "#E69F00", NULL, 'd');
    gb_plot_legend(r->s, &p, "forward, best layer", MODEL_COLOR[0], NULL, 'o');
    gb_plot_end(r->s, &p);
    free(rois);
    free(rm);
    free(sh);
    free(c);
    free(best);
    free(x);
  }
  char cap[400];
  snprintf(cap, sizeof cap, "Noise ceiling from %g repetitions: the highest r a perfect model could reach given the "
                            "trial-to-trial noise, next to the best forward layer.", num(nc, "n_reps"));
  fig_close(r, cap, is_meg ? "noise_ceiling.meg.rmax_curve, meg.forward.curve"
                           : "noise_ceiling.fmri.roi_rmax, roi_splithalf, fmri.forward.roi_mean");
}

/* Several signals side by side: residual peak latency (MEG) or residual ROI profile (fMRI). */
static void signals_fig(rep *r, const cJSON *A, int is_meg) {
  const cJSON *by = get(A, is_meg ? "meg.by_signal" : "fmri.by_signal");
  int n = by ? cJSON_GetArraySize(by) : 0;
  if (n < 2) return;
  int L, R = 0;
  char **long_layers = strs(get(A, "layers"), &L), **rois = is_meg ? NULL : strs(get(A, "fmri.rois"), &R);
  char **layers = short_names(long_layers, L);
  fig_open(r, is_meg ? "fig-signals-meg" : "fig-signals-fmri");
  gb_plot p = {0};
  double lo = INFINITY, hi = -INFINITY;
  int i = 0;
  const cJSON *g;
  cJSON_ArrayForEach(g, by) {
    int rows, cols;
    double *v = nums(get(g, is_meg ? "residual.peak_latency_ci" : "residual.roi_mean"), &rows, &cols);
    if (v) minmax(v, rows * cols, &lo, &hi);
    free(v);
    v = nums(get(g, is_meg ? "residual.peak_latency_s" : "residual.roi_mean"), &rows, &cols);
    if (v) minmax(v, rows * cols, &lo, &hi);
    free(v);
  }
  pad(&lo, &hi);
  p.legend_w = 300;
  if (is_meg)
    gb_plot_begin_cat(r->s, &p, 920, 360, layers, L, lo, hi, "Residual peak latency by signal", "layer", "peak latency (s)");
  else
    gb_plot_begin_cat(r->s, &p, 920, 360, rois, R, lo, hi, "Residual at the best layer, by signal", "ROI",
                      "max over layers of residual r");
  cJSON_ArrayForEach(g, by) {
    const char *col = gb_okabe_ito(4 + i);
    if (i >= 4) col = gb_okabe_ito(i - 4);
    int rows, cols;
    char lab[200], ord[96];
    if (is_meg) {
      double *lat = nums(get(g, "residual.peak_latency_s"), &rows, NULL), *ci = nums(get(g, "residual.peak_latency_ci"), NULL, NULL);
      double *x = malloc((size_t)L * sizeof *x);
      for (int l = 0; l < L; l++) x[l] = l + 1 + (i - (n - 1) / 2.0) * 0.1;
      if (lat) {
        gb_plot_line(r->s, &p, x, lat, L, col, 1.5, NULL);
        for (int l = 0; l < L; l++) {
          if (ci) gb_plot_errorbar(r->s, &p, x[l], ci[2 * l], ci[2 * l + 1], col);
          gb_plot_marker(r->s, &p, x[l], lat[l], 'o', 4, col, 1, NULL);
        }
      }
      order_text(ord, sizeof ord, get(g, "temporal_order.residual"));
      free(lat);
      free(ci);
      free(x);
    } else {
      double *m = nums(get(g, "residual.roi_mean"), &rows, &cols);
      double *x = malloc((size_t)R * sizeof *x), *y = malloc((size_t)R * sizeof *y);
      for (int k = 0; k < R; k++) {
        x[k] = k + 1;
        y[k] = -INFINITY;
        for (int l = 0; m && l < rows; l++)
          if (m[(size_t)l * cols + k] > y[k]) y[k] = m[(size_t)l * cols + k];
      }
      gb_plot_line(r->s, &p, x, y, R, col, 1.8, NULL);
      for (int k = 0; k < R; k++) gb_plot_marker(r->s, &p, x[k], y[k], 'o', 4, col, 1, NULL);
      order_text(ord, sizeof ord, get(g, "spatial_order.residual"));
      free(m);
      free(x);
      free(y);
    }
    snprintf(lab, sizeof lab, "%s: %s", g->string, ord);
    gb_plot_legend(r->s, &p, lab, col, NULL, 0);
    i++;
  }
  gb_plot_end(r->s, &p);
  fig_close(r, is_meg ? "Residual (joint - forward) peak latency per layer for each learning signal, with 95% CIs and "
                        "the temporal-order score."
                      : "Residual (joint - forward) per ROI for each learning signal (maximum over layers) with the "
                        "spatial-order score.",
            is_meg ? "meg.by_signal.<signal>.residual" : "fmri.by_signal.<signal>.residual");
  free(layers);
  free(long_layers);
  free(rois);
}

static void trajectory_fig(rep *r, const cJSON *A) {
  const cJSON *t = get(A, "trajectory");
  if (!t) return;
  int n;
  double *x = nums(get(t, "x"), &n, NULL);
  const cJSON *series = get(t, "series");
  if (!x || !series) {
    free(x);
    return;
  }
  /* iterations span decades: plot them on a log axis when the analysis says so */
  const cJSON *xlog = get(t, "x_log");
  int logx = cJSON_IsTrue(xlog);
  for (int k = 0; logx && k < n; k++) x[k] = log10(x[k]);
  double lo = INFINITY, hi = -INFINITY, xl = INFINITY, xh = -INFINITY;
  minmax(x, n, &xl, &xh);
  if (xh <= xl) xh = xl + 1;
  const cJSON *e;
  cJSON_ArrayForEach(e, series) {
    int m;
    double *y = nums(e, &m, NULL);
    if (y) minmax(y, m < n ? m : n, &lo, &hi);
    free(y);
  }
  pad(&lo, &hi);
  fig_open(r, "fig-trajectory");
  gb_plot p = {0};
  p.legend_w = 160;
  char xlab[160];
  snprintf(xlab, sizeof xlab, logx ? "log10(%s)" : "%s", str(t, "x_label", "training checkpoint"));
  gb_plot_begin(r->s, &p, 820, 340, xl, xh, lo, hi, "Scores across training", xlab, str(t, "y_label", "score"));
  int i = 0;
  cJSON_ArrayForEach(e, series) {
    int m;
    double *y = nums(e, &m, NULL);
    if (y) {
      gb_plot_line(r->s, &p, x, y, m < n ? m : n, gb_okabe_ito(i), 2, NULL);
      for (int k = 0; k < n && k < m; k++) gb_plot_marker(r->s, &p, x[k], y[k], 'o', 3, gb_okabe_ito(i), 1, NULL);
      gb_plot_legend(r->s, &p, e->string, gb_okabe_ito(i), NULL, 0);
    }
    free(y);
    i++;
  }
  gb_plot_end(r->s, &p);
  char cap[600];
  int pos = snprintf(cap, sizeof cap, "Scores over training checkpoints (mean over layers and targets). Half-times (iteration at half the final value):");
  const cJSON *h;
  cJSON_ArrayForEach(h, get(t, "half_time")) {
    if (cJSON_IsNumber(h) && pos < (int)sizeof cap - 40) pos += snprintf(cap + pos, sizeof cap - (size_t)pos, " %s %.0f;", h->string, h->valuedouble);
    else if (pos < (int)sizeof cap - 40) pos += snprintf(cap + pos, sizeof cap - (size_t)pos, " %s n/a;", h->string);
  }
  fig_close(r, cap, "trajectory");
  free(x);
}

/* The numbers of array a if it has exactly n of them, else NULL. */
static double *same_length(const cJSON *a, int n) {
  int m = 0;
  double *v = nums(a, &m, NULL);
  if (v && m != n) {
    free(v);
    v = NULL;
  }
  return v;
}

/* The training run behind the trajectory: the loss per iteration split into the teacher targets'
 * entropy H(P) and the student's KL (DINO loss = H(P) + KL), with H(mean P); k-NN in the caption. */
static void training_fig(rep *r, const cJSON *A) {
  const cJSON *t = get(A, "trajectory.training");
  int n = 0, m;
  double *x = t ? nums(get(t, "iteration"), &n, NULL) : NULL;
  double *y[4] = {nums(get(t, "loss"), &m, NULL), same_length(get(t, "teacher_entropy"), n), NULL,
                  same_length(get(t, "teacher_batch_entropy"), n)};
  double *dino = same_length(get(t, "dino"), n);
  const char *label[4] = {"loss", "H(P), teacher targets", "KL, student from targets", "H(mean P), batch"};
  if (x && y[0] && n > 1 && m == n) {
    if (dino && y[1] && (y[2] = malloc((size_t)n * sizeof(double))))
      for (int k = 0; k < n; k++) y[2][k] = dino[k] - y[1][k];
    double lo = INFINITY, hi = -INFINITY, xl = INFINITY, xh = -INFINITY;
    minmax(x, n, &xl, &xh);
    if (xh <= xl) xh = xl + 1;
    for (int q = 0; q < 4; q++)
      if (y[q]) minmax(y[q], n, &lo, &hi);
    pad(&lo, &hi);
    fig_open(r, "fig-training");
    gb_plot p = {0};
    p.legend_w = 190;
    gb_plot_begin(r->s, &p, 820, 300, xl, xh, lo, hi, "Training run", "training iteration", "nats");
    for (int q = 0; q < 4; q++)
      if (y[q]) {
        gb_plot_line(r->s, &p, x, y[q], n, gb_okabe_ito(q), q ? 1.2 : 2, q == 3 ? "4 3" : NULL);
        gb_plot_legend(r->s, &p, label[q], gb_okabe_ito(q), q == 3 ? "4 3" : NULL, 0);
      }
    gb_plot_end(r->s, &p);
    char cap[700];
    int pos = snprintf(cap, sizeof cap,
                       "Training loss per iteration (from the last checkpoint's history): the DINO term is H(P), the "
                       "entropy of the teacher's targets, plus the student's KL from them; H(P) near ln K means "
                       "uniform targets, H(mean P) near 0 one prototype for every crop (collapse).");
    int nk = 0;
    double *kx = nums(get(t, "knn_iteration"), &nk, NULL), *ky = same_length(get(t, "knn"), nk);
    if (kx && ky && nk > 0) {
      pos += snprintf(cap + pos, sizeof cap - (size_t)pos, " k-NN accuracy of the teacher CLS:");
      for (int k = 0; k < nk && pos < (int)sizeof cap - 24; k++)
        pos += snprintf(cap + pos, sizeof cap - (size_t)pos, " %.0f: %.3f;", kx[k], ky[k]);
    }
    free(kx);
    free(ky);
    fig_close(r, cap, "trajectory.training");
  }
  for (int q = 0; q < 4; q++) free(y[q]);
  free(dino);
  free(x);
}

/* ---- tables ---- */
static void order_table(rep *r, const cJSON *A, int is_meg) {
  const cJSON *by = get(A, is_meg ? "meg.by_signal" : "fmri.by_signal");
  if (!by) return;
  gb_sb_printf(r->s, "<table><caption>%s order scores: Spearman rho(%s), 95%% bootstrap CI, permutation p. Source: ",
               is_meg ? "Temporal" : "Spatial", is_meg ? "layer depth, peak latency" : "ROI rank, best layer");
  gb_sb_escape(r->s, r->apath);
  gb_sb_printf(r->s, " &rarr; %s.by_signal.&lt;signal&gt;.%s</caption><tr><th>signal</th>", is_meg ? "meg" : "fmri",
               is_meg ? "temporal_order" : "spatial_order");
  for (int k = 0; k < 4; k++) gb_sb_printf(r->s, "<th>%s</th>", MODELS[k]);
  gb_sb_printf(r->s, "</tr>");
  const cJSON *g;
  cJSON_ArrayForEach(g, by) {
    gb_sb_printf(r->s, "<tr><td>");
    gb_sb_escape(r->s, g->string);
    gb_sb_printf(r->s, "</td>");
    for (int k = 0; k < 4; k++) {
      char path[96], ord[96];
      snprintf(path, sizeof path, "%s.%s", is_meg ? "temporal_order" : "spatial_order", MODELS[k]);
      const cJSON *o = get(g, path);
      if (o) order_text(ord, sizeof ord, o);
      gb_sb_printf(r->s, "<td>%s</td>", o ? ord : "&ndash;");
    }
    gb_sb_printf(r->s, "</tr>");
  }
  gb_sb_printf(r->s, "</table>\n");
}

static void provenance(rep *r, const cJSON *A, const gb_report_config *c) {
  gb_sb_printf(r->s, "<h2 id=\"provenance\">Provenance</h2><p>Every number in this report comes from <code>");
  gb_sb_escape(r->s, r->apath);
  gb_sb_printf(r->s, "</code>, written by <code>");
  gb_sb_escape(r->s, str(A, "provenance.command", "?"));
  gb_sb_printf(r->s, "</code> (gradbrain %s; ", str(A, "provenance.version", "?"));
  gb_sb_escape(r->s, str(A, "provenance.settings", ""));
  gb_sb_printf(r->s, ") from these files:</p><table><tr><th>scores file</th><th>signal</th><th>subject</th><th>brain file</th><th>made by</th></tr>");
  const cJSON *e;
  cJSON_ArrayForEach(e, get(A, "provenance.scores")) {
    gb_sb_printf(r->s, "<tr><td><code>");
    gb_sb_escape(r->s, str(e, "path", "?"));
    gb_sb_printf(r->s, "</code></td><td>");
    gb_sb_escape(r->s, str(e, "signal", "?"));
    gb_sb_printf(r->s, "</td><td>");
    gb_sb_escape(r->s, str(e, "subject", "?"));
    gb_sb_printf(r->s, "</td><td><code>");
    gb_sb_escape(r->s, str(e, "brain", "?"));
    gb_sb_printf(r->s, "</code></td><td><code>");
    gb_sb_escape(r->s, str(e, "command", "?"));
    gb_sb_printf(r->s, "</code></td></tr>");
  }
  gb_sb_printf(r->s, "</table><table><tr><th>brain file</th><th>kind</th><th>images</th><th>targets</th><th>repetitions</th><th>made by</th></tr>");
  cJSON_ArrayForEach(e, get(A, "provenance.brain")) {
    gb_sb_printf(r->s, "<tr><td><code>");
    gb_sb_escape(r->s, str(e, "path", "?"));
    gb_sb_printf(r->s, "</code>%s</td><td>%s</td><td>%g</td><td>%g</td><td>%g</td><td><code>",
                 get(e, "synthetic") ? " <b>(synthetic)</b>" : "", str(e, "kind", "?"), num(e, "n_images"), num(e, "n_targets"),
                 num(e, "n_reps"));
    gb_sb_escape(r->s, str(e, "command", "?"));
    gb_sb_printf(r->s, "</code></td></tr>");
  }
  gb_sb_printf(r->s, "</table>");
  for (int i = 0; i < c->n_scores; i++) {
    gb_sb_printf(r->s, "<p>Also listed on the command line: <code>");
    gb_sb_escape(r->s, c->scores[i]);
    gb_sb_printf(r->s, "</code></p>");
  }
  gb_sb_printf(r->s, "<p>This report: <code>");
  gb_sb_escape(r->s, c->cmdline ? c->cmdline : "gradbrain report");
  gb_sb_printf(r->s, "</code> (gradbrain %s).</p>\n", GB_VERSION);
}

static const char *CSS =
    "body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:20px auto;padding:0 16px;color:#111}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}"
    "figure{margin:16px 0;page-break-inside:avoid}.panels{display:flex;flex-wrap:wrap;gap:6px}"
    "figcaption{font-size:13px;max-width:900px;margin-top:4px}.src{color:#555;font-size:12px}"
    "table{border-collapse:collapse;font-size:13px;margin:10px 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}"
    "caption{text-align:left;font-size:13px;margin-bottom:4px}code{font-size:12px;word-break:break-all}"
    ".banner{background:#fff3cd;border:1px solid #e0c060;padding:8px 12px;font-weight:bold}"
    ".summary li{margin:3px 0}";

/* Marks the DOM with the number of figures and of empty ones (read by the headless test). */
static const char *CHECK_JS =
    "<script>(function(){var f=document.querySelectorAll('figure'),bad=0;for(var i=0;i<f.length;i++){"
    "var s=f[i].querySelectorAll('svg'),ok=s.length>0;for(var j=0;j<s.length;j++){var n=s[j].querySelectorAll("
    "'polyline,path,circle,rect,line').length,b=s[j].getBoundingClientRect();if(n<4||b.width<50||b.height<50)ok=false;}"
    "if(!ok)bad++;}document.body.setAttribute('data-figures',f.length);document.body.setAttribute('data-empty-figures',bad);"
    "})();</script>";

gb_status gb_report(const gb_report_config *c, const char *out_html) {
  struct stat sb;
  if (!c->overwrite && stat(out_html, &sb) == 0)
    return gb_fail(GB_ERR_EXISTS, "output %s already exists (remove it or pass --overwrite)", out_html);
  char *txt = NULL;
  GB_TRY(gb_read_text_file(c->analysis_path, &txt));
  cJSON *A = cJSON_Parse(txt);
  free(txt);
  if (!A) return gb_fail(GB_ERR_FORMAT, "%s: not valid JSON (near: %.40s)", c->analysis_path, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "?");
  const char *kind = str(A, "kind", NULL);
  if (!kind || (strcmp(kind, "meg") && strcmp(kind, "fmri") && strcmp(kind, "meg+fmri")) || !get(A, "provenance")) {
    cJSON_Delete(A);
    return gb_fail(GB_ERR_FORMAT, "%s: expected an analysis from gradbrain analyze (keys \"kind\": meg|fmri|meg+fmri "
                   "and \"provenance\"), found kind %s", c->analysis_path, kind ? kind : "missing");
  }
  int has_meg = get(A, "meg.forward.curve") != NULL, has_fmri = get(A, "fmri.forward.roi_mean") != NULL;
  gb_sb s = {0};
  rep r = {&s, 0, c->analysis_path};
  gb_sb_printf(&s, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>gradbrain report</title><style>%s</style></head><body>", CSS);
  gb_sb_printf(&s, "<h1>gradbrain report: %s encoding of forward activations and learning signals</h1>",
               has_meg && has_fmri ? "MEG and fMRI" : has_meg ? "MEG" : "fMRI");
  if (cJSON_IsTrue(get(A, "synthetic")))
    gb_sb_printf(&s, "<p class=\"banner\">The brain data in this report are SYNTHETIC: simulated by gradbrain simulate "
                     "with planted effects (hollow markers show the planted truth). They say nothing about real brains.</p>");
  gb_sb_printf(&s, "<h2>Summary</h2><ul class=\"summary\">");
  const cJSON *e;
  cJSON_ArrayForEach(e, get(A, "summary")) {
    gb_sb_printf(&s, "<li>");
    gb_sb_escape(&s, cJSON_IsString(e) ? e->valuestring : "");
    gb_sb_printf(&s, "</li>");
  }
  gb_sb_printf(&s, "</ul>");
  if (has_fmri) {
    const cJSON *fm = get(A, "fmri");
    gb_sb_printf(&s, "<h2>Where: fMRI ROIs (signal: ");
    gb_sb_escape(&s, str(fm, "signal", "?"));
    gb_sb_printf(&s, ")</h2>");
    fmri_r_by_layer(&r, A, fm, str(fm, "signal", "signal"));
    fmri_best_layer(&r, A, fm);
    order_table(&r, A, 0);
  } else if (get(A, "fmri_skipped")) {
    gb_sb_printf(&s, "<p>fMRI: ");
    gb_sb_escape(&s, str(A, "fmri_skipped", ""));
    gb_sb_printf(&s, "</p>");
  }
  if (has_meg) {
    const cJSON *meg = get(A, "meg");
    gb_sb_printf(&s, "<h2>When: MEG time courses (signal: ");
    gb_sb_escape(&s, str(meg, "signal", "?"));
    gb_sb_printf(&s, ")</h2>");
    meg_courses(&r, A, meg, 0);
    meg_courses(&r, A, meg, 2);
    meg_latency(&r, A, meg);
    order_table(&r, A, 1);
  }
  if (get(A, "noise_ceiling")) {
    gb_sb_printf(&s, "<h2>Noise ceiling</h2>");
    if (has_fmri) ceiling_fig(&r, A, 0);
    if (has_meg) ceiling_fig(&r, A, 1);
  }
  for (int k = 0; k < 2; k++) {
    int is_meg = k == 1;
    if (is_meg ? !has_meg : !has_fmri) continue;
    const cJSON *by = get(A, is_meg ? "meg.by_signal" : "fmri.by_signal");
    if (by && cJSON_GetArraySize(by) > 1) {
      gb_sb_printf(&s, "<h2>Learning signals compared (%s)</h2>", is_meg ? "MEG" : "fMRI");
      signals_fig(&r, A, is_meg);
    }
  }
  if (get(A, "trajectory")) {
    gb_sb_printf(&s, "<h2>Trajectory over training</h2>");
    trajectory_fig(&r, A);
    training_fig(&r, A);
  }
  gb_sb_printf(&s, "<h2>Statistics</h2>");
  for (int k = 0; k < 2; k++) {
    const cJSON *st = get(A, k ? "stats.meg" : "stats.fmri");
    if (!st) continue;
    gb_sb_printf(&s, "<p><b>%s</b> (%s): ", k ? "MEG" : "fMRI", str(st, "mode", "?"));
    gb_sb_escape(&s, str(st, "test", str(st, "message", "no test")));
    if (get(st, "tested_quantity")) {
      gb_sb_printf(&s, " Tested quantity: ");
      gb_sb_escape(&s, str(st, "tested_quantity", ""));
      gb_sb_printf(&s, ".");
    }
    gb_sb_printf(&s, "</p>");
  }
  provenance(&r, A, c);
  gb_sb_printf(&s, "%s</body></html>\n", CHECK_JS);
  cJSON_Delete(A);
  if (s.oom) {
    gb_sb_free(&s);
    return gb_fail(GB_ERR_NOMEM, "report text");
  }
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", out_html);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    gb_sb_free(&s);
    return gb_fail(GB_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
  }
  int ok = fwrite(s.buf, 1, s.len, f) == s.len;
  gb_sb_free(&s);
  if (fclose(f) != 0 || !ok || rename(tmp, out_html) != 0) {
    remove(tmp);
    return gb_fail(GB_ERR_IO, "cannot write %s: %s", out_html, strerror(errno));
  }
  return GB_OK;
}
