/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostfw.c against the kernel's nftables, in a network namespace of its
 * own (unshare(CLONE_NEWNET): needs root; skipped otherwise): apply,
 * confirm, the rollback timer, the stale pending file at start, the
 * servers set from the link's endpoints, and a table of someone else's
 * that must stay untouched.
 */

#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "hostfw.h"
#include "json_util.h"
#include "tap.h"

static char dir[] = "/tmp/kctest-hostfw-XXXXXX";
static char file[256];

/* nft's text output for cmd, NULL if it failed. */
static char *nft(const char *cmd)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	char *out = NULL;
	if (nft_run_cmd_from_buffer(ctx, cmd) == 0)
		out = strdup(nft_ctx_get_output_buffer(ctx));
	nft_ctx_free(ctx);
	return out;
}

static bool table_has(const char *needle)
{
	_cleanup_free_ char *t = nft("list table inet kvmcloud_host");
	return t && strstr(t, needle);
}

static int call(int (*fn)(const json_t *, json_t **, struct kc_error *), const char *args,
		json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *a = json_loads(args, 0, NULL);
	json_t *r = NULL;
	int rc = fn(a, &r, err);
	if (ret)
		*ret = r;
	else
		json_decref(r);
	return rc;
}

static void file_mode_0600(const char *path)
{
	struct stat st;
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "%s is 0600", path);
}

int main(void)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
		printf("1..0 # SKIP needs root for a network namespace\n");
		return 0;
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(file, sizeof(file), "%s/firewall.nft", dir);
	struct kc_error err = {0};
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	char pair[300];
	snprintf(pair, sizeof(pair), "firewall.file=%s", file);
	kc_config_set_pair(cfg, pair, &err);
	ok(kc_hostfw_configure(cfg, &err) == 0, "configure");
	/* "} }" on one line is a syntax error in nft 1.0.6. */
	_cleanup_free_ char *made = nft("table ip kctest_other { chain c { type filter hook input "
					"priority 0; policy accept; }; }");
	ok(made != NULL, "another table exists");

	ok(kc_hostfw_start(NULL, NULL, &err) == 0 && !nft("list table inet kvmcloud_host"),
	   "start without a file loads nothing");
	char why[512];
	ok(kc_hostfw_check(why, sizeof(why)) == 0 && strstr(why, "absent"), "check: %s", why);

	const char *eps[] = {"10.9.0.254:8471", "[fd00::254]:8471", "server.example:8471"};
	kc_hostfw_link_endpoints(eps, 3);

	ok(call(kc_hostfw_apply, "{\"policy\": {\"peers\": [\"10.9.0.2\"]}}", NULL, &err) == 0,
	   "apply without confirmation: %s", err.message);
	ok(table_has("10.9.0.254") && table_has("fd00::254") && table_has("10.9.0.2"),
	   "the sets hold the link's servers (IP literals only) and the peers");
	ok(access(file, F_OK) == 0, "the file is written");
	file_mode_0600(file);
	ok(kc_hostfw_check(why, sizeof(why)) == 0 && strstr(why, "loaded"), "check: %s", why);

	/* After a restart (no peers pushed: saved as null) a rollback goes
	 * back to the file, not to no table. */
	kc_hostfw_stop();
	ok(kc_hostfw_start(NULL, NULL, &err) == 0, "restart");
	ok(call(kc_hostfw_apply, "{\"policy\": {\"ssh_port\": 2201}, \"confirm_s\": 1}", NULL,
		&err) == 0,
	   "apply with confirm_s 1 after the restart");
	sleep(2);
	ok(table_has("dport 22 ") && table_has("10.9.0.254"), "rolled back to the file's ruleset");

	/* A change that is not confirmed goes away by itself. */
	json_t *r = NULL;
	ok(call(kc_hostfw_apply, "{\"policy\": {\"ssh_port\": 2222}, \"confirm_s\": 1}", &r,
		&err) == 0,
	   "apply with confirm_s 1");
	ok(r && strcmp(json_string_value(json_object_get(r, "state")), "pending") == 0,
	   "it is pending");
	json_decref(r);
	ok(table_has("dport 2222"), "the pending ruleset is live");
	sleep(2);
	ok(table_has("dport 22 ") && !table_has("dport 2222"), "rolled back after 1 s");
	ok(call(kc_hostfw_confirm, "{}", NULL, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "nothing left to confirm");
	kc_error_clear(&err);

	/* A confirmed change is kept. */
	ok(call(kc_hostfw_apply, "{\"policy\": {\"ssh_port\": 2200}, \"confirm_s\": 30}", &r,
		&err) == 0,
	   "apply with confirm_s 30");
	char args[64];
	snprintf(args, sizeof(args), "{\"pending_id\": %lld}",
		 (long long)json_integer_value(json_object_get(r, "pending_id")));
	json_decref(r);
	ok(call(kc_hostfw_confirm, "{\"pending_id\": 99999}", NULL, &err) < 0,
	   "a wrong id is refused");
	kc_error_clear(&err);
	ok(call(kc_hostfw_confirm, args, NULL, &err) == 0, "confirm: %s", err.message);
	ok(table_has("dport 2200"), "the confirmed ruleset stays");

	/* A bad policy changes nothing. */
	ok(call(kc_hostfw_apply, "{\"policy\": {\"deny\": [\"1.2.3.4/40\"]}}", NULL, &err) < 0 &&
		   err.code == KC_ERR_INVALID,
	   "a bad policy is refused");
	kc_error_clear(&err);
	ok(call(kc_hostfw_peers, "{\"peers\": [\"10.9.0.7\"]}", NULL, &err) == 0 &&
		   table_has("10.9.0.7") && table_has("dport 2200"),
	   "peers from the server join the set");

	/* Restart: the file comes back; an unconfirmed change does not. */
	ok(call(kc_hostfw_apply, "{\"policy\": {\"ssh_port\": 2300}, \"confirm_s\": 60}", NULL,
		&err) == 0,
	   "a change left pending");
	char pend[300];
	snprintf(pend, sizeof(pend), "%s.pending", file);
	ok(access(pend, F_OK) == 0, "its pending file exists");
	kc_hostfw_stop();
	ok(table_has("dport 2200") && access(pend, F_OK) != 0,
	   "stop rolls the pending change back");
	free(nft("delete table inet kvmcloud_host"));
	ok(kc_hostfw_start(NULL, NULL, &err) == 0 && table_has("dport 2200") &&
		   table_has("10.9.0.7") && table_has("10.9.0.254"),
	   "start loads the file again, with its sets");
	ok(call(kc_hostfw_show, "{}", &r, &err) == 0 &&
		   json_is_true(json_object_get(r, "loaded")) &&
		   strcmp(json_string_value(json_object_get(r, "state")), "applied") == 0,
	   "show");
	json_decref(r);
	_cleanup_free_ char *other = nft("list table ip kctest_other");
	ok(other != NULL, "another table is untouched");
	kc_hostfw_stop();

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return tap_done();
}
