/*
 * The control protocol: one vocabulary for every hop (purgectl <-> purged,
 * purged-rest <-> purged, purged <-> purged-executor).
 *
 * A frame is a 4-byte big-endian length followed by one msgpack map.
 * Decoded messages are jansson trees that have passed the schema of their
 * kind, so handlers never see a wrong type, a missing key or an unknown key.
 * This header is included by every program; no side declares its own copy.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/*
 * Bumped on every incompatible change. 2: every message names its kind
 * ("kind"), the executor's result is {kind, result}, jobs carry the build.
 * A request or job of another version is refused with a sentence naming
 * both sides' versions (and answered in its own version's form where this
 * build knows it: an old purgectl or supervisor reads why).
 */
#define PURGE_PROTO_VERSION 2

/* Hard limits, enforced by the decoder before any handler runs. */
#define PURGE_FRAME_MAX      (1u << 20)   /* payload bytes of one frame */
#define PURGE_STRING_MAX     (64u * 1024) /* bytes of one string */
#define PURGE_LIST_MAX       10000u       /* entries of one array or map */
#define PURGE_DEPTH_MAX      8            /* nesting of maps and arrays */
#define PURGE_NAME_MAX       64           /* target names, error codes, steps */
#define PURGE_AUTH_MAX       256          /* bearer token forwarded by purged-rest */
#define PURGE_TASK_ID_LEN    36           /* UUID text form */
#define PURGE_INSTANCES_MAX  64           /* CRDB instances in one purge */
#define PURGE_MANIFEST_ID_MAX   128       /* bytes of a manifest entry's string id */
#define PURGE_MANIFEST_NAME_MAX 1024      /* bytes of a manifest entry's name: a disk-filling child is cut off */

/* The kind of a message: its "kind" key, the name below, in every message. */
enum purge_msg_type {
	PURGE_MSG_REQUEST,   /* {kind, v, id, op, args?, auth?}  client -> supervisor */
	PURGE_MSG_REPLY,     /* {kind, id, ok, result? | error}  supervisor -> client */
	PURGE_MSG_EVENT,     /* {kind, id, event, task}          supervisor -> watcher */
	PURGE_MSG_JOB,       /* {kind, v, build, job}            supervisor -> executor */
	PURGE_MSG_PROGRESS,  /* {kind, progress}                 executor -> supervisor */
	PURGE_MSG_RESULT,    /* {kind, result}                   executor -> supervisor */
	PURGE_MSG_MANIFEST,  /* {kind, manifest, deleted?}       executor -> supervisor */
	_PURGE_MSG_MAX,
	_PURGE_MSG_INVALID = -EINVAL,
};
#define PURGE_MSG_MASK(t) (1u << (t))

/*
 * Every op, one row (as OpenSSH's mon_table): its enum, its handler in the
 * supervisor (daemon/ops.c: op_<handler>), its name on the wire, who may call
 * it and what it is, and its arguments' schema (proto/schema.c: <args>).
 * Nothing else names an op: the names, the schema, the handlers table, the
 * audit, purgectl's verbs and the REST routes all come from these rows
 * (HACKING.md: adding an op). Flags:
 *   PURGE_OPF_CHANGE       changes something: audited before ("requested", refused when
 *                          that line cannot be written) and after
 *   PURGE_OPF_LINK_NOAUTH  purged-rest's own link may call it without a token (its ping,
 *                          its refusal counts); an HTTP client never can (no route maps to it)
 *   PURGE_OPF_LINK_ONLY    only purged-rest's link may call it
 */
#define PURGE_OPF_CHANGE      (1u << 0)
#define PURGE_OPF_LINK_NOAUTH (1u << 1)
#define PURGE_OPF_LINK_ONLY   (1u << 2)

#define PURGE_OPS(X) \
	X(STATUS,         status,         "status",         PURGE_OPF_LINK_NOAUTH, no_args)       \
	X(TARGETS_LIST,   targets_list,   "targets.list",   0,                     no_args)       \
	X(PLAN,           plan,           "plan",           0,                     target_args)   \
	X(PURGE,          purge,          "purge",          PURGE_OPF_CHANGE,      purge_args)    \
	X(TASKS_LIST,     tasks_list,     "tasks.list",     0,                     list_args)     \
	X(TASKS_GET,      tasks_get,      "tasks.get",      0,                     task_args)     \
	X(TASKS_CANCEL,   tasks_cancel,   "tasks.cancel",   PURGE_OPF_CHANGE,      task_args)     \
	X(TASKS_WATCH,    tasks_watch,    "tasks.watch",    0,                     task_args)     \
	X(RELOAD,         reload,         "reload",         PURGE_OPF_CHANGE,      no_args)       \
	X(METRICS,        metrics,        "metrics",        0,                     no_args)       \
	X(CRDB_PURGE,     crdb_purge,     "crdb.purge",     PURGE_OPF_CHANGE,      crdb_args)     \
	X(TASKS_MANIFEST, tasks_manifest, "tasks.manifest", 0,                     manifest_args) \
	/* purged-rest's count of the requests it refused itself; audited by its handler, in aggregate */ \
	X(REST_REFUSALS,  rest_refusals,  "rest.refusals",  PURGE_OPF_LINK_ONLY | PURGE_OPF_LINK_NOAUTH, refusals_args) \
	/* the two-person rule: another identity lets an awaiting purge run, or anyone allowed ends it */ \
	X(TASKS_APPROVE,  tasks_approve,  "tasks.approve",  PURGE_OPF_CHANGE,      task_args)     \
	X(TASKS_REJECT,   tasks_reject,   "tasks.reject",   PURGE_OPF_CHANGE,      task_args)     \
	/* a chunk of a task's archive file (base64); its reading is audited by its handler */ \
	X(TASKS_ARCHIVE,  tasks_archive,  "tasks.archive",  0,                     archive_args)  \
	/* put back the keys a crdb purge archived: a new task */ \
	X(CRDB_RESTORE,   crdb_restore,   "crdb.restore",   PURGE_OPF_CHANGE,      restore_args)

enum purge_op {
#define PURGE_OP_ENUM(e, handler, name, flags, args) PURGE_OP_##e,
	PURGE_OPS(PURGE_OP_ENUM)
#undef PURGE_OP_ENUM
	_PURGE_OP_MAX,
	_PURGE_OP_INVALID = -EINVAL,
};

/* The closed set of error codes; each maps to one HTTP status and one exit code. */
enum purge_err {
	PURGE_ERR_BAD_REQUEST,
	PURGE_ERR_UNAUTHORIZED,
	PURGE_ERR_FORBIDDEN,
	PURGE_ERR_NOT_FOUND,
	PURGE_ERR_CONFLICT,
	PURGE_ERR_BUSY,
	PURGE_ERR_TOO_LARGE,
	PURGE_ERR_INTERNAL,
	PURGE_ERR_BACKEND,
	PURGE_ERR_UNAVAILABLE,
	_PURGE_ERR_MAX,
	_PURGE_ERR_INVALID = -EINVAL,
};

/* A decode or validation failure: which code, and a sentence naming the field. */
struct proto_error {
	enum purge_err code;
	char message[256];
	int peer_version;  /* a request or job of another protocol version: its "v" (else 0) */
	char peer_build[PURGE_NAME_MAX + 1]; /* a job of another build: its "build" (else "") */
};

const char *purge_msg_type_to_string(enum purge_msg_type t);
enum purge_msg_type purge_msg_type_from_string(const char *s);
const char *purge_op_to_string(enum purge_op op);
enum purge_op purge_op_from_string(const char *s);
const char *purge_err_to_string(enum purge_err e);
enum purge_err purge_err_from_string(const char *s);
/* HTTP status purged-rest answers for an error code. */
int purge_err_http_status(enum purge_err e);
/* Exit status purgectl ends with for an error code (see purgectl --help). */
int purge_err_exit_code(enum purge_err e);
/* Whether an op changes something, and so is audited (PURGE_OPF_CHANGE). */
bool purge_op_is_mutating(enum purge_op op);
/* An op's PURGE_OPF_* flags (0 for an op out of range). */
unsigned purge_op_flags(enum purge_op op);

/*
 * Turn a msgpack payload (without the length prefix) into a validated
 * message. @allowed is a mask of PURGE_MSG_MASK() kinds the caller accepts.
 * Returns 0 and sets *ret_msg (caller owns it) and *ret_type, or a negative
 * errno with *reterr filled; outputs are untouched on failure.
 * No I/O, no logging.
 */
int proto_decode(const void *payload, size_t len, unsigned allowed,
		 enum purge_msg_type *ret_type, json_t **ret_msg,
		 struct proto_error *reterr);

/*
 * Encode @msg as a whole frame (length prefix included). Returns 0 and a
 * malloc'ed buffer in *ret_buf / *ret_len, -E2BIG past PURGE_FRAME_MAX,
 * -EINVAL for values msgpack cannot carry, -ENOMEM.
 */
int proto_encode(const json_t *msg, uint8_t **ret_buf, size_t *ret_len);
/*
 * The frame of proto_request_new(@id, @op, @args) with "auth" set to @auth
 * (when not NULL), the same bytes without building the request's object.
 * -EINVAL for an unknown op, args that are not a map, or an @auth that is
 * not a string of at most PURGE_AUTH_MAX bytes of UTF-8.
 */
int proto_encode_request(uint64_t id, enum purge_op op, const json_t *args, const char *auth, uint8_t **ret_buf,
			 size_t *ret_len);

/*
 * For replies relayed as they are (purged-rest): when @payload is a plain
 * success, {id, ok: true, result}, and @wanted (may be NULL) wants its id,
 * render the result as compact JSON text, the bytes json_dumps(JSON_COMPACT)
 * would give, with no tree built. Returns 1 with *ret_id and *ret_text
 * (malloc'ed, NUL-terminated) of *ret_len bytes; 0 for any other message
 * (decode it with proto_decode); a negative errno with *reterr filled for a
 * payload proto_decode would refuse too.
 */
int proto_reply_result_text(const void *payload, size_t len, bool (*wanted)(uint64_t id, void *ctx), void *ctx,
			    uint64_t *ret_id, char **ret_text, size_t *ret_len, struct proto_error *reterr);

/* Validate a request's args against its op's schema (called by proto_decode). */
int proto_validate_args(enum purge_op op, const json_t *args, struct proto_error *reterr);

/*
 * Incremental frame splitter for stream sockets. Feed bytes as they arrive,
 * then take whole payloads out one by one.
 */
struct proto_reader {
	uint8_t *buf;
	size_t start, len, cap;
};

void proto_reader_init(struct proto_reader *r);
void proto_reader_free(struct proto_reader *r);
/* Append @n bytes. Returns 0, or -ENOMEM. */
int proto_reader_feed(struct proto_reader *r, const void *data, size_t n);
/*
 * Take the next whole frame's payload: returns 1 and points *ret_payload
 * (valid until the next feed/next call) and *ret_len at it, 0 when more bytes
 * are needed, -EMSGSIZE for a length over PURGE_FRAME_MAX, -EBADMSG for an
 * empty frame. After an error the stream is unusable: close it.
 */
int proto_reader_next(struct proto_reader *r, const uint8_t **ret_payload, size_t *ret_len);
/* Bytes held that do not yet form a frame (a truncated frame at EOF). */
size_t proto_reader_pending(const struct proto_reader *r);

/*
 * Builders for the messages every side sends. Return a new reference, or NULL
 * on ENOMEM only: proto_reply_error makes its text valid UTF-8 (purged/text.h)
 * whatever the arguments quote. A caller that gets NULL refuses: it never
 * reads NULL as "no error".
 */
json_t *proto_request_new(uint64_t id, enum purge_op op, json_t *args /* stolen, may be NULL */);
json_t *proto_reply_ok(uint64_t id, json_t *result /* stolen, may be NULL */);
json_t *proto_reply_error(uint64_t id, enum purge_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
json_t *proto_event_new(uint64_t id, const char *event, json_t *task /* stolen */);

/* A task id is a lowercase UUID in text form. */
bool proto_is_task_id(const char *s);
/* A name: 1..64 of [A-Za-z0-9._-], starting with a letter or digit. */
bool proto_is_name(const char *s);
