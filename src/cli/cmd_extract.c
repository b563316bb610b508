/* gradbrain extract — thin CLI over gb_extract_run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gradbrain/extract.h"
#include "gradbrain/log.h"
#include "gradbrain/nn.h"

static const char *HELP =
    "usage: gradbrain extract --model M.safetensors --images DIR|LIST.txt --out F.h5 [options]\n"
    "\n"
    "For every image and every block l of a vision transformer, writes the forward activation a_l\n"
    "(block output, residual stream) and the learning signal dL_i/da_l of the image's own training\n"
    "objective L_i, pooled over tokens, to F.h5: /image_ids, /forward/layer_XX, /backprop/layer_XX\n"
    "(images x dim), /loss, and provenance attributes (weights SHA-256, options, defaults applied).\n"
    "\n"
    "inputs\n"
    "  --model M.safetensors  F32/F16/BF16 weights in the HF transformers layout (DINOv3ViTModel,\n"
    "                         Dinov2Model, Dinov2WithRegistersModel, CLIPVisionModel, CLIPModel) or\n"
    "                         the original repos' (facebookresearch dinov2/dinov3, openai CLIP)\n"
    "  --images DIR|LIST.txt  directory (sorted, recursive, jpg/png) or list file; ids = relative paths\n"
    "  --out F.h5             output, written atomically (F.h5.tmp until complete)\n"
    "options (defaults in brackets)\n"
    "  --config config.json   HF config [config.json beside the weights, else shapes + arch defaults]\n"
    "  --arch auto|dinov3|dinov2|clip   [auto: from config.json / key layout]\n"
    "  --signals LIST         any of forward, backprop, fa, dfa, td-nudge, td-view, pc; td = td-nudge +\n"
    "                         td-view [forward,backprop]\n"
    "  --objective dino|xent|invariance [dino]\n"
    "      dino: DINO head on the final-normed CLS (from the file: dino_head.*, else seeded, with a\n"
    "            warning); target softmax((t - c)/0.07), c = mean teacher logits over all images\n"
    "            (first pass); student log_softmax(s/0.1); cross-entropy per image\n"
    "      xent: linear classifier (head.* / classifier.* from the file, else seeded); label from\n"
    "            --labels or the model's own argmax\n"
    "      invariance: 1 - cos(student CLS, stop-gradient teacher CLS); needs --views augment\n"
    "  --pool cls|mean|cls+mean|tokens  token pooling; mean = patch tokens only [cls+mean]\n"
    "  --layers all|1,4,8     blocks to write, 1-based [all]\n"
    "  --image-size S         resize shorter side + center crop to S (multiple of the patch) [224]\n"
    "  --views identity|augment  identity: teacher and student see the image; augment: the student\n"
    "                         sees the image, the teacher a seeded random-resized-crop + flip [identity]\n"
    "  --seed S               seed of augmentations and of heads built when absent [0]\n"
    "  --teacher-model T.safetensors  dino: a distinct teacher backbone with its own DINO head gives the\n"
    "                         targets (teacher logits t = T's head on T's CLS of the teacher view); the\n"
    "                         taps and the student logits stay --model's [none: the model is its own\n"
    "                         teacher]. For a `gradbrain train` checkpoint CKPT_DIR/ckpt_XXXXXX: --model\n"
    "                         ckpt_XXXXXX.student.safetensors --teacher-model ckpt_XXXXXX.safetensors\n"
    "                         --center-from ckpt_XXXXXX.json = the training objective at that point\n"
    "                         (what `gradbrain trajectory` runs for every checkpoint)\n"
    "  --center-from CKPT.json  dino: the center c is the checkpoint's EMA center (its\n"
    "                         ckpt_XXXXXX.state.safetensors) and the temperatures are the checkpoint's\n"
    "                         (teacher: its schedule at the next iteration; student: its config) instead\n"
    "                         of the stimulus mean and 0.07 / 0.1 (Sinkhorn-Knopp runs: stimulus mean)\n"
    "  --labels FILE          xent labels: one integer per line in image order, or 'id label' lines;\n"
    "                         -1 = the model's own argmax\n"
    "  --batch N              images per batch; results do not depend on it [16]\n"
    "  --head-prototypes K    prototypes of a seeded DINO head [65536]\n"
    "  --classes C            classes of a seeded classifier [1000]\n"
    "  --precision P          fp32 | bf16x3: the linear layers' products in float32, or on AMX tiles with\n"
    "                         each operand split into two bfloat16 terms (~1e-5 relative per term; taps\n"
    "                         within 1e-5 (forward) / 1e-4 (backprop) of float32; faster) [fp32]\n"
    "  --threads N            threads [all cores]\n"
    "  --resume               continue an interrupted run from F.h5.tmp (same options required)\n"
    "  --overwrite            replace an existing output\n"
    "  --quiet | --verbose\n"
    "\n"
    "learning signals (each per block l, shaped like a_l, pooled like it, /<signal>/layer_XX; the\n"
    "definition and parameters are also stored as attributes of /<signal>). All start from the\n"
    "objective's error e = dL/d(final-normed CLS), exact through the objective's head:\n"
    "  backprop  dL/da_l\n"
    "  fa        feedback alignment: e propagated down with a fixed random B in place of W in the\n"
    "            input gradient (dout W) of qkv, proj, fc1, fc2 of every block; B ~ N(0,1), seeded,\n"
    "            scaled to ||W||_F; LayerNorms, softmax attention, RoPE, LayerScale, GELU and the\n"
    "            residual identity paths exact (the last block's tap therefore equals backprop's)\n"
    "  dfa       direct feedback alignment: B_l e for block l, B_l (dim x dim) ~ N(0, 1/dim) seeded,\n"
    "            the same vector for every token\n"
    "  td-nudge  O'Reilly temporal difference a+ - a-: minus = forward states; plus = states relaxed\n"
    "            S steps at rate eta on E = sum_l |a_l - f_l(a_{l-1})|^2/2 + beta L (input clamped;\n"
    "            top-down through J^T, or the fa matrices with --td-feedback random). bottom-up\n"
    "            fixed: each block's bottom-up drive stays its minus-phase prediction, so with\n"
    "            symmetric feedback a+ - a- = -beta dL/da_l + O(beta^2); settle: full relaxation\n"
    "            (then a+ - a- also carries the change of the blocks below)\n"
    "  td-view   a+ - a- with minus = states on the student view, plus = states on the teacher view\n"
    "            (needs --views augment)\n"
    "  pc        predictive coding, iterative inference (Whittington & Bogacz 2017): prediction\n"
    "            errors eps_l = v_l - f_l(v_{l-1}) after n iterations of v_l -= eta_l (eps_l -\n"
    "            J^T eps_{l+1}), v_L -= eta (eps_L + beta dL/dv_L), predictions recomputed; eta_l =\n"
    "            eta / (1 + sigma_max(J_{l+1})^2) (5 power iterations); at equilibrium -beta dL/da_l.\n"
    "            --pc-mode exact: fixed predictions (Whittington-Bogacz limit), eta 1: = -beta backprop\n"
    "rule options (defaults in brackets)\n"
    "  --feedback-seed S      seed of the fa / dfa matrices [--seed]\n"
    "  --td-beta B            nudge strength (absolute, multiplies L) [0.01]\n"
    "  --td-steps S           settling steps [depth + 1]\n"
    "  --td-rate R            settling rate eta [1]\n"
    "  --td-feedback symmetric|random   [symmetric]\n"
    "  --td-bottomup fixed|settle       [fixed]\n"
    "  --pc-beta B            output nudge [0.1]\n"
    "  --pc-iters N           inference iterations [full: 2 x depth, exact: depth]\n"
    "  --pc-rate R            inference rate eta [0.5]\n"
    "  --pc-mode full|exact   [full]\n"
    "  --pc-save-iters        also write the errors after every iteration t as /pc_tNN/layer_XX\n"
    "                         (pseudo-time; each group is a signal: encode --add pc_t03)\n";

int cmd_extract(int argc, char **argv) {
  cli_args a;
  if (cli_parse(&a, "extract", argc, argv)) return 2;
  if (a.help) {
    fputs(HELP, stdout);
    return 0;
  }
  if (cli_common(&a)) return 2;
  gb_extract_opts o;
  gb_extract_opts_default(&o);
  char defaults[1024] = "";
#define DEF(flag, text) \
  if (!cli_flag(&a, flag)) strncat(defaults, text " ", sizeof defaults - strlen(defaults) - 1)
  DEF("--arch", "--arch auto");
  DEF("--signals", "--signals forward,backprop");
  DEF("--objective", "--objective dino");
  DEF("--pool", "--pool cls+mean");
  DEF("--layers", "--layers all");
  DEF("--image-size", "--image-size 224");
  DEF("--views", "--views identity");
  DEF("--seed", "--seed 0");
  DEF("--batch", "--batch 16");
  DEF("--precision", "--precision fp32");
  DEF("--feedback-seed", "--feedback-seed=--seed");
  DEF("--td-beta", "--td-beta 0.01");
  DEF("--td-steps", "--td-steps depth+1");
  DEF("--td-rate", "--td-rate 1");
  DEF("--td-feedback", "--td-feedback symmetric");
  DEF("--td-bottomup", "--td-bottomup fixed");
  DEF("--pc-beta", "--pc-beta 0.1");
  DEF("--pc-iters", "--pc-iters default");
  DEF("--pc-rate", "--pc-rate 0.5");
  DEF("--pc-mode", "--pc-mode full");
#undef DEF
  o.model_path = cli_str(&a, "--model", NULL);
  o.images = cli_str(&a, "--images", NULL);
  o.out_path = cli_str(&a, "--out", NULL);
  o.config_path = cli_str(&a, "--config", NULL);
  o.labels_path = cli_str(&a, "--labels", NULL);
  o.teacher_model_path = cli_str(&a, "--teacher-model", NULL);
  o.center_from = cli_str(&a, "--center-from", NULL);
  const char *arch = cli_str(&a, "--arch", "auto"), *obj = cli_str(&a, "--objective", "dino");
  const char *pool = cli_str(&a, "--pool", "cls+mean"), *views = cli_str(&a, "--views", "identity");
  char **sig;
  int nsig = cli_list(&a, "--signals", &sig);
  static char sigbuf[512];
  sigbuf[0] = 0;
  for (int i = 0; i < nsig; i++) {
    if (i) strncat(sigbuf, ",", sizeof sigbuf - strlen(sigbuf) - 1);
    strncat(sigbuf, sig[i], sizeof sigbuf - strlen(sigbuf) - 1);
  }
  if (nsig) o.signals = sigbuf;
  o.layers = cli_str(&a, "--layers", "all");
  long size, seed, batch, headk, classes;
  if (cli_int(&a, "--image-size", 224, &size) || cli_int(&a, "--seed", 0, &seed) || cli_int(&a, "--batch", 16, &batch) ||
      cli_int(&a, "--head-prototypes", 0, &headk) || cli_int(&a, "--classes", 0, &classes))
    return 2;
  long fseed, tdsteps, pciters;
  double tdbeta, tdrate, pcbeta, pcrate;
  if (cli_int(&a, "--feedback-seed", seed, &fseed) || cli_int(&a, "--td-steps", 0, &tdsteps) ||
      cli_int(&a, "--pc-iters", 0, &pciters) || cli_double(&a, "--td-beta", 0.01, &tdbeta) ||
      cli_double(&a, "--td-rate", 1.0, &tdrate) || cli_double(&a, "--pc-beta", 0.1, &pcbeta) ||
      cli_double(&a, "--pc-rate", 0.5, &pcrate))
    return 2;
  const char *tdfb = cli_str(&a, "--td-feedback", "symmetric"), *tdbu = cli_str(&a, "--td-bottomup", "fixed");
  const char *pcmode = cli_str(&a, "--pc-mode", "full");
  const char *bad_opt = NULL, *bad_val = NULL, *expected = NULL;
  if (strcmp(tdfb, "symmetric") && strcmp(tdfb, "random")) bad_opt = "--td-feedback", bad_val = tdfb, expected = "symmetric or random";
  if (strcmp(tdbu, "fixed") && strcmp(tdbu, "settle")) bad_opt = "--td-bottomup", bad_val = tdbu, expected = "fixed or settle";
  if (strcmp(pcmode, "full") && strcmp(pcmode, "exact")) bad_opt = "--pc-mode", bad_val = pcmode, expected = "full or exact";
  if (bad_opt) {
    fprintf(stderr, "gradbrain extract: error: %s '%s': expected %s\n", bad_opt, bad_val, expected);
    return 2;
  }
  if (fseed < 0 || tdsteps < 0 || pciters < 0 || !(tdrate > 0) || !(pcrate > 0) || tdbeta != tdbeta || pcbeta != pcbeta) {
    fprintf(stderr, "gradbrain extract: error: --feedback-seed, --td-steps, --pc-iters must be >= 0 and --td-rate, --pc-rate > 0\n");
    return 2;
  }
  o.rules.feedback_seed = (uint64_t)fseed;
  o.rules.td_beta = tdbeta;
  o.rules.td_steps = (int)tdsteps;
  o.rules.td_rate = tdrate;
  o.rules.td_random_feedback = !strcmp(tdfb, "random");
  o.rules.td_settle = !strcmp(tdbu, "settle");
  o.rules.pc_beta = pcbeta;
  o.rules.pc_iters = (int)pciters;
  o.rules.pc_rate = pcrate;
  o.rules.pc_exact = !strcmp(pcmode, "exact");
  o.rules.pc_save_iters = cli_flag(&a, "--pc-save-iters");
  const char *prec = cli_str(&a, "--precision", "fp32");
  o.resume = cli_flag(&a, "--resume");
  o.overwrite = cli_flag(&a, "--overwrite");
  if (cli_finish(&a)) return 2;
  if (!o.model_path || !o.images || !o.out_path) {
    fprintf(stderr, "gradbrain extract: error: --model, --images and --out are required (see --help)\n");
    return 2;
  }
  int ar = gb_vit_arch_parse(arch), ob = gb_objective_parse(obj), po = gb_pool_parse(pool);
  if (ar < 0) {
    fprintf(stderr, "gradbrain extract: error: --arch '%s': expected auto, dinov3, dinov2 or clip\n", arch);
    return 2;
  }
  if (ob < 0) {
    fprintf(stderr, "gradbrain extract: error: --objective '%s': expected dino, xent or invariance\n", obj);
    return 2;
  }
  if (po < 0) {
    fprintf(stderr, "gradbrain extract: error: --pool '%s': expected cls, mean, cls+mean or tokens\n", pool);
    return 2;
  }
  if (strcmp(prec, "fp32") && strcmp(prec, "bf16x3")) {
    fprintf(stderr, "gradbrain extract: error: --precision '%s': expected fp32 or bf16x3\n", prec);
    return 2;
  }
  gb_nn_set_precision(strcmp(prec, "bf16x3") ? GB_NN_FP32 : GB_NN_BF16X3);
  if (!strcmp(prec, "bf16x3") && gb_nn_precision() != GB_NN_BF16X3)
    gb_warn("--precision bf16x3: this CPU has no AMX bf16 tiles (or GB_AMX=0); using float32");
  if (strcmp(views, "identity") && strcmp(views, "augment")) {
    fprintf(stderr, "gradbrain extract: error: --views '%s': expected identity or augment\n", views);
    return 2;
  }
  if (size <= 0 || batch <= 0 || seed < 0) {
    fprintf(stderr, "gradbrain extract: error: --image-size, --batch must be positive and --seed >= 0\n");
    return 2;
  }
  o.arch = (gb_vit_arch)ar;
  o.objective = (gb_objective_kind)ob;
  o.pool = (gb_pool)po;
  o.views_augment = !strcmp(views, "augment");
  o.image_size = (int)size;
  o.seed = (uint64_t)seed;
  o.batch = (int)batch;
  o.head_k = (int)headk;
  o.n_classes = (int)classes;
  o.cmdline = a.cmdline;
  o.defaults_applied = defaults;
  gb_status s = gb_extract_run(&o);
  if (s != GB_OK) return cli_report_error("extract", s);
  return 0;
}
