/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cleanup.h - scope-bound ownership (systemd/crun style).
 *
 *   _cleanup_free_ char *s = strdup(x);      freed when s leaves scope
 *   return steal_ptr(&s);                    hand ownership to the caller
 */
#pragma once

#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <errno.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void kc_freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(kc_freep)

static inline void kc_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(kc_closep)

static inline void kc_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(kc_fclosep)

/* Takes the pointer out of *pp, leaving NULL behind, so that a cleanup
 * attribute on *pp no longer frees it. */
#define steal_ptr(pp)                          \
	({                                     \
		__typeof__(*(pp)) _kc_tmp = *(pp); \
		*(pp) = NULL;                  \
		_kc_tmp;                       \
	})

#define KC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
