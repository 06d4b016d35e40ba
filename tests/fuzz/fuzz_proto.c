/*
 * libFuzzer target: bytes from a peer through the frame splitter and the
 * message decoder, with every kind allowed. Whatever decodes must re-encode
 * and decode to the same message. And purged-rest's fast path must agree
 * with the decoder: what it renders as JSON text is what json_dumps gives of
 * the decoded result, and what it refuses the decoder refuses.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "purged/proto.h"

static void check_text_path(const uint8_t *p, size_t n)
{
	enum purge_msg_type t;
	struct proto_error err;
	json_t *msg = NULL;
	uint64_t id;
	char *text = NULL;
	size_t len;
	int k = proto_reply_result_text(p, n, NULL, NULL, &id, &text, &len, &err);
	int d = proto_decode(p, n, ~0u, &t, &msg, &err);

	if (k < 0)
		assert(d < 0);
	if (k > 0 && d == 0) { /* the decoder also refuses duplicate keys, which the text path does not look for */
		json_t *res = json_object_get(msg, "result");
		char *want = res ? json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
		assert(t == PURGE_MSG_REPLY && id == (uint64_t)json_integer_value(json_object_get(msg, "id")));
		assert(want && strlen(text) == len && strcmp(want, text) == 0);
		free(want);
	}
	free(text);
	json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_reader r;
	const uint8_t *p;
	size_t n;

	proto_reader_init(&r);
	/* Feed in two pieces, as a socket might deliver them. */
	size_t cut = size ? data[0] % (size + 1) : 0;
	if (proto_reader_feed(&r, data, cut) < 0 || proto_reader_feed(&r, data + cut, size - cut) < 0)
		abort();
	while (proto_reader_next(&r, &p, &n) > 0) {
		enum purge_msg_type t, t2;
		struct proto_error err;
		json_t *msg = NULL, *again = NULL;
		uint8_t *buf;
		size_t len;

		check_text_path(p, n);
		if (proto_decode(p, n, ~0u, &t, &msg, &err) < 0)
			continue;
		assert(proto_encode(msg, &buf, &len) == 0);
		assert(proto_decode(buf + 4, len - 4, ~0u, &t2, &again, &err) == 0);
		assert(t == t2 && json_equal(msg, again));
		free(buf);
		json_decref(again);
		json_decref(msg);
	}
	proto_reader_free(&r);
	return 0;
}
