/* gradbrain — iBOT masked-patch loss for `gradbrain train --ibot W` (DINOv2's recipe).
 *
 * Per iteration i and global crop j (crop-major index over n_global x batch), a mask over the
 * crop's patch grid from gb_rng_derive(seed ^ "IBOT", i * n_global * batch + j): with probability
 * ibot_mask_prob the crop is masked, with a ratio r ~ U(ibot_ratio[0], ibot_ratio[1]) and
 * int(N r) target patches placed as random rectangles (BEiT / DINOv2 block-wise masking: area
 * U(4, remaining), aspect log-U(0.3, 1/0.3), at most N/2 patches per block, 10 attempts per
 * block, stop when no block fits); otherwise it is unmasked (DINOv2: mask_sample_probability 0.5,
 * mask_ratio_min_max 0.1-0.5; here decided per image so a crop's mask depends on (seed, i, j)
 * alone).
 * The student sees the global crops with the masked patch embeddings replaced by a learned mask
 * token (zeros at start, weight decay like the CLS token, clipped with the backbone) before the
 * blocks (so the DINO CLS loss sees the masked crops too, as in DINOv2); the teacher sees them
 * unmasked. The final-normed patch tokens at the masked positions go through the DINO head
 * (shared: DINOv2's default config, ibot.separate_head = false) or, with ibot_separate_head
 * (DINOv2's released ViT-L/g training configs), through a separate iBOT head of the same shape
 * (own seeded init, own EMA teacher copy, AdamW with the head's decay groups, clipped on its own
 * as DINOv2 clips each student module); teacher targets
 * softmax((t - c_p) / tt) with c_p a separate EMA center over the masked teacher patch logits
 * (momentum center_momentum); loss = mean over the n_global x batch crops of the mean over the
 * crop's masked patches of -sum_k p_k log softmax(s / ts)_k (a crop without masked patches adds
 * 0; DINOv2's forward_masked x 2 / n_global, identical for 2 global crops); the training loss
 * adds ibot_weight x this. With Sinkhorn-Knopp centering (sinkhorn = 1) the targets are instead
 * Sinkhorn-Knopp (3 iterations, temperature tt) over all masked patches of the step together, as
 * DINOv2/v3 (memory: n_masked x K floats, plus twice that in double inside the iterations), and
 * no patch center is kept.
 * The trainer runs the full ViT passes of src/nn/vit.c for the global crops when iBOT is on (every
 * final patch token is needed; the mask goes in through the gb_vit hooks patch_mask / mask_token /
 * dmask_token / dx_last). Checkpoints: ibot.mask_token, ibot.center, adam.ibot.{m,v} (and with a
 * separate head ibot_head.{student,teacher} and adam.ibot_head.{m,v}, flat in the DINO head's
 * layout) in ckpt_XXXXXX.state.safetensors; the options in the checkpoint config (so --resume
 * checks them). */
#ifndef GRADBRAIN_IBOT_H
#define GRADBRAIN_IBOT_H

#include <stdint.h>

#include "gradbrain/status.h"
#include "gradbrain/train.h"

/* The trainer's shards (gb_ibot_shard_hook's sh) are numbered below this. */
#define GB_IBOT_MAX_SHARDS 64

typedef struct gb_ibot {
  int gh, gw, N, npre, D, K, GB; /* patch grid, tokens before the patches, dim, prototypes, crops */
  uint8_t *mask;                 /* (GB x N) this iteration's masks */
  float *token, *dtoken, *adam_m, *adam_v; /* (D) mask token, its gradient and AdamW moments */
  uint8_t *decay;                /* (D) ones */
  float *center;                 /* (K) EMA center of the masked teacher patch logits */
  /* per shard of the trainer: the student model holding crops [c0, c0 + nc), its gradient
   * buffers for the last block output and the mask token */
  int n_shards;
  gb_vit **shard_m;
  int *shard_c0, *shard_nc;
  float **shard_dx, **shard_dtok;
  /* masked rows of the current step, compacted in (crop, patch) order */
  int n_masked;
  int *row_crop, *row_patch;     /* (GB x N) */
  float *tfeat;                  /* (GB x N, D) teacher final-normed patch tokens (full layout) */
  float *sfeat, *dsfeat;         /* (GB x N, D) compacted student final-normed tokens / gradient */
  float *smean, *srstd;          /* (GB x N) */
  float *dnorm_w, *dnorm_b;      /* (D) final-norm gradients from the patch tokens */
  int chunk;                     /* head rows per pass */
  gb_dhead_acts acts;
  float *cin, *tl, *sl, *dl;     /* chunk x D, chunk x K (x3) */
  float *tall;                   /* Sinkhorn-Knopp centering: targets of every masked patch (n_masked x K) */
  int64_t tall_rows;             /* its capacity in rows (grown as needed) */
  double *tsum;                  /* (K) sum of masked teacher logits (center update) */
  double loss;
  int bad;                       /* a shard index out of range was seen */
  /* separate iBOT head (ibot_separate_head): student / teacher parameters, gradient, moments */
  int separate;
  int64_t ihn;                   /* floats of one head */
  float *ishead_mem, *ithead_mem, *ig, *im, *iv;
  uint8_t *idecay;
  gb_dhead_params ishead, ithead, idhead;
  gb_dhead_params isfw, itfw;    /* what its passes use (last = W when weight-normed) */
  gb_dhead_wn iswn, itwn;
} gb_ibot;

/* The masks of iteration `it` for config c at a patch grid gh x gw: mask (n_global * batch x
 * gh * gw), 1 = masked. Returns the number of masked patches. */
int64_t gb_ibot_make_masks(const gb_train_config *c, int64_t it, int gh, int gw, uint8_t *mask);

/* Creates the iBOT state of a trainer (t->ibot) when t->cfg.ibot_weight > 0; checks options. */
gb_status gb_ibot_create(gb_trainer *t);
void gb_ibot_free(gb_trainer *t);

/* Called by the trainer for each shard sh after the teacher forward over the shard's global crops
 * [c0, c0 + nc) (model tv, whose buffers the student reuses next) and before the student forward
 * (model m): makes the crops' masks, keeps the teacher's final-normed patch tokens and attaches
 * the mask hooks to m. */
void gb_ibot_shard_hook(gb_trainer *t, int sh, gb_vit *tv, gb_vit *m, int c0, int nc);
/* (sh < GB_IBOT_MAX_SHARDS; a trainer without shards calls it once with sh = 0 over all crops.) */
/* After the student forwards: the iBOT loss (returned, unweighted); head weight gradients (times
 * ibot_weight) added to t->dhead; the gradients wrt the last block outputs set on the shard
 * models for their backward. */
double gb_ibot_loss(gb_trainer *t, const gb_train_sched *s);
/* After the backbone backward and the shard-gradient sum: adds the final-norm and mask-token
 * gradients, clips backbone + mask token jointly by their total norm (clip_grad_norm_ semantics)
 * and returns the norm before clipping. */
double gb_ibot_clip_backbone(gb_trainer *t, double max_norm);
/* After the optimizer step: AdamW on the mask token, the patch-center EMA, hooks detached. */
void gb_ibot_update(gb_trainer *t, const gb_train_sched *s);

#endif
