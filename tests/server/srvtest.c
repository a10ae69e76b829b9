/* SPDX-License-Identifier: Apache-2.0 */
/*
 * srvtest.c - the in-process server the server tests run against, and the
 * HTTP client they talk to it with (srvtest.h).
 */
#include "srvtest.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

/* A TAP diagnostic line (kctest.h is for test programs, one copy each). */
__attribute__((format(printf, 1, 2))) static void diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

bool srvtest_init(struct srvtest *t, const char *tag, enum srvtest_mode mode)
{
	const char *uri = getenv("KC_TEST_LIBVIRT_URI");

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/kcsrv-test-%s-XXXXXX", tag);
	t->port = srvtest_free_port();
	if (mode == SRVTEST_CLUSTER)
		t->agent_port = srvtest_free_port();
	if (t->port < 0 || t->agent_port < 0 || t->agent_port == t->port || !mkdtemp(t->dir)) {
		diag("srvtest: no data folder or no free port");
		t->dir[0] = '\0';
		return false;
	}
	ulfius_global_init();
	t->insecure = mode == SRVTEST_CLUSTER;
	snprintf(t->base, sizeof(t->base), "%s://127.0.0.1:%d", t->insecure ? "https" : "http",
		 t->port);
	snprintf(t->listen, sizeof(t->listen), "127.0.0.1:%d", t->port);
	t->opts = (struct kc_server_opts){.data_dir = t->dir, .listen = t->listen};
	if (mode == SRVTEST_CLUSTER) {
		snprintf(t->agent_listen, sizeof(t->agent_listen), "127.0.0.1:%d", t->agent_port);
		t->opts.agent_listen = t->agent_listen;
		t->opts.no_local_agent = true;
	} else {
		snprintf(t->uri_override, sizeof(t->uri_override), "libvirt.uri=%s",
			 uri ? uri : "test:///default");
		t->overrides[0] = t->uri_override;
		t->overrides[1] = "accel=tcg";
		t->opts.overrides = t->overrides;
		t->opts.n_overrides = 2;
	}
	return true;
}

static void read_token(struct srvtest *t)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/admin.token", t->dir);
	FILE *f = fopen(path, "re");
	if (!f || fscanf(f, "%127s", t->token) != 1)
		t->token[0] = '\0';
	if (f)
		fclose(f);
}

bool srvtest_start(struct srvtest *t)
{
	struct kc_error err = {0};
	size_t len = 0;

	free(t->start_output);
	t->start_output = NULL;
	/* Not a terminal: the server names the token file, never the token. */
	FILE *out = open_memstream(&t->start_output, &len);
	t->opts.out = out;
	if (!out || kc_server_open(&t->opts, &t->srv, &err) < 0 ||
	    kc_server_start(t->srv, &t->opts, &err) < 0) {
		diag("server start failed: %s", out ? err.message : "no memory stream");
		kc_server_free(t->srv);
		t->srv = NULL;
	}
	if (out)
		fclose(out);
	t->opts.out = NULL;
	if (t->srv)
		read_token(t);
	return t->srv != NULL;
}

void srvtest_stop(struct srvtest *t)
{
	kc_server_free(t->srv);
	t->srv = NULL;
}

void srvtest_cleanup(struct srvtest *t)
{
	srvtest_stop(t);
	free(t->start_output);
	t->start_output = NULL;
	if (t->dir[0]) {
		ulfius_global_close();
		srvtest_rm_rf(t->dir);
		t->dir[0] = '\0';
	}
}

struct srvtest_reply srvtest_send(const struct srvtest *t, const struct srvtest_req *rq)
{
	struct _u_request req;
	struct _u_response resp;
	struct srvtest_reply r = {0};
	char url[1024], auth[256];

	ulfius_init_request(&req);
	ulfius_init_response(&resp);
	snprintf(url, sizeof(url), "%s%s", t->base, rq->path);
	req.http_verb = strdup(rq->method);
	req.http_url = strdup(url);
	/* The cluster's CA signs the HTTPS certificate; the agent tests pin
	 * it, here HTTPS itself is not under test. */
	if (t->insecure)
		req.check_server_certificate = 0;
	if (rq->token) {
		snprintf(auth, sizeof(auth), "Bearer %s", rq->token);
		u_map_put(req.map_header, "Authorization", auth);
	}
	if (rq->idempotency_key)
		u_map_put(req.map_header, "Idempotency-Key", rq->idempotency_key);
	if (rq->body) {
		u_map_put(req.map_header, "Content-Type", "application/json");
		ulfius_set_binary_body_request(&req, rq->body,
					       rq->body_len ? rq->body_len : strlen(rq->body));
	}
	if (ulfius_send_http_request(&req, &resp) == U_OK) {
		r.status = resp.status;
		r.body = strndup(resp.binary_body ? resp.binary_body : "", resp.binary_body_length);
		r.json = json_loadb(resp.binary_body ? resp.binary_body : "",
				    resp.binary_body_length, 0, NULL);
		const char *loc = u_map_get_case(resp.map_header, "Location");
		const char *ct = u_map_get_case(resp.map_header, "Content-Type");
		r.location = loc ? strdup(loc) : NULL;
		r.content_type = ct ? strdup(ct) : NULL;
	}
	ulfius_clean_request(&req);
	ulfius_clean_response(&resp);
	return r;
}

struct srvtest_reply srvtest_call(const struct srvtest *t, const char *method, const char *path,
				  const char *token, const char *body)
{
	return srvtest_send(t,
			    &(struct srvtest_req){
				    .method = method, .path = path, .token = token, .body = body});
}

void srvtest_reply_clear(struct srvtest_reply *r)
{
	json_decref(r->json);
	free(r->body);
	free(r->location);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

const char *srvtest_err_code(const struct srvtest_reply *r)
{
	return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

const char *srvtest_err_msg(const struct srvtest_reply *r)
{
	return json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
}

bool srvtest_make_user(const struct srvtest *t, const char *name, const char *password,
		       char out[128])
{
	char body[256], path[128];

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"user\"%s%s%s}", name,
		 password ? ",\"password\":\"" : "", password ? password : "",
		 password ? "\"" : "");
	struct srvtest_reply r = srvtest_call(t, "POST", "/api/v1/users", t->token, body);
	bool ok = r.status == 201;
	srvtest_reply_clear(&r);
	snprintf(path, sizeof(path), "/api/v1/users/%s/tokens", name);
	r = srvtest_call(t, "POST", path, t->token, "{\"name\":\"t1\"}");
	const char *tok = json_string_value(json_object_get(r.json, "token"));
	ok = ok && r.status == 201 && tok && strlen(tok) == 64;
	if (tok)
		snprintf(out, 128, "%s", tok);
	srvtest_reply_clear(&r);
	return ok;
}
