/*
 * The task table: ids, states and transitions, lookups, JSON views.
 * Supervisor only. Pure data: no I/O, no logging (journal.c persists it).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "purged/messages.h"
#include "purged/proto.h"

enum task_state {
	TASK_QUEUED,
	TASK_STARTED,
	TASK_FINISHED,
	TASK_FAILED,
	TASK_CANCELLED,
	TASK_AWAITING,            /* "awaiting_approval": a purge under approvals = 1, before a second identity approves */
	_TASK_STATE_MAX,
	_TASK_STATE_INVALID = -EINVAL,
};

struct executor;

struct task {
	char id[PURGE_TASK_ID_LEN + 1];
	char *target;
	char *operation;          /* "purge" or "plan" */
	enum task_state state;
	int64_t created, started, ended; /* usec since the epoch; 0 = not yet */
	char *who;                /* user name, or token name */
	int64_t uid;              /* -1 when asked through a token */
	char *door;               /* "ctl" or "rest" */
	char *step;               /* current kind of object */
	uint64_t done, total;
	json_t *counts;           /* kind -> objects deleted (or planned) */
	char *error;              /* why it failed or was cancelled */
	json_t *errors;           /* [{target|cluster_name, error_code, description}] */
	json_t *params;           /* operation parameters (crdb.purge: {"instances": [...]}), or NULL */
	json_t *warnings;         /* [string]: what the administrator should know (insecure TLS...) */
	/* The two-person rule (approvals = 1); all NULL/0 when the target did not ask for it. */
	char *requester;          /* identity that asked: "uid N" (login uid, else uid) or "token NAME" */
	int64_t approval_deadline; /* usec since the epoch; expires then unless approved */
	char *approved_by;        /* "NAME (IDENTITY)" of whoever approved or rejected */
	char *may_approve;        /* who may approve, in words */
	bool needs_request_credentials; /* a REST body's credentials wait in memory only (journaled as a flag) */
	/*
	 * A purge of an archive = yes target: {file, bytes, sha256, records} of
	 * archive_dir/ID.jsonl.zst as the supervisor hashed it after the executor
	 * ended (records as the executor reported them, or absent), or NULL.
	 */
	json_t *archive;

	/* Run time only, never journaled. */
	struct executor *exec;
	bool cancel_requested;
	/* A REST body's username/password, for this task's job only: never journaled, wiped once sent. */
	json_t *request_credentials;
};

struct task_table {
	struct task **v;          /* sorted by id, which is also creation order (UUIDv7) */
	size_t n, cap;
	uint64_t last_hi, last_lo; /* last id issued, to keep ids increasing */
};

const char *task_state_to_string(enum task_state s);
enum task_state task_state_from_string(const char *s);
static inline bool task_state_is_final(enum task_state s)
{
	return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_CANCELLED;
}

void task_table_init(struct task_table *t);
void task_table_free(struct task_table *t);

/*
 * Create a queued task with a new id (UUIDv7, strictly greater than every id
 * in the table) and append it. The table owns it.
 */
struct task *task_table_add(struct task_table *t, const char *target, const char *operation,
			    const char *who, int64_t uid, const char *door, int64_t now);
/* O(log n) lookup; NULL when absent. */
struct task *task_table_find(const struct task_table *t, const char *id);
/*
 * Insert a task rebuilt from the journal (replaces a task with the same id).
 * Takes ownership of @task. Keeps the table sorted.
 */
void task_table_put(struct task_table *t, struct task *task);
/* Drop the oldest final tasks until at most @keep final tasks remain. Returns how many went. */
size_t task_table_prune(struct task_table *t, size_t keep);

/* What an executor may report to a task; more, and it is killed as hostile. */
#define TASK_COUNT_MAX (1LL << 53)   /* one kind's count */
#define TASK_KINDS_MAX 256           /* kinds in counts */
#define TASK_ENTRIES_MAX 10000000ULL /* manifest entries of one task */
#define TASK_ERRORS_MAX 256          /* entries of a result's errors list */
#define TASK_TEXT_MAX 4096           /* bytes of an error or warning text (with its NUL) */

/*
 * Add a decoded manifest message's confirmed deletions (entries and bulk
 * counts) to task->counts: all of them, or none when a limit above would be
 * passed. @entries_before: manifest entries the task already had. Returns
 * NULL, or why the message is refused (a static string).
 */
const char *task_add_confirmed(struct task *task, const struct msg_manifest *msg, uint64_t entries_before);
/* NULL, or why a decoded result is refused (counts, errors and warnings out of bounds or shape). */
const char *task_check_result(const struct msg_result *res);
/* Set the task's error; the text is made safe (valid UTF-8, no NUL, at most 4 KiB). */
void task_set_error(struct task *task, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add a warning (what the administrator should know), made safe the same way. */
void task_warn(struct task *task, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Copy @src into @dst (@cap >= 4 bytes) as valid UTF-8 (text_safe: each byte of
 * an invalid sequence becomes U+FFFD, a cut falls on a character boundary).
 * Whatever an executor sent can be journaled and shown after this. Returns @dst.
 */
char *task_safe_text(char *dst, size_t cap, const char *src);
struct task *task_free(struct task *task);

/* The task object every door shows (purgectl --json, REST). New reference; NULL if it cannot be built. */
json_t *task_to_json(const struct task *task);
/* The same object packed with msgpack-c, for replies built without a tree. 0 or a negative errno. */
struct msgpack_packer;
int task_pack(const struct task *task, struct msgpack_packer *pk);
/* Rebuild a task from task_to_json()'s output; NULL when it does not fit. */
struct task *task_from_json(const json_t *j);
