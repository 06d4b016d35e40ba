/*
 * itop: delete iTop's service-management data through its REST/JSON API,
 * one class at a time in the configured order (dependents first).
 *
 * A real iTop delete is not atomic: objects go one by one and the first
 * blocked one stops the call, leaving those before it deleted. So, per class:
 * count (core/get), simulate the delete of the whole class (core/delete,
 * simulate: true), and delete for real, in one request, only when the
 * simulation said code 0. The Persons linked to a User account (the REST
 * user's own contact among them) and the Organizations that still hold them
 * are kept. iTop answers HTTP 200 to everything: its JSON code tells.
 * Executor only: runs inside the sandbox, TCP to iTop's port only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/backend.h"
#include "daemon/executor/http.h"
#include "daemon/executor/parse.h"
#include "purged/util.h"

/* Service-management data, dependents first: an order that deletes everything with every step code 0. */
static const char default_classes[] = "UserRequest,Incident,ServiceSubcategory,Service,CustomerContract,SLA,SLT,"
				      "Team,Location,Person,ServiceFamily,Organization";

struct itop {
	struct backend_ctx *ctx;
	char *auth;        /* "auth_user=..&auth_pwd=..", encoded; wiped at the end */
	const char *version;
	char *keep_persons; /* "1,5" or "" */
	char *keep_orgs;
	uint64_t done, total;
};

static const char *code_hint(json_int_t code)
{
	switch (code) {
	case 1: return "iTop refused the login, or the user lacks the REST Services User profile or rights on the class";
	case 2: case 3: case 4: return "the request was malformed (a purged bug: please report it)";
	case 10: return "this iTop does not offer that api_version";
	case 11: return "this iTop does not know the operation";
	case 12: return "objects depend on these ones and must be deleted first (check the classes order)";
	case 13: return "bad page";
	default: return "iTop's own error";
	}
}

/* One call. 0 with @out (clear it), or -1 after failing the task (transport, not iTop's JSON). */
static int call(struct itop *it, const json_t *op, const char *field, const char *step, struct itop_reply *out)
{
	struct http_client *h = it->ctx->http;
	char *js = json_dumps(op, JSON_COMPACT), *ejs = http_escape(h, js);
	char *body = xasprintf("version=%s&%s&json_data=%s", it->version, it->auth, ejs);
	struct http_response r;
	int ret = -1;

	free(js);
	free(ejs);
	if (http_request(h, "POST", "", "application/x-www-form-urlencoded", body, strlen(body), &r) < 0)
		backend_fail(it->ctx, "itop '%s': %s: cannot reach %s: %s", it->ctx->target, step, http_client_where(h),
			     r.error);
	else if (r.status != 200)
		backend_fail(it->ctx, "itop '%s': %s: HTTP %ld from %s (is url the rest.php endpoint?)", it->ctx->target,
			     step, r.status, http_client_where(h));
	else if (itop_parse_reply(r.body, r.len, field, out) < 0)
		backend_fail(it->ctx, "itop '%s': %s: the answer is not iTop's JSON", it->ctx->target, step);
	else
		ret = 0;
	freezero_str(body);
	http_response_clear(&r);
	return ret;
}

static int fail_code(struct itop *it, const char *step, const struct itop_reply *rep)
{
	return backend_fail(it->ctx, "itop '%s': %s: iTop code %lld (%s): %s", it->ctx->target, step,
			    (long long)rep->code, code_hint(rep->code), rep->message);
}

/* Ids of @field over every object of @oql, comma-separated; NULL after failing the task. */
static char *collect(struct itop *it, const char *cls, const char *oql, const char *field)
{
	json_t *op = json_pack("{s:s, s:s, s:s, s:s}", "operation", "core/get", "class", cls, "key", oql,
			       "output_fields", field);
	struct itop_reply rep;
	char *out = NULL;

	if (call(it, op, field, "finding what to keep", &rep) == 0) {
		if (rep.code != 0) {
			fail_code(it, "finding what to keep", &rep);
		} else {
			out = xstrdup("");
			for (size_t i = 0; i < rep.n_objects; i++) {
				const char *v = rep.objects[i].field;
				/* Only ids: these go into an OQL "IN (...)". */
				if (!v || !*v || !strcmp(v, "0") || strspn(v, "0123456789") != strlen(v))
					continue;
				char *next = xasprintf("%s%s%s", out, *out ? "," : "", v);
				free(out);
				out = next;
			}
		}
		itop_reply_clear(&rep);
	}
	json_decref(op);
	return out;
}

static char *oql_for(const struct itop *it, const char *cls)
{
	/* Keep the REST users' own contacts, and the organizations that hold them. */
	if (!strcmp(cls, "Person") && *it->keep_persons)
		return xasprintf("SELECT Person WHERE id NOT IN (%s)", it->keep_persons);
	if (!strcmp(cls, "Organization") && *it->keep_orgs)
		return xasprintf("SELECT Organization WHERE id NOT IN (%s)", it->keep_orgs);
	return xasprintf("SELECT %s", cls);
}

static long count_class(struct itop *it, const char *cls, const char *oql)
{
	json_t *op = json_pack("{s:s, s:s, s:s, s:s, s:i}", "operation", "core/get", "class", cls, "key", oql,
			       "output_fields", "id", "limit", 1);
	struct itop_reply rep;
	char step[96];
	long n = -1;

	snprintf(step, sizeof(step), "counting %s", cls);
	if (call(it, op, NULL, step, &rep) == 0) {
		if (rep.code == 0 && rep.number >= 0)
			n = rep.number; /* "Found: N" counts the whole set, whatever the limit */
		else if (rep.code == 0)
			backend_fail(it->ctx, "itop '%s': %s: no count in '%s'", it->ctx->target, step, rep.message);
		else
			fail_code(it, step, &rep);
		itop_reply_clear(&rep);
	}
	json_decref(op);
	return n;
}

static int purge_class(struct itop *it, const char *cls)
{
	char *oql = oql_for(it, cls), step[128];
	long n = count_class(it, cls, oql);
	struct itop_reply rep = { 0 };
	json_t *op = NULL;
	int r = -1;

	if (n < 0)
		goto finish;
	/*
	 * A plan counts: simulating class after class would be blocked by the
	 * objects of the earlier classes, which a dry run leaves in place.
	 */
	if (n == 0 || it->ctx->dry_run) {
		backend_count(it->ctx, cls, (uint64_t)n);
		r = 0;
		goto finish;
	}
	char *comment = xasprintf("purged task %s", it->ctx->task_id);
	op = json_pack("{s:s, s:s, s:s, s:s, s:b}", "operation", "core/delete", "class", cls, "key", oql, "comment",
		       comment, "simulate", 1);
	free(comment);
	snprintf(step, sizeof(step), "simulating the delete of %s", cls);
	if (call(it, op, NULL, step, &rep) < 0)
		goto finish;
	if (rep.code != 0) {
		/* Nothing was deleted: a real iTop delete is not atomic, so we never start one that would stop half way. */
		fail_code(it, step, &rep);
		goto finish;
	}
	itop_reply_clear(&rep);
	json_object_set_new(op, "simulate", json_false()); /* a JSON boolean: iTop reads "false" as true */
	snprintf(step, sizeof(step), "deleting %s", cls);
	if (call(it, op, NULL, step, &rep) < 0)
		goto finish;
	if (rep.code != 0) {
		fail_code(it, step, &rep);
		/* What went before the blocker is gone: say how much, so a second run can finish. */
		long left = count_class(it, cls, oql);
		if (left >= 0)
			backend_count(it->ctx, cls, (uint64_t)(n > left ? n - left : 0));
		goto finish;
	}
	uint64_t deleted = 0;
	for (size_t i = 0; i < rep.n_objects; i++) {
		const struct itop_object *o = &rep.objects[i];
		if (o->code != 0)
			continue; /* 5: a referencing object updated, not deleted */
		backend_manifest(it->ctx, o->cls, o->key, o->name);
		deleted += !strcmp(o->cls, cls);
	}
	backend_count(it->ctx, cls, deleted);
	it->done += deleted;
	r = 0;
finish:
	itop_reply_clear(&rep);
	free(oql);
	json_decref(op);
	return r;
}

static int itop_prepare(struct backend_ctx *ctx, struct sandbox_policy *p)
{
	return backend_prepare_http(ctx, p, NULL);
}

static int itop_run(struct backend_ctx *ctx)
{
	struct itop it = { .ctx = ctx };
	const char *classes = json_string_value(json_object_get(ctx->settings, "classes"));
	/* A REST body's credentials, when the target accepts them, replace the configured ones. */
	const char *user = json_string_value(json_object_get(ctx->secrets, "request_username"));
	const char *pw = json_string_value(json_object_get(ctx->secrets, "request_password"));
	if (!user || !pw) {
		user = json_string_value(json_object_get(ctx->settings, "user"));
		pw = json_string_value(json_object_get(ctx->secrets, "password"));
	}
	char *eu = http_escape(ctx->http, user ? user : ""), *ep = http_escape(ctx->http, pw ? pw : "");
	char *list = xstrdup(classes ? classes : default_classes);
	int r = -1;

	it.auth = xasprintf("auth_user=%s&auth_pwd=%s", eu, ep);
	free(eu);
	freezero_str(ep);
	it.version = json_string_value(json_object_get(ctx->settings, "api_version"));
	if (!it.version)
		it.version = "1.3";

	it.keep_persons = collect(&it, "User", "SELECT User", "contactid");
	if (!it.keep_persons)
		goto finish;
	char *oql = *it.keep_persons ? xasprintf("SELECT Person WHERE id IN (%s)", it.keep_persons) : NULL;
	it.keep_orgs = oql ? collect(&it, "Person", oql, "org_id") : xstrdup("");
	free(oql);
	if (!it.keep_orgs)
		goto finish;

	/* Progress counts objects: size the work first. */
	for (char *save = NULL, *c = strtok_r(list, ", ", &save); c && !ctx->dry_run; c = strtok_r(NULL, ", ", &save)) {
		char *q = oql_for(&it, c);
		long n = count_class(&it, c, q);
		free(q);
		if (n < 0)
			goto finish;
		it.total += (uint64_t)n;
	}
	free(list);
	list = xstrdup(classes ? classes : default_classes);
	if (!ctx->dry_run)
		backend_progress(ctx, "objects", 0, it.total);
	for (char *save = NULL, *c = strtok_r(list, ", ", &save); c; c = strtok_r(NULL, ", ", &save)) {
		if (purge_class(&it, c) < 0)
			goto finish;
		if (!ctx->dry_run)
			backend_progress(ctx, c, it.done < it.total ? it.done : it.total, it.total);
	}
	r = 0;
finish:
	free(list);
	freezero_str(it.auth);
	free(it.keep_persons);
	free(it.keep_orgs);
	return r;
}

const struct backend_ops backend_itop = {
	.type = "itop",
	.prepare = itop_prepare,
	.run = itop_run,
};
