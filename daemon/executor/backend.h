/*
 * The interface every backend driver implements, and the calls a driver
 * makes to report. Executor only: drivers run inside the sandbox.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "daemon/sandbox/sandbox.h"

struct http_client;

struct backend_ctx {
	const char *task_id;
	const char *target;
	const json_t *settings;   /* validated by the supervisor's config tables */
	const json_t *secrets;    /* borrowed; wiped by main.c after the run */
	bool dry_run;             /* plan: count, change nothing */
	json_t *counts;           /* kind -> objects deleted (or that would be) */
	char error[512];          /* set by the driver when run() fails */
	json_t *errors;           /* optional [{cluster_name|target, error_code, description}], owned */
	int fd;                   /* message socket to the supervisor */
	int64_t last_progress;    /* mono usec of the last progress frame */
	json_t *manifest;         /* entries not yet sent */
	struct http_client *http; /* REST backends: set up by prepare() */
};

struct backend_ops {
	const char *type;
	/*
	 * Before the sandbox closes: set up what needs files or names (clients,
	 * resolved addresses) and fill in what the sandbox must allow.
	 * Returns 0, or -1 with ctx->error set.
	 */
	int (*prepare)(struct backend_ctx *ctx, struct sandbox_policy *p);
	/* Plan or purge. Returns 0, or -1 with ctx->error set. */
	int (*run)(struct backend_ctx *ctx);
};

/* Report progress; frames are rate limited except for the first and the last. */
void backend_progress(struct backend_ctx *ctx, const char *step, uint64_t done, uint64_t total);
/* Record a deleted object for the task's manifest (sent in batches). @name may be NULL. */
void backend_manifest(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name);
/* Send what the manifest buffer holds (before the result). */
void backend_manifest_flush(struct backend_ctx *ctx);
/* Set the count for @kind. */
void backend_count(struct backend_ctx *ctx, const char *kind, uint64_t n);
/* Fill ctx->error; returns -1 for "return backend_fail(...)". */
int backend_fail(struct backend_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* noop's sandbox probe (probe = yes): attempts after confinement, reported as counts. */
void backend_probe(struct backend_ctx *ctx);

extern const struct backend_ops backend_noop;
extern const struct backend_ops backend_crdb;
extern const struct backend_ops backend_redmine;
extern const struct backend_ops backend_itop;

/* prepare() of the REST backends: a client for settings.url with @header (may be NULL). */
int backend_prepare_http(struct backend_ctx *ctx, struct sandbox_policy *p, const char *header);
