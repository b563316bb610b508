/* The DINO objective of a training checkpoint at extraction: a distinct teacher backbone + head,
 * the checkpoint's EMA center and temperatures (see gradbrain/teacher.h). */
#include "gradbrain/teacher.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gradbrain/arena.h"
#include "gradbrain/log.h"
#include "gradbrain/safetensors.h"
#include "gradbrain/sha256.h"
#include "gradbrain/textfile.h"

/* ---- checkpoint objective state ---- */

/* dir/ckpt_XXXXXX from any dir/ckpt_XXXXXX* path; 0 if the name does not have that form. */
static int ckpt_prefix(const char *path, char *out, size_t n) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  long long it;
  int used = 0;
  if (sscanf(base, "ckpt_%lld%n", &it, &used) != 1 || used < 6) return 0;
  size_t len = (size_t)(base - path) + (size_t)used;
  if (len + 1 > n) return 0;
  memcpy(out, path, len);
  out[len] = 0;
  return 1;
}

void gb_ckpt_objective_free(gb_ckpt_objective *c) {
  gb_free(c->center);
  c->center = NULL;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

gb_status gb_ckpt_objective_read(const char *path, gb_ckpt_objective *c) {
  memset(c, 0, sizeof *c);
  char prefix[4000];
  if (!ckpt_prefix(path, prefix, sizeof prefix))
    return gb_fail(GB_ERR_ARG, "--center-from %s: expected a training checkpoint ckpt_XXXXXX.json (or another ckpt_XXXXXX.* file beside it)", path);
  snprintf(c->json_path, sizeof c->json_path, "%s.json", prefix);
  snprintf(c->state_path, sizeof c->state_path, "%s.state.safetensors", prefix);
  char *txt = NULL;
  GB_TRY(gb_read_text_file(c->json_path, &txt));
  cJSON *o = cJSON_Parse(txt);
  free(txt);
  const cJSON *it = jget(o, "iteration"), *nx = jget(o, "next_schedule"), *cf = jget(o, "config");
  const cJSON *tt = nx ? jget(nx, "teacher_temp") : NULL, *ts = cf ? jget(cf, "student_temp") : NULL;
  const cJSON *k = cf ? jget(cf, "head_k") : NULL, *ce = cf ? jget(cf, "centering") : NULL;
  gb_status s = GB_OK;
  if (!cJSON_IsObject(o)) s = gb_fail(GB_ERR_FORMAT, "%s: not a JSON object", c->json_path);
  else if (!cJSON_IsNumber(it) || !cJSON_IsNumber(tt) || !cJSON_IsNumber(ts) || !cJSON_IsNumber(k) || !cJSON_IsString(ce))
    s = gb_fail(GB_ERR_FORMAT, "%s: expected fields 'iteration', 'next_schedule.teacher_temp', 'config.student_temp', "
                "'config.head_k' and 'config.centering' (a checkpoint of gradbrain train)", c->json_path);
  else if (!(tt->valuedouble > 0) || !(ts->valuedouble > 0) || k->valuedouble < 1)
    s = gb_fail(GB_ERR_FORMAT, "%s: temperatures %g / %g and head_k %g: expected positive values", c->json_path,
                tt->valuedouble, ts->valuedouble, k->valuedouble);
  if (s == GB_OK) {
    c->iteration = (int64_t)it->valuedouble;
    c->teacher_temp = tt->valuedouble;
    c->student_temp = ts->valuedouble;
    c->k = (int)k->valuedouble;
    c->sinkhorn = !strcmp(ce->valuestring, "sinkhorn-knopp");
    const cJSON *iw = jget(cf, "ibot_weight");
    c->ibot_weight = cJSON_IsNumber(iw) ? iw->valuedouble : 0.0;
  }
  cJSON_Delete(o);
  GB_TRY(s);
  if (c->sinkhorn) return GB_OK;
  gb_safetensors st;
  GB_TRY(gb_safetensors_open(c->state_path, &st));
  const gb_st_tensor *t = gb_safetensors_find(&st, "center");
  if (!t || t->numel != c->k) {
    s = gb_fail(GB_ERR_FORMAT, "%s: tensor 'center': expected %d values (config.head_k), found %lld", c->state_path,
                c->k, t ? (long long)t->numel : -1LL);
  } else {
    c->center = gb_alloc((size_t)c->k * sizeof(float), "checkpoint center");
    s = c->center ? gb_safetensors_read_f32(&st, t, c->center) : GB_ERR_NOMEM;
  }
  gb_safetensors_close(&st);
  return s;
}

/* ---- the distinct teacher ---- */

gb_status gb_dino_teacher_open(gb_dino_teacher *t, const char *path, const char *config_path, gb_vit_arch arch,
                               int max_batch, int image_size, const gb_objective *student,
                               const gb_vit_config *student_cfg, uint64_t seed) {
  memset(t, 0, sizeof *t);
  GB_TRY(gb_sha256_file(path, t->sha256));
  gb_vit_heads heads;
  memset(&heads, 0, sizeof heads);
  gb_status s = gb_vit_load(path, config_path, arch, &t->m, &heads);
  if (s == GB_OK && !heads.dino_present)
    gb_warn("--teacher-model %s has no DINO head (dino_head.*): the teacher's head is built from --seed", path);
  if (s == GB_OK)
    s = gb_objective_init(&t->head, GB_OBJ_DINO, t->m->cfg.dim, &heads, seed, student->dino.k, 0, max_batch);
  gb_vit_heads_free(&heads);
  GB_TRY(s);
  const gb_vit_config *c = &t->m->cfg;
  if (t->head.dino.k != student->dino.k)
    return gb_fail(GB_ERR_SHAPE, "--teacher-model %s: DINO head has K = %d prototypes, the student's (--model) K = %d",
                   path, t->head.dino.k, student->dino.k);
  for (int i = 0; i < 3; i++)
    if (c->mean[i] != student_cfg->mean[i] || c->std[i] != student_cfg->std[i])
      return gb_fail(GB_ERR_ARG, "--teacher-model %s: input normalization (%s) differs from the student's (%s)", path,
                     gb_vit_arch_name(c->arch), gb_vit_arch_name(student_cfg->arch));
  if (image_size % c->patch)
    return gb_fail(GB_ERR_ARG, "--image-size %d is not a multiple of the teacher's patch size %d (%s)", image_size,
                   c->patch, path);
  GB_TRY(gb_vit_prepare(t->m, max_batch, image_size, 0));
  t->logits = gb_alloc((size_t)t->head.rows * t->head.dino.k * sizeof(float), "teacher logits");
  return t->logits ? GB_OK : GB_ERR_NOMEM;
}

void gb_dino_teacher_free(gb_dino_teacher *t) {
  if (!t) return;
  gb_objective_free(&t->head);
  gb_vit_free(t->m);
  gb_free(t->logits);
  memset(t, 0, sizeof *t);
}

/* Teacher logits of nb images into t->logits. */
static gb_status teacher_logits(gb_dino_teacher *t, const float *images, int nb) {
  if (nb > t->head.max_batch) return gb_fail(GB_ERR_ARG, "teacher: batch of %d, set up for %d", nb, t->head.max_batch);
  GB_TRY(gb_vit_forward(t->m, images, nb));
  dino_head_forward(&t->head, t->m->a.final, nb, t->logits);
  return GB_OK;
}

gb_status gb_dino_teacher_center_add(gb_dino_teacher *t, gb_objective *o, const float *images, int nb) {
  GB_TRY(teacher_logits(t, images, nb));
  int K = o->dino.k;
  for (int i = 0; i < nb; i++)
    for (int j = 0; j < K; j++) o->center_sum[j] += t->logits[(int64_t)i * K + j];
  o->center_count += nb;
  return GB_OK;
}

/* L_i = -sum_k p_k log q_k, p = softmax((t - c)/tt), q = softmax(s/ts); dL/ds = (q - p)/ts. */
gb_status gb_dino_loss_grad_logits(gb_objective *o, const float *fs, const float *lt, int nb, float *loss,
                                   float *dfs) {
  if (o->kind != GB_OBJ_DINO) return gb_fail(GB_ERR_ARG, "a distinct teacher needs --objective dino");
  if (!o->center_ready) return gb_fail(GB_ERR_ARG, "DINO objective: the center has not been computed");
  if (nb > o->max_batch) return gb_fail(GB_ERR_ARG, "objective: batch of %d, set up for %d", nb, o->max_batch);
  int K = o->dino.k;
  double ts = o->student_temp, tt = o->teacher_temp;
  dino_head_forward(o, fs, nb, o->ls);
  for (int i = 0; i < nb; i++) {
    const float *s = o->ls + (int64_t)i * K, *t = lt + (int64_t)i * K;
    float *d = o->dl + (int64_t)i * K;
    double tmax = -INFINITY, smax = -INFINITY;
    for (int j = 0; j < K; j++) {
      double a = (t[j] - o->center[j]) / tt, b = s[j] / ts;
      if (a > tmax) tmax = a;
      if (b > smax) smax = b;
    }
    double tsum = 0, ssum = 0;
    for (int j = 0; j < K; j++) {
      tsum += exp((t[j] - o->center[j]) / tt - tmax);
      ssum += exp(s[j] / ts - smax);
    }
    double lse_s = smax + log(ssum), l = 0;
    for (int j = 0; j < K; j++) {
      double p = exp((t[j] - o->center[j]) / tt - tmax) / tsum, q = exp(s[j] / ts - smax) / ssum;
      l -= p * (s[j] / ts - lse_s);
      d[j] = (float)((q - p) / ts);
    }
    loss[i] = (float)l;
  }
  memset(o->dl + (int64_t)nb * K, 0, (size_t)(o->rows - nb) * K * sizeof(float));
  dino_head_backward(o, o->dl, nb, dfs);
  return GB_OK;
}

gb_status gb_dino_teacher_batch_run(gb_signal_batch *s, const float *student, const float *teacher, int nb) {
  gb_dino_teacher *t = s->teacher;
  gb_vit *m = s->m;
  if (s->obj) GB_TRY(teacher_logits(t, teacher ? teacher : student, nb));
  GB_TRY(gb_vit_forward(m, student, nb));
  if (!s->obj) return GB_OK;
  GB_TRY(gb_dino_loss_grad_logits(s->obj, m->a.final, t->logits, nb, s->loss, s->dfs));
  gb_vit_backward(m, s->dfs, nb, s->stop_layer, NULL);
  return GB_OK;
}

/* ---- extract options ---- */

gb_status gb_extract_teacher_setup(const gb_extract_opts *o, const gb_vit *student, gb_objective *obj, int max_batch,
                                   int need_rules, gb_dino_teacher *t, int *center_set, char *desc, int n,
                                   char teacher_sha[65]) {
  *center_set = 0;
  teacher_sha[0] = 0;
  snprintf(desc, (size_t)n, "teacher = the model itself; center = mean teacher logits over the stimuli; temperatures 0.07 / 0.1");
  if (!o->teacher_model_path && !o->center_from) return GB_OK;
  if (o->objective != GB_OBJ_DINO)
    return gb_fail(GB_ERR_ARG, "--teacher-model / --center-from apply to --objective dino, not %s", gb_objective_name(o->objective));
  if (!obj || obj->kind != GB_OBJ_DINO)
    return gb_fail(GB_ERR_ARG, "--teacher-model / --center-from need a signal computed from the objective (backprop)");
  if (o->teacher_model_path && need_rules)
    return gb_fail(GB_ERR_UNSUPPORTED, "--teacher-model: the learning rules (fa, dfa, td-*, pc) use the model as its own teacher; "
                   "extract forward,backprop with a distinct teacher");
  char ctext[600] = "center = mean teacher logits over the stimuli (first pass)";
  char ttext[600] = "temperatures: teacher 0.07, student 0.1";
  if (o->center_from) {
    gb_ckpt_objective co;
    GB_TRY(gb_ckpt_objective_read(o->center_from, &co));
    gb_status s = GB_OK;
    if (co.k != obj->dino.k)
      s = gb_fail(GB_ERR_SHAPE, "--center-from %s: the checkpoint has K = %d prototypes, the DINO head of %s has %d",
                  co.json_path, co.k, o->model_path, obj->dino.k);
    if (s == GB_OK) {
      obj->teacher_temp = (float)co.teacher_temp;
      obj->student_temp = (float)co.student_temp;
      snprintf(ttext, sizeof ttext, "temperatures from %.300s: teacher %.6g (schedule at iteration %lld), student %.6g",
               co.json_path, co.teacher_temp, (long long)co.iteration, co.student_temp);
      if (co.sinkhorn) {
        snprintf(ctext, sizeof ctext, "center = mean teacher logits over the stimuli (first pass): the checkpoint used "
                 "Sinkhorn-Knopp targets, which mix the images of a batch");
        gb_warn("%s: trained with Sinkhorn-Knopp centering; the per-image objective uses the stimulus-mean center instead", co.json_path);
      } else {
        s = gb_objective_set_center(obj, co.center);
        *center_set = 1;
        snprintf(ctext, sizeof ctext, "center = EMA center of %.300s (iteration %lld)", co.state_path, (long long)co.iteration);
      }
      if (co.ibot_weight > 0) {
        size_t l = strlen(ttext);
        snprintf(ttext + l, sizeof ttext - l, "; the run's iBOT patch term (weight %g) is not included", co.ibot_weight);
        gb_warn("%s: trained with an iBOT patch loss (weight %g); the extracted objective is its DINO CLS term only",
                co.json_path, co.ibot_weight);
      }
    }
    gb_ckpt_objective_free(&co);
    GB_TRY(s);
  }
  char tdesc[600] = "teacher = the model itself";
  if (o->teacher_model_path) {
    GB_TRY(gb_dino_teacher_open(t, o->teacher_model_path, NULL, GB_VIT_AUTO, max_batch, o->image_size, obj, &student->cfg,
                                o->seed));
    memcpy(teacher_sha, t->sha256, 65);
    snprintf(tdesc, sizeof tdesc, "teacher = %.200s (%s), its own %.200s", o->teacher_model_path, gb_vit_arch_name(t->m->cfg.arch),
             t->head.head_desc);
  }
  snprintf(desc, (size_t)n, "student = %.200s with its DINO head (taps); %.600s; %.600s; %.600s", o->model_path, tdesc, ctext, ttext);
  return GB_OK;
}
