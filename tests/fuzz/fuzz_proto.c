/*
 * libFuzzer target: bytes from a peer through the frame splitter and the
 * message decoder, with every kind allowed. Whatever decodes must re-encode
 * and decode to the same message.
 */
#include <assert.h>
#include <stdlib.h>
#include "purged/proto.h"

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
