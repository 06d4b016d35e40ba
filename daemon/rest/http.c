/*
 * HTTP/1.1 connections for purged-rest, parsed by llhttp: keep-alive,
 * pipelining (one request at a time per connection, in order: the parser is
 * paused while a request is answered), limits on the header block (431) and
 * the body (413), a cap on connections, and an idle/slow-client timeout that
 * only the end of a request, not a trickle of bytes, can satisfy.
 */
#include <ctype.h>
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include "daemon/rest/rest.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"

#define MAX_BUFFERED (REST_MAX_HEADER + REST_MAX_BODY + 4096) /* unparsed input held while answering */
#define MAX_OUTPUT   (64 * 1024) /* answers queued for a client before we stop reading its requests */
#define MIN_READ     2048        /* room made in the input buffer before each read */

struct http_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct outq out;
	llhttp_t parser;
	char *in;                  /* received, not yet parsed; NULL when nothing waits */
	size_t in_off, in_len, in_cap;
	bool in_shared;            /* c->in is the shared read buffer, for the length of one on_read */
	struct http_request *req;  /* being parsed, or being answered */
	bool answering;            /* parser paused until the answer is queued */
	bool in_process;           /* process() is on the stack: an answer given now continues its loop */
	bool ending;               /* closing once the queued answers are written */
	bool closing;
	bool keep_alive;
	bool reading;
	bool eof;                  /* the client shut its side: answer what it sent, then close */
	int reject;                /* status to answer when a callback refused (431, 413) */
	size_t header_bytes;
	char hname[32];            /* the header being read, when it is one we use */
	size_t hname_len;
	char hval[PURGE_AUTH_MAX + 64];
	size_t hval_len;
	bool hval_overflow;
	const char *value_end;     /* just past the last value chunk, to spot a folded line */
	const char *exec_base;     /* start of the bytes given to llhttp in this pass */
	unsigned pass, value_pass; /* llhttp_execute calls so far; the one that gave value_end */
	int handles;
	uint64_t idle_since;       /* loop time of the last answer, or of the arrival */
	struct rest_client *client;
	TAILQ_ENTRY(http_conn) link;
};

uv_loop_t *rest_loop;
unsigned rest_idle_timeout_ms = 30000;
static uv_tcp_t listener;
static TAILQ_HEAD(, http_conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static unsigned n_conns;
static llhttp_settings_t settings;

unsigned http_conn_count(void)
{
	return n_conns;
}

static void process(struct http_conn *c);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/*
 * Reads land in the shared buffer when nothing waits from before (nearly
 * always: a client sends a request and waits for its answer), and only what
 * is left unparsed is kept: an idle connection holds no input buffer.
 * Otherwise they are appended to what waits.
 */
static void alloc_in(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct http_conn *c = h->data;
	if (c->in_off == c->in_len) { /* on_read tells by the same test: nothing runs in between */
		uvio_read_buf(h, suggested, buf);
		return;
	}
	if (c->in_cap - c->in_len < MIN_READ && c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->in_cap - c->in_len < MIN_READ) {
		c->in_cap = c->in_cap ? c->in_cap * 2 : 4096;
		c->in = xrealloc(c->in, c->in_cap);
	}
	buf->base = c->in + c->in_len;
	buf->len = c->in_cap - c->in_len;
}

/* After parsing from the shared buffer: keep what is left, in a buffer of the connection's own. */
static void keep_unparsed(struct http_conn *c)
{
	if (!c->in_shared)
		return;
	const char *rest = c->in + c->in_off;
	size_t n = c->in_len - c->in_off;
	c->in_shared = false;
	c->in = NULL;
	c->in_off = c->in_len = c->in_cap = 0;
	if (n == 0 || c->closing)
		return;
	c->in_cap = n + MIN_READ > 4096 ? n + MIN_READ : 4096;
	c->in = xmalloc(c->in_cap);
	memcpy(c->in, rest, n);
	c->in_len = n;
}

static void free_request(struct http_request *req)
{
	if (!req)
		return;
	upstream_forget(req);
	route_release(req);
	free(req->url);
	free(req->body);
	free(req);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	if (--c->handles > 0)
		return;
	client_put(c->client);
	free(c->in);
	free(c);
}

static void conn_close(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->req) {
		if (c->answering)
			c->req->conn = NULL; /* its answer arrives later: the route frees it then */
		else
			free_request(c->req);
		c->req = NULL;
	}
	TAILQ_REMOVE(&conns, c, link);
	n_conns--;
	outq_discard(&c->out);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/*
 * One timer per connection, re-armed only when it fires (not twice per
 * request): a client is cut idle_timeout after its last answer or its
 * arrival, however it trickles bytes; an answer being prepared (a
 * synchronous purge) is not the client's idleness.
 */
static void on_timeout(uv_timer_t *t)
{
	struct http_conn *c = t->data;
	uint64_t idle = uv_now(rest_loop) - c->idle_since;
	if (c->answering || idle < rest_idle_timeout_ms) {
		uv_timer_start(t, on_timeout, c->answering ? rest_idle_timeout_ms : rest_idle_timeout_ms - idle, 0);
		return;
	}
	log_debug("closing a connection idle or slow for %u ms", rest_idle_timeout_ms);
	conn_close(c);
}

static void mark_idle(struct http_conn *c)
{
	c->idle_since = uv_now(rest_loop);
}

/* ---------------------------------------------------------------- parser callbacks */

static struct http_conn *conn_of(llhttp_t *p)
{
	return p->data;
}

static int count_header(struct http_conn *c, size_t n)
{
	/* Field and value bytes; the ": " and CRLF around them are counted in on_header_value. */
	c->header_bytes += n;
	if (c->header_bytes > REST_MAX_HEADER) {
		c->reject = 431;
		return -1;
	}
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct http_conn *c = conn_of(p);
	c->req = xcalloc(1, sizeof(*c->req));
	c->req->conn = c;
	c->req->client = c->client;
	c->req->json_body = true;
	c->header_bytes = 0;
	c->hname_len = c->hval_len = 0;
	c->value_end = NULL;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	size_t old = c->req->url ? strlen(c->req->url) : 0;
	if (count_header(c, n) < 0)
		return -1;
	c->req->url = xrealloc(c->req->url, old + n + 1);
	memcpy(c->req->url + old, at, n);
	c->req->url[old + n] = '\0';
	return 0;
}

/*
 * RFC 6750's b64token: letters, digits, "-._~+/", then "=" padding. purgectl
 * makes hex tokens; anything else could not match one, and would not be a
 * valid protocol string either (the supervisor drops a link that sends one).
 */
static bool is_b64token(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (isalnum((unsigned char)s[i]) || strchr("-._~+/", s[i])))
		i++;
	if (i == 0)
		return false;
	while (i < n && s[i] == '=')
		i++;
	return i == n;
}

static void finish_header(struct http_conn *c)
{
	struct http_request *r = c->req;
	char *v = c->hval;

	if (c->hname_len == 0)
		return;
	c->hval[c->hval_len] = '\0';
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcasecmp(c->hname, "authorization") == 0) {
		if (!c->hval_overflow && strncasecmp(v, "Bearer ", 7) == 0) {
			const char *tok = v + 7;
			while (*tok == ' ')
				tok++;
			size_t n = strlen(tok);
			while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
				n--; /* llhttp leaves trailing whitespace in values */
			if (n > 0 && n <= PURGE_AUTH_MAX && is_b64token(tok, n)) {
				memcpy(r->auth, tok, n);
				r->auth[n] = '\0';
				r->has_auth = true;
			} else {
				r->bad_auth = n > 0;
			}
		}
	} else if (strcasecmp(c->hname, "prefer") == 0) {
		r->prefer_async = strcasestr(v, "respond-async") != NULL;
	} else if (strcasecmp(c->hname, "content-type") == 0) {
		r->json_body = strncasecmp(v, "application/json", 16) == 0;
	}
	c->hname_len = c->hval_len = 0;
	c->hval_overflow = false;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	c->value_end = NULL;
	if (count_header(c, n) < 0)
		return -1;
	if (c->hval_len > 0 || c->hval_overflow)
		finish_header(c);
	/* Names we care about are short; longer ones are kept truncated and match nothing. */
	size_t room = sizeof(c->hname) - 1 - c->hname_len;
	size_t k = n < room ? n : room;
	memcpy(c->hname + c->hname_len, at, k);
	c->hname_len += k;
	c->hname[c->hname_len] = '\0';
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	if (count_header(c, n + (c->hval_len == 0 ? 4 : 0)) < 0)
		return -1;
	/*
	 * Obsolete line folding (RFC 7230 3.2.4): llhttp passes the folded line
	 * as a second chunk that does not follow the first. A value split by a
	 * read continues at the start of the next pass instead. Refused.
	 * Ours, because llhttp 8.1 even in strict mode accepts it (without this: 200; badinput.py).
	 */
	if (c->value_end && !(c->value_pass == c->pass && at == c->value_end) && at != c->exec_base) {
		c->reject = 400;
		return -1;
	}
	c->value_end = at + n;
	c->value_pass = c->pass; /* buffers are reused: an address means something in its own pass only */
	size_t room = sizeof(c->hval) - 1 - c->hval_len;
	if (n > room)
		c->hval_overflow = true;
	size_t k = n < room ? n : room;
	memcpy(c->hval + c->hval_len, at, k);
	c->hval_len += k;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_conn *c = conn_of(p);
	finish_header(c);
	c->req->method = llhttp_get_method(p);
	/* HTTP/1.0 and 1.1 only: no HTTP/0.9 (no version at all), nothing newer spoken here. */
	if (llhttp_get_http_major(p) != 1) {
		c->reject = 400;
		return -1;
	}
	if (p->content_length > REST_MAX_BODY && !(p->flags & F_CHUNKED)) {
		c->reject = 413;
		return -1;
	}
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	struct http_request *r = c->req;
	if (r->body_len + n > REST_MAX_BODY) {
		c->reject = 413;
		return -1;
	}
	r->body = xrealloc(r->body, r->body_len + n + 1);
	memcpy(r->body + r->body_len, at, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct http_conn *c = conn_of(p);
	c->keep_alive = llhttp_should_keep_alive(p);
	c->answering = true; /* our own answer may take long (a synchronous purge): not idleness */
	return HPE_PAUSED;
}

/* ---------------------------------------------------------------- responses */

/* Close once the answers queued so far are written (no more requests are read). */
static void conn_end(struct http_conn *c)
{
	c->ending = true;
	outq_notify_idle(&c->out);
}

/* A write failed; or the answers of an ending connection are out; or the backlog drained. */
static void on_out(struct outq *q, int status)
{
	struct http_conn *c = q->stream->data;
	if (status < 0 || c->ending)
		conn_close(c);
	else
		process(c);
}

static const char *reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} reasons[] = {
		{ 200, "OK" }, { 202, "Accepted" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" }, { 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 413, "Content Too Large" }, { 415, "Unsupported Media Type" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
	};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "Unknown";
}

/* Append @s to the head being built at *@p (the head's size is checked by the caller's bounds). */
static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

/*
 * Queued, not written: the answers of one loop iteration leave in one write
 * per connection. The head is assembled by hand: snprintf was a tenth of
 * purged-rest's time on GET /v1/tasks/ID.
 */
static void send_response(struct http_conn *c, int status, const char *ctype, const char *headers,
			  const char *body, size_t body_len, bool close_after)
{
	char head[256], *p = head;
	const char *why = reason(status);

	/* @ctype and the reason are ours (short); @headers, of any length, follow separately. */
	if (strlen(why) + strlen(ctype) > 100 || status < 100 || status > 599)
		fatalx("response head for status %d does not fit", status);
	p = put_str(p, "HTTP/1.1 ");
	*p++ = (char)('0' + status / 100);
	*p++ = (char)('0' + status / 10 % 10);
	*p++ = (char)('0' + status % 10);
	*p++ = ' ';
	p = put_str(p, why);
	p = put_str(p, "\r\nContent-Type: ");
	p = put_str(p, ctype);
	p = put_str(p, "\r\nContent-Length: ");
	char digits[24], *d = digits + sizeof(digits);
	size_t v = body_len;
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	memcpy(p, d, (size_t)(digits + sizeof(digits) - d));
	p += digits + sizeof(digits) - d;
	p = put_str(p, close_after ? "\r\nConnection: close" : "\r\nConnection: keep-alive");
	p = put_str(p, "\r\nCache-Control: no-store\r\n");
	outq_append(&c->out, head, (size_t)(p - head));
	if (headers)
		outq_append(&c->out, headers, strlen(headers));
	outq_append(&c->out, "\r\n", 2);
	outq_append(&c->out, body, body_len);
}

static void respond_raw(struct http_request *req, int status, const char *ctype, const char *headers,
			char *body, size_t len)
{
	struct http_conn *c = req->conn;

	metrics_observe(req->route ? req->route : "unmatched", status, mono_usec() - req->started);
	if (c && !c->closing) {
		/* After an answer to a request we could not read whole, the stream is out of step: close. */
		bool close_after = !c->keep_alive || c->reject || req->close;
		c->req = NULL;
		c->answering = false;
		send_response(c, status, ctype, headers, body, len, close_after);
		mark_idle(c);
		if (close_after)
			conn_end(c);
		else if (!c->in_process)
			process(c); /* the next pipelined request, if any */
	}
	free(body);
	free_request(req);
}

void http_respond(struct http_request *req, int status, const char *headers, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : xstrdup("{}");
	json_decref(body);
	if (!s)
		fatalx("out of memory encoding a response");
	size_t len = strlen(s);
	s = xrealloc(s, len + 2);
	s[len++] = '\n';
	respond_raw(req, status, "application/json", headers, s, len);
}

void http_respond_body(struct http_request *req, int status, const char *ctype, char *body, size_t len)
{
	respond_raw(req, status, ctype, NULL, body, len);
}

void http_respond_text(struct http_request *req, int status, const char *ctype, char *text)
{
	respond_raw(req, status, ctype, NULL, text, strlen(text));
}

/* A request that could not be parsed: answer from here and close. */
static void reject(struct http_conn *c, int status, const char *code, const char *what)
{
	if (!c->req) {
		c->req = xcalloc(1, sizeof(*c->req));
		c->req->conn = c;
	}
	c->req->started = mono_usec();
	c->keep_alive = false;
	c->answering = true;
	http_respond(c->req, status, NULL, json_pack("{s:s, s:s}", "error_code", code, "description", what));
}

/* ---------------------------------------------------------------- input */

static void process(struct http_conn *c)
{
	if (c->in_process)
		return;
	c->in_process = true;
	while (!c->closing && !c->ending && !c->answering && c->in_off < c->in_len) {
		if (outq_pending(&c->out) > MAX_OUTPUT) {
			outq_notify_idle(&c->out); /* a client not reading its answers: resume when they are out */
			break;
		}
		const char *start = c->in + c->in_off;
		c->exec_base = start;
		c->pass++;
		llhttp_errno_t e = llhttp_execute(&c->parser, start, c->in_len - c->in_off);

		if (e == HPE_OK) {
			c->in_off = c->in_len;
		} else if (e == HPE_PAUSED) {
			c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - start);
			llhttp_resume(&c->parser);
			struct http_request *req = c->req;
			req->started = mono_usec();
			route_dispatch(req); /* may answer at once: then the loop goes on with the next request */
		} else if (c->reject == 431) {
			reject(c, 431, "header_too_large", "request line and headers exceed 8 KiB");
		} else if (c->reject == 413) {
			reject(c, 413, "too_large", "request body exceeds 64 KiB");
		} else {
			char what[160];
			snprintf(what, sizeof(what), "malformed HTTP request: %s", llhttp_get_error_reason(&c->parser));
			c->reject = 400;
			reject(c, 400, "bad_request", what);
		}
	}
	c->in_process = false;
	if (c->closing || c->ending)
		return;
	if (c->in_off == c->in_len && !c->in_shared) {
		free(c->in);
		c->in = NULL;
		c->in_off = c->in_len = c->in_cap = 0;
	}
	if (c->eof && !c->answering) {
		conn_end(c); /* every whole request answered; a partial one at EOF gets no answer */
		return;
	}
	/* Reading was paused while too much input waited: resume once it has been parsed. */
	if (!c->reading && !c->eof && c->in_len - c->in_off < MAX_BUFFERED / 2) {
		c->reading = true;
		uv_read_start((uv_stream_t *)&c->tcp, alloc_in, on_read);
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct http_conn *c = s->data;

	bool shared = c->in_off == c->in_len; /* as alloc_in chose */
	if (nread < 0) {
		uv_read_stop(s);
		c->reading = false;
		c->eof = true;
		/* Half-closed: answer the requests already received, then close. */
		if (!c->answering && c->in_off == c->in_len && outq_pending(&c->out) == 0)
			conn_close(c);
		else
			process(c);
		return;
	}
	if (nread > 0 && shared) {
		free(c->in); /* empty, or alloc_in would have appended to it */
		c->in = buf->base;
		c->in_off = 0;
		c->in_len = c->in_cap = (size_t)nread;
		c->in_shared = true;
	} else if (nread > 0) {
		c->in_len += (size_t)nread;
		if (c->in_len - c->in_off > MAX_BUFFERED) {
			uv_read_stop(s); /* a pipelining client waits for our answers before sending more */
			c->reading = false;
		}
	}
	process(c);
	keep_unparsed(c);
}

/* ---------------------------------------------------------------- accept */

/*
 * At the limit, the connection idle (or trickling) longest gives way to the
 * new one, unless every one is being answered: slots held open by a local
 * user who sends half a request and waits (slowloris) then cost them their
 * oldest slot, and the door stays open to clients that ask and go.
 */
static struct log_limit full_log;

static bool evict_idlest(const struct http_conn *fresh)
{
	struct http_conn *victim = NULL, *o;
	TAILQ_FOREACH(o, &conns, link)
		if (o != fresh && !o->answering && !o->closing && (!victim || o->idle_since < victim->idle_since))
			victim = o;
	if (!victim)
		return false;
	log_warnx_limited(&full_log, "%u connections open (limit %d): closing the one idle longest (%llu ms) for a new "
			  "one", n_conns - 1, REST_MAX_CONNS,
			  (unsigned long long)(uv_now(rest_loop) - victim->idle_since));
	conn_close(victim);
	return true;
}

static void on_connection(uv_stream_t *server, int status)
{
	static struct log_limit accept_log;
	struct http_conn *c;

	if (status < 0) {
		log_warnx_limited(&accept_log, "accept failed: %s, ignoring", uv_strerror(status));
		return;
	}
	c = xcalloc(1, sizeof(*c));
	uv_tcp_init(rest_loop, &c->tcp);
	uv_timer_init(rest_loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	outq_init(&c->out, (uv_stream_t *)&c->tcp, on_out);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
		return;
	}
	TAILQ_INSERT_HEAD(&conns, c, link);
	n_conns++;
	if (n_conns > REST_MAX_CONNS && !evict_idlest(c)) {
		/* Every other one is being answered: this one is refused, so that they keep their share. */
		log_warnx_limited(&full_log, "refusing a connection: %u open (limit %d), all being answered",
				  n_conns - 1, REST_MAX_CONNS);
		conn_close(c);
		return;
	}
	struct sockaddr_storage peer = { 0 };
	int plen = sizeof(peer);
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen);
	c->client = client_get(&peer);
	llhttp_init(&c->parser, HTTP_REQUEST, &settings);
	c->parser.data = c;
	uv_tcp_nodelay(&c->tcp, 1);
	mark_idle(c);
	uv_timer_start(&c->timer, on_timeout, rest_idle_timeout_ms, 0);
	c->reading = true;
	uv_read_start((uv_stream_t *)&c->tcp, alloc_in, on_read);
}

int http_listen(int fd)
{
	int r;

	outq_setup(rest_loop);
	llhttp_settings_init(&settings);
	settings.on_message_begin = on_message_begin;
	settings.on_url = on_url;
	settings.on_header_field = on_header_field;
	settings.on_header_value = on_header_value;
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
	settings.on_message_complete = on_message_complete;

	uv_tcp_init(rest_loop, &listener);
	r = uv_tcp_open(&listener, fd);
	if (r < 0)
		return r;
	return uv_listen((uv_stream_t *)&listener, 511, on_connection);
}

void http_close_all(void)
{
	if (!uv_is_closing((uv_handle_t *)&listener))
		uv_close((uv_handle_t *)&listener, NULL);
	while (!TAILQ_EMPTY(&conns)) {
		struct http_conn *c = TAILQ_FIRST(&conns);
		outq_flush(&c->out); /* the 503s just given to pending requests */
		conn_close(c);
	}
}
