/* gradbrain — Vision Transformer engine (DINOv3, DINOv2, CLIP), forward and backward.
 *
 * llm.c style: the parameters are a struct of pointers into one allocation (per-block
 * tensors stacked over blocks), the activations a struct of pointers into a second one, and
 * the activation gradients a twin of the activations with exactly the same layout, so the
 * backprop tap dL/da_l of block l is just a pointer (gb_vit_tap). A batch is split into one
 * contiguous shard of images per thread (gb_set_threads), and each thread runs its shard
 * through the whole network alone with single-threaded BLAS: the shard's images go through
 * every linear layer as one GEMM; attention is one GEMM pair per (image, head).
 * Every computation is per image: nothing mixes images of a batch, so the shards share the
 * parameters and the arenas (each owns its own rows) and an image's result does not depend
 * on its shard or batch companions.
 *
 * Block l (pre-LN): x_mid = x + ls1 * proj(attn(ln1(x)));  x_out = x_mid + ls2 * fc2(act(fc1(ln2(x_mid))))
 * Token order: [CLS, registers..., patches (row-major)]. */
#ifndef GRADBRAIN_VIT_H
#define GRADBRAIN_VIT_H

#include <stdint.h>

#include "gradbrain/status.h"

typedef enum { GB_VIT_AUTO = 0, GB_VIT_DINOV3, GB_VIT_DINOV2, GB_VIT_CLIP } gb_vit_arch;
typedef enum { GB_ACT_GELU = 0, GB_ACT_QUICKGELU } gb_vit_act;

typedef struct {
  gb_vit_arch arch;
  int dim, depth, heads, mlp_hidden, patch;
  int n_reg;          /* register tokens after CLS */
  int pos_grid;       /* side of the learned position-embedding grid; 0 = none (RoPE) */
  int rope;           /* 1: rotary embedding on patch tokens (DINOv3) */
  double rope_base;   /* RoPE period base (DINOv3: 100) */
  float eps;          /* LayerNorm epsilon */
  gb_vit_act act;
  int layerscale;     /* 1: per-branch LayerScale gains */
  int ln_pre;         /* 1: LayerNorm on the embeddings before block 1 (CLIP) */
  int native_size;    /* training image size from the config (informational) */
  float mean[3], std[3]; /* input normalization of this family */
  char config_source[512]; /* where hyperparameters came from, for provenance */
} gb_vit_config;

/* Parameters; per-block tensors are stacked: ln1_w is (depth x dim), qkv_w (depth x 3dim x dim)... */
typedef struct {
  float *patch_w;            /* (dim, 3*P*P) = Conv2d (dim, 3, P, P) */
  float *patch_b;            /* (dim) (zeros when the file has none) */
  float *cls;                /* (dim) */
  float *reg;                /* (n_reg, dim) or NULL */
  float *pos;                /* (1 + pos_grid^2, dim) or NULL */
  float *ln_pre_w, *ln_pre_b; /* (dim) or NULL */
  float *ln1_w, *ln1_b;
  float *qkv_w, *qkv_b;      /* q | k | v rows; missing biases are zeros */
  float *proj_w, *proj_b;
  float *ls1;                /* (depth, dim) or NULL */
  float *ln2_w, *ln2_b;
  float *fc1_w, *fc1_b;      /* (depth, mlp, dim), (depth, mlp) */
  float *fc2_w, *fc2_b;      /* (depth, dim, mlp), (depth, dim) */
  float *ls2;
  float *norm_w, *norm_b;    /* final norm (ln_post for CLIP) */
} gb_vit_params;

/* Activations for a batch of up to B images of T tokens (per-block tensors stacked over
 * blocks, each block's slot sized for B). The gradient arena has the same layout; of the
 * gradients, x (the taps), emb and patch_out are per block, while those of a block's
 * intermediates are scratch in block 1's slot (valid only inside the block's backward). */
typedef struct {
  float *patches;            /* (B*N, 3*P*P) im2col input */
  float *patch_out;          /* (B*N, dim) patch projections */
  float *emb;                /* (B, T, dim) embeddings (before ln_pre) */
  float *lnpre_mean, *lnpre_rstd; /* (B*T) */
  float *x;                  /* (depth + 1, B, T, dim): x[0] block-1 input, x[l] block-l output */
  float *ln1, *ln1_mean, *ln1_rstd;
  float *qkv;                /* (depth, B, T, 3dim), q and k after RoPE */
  float *att;                /* (depth, B, heads, T, T) softmax probabilities */
  float *attout;             /* (depth, B, T, dim) heads merged */
  float *proj;               /* (depth, B, T, dim) attention projection (before ls1) */
  float *xmid;               /* (depth, B, T, dim) after the attention residual */
  float *ln2, *ln2_mean, *ln2_rstd;
  float *fc1, *act;          /* (depth, B, T, mlp) before / after the nonlinearity */
  float *fc2;                /* (depth, B, T, dim) MLP output (before ls2) */
  float *final;              /* (B, dim) final-normed CLS token */
  float *final_mean, *final_rstd; /* (B) */
} gb_vit_acts;

typedef struct {
  gb_vit_config cfg;
  gb_vit_params p;
  float *param_mem;
  int64_t n_params;
  /* runtime geometry, set by gb_vit_prepare */
  int B, image_size, gh, gw, N, T;
  gb_vit_acts a, g;          /* activations and their gradients (same layout) */
  float *act_mem, *grad_mem;
  int64_t n_act;
  float *pos_cur;            /* (1 + N, dim) position embedding at the current grid, or NULL */
  float *rope_cos, *rope_sin; /* (N, hd/2) or NULL */
  /* 1: the forward pass keeps only what activation gradients need (ln1, attout, proj, ln2, act
   * and fc2, read only by weight gradients, share block 1's slot). Set by the extraction path;
   * a backward pass with weight gradients then recomputes each block's forward first. */
  int lean;
  /* With lean: every block's qkv, proj, fc1 and fc2 weights as W^T and as W in 64-column
   * panels, made at the first lean forward pass (lean assumes frozen parameters: the
   * extraction path). The lean forward runs its products on them with fused bias / residual /
   * GELU epilogues, the backward (model weights, no weight gradients) on the W panels. */
  float *wt_panels;
  /* optional training hooks (iBOT masked-patch loss, gradbrain/ibot.h), NULL = off:
   * patch_mask (B x N): rows != 0 have their patch embedding replaced by mask_token (dim) right
   * after the patch projection; with dparams the backward adds their gradient to dmask_token
   * (dim) instead of the projection's. dx_last (B, T, dim): added to dL/d(last block output)
   * before the blocks' backward (gradients of losses on the final-normed patch tokens). */
  const uint8_t *patch_mask;
  const float *mask_token;
  float *dmask_token;
  const float *dx_last;
} gb_vit;

/* Heads found in a weights file (owned by the gb_vit_heads; free with gb_vit_heads_free). */
typedef struct {
  int dino_present;
  int dino_in, dino_hidden, dino_bottleneck, dino_k;
  float *dino_w[3], *dino_b[3]; /* mlp.0, mlp.2, mlp.4 */
  float *dino_last;             /* (K, bottleneck), weight norm already applied */
  int cls_present;
  int n_classes;
  float *cls_w, *cls_b;         /* (classes, dim), (classes) */
  char cls_source[64];          /* "head" (timm) or "classifier" (HF) */
} gb_vit_heads;

/* Loads a ViT from a safetensors file in a recognised key layout (HF DINOv3ViTModel,
 * Dinov2Model / Dinov2WithRegistersModel, CLIPVisionModel / CLIPModel). Hyperparameters come
 * from `config_path` (NULL: config.json beside the weights, if any), else from the tensor
 * shapes plus the arch's known defaults (logged). `arch` GB_VIT_AUTO detects it. Unknown or
 * missing keys are errors naming them. `heads` (may be NULL) receives any DINO/classifier head
 * in the file. The caller frees the model with gb_vit_free. */
gb_status gb_vit_load(const char *weights_path, const char *config_path, gb_vit_arch arch, gb_vit **out,
                      gb_vit_heads *heads);
/* Creates a model with `cfg` and seeded random weights (tests, benchmarks, training from scratch). */
gb_status gb_vit_create_random(const gb_vit_config *cfg, uint64_t seed, gb_vit **out);
/* Frees a model and its buffers (NULL is fine). */
void gb_vit_free(gb_vit *m);
void gb_vit_heads_free(gb_vit_heads *h);

/* Fills a config with the defaults of `arch` at a given size (dim, depth, heads, patch,
 * registers); used by tests, benchmarks and shape-only inference. */
void gb_vit_config_default(gb_vit_config *cfg, gb_vit_arch arch, int dim, int depth, int heads, int patch,
                           int n_reg);
/* "dinov3" etc. and back; GB_VIT_AUTO for "auto"; -1 if unknown. */
const char *gb_vit_arch_name(gb_vit_arch a);
int gb_vit_arch_parse(const char *s);

/* Sizes the activation (and, if `backward`, gradient) arenas for up to `batch` images of
 * `image_size` pixels (a multiple of the patch size). Reallocates only when needed. */
gb_status gb_vit_prepare(gb_vit *m, int batch, int image_size, int backward);
/* Forward pass of nb <= B images (nb, 3, S, S) normalized CHW. Fills m->a (block outputs and
 * the final-normed CLS in m->a.final). */
gb_status gb_vit_forward(gb_vit *m, const float *images, int nb);
/* Backward pass from dL/d(final-normed CLS) (nb x dim). Fills the activation gradients down to
 * block `stop_layer` (1-based: taps of blocks >= stop_layer are valid; 1 = all). `dparams`
 * (NULL to skip: extraction) receives += weight gradients in the params layout and needs
 * stop_layer = 1. Sharded over threads like the forward pass when dparams is NULL; with
 * dparams the batch runs as one range (multi-threaded BLAS), as the weight gradients are
 * sums over all images. */
void gb_vit_backward(gb_vit *m, const float *dfinal, int nb, int stop_layer, gb_vit_params *dparams);
/* Backward pass like gb_vit_backward (no weight gradients) in which the four linear layers of
 * every block (qkv, proj, fc1, fc2) pass the gradient down through `fb`'s weights instead of
 * the model's (dinp = dout B instead of dout W; feedback alignment). LayerNorm, attention
 * softmax, RoPE, LayerScale, GELU and the residual identities stay exact. Only fb's qkv_w,
 * proj_w, fc1_w, fc2_w are read; fb = NULL or fb = &m->p is backprop. */
void gb_vit_backward_feedback(gb_vit *m, const float *dfinal, int nb, int stop_layer, const gb_vit_params *fb);
/* Block `layer` (1..depth) alone: reads the tap x[layer - 1] (gb_vit_tap(m, layer - 1, 0)) and
 * writes the block's intermediates and its output x[layer]. Needs a full forward pass first
 * (embeddings); used by iterative-inference learning rules that move the block inputs. */
void gb_vit_block_forward(gb_vit *m, int layer, int nb);
/* Block `layer` (1..depth) backward alone: from the gradient tap g.x[layer] and the block's
 * current intermediates, overwrites g.x[layer - 1]; linear layers use fb's weights (NULL = the
 * model's, as in gb_vit_backward_feedback). No weight gradients. */
void gb_vit_block_backward(gb_vit *m, int layer, int nb, const gb_vit_params *fb);
/* The block-`layer` output (1..depth) for the current batch: (nb, T, dim) rows, or its
 * gradient when grad = 1. */
float *gb_vit_tap(gb_vit *m, int layer, int grad);

/* Number of floats of a parameter set for `cfg`, and a pointer layout over `mem` (zero it for
 * gradients). */
int64_t gb_vit_param_count(const gb_vit_config *cfg);
void gb_vit_params_layout(const gb_vit_config *cfg, float *mem, gb_vit_params *p);

#endif
