/*
 * The crdb driver's pieces shared by its two files: crdb.c (connections, the
 * plan, the purge by flush) and crdb_archive.c (the purge that archives
 * before it deletes, and the restore). Executor only.
 */
#pragma once
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "daemon/executor/backend.h"

struct instance {
	const char *id;
	const json_t *conf;      /* {host, port, db} or {socket, db} */
	const char *password;    /* borrowed from the job's secrets */
	redisContext *rc;
	long long keys;          /* DBSIZE before */
	bool failed;
};

/* Mark @in failed and add its error ({cluster_name, error_code, description}) to @errors. */
void crdb_fail_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *code,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The answer to a command already queued; on an error answer or a broken connection, fail the
 * instance (naming @step). Returns the reply or NULL. */
redisReply *crdb_answer(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *step);
/* Run one command the same way. */
redisReply *crdb_command(struct backend_ctx *ctx, json_t *errors, struct instance *in, const char *step,
			 int argc, const char **argv);
/* Write what is queued without waiting for answers. 0, or -1 when not all of it was written. */
int crdb_send_queued(struct instance *in);
/* The answer to a DBSIZE already queued: the number, or -1 (the instance failed). */
long long crdb_dbsize_answer(struct backend_ctx *ctx, json_t *errors, struct instance *in);
void crdb_drop_connection(struct instance *in);
/* The job's instances (settings.instances, secrets password.N) into @v, which holds as many. */
void crdb_instances(struct backend_ctx *ctx, struct instance *v);
/* Connect, AUTH, PING, SELECT, DBSIZE (in->keys); on failure in->failed, no connection. */
void crdb_open_instance(struct backend_ctx *ctx, json_t *errors, struct instance *in);
/* After a lost answer: a new connection, and what DBSIZE finds there (-1: not known). */
long long crdb_reconnect(struct backend_ctx *ctx, struct instance *in);

/* crdb_archive.c. The instances are open (failed ones skipped). Archive every key, then delete
 * exactly what was archived; *done counts the keys deleted. 0, or -1 with ctx->error set when the
 * archive failed (nothing more is deleted then); an instance's own failure is in @errors. */
int crdb_archive_purge(struct backend_ctx *ctx, json_t *errors, struct instance *v, size_t n, uint64_t *done,
		       uint64_t total);
/* Operation "restore": put back the keys of the archive on fd 4. 0, or -1 with ctx->error set. */
int crdb_restore(struct backend_ctx *ctx);
