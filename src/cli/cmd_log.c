/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "vm log": the serial console log, read by offset.  Following polls every
 * 300 ms; --until stops at the first line (of what this command printed)
 * that matches; --timeout bounds the wait.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cleanup.h"
#include "request.h"
#include "until.h"

#define POLL_MS	    300
#define PAGE_MAX    (1024 * 1024)
#define TIMEOUT_MAX 604800ULL	     /* a week */
#define TAIL_MAX    (1024ULL * 1024) /* the API's bound for ?tail= */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void until_freep(struct kc_until *u)
{
	kc_until_free(u);
}

/* One GET .../log; prints what came; *offset becomes X-Log-Next-Offset. */
static int fetch(struct kc_cli *cli, const char *base, const char *query, bool print,
		 long long *offset, long long *size, struct kc_until *until, bool *matched,
		 struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s%s", base, query) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	struct kc_http_response resp;
	if (kc_http_request(cli->client, "GET", path, NULL, &resp, err) < 0)
		return -1;
	if (kc_http_check_status(&resp, err) < 0) {
		kc_http_response_clear(&resp);
		return -1;
	}
	if (print && resp.len > 0) {
		fwrite(resp.body, 1, resp.len, cli->out);
		fflush(cli->out);
		if (until->compiled && kc_until_feed(until, resp.body, resp.len))
			*matched = true;
	}
	if (resp.log_next_offset >= 0)
		*offset = resp.log_next_offset;
	else
		*offset += (long long)resp.len;
	*size = resp.log_size;
	kc_http_response_clear(&resp);
	return 0;
}

int kc_cmd_vm_log(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *base = kc_req_path("vms", a->pos[0], "/log", "VM name", &err);
	if (!base)
		return kc_cli_fail(cli, &err, true);
	unsigned long long tail = 0, timeout = 0;
	const char *v;
	if ((v = kc_args_value(a, "tail")) &&
	    kc_parse_uint(v, 0, TAIL_MAX, "--tail", &tail, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	if ((v = kc_args_value(a, "timeout")) &&
	    kc_parse_uint(v, 1, TIMEOUT_MAX, "--timeout", &timeout, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	__attribute__((cleanup(until_freep))) struct kc_until until = {0};
	const char *pattern = kc_args_value(a, "until");
	if (pattern && kc_until_init(&until, pattern, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	/* Waiting for a line or for a deadline only makes sense while following. */
	bool follow = kc_args_has(a, "follow") || pattern || timeout;
	double deadline = timeout ? now_s() + (double)timeout : 0;
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	kc_client_set_timeout(c, 60);

	long long offset = 0, size = -1;
	bool matched = false;
	char query[96];
	bool print = true;
	if (kc_args_value(a, "tail") && tail > 0) {
		snprintf(query, sizeof(query), "?tail=%llu", tail);
	} else if (kc_args_value(a, "tail")) {
		/* --tail 0: nothing old, only what comes next.  The API has no
		 * ?tail=0, so learn the size from a one-byte read. */
		snprintf(query, sizeof(query), "?offset=0&max=1");
		print = false;
	} else {
		snprintf(query, sizeof(query), "?offset=0&max=%d", PAGE_MAX);
	}
	if (fetch(cli, base, query, print, &offset, &size, &until, &matched, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	if (!print && size >= 0)
		offset = size;

	/* Without --follow: the rest of the log as it is now, page by page. */
	while (!follow && size >= 0 && offset < size) {
		long long before = offset;
		snprintf(query, sizeof(query), "?offset=%lld&max=%d", offset, PAGE_MAX);
		if (fetch(cli, base, query, true, &offset, &size, &until, &matched, &err) < 0)
			return kc_cli_fail(cli, &err, false);
		if (offset <= before)
			break;
	}
	while (follow && !matched) {
		if (deadline && now_s() >= deadline) {
			if (pattern)
				kc_error_set(
					&err, KC_ERR_TIMEOUT,
					"timed out waiting for /%s/ in the log of %s after %llu s",
					pattern, a->pos[0], timeout);
			else
				kc_error_set(&err, KC_ERR_TIMEOUT,
					     "timed out following the log of %s after %llu s",
					     a->pos[0], timeout);
			return kc_cli_fail(cli, &err, false);
		}
		usleep(POLL_MS * 1000);
		snprintf(query, sizeof(query), "?offset=%lld&max=%d", offset, PAGE_MAX);
		if (fetch(cli, base, query, true, &offset, &size, &until, &matched, &err) < 0)
			return kc_cli_fail(cli, &err, false);
	}
	return KC_EXIT_OK;
}
