/* SPDX-License-Identifier: Apache-2.0 */
/* hostfacts.c - what the host is: CPUs, memory, NUMA, versions. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"

int kc_host_limits(virConnectPtr conn, unsigned *ret_cpus, uint64_t *ret_mem_kib,
		   struct kc_error *err)
{
	virNodeInfo ni;
	if (virNodeGetInfo(conn, &ni) < 0)
		return kc_lverr(err, "reading host info");
	*ret_cpus = ni.cpus;
	*ret_mem_kib = ni.memory;
	return 0;
}

int kc_host_versions(virConnectPtr conn, unsigned long *ret_libvirt, unsigned long *ret_qemu,
		     struct kc_error *err)
{
	if (virConnectGetLibVersion(conn, ret_libvirt) < 0)
		return kc_lverr(err, "reading the libvirt version");
	if (virConnectGetVersion(conn, ret_qemu) < 0)
		return kc_lverr(err, "reading the QEMU version");
	return 0;
}

int kc_host_arch(virConnectPtr conn, char *buf, size_t len, struct kc_error *err)
{
	struct utsname u;
	if (uname(&u) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "uname");
	snprintf(buf, len, "%s", u.machine);
	return 0;
}

/* Capabilities XML: the bits virNodeGetInfo does not have. */
static int caps_parse(virConnectPtr conn, json_t *o, struct kc_error *err)
{
	_cleanup_free_ char *xml = virConnectGetCapabilities(conn);
	if (!xml)
		return kc_lverr(err, "reading host capabilities");
	xmlDocPtr doc = xmlReadMemory(xml, strlen(xml), "caps.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return kc_error_set(err, KC_ERR_HYPERVISOR, "cannot parse host capabilities");
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	_cleanup_free_ char *uuid = kc_xpath_string(ctx, "string(/capabilities/host/uuid)");
	_cleanup_free_ char *arch = kc_xpath_string(ctx, "string(/capabilities/host/cpu/arch)");
	_cleanup_free_ char *model = kc_xpath_string(ctx, "string(/capabilities/host/cpu/model)");
	long cells = kc_xpath_long(ctx, "string(/capabilities/host/topology/cells/@num)", 1);
	long sockets = kc_xpath_long(ctx, "string(/capabilities/host/cpu/topology/@sockets)", -1);
	long cores = kc_xpath_long(ctx, "string(/capabilities/host/cpu/topology/@cores)", -1);
	long threads = kc_xpath_long(ctx, "string(/capabilities/host/cpu/topology/@threads)", -1);
	_cleanup_free_ char *vendor = kc_xpath_string(ctx, "string(/capabilities/host/cpu/vendor)");
	/* The features the cluster CPU rule compares (server's cpucheck.c). */
	json_t *features = json_array();
	xmlXPathObjectPtr fo = xmlXPathEvalExpression(
		(const xmlChar *)"/capabilities/host/cpu/feature/@name", ctx);
	for (int i = 0; fo && fo->nodesetval && i < fo->nodesetval->nodeNr; i++) {
		xmlChar *v = xmlNodeGetContent(fo->nodesetval->nodeTab[i]);
		if (v)
			json_array_append_new(features, json_string((const char *)v));
		xmlFree(v);
	}
	xmlXPathFreeObject(fo);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	if (vendor)
		json_object_set_new(o, "cpu_vendor", json_string(vendor));
	json_object_set_new(o, "cpu_features", features);
	json_object_set_new(o, "uuid", uuid ? json_string(uuid) : json_null());
	if (arch)
		json_object_set_new(o, "arch", json_string(arch));
	json_object_set_new(o, "cpu_model", model ? json_string(model) : json_null());
	json_object_set_new(o, "numa_cells", json_integer(cells));
	/* Capabilities' topology is per NUMA cell and socket; prefer it. */
	if (sockets > 0)
		json_object_set_new(o, "sockets", json_integer(sockets * cells));
	if (cores > 0)
		json_object_set_new(o, "cores", json_integer(cores));
	if (threads > 0)
		json_object_set_new(o, "threads", json_integer(threads));
	return 0;
}

int kc_host_facts_collect(struct kc_agent *a, virConnectPtr conn, json_t **ret,
			  struct kc_error *err)
{
	virNodeInfo ni;
	if (virNodeGetInfo(conn, &ni) < 0)
		return kc_lverr(err, "reading host info");
	unsigned long lv, qv;
	if (kc_host_versions(conn, &lv, &qv, err) < 0)
		return -1;
	char lvs[32], qvs[32];
	kc_version_str(lv, lvs, sizeof(lvs));
	kc_version_str(qv, qvs, sizeof(qvs));

	_cleanup_json_ json_t *o = json_object();
	json_object_set_new(o, "name", json_string(a->host_name));
	json_object_set_new(o, "arch", json_string(ni.model));
	json_object_set_new(o, "cpus", json_integer(ni.cpus));
	json_object_set_new(o, "sockets", json_integer(ni.sockets * ni.nodes));
	json_object_set_new(o, "cores", json_integer(ni.cores));
	json_object_set_new(o, "threads", json_integer(ni.threads));
	json_object_set_new(o, "mhz", json_integer(ni.mhz));
	json_object_set_new(o, "memory_kib", json_integer(ni.memory));
	if (caps_parse(conn, o, err) < 0)
		return -1;
	json_object_set_new(o, "libvirt_version", json_string(lvs));
	json_object_set_new(o, "qemu_version", json_string(qvs));
	pthread_mutex_lock(&a->conn_lock);
	json_object_set_new(o, "accel", json_string(kc_accel_name(a->accel)));
	json_object_set_new(o, "accel_reason", json_string(a->accel_reason));
	pthread_mutex_unlock(&a->conn_lock);
	*ret = steal_ptr(&o);
	return 0;
}
