/*
 * Names of message kinds, ops and error codes, and what each error code
 * becomes at the edges (HTTP status, purgectl exit code). Used by every program.
 */
#include <string.h>
#include "purged/proto.h"
#include "purged/exitcodes.h"

static const char *const msg_names[_PURGE_MSG_MAX] = {
	[PURGE_MSG_REQUEST] = "request",
	[PURGE_MSG_REPLY] = "reply",
	[PURGE_MSG_EVENT] = "event",
	[PURGE_MSG_JOB] = "job",
	[PURGE_MSG_PROGRESS] = "progress",
	[PURGE_MSG_RESULT] = "result",
	[PURGE_MSG_MANIFEST] = "manifest",
};

static const struct {
	const char *name;
	unsigned flags;
} ops[_PURGE_OP_MAX] = {
#define PURGE_OP_ROW(e, handler, name, flags, args) [PURGE_OP_##e] = { name, flags },
	PURGE_OPS(PURGE_OP_ROW)
#undef PURGE_OP_ROW
};

static const struct {
	const char *name;
	int http;
	int exit_code;
} errs[_PURGE_ERR_MAX] = {
	[PURGE_ERR_BAD_REQUEST] = { "bad_request", 400, EXIT_PURGECTL_USAGE },
	[PURGE_ERR_UNAUTHORIZED] = { "unauthorized", 401, EXIT_PURGECTL_FORBIDDEN },
	[PURGE_ERR_FORBIDDEN] = { "forbidden", 403, EXIT_PURGECTL_FORBIDDEN },
	[PURGE_ERR_NOT_FOUND] = { "not_found", 404, EXIT_PURGECTL_NOT_FOUND },
	[PURGE_ERR_CONFLICT] = { "conflict", 409, EXIT_PURGECTL_CONFLICT },
	[PURGE_ERR_BUSY] = { "busy", 429, EXIT_PURGECTL_CONFLICT },
	[PURGE_ERR_TOO_LARGE] = { "too_large", 413, EXIT_PURGECTL_USAGE },
	[PURGE_ERR_INTERNAL] = { "internal", 500, EXIT_PURGECTL_FAILURE },
	[PURGE_ERR_BACKEND] = { "backend", 502, EXIT_PURGECTL_FAILURE },
	[PURGE_ERR_UNAVAILABLE] = { "unavailable", 503, EXIT_PURGECTL_UNREACHABLE },
};

const char *purge_msg_type_to_string(enum purge_msg_type t)
{
	return t >= 0 && t < _PURGE_MSG_MAX ? msg_names[t] : NULL;
}

enum purge_msg_type purge_msg_type_from_string(const char *s)
{
	for (int t = 0; s && t < _PURGE_MSG_MAX; t++)
		if (strcmp(msg_names[t], s) == 0)
			return t;
	return _PURGE_MSG_INVALID;
}

const char *purge_op_to_string(enum purge_op op)
{
	return op >= 0 && op < _PURGE_OP_MAX ? ops[op].name : NULL;
}

enum purge_op purge_op_from_string(const char *s)
{
	for (int i = 0; s && i < _PURGE_OP_MAX; i++)
		if (strcmp(ops[i].name, s) == 0)
			return i;
	return _PURGE_OP_INVALID;
}

bool purge_op_is_mutating(enum purge_op op)
{
	return purge_op_flags(op) & PURGE_OPF_CHANGE;
}

unsigned purge_op_flags(enum purge_op op)
{
	return op >= 0 && op < _PURGE_OP_MAX ? ops[op].flags : 0;
}

const char *purge_err_to_string(enum purge_err e)
{
	return e >= 0 && e < _PURGE_ERR_MAX ? errs[e].name : NULL;
}

enum purge_err purge_err_from_string(const char *s)
{
	for (int i = 0; s && i < _PURGE_ERR_MAX; i++)
		if (strcmp(errs[i].name, s) == 0)
			return i;
	return _PURGE_ERR_INVALID;
}

int purge_err_http_status(enum purge_err e)
{
	return e >= 0 && e < _PURGE_ERR_MAX ? errs[e].http : 500;
}

int purge_err_exit_code(enum purge_err e)
{
	return e >= 0 && e < _PURGE_ERR_MAX ? errs[e].exit_code : EXIT_PURGECTL_FAILURE;
}
