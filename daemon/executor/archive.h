/*
 * The archive of what a purge deletes (archive = yes), and its reading by a
 * restore. The supervisor opens archive_dir/TASK.jsonl.zst and hands this
 * process one descriptor, fd 4: write-only for a purge, read-only for a
 * restore, so the sandbox opens nothing and no archive byte crosses the
 * supervisor's event loop. Content: zstd frames of JSON lines; line 1 is a
 * header ({"purged_archive": 1, task_id, target, type, created}), every
 * other line is a record a driver added. Executor only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "daemon/executor/backend.h"
#include "purged/messages.h"

#define ARCHIVE_FD 4

/*
 * main.c, after the job is read and before the sandbox closes: set up the
 * job's "archive" ({mode: write, max_bytes} or {mode: read, sha256}; NULL:
 * none) on ARCHIVE_FD; when writing, RLIMIT_FSIZE becomes max_bytes (main.c
 * sets it to 0 otherwise). Returns 0, or -1 with ctx->error set.
 */
int archive_open(struct backend_ctx *ctx, const json_t *spec, const char *type);
/* main.c, before the result: what was written and sealed, into the result's
 * archive fields (@sha: where its SHA-256 is written); frees the state. */
void archive_close(struct backend_ctx *ctx, struct msg_result *res, char sha[65]);

/* A purge that must archive before it deletes. */
bool backend_archiving(const struct backend_ctx *ctx);
/*
 * Before exporting anything: refuse (-1, ctx->error set) when @estimate
 * bytes (the uncompressed JSON the driver expects to write: conservative)
 * exceed archive_max_bytes, or the archive's file system's free space less a
 * reserve (64 MiB or 2 %, whichever is more, so the journal beside it goes on).
 */
int backend_archive_reserve(struct backend_ctx *ctx, uint64_t estimate);
/*
 * Add one record (stolen; must be an object). Compressed into memory, and
 * written to the file as the compressor's buffer fills. -1 with ctx->error
 * set on any failure (disk full, over archive_max_bytes, ENOMEM): the driver
 * then deletes nothing more and fails. Records the driver has not had sealed
 * are not safe yet.
 */
int backend_archive_add(struct backend_ctx *ctx, json_t *record);
/*
 * Make everything added so far durable: end the zstd frame, write, fsync.
 * Only after 0 may the driver delete what it added. -1 with ctx->error.
 * Cheap when nothing was added since the last seal.
 */
int backend_archive_seal(struct backend_ctx *ctx);
/*
 * Restore: the next record (a new reference), the header skipped. The whole
 * file's SHA-256 is checked against the job's before the first record. NULL
 * at the end, or on an error (then ctx->error[0] != '\0').
 */
json_t *backend_archive_next(struct backend_ctx *ctx);
