/* gradbrain — extraction of forward activations and learning signals into features.h5.
 *
 * For every image and every selected block l: `forward` = the block output a_l (residual
 * stream), `backprop` = dL_i/da_l for the image's own objective L_i (activation gradients
 * only). Tokens are pooled (cls | mean of patch tokens | cls+mean | all tokens) and written
 * batch by batch to /<signal>/layer_XX (n_images x dim) with /image_ids and provenance
 * attributes; memory stays flat in the number of images. Signals are a table (name, whether
 * it needs the backward pass, how to compute and where its tap lives), so other learning
 * rules can be added as further signals over the same activation arenas. */
#ifndef GRADBRAIN_EXTRACT_H
#define GRADBRAIN_EXTRACT_H

#include <stdint.h>

#include "gradbrain/learning_rules.h"
#include "gradbrain/objective.h"
#include "gradbrain/status.h"
#include "gradbrain/vit.h"

typedef enum { GB_POOL_CLS = 0, GB_POOL_MEAN, GB_POOL_CLS_MEAN, GB_POOL_TOKENS } gb_pool;

/* "cls" | "mean" | "cls+mean" | "tokens" -> pool; -1 if unknown. */
int gb_pool_parse(const char *s);
const char *gb_pool_name(gb_pool p);
/* Feature width after pooling. */
int64_t gb_pool_dim(gb_pool p, int T, int D);
/* Pools nb token maps (nb, T, D) into out (nb x gb_pool_dim): mean is over the patch tokens
 * (tokens n_prefix..T-1; CLS and registers excluded). */
void gb_pool_tokens(float *out, const float *tap, int nb, int T, int n_prefix, int D, gb_pool pool);

/* ---- per-batch signal computation (used by gb_extract_run; exposed for tests and benches) ---- */

typedef struct {
  gb_vit *m;
  gb_objective *obj;  /* NULL: forward only */
  int max_batch;
  int stop_layer;     /* lowest block whose gradient is needed (1-based) */
  float *ft;          /* (max_batch x dim) teacher features */
  float *dfs;         /* (max_batch x dim) dL/d(final CLS) */
  float *loss;        /* (max_batch) per-image loss */
  int *labels_used;   /* (max_batch) xent labels actually used */
  struct gb_dino_teacher *teacher; /* NULL: the teacher is m itself; else a distinct teacher (teacher.h) */
} gb_signal_batch;

/* Prepares the model's buffers for max_batch images of image_size and the scratch above. */
gb_status gb_signal_batch_init(gb_signal_batch *s, gb_vit *m, gb_objective *obj, int max_batch, int image_size,
                               int stop_layer);
void gb_signal_batch_free(gb_signal_batch *s);
/* DINO center, first pass: teacher forward of nb images and center_add. */
gb_status gb_signal_batch_center(gb_signal_batch *s, const float *teacher, int nb);
/* Student forward on nb images; with an objective also the teacher forward (teacher != NULL,
 * else the teacher features are the student's), the per-image losses and the backward pass.
 * Afterwards the taps are gb_vit_tap(m, layer, 0) and gb_vit_tap(m, layer, 1). */
gb_status gb_signal_batch_run(gb_signal_batch *s, const float *student, const float *teacher, const int *labels,
                              int nb);

/* ---- the whole pipeline ---- */

typedef struct {
  const char *model_path, *config_path, *images, *out_path, *labels_path;
  gb_vit_arch arch;
  const char *signals;   /* comma-separated: "forward,backprop" */
  gb_objective_kind objective;
  gb_pool pool;
  const char *layers;    /* "all" or "1,4,8" */
  int image_size;
  int views_augment;     /* 0: identity; 1: teacher sees a seeded random-resized-crop + flip */
  uint64_t seed;
  int batch;
  int resume, overwrite;
  int head_k;            /* seeded DINO head prototypes (<= 0: 65536) */
  int n_classes;         /* seeded classifier classes (<= 0: 1000) */
  const char *cmdline;   /* for provenance */
  const char *defaults_applied; /* for provenance: the options left at their defaults */
  gb_rule_opts rules;    /* parameters of fa, dfa, td-nudge, td-view, pc (learning_rules.h) */
  const char *teacher_model_path; /* NULL: teacher = the model; else a distinct teacher backbone + DINO head (teacher.h) */
  const char *center_from;        /* NULL: center from the stimuli; else a training checkpoint (center, temperatures) */
} gb_extract_opts;

/* Fills the defaults of the `gradbrain extract` contract. */
void gb_extract_opts_default(gb_extract_opts *o);
/* Runs the extraction and writes out_path atomically (or continues out_path.tmp with resume). */
gb_status gb_extract_run(const gb_extract_opts *o);

#endif
