/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_join - `kvmcloud-agent join` (the program, given as argv[1])
 * against a fake HTTPS server (libmicrohttpd) with its own CA: a wrong pin,
 * a bad token and a server name that does not match write nothing; a good
 * join writes the key (0600), certificate, CA and server.conf, and they
 * load as the link will load them.  No libvirtd needed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "json_util.h"
#include "pki.h"
#include "tap.h"
#include "tlslink.h"

extern char **environ;

static char srv_dir[256], out_dir[300], conf_file[300], err_file[300];
static char *ca_pem, *srv_cert, *srv_key;
static const char *agent_bin;
static int join_calls;

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = calloc(1, 256 * 1024);
	size_t n = buf ? fread(buf, 1, 256 * 1024 - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static char *p(const char *dir, const char *name)
{
	static char bufs[8][400];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

struct upload {
	char buf[64 * 1024];
	size_t len;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *data_size, void **con_cls)
{
	if (strcmp(method, "GET") == 0 && strcmp(url, "/api/v1/ca") == 0)
		return reply(c, 200, ca_pem);
	if (strcmp(method, "POST") != 0 || strcmp(url, "/api/v1/join") != 0)
		return reply(c, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no\"}}");
	struct upload *u = *con_cls;
	if (!u) {
		*con_cls = calloc(1, sizeof(*u));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*data_size) {
		size_t n = *data_size < sizeof(u->buf) - 1 - u->len ? *data_size
								    : sizeof(u->buf) - 1 - u->len;
		memcpy(u->buf + u->len, data, n);
		u->len += n;
		*data_size = 0;
		return MHD_YES;
	}
	__atomic_add_fetch(&join_calls, 1, __ATOMIC_SEQ_CST);
	_cleanup_json_ json_t *req = json_loads(u->buf, 0, NULL);
	const char *token = json_string_value(json_object_get(req, "token"));
	const char *csr = json_string_value(json_object_get(req, "csr"));
	if (!token || !csr || strcmp(token, "good-token") != 0)
		return reply(c, 401,
			     "{\"error\":{\"code\":\"unauthorized\","
			     "\"message\":\"invalid, used or expired join token\"}}");
	_cleanup_free_ char *cert = NULL, *serial = NULL, *body = NULL;
	struct kc_error err = {0};
	if (kc_pki_sign_csr(srv_dir, csr, "kclnk-joined", 30, &cert, &serial, &err) < 0)
		return reply(c, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"sign\"}}");
	_cleanup_json_ json_t *ans = json_pack("{s:s,s:s,s:s,s:s,s:s}", "certificate", cert, "ca",
					       ca_pem, "agent_endpoint", "127.0.0.1:8471",
					       "server_name", "localhost", "host", "kclnk-joined");
	body = json_dumps(ans, 0);
	return reply(c, 200, body);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

/* Runs the agent's join; returns its exit status, stderr in err_file. */
static int join(const char *url, const char *token, const char *pin)
{
	char pki_opt[400];
	snprintf(pki_opt, sizeof(pki_opt), "pki.dir=%s", out_dir);
	char *argv[] = {(char *)agent_bin, "-c",	conf_file,   "-o",
			pki_opt,	   "join",	(char *)url, (char *)token,
			"--ca-sha256",	   (char *)pin, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, err_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawn(&pid, agent_bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
	if (d)
		closedir(d);
	return n;
}

static bool stderr_has(const char *needle)
{
	_cleanup_free_ char *s = slurp(err_file);
	bool found = s && strstr(s, needle);
	if (!found)
		printf("# stderr: %s", s ? s : "(none)\n");
	return found;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("1..0 # SKIP give the kvmcloud-agent program as the argument\n");
		return 0;
	}
	agent_bin = argv[1];
	snprintf(srv_dir, sizeof(srv_dir), "/tmp/kclnk-%d-j-XXXXXX", (int)getpid());
	if (!mkdtemp(srv_dir)) {
		ok(false, "temporary folder");
		return tap_done();
	}
	snprintf(out_dir, sizeof(out_dir), "%s/agent/pki", srv_dir);
	snprintf(conf_file, sizeof(conf_file), "%s/agent.conf", srv_dir);
	snprintf(err_file, sizeof(err_file), "%s/stderr", srv_dir);
	fclose(fopen(conf_file, "we"));

	struct kc_error err = {0};
	/* SANs: the name only, so that https://127.0.0.1 must fail. */
	const char *dns[] = {"localhost", NULL};
	char fp[65] = "";
	bool pki_ok = kc_pki_ca_create(srv_dir, "kclnk join CA", &err) == 0 &&
		      kc_pki_server_cert_create(srv_dir, "kclnk-server", dns, NULL, &err) == 0 &&
		      (ca_pem = slurp(p(srv_dir, "ca.crt"))) &&
		      (srv_cert = slurp(p(srv_dir, "server.crt"))) &&
		      (srv_key = slurp(p(srv_dir, "server.key"))) &&
		      kc_pki_fingerprint_sha256(ca_pem, fp, &err) == 0;
	ok(pki_ok, "server CA and certificate %s", err.message);

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct MHD_Daemon *d =
		pki_ok ? MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL,
					  NULL, handler, NULL, MHD_OPTION_HTTPS_MEM_KEY, srv_key,
					  MHD_OPTION_HTTPS_MEM_CERT, srv_cert, MHD_OPTION_SOCK_ADDR,
					  &sa, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
					  MHD_OPTION_END)
		       : NULL;
	const union MHD_DaemonInfo *info =
		d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	int port = info ? info->port : 0;
	ok(port > 0, "fake HTTPS server on 127.0.0.1:%d", port);
	if (port > 0) {
		char url[128], url_ip[128], colons[200] = "";
		snprintf(url, sizeof(url), "https://localhost:%d/", port);
		snprintf(url_ip, sizeof(url_ip), "https://127.0.0.1:%d", port);
		for (int i = 0; i < 64; i += 2)
			snprintf(colons + strlen(colons), sizeof(colons) - strlen(colons), "%s%c%c",
				 i ? ":" : "", fp[i] - 32 * (fp[i] >= 'a'),
				 fp[i + 1] - 32 * (fp[i + 1] >= 'a'));
		const char *zeros =
			"0000000000000000000000000000000000000000000000000000000000000000";

		int rc = join(url, "good-token", zeros);
		ok(rc == 2 && stderr_has("not the pinned") && join_calls == 0,
		   "wrong pin: refused before the token is sent (exit %d)", rc);
		ok(dir_entries(out_dir) == 0, "wrong pin: nothing written");

		rc = join(url, "bad-token", fp);
		ok(rc == 2 && stderr_has("unauthorized") && stderr_has("join token"),
		   "bad token: the server's error shown (exit %d)", rc);
		ok(dir_entries(out_dir) == 0, "bad token: no key, nothing written (%zu)",
		   dir_entries(out_dir));

		int before = join_calls;
		rc = join(url_ip, "good-token", fp);
		ok(rc == 2 && join_calls == before && stderr_has("SSL"),
		   "an address not in the certificate's SANs: the token is not sent (exit %d)", rc);
		ok(dir_entries(out_dir) == 0, "name mismatch: nothing written");

		rc = join(url, "good-token", "xyz");
		ok(rc == 2 && stderr_has("64 hex digits"), "a malformed pin is refused");

		rc = join(url, "good-token", colons);
		ok(rc == 0, "good join with an uppercase, colon-separated pin (exit %d)", rc);
		if (rc != 0)
			stderr_has("-");
		struct stat st;
		ok(stat(p(out_dir, "agent.key"), &st) == 0 && (st.st_mode & 0777) == 0600,
		   "agent.key is 0600");
		ok(dir_entries(out_dir) == 4,
		   "agent.key, agent.crt, ca.crt, server.conf and no "
		   "temporary file (%zu)",
		   dir_entries(out_dir));
		_cleanup_free_ char *crt = slurp(p(out_dir, "agent.crt"));
		_cleanup_free_ char *cn = NULL;
		bool cn_ok = crt && kc_pki_cert_info(crt, &cn, NULL, NULL, &err) == 0 &&
			     strcmp(cn, "kclnk-joined") == 0;
		ok(cn_ok, "certificate CN is the server's choice: %s", cn ? cn : "-");
		_cleanup_free_ char *ca2 = slurp(p(out_dir, "ca.crt"));
		ok(ca2 && strcmp(ca2, ca_pem) == 0, "ca.crt is the cluster CA");
		_cleanup_config_ struct kc_config *cfg = kc_config_new();
		ok(kc_config_load(cfg, p(out_dir, "server.conf"), true, &err) == 0 &&
			   strcmp(kc_config_get(cfg, "endpoint", ""), "127.0.0.1:8471") == 0 &&
			   strcmp(kc_config_get(cfg, "server_name", ""), "localhost") == 0,
		   "server.conf: endpoint and server_name %s", err.message);
		struct kc_tls_creds *creds = NULL;
		ok(kc_tls_creds_load(p(out_dir, "ca.crt"), p(out_dir, "agent.crt"),
				     p(out_dir, "agent.key"), &creds, &err) == 0,
		   "the files load as TLS credentials %s", err.message);
		kc_tls_creds_free(creds);
	}
	if (d)
		MHD_stop_daemon(d);
	free(ca_pem);
	free(srv_cert);
	free(srv_key);
	nftw(srv_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
