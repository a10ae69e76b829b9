/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_pools.h - the pools table (schema version 8; docs/storage.md,
 * "Pools").  The implicit pool "default" has no row.
 */
#pragma once

#include "db.h"

struct kc_pool_def;

/* Inserts a pool of scope host (host set, cluster NULL) or cluster
 * (cluster set, host NULL).  A taken name is KC_ERR_CONFLICT, an unknown
 * host or cluster KC_ERR_INVALID. */
int kc_db_pool_create(struct kc_db *db, const struct kc_pool_def *def, const char *host,
		      const char *cluster, struct kc_error *err);
/* {"name","type","scope","host","cluster","path","server","export","portal",
 *  "target","initiator","vg","overcommit_pct","created_at"}; KC_ERR_NOT_FOUND. */
int kc_db_pool_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* Every pool's row, by name. */
int kc_db_pool_list(struct kc_db *db, json_t **ret, struct kc_error *err);
int kc_db_pool_delete(struct kc_db *db, const char *name, struct kc_error *err);
/* The names of the hosts a pool row is on: its host, or its cluster's
 * hosts (by name); an array of strings. */
int kc_db_pool_hosts(struct kc_db *db, const json_t *row, json_t **ret, struct kc_error *err);

/* (api_pools.c, for the volume part) The pool `name`: its row (NULL for
 * "default"), its definition as the agents get it (clear with
 * kc_pool_def_clear) and the names of its hosts (every host for
 * "default": each has its own).  KC_ERR_NOT_FOUND for an unknown pool. */
struct kc_server;
int kc_pool_load(struct kc_server *srv, const char *name, json_t **ret_row, struct kc_pool_def *def,
		 json_t **ret_hosts, struct kc_error *err);
