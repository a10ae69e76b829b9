/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pki.h - the cluster's own certificate authority (docs/protocol.md,
 * "Trust"), done with GnuTLS only.
 *
 * Every file is PEM.  Private keys are ECDSA P-256, written 0600 through a
 * fresh temporary file (O_CREAT|O_EXCL|O_CLOEXEC) that is fsync()ed and
 * renamed into place, so a crash never leaves a half-written or
 * world-readable key.  Certificates are written the same way, 0644.
 *
 * Serial numbers are 16 random bytes (positive, never a leading zero byte),
 * given as 32 lowercase hex digits; serials of foreign certificates are
 * given the same way, minus leading zero bytes.  All functions return 0 or
 * -1 with err filled; KC_ERR_INVALID for bad input, KC_ERR_TOO_LARGE for
 * input over its bound, KC_ERR_CONFLICT for refusing to overwrite,
 * KC_ERR_INTERNAL for OS or GnuTLS failures.
 */
#pragma once

#include <stddef.h>
#include <time.h>

#include "error.h"

/* The largest CSR kc_pki_sign_csr() reads, in bytes of PEM. */
#define KC_PKI_CSR_MAX (16 * 1024)
/* The largest certificate PEM the readers below accept. */
#define KC_PKI_CERT_MAX (64 * 1024)
/* Longest common name we issue (X.520 ub-common-name). */
#define KC_PKI_CN_MAX 64
/* Longest serial in hex (20 bytes, RFC 5280) plus the terminating NUL. */
#define KC_PKI_SERIAL_HEX_MAX 41

/* Creates the cluster CA in `dir` (which must exist): dir/ca.key (0600) and
 * a self-signed dir/ca.crt valid 10 years, CN = cn, basicConstraints
 * CA:TRUE pathlen 0 (critical), keyUsage keyCertSign|cRLSign, with a
 * subject key identifier.  Refuses (KC_ERR_CONFLICT) if either file exists:
 * a CA is never replaced silently, every agent certificate hangs on it. */
int kc_pki_ca_create(const char *dir, const char *cn, struct kc_error *err);

/* Makes dir/server.key (0600) and dir/server.crt, signed by dir/ca.key +
 * dir/ca.crt, valid 1 year, for TLS server authentication only, with
 * CN = cn and the given subject alternative names.  dns_names and ip_addrs
 * are NULL-terminated lists (either may be NULL, but not both empty; at most
 * 64 of each); IP addresses are textual IPv4 or IPv6.  Existing server files
 * are replaced (renewal): the key is renamed into place before the
 * certificate. */
int kc_pki_server_cert_create(const char *dir, const char *cn, const char *const *dns_names,
			      const char *const *ip_addrs, struct kc_error *err);

/* The agent side of joining: makes a new key at key_path (0600, replacing
 * any file there) and returns in *ret_csr_pem (malloc'd) a certificate
 * request for it with CN = cn, signed by that key.  The key never leaves
 * the host: only the CSR is sent. */
int kc_pki_key_and_csr(const char *key_path, const char *cn, char **ret_csr_pem,
		       struct kc_error *err);

/* The server side of joining: signs the CSR with the CA in ca_dir.  The
 * CSR's self-signature must verify; its key must be ECDSA P-256/P-384,
 * Ed25519 or RSA of at least 2048 bits.  Only the CSR's public key is used:
 * its subject and any extensions it asks for are ignored, the identity is
 * CN = cn_required (the server decides who the peer is), the certificate is
 * for TLS client authentication only, not a CA, valid `days` (1..3650,
 * never past the CA's own expiry).  A CSR over KC_PKI_CSR_MAX bytes is
 * refused with KC_ERR_TOO_LARGE before parsing.  Returns the certificate
 * PEM and its serial (lowercase hex), both malloc'd. */
int kc_pki_sign_csr(const char *ca_dir, const char *csr_pem, const char *cn_required, unsigned days,
		    char **ret_cert_pem, char **ret_serial_hex, struct kc_error *err);

/* SHA-256 of the certificate's DER encoding, as 64 lowercase hex digits
 * (what `openssl x509 -fingerprint -sha256` prints, without colons); the
 * value pinned by `kvmcloud-agent join --ca-sha256`. */
int kc_pki_fingerprint_sha256(const char *cert_pem, char ret_hex[65], struct kc_error *err);

/* Reads a certificate's common name, serial (lowercase hex) and expiry.
 * Each ret_* may be NULL; strings are malloc'd.  A certificate without a
 * common name, or with more than one, is KC_ERR_INVALID. */
int kc_pki_cert_info(const char *cert_pem, char **ret_cn, char **ret_serial_hex,
		     time_t *ret_not_after, struct kc_error *err);

/* Same from DER bytes (a TLS peer's certificate). */
int kc_pki_cert_info_der(const void *der, size_t der_len, char **ret_cn, char **ret_serial_hex,
			 time_t *ret_not_after, struct kc_error *err);
