/*
 * The route table of purged-rest and its handlers: each maps an HTTP request
 * to one control request and the reply back to the compatible API's status
 * codes and JSON. Lucid Chain's /purge routes answer {"message": ...};
 * /v1 routes answer Redis Enterprise style {"error_code", "description"}.
 * purged-rest only.
 */
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/backends.h"
#include "daemon/rest/rest.h"
#include "purged/messages.h"
#include "purged/log.h"
#include "purged/util.h"

#define MAX_SEGMENTS 6
#define HEALTH_DEADLINE_USEC 2000000

enum style { STYLE_V1, STYLE_LUCID, STYLE_PLAIN };

struct route;
typedef void (*route_fn)(struct http_request *req, char **seg);

struct route {
	int method;
	const char *pattern;   /* segments; "*" matches one */
	const char *name;      /* for metrics */
	enum style style;
	bool public;           /* no bearer token needed */
	route_fn fn;
	enum purge_op op;      /* h_task_op: the op relayed for /v1/tasks/ID[/action] */
};

/* What a request waiting on the supervisor keeps. */
struct route_state {
	const struct route *route;
	char target[PURGE_NAME_MAX + 1];
	char task_id[PURGE_TASK_ID_LEN + 1];
	bool watching;
	struct rest_client *lasting; /* counted against its client while it waits (plan, synchronous purge) */
};

/* ---------------------------------------------------------------- answers */

static void v1_error(struct http_request *req, int status, const char *code, const char *desc)
{
	http_respond(req, status, NULL, json_pack("{s:s, s:s}", "error_code", code, "description", desc));
}

static void lucid_message(struct http_request *req, int status, const char *headers, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void lucid_message(struct http_request *req, int status, const char *headers, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_respond(req, status, headers, json_pack("{s:s}", "message", msg));
}

static const char *extra_headers(int status)
{
	switch (status) {
	case 401: return "WWW-Authenticate: Bearer realm=\"purged\"\r\n";
	case 429: return "Retry-After: 5\r\n";
	default: return NULL;
	}
}

/* The supervisor said no (or went away, or missed the deadline): answer in the route's style. */
static void upstream_failure(struct http_request *req, const json_t *msg)
{
	struct route_state *st = req->route_state;
	struct msg_reply rp;
	bool said = msg_reply_unpack(msg, &rp);
	const char *code = said ? rp.error_code : "unavailable";
	const char *desc = said ? rp.error_message : "purged does not answer";
	enum purge_err e = purge_err_from_string(code);
	int status = said ? purge_err_http_status(e) : 503;

	if (code && strcmp(code, UPSTREAM_TIMEOUT_CODE) == 0) {
		status = 504;
		req->close = true; /* the slot is freed now, not after idle_timeout */
	}
	if (st->route->style != STYLE_LUCID) {
		http_respond(req, status, extra_headers(status),
			     json_pack("{s:s, s:s}", "error_code", code, "description", desc));
		return;
	}
	if (e == PURGE_ERR_NOT_FOUND)
		lucid_message(req, 400, NULL, "Error: Please select a valid target to export from");
	else if (status == 500 || status == 502)
		lucid_message(req, 500, NULL, "Error purging database on %s: %s", st->target, desc);
	else
		lucid_message(req, status, extra_headers(status), "Error: %s", desc);
}

/* ---------------------------------------------------------------- plumbing */

static struct route_state *state(struct http_request *req)
{
	return req->route_state;
}

/* A successful reply's result; NULL once the failure (or no reply) is answered in the route's style. */
static const json_t *reply_result(struct http_request *req, const json_t *msg)
{
	struct msg_reply rp;
	if (!msg_reply_unpack(msg, &rp) || !rp.ok) {
		upstream_failure(req, msg);
		return NULL;
	}
	return rp.result;
}

/* Relay a reply's result as the answer. */
static bool relay_reply(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	const json_t *result = reply_result(req, msg);
	if (!result)
		return false;
	http_respond(req, 200, NULL, json_incref((json_t *)result));
	return false;
}

/* ... and its fast path: a success already rendered as JSON text. */
static void relay_text(char *text, size_t len, void *ud)
{
	text[len++] = '\n'; /* over the NUL */
	http_respond_body(ud, 200, "application/json", text, len);
}

static void call_failed(struct http_request *req, int r, const struct proto_error *err)
{
	if (r == -EINVAL) {
		/* "key 'args.instances' must be ..." reads better without the protocol's prefix. */
		const char *m = err->message;
		const char *p = strstr(m, "'args.");
		char msg[300];
		if (p)
			snprintf(msg, sizeof(msg), "%.*s'%s", (int)(p - m), m, p + 6);
		else
			snprintf(msg, sizeof(msg), "%s", m);
		if (state(req)->route->style == STYLE_LUCID)
			lucid_message(req, 400, NULL, "Error: %s", msg);
		else
			v1_error(req, 400, "bad_request", msg);
	} else if (r < 0) {
		upstream_failure(req, NULL);
	}
}

static void call(struct http_request *req, enum purge_op op, json_t *args, upstream_fn fn)
{
	struct proto_error err;
	int r = upstream_call(op, args, req->has_auth ? req->auth : NULL, fn, req, &err);
	if (r < 0)
		call_failed(req, r, &err);
}

/* A route whose answer is the reply's result as it is. */
static void relay(struct http_request *req, enum purge_op op, json_t *args)
{
	struct proto_error err;
	int r = upstream_relay(op, args, req->has_auth ? req->auth : NULL, relay_text, relay_reply, req, &err);
	if (r < 0)
		call_failed(req, r, &err);
}

static bool parse_query_uint(const char *url, const char *key, long max, long *ret, bool *bad)
{
	const char *q = strchr(url, '?');
	size_t kl = strlen(key);
	while (q && *q) {
		q++;
		if (strncmp(q, key, kl) == 0 && q[kl] == '=') {
			char *end;
			long v = strtol(q + kl + 1, &end, 10);
			if (end == q + kl + 1 || (*end && *end != '&') || v < 0 || v > max) {
				*bad = true;
				return false;
			}
			*ret = v;
			return true;
		}
		q = strchr(q, '&');
	}
	return false;
}

/* ---------------------------------------------------------------- health */

/*
 * /healthz answers from the age of the supervisor's last answer: every reply
 * on the link refreshes it, and a ping goes out when the link has been quiet
 * for a second. So /healthz costs no round trip, and turns 503 within
 * HEALTH_DEADLINE_USEC of the supervisor's silence.
 */
static uv_timer_t health_timer;
static bool ping_out;

static bool on_ping(const json_t *msg, void *ud)
{
	(void)msg, (void)ud;
	ping_out = false;
	return false;
}

static void on_health_tick(uv_timer_t *t)
{
	struct proto_error err;
	(void)t;
	if (!ping_out && upstream_alive() && mono_usec() - upstream_last_answer() >= 1000000)
		ping_out = upstream_call(PURGE_OP_STATUS, NULL, NULL, on_ping, &health_timer, &err) == 0;
}

void routes_init(void)
{
	uv_timer_init(rest_loop, &health_timer);
	uv_timer_start(&health_timer, on_health_tick, 0, 250);
	uv_unref((uv_handle_t *)&health_timer);
}

void routes_stop(void)
{
	if (!uv_is_closing((uv_handle_t *)&health_timer))
		uv_close((uv_handle_t *)&health_timer, NULL);
}

static void h_healthz(struct http_request *req, char **seg)
{
	bool ok = upstream_alive() && mono_usec() - upstream_last_answer() <= HEALTH_DEADLINE_USEC;
	(void)seg;
	http_respond_text(req, ok ? 200 : 503, "application/json",
			  xstrdup(ok ? "{\"status\":\"ok\"}\n" : "{\"status\":\"unavailable\"}\n"));
}

/* ---------------------------------------------------------------- metrics */

static bool metrics_reply(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	const json_t *result = reply_result(req, msg);
	if (!result)
		return false;
	http_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
			  metrics_render(result));
	return false;
}

static void h_metrics(struct http_request *req, char **seg)
{
	(void)seg;
	call(req, PURGE_OP_METRICS, NULL, metrics_reply);
}

/* ---------------------------------------------------------------- Lucid Chain purge */

/* Lucid Chain names the system purged: a target named as its backend by the product's name (iTop,
 * Redmine), others as they are. */
static const char *display_name(const char *target)
{
	const struct backend_desc *b = backend_find(target);
	return b && b->lucid ? b->display : target;
}

static bool purge_watch(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	struct route_state *st = state(req);
	struct msg_event ev;

	if (!msg || msg_kind(msg) == PURGE_MSG_REPLY)
		/* The watch's first reply (events follow), or the failure, answered. */
		return reply_result(req, msg) != NULL;
	msg_event_unpack(msg, &ev);
	if (!ev.event || strcmp(ev.event, "end") != 0)
		return true;
	const json_t *task = ev.task;
	const char *status = json_string_value(json_object_get(task, "status"));
	const json_t *warnings = json_object_get(task, "warnings");
	if (status && strcmp(status, "finished") == 0 && json_array_size(warnings))
		/* Finished, but something could not be seen or counted: never claim more than was checked. */
		lucid_message(req, 200, NULL, "Database from %s purged, with warnings: %s", display_name(st->target),
			      json_string_value(json_array_get(warnings, 0)) ?: "see the task");
	else if (status && strcmp(status, "finished") == 0)
		lucid_message(req, 200, NULL, "Database from %s successfully purged", display_name(st->target));
	else
		lucid_message(req, 500, NULL, "Error purging database on %s: %s", display_name(st->target),
			      json_string_value(json_object_get(task, "error")) ?: "the task did not finish");
	return false;
}

static bool purge_reply(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	struct route_state *st = state(req);

	const json_t *result = reply_result(req, msg);
	if (!result)
		return false;
	const json_t *task = result;
	snprintf(st->task_id, sizeof(st->task_id), "%s", json_string_value(json_object_get(task, "id")));
	const char *status = json_string_value(json_object_get(task, "status"));
	if (status && strcmp(status, "awaiting_approval") == 0 && !req->prefer_async) {
		/* Nothing to wait for until a second person approves: say how, the task stays awaiting. */
		lucid_message(req, 409, NULL, "Error: the purge of %s needs a second person's approval: task %s awaits "
			      "it; approve it with 'purgectl approve %s' as another user, or POST /v1/tasks/%s/approve "
			      "with another token, then follow GET /v1/tasks/%s (send 'Prefer: respond-async' to get "
			      "202 and the task's Location instead)", display_name(st->target), st->task_id, st->task_id,
			      st->task_id, st->task_id);
		return false;
	}
	if (req->prefer_async) {
		char loc[96];
		snprintf(loc, sizeof(loc), "Location: /v1/tasks/%s\r\nPreference-Applied: respond-async\r\n",
			 st->task_id);
		http_respond(req, 202, loc, json_incref((json_t *)task));
		return false;
	}
	st->watching = true;
	call(req, PURGE_OP_TASKS_WATCH, json_pack("{s:s}", "id", st->task_id), purge_watch);
	return false;
}

/* Read Lucid Chain's optional body into the purge's endpoint and credentials. */
static int purge_body(struct http_request *req, json_t *args)
{
	static const struct {
		const char *key, *group;
		json_type type;
	} fields[] = {
		{ "server", "endpoint", JSON_STRING },
		{ "port", "endpoint", JSON_INTEGER },
		{ "api_path", "endpoint", JSON_STRING },
		{ "username", "credentials", JSON_STRING },
		{ "password", "credentials", JSON_STRING },
	};
	json_error_t jerr;
	json_t *body;

	if (req->body_len == 0)
		return 0;
	if (!req->json_body) {
		lucid_message(req, 415, NULL, "Error: the request body must be application/json");
		return -1;
	}
	body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!body || !json_is_object(body)) {
		lucid_message(req, 400, NULL, "Error: the request body is not a JSON object%s%s",
			      body ? "" : ": ", body ? "" : jerr.text);
		json_decref(body);
		return -1;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *v = json_object_get(body, fields[i].key);
		if (!v || json_is_null(v))
			continue;
		if (json_typeof(v) != fields[i].type ||
		    (fields[i].type == JSON_INTEGER && (json_integer_value(v) < 1 || json_integer_value(v) > 65535))) {
			lucid_message(req, 400, NULL, "Error: '%s' must be %s", fields[i].key,
				      fields[i].type == JSON_STRING ? "a string" : "a port number from 1 to 65535");
			json_decref(body);
			return -1;
		}
		json_t *group = json_object_get(args, fields[i].group);
		if (!group) {
			group = json_object();
			json_object_set_new(args, fields[i].group, group);
		}
		json_object_set(group, fields[i].key, v);
	}
	json_decref(body);
	return 0;
}

static void h_purge_none(struct http_request *req, char **seg)
{
	(void)seg;
	lucid_message(req, 404, NULL, "Error: No target selected");
}

/* A request that waits for a task's end counts against its client's REST_LASTING_PER_CLIENT. */
static bool begin_lasting(struct http_request *req)
{
	if (!client_lasting_begin(req->client))
		return false;
	state(req)->lasting = req->client;
	return true;
}

static void h_purge(struct http_request *req, char **seg)
{
	struct route_state *st = state(req);
	json_t *args;

	if (!proto_is_name(seg[1])) {
		lucid_message(req, 400, NULL, "Error: Please select a valid target to export from");
		return;
	}
	if (!req->prefer_async && !begin_lasting(req)) {
		lucid_message(req, 429, extra_headers(429), "Error: %d synchronous purges and plans from %s are "
			      "waiting already; wait for one to end, or send 'Prefer: respond-async'",
			      REST_LASTING_PER_CLIENT, client_addr(req->client));
		return;
	}
	snprintf(st->target, sizeof(st->target), "%s", seg[1]);
	args = json_pack("{s:s}", "target", seg[1]);
	if (purge_body(req, args) < 0) {
		json_decref(args);
		return;
	}
	call(req, PURGE_OP_PURGE, args, purge_reply);
}

/* ---------------------------------------------------------------- /v1 tasks and targets */

static bool valid_task_id(struct http_request *req, const char *id)
{
	if (proto_is_task_id(id))
		return true;
	v1_error(req, 400, "bad_request", "not a task id: expected a UUID as returned by the purge routes");
	return false;
}

static bool list_reply(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	const json_t *result = reply_result(req, msg);
	if (!result)
		return false;
	http_respond(req, 200, NULL, json_incref(json_object_get(result, "tasks")));
	return false;
}

static json_t *list_args(struct http_request *req, bool *bad)
{
	json_t *args = json_object();
	long v;
	if (parse_query_uint(req->url, "limit", 1000, &v, bad))
		json_object_set_new(args, "limit", json_integer(v ? v : 1));
	if (parse_query_uint(req->url, "offset", 1L << 30, &v, bad))
		json_object_set_new(args, "offset", json_integer(v));
	return args;
}

/* tasks.list with the query's limit/offset (and an operation filter); 400 for a bad query. */
static void list_tasks(struct http_request *req, const char *operation, upstream_fn fn)
{
	bool bad = false;
	json_t *args = list_args(req, &bad);
	if (bad) {
		json_decref(args);
		v1_error(req, 400, "bad_request", "limit must be from 1 to 1000 and offset a number >= 0");
		return;
	}
	if (operation)
		json_object_set_new(args, "operation", json_string(operation));
	call(req, PURGE_OP_TASKS_LIST, args, fn);
}

static void h_tasks(struct http_request *req, char **seg)
{
	(void)seg;
	list_tasks(req, NULL, list_reply);
}

/* /v1/tasks/ID and its actions: the route's op on that task, its reply relayed. */
static void h_task_op(struct http_request *req, char **seg)
{
	if (valid_task_id(req, seg[2]))
		relay(req, state(req)->route->op, json_pack("{s:s}", "id", seg[2]));
}

static void h_targets(struct http_request *req, char **seg)
{
	(void)seg;
	relay(req, PURGE_OP_TARGETS_LIST, NULL);
}

static void h_plan(struct http_request *req, char **seg)
{
	if (!proto_is_name(seg[2])) {
		v1_error(req, 404, "not_found", "no such target");
		return;
	}
	if (!begin_lasting(req)) {
		char why[200];
		snprintf(why, sizeof(why), "%d plans and synchronous purges from %s are waiting already; wait for one "
			 "to end", REST_LASTING_PER_CLIENT, client_addr(req->client));
		http_respond(req, 429, extra_headers(429),
			     json_pack("{s:s, s:s}", "error_code", "busy", "description", why));
		return;
	}
	relay(req, PURGE_OP_PLAN, json_pack("{s:s}", "target", seg[2]));
}

/* ---------------------------------------------------------------- Redis Enterprise CRDB */

/*
 * Redis Enterprise's CRDB task object, a view of a purged task: statuses
 * queued|started|finished|failed (cancelled shows as failed, with why), one
 * progress entry per instance, errors per instance (cluster_name = its id).
 */
static json_t *crdb_view(const json_t *task)
{
	const char *status = json_string_value(json_object_get(task, "status"));
	const json_t *counts = json_object_get(task, "counts");
	const json_t *progress = json_object_get(task, "progress");
	const json_t *ids = json_object_get(json_object_get(task, "params"), "instances");
	json_t *clusters = json_array(), *errors = json_array(), *e;
	const char *pending = NULL;
	size_t i;
	/* A restore (purgectl restore, POST .../restore) puts back what a purge archived. */
	bool restore = strcmp(json_string_value(json_object_get(task, "operation")) ?: "", "restore") == 0;

	/* Redis Enterprise knows no approval: such a task is "queued", and pending_reason says why. */
	if (status && strcmp(status, "awaiting_approval") == 0) {
		status = "queued";
		pending = "awaiting_approval";
	}

	json_array_foreach(json_object_get(task, "errors"), i, e) {
		const char *cluster = json_string_value(json_object_get(e, "cluster_name"));
		json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "cluster_name", cluster ? cluster : "",
							"description",
							json_string_value(json_object_get(e, "description")) ?: "",
							"error_code",
							json_string_value(json_object_get(e, "error_code")) ?: "failed"));
	}
	json_array_foreach(ids, i, e) {
		char name[32], key[48];
		snprintf(name, sizeof(name), "%lld", (long long)json_integer_value(e));
		snprintf(key, sizeof(key), "instance %s", name);
		const char *p = "queued";
		if (strcmp(status, "started") == 0)
			p = restore ? "restoring" : "purging";
		else if (json_object_get(counts, key))
			p = restore ? "restored" : "purged";
		else if (strcmp(status, "queued") != 0)
			p = "failed";
		json_array_append_new(clusters, json_pack("{s:s, s:s}", "name", name, "progress", p));
	}
	if (strcmp(status, "cancelled") == 0)
		status = "failed";
	char worker[96];
	snprintf(worker, sizeof(worker), "%s %lld/%lld",
		 json_string_value(json_object_get(progress, "step")) ?: "keys",
		 (long long)json_integer_value(json_object_get(progress, "done")),
		 (long long)json_integer_value(json_object_get(progress, "total")));
	json_t *view = json_pack("{s:O, s:O, s:s, s:s, s:o, s:{s:o, s:s}, s:O, s:O, s:s, s:O}",
			 "id", json_object_get(task, "id"),
			 "crdb_guid", json_object_get(task, "target"),
			 "operation", restore ? "restore" : "purge",
			 "status", status,
			 "errors", errors,
			 "progress", "clusters", clusters, "worker", worker,
			 "started", json_object_get(task, "started"),
			 "ended", json_object_get(task, "ended"),
			 "worker_name", "purged-executor",
			 restore ? "keys_restored" : "keys_deleted", counts);
	/* What the purge archived (archive = yes): {file, bytes, sha256, records}; a restore names its purge. */
	if (view && json_object_get(task, "archive"))
		json_object_set(view, "archive", json_object_get(task, "archive"));
	if (view && restore)
		json_object_set(view, "restored_from", json_object_get(json_object_get(task, "params"), "archive_task"));
	if (view && restore && json_object_get(task, "warnings"))
		json_object_set(view, "warnings", json_object_get(task, "warnings"));
	if (view && pending) {
		const json_t *ap = json_object_get(task, "approval");
		json_object_set_new(view, "pending_reason", json_string(pending));
		json_object_set(view, "approval", (json_t *)ap);
	}
	return view;
}

static bool crdb_task_reply(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	const json_t *result = reply_result(req, msg);
	if (!result)
		return false;
	const json_t *task = result;
	const char *op = json_string_value(json_object_get(task, "operation"));
	if (!op || (strcmp(op, purge_op_to_string(PURGE_OP_CRDB_PURGE)) != 0 && strcmp(op, "restore") != 0)) {
		v1_error(req, 404, "not_found", "no CRDB task with that id");
		return false;
	}
	http_respond(req, 200, NULL, crdb_view(task));
	return false;
}

/* A restore was accepted: 202, its CRDB task object and where to follow it. */
static bool crdb_restore_reply(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	char loc[96];
	const json_t *result = reply_result(req, msg);
	if (!result)
		return false;
	const json_t *task = result;
	snprintf(loc, sizeof(loc), "Location: /v1/crdb_tasks/%s\r\n",
		 json_string_value(json_object_get(task, "id")) ?: "");
	http_respond(req, 202, loc, crdb_view(task));
	return false;
}

static bool crdb_list_reply(const json_t *msg, void *ud)
{
	struct http_request *req = ud;
	json_t *arr, *t;
	size_t i;
	const json_t *result = reply_result(req, msg);
	if (!result)
		return false;
	arr = json_array();
	json_array_foreach(json_object_get(result, "tasks"), i, t)
		json_array_append_new(arr, crdb_view(t));
	http_respond(req, 200, NULL, arr);
	return false;
}

/* The JSON body of a request on /v1/crdbs/{guid}/...: NULL (JSON's null too) when it is not JSON;
 * answered already (404, 415) when that is false in *@answered. */
static json_t *crdb_body(struct http_request *req, const char *guid, bool *answered)
{
	json_error_t jerr;
	*answered = true;
	if (!proto_is_name(guid)) {
		v1_error(req, 404, "not_found", "no such Active-Active database");
		return NULL;
	}
	if (!req->json_body) {
		v1_error(req, 415, "unsupported_media_type", "the body must be application/json");
		return NULL;
	}
	*answered = false;
	return json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
}

static void h_crdb_purge(struct http_request *req, char **seg)
{
	bool answered;
	json_t *body = crdb_body(req, seg[2], &answered), *inst;

	if (answered)
		return;
	inst = json_object_get(body, "instances");
	if (!json_is_object(body) || !json_is_array(inst) || json_object_size(body) != 1) {
		json_decref(body);
		v1_error(req, 400, "bad_request", "expected a body {\"instances\": [instance ids]}");
		return;
	}
	/* The supervisor validates the ids (non-empty, unique, 1..65535) with the protocol's schema. */
	call(req, PURGE_OP_CRDB_PURGE, json_pack("{s:s, s:O}", "guid", seg[2], "instances", inst), crdb_task_reply);
	json_decref(body);
}

/*
 * POST /v1/crdbs/{guid}/restore {"task_id": ID of a crdb purge with an
 * archive, "replace": false}: put back the keys it archived, with their TTLs.
 */
static void h_crdb_restore(struct http_request *req, char **seg)
{
	bool answered;
	json_t *body = crdb_body(req, seg[2], &answered), *tid, *replace;

	if (answered)
		return;
	tid = json_object_get(body, "task_id");
	replace = json_object_get(body, "replace");
	if (!json_is_object(body) || !json_is_string(tid) || !proto_is_task_id(json_string_value(tid)) ||
	    (replace && !json_is_boolean(replace)) || json_object_size(body) != 1u + !!replace) {
		json_decref(body);
		v1_error(req, 400, "bad_request", "expected a body {\"task_id\": \"ID of the crdb purge whose archive to "
			 "restore\", \"replace\": false}");
		return;
	}
	call(req, PURGE_OP_CRDB_RESTORE, json_pack("{s:s, s:O, s:b}", "guid", seg[2], "task", tid, "replace",
						   json_is_true(replace)), crdb_restore_reply);
	json_decref(body);
}

static void h_crdb_tasks(struct http_request *req, char **seg)
{
	(void)seg;
	list_tasks(req, purge_op_to_string(PURGE_OP_CRDB_PURGE), crdb_list_reply);
}

static void h_crdb_task(struct http_request *req, char **seg)
{
	if (!proto_is_task_id(seg[2])) {
		v1_error(req, 404, "not_found", "no CRDB task with that id");
		return;
	}
	call(req, PURGE_OP_TASKS_GET, json_pack("{s:s}", "id", seg[2]), crdb_task_reply);
}

/* ---------------------------------------------------------------- table */

static const struct route routes[] = {
	{ HTTP_GET, "/healthz", "healthz", STYLE_PLAIN, true, h_healthz },
	{ HTTP_GET, "/metrics", "metrics", STYLE_V1, false, h_metrics },
	{ HTTP_POST, "/purge", "purge", STYLE_LUCID, false, h_purge_none },
	{ HTTP_POST, "/purge/", "purge", STYLE_LUCID, false, h_purge_none },
	{ HTTP_POST, "/purge/*", "purge", STYLE_LUCID, false, h_purge },
	{ HTTP_GET, "/v1/tasks", "tasks", STYLE_V1, false, h_tasks },
	{ HTTP_GET, "/v1/tasks/*", "task", STYLE_V1, false, h_task_op, PURGE_OP_TASKS_GET },
	{ HTTP_POST, "/v1/tasks/*/cancel", "task_cancel", STYLE_V1, false, h_task_op, PURGE_OP_TASKS_CANCEL },
	{ HTTP_POST, "/v1/tasks/*/approve", "task_approve", STYLE_V1, false, h_task_op, PURGE_OP_TASKS_APPROVE },
	{ HTTP_POST, "/v1/tasks/*/reject", "task_reject", STYLE_V1, false, h_task_op, PURGE_OP_TASKS_REJECT },
	{ HTTP_GET, "/v1/targets", "targets", STYLE_V1, false, h_targets },
	{ HTTP_PUT, "/v1/crdbs/*/purge", "crdb_purge", STYLE_V1, false, h_crdb_purge },
	{ HTTP_POST, "/v1/crdbs/*/restore", "crdb_restore", STYLE_V1, false, h_crdb_restore },
	{ HTTP_GET, "/v1/crdb_tasks", "crdb_tasks", STYLE_V1, false, h_crdb_tasks },
	{ HTTP_GET, "/v1/crdb_tasks/*", "crdb_task", STYLE_V1, false, h_crdb_task },
	{ HTTP_POST, "/v1/targets/*/plan", "plan", STYLE_V1, false, h_plan },
};

/* Split @path into segments (no query). "/purge/" has an empty last segment. Returns the count, -1 if too many. */
static int split(const char *url, char *buf, size_t buflen, char **seg)
{
	size_t n = strcspn(url, "?#");
	int count = 0;

	if (n >= buflen || url[0] != '/')
		return -1;
	memcpy(buf, url, n);
	buf[n] = '\0';
	for (char *p = buf + 1;; ) {
		if (count == MAX_SEGMENTS)
			return -1;
		seg[count++] = p;
		char *slash = strchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	return count;
}

static bool matches(const struct route *r, char **seg, int nseg)
{
	char pat[64], *pseg[MAX_SEGMENTS];
	int n = split(r->pattern, pat, sizeof(pat), pseg);
	if (n != nseg)
		return false;
	for (int i = 0; i < n; i++)
		if (strcmp(pseg[i], "*") != 0 ? strcmp(pseg[i], seg[i]) != 0 : seg[i][0] == '\0')
			return false;
	return true;
}

void route_dispatch(struct http_request *req)
{
	char buf[REST_MAX_HEADER + 1], *seg[MAX_SEGMENTS];
	char allow[128] = "";
	int nseg = req->url ? split(req->url, buf, sizeof(buf), seg) : -1;
	const struct route *found = NULL;

	for (size_t i = 0; nseg > 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!matches(&routes[i], seg, nseg))
			continue;
		if (routes[i].method == req->method) {
			found = &routes[i];
			break;
		}
		const char *m = llhttp_method_name((llhttp_method_t)routes[i].method);
		if (!strstr(allow, m))
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? ", " : "", m);
	}
	if (!found) {
		req->route = allow[0] ? "method_not_allowed" : "not_found";
		if (allow[0]) {
			char h[160];
			snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
			http_respond(req, 405, h, json_pack("{s:s, s:s}", "error_code", "method_not_allowed",
							     "description", "method not allowed on this route; see Allow"));
		} else {
			v1_error(req, 404, "not_found", "no such route");
		}
		return;
	}
	req->route = found->name;
	req->route_state = xcalloc(1, sizeof(struct route_state));
	state(req)->route = found;
	if (!found->public && !req->has_auth) {
		/* Counted per address and audited by the supervisor in aggregate (clients.c). */
		client_refused(req->client, req->bad_auth ? REFUSAL_MALFORMED_TOKEN : REFUSAL_MISSING_TOKEN);
		const char *why = req->bad_auth ? "invalid bearer token: a token is letters, digits and -._~+/= only"
						: "missing bearer token: send 'Authorization: Bearer TOKEN'";
		if (found->style == STYLE_LUCID)
			lucid_message(req, 401, extra_headers(401), "Error: %s bearer token",
				      req->bad_auth ? "invalid" : "missing");
		else
			http_respond(req, 401, extra_headers(401),
				     json_pack("{s:s, s:s}", "error_code", "unauthorized", "description", why));
		return;
	}
	found->fn(req, seg);
}

void route_release(struct http_request *req)
{
	struct route_state *st = req->route_state;
	if (!st)
		return;
	client_lasting_end(st->lasting);
	free(st);
	req->route_state = NULL;
}
