/* gradbrain train: DINO self-distillation of a ViT, with checkpoints `extract` can read. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gradbrain/blas.h"
#include "gradbrain/log.h"
#include "gradbrain/procedural.h"
#include "gradbrain/train.h"

static void help(void) {
  printf("usage: gradbrain train --images DIR|procedural --out CKPT_DIR [options]\n\n"
         "DINO self-distillation (DINOv2/DINOv3 recipe): student + EMA teacher, DINO head, teacher\n"
         "centering, multi-crop, AdamW with cosine schedules, gradient clipping. Checkpoints in\n"
         "CKPT_DIR: ckpt_XXXXXX.safetensors (teacher backbone + head, HF DINOv3 keys, with\n"
         "config.json beside it: `gradbrain extract --model` reads it without flags),\n"
         "ckpt_XXXXXX.student.safetensors, ckpt_XXXXXX.state.safetensors (center, AdamW moments),\n"
         "ckpt_XXXXXX.json (iteration, options, per-iteration losses and schedule values).\n\n"
         "  --images DIR|procedural  training images (PNG/JPEG dir or list), or built-in procedural stimuli\n"
         "  --out CKPT_DIR           checkpoint directory\n"
         "  --arch A|config.json     vit-tiny (dim 192, 4 blocks, 3 heads, patch 8, 4 registers, 64 px;\n"
         "                           default) | vit-small (ViT-S/16, 224 px)\n"
         "  --iters N                training iterations (default 1000)\n"
         "  --save-every N           checkpoint period (default 100; the last iteration is always saved)\n"
         "  --batch B                images per iteration (default 32 tiny, 64 small)\n"
         "  --global-crops G         global crops per image (default 2)\n"
         "  --local-crops N          local crops per image (default 4 tiny, 8 small)\n"
         "  --global-size S / --local-size S   crop sizes (default 64/32 tiny, 224/96 small)\n"
         "  --global-scale A:B       RandomResizedCrop area range of global crops (default 0.32:1)\n"
         "  --local-scale A:B        ... of local crops (default 0.05:0.32)\n"
         "  --lr X                   peak learning rate after warm-up (default 5e-4)\n"
         "  --min-lr X               final learning rate (default 1e-6)\n"
         "  --warmup N               lr warm-up iterations (default 10%% of --iters)\n"
         "  --wd A:B                 weight decay cosine A -> B (default 0.04:0.4)\n"
         "  --momentum A:B           teacher EMA momentum cosine A -> B (default 0.992:1)\n"
         "  --teacher-temp A:B       teacher temperature warm-up A -> B (default 0.04:0.04 tiny, 0.04:0.07)\n"
         "  --teacher-temp-warmup N  its length (default 30%% of --iters)\n"
         "  --student-temp X         (default 0.1)\n"
         "  --centering ema|sinkhorn teacher centering (default ema, momentum 0.9)\n"
         "  --clip X                 gradient-norm clipping (default 3.0)\n"
         "  --photometric dino|none  DINO's colour jitter, grayscale, blur, solarization per crop\n"
         "                           (seeded per crop; default none)\n"
         "  --last-layer plain|weightnorm  the head's last layer: plain (DINOv3; default) or\n"
         "                           weight-normed with g fixed to 1 (DINOv1/v2 norm_last_layer:\n"
         "                           prototypes W = V/||V||, V trained; saved as weight_g + weight_v)\n"
         "  --koleo W                KoLeo regularizer weight (default 0.3 tiny, else 0 = off; DINOv2: 0.1)\n"
         "  --ibot W                 iBOT masked-patch loss weight (default 0 = off; DINOv2 uses 1): a\n"
         "                           fraction of the global crops get block-wise masks, masked patches\n"
         "                           are a learned mask token for the student, the shared DINO head on\n"
         "                           the masked patch tokens is trained to the teacher's (unmasked,\n"
         "                           centered by its own EMA patch center, sharpened; with --centering\n"
         "                           sinkhorn: Sinkhorn-Knopp over all masked patches) patch targets\n"
         "  --ibot-mask-prob P       fraction of masked global crops (default 0.5)\n"
         "  --ibot-ratio A:B         mask ratio range of a masked crop (default 0.1:0.5)\n"
         "  --ibot-separate-head     a separate iBOT head (DINOv2's ViT-L/g configs) instead of sharing\n"
         "                           the DINO head (DINOv2's default)\n"
         "  --head H:B:K             DINO head hidden:bottleneck:prototypes (default 512:128:1024 tiny,\n"
         "                           2048:256:65536 small)\n"
         "  --seed S                 seed of weights, sampling and augmentation (default 0)\n"
         "  --n-images N             procedural pool size (default 2000)\n"
         "  --categories K           procedural categories (default 10)\n"
         "  --image-size S           procedural render size / decode size of DIR images (default 80 tiny)\n"
         "  --knn-every N            k-NN accuracy of the teacher CLS on held-out procedural images\n"
         "                           every N iterations (default 0 = off)\n"
         "  --n-eval N               held-out images for k-NN (default 500)\n"
         "  --resume                 continue from the last checkpoint in CKPT_DIR (bit-identical)\n"
         "  --stop-at N              stop after iteration N (as if interrupted; continue with --resume)\n"
         "  --overwrite              start again in a CKPT_DIR that holds checkpoints\n"
         "  --threads N, --quiet\n");
}

static int pair(cli_args *a, const char *name, double *x, double *y) {
  const char *v = cli_str(a, name, NULL);
  if (!v) return 0;
  if (sscanf(v, "%lf:%lf", x, y) != 2) {
    fprintf(stderr, "gradbrain train: error: %s '%s': expected A:B (two numbers)\n", name, v);
    return 2;
  }
  return 0;
}

int cmd_train(int argc, char **argv) {
  cli_args a;
  if (cli_parse(&a, "train", argc, argv)) return 2;
  if (a.help) {
    help();
    return 0;
  }
  const char *images = cli_str(&a, "--images", NULL), *out = cli_str(&a, "--out", NULL);
  const char *arch = cli_str(&a, "--arch", "vit-tiny");
  gb_train_config c;
  gb_status s = gb_train_config_default(&c, arch);
  if (s != GB_OK) return cli_report_error("train", s);
  long stop_at, iters, save_every, batch, ng, nl, gsz, lsz, warm, ttw, seed, nimg, cats, isz, knn, neval;
  double lr, min_lr, st, clip, koleo, ibot, ibot_prob;
  int is_tiny = !strcmp(arch, "vit-tiny");
  if (cli_int(&a, "--iters", c.iters, &iters) || cli_int(&a, "--save-every", c.save_every, &save_every) ||
      cli_int(&a, "--batch", c.batch, &batch) || cli_int(&a, "--global-crops", c.n_global, &ng) ||
      cli_int(&a, "--local-crops", c.n_local, &nl) || cli_int(&a, "--global-size", c.global_size, &gsz) ||
      cli_int(&a, "--local-size", c.local_size, &lsz) || cli_int(&a, "--warmup", -1, &warm) ||
      cli_int(&a, "--teacher-temp-warmup", -1, &ttw) || cli_int(&a, "--seed", 0, &seed) ||
      cli_int(&a, "--n-images", 2000, &nimg) || cli_int(&a, "--categories", 10, &cats) ||
      cli_int(&a, "--image-size", is_tiny ? 80 : 256, &isz) || cli_int(&a, "--knn-every", 0, &knn) ||
      cli_int(&a, "--n-eval", 500, &neval) || cli_int(&a, "--stop-at", 0, &stop_at) || cli_double(&a, "--lr", c.lr, &lr) ||
      cli_double(&a, "--min-lr", c.min_lr, &min_lr) || cli_double(&a, "--student-temp", c.student_temp, &st) ||
      cli_double(&a, "--clip", c.clip, &clip) || cli_double(&a, "--koleo", c.koleo_weight, &koleo) ||
      cli_double(&a, "--ibot", 0.0, &ibot) || cli_double(&a, "--ibot-mask-prob", c.ibot_mask_prob, &ibot_prob) ||
      pair(&a, "--ibot-ratio", &c.ibot_ratio[0], &c.ibot_ratio[1]) ||
      pair(&a, "--wd", &c.wd0, &c.wd1) || pair(&a, "--momentum", &c.mom0, &c.mom1) ||
      pair(&a, "--teacher-temp", &c.teacher_temp0, &c.teacher_temp1) ||
      pair(&a, "--global-scale", &c.global_scale[0], &c.global_scale[1]) ||
      pair(&a, "--local-scale", &c.local_scale[0], &c.local_scale[1]))
    return 2;
  const char *centering = cli_str(&a, "--centering", "ema"), *head = cli_str(&a, "--head", NULL);
  const char *photo = cli_str(&a, "--photometric", c.photometric ? "dino" : "none");
  const char *last = cli_str(&a, "--last-layer", "plain");
  int ibot_sep = cli_flag(&a, "--ibot-separate-head");
  int resume = cli_flag(&a, "--resume"), overwrite = cli_flag(&a, "--overwrite");
  if (cli_common(&a) || cli_finish(&a)) return 2;
  if (!images || !out) {
    fprintf(stderr, "gradbrain train: error: --images DIR|procedural and --out CKPT_DIR are required (see --help)\n");
    return 2;
  }
  if (strcmp(photo, "dino") && strcmp(photo, "none")) {
    fprintf(stderr, "gradbrain train: error: --photometric '%s': expected dino or none\n", photo);
    return 2;
  }
  c.photometric = !strcmp(photo, "dino");
  if (strcmp(last, "plain") && strcmp(last, "weightnorm")) {
    fprintf(stderr, "gradbrain train: error: --last-layer '%s': expected plain or weightnorm\n", last);
    return 2;
  }
  c.norm_last_layer = !strcmp(last, "weightnorm");
  if (strcmp(centering, "ema") && strcmp(centering, "sinkhorn")) {
    fprintf(stderr, "gradbrain train: error: --centering '%s': expected ema or sinkhorn\n", centering);
    return 2;
  }
  if (head && sscanf(head, "%d:%d:%d", &c.head.hidden, &c.head.bottleneck, &c.head.k) != 3) {
    fprintf(stderr, "gradbrain train: error: --head '%s': expected HIDDEN:BOTTLENECK:K\n", head);
    return 2;
  }
  if (iters < 1 || save_every < 1 || batch < 2 || ng < 1 || ng > 8 || nl < 0 || nl > 32 || lr <= 0 || clip <= 0 ||
      st <= 0 || koleo < 0 || nimg < 2 || cats < 2 || cats > GB_PROCEDURAL_MAX_CATEGORIES || isz < 8 || neval < 1 ||
      c.head.hidden < 1 || c.head.bottleneck < 1 || c.head.k < 2 || !(c.global_scale[0] > 0) ||
      !(c.global_scale[0] <= c.global_scale[1]) || !(c.global_scale[1] <= 1) || !(c.local_scale[0] > 0) ||
      !(c.local_scale[0] <= c.local_scale[1]) || !(c.local_scale[1] <= 1)) {
    fprintf(stderr, "gradbrain train: error: out-of-range option: expected --iters >= 1, --save-every >= 1, --batch >= 2, "
                    "--global-crops 1..8, --local-crops 0..32, --lr/--clip/--student-temp > 0, --koleo >= 0, "
                    "--n-images >= 2, --categories 2..%d, --image-size >= 8, --head sizes >= 1, crop scales 0 < A <= B <= 1\n",
            GB_PROCEDURAL_MAX_CATEGORIES);
    return 2;
  }
  c.iters = iters;
  c.save_every = save_every;
  c.batch = (int)batch;
  c.n_global = (int)ng;
  c.n_local = (int)nl;
  c.global_size = (int)gsz;
  c.local_size = (int)lsz;
  c.vit.native_size = (int)gsz;
  c.warmup_iters = warm;
  c.teacher_temp_warmup = ttw;
  c.seed = (uint64_t)seed;
  c.lr = lr;
  c.min_lr = min_lr;
  c.student_temp = st;
  c.clip = clip;
  c.koleo_weight = koleo;
  c.ibot_weight = ibot; /* iBOT options are checked by the trainer (gb_ibot_create) */
  c.ibot_mask_prob = ibot_prob;
  c.ibot_separate_head = ibot_sep;
  if (!(ibot >= 0)) {
    fprintf(stderr, "gradbrain train: error: --ibot %g: expected a weight >= 0\n", ibot);
    return 2;
  }
  c.sinkhorn = !strcmp(centering, "sinkhorn");
  gb_train_opts o = {images, out, (int)nimg, (int)cats, (int)isz, resume, overwrite, knn, (int)neval, gb_get_threads(), stop_at, a.cmdline};
  s = gb_train_run(&c, &o);
  if (s != GB_OK) return cli_report_error("train", s);
  return 0;
}
