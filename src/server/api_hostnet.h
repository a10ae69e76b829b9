/* SPDX-License-Identifier: Apache-2.0 */
/* api_hostnet.h - PUT/GET /api/v1/hosts/{name}/network and POST
 * .../network/confirm (admin only, by authz.c's default; docs/api.md,
 * docs/networking.md "Host networks"). */
#pragma once

#include "api.h"

int kc_api_host_net_apply(struct kc_call *c, struct kc_error *err);
int kc_api_host_net_show(struct kc_call *c, struct kc_error *err);
int kc_api_host_net_confirm(struct kc_call *c, struct kc_error *err);
