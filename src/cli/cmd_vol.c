/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_vol.c - the volume verbs (docs/cli.md): create, list, show, resize,
 * delete, attach, detach, upload (a local file in 1 MiB chunks with a
 * progress bar) and download (streamed to a file with a progress bar).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "http.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

#define CHUNK (1024 * 1024)

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long num(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void print_vols(FILE *out, const json_t *a)
{
	size_t i;
	json_t *v;

	fprintf(out, "%-24s %-12s %-12s %-6s %14s %-10s %-16s %s\n", "NAME", "POOL", "HOST",
		"FORMAT", "CAPACITY", "STATE", "ATTACHED", "TARGET");
	json_array_foreach(json_object_get(a, "volumes"), i, v)
	{
		fprintf(out, "%-24s %-12s %-12s %-6s %14lld %-10s %-16s %s\n", str(v, "name"),
			str(v, "pool"), str(v, "host"), str(v, "format"), num(v, "capacity_bytes"),
			str(v, "state"), str(v, "attached_to"), str(v, "target"));
	}
}

static void print_vol(FILE *out, const json_t *v)
{
	static const char *const keys[] = {"name",   "pool",  "host",  "format",    "attached_to",
					   "target", "owner", "state", "created_at"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(keys); i++) {
		const json_t *x = json_object_get(v, keys[i]);
		if (json_is_string(x)) {
			fprintf(out, "%-15s ", keys[i]);
			kc_fmt_safe(out, json_string_value(x));
			fputc('\n', out);
		}
	}
	fprintf(out, "%-15s %lld (%.2f GiB)\n", "capacity_bytes", num(v, "capacity_bytes"),
		num(v, "capacity_bytes") / 1073741824.0);
	const json_t *up = json_object_get(v, "upload");
	if (up)
		fprintf(out, "%-15s %lld of %lld bytes\n", "upload", num(up, "received_bytes"),
			num(up, "size_bytes"));
}

static void print_deleted(FILE *out, const json_t *a)
{
	fputs("deleted ", out);
	kc_fmt_safe(out, str(a, "deleted"));
	fputc('\n', out);
}

static void print_attached(FILE *out, const json_t *v)
{
	fputs("volume ", out);
	kc_fmt_safe(out, str(v, "name"));
	if (json_is_string(json_object_get(v, "attached_to"))) {
		fputs(" attached to ", out);
		kc_fmt_safe(out, str(v, "attached_to"));
		fprintf(out, " as %s%s\n", str(v, "target"),
			json_is_true(json_object_get(v, "live")) ? " (live)" : "");
	} else {
		fputs(" detached\n", out);
	}
}

static void print_resized(FILE *out, const json_t *v)
{
	fputs("volume ", out);
	kc_fmt_safe(out, str(v, "name"));
	fprintf(out, " is %lld bytes%s\n", num(v, "capacity_bytes"),
		json_is_true(json_object_get(v, "live")) ? " (the running VM sees it now)" : "");
}

static char *vol_path(const char *name, const char *suffix, struct kc_error *err)
{
	return kc_req_path("volumes", name, suffix, "volume name", err);
}

int kc_cmd_vol_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/volumes", NULL, 0, print_vols);
}

int kc_cmd_vol_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = vol_path(a->pos[0], NULL, &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_vol);
}

int kc_cmd_vol_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = vol_path(a->pos[0], NULL, &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_deleted);
}

/* "10G", "512M", "1T", "4096" (bytes) or "4096B" -> {"size_bytes": N};
 * "10" alone with --gib semantics is not guessed: a bare number is bytes
 * as virsh vol-create-as takes it. */
static int parse_size(const char *s, json_t *body, struct kc_error *err)
{
	unsigned long long n = 0, mul = 1;
	size_t len = s ? strlen(s) : 0;
	char digits[32];

	if (len == 0 || len >= sizeof(digits))
		return kc_error_set(err, KC_ERR_INVALID, "--size is required (e.g. 10G, 512M)");
	memcpy(digits, s, len + 1);
	switch (digits[len - 1]) {
	case 'T':
	case 't':
		mul = 1ULL << 40;
		break;
	case 'G':
	case 'g':
		mul = 1ULL << 30;
		break;
	case 'M':
	case 'm':
		mul = 1ULL << 20;
		break;
	case 'K':
	case 'k':
		mul = 1ULL << 10;
		break;
	case 'B':
	case 'b':
		break;
	default:
		len++;
		break;
	}
	digits[len - 1] = '\0';
	if (kc_parse_uint(digits, 0, (1ULL << 50), "--size", &n, err) < 0)
		return -1;
	if (n > (1ULL << 50) / mul)
		return kc_error_set(err, KC_ERR_INVALID, "--size %s is too large", s);
	json_object_set_new(body, "size_bytes", json_integer((json_int_t)(n * mul)));
	return 0;
}

int kc_cmd_vol_create(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *body = json_pack("{s:s}", "name", a->pos[0]);
	const char *pool = kc_args_value(a, "pool"), *format = kc_args_value(a, "format");
	const char *host = kc_args_value(a, "host");

	if (!body || kc_name_validate(a->pos[0], "volume name", &err) < 0 ||
	    parse_size(kc_args_value(a, "size"), body, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	if (pool)
		json_object_set_new(body, "pool", json_string(pool));
	if (format)
		json_object_set_new(body, "format", json_string(format));
	if (host)
		json_object_set_new(body, "host", json_string(host));
	return kc_cli_request(cli, "POST", "/api/v1/volumes", body, 0, print_vol);
}

int kc_cmd_vol_resize(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *body = json_object();
	_cleanup_free_ char *path = vol_path(a->pos[0], "/resize", &err);
	if (!path || !body || parse_size(a->pos[1], body, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "POST", path, body, 0, print_resized);
}

int kc_cmd_vol_attach(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *body = json_pack("{s:s}", "vm", a->pos[1]);
	_cleanup_free_ char *path = vol_path(a->pos[0], "/attach", &err);
	if (!path || kc_name_validate(a->pos[1], "VM name", &err) < 0)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "POST", path, body, 0, print_attached);
}

int kc_cmd_vol_detach(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = vol_path(a->pos[0], "/detach", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "POST", path, NULL, 0, print_attached);
}

/* ---- progress ---- */

struct bar {
	const char *what;
	bool tty;
	double t0;
	int last_pct;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bar_draw(unsigned long long done, unsigned long long total, void *opaque)
{
	struct bar *b = opaque;
	double dt = now_s() - b->t0;
	int pct = total ? (int)(100.0 * done / total) : 0, w = pct / 4;
	bool end = total && done >= total;
	/* Not a terminal: the end line only, so logs stay readable. */
	if ((!b->tty && !end) || (b->tty && pct == b->last_pct && !end))
		return;
	b->last_pct = pct;
	fprintf(stderr, "%s%s [%.*s%*s] %3d%% %8.1f MiB %6.1f MB/s%s", b->tty ? "\r" : "", b->what,
		w, "#########################", 25 - w, "", pct, done / 1048576.0,
		dt > 0 ? done / 1e6 / dt : 0.0, end ? "\n" : "");
	fflush(stderr);
}

int kc_cmd_vol_upload(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	struct stat st;
	_cleanup_free_ char *data = vol_path(a->pos[0], "/data", &err);
	if (!data)
		return kc_cli_fail(cli, &err, true);
	_cleanup_close_ int fd = open(a->pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		kc_error_set(&err, KC_ERR_INVALID, "%s: not a readable, non-empty file", a->pos[1]);
		return kc_cli_fail(cli, &err, false);
	}
	struct kc_client *c = kc_cli_client(cli, &err);
	_cleanup_free_ char *buf = malloc(CHUNK);
	if (!c || !buf)
		return kc_cli_fail(cli, &err, false);
	struct bar b = {
		.what = "upload", .tty = isatty(STDERR_FILENO), .t0 = now_s(), .last_pct = -1};
	unsigned long long off = 0, total = (unsigned long long)st.st_size;
	_cleanup_json_ json_t *last = NULL;
	while (off < total) {
		ssize_t n = pread(fd, buf, CHUNK, (off_t)off);
		if (n <= 0) {
			kc_error_set_errno(&err, KC_ERR_INVALID, n < 0 ? errno : EIO,
					   "cannot read %s", a->pos[1]);
			return kc_cli_fail(cli, &err, false);
		}
		char path[512];
		snprintf(path, sizeof(path), "%s?offset=%llu&size=%llu", data, off, total);
		struct kc_http_response resp;
		if (kc_http_request_bytes(c, "PUT", path, buf, (size_t)n, &resp, &err) < 0)
			return kc_cli_fail(cli, &err, false);
		int bad = kc_http_check_status(&resp, &err);
		json_decref(last);
		last = bad < 0 ? NULL : json_loadb(resp.body, resp.len, 0, NULL);
		kc_http_response_clear(&resp);
		if (bad < 0) {
			if (b.tty && off)
				fputc('\n', stderr);
			return kc_cli_fail(cli, &err, false);
		}
		off += (unsigned long long)n;
		bar_draw(off, total, &b);
	}
	if (cli->json) {
		kc_fmt_json(cli->out, last);
	} else {
		fputs("uploaded ", cli->out);
		kc_fmt_safe(cli->out, a->pos[1]);
		fprintf(cli->out, " (%llu bytes) to volume ", total);
		kc_fmt_safe(cli->out, a->pos[0]);
		fputc('\n', cli->out);
	}
	return KC_EXIT_OK;
}

int kc_cmd_vol_download(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *data = vol_path(a->pos[0], "/data", &err);
	if (!data)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	/* A new file only: never over something that exists. */
	_cleanup_close_ int fd =
		open(a->pos[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		kc_error_set_errno(&err, KC_ERR_INVALID, errno, "cannot create %s", a->pos[1]);
		return kc_cli_fail(cli, &err, false);
	}
	struct bar b = {
		.what = "download", .tty = isatty(STDERR_FILENO), .t0 = now_s(), .last_pct = -1};
	unsigned long long got = 0;
	kc_client_set_timeout(c, 0); /* large volumes: no overall limit */
	if (kc_http_download(c, data, fd, bar_draw, &b, &got, &err) < 0 || fsync(fd) < 0) {
		if (!kc_error_is_set(&err))
			kc_error_set_errno(&err, KC_ERR_INTERNAL, errno, "cannot write %s",
					   a->pos[1]);
		unlink(a->pos[1]);
		return kc_cli_fail(cli, &err, false);
	}
	fputs("downloaded volume ", cli->out);
	kc_fmt_safe(cli->out, a->pos[0]);
	fprintf(cli->out, " (%llu bytes) to ", got);
	kc_fmt_safe(cli->out, a->pos[1]);
	fputc('\n', cli->out);
	return KC_EXIT_OK;
}
