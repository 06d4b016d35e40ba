/*
 * Watchers: connections following a task (tasks.watch, purgectl --wait, and
 * plan requests waiting for their counts). Supervisor only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/purged.h"
#include "purged/util.h"

/*
 * A purgectl connection may have 16 plans and watches waiting. purged-rest's
 * link carries every HTTP client's: purged-rest limits each client itself
 * (REST_WATCHES_PER_CLIENT, and one request at a time per HTTP connection
 * among at most 1024), so its link gets room for all of them.
 */
#define WATCHES_PER_CONN 16
#define WATCHES_REST_LINK 2048

struct watch {
	struct ctl_conn *conn;
	uint64_t reqid;
	char task_id[PURGE_TASK_ID_LEN + 1];
	enum watch_mode mode;
};

static struct watch *watches;
static size_t n_watches, cap_watches;

unsigned watch_limit(const struct ctl_conn *conn)
{
	return conn == rest_child_link() ? WATCHES_REST_LINK : WATCHES_PER_CONN;
}

bool watch_has_room(const struct ctl_conn *conn)
{
	size_t mine = 0;
	for (size_t i = 0; i < n_watches; i++)
		mine += watches[i].conn == conn;
	return mine < watch_limit(conn);
}

int watch_add(struct ctl_conn *conn, uint64_t reqid, struct task *task, enum watch_mode mode)
{
	if (!watch_has_room(conn))
		return -EMFILE;
	if (n_watches == cap_watches) {
		cap_watches = cap_watches ? cap_watches * 2 : 16;
		watches = xrealloc(watches, cap_watches * sizeof(*watches));
	}
	watches[n_watches].conn = conn;
	watches[n_watches].reqid = reqid;
	memcpy(watches[n_watches].task_id, task->id, sizeof(task->id));
	watches[n_watches].mode = mode;
	n_watches++;
	return 0;
}

static void remove_at(size_t i)
{
	watches[i] = watches[--n_watches];
}

void watch_notify(struct task *task, const char *event)
{
	bool end = strcmp(event, "end") == 0;
	json_t *view = NULL;

	for (size_t i = 0; i < n_watches;) {
		struct watch *w = &watches[i];
		if (strcmp(w->task_id, task->id) != 0 || (w->mode == WATCH_REPLY_END && !end)) {
			i++;
			continue;
		}
		if (!view)
			view = task_to_json(task);
		if (w->mode == WATCH_STREAM)
			ctl_send(w->conn, proto_event_new(w->reqid, event, json_deep_copy(view)));
		else if (task->state == TASK_FINISHED)
			ctl_send(w->conn, proto_reply_ok(w->reqid, json_deep_copy(view)));
		else
			ctl_send(w->conn, proto_reply_error(w->reqid, PURGE_ERR_BACKEND, "plan of '%s' %s: %s",
							     task->target, task_state_to_string(task->state),
							     task->error ? task->error : "no reason given"));
		if (end)
			remove_at(i);
		else
			i++;
	}
	json_decref(view);
}

void watch_drop_conn(struct ctl_conn *conn)
{
	for (size_t i = 0; i < n_watches;)
		if (watches[i].conn == conn)
			remove_at(i);
		else
			i++;
}
