/* SPDX-License-Identifier: Apache-2.0 */
/*
 * join.c - `kvmcloud-agent join SERVER_URL TOKEN --ca-sha256 HEX`: get this
 * host's certificate from the server (docs/protocol.md, "Joining").
 *
 * Trust: the cluster CA is fetched first from GET /api/v1/ca, without
 * verifying the channel, and believed only if its SHA-256 equals the
 * pinned --ca-sha256 (so a man in the middle can refuse service, nothing
 * more).  The join itself is then an ordinary fully verified HTTPS request
 * with that CA as the only trust anchor, the server's name checked against
 * its certificate: the token never travels to anyone but the real server.
 *
 * Nothing is left behind by a failed join: the new key, certificate and CA
 * are written under temporary names and renamed only once all is checked.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "config.h"
#include "io.h"
#include "json_util.h"
#include "pki.h"
#include "tlslink.h"
#include "verbs.h"

#define URL_MAX		  2048
#define TOKEN_MAX	  256
#define CA_RESPONSE_MAX	  (64 * 1024)
#define JOIN_RESPONSE_MAX (256 * 1024)
#define ENDPOINT_MAX	  300
#define HTTP_TIMEOUT_S	  60
#define CONNECT_TIMEOUT_S 15

struct body {
	char *buf;
	size_t len, max;
	bool too_large;
};

static size_t body_write(char *data, size_t size, size_t n, void *opaque)
{
	struct body *b = opaque;
	size_t add = size * n;
	if (add > b->max - b->len) {
		b->too_large = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	char *nb = realloc(b->buf, b->len + add + 1);
	if (!nb)
		return 0;
	memcpy(nb + b->len, data, add);
	b->buf = nb;
	b->len += add;
	b->buf[b->len] = '\0';
	return add;
}

static void curl_cleanupp(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

static void slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

/* One HTTPS request.  ca_file NULL: the channel is not verified (only for
 * the CA download, whose content is pinned).  Returns the HTTP status and
 * the body (NUL-terminated, malloc'd). */
static int https(const char *url, const char *ca_file, const char *post_json, size_t max,
		 long *ret_status, char **ret_body, struct kc_error *err)
{
	__attribute__((cleanup(curl_cleanupp))) CURL *c = curl_easy_init();
	__attribute__((cleanup(slist_freep))) struct curl_slist *hdrs = NULL;
	char curl_err[CURL_ERROR_SIZE] = "";
	struct body b = {.max = max};
	if (!c)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start libcurl");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (post_json)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	if (!hdrs)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	} else {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (post_json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_json);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		free(b.buf);
		if (b.too_large)
			return kc_error_set(err, KC_ERR_TOO_LARGE,
					    "the server's answer is over %zu bytes", max);
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "%s: %s", url,
				    curl_err[0] ? curl_err : curl_easy_strerror(rc));
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
	*ret_body = b.buf ? b.buf : strdup("");
	return *ret_body ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* The server's own error body, or the status, as our error. */
static int server_error(const char *what, long status, const char *body, struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_loads(body, 0, NULL);
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	enum kc_errcode ec = status == 401		     ? KC_ERR_UNAUTHORIZED
			     : status == 403		     ? KC_ERR_FORBIDDEN
			     : status == 404		     ? KC_ERR_NOT_FOUND
			     : status == 409		     ? KC_ERR_CONFLICT
			     : status >= 400 && status < 500 ? KC_ERR_INVALID
							     : KC_ERR_UNAVAILABLE;
	if (code)
		ec = kc_errcode_from_name(code);
	return kc_error_set(err, ec, "%s refused by the server (HTTP %ld): %.300s", what, status,
			    msg ? msg : "no error message");
}

/* Lowercase hex without colons, exactly 64 digits. */
static int parse_pin(const char *in, char out[65], struct kc_error *err)
{
	size_t n = 0;
	for (const char *p = in; p && *p; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)*p) || n == 64)
			return kc_error_set(err, KC_ERR_INVALID,
					    "--ca-sha256 must be 64 hex digits (colons allowed)");
		out[n++] = (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
	if (n != 64)
		return kc_error_set(err, KC_ERR_INVALID,
				    "--ca-sha256 must be 64 hex digits (colons allowed)");
	return 0;
}

static int check_pin(const char *pem, const char *pin, const char *what, struct kc_error *err)
{
	char fp[65];
	if (kc_pki_fingerprint_sha256(pem, fp, err) < 0)
		return -1;
	if (strcmp(fp, pin) != 0)
		return kc_error_set(err, KC_ERR_UNAUTHORIZED,
				    "%s has SHA-256 %s, not the pinned %s: refusing to trust it",
				    what, fp, pin);
	return 0;
}

/* Writes data to a new temporary file next to `path` and returns its name;
 * the caller renames it into place (or unlinks it). */
static char *write_temp(const char *path, const char *data, mode_t mode, struct kc_error *err)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.join-XXXXXX", path) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", tmp);
		free(tmp);
		return NULL;
	}
	int r = fchmod(fd, mode) < 0 ? -errno : kc_write_all(fd, data, strlen(data));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "cannot write %s", tmp);
		unlink(tmp);
		free(tmp);
		return NULL;
	}
	return tmp;
}

/* "host:port" or "[v6]:port" as the server sent it; the host part (the
 * name its certificate must carry) goes into ret_host. */
static int endpoint_host(const char *ep, char *ret_host, size_t size, struct kc_error *err)
{
	const char *colon = NULL, *host = ep;
	size_t hlen = 0;
	if (ep[0] == '[') {
		const char *close = strchr(ep, ']');
		if (close && close[1] == ':') {
			host = ep + 1;
			hlen = (size_t)(close - host);
			colon = close + 1;
		}
	} else if ((colon = strchr(ep, ':')) && strchr(colon + 1, ':')) {
		colon = NULL;
	} else if (colon) {
		hlen = (size_t)(colon - ep);
	}
	bool port_ok = colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
		       strlen(colon + 1) <= 5 && atoi(colon + 1) > 0 && atoi(colon + 1) < 65536;
	bool clean = strcspn(ep, " \t\r\n=#") == strlen(ep);
	if (!port_ok || hlen == 0 || hlen >= size || !clean)
		return kc_error_set(err, KC_ERR_INVALID,
				    "the server sent a bad agent_endpoint \"%.64s\"", ep);
	memcpy(ret_host, host, hlen);
	ret_host[hlen] = '\0';
	return 0;
}

/* The optional "agent_endpoints" of the join answer (every server of the
 * cluster, docs/protocol.md) as "a,b,c" (malloc'd; NULL if absent or
 * only `ep`).  Each is checked as agent_endpoint is. */
static int endpoints_list(const json_t *answer, const char *ep, char **ret, struct kc_error *err)
{
	json_t *arr = json_object_get(answer, "agent_endpoints");
	char host[ENDPOINT_MAX + 1];
	size_t i, n = 0;
	json_t *v;

	*ret = NULL;
	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > 16)
		return kc_error_set(err, KC_ERR_INVALID,
				    "the server sent a bad agent_endpoints (at most 16 strings)");
	_cleanup_free_ char *list = calloc(1, 17 * (ENDPOINT_MAX + 1));
	if (!list)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	strcpy(list, ep);
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || strlen(s) > ENDPOINT_MAX || strchr(s, ',') ||
		    endpoint_host(s, host, sizeof(host), err) < 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "the server sent a bad agent_endpoints entry");
		if (strcmp(s, ep) == 0)
			continue;
		strcat(list, ",");
		strcat(list, s);
		n++;
	}
	if (n > 0)
		*ret = steal_ptr(&list);
	return 0;
}

struct join_files {
	char *key, *crt, *ca, *conf; /* temporary names, NULL once renamed */
};

static void join_files_clear(struct join_files *f)
{
	char **all[] = {&f->key, &f->crt, &f->ca, &f->conf};
	for (size_t i = 0; i < KC_ARRAY_SIZE(all); i++) {
		if (*all[i])
			unlink(*all[i]);
		free(*all[i]);
		*all[i] = NULL;
	}
}

static int rename_into(char **tmp, const char *dir, const char *name, struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (rename(*tmp, path) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot rename %s to %s",
					  *tmp, path);
	free(*tmp);
	*tmp = NULL;
	return 0;
}

static int join(const struct kc_cli_opts *o, struct kc_error *err)
{
	const char *url = o->args[0], *token = o->args[1];
	char pin[65];
	if (strncmp(url, "https://", 8) != 0 || strlen(url) > URL_MAX ||
	    strcspn(url, " \t\r\n?#") != strlen(url))
		return kc_error_set(
			err, KC_ERR_INVALID,
			"SERVER_URL must be https://HOST[:PORT] (at most %d characters)", URL_MAX);
	if (!*token || strlen(token) > TOKEN_MAX || strcspn(token, " \t\r\n") != strlen(token))
		return kc_error_set(err, KC_ERR_INVALID, "TOKEN must be 1..%d printable characters",
				    TOKEN_MAX);
	if (!o->ca_sha256)
		return kc_error_set(err, KC_ERR_INVALID,
				    "--ca-sha256 HEX is required (printed by `kvmcloud host add`)");
	if (parse_pin(o->ca_sha256, pin, err) < 0)
		return -1;

	_cleanup_config_ struct kc_config *cfg = NULL;
	if (kc_cli_config(o, &cfg, err) < 0)
		return -1;
	const char *dir = kc_config_get(cfg, "pki.dir", KC_DEFAULT_PKI_DIR);
	char cn[KC_PKI_CN_MAX + 1] = "";
	const char *name = kc_config_get(cfg, "host.name", NULL);
	if (name)
		snprintf(cn, sizeof(cn), "%s", name);
	else if (gethostname(cn, sizeof(cn) - 1) < 0 || !cn[0])
		snprintf(cn, sizeof(cn), "kvmcloud-agent");

	size_t ulen = strlen(url);
	while (ulen > 8 && url[ulen - 1] == '/')
		ulen--;
	_cleanup_free_ char *ca_url = NULL, *join_url = NULL;
	if (asprintf(&ca_url, "%.*s/api/v1/ca", (int)ulen, url) < 0 ||
	    asprintf(&join_url, "%.*s/api/v1/join", (int)ulen, url) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	/* The last folder holds keys: 0700. */
	if (kc_mkdir_p(dir, 0700, err) < 0)
		return -1;

	/* 1. The CA, believed only if it is the pinned one. */
	long status = 0;
	_cleanup_free_ char *ca_body = NULL;
	if (https(ca_url, NULL, NULL, CA_RESPONSE_MAX, &status, &ca_body, err) < 0)
		return -1;
	if (status != 200)
		return server_error("GET /api/v1/ca", status, ca_body, err);
	/* PEM as docs/protocol.md says; {"ca": PEM} is taken too. */
	_cleanup_json_ json_t *ca_json = ca_body[0] == '{' ? json_loads(ca_body, 0, NULL) : NULL;
	const char *ca_pem = ca_json ? json_string_value(json_object_get(ca_json, "ca")) : ca_body;
	if (!ca_pem || !strstr(ca_pem, "-----BEGIN CERTIFICATE-----"))
		return kc_error_set(err, KC_ERR_INVALID,
				    "GET /api/v1/ca did not answer a PEM certificate");
	if (check_pin(ca_pem, pin, "the server's CA certificate", err) < 0)
		return -1;

	struct join_files f = {0};
	int rc = -1;
	_cleanup_free_ char *csr = NULL, *req_body = NULL, *resp = NULL, *got_cn = NULL;
	_cleanup_free_ char *crt_path = NULL, *ca_path = NULL, *conf_path = NULL, *conf = NULL;
	_cleanup_free_ char *eps = NULL;
	_cleanup_json_ json_t *req = NULL, *answer = NULL;
	struct kc_tls_creds *creds = NULL;
	char server_name[ENDPOINT_MAX + 1];
	if (asprintf(&f.key, "%s/agent.key.join-%d", dir, (int)getpid()) < 0 ||
	    asprintf(&crt_path, "%s/agent.crt", dir) < 0 ||
	    asprintf(&ca_path, "%s/ca.crt", dir) < 0 ||
	    asprintf(&conf_path, "%s/server.conf", dir) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (!(f.ca = write_temp(ca_path, ca_pem, 0644, err)) ||
	    kc_pki_key_and_csr(f.key, cn, &csr, err) < 0)
		goto out;

	/* 2. The join, verified against that CA only. */
	req = json_pack("{s:s,s:s}", "token", token, "csr", csr);
	req_body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!req_body) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (https(join_url, f.ca, req_body, JOIN_RESPONSE_MAX, &status, &resp, err) < 0)
		goto out;
	if (status != 200 && status != 201) {
		server_error("join", status, resp, err);
		goto out;
	}
	answer = json_loads(resp, 0, NULL);
	const char *cert = NULL, *ca2 = NULL, *ep = NULL, *sname = NULL;
	if (!json_is_object(answer)) {
		kc_error_set(err, KC_ERR_INVALID, "the join answer is not a JSON object");
		goto out;
	}
	if (kc_json_get_string(answer, "certificate", true, KC_PKI_CERT_MAX, &cert, err) < 0 ||
	    kc_json_get_string(answer, "ca", true, KC_PKI_CERT_MAX, &ca2, err) < 0 ||
	    kc_json_get_string(answer, "agent_endpoint", true, ENDPOINT_MAX, &ep, err) < 0 ||
	    kc_json_get_string(answer, "server_name", false, ENDPOINT_MAX, &sname, err) < 0 ||
	    check_pin(ca2, pin, "the CA in the join answer", err) < 0 ||
	    kc_pki_cert_info(cert, &got_cn, NULL, NULL, err) < 0 ||
	    endpoint_host(ep, server_name, sizeof(server_name), err) < 0 ||
	    endpoints_list(answer, ep, &eps, err) < 0)
		goto out;
	/* The server says which name its certificate carries; without that,
	 * the endpoint's host is the name. */
	if (sname) {
		if (!*sname || strcspn(sname, " \t\r\n=#") != strlen(sname)) {
			kc_error_set(err, KC_ERR_INVALID, "the server sent a bad server_name");
			goto out;
		}
		snprintf(server_name, sizeof(server_name), "%s", sname);
	}
	/* The certificate must be for our key and load as the link will. */
	if (!(f.crt = write_temp(crt_path, cert, 0644, err)) ||
	    kc_tls_creds_load(f.ca, f.crt, f.key, &creds, err) < 0)
		goto out;
	if (asprintf(&conf,
		     "# written by kvmcloud-agent join; read by kvmcloud-agent run\n"
		     "endpoint=%s\nserver_name=%s\n%s%s%s",
		     ep, server_name, eps ? "endpoints=" : "", eps ? eps : "",
		     eps ? "\n" : "") < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (!(f.conf = write_temp(conf_path, conf, 0644, err)))
		goto out;

	/* 3. Everything checked: into place, key first. */
	if (rename_into(&f.key, dir, "agent.key", err) < 0 ||
	    rename_into(&f.crt, dir, "agent.crt", err) < 0 ||
	    rename_into(&f.ca, dir, "ca.crt", err) < 0 ||
	    rename_into(&f.conf, dir, "server.conf", err) < 0)
		goto out;
	kc_fsync_parent(crt_path);
	printf("joined as \"%s\"; credentials in %s, agent endpoint %s\n"
	       "start the agent with: kvmcloud-agent run\n",
	       got_cn, dir, ep);
	rc = 0;
out:
	kc_tls_creds_free(creds);
	join_files_clear(&f);
	return rc;
}

int kc_cmd_join(const struct kc_cli_opts *o)
{
	struct kc_error err = {0};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int r = join(o, &err);
	curl_global_cleanup();
	if (r < 0) {
		kc_cli_print_error(&err);
		return 2;
	}
	return 0;
}
