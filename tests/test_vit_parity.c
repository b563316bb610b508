/* ViT parity at a tiny config: DINOv3-style (RoPE, 4 registers, LayerScale, no k bias),
 * DINOv2-style (learned position embedding resampled bicubically 5x5 -> 4x4, registers) and
 * CLIP-style (ln_pre, QuickGELU) models, every objective, identity and different views,
 * against PyTorch autograd; also the original repositories' key layouts. See test_vit_parity.h for the tolerances. */
#include "test_vit_parity.h"

#include <stdio.h>

#include "gradbrain/nn.h"

int main(void) {
  printf("linear layers: %s\n", gb_nn_precision() == GB_NN_BF16X3 ? "bf16x3 (AMX)" : "float32");
  static const char *const cases[] = {
      "dinov3:tiny:dino:same", "dinov3:tiny:dino:diff", "dinov3:tiny:xent:same", "dinov3:tiny:invariance:diff",
      "dinov2:tiny:dino:same", "dinov2:tiny:dino:diff", "dinov2:tiny:xent:same", "dinov2:tiny:invariance:diff",
      "clip:tiny:dino:same",   "clip:tiny:dino:diff",   "clip:tiny:xent:same",   "clip:tiny:invariance:diff",
      /* original-repository key layouts (fused qkv, dinov3 k-bias mask, openai visual.* + text keys) */
      "dinov3:tiny:dino:same:orig", "dinov2:tiny:xent:same:orig", "clip:tiny:invariance:diff:orig",
  };
  int failures = run_parity(cases, (int)(sizeof cases / sizeof cases[0]));
  return failures ? 1 : 0;
}
