/*
 * Unit tests for purged-rest's route table (daemon/rest/routes.c), through
 * its public doors: real HTTP requests on a loopback socket served by
 * http.c, and the supervisor's side of the control link played here, frame
 * by frame. Each row: request -> the op the supervisor is asked (or none)
 * -> its reply -> the HTTP status and what the answer must say.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "daemon/rest/rest.h"
#include "purged/proto.h"
#include "purged/util.h"
#include "unit.h"

#define TASK "01a22bfe-fd77-7035-b199-e8a722afe491"
#define GUID "1d7741cc-1110-4e2f-bc6c-935292783d24"
#define AUTH "Authorization: Bearer tok-1\r\n"

static int sup_fd = -1; /* the supervisor's end of the link */
static struct proto_reader sup_rd;
static int port;

static void *run_loop(void *arg)
{
	(void)arg;
	uv_run(rest_loop, UV_RUN_DEFAULT);
	return NULL;
}

/* purged-rest's pieces as its main() wires them, on a loop of a thread of their own. */
static void setup(void)
{
	int sv[2], one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	pthread_t th;

	rest_loop = uv_default_loop();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(upstream_open(sv[0]), 0);
	sup_fd = sv[1];
	proto_reader_init(&sup_rd);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	ck_assert_int_eq(http_listen(fd), 0);
	clients_init();
	ck_assert_int_eq(pthread_create(&th, NULL, run_loop, NULL), 0);
}

struct row {
	const char *request;   /* without the blank line that ends the head */
	const char *body;
	const char *op;        /* what the supervisor must be asked; NULL: nothing */
	const char *arg, *value; /* ... with this string argument */
	enum purge_err err;    /* its reply: this error, or ok with @result when 0 */
	const char *result;    /* JSON */
	int status;
	const char *says;      /* in the answer's head or body */
};

static const struct row rows[] = {
	/* Answered by purged-rest alone. */
	{ "GET /healthz HTTP/1.1\r\n", NULL, NULL, NULL, NULL, 0, NULL, 200, "\"status\":\"ok\"" },
	{ "GET /v1/targets HTTP/1.1\r\n", NULL, NULL, NULL, NULL, 0, NULL, 401, "WWW-Authenticate: Bearer" },
	{ "POST /purge/redmine HTTP/1.1\r\n", NULL, NULL, NULL, NULL, 0, NULL, 401, "Error: missing bearer token" },
	{ "DELETE /v1/targets HTTP/1.1\r\n" AUTH, NULL, NULL, NULL, NULL, 0, NULL, 405, "Allow: GET" },
	{ "GET /v1/nothing HTTP/1.1\r\n" AUTH, NULL, NULL, NULL, NULL, 0, NULL, 404, "no such route" },
	{ "GET /v1/tasks/42 HTTP/1.1\r\n" AUTH, NULL, NULL, NULL, NULL, 0, NULL, 400, "not a task id" },
	{ "PUT /v1/crdbs/" GUID "/purge HTTP/1.1\r\n" AUTH, "{\"nodes\": [1]}", NULL, NULL, NULL, 0, NULL, 400,
	  "expected a body {\\\"instances\\\"" },
	/* One op each, and the supervisor's answer as the route's status. */
	{ "GET /v1/targets HTTP/1.1\r\n" AUTH, NULL, "targets.list", NULL, NULL, 0, "{\"targets\": []}", 200,
	  "{\"targets\":[]}" },
	{ "POST /v1/targets/demo/plan HTTP/1.1\r\n" AUTH, NULL, "plan", "target", "demo", PURGE_ERR_NOT_FOUND, NULL,
	  404, "\"error_code\":\"not_found\"" },
	{ "GET /v1/tasks HTTP/1.1\r\n" AUTH, NULL, "tasks.list", NULL, NULL, PURGE_ERR_UNAVAILABLE, NULL, 503,
	  "\"error_code\":\"unavailable\"" },
	{ "GET /v1/tasks/" TASK " HTTP/1.1\r\n" AUTH, NULL, "tasks.get", "id", TASK, 0, "{\"id\": \"" TASK "\"}", 200,
	  TASK },
	{ "POST /v1/tasks/" TASK "/cancel HTTP/1.1\r\n" AUTH, NULL, "tasks.cancel", "id", TASK, PURGE_ERR_CONFLICT,
	  NULL, 409, "\"error_code\":\"conflict\"" },
	{ "POST /v1/tasks/" TASK "/approve HTTP/1.1\r\n" AUTH, NULL, "tasks.approve", "id", TASK,
	  PURGE_ERR_FORBIDDEN, NULL, 403, "\"error_code\":\"forbidden\"" },
	{ "POST /v1/tasks/" TASK "/reject HTTP/1.1\r\n" AUTH, NULL, "tasks.reject", "id", TASK, PURGE_ERR_NOT_FOUND,
	  NULL, 404, "\"error_code\":\"not_found\"" },
	{ "PUT /v1/crdbs/" GUID "/purge HTTP/1.1\r\n" AUTH, "{\"instances\": [1, 2]}", "crdb.purge", "guid", GUID,
	  PURGE_ERR_BUSY, NULL, 429, "Retry-After: 5" },
	{ "GET /v1/crdb_tasks/" TASK " HTTP/1.1\r\n" AUTH, NULL, "tasks.get", "id", TASK, 0,
	  "{\"id\": \"" TASK "\", \"operation\": \"plan\"}", 404, "no CRDB task with that id" },
	{ "GET /metrics HTTP/1.1\r\n" AUTH, NULL, "metrics", NULL, NULL, PURGE_ERR_INTERNAL, NULL, 500,
	  "\"error_code\":\"internal\"" },
	/* Lucid Chain's route: its own messages. */
	{ "POST /purge/nope HTTP/1.1\r\n" AUTH, NULL, "purge", "target", "nope", PURGE_ERR_NOT_FOUND, NULL, 400,
	  "Error: Please select a valid target to export from" },
	{ "POST /purge/redmine HTTP/1.1\r\nPrefer: respond-async\r\n" AUTH, NULL, "purge", "target", "redmine", 0,
	  "{\"id\": \"" TASK "\", \"status\": \"queued\"}", 202, "Location: /v1/tasks/" TASK },
	{ "POST /purge/redmine HTTP/1.1\r\n" AUTH, NULL, "purge", "target", "redmine", PURGE_ERR_BACKEND, NULL, 500,
	  "Error purging database on redmine" },
};

/* Play the supervisor for one request: it must be @r->op, with @r's argument and the client's token. */
static void supervise(const struct row *r)
{
	enum purge_msg_type type;
	struct proto_error err;
	json_t *msg = NULL, *reply;

	ck_assert_int_eq(frame_recv(sup_fd, &sup_rd, PURGE_MSG_MASK(PURGE_MSG_REQUEST), &type, &msg, &err), 0);
	ck_assert_str_eq(json_string_value(json_object_get(msg, "op")), r->op);
	ck_assert_str_eq(json_string_value(json_object_get(msg, "auth")), "tok-1");
	if (r->arg)
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(msg, "args"), r->arg)), r->value);
	uint64_t id = (uint64_t)json_integer_value(json_object_get(msg, "id"));
	if (r->err)
		reply = proto_reply_error(id, r->err, "the supervisor says %s", purge_err_to_string(r->err));
	else
		reply = proto_reply_ok(id, json_loads(r->result, 0, NULL));
	ck_assert_int_eq(frame_send(sup_fd, reply), 0);
	json_decref(reply);
	json_decref(msg);
}

START_TEST(test_route_table)
{
	const struct row *r = &rows[_i];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons((uint16_t)port) };
	char head[2048], answer[8192];
	size_t got = 0;
	ssize_t n;

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(head, sizeof(head), "%sHost: 127.0.0.1\r\nConnection: close\r\n%s%zu\r\n\r\n%s", r->request,
		 r->body ? "Content-Type: application/json\r\nContent-Length: " : "Content-Length: ",
		 r->body ? strlen(r->body) : 0, r->body ? r->body : "");
	ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
	if (r->op)
		supervise(r);
	while ((n = read(fd, answer + got, sizeof(answer) - 1 - got)) > 0)
		got += (size_t)n;
	answer[got] = '\0';
	close(fd);
	int status = 0;
	ck_assert_msg(sscanf(answer, "HTTP/1.1 %d", &status) == 1, "row %d: no status line in '%s'", _i, answer);
	ck_assert_msg(status == r->status, "row %d (%.40s): %d, expected %d:\n%s", _i, r->request, status, r->status,
		      answer);
	ck_assert_msg(strstr(answer, r->says), "row %d: no '%s' in:\n%s", _i, r->says, answer);
}
END_TEST

/* A request the route does not pass on leaves nothing on the link: checked once, after a refused one. */
START_TEST(test_nothing_asked)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons((uint16_t)port) };
	const char *req = "GET /v1/targets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	char answer[2048];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (read(fd, answer, sizeof(answer)) > 0)
		;
	close(fd);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };
	setsockopt(sup_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char b;
	ck_assert_int_eq(recv(sup_fd, &b, 1, 0), -1); /* nothing came: a 401 costs the supervisor nothing */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("routes");
	TCase *tc = tcase_create("table");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_route_table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_nothing_asked);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
