/*
 * libFuzzer target: the supervisor's handling of what an executor sends.
 * Bytes go through the frame splitter and the decoder with the executor's
 * message kinds, then into a purge task the way spawn.c applies them:
 * confirmed deletions summed into its counts, results checked, refusals and
 * backend errors turned into its error text. Properties: a refused message
 * changes no count; counts stay integers in [0, 2^53] of at most 256 kinds;
 * the task's JSON (the journal record, the reply) always builds, and its
 * texts are valid UTF-8 of bounded size.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_task(const struct task *task)
{
	const char *kind;
	json_t *v, *j = task_to_json(task);

	assert(j); /* the journal's record and every reply build */
	json_decref(j);
	assert(json_object_size(task->counts) <= TASK_KINDS_MAX);
	json_object_foreach(task->counts, kind, v)
		assert(json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= TASK_COUNT_MAX);
	assert(!task->error || strlen(task->error) < TASK_TEXT_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct task_table t;
	struct proto_reader rd;
	const uint8_t *p;
	size_t n;
	uint64_t entries = 0;
	int r;

	task_table_init(&t);
	struct task *task = task_table_add(&t, "demo", "purge", "root", 0, "ctl", 1700000000000000LL);
	proto_reader_init(&rd);
	r = proto_reader_feed(&rd, data, size);
	while (r >= 0 && (r = proto_reader_next(&rd, &p, &n)) > 0) {
		enum purge_msg_type type;
		struct proto_error err;
		json_t *msg = NULL;

		if (proto_decode(p, n, PURGE_MSG_MASK(PURGE_MSG_PROGRESS) | PURGE_MSG_MASK(PURGE_MSG_RESULT) |
					       PURGE_MSG_MASK(PURGE_MSG_MANIFEST),
				 &type, &msg, &err) < 0) {
			task_set_error(task, "protocol violation by the executor: %s", err.message);
			check_task(task);
			continue;
		}
		if (type == PURGE_MSG_MANIFEST) {
			json_t *before = json_deep_copy(task->counts);
			struct msg_manifest mm;
			msg_manifest_unpack(msg, &mm);
			const char *bad = task_add_confirmed(task, &mm, entries);
			if (bad) {
				assert(json_equal(before, task->counts));
				task_set_error(task, "protocol violation by the executor: %s", bad);
			} else {
				entries += json_array_size(mm.entries);
			}
			json_decref(before);
		} else if (type == PURGE_MSG_RESULT) {
			struct msg_result res;
			msg_result_unpack(msg, &res);
			const char *bad = task_check_result(&res), *berr = res.error;
			if (bad)
				task_set_error(task, "protocol violation by the executor: %s", bad);
			else if (berr)
				task_set_error(task, "%s", berr);
		}
		check_task(task);
		json_decref(msg);
	}
	proto_reader_free(&rd);
	task_table_free(&t);
	return 0;
}
