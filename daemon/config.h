/*
 * purged.conf: parsed with inih into typed, validated settings.
 * Supervisor only. See purged.conf(5) for every key.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct tokens;

struct target_conf {
	char *name;
	char *type;          /* "noop", ... */
	json_t *settings;    /* typed backend settings handed to the executor; no secrets */
	json_t *secrets;     /* key -> secret value, read from the *_file keys; wiped on free */
	json_t *endpoint;    /* {server, port, api_path} of a network backend; empty for noop */
	unsigned line;       /* of the section header, for messages */
	/* Every target type, [crdb GUID] too (purged.conf(5), "Protection and approvals"). */
	bool protect;        /* protect = yes: every purge refused, plan allowed */
	char *protect_where; /* "FILE:LINE" of the protect key, for the refusal */
	unsigned approvals;  /* 0, or 1: a second identity approves each purge */
	unsigned approval_timeout; /* seconds an unapproved purge waits before it expires */
	/* archive = yes: a purge first exports what it deletes into archive_dir/TASK.jsonl.zst. */
	bool archive;
	uint64_t archive_max_bytes; /* this target's cap: its own archive_max_bytes, else [daemon]'s */
};

struct daemon_conf {
	char *path;
	char *control_socket;
	char *control_group;
	char *state_dir;
	char *executor_user;
	unsigned max_executors;
	unsigned max_queue;
	unsigned task_timeout;  /* seconds */
	unsigned keep_tasks;    /* finished tasks kept in the table and journal */
	unsigned cancel_grace;  /* seconds between SIGTERM and SIGKILL */
	char *archive_dir;      /* archives of purges (archive = yes); default state_dir/archives */
	unsigned archive_keep_days; /* archives older than this are removed; 0 = kept forever */
	uint64_t archive_max_bytes; /* one archive's cap (also the executor's RLIMIT_FSIZE) */
	/* [rest] */
	unsigned rest_enabled;
	char *rest_listen;
	char *rest_tokens_file;
	unsigned rest_allow_remote;
	unsigned rest_idle_timeout; /* seconds */
	unsigned rest_upstream_timeout; /* seconds purged-rest waits for the supervisor's answer (504 after) */
	struct tokens *tokens;      /* loaded from rest_tokens_file when enabled */

	struct target_conf *targets;
	size_t n_targets;
};

/* Error lines, each "FILE:LINE: message". */
struct config_errors {
	char **v;
	size_t n;
};

/*
 * Parse and validate @path, then the drop-in files (PATH.d, "*.conf", in name order). Returns 0 with *ret (caller frees with
 * config_free), or -EINVAL with every problem found appended to @errs, or
 * another negative errno when the file cannot be read (also in @errs).
 */
int config_load(const char *path, struct daemon_conf **ret, struct config_errors *errs);
/* Several configuration texts read as one, in order (the main file, then its drop-ins). */
struct config_text {
	const char *name;
	const char *data;
	size_t len;
};
int config_parse_texts(const struct config_text *texts, size_t n, struct daemon_conf **ret,
		       struct config_errors *errs);
/* Same from memory; @name is used in messages. Secret files are still read from disk. */
int config_parse(const char *name, const char *data, size_t len, struct daemon_conf **ret,
		 struct config_errors *errs);
struct daemon_conf *config_free(struct daemon_conf *c);
const struct target_conf *config_find_target(const struct daemon_conf *c, const char *name);
void config_errors_clear(struct config_errors *errs);
struct sockaddr_storage;
/*
 * Parse "IPv4:PORT" or "[IPv6]:PORT" (the address read by uv_ip4_addr/uv_ip6_addr).
 * Returns 0 (filling what is non-NULL) or -EINVAL, *why (when non-NULL) naming the wrong part.
 */
int listen_parse(const char *s, struct sockaddr_storage *ret, bool *ret_loopback, const char **why);

