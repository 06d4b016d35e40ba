/* purgectl's modules: client.c (the socket), render.c (human output), main.c (commands). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "purged/proto.h"

struct client {
	int fd;
	const char *path;
	uint64_t next_id;
	struct proto_reader rd;
	int refused;   /* exit code of a refusal read after our own write failed, else 0 */
};

/* Connect to purged; on failure print why and return the exit code to use (> 0). */
int client_connect(struct client *c, const char *path);
void client_close(struct client *c);
/*
 * Send a request; returns its id, or 0 after printing why: the daemon went
 * away, or it refused us before reading (its one reply is printed then, and
 * c->refused holds the exit code it means).
 */
uint64_t client_send(struct client *c, enum purge_op op, json_t *args /* stolen */);
/*
 * Read the next reply or event. Returns 0 with *ret_msg, or the exit code to
 * use (> 0) after printing why.
 */
int client_recv(struct client *c, json_t **ret_msg);
/*
 * Send and wait for the reply. Returns 0 with *ret_result (the reply's result,
 * new reference) or an exit code after printing the daemon's error.
 */
int client_call(struct client *c, enum purge_op op, json_t *args, json_t **ret_result);

/* Output: --json documents or human text. */
extern bool opt_json;
void print_json(const json_t *j);
/* Print a failed reply's error (stderr, and stdout as JSON with --json); returns its exit code. */
int print_error(const json_t *error);
void render_status(const json_t *st);
void render_targets(const json_t *arr);
void render_tasks(const json_t *arr);
void render_task(const json_t *t);
/* A task's warnings, one "warning:" line each (what it could not see or count). */
void render_warnings(const json_t *t);
void render_counts(const json_t *counts);
/* Progress display for --wait: a bar on a terminal, throttled lines otherwise (stderr). */
void render_progress(const json_t *task, bool final);
/* Exit code for a task's final state. */
int task_exit_code(const json_t *task);
