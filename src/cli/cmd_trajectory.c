/* gradbrain trajectory: extract + encode for every training checkpoint, scores stacked in T.h5. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gradbrain/train.h"

static void help(void) {
  printf("usage: gradbrain trajectory --checkpoints CKPT_DIR --images DIR --brain B.h5 --out T.h5 [options]\n\n"
         "For every checkpoint CKPT_DIR/ckpt_XXXXXX written by `gradbrain train`, runs `extract` with the\n"
         "checkpoint's own training objective (forward + backprop taps of the student backbone and head;\n"
         "targets from the teacher backbone and head, the checkpoint's EMA center and temperatures: extract\n"
         "--model ckpt_XXXXXX.student.safetensors --teacher-model ckpt_XXXXXX.safetensors --center-from\n"
         "ckpt_XXXXXX.json) and\n"
         "`encode` (forward, signal, joint = forward + backprop, residual = joint - forward), and stacks\n"
         "the scores into T.h5: /iterations, /checkpoints, /layers, /<model>/r (checkpoints x layers x\n"
         "targets), /<model>/mean, /<model>/mean_all, /<model>/half_time (iteration at which the mean\n"
         "score reaches half its final value), /extract_loss; plus T.json (the report's trajectory\n"
         "section). Intermediate files: T.h5.work/ckpt_XXXXXX.{features,scores}.h5.\n\n"
         "extract options\n"
         "  --layers all|1,4       blocks [all]\n"
         "  --pool cls|mean|cls+mean|tokens   [cls+mean]\n"
         "  --image-size S         [image_size of CKPT_DIR/config.json, i.e. the training crop size]\n"
         "  --views identity|augment           [identity]\n"
         "  --batch N              [16]\n"
         "encode options\n"
         "  --folds K              outer folds [5]\n"
         "  --pca K                PCA components per feature space [0 = none]\n"
         "  --inner-k K            inner K-fold for alpha (0 = efficient LOO) [0]\n"
         "  --alphas lo:hi:n|a,b   ridge grid [encode's default 1e-1..1e8, 10 values]\n"
         "common\n"
         "  --seed S               [0]\n"
         "  --resume               reuse the per-checkpoint scores already in T.h5.work\n"
         "  --overwrite            replace T.h5\n"
         "  --threads N, --quiet\n");
}

int cmd_trajectory(int argc, char **argv) {
  cli_args a;
  if (cli_parse(&a, "trajectory", argc, argv)) return 2;
  if (a.help) {
    help();
    return 0;
  }
  gb_trajectory_opts o;
  gb_trajectory_opts_default(&o);
  o.checkpoints = cli_str(&a, "--checkpoints", NULL);
  o.images = cli_str(&a, "--images", NULL);
  o.brain = cli_str(&a, "--brain", NULL);
  o.out_path = cli_str(&a, "--out", NULL);
  o.layers = cli_str(&a, "--layers", o.layers);
  o.pool = cli_str(&a, "--pool", o.pool);
  o.alphas = cli_str(&a, "--alphas", NULL);
  const char *views = cli_str(&a, "--views", "identity");
  long isz, batch, folds, pca, inner, seed;
  if (cli_int(&a, "--image-size", 0, &isz) || cli_int(&a, "--batch", o.batch, &batch) ||
      cli_int(&a, "--folds", o.n_folds, &folds) || cli_int(&a, "--pca", 0, &pca) ||
      cli_int(&a, "--inner-k", 0, &inner) || cli_int(&a, "--seed", 0, &seed))
    return 2;
  o.resume = cli_flag(&a, "--resume");
  o.overwrite = cli_flag(&a, "--overwrite");
  if (cli_common(&a) || cli_finish(&a)) return 2;
  if (!o.checkpoints || !o.images || !o.brain || !o.out_path) {
    fprintf(stderr, "gradbrain trajectory: error: --checkpoints, --images, --brain and --out are required (see --help)\n");
    return 2;
  }
  if (strcmp(views, "identity") && strcmp(views, "augment")) {
    fprintf(stderr, "gradbrain trajectory: error: --views '%s': expected identity or augment\n", views);
    return 2;
  }
  if (isz < 0 || batch < 1 || folds < 2 || pca < 0 || inner < 0 || inner == 1 || seed < 0) {
    fprintf(stderr, "gradbrain trajectory: error: expected --image-size >= 0, --batch >= 1, --folds >= 2, --pca >= 0, "
                    "--inner-k 0 or >= 2, --seed >= 0\n");
    return 2;
  }
  o.views_augment = !strcmp(views, "augment");
  o.image_size = (int)isz;
  o.batch = (int)batch;
  o.n_folds = (int)folds;
  o.pca = (int)pca;
  o.inner_k = (int)inner;
  o.seed = (uint64_t)seed;
  o.cmdline = a.cmdline;
  gb_status s = gb_trajectory_run(&o);
  if (s != GB_OK) return cli_report_error("trajectory", s);
  return 0;
}
