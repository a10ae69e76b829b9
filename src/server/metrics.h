/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - GET /metrics: the host, its VMs and the server itself in
 * Prometheus' text exposition format 0.0.4 (docs/api.md, "Metrics").
 */
#pragma once

#include <stdio.h>
#include <time.h>

#include "api.h"

#define KC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Counts one finished request for kvmcloud_server_requests_total and
 * kvmcloud_server_request_duration_seconds; `t0` is when it began
 * (CLOCK_MONOTONIC).  Lock-free, process-wide; cannot fail. */
void kc_metrics_observe_request(const char *method, long status, const struct timespec *t0);

/* Writes `s` as the inside of a quoted label value: backslash, double
 * quote and newline escaped as the format asks, and every byte that is not
 * part of valid UTF-8 replaced by U+FFFD, which Prometheus would otherwise
 * reject along with the whole scrape.  NULL writes nothing. */
void kc_metrics_put_label_value(FILE *out, const char *s);

/* The handler (authenticated like every route). */
int kc_api_metrics(struct kc_call *c, struct kc_error *err);
