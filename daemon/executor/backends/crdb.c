/*
 * crdb: purge the Redis instances of an Active-Active database that was
 * removed by force, on this host (Redis Enterprise's PUT /v1/crdbs/{guid}/purge).
 * Per instance: connect, authenticate, PING, SELECT, count (DBSIZE: the plan).
 * The purge is one transaction per instance, MULTI; DBSIZE; FLUSHDB ASYNC; EXEC:
 * nothing runs between its DBSIZE and its flush, so that DBSIZE is exactly what
 * the flush removed, the confirmed count (streamed as "instance N"); ASYNC swaps
 * the keyspace out at once and leaves freeing the memory to the server's
 * background thread, so its other clients are not blocked (a synchronous flush
 * of 1 000 000 keys stops the server for about a second). The instances are
 * driven together: every transaction is sent before any answer is read.
 * Post-condition: DBSIZE must be 0; keys written after the flush are reported
 * as remaining (up to 20 names) and fail the purge. A stop request (SIGTERM)
 * before the flush flushes nothing; once the flush is sent its answer (the
 * count) is awaited. An answer lost (connection dropped, timeout) leaves the
 * outcome unknown: the driver reconnects and says what DBSIZE finds, and
 * claims no count. An instance that fails fails alone: its error names it
 * (cluster_name = instance id) and the others are purged.
 * Nothing is deleted by name here. With archive = yes the purge is another
 * path (crdb_archive.c: every key archived, then exactly those deleted by
 * name), and the restore of such an archive is there too.
 * Executor only: runs inside the sandbox, TCP only to the instances' ports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/archive.h"
#include "daemon/executor/backends/crdb.h"

#define CONNECT_TIMEOUT_SEC 10
#define COMMAND_TIMEOUT_SEC 60

void crdb_fail_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *code,
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

/* The answer to a command already queued (redisAppendCommand*); on an error answer or a broken
 * connection, fail the instance. Returns the reply or NULL. */
redisReply *crdb_answer(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *step)
{
	redisReply *r = NULL;
	if (redisGetReply(in->rc, (void **)&r) != REDIS_OK || !r) {
		crdb_fail_instance(ctx, errors, in, "unreachable", "instance %s: %s failed: %s", in->id, step,
			      in->rc->errstr[0] ? in->rc->errstr : "connection lost");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		bool auth = strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0 ||
			    strstr(r->str, "invalid password");
		crdb_fail_instance(ctx, errors, in, auth ? "auth" : "redis_error", "instance %s: %s refused: %s%s", in->id,
			      step, r->str,
			      auth ? (in->password ? " (check password_file)" : " (set password_file for it)") : "");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* Run a command; on an error reply or a broken connection, fail the instance. Returns the reply or NULL. */
redisReply *crdb_command(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *step,
			   int argc, const char **argv)
{
	if (redisAppendCommandArgv(in->rc, argc, argv, NULL) != REDIS_OK) {
		crdb_fail_instance(ctx, errors, in, "unreachable", "instance %s: %s failed: %s", in->id, step,
			      in->rc->errstr[0] ? in->rc->errstr : "out of memory");
		return NULL;
	}
	return crdb_answer(ctx, errors, in, step);
}

/* Write what is queued without waiting for answers. 0, or -1 when not all of it was written. */
int crdb_send_queued(struct instance *in)
{
	int done = 0;
	while (!done)
		if (redisBufferWrite(in->rc, &done) != REDIS_OK)
			return -1;
	return 0;
}

/* The answer to a DBSIZE already queued: the number, or -1 (the instance failed). */
long long crdb_dbsize_answer(struct backend_ctx *ctx, json_t *errors, struct instance *in)
{
	redisReply *r = crdb_answer(ctx, errors, in, "DBSIZE");
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	if (r && n < 0)
		crdb_fail_instance(ctx, errors, in, "redis_error", "instance %s: DBSIZE gave no number", in->id);
	freeReplyObject(r);
	return n;
}

void crdb_drop_connection(struct instance *in)
{
	if (in->rc)
		redisFree(in->rc);
	in->rc = NULL;
}

/* Connect, and send AUTH, PING, SELECT and DBSIZE without waiting: the instances are opened together. */
static void open_send(struct backend_ctx *ctx, json_t *errors, struct instance *in)
{
	struct timeval ct = { CONNECT_TIMEOUT_SEC, 0 }, cmd = { COMMAND_TIMEOUT_SEC, 0 };
	const char *sock = json_string_value(json_object_get(in->conf, "socket"));
	char db[16], where[160];

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
		crdb_fail_instance(ctx, errors, in, "unreachable", "instance %s (%s): cannot connect: %s", in->id, where,
			      in->rc ? in->rc->errstr : "out of memory");
		crdb_drop_connection(in);
		return;
	}
	redisSetTimeout(in->rc, cmd);
	snprintf(db, sizeof(db), "%lld", (long long)json_integer_value(json_object_get(in->conf, "db")));
	const char *auth[] = { "AUTH", in->password }, *sel[] = { "SELECT", db };
	if ((in->password && redisAppendCommandArgv(in->rc, 2, auth, NULL) != REDIS_OK) ||
	    redisAppendCommand(in->rc, "PING") != REDIS_OK || redisAppendCommandArgv(in->rc, 2, sel, NULL) != REDIS_OK ||
	    redisAppendCommand(in->rc, "DBSIZE") != REDIS_OK || crdb_send_queued(in) != 0) {
		crdb_fail_instance(ctx, errors, in, "unreachable", "instance %s (%s): cannot send: %s", in->id, where,
			      in->rc->errstr[0] ? in->rc->errstr : "out of memory");
		crdb_drop_connection(in);
	}
}

/* Read the answers open_send() asked for; DBSIZE is the plan's count. A failed instance is
 * disconnected (its later answers would be read out of order). */
static void open_finish(struct backend_ctx *ctx, json_t *errors, struct instance *in)
{
	static const char *const steps[] = { "AUTH", "PING", "SELECT" };

	if (in->failed)
		return;
	for (size_t i = in->password ? 0 : 1; i < 3; i++) {
		redisReply *r = crdb_answer(ctx, errors, in, steps[i]);
		if (!r) {
			crdb_drop_connection(in);
			return;
		}
		freeReplyObject(r);
	}
	in->keys = crdb_dbsize_answer(ctx, errors, in);
	if (in->keys < 0)
		crdb_drop_connection(in);
}

void crdb_open_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in)
{
	open_send(ctx, errors, in);
	open_finish(ctx, errors, in);
}

/* Post-condition: report what an instance still holds (@left, its DBSIZE, and up to 20 key names). */
static void check_empty(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *kind,
			long long left)
{
	if (left <= 0)
		return;
	char cursor[32] = "0";
	long long named = 0;
	/* Names for the first 20 (SCAN pages may be empty: a few pages at most). */
	for (int page = 0; page < 100 && named < 20 && named < left; page++) {
		const char *scan[] = { "SCAN", cursor, "COUNT", "100" };
		redisReply *r = crdb_command(ctx, errors, in, "SCAN", 4, scan);
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
		crdb_fail_instance(ctx, errors, in, "not_empty",
			      "instance %s: %lld keys remain after the purge (written while it ran?): stop the "
			      "database's clients, then purge again", in->id, left);
}

/* Send MULTI; DBSIZE; FLUSHDB ASYNC; EXEC without waiting. 0, or -1 when not all of it was written. */
static int send_flush(struct instance *in)
{
	if (redisAppendCommand(in->rc, "MULTI") != REDIS_OK || redisAppendCommand(in->rc, "DBSIZE") != REDIS_OK ||
	    redisAppendCommand(in->rc, "FLUSHDB ASYNC") != REDIS_OK || redisAppendCommand(in->rc, "EXEC") != REDIS_OK)
		return -1;
	return crdb_send_queued(in);
}

/* After a lost answer: a new connection, and what DBSIZE finds there (-1: not known). */
long long crdb_reconnect(struct backend_ctx *ctx, struct instance *in)
{
	json_t *scratch = json_array();
	bool failed = in->failed;

	crdb_drop_connection(in);
	in->failed = false;
	in->keys = -1;
	crdb_open_instance(ctx, scratch, in); /* on failure: no connection, keys -1 */
	long long left = in->rc ? in->keys : -1;
	in->failed = failed;
	json_decref(scratch);
	return left;
}

/* Read the transaction's four answers; the EXEC's DBSIZE is the confirmed count. */
static void finish_flush(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *kind,
			 bool sent, uint64_t *done, uint64_t total)
{
	redisReply *r[4] = { 0 };
	const char *lost = NULL;
	char why[200];
	size_t i;

	for (i = 0; i < 4 && sent; i++)
		if (redisGetReply(in->rc, (void **)&r[i]) != REDIS_OK || !r[i])
			break;
	if (!sent || i < 4) {
		snprintf(why, sizeof(why), "%s", in->rc->errstr[0] ? in->rc->errstr : "connection lost");
		lost = why;
	}
	redisReply *x = r[3];
	if (!lost && x->type == REDIS_REPLY_ARRAY && x->elements == 2 && x->element[0]->type == REDIS_REPLY_INTEGER &&
	    x->element[0]->integer >= 0 && x->element[1]->type == REDIS_REPLY_STATUS) {
		uint64_t n = (uint64_t)x->element[0]->integer;
		backend_deleted_n(ctx, kind, n);
		*done += n;
		backend_progress(ctx, "keys", *done < total ? *done : total, total);
	} else if (!lost) {
		/* Refused (EXECABORT: a command was refused when queued; nothing ran) or an error inside EXEC. */
		const char *msg = "unexpected answer to EXEC";
		for (i = 0; i < 4; i++)
			if (r[i]->type == REDIS_REPLY_ERROR && strncmp(r[i]->str, "EXECABORT", 9) != 0) {
				msg = r[i]->str;
				break;
			}
		if (x->type == REDIS_REPLY_ARRAY)
			for (i = 0; i < x->elements; i++)
				if (x->element[i]->type == REDIS_REPLY_ERROR)
					msg = x->element[i]->str;
		crdb_fail_instance(ctx, errors, in, "redis_error",
			      "instance %s: the flush (MULTI; DBSIZE; FLUSHDB ASYNC; EXEC) was refused: %s: nothing "
			      "was deleted; allow those commands to purged's connection (ACL, rename-command), "
			      "then purge again", in->id, msg);
	}
	for (i = 0; i < 4; i++)
		freeReplyObject(r[i]);
	if (!lost)
		return;
	/* Uncertain: the flush may or may not have run. Say what a new connection finds. */
	long long before = in->keys, left = crdb_reconnect(ctx, in);
	char found[120];
	if (left >= 0)
		snprintf(found, sizeof(found), "reconnected: DBSIZE says %lld keys remain (%lld before)", left, before);
	else
		snprintf(found, sizeof(found), "could not reconnect to see what remains");
	crdb_fail_instance(ctx, errors, in, "unreachable",
		      "instance %s: the answer to the flush was lost (%s), so whether it ran is unknown and no "
		      "count is claimed; %s: check the instance, then purge again", in->id, lost, found);
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

void crdb_instances(struct backend_ctx *ctx, struct instance *v)
{
	const json_t *inst = json_object_get(ctx->settings, "instances");
	const char *id;
	json_t *conf;
	size_t k = 0;

	json_object_foreach((json_t *)inst, id, conf) {
		char skey[32];
		snprintf(skey, sizeof(skey), "password.%s", id);
		v[k].id = id;
		v[k].conf = conf;
		v[k].password = json_string_value(json_object_get(ctx->secrets, skey));
		k++;
	}
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
	char key[64];

	if (strcmp(ctx->operation, "restore") == 0) {
		free(v);
		json_decref(errors);
		return crdb_restore(ctx);
	}
	if (!v)
		abort();
	crdb_instances(ctx, v);
	for (k = 0; k < n; k++)
		open_send(ctx, errors, &v[k]);
	for (k = 0; k < n; k++) {
		open_finish(ctx, errors, &v[k]);
		if (!v[k].failed)
			total += (uint64_t)v[k].keys;
	}
	if (!ctx->dry_run)
		backend_progress(ctx, "keys", 0, total);
	for (k = 0; k < n && ctx->dry_run; k++) {
		snprintf(key, sizeof(key), "instance %s", v[k].id);
		if (!v[k].failed)
			backend_count(ctx, key, (uint64_t)v[k].keys);
	}
	if (!ctx->dry_run && backend_archiving(ctx) &&
	    crdb_archive_purge(ctx, errors, v, n, &done, total) < 0) {
		/* The archive failed (ctx->error): nothing more is deleted, not even a post-condition is asked. */
		for (k = 0; k < n; k++)
			crdb_drop_connection(&v[k]);
		free(v);
		ctx->errors = errors;
		return -1;
	}
	/* Every instance's flush is sent before any answer is read: the servers work together. */
	bool *sent = calloc(n ? n : 1, sizeof(*sent));
	if (!sent)
		abort();
	for (k = 0; k < n && !ctx->dry_run && !backend_archiving(ctx); k++) {
		if (v[k].failed)
			continue;
		snprintf(key, sizeof(key), "instance %s", v[k].id);
		backend_deleted_n(ctx, key, 0); /* the instance shows in the counts even with nothing to delete */
		if (backend_stopping(ctx))
			continue; /* nothing sent: the post-condition's DBSIZE says what stays */
		sent[k] = send_flush(&v[k]) == 0;
		if (!sent[k])
			finish_flush(ctx, errors, &v[k], key, false, &done, total);
	}
	for (k = 0; k < n; k++) {
		if (!sent[k])
			continue;
		snprintf(key, sizeof(key), "instance %s", v[k].id);
		finish_flush(ctx, errors, &v[k], key, true, &done, total);
	}
	free(sent);
	if (!ctx->dry_run)
		backend_progress(ctx, "keys", done < total ? done : total, total);
	/* Post-condition, and what a stop request leaves: DBSIZE on every instance that answers, asked of
	 * all before any answer is read. */
	long long left = 0;
	for (k = 0; k < n && !ctx->dry_run; k++)
		if (v[k].rc && !v[k].rc->err && redisAppendCommand(v[k].rc, "DBSIZE") == REDIS_OK)
			(void)crdb_send_queued(&v[k]); /* a failure shows in the answer */
	for (k = 0; k < n && !ctx->dry_run; k++) {
		if (!v[k].rc || v[k].rc->err)
			continue;
		snprintf(key, sizeof(key), "instance %s", v[k].id);
		long long l = crdb_dbsize_answer(ctx, errors, &v[k]);
		if (backend_stopping(ctx))
			left += l > 0 ? l : 0;
		else
			check_empty(ctx, errors, &v[k], key, l);
	}
	for (k = 0; k < n; k++) {
		failed += v[k].failed;
		crdb_drop_connection(&v[k]);
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
