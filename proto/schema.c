/*
 * Strict validation of every message kind: the type and bounds of every
 * field, required keys present, unknown keys refused. proto_decode is the
 * single entry point every program uses on bytes it received.
 */
#include <string.h>
#include "buildconf.h"
#include "proto/internal.h"
#include "purged/text.h"

enum field_type {
	F_UINT,     /* integer >= 0 */
	F_BOOL,
	F_STRING,   /* any string within PURGE_STRING_MAX */
	F_NAME,     /* [A-Za-z0-9][A-Za-z0-9._-]{0,63} */
	F_TASK_ID,  /* lowercase UUID text */
	F_AUTH,     /* string of at most PURGE_AUTH_MAX bytes */
	F_MAP,      /* any map (checked by its owner) */
	F_ANY,
	F_OBJECT,   /* map checked against .fields */
	F_IDS,      /* non-empty array of unique integers from 1 to 65535 */
	F_ARRAY,
	F_MANIFEST, /* array of {kind: name, id: string|integer, name: string, cascade: bool} */
	F_DELETED,  /* non-empty map of at most 64 kinds (a name, or words of one) -> integer >= 0 */
};

struct field {
	const char *name;
	enum field_type type;
	bool required;
	const struct field *fields; /* F_OBJECT only; ends with a NULL name */
};

static const char *const type_names[] = {
	[F_UINT] = "a non-negative integer", [F_BOOL] = "a boolean", [F_STRING] = "a string",
	[F_NAME] = "a name (letters, digits, '.', '_', '-'; at most 64)",
	[F_TASK_ID] = "a task id (UUID)", [F_AUTH] = "a token string", [F_MAP] = "a map",
	[F_ANY] = "a value", [F_OBJECT] = "a map",
	[F_IDS] = "a non-empty array of unique integers from 1 to 65535", [F_ARRAY] = "an array",
	[F_MANIFEST] = "an array of {kind, id, name, cascade} entries",
	[F_DELETED] = "a map of at most 64 kinds to non-negative integers",
};

static const char *json_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "map";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "float";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "nil";
	}
	return "unknown";
}

static bool is_name(const char *s, size_t n)
{
	if (n == 0 || n > PURGE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

bool proto_is_task_id(const char *s)
{
	if (!s || strlen(s) != PURGE_TASK_ID_LEN)
		return false;
	for (int i = 0; i < PURGE_TASK_ID_LEN; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

bool proto_is_name(const char *s)
{
	return s && is_name(s, strlen(s));
}

static bool is_id_list(const json_t *v)
{
	size_t n = json_array_size(v);
	if (!json_is_array(v) || n == 0 || n > PURGE_INSTANCES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		const json_t *x = json_array_get(v, i);
		if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 65535)
			return false;
		for (size_t j = 0; j < i; j++)
			if (json_integer_value(json_array_get(v, j)) == json_integer_value(x))
				return false;
	}
	return true;
}

static bool is_manifest(const json_t *v)
{
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return false;
	json_array_foreach(v, i, e) {
		const json_t *kind = json_object_get(e, "kind"), *id = json_object_get(e, "id");
		const json_t *name = json_object_get(e, "name"), *cascade = json_object_get(e, "cascade");
		if (!json_is_object(e) || json_object_size(e) != 2u + !!name + !!cascade || !json_is_string(kind) ||
		    !is_name(json_string_value(kind), json_string_length(kind)) ||
		    !(json_is_integer(id) || (json_is_string(id) && json_string_length(id) <= PURGE_MANIFEST_ID_MAX)) ||
		    (name && (!json_is_string(name) || json_string_length(name) > PURGE_MANIFEST_NAME_MAX)) ||
		    (cascade && !json_is_boolean(cascade)))
			return false;
	}
	return true;
}

/* Bulk confirmed deletions: {"instance 3": 1000}. Kinds are names that may hold single spaces. */
static bool is_deleted(const json_t *v)
{
	const char *kind;
	json_t *n;
	if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > 64)
		return false;
	json_object_foreach((json_t *)v, kind, n) {
		size_t len = strlen(kind);
		if (!json_is_integer(n) || json_integer_value(n) < 0 || len == 0 || len > PURGE_NAME_MAX)
			return false;
		for (size_t i = 0; i < len; i++) {
			char c = kind[i];
			bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
			if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-' && c != ' ')))
				return false;
		}
	}
	return true;
}

static bool type_ok(const json_t *v, enum field_type t)
{
	switch (t) {
	case F_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
	case F_BOOL: return json_is_boolean(v);
	case F_STRING: return json_is_string(v);
	case F_NAME: return json_is_string(v) && is_name(json_string_value(v), json_string_length(v));
	case F_TASK_ID: return json_is_string(v) && proto_is_task_id(json_string_value(v));
	case F_AUTH: return json_is_string(v) && json_string_length(v) <= PURGE_AUTH_MAX;
	case F_MAP:
	case F_OBJECT: return json_is_object(v);
	case F_ANY: return true;
	case F_ARRAY: return json_is_array(v);
	case F_IDS: return is_id_list(v);
	case F_MANIFEST: return is_manifest(v);
	case F_DELETED: return is_deleted(v);
	}
	return false;
}

static int check_object(const json_t *obj, const struct field *fields, const char *path,
			struct proto_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		const struct field *f = fields;
		while (f->name && strcmp(f->name, key) != 0)
			f++;
		if (!f->name)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "unknown key '%s%s'", path, key);
		if (!type_ok(v, f->type))
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "key '%s%s' must be %s, got %s",
					  path, key, type_names[f->type], json_type_name(v));
		if (f->type == F_OBJECT) {
			char sub[128];
			snprintf(sub, sizeof(sub), "%s%s.", path, key);
			int r = check_object(v, f->fields, sub, err);
			if (r < 0)
				return r;
		}
	}
	for (const struct field *f = fields; f->name; f++)
		if (f->required && !json_object_get(obj, f->name))
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "missing key '%s%s'", path, f->name);
	return 0;
}

/* ---------------------------------------------------------------- schemas */

static const struct field no_fields[] = { { NULL } };
#define no_args no_fields
static const struct field target_args[] = { { "target", F_NAME, true }, { NULL } };
/* Lucid Chain's body: an endpoint that must match the target's, and request credentials. */
static const struct field endpoint_fields[] = {
	{ "server", F_STRING, false },
	{ "port", F_UINT, false },
	{ "api_path", F_STRING, false },
	{ NULL },
};
static const struct field credential_fields[] = {
	{ "username", F_STRING, false },
	{ "password", F_STRING, false },
	{ NULL },
};
static const struct field purge_args[] = {
	{ "target", F_NAME, true },
	{ "endpoint", F_OBJECT, false, endpoint_fields },
	{ "credentials", F_OBJECT, false, credential_fields },
	{ NULL },
};
static const struct field task_args[] = { { "id", F_TASK_ID, true }, { NULL } };
static const struct field list_args[] = {
	{ "limit", F_UINT, false },
	{ "offset", F_UINT, false },
	{ "target", F_NAME, false },
	{ "operation", F_NAME, false },
	{ NULL },
};

static const struct field crdb_args[] = {
	{ "guid", F_NAME, true },
	{ "instances", F_IDS, true },
	{ NULL },
};

static const struct field manifest_args[] = {
	{ "id", F_TASK_ID, true },
	{ "offset", F_UINT, false },
	{ "limit", F_UINT, false },
	{ NULL },
};

/* A chunk of a task's archive file: from @offset, at most 512 KiB. */
static const struct field archive_args[] = {
	{ "id", F_TASK_ID, true },
	{ "offset", F_UINT, false },
	{ NULL },
};

/* Put back the keys a crdb purge archived (task: that purge); guid, when given, must be its crdb. */
static const struct field restore_args[] = {
	{ "task", F_TASK_ID, true },
	{ "replace", F_BOOL, false },
	{ "guid", F_NAME, false },
	{ NULL },
};

/* N requests from one client address refused by purged-rest for one reason (a name: missing_token...). */
static const struct field refusals_args[] = {
	{ "address", F_STRING, true },
	{ "count", F_UINT, true },
	{ "reason", F_NAME, true },
	{ NULL },
};

/* Each op's arguments, named in its row (purged/proto.h). */
static const struct field *const op_args[_PURGE_OP_MAX] = {
#define PURGE_OP_ARGS(e, handler, name, flags, args) [PURGE_OP_##e] = args,
	PURGE_OPS(PURGE_OP_ARGS)
#undef PURGE_OP_ARGS
};

static const struct field request_fields[] = {
	{ "kind", F_NAME, true },
	{ "v", F_UINT, true },
	{ "id", F_UINT, true },
	{ "op", F_STRING, true },
	{ "args", F_MAP, false },
	{ "auth", F_AUTH, false },
	{ NULL },
};

static const struct field error_fields[] = {
	{ "code", F_NAME, true },
	{ "message", F_STRING, true },
	{ NULL },
};

static const struct field reply_fields[] = {
	{ "kind", F_NAME, true },
	{ "id", F_UINT, true },
	{ "ok", F_BOOL, true },
	{ "result", F_ANY, false },
	{ "error", F_OBJECT, false, error_fields },
	{ NULL },
};

static const struct field event_fields[] = {
	{ "kind", F_NAME, true },
	{ "id", F_UINT, true },
	{ "event", F_NAME, true },
	{ "task", F_MAP, true },
	{ NULL },
};

/* fd 4: the archive the executor writes (a purge of an archive = yes target) or reads (a restore). */
static const struct field job_archive[] = {
	{ "mode", F_NAME, true },         /* "write" or "read" */
	{ "max_bytes", F_UINT, false },   /* write: archive_max_bytes */
	{ "room", F_UINT, false },        /* write: free space less the reserve and the other archives' budgets */
	{ "sha256", F_STRING, false },    /* read: the SHA-256 the supervisor recorded */
	{ NULL },
};

static const struct field job_options[] = {
	{ "replace", F_BOOL, false },     /* restore: overwrite keys that exist */
	{ NULL },
};

static const struct field job_body[] = {
	{ "task_id", F_TASK_ID, true },
	{ "operation", F_NAME, false },
	{ "target", F_NAME, true },
	{ "type", F_NAME, true },
	{ "dry_run", F_BOOL, true },
	{ "settings", F_MAP, true },
	{ "secrets", F_MAP, false },
	{ "archive", F_OBJECT, false, job_archive },
	{ "options", F_OBJECT, false, job_options },
	{ NULL },
};

static const struct field job_fields[] = {
	{ "kind", F_NAME, true },
	{ "v", F_UINT, true },
	{ "build", F_STRING, true }, /* PURGED_VERSION: supervisor and executors come from one build */
	{ "job", F_OBJECT, true, job_body },
	{ NULL },
};

static const struct field progress_body[] = {
	{ "step", F_NAME, false },
	{ "done", F_UINT, true },
	{ "total", F_UINT, true },
	{ NULL },
};

static const struct field progress_fields[] = {
	{ "kind", F_NAME, true },
	{ "progress", F_OBJECT, true, progress_body },
	{ NULL },
};

/* What the executor wrote and sealed on fd 4: the supervisor checks the file itself. */
static const struct field result_archive[] = {
	{ "bytes", F_UINT, true },
	{ "sha256", F_STRING, true },
	{ "records", F_UINT, true },
	{ NULL },
};

static const struct field result_body[] = {
	{ "ok", F_BOOL, true },
	{ "counts", F_MAP, false },
	{ "error", F_STRING, false },
	{ "errors", F_ARRAY, false },
	{ "warnings", F_ARRAY, false }, /* strings: what the task must say besides its outcome */
	{ "archive", F_OBJECT, false, result_archive },
	{ NULL },
};

static const struct field result_fields[] = {
	{ "kind", F_NAME, true },
	{ "result", F_OBJECT, true, result_body },
	{ NULL },
};

/* Confirmed deletions, streamed: named entries and bulk counts; at least one of them. */
static const struct field manifest_fields[] = {
	{ "kind", F_NAME, true },
	{ "manifest", F_MANIFEST, true },
	{ "deleted", F_DELETED, false },
	{ NULL },
};

/* Each kind's fields, by the name in its "kind" key. */
static const struct field *const kinds[_PURGE_MSG_MAX] = {
	[PURGE_MSG_REQUEST] = request_fields,
	[PURGE_MSG_REPLY] = reply_fields,
	[PURGE_MSG_EVENT] = event_fields,
	[PURGE_MSG_JOB] = job_fields,
	[PURGE_MSG_PROGRESS] = progress_fields,
	[PURGE_MSG_RESULT] = result_fields,
	[PURGE_MSG_MANIFEST] = manifest_fields,
};

int proto_validate_args(enum purge_op op, const json_t *args, struct proto_error *err)
{
	static const json_t *empty;
	if (op < 0 || op >= _PURGE_OP_MAX)
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "unknown op");
	if (!args) {
		if (!empty)
			empty = json_object();
		args = empty;
	}
	return check_object(args, op_args[op], "args.", err);
}

static int check_kind(enum purge_msg_type t, const json_t *msg, struct proto_error *err)
{
	int r = check_object(msg, kinds[t], "", err);
	if (r < 0)
		return r;

	switch (t) {
	case PURGE_MSG_REQUEST: {
		const char *op = json_string_value(json_object_get(msg, "op"));
		enum purge_op o = purge_op_from_string(op);
		if (o < 0)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "unknown op '%.64s'", op);
		return proto_validate_args(o, json_object_get(msg, "args"), err);
	}
	case PURGE_MSG_REPLY: {
		bool ok = json_is_true(json_object_get(msg, "ok"));
		json_t *e = json_object_get(msg, "error");
		if (ok && e)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "a successful reply carries no 'error'");
		if (!ok && !e)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "a failed reply needs 'error'");
		if (e && purge_err_from_string(json_string_value(json_object_get(e, "code"))) < 0)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "unknown error code '%s'",
					  json_string_value(json_object_get(e, "code")));
		return 0;
	}
	case PURGE_MSG_PROGRESS: {
		json_t *p = json_object_get(msg, "progress");
		if (json_integer_value(json_object_get(p, "done")) > json_integer_value(json_object_get(p, "total")))
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "progress 'done' exceeds 'total'");
		return 0;
	}
	case PURGE_MSG_MANIFEST:
		if (json_array_size(json_object_get(msg, "manifest")) == 0 && !json_object_get(msg, "deleted"))
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "a manifest message reports no deletion");
		return 0;
	default:
		return 0;
	}
}

int proto_decode(const void *payload, size_t len, unsigned allowed,
		 enum purge_msg_type *ret_type, json_t **ret_msg, struct proto_error *reterr)
{
	json_t *msg = NULL;
	int found = -1, r;

	r = proto_unpack_json(payload, len, &msg, reterr);
	if (r < 0)
		return r;

	/*
	 * Another protocol version first, whatever else the message holds: its
	 * sender and this program come from different builds, and saying so is
	 * the only useful answer (peer_version lets the caller answer in its form).
	 */
	json_t *v = json_object_get(msg, "v");
	json_int_t vv = json_integer_value(v);
	if (json_is_integer(v) && vv >= 1 && vv < 1000 && vv != PURGE_PROTO_VERSION) {
		r = proto_fail(reterr, PURGE_ERR_BAD_REQUEST, "protocol version %lld is not this program's %d (purged "
			       PURGED_VERSION "): they come from different builds; after an upgrade, restart purged "
			       "(systemctl restart purged) and use the purgectl it came with",
			       (long long)json_integer_value(v), PURGE_PROTO_VERSION);
		if (reterr)
			reterr->peer_version = (int)vv;
		goto fail;
	}
	/* A job of another build, before its fields (a field it adds or drops would hide why). */
	const char *build = json_string_value(json_object_get(msg, "build"));
	if (build && strcmp(build, PURGED_VERSION) != 0) {
		r = proto_fail(reterr, PURGE_ERR_BAD_REQUEST, "build %.32s is not this program's " PURGED_VERSION
			       ": they come from different builds; after an upgrade, restart purged", build);
		if (reterr)
			text_safe(reterr->peer_build, sizeof(reterr->peer_build), build, strlen(build), TEXT_ESCAPE_CONTROLS);
		goto fail;
	}
	const char *kind = json_string_value(json_object_get(msg, "kind"));
	found = purge_msg_type_from_string(kind);
	if (json_object_get(msg, "kind") && !kind) {
		r = proto_fail(reterr, PURGE_ERR_BAD_REQUEST, "key 'kind' must be a string");
		goto fail;
	}
	if (!kind) {
		r = proto_fail(reterr, PURGE_ERR_BAD_REQUEST, "the message has no 'kind'%s",
			       json_object_get(msg, "ok") || json_object_get(msg, "outcome")
				       ? ": its sender speaks an older protocol than this program's (purged " PURGED_VERSION
					 "); after an upgrade, restart purged (systemctl restart purged)"
				       : "");
		goto fail;
	}
	if (found < 0) {
		r = proto_fail(reterr, PURGE_ERR_BAD_REQUEST, "unknown message kind '%.64s'", kind);
		goto fail;
	}
	if (!(allowed & PURGE_MSG_MASK(found))) {
		r = proto_fail(reterr, PURGE_ERR_BAD_REQUEST, "a %s is not expected here",
			       purge_msg_type_to_string(found));
		goto fail;
	}
	r = check_kind(found, msg, reterr);
	if (r < 0)
		goto fail;
	*ret_type = found;
	*ret_msg = msg;
	return 0;
fail:
	json_decref(msg);
	return r;
}
