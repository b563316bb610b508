/* One full DINO training step (forward of student and teacher on multi-crops, DINO loss with
 * centering or Sinkhorn-Knopp, KoLeo, backward with weight gradients, clipping, AdamW with
 * per-step lr / weight decay, teacher EMA, center update) against the PyTorch autograd
 * reference tests/ref/train_ref.py (float64), three steps in a row.
 *
 * Tolerance: parameters after 3 steps within 1e-4 relative L2 (per tensor group: student and
 * teacher backbones, heads, center), as the issue asks. The C side is float32: the gradients
 * carry ~1e-5 relative error, and AdamW turns each gradient into an update of size ~lr whose
 * direction depends only on the gradient's sign pattern, so the parameter error is bounded by
 * lr times the (rare) sign disagreements on near-zero gradient entries — far below 1e-4 of the
 * parameters' norm. Losses must agree within 1e-5 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gradbrain/npy.h"
#include "gradbrain/status.h"
#include "gradbrain/train.h"
#include "gradbrain/vit.h"
#include "npy_fixture.h"
#include "train_parity.h"

static void run_case(const char *src, const char *name) {
  char dir[] = "/tmp/gb_train_parity_XXXXXX", cmd[4096], path[4096];
  if (!mkdtemp(dir)) exit(1);
  snprintf(cmd, sizeof cmd, "PYTHONPATH=%s/tests/ref /usr/bin/python3 %s/tests/ref/train_ref.py %s %s > %s/ref.log",
           src, src, dir, name, dir);
  if (system(cmd) != 0) {
    printf("FAIL %s: reference script failed (%s)\n", name, cmd);
    failures++;
    return;
  }
  printf("case %s\n", name);
  snprintf(path, sizeof path, "%s/case.json", dir);
  FILE *f = fopen(path, "rb");
  char buf[8192];
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = 0;
  cJSON *cj = cJSON_Parse(buf);
  if (!cj) exit(1);

  gb_vit *init = NULL;
  gb_vit_heads heads;
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (gb_vit_load(path, NULL, GB_VIT_AUTO, &init, &heads) != GB_OK) {
    printf("FAIL: load %s: %s\n", path, gb_errmsg());
    failures++;
    return;
  }
  gb_train_config c;
  gb_train_config_default(&c, "vit-tiny");
  c.vit = init->cfg;
  c.head = (gb_dhead_config){init->cfg.dim, heads.dino_hidden, heads.dino_bottleneck, heads.dino_k};
  case_config(&c, cj);
  int steps = (int)jnum(cj, "steps");
  cJSON_Delete(cj);

  gb_trainer t;
  if (gb_trainer_create(&t, &c, init, &heads) != GB_OK) {
    printf("FAIL: trainer: %s\n", gb_errmsg());
    failures++;
    return;
  }
  int64_t nl;
  float *ref_loss = load_npy(dir, "losses.npy", &nl);
  float *ref_ent = load_npy(dir, "entropies.npy", NULL); /* (steps, 2): H(P) per crop, H(mean P) */
  for (int s = 0; s < steps; s++) {
    char gn[64], ln[64];
    snprintf(gn, sizeof gn, "global_%d.npy", s);
    snprintf(ln, sizeof ln, "local_%d.npy", s);
    float *gl = load_npy(dir, gn, NULL), *lo = load_npy(dir, ln, NULL);
    gb_train_stats st;
    if (gb_trainer_step(&t, gl, lo, &st) != GB_OK) {
      printf("FAIL: step %d: %s\n", s, gb_errmsg());
      failures++;
      return;
    }
    double rel = fabs(st.loss - ref_loss[s]) / fabs(ref_loss[s]);
    printf("    step %d loss C %.7f  ref %.7f  rel %.1e  (grad norms %.3f / %.3f, clip %.2f)%s\n", s, st.loss,
           ref_loss[s], rel, st.grad_norm_backbone, st.grad_norm_head, c.clip, rel <= 1e-5 ? "" : "  FAIL");
    failures += !(rel <= 1e-5);
    double got[2] = {st.teacher_entropy, st.teacher_batch_entropy};
    for (int e = 0; e < 2; e++) { /* float32 targets summed in double: ~1e-7 relative */
      double er = fabs(got[e] - ref_ent[2 * s + e]) / fabs(ref_ent[2 * s + e]);
      printf("    step %d %s C %.7f  ref %.7f  rel %.1e%s\n", s, e ? "H(mean P)" : "mean H(P)", got[e],
             ref_ent[2 * s + e], er, er <= 1e-5 ? "" : "  FAIL");
      failures += !(er <= 1e-5);
    }
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
    /* the parameters must have moved: the comparison is not of two copies of the start */
    if (w == 0) {
      double moved = 0, nrm = 0;
      for (int64_t i = 0; i < r->n_params; i++) {
        moved += ((double)r->param_mem[i] - init->param_mem[i]) * ((double)r->param_mem[i] - init->param_mem[i]);
        nrm += (double)r->param_mem[i] * r->param_mem[i];
      }
      printf("    student moved by rel %.2e from its start\n", sqrt(moved / nrm));
      failures += !(sqrt(moved / nrm) > 1e-3);
    }
    gb_vit_free(r);
    gb_vit_heads_free(&rh);
  }
  if (!c.sinkhorn) {
    int64_t nc;
    float *rc = load_npy(dir, "center.npy", &nc);
    rel_l2("center", t.center, rc, nc, 1e-4);
    free(rc);
  }
  free(ref_loss);
  free(ref_ent);
  gb_trainer_free(&t);
  gb_vit_free(init);
  gb_vit_heads_free(&heads);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
  const char *src = getenv("GB_SRC");
  if (!src) src = ".";
  run_case(src, "ema_koleo");
  run_case(src, "sinkhorn");
  run_case(src, "wn");
  printf(failures ? "FAILED (%d)\n" : "ok\n", failures);
  return failures ? 1 : 0;
}
