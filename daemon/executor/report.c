/* Progress and counts reporting for backend drivers. Executor only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/backend.h"
#include "purged/log.h"
#include "purged/util.h"

#define PROGRESS_INTERVAL_USEC 20000 /* at most 50 frames a second */

void backend_progress(struct backend_ctx *ctx, const char *step, uint64_t done, uint64_t total)
{
	int64_t now = mono_usec();
	json_t *msg;
	int r;

	if (done != 0 && done != total && now - ctx->last_progress < PROGRESS_INTERVAL_USEC)
		return;
	ctx->last_progress = now;
	msg = json_pack("{s:{s:s, s:I, s:I}}", "progress", "step", step, "done", (json_int_t)done, "total",
			(json_int_t)total);
	r = msg ? frame_send(ctx->fd, msg) : -ENOMEM;
	json_decref(msg);
	if (r < 0)
		fatalx("cannot send progress to the supervisor: %s", strerror(-r));
}

#define MANIFEST_BATCH 200

void backend_manifest_flush(struct backend_ctx *ctx)
{
	json_t *msg;
	int r;

	if (!ctx->manifest || json_array_size(ctx->manifest) == 0)
		return;
	msg = json_pack("{s:o}", "manifest", ctx->manifest);
	ctx->manifest = NULL;
	r = msg ? frame_send(ctx->fd, msg) : -ENOMEM;
	json_decref(msg);
	if (r < 0)
		fatalx("cannot send the manifest to the supervisor: %s", strerror(-r));
}

void backend_manifest(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name)
{
	json_t *e = json_pack("{s:s, s:I}", "kind", kind, "id", id);
	if (name)
		json_object_set_new(e, "name", json_string(name));
	if (!ctx->manifest)
		ctx->manifest = json_array();
	json_array_append_new(ctx->manifest, e);
	if (json_array_size(ctx->manifest) >= MANIFEST_BATCH)
		backend_manifest_flush(ctx);
}

void backend_count(struct backend_ctx *ctx, const char *kind, uint64_t n)
{
	json_object_set_new(ctx->counts, kind, json_integer((json_int_t)n));
}

int backend_fail(struct backend_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
	va_end(ap);
	return -1;
}
