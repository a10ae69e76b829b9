/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_image.c - the image library verbs (docs/cli.md): list, show,
 * register (from a URL, a job), upload (a local file in 1 MiB chunks with
 * a progress bar, then commit with the file's SHA-256), delete.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

#define CHUNK (1024 * 1024)

static long long num(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static void print_images(FILE *out, const json_t *a)
{
	size_t i;
	json_t *m;

	fprintf(out, "%-24s %-8s %-6s %-12s %12s %12s %-11s %s\n", "NAME", "KIND", "FORMAT", "OS",
		"SIZE", "VIRTUAL", "STATE", "SHA256");
	json_array_foreach(json_object_get(a, "images"), i, m)
	{
		fprintf(out, "%-24s %-8s %-6s %-12s %12lld %12lld %-11s %.12s\n", str(m, "name"),
			str(m, "kind"), str(m, "format"), str(m, "os_type"), num(m, "size_bytes"),
			num(m, "virtual_size_bytes"), str(m, "state"), str(m, "sha256"));
	}
}

static void print_image(FILE *out, const json_t *m)
{
	static const char *const keys[] = {"name",   "kind",  "format", "os_type", "source",
					   "sha256", "state", "error",	"owner",   "created_at"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(keys); i++) {
		const json_t *v = json_object_get(m, keys[i]);
		if (json_is_string(v)) {
			fprintf(out, "%-19s ", keys[i]);
			kc_fmt_safe(out, json_string_value(v));
			fputc('\n', out);
		}
	}
	fprintf(out, "%-19s %lld\n%-19s %lld\n", "size_bytes", num(m, "size_bytes"),
		"virtual_size_bytes", num(m, "virtual_size_bytes"));
}

int kc_cmd_image_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/images", NULL, 0, print_images);
}

int kc_cmd_image_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("images", a->pos[0], NULL, "image name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_image);
}

static void print_deleted(FILE *out, const json_t *a)
{
	json_t *c = json_object_get(a, "cleanup");
	size_t i;
	json_t *h;

	fputs("deleted ", out);
	kc_fmt_safe(out, json_string_value(json_object_get(a, "deleted")));
	fputc('\n', out);
	kc_cli_print_cleanup(out, json_object_get(c, "hosts"), false);
	json_array_foreach(json_object_get(c, "not_reached"), i, h)
	{
		fputs("host ", out);
		kc_fmt_safe(out, json_string_value(h));
		fputs(": not reached, its copies stay until pool prune\n", out);
	}
}

int kc_cmd_image_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("images", a->pos[0], NULL, "image name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_deleted);
}

/* {"name","kind","format","os_type"} from the arguments; kind defaults to
 * template, or iso for format iso. */
static json_t *base_body(const struct kc_args *a, struct kc_error *err)
{
	const char *format = kc_args_value(a, "format"), *kind = kc_args_value(a, "kind");
	const char *os = kc_args_value(a, "os-type");

	if (kc_name_validate(a->pos[0], "image name", err) < 0)
		return NULL;
	if (!format) {
		kc_error_set(err, KC_ERR_INVALID, "--format qcow2|raw|iso is required");
		return NULL;
	}
	if (!kind)
		kind = strcmp(format, "iso") == 0 ? "iso" : "template";
	json_t *b = json_pack("{s:s,s:s,s:s}", "name", a->pos[0], "kind", kind, "format", format);
	if (b && os)
		json_object_set_new(b, "os_type", json_string(os));
	const char *sha = kc_args_value(a, "sha256");
	if (b && sha)
		json_object_set_new(b, "sha256", json_string(sha));
	return b;
}

static void print_registered(FILE *out, const json_t *m)
{
	fputs("image ", out);
	kc_fmt_safe(out, str(m, "name"));
	fprintf(out, " %s (%lld bytes, sha256 %s)\n", str(m, "state"), num(m, "size_bytes"),
		str(m, "sha256"));
}

int kc_cmd_image_register(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *body = base_body(a, &err);
	if (!body)
		return kc_cli_fail(cli, &err, true);
	json_object_set_new(body, "url", json_string(a->pos[1]));
	if (!kc_args_value(a, "sha256")) {
		kc_error_set(&err, KC_ERR_INVALID, "--sha256 is required with a URL");
		return kc_cli_fail(cli, &err, true);
	}
	return kc_cli_job_request(cli, a, "POST", "/api/v1/images", body, print_registered);
}

static int sha256_file(int fd, char hex[65], struct kc_error *err)
{
	gnutls_hash_hd_t h;
	unsigned char md[32];
	_cleanup_free_ char *buf = malloc(CHUNK);
	ssize_t n;

	if (!buf || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot hash");
	while ((n = read(fd, buf, CHUNK)) > 0)
		gnutls_hash(h, buf, (size_t)n);
	gnutls_hash_deinit(h, md);
	if (n < 0)
		return kc_error_set_errno(err, KC_ERR_INVALID, errno, "cannot read the file");
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static void bar(bool tty, unsigned long long done, unsigned long long total, double t0)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double dt = ts.tv_sec + ts.tv_nsec / 1e9 - t0;
	int pct = total ? (int)(100.0 * done / total) : 100, w = pct / 4;
	if (!tty && done != total)
		return;
	fprintf(stderr, "%supload [%.*s%*s] %3d%% %6.1f MiB %6.1f MB/s%s", tty ? "\r" : "", w,
		"#########################", 25 - w, "", pct, done / 1048576.0,
		dt > 0 ? done / 1e6 / dt : 0.0, done == total ? "\n" : "");
	fflush(stderr);
}

int kc_cmd_image_upload(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	struct stat st;
	char hex[65];
	_cleanup_json_ json_t *body = base_body(a, &err);
	if (!body)
		return kc_cli_fail(cli, &err, true);
	_cleanup_close_ int fd = open(a->pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		kc_error_set(&err, KC_ERR_INVALID, "%s: not a readable, non-empty file", a->pos[1]);
		return kc_cli_fail(cli, &err, false);
	}
	/* The local file's hash travels with the commit: the server checks
	 * that what it stored is what was read here. */
	if (sha256_file(fd, hex, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	const char *given = kc_args_value(a, "sha256");
	if (given && strcmp(given, hex) != 0) {
		kc_error_set(&err, KC_ERR_INVALID, "%s has sha256 %s, not the given %s", a->pos[1],
			     hex, given);
		return kc_cli_fail(cli, &err, false);
	}
	json_object_set_new(body, "sha256", json_string(hex));
	json_object_set_new(body, "size_bytes", json_integer((json_int_t)st.st_size));
	struct kc_client *c = kc_cli_client(cli, &err);
	_cleanup_json_ json_t *created = NULL;
	if (!c || kc_api_call(c, "POST", "/api/v1/images", body, &created, &err) < 0)
		return kc_cli_fail(cli, &err, false);

	_cleanup_free_ char *buf = malloc(CHUNK);
	_cleanup_free_ char *data = kc_req_path("images", a->pos[0], "/data", "image name", &err);
	_cleanup_free_ char *commit =
		kc_req_path("images", a->pos[0], "/commit", "image name", &err);
	if (!buf || !data || !commit)
		return kc_cli_fail(cli, &err, false);
	bool tty = isatty(STDERR_FILENO);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double t0 = ts.tv_sec + ts.tv_nsec / 1e9;
	unsigned long long off = 0, total = (unsigned long long)st.st_size;
	while (off < total) {
		ssize_t n = pread(fd, buf, CHUNK, (off_t)off);
		if (n <= 0) {
			kc_error_set_errno(&err, KC_ERR_INVALID, n < 0 ? errno : EIO,
					   "cannot read %s", a->pos[1]);
			return kc_cli_fail(cli, &err, false);
		}
		char path[512];
		snprintf(path, sizeof(path), "%s?offset=%llu", data, off);
		struct kc_http_response resp;
		if (kc_http_request_bytes(c, "PUT", path, buf, (size_t)n, &resp, &err) < 0)
			return kc_cli_fail(cli, &err, false);
		int bad = kc_http_check_status(&resp, &err);
		kc_http_response_clear(&resp);
		if (bad < 0)
			return kc_cli_fail(cli, &err, false);
		off += (unsigned long long)n;
		bar(tty, off, total, t0);
	}
	_cleanup_json_ json_t *cbody = json_pack("{s:s}", "sha256", hex);
	return kc_cli_request(cli, "POST", commit, cbody, 0, print_registered);
}
