/*
 * Counters for GET /metrics (Prometheus text exposition 0.0.4): requests by
 * route and status, request durations by route, connections, plus the
 * supervisor's task gauges. purged-rest only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buildconf.h"
#include "daemon/rest/rest.h"
#include "purged/util.h"

static const double bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct counter {
	const char *route;
	int status;
	unsigned long long n;
};

struct histogram {
	const char *route;
	unsigned long long buckets[NBOUNDS];
	unsigned long long count;
	double sum;
};

static struct counter *counters;
static size_t n_counters;
static struct histogram *hists;
static size_t n_hists;

void metrics_observe(const char *route, int status, int64_t usec)
{
	size_t i;
	double sec = (double)usec / 1e6;

	for (i = 0; i < n_counters; i++)
		if (counters[i].status == status && strcmp(counters[i].route, route) == 0)
			break;
	if (i == n_counters) {
		counters = xrealloc(counters, (n_counters + 1) * sizeof(*counters));
		counters[n_counters++] = (struct counter){ route, status, 0 };
	}
	counters[i].n++;

	for (i = 0; i < n_hists; i++)
		if (strcmp(hists[i].route, route) == 0)
			break;
	if (i == n_hists) {
		hists = xrealloc(hists, (n_hists + 1) * sizeof(*hists));
		hists[n_hists++] = (struct histogram){ .route = route };
	}
	for (size_t b = 0; b < NBOUNDS; b++)
		if (sec <= bounds[b])
			hists[i].buckets[b]++;
	hists[i].count++;
	hists[i].sum += sec;
}

char *metrics_render(const json_t *sup)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	size_t i;
	const json_t *v;

	if (!f)
		return xstrdup("");
	fprintf(f, "# HELP purged_build_info Build of purged serving this endpoint.\n"
		   "# TYPE purged_build_info gauge\n"
		   "purged_build_info{version=\"%s\",protocol=\"%d\"} 1\n", PURGED_VERSION, PURGE_PROTO_VERSION);
	fprintf(f, "# HELP purged_http_requests_total HTTP requests answered, by route and status code.\n"
		   "# TYPE purged_http_requests_total counter\n");
	for (i = 0; i < n_counters; i++)
		fprintf(f, "purged_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n", counters[i].route,
			counters[i].status, counters[i].n);
	fprintf(f, "# HELP purged_http_request_duration_seconds Time from a complete request to its answer.\n"
		   "# TYPE purged_http_request_duration_seconds histogram\n");
	for (i = 0; i < n_hists; i++) {
		for (size_t b = 0; b < NBOUNDS; b++)
			fprintf(f, "purged_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
				hists[i].route, bounds[b], hists[i].buckets[b]);
		fprintf(f, "purged_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
			hists[i].route, hists[i].count);
		fprintf(f, "purged_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", hists[i].route, hists[i].sum);
		fprintf(f, "purged_http_request_duration_seconds_count{route=\"%s\"} %llu\n", hists[i].route,
			hists[i].count);
	}
	fprintf(f, "# HELP purged_http_connections Open HTTP connections.\n"
		   "# TYPE purged_http_connections gauge\n"
		   "purged_http_connections %u\n", http_conn_count());
	if (sup) {
		fprintf(f, "# HELP purged_tasks Tasks in the task table, by target and status.\n"
			   "# TYPE purged_tasks gauge\n");
		json_array_foreach(json_object_get(sup, "tasks"), i, v)
			fprintf(f, "purged_tasks{target=\"%s\",status=\"%s\"} %lld\n",
				json_string_value(json_object_get(v, "target")),
				json_string_value(json_object_get(v, "status")),
				(long long)json_integer_value(json_object_get(v, "count")));
		fprintf(f, "# HELP purged_executors_running Executors running now.\n"
			   "# TYPE purged_executors_running gauge\n"
			   "purged_executors_running %lld\n"
			   "# HELP purged_queue_length Tasks waiting for an executor.\n"
			   "# TYPE purged_queue_length gauge\n"
			   "purged_queue_length %lld\n",
			(long long)json_integer_value(json_object_get(sup, "running")),
			(long long)json_integer_value(json_object_get(sup, "queued")));
	}
	fclose(f);
	return buf;
}
