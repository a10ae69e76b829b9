/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_hostnet.h - `kvmcloud host net-apply`, `host net-show` and
 * `host net-confirm` (declared host networks, docs/networking.md). */
#pragma once

#include "cli.h"

/* Longest declaration file net-apply reads. */
#define KC_HOSTNET_FILE_MAX (64 * 1024)

int kc_cmd_host_net_apply(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_host_net_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_host_net_confirm(struct kc_cli *cli, const struct kc_args *a);
