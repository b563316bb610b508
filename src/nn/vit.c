/* Vision Transformer: parameter layout, buffers, forward and backward passes. */
#include "gradbrain/vit.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/log.h"
#include "gradbrain/nn.h"
#include "fastmath.h"
#include "par.h"
#include "small_gemm.h"
#include "gradbrain/rng.h"

static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f}, IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};
static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f},
                   CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

const char *gb_vit_arch_name(gb_vit_arch a) {
  switch (a) {
    case GB_VIT_DINOV3: return "dinov3";
    case GB_VIT_DINOV2: return "dinov2";
    case GB_VIT_CLIP: return "clip";
    default: return "auto";
  }
}

int gb_vit_arch_parse(const char *s) {
  if (!strcmp(s, "auto")) return GB_VIT_AUTO;
  if (!strcmp(s, "dinov3")) return GB_VIT_DINOV3;
  if (!strcmp(s, "dinov2")) return GB_VIT_DINOV2;
  if (!strcmp(s, "clip")) return GB_VIT_CLIP;
  return -1;
}

void gb_vit_config_default(gb_vit_config *c, gb_vit_arch arch, int dim, int depth, int heads, int patch,
                           int n_reg) {
  memset(c, 0, sizeof *c);
  c->arch = arch;
  c->dim = dim;
  c->depth = depth;
  c->heads = heads;
  c->mlp_hidden = 4 * dim;
  c->patch = patch;
  c->n_reg = n_reg;
  c->native_size = 224;
  c->act = GB_ACT_GELU;
  memcpy(c->mean, IMAGENET_MEAN, sizeof c->mean);
  memcpy(c->std, IMAGENET_STD, sizeof c->std);
  if (arch == GB_VIT_DINOV3) {
    c->rope = 1;
    c->rope_base = 100.0;
    c->eps = 1e-5f;
    c->layerscale = 1;
  } else if (arch == GB_VIT_DINOV2) {
    c->eps = 1e-6f;
    c->layerscale = 1;
    c->native_size = 518;
    c->pos_grid = 518 / patch;
  } else {
    c->eps = 1e-5f;
    c->ln_pre = 1;
    c->act = GB_ACT_QUICKGELU;
    c->n_reg = 0;
    c->pos_grid = 224 / patch;
    memcpy(c->mean, CLIP_MEAN, sizeof c->mean);
    memcpy(c->std, CLIP_STD, sizeof c->std);
  }
  snprintf(c->config_source, sizeof c->config_source, "defaults");
}

/* Walks the parameter layout; with mem == NULL only counts. */
static int64_t layout(const gb_vit_config *c, float *mem, gb_vit_params *p) {
  int64_t D = c->dim, L = c->depth, F = c->mlp_hidden, off = 0;
  gb_vit_params q;
  memset(&q, 0, sizeof q);
#define TAKE(field, n)                   \
  do {                                   \
    q.field = mem ? mem + off : NULL;    \
    off += (n);                          \
  } while (0)
  TAKE(patch_w, D * 3 * c->patch * c->patch);
  TAKE(patch_b, D);
  TAKE(cls, D);
  if (c->n_reg) TAKE(reg, c->n_reg * D);
  if (c->pos_grid) TAKE(pos, (1 + (int64_t)c->pos_grid * c->pos_grid) * D);
  if (c->ln_pre) {
    TAKE(ln_pre_w, D);
    TAKE(ln_pre_b, D);
  }
  TAKE(ln1_w, L * D);
  TAKE(ln1_b, L * D);
  TAKE(qkv_w, L * 3 * D * D);
  TAKE(qkv_b, L * 3 * D);
  TAKE(proj_w, L * D * D);
  TAKE(proj_b, L * D);
  if (c->layerscale) TAKE(ls1, L * D);
  TAKE(ln2_w, L * D);
  TAKE(ln2_b, L * D);
  TAKE(fc1_w, L * F * D);
  TAKE(fc1_b, L * F);
  TAKE(fc2_w, L * D * F);
  TAKE(fc2_b, L * D);
  if (c->layerscale) TAKE(ls2, L * D);
  TAKE(norm_w, D);
  TAKE(norm_b, D);
#undef TAKE
  if (p) *p = q;
  return off;
}

int64_t gb_vit_param_count(const gb_vit_config *cfg) { return layout(cfg, NULL, NULL); }

void gb_vit_params_layout(const gb_vit_config *cfg, float *mem, gb_vit_params *p) { layout(cfg, mem, p); }

static void fill_const(float *x, int64_t n, float v) {
  if (x)
    for (int64_t i = 0; i < n; i++) x[i] = v;
}

gb_status gb_vit_create_random(const gb_vit_config *cfg, uint64_t seed, gb_vit **out) {
  *out = NULL;
  if (cfg->dim <= 0 || cfg->heads <= 0 || cfg->dim % cfg->heads || cfg->depth <= 0 || cfg->patch <= 0)
    return gb_fail(GB_ERR_ARG, "ViT config: dim %d, heads %d, depth %d, patch %d are not a valid combination",
                   cfg->dim, cfg->heads, cfg->depth, cfg->patch);
  gb_vit *m = calloc(1, sizeof *m);
  if (!m) return gb_fail(GB_ERR_NOMEM, "out of memory");
  m->cfg = *cfg;
  m->n_params = layout(cfg, NULL, NULL);
  m->param_mem = gb_calloc((size_t)m->n_params * sizeof(float), "ViT parameters");
  if (!m->param_mem) {
    free(m);
    return GB_ERR_NOMEM;
  }
  layout(cfg, m->param_mem, &m->p);
  gb_rng r;
  gb_rng_seed(&r, seed);
  gb_rng_fill_normal(&r, m->param_mem, (long)m->n_params, 0.02f);
  int64_t D = cfg->dim, L = cfg->depth;
  fill_const(m->p.ln_pre_w, D, 1.0f);
  fill_const(m->p.ln1_w, L * D, 1.0f);
  fill_const(m->p.ln2_w, L * D, 1.0f);
  fill_const(m->p.norm_w, D, 1.0f);
  fill_const(m->p.ls1, L * D, 0.5f);
  fill_const(m->p.ls2, L * D, 0.5f);
  *out = m;
  return GB_OK;
}

void gb_vit_free(gb_vit *m) {
  if (!m) return;
  gb_free(m->param_mem);
  gb_free(m->act_mem);
  gb_free(m->grad_mem);
  gb_free(m->pos_cur);
  gb_free(m->rope_cos);
  gb_free(m->rope_sin);
  gb_free(m->wt_panels);
  free(m);
}

/* Lays out the activation struct over mem (NULL: count only). */
static int64_t act_layout(const gb_vit *m, int B, float *mem, gb_vit_acts *a) {
  const gb_vit_config *c = &m->cfg;
  int64_t D = c->dim, L = c->depth, F = c->mlp_hidden, T = m->T, N = m->N, H = c->heads, BT = (int64_t)B * T;
  int64_t off = 0;
  gb_vit_acts q;
  memset(&q, 0, sizeof q);
#define TAKE(field, n)                 \
  do {                                 \
    q.field = mem ? mem + off : NULL;  \
    off += ((n) + 15) / 16 * 16;       \
  } while (0)
  TAKE(patches, (int64_t)B * N * 3 * c->patch * c->patch);
  TAKE(patch_out, (int64_t)B * N * D);
  TAKE(emb, BT * D);
  TAKE(lnpre_mean, BT);
  TAKE(lnpre_rstd, BT);
  TAKE(x, (L + 1) * BT * D);
  TAKE(ln1, L * BT * D);
  TAKE(ln1_mean, L * BT);
  TAKE(ln1_rstd, L * BT);
  TAKE(qkv, L * BT * 3 * D);
  TAKE(att, L * B * H * T * T);
  TAKE(attout, L * BT * D);
  TAKE(proj, L * BT * D);
  TAKE(xmid, L * BT * D);
  TAKE(ln2, L * BT * D);
  TAKE(ln2_mean, L * BT);
  TAKE(ln2_rstd, L * BT);
  TAKE(fc1, L * BT * F);
  TAKE(act, L * BT * F);
  TAKE(fc2, L * BT * D);
  TAKE(final, (int64_t)B * D);
  TAKE(final_mean, B);
  TAKE(final_rstd, B);
#undef TAKE
  if (a) *a = q;
  return off;
}

/* Asks for 2 MB pages on the 2 MB-aligned interior of a large, not yet touched arena (Linux
 * transparent huge pages in "madvise" mode): the arenas span gigabytes and attention walks
 * rows 3 x dim floats apart, so with 4 KB pages nearly every row costs a TLB miss. */
static void advise_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  uintptr_t huge = (uintptr_t)2 << 20, a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
  if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* advice only: no error if refused */
#else
  (void)p;
  (void)bytes;
#endif
}

gb_status gb_vit_prepare(gb_vit *m, int batch, int image_size, int backward) {
  const gb_vit_config *c = &m->cfg;
  if (batch <= 0) return gb_fail(GB_ERR_ARG, "batch size %d: expected >= 1", batch);
  if (image_size <= 0 || image_size % c->patch)
    return gb_fail(GB_ERR_ARG, "image size %d: expected a positive multiple of the patch size %d", image_size,
                   c->patch);
  int g = image_size / c->patch;
  int same_geom = m->image_size == image_size && m->act_mem && batch <= m->B;
  if (same_geom && (!backward || m->grad_mem)) return GB_OK;
  if (!same_geom) {
    gb_free(m->act_mem);
    gb_free(m->grad_mem);
    m->act_mem = m->grad_mem = NULL;
    gb_free(m->pos_cur);
    gb_free(m->rope_cos);
    gb_free(m->rope_sin);
    m->pos_cur = m->rope_cos = m->rope_sin = NULL;
    m->image_size = image_size;
    m->gh = m->gw = g;
    m->N = g * g;
    m->T = 1 + c->n_reg + m->N;
    m->B = batch;
    m->n_act = act_layout(m, batch, NULL, NULL);
    m->act_mem = gb_alloc((size_t)m->n_act * sizeof(float), "ViT activations");
    if (!m->act_mem) return GB_ERR_NOMEM;
    advise_huge_pages(m->act_mem, (size_t)m->n_act * sizeof(float));
    act_layout(m, batch, m->act_mem, &m->a);
    int D = c->dim;
    if (c->pos_grid) {
      m->pos_cur = gb_alloc((size_t)(1 + m->N) * D * sizeof(float), "position embedding");
      if (!m->pos_cur) return GB_ERR_NOMEM;
      memcpy(m->pos_cur, m->p.pos, (size_t)D * sizeof(float));
      if (g == c->pos_grid)
        memcpy(m->pos_cur + D, m->p.pos + D, (size_t)m->N * D * sizeof(float));
      else
        bicubic_resize(m->pos_cur + D, m->p.pos + D, c->pos_grid, c->pos_grid, g, g, D);
    }
    if (c->rope) {
      int half = D / c->heads / 2;
      m->rope_cos = gb_alloc((size_t)m->N * half * sizeof(float), "rope table");
      m->rope_sin = gb_alloc((size_t)m->N * half * sizeof(float), "rope table");
      if (!m->rope_cos || !m->rope_sin) return GB_ERR_NOMEM;
      rope_tables(m->rope_cos, m->rope_sin, g, g, D / c->heads, c->rope_base);
    }
  }
  if (backward) {
    m->grad_mem = gb_alloc((size_t)m->n_act * sizeof(float), "ViT activation gradients");
    if (!m->grad_mem) return GB_ERR_NOMEM;
    advise_huge_pages(m->grad_mem, (size_t)m->n_act * sizeof(float));
    act_layout(m, m->B, m->grad_mem, &m->g);
  }
  return GB_OK;
}

float *gb_vit_tap(gb_vit *m, int layer, int grad) {
  int64_t BTD = (int64_t)m->B * m->T * m->cfg.dim;
  return (grad ? m->g.x : m->a.x) + layer * BTD;
}

/* Assembles [CLS, registers, patches] (+ position embedding) of images b0..b0+nb-1 into their
 * rows of out (B, T, D). */
static void assemble_tokens(gb_vit *m, float *out, int b0, int nb) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, R = c->n_reg, T = m->T, N = m->N;
  const float *pos = m->pos_cur;
#pragma omp parallel for schedule(static) if (GB_PAR_IF((int64_t)nb * T * D))
  for (int b = b0; b < b0 + nb; b++) {
    float *o = out + (int64_t)b * T * D;
    for (int j = 0; j < D; j++) o[j] = m->p.cls[j] + (pos ? pos[j] : 0.0f);
    if (R) memcpy(o + D, m->p.reg, (size_t)R * D * sizeof(float));
    const float *src = m->a.patch_out + (int64_t)b * N * D;
    float *dst = o + (int64_t)(1 + R) * D;
    if (pos)
      for (int64_t i = 0; i < (int64_t)N * D; i++) dst[i] = src[i] + pos[D + i];
    else
      memcpy(dst, src, (size_t)N * D * sizeof(float));
  }
}

/* The activation (or gradient) pointers of images b0.. within their per-block slots: every
 * buffer is (B, T, ...) per block, so an image range is a contiguous run of rows. */
static gb_vit_acts acts_from(const gb_vit *m, const gb_vit_acts *s, int b0) {
  const gb_vit_config *c = &m->cfg;
  int64_t T = m->T, D = c->dim, F = c->mlp_hidden, NH = c->heads, r = (int64_t)b0 * T;
  gb_vit_acts a = *s;
  a.x += r * D;
  a.ln1 += r * D;
  a.ln1_mean += r;
  a.ln1_rstd += r;
  a.qkv += r * 3 * D;
  a.att += (int64_t)b0 * NH * T * T;
  a.attout += r * D;
  a.proj += r * D;
  a.xmid += r * D;
  a.ln2 += r * D;
  a.ln2_mean += r;
  a.ln2_rstd += r;
  a.fc1 += r * F;
  a.act += r * F;
  a.fc2 += r * D;
  return a;
}

/* ---- lean forward: products on panelled W^T with fused epilogues (small_gemm.h) ---- */

/* Offsets of block l's weights inside m->wt_panels: which = 0..3 for W^T of qkv, proj, fc1,
 * fc2 (forward products), 4..7 for W itself in panels (backward products dinp = dout W). */
static int64_t panel_offset(const gb_vit_config *c, int l, int which) {
  int64_t D = c->dim, F = c->mlp_hidden, per = 4 * D * D + 2 * D * F;
  int64_t off[4] = {0, 3 * D * D, 4 * D * D, 4 * D * D + F * D}; /* qkv, proj, fc1, fc2 */
  return (which >= 4 ? c->depth * per : 0) + l * per + off[which % 4];
}

/* Builds m->wt_panels once (lean forward; parameters frozen from then on). */
static gb_status build_panels(gb_vit *m) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, F = c->mlp_hidden;
  if (D % 64 || F % 64) return GB_OK; /* panels need whole 64-column blocks; stay on BLAS */
  if (gb_nn_precision() == GB_NN_BF16X3) return GB_OK; /* products in bf16x3 via linear.c (linear_x3.c) */
  int64_t n = 2 * (int64_t)c->depth * (4 * (int64_t)D * D + 2 * (int64_t)D * F);
  m->wt_panels = gb_alloc((size_t)n * sizeof(float), "ViT weight panels");
  if (!m->wt_panels) return GB_ERR_NOMEM;
  for (int l = 0; l < c->depth; l++) {
    int64_t lD = (int64_t)l * D;
    small_panels(m->wt_panels + panel_offset(c, l, 0), m->p.qkv_w + 3 * lD * D, 3 * D, D);
    small_panels(m->wt_panels + panel_offset(c, l, 1), m->p.proj_w + lD * D, D, D);
    small_panels(m->wt_panels + panel_offset(c, l, 2), m->p.fc1_w + (int64_t)l * F * D, F, D);
    small_panels(m->wt_panels + panel_offset(c, l, 3), m->p.fc2_w + lD * F, D, F);
    small_panels_copy(m->wt_panels + panel_offset(c, l, 4), m->p.qkv_w + 3 * lD * D, 3 * D, D);
    small_panels_copy(m->wt_panels + panel_offset(c, l, 5), m->p.proj_w + lD * D, D, D);
    small_panels_copy(m->wt_panels + panel_offset(c, l, 6), m->p.fc1_w + (int64_t)l * F * D, F, D);
    small_panels_copy(m->wt_panels + panel_offset(c, l, 7), m->p.fc2_w + lD * F, D, F);
  }
  return GB_OK;
}

/* Epilogue of one output tile: v = c + bias; with res: v = res + scale * v (LayerScale residual);
 * c = v; with act: act = gelu(v) (or QuickGELU). */
typedef struct {
  float *c;
  int64_t ldc;
  const float *bias, *res, *scale;
  float *act;
  int quick;
} epilogue;

GB_VEC512 static void epilogue_tile(void *ctx, int i0, int mr, int j0, int n) {
  const epilogue *e = ctx;
  for (int i = i0; i < i0 + mr; i++) {
    float *c = e->c + (int64_t)i * e->ldc + j0;
    const float *b = e->bias + j0;
    if (e->res) {
      const float *r = e->res + (int64_t)i * e->ldc + j0, *sc = e->scale ? e->scale + j0 : NULL;
#pragma omp simd
      for (int j = 0; j < n; j++) c[j] = r[j] + (sc ? sc[j] : 1.0f) * (c[j] + b[j]);
    } else if (e->act) {
      float *a = e->act + (int64_t)i * e->ldc + j0;
      if (e->quick) {
#pragma omp simd
        for (int j = 0; j < n; j++) {
          float x = c[j] + b[j];
          c[j] = x;
          a[j] = x / (1.0f + gb_fast_expf(-1.702f * x));
        }
      } else {
#pragma omp simd
        for (int j = 0; j < n; j++) {
          float pdf, x = c[j] + b[j];
          c[j] = x;
          a[j] = x * gb_fast_phi(x, &pdf);
        }
      }
    } else {
#pragma omp simd
      for (int j = 0; j < n; j++) c[j] += b[j];
    }
  }
}

/* out (BT x OC) = inp (BT x C) W^T + bias, then the epilogue (res, scale, act as above). */
static void panel_linear(float *out, const float *inp, const float *wp, const float *bias, int64_t BT, int C, int OC,
                         const float *res, const float *scale, float *act, int quick) {
  epilogue e = {out, OC, bias, res, scale, act, quick};
  small_gemm_panels((int)BT, OC, C, inp, C, wp, out, OC, epilogue_tile, &e);
}

/* The lean block forward: same math as block_forward, without the proj and fc2 buffers (the
 * residual sums are the products' epilogues) and without a separate GELU pass. */
static void block_forward_lean(gb_vit *m, int l, int b0, int nb) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, F = c->mlp_hidden, T = m->T, NH = c->heads;
  int64_t BT = (int64_t)nb * T, BTD_slot = (int64_t)m->B * T * D, BTF_slot = (int64_t)m->B * T * F;
  int64_t BT_slot = (int64_t)m->B * T, att_slot = (int64_t)m->B * NH * T * T, lD = (int64_t)l * D;
  gb_vit_acts av = acts_from(m, &m->a, b0), *a = &av;
  const gb_vit_params *p = &m->p;
  float *xin = a->x + l * BTD_slot, *xout = a->x + (l + 1) * BTD_slot, *xmid = a->xmid + l * BTD_slot;
  float *qkv = a->qkv + 3 * l * BTD_slot, *fc1 = a->fc1 + l * BTF_slot;
  float *ln1 = a->ln1, *attout = a->attout, *ln2 = a->ln2, *act = a->act; /* slot-0 scratch */
  const float *ls1 = p->ls1 ? p->ls1 + lD : NULL, *ls2 = p->ls2 ? p->ls2 + lD : NULL;

  layernorm_forward(ln1, a->ln1_mean + l * BT_slot, a->ln1_rstd + l * BT_slot, xin, p->ln1_w + lD, p->ln1_b + lD, BT, D,
                    c->eps);
  panel_linear(qkv, ln1, m->wt_panels + panel_offset(c, l, 0), p->qkv_b + 3 * lD, BT, D, 3 * D, NULL, NULL, NULL, 0);
  if (c->rope) rope_forward(qkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, NH);
  attention_forward(attout, a->att + l * att_slot, qkv, nb, T, D, NH);
  panel_linear(xmid, attout, m->wt_panels + panel_offset(c, l, 1), p->proj_b + lD, BT, D, D, xin, ls1, NULL, 0);
  layernorm_forward(ln2, a->ln2_mean + l * BT_slot, a->ln2_rstd + l * BT_slot, xmid, p->ln2_w + lD, p->ln2_b + lD, BT, D,
                    c->eps);
  panel_linear(fc1, ln2, m->wt_panels + panel_offset(c, l, 2), p->fc1_b + (int64_t)l * F, BT, D, F, NULL, NULL, act,
               c->act == GB_ACT_QUICKGELU);
  panel_linear(xout, act, m->wt_panels + panel_offset(c, l, 3), p->fc2_b + lD, BT, F, D, xmid, ls2, NULL, 0);
}

/* The block forward on BLAS products (training, and the recomputation for weight gradients
 * after a lean forward): every intermediate kept, in block l's slots (lean: the weight-gradient
 * inputs in slot 0). */
static void block_forward_blas(gb_vit *m, int l, int b0, int nb) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, F = c->mlp_hidden, T = m->T, NH = c->heads;
  int64_t BT = (int64_t)nb * T, BTD_slot = (int64_t)m->B * T * D, BTF_slot = (int64_t)m->B * T * F;
  int64_t BT_slot = (int64_t)m->B * T, att_slot = (int64_t)m->B * NH * T * T;
  gb_vit_acts av = acts_from(m, &m->a, b0), *a = &av;
  const gb_vit_params *p = &m->p;
  int64_t w = m->lean ? 0 : l; /* slot of the intermediates only weight gradients read */
  float *xin = a->x + l * BTD_slot, *xout = a->x + (l + 1) * BTD_slot;
  float *ln1 = a->ln1 + w * BTD_slot, *qkv = a->qkv + 3 * l * BTD_slot, *attout = a->attout + w * BTD_slot;
  float *proj = a->proj + w * BTD_slot, *xmid = a->xmid + l * BTD_slot, *ln2 = a->ln2 + w * BTD_slot;
  float *fc1 = a->fc1 + l * BTF_slot, *act = a->act + w * BTF_slot, *fc2 = a->fc2 + w * BTD_slot;
  const float *ls1 = p->ls1 ? p->ls1 + (int64_t)l * D : NULL, *ls2 = p->ls2 ? p->ls2 + (int64_t)l * D : NULL;

  layernorm_forward(ln1, a->ln1_mean + l * BT_slot, a->ln1_rstd + l * BT_slot, xin, p->ln1_w + (int64_t)l * D,
                    p->ln1_b + (int64_t)l * D, BT, D, c->eps);
  linear_forward(qkv, ln1, p->qkv_w + (int64_t)l * 3 * D * D, p->qkv_b + (int64_t)l * 3 * D, BT, D, 3 * D);
  if (c->rope) rope_forward(qkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, NH);
  attention_forward(attout, a->att + l * att_slot, qkv, nb, T, D, NH);
  linear_forward(proj, attout, p->proj_w + (int64_t)l * D * D, p->proj_b + (int64_t)l * D, BT, D, D);
#pragma omp parallel for schedule(static) if (GB_PAR_IF(BT * D))
  for (int64_t i = 0; i < BT; i++)
    for (int j = 0; j < D; j++) xmid[i * D + j] = xin[i * D + j] + (ls1 ? ls1[j] : 1.0f) * proj[i * D + j];
  layernorm_forward(ln2, a->ln2_mean + l * BT_slot, a->ln2_rstd + l * BT_slot, xmid, p->ln2_w + (int64_t)l * D,
                    p->ln2_b + (int64_t)l * D, BT, D, c->eps);
  linear_forward(fc1, ln2, p->fc1_w + (int64_t)l * F * D, p->fc1_b + (int64_t)l * F, BT, D, F);
  if (c->act == GB_ACT_QUICKGELU) quickgelu_forward(act, fc1, BT * F);
  else gelu_forward(act, fc1, BT * F);
  linear_forward(fc2, act, p->fc2_w + (int64_t)l * D * F, p->fc2_b + (int64_t)l * D, BT, F, D);
#pragma omp parallel for schedule(static) if (GB_PAR_IF(BT * D))
  for (int64_t i = 0; i < BT; i++)
    for (int j = 0; j < D; j++) xout[i * D + j] = xmid[i * D + j] + (ls2 ? ls2[j] : 1.0f) * fc2[i * D + j];
}

/* Block l (0-based) of the forward pass for images b0..b0+nb-1: reads x[l], writes its
 * intermediates and x[l + 1]. */
static void block_forward(gb_vit *m, int l, int b0, int nb) {
  if (m->lean && m->wt_panels) block_forward_lean(m, l, b0, nb);
  else block_forward_blas(m, l, b0, nb);
}

/* Everything of the forward pass for images b0..b0+nb-1. */
static void forward_range(gb_vit *m, const float *images, int b0, int nb) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, P = c->patch, T = m->T, S = m->image_size, N = m->N;
  int64_t BT = (int64_t)nb * T, BTD_slot = (int64_t)m->B * T * D, r0 = (int64_t)b0 * T;
  gb_vit_acts *a = &m->a;
  const gb_vit_params *p = &m->p;
  patchify(a->patches + (int64_t)b0 * N * 3 * P * P, images + (int64_t)b0 * 3 * S * S, nb, S, S, P);
  linear_forward(a->patch_out + (int64_t)b0 * N * D, a->patches + (int64_t)b0 * N * 3 * P * P, p->patch_w,
                 p->patch_b, (int64_t)nb * N, 3 * P * P, D);
  if (m->patch_mask) /* iBOT hook: masked patches -> mask token */
    for (int64_t r = (int64_t)b0 * N; r < (int64_t)(b0 + nb) * N; r++)
      if (m->patch_mask[r]) memcpy(a->patch_out + r * D, m->mask_token, (size_t)D * sizeof(float));
  if (c->ln_pre) {
    assemble_tokens(m, a->emb, b0, nb);
    layernorm_forward(a->x + r0 * D, a->lnpre_mean + r0, a->lnpre_rstd + r0, a->emb + r0 * D, p->ln_pre_w,
                      p->ln_pre_b, BT, D, c->eps);
  } else {
    assemble_tokens(m, a->x, b0, nb);
  }
  for (int l = 0; l < c->depth; l++) block_forward(m, l, b0, nb);
  const float *xl = a->x + c->depth * BTD_slot;
  for (int b = b0; b < b0 + nb; b++)
    layernorm_forward(a->final + (int64_t)b * D, a->final_mean + b, a->final_rstd + b, xl + (int64_t)b * T * D,
                      p->norm_w, p->norm_b, 1, D, c->eps);
}

/* Batch sharding: the images of a batch are split into one contiguous shard per thread and
 * each thread runs its shard through the whole network alone (single-threaded BLAS inside the
 * parallel region, nested elementwise regions serialized). No fork/join per op, and each core
 * keeps its own rows in its cache. Every op is per image, so shards never share a row. */
static int shard_count(int nb) {
  int t = omp_in_parallel() ? 1 : gb_get_threads();
  return nb < t ? nb : t;
}

gb_status gb_vit_forward(gb_vit *m, const float *images, int nb) {
  if (!m->act_mem || nb > m->B || nb <= 0)
    return gb_fail(GB_ERR_ARG, "ViT forward: %d images but buffers prepared for %d", nb, m->act_mem ? m->B : 0);
  if (m->lean && !m->wt_panels) GB_TRY(build_panels(m));
  int S = shard_count(nb);
  if (S <= 1) {
    forward_range(m, images, 0, nb);
    return GB_OK;
  }
#pragma omp parallel num_threads(S)
  {
    int s = omp_get_thread_num(), b0 = s * nb / S, b1 = (s + 1) * nb / S;
    forward_range(m, images, b0, b1 - b0);
  }
  return GB_OK;
}

/* Weight gradients of the embeddings (training path). */
static void embed_backward(gb_vit *m, int nb, gb_vit_params *dp) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, T = m->T, N = m->N, R = c->n_reg, P = c->patch;
  int64_t BT = (int64_t)nb * T;
  const float *demb = m->g.x;
  if (c->ln_pre) {
    memset(m->g.emb, 0, (size_t)BT * D * sizeof(float));
    layernorm_backward(m->g.emb, dp->ln_pre_w, dp->ln_pre_b, m->g.x, m->a.emb, m->p.ln_pre_w, m->a.lnpre_mean,
                       m->a.lnpre_rstd, BT, D);
    demb = m->g.emb;
  }
  int pos_ok = c->pos_grid && m->gh == c->pos_grid;
  if (c->pos_grid && !pos_ok)
    gb_warn("position-embedding gradient not computed: grid %d differs from the learned grid %d", m->gh,
            c->pos_grid);
  float *dpatch = m->g.patch_out;
  for (int b = 0; b < nb; b++) {
    const float *d = demb + (int64_t)b * T * D;
    for (int j = 0; j < D; j++) dp->cls[j] += d[j];
    if (pos_ok)
      for (int j = 0; j < D; j++) dp->pos[j] += d[j];
    for (int r = 0; r < R; r++)
      for (int j = 0; j < D; j++) dp->reg[r * D + j] += d[(1 + r) * D + j];
    const float *dpt = d + (int64_t)(1 + R) * D;
    memcpy(dpatch + (int64_t)b * N * D, dpt, (size_t)N * D * sizeof(float));
    if (pos_ok)
      for (int64_t i = 0; i < (int64_t)N * D; i++) dp->pos[D + i] += dpt[i];
  }
  if (m->patch_mask && m->dmask_token) /* iBOT hook: masked rows feed the mask token, not the projection */
    for (int64_t r = 0; r < (int64_t)nb * N; r++)
      if (m->patch_mask[r]) {
        for (int j = 0; j < D; j++) m->dmask_token[j] += dpatch[r * D + j];
        memset(dpatch + r * D, 0, (size_t)D * sizeof(float));
      }
  linear_backward(NULL, dp->patch_w, dp->patch_b, dpatch, m->a.patches, m->p.patch_w, (int64_t)nb * N,
                  3 * P * P, D);
}

/* Block l (0-based) of the backward pass: from g.x[l + 1] and the intermediates of block l,
 * overwrites g.x[l] (the intermediates' gradients are scratch in slot 0). The four linear layers pass the
 * gradient down through `fb`'s weights (m->p for backprop; feedback matrices for feedback
 * alignment); weight gradients (dp, optional) always use the true forward inputs. */
static void block_backward(gb_vit *m, int l, int b0, int nb, gb_vit_params *dp, const gb_vit_params *fb) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, F = c->mlp_hidden, T = m->T, NH = c->heads;
  int64_t BT = (int64_t)nb * T, BTD_slot = (int64_t)m->B * T * D, BTF_slot = (int64_t)m->B * T * F;
  int64_t BT_slot = (int64_t)m->B * T, att_slot = (int64_t)m->B * NH * T * T;
  gb_vit_acts av = acts_from(m, &m->a, b0), gv = acts_from(m, &m->g, b0), *a = &av, *g = &gv;
  const gb_vit_params *p = &m->p;
  /* the lean forward kept no weight-gradient inputs: recompute them (the block output is
   * rewritten with BLAS rounding, equal to float precision) */
  if (dp && m->lean) block_forward_blas(m, l, b0, nb);
  int64_t w = m->lean ? 0 : l;
  /* activation gradients through the model's own weights after a lean forward: the products
   * on the weight panels (W itself) */
  int panels = !dp && fb == &m->p && m->lean && m->wt_panels;
  const float *xin = a->x + l * BTD_slot, *ln1 = a->ln1 + w * BTD_slot, *qkv = a->qkv + 3 * l * BTD_slot;
  const float *attout = a->attout + w * BTD_slot, *proj = a->proj + w * BTD_slot, *xmid = a->xmid + l * BTD_slot;
  const float *ln2 = a->ln2 + w * BTD_slot, *fc1 = a->fc1 + l * BTF_slot, *act = a->act + w * BTF_slot;
  const float *fc2 = a->fc2 + w * BTD_slot;
  /* The gradients of the intermediates are scratch within the block: slot 0 for every block
   * (only the taps g.x are kept per block). */
  float *dxin = g->x + l * BTD_slot, *dxout = g->x + (l + 1) * BTD_slot;
  float *dln1 = g->ln1, *dqkv = g->qkv, *dattout = g->attout, *dproj = g->proj, *dxmid = g->xmid, *dln2 = g->ln2;
  float *dfc1 = g->fc1, *dact = g->act, *dfc2 = g->fc2;
  const float *ls1 = p->ls1 ? p->ls1 + (int64_t)l * D : NULL, *ls2 = p->ls2 ? p->ls2 + (int64_t)l * D : NULL;
  int64_t lD = (int64_t)l * D, lF = (int64_t)l * F;
#define DP(field, off) (dp ? dp->field + (off) : NULL)

  /* MLP branch: x_out = x_mid + ls2 * fc2(act(fc1(ln2(x_mid)))) */
  memcpy(dxmid, dxout, (size_t)BT * D * sizeof(float));
  if (ls2) layerscale_backward(dfc2, DP(ls2, lD), dxout, fc2, ls2, BT, D);
  else memcpy(dfc2, dxout, (size_t)BT * D * sizeof(float));
  /* (GELU's backward as a separate streaming pass: fused into the product's epilogue it read
   * fc1 in 6-row tiles from memory and was measured 2x slower) */
  if (panels) small_gemm_panels((int)BT, F, D, dfc2, D, m->wt_panels + panel_offset(c, l, 7), dact, F, NULL, NULL);
  else linear_backward(dact, DP(fc2_w, lD * F), DP(fc2_b, lD), dfc2, act, fb->fc2_w + lD * F, BT, F, D);
  if (c->act == GB_ACT_QUICKGELU) quickgelu_backward(dfc1, fc1, dact, BT * F);
  else gelu_backward(dfc1, fc1, dact, BT * F);
  if (panels) small_gemm_panels((int)BT, D, F, dfc1, F, m->wt_panels + panel_offset(c, l, 6), dln2, D, NULL, NULL);
  else linear_backward(dln2, DP(fc1_w, lF * D), DP(fc1_b, lF), dfc1, ln2, fb->fc1_w + lF * D, BT, D, F);
  layernorm_backward(dxmid, DP(ln2_w, lD), DP(ln2_b, lD), dln2, xmid, p->ln2_w + lD, a->ln2_mean + l * BT_slot,
                     a->ln2_rstd + l * BT_slot, BT, D);

  /* attention branch: x_mid = x_in + ls1 * proj(attn(ln1(x_in))) */
  memcpy(dxin, dxmid, (size_t)BT * D * sizeof(float));
  if (ls1) layerscale_backward(dproj, DP(ls1, lD), dxmid, proj, ls1, BT, D);
  else memcpy(dproj, dxmid, (size_t)BT * D * sizeof(float));
  if (panels) small_gemm_panels((int)BT, D, D, dproj, D, m->wt_panels + panel_offset(c, l, 5), dattout, D, NULL, NULL);
  else linear_backward(dattout, DP(proj_w, lD * D), DP(proj_b, lD), dproj, attout, fb->proj_w + lD * D, BT, D, D);
  attention_backward(dqkv, g->att, dattout, qkv, a->att + l * att_slot, nb, T, D, NH);
  if (c->rope) rope_backward(dqkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, NH);
  if (panels) small_gemm_panels((int)BT, D, 3 * D, dqkv, 3 * D, m->wt_panels + panel_offset(c, l, 4), dln1, D, NULL, NULL);
  else linear_backward(dln1, DP(qkv_w, 3 * lD * D), DP(qkv_b, 3 * lD), dqkv, ln1, fb->qkv_w + 3 * lD * D, BT, D,
                       3 * D);
  layernorm_backward(dxin, DP(ln1_w, lD), DP(ln1_b, lD), dln1, xin, p->ln1_w + lD, a->ln1_mean + l * BT_slot,
                     a->ln1_rstd + l * BT_slot, BT, D);
#undef DP
}

/* Backward of the last block l when only the CLS rows of g.x[l + 1] are nonzero (the loss
 * reads the final-normed CLS token and nothing else): the MLP, the projection and the
 * attention output are per token, so their gradients are computed for the CLS rows only;
 * attention spreads the gradient to every token through K and V (first-row attention
 * backward), from where qkv and ln1 run on all rows. Same result as block_backward without
 * the zero rows; no weight gradients. */
static void last_block_backward_cls(gb_vit *m, int l, int b0, int nb, const gb_vit_params *fb) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, F = c->mlp_hidden, T = m->T, NH = c->heads;
  int64_t BT = (int64_t)nb * T, BTD_slot = (int64_t)m->B * T * D, BTF_slot = (int64_t)m->B * T * F;
  int64_t BT_slot = (int64_t)m->B * T, att_slot = (int64_t)m->B * NH * T * T, lD = (int64_t)l * D;
  gb_vit_acts av = acts_from(m, &m->a, b0), gv = acts_from(m, &m->g, b0), *a = &av, *g = &gv;
  const gb_vit_params *p = &m->p;
  const float *ls1 = p->ls1 ? p->ls1 + lD : NULL, *ls2 = p->ls2 ? p->ls2 + lD : NULL;
  const float *xin = a->x + l * BTD_slot, *xmid = a->xmid + l * BTD_slot, *fc1 = a->fc1 + l * BTF_slot;
  float *dxin = g->x + l * BTD_slot, *dxout = g->x + (l + 1) * BTD_slot;
  /* compact CLS-row buffers (nb rows) in the scratch slots */
  float *dxmid = g->xmid, *dfc2 = g->fc2, *dact = g->act, *fc1c = g->fc1, *dln2 = g->ln2, *dproj = g->proj;
  float *dattout = g->attout;
  for (int i = 0; i < nb; i++) {
    const float *d = dxout + (int64_t)i * T * D;
    memcpy(dxmid + (int64_t)i * D, d, (size_t)D * sizeof(float));
    memcpy(fc1c + (int64_t)i * F, fc1 + (int64_t)i * T * F, (size_t)F * sizeof(float));
    for (int j = 0; j < D; j++) dfc2[(int64_t)i * D + j] = (ls2 ? ls2[j] : 1.0f) * d[j];
  }
  linear_backward(dact, NULL, NULL, dfc2, NULL, fb->fc2_w + lD * F, nb, F, D);
  if (c->act == GB_ACT_QUICKGELU) quickgelu_backward(dact, fc1c, dact, (int64_t)nb * F);
  else gelu_backward(dact, fc1c, dact, (int64_t)nb * F);
  linear_backward(dln2, NULL, NULL, dact, NULL, fb->fc1_w + (int64_t)l * F * D, nb, D, F);
  for (int i = 0; i < nb; i++) {
    int64_t r = (int64_t)i * T;
    layernorm_backward(dxmid + (int64_t)i * D, NULL, NULL, dln2 + (int64_t)i * D, xmid + r * D, p->ln2_w + lD,
                       a->ln2_mean + l * BT_slot + r, a->ln2_rstd + l * BT_slot + r, 1, D);
    for (int j = 0; j < D; j++) dproj[(int64_t)i * D + j] = (ls1 ? ls1[j] : 1.0f) * dxmid[(int64_t)i * D + j];
  }
  linear_backward(dattout, NULL, NULL, dproj, NULL, fb->proj_w + lD * D, nb, D, D);
  attention_backward_first_row(g->qkv, g->att, dattout, a->qkv + 3 * l * BTD_slot, a->att + l * att_slot, nb, T, D,
                               NH);
  if (c->rope) rope_backward(g->qkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, NH);
  if (fb == &m->p && m->lean && m->wt_panels)
    small_gemm_panels((int)BT, D, 3 * D, g->qkv, 3 * D, m->wt_panels + panel_offset(c, l, 4), g->ln1, D, NULL, NULL);
  else linear_backward(g->ln1, NULL, NULL, g->qkv, NULL, fb->qkv_w + 3 * lD * D, BT, D, 3 * D);
  memset(dxin, 0, (size_t)BT * D * sizeof(float)); /* the residual: dx_mid, nonzero on CLS rows only */
  for (int i = 0; i < nb; i++) memcpy(dxin + (int64_t)i * T * D, dxmid + (int64_t)i * D, (size_t)D * sizeof(float));
  layernorm_backward(dxin, NULL, NULL, g->ln1, xin, p->ln1_w + lD, a->ln1_mean + l * BT_slot, a->ln1_rstd + l * BT_slot,
                     BT, D);
}

/* The backward pass for images b0..b0+nb-1 down to block stop_layer (0-based). */
static void backward_range(gb_vit *m, const float *dfinal, int b0, int nb, int stop_layer, gb_vit_params *dp,
                           const gb_vit_params *fb) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, T = m->T, L = c->depth;
  int64_t BT = (int64_t)nb * T, BTD_slot = (int64_t)m->B * T * D;
  gb_vit_acts *a = &m->a, *g = &m->g;
  const gb_vit_params *p = &m->p;
  float *gl = g->x + L * BTD_slot + (int64_t)b0 * T * D;
  const float *xl = a->x + L * BTD_slot;
  memset(gl, 0, (size_t)BT * D * sizeof(float));
  if (m->dx_last) memcpy(gl, m->dx_last + (int64_t)b0 * T * D, (size_t)BT * D * sizeof(float)); /* iBOT hook */
  for (int b = b0; b < b0 + nb; b++)
    layernorm_backward(g->x + L * BTD_slot + (int64_t)b * T * D, dp ? dp->norm_w : NULL, dp ? dp->norm_b : NULL,
                       dfinal + (int64_t)b * D, xl + (int64_t)b * T * D, p->norm_w, a->final_mean + b,
                       a->final_rstd + b, 1, D);
  int l = L - 1;
  if (!dp && !m->dx_last && l >= stop_layer) /* the loss reads only the CLS rows of the last block */
    last_block_backward_cls(m, l--, b0, nb, fb);
  for (; l >= stop_layer; l--) block_backward(m, l, b0, nb, dp, fb);
}

static void backward_impl(gb_vit *m, const float *dfinal, int nb, int stop_layer, gb_vit_params *dp,
                          const gb_vit_params *fb) {
  if (stop_layer < 1) stop_layer = 1;
  int S = dp ? 1 : shard_count(nb); /* weight gradients are shared sums: one range */
  if (S <= 1) {
    backward_range(m, dfinal, 0, nb, dp ? 0 : stop_layer, dp, fb);
  } else {
#pragma omp parallel num_threads(S)
    {
      int s = omp_get_thread_num(), b0 = s * nb / S, b1 = (s + 1) * nb / S;
      backward_range(m, dfinal, b0, b1 - b0, stop_layer, NULL, fb);
    }
  }
  if (dp) embed_backward(m, nb, dp);
}

void gb_vit_backward(gb_vit *m, const float *dfinal, int nb, int stop_layer, gb_vit_params *dp) {
  backward_impl(m, dfinal, nb, stop_layer, dp, &m->p);
}

void gb_vit_backward_feedback(gb_vit *m, const float *dfinal, int nb, int stop_layer, const gb_vit_params *fb) {
  backward_impl(m, dfinal, nb, stop_layer, NULL, fb ? fb : &m->p);
}

void gb_vit_block_forward(gb_vit *m, int layer, int nb) { block_forward(m, layer - 1, 0, nb); }

void gb_vit_block_backward(gb_vit *m, int layer, int nb, const gb_vit_params *fb) {
  block_backward(m, layer - 1, 0, nb, NULL, fb ? fb : &m->p);
}
