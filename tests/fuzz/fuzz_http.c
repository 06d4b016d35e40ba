/*
 * libFuzzer target: raw bytes from an HTTP client through purged-rest's real
 * code (llhttp, limits, pipelining, router, JSON bodies, argument checks)
 * over a loopback socket. A fake supervisor on the control link answers
 * every request, so routes run to their answers. Properties, once the server
 * has closed: what it sent is a sequence of whole, well-formed responses
 * (status line, "Name: value" headers, one Content-Length that the body
 * matches, one Connection header, nothing after "Connection: close"); JSON
 * bodies are valid JSON, hence valid UTF-8; at most one response per complete
 * request (as llhttp alone counts them) plus one refusal, and at least one
 * when there was a complete request.
 */
#include <ctype.h>
#include <errno.h>
#include <llhttp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include "daemon/rest/rest.h"
#include "purged/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sockaddr_in addr;
static uv_pipe_t sup;
static struct proto_reader rd;

static const char *task_json = "{\"id\":\"01a227ad-f7bc-7304-b19f-9b57b020426a\",\"target\":\"demo\","
			       "\"operation\":\"crdb.purge\",\"status\":\"failed\",\"progress\":{\"done\":1,"
			       "\"total\":2},\"counts\":{\"instance 1\":1},\"error\":\"x\",\"errors\":"
			       "[{\"cluster_name\":\"1\",\"error_code\":\"e\",\"description\":\"d\"}],"
			       "\"params\":{\"instances\":[1,2]}}";

static void send_msg(json_t *m)
{
	uint8_t *buf;
	size_t len;
	if (proto_encode(m, &buf, &len) == 0) {
		uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
		uv_try_write((uv_stream_t *)&sup, &b, 1);
		free(buf);
	}
	json_decref(m);
}

/* The fake supervisor: a plausible answer to each op. */
static void answer(const json_t *req)
{
	uint64_t id = (uint64_t)json_integer_value(json_object_get(req, "id"));
	const char *op = json_string_value(json_object_get(req, "op"));
	json_t *task = json_loads(task_json, 0, NULL);

	if (!json_object_get(req, "auth") && strcmp(op, "status") != 0) {
		send_msg(proto_reply_error(id, PURGE_ERR_UNAUTHORIZED, "missing bearer token"));
	} else if (!strcmp(op, "tasks.list")) {
		send_msg(proto_reply_ok(id, json_pack("{s:[O]}", "tasks", task)));
	} else if (!strcmp(op, "tasks.watch")) {
		send_msg(proto_reply_ok(id, json_incref(task)));
		send_msg(proto_event_new(id, "end", json_incref(task)));
	} else if (!strcmp(op, "metrics")) {
		send_msg(proto_reply_ok(id, json_pack("{s:[{s:s, s:s, s:i}], s:i, s:i}", "tasks", "target", "a",
						      "status", "failed", "count", 1, "running", 0, "queued", 0)));
	} else if (!strcmp(op, "reload")) {
		send_msg(proto_reply_error(id, PURGE_ERR_BUSY, "busy"));
	} else {
		send_msg(proto_reply_ok(id, json_incref(task)));
	}
	json_decref(task);
}

static void alloc_buf(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(s);
	b->len = s;
}

static void on_sup_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)s;
	if (n > 0 && proto_reader_feed(&rd, b->base, (size_t)n) == 0) {
		const uint8_t *p;
		size_t len;
		while (proto_reader_next(&rd, &p, &len) > 0) {
			enum purge_msg_type t;
			struct proto_error err;
			json_t *req;
			if (proto_decode(p, len, PURGE_MSG_MASK(PURGE_MSG_REQUEST), &t, &req, &err) < 0)
				abort(); /* purged-rest must never send an invalid request */
			answer(req);
			json_decref(req);
		}
	}
	free(b->base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int sv[2], lfd;
	socklen_t alen = sizeof(addr);
	(void)argc, (void)argv;

	rest_loop = uv_default_loop();
	rest_idle_timeout_ms = 1000;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0 || http_listen(lfd) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || upstream_open(sv[0]) < 0)
		abort();
	proto_reader_init(&rd);
	uv_pipe_init(rest_loop, &sup, 0);
	uv_pipe_open(&sup, sv[1]);
	uv_read_start((uv_stream_t *)&sup, alloc_buf, on_sup_read);
	return 0;
}

__attribute__((noreturn)) static void fail(const char *what, const char *at, size_t len)
{
	fprintf(stderr, "fuzz_http: property broken: %s; at: %.*s\n", what, (int)(len < 200 ? len : 200), at ? at : "");
	abort();
}

static int on_complete(llhttp_t *p)
{
	(*(size_t *)p->data)++;
	return HPE_OK;
}

/* Complete requests in @data, as llhttp alone (same strict build) parses them. */
static size_t count_requests(const uint8_t *data, size_t size)
{
	llhttp_settings_t s;
	llhttp_t p;
	size_t n = 0;

	llhttp_settings_init(&s);
	s.on_message_complete = on_complete;
	llhttp_init(&p, HTTP_REQUEST, &s);
	p.data = &n;
	llhttp_execute(&p, (const char *)data, size);
	return n;
}

static bool header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* The server's whole output @b[0..len), for @requests complete requests. */
static void check_responses(const char *b, size_t len, size_t requests)
{
	size_t off = 0, n = 0;
	bool closed = false;

	while (off < len) {
		const char *r = b + off, *end = memmem(r, len - off, "\r\n\r\n", 4);
		if (closed)
			fail("nothing follows a 'Connection: close' response", r, len - off);
		if (!end)
			fail("a response head is whole", r, len - off);
		size_t hlen = (size_t)(end - r) + 4;
		if (memchr(r, '\0', hlen) || hlen < 17 || memcmp(r, "HTTP/1.1 ", 9) != 0 || !isdigit((unsigned char)r[9]) ||
		    !isdigit((unsigned char)r[10]) || !isdigit((unsigned char)r[11]) || r[12] != ' ' || r[9] < '1' ||
		    r[9] > '5' || r[13] == '\r')
			fail("a response starts with 'HTTP/1.1 NNN Reason'", r, hlen);
		long cl = -1;
		int n_cl = 0, n_conn = 0;
		bool json = false;
		const char *line = memchr(r, '\n', hlen) + 1;
		while (line < r + hlen - 2) {
			const char *eol = memmem(line, (size_t)(r + hlen - line), "\r\n", 2);
			size_t ll = (size_t)(eol - line);
			const char *colon = memchr(line, ':', ll);
			if (!colon || colon == line || colon + 1 >= eol || colon[1] != ' ' || memchr(line, '\n', ll))
				fail("a header line is 'Name: value'", line, ll);
			if (header_is(line, ll, "Content-Length")) {
				char *e;
				n_cl++;
				cl = strtol(colon + 2, &e, 10);
				if (e != eol || !isdigit((unsigned char)colon[2]))
					fail("Content-Length is a number", line, ll);
			} else if (header_is(line, ll, "Connection")) {
				n_conn++;
				if (ll == 17 && memcmp(colon + 2, "close", 5) == 0)
					closed = true;
				else if (!(ll == 22 && memcmp(colon + 2, "keep-alive", 10) == 0))
					fail("Connection is close or keep-alive", line, ll);
			} else if (header_is(line, ll, "Content-Type")) {
				json = ll >= 30 && memcmp(colon + 2, "application/json", 16) == 0;
			}
			line = eol + 2;
		}
		if (n_cl != 1 || n_conn != 1)
			fail("a response has one Content-Length and one Connection header", r, hlen);
		if ((size_t)cl > len - off - hlen)
			fail("a response body is whole", r, len - off);
		if (json) {
			json_t *j = json_loadb(r + hlen, (size_t)cl, JSON_DECODE_ANY, NULL);
			if (!j)
				fail("a JSON body is valid JSON in UTF-8", r + hlen, (size_t)cl);
			json_decref(j);
		}
		off += hlen + (size_t)cl;
		n++;
	}
	if (n > requests + 1)
		fail("at most one response per complete request, plus one refusal", b, len);
	if (requests > 0 && n == 0)
		fail("a complete request is answered", NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t off = 0, got = 0, cap = 65536;
	char buf[65536], *all = xmalloc(cap);
	bool closed = false;

	if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("fuzz_http: connect to the listener"); /* a harness problem, not a finding */
		abort();
	}
	/* Write what fits, serve, repeat; then half-close and read answers until the server closes. */
	for (int rounds = 0; rounds < 10000; rounds++) {
		if (off < size) {
			ssize_t w = send(c, data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				off += (size_t)w;
			if (off == size)
				shutdown(c, SHUT_WR);
		} else if (size == 0 && rounds == 0) {
			shutdown(c, SHUT_WR);
		}
		uv_run(rest_loop, UV_RUN_NOWAIT);
		struct pollfd pfd = { c, POLLIN, 0 };
		if (poll(&pfd, 1, 1) > 0) {
			ssize_t r = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				closed = r == 0;
				break;
			}
			if (r > 0) {
				if (got + (size_t)r > cap)
					all = xrealloc(all, cap = 2 * (got + (size_t)r));
				memcpy(all + got, buf, (size_t)r);
				got += (size_t)r;
			}
		}
	}
	/* A connection reset or a run cut short by the round limit proves nothing either way. */
	if (closed)
		check_responses(all, got, count_requests(data, size));
	free(all);
	/*
	 * Reset rather than close: a FIN would leave the client port in TIME_WAIT,
	 * and thousands of runs a second would exhaust the ephemeral ports.
	 */
	struct linger lg = { 1, 0 };
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c);
	/* Let the server notice the close and free the connection. */
	for (int i = 0; i < 20 && http_conn_count() > 0; i++)
		uv_run(rest_loop, UV_RUN_NOWAIT);
	return 0;
}
