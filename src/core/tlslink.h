/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tlslink.h - the agent <-> server transport of docs/protocol.md: mutual
 * TLS (1.2/1.3, GnuTLS) over a connected stream socket, both sides
 * presenting certificates of the cluster CA, carrying frames of one JSON
 * object each (4-byte big-endian length, then UTF-8 JSON, at most
 * KC_TLS_FRAME_MAX bytes).  It knows nothing of the messages' meaning.
 *
 * Threads: one thread may receive while others send; sends are serialised
 * by a mutex inside the link, so a heartbeat thread and a request thread
 * can both call kc_tls_send_json().  kc_tls_shutdown() may be called from
 * any thread to wake the others; kc_tls_close() only once they are done.
 *
 * TLS 1.3 note: a client finishes its handshake before the server has
 * judged the client's certificate, so a client refused by the server (not
 * signed by the CA, revoked) sees kc_tls_connect() succeed and its first
 * kc_tls_recv_json() fail.  The server side always fails in kc_tls_accept().
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

#define KC_TLS_FRAME_MAX (1024 * 1024)
/* A send that cannot make progress for this long fails (KC_ERR_TIMEOUT)
 * and breaks the link: a peer that stops reading cannot hang a sender. */
#define KC_TLS_SEND_TIMEOUT_MS 30000
#define KC_TLS_PRIORITIES      "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-SHA1"

/* Our own certificate and key plus the cluster CA to verify peers with.
 * Read-only once loaded: one set may serve many links in many threads, and
 * must outlive them. */
struct kc_tls_creds;

/* Loads PEM files: ca_file (the cluster CA, the only trust anchor),
 * cert_file and key_file (our own identity).  KC_ERR_INVALID if a file
 * cannot be read or parsed, or the key does not match the certificate. */
int kc_tls_creds_load(const char *ca_file, const char *cert_file, const char *key_file,
		      struct kc_tls_creds **ret, struct kc_error *err);
void kc_tls_creds_free(struct kc_tls_creds *creds);

/* One TLS session over one socket. */
struct kc_tls_link;

/* Asked during the server's handshake with the verified client
 * certificate's serial (lowercase hex, as kc_pki_sign_csr() returns it);
 * true refuses the client. */
typedef bool (*kc_tls_revoked_fn)(const char *serial_hex, void *opaque);

/* Server side: runs the handshake on the connected socket fd, requiring a
 * client certificate that chains to the CA, is valid now, is for TLS client
 * use, and is not revoked according to is_revoked (may be NULL).  On
 * success the link owns fd; on failure fd is left open for the caller.
 * Errors: KC_ERR_UNAUTHORIZED (no or unverifiable certificate),
 * KC_ERR_FORBIDDEN (revoked), KC_ERR_TIMEOUT (handshake not done within
 * timeout_ms; -1 waits forever), KC_ERR_UNAVAILABLE (TLS or socket error). */
int kc_tls_accept(struct kc_tls_creds *creds, int fd, int timeout_ms, kc_tls_revoked_fn is_revoked,
		  void *opaque, struct kc_tls_link **ret, struct kc_error *err);

/* Client side: runs the handshake on the connected socket fd, requiring a
 * server certificate that chains to the CA, is for TLS server use, and
 * whose subject alternative names match server_name (a DNS name, or an
 * IPv4/IPv6 address matched against the IP SANs).  fd ownership and errors
 * as for kc_tls_accept(). */
int kc_tls_connect(struct kc_tls_creds *creds, int fd, const char *server_name, int timeout_ms,
		   struct kc_tls_link **ret, struct kc_error *err);

/* The verified peer's certificate common name and serial (lowercase hex),
 * borrowed from the link.  Either pointer may be NULL.  Cannot fail: a link
 * only exists once its peer is verified.  This, never a message field, is
 * who the peer is. */
void kc_tls_peer(const struct kc_tls_link *link, const char **ret_cn, const char **ret_serial);

/* Sends one frame holding msg, which must be a JSON object.  KC_ERR_INVALID
 * for a non-object, KC_ERR_TOO_LARGE if it serialises to more than
 * KC_TLS_FRAME_MAX bytes (the link stays usable), KC_ERR_TIMEOUT or
 * KC_ERR_UNAVAILABLE if the connection failed (the link is then broken and
 * every later call fails).  Thread-safe. */
int kc_tls_send_json(struct kc_tls_link *link, const json_t *msg, struct kc_error *err);

/* Receives one frame, waiting at most timeout_ms (-1: forever; 0: only
 * what has arrived).  *ret is a new reference to a JSON object.  Errors:
 * KC_ERR_TIMEOUT (if no byte of a frame had arrived the link stays usable,
 * otherwise it is broken), KC_ERR_TOO_LARGE (length over KC_TLS_FRAME_MAX:
 * refused before any allocation), KC_ERR_INVALID (zero length, short read,
 * invalid UTF-8 or JSON, duplicate keys, not an object),
 * KC_ERR_UNAVAILABLE (the peer closed the connection or TLS failed).  After
 * any error but the clean timeout the link is broken: the stream cannot be
 * trusted to be at a frame boundary.  One receiving thread at a time. */
int kc_tls_recv_json(struct kc_tls_link *link, int timeout_ms, json_t **ret, struct kc_error *err);

/* Raw bytes, for a link that has become a byte stream after its first
 * frames (a console stream, docs/protocol.md).  kc_tls_send_bytes sends
 * all of buf or breaks the link; thread-safe as kc_tls_send_json. */
int kc_tls_send_bytes(struct kc_tls_link *link, const void *buf, size_t len, struct kc_error *err);
/* Receives 1..cap bytes (what a frame left buffered comes first), waiting
 * at most timeout_ms (> 0).  *ret_len is 0 when the peer closed the
 * connection.  KC_ERR_TIMEOUT leaves the link usable; any other error
 * breaks it (KC_ERR_UNAVAILABLE).  One receiving thread at a time. */
int kc_tls_recv_bytes(struct kc_tls_link *link, void *buf, size_t cap, int timeout_ms,
		      size_t *ret_len, struct kc_error *err);

/* Shuts the socket down in both directions so that threads blocked in
 * send or receive return promptly (revocation closes a live connection
 * this way).  Safe from any thread, any number of times. */
void kc_tls_shutdown(struct kc_tls_link *link);

/* Says goodbye to the peer if the link is healthy, closes the socket and
 * frees the link.  NULL is accepted.  No other thread may be using it. */
void kc_tls_close(struct kc_tls_link *link);
