/*
 * Bound a msgpack payload before msgpack-c sees it. msgpack-c's C unpacker
 * allocates a container's entries as soon as it reads the header, and has no
 * limits (its C++ API has unpack_limit), so a 6-byte frame claiming 2^32
 * entries would make it allocate ~100 GB. Every entry needs at least one
 * byte, so here the sum of all entries claimed so far must stay within the
 * bytes that remain. Only headers are read; msgpack-c does the decoding.
 */
#include <stdint.h>
#include "proto/internal.h"

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int proto_prescan(const uint8_t *p, size_t len, struct proto_error *err)
{
	size_t off = 0;
	uint64_t pending = 1; /* values still to read */

	while (pending > 0) {
		uint64_t entries = 0, skip = 0;
		int lenbytes = 0;
		uint8_t b;

		if (off >= len)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "truncated msgpack value");
		b = p[off++];
		pending--;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, nil, bool */
		} else if (b <= 0x8f) {
			entries = 2ull * (b & 0x0f);
		} else if (b <= 0x9f) {
			entries = b & 0x0f;
		} else if (b <= 0xbf) {
			skip = b & 0x1f;
		} else if (b == 0xc1) {
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "malformed msgpack");
		} else if (b >= 0xc4 && b <= 0xc6) {
			lenbytes = 1 << (b - 0xc4); /* bin 8/16/32 */
		} else if (b >= 0xc7 && b <= 0xc9) {
			lenbytes = 1 << (b - 0xc7); /* ext 8/16/32 */
			skip = 1;
		} else if (b == 0xca || b == 0xcb) {
			skip = b == 0xca ? 4 : 8;
		} else if (b >= 0xcc && b <= 0xd3) {
			skip = 1u << ((b - 0xcc) & 3);
		} else if (b >= 0xd4 && b <= 0xd8) {
			skip = 1 + (1u << (b - 0xd4)); /* fixext: type + 1..16 */
		} else if (b >= 0xd9 && b <= 0xdb) {
			lenbytes = 1 << (b - 0xd9); /* str 8/16/32 */
		} else if (b == 0xdc || b == 0xdd) {
			if (off + (b == 0xdc ? 2 : 4) > len)
				return proto_fail(err, PURGE_ERR_BAD_REQUEST, "truncated msgpack value");
			entries = be(p + off, b == 0xdc ? 2 : 4);
			off += b == 0xdc ? 2 : 4;
		} else { /* 0xde, 0xdf: map 16/32 */
			if (off + (b == 0xde ? 2 : 4) > len)
				return proto_fail(err, PURGE_ERR_BAD_REQUEST, "truncated msgpack value");
			entries = 2 * be(p + off, b == 0xde ? 2 : 4);
			off += b == 0xde ? 2 : 4;
		}
		if (lenbytes) {
			if (off + (size_t)lenbytes > len)
				return proto_fail(err, PURGE_ERR_BAD_REQUEST, "truncated msgpack value");
			skip += be(p + off, lenbytes);
			off += (size_t)lenbytes;
		}
		if (skip > len - off)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "truncated msgpack value");
		off += skip;
		pending += entries;
		if (pending > len - off)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST,
					  "msgpack containers claim more entries than the frame holds");
	}
	return 0;
}
