/* SPDX-License-Identifier: Apache-2.0 */
/* pki_init.c - the cluster CA and the server certificate at start-up. */
#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "pki.h"

#define MAX_NAMES 16

static void add_unique(const char **list, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(list[i], s) == 0)
			return;
	if (*n < MAX_NAMES)
		list[(*n)++] = s;
}

/* An address that means "every interface" names no certificate. */
static bool is_wildcard(const char *s)
{
	return strcmp(s, "0.0.0.0") == 0 || strcmp(s, "::") == 0 || !*s;
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int kc_pki_init(const char *data_dir, const char *const *extra, size_t n_extra, char **ret_dir,
		struct kc_error *err)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ char *ca = NULL;
	const char *dns[MAX_NAMES + 1] = {0}, *ips[MAX_NAMES + 1] = {0};
	size_t ndns = 0, nips = 0;
	char host[256] = "";
	struct stat st;

	if (asprintf(&dir, "%s/pki", data_dir) < 0 || asprintf(&ca, "%s/pki/ca.crt", data_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	/* The CA key lives here: nobody else may even list the folder. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", dir);
	if (chmod(dir, 0700) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot chmod %s", dir);
	if (stat(ca, &st) < 0) {
		if (errno != ENOENT)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot stat %s",
						  ca);
		if (kc_pki_ca_create(dir, "kvmcloud cluster CA", err) < 0)
			return -1;
	}

	if (gethostname(host, sizeof(host) - 1) == 0 && host[0] && strcmp(host, "localhost") != 0)
		add_unique(dns, &ndns, host);
	add_unique(dns, &ndns, "localhost");
	add_unique(ips, &nips, "127.0.0.1");
	add_unique(ips, &nips, "::1");
	for (size_t i = 0; i < n_extra; i++) {
		if (!extra[i] || is_wildcard(extra[i]))
			continue;
		add_unique(is_ip(extra[i]) ? ips : dns, is_ip(extra[i]) ? &nips : &ndns, extra[i]);
	}
	/* Renewed at every start: its names follow --advertise and the
	 * listen addresses, and agents trust the CA, not this certificate. */
	if (kc_pki_server_cert_create(dir, host[0] ? host : "kvmcloud-server", dns, ips, err) < 0)
		return -1;
	*ret_dir = steal_ptr(&dir);
	return 0;
}
