/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_dist.c - library images onto hosts (images.h): image.ensure asks
 * the host whether its cache holds the image with the record's SHA-256;
 * if not, the host hands out one upload lease and this server sends the
 * file in image.put chunks over the host's normal link, then image.commit,
 * where the host checks size, SHA-256 and content again before the file
 * takes its name.  Another create waiting on the same image is told
 * "busy" and polls until the first copy is in.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "db_images.h"
#include "hostlink.h"
#include "images.h"
#include "json_util.h"
#include "server.h"

/* How long a create waits for another's copy of the same image. */
#define BUSY_WAIT_S 900

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int send_file(struct kc_server *srv, const char *host, const json_t *row, const char *token,
		     struct kc_error *err)
{
	const char *name = json_string_value(json_object_get(row, "name"));
	const char *format = json_string_value(json_object_get(row, "format"));
	_cleanup_free_ char *path = kc_image_store_path(srv, name, format, false, err);
	_cleanup_free_ unsigned char *buf = malloc(KC_IMAGE_CHUNK_MAX);
	size_t b64_len =
		sodium_base64_ENCODED_LEN(KC_IMAGE_CHUNK_MAX, sodium_base64_VARIANT_ORIGINAL);
	_cleanup_free_ char *b64 = malloc(b64_len);
	uint64_t off = 0;
	double t0 = now_s();

	if (!path)
		return -1;
	if (!buf || !b64)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
					  "image \"%s\" is missing from the store", name);
	for (;;) {
		ssize_t n = pread(fd, buf, KC_IMAGE_CHUNK_MAX, (off_t)off);
		if (n < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read image");
		if (n == 0)
			break;
		sodium_bin2base64(b64, b64_len, buf, (size_t)n, sodium_base64_VARIANT_ORIGINAL);
		_cleanup_json_ json_t *args =
			json_pack("{s:s,s:s,s:s,s:I,s:s}", "name", name, "format", format, "token",
				  token, "offset", (json_int_t)off, "data", b64);
		_cleanup_json_ json_t *res = NULL;
		if (!args)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		if (kc_host_call(srv, host, "image.put", args, &res, err) < 0)
			return -1;
		off += (uint64_t)n;
	}
	_cleanup_json_ json_t *cargs =
		json_pack("{s:s,s:s,s:s}", "name", name, "format", format, "token", token);
	_cleanup_json_ json_t *res = NULL;
	if (kc_host_call(srv, host, "image.commit", cargs, &res, err) < 0)
		return -1;
	double dt = now_s() - t0;
	fprintf(stderr, "image %s copied to host %s: %.1f MiB in %.2f s (%.1f MB/s)\n", name, host,
		off / 1048576.0, dt, dt > 0 ? off / 1e6 / dt : 0.0);
	return 0;
}

/* An upload that failed half-way: commit with the data missing drops the
 * host's lease and part file, so that the next create starts afresh. */
static void cancel(struct kc_server *srv, const char *host, const json_t *row, const char *token)
{
	_cleanup_json_ json_t *args =
		json_pack("{s:O,s:O,s:s}", "name", json_object_get(row, "name"), "format",
			  json_object_get(row, "format"), "token", token);
	_cleanup_json_ json_t *res = NULL;
	struct kc_error e = {0};

	if (args)
		kc_host_call(srv, host, "image.commit", args, &res, &e);
	kc_error_clear(&e);
}

static int ensure_one(struct kc_server *srv, const char *host, const char *name, bool want_iso,
		      struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	struct kc_error e = {0};

	if (kc_db_image_get(srv->db, name, &row, &e) < 0) {
		if (e.code == KC_ERR_NOT_FOUND)
			return 0; /* not a library image: the host's own file, as before */
		*err = e;
		return -1;
	}
	const char *state = json_string_value(json_object_get(row, "state"));
	const char *kind = json_string_value(json_object_get(row, "kind"));
	const char *format = json_string_value(json_object_get(row, "format"));
	if (!state || strcmp(state, "ready") != 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "image \"%s\" is not ready (%s)", name,
				    state ? state : "?");
	if (want_iso != (kind && strcmp(kind, "iso") == 0))
		return kc_error_set(err, KC_ERR_INVALID, "image \"%s\" is %s, not %s", name,
				    want_iso ? "a template" : "an ISO",
				    want_iso ? "an ISO" : "a template");
	if (!want_iso && strcmp(format, "qcow2") != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "image \"%s\" is a %s template; VMs are made from qcow2 "
				    "templates (convert it with qemu-img convert -O qcow2)",
				    name, format);
	_cleanup_json_ json_t *args = json_pack(
		"{s:O,s:O,s:O,s:O,s:O}", "name", json_object_get(row, "name"), "kind",
		json_object_get(row, "kind"), "format", json_object_get(row, "format"), "sha256",
		json_object_get(row, "sha256"), "size", json_object_get(row, "size_bytes"));
	if (!args)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	for (double t0 = now_s();;) {
		_cleanup_json_ json_t *res = NULL;
		if (kc_host_call(srv, host, "image.ensure", args, &res, err) < 0)
			return -1;
		if (json_is_true(json_object_get(res, "present")))
			return 0;
		const char *token = json_string_value(json_object_get(res, "token"));
		if (token) {
			if (send_file(srv, host, row, token, err) == 0)
				return 0;
			cancel(srv, host, row, token);
			return -1;
		}
		if (now_s() - t0 > BUSY_WAIT_S)
			return kc_error_set(err, KC_ERR_TIMEOUT,
					    "host %s is still receiving image \"%s\"", host, name);
		usleep(250000);
	}
}

int kc_images_ensure_for_vm(struct kc_server *srv, const char *host, const json_t *request,
			    struct kc_error *err)
{
	const char *image = json_string_value(json_object_get(request, "image"));
	const char *iso = json_string_value(json_object_get(request, "iso"));

	if (image && image[0] && ensure_one(srv, host, image, false, err) < 0)
		return -1;
	if (iso && iso[0] && ensure_one(srv, host, iso, true, err) < 0)
		return -1;
	return 0;
}
