/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_hostfw.h - `kvmcloud host fw-apply` and `host fw-show` (the host
 * firewall, docs/networking.md). */
#pragma once

#include "cli.h"

/* Longest policy file fw-apply reads. */
#define KC_HOSTFW_POLICY_FILE_MAX (256 * 1024)

int kc_cmd_host_fw_apply(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_host_fw_show(struct kc_cli *cli, const struct kc_args *a);
