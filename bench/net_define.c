/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kc-net-define: time a libvirt network's define + start through the
 * libvirt API (what the agent does), and its removal (bench/net.sh).
 *
 *   kc-net-define URI XMLFILE RUNS   prints "api_define_ms_p50 X",
 *                                    "api_start_ms_p50 Y"
 * The network is destroyed and undefined after each run.  Only for a
 * libvirtd made for the benchmark (a simulated host).
 */
#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RUNS_MAX 100
#define XML_MAX	 (64 * 1024)

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static char xml[XML_MAX];
	double def[RUNS_MAX], start[RUNS_MAX];
	if (argc != 4) {
		fprintf(stderr, "usage: kc-net-define URI XMLFILE RUNS\n");
		return 2;
	}
	int runs = atoi(argv[3]);
	FILE *f = fopen(argv[2], "re");
	size_t len = f ? fread(xml, 1, sizeof(xml) - 1, f) : 0;
	if (f)
		fclose(f);
	if (!len || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr, "kc-net-define: bad XML file or RUNS (1..%d)\n", RUNS_MAX);
		return 2;
	}
	xml[len] = '\0';
	virConnectPtr conn = virConnectOpen(argv[1]);
	if (!conn)
		return 1;
	for (int i = 0; i < runs; i++) {
		double t0 = now_ms();
		virNetworkPtr net = virNetworkDefineXML(conn, xml);
		double t1 = now_ms();
		if (!net || virNetworkCreate(net) < 0) {
			if (net) {
				virNetworkUndefine(net);
				virNetworkFree(net);
			}
			virConnectClose(conn);
			return 1;
		}
		double t2 = now_ms();
		def[i] = t1 - t0;
		start[i] = t2 - t1;
		virNetworkDestroy(net);
		virNetworkUndefine(net);
		virNetworkFree(net);
	}
	qsort(def, (size_t)runs, sizeof(double), cmp_double);
	qsort(start, (size_t)runs, sizeof(double), cmp_double);
	printf("api_define_ms_p50 %.1f\napi_start_ms_p50 %.1f\n", def[runs / 2], start[runs / 2]);
	virConnectClose(conn);
	return 0;
}
