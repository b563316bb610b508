/* bench_extract: images/s of the extraction engine, forward + backprop taps of every block.
 *
 *   bench_extract [threads=2] [batch=16] [iters=5] [arch=dinov3] [objective=dino]
 *
 * ViT-S/16 at 224 px (dim 384, 12 blocks, 6 heads; DINOv3-style with 4 registers by default)
 * with seeded weights, DINO head with K = 65536 prototypes, identity views (the teacher logits
 * are the student's, as in `gradbrain extract --views identity`). One warm-up batch, then
 * `iters` timed batches; prints the median per-batch time split into forward, objective and
 * backward, images/s (wall) and images per CPU-second (process CPU time, all threads), and
 * GFLOP/s of the matrix products actually computed (counted from their shapes). Last line:
 * "images_per_s X". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/extract.h"
#include "gradbrain/log.h"
#include "gradbrain/rng.h"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2, B = argc > 2 ? atoi(argv[2]) : 16, iters = argc > 3 ? atoi(argv[3]) : 5;
  const char *arch = argc > 4 ? argv[4] : "dinov3", *objn = argc > 5 ? argv[5] : "dino";
  gb_set_threads(threads);
  gb_log_set_level(GB_LOG_WARN);
  gb_vit_config cfg;
  int a = gb_vit_arch_parse(arch);
  if (a <= 0) {
    fprintf(stderr, "unknown arch %s\n", arch);
    return 2;
  }
  gb_vit_config_default(&cfg, (gb_vit_arch)a, 384, 12, 6, 16, a == GB_VIT_CLIP ? 0 : 4);
  if (a == GB_VIT_DINOV2) cfg.pos_grid = 37;
  gb_vit *m;
  gb_objective obj;
  gb_signal_batch sb;
  if (gb_vit_create_random(&cfg, 1, &m) || gb_objective_init(&obj, (gb_objective_kind)gb_objective_parse(objn), 384, NULL, 2, 65536, 1000, B) ||
      gb_signal_batch_init(&sb, m, &obj, B, 224, 1)) {
    fprintf(stderr, "setup: %s\n", gb_errmsg());
    return 1;
  }
  int K = obj.dino.k;
  if (obj.kind == GB_OBJ_DINO) {
    float *c = gb_calloc((size_t)K * 4, "center");
    gb_objective_set_center(&obj, c);
    gb_free(c);
  }
  size_t per = 3 * 224 * 224;
  float *img = gb_alloc(B * per * 4, "images");
  gb_rng r;
  gb_rng_seed(&r, 3);
  gb_rng_fill_normal(&r, img, (long)(B * per), 1.0f);
  double *tf = malloc(sizeof(double) * iters), *to = malloc(sizeof(double) * iters), *tb = malloc(sizeof(double) * iters);
  double *tc = malloc(sizeof(double) * iters), *cf = malloc(sizeof(double) * iters), *co = malloc(sizeof(double) * iters);
  for (int it = -1; it < iters; it++) {
    double c0 = cpu_now();
    double t0 = gb_now();
    gb_vit_forward(m, img, B);
    double t1 = gb_now(), c1 = cpu_now();
    gb_objective_loss_grad(&obj, m->a.final, m->a.final, NULL, B, sb.loss, sb.dfs, sb.labels_used);
    double t2 = gb_now(), c2 = cpu_now();
    gb_vit_backward(m, sb.dfs, B, 1, NULL);
    double t3 = gb_now();
    if (it >= 0) {
      tc[it] = cpu_now() - c0;
      cf[it] = c1 - c0;
      co[it] = c2 - c1;
      tf[it] = t1 - t0;
      to[it] = t2 - t1;
      tb[it] = t3 - t2;
    }
  }
  qsort(tf, iters, sizeof(double), cmp);
  qsort(to, iters, sizeof(double), cmp);
  qsort(tb, iters, sizeof(double), cmp);
  qsort(tc, iters, sizeof(double), cmp);
  qsort(cf, iters, sizeof(double), cmp);
  qsort(co, iters, sizeof(double), cmp);
  double f = tf[iters / 2], o = to[iters / 2], b = tb[iters / 2], tot = f + o + b;
  double T = m->T, D = 384, F = 1536, N = m->N, L = 12;
  double blk = 2 * T * D * (3 * D + D + 2 * F), att = 4 * T * T * D;
  /* backward: blocks 12..2 (block 1's input gradient is no tap); the last block runs its MLP,
   * projection and attention-output gradients on the CLS row only (the loss reads nothing
   * else), which leaves its qkv product on all rows plus O(T D) attention work */
  double last_blk = 2 * T * D * 3 * D + 2 * (2 * D * F + D * D) + 4 * T * D;
  double fwd = L * (blk + att) + 2 * N * 768 * D, bwd = (L - 2) * (blk + 2 * att) + last_blk;
  printf("arch %s, objective %s, threads %d, batch %d, tokens %d\n", arch, objn, threads, B, m->T);
  printf("forward   %.3f s/batch  %.1f GFLOP/s\n", f, B * fwd / f * 1e-9);
  printf("objective %.3f s/batch\n", o);
  printf("backward  %.3f s/batch  %.1f GFLOP/s\n", b, B * bwd / b * 1e-9);
  printf("total     %.3f s/batch  %.1f GFLOP/s (GEMM flops only)\n", tot, B * (fwd + bwd) / tot * 1e-9);
  printf("cpu       %.3f CPU-s/batch (all threads; forward %.3f, objective %.3f)\n", tc[iters / 2], cf[iters / 2],
         co[iters / 2]);
  printf("images_per_cpu_s %.3f\n", B / tc[iters / 2]);
  printf("images_per_s %.3f\n", B / tot);
  gb_free(img);
  free(tf);
  free(to);
  free(tb);
  free(tc);
  free(cf);
  free(co);
  gb_signal_batch_free(&sb);
  gb_objective_free(&obj);
  gb_vit_free(m);
  return 0;
}
