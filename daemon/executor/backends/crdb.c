/*
 * crdb: purge the Redis instances of an Active-Active database that was
 * removed by force, on this host (Redis Enterprise's PUT /v1/crdbs/{guid}/purge).
 * Per instance: connect, authenticate, PING, count (DBSIZE), delete with
 * SCAN + UNLINK in batches (progress per key), FLUSHDB for keys written
 * meanwhile, and confirm DBSIZE is 0. An instance that fails fails alone: its
 * error names it (cluster_name = instance id) and the others are purged.
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

/* SCAN + UNLINK in batches, reporting each batch; then FLUSHDB and check that nothing is left. */
static long long purge_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in, uint64_t *done,
				uint64_t total)
{
	char cursor[32] = "0";
	long long deleted = 0;

	do {
		const char *scan[] = { "SCAN", cursor, "COUNT", "1000" };
		redisReply *r = command(ctx, errors, in, "SCAN", 4, scan);
		if (!r)
			return deleted;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			fail_instance(ctx, errors, in, "redis_error", "instance %s: unexpected SCAN reply", in->id);
			return deleted;
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
				fail_instance(ctx, errors, in, u ? "redis_error" : "unreachable",
					      "instance %s: UNLINK failed: %s", in->id,
					      u && u->type == REDIS_REPLY_ERROR ? u->str : in->rc->errstr);
				freeReplyObject(u);
				freeReplyObject(r);
				return deleted;
			}
			deleted += u->integer;
			*done += (uint64_t)u->integer;
			freeReplyObject(u);
			backend_progress(ctx, "keys", *done < total ? *done : total, total);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);

	/* Keys written while we scanned (a replica still syncing) go too. */
	long long left = dbsize(ctx, errors, in);
	if (left > 0) {
		const char *flush[] = { "FLUSHDB" };
		redisReply *r = command(ctx, errors, in, "FLUSHDB", 1, flush);
		if (!r)
			return deleted;
		freeReplyObject(r);
		deleted += left;
		left = dbsize(ctx, errors, in);
	}
	if (left != 0 && !in->failed)
		fail_instance(ctx, errors, in, "not_empty", "instance %s: %lld keys remain after the purge", in->id, left);
	return deleted;
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
		if (v[k].failed) {
			failed++;
			continue;
		}
		if (ctx->dry_run) {
			backend_count(ctx, key, (uint64_t)v[k].keys);
			continue;
		}
		long long deleted = purge_instance(ctx, errors, &v[k], &done, total);
		backend_count(ctx, key, (uint64_t)deleted);
		failed += v[k].failed;
	}
	if (!ctx->dry_run)
		backend_progress(ctx, "keys", done < total ? done : total, total);
	for (k = 0; k < n; k++)
		if (v[k].rc)
			redisFree(v[k].rc);
	free(v);
	ctx->errors = errors;
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
