/* SPDX-License-Identifier: Apache-2.0 */
/* io.h - small file-descriptor helpers shared by the programs. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Writes all `len` bytes, retrying on EINTR and short writes.  Returns 0,
 * or -errno (EAGAIN on a non-blocking fd that is full stays an error). */
int kc_write_all(int fd, const void *buf, size_t len);

/* fsync()s the folder holding `path`, so that a rename() into it survives
 * a power loss.  Returns 0 or -errno. */
int kc_fsync_parent(const char *path);

/* Writes `text` to a new file beside `path` (mode `mode`, fsync'd) and
 * renames it over `path`: readers see the old or the new, never half of
 * one. */
int kc_file_replace(const char *path, const char *text, mode_t mode, struct kc_error *err);
