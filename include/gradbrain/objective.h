/* gradbrain — training objectives whose per-image gradients are the "backprop" signal.
 *
 * Every objective is per image: loss[i] and dL_i/df_i depend on image i alone (never divided by
 * the batch size, never mixing images). f is the final-normed CLS token (nb x dim).
 * - dino: DINO head (3-layer MLP with GELU, L2-normalize, last layer to K prototypes) on the
 *   student and teacher features; target softmax((t - c)/0.07), c = mean teacher logits over
 *   the stimulus set (a first pass: center_add / center_finish); L = -sum p log_softmax(s/0.1).
 * - xent: linear classifier; label given, or the model's own argmax; L = cross-entropy.
 * - invariance: L = 1 - cos(f_student, stopgrad f_teacher). */
#ifndef GRADBRAIN_OBJECTIVE_H
#define GRADBRAIN_OBJECTIVE_H

#include <stdint.h>

#include "gradbrain/status.h"
#include "gradbrain/vit.h"

typedef enum { GB_OBJ_DINO = 0, GB_OBJ_XENT, GB_OBJ_INVARIANCE } gb_objective_kind;

typedef struct {
  int in, hidden, bottleneck, k;
  float *w[3], *b[3]; /* (hidden, in), (hidden, hidden), (bottleneck, hidden) and biases */
  float *last;        /* (k, bottleneck), weight norm applied */
  float *wt[3], *last_t; /* W^T of each in 64-column panels (gb_objective_init), for the forward products */
} gb_dino_head;

typedef struct {
  gb_objective_kind kind;
  int dim, max_batch;
  int head_from_file;       /* 1: head taken from the weights file; 0: built from head_seed */
  uint64_t head_seed;
  char head_desc[160];      /* for provenance */
  /* dino */
  gb_dino_head dino;
  float student_temp, teacher_temp;
  double *center_sum;
  int64_t center_count;
  float *center;            /* (k) */
  int center_ready;
  /* xent */
  int n_classes;
  float *cls_w, *cls_b;
  /* scratch for the heads: `rows` = max_batch rounded up to 16, so head GEMMs always see whole
   * 16-row slices (batch-invariant kernels, no padding copies); rows >= nb are zeros */
  int rows;
  float *fin, *dfin; /* (rows x dim) head input / its gradient */
  float *h1p, *h1, *h2p, *h2, *z, *zn, *zl, *ls, *lt, *dl, *dzn, *dz, *dh2, *dh1;
} gb_objective;

/* "dino" / "xent" / "invariance" <-> kind; -1 if unknown. */
int gb_objective_parse(const char *s);
const char *gb_objective_name(gb_objective_kind k);

/* Sets up an objective for features of `dim`. Heads present in `file_heads` are taken over
 * (their pointers are moved out; may be NULL); missing ones are built from `seed` (dino: hidden
 * 2048, bottleneck 256, `head_k` prototypes (<= 0: 65536); xent: `n_classes` (<= 0: 1000)),
 * with a warning. Free with gb_objective_free. */
gb_status gb_objective_init(gb_objective *o, gb_objective_kind kind, int dim, gb_vit_heads *file_heads,
                            uint64_t seed, int head_k, int n_classes, int max_batch);
void gb_objective_free(gb_objective *o);

/* DINO center, first pass: adds the teacher logits of nb teacher features (nb x dim). */
gb_status gb_objective_center_add(gb_objective *o, const float *ft, int nb);
/* c = mean of everything added. */
gb_status gb_objective_center_finish(gb_objective *o);
/* Sets c directly (k floats), e.g. when resuming. */
gb_status gb_objective_set_center(gb_objective *o, const float *c);

/* Per-image losses (nb) and gradients dfs (nb x dim) wrt the student features fs. ft: teacher
 * features (dino/invariance; may equal fs for identity views). labels (xent; NULL or entries
 * < 0: the model's own argmax); used_labels (may be NULL) receives the labels used. */
gb_status gb_objective_loss_grad(gb_objective *o, const float *fs, const float *ft, const int *labels, int nb,
                                 float *loss, float *dfs, int *used_labels);

/* DINO head logits (nb x k) for features f; keeps the head activations for dino_head_backward. */
void dino_head_forward(gb_objective *o, const float *f, int nb, float *logits);
/* df = d(logits)/d(f)^T dlogits (overwritten), using the activations of the last forward. */
void dino_head_backward(gb_objective *o, const float *dlogits, int nb, float *df);

#endif
