/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_job.c - the long verbs as jobs, and "job show" / "job list".
 *
 * A long verb (vm create, start, shutdown, reboot, destroy, delete) is
 * always sent asynchronously with an Idempotency-Key made for this
 * invocation, then followed through GET /api/v1/jobs/{id}: so a dropped
 * connection can be retried once with the same key without making a
 * second VM, and the user sees progress.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "http.h"
#include "json_util.h"
#include "request.h"

/* How long the CLI follows a job: shutdown may wait up to an hour. */
#define FOLLOW_MAX_S 3900
#define POLL_MS	     500

static int make_key(char key[static 40], struct kc_error *err)
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		return kc_error_set(err, KC_ERR_INTERNAL, "no random bytes for an idempotency key");
	memcpy(key, "cli-", 4);
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(key + 4 + 2 * i, 3, "%02x", r[i]);
	return 0;
}

static void progress(const json_t *job, bool tty, int *last)
{
	const char *id = json_string_value(json_object_get(job, "id"));
	const char *state = json_string_value(json_object_get(job, "state"));
	int pct = (int)json_integer_value(json_object_get(job, "progress"));

	if (!id || !state)
		return;
	if (tty) {
		char bar[21];
		int n = pct / 5;
		for (int i = 0; i < 20; i++)
			bar[i] = i < n ? '#' : '-';
		bar[20] = '\0';
		fprintf(stderr, "\rjob %.8s [%s] %3d%% %-9s", id, bar, pct, state);
	} else if (pct != *last) {
		fprintf(stderr, "job %s: %d%% %s\n", id, pct, state);
	}
	*last = pct;
}

/* Follows job `id` to its end; *ret the job. */
static int follow(struct kc_client *c, const char *id, json_t **ret, struct kc_error *err)
{
	char path[96];
	bool tty = isatty(STDERR_FILENO);
	int last = -1, failures = 0;
	time_t start = time(NULL);

	snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
	kc_client_set_timeout(c, 30);
	for (;;) {
		_cleanup_json_ json_t *job = NULL;
		struct kc_error e = {0};
		if (kc_api_call(c, "GET", path, NULL, &job, &e) < 0) {
			/* The job goes on without us: ride out a short outage. */
			if (e.code != KC_ERR_UNAVAILABLE || ++failures > 3) {
				*err = e;
				goto out;
			}
		} else {
			failures = 0;
			progress(job, tty, &last);
			const char *st = json_string_value(json_object_get(job, "state"));
			if (st && (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0)) {
				*ret = steal_ptr(&job);
				if (tty)
					fputc('\n', stderr);
				return 0;
			}
		}
		if (time(NULL) - start > FOLLOW_MAX_S) {
			kc_error_set(err, KC_ERR_TIMEOUT, "job %s is still running", id);
			goto out;
		}
		nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
	}
out:
	if (tty && last >= 0)
		fputc('\n', stderr);
	return -1;
}

int kc_cli_job_request(struct kc_cli *cli, const struct kc_args *a, const char *method,
		       const char *path, const json_t *body,
		       void (*print)(FILE *out, const json_t *answer))
{
	struct kc_error err = {0};
	char key[40], header[64];
	_cleanup_free_ char *apath = NULL;
	_cleanup_json_ json_t *answer = NULL;
	_cleanup_json_ json_t *end = NULL;

	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	if (make_key(key, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	snprintf(header, sizeof(header), "Idempotency-Key: %s", key);
	if (kc_client_set_header(c, header) < 0 ||
	    asprintf(&apath, "%s%casync=true", path, strchr(path, '?') ? '&' : '?') < 0) {
		kc_error_set(&err, KC_ERR_INTERNAL, "out of memory");
		return kc_cli_fail(cli, &err, false);
	}
	kc_client_set_timeout(c, 60);
	if (kc_api_call(c, method, apath, body, &answer, &err) < 0) {
		/* No answer at all: it may or may not have arrived; the same
		 * key makes asking again safe. */
		if (err.code != KC_ERR_UNAVAILABLE)
			return kc_cli_fail(cli, &err, false);
		kc_error_clear(&err);
		if (kc_api_call(c, method, apath, body, &answer, &err) < 0)
			return kc_cli_fail(cli, &err, false);
	}
	kc_client_set_header(c, NULL);
	const json_t *job = json_object_get(answer, "job");
	const char *id = json_string_value(json_object_get(job, "id"));
	if (!id) {
		kc_error_set(&err, KC_ERR_INTERNAL, "the server answered without a job");
		return kc_cli_fail(cli, &err, false);
	}
	if (kc_args_has(a, "async")) {
		if (cli->json)
			kc_fmt_json(cli->out, job);
		else
			fprintf(cli->out, "%s\n", id);
		return KC_EXIT_OK;
	}
	if (follow(c, id, &end, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	const json_t *result = json_object_get(end, "result");
	if (strcmp(json_string_value(json_object_get(end, "state")), "failed") == 0) {
		const json_t *e = json_object_get(end, "error");
		const char *code = json_string_value(json_object_get(e, "code"));
		const char *msg = json_string_value(json_object_get(e, "message"));
		kc_error_set(&err, code ? kc_errcode_from_name(code) : KC_ERR_INTERNAL, "%s",
			     msg ? msg : "the job failed");
		return kc_cli_fail(cli, &err, false);
	}
	if (cli->json)
		kc_fmt_json(cli->out, result);
	else
		print(cli->out, result);
	return KC_EXIT_OK;
}

static void print_job(FILE *out, const json_t *job)
{
	static const char *const keys[] = {"id",	 "kind",   "target",	 "state",
					   "progress",	 "owner",  "worker",	 "created_at",
					   "updated_at", NULL};
	for (size_t i = 0; keys[i]; i++) {
		const json_t *v = json_object_get(job, keys[i]);
		fprintf(out, "%-11s ", keys[i]);
		if (json_is_integer(v))
			fprintf(out, "%lld", (long long)json_integer_value(v));
		else
			kc_fmt_safe(out, json_is_string(v) ? json_string_value(v) : "-");
		fputc('\n', out);
	}
	const json_t *e = json_object_get(job, "error");
	if (json_is_object(e)) {
		fputs("error       ", out);
		kc_fmt_safe(out, json_string_value(json_object_get(e, "code")));
		fputs(": ", out);
		kc_fmt_safe(out, json_string_value(json_object_get(e, "message")));
		fputc('\n', out);
	}
}

static void print_jobs(FILE *out, const json_t *answer)
{
	size_t i;
	json_t *j;

	fprintf(out, "%-36s  %-12s  %-20s  %-9s  %4s  %s\n", "ID", "KIND", "TARGET", "STATE", "%",
		"CREATED");
	json_array_foreach(json_object_get(answer, "jobs"), i, j)
	{
		const char *t = json_string_value(json_object_get(j, "target"));
		fprintf(out, "%-36s  %-12s  ", json_string_value(json_object_get(j, "id")),
			json_string_value(json_object_get(j, "kind")));
		kc_fmt_safe(out, t ? t : "-");
		fprintf(out, "%*s  %-9s  %4lld  %s\n", (int)(t && strlen(t) < 20 ? 20 - strlen(t) : 0),
			"", json_string_value(json_object_get(j, "state")),
			(long long)json_integer_value(json_object_get(j, "progress")),
			json_string_value(json_object_get(j, "created_at")));
	}
}

int kc_cmd_job_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("jobs", a->pos[0], NULL, "job id", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_job);
}

int kc_cmd_job_list(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	unsigned long long limit = 20;
	char path[64];
	const char *l = kc_args_value(a, "limit");

	if (l && kc_parse_uint(l, 1, 1000, "--limit", &limit, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	snprintf(path, sizeof(path), "/api/v1/jobs?limit=%llu", limit);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_jobs);
}
