/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cleanup.h"
#include "json_util.h"

struct kc_client {
	CURL *curl;
	char *url;
	char *token;
	long timeout_s;
	char *extra_header; /* "Name: value" sent with every request, or NULL */
};

struct kc_client *kc_client_new(const char *base_url, const char *token)
{
	static bool curl_ready;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		curl_ready = true;
	}
	struct kc_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->url = strdup(base_url);
	c->token = token ? strdup(token) : NULL;
	c->curl = curl_easy_init();
	c->timeout_s = 300;
	if (!c->url || (token && !c->token) || !c->curl) {
		kc_client_free(c);
		return NULL;
	}
	return c;
}

void kc_client_free(struct kc_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->extra_header);
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c->url);
	free(c);
}

void kc_client_set_timeout(struct kc_client *c, long seconds)
{
	c->timeout_s = seconds;
}

int kc_client_set_header(struct kc_client *c, const char *header)
{
	char *h = header ? strdup(header) : NULL;

	if (header && !h)
		return -1;
	free(c->extra_header);
	c->extra_header = h;
	return 0;
}

const char *kc_client_url(const struct kc_client *c)
{
	return c->url;
}

const char *kc_client_token(const struct kc_client *c)
{
	return c->token;
}

struct sink {
	struct kc_http_response *resp;
	size_t cap;
	bool too_large;
	/* Downloads: a successful answer's body goes to fd as it comes. */
	CURL *curl;
	int fd; /* -1: kept in resp */
	unsigned long long done, total;
	void (*progress)(unsigned long long done, unsigned long long total, void *opaque);
	void *opaque;
	bool write_failed;
};

static size_t to_fd(struct sink *s, const char *data, size_t n)
{
	curl_off_t cl = -1;
	curl_easy_getinfo(s->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	s->total = cl >= 0 ? (unsigned long long)cl : 0;
	for (size_t w = 0; w < n;) {
		ssize_t k = write(s->fd, data + w, n - w);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			s->write_failed = true;
			return 0;
		}
		w += (size_t)k;
	}
	s->done += n;
	if (s->progress)
		s->progress(s->done, s->total, s->opaque);
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	struct kc_http_response *r = s->resp;
	if (s->fd >= 0) {
		long code = 0;
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
		if (code > 0 && code < 400)
			return to_fd(s, data, n);
	}
	if (r->len + n > KC_HTTP_BODY_MAX) {
		s->too_large = true;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (r->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		char *b = realloc(r->body, cap);
		if (!b)
			return 0;
		r->body = b;
		s->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static void header_number(const char *line, size_t n, const char *name, long long *ret)
{
	size_t len = strlen(name);
	if (n <= len + 1 || strncasecmp(line, name, len) != 0 || line[len] != ':')
		return;
	char buf[32];
	size_t i = len + 1;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	size_t k = 0;
	while (i < n && k < sizeof(buf) - 1 && line[i] >= '0' && line[i] <= '9')
		buf[k++] = line[i++];
	buf[k] = '\0';
	if (k > 0 && k < 19)
		*ret = strtoll(buf, NULL, 10);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct kc_http_response *r = userdata;
	size_t n = size * nmemb;
	header_number(data, n, "X-Log-Next-Offset", &r->log_next_offset);
	header_number(data, n, "X-Log-Size", &r->log_size);
	return n;
}

static void slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

/* One request with `payload` (may be NULL) of `len` bytes and its type;
 * the body into `sink` (NULL: kept in resp). */
static int perform(struct kc_client *c, const char *method, const char *path, const char *payload,
		   size_t len, const char *content_type, struct kc_http_response *resp,
		   struct sink *sink, struct kc_error *err);

int kc_http_request(struct kc_client *c, const char *method, const char *path, const json_t *body,
		    struct kc_http_response *resp, struct kc_error *err)
{
	_cleanup_free_ char *payload = NULL;

	memset(resp, 0, sizeof(*resp));
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		if (!payload)
			return kc_error_set(err, KC_ERR_INTERNAL, "cannot encode the request");
	}
	return perform(c, method, path, payload, payload ? strlen(payload) : 0,
		       "Content-Type: application/json", resp, NULL, err);
}

int kc_http_request_bytes(struct kc_client *c, const char *method, const char *path,
			  const void *data, size_t len, struct kc_http_response *resp,
			  struct kc_error *err)
{
	memset(resp, 0, sizeof(*resp));
	return perform(c, method, path, data, len, "Content-Type: application/octet-stream", resp,
		       NULL, err);
}

int kc_http_download(struct kc_client *c, const char *path, int fd,
		     void (*progress)(unsigned long long done, unsigned long long total,
				      void *opaque),
		     void *opaque, unsigned long long *ret_bytes, struct kc_error *err)
{
	struct kc_http_response resp;
	struct sink sink = {
		.resp = &resp, .curl = c->curl, .fd = fd, .progress = progress, .opaque = opaque};

	memset(&resp, 0, sizeof(resp));
	if (perform(c, "GET", path, NULL, 0, NULL, &resp, &sink, err) < 0) {
		if (sink.write_failed)
			kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot write the file");
		return -1;
	}
	int r = kc_http_check_status(&resp, err);
	kc_http_response_clear(&resp);
	if (r == 0 && sink.total && sink.done != sink.total)
		r = kc_error_set(err, KC_ERR_UNAVAILABLE,
				 "the download stopped after %llu of %llu bytes", sink.done,
				 sink.total);
	if (r == 0)
		*ret_bytes = sink.done;
	return r;
}

static int perform(struct kc_client *c, const char *method, const char *path, const char *payload,
		   size_t len, const char *content_type, struct kc_http_response *resp,
		   struct sink *out, struct kc_error *err)
{
	resp->log_next_offset = -1;
	resp->log_size = -1;

	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *auth = NULL;
	__attribute__((cleanup(slist_freep))) struct curl_slist *headers = NULL;
	if (asprintf(&url, "%s%s", c->url, path) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (c->token && asprintf(&auth, "Authorization: Bearer %s", c->token) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	if (h && auth)
		h = curl_slist_append(h, auth);
	if (h && payload)
		h = curl_slist_append(h, content_type);
	if (h && c->extra_header)
		h = curl_slist_append(h, c->extra_header);
	if (!h)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	headers = h;

	CURL *cu = c->curl;
	struct sink own = {.resp = resp, .fd = -1}, *sinkp = out ? out : &own;
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_reset(cu);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "kvmcloud-cli");
	/* A server whose certificate comes from its own cluster CA
	 * (docs/server.md, --tls auto): trust that CA file. */
	const char *ca = getenv("KVMCLOUD_CA");
	if (ca && *ca)
		curl_easy_setopt(cu, CURLOPT_CAINFO, ca);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, sinkp);
	curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(cu, CURLOPT_HEADERDATA, resp);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") == 0)
			curl_easy_setopt(cu, CURLOPT_POST, 1L);
		else
			curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
		if (payload || strcmp(method, "POST") == 0) {
			curl_easy_setopt(cu, CURLOPT_POSTFIELDS, payload ? payload : "");
			curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)(payload ? len : 0));
		}
	}

	CURLcode rc = curl_easy_perform(cu);
	/* Forget the header that carries the token as soon as it is sent. */
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, NULL);
	if (auth)
		explicit_bzero(auth, strlen(auth));
	if (rc != CURLE_OK) {
		kc_http_response_clear(resp);
		if (sinkp->too_large)
			return kc_error_set(err, KC_ERR_TOO_LARGE,
					    "the server's answer is larger than %u MiB",
					    KC_HTTP_BODY_MAX >> 20);
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "cannot reach the server at %s: %s",
				    c->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &resp->status);
	if (!resp->body) {
		resp->body = strdup("");
		if (!resp->body)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

void kc_http_response_clear(struct kc_http_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

int kc_http_check_status(const struct kc_http_response *resp, struct kc_error *err)
{
	if (resp->status < 400)
		return 0;
	_cleanup_json_ json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
	json_t *e = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));
	if (msg && *msg)
		return kc_error_set(err, code ? kc_errcode_from_name(code) : KC_ERR_INTERNAL, "%s",
				    msg);
	return kc_error_set(err, KC_ERR_INTERNAL, "server returned HTTP %ld", resp->status);
}

int kc_api_call(struct kc_client *c, const char *method, const char *path, const json_t *body,
		json_t **ret, struct kc_error *err)
{
	struct kc_http_response resp;
	if (kc_http_request(c, method, path, body, &resp, err) < 0)
		return -1;
	int r = kc_http_check_status(&resp, err);
	if (r == 0) {
		json_error_t jerr;
		*ret = json_loadb(resp.body, resp.len, 0, &jerr);
		if (!*ret)
			r = kc_error_set(err, KC_ERR_INTERNAL,
					 "the server's answer to %s %s is not JSON: %s", method,
					 path, jerr.text);
	}
	kc_http_response_clear(&resp);
	return r;
}
