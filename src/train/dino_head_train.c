/* DINO head with weight gradients, for training (the extraction head in objectives/ has
 * activation gradients only). Same parameterisation: Linear-GELU-Linear-GELU-Linear, L2
 * normalize (F.normalize, eps 1e-12), last layer without bias. */
#include <math.h>
#include <string.h>

#include "gradbrain/arena.h"
#include "gradbrain/nn.h"
#include "gradbrain/rng.h"
#include "gradbrain/train.h"

static int64_t head_layout(const gb_dhead_config *c, float *mem, gb_dhead_params *p) {
  int64_t in = c->in, h = c->hidden, bo = c->bottleneck, k = c->k, off = 0;
  gb_dhead_params q;
#define TAKE(field, n)               \
  do {                               \
    q.field = mem ? mem + off : NULL; \
    off += (n);                      \
  } while (0)
  TAKE(w0, h * in);
  TAKE(b0, h);
  TAKE(w1, h * h);
  TAKE(b1, h);
  TAKE(w2, bo * h);
  TAKE(b2, bo);
  TAKE(last, k * bo);
#undef TAKE
  if (p) *p = q;
  return off;
}

int64_t gb_dhead_param_count(const gb_dhead_config *c) { return head_layout(c, NULL, NULL); }

void gb_dhead_layout(const gb_dhead_config *c, float *mem, gb_dhead_params *p) { head_layout(c, mem, p); }

void gb_dhead_init(const gb_dhead_config *c, float *mem, uint64_t seed) {
  gb_dhead_params p;
  head_layout(c, mem, &p);
  gb_rng r;
  gb_rng_seed(&r, seed);
  int64_t n = gb_dhead_param_count(c);
  gb_rng_fill_normal(&r, mem, (long)n, 0.02f);
  memset(p.b0, 0, (size_t)c->hidden * sizeof(float));
  memset(p.b1, 0, (size_t)c->hidden * sizeof(float));
  memset(p.b2, 0, (size_t)c->bottleneck * sizeof(float));
  /* prototypes start on the unit sphere (as DINOv1's weight-normed last layer with g = 1), so
   * the teacher's logits are cosines and its sharpened targets carry signal from the start */
  for (int k = 0; k < c->k; k++) {
    float *row = p.last + (int64_t)k * c->bottleneck;
    double n2 = 0;
    for (int j = 0; j < c->bottleneck; j++) n2 += (double)row[j] * row[j];
    float inv = (float)(1.0 / sqrt(n2 > 0 ? n2 : 1.0));
    for (int j = 0; j < c->bottleneck; j++) row[j] *= inv;
  }
}

gb_status gb_dhead_acts_init(gb_dhead_acts *a, const gb_dhead_config *c, int rows) {
  memset(a, 0, sizeof *a);
  a->rows = rows;
  size_t R = (size_t)rows, H = (size_t)c->hidden, Bo = (size_t)c->bottleneck;
  float **hid[] = {&a->h1p, &a->h1, &a->h2p, &a->h2, &a->dh2, &a->dh1};
  for (size_t i = 0; i < sizeof hid / sizeof hid[0]; i++)
    if (!(*hid[i] = gb_alloc(R * H * sizeof(float), "DINO head activations"))) return GB_ERR_NOMEM;
  float **bot[] = {&a->z, &a->zn, &a->dzn, &a->dz};
  for (size_t i = 0; i < sizeof bot / sizeof bot[0]; i++)
    if (!(*bot[i] = gb_alloc(R * Bo * sizeof(float), "DINO head activations"))) return GB_ERR_NOMEM;
  if (!(a->znorm = gb_alloc(R * sizeof(float), "DINO head activations"))) return GB_ERR_NOMEM;
  return GB_OK;
}

void gb_dhead_acts_free(gb_dhead_acts *a) {
  float *all[] = {a->h1p, a->h1, a->h2p, a->h2, a->z, a->zn, a->znorm, a->dzn, a->dz, a->dh2, a->dh1};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) gb_free(all[i]);
  memset(a, 0, sizeof *a);
}

void gb_dhead_forward(const gb_dhead_config *c, const gb_dhead_params *p, gb_dhead_acts *a, const float *f, int n,
                      float *logits) {
  int H = c->hidden, Bo = c->bottleneck;
  linear_forward(a->h1p, f, p->w0, p->b0, n, c->in, H);
  gelu_forward(a->h1, a->h1p, (int64_t)n * H);
  linear_forward(a->h2p, a->h1, p->w1, p->b1, n, H, H);
  gelu_forward(a->h2, a->h2p, (int64_t)n * H);
  linear_forward(a->z, a->h2, p->w2, p->b2, n, H, Bo);
  for (int i = 0; i < n; i++) {
    const float *z = a->z + (int64_t)i * Bo;
    float *zn = a->zn + (int64_t)i * Bo;
    double s = 0;
    for (int j = 0; j < Bo; j++) s += (double)z[j] * z[j];
    float nrm = (float)sqrt(s);
    a->znorm[i] = nrm;
    float inv = 1.0f / (nrm > 1e-12f ? nrm : 1e-12f);
    for (int j = 0; j < Bo; j++) zn[j] = z[j] * inv;
  }
  linear_forward(logits, a->zn, p->last, NULL, n, Bo, c->k);
}

void gb_dhead_backward(const gb_dhead_config *c, const gb_dhead_params *p, gb_dhead_acts *a, const float *f,
                       const float *dlogits, int n, float *df, gb_dhead_params *dp) {
  int H = c->hidden, Bo = c->bottleneck;
  linear_backward(a->dzn, dp ? dp->last : NULL, NULL, dlogits, a->zn, p->last, n, Bo, c->k);
  for (int i = 0; i < n; i++) { /* d(z/|z|) = (dzn - zn (zn . dzn)) / |z| */
    const float *zn = a->zn + (int64_t)i * Bo, *dzn = a->dzn + (int64_t)i * Bo;
    float *dz = a->dz + (int64_t)i * Bo;
    float nrm = a->znorm[i];
    if (nrm > 1e-12f) {
      double dot = 0;
      for (int j = 0; j < Bo; j++) dot += (double)zn[j] * dzn[j];
      for (int j = 0; j < Bo; j++) dz[j] = (float)((dzn[j] - zn[j] * dot) / nrm);
    } else {
      for (int j = 0; j < Bo; j++) dz[j] = dzn[j] / 1e-12f;
    }
  }
  linear_backward(a->dh2, dp ? dp->w2 : NULL, dp ? dp->b2 : NULL, a->dz, a->h2, p->w2, n, H, Bo);
  gelu_backward(a->dh2, a->h2p, a->dh2, (int64_t)n * H);
  linear_backward(a->dh1, dp ? dp->w1 : NULL, dp ? dp->b1 : NULL, a->dh2, a->h1, p->w1, n, H, H);
  gelu_backward(a->dh1, a->h1p, a->dh1, (int64_t)n * H);
  linear_backward(df, dp ? dp->w0 : NULL, dp ? dp->b0 : NULL, a->dh1, f, p->w0, n, c->in, H);
}

gb_status gb_dhead_wn_init(gb_dhead_wn *wn, const gb_dhead_config *c) {
  wn->w = gb_alloc((size_t)c->k * c->bottleneck * sizeof(float), "DINO head last layer");
  wn->inv_norm = gb_alloc((size_t)c->k * sizeof(float), "DINO head last layer");
  return wn->w && wn->inv_norm ? GB_OK : GB_ERR_NOMEM;
}

void gb_dhead_wn_free(gb_dhead_wn *wn) {
  gb_free(wn->w);
  gb_free(wn->inv_norm);
  memset(wn, 0, sizeof *wn);
}

void gb_dhead_wn_forward(const gb_dhead_config *c, const float *v, gb_dhead_wn *wn) {
  int Bo = c->bottleneck;
#pragma omp parallel for schedule(static)
  for (int k = 0; k < c->k; k++) {
    const float *vr = v + (int64_t)k * Bo;
    float *wr = wn->w + (int64_t)k * Bo;
    double n2 = 0;
    for (int j = 0; j < Bo; j++) n2 += (double)vr[j] * vr[j];
    double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0.0;
    wn->inv_norm[k] = (float)inv;
    for (int j = 0; j < Bo; j++) wr[j] = (float)(vr[j] * inv);
  }
}

void gb_dhead_wn_backward(const gb_dhead_config *c, const gb_dhead_wn *wn, float *grad) {
  int Bo = c->bottleneck;
#pragma omp parallel for schedule(static)
  for (int k = 0; k < c->k; k++) {
    const float *wr = wn->w + (int64_t)k * Bo;
    float *g = grad + (int64_t)k * Bo;
    double dot = 0;
    for (int j = 0; j < Bo; j++) dot += (double)wr[j] * g[j];
    for (int j = 0; j < Bo; j++) g[j] = (float)((g[j] - wr[j] * dot) * wn->inv_norm[k]);
  }
}
