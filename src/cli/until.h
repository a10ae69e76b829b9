/* SPDX-License-Identifier: Apache-2.0 */
/*
 * until.h - "vm log --until REGEX": watches the bytes a command prints and
 * says when a line matches a POSIX extended regular expression.  The line
 * being written (not yet ended by '\n') is tested too, so that a prompt
 * such as "login: " can be waited for.  A trailing '\r' is dropped and NUL
 * bytes become spaces before matching.
 */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define KC_UNTIL_LINE_MAX (64 * 1024) /* longer lines are matched on their last 64 KiB */

struct kc_until {
	regex_t re;
	char *line;
	size_t len;
	bool compiled;
};

int kc_until_init(struct kc_until *u, const char *pattern, struct kc_error *err);
/* Feeds printed bytes; true once a line matched (and from then on). */
bool kc_until_feed(struct kc_until *u, const char *data, size_t len);
void kc_until_free(struct kc_until *u);
