/* SPDX-License-Identifier: Apache-2.0 */
#include "validate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_alnum_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int kc_name_validate(const char *name, const char *what, struct kc_error *err)
{
	if (!what)
		what = "name";
	if (!name || !*name)
		return kc_error_set(err, KC_ERR_INVALID, "%s must not be empty", what);
	size_t len = strnlen(name, KC_NAME_MAX + 1);
	if (len > KC_NAME_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "%s is longer than %d characters", what,
				    KC_NAME_MAX);
	if (!is_alnum_ascii(name[0]))
		return kc_error_set(err, KC_ERR_INVALID, "%s must start with a letter or a digit",
				    what);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!is_alnum_ascii(c) && c != '.' && c != '_' && c != '-')
			/* The name may hold anything: do not echo it back raw. */
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s may only contain A-Z a-z 0-9 . _ - "
					    "(found a forbidden character at position %zu)",
					    what, i + 1);
	}
	if (strstr(name, ".."))
		return kc_error_set(err, KC_ERR_INVALID, "%s must not contain \"..\"", what);
	return 0;
}

int kc_hostname_validate(const char *name, struct kc_error *err)
{
	if (!name || !*name)
		return kc_error_set(err, KC_ERR_INVALID, "hostname must not be empty");
	size_t len = strnlen(name, 64);
	if (len > 63)
		return kc_error_set(err, KC_ERR_INVALID, "hostname is longer than 63 characters");
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return kc_error_set(err, KC_ERR_INVALID,
						    "hostname has an empty label or a label "
						    "ending in '-'");
			label = 0;
			continue;
		}
		if (!is_alnum_ascii(c) && c != '-')
			return kc_error_set(
				err, KC_ERR_INVALID,
				"hostname may only contain letters, digits, '-' and '.'");
		if (label == 0 && c == '-')
			return kc_error_set(err, KC_ERR_INVALID,
					    "hostname labels must not start with '-'");
		label++;
	}
	if (label == 0 || name[len - 1] == '-')
		return kc_error_set(err, KC_ERR_INVALID, "hostname must not end with '.' or '-'");
	return 0;
}

int kc_mac_validate(const char *mac, bool unicast, const char *what, struct kc_error *err)
{
	if (!what)
		what = "MAC address";
	bool ok = strlen(mac) == 17;
	for (size_t i = 0; ok && i < 17; i++)
		ok = (i % 3 == 2) ? mac[i] == ':' : isxdigit((unsigned char)mac[i]);
	if (!ok)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s '%s' is not of the form xx:xx:xx:xx:xx:xx", what, mac);
	if (unicast && (strtoul(mac, NULL, 16) & 1))
		return kc_error_set(err, KC_ERR_INVALID, "%s '%s' is multicast", what, mac);
	return 0;
}

char *kc_path_join_name(const char *dir, const char *name, const char *suffix, const char *what,
			struct kc_error *err)
{
	if (kc_name_validate(name, what, err) < 0)
		return NULL;
	if (!dir || dir[0] != '/') {
		kc_error_set(err, KC_ERR_INTERNAL, "directory for %s is not absolute",
			     what ? what : "name");
		return NULL;
	}
	char *path = NULL;
	if (asprintf(&path, "%s/%s%s", dir, name, suffix ? suffix : "") < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	return path;
}
