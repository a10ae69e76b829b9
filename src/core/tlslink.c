/* SPDX-License-Identifier: Apache-2.0 */
#include "tlslink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cleanup.h"
#include "pki.h"

#define SERVER_NAME_MAX 253

struct kc_tls_creds {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t priority;
};

struct kc_tls_link {
	gnutls_session_t session;
	int fd;
	bool is_server;
	/* Client: what the server's certificate must name. */
	char server_name[SERVER_NAME_MAX + 1];
	unsigned char server_ip[16];
	unsigned server_ip_len;
	/* Server: the revocation check. */
	kc_tls_revoked_fn is_revoked;
	void *opaque;
	/* Why the verify callback refused the peer, for the handshake's caller. */
	struct kc_error verify_err;
	char *peer_cn;
	char *peer_serial;
	pthread_mutex_t send_lock;
	atomic_bool broken;
};

void kc_tls_creds_free(struct kc_tls_creds *creds)
{
	if (!creds)
		return;
	if (creds->priority)
		gnutls_priority_deinit(creds->priority);
	if (creds->cred)
		gnutls_certificate_free_credentials(creds->cred);
	free(creds);
}

static void creds_freep(struct kc_tls_creds **p)
{
	kc_tls_creds_free(*p);
}

int kc_tls_creds_load(const char *ca_file, const char *cert_file, const char *key_file,
		      struct kc_tls_creds **ret, struct kc_error *err)
{
	if (!ca_file || !cert_file || !key_file)
		return kc_error_set(err, KC_ERR_INVALID,
				    "TLS credentials need a CA, a certificate "
				    "and a key file");
	_cleanup_(creds_freep) struct kc_tls_creds *creds = calloc(1, sizeof(*creds));
	if (!creds)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	int rc = gnutls_certificate_allocate_credentials(&creds->cred);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot allocate TLS credentials: %s",
				    gnutls_strerror(rc));
	/* The cluster CA is the only trust anchor: no system CAs. */
	rc = gnutls_certificate_set_x509_trust_file(creds->cred, ca_file, GNUTLS_X509_FMT_PEM);
	if (rc <= 0)
		return kc_error_set(err, KC_ERR_INVALID, "cannot load the CA certificate %s: %s",
				    ca_file, rc < 0 ? gnutls_strerror(rc) : "no certificate in it");
	rc = gnutls_certificate_set_x509_key_file(creds->cred, cert_file, key_file,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INVALID, "cannot load %s with key %s: %s",
				    cert_file, key_file, gnutls_strerror(rc));
	const char *errpos = NULL;
	rc = gnutls_priority_init(&creds->priority, KC_TLS_PRIORITIES, &errpos);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "bad TLS priority string at \"%s\": %s",
				    errpos ? errpos : "", gnutls_strerror(rc));
	*ret = steal_ptr(&creds);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void link_free(struct kc_tls_link *link)
{
	if (!link)
		return;
	if (link->session)
		gnutls_deinit(link->session);
	if (link->fd >= 0)
		close(link->fd);
	free(link->peer_cn);
	free(link->peer_serial);
	pthread_mutex_destroy(&link->send_lock);
	free(link);
}

/* Frees a link whose handshake failed without closing the caller's fd. */
static void failed_link_freep(struct kc_tls_link **p)
{
	if (*p) {
		(*p)->fd = -1;
		link_free(*p);
	}
}

/*
 * Called by GnuTLS once the peer's certificate has arrived, before the
 * handshake completes: the chain must lead to the cluster CA with the
 * right purpose (and name, for a server), and a client must not be
 * revoked.  Returning -1 aborts the handshake.
 */
static int verify_peer(gnutls_session_t session)
{
	struct kc_tls_link *link = gnutls_session_get_ptr(session);
	gnutls_typed_vdata_st data[2];
	unsigned n = 0;

	/* One identity per link: a second handshake (TLS 1.2 renegotiation)
	 * must not swap the peer under a running connection. */
	if (link->peer_serial)
		return kc_error_set(&link->verify_err, KC_ERR_UNAUTHORIZED,
				    "the peer tried to change its certificate");

	if (link->is_server) {
		data[n++] = (gnutls_typed_vdata_st){GNUTLS_DT_KEY_PURPOSE_OID,
						    (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
	} else {
		if (link->server_ip_len)
			data[n++] = (gnutls_typed_vdata_st){GNUTLS_DT_IP_ADDRESS, link->server_ip,
							    link->server_ip_len};
		else
			data[n++] = (gnutls_typed_vdata_st){GNUTLS_DT_DNS_HOSTNAME,
							    (unsigned char *)link->server_name, 0};
		data[n++] = (gnutls_typed_vdata_st){GNUTLS_DT_KEY_PURPOSE_OID,
						    (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER, 0};
	}

	unsigned status = 0;
	int rc = gnutls_certificate_verify_peers(session, data, n, &status);
	if (rc < 0)
		return kc_error_set(&link->verify_err, KC_ERR_UNAUTHORIZED,
				    "cannot verify the peer's certificate: %s",
				    gnutls_strerror(rc));
	if (status != 0) {
		gnutls_datum_t text = {0};
		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text,
								 0) < 0)
			text.data = NULL;
		kc_error_set(&link->verify_err, KC_ERR_UNAUTHORIZED, "peer certificate refused: %s",
			     text.data ? (const char *)text.data : "verification failed");
		gnutls_free(text.data);
		return -1;
	}

	unsigned n_certs = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n_certs);
	if (!certs || n_certs == 0)
		return kc_error_set(&link->verify_err, KC_ERR_UNAUTHORIZED,
				    "peer sent no certificate");
	if (kc_pki_cert_info_der(certs[0].data, certs[0].size, &link->peer_cn, &link->peer_serial,
				 NULL, &link->verify_err) < 0) {
		link->verify_err.code = KC_ERR_UNAUTHORIZED;
		return -1;
	}
	if (link->is_server && link->is_revoked &&
	    link->is_revoked(link->peer_serial, link->opaque))
		return kc_error_set(&link->verify_err, KC_ERR_FORBIDDEN,
				    "certificate of \"%s\" (serial %s) is revoked", link->peer_cn,
				    link->peer_serial);
	return 0;
}

static bool alert_means_refused(gnutls_alert_description_t alert)
{
	switch (alert) {
	case GNUTLS_A_BAD_CERTIFICATE:
	case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
	case GNUTLS_A_CERTIFICATE_REVOKED:
	case GNUTLS_A_CERTIFICATE_EXPIRED:
	case GNUTLS_A_CERTIFICATE_UNKNOWN:
	case GNUTLS_A_UNKNOWN_CA:
	case GNUTLS_A_ACCESS_DENIED:
	case GNUTLS_A_CERTIFICATE_REQUIRED:
		return true;
	default:
		return false;
	}
}

static int handshake(struct kc_tls_link *link, int timeout_ms, struct kc_error *err)
{
	gnutls_session_t s = link->session;
	int rc;

	gnutls_handshake_set_timeout(s, timeout_ms < 0
						? GNUTLS_INDEFINITE_TIMEOUT
						: (unsigned)(timeout_ms > 0 ? timeout_ms : 1));
	do {
		rc = gnutls_handshake(s);
	} while (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(rc));
	if (rc == 0) {
		/* Belt and braces: the callback must have run and named the peer. */
		if (!link->peer_serial)
			return kc_error_set(err, KC_ERR_UNAUTHORIZED,
					    "TLS handshake finished without a verified peer");
		return 0;
	}

	if (kc_error_is_set(&link->verify_err)) {
		gnutls_alert_send(s, GNUTLS_AL_FATAL,
				  link->verify_err.code == KC_ERR_FORBIDDEN
					  ? GNUTLS_A_CERTIFICATE_REVOKED
					  : GNUTLS_A_BAD_CERTIFICATE);
		return kc_error_set(err, link->verify_err.code, "%s", link->verify_err.message);
	}
	if (rc == GNUTLS_E_TIMEDOUT || rc == GNUTLS_E_AGAIN)
		return kc_error_set(err, KC_ERR_TIMEOUT, "TLS handshake timed out");
	if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND || rc == GNUTLS_E_CERTIFICATE_REQUIRED) {
		gnutls_alert_send(s, GNUTLS_AL_FATAL,
				  gnutls_protocol_get_version(s) == GNUTLS_TLS1_3
					  ? GNUTLS_A_CERTIFICATE_REQUIRED
					  : GNUTLS_A_HANDSHAKE_FAILURE);
		return kc_error_set(err, KC_ERR_UNAUTHORIZED,
				    "peer presented no certificate signed by our CA");
	}
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		gnutls_alert_description_t alert = gnutls_alert_get(s);
		const char *name = gnutls_alert_get_name(alert);
		return kc_error_set(
			err, alert_means_refused(alert) ? KC_ERR_UNAUTHORIZED : KC_ERR_UNAVAILABLE,
			"TLS handshake refused by the peer: %s", name ? name : "alert");
	}
	gnutls_alert_send_appropriate(s, rc);
	return kc_error_set(err, KC_ERR_UNAVAILABLE, "TLS handshake failed: %s",
			    gnutls_strerror(rc));
}

static int link_new(struct kc_tls_creds *creds, int fd, bool is_server, struct kc_tls_link **ret,
		    struct kc_error *err)
{
	if (!creds || fd < 0)
		return kc_error_set(err, KC_ERR_INVALID, "TLS link needs credentials and a socket");
	struct kc_tls_link *link = calloc(1, sizeof(*link));
	if (!link)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	link->fd = -1;
	link->is_server = is_server;
	pthread_mutex_init(&link->send_lock, NULL);
	*ret = link;

	/* No session tickets: nothing is sent after the handshake that the
	 * receiving thread would have to answer, so one sender and one
	 * receiver never write at the same time.  No SIGPIPE on a closed
	 * peer: a library does not kill its program. */
	unsigned flags =
		(is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_TICKETS | GNUTLS_NO_SIGNAL;
	int rc = gnutls_init(&link->session, flags);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start a TLS session: %s",
				    gnutls_strerror(rc));
	rc = gnutls_priority_set(link->session, creds->priority);
	if (rc >= 0)
		rc = gnutls_credentials_set(link->session, GNUTLS_CRD_CERTIFICATE, creds->cred);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot set up the TLS session: %s",
				    gnutls_strerror(rc));
	if (is_server)
		gnutls_certificate_server_set_request(link->session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_ptr(link->session, link);
	gnutls_session_set_verify_function(link->session, verify_peer);

	struct timeval tv = {.tv_sec = KC_TLS_SEND_TIMEOUT_MS / 1000,
			     .tv_usec = (KC_TLS_SEND_TIMEOUT_MS % 1000) * 1000};
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return kc_error_set_errno(err, KC_ERR_INVALID, errno,
					  "cannot set a send timeout on the socket");
	gnutls_transport_set_int(link->session, fd);
	link->fd = fd;
	return 0;
}

int kc_tls_accept(struct kc_tls_creds *creds, int fd, int timeout_ms, kc_tls_revoked_fn is_revoked,
		  void *opaque, struct kc_tls_link **ret, struct kc_error *err)
{
	_cleanup_(failed_link_freep) struct kc_tls_link *link = NULL;
	if (link_new(creds, fd, true, &link, err) < 0)
		return -1;
	link->is_revoked = is_revoked;
	link->opaque = opaque;
	if (handshake(link, timeout_ms, err) < 0)
		return -1;
	*ret = steal_ptr(&link);
	return 0;
}

int kc_tls_connect(struct kc_tls_creds *creds, int fd, const char *server_name, int timeout_ms,
		   struct kc_tls_link **ret, struct kc_error *err)
{
	if (!server_name || !*server_name || strlen(server_name) > SERVER_NAME_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "server name must be 1..%d characters",
				    SERVER_NAME_MAX);
	_cleanup_(failed_link_freep) struct kc_tls_link *link = NULL;
	if (link_new(creds, fd, false, &link, err) < 0)
		return -1;
	strcpy(link->server_name, server_name);
	if (inet_pton(AF_INET, server_name, link->server_ip) == 1) {
		link->server_ip_len = 4;
	} else if (inet_pton(AF_INET6, server_name, link->server_ip) == 1) {
		link->server_ip_len = 16;
	} else {
		int rc = gnutls_server_name_set(link->session, GNUTLS_NAME_DNS, server_name,
						strlen(server_name));
		if (rc < 0)
			return kc_error_set(err, KC_ERR_INVALID, "invalid server name \"%s\": %s",
					    server_name, gnutls_strerror(rc));
	}
	if (handshake(link, timeout_ms, err) < 0)
		return -1;
	*ret = steal_ptr(&link);
	return 0;
}

void kc_tls_peer(const struct kc_tls_link *link, const char **ret_cn, const char **ret_serial)
{
	if (ret_cn)
		*ret_cn = link->peer_cn;
	if (ret_serial)
		*ret_serial = link->peer_serial;
}

/* Sends everything or breaks the link; the caller holds send_lock. */
static int send_all(struct kc_tls_link *link, const unsigned char *buf, size_t len,
		    struct kc_error *err)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = gnutls_record_send(link->session, buf + off, len - off);
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0) {
			/* A record may be half out: the stream is lost. */
			atomic_store(&link->broken, true);
			if (n == GNUTLS_E_AGAIN)
				return kc_error_set(err, KC_ERR_TIMEOUT,
						    "TLS send made no progress for %d ms",
						    KC_TLS_SEND_TIMEOUT_MS);
			return kc_error_set(err, KC_ERR_UNAVAILABLE, "TLS send failed: %s",
					    gnutls_strerror((int)n));
		}
		off += (size_t)n;
	}
	return 0;
}

int kc_tls_send_json(struct kc_tls_link *link, const json_t *msg, struct kc_error *err)
{
	if (!json_is_object(msg))
		return kc_error_set(err, KC_ERR_INVALID, "a frame must hold a JSON object");
	size_t len = json_dumpb(msg, NULL, 0, JSON_COMPACT);
	if (len == 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot serialise the message");
	if (len > KC_TLS_FRAME_MAX)
		return kc_error_set(err, KC_ERR_TOO_LARGE,
				    "message of %zu bytes is over the %d byte frame limit", len,
				    KC_TLS_FRAME_MAX);
	_cleanup_free_ unsigned char *buf = malloc(4 + len);
	if (!buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (json_dumpb(msg, (char *)buf + 4, len, JSON_COMPACT) != len)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot serialise the message");
	uint32_t be = htonl((uint32_t)len);
	memcpy(buf, &be, 4);

	pthread_mutex_lock(&link->send_lock);
	int r;
	if (atomic_load(&link->broken))
		r = kc_error_set(err, KC_ERR_UNAVAILABLE, "the connection is closed");
	else
		r = send_all(link, buf, 4 + len, err);
	pthread_mutex_unlock(&link->send_lock);
	return r;
}

/*
 * Reads exactly len bytes before `deadline` (CLOCK_MONOTONIC ms, -1: none).
 * *started tells the caller whether any byte of the frame had arrived,
 * which decides whether a timeout leaves the stream usable.
 */
static int recv_exact(struct kc_tls_link *link, unsigned char *buf, size_t len, int64_t deadline,
		      bool *started, struct kc_error *err)
{
	gnutls_session_t s = link->session;
	size_t got = 0;

	while (got < len) {
		unsigned wait_ms = GNUTLS_INDEFINITE_TIMEOUT;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				if (gnutls_record_check_pending(s) == 0)
					return kc_error_set(err, KC_ERR_TIMEOUT,
							    "no message within the time limit");
				left = 1;
			}
			wait_ms = left > INT_MAX ? INT_MAX : (unsigned)left;
		}
		gnutls_record_set_timeout(s, wait_ms);
		ssize_t n = gnutls_record_recv(s, buf + got, len - got);
		if (n > 0) {
			got += (size_t)n;
			*started = true;
			continue;
		}
		if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
			if (*started)
				return kc_error_set(err, KC_ERR_INVALID,
						    "connection closed in the middle of a frame");
			return kc_error_set(err, KC_ERR_UNAVAILABLE,
					    "the peer closed the connection");
		}
		if (n == GNUTLS_E_TIMEDOUT || n == GNUTLS_E_AGAIN)
			return kc_error_set(err, KC_ERR_TIMEOUT,
					    "no message within the time limit");
		if (n == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)n))
			continue;
		if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
			gnutls_alert_description_t alert = gnutls_alert_get(s);
			const char *name = gnutls_alert_get_name(alert);
			return kc_error_set(err,
					    alert_means_refused(alert) ? KC_ERR_UNAUTHORIZED
								       : KC_ERR_UNAVAILABLE,
					    "the peer closed the connection with alert: %s",
					    name ? name : "unknown");
		}
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "TLS receive failed: %s",
				    gnutls_strerror((int)n));
	}
	return 0;
}

static int recv_frame(struct kc_tls_link *link, int timeout_ms, json_t **ret, bool *started,
		      struct kc_error *err)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	unsigned char hdr[4];

	if (recv_exact(link, hdr, sizeof(hdr), deadline, started, err) < 0)
		return -1;
	uint32_t be;
	memcpy(&be, hdr, 4);
	uint32_t len = ntohl(be);
	/* Checked before anything is allocated: the length is the peer's word. */
	if (len > KC_TLS_FRAME_MAX)
		return kc_error_set(err, KC_ERR_TOO_LARGE,
				    "frame of %" PRIu32 " bytes is over the %d byte limit", len,
				    KC_TLS_FRAME_MAX);
	if (len == 0)
		return kc_error_set(err, KC_ERR_INVALID, "empty frame");
	_cleanup_free_ unsigned char *body = malloc(len);
	if (!body)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (recv_exact(link, body, len, deadline, started, err) < 0)
		return -1;

	/* jansson checks the UTF-8 and that nothing follows the value. */
	json_error_t jerr;
	json_t *msg = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!msg)
		return kc_error_set(err, KC_ERR_INVALID, "invalid JSON in frame: %s", jerr.text);
	if (!json_is_object(msg)) {
		json_decref(msg);
		return kc_error_set(err, KC_ERR_INVALID, "frame does not hold a JSON object");
	}
	*ret = msg;
	return 0;
}

int kc_tls_recv_json(struct kc_tls_link *link, int timeout_ms, json_t **ret, struct kc_error *err)
{
	if (atomic_load(&link->broken))
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "the connection is closed");
	struct kc_error local = {0};
	bool started = false;
	if (recv_frame(link, timeout_ms, ret, &started, &local) == 0)
		return 0;
	if (!(local.code == KC_ERR_TIMEOUT && !started))
		atomic_store(&link->broken, true);
	return kc_error_set(err, local.code, "%s", local.message);
}

int kc_tls_send_bytes(struct kc_tls_link *link, const void *buf, size_t len, struct kc_error *err)
{
	pthread_mutex_lock(&link->send_lock);
	int r;
	if (atomic_load(&link->broken))
		r = kc_error_set(err, KC_ERR_UNAVAILABLE, "the connection is closed");
	else
		r = send_all(link, buf, len, err);
	pthread_mutex_unlock(&link->send_lock);
	return r;
}

int kc_tls_recv_bytes(struct kc_tls_link *link, void *buf, size_t cap, int timeout_ms,
		      size_t *ret_len, struct kc_error *err)
{
	if (atomic_load(&link->broken))
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "the connection is closed");
	gnutls_record_set_timeout(link->session, timeout_ms > 0 ? (unsigned)timeout_ms : 1);
	for (;;) {
		ssize_t n = gnutls_record_recv(link->session, buf, cap);
		if (n > 0) {
			*ret_len = (size_t)n;
			return 0;
		}
		if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
			atomic_store(&link->broken, true);
			*ret_len = 0;
			return 0;
		}
		if (n == GNUTLS_E_TIMEDOUT || n == GNUTLS_E_AGAIN)
			return kc_error_set(err, KC_ERR_TIMEOUT, "nothing within the time limit");
		if (n == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)n))
			continue;
		atomic_store(&link->broken, true);
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "TLS receive failed: %s",
				    gnutls_strerror((int)n));
	}
}

void kc_tls_shutdown(struct kc_tls_link *link)
{
	if (!link)
		return;
	atomic_store(&link->broken, true);
	shutdown(link->fd, SHUT_RDWR);
}

void kc_tls_close(struct kc_tls_link *link)
{
	if (!link)
		return;
	/* close_notify, so the peer tells a clean close from a cut line; the
	 * socket's send timeout bounds it. */
	if (!atomic_load(&link->broken))
		gnutls_bye(link->session, GNUTLS_SHUT_WR);
	link_free(link);
}
