/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error.h - an error code and a human message, recorded once at the point
 * of failure and carried unchanged up to the API response or CLI line.
 *
 * Convention (libvirt/crun style): functions return 0 on success and -1 on
 * failure, and on failure they have filled the `struct kc_error *err` they
 * were given.  The first error recorded wins: callers higher up may not
 * overwrite the precise message from the place that failed.
 */
#pragma once

#include <stdbool.h>

enum kc_errcode {
	KC_OK = 0,
	KC_ERR_INVALID,      /* bad input from the user: 400 */
	KC_ERR_UNAUTHORIZED, /* no or wrong credentials: 401 */
	KC_ERR_FORBIDDEN,    /* authenticated but not allowed: 403 */
	KC_ERR_NOT_FOUND,    /* 404 */
	KC_ERR_CONFLICT,     /* exists already / wrong state: 409 */
	KC_ERR_TOO_LARGE,    /* request or message over its limit: 413 */
	KC_ERR_NO_CAPACITY,  /* host or pool cannot hold it: 507 */
	KC_ERR_HYPERVISOR,   /* libvirt or QEMU failed: 502 */
	KC_ERR_UNAVAILABLE,  /* libvirtd or an agent is not reachable: 503 */
	KC_ERR_TIMEOUT,      /* 504 */
	KC_ERR_INTERNAL,     /* our own bug or an OS failure: 500 */
};

#define KC_ERROR_MSG_MAX 512

struct kc_error {
	enum kc_errcode code;
	char message[KC_ERROR_MSG_MAX];
};

/* Records an error unless one is recorded already.  Always returns -1 so
 * that `return kc_error_set(err, ...);` reads naturally.  err may be NULL. */
int kc_error_set(struct kc_error *err, enum kc_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(errnum)". */
int kc_error_set_errno(struct kc_error *err, enum kc_errcode code, int errnum,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

void kc_error_clear(struct kc_error *err);
static inline bool kc_error_is_set(const struct kc_error *err)
{
	return err && err->code != KC_OK;
}

/* "invalid_argument", "not_found", ...: the stable machine-readable name
 * used in JSON error bodies. */
const char *kc_errcode_name(enum kc_errcode code);
/* Inverse of kc_errcode_name(); unknown names map to KC_ERR_INTERNAL. */
enum kc_errcode kc_errcode_from_name(const char *name);
int kc_errcode_http_status(enum kc_errcode code);
