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
#include <unistd.h>
#include "buildconf.h"
#include "daemon/manifest.h"
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"

struct executor {
	uv_process_t proc;
	uv_pipe_t msg;            /* fd 3 in the executor */
	uv_pipe_t log;            /* fd 2 in the executor */
	uv_timer_t timer;         /* task_timeout, then the kill grace */
	struct task *task;        /* NULL once the outcome is settled */
	struct proto_reader rd;
	char logbuf[1024];
	size_t loglen;
	int open_handles;
	bool exited, msg_eof, log_eof;
	int64_t exit_status;
	int term_signal;
	json_t *result;
	char *fail_reason;        /* the supervisor's reason: timeout, protocol violation */
	pid_t pid;
	int manifest_fd;          /* state_dir/manifests/TASK.jsonl, opened on the first entry */
};

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

static void on_close(uv_handle_t *h)
{
	struct executor *e = h->data;
	if (--e->open_handles > 0)
		return;
	proto_reader_free(&e->rd);
	manifest_close(&e->manifest_fd);
	json_decref(e->result);
	free(e->fail_reason);
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

static void flush_log(struct executor *e, bool all);

static const char *signal_name(int sig)
{
	const char *d = sigdescr_np(sig);
	return d ? d : "unknown signal";
}

/*
 * The exit status, the end of the message stream and the end of the log are
 * all in: settle the task. Waiting for the log's end keeps the executor's last
 * lines, which would be lost if the pipe were closed first.
 */
static void settle(struct executor *e)
{
	struct task *t = e->task;
	char why[512];

	if (!t || !e->exited || !e->msg_eof || !e->log_eof)
		return;
	e->task = NULL;
	flush_log(e, true);
	uv_timer_stop(&e->timer);
	manifest_close(&e->manifest_fd); /* synced before the end is journaled */

	json_t *res = e->result ? json_object_get(e->result, "outcome") : NULL;
	bool ok = res && json_is_true(json_object_get(res, "ok"));
	json_t *counts = res ? json_object_get(res, "counts") : NULL;
	json_t *errors = res ? json_object_get(res, "errors") : NULL;
	const char *berr = res ? json_string_value(json_object_get(res, "error")) : NULL;

	if (e->fail_reason) {
		runner_on_end(t, TASK_FAILED, counts, e->fail_reason, errors);
	} else if (t->cancel_requested) {
		runner_on_end(t, TASK_CANCELLED, counts, NULL, errors);
	} else if (res && !ok) {
		runner_on_end(t, TASK_FAILED, counts, berr ? berr : "the backend reported a failure without a reason",
			      errors);
	} else if (e->term_signal) {
		snprintf(why, sizeof(why), "executor killed by signal %d (%s)", e->term_signal,
			 signal_name(e->term_signal));
		runner_on_end(t, TASK_FAILED, counts, why, errors);
	} else if (e->exit_status != 0) {
		snprintf(why, sizeof(why), "executor exited with status %lld%s", (long long)e->exit_status,
			 res ? " after its result" : " without a result (see the daemon's log)");
		runner_on_end(t, TASK_FAILED, counts, why, errors);
	} else if (!res) {
		runner_on_end(t, TASK_FAILED, NULL, "executor exited without sending a result", errors);
	} else {
		runner_on_end(t, TASK_FINISHED, counts, NULL, errors);
	}
	close_all(e);
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

	if (e->task && e->task->cancel_requested) {
		kill_now(e, NULL); /* grace over */
		return;
	}
	snprintf(why, sizeof(why), "timed out after %u s (task_timeout); executor killed",
		 purged->conf->task_timeout);
	kill_now(e, why);
}

void exec_stop(struct executor *e, unsigned grace_sec, const char *reason)
{
	if (!e || e->exited)
		return;
	if (reason && !e->fail_reason)
		e->fail_reason = xstrdup(reason);
	if (grace_sec == 0) {
		kill_now(e, NULL);
		return;
	}
	uv_process_kill(&e->proc, SIGTERM);
	uv_timer_start(&e->timer, on_timer, (uint64_t)grace_sec * 1000, 0);
}

static void violation(struct executor *e, const char *what)
{
	char why[400];
	snprintf(why, sizeof(why), "protocol violation by the executor: %s", what);
	log_warnx("task %s: %s; killing executor %d", e->task ? e->task->id : "-", why, e->pid);
	kill_now(e, why);
}

static void handle_frame(struct executor *e, const uint8_t *p, size_t n)
{
	enum purge_msg_type type;
	struct proto_error err;
	json_t *msg;

	if (proto_decode(p, n, PURGE_MSG_MASK(PURGE_MSG_PROGRESS) | PURGE_MSG_MASK(PURGE_MSG_RESULT) |
				       PURGE_MSG_MASK(PURGE_MSG_MANIFEST),
			 &type, &msg, &err) < 0) {
		violation(e, err.message);
		return;
	}
	if (e->result) {
		violation(e, "message after the result");
	} else if (type == PURGE_MSG_RESULT) {
		e->result = json_incref(msg);
	} else if (type == PURGE_MSG_MANIFEST && e->task) {
		int r = manifest_append(purged->conf->state_dir, e->task->id, &e->manifest_fd,
					json_object_get(msg, "manifest"));
		if (r < 0)
			log_warnx("task %s: cannot write its manifest under %s/manifests: %s", e->task->id,
				  purged->conf->state_dir, strerror(-r));
	} else if (e->task) {
		json_t *pr = json_object_get(msg, "progress");
		runner_on_progress(e->task, json_string_value(json_object_get(pr, "step")),
				   (uint64_t)json_integer_value(json_object_get(pr, "done")),
				   (uint64_t)json_integer_value(json_object_get(pr, "total")));
	}
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

/* Relay the executor's stderr line by line, keeping its "<N>" priority. */
static void relay_line(struct executor *e, char *line)
{
	int prio = 6;
	if (line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
		prio = line[1] - '0';
		line += 3;
	}
	if (prio < 3)
		prio = 3; /* an executor cannot raise alerts above err */
	switch (prio) {
	case 3:
	case 4:
	case 5:
		log_warnx("[executor %d task %.8s] %s", e->pid, e->task ? e->task->id : "-", line);
		break;
	case 7:
		log_debug("[executor %d task %.8s] %s", e->pid, e->task ? e->task->id : "-", line);
		break;
	default:
		log_info("[executor %d task %.8s] %s", e->pid, e->task ? e->task->id : "-", line);
	}
}

static void flush_log(struct executor *e, bool all)
{
	char *nl;
	while ((nl = memchr(e->logbuf, '\n', e->loglen))) {
		*nl = '\0';
		relay_line(e, e->logbuf);
		size_t used = (size_t)(nl - e->logbuf) + 1;
		memmove(e->logbuf, nl + 1, e->loglen - used);
		e->loglen -= used;
	}
	if (e->loglen && (all || e->loglen == sizeof(e->logbuf) - 1)) {
		e->logbuf[e->loglen] = '\0';
		relay_line(e, e->logbuf);
		e->loglen = 0;
	}
}

static void on_log_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct executor *e = s->data;
	if (nread < 0) {
		uv_read_stop(s);
		flush_log(e, true);
		e->log_eof = true;
		settle(e);
		return;
	}
	for (ssize_t i = 0; i < nread; i++) {
		e->logbuf[e->loglen++] = buf->base[i];
		if (e->logbuf[e->loglen - 1] == '\n' || e->loglen == sizeof(e->logbuf) - 1)
			flush_log(e, false);
	}
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

int exec_start(struct task *task, const struct target_conf *tc, bool dry_run)
{
	struct executor *e = xcalloc(1, sizeof(*e));
	uv_process_options_t opt = { 0 };
	uv_stdio_container_t stdio[4];
	char *empty_env[] = { NULL };
	char *args[3];
	struct job_write *w;
	json_t *job;
	int r;

	proto_reader_init(&e->rd);
	e->manifest_fd = -1;
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

	/* The REST backends' executor carries libcurl; the local ones start faster without it. */
	char *path = !strcmp(tc->type, "itop") || !strcmp(tc->type, "redmine") ? purged->executor_http_path
										: purged->executor_path;
	args[0] = path;
	args[1] = task->id; /* visible in ps: which task this process serves; nothing secret */
	args[2] = NULL;
	opt.file = path;
	opt.args = args;
	opt.env = empty_env;
	opt.cwd = "/";
	opt.stdio = stdio;
	opt.stdio_count = 4;
	opt.exit_cb = on_exit_cb;
	if (purged->drop_privileges) {
		opt.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID; /* libuv also clears supplementary groups */
		opt.uid = purged->executor_uid;
		opt.gid = purged->executor_gid;
	}

	r = uv_spawn(purged->loop, &e->proc, &opt);
	if (r < 0) {
		log_warnx("task %s: cannot spawn executor '%s': %s", task->id, path, uv_strerror(r));
		e->exited = e->msg_eof = e->log_eof = true;
		close_all(e);
		return r;
	}
	e->pid = e->proc.pid;
	e->task = task;
	task->exec = e;

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
	job = json_pack("{s:i, s:{s:s, s:s, s:s, s:s, s:b, s:o, s:o}}", "v", PURGE_PROTO_VERSION, "job",
			"task_id", task->id, "operation", task->operation, "target", tc->name, "type", tc->type,
			"dry_run", dry_run, "settings", settings, "secrets", secrets);
	w = xcalloc(1, sizeof(*w));
	r = job ? proto_encode(job, &w->buf, &w->len) : -ENOMEM;
	json_wipe_strings(json_object_get(json_object_get(job, "job"), "secrets"));
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
