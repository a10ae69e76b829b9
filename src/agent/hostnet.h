/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostnet.h - the agent's host.net.* operations (docs/protocol.md): apply
 * a host network declaration under confirm-or-roll-back, confirm it, show
 * declared / actual / differences.  Files in the agent's data.dir:
 * net-pending.json (the rollback marker, net_rollback.h) and
 * net-declared.json (the last confirmed declaration).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

struct kc_agent;
struct kc_hostnet;

/* args {"decl": declaration, "confirm_s"?: 5..3600 (60)} -> {"pending": id,
 * "confirm_s"}.  A failed apply is rolled back before the error returns. */
int kc_agent_hostnet_apply(struct kc_agent *a, const json_t *args, json_t **ret,
			   struct kc_error *err);
/* args {"pending"?: id} -> {"confirmed": id}; the declaration is stored. */
int kc_agent_hostnet_confirm(struct kc_agent *a, const json_t *args, json_t **ret,
			     struct kc_error *err);
/* -> {"declared": decl|null, "actual", "differences": [...], "pending", "last"} */
int kc_agent_hostnet_show(struct kc_agent *a, json_t **ret, struct kc_error *err);
/* At daemon start: rolls back (or re-arms) what a dead process left pending. */
int kc_agent_hostnet_resume(struct kc_agent *a, struct kc_error *err);
/* For `kvmcloud-agent check`: no declaration -> *ret NULL; else
 * *ret_ok and a one-line reason listing the differences.  No rollback
 * handle is made (check runs beside the daemon). */
int kc_hostnet_check(const char *data_dir, bool *ret_ok, char *reason, size_t len,
		     json_t **ret_diff, struct kc_error *err);
void kc_hostnet_free(struct kc_hostnet *h); /* accepts NULL */
