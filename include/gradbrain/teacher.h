/* gradbrain — the DINO objective of a training checkpoint at extraction time.
 *
 * `gradbrain train` checkpoints hold a student (backbone + DINO head, where the training
 * gradients flow), an EMA teacher (backbone + head, which gives the targets), the EMA center of
 * the teacher logits and the schedules. `extract --teacher-model T --center-from CKPT` computes
 * the training objective's per-image gradient at that point of training:
 *   student logits s = student_head(student CLS of the image), taps from the student backbone;
 *   teacher logits t = teacher_head(teacher CLS of the teacher view) from a distinct backbone;
 *   L_i = -sum_k softmax((t - c) / tt)_k log softmax(s / ts)_k
 * with c the checkpoint's EMA center and tt / ts the teacher temperature of the checkpoint's next
 * iteration (its "next_schedule") and the student temperature of its config. Without
 * --center-from the center is the mean teacher logit over the stimuli (the first pass, now through
 * the distinct teacher) and the temperatures stay 0.07 / 0.1. For a checkpoint trained with
 * Sinkhorn-Knopp centering (targets mix the images of a batch) the temperatures are taken and the
 * center comes from the first pass (recorded in the provenance). */
#ifndef GRADBRAIN_TEACHER_H
#define GRADBRAIN_TEACHER_H

#include <stdint.h>

#include "gradbrain/extract.h"
#include "gradbrain/objective.h"
#include "gradbrain/status.h"
#include "gradbrain/vit.h"

/* The objective state of a training checkpoint (ckpt_XXXXXX.json + ckpt_XXXXXX.state.safetensors). */
typedef struct {
  int64_t iteration;
  int k;                 /* prototypes */
  float *center;         /* (k) EMA center (gb_alloc; NULL for Sinkhorn-Knopp checkpoints) */
  int sinkhorn;          /* 1: the run used Sinkhorn-Knopp targets */
  double teacher_temp;   /* teacher temperature of the next iteration */
  double student_temp;
  double ibot_weight;    /* > 0: the run also had an iBOT patch loss (not part of extract's objective) */
  char json_path[4096], state_path[4096];
} gb_ckpt_objective;

/* Reads the objective state of the checkpoint named by `path`: ckpt_XXXXXX.json or any
 * ckpt_XXXXXX.* file / prefix beside it. Free with gb_ckpt_objective_free. */
gb_status gb_ckpt_objective_read(const char *path, gb_ckpt_objective *c);
void gb_ckpt_objective_free(gb_ckpt_objective *c);

/* A distinct teacher network: backbone + its own DINO head. */
typedef struct gb_dino_teacher {
  gb_vit *m;
  gb_objective head;     /* kind dino: only the head and its scratch are used */
  float *logits;         /* (head.rows x k) teacher logits of the current batch */
  char sha256[65];
} gb_dino_teacher;

/* Loads the teacher from `path` (config beside it or `config_path`, `arch`), prepares it for
 * max_batch images of image_size, and checks it against the student objective `student` (same
 * prototypes K, same input normalization as `student_cfg`). */
gb_status gb_dino_teacher_open(gb_dino_teacher *t, const char *path, const char *config_path, gb_vit_arch arch,
                               int max_batch, int image_size, const gb_objective *student,
                               const gb_vit_config *student_cfg, uint64_t seed);
void gb_dino_teacher_free(gb_dino_teacher *t);

/* DINO center, first pass through the teacher: adds the teacher logits of nb images to o's sums. */
gb_status gb_dino_teacher_center_add(gb_dino_teacher *t, gb_objective *o, const float *images, int nb);

/* Per-image DINO losses and gradients dfs (nb x dim) wrt the student features fs, given the
 * teacher logits lt (nb x k): the student head, center and temperatures of o. */
gb_status gb_dino_loss_grad_logits(gb_objective *o, const float *fs, const float *lt, int nb, float *loss,
                                   float *dfs);

/* gb_signal_batch_run with s->teacher set: teacher forward + head on `teacher` images, student
 * forward on `student`, loss, backward of the student down to s->stop_layer. */
gb_status gb_dino_teacher_batch_run(gb_signal_batch *s, const float *student, const float *teacher, int nb);

/* Applies --teacher-model / --center-from of `o` to the student objective: opens the teacher
 * (when o->teacher_model_path is set; *t receives it, else it is left zeroed) and sets the
 * checkpoint's center and temperatures (when o->center_from is set). *center_set = 1 when the
 * center came from the checkpoint (no first pass needed). `desc` (n chars) receives a line for
 * the provenance attributes, `teacher_sha` the teacher weights' SHA-256 ("" without one). */
gb_status gb_extract_teacher_setup(const gb_extract_opts *o, const gb_vit *student, gb_objective *obj, int max_batch,
                                   int need_rules, gb_dino_teacher *t, int *center_set, char *desc, int n,
                                   char teacher_sha[65]);

#endif
