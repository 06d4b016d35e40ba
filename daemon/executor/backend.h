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
	const char *operation;    /* "purge", "plan" or "restore" */
	const json_t *options;    /* the op's options (restore: {"replace": bool}); never NULL */
	struct archive *archive;  /* archive.h: fd 4's archive, or NULL (archive = no) */
	const json_t *settings;   /* validated by the supervisor's config tables */
	const json_t *secrets;    /* borrowed; wiped by main.c after the run */
	bool dry_run;             /* plan: count, change nothing */
	json_t *counts;           /* kind -> objects deleted (or that would be) */
	char error[2048];         /* set by the driver when run() fails (backend_fail) */
	json_t *errors;           /* optional [{cluster_name|target, error_code, description}], owned */
	json_t *warnings;         /* backend_warn(): strings, owned */
	int fd;                   /* message socket to the supervisor */
	int64_t last_progress;    /* mono usec of the last progress frame */
	json_t *manifest;         /* confirmed deletions not yet sent: entries */
	json_t *deleted;          /* ... and bulk counts, kind -> n (backend_deleted_n) */
	size_t unsent;            /* entries + bulk kinds buffered */
	json_t *remaining;        /* backend_remaining: the first 20 found, [{kind, id, name}] */
	uint64_t n_remaining;     /* ... and how many in all */
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

/* Report progress; frames are rate limited except for the first and the last. Also sends
 * what backend_deleted* buffered. Steps name kinds ("projects", "users", "UserRequest"...). */
void backend_progress(struct backend_ctx *ctx, const char *step, uint64_t done, uint64_t total);
/*
 * A deletion the backend CONFIRMED (iTop: per-object code 0 in a real, non-simulated delete;
 * Redmine: DELETE answered 204/404, or for subprojects absence confirmed). Counted under @kind
 * and listed in the manifest; @cascade marks objects that went without being asked for.
 * Buffered, and sent to the supervisor at the next backend_progress()/backend_flush(), or
 * after 100 entries: the supervisor's counts and manifest are the sum of these, so a killed
 * executor loses nothing it had reported. @kind: a name (letters, digits, '.', '_', '-', at
 * most 64; else it is a bug and the executor exits). @name may be NULL; it is made safe
 * (valid UTF-8, at most 1 KiB).
 */
void backend_deleted(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name, bool cascade);
/* Bulk deletions without names (Redis keys): @n more objects of @kind confirmed gone (0 still
 * shows @kind in the counts). @kind: a name that may hold spaces (e.g. "instance 3"). */
void backend_deleted_n(struct backend_ctx *ctx, const char *kind, uint64_t n);
/* Send what is buffered now (also done by backend_progress). */
void backend_flush(struct backend_ctx *ctx);
/* The old name of backend_deleted(.., false); kept until nothing calls it. */
void backend_manifest(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name);
/* The old name of backend_flush. */
void backend_manifest_flush(struct backend_ctx *ctx);
/* Plan (dry run) only: what the purge would delete, per kind. For a real purge the counts
 * come only from backend_deleted*: in a purge this call is ignored (with a debug line). */
void backend_count(struct backend_ctx *ctx, const char *kind, uint64_t n);
/* Post-condition: call once per object still found when the scope is enumerated again after
 * deleting (the first 20 are kept for the error text). @id < 0: no id; @name may be NULL. */
void backend_remaining(struct backend_ctx *ctx, const char *kind, json_int_t id, const char *name);
/* 0 when nothing was reported remaining; else fails the task (ctx->error) with
 * "N objects remain after the purge: kind id 'name', ... (20 shown); <hint>" and returns -1. */
int backend_check_remaining(struct backend_ctx *ctx, const char *hint);
/* True once the supervisor asked the executor to stop (cancel or task timeout: SIGTERM). A driver
 * stops issuing deletes, re-enumerates to reconcile what it had in flight, and returns -1 with
 * backend_fail(ctx, "...stopped on request..."). The supervisor waits stop_grace for that. */
bool backend_stopping(const struct backend_ctx *ctx);
/* main.c: install the SIGTERM handler that backend_stopping() reads. */
void backend_stop_init(void);
/*
 * Something the task must say besides its outcome (what could not be seen or
 * counted: "archived projects past id N cannot be found"); at most 16, sent
 * with the result, shown with the task even when it finished.
 */
void backend_warn(struct backend_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fill ctx->error; returns -1 for "return backend_fail(...)". The text is made safe (valid
 * UTF-8, cut on a character boundary). */
int backend_fail(struct backend_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* noop's sandbox probe (probe = yes): attempts after confinement, reported as counts. */
void backend_probe(struct backend_ctx *ctx);

extern const struct backend_ops backend_noop;
extern const struct backend_ops backend_crdb;
extern const struct backend_ops backend_redmine;
extern const struct backend_ops backend_itop;

/* prepare() of the REST backends: a client for settings.url with @header (may be NULL). */
int backend_prepare_http(struct backend_ctx *ctx, struct sandbox_policy *p, const char *header);
