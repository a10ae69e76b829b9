/* SPDX-License-Identifier: Apache-2.0 */
/* srvtest.h - helpers shared by the server tests (header only). */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

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
