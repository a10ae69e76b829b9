/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvmcloud-server: the REST API in front of the agents.  For now only the
 * all-in-one mode exists, with the agent embedded (remote agents: issue 3).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "kc-config.h"
#include "server.h"

#define MAX_OVERRIDES 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvmcloud-server --all-in-one [options]\n"
		"  --data-dir DIR        state, database, token (default %s)\n"
		"  --listen ADDR:PORT    default %s; non-loopback needs TLS\n"
		"  --tls-cert FILE --tls-key FILE   serve HTTPS (PEM)\n"
		"  --agent-config FILE   agent settings (default <data-dir>/agent.conf if "
		"present)\n"
		"  -o KEY=VALUE          agent setting, overrides the file (repeatable)\n"
		"  --reset-admin-token   replace the admin token (the old one stops working)\n"
		"  --version, --help\n",
		KC_DEFAULT_DATA_DIR, KC_DEFAULT_LISTEN);
}

int main(int argc, char **argv)
{
	enum {
		OPT_ALL_IN_ONE = 256,
		OPT_DATA_DIR,
		OPT_LISTEN,
		OPT_TLS_CERT,
		OPT_TLS_KEY,
		OPT_AGENT_CONFIG,
		OPT_RESET_TOKEN,
		OPT_VERSION
	};
	static const struct option longopts[] = {
		{"all-in-one", no_argument, NULL, OPT_ALL_IN_ONE},
		{"data-dir", required_argument, NULL, OPT_DATA_DIR},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"agent-config", required_argument, NULL, OPT_AGENT_CONFIG},
		{"reset-admin-token", no_argument, NULL, OPT_RESET_TOKEN},
		{"version", no_argument, NULL, OPT_VERSION},
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
	if (!all_in_one) {
		fprintf(stderr, "kvmcloud-server: remote agents are not supported yet (issue 3); "
				"run with --all-in-one to embed the agent\n");
		return 2;
	}

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
