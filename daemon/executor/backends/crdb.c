/*
 * crdb: purge the Redis instances of an Active-Active database that was
 * removed by force, on this host (Redis Enterprise's PUT /v1/crdbs/{guid}/purge).
 * Per instance: connect, authenticate, PING, count (DBSIZE), delete with
 * SCAN + UNLINK in batches (progress per key; UNLINK's reply is the confirmed
 * count, streamed as "instance N"), then the post-condition: DBSIZE must be 0;
 * keys written meanwhile are not deleted unseen but reported as remaining
 * (up to 20 names) and fail the purge. A stop request (SIGTERM) ends the
 * purge between two batches, with DBSIZE saying what is left. An instance
 * that fails fails alone: its error names it (cluster_name = instance id)
 * and the others are purged.
 * Executor only: runs inside the sandbox, TCP only to the instances' ports.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/backend.h"

#define BATCH 1000
#define CONNECT_TIMEOUT_SEC 10
#define COMMAND_TIMEOUT_SEC 60

struct instance {
	const char *id;
	const json_t *conf;      /* {host, port, db} or {socket, db} */
	const char *password;    /* borrowed from the job's secrets */
	redisContext *rc;
	long long keys;          /* DBSIZE before */
	bool failed;
};

static void fail_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *code,
			  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *code,
			  const char *fmt, ...)
{
	char desc[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	(void)ctx;
	in->failed = true;
	json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "cluster_name", in->id, "error_code", code,
						"description", desc));
}

/* Run a command; on an error reply or a broken connection, fail the instance. Returns the reply or NULL. */
static redisReply *command(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *step,
			   int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(in->rc, argc, argv, NULL);
	if (!r) {
		fail_instance(ctx, errors, in, "unreachable", "instance %s: %s failed: %s", in->id, step,
			      in->rc->errstr[0] ? in->rc->errstr : "connection lost");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		bool auth = strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0 ||
			    strstr(r->str, "invalid password");
		fail_instance(ctx, errors, in, auth ? "auth" : "redis_error", "instance %s: %s refused: %s%s", in->id,
			      step, r->str,
			      auth ? (in->password ? " (check password_file)" : " (set password_file for it)") : "");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static long long dbsize(struct backend_ctx *ctx, json_t *errors, struct instance *in)
{
	const char *argv[] = { "DBSIZE" };
	redisReply *r = command(ctx, errors, in, "DBSIZE", 1, argv);
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	if (r && n < 0)
		fail_instance(ctx, errors, in, "redis_error", "instance %s: DBSIZE gave no number", in->id);
	freeReplyObject(r);
	return n;
}

static void open_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in)
{
	struct timeval ct = { CONNECT_TIMEOUT_SEC, 0 }, cmd = { COMMAND_TIMEOUT_SEC, 0 };
	const char *sock = json_string_value(json_object_get(in->conf, "socket"));
	char db[16], where[160];
	redisReply *r;

	if (sock) {
		snprintf(where, sizeof(where), "unix:%s", sock);
		in->rc = redisConnectUnixWithTimeout(sock, ct);
	} else {
		const char *host = json_string_value(json_object_get(in->conf, "host"));
		int port = (int)json_integer_value(json_object_get(in->conf, "port"));
		snprintf(where, sizeof(where), "%s:%d", host, port);
		in->rc = redisConnectWithTimeout(host, port, ct);
	}
	if (!in->rc || in->rc->err) {
		fail_instance(ctx, errors, in, "unreachable", "instance %s (%s): cannot connect: %s", in->id, where,
			      in->rc ? in->rc->errstr : "out of memory");
		return;
	}
	redisSetTimeout(in->rc, cmd);
	if (in->password) {
		const char *argv[] = { "AUTH", in->password };
		r = command(ctx, errors, in, "AUTH", 2, argv);
		if (!r)
			return;
		freeReplyObject(r);
	}
	const char *ping[] = { "PING" };
	r = command(ctx, errors, in, "PING", 1, ping);
	if (!r)
		return;
	freeReplyObject(r);
	snprintf(db, sizeof(db), "%lld", (long long)json_integer_value(json_object_get(in->conf, "db")));
	const char *sel[] = { "SELECT", db };
	r = command(ctx, errors, in, "SELECT", 2, sel);
	if (!r)
		return;
	freeReplyObject(r);
	in->keys = dbsize(ctx, errors, in);
}

/* Post-condition: report what an instance still holds (DBSIZE, and up to 20 key names). */
static void check_empty(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *kind)
{
	long long left = dbsize(ctx, errors, in);
	if (left <= 0)
		return;
	char cursor[32] = "0";
	long long named = 0;
	/* Names for the first 20 (SCAN pages may be empty: a few pages at most). */
	for (int page = 0; page < 100 && named < 20 && named < left; page++) {
		const char *scan[] = { "SCAN", cursor, "COUNT", "100" };
		redisReply *r = command(ctx, errors, in, "SCAN", 4, scan);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			break;
		}
		redisReply *keys = r->element[1];
		for (size_t i = 0; i < keys->elements && named < 20 && named < left; i++, named++)
			backend_remaining(ctx, kind, -1, keys->element[i]->str);
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		freeReplyObject(r);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	for (; named < left; named++)
		backend_remaining(ctx, kind, -1, NULL);
	if (!in->failed)
		fail_instance(ctx, errors, in, "not_empty",
			      "instance %s: %lld keys remain after the purge (written while it ran?): stop the "
			      "database's clients, then purge again", in->id, left);
}

/* SCAN + UNLINK in batches, each batch's UNLINK reply reported as confirmed deletions. */
static void purge_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *kind,
			   uint64_t *done, uint64_t total)
{
	char cursor[32] = "0";

	backend_deleted_n(ctx, kind, 0); /* the instance shows in the counts even with nothing to delete */
	do {
		if (backend_stopping(ctx))
			return;
		const char *scan[] = { "SCAN", cursor, "COUNT", "1000" };
		redisReply *r = command(ctx, errors, in, "SCAN", 4, scan);
		if (!r)
			return;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			fail_instance(ctx, errors, in, "redis_error", "instance %s: unexpected SCAN reply", in->id);
			return;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		redisReply *keys = r->element[1];
		if (keys->elements > 0) {
			const char **argv = calloc(keys->elements + 1, sizeof(char *));
			size_t *lens = calloc(keys->elements + 1, sizeof(size_t));
			if (!argv || !lens)
				abort();
			argv[0] = "UNLINK";
			lens[0] = 6;
			for (size_t i = 0; i < keys->elements; i++) {
				argv[i + 1] = keys->element[i]->str;
				lens[i + 1] = keys->element[i]->len;
			}
			redisReply *u = redisCommandArgv(in->rc, (int)keys->elements + 1, argv, lens);
			free(argv);
			free(lens);
			if (!u || u->type != REDIS_REPLY_INTEGER) {
				/* Without a reply the batch's outcome is unknown: the post-condition's DBSIZE tells. */
				fail_instance(ctx, errors, in, u ? "redis_error" : "unreachable",
					      "instance %s: UNLINK failed: %s", in->id,
					      u && u->type == REDIS_REPLY_ERROR ? u->str : in->rc->errstr);
				freeReplyObject(u);
				freeReplyObject(r);
				return;
			}
			backend_deleted_n(ctx, kind, (uint64_t)u->integer);
			*done += (uint64_t)u->integer;
			freeReplyObject(u);
			backend_progress(ctx, "keys", *done < total ? *done : total, total);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
}

/* Whether every instance that failed failed only its post-condition. */
static bool only_not_empty(const json_t *errors)
{
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e)
		if (strcmp(json_string_value(json_object_get(e, "error_code")), "not_empty") != 0)
			return false;
	return true;
}

static int crdb_prepare(struct backend_ctx *ctx, struct sandbox_policy *p)
{
	const json_t *inst = json_object_get(ctx->settings, "instances");
	const char *id;
	json_t *conf;

	p->network = true;
	json_object_foreach((json_t *)inst, id, conf) {
		json_int_t port = json_integer_value(json_object_get(conf, "port"));
		bool seen = false;
		if (!port)
			continue;
		for (size_t i = 0; i < p->n_tcp_ports; i++)
			seen |= p->tcp_ports[i] == port;
		if (!seen && p->n_tcp_ports < SANDBOX_MAX_PORTS)
			p->tcp_ports[p->n_tcp_ports++] = (uint16_t)port;
	}
	return 0;
}

static int crdb_run(struct backend_ctx *ctx)
{
	const json_t *inst = json_object_get(ctx->settings, "instances");
	size_t n = json_object_size(inst), k = 0, failed = 0;
	struct instance *v = calloc(n ? n : 1, sizeof(*v));
	json_t *errors = json_array();
	uint64_t total = 0, done = 0;
	const char *id;
	json_t *conf;
	char key[64];

	if (!v)
		abort();
	json_object_foreach((json_t *)inst, id, conf) {
		char skey[32];
		snprintf(skey, sizeof(skey), "password.%s", id);
		v[k].id = id;
		v[k].conf = conf;
		v[k].password = json_string_value(json_object_get(ctx->secrets, skey));
		open_instance(ctx, errors, &v[k]);
		if (!v[k].failed)
			total += (uint64_t)v[k].keys;
		k++;
	}
	if (!ctx->dry_run)
		backend_progress(ctx, "keys", 0, total);
	for (k = 0; k < n; k++) {
		snprintf(key, sizeof(key), "instance %s", v[k].id);
		if (v[k].failed)
			continue;
		if (ctx->dry_run) {
			backend_count(ctx, key, (uint64_t)v[k].keys);
			continue;
		}
		purge_instance(ctx, errors, &v[k], key, &done, total);
	}
	if (!ctx->dry_run)
		backend_progress(ctx, "keys", done < total ? done : total, total);
	/* Post-condition, and what a stop request leaves: DBSIZE on every instance that answers. */
	long long left = 0;
	for (k = 0; k < n && !ctx->dry_run; k++) {
		if (!v[k].rc || v[k].rc->err)
			continue;
		snprintf(key, sizeof(key), "instance %s", v[k].id);
		if (backend_stopping(ctx)) {
			long long l = dbsize(ctx, errors, &v[k]);
			left += l > 0 ? l : 0;
		} else {
			check_empty(ctx, errors, &v[k], key);
		}
	}
	for (k = 0; k < n; k++) {
		failed += v[k].failed;
		if (v[k].rc)
			redisFree(v[k].rc);
	}
	free(v);
	ctx->errors = errors;
	if (backend_stopping(ctx) && !ctx->dry_run)
		return backend_fail(ctx, "crdb: stopped on request after %llu keys; reconciled: DBSIZE says %lld "
				    "keys remain", (unsigned long long)done, left);
	if (failed && only_not_empty(errors))
		return backend_check_remaining(ctx, "something still writes to the database: stop its clients, "
					       "then purge again");
	if (failed)
		return backend_fail(ctx, "%zu of %zu instance(s) failed: %s", failed, n,
				    json_string_value(json_object_get(json_array_get(errors, 0), "description")));
	return 0;
}

const struct backend_ops backend_crdb = {
	.type = "crdb",
	.prepare = crdb_prepare,
	.run = crdb_run,
};
