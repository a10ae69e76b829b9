/* SPDX-License-Identifier: Apache-2.0 */
/* ha.c - several servers on one PostgreSQL database (ha.h). */
#include "ha.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "json_util.h"
#include "pki.h"
#include "server.h"

#define CA_CN "kvmcloud cluster CA"
/* Like server.crt, renewed at every start. */
#define PEER_CERT_DAYS 365

/* A whole small file, or NULL (ENOENT: *missing = true). */
static char *slurp(const char *path, bool *missing, struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	*missing = false;
	if (fd < 0) {
		*missing = errno == ENOENT;
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s", path);
		return NULL;
	}
	_cleanup_free_ char *buf = calloc(1, KC_PKI_CERT_MAX + 1);
	size_t got = 0;
	if (!buf) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, KC_PKI_CERT_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s", path);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == KC_PKI_CERT_MAX) {
			kc_error_set(err, KC_ERR_TOO_LARGE, "%s is too large", path);
			return NULL;
		}
	}
	return steal_ptr(&buf);
}

/* Writes through a fresh temporary file, fsync()ed and renamed into place,
 * as pki.c does: a crash never leaves half a key. */
static int write_atomic(const char *path, const char *text, mode_t mode, struct kc_error *err)
{
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp%ld", path, (long)getpid()) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", tmp);
	size_t len = strlen(text), done = 0;
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	int ok = done == len && fsync(fd) == 0;
	close(fd);
	if (!ok || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, e, "cannot write %s", path);
	}
	return 0;
}

struct share {
	const char *dir;
	char *crt, *key; /* the database's, if it had them */
};

static int share_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct share *s = opaque;
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_free_ char *crt_path = NULL, *key_path = NULL;
	_cleanup_free_ char *crt = NULL, *key = NULL;
	bool missing = false;
	char now[21];

	free(steal_ptr(&s->crt));
	free(steal_ptr(&s->key));
	if (kc_db_query(
		    tx,
		    "SELECT name, value FROM cluster_secrets WHERE name IN ('ca.crt', 'ca.key')",
		    NULL, 0, &rows, err) < 0)
		return -1;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		const char *name = json_string_value(json_object_get(row, "name"));
		const char *value = json_string_value(json_object_get(row, "value"));
		if (!name || !value)
			continue;
		char **slot = strcmp(name, "ca.crt") == 0 ? &s->crt : &s->key;
		if (!(*slot = strdup(value)))
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	if (s->crt && s->key)
		return 0;
	if (s->crt || s->key)
		return kc_error_set(err, KC_ERR_INTERNAL,
				    "the database holds half a cluster CA (table cluster_secrets)");

	/* The first server: its CA (made now if need be) becomes the cluster's. */
	if (asprintf(&crt_path, "%s/ca.crt", s->dir) < 0 ||
	    asprintf(&key_path, "%s/ca.key", s->dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	crt = slurp(crt_path, &missing, err);
	if (!crt && missing) {
		kc_error_clear(err);
		if (kc_pki_ca_create(s->dir, CA_CN, err) < 0)
			return -1;
		crt = slurp(crt_path, &missing, err);
	}
	if (!crt || !(key = slurp(key_path, &missing, err)))
		return -1;
	kc_db_now(now);
	if (kc_db_exec(tx,
		       "INSERT INTO cluster_secrets (name, value, created_at) VALUES "
		       "('ca.crt', $1, $3), ('ca.key', $2, $3)",
		       KC_DB_PARAMS(KC_DB_TEXT(crt), KC_DB_TEXT(key), KC_DB_TEXT(now)), NULL,
		       err) < 0)
		return -1;
	explicit_bzero(key, strlen(key));
	return 0;
}

/* Puts the database's CA into dir, or checks that the one there is it. */
static int install_ca(const char *dir, const char *name, const char *text, mode_t mode,
		      struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	bool missing = false;
	struct kc_error e = {0};

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	_cleanup_free_ char *have = slurp(path, &missing, &e);
	if (have) {
		bool same = strcmp(have, text) == 0;
		explicit_bzero(have, strlen(have));
		if (same)
			return 0;
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "%s is not the cluster CA stored in the database (another "
				    "cluster's?); move %s/ca.crt and %s/ca.key away to use the "
				    "database's",
				    path, dir, dir);
	}
	if (!missing)
		return kc_error_set(err, e.code, "%s", e.message);
	return write_atomic(path, text, mode, err);
}

int kc_ha_share_ca(struct kc_db *db, const char *data_dir, struct kc_error *err)
{
	_cleanup_free_ char *dir = NULL;
	struct share s = {0};

	if (db->ops->dialect != KC_DB_POSTGRESQL)
		return 0;
	if (asprintf(&dir, "%s/pki", data_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", dir);
	if (chmod(dir, 0700) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot chmod %s", dir);
	s.dir = dir;
	/* Exclusive: two first servers starting together make one CA. */
	int rc = kc_db_tx_flags(db, KC_DB_TX_EXCLUSIVE, share_tx, &s, err);
	if (rc == 0 && s.crt && s.key)
		rc = install_ca(dir, "ca.key", s.key, 0600, err) < 0 ||
				     install_ca(dir, "ca.crt", s.crt, 0644, err) < 0
			     ? -1
			     : 0;
	free(s.crt);
	if (s.key)
		explicit_bzero(s.key, strlen(s.key));
	free(s.key);
	return rc;
}

/* A fresh peer key and certificate in pki_dir; *ret_serial its serial. */
static int peer_cert_create(const char *pki_dir, char **ret_serial, struct kc_error *err)
{
	_cleanup_free_ char *key = NULL, *crt = NULL, *csr = NULL, *pem = NULL;

	if (asprintf(&key, "%s/peer.key", pki_dir) < 0 ||
	    asprintf(&crt, "%s/peer.crt", pki_dir) < 0) {
		key = crt = NULL;
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	if (kc_pki_key_and_csr(key, KC_HA_PEER_CN, &csr, err) < 0 ||
	    kc_pki_sign_csr(pki_dir, csr, KC_HA_PEER_CN, PEER_CERT_DAYS, &pem, ret_serial, err) < 0)
		return -1;
	if (write_atomic(crt, pem, 0644, err) < 0) {
		free(steal_ptr(ret_serial));
		return -1;
	}
	return 0;
}

int kc_ha_register(struct kc_server *srv, struct kc_error *err)
{
	_cleanup_free_ char *serial = NULL;
	char now[21];

	if (!srv->agent_endpoint)
		return 0;
	/* Renewed at every start, like server.crt: the row names the
	 * certificate this process holds, and a restart retires the old one. */
	if (srv->pki_dir && peer_cert_create(srv->pki_dir, &serial, err) < 0)
		return -1;
	kc_db_now(now);
	return kc_db_exec(
		srv->db,
		"INSERT INTO servers (agent_endpoint, api_url, started_at, last_seen_at, "
		"cert_serial) VALUES ($1, $2, $3, $3, $4) ON CONFLICT (agent_endpoint) DO "
		"UPDATE SET api_url = excluded.api_url, started_at = excluded.started_at, "
		"last_seen_at = excluded.last_seen_at, cert_serial = excluded.cert_serial",
		KC_DB_PARAMS(KC_DB_TEXT(srv->agent_endpoint), KC_DB_TEXT(srv->listen_url),
			     KC_DB_TEXT(now), KC_DB_TEXT(serial)),
		NULL, err);
}

void kc_ha_tick(struct kc_server *srv)
{
	char now[21];
	struct kc_error e = {0};

	if (!srv->agent_endpoint)
		return;
	kc_db_now(now);
	if (kc_db_exec(srv->db, "UPDATE servers SET last_seen_at = $2 WHERE agent_endpoint = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(srv->agent_endpoint), KC_DB_TEXT(now)), NULL,
		       &e) < 0)
		fprintf(stderr, "ha: server heartbeat: %s\n", e.message);
}

void kc_ha_unregister(struct kc_server *srv)
{
	if (!srv->agent_endpoint || !srv->db)
		return;
	kc_db_exec(srv->db, "DELETE FROM servers WHERE agent_endpoint = $1",
		   KC_DB_PARAMS(KC_DB_TEXT(srv->agent_endpoint)), NULL, NULL);
}

json_t *kc_ha_agent_endpoints(struct kc_server *srv)
{
	_cleanup_json_ json_t *rows = NULL;
	json_t *out = json_array();
	char since[21];
	size_t i;
	json_t *row;

	if (!out)
		return NULL;
	if (srv->agent_endpoint)
		json_array_append_new(out, json_string(srv->agent_endpoint));
	kc_db_time_from_now(-KC_HA_SERVER_FRESH_S, since);
	if (kc_db_query(srv->db,
			"SELECT agent_endpoint FROM servers WHERE last_seen_at >= $1 "
			"ORDER BY agent_endpoint",
			KC_DB_PARAMS(KC_DB_TEXT(since)), &rows, NULL) < 0)
		return out;
	json_array_foreach(rows, i, row)
	{
		const char *ep = json_string_value(json_object_get(row, "agent_endpoint"));
		if (ep && (!srv->agent_endpoint || strcmp(ep, srv->agent_endpoint) != 0))
			json_array_append_new(out, json_string(ep));
	}
	return out;
}

int kc_ha_host_connected(struct kc_server *srv, const char *host, struct kc_error *err)
{
	return kc_db_exec(srv->db, "UPDATE hosts SET connected_to = $2 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(host), KC_DB_TEXT(srv->agent_endpoint)), NULL,
			  err);
}

void kc_ha_host_disconnected(struct kc_server *srv, const char *host)
{
	char now[21];

	/* An admin's Maintenance stays; a host another server took over
	 * (connected_to names it) is that server's to judge. */
	kc_db_now(now);
	kc_db_exec(srv->db,
		   "UPDATE hosts SET state = 'Disconnected', updated_at = $3 WHERE name = $1 AND "
		   "state = 'Up' AND (connected_to IS NULL OR connected_to = $2)",
		   KC_DB_PARAMS(KC_DB_TEXT(host), KC_DB_TEXT(srv->agent_endpoint), KC_DB_TEXT(now)),
		   NULL, NULL);
}

int kc_ha_elsewhere(struct kc_server *srv, const char *host, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	char since[21];

	kc_db_time_from_now(-KC_HA_SERVER_FRESH_S, since);
	if (kc_db_query_row(srv->db,
			    "SELECT s.agent_endpoint, s.api_url FROM hosts h JOIN servers s ON "
			    "s.agent_endpoint = h.connected_to WHERE h.name = $1 AND "
			    "h.state = 'Up' AND s.last_seen_at >= $2",
			    KC_DB_PARAMS(KC_DB_TEXT(host), KC_DB_TEXT(since)), &row, NULL) < 0 ||
	    !row)
		return 0;
	const char *ep = json_string_value(json_object_get(row, "agent_endpoint"));
	const char *api = json_string_value(json_object_get(row, "api_url"));
	if (!ep || (srv->agent_endpoint && strcmp(ep, srv->agent_endpoint) == 0))
		return 0;
	return kc_error_set(err, KC_ERR_UNAVAILABLE,
			    "host \"%s\" is connected to another server (%s); send this request "
			    "there, or retry in a few seconds",
			    host, api ? api : ep);
}

char *kc_ha_holder(struct kc_server *srv, const char *host)
{
	_cleanup_json_ json_t *row = NULL;
	char since[21];

	/* Maintenance hosts keep their link: their VMs can still be stopped. */
	kc_db_time_from_now(-KC_HA_SERVER_FRESH_S, since);
	if (kc_db_query_row(srv->db,
			    "SELECT s.agent_endpoint FROM hosts h JOIN servers s ON "
			    "s.agent_endpoint = h.connected_to WHERE h.name = $1 AND "
			    "h.state IN ('Up', 'Maintenance') AND s.last_seen_at >= $2",
			    KC_DB_PARAMS(KC_DB_TEXT(host), KC_DB_TEXT(since)), &row, NULL) < 0 ||
	    !row)
		return NULL;
	const char *ep = json_string_value(json_object_get(row, "agent_endpoint"));
	if (!ep || (srv->agent_endpoint && strcmp(ep, srv->agent_endpoint) == 0))
		return NULL;
	return strdup(ep);
}

json_t *kc_ha_held_elsewhere(struct kc_server *srv)
{
	_cleanup_json_ json_t *rows = NULL;
	json_t *out = json_object();
	char since[21];
	size_t i;
	json_t *row;

	kc_db_time_from_now(-KC_HA_SERVER_FRESH_S, since);
	if (!out || kc_db_query(srv->db,
				"SELECT h.name, s.agent_endpoint FROM hosts h JOIN servers s ON "
				"s.agent_endpoint = h.connected_to WHERE "
				"h.state IN ('Up', 'Maintenance') AND s.last_seen_at >= $1",
				KC_DB_PARAMS(KC_DB_TEXT(since)), &rows, NULL) < 0)
		return out;
	json_array_foreach(rows, i, row)
	{
		const char *name = json_string_value(json_object_get(row, "name"));
		json_t *ep = json_object_get(row, "agent_endpoint");
		if (name && json_is_string(ep) &&
		    !(srv->agent_endpoint &&
		      strcmp(json_string_value(ep), srv->agent_endpoint) == 0))
			json_object_set(out, name, ep);
	}
	return out;
}

bool kc_ha_is_peer(struct kc_server *srv, const char *cn, const char *serial, char **ret_endpoint)
{
	_cleanup_json_ json_t *row = NULL;
	char since[21];

	if (!cn || !serial || strcmp(cn, KC_HA_PEER_CN) != 0)
		return false;
	kc_db_time_from_now(-KC_HA_SERVER_FRESH_S, since);
	if (kc_db_query_row(srv->db,
			    "SELECT agent_endpoint FROM servers WHERE cert_serial = $1 AND "
			    "last_seen_at >= $2",
			    KC_DB_PARAMS(KC_DB_TEXT(serial), KC_DB_TEXT(since)), &row, NULL) < 0 ||
	    !row)
		return false;
	const char *ep = json_string_value(json_object_get(row, "agent_endpoint"));
	if (!ep)
		return false;
	if (ret_endpoint && !(*ret_endpoint = strdup(ep)))
		return false;
	return true;
}
