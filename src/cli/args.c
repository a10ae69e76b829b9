/* SPDX-License-Identifier: Apache-2.0 */
#include "args.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int find_def(const struct kc_optdef *defs, const char *name, size_t len)
{
	for (int i = 0; defs && defs[i].name; i++)
		if (strlen(defs[i].name) == len && strncmp(defs[i].name, name, len) == 0)
			return i;
	return -1;
}

int kc_args_parse(struct kc_args *a, const struct kc_optdef *defs, int argc, char *const *argv,
		  int min_pos, int max_pos, struct kc_error *err)
{
	memset(a, 0, sizeof(*a));
	a->defs = defs;
	bool options_done = false;

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
			if (a->npos >= KC_ARGS_MAX_POS || a->npos >= max_pos)
				return kc_error_set(err, KC_ERR_INVALID, "unexpected argument '%s'",
						    arg);
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			a->help = true;
			continue;
		}
		if (strcmp(arg, "--json") == 0) {
			a->json = true;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0)
			return kc_error_set(err, KC_ERR_INVALID, "unknown option '%s'", arg);

		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		int d = find_def(defs, name, len);
		if (d < 0 || d >= KC_ARGS_MAX_OPTS)
			return kc_error_set(err, KC_ERR_INVALID, "unknown option '--%.*s'",
					    (int)len, name);
		struct kc_optval *v = &a->opt[d];
		if (defs[d].kind == KC_OPT_FLAG) {
			if (eq)
				return kc_error_set(err, KC_ERR_INVALID,
						    "option '--%s' takes no value", defs[d].name);
			v->set = true;
			continue;
		}
		const char *value;
		if (eq) {
			value = eq + 1;
		} else {
			if (i + 1 >= argc)
				return kc_error_set(err, KC_ERR_INVALID,
						    "option '--%s' needs a value", defs[d].name);
			value = argv[++i];
		}
		if (defs[d].kind == KC_OPT_VALUE && v->set)
			return kc_error_set(err, KC_ERR_INVALID, "option '--%s' given twice",
					    defs[d].name);
		if (v->n >= KC_ARGS_MAX_LIST)
			return kc_error_set(err, KC_ERR_INVALID,
					    "option '--%s' given more than %d times", defs[d].name,
					    KC_ARGS_MAX_LIST);
		v->set = true;
		v->vals[v->n++] = value;
	}
	if (!a->help && a->npos < min_pos)
		return kc_error_set(err, KC_ERR_INVALID, "missing argument");
	return 0;
}

static int lookup(const struct kc_args *a, const char *name)
{
	int d = find_def(a->defs, name, strlen(name));
	return d >= 0 && d < KC_ARGS_MAX_OPTS ? d : -1;
}

const char *kc_args_value(const struct kc_args *a, const char *name)
{
	int d = lookup(a, name);
	return d >= 0 && a->opt[d].n > 0 ? a->opt[d].vals[0] : NULL;
}

bool kc_args_has(const struct kc_args *a, const char *name)
{
	int d = lookup(a, name);
	return d >= 0 && a->opt[d].set;
}

const struct kc_optval *kc_args_list(const struct kc_args *a, const char *name)
{
	static const struct kc_optval none;
	int d = lookup(a, name);
	return d >= 0 ? &a->opt[d] : &none;
}

int kc_parse_uint(const char *s, unsigned long long min, unsigned long long max, const char *what,
		  unsigned long long *ret, struct kc_error *err)
{
	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return kc_error_set(err, KC_ERR_INVALID, "%s: '%s' is not a number", what,
				    s ? s : "");
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno == ERANGE || v < min || v > max)
		return kc_error_set(err, KC_ERR_INVALID, "%s: %s is out of range (%llu-%llu)", what,
				    s, min, max);
	*ret = v;
	return 0;
}
