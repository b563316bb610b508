/* iBOT masked-patch loss in the DINO training step (`train --ibot W`) against the PyTorch
 * autograd reference tests/ref/train_ref.py, case "ibot" (float64), three steps in a row.
 *
 * The masks come from gb_ibot_make_masks (the trainer's own generator: per crop from (seed,
 * iteration, crop)); this test writes them as masks_S.npy for the reference, which applies them
 * with its own code (mask token in place of the patch embedding, shared DINO head on the
 * final-normed masked patch tokens of the masked student and the unmasked teacher, EMA patch
 * center, per-crop mean then mean over crops, weight W = 0.7, mask token clipped with the
 * backbone and weight-decayed).
 *
 * Tolerance as the training parity: parameters after 3 steps within 1e-4 relative L2
 * (student / teacher backbones and heads, mask token, both centers), losses within 1e-5
 * relative (float32 vs float64; see test_train_parity.c for why AdamW keeps the error that
 * small). The test also checks that the masks are not trivial (some crops masked, some not),
 * that the mask token moved, and that without --ibot (weight 0) there is no iBOT state.
 * Case ibot_sep: the same with a separate iBOT head (own parameters, started from the
 * reference's ihead_init.npy, clipped on its own, EMA teacher copy): both copies compared too.
 * Case ibot_sep_wn: ibot_sep with weight-normed last layers (V trained, W = V / ||V||) in both heads.
 * Case ibot_sk: Sinkhorn-Knopp centering of the DINO and the iBOT (all masked patches at once)
 * targets; no centers kept (both stay zero on both sides). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gradbrain/ibot.h"
#include "gradbrain/npy.h"
#include "gradbrain/status.h"
#include "gradbrain/train.h"
#include "gradbrain/vit.h"
#include "npy_fixture.h"
#include "train_parity.h"

/* the geometry of train_ref.py's case (checked against its case.json) */
enum { REF_G = 2, REF_B = 4, REF_GS = 16, REF_P = 4, STEPS = 3 };
static const double REF_MASK_PROB = 0.75;

static int run_case(const char *src, const char *name) {
  char dir[] = "/tmp/gb_train_ibot_XXXXXX", cmd[4096], path[4096];
  if (!mkdtemp(dir)) return 1;
  int separate = !strncmp(name, "ibot_sep", 8);
  printf("case %s\n", name);

  /* the masks of steps 0..2, from the trainer's generator */
  gb_train_config mc;
  gb_train_config_default(&mc, "vit-tiny");
  mc.n_global = REF_G;
  mc.batch = REF_B;
  mc.ibot_weight = 0.7;
  mc.ibot_mask_prob = REF_MASK_PROB;
  int gh = REF_GS / REF_P, N = gh * gh, GB = REF_G * REF_B, masked_crops = 0, unmasked_crops = 0;
  uint8_t *mask = malloc((size_t)GB * N);
  float *mf = malloc((size_t)GB * N * sizeof(float));
  for (int s = 0; s < STEPS; s++) {
    int64_t nm = gb_ibot_make_masks(&mc, s, gh, gh, mask);
    for (int j = 0; j < GB; j++) {
      int cnt = 0;
      for (int n = 0; n < N; n++) cnt += mask[j * N + n];
      masked_crops += cnt > 0;
      unmasked_crops += cnt == 0;
    }
    for (int i = 0; i < GB * N; i++) mf[i] = mask[i];
    int64_t shp[2] = {GB, N};
    snprintf(path, sizeof path, "%s/masks_%d.npy", dir, s);
    if (gb_npy_write(path, mf, 2, shp) != GB_OK) {
      printf("FAIL: write %s: %s\n", path, gb_errmsg());
      return 1;
    }
    printf("step %d: %lld masked patches of %d\n", s, (long long)nm, GB * N);
  }
  printf("masked crops %d, unmasked %d (over %d steps)\n", masked_crops, unmasked_crops, STEPS);
  failures += !(masked_crops >= 3 && unmasked_crops >= 1);
  /* the masks depend on (seed, iteration): another iteration differs */
  {
    uint8_t *m2 = malloc((size_t)GB * N);
    gb_ibot_make_masks(&mc, 0, gh, gh, mask);
    gb_ibot_make_masks(&mc, 7, gh, gh, m2);
    int differ = memcmp(mask, m2, (size_t)GB * N) != 0;
    printf("masks of iterations 0 and 7 differ: %s\n", differ ? "yes" : "NO  FAIL");
    failures += !differ;
    free(m2);
  }

  snprintf(cmd, sizeof cmd, "PYTHONPATH=%s/tests/ref /usr/bin/python3 %s/tests/ref/train_ref.py %s %s > %s/ref.log",
           src, src, dir, name, dir);
  if (system(cmd) != 0) {
    printf("FAIL: reference script failed (%s)\n", cmd);
    return 1;
  }
  snprintf(cmd, sizeof cmd, "cat %s/ref.log", dir);
  if (system(cmd) != 0) return 1;
  snprintf(path, sizeof path, "%s/case.json", dir);
  FILE *f = fopen(path, "rb");
  char buf[8192];
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = 0;
  cJSON *cj = cJSON_Parse(buf);
  if (!cj) return 1;

  gb_vit *init = NULL;
  gb_vit_heads heads;
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (gb_vit_load(path, NULL, GB_VIT_AUTO, &init, &heads) != GB_OK) {
    printf("FAIL: load %s: %s\n", path, gb_errmsg());
    return 1;
  }
  gb_train_config c = mc;
  c.vit = init->cfg;
  c.head = (gb_dhead_config){init->cfg.dim, heads.dino_hidden, heads.dino_bottleneck, heads.dino_k};
  case_config(&c, cj);
  c.ibot_weight = jnum(cj, "ibot");
  c.ibot_separate_head = (int)jnum(cj, "ibot_sep");
  if (c.batch != REF_B || c.n_global != REF_G || c.global_size != REF_GS || c.vit.patch != REF_P ||
      jnum(cj, "ibot_mask_prob") != REF_MASK_PROB || !(c.ibot_weight > 0)) {
    printf("FAIL: train_ref.py's ibot case no longer has the geometry this test wrote masks for\n");
    return 1;
  }
  cJSON_Delete(cj);

  gb_trainer t;
  if (gb_trainer_create(&t, &c, init, &heads) != GB_OK || !t.ibot || t.ibot->separate != separate) {
    printf("FAIL: trainer: %s\n", gb_errmsg());
    return 1;
  }
  if (separate) { /* start from the reference's iBOT head (student = teacher) */
    int64_t nh;
    float *ih = load_npy(dir, "ihead_init.npy", &nh);
    if (nh != t.ibot->ihn) {
      printf("FAIL: ihead_init.npy has %lld values, the iBOT head %lld\n", (long long)nh, (long long)t.ibot->ihn);
      return 1;
    }
    memcpy(t.ibot->ishead_mem, ih, (size_t)nh * sizeof(float));
    memcpy(t.ibot->ithead_mem, ih, (size_t)nh * sizeof(float));
    free(ih);
  }
  float *ref_loss = load_npy(dir, "losses.npy", NULL);
  for (int s = 0; s < STEPS; s++) {
    char gn[64], ln[64];
    snprintf(gn, sizeof gn, "global_%d.npy", s);
    snprintf(ln, sizeof ln, "local_%d.npy", s);
    float *gl = load_npy(dir, gn, NULL), *lo = load_npy(dir, ln, NULL);
    gb_train_stats st;
    if (gb_trainer_step(&t, gl, lo, &st) != GB_OK) {
      printf("FAIL: step %d: %s\n", s, gb_errmsg());
      return 1;
    }
    double rel = fabs(st.loss - ref_loss[s]) / fabs(ref_loss[s]);
    printf("    step %d loss C %.7f (dino %.5f + %.2f x ibot %.5f)  ref %.7f  rel %.1e%s\n", s, st.loss, st.dino,
           c.ibot_weight, st.ibot, ref_loss[s], rel, rel <= 1e-5 ? "" : "  FAIL");
    failures += !(rel <= 1e-5);
    failures += !(st.ibot > 0);
    free(gl);
    free(lo);
  }
  const char *which[2] = {"student", "teacher"};
  for (int w = 0; w < 2; w++) {
    gb_vit *r = NULL;
    gb_vit_heads rh;
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, which[w]);
    if (gb_vit_load(path, NULL, GB_VIT_AUTO, &r, &rh) != GB_OK) {
      printf("FAIL: load %s: %s\n", path, gb_errmsg());
      failures++;
      continue;
    }
    gb_vit *m = w ? t.teacher : t.student;
    char what[64];
    snprintf(what, sizeof what, "%s backbone", which[w]);
    rel_l2(what, m->param_mem, r->param_mem, r->n_params, 1e-4);
    float *hf = malloc((size_t)t.head.n * sizeof(float));
    head_flat(&rh, &c.head, hf);
    snprintf(what, sizeof what, "%s head", which[w]);
    rel_l2(what, w ? t.thead_mem : t.shead_mem, hf, t.head.n, 1e-4);
    free(hf);
    gb_vit_free(r);
    gb_vit_heads_free(&rh);
  }
  int64_t nc;
  float *rc = load_npy(dir, "center.npy", &nc);
  rel_l2("center", t.center, rc, nc, 1e-4);
  free(rc);
  rc = load_npy(dir, "patch_center.npy", &nc);
  rel_l2("iBOT patch center", t.ibot->center, rc, nc, 1e-4);
  free(rc);
  rc = load_npy(dir, "mask_token.npy", &nc);
  double tn = 0;
  for (int64_t i = 0; i < nc; i++) tn += (double)rc[i] * rc[i];
  printf("    mask token moved from 0 to norm %.3e\n", sqrt(tn));
  failures += !(sqrt(tn) > 1e-4);
  rel_l2("iBOT mask token", t.ibot->token, rc, nc, 1e-4);
  free(rc);
  if (separate) {
    rc = load_npy(dir, "ihead_student.npy", &nc);
    rel_l2("iBOT head (student)", t.ibot->ishead_mem, rc, nc, 1e-4);
    float *ri = load_npy(dir, "ihead_init.npy", NULL);
    double mv = 0, nn = 0;
    for (int64_t i = 0; i < nc; i++) {
      mv += ((double)rc[i] - ri[i]) * ((double)rc[i] - ri[i]);
      nn += (double)rc[i] * rc[i];
    }
    printf("    iBOT head moved by rel %.2e from its start\n", sqrt(mv / nn));
    failures += !(sqrt(mv / nn) > 1e-4);
    free(ri);
    free(rc);
    rc = load_npy(dir, "ihead_teacher.npy", &nc);
    rel_l2("iBOT head (teacher)", t.ibot->ithead_mem, rc, nc, 1e-4);
    free(rc);
  }
  free(ref_loss);
  gb_trainer_free(&t);

  /* --ibot 0 (default): no iBOT state, the step is the plain DINO step */
  gb_train_config c0 = c;
  c0.ibot_weight = 0;
  if (gb_trainer_create(&t, &c0, init, &heads) != GB_OK || t.ibot) {
    printf("FAIL: trainer without --ibot has iBOT state\n");
    failures++;
  }
  gb_trainer_free(&t);
  gb_vit_free(init);
  gb_vit_heads_free(&heads);
  free(mask);
  free(mf);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return 0;
}

int main(void) {
  const char *src = getenv("GB_SRC");
  if (!src) src = ".";
  if (run_case(src, "ibot") || run_case(src, "ibot_sep") || run_case(src, "ibot_sep_wn") || run_case(src, "ibot_sk"))
    failures++;
  printf(failures ? "FAILED (%d)\n" : "ok\n", failures);
  return failures ? 1 : 0;
}
