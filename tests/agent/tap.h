/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tap.h - TAP output for the agent tests: ok() per check, then
 * tap_done() prints the plan and gives main's exit status.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int n_test, n_fail;

__attribute__((format(printf, 2, 3))) static void ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", cond ? "" : "not ", ++n_test);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	/* Flushed at once: a test that hangs still shows how far it got. */
	fflush(stdout);
	if (!cond)
		n_fail++;
}

static int tap_done(void)
{
	printf("1..%d\n", n_test);
	return n_fail ? 1 : 0;
}
