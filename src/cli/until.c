/* SPDX-License-Identifier: Apache-2.0 */
#include "until.h"

#include <stdlib.h>
#include <string.h>

int kc_until_init(struct kc_until *u, const char *pattern, struct kc_error *err)
{
	memset(u, 0, sizeof(*u));
	int rc = regcomp(&u->re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char msg[256];
		regerror(rc, &u->re, msg, sizeof(msg));
		return kc_error_set(err, KC_ERR_INVALID, "--until: bad regular expression: %s",
				    msg);
	}
	u->compiled = true;
	u->line = malloc(KC_UNTIL_LINE_MAX + 1);
	if (!u->line) {
		kc_until_free(u);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

static bool line_matches(struct kc_until *u)
{
	size_t n = u->len;
	if (n > 0 && u->line[n - 1] == '\r')
		n--;
	u->line[n] = '\0';
	return regexec(&u->re, u->line, 0, NULL, 0) == 0;
}

bool kc_until_feed(struct kc_until *u, const char *data, size_t len)
{
	bool matched = false;
	for (size_t i = 0; i < len && !matched; i++) {
		char c = data[i];
		if (c == '\n') {
			matched = line_matches(u);
			u->len = 0;
			continue;
		}
		if (u->len == KC_UNTIL_LINE_MAX) {
			/* Keep the newest half of an overlong line. */
			memmove(u->line, u->line + KC_UNTIL_LINE_MAX / 2, KC_UNTIL_LINE_MAX / 2);
			u->len = KC_UNTIL_LINE_MAX / 2;
		}
		u->line[u->len++] = c ? c : ' ';
	}
	if (!matched && u->len > 0)
		matched = line_matches(u);
	return matched;
}

void kc_until_free(struct kc_until *u)
{
	if (u->compiled)
		regfree(&u->re);
	free(u->line);
	memset(u, 0, sizeof(*u));
}
