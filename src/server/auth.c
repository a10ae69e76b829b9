/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.c - admin bearer token.
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
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

#define HASH_BYTES 32

static void token_hash_hex(const char *token, size_t len, char out[HASH_BYTES * 2 + 1])
{
	unsigned char h[HASH_BYTES];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token, len, NULL, 0);
	sodium_bin2hex(out, HASH_BYTES * 2 + 1, h, sizeof(h));
	sodium_memzero(h, sizeof(h));
}

/* Writes the token next to the database via a temporary file, so that a
 * crash never leaves a half-written token file. */
static int write_token_file(const char *path, const char *token, struct kc_error *err)
{
	_cleanup_free_ char *tmp = NULL;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	unlink(tmp);
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", tmp);
	size_t len = strlen(token);
	if (write(fd, token, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, e, "cannot write %s", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, e, "cannot rename %s", tmp);
	}
	return 0;
}

int kc_auth_init(struct kc_db *db, const char *data_dir, char **ret_line, struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	long count = 0;

	if (sodium_init() < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "libsodium failed to initialise");
	if (asprintf(&path, "%s/admin.token", data_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (db->ops->token_count(db, &count, err) < 0)
		return -1;
	if (count > 0) {
		if (asprintf(ret_line, "admin token: in %s", path) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return 0;
	}

	unsigned char raw[KC_TOKEN_BYTES];
	char token[KC_TOKEN_HEX_LEN + 1];
	char hash[HASH_BYTES * 2 + 1];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	token_hash_hex(token, KC_TOKEN_HEX_LEN, hash);

	int rc = write_token_file(path, token, err);
	if (rc == 0 && db->ops->token_insert(db, "admin", hash, err) < 0) {
		unlink(path);
		rc = -1;
	}
	if (rc == 0 && asprintf(ret_line, "admin token: %s", token) < 0)
		rc = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	sodium_memzero(token, sizeof(token));
	return rc;
}

void kc_auth_line_free(char *line)
{
	if (!line)
		return;
	sodium_memzero(line, strlen(line));
	free(line);
}

int kc_auth_check(struct kc_db *db, const char *authorization, struct kc_error *err)
{
	static const char prefix[] = "Bearer ";
	char hash[HASH_BYTES * 2 + 1];
	bool found = false;

	if (!authorization || strncasecmp(authorization, prefix, sizeof(prefix) - 1) != 0)
		goto deny;
	const char *token = authorization + sizeof(prefix) - 1;
	size_t len = strnlen(token, KC_TOKEN_HEX_LEN + 1);
	/* Every token we issue has exactly this length; anything else cannot
	 * match and is not worth hashing. */
	if (len != KC_TOKEN_HEX_LEN)
		goto deny;
	token_hash_hex(token, len, hash);
	if (db->ops->token_lookup(db, hash, &found, err) < 0)
		return -1;
	if (found)
		return 0;
deny:
	return kc_error_set(err, KC_ERR_UNAUTHORIZED, "missing or invalid bearer token");
}
