/* Training passes of the ViT for the DINO trainer: forward, and backward with weight gradients,
 * over a gb_vit's parameters and activation buffers, computing only what the final-normed CLS
 * token depends on. In the last block every token's keys and values are needed, but the
 * attention output, projection, residuals and MLP only for the CLS row (and the query's
 * gradient only for it), which skips about three quarters of the last block's work in both
 * passes. GEMMs go straight to BLAS (no batch-invariant row slicing as in linear.c: a
 * training step needs determinism, not invariance to the batch composition). Everything else
 * uses the same src/nn kernels as gb_vit_forward / gb_vit_backward. Blocks 1..depth-1 are the
 * same computation as block_forward / block_backward in src/nn/vit.c.
 *
 * Buffers: m->a and m->g (gb_vit_prepare with backward = 1), same layout as vit.c; in the last
 * block only the CLS rows of attout, proj, xmid, ln2, fc1, act, fc2 and x[depth] (and row 0
 * of each attention map) are written. */
#include <math.h>
#include <string.h>

#include "gradbrain/blas.h"
#include "gradbrain/nn.h"
#include "gradbrain/train.h"

/* out (n rows, stride ldo) = inp (n rows, stride ldi) W^T + b; W (oc x c) row stride c. The
 * bias rows are written first and the GEMM accumulates onto them (beta = 1: no zeroing pass). */
static void lin(float *out, int64_t ldo, const float *inp, int64_t ldi, const float *w, const float *b, int64_t n,
                int c, int oc) {
  if (b)
    for (int64_t i = 0; i < n; i++) memcpy(out + i * ldo, b, (size_t)oc * sizeof(float));
  gb_sgemm('N', 'T', (int)n, oc, c, 1.0f, inp, (int)ldi, w, c, b ? 1.0f : 0.0f, out, (int)ldo);
}

/* dinp = dout W (NULL: skip); dw += dout^T inp; db += column sums of dout (each may be NULL).
 * W (oc x c) has row stride ldw. */
static void lin_back(float *dinp, int64_t lddi, float *dw, float *db, const float *dout, int64_t lddo,
                     const float *inp, int64_t ldi, const float *w, int ldw, int64_t n, int c, int oc) {
  if (dinp) gb_sgemm('N', 'N', (int)n, c, oc, 1.0f, dout, (int)lddo, w, ldw, 0.0f, dinp, (int)lddi);
  if (dw) gb_sgemm('T', 'N', oc, c, (int)n, 1.0f, dout, (int)lddo, inp, (int)ldi, 1.0f, dw, ldw);
  if (db)
    for (int64_t i = 0; i < n; i++) {
      const float *d = dout + i * lddo;
      for (int j = 0; j < oc; j++) db[j] += d[j];
    }
}

/* Per-block pointers into the activation (or gradient) buffers of block l. */
typedef struct {
  float *xin, *xout, *ln1, *mean1, *rstd1, *qkv, *att, *attout, *proj, *xmid, *ln2, *mean2, *rstd2, *fc1, *act, *fc2;
} blk;

static blk block_ptrs(const gb_vit *m, const gb_vit_acts *a, int l) {
  const gb_vit_config *c = &m->cfg;
  int64_t T = m->T, D = c->dim, F = c->mlp_hidden, B = m->B;
  int64_t sd = B * T * D, sf = B * T * F, st = B * T, sa = B * c->heads * T * T;
  blk k = {a->x + l * sd, a->x + (l + 1) * sd, a->ln1 + l * sd, a->ln1_mean + l * st, a->ln1_rstd + l * st,
           a->qkv + 3 * l * sd, a->att + l * sa, a->attout + l * sd, a->proj + l * sd, a->xmid + l * sd,
           a->ln2 + l * sd, a->ln2_mean + l * st, a->ln2_rstd + l * st, a->fc1 + l * sf, a->act + l * sf,
           a->fc2 + l * sd};
  return k;
}

/* x_out = x_in + ls * y over n rows of stride ld (ls NULL: gain 1). */
static void residual(float *xout, const float *xin, const float *y, const float *ls, int64_t n, int64_t ld, int D) {
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < D; j++) xout[i * ld + j] = xin[i * ld + j] + (ls ? ls[j] : 1.0f) * y[i * ld + j];
}

/* Block l for all tokens (as vit.c's block_forward). */
static void block_full_forward(gb_vit *m, int l, int nb) {
  const gb_vit_config *c = &m->cfg;
  const gb_vit_params *p = &m->p;
  int D = c->dim, F = c->mlp_hidden, T = m->T;
  int64_t BT = (int64_t)nb * T, lD = (int64_t)l * D;
  blk a = block_ptrs(m, &m->a, l);
  layernorm_forward(a.ln1, a.mean1, a.rstd1, a.xin, p->ln1_w + lD, p->ln1_b + lD, BT, D, c->eps);
  lin(a.qkv, 3 * D, a.ln1, D, p->qkv_w + 3 * lD * D, p->qkv_b + 3 * lD, BT, D, 3 * D);
  rope_forward(a.qkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, c->heads);
  attention_forward(a.attout, a.att, a.qkv, nb, T, D, c->heads);
  lin(a.proj, D, a.attout, D, p->proj_w + lD * D, p->proj_b + lD, BT, D, D);
  residual(a.xmid, a.xin, a.proj, p->ls1 ? p->ls1 + lD : NULL, BT, D, D);
  layernorm_forward(a.ln2, a.mean2, a.rstd2, a.xmid, p->ln2_w + lD, p->ln2_b + lD, BT, D, c->eps);
  lin(a.fc1, F, a.ln2, D, p->fc1_w + (int64_t)l * F * D, p->fc1_b + (int64_t)l * F, BT, D, F);
  gelu_forward(a.act, a.fc1, BT * F);
  lin(a.fc2, D, a.act, F, p->fc2_w + lD * F, p->fc2_b + lD, BT, F, D);
  residual(a.xout, a.xmid, a.fc2, p->ls2 ? p->ls2 + lD : NULL, BT, D, D);
}

/* Last block, CLS rows only past the keys and values. */
static void block_cls_forward(gb_vit *m, int l, int nb) {
  const gb_vit_config *c = &m->cfg;
  const gb_vit_params *p = &m->p;
  int D = c->dim, F = c->mlp_hidden, T = m->T, NH = c->heads, hd = D / NH;
  int64_t BT = (int64_t)nb * T, lD = (int64_t)l * D, TD = (int64_t)T * D, TF = (int64_t)T * F;
  float scale = 1.0f / sqrtf((float)hd);
  blk a = block_ptrs(m, &m->a, l);
  layernorm_forward(a.ln1, a.mean1, a.rstd1, a.xin, p->ln1_w + lD, p->ln1_b + lD, BT, D, c->eps);
  lin(a.qkv, 3 * D, a.ln1, D, p->qkv_w + 3 * lD * D, p->qkv_b + 3 * lD, BT, D, 3 * D);
  rope_forward(a.qkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, NH);
  for (int b = 0; b < nb; b++)
    for (int h = 0; h < NH; h++) { /* the CLS query against every key */
      const float *q = a.qkv + (int64_t)b * T * 3 * D + h * hd;
      float *P = a.att + ((int64_t)b * NH + h) * T * T, *o = a.attout + b * TD + h * hd;
      float mx = -INFINITY, sum = 0.0f;
      for (int j = 0; j < T; j++) {
        const float *k = q + (int64_t)j * 3 * D + D;
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += q[i] * k[i];
        P[j] = s * scale;
        if (P[j] > mx) mx = P[j];
      }
      for (int j = 0; j < T; j++) sum += (P[j] = expf(P[j] - mx));
      float inv = 1.0f / sum;
      for (int i = 0; i < hd; i++) o[i] = 0.0f;
      for (int j = 0; j < T; j++) {
        const float *v = q + (int64_t)j * 3 * D + 2 * D;
        P[j] *= inv;
        for (int i = 0; i < hd; i++) o[i] += P[j] * v[i];
      }
    }
  lin(a.proj, TD, a.attout, TD, p->proj_w + lD * D, p->proj_b + lD, nb, D, D);
  residual(a.xmid, a.xin, a.proj, p->ls1 ? p->ls1 + lD : NULL, nb, TD, D);
  for (int b = 0; b < nb; b++)
    layernorm_forward(a.ln2 + b * TD, a.mean2 + (int64_t)b * T, a.rstd2 + (int64_t)b * T, a.xmid + b * TD,
                      p->ln2_w + lD, p->ln2_b + lD, 1, D, c->eps);
  lin(a.fc1, TF, a.ln2, TD, p->fc1_w + (int64_t)l * F * D, p->fc1_b + (int64_t)l * F, nb, D, F);
  for (int b = 0; b < nb; b++) gelu_forward(a.act + b * TF, a.fc1 + b * TF, F);
  lin(a.fc2, TD, a.act, TF, p->fc2_w + lD * F, p->fc2_b + lD, nb, F, D);
  residual(a.xout, a.xmid, a.fc2, p->ls2 ? p->ls2 + lD : NULL, nb, TD, D);
}

gb_status gb_vit_train_forward(gb_vit *m, const float *images, int nb) {
  const gb_vit_config *c = &m->cfg;
  if (!m->act_mem || nb > m->B || nb <= 0)
    return gb_fail(GB_ERR_ARG, "ViT train forward: %d images but buffers prepared for %d", nb, m->act_mem ? m->B : 0);
  if (!c->rope || c->pos_grid || c->ln_pre || c->act != GB_ACT_GELU)
    return gb_fail(GB_ERR_UNSUPPORTED, "ViT train forward: only the DINOv3 layout (RoPE, GELU, no ln_pre) is trainable");
  int D = c->dim, P = c->patch, T = m->T, N = m->N, S = m->image_size, R = c->n_reg, L = c->depth;
  gb_vit_acts *a = &m->a;
  patchify(a->patches, images, nb, S, S, P);
  lin(a->patch_out, D, a->patches, 3 * P * P, m->p.patch_w, m->p.patch_b, (int64_t)nb * N, 3 * P * P, D);
  for (int b = 0; b < nb; b++) { /* [CLS, registers, patches] */
    float *o = a->x + (int64_t)b * T * D;
    memcpy(o, m->p.cls, (size_t)D * sizeof(float));
    if (R) memcpy(o + D, m->p.reg, (size_t)R * D * sizeof(float));
    memcpy(o + (int64_t)(1 + R) * D, a->patch_out + (int64_t)b * N * D, (size_t)N * D * sizeof(float));
  }
  for (int l = 0; l < L - 1; l++) block_full_forward(m, l, nb);
  block_cls_forward(m, L - 1, nb);
  const float *xl = a->x + (int64_t)L * m->B * T * D;
  for (int b = 0; b < nb; b++)
    layernorm_forward(a->final + (int64_t)b * D, a->final_mean + b, a->final_rstd + b, xl + (int64_t)b * T * D,
                      m->p.norm_w, m->p.norm_b, 1, D, c->eps);
  return GB_OK;
}

#define DP(field, off) (dp->field + (off))

/* Block l backward for all tokens (as vit.c's block_backward): from g.x[l + 1] overwrites g.x[l]. */
static void block_full_backward(gb_vit *m, int l, int nb, gb_vit_params *dp) {
  const gb_vit_config *c = &m->cfg;
  const gb_vit_params *p = &m->p;
  int D = c->dim, F = c->mlp_hidden, T = m->T;
  int64_t BT = (int64_t)nb * T, lD = (int64_t)l * D, lF = (int64_t)l * F;
  blk a = block_ptrs(m, &m->a, l), g = block_ptrs(m, &m->g, l);
  const float *ls1 = p->ls1 ? p->ls1 + lD : NULL, *ls2 = p->ls2 ? p->ls2 + lD : NULL;
  memcpy(g.xmid, g.xout, (size_t)BT * D * sizeof(float));
  if (ls2) layerscale_backward(g.fc2, DP(ls2, lD), g.xout, a.fc2, ls2, BT, D);
  else memcpy(g.fc2, g.xout, (size_t)BT * D * sizeof(float));
  lin_back(g.act, F, DP(fc2_w, lD * F), DP(fc2_b, lD), g.fc2, D, a.act, F, p->fc2_w + lD * F, F, BT, F, D);
  gelu_backward(g.fc1, a.fc1, g.act, BT * F);
  lin_back(g.ln2, D, DP(fc1_w, lF * D), DP(fc1_b, lF), g.fc1, F, a.ln2, D, p->fc1_w + lF * D, D, BT, D, F);
  layernorm_backward(g.xmid, DP(ln2_w, lD), DP(ln2_b, lD), g.ln2, a.xmid, p->ln2_w + lD, a.mean2, a.rstd2, BT, D);
  memcpy(g.xin, g.xmid, (size_t)BT * D * sizeof(float));
  if (ls1) layerscale_backward(g.proj, DP(ls1, lD), g.xmid, a.proj, ls1, BT, D);
  else memcpy(g.proj, g.xmid, (size_t)BT * D * sizeof(float));
  lin_back(g.attout, D, DP(proj_w, lD * D), DP(proj_b, lD), g.proj, D, a.attout, D, p->proj_w + lD * D, D, BT, D, D);
  attention_backward(g.qkv, g.att, g.attout, a.qkv, a.att, nb, T, D, c->heads);
  rope_backward(g.qkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, c->heads);
  lin_back(g.ln1, D, DP(qkv_w, 3 * lD * D), DP(qkv_b, 3 * lD), g.qkv, 3 * D, a.ln1, D, p->qkv_w + 3 * lD * D, D, BT,
           D, 3 * D);
  layernorm_backward(g.xin, DP(ln1_w, lD), DP(ln1_b, lD), g.ln1, a.xin, p->ln1_w + lD, a.mean1, a.rstd1, BT, D);
}

/* Last block backward when only the CLS rows of g.x[l + 1] are nonzero (and only they were
 * computed): overwrites g.x[l] for all tokens. */
static void block_cls_backward(gb_vit *m, int l, int nb, gb_vit_params *dp) {
  const gb_vit_config *c = &m->cfg;
  const gb_vit_params *p = &m->p;
  int D = c->dim, F = c->mlp_hidden, T = m->T, NH = c->heads, hd = D / NH;
  int64_t BT = (int64_t)nb * T, lD = (int64_t)l * D, lF = (int64_t)l * F, TD = (int64_t)T * D, TF = (int64_t)T * F;
  int64_t T3D = 3 * TD;
  float scale = 1.0f / sqrtf((float)hd);
  blk a = block_ptrs(m, &m->a, l), g = block_ptrs(m, &m->g, l);
  const float *ls1 = p->ls1 ? p->ls1 + lD : NULL, *ls2 = p->ls2 ? p->ls2 + lD : NULL;
  for (int b = 0; b < nb; b++) { /* MLP branch, CLS rows */
    memcpy(g.xmid + b * TD, g.xout + b * TD, (size_t)D * sizeof(float));
    if (ls2) layerscale_backward(g.fc2 + b * TD, DP(ls2, lD), g.xout + b * TD, a.fc2 + b * TD, ls2, 1, D);
    else memcpy(g.fc2 + b * TD, g.xout + b * TD, (size_t)D * sizeof(float));
  }
  lin_back(g.act, TF, DP(fc2_w, lD * F), DP(fc2_b, lD), g.fc2, TD, a.act, TF, p->fc2_w + lD * F, F, nb, F, D);
  for (int b = 0; b < nb; b++) gelu_backward(g.fc1 + b * TF, a.fc1 + b * TF, g.act + b * TF, F);
  lin_back(g.ln2, TD, DP(fc1_w, lF * D), DP(fc1_b, lF), g.fc1, TF, a.ln2, TD, p->fc1_w + lF * D, D, nb, D, F);
  for (int b = 0; b < nb; b++) {
    int64_t r = (int64_t)b * T;
    layernorm_backward(g.xmid + b * TD, DP(ln2_w, lD), DP(ln2_b, lD), g.ln2 + b * TD, a.xmid + b * TD,
                       p->ln2_w + lD, a.mean2 + r, a.rstd2 + r, 1, D);
    if (ls1) layerscale_backward(g.proj + b * TD, DP(ls1, lD), g.xmid + b * TD, a.proj + b * TD, ls1, 1, D);
    else memcpy(g.proj + b * TD, g.xmid + b * TD, (size_t)D * sizeof(float));
  }
  lin_back(g.attout, TD, DP(proj_w, lD * D), DP(proj_b, lD), g.proj, TD, a.attout, TD, p->proj_w + lD * D, D, nb, D,
           D);
  for (int b = 0; b < nb; b++) { /* attention of the CLS query: dq (CLS only), dk and dv (every token) */
    float *dq0 = g.qkv + b * T3D;
    for (int j = 1; j < T; j++) memset(dq0 + (int64_t)j * 3 * D, 0, (size_t)D * sizeof(float));
    for (int h = 0; h < NH; h++) {
      const float *q = a.qkv + b * T3D + h * hd, *P = a.att + ((int64_t)b * NH + h) * T * T;
      const float *dO = g.attout + b * TD + h * hd;
      float *dq = dq0 + h * hd, *dS = g.att + ((int64_t)b * NH + h) * T * T;
      float dot = 0.0f;
      for (int j = 0; j < T; j++) { /* dP_j = dO . v_j; dv_j = P_j dO */
        const float *v = q + (int64_t)j * 3 * D + 2 * D;
        float *dv = dq + (int64_t)j * 3 * D + 2 * D, s = 0.0f;
        for (int i = 0; i < hd; i++) {
          s += dO[i] * v[i];
          dv[i] = P[j] * dO[i];
        }
        dS[j] = s;
        dot += P[j] * s;
      }
      for (int i = 0; i < hd; i++) dq[i] = 0.0f;
      for (int j = 0; j < T; j++) { /* dS_j = P_j (dP_j - P.dP); dq = s sum dS_j k_j; dk_j = s dS_j q */
        const float *k = q + (int64_t)j * 3 * D + D;
        float *dk = dq + (int64_t)j * 3 * D + D, ds = P[j] * (dS[j] - dot) * scale;
        for (int i = 0; i < hd; i++) {
          dq[i] += ds * k[i];
          dk[i] = ds * q[i];
        }
      }
    }
  }
  rope_backward(g.qkv, m->rope_cos, m->rope_sin, nb, T, 1 + c->n_reg, D, NH);
  const float *wq = p->qkv_w + 3 * lD * D, *wkv = wq + (int64_t)D * D;
  float *dwq = DP(qkv_w, 3 * lD * D), *dwkv = dwq + (int64_t)D * D, *dbq = DP(qkv_b, 3 * lD), *dbkv = dbq + D;
  /* keys and values: every row; the query: CLS rows */
  lin_back(g.ln1, D, dwkv, dbkv, g.qkv + D, 3 * D, a.ln1, D, wkv, D, BT, D, 2 * D);
  gb_sgemm('N', 'N', nb, D, D, 1.0f, g.qkv, (int)T3D, wq, D, 1.0f, g.ln1, (int)TD);
  lin_back(NULL, 0, dwq, dbq, g.qkv, T3D, a.ln1, TD, wq, D, nb, D, D);
  memset(g.xin, 0, (size_t)BT * D * sizeof(float));
  for (int b = 0; b < nb; b++) memcpy(g.xin + b * TD, g.xmid + b * TD, (size_t)D * sizeof(float));
  layernorm_backward(g.xin, DP(ln1_w, lD), DP(ln1_b, lD), g.ln1, a.xin, p->ln1_w + lD, a.mean1, a.rstd1, BT, D);
}

void gb_vit_train_backward(gb_vit *m, const float *dfinal, int nb, gb_vit_params *dp) {
  const gb_vit_config *c = &m->cfg;
  int D = c->dim, T = m->T, L = c->depth, N = m->N, R = c->n_reg, P = c->patch;
  int64_t TD = (int64_t)T * D, sd = (int64_t)m->B * TD;
  const float *xl = m->a.x + L * sd;
  float *gl = m->g.x + L * sd;
  for (int b = 0; b < nb; b++) { /* final LayerNorm of the CLS rows */
    memset(gl + b * TD, 0, (size_t)D * sizeof(float));
    layernorm_backward(gl + b * TD, dp->norm_w, dp->norm_b, dfinal + (int64_t)b * D, xl + b * TD, m->p.norm_w,
                       m->a.final_mean + b, m->a.final_rstd + b, 1, D);
  }
  block_cls_backward(m, L - 1, nb, dp);
  for (int l = L - 2; l >= 0; l--) block_full_backward(m, l, nb, dp);
  const float *d0 = m->g.x; /* embeddings: CLS, registers, patch projection */
  float *dpatch = m->g.patch_out;
  for (int b = 0; b < nb; b++) {
    const float *d = d0 + b * TD;
    for (int j = 0; j < D; j++) dp->cls[j] += d[j];
    for (int r = 0; r < R; r++)
      for (int j = 0; j < D; j++) dp->reg[r * D + j] += d[(1 + r) * D + j];
    memcpy(dpatch + (int64_t)b * N * D, d + (int64_t)(1 + R) * D, (size_t)N * D * sizeof(float));
  }
  lin_back(NULL, 0, dp->patch_w, dp->patch_b, dpatch, D, m->a.patches, 3 * P * P, m->p.patch_w, 3 * P * P,
           (int64_t)nb * N, 3 * P * P, D);
}
