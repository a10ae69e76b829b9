/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pooltool - the pool vtable (src/agent/pool.h) from the command line, for
 * the e2e tests (100-pools.sh, 105-netstorage.sh) until volumes have an
 * API of their own.  Not installed.
 *
 *   kc-pooltool --data DIR [--uri URI] [--storage-pool NAME] POOL-JSON CMD [ARGS]
 *     ensure | info | volumes | remove
 *     vol-create NAME qcow2|raw BYTES | vol-delete NAME | disk NAME qcow2|raw
 *
 * Prints the result as JSON; an error as "error: CODE: MESSAGE" on stderr,
 * exit status 1 (2 for usage).  NAME (default kce2e-pooltool) is the
 * agent's own default pool, at DIR/pool: one per DIR.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"
#include "json_util.h"
#include "pool.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: kc-pooltool --data DIR [--uri URI] [--storage-pool NAME] POOL-JSON CMD "
		"[ARGS]\n");
	return 2;
}

static int fail(const struct kc_error *err)
{
	fprintf(stderr, "error: %s: %s\n", kc_errcode_name(err->code), err->message);
	return 1;
}

static void print(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	puts(s ? s : "null");
	free(s);
	json_decref(j);
}

static int run(struct kc_agent *a, const struct kc_pool_def *def, int argc, char **argv,
	       struct kc_error *err)
{
	const char *cmd = argv[0];
	json_t *r = NULL;
	enum kc_vol_format fmt = KC_VOL_QCOW2;

	if (strcmp(cmd, "ensure") == 0 || strcmp(cmd, "info") == 0 || strcmp(cmd, "volumes") == 0 ||
	    strcmp(cmd, "remove") == 0) {
		int rc = cmd[0] == 'e'	 ? kc_agent_pool_ensure(a, def, &r, err)
			 : cmd[0] == 'i' ? kc_agent_pool_info(a, def, &r, err)
			 : cmd[0] == 'v' ? kc_agent_pool_volumes(a, def, &r, err)
					 : kc_agent_pool_remove(a, def, err);
		if (rc < 0)
			return -1;
		print(r ? r : json_object());
		return 0;
	}
	struct kc_pool *p = NULL;
	if ((strcmp(cmd, "vol-create") == 0 && argc == 4) ||
	    (strcmp(cmd, "disk") == 0 && argc == 3)) {
		if (kc_vol_format_parse(argv[2], &fmt, err) < 0)
			return -1;
	} else if (!(strcmp(cmd, "vol-delete") == 0 && argc == 2)) {
		return kc_error_set(err, KC_ERR_INVALID, "unknown command or wrong arguments");
	}
	if (kc_pool_open(a, def, &p, err) < 0)
		return -1;
	int rc;
	if (cmd[0] == 'v' && cmd[4] == 'c') {
		char *end = NULL;
		uint64_t size = strtoull(argv[3], &end, 10);
		rc = *end ? kc_error_set(err, KC_ERR_INVALID, "bad size")
			  : kc_pool_vol_create(p, argv[1], fmt, size, err);
		if (rc == 0)
			print(json_pack("{s:s}", "created", argv[1]));
	} else if (cmd[0] == 'v') {
		rc = kc_pool_vol_delete(p, argv[1], err);
		if (rc == 0)
			print(json_pack("{s:s}", "deleted", argv[1]));
	} else {
		struct kc_pool_disk d = {0};
		rc = kc_pool_vol_disk(p, argv[1], fmt, &d, err);
		if (rc == 0) {
			static const char *const kinds[] = {"file", "block", "network"};
			print(json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:i,s:s?,s:s?}", "type",
					kinds[d.kind], "format", kc_vol_format_name(d.format),
					"path", d.path, "protocol", d.protocol, "host", d.host,
					"port", (int)d.port, "name", d.name, "initiator",
					d.initiator));
			kc_pool_disk_clear(&d);
		}
	}
	kc_pool_close(p);
	return rc;
}

int main(int argc, char **argv)
{
	const char *data = NULL, *uri = "qemu:///system", *spool = "kce2e-pooltool";
	int i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--data") == 0)
			data = argv[i + 1];
		else if (strcmp(argv[i], "--uri") == 0)
			uri = argv[i + 1];
		else if (strcmp(argv[i], "--storage-pool") == 0)
			spool = argv[i + 1];
		else
			return usage();
	}
	if (!data || argc - i < 2)
		return usage();
	struct kc_error err = {0};
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_loads(argv[i], 0, &jerr);
	struct kc_pool_def def = {0};
	if (!j) {
		kc_error_set(&err, KC_ERR_INVALID, "pool JSON: %s", jerr.text);
		return fail(&err);
	}
	if (kc_pool_def_from_json(j, NULL, true, &def, &err) < 0)
		return fail(&err);

	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	kc_config_set(cfg, "libvirt.uri", uri, NULL);
	kc_config_set(cfg, "data.dir", data, NULL);
	kc_config_set(cfg, "storage.pool", spool, NULL);
	kc_config_set(cfg, "accel", "tcg", NULL);
	struct kc_agent *a = NULL;
	int rc = 0;
	if (kc_agent_new(cfg, &a, &err) < 0 || run(a, &def, argc - i - 1, argv + i + 1, &err) < 0)
		rc = fail(&err);
	kc_agent_free(a);
	kc_pool_def_clear(&def);
	return rc;
}
