/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"
#include "cmd_hostfw.h"
#include "cmd_hostnet.h"
#include "cmd_net.h"
#include "cmd_sg.h"

#include <string.h>

static const struct kc_optdef no_opts[] = {{NULL, 0}};
static const struct kc_optdef host_check_opts[] = {{"probe", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef host_add_opts[] = {
	{"zone", KC_OPT_VALUE}, {"cluster", KC_OPT_VALUE}, {NULL, 0}};
static const struct kc_optdef cluster_create_opts[] = {{"zone", KC_OPT_VALUE}, {NULL, 0}};
static const struct kc_optdef vm_create_opts[] = {
	{"host", KC_OPT_VALUE},
	{"image", KC_OPT_VALUE},     {"memory", KC_OPT_VALUE},
	{"vcpus", KC_OPT_VALUE},     {"disk-size", KC_OPT_VALUE},
	{"data-disk", KC_OPT_LIST},  {"iso", KC_OPT_VALUE},
	{"nic", KC_OPT_LIST},	     {"boot", KC_OPT_VALUE},
	{"graphics", KC_OPT_VALUE},  {"autostart", KC_OPT_FLAG},
	{"no-start", KC_OPT_FLAG},   {"hostname", KC_OPT_VALUE},
	{"user-data", KC_OPT_VALUE}, {"zone", KC_OPT_VALUE},
	{"cluster", KC_OPT_VALUE},   {"group", KC_OPT_VALUE},
	{"group-policy", KC_OPT_VALUE}, {"async", KC_OPT_FLAG},
	{"pool", KC_OPT_VALUE},      {"full-clone", KC_OPT_FLAG}, {"sg", KC_OPT_LIST},
	{NULL, 0},
};
static const struct kc_optdef vm_template_opts[] = {
	{"os-type", KC_OPT_VALUE}, {"async", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef vm_import_opts[] = {
	{"owner", KC_OPT_VALUE}, {"host", KC_OPT_VALUE}, {NULL, 0}};
static const struct kc_optdef vm_shutdown_opts[] = {
	{"timeout", KC_OPT_VALUE}, {"no-force", KC_OPT_FLAG}, {"async", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef user_create_opts[] = {
	{"role", KC_OPT_VALUE}, {"password-stdin", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef user_quota_opts[] = {{"vms", KC_OPT_VALUE},
						   {"vcpus", KC_OPT_VALUE},
						   {"memory", KC_OPT_VALUE},
						   {"disk", KC_OPT_VALUE},
						   {NULL, 0}};
static const struct kc_optdef token_create_opts[] = {
	{"user", KC_OPT_VALUE}, {"name", KC_OPT_VALUE}, {NULL, 0}};
static const struct kc_optdef audit_list_opts[] = {
	{"user", KC_OPT_VALUE}, {"limit", KC_OPT_VALUE}, {NULL, 0}};
static const struct kc_optdef vm_delete_opts[] = {
	{"keep-disks", KC_OPT_FLAG}, {"snapshots", KC_OPT_FLAG}, {"async", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef snap_create_opts[] = {
	{"description", KC_OPT_VALUE}, {"async", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef snap_revert_opts[] = {
	{"start", KC_OPT_FLAG}, {"async", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef snap_delete_opts[] = {{"children", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef vm_list_opts[] = {{"live", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef async_opts[] = {{"async", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef job_list_opts[] = {{"limit", KC_OPT_VALUE}, {NULL, 0}};
static const struct kc_optdef vm_log_opts[] = {{"tail", KC_OPT_VALUE},
					       {"follow", KC_OPT_FLAG},
					       {"until", KC_OPT_VALUE},
					       {"timeout", KC_OPT_VALUE},
					       {NULL, 0}};

static const struct kc_optdef net_create_opts[] = {
	{"kind", KC_OPT_VALUE},	   {"backend", KC_OPT_VALUE},  {"bridge", KC_OPT_VALUE},
	{"vlan", KC_OPT_VALUE},	   {"vni", KC_OPT_VALUE},      {"underlay", KC_OPT_VALUE},
	{"mtu", KC_OPT_VALUE},	   {"cidr", KC_OPT_VALUE},     {"gateway", KC_OPT_VALUE},
	{"dhcp-start", KC_OPT_VALUE}, {"dhcp-end", KC_OPT_VALUE}, {NULL, 0},
};
static const struct kc_optdef pool_prune_opts[] = {
	{"host", KC_OPT_VALUE}, {"dry-run", KC_OPT_FLAG}, {NULL, 0}};
static const struct kc_optdef pool_create_opts[] = {
	{"type", KC_OPT_VALUE},   {"host", KC_OPT_VALUE},      {"cluster", KC_OPT_VALUE},
	{"path", KC_OPT_VALUE},   {"server", KC_OPT_VALUE},    {"export", KC_OPT_VALUE},
	{"portal", KC_OPT_VALUE}, {"target", KC_OPT_VALUE},    {"initiator", KC_OPT_VALUE},
	{"vg", KC_OPT_VALUE},     {"overcommit", KC_OPT_VALUE}, {NULL, 0}};

static const struct kc_optdef image_register_opts[] = {
	{"format", KC_OPT_VALUE}, {"kind", KC_OPT_VALUE},  {"os-type", KC_OPT_VALUE},
	{"sha256", KC_OPT_VALUE}, {"async", KC_OPT_FLAG}, {NULL, 0}};

static const struct kc_optdef vol_create_opts[] = {{"size", KC_OPT_VALUE},
						   {"pool", KC_OPT_VALUE},
						   {"format", KC_OPT_VALUE},
						   {"host", KC_OPT_VALUE},
						   {NULL, 0}};

const struct kc_verb kc_verbs[] = {
	{"host", "list", kc_cmd_host_list, "host list", 0, 0, no_opts},
	{"host", "show", kc_cmd_host_show, "host show NAME", 1, 1, no_opts},
	{"host", "check", kc_cmd_host_check, "host check NAME [--probe]", 1, 1, host_check_opts},
	{"host", "add", kc_cmd_host_add, "host add NAME [--zone Z] [--cluster C]", 1, 1,
	 host_add_opts},
	{"host", "remove", kc_cmd_host_remove, "host remove NAME", 1, 1, no_opts},
	{"host", "token", kc_cmd_host_token, "host token NAME", 1, 1, no_opts},
	{"host", "maintenance", kc_cmd_host_maintenance, "host maintenance NAME on|off", 2, 2,
	 no_opts},
	/* cmd_hostfw.c */
	{"host", "fw-apply", kc_cmd_host_fw_apply, "host fw-apply NAME FILE [--confirm S]", 2, 2,
	 (const struct kc_optdef[]){{"confirm", KC_OPT_VALUE}, {NULL, 0}}},
	{"host", "fw-show", kc_cmd_host_fw_show, "host fw-show NAME", 1, 1, no_opts},
	/* cmd_hostnet.c */
	{"host", "net-apply", kc_cmd_host_net_apply,
	 "host net-apply NAME FILE [--confirm-timeout S] [--no-auto-confirm]", 2, 2,
	 (const struct kc_optdef[]){
		 {"confirm-timeout", KC_OPT_VALUE}, {"no-auto-confirm", KC_OPT_FLAG}, {NULL, 0}}},
	{"host", "net-show", kc_cmd_host_net_show, "host net-show NAME", 1, 1, no_opts},
	{"host", "net-confirm", kc_cmd_host_net_confirm, "host net-confirm NAME", 1, 1, no_opts},
	{"zone", "create", kc_cmd_zone_create, "zone create NAME", 1, 1, no_opts},
	{"zone", "list", kc_cmd_zone_list, "zone list", 0, 0, no_opts},
	{"zone", "delete", kc_cmd_zone_delete, "zone delete NAME", 1, 1, no_opts},
	{"cluster", "create", kc_cmd_cluster_create, "cluster create NAME --zone Z", 1, 1,
	 cluster_create_opts},
	{"cluster", "list", kc_cmd_cluster_list, "cluster list", 0, 0, no_opts},
	{"cluster", "delete", kc_cmd_cluster_delete, "cluster delete NAME", 1, 1, no_opts},
	/* cmd_groups.c */
	{"group", "list", kc_cmd_group_list, "group list", 0, 0, no_opts},
	{"group", "show", kc_cmd_group_show, "group show NAME", 1, 1, no_opts},
	{"group", "delete", kc_cmd_group_delete, "group delete NAME", 1, 1, no_opts},
	/* cmd_sg.c: security groups */
	{"sg", "create", kc_cmd_sg_create, "sg create NAME [--description TEXT]", 1, 1,
	 (const struct kc_optdef[]){{"description", KC_OPT_VALUE}, {NULL, 0}}},
	{"sg", "list", kc_cmd_sg_list, "sg list", 0, 0, no_opts},
	{"sg", "show", kc_cmd_sg_show, "sg show NAME", 1, 1, no_opts},
	{"sg", "delete", kc_cmd_sg_delete, "sg delete NAME", 1, 1, no_opts},
	{"sg", "rule-add", kc_cmd_sg_rule_add,
	 "sg rule-add NAME --in|--out [--proto tcp|udp|icmp|any] [--port N[-M]] "
	 "[--cidr CIDR | --remote-group G]",
	 1, 1,
	 (const struct kc_optdef[]){{"in", KC_OPT_FLAG},
				    {"out", KC_OPT_FLAG},
				    {"proto", KC_OPT_VALUE},
				    {"port", KC_OPT_VALUE},
				    {"cidr", KC_OPT_VALUE},
				    {"remote-group", KC_OPT_VALUE},
				    {NULL, 0}}},
	{"sg", "rule-delete", kc_cmd_sg_rule_delete, "sg rule-delete NAME RULE-ID", 2, 2, no_opts},
	{"vm", "set-sg", kc_cmd_vm_set_sg, "vm set-sg VM G1,G2|none", 2, 2, no_opts},
	{"vm", "list", kc_cmd_vm_list, "vm list [--live]", 0, 0, vm_list_opts},
	{"vm", "show", kc_cmd_vm_show, "vm show NAME", 1, 1, no_opts},
	{"vm", "create", kc_cmd_vm_create,
	 "vm create NAME --image IMG --memory MIB [--host H] [--vcpus N] [--disk-size GIB] "
	 "[--data-disk GIB]... [--iso NAME] [--nic NETWORK[,ip=A][,mac=MAC]|user|network=NAME|bridge=NAME[,mac=MAC]]... "
	 "[--sg GROUP]... "
	 "[--boot hd,cdrom,network] [--graphics none|vnc] [--autostart] [--no-start] "
	 "[--hostname H] [--user-data FILE] [--zone Z] [--cluster C] "
	 "[--group NAME [--group-policy affinity|anti-affinity]] [--pool POOL] [--full-clone] "
	 "[--async]",
	 1, 1, vm_create_opts},
	{"vm", "template", kc_cmd_vm_template, "vm template VM IMAGE [--os-type T] [--async]", 2, 2,
	 vm_template_opts},
	{"vm", "start", kc_cmd_vm_action, "vm start NAME [--async]", 1, 1, async_opts},
	{"vm", "shutdown", kc_cmd_vm_shutdown, "vm shutdown NAME [--timeout S] [--no-force] [--async]", 1, 1,
	 vm_shutdown_opts},
	{"vm", "reboot", kc_cmd_vm_action, "vm reboot NAME [--async]", 1, 1, async_opts},
	{"vm", "destroy", kc_cmd_vm_action, "vm destroy NAME [--async]", 1, 1, async_opts},
	{"vm", "delete", kc_cmd_vm_delete, "vm delete NAME [--keep-disks] [--snapshots] [--async]",
	 1, 1, vm_delete_opts},
	/* cmd_snapshot.c */
	{"snapshot", "create", kc_cmd_snapshot_create,
	 "snapshot create VM NAME [--description TEXT] [--async]", 2, 2, snap_create_opts},
	{"snapshot", "list", kc_cmd_snapshot_list, "snapshot list VM", 1, 1, no_opts},
	{"snapshot", "show", kc_cmd_snapshot_show, "snapshot show VM NAME", 2, 2, no_opts},
	{"snapshot", "revert", kc_cmd_snapshot_revert,
	 "snapshot revert VM NAME [--start] [--async]", 2, 2, snap_revert_opts},
	{"snapshot", "delete", kc_cmd_snapshot_delete, "snapshot delete VM NAME [--children]", 2, 2,
	 snap_delete_opts},
	/* cmd_job.c: the verbs above wait for their job unless --async. */
	{"job", "show", kc_cmd_job_show, "job show ID", 1, 1, no_opts},
	{"job", "list", kc_cmd_job_list, "job list [--limit N]", 0, 0, job_list_opts},
	{"vm", "import", kc_cmd_vm_import, "vm import NAME [--owner USER] [--host H]", 1, 1,
	 vm_import_opts},
	{"vm", "console", kc_cmd_vm_console, "vm console NAME", 1, 1, no_opts},
	{"vm", "log", kc_cmd_vm_log,
	 "vm log NAME [--tail BYTES] [--follow] [--until REGEX] [--timeout S]", 1, 1, vm_log_opts},
	/* cmd_image.c */
	{"image", "list", kc_cmd_image_list, "image list", 0, 0, no_opts},
	{"image", "show", kc_cmd_image_show, "image show NAME", 1, 1, no_opts},
	{"image", "register", kc_cmd_image_register,
	 "image register NAME URL --format qcow2|raw|iso --sha256 HEX [--kind template|iso] "
	 "[--os-type T] [--async]",
	 2, 2, image_register_opts},
	{"image", "upload", kc_cmd_image_upload,
	 "image upload NAME FILE --format qcow2|raw|iso [--kind template|iso] [--os-type T] "
	 "[--sha256 HEX]",
	 2, 2, image_register_opts},
	{"image", "delete", kc_cmd_image_delete, "image delete NAME", 1, 1, no_opts},
	/* cmd_users.c */
	{"user", "create", kc_cmd_user_create,
	 "user create NAME [--role admin|user] [--password-stdin]", 1, 1, user_create_opts},
	{"user", "list", kc_cmd_user_list, "user list", 0, 0, no_opts},
	{"user", "delete", kc_cmd_user_delete, "user delete NAME", 1, 1, no_opts},
	{"user", "quota", kc_cmd_user_quota,
	 "user quota NAME [--vms N] [--vcpus N] [--memory MIB] [--disk GIB] (N or unlimited)", 1,
	 1, user_quota_opts},
	{"token", "create", kc_cmd_token_create, "token create [--user NAME] [--name N]", 0, 0,
	 token_create_opts},
	{"token", "list", kc_cmd_token_list, "token list", 0, 0, no_opts},
	{"token", "revoke", kc_cmd_token_revoke, "token revoke ID", 1, 1, no_opts},
	{"audit", "list", kc_cmd_audit_list, "audit list [--user U] [--limit N]", 0, 0,
	 audit_list_opts},
	/* cmd_net.c (create/delete admin; also net-create, net-list, ...) */
	{"net", "list", kc_cmd_net_list, "net list", 0, 0, no_opts},
	{"net", "show", kc_cmd_net_show, "net show NAME", 1, 1, no_opts},
	{"net", "create", kc_cmd_net_create,
	 "net create NAME --kind nat|isolated|bridged|vlan|vxlan [--cidr A.B.C.D/P] "
	 "[--gateway A] [--dhcp-start A] [--dhcp-end A] [--bridge BR] [--backend linux|ovs] "
	 "[--vlan N] [--vni N --underlay IF] [--mtu N]",
	 1, 1, net_create_opts},
	{"net", "delete", kc_cmd_net_delete, "net delete NAME", 1, 1, no_opts},
	{"net", "addresses", kc_cmd_net_addresses, "net addresses NAME", 1, 1, no_opts},
	/* cmd_pool.c (admin) */
	{"pool", "list", kc_cmd_pool_list, "pool list", 0, 0, no_opts},
	{"pool", "show", kc_cmd_pool_show, "pool show NAME", 1, 1, no_opts},
	{"pool", "create", kc_cmd_pool_create,
	 "pool create NAME --type dir|mountpoint|nfs|iscsi|logical (--host H | --cluster C) "
	 "[--path DIR] [--server S --export DIR] [--portal H[:P] --target IQN --initiator IQN] "
	 "[--vg VG] [--overcommit R]",
	 1, 1, pool_create_opts},
	{"pool", "delete", kc_cmd_pool_delete, "pool delete NAME", 1, 1, no_opts},
	{"pool", "prune", kc_cmd_pool_prune, "pool prune NAME [--host H] [--dry-run]", 1, 1,
	 pool_prune_opts},
	/* cmd_vol.c */
	{"vol", "create", kc_cmd_vol_create,
	 "vol create NAME --size N[K|M|G|T] [--pool P] [--format qcow2|raw] [--host H]", 1, 1,
	 vol_create_opts},
	{"vol", "list", kc_cmd_vol_list, "vol list", 0, 0, no_opts},
	{"vol", "show", kc_cmd_vol_show, "vol show NAME", 1, 1, no_opts},
	{"vol", "resize", kc_cmd_vol_resize, "vol resize NAME SIZE (grow only: N[K|M|G|T])", 2, 2,
	 no_opts},
	{"vol", "delete", kc_cmd_vol_delete, "vol delete NAME", 1, 1, no_opts},
	{"vol", "attach", kc_cmd_vol_attach, "vol attach NAME VM", 2, 2, no_opts},
	{"vol", "detach", kc_cmd_vol_detach, "vol detach NAME", 1, 1, no_opts},
	{"vol", "upload", kc_cmd_vol_upload, "vol upload NAME FILE", 2, 2, no_opts},
	{"vol", "download", kc_cmd_vol_download, "vol download NAME FILE (a new file)", 2, 2,
	 no_opts},
	{NULL, NULL, NULL, NULL, 0, 0, NULL},
};

const struct kc_verb *kc_verb_find(const char *noun, const char *verb)
{
	for (const struct kc_verb *v = kc_verbs; v->noun; v++)
		if (strcmp(v->noun, noun) == 0 && strcmp(v->verb, verb) == 0)
			return v;
	return NULL;
}
