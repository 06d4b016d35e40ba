/* Unit tests for daemon/task.c: ids, lookups, transitions' JSON, retention. */
#include <check.h>
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/task.h"
#include "purged/proto_pack.h"

#define T0 1795000000000000LL /* some instant in 2026, in usec */

START_TEST(test_ids_increase)
{
	struct task_table t;
	task_table_init(&t);
	char prev[PURGE_TASK_ID_LEN + 1] = "";
	for (int i = 0; i < 5000; i++) {
		/* The clock steps back half way: ids must still grow. */
		int64_t now = i < 2500 ? T0 + i : T0 - 1000000 + i;
		struct task *task = task_table_add(&t, "demo", "purge", "root", 0, "ctl", now);
		ck_assert(proto_is_task_id(task->id));
		ck_assert_msg(strcmp(task->id, prev) > 0, "%s !> %s", task->id, prev);
		ck_assert_int_eq(task->id[14], '7'); /* UUID version 7 */
		strcpy(prev, task->id);
	}
	ck_assert_uint_eq(t.n, 5000);
	for (size_t i = 0; i < t.n; i += 97)
		ck_assert_ptr_eq(task_table_find(&t, t.v[i]->id), t.v[i]);
	ck_assert_ptr_null(task_table_find(&t, "00000000-0000-7000-8000-000000000000"));
	ck_assert_ptr_null(task_table_find(&t, NULL));
	task_table_free(&t);
}
END_TEST

START_TEST(test_json_roundtrip)
{
	struct task_table t;
	task_table_init(&t);
	struct task *a = task_table_add(&t, "demo", "purge", "alice", 1000, "ctl", T0);
	a->state = TASK_FAILED;
	a->started = T0 + 1000000;
	a->ended = T0 + 2000000;
	a->done = 3;
	a->total = 9;
	a->step = strdup("objects");
	json_object_set_new(a->counts, "objects", json_integer(3));
	task_set_error(a, "executor killed by signal %d", 9);

	json_t *j = task_to_json(a);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "executor killed by signal 9");
	ck_assert_str_eq(json_string_value(json_object_get(j, "created")), "2026-11-18T11:06:40Z");
	struct task *b = task_from_json(j);
	ck_assert_ptr_nonnull(b);
	json_t *j2 = task_to_json(b);
	ck_assert(json_equal(j, j2));
	json_decref(j);
	json_decref(j2);
	task_free(b);

	/* Records that do not describe a task are refused. */
	json_t *junk = json_pack("{s:s, s:s}", "id", "../x", "status", "queued");
	ck_assert_ptr_null(task_from_json(junk));
	json_decref(junk);

	/* A state from a newer purged (after a downgrade) replays as failed, saying so: never dropped. */
	j = task_to_json(a);
	json_object_set_new(j, "status", json_string("paused_for_lunch"));
	b = task_from_json(j);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(b->state, TASK_FAILED);
	ck_assert_ptr_nonnull(strstr(b->error, "unknown state 'paused_for_lunch' from a newer purged"));
	task_free(b);
	/* ... whatever its words, said safely; an empty one is not a state. */
	json_object_set_new(j, "status", json_string("paused by\nops"));
	b = task_from_json(j);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(strstr(b->error, "unknown state 'paused by\\nops'"));
	task_free(b);
	json_object_set_new(j, "status", json_string(""));
	ck_assert_ptr_null(task_from_json(j));
	json_decref(j);
	task_table_free(&t);
}
END_TEST

/*
 * task_pack is the one list of a task's fields: the reply tasks.get builds
 * from it decodes to task_to_json's object, keys in the documented order,
 * every optional part present or absent as it should be.
 */
/* An awaiting task keeps its requester and deadline through the journal; without a requester it is refused. */
START_TEST(test_awaiting_roundtrip)
{
	struct task_table t;
	task_table_init(&t);
	struct task *a = task_table_add(&t, "demo", "purge", "alice", 1000, "ctl", T0);
	a->state = TASK_AWAITING;
	a->requester = strdup("uid 1000");
	a->approval_deadline = T0 + 3600 * 1000000LL;
	a->may_approve = strdup("anyone but uid 1000");
	a->needs_request_credentials = true;

	json_t *j = task_to_json(a);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "awaiting_approval");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "approval"), "deadline")),
			 "2026-11-18T12:06:40Z");
	struct task *b = task_from_json(j);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(b->state, TASK_AWAITING);
	ck_assert_str_eq(b->requester, "uid 1000");
	ck_assert_int_eq(b->approval_deadline, a->approval_deadline);
	ck_assert(b->needs_request_credentials);
	ck_assert_ptr_null(b->approved_by);
	json_t *j2 = task_to_json(b);
	ck_assert(json_equal(j, j2));
	json_decref(j2);
	task_free(b);

	json_object_del(j, "approval");
	ck_assert_ptr_null(task_from_json(j)); /* anyone could approve it */
	json_decref(j);
	task_table_free(&t);
}
END_TEST

/* task.archive (a purge of an archive = yes target) is journaled with the task, and only a well-formed one is read back. */
START_TEST(test_archive_roundtrip)
{
	struct task_table t;
	task_table_init(&t);
	struct task *a = task_table_add(&t, "demo", "purge", "alice", 1000, "ctl", T0);
	a->state = TASK_FINISHED;
	a->archive = json_pack("{s:s, s:I, s:s, s:I}", "file", "/var/lib/purged/archives/x.jsonl.zst", "bytes",
			       (json_int_t)1234, "sha256", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
			       "records", (json_int_t)51);

	json_t *j = task_to_json(a);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "archive"), "bytes")), 1234);
	struct task *b = task_from_json(j);
	ck_assert_ptr_nonnull(b);
	ck_assert(json_equal(a->archive, b->archive));
	json_t *j2 = task_to_json(b);
	ck_assert(json_equal(j, j2));
	json_decref(j2);
	task_free(b);

	/* Without a file it describes nothing: dropped, the task kept. */
	json_object_del(json_object_get(j, "archive"), "file");
	b = task_from_json(j);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(b->archive);
	task_free(b);
	json_decref(j);

	/* No archive, no key. */
	json_decref(a->archive);
	a->archive = NULL;
	j = task_to_json(a);
	ck_assert_ptr_null(json_object_get(j, "archive"));
	json_decref(j);
	task_table_free(&t);
}
END_TEST

START_TEST(test_packed_reply)
{
	struct task_table t;
	task_table_init(&t);
	struct task *a = task_table_add(&t, "crdb-1", "purge", "ci", -1, "rest", T0);
	a->state = TASK_STARTED;
	a->started = T0 + 1000000;
	a->params = json_pack("{s:[i,i]}", "instances", 1, 2);
	json_decref(a->errors);
	json_decref(a->warnings);
	a->errors = json_pack("[{s:s, s:s, s:s}]", "cluster_name", "1", "error_code", "down", "description", "gone");
	a->warnings = json_pack("[s]", "TLS not verified");
	struct task *b = task_table_add(&t, "demo", "plan", "root", 0, "ctl", T0 + 5);

	for (struct task *x = a; x; x = x == a ? b : NULL) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		uint8_t *frame;
		size_t len;
		int r = proto_frame_begin(&sb, &pk);
		if (r >= 0)
			r = proto_pack_reply_ok_head(&pk, 42);
		if (r >= 0)
			r = task_pack(x, &pk);
		ck_assert_int_eq(proto_frame_end(&sb, r, &frame, &len), 0);

		enum purge_msg_type type;
		struct proto_error err;
		json_t *reply = NULL;
		ck_assert_int_eq(proto_decode(frame + 4, len - 4, PURGE_MSG_MASK(PURGE_MSG_REPLY), &type, &reply, &err), 0);
		ck_assert_int_eq(json_integer_value(json_object_get(reply, "id")), 42);
		json_t *j = task_to_json(x), *res = json_object_get(reply, "result");
		ck_assert(json_equal(j, res));
		char *text = json_dumps(res, JSON_COMPACT);
		const char *order[] = { "\"id\":", "\"target\":", "\"operation\":", "\"status\":", "\"created\":",
					"\"started\":", "\"ended\":", "\"requested_by\":", "\"progress\":", "\"counts\":",
					"\"error\":", "\"errors\":", "\"warnings\":" };
		const char *prev = text;
		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			const char *at = strstr(text, order[i]);
			ck_assert_msg(at && at >= prev, "%s out of order in %s", order[i], text);
			prev = at;
		}
		if (x == a) {
			ck_assert(json_is_null(json_object_get(json_object_get(res, "requested_by"), "uid")));
			ck_assert(json_is_null(json_object_get(res, "ended")));
			ck_assert_int_eq(json_array_size(json_object_get(res, "errors")), 1);
			ck_assert(json_equal(json_object_get(res, "params"), a->params));
		} else {
			ck_assert_ptr_null(json_object_get(res, "params"));
			ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(res, "requested_by"), "uid")), 0);
			ck_assert_int_eq(json_array_size(json_object_get(res, "warnings")), 0);
		}
		free(text);
		free(frame);
		json_decref(j);
		json_decref(reply);
	}
	task_table_free(&t);
}
END_TEST

START_TEST(test_put_and_prune)
{
	struct task_table t, u;
	task_table_init(&t);
	task_table_init(&u);
	for (int i = 0; i < 10; i++) {
		struct task *x = task_table_add(&t, "demo", "purge", "root", 0, "ctl", T0 + i * 1000);
		x->state = i < 8 ? TASK_FINISHED : TASK_QUEUED;
	}
	/* Rebuild in reverse order as a replay might: the table stays sorted. */
	for (size_t i = t.n; i-- > 0;) {
		json_t *j = task_to_json(t.v[i]);
		task_table_put(&u, task_from_json(j));
		json_decref(j);
	}
	for (size_t i = 0; i < t.n; i++)
		ck_assert_str_eq(u.v[i]->id, t.v[i]->id);
	/* Replacing by id keeps one copy. */
	json_t *j = task_to_json(t.v[3]);
	task_table_put(&u, task_from_json(j));
	json_decref(j);
	ck_assert_uint_eq(u.n, 10);
	/* New ids after a replay are greater than the replayed ones. */
	struct task *n = task_table_add(&u, "demo", "purge", "root", 0, "ctl", T0 - 5000000);
	ck_assert_int_gt(strcmp(n->id, t.v[9]->id), 0);
	n->state = TASK_CANCELLED;

	/* Keep 3 final tasks: the oldest finished go, queued ones always stay. */
	ck_assert_uint_eq(task_table_prune(&u, 3), 6);
	ck_assert_uint_eq(u.n, 5);
	ck_assert_str_eq(u.v[0]->id, t.v[6]->id);
	ck_assert_int_eq(u.v[2]->state, TASK_QUEUED);
	ck_assert_uint_eq(task_table_prune(&u, 3), 0);
	task_table_free(&t);
	task_table_free(&u);
}
END_TEST

START_TEST(test_state_names)
{
	for (int s = 0; s < _TASK_STATE_MAX; s++)
		ck_assert_int_eq(task_state_from_string(task_state_to_string(s)), s);
	ck_assert_int_eq(task_state_from_string("running"), _TASK_STATE_INVALID);
	ck_assert(task_state_is_final(TASK_CANCELLED));
	ck_assert(!task_state_is_final(TASK_STARTED));
}
END_TEST

/* Whatever an executor sent, the task's texts are valid UTF-8 that jansson and the journal take. */
START_TEST(test_safe_text)
{
	char out[16];

	ck_assert_str_eq(task_safe_text(out, sizeof(out), "plain"), "plain");
	ck_assert_str_eq(task_safe_text(out, sizeof(out), "a\xff" "b\xc3"), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
	/* Overlong, surrogate, past U+10FFFF: each byte replaced. */
	ck_assert_str_eq(task_safe_text(out, sizeof(out), "\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert_str_eq(task_safe_text(out, sizeof(out), "\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert_str_eq(task_safe_text(out, sizeof(out), "\xf4\x90\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	/* 8 x "é" is 16 bytes: 7 fit in 16 with the NUL, never half of the 8th. */
	ck_assert_str_eq(task_safe_text(out, sizeof(out), "éééééééé"), "ééééééé");
	ck_assert_str_eq(task_safe_text(out, 4, "aé€"), "aé");
	ck_assert_str_eq(task_safe_text(out, 4, "€"), "€");
	ck_assert_str_eq(task_safe_text(out, 3, "€"), "");
}
END_TEST

START_TEST(test_error_from_executor)
{
	struct task_table t;
	task_table_init(&t);
	struct task *task = task_table_add(&t, "demo", "purge", "root", 0, "ctl", 1700000000000000LL);
	char big[10000];

	task_set_error(task, "protocol violation by the executor: map key '%s' is not valid UTF-8", "\xff");
	ck_assert_str_eq(task->error, "protocol violation by the executor: map key '\xef\xbf\xbd' is not valid UTF-8");
	for (size_t i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "é", 2);
	big[sizeof(big) - 2] = '\0';
	task_set_error(task, "%s", big);
	ck_assert_uint_le(strlen(task->error), 4095);
	ck_assert_uint_ge(strlen(task->error), 4000);
	ck_assert_uint_eq(strlen(task->error) % 2, 0); /* whole characters only */
	task_warn(task, "name \xfe");
	json_t *j = task_to_json(task);
	ck_assert_ptr_nonnull(j); /* the journal's record builds */
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "warnings"), 0)), "name \xef\xbf\xbd");
	json_decref(j);
	task_table_free(&t);
}
END_TEST

/* A purge's counts are the sum of what its executor confirmed; a message past a limit changes nothing. */
/* The manifest and result messages as the executor sends them, through their structs. */
static const char *add_confirmed(struct task *task, const json_t *m, uint64_t before)
{
	struct msg_manifest mm;
	msg_manifest_unpack(m, &mm);
	return task_add_confirmed(task, &mm, before);
}

static const char *check_result(json_t *body)
{
	json_t *m = json_pack("{s:O}", "result", body);
	struct msg_result r;
	msg_result_unpack(m, &r);
	const char *bad = task_check_result(&r);
	json_decref(m);
	return bad;
}

START_TEST(test_confirmed_counts)
{
	struct task_table t;
	task_table_init(&t);
	struct task *task = task_table_add(&t, "demo", "purge", "root", 0, "ctl", 1700000000000000LL);
	json_t *m;

	m = json_pack("{s:[{s:s, s:i}, {s:s, s:i, s:b}], s:{s:i}}", "manifest", "kind", "Person", "id", 1, "kind",
		      "Organization", "id", 2, "cascade", 1, "deleted", "instance 1", 1000);
	ck_assert_ptr_null(add_confirmed(task, m, 0));
	ck_assert_ptr_null(add_confirmed(task, m, 2));
	json_decref(m);
	ck_assert_int_eq(json_integer_value(json_object_get(task->counts, "Person")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(task->counts, "Organization")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(task->counts, "instance 1")), 2000);

	/* 2^53 in all: accepted; one more: refused, and nothing of the message applied. */
	json_t *before = json_deep_copy(task->counts);
	m = json_pack("{s:[{s:s, s:i}], s:{s:I}}", "manifest", "kind", "Person", "id", 3, "deleted", "instance 1",
		      (json_int_t)(TASK_COUNT_MAX - 2000 + 1));
	ck_assert_str_eq(add_confirmed(task, m, 4), "a confirmed count over 2^53");
	ck_assert(json_equal(task->counts, before));
	json_decref(m);
	m = json_pack("{s:[], s:{s:I}}", "manifest", "deleted", "instance 1", (json_int_t)(TASK_COUNT_MAX - 2000));
	ck_assert_ptr_null(add_confirmed(task, m, 4));
	json_decref(m);
	m = json_pack("{s:[], s:{s:i}}", "manifest", "deleted", "instance 1", 1);
	ck_assert_ptr_nonnull(add_confirmed(task, m, 4));
	json_decref(m);

	/* The manifest's size and the number of kinds are bounded. */
	m = json_pack("{s:[{s:s, s:i}]}", "manifest", "kind", "Person", "id", 9);
	ck_assert_ptr_nonnull(add_confirmed(task, m, TASK_ENTRIES_MAX));
	json_decref(m);
	json_t *many = json_object();
	for (int i = 0; i < TASK_KINDS_MAX; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(many, k, json_integer(1));
	}
	json_decref(before);
	before = json_deep_copy(task->counts);
	m = json_pack("{s:[], s:o}", "manifest", "deleted", many);
	ck_assert_str_eq(add_confirmed(task, m, 4), "more than 256 kinds of objects");
	ck_assert(json_equal(task->counts, before));
	json_decref(m);
	json_decref(before);

	/* Results: plan counts and errors in shape and bounds. */
	m = json_pack("{s:b, s:{s:i}, s:[{s:s, s:s}]}", "ok", 1, "counts", "objects", 3, "errors", "target", "x",
		      "description", "y");
	ck_assert_ptr_null(check_result(m));
	json_decref(m);
	m = json_pack("{s:b, s:{s:i}}", "ok", 1, "counts", "objects", -1);
	ck_assert_ptr_nonnull(check_result(m));
	json_decref(m);
	m = json_pack("{s:b, s:[{s:{}}]}", "ok", 0, "errors", "description");
	ck_assert_ptr_nonnull(check_result(m));
	json_decref(m);
	task_table_free(&t);
}
END_TEST

static Suite *task_suite(void)
{
	Suite *s = suite_create("task");
	TCase *tc;
	tc = unit_case(s, "task:table", NULL, NULL,
		       (const TTest *[]){ test_ids_increase, test_json_roundtrip, test_packed_reply,
					  test_awaiting_roundtrip, test_archive_roundtrip,
					  test_put_and_prune, test_state_names, test_safe_text,
					  test_error_from_executor, test_confirmed_counts, NULL });
	(void)tc;
	return s;
}

int main(void)
{
	return unit_run(task_suite());
}
