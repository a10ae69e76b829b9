/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h - one running kvmcloud-server: its database, its embedded agent
 * (all-in-one mode) and its HTTP listener.  main.c only parses options and
 * waits for a signal; tests drive the same functions in-process.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <ulfius.h>

#include "agent.h"
#include "db.h"
#include "error.h"

#define KC_DEFAULT_DATA_DIR "/var/lib/kvmcloud"
#define KC_DEFAULT_LISTEN   "127.0.0.1:8470"

struct kc_server_opts {
	const char *data_dir; /* default KC_DEFAULT_DATA_DIR */
	const char *db;	      /* kc_db_open spec; default <data_dir>/kvmcloud.db (SQLite) */
	const char *listen;   /* "ADDR:PORT" or "[ADDR6]:PORT"; default KC_DEFAULT_LISTEN */
	const char *tls_cert; /* PEM files; both or neither */
	const char *tls_key;
	const char *agent_config;     /* NULL: <data_dir>/agent.conf if it exists */
	const char *const *overrides; /* "key=value" agent settings, after the file */
	size_t n_overrides;
	FILE *out;		/* start-up lines (stdout) */
	bool log_requests;	/* one line per request on stderr */
	bool reset_admin_token; /* replace the admin token (--reset-admin-token) */
	/* Issue 3: remote agents (docs/protocol.md). */
	bool no_local_agent;	  /* no embedded agent (not --all-in-one) */
	bool cluster;		  /* agent listener even with the embedded agent */
	const char *agent_listen; /* default KC_DEFAULT_AGENT_LISTEN */
	const char *advertise;	  /* address or name agents reach us at */
	const char *tls_mode;	  /* "auto" (NULL), "on", "off" */
	unsigned heartbeat_s;	  /* 0: the default (tests shorten it) */
	unsigned down_after_s;	  /* 0: the default */
	/* Scheduler overcommit ratios (0: the defaults, scheduler.h). */
	double cpu_overcommit, mem_overcommit;
	/* Finished jobs kept; a server silent this long is dead (seconds;
	 * 0: the defaults, jobs_sweep.h). */
	long job_retention_s, server_dead_after_s;
	const char *image_ca; /* PEM CAs image downloads trust besides the system's */
};

struct kc_server {
	struct kc_db *db;
	struct kc_agent *agent;
	char *data_dir;
	char *host_name;
	bool log_requests;
	bool tls;
	struct sockaddr_storage addr;
	char listen_url[128]; /* "http://127.0.0.1:8470" */
	struct _u_instance inst;
	char *tls_cert_pem; /* read at open so that bad files fail early */
	char *tls_key_pem;  /* wiped once the listener has it */
	char *token_line;   /* "admin token: ..." until start prints it */
	bool inst_ready;
	bool started;
	/* Issue 3 (NULL / 0 without the agent listener). */
	struct kc_agentlink *alink;
	char *pki_dir;	      /* <data_dir>/pki: CA and server certificate */
	char *agent_endpoint; /* "ADDR:PORT" that agents are told to dial */
	char *server_name;    /* the name agents verify in our certificate */
	char *join_url;	      /* "https://ADVERTISE:PORT" for the join command */
	bool agent_listen_on;
	struct sockaddr_storage agent_addr;
	unsigned heartbeat_s, down_after_s;
	double cpu_overcommit, mem_overcommit; /* the scheduler's; 0: defaults */
	struct kc_jobs *jobs; /* the job runner (jobs.h) */
	long job_retention_s, server_dead_after_s; /* jobs_sweep.h; 0: defaults */
	struct kc_peerlink *plink; /* calls forwarded to other servers (peerlink.h) */
	struct kc_volume_reconciler *volrec; /* hello settlements (volumes.h) */
	char *image_ca;		   /* absolute path of --image-ca, or NULL */
};

/* Checks the options, opens the database, starts the embedded agent,
 * records the host, reconciles VM records left by a killed server and
 * creates the admin token on first start (or replaces it if
 * opts->reset_admin_token).  The token itself is shown only if opts->out
 * is a terminal.  Does not listen yet. */
int kc_server_open(const struct kc_server_opts *opts, struct kc_server **ret, struct kc_error *err);
/* Starts the HTTP(S) listener and prints the start-up lines to opts->out. */
int kc_server_start(struct kc_server *srv, const struct kc_server_opts *opts, struct kc_error *err);
/* Stops listening (closing WebSockets), then frees everything.  NULL ok. */
void kc_server_free(struct kc_server *srv);

/* Parses "ADDR:PORT" / "[ADDR6]:PORT"; *ret_loopback tells whether ADDR is
 * a loopback address (127.0.0.0/8 or ::1). */
int kc_listen_parse(const char *s, struct sockaddr_storage *ret, bool *ret_loopback,
		    struct kc_error *err);

/* Re-reads the host's facts from the agent into the hosts table. */
int kc_server_refresh_host(struct kc_server *srv, struct kc_error *err);
/* Runs the host check and stores it (with "checked_at") as the host's
 * latest; *ret gets the stored Check object. */
int kc_server_check_host(struct kc_server *srv, bool probe_kvm, json_t **ret, struct kc_error *err);
