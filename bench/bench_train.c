/* bench_train: DINO training throughput of libgradbrain (images/s), one full step each
 * iteration: teacher forward on the global crops, student forward on all crops, DINO loss,
 * backward with weight gradients, clipping, AdamW, EMA, center update.
 *
 *   bench_train [threads=2] [iters=5] [arch=vit-tiny] [batch=32] [local_crops=4]
 *
 * Crops are random normal tensors (augmentation is not timed, as in the PyTorch peer
 * bench/bench_train_torch.py). The first step is a warm-up. Prints "images_per_s X" (wall
 * clock) and "images_per_cpu_s X" (process CPU time: the fair measure on a shared machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gradbrain/blas.h"
#include "gradbrain/rng.h"
#include "gradbrain/status.h"
#include "gradbrain/train.h"

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2, iters = argc > 2 ? atoi(argv[2]) : 5;
  const char *arch = argc > 3 ? argv[3] : "vit-tiny";
  gb_set_threads(threads);
  gb_train_config c;
  if (gb_train_config_default(&c, arch) != GB_OK) {
    fprintf(stderr, "%s\n", gb_errmsg());
    return 1;
  }
  if (argc > 4) c.batch = atoi(argv[4]);
  if (argc > 5) c.n_local = atoi(argv[5]);
  c.iters = 1000;
  c.warmup_iters = 0; /* a real lr from the first step */
  c.koleo_weight = 0;  /* the peer's loss: DINO only (the vit-tiny default adds KoLeo) */
  gb_trainer t;
  if (gb_trainer_create(&t, &c, NULL, NULL) != GB_OK) {
    fprintf(stderr, "%s\n", gb_errmsg());
    return 1;
  }
  int64_t ng = (int64_t)c.n_global * c.batch * 3 * c.global_size * c.global_size;
  int64_t nl = (int64_t)(c.n_local ? c.n_local : 1) * c.batch * 3 * c.local_size * c.local_size;
  float *g = malloc((size_t)ng * sizeof(float)), *l = malloc((size_t)nl * sizeof(float));
  gb_rng r;
  gb_rng_seed(&r, 1);
  gb_rng_fill_normal(&r, g, (long)ng, 1.0f);
  gb_rng_fill_normal(&r, l, (long)nl, 1.0f);
  gb_train_stats st;
  if (gb_trainer_step(&t, g, l, &st) != GB_OK) {
    fprintf(stderr, "%s\n", gb_errmsg());
    return 1;
  }
  double t0 = now_seconds(), c0 = cpu_seconds();
  for (int i = 0; i < iters; i++)
    if (gb_trainer_step(&t, g, l, &st) != GB_OK) {
      fprintf(stderr, "%s\n", gb_errmsg());
      return 1;
    }
  double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
  printf("gradbrain %s: dim %d depth %d heads %d patch %d, batch %d, %d x %d px + %d x %d px crops, %d threads\n", arch,
         c.vit.dim, c.vit.depth, c.vit.heads, c.vit.patch, c.batch, c.n_global, c.global_size, c.n_local,
         c.local_size, threads);
  printf("%d steps in %.2f s, last loss %.4f\n", iters, dt, st.loss);
  printf("images_per_cpu_s %.3f\n", (double)iters * c.batch / dc);
  printf("images_per_s %.3f\n", (double)iters * c.batch / dt);
  gb_trainer_free(&t);
  free(g);
  free(l);
  return 0;
}
