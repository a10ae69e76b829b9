/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.h - the REST API (docs/api.md): one ulfius catch-all endpoint whose
 * dispatcher does, in order, route lookup, authentication, 404/405, body
 * size and path-name checks, then calls the route's handler, and logs one
 * line per request.  Handlers answer through http_util.h.
 */
#pragma once

#include <stdbool.h>
#include <ulfius.h>

#include "auth.h"
#include "server.h"

/* What a handler gets: the request, the response to fill, the server and
 * the route's path parameter (already validated with kc_name_validate). */
struct kc_call {
	const struct _u_request *req;
	struct _u_response *resp;
	struct kc_server *srv;
	const char *name;
	struct kc_principal who; /* the caller (authz.h); empty on public routes */
};

/* Registers the dispatcher on an initialised ulfius instance. */
int kc_api_register(struct _u_instance *inst, struct kc_server *srv, struct kc_error *err);

/* Actions are only for VMs kvmcloud created: KC_ERR_NOT_FOUND if the VM
 * exists nowhere, KC_ERR_FORBIDDEN for a libvirt domain without a record.
 * *ret_row (if not NULL) gets the record. */
int kc_api_require_managed(struct kc_server *srv, const char *name, json_t **ret_row,
			   struct kc_error *err);

/* Handlers (api_hosts.c, api_vms.c, api_console.c, openapi.c): each fills
 * c->resp and returns 0, or returns -1 with err set and the dispatcher
 * answers with the error body. */
int kc_api_openapi(struct kc_call *c, struct kc_error *err);
int kc_api_hosts_list(struct kc_call *c, struct kc_error *err);
int kc_api_host_show(struct kc_call *c, struct kc_error *err);
int kc_api_host_check(struct kc_call *c, struct kc_error *err);
int kc_api_vms_list(struct kc_call *c, struct kc_error *err);
int kc_api_vm_create(struct kc_call *c, struct kc_error *err);
int kc_api_vm_show(struct kc_call *c, struct kc_error *err);
int kc_api_vm_delete(struct kc_call *c, struct kc_error *err);
int kc_api_vm_start(struct kc_call *c, struct kc_error *err);
int kc_api_vm_shutdown(struct kc_call *c, struct kc_error *err);
int kc_api_vm_reboot(struct kc_call *c, struct kc_error *err);
int kc_api_vm_destroy(struct kc_call *c, struct kc_error *err);
int kc_api_vm_log(struct kc_call *c, struct kc_error *err);
int kc_api_vm_console(struct kc_call *c, struct kc_error *err);
/* api_snapshots.c: /api/v1/vms/{name}/snapshots[/{snap}[/revert]]. */
int kc_api_snapshots_list(struct kc_call *c, struct kc_error *err);
int kc_api_snapshot_create(struct kc_call *c, struct kc_error *err);
int kc_api_snapshot_show(struct kc_call *c, struct kc_error *err);
int kc_api_snapshot_delete(struct kc_call *c, struct kc_error *err);
int kc_api_snapshot_revert(struct kc_call *c, struct kc_error *err);
/* api_sched.c (admin): maintenance mode, importing an unmanaged domain. */
int kc_api_host_maintenance(struct kc_call *c, struct kc_error *err);
int kc_api_vm_import(struct kc_call *c, struct kc_error *err);
/* api_groups.c: affinity groups (scoped to the caller's own for users). */
int kc_api_groups_list(struct kc_call *c, struct kc_error *err);
int kc_api_group_show(struct kc_call *c, struct kc_error *err);
int kc_api_group_delete(struct kc_call *c, struct kc_error *err);
/* api_join_token.c (admin): a new join token for a host that has not
 * connected yet. */
int kc_api_host_join_token(struct kc_call *c, struct kc_error *err);
/* api_users.c: users, tokens, sessions; api_audit.c: the audit log. */
int kc_api_users_list(struct kc_call *c, struct kc_error *err);
int kc_api_user_create(struct kc_call *c, struct kc_error *err);
int kc_api_user_show(struct kc_call *c, struct kc_error *err);
int kc_api_user_delete(struct kc_call *c, struct kc_error *err);
int kc_api_user_quota(struct kc_call *c, struct kc_error *err);
int kc_api_user_token_create(struct kc_call *c, struct kc_error *err);
int kc_api_tokens_list(struct kc_call *c, struct kc_error *err);
int kc_api_token_delete(struct kc_call *c, struct kc_error *err);
int kc_api_session_create(struct kc_call *c, struct kc_error *err);
int kc_api_audit_list(struct kc_call *c, struct kc_error *err);
/* api_pools.c (admin): storage pools (docs/storage.md, "Pools"). */
/* Guest networks (api_networks.c). */
int kc_api_networks_list(struct kc_call *c, struct kc_error *err);
int kc_api_network_create(struct kc_call *c, struct kc_error *err);
int kc_api_network_show(struct kc_call *c, struct kc_error *err);
int kc_api_network_delete(struct kc_call *c, struct kc_error *err);
int kc_api_network_addresses(struct kc_call *c, struct kc_error *err);
int kc_api_pools_list(struct kc_call *c, struct kc_error *err);
int kc_api_pool_create(struct kc_call *c, struct kc_error *err);
int kc_api_pool_show(struct kc_call *c, struct kc_error *err);
int kc_api_pool_delete(struct kc_call *c, struct kc_error *err);
/* The definition the agents get, from a pool row (checked again). */
struct kc_pool_def;
int kc_pool_row_def(const json_t *row, struct kc_pool_def *def, struct kc_error *err);
/* api_secgroups.c: security groups, their rules, a VM's groups. */
int kc_api_sgs_list(struct kc_call *c, struct kc_error *err);
int kc_api_sg_create(struct kc_call *c, struct kc_error *err);
int kc_api_sg_show(struct kc_call *c, struct kc_error *err);
int kc_api_sg_delete(struct kc_call *c, struct kc_error *err);
int kc_api_sg_rule_add(struct kc_call *c, struct kc_error *err);
int kc_api_sg_rule_delete(struct kc_call *c, struct kc_error *err);
int kc_api_vm_sg_show(struct kc_call *c, struct kc_error *err);
int kc_api_vm_sg_set(struct kc_call *c, struct kc_error *err);
