/* The supervisor <-> executor messages: struct <-> message (purged/messages.h). */
#include <string.h>
#include "buildconf.h"
#include "purged/messages.h"
#include "purged/proto.h"

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
