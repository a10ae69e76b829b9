/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for pki.h: the CA, server and agent certificates, CSR
 * signing and its refusals.  Results are cross-checked with openssl and,
 * when installed (Debian package gnutls-bin), certtool.
 */
#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "cleanup.h"
#include "kctest.h"
#include "pki.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(char **dir)
{
	if (*dir) {
		nftw(*dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(*dir);
	}
}
#define _cleanup_tree_ _cleanup_(rm_tree)

static char *tmp_dir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path = NULL;
	if (asprintf(&path, "%s/kctest-pki-XXXXXX", base) < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static char *path_of(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static char *read_text(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = calloc(1, 256 * 1024);
	if (!buf)
		return NULL;
	size_t n = fread(buf, 1, 256 * 1024 - 1, f);
	buf[n] = '\0';
	return buf;
}

static bool write_text(const char *path, const char *text)
{
	_cleanup_fclose_ FILE *f = fopen(path, "we");
	return f && fputs(text, f) >= 0;
}

/* Runs a shell command of ours (paths under our temp folder only) and
 * returns its stdout+stderr; *status gets the exit status. */
static char *run(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run(int *status, const char *fmt, ...)
{
	_cleanup_free_ char *cmd = NULL, *full = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || asprintf(&full, "%s 2>&1", cmd) < 0)
		return NULL;
	FILE *p = popen(full, "re");
	if (!p)
		return NULL;
	char *out = calloc(1, 256 * 1024);
	size_t len = out ? fread(out, 1, 256 * 1024 - 1, p) : 0;
	if (out)
		out[len] = '\0';
	int st = pclose(p);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}

static bool have(const char *tool)
{
	int st;
	_cleanup_free_ char *out = run(&st, "command -v %s", tool);
	return st == 0;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (st.st_mode & 07777) : (mode_t)-1;
}

/* No "*.tmp.XXXXXX" files left behind. */
static bool no_temp_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool ok = true;
	for (struct dirent *e; (e = readdir(d));)
		if (strstr(e->d_name, ".tmp."))
			ok = false;
	closedir(d);
	return ok;
}

/* A CA in a new temp folder. */
static char *new_ca(const char *cn)
{
	char *dir = tmp_dir();
	struct kc_error err = {0};
	if (!dir || kc_pki_ca_create(dir, cn, &err) < 0) {
		kc_test_diag("CA creation failed: %s", err.message);
		rm_tree(&dir);
		return NULL;
	}
	return dir;
}

/* Makes dir/NAME.key + CSR, signs it with the CA in ca_dir as `cn`, writes
 * dir/NAME.crt; returns the serial. */
static char *new_agent(const char *ca_dir, const char *dir, const char *name, const char *cn)
{
	struct kc_error err = {0};
	_cleanup_free_ char *key = NULL, *crt = NULL, *fname = NULL, *csr = NULL, *pem = NULL;
	char *serial = NULL;
	if (asprintf(&fname, "%s.key", name) < 0 || !(key = path_of(dir, fname)))
		return NULL;
	free(fname);
	fname = NULL;
	if (asprintf(&fname, "%s.crt", name) < 0 || !(crt = path_of(dir, fname)))
		return NULL;
	if (kc_pki_key_and_csr(key, cn, &csr, &err) < 0 ||
	    kc_pki_sign_csr(ca_dir, csr, cn, 365, &pem, &serial, &err) < 0) {
		kc_test_diag("agent certificate failed: %s", err.message);
		return NULL;
	}
	if (!write_text(crt, pem)) {
		free(serial);
		return NULL;
	}
	return serial;
}

KC_TEST(ca_files_modes_and_extensions)
{
	_cleanup_tree_ char *dir = new_ca("kvmcloud test CA");
	if (!KC_CHECK(dir))
		return;
	_cleanup_free_ char *key = path_of(dir, "ca.key");
	_cleanup_free_ char *crt = path_of(dir, "ca.crt");
	KC_CHECK_INT(mode_of(key), 0600);
	KC_CHECK_INT(mode_of(crt), 0644);
	KC_CHECK(no_temp_files(dir));

	_cleanup_free_ char *key_pem = read_text(key);
	KC_CHECK(key_pem && strstr(key_pem, "-----BEGIN PRIVATE KEY-----"));

	_cleanup_free_ char *pem = read_text(crt);
	_cleanup_free_ char *cn = NULL, *serial = NULL;
	time_t not_after = 0;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_pki_cert_info(pem, &cn, &serial, &not_after, &err), 0))
		kc_test_diag("%s", err.message);
	KC_CHECK_STREQ(cn, "kvmcloud test CA");
	KC_CHECK(serial && strlen(serial) == 32);
	time_t now = time(NULL);
	KC_CHECK(not_after > now + 3649L * 86400 && not_after < now + 3651L * 86400);

	int st;
	_cleanup_free_ char *text = run(&st, "openssl x509 -noout -text -in %s", crt);
	KC_CHECK_INT(st, 0);
	if (!KC_CHECK(text))
		return;
	KC_CHECK(strstr(text, "X509v3 Basic Constraints: critical"));
	KC_CHECK(strstr(text, "CA:TRUE, pathlen:0"));
	KC_CHECK(strstr(text, "X509v3 Key Usage: critical"));
	KC_CHECK(strstr(text, "Certificate Sign, CRL Sign"));
	KC_CHECK(strstr(text, "X509v3 Subject Key Identifier"));
	KC_CHECK(strstr(text, "ASN1 OID: prime256v1"));
	KC_CHECK(strstr(text, "ecdsa-with-SHA256"));
	/* A self-signed CA verifies against itself. */
	_cleanup_free_ char *v = run(&st, "openssl verify -CAfile %s %s", crt, crt);
	KC_CHECK_INT(st, 0);
	_cleanup_free_ char *k = run(&st, "openssl pkey -noout -in %s", key);
	KC_CHECK_INT(st, 0);
}

KC_TEST(certtool_accepts_the_ca)
{
	if (!have("certtool")) {
		kc_test_diag("certtool not installed (gnutls-bin): skipped");
		return;
	}
	_cleanup_tree_ char *dir = new_ca("kvmcloud test CA");
	if (!KC_CHECK(dir))
		return;
	int st;
	_cleanup_free_ char *out = run(&st, "certtool --certificate-info --infile %s/ca.crt", dir);
	KC_CHECK_INT(st, 0);
	KC_CHECK(out && strstr(out, "Certificate Authority (CA): TRUE"));
	KC_CHECK(out && strstr(out, "Path Length Constraint: 0"));
}

KC_TEST(ca_is_never_overwritten)
{
	_cleanup_tree_ char *dir = new_ca("first");
	if (!KC_CHECK(dir))
		return;
	_cleanup_free_ char *crt = path_of(dir, "ca.crt");
	_cleanup_free_ char *key = path_of(dir, "ca.key");
	_cleanup_free_ char *before = read_text(crt);
	_cleanup_free_ char *key_before = read_text(key);
	struct kc_error err = {0};
	KC_CHECK_INT(kc_pki_ca_create(dir, "second", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	_cleanup_free_ char *after = read_text(crt);
	_cleanup_free_ char *key_after = read_text(key);
	KC_CHECK_STREQ(before, after);
	KC_CHECK_STREQ(key_before, key_after);

	/* Half a CA (a lone certificate) is not completed with a new key. */
	KC_CHECK_INT(unlink(key), 0);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_ca_create(dir, "second", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	KC_CHECK(access(key, F_OK) != 0);
	KC_CHECK(no_temp_files(dir));
}

KC_TEST(ca_rejects_bad_input)
{
	_cleanup_tree_ char *dir = tmp_dir();
	struct kc_error err = {0};
	KC_CHECK_INT(kc_pki_ca_create(dir, "", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_ca_create(dir, "a\nb", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	char longcn[80];
	memset(longcn, 'x', sizeof(longcn) - 1);
	longcn[sizeof(longcn) - 1] = '\0';
	KC_CHECK_INT(kc_pki_ca_create(dir, longcn, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_ca_create("/nonexistent/kc-pki", "x", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INTERNAL);
}

KC_TEST(server_cert_verifies_and_has_sans)
{
	_cleanup_tree_ char *dir = new_ca("kvmcloud test CA");
	if (!KC_CHECK(dir))
		return;
	const char *dns[] = {"localhost", "server.example.org", NULL};
	const char *ips[] = {"127.0.0.1", "::1", NULL};
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_pki_server_cert_create(dir, "kvmcloud-server", dns, ips, &err), 0))
		kc_test_diag("%s", err.message);
	_cleanup_free_ char *key = path_of(dir, "server.key");
	_cleanup_free_ char *crt = path_of(dir, "server.crt");
	KC_CHECK_INT(mode_of(key), 0600);
	KC_CHECK_INT(mode_of(crt), 0644);

	int st;
	_cleanup_free_ char *v = run(&st, "openssl verify -CAfile %s/ca.crt %s", dir, crt);
	if (!KC_CHECK_INT(st, 0))
		kc_test_diag("%s", v);
	_cleanup_free_ char *text = run(&st, "openssl x509 -noout -text -in %s", crt);
	KC_CHECK(text && strstr(text, "DNS:localhost"));
	KC_CHECK(text && strstr(text, "DNS:server.example.org"));
	KC_CHECK(text && strstr(text, "IP Address:127.0.0.1"));
	KC_CHECK(text && strstr(text, "IP Address:0:0:0:0:0:0:0:1"));
	KC_CHECK(text && strstr(text, "TLS Web Server Authentication"));
	KC_CHECK(text && !strstr(text, "TLS Web Client Authentication"));
	KC_CHECK(text && strstr(text, "CA:FALSE"));
	KC_CHECK(text && strstr(text, "X509v3 Authority Key Identifier"));
	/* The key on disk is the certificate's. */
	_cleanup_free_ char *m = run(&st,
				     "test \"$(openssl x509 -noout -pubkey -in %s)\" = "
				     "\"$(openssl pkey -pubout -in %s)\"",
				     crt, key);
	KC_CHECK_INT(st, 0);

	/* Renewal replaces both files. */
	_cleanup_free_ char *before = read_text(crt);
	KC_CHECK_INT(kc_pki_server_cert_create(dir, "kvmcloud-server", dns, NULL, &err), 0);
	_cleanup_free_ char *after = read_text(crt);
	KC_CHECK(before && after && strcmp(before, after) != 0);
	KC_CHECK(no_temp_files(dir));
}

KC_TEST(server_cert_rejects_bad_input)
{
	_cleanup_tree_ char *dir = new_ca("kvmcloud test CA");
	if (!KC_CHECK(dir))
		return;
	struct kc_error err = {0};
	const char *bad_ip[] = {"300.1.1.1", NULL};
	KC_CHECK_INT(kc_pki_server_cert_create(dir, "s", NULL, bad_ip, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	const char *bad_dns[] = {"a b", NULL};
	KC_CHECK_INT(kc_pki_server_cert_create(dir, "s", bad_dns, NULL, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_server_cert_create(dir, "s", NULL, NULL, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);

	_cleanup_tree_ char *empty = tmp_dir();
	const char *dns[] = {"localhost", NULL};
	KC_CHECK_INT(kc_pki_server_cert_create(empty, "s", dns, NULL, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	_cleanup_free_ char *key = path_of(empty, "server.key");
	KC_CHECK(access(key, F_OK) != 0);
}

KC_TEST(agent_csr_signed_as_the_required_cn)
{
	_cleanup_tree_ char *ca = new_ca("kvmcloud test CA");
	_cleanup_tree_ char *agent = tmp_dir();
	if (!KC_CHECK(ca && agent))
		return;
	_cleanup_free_ char *key = path_of(agent, "agent.key");
	_cleanup_free_ char *csr = NULL, *pem = NULL, *serial = NULL;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_pki_key_and_csr(key, "what-the-agent-claims", &csr, &err), 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	KC_CHECK_INT(mode_of(key), 0600);
	KC_CHECK(strstr(csr, "-----BEGIN NEW CERTIFICATE REQUEST-----") ||
		 strstr(csr, "-----BEGIN CERTIFICATE REQUEST-----"));
	if (!KC_CHECK_INT(kc_pki_sign_csr(ca, csr, "host-a", 365, &pem, &serial, &err), 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	KC_CHECK(strlen(serial) == 32);
	for (const char *p = serial; *p; p++)
		KC_CHECK(isdigit((unsigned char)*p) || (*p >= 'a' && *p <= 'f'));

	_cleanup_free_ char *cn = NULL, *serial2 = NULL;
	time_t not_after = 0;
	KC_CHECK_INT(kc_pki_cert_info(pem, &cn, &serial2, &not_after, &err), 0);
	KC_CHECK_STREQ(cn, "host-a");
	KC_CHECK_STREQ(serial2, serial);
	time_t now = time(NULL);
	KC_CHECK(not_after > now + 364L * 86400 && not_after < now + 366L * 86400);

	_cleanup_free_ char *crt = path_of(agent, "agent.crt");
	KC_CHECK(write_text(crt, pem));
	int st;
	_cleanup_free_ char *v = run(&st, "openssl verify -CAfile %s/ca.crt %s", ca, crt);
	if (!KC_CHECK_INT(st, 0))
		kc_test_diag("%s", v);
	_cleanup_free_ char *text = run(&st, "openssl x509 -noout -text -in %s", crt);
	KC_CHECK(text && strstr(text, "Subject: CN = host-a"));
	KC_CHECK(text && !strstr(text, "what-the-agent-claims"));
	KC_CHECK(text && strstr(text, "TLS Web Client Authentication"));
	KC_CHECK(text && !strstr(text, "TLS Web Server Authentication"));
	KC_CHECK(text && strstr(text, "CA:FALSE"));
	_cleanup_free_ char *ser = run(&st, "openssl x509 -noout -serial -in %s", crt);
	KC_CHECK(ser && strncmp(ser, "serial=", 7) == 0 && strncasecmp(ser + 7, serial, 32) == 0);
	/* The agent's key is the certificate's key. */
	_cleanup_free_ char *m = run(&st,
				     "test \"$(openssl x509 -noout -pubkey -in %s)\" = "
				     "\"$(openssl pkey -pubout -in %s)\"",
				     crt, key);
	KC_CHECK_INT(st, 0);

	if (have("certtool")) {
		_cleanup_free_ char *info =
			run(&st, "certtool --certificate-info --infile %s", crt);
		KC_CHECK_INT(st, 0);
		_cleanup_free_ char *cv = run(&st,
					      "certtool --verify --load-ca-certificate %s/ca.crt "
					      "--infile %s",
					      ca, crt);
		if (!KC_CHECK_INT(st, 0))
			kc_test_diag("%s", cv);
	}

	/* Two signings never share a serial. */
	_cleanup_free_ char *pem2 = NULL, *serial3 = NULL;
	KC_CHECK_INT(kc_pki_sign_csr(ca, csr, "host-a", 30, &pem2, &serial3, &err), 0);
	KC_CHECK(serial3 && strcmp(serial, serial3) != 0);
}

KC_TEST(key_and_csr_replaces_the_key_atomically)
{
	_cleanup_tree_ char *dir = tmp_dir();
	_cleanup_free_ char *key = path_of(dir, "agent.key");
	KC_CHECK(write_text(key, "old"));
	chmod(key, 0644);
	_cleanup_free_ char *csr = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_pki_key_and_csr(key, "host-a", &csr, &err), 0);
	_cleanup_free_ char *now = read_text(key);
	KC_CHECK(now && strstr(now, "PRIVATE KEY"));
	KC_CHECK_INT(mode_of(key), 0600);
	KC_CHECK(no_temp_files(dir));
}

KC_TEST(csr_extensions_and_subject_are_ignored)
{
	_cleanup_tree_ char *ca = new_ca("kvmcloud test CA");
	_cleanup_tree_ char *dir = tmp_dir();
	if (!KC_CHECK(ca && dir))
		return;
	int st;
	_cleanup_free_ char *out =
		run(&st,
		    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		    "-nodes -keyout %s/evil.key -out %s/evil.csr -subj /CN=admin "
		    "-addext basicConstraints=critical,CA:TRUE "
		    "-addext subjectAltName=DNS:evil.example "
		    "-addext extendedKeyUsage=serverAuth",
		    dir, dir);
	if (!KC_CHECK_INT(st, 0)) {
		kc_test_diag("%s", out);
		return;
	}
	_cleanup_free_ char *csr_path = path_of(dir, "evil.csr");
	_cleanup_free_ char *csr = read_text(csr_path);
	_cleanup_free_ char *pem = NULL, *serial = NULL;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_pki_sign_csr(ca, csr, "host-b", 365, &pem, &serial, &err), 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	_cleanup_free_ char *crt = path_of(dir, "evil.crt");
	KC_CHECK(write_text(crt, pem));
	_cleanup_free_ char *text = run(&st, "openssl x509 -noout -text -in %s", crt);
	KC_CHECK(text && strstr(text, "Subject: CN = host-b"));
	KC_CHECK(text && strstr(text, "CA:FALSE"));
	KC_CHECK(text && !strstr(text, "CA:TRUE"));
	KC_CHECK(text && !strstr(text, "evil.example"));
	KC_CHECK(text && !strstr(text, "admin"));
	KC_CHECK(text && !strstr(text, "TLS Web Server Authentication"));
}

/* Decodes a PEM CSR, applies `tamper` to its DER, re-encodes it. */
static char *tampered(const char *csr, void (*tamper)(unsigned char *der, size_t len))
{
	gnutls_datum_t in = {(unsigned char *)csr, (unsigned)strlen(csr)};
	gnutls_datum_t der = {0}, out = {0};
	if (gnutls_pem_base64_decode2("NEW CERTIFICATE REQUEST", &in, &der) < 0 &&
	    gnutls_pem_base64_decode2("CERTIFICATE REQUEST", &in, &der) < 0)
		return NULL;
	tamper(der.data, der.size);
	int rc = gnutls_pem_base64_encode2("CERTIFICATE REQUEST", &der, &out);
	gnutls_free(der.data);
	if (rc < 0)
		return NULL;
	char *s = strndup((char *)out.data, out.size);
	gnutls_free(out.data);
	return s;
}

/* The last byte is inside the signature value. */
static void flip_signature(unsigned char *der, size_t len)
{
	der[len - 1] ^= 0x01;
}

/* Changes the requested name without re-signing. */
static void rename_subject(unsigned char *der, size_t len)
{
	unsigned char *p = memmem(der, len, "host-a", 6);
	if (p)
		p[5] = 'b';
}

KC_TEST(csr_with_bad_signature_is_refused)
{
	_cleanup_tree_ char *ca = new_ca("kvmcloud test CA");
	_cleanup_tree_ char *dir = tmp_dir();
	_cleanup_free_ char *key = path_of(dir, "agent.key");
	_cleanup_free_ char *csr = NULL;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_pki_key_and_csr(key, "host-a", &csr, &err), 0))
		return;
	void (*tampers[])(unsigned char *, size_t) = {flip_signature, rename_subject};
	for (size_t i = 0; i < KC_ARRAY_SIZE(tampers); i++) {
		_cleanup_free_ char *bad = tampered(csr, tampers[i]);
		if (!KC_CHECK(bad))
			continue;
		char *pem = NULL, *serial = NULL;
		kc_error_clear(&err);
		KC_CHECK_INT(kc_pki_sign_csr(ca, bad, "host-a", 365, &pem, &serial, &err), -1);
		KC_CHECK_INT(err.code, KC_ERR_INVALID);
		KC_CHECK(pem == NULL && serial == NULL);
		kc_test_diag("refused as expected: %s", err.message);
	}
}

KC_TEST(csr_over_the_limit_or_garbage_is_refused)
{
	_cleanup_tree_ char *ca = new_ca("kvmcloud test CA");
	if (!KC_CHECK(ca))
		return;
	_cleanup_free_ char *big = malloc(KC_PKI_CSR_MAX + 2);
	memset(big, 'A', KC_PKI_CSR_MAX + 1);
	big[KC_PKI_CSR_MAX + 1] = '\0';
	char *pem = NULL, *serial = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_pki_sign_csr(ca, big, "host-a", 365, &pem, &serial, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_TOO_LARGE);

	/* A real CSR padded past the limit is refused too: the bound is on
	 * the input, not on what it decodes to. */
	_cleanup_tree_ char *dir = tmp_dir();
	_cleanup_free_ char *key = path_of(dir, "a.key");
	_cleanup_free_ char *csr = NULL;
	KC_CHECK_INT(kc_pki_key_and_csr(key, "host-a", &csr, &err), 0);
	_cleanup_free_ char *padded = malloc(KC_PKI_CSR_MAX + strlen(csr) + 1);
	memset(padded, '\n', KC_PKI_CSR_MAX);
	strcpy(padded + KC_PKI_CSR_MAX, csr);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_sign_csr(ca, padded, "host-a", 365, &pem, &serial, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_TOO_LARGE);

	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_sign_csr(ca, "not a csr", "host-a", 365, &pem, &serial, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_sign_csr(ca, csr, "host-a", 0, &pem, &serial, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_sign_csr(ca, csr, "host-a", 4000, &pem, &serial, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_sign_csr(ca, csr, "bad\tname", 365, &pem, &serial, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK(pem == NULL && serial == NULL);
}

KC_TEST(csr_with_weak_key_is_refused)
{
	_cleanup_tree_ char *ca = new_ca("kvmcloud test CA");
	_cleanup_tree_ char *dir = tmp_dir();
	if (!KC_CHECK(ca && dir))
		return;
	int st;
	_cleanup_free_ char *out = run(&st,
				       "openssl req -new -newkey rsa:1024 -nodes -keyout %s/w.key "
				       "-out %s/w.csr -subj /CN=x",
				       dir, dir);
	if (st != 0) {
		kc_test_diag("openssl cannot make an RSA-1024 CSR here: skipped");
		return;
	}
	_cleanup_free_ char *p = path_of(dir, "w.csr");
	_cleanup_free_ char *csr = read_text(p);
	char *pem = NULL, *serial = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_pki_sign_csr(ca, csr, "host-a", 365, &pem, &serial, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(fingerprint_matches_openssl)
{
	_cleanup_tree_ char *dir = new_ca("kvmcloud test CA");
	if (!KC_CHECK(dir))
		return;
	_cleanup_free_ char *crt = path_of(dir, "ca.crt");
	_cleanup_free_ char *pem = read_text(crt);
	char hex[65];
	struct kc_error err = {0};
	KC_CHECK_INT(kc_pki_fingerprint_sha256(pem, hex, &err), 0);
	KC_CHECK_INT(strlen(hex), 64);

	int st;
	_cleanup_free_ char *out = run(&st, "openssl x509 -noout -fingerprint -sha256 -in %s", crt);
	if (!KC_CHECK(out && st == 0))
		return;
	char want[65] = {0};
	size_t n = 0;
	const char *eq = strchr(out, '=');
	for (const char *p = eq ? eq + 1 : ""; *p && *p != '\n' && n < 64; p++)
		if (*p != ':')
			want[n++] = (char)tolower((unsigned char)*p);
	KC_CHECK_STREQ(hex, want);

	kc_error_clear(&err);
	KC_CHECK_INT(kc_pki_fingerprint_sha256("garbage", hex, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(cert_info_reads_foreign_certificates)
{
	_cleanup_tree_ char *dir = tmp_dir();
	int st;
	_cleanup_free_ char *out =
		run(&st,
		    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		    "-nodes -keyout %s/f.key -out %s/f.crt -subj /CN=foreign "
		    "-days 2 -set_serial 255",
		    dir, dir);
	if (!KC_CHECK_INT(st, 0)) {
		kc_test_diag("%s", out);
		return;
	}
	_cleanup_free_ char *p = path_of(dir, "f.crt");
	_cleanup_free_ char *pem = read_text(p);
	_cleanup_free_ char *cn = NULL, *serial = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_pki_cert_info(pem, &cn, &serial, NULL, &err), 0);
	KC_CHECK_STREQ(cn, "foreign");
	/* 255 is DER 00 ff: the sign byte is not part of the serial. */
	KC_CHECK_STREQ(serial, "ff");
}

KC_TEST(agent_of_another_ca_does_not_verify)
{
	_cleanup_tree_ char *ca1 = new_ca("cluster one");
	_cleanup_tree_ char *ca2 = new_ca("cluster two");
	if (!KC_CHECK(ca1 && ca2))
		return;
	_cleanup_free_ char *serial = new_agent(ca2, ca2, "agent", "host-a");
	if (!KC_CHECK(serial))
		return;
	int st;
	_cleanup_free_ char *v =
		run(&st, "openssl verify -CAfile %s/ca.crt %s/agent.crt", ca1, ca2);
	KC_CHECK(st != 0);
}
KC_TEST_MAIN()
