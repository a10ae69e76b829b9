/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_schema.c - the versioned migrations, one list for both backends.
 *
 * Entry i brings the schema from version i to i + 1.  Append only; never
 * edit a released entry.  Each entry has its SQLite text and, where the
 * dialects differ, its PostgreSQL text; the differences are only these:
 *   - auto-increment ids: INTEGER PRIMARY KEY AUTOINCREMENT / BIGSERIAL
 *     (only for append-only logs; ids we hand out are our own UUIDs);
 *   - JSON columns are TEXT; SQLite checks them with json_valid(), which
 *     PostgreSQL lacks (our code writes them with json_dumps anyway).
 * An entry may also have a C step, run in the same transaction after its
 * SQL, for data the SQL cannot compute portably.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "db.h"

/* clang-format off */
#define SQ_AUTO_ID "INTEGER PRIMARY KEY AUTOINCREMENT"
#define PG_AUTO_ID "BIGSERIAL PRIMARY KEY"
#define SQ_JSON(col) " CHECK (" col " IS NULL OR json_valid(" col "))"
#define PG_JSON(col) ""

/* Version 1: the first schema (hosts, vms, tokens). */
#define V1(AUTO_ID, JSON) \
	"CREATE TABLE hosts (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  uuid TEXT," \
	"  facts TEXT" JSON("facts") "," \
	"  accel TEXT," \
	"  accel_reason TEXT," \
	"  check_result TEXT" JSON("check_result") "," \
	"  checked_at TEXT," \
	"  updated_at TEXT NOT NULL" \
	");" \
	"CREATE TABLE vms (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  uuid TEXT," \
	"  host TEXT NOT NULL REFERENCES hosts(name) ON UPDATE CASCADE," \
	"  state TEXT NOT NULL," \
	"  request TEXT NOT NULL" JSON("request") "," \
	"  created_at TEXT NOT NULL," \
	"  updated_at TEXT NOT NULL" \
	");" \
	"CREATE TABLE tokens (" \
	"  id " AUTO_ID "," \
	"  name TEXT NOT NULL," \
	"  hash TEXT NOT NULL UNIQUE," \
	"  created_at TEXT NOT NULL" \
	");"

/* Version 3: issue 3 - users, roles, quotas, audit, jobs, inventory. */
#define V3(AUTO_ID, JSON) \
	"CREATE TABLE users (" \
	"  id TEXT PRIMARY KEY NOT NULL," \
	"  name TEXT NOT NULL UNIQUE," \
	"  role TEXT NOT NULL CHECK (role IN ('admin', 'user'))," \
	"  password_hash TEXT," \
	"  max_vms BIGINT," \
	"  max_vcpus BIGINT," \
	"  max_memory_mib BIGINT," \
	"  max_disk_gib BIGINT," \
	"  created_at TEXT NOT NULL," \
	"  updated_at TEXT NOT NULL" \
	");" \
	"ALTER TABLE tokens ADD COLUMN user_id TEXT REFERENCES users(id) ON DELETE CASCADE;" \
	"ALTER TABLE tokens ADD COLUMN expires_at TEXT;" \
	"ALTER TABLE tokens ADD COLUMN last_used_at TEXT;" \
	"CREATE INDEX tokens_user ON tokens(user_id);" \
	"CREATE TABLE zones (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  created_at TEXT NOT NULL" \
	");" \
	"CREATE TABLE clusters (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  zone TEXT NOT NULL REFERENCES zones(name) ON UPDATE CASCADE," \
	"  cpu_model TEXT," \
	"  cpu_signature TEXT" JSON("cpu_signature") "," \
	"  created_at TEXT NOT NULL" \
	");" \
	"ALTER TABLE hosts ADD COLUMN zone TEXT REFERENCES zones(name) ON UPDATE CASCADE;" \
	"ALTER TABLE hosts ADD COLUMN cluster TEXT REFERENCES clusters(name) ON UPDATE CASCADE;" \
	"ALTER TABLE hosts ADD COLUMN state TEXT NOT NULL DEFAULT 'Up' CHECK (state IN " \
	"  ('Pending', 'Up', 'Disconnected', 'Down', 'Maintenance'));" \
	"ALTER TABLE hosts ADD COLUMN cert_serial TEXT;" \
	"ALTER TABLE hosts ADD COLUMN last_seen_at TEXT;" \
	"CREATE UNIQUE INDEX hosts_cert_serial ON hosts(cert_serial);" \
	"CREATE TABLE join_tokens (" \
	"  hash TEXT PRIMARY KEY NOT NULL," \
	"  host TEXT NOT NULL REFERENCES hosts(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  created_at TEXT NOT NULL," \
	"  expires_at TEXT NOT NULL," \
	"  used_at TEXT" \
	");" \
	"CREATE TABLE revoked_certs (" \
	"  serial TEXT PRIMARY KEY NOT NULL," \
	"  host TEXT," \
	"  revoked_at TEXT NOT NULL" \
	");" \
	"ALTER TABLE vms ADD COLUMN owner TEXT REFERENCES users(name) ON UPDATE CASCADE;" \
	"ALTER TABLE vms ADD COLUMN vcpus BIGINT NOT NULL DEFAULT 0;" \
	"ALTER TABLE vms ADD COLUMN memory_mib BIGINT NOT NULL DEFAULT 0;" \
	"ALTER TABLE vms ADD COLUMN disk_gib BIGINT NOT NULL DEFAULT 0;" \
	"CREATE INDEX vms_owner ON vms(owner);" \
	"CREATE TABLE audit_log (" \
	"  id " AUTO_ID "," \
	"  at TEXT NOT NULL," \
	"  \"user\" TEXT NOT NULL," \
	"  action TEXT NOT NULL," \
	"  target TEXT," \
	"  result TEXT NOT NULL CHECK (result IN ('ok', 'error'))," \
	"  detail TEXT" JSON("detail") \
	");" \
	"CREATE INDEX audit_log_user ON audit_log(\"user\", id);" \
	"CREATE INDEX audit_log_at ON audit_log(at);" \
	"CREATE TABLE jobs (" \
	"  id TEXT PRIMARY KEY NOT NULL," \
	"  kind TEXT NOT NULL," \
	"  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN " \
	"    ('queued', 'running', 'succeeded', 'failed'))," \
	"  progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100)," \
	"  target TEXT," \
	"  request TEXT" JSON("request") "," \
	"  result TEXT" JSON("result") "," \
	"  error TEXT" JSON("error") "," \
	"  owner TEXT NOT NULL REFERENCES users(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  idempotency_key TEXT," \
	"  worker TEXT," \
	"  created_at TEXT NOT NULL," \
	"  updated_at TEXT NOT NULL" \
	");" \
	"CREATE UNIQUE INDEX jobs_idempotency ON jobs(owner, idempotency_key);" \
	"CREATE INDEX jobs_state ON jobs(state, created_at);"
/* Version 4: several servers on one database (docs/server.md "High
 * availability"): the servers and their agent endpoints, shared secrets
 * (the cluster CA), and which server holds each host's link. */
#define V4 \
	"CREATE TABLE servers (" \
	"  agent_endpoint TEXT PRIMARY KEY NOT NULL," \
	"  api_url TEXT," \
	"  started_at TEXT NOT NULL," \
	"  last_seen_at TEXT NOT NULL" \
	");" \
	"CREATE TABLE cluster_secrets (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  value TEXT NOT NULL," \
	"  created_at TEXT NOT NULL" \
	");" \
	"ALTER TABLE hosts ADD COLUMN connected_to TEXT;"

/* Version 5: host flags (JSON array of strings: cpu_mismatch, unmanaged_vms)
 * and affinity / anti-affinity groups of VMs. */
#define V5_SCHED(JSON) \
	"ALTER TABLE hosts ADD COLUMN flags TEXT" JSON("flags") ";" \
	"CREATE TABLE vm_groups (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  policy TEXT NOT NULL CHECK (policy IN ('affinity', 'anti-affinity'))," \
	"  owner TEXT REFERENCES users(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  created_at TEXT NOT NULL" \
	");" \
	"ALTER TABLE vms ADD COLUMN vm_group TEXT REFERENCES vm_groups(name) ON UPDATE CASCADE;" \
	"CREATE INDEX vms_group ON vms(vm_group);"
/* Version 6: each server's peer certificate serial (peerlink.c), so that
 * a server accepts another's forwarding connection by its certificate. */
#define V6_PEERS \
	"ALTER TABLE servers ADD COLUMN cert_serial TEXT;"
/* Version 7: each server's job worker name (jobs.h), so that a live server
 * can settle the running jobs of one that died for good (jobs_sweep.c). */
#define V7_WORKER \
	"ALTER TABLE servers ADD COLUMN worker TEXT;"
/* Version 8 (issue 4, pools): storage pools beside each host's implicit
 * "default" pool (db_pools.c, docs/storage.md "Pools").  A pool belongs to
 * one host (scope host) or to every host of a cluster (scope cluster);
 * only the source fields of its type are set.  overcommit_pct: 100 = 1.0. */
#define V8_POOLS \
	"CREATE TABLE pools (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  type TEXT NOT NULL CHECK (type IN ('dir', 'mountpoint', 'nfs', 'iscsi', 'logical'))," \
	"  scope TEXT NOT NULL CHECK (scope IN ('host', 'cluster'))," \
	"  host TEXT REFERENCES hosts(name) ON UPDATE CASCADE," \
	"  cluster TEXT REFERENCES clusters(name) ON UPDATE CASCADE," \
	"  path TEXT," \
	"  server TEXT," \
	"  export TEXT," \
	"  portal TEXT," \
	"  target TEXT," \
	"  initiator TEXT," \
	"  vg TEXT," \
	"  overcommit_pct INTEGER NOT NULL DEFAULT 100 CHECK (overcommit_pct BETWEEN 100 AND 1000)," \
	"  created_at TEXT NOT NULL," \
	"  CHECK ((scope = 'host' AND host IS NOT NULL AND cluster IS NULL) OR " \
	"         (scope = 'cluster' AND cluster IS NOT NULL AND host IS NULL))" \
	");" \
	"CREATE INDEX pools_host ON pools(host);" \
	"CREATE INDEX pools_cluster ON pools(cluster);"
/* Version 9 (issue 4, image library): templates and ISOs in the server's
 * store (db_images.c, image_store.c). */
#define V9_IMAGES \
	"CREATE TABLE images (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  kind TEXT NOT NULL CHECK (kind IN ('template', 'iso'))," \
	"  format TEXT NOT NULL CHECK (format IN ('qcow2', 'raw', 'iso'))," \
	"  os_type TEXT," \
	"  size_bytes BIGINT," \
	"  virtual_size_bytes BIGINT," \
	"  sha256 TEXT," \
	"  source TEXT NOT NULL," \
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'downloading', 'ready', 'error'))," \
	"  error TEXT," \
	"  owner TEXT REFERENCES users(name) ON UPDATE CASCADE ON DELETE SET NULL," \
	"  created_at TEXT NOT NULL," \
	"  updated_at TEXT NOT NULL" \
	");" \
	"CREATE INDEX images_state ON images(state);"
/* Version 10 (issue 4, volumes): data volumes in pools, hot-plugged into
 * VMs (db_volumes.c, docs/storage.md "Volumes").  pool names a pools row
 * or "default" (each host's own pool, no row); host is the host whose
 * pool holds it (for a cluster's shared pool, the one that made it: any
 * host of the cluster reaches it).  attached_to has no foreign key: a VM
 * deleted under a volume is read as detached (api_volumes.c).  An upload
 * under way counts received_bytes of upload_bytes. */
#define V10_VOLUMES \
	"CREATE TABLE volumes (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  pool TEXT NOT NULL," \
	"  host TEXT REFERENCES hosts(name) ON UPDATE CASCADE," \
	"  format TEXT NOT NULL CHECK (format IN ('qcow2', 'raw'))," \
	"  capacity_bytes BIGINT NOT NULL CHECK (capacity_bytes > 0)," \
	"  attached_to TEXT," \
	"  target TEXT," \
	"  owner TEXT REFERENCES users(name) ON UPDATE CASCADE," \
	"  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'uploading', 'attaching', " \
	"'detaching', 'deleting'))," \
	"  upload_bytes BIGINT," \
	"  received_bytes BIGINT," \
	"  created_at TEXT NOT NULL," \
	"  CHECK ((attached_to IS NULL) = (target IS NULL))" \
	");" \
	"CREATE INDEX volumes_owner ON volumes(owner);" \
	"CREATE INDEX volumes_attached ON volumes(attached_to);"
/* Version 11 (issue 5, host networks): the declaration an admin applied
 * to a host (db_hostnet.c, docs/networking.md "Host networks").  state is
 * pending until the agent confirms, confirmed once the server reached the
 * agent after the change, rolled_back when the agent restored what was
 * there (the confirm timer ran out). */
#define V11_HOST_NETWORKS(JSON) \
	"CREATE TABLE host_networks (" \
	"  host TEXT PRIMARY KEY NOT NULL REFERENCES hosts(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  declaration TEXT NOT NULL" JSON("declaration") "," \
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'rolled_back', 'failed'))," \
	"  pending_id TEXT," \
	"  error TEXT," \
	"  applied_at TEXT NOT NULL" \
	");"
/* Version 12 (issue 5, guest networks; db_networks.c, ipam.c): the
 * networks an admin declares, the addresses (MAC unique in the cluster,
 * IP unique per network) VM NICs hold, and the hosts a network has been
 * ensured on (with the host's VXLAN endpoint address: the peer list). */
#define V12_NETWORKS(JSON) \
	"CREATE TABLE networks (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  num INTEGER NOT NULL UNIQUE," \
	"  kind TEXT NOT NULL CHECK (kind IN ('nat', 'isolated', 'bridged', 'vlan', 'vxlan'))," \
	"  def TEXT NOT NULL" JSON("def") "," \
	"  vni INTEGER UNIQUE," \
	"  owner TEXT REFERENCES users(name) ON UPDATE CASCADE ON DELETE SET NULL," \
	"  created_at TEXT NOT NULL" \
	");" \
	"CREATE TABLE addresses (" \
	"  network TEXT NOT NULL REFERENCES networks(name)," \
	"  ip TEXT," \
	"  mac TEXT NOT NULL UNIQUE," \
	"  vm TEXT NOT NULL REFERENCES vms(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  nic INTEGER NOT NULL," \
	"  created_at TEXT NOT NULL," \
	"  UNIQUE (network, ip)," \
	"  UNIQUE (vm, nic)" \
	");" \
	"CREATE INDEX addresses_vm ON addresses(vm);" \
	"CREATE TABLE network_hosts (" \
	"  network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE," \
	"  host TEXT NOT NULL REFERENCES hosts(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  local_ip TEXT," \
	"  updated_at TEXT NOT NULL," \
	"  PRIMARY KEY (network, host)" \
	");"
/* Version 13 (issue 5, security groups): groups, their rules (canonical
 * secgroup.h form: ports NULL for "every port", cidr NULL and remote_group
 * NULL for "any address") and which VMs have them (db_secgroups.c,
 * docs/networking.md "Security groups").  A VM's rows go with the VM; the
 * API refuses to delete a group in use or named as a remote group (the
 * cascades only serve a user's deletion). */
#define V13_SECGROUPS \
	"CREATE TABLE security_groups (" \
	"  name TEXT PRIMARY KEY NOT NULL," \
	"  description TEXT," \
	"  owner TEXT REFERENCES users(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  created_at TEXT NOT NULL" \
	");" \
	"CREATE TABLE sg_rules (" \
	"  id TEXT PRIMARY KEY NOT NULL," \
	"  sg TEXT NOT NULL REFERENCES security_groups(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  direction TEXT NOT NULL CHECK (direction IN ('in', 'out'))," \
	"  protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp', 'icmp', 'any'))," \
	"  port_min INTEGER CHECK (port_min BETWEEN 1 AND 65535)," \
	"  port_max INTEGER CHECK (port_max BETWEEN 1 AND 65535)," \
	"  cidr TEXT," \
	"  remote_group TEXT REFERENCES security_groups(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  created_at TEXT NOT NULL," \
	"  CHECK (cidr IS NULL OR remote_group IS NULL)" \
	");" \
	"CREATE INDEX sg_rules_sg ON sg_rules(sg);" \
	"CREATE INDEX sg_rules_remote ON sg_rules(remote_group);" \
	"CREATE TABLE vm_security_groups (" \
	"  vm TEXT NOT NULL REFERENCES vms(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  sg TEXT NOT NULL REFERENCES security_groups(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  PRIMARY KEY (vm, sg)" \
	");" \
	"CREATE INDEX vm_security_groups_sg ON vm_security_groups(sg);"
/* Version 14 (issue 5, host firewall): the policy an admin set for a
 * host (db_hostfw.c, docs/networking.md "Host firewall").  state is
 * pending while the server waits for the agent's confirmation,
 * confirmed when the link survived the change, rolled_back when it did
 * not (the agent restored the previous ruleset by itself). */
#define V14_HOST_FIREWALL(JSON) \
	"CREATE TABLE host_firewall (" \
	"  host TEXT PRIMARY KEY NOT NULL REFERENCES hosts(name) ON UPDATE CASCADE ON DELETE CASCADE," \
	"  policy TEXT NOT NULL" JSON("policy") "," \
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'rolled_back', 'failed'))," \
	"  error TEXT," \
	"  applied_at TEXT NOT NULL" \
	");"
/* Version 15 (issue 5, DHCP on vlan and vxlan networks): the address of
 * kvmcloud's DHCP server for a network on a host, allocated from the
 * network's pool with the VM that first needs it there (ipam.c) and never
 * handed to a NIC (db_networks.c, gnet_dhcp.h). */
#define V15_NETWORK_DHCP \
	"ALTER TABLE network_hosts ADD COLUMN dhcp_ip TEXT;" \
	"CREATE UNIQUE INDEX network_hosts_dhcp_ip ON network_hosts(network, dhcp_ip);"
/* Version 16 (issue 5, host firewall peers): the IP a host's agent link
 * comes from, as the server saw it at its last hello (agentlink.c); the
 * other hosts' firewalls take it as a cluster peer (hostfw_push.c). */
#define V16_HOST_ADDRESS "ALTER TABLE hosts ADD COLUMN address TEXT;"
/* clang-format on */

/* Version 3's data: the built-in admin user owns what exists already. */
static int v3_data(struct kc_db *tx, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	char id[37], now[21];
	size_t i;
	json_t *row;

	kc_db_uuid(id);
	kc_db_now(now);
	if (kc_db_exec(tx,
		       "INSERT INTO users (id, name, role, created_at, updated_at) "
		       "VALUES ($1, $2, 'admin', $3, $3)",
		       KC_DB_PARAMS(KC_DB_TEXT(id), KC_DB_TEXT(KC_DB_ADMIN_USER), KC_DB_TEXT(now)),
		       NULL, err) < 0 ||
	    kc_db_exec(tx, "UPDATE tokens SET user_id = $1 WHERE user_id IS NULL",
		       KC_DB_PARAMS(KC_DB_TEXT(id)), NULL, err) < 0 ||
	    kc_db_exec(tx, "UPDATE vms SET owner = $1 WHERE owner IS NULL",
		       KC_DB_PARAMS(KC_DB_TEXT(KC_DB_ADMIN_USER)), NULL, err) < 0)
		return -1;
	/* Quotas count sizes; older rows only have them in the request. */
	if (kc_db_query(tx, "SELECT name, request FROM vms", NULL, 0, &rows, err) < 0)
		return -1;
	kc_db_rows_parse_json(rows, (const char *const[]){"request", NULL});
	json_array_foreach(rows, i, row)
	{
		int64_t vcpus, mem, disk;
		kc_db_vm_sizes(json_object_get(row, "request"), &vcpus, &mem, &disk);
		if (kc_db_exec(tx,
			       "UPDATE vms SET vcpus = $2, memory_mib = $3, disk_gib = $4 "
			       "WHERE name = $1",
			       KC_DB_PARAMS(
				       KC_DB_TEXT(json_string_value(json_object_get(row, "name"))),
				       KC_DB_INT(vcpus), KC_DB_INT(mem), KC_DB_INT(disk)),
			       NULL, err) < 0)
			return -1;
	}
	return 0;
}

static const struct migration {
	const char *sqlite;
	const char *pg; /* NULL: the same text */
	int (*data)(struct kc_db *tx, struct kc_error *err);
} migrations[] = {
	{V1(SQ_AUTO_ID, SQ_JSON), V1(PG_AUTO_ID, PG_JSON), NULL},
	/* 2: list a host's VMs without a scan */
	{"CREATE INDEX vms_host ON vms(host);", NULL, NULL},
	{V3(SQ_AUTO_ID, SQ_JSON), V3(PG_AUTO_ID, PG_JSON), v3_data},
	/* 4: several servers on one database (ha.c) */
	{V4, NULL, NULL},
	/* 5: the scheduler - host flags, affinity groups (scheduler.c) */
	{V5_SCHED(SQ_JSON), V5_SCHED(PG_JSON), NULL},
	/* 6: servers forward host calls to each other (peerlink.c) */
	{V6_PEERS, NULL, NULL},
	/* 7: a dead server's running jobs are settled by another (jobs_sweep.c) */
	{V7_WORKER, NULL, NULL},
	/* 8: storage pools (db_pools.c) */
	{V8_POOLS, NULL, NULL},
	/* 9: the image library (db_images.c) */
	{V9_IMAGES, NULL, NULL},
	/* 10: volumes (db_volumes.c) */
	{V10_VOLUMES, NULL, NULL},
	/* 11: declared host networks (db_hostnet.c) */
	{V11_HOST_NETWORKS(SQ_JSON), V11_HOST_NETWORKS(PG_JSON), NULL},
	/* 12: guest networks and addresses (db_networks.c) */
	{V12_NETWORKS(SQ_JSON), V12_NETWORKS(PG_JSON), NULL},
	/* 13: security groups (db_secgroups.c) */
	{V13_SECGROUPS, NULL, NULL},
	/* 14: the host firewall (db_hostfw.c) */
	{V14_HOST_FIREWALL(SQ_JSON), V14_HOST_FIREWALL(PG_JSON), NULL},
	/* 15: DHCP servers of vlan and vxlan networks (ipam.c) */
	{V15_NETWORK_DHCP, NULL, NULL},
	/* 16: hosts' link addresses, for firewall peers (hostfw_push.c) */
	{V16_HOST_ADDRESS, NULL, NULL},
};

int kc_db_latest_version(void)
{
	return (int)KC_ARRAY_SIZE(migrations);
}

/* Reads the version; a database without the table is version 0. */
static int read_version(struct kc_db *db, int *ret, struct kc_error *err)
{
	int64_t v = 0;

	if (kc_db_query_int(db, "SELECT version FROM schema_version", NULL, 0, &v, err) < 0)
		return -1;
	*ret = (int)v;
	return 0;
}

int kc_db_schema_version(struct kc_db *db, int *ret, struct kc_error *err)
{
	return read_version(db, ret, err);
}

struct step {
	int target;
	bool done;
};

/* One step, in an exclusive transaction: whoever waited for the lock
 * reads the version the previous holder left and skips what it did. */
static int migrate_step(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct step *s = opaque;
	int version = 0;

	if (kc_db_exec(tx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
		       NULL, 0, NULL, err) < 0 ||
	    read_version(tx, &version, err) < 0)
		return -1;
	if (version > kc_db_latest_version())
		return kc_error_set(err, KC_ERR_INTERNAL,
				    "database schema version %d is newer than this kvmcloud-server "
				    "knows (%d); refusing to touch it",
				    version, kc_db_latest_version());
	if (version >= s->target) {
		s->done = true;
		return 0;
	}
	const struct migration *m = &migrations[version];
	const char *sql = tx->ops->dialect == KC_DB_POSTGRESQL && m->pg ? m->pg : m->sqlite;
	struct kc_error e = {0};
	if (kc_db_exec(tx, sql, NULL, 0, NULL, &e) < 0 || (m->data && m->data(tx, &e) < 0) ||
	    kc_db_exec(tx,
		       version == 0 ? "INSERT INTO schema_version (version) VALUES ($1)"
				    : "UPDATE schema_version SET version = $1",
		       KC_DB_PARAMS(KC_DB_INT(version + 1)), NULL, &e) < 0) {
		if (e.code == KC_ERR_UNAVAILABLE) {
			*err = e; /* retried by kc_db_tx */
			return -1;
		}
		return kc_error_set(err, KC_ERR_INTERNAL, "migration to version %d failed: %s",
				    version + 1, e.message);
	}
	return 0;
}

int kc_db_migrate(struct kc_db *db, int target, struct kc_error *err)
{
	struct step s = {.target = target < 0 ? kc_db_latest_version() : target};

	/* UUIDs and retry pauses come from libsodium; every open passes here. */
	if (sodium_init() < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "libsodium failed to initialise");

	if (s.target > kc_db_latest_version())
		return kc_error_set(err, KC_ERR_INTERNAL, "no schema version %d", s.target);
	/* One transaction per version: a failed step leaves the previous
	 * version intact rather than half a schema. */
	while (!s.done)
		if (kc_db_tx_flags(db, KC_DB_TX_EXCLUSIVE, migrate_step, &s, err) < 0)
			return -1;
	return 0;
}
