/*
 * The messages of every hop as C structs: the control hop's (purgectl and
 * purged-rest <-> purged: request, reply, event) and the executor hop's
 * (job, progress, manifest, result). Their keys are written
 * in two places only: here (pack, unpack) and in proto/schema.c (what the
 * decoder accepts); test_proto round-trips each struct through the real
 * encoder and decoder, so a key renamed on one side fails a unit test, not a
 * purge. JSON subtrees whose keys are data (settings, counts, manifest
 * entries) stay json_t, borrowed from the message. Unpack only what
 * proto_decode accepted (types and required keys are checked there).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "purged/proto.h"

/* The kind a decoded message names (_PURGE_MSG_INVALID for none). */
enum purge_msg_type msg_kind(const json_t *msg);

/* client -> supervisor (built by proto_request_new / proto_encode_request) */
struct msg_request {
	uint64_t id;
	enum purge_op op;
	json_t *args;          /* never NULL after unpack: an empty map when absent */
	const char *auth;      /* purged-rest's bearer token, or NULL */
};

/* supervisor -> client (built by proto_reply_ok / proto_reply_error) */
struct msg_reply {
	uint64_t id;
	bool ok;
	json_t *result;        /* ok: the result (may be JSON null), else NULL */
	json_t *error;         /* !ok: {code, message} */
	const char *error_code, *error_message;
};

/* supervisor -> watcher (built by proto_event_new) */
struct msg_event {
	uint64_t id;
	const char *event;     /* "progress", "end"... */
	json_t *task;
};

/* Fill the struct from a decoded message of that kind; pointers borrow from @msg. msg_reply_unpack
 * returns false for no message (NULL: the peer went away) and for a message that is not a reply. */
void msg_request_unpack(const json_t *msg, struct msg_request *r);
bool msg_reply_unpack(const json_t *msg, struct msg_reply *r);
void msg_event_unpack(const json_t *msg, struct msg_event *e);

/* supervisor -> executor: one per executor */
struct msg_job {
	const char *task_id, *operation, *target, *type;
	bool dry_run;
	json_t *settings;      /* the target's settings, its secrets apart */
	json_t *secrets;       /* wiped by both sides after use */
	json_t *archive;       /* {mode, max_bytes | sha256} with fd 4, or NULL */
	json_t *options;       /* the op's options (restore: {replace}), or NULL */
	const char *build;     /* unpack: the supervisor's PURGED_VERSION (pack writes this build's) */
};

/* executor -> supervisor: what it is doing */
struct msg_progress {
	const char *step;      /* may be NULL */
	uint64_t done, total;
};

/* executor -> supervisor: confirmed deletions, streamed */
struct msg_manifest {
	json_t *entries;       /* [{kind, id, name?, cascade?}] */
	json_t *deleted;       /* {kind: n} bulk counts, or NULL */
};

/* executor -> supervisor: the last message */
struct msg_result {
	bool ok;
	json_t *counts;        /* kind -> n (a plan's counts), or NULL */
	const char *error;     /* when !ok, or NULL */
	json_t *errors;        /* [{cluster_name|target, error_code, description}], or NULL */
	json_t *warnings;      /* [string], or NULL */
	bool has_archive;      /* what the executor wrote and sealed on fd 4: */
	uint64_t archive_bytes, archive_records;
	const char *archive_sha256;
};

/* New messages (NULL on ENOMEM only); the structs' json_t members are referenced, not stolen. */
json_t *msg_job_pack(const struct msg_job *j);
json_t *msg_progress_pack(const struct msg_progress *p);
json_t *msg_manifest_pack(const struct msg_manifest *m);
json_t *msg_result_pack(const struct msg_result *r);

/* Fill the struct from a decoded message of that kind; pointers borrow from @msg. */
void msg_job_unpack(const json_t *msg, struct msg_job *j);
void msg_progress_unpack(const json_t *msg, struct msg_progress *p);
void msg_manifest_unpack(const json_t *msg, struct msg_manifest *m);
void msg_result_unpack(const json_t *msg, struct msg_result *r);
