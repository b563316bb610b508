/* bf16x3 GEMM: AMX detection (compiled for any x86-64; packing and the tile kernel are in
 * gemm_x3_amx.c, compiled with AMX/AVX-512 enabled and only entered after detection). */
#include "gradbrain/gemm_x3.h"

#include <stdlib.h>
#include <string.h>

#include "gradbrain/arena.h"

#if defined(__x86_64__) && defined(__linux__) && defined(GB_HAVE_AMX_KERNEL)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define GB_X3_X86 1
#endif

static int x3_state = -1; /* -1 unknown, 0 no, 1 yes */

int gb_x3_available(void) {
  if (x3_state >= 0) return x3_state;
  int ok = 0;
#ifdef GB_X3_X86
  const char *env = getenv("GB_AMX");
  unsigned a, b, c, d;
  if (!(env && strcmp(env, "0") == 0) && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    if (amx_bf16 && amx_tile) {
      enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
      ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }
  }
#endif
  x3_state = ok;
  return ok;
}

const char *gb_x3_path(void) { return gb_x3_available() ? "amx-bf16x3" : "sgemm"; }

void gb_x3_left_free(gb_x3_left *a) {
  gb_free(a->hi);
  gb_free(a->lo);
  memset(a, 0, sizeof *a);
}

void gb_x3_right_free(gb_x3_right *b) {
  gb_free(b->hi);
  gb_free(b->lo);
  memset(b, 0, sizeof *b);
}
