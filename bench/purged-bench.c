/*
 * purged-bench: measurements that need a C client (bench/run.sh drives it).
 *
 *   purged-bench rtt SOCKET N [TASK]     status (or tasks.get TASK) round trips on one connection
 *   purged-bench start SOCKET TARGET N   purge accepted -> first progress event
 *   purged-bench throughput SOCKET PREFIX N   N purges of PREFIX1..PREFIXN, tasks/s
 *   purged-bench spawn PROGRAM N         bare fork+exec+wait of PROGRAM
 *   purged-bench echo SOCKET DAEMON_SOCKET      references for rtt: answer every frame at once
 *   purged-bench echo-uv SOCKET DAEMON_SOCKET   with the status reply DAEMON_SOCKET gave
 *                                               (blocking loop; libuv loop)
 *
 * Each prints "name: p50 X us, p99 Y us, n N" or "name: X per second".
 * Not a test: it measures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "purged/proto.h"
#include "purged/util.h"

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "purged-bench: cannot connect to %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static json_t *recv_msg(int fd, struct proto_reader *rd)
{
	enum purge_msg_type t;
	struct proto_error err;
	json_t *m = NULL;
	if (frame_recv(fd, rd, PURGE_MSG_MASK(PURGE_MSG_REPLY) | PURGE_MSG_MASK(PURGE_MSG_EVENT), &t, &m, &err) < 0) {
		fprintf(stderr, "purged-bench: bad or no reply\n");
		exit(1);
	}
	return m;
}

static void send_req(int fd, uint64_t id, enum purge_op op, json_t *args)
{
	json_t *r = proto_request_new(id, op, args);
	if (frame_send(fd, r) < 0) {
		fprintf(stderr, "purged-bench: send failed\n");
		exit(1);
	}
	json_decref(r);
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *name, int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp64);
	printf("%s: p50 %lld us, p99 %lld us, n %d\n", name, (long long)v[n / 2], (long long)v[n * 99 / 100], n);
}

/* status round trips, or tasks.get of @task_id when given. */
static void bench_rtt(const char *sock, int n, const char *task_id)
{
	int fd = connect_to(sock);
	struct proto_reader rd;
	int64_t *v = xcalloc((size_t)n, sizeof(*v));
	proto_reader_init(&rd);
	for (int i = 0; i < n; i++) {
		int64_t t0 = mono_usec();
		if (task_id)
			send_req(fd, (uint64_t)i + 1, PURGE_OP_TASKS_GET, json_pack("{s:s}", "id", task_id));
		else
			send_req(fd, (uint64_t)i + 1, PURGE_OP_STATUS, NULL);
		json_decref(recv_msg(fd, &rd));
		v[i] = mono_usec() - t0;
	}
	report(task_id ? "control round trip (tasks.get)" : "control round trip (status)", v, n);
	free(v);
	close(fd);
}

/*
 * Wait for the watch on @id to deliver @want ("progress" or "end"); an "end"
 * also stops the wait, and sets *ended.
 */
static int64_t follow(int fd, struct proto_reader *rd, uint64_t id, const char *want, bool *ended)
{
	for (;;) {
		json_t *m = recv_msg(fd, rd);
		const char *ev = json_string_value(json_object_get(m, "event"));
		bool mine = (uint64_t)json_integer_value(json_object_get(m, "id")) == id && ev;
		bool end = mine && !strcmp(ev, "end");
		bool hit = mine && (end || !strcmp(ev, want));
		json_decref(m);
		if (end)
			*ended = true;
		if (hit)
			return mono_usec();
	}
}

static void bench_start(const char *sock, const char *target, int n)
{
	int fd = connect_to(sock);
	struct proto_reader rd;
	int64_t *v = xcalloc((size_t)n, sizeof(*v));
	uint64_t id = 1;
	proto_reader_init(&rd);
	for (int i = 0; i < n; i++) {
		send_req(fd, id, PURGE_OP_PURGE, json_pack("{s:s}", "target", target));
		json_t *r = recv_msg(fd, &rd);
		int64_t accepted = mono_usec();
		char tid[PURGE_TASK_ID_LEN + 1];
		if (!json_is_true(json_object_get(r, "ok"))) {
			fprintf(stderr, "purged-bench: purge refused: %s\n",
				json_string_value(json_object_get(json_object_get(r, "error"), "message")));
			exit(1);
		}
		snprintf(tid, sizeof(tid), "%s", json_string_value(json_object_get(json_object_get(r, "result"), "id")));
		json_decref(r);
		send_req(fd, ++id, PURGE_OP_TASKS_WATCH, json_pack("{s:s}", "id", tid));
		bool ended = false;
		v[i] = follow(fd, &rd, id, "progress", &ended) - accepted;
		if (!ended) /* the next purge of this target needs this one over */
			follow(fd, &rd, id, "end", &ended);
		id++;
	}
	report("executor start (purge accepted -> first progress)", v, n);
	free(v);
	close(fd);
}

static void bench_throughput(const char *sock, const char *prefix, int n)
{
	int fd = connect_to(sock);
	struct proto_reader rd;
	int64_t t0 = mono_usec();
	uint64_t id = 1;
	proto_reader_init(&rd);
	for (int i = 1; i <= n; i++) {
		char target[64];
		snprintf(target, sizeof(target), "%s%d", prefix, i);
		send_req(fd, id++, PURGE_OP_PURGE, json_pack("{s:s}", "target", target));
	}
	for (int i = 1; i <= n; i++) {
		json_t *r = recv_msg(fd, &rd);
		if (!json_is_true(json_object_get(r, "ok"))) {
			fprintf(stderr, "purged-bench: purge %d refused\n", i);
			exit(1);
		}
		json_decref(r);
	}
	/* A connection may watch 16 tasks at most: poll until nothing runs or waits. */
	for (;;) {
		send_req(fd, id++, PURGE_OP_STATUS, NULL);
		json_t *st = recv_msg(fd, &rd), *res = json_object_get(st, "result");
		bool idle = json_integer_value(json_object_get(res, "running")) == 0 &&
			    json_integer_value(json_object_get(res, "queued")) == 0;
		json_decref(st);
		if (idle)
			break;
		struct timespec ts = { 0, 1000000L };
		nanosleep(&ts, NULL);
	}
	double secs = (double)(mono_usec() - t0) / 1e6;
	printf("task throughput: %.0f tasks per second (%d tasks in %.2f s)\n", n / secs, n, secs);
	close(fd);
}

static void bench_spawn(const char *program, int n)
{
	int64_t *v = xcalloc((size_t)n, sizeof(*v));
	for (int i = 0; i < n; i++) {
		int64_t t0 = mono_usec();
		pid_t p = fork();
		if (p == 0) {
			execl(program, program, (char *)NULL);
			_exit(127);
		}
		waitpid(p, NULL, 0);
		v[i] = mono_usec() - t0;
	}
	report("bare fork+exec+exit of a trivial static program", v, n);
	free(v);
}

/* ---------------------------------------------------------------- references for rtt */

/*
 * The floor under the control round trip: servers that answer each request
 * frame with the very reply purged gave to a status request, doing nothing
 * else. What `rtt` measures against them is the kernel's and the client's
 * share (the client decodes the same bytes). Two of them: a blocking
 * read/write loop, and an event loop like purged's (libuv, epoll).
 */
static uint8_t *echo_reply;
static size_t echo_reply_len;
static struct proto_reader echo_rd;

static void capture_status_reply(const char *daemon_sock)
{
	int dfd = connect_to(daemon_sock);
	struct proto_reader rd;
	proto_reader_init(&rd);
	send_req(dfd, 1, PURGE_OP_STATUS, NULL);
	json_t *r = recv_msg(dfd, &rd);
	close(dfd);
	proto_reader_free(&rd);
	if (proto_encode(r, &echo_reply, &echo_reply_len) < 0) {
		fprintf(stderr, "purged-bench: cannot re-encode the status reply\n");
		exit(1);
	}
	json_decref(r);
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0) {
		fprintf(stderr, "purged-bench: cannot serve on %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return lfd;
}

/* Feed what was read; the number of whole request frames it completed. */
static int frames_in(const void *buf, size_t n)
{
	const uint8_t *p;
	size_t len;
	int k = 0;
	proto_reader_feed(&echo_rd, buf, n);
	while (proto_reader_next(&echo_rd, &p, &len) > 0)
		k++;
	return k;
}

static void bench_echo(const char *path, const char *daemon_sock)
{
	int lfd;
	capture_status_reply(daemon_sock);
	lfd = listen_on(path);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		char buf[65536];
		ssize_t got;
		if (fd < 0)
			continue;
		proto_reader_init(&echo_rd);
		while ((got = read(fd, buf, sizeof(buf))) > 0)
			for (int k = frames_in(buf, (size_t)got); k > 0; k--)
				if (write(fd, echo_reply, echo_reply_len) != (ssize_t)echo_reply_len)
					break;
		proto_reader_free(&echo_rd);
		close(fd);
	}
}

static char uv_in[65536];

static void uv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h, (void)suggested;
	*buf = uv_buf_init(uv_in, sizeof(uv_in));
}

static void uv_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	if (nread < 0) {
		uv_close((uv_handle_t *)s, (uv_close_cb)free);
		return;
	}
	for (int k = frames_in(buf->base, (size_t)nread); k > 0; k--) {
		uv_buf_t b = uv_buf_init((char *)echo_reply, (unsigned)echo_reply_len);
		uv_try_write(s, &b, 1); /* a few hundred bytes: a unix socket takes them at once */
	}
}

static void uv_on_conn(uv_stream_t *server, int status)
{
	uv_pipe_t *c = xcalloc(1, sizeof(*c));
	(void)status;
	uv_pipe_init(server->loop, c, 0);
	if (uv_accept(server, (uv_stream_t *)c) < 0) {
		uv_close((uv_handle_t *)c, (uv_close_cb)free);
		return;
	}
	proto_reader_free(&echo_rd);
	proto_reader_init(&echo_rd);
	uv_read_start((uv_stream_t *)c, uv_alloc, uv_on_read);
}

static void bench_echo_uv(const char *path, const char *daemon_sock)
{
	uv_pipe_t server;
	capture_status_reply(daemon_sock);
	proto_reader_init(&echo_rd);
	uv_pipe_init(uv_default_loop(), &server, 0);
	uv_pipe_open(&server, listen_on(path));
	uv_listen((uv_stream_t *)&server, 4, uv_on_conn);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "rtt"))
		bench_rtt(argv[2], atoi(argv[3]), argc >= 5 ? argv[4] : NULL);
	else if (argc >= 5 && !strcmp(argv[1], "start"))
		bench_start(argv[2], argv[3], atoi(argv[4]));
	else if (argc >= 5 && !strcmp(argv[1], "throughput"))
		bench_throughput(argv[2], argv[3], atoi(argv[4]));
	else if (argc >= 4 && !strcmp(argv[1], "spawn"))
		bench_spawn(argv[2], atoi(argv[3]));
	else if (argc >= 4 && !strcmp(argv[1], "echo"))
		bench_echo(argv[2], argv[3]);
	else if (argc >= 4 && !strcmp(argv[1], "echo-uv"))
		bench_echo_uv(argv[2], argv[3]);
	else {
		fprintf(stderr, "usage: purged-bench rtt SOCKET N | start SOCKET TARGET N | throughput SOCKET PREFIX N "
				"| spawn PROGRAM N | echo SOCKET DAEMON_SOCKET | echo-uv SOCKET DAEMON_SOCKET\n");
		return 2;
	}
	return 0;
}
