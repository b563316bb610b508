/* Whole-file reads of small text files. */
#include "gradbrain/textfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gb_status gb_read_text_file(const char *path, char **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return gb_fail(GB_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0 || n > (1L << 30)) {
    fclose(f);
    return gb_fail(GB_ERR_FORMAT, "%s: unexpected size %ld bytes (expected a text file under 1 GiB)", path, n);
  }
  char *b = malloc((size_t)n + 1);
  if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    fclose(f);
    return gb_fail(GB_ERR_IO, "cannot read %s", path);
  }
  b[n] = 0;
  fclose(f);
  *out = b;
  return GB_OK;
}
