/*
 * Blocking frame I/O for the programs that do not run an event loop
 * (purgectl, purged-executor).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "purged/util.h"

int frame_send(int fd, const json_t *msg)
{
	uint8_t *buf;
	size_t len, off = 0;
	int r = proto_encode(msg, &buf, &len);
	if (r < 0)
		return r;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	free(buf);
	return r;
}

int frame_recv(int fd, struct proto_reader *rd, unsigned allowed,
	       enum purge_msg_type *ret_type, json_t **ret_msg, struct proto_error *reterr)
{
	for (;;) {
		const uint8_t *p;
		size_t n;
		int r = proto_reader_next(rd, &p, &n);
		if (r > 0)
			return proto_decode(p, n, allowed, ret_type, ret_msg, reterr);
		if (r < 0) {
			reterr->code = r == -EMSGSIZE ? PURGE_ERR_TOO_LARGE : PURGE_ERR_BAD_REQUEST;
			snprintf(reterr->message, sizeof(reterr->message), "%s",
				 r == -EMSGSIZE ? "frame longer than the 1 MiB limit" : "empty frame");
			return r;
		}
		uint8_t buf[16384];
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return proto_reader_pending(rd) ? -ECONNRESET : -EPIPE;
		r = proto_reader_feed(rd, buf, (size_t)got);
		if (r < 0)
			return r;
	}
}
