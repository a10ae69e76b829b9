/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster.h - the pieces of issue 3 that are not the agent link itself:
 * the cluster PKI at start-up (pki_init.c), VM placement (placement.c) and
 * the HTTP handlers for joining and for the inventory (api_join.c,
 * api_cluster.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "error.h"

struct kc_server;
struct kc_call;

/* Makes <data_dir>/pki (0700), the cluster CA on first start, and (at every
 * start, so that its names follow the options) the server certificate with
 * SANs: the host's names, localhost, 127.0.0.1, ::1, and each non-NULL,
 * non-wildcard entry of `extra` (IP addresses or DNS names).  *ret_dir is
 * the folder (malloc'd). */
int kc_pki_init(const char *data_dir, const char *const *extra, size_t n_extra, char **ret_dir,
		struct kc_error *err);

/* Placement (placement.c over scheduler.c; docs/api.md, "Placement").
 * kc_place_vm: the host the scheduler would choose now for a 1-vCPU VM
 * of no memory, or `requested` if it may take VMs; no record made. */
int kc_place_vm(struct kc_server *srv, const char *requested, char **ret_host,
		struct kc_error *err);
struct kc_db_vm;
/* Removes the placement keys ("zone", "cluster", "group") from a create
 * body before kc_vm_request_from_json() sees it. */
void kc_placement_strip(json_t *body);
/* Checks the placement keys of a create body (KC_ERR_INVALID). */
int kc_placement_check(const json_t *body, struct kc_error *err);
/* Chooses the host for `vm` from the placement keys of the create `body`
 * and `requested` (an admin's "host", may be NULL), and inserts its
 * `creating` record there in the same transaction (kc_sched_place_insert);
 * vm->host is ignored, *ret_host (malloc'd) is the choice.  No room is
 * KC_ERR_NO_CAPACITY naming why each host was rejected. */
int kc_place_and_record(struct kc_server *srv, const json_t *body, const char *requested,
			const struct kc_db_vm *vm, bool check_quota, char **ret_host,
			struct kc_error *err);

/* Handlers: GET /api/v1/ca and POST /api/v1/join (no bearer token). */
int kc_api_ca(struct kc_call *c, struct kc_error *err);
int kc_api_join(struct kc_call *c, struct kc_error *err);
/* Admin: hosts, zones, clusters. */
int kc_api_host_add(struct kc_call *c, struct kc_error *err);
int kc_api_host_remove(struct kc_call *c, struct kc_error *err);
int kc_api_zones_list(struct kc_call *c, struct kc_error *err);
int kc_api_zone_create(struct kc_call *c, struct kc_error *err);
int kc_api_zone_delete(struct kc_call *c, struct kc_error *err);
int kc_api_clusters_list(struct kc_call *c, struct kc_error *err);
int kc_api_cluster_create(struct kc_call *c, struct kc_error *err);
int kc_api_cluster_delete(struct kc_call *c, struct kc_error *err);

struct kc_server_opts;

/* The start-up part of kc_server_open() for issue 3, run once the data
 * folder exists: checks --tls, --agent-listen and --advertise, makes the
 * PKI (kc_pki_init) and decides on TLS for the API: --tls-cert/--tls-key
 * if given, else with --tls auto the PKI's server certificate whenever the
 * API listens beyond loopback or agents may join (the join URL is https).
 * *ret_cert / *ret_key: the PEM files to serve (malloc'd), NULL for plain
 * HTTP; srv->tls set accordingly. */
int kc_cluster_setup(struct kc_server *srv, const struct kc_server_opts *o, const char *listen,
		     bool loopback, char **ret_cert, char **ret_key, struct kc_error *err);
/* Starts the agent listener if enabled and prints its line on `out`. */
int kc_cluster_start(struct kc_server *srv, FILE *out, struct kc_error *err);
/* The cluster CA certificate (PEM, malloc'd), or NULL with err set. */
char *kc_cluster_ca_pem(struct kc_server *srv, struct kc_error *err);
/* Stops the agent listener and frees what kc_cluster_setup() made. */
void kc_cluster_stop(struct kc_server *srv);

/* Join tokens: 32 random bytes as 64 hex digits; the database keeps the
 * BLAKE2b-256 of the hex text, as for API tokens. */
#define KC_JOIN_TOKEN_HEX_LEN 64
void kc_join_token_hash(const char *token_hex, char out[65]);

/* api_join_token.c: a new token, its hash and its expiry (an hour). */
struct kc_join_token {
	char token[KC_JOIN_TOKEN_HEX_LEN + 1];
	char hash[65];
	char expires_at[21];
};
void kc_join_token_new(struct kc_join_token *t);
/* Overwrites the token's text (the hash and expiry stay). */
void kc_join_token_wipe(struct kc_join_token *t);
/* The answer that hands a token out: {"host","join_token","expires_at",
 * "ca_sha256","command"}, the command being the agent's join line. */
json_t *kc_join_token_answer(struct kc_server *srv, const char *host,
			     const struct kc_join_token *t, struct kc_error *err);
