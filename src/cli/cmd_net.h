/* SPDX-License-Identifier: Apache-2.0 */
/* The guest network verbs (cmd_net.c; docs/cli.md, "Networks"). */
#pragma once

#include "cli.h"

int kc_cmd_net_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_net_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_net_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_net_delete(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_net_addresses(struct kc_cli *cli, const struct kc_args *a);
