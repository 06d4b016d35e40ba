/* Builders for the messages every side sends: requests, replies, events. */
#include <stdarg.h>
#include <stdio.h>
#include "purged/proto.h"
#include "purged/text.h"

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
