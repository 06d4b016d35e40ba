/*
 * redmine: delete a Redmine's projects (with their issues, versions, wiki,
 * time entries, files), and with scope users/groups its users (but admins
 * and the API key's own user) and groups, through its REST API.
 *
 * Only top-level projects need a DELETE: children go with their parent and
 * are counted with it. Listing is paginated (limit 100); DELETEs run
 * `parallel` at a time over reused connections. A DELETE answered 404 is
 * "already gone". Redmine 5.1+ deletes projects in the background (204 at
 * once): remaining projects are polled until they answer 404.
 * Executor only: runs inside the sandbox, TCP to Redmine's port only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "daemon/executor/backend.h"
#include "daemon/executor/http.h"
#include "daemon/executor/parse.h"
#include "purged/util.h"

#define PAGE 100
#define ASYNC_WAIT_SEC 120

struct redmine {
	struct backend_ctx *ctx;
	struct http_client *http;
	json_int_t self_id;
	struct redmine_page projects, users, groups;
	long issues;
	unsigned parallel;
	/* deletion progress */
	const char *step;
	uint64_t done, total;
	const struct redmine_page *deleting;
	char *const *paths;
	size_t failed;
	char first_error[400];
};

static int fail_status(struct redmine *rm, const char *step, const struct http_response *r)
{
	const char *where = http_client_where(rm->http);
	if (r->status == 0)
		return backend_fail(rm->ctx, "redmine '%s': %s: cannot reach %s: %s", rm->ctx->target, step, where,
				    r->error);
	if (r->status == 401)
		return backend_fail(rm->ctx, "redmine '%s': %s: Redmine refused the API key (401): check api_key_file",
				    rm->ctx->target, step);
	if (r->status == 403)
		return backend_fail(rm->ctx, "redmine '%s': %s: forbidden (403): is the REST API enabled "
				    "(Administration > Settings > API) and is the key an administrator's?",
				    rm->ctx->target, step);
	if (r->status == 200)
		return backend_fail(rm->ctx, "redmine '%s': %s: the answer from %s is not the JSON expected",
				    rm->ctx->target, step, where);
	return backend_fail(rm->ctx, "redmine '%s': %s: HTTP %ld from %s: %.120s", rm->ctx->target, step, r->status,
			    where, r->body ? r->body : "");
}

/* GET @path; 0 with @r holding a 200 answer (clear it), or -1 after failing the task. */
static int get_ok(struct redmine *rm, const char *step, const char *path, struct http_response *r)
{
	if (http_request(rm->http, "GET", path, NULL, NULL, 0, r) == 0 && r->status == 200)
		return 0;
	fail_status(rm, step, r);
	http_response_clear(r);
	return -1;
}

/* Every page of a list, appended to @out. */
static int get_all(struct redmine *rm, const char *step, const char *path, const char *key, struct redmine_page *out)
{
	long offset = 0;

	do {
		struct http_response r;
		char *p = xasprintf("%s%slimit=%d&offset=%ld", path, strchr(path, '?') ? "&" : "?", PAGE, offset);
		int e = get_ok(rm, step, p, &r);
		free(p);
		if (e < 0)
			return -1;
		e = redmine_parse_page(r.body, r.len, key, out);
		if (e < 0)
			fail_status(rm, step, &r);
		http_response_clear(&r);
		if (e < 0)
			return -1;
		offset += (long)out->last_count;
		if (out->last_count == 0)
			break;
	} while (offset < out->total);
	return 0;
}

/* Drop the entries @keep refuses. */
static void filter(struct redmine_page *pg, bool (*keep)(const struct redmine *, const struct redmine_item *),
		   const struct redmine *rm)
{
	size_t w = 0;
	for (size_t i = 0; i < pg->n; i++) {
		if (keep(rm, &pg->v[i]))
			pg->v[w++] = pg->v[i];
		else
			free(pg->v[i].name);
	}
	pg->n = w;
}

static bool keep_user(const struct redmine *rm, const struct redmine_item *u)
{
	/* Never the administrators, and never the key's own user. */
	return !u->admin && u->id != rm->self_id;
}

static bool keep_group(const struct redmine *rm, const struct redmine_item *g)
{
	(void)rm;
	/* Builtin groups (Anonymous, Non member) cannot be deleted: a DELETE is a no-op. */
	return !g->builtin;
}

static bool scope_has(const struct backend_ctx *ctx, const char *what)
{
	const char *scope = json_string_value(json_object_get(ctx->settings, "scope"));
	char buf[128];
	snprintf(buf, sizeof(buf), ",%s,", scope ? scope : "projects");
	for (char *p = buf; *p; p++)
		if (*p == ' ')
			memmove(p, p + 1, strlen(p));
	char needle[32];
	snprintf(needle, sizeof(needle), ",%s,", what);
	return strstr(buf, needle) != NULL;
}

static int inventory(struct redmine *rm)
{
	struct http_response r;
	int e;

	if (get_ok(rm, "checking the API key (GET /users/current.json)", "users/current.json", &r) < 0)
		return -1;
	e = redmine_parse_current_user(r.body, r.len, &rm->self_id);
	if (e < 0)
		fail_status(rm, "checking the API key (GET /users/current.json)", &r);
	http_response_clear(&r);
	if (e < 0)
		return -1;

	/* Active and closed projects; archived ones are invisible to REST. */
	if (get_all(rm, "listing projects", "projects.json?status=1%7C5", "projects", &rm->projects) < 0)
		return -1;
	for (size_t i = 0; i < rm->projects.n; i++) {
		bool parent_listed = false;
		for (size_t j = 0; j < rm->projects.n && rm->projects.v[i].parent; j++)
			parent_listed |= rm->projects.v[j].id == rm->projects.v[i].parent;
		rm->projects.v[i].top = !parent_listed;
	}
	if (get_ok(rm, "counting issues", "issues.json?status_id=*&limit=1", &r) < 0)
		return -1;
	e = redmine_parse_total(r.body, r.len, &rm->issues);
	if (e < 0)
		fail_status(rm, "counting issues", &r);
	http_response_clear(&r);
	if (e < 0)
		return -1;
	if (scope_has(rm->ctx, "users")) {
		if (get_all(rm, "listing users", "users.json?status=", "users", &rm->users) < 0)
			return -1;
		filter(&rm->users, keep_user, rm);
	}
	if (scope_has(rm->ctx, "groups")) {
		if (get_all(rm, "listing groups", "groups.json", "groups", &rm->groups) < 0)
			return -1;
		filter(&rm->groups, keep_group, rm);
	}
	return 0;
}

static void on_deleted(size_t i, const struct http_response *r, void *ud)
{
	struct redmine *rm = ud;
	const struct redmine_item *it = NULL;
	size_t k = 0;

	/* paths[i] is the i-th item marked for deletion in the list being deleted. */
	for (size_t j = 0; j < rm->deleting->n; j++) {
		if (rm->deleting == &rm->projects && !rm->deleting->v[j].top)
			continue;
		if (k++ == i) {
			it = &rm->deleting->v[j];
			break;
		}
	}
	if (r->status == 204 || r->status == 200 || r->status == 404) {
		if (it)
			backend_manifest(rm->ctx, rm->step, it->id, it->name);
	} else {
		rm->failed++;
		if (!rm->first_error[0] && r->status)
			snprintf(rm->first_error, sizeof(rm->first_error), "DELETE %.60s: HTTP %ld %.80s", rm->paths[i],
				 r->status, r->body ? r->body : "");
		else if (!rm->first_error[0])
			snprintf(rm->first_error, sizeof(rm->first_error), "DELETE %.60s: %.200s", rm->paths[i], r->error);
	}
	rm->done++;
	backend_progress(rm->ctx, rm->step, rm->done, rm->total);
}

/* DELETE the items of @l (projects: the top-level ones), @parallel at a time. */
static void delete_all(struct redmine *rm, const char *kind, const char *resource, const struct redmine_page *l)
{
	char **paths = xcalloc(l->n + 1, sizeof(char *));
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		if (l != &rm->projects || l->v[i].top)
			paths[n++] = xasprintf("%s/%lld.json", resource, (long long)l->v[i].id);
	rm->step = kind;
	rm->deleting = l;
	rm->paths = paths;
	http_parallel(rm->http, "DELETE", paths, n, rm->parallel, on_deleted, rm);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* Redmine 5.1+ answers 204 and deletes in the background: wait until every project is gone. */
static int wait_projects_gone(struct redmine *rm)
{
	time_t deadline = time(NULL) + ASYNC_WAIT_SEC;
	for (size_t i = 0; i < rm->projects.n; i++) {
		char *p = xasprintf("projects/%lld.json", (long long)rm->projects.v[i].id);
		for (;;) {
			struct http_response r;
			http_request(rm->http, "GET", p, NULL, NULL, 0, &r);
			long st = r.status;
			http_response_clear(&r);
			if (st == 404)
				break;
			if (time(NULL) > deadline) {
				free(p);
				return backend_fail(rm->ctx, "redmine '%s': project %lld still exists %d s after its "
						    "DELETE; run the purge again", rm->ctx->target,
						    (long long)rm->projects.v[i].id, ASYNC_WAIT_SEC);
			}
			struct timespec ts = { 0, 250000000L };
			nanosleep(&ts, NULL);
		}
		free(p);
	}
	return 0;
}

static int redmine_prepare(struct backend_ctx *ctx, struct sandbox_policy *p)
{
	const char *user = json_string_value(json_object_get(ctx->secrets, "request_username"));
	const char *pw = json_string_value(json_object_get(ctx->secrets, "request_password"));
	int r;

	/* A REST body's login, when the target accepts it: HTTP Basic, which Redmine takes. */
	if (user && pw) {
		r = backend_prepare_http(ctx, p, NULL);
		if (r == 0)
			http_client_basic_auth(ctx->http, user, pw);
		return r;
	}
	/* The key travels in a header, never in a URL that could be logged. */
	char *header = xasprintf("X-Redmine-API-Key: %s", json_string_value(json_object_get(ctx->secrets, "api_key")));
	r = backend_prepare_http(ctx, p, header);
	freezero_str(header);
	return r;
}

static int redmine_run(struct backend_ctx *ctx)
{
	struct redmine rm = { .ctx = ctx };
	size_t top = 0;
	int r = -1;

	rm.http = ctx->http;
	rm.parallel = (unsigned)json_integer_value(json_object_get(ctx->settings, "parallel"));
	if (rm.parallel == 0)
		rm.parallel = 4;
	if (inventory(&rm) < 0)
		goto finish;
	for (size_t i = 0; i < rm.projects.n; i++)
		top += rm.projects.v[i].top;
	if (ctx->dry_run) {
		backend_count(ctx, "projects", rm.projects.n);
		backend_count(ctx, "issues", (uint64_t)rm.issues);
		if (scope_has(ctx, "users"))
			backend_count(ctx, "users", rm.users.n);
		if (scope_has(ctx, "groups"))
			backend_count(ctx, "groups", rm.groups.n);
		r = 0;
		goto finish;
	}

	rm.total = top + rm.users.n + rm.groups.n;
	backend_progress(ctx, "projects", 0, rm.total);
	delete_all(&rm, "projects", "projects", &rm.projects);
	if (!rm.failed && wait_projects_gone(&rm) < 0)
		goto finish;
	/* Children went with their parents: they are deleted too, and in the manifest. */
	for (size_t i = 0; i < rm.projects.n; i++)
		if (!rm.projects.v[i].top)
			backend_manifest(ctx, "projects", rm.projects.v[i].id, rm.projects.v[i].name);
	backend_count(ctx, "projects", rm.failed ? 0 : rm.projects.n);
	backend_count(ctx, "issues", rm.failed ? 0 : (uint64_t)rm.issues);
	if (!rm.failed && scope_has(ctx, "users")) {
		delete_all(&rm, "users", "users", &rm.users);
		backend_count(ctx, "users", rm.users.n);
	}
	if (!rm.failed && scope_has(ctx, "groups")) {
		delete_all(&rm, "groups", "groups", &rm.groups);
		backend_count(ctx, "groups", rm.groups.n);
	}
	if (rm.failed) {
		backend_fail(ctx, "redmine '%s': %zu DELETE(s) failed (first: %s); what was deleted is in the "
			     "manifest; run the purge again to finish", ctx->target, rm.failed, rm.first_error);
		goto finish;
	}
	r = 0;
finish:
	redmine_page_clear(&rm.projects);
	redmine_page_clear(&rm.users);
	redmine_page_clear(&rm.groups);
	return r;
}

const struct backend_ops backend_redmine = {
	.type = "redmine",
	.prepare = redmine_prepare,
	.run = redmine_run,
};
