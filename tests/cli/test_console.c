/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_console.c - "kvmcloud vm console" (src/cli/console.c, libwebsockets)
 * against small ulfius servers on 127.0.0.1: a console that greets and
 * echoes, refusals with the API's JSON errors, and https servers whose
 * certificate is or is not trusted (KVMCLOUD_CA) or not for the name
 * connected to.  The kvmcloud program (argv[1]) runs with stdin, stdout
 * and stderr on pipes; under ASan its exit is leak-checked.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <ulfius.h>

#include "kctest.h"
#include "pki.h"

#define TOKEN "tok3n-console"

static const char *kvmcloud; /* the program under test */

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen_auth[128]; /* the last console request's Authorization */

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int json_error(struct _u_response *resp, unsigned status, const char *code, const char *msg)
{
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	ulfius_set_json_body_response(resp, status, j);
	json_decref(j);
	return U_CALLBACK_COMPLETE;
}

static void echo_manager(const struct _u_request *req, struct _websocket_manager *wm, void *data)
{
	wm->keep_messages = U_WEBSOCKET_KEEP_NONE;
	ulfius_websocket_send_message(wm, U_WEBSOCKET_OPCODE_BINARY, 7, "hello\r\n");
	while (ulfius_websocket_status(wm) == U_WEBSOCKET_STATUS_OPEN)
		usleep(20 * 1000);
}

static void echo_incoming(const struct _u_request *req, struct _websocket_manager *wm,
			  const struct _websocket_message *msg, void *data)
{
	wm->keep_messages = U_WEBSOCKET_KEEP_NONE;
	if (msg->opcode != U_WEBSOCKET_OPCODE_BINARY)
		return;
	char out[256];
	int n = snprintf(out, sizeof(out), "echo:%.*s", (int)msg->data_len, msg->data);
	ulfius_websocket_send_message(wm, U_WEBSOCKET_OPCODE_BINARY, (uint64_t)n, out);
}

static int on_console(const struct _u_request *req, struct _u_response *resp, void *data)
{
	const char *vm = u_map_get(req->map_url, "vm");
	const char *auth = u_map_get_case(req->map_header, "Authorization");
	pthread_mutex_lock(&seen_lock);
	snprintf(seen_auth, sizeof(seen_auth), "%s", auth ? auth : "");
	pthread_mutex_unlock(&seen_lock);
	if (!auth || strcmp(auth, "Bearer " TOKEN) != 0)
		return json_error(resp, 401, "unauthorized", "invalid token");
	if (strcmp(vm, "stopped") == 0)
		return json_error(resp, 409, "conflict", "VM stopped is not running");
	if (strcmp(vm, "echo") != 0)
		return json_error(resp, 404, "not_found", "VM not found");
	if (ulfius_set_websocket_response(resp, NULL, NULL, echo_manager, NULL, echo_incoming, NULL,
					  NULL, NULL) != U_OK)
		return json_error(resp, 500, "internal", "no websocket");
	return U_CALLBACK_COMPLETE;
}

static int on_vm(const struct _u_request *req, struct _u_response *resp, void *data)
{
	const char *vm = u_map_get(req->map_url, "vm");
	const char *auth = u_map_get_case(req->map_header, "Authorization");
	if (!auth || strcmp(auth, "Bearer " TOKEN) != 0)
		return json_error(resp, 401, "unauthorized", "invalid token");
	if (strcmp(vm, "stopped") != 0 && strcmp(vm, "echo") != 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "VM %s not found", vm);
		return json_error(resp, 404, "not_found", msg);
	}
	json_t *j = json_pack("{s:s,s:s}", "name", vm, "state",
			      strcmp(vm, "stopped") == 0 ? "shutoff" : "running");
	ulfius_set_json_body_response(resp, 200, j);
	json_decref(j);
	return U_CALLBACK_COMPLETE;
}

struct server {
	struct _u_instance u;
	char url[64];
	bool up;
};

/* http:// when key_pem is NULL, else https:// with that key and cert. */
static bool server_start(struct server *s, const char *key_pem, const char *cert_pem)
{
	int port = free_port();
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (port < 0 || ulfius_init_instance(&s->u, (unsigned)port, &a, NULL) != U_OK)
		return false;
	ulfius_add_endpoint_by_val(&s->u, "GET", "/api/v1/vms", "/:vm/console", 0, on_console,
				   NULL);
	ulfius_add_endpoint_by_val(&s->u, "GET", "/api/v1/vms", "/:vm", 0, on_vm, NULL);
	int r = key_pem ? ulfius_start_secure_framework(&s->u, key_pem, cert_pem)
			: ulfius_start_framework(&s->u);
	if (r != U_OK) {
		ulfius_clean_instance(&s->u);
		return false;
	}
	snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", key_pem ? "https" : "http", port);
	s->up = true;
	return true;
}

static void server_stop(struct server *s)
{
	if (!s->up)
		return;
	ulfius_stop_framework(&s->u);
	ulfius_clean_instance(&s->u);
	s->up = false;
}

struct run {
	int rc;
	char out[8192];
	char err[8192];
};

static void read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

/* Runs "kvmcloud --server URL --token TOKEN vm console VM" with `input`
 * as its whole stdin and `ca` as KVMCLOUD_CA (NULL: unset). */
static void console_run(const char *url, const char *token, const char *vm, const char *input,
			const char *ca, struct run *r)
{
	int in[2], out[2], err[2];
	memset(r, 0, sizeof(*r));
	r->rc = -1;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		return;
	if (ca)
		setenv("KVMCLOUD_CA", ca, 1);
	else
		unsetenv("KVMCLOUD_CA");
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		/* No exec to close them: the write end of stdin must go. */
		for (int i = 0; i < 2; i++) {
			close(in[i]);
			close(out[i]);
			close(err[i]);
		}
		char *argv[] = {(char *)kvmcloud, "--server",	 (char *)url,
				"--token",	  (char *)token, "vm",
				"console",	  (char *)vm,	 NULL};
		/* exec, not a call: a fork of this threaded process may only exec */
		execv(kvmcloud, argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (input && write(in[1], input, strlen(input)) < 0)
		perror("write");
	close(in[1]);
	read_all(out[0], r->out, sizeof(r->out));
	read_all(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	int st;
	if (pid > 0 && waitpid(pid, &st, 0) == pid)
		r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static struct server plain, tls_ok, tls_other_name;
static char dir_ca[] = "/tmp/kctest-console-XXXXXX";
static char dir_wrong[] = "/tmp/kctest-console-wrong-XXXXXX";
static char dir_other[] = "/tmp/kctest-console-other-XXXXXX";
static char ca_crt[128], wrong_crt[128];

static char *slurp(const char *dir, const char *file)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = calloc(1, 16384);
	if (buf && fread(buf, 1, 16383, f) == 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void rm_dir(const char *dir)
{
	static const char *const files[] = {"ca.key", "ca.crt", "server.key", "server.crt"};
	char path[160];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* Two CAs; a server certificate from the first for 127.0.0.1 and one from
 * the same CA for another name only. */
static bool setup(void)
{
	struct kc_error e = {0};
	static const char *const ip[] = {"127.0.0.1", NULL};
	static const char *const localhost[] = {"localhost", NULL};
	static const char *const other[] = {"other.example", NULL};
	if (!mkdtemp(dir_ca) || !mkdtemp(dir_wrong) || !mkdtemp(dir_other) ||
	    kc_pki_ca_create(dir_ca, "kctest-console-ca", &e) < 0 ||
	    kc_pki_ca_create(dir_wrong, "kctest-console-wrong", &e) < 0 ||
	    kc_pki_server_cert_create(dir_ca, "localhost", localhost, ip, &e) < 0) {
		kc_test_diag("setup: %s", e.message);
		return false;
	}
	/* The other-name server: the same CA's key, its own server files. */
	char src[160], dst[160];
	for (int i = 0; i < 2; i++) {
		const char *f = i ? "ca.crt" : "ca.key";
		snprintf(src, sizeof(src), "%s/%s", dir_ca, f);
		snprintf(dst, sizeof(dst), "%s/%s", dir_other, f);
		char *pem = slurp(dir_ca, f);
		FILE *o = fopen(dst, "we");
		if (!pem || !o || fputs(pem, o) < 0) {
			free(pem);
			if (o)
				fclose(o);
			return false;
		}
		free(pem);
		fclose(o);
	}
	if (kc_pki_server_cert_create(dir_other, "other.example", other, NULL, &e) < 0) {
		kc_test_diag("setup: %s", e.message);
		return false;
	}
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir_ca);
	snprintf(wrong_crt, sizeof(wrong_crt), "%s/ca.crt", dir_wrong);

	char *k1 = slurp(dir_ca, "server.key"), *c1 = slurp(dir_ca, "server.crt");
	char *k2 = slurp(dir_other, "server.key"), *c2 = slurp(dir_other, "server.crt");
	bool ok = k1 && c1 && k2 && c2 && server_start(&plain, NULL, NULL) &&
		  server_start(&tls_ok, k1, c1) && server_start(&tls_other_name, k2, c2);
	free(k1);
	free(c1);
	free(k2);
	free(c2);
	return ok;
}

KC_TEST(plain_console_greets_echoes_and_leaves_after_input_ends)
{
	struct run r;
	console_run(plain.url, TOKEN, "echo", "ping\n", NULL, &r);
	KC_CHECK_INT(r.rc, 0);
	KC_CHECK(strstr(r.out, "hello\r\n") != NULL);
	KC_CHECK(strstr(r.out, "echo:ping\n") != NULL);
	pthread_mutex_lock(&seen_lock);
	KC_CHECK_STREQ(seen_auth, "Bearer " TOKEN);
	pthread_mutex_unlock(&seen_lock);
	if (r.rc != 0 || !strstr(r.out, "echo:ping"))
		kc_test_diag("stdout: %s\nstderr: %s", r.out, r.err);
}

KC_TEST(refused_upgrade_shows_why)
{
	struct run r;
	console_run(plain.url, TOKEN, "stopped", "", NULL, &r);
	KC_CHECK_INT(r.rc, 1);
	/* lws keeps no body of a refused upgrade: the words come from the
	 * status and the VM's record. */
	KC_CHECK(strstr(r.err, "VM stopped is not running (it is shutoff)") != NULL);
	kc_test_diag("stopped: %s", r.err);
	console_run(plain.url, TOKEN, "ghost", "", NULL, &r);
	KC_CHECK_INT(r.rc, 1);
	KC_CHECK(strstr(r.err, "VM ghost not found") != NULL);
	kc_test_diag("ghost: %s", r.err);
	console_run(plain.url, "wrong-token", "echo", "", NULL, &r);
	KC_CHECK_INT(r.rc, 1);
	KC_CHECK(strstr(r.err, "invalid token") != NULL);
	if (r.rc != 1)
		kc_test_diag("stderr: %s", r.err);
}

KC_TEST(https_with_the_ca_from_kvmcloud_ca)
{
	struct run r;
	console_run(tls_ok.url, TOKEN, "echo", "over-tls\n", ca_crt, &r);
	KC_CHECK_INT(r.rc, 0);
	KC_CHECK(strstr(r.out, "echo:over-tls\n") != NULL);
	if (r.rc != 0)
		kc_test_diag("stderr: %s", r.err);
}

KC_TEST(https_refused_without_the_right_ca_or_name)
{
	char want[128];
	snprintf(want, sizeof(want), "cannot open the console of echo at %s: ", tls_ok.url);
	const char *cas[] = {wrong_crt, NULL};
	for (int i = 0; i < 2; i++) {
		struct run r;
		pthread_mutex_lock(&seen_lock);
		seen_auth[0] = '\0';
		pthread_mutex_unlock(&seen_lock);
		console_run(tls_ok.url, TOKEN, "echo", "x\n", cas[i], &r);
		KC_CHECK_INT(r.rc, 1);
		KC_CHECK(strstr(r.err, want) != NULL);
		KC_CHECK(strstr(r.err, "certificate is not trusted: unable to get local issuer") !=
			 NULL);
		KC_CHECK(!strstr(r.err, TOKEN));
		kc_test_diag("%s CA: %s", cas[i] ? "wrong" : "no", r.err);
		/* Refused before the upgrade request: the token never left. */
		pthread_mutex_lock(&seen_lock);
		KC_CHECK_STREQ(seen_auth, "");
		pthread_mutex_unlock(&seen_lock);
	}
	struct run r;
	console_run(tls_other_name.url, TOKEN, "echo", "x\n", ca_crt, &r);
	KC_CHECK_INT(r.rc, 1);
	KC_CHECK(strstr(r.err, "certificate is not trusted: IP address mismatch") != NULL);
	kc_test_diag("other name: %s", r.err);
}

KC_TEST(https_without_kvmcloud_ca_uses_the_system_cas)
{
	/* OpenSSL's default trust store, which lws loads, honours
	 * SSL_CERT_FILE: here it stands in for the system's CAs.  Like the
	 * CLI's other requests, KVMCLOUD_CA adds to them. */
	setenv("SSL_CERT_FILE", ca_crt, 1);
	struct run r;
	console_run(tls_ok.url, TOKEN, "echo", "sys\n", NULL, &r);
	KC_CHECK_INT(r.rc, 0);
	KC_CHECK(strstr(r.out, "echo:sys\n") != NULL);
	console_run(tls_ok.url, TOKEN, "echo", "both\n", wrong_crt, &r);
	KC_CHECK_INT(r.rc, 0);
	KC_CHECK(strstr(r.out, "echo:both\n") != NULL);
	unsetenv("SSL_CERT_FILE");
	if (r.rc != 0)
		kc_test_diag("stderr: %s", r.err);
}

/* Reads the pty until `want` has come (or 10 s); true if it came. */
static bool pty_wait(int master, const char *want, char *buf, size_t cap, size_t *len)
{
	time_t end = time(NULL) + 10;
	while (time(NULL) < end) {
		buf[*len] = '\0';
		if (strstr(buf, want))
			return true;
		struct pollfd p = {.fd = master, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = read(master, buf + *len, cap - 1 - *len);
		if (n <= 0)
			return false;
		*len += (size_t)n;
	}
	return false;
}

KC_TEST(terminal_raw_mode_escape_key_and_restore)
{
	int master, slave, err[2];
	if (!KC_CHECK(openpty(&master, &slave, NULL, NULL, NULL) == 0) ||
	    !KC_CHECK(pipe2(err, O_CLOEXEC) == 0))
		return;
	unsetenv("KVMCLOUD_CA");
	pid_t pid = fork();
	if (pid == 0) {
		dup2(slave, STDIN_FILENO);
		dup2(slave, STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		close(master);
		close(slave);
		close(err[0]);
		close(err[1]);
		char *argv[] = {(char *)kvmcloud, "--server", plain.url, "--token", TOKEN, "vm",
				"console",	  "echo",     NULL};
		execv(kvmcloud, argv);
		_exit(127);
	}
	close(err[1]);
	char buf[4096];
	size_t len = 0;
	KC_CHECK(pty_wait(master, "hello", buf, sizeof(buf), &len));
	/* Raw: the line goes out without a newline, Ctrl-] is not sent. */
	KC_CHECK(write(master, "abc", 3) == 3);
	KC_CHECK(pty_wait(master, "echo:abc", buf, sizeof(buf), &len));
	KC_CHECK(write(master, "\x1d", 1) == 1);
	/* Ctrl-] must end it: at most 10 s. */
	int st = -1;
	for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++)
		usleep(100 * 1000);
	if (!KC_CHECK(st != -1)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	KC_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char ebuf[1024];
	read_all(err[0], ebuf, sizeof(ebuf));
	KC_CHECK(strstr(ebuf, "Connected to echo\r\nEscape character is ^]") != NULL);
	struct termios t;
	KC_CHECK(tcgetattr(slave, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		kc_test_diag("pty: %s\nstderr: %s", buf, ebuf);
	close(err[0]);
	close(master);
	close(slave);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_console PATH-TO-KVMCLOUD\n");
		return 2;
	}
	kvmcloud = argv[1];
	bool ok = setup();
	if (ok) {
		kc_test_run_registered();
	} else {
		kc_test_diag("cannot start the test servers");
	}
	server_stop(&plain);
	server_stop(&tls_ok);
	server_stop(&tls_other_name);
	rm_dir(dir_ca);
	rm_dir(dir_wrong);
	rm_dir(dir_other);
	return ok ? kc_test_finish() : 1;
}
