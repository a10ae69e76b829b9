/* SPDX-License-Identifier: Apache-2.0 */
/*
 * srvtest.h - helpers shared by the server tests.  The small static ones
 * below work from this header alone; the in-process server fixture and
 * its HTTP client (struct srvtest, srvtest_*()) live in srvtest.c, which
 * tests/server/meson.build links into every server test.
 */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "server.h"

static int srvtest_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* rm -rf without a shell. */
__attribute__((unused)) static void srvtest_rm_rf(const char *dir)
{
	if (nftw(dir, srvtest_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* A loopback port that was free a moment ago. */
__attribute__((unused)) static int srvtest_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A qcow2 v3 header (big-endian fields), no backing file, no features:
 * version 3, cluster_bits 16, size 64 MiB, refcount_order 4,
 * header_length 104, as <dir>/images/kctest.qcow2.  The agent reads only
 * an image's header; the test driver never opens it. */
__attribute__((unused)) static bool srvtest_write_fake_image(const char *dir)
{
	unsigned char h[104] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
	char path[256];

	h[23] = 16;
	h[28] = 0x04;
	h[99] = 4;
	h[103] = 104;
	snprintf(path, sizeof(path), "%s/images", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return false;
	snprintf(path, sizeof(path), "%s/images/kctest.qcow2", dir);
	FILE *f = fopen(path, "we");
	bool ok = f && fwrite(h, sizeof(h), 1, f) == 1;
	if (f)
		ok = fclose(f) == 0 && ok;
	return ok;
}

/* ---- the in-process server (srvtest.c) ---- */

enum srvtest_mode {
	/* Embedded agent on libvirt's test:///default (KC_TEST_LIBVIRT_URI
	 * overrides), plain HTTP. */
	SRVTEST_EMBEDDED,
	/* No embedded agent, an agent listener on a second port, HTTPS with
	 * the cluster CA (the client does not verify it). */
	SRVTEST_CLUSTER,
};

struct srvtest {
	char dir[64];		    /* the data folder, /tmp/kcsrv-test-TAG-XXXXXX */
	char base[64];		    /* "http://127.0.0.1:PORT" or https:// */
	char token[128];	    /* the admin token, read from <dir>/admin.token */
	char *start_output;	    /* what the last srvtest_start() printed */
	int port, agent_port;	    /* agent_port: SRVTEST_CLUSTER only */
	struct kc_server_opts opts; /* filled by srvtest_init; may be changed */
	struct kc_server *srv;	    /* NULL when stopped or when a start failed */
	/* Storage that opts points into. */
	char listen[64], agent_listen[64], uri_override[256];
	const char *overrides[2];
	bool insecure; /* HTTPS without verifying the server */
};

/* Makes the data folder, picks free ports, initialises ulfius and fills
 * t->opts for `mode` (heartbeats and the like are the caller's to set
 * before srvtest_start).  False (with a diagnostic) on failure. */
bool srvtest_init(struct srvtest *t, const char *tag, enum srvtest_mode mode);
/* Opens and starts the server with t->opts, keeps what it printed in
 * t->start_output and reads the admin token.  False (with a diagnostic,
 * t->srv NULL) on failure. */
bool srvtest_start(struct srvtest *t);
/* Frees the server, keeping its data folder, so that a test can start it
 * again. */
void srvtest_stop(struct srvtest *t);
/* Stops the server, removes the data folder, closes ulfius. */
void srvtest_cleanup(struct srvtest *t);

/* The main() of a test program that needs nothing else before the server
 * starts: one fixture `t`, all registered tests (kctest.h, included
 * first) run against it, or one failure if it does not start. */
#define SRVTEST_MAIN(t, tag, mode)                                                                 \
	int main(void)                                                                             \
	{                                                                                          \
		if (!srvtest_init(&(t), (tag), (mode)))                                            \
			return 1;                                                                  \
		if (srvtest_start(&(t)))                                                           \
			kc_test_run_registered();                                                  \
		else                                                                               \
			KC_CHECK((t).srv != NULL);                                                 \
		srvtest_cleanup(&(t));                                                             \
		return kc_test_finish();                                                           \
	}

struct srvtest_reply {
	long status;	    /* 0: no answer */
	json_t *json;	    /* the body parsed, NULL if it is not JSON */
	char *body;	    /* the body as text (NUL-terminated) */
	char *location;	    /* the Location header, or NULL */
	char *content_type; /* the Content-Type header, or NULL */
};

struct srvtest_req {
	const char *method, *path;   /* path with its query, e.g. "/api/v1/vms" */
	const char *token;	     /* NULL: no Authorization header */
	const char *body;	     /* NULL: none; sent as application/json */
	size_t body_len;	     /* 0: strlen(body) */
	const char *idempotency_key; /* NULL: none */
};

/* Sends one request to t's server; a transport failure is status 0. */
struct srvtest_reply srvtest_send(const struct srvtest *t, const struct srvtest_req *rq);
/* srvtest_send() with the common fields. */
struct srvtest_reply srvtest_call(const struct srvtest *t, const char *method, const char *path,
				  const char *token, const char *body);
void srvtest_reply_clear(struct srvtest_reply *r);
/* As admin: makes user `name` (role user; password may be NULL) and a
 * token for them, copied to `out`.  False if either step failed. */
bool srvtest_make_user(const struct srvtest *t, const char *name, const char *password,
		       char out[128]);
/* The error body's "code" and "message", NULL without one. */
const char *srvtest_err_code(const struct srvtest_reply *r);
const char *srvtest_err_msg(const struct srvtest_reply *r);
