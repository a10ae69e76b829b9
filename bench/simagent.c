/* SPDX-License-Identifier: Apache-2.0 */
/*
 * simagent.c - many simulated agents in one process, for bench/fleet.sh.
 *
 *   kc-simagent BASE_DIR FIRST COUNT VMS
 *
 * Host i (FIRST <= i < FIRST + COUNT) lives in BASE_DIR/hNNNNN: `kvmcloud-agent join` wrote
 * its credentials to pki/ (ca.crt, agent.crt, agent.key, server.conf).  Each
 * host is the real agent library (struct kc_agent + kc_link: TLS, hello,
 * heartbeats, worker pool) on its own libvirt test driver instance, a
 * test:///<file> node with VMS domains: test:///default is one instance
 * shared by the whole process, so it could not give hosts their own VMs.
 *
 * The agent library holds at most 64 agents per process (src/agent/conn.c),
 * so fleet.py starts one of these per 64 hosts.
 *
 * Prints "SIMAGENT-READY <started>" on stdout once every link runs; stops
 * all links on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <libxml/xmlwriter.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"
#include "link.h"

#define HOSTS_MAX	 100000
#define VMS_MAX		 1000
#define THREAD_STACK_KIB 256

struct sim_host {
	struct kc_agent *agent;
	struct kc_link *link;
	pthread_t thr;
	bool running;
};

static void log_line(const char *line, void *opaque)
{
	/* Connects are expected by the thousand; the rest is worth seeing. */
	if (strncmp(line, "connected to ", 13) != 0)
		fprintf(stderr, "simagent %s: %s\n", (const char *)opaque, line);
}

/* The test driver's node file: VMS running domains f<host>-vm-0 ..
 * f<host>-vm-(VMS-1), names unique in the fleet so that they can be
 * imported as records. */
static int write_node(const char *path, unsigned host, unsigned vms)
{
	xmlTextWriterPtr w = xmlNewTextWriterFilename(path, 0);
	if (!w)
		return -1;
	int rc = xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) < 0 ||
		 xmlTextWriterStartElement(w, BAD_CAST "node") < 0;
	for (unsigned j = 0; !rc && j < vms; j++) {
		char name[32];
		snprintf(name, sizeof(name), "f%05u-vm-%u", host, j);
		rc = xmlTextWriterStartElement(w, BAD_CAST "domain") < 0 ||
		     xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "test") < 0 ||
		     xmlTextWriterWriteElement(w, BAD_CAST "name", BAD_CAST name) < 0 ||
		     xmlTextWriterWriteElement(w, BAD_CAST "memory", BAD_CAST "131072") < 0 ||
		     xmlTextWriterWriteElement(w, BAD_CAST "vcpu", BAD_CAST "1") < 0 ||
		     xmlTextWriterStartElement(w, BAD_CAST "os") < 0 ||
		     xmlTextWriterWriteElement(w, BAD_CAST "type", BAD_CAST "hvm") < 0 ||
		     xmlTextWriterEndElement(w) < 0 || xmlTextWriterEndElement(w) < 0;
	}
	if (!rc)
		rc = xmlTextWriterEndDocument(w) < 0;
	xmlFreeTextWriter(w);
	return rc ? -1 : 0;
}

static int host_setup(struct sim_host *h, const char *base, unsigned i, unsigned vms, char *tag,
		      struct kc_error *err)
{
	_cleanup_free_ char *dir = NULL, *node = NULL, *uri = NULL, *data = NULL, *name = NULL;
	_cleanup_free_ char *ca = NULL, *crt = NULL, *key = NULL, *conf = NULL;
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	_cleanup_config_ struct kc_config *server = kc_config_new();
	if (!cfg || !server || asprintf(&dir, "%s/h%05u", base, i) < 0 ||
	    asprintf(&node, "%s/node.xml", dir) < 0 || asprintf(&uri, "test://%s", node) < 0 ||
	    asprintf(&data, "%s/data", dir) < 0 || asprintf(&name, "fleet-%05u", i) < 0 ||
	    asprintf(&ca, "%s/pki/ca.crt", dir) < 0 ||
	    asprintf(&crt, "%s/pki/agent.crt", dir) < 0 ||
	    asprintf(&key, "%s/pki/agent.key", dir) < 0 ||
	    asprintf(&conf, "%s/pki/server.conf", dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (write_node(node, i, vms) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot write %s", node);
	if (kc_config_set(cfg, "libvirt.uri", uri, err) < 0 ||
	    kc_config_set(cfg, "data.dir", data, err) < 0 ||
	    kc_config_set(cfg, "host.name", name, err) < 0 ||
	    kc_config_set(cfg, "accel", "tcg", err) < 0 ||
	    kc_config_load(server, conf, true, err) < 0)
		return -1;
	snprintf(tag, 16, "%s", name);
	struct kc_link_config lc = {
		.ca_file = ca,
		.cert_file = crt,
		.key_file = key,
		.endpoint = kc_config_get(server, "endpoint", NULL),
		.server_name = kc_config_get(server, "server_name", NULL),
		.log = log_line,
		.log_opaque = tag,
	};
	if (!lc.endpoint || !lc.server_name)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s needs endpoint= and server_name=", conf);
	if (kc_agent_new(cfg, &h->agent, err) < 0)
		return -1;
	return kc_link_new(h->agent, &lc, &h->link, err);
}

static void *link_main(void *arg)
{
	kc_link_run(((struct sim_host *)arg)->link);
	return NULL;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*ret = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned first, n, vms;
	if (argc != 5 || parse_uint(argv[2], 0, HOSTS_MAX, &first) < 0 ||
	    parse_uint(argv[3], 1, HOSTS_MAX, &n) < 0 ||
	    parse_uint(argv[4], 1, VMS_MAX, &vms) < 0) {
		fprintf(stderr, "usage: kc-simagent BASE_DIR FIRST COUNT(1..%d) VMS(1..%d)\n",
			HOSTS_MAX, VMS_MAX);
		return 2;
	}
	/* Six threads a host (link, sender, four workers): small stacks keep
	 * thousands of them cheap in address space. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK_KIB * 1024);
	pthread_setattr_default_np(&attr);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sim_host *hosts = calloc(n, sizeof(*hosts));
	char(*tags)[16] = calloc(n, 16);
	if (!hosts || !tags)
		return 1;
	unsigned started = 0;
	for (unsigned i = 0; i < n; i++) {
		struct kc_error err = {0};
		if (host_setup(&hosts[i], argv[1], first + i, vms, tags[i], &err) < 0) {
			fprintf(stderr, "simagent: host %u: %s\n", first + i, err.message);
			break;
		}
		if (pthread_create(&hosts[i].thr, NULL, link_main, &hosts[i]) != 0) {
			fprintf(stderr, "simagent: host %u: cannot start its thread\n", first + i);
			break;
		}
		hosts[i].running = true;
		started++;
	}
	printf("SIMAGENT-READY %u\n", started);
	fflush(stdout);

	int sig;
	sigwait(&set, &sig);
	for (unsigned i = 0; i < n; i++)
		if (hosts[i].running)
			kc_link_stop(hosts[i].link);
	for (unsigned i = 0; i < n; i++)
		if (hosts[i].running)
			pthread_join(hosts[i].thr, NULL);
	/* No kc_agent_free(): each waits up to 2 s for libvirt to release a
	 * process-wide count of callback registrations (kc_conn_close), which
	 * with many agents in one process is minutes; exit reclaims it all. */
	_exit(started == n ? 0 : 1);
}
