/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - "key=value" configuration files, as CloudStack's
 * agent.properties (seeds: guest.cpu.mode=host-model).  '#' starts a
 * comment line; blank lines are ignored; whitespace around key and value
 * is trimmed.  Lines over 4 KiB, a missing '=', or an empty key are errors
 * naming the file and line.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct kc_config;

struct kc_config *kc_config_new(void);
void kc_config_free(struct kc_config *cfg); /* accepts NULL */
static inline void kc_config_freep(struct kc_config **c)
{
	kc_config_free(*c);
}
#define _cleanup_config_ __attribute__((cleanup(kc_config_freep)))

/* Reads a file; a missing file is an error only if `must_exist`.
 * Keys read later override earlier ones. */
int kc_config_load(struct kc_config *cfg, const char *path, bool must_exist,
		   struct kc_error *err);
/* Sets or replaces a key (e.g. from a command-line -o key=value). */
int kc_config_set(struct kc_config *cfg, const char *key, const char *value,
		  struct kc_error *err);
/* Parses "key=value". */
int kc_config_set_pair(struct kc_config *cfg, const char *pair, struct kc_error *err);

/* Borrowed string or `def` when unset. */
const char *kc_config_get(const struct kc_config *cfg, const char *key, const char *def);
/* Unsigned integer; error if the value is not a number in [min, max]. */
int kc_config_get_uint(const struct kc_config *cfg, const char *key, unsigned long long def,
		       unsigned long long min, unsigned long long max,
		       unsigned long long *ret, struct kc_error *err);
int kc_config_get_bool(const struct kc_config *cfg, const char *key, bool def, bool *ret,
		       struct kc_error *err);
