/*
 * Request handlers, one per op, behind one dispatch table (as OpenSSH's
 * mon_table): authorization first, then the handler, then the audit line for
 * ops that change something. Supervisor only; transport lives in control.c.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "buildconf.h"
#include "daemon/backends.h"
#include "daemon/manifest.h"
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/proto_pack.h"
#include "purged/util.h"

#define LIST_DEFAULT 50
#define LIST_MAX 1000

/*
 * A handler returns its reply, or ANSWERED when it has sent it already or
 * answers later (plan, watch). NULL means only "the reply could not be built"
 * (out of memory): ops_dispatch refuses by closing the connection. No NULL
 * ever means "no error".
 */
static char answered_marker;
#define ANSWERED ((json_t *)&answered_marker)

/* {id, ok, result: task}; NULL when the task cannot be rendered, never a success without it. */
static json_t *reply_task(uint64_t id, const struct task *t)
{
	json_t *j = task_to_json(t);
	return j ? proto_reply_ok(id, j) : NULL;
}

typedef json_t *(*op_fn)(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args);

static json_t *op_status(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	(void)c, (void)who, (void)args;
	return proto_reply_ok(id, json_pack("{s:s, s:i, s:I, s:i, s:i, s:i, s:i, s:I, s:i, s:s, s:s}",
					    "version", PURGED_VERSION,
					    "protocol", PURGE_PROTO_VERSION,
					    "uptime", (json_int_t)((mono_usec() - purged->started_mono) / 1000000),
					    "running", purged->running,
					    "queued", purged->queued,
					    "max_executors", purged->conf->max_executors,
					    "max_queue", purged->conf->max_queue,
					    "tasks", (json_int_t)purged->tasks.n,
					    "targets", (int)purged->conf->n_targets,
					    "config", purged->conf_path,
					    "state_dir", purged->conf->state_dir));
}

static json_t *op_targets_list(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *arr = json_array();
	(void)c, (void)who, (void)args;

	for (size_t i = 0; i < purged->conf->n_targets; i++) {
		const struct target_conf *tc = &purged->conf->targets[i];
		struct task *active = runner_active_purge(tc->name);
		json_t *secret_keys = json_array();
		const char *k;
		json_t *v;
		/* Which secrets are configured, never their values. */
		json_object_foreach(tc->secrets, k, v)
			json_array_append_new(secret_keys, json_string(k));
		json_array_append_new(arr, json_pack("{s:s, s:s, s:O, s:o, s:o, s:b, s:i, s:i, s:b, s:I}", "name", tc->name,
						     "type", tc->type, "settings", tc->settings, "secrets", secret_keys,
						     "active_task", active ? json_string(active->id) : json_null(),
						     "protect", tc->protect, "approvals", (int)tc->approvals,
						     "approval_timeout", (int)tc->approval_timeout, "archive", tc->archive,
						     "archive_max_bytes", (json_int_t)tc->archive_max_bytes));
	}
	return proto_reply_ok(id, arr);
}

/* The new task, or NULL with *ret_refusal set (to NULL too when even that could not be built). */
static struct task *submit(const struct caller *who, uint64_t id, const char *target, const char *operation,
			   const json_t *params, json_t **ret_refusal)
{
	enum purge_err e;
	char msg[512];
	struct task *t = runner_submit(target, operation, params, who, &e, msg, sizeof(msg));
	if (!t)
		*ret_refusal = proto_reply_error(id, e, "%s", msg);
	return t;
}

static json_t *op_plan(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *err = NULL;
	/* Checked before the task exists: every plan gets exactly one answer, now or when it ends. */
	if (!watch_has_room(c))
		return proto_reply_error(id, PURGE_ERR_BUSY, "too many plans and watches waiting on this connection "
					 "(%u); wait for one to end, or use another connection", watch_limit(c));
	struct task *t = submit(who, id, json_string_value(json_object_get(args, "target")), "plan", NULL, &err);
	if (!t)
		return err;
	if (watch_add(c, id, t, WATCH_REPLY_END) < 0) /* cannot happen: room was checked above */
		return proto_reply_error(id, PURGE_ERR_BUSY, "plan task %s started, but its answer cannot be waited "
					 "for here: follow it with purgectl task %s", t->id, t->id);
	runner_schedule();
	return ANSWERED;
}

/*
 * A REST body may name the endpoint it believes it is purging (Lucid Chain's
 * server/port/api_path). It must be the configured target's, or nothing is
 * done: a client must never steer a purge to another system.
 */
static bool endpoint_matches(uint64_t id, const json_t *args, json_t **ret_refusal)
{
	const char *name = json_string_value(json_object_get(args, "target"));
	const struct target_conf *tc = config_find_target(purged->conf, name);
	json_t *ep = json_object_get(args, "endpoint");
	const char *key;
	json_t *v;

	if (!tc || !ep)
		return true;
	json_object_foreach(ep, key, v) {
		json_t *mine = json_object_get(tc->endpoint, key);
		if (!mine || !json_equal(mine, v)) {
			char *given = json_dumps(v, JSON_ENCODE_ANY);
			/* NULL here (out of memory) is still a refusal: ops_dispatch answers it. */
			/* The value is quoted short: the sentence must end with "nothing was done". */
			*ret_refusal = proto_reply_error(id, PURGE_ERR_FORBIDDEN,
							 "%s %.80s%s does not match target '%s' (%s); nothing was done", key,
							 given ? given : "?", given && strlen(given) > 80 ? "…" : "", name,
							 mine ? "configured otherwise" : "it has no such endpoint setting");
			free(given);
			return false;
		}
	}
	return true;
}

static json_t *op_purge(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	struct task *t;
	json_t *err = NULL;
	if (!endpoint_matches(id, args, &err))
		return err;
	const struct target_conf *tc = config_find_target(purged->conf, json_string_value(json_object_get(args, "target")));
	if (tc && backend_by_instances(tc->type))
		return proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "'%s' is an Active-Active database: purge it with "
					 "%s and the instances to purge (purgectl crdb purge GUID --instances 1,2)",
					 tc->name, purge_op_to_string(PURGE_OP_CRDB_PURGE));
	t = submit(who, id, tc ? tc->name : json_string_value(json_object_get(args, "target")), "purge", NULL, &err);
	if (!t)
		return err;
	/*
	 * A REST body's username/password replace the configured credentials only
	 * where the target says so, for this task only; they are never journaled
	 * or logged. Elsewhere they are ignored.
	 */
	json_t *creds = json_object_get(args, "credentials");
	if (creds && json_is_true(json_object_get(tc->settings, "accept_request_credentials"))) {
		t->request_credentials = json_deep_copy(creds);
		if (t->state == TASK_AWAITING) {
			/* Journaled as a flag only: a restart ends the task, it cannot run without them. */
			t->needs_request_credentials = true;
			if (runner_persist(t) < 0) {
				/* Unrecorded, a restart would keep it awaiting and run it without them: end it now. */
				runner_on_end(t, TASK_FAILED, NULL, "the journal could not record that this purge holds "
					      "credentials from its request", NULL);
				return proto_reply_error(id, PURGE_ERR_UNAVAILABLE, "cannot record task %s in the journal "
							 "under %s; free space or fix the state directory, then retry; "
							 "nothing was done", t->id, purged->conf->state_dir);
			}
		}
	} else if (creds)
		log_debug("purge of '%s': credentials in the request ignored (accept_request_credentials is off)",
			  tc->name);
	runner_schedule();
	return reply_task(id, t);
}

static json_t *op_tasks_list(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *lim = json_object_get(args, "limit"), *off = json_object_get(args, "offset");
	const char *target = json_string_value(json_object_get(args, "target"));
	const char *operation = json_string_value(json_object_get(args, "operation"));
	size_t limit = lim ? (size_t)json_integer_value(lim) : LIST_DEFAULT;
	size_t offset = off ? (size_t)json_integer_value(off) : 0;
	json_t *arr = json_array();
	size_t seen = 0;
	(void)c, (void)who;

	if (limit == 0 || limit > LIST_MAX)
		return proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "limit must be from 1 to %d", LIST_MAX);
	/* Newest first. Without a filter this is O(limit): the table is in creation order. */
	for (size_t i = purged->tasks.n; i-- > 0 && json_array_size(arr) < limit;) {
		struct task *t = purged->tasks.v[i];
		if ((target && strcmp(t->target, target) != 0) || (operation && strcmp(t->operation, operation) != 0))
			continue;
		if (seen++ < offset)
			continue;
		json_array_append_new(arr, task_to_json(t));
	}
	return proto_reply_ok(id, json_pack("{s:o, s:I, s:I, s:I}", "tasks", arr, "total",
					    (json_int_t)purged->tasks.n, "offset", (json_int_t)offset, "limit",
					    (json_int_t)limit));
}

static struct task *find_task(uint64_t id, const json_t *args, json_t **ret_err)
{
	const char *tid = json_string_value(json_object_get(args, "id"));
	struct task *t = task_table_find(&purged->tasks, tid);
	if (!t)
		*ret_err = proto_reply_error(id, PURGE_ERR_NOT_FOUND, "no task %s (finished tasks are kept up to "
					     "keep_tasks = %u)", tid, purged->conf->keep_tasks);
	return t;
}

static json_t *op_tasks_get(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *err = NULL;
	struct task *t = find_task(id, args, &err);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint8_t *frame;
	size_t len;
	(void)who;

	if (!t)
		return err;
	/* The hottest reply (clients poll their task): packed straight from the task, no tree. */
	int r = proto_frame_begin(&sb, &pk);
	if (r >= 0)
		r = proto_pack_reply_ok_head(&pk, id);
	if (r >= 0)
		r = task_pack(t, &pk);
	if (proto_frame_end(&sb, r, &frame, &len) < 0)
		return proto_reply_error(id, PURGE_ERR_INTERNAL, "task %s could not be encoded", t->id);
	ctl_send_frame(c, frame, len);
	return ANSWERED;
}

static json_t *op_tasks_cancel(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *err = NULL;
	struct task *t = find_task(id, args, &err);
	enum purge_err e;
	char msg[256];
	(void)c;

	if (!t)
		return err;
	if (runner_cancel(t, who, &e, msg, sizeof(msg)) < 0)
		return proto_reply_error(id, e, "%s", msg);
	return reply_task(id, t);
}

/* The two-person rule: approve or reject a purge awaiting approval. */
static json_t *op_tasks_decide(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args,
			       bool approve)
{
	json_t *err = NULL;
	struct task *t = find_task(id, args, &err);
	enum purge_err e;
	char msg[768];
	(void)c;

	if (!t)
		return err;
	if ((approve ? runner_approve : runner_reject)(t, who, &e, msg, sizeof(msg)) < 0)
		return proto_reply_error(id, e, "%s", msg);
	return reply_task(id, t);
}

static json_t *op_tasks_approve(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	return op_tasks_decide(c, who, id, args, true);
}

static json_t *op_tasks_reject(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	return op_tasks_decide(c, who, id, args, false);
}

static json_t *op_tasks_manifest(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *err = NULL, *lim = json_object_get(args, "limit");
	struct task *t = find_task(id, args, &err);
	size_t limit = lim ? (size_t)json_integer_value(lim) : 1000;
	json_t *res;
	(void)c, (void)who;

	if (!t)
		return err;
	if (limit == 0 || limit > 5000)
		return proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "limit must be from 1 to 5000");
	res = manifest_read(purged->conf->state_dir, t->id, (size_t)json_integer_value(json_object_get(args, "offset")),
			    limit);
	if (!res)
		return proto_reply_error(id, PURGE_ERR_INTERNAL, "cannot read the manifest of task %s under %s/manifests",
					 t->id, purged->conf->state_dir);
	return proto_reply_ok(id, res);
}

/*
 * Which connections have had the reading of which archive audited: the last 64, by the connection's
 * serial number (never reused); one forgotten only audits once more. Noted only once the audit line
 * is written, so a refusal for want of it is not a free pass for the next request.
 */
static struct {
	uint64_t conn;
	char id[PURGE_TASK_ID_LEN + 1];
} archive_readers[64];
static unsigned archive_readers_next;

static bool archive_read_audited(const struct ctl_conn *c, const char *task_id)
{
	uint64_t serial = ctl_conn_serial(c);
	for (unsigned i = 0; i < 64; i++)
		if (archive_readers[i].conn == serial && strcmp(archive_readers[i].id, task_id) == 0)
			return true;
	return false;
}

static void archive_read_note(const struct ctl_conn *c, const char *task_id)
{
	archive_readers[archive_readers_next].conn = ctl_conn_serial(c);
	snprintf(archive_readers[archive_readers_next].id, sizeof(archive_readers[0].id), "%s", task_id);
	archive_readers_next = (archive_readers_next + 1) % 64;
}

/* A chunk of a task's archive: purgectl archive fetches them all, checks size and SHA-256, decompresses. */
static json_t *op_tasks_archive(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *err = NULL, *res;
	struct task *t = find_task(id, args, &err);
	char why[768];

	if (!t)
		return err;
	if (!t->archive) {
		const struct target_conf *tc = config_find_target(purged->conf, t->target);
		if (strcmp(t->operation, "plan") == 0 || strcmp(t->operation, "restore") == 0)
			return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "task %s is a %s of '%s': only a purge keeps an "
						 "archive", t->id, t->operation, t->target);
		if (!task_state_is_final(t->state))
			return proto_reply_error(id, PURGE_ERR_CONFLICT, "task %s has not ended (%s): its archive is "
						 "recorded when it does; wait for it (purgectl wait %s)", t->id,
						 task_state_to_string(t->state), t->id);
		return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "task %s has no archive (archive = %s on target "
					 "'%s'%s, or it archived nothing)", t->id, tc && tc->archive ? "yes" : "no",
					 t->target, tc && tc->archive ? " now; it may have been off when the task ran" :
					 " when it ran");
	}
	uint64_t offset = (uint64_t)json_integer_value(json_object_get(args, "offset"));
	res = archives_read_chunk(t, offset, why, sizeof(why));
	if (!res)
		return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "task %s: %s", t->id, why);
	/* Reading what a purge deleted is audited like the purge: once per connection and archive, whatever
	 * chunk comes first (a reader skipping the first chunk is audited all the same), failing closed. */
	if (!archive_read_audited(c, t->id)) {
		if (audit_record(who, purge_op_to_string(PURGE_OP_TASKS_ARCHIVE), t->target, t->id, "ok",
				 "archive read") < 0) {
			json_decref(res);
			return proto_reply_error(id, PURGE_ERR_UNAVAILABLE, "cannot write the audit log %s/audit.jsonl: "
						 "%s; the archive is not given out unaudited", purged->conf->state_dir,
						 audit_last_error());
		}
		archive_read_note(c, t->id);
	}
	return proto_reply_ok(id, res);
}

/*
 * Put back what a crdb purge archived: a new task ("restore") on the same
 * database, with fd 4 the purge's archive, read-only. Protection and
 * approvals guard deletions, not this; the database must still be configured.
 */
static json_t *op_crdb_restore(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	const char *src_id = json_string_value(json_object_get(args, "task"));
	const char *guid = json_string_value(json_object_get(args, "guid"));
	struct task *src = task_table_find(&purged->tasks, src_id), *t;
	json_t *params, *err = NULL;
	(void)c;

	if (!src)
		return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "no task %s (finished tasks are kept up to keep_tasks "
					 "= %u)", src_id, purged->conf->keep_tasks);
	if (strcmp(src->operation, purge_op_to_string(PURGE_OP_CRDB_PURGE)) != 0)
		return proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "task %s is a %s of '%s', not a purge of an "
					 "Active-Active database: only a crdb purge's archive can be restored; read other "
					 "archives with purgectl archive %s", src->id, src->operation, src->target, src->id);
	if (guid && strcmp(guid, src->target) != 0)
		return proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "task %s purged '%s', not '%s'; nothing was done",
					 src->id, src->target, guid);
	if (!task_state_is_final(src->state))
		return proto_reply_error(id, PURGE_ERR_CONFLICT, "task %s has not ended (%s): restore once it has "
					 "(purgectl wait %s)", src->id, task_state_to_string(src->state), src->id);
	if (!src->archive)
		return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "task %s has no archive (archive = no on [crdb %s] "
					 "when it ran, or it archived nothing): there is nothing to restore", src->id,
					 src->target);
	char why[768];
	int fd;
	if (archives_open_read(json_string_value(json_object_get(src->archive, "file")) ?: "", &fd, why, sizeof(why)) < 0)
		return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "task %s: %s; nothing was restored", src->id, why);
	close(fd);
	const struct target_conf *tc = config_find_target(purged->conf, src->target);
	if (!tc || !backend_by_instances(tc->type))
		return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "no Active-Active database '%s' in %s any more: add "
					 "its [crdb %s] section back and reload to restore into it", src->target,
					 purged->conf_path, src->target);
	params = json_pack("{s:s, s:O, s:O, s:b}", "archive_task", src->id, "file",
			   json_object_get(src->archive, "file"), "sha256", json_object_get(src->archive, "sha256"),
			   "replace", json_is_true(json_object_get(args, "replace")));
	/* The purge's instances only: the archive holds nothing of the others. */
	if (params && json_object_get(src->params, "instances"))
		json_object_set(params, "instances", json_object_get(src->params, "instances"));
	t = params ? submit(who, id, src->target, "restore", params, &err) : NULL;
	json_decref(params);
	if (!t)
		return err;
	runner_schedule();
	return reply_task(id, t);
}

static json_t *op_tasks_watch(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *err = NULL;
	struct task *t = find_task(id, args, &err);
	(void)who;

	if (!t)
		return err;
	/* One answer: a refusal, or the reply (the current state) and events until "end". */
	if (!task_state_is_final(t->state) && !watch_has_room(c))
		return proto_reply_error(id, PURGE_ERR_BUSY, "too many plans and watches waiting on this connection "
					 "(%u); wait for one to end, or use another connection", watch_limit(c));
	ctl_send(c, reply_task(id, t));
	if (task_state_is_final(t->state)) {
		ctl_send(c, proto_event_new(id, "end", task_to_json(t)));
		return ANSWERED;
	}
	watch_add(c, id, t, WATCH_STREAM); /* room was checked above */
	return ANSWERED;
}

static json_t *op_reload(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	struct config_errors errs = { 0 };
	json_t *reply;
	(void)c, (void)who, (void)args;

	if (supervisor_reload(&errs) < 0) {
		size_t cap = 4096, len = 0;
		char *msg = xcalloc(1, cap);
		len += (size_t)snprintf(msg, cap, "the new configuration was rejected; the old one stays:");
		for (size_t i = 0; i < errs.n && len < cap - 1; i++)
			len += (size_t)snprintf(msg + len, cap - len, "\n%s", errs.v[i]);
		reply = proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "%s", msg);
		free(msg);
	} else {
		reply = proto_reply_ok(id, json_pack("{s:b, s:i}", "reloaded", 1, "targets",
						     (int)purged->conf->n_targets));
	}
	config_errors_clear(&errs);
	return reply;
}

/*
 * PUT /v1/crdbs/{guid}/purge: every instance named must be configured for
 * that database before anything is deleted.
 */
static json_t *op_crdb_purge(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	const char *guid = json_string_value(json_object_get(args, "guid"));
	const json_t *ids = json_object_get(args, "instances");
	const struct target_conf *tc = config_find_target(purged->conf, guid);
	struct task *t;
	json_t *inst, *params, *err = NULL;
	size_t i;
	json_t *v;

	if (!tc || !backend_by_instances(tc->type))
		return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "no Active-Active database '%s' in %s", guid,
					 purged->conf_path);
	inst = json_object_get(tc->settings, "instances");
	json_array_foreach(ids, i, v) {
		char key[16];
		snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(v));
		if (!json_object_get(inst, key))
			return proto_reply_error(id, PURGE_ERR_NOT_FOUND, "instance %s is not configured for '%s' "
						 "(configured: instance.N keys of [crdb %s])", key, guid, guid);
	}
	params = json_pack("{s:O}", "instances", ids);
	t = params ? submit(who, id, guid, purge_op_to_string(PURGE_OP_CRDB_PURGE), params, &err) : NULL;
	json_decref(params);
	if (!t)
		return err;
	runner_schedule();
	return reply_task(id, t);
}

/* Task counts by target and status, for Prometheus. O(tasks): scrapes are rare; status stays O(1). */
static json_t *op_metrics(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	json_t *by = json_object(), *arr = json_array();
	const char *target;
	json_t *states;
	(void)c, (void)who, (void)args;

	for (size_t i = 0; i < purged->tasks.n; i++) {
		const struct task *t = purged->tasks.v[i];
		json_t *s = json_object_get(by, t->target);
		if (!s) {
			s = json_object();
			json_object_set_new(by, t->target, s);
		}
		const char *st = task_state_to_string(t->state);
		json_object_set_new(s, st, json_integer(json_integer_value(json_object_get(s, st)) + 1));
	}
	json_object_foreach(by, target, states) {
		const char *st;
		json_t *n;
		json_object_foreach(states, st, n)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:O}", "target", target, "status", st, "count", n));
	}
	json_decref(by);
	return proto_reply_ok(id, json_pack("{s:o, s:i, s:i, s:i}", "tasks", arr, "running", purged->running, "queued",
					    purged->queued, "max_executors", purged->conf->max_executors));
}

/*
 * purged-rest's own refusals (401s for a missing or malformed token), counted
 * per client address and reported every few seconds: audited in aggregate.
 * Only purged-rest's link may report them.
 */
static json_t *op_rest_refusals(struct ctl_conn *c, const struct caller *who, uint64_t id, const json_t *args)
{
	static const struct {
		const char *code, *text;
	} reasons[] = {
		{ "missing_token", "HTTP requests without a bearer token" },
		{ "malformed_token", "HTTP requests with a malformed bearer token" },
	};
	const char *reason = json_string_value(json_object_get(args, "reason"));
	const char *text = NULL;

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]) && !text; i++)
		if (strcmp(reason, reasons[i].code) == 0)
			text = reasons[i].text;
	if (!text)
		return proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "unknown refusal reason '%s' (known: missing_token, "
					 "malformed_token)", reason);
	audit_refusal(who, json_string_value(json_object_get(args, "address")), text,
		      (uint64_t)json_integer_value(json_object_get(args, "count")));
	return proto_reply_ok(id, NULL);
}

/* One handler per op, named in its row (purged/proto.h): a row without its op_<handler> does not build. */
static const op_fn handlers[_PURGE_OP_MAX] = {
#define PURGE_OP_HANDLER(e, handler, name, flags, args) [PURGE_OP_##e] = op_##handler,
	PURGE_OPS(PURGE_OP_HANDLER)
#undef PURGE_OP_HANDLER
};

static void audit_reply(const struct caller *who, enum purge_op op, const json_t *args, const json_t *reply)
{
	const char *target = json_string_value(json_object_get(args, "target"));
	const char *task_id = json_string_value(json_object_get(args, "id"));
	if (!target)
		target = json_string_value(json_object_get(args, "guid"));
	json_t *result = json_object_get(reply, "result");
	json_t *error = json_object_get(reply, "error");

	if (json_is_object(result)) {
		if (!target)
			target = json_string_value(json_object_get(result, "target"));
		if (!task_id)
			task_id = json_string_value(json_object_get(result, "id"));
	}
	/* A refused cancel, approval or rejection still names the task's target. */
	const struct task *t = !target && task_id ? task_table_find(&purged->tasks, task_id) : NULL;
	if (t)
		target = t->target;
	audit_record(who, purge_op_to_string(op), target, task_id,
		     error ? json_string_value(json_object_get(error, "code")) : "ok",
		     error ? json_string_value(json_object_get(error, "message")) : NULL);
}

/* The line written before a change is made; false when it could not be written. */
static bool audit_intent(const struct caller *who, enum purge_op op, const json_t *args)
{
	const char *target = json_string_value(json_object_get(args, "target"));
	if (!target)
		target = json_string_value(json_object_get(args, "guid"));
	/* crdb.restore names the purge it undoes: its database is the target. */
	const struct task *src = !target ? task_table_find(&purged->tasks, json_string_value(json_object_get(args, "task")))
					 : NULL;
	if (src)
		target = src->target;
	return audit_record(who, purge_op_to_string(op), target, json_string_value(json_object_get(args, "id")),
			    "requested", NULL) == 0;
}

void ops_dispatch(struct ctl_conn *c, const struct caller *who, const struct msg_request *req)
{
	uint64_t id = req->id;
	enum purge_op op = req->op;
	json_t *args = req->args;
	json_t *reply;

	if (op < 0 || op >= _PURGE_OP_MAX) {
		/* proto_decode let only requests of known ops through: a second lock on handlers[]. */
		reply = proto_reply_error(id, PURGE_ERR_BAD_REQUEST, "unknown op");
	} else if (!who->allowed) {
		/* control.c refuses such callers before decoding anything; this is the second lock. */
		reply = proto_reply_error(id, PURGE_ERR_FORBIDDEN, "%s is not allowed to use purged: ask an "
					  "administrator to add you to the group '%s'", who->name,
					  purged->conf->control_group);
	} else if ((purge_op_flags(op) & PURGE_OPF_LINK_ONLY) && c != rest_child_link()) {
		reply = proto_reply_error(id, PURGE_ERR_FORBIDDEN, "%s comes from purged-rest only", purge_op_to_string(op));
	} else if (purge_op_is_mutating(op) && !audit_intent(who, op, args)) {
		/* Fail closed: nothing changes without its audit line on disk. */
		reply = proto_reply_error(id, PURGE_ERR_UNAVAILABLE, "cannot write the audit log %s/audit.jsonl: %s; free "
					  "space or fix the file system, then retry; nothing was done", purged->conf->state_dir,
					  audit_last_error());
	} else {
		reply = handlers[op](c, who, id, args);
	}
	if (!reply) {
		/* Fail closed: the caller sees its connection end, never a silent success. */
		log_warnx("control: the reply to %s from %s could not be built (out of memory); closing the connection",
			  purge_op_to_string(op), who->name);
		if (purge_op_is_mutating(op))
			audit_record(who, purge_op_to_string(op), NULL, NULL, "internal", "reply could not be built");
		ctl_close(c);
		return;
	}
	if (reply == ANSWERED)
		return;
	if (purge_op_is_mutating(op))
		audit_reply(who, op, args, reply);
	ctl_send(c, reply);
}
