/* Unit tests for proto/: round trips of every message kind, and a table of bad frames. */
#include <check.h>
#include "unit.h"
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include "buildconf.h"
#include "purged/messages.h"
#include "purged/proto.h"

/* ------------------------------------------------------------ helpers */

/* Decode a whole frame produced by proto_encode. */
static int decode_frame(const uint8_t *buf, size_t len, unsigned allowed, enum purge_msg_type *t, json_t **msg,
			struct proto_error *err)
{
	struct proto_reader r;
	const uint8_t *p;
	size_t n;
	int rc;

	proto_reader_init(&r);
	ck_assert_int_eq(proto_reader_feed(&r, buf, len), 0);
	rc = proto_reader_next(&r, &p, &n);
	ck_assert_int_eq(rc, 1);
	rc = proto_decode(p, n, allowed, t, msg, err);
	proto_reader_free(&r);
	return rc;
}

static json_t *roundtrip(json_t *in, enum purge_msg_type want)
{
	uint8_t *buf;
	size_t len;
	enum purge_msg_type t = _PURGE_MSG_INVALID;
	json_t *out = NULL;
	struct proto_error err = { 0 };

	ck_assert_ptr_nonnull(in);
	ck_assert_int_eq(proto_encode(in, &buf, &len), 0);
	int rc = decode_frame(buf, len, ~0u, &t, &out, &err);
	ck_assert_msg(rc == 0, "decode failed: %s", err.message);
	ck_assert_int_eq(t, want);
	ck_assert_msg(json_equal(in, out), "round trip changed the message");
	free(buf);
	json_decref(in);
	return out;
}

/* ------------------------------------------------------------ round trips */

START_TEST(test_roundtrip_requests)
{
	for (int op = 0; op < _PURGE_OP_MAX; op++) {
		json_t *args = json_object();
		if (op == PURGE_OP_PLAN || op == PURGE_OP_PURGE)
			json_object_set_new(args, "target", json_string("demo"));
		if (op == PURGE_OP_TASKS_GET || op == PURGE_OP_TASKS_CANCEL || op == PURGE_OP_TASKS_WATCH ||
		    op == PURGE_OP_TASKS_MANIFEST || op == PURGE_OP_TASKS_APPROVE || op == PURGE_OP_TASKS_REJECT)
			json_object_set_new(args, "id", json_string("01a227ad-f7bc-7304-b19f-9b57b020426a"));
		if (op == PURGE_OP_TASKS_LIST)
			json_object_set_new(args, "limit", json_integer(10));
		if (op == PURGE_OP_TASKS_ARCHIVE)
			json_object_set_new(args, "id", json_string("01a227ad-f7bc-7304-b19f-9b57b020426a"));
		if (op == PURGE_OP_CRDB_RESTORE) {
			json_object_set_new(args, "task", json_string("01a227ad-f7bc-7304-b19f-9b57b020426a"));
			json_object_set_new(args, "replace", json_true());
		}
		if (op == PURGE_OP_REST_REFUSALS) {
			json_object_set_new(args, "address", json_string("127.0.0.1"));
			json_object_set_new(args, "count", json_integer(3));
			json_object_set_new(args, "reason", json_string("missing_token"));
		}
		if (op == PURGE_OP_CRDB_PURGE) {
			json_object_set_new(args, "guid", json_string("1d7741cc-1110-4e2f-bc6c-935292783d24"));
			json_object_set_new(args, "instances", json_pack("[i, i]", 1, 2));
		}
		json_decref(roundtrip(proto_request_new(7, op, args), PURGE_MSG_REQUEST));
	}
}
END_TEST

START_TEST(test_roundtrip_request_with_auth)
{
	json_t *r = proto_request_new(1, PURGE_OP_STATUS, NULL);
	json_object_set_new(r, "auth", json_string("secret-token"));
	json_decref(roundtrip(r, PURGE_MSG_REQUEST));
}
END_TEST

START_TEST(test_roundtrip_replies_events)
{
	json_decref(roundtrip(proto_reply_ok(3, json_pack("{s:s, s:i, s:b, s:n, s:f}", "a", "b", "n", -5, "t", 1, "z",
							  "x", 1.5)),
			      PURGE_MSG_REPLY));
	json_decref(roundtrip(proto_reply_ok(3, NULL), PURGE_MSG_REPLY));
	for (int e = 0; e < _PURGE_ERR_MAX; e++)
		json_decref(roundtrip(proto_reply_error(4, e, "failed: %d", e), PURGE_MSG_REPLY));
	json_decref(roundtrip(proto_event_new(5, "progress", json_pack("{s:s}", "id", "x")), PURGE_MSG_EVENT));
}
END_TEST

START_TEST(test_roundtrip_executor_hop)
{
	json_decref(roundtrip(json_pack("{s:s, s:i, s:s, s:{s:s, s:s, s:s, s:b, s:{s:i}, s:{s:s}}}", "kind", "job",
					"v", PURGE_PROTO_VERSION, "build", "0.1.0", "job", "task_id", "01a227ad-f7bc-7304-b19f-9b57b020426a", "target", "demo",
					"type", "noop", "dry_run", 0, "settings", "objects", 3, "secrets", "password",
					"pw"),
			      PURGE_MSG_JOB));
	json_decref(roundtrip(json_pack("{s:s, s:{s:s, s:i, s:i}}", "kind", "progress", "progress", "step", "objects", "done", 1, "total", 3),
			      PURGE_MSG_PROGRESS));
	json_decref(roundtrip(json_pack("{s:s, s:{s:b, s:{s:i}}}", "kind", "result", "result", "ok", 1, "counts", "objects", 3),
			      PURGE_MSG_RESULT));
	json_decref(roundtrip(json_pack("{s:s, s:{s:b, s:s}}", "kind", "result", "result", "ok", 0, "error", "boom"),
			      PURGE_MSG_RESULT));
	json_decref(roundtrip(json_pack("{s:s, s:[{s:s, s:i, s:s}, {s:s, s:s}]}", "kind", "manifest", "manifest", "kind", "projects", "id", 4,
					"name", "Web", "kind", "keys", "id", "user:1"),
			      PURGE_MSG_MANIFEST));
}
END_TEST

/* Each executor-hop struct through its pack, the real encoder and decoder, and its unpack: a key renamed
 * on one side (or missing from the schema) fails here. */
START_TEST(test_message_structs)
{
	json_t *settings = json_pack("{s:i}", "objects", 3), *secrets = json_pack("{s:s}", "password", "pw");
	json_t *archive = json_pack("{s:s, s:i}", "mode", "write", "max_bytes", 1048576);
	json_t *options = json_pack("{s:b}", "replace", 1);
	struct msg_job j = { .task_id = "01a227ad-f7bc-7304-b19f-9b57b020426a", .operation = "purge", .target = "demo",
			     .type = "noop", .dry_run = true, .settings = settings, .secrets = secrets,
			     .archive = archive, .options = options }, j2;
	json_t *m = roundtrip(msg_job_pack(&j), PURGE_MSG_JOB);
	msg_job_unpack(m, &j2);
	ck_assert_str_eq(j2.task_id, j.task_id);
	ck_assert_str_eq(j2.operation, "purge");
	ck_assert_str_eq(j2.target, "demo");
	ck_assert_str_eq(j2.type, "noop");
	ck_assert(j2.dry_run);
	ck_assert(json_equal(j2.settings, settings) && json_equal(j2.secrets, secrets));
	ck_assert(json_equal(j2.archive, archive) && json_equal(j2.options, options));
	ck_assert_str_eq(j2.build, PURGED_VERSION);
	json_decref(m);

	struct msg_progress p = { .step = "objects", .done = 2, .total = 3 }, p2;
	m = roundtrip(msg_progress_pack(&p), PURGE_MSG_PROGRESS);
	msg_progress_unpack(m, &p2);
	ck_assert_str_eq(p2.step, "objects");
	ck_assert(p2.done == 2 && p2.total == 3);
	json_decref(m);

	json_t *entries = json_pack("[{s:s, s:i, s:s}]", "kind", "Person", "id", 4, "name", "Ann");
	json_t *deleted = json_pack("{s:i}", "instance 1", 1000);
	struct msg_manifest mf = { .entries = entries, .deleted = deleted }, mf2;
	m = roundtrip(msg_manifest_pack(&mf), PURGE_MSG_MANIFEST);
	msg_manifest_unpack(m, &mf2);
	ck_assert(json_equal(mf2.entries, entries) && json_equal(mf2.deleted, deleted));
	json_decref(m);

	json_t *counts = json_pack("{s:i}", "objects", 3), *warnings = json_pack("[s]", "archived projects unseen");
	struct msg_result r = { .ok = false, .counts = counts, .error = "boom", .warnings = warnings,
				.has_archive = true, .archive_bytes = 77, .archive_records = 5,
				.archive_sha256 = "ab" }, r2;
	m = roundtrip(msg_result_pack(&r), PURGE_MSG_RESULT);
	msg_result_unpack(m, &r2);
	ck_assert(!r2.ok);
	ck_assert_str_eq(r2.error, "boom");
	ck_assert(json_equal(r2.counts, counts) && json_equal(r2.warnings, warnings) && !r2.errors);
	ck_assert(r2.has_archive && r2.archive_bytes == 77 && r2.archive_records == 5);
	ck_assert_str_eq(r2.archive_sha256, "ab");
	json_decref(m);
	m = roundtrip(msg_result_pack(&(struct msg_result){ .ok = true }), PURGE_MSG_RESULT);
	msg_result_unpack(m, &r2);
	ck_assert(r2.ok && !r2.has_archive && !r2.error && !r2.counts);
	json_decref(m);

	/* The control hop: request, reply (both ways), event. */
	struct msg_request rq;
	m = roundtrip(proto_request_new(7, PURGE_OP_PLAN, json_pack("{s:s}", "target", "demo")), PURGE_MSG_REQUEST);
	msg_request_unpack(m, &rq);
	ck_assert(rq.id == 7 && rq.op == PURGE_OP_PLAN && rq.auth == NULL);
	ck_assert_str_eq(json_string_value(json_object_get(rq.args, "target")), "demo");
	json_decref(m);
	struct msg_reply rp;
	m = roundtrip(proto_reply_ok(8, json_pack("{s:i}", "n", 1)), PURGE_MSG_REPLY);
	ck_assert(msg_reply_unpack(m, &rp) && rp.ok && rp.id == 8 && !rp.error);
	ck_assert_int_eq(json_integer_value(json_object_get(rp.result, "n")), 1);
	json_decref(m);
	m = roundtrip(proto_reply_error(9, PURGE_ERR_BUSY, "queue full"), PURGE_MSG_REPLY);
	ck_assert(msg_reply_unpack(m, &rp) && !rp.ok && rp.id == 9 && !rp.result);
	ck_assert_str_eq(rp.error_code, "busy");
	ck_assert_str_eq(rp.error_message, "queue full");
	json_decref(m);
	ck_assert(!msg_reply_unpack(NULL, &rp));
	struct msg_event ev;
	m = roundtrip(proto_event_new(10, "end", json_pack("{s:s}", "status", "finished")), PURGE_MSG_EVENT);
	ck_assert(!msg_reply_unpack(m, &rp)); /* an event is not a reply */
	msg_event_unpack(m, &ev);
	ck_assert(ev.id == 10);
	ck_assert_str_eq(ev.event, "end");
	ck_assert_str_eq(json_string_value(json_object_get(ev.task, "status")), "finished");
	json_decref(m);

	json_decref(settings);
	json_decref(secrets);
	json_decref(archive);
	json_decref(options);
	json_decref(entries);
	json_decref(deleted);
	json_decref(counts);
	json_decref(warnings);
}
END_TEST

START_TEST(test_names)
{
	for (int op = 0; op < _PURGE_OP_MAX; op++)
		ck_assert_int_eq(purge_op_from_string(purge_op_to_string(op)), op);
	for (int e = 0; e < _PURGE_ERR_MAX; e++) {
		ck_assert_int_eq(purge_err_from_string(purge_err_to_string(e)), e);
		ck_assert_int_ge(purge_err_http_status(e), 400);
		ck_assert_int_gt(purge_err_exit_code(e), 0);
	}
	ck_assert_int_eq(purge_op_from_string("nope"), _PURGE_OP_INVALID);
	ck_assert_int_eq(purge_err_from_string(NULL), _PURGE_ERR_INVALID);
	ck_assert(proto_is_task_id("01a227ad-f7bc-7304-b19f-9b57b020426a"));
	ck_assert(!proto_is_task_id("01a227ad-f7bc-7304-b19f-9b57b020426A"));
	ck_assert(!proto_is_task_id("../../etc/passwd"));
	ck_assert(!proto_is_task_id(NULL));
	ck_assert(proto_is_name("itop-1.prod_x"));
	ck_assert(!proto_is_name("-x"));
	ck_assert(!proto_is_name("a/b"));
	ck_assert(!proto_is_name(""));
}
END_TEST

/* ------------------------------------------------------------ bad payloads */

/* Each case packs a payload with msgpack-c directly, bypassing our encoder. */
typedef void (*pack_fn)(msgpack_packer *pk);

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void pk_req_head(msgpack_packer *pk, int extra)
{
	msgpack_pack_map(pk, 4 + extra);
	pk_str(pk, "kind");
	pk_str(pk, "request");
	pk_str(pk, "v");
	msgpack_pack_int(pk, PURGE_PROTO_VERSION);
	pk_str(pk, "id");
	msgpack_pack_int(pk, 1);
}

/* A status request up to its "id" key: the caller packs the id's value, then "op". */
static void pk_status_with_id(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 4);
	pk_str(pk, "kind");
	pk_str(pk, "request");
	pk_str(pk, "v");
	msgpack_pack_int(pk, PURGE_PROTO_VERSION);
	pk_str(pk, "id");
}
/* A request whose op is @n raw bytes packed as a string. */
static void pk_op_bytes(msgpack_packer *pk, const char *b, size_t n)
{
	pk_req_head(pk, 0);
	pk_str(pk, "op");
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, b, n);
}
static void bad_array_top(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }
static void bad_int_top(msgpack_packer *pk) { msgpack_pack_int(pk, 3); }
static void bad_no_kind(msgpack_packer *pk) { msgpack_pack_map(pk, 1); pk_str(pk, "x"); msgpack_pack_int(pk, 1); }
static void bad_unknown_op(msgpack_packer *pk) { pk_req_head(pk, 0); pk_str(pk, "op"); pk_str(pk, "format.disk"); }
static void bad_op_type(msgpack_packer *pk) { pk_req_head(pk, 0); pk_str(pk, "op"); msgpack_pack_int(pk, 3); }
static void bad_missing_id(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	pk_str(pk, "kind");
	pk_str(pk, "request");
	pk_str(pk, "v");
	msgpack_pack_int(pk, PURGE_PROTO_VERSION);
	pk_str(pk, "op");
	pk_str(pk, "status");
}
static void bad_version(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	pk_str(pk, "v");
	msgpack_pack_int(pk, 99);
	pk_str(pk, "id");
	msgpack_pack_int(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "status");
}
static void bad_negative_id(msgpack_packer *pk) { pk_status_with_id(pk); msgpack_pack_int(pk, -1); pk_str(pk, "op"); pk_str(pk, "status"); }
static void bad_unknown_key(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "status");
	pk_str(pk, "sudo");
	msgpack_pack_true(pk);
}
/* tasks.approve takes the task id and nothing else: no "as" a client could claim to be. */
static void bad_approve_extra(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "tasks.approve");
	pk_str(pk, "args");
	msgpack_pack_map(pk, 2);
	pk_str(pk, "id");
	pk_str(pk, "01a227ad-f7bc-7304-b19f-9b57b020426a");
	pk_str(pk, "approver");
	pk_str(pk, "someone-else");
}
static void bad_approve_no_id(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "tasks.reject");
	pk_str(pk, "args");
	msgpack_pack_map(pk, 0);
}
static void bad_args_type(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "purge");
	pk_str(pk, "args");
	pk_str(pk, "demo");
}
static void bad_missing_target(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "purge");
	pk_str(pk, "args");
	msgpack_pack_map(pk, 0);
}
static void bad_target_name(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "purge");
	pk_str(pk, "args");
	msgpack_pack_map(pk, 1);
	pk_str(pk, "target");
	pk_str(pk, "../etc");
}
static void bad_task_id(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "tasks.get");
	pk_str(pk, "args");
	msgpack_pack_map(pk, 1);
	pk_str(pk, "id");
	pk_str(pk, "1; DROP TABLE");
}
static void bad_deep(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "status");
	pk_str(pk, "args");
	for (int i = 0; i < 20; i++) {
		msgpack_pack_map(pk, 1);
		pk_str(pk, "k");
	}
	msgpack_pack_nil(pk);
}
static void bad_huge_string(msgpack_packer *pk)
{
	static char big[PURGE_STRING_MAX + 10];
	memset(big, 'a', sizeof(big));
	pk_op_bytes(pk, big, sizeof(big));
}
static void bad_binary(msgpack_packer *pk)
{
	pk_req_head(pk, 0);
	pk_str(pk, "op");
	msgpack_pack_bin(pk, 6);
	msgpack_pack_bin_body(pk, "status", 6);
}
static void bad_int_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 1);
}
static void bad_dup_key(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "status");
	pk_str(pk, "op");
	pk_str(pk, "reload");
}
static void bad_utf8(msgpack_packer *pk) { pk_op_bytes(pk, "\xff\xfe\x01", 3); }
static void bad_nul(msgpack_packer *pk) { pk_op_bytes(pk, "sta\0tus", 7); }
static void bad_two_kinds(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "status");
	pk_str(pk, "ok");
	msgpack_pack_true(pk);
}
static void bad_auth_long(msgpack_packer *pk)
{
	char tok[PURGE_AUTH_MAX + 2];
	memset(tok, 'x', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "status");
	pk_str(pk, "auth");
	pk_str(pk, tok);
}
static void bad_big_array(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "status");
	pk_str(pk, "args");
	msgpack_pack_array(pk, PURGE_LIST_MAX + 1);
	for (unsigned i = 0; i < PURGE_LIST_MAX + 1; i++)
		msgpack_pack_nil(pk);
}
static void bad_progress_overrun(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	pk_str(pk, "kind");
	pk_str(pk, "progress");
	pk_str(pk, "progress");
	msgpack_pack_map(pk, 2);
	pk_str(pk, "done");
	msgpack_pack_int(pk, 5);
	pk_str(pk, "total");
	msgpack_pack_int(pk, 3);
}
static void bad_reply_both(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 4);
	pk_str(pk, "kind");
	pk_str(pk, "reply");
	pk_str(pk, "id");
	msgpack_pack_int(pk, 1);
	pk_str(pk, "ok");
	msgpack_pack_false(pk);
	pk_str(pk, "result");
	msgpack_pack_nil(pk);
}
static void bad_huge_uint(msgpack_packer *pk) { pk_status_with_id(pk); msgpack_pack_uint64(pk, UINT64_MAX); pk_str(pk, "op"); pk_str(pk, "status"); }
static void bad_claimed_entries(msgpack_packer *pk)
{
	/* A 5-byte payload claiming 4 billion entries: must not allocate them. */
	msgpack_pack_array(pk, 0xffffffffu);
}
static void crdb_head(msgpack_packer *pk)
{
	pk_req_head(pk, 1);
	pk_str(pk, "op");
	pk_str(pk, "crdb.purge");
	pk_str(pk, "args");
	msgpack_pack_map(pk, 2);
	pk_str(pk, "guid");
	pk_str(pk, "g1");
	pk_str(pk, "instances");
}
static void bad_instances_empty(msgpack_packer *pk) { crdb_head(pk); msgpack_pack_array(pk, 0); }
static void bad_instances_dup(msgpack_packer *pk)
{
	crdb_head(pk);
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 1);
}
static void bad_instances_zero(msgpack_packer *pk)
{
	crdb_head(pk);
	msgpack_pack_array(pk, 1);
	msgpack_pack_int(pk, 0);
}
static void bad_instances_string(msgpack_packer *pk)
{
	crdb_head(pk);
	msgpack_pack_array(pk, 1);
	pk_str(pk, "1");
}
static void bad_float_id(msgpack_packer *pk) { pk_status_with_id(pk); msgpack_pack_double(pk, 1.5); pk_str(pk, "op"); pk_str(pk, "status"); }

static const struct {
	const char *name;
	pack_fn fn;
	enum purge_err code;
	const char *needle;
} bad_cases[] = {
	{ "array at top", bad_array_top, PURGE_ERR_BAD_REQUEST, "must be a map" },
	{ "integer at top", bad_int_top, PURGE_ERR_BAD_REQUEST, "must be a map" },
	{ "no kind key", bad_no_kind, PURGE_ERR_BAD_REQUEST, "has no 'kind'" },
	{ "unknown op", bad_unknown_op, PURGE_ERR_BAD_REQUEST, "unknown op 'format.disk'" },
	{ "op not a string", bad_op_type, PURGE_ERR_BAD_REQUEST, "key 'op' must be a string, got integer" },
	{ "missing id", bad_missing_id, PURGE_ERR_BAD_REQUEST, "missing key 'id'" },
	{ "wrong version", bad_version, PURGE_ERR_BAD_REQUEST, "version 99" },
	{ "negative id", bad_negative_id, PURGE_ERR_BAD_REQUEST, "key 'id' must be a non-negative integer" },
	{ "unknown key", bad_unknown_key, PURGE_ERR_BAD_REQUEST, "unknown key 'sudo'" },
	{ "approve with an approver", bad_approve_extra, PURGE_ERR_BAD_REQUEST, "unknown key 'args.approver'" },
	{ "reject without an id", bad_approve_no_id, PURGE_ERR_BAD_REQUEST, "missing key 'args.id'" },
	{ "args not a map", bad_args_type, PURGE_ERR_BAD_REQUEST, "key 'args' must be a map, got string" },
	{ "missing target", bad_missing_target, PURGE_ERR_BAD_REQUEST, "missing key 'args.target'" },
	{ "bad target name", bad_target_name, PURGE_ERR_BAD_REQUEST, "key 'args.target' must be a name" },
	{ "bad task id", bad_task_id, PURGE_ERR_BAD_REQUEST, "key 'args.id' must be a task id" },
	{ "deep nesting", bad_deep, PURGE_ERR_BAD_REQUEST, "nested deeper" },
	{ "huge string", bad_huge_string, PURGE_ERR_TOO_LARGE, "exceeds the limit" },
	{ "binary value", bad_binary, PURGE_ERR_BAD_REQUEST, "binary" },
	{ "integer key", bad_int_key, PURGE_ERR_BAD_REQUEST, "map key must be a string" },
	{ "duplicate key", bad_dup_key, PURGE_ERR_BAD_REQUEST, "duplicate key 'op'" },
	{ "invalid UTF-8", bad_utf8, PURGE_ERR_BAD_REQUEST, "UTF-8" },
	{ "NUL in string", bad_nul, PURGE_ERR_BAD_REQUEST, "NUL" },
	{ "a request with a reply's key", bad_two_kinds, PURGE_ERR_BAD_REQUEST, "unknown key 'ok'" },
	{ "auth too long", bad_auth_long, PURGE_ERR_BAD_REQUEST, "key 'auth' must be a token string" },
	{ "array too long", bad_big_array, PURGE_ERR_TOO_LARGE, "entries exceeds" },
	{ "progress overrun", bad_progress_overrun, PURGE_ERR_BAD_REQUEST, "exceeds 'total'" },
	{ "failed reply with result", bad_reply_both, PURGE_ERR_BAD_REQUEST, "needs 'error'" },
	{ "uint64 overflow", bad_huge_uint, PURGE_ERR_BAD_REQUEST, "out of range" },
	{ "no instances", bad_instances_empty, PURGE_ERR_BAD_REQUEST, "'args.instances' must be a non-empty array" },
	{ "duplicate instances", bad_instances_dup, PURGE_ERR_BAD_REQUEST, "unique integers" },
	{ "instance 0", bad_instances_zero, PURGE_ERR_BAD_REQUEST, "from 1 to 65535" },
	{ "instance as string", bad_instances_string, PURGE_ERR_BAD_REQUEST, "args.instances" },
	{ "huge claimed array", bad_claimed_entries, PURGE_ERR_BAD_REQUEST, "claim more entries" },
	{ "float id", bad_float_id, PURGE_ERR_BAD_REQUEST, "key 'id' must be a non-negative integer, got float" },
};

START_TEST(test_bad_payloads)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	enum purge_msg_type t = 77;
	json_t *msg = (json_t *)0x1;
	struct proto_error err;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	bad_cases[_i].fn(&pk);
	memset(&err, 0, sizeof(err));
	int r = proto_decode(sb.data, sb.size, ~0u, &t, &msg, &err);
	ck_assert_msg(r < 0, "%s: accepted", bad_cases[_i].name);
	ck_assert_msg(err.code == bad_cases[_i].code, "%s: code %s, want %s (%s)", bad_cases[_i].name,
		      purge_err_to_string(err.code), purge_err_to_string(bad_cases[_i].code), err.message);
	ck_assert_msg(strstr(err.message, bad_cases[_i].needle), "%s: message '%s' lacks '%s'", bad_cases[_i].name,
		      err.message, bad_cases[_i].needle);
	/* Outputs stay untouched on failure. */
	ck_assert_int_eq(t, 77);
	ck_assert_ptr_eq(msg, (json_t *)0x1);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_not_allowed_kind)
{
	uint8_t *buf;
	size_t len;
	enum purge_msg_type t;
	json_t *msg, *req = proto_request_new(1, PURGE_OP_STATUS, NULL);
	struct proto_error err;

	ck_assert_int_eq(proto_encode(req, &buf, &len), 0);
	ck_assert_int_lt(proto_decode(buf + 4, len - 4, PURGE_MSG_MASK(PURGE_MSG_JOB), &t, &msg, &err), 0);
	ck_assert(strstr(err.message, "a request is not expected here"));
	free(buf);
	json_decref(req);
}
END_TEST

START_TEST(test_trailing_and_truncated)
{
	uint8_t *buf;
	size_t len;
	enum purge_msg_type t;
	json_t *msg, *req = proto_request_new(1, PURGE_OP_STATUS, NULL);
	struct proto_error err;

	ck_assert_int_eq(proto_encode(req, &buf, &len), 0);
	/* Every truncation of the payload is refused. */
	for (size_t n = 1; n < len - 4; n++) {
		ck_assert_int_lt(proto_decode(buf + 4, n, ~0u, &t, &msg, &err), 0);
		ck_assert(strstr(err.message, "truncated") || strstr(err.message, "malformed") ||
			  strstr(err.message, "claim more entries"));
	}
	/* Trailing bytes are refused. */
	uint8_t *more = malloc(len + 1);
	memcpy(more, buf, len);
	more[len] = 0xc0;
	ck_assert_int_lt(proto_decode(more + 4, len - 3, ~0u, &t, &msg, &err), 0);
	ck_assert(strstr(err.message, "trailing"));
	ck_assert_int_lt(proto_decode(buf, 0, ~0u, &t, &msg, &err), 0);
	free(more);
	free(buf);
	json_decref(req);
}
END_TEST

static char *result_text(const json_t *reply, int *ret)
{
	uint8_t *buf;
	size_t len, tlen;
	uint64_t id = 0;
	char *text = NULL;
	struct proto_error err;
	ck_assert_int_eq(proto_encode(reply, &buf, &len), 0);
	*ret = proto_reply_result_text(buf + 4, len - 4, NULL, NULL, &id, &text, &tlen, &err);
	if (*ret > 0) {
		ck_assert_uint_eq(id, (uint64_t)json_integer_value(json_object_get(reply, "id")));
		ck_assert_uint_eq(tlen, strlen(text));
	}
	free(buf);
	return text;
}

static bool never(uint64_t id, void *ctx)
{
	(void)id, (void)ctx;
	return false;
}

/* purged-rest's relays: the JSON text straight from msgpack is json_dumps's. */
START_TEST(test_result_text)
{
	const char *results[] = {
		"{\"id\":\"01a2\",\"n\":-5,\"big\":9223372036854775807,\"f\":1.5,\"g\":2.0,\"t\":true,\"no\":null}",
		"[\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bell \\u0007 del \\u007f\"]",
		"{\"utf8\":\"\\u00e9t\\u00e9 \\u2028 \\ud83d\\ude00\",\"empty\":{},\"list\":[],\"nested\":{\"a\":[1,[2,[3]]]}}",
		"\"just a string\"", "42", "null", "[1e300,-0.25,1e-300]",
	};
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		json_error_t jerr;
		json_t *res = json_loads(results[i], JSON_DECODE_ANY, &jerr);
		ck_assert_msg(res != NULL, "%s: %s", results[i], jerr.text);
		json_t *reply = proto_reply_ok(7, json_incref(res));
		char *want = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
		int r;
		char *text = result_text(reply, &r);
		ck_assert_int_eq(r, 1);
		ck_assert_str_eq(text, want);
		free(text);
		free(want);
		json_decref(reply);
		json_decref(res);
	}

	/* Not a plain success: left to proto_decode. */
	int r;
	json_t *m = proto_reply_error(3, PURGE_ERR_NOT_FOUND, "no such task");
	ck_assert_ptr_null(result_text(m, &r));
	ck_assert_int_eq(r, 0);
	json_decref(m);
	m = proto_event_new(3, "progress", json_object());
	ck_assert_ptr_null(result_text(m, &r));
	ck_assert_int_eq(r, 0);
	json_decref(m);
	m = proto_request_new(3, PURGE_OP_STATUS, NULL);
	ck_assert_ptr_null(result_text(m, &r));
	ck_assert_int_eq(r, 0);
	json_decref(m);
	m = json_pack("{s:s, s:i, s:b}", "kind", "reply", "id", 9, "ok", 1); /* no result: "{}", as json_dumps of none */
	char *text = result_text(m, &r);
	ck_assert_int_eq(r, 1);
	ck_assert_str_eq(text, "{}");
	free(text);
	json_decref(m);

	/* Not wanted by the caller: left alone. */
	uint8_t *buf;
	size_t len, tlen;
	uint64_t id;
	struct proto_error err;
	m = proto_reply_ok(5, json_string("x"));
	ck_assert_int_eq(proto_encode(m, &buf, &len), 0);
	ck_assert_int_eq(proto_reply_result_text(buf + 4, len - 4, never, NULL, &id, &text, &tlen, &err), 0);
	free(buf);
	json_decref(m);

	/* The decoder's limits hold: bad UTF-8 and NUL bytes are refused. */
	static const uint8_t bad_utf8[] = { 0x84, 0xa4, 'k', 'i', 'n', 'd', 0xa5, 'r', 'e', 'p', 'l', 'y', 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'k', 0xc3,
					    0xa6, 'r', 'e', 's', 'u', 'l', 't', 0xa2, 0xc3, 0x28 };
	ck_assert_int_lt(proto_reply_result_text(bad_utf8, sizeof(bad_utf8), NULL, NULL, &id, &text, &tlen, &err), 0);
	ck_assert(strstr(err.message, "UTF-8"));
	static const uint8_t surrogate[] = { 0x84, 0xa4, 'k', 'i', 'n', 'd', 0xa5, 'r', 'e', 'p', 'l', 'y', 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'k', 0xc3, 0xa6,
					     'r', 'e', 's', 'u', 'l', 't', 0xa3, 0xed, 0xa0, 0x80 };
	ck_assert_int_lt(proto_reply_result_text(surrogate, sizeof(surrogate), NULL, NULL, &id, &text, &tlen, &err), 0);
	static const uint8_t nul[] = { 0x84, 0xa4, 'k', 'i', 'n', 'd', 0xa5, 'r', 'e', 'p', 'l', 'y', 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'k', 0xc3,
				       0xa6, 'r', 'e', 's', 'u', 'l', 't', 0xa2, 'a', 0x00 };
	ck_assert_int_lt(proto_reply_result_text(nul, sizeof(nul), NULL, NULL, &id, &text, &tlen, &err), 0);
	ck_assert(strstr(err.message, "NUL"));
}
END_TEST

/* purged-rest packs its requests without building them: the same bytes as the object's. */
START_TEST(test_encode_request)
{
	const char *auths[] = { NULL, "s3cret-token" };
	for (int k = 0; k < 2; k++) {
		for (int with_args = 0; with_args < 2; with_args++) {
			json_t *args = with_args ? json_pack("{s:s, s:[i,i]}", "guid", "g", "instances", 1, 2) : NULL;
			json_t *req = proto_request_new(77, PURGE_OP_CRDB_PURGE, json_incref(args));
			uint8_t *a, *b;
			size_t alen, blen;
			if (auths[k])
				json_object_set_new(req, "auth", json_string(auths[k]));
			ck_assert_int_eq(proto_encode(req, &a, &alen), 0);
			ck_assert_int_eq(proto_encode_request(77, PURGE_OP_CRDB_PURGE, args, auths[k], &b, &blen), 0);
			ck_assert_uint_eq(alen, blen);
			ck_assert(memcmp(a, b, alen) == 0);
			free(a);
			free(b);
			json_decref(req);
			json_decref(args);
		}
	}
	uint8_t *b;
	size_t blen;
	json_t *list = json_array();
	ck_assert_int_lt(proto_encode_request(1, PURGE_OP_STATUS, list, NULL, &b, &blen), 0);
	json_decref(list);
	/* A token that is no string would make the supervisor drop the link: refused here. */
	ck_assert_int_eq(proto_encode_request(1, PURGE_OP_STATUS, NULL, "t\xd8\xd8", &b, &blen), -EINVAL);
}
END_TEST

START_TEST(test_random_bytes)
{
	/* Random payloads never crash the decoder (fuzzing covers this more deeply). */
	unsigned seed = 12345;
	uint8_t buf[256];
	for (int round = 0; round < 20000; round++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % sizeof(buf));
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		if (round % 2)
			buf[0] = 0x80 | (buf[0] & 0x0f); /* fixmap: go deeper than the first byte */
		enum purge_msg_type t;
		json_t *msg = NULL;
		struct proto_error err;
		if (proto_decode(buf, n, ~0u, &t, &msg, &err) == 0)
			json_decref(msg);
	}
}
END_TEST

/* ------------------------------------------------------------ frames */

START_TEST(test_frame_reader)
{
	struct proto_reader r;
	const uint8_t *p;
	size_t n;
	uint8_t *buf;
	size_t len;
	json_t *req = proto_request_new(9, PURGE_OP_STATUS, NULL);

	ck_assert_int_eq(proto_encode(req, &buf, &len), 0);
	proto_reader_init(&r);
	/* Byte by byte: nothing until the last byte. */
	for (size_t i = 0; i < len; i++) {
		ck_assert_int_eq(proto_reader_next(&r, &p, &n), 0);
		ck_assert_int_eq(proto_reader_feed(&r, buf + i, 1), 0);
	}
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), 1);
	ck_assert_uint_eq(n, len - 4);
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), 0);
	ck_assert_uint_eq(proto_reader_pending(&r), 0);
	/* Two frames in one feed. */
	ck_assert_int_eq(proto_reader_feed(&r, buf, len), 0);
	ck_assert_int_eq(proto_reader_feed(&r, buf, len), 0);
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), 1);
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), 1);
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), 0);
	/* A truncated frame stays pending. */
	ck_assert_int_eq(proto_reader_feed(&r, buf, len - 1), 0);
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), 0);
	ck_assert_uint_eq(proto_reader_pending(&r), len - 1);
	proto_reader_free(&r);

	/* Oversized length and empty frame. */
	static const uint8_t big[4] = { 0x00, 0x10, 0x00, 0x01 }, empty[4] = { 0, 0, 0, 0 };
	proto_reader_init(&r);
	proto_reader_feed(&r, big, 4);
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), -EMSGSIZE);
	proto_reader_free(&r);
	proto_reader_init(&r);
	proto_reader_feed(&r, empty, 4);
	ck_assert_int_eq(proto_reader_next(&r, &p, &n), -EBADMSG);
	proto_reader_free(&r);
	free(buf);
	json_decref(req);
}
END_TEST

START_TEST(test_encode_limits)
{
	uint8_t *buf = NULL;
	size_t len;
	json_t *arr = json_array();
	/* 2 MiB of strings: over the frame limit. */
	char *s = malloc(60000);
	memset(s, 'x', 59999);
	s[59999] = '\0';
	for (int i = 0; i < 40; i++)
		json_array_append_new(arr, json_string(s));
	json_t *msg = proto_reply_ok(1, arr);
	ck_assert_int_eq(proto_encode(msg, &buf, &len), -E2BIG);
	ck_assert_ptr_null(buf);
	json_decref(msg);
	json_t *arr2 = json_array();
	ck_assert_int_eq(proto_encode(arr2, &buf, &len), -EINVAL);
	json_decref(arr2);
	free(s);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;
	tc = unit_case(s, "proto:roundtrip", NULL, NULL,
		       (const TTest *[]){ test_roundtrip_requests, test_roundtrip_request_with_auth,
					  test_roundtrip_replies_events, test_roundtrip_executor_hop,
					  test_message_structs, test_names, test_result_text,
					  test_encode_request, NULL });
	tc = unit_case(s, "proto:validation", NULL, NULL,
		       (const TTest *[]){ test_not_allowed_kind, test_trailing_and_truncated,
					  test_random_bytes, NULL });
	tcase_add_loop_test(tc, test_bad_payloads, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_set_timeout(tc, 60);
	tc = unit_case(s, "proto:frames", NULL, NULL,
		       (const TTest *[]){ test_frame_reader, test_encode_limits, NULL });
	(void)tc;
	return s;
}

int main(void)
{
	return unit_run(proto_suite());
}
