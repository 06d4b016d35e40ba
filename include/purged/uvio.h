/*
 * libuv stream helpers shared by the supervisor and purged-rest.
 *
 * Reads land in one static buffer (every reader copies what it keeps before
 * returning), so a read costs no allocation. Writes are coalesced: what a
 * loop iteration appends to a stream leaves in one write() just before the
 * loop next polls, tried directly first (no request, no epoll change when the
 * socket takes it all, which is nearly always); the rest waits in a libuv
 * write request.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* alloc_cb for uv_read_start: the shared buffer. Never free it. */
void uvio_read_buf(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

struct outq;
/*
 * @status < 0: a write failed (the owner should close the stream).
 * @status == 0: everything queued has reached the kernel, and the owner had
 * asked to hear it (outq_notify_idle).
 */
typedef void (*outq_cb)(struct outq *q, int status);

struct outq {
	uv_stream_t *stream;
	outq_cb cb;
	char *buf;              /* appended, not yet written */
	size_t len, cap;
	size_t inflight;        /* bytes in uv_write requests not yet completed */
	bool dirty;             /* on the flush list */
	bool notify_idle;
	bool dead;              /* discarded: late completions only free their buffer */
	struct outq *next_dirty;
};

/* Once per loop, before any outq is used. */
void outq_setup(uv_loop_t *loop);
void outq_init(struct outq *q, uv_stream_t *stream, outq_cb cb);
/* Queue @n bytes; they leave before the loop next polls. */
void outq_append(struct outq *q, const void *p, size_t n);
/* Bytes queued and not yet taken by the kernel. */
size_t outq_pending(const struct outq *q);
/* Call cb(q, 0) once everything queued has been written (at once if already so). */
void outq_notify_idle(struct outq *q);
/* Write what is queued now, without waiting for the end of the iteration. */
void outq_flush(struct outq *q);
/*
 * Before closing the stream: drop what was not written. A struct outq with
 * writes in flight must outlive them (libuv calls them back, cancelled,
 * before the handle's close callback).
 */
void outq_discard(struct outq *q);
