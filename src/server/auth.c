/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.c - bearer tokens (the admin's, API tokens, sessions) and passwords.
 *
 * Tokens are 32 random bytes from libsodium, shown to the user as hex.  The
 * database stores only BLAKE2b-256 (crypto_generichash) of the hex text.  A
 * fast hash is right here, unlike for passwords: a token carries 256 bits
 * of entropy, so nobody can guess it from its hash however fast the hash
 * is, and a slow KDF would only cost us time on every request.
 *
 * A request's token is checked by hashing it and looking the hash up.  The
 * lookup's timing depends only on the hash of what the client sent, which
 * the client cannot steer towards a stored hash, so it leaks nothing useful
 * about a valid token (this is why we never compare tokens themselves with
 * strcmp).
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "db_tokens.h"
#include "db_users.h"
#include "json_util.h"

#define HASH_BYTES 32

static void token_hash_hex(const char *token, size_t len, char out[HASH_BYTES * 2 + 1])
{
	unsigned char h[HASH_BYTES];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token, len, NULL, 0);
	sodium_bin2hex(out, HASH_BYTES * 2 + 1, h, sizeof(h));
	sodium_memzero(h, sizeof(h));
}

/* Writes the token to <path>.tmp (0600) and syncs it; the caller renames
 * it into place once the database holds its hash. */
static int write_token_tmp(const char *tmp, const char *token, struct kc_error *err)
{
	unlink(tmp);
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", tmp);
	int rc = kc_write_all(fd, token, strlen(token));
	if (rc == 0)
		rc = kc_write_all(fd, "\n", 1);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -rc, "cannot write %s", tmp);
	}
	return 0;
}

/* Renames tmp over path and syncs the folder, so that neither a crash nor
 * a power loss leaves a half-written token file or none. */
static int install_token_file(const char *tmp, const char *path, struct kc_error *err)
{
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, e,
					  "cannot rename %s; run kvmcloud-server with "
					  "--reset-admin-token to make a new token",
					  tmp);
	}
	int rc = kc_fsync_parent(path);
	if (rc < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -rc, "cannot sync the folder of %s",
					  path);
	return 0;
}

/* Makes a new admin token: file first (as a temporary), then its hash in
 * the database (replacing the old ones if `reset`), then the file into
 * place.  A failure before the rename leaves the old token valid. */
static int new_token(struct kc_db *db, const char *path, bool reset,
		     char token[KC_TOKEN_HEX_LEN + 1], struct kc_error *err)
{
	_cleanup_free_ char *tmp = NULL;
	unsigned char raw[KC_TOKEN_BYTES];
	char hash[HASH_BYTES * 2 + 1];

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, KC_TOKEN_HEX_LEN + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	token_hash_hex(token, KC_TOKEN_HEX_LEN, hash);

	if (write_token_tmp(tmp, token, err) < 0)
		return -1;
	int rc = reset ? kc_db_token_replace(db, KC_DB_ADMIN_USER, "admin", hash, err)
		       : kc_db_token_insert(db, KC_DB_ADMIN_USER, "admin", hash, NULL, NULL, err);
	if (rc < 0) {
		unlink(tmp);
		return -1;
	}
	return install_token_file(tmp, path, err);
}

int kc_auth_init(struct kc_db *db, const char *data_dir, unsigned flags, FILE *log, char **ret_line,
		 struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	int64_t count = 0;

	if (sodium_init() < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "libsodium failed to initialise");
	if (asprintf(&path, "%s/admin.token", data_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_token_count(db, KC_DB_ADMIN_USER, "admin", &count, err) < 0)
		return -1;
	bool reset = (flags & KC_AUTH_RESET) && count > 0;
	if (count > 0 && !reset) {
		if (access(path, F_OK) < 0 && errno == ENOENT && log)
			fprintf(log,
				"warning: the database holds an admin token but its file %s is "
				"missing; nobody can use the API unless they kept a copy. Start "
				"kvmcloud-server once with --reset-admin-token to make a new "
				"one.\n",
				path);
		if (asprintf(ret_line, "admin token: in %s", path) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return 0;
	}

	char token[KC_TOKEN_HEX_LEN + 1];
	if (new_token(db, path, reset, token, err) < 0)
		return -1;
	int n;
	/* The token itself only on a terminal: logs (make run) keep stdout. */
	if (flags & KC_AUTH_SHOW_TOKEN)
		n = asprintf(ret_line, "admin token: %s", token);
	else
		n = asprintf(ret_line, "admin token: %s, in %s (mode 0600)",
			     reset ? "replaced" : "created", path);
	sodium_memzero(token, sizeof(token));
	if (n < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

void kc_auth_line_free(char *line)
{
	if (!line)
		return;
	sodium_memzero(line, strlen(line));
	free(line);
}

int kc_auth_identify(struct kc_db *db, const char *authorization, struct kc_principal *ret,
		     struct kc_error *err)
{
	static const char prefix[] = "Bearer ";
	char hash[HASH_BYTES * 2 + 1];
	_cleanup_json_ json_t *found = NULL;

	if (!authorization || strncasecmp(authorization, prefix, sizeof(prefix) - 1) != 0)
		goto deny;
	const char *token = authorization + sizeof(prefix) - 1;
	size_t len = strnlen(token, KC_TOKEN_HEX_LEN + 1);
	/* Every token we issue has exactly this length; anything else cannot
	 * match and is not worth hashing. */
	if (len != KC_TOKEN_HEX_LEN)
		goto deny;
	token_hash_hex(token, len, hash);
	if (kc_db_token_lookup(db, hash, &found, err) < 0)
		return -1;
	if (found) {
		const char *last = json_string_value(json_object_get(found, "last_used_at"));
		const char *user = json_string_value(json_object_get(found, "user"));
		const char *role = json_string_value(json_object_get(found, "role"));
		char minute_ago[21];
		if (!user || !role || strlen(user) > KC_NAME_MAX || strlen(role) >= sizeof(ret->role))
			goto deny;
		kc_db_time_from_now(-60, minute_ago);
		/* At most one write a minute per token; best effort: a failed
		 * note of the last use denies nothing. */
		if (!last || strcmp(last, minute_ago) < 0)
			kc_db_token_touch(db, json_integer_value(json_object_get(found, "id")),
					  NULL);
		if (ret) {
			snprintf(ret->user, sizeof(ret->user), "%s", user);
			snprintf(ret->role, sizeof(ret->role), "%s", role);
			ret->token_id = json_integer_value(json_object_get(found, "id"));
		}
		return 0;
	}
deny:
	return kc_error_set(err, KC_ERR_UNAUTHORIZED, "missing or invalid bearer token");
}

int kc_auth_check(struct kc_db *db, const char *authorization, struct kc_error *err)
{
	return kc_auth_identify(db, authorization, NULL, err);
}

int kc_auth_token_issue(struct kc_db *db, const char *user, const char *name, long ttl_s,
			char ret_token[KC_TOKEN_HEX_LEN + 1], int64_t *ret_id, char *ret_expires,
			struct kc_error *err)
{
	unsigned char raw[KC_TOKEN_BYTES];
	char hash[HASH_BYTES * 2 + 1], expires[21] = "";

	if (ttl_s > 0)
		kc_db_time_from_now(ttl_s, expires);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(ret_token, KC_TOKEN_HEX_LEN + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	token_hash_hex(ret_token, KC_TOKEN_HEX_LEN, hash);
	if (kc_db_token_insert(db, user, name, hash, ttl_s > 0 ? expires : NULL, ret_id, err) < 0) {
		sodium_memzero(ret_token, KC_TOKEN_HEX_LEN + 1);
		return -1;
	}
	if (ret_expires)
		memcpy(ret_expires, expires, sizeof(expires));
	return 0;
}

static int password_len_check(const char *password, struct kc_error *err)
{
	size_t n = password ? strnlen(password, KC_PASSWORD_MAX + 1) : 0;

	if (n < KC_PASSWORD_MIN || n > KC_PASSWORD_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "a password has %d to %d characters",
				    KC_PASSWORD_MIN, KC_PASSWORD_MAX);
	return 0;
}

int kc_auth_password_hash(const char *password, char **ret, struct kc_error *err)
{
	char h[crypto_pwhash_STRBYTES];

	if (password_len_check(password, err) < 0)
		return -1;
	if (crypto_pwhash_str(h, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory hashing a password");
	*ret = strdup(h);
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

/* A hash of nothing anyone knows, checked when the user has none, so that
 * a login's time does not tell whether the user exists. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];

static void dummy_init(void)
{
	unsigned char raw[16];

	randombytes_buf(raw, sizeof(raw));
	if (crypto_pwhash_str(dummy_hash, (const char *)raw, sizeof(raw),
			      crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		dummy_hash[0] = '\0';
}

int kc_auth_password_check(struct kc_db *db, const char *user, const char *password,
			   struct kc_error *err)
{
	_cleanup_free_ char *stored = NULL;
	struct kc_error e = {0};

	if (password_len_check(password, NULL) < 0)
		goto deny;
	if (kc_db_user_password_hash(db, user, &stored, &e) < 0 && e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}
	if (!stored) {
		pthread_once(&dummy_once, dummy_init);
		/* Same cost as a real check, so timing tells nothing about
		 * whether the user exists; the result is meaningless. */
		if (dummy_hash[0])
			(void)!crypto_pwhash_str_verify(dummy_hash, password, strlen(password));
		goto deny;
	}
	if (crypto_pwhash_str_verify(stored, password, strlen(password)) == 0)
		return 0;
deny:
	return kc_error_set(err, KC_ERR_UNAUTHORIZED, "wrong user name or password");
}
