/*
 * noop: pretends to delete `objects` objects, `step_ms` each; fails after
 * `fail_at` objects or abort()s after `crash_at` when set. The demo target,
 * and the instrument of tests and benchmarks. Needs no network and no files.
 * Executor only.
 */
#include <errno.h>
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

static int noop_run(struct backend_ctx *ctx)
{
	uint64_t objects = setting(ctx, "objects");
	uint64_t step_ms = setting(ctx, "step_ms");
	uint64_t fail_at = setting(ctx, "fail_at");
	uint64_t crash_at = setting(ctx, "crash_at");

	if (ctx->dry_run) {
		backend_count(ctx, "objects", objects);
		return 0;
	}
	if (json_is_true(json_object_get(ctx->settings, "probe")))
		backend_probe(ctx); /* the supervisor runs probe targets only under --test-probes */
	backend_progress(ctx, "objects", 0, objects);
	for (uint64_t i = 1; i <= objects; i++) {
		struct timespec ts = { (time_t)(step_ms / 1000), (long)(step_ms % 1000) * 1000000L };
		while (step_ms && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (crash_at && i == crash_at)
			abort(); /* the crash test: the supervisor must report signal 6 */
		if (fail_at && i == fail_at) {
			backend_count(ctx, "objects", i - 1);
			return backend_fail(ctx, "noop: failing at object %llu of %llu as configured (fail_at)",
					    (unsigned long long)i, (unsigned long long)objects);
		}
		backend_progress(ctx, "objects", i, objects);
	}
	backend_count(ctx, "objects", objects);
	return 0;
}

const struct backend_ops backend_noop = {
	.type = "noop",
	.prepare = noop_prepare,
	.run = noop_run,
};
