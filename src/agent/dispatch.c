/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.c - the table of operations.  Each row names an op, the args
 * keys it accepts, a validator that turns the JSON args into typed values
 * (every check happens there, before the agent is touched) and a handler
 * that calls agent.h.
 */
#include <string.h>

#include "cleanup.h"
#include "dispatch.h"
#include "gnet_agent.h"
#include "hostfw.h"
#include "hostnet.h"
#include "json_util.h"
#include "pool.h"
#include "sg_nft.h"
#include "validate.h"
#include "vmspec.h"

#define SHUTDOWN_DEFAULT_TIMEOUT 60
#define SHUTDOWN_MAX_TIMEOUT	 3600
#define LOG_DEFAULT_MAX		 (64 * 1024)

/* The typed arguments of any op; each validator fills its own fields. */
struct op_args {
	const char *name; /* borrowed from the args object */
	bool probe_kvm;
	uint64_t timeout_s;
	bool force;
	bool with_disks;
	uint64_t offset;
	uint64_t max;
	struct kc_vm_request req;
	struct kc_pool_def pool; /* pool.* (pool.h), vm.create's "pool_def" */
	bool has_pool;
	const json_t *raw; /* ops that check their own args (image_cache.c) */
	/* vm.snapshot.* and vm.delete's "snapshots" */
	const char *snapshot;
	const char *description;
	bool start;
	bool with_children;
	bool with_snapshots;
};

struct op {
	const char *name;
	const char *const *keys; /* the args keys allowed (NULL: the validator checks) */
	int (*validate)(const json_t *args, struct op_args *oa, struct kc_error *err);
	int (*run)(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err);
};

static int need_name(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	if (kc_json_get_string(args, "name", true, KC_NAME_MAX, &oa->name, err) < 0)
		return -1;
	return kc_name_validate(oa->name, "VM name", err);
}

static int v_none(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	return 0;
}

static int v_check(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	return kc_json_get_bool(args, "probe_kvm", false, &oa->probe_kvm, err);
}

/* args is the VM request itself (its parser refuses unknown keys), plus
 * "pool_def", the definition of a pool other than "default" the server
 * adds (the agent keeps no pool state). */
static int v_create(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	json_t *def = json_object_get(args, "pool_def");
	json_t *nic_defs = json_object_get(args, "nic_defs"); /* gnet.h */
	_cleanup_json_ json_t *req = json_copy((json_t *)args);
	if (!req)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_object_del(req, "pool_def");
	json_object_del(req, "nic_defs");
	if (def) {
		if (kc_pool_def_from_json(def, NULL, false, &oa->pool, err) < 0)
			return -1;
		oa->has_pool = true;
	}
	if (kc_vm_request_from_json(req, &oa->req, err) < 0)
		return -1;
	return kc_gnet_resolve_nics(&oa->req, nic_defs, err);
}

static int v_shutdown(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	oa->timeout_s = SHUTDOWN_DEFAULT_TIMEOUT;
	if (need_name(args, oa, err) < 0 ||
	    kc_json_get_uint(args, "timeout_s", false, 0, SHUTDOWN_MAX_TIMEOUT, &oa->timeout_s,
			     err) < 0)
		return -1;
	return kc_json_get_bool(args, "force", false, &oa->force, err);
}

static int v_delete(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	if (need_name(args, oa, err) < 0 ||
	    kc_json_get_bool(args, "snapshots", false, &oa->with_snapshots, err) < 0)
		return -1;
	return kc_json_get_bool(args, "with_disks", false, &oa->with_disks, err);
}

/* vm.snapshot.*: "name" is the VM's, "snapshot" the snapshot's. */
static int v_snap(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	if (need_name(args, oa, err) < 0 ||
	    kc_json_get_string(args, "snapshot", true, KC_NAME_MAX, &oa->snapshot, err) < 0)
		return -1;
	return kc_name_validate(oa->snapshot, "snapshot name", err);
}

static int v_snap_create(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	if (v_snap(args, oa, err) < 0)
		return -1;
	return kc_json_get_string(args, "description", false, KC_SNAPSHOT_DESC_MAX,
				  &oa->description, err);
}

static int v_snap_revert(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	if (v_snap(args, oa, err) < 0)
		return -1;
	return kc_json_get_bool(args, "start", false, &oa->start, err);
}

static int v_snap_delete(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	if (v_snap(args, oa, err) < 0)
		return -1;
	return kc_json_get_bool(args, "children", false, &oa->with_children, err);
}

static int v_log(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	oa->max = LOG_DEFAULT_MAX;
	/* JSON integers are signed 64-bit: larger offsets cannot be sent. */
	if (need_name(args, oa, err) < 0 ||
	    kc_json_get_uint(args, "offset", false, 0, INT64_MAX, &oa->offset, err) < 0)
		return -1;
	return kc_json_get_uint(args, "max", false, 1, KC_OP_LOG_MAX, &oa->max, err);
}

static int v_raw(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	oa->raw = args;
	return 0;
}

static int r_image_ensure(struct kc_agent *a, struct op_args *oa, json_t **ret,
			  struct kc_error *err)
{
	return kc_agent_image_ensure(a, oa->raw, ret, err);
}

static int r_image_forget(struct kc_agent *a, struct op_args *oa, json_t **ret,
			  struct kc_error *err)
{
	return kc_agent_image_forget(a, oa->raw, ret, err);
}

static int r_pool_prune(struct kc_agent *a, struct op_args *oa, json_t **ret,
			struct kc_error *err)
{
	return kc_agent_pool_prune(a, oa->raw, ret, err);
}

static int r_image_put(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_image_put(a, oa->raw, ret, err);
}

static int r_image_commit(struct kc_agent *a, struct op_args *oa, json_t **ret,
			  struct kc_error *err)
{
	return kc_agent_image_commit(a, oa->raw, ret, err);
}

/* vol.* (volume.c checks its own args). */
#define VOL_OP(op)                                                                                 \
	static int r_vol_##op(struct kc_agent *a, struct op_args *oa, json_t **ret,                \
			      struct kc_error *err)                                                \
	{                                                                                          \
		return kc_agent_vol_##op(a, oa->raw, ret, err);                                    \
	}
VOL_OP(create)
VOL_OP(delete)
VOL_OP(resize)
VOL_OP(attach)
VOL_OP(detach)
VOL_OP(upload)
VOL_OP(download)

/* pool.*: {"pool": the whole definition}; the agent keeps no pool state. */
static int v_pool(const json_t *args, struct op_args *oa, struct kc_error *err)
{
	json_t *def = json_object_get(args, "pool");
	if (!def)
		return kc_error_set(err, KC_ERR_INVALID, "pool args need \"pool\"");
	return kc_pool_def_from_json(def, NULL, true, &oa->pool, err);
}

static int r_pool_ensure(struct kc_agent *a, struct op_args *oa, json_t **ret,
			 struct kc_error *err)
{
	return kc_agent_pool_ensure(a, &oa->pool, ret, err);
}

static int r_pool_info(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_pool_info(a, &oa->pool, ret, err);
}

static int r_pool_volumes(struct kc_agent *a, struct op_args *oa, json_t **ret,
			  struct kc_error *err)
{
	return kc_agent_pool_volumes(a, &oa->pool, ret, err);
}

static int r_pool_remove(struct kc_agent *a, struct op_args *oa, json_t **ret,
			 struct kc_error *err)
{
	if (kc_agent_pool_remove(a, &oa->pool, err) < 0)
		return -1;
	*ret = json_object();
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

static int r_facts(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_host_facts(a, ret, err);
}

static int r_check(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_host_check(a, oa->probe_kvm, ret, err);
}

static int r_create(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_vm_create_in(a, &oa->req, oa->has_pool ? &oa->pool : NULL, ret, err);
}

static int empty_result(json_t **ret, struct kc_error *err)
{
	json_t *r = json_object();
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}

static int r_start(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	if (kc_agent_vm_start(a, oa->name, err) < 0)
		return -1;
	return empty_result(ret, err);
}

static int r_reboot(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	if (kc_agent_vm_reboot(a, oa->name, err) < 0)
		return -1;
	return empty_result(ret, err);
}

static int r_destroy(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	if (kc_agent_vm_destroy(a, oa->name, err) < 0)
		return -1;
	return empty_result(ret, err);
}

static int r_shutdown(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	bool forced = false;
	if (kc_agent_vm_shutdown(a, oa->name, (unsigned)oa->timeout_s, oa->force, &forced, err) < 0)
		return -1;
	json_t *r = json_pack("{s:b}", "forced", forced);
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}

static int r_delete(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	if (kc_agent_vm_delete_full(a, oa->name, oa->with_disks, oa->with_snapshots, err) < 0)
		return -1;
	return empty_result(ret, err);
}

static int r_list(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_vm_list(a, ret, err);
}

static int r_show(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_vm_show(a, oa->name, ret, err);
}

static char *base64(const unsigned char *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	char *o = out;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int r_log(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	_cleanup_free_ char *buf = NULL, *b64 = NULL;
	size_t len = 0;
	uint64_t next = 0, size = 0;
	if (kc_agent_vm_log_read(a, oa->name, oa->offset, (size_t)oa->max, &buf, &len, &next, &size,
				 err) < 0)
		return -1;
	b64 = base64((const unsigned char *)(buf ? buf : ""), len);
	json_t *r = b64 ? json_pack("{s:s,s:I,s:I}", "data_base64", b64, "next", (json_int_t)next,
				    "size", (json_int_t)size)
			: NULL;
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}

static int r_snap_create(struct kc_agent *a, struct op_args *oa, json_t **ret,
			 struct kc_error *err)
{
	return kc_agent_snapshot_create(a, oa->name, oa->snapshot, oa->description, ret, err);
}

static int r_snap_list(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_snapshot_list(a, oa->name, ret, err);
}

static int r_snap_show(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_snapshot_show(a, oa->name, oa->snapshot, ret, err);
}

static int r_snap_revert(struct kc_agent *a, struct op_args *oa, json_t **ret,
			 struct kc_error *err)
{
	return kc_agent_snapshot_revert(a, oa->name, oa->snapshot, oa->start, ret, err);
}

static int r_snap_delete(struct kc_agent *a, struct op_args *oa, json_t **ret,
			 struct kc_error *err)
{
	unsigned n = 0;
	if (kc_agent_snapshot_delete(a, oa->name, oa->snapshot, oa->with_children, &n, err) < 0)
		return -1;
	json_t *r = json_pack("{s:s,s:i}", "deleted", oa->snapshot, "count", (int)n);
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}

static int r_stats(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_vm_stats(a, ret, err);
}

static const char *const k_none[] = {NULL};
static const char *const k_check[] = {"probe_kvm", NULL};
static const char *const k_name[] = {"name", NULL};
static const char *const k_shutdown[] = {"name", "timeout_s", "force", NULL};
static const char *const k_delete[] = {"name", "with_disks", "snapshots", NULL};
static const char *const k_snap[] = {"name", "snapshot", NULL};
static const char *const k_snap_create[] = {"name", "snapshot", "description", NULL};
static const char *const k_snap_revert[] = {"name", "snapshot", "start", NULL};
static const char *const k_snap_delete[] = {"name", "snapshot", "children", NULL};
static const char *const k_log[] = {"name", "offset", "max", NULL};

static const char *const k_pool[] = {"pool", NULL};

/* vm.create.progress, vm.template.* (clone.c, template.c) */
static int r_create_progress(struct kc_agent *a, struct op_args *oa, json_t **ret,
			     struct kc_error *err)
{
	return kc_agent_vm_create_progress(a, oa->name, ret, err);
}

static int r_template_prepare(struct kc_agent *a, struct op_args *oa, json_t **ret,
			      struct kc_error *err)
{
	return kc_agent_template_prepare(a, oa->raw, ret, err);
}

static int r_template_read(struct kc_agent *a, struct op_args *oa, json_t **ret,
			   struct kc_error *err)
{
	return kc_agent_template_read(a, oa->raw, ret, err);
}

static int r_template_done(struct kc_agent *a, struct op_args *oa, json_t **ret,
			   struct kc_error *err)
{
	return kc_agent_template_done(a, oa->raw, ret, err);
}

/* net.* check their own args (gnet_agent.h). */
static int r_net_ensure(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_net_ensure(a, oa->raw, ret, err);
}

static int r_net_remove(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_net_remove(a, oa->raw, ret, err);
}

static int r_net_dhcp_host(struct kc_agent *a, struct op_args *oa, json_t **ret,
			   struct kc_error *err)
{
	return kc_agent_net_dhcp_host(a, oa->raw, ret, err);
}

/* host.firewall.* check their own args (hostfw.h). */
#define HOSTFW_OP(fn)                                                                              \
	static int r_##fn(struct kc_agent *a, struct op_args *oa, json_t **ret,                   \
			  struct kc_error *err)                                                    \
	{                                                                                          \
		return kc_##fn(oa->raw, ret, err);                                                 \
	}
HOSTFW_OP(hostfw_apply)
HOSTFW_OP(hostfw_confirm)
HOSTFW_OP(hostfw_peers)
HOSTFW_OP(hostfw_show)

/* Security groups (sg_nft.c). */
static int r_sg_apply(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_sg_apply(a, oa->raw, ret, err);
}

static int r_sg_show(struct kc_agent *a, struct op_args *oa, json_t **ret, struct kc_error *err)
{
	return kc_agent_sg_show(a, ret, err);
}

/* Host networks (hostnet.c checks its args). */
static int r_hostnet_apply(struct kc_agent *a, struct op_args *oa, json_t **ret,
			   struct kc_error *err)
{
	return kc_agent_hostnet_apply(a, oa->raw, ret, err);
}

static int r_hostnet_confirm(struct kc_agent *a, struct op_args *oa, json_t **ret,
			     struct kc_error *err)
{
	return kc_agent_hostnet_confirm(a, oa->raw, ret, err);
}

static int r_hostnet_show(struct kc_agent *a, struct op_args *oa, json_t **ret,
			  struct kc_error *err)
{
	return kc_agent_hostnet_show(a, ret, err);
}

static const struct op ops[] = {
	{"host.facts", k_none, v_none, r_facts},
	{"host.check", k_check, v_check, r_check},
	{"host.stats", k_none, v_none, r_stats},
	{"vm.create", NULL, v_create, r_create},
	{"vm.create.progress", k_name, need_name, r_create_progress},
	{"vm.template.prepare", NULL, v_raw, r_template_prepare},
	{"vm.template.read", NULL, v_raw, r_template_read},
	{"vm.template.done", NULL, v_raw, r_template_done},
	{"vm.start", k_name, need_name, r_start},
	{"vm.shutdown", k_shutdown, v_shutdown, r_shutdown},
	{"vm.reboot", k_name, need_name, r_reboot},
	{"vm.destroy", k_name, need_name, r_destroy},
	{"vm.delete", k_delete, v_delete, r_delete},
	{"vm.list", k_none, v_none, r_list},
	{"vm.show", k_name, need_name, r_show},
	{"vm.log", k_log, v_log, r_log},
	{"vm.stats", k_none, v_none, r_stats}, /* the same, by the name of agent.h */
	{"image.ensure", NULL, v_raw, r_image_ensure},
	{"image.put", NULL, v_raw, r_image_put},
	{"image.commit", NULL, v_raw, r_image_commit},
	{"image.forget", NULL, v_raw, r_image_forget},
	{"vm.snapshot.create", k_snap_create, v_snap_create, r_snap_create},
	{"vm.snapshot.list", k_name, need_name, r_snap_list},
	{"vm.snapshot.show", k_snap, v_snap, r_snap_show},
	{"vm.snapshot.revert", k_snap_revert, v_snap_revert, r_snap_revert},
	{"vm.snapshot.delete", k_snap_delete, v_snap_delete, r_snap_delete},
	{"pool.ensure", k_pool, v_pool, r_pool_ensure},
	{"pool.info", k_pool, v_pool, r_pool_info},
	{"pool.volumes", k_pool, v_pool, r_pool_volumes},
	{"pool.remove", k_pool, v_pool, r_pool_remove},
	{"pool.prune", NULL, v_raw, r_pool_prune},
	{"vol.create", NULL, v_raw, r_vol_create},
	{"vol.delete", NULL, v_raw, r_vol_delete},
	{"vol.resize", NULL, v_raw, r_vol_resize},
	{"vol.attach", NULL, v_raw, r_vol_attach},
	{"vol.detach", NULL, v_raw, r_vol_detach},
	{"vol.upload", NULL, v_raw, r_vol_upload},
	{"vol.download", NULL, v_raw, r_vol_download},
	{"net.ensure", NULL, v_raw, r_net_ensure},
	{"net.remove", NULL, v_raw, r_net_remove},
	{"net.dhcp_host", NULL, v_raw, r_net_dhcp_host},
	{"sg.apply", NULL, v_raw, r_sg_apply}, /* sg_nft.c checks its args */
	{"sg.show", k_none, v_none, r_sg_show},
	{"host.firewall.apply", NULL, v_raw, r_hostfw_apply},
	{"host.firewall.confirm", NULL, v_raw, r_hostfw_confirm},
	{"host.firewall.peers", NULL, v_raw, r_hostfw_peers},
	{"host.firewall.show", NULL, v_raw, r_hostfw_show},
	{"host.net.apply", NULL, v_raw, r_hostnet_apply},
	{"host.net.confirm", NULL, v_raw, r_hostnet_confirm},
	{"host.net.show", k_none, v_none, r_hostnet_show},
};

static const struct op *op_find(const char *name)
{
	for (size_t i = 0; name && i < KC_ARRAY_SIZE(ops); i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}

bool kc_agent_op_exists(const char *op)
{
	return op_find(op) != NULL;
}

int kc_agent_dispatch(struct kc_agent *a, const char *op, const json_t *args, json_t **ret_result,
		      struct kc_error *err)
{
	const struct op *row = op_find(op);
	if (!row) {
		/* The name is not echoed whole: it came from the network. */
		return kc_error_set(err, KC_ERR_INVALID, "unknown operation \"%.*s\"",
				    KC_OP_NAME_MAX, op ? op : "");
	}
	_cleanup_json_ json_t *empty = NULL;
	if (!args)
		args = empty = json_object();
	if (!json_is_object(args))
		return kc_error_set(err, KC_ERR_INVALID, "%s: args must be an object", op);
	char what[KC_OP_NAME_MAX + 16];
	snprintf(what, sizeof(what), "%s args", row->name);
	struct op_args oa = {0};
	json_t *result = NULL;
	int r = -1;
	if ((!row->keys || kc_json_check_keys(args, row->keys, what, err) == 0) &&
	    row->validate(args, &oa, err) == 0)
		r = row->run(a, &oa, &result, err);
	kc_vm_request_clear(&oa.req);
	kc_pool_def_clear(&oa.pool);
	if (r < 0)
		return -1;
	*ret_result = result;
	return 0;
}
