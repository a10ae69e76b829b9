/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.h - the global options (before the noun) and where the server
 * URL and the token come from.  Precedence, for each setting:
 * command-line flag > environment > configuration file > default.
 */
#pragma once

#include <stdbool.h>

#include "error.h"

#define KC_DEFAULT_URL	      "http://127.0.0.1:8470"
#define KC_DEFAULT_TOKEN_FILE "/var/lib/kvmcloud/admin.token"
#define KC_TOKEN_MAX	      1024
#define KC_URL_MAX	      2048

struct kc_global_flags {
	const char *server;	/* --server */
	const char *token;	/* --token */
	const char *token_file; /* --token-file */
	const char *config;	/* --config */
	bool json, help, version;
};

struct kc_settings {
	char *url;	   /* without a trailing '/' */
	char *token;	   /* NULL when none was found */
	char *config_path; /* the file that was read, or NULL */
};

/* Parses global options from argv[1..]; stops at the first argument that is
 * not an option (the noun) and stores its index in *ret_next (argc if none).
 * Unknown options are usage errors (KC_ERR_INVALID). */
int kc_global_parse(int argc, char *const *argv, struct kc_global_flags *g, int *ret_next,
		    struct kc_error *err);

/* Resolves URL and token from flags, the environment (KVMCLOUD_URL,
 * KVMCLOUD_TOKEN, KVMCLOUD_TOKEN_FILE, KVMCLOUD_CONFIG) and the configuration
 * file (keys url, token, token_file; default ~/.config/kvmcloud/cli.conf).
 * A missing token is not an error here (see kc_settings_need_token). */
int kc_settings_resolve(const struct kc_global_flags *g, struct kc_settings *s,
			struct kc_error *err);
/* Fails with the "no token: ..." message when s->token is NULL. */
int kc_settings_need_token(const struct kc_settings *s, struct kc_error *err);
void kc_settings_clear(struct kc_settings *s);

/* Reads a token from the first line of `path`: at most KC_TOKEN_MAX
 * printable ASCII characters, surrounding whitespace dropped.  The token is
 * never part of an error message. */
int kc_token_read_file(const char *path, char **ret, struct kc_error *err);
