/* SPDX-License-Identifier: Apache-2.0 */
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"

int kc_global_parse(int argc, char *const *argv, struct kc_global_flags *g, int *ret_next,
		    struct kc_error *err)
{
	static const struct {
		const char *name;
		size_t off;
	} valued[] = {
		{"server", offsetof(struct kc_global_flags, server)},
		{"token", offsetof(struct kc_global_flags, token)},
		{"token-file", offsetof(struct kc_global_flags, token_file)},
		{"config", offsetof(struct kc_global_flags, config)},
	};
	memset(g, 0, sizeof(*g));
	int i = 1;
	for (; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] != '-')
			break;
		if (strcmp(arg, "--json") == 0) {
			g->json = true;
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			g->help = true;
			continue;
		}
		if (strcmp(arg, "--version") == 0) {
			g->version = true;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		bool known = false;
		for (size_t k = 0; k < KC_ARRAY_SIZE(valued) && strncmp(arg, "--", 2) == 0; k++) {
			size_t len = strlen(valued[k].name);
			const char *rest = arg + 2;
			if (strncmp(rest, valued[k].name, len) != 0 ||
			    (rest[len] != '\0' && rest[len] != '='))
				continue;
			const char *value;
			if (rest[len] == '=') {
				value = rest + len + 1;
			} else {
				if (i + 1 >= argc)
					return kc_error_set(err, KC_ERR_INVALID,
							    "option '--%s' needs a value",
							    valued[k].name);
				value = argv[++i];
			}
			*(const char **)((char *)g + valued[k].off) = value;
			known = true;
			break;
		}
		if (!known) {
			/* Only the option name: "--token=secret" must not echo the secret. */
			const char *eq = strchr(arg, '=');
			return kc_error_set(err, KC_ERR_INVALID, "unknown option '%.*s'",
					    (int)(eq ? eq - arg : (long)strlen(arg)), arg);
		}
	}
	*ret_next = i;
	return 0;
}

int kc_token_read_file(const char *path, char **ret, struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INVALID, errno, "cannot read token file %s",
					  path);
	char buf[KC_TOKEN_MAX + 2];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kc_error_set_errno(err, KC_ERR_INVALID, errno,
						  "cannot read token file %s", path);
		if (n == 0 || (len += (size_t)n) == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	else if (len == sizeof(buf) - 1)
		return kc_error_set(err, KC_ERR_INVALID,
				    "token file %s: token longer than %d bytes", path,
				    KC_TOKEN_MAX);
	char *s = buf;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (n == 0)
		return kc_error_set(err, KC_ERR_INVALID, "token file %s is empty", path);
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return kc_error_set(err, KC_ERR_INVALID,
					    "token file %s: the token has invalid characters",
					    path);
	*ret = strdup(s);
	explicit_bzero(buf, sizeof(buf));
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

/* A token ends up in an HTTP header: control characters or spaces there
 * would let it smuggle another header. */
static int token_check(const char *token, const char *source, struct kc_error *err)
{
	size_t n = strlen(token);
	if (n == 0 || n > KC_TOKEN_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "the token from %s is empty or too long",
				    source);
	for (size_t i = 0; i < n; i++)
		if (token[i] < 0x21 || token[i] > 0x7e)
			return kc_error_set(err, KC_ERR_INVALID,
					    "the token from %s has invalid characters", source);
	return 0;
}

static int url_set(struct kc_settings *s, const char *url, const char *source, struct kc_error *err)
{
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "server URL '%s' (from %s) must start with http:// or https://",
				    url, source);
	size_t n = strlen(url);
	if (n > KC_URL_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "server URL from %s is too long", source);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return kc_error_set(err, KC_ERR_INVALID,
					    "server URL from %s has invalid characters", source);
	while (n > 0 && url[n - 1] == '/')
		n--;
	s->url = strndup(url, n);
	if (!s->url)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

static int token_set(struct kc_settings *s, const char *token, const char *token_file,
		     const char *source, struct kc_error *err)
{
	if (token) {
		if (token_check(token, source, err) < 0)
			return -1;
		s->token = strdup(token);
		return s->token ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return kc_token_read_file(token_file, &s->token, err);
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

int kc_settings_resolve(const struct kc_global_flags *g, struct kc_settings *s,
			struct kc_error *err)
{
	memset(s, 0, sizeof(*s));
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	if (!cfg)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	/* An explicitly named config file must exist; the default one may not. */
	_cleanup_free_ char *def_path = NULL;
	const char *path = g->config;
	bool must_exist = true;
	if (!path)
		path = nonempty(getenv("KVMCLOUD_CONFIG"));
	if (!path && nonempty(getenv("HOME"))) {
		if (asprintf(&def_path, "%s/.config/kvmcloud/cli.conf", getenv("HOME")) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		path = def_path;
		must_exist = false;
	}
	if (path) {
		if (kc_config_load(cfg, path, must_exist, err) < 0)
			goto fail;
		s->config_path = strdup(path);
	}

	const char *url;
	const char *src;
	if ((url = nonempty(g->server)))
		src = "--server";
	else if ((url = nonempty(getenv("KVMCLOUD_URL"))))
		src = "KVMCLOUD_URL";
	else if ((url = nonempty(kc_config_get(cfg, "url", NULL))))
		src = path;
	else
		url = KC_DEFAULT_URL, src = "the default";
	if (url_set(s, url, src, err) < 0)
		goto fail;

	int r;
	if (nonempty(g->token) || nonempty(g->token_file))
		r = token_set(s, nonempty(g->token), g->token_file, "--token", err);
	else if (nonempty(getenv("KVMCLOUD_TOKEN")) || nonempty(getenv("KVMCLOUD_TOKEN_FILE")))
		r = token_set(s, nonempty(getenv("KVMCLOUD_TOKEN")), getenv("KVMCLOUD_TOKEN_FILE"),
			      "KVMCLOUD_TOKEN", err);
	else if (nonempty(kc_config_get(cfg, "token", NULL)) ||
		 nonempty(kc_config_get(cfg, "token_file", NULL)))
		r = token_set(s, nonempty(kc_config_get(cfg, "token", NULL)),
			      kc_config_get(cfg, "token_file", NULL), path, err);
	else if (access(KC_DEFAULT_TOKEN_FILE, R_OK) == 0)
		r = kc_token_read_file(KC_DEFAULT_TOKEN_FILE, &s->token, err);
	else
		r = 0;
	if (r < 0)
		goto fail;
	return 0;
fail:
	kc_settings_clear(s);
	return -1;
}

int kc_settings_need_token(const struct kc_settings *s, struct kc_error *err)
{
	if (s->token)
		return 0;
	return kc_error_set(err, KC_ERR_UNAUTHORIZED,
			    "no token: pass --token or --token-file, set KVMCLOUD_TOKEN or "
			    "KVMCLOUD_TOKEN_FILE, or set token_file in ~/.config/kvmcloud/cli.conf "
			    "(the server writes its admin token to %s)",
			    KC_DEFAULT_TOKEN_FILE);
}

void kc_settings_clear(struct kc_settings *s)
{
	free(s->url);
	if (s->token) {
		explicit_bzero(s->token, strlen(s->token));
		free(s->token);
	}
	free(s->config_path);
	memset(s, 0, sizeof(*s));
}
