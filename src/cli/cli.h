/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the kvmcloud command line: a table of verbs (OpenBSD vmctl
 * style).  Adding a verb is adding a row to kc_verbs[] in verbs.c.
 *
 * Exit status: 0 success, 1 failure (server error or unreachable server),
 * 2 usage error (the verb's usage line is printed).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "args.h"
#include "error.h"
#include "http.h"

enum { KC_EXIT_OK = 0, KC_EXIT_FAIL = 1, KC_EXIT_USAGE = 2 };

struct kc_global_flags;

struct kc_cli {
	const struct kc_global_flags *flags;
	struct kc_client *client; /* made by kc_cli_client() on first use */
	bool json;		  /* print the server's JSON instead of tables */
	FILE *out;
	const struct kc_verb *verb;
};

struct kc_verb {
	const char *noun;
	const char *verb;
	int (*fn)(struct kc_cli *cli, const struct kc_args *a);
	const char *usage; /* after "kvmcloud " */
	int min_args, max_args;
	const struct kc_optdef *opts;
};

extern const struct kc_verb kc_verbs[];

/* The row for "NOUN VERB", or NULL. */
const struct kc_verb *kc_verb_find(const char *noun, const char *verb);

/* The whole program: argv as main() gets it; returns the exit status. */
int kc_cli_main(int argc, char **argv);

/* The API client: settings and token are resolved on first use, so that
 * usage errors are reported before a missing token is.  NULL with err set
 * on failure. */
struct kc_client *kc_cli_client(struct kc_cli *cli, struct kc_error *err);

/* Prints "kvmcloud: <message>" on stderr and returns the exit status for
 * it: 2 with the verb's usage line for KC_ERR_INVALID from local checks
 * when `usage` is true, else 1. */
int kc_cli_fail(const struct kc_cli *cli, const struct kc_error *err, bool usage);

/* Sends one request through kc_cli_client() and prints the answer: its JSON
 * with --json, else through `print`.  `timeout_s` > 0 replaces the client's
 * time limit for it.  Returns the exit status. */
int kc_cli_request(struct kc_cli *cli, const char *method, const char *path, const json_t *body,
		   long timeout_s, void (*print)(FILE *out, const json_t *answer));

/* Verb functions (cmd_host.c, cmd_vm.c, cmd_log.c, console.c). */
int kc_cmd_host_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_host_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_host_check(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_action(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_shutdown(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_delete(struct kc_cli *cli, const struct kc_args *a);
/* A stopped VM's root disk becomes template IMAGE of the library (a job). */
int kc_cmd_vm_template(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_log(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_console(struct kc_cli *cli, const struct kc_args *a);
/* cmd_cluster.c */
int kc_cmd_host_add(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_host_remove(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_host_token(struct kc_cli *cli, const struct kc_args *a);
/* cmd_groups.c */
int kc_cmd_group_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_group_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_group_delete(struct kc_cli *cli, const struct kc_args *a);
/* cmd_sched.c */
int kc_cmd_host_maintenance(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vm_import(struct kc_cli *cli, const struct kc_args *a);
/* Adds "zone", "cluster", "group" of vm create's options to `req`. */
int kc_cli_placement_opts(const struct kc_args *a, json_t *req, struct kc_error *err);
int kc_cmd_zone_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_zone_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_zone_delete(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_cluster_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_cluster_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_cluster_delete(struct kc_cli *cli, const struct kc_args *a);
/* cmd_job.c: sends a long operation as a job (Idempotency-Key, one retry
 * on a dropped connection) and follows it with progress on stderr, or with
 * --async prints its id.  Returns the exit status. */
int kc_cli_job_request(struct kc_cli *cli, const struct kc_args *a, const char *method,
		       const char *path, const json_t *body,
		       void (*print)(FILE *out, const json_t *answer));
int kc_cmd_job_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_job_list(struct kc_cli *cli, const struct kc_args *a);
/* cmd_snapshot.c */
int kc_cmd_snapshot_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_snapshot_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_snapshot_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_snapshot_revert(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_snapshot_delete(struct kc_cli *cli, const struct kc_args *a);
/* cmd_image.c: the image library */
int kc_cmd_image_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_image_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_image_register(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_image_upload(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_image_delete(struct kc_cli *cli, const struct kc_args *a);
/* cmd_users.c */
int kc_cmd_user_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_user_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_user_delete(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_user_quota(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_token_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_token_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_token_revoke(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_audit_list(struct kc_cli *cli, const struct kc_args *a);
/* cmd_pool.c */
int kc_cmd_pool_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_pool_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_pool_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_pool_delete(struct kc_cli *cli, const struct kc_args *a);
/* cmd_pool_prune.c: pool prune, and the per-host clean-up report (the
 * "hosts" of pool prune and of image delete's "cleanup") */
int kc_cmd_pool_prune(struct kc_cli *cli, const struct kc_args *a);
void kc_cli_print_cleanup(FILE *out, const json_t *hosts, bool dry_run);
/* cmd_vol.c */
int kc_cmd_vol_create(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_list(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_show(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_resize(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_delete(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_attach(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_detach(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_upload(struct kc_cli *cli, const struct kc_args *a);
int kc_cmd_vol_download(struct kc_cli *cli, const struct kc_args *a);
