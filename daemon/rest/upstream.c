/*
 * purged-rest's link to the supervisor (fd 3): control-protocol requests
 * out, replies and events in, matched by id. If the link goes, the process
 * ends: the supervisor restarts it. Every call has a deadline: a supervisor
 * that does not answer (stopped, wedged) gets the client a 504, not a
 * connection held forever. purged-rest only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/rest/rest.h"
#include "purged/messages.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"

struct call {
	uint64_t id;
	upstream_fn fn;
	upstream_text_fn text_fn; /* a relay: successes come as JSON text */
	void *userdata;
	uint64_t sent;            /* loop time (ms) it was sent */
	bool lasting;             /* answered when a task ends (plan, tasks.watch) */
};

static uv_pipe_t link_pipe;
static struct outq link_out;
static bool alive;
static struct proto_reader rd;
static struct call *calls;
static size_t n_calls, cap_calls;
static uint64_t next_id = 1;
static int64_t last_answer;
static uint64_t last_answer_ms; /* the same, in loop time */
static void (*on_lost)(void);
static uv_timer_t deadline_timer;
unsigned rest_upstream_timeout_ms = 30000;

void upstream_on_lost(void (*fn)(void))
{
	on_lost = fn;
}

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
	last_answer_ms = uv_now(rest_loop);
	/* Replies and events alike carry the id of the request they answer. */
	struct msg_reply rp;
	struct msg_event ev;
	uint64_t id;
	if (msg_reply_unpack(msg, &rp)) {
		id = rp.id;
	} else {
		msg_event_unpack(msg, &ev);
		id = ev.id;
	}
	struct call *p = find_call(id);
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
	last_answer_ms = uv_now(rest_loop);
	struct call *p = find_call(id);
	struct call c = *p; /* wants_text() found it */
	drop_at((size_t)(p - calls));
	c.text_fn(text, len, c.userdata);
}

/* Fail every pending request with 503, and close the link and the deadline timer. */
static void link_close(void)
{
	if (!alive)
		return;
	alive = false;
	while (n_calls > 0) {
		struct call c = calls[--n_calls];
		c.fn(NULL, c.userdata);
	}
	outq_discard(&link_out);
	uv_close((uv_handle_t *)&link_pipe, NULL);
	uv_close((uv_handle_t *)&deadline_timer, NULL);
}

void upstream_close(void)
{
	link_close();
}

static void link_lost(const char *why)
{
	if (!alive)
		return;
	log_warnx("the link to the supervisor is gone (%s); exiting so that purged restarts us", why);
	link_close();
	if (on_lost)
		on_lost(); /* closes every other handle: the loop ends, the process exits */
	else
		http_close_all();
}

/*
 * The deadline sweep, twice a second, costs nothing per request. A call
 * expires when the supervisor has not answered it within the timeout; a
 * lasting one (a plan, a watch: answered when a task ends, which may take
 * long) when the supervisor has been silent that long, though the /healthz
 * pings make a live one answer every second.
 */
static void on_deadline_tick(uv_timer_t *t)
{
	uint64_t now = uv_now(rest_loop);
	(void)t;
	for (size_t i = 0; i < n_calls;) {
		struct call *c = &calls[i];
		uint64_t since = c->lasting && last_answer_ms > c->sent ? last_answer_ms : c->sent;
		if (now - since < rest_upstream_timeout_ms) {
			i++;
			continue;
		}
		struct call gone = *c;
		drop_at(i);
		char msg[200];
		snprintf(msg, sizeof(msg), "purged did not answer within %u s; the request may still be carried "
			 "out once it does: check GET /v1/tasks", rest_upstream_timeout_ms / 1000);
		json_t *timeout = json_pack("{s:s, s:I, s:b, s:{s:s, s:s}}", "kind", "reply", "id", (json_int_t)gone.id,
					    "ok", 0, "error", "code", UPSTREAM_TIMEOUT_CODE, "message", msg);
		gone.fn(timeout, gone.userdata); /* may release requests: calls[] changes, i stays valid */
		json_decref(timeout);
	}
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
	last_answer_ms = uv_now(rest_loop);
	uv_timer_init(rest_loop, &deadline_timer);
	uv_timer_start(&deadline_timer, on_deadline_tick, 500, 500);
	uv_unref((uv_handle_t *)&deadline_timer);
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
	c.sent = uv_now(rest_loop);
	c.lasting = op == PURGE_OP_PLAN || op == PURGE_OP_TASKS_WATCH;
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
