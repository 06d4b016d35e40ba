/*
 * purged-rest: the optional HTTP/1.1 listener. Runs unprivileged and
 * sandboxed, holds no credentials and no token hashes: it parses HTTP
 * (http.c), maps routes to control requests (routes.c) sent to the
 * supervisor over fd 3 (upstream.c), and counts what it served (metrics.c).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <jansson.h>
#include "purged/proto.h"

#define REST_MAX_CONNS      1024
#define REST_MAX_HEADER     8192        /* request line + header block */
#define REST_MAX_BODY       (64 * 1024)
#define REST_LASTING_PER_CLIENT 16      /* plans and synchronous purges one client address may have waiting */
#define REST_REFUSAL_REPORT_MS  5000    /* how often refusal counts go to the supervisor */
/*
 * purged-rest's exit status when its link to the supervisor is gone: an
 * orderly exit (as 0 after SIGTERM), which purged answers with a prompt
 * respawn, not the growing backoff of a crash.
 */
#define REST_EXIT_LINK_LOST     75

struct http_conn;
struct rest_client;
struct sockaddr_storage;

struct http_request {
	int method;                 /* llhttp_method_t */
	char *url;                  /* as received: path and query */
	char auth[PURGE_AUTH_MAX + 1];
	bool has_auth;              /* an Authorization: Bearer header with a token */
	bool bad_auth;              /* ... with something that is not a token (RFC 6750 b64token) */
	bool prefer_async;          /* Prefer: respond-async */
	bool json_body;             /* Content-Type: application/json (or none) */
	char *body;
	size_t body_len;
	int64_t started;            /* mono usec at the end of the request */
	const char *route;          /* route name for metrics */
	bool close;                 /* close the connection after the answer */
	struct http_conn *conn;     /* NULL once the client went away */
	struct rest_client *client; /* its address; valid while conn is (take a reference to keep it) */
	void *route_state;          /* owned by routes.c, freed by route_release */
};

extern uv_loop_t *rest_loop;
extern unsigned rest_idle_timeout_ms;
extern unsigned rest_upstream_timeout_ms; /* deadline of a call to the supervisor */

/* ---------------------------------------------------------------- http.c */
/* Start serving on the listening socket @fd. */
int http_listen(int fd);
/* Stop accepting and close every connection (shutdown). */
void http_close_all(void);
/*
 * Answer @req with @status, optional extra header lines ("Name: value\r\n"...),
 * and a body (stolen; JSON, or text when @text is set). Releases the request.
 * A request whose client has gone is simply released.
 */
void http_respond(struct http_request *req, int status, const char *headers, json_t *body);
void http_respond_text(struct http_request *req, int status, const char *ctype, char *text /* stolen */);
void http_respond_body(struct http_request *req, int status, const char *ctype, char *body /* stolen */, size_t len);
unsigned http_conn_count(void);

/* ---------------------------------------------------------------- routes.c */
/* Route a complete request: answers now or later through http_respond. */
void route_dispatch(struct http_request *req);
/* Free what a route keeps for a request (called when the request is released). */
void route_release(struct http_request *req);
/* Start the supervisor liveness pings behind /healthz. */
void routes_init(void);
/* Stop them (shutdown). */
void routes_stop(void);

/* ---------------------------------------------------------------- upstream.c */
/*
 * Called with each reply or event for a request, then with NULL when the
 * supervisor link is gone. Return true to keep receiving (tasks.watch events).
 */
typedef bool (*upstream_fn)(const json_t *msg, void *userdata);
/* The error code of the reply a call gets when the supervisor misses its deadline (HTTP 504). */
#define UPSTREAM_TIMEOUT_CODE "timeout"
int upstream_open(int fd);
/* Called once the link is lost (after the pending calls were failed): the process should end. */
void upstream_on_lost(void (*fn)(void));
/* Fail the pending calls and close the link (shutdown). */
void upstream_close(void);
/*
 * Send @op with @args (stolen) and @auth (may be NULL). Returns 0; -EINVAL with
 * @reterr filled when @args do not fit the op's schema; another negative errno
 * when the link is down.
 */
int upstream_call(enum purge_op op, json_t *args, const char *auth, upstream_fn fn, void *userdata,
		  struct proto_error *reterr);
/* A relayed success: the reply's result as JSON text (@text stolen, NUL-terminated). */
typedef void (*upstream_text_fn)(char *text, size_t len, void *userdata);
/*
 * As upstream_call, for an answer relayed as it is: a success goes to
 * @text_fn, rendered straight from msgpack; failures (and the link's loss) to @fn.
 */
int upstream_relay(enum purge_op op, json_t *args, const char *auth, upstream_text_fn text_fn, upstream_fn fn,
		   void *userdata, struct proto_error *reterr);
/* Forget every call made with @userdata (its request is being released). */
void upstream_forget(void *userdata);
bool upstream_alive(void);
/* Monotonic usec of the supervisor's last message (start-up time before any). */
int64_t upstream_last_answer(void);

/* ---------------------------------------------------------------- clients.c */
enum refusal { REFUSAL_MISSING_TOKEN, REFUSAL_MALFORMED_TOKEN, _REFUSAL_MAX };
/* The client of a connection's peer address, with a reference (client_put it). */
struct rest_client *client_get(const struct sockaddr_storage *ss);
struct rest_client *client_ref(struct rest_client *c);
void client_put(struct rest_client *c);
const char *client_addr(const struct rest_client *c);
/* A plan or synchronous purge begins (false: the client has REST_LASTING_PER_CLIENT waiting), or ends. */
bool client_lasting_begin(struct rest_client *c);
void client_lasting_end(struct rest_client *c);
/* Count a request refused here; reported to the supervisor every REST_REFUSAL_REPORT_MS. */
void client_refused(struct rest_client *c, enum refusal why);
void clients_init(void);
void clients_stop(void);

/* ---------------------------------------------------------------- metrics.c */
void metrics_observe(const char *route, int status, int64_t usec);
/* Prometheus text exposition: ours, plus the supervisor's @tasks reply (may be NULL). */
char *metrics_render(const json_t *supervisor);
