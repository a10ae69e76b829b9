/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cli.c - the kvmcloud CLI without a server: command-line flags to the
 * exact request JSON, usage errors and their exit status, where the URL and
 * token come from (flag > environment > file > default), and the tables and
 * blocks printed for sample answers.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "http.h"
#include "json_util.h"
#include "kctest.h"
#include "request.h"
#include "settings.h"
#include "until.h"

/* Parses "NOUN VERB args..." (space separated, no quoting) for its verb. */
static int parse(const char *line, struct kc_args *a, const struct kc_verb **ret_v,
		 struct kc_error *err)
{
	static char buf[2048];
	static char *argv[64];
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 63;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	const struct kc_verb *v = kc_verb_find(argv[0], argv[1]);
	if (!v)
		return kc_error_set(err, KC_ERR_INTERNAL, "no verb %s %s", argv[0], argv[1]);
	if (ret_v)
		*ret_v = v;
	return kc_args_parse(a, v->opts, argc - 2, argv + 2, v->min_args, v->max_args, err);
}

/* Builds the create body for `line` and compares it with `expected`. */
static bool create_is(const char *line, const char *expected)
{
	struct kc_args a;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(parse(line, &a, NULL, &err), 0)) {
		kc_test_diag("%s", err.message);
		return false;
	}
	_cleanup_json_ json_t *got = kc_req_vm_create(&a, &err);
	_cleanup_json_ json_t *want = json_loads(expected, 0, NULL);
	if (!KC_CHECK(want) || !KC_CHECK(got)) {
		kc_test_diag("%s", err.message);
		return false;
	}
	_cleanup_free_ char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
	return KC_CHECK_STREQ(g, w);
}

/* Expects a usage error (KC_ERR_INVALID) from parsing or building, whose
 * message contains `needle`. */
static void create_fails(const char *line, const char *needle)
{
	struct kc_args a;
	struct kc_error err = {0};
	json_t *j = NULL;
	if (parse(line, &a, NULL, &err) == 0)
		j = kc_req_vm_create(&a, &err);
	KC_CHECK(j == NULL);
	json_decref(j);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	if (!KC_CHECK(strstr(err.message, needle)))
		kc_test_diag("line '%s': message '%s', wanted '%s'", line, err.message, needle);
}

KC_TEST(create_minimal_sends_only_given_fields)
{
	create_is("vm create web1 --image kctest --memory 256",
		  "{\"name\":\"web1\",\"memory_mib\":256,\"image\":\"kctest\"}");
}

KC_TEST(create_all_flags_to_exact_json)
{
	char path[] = "/tmp/kc-cli-ud-XXXXXX";
	int fd = mkstemp(path);
	if (!KC_CHECK(fd >= 0))
		return;
	KC_CHECK(write(fd, "#cloud-config\n", 14) == 14);
	close(fd);
	char line[512];
	snprintf(line, sizeof(line),
		 "vm create web1 --image kctest --memory=512 --vcpus 2 --disk-size 4 "
		 "--data-disk 1 --data-disk=20 --iso debian.iso --nic user "
		 "--nic network=default,mac=52:54:00:AA:bb:01 --nic bridge=cloudbr0 "
		 "--boot cdrom,hd,network --graphics vnc --autostart --no-start "
		 "--hostname web1.lan --user-data %s --json",
		 path);
	create_is(line,
		  "{\"name\":\"web1\",\"vcpus\":2,\"memory_mib\":512,\"image\":\"kctest\","
		  "\"disk_gib\":4,\"data_disks_gib\":[1,20],\"iso\":\"debian.iso\","
		  "\"nics\":[{\"type\":\"user\"},"
		  "{\"type\":\"network\",\"source\":\"default\",\"mac\":\"52:54:00:AA:bb:01\"},"
		  "{\"type\":\"bridge\",\"source\":\"cloudbr0\"}],"
		  "\"boot\":[\"cdrom\",\"hd\",\"network\"],\"graphics\":\"vnc\","
		  "\"autostart\":true,\"start\":false,\"hostname\":\"web1.lan\","
		  "\"user_data\":\"#cloud-config\\n\"}");
	unlink(path);
}

KC_TEST(create_options_may_come_before_the_name)
{
	create_is("vm create --memory 64 --iso boot.iso -- web2",
		  "{\"name\":\"web2\",\"memory_mib\":64,\"iso\":\"boot.iso\"}");
}

KC_TEST(create_usage_errors)
{
	create_fails("vm create", "missing argument");
	create_fails("vm create a b --memory 1 --image x", "unexpected argument 'b'");
	create_fails("vm create web1 --image kctest", "--memory MIB is required");
	create_fails("vm create web1 --memory 256", "--image IMG is required");
	create_fails("vm create web1 --image kctest --memory 12abc", "'12abc' is not a number");
	create_fails("vm create web1 --image kctest --memory -5", "'-5' is not a number");
	create_fails("vm create web1 --image kctest --memory=", "'' is not a number");
	create_fails("vm create web1 --image kctest --memory +5", "'+5' is not a number");
	create_fails("vm create web1 --image kctest --memory 0x10", "'0x10' is not a number");
	create_fails("vm create web1 --image kctest --memory 99999999999999999999999",
		     "out of range");
	create_fails("vm create web1 --image kctest --memory 64 --vcpus 0", "out of range");
	create_fails("vm create web1 --image kctest --memory", "'--memory' needs a value");
	create_fails("vm create web1 --image a --image b --memory 1", "'--image' given twice");
	create_fails("vm create web1 --image a --memory 1 --frobnicate", "unknown option");
	create_fails("vm create web1 --image a --memory 1 --autostart=yes", "takes no value");
	create_fails("vm create web1 --image a --memory 1 --data-disk 0", "out of range");
	create_fails("vm create web1 --image a --memory 1 --boot hd,floppy", "'floppy'");
	create_fails("vm create web1 --image a --memory 1 --graphics spice", "'spice'");
	/* A bare word is a guest network's name: "network" alone is one. */
	create_fails("vm create web1 --image a --memory 1 --nic net1,foo=1", "expected NETWORK");
	create_fails("vm create web1 --image a --memory 1 --nic net1,ip=1,ip=2", "expected NETWORK");
	create_fails("vm create web1 --image a --memory 1 --nic ../x", "--nic network");
	create_fails("vm create web1 --image a --memory 1 --nic user=x", "--nic user=x");
	create_fails("vm create web1 --image a --memory 1 --nic user,mac=zz", "mac=");
	create_fails("vm create web1 --image a --memory 1 --nic bridge=a/b", "--nic source");
	create_fails("vm create a/b --image a --memory 1", "VM name");
	create_fails("vm create ../x --image a --memory 1", "VM name");
}

KC_TEST(create_user_data_errors_are_not_usage_errors)
{
	struct kc_args a;
	struct kc_error err = {0};
	KC_CHECK_INT(parse("vm create w --image a --memory 1 --user-data /nonexistent/ud", &a, NULL,
			   &err),
		     0);
	KC_CHECK(kc_req_vm_create(&a, &err) == NULL);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	KC_CHECK(strstr(err.message, "/nonexistent/ud"));

	char path[] = "/tmp/kc-cli-big-XXXXXX";
	int fd = mkstemp(path);
	if (!KC_CHECK(fd >= 0))
		return;
	static char big[KC_USER_DATA_MAX + 1];
	memset(big, 'x', sizeof(big));
	KC_CHECK(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big));
	close(fd);
	char line[256];
	snprintf(line, sizeof(line), "vm create w --image a --memory 1 --user-data %s", path);
	kc_error_clear(&err);
	KC_CHECK_INT(parse(line, &a, NULL, &err), 0);
	KC_CHECK(kc_req_vm_create(&a, &err) == NULL);
	KC_CHECK_INT(err.code, KC_ERR_TOO_LARGE);
	unlink(path);
}

KC_TEST(shutdown_and_check_bodies)
{
	struct kc_args a;
	struct kc_error err = {0};
	KC_CHECK_INT(parse("vm shutdown web1", &a, NULL, &err), 0);
	_cleanup_json_ json_t *b1 = kc_req_vm_shutdown(&a, &err);
	_cleanup_free_ char *s1 = json_dumps(b1, JSON_COMPACT);
	KC_CHECK_STREQ(s1, "{\"force\":true}");

	KC_CHECK_INT(parse("vm shutdown web1 --no-force --timeout 30", &a, NULL, &err), 0);
	_cleanup_json_ json_t *b2 = kc_req_vm_shutdown(&a, &err);
	_cleanup_free_ char *s2 = json_dumps(b2, JSON_COMPACT | JSON_SORT_KEYS);
	KC_CHECK_STREQ(s2, "{\"force\":false,\"timeout_s\":30}");

	KC_CHECK_INT(parse("vm shutdown web1 --timeout 3s", &a, NULL, &err), 0);
	KC_CHECK(kc_req_vm_shutdown(&a, &err) == NULL);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);

	KC_CHECK_INT(parse("host check node1", &a, NULL, &err), 0);
	KC_CHECK(kc_req_host_check(&a) == NULL);
	KC_CHECK_INT(parse("host check node1 --probe", &a, NULL, &err), 0);
	_cleanup_json_ json_t *b3 = kc_req_host_check(&a);
	_cleanup_free_ char *s3 = json_dumps(b3, JSON_COMPACT);
	KC_CHECK_STREQ(s3, "{\"probe_kvm\":true}");
}

KC_TEST(paths_validate_names)
{
	struct kc_error err = {0};
	_cleanup_free_ char *p = kc_req_path("vms", "web1", "/log", "VM name", &err);
	KC_CHECK_STREQ(p, "/api/v1/vms/web1/log");
	KC_CHECK(kc_req_path("vms", "a?b", NULL, "VM name", &err) == NULL);
	KC_CHECK(kc_req_path("vms", "..", NULL, "VM name", &err) == NULL);
}

KC_TEST(every_verb_parses_json_and_help_after_the_verb)
{
	for (const struct kc_verb *v = kc_verbs; v->noun; v++) {
		char *argv[] = {"--json", "--help"};
		struct kc_args a;
		struct kc_error err = {0};
		KC_CHECK_INT(kc_args_parse(&a, v->opts, 2, argv, v->min_args, v->max_args, &err),
			     0);
		KC_CHECK(a.json && a.help);
		KC_CHECK(strncmp(v->usage, v->noun, strlen(v->noun)) == 0);
	}
	KC_CHECK(kc_verb_find("vm", "create") != NULL);
	KC_CHECK(kc_verb_find("vm", "frob") == NULL);
}

/* kc_cli_main() on argv; only cases that print nothing to stdout (TAP). */
static int run(const char *line)
{
	static char buf[1024];
	char *argv[32] = {"kvmcloud"};
	int argc = 1;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 31;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	return kc_cli_main(argc, argv);
}

KC_TEST(exit_status_of_usage_errors_is_2_before_any_token_check)
{
	unsetenv("KVMCLOUD_TOKEN");
	unsetenv("KVMCLOUD_TOKEN_FILE");
	setenv("KVMCLOUD_CONFIG", "/dev/null", 1);
	KC_CHECK_INT(run(""), 2);
	KC_CHECK_INT(run("--bogus vm list"), 2);
	KC_CHECK_INT(run("--server"), 2);
	KC_CHECK_INT(run("disk list"), 2);
	KC_CHECK_INT(run("vm"), 2);
	KC_CHECK_INT(run("vm frob"), 2);
	KC_CHECK_INT(run("vm list extra"), 2);
	KC_CHECK_INT(run("vm show"), 2);
	KC_CHECK_INT(run("vm show a b"), 2);
	KC_CHECK_INT(run("vm show bad/name"), 2);
	KC_CHECK_INT(run("vm create web1 --memory 12abc --image x"), 2);
	KC_CHECK_INT(run("vm log web1 --tail x"), 2);
	KC_CHECK_INT(run("vm log web1 --until ("), 2);
	KC_CHECK_INT(run("vm delete web1 --keep"), 2);
	KC_CHECK_INT(run("host check n1 --probe=1"), 2);
	KC_CHECK_INT(run("group list extra"), 2);
	KC_CHECK_INT(run("group show"), 2);
	KC_CHECK_INT(run("group show bad/name"), 2);
	KC_CHECK_INT(run("group delete .."), 2);
	KC_CHECK_INT(run("host token"), 2);
	KC_CHECK_INT(run("host token a..b"), 2);
	/* Not a usage error: the server cannot be reached (exit 1). */
	KC_CHECK_INT(run("--server http://127.0.0.1:1 --token t vm list"), 1);
	KC_CHECK_INT(run("--server ftp://x --token t vm list"), 1);
	KC_CHECK_INT(run("--server http://127.0.0.1:1 --token t group delete web"), 1);
	KC_CHECK_INT(run("--server http://127.0.0.1:1 --token t host token h2"), 1);
	unsetenv("KVMCLOUD_CONFIG");
}

KC_TEST(group_and_host_token_paths)
{
	struct kc_error err = {0};
	_cleanup_free_ char *p = kc_req_path("hosts", "h2", "/join-token", "host name", &err);
	KC_CHECK_STREQ(p, "/api/v1/hosts/h2/join-token");
	KC_CHECK(kc_verb_find("group", "list") && kc_verb_find("group", "show") &&
		 kc_verb_find("group", "delete") && kc_verb_find("host", "token"));
}

KC_TEST(global_options)
{
	struct kc_global_flags g;
	struct kc_error err = {0};
	int next;
	char *argv[] = {"kvmcloud", "--server", "http://h:1", "--token=abc", "--json",
			"--config", "/c",	"vm",	      "list"};
	KC_CHECK_INT(kc_global_parse(9, argv, &g, &next, &err), 0);
	KC_CHECK_INT(next, 7);
	KC_CHECK_STREQ(g.server, "http://h:1");
	KC_CHECK_STREQ(g.token, "abc");
	KC_CHECK_STREQ(g.config, "/c");
	KC_CHECK(g.json);

	char *bad[] = {"kvmcloud", "--tokn=s3cret", "vm", "list"};
	KC_CHECK_INT(kc_global_parse(4, bad, &g, &next, &err), -1);
	KC_CHECK(strstr(err.message, "--tokn"));
	KC_CHECK(!strstr(err.message, "s3cret"));
}

static char *write_tmp(const char *content)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/kc-cli-test-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	if (write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
		close(fd);
		return NULL;
	}
	close(fd);
	return strdup(path);
}

KC_TEST(settings_precedence_flag_env_file_default)
{
	_cleanup_free_ char *tokfile = write_tmp("  from-token-file \n second line ignored\n");
	_cleanup_free_ char *envtok = write_tmp("env-file-token\n");
	char conf_text[512];
	snprintf(conf_text, sizeof(conf_text),
		 "# cli.conf\nurl = http://file:1/\ntoken_file = %s\n", tokfile);
	_cleanup_free_ char *conf = write_tmp(conf_text);
	if (!KC_CHECK(tokfile && envtok && conf))
		return;
	struct kc_settings s;
	struct kc_error err = {0};

	unsetenv("KVMCLOUD_URL");
	unsetenv("KVMCLOUD_TOKEN");
	unsetenv("KVMCLOUD_TOKEN_FILE");
	setenv("HOME", "/nonexistent-home", 1);

	/* Default. */
	struct kc_global_flags g = {0};
	unsetenv("KVMCLOUD_CONFIG");
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), 0);
	KC_CHECK_STREQ(s.url, KC_DEFAULT_URL);
	kc_settings_clear(&s);

	/* File, named by KVMCLOUD_CONFIG. */
	setenv("KVMCLOUD_CONFIG", conf, 1);
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), 0);
	KC_CHECK_STREQ(s.url, "http://file:1");
	KC_CHECK_STREQ(s.token, "from-token-file");
	kc_settings_clear(&s);

	/* Environment over file. */
	setenv("KVMCLOUD_URL", "http://env:2", 1);
	setenv("KVMCLOUD_TOKEN_FILE", envtok, 1);
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), 0);
	KC_CHECK_STREQ(s.url, "http://env:2");
	KC_CHECK_STREQ(s.token, "env-file-token");
	kc_settings_clear(&s);
	/* KVMCLOUD_TOKEN beats KVMCLOUD_TOKEN_FILE at the same level. */
	setenv("KVMCLOUD_TOKEN", "env-token", 1);
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), 0);
	KC_CHECK_STREQ(s.token, "env-token");
	kc_settings_clear(&s);

	/* Flags over environment. */
	g.server = "https://flag:3//";
	g.token = "flag-token";
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), 0);
	KC_CHECK_STREQ(s.url, "https://flag:3");
	KC_CHECK_STREQ(s.token, "flag-token");
	kc_settings_clear(&s);
	g.token = NULL;
	g.token_file = tokfile;
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), 0);
	KC_CHECK_STREQ(s.token, "from-token-file");
	kc_settings_clear(&s);

	/* --config over KVMCLOUD_CONFIG, and it must exist. */
	g = (struct kc_global_flags){.config = "/nonexistent/cli.conf"};
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), -1);
	KC_CHECK(strstr(err.message, "/nonexistent/cli.conf"));

	/* Bad values. */
	kc_error_clear(&err);
	g = (struct kc_global_flags){.server = "ftp://x"};
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), -1);
	kc_error_clear(&err);
	g = (struct kc_global_flags){.token = "a b\r\nX-Evil: 1"};
	KC_CHECK_INT(kc_settings_resolve(&g, &s, &err), -1);
	KC_CHECK(!strstr(err.message, "X-Evil"));

	unsetenv("KVMCLOUD_URL");
	unsetenv("KVMCLOUD_TOKEN");
	unsetenv("KVMCLOUD_TOKEN_FILE");
	unsetenv("KVMCLOUD_CONFIG");
	unlink(tokfile);
	unlink(envtok);
	unlink(conf);
}

KC_TEST(missing_token_message)
{
	struct kc_settings s = {0};
	struct kc_error err = {0};
	KC_CHECK_INT(kc_settings_need_token(&s, &err), -1);
	KC_CHECK(strncmp(err.message, "no token: pass --token", 22) == 0);
}

static const char *const VMS =
	"{\"vms\": [{\"name\": \"web1\", \"uuid\": \"u\", \"host\": \"node1\", \"host_state\": "
	"\"Up\", \"state\": \"running\", \"vcpus\": 1, \"memory_mib\": 256, \"image\": "
	"\"kctest\"},"
	"{\"name\": \"database-2\", \"host\": null, \"host_state\": null, \"state\": \"shutoff\", "
	"\"host_reachable\": false, \"vcpus\": 16, \"memory_mib\": 4096, \"image\": null},"
	"{\"name\": \"db3\", \"host\": \"node2\", \"host_state\": \"Disconnected\", "
	"\"host_reachable\": false, \"state\": \"running\", \"vcpus\": 2, \"memory_mib\": 512},"
	"{\"name\": \"evil\\u001b[2J\", \"state\": \"missing\"}]}";

/* GET /vms?live=true: full VM objects, no host_state. */
static const char *const VMS_LIVE =
	"{\"vms\": [{\"name\": \"web1\", \"host\": \"node1\", \"state\": \"running\", "
	"\"accel\": \"tcg\", \"vcpus\": 1, \"memory_mib\": 256, \"image\": \"kctest\"},"
	"{\"name\": \"db3\", \"host\": \"node2\", \"state\": \"running\", "
	"\"host_reachable\": false, \"vcpus\": 2, \"memory_mib\": 512}]}";

static char *capture(void (*fn)(FILE *, const json_t *), const char *json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	_cleanup_json_ json_t *j = json_loads(json, 0, NULL);
	fn(f, j);
	fclose(f);
	return buf;
}

KC_TEST(vm_table)
{
	_cleanup_free_ char *out = capture(kc_fmt_vm_table, VMS);
	KC_CHECK_STREQ(out, "NAME        STATE    HOST   HOST-STATE    VCPUS  MEMORY  IMAGE\n"
			    "web1        running  node1  Up            1      256MiB  kctest\n"
			    "database-2  shutoff  -      unreachable   16     4GiB    -\n"
			    "db3         running  node2  Disconnected  2      512MiB  -\n"
			    "evil?[2J    missing  -      -             -      -       -\n");
	_cleanup_free_ char *live = capture(kc_fmt_vm_table, VMS_LIVE);
	KC_CHECK_STREQ(live, "NAME  STATE    HOST   HOST-STATE   VCPUS  MEMORY  IMAGE\n"
			     "web1  running  node1  -            1      256MiB  kctest\n"
			     "db3   running  node2  unreachable  2      512MiB  -\n");
	_cleanup_free_ char *empty = capture(kc_fmt_vm_table, "{\"vms\": []}");
	KC_CHECK_STREQ(empty, "NAME  STATE  HOST  HOST-STATE  VCPUS  MEMORY  IMAGE\n");
}

static const char *const HOST =
	"{\"name\": \"node1\", \"uuid\": \"h\", \"state\": \"up\", \"accel\": \"tcg\","
	"\"accel_reason\": \"KVM probe failed\","
	"\"facts\": {\"arch\": \"x86_64\", \"cpu_model\": \"EPYC\", \"cpus\": 2, \"sockets\": 1,"
	"\"cores\": 2, \"threads\": 1, \"mhz\": 2994, \"numa_cells\": 1, \"memory_kib\": 24600000,"
	"\"libvirt_version\": \"9.0.0\", \"qemu_version\": \"7.2.0\"},"
	"\"check\": {\"summary\": \"warn\", \"checked_at\": \"2026-11-21T23:59:00Z\", \"items\": ["
	"{\"name\": \"cpu_virt_flags\", \"status\": \"pass\", \"reason\": \"vmx present\"},"
	"{\"name\": \"kvm_probe\", \"status\": \"warn\", \"reason\": \"guest hung\"},"
	"{\"name\": \"disk\", \"status\": \"fail\", \"reason\": \"pool full\"}]},"
	"\"updated_at\": \"2026-11-21T23:59:01Z\"}";

KC_TEST(host_table)
{
	char json[2048];
	snprintf(json, sizeof(json),
		 "{\"hosts\": [%s, {\"name\": \"node2\", \"state\": \"down\", \"facts\": {}, "
		 "\"check\": null}]}",
		 HOST);
	_cleanup_free_ char *out = capture(kc_fmt_host_table, json);
	KC_CHECK_STREQ(out, "NAME   STATE  ACCEL  CPUS  MEMORY   LIBVIRT  QEMU   CHECK\n"
			    "node1  up     tcg    2     23.5GiB  9.0.0    7.2.0  warn\n"
			    "node2  down   -      -     -        -        -      -\n");
}

static void check_lines(FILE *f, const json_t *j)
{
	kc_fmt_check_items(f, json_object_get(j, "check"), 0);
}

KC_TEST(check_lines)
{
	_cleanup_free_ char *out = capture(check_lines, HOST);
	KC_CHECK_STREQ(out, "PASS cpu_virt_flags: vmx present\n"
			    "WARN kvm_probe: guest hung\n"
			    "FAIL disk: pool full\n");
}

KC_TEST(host_show)
{
	_cleanup_free_ char *out = capture(kc_fmt_host_show, HOST);
	KC_CHECK_STREQ(out, "Name:          node1\n"
			    "UUID:          h\n"
			    "State:         up\n"
			    "Accel:         tcg\n"
			    "Accel reason:  KVM probe failed\n"
			    "Arch:          x86_64\n"
			    "CPU model:     EPYC\n"
			    "CPUs:          2 (1 sockets, 2 cores, 1 threads)\n"
			    "MHz:           2994\n"
			    "NUMA cells:    1\n"
			    "Memory:        23.5GiB\n"
			    "libvirt:       9.0.0\n"
			    "QEMU:          7.2.0\n"
			    "Updated:       2026-11-21T23:59:01Z\n"
			    "Check:         warn at 2026-11-21T23:59:00Z\n"
			    "  PASS cpu_virt_flags: vmx present\n"
			    "  WARN kvm_probe: guest hung\n"
			    "  FAIL disk: pool full\n");
}

KC_TEST(vm_show)
{
	const char *vm =
		"{\"name\": \"web1\", \"uuid\": \"u-1\", \"host\": \"node1\", \"state\": "
		"\"running\","
		"\"managed\": true, \"accel\": \"tcg\", \"cpu_mode\": \"default\", \"vcpus\": 1,"
		"\"memory_mib\": 1536, \"image\": \"kctest\", \"autostart\": false, \"graphics\": "
		"\"vnc\", \"vnc\": {\"listen\": \"127.0.0.1\", \"port\": 5901},"
		"\"disks\": [{\"target\": \"vda\", \"device\": \"disk\", \"format\": \"qcow2\","
		"\"path\": \"/p/web1-root.qcow2\", \"capacity_bytes\": 134217728},"
		"{\"target\": \"sda\", \"device\": \"cdrom\", \"format\": \"raw\","
		"\"path\": \"/p/web1-seed.iso\", \"capacity_bytes\": 374784}],"
		"\"nics\": [{\"type\": \"user\", \"source\": null, \"mac\": \"52:54:00:12:34:56\"},"
		"{\"type\": \"bridge\", \"source\": \"br0\", \"mac\": \"52:54:00:12:34:57\"}],"
		"\"created_at\": \"2026-11-21T23:59:00Z\"}";
	_cleanup_free_ char *out = capture(kc_fmt_vm_show, vm);
	KC_CHECK_STREQ(out, "Name:          web1\n"
			    "UUID:          u-1\n"
			    "State:         running\n"
			    "Host:          node1\n"
			    "Managed:       yes\n"
			    "Accel:         tcg\n"
			    "CPU mode:      default\n"
			    "vCPUs:         1\n"
			    "Memory:        1536MiB\n"
			    "Image:         kctest\n"
			    "Autostart:     no\n"
			    "Graphics:      vnc\n"
			    "VNC:           127.0.0.1:5901\n"
			    "Disk vda:      disk qcow2 128MiB /p/web1-root.qcow2\n"
			    "Disk sda:      cdrom raw 366KiB /p/web1-seed.iso\n"
			    "NIC 0:         user 52:54:00:12:34:56\n"
			    "NIC 1:         bridge br0 52:54:00:12:34:57\n"
			    "Created:       2026-11-21T23:59:00Z\n");
}

KC_TEST(until_matches_lines_and_partial_lines)
{
	struct kc_until u;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_until_init(&u, "^Welcome to .*Linux$", &err), 0))
		return;
	KC_CHECK(!kc_until_feed(&u, "boot\r\nWelcome to Al", 19));
	KC_CHECK(!kc_until_feed(&u, "pine Lin", 8));
	KC_CHECK(kc_until_feed(&u, "ux\r\nmore", 8));
	kc_until_free(&u);

	KC_CHECK_INT(kc_until_init(&u, "login: $", &err), 0);
	KC_CHECK(!kc_until_feed(&u, "host login", 10));
	KC_CHECK(kc_until_feed(&u, ": ", 2)); /* a prompt has no newline */
	kc_until_free(&u);

	KC_CHECK_INT(kc_until_init(&u, "b", &err), 0);
	KC_CHECK(kc_until_feed(&u, "a\0b\n", 4)); /* a NUL does not hide the rest */
	kc_until_free(&u);

	KC_CHECK_INT(kc_until_init(&u, "(", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(error_from_server_body)
{
	struct kc_error err = {0};
	char body[] =
		"{\"error\": {\"code\": \"not_found\", \"message\": \"VM \\\"x\\\" not found\"}}";
	struct kc_http_response r = {.status = 404, .body = body, .len = strlen(body)};
	KC_CHECK_INT(kc_http_check_status(&r, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	KC_CHECK_STREQ(err.message, "VM \"x\" not found");

	kc_error_clear(&err);
	char html[] = "<html>bad gateway</html>";
	r = (struct kc_http_response){.status = 502, .body = html, .len = strlen(html)};
	KC_CHECK_INT(kc_http_check_status(&r, &err), -1);
	KC_CHECK_STREQ(err.message, "server returned HTTP 502");

	r.status = 200;
	KC_CHECK_INT(kc_http_check_status(&r, &err), 0);
}

KC_TEST(unreachable_server)
{
	struct kc_error err = {0};
	_cleanup_client_ struct kc_client *c = kc_client_new("http://127.0.0.1:1", "tok");
	json_t *j = NULL;
	KC_CHECK_INT(kc_api_call(c, "GET", "/api/v1/vms", NULL, &j, &err), -1);
	KC_CHECK(strncmp(err.message, "cannot reach the server at http://127.0.0.1:1: ", 47) == 0);
	KC_CHECK(!strstr(err.message, "tok"));
}

KC_TEST(strict_numbers)
{
	unsigned long long v;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_parse_uint("42", 0, 100, "--n", &v, &err), 0);
	KC_CHECK_INT(v, 42);
	const char *bad[] = {"", " 1", "1 ", "12abc", "-1", "+1", "1e3", "0x1", "101"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		kc_error_clear(&err);
		KC_CHECK_INT(kc_parse_uint(bad[i], 0, 100, "--n", &v, &err), -1);
	}
	KC_CHECK_INT(kc_parse_uint("18446744073709551616", 0, ~0ULL, "--n", &v, &err), -1);
}

KC_TEST_MAIN()
