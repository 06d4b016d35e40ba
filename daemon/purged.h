/*
 * The supervisor's shared state and the calls its modules make on each
 * other (as ntpd.h does for ntpd). Supervisor only.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include <jansson.h>
#include "daemon/config.h"
#include "daemon/task.h"
#include "purged/messages.h"
#include "purged/proto.h"

struct journal;
struct ctl_conn;

/* Who sent a request, and through which door. */
struct caller {
	int64_t uid;         /* -1 for a token */
	int64_t gid;
	int64_t pid;
	char name[64];       /* user name, or token name */
	/*
	 * Who this is for the two-person rule: "uid N" with N the login uid the
	 * kernel recorded for the caller's session (/proc/PID/loginuid), else its
	 * uid; "token NAME" through the REST door. Two requests with the same
	 * identity are one person.
	 */
	char identity[80];
	const char *door;    /* "ctl" or "rest" */
	bool allowed;
};

struct purged {
	uv_loop_t *loop;
	struct daemon_conf *conf;
	char *conf_path;
	struct task_table tasks;
	struct journal *journal;
	int audit_fd;
	char *executor_path;       /* local backends: noop, crdb */
	char *executor_http_path;  /* REST backends: itop, redmine */
	bool drop_privileges;     /* running as root: executors run as executor_user */
	uid_t executor_uid;
	gid_t executor_gid;
	bool have_control_gid;
	gid_t control_gid;
	unsigned running;          /* executors alive */
	unsigned queued;
	bool stopping;
	int64_t started_mono;
	bool test_probes;          /* --test-probes: noop probe targets may run */
};

extern struct purged *purged;

/* ---------------------------------------------------------------- runner.c */
/*
 * Admit a new task for @target (limits: one purge per target, max_queue).
 * Returns the queued task, or NULL with *reterr / @msg saying why.
 */
struct task *runner_submit(const char *target, const char *operation, const json_t *params,
			   const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen);
/* Start queued tasks while executor slots are free. */
void runner_schedule(void);
/* Ask a task to stop: queued ones end at once, started ones get their executor stopped. */
int runner_cancel(struct task *task, const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen);
/* Called by spawn.c. */
void runner_on_started(struct task *task);
void runner_on_progress(struct task *task, const char *step, uint64_t done, uint64_t total);
void runner_on_end(struct task *task, enum task_state state, json_t *counts /* borrowed, may be NULL */,
		   const char *error, json_t *errors /* borrowed, may be NULL */);
/* Write @task's current record to the journal. Returns 0 or a negative errno (logged). */
int runner_persist(struct task *task);
/* Replay the journal into the task table; in-flight tasks become failed. Fatal on error. */
void runner_restore(void);
/* Cancel every queued and running task (shutdown). Returns how many executors are still alive. */
unsigned runner_stop_all(void);
/* The target a task has a purge awaiting approval, queued or running on, or NULL. */
struct task *runner_active_purge(const char *target);
/*
 * The two-person rule: a second identity approves an awaiting task (it is
 * queued), or anyone allowed rejects it (cancelled). 0, or a negative errno
 * with *reterr / @msg saying why.
 */
int runner_approve(struct task *task, const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen);
int runner_reject(struct task *task, const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen);
/* Why @tc refuses every purge (protect = yes) into @msg; false when it does not. */
bool runner_protected(const struct target_conf *tc, char *msg, size_t msglen);

/* ---------------------------------------------------------------- spawn.c */
/* Spawn the executor for @task with @tc's settings and secrets. 0 or a negative errno (logged). */
int exec_start(struct task *task, const struct target_conf *tc, bool dry_run);
/* Stop @task's executor: SIGTERM, then SIGKILL after @grace_sec (0: at once). */
void exec_stop(struct executor *e, unsigned grace_sec, const char *reason);
/* Where purged-executor lives: next to purged, else PURGED_LIBEXECDIR. */
char *exec_find_helper(const char *name);
/* A child's privilege drop into @opt: empty environment, cwd /, executor_user when root. */
void exec_child_options(uv_process_options_t *opt);
/* How an executor ended: everything the task's end state and error are decided from. */
struct exec_end {
	const char *fail_reason;   /* the supervisor's own: a protocol violation, a kill */
	const char *stop_reason;   /* SIGTERM sent because of the task timeout (NULL: a cancel, or none) */
	const char *cancel_error;  /* the cancel's text ("cancelled by NAME"), when one was asked */
	const char *backend_error; /* the result's error, made safe, or NULL */
	bool cancel_requested, stop_sent, stop_killed, has_result, result_ok;
	unsigned stop_grace;       /* cancel_grace given with the SIGTERM */
	int64_t exit_status;
	int term_signal;
};
/* The task's end state from @x, its error into @why ("" when none). Pure. */
enum task_state exec_end_outcome(const struct exec_end *x, char *why, size_t len);

/* ---------------------------------------------------------------- archives.c */
/* Bytes of an archive in one tasks.archive reply: its base64 (4/3) fits one protocol string (PURGE_STRING_MAX). */
#define ARCHIVE_CHUNK_MAX (PURGE_STRING_MAX / 4 * 3)
/* archive_dir/TASK.jsonl.zst (malloc'ed). */
char *archives_path(const char *task_id);
/*
 * For a purge of an archive = yes target: create archive_dir (0700, checked
 * like state_dir) and TASK.jsonl.zst (O_EXCL, O_NOFOLLOW, 0600). 0 with
 * *ret_fd and *ret_path (malloc'ed), or -1 with @why saying what to do.
 */
int archives_create(const struct task *task, int *ret_fd, char **ret_path, char *why, size_t whylen);
/* For a restore: open @path read-only (O_NOFOLLOW, a regular file). 0 with *ret_fd, or -1 with @why. */
int archives_open_read(const char *path, int *ret_fd, char *why, size_t whylen);
/* Hash @path with SHA-256 in libuv's thread pool; @done runs on the loop (err: 0 or an errno). */
typedef void (*archives_hash_cb)(void *data, int err, uint64_t bytes, const char *sha256_hex);
int archives_hash(const char *path, archives_hash_cb done, void *data);
/* tasks.archive's answer for @task's archive from @offset: {size, sha256, offset, data, eof}; NULL with @why. */
json_t *archives_read_chunk(const struct task *task, uint64_t offset, char *why, size_t whylen);
/* Remove archives older than archive_keep_days (in the thread pool); archives_start also runs it hourly. */
void archives_prune(void);
void archives_start(void);

/* ---------------------------------------------------------------- watch.c */
enum watch_mode {
	WATCH_STREAM,     /* tasks.watch: an event per change, "end" last */
	WATCH_REPLY_END,  /* plan: one reply when the task ends */
};
/* Follow @task for @conn's request @reqid. 0, or -EMFILE past the per-connection limit. */
int watch_add(struct ctl_conn *conn, uint64_t reqid, struct task *task, enum watch_mode mode);
/* How many watches @conn may hold, and whether it may add one (check before starting what it watches). */
unsigned watch_limit(const struct ctl_conn *conn);
bool watch_has_room(const struct ctl_conn *conn);
/* Tell watchers of @task about a change; @event is "progress", "state" or "end". */
void watch_notify(struct task *task, const char *event);
/* Forget every watch of a closing connection. */
void watch_drop_conn(struct ctl_conn *conn);

/* ---------------------------------------------------------------- control.c */
/* Bind the control socket; fatal on failure (startup only). */
void ctl_listen(const char *path, const char *group);
void ctl_close_listener(void);
/* Treat @fd (the supervisor's end of purged-rest's socketpair) as a control link whose callers are tokens. */
struct ctl_conn *ctl_adopt_rest(int fd, void (*on_close)(void));
/* Queue @msg (stolen) for @conn. */
void ctl_send(struct ctl_conn *conn, json_t *msg);
/* Queue a whole frame already encoded (@frame stolen). */
void ctl_send_frame(struct ctl_conn *conn, uint8_t *frame, size_t len);
/* Close every connection (shutdown). */
void ctl_close_all(void);
/* End one connection now (a reply that could not be built). */
void ctl_close(struct ctl_conn *conn);
/* The pure decisions, apart for their tests. */
/* May the peer with these credentials (SO_PEERCRED; @user its name, or NULL) use purged at all? */
bool ctl_peer_allowed(uid_t uid, gid_t gid, const char *user);
/* Refuse a new caller, with this many allowed connections open, and this many of its uid? */
bool ctl_over_limits(unsigned allowed_open, unsigned same_uid_open);
/* The reply's text and *code for proto_reader_next's error @r. */
const char *ctl_frame_error(int r, enum purge_err *code);
/* @pid's login uid, 4294967295 when unset, unreadable, or @pid no longer runs as @uid. */
unsigned long ctl_peer_login_uid(pid_t pid, uid_t uid);

/* ---------------------------------------------------------------- rest_child.c */
/* Bind the REST listener and start purged-rest (when [rest] enabled = yes); fatal on bind errors. */
void rest_child_start(void);
/* Stop purged-rest for good (shutdown). */
void rest_child_stop(void);
/* The control link of the running purged-rest, or NULL: its watch limits are per HTTP client. */
struct ctl_conn *rest_child_link(void);

/* ---------------------------------------------------------------- ops.c */
/* Run one decoded request from @conn and answer it (now, or later for plan/watch). */
/* A connection's number, never reused (a freed connection's address may be). */
uint64_t ctl_conn_serial(const struct ctl_conn *c);
void ops_dispatch(struct ctl_conn *conn, const struct caller *who, const struct msg_request *req);

/* ---------------------------------------------------------------- audit.c */
int audit_open(const char *state_dir);
/*
 * Append one audit line (fdatasync'ed) and log it. @target, @task_id and
 * @detail may be NULL. Returns 0, or -1 when the line could not be built or
 * written (logged; audit_working() is false until an append succeeds again).
 */
int audit_record(const struct caller *who, const char *op, const char *target, const char *task_id,
		 const char *outcome, const char *detail);
/* Whether the audit log took its last line: requests that change something are refused otherwise. */
bool audit_working(void);
/* Why the last append failed (strerror). */
const char *audit_last_error(void);
/*
 * @n refused requests from one source (@address may be NULL). The first of a
 * source in a minute is written at once; the rest are counted and written as
 * one line per source, all in one batch with one fdatasync, each minute.
 */
void audit_refusal(const struct caller *who, const char *address, const char *reason, uint64_t n);
/* Write the counted refusals now (the minute's timer, and shutdown). */
void audit_flush_refusals(void);
void audit_close(void);

/* ---------------------------------------------------------------- supervisor.c */
/* Re-read the configuration. Returns 0, or -EINVAL with every error in @errs; the old one stays. */
int supervisor_reload(struct config_errors *errs);
/* The supervisor loop: returns the exit status. */
int supervisor_run(struct daemon_conf *conf, const char *conf_path, bool test_probes);
