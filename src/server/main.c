/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvmcloud-server: the REST API in front of the agents: embedded
 * (--all-in-one), remote over mutual TLS (docs/protocol.md), or both
 * (--all-in-one --cluster).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "cleanup.h"
#include "kc-config.h"
#include "server.h"

#define MAX_OVERRIDES 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvmcloud-server [--all-in-one [--cluster]] [options]\n"
		"  --all-in-one          embed the agent: this host runs VMs too\n"
		"  --cluster             with --all-in-one: also accept remote agents\n"
		"  --data-dir DIR        state, database, token, PKI (default %s)\n"
		"  --db SPEC             postgresql://... or an SQLite file (default "
		"<data-dir>/kvmcloud.db)\n"
		"  --listen ADDR:PORT    API address (default %s)\n"
		"  --tls auto|on|off     HTTPS for the API; auto (default): on beyond loopback\n"
		"                        or when agents may join, with the cluster CA's certificate\n"
		"  --tls-cert FILE --tls-key FILE   serve HTTPS with this certificate instead (PEM)\n"
		"  --agent-listen ADDR:PORT  where agents connect (default %s)\n"
		"  --advertise ADDR      the address or name agents reach this server at\n"
		"  --heartbeat S         agent heartbeat interval (default %d)\n"
		"  --down-after S        Disconnected hosts become Down after S more seconds "
		"(default 300)\n"
		"  --cpu-overcommit R    vCPUs placed per host CPU (default 4.0)\n"
		"  --mem-overcommit R    memory placed per host MiB (default 1.0)\n"
		"  --job-retention DAYS  finished jobs are deleted after DAYS (default 7)\n"
		"  --server-dead-after S another server silent for S seconds is dead: its\n"
		"                        running jobs are settled here (default 300)\n"
		"  --image-ca FILE       CA certificates (PEM) trusted for https image URLs,\n"
		"                        besides the system's\n"
		"  --agent-config FILE   agent settings (default <data-dir>/agent.conf if "
		"present)\n"
		"  -o KEY=VALUE          agent setting, overrides the file (repeatable)\n"
		"  --reset-admin-token   replace the admin token (the old one stops working)\n"
		"  --version, --help\n",
		KC_DEFAULT_DATA_DIR, KC_DEFAULT_LISTEN, KC_DEFAULT_AGENT_LISTEN,
		KC_DEFAULT_HEARTBEAT_S);
}

int main(int argc, char **argv)
{
	enum {
		OPT_ALL_IN_ONE = 256,
		OPT_DATA_DIR,
		OPT_DB,
		OPT_LISTEN,
		OPT_TLS_CERT,
		OPT_TLS_KEY,
		OPT_AGENT_CONFIG,
		OPT_RESET_TOKEN,
		OPT_VERSION,
		OPT_CLUSTER,
		OPT_TLS,
		OPT_AGENT_LISTEN,
		OPT_ADVERTISE,
		OPT_HEARTBEAT,
		OPT_DOWN_AFTER,
		OPT_CPU_OVERCOMMIT,
		OPT_MEM_OVERCOMMIT,
		OPT_JOB_RETENTION,
		OPT_SERVER_DEAD_AFTER,
		OPT_IMAGE_CA,
	};
	static const struct option longopts[] = {
		{"all-in-one", no_argument, NULL, OPT_ALL_IN_ONE},
		{"data-dir", required_argument, NULL, OPT_DATA_DIR},
		{"db", required_argument, NULL, OPT_DB},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"agent-config", required_argument, NULL, OPT_AGENT_CONFIG},
		{"reset-admin-token", no_argument, NULL, OPT_RESET_TOKEN},
		{"version", no_argument, NULL, OPT_VERSION},
		{"cluster", no_argument, NULL, OPT_CLUSTER},
		{"tls", required_argument, NULL, OPT_TLS},
		{"agent-listen", required_argument, NULL, OPT_AGENT_LISTEN},
		{"advertise", required_argument, NULL, OPT_ADVERTISE},
		{"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
		{"down-after", required_argument, NULL, OPT_DOWN_AFTER},
		{"cpu-overcommit", required_argument, NULL, OPT_CPU_OVERCOMMIT},
		{"mem-overcommit", required_argument, NULL, OPT_MEM_OVERCOMMIT},
		{"job-retention", required_argument, NULL, OPT_JOB_RETENTION},
		{"server-dead-after", required_argument, NULL, OPT_SERVER_DEAD_AFTER},
		{"image-ca", required_argument, NULL, OPT_IMAGE_CA},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *overrides[MAX_OVERRIDES];
	struct kc_server_opts opts = {.out = stdout, .log_requests = true, .overrides = overrides};
	struct kc_error err = {0};
	bool all_in_one = false;
	int c;

	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ALL_IN_ONE:
			all_in_one = true;
			break;
		case OPT_DATA_DIR:
			opts.data_dir = optarg;
			break;
		case OPT_DB:
			opts.db = optarg;
			break;
		case OPT_LISTEN:
			opts.listen = optarg;
			break;
		case OPT_TLS_CERT:
			opts.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			opts.tls_key = optarg;
			break;
		case OPT_AGENT_CONFIG:
			opts.agent_config = optarg;
			break;
		case OPT_RESET_TOKEN:
			opts.reset_admin_token = true;
			break;
		case OPT_CLUSTER:
			opts.cluster = true;
			break;
		case OPT_TLS:
			opts.tls_mode = optarg;
			break;
		case OPT_AGENT_LISTEN:
			opts.agent_listen = optarg;
			break;
		case OPT_ADVERTISE:
			opts.advertise = optarg;
			break;
		case OPT_HEARTBEAT:
		case OPT_DOWN_AFTER: {
			char *end = NULL;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < 1 || v > 3600) {
				fprintf(stderr, "kvmcloud-server: --%s: expected 1..3600 seconds\n",
					c == OPT_HEARTBEAT ? "heartbeat" : "down-after");
				return 2;
			}
			if (c == OPT_HEARTBEAT)
				opts.heartbeat_s = (unsigned)v;
			else
				opts.down_after_s = (unsigned)v;
			break;
		}
		case OPT_CPU_OVERCOMMIT:
		case OPT_MEM_OVERCOMMIT: {
			char *end = NULL;
			double r = strtod(optarg, &end);
			if (!*optarg || *end || !(r >= 0.1 && r <= 64.0)) {
				fprintf(stderr, "kvmcloud-server: --%s: expected a ratio 0.1..64\n",
					c == OPT_CPU_OVERCOMMIT ? "cpu-overcommit" : "mem-overcommit");
				return 2;
			}
			if (c == OPT_CPU_OVERCOMMIT)
				opts.cpu_overcommit = r;
			else
				opts.mem_overcommit = r;
			break;
		}
		case OPT_JOB_RETENTION:
		case OPT_SERVER_DEAD_AFTER: {
			bool days = c == OPT_JOB_RETENTION;
			unsigned long lo = days ? 1 : 30, hi = days ? 3650 : 86400;
			char *end = NULL;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < lo || v > hi) {
				fprintf(stderr, "kvmcloud-server: --%s: expected %lu..%lu %s\n",
					days ? "job-retention" : "server-dead-after", lo, hi,
					days ? "days" : "seconds");
				return 2;
			}
			if (days)
				opts.job_retention_s = (long)v * 24 * 3600;
			else
				opts.server_dead_after_s = (long)v;
			break;
		}
		case OPT_IMAGE_CA:
			opts.image_ca = optarg;
			break;
		case 'o':
			if (opts.n_overrides == MAX_OVERRIDES) {
				fprintf(stderr, "kvmcloud-server: at most %d -o options\n",
					MAX_OVERRIDES);
				return 2;
			}
			overrides[opts.n_overrides++] = optarg;
			break;
		case OPT_VERSION:
			printf("kvmcloud-server %s\n", KC_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmcloud-server: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (opts.cluster && !all_in_one) {
		fprintf(stderr, "kvmcloud-server: --cluster goes with --all-in-one (without "
				"--all-in-one the server only serves remote agents)\n");
		return 2;
	}
	opts.no_local_agent = !all_in_one;

	/* Block the stop signals before any thread exists (agent, HTTP), so
	 * that they all inherit the mask and only sigwait() below sees them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	/* Writes to a closed WebSocket or console socket must fail with EPIPE,
	 * not kill the server. */
	signal(SIGPIPE, SIG_IGN);

	struct kc_server *srv = NULL;
	if (kc_server_open(&opts, &srv, &err) < 0 || kc_server_start(srv, &opts, &err) < 0) {
		fprintf(stderr, "kvmcloud-server: %s\n", err.message);
		kc_server_free(srv);
		return 1;
	}

	int sig = 0;
	sigwait(&stop, &sig);
	fprintf(stderr, "kvmcloud-server: %s received, stopping\n", strsignal(sig));
	kc_server_free(srv);
	return 0;
}
