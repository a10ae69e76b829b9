/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_secgroups.h - security groups, their rules and which VMs have them
 * (tables security_groups, sg_rules, vm_security_groups; schema v13).
 * Rules are stored in the canonical form of secgroup.h; limits (rules per
 * group, groups per VM) and duplicates are checked inside the writing
 * transaction, so concurrent requests cannot overrun them.
 */
#pragma once

#include "db.h"
#include "secgroup.h"

/* [{"name","description","owner","created_at","rule_count","vm_count"}] by
 * name; owner NULL: everyone's. */
int kc_db_sg_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err);
/* {"name","description","owner","created_at","rules":[{"id","direction",
 * "protocol","port_min"?,"port_max"?,"cidr"?,"remote_group"?}],"vms":[names]};
 * KC_ERR_NOT_FOUND. */
int kc_db_sg_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* A new empty group; KC_ERR_CONFLICT if the name exists. */
int kc_db_sg_create(struct kc_db *db, const char *name, const char *description, const char *owner,
		    struct kc_error *err);
/* Deletes a group no VM has and no other group's rule names as its remote
 * group (KC_ERR_CONFLICT naming which), with its rules. */
int kc_db_sg_delete(struct kc_db *db, const char *name, struct kc_error *err);
/* Adds a rule (its remote group must exist); KC_ERR_CONFLICT for a
 * duplicate, KC_ERR_INVALID past KC_SG_RULES_MAX.  ret_id: 37 bytes. */
int kc_db_sg_rule_add(struct kc_db *db, const char *sg, const struct kc_sg_rule *rule, char *ret_id,
		      struct kc_error *err);
/* KC_ERR_NOT_FOUND if the group has no such rule. */
int kc_db_sg_rule_delete(struct kc_db *db, const char *sg, const char *id, struct kc_error *err);
/* Replaces a VM's groups (at most KC_SG_GROUPS_PER_VM, each existing);
 * *ret_old gets the previous list (names). */
int kc_db_vm_sg_set(struct kc_db *db, const char *vm, const char *const *groups, size_t n,
		    json_t **ret_old, struct kc_error *err);
/* The VM's groups, by name. */
int kc_db_vm_sg_list(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err);
/* The hosts whose rulesets change when group `sg` changes: hosts of its
 * VMs and of the VMs of groups whose rules name it as remote group. */
int kc_db_sg_hosts(struct kc_db *db, const char *sg, json_t **ret, struct kc_error *err);
/* Every rule of a VM's groups: [{"sg","direction","protocol","port_min",
 * "port_max","cidr","remote_group"}]. */
int kc_db_vm_sg_rules(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err);
/* The VMs on `host` that have at least one group, by name. */
int kc_db_sg_host_vms(struct kc_db *db, const char *host, json_t **ret, struct kc_error *err);
/* The names of the VMs in group `sg`. */
int kc_db_sg_members(struct kc_db *db, const char *sg, json_t **ret, struct kc_error *err);
/* A stored rule row back as a struct (for rendering). */
int kc_db_sg_rule_from_row(const json_t *row, struct kc_sg_rule *ret, struct kc_error *err);
