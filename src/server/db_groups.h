/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_groups.h - affinity / anti-affinity groups of VMs (table vm_groups).
 * A group is made by the first VM create that names it (scheduler.c) and
 * stays until deleted here, once it has no members.
 */
#pragma once

#include "db.h"

/* [{"name","policy","owner","created_at","member_count"}] by name; owner
 * NULL: everyone's. */
int kc_db_group_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err);
/* {"name","policy","owner","created_at","member_count","members":[{"name",
 * "host","state"}]}; KC_ERR_NOT_FOUND. */
int kc_db_group_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* Deletes an empty group: KC_ERR_NOT_FOUND, or KC_ERR_CONFLICT naming how
 * many VMs are still in it.  Checked and deleted in one transaction, so a
 * create joining the group at the same time either comes first (and the
 * delete is refused) or finds no group. */
int kc_db_group_delete(struct kc_db *db, const char *name, struct kc_error *err);
