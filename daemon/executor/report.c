/*
 * Reporting for backend drivers: progress, confirmed deletions (streamed to
 * the supervisor as they are confirmed), plan counts, the post-condition and
 * the stop request. Executor only.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/backend.h"
#include "purged/messages.h"
#include "purged/log.h"
#include "purged/text.h"
#include "purged/util.h"

#define PROGRESS_INTERVAL_USEC 20000 /* at most 50 frames a second */
#define DELETED_BATCH 100            /* entries buffered before they are sent */
#define NAME_MAX_BYTES 1024          /* an object's name in the manifest */
#define REMAINING_SHOWN 20

static volatile sig_atomic_t stop_requested;

static void on_sigterm(int sig)
{
	(void)sig;
	stop_requested = 1;
}

void backend_stop_init(void)
{
	struct sigaction sa = { .sa_handler = on_sigterm, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		fatal("cannot install the SIGTERM handler (the supervisor's stop request)");
}

bool backend_stopping(const struct backend_ctx *ctx)
{
	(void)ctx;
	return stop_requested != 0;
}

/* Copy @src into @dst as valid UTF-8 cut on a character boundary: the one safe-text helper. */
static char *safe_copy(char *dst, size_t cap, const char *src)
{
	text_safe(dst, cap, src, strlen(src), 0);
	return dst;
}

static bool kind_ok(const char *kind, bool space)
{
	size_t n = kind ? strlen(kind) : 0;
	if (n == 0 || n > PURGE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = kind[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-' && !(space && c == ' '))))
			return false;
	}
	return true;
}

void backend_flush(struct backend_ctx *ctx)
{
	json_t *msg;
	int r;

	if (ctx->unsent == 0)
		return;
	json_t *entries = ctx->manifest ? ctx->manifest : json_array();
	msg = msg_manifest_pack(&(struct msg_manifest){ .entries = entries, .deleted = ctx->deleted });
	json_decref(entries);
	json_decref(ctx->deleted);
	ctx->manifest = ctx->deleted = NULL;
	ctx->unsent = 0;
	r = msg ? frame_send(ctx->fd, msg) : -ENOMEM;
	json_decref(msg);
	if (r < 0)
		fatalx("cannot send confirmed deletions to the supervisor: %s", strerror(-r));
}

void backend_manifest_flush(struct backend_ctx *ctx)
{
	backend_flush(ctx);
}

void backend_progress(struct backend_ctx *ctx, const char *step, uint64_t done, uint64_t total)
{
	int64_t now = mono_usec();
	json_t *msg;
	int r;

	backend_flush(ctx);
	if (done != 0 && done != total && now - ctx->last_progress < PROGRESS_INTERVAL_USEC)
		return;
	ctx->last_progress = now;
	msg = msg_progress_pack(&(struct msg_progress){ .step = step, .done = done, .total = total });
	r = msg ? frame_send(ctx->fd, msg) : -ENOMEM;
	json_decref(msg);
	if (r < 0)
		fatalx("cannot send progress to the supervisor: %s", strerror(-r));
}

void backend_deleted(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name, bool cascade)
{
	char safe[NAME_MAX_BYTES];
	json_t *e;

	if (!kind_ok(kind, false))
		fatalx("bug: backend_deleted() with kind '%s', which is not a name", kind ? kind : "(null)");
	e = json_pack("{s:s, s:I}", "kind", kind, "id", id);
	if (!e)
		fatalx("out of memory recording a confirmed deletion");
	if (name)
		json_object_set_new(e, "name", json_string(safe_copy(safe, sizeof(safe), name)));
	if (cascade)
		json_object_set_new(e, "cascade", json_true());
	if (!ctx->manifest)
		ctx->manifest = json_array();
	json_array_append_new(ctx->manifest, e);
	if (++ctx->unsent >= DELETED_BATCH)
		backend_flush(ctx);
}

void backend_deleted_n(struct backend_ctx *ctx, const char *kind, uint64_t n)
{
	json_t *v;

	if (!kind_ok(kind, true))
		fatalx("bug: backend_deleted_n() with kind '%s', which is not a name", kind ? kind : "(null)");
	if (!ctx->deleted)
		ctx->deleted = json_object();
	v = json_object_get(ctx->deleted, kind);
	if (v) {
		json_integer_set(v, json_integer_value(v) + (json_int_t)n);
	} else {
		json_object_set_new(ctx->deleted, kind, json_integer((json_int_t)n));
		if (++ctx->unsent >= DELETED_BATCH)
			backend_flush(ctx);
	}
}

void backend_manifest(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name)
{
	backend_deleted(ctx, kind, id, name, false);
}

void backend_count(struct backend_ctx *ctx, const char *kind, uint64_t n)
{
	json_object_set_new(ctx->counts, kind, json_integer((json_int_t)n));
}

void backend_remaining(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name)
{
	char safe[64];
	ctx->n_remaining++;
	if (!ctx->remaining)
		ctx->remaining = json_array();
	if (json_array_size(ctx->remaining) >= REMAINING_SHOWN)
		return;
	json_t *e = json_pack("{s:s, s:I}", "kind", kind ? kind : "object", "id", id);
	if (e && name)
		json_object_set_new(e, "name", json_string(safe_copy(safe, sizeof(safe), name)));
	if (e)
		json_array_append_new(ctx->remaining, e);
}

int backend_check_remaining(struct backend_ctx *ctx, const char *hint)
{
	char list[1400];
	size_t o = 0, i, shown = 0;
	json_t *e;

	if (ctx->n_remaining == 0)
		return 0;
	list[0] = '\0';
	json_array_foreach(ctx->remaining, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		json_int_t id = json_integer_value(json_object_get(e, "id"));
		char one[160], idtxt[24] = "";
		if (id >= 0)
			snprintf(idtxt, sizeof(idtxt), " %lld", (long long)id);
		int k = snprintf(one, sizeof(one), "%s%s%s%s%s%s", i ? ", " : "",
				 json_string_value(json_object_get(e, "kind")), idtxt, name ? " '" : "", name ? name : "",
				 name ? "'" : "");
		if (k < 0 || (size_t)k >= sizeof(one) || o + (size_t)k >= sizeof(list))
			break;
		memcpy(list + o, one, (size_t)k + 1);
		o += (size_t)k;
		shown++;
	}
	return backend_fail(ctx, "%llu object%s remain%s after the purge: %s (%zu shown); %s",
			    (unsigned long long)ctx->n_remaining, ctx->n_remaining == 1 ? "" : "s",
			    ctx->n_remaining == 1 ? "s" : "", list, shown,
			    hint ? hint : "run the purge again, and find out what writes to the backend meanwhile");
}

void backend_warn(struct backend_ctx *ctx, const char *fmt, ...)
{
	char raw[4096], text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	safe_copy(text, sizeof(text), raw);
	log_warnx("%s", text);
	if (!ctx->warnings)
		ctx->warnings = json_array();
	if (json_array_size(ctx->warnings) < 16)
		json_array_append_new(ctx->warnings, json_string(text));
}

int backend_fail(struct backend_ctx *ctx, const char *fmt, ...)
{
	char raw[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	safe_copy(ctx->error, sizeof(ctx->error), raw);
	return -1;
}
