/* `gradbrain train`: the image pool, seeded multi-crop batches, the training loop with
 * periodic checkpoints and k-NN evaluation, and --resume. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gradbrain/arena.h"
#include "gradbrain/h5.h"
#include "gradbrain/image.h"
#include "gradbrain/log.h"
#include "gradbrain/procedural.h"
#include "gradbrain/rng.h"
#include "gradbrain/train.h"

#define SALT_SAMPLE 0x53414d504c45ULL /* "SAMPLE" */
#define SALT_AUG 0x415547ULL          /* "AUG" */
#define SALT_PHOTO 0x50484f544fULL    /* "PHOTO" */

typedef struct {
  int n;
  gb_image *img;
  int *label;   /* NULL when unknown */
  int n_classes;
} image_pool;

static void pool_free(image_pool *p) {
  for (int i = 0; p->img && i < p->n; i++) gb_image_free(&p->img[i]);
  free(p->img);
  free(p->label);
  memset(p, 0, sizeof *p);
}

static gb_status pool_procedural(image_pool *p, int n, int categories, int size, uint64_t seed, uint64_t first) {
  memset(p, 0, sizeof *p);
  uint8_t *rgb = malloc((size_t)n * size * size * 3);
  p->img = calloc((size_t)n, sizeof *p->img);
  p->label = malloc((size_t)n * sizeof(int));
  if (!rgb || !p->img || !p->label) {
    free(rgb);
    return gb_fail(GB_ERR_NOMEM, "out of memory for %d procedural images", n);
  }
  p->n = n;
  p->n_classes = categories;
  gb_status s = gb_procedural_batch(n, categories, size, seed, first, rgb, p->label);
  for (int i = 0; s == GB_OK && i < n; i++)
    s = gb_image_from_rgb8(rgb + (size_t)i * size * size * 3, size, size, &p->img[i]);
  free(rgb);
  return s;
}

/* Decodes every image of a directory/list, centre-cropped to size x size. */
static gb_status pool_dir(image_pool *p, const char *dir, int size) {
  memset(p, 0, sizeof *p);
  char **ids = NULL, **paths = NULL;
  int64_t n = 0;
  GB_TRY(gb_image_list(dir, &ids, &paths, &n));
  if (n < 2) {
    gb_strings_free(ids, n);
    gb_strings_free(paths, n);
    return gb_fail(GB_ERR_ARG, "%s: %lld images found, training needs at least 2", dir, (long long)n);
  }
  p->img = calloc((size_t)n, sizeof *p->img);
  p->n = (int)n;
  gb_status s = p->img ? GB_OK : gb_fail(GB_ERR_NOMEM, "out of memory");
  gb_progress pr;
  gb_progress_start(&pr, "decode", n, "images");
  for (int64_t i = 0; s == GB_OK && i < n; i++) {
    gb_image full;
    s = gb_image_decode_file(paths[i], &full);
    if (s != GB_OK) break;
    p->img[i].w = p->img[i].h = size;
    p->img[i].rgb = malloc((size_t)3 * size * size * sizeof(float));
    s = p->img[i].rgb ? gb_image_resize_center_crop(&full, size, p->img[i].rgb) : GB_ERR_NOMEM;
    gb_image_free(&full);
    if (s != GB_OK) s = gb_fail_context(s, "image '%s'", paths[i]);
    gb_progress_add(&pr, 1);
  }
  gb_progress_end(&pr);
  gb_strings_free(ids, n);
  gb_strings_free(paths, n);
  return s;
}

/* The crops of iteration `it`: image indices from (seed, it), crops of slot b from (seed, it*B + b). */
static gb_status make_crops(const gb_train_config *c, const image_pool *pool, int64_t it, float *global,
                            float *local) {
  int B = c->batch, G = c->n_global, L = c->n_local, gs = c->global_size, ls = c->local_size;
  int *idx = malloc((size_t)B * sizeof(int));
  gb_status *st = malloc((size_t)B * sizeof(gb_status));
  if (!idx || !st) {
    free(idx);
    free(st);
    return gb_fail(GB_ERR_NOMEM, "out of memory");
  }
  gb_rng r;
  gb_rng_derive(&r, c->seed ^ SALT_SAMPLE, (uint64_t)it);
  for (int b = 0; b < B; b++) idx[b] = (int)gb_rng_below(&r, (uint64_t)pool->n);
  int64_t gsz = 3LL * gs * gs, lsz = 3LL * ls * ls;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    gb_rng rb;
    gb_rng_derive(&rb, c->seed ^ SALT_AUG, (uint64_t)it * (uint64_t)B + (uint64_t)b);
    gb_status s = GB_OK;
    for (int g = 0; g < G && s == GB_OK; g++)
      s = gb_image_augment(&pool->img[idx[b]], gs, c->global_scale[0], c->global_scale[1], &rb, c->vit.mean,
                           c->vit.std, global + ((int64_t)g * B + b) * gsz);
    for (int l = 0; l < L && s == GB_OK; l++)
      s = gb_image_augment(&pool->img[idx[b]], ls, c->local_scale[0], c->local_scale[1], &rb, c->vit.mean,
                           c->vit.std, local + ((int64_t)l * B + b) * lsz);
    /* photometric: its own stream per crop, from (seed, iteration, slot, crop) */
    for (int v = 0; c->photometric && v < G + L && s == GB_OK; v++) {
      gb_rng rp;
      gb_rng_derive(&rp, c->seed ^ SALT_PHOTO, ((uint64_t)it * (uint64_t)B + (uint64_t)b) * 64u + (uint64_t)v);
      s = v < G ? gb_photometric_augment(global + ((int64_t)v * B + b) * gsz, gs, v % 2, &rp, c->vit.mean, c->vit.std)
                : gb_photometric_augment(local + ((int64_t)(v - G) * B + b) * lsz, ls, 2, &rp, c->vit.mean,
                                         c->vit.std);
    }
    st[b] = s;
  }
  gb_status s = GB_OK;
  for (int b = 0; b < B && s == GB_OK; b++) s = st[b];
  free(idx);
  free(st);
  return s;
}

double gb_knn_accuracy(const float *train, const int *ytrain, int ntrain, const float *test, const int *ytest,
                       int ntest, int d, int k, int n_classes) {
  if (k > ntrain) k = ntrain;
  int correct = 0;
#pragma omp parallel for schedule(static) reduction(+ : correct)
  for (int i = 0; i < ntest; i++) {
    double *sim = malloc((size_t)ntrain * sizeof(double)), *votes = calloc((size_t)n_classes, sizeof(double));
    if (!sim || !votes) {
      free(sim);
      free(votes);
      continue;
    }
    const float *q = test + (int64_t)i * d;
    for (int j = 0; j < ntrain; j++) {
      const float *x = train + (int64_t)j * d;
      double s = 0;
      for (int a = 0; a < d; a++) s += (double)q[a] * x[a];
      sim[j] = s;
    }
    for (int n = 0; n < k; n++) { /* k largest by selection; ties -> lower index */
      int best = -1;
      for (int j = 0; j < ntrain; j++)
        if (sim[j] > -INFINITY && (best < 0 || sim[j] > sim[best])) best = j;
      if (best < 0) break;
      votes[ytrain[best]] += exp(sim[best] / 0.07);
      sim[best] = -INFINITY;
    }
    int arg = 0;
    for (int cl = 1; cl < n_classes; cl++)
      if (votes[cl] > votes[arg]) arg = cl;
    correct += arg == ytest[i];
    free(sim);
    free(votes);
  }
  return ntest ? (double)correct / ntest : NAN;
}

/* L2-normalized teacher CLS features of a pool's images (centre view at the global size). */
static gb_status pool_features(gb_trainer *t, const image_pool *p, float *feat) {
  const gb_train_config *c = &t->cfg;
  int gs = c->global_size, D = c->vit.dim, cap = c->n_global * c->batch;
  GB_TRY(gb_vit_prepare(t->teacher, cap, gs, 0)); /* once; the step keeps its own buffers */
  float *x = malloc((size_t)cap * 3 * gs * gs * sizeof(float));
  if (!x) return gb_fail(GB_ERR_NOMEM, "out of memory");
  gb_status s = GB_OK;
  for (int i0 = 0; i0 < p->n && s == GB_OK; i0 += cap) {
    int nb = p->n - i0 < cap ? p->n - i0 : cap;
    for (int b = 0; b < nb && s == GB_OK; b++) {
      float *o = x + (int64_t)b * 3 * gs * gs;
      s = gb_image_resize_center_crop(&p->img[i0 + b], gs, o);
      gb_image_normalize(o, (int64_t)gs * gs, c->vit.mean, c->vit.std);
    }
    if (s == GB_OK) s = gb_vit_forward(t->teacher, x, nb);
    for (int b = 0; s == GB_OK && b < nb; b++) {
      const float *f = t->teacher->a.final + (int64_t)b * D;
      float *o = feat + (int64_t)(i0 + b) * D;
      double n2 = 0;
      for (int j = 0; j < D; j++) n2 += (double)f[j] * f[j];
      float inv = (float)(1.0 / (sqrt(n2) > 1e-12 ? sqrt(n2) : 1e-12));
      for (int j = 0; j < D; j++) o[j] = f[j] * inv;
    }
  }
  free(x);
  return s;
}

static gb_status knn_eval(gb_trainer *t, const image_pool *bank, const image_pool *test, double *acc) {
  int D = t->cfg.vit.dim;
  float *fb = malloc((size_t)bank->n * D * sizeof(float)), *ft = malloc((size_t)test->n * D * sizeof(float));
  gb_status s = fb && ft ? GB_OK : gb_fail(GB_ERR_NOMEM, "out of memory");
  if (s == GB_OK) s = pool_features(t, bank, fb);
  if (s == GB_OK) s = pool_features(t, test, ft);
  if (s == GB_OK) *acc = gb_knn_accuracy(fb, bank->label, bank->n, ft, test->label, test->n, D, 20, bank->n_classes);
  free(fb);
  free(ft);
  return s;
}

static gb_status write_provenance(const gb_train_config *c, const gb_train_opts *o) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "tool", "gradbrain train");
  cJSON_AddStringToObject(j, "version", GB_VERSION);
  cJSON_AddStringToObject(j, "command_line", o->cmdline ? o->cmdline : "");
  cJSON_AddStringToObject(j, "images", o->images);
  cJSON_AddNumberToObject(j, "procedural_images", o->n_images);
  cJSON_AddNumberToObject(j, "procedural_categories", o->categories);
  cJSON_AddNumberToObject(j, "image_size", o->image_size);
  cJSON_AddNumberToObject(j, "threads", o->threads);
  cJSON_AddStringToObject(j, "photometric", c->photometric ? "dino (colour jitter 0.8, grayscale 0.2, blur 1/0.1/0.5, solarize 0.2)" : "none");
  cJSON_AddStringToObject(j, "model_for_analysis", "ckpt_XXXXXX.safetensors = teacher backbone + teacher DINO head");
  char *txt = cJSON_Print(j);
  cJSON_Delete(j);
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/train.json", o->out_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = txt ? fopen(tmp, "wb") : NULL;
  int ok = f && fputs(txt, f) >= 0;
  if (f) ok = fclose(f) == 0 && ok;
  free(txt);
  if (!ok || rename(tmp, path) != 0) return gb_fail(GB_ERR_IO, "%s: cannot write", path);
  (void)c;
  return GB_OK;
}

gb_status gb_train_run(const gb_train_config *c, const gb_train_opts *o) {
  if (c->iters < 1 || c->save_every < 1)
    return gb_fail(GB_ERR_ARG, "--iters %lld and --save-every %lld: expected >= 1", (long long)c->iters,
                   (long long)c->save_every);
  int64_t *its = NULL;
  int nck = 0;
  int64_t start = 0;
  if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) return gb_fail(GB_ERR_IO, "%s: cannot create directory", o->out_dir);
  GB_TRY(gb_ckpt_list(o->out_dir, &its, &nck));
  if (nck && !o->resume && !o->overwrite) {
    free(its);
    return gb_fail(GB_ERR_EXISTS, "%s: holds %d checkpoints (pass --resume to continue, or --overwrite to start again)",
                   o->out_dir, nck);
  }
  if (o->resume && nck) start = its[nck - 1];
  if (o->overwrite && !o->resume && nck) { /* start again: remove this run's old checkpoint files */
    gb_warn("%s: --overwrite: removing %d old checkpoints", o->out_dir, nck);
    const char *suffix[4] = {".json", ".safetensors", ".student.safetensors", ".state.safetensors"};
    for (int i = 0; i < nck; i++)
      for (int j = 0; j < 4; j++) {
        char p[4200];
        gb_ckpt_path(p, sizeof p, o->out_dir, its[i], suffix[j]);
        remove(p);
      }
  }
  free(its);

  image_pool pool, bank, test;
  memset(&bank, 0, sizeof bank);
  memset(&test, 0, sizeof test);
  int procedural = !strcmp(o->images, "procedural");
  gb_status s = procedural ? pool_procedural(&pool, o->n_images, o->categories, o->image_size, c->seed, 0)
                           : pool_dir(&pool, o->images, o->image_size);
  if (s != GB_OK) {
    pool_free(&pool);
    return s;
  }
  int knn = procedural && o->knn_every > 0;
  if (knn) { /* memory bank: the first images of the pool; test: held-out indices after it */
    int nb = pool.n < 1000 ? pool.n : 1000;
    s = pool_procedural(&bank, nb, o->categories, o->image_size, c->seed, 0);
    if (s == GB_OK) s = pool_procedural(&test, o->n_eval, o->categories, o->image_size, c->seed, (uint64_t)o->n_images);
  }
  gb_trainer t;
  if (s == GB_OK) s = gb_trainer_create(&t, c, NULL, NULL);
  else memset(&t, 0, sizeof t);
  char *hist_txt = NULL;
  if (s == GB_OK && start > 0) {
    s = gb_trainer_load(&t, o->out_dir, start, &hist_txt);
    if (s == GB_OK) gb_info("resumed from %s/ckpt_%06lld (AdamW step %lld)", o->out_dir, (long long)start, (long long)t.adam_t);
  }
  if (s == GB_OK) s = gb_train_write_hf_config(&c->vit, o->out_dir);
  if (s == GB_OK) s = write_provenance(c, o);
  cJSON *hist = hist_txt ? cJSON_Parse(hist_txt) : cJSON_CreateArray();
  free(hist_txt);
  if (!hist) hist = cJSON_CreateArray();
  int B = c->batch;
  float *global = malloc((size_t)c->n_global * B * 3 * c->global_size * c->global_size * sizeof(float));
  float *local = malloc((size_t)(c->n_local ? c->n_local : 1) * B * 3 * c->local_size * c->local_size * sizeof(float));
  if (s == GB_OK && (!global || !local)) s = gb_fail(GB_ERR_NOMEM, "out of memory for the crops");
  if (s == GB_OK && start == 0) {
    if (knn) {
      double acc;
      s = knn_eval(&t, &bank, &test, &acc);
      cJSON *e = cJSON_CreateObject();
      cJSON_AddNumberToObject(e, "it", 0);
      cJSON_AddNumberToObject(e, "knn", acc);
      cJSON_AddItemToArray(hist, e);
      gb_info("iteration 0: k-NN accuracy %.3f (chance %.3f)", acc, 1.0 / o->categories);
    }
  }
  if (s == GB_OK)
    gb_info("training %s ViT dim %d depth %d heads %d patch %d on %d %s images: %lld iterations, batch %d, %d global (%d px) + %d local (%d px) crops",
            gb_vit_arch_name(c->vit.arch), c->vit.dim, c->vit.depth, c->vit.heads, c->vit.patch, pool.n,
            procedural ? "procedural" : "decoded", (long long)c->iters, B, c->n_global, c->global_size, c->n_local,
            c->local_size);
  gb_progress pr;
  gb_progress_start(&pr, "train", (o->stop_at > 0 && o->stop_at < c->iters ? o->stop_at : c->iters) - start, "iters");
  double t0 = gb_now();
  int64_t stop = o->stop_at > 0 && o->stop_at < c->iters ? o->stop_at : c->iters;
  double hp_sum = 0, hb_sum = 0; /* collapse monitors summed since the last checkpoint */
  int h_n = 0;
  while (s == GB_OK && t.it < stop) {
    gb_train_stats st;
    s = make_crops(c, &pool, t.it, global, local);
    if (s == GB_OK) s = gb_trainer_step(&t, global, local, &st);
    if (s != GB_OK) break;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "it", (double)t.it);
    cJSON_AddNumberToObject(e, "loss", st.loss);
    cJSON_AddNumberToObject(e, "dino", st.dino);
    cJSON_AddNumberToObject(e, "teacher_entropy", st.teacher_entropy);
    cJSON_AddNumberToObject(e, "teacher_batch_entropy", st.teacher_batch_entropy);
    if (c->koleo_weight > 0) cJSON_AddNumberToObject(e, "koleo", st.koleo);
    if (c->ibot_weight > 0) cJSON_AddNumberToObject(e, "ibot", st.ibot);
    cJSON_AddNumberToObject(e, "lr", st.sched.lr);
    cJSON_AddNumberToObject(e, "wd", st.sched.wd);
    cJSON_AddNumberToObject(e, "momentum", st.sched.momentum);
    cJSON_AddNumberToObject(e, "teacher_temp", st.sched.teacher_temp);
    cJSON_AddNumberToObject(e, "grad_norm_backbone", st.grad_norm_backbone);
    cJSON_AddNumberToObject(e, "grad_norm_head", st.grad_norm_head);
    if (knn && (t.it % o->knn_every == 0 || t.it == c->iters)) {
      double acc;
      s = knn_eval(&t, &bank, &test, &acc);
      cJSON_AddNumberToObject(e, "knn", acc);
      gb_info("iteration %lld: loss %.4f, k-NN accuracy %.3f", (long long)t.it, st.loss, acc);
    }
    cJSON_AddItemToArray(hist, e);
    gb_progress_add(&pr, 1);
    hp_sum += st.teacher_entropy;
    hb_sum += st.teacher_batch_entropy;
    h_n++;
    if (s == GB_OK && (t.it % c->save_every == 0 || t.it == c->iters)) {
      char *h = cJSON_PrintUnformatted(hist);
      s = h ? gb_trainer_save(&t, o->out_dir, h) : gb_fail(GB_ERR_NOMEM, "out of memory");
      free(h);
      double lnk = log((double)c->head.k), hp = hp_sum / h_n, hb = hb_sum / h_n;
      if (s == GB_OK)
        gb_info("iteration %lld: loss %.4f, teacher targets: entropy %.2f per crop, %.2f of the batch mean (uniform: "
                "ln K = %.2f), saved %s/ckpt_%06lld.safetensors",
                (long long)t.it, st.loss, hp, hb, lnk, o->out_dir, (long long)t.it);
      if (s == GB_OK && hp > 0.95 * lnk)
        gb_warn("iterations %lld-%lld: the teacher's targets are nearly uniform (mean entropy %.2f of ln K = %.2f): the "
                "DINO head is collapsing; a lower --teacher-temp, --koleo or weaker augmentation may help",
                (long long)(t.it - h_n + 1), (long long)t.it, hp, lnk);
      if (s == GB_OK && hb < 0.05 * lnk)
        gb_warn("iterations %lld-%lld: every crop's target is on the same few prototypes (entropy of the batch mean "
                "%.2f of ln K = %.2f): the DINO head is collapsing to one mode",
                (long long)(t.it - h_n + 1), (long long)t.it, hb, lnk);
      hp_sum = hb_sum = 0;
      h_n = 0;
    }
  }
  gb_progress_end(&pr);
  if (s == GB_OK && t.it > start)
    gb_info("trained %lld iterations in %.1f s (%.1f images/s)", (long long)(t.it - start), gb_now() - t0,
            (double)(t.it - start) * B / (gb_now() - t0));
  cJSON_Delete(hist);
  free(global);
  free(local);
  gb_trainer_free(&t);
  pool_free(&pool);
  pool_free(&bank);
  pool_free(&test);
  return s;
}
