/*
 * purged-rest's link to the supervisor (fd 3): control-protocol requests
 * out, replies and events in, matched by id. If the link goes, the process
 * ends: the supervisor restarts it. purged-rest only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/rest/rest.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"

struct call {
	uint64_t id;
	upstream_fn fn;
	upstream_text_fn text_fn; /* a relay: successes come as JSON text */
	void *userdata;
};

static uv_pipe_t link_pipe;
static struct outq link_out;
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

static struct call *find_call(uint64_t id)
{
	for (size_t i = 0; i < n_calls; i++)
		if (calls[i].id == id)
			return &calls[i];
	return NULL;
}

static bool wants_text(uint64_t id, void *ctx)
{
	(void)ctx;
	struct call *c = find_call(id);
	return c && c->text_fn;
}

static void deliver(const json_t *msg)
{
	last_answer = mono_usec();
	struct call *p = find_call((uint64_t)json_integer_value(json_object_get(msg, "id")));
	if (!p)
		return;
	struct call c = *p;
	/* Drop first: the callback may release the request, which forgets its calls. */
	drop_at((size_t)(p - calls));
	if (c.fn(msg, c.userdata))
		push_call(c);
}

static void deliver_text(uint64_t id, char *text, size_t len)
{
	last_answer = mono_usec();
	struct call *p = find_call(id);
	struct call c = *p; /* wants_text() found it */
	drop_at((size_t)(p - calls));
	c.text_fn(text, len, c.userdata);
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
	outq_discard(&link_out);
	uv_close((uv_handle_t *)&link_pipe, NULL);
	http_close_all();
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)s;
	if (nread < 0) {
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
			uint64_t id;
			char *text;
			size_t len;
			int k = proto_reply_result_text(p, n, wants_text, NULL, &id, &text, &len, &err);
			if (k > 0) {
				deliver_text(id, text, len);
				continue;
			}
			if (k == 0)
				k = proto_decode(p, n, PURGE_MSG_MASK(PURGE_MSG_REPLY) | PURGE_MSG_MASK(PURGE_MSG_EVENT),
						 &type, &msg, &err);
			if (k < 0) {
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
}

static void on_link_out(struct outq *q, int status)
{
	(void)q;
	if (status < 0)
		link_lost(uv_strerror(status));
}

int upstream_open(int fd)
{
	int r;
	proto_reader_init(&rd);
	outq_setup(rest_loop);
	uv_pipe_init(rest_loop, &link_pipe, 0);
	r = uv_pipe_open(&link_pipe, fd);
	if (r < 0)
		return r;
	outq_init(&link_out, (uv_stream_t *)&link_pipe, on_link_out);
	alive = true;
	last_answer = mono_usec();
	return uv_read_start((uv_stream_t *)&link_pipe, uvio_read_buf, on_read);
}

static int send_call(enum purge_op op, json_t *args, const char *auth, struct call c, struct proto_error *reterr)
{
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
	r = proto_encode_request(next_id, op, args, auth, &buf, &len);
	json_decref(args);
	if (r == -EINVAL) /* http.c passes tokens only: a last guard, the link would be dropped */
		snprintf(reterr->message, sizeof(reterr->message), "the bearer token is not a valid string");
	if (r < 0)
		return r;
	/* The requests of one loop iteration reach the supervisor in one write. */
	outq_append(&link_out, buf, len);
	free(buf);
	c.id = next_id++;
	push_call(c);
	return 0;
}

int upstream_call(enum purge_op op, json_t *args, const char *auth, upstream_fn fn, void *userdata,
		  struct proto_error *reterr)
{
	return send_call(op, args, auth, (struct call){ .fn = fn, .userdata = userdata }, reterr);
}

int upstream_relay(enum purge_op op, json_t *args, const char *auth, upstream_text_fn text_fn, upstream_fn fn,
		   void *userdata, struct proto_error *reterr)
{
	return send_call(op, args, auth, (struct call){ .fn = fn, .text_fn = text_fn, .userdata = userdata },
			 reterr);
}

void upstream_forget(void *userdata)
{
	for (size_t i = 0; i < n_calls;)
		if (calls[i].userdata == userdata)
			drop_at(i);
		else
			i++;
}
