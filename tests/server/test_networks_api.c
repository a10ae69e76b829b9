/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_networks_api.c - the guest network routes (api_networks.c) on an
 * in-process server whose embedded agent drives libvirt's test:///default
 * driver: admins create and delete, users list and use; a VM create on a
 * nat network makes the libvirt network on the host (net.ensure) with the
 * VM's static DHCP entry; addresses show a user only their own; a network
 * in use is not deleted; a VM delete releases its address.
 */
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "db_vms.h"
#include "gnet_host.h"
#include "kctest.h"
#include "srvtest.h"

#include <libvirt/libvirt.h>

static struct srvtest S; /* S.token: the admin's */
static char tok_a[128];

static struct srvtest_reply call(const char *method, const char *path, const char *tok,
				 const char *body)
{
	return srvtest_call(&S, method, path, tok, body);
}

static long status_of(const char *method, const char *path, const char *tok, const char *body)
{
	struct srvtest_reply r = call(method, path, tok, body);
	long st = r.status;
	if (st >= 400)
		kc_test_diag("%s %s: %ld %s", method, path, st, srvtest_err_msg(&r) ?: "");
	srvtest_reply_clear(&r);
	return st;
}

KC_TEST(admins_create_users_list)
{
	if (!KC_CHECK(srvtest_write_fake_image(S.dir)) ||
	    !KC_CHECK(srvtest_make_user(&S, "alice", NULL, tok_a)))
		return;
	struct srvtest_reply r =
		call("POST", "/api/v1/networks", S.token,
		     "{\"name\":\"kcn-nat\",\"kind\":\"nat\",\"cidr\":\"10.99.0.0/24\"}");
	KC_CHECK_INT(r.status, 201);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "bridge")), "kcnat1");
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "gateway")), "10.99.0.1");
	srvtest_reply_clear(&r);
	KC_CHECK_INT(status_of("POST", "/api/v1/networks", tok_a,
			       "{\"name\":\"kcn-x\",\"kind\":\"nat\",\"cidr\":\"10.98.0.0/24\"}"),
		     403);
	r = call("GET", "/api/v1/networks", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "networks")), 1);
	srvtest_reply_clear(&r);
	KC_CHECK_INT(status_of("GET", "/api/v1/networks/kcn-nat", tok_a, NULL), 200);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/networks/kcn-nat", tok_a, NULL), 403);
}

KC_TEST(bad_definitions_are_400_or_409)
{
	static const char *const bad[] = {
		"{\"name\":\"kcn-b\",\"kind\":\"nat\",\"cidr\":\"10.97.0.0/24\",\"bridge\":\"x\"}",
		"{\"name\":\"kcn-b\",\"kind\":\"vlan\",\"backend\":\"linux\",\"bridge\":\"br0\","
		"\"vlan\":7}",
		"{\"name\":\"kcn-b\",\"kind\":\"bridged\",\"bridge\":\"br0\",\"cidr\":\"10.0.0.0/"
		"33\"}",
		"{\"name\":\"kcn-b\",\"kind\":\"bridged\",\"bridge\":\"br0\",\"colour\":1}",
		"{\"name\":\"a..b\",\"kind\":\"bridged\",\"bridge\":\"br0\"}",
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++)
		KC_CHECK_INT(status_of("POST", "/api/v1/networks", S.token, bad[i]), 400);
	KC_CHECK_INT(status_of("POST", "/api/v1/networks", S.token,
			       "{\"name\":\"kcn-nat\",\"kind\":\"bridged\",\"bridge\":\"br0\"}"),
		     409);
}

KC_TEST(vms_get_addresses_on_the_host_network)
{
	KC_CHECK_INT(status_of("POST", "/api/v1/vms", tok_a,
			       "{\"name\":\"kcn-a1\",\"memory_mib\":64,\"image\":\"kctest\","
			       "\"start\":false,\"nics\":[{\"network\":\"kcn-nat\","
			       "\"ip\":\"10.99.0.55\"}]}"),
		     201);
	KC_CHECK_INT(status_of("POST", "/api/v1/vms", S.token,
			       "{\"name\":\"kcn-b1\",\"memory_mib\":64,\"image\":\"kctest\","
			       "\"start\":false,\"nics\":[{\"network\":\"kcn-nat\"}]}"),
		     201);
	KC_CHECK_INT(status_of("POST", "/api/v1/vms", S.token,
			       "{\"name\":\"kcn-b2\",\"memory_mib\":64,\"image\":\"kctest\","
			       "\"start\":false,\"nics\":[{\"network\":\"kcn-nat\","
			       "\"ip\":\"10.99.0.55\"}]}"),
		     409);
	KC_CHECK_INT(status_of("POST", "/api/v1/vms", S.token,
			       "{\"name\":\"kcn-b2\",\"memory_mib\":64,\"image\":\"kctest\","
			       "\"start\":false,\"nics\":[{\"network\":\"kcn-none\"}]}"),
		     400);
	/* The host has the libvirt network, with both static entries. */
	struct srvtest_reply r = call("GET", "/api/v1/networks/kcn-nat", S.token, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "hosts")), 1);
	srvtest_reply_clear(&r);
	virConnectPtr c = virConnectOpen("test:///default");
	virNetworkPtr n = c ? virNetworkLookupByName(c, "kcnat1") : NULL;
	char *xml = n ? virNetworkGetXMLDesc(n, 0) : NULL;
	if (KC_CHECK(xml != NULL)) {
		KC_CHECK(strstr(xml, "ip='10.99.0.55'") != NULL);
		KC_CHECK(strstr(xml, "ip='10.99.0.2'") != NULL);
	}
	free(xml);
	/* The user sees only their own VM's address. */
	r = call("GET", "/api/v1/networks/kcn-nat/addresses", tok_a, NULL);
	json_t *a = json_object_get(r.json, "addresses");
	if (KC_CHECK_INT(json_array_size(a), 1))
		KC_CHECK_STREQ(json_string_value(json_object_get(json_array_get(a, 0), "ip")),
			       "10.99.0.55");
	srvtest_reply_clear(&r);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/networks/kcn-nat", S.token, NULL), 409);
	/* What a VM delete does once the domain is gone (the test driver
	 * cannot undefine with the flags vm.delete uses): the DHCP entry,
	 * then the record and with it the address. */
	struct kc_error err = {0};
	kc_gnet_release_vm(S.srv, S.srv->host_name, "kcn-a1");
	KC_CHECK_INT(kc_db_vm_delete(S.srv->db, "kcn-a1", &err), 0);
	xml = n ? virNetworkGetXMLDesc(n, 0) : NULL;
	KC_CHECK(xml && !strstr(xml, "10.99.0.55") && strstr(xml, "10.99.0.2"));
	free(xml);
	r = call("GET", "/api/v1/networks/kcn-nat/addresses", S.token, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "addresses")), 1);
	srvtest_reply_clear(&r);
	kc_gnet_release_vm(S.srv, S.srv->host_name, "kcn-b1");
	KC_CHECK_INT(kc_db_vm_delete(S.srv->db, "kcn-b1", &err), 0);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/networks/kcn-nat", S.token, NULL), 200);
	if (n)
		virNetworkFree(n);
	n = c ? virNetworkLookupByName(c, "kcnat1") : NULL;
	KC_CHECK(n == NULL);
	if (n)
		virNetworkFree(n);
	if (c)
		virConnectClose(c);
}

SRVTEST_MAIN(S, "networks", SRVTEST_EMBEDDED)
