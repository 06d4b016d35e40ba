/*
 * libFuzzer target: raw bytes from an HTTP client through purged-rest's real
 * code (llhttp, limits, pipelining, router, JSON bodies, argument checks)
 * over a loopback socket. A fake supervisor on the control link answers
 * every request, so routes run to their answers.
 */
#include <errno.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t off = 0;
	char buf[65536];

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
			if (r == 0 || (r < 0 && errno != EAGAIN))
				break;
		}
	}
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
