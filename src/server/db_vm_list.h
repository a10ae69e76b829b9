/* SPDX-License-Identifier: Apache-2.0 */
/* db_vm_list.h - the VM list as the database knows it (GET /api/v1/vms). */
#pragma once

#include "db.h"

/* Every VM record by name, or only `owner`'s (NULL: all), in one query:
 * {"name","uuid","host","state","owner","vcpus","memory_mib","request",
 *  "created_at","updated_at","host_state"}, request parsed; host_state is
 * the hosts row's state (null if the host has no row). */
int kc_db_vm_list_view(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err);
