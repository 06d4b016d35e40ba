/*
 * Frame splitting: 4-byte big-endian length + payload. Pure buffer code, no
 * I/O, shared by every program's reader.
 */
#include <stdlib.h>
#include <string.h>
#include "purged/proto.h"

void proto_reader_init(struct proto_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void proto_reader_free(struct proto_reader *r)
{
	free(r->buf);
	proto_reader_init(r);
}

int proto_reader_feed(struct proto_reader *r, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	/* Slide consumed bytes out before growing. */
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->len);
		r->start = 0;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n)
			cap *= 2;
		uint8_t *b = realloc(r->buf, cap);
		if (!b)
			return -ENOMEM;
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
}

int proto_reader_next(struct proto_reader *r, const uint8_t **ret_payload, size_t *ret_len)
{
	if (r->len < 4)
		return 0;
	const uint8_t *p = r->buf + r->start;
	uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (n > PURGE_FRAME_MAX)
		return -EMSGSIZE;
	if (n == 0)
		return -EBADMSG;
	if (r->len - 4 < n)
		return 0;
	*ret_payload = p + 4;
	*ret_len = n;
	r->start += 4 + n;
	r->len -= 4 + n;
	return 1;
}

size_t proto_reader_pending(const struct proto_reader *r)
{
	return r->len;
}
