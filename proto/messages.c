/*
 * Every message's keys, and only here (and in proto/schema.c, which checks
 * them): struct <-> message for each kind (purged/messages.h), and the
 * builders every side sends requests, replies and events with (proto.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "buildconf.h"
#include "purged/messages.h"
#include "purged/proto.h"
#include "purged/text.h"

static void set(json_t *o, const char *key, json_t *v /* referenced, may be NULL */)
{
	if (v)
		json_object_set(o, key, v);
}

json_t *msg_job_pack(const struct msg_job *j)
{
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:O}", "task_id", j->task_id, "operation",
				 j->operation, "target", j->target, "type", j->type, "dry_run", j->dry_run, "settings",
				 j->settings, "secrets", j->secrets);
	if (!body)
		return NULL;
	set(body, "archive", j->archive);
	set(body, "options", j->options);
	return json_pack("{s:s, s:i, s:s, s:o}", "kind", purge_msg_type_to_string(PURGE_MSG_JOB), "v",
			 PURGE_PROTO_VERSION, "build", PURGED_VERSION, "job", body);
}

void msg_job_unpack(const json_t *msg, struct msg_job *j)
{
	const json_t *b = json_object_get(msg, "job");
	*j = (struct msg_job){
		.task_id = json_string_value(json_object_get(b, "task_id")),
		.operation = json_string_value(json_object_get(b, "operation")),
		.target = json_string_value(json_object_get(b, "target")),
		.type = json_string_value(json_object_get(b, "type")),
		.dry_run = json_is_true(json_object_get(b, "dry_run")),
		.settings = json_object_get(b, "settings"),
		.secrets = json_object_get(b, "secrets"),
		.archive = json_object_get(b, "archive"),
		.options = json_object_get(b, "options"),
		.build = json_string_value(json_object_get(msg, "build")),
	};
}

json_t *msg_progress_pack(const struct msg_progress *p)
{
	json_t *body = json_pack("{s:I, s:I}", "done", (json_int_t)p->done, "total", (json_int_t)p->total);
	if (body && p->step)
		json_object_set_new(body, "step", json_string(p->step));
	return body ? json_pack("{s:s, s:o}", "kind", purge_msg_type_to_string(PURGE_MSG_PROGRESS), "progress", body)
		    : NULL;
}

void msg_progress_unpack(const json_t *msg, struct msg_progress *p)
{
	const json_t *b = json_object_get(msg, "progress");
	*p = (struct msg_progress){
		.step = json_string_value(json_object_get(b, "step")),
		.done = (uint64_t)json_integer_value(json_object_get(b, "done")),
		.total = (uint64_t)json_integer_value(json_object_get(b, "total")),
	};
}

json_t *msg_manifest_pack(const struct msg_manifest *m)
{
	json_t *msg = json_pack("{s:s, s:O}", "kind", purge_msg_type_to_string(PURGE_MSG_MANIFEST), "manifest",
				m->entries);
	if (msg && m->deleted && json_object_size(m->deleted))
		json_object_set(msg, "deleted", m->deleted);
	return msg;
}

void msg_manifest_unpack(const json_t *msg, struct msg_manifest *m)
{
	*m = (struct msg_manifest){
		.entries = json_object_get(msg, "manifest"),
		.deleted = json_object_get(msg, "deleted"),
	};
}

json_t *msg_result_pack(const struct msg_result *r)
{
	json_t *body = json_pack("{s:b}", "ok", r->ok);
	if (!body)
		return NULL;
	set(body, "counts", r->counts);
	if (r->error)
		json_object_set_new(body, "error", json_string(r->error));
	set(body, "errors", r->errors);
	set(body, "warnings", r->warnings);
	if (r->has_archive)
		json_object_set_new(body, "archive",
				    json_pack("{s:I, s:s, s:I}", "bytes", (json_int_t)r->archive_bytes, "sha256",
					      r->archive_sha256 ? r->archive_sha256 : "", "records",
					      (json_int_t)r->archive_records));
	return json_pack("{s:s, s:o}", "kind", purge_msg_type_to_string(PURGE_MSG_RESULT), "result", body);
}

void msg_result_unpack(const json_t *msg, struct msg_result *r)
{
	const json_t *b = json_object_get(msg, "result"), *a = json_object_get(b, "archive");
	*r = (struct msg_result){
		.ok = json_is_true(json_object_get(b, "ok")),
		.counts = json_object_get(b, "counts"),
		.error = json_string_value(json_object_get(b, "error")),
		.errors = json_object_get(b, "errors"),
		.warnings = json_object_get(b, "warnings"),
		.has_archive = a != NULL,
		.archive_bytes = (uint64_t)json_integer_value(json_object_get(a, "bytes")),
		.archive_records = (uint64_t)json_integer_value(json_object_get(a, "records")),
		.archive_sha256 = json_string_value(json_object_get(a, "sha256")),
	};
}

/* ---------------------------------------------------------------- control hop */

enum purge_msg_type msg_kind(const json_t *msg)
{
	return purge_msg_type_from_string(json_string_value(json_object_get(msg, "kind")));
}

json_t *proto_request_new(uint64_t id, enum purge_op op, json_t *args)
{
	return json_pack("{s:s, s:i, s:I, s:s, s:o}", "kind", "request", "v", PURGE_PROTO_VERSION, "id",
			 (json_int_t)id, "op", purge_op_to_string(op), "args", args ? args : json_object());
}

json_t *proto_reply_ok(uint64_t id, json_t *result)
{
	return json_pack("{s:s, s:I, s:b, s:o}", "kind", "reply", "id", (json_int_t)id, "ok", 1,
			 "result", result ? result : json_null());
}

json_t *proto_reply_error(uint64_t id, enum purge_err code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	/* Valid UTF-8 whatever the arguments quote, so only out of memory can make this NULL. */
	text_vformat(msg, sizeof(msg), 0, fmt, ap);
	va_end(ap);
	return json_pack("{s:s, s:I, s:b, s:{s:s, s:s}}", "kind", "reply", "id", (json_int_t)id, "ok", 0,
			 "error", "code", purge_err_to_string(code), "message", msg);
}

json_t *proto_event_new(uint64_t id, const char *event, json_t *task)
{
	return json_pack("{s:s, s:I, s:s, s:o}", "kind", "event", "id", (json_int_t)id, "event", event, "task", task);
}

void msg_request_unpack(const json_t *msg, struct msg_request *r)
{
	static json_t *no_args;
	if (!no_args)
		no_args = json_object();
	json_t *args = json_object_get(msg, "args");
	*r = (struct msg_request){
		.id = (uint64_t)json_integer_value(json_object_get(msg, "id")),
		.op = purge_op_from_string(json_string_value(json_object_get(msg, "op"))),
		.args = args ? args : no_args,
		.auth = json_string_value(json_object_get(msg, "auth")),
	};
}

bool msg_reply_unpack(const json_t *msg, struct msg_reply *r)
{
	const json_t *err = json_object_get(msg, "error");
	*r = (struct msg_reply){ 0 };
	if (!msg || msg_kind(msg) != PURGE_MSG_REPLY)
		return false;
	r->id = (uint64_t)json_integer_value(json_object_get(msg, "id"));
	r->ok = json_is_true(json_object_get(msg, "ok"));
	r->result = r->ok ? json_object_get(msg, "result") : NULL;
	r->error = (json_t *)err;
	r->error_code = json_string_value(json_object_get(err, "code"));
	r->error_message = json_string_value(json_object_get(err, "message"));
	return true;
}

void msg_event_unpack(const json_t *msg, struct msg_event *e)
{
	*e = (struct msg_event){
		.id = (uint64_t)json_integer_value(json_object_get(msg, "id")),
		.event = json_string_value(json_object_get(msg, "event")),
		.task = json_object_get(msg, "task"),
	};
}
