/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

#define KC_CONFIG_LINE_MAX 4096
#define KC_CONFIG_MAX_KEYS 1024

struct kc_config_entry {
	char *key;
	char *value;
};

struct kc_config {
	struct kc_config_entry *entries;
	size_t n, cap;
};

struct kc_config *kc_config_new(void)
{
	return calloc(1, sizeof(struct kc_config));
}

void kc_config_free(struct kc_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n; i++) {
		free(cfg->entries[i].key);
		free(cfg->entries[i].value);
	}
	free(cfg->entries);
	free(cfg);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

int kc_config_set(struct kc_config *cfg, const char *key, const char *value,
		  struct kc_error *err)
{
	if (!key || !*key)
		return kc_error_set(err, KC_ERR_INVALID, "configuration key must not be empty");
	for (size_t i = 0; i < cfg->n; i++) {
		if (strcmp(cfg->entries[i].key, key) == 0) {
			char *v = strdup(value);
			if (!v)
				return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
			free(cfg->entries[i].value);
			cfg->entries[i].value = v;
			return 0;
		}
	}
	if (cfg->n >= KC_CONFIG_MAX_KEYS)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "more than %d configuration keys",
				    KC_CONFIG_MAX_KEYS);
	if (cfg->n == cfg->cap) {
		size_t cap = cfg->cap ? cfg->cap * 2 : 16;
		struct kc_config_entry *e = realloc(cfg->entries, cap * sizeof(*e));
		if (!e)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		cfg->entries = e;
		cfg->cap = cap;
	}
	_cleanup_free_ char *k = strdup(key);
	_cleanup_free_ char *v = strdup(value);
	if (!k || !v)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	cfg->entries[cfg->n].key = steal_ptr(&k);
	cfg->entries[cfg->n].value = steal_ptr(&v);
	cfg->n++;
	return 0;
}

/* Parses one "key = value" line in place; `where` prefixes errors. */
static int set_line(struct kc_config *cfg, char *line, const char *where, struct kc_error *err)
{
	char *eq = strchr(line, '=');
	if (!eq)
		return kc_error_set(err, KC_ERR_INVALID, "%s: expected key=value", where);
	*eq = '\0';
	char *key = trim(line);
	char *value = trim(eq + 1);
	if (!*key)
		return kc_error_set(err, KC_ERR_INVALID, "%s: empty key", where);
	return kc_config_set(cfg, key, value, err);
}

int kc_config_set_pair(struct kc_config *cfg, const char *pair, struct kc_error *err)
{
	_cleanup_free_ char *copy = strdup(pair);
	if (!copy)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return set_line(cfg, copy, "option", err);
}

int kc_config_load(struct kc_config *cfg, const char *path, bool must_exist,
		   struct kc_error *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return kc_error_set_errno(err, errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_INVALID,
					  errno, "cannot open configuration file %s", path);
	}
	char buf[KC_CONFIG_LINE_MAX + 2];
	unsigned lineno = 0;
	while (fgets(buf, sizeof(buf), f)) {
		lineno++;
		size_t len = strlen(buf);
		if (len > KC_CONFIG_LINE_MAX && buf[len - 1] != '\n')
			return kc_error_set(err, KC_ERR_INVALID, "%s:%u: line longer than %d bytes",
					    path, lineno, KC_CONFIG_LINE_MAX);
		char *line = trim(buf);
		if (!*line || *line == '#')
			continue;
		char where[256];
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (set_line(cfg, line, where, err) < 0)
			return -1;
	}
	if (ferror(f))
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s", path);
	return 0;
}

const char *kc_config_get(const struct kc_config *cfg, const char *key, const char *def)
{
	for (size_t i = 0; cfg && i < cfg->n; i++)
		if (strcmp(cfg->entries[i].key, key) == 0)
			return cfg->entries[i].value;
	return def;
}

int kc_config_get_uint(const struct kc_config *cfg, const char *key, unsigned long long def,
		       unsigned long long min, unsigned long long max,
		       unsigned long long *ret, struct kc_error *err)
{
	const char *s = kc_config_get(cfg, key, NULL);
	if (!s) {
		*ret = def;
		return 0;
	}
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < min || v > max)
		return kc_error_set(err, KC_ERR_INVALID,
				    "configuration %s=%s: expected a number from %llu to %llu", key,
				    s, min, max);
	*ret = v;
	return 0;
}

int kc_config_get_bool(const struct kc_config *cfg, const char *key, bool def, bool *ret,
		       struct kc_error *err)
{
	const char *s = kc_config_get(cfg, key, NULL);
	if (!s) {
		*ret = def;
		return 0;
	}
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1") || !strcmp(s, "on")) {
		*ret = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0") || !strcmp(s, "off")) {
		*ret = false;
		return 0;
	}
	return kc_error_set(err, KC_ERR_INVALID, "configuration %s=%s: expected true or false",
			    key, s);
}
