/* gradbrain — DINO self-distillation training (`gradbrain train`) and checkpoint trajectories
 * (`gradbrain trajectory`).
 *
 * Training (DINOv2/DINOv3 recipe, CLS-token DINO loss):
 *   - student ViT + DINO head (Linear-GELU-Linear-GELU-Linear, L2-normalize, plain last layer
 *     to K prototypes without bias, as DINOv3); teacher = EMA of the student (backbone and
 *     head), momentum cosine 0.992 -> 1; the teacher starts as a copy of the student.
 *   - multi-crop: n_global global crops (RandomResizedCrop scale 0.32..1) and n_local local
 *     crops (scale 0.05..0.32) + horizontal flip, seeded: the crops of image slot b at
 *     iteration i come from gb_rng_derive(seed ^ AUG, i * batch + b); the batch's image
 *     indices from gb_rng_derive(seed ^ SAMPLE, i). So the whole random state at iteration i
 *     is (seed, i): that is what a checkpoint records for an exact --resume.
 *   - teacher targets: softmax((t - center) / tt) with center an EMA (momentum 0.9) of the
 *     batch-mean teacher logits, or Sinkhorn-Knopp (3 iterations) over the teacher batch;
 *     tt warms up linearly 0.04 -> 0.07 (vit-tiny default: constant 0.04); student temperature 0.1.
 *   - loss = mean over pairs (teacher global crop c, student crop v != c) of the batch-mean
 *     cross-entropy -sum_k p_tk log softmax(s/ts)_k; + koleo_w * sum over global crops of
 *     KoLeo (-mean log nearest-neighbour distance of L2-normalized student CLS) if enabled.
 *   - AdamW (0.9, 0.999, eps 1e-8) with lr linear warm-up then cosine to min_lr, weight decay
 *     cosine 0.04 -> 0.4 (not on biases, norms, LayerScale); gradient clipping by total norm
 *     (3.0) of the backbone and of the head separately (as DINOv2); the k-projection bias is
 *     kept at zero (DINOv3 masks it; it has no effect under softmax).
 *   - optional iBOT masked-patch loss (ibot_weight > 0; gradbrain/ibot.h).
 *   - optional photometric augmentation (--photometric dino): DINO's colour jitter, grayscale,
 *     blur and solarization, seeded per crop (gb_photometric_augment).
 *   - optional weight-normed last head layer (norm_last_layer; gb_dhead_wn), default plain.
 *
 * Checkpoint directory CKPT_DIR (written by gb_train_run, every save_every iterations):
 *   config.json                      HF DINOv3ViTModel config (model_type "dinov3_vit"), so
 *                                    `extract --model CKPT_DIR/ckpt_XXXXXX.safetensors` needs no flags
 *   ckpt_XXXXXX.safetensors          TEACHER backbone (HF DINOv3 keys: embeddings.*, layer.N.*,
 *                                    norm.*) + teacher DINO head (dino_head.mlp.{0,2,4}.weight/bias,
 *                                    dino_head.last_layer.weight). The checkpoint's training
 *                                    objective: extract --model ckpt_XXXXXX.student.safetensors
 *                                    --teacher-model ckpt_XXXXXX.safetensors --center-from
 *                                    ckpt_XXXXXX.json (gradbrain/teacher.h; what trajectory runs)
 *   ckpt_XXXXXX.student.safetensors  student backbone + student head, same keys (also loadable)
 *   ckpt_XXXXXX.state.safetensors    center (K), AdamW moments (adam.{backbone,head}.{m,v}, flat);
 *                                    with --ibot: ibot.mask_token, ibot.center, adam.ibot.{m,v}
 *   ckpt_XXXXXX.json                 iteration, adam step, seed (the RNG state is (seed, iteration)),
 *                                    training options, per-iteration losses and schedule values so far
 *   train.json                       provenance of the run (version, command line, options)
 *
 * Trajectory file T.h5 (gb_trajectory_run; C checkpoints, L layers, targets = the brain file's
 * target shape: (n_targets) for fMRI-like data, (channels, times) for MEG):
 *   /iterations                 (C) float64: checkpoint iterations, increasing
 *   /checkpoints                (C) strings: checkpoint file names
 *   /layers                     (L) strings: "layer_01", ... (as in the scores files)
 *   /<model>/r                  (C, L, targets...) float32: mean-over-folds Pearson r per target, for
 *                               model in {forward, signal, joint, residual} (residual = joint - forward;
 *                               signal = the backprop signal alone), copied from each checkpoint's scores
 *   /<model>/mean               (C, L) float64: mean over targets (NaN targets skipped)
 *   /<model>/mean_all           (C) float64: mean over layers and targets
 *   /<model>/half_time          (L) float64: per layer, the iteration at which the mean score first
 *                               reaches half of its final (last checkpoint) value, linearly
 *                               interpolated between checkpoints (gb_half_time); NaN if the final
 *                               value is <= 0
 *   /<model>/half_time_all      (1) float64: the same for mean_all
 *   /extract_loss               (C) float64: mean per-image DINO loss at each checkpoint (from extract;
 *                               the CLS DINO term of the checkpoint's objective, without iBOT)
 *   /training/{iteration,loss,dino,teacher_entropy,teacher_batch_entropy}  (I) float64: the
 *                               training run's curves, one value per iteration, from the last
 *                               checkpoint's history (NaN where a run did not record a value);
 *                               /training/{knn_iteration,knn} when the run measured k-NN accuracy
 *   attributes on /: version, command, checkpoints, images, brain, objective, pool, image_size,
 *   seed, n_folds, pca, x_label, training_history (the JSON the curves came from).
 * Beside it, T.json: {"x": iterations, "x_label", "y_label", "series": {"forward": mean_all, "joint":
 * ..., "residual": ...}, "half_time": {...}} (the report's "trajectory" section).
 * Work files: T.h5.work/ckpt_XXXXXX.features.h5 and .scores.h5 (outputs of extract and encode
 * for each checkpoint; kept, and reused by --resume). */
#ifndef GRADBRAIN_TRAIN_H
#define GRADBRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "gradbrain/status.h"
#include "gradbrain/rng.h"
#include "gradbrain/vit.h"

/* ---- DINO head with weight gradients (training) ---- */

typedef struct {
  int in, hidden, bottleneck, k;
} gb_dhead_config;

/* Head parameters: pointers into one flat allocation (order w0 b0 w1 b1 w2 b2 last). */
typedef struct {
  float *w0, *b0, *w1, *b1, *w2, *b2; /* (hidden,in) (hidden) (hidden,hidden) (hidden) (bott,hidden) (bott) */
  float *last;                        /* (k, bottleneck), no bias */
} gb_dhead_params;

/* Saved activations of one head pass over up to `rows` feature vectors. */
typedef struct {
  int rows;
  float *h1p, *h1, *h2p, *h2, *z, *zn, *znorm; /* znorm: (rows) |z| */
  float *dzn, *dz, *dh2, *dh1;                 /* backward scratch */
} gb_dhead_acts;

/* Number of floats of the head parameters, and a pointer layout over mem. */
int64_t gb_dhead_param_count(const gb_dhead_config *c);
void gb_dhead_layout(const gb_dhead_config *c, float *mem, gb_dhead_params *p);
/* Seeded init: MLP weights N(0, 0.02^2), biases 0, last-layer rows N(0, 1) scaled to unit norm
 * (DINOv1's weight-norm init, g = 1). mem holds gb_dhead_param_count floats. */
void gb_dhead_init(const gb_dhead_config *c, float *mem, uint64_t seed);
/* Allocates activations for `rows` rows (free with gb_dhead_acts_free). */
gb_status gb_dhead_acts_init(gb_dhead_acts *a, const gb_dhead_config *c, int rows);
void gb_dhead_acts_free(gb_dhead_acts *a);
/* logits (n x k) = head(f) for n feature rows f (n x in); keeps activations in `a`. */
void gb_dhead_forward(const gb_dhead_config *c, const gb_dhead_params *p, gb_dhead_acts *a, const float *f, int n,
                      float *logits);
/* From dlogits (n x k) of the last forward on features f: df (n x in) overwritten (NULL to
 * skip), dp (may be NULL) += weight gradients. */
void gb_dhead_backward(const gb_dhead_config *c, const gb_dhead_params *p, gb_dhead_acts *a, const float *f,
                       const float *dlogits, int n, float *df, gb_dhead_params *dp);

/* DINO's weight-normed last layer (DINOv1/DINOv2 norm_last_layer): the trained parameter is V
 * (k x bottleneck, in gb_dhead_params.last); the layer applies W = g V / ||V|| per prototype row
 * with g fixed to 1. Checkpoints store it as last_layer.weight_g (ones) + weight_v (V). */
typedef struct {
  float *w;        /* (k x bottleneck) W = V / ||V|| of the last gb_dhead_wn_forward */
  float *inv_norm; /* (k) 1 / ||V_row|| */
} gb_dhead_wn;
gb_status gb_dhead_wn_init(gb_dhead_wn *wn, const gb_dhead_config *c);
void gb_dhead_wn_free(gb_dhead_wn *wn);
/* W and 1/||V|| from V (a zero row gives a zero W row). */
void gb_dhead_wn_forward(const gb_dhead_config *c, const float *v, gb_dhead_wn *wn);
/* In place: the gradient wrt W (k x bottleneck) becomes the gradient wrt V,
 * dV = (dW - W (W . dW)) / ||V|| per row. */
void gb_dhead_wn_backward(const gb_dhead_config *c, const gb_dhead_wn *wn, float *grad);

/* ---- losses ---- */

/* Teacher targets with centering: P (rows x k) = softmax((t - center) / temp). */
void gb_dino_teacher_softmax(float *P, const float *t, const float *center, int rows, int k, float temp);
/* Teacher targets by Sinkhorn-Knopp (DINOv2): Q = exp(t / temp), `iters` alternating
 * normalizations over prototypes and over the `rows` samples; each row of P sums to 1. */
void gb_dino_teacher_sinkhorn(float *P, const float *t, int rows, int k, float temp, int iters);
/* Multi-crop DINO loss. P: teacher targets (n_teacher crops x B x k, crop-major); S: student
 * logits (n_student crops x B x k, crop-major; the first n_teacher student crops are the same
 * views as the teacher's). Returns the mean over pairs (c, v != c) of the batch-mean cross
 * entropy; dS (same shape as S, overwritten) receives its gradient. */
double gb_dino_multicrop_loss(const float *P, const float *S, float *dS, int n_teacher, int n_student, int B, int k,
                              float student_temp);
/* KoLeo loss of n feature rows f (n x d): -mean_i log(|x_i - x_nn(i)| + 1e-8) with x the
 * L2-normalized rows; df (n x d) += weight * gradient. Returns the (unweighted) loss. */
/* Mean row entropy of targets P (rows x k) and entropy of their row mean, in nats. */
void gb_dino_target_entropy(const float *P, int rows, int k, double *row_mean, double *batch_mean);
double gb_koleo_loss(const float *f, int n, int d, float weight, float *df);

/* ---- AdamW and schedules ---- */

/* One AdamW step (PyTorch semantics) on n parameters: p *= 1 - lr*wd*decay[i]; moments; bias
 * correction with step t (1-based). decay (may be NULL = all) is 0/1 per parameter. */
void gb_adamw_step(float *p, const float *g, float *m, float *v, const uint8_t *decay, int64_t n, double lr,
                   double wd, double beta1, double beta2, double eps, int64_t t);
/* Scales g (n) so that its L2 norm is at most max_norm (clip_grad_norm_ semantics:
 * coef = max_norm / (norm + 1e-6), applied if < 1). Returns the norm before clipping. */
double gb_clip_grad_norm(float *g, int64_t n, double max_norm);
/* DINO's cosine_scheduler: with warmup > 0, linspace(0, v0, warmup) for i < warmup, then a
 * cosine from v0 to v1 over the remaining n - warmup steps: v1 + (v0 - v1)(1 + cos(pi k/len))/2. */
double gb_cosine_schedule(int64_t i, int64_t n, int64_t warmup, double v0, double v1);

/* ---- photometric augmentation (src/train/photometric.c) ---- */

/* DINO's photometric augmentations, in place, of one normalized crop chw (3 x size x size,
 * normalized with mean/std): colour jitter (brightness 0.4, contrast 0.4, saturation 0.2,
 * hue 0.1, random order) with p 0.8, grayscale p 0.2, Gaussian blur (sigma U(0.1, 2) px at
 * 224 px, scaled to size) with p 1.0 / 0.1 / 0.5 for crop_kind 0 (first global) / 1 (second
 * global) / 2 (local), solarization p 0.2 on crop_kind 1. All draws from rng (a fixed number
 * per call). */
gb_status gb_photometric_augment(float *chw, int size, int crop_kind, gb_rng *rng, const float mean[3],
                                 const float std[3]);
/* The random choices of one crop's photometric augmentation. */
typedef struct {
  int jitter, order[4];       /* colour jitter on; its order (0 brightness, 1 contrast, 2 saturation, 3 hue) */
  float brightness, contrast, saturation, hue; /* factors (hue: shift in turns) */
  int gray, blur, solarize;
  float sigma;                /* blur sigma in pixels at 224 px (scaled by size / 224 when applied) */
} gb_photometric;
/* Draws the choices for crop_kind from rng (10 uniforms + 3 permutation draws). */
void gb_photometric_draw(gb_rng *rng, int crop_kind, gb_photometric *d);
/* Applies them in place to planar RGB in [0, 1] (3 x size x size): jitter in order (each
 * clamped to [0, 1]; brightness = blend with 0, contrast = with the mean gray value, saturation
 * = with the pixel's gray 0.299 R + 0.587 G + 0.114 B, hue = HSV rotation), grayscale, blur
 * (separable Gaussian, radius ceil(3 sigma), mirrored borders), solarization (x >= 0.5 -> 1 - x). */
gb_status gb_photometric_apply(float *rgb, int size, const gb_photometric *d);

/* ---- ViT training passes (src/train/vit_train.c) ---- */

/* Forward pass of nb images (as gb_vit_forward) computing only what the final-normed CLS token
 * m->a.final depends on: in the last block only the keys/values of every token and the CLS
 * row of the rest. DINOv3 layout only (RoPE, GELU, no ln_pre, no learned position embedding). */
gb_status gb_vit_train_forward(gb_vit *m, const float *images, int nb);
/* Backward pass after gb_vit_train_forward from dL/d(final CLS) (nb x dim): dp += the weight
 * gradients (params layout); m->g is scratch. Needs buffers prepared with backward = 1. */
void gb_vit_train_backward(gb_vit *m, const float *dfinal, int nb, gb_vit_params *dp);

/* ---- the trainer ---- */

typedef struct {
  gb_vit_config vit;        /* must be GB_VIT_DINOV3 (RoPE: crops of any size share weights) */
  gb_dhead_config head;     /* head.in is set from vit.dim */
  int batch, n_global, n_local, global_size, local_size;
  double global_scale[2], local_scale[2];
  int64_t iters, save_every;
  double lr, min_lr;
  int64_t warmup_iters;
  double wd0, wd1, mom0, mom1;
  double teacher_temp0, teacher_temp1, student_temp;
  int64_t teacher_temp_warmup;
  double center_momentum, clip;
  int sinkhorn;             /* 0: EMA centering; 1: Sinkhorn-Knopp (3 iterations) */
  double koleo_weight;      /* 0: off */
  double beta1, beta2, adam_eps;
  uint64_t seed;
  double ibot_weight;       /* 0: off; else the iBOT masked-patch loss weight (gradbrain/ibot.h) */
  double ibot_mask_prob, ibot_ratio[2]; /* fraction of masked global crops, mask ratio range */
  int ibot_separate_head;   /* 1: a separate iBOT head (else the DINO head is shared) */
  int photometric;          /* 1: DINO's colour jitter / grayscale / blur / solarization per crop */
  int norm_last_layer;      /* 1: weight-normed last head layer, g = 1 (DINOv2); 0: plain (DINOv3) */
} gb_train_config;

/* Fills the defaults for `arch_name`: "vit-tiny" | "vit-small" | a path ending in .json (HF-style
 * config: hidden_size, num_hidden_layers, num_attention_heads, patch_size, optional
 * num_register_tokens, intermediate_size, image_size = global crop size; head 4d:d/2:256,
 * batch 16, 2 local crops of half size). Unknown -> GB_ERR_ARG. */
gb_status gb_train_config_default(gb_train_config *c, const char *arch_name);

/* Values of the schedules at an iteration. */
typedef struct {
  double lr, wd, momentum, teacher_temp;
} gb_train_sched;
void gb_train_schedule(const gb_train_config *c, int64_t it, gb_train_sched *s);

typedef struct {
  double loss, dino, koleo, grad_norm_backbone, grad_norm_head;
  gb_train_sched sched;
  double ibot;              /* iBOT loss (unweighted; 0 when off) */
  /* collapse monitors (DINO paper, sec. 5.3): mean entropy of the teacher targets per crop
   * (ln K = uniform collapse, 0 = one-hot) and entropy of their batch mean (0 = every crop on
   * the same prototype); the DINO loss is their first term plus the student's mean KL */
  double teacher_entropy, teacher_batch_entropy;
} gb_train_stats;

/* A parameter group: params, gradients, AdamW moments, decay mask (all n long). */
typedef struct {
  int64_t n;
  float *p, *g, *m, *v;
  uint8_t *decay;
} gb_param_group;

typedef struct {
  gb_train_config cfg;
  gb_vit *student, *student_local; /* the local twin shares the student's parameters */
  gb_vit *teacher;
  gb_dhead_params shead, thead, dhead; /* parameter layouts (last = V when weight-normed) */
  float *shead_mem, *thead_mem;
  gb_dhead_params sfw, tfw;        /* what the head passes use: shead/thead, last = W if weight-normed */
  gb_dhead_wn swn, twn;            /* weight-normed last layers (norm_last_layer) */
  gb_vit_params dback;             /* gradient layout of the backbone */
  gb_param_group back, head;
  gb_dhead_acts sacts, tacts;
  float *center;                   /* (k) */
  float *feat, *dfeat;             /* ((n_global + n_local) B x dim) student CLS and its gradient */
  float *slog, *dslog, *tlog, *P;  /* student / teacher logits, targets */
  int64_t it;                      /* iterations done */
  int64_t adam_t;                  /* AdamW steps done */
  /* Data parallelism inside a step: the crops are split into a fixed number of contiguous
   * shards (GB_TRAIN_SHARDS, independent of the thread count, so results and --resume do not
   * depend on it); each shard runs forward/backward on one thread (single-threaded BLAS) with
   * its own activation buffers over the shared parameters and its own weight-gradient buffer;
   * the shard gradients are summed in shard order. */
  int n_shards;
  gb_vit **sh_global, **sh_local;  /* per-shard twins of the student (global / local crop size) */
  float **sh_grad;                 /* per-shard backbone weight gradients (n_params each) */
  float *tfeat;                    /* (n_global B x dim) teacher CLS of the current step */
  struct gb_ibot *ibot;            /* iBOT state (gradbrain/ibot.h), NULL when off */
} gb_trainer;

/* Shards per step (see gb_trainer.n_shards). */
#define GB_TRAIN_SHARDS 4

/* Creates a trainer: student from seeded random weights (or from `init` backbone and `init_head`
 * when non-NULL; the model's config must match c->vit), teacher = copy of the student. */
gb_status gb_trainer_create(gb_trainer *t, const gb_train_config *c, const gb_vit *init, const gb_vit_heads *init_head);
void gb_trainer_free(gb_trainer *t);
/* One training step on given crops (normalized CHW): global (n_global x B, 3, gs, gs) and
 * local (n_local x B, 3, ls, ls), crop-major. Forward, loss, backward, clipping, AdamW, EMA,
 * center update; advances t->it. */
gb_status gb_trainer_step(gb_trainer *t, const float *global, const float *local, gb_train_stats *st);

/* Writes the checkpoint files of iteration t->it into dir (see the header comment);
 * `history_json` (may be NULL) is a JSON array text stored as "history". */
gb_status gb_trainer_save(const gb_trainer *t, const char *dir, const char *history_json);
/* Restores a trainer created with the same config from the checkpoint of iteration `it` in dir;
 * *history_json (may be NULL) receives the stored history array as JSON text (caller free()s). */
gb_status gb_trainer_load(gb_trainer *t, const char *dir, int64_t it, char **history_json);
/* Path of a checkpoint file: dir/ckpt_XXXXXX<suffix> (suffix ".safetensors", ".json", ...). */
void gb_ckpt_path(char *out, size_t n, const char *dir, int64_t it, const char *suffix);
/* The iterations of the ckpt_XXXXXX.json files in dir, sorted (caller free()s *its). */
gb_status gb_ckpt_list(const char *dir, int64_t **its, int *n);
/* Writes dir/config.json (HF DINOv3 config of c->vit). */
gb_status gb_train_write_hf_config(const gb_vit_config *c, const char *dir);

/* ---- the whole run (`gradbrain train`) ---- */

typedef struct {
  const char *images;       /* directory / list of images, or "procedural" */
  const char *out_dir;
  int n_images, categories, image_size; /* procedural pool (image_size also = decode size for DIR) */
  int resume, overwrite;
  int64_t knn_every;        /* > 0: every N iterations (and at 0 and the end), k-NN accuracy of the
                               teacher's CLS on held-out procedural images (needs labels) */
  int n_eval;               /* held-out images for k-NN (procedural indices after the pool) */
  int threads;              /* recorded */
  int64_t stop_at;          /* > 0: stop after this iteration (as if interrupted; then --resume) */
  const char *cmdline;
} gb_train_opts;

/* Weighted k-NN accuracy (cosine similarity, k neighbours, votes exp(sim / 0.07), as DINO's
 * evaluation) of test features against a labelled memory bank. */
double gb_knn_accuracy(const float *train, const int *ytrain, int ntrain, const float *test, const int *ytest,
                       int ntest, int d, int k, int n_classes);

/* Trains (or resumes) and writes checkpoints into opts->out_dir. */
gb_status gb_train_run(const gb_train_config *c, const gb_train_opts *o);

/* ---- trajectory ---- */

typedef struct {
  const char *checkpoints;  /* CKPT_DIR with ckpt_XXXXXX.safetensors files */
  const char *images, *brain, *out_path;
  const char *layers;       /* extract/encode layers: "all" or "1,4" */
  const char *pool;         /* extract pooling ("cls+mean" ...) */
  int image_size;           /* 0: image_size of CKPT_DIR/config.json (the global crop size) */
  int batch, views_augment;
  int n_folds, pca, inner_k;
  const char *alphas;       /* NULL: encode default grid */
  uint64_t seed;
  int overwrite, resume;
  const char *cmdline;
} gb_trajectory_opts;

void gb_trajectory_opts_default(gb_trajectory_opts *o);
/* The iteration where the series y (n, at increasing x) first reaches half of y[n-1], linearly
 * interpolated; NaN if y[n-1] <= 0 or n == 0. */
double gb_half_time(const double *x, const double *y, int n);
/* Runs extract + encode per checkpoint and collects T.h5 (layout at the top of this header). */
gb_status gb_trajectory_run(const gb_trajectory_opts *o);

#endif
