/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cpucheck.c - what a host's hello tells the inventory beyond its facts:
 * whether its CPU matches its cluster's (the seeds' rule: one CPU model
 * and feature set per cluster, so that a VM can run, and later migrate,
 * anywhere in it), and whether it runs domains kvmcloud has no record of.
 *
 * A host that differs is flagged, not refused: refusing the link would
 * also cut the server off from the VMs already running there (no state,
 * no console, no delete), and the admin may well fix the cluster rather
 * than the host.  The scheduler places nothing on a flagged host.
 */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "reconcile.h"

/* Named in the flag: at most this many missing / extra features. */
#define MAX_NAMED_FEATURES 6

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *kc_cpu_signature(const json_t *facts)
{
	const json_t *model = json_object_get(facts, "cpu_model");
	const json_t *vendor = json_object_get(facts, "cpu_vendor");
	const json_t *features = json_object_get(facts, "cpu_features");
	json_t *sig = json_object();
	size_t i, n = 0;
	json_t *f;

	if (!sig)
		return NULL;
	json_object_set_new(sig, "model", json_is_string(model) ? json_copy((json_t *)model)
								 : json_null());
	json_object_set_new(sig, "vendor", json_is_string(vendor) ? json_copy((json_t *)vendor)
								   : json_null());
	if (!json_is_array(features))
		return sig;
	const char **names = calloc(json_array_size(features) + 1, sizeof(*names));
	if (!names)
		return sig;
	json_array_foreach(features, i, f) if (json_is_string(f)) names[n++] = json_string_value(f);
	qsort(names, n, sizeof(*names), cmp_str);
	json_t *sorted = json_array();
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
			json_array_append_new(sorted, json_string(names[i]));
	free(names);
	json_object_set_new(sig, "features", sorted);
	return sig;
}

/* Appends to `buf` the features of `a` not in `b` (both sorted arrays). */
static void list_missing(const json_t *a, const json_t *b, char *buf, size_t len)
{
	size_t i, shown = 0, more = 0, off = strlen(buf);
	json_t *f;

	json_array_foreach(a, i, f)
	{
		bool found = false;
		size_t j;
		json_t *g;
		json_array_foreach(b, j, g) if (json_equal(f, g)) found = true;
		if (found)
			continue;
		if (shown == MAX_NAMED_FEATURES) {
			more++;
			continue;
		}
		int w = snprintf(buf + off, len - off, "%s%s", shown ? "," : "",
				 json_string_value(f));
		if (w < 0 || (size_t)w >= len - off)
			return;
		off += (size_t)w;
		shown++;
	}
	if (more)
		snprintf(buf + off, len - off, " and %zu more", more);
}

int kc_cluster_cpu_check(struct kc_db *db, const char *host, const json_t *facts,
			 struct kc_error *err)
{
	_cleanup_json_ json_t *h = NULL;
	_cleanup_json_ json_t *cl = NULL;
	_cleanup_json_ json_t *sig = kc_cpu_signature(facts);

	if (!sig)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_query_row(db, "SELECT cluster FROM hosts WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(host)), &h, err) < 0)
		return -1;
	const char *cluster = json_string_value(json_object_get(h, "cluster"));
	if (!cluster)
		return kc_db_host_set_flag(db, host, "cpu_mismatch", NULL, err);
	if (kc_db_cluster_get(db, cluster, &cl, err) < 0)
		return -1;
	const char *model = json_string_value(json_object_get(sig, "model"));
	const char *cmodel = json_string_value(json_object_get(cl, "cpu_model"));
	const json_t *csig = json_object_get(cl, "cpu_signature");
	if (!cmodel && !json_is_object(csig))
		/* The first host of the cluster to report sets its CPU. */
		return kc_db_cluster_set_cpu(db, cluster, model, sig, err) < 0
			       ? -1
			       : kc_db_host_set_flag(db, host, "cpu_mismatch", NULL, err);

	char why[300] = "";
	const char *cvendor = json_string_value(json_object_get(csig, "vendor"));
	const char *vendor = json_string_value(json_object_get(sig, "vendor"));
	if (!model || !cmodel || strcmp(model, cmodel) != 0)
		snprintf(why, sizeof(why), "model %s vs cluster's %s", model ? model : "unknown",
			 cmodel ? cmodel : "unknown");
	else if (cvendor && vendor && strcmp(cvendor, vendor) != 0)
		snprintf(why, sizeof(why), "vendor %s vs cluster's %s", vendor, cvendor);
	const json_t *cf = json_object_get(csig, "features");
	const json_t *hf = json_object_get(sig, "features");
	if (json_is_array(cf) && json_is_array(hf) && !json_equal(cf, hf)) {
		char missing[200] = "";
		list_missing(cf, hf, missing, sizeof(missing));
		if (missing[0]) {
			size_t off = strlen(why);
			snprintf(why + off, sizeof(why) - off, "%smissing features %s",
				 off ? "; " : "", missing);
		} else if (!why[0]) {
			char extra[200] = "";
			list_missing(hf, cf, extra, sizeof(extra));
			snprintf(why, sizeof(why), "extra features %s", extra);
		}
	}
	return kc_db_host_set_flag(db, host, "cpu_mismatch", why[0] ? why : NULL, err);
}

int kc_note_unmanaged(struct kc_db *db, const char *host, const json_t *domains,
		      struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i, n = 0;
	json_t *d;

	if (kc_db_query(db, "SELECT name FROM vms", NULL, 0, &rows, err) < 0)
		return -1;
	_cleanup_json_ json_t *known = kc_index_by_name(rows);
	if (!known)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_array_foreach(domains, i, d)
	{
		const char *name = json_string_value(json_object_get(d, "name"));
		if (name && !json_object_get(known, name))
			n++;
	}
	char detail[32];
	snprintf(detail, sizeof(detail), "%zu", n);
	return kc_db_host_set_flag(db, host, "unmanaged_vms", n ? detail : NULL, err);
}
