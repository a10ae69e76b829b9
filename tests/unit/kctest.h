/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kctest.h - a tiny TAP test framework, header only (one test program per
 * file includes it once).
 *
 *   KC_TEST(parses_defaults) {
 *           KC_CHECK(x > 0);
 *           KC_CHECK_STREQ(s, "abc");
 *           KC_CHECK_INT(n, 3);
 *   }
 *   KC_TEST_MAIN()
 *
 * Output is plain TAP on stdout: "ok N - name" / "not ok N - name", each
 * failed check on a "# file:line: ..." line before its result, and the
 * plan "1..N" at the end.  Checks do not abort the test; they evaluate to
 * true when they pass, so `if (!KC_CHECK(p)) return;` guards what follows.
 * Tests run in source order.  Exit status 1 if any test failed.
 *
 * Tests discovered at run time (one per golden file) use
 * kc_test_begin(name) ... kc_test_end() from a custom main() that calls
 * kc_test_run_registered() and returns kc_test_finish().
 */
#pragma once

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KC_TEST_MAX 512

struct kc_test_reg {
	const char *name;
	void (*fn)(void);
	int line;
};

static struct kc_test_state {
	struct kc_test_reg reg[KC_TEST_MAX];
	size_t n_reg;
	unsigned n_run;
	unsigned n_failed;
	bool cur_failed;
	const char *cur_name;
} kc_test_state;

/* Prints a diagnostic, one "# " line per line of text. */
__attribute__((format(printf, 1, 2), unused)) static void kc_test_diag(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (char *line = buf, *nl; line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (nl && !*nl)
			nl = NULL;
		printf("# %s\n", line);
	}
	fflush(stdout);
}

__attribute__((unused)) static void kc_test_register(const char *name, void (*fn)(void), int line)
{
	struct kc_test_state *s = &kc_test_state;

	if (s->n_reg == KC_TEST_MAX) {
		fprintf(stderr, "kctest: more than %d tests\n", KC_TEST_MAX);
		abort();
	}
	s->reg[s->n_reg++] = (struct kc_test_reg){name, fn, line};
}

__attribute__((unused)) static void kc_test_begin(const char *name)
{
	kc_test_state.cur_name = name;
	kc_test_state.cur_failed = false;
}

__attribute__((unused)) static void kc_test_end(void)
{
	struct kc_test_state *s = &kc_test_state;

	s->n_run++;
	if (s->cur_failed)
		s->n_failed++;
	printf("%s %u - %s\n", s->cur_failed ? "not ok" : "ok", s->n_run, s->cur_name);
	fflush(stdout);
}

/* Marks the current test failed. */
__attribute__((format(printf, 3, 4), unused)) static void kc_test_fail(const char *file, int line,
								       const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kc_test_state.cur_failed = true;
	kc_test_diag("%s:%d: %s", file, line, buf);
}

__attribute__((unused)) static bool kc_test_check(bool ok, const char *file, int line,
						  const char *expr)
{
	if (!ok)
		kc_test_fail(file, line, "check failed: %s", expr);
	return ok;
}

__attribute__((unused)) static bool kc_test_check_streq(const char *a, const char *b,
							const char *file, int line, const char *ea,
							const char *eb)
{
	if ((!a && !b) || (a && b && strcmp(a, b) == 0))
		return true;
	kc_test_fail(file, line, "%s == %s: \"%s\" != \"%s\"", ea, eb, a ? a : "(null)",
		     b ? b : "(null)");
	return false;
}

__attribute__((unused)) static bool kc_test_check_int(long long a, long long b, const char *file,
						      int line, const char *ea, const char *eb)
{
	if (a == b)
		return true;
	kc_test_fail(file, line, "%s == %s: %lld != %lld", ea, eb, a, b);
	return false;
}

__attribute__((unused)) static int kc_test_cmp_line(const void *a, const void *b)
{
	return ((const struct kc_test_reg *)a)->line - ((const struct kc_test_reg *)b)->line;
}

/* Runs the KC_TEST() functions in source order. */
__attribute__((unused)) static void kc_test_run_registered(void)
{
	struct kc_test_state *s = &kc_test_state;

	qsort(s->reg, s->n_reg, sizeof(s->reg[0]), kc_test_cmp_line);
	for (size_t i = 0; i < s->n_reg; i++) {
		kc_test_begin(s->reg[i].name);
		s->reg[i].fn();
		kc_test_end();
	}
}

/* Prints the plan; returns the exit status. */
__attribute__((unused)) static int kc_test_finish(void)
{
	printf("1..%u\n", kc_test_state.n_run);
	fflush(stdout);
	return kc_test_state.n_failed ? 1 : 0;
}

#define KC_TEST(name)                                                                              \
	static void kc_test_fn_##name(void);                                                       \
	__attribute__((constructor)) static void kc_test_reg_##name(void)                          \
	{                                                                                          \
		kc_test_register(#name, kc_test_fn_##name, __LINE__);                              \
	}                                                                                          \
	static void kc_test_fn_##name(void)

#define KC_CHECK(cond)	     kc_test_check(!!(cond), __FILE__, __LINE__, #cond)
#define KC_CHECK_STREQ(a, b) kc_test_check_streq((a), (b), __FILE__, __LINE__, #a, #b)
#define KC_CHECK_INT(a, b)                                                                         \
	kc_test_check_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)

#define KC_TEST_MAIN()                                                                             \
	int main(void)                                                                             \
	{                                                                                          \
		kc_test_run_registered();                                                          \
		return kc_test_finish();                                                           \
	}
