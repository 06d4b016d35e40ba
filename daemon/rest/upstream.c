/*
 * purged-rest's link to the supervisor (fd 3): control-protocol requests
 * out, replies and events in, matched by id. If the link goes, the process
 * ends: the supervisor restarts it. purged-rest only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/rest/rest.h"
#include "purged/log.h"
#include "purged/util.h"

struct call {
	uint64_t id;
	upstream_fn fn;
	void *userdata;
};

static uv_pipe_t link_pipe;
static bool alive;
static struct proto_reader rd;
static struct call *calls;
static size_t n_calls, cap_calls;
static uint64_t next_id = 1;
static int64_t last_answer;

bool upstream_alive(void)
{
	return alive;
}

int64_t upstream_last_answer(void)
{
	return last_answer;
}

static void drop_at(size_t i)
{
	calls[i] = calls[--n_calls];
}

static void push_call(struct call c)
{
	if (n_calls == cap_calls) {
		cap_calls = cap_calls ? cap_calls * 2 : 64;
		calls = xrealloc(calls, cap_calls * sizeof(*calls));
	}
	calls[n_calls++] = c;
}

static void deliver(const json_t *msg)
{
	last_answer = mono_usec();
	uint64_t id = (uint64_t)json_integer_value(json_object_get(msg, "id"));
	for (size_t i = 0; i < n_calls; i++) {
		if (calls[i].id != id)
			continue;
		struct call c = calls[i];
		/* Drop first: the callback may release the request, which forgets its calls. */
		drop_at(i);
		if (c.fn(msg, c.userdata))
			push_call(c);
		return;
	}
}

static void link_lost(const char *why)
{
	if (!alive)
		return;
	alive = false;
	log_warnx("the link to the supervisor is gone (%s); exiting so that purged restarts us", why);
	/* Fail every pending request with 503 before going. */
	while (n_calls > 0) {
		struct call c = calls[--n_calls];
		c.fn(NULL, c.userdata);
	}
	uv_close((uv_handle_t *)&link_pipe, NULL);
	http_close_all();
}

static void alloc_buf(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = xmalloc(suggested);
	buf->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)s;
	if (nread < 0) {
		free(buf->base);
		link_lost(nread == UV_EOF ? "closed" : uv_strerror((int)nread));
		return;
	}
	if (nread > 0) {
		const uint8_t *p;
		size_t n;
		int r = proto_reader_feed(&rd, buf->base, (size_t)nread);
		while (r >= 0 && alive && (r = proto_reader_next(&rd, &p, &n)) > 0) {
			enum purge_msg_type type;
			struct proto_error err;
			json_t *msg;
			if (proto_decode(p, n, PURGE_MSG_MASK(PURGE_MSG_REPLY) | PURGE_MSG_MASK(PURGE_MSG_EVENT), &type,
					 &msg, &err) < 0) {
				log_warnx("bad message from the supervisor: %s", err.message);
				r = -EBADMSG;
				break;
			}
			deliver(msg);
			json_decref(msg);
		}
		if (r < 0)
			link_lost("protocol error");
	}
	free(buf->base);
}

int upstream_open(int fd)
{
	int r;
	proto_reader_init(&rd);
	uv_pipe_init(rest_loop, &link_pipe, 0);
	r = uv_pipe_open(&link_pipe, fd);
	if (r < 0)
		return r;
	alive = true;
	last_answer = mono_usec();
	return uv_read_start((uv_stream_t *)&link_pipe, alloc_buf, on_read);
}

static void on_written(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
	if (status < 0)
		link_lost(uv_strerror(status));
}

int upstream_call(enum purge_op op, json_t *args, const char *auth, upstream_fn fn, void *userdata,
		  struct proto_error *reterr)
{
	json_t *req;
	uint8_t *buf;
	size_t len;
	int r;

	if (!alive) {
		json_decref(args);
		return -ENOTCONN;
	}
	/* The supervisor closes a link that sends an invalid request: check first, with the same schema. */
	if (proto_validate_args(op, args, reterr) < 0) {
		json_decref(args);
		return -EINVAL;
	}
	req = proto_request_new(next_id, op, args);
	if (req && auth)
		json_object_set_new(req, "auth", json_string(auth));
	r = req ? proto_encode(req, &buf, &len) : -ENOMEM;
	json_decref(req);
	if (r < 0)
		return r;
	uv_write_t *w = xcalloc(1, sizeof(*w));
	w->data = buf;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	r = uv_write(w, (uv_stream_t *)&link_pipe, &b, 1, on_written);
	if (r < 0) {
		free(buf);
		free(w);
		return r;
	}
	push_call((struct call){ next_id++, fn, userdata });
	return 0;
}

void upstream_forget(void *userdata)
{
	for (size_t i = 0; i < n_calls;)
		if (calls[i].userdata == userdata)
			drop_at(i);
		else
			i++;
}
