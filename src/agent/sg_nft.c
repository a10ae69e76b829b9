/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sg_nft.c - security groups on this host (docs/networking.md, "Security
 * groups"): the server sends the host's whole ruleset (sg.apply); we find
 * each NIC's tap in the live domain XML by MAC, render the nft text
 * (nft_render.h) and replace our two tables in one libnftables
 * transaction, in the agent's own network namespace.
 *
 * The ruleset as last received is kept in <data.dir>/sg-ruleset.json
 * (0600, written atomically) and applied again, with taps looked up anew,
 * by a worker thread: at agent start, and after every domain start or stop
 * (a started or migrated-in VM has a new tap; the lifecycle callback only
 * kicks the thread, since it runs on libvirt's event loop).
 */
#include "sg_nft.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "io.h"
#include "json_util.h"
#include "nft_render.h"
#include "secgroup.h"
#include "sg_plug.h"

#define STATE_FILE  "sg-ruleset.json"
#define DEBOUNCE_MS 200

struct kc_sg {
	pthread_mutex_t lock; /* one apply at a time; guards the fields below kick's */
	/* kick_lock guards pending and stop only and is never held across
	 * libvirt or nft, so kc_sg_kick (on libvirt's event thread) never
	 * waits for an apply that is itself waiting for libvirt. */
	pthread_mutex_t kick_lock;
	pthread_cond_t cond;
	bool pending; /* the worker should apply `current` again */
	bool stop;
	json_t *current; /* the last ruleset received (taps as the server sent them) */
	bool thread_started;
	bool tables; /* our tables may exist (we applied NICs, or a state file) */
	pthread_t thread;
	char *state_path;
	char last_error[KC_ERROR_MSG_MAX];
	char applied_at[32];
	double last_ms;
};

/* One NIC of a running domain, as its live XML says. */
struct live_nic {
	char mac[18];
	char tap[KC_IFNAME_MAX + 1];
	bool ovs;
};

static void now_iso(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The interfaces of a running domain; 0 NICs if it does not run here. */
static int live_nics(virConnectPtr conn, const char *vm, struct live_nic *out, size_t max,
		     size_t *ret_n, struct kc_error *err)
{
	*ret_n = 0;
	virDomainPtr d = virDomainLookupByName(conn, vm);
	if (!d) {
		virResetLastError();
		return 0;
	}
	_cleanup_dom_ virDomainPtr dom = d;
	if (virDomainIsActive(dom) != 1) {
		virResetLastError();
		return 0;
	}
	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0);
	if (!xml)
		return kc_lverr(err, "VM %s: domain XML", vm);
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return kc_error_set(err, KC_ERR_INTERNAL, "VM %s: unreadable domain XML", vm);
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr o =
		ctx ? xmlXPathEvalExpression((const xmlChar *)"/domain/devices/interface", ctx)
		    : NULL;
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr && *ret_n < max; i++) {
		ctx->node = o->nodesetval->nodeTab[i];
		_cleanup_free_ char *mac = kc_xpath_string(ctx, "string(mac/@address)");
		_cleanup_free_ char *tap = kc_xpath_string(ctx, "string(target/@dev)");
		_cleanup_free_ char *vp = kc_xpath_string(ctx, "string(virtualport/@type)");
		if (!mac || strlen(mac) != 17)
			continue;
		struct live_nic *n = &out[(*ret_n)++];
		for (size_t k = 0; k < 17; k++)
			n->mac[k] = (char)((mac[k] >= 'A' && mac[k] <= 'F') ? mac[k] + 32 : mac[k]);
		n->mac[17] = '\0';
		/* A tap name we could not print safely into nft is no tap. */
		n->tap[0] = '\0';
		if (tap && kc_ifname_validate(tap, "tap", NULL) == 0)
			snprintf(n->tap, sizeof(n->tap), "%s", tap);
		n->ovs = vp && strcmp(vp, "openvswitch") == 0;
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return 0;
}

/* Fills every NIC's tap the server did not give.  A NIC still on an Open
 * vSwitch port is left out: neither the bridge family nor br_netfilter
 * sees OVS ports (plug_vms moves such NICs to the hybrid plug). */
static int resolve_taps(struct kc_agent *a, struct kc_sg_ruleset *rs, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	for (size_t v = 0; v < rs->n_vms; v++) {
		struct kc_sg_vm *vm = &rs->vms[v];
		struct live_nic live[KC_SG_NICS_MAX * 4];
		size_t n_live = 0;
		if (live_nics(conn, vm->name, live, KC_ARRAY_SIZE(live), &n_live, err) < 0)
			return -1;
		for (size_t n = 0; n < vm->n_nics; n++) {
			struct kc_sg_nic *nic = &vm->nics[n];
			const struct live_nic *ln = NULL;
			for (size_t k = 0; k < n_live && !ln; k++)
				if (strcmp(live[k].mac, nic->mac) == 0)
					ln = &live[k];
			/* Still on an OVS port (a running VM, plug_vms warned):
			 * rules keyed on its tap would not see a frame. */
			if (!ln || ln->ovs)
				nic->tap[0] = '\0'; /* not running here (any more): left out */
			else if (!nic->tap[0])
				snprintf(nic->tap, sizeof(nic->tap), "%s", ln->tap);
		}
	}
	return 0;
}

/* NICs with groups still plugged straight into Open vSwitch move to the
 * hybrid plug (sg_plug.h) while their VM is stopped; `warn` names those of
 * running VMs, which resolve_taps then leaves out. */
static int plug_vms(struct kc_agent *a, const struct kc_sg_ruleset *rs, char *warn, size_t warn_len,
		    struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	for (size_t v = 0; v < rs->n_vms; v++) {
		const char *macs[KC_SG_NICS_MAX];
		for (size_t n = 0; n < rs->vms[v].n_nics; n++)
			macs[n] = rs->vms[v].nics[n].mac;
		if (kc_sg_plug_vm(conn, rs->vms[v].name, macs, rs->vms[v].n_nics, warn, warn_len,
				  err) < 0)
			return -1;
	}
	return 0;
}

/* Bridged IPv4/IPv6 frames reach the inet forward hook only with
 * br_netfilter's bridge-nf-call-*tables set.  The setting is per network
 * namespace and affects every bridge in it: bridged traffic then also
 * passes other inet/ip tables (libvirt's iptables-nft chains included).
 * Only written when some VM is protected. */
static int bridge_nf_enable(struct kc_error *err)
{
	static const char *const files[] = {"/proc/sys/net/bridge/bridge-nf-call-iptables",
					    "/proc/sys/net/bridge/bridge-nf-call-ip6tables"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(files); i++) {
		_cleanup_close_ int fd = open(files[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
						  "%s (is br_netfilter loaded?)", files[i]);
		if (kc_write_all(fd, "1\n", 2) < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "%s", files[i]);
	}
	return 0;
}

int kc_sg_nft_run(const char *text, struct kc_error *err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx)
		return kc_error_set(err, KC_ERR_INTERNAL, "nft_ctx_new failed");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	int rc = nft_run_cmd_from_buffer(ctx, text);
	if (rc != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		kc_error_set(err, KC_ERR_INTERNAL, "nftables refused the ruleset: %.400s",
			     e && *e ? e : "(no message)");
	}
	nft_ctx_free(ctx);
	return rc == 0 ? 0 : -1;
}

/* Writes the ruleset to the state file: temp file, fsync, rename. */
static int save_state(const char *path, const json_t *j, struct kc_error *err)
{
	_cleanup_free_ char *tmp = NULL, *text = json_dumps(j, JSON_COMPACT);
	if (!text || asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	_cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "%s", tmp);
	if (fchmod(fd, 0600) < 0 || kc_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, e, "writing %s", path);
	}
	kc_fsync_parent(path);
	return 0;
}

/* With s->lock held: parse, resolve, render, apply.  *ret_nics counts the
 * NICs protected. */
static int apply_locked(struct kc_agent *a, struct kc_sg *s, const json_t *args, size_t *ret_nics,
			struct kc_error *err)
{
	struct kc_sg_ruleset rs = {0};
	_cleanup_free_ char *text = NULL;
	struct timespec t0, t1;
	char warn[KC_ERROR_MSG_MAX] = "";
	int rc = -1;

	if (kc_sg_ruleset_from_json(args, &rs, err) < 0)
		return -1;
	if (plug_vms(a, &rs, warn, sizeof(warn), err) < 0 || resolve_taps(a, &rs, err) < 0 ||
	    kc_nft_render_sg(&rs, &text, err) < 0)
		goto out;
	size_t nics = 0;
	for (size_t v = 0; v < rs.n_vms; v++)
		for (size_t n = 0; n < rs.vms[v].n_nics; n++)
			nics += rs.vms[v].nics[n].tap[0] != '\0';
	if (nics && bridge_nf_enable(err) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Nothing to protect and no tables of ours: netfilter is left alone
	 * (hosts without groups never see an nft transaction). */
	if ((nics || s->tables) && kc_sg_nft_run(text, err) < 0)
		goto out;
	s->tables = nics > 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->last_ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	now_iso(s->applied_at, sizeof(s->applied_at));
	*ret_nics = nics;
	rc = 0;
out:
	kc_sg_ruleset_clear(&rs);
	snprintf(s->last_error, sizeof(s->last_error), "%s", rc < 0 ? err->message : warn);
	return rc;
}

static void *worker(void *opaque)
{
	struct kc_agent *a = opaque;
	struct kc_sg *s = a->sg;

	pthread_mutex_lock(&s->kick_lock);
	for (;;) {
		while (!s->pending && !s->stop)
			pthread_cond_wait(&s->cond, &s->kick_lock);
		if (s->stop)
			break;
		/* A start fires several events (define, start, resume):
		 * gather them into one apply. */
		pthread_mutex_unlock(&s->kick_lock);
		struct timespec ts = {0, DEBOUNCE_MS * 1000 * 1000};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&s->kick_lock);
		s->pending = false;
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->kick_lock);
		pthread_mutex_lock(&s->lock);
		if (s->current) {
			struct kc_error err = {0};
			size_t nics = 0;
			/* Failures are kept in last_error (sg.show); libvirt down
			 * is retried at the next event or apply. */
			apply_locked(a, s, s->current, &nics, &err);
		}
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_lock(&s->kick_lock);
	}
	pthread_mutex_unlock(&s->kick_lock);
	return NULL;
}

int kc_sg_init(struct kc_agent *a, struct kc_error *err)
{
	struct kc_sg *s = calloc(1, sizeof(*s));
	if (!s || asprintf(&s->state_path, "%s/%s", a->data_dir, STATE_FILE) < 0) {
		free(s);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->kick_lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	a->sg = s;
	/* A ruleset we were sent before a restart: apply it again at once
	 * (the worker does, so start-up does not wait for nft). */
	json_error_t jerr;
	s->current = json_load_file(s->state_path, JSON_REJECT_DUPLICATES, &jerr);
	s->pending = s->current != NULL;
	s->tables = s->current != NULL;
	if (pthread_create(&s->thread, NULL, worker, a) != 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start the security group thread");
	s->thread_started = true;
	return 0;
}

void kc_sg_free(struct kc_agent *a)
{
	struct kc_sg *s = a->sg;
	if (!s)
		return;
	pthread_mutex_lock(&s->kick_lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->kick_lock);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	json_decref(s->current);
	free(s->state_path);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->kick_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
	a->sg = NULL;
}

void kc_sg_kick(struct kc_agent *a)
{
	struct kc_sg *s = a->sg;
	if (!s)
		return;
	pthread_mutex_lock(&s->kick_lock);
	s->pending = true; /* the worker applies only if it has a ruleset */
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->kick_lock);
}

int kc_agent_sg_apply(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	struct kc_sg *s = a->sg;
	size_t nics = 0;

	if (!s)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "security groups are not running");
	pthread_mutex_lock(&s->lock);
	int rc = apply_locked(a, s, args, &nics, err);
	/* Kept only once applied: a refused ruleset (nft said no)
	 * must not come back at the next start. */
	if (rc == 0 && save_state(s->state_path, args, err) < 0)
		rc = -1;
	if (rc == 0) {
		json_decref(s->current);
		s->current = json_deep_copy(args);
	}
	double ms = s->last_ms;
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return -1;
	json_t *r = json_pack("{s:i,s:i,s:f}", "vms",
			      (int)json_array_size(json_object_get(args, "vms")), "nics", (int)nics,
			      "apply_ms", ms);
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}

int kc_agent_sg_show(struct kc_agent *a, json_t **ret, struct kc_error *err)
{
	struct kc_sg *s = a->sg;
	if (!s)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "security groups are not running");
	pthread_mutex_lock(&s->lock);
	json_t *r = json_pack("{s:O?,s:s,s:s,s:f}", "ruleset", s->current, "applied_at",
			      s->applied_at, "last_error", s->last_error, "apply_ms", s->last_ms);
	pthread_mutex_unlock(&s->lock);
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}
