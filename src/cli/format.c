/* SPDX-License-Identifier: Apache-2.0 */
#include "format.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

#define TABLE_MAX_COLS 10

struct table {
	size_t ncols;
	size_t nrows;
	size_t cap;
	char **cells; /* nrows * ncols, each owned and sanitized */
};

static char *sanitize(const char *s)
{
	char *r = strdup(s ? s : "-");
	if (!r)
		abort(); /* a CLI out of memory printing a table has nothing better to do */
	for (char *p = r; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return r;
}

void kc_fmt_safe(FILE *out, const char *s)
{
	_cleanup_free_ char *t = sanitize(s);
	fputs(t, out);
}

static void table_row(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
		if (!t->cells)
			abort();
	}
	for (size_t c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = sanitize(cells[c]);
	t->nrows++;
}

/* Columns are two spaces apart; the last one is not padded, so that lines
 * carry no trailing blanks. */
static void table_print(FILE *out, struct table *t)
{
	size_t width[TABLE_MAX_COLS] = {0};
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = strlen(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			if (c + 1 < t->ncols)
				fprintf(out, "%-*s  ", (int)width[c], cell);
			else
				fprintf(out, "%s\n", cell);
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

static const char *str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s && *s ? s : NULL;
}

/* Integer field as text into buf, or NULL when absent. */
static const char *num(const json_t *obj, const char *key, char *buf, size_t size)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v))
		return NULL;
	snprintf(buf, size, "%lld", (long long)json_integer_value(v));
	return buf;
}

void kc_fmt_mib(char *buf, size_t size, long long mib)
{
	if (mib >= 1024 && mib % 1024 == 0)
		snprintf(buf, size, "%lldGiB", mib / 1024);
	else
		snprintf(buf, size, "%lldMiB", mib);
}

void kc_fmt_kib(char *buf, size_t size, long long kib)
{
	if (kib >= 1024 * 1024)
		snprintf(buf, size, "%.1fGiB", (double)kib / (1024.0 * 1024.0));
	else
		snprintf(buf, size, "%lldMiB", kib / 1024);
}

static const json_t *list_of(const json_t *j, const char *key)
{
	return json_is_array(j) ? j : json_object_get(j, key);
}

/* The VM's host's state: GET /vms has it as host_state; the --live view
 * has only host_reachable (false: the record's host did not answer). */
static const char *vm_host_state(const json_t *vm)
{
	const char *s = str(vm, "host_state");
	if (s)
		return s;
	return json_is_false(json_object_get(vm, "host_reachable")) ? "unreachable" : NULL;
}

void kc_fmt_vm_table(FILE *out, const json_t *vms)
{
	static const char *const head[] = {"NAME",  "STATE",  "HOST", "HOST-STATE",
					   "VCPUS", "MEMORY", "IMAGE"};
	struct table t = {.ncols = KC_ARRAY_SIZE(head)};
	table_row(&t, head);
	size_t i;
	const json_t *vm;
	json_array_foreach(list_of(vms, "vms"), i, vm)
	{
		char vcpus[32], mem[32] = "-";
		json_t *m = json_object_get(vm, "memory_mib");
		if (json_is_integer(m))
			kc_fmt_mib(mem, sizeof(mem), json_integer_value(m));
		const char *row[] = {str(vm, "name"),
				     str(vm, "state"),
				     str(vm, "host"),
				     vm_host_state(vm),
				     num(vm, "vcpus", vcpus, sizeof(vcpus)),
				     mem,
				     str(vm, "image")};
		table_row(&t, row);
	}
	table_print(out, &t);
}

void kc_fmt_host_table(FILE *out, const json_t *hosts)
{
	static const char *const head[] = {"NAME",   "STATE",	"ACCEL", "CPUS",
					   "MEMORY", "LIBVIRT", "QEMU",	 "CHECK"};
	struct table t = {.ncols = KC_ARRAY_SIZE(head)};
	table_row(&t, head);
	size_t i;
	const json_t *h;
	json_array_foreach(list_of(hosts, "hosts"), i, h)
	{
		const json_t *facts = json_object_get(h, "facts");
		char cpus[32], mem[32] = "-";
		json_t *m = json_object_get(facts, "memory_kib");
		if (json_is_integer(m))
			kc_fmt_kib(mem, sizeof(mem), json_integer_value(m));
		const char *row[] = {str(h, "name"),
				     str(h, "state"),
				     str(h, "accel"),
				     num(facts, "cpus", cpus, sizeof(cpus)),
				     mem,
				     str(facts, "libvirt_version"),
				     str(facts, "qemu_version"),
				     str(json_object_get(h, "check"), "summary")};
		table_row(&t, row);
	}
	table_print(out, &t);
	/* Why the scheduler avoids a host, under the table (rare, long). */
	json_array_foreach(list_of(hosts, "hosts"), i, h)
	{
		size_t j;
		const json_t *f;
		json_array_foreach(json_object_get(h, "flags"), j, f)
		{
			kc_fmt_safe(out, str(h, "name"));
			fputs(": flagged ", out);
			kc_fmt_safe(out, json_string_value(f));
			fputc('\n', out);
		}
	}
}

/* "Key:" padded so that values line up in one column. */
#define KEY_WIDTH 14

static void kv(FILE *out, const char *key, const char *value)
{
	fprintf(out, "%s:%*s", key, (int)(KEY_WIDTH - strlen(key)), "");
	kc_fmt_safe(out, value);
	fputc('\n', out);
}

static const char *yesno(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_boolean(v) ? (json_is_true(v) ? "yes" : "no") : NULL;
}

void kc_fmt_vm_show(FILE *out, const json_t *vm)
{
	char buf[64], line[512], key[32];
	kv(out, "Name", str(vm, "name"));
	kv(out, "UUID", str(vm, "uuid"));
	kv(out, "State", str(vm, "state"));
	if (json_is_boolean(json_object_get(vm, "forced")))
		kv(out, "Forced off", yesno(vm, "forced"));
	kv(out, "Host", str(vm, "host"));
	kv(out, "Managed", yesno(vm, "managed"));
	kv(out, "Accel", str(vm, "accel"));
	kv(out, "CPU mode", str(vm, "cpu_mode"));
	kv(out, "vCPUs", num(vm, "vcpus", buf, sizeof(buf)));
	json_t *m = json_object_get(vm, "memory_mib");
	if (json_is_integer(m))
		kc_fmt_mib(buf, sizeof(buf), json_integer_value(m));
	kv(out, "Memory", json_is_integer(m) ? buf : NULL);
	kv(out, "Image", str(vm, "image"));
	kv(out, "Autostart", yesno(vm, "autostart"));
	kv(out, "Graphics", str(vm, "graphics"));
	const json_t *vnc = json_object_get(vm, "vnc");
	if (json_is_object(vnc)) {
		snprintf(line, sizeof(line), "%s:%lld",
			 str(vnc, "listen") ? str(vnc, "listen") : "-",
			 (long long)json_integer_value(json_object_get(vnc, "port")));
		kv(out, "VNC", line);
	}
	size_t i;
	const json_t *d;
	json_array_foreach(json_object_get(vm, "disks"), i, d)
	{
		json_t *cap = json_object_get(d, "capacity_bytes");
		char size[32] = "-";
		if (json_is_integer(cap) && json_integer_value(cap) < (1 << 20))
			snprintf(size, sizeof(size), "%lldKiB",
				 ((long long)json_integer_value(cap) + 1023) / 1024);
		else if (json_is_integer(cap))
			kc_fmt_mib(size, sizeof(size), json_integer_value(cap) >> 20);
		snprintf(key, sizeof(key), "Disk %s", str(d, "target") ? str(d, "target") : "?");
		if (strlen(key) > KEY_WIDTH)
			key[KEY_WIDTH] = '\0';
		snprintf(line, sizeof(line), "%s %s %s %s",
			 str(d, "device") ? str(d, "device") : "-",
			 str(d, "format") ? str(d, "format") : "-", size,
			 str(d, "path") ? str(d, "path") : "-");
		kv(out, key, line);
	}
	const json_t *n;
	json_array_foreach(json_object_get(vm, "nics"), i, n)
	{
		snprintf(key, sizeof(key), "NIC %zu", i);
		const char *src = str(n, "source");
		snprintf(line, sizeof(line), "%s%s%s %s", str(n, "type") ? str(n, "type") : "-",
			 src ? " " : "", src ? src : "", str(n, "mac") ? str(n, "mac") : "-");
		kv(out, key, line);
	}
	kv(out, "Created", str(vm, "created_at"));
}

void kc_fmt_check_items(FILE *out, const json_t *check, int indent)
{
	size_t i;
	const json_t *item;
	json_array_foreach(json_object_get(check, "items"), i, item)
	{
		const char *st = str(item, "status");
		const char *label = !st			      ? "????"
				    : strcmp(st, "pass") == 0 ? "PASS"
				    : strcmp(st, "warn") == 0 ? "WARN"
				    : strcmp(st, "fail") == 0 ? "FAIL"
							      : "????";
		fprintf(out, "%*s%s ", indent, "", label);
		kc_fmt_safe(out, str(item, "name"));
		fputs(": ", out);
		kc_fmt_safe(out, str(item, "reason"));
		fputc('\n', out);
	}
}

void kc_fmt_host_show(FILE *out, const json_t *host)
{
	const json_t *f = json_object_get(host, "facts");
	char buf[64], line[256];
	kv(out, "Name", str(host, "name"));
	kv(out, "UUID", str(host, "uuid"));
	kv(out, "State", str(host, "state"));
	kv(out, "Accel", str(host, "accel"));
	if (str(host, "accel_reason"))
		kv(out, "Accel reason", str(host, "accel_reason"));
	kv(out, "Arch", str(f, "arch"));
	kv(out, "CPU model", str(f, "cpu_model"));
	char s[32], c[32], t[32];
	if (num(f, "cpus", buf, sizeof(buf))) {
		snprintf(line, sizeof(line), "%s (%s sockets, %s cores, %s threads)", buf,
			 num(f, "sockets", s, sizeof(s)) ? s : "-",
			 num(f, "cores", c, sizeof(c)) ? c : "-",
			 num(f, "threads", t, sizeof(t)) ? t : "-");
		kv(out, "CPUs", line);
	} else {
		kv(out, "CPUs", NULL);
	}
	kv(out, "MHz", num(f, "mhz", buf, sizeof(buf)));
	kv(out, "NUMA cells", num(f, "numa_cells", buf, sizeof(buf)));
	json_t *m = json_object_get(f, "memory_kib");
	if (json_is_integer(m))
		kc_fmt_kib(buf, sizeof(buf), json_integer_value(m));
	kv(out, "Memory", json_is_integer(m) ? buf : NULL);
	kv(out, "libvirt", str(f, "libvirt_version"));
	kv(out, "QEMU", str(f, "qemu_version"));
	kv(out, "Updated", str(host, "updated_at"));
	size_t fi;
	const json_t *fl;
	json_array_foreach(json_object_get(host, "flags"), fi, fl) kv(out, "Flag",
								       json_string_value(fl));
	const json_t *check = json_object_get(host, "check");
	if (json_is_object(check)) {
		snprintf(line, sizeof(line), "%s at %s",
			 str(check, "summary") ? str(check, "summary") : "-",
			 str(check, "checked_at") ? str(check, "checked_at") : "-");
		kv(out, "Check", line);
		kc_fmt_check_items(out, check, 2);
	} else {
		kv(out, "Check", "never run");
	}
}

void kc_fmt_json(FILE *out, const json_t *j)
{
	json_dumpf(j, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
}
