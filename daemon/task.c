/*
 * The task table. Supervisor only; pure data, no I/O.
 *
 * Ids are UUIDv7 made strictly increasing, so the array sorted by id is also
 * in creation order: lookups are binary searches, listing newest-first walks
 * from the end, and pruning drops from the front.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "buildconf.h"
#include "daemon/task.h"
#include "purged/proto_pack.h"
#include "purged/util.h"
#include "purged/text.h"

static const char *const state_names[_TASK_STATE_MAX] = {
	[TASK_QUEUED] = "queued",
	[TASK_STARTED] = "started",
	[TASK_FINISHED] = "finished",
	[TASK_FAILED] = "failed",
	[TASK_CANCELLED] = "cancelled",
	[TASK_AWAITING] = "awaiting_approval",
};

const char *task_state_to_string(enum task_state s)
{
	return s >= 0 && s < _TASK_STATE_MAX ? state_names[s] : NULL;
}

enum task_state task_state_from_string(const char *s)
{
	for (int i = 0; s && i < _TASK_STATE_MAX; i++)
		if (strcmp(state_names[i], s) == 0)
			return i;
	return _TASK_STATE_INVALID;
}

void task_table_init(struct task_table *t)
{
	memset(t, 0, sizeof(*t));
}

void task_table_free(struct task_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		task_free(t->v[i]);
	free(t->v);
	task_table_init(t);
}

static void id_format(uint64_t hi, uint64_t lo, char out[PURGE_TASK_ID_LEN + 1])
{
	snprintf(out, PURGE_TASK_ID_LEN + 1, "%08x-%04x-%04x-%04x-%012llx",
		 (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xffff, (unsigned)hi & 0xffff,
		 (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

static void id_parse(const char *s, uint64_t *hi, uint64_t *lo)
{
	char hex[33];
	int k = 0;
	for (const char *p = s; *p && k < 32; p++)
		if (*p != '-')
			hex[k++] = *p;
	hex[k] = '\0';
	char a[17];
	memcpy(a, hex, 16);
	a[16] = '\0';
	*hi = strtoull(a, NULL, 16);
	*lo = strtoull(hex + 16, NULL, 16);
}

/* A new UUIDv7 (RFC 9562) greater than the last one issued, even if the clock steps back. */
static void id_next(struct task_table *t, int64_t now, char out[PURGE_TASK_ID_LEN + 1])
{
	uint64_t rnd[2] = { 0, 0 };
	uint64_t ms = (uint64_t)(now / 1000);
	uint64_t hi, lo;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) /* cannot fail for 16 bytes after boot */
		rnd[0] = (uint64_t)now, rnd[1] = (uint64_t)clock();
	hi = (ms << 16) | 0x7000 | (rnd[0] & 0x0fff);
	lo = 0x8000000000000000ULL | (rnd[1] & 0x3fffffffffffffffULL);
	if (hi < t->last_hi || (hi == t->last_hi && lo <= t->last_lo)) {
		/* Increment the last id within its random bits, keeping version and variant. */
		hi = t->last_hi;
		lo = t->last_lo + 1;
		if ((lo & 0x3fffffffffffffffULL) == 0) {
			lo = 0x8000000000000000ULL;
			hi = (hi & ~0xfffULL) | (((hi & 0xfff) + 1) & 0xfff);
			if ((hi & 0xfff) == 0)
				hi += 1ULL << 16; /* next millisecond */
		}
	}
	t->last_hi = hi;
	t->last_lo = lo;
	id_format(hi, lo, out);
}

static size_t lower_bound(const struct task_table *t, const char *id)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->v[mid]->id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void insert_at(struct task_table *t, size_t pos, struct task *task)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	memmove(t->v + pos + 1, t->v + pos, (t->n - pos) * sizeof(*t->v));
	t->v[pos] = task;
	t->n++;
}

struct task *task_table_add(struct task_table *t, const char *target, const char *operation,
			    const char *who, int64_t uid, const char *door, int64_t now)
{
	struct task *task = xcalloc(1, sizeof(*task));

	id_next(t, now, task->id);
	task->target = xstrdup(target);
	task->operation = xstrdup(operation);
	task->state = TASK_QUEUED;
	task->created = now;
	task->who = xstrdup(who);
	task->uid = uid;
	task->door = xstrdup(door);
	task->counts = json_object();
	task->errors = json_array();
	insert_at(t, t->n, task); /* ids increase: always the end */
	return task;
}

struct task *task_table_find(const struct task_table *t, const char *id)
{
	size_t pos;
	if (!id)
		return NULL;
	pos = lower_bound(t, id);
	return pos < t->n && strcmp(t->v[pos]->id, id) == 0 ? t->v[pos] : NULL;
}

void task_table_put(struct task_table *t, struct task *task)
{
	size_t pos = lower_bound(t, task->id);
	uint64_t hi, lo;

	if (pos < t->n && strcmp(t->v[pos]->id, task->id) == 0) {
		task_free(t->v[pos]);
		t->v[pos] = task;
	} else {
		insert_at(t, pos, task);
	}
	id_parse(task->id, &hi, &lo);
	if (hi > t->last_hi || (hi == t->last_hi && lo > t->last_lo)) {
		t->last_hi = hi;
		t->last_lo = lo;
	}
}

size_t task_table_prune(struct task_table *t, size_t keep)
{
	size_t finals = 0, dropped = 0, w = 0;

	for (size_t i = 0; i < t->n; i++)
		finals += task_state_is_final(t->v[i]->state);
	if (finals <= keep)
		return 0;
	for (size_t i = 0; i < t->n; i++) {
		struct task *task = t->v[i];
		if (dropped < finals - keep && task_state_is_final(task->state) && !task->exec) {
			task_free(task);
			dropped++;
		} else {
			t->v[w++] = task;
		}
	}
	t->n = w;
	return dropped;
}

char *task_safe_text(char *dst, size_t cap, const char *src)
{
	text_safe(dst, cap, src, strlen(src), 0);
	return dst;
}


static char *safe_vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *safe_vformat(const char *fmt, va_list ap)
{
	char *out = xmalloc(TASK_TEXT_MAX);
	text_vformat(out, TASK_TEXT_MAX, 0, fmt, ap);
	return out;
}

void task_set_error(struct task *task, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = safe_vformat(fmt, ap);
	va_end(ap);
	free(task->error);
	task->error = s;
}

void task_warn(struct task *task, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = safe_vformat(fmt, ap);
	va_end(ap);
	if (!task->warnings)
		task->warnings = json_array();
	json_array_append_new(task->warnings, json_string(s));
	free(s);
}

const char *task_add_confirmed(struct task *task, const struct msg_manifest *msg, uint64_t entries_before)
{
	json_t *entries = msg->entries, *bulk = msg->deleted;
	json_t *add = json_object(), *v, *counts = task->counts;
	const char *kind, *bad = NULL;
	size_t i, fresh = 0;

	json_array_foreach(entries, i, v) {
		const char *k = json_string_value(json_object_get(v, "kind"));
		json_t *c = json_object_get(add, k);
		if (c)
			json_integer_set(c, json_integer_value(c) + 1);
		else
			json_object_set_new(add, k, json_integer(1));
	}
	json_object_foreach(bulk, kind, v) {
		json_t *c = json_object_get(add, kind);
		json_int_t n = json_integer_value(v), have = c ? json_integer_value(c) : 0;
		if (n < 0 || n > TASK_COUNT_MAX - have) {
			bad = "a confirmed count over 2^53";
			goto out;
		}
		if (c)
			json_integer_set(c, have + n);
		else
			json_object_set_new(add, kind, json_integer(n));
	}
	json_object_foreach(add, kind, v) {
		json_t *c = json_object_get(counts, kind);
		if (!c)
			fresh++;
		if (json_integer_value(v) > TASK_COUNT_MAX - (c ? json_integer_value(c) : 0)) {
			bad = "a confirmed count over 2^53";
			goto out;
		}
	}
	if (json_object_size(counts) + fresh > TASK_KINDS_MAX) {
		bad = "more than 256 kinds of objects";
		goto out;
	}
	if (entries_before + json_array_size(entries) > TASK_ENTRIES_MAX) {
		bad = "more than 10000000 manifest entries";
		goto out;
	}
	json_object_foreach(add, kind, v) {
		json_t *c = json_object_get(counts, kind);
		if (c)
			json_integer_set(c, json_integer_value(c) + json_integer_value(v));
		else
			json_object_set(counts, kind, v);
	}
out:
	json_decref(add);
	return bad;
}

const char *task_check_result(const struct msg_result *res)
{
	const json_t *counts = res->counts, *errors = res->errors;
	const char *kind;
	json_t *v;
	size_t i;

	if (json_object_size(counts) > TASK_KINDS_MAX)
		return "a result with more than 256 kinds of objects";
	json_object_foreach((json_t *)counts, kind, v)
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > TASK_COUNT_MAX ||
		    strlen(kind) == 0 || strlen(kind) > PURGE_NAME_MAX)
			return "a result count that is not a kind (at most 64 bytes) with an integer from 0 to 2^53";
	const json_t *warnings = res->warnings;
	if (json_array_size(warnings) > 16)
		return "a result with more than 16 warnings";
	json_array_foreach(warnings, i, v)
		if (!json_is_string(v) || json_string_length(v) > 2048)
			return "a result warning that is not a string of at most 2 KiB";
	if (json_array_size(errors) > TASK_ERRORS_MAX)
		return "a result with more than 256 errors";
	json_array_foreach(errors, i, v) {
		const char *key;
		json_t *x;
		if (!json_is_object(v) || json_object_size(v) > 4)
			return "a result error that is not a map of at most 4 strings";
		json_object_foreach(v, key, x)
			if (!json_is_string(x) || json_string_length(x) > TASK_TEXT_MAX)
				return "a result error that is not a map of strings of at most 4096 bytes";
	}
	return NULL;
}

struct task *task_free(struct task *task)
{
	if (!task)
		return NULL;
	free(task->target);
	free(task->operation);
	free(task->who);
	free(task->door);
	free(task->step);
	free(task->error);
	json_decref(task->counts);
	json_decref(task->errors);
	json_decref(task->params);
	json_decref(task->warnings);
	json_decref(task->archive);
	free(task->requester);
	free(task->approved_by);
	free(task->may_approve);
	json_wipe_strings(task->request_credentials);
	json_decref(task->request_credentials);
	free(task);
	return NULL;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	return s ? msgpack_pack_str_with_body(pk, s, strlen(s)) : msgpack_pack_nil(pk);
}

static int pack_time(msgpack_packer *pk, int64_t usec)
{
	char buf[32];
	return pack_str(pk, usec ? format_rfc3339(usec, buf, sizeof(buf)) : NULL);
}

/* A JSON list or map held by the task, or an empty one in its place. */
static int pack_json_or_empty(msgpack_packer *pk, const json_t *j, bool map)
{
	if (j)
		return proto_pack_json(pk, j);
	return map ? msgpack_pack_map(pk, 0) : msgpack_pack_array(pk, 0);
}

/* Each call in order (an expression like a | b would leave the order to the compiler). */
#define PUT(call)                     \
	do {                          \
		int put_r_ = (call);  \
		if (put_r_ < 0)       \
			return put_r_; \
	} while (0)
#define KEY(k) PUT(msgpack_pack_str_with_body(pk, k, sizeof(k) - 1))

/*
 * The one place that lists a task's fields: replies pack it straight into
 * msgpack (no tree on the hot path), task_to_json reads the packed bytes back.
 * msgpack-c's packers return -1 only when the buffer cannot grow.
 */
int task_pack(const struct task *task, msgpack_packer *pk)
{
	PUT(msgpack_pack_map(pk, 13 + !!task->params + !!task->requester + !!task->archive));
	KEY("id");
	PUT(pack_str(pk, task->id));
	KEY("target");
	PUT(pack_str(pk, task->target));
	KEY("operation");
	PUT(pack_str(pk, task->operation));
	KEY("status");
	PUT(pack_str(pk, task_state_to_string(task->state)));
	KEY("created");
	PUT(pack_time(pk, task->created));
	KEY("started");
	PUT(pack_time(pk, task->started));
	KEY("ended");
	PUT(pack_time(pk, task->ended));
	KEY("requested_by");
	PUT(msgpack_pack_map(pk, 3));
	KEY("name");
	PUT(pack_str(pk, task->who));
	KEY("uid");
	PUT(task->uid >= 0 ? msgpack_pack_int64(pk, task->uid) : msgpack_pack_nil(pk));
	KEY("door");
	PUT(pack_str(pk, task->door));
	KEY("progress");
	PUT(msgpack_pack_map(pk, 3));
	KEY("step");
	PUT(pack_str(pk, task->step));
	KEY("done");
	PUT(msgpack_pack_int64(pk, (int64_t)task->done));
	KEY("total");
	PUT(msgpack_pack_int64(pk, (int64_t)task->total));
	KEY("counts");
	PUT(pack_json_or_empty(pk, task->counts, true));
	KEY("error");
	PUT(pack_str(pk, task->error));
	KEY("errors");
	PUT(pack_json_or_empty(pk, task->errors, false));
	KEY("warnings");
	PUT(pack_json_or_empty(pk, task->warnings, false));
	if (task->params) {
		KEY("params");
		PUT(proto_pack_json(pk, task->params));
	}
	if (task->archive) {
		KEY("archive");
		PUT(proto_pack_json(pk, task->archive));
	}
	if (task->requester) {
		KEY("approval");
		PUT(msgpack_pack_map(pk, 5));
		KEY("requester");
		PUT(pack_str(pk, task->requester));
		KEY("deadline");
		PUT(pack_time(pk, task->approval_deadline));
		KEY("decided_by");
		PUT(pack_str(pk, task->approved_by));
		KEY("may_approve");
		PUT(pack_str(pk, task->may_approve));
		KEY("request_credentials");
		PUT(task->needs_request_credentials ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	}
	return 0;
}

json_t *task_to_json(const struct task *task)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *j = NULL;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (task_pack(task, &pk) == 0)
		proto_unpack_json(sb.data, sb.size, &j, NULL);
	msgpack_sbuffer_destroy(&sb);
	return j;
}

static int64_t parse_time(const json_t *v)
{
	struct tm tm = { 0 };
	const char *s = json_string_value(v), *end;

	if (!s)
		return 0;
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return 0;
	return (int64_t)timegm(&tm) * 1000000;
}

static char *dup_str(const json_t *v)
{
	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

struct task *task_from_json(const json_t *j)
{
	const char *id = json_string_value(json_object_get(j, "id"));
	json_t *by = json_object_get(j, "requested_by");
	json_t *progress = json_object_get(j, "progress");
	json_t *counts = json_object_get(j, "counts");
	const char *status = json_string_value(json_object_get(j, "status"));
	enum task_state st = task_state_from_string(status);
	struct task *task;

	/* A state this build does not know was written by a newer purged (a downgrade): the task is
	 * kept, as failed, with that said; never dropped, never read as something it is not. */
	bool newer = st < 0 && status && *status && strlen(status) <= PURGE_NAME_MAX;
	if (newer)
		st = TASK_FAILED;
	if (!proto_is_task_id(id) || st < 0 || !json_is_string(json_object_get(j, "target")) ||
	    !json_is_string(json_object_get(j, "operation")) || !json_is_object(by) ||
	    !json_is_string(json_object_get(by, "name")) || !json_is_string(json_object_get(by, "door")))
		return NULL;

	task = xcalloc(1, sizeof(*task));
	memcpy(task->id, id, PURGE_TASK_ID_LEN + 1);
	task->target = dup_str(json_object_get(j, "target"));
	task->operation = dup_str(json_object_get(j, "operation"));
	task->state = st;
	task->created = parse_time(json_object_get(j, "created"));
	task->started = parse_time(json_object_get(j, "started"));
	task->ended = parse_time(json_object_get(j, "ended"));
	task->who = dup_str(json_object_get(by, "name"));
	task->uid = json_is_integer(json_object_get(by, "uid")) ? json_integer_value(json_object_get(by, "uid")) : -1;
	task->door = dup_str(json_object_get(by, "door"));
	task->step = dup_str(json_object_get(progress, "step"));
	task->done = (uint64_t)json_integer_value(json_object_get(progress, "done"));
	task->total = (uint64_t)json_integer_value(json_object_get(progress, "total"));
	task->counts = json_is_object(counts) ? json_deep_copy(counts) : json_object();
	task->error = dup_str(json_object_get(j, "error"));
	if (newer) {
		char why[512], said[PURGE_NAME_MAX * 3 + 1];
		text_safe(said, sizeof(said), status, strlen(status), TEXT_ESCAPE_CONTROLS);
		snprintf(why, sizeof(why), "unknown state '%s' from a newer purged: marked failed by purged %s; check "
			 "the backend before purging it again", said, PURGED_VERSION);
		free(task->error);
		task->error = xstrdup(why);
		if (!task->ended)
			task->ended = now_usec();
	}
	json_t *errors = json_object_get(j, "errors"), *params = json_object_get(j, "params");
	task->errors = json_is_array(errors) ? json_deep_copy(errors) : json_array();
	task->params = json_is_object(params) ? json_deep_copy(params) : NULL;
	json_t *warnings = json_object_get(j, "warnings");
	task->warnings = json_is_array(warnings) && json_array_size(warnings) ? json_deep_copy(warnings) : NULL;
	json_t *archive = json_object_get(j, "archive");
	task->archive = json_is_object(archive) && json_is_string(json_object_get(archive, "file"))
				? json_deep_copy(archive) : NULL;
	json_t *approval = json_object_get(j, "approval");
	if (json_is_string(json_object_get(approval, "requester"))) {
		task->requester = dup_str(json_object_get(approval, "requester"));
		task->approval_deadline = parse_time(json_object_get(approval, "deadline"));
		task->approved_by = dup_str(json_object_get(approval, "decided_by"));
		task->may_approve = dup_str(json_object_get(approval, "may_approve"));
		task->needs_request_credentials = json_is_true(json_object_get(approval, "request_credentials"));
	}
	if (st == TASK_AWAITING && !task->requester) {
		task_free(task); /* an awaiting task without its requester could be approved by anyone */
		return NULL;
	}
	return task;
}
