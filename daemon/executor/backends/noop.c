/*
 * noop: pretends to delete `objects` objects, `step_ms` each, confirming each
 * one (manifest entries "objects", id, "object N"); fails after `fail_at`
 * objects or abort()s after `crash_at` when set; leaves the last `leave`
 * objects behind, which its post-condition then finds; on a stop request
 * (SIGTERM) it "reconciles" for `reconcile_ms` and ends. The demo target, and
 * the instrument of tests and benchmarks. Needs no network and no files.
 * Executor only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "daemon/executor/backend.h"

static uint64_t setting(const struct backend_ctx *ctx, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(ctx->settings, key));
}

static int noop_prepare(struct backend_ctx *ctx, struct sandbox_policy *p)
{
	json_int_t allowed = setting(ctx, "probe_allowed_port");
	/* No sockets, no files; a probe may ask for one TCP port, as a network backend has. */
	p->network = allowed != 0;
	if (allowed)
		p->tcp_ports[p->n_tcp_ports++] = (uint16_t)allowed;
	return 0;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (ms && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int noop_run(struct backend_ctx *ctx)
{
	uint64_t objects = setting(ctx, "objects");
	uint64_t step_ms = setting(ctx, "step_ms");
	uint64_t fail_at = setting(ctx, "fail_at");
	uint64_t crash_at = setting(ctx, "crash_at");
	uint64_t leave = setting(ctx, "leave");
	uint64_t deleted = 0;
	char name[48];

	if (ctx->dry_run) {
		backend_count(ctx, "objects", objects);
		return 0;
	}
	if (json_is_true(json_object_get(ctx->settings, "probe")))
		backend_probe(ctx); /* the supervisor runs probe targets only under --test-probes */
	backend_progress(ctx, "objects", 0, objects);
	for (uint64_t i = 1; i <= objects; i++) {
		sleep_ms(step_ms);
		if (backend_stopping(ctx)) {
			sleep_ms(setting(ctx, "reconcile_ms")); /* what a real backend spends re-enumerating */
			return backend_fail(ctx, "noop: stopped on request after %llu of %llu objects; reconciled: "
					    "%llu remain", (unsigned long long)deleted, (unsigned long long)objects,
					    (unsigned long long)(objects - deleted));
		}
		if (crash_at && i == crash_at)
			abort(); /* the crash test: the supervisor must report signal 6 */
		if (fail_at && i == fail_at)
			return backend_fail(ctx, "noop: failing at object %llu of %llu as configured (fail_at)",
					    (unsigned long long)i, (unsigned long long)objects);
		if (i + leave <= objects) {
			snprintf(name, sizeof(name), "object %llu", (unsigned long long)i);
			backend_deleted(ctx, "objects", (json_int_t)i, name, false);
			deleted++;
		}
		/* Without a step time, report every 100 objects: a flood of tiny frames is what a hostile executor sends. */
		if (step_ms || i % 100 == 0 || i == objects)
			backend_progress(ctx, "objects", i, objects);
	}
	/* The post-condition: enumerate again. What was not deleted is still there. */
	for (uint64_t i = deleted + 1; i <= objects; i++) {
		snprintf(name, sizeof(name), "object %llu", (unsigned long long)i);
		backend_remaining(ctx, "objects", (json_int_t)i, name);
	}
	return backend_check_remaining(ctx, "noop leaves objects behind when 'leave' is set: set leave = 0");
}

const struct backend_ops backend_noop = {
	.type = "noop",
	.prepare = noop_prepare,
	.run = noop_run,
};
