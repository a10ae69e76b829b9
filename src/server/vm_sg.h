/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm_sg.h - a VM's security groups, shared by PUT /vms/{vm}/security-groups
 * (api_secgroups.c) and a VM create that names its groups (api_vms.c,
 * "security_groups" in the request): the names checked, the hosts a change
 * affects, and the groups set on a new VM before it first starts.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "db.h"
#include "error.h"
#include "secgroup.h"

struct kc_server;

/* Checks `list` (a JSON array) as a VM's groups: at most
 * KC_SG_GROUPS_PER_VM valid names, none twice, each existing and owned by
 * `user` unless `admin` (another's group is "not found", as on its own
 * routes).  names[] points into `list`. */
int kc_vm_sg_names(struct kc_db *db, const json_t *list, const char *user, bool admin,
		   const char *names[KC_SG_GROUPS_PER_VM], size_t *ret_n, struct kc_error *err);

/* The union of the hosts running a member of a group in `groups` (names)
 * or a VM whose rules name one as a remote group, plus `also` (may be
 * NULL).  NULL with err set on failure. */
json_t *kc_vm_sg_hosts(struct kc_db *db, const json_t *groups, const char *also,
		       struct kc_error *err);

/* A new VM's groups (`groups`, checked by kc_vm_sg_names at the API):
 * recorded, and every affected host's ruleset pushed, while the VM is
 * still stopped, so that it starts behind its rules and an Open vSwitch
 * NIC is moved to the hybrid plug first (docs/networking.md). */
int kc_vm_sg_attach_new(struct kc_server *srv, const char *vm, const char *host,
			const json_t *groups, struct kc_error *err);

/* After VM `vm` (on `host`, may be NULL) was deleted with `groups` (its
 * group names, read before): the hosts whose rules named it get their
 * rulesets again, so that its address leaves remote-group rules before it
 * is handed to another VM.  Never fails (a host that is down converges at
 * its next hello). */
void kc_vm_sg_after_delete(struct kc_server *srv, const char *host, const json_t *groups);
