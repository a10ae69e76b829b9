/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ha.h - several kvmcloud-servers on one PostgreSQL database (docs/server.md
 * "High availability"): the cluster CA shared through the database, the
 * `servers` table every server registers its agent endpoint in (with a
 * heartbeat), and which server holds each host's link (hosts.connected_to),
 * so that one server does not mark Disconnected a host that another serves
 * and can tell a client where the host is.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

struct kc_db;
struct kc_server;

/* A server not seen for this long is left out of the endpoints handed to
 * agents (its heartbeat is the agent link's staleness tick). */
#define KC_HA_SERVER_FRESH_S 60
/* The common name of every server's peer certificate: not a valid host
 * name (it has a space), so it can never pass for a host's. */
#define KC_HA_PEER_CN "kvmcloud server"

/* PostgreSQL only (SQLite has one server): under an exclusive transaction,
 * loads the cluster CA (ca.crt, ca.key) from the database into
 * <data_dir>/pki, or, if the database has none yet, stores this server's
 * (creating it first if it has none either).  A local CA that differs from
 * the database's is refused, naming the files to move away. */
int kc_ha_share_ca(struct kc_db *db, const char *data_dir, struct kc_error *err);

/* Records this server (srv->agent_endpoint) in `servers` with the serial
 * of a peer certificate made for it now (<pki_dir>/peer.key, peer.crt:
 * CN KC_HA_PEER_CN, client use only, signed by the cluster CA), the one it
 * presents when it forwards calls to another server (peerlink.h);
 * refreshes its last_seen_at (kc_ha_tick); removes it at a clean stop. */
int kc_ha_register(struct kc_server *srv, struct kc_error *err);
void kc_ha_tick(struct kc_server *srv);
void kc_ha_unregister(struct kc_server *srv);

/* The agent endpoints agents should know: this server's first, then every
 * other server seen in the last KC_HA_SERVER_FRESH_S seconds (new array). */
json_t *kc_ha_agent_endpoints(struct kc_server *srv);

/* Marks `host` as served by this server (at hello). */
int kc_ha_host_connected(struct kc_server *srv, const char *host, struct kc_error *err);
/* At the end of this server's link to `host`: Up -> Disconnected, but only
 * if no other server has taken the host over meanwhile. */
void kc_ha_host_disconnected(struct kc_server *srv, const char *host);
/* For a host this server has no link to: fills err (KC_ERR_UNAVAILABLE)
 * naming the server that serves it, if another live one does, and returns
 * -1; returns 0 (err untouched) otherwise. */
int kc_ha_elsewhere(struct kc_server *srv, const char *host, struct kc_error *err);

/* The agent endpoint of the other live server (seen in the last
 * KC_HA_SERVER_FRESH_S seconds) holding `host`'s link, malloc'd, or NULL
 * (none, this server, or the database cannot say). */
char *kc_ha_holder(struct kc_server *srv, const char *host);
/* The hosts held by other live servers, as an object name -> endpoint
 * (new reference; empty if the database cannot say). */
json_t *kc_ha_held_elsewhere(struct kc_server *srv);
/* Is the verified TLS peer (cn, serial from its certificate) another live
 * server of this database?  True only for CN KC_HA_PEER_CN and the serial
 * of a server row seen in the last KC_HA_SERVER_FRESH_S seconds; *ret_endpoint
 * (may be NULL) gets that row's endpoint, malloc'd. */
bool kc_ha_is_peer(struct kc_server *srv, const char *cn, const char *serial, char **ret_endpoint);
