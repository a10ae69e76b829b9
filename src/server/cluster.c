/* SPDX-License-Identifier: Apache-2.0 */
/* cluster.c - start-up and shutdown of the cluster side of the server. */
#include "cluster.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentlink.h"
#include "cleanup.h"
#include "ha.h"
#include "pki.h"
#include "server.h"
#include "validate.h"

/* The address part of "ADDR:PORT" / "[ADDR6]:PORT" (malloc'd), or NULL. */
static char *addr_part(const char *s)
{
	if (!s)
		return NULL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		return end ? strndup(s + 1, end - s - 1) : NULL;
	}
	const char *colon = strrchr(s, ':');
	return colon ? strndup(s, colon - s) : NULL;
}

static const char *port_part(const char *s)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	return colon ? colon + 1 : "";
}

static bool wildcard(const char *a)
{
	return !a || !*a || strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0;
}

/* "ADDR:PORT" with brackets around an IPv6 address. */
static char *join_host_port(const char *host, const char *port)
{
	char *s = NULL;
	bool v6 = strchr(host, ':') != NULL;

	if (asprintf(&s, "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0)
		return NULL;
	return s;
}

/* --advertise: an IP address or a DNS name, no port, no spaces. */
static int check_advertise(const char *a, struct kc_error *err)
{
	size_t n = strlen(a);

	if (n == 0 || n > 253)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char ch = a[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':'))
			goto bad;
	}
	return 0;
bad:
	return kc_error_set(err, KC_ERR_INVALID,
			    "--advertise \"%.80s\": expected an IP address or a DNS name", a);
}

int kc_cluster_setup(struct kc_server *srv, const struct kc_server_opts *o, const char *listen,
		     bool loopback, char **ret_cert, char **ret_key, struct kc_error *err)
{
	const char *mode = o->tls_mode ? o->tls_mode : "auto";
	_cleanup_free_ char *listen_host = addr_part(listen);
	_cleanup_free_ char *agent_host = NULL;
	bool dummy;

	*ret_cert = *ret_key = NULL;
	if (strcmp(mode, "auto") != 0 && strcmp(mode, "on") != 0 && strcmp(mode, "off") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "--tls: expected auto, on or off");
	if (!o->tls_cert != !o->tls_key)
		return kc_error_set(err, KC_ERR_INVALID, "--tls-cert and --tls-key go together");
	if (o->tls_cert && strcmp(mode, "off") == 0)
		return kc_error_set(err, KC_ERR_INVALID, "--tls off contradicts --tls-cert");
	if (o->advertise && check_advertise(o->advertise, err) < 0)
		return -1;

	srv->agent_listen_on = o->no_local_agent || o->cluster;
	srv->heartbeat_s = o->heartbeat_s ? o->heartbeat_s : KC_DEFAULT_HEARTBEAT_S;
	srv->down_after_s = o->down_after_s ? o->down_after_s : KC_DEFAULT_DOWN_AFTER_S;
	srv->cpu_overcommit = o->cpu_overcommit;
	srv->mem_overcommit = o->mem_overcommit;
	const char *al = o->agent_listen ? o->agent_listen : KC_DEFAULT_AGENT_LISTEN;
	if (srv->agent_listen_on) {
		struct kc_error e = {0};
		if (kc_listen_parse(al, &srv->agent_addr, &dummy, &e) < 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "--agent-listen \"%.80s\": expected ADDR:PORT or "
					    "[ADDR6]:PORT with a numeric address",
					    al);
		agent_host = addr_part(al);
	}

	const char *extra[] = {listen_host, agent_host, o->advertise};
	if (kc_ha_share_ca(srv->db, srv->data_dir, err) < 0)
		return -1;
	if (kc_pki_init(srv->data_dir, extra, KC_ARRAY_SIZE(extra), &srv->pki_dir, err) < 0)
		return -1;

	if (o->tls_cert) {
		srv->tls = true;
		*ret_cert = strdup(o->tls_cert);
		*ret_key = strdup(o->tls_key);
	} else if (strcmp(mode, "on") == 0 ||
		   (strcmp(mode, "auto") == 0 && (!loopback || srv->agent_listen_on))) {
		srv->tls = true;
		if (asprintf(ret_cert, "%s/server.crt", srv->pki_dir) < 0)
			*ret_cert = NULL;
		if (asprintf(ret_key, "%s/server.key", srv->pki_dir) < 0)
			*ret_key = NULL;
	}
	if (srv->tls && (!*ret_cert || !*ret_key)) {
		free(*ret_cert);
		free(*ret_key);
		*ret_cert = *ret_key = NULL;
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}

	/* Who agents dial and verify: --advertise, else a specific listen
	 * address, else this host's name. */
	char hostname[256] = "localhost";
	gethostname(hostname, sizeof(hostname) - 1);
	const char *name = o->advertise		   ? o->advertise
			   : !wildcard(agent_host) ? agent_host
						   : hostname;
	srv->server_name = strdup(name);
	const char *api_host = o->advertise		? o->advertise
			       : !wildcard(listen_host) ? listen_host
							: hostname;
	_cleanup_free_ char *api = join_host_port(api_host, port_part(listen));
	if (!srv->server_name || !api || asprintf(&srv->join_url, "https://%s", api) < 0) {
		srv->join_url = NULL;
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

char *kc_cluster_ca_pem(struct kc_server *srv, struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *pem = NULL;

	if (!srv->pki_dir || asprintf(&path, "%s/ca.crt", srv->pki_dir) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "no cluster CA");
		return NULL;
	}
	FILE *f = fopen(path, "re");
	pem = calloc(1, KC_PKI_CERT_MAX + 1);
	if (!f || !pem) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot read %s", path);
		if (f)
			fclose(f);
		return NULL;
	}
	size_t n = fread(pem, 1, KC_PKI_CERT_MAX, f);
	fclose(f);
	if (n == 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot read %s", path);
		return NULL;
	}
	return steal_ptr(&pem);
}

int kc_cluster_start(struct kc_server *srv, FILE *out, struct kc_error *err)
{
	_cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL;
	char port[16], fp[65] = "";

	if (!srv->agent_listen_on)
		return 0;
	if (asprintf(&ca, "%s/ca.crt", srv->pki_dir) < 0 ||
	    asprintf(&cert, "%s/server.crt", srv->pki_dir) < 0 ||
	    asprintf(&key, "%s/server.key", srv->pki_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	struct kc_agentlink_opts ao = {
		.addr = &srv->agent_addr,
		.ca_file = ca,
		.cert_file = cert,
		.key_file = key,
		.heartbeat_s = srv->heartbeat_s,
		.down_after_s = srv->down_after_s,
	};
	if (kc_agentlink_start(srv, &ao, &srv->alink, err) < 0)
		return -1;
	snprintf(port, sizeof(port), "%d", kc_agentlink_port(srv->alink));
	srv->agent_endpoint = join_host_port(srv->server_name, port);
	if (!srv->agent_endpoint)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_ha_register(srv, err) < 0)
		return -1;

	char addr[INET6_ADDRSTRLEN] = "?";
	if (srv->agent_addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&srv->agent_addr)->sin6_addr, addr,
			  sizeof(addr));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&srv->agent_addr)->sin_addr, addr,
			  sizeof(addr));
	_cleanup_free_ char *pem = kc_cluster_ca_pem(srv, NULL);
	if (pem)
		kc_pki_fingerprint_sha256(pem, fp, NULL);
	_cleanup_free_ char *bound = join_host_port(addr, port);
	fprintf(out, "agents: listening on %s (mutual TLS), endpoint %s, cluster CA sha256 %s\n",
		bound ? bound : "?", srv->agent_endpoint, fp);
	return 0;
}

void kc_cluster_stop(struct kc_server *srv)
{
	kc_agentlink_stop(srv->alink);
	srv->alink = NULL;
	kc_ha_unregister(srv);
	free(srv->pki_dir);
	free(srv->agent_endpoint);
	free(srv->server_name);
	free(srv->join_url);
	srv->pki_dir = srv->agent_endpoint = srv->server_name = srv->join_url = NULL;
}
