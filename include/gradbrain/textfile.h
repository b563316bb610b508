/* gradbrain — whole small text files (JSON sidecars, analysis results). */
#ifndef GRADBRAIN_TEXTFILE_H
#define GRADBRAIN_TEXTFILE_H

#include "gradbrain/status.h"

/* Reads all of `path` (at most 1 GiB) into a NUL-terminated buffer *out that the caller
 * frees with free(); on failure *out is NULL and the error names the file. */
gb_status gb_read_text_file(const char *path, char **out);

#endif
