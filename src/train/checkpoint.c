/* Training checkpoints: teacher/student backbones + DINO heads in the HF DINOv3 key layout
 * (what `extract` loads), optimizer state, and a JSON with iteration, options and history. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gradbrain/arena.h"
#include "gradbrain/ibot.h"
#include "gradbrain/safetensors.h"
#include "gradbrain/textfile.h"
#include "gradbrain/train.h"

typedef struct {
  char name[96];
  int ndim;
  int64_t shape[4];
  float *data;
} tensor_ref;

static void ref(tensor_ref *r, int *n, const char *name, float *data, int ndim, int64_t s0, int64_t s1, int64_t s2,
                int64_t s3) {
  tensor_ref *t = &r[(*n)++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  t->shape[0] = s0;
  t->shape[1] = s1;
  t->shape[2] = s2;
  t->shape[3] = s3;
  t->data = data;
}

static int backbone_ntensors(const gb_vit_config *c) { return 6 + 19 * c->depth; }

/* The HF DINOv3ViTModel tensors of a parameter set (names relative to `prefix`). */
static int backbone_refs(const gb_vit_config *c, const gb_vit_params *p, const char *prefix, tensor_ref *r) {
  int n = 0;
  int64_t D = c->dim, F = c->mlp_hidden, P = c->patch;
  char nm[96];
#define NM(fmt, ...) (snprintf(nm, sizeof nm, "%s" fmt, prefix, __VA_ARGS__), nm)
  ref(r, &n, NM("%s", "embeddings.cls_token"), p->cls, 3, 1, 1, D, 0);
  if (c->n_reg) ref(r, &n, NM("%s", "embeddings.register_tokens"), p->reg, 3, 1, c->n_reg, D, 0);
  ref(r, &n, NM("%s", "embeddings.patch_embeddings.weight"), p->patch_w, 4, D, 3, P, P);
  ref(r, &n, NM("%s", "embeddings.patch_embeddings.bias"), p->patch_b, 1, D, 0, 0, 0);
  for (int l = 0; l < c->depth; l++) {
    int64_t lD = (int64_t)l * D;
    ref(r, &n, NM("layer.%d.norm1.weight", l), p->ln1_w + lD, 1, D, 0, 0, 0);
    ref(r, &n, NM("layer.%d.norm1.bias", l), p->ln1_b + lD, 1, D, 0, 0, 0);
    const char *qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int j = 0; j < 3; j++) {
      ref(r, &n, NM("layer.%d.attention.%s.weight", l, qkv[j]), p->qkv_w + 3 * lD * D + j * D * D, 2, D, D, 0, 0);
      ref(r, &n, NM("layer.%d.attention.%s.bias", l, qkv[j]), p->qkv_b + 3 * lD + j * D, 1, D, 0, 0, 0);
    }
    ref(r, &n, NM("layer.%d.attention.o_proj.weight", l), p->proj_w + lD * D, 2, D, D, 0, 0);
    ref(r, &n, NM("layer.%d.attention.o_proj.bias", l), p->proj_b + lD, 1, D, 0, 0, 0);
    ref(r, &n, NM("layer.%d.layer_scale1.lambda1", l), p->ls1 + lD, 1, D, 0, 0, 0);
    ref(r, &n, NM("layer.%d.norm2.weight", l), p->ln2_w + lD, 1, D, 0, 0, 0);
    ref(r, &n, NM("layer.%d.norm2.bias", l), p->ln2_b + lD, 1, D, 0, 0, 0);
    ref(r, &n, NM("layer.%d.mlp.up_proj.weight", l), p->fc1_w + (int64_t)l * F * D, 2, F, D, 0, 0);
    ref(r, &n, NM("layer.%d.mlp.up_proj.bias", l), p->fc1_b + (int64_t)l * F, 1, F, 0, 0, 0);
    ref(r, &n, NM("layer.%d.mlp.down_proj.weight", l), p->fc2_w + lD * F, 2, D, F, 0, 0);
    ref(r, &n, NM("layer.%d.mlp.down_proj.bias", l), p->fc2_b + lD, 1, D, 0, 0, 0);
    ref(r, &n, NM("layer.%d.layer_scale2.lambda1", l), p->ls2 + lD, 1, D, 0, 0, 0);
  }
  ref(r, &n, NM("%s", "norm.weight"), p->norm_w, 1, D, 0, 0, 0);
  ref(r, &n, NM("%s", "norm.bias"), p->norm_b, 1, D, 0, 0, 0);
#undef NM
  return n;
}

/* The head; a weight-normed last layer (ones != NULL) as PyTorch's weight_norm names it:
 * weight_g (k x 1, fixed to ones) and weight_v (V). */
static int head_refs(const gb_dhead_config *h, const gb_dhead_params *p, float *ones, tensor_ref *r) {
  int n = 0;
  ref(r, &n, "dino_head.mlp.0.weight", p->w0, 2, h->hidden, h->in, 0, 0);
  ref(r, &n, "dino_head.mlp.0.bias", p->b0, 1, h->hidden, 0, 0, 0);
  ref(r, &n, "dino_head.mlp.2.weight", p->w1, 2, h->hidden, h->hidden, 0, 0);
  ref(r, &n, "dino_head.mlp.2.bias", p->b1, 1, h->hidden, 0, 0, 0);
  ref(r, &n, "dino_head.mlp.4.weight", p->w2, 2, h->bottleneck, h->hidden, 0, 0);
  ref(r, &n, "dino_head.mlp.4.bias", p->b2, 1, h->bottleneck, 0, 0, 0);
  if (ones) {
    ref(r, &n, "dino_head.last_layer.weight_g", ones, 2, h->k, 1, 0, 0);
    ref(r, &n, "dino_head.last_layer.weight_v", p->last, 2, h->k, h->bottleneck, 0, 0);
  } else {
    ref(r, &n, "dino_head.last_layer.weight", p->last, 2, h->k, h->bottleneck, 0, 0);
  }
  return n;
}

static gb_status write_refs(const char *path, const tensor_ref *r, int n) {
  gb_st_write_item *items = calloc((size_t)n, sizeof *items);
  if (!items) return gb_fail(GB_ERR_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    items[i].name = r[i].name;
    items[i].ndim = r[i].ndim;
    for (int d = 0; d < r[i].ndim; d++) items[i].shape[d] = r[i].shape[d];
    items[i].data = r[i].data;
  }
  gb_status s = gb_safetensors_write(path, items, n, 0);
  free(items);
  return s;
}

static gb_status read_refs(const char *path, const tensor_ref *r, int n) {
  gb_safetensors st;
  GB_TRY(gb_safetensors_open(path, &st));
  gb_status s = GB_OK;
  for (int i = 0; i < n && s == GB_OK; i++) {
    const gb_st_tensor *t = gb_safetensors_find(&st, r[i].name);
    int64_t numel = 1;
    for (int d = 0; d < r[i].ndim; d++) numel *= r[i].shape[d];
    if (!t) s = gb_fail(GB_ERR_FORMAT, "%s: missing tensor '%s'", path, r[i].name);
    else if (t->numel != numel)
      s = gb_fail(GB_ERR_SHAPE, "%s: tensor '%s' has %lld elements, expected %lld (a different --arch?)", path,
                  r[i].name, (long long)t->numel, (long long)numel);
    else s = gb_safetensors_read_f32(&st, t, r[i].data);
  }
  gb_safetensors_close(&st);
  return s;
}

void gb_ckpt_path(char *out, size_t n, const char *dir, int64_t it, const char *suffix) {
  snprintf(out, n, "%s/ckpt_%06lld%s", dir, (long long)it, suffix);
}

/* Model file: backbone + head of one network, written (save = 1) or read into place. */
static gb_status model_file(const char *path, int save, const gb_vit_config *vc, const gb_vit_params *vp,
                            const gb_dhead_config *hc, const gb_dhead_params *hp, int norm_last_layer) {
  tensor_ref *r = calloc((size_t)backbone_ntensors(vc) + 8, sizeof *r);
  float *ones = norm_last_layer ? malloc((size_t)hc->k * sizeof(float)) : NULL;
  if (!r || (norm_last_layer && !ones)) {
    free(r);
    free(ones);
    return gb_fail(GB_ERR_NOMEM, "out of memory");
  }
  for (int k = 0; ones && k < hc->k; k++) ones[k] = 1.0f;
  int n = backbone_refs(vc, vp, "", r);
  n += head_refs(hc, hp, ones, r + n);
  gb_status s = save ? write_refs(path, r, n) : read_refs(path, r, n);
  for (int k = 0; s == GB_OK && !save && ones && k < hc->k; k++)
    if (ones[k] != 1.0f)
      s = gb_fail(GB_ERR_FORMAT, "%s: 'dino_head.last_layer.weight_g'[%d] is %g, expected 1 (g is fixed in training)",
                  path, k, ones[k]);
  free(ones);
  free(r);
  return s;
}

static int state_refs(const gb_trainer *t, tensor_ref *r) {
  int n = 0;
  ref(r, &n, "center", t->center, 1, t->cfg.head.k, 0, 0, 0);
  ref(r, &n, "adam.backbone.m", t->back.m, 1, t->back.n, 0, 0, 0);
  ref(r, &n, "adam.backbone.v", t->back.v, 1, t->back.n, 0, 0, 0);
  ref(r, &n, "adam.head.m", t->head.m, 1, t->head.n, 0, 0, 0);
  ref(r, &n, "adam.head.v", t->head.v, 1, t->head.n, 0, 0, 0);
  if (t->ibot) { /* iBOT (ibot.h): mask token, patch center, the token's AdamW moments */
    ref(r, &n, "ibot.mask_token", t->ibot->token, 1, t->ibot->D, 0, 0, 0);
    ref(r, &n, "ibot.center", t->ibot->center, 1, t->ibot->K, 0, 0, 0);
    ref(r, &n, "adam.ibot.m", t->ibot->adam_m, 1, t->ibot->D, 0, 0, 0);
    ref(r, &n, "adam.ibot.v", t->ibot->adam_v, 1, t->ibot->D, 0, 0, 0);
    if (t->ibot->separate) { /* the separate iBOT head, flat in the DINO head's layout */
      ref(r, &n, "ibot_head.student", t->ibot->ishead_mem, 1, t->ibot->ihn, 0, 0, 0);
      ref(r, &n, "ibot_head.teacher", t->ibot->ithead_mem, 1, t->ibot->ihn, 0, 0, 0);
      ref(r, &n, "adam.ibot_head.m", t->ibot->im, 1, t->ibot->ihn, 0, 0, 0);
      ref(r, &n, "adam.ibot_head.v", t->ibot->iv, 1, t->ibot->ihn, 0, 0, 0);
    }
  }
  return n;
}

static cJSON *config_json(const gb_train_config *c) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "dim", c->vit.dim);
  cJSON_AddNumberToObject(o, "depth", c->vit.depth);
  cJSON_AddNumberToObject(o, "heads", c->vit.heads);
  cJSON_AddNumberToObject(o, "patch", c->vit.patch);
  cJSON_AddNumberToObject(o, "registers", c->vit.n_reg);
  cJSON_AddNumberToObject(o, "head_hidden", c->head.hidden);
  cJSON_AddNumberToObject(o, "head_bottleneck", c->head.bottleneck);
  cJSON_AddNumberToObject(o, "head_k", c->head.k);
  cJSON_AddNumberToObject(o, "batch", c->batch);
  cJSON_AddNumberToObject(o, "global_crops", c->n_global);
  cJSON_AddNumberToObject(o, "local_crops", c->n_local);
  cJSON_AddNumberToObject(o, "global_size", c->global_size);
  cJSON_AddNumberToObject(o, "local_size", c->local_size);
  cJSON_AddItemToObject(o, "global_scale", cJSON_CreateDoubleArray(c->global_scale, 2));
  cJSON_AddItemToObject(o, "local_scale", cJSON_CreateDoubleArray(c->local_scale, 2));
  cJSON_AddNumberToObject(o, "iters", (double)c->iters);
  cJSON_AddNumberToObject(o, "lr", c->lr);
  cJSON_AddNumberToObject(o, "min_lr", c->min_lr);
  cJSON_AddNumberToObject(o, "warmup_iters", (double)c->warmup_iters);
  cJSON_AddNumberToObject(o, "wd_start", c->wd0);
  cJSON_AddNumberToObject(o, "wd_end", c->wd1);
  cJSON_AddNumberToObject(o, "momentum_start", c->mom0);
  cJSON_AddNumberToObject(o, "momentum_end", c->mom1);
  cJSON_AddNumberToObject(o, "teacher_temp_start", c->teacher_temp0);
  cJSON_AddNumberToObject(o, "teacher_temp_end", c->teacher_temp1);
  cJSON_AddNumberToObject(o, "teacher_temp_warmup", (double)c->teacher_temp_warmup);
  cJSON_AddNumberToObject(o, "student_temp", c->student_temp);
  cJSON_AddNumberToObject(o, "center_momentum", c->center_momentum);
  cJSON_AddStringToObject(o, "centering", c->sinkhorn ? "sinkhorn-knopp" : "ema");
  cJSON_AddNumberToObject(o, "clip", c->clip);
  cJSON_AddNumberToObject(o, "koleo_weight", c->koleo_weight);
  if (c->norm_last_layer) /* only then: checkpoints with a plain last layer keep their config */
    cJSON_AddStringToObject(o, "last_layer", "weight-normed, g = 1 (DINOv2 norm_last_layer)");
  if (c->ibot_weight > 0) { /* only then: checkpoints without iBOT keep their config */
    cJSON_AddNumberToObject(o, "ibot_weight", c->ibot_weight);
    cJSON_AddNumberToObject(o, "ibot_mask_probability", c->ibot_mask_prob);
    cJSON_AddItemToObject(o, "ibot_mask_ratio", cJSON_CreateDoubleArray(c->ibot_ratio, 2));
    cJSON_AddStringToObject(o, "ibot_head", c->ibot_separate_head ? "separate" : "shared DINO head");
    cJSON_AddStringToObject(o, "ibot_masking", "block-wise, per crop from (seed, iteration, crop)");
  }
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
  cJSON_AddStringToObject(o, "seed", seed);
  return o;
}

/* Writes text to path atomically (path.tmp, fsync, rename); refuses to replace a file. */
static gb_status write_text_atomic(const char *path, const char *text, int overwrite) {
  if (!overwrite && access(path, F_OK) == 0)
    return gb_fail(GB_ERR_EXISTS, "%s: exists (pass --overwrite to replace it)", path);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return gb_fail(GB_ERR_IO, "%s: cannot create", tmp);
  size_t len = strlen(text);
  int ok = fwrite(text, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return gb_fail(GB_ERR_IO, "%s: cannot write", path);
  }
  return GB_OK;
}

gb_status gb_train_write_hf_config(const gb_vit_config *c, const char *dir) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "model_type", "dinov3_vit");
  cJSON_AddNumberToObject(o, "hidden_size", c->dim);
  cJSON_AddNumberToObject(o, "num_hidden_layers", c->depth);
  cJSON_AddNumberToObject(o, "num_attention_heads", c->heads);
  cJSON_AddNumberToObject(o, "intermediate_size", c->mlp_hidden);
  cJSON_AddNumberToObject(o, "patch_size", c->patch);
  cJSON_AddNumberToObject(o, "num_register_tokens", c->n_reg);
  cJSON_AddNumberToObject(o, "layer_norm_eps", c->eps);
  cJSON_AddNumberToObject(o, "rope_theta", c->rope_base);
  cJSON_AddNumberToObject(o, "image_size", c->native_size);
  cJSON_AddStringToObject(o, "hidden_act", "gelu");
  cJSON_AddFalseToObject(o, "key_bias");
  cJSON_AddStringToObject(o, "trained_by", "gradbrain train (DINO self-distillation)");
  char *txt = cJSON_Print(o);
  cJSON_Delete(o);
  if (!txt) return gb_fail(GB_ERR_NOMEM, "out of memory");
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  gb_status s = write_text_atomic(path, txt, 1);
  free(txt);
  return s;
}

gb_status gb_trainer_save(const gb_trainer *t, const char *dir, const char *history_json) {
  const gb_train_config *c = &t->cfg;
  char path[4096];
  gb_ckpt_path(path, sizeof path, dir, t->it, ".safetensors");
  GB_TRY(model_file(path, 1, &c->vit, &t->teacher->p, &c->head, &t->thead, c->norm_last_layer));
  gb_ckpt_path(path, sizeof path, dir, t->it, ".student.safetensors");
  GB_TRY(model_file(path, 1, &c->vit, &t->student->p, &c->head, &t->shead, c->norm_last_layer));
  tensor_ref r[16];
  int n = state_refs(t, r);
  gb_ckpt_path(path, sizeof path, dir, t->it, ".state.safetensors");
  GB_TRY(write_refs(path, r, n));

  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "iteration", (double)t->it);
  cJSON_AddNumberToObject(o, "adam_step", (double)t->adam_t);
  cJSON_AddStringToObject(o, "rng_state", "derived from (seed, iteration): gb_rng_derive per iteration and image slot");
  gb_train_sched sc;
  gb_train_schedule(c, t->it, &sc);
  cJSON *nx = cJSON_AddObjectToObject(o, "next_schedule");
  cJSON_AddNumberToObject(nx, "lr", sc.lr);
  cJSON_AddNumberToObject(nx, "wd", sc.wd);
  cJSON_AddNumberToObject(nx, "momentum", sc.momentum);
  cJSON_AddNumberToObject(nx, "teacher_temp", sc.teacher_temp);
  cJSON_AddItemToObject(o, "config", config_json(c));
  cJSON_AddStringToObject(o, "teacher", "ckpt_XXXXXX.safetensors (analyse this one)");
  cJSON *h = history_json ? cJSON_Parse(history_json) : NULL;
  cJSON_AddItemToObject(o, "history", h ? h : cJSON_CreateArray());
  char *txt = cJSON_Print(o);
  cJSON_Delete(o);
  if (!txt) return gb_fail(GB_ERR_NOMEM, "out of memory");
  gb_ckpt_path(path, sizeof path, dir, t->it, ".json");
  gb_status s = write_text_atomic(path, txt, 0);
  free(txt);
  return s;
}

gb_status gb_trainer_load(gb_trainer *t, const char *dir, int64_t it, char **history_json) {
  const gb_train_config *c = &t->cfg;
  char path[4096];
  if (history_json) *history_json = NULL;
  gb_ckpt_path(path, sizeof path, dir, it, ".json");
  char *txt = NULL;
  GB_TRY(gb_read_text_file(path, &txt));
  cJSON *o = cJSON_Parse(txt);
  free(txt);
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return gb_fail(GB_ERR_FORMAT, "%s: not a JSON object", path);
  }
  const cJSON *ji = cJSON_GetObjectItemCaseSensitive(o, "iteration");
  const cJSON *ja = cJSON_GetObjectItemCaseSensitive(o, "adam_step");
  /* the options that shape the run must be the same as when it was started */
  cJSON *want = config_json(c);
  const cJSON *have = cJSON_GetObjectItemCaseSensitive(o, "config");
  gb_status s = GB_OK;
  if (!cJSON_IsNumber(ji) || !cJSON_IsNumber(ja) || (int64_t)ji->valuedouble != it)
    s = gb_fail(GB_ERR_FORMAT, "%s: field 'iteration' (expected %lld) or 'adam_step' missing", path, (long long)it);
  else if (!have || !cJSON_Compare(want, have, 1)) {
    char *a = cJSON_PrintUnformatted(want), *b = have ? cJSON_PrintUnformatted(have) : NULL;
    s = gb_fail(GB_ERR_ARG, "%s: --resume with different options: checkpoint has %s, this run %s", path,
                b ? b : "(none)", a ? a : "?");
    free(a);
    free(b);
  }
  cJSON_Delete(want);
  if (s == GB_OK) {
    t->it = it;
    t->adam_t = (int64_t)ja->valuedouble;
    if (history_json) {
      const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "history");
      *history_json = h ? cJSON_PrintUnformatted(h) : NULL;
    }
  }
  cJSON_Delete(o);
  GB_TRY(s);
  gb_ckpt_path(path, sizeof path, dir, it, ".safetensors");
  GB_TRY(model_file(path, 0, &c->vit, &t->teacher->p, &c->head, &t->thead, c->norm_last_layer));
  gb_ckpt_path(path, sizeof path, dir, it, ".student.safetensors");
  GB_TRY(model_file(path, 0, &c->vit, &t->student->p, &c->head, &t->shead, c->norm_last_layer));
  tensor_ref r[16];
  int n = state_refs(t, r);
  gb_ckpt_path(path, sizeof path, dir, it, ".state.safetensors");
  return read_refs(path, r, n);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

gb_status gb_ckpt_list(const char *dir, int64_t **its, int *n) {
  *its = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return gb_fail(GB_ERR_IO, "%s: cannot open checkpoint directory", dir);
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    long long v;
    char tail[64];
    if (sscanf(e->d_name, "ckpt_%lld%63s", &v, tail) != 2 || strcmp(tail, ".json") || v < 0) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      int64_t *nw = realloc(*its, (size_t)cap * sizeof **its);
      if (!nw) {
        closedir(d);
        return gb_fail(GB_ERR_NOMEM, "out of memory");
      }
      *its = nw;
    }
    (*its)[(*n)++] = v;
  }
  closedir(d);
  if (*n) qsort(*its, (size_t)*n, sizeof **its, cmp_i64);
  return GB_OK;
}
