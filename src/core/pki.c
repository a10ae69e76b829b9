/* SPDX-License-Identifier: Apache-2.0 */
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cleanup.h"
#include "io.h"

#define SERIAL_BYTES 16
#define CA_DAYS	     3650
#define SERVER_DAYS  365
#define SAN_MAX	     64
#define DNS_NAME_MAX 253
#define KEY_FILE_MAX (16 * 1024)
/* Certificates start an hour in the past so that a host whose clock is a
 * little behind the server's still accepts a certificate issued just now. */
#define BACKDATE_SECONDS 3600
#define DAY_SECONDS	 86400

static void crt_freep(gnutls_x509_crt_t *p)
{
	if (*p)
		gnutls_x509_crt_deinit(*p);
}
#define _cleanup_crt_ _cleanup_(crt_freep)

static void crq_freep(gnutls_x509_crq_t *p)
{
	if (*p)
		gnutls_x509_crq_deinit(*p);
}
#define _cleanup_crq_ _cleanup_(crq_freep)

static void xkey_freep(gnutls_x509_privkey_t *p)
{
	if (*p)
		gnutls_x509_privkey_deinit(*p);
}
#define _cleanup_xkey_ _cleanup_(xkey_freep)

static void privkey_freep(gnutls_privkey_t *p)
{
	if (*p)
		gnutls_privkey_deinit(*p);
}
#define _cleanup_privkey_ _cleanup_(privkey_freep)

static void pubkey_freep(gnutls_pubkey_t *p)
{
	if (*p)
		gnutls_pubkey_deinit(*p);
}
#define _cleanup_pubkey_ _cleanup_(pubkey_freep)

/* For datums allocated by GnuTLS (gnutls_free). */
static void gdatum_freep(gnutls_datum_t *d)
{
	gnutls_free(d->data);
	d->data = NULL;
}
#define _cleanup_gdatum_ _cleanup_(gdatum_freep)

/* For datums holding private key bytes: wiped before they are freed. */
static void secret_gdatum_freep(gnutls_datum_t *d)
{
	if (d->data) {
		gnutls_memset(d->data, 0, d->size);
		gnutls_free(d->data);
		d->data = NULL;
	}
}
#define _cleanup_secret_gdatum_ _cleanup_(secret_gdatum_freep)

/* Our own malloc'd datums (read from files), wiped too: they may be keys. */
static void file_datum_freep(gnutls_datum_t *d)
{
	if (d->data) {
		gnutls_memset(d->data, 0, d->size);
		free(d->data);
		d->data = NULL;
	}
}
#define _cleanup_file_datum_ _cleanup_(file_datum_freep)

static int gnutls_fail(struct kc_error *err, int rc, const char *what)
{
	return kc_error_set(err, KC_ERR_INTERNAL, "%s: %s", what, gnutls_strerror(rc));
}

static void hex_encode(const unsigned char *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* A common name we are willing to put into a certificate: printable ASCII,
 * so that it reads the same in logs, in the database and in openssl. */
static int cn_validate(const char *cn, struct kc_error *err)
{
	if (!cn || !*cn)
		return kc_error_set(err, KC_ERR_INVALID, "certificate common name is empty");
	size_t len = strnlen(cn, KC_PKI_CN_MAX + 1);
	if (len > KC_PKI_CN_MAX)
		return kc_error_set(err, KC_ERR_INVALID,
				    "certificate common name is longer than %d characters",
				    KC_PKI_CN_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)cn[i];
		if (c < 0x20 || c > 0x7e)
			return kc_error_set(
				err, KC_ERR_INVALID,
				"certificate common name has a non-printable character");
	}
	return 0;
}

static int dns_name_validate(const char *name, struct kc_error *err)
{
	size_t len = strnlen(name, DNS_NAME_MAX + 1);
	if (len == 0 || len > DNS_NAME_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "DNS name must be 1..%d characters",
				    DNS_NAME_MAX);
	if (name[0] == '.' || name[0] == '-' || name[len - 1] == '.')
		return kc_error_set(err, KC_ERR_INVALID, "invalid DNS name \"%s\"", name);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '.';
		if (!ok || (c == '.' && name[i + 1] == '.'))
			return kc_error_set(err, KC_ERR_INVALID, "invalid DNS name \"%.64s\"",
					    name);
	}
	return 0;
}

static int path_in_dir(char *buf, size_t size, const char *dir, const char *name,
		       struct kc_error *err)
{
	if (!dir || !*dir)
		return kc_error_set(err, KC_ERR_INVALID, "PKI folder is empty");
	int n = snprintf(buf, size, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= size)
		return kc_error_set(err, KC_ERR_INVALID, "PKI folder path is too long");
	return 0;
}

/*
 * Writes `data` to `path` through a temporary file in the same folder:
 * created 0600 with O_CREAT|O_EXCL|O_CLOEXEC (mkostemp), chmod'ed to
 * `mode`, fsync()ed, then renamed.  With no_replace the rename fails with
 * KC_ERR_CONFLICT if path exists, atomically (no check-then-write race).
 */
static int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			     bool no_replace, struct kc_error *err)
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return kc_error_set(err, KC_ERR_INVALID, "path too long: %s", path);

	_cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", tmp);
	int r = 0;
	if (fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0)
		r = kc_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0) {
		int fd2 = fd;
		fd = -1;
		if (close(fd2) < 0)
			r = -errno;
	}
	if (r < 0) {
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "cannot write %s", tmp);
	}

	if (no_replace) {
		r = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
		if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
			/* File systems without RENAME_NOREPLACE: link() also
			 * fails if the target exists. */
			r = link(tmp, path);
			int saved = errno;
			unlink(tmp);
			errno = saved;
		}
	} else {
		r = rename(tmp, path);
	}
	if (r < 0) {
		int saved = errno;
		unlink(tmp);
		if (saved == EEXIST)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "%s exists already; not replacing it", path);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, saved, "cannot rename %s to %s",
					  tmp, path);
	}
	r = kc_fsync_parent(path);
	if (r < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "cannot sync the folder of %s",
					  path);
	return 0;
}

/* Reads a whole file of at most `max` bytes into a malloc'd datum. */
static int read_file_bounded(const char *path, size_t max, gnutls_datum_t *ret,
			     struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return kc_error_set_errno(err, errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_INTERNAL,
					  errno, "cannot open %s", path);
	_cleanup_file_datum_ gnutls_datum_t d = {.data = malloc(max + 1), .size = 0};
	if (!d.data)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, d.data + got, max + 1 - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s",
						  path);
		}
		if (n == 0)
			break;
		got += (size_t)n;
		d.size = (unsigned)got;
		if (got > max)
			return kc_error_set(err, KC_ERR_TOO_LARGE, "%s is larger than %zu bytes",
					    path, max);
	}
	d.size = (unsigned)got;
	*ret = d;
	d.data = NULL;
	return 0;
}

/* Wraps a caller's PEM string as a datum after checking its length. */
static int pem_datum(const char *pem, size_t max, const char *what, gnutls_datum_t *ret,
		     struct kc_error *err)
{
	if (!pem)
		return kc_error_set(err, KC_ERR_INVALID, "%s is missing", what);
	size_t len = strnlen(pem, max + 1);
	if (len > max)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "%s is larger than %zu bytes", what,
				    max);
	ret->data = (unsigned char *)pem;
	ret->size = (unsigned)len;
	return 0;
}

static int new_ec_key(gnutls_x509_privkey_t *ret, struct kc_error *err)
{
	_cleanup_xkey_ gnutls_x509_privkey_t key = NULL;
	int rc = gnutls_x509_privkey_init(&key);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a key");
	rc = gnutls_x509_privkey_generate2(
		key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot generate an ECDSA P-256 key");
	*ret = steal_ptr(&key);
	return 0;
}

/* PKCS#8 "PRIVATE KEY" PEM, unencrypted: file permissions protect it. */
static int write_key(gnutls_x509_privkey_t key, const char *path, bool no_replace,
		     struct kc_error *err)
{
	_cleanup_secret_gdatum_ gnutls_datum_t pem = {0};
	int rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
						   GNUTLS_PKCS_PLAIN, &pem);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot export the key");
	return write_file_atomic(path, pem.data, pem.size, 0600, no_replace, err);
}

static int signer_from_x509(gnutls_x509_privkey_t key, gnutls_privkey_t *ret, struct kc_error *err)
{
	_cleanup_privkey_ gnutls_privkey_t pk = NULL;
	int rc = gnutls_privkey_init(&pk);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a key");
	rc = gnutls_privkey_import_x509(pk, key, GNUTLS_PRIVKEY_IMPORT_COPY);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot use the key");
	*ret = steal_ptr(&pk);
	return 0;
}

/* Serial, subject CN, validity, version: what every certificate we issue has. */
static int crt_basics(gnutls_x509_crt_t crt, const char *cn, time_t not_after,
		      char ret_serial_hex[2 * SERIAL_BYTES + 1], struct kc_error *err)
{
	unsigned char serial[SERIAL_BYTES];
	int rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot get random bytes");
	/* DER integers are signed: keep it positive, and never let a leading
	 * zero byte shorten it, so its hex form is always 32 digits. */
	serial[0] &= 0x7f;
	if (serial[0] == 0)
		serial[0] = 0x01;

	rc = gnutls_x509_crt_set_version(crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
						   (unsigned)strlen(cn));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(crt, time(NULL) - BACKDATE_SECONDS);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_expiration_time(crt, not_after);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot fill the certificate");
	if (ret_serial_hex)
		hex_encode(serial, sizeof(serial), ret_serial_hex);
	return 0;
}

/* Subject key id from the certificate's own public key. */
static int crt_set_ski(gnutls_x509_crt_t crt, struct kc_error *err)
{
	unsigned char id[64];
	size_t id_size = sizeof(id);
	int rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &id_size);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_subject_key_id(crt, id, id_size);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot set the subject key identifier");
	return 0;
}

/* Authority key id = the CA's subject key id, so chains build unambiguously. */
static int crt_set_aki(gnutls_x509_crt_t crt, gnutls_x509_crt_t ca, struct kc_error *err)
{
	unsigned char id[64];
	size_t id_size = sizeof(id);
	unsigned critical = 0;
	int rc = gnutls_x509_crt_get_subject_key_id(ca, id, &id_size, &critical);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		id_size = sizeof(id);
		rc = gnutls_x509_crt_get_key_id(ca, GNUTLS_KEYID_USE_SHA1, id, &id_size);
	}
	if (rc >= 0)
		rc = gnutls_x509_crt_set_authority_key_id(crt, id, id_size);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot set the authority key identifier");
	return 0;
}

static int export_pem(gnutls_x509_crt_t crt, gnutls_datum_t *ret, struct kc_error *err)
{
	int rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, ret);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot export the certificate");
	return 0;
}

struct ca {
	gnutls_x509_crt_t crt;
	gnutls_privkey_t key;
};

static void ca_release(struct ca *ca)
{
	crt_freep(&ca->crt);
	privkey_freep(&ca->key);
}

static int ca_load(const char *dir, struct ca *ret, struct kc_error *err)
{
	char key_path[PATH_MAX], crt_path[PATH_MAX];
	if (path_in_dir(key_path, sizeof(key_path), dir, "ca.key", err) < 0 ||
	    path_in_dir(crt_path, sizeof(crt_path), dir, "ca.crt", err) < 0)
		return -1;

	_cleanup_file_datum_ gnutls_datum_t key_pem = {0};
	_cleanup_file_datum_ gnutls_datum_t crt_pem = {0};
	if (read_file_bounded(key_path, KEY_FILE_MAX, &key_pem, err) < 0 ||
	    read_file_bounded(crt_path, KC_PKI_CERT_MAX, &crt_pem, err) < 0)
		return -1;

	_cleanup_(ca_release) struct ca ca = {0};
	int rc = gnutls_x509_crt_init(&ca.crt);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a certificate");
	rc = gnutls_x509_crt_import(ca.crt, &crt_pem, GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot read %s: %s", crt_path,
				    gnutls_strerror(rc));
	rc = gnutls_privkey_init(&ca.key);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a key");
	rc = gnutls_privkey_import_x509_raw(ca.key, &key_pem, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot read %s: %s", key_path,
				    gnutls_strerror(rc));
	*ret = ca;
	ca = (struct ca){0};
	return 0;
}

/* Signs crt with the CA, then checks the result against the CA certificate:
 * that catches a ca.key that does not belong to ca.crt before anyone is
 * handed a certificate nobody can verify. */
static int ca_sign(struct ca *ca, gnutls_x509_crt_t crt, struct kc_error *err)
{
	if (crt_set_aki(crt, ca->crt, err) < 0)
		return -1;
	int rc = gnutls_x509_crt_privkey_sign(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot sign the certificate");
	/* Checked on a re-import of the encoded result: a freshly built
	 * certificate has no cached issuer name to match against. */
	_cleanup_gdatum_ gnutls_datum_t der = {0};
	_cleanup_crt_ gnutls_x509_crt_t check = NULL;
	rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der);
	if (rc >= 0)
		rc = gnutls_x509_crt_init(&check);
	if (rc >= 0)
		rc = gnutls_x509_crt_import(check, &der, GNUTLS_X509_FMT_DER);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot re-read the new certificate");
	unsigned status = 0;
	rc = gnutls_x509_crt_verify(check, &ca->crt, 1, 0, &status);
	if (rc < 0 || status != 0) {
		gnutls_datum_t text = {0};
		if (rc < 0 || gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
									   &text, 0) < 0)
			text.data = NULL;
		kc_error_set(err, KC_ERR_INTERNAL,
			     "the new certificate does not verify against the CA (%s)",
			     text.data ? (const char *)text.data : gnutls_strerror(rc));
		gnutls_free(text.data);
		return -1;
	}
	return 0;
}

int kc_pki_ca_create(const char *dir, const char *cn, struct kc_error *err)
{
	char key_path[PATH_MAX], crt_path[PATH_MAX];
	if (cn_validate(cn, err) < 0 ||
	    path_in_dir(key_path, sizeof(key_path), dir, "ca.key", err) < 0 ||
	    path_in_dir(crt_path, sizeof(crt_path), dir, "ca.crt", err) < 0)
		return -1;
	/* Checked up front so that a lone ca.crt (or ca.key) left by an
	 * operator is not paired with a fresh, unrelated other half. */
	if (access(key_path, F_OK) == 0 || access(crt_path, F_OK) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "a CA exists already in %s; not replacing it", dir);

	_cleanup_xkey_ gnutls_x509_privkey_t xkey = NULL;
	_cleanup_privkey_ gnutls_privkey_t key = NULL;
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	if (new_ec_key(&xkey, err) < 0 || signer_from_x509(xkey, &key, err) < 0)
		return -1;
	int rc = gnutls_x509_crt_init(&crt);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a certificate");
	time_t now = time(NULL);
	if (crt_basics(crt, cn, now + (time_t)CA_DAYS * DAY_SECONDS, NULL, err) < 0)
		return -1;
	rc = gnutls_x509_crt_set_key(crt, xkey);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 1, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt,
						   GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot fill the CA certificate");
	if (crt_set_ski(crt, err) < 0)
		return -1;
	rc = gnutls_x509_crt_privkey_sign(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot self-sign the CA certificate");

	_cleanup_gdatum_ gnutls_datum_t pem = {0};
	if (export_pem(crt, &pem, err) < 0)
		return -1;
	if (write_key(xkey, key_path, true, err) < 0)
		return -1;
	if (write_file_atomic(crt_path, pem.data, pem.size, 0644, true, err) < 0) {
		/* Without its certificate the key we just wrote is useless
		 * and would block the next attempt. */
		unlink(key_path);
		return -1;
	}
	return 0;
}

static int add_sans(gnutls_x509_crt_t crt, const char *const *dns_names,
		    const char *const *ip_addrs, struct kc_error *err)
{
	size_t n_dns = 0, n_ip = 0;
	for (; dns_names && dns_names[n_dns]; n_dns++) {
		if (n_dns == SAN_MAX)
			return kc_error_set(err, KC_ERR_INVALID, "more than %d DNS names", SAN_MAX);
		const char *name = dns_names[n_dns];
		if (dns_name_validate(name, err) < 0)
			return -1;
		int rc = gnutls_x509_crt_set_subject_alt_name(
			crt, GNUTLS_SAN_DNSNAME, name, (unsigned)strlen(name), GNUTLS_FSAN_APPEND);
		if (rc < 0)
			return gnutls_fail(err, rc, "cannot add a DNS name");
	}
	for (; ip_addrs && ip_addrs[n_ip]; n_ip++) {
		if (n_ip == SAN_MAX)
			return kc_error_set(err, KC_ERR_INVALID, "more than %d IP addresses",
					    SAN_MAX);
		unsigned char raw[16];
		unsigned raw_len;
		if (inet_pton(AF_INET, ip_addrs[n_ip], raw) == 1)
			raw_len = 4;
		else if (inet_pton(AF_INET6, ip_addrs[n_ip], raw) == 1)
			raw_len = 16;
		else
			return kc_error_set(err, KC_ERR_INVALID, "invalid IP address \"%.64s\"",
					    ip_addrs[n_ip]);
		int rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, raw,
							      raw_len, GNUTLS_FSAN_APPEND);
		if (rc < 0)
			return gnutls_fail(err, rc, "cannot add an IP address");
	}
	if (n_dns + n_ip == 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "a server certificate needs at least one name or address");
	return 0;
}

/* The expiry of a certificate we issue: `days` from now, but never past
 * the CA's, which would only make a certificate that fails earlier than
 * it says. */
static time_t leaf_not_after(gnutls_x509_crt_t ca, unsigned days)
{
	time_t want = time(NULL) + (time_t)days * DAY_SECONDS;
	time_t ca_end = gnutls_x509_crt_get_expiration_time(ca);
	return (ca_end != (time_t)-1 && ca_end < want) ? ca_end : want;
}

int kc_pki_server_cert_create(const char *dir, const char *cn, const char *const *dns_names,
			      const char *const *ip_addrs, struct kc_error *err)
{
	char key_path[PATH_MAX], crt_path[PATH_MAX];
	if (cn_validate(cn, err) < 0 ||
	    path_in_dir(key_path, sizeof(key_path), dir, "server.key", err) < 0 ||
	    path_in_dir(crt_path, sizeof(crt_path), dir, "server.crt", err) < 0)
		return -1;

	_cleanup_(ca_release) struct ca ca = {0};
	if (ca_load(dir, &ca, err) < 0)
		return -1;

	_cleanup_xkey_ gnutls_x509_privkey_t xkey = NULL;
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	if (new_ec_key(&xkey, err) < 0)
		return -1;
	int rc = gnutls_x509_crt_init(&crt);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a certificate");
	if (crt_basics(crt, cn, leaf_not_after(ca.crt, SERVER_DAYS), NULL, err) < 0 ||
	    add_sans(crt, dns_names, ip_addrs, err) < 0)
		return -1;
	rc = gnutls_x509_crt_set_key(crt, xkey);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot fill the server certificate");
	if (crt_set_ski(crt, err) < 0 || ca_sign(&ca, crt, err) < 0)
		return -1;

	_cleanup_gdatum_ gnutls_datum_t pem = {0};
	if (export_pem(crt, &pem, err) < 0)
		return -1;
	if (write_key(xkey, key_path, false, err) < 0)
		return -1;
	return write_file_atomic(crt_path, pem.data, pem.size, 0644, false, err);
}

int kc_pki_key_and_csr(const char *key_path, const char *cn, char **ret_csr_pem,
		       struct kc_error *err)
{
	if (!key_path || !*key_path)
		return kc_error_set(err, KC_ERR_INVALID, "key path is empty");
	if (cn_validate(cn, err) < 0)
		return -1;

	_cleanup_xkey_ gnutls_x509_privkey_t xkey = NULL;
	_cleanup_privkey_ gnutls_privkey_t key = NULL;
	_cleanup_crq_ gnutls_x509_crq_t crq = NULL;
	if (new_ec_key(&xkey, err) < 0 || signer_from_x509(xkey, &key, err) < 0)
		return -1;
	int rc = gnutls_x509_crq_init(&crq);
	if (rc >= 0)
		rc = gnutls_x509_crq_set_version(crq, 1);
	if (rc >= 0)
		rc = gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
						   (unsigned)strlen(cn));
	if (rc >= 0)
		rc = gnutls_x509_crq_set_key(crq, xkey);
	if (rc >= 0)
		rc = gnutls_x509_crq_privkey_sign(crq, key, GNUTLS_DIG_SHA256, 0);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot make the certificate request");

	_cleanup_gdatum_ gnutls_datum_t pem = {0};
	rc = gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &pem);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot export the certificate request");
	_cleanup_free_ char *csr = strndup((const char *)pem.data, pem.size);
	if (!csr)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	if (write_key(xkey, key_path, false, err) < 0)
		return -1;
	*ret_csr_pem = steal_ptr(&csr);
	return 0;
}

/* The keys we accept from agents: what GnuTLS and OpenSSL both handle well
 * and what is not trivially weak. */
static int csr_key_check(gnutls_x509_crq_t crq, struct kc_error *err)
{
	unsigned bits = 0;
	int algo = gnutls_x509_crq_get_pk_algorithm(crq, &bits);
	switch (algo) {
	case GNUTLS_PK_RSA:
		if (bits >= 2048)
			return 0;
		return kc_error_set(err, KC_ERR_INVALID, "CSR has an RSA key of %u bits (< 2048)",
				    bits);
	case GNUTLS_PK_ECDSA: {
		_cleanup_pubkey_ gnutls_pubkey_t pub = NULL;
		gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
		if (gnutls_pubkey_init(&pub) < 0 ||
		    gnutls_pubkey_import_x509_crq(pub, crq, 0) < 0 ||
		    gnutls_pubkey_export_ecc_raw(pub, &curve, NULL, NULL) < 0)
			return kc_error_set(err, KC_ERR_INVALID, "CSR has an unreadable EC key");
		if (curve == GNUTLS_ECC_CURVE_SECP256R1 || curve == GNUTLS_ECC_CURVE_SECP384R1)
			return 0;
		return kc_error_set(err, KC_ERR_INVALID, "CSR has an EC key on curve %s",
				    gnutls_ecc_curve_get_name(curve) ?: "unknown");
	}
	case GNUTLS_PK_EDDSA_ED25519:
		return 0;
	default:
		return kc_error_set(err, KC_ERR_INVALID, "CSR has an unsupported key type (%s)",
				    algo < 0 ? gnutls_strerror(algo)
					     : gnutls_pk_algorithm_get_name(algo) ?: "unknown");
	}
}

int kc_pki_sign_csr(const char *ca_dir, const char *csr_pem, const char *cn_required, unsigned days,
		    char **ret_cert_pem, char **ret_serial_hex, struct kc_error *err)
{
	gnutls_datum_t csr_datum;
	if (pem_datum(csr_pem, KC_PKI_CSR_MAX, "certificate request", &csr_datum, err) < 0 ||
	    cn_validate(cn_required, err) < 0)
		return -1;
	if (days < 1 || days > CA_DAYS)
		return kc_error_set(err, KC_ERR_INVALID, "validity must be 1..%d days", CA_DAYS);

	_cleanup_crq_ gnutls_x509_crq_t crq = NULL;
	int rc = gnutls_x509_crq_init(&crq);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a certificate request");
	rc = gnutls_x509_crq_import(crq, &csr_datum, GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INVALID, "invalid certificate request: %s",
				    gnutls_strerror(rc));
	/* Proof that the requester holds the private key. */
	rc = gnutls_x509_crq_verify(crq, 0);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "certificate request signature does not verify: %s",
				    gnutls_strerror(rc));
	if (csr_key_check(crq, err) < 0)
		return -1;

	_cleanup_pubkey_ gnutls_pubkey_t pub = NULL;
	rc = gnutls_pubkey_init(&pub);
	if (rc >= 0)
		rc = gnutls_pubkey_import_x509_crq(pub, crq, 0);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INVALID, "cannot read the request's key: %s",
				    gnutls_strerror(rc));

	_cleanup_(ca_release) struct ca ca = {0};
	if (ca_load(ca_dir, &ca, err) < 0)
		return -1;

	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	char serial[2 * SERIAL_BYTES + 1];
	rc = gnutls_x509_crt_init(&crt);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a certificate");
	if (crt_basics(crt, cn_required, leaf_not_after(ca.crt, days), serial, err) < 0)
		return -1;
	rc = gnutls_x509_crt_set_pubkey(crt, pub);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot fill the client certificate");
	if (crt_set_ski(crt, err) < 0 || ca_sign(&ca, crt, err) < 0)
		return -1;

	_cleanup_gdatum_ gnutls_datum_t pem = {0};
	if (export_pem(crt, &pem, err) < 0)
		return -1;
	_cleanup_free_ char *cert = strndup((const char *)pem.data, pem.size);
	_cleanup_free_ char *serial_copy = strdup(serial);
	if (!cert || !serial_copy)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret_cert_pem = steal_ptr(&cert);
	*ret_serial_hex = steal_ptr(&serial_copy);
	return 0;
}

static int crt_from_pem(const char *cert_pem, gnutls_x509_crt_t *ret, struct kc_error *err)
{
	gnutls_datum_t d;
	if (pem_datum(cert_pem, KC_PKI_CERT_MAX, "certificate", &d, err) < 0)
		return -1;
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	int rc = gnutls_x509_crt_init(&crt);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a certificate");
	rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INVALID, "invalid certificate: %s",
				    gnutls_strerror(rc));
	*ret = steal_ptr(&crt);
	return 0;
}

int kc_pki_fingerprint_sha256(const char *cert_pem, char ret_hex[65], struct kc_error *err)
{
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	if (crt_from_pem(cert_pem, &crt, err) < 0)
		return -1;
	unsigned char digest[32];
	size_t size = sizeof(digest);
	int rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, digest, &size);
	if (rc < 0 || size != sizeof(digest))
		return gnutls_fail(err, rc < 0 ? rc : GNUTLS_E_INTERNAL_ERROR,
				   "cannot compute the fingerprint");
	hex_encode(digest, sizeof(digest), ret_hex);
	return 0;
}

static int crt_info(gnutls_x509_crt_t crt, char **ret_cn, char **ret_serial_hex,
		    time_t *ret_not_after, struct kc_error *err)
{
	char cn[256];
	size_t cn_size = sizeof(cn);
	int rc =
		gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_size);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return kc_error_set(err, KC_ERR_INVALID, "certificate has no common name");
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INVALID, "cannot read the common name: %s",
				    gnutls_strerror(rc));
	if (strlen(cn) != cn_size)
		return kc_error_set(err, KC_ERR_INVALID, "certificate common name contains NUL");
	char second[256];
	size_t second_size = sizeof(second);
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, second,
					  &second_size) != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return kc_error_set(err, KC_ERR_INVALID,
				    "certificate has more than one common name");

	unsigned char serial[64];
	size_t serial_size = sizeof(serial);
	rc = gnutls_x509_crt_get_serial(crt, serial, &serial_size);
	if (rc < 0 || serial_size == 0)
		return kc_error_set(err, KC_ERR_INVALID, "cannot read the serial number: %s",
				    gnutls_strerror(rc < 0 ? rc : GNUTLS_E_ASN1_DER_ERROR));
	size_t skip = 0;
	while (skip + 1 < serial_size && serial[skip] == 0)
		skip++;
	if (serial_size - skip > (KC_PKI_SERIAL_HEX_MAX - 1) / 2)
		return kc_error_set(err, KC_ERR_INVALID, "serial number longer than 20 bytes");

	time_t not_after = gnutls_x509_crt_get_expiration_time(crt);
	if (not_after == (time_t)-1)
		return kc_error_set(err, KC_ERR_INVALID, "cannot read the expiry time");

	_cleanup_free_ char *cn_copy = ret_cn ? strdup(cn) : NULL;
	_cleanup_free_ char *hex = ret_serial_hex ? malloc(KC_PKI_SERIAL_HEX_MAX) : NULL;
	if ((ret_cn && !cn_copy) || (ret_serial_hex && !hex))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (hex)
		hex_encode(serial + skip, serial_size - skip, hex);
	if (ret_cn)
		*ret_cn = steal_ptr(&cn_copy);
	if (ret_serial_hex)
		*ret_serial_hex = steal_ptr(&hex);
	if (ret_not_after)
		*ret_not_after = not_after;
	return 0;
}

int kc_pki_cert_info(const char *cert_pem, char **ret_cn, char **ret_serial_hex,
		     time_t *ret_not_after, struct kc_error *err)
{
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	if (crt_from_pem(cert_pem, &crt, err) < 0)
		return -1;
	return crt_info(crt, ret_cn, ret_serial_hex, ret_not_after, err);
}

int kc_pki_cert_info_der(const void *der, size_t der_len, char **ret_cn, char **ret_serial_hex,
			 time_t *ret_not_after, struct kc_error *err)
{
	if (!der || der_len == 0)
		return kc_error_set(err, KC_ERR_INVALID, "certificate is empty");
	if (der_len > KC_PKI_CERT_MAX)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "certificate is larger than %d bytes",
				    KC_PKI_CERT_MAX);
	gnutls_datum_t d = {.data = (unsigned char *)der, .size = (unsigned)der_len};
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	int rc = gnutls_x509_crt_init(&crt);
	if (rc < 0)
		return gnutls_fail(err, rc, "cannot allocate a certificate");
	rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER);
	if (rc < 0)
		return kc_error_set(err, KC_ERR_INVALID, "invalid certificate: %s",
				    gnutls_strerror(rc));
	return crt_info(crt, ret_cn, ret_serial_hex, ret_not_after, err);
}
