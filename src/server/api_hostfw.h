/* SPDX-License-Identifier: Apache-2.0 */
/* api_hostfw.h - PUT/GET /api/v1/hosts/{name}/firewall (admin only, by
 * authz.c's default; docs/api.md, docs/networking.md "Host firewall"). */
#pragma once

#include "api.h"

/* The agent's rollback timer a PUT arms (confirm_s): default and bounds. */
#define KC_HOSTFW_API_CONFIRM_DEFAULT 30
#define KC_HOSTFW_API_CONFIRM_MIN     5
#define KC_HOSTFW_API_CONFIRM_MAX     120

int kc_api_host_fw_apply(struct kc_call *c, struct kc_error *err);
int kc_api_host_fw_show(struct kc_call *c, struct kc_error *err);
