/*
 * Task lifecycle in the supervisor: admission (limits), the queue, starting
 * executors when slots free up, ends, and journaling each state change before
 * it is acknowledged. Supervisor only; no process or socket code here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/journal.h"
#include "daemon/manifest.h"
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/util.h"

/* Compact the journal when it holds this many times more records than live tasks. */
#define JOURNAL_SLACK 4

struct task *runner_active_purge(const char *target)
{
	/* Active tasks are recent: walk back from the newest until the oldest active one is passed. */
	for (size_t i = purged->tasks.n; i-- > 0;) {
		struct task *t = purged->tasks.v[i];
		if (!task_state_is_final(t->state) && strcmp(t->operation, "plan") != 0 &&
		    strcmp(t->target, target) == 0)
			return t;
	}
	return NULL;
}

/* ------------------------------------------------------- the two-person rule */

/* One timer for every awaiting task: it fires at the earliest deadline. */
static uv_timer_t approval_timer;
static bool approval_timer_ready;

static void on_approval_timer(uv_timer_t *h);

static void arm_approvals(void)
{
	int64_t first = 0;
	for (size_t i = 0; i < purged->tasks.n; i++) {
		const struct task *t = purged->tasks.v[i];
		if (t->state == TASK_AWAITING && (!first || t->approval_deadline < first))
			first = t->approval_deadline;
	}
	if (!approval_timer_ready) {
		if (!first)
			return;
		uv_timer_init(purged->loop, &approval_timer);
		uv_unref((uv_handle_t *)&approval_timer); /* never what keeps purged running */
		approval_timer_ready = true;
	}
	if (uv_is_closing((uv_handle_t *)&approval_timer))
		return;
	if (!first) {
		uv_timer_stop(&approval_timer);
		return;
	}
	int64_t wait = first - now_usec();
	uv_timer_start(&approval_timer, on_approval_timer, wait > 0 ? (uint64_t)(wait / 1000) + 1 : 0, 0);
}

static void on_approval_timer(uv_timer_t *h)
{
	int64_t now = now_usec();
	(void)h;
	for (size_t i = 0; i < purged->tasks.n; i++) {
		struct task *t = purged->tasks.v[i];
		if (t->state != TASK_AWAITING || t->approval_deadline > now)
			continue;
		char why[256];
		snprintf(why, sizeof(why), "not approved within approval_timeout (%lld s): nothing was done; ask for "
			 "the purge again and have another person approve it in time",
			 (long long)((t->approval_deadline - t->created + 999999) / 1000000));
		audit_record(&(struct caller){ .uid = -1, .name = "purged", .door = "timer" }, "tasks.expire", t->target,
			     t->id, "expired", why);
		runner_on_end(t, TASK_CANCELLED, NULL, why, NULL);
	}
	arm_approvals();
}

bool runner_protected(const struct target_conf *tc, char *msg, size_t msglen)
{
	if (!tc->protect)
		return false;
	snprintf(msg, msglen, "target '%s' is protected (protect = yes in %s); change the configuration and reload "
		 "to purge it", tc->name, tc->protect_where ? tc->protect_where : "the configuration");
	return true;
}

int runner_approve(struct task *task, const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen)
{
	const struct target_conf *tc;
	char why[512];
	int r;

	if (task->state != TASK_AWAITING) {
		*reterr = PURGE_ERR_CONFLICT;
		snprintf(msg, msglen, "task %s is not awaiting approval (it is %s); nothing to approve", task->id,
			 task_state_to_string(task->state));
		return -EALREADY;
	}
	if (!who->identity[0] || strcmp(who->identity, task->requester) == 0) {
		*reterr = PURGE_ERR_FORBIDDEN;
		snprintf(msg, msglen, "%s (%s) asked for this purge and cannot approve it: another person must, with "
			 "'purgectl approve %s' as another user allowed to use purged, or POST /v1/tasks/%s/approve "
			 "with another token; the task still awaits approval", who->name,
			 who->identity[0] ? who->identity : "unknown identity", task->id, task->id);
		return -EPERM;
	}
	/* The configuration may have changed since the request: approve only what may still run. */
	tc = config_find_target(purged->conf, task->target);
	if (!tc || runner_protected(tc, why, sizeof(why))) {
		if (!tc)
			snprintf(why, sizeof(why), "target '%s' is no longer in %s", task->target, purged->conf_path);
		*reterr = tc ? PURGE_ERR_FORBIDDEN : PURGE_ERR_NOT_FOUND;
		snprintf(msg, msglen, "%s; task %s ended without deleting anything", why, task->id);
		task_set_error(task, "approval refused: %s", why);
		runner_on_end(task, TASK_FAILED, NULL, NULL, NULL);
		arm_approvals();
		return -EPERM;
	}
	free(task->approved_by);
	task->approved_by = xasprintf("%s (%s)", who->name, who->identity);
	task->state = TASK_QUEUED;
	/* Durable before acknowledged, like a new task. */
	r = runner_persist(task);
	if (r < 0) {
		task->state = TASK_AWAITING;
		free(task->approved_by);
		task->approved_by = NULL;
		*reterr = PURGE_ERR_UNAVAILABLE;
		snprintf(msg, msglen, "cannot record the approval in the journal under %s: %s; free space or fix the "
			 "state directory, then approve again", purged->conf->state_dir, strerror(-r));
		return r;
	}
	purged->queued++;
	log_info("task %s: %s of '%s' approved by %s (%s), asked by %s (%s)", task->id, task->operation, task->target,
		 who->name, who->identity, task->who, task->requester);
	watch_notify(task, "state");
	arm_approvals();
	runner_schedule();
	return 0;
}

int runner_reject(struct task *task, const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen)
{
	char why[192];
	if (task->state != TASK_AWAITING) {
		*reterr = PURGE_ERR_CONFLICT;
		snprintf(msg, msglen, "task %s is not awaiting approval (it is %s); nothing to reject%s", task->id,
			 task_state_to_string(task->state),
			 task_state_is_final(task->state) ? "" : ": use 'purgectl cancel' to stop it");
		return -EALREADY;
	}
	free(task->approved_by);
	task->approved_by = xasprintf("%s (%s)", who->name, who->identity);
	snprintf(why, sizeof(why), "rejected by %s (%s): nothing was done", who->name, who->identity);
	runner_on_end(task, TASK_CANCELLED, NULL, why, NULL);
	arm_approvals();
	return 0;
}

static void compact_journal(void)
{
	size_t n = purged->tasks.n;
	json_t **recs;
	int r;

	if (journal_records(purged->journal) <= JOURNAL_SLACK * n + 1000)
		return;
	recs = xcalloc(n, sizeof(*recs));
	for (size_t i = 0; i < n; i++)
		recs[i] = task_to_json(purged->tasks.v[i]);
	r = journal_rewrite(purged->journal, recs, n);
	if (r < 0)
		log_warnx("journal: compaction of %zu records failed: %s, ignoring", n, strerror(-r));
	else
		log_debug("journal: compacted to %zu records", n);
	for (size_t i = 0; i < n; i++)
		json_decref(recs[i]);
	free(recs);
}

int runner_persist(struct task *task)
{
	json_t *j = task_to_json(task);
	/*
	 * Durable before acknowledged: "queued" is acknowledged to the client and
	 * an end to watchers, so both are synced. "started" is acknowledged to
	 * no one, and the next synced record carries it; a crash before then
	 * leaves the task "queued", which the restart fails just the same.
	 */
	int r = journal_append(purged->journal, j, task->state != TASK_STARTED);
	json_decref(j);
	if (r < 0)
		log_warnx("journal: cannot record task %s (%s): %s", task->id,
			  task_state_to_string(task->state), strerror(-r));
	return r;
}

struct task *runner_submit(const char *target, const char *operation, const json_t *params,
			   const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen)
{
	const struct target_conf *tc = config_find_target(purged->conf, target);
	struct task *task, *active;
	int r;

	if (purged->stopping) {
		*reterr = PURGE_ERR_UNAVAILABLE;
		snprintf(msg, msglen, "purged is shutting down; try again once it is back");
		return NULL;
	}
	if (!tc) {
		*reterr = PURGE_ERR_NOT_FOUND;
		snprintf(msg, msglen, "no target '%s' in %s; see 'purgectl targets'", target, purged->conf_path);
		return NULL;
	}
	if (json_is_true(json_object_get(tc->settings, "probe")) && !purged->test_probes) {
		*reterr = PURGE_ERR_FORBIDDEN;
		snprintf(msg, msglen, "target '%s' is a sandbox probe: it runs only under purged --test-probes", target);
		return NULL;
	}
	if (json_integer_value(json_object_get(tc->settings, "test_pause_ms")) > 0 && !purged->test_probes) {
		*reterr = PURGE_ERR_FORBIDDEN;
		snprintf(msg, msglen, "target '%s' sets test_pause_ms, a setting for tests: it runs only under purged "
			 "--test-probes; remove test_pause_ms from its section", target);
		return NULL;
	}
	bool purge = strcmp(operation, "plan") != 0;
	/* A restore puts data back: protection and approvals guard deletions only. It still takes the target. */
	bool deletes = purge && strcmp(operation, "restore") != 0;
	if (deletes && runner_protected(tc, msg, msglen)) {
		*reterr = PURGE_ERR_FORBIDDEN;
		return NULL;
	}
	if (purge && (active = runner_active_purge(target))) {
		*reterr = PURGE_ERR_CONFLICT;
		snprintf(msg, msglen, "target '%s' is already being %s by task %s (%s); wait for it or cancel it",
			 target, strcmp(active->operation, "restore") == 0 ? "restored" : "purged", active->id,
			 task_state_to_string(active->state));
		return NULL;
	}
	bool awaiting = deletes && tc->approvals > 0;
	/* An awaiting task takes no slot in the queue until it is approved. */
	if (!awaiting && purged->running >= purged->conf->max_executors && purged->queued >= purged->conf->max_queue) {
		*reterr = PURGE_ERR_BUSY;
		snprintf(msg, msglen, "queue full: %u tasks running and %u queued (max_queue = %u); try again later",
			 purged->running, purged->queued, purged->conf->max_queue);
		return NULL;
	}

	task = task_table_add(&purged->tasks, target, operation, who->name, who->uid, who->door, now_usec());
	task->params = params ? json_deep_copy(params) : NULL;
	if (awaiting) {
		task->state = TASK_AWAITING;
		task->requester = xstrdup(who->identity);
		/* Whole seconds: the journal's precision, so a restart keeps the same deadline. */
		task->approval_deadline = (task->created / 1000000 + tc->approval_timeout) * 1000000;
		task->may_approve = xasprintf("anyone allowed to use purged (root, the group '%s', a REST token) except "
					      "%s, who asked", purged->conf->control_group, who->identity);
	}
	/* Durable before acknowledged: a task we cannot record is not accepted. */
	r = runner_persist(task);
	if (r < 0) {
		*reterr = PURGE_ERR_UNAVAILABLE;
		snprintf(msg, msglen, "cannot record the task in the journal under %s: %s; free space or fix the "
			 "state directory, then retry", purged->conf->state_dir, strerror(-r));
		purged->tasks.n--; /* it is the last one: ids only grow */
		task_free(task);
		return NULL;
	}
	if (awaiting) {
		log_info("task %s: %s of '%s' asked by %s (%s, %s): awaits approval by another person for %u s", task->id,
			 operation, target, who->name, who->identity, who->door, tc->approval_timeout);
		arm_approvals();
	} else {
		purged->queued++;
		log_info("task %s: %s of '%s' queued by %s (%s)", task->id, operation, target, who->name, who->door);
	}
	task_table_prune(&purged->tasks, purged->conf->keep_tasks);
	compact_journal();
	return task;
}

void runner_schedule(void)
{
	for (size_t i = 0; i < purged->tasks.n && purged->running < purged->conf->max_executors && !purged->stopping;
	     i++) {
		struct task *t = purged->tasks.v[i];
		const struct target_conf *tc;

		if (t->state != TASK_QUEUED)
			continue;
		tc = config_find_target(purged->conf, t->target);
		if (!tc) {
			purged->queued--;
			runner_on_end(t, TASK_FAILED, NULL, "its target was removed from the configuration by a reload", NULL);
			continue;
		}
		char why[512];
		if (strcmp(t->operation, "plan") != 0 && strcmp(t->operation, "restore") != 0 &&
		    runner_protected(tc, why, sizeof(why))) {
			/* Checked again at start: a reload may have protected it since the request or its approval. */
			purged->queued--;
			runner_on_end(t, TASK_FAILED, NULL, why, NULL);
			continue;
		}
		if (exec_start(t, tc, strcmp(t->operation, "plan") == 0) < 0) {
			purged->queued--;
			/* A refusal (its archive could not be opened) has set the task's error already. */
			runner_on_end(t, TASK_FAILED, NULL,
				      t->error ? NULL : "the executor could not be started (see the daemon's log)", NULL);
			continue;
		}
		purged->queued--;
		purged->running++;
	}
}

void runner_on_started(struct task *task)
{
	task->state = TASK_STARTED;
	task->started = now_usec();
	runner_persist(task);
	watch_notify(task, "state");
}

void runner_on_progress(struct task *task, const char *step, uint64_t done, uint64_t total)
{
	if (step && (!task->step || strcmp(task->step, step) != 0)) {
		free(task->step);
		task->step = xstrdup(step);
	}
	task->done = done;
	task->total = total;
	watch_notify(task, "progress");
}

void runner_on_end(struct task *task, enum task_state state, json_t *counts, const char *error, json_t *errors)
{
	if (task->exec)
		purged->running--;
	task->exec = NULL;
	task->state = state;
	task->ended = now_usec();
	if (counts) {
		json_decref(task->counts);
		task->counts = json_deep_copy(counts);
	}
	if (error)
		task_set_error(task, "%s", error);
	if (json_array_size(errors)) {
		json_decref(task->errors);
		task->errors = json_deep_copy(errors);
	} else if (state != TASK_FINISHED && task->error) {
		json_array_append_new(task->errors,
				      json_pack("{s:s, s:s, s:s}", "target", task->target, "error_code",
						state == TASK_CANCELLED ? "cancelled" : "failed", "description", task->error));
	}
	runner_persist(task);
	if (state == TASK_FINISHED)
		log_info("task %s: %s of '%s' finished (%llu/%llu objects)", task->id, task->operation,
			 task->target, (unsigned long long)task->done, (unsigned long long)task->total);
	else
		log_warnx("task %s: %s of '%s' %s: %s", task->id, task->operation, task->target,
			  task_state_to_string(state), task->error ? task->error : "no reason given");
	watch_notify(task, "end");
	if (!purged->stopping)
		runner_schedule();
}

int runner_cancel(struct task *task, const struct caller *who, enum purge_err *reterr, char *msg, size_t msglen)
{
	if (task_state_is_final(task->state)) {
		*reterr = PURGE_ERR_CONFLICT;
		snprintf(msg, msglen, "task %s has already ended (%s); nothing to cancel", task->id,
			 task_state_to_string(task->state));
		return -EALREADY;
	}
	char why[128];
	snprintf(why, sizeof(why), "cancelled by %s", who->name);
	if (task->state == TASK_QUEUED || task->state == TASK_AWAITING) {
		if (task->state == TASK_QUEUED)
			purged->queued--;
		runner_on_end(task, TASK_CANCELLED, NULL, why, NULL);
		arm_approvals();
		return 0;
	}
	task->cancel_requested = true;
	task_set_error(task, "%s", why);
	exec_stop(task->exec, purged->conf->cancel_grace, NULL);
	return 0;
}

unsigned runner_stop_all(void)
{
	static const struct caller shutdown = { .uid = 0, .name = "daemon shutdown", .door = "ctl" };
	enum purge_err e;
	char msg[256];

	for (size_t i = 0; i < purged->tasks.n; i++) {
		struct task *t = purged->tasks.v[i];
		/* An awaiting task stays awaiting across a restart, its deadline intact. */
		if (!task_state_is_final(t->state) && t->state != TASK_AWAITING)
			runner_cancel(t, &shutdown, &e, msg, sizeof(msg));
	}
	return purged->running;
}

/*
 * A purge interrupted by a restart may have left an archive (archive = yes):
 * what its executor sealed before the daemon went. It is hashed in the
 * thread pool and recorded on the task (its records uncounted), or removed
 * when empty, so that what was deleted can still be read or restored.
 */
static void on_orphan_hashed(void *data, int err, uint64_t bytes, const char *hex)
{
	char *id = data;
	struct task *t = task_table_find(&purged->tasks, id);
	char *path = archives_path(id);

	if (err || !t) {
		if (err)
			log_warnx("task %s: cannot hash the archive %s left by the restart: %s; it is kept, unrecorded", id,
				  path, strerror(err));
	} else if (bytes == 0) {
		unlink(path);
	} else {
		json_decref(t->archive);
		t->archive = json_pack("{s:s, s:I, s:s}", "file", path, "bytes", (json_int_t)bytes, "sha256", hex);
		task_warn(t, "the archive %s holds what the executor wrote before the daemon stopped (%llu bytes, records "
			  "uncounted); what it sealed was archived before being deleted: read it with purgectl archive %s",
			  path, (unsigned long long)bytes, id);
		runner_persist(t);
		log_info("task %s: archive %s left by the restart recorded (%llu bytes)", id, path,
			 (unsigned long long)bytes);
	}
	free(path);
	free(id);
}

static void record_orphan_archive(struct task *t)
{
	struct stat st;
	char *path = archives_path(t->id);
	if (!t->archive && lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		char *id = xstrdup(t->id);
		if (archives_hash(path, on_orphan_hashed, id) < 0)
			free(id);
	}
	free(path);
}

static void restore_one(const json_t *record, void *userdata)
{
	struct task *t = task_from_json(record);
	(void)userdata;
	if (!t) {
		log_warnx("journal: a record with a valid checksum does not describe a task, ignoring");
		return;
	}
	task_table_put(&purged->tasks, t);
}

void runner_restore(void)
{
	struct journal_report rep;
	size_t interrupted = 0, awaiting = 0;
	int r;

	r = journal_open(purged->conf->state_dir, restore_one, NULL, &purged->journal, &rep);
	if (r < 0)
		fatalx("cannot open the journal in %s: %s; check that the directory exists and is writable by "
		       "the daemon", purged->conf->state_dir, strerror(-r));
	if (rep.skipped)
		log_warnx("journal: skipped %zu corrupt record(s) in the middle of the file (first at offset %ld)",
			  rep.skipped, rep.first_bad_offset);
	if (rep.torn_bytes)
		log_warnx("journal: torn or corrupt tail of %zu bytes truncated; the %zu records before it are kept",
			  rep.torn_bytes, rep.records);

	for (size_t i = 0; i < purged->tasks.n; i++) {
		struct task *t = purged->tasks.v[i];
		if (task_state_is_final(t->state))
			continue;
		if (t->state == TASK_AWAITING && !t->needs_request_credentials) {
			awaiting++; /* the timer expires those whose deadline passed while purged was down */
			continue;
		}
		if (t->state == TASK_AWAITING) {
			t->state = TASK_FAILED;
			t->ended = now_usec();
			task_set_error(t, "the credentials this purge was asked with (the REST request's body) are never "
				       "journaled and were lost at the daemon's restart: ask for the purge again");
			runner_persist(t);
			interrupted++;
			continue;
		}
		/* Never silently lost, never silently re-run. */
		t->state = TASK_FAILED;
		t->ended = now_usec();
		task_set_error(t, "interrupted by daemon restart");
		if (strcmp(t->operation, "plan") != 0) {
			/* Counts were journaled up to a second before; the manifest has every entry received. */
			json_t *listed = manifest_count(purged->conf->state_dir, t->id), *n;
			const char *kind;
			json_object_foreach(listed, kind, n) {
				json_t *c = json_object_get(t->counts, kind);
				if (!c || json_integer_value(c) < json_integer_value(n))
					json_object_set(t->counts, kind, n);
			}
			json_decref(listed);
			task_warn(t, "purged stopped while this purge ran: its counts and manifest hold the deletions "
				  "confirmed until then; the executor may have deleted more: plan the target again");
			if (strcmp(t->operation, "restore") != 0)
				record_orphan_archive(t);
		}
		runner_persist(t);
		interrupted++;
	}
	task_table_prune(&purged->tasks, purged->conf->keep_tasks);
	log_info("journal: %zu task(s) restored, %zu interrupted by the restart marked failed, %zu awaiting approval",
		 purged->tasks.n, interrupted, awaiting);
	compact_journal();
	arm_approvals();
}
