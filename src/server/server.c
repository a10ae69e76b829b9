/* SPDX-License-Identifier: Apache-2.0 */
#include "server.h"
#include "ws_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "cluster.h"
#include "cleanup.h"
#include "http_util.h"
#include "json_util.h"
#include "kc-config.h"
#include "reconcile.h"
#include "volumes.h"
#include "jobs.h"
#include "images.h"
#include "peerlink.h"

/* Bounds on what clients can make the HTTP layer hold. */
#define MAX_CONNECTIONS	     128
#define CONNECTION_TIMEOUT_S 120
#define MAX_PEM_BYTES	     (256 * 1024)
/* TLS 1.2 and 1.3 only (GnuTLS' NORMAL alone also offers 1.0 and 1.1), no
 * SHA-1 MACs (the CBC-SHA suites), in the server's order of preference. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-SHA1:%SERVER_PRECEDENCE"

int kc_listen_parse(const char *s, struct sockaddr_storage *ret, bool *ret_loopback,
		    struct kc_error *err)
{
	char host[64];
	const char *port_s;

	memset(ret, 0, sizeof(*ret));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, end - s - 1);
		host[end - s - 1] = '\0';
		port_s = end + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			goto bad;
		memcpy(host, s, colon - s);
		host[colon - s] = '\0';
		port_s = colon + 1;
	}
	char *end = NULL;
	errno = 0;
	long port = strtol(port_s, &end, 10);
	if (errno || end == port_s || *end || port < 1 || port > 65535)
		goto bad;

	struct sockaddr_in *in4 = (struct sockaddr_in *)ret;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*ret_loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*ret_loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	} else {
		goto bad;
	}
	return 0;
bad:
	return kc_error_set(err, KC_ERR_INVALID,
			    "--listen \"%.80s\": expected ADDR:PORT or [ADDR6]:PORT with a numeric "
			    "address",
			    s);
}

/* Reads a whole (small) file into a NUL-terminated buffer. */
static char *read_small_file(const char *path, struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		kc_error_set_errno(err, KC_ERR_INVALID, errno, "cannot read %s", path);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MAX_PEM_BYTES) {
		kc_error_set(err, KC_ERR_INVALID, "%s is not a regular file of at most %d bytes",
			     path, MAX_PEM_BYTES);
		return NULL;
	}
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			kc_error_set_errno(err, KC_ERR_INVALID, n ? errno : EIO, "cannot read %s",
					   path);
			return NULL;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	return steal_ptr(&buf);
}

static void free_pem(char **pem)
{
	if (*pem) {
		explicit_bzero(*pem, strlen(*pem));
		free(*pem);
		*pem = NULL;
	}
}

int kc_server_refresh_host(struct kc_server *srv, struct kc_error *err)
{
	_cleanup_json_ json_t *facts = NULL;

	if (kc_agent_host_facts(srv->agent, &facts, err) < 0)
		return -1;
	_cleanup_json_ json_t *f = json_deep_copy(facts);
	/* These have columns of their own; the rest are the host's "facts". */
	static const char *const own[] = {"name", "uuid", "accel", "accel_reason"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(own); i++)
		json_object_del(f, own[i]);
	struct kc_db_host h = {
		.name = srv->host_name,
		.uuid = json_string_value(json_object_get(facts, "uuid")),
		.facts = f,
		.accel = json_string_value(json_object_get(facts, "accel")),
		.accel_reason = json_string_value(json_object_get(facts, "accel_reason")),
	};
	if (!h.accel)
		h.accel = kc_accel_name(kc_agent_accel(srv->agent));
	return kc_db_host_upsert(srv->db, &h, err);
}

int kc_server_check_host(struct kc_server *srv, bool probe_kvm, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *check = NULL;
	char now[21];

	if (kc_agent_host_check(srv->agent, probe_kvm, &check, err) < 0)
		return -1;
	kc_http_now_iso8601(now);
	/* A KVM probe may change the accelerator: refresh the facts too. */
	if (probe_kvm && kc_server_refresh_host(srv, err) < 0)
		return -1;
	if (kc_db_host_set_check(srv->db, srv->host_name, check, now, err) < 0)
		return -1;
	json_object_set_new(check, "checked_at", json_string(now));
	*ret = steal_ptr(&check);
	return 0;
}

static int make_agent_config(const struct kc_server_opts *o, const char *data_dir,
			     struct kc_config **ret, struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	_cleanup_free_ char *def = NULL;

	if (!cfg)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (o->agent_config) {
		if (kc_config_load(cfg, o->agent_config, true, err) < 0)
			return -1;
	} else {
		if (asprintf(&def, "%s/agent.conf", data_dir) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		if (kc_config_load(cfg, def, false, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < o->n_overrides; i++)
		if (kc_config_set_pair(cfg, o->overrides[i], err) < 0)
			return -1;
	if (!kc_config_get(cfg, "data.dir", NULL) &&
	    kc_config_set(cfg, "data.dir", data_dir, err) < 0)
		return -1;
	*ret = steal_ptr(&cfg);
	return 0;
}

int kc_server_open(const struct kc_server_opts *o, struct kc_server **ret, struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = NULL;
	_cleanup_free_ char *db_path = NULL;
	_cleanup_free_ char *cert_file = NULL, *key_file = NULL;
	_cleanup_json_ json_t *check = NULL;
	struct kc_error cerr = {0};
	bool loopback = false;

	struct kc_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	srv->log_requests = o->log_requests;
	srv->job_retention_s = o->job_retention_s;
	srv->server_dead_after_s = o->server_dead_after_s;
	srv->data_dir = strdup(o->data_dir ? o->data_dir : KC_DEFAULT_DATA_DIR);
	if (!srv->data_dir) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto fail;
	}
	/* Image downloads run later, in jobs: a bad file fails the start now. */
	if (o->image_ca && kc_image_ca_check(o->image_ca, &srv->image_ca, err) < 0)
		goto fail;

	const char *listen = o->listen ? o->listen : KC_DEFAULT_LISTEN;
	if (kc_listen_parse(listen, &srv->addr, &loopback, err) < 0)
		goto fail;
	/* 0755, not 0700: QEMU (another user) must reach the disks the agent
	 * keeps below it.  The secrets inside are 0600 files. */
	if (mkdir(srv->data_dir, 0755) == 0) {
		/* Exactly 0755 whatever the umask. */
		if (chmod(srv->data_dir, 0755) < 0) {
			kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot chmod %s",
					   srv->data_dir);
			goto fail;
		}
	} else if (errno != EEXIST) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", srv->data_dir);
		goto fail;
	}
	if (o->db)
		db_path = strdup(o->db);
	else if (asprintf(&db_path, "%s/kvmcloud.db", srv->data_dir) < 0)
		db_path = NULL;
	if (!db_path) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto fail;
	}
	if (kc_db_open(db_path, &srv->db, err) < 0)
		goto fail;

	if (kc_cluster_setup(srv, o, listen, loopback, &cert_file, &key_file, err) < 0)
		goto fail;
	if (srv->tls) {
		srv->tls_cert_pem = read_small_file(cert_file, err);
		srv->tls_key_pem = srv->tls_cert_pem ? read_small_file(key_file, err) : NULL;
		if (!srv->tls_key_pem)
			goto fail;
	}
	if (!loopback && !srv->tls) {
		kc_error_set(err, KC_ERR_INVALID,
			     "refusing to listen on %s without TLS: the API carries bearer tokens; "
			     "use --tls auto or on, or listen on a loopback address",
			     listen);
		goto fail;
	}
	snprintf(srv->listen_url, sizeof(srv->listen_url), "%s://%s", srv->tls ? "https" : "http",
		 listen);

	if (o->no_local_agent)
		goto agent_done;
	if (make_agent_config(o, srv->data_dir, &cfg, err) < 0 ||
	    kc_agent_new(cfg, &srv->agent, err) < 0)
		goto fail;
	srv->host_name = strdup(kc_agent_host_name(srv->agent));
	if (!srv->host_name) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto fail;
	}
	if (kc_server_refresh_host(srv, err) < 0)
		goto fail;
	if (kc_server_check_host(srv, false, &check, &cerr) < 0)
		fprintf(stderr, "warning: host check failed: %s\n", cerr.message);

	if (kc_reconcile_startup(srv, stderr, err) < 0)
		goto fail;
	/* Volume records too: no request runs yet (volumes.h). */
	kc_error_clear(&cerr);
	if (kc_volume_reconcile_host(srv, srv->host_name, stderr, &cerr) < 0)
		fprintf(stderr, "warning: volume reconciliation: %s\n", cerr.message);
	kc_agent_set_event_cb(srv->agent, kc_reconcile_event, srv);
agent_done:
	/* After reconciliation: the rule for orphaned creates reads its result. */
	if (kc_jobs_open(srv, err) < 0)
		goto fail;
	/* Files already in <data-dir>/images are registered (images.h). */
	if (kc_image_store_open(srv, stderr, err) < 0)
		goto fail;
	FILE *out = o->out ? o->out : stdout;
	int out_fd = fileno(out);
	unsigned auth_flags = o->reset_admin_token ? KC_AUTH_RESET : 0;
	if (out_fd >= 0 && isatty(out_fd))
		auth_flags |= KC_AUTH_SHOW_TOKEN;
	if (kc_auth_init(srv->db, srv->data_dir, auth_flags, stderr, &srv->token_line, err) < 0)
		goto fail;
	*ret = srv;
	return 0;
fail:
	kc_server_free(srv);
	return -1;
}

int kc_server_start(struct kc_server *srv, const struct kc_server_opts *o, struct kc_error *err)
{
	FILE *out = o->out ? o->out : stdout;
	int rc;

	/* Consoles are WebSockets: see ws_guard.c for the library race. */
	if (!kc_ws_guard_active())
		fprintf(out, "warning: libulfius's WebSocket list is not guarded (ws_guard.c); "
			     "concurrent consoles may crash the server\n");
	if (srv->addr.ss_family == AF_INET6)
		rc = ulfius_init_instance_ipv6(
			&srv->inst, ntohs(((struct sockaddr_in6 *)&srv->addr)->sin6_port),
			(struct sockaddr_in6 *)&srv->addr, U_USE_IPV6, NULL);
	else
		rc = ulfius_init_instance(&srv->inst,
					  ntohs(((struct sockaddr_in *)&srv->addr)->sin_port),
					  (struct sockaddr_in *)&srv->addr, NULL);
	if (rc != U_OK)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot initialise the HTTP server");
	srv->inst_ready = true;
	/* One byte over the limit, so that http_util.c can tell "over". */
	srv->inst.max_post_body_size = KC_HTTP_MAX_BODY + 1;
	srv->inst.max_post_param_size = 0;
	/* Bodies are JSON only: no form parsing into maps we never read. */
	srv->inst.allowed_post_processor = U_POST_PROCESS_NONE;
	if (kc_api_register(&srv->inst, srv, err) < 0)
		return -1;

	/* ulfius' own start functions set no connection limit, so start it
	 * with its defaults plus ours (see ulfius_start_framework_with_mhd_options). */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
	struct MHD_OptionItem ops[10];
	size_t n = 0;
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
					   (intptr_t)mhd_request_completed, NULL};
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger,
					   NULL};
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &srv->addr};
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS, NULL};
	ops[n++] =
		(struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, NULL};
	if (srv->addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (srv->tls) {
		flags |= MHD_USE_TLS;
		ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem};
		ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem};
		ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
						   (void *)TLS_PRIORITIES};
	}
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	if (ulfius_start_framework_with_mhd_options(&srv->inst, flags, ops) != U_OK)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "cannot listen on %s (address in use, or a bad TLS key or "
				    "certificate?)",
				    srv->listen_url);
	srv->started = true;
	free_pem(&srv->tls_key_pem);
	free_pem(&srv->tls_cert_pem);

	fprintf(out, "kvmcloud-server %s listening on %s\n", KC_VERSION, srv->listen_url);
	if (kc_cluster_start(srv, out, err) < 0 ||
	    (srv->alink && kc_peerlink_start(srv, &srv->plink, err) < 0) ||
	    kc_jobs_start(srv, err) < 0)
		return -1;
	if (srv->agent) {
		enum kc_accel accel = kc_agent_accel(srv->agent);
		_cleanup_json_ json_t *row = NULL;
		const char *reason = NULL;
		if (kc_db_host_get(srv->db, srv->host_name, &row, NULL) == 0)
			reason = json_string_value(json_object_get(row, "accel_reason"));
		if (accel == KC_ACCEL_TCG)
			fprintf(out,
				"accelerator: TCG -- WARNING: no usable KVM, guests are emulated in "
				"software (slow); reason: %s\n",
				reason ? reason : "(no reason given)");
		else
			fprintf(out, "accelerator: KVM%s%s\n", reason ? ": " : "", reason ? reason : "");
	}
	if (srv->token_line)
		fprintf(out, "%s\n", srv->token_line);
	fflush(out);
	kc_auth_line_free(srv->token_line);
	srv->token_line = NULL;
	return 0;
}

void kc_server_free(struct kc_server *srv)
{
	if (!srv)
		return;
	if (srv->started)
		ulfius_stop_framework(&srv->inst);
	if (srv->inst_ready)
		ulfius_clean_instance(&srv->inst);
	/* Agents after HTTP (no call in flight any more), before the database. */
	/* Hello settlements call hosts and the database too. */
	kc_volume_reconcile_stop(srv);
	kc_jobs_free(srv); /* workers call hosts and the database */
	kc_peerlink_stop(srv->plink);
	srv->plink = NULL;
	kc_cluster_stop(srv);
	if (srv->agent) {
		kc_agent_set_event_cb(srv->agent, NULL, NULL);
		kc_agent_free(srv->agent);
	}
	kc_db_close(srv->db);
	kc_auth_line_free(srv->token_line);
	free_pem(&srv->tls_key_pem);
	free_pem(&srv->tls_cert_pem);
	free(srv->host_name);
	free(srv->image_ca);
	free(srv->data_dir);
	free(srv);
}
