/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_sg.h - `kvmcloud sg ...` and `vm set-sg` (security groups,
 * docs/networking.md "Security groups"). */
#pragma once

#include "cli.h"

int kc_cmd_sg_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_sg_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_sg_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_sg_delete(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_sg_rule_add(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_sg_rule_delete(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_set_sg(struct kc_cli *cli, const struct kc_args *a);

/* `sg rule-add` options as the rule object of the API (tests use it):
 * --in|--out, --proto P, --port N[-M], --cidr C | --remote-group G. */
json_t *kc_req_sg_rule(const struct kc_args *a, struct kc_error *err);
