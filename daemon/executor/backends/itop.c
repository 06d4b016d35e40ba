/*
 * itop: delete an iTop's data through its REST/JSON API.
 *
 * The scope is every object of the configured classes (default: the whole
 * database through iTop's root classes, see default_classes), except what
 * keeps access: the User accounts, the Persons linked to one, and the
 * Organizations those Persons belong to. It is enumerated first, whatever
 * each object's leaf class, and every object is counted once, under the
 * first class that reached it.
 *
 * A real iTop delete is not atomic: objects go one by one and the first
 * blocked one stops the call, leaving those before it deleted. So objects are
 * simulated first, a set at a time (up to what a simulation covers well within
 * the timeout), and deleted for real, in chunks by id (`chunk` per request),
 * only when the simulation said code 0. Objects of the scope that block a set
 * (per-object codes 1, 3, 4) are deleted first; objects outside the scope that
 * block it fail the task, named; a real delete that meets a blocker created
 * since the simulation fails the task after listing the chunk again.
 * Only a real delete's per-object code 0 is a confirmed deletion; objects that
 * come back without having been asked for went in cascade. After an uncertain
 * outcome (no answer in time, connection dropped) the chunk is enumerated
 * again: what is absent is confirmed deleted. Every purge ends by enumerating
 * the scope again (the post-condition). A plan enumerates the scope and
 * simulates every set, so it shows the cascades too.
 * iTop answers HTTP 200 to everything: its JSON code tells.
 * Executor only: runs inside the sandbox, TCP to iTop's port only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "daemon/executor/archive.h"
#include "daemon/executor/backend.h"
#include "daemon/executor/http.h"
#include "daemon/executor/parse.h"
#include "purged/log.h"
#include "purged/util.h"

/*
 * The whole database, dependents first (the order only saves round trips: blockers
 * of the scope are deleted first whatever the order). Root classes reach every leaf
 * class, extensions' ones included; each costs a request to list and one to check at
 * the end (iTop's login alone takes ~50 ms a request), so no class is listed whose
 * root is listed too. Typologies: Brand, OSFamily and OSVersion are the reference
 * lists iTop's installer ships, and are kept (typologies_purged).
 */
static const char default_classes[] =
	"Attachment,Ticket,WorkOrder,KnownError,FAQ,FAQCategory,Document,NetworkInterface,LogicalVolume,NASFileSystem,Tape,"
	"FunctionalCI,Patch,Licence,Software,Group,Subnet,VLAN,Contract,ServiceSubcategory,SLA,SLT,Service,"
	"ServiceFamily,Contact,DeliveryModel,Location,Typology,Organization";
static const char typologies_purged[] = "SELECT Typology WHERE finalclass NOT IN ('Brand','OSFamily','OSVersion')";

#define PAGE 1000        /* objects per enumeration request */
#define MAX_DEPTH 8      /* blockers of blockers of ... */
#define RECONCILE_ROUNDS 6    /* listings of an uncertain delete, until two agree */
#define RECONCILE_WAIT_SEC 3  /* between them: iTop may still be deleting */
#define NAMED 10         /* blocking objects named in an error */
#define ARCHIVE_GET 100  /* objects per core/get of the archive (archive = yes) */
#define SIMULATED_PER_SEC 100 /* objects a simulation is given per second of timeout */
#define ANSWER_MAX 2000  /* objects in a simulation's answer, aimed at: it is parsed whole */

struct obj {
	char *cls;       /* leaf class */
	char *name;
	json_int_t id;
	unsigned kind;   /* index into it->classes */
	bool gone;       /* confirmed deleted (or planned, in a dry run) */
};

struct scope {
	struct obj *v;
	size_t n, cap;
	json_t *index;   /* "Leaf::id" -> position in v */
};

struct itop {
	struct backend_ctx *ctx;
	char *auth;         /* "auth_user=..&auth_pwd=..", encoded; wiped at the end */
	const char *version;
	const char *url;    /* as sent, for messages */
	char *keep_persons; /* "1,5" or "" */
	char *keep_orgs;
	json_t *kept;       /* "Leaf::id" of the User accounts, kept Persons and Organizations */
	char **classes;
	size_t n_classes;
	bool custom;        /* `classes` is set */
	bool *absent;       /* classes[k] is not a class of this iTop (default scope only) */
	unsigned chunk;
	long timeout;
	struct scope scope;
	json_t *cascades;   /* "Leaf::id" of objects outside the scope counted or reported already */
	json_t *plan;       /* dry run: kind -> n */
	uint64_t done, total;
	bool archiving;     /* archive = yes: every object goes into the archive before its delete */
	json_t *archived;   /* "Leaf::id" of the objects archived (and sealed) */
	json_t *unarchived; /* class -> n: deleted in cascade without a record (not in the simulation) */
};

static const char *code_hint(json_int_t code)
{
	switch (code) {
	case 1: return "iTop refused the login, or the user lacks the REST Services User profile or rights on the class";
	case 2: case 3: case 4: return "the request was malformed (a purged bug: please report it)";
	case 10: return "this iTop does not offer that api_version";
	case 11: return "this iTop does not know the operation";
	case 12: return "other objects must be deleted first";
	case 13: return "bad page";
	default: return "iTop's own error";
	}
}

static char *key_of(const char *cls, json_int_t id)
{
	return xasprintf("%s::%lld", cls, (long long)id);
}

static bool in_set(const json_t *set, const char *cls, json_int_t id)
{
	char *k = key_of(cls, id);
	bool r = json_object_get(set, k) != NULL;
	free(k);
	return r;
}

static void set_add(json_t *set, const char *cls, json_int_t id)
{
	char *k = key_of(cls, id);
	json_object_set_new(set, k, json_true());
	free(k);
}

/* Position in the scope of @cls::@id, or -1. */
static long scope_find(const struct scope *s, const char *cls, json_int_t id)
{
	char *k = key_of(cls, id);
	json_t *v = json_object_get(s->index, k);
	free(k);
	return v ? (long)json_integer_value(v) : -1;
}

static void scope_clear(struct scope *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].cls);
		free(s->v[i].name);
	}
	free(s->v);
	json_decref(s->index);
	memset(s, 0, sizeof(*s));
}

/*
 * One call. 0 with @out (clear it), or -1 after failing the task: no answer, an HTTP error
 * or not iTop's JSON (@resp_out, when given, keeps the outcome: maybe_sent when the request
 * may have been acted on, for the caller to reconcile).
 */
static int call(struct itop *it, const json_t *op, const char *field, const char *step, struct itop_reply *out,
		struct http_response *resp_out)
{
	struct http_client *h = it->ctx->http;
	char *js = json_dumps(op, JSON_COMPACT), *ejs = http_escape(h, js);
	char *body = xasprintf("version=%s&%s&json_data=%s", it->version, it->auth, ejs);
	struct http_response r;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	free(js);
	free(ejs);
	if (http_request(h, "POST", "", "application/x-www-form-urlencoded", body, strlen(body), &r) < 0) {
		if (r.timed_out && r.maybe_sent)
			backend_fail(it->ctx, "itop '%s': %s: no answer within %ld s from %s (%s); raise timeout, or lower chunk",
				     it->ctx->target, step, it->timeout, it->url, r.error);
		else if (r.maybe_sent)
			backend_fail(it->ctx, "itop '%s': %s: the connection to %s was lost before the answer (%s); "
				     "check the web server's and PHP's logs", it->ctx->target, step, it->url, r.error);
		else
			backend_fail(it->ctx, "itop '%s': %s: cannot reach %s: %s; check url and that iTop's web server runs",
				     it->ctx->target, step, it->url, r.error);
	} else if (r.status != 200) {
		/* It was received: a delete may have gone part of the way (the caller reconciles). */
		r.maybe_sent = true;
		if (r.status == 404)
			backend_fail(it->ctx, "itop '%s': %s: HTTP 404 from %s (is url iTop's webservices/rest.php?)",
				     it->ctx->target, step, it->url);
		else
			backend_fail(it->ctx, "itop '%s': %s: HTTP %ld from %s: iTop or its web server failed on this "
				     "request; see their error logs (nginx's, PHP's)", it->ctx->target, step, r.status,
				     it->url);
	} else if (itop_parse_reply(r.body, r.len, field, out) < 0) {
		r.maybe_sent = true;
		backend_fail(it->ctx, "itop '%s': %s: the answer from %s is not iTop's JSON (a PHP error page? see "
			     "PHP's error log; or is url not iTop's webservices/rest.php?)", it->ctx->target, step, it->url);
	} else {
		ret = 0;
	}
	freezero_str(body);
	if (resp_out) {
		*resp_out = r;
		resp_out->body = NULL;
		resp_out->len = 0;
	}
	http_response_clear(&r);
	return ret;
}

static int fail_code(struct itop *it, const char *step, const struct itop_reply *rep)
{
	return backend_fail(it->ctx, "itop '%s': %s: iTop code %lld (%s): %s", it->ctx->target, step,
			    (long long)rep->code, code_hint(rep->code), rep->message);
}

/* Ids of @field over every object of @oql, comma-separated, each leaf::id added to @kept; NULL after failing. */
static char *collect(struct itop *it, const char *cls, const char *oql, const char *field)
{
	json_t *op = json_pack("{s:s, s:s, s:s, s:s}", "operation", "core/get", "class", cls, "key", oql,
			       "output_fields", field);
	struct itop_reply rep;
	char *out = NULL;

	if (call(it, op, field, "finding what to keep", &rep, NULL) == 0) {
		if (rep.code != 0) {
			fail_code(it, "finding what to keep", &rep);
		} else {
			out = xstrdup("");
			for (size_t i = 0; i < rep.n_objects; i++) {
				const char *v = rep.objects[i].field;
				set_add(it->kept, rep.objects[i].cls, rep.objects[i].key);
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

static bool is_contact(const char *cls)
{
	return !strcmp(cls, "Person") || !strcmp(cls, "Contact");
}

static char *oql_for(const struct itop *it, const char *cls)
{
	/* Keep the Persons linked to a User account, and the Organizations that hold them. */
	if (is_contact(cls) && *it->keep_persons)
		return xasprintf("SELECT %s WHERE id NOT IN (%s)", cls, it->keep_persons);
	if (!strcmp(cls, "Organization") && *it->keep_orgs)
		return xasprintf("SELECT Organization WHERE id NOT IN (%s)", it->keep_orgs);
	/* In classes too: a list copied from the default keeps the reference typologies. */
	if (!strcmp(cls, "Typology"))
		return xstrdup(typologies_purged);
	return xasprintf("SELECT %s", cls);
}

static bool unknown_class(const struct itop_reply *rep)
{
	return rep->code == 100 && strstr(rep->message, "is not a valid class");
}

/*
 * Every object of class @k into @s (those already there, reached by an earlier class, are
 * not added again). Pages of PAGE objects; iTop orders them by the class's default order
 * (a name, often), and MariaDB may order equal names differently from page to page: when
 * the pages hold fewer distinct objects than "Found: N", the class is listed again in one
 * request. 0, 1 when this iTop has no such class, -1 after failing the task.
 */
static int enumerate(struct itop *it, unsigned k, struct scope *s)
{
	const char *cls = it->classes[k];
	char *oql = oql_for(it, cls), step[160];
	json_t *seen = json_object();
	long limit = PAGE;
	int r = -1;

	snprintf(step, sizeof(step), "listing %s", cls);
	for (long page = 1;; page++) {
		json_t *op = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "operation", "core/get", "class", cls, "key", oql,
				       "output_fields", "id,friendlyname", "limit", (json_int_t)limit, "page",
				       (json_int_t)page);
		struct itop_reply rep;
		int c = call(it, op, NULL, step, &rep, NULL);
		json_decref(op);
		if (c < 0)
			break;
		if (unknown_class(&rep)) {
			itop_reply_clear(&rep);
			r = 1;
			break;
		}
		if (rep.code != 0) {
			fail_code(it, step, &rep);
			itop_reply_clear(&rep);
			break;
		}
		for (size_t i = 0; i < rep.n_objects; i++) {
			const struct itop_object *o = &rep.objects[i];
			char *key = key_of(o->cls, o->key);
			json_object_set(seen, key, json_true());
			if (!json_object_get(s->index, key)) {
				if (s->n == s->cap) {
					s->cap = s->cap ? 2 * s->cap : 256;
					s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
				}
				s->v[s->n] = (struct obj){ .cls = xstrdup(o->cls), .name = xstrdup(o->name ? o->name : ""),
							   .id = o->key, .kind = k };
				json_object_set_new(s->index, key, json_integer((json_int_t)s->n));
				s->n++;
			}
			free(key);
		}
		bool last = limit == 0 || (size_t)rep.n_objects < (size_t)limit || (rep.number >= 0 && page * limit >= rep.number);
		bool short_of = rep.number >= 0 && json_object_size(seen) < (size_t)rep.number;
		itop_reply_clear(&rep);
		if (last && short_of && limit != 0) {
			limit = 0; /* no limit: all in one answer */
			page = 0;
			continue;
		}
		if (last) {
			r = 0;
			break;
		}
	}
	json_decref(seen);
	free(oql);
	return r;
}

/* The whole scope into @s. 0 or -1 after failing the task. */
static int enumerate_scope(struct itop *it, struct scope *s, bool say_skipped)
{
	char skipped[512] = "";

	s->index = json_object();
	for (unsigned k = 0; k < it->n_classes; k++) {
		if (it->absent[k])
			continue;
		int r = enumerate(it, k, s);
		if (r < 0)
			return -1;
		if (r == 1 && it->custom)
			return backend_fail(it->ctx, "itop '%s': classes: '%s' is not a class of this iTop; correct "
					    "classes in the target's configuration (purged.conf(5))",
					    it->ctx->target, it->classes[k]);
		it->absent[k] = r == 1;
		if (r == 1 && strlen(skipped) + strlen(it->classes[k]) + 3 < sizeof(skipped))
			snprintf(skipped + strlen(skipped), sizeof(skipped) - strlen(skipped), "%s%s",
				 *skipped ? ", " : "", it->classes[k]);
	}
	if (say_skipped && *skipped)
		log_info("itop '%s': this iTop has no class %s (not installed): skipped", it->ctx->target, skipped);
	return 0;
}

/* "SELECT C WHERE id IN (1,2,3)" for @n objects of the scope, all of kind @k. */
static char *oql_ids(const struct itop *it, unsigned k, const size_t *pos, size_t n)
{
	size_t cap = 64 + n * 21, o;
	char *q = xmalloc(cap);
	o = (size_t)snprintf(q, cap, "SELECT %s WHERE id IN (", it->classes[k]);
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(q + o, cap - o, "%s%lld", i ? "," : "", (long long)it->scope.v[pos[i]].id);
	snprintf(q + o, cap - o, ")");
	return q;
}

static void progress(struct itop *it, const char *step)
{
	backend_progress(it->ctx, step, it->done < it->total ? it->done : it->total, it->total);
}

/* A deletion iTop confirmed (code 0 of a real delete, or absence after an uncertain outcome). */
static void confirmed(struct itop *it, const char *cls, json_int_t id, const char *name, bool requested)
{
	long p = scope_find(&it->scope, cls, id);
	if (p >= 0) {
		struct obj *o = &it->scope.v[p];
		if (o->gone)
			return;
		o->gone = true;
		it->done++;
		backend_deleted(it->ctx, it->classes[o->kind], id, name ? name : o->name, !requested);
	} else if (!in_set(it->cascades, cls, id)) {
		set_add(it->cascades, cls, id);
		backend_deleted(it->ctx, cls, id, name, true);
	}
}

/* Names of up to NAMED blockers outside the scope, for the error; "" when none. */
static void name_objects(const struct itop_reply *rep, const bool *foreign, char *out, size_t len, size_t *n)
{
	size_t o = 0;
	*out = '\0';
	*n = 0;
	for (size_t i = 0; i < rep->n_objects; i++) {
		if (!foreign[i])
			continue;
		if (++*n > NAMED)
			continue;
		const struct itop_object *x = &rep->objects[i];
		int w = snprintf(out + o, len - o, "%s%s %lld '%s'", o ? ", " : "", x->cls, (long long)x->key,
				 x->name ? x->name : "");
		if (w < 0 || (size_t)w >= len - o)
			break;
		o += (size_t)w;
	}
}

/* Append @id to the list of @cls in @by (class -> [ids]). */
static void by_class_add(json_t *by, const char *cls, json_int_t id)
{
	json_t *a = json_object_get(by, cls);
	if (!a) {
		a = json_array();
		json_object_set_new(by, cls, a);
	}
	json_array_append_new(a, json_integer(id));
}

/* Which of @by (class -> [ids]) iTop still lists, into @present. True when a listing failed. */
static bool list_present(struct itop *it, json_t *by, json_t *present)
{
	const char *cls;
	json_t *ids;
	bool failed = false;

	json_object_foreach(by, cls, ids) {
		size_t cap = 64 + json_array_size(ids) * 21, o, i;
		char *q = xmalloc(cap);
		json_t *v;
		o = (size_t)snprintf(q, cap, "SELECT %s WHERE id IN (", cls);
		json_array_foreach(ids, i, v)
			o += (size_t)snprintf(q + o, cap - o, "%s%lld", i ? "," : "", (long long)json_integer_value(v));
		snprintf(q + o, cap - o, ")");
		json_t *op = json_pack("{s:s, s:s, s:s, s:s}", "operation", "core/get", "class", cls, "key", q,
				       "output_fields", "id");
		struct itop_reply rep;
		free(q);
		if (call(it, op, NULL, "re-listing after an uncertain delete", &rep, NULL) < 0 || rep.code != 0)
			failed = true;
		for (size_t j = 0; !failed && j < rep.n_objects; j++)
			set_add(present, rep.objects[j].cls, rep.objects[j].key);
		itop_reply_clear(&rep);
		json_decref(op);
		if (failed)
			break;
	}
	return failed;
}

/*
 * After an uncertain delete of @pos[0..n) (and of the cascades its simulation @planned):
 * enumerate them again, one request per class; what is absent is confirmed deleted.
 * Writes what was found to @msg.
 */
static void reconcile(struct itop *it, unsigned k, const size_t *pos, size_t n, const struct itop_reply *planned,
		      char *msg, size_t len)
{
	json_t *by = json_object(), *present = json_object();
	uint64_t before = it->done;
	size_t n_casc = 0, casc = 0;
	bool failed = false;

	for (size_t i = 0; i < n; i++)
		by_class_add(by, it->classes[k], it->scope.v[pos[i]].id);
	for (size_t i = 0; planned && i < planned->n_objects; i++) {
		const struct itop_object *x = &planned->objects[i];
		long p = scope_find(&it->scope, x->cls, x->key);
		bool asked = false;
		for (size_t j = 0; p >= 0 && j < n; j++)
			asked |= pos[j] == (size_t)p;
		if ((x->code == 0 || x->code == 2) && !asked && !in_set(it->cascades, x->cls, x->key) &&
		    !(p >= 0 && it->scope.v[p].gone)) {
			by_class_add(by, x->cls, x->key);
			/* Listed again, but not counted as planned cascades: the set's later chunks. */
			n_casc += !(p >= 0 && it->scope.v[p].kind == k);
		}
	}
	/*
	 * iTop may still be deleting (a timed-out request runs on in PHP): list
	 * again until two listings agree or nothing is left, a few seconds apart,
	 * so that the record holds what went, not a snapshot taken midway.
	 */
	for (int round = 0; round < RECONCILE_ROUNDS && !failed; round++) {
		size_t before_round = json_object_size(present);
		if (round > 0) {
			struct timespec ts = { RECONCILE_WAIT_SEC, 0 };
			nanosleep(&ts, NULL);
			json_object_clear(present);
		}
		failed = list_present(it, by, present);
		if (failed || json_object_size(present) == 0 || (round > 0 && json_object_size(present) == before_round))
			break;
	}
	if (failed) {
		snprintf(msg, len, "; re-listing to reconcile failed too, so what that request deleted is not recorded: "
			 "run a plan to see what is left");
	} else {
		for (size_t i = 0; i < n; i++) {
			const struct obj *o = &it->scope.v[pos[i]];
			if (!in_set(present, o->cls, o->id))
				confirmed(it, o->cls, o->id, o->name, true);
		}
		size_t asked_gone = (size_t)(it->done - before);
		for (size_t i = 0; planned && i < planned->n_objects; i++) {
			const struct itop_object *x = &planned->objects[i];
			json_t *a = json_object_get(by, x->cls);
			bool listed = false;
			size_t j;
			json_t *v;
			json_array_foreach(a, j, v)
				listed |= json_integer_value(v) == x->key;
			long p = scope_find(&it->scope, x->cls, x->key);
			if (listed && (p < 0 || !it->scope.v[p].gone) && !in_set(present, x->cls, x->key) &&
			    !in_set(it->cascades, x->cls, x->key)) {
				casc += !(p >= 0 && it->scope.v[p].kind == k);
				confirmed(it, x->cls, x->key, x->name, false);
			}
		}
		snprintf(msg, len, "; re-listed to reconcile: %zu of %zu confirmed deleted and recorded (and %zu of %zu "
			 "planned cascades), %zu still there (iTop may still be deleting them): run the purge again",
			 asked_gone, n, casc, n_casc, n - asked_gone);
	}
	json_decref(by);
	json_decref(present);
}

/*
 * Into the archive: up to ARCHIVE_GET objects of leaf class @cls, @ids[@from..], with all
 * their fields; those not in @chunk marked as cascades. 0, or -1 after failing the task.
 */
static int archive_get(struct itop *it, const char *cls, const json_t *ids, size_t from, const json_t *chunk)
{
	size_t cnt = json_array_size(ids) - from < ARCHIVE_GET ? json_array_size(ids) - from : ARCHIVE_GET;
	size_t cap = 64 + cnt * 21, o, j = 0;
	char *q = xmalloc(cap), step[160];
	struct itop_reply rep;
	json_t *ob;
	const char *okey;
	int r;

	o = (size_t)snprintf(q, cap, "SELECT %s WHERE id IN (", cls);
	for (size_t i = 0; i < cnt; i++)
		o += (size_t)snprintf(q + o, cap - o, "%s%lld", i ? "," : "",
				      (long long)json_integer_value(json_array_get(ids, from + i)));
	snprintf(q + o, cap - o, ")");
	json_t *op = json_pack("{s:s, s:s, s:s, s:s}", "operation", "core/get", "class", cls, "key", q, "output_fields",
			       "*");
	free(q);
	snprintf(step, sizeof(step), "archiving %zu %s before their delete", cnt, cls);
	r = call(it, op, NULL, step, &rep, NULL);
	json_decref(op);
	if (r == 0 && rep.code != 0)
		r = fail_code(it, step, &rep);
	/* Each object as iTop gave it; one gone meanwhile is not deleted by us either. */
	json_object_foreach(json_object_get(rep.doc, "objects"), okey, ob) {
		const struct itop_object *x = &rep.objects[j++];
		if (r < 0)
			break;
		long p = scope_find(&it->scope, x->cls, x->key);
		json_t *fields = json_object_get(ob, "fields");
		json_t *rec = json_pack("{s:s, s:I, s:s, s:O}", "kind", x->cls, "id", x->key, "name",
					x->name ? x->name : p >= 0 ? it->scope.v[p].name : "", "object",
					fields ? fields : json_null());
		if (!in_set(chunk, x->cls, x->key))
			json_object_set_new(rec, "cascade", json_true());
		r = backend_archive_add(it->ctx, rec);
		if (r == 0)
			set_add(it->archived, x->cls, x->key);
	}
	itop_reply_clear(&rep);
	return r;
}

/*
 * archive = yes: put into the archive, with every field iTop gives (core/get, output_fields
 * "*" of each leaf class: an abstract class's "*" holds only its own fields), the objects
 * @pos[0..n) about to be deleted and the cascades their simulation @sim announced, then
 * seal it. Objects archived before (a cascade of an earlier chunk) are not asked again.
 * 0, or -1 after failing the task: then nothing of this chunk may be deleted.
 */
static int archive_set(struct itop *it, const size_t *pos, size_t n, const struct itop_reply *sim)
{
	json_t *by = json_object(), *chunk = json_object(), *asked = json_object(), *ids;
	const char *cls;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		const struct obj *o = &it->scope.v[pos[i]];
		set_add(chunk, o->cls, o->id);
		set_add(asked, o->cls, o->id);
		if (!in_set(it->archived, o->cls, o->id))
			by_class_add(by, o->cls, o->id);
	}
	for (size_t i = 0; i < sim->n_objects; i++) {
		const struct itop_object *x = &sim->objects[i];
		if ((x->code == 0 || x->code == 2) && !in_set(asked, x->cls, x->key) &&
		    !in_set(it->archived, x->cls, x->key)) {
			set_add(asked, x->cls, x->key); /* once, were it listed twice */
			by_class_add(by, x->cls, x->key);
		}
	}
	json_object_foreach(by, cls, ids) {
		/* ARCHIVE_GET a request: a reply of 200 objects with all their fields is parsed
		 * into megabytes, which held the executor's peak RSS at its 16 MiB target. */
		for (size_t from = 0; from < json_array_size(ids) && r == 0; from += ARCHIVE_GET)
			r = archive_get(it, cls, ids, from, chunk);
		if (r < 0)
			break;
	}
	json_decref(by);
	json_decref(chunk);
	json_decref(asked);
	return r < 0 ? -1 : backend_archive_seal(it->ctx);
}

static int delete_set(struct itop *it, unsigned k, size_t *pos, size_t n, int depth, size_t *answered);

/*
 * Delete first the objects of the scope that block: group them by kind. 1 when some were
 * deleted, 0 when none was in @rep, -1 after failing the task.
 */
static int delete_blockers(struct itop *it, const struct itop_reply *rep, int depth)
{
	size_t *pos = xcalloc(rep->n_objects + 1, sizeof(*pos));
	int r = 0;

	for (unsigned k = 0; k < it->n_classes && r >= 0; k++) {
		size_t n = 0;
		for (size_t i = 0; i < rep->n_objects; i++) {
			const struct itop_object *x = &rep->objects[i];
			long p = x->code == 1 || x->code == 3 || x->code == 4 ? scope_find(&it->scope, x->cls, x->key) : -1;
			if (p >= 0 && !it->scope.v[p].gone && it->scope.v[p].kind == k)
				pos[n++] = (size_t)p;
		}
		if (n > 0)
			r = delete_set(it, k, pos, n, depth + 1, NULL) < 0 ? -1 : 1;
	}
	free(pos);
	return r;
}

static void stopped(struct itop *it, const char *cls)
{
	backend_fail(it->ctx, "itop '%s': stopped on request after %llu of %llu objects, before deleting more %s; no "
		     "request was in flight: counts and manifest hold what was deleted", it->ctx->target,
		     (unsigned long long)it->done, (unsigned long long)it->total, cls);
}

/*
 * The real delete of @pos[0..n) of kind @k, which @sim (the simulation of their set) said
 * code 0 for: what iTop answers code 0 is confirmed; an uncertain or failed answer is
 * reconciled by listing again. 0, or -1 after failing the task.
 */
static int delete_chunk(struct itop *it, unsigned k, size_t *pos, size_t n, const struct itop_reply *sim,
			const char *comment)
{
	const char *cls = it->classes[k];
	char step[160], *oql = oql_ids(it, k, pos, n);
	struct itop_reply rep = { 0 };
	int r = -1;
	/* A JSON boolean: iTop reads the string "false" as true. */
	json_t *op = json_pack("{s:s, s:s, s:s, s:s, s:b}", "operation", "core/delete", "class", cls, "key", oql,
			       "comment", comment, "simulate", 0);

	snprintf(step, sizeof(step), "deleting %zu %s (ids from %lld)", n, cls, (long long)it->scope.v[pos[0]].id);
	struct http_response t;
	int64_t t0 = mono_usec();
	int c = call(it, op, NULL, step, &rep, &t);
	json_decref(op);
	free(oql);
	if (c < 0) {
		if (t.maybe_sent) {
			char err[sizeof(it->ctx->error)], more[300];
			snprintf(err, sizeof(err), "%s", it->ctx->error);
			reconcile(it, k, pos, n, sim, more, sizeof(more));
			backend_fail(it->ctx, "%s%s", err, more);
		}
		goto out;
	}
	if (rep.code != 0) {
		/* Something changed since the simulation; what went before the blocker is gone. */
		char err[sizeof(it->ctx->error)], more[300];
		fail_code(it, step, &rep);
		snprintf(err, sizeof(err), "%s", it->ctx->error);
		reconcile(it, k, pos, n, sim, more, sizeof(more));
		backend_fail(it->ctx, "%s (it changed since the simulation)%s", err, more);
		goto out;
	}
	bool *asked = xcalloc(rep.n_objects + 1, sizeof(*asked));
	for (size_t i = 0; i < rep.n_objects; i++) {
		const struct itop_object *x = &rep.objects[i];
		long p = scope_find(&it->scope, x->cls, x->key);
		for (size_t j = 0; p >= 0 && j < n; j++)
			if (pos[j] == (size_t)p)
				asked[i] = true;
	}
	size_t n_asked = 0, n_cascade = 0;
	for (size_t i = 0; i < rep.n_objects; i++) {
		const struct itop_object *x = &rep.objects[i];
		if (x->code != 0 && x->code != 2)
			continue; /* 5: a referencing object updated, not deleted */
		confirmed(it, x->cls, x->key, x->name, asked[i]);
		if (it->archiving && !in_set(it->archived, x->cls, x->key)) {
			/* A cascade the simulation did not announce: created in between. */
			json_t *was = json_object_get(it->unarchived, x->cls);
			json_object_set_new(it->unarchived, x->cls, json_integer(was ? json_integer_value(was) + 1 : 1));
		}
		n_asked += asked[i];
		n_cascade += !asked[i];
	}
	free(asked);
	log_info("itop '%s': deleted %zu %s (ids from %lld) and %zu in cascade in %.1f s", it->ctx->target,
		 n_asked, cls, (long long)it->scope.v[pos[0]].id, n_cascade, (double)(mono_usec() - t0) / 1e6);
	r = 0;
out:
	itop_reply_clear(&rep);
	return r;
}

/*
 * Delete the objects @pos[0..n) of kind @k (a set: up to set_max, see purge_kind):
 * simulate them in one request; delete first the scope's objects that block; fail naming
 * blockers outside the scope; delete for real, `chunk` at a time. In a dry run, only
 * simulate and count the cascades. 0, or -1 after failing the task.
 */
static int delete_set(struct itop *it, unsigned k, size_t *pos, size_t n, int depth, size_t *answered)
{
	const char *cls = it->classes[k];
	char step[160], *comment = xasprintf("purged task %s", it->ctx->task_id);
	struct itop_reply sim = { 0 };
	int r = -1;

	for (int attempt = 0;; attempt++) {
		/* What is left of the set: blockers deleted first may have been in it, or gone in cascade. */
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (!it->scope.v[pos[i]].gone)
				pos[m++] = pos[i];
		n = m;
		if (n == 0) {
			r = 0;
			goto finish;
		}
		if (backend_stopping(it->ctx)) {
			stopped(it, cls);
			goto finish;
		}
		char *oql = oql_ids(it, k, pos, n);
		json_t *op = json_pack("{s:s, s:s, s:s, s:s, s:b}", "operation", "core/delete", "class", cls, "key", oql,
				       "comment", comment, "simulate", 1);
		free(oql);
		snprintf(step, sizeof(step), "simulating the delete of %zu %s (ids from %lld)", n, cls,
			 (long long)it->scope.v[pos[0]].id);
		itop_reply_clear(&sim);
		int c = call(it, op, NULL, step, &sim, NULL);
		if (c < 0) {
			json_decref(op);
			goto finish;
		}
		if (answered)
			*answered = sim.n_objects;
		log_info("itop '%s': simulated the delete of %zu %s: %zu objects in iTop's answer", it->ctx->target, n, cls,
			 sim.n_objects);
		/* Sort the answer: blockers in the scope, blockers outside it, and never what is kept. */
		bool *foreign = xcalloc(sim.n_objects + 1, sizeof(*foreign));
		bool scope_blockers = false, kept = false;
		for (size_t i = 0; i < sim.n_objects; i++) {
			const struct itop_object *x = &sim.objects[i];
			bool issue = x->code == 1 || x->code == 3 || x->code == 4 || x->code == 6;
			long p = scope_find(&it->scope, x->cls, x->key);
			/* In a plan, objects of the scope stay: they block the later classes' simulations. */
			if (issue && p >= 0 && (it->ctx->dry_run || !it->scope.v[p].gone) && x->code != 6)
				scope_blockers = true;
			else if (issue)
				foreign[i] = true;
			if ((x->code == 0 || x->code == 2) && in_set(it->kept, x->cls, x->key))
				kept = foreign[i] = true;
		}
		char names[900];
		size_t n_foreign;
		name_objects(&sim, foreign, names, sizeof(names), &n_foreign);
		free(foreign);
		if (kept) {
			backend_fail(it->ctx, "itop '%s': %s: iTop would also delete what the purge keeps (a User account, its "
				     "Person or their Organization): %s; nothing was deleted by this request: list the classes "
				     "to purge in classes", it->ctx->target, step, names);
			json_decref(op);
			goto finish;
		}
		if (n_foreign > 0) {
			if (it->custom)
				backend_fail(it->ctx, "itop '%s': %s: blocked by %zu object%s outside the purge's classes: %s%s; "
					     "nothing was deleted by this request: add their classes to classes, or remove "
					     "the classes override to purge the whole database", it->ctx->target, step,
					     n_foreign, n_foreign == 1 ? "" : "s", names, n_foreign > NAMED ? ", ..." : "");
			else
				backend_fail(it->ctx, "itop '%s': %s: blocked by %zu object%s the purge did not enumerate: %s%s; "
					     "nothing was deleted by this request. Created since the purge began? purge again. "
					     "Of classes the default scope does not reach? delete them in iTop, or set classes "
					     "to the default list plus their classes (purged.conf(5))",
					     it->ctx->target, step, n_foreign, n_foreign == 1 ? "" : "s", names,
					     n_foreign > NAMED ? ", ..." : "");
			json_decref(op);
			goto finish;
		}
		if (sim.code != 0 && (!scope_blockers || sim.code == 1)) {
			fail_code(it, step, &sim);
			json_decref(op);
			goto finish;
		}
		if (it->ctx->dry_run) {
			/* The plan: what goes in cascade, outside the scope, counted once. */
			for (size_t i = 0; i < sim.n_objects; i++) {
				const struct itop_object *x = &sim.objects[i];
				if ((x->code != 0 && x->code != 2) || scope_find(&it->scope, x->cls, x->key) >= 0 ||
				    in_set(it->cascades, x->cls, x->key))
					continue;
				set_add(it->cascades, x->cls, x->key);
				json_t *v = json_object_get(it->plan, x->cls);
				json_object_set_new(it->plan, x->cls, json_integer(v ? json_integer_value(v) + 1 : 1));
			}
			for (size_t i = 0; i < n; i++)
				it->scope.v[pos[i]].gone = true;
			json_decref(op);
			r = 0;
			goto finish;
		}
		if (scope_blockers) {
			json_decref(op);
			if (depth >= MAX_DEPTH || attempt >= MAX_DEPTH) {
				backend_fail(it->ctx, "itop '%s': %s: iTop code %lld: objects of the scope block each other "
					     "beyond %d levels; delete them in iTop first", it->ctx->target, step,
					     (long long)sim.code, MAX_DEPTH);
				goto finish;
			}
			if (delete_blockers(it, &sim, depth) < 0)
				goto finish;
			continue; /* simulate again what is left */
		}
		/* Nothing goes unarchived: the chunk and its announced cascades, sealed, first. */
		if (it->archiving && archive_set(it, pos, n, &sim) < 0) {
			json_decref(op);
			goto finish;
		}
		json_decref(op);
		/* One simulation covers the set; the real deletes go a chunk at a time, each well under the timeout. */
		for (size_t from = 0; from < n; from += it->chunk) {
			size_t len = n - from < it->chunk ? n - from : it->chunk, left = 0, *sub = pos + from;
			for (size_t i = 0; i < len; i++)
				if (!it->scope.v[sub[i]].gone) /* gone in cascade with an earlier chunk */
					sub[left++] = sub[i];
			if (left == 0)
				continue;
			/* The first chunk follows the check before the simulation, as a lone chunk does. */
			if (from > 0 && backend_stopping(it->ctx)) {
				stopped(it, cls);
				goto finish;
			}
			if (delete_chunk(it, k, sub, left, &sim, comment) < 0)
				goto finish;
			progress(it, cls);
		}
		r = 0;
		goto finish;
	}
finish:
	itop_reply_clear(&sim);
	free(comment);
	return r;
}

/*
 * A class's objects in sets, each simulated in one request: a simulation per chunk cost
 * 13 requests and 5.5 s for 2 582 UserRequests where two took 4.6 s. The first set of a
 * class is a chunk; the next ones hold what should make an answer of ANSWER_MAX objects,
 * cascades included, from the last answer's ratio (the answer is parsed whole: a set of
 * 2 000 tickets with 5 links each took 33 MiB), within what a simulation covers well
 * inside the timeout (SIMULATED_PER_SEC). With an archive a set stays a chunk: what is
 * archived before a chunk's delete is that chunk and the cascades its simulation names.
 */
static int purge_kind(struct itop *it, unsigned k)
{
	size_t set_max = (size_t)it->timeout * SIMULATED_PER_SEC, set = it->chunk;
	if (set_max > ANSWER_MAX)
		set_max = ANSWER_MAX;
	if (set_max < it->chunk)
		set_max = it->chunk;
	size_t *pos = xcalloc(set_max, sizeof(*pos));
	size_t i = 0;
	int r = 0;

	while (r == 0) {
		size_t n = 0, answered = 0;
		for (; i < it->scope.n && n < set; i++)
			if (it->scope.v[i].kind == k && !it->scope.v[i].gone)
				pos[n++] = i;
		if (n == 0)
			break;
		r = delete_set(it, k, pos, n, 0, &answered);
		if (!it->ctx->dry_run)
			progress(it, it->classes[k]);
		if (!it->archiving && answered > 0) {
			set = (size_t)((double)ANSWER_MAX * (double)n / (double)answered);
			set = set > set_max ? set_max : set < it->chunk ? it->chunk : set;
		}
	}
	free(pos);
	return r;
}

/* The post-condition: the scope enumerated again, anything found fails the task. */
static int check_left(struct itop *it)
{
	struct scope again = { 0 };
	int r = enumerate_scope(it, &again, false);
	if (r == 0) {
		for (size_t i = 0; i < again.n; i++)
			backend_remaining(it->ctx, it->classes[again.v[i].kind], again.v[i].id, again.v[i].name);
		r = backend_check_remaining(it->ctx, "they were created or changed in iTop during the purge, or iTop kept "
					    "them: run the purge again, and find out what writes to iTop meanwhile");
	}
	scope_clear(&again);
	return r;
}

static int split_classes(struct itop *it, const char *list)
{
	char *copy = xstrdup(list);
	for (char *save = NULL, *c = strtok_r(copy, ", ", &save); c; c = strtok_r(NULL, ", ", &save)) {
		bool dup = false;
		for (size_t i = 0; i < it->n_classes; i++)
			dup |= !strcmp(it->classes[i], c);
		if (dup)
			continue; /* a class is counted once */
		it->classes = xrealloc(it->classes, (it->n_classes + 1) * sizeof(*it->classes));
		it->classes[it->n_classes++] = xstrdup(c);
	}
	free(copy);
	it->absent = xcalloc(it->n_classes + 1, sizeof(*it->absent));
	if (it->n_classes == 0)
		return backend_fail(it->ctx, "itop '%s': classes names no class; remove it to purge the whole database",
				    it->ctx->target);
	return 0;
}

static int itop_prepare(struct backend_ctx *ctx, struct sandbox_policy *p)
{
	return backend_prepare_http(ctx, p, NULL);
}

static int itop_run(struct backend_ctx *ctx)
{
	struct itop it = { .ctx = ctx };
	const char *classes = json_string_value(json_object_get(ctx->settings, "classes"));
	json_t *chunk = json_object_get(ctx->settings, "chunk"), *timeout = json_object_get(ctx->settings, "timeout");
	/* A REST body's credentials, when the target accepts them, replace the configured ones. */
	const char *user = json_string_value(json_object_get(ctx->secrets, "request_username"));
	const char *pw = json_string_value(json_object_get(ctx->secrets, "request_password"));
	if (!user || !pw) {
		user = json_string_value(json_object_get(ctx->settings, "user"));
		pw = json_string_value(json_object_get(ctx->secrets, "password"));
	}
	char *eu = http_escape(ctx->http, user ? user : ""), *ep = http_escape(ctx->http, pw ? pw : "");
	int r = -1;

	it.auth = xasprintf("auth_user=%s&auth_pwd=%s", eu, ep);
	free(eu);
	freezero_str(ep);
	it.version = json_string_value(json_object_get(ctx->settings, "api_version"));
	if (!it.version)
		it.version = "1.3";
	it.url = http_client_url(ctx->http);
	it.chunk = json_is_integer(chunk) && json_integer_value(chunk) > 0 ? (unsigned)json_integer_value(chunk) : 200;
	it.timeout = json_is_integer(timeout) ? (long)json_integer_value(timeout) : 60;
	it.custom = classes != NULL;
	it.kept = json_object();
	it.cascades = json_object();
	it.plan = json_object();
	it.archiving = !ctx->dry_run && backend_archiving(ctx);
	it.archived = json_object();
	it.unarchived = json_object();
	if (split_classes(&it, classes ? classes : default_classes) < 0)
		goto finish;

	it.keep_persons = collect(&it, "User", "SELECT User", "contactid");
	if (!it.keep_persons)
		goto finish;
	char *oql = *it.keep_persons ? xasprintf("SELECT Person WHERE id IN (%s)", it.keep_persons) : NULL;
	it.keep_orgs = oql ? collect(&it, "Person", oql, "org_id") : xstrdup("");
	free(oql);
	if (!it.keep_orgs)
		goto finish;
	if (*it.keep_orgs) {
		char *save = NULL, *copy = xstrdup(it.keep_orgs);
		for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save))
			set_add(it.kept, "Organization", strtoll(id, NULL, 10));
		free(copy);
	}


	/* The scope, enumerated: progress counts its objects, the plan counts them per kind. */
	if (enumerate_scope(&it, &it.scope, true) < 0)
		goto finish;
	it.total = it.scope.n;
	/* About 4 KiB of JSON per object with all its fields (cascades outside the scope included). */
	if (it.archiving && backend_archive_reserve(ctx, (uint64_t)it.scope.n * 4096 + 65536) < 0)
		goto finish;
	if (ctx->dry_run) {
		for (size_t i = 0; i < it.scope.n; i++) {
			const char *kind = it.classes[it.scope.v[i].kind];
			json_t *v = json_object_get(it.plan, kind);
			json_object_set_new(it.plan, kind, json_integer(v ? json_integer_value(v) + 1 : 1));
		}
	} else {
		progress(&it, "objects");
	}
	for (unsigned k = 0; k < it.n_classes; k++)
		if (purge_kind(&it, k) < 0)
			goto finish;
	if (ctx->dry_run) {
		const char *kind;
		json_t *v;
		json_object_foreach(it.plan, kind, v)
			backend_count(ctx, kind, (uint64_t)json_integer_value(v));
		r = 0;
	} else {
		backend_flush(ctx);
		r = check_left(&it);
	}
finish:;
	if (json_object_size(it.unarchived)) {
		char list[300] = "";
		const char *cls;
		json_t *v;
		uint64_t sum = 0;
		json_object_foreach(it.unarchived, cls, v) {
			sum += (uint64_t)json_integer_value(v);
			if (strlen(list) + strlen(cls) + 24 < sizeof(list))
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%lld %s",
					 *list ? ", " : "", (long long)json_integer_value(v), cls);
		}
		backend_warn(ctx, "iTop deleted %llu object(s) in cascade that its simulation had not announced (created "
			     "in between): %s; they are in the manifest but not in the archive", (unsigned long long)sum,
			     list);
	}
	unsigned long requests = 0, connections = 0;
	http_client_stats(ctx->http, &requests, &connections);
	log_info("itop '%s': %s of %llu objects in scope: %lu requests over %lu connections", ctx->target,
		 ctx->dry_run ? "plan" : "purge", (unsigned long long)it.total, requests, connections);
	freezero_str(it.auth);
	free(it.keep_persons);
	free(it.keep_orgs);
	json_decref(it.kept);
	json_decref(it.cascades);
	json_decref(it.plan);
	json_decref(it.archived);
	json_decref(it.unarchived);
	scope_clear(&it.scope);
	for (size_t i = 0; i < it.n_classes; i++)
		free(it.classes[i]);
	free(it.classes);
	free(it.absent);
	return r;
}

const struct backend_ops backend_itop = {
	.type = "itop",
	.prepare = itop_prepare,
	.run = itop_run,
};
