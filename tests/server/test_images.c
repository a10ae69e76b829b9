/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_images.c - the image library's routes over real HTTP against an
 * in-process server (test:///default): an upload in chunks (offsets
 * checked, size bounded), a commit with a wrong sha256 that leaves nothing,
 * one that makes the image ready, who sees and who may delete what, and
 * requests refused on their face (file:// URLs, a URL without sha256, a
 * path-traversal name).  Needs qemu-img.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "kctest.h"
#include "srvtest.h"

static struct srvtest S;
static char tok_a[128], tok_b[128];
static char *img;
static size_t img_len;
static char img_sha[65];

static struct srvtest_reply call(const char *method, const char *path, const char *tok,
				 const char *body)
{
	return srvtest_call(&S, method, path, tok, body);
}

static long status_of(const char *method, const char *path, const char *tok, const char *body)
{
	struct srvtest_reply r = call(method, path, tok, body);
	long s = r.status;
	if (s >= 400)
		kc_test_diag("%s %s: %ld %s", method, path, s, r.body ? r.body : "");
	srvtest_reply_clear(&r);
	return s;
}

static long put_chunk(const char *name, const char *tok, size_t off, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/images/%s/data?offset=%zu", name, off);
	struct srvtest_reply r = srvtest_send(&S, &(struct srvtest_req){.method = "PUT",
									.path = path,
									.token = tok,
									.body = img + off,
									.body_len = len});
	long s = r.status;
	srvtest_reply_clear(&r);
	return s;
}

static long begin_upload(const char *name, const char *tok)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"kind\":\"template\",\"format\":\"qcow2\",\"size_bytes\":%zu}",
		 name, img_len);
	return status_of("POST", "/api/v1/images", tok, body);
}

static bool load_image(void)
{
	char cmd[1024], path[300];
	snprintf(path, sizeof(path), "%s/src.qcow2", S.dir);
	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s 4M && sha256sum %s", path, path);
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(img_sha, sizeof(img_sha), p)) {
		if (p)
			pclose(p);
		return false;
	}
	pclose(p);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	img = malloc(1 << 20);
	img_len = fread(img, 1, 1 << 20, f);
	fclose(f);
	return img_len > 0;
}

KC_TEST(an_upload_in_chunks_becomes_ready)
{
	if (!KC_CHECK(load_image()) || !KC_CHECK(srvtest_make_user(&S, "alice", NULL, tok_a)) ||
	    !KC_CHECK(srvtest_make_user(&S, "bob", NULL, tok_b)))
		return;
	KC_CHECK_INT(begin_upload("kcimg-a", tok_a), 201);
	KC_CHECK_INT(begin_upload("kcimg-a", tok_a), 409);
	size_t half = img_len / 2;
	KC_CHECK_INT(put_chunk("kcimg-a", tok_a, 0, half), 200);
	KC_CHECK_INT(put_chunk("kcimg-a", tok_a, 0, half), 409); /* not the next offset */
	KC_CHECK_INT(put_chunk("kcimg-a", tok_b, half, img_len - half), 404); /* not bob's */
	KC_CHECK_INT(put_chunk("kcimg-a", tok_a, half, img_len - half), 200);
	char body[128];
	snprintf(body, sizeof(body), "{\"sha256\":\"%s\"}", img_sha);
	struct srvtest_reply r = call("POST", "/api/v1/images/kcimg-a/commit", tok_a, body);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "state")), "ready");
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "sha256")), img_sha);
	srvtest_reply_clear(&r);
	char path[300];
	snprintf(path, sizeof(path), "%s/images/kcimg-a.qcow2", S.dir);
	KC_CHECK(access(path, F_OK) == 0);
}

KC_TEST(a_commit_with_a_wrong_sha256_leaves_nothing)
{
	KC_CHECK_INT(begin_upload("kcimg-bad", tok_a), 201);
	KC_CHECK_INT(put_chunk("kcimg-bad", tok_a, 0, img_len), 200);
	struct srvtest_reply r =
		call("POST", "/api/v1/images/kcimg-bad/commit", tok_a,
		     "{\"sha256\":"
		     "\"0000000000000000000000000000000000000000000000000000000000000000\"}");
	KC_CHECK_INT(r.status, 400);
	KC_CHECK(srvtest_err_msg(&r) && strstr(srvtest_err_msg(&r), "does not match"));
	srvtest_reply_clear(&r);
	KC_CHECK_INT(status_of("GET", "/api/v1/images/kcimg-bad", S.token, NULL), 404);
	char path[300];
	snprintf(path, sizeof(path), "%s/images/.kcimg-bad.qcow2.part", S.dir);
	KC_CHECK(access(path, F_OK) != 0);
}

KC_TEST(more_than_announced_is_refused)
{
	KC_CHECK_INT(begin_upload("kcimg-big", tok_a), 201);
	KC_CHECK_INT(put_chunk("kcimg-big", tok_a, 0, img_len), 200);
	KC_CHECK_INT(put_chunk("kcimg-big", tok_a, img_len, 1), 400);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/images/kcimg-big", tok_a, NULL), 200);
}

KC_TEST(who_sees_and_deletes_what)
{
	KC_CHECK_INT(begin_upload("kcimg-pend", tok_a), 201);
	/* Bob sees ready images, not alice's pending one. */
	KC_CHECK_INT(status_of("GET", "/api/v1/images/kcimg-a", tok_b, NULL), 200);
	KC_CHECK_INT(status_of("GET", "/api/v1/images/kcimg-pend", tok_b, NULL), 404);
	struct srvtest_reply r = call("GET", "/api/v1/images", tok_b, NULL);
	KC_CHECK(r.body && strstr(r.body, "kcimg-a") && !strstr(r.body, "kcimg-pend"));
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/images", S.token, NULL);
	KC_CHECK(r.body && strstr(r.body, "kcimg-pend"));
	srvtest_reply_clear(&r);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/images/kcimg-a", tok_b, NULL), 403);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/images/kcimg-a", tok_a, NULL), 200);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/images/kcimg-pend", S.token, NULL), 200);
}

KC_TEST(refused_on_their_face)
{
	static const char *const bodies[] = {
		"{\"name\":\"kcimg-f\",\"kind\":\"template\",\"format\":\"raw\",\"url\":"
		"\"file:///etc/passwd\",\"sha256\":"
		"\"0000000000000000000000000000000000000000000000000000000000000000\"}",
		"{\"name\":\"kcimg-f\",\"kind\":\"template\",\"format\":\"qcow2\",\"url\":"
		"\"http://127.0.0.1:1/x\"}",
		"{\"name\":\"../etc\",\"kind\":\"template\",\"format\":\"qcow2\",\"size_bytes\":1}",
		"{\"name\":\"kcimg-f\",\"kind\":\"iso\",\"format\":\"qcow2\",\"size_bytes\":1}",
		"{\"name\":\"kcimg-f\",\"kind\":\"template\",\"format\":\"vmdk\",\"size_bytes\":1}",
		"{\"name\":\"kcimg-f\",\"kind\":\"template\",\"format\":\"qcow2\"}",
		"{\"name\":\"kcimg-f\",\"kind\":\"template\",\"format\":\"qcow2\",\"size_bytes\":1,"
		"\"backing\":\"x\"}",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		KC_CHECK_INT(status_of("POST", "/api/v1/images", S.token, bodies[i]), 400);
	KC_CHECK_INT(status_of("GET", "/api/v1/images/..%2Fetc", S.token, NULL), 400);
}

int main(void)
{
	if (access("/usr/bin/qemu-img", X_OK) != 0) {
		printf("1..0 # SKIP no qemu-img\n");
		return 0;
	}
	if (!srvtest_init(&S, "images", SRVTEST_EMBEDDED) || !srvtest_start(&S))
		return 1;
	kc_test_run_registered();
	srvtest_cleanup(&S);
	free(img);
	return kc_test_finish();
}
