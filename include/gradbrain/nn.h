/* gradbrain — neural-network ops with paired _forward / _backward (llm.c style).
 *
 * Free functions over plain float arrays, row-major, explicit sizes. Outputs first, saved
 * statistics next, then inputs, then weights. Backward functions take the same arguments
 * with `d` names; what they do with each gradient is stated per function:
 * - input gradients are either overwritten ("=") or accumulated ("+="), as documented;
 * - weight gradients are always accumulated (+=) and optional: pass NULL to skip them
 *   (the extraction path needs activation gradients only).
 * Big matmuls go through gb_sgemm; elementwise loops use OpenMP. */
#ifndef GRADBRAIN_NN_H
#define GRADBRAIN_NN_H

#include <stdint.h>

/* Precision of the linear layers' products: GB_NN_FP32 (default, float32 SGEMM) or
 * GB_NN_BF16X3 (AMX tiles, operands split into two bfloat16 terms, ~1e-5 relative per term;
 * falls back to float32 on CPUs without AMX). gb_nn_precision() is the mode in effect; until
 * gb_nn_set_precision is called, the environment variable GB_NN_PRECISION=bf16x3 selects it. */
enum { GB_NN_FP32 = 0, GB_NN_BF16X3 = 1 };
void gb_nn_set_precision(int precision);
int gb_nn_precision(void);

/* out (N x OC) = inp (N x C) W^T + bias; W is (OC x C) as in PyTorch nn.Linear; bias may be NULL. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int C,
                    int OC);
/* dinp = dout W (overwritten; NULL to skip); dweight += dout^T inp; dbias += column sums of dout. */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int64_t N, int C, int OC);

/* LayerNorm over the last dim C of N rows; saves mean and rstd (N each). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int64_t N, int C, float eps);
/* dinp += d(out)/d(inp)^T dout; dweight/dbias += (optional). */
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int64_t N, int C);

/* GELU, exact erf form: x * Phi(x). */
void gelu_forward(float *out, const float *inp, int64_t n);
/* dinp = gelu'(inp) * dout (overwritten). */
void gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);
/* QuickGELU (CLIP): x * sigmoid(1.702 x). */
void quickgelu_forward(float *out, const float *inp, int64_t n);
/* dinp = quickgelu'(inp) * dout (overwritten). */
void quickgelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);

/* out = inp * scale (per channel, LayerScale), N rows of C. */
void layerscale_forward(float *out, const float *inp, const float *scale, int64_t N, int C);
/* dinp = dout * scale (overwritten); dscale += sum over rows of dout * inp (optional). */
void layerscale_backward(float *dinp, float *dscale, const float *dout, const float *inp, const float *scale,
                         int64_t N, int C);

/* Multi-head self-attention over B sequences of T tokens. qkv is (B, T, 3C) holding q | k | v,
 * each C = NH x hd with head h at columns h*hd. Writes att (B, NH, T, T) softmax probabilities
 * and out (B, T, C) (heads merged). Scale 1/sqrt(hd). One GEMM pair per (sequence, head). */
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
/* dqkv = gradient wrt qkv (overwritten); datt is (B, NH, T, T) scratch (overwritten). */
void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B,
                        int T, int C, int NH);

/* attention_backward when only token 0 of every sequence has an output gradient: dout0 is
 * (B, C), the gradient of out's first row. Writes all of dqkv (B, T, 3C) (dQ is zero below row
 * 0; dK, dV are outer products); datt needs B * NH * T scratch floats. Used by the last block
 * when the loss reads the CLS token only. */
void attention_backward_first_row(float *dqkv, float *datt, const float *dout0, const float *qkv, const float *att,
                                  int B, int T, int C, int NH);

/* Rotary embedding (rotate-half convention) of q and k inside qkv (B, T, 3C), in place, for the
 * tokens n_prefix..T-1; cos/sin are ((T - n_prefix) x hd/2): pair (i, i + hd/2) of every head
 * rotates by the angle of column i. */
void rope_forward(float *qkv, const float *cos, const float *sin, int B, int T, int n_prefix, int C, int NH);
/* The transpose rotation applied in place to the q and k parts of dqkv. */
void rope_backward(float *dqkv, const float *cos, const float *sin, int B, int T, int n_prefix, int C, int NH);
/* DINOv3 RoPE tables for a gh x gw patch grid and head dim hd: periods base^(j/(hd/4)),
 * coords (r + .5)/gh*2-1 (y) and (c + .5)/gw*2-1 (x), angle layout [y(hd/4) x(hd/4)] for
 * the first half. cos/sin have (gh*gw) x hd/2 entries. */
void rope_tables(float *cos, float *sin, int gh, int gw, int hd, double base);

/* Patch embedding: im2col of images (B, 3, H, W) into patches (B*gh*gw, 3*P*P) in (c, ky, kx)
 * order, matching a Conv2d weight (D, 3, P, P) flattened. */
void patchify(float *patches, const float *img, int B, int H, int W, int P);

/* PyTorch F.interpolate(mode="bicubic", align_corners=False, size=(oh, ow)) of a (ih x iw x C)
 * channel-last grid into (oh x ow x C); cubic coefficient A = -0.75, border-clamped taps. */
void bicubic_resize(float *out, const float *inp, int ih, int iw, int oh, int ow, int C);

#endif
