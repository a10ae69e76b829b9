/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verbs.h - what kvmcloud-agent's verbs share: the parsed command line and
 * the configuration it names.  Program code, not part of the library.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

#define KC_CLI_MAX_OVERRIDES 64
#define KC_CLI_MAX_ARGS	     2
#define KC_DEFAULT_PKI_DIR   "/etc/kvmcloud/pki"

struct kc_cli_opts {
	const char *config;
	bool config_given;
	const char *overrides[KC_CLI_MAX_OVERRIDES];
	size_t n_overrides;
	bool json;
	bool no_probe;
	const char *ca_sha256;
	const char *args[KC_CLI_MAX_ARGS]; /* the verb's positional arguments */
	size_t n_args;
};

/* The configuration file plus the -o overrides. */
int kc_cli_config(const struct kc_cli_opts *o, struct kc_config **ret, struct kc_error *err);
/* "kvmcloud-agent: <code>: <message>" on stderr. */
void kc_cli_print_error(const struct kc_error *err);

/* join SERVER_URL TOKEN --ca-sha256 HEX (join.c) */
int kc_cmd_join(const struct kc_cli_opts *o);
/* run: the daemon (run.c) */
int kc_cmd_run(const struct kc_cli_opts *o);
