/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_groups.c - the affinity / anti-affinity groups: list, show, delete.
 * Groups are created by the VM create that first names one; authz.c lets
 * a user reach only their own (another's is "not found").
 */
#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "db_groups.h"
#include "http_util.h"

int kc_api_groups_list(struct kc_call *c, struct kc_error *err)
{
	json_t *rows = NULL;

	if (kc_db_group_list(c->srv->db, kc_authz_vm_owner(c), &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:o}", "groups", rows));
	return 0;
}

int kc_api_group_show(struct kc_call *c, struct kc_error *err)
{
	json_t *row = NULL;

	if (kc_db_group_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, row);
	return 0;
}

int kc_api_group_delete(struct kc_call *c, struct kc_error *err)
{
	if (kc_db_group_delete(c->srv->db, c->name, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:s}", "deleted", c->name));
	return 0;
}
