/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_inventory.h - zones, clusters, the hosts of a fleet (join tokens,
 * certificates, states) as issue 3 arranges them.
 */
#pragma once

#include "db.h"

/* A taken name is KC_ERR_CONFLICT. */
int kc_db_zone_create(struct kc_db *db, const char *name, struct kc_error *err);
/* [{"name","created_at"}] by name. */
int kc_db_zone_list(struct kc_db *db, json_t **ret, struct kc_error *err);
/* A zone with clusters or hosts is KC_ERR_INVALID; missing KC_ERR_NOT_FOUND. */
int kc_db_zone_delete(struct kc_db *db, const char *name, struct kc_error *err);

/* cpu_model and cpu_signature (JSON: what hosts of the cluster must share)
 * may be NULL.  An unknown zone is KC_ERR_INVALID, a taken name
 * KC_ERR_CONFLICT. */
int kc_db_cluster_create(struct kc_db *db, const char *name, const char *zone,
			 const char *cpu_model, const json_t *cpu_signature, struct kc_error *err);
/* {"name","zone","cpu_model","cpu_signature","created_at"}; KC_ERR_NOT_FOUND. */
int kc_db_cluster_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* By name; zone NULL: every zone's. */
int kc_db_cluster_list(struct kc_db *db, const char *zone, json_t **ret, struct kc_error *err);
/* Sets the CPU a cluster's hosts share (the first host that joins). */
int kc_db_cluster_set_cpu(struct kc_db *db, const char *name, const char *cpu_model,
			  const json_t *cpu_signature, struct kc_error *err);
int kc_db_cluster_delete(struct kc_db *db, const char *name, struct kc_error *err);

/* Adds a host that has not joined yet (state Pending); zone and cluster
 * may be NULL.  A taken name is KC_ERR_CONFLICT. */
int kc_db_host_add(struct kc_db *db, const char *name, const char *zone, const char *cluster,
		   struct kc_error *err);
/* state: Pending, Up, Disconnected, Down or Maintenance. */
int kc_db_host_set_state(struct kc_db *db, const char *name, const char *state,
			 struct kc_error *err);
/* A heartbeat: last_seen_at = now, and Disconnected/Down become Up
 * (Maintenance stays). */
int kc_db_host_seen(struct kc_db *db, const char *name, struct kc_error *err);
/* The IP literal the host's agent link comes from (address, NULL: unknown). */
int kc_db_host_set_address(struct kc_db *db, const char *name, const char *address,
			   struct kc_error *err);
/* [{name, address}] of every host whose address is known, by name. */
int kc_db_host_addresses(struct kc_db *db, json_t **ret, struct kc_error *err);
/* Hosts in state Up not seen since `before`: *ret the names marked
 * Disconnected (likewise Disconnected -> Down with to_down). */
int kc_db_host_mark_stale(struct kc_db *db, const char *before, bool to_down, json_t **ret,
			  struct kc_error *err);
/* Records the serial of the certificate the host was given. */
int kc_db_host_set_cert(struct kc_db *db, const char *name, const char *serial,
			struct kc_error *err);
/* Removes a host: its certificate serial revoked and its join tokens
 * dropped in the same transaction.  A host with VM records is
 * KC_ERR_CONFLICT. */
int kc_db_host_remove(struct kc_db *db, const char *name, struct kc_error *err);

/* Stores a join token's hash for `host`, valid until expires_at. */
int kc_db_join_token_create(struct kc_db *db, const char *hash_hex, const char *host,
			    const char *expires_at, struct kc_error *err);
/* Replaces the join tokens of a host that has not connected (state
 * Pending) with a new one: unused tokens are deleted and a certificate
 * issued by an earlier join is revoked (*ret_revoked_serial, malloc'd, or
 * NULL), all in one transaction.  KC_ERR_NOT_FOUND, or KC_ERR_CONFLICT for
 * a host in any other state. */
int kc_db_join_token_reissue(struct kc_db *db, const char *host, const char *hash_hex,
			     const char *expires_at, char **ret_revoked_serial,
			     struct kc_error *err);
/* Burns a join token: *ret_host (malloc'd) is its host.  Unknown, used or
 * expired is KC_ERR_UNAUTHORIZED, all with the same message.  Of two
 * racing uses, one wins. */
int kc_db_join_token_use(struct kc_db *db, const char *hash_hex, char **ret_host,
			 struct kc_error *err);

/* Revokes a certificate serial (again is not an error). */
int kc_db_cert_revoke(struct kc_db *db, const char *serial, const char *host, struct kc_error *err);
int kc_db_cert_is_revoked(struct kc_db *db, const char *serial, bool *ret, struct kc_error *err);
/* [{"serial","host","revoked_at"}] (for a CRL). */
int kc_db_cert_revoked_list(struct kc_db *db, json_t **ret, struct kc_error *err);
