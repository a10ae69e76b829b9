/* SPDX-License-Identifier: Apache-2.0 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	enum kc_errcode code;
	const char *name;
	int http;
} errtab[] = {
	{KC_OK, "ok", 200},
	{KC_ERR_INVALID, "invalid_argument", 400},
	{KC_ERR_UNAUTHORIZED, "unauthorized", 401},
	{KC_ERR_FORBIDDEN, "forbidden", 403},
	{KC_ERR_NOT_FOUND, "not_found", 404},
	{KC_ERR_CONFLICT, "conflict", 409},
	{KC_ERR_TOO_LARGE, "too_large", 413},
	{KC_ERR_NO_CAPACITY, "no_capacity", 507},
	{KC_ERR_HYPERVISOR, "hypervisor_error", 502},
	{KC_ERR_UNAVAILABLE, "unavailable", 503},
	{KC_ERR_TIMEOUT, "timeout", 504},
	{KC_ERR_INTERNAL, "internal_error", 500},
};

static int error_vset(struct kc_error *err, enum kc_errcode code, int errnum,
		      const char *fmt, va_list ap)
{
	if (!err || err->code != KC_OK)
		return -1;
	err->code = code == KC_OK ? KC_ERR_INTERNAL : code;
	int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	if (errnum && n >= 0 && (size_t)n < sizeof(err->message))
		snprintf(err->message + n, sizeof(err->message) - n, ": %s",
			 strerror(errnum));
	return -1;
}

int kc_error_set(struct kc_error *err, enum kc_errcode code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int kc_error_set_errno(struct kc_error *err, enum kc_errcode code, int errnum,
		       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, code, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

void kc_error_clear(struct kc_error *err)
{
	if (!err)
		return;
	err->code = KC_OK;
	err->message[0] = '\0';
}

const char *kc_errcode_name(enum kc_errcode code)
{
	for (size_t i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (errtab[i].code == code)
			return errtab[i].name;
	return "internal_error";
}

enum kc_errcode kc_errcode_from_name(const char *name)
{
	for (size_t i = 0; name && i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (strcmp(errtab[i].name, name) == 0)
			return errtab[i].code;
	return KC_ERR_INTERNAL;
}

int kc_errcode_http_status(enum kc_errcode code)
{
	for (size_t i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (errtab[i].code == code)
			return errtab[i].http;
	return 500;
}
