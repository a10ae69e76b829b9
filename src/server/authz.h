/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authz.h - who may do what, decided in one place (docs/api.md, "Roles").
 * Admins may do everything.  A user sees and acts on only their own VMs
 * and affinity groups (another's is "not found", so that its existence
 * does not leak), may create VMs within their quotas, manages their own
 * tokens, and may not
 * touch hosts, zones, clusters, users, the audit log or metrics.
 */
#pragma once

#include <stdbool.h>

#include "api.h"

/* Checks a matched route (method, pattern as in api.c's table, its
 * validated name parameter or NULL) for c->who: KC_ERR_FORBIDDEN, or
 * KC_ERR_NOT_FOUND for someone else's VM.  Routes it does not know are
 * for admins only. */
int kc_authz_route(struct kc_call *c, const char *method, const char *pattern, const char *name,
		   struct kc_error *err);

bool kc_authz_is_admin(const struct kc_call *c);

/* Whose VMs a list shows: NULL (everyone's, and domains kvmcloud did not
 * create) for an admin, else the caller's name. */
const char *kc_authz_vm_owner(const struct kc_call *c);

/* The caller is `user` or an admin; else KC_ERR_FORBIDDEN. */
int kc_authz_self_or_admin(const struct kc_call *c, const char *user, struct kc_error *err);
