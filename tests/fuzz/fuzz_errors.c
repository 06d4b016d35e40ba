/*
 * libFuzzer target: arbitrary bytes through every way an error text is built
 * from what a peer sent. Properties, not just survival:
 *  - a frame the decoder refuses yields an error whose reply builds (never
 *    NULL), encodes, and decodes again as a reply carrying the same code;
 *  - proto_reply_error over the raw bytes, cut at any length (as "%.*s" cuts),
 *    always builds and decodes;
 *  - text_safe() gives valid UTF-8 within its capacity, and with
 *    TEXT_ESCAPE_CONTROLS not one control byte (so a log line stays one line);
 *    text that was valid UTF-8 without controls and fits comes out unchanged.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "purged/proto.h"
#include "purged/text.h"

static void reply_round_trip(json_t *reply, enum purge_err code)
{
	enum purge_msg_type t;
	struct proto_error err;
	json_t *back = NULL;
	uint8_t *buf;
	size_t len;

	assert(reply); /* only out of memory may make it NULL, and libFuzzer's malloc does not fail */
	assert(proto_encode(reply, &buf, &len) == 0);
	assert(proto_decode(buf + 4, len - 4, PURGE_MSG_MASK(PURGE_MSG_REPLY), &t, &back, &err) == 0);
	assert(strcmp(json_string_value(json_object_get(json_object_get(back, "error"), "code")),
		      purge_err_to_string(code)) == 0);
	json_decref(back);
	free(buf);
	json_decref(reply);
}

static void check_safe(const char *in, size_t n, size_t cap, unsigned flags)
{
	char *out = malloc(cap);
	size_t len = text_safe(out, cap, in, n, flags);

	assert(len < cap && out[len] == '\0' && strlen(out) == len);
	assert(text_utf8_valid(out, len));
	if (flags & TEXT_ESCAPE_CONTROLS)
		for (size_t i = 0; i < len; i++)
			assert((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
	bool plain = text_utf8_valid(in, n) && !memchr(in, '\0', n);
	for (size_t i = 0; plain && i < n; i++)
		plain = (unsigned char)in[i] >= 0x20 && in[i] != 0x7f && !((unsigned char)in[i] == 0xc2 &&
									    i + 1 < n && (unsigned char)in[i + 1] < 0xa0);
	if (plain && n < cap)
		assert(len == n && memcmp(out, in, n) == 0);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum purge_msg_type t;
	struct proto_error err;
	json_t *msg = NULL;
	char *s = malloc(size + 1);

	/* The decoder's own errors quote keys, ops and values: the reply to each must build. */
	if (proto_decode(data, size, ~0u, &t, &msg, &err) < 0)
		reply_round_trip(proto_reply_error(0, err.code, "%s", err.message), err.code);
	json_decref(msg);

	memcpy(s, data, size);
	s[size] = '\0';
	/* Raw bytes quoted whole, and cut where a precision would cut them. */
	reply_round_trip(proto_reply_error(1, PURGE_ERR_FORBIDDEN, "server %s does not match", s), PURGE_ERR_FORBIDDEN);
	reply_round_trip(proto_reply_error(2, PURGE_ERR_BAD_REQUEST, "%.*s", (int)(size / 2), s),
			 PURGE_ERR_BAD_REQUEST);
	for (size_t cap = 1; cap <= 9; cap++)
		check_safe((const char *)data, size, cap, size & 1 ? TEXT_ESCAPE_CONTROLS : 0);
	check_safe((const char *)data, size, size * 6 + 8, 0);
	check_safe((const char *)data, size, size * 6 + 8, TEXT_ESCAPE_CONTROLS);
	free(s);
	return 0;
}
