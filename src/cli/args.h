/* SPDX-License-Identifier: Apache-2.0 */
/*
 * args.h - the options a verb accepts after "NOUN VERB", parsed strictly:
 * an option not in the verb's table is an error, and so is a number with
 * trailing garbage ("12abc").  Values are borrowed from argv.
 */
#pragma once

#include <stdbool.h>

#include "error.h"

enum kc_opt_kind {
	KC_OPT_FLAG,  /* --autostart */
	KC_OPT_VALUE, /* --image IMG, given at most once */
	KC_OPT_LIST,  /* --nic SPEC, repeatable */
};

struct kc_optdef {
	const char *name; /* without the leading "--" */
	enum kc_opt_kind kind;
};

#define KC_ARGS_MAX_POS	 4
#define KC_ARGS_MAX_OPTS 24
#define KC_ARGS_MAX_LIST 16 /* per repeatable option; the server enforces its own lower limits */

struct kc_optval {
	bool set;
	unsigned n;
	const char *vals[KC_ARGS_MAX_LIST];
};

struct kc_args {
	const struct kc_optdef *defs; /* terminated by a row with name NULL */
	struct kc_optval opt[KC_ARGS_MAX_OPTS];
	const char *pos[KC_ARGS_MAX_POS];
	int npos;
	bool json; /* --json, accepted by every verb */
	bool help; /* --help or -h */
};

/* Parses argv[0..argc) against `defs` ("--opt VALUE", "--opt=VALUE", "--"
 * ends options).  Fails with KC_ERR_INVALID (a usage error) on an unknown
 * option, a missing value, a repeated single-value option, or a positional
 * count outside [min_pos, max_pos].  With --help the counts are not checked. */
int kc_args_parse(struct kc_args *a, const struct kc_optdef *defs, int argc, char *const *argv,
		  int min_pos, int max_pos, struct kc_error *err);

/* The value of a KC_OPT_VALUE option, or NULL when not given. */
const char *kc_args_value(const struct kc_args *a, const char *name);
/* Whether a flag (or any option) was given. */
bool kc_args_has(const struct kc_args *a, const char *name);
/* The values of a KC_OPT_LIST option (n == 0 when not given); never NULL. */
const struct kc_optval *kc_args_list(const struct kc_args *a, const char *name);

/* Decimal digits only, no sign, no spaces, no trailing characters, within
 * [min, max].  `what` names the option in the error ("--memory"). */
int kc_parse_uint(const char *s, unsigned long long min, unsigned long long max, const char *what,
		  unsigned long long *ret, struct kc_error *err);
