/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics.c - GET /metrics over real HTTP against an in-process server
 * whose embedded agent talks to libvirt's test:///default driver (its
 * running domain "test" is the VM; KC_TEST_LIBVIRT_URI overrides).  The
 * body is checked line by line against the text exposition format 0.0.4
 * by a small checker that has tests of its own.
 */
#include <ctype.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cleanup.h"
#include "kctest.h"
#include "metrics.h"
#include "server.h"
#include "srvtest.h"

static struct srvtest S;
static const char *uri;

/* ---- the exposition format checker ---- */

#define MAX_FAMILIES 256
#define MAX_SERIES   8192

struct fam {
	char name[128];
	char type[16];
	bool help, done, has_samples;
};

struct expo {
	struct fam fams[MAX_FAMILIES];
	size_t n_fams;
	char *series[MAX_SERIES];
	size_t n_series;
	struct fam *cur; /* the family whose samples are being read */
	char why[512];
	int line;
};

static struct fam *fam_find(struct expo *e, const char *name)
{
	for (size_t i = 0; i < e->n_fams; i++)
		if (strcmp(e->fams[i].name, name) == 0)
			return &e->fams[i];
	return NULL;
}

static struct fam *fam_get(struct expo *e, const char *name)
{
	struct fam *f = fam_find(e, name);
	if (f || e->n_fams == MAX_FAMILIES || strlen(name) >= sizeof(f->name))
		return f;
	f = &e->fams[e->n_fams++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	return f;
}

/* Records why the body is refused: `what`, about `subject` (a line or a
 * name).  Returns false. */
static bool fail(struct expo *e, const char *what, const char *subject)
{
	snprintf(e->why, sizeof(e->why), "line %d: %s: %s", e->line, what, subject);
	return false;
}

/* Length of a metric name at s ([a-zA-Z_:][a-zA-Z0-9_:]*), 0 if none. */
static size_t name_len(const char *s, bool colon)
{
	size_t n = 0;
	while (isalpha((unsigned char)s[n]) || s[n] == '_' || (colon && s[n] == ':') ||
	       (n && isdigit((unsigned char)s[n])))
		n++;
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The family a sample belongs to: its own name, or a histogram's or
 * summary's base for _bucket / _sum / _count. */
static struct fam *sample_family(struct expo *e, const char *name)
{
	struct fam *f = fam_find(e, name);
	if (f && f->type[0])
		return f;
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(sfx); i++) {
		size_t nl = strlen(name), sl = strlen(sfx[i]);
		if (nl <= sl || strcmp(name + nl - sl, sfx[i]) != 0)
			continue;
		char b[128];
		snprintf(b, sizeof(b), "%.*s", (int)(nl - sl), name);
		struct fam *bf = fam_find(e, b);
		if (bf && (strcmp(bf->type, "histogram") == 0 ||
			   (i > 0 && strcmp(bf->type, "summary") == 0)))
			return bf;
	}
	return f;
}

static bool check_sample(struct expo *e, const char *l)
{
	char name[128];
	size_t n = name_len(l, true);
	if (n == 0 || n >= sizeof(name))
		return fail(e, "bad metric name", l);
	snprintf(name, sizeof(name), "%.*s", (int)n, l);
	const char *p = l + n;
	/* Labels, as name="value" pairs; sorted into the series key so that
	 * label order does not hide a duplicate. */
	char *labels[32];
	size_t n_labels = 0;
	bool has_le = false;
	const char *bad = NULL;
	if (*p == '{') {
		p++;
		while (!bad && *p != '}') {
			size_t ln = name_len(p, false);
			if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"' || n_labels == 32) {
				bad = "bad label";
				break;
			}
			const char *start = p;
			has_le |= ln == 2 && strncmp(p, "le", 2) == 0;
			p += ln + 2;
			while (!bad && *p && *p != '"') {
				if (*p == '\\' && p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					bad = "bad escape";
				p += *p == '\\' ? 2 : 1;
			}
			if (bad)
				break;
			if (*p != '"') {
				bad = "unterminated label value";
				break;
			}
			p++;
			for (size_t i = 0; i < n_labels; i++)
				if (strchr(labels[i], '=') - labels[i] == (ptrdiff_t)ln &&
				    strncmp(labels[i], start, ln) == 0)
					bad = "label repeated";
			labels[n_labels++] = strndup(start, p - start);
			if (*p == ',')
				p++;
			else if (*p != '}')
				bad = "expected , or }";
		}
		p++;
	}
	if (bad) {
		for (size_t k = 0; k < n_labels; k++)
			free(labels[k]);
		return fail(e, bad, l);
	}
	char key[2048];
	size_t kl = snprintf(key, sizeof(key), "%s", name);
	qsort(labels, n_labels, sizeof(labels[0]), cmp_str);
	for (size_t i = 0; i < n_labels; i++) {
		kl += snprintf(key + kl, kl < sizeof(key) ? sizeof(key) - kl : 0, ",%s", labels[i]);
		free(labels[i]);
	}
	if (kl >= sizeof(key))
		return fail(e, "series too long", l);
	if (*p != ' ')
		return fail(e, "expected one space before the value", l);
	p++;
	char *end = NULL;
	if (strcmp(p, "+Inf") != 0 && strcmp(p, "-Inf") != 0 && strcmp(p, "NaN") != 0) {
		if (!*p || isspace((unsigned char)*p))
			return fail(e, "missing value", l);
		double v = strtod(p, &end);
		if (*end != '\0' || isnan(v))
			return fail(e, "bad value (or a trailing part)", l);
	}

	struct fam *f = sample_family(e, name);
	if (!f || !f->help || !f->type[0])
		return fail(e, "sample before its # HELP and # TYPE", l);
	if (strcmp(f->type, "counter") == 0 &&
	    (strlen(f->name) < 6 || strcmp(f->name + strlen(f->name) - 6, "_total") != 0))
		return fail(e, "counter not named *_total", f->name);
	if (strcmp(f->type, "histogram") == 0 && strstr(name, "_bucket") && !has_le)
		return fail(e, "histogram bucket without le", l);
	if (f != e->cur) {
		if (f->done)
			return fail(e, "samples not together", f->name);
		if (e->cur)
			e->cur->done = true;
		e->cur = f;
	}
	f->has_samples = true;
	if (e->n_series == MAX_SERIES)
		return fail(e, "too many series", l);
	e->series[e->n_series++] = strdup(key);
	return true;
}

static bool check_comment(struct expo *e, const char *l)
{
	bool help = strncmp(l, "# HELP ", 7) == 0, type = strncmp(l, "# TYPE ", 7) == 0;
	if (!help && !type)
		return true; /* a plain comment */
	const char *p = l + 7;
	size_t n = name_len(p, true);
	if (n == 0 || n >= 128 || (p[n] != ' ' && !(help && p[n] == '\0')))
		return fail(e, "bad name", l);
	char name[128];
	snprintf(name, sizeof(name), "%.*s", (int)n, p);
	struct fam *f = fam_get(e, name);
	if (!f)
		return fail(e, "too many families", l);
	if (f->has_samples)
		return fail(e, "HELP or TYPE after samples", name);
	if (help) {
		if (f->help)
			return fail(e, "second # HELP", name);
		for (const char *d = p + n; *d; d++)
			if (*d == '\\' && d[1] != '\\' && d[1] != 'n')
				return fail(e, "bad escape in HELP", name);
		f->help = true;
		return true;
	}
	static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
	if (f->type[0])
		return fail(e, "second # TYPE", name);
	for (size_t i = 0; i < KC_ARRAY_SIZE(types); i++)
		if (strcmp(p + n + 1, types[i]) == 0)
			snprintf(f->type, sizeof(f->type), "%s", types[i]);
	if (!f->type[0])
		return fail(e, "unknown type", l);
	return true;
}

static void expo_free(struct expo *e)
{
	for (size_t i = 0; i < e->n_series; i++)
		free(e->series[i]);
	free(e);
}

/* Checks a whole body; on failure *why (malloc'd) says where. */
static bool expo_check(const char *text, char **why)
{
	struct expo *e = calloc(1, sizeof(*e));
	bool ok = true;
	size_t len = strlen(text);

	if (len == 0 || text[len - 1] != '\n') {
		*why = strdup("body does not end with a newline");
		free(e);
		return false;
	}
	_cleanup_free_ char *copy = strdup(text);
	char *save = NULL;
	/* strtok_r skips empty lines, which the format allows anyway. */
	for (char *l = strtok_r(copy, "\n", &save); ok && l; l = strtok_r(NULL, "\n", &save)) {
		e->line++;
		ok = l[0] == '#' ? check_comment(e, l) : check_sample(e, l);
	}
	if (ok) {
		qsort(e->series, e->n_series, sizeof(e->series[0]), cmp_str);
		for (size_t i = 1; ok && i < e->n_series; i++)
			if (strcmp(e->series[i - 1], e->series[i]) == 0)
				ok = fail(e, "duplicate series", e->series[i]);
	}
	if (!ok)
		*why = strdup(e->why);
	expo_free(e);
	return ok;
}

/* The value of one series given exactly as written, NAN if absent. */
static double series_value(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return NAN;
}

/* ---- HTTP ---- */

static struct srvtest_reply get(const char *path, const char *tok)
{
	return srvtest_call(&S, "GET", path, tok, NULL);
}

/* ---- tests ---- */

static char *escaped(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	kc_metrics_put_label_value(f, s);
	fclose(f);
	return buf;
}

KC_TEST(label_values_are_escaped)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", ""},
		{"web1", "web1"},
		{"a\"b", "a\\\"b"},
		{"a\\b", "a\\\\b"},
		{"a\nb", "a\\nb"},
		{"\\\"\n", "\\\\\\\"\\n"},
		{"tab\there\rcr", "tab\there\rcr"}, /* the format escapes only three */
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
		{"bad\xff", "bad\xef\xbf\xbd"},			  /* not UTF-8 */
		{"cut\xc3", "cut\xef\xbf\xbd"},			  /* truncated sequence */
		{"over\xc0\xaf", "over\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong '/' */
		{"sur\xed\xa0\x80", "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = escaped(cases[i].in);
		KC_CHECK_STREQ(got, cases[i].out);
	}
	_cleanup_free_ char *null = escaped(NULL);
	KC_CHECK_STREQ(null, "");
}

KC_TEST(checker_accepts_valid_and_rejects_invalid_bodies)
{
	static const char good[] = "# HELP a_total A.\n# TYPE a_total counter\n"
				   "a_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\na_total{x=\"2\"} 4.5\n"
				   "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
				   "h_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n"
				   "# HELP g G.\n# TYPE g gauge\ng +Inf\n";
	static const struct {
		const char *body, *why;
	} bad[] = {
		{"# TYPE a gauge\na 1\n", "no HELP"},
		{"# HELP a A.\na 1\n", "no TYPE"},
		{"a 1\n# HELP a A.\n# TYPE a gauge\n", "samples before metadata"},
		{"# HELP a A.\n# TYPE a gauge\na 1\na 2\n", "duplicate series"},
		{"# HELP a A.\n# TYPE a gauge\na{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n",
		 "duplicate series, labels reordered"},
		{"# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b B.\n# TYPE b gauge\nb 1\n"
		 "a{x=\"2\"} 1\n",
		 "samples of one family apart"},
		{"# HELP a A.\n# TYPE a gauge\na{x=\"1\"}  1\n", "two spaces"},
		{"# HELP a A.\n# TYPE a gauge\na{x=\"a\\tb\"} 1\n", "bad escape"},
		{"# HELP a A.\n# TYPE a gauge\na{x=\"1} 1\n", "unterminated value"},
		{"# HELP a A.\n# TYPE a gauge\na{x=1} 1\n", "unquoted value"},
		{"# HELP a A.\n# TYPE a gauge\na one\n", "bad number"},
		{"# HELP a A.\n# TYPE a gauge\na 1", "no final newline"},
		{"# HELP a A.\n# TYPE a counter\na 1\n", "counter without _total"},
		{"# HELP a A.\n# TYPE a gauge\n9a 1\n", "bad name"},
		{"# HELP a A.\n# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n", "label repeated"},
		{"# HELP a A.\n# TYPE a nonsense\n", "unknown type"},
	};
	char *why = NULL;
	KC_CHECK(expo_check(good, &why));
	if (why)
		kc_test_diag("good body refused: %s", why);
	free(why);
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		why = NULL;
		if (!KC_CHECK(!expo_check(bad[i].body, &why)))
			kc_test_diag("accepted: %s", bad[i].why);
		else
			kc_test_diag("%s: %s", bad[i].why, why);
		free(why);
	}
}

KC_TEST(metrics_needs_the_token)
{
	struct srvtest_reply r = get("/metrics", NULL);
	KC_CHECK_INT(r.status, 401);
	KC_CHECK(r.body && !strstr(r.body, "kvmcloud_"));
	srvtest_reply_clear(&r);
	r = get("/metrics", "0000000000000000000000000000000000000000000000000000000000000000");
	KC_CHECK_INT(r.status, 401);
	srvtest_reply_clear(&r);
}

KC_TEST(metrics_is_valid_exposition_format_with_the_expected_series)
{
	struct srvtest_reply r = get("/metrics", S.token);
	char series[512];
	const char *host = S.srv->host_name;

	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
	if (!KC_CHECK(r.body))
		return;
	char *why = NULL;
	if (!KC_CHECK(expo_check(r.body, &why)))
		kc_test_diag("%s", why);
	free(why);

	snprintf(series, sizeof(series), "kvmcloud_host_up{host=\"%s\"}", host);
	KC_CHECK(series_value(r.body, series) == 1);
	snprintf(series, sizeof(series), "kvmcloud_host_accel{host=\"%s\",accel=\"tcg\"}", host);
	KC_CHECK(series_value(r.body, series) == 1);
	snprintf(series, sizeof(series), "kvmcloud_host_cpus{host=\"%s\"}", host);
	KC_CHECK(series_value(r.body, series) > 0);
	snprintf(series, sizeof(series), "kvmcloud_host_memory_bytes{host=\"%s\"}", host);
	KC_CHECK(series_value(r.body, series) > 0);
	/* The test driver's running domain "test". */
	snprintf(series, sizeof(series),
		 "kvmcloud_vm_state{host=\"%s\",vm=\"test\",state=\"running\"}", host);
	KC_CHECK(series_value(r.body, series) == 1);
	/* The 401s of the test before, counted in the request path. */
	KC_CHECK(series_value(r.body,
			      "kvmcloud_server_requests_total{method=\"GET\",code=\"401\"}") >= 2);
	KC_CHECK(series_value(r.body, "kvmcloud_server_request_duration_seconds_count") >= 2);
	KC_CHECK(series_value(r.body,
			      "kvmcloud_server_request_duration_seconds_bucket{le=\"+Inf\"}") ==
		 series_value(r.body, "kvmcloud_server_request_duration_seconds_count"));
	KC_CHECK(series_value(r.body, "kvmcloud_server_resident_memory_bytes") > 1e6);
	KC_CHECK(series_value(r.body, "kvmcloud_server_uptime_seconds") >= 0);
	KC_CHECK(series_value(r.body, "kvmcloud_server_vms{state=\"running\"}") == 0);
	for (const char *fam = "kvmcloud_vm_cpu_seconds_total\0kvmcloud_vm_disk_read_bytes_total\0"
			       "kvmcloud_vm_network_receive_bytes_total\0kvmcloud_server_vms\0";
	     *fam; fam += strlen(fam) + 1) {
		snprintf(series, sizeof(series), "# TYPE %s ", fam);
		KC_CHECK(strstr(r.body, series) != NULL);
	}
	srvtest_reply_clear(&r);

	/* Counters move: the scrape above is counted in the next one. */
	r = get("/metrics", S.token);
	double before = series_value(r.body, "kvmcloud_server_requests_total{method=\"GET\","
					     "code=\"200\"}");
	srvtest_reply_clear(&r);
	r = get("/metrics", S.token);
	double after = series_value(r.body, "kvmcloud_server_requests_total{method=\"GET\","
					    "code=\"200\"}");
	KC_CHECK(before >= 1 && after == before + 1);
	srvtest_reply_clear(&r);
}

/* A domain whose name holds a quote and a backslash (libvirt allows both;
 * kvmcloud's validator does not, so it can only come from outside). */
KC_TEST(awkward_domain_names_are_escaped)
{
	static const char xml[] = "<domain type='test'><name>kcmet\"q\\b</name>"
				  "<memory>65536</memory><os><type>hvm</type></os></domain>";
	virConnectPtr c = virConnectOpen(uri);
	virDomainPtr d = c ? virDomainDefineXML(c, xml) : NULL;
	if (!KC_CHECK(d)) {
		if (c)
			virConnectClose(c);
		return;
	}
	struct srvtest_reply r = get("/metrics", S.token);
	char series[512], *why = NULL;
	snprintf(series, sizeof(series),
		 "kvmcloud_vm_state{host=\"%s\",vm=\"kcmet\\\"q\\\\b\",state=\"shutoff\"}",
		 S.srv->host_name);
	KC_CHECK(r.body && series_value(r.body, series) == 1);
	if (!KC_CHECK(r.body && expo_check(r.body, &why)))
		kc_test_diag("%s", why);
	free(why);
	srvtest_reply_clear(&r);
	virDomainUndefine(d);
	virDomainFree(d);
	virConnectClose(c);
}

static void quiet(void *opaque, virErrorPtr e)
{
}

int main(void)
{
	uri = getenv("KC_TEST_LIBVIRT_URI");
	if (!uri)
		uri = "test:///default";
	virSetErrorFunc(NULL, quiet);
	if (!srvtest_init(&S, "metrics", SRVTEST_EMBEDDED))
		return 1;
	if (srvtest_start(&S)) {
		kc_test_run_registered();
	} else {
		kc_test_begin("server starts");
		KC_CHECK(false);
		kc_test_end();
	}
	srvtest_cleanup(&S);
	return kc_test_finish();
}
