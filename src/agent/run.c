/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.c - `kvmcloud-agent run`: the daemon.  Reads what join wrote
 * (<pki.dir>/agent.crt, agent.key, ca.crt, server.conf), opens the agent
 * and serves the cluster link until SIGTERM or SIGINT.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"
#include "hostfw.h"
#include "hostnet.h"
#include "link.h"
#include "verbs.h"

struct sig_waiter {
	sigset_t set;
	struct kc_link *link;
};

/* Signals are taken synchronously by this thread: kc_link_stop() is not
 * async-signal-safe. */
static void *signal_main(void *arg)
{
	struct sig_waiter *w = arg;
	int sig = 0;
	if (sigwait(&w->set, &sig) == 0 && w->link) {
		fprintf(stderr, "kvmcloud-agent: %s received, stopping\n",
			sig == SIGTERM ? "SIGTERM" : "SIGINT");
		kc_link_stop(w->link);
	}
	return NULL;
}

static void log_stderr(const char *line, void *opaque)
{
	fprintf(stderr, "kvmcloud-agent: %s\n", line);
}

static int pki_path(char **ret, const char *dir, const char *name, struct kc_error *err)
{
	if (asprintf(ret, "%s/%s", dir, name) < 0) {
		*ret = NULL;
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

#define LIBVIRT_RETRY_MAX_S 30

/* kc_agent_new(), retried with backoff (1 s doubling to 30 s) while
 * libvirtd is not reachable: an agent started before its libvirtd (boot
 * order, a daemon being restarted) waits for it instead of exiting.  It
 * does not connect to the server meanwhile: a hello carries the domain
 * list, and one without it would read as "every VM is missing".  Returns
 * 1 if SIGTERM or SIGINT (blocked, in sigs) came first. */
static int agent_open(const struct kc_config *cfg, const sigset_t *sigs, struct kc_agent **ret,
		      struct kc_error *err)
{
	unsigned delay = 1;
	for (unsigned attempt = 1;; attempt++) {
		struct kc_error e = {0};
		if (kc_agent_new(cfg, ret, &e) == 0) {
			if (attempt > 1)
				fprintf(stderr,
					"kvmcloud-agent: libvirt is reachable again after %u "
					"attempts\n",
					attempt);
			return 0;
		}
		if (e.code != KC_ERR_UNAVAILABLE) {
			*err = e;
			return -1;
		}
		fprintf(stderr,
			"kvmcloud-agent: %s; not connecting to the server until it is, retrying in "
			"%u s\n",
			e.message, delay);
		struct timespec ts = {delay, 0};
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			fprintf(stderr, "kvmcloud-agent: %s received, stopping\n",
				sig == SIGTERM ? "SIGTERM" : "SIGINT");
			return 1;
		}
		delay = delay * 2 > LIBVIRT_RETRY_MAX_S ? LIBVIRT_RETRY_MAX_S : delay * 2;
	}
}

static int run(const struct kc_cli_opts *o, struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = NULL;
	_cleanup_config_ struct kc_config *server = kc_config_new();
	_cleanup_free_ char *ca = NULL, *crt = NULL, *key = NULL, *conf = NULL;
	if (!server)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_cli_config(o, &cfg, err) < 0)
		return -1;
	const char *dir = kc_config_get(cfg, "pki.dir", KC_DEFAULT_PKI_DIR);
	if (pki_path(&ca, dir, "ca.crt", err) < 0 || pki_path(&crt, dir, "agent.crt", err) < 0 ||
	    pki_path(&key, dir, "agent.key", err) < 0 ||
	    pki_path(&conf, dir, "server.conf", err) < 0)
		return -1;
	if (access(conf, F_OK) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s is missing: join the cluster first (kvmcloud-agent join)",
				    conf);
	if (kc_config_load(server, conf, true, err) < 0)
		return -1;
	struct kc_link_config lc = {
		.ca_file = ca,
		.cert_file = crt,
		.key_file = key,
		.endpoint = kc_config_get(server, "endpoint", NULL),
		.server_name = kc_config_get(server, "server_name", NULL),
		.endpoints = kc_config_get(server, "endpoints", NULL),
		.server_conf = conf,
		.log = log_stderr,
	};
	if (!lc.endpoint || !lc.server_name)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s needs endpoint= and server_name=", conf);

	/* Blocked before any thread starts, so that every thread inherits it
	 * and only the waiter below takes them. */
	struct sig_waiter w = {0};
	sigemptyset(&w.set);
	sigaddset(&w.set, SIGTERM);
	sigaddset(&w.set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &w.set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct kc_agent *a = NULL;
	struct kc_link *link = NULL;
	int r = agent_open(cfg, &w.set, &a, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	/* The host firewall as last confirmed, before the link is up. */
	struct kc_error fwe = {0};
	if (kc_hostfw_start(log_stderr, NULL, &fwe) < 0)
		fprintf(stderr, "kvmcloud-agent: host firewall NOT loaded: %s\n", fwe.message);
	/* A host network change a dead agent left unconfirmed: rolled back
	 * (or re-armed for the time it had left) before the link is up. */
	struct kc_error hne = {0};
	if (kc_agent_hostnet_resume(a, &hne) < 0)
		fprintf(stderr, "kvmcloud-agent: host network rollback: %s\n", hne.message);
	if (kc_link_new(a, &lc, &link, err) < 0) {
		kc_hostfw_stop();
		kc_agent_free(a);
		return -1;
	}
	w.link = link;
	pthread_t waiter;
	if (pthread_create(&waiter, NULL, signal_main, &w) != 0) {
		kc_link_free(link);
		kc_agent_free(a);
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start the signal thread");
	}
	fprintf(stderr, "kvmcloud-agent: host \"%s\", server %s (%s)\n", kc_agent_host_name(a),
		lc.endpoint, lc.server_name);
	kc_link_run(link);
	/* kc_link_run only returns once stopped, or if it could not start:
	 * wake the waiter either way. */
	pthread_kill(waiter, SIGTERM);
	pthread_join(waiter, NULL);
	kc_hostfw_stop();
	kc_agent_free(a);
	kc_link_free(link);
	return 0;
}

int kc_cmd_run(const struct kc_cli_opts *o)
{
	struct kc_error err = {0};
	if (run(o, &err) < 0) {
		kc_cli_print_error(&err);
		return 2;
	}
	return 0;
}
