/*
 * The supervisor's side of an executor: spawn (fork+exec through libuv, as
 * executor_user when root, empty environment, fd 2 = log pipe, fd 3 = message
 * socket), the job message, progress and result frames, log relay, timeout,
 * cancel, and turning however it ended into a precise task outcome.
 * Supervisor only.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "buildconf.h"
#include "daemon/backends.h"
#include "daemon/childlog.h"
#include "daemon/manifest.h"
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"

#define MANIFEST_BYTES_MAX (256ull << 20) /* one task's manifest on disk */

struct executor {
	uv_process_t proc;
	uv_pipe_t msg;            /* fd 3 in the executor */
	uv_pipe_t log;            /* fd 2 in the executor */
	uv_timer_t timer;         /* task_timeout, then the kill grace */
	struct task *task;        /* NULL once the outcome is settled */
	struct proto_reader rd;
	struct childlog relay;    /* its stderr, into our log */
	int open_handles;
	bool exited, msg_eof, log_eof;
	int64_t exit_status;
	int term_signal;
	json_t *result;
	char *fail_reason;        /* the supervisor's reason: timeout, protocol violation */
	pid_t pid;
	int manifest_fd;          /* state_dir/manifests/TASK.jsonl, opened on the first entry */
	bool dry_run;             /* a plan: deletes nothing, reports no deletion */
	bool probe;               /* a sandbox probe target (--test-probes): its result counts are probes */
	uint64_t entries;         /* manifest entries received */
	uint64_t manifest_bytes;  /* their size, roughly as written */
	int manifest_err;         /* first manifest write error (-errno): the manifest is incomplete */
	char *stop_reason;        /* SIGTERM sent because of a task timeout (NULL: a cancel) */
	bool stop_sent;           /* SIGTERM sent: the executor is stopping and reconciling */
	bool stop_killed;         /* ... and SIGKILL followed when the grace ran out */
	unsigned stop_grace;
	int64_t persisted;        /* mono usec the running counts were last journaled */
	int64_t window_start;     /* flood check: frames in the current second */
	unsigned window_frames;
	char *archive_path;       /* the archive this purge writes on fd 4 (archive = yes), or NULL */
	uint64_t archive_budget;  /* the bytes it may write there (counted in archive_budgets until it ends) */
	bool archive_hashing;     /* the supervisor hashes it in the thread pool: settle waits */
	bool archive_checked;     /* ... and has recorded it in the task */
};

/* What an executor may send before it is called hostile and killed (more in task.h). */
#define FRAMES_PER_SEC_MAX 20000     /* messages in one second */
#define ERROR_TEXT_MAX 4096          /* bytes of the backend's error kept in the task */

char *exec_find_helper(const char *name)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			char *p = xasprintf("%s/%s", self, name);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return xasprintf("%s/%s", PURGED_LIBEXECDIR, name);
}

/*
 * What every child of the supervisor starts with: an empty environment
 * (nothing of ours, secrets or locale, leaks in), cwd /, and executor_user's
 * uid and gid when purged runs as root (libuv also clears supplementary groups).
 */
void exec_child_options(uv_process_options_t *opt)
{
	static char *empty_env[] = { NULL };

	opt->env = empty_env;
	opt->cwd = "/";
	if (purged->drop_privileges) {
		opt->flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		opt->uid = purged->executor_uid;
		opt->gid = purged->executor_gid;
	}
}

/* What the archives being written may still take, together: each new one gets the free space less this. */
static uint64_t archive_budgets;

static void on_close(uv_handle_t *h)
{
	struct executor *e = h->data;
	if (--e->open_handles > 0)
		return;
	proto_reader_free(&e->rd);
	manifest_close(&e->manifest_fd);
	json_decref(e->result);
	archive_budgets -= e->archive_budget;
	free(e->archive_path);
	free(e->fail_reason);
	free(e->stop_reason);
	free(e);
}

static void close_all(struct executor *e)
{
	uv_handle_t *hs[] = { (uv_handle_t *)&e->proc, (uv_handle_t *)&e->msg, (uv_handle_t *)&e->log,
			      (uv_handle_t *)&e->timer };
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], on_close);
}


/* A sandbox probe reports its attempts as counts "probe.WHAT" in its result: not deletions. */
static void merge_probe_counts(struct task *t, const json_t *counts)
{
	const char *kind;
	json_t *v;
	json_object_foreach((json_t *)counts, kind, v)
		if (strncmp(kind, "probe.", 6) == 0)
			json_object_set(t->counts, kind, v);
}

static const char *signal_name(int sig)
{
	const char *d = sigdescr_np(sig);
	return d ? d : "unknown signal";
}

static bool is_sha256_hex(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void settle(struct executor *e);

/*
 * The archive as the supervisor hashed it, against what the executor said it
 * wrote and sealed: the task records the file's own size and SHA-256 (the
 * executor is not trusted with them), and the executor's record count, said
 * as such. An archive with no record is removed.
 */
static void on_archive_hashed(void *data, int err, uint64_t bytes, const char *hex)
{
	struct executor *e = data;
	struct task *t = e->task;
	struct msg_result res = { 0 };
	if (e->result)
		msg_result_unpack(e->result, &res);
	bool said = res.has_archive;
	const char *path = e->archive_path;

	e->archive_hashing = false;
	e->archive_checked = true;
	if (err == EFBIG) {
		task_warn(t, "the archive %s has holes (sparse), which purged's executor never writes: it was not "
			  "hashed nor recorded; it is kept for inspection (was the executor compromised?)", path);
		log_warnx("task %s: its archive %s is sparse: not recorded", t->id, path);
	} else if (err) {
		task_warn(t, "the archive %s could not be read back to record its size and SHA-256: %s; it is kept, "
			  "unverified", path, strerror(err));
		log_warnx("task %s: cannot hash its archive %s: %s", t->id, path, strerror(err));
	} else if (said && res.archive_records == 0) {
		/* Nothing was archived (nothing to delete, or the purge failed before its first record). */
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("task %s: cannot remove its empty archive %s", t->id, path);
		else
			log_info("task %s: its archive held no record and was removed", t->id);
	} else if (!said && bytes == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("task %s: cannot remove its empty archive %s", t->id, path);
	} else {
		json_decref(t->archive);
		t->archive = json_pack("{s:s, s:I, s:s}", "file", path, "bytes", (json_int_t)bytes, "sha256", hex);
		if (!said) {
			task_warn(t, "the executor ended without reporting its archive: %s holds %llu bytes, their records "
				  "uncounted and perhaps not all sealed; read it with purgectl archive %s", path,
				  (unsigned long long)bytes, t->id);
		} else {
			json_object_set_new(t->archive, "records", json_integer((json_int_t)res.archive_records));
			const char *shex = res.archive_sha256;
			json_int_t sbytes = (json_int_t)res.archive_bytes;
			if ((uint64_t)sbytes != bytes || !is_sha256_hex(shex) || strcmp(shex, hex) != 0) {
				char safe[80];
				task_safe_text(safe, sizeof(safe), shex ? shex : "");
				task_warn(t, "the archive %s on disk (%llu bytes, SHA-256 %s) is not what the executor said "
					  "it wrote (%lld bytes, SHA-256 %s): the file was changed, or the executor failed "
					  "midway; the task records what is on disk", path, (unsigned long long)bytes, hex,
					  (long long)sbytes, safe);
				log_warnx("task %s: archive %s differs from the executor's report", t->id, path);
			}
		}
		log_info("task %s: archive %s, %llu bytes, SHA-256 %s", t->id, path, (unsigned long long)bytes, hex);
	}
	settle(e);
}

/*
 * The exit status, the end of the message stream and the end of the log are
 * all in: settle the task. Waiting for the log's end keeps the executor's last
 * lines, which would be lost if the pipe were closed first.
 */
static void settle(struct executor *e)
{
	struct task *t = e->task;
	char why[ERROR_TEXT_MAX + 1024];

	if (!t || !e->exited || !e->msg_eof || !e->log_eof || e->archive_hashing)
		return;
	if (e->archive_path && !e->archive_checked) {
		/* Hashed before the end is journaled and told: a client that sees "finished" sees the archive too. */
		if (archives_hash(e->archive_path, on_archive_hashed, e) == 0) {
			e->archive_hashing = true;
			return;
		}
		e->archive_checked = true;
		task_warn(t, "the archive %s could not be hashed (no worker thread); it is kept, unrecorded",
			  e->archive_path);
	}
	e->task = NULL;
	childlog_flush(&e->relay);
	uv_timer_stop(&e->timer);
	manifest_close(&e->manifest_fd); /* synced before the end is journaled */

	struct msg_result res = { 0 };
	if (e->result)
		msg_result_unpack(e->result, &res);
	bool ok = e->result && res.ok;
	/* A plan's counts are the result's; a purge's are what it confirmed as it went (task->counts). */
	json_t *counts = e->dry_run ? res.counts : NULL;
	json_t *errors = res.errors;
	char berr[ERROR_TEXT_MAX];
	bool has_berr = res.error != NULL;

	if (has_berr)
		task_safe_text(berr, sizeof(berr), res.error);
	if (!e->dry_run && e->probe && e->result)
		merge_probe_counts(t, res.counts);
	/* What the driver could not see or count: said on the task, whatever its outcome. */
	json_t *w;
	size_t wi;
	json_array_foreach(res.warnings, wi, w) {
		char said[ERROR_TEXT_MAX];
		task_safe_text(said, sizeof(said), json_string_value(w));
		task_warn(t, "%s", said);
	}
	if (!e->stop_sent && !e->fail_reason && e->term_signal && !e->dry_run)
		task_warn(t, "the executor was killed by signal %d while it may have had a delete in flight: what that "
			  "request deleted is not in the counts or the manifest; plan the target again to see what is "
			  "left", e->term_signal);
	if (e->manifest_err)
		task_warn(t, "the manifest is incomplete: writing %s/manifests/%s.jsonl failed (%s); the counts "
			  "are complete", purged->conf->state_dir, t->id, strerror(-e->manifest_err));
	struct exec_end end = {
		.fail_reason = e->fail_reason,
		.stop_reason = e->stop_reason,
		.cancel_error = t->cancel_requested ? t->error : NULL,
		.backend_error = has_berr ? berr : NULL,
		.cancel_requested = t->cancel_requested,
		.stop_sent = e->stop_sent,
		.stop_killed = e->stop_killed,
		.has_result = e->result != NULL,
		.result_ok = ok,
		.stop_grace = e->stop_grace,
		.exit_status = e->exit_status,
		.term_signal = e->term_signal,
	};
	enum task_state state = exec_end_outcome(&end, why, sizeof(why));
	if (state == TASK_FINISHED && e->stop_sent) {
		/* Asked to stop as it ended: the purge completed, and its post-condition held. */
		task_warn(t, "%s arrived as the task ended: it had completed", e->stop_reason ? "the timeout"
											   : "the cancel");
		free(t->error);
		t->error = NULL;
	}
	runner_on_end(t, state, counts, why[0] ? why : NULL, errors);
	close_all(e);
}

/*
 * The task's end from how its executor ended (pure: settle() gathers @x),
 * its error into @why ("" when it has none). The supervisor's own reason
 * first, then a stop (cancel or timeout) and how the executor took it, then
 * what the backend said, and last how the process ended.
 */
enum task_state exec_end_outcome(const struct exec_end *x, char *why, size_t len)
{
	char stopnote[400] = "";

	why[0] = '\0';
	if (x->fail_reason) {
		snprintf(why, len, "%s", x->fail_reason);
		return TASK_FAILED;
	}
	if (x->stop_sent && x->result_ok)
		return TASK_FINISHED;
	if (x->stop_sent) {
		if (x->stop_killed)
			snprintf(stopnote, sizeof(stopnote), "the executor did not stop within %u s (cancel_grace) "
				 "and was killed: deletions it had not reported are not in the counts or the manifest; "
				 "plan the target again to see what is left", x->stop_grace);
		else if (x->has_result)
			snprintf(stopnote, sizeof(stopnote), "the executor stopped and reconciled within %u s "
				 "(cancel_grace)", x->stop_grace);
		else
			snprintf(stopnote, sizeof(stopnote), "the executor ended without reconciling; plan the "
				 "target again to see what is left");
	}
	if (x->cancel_requested || x->stop_reason) {
		const char *lead = x->cancel_requested && x->cancel_error ? x->cancel_error
				 : x->stop_reason ? x->stop_reason : "cancelled";
		snprintf(why, len, "%s; %s%s%s", lead, stopnote, x->backend_error ? ": " : "",
			 x->backend_error ? x->backend_error : "");
		return x->cancel_requested ? TASK_CANCELLED : TASK_FAILED;
	}
	if (x->has_result && !x->result_ok) {
		snprintf(why, len, "%s", x->backend_error ? x->backend_error
							   : "the backend reported a failure without a reason");
		return TASK_FAILED;
	}
	if (x->term_signal) {
		snprintf(why, len, "executor killed by signal %d (%s)", x->term_signal, signal_name(x->term_signal));
		return TASK_FAILED;
	}
	if (x->exit_status != 0) {
		snprintf(why, len, "executor exited with status %lld%s", (long long)x->exit_status,
			 x->has_result ? " after its result" : " without a result (see the daemon's log)");
		return TASK_FAILED;
	}
	if (!x->has_result) {
		snprintf(why, len, "executor exited without sending a result");
		return TASK_FAILED;
	}
	return TASK_FINISHED;
}

static void kill_now(struct executor *e, const char *reason)
{
	if (reason && !e->fail_reason)
		e->fail_reason = xstrdup(reason);
	if (!e->exited)
		uv_process_kill(&e->proc, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct executor *e = p->data;
	e->exited = true;
	e->exit_status = status;
	e->term_signal = sig;
	log_debug("executor %d for task %s exited: status %lld, signal %d", e->pid, e->task ? e->task->id : "-",
		  (long long)status, sig);
	settle(e);
}

static void on_timer(uv_timer_t *h)
{
	struct executor *e = h->data;
	char why[160];

	if (e->stop_sent) {
		/* The grace is over: the executor did not stop and reconcile in time. */
		e->stop_killed = true;
		kill_now(e, NULL);
		return;
	}
	snprintf(why, sizeof(why), "timed out after %u s (task_timeout)", purged->conf->task_timeout);
	exec_stop(e, purged->conf->cancel_grace, why);
}

/*
 * Ask the executor to stop (SIGTERM): its driver stops deleting, reconciles
 * what it had in flight, reports it and ends; SIGKILL after @grace_sec.
 * @reason: why, when it is not a cancel (the task timeout).
 */
void exec_stop(struct executor *e, unsigned grace_sec, const char *reason)
{
	if (!e || e->exited || e->stop_sent)
		return;
	if (reason && !e->stop_reason)
		e->stop_reason = xstrdup(reason);
	e->stop_sent = true;
	e->stop_grace = grace_sec;
	log_info("task %s: asking executor %d to stop (%s); SIGKILL in %u s", e->task ? e->task->id : "-", e->pid,
		 reason ? reason : "cancel", grace_sec);
	if (grace_sec == 0) {
		e->stop_killed = true;
		kill_now(e, NULL);
		return;
	}
	uv_process_kill(&e->proc, SIGTERM);
	uv_timer_start(&e->timer, on_timer, (uint64_t)grace_sec * 1000, 0);
}

static void violation(struct executor *e, const char *what)
{
	char why[400];
	snprintf(why, sizeof(why), "protocol violation by the executor: ");
	task_safe_text(why + strlen(why), sizeof(why) - strlen(why), what);
	log_warnx("task %s: %s; killing executor %d", e->task ? e->task->id : "-", why, e->pid);
	kill_now(e, why);
}

/*
 * Confirmed deletions: add them to the task's counts (live, shown by
 * `purgectl task`), journal those now and then, and append the entries to
 * the manifest. NULL, or why the message is refused (nothing applied then).
 */
static const char *record_deleted(struct executor *e, const json_t *raw)
{
	struct msg_manifest msg;
	msg_manifest_unpack(raw, &msg);
	json_t *entries = msg.entries, *x;
	size_t i, bytes = 0;

	/* A byte budget too, so that a compromised executor cannot fill root's disk with long names. */
	json_array_foreach(entries, i, x)
		bytes += 64 + json_string_length(json_object_get(x, "name")) + json_string_length(json_object_get(x, "id"));
	if (e->manifest_bytes + bytes > MANIFEST_BYTES_MAX)
		return "a manifest over 256 MiB";
	const char *bad = task_add_confirmed(e->task, &msg, e->entries);
	if (bad)
		return bad;
	e->manifest_bytes += bytes;
	e->entries += json_array_size(entries);
	/* Journaled as they grow (unsynced, at most once a second): a supervisor crash keeps them too. */
	if (mono_usec() - e->persisted >= 1000000) {
		e->persisted = mono_usec();
		runner_persist(e->task);
	}
	if (json_array_size(entries) && !e->manifest_err) {
		int r = manifest_append(purged->conf->state_dir, e->task->id, &e->manifest_fd, entries);
		if (r < 0) {
			e->manifest_err = r;
			log_warnx("task %s: cannot write its manifest under %s/manifests: %s; the task will say that "
				  "its manifest is incomplete", e->task->id, purged->conf->state_dir, strerror(-r));
		}
	}
	return NULL;
}

static void handle_frame(struct executor *e, const uint8_t *p, size_t n)
{
	enum purge_msg_type type;
	struct proto_error err;
	const char *bad = NULL;
	json_t *msg;
	int64_t now = mono_usec();

	if (now - e->window_start >= 1000000) {
		e->window_start = now;
		e->window_frames = 0;
	}
	if (++e->window_frames > FRAMES_PER_SEC_MAX) {
		violation(e, "a flood of messages (more than 20000 in one second)");
		return;
	}
	if (proto_decode(p, n, PURGE_MSG_MASK(PURGE_MSG_PROGRESS) | PURGE_MSG_MASK(PURGE_MSG_RESULT) |
				       PURGE_MSG_MASK(PURGE_MSG_MANIFEST),
			 &type, &msg, &err) < 0) {
		violation(e, err.message);
		return;
	}
	if (e->result) {
		bad = "message after the result";
	} else if (!e->task) {
		/* Settled already (cannot happen before EOF): nothing to record. */
	} else if (type == PURGE_MSG_RESULT) {
		struct msg_result res;
		msg_result_unpack(msg, &res);
		bad = task_check_result(&res);
		if (!bad)
			e->result = json_incref(msg);
	} else if (type == PURGE_MSG_MANIFEST) {
		bad = e->dry_run ? "a plan reported a deletion" : record_deleted(e, msg);
	} else {
		struct msg_progress pr;
		msg_progress_unpack(msg, &pr);
		runner_on_progress(e->task, pr.step, pr.done, pr.total);
	}
	if (bad)
		violation(e, bad);
	json_decref(msg);
}

static void on_msg_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct executor *e = s->data;

	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("executor %d message pipe: %s", e->pid, uv_strerror((int)nread));
		uv_read_stop(s);
		if (proto_reader_pending(&e->rd) && !e->fail_reason && !e->term_signal)
			violation(e, "truncated frame at end of stream");
		e->msg_eof = true;
		settle(e);
	} else if (nread > 0 && !e->fail_reason) {
		const uint8_t *p;
		size_t n;
		int r = proto_reader_feed(&e->rd, buf->base, (size_t)nread);
		while (r >= 0 && !e->fail_reason && (r = proto_reader_next(&e->rd, &p, &n)) > 0)
			handle_frame(e, p, n);
		if (r < 0)
			violation(e, r == -EMSGSIZE ? "frame over the 1 MiB limit" : "malformed frame");
	}
}

static void on_log_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct executor *e = s->data;
	if (nread < 0) {
		uv_read_stop(s);
		childlog_flush(&e->relay);
		e->log_eof = true;
		settle(e);
		return;
	}
	childlog_feed(&e->relay, buf->base, (size_t)nread);
}

struct job_write {
	uv_write_t req;
	uint8_t *buf;
	size_t len;
};

static void on_job_written(uv_write_t *req, int status)
{
	struct job_write *w = (struct job_write *)req;
	struct executor *e = req->handle->data;

	/* The frame holds the target's secrets: wipe before freeing. */
	explicit_bzero(w->buf, w->len);
	free(w->buf);
	free(w);
	if (status < 0 && !e->exited)
		log_warnx("executor %d: sending the job failed: %s", e->pid, uv_strerror(status));
}

/*
 * What one job may know: a CRDB purge gets the settings and passwords of the
 * instances it names and no others. New references in *ret_settings and *ret_secrets.
 */
static void job_scope(const struct target_conf *tc, struct task *task, json_t **ret_settings,
		      json_t **ret_secrets)
{
	const json_t *wanted = task->params ? json_object_get(task->params, "instances") : NULL;
	json_t *all = json_object_get(tc->settings, "instances");
	size_t i;
	json_t *id;

	if (!wanted || !all) {
		*ret_settings = json_deep_copy(tc->settings);
		*ret_secrets = json_deep_copy(tc->secrets);
		if (task->request_credentials) {
			/* Used once: they leave the supervisor with this job and are wiped here. */
			const char *u = json_string_value(json_object_get(task->request_credentials, "username"));
			const char *p = json_string_value(json_object_get(task->request_credentials, "password"));
			if (u)
				json_object_set_new(*ret_secrets, "request_username", json_string(u));
			if (p)
				json_object_set_new(*ret_secrets, "request_password", json_string(p));
			json_wipe_strings(task->request_credentials);
			json_decref(task->request_credentials);
			task->request_credentials = NULL;
		}
		return;
	}
	json_t *inst = json_object(), *sec = json_object();
	json_array_foreach(wanted, i, id) {
		char key[16], skey[32];
		snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(id));
		snprintf(skey, sizeof(skey), "password.%s", key);
		if (json_object_get(all, key))
			json_object_set(inst, key, json_object_get(all, key));
		if (json_object_get(tc->secrets, skey))
			json_object_set_new(sec, skey, json_deep_copy(json_object_get(tc->secrets, skey)));
	}
	*ret_settings = json_pack("{s:o}", "instances", inst);
	*ret_secrets = sec;
}

/*
 * fd 4 of a purge of an archive = yes target (write-only, a new file) or of a
 * restore (read-only, the purge's archive), with the job's "archive" and
 * "options". 0 (*ret_fd -1 when there is none), or -1 with the task's error
 * set: the task is refused before anything runs.
 */
static int archive_setup(struct task *task, const struct target_conf *tc, bool dry_run, int *ret_fd,
			 char **ret_path, json_t **ret_spec, json_t **ret_options, uint64_t *ret_budget)
{
	char why[1024];

	*ret_fd = -1;
	*ret_budget = 0;
	if (strcmp(task->operation, "restore") == 0) {
		const char *file = json_string_value(json_object_get(task->params, "file"));
		const char *sha = json_string_value(json_object_get(task->params, "sha256"));
		if (!file || !sha) {
			task_set_error(task, "this restore names no archive (file and sha256 in its params); ask for it "
				       "again with purgectl restore");
			return -1;
		}
		if (archives_open_read(file, ret_fd, why, sizeof(why)) < 0) {
			task_set_error(task, "%s; nothing was restored", why);
			return -1;
		}
		*ret_spec = json_pack("{s:s, s:s}", "mode", "read", "sha256", sha);
		*ret_options = json_pack("{s:b}", "replace", json_is_true(json_object_get(task->params, "replace")));
		return 0;
	}
	if (dry_run || !tc->archive)
		return 0;
	if (archives_create(task, ret_fd, ret_path, why, sizeof(why)) < 0) {
		task_set_error(task, "%s", why);
		log_warnx("task %s: refused: %s", task->id, why);
		return -1;
	}
	/*
	 * The executor checks its estimate against the free space, but the budget is ours: the archive
	 * may take at most what the file system has beyond a reserve (64 MiB or 2 %, as the executor's
	 * check) and beyond what the archives being written may still take, so that neither a wrong
	 * estimate, a compromised executor nor several purges at once can fill the file system the
	 * journal may share. The kernel holds the executor to it (RLIMIT_FSIZE).
	 */
	uint64_t room = UINT64_MAX;
	struct statvfs sv;
	if (fstatvfs(*ret_fd, &sv) == 0) {
		uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, total = (uint64_t)sv.f_blocks * sv.f_frsize;
		uint64_t reserve = total / 50 > (64ull << 20) ? total / 50 : (64ull << 20);
		room = avail > reserve + archive_budgets ? avail - reserve - archive_budgets : 0;
	}
	uint64_t max = tc->archive_max_bytes < room ? tc->archive_max_bytes : room;
	if (max < 4096) {
		task_set_error(task, "archive_dir %s has no room for an archive (its file system keeps a reserve of "
			       "64 MiB or 2 %%, and %llu bytes are promised to archives being written): nothing was "
			       "deleted; free space, wait for the other purges, or point archive_dir elsewhere",
			       purged->conf->archive_dir, (unsigned long long)archive_budgets);
		close(*ret_fd);
		*ret_fd = -1;
		unlink(*ret_path);
		free(*ret_path);
		*ret_path = NULL;
		return -1;
	}
	*ret_spec = json_pack("{s:s, s:I, s:I}", "mode", "write", "max_bytes", (json_int_t)tc->archive_max_bytes,
			      "room", (json_int_t)(room < (uint64_t)INT64_MAX ? room : (uint64_t)INT64_MAX));
	*ret_budget = max;
	return 0;
}

int exec_start(struct task *task, const struct target_conf *tc, bool dry_run)
{
	int archive_fd;
	char *archive_path = NULL;
	json_t *archive_spec = NULL, *options = NULL;
	uint64_t archive_budget;
	if (archive_setup(task, tc, dry_run, &archive_fd, &archive_path, &archive_spec, &options, &archive_budget) < 0)
		return -EPERM;

	struct executor *e = xcalloc(1, sizeof(*e));
	uv_process_options_t opt = { 0 };
	uv_stdio_container_t stdio[5];
	char *args[3];
	struct job_write *w;
	json_t *job;
	int r;

	proto_reader_init(&e->rd);
	e->manifest_fd = -1;
	e->dry_run = dry_run;
	e->probe = json_is_true(json_object_get(tc->settings, "probe"));
	if (!dry_run)
		json_object_clear(task->counts); /* a purge counts only what it confirms */
	uv_pipe_init(purged->loop, &e->msg, 0);
	uv_pipe_init(purged->loop, &e->log, 0);
	uv_timer_init(purged->loop, &e->timer);
	e->msg.data = e->log.data = e->timer.data = e->proc.data = e;
	e->open_handles = 4; /* the process handle must be closed even when uv_spawn fails */

	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_IGNORE;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&e->log;
	stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
	stdio[3].data.stream = (uv_stream_t *)&e->msg;
	/* fd 4: the archive, opened here: the executor, in its sandbox, opens nothing. */
	stdio[4].flags = UV_INHERIT_FD;
	stdio[4].data.fd = archive_fd;
	e->archive_path = archive_path;
	e->archive_budget = archive_budget;
	archive_budgets += archive_budget;

	/* The REST backends' executor carries libcurl; the local ones start faster without it. */
	const struct backend_desc *bd = backend_find(tc->type);
	char *path = bd && bd->family == BACKEND_HTTP ? purged->executor_http_path : purged->executor_path;
	args[0] = path;
	args[1] = task->id; /* visible in ps: which task this process serves; nothing secret */
	args[2] = NULL;
	opt.file = path;
	opt.args = args;
	exec_child_options(&opt);
	opt.stdio = stdio;
	opt.stdio_count = archive_fd >= 0 ? 5 : 4;
	opt.exit_cb = on_exit_cb;

	r = uv_spawn(purged->loop, &e->proc, &opt);
	if (archive_fd >= 0)
		close(archive_fd); /* the executor's copy is the only one: its end closes the file */
	if (r < 0) {
		log_warnx("task %s: cannot spawn executor '%s': %s", task->id, path, uv_strerror(r));
		if (archive_path)
			unlink(archive_path); /* created empty just now */
		json_decref(archive_spec);
		json_decref(options);
		e->exited = e->msg_eof = e->log_eof = true;
		close_all(e);
		return r;
	}
	e->pid = e->proc.pid;
	e->task = task;
	task->exec = e;
	childlog_init(&e->relay, "[executor %d task %.8s]", e->pid, task->id);

	json_t *settings = NULL, *secrets = NULL;
	job_scope(tc, task, &settings, &secrets);
	if (json_is_true(json_object_get(tc->settings, "insecure"))) {
		if (!task->warnings)
			task->warnings = json_array();
		json_array_append_new(task->warnings, json_string("TLS certificates are not verified for this target "
								  "(insecure = yes)"));
		log_warnx("task %s: target '%s' has insecure = yes: its TLS certificate is not verified", task->id,
			  tc->name);
	}
	job = msg_job_pack(&(struct msg_job){ .task_id = task->id, .operation = task->operation, .target = tc->name,
					      .type = tc->type, .dry_run = dry_run, .settings = settings,
					      .secrets = secrets, .archive = archive_spec, .options = options });
	json_decref(settings);
	json_decref(archive_spec);
	json_decref(options);
	w = xcalloc(1, sizeof(*w));
	r = job ? proto_encode(job, &w->buf, &w->len) : -ENOMEM;
	json_wipe_strings(secrets); /* the job held references to it: wiped once, here */
	json_decref(secrets);
	json_decref(job);
	if (r < 0) {
		free(w);
		kill_now(e, "the job message could not be encoded");
	} else {
		uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)w->len);
		r = uv_write(&w->req, (uv_stream_t *)&e->msg, &b, 1, on_job_written);
		if (r < 0) {
			explicit_bzero(w->buf, w->len);
			free(w->buf);
			free(w);
			kill_now(e, "the job could not be sent to the executor");
		}
	}
	uv_read_start((uv_stream_t *)&e->msg, uvio_read_buf, on_msg_read);
	uv_read_start((uv_stream_t *)&e->log, uvio_read_buf, on_log_read);
	uv_timer_start(&e->timer, on_timer, (uint64_t)purged->conf->task_timeout * 1000, 0);
	log_info("task %s: executor %d started for %s of '%s'%s", task->id, e->pid, task->operation, tc->name,
		 purged->drop_privileges ? " (as executor_user)" : "");
	runner_on_started(task);
	return 0;
}
