/*
 * libuv stream helpers: one shared read buffer, coalesced writes. Found by
 * profiling GET /v1/tasks/ID: a libuv write request per message cost a
 * write() per message on the supervisor link, and an epoll_ctl() per
 * response when libuv stopped waiting for POLLOUT it had never needed.
 */
#include <stdlib.h>
#include <string.h>
#include "purged/util.h"
#include "purged/uvio.h"

static char read_buf[64 * 1024];
static uv_prepare_t flusher;
static bool flusher_ready;
static struct outq *dirty;

struct pending_write {
	uv_write_t req;
	struct outq *q;
	char *base;   /* the buffer handed over; written from an offset */
	size_t len;
};

void uvio_read_buf(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = read_buf;
	buf->len = sizeof(read_buf);
}

static void flush_all(uv_prepare_t *p);

static void mark_dirty(struct outq *q)
{
	if (q->dirty)
		return;
	q->dirty = true;
	q->next_dirty = dirty;
	dirty = q;
	uv_prepare_start(&flusher, flush_all); /* no-op when already started */
}

static void unmark_dirty(struct outq *q)
{
	if (!q->dirty)
		return;
	for (struct outq **pp = &dirty; *pp; pp = &(*pp)->next_dirty)
		if (*pp == q) {
			*pp = q->next_dirty;
			break;
		}
	q->dirty = false;
	q->next_dirty = NULL;
}

static void maybe_idle(struct outq *q)
{
	if (q->notify_idle && q->len == 0 && q->inflight == 0 && !q->dead) {
		q->notify_idle = false;
		q->cb(q, 0);
	}
}

static void on_written(uv_write_t *req, int status)
{
	struct pending_write *w = (struct pending_write *)req;
	struct outq *q = w->q;

	q->inflight -= w->len;
	free(w->base);
	free(w);
	if (q->dead)
		return;
	if (status < 0)
		q->cb(q, status);
	else
		maybe_idle(q);
}

void outq_flush(struct outq *q)
{
	unmark_dirty(q);
	if (q->dead)
		return;
	if (q->len > 0) {
		uv_buf_t b = uv_buf_init(q->buf, (unsigned)q->len);
		int n = uv_try_write(q->stream, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			q->cb(q, n);
			return;
		}
		size_t done = n > 0 ? (size_t)n : 0;
		char *buf = q->buf;
		size_t rest = q->len - done;
		q->buf = NULL; /* idle connections keep no output buffer */
		q->len = q->cap = 0;
		if (rest == 0) {
			free(buf);
		} else {
			/* The socket is full: hand the rest to libuv, which waits for POLLOUT. */
			struct pending_write *w = xcalloc(1, sizeof(*w));
			w->q = q;
			w->base = buf;
			w->len = rest;
			b = uv_buf_init(buf + done, (unsigned)rest);
			int r = uv_write(&w->req, q->stream, &b, 1, on_written);
			if (r < 0) {
				free(buf);
				free(w);
				q->cb(q, r);
				return;
			}
			q->inflight += rest;
		}
	}
	maybe_idle(q);
}

static void flush_all(uv_prepare_t *p)
{
	struct outq *q;
	while ((q = dirty) != NULL)
		outq_flush(q); /* takes q off the list, and may take others (a closed stream) */
	uv_prepare_stop(p);
}

void outq_setup(uv_loop_t *loop)
{
	if (flusher_ready)
		return;
	uv_prepare_init(loop, &flusher); /* active only while bytes wait: they leave before the loop ends */
	flusher_ready = true;
}

void outq_init(struct outq *q, uv_stream_t *stream, outq_cb cb)
{
	memset(q, 0, sizeof(*q));
	q->stream = stream;
	q->cb = cb;
}

void outq_append(struct outq *q, const void *p, size_t n)
{
	if (q->dead || n == 0)
		return;
	if (q->len + n > q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 1024;
		while (cap < q->len + n)
			cap *= 2;
		q->buf = xrealloc(q->buf, cap);
		q->cap = cap;
	}
	memcpy(q->buf + q->len, p, n);
	q->len += n;
	mark_dirty(q);
}

size_t outq_pending(const struct outq *q)
{
	return q->len + q->inflight;
}

void outq_notify_idle(struct outq *q)
{
	q->notify_idle = true;
	mark_dirty(q); /* called back from the flush, never from inside the caller */
}

void outq_discard(struct outq *q)
{
	unmark_dirty(q);
	free(q->buf);
	q->buf = NULL;
	q->len = q->cap = 0;
	q->dead = true;
}
