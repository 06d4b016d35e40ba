/*
 * The audit trail: one JSON line per request that changes something
 * (purge, cancel, reload), refused ones included, in state_dir/audit.jsonl,
 * and the same in the log. Refused callers (not allowed on the control
 * socket, REST requests without a valid token) are counted per source and
 * written in batches, so that a flood costs one fdatasync a minute, not one
 * per attempt. Supervisor only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/text.h"
#include "purged/util.h"

#define REFUSAL_WINDOW_MS 60000
#define REFUSAL_SOURCES   32

/* Refusals from one source (door, who, address, reason) not yet written. */
struct refusal {
	char door[8];
	char who[64];
	int64_t uid;
	char address[64];
	char reason[128];
	uint64_t pending;   /* counted since the last line written for this source */
	bool seen;          /* a line was written in the current window */
};

static struct refusal refusals[REFUSAL_SOURCES];
static uint64_t refusals_overflow; /* sources past the table, written as one line */
static uv_timer_t refusal_timer;
static bool timer_ready;
static bool audit_broken;          /* the last append failed: mutating requests are refused */
static int audit_errno;            /* why it failed */

static void on_refusal_timer(uv_timer_t *h);

int audit_open(const char *state_dir)
{
	char *path = xasprintf("%s/audit.jsonl", state_dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int r = fd < 0 ? -errno : 0;
	free(path);
	if (fd >= 0)
		purged->audit_fd = fd;
	if (fd >= 0 && !timer_ready) {
		uv_timer_init(purged->loop, &refusal_timer);
		uv_unref((uv_handle_t *)&refusal_timer);
		uv_timer_start(&refusal_timer, on_refusal_timer, REFUSAL_WINDOW_MS, REFUSAL_WINDOW_MS);
		timer_ready = true;
	}
	return r;
}

/* Append @lines (each ending in \n) with one fdatasync. */
static int append(const char *lines)
{
	size_t n = strlen(lines);
	ssize_t w = purged->audit_fd < 0 ? -1 : write(purged->audit_fd, lines, n);
	if (w != (ssize_t)n || fdatasync(purged->audit_fd) < 0) {
		audit_errno = purged->audit_fd < 0 ? EBADF : w >= 0 ? ENOSPC : errno;
		log_warn("audit: cannot append to %s/audit.jsonl; requests that change something are refused until "
			 "it works again (free space, check the file system)", purged->conf->state_dir);
		audit_broken = true;
		return -1;
	}
	audit_broken = false;
	return 0;
}

/* One record as a JSON line, or NULL when it cannot be built. */
static char *record_line(const char *who, int64_t uid, const char *door, const char *op, const char *target,
			 const char *task_id, const char *outcome, const char *detail, const char *address,
			 uint64_t count, const char *identity)
{
	char ts[32], safe_detail[1024];
	if (detail)
		text_format(safe_detail, sizeof(safe_detail), 0, "%s", detail);
	json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:s, s:o}",
			      "time", format_rfc3339(now_usec(), ts, sizeof(ts)),
			      "who", who,
			      "uid", uid >= 0 ? json_integer(uid) : json_null(),
			      "door", door,
			      "op", op,
			      "target", target ? json_string(target) : json_null(),
			      "task", task_id ? json_string(task_id) : json_null(),
			      "outcome", outcome,
			      "detail", detail ? json_string(safe_detail) : json_null());
	if (j && address)
		json_object_set_new(j, "address", json_string(address));
	if (j && count > 1)
		json_object_set_new(j, "count", json_integer((json_int_t)count));
	/* The two-person rule's identity ("uid N" from the login uid), which may differ from uid. */
	if (j && identity && identity[0] && strncmp(identity, "token ", 6) != 0)
		json_object_set_new(j, "identity", json_string(identity));
	char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!line)
		return NULL;
	char *nl = xasprintf("%s\n", line);
	free(line);
	return nl;
}

int audit_record(const struct caller *who, const char *op, const char *target, const char *task_id,
		 const char *outcome, const char *detail)
{
	char *line = record_line(who->name, who->uid, who->door, op, target, task_id, outcome, detail, NULL, 1,
				 who->identity);

	log_info("audit: %s (uid %lld) via %s: %s%s%s%s%s%s -> %s%s%s", who->name, (long long)who->uid, who->door,
		 op, target ? " target '" : "", target ? target : "", target ? "'" : "", task_id ? " task " : "",
		 task_id ? task_id : "", outcome, detail ? ": " : "", detail ? detail : "");
	if (!line) {
		log_warnx("audit: cannot build the record of %s by %s (out of memory)", op, who->name);
		return -1;
	}
	int r = append(line);
	free(line);
	return r;
}

bool audit_working(void)
{
	return purged->audit_fd >= 0 && !audit_broken;
}

const char *audit_last_error(void)
{
	return strerror(audit_errno ? audit_errno : EIO);
}

static char *refusal_line(const struct refusal *f, uint64_t count)
{
	char detail[192];
	if (count > 1)
		text_format(detail, sizeof(detail), 0, "%s (%llu times in the last minute)", f->reason,
			    (unsigned long long)count);
	else
		text_format(detail, sizeof(detail), 0, "%s", f->reason);
	return record_line(f->who, f->uid, f->door, "connect", NULL, NULL, "forbidden", detail,
			   f->address[0] ? f->address : NULL, count, NULL);
}

void audit_refusal(const struct caller *who, const char *address, const char *reason, uint64_t n)
{
	struct refusal *f = NULL, *free_slot = NULL;

	if (n == 0)
		return;
	for (size_t i = 0; i < REFUSAL_SOURCES && !f; i++) {
		struct refusal *x = &refusals[i];
		if (!x->seen && !x->pending) {
			if (!free_slot)
				free_slot = x;
			continue;
		}
		if (x->uid == who->uid && !strcmp(x->who, who->name) && !strcmp(x->door, who->door) &&
		    !strcmp(x->address, address ? address : "") && !strcmp(x->reason, reason))
			f = x;
	}
	if (!f && !free_slot) {
		refusals_overflow += n;
		return;
	}
	if (!f) {
		f = free_slot;
		memset(f, 0, sizeof(*f));
		text_format(f->door, sizeof(f->door), 0, "%s", who->door);
		text_format(f->who, sizeof(f->who), 0, "%s", who->name);
		f->uid = who->uid;
		text_format(f->address, sizeof(f->address), 0, "%s", address ? address : "");
		text_format(f->reason, sizeof(f->reason), 0, "%s", reason);
	}
	if (f->seen) {
		/* Already written in this window: counted, written at the window's end. */
		f->pending += n;
		return;
	}
	/* The first refusal of a source in a window is written at once. */
	f->seen = true;
	log_warnx("audit: refused %s (uid %lld) via %s%s%s: %s", f->who, (long long)f->uid, f->door,
		  f->address[0] ? " from " : "", f->address, f->reason);
	char *line = refusal_line(f, n);
	if (line)
		append(line);
	free(line);
}

void audit_flush_refusals(void)
{
	size_t cap = 1024, len = 0;
	char *batch = xmalloc(cap);

	batch[0] = '\0';
	for (size_t i = 0; i < REFUSAL_SOURCES; i++) {
		struct refusal *f = &refusals[i];
		if (f->pending) {
			char *line = refusal_line(f, f->pending);
			log_warnx("audit: refused %s (uid %lld) via %s%s%s %llu more times in the last minute: %s", f->who,
				  (long long)f->uid, f->door, f->address[0] ? " from " : "", f->address,
				  (unsigned long long)f->pending, f->reason);
			if (line) {
				size_t n = strlen(line);
				if (len + n + 1 > cap)
					batch = xrealloc(batch, cap = (len + n + 1) * 2);
				memcpy(batch + len, line, n + 1);
				len += n;
			}
			free(line);
			f->pending = 0;
		} else {
			f->seen = false; /* a quiet window frees the source */
		}
	}
	if (refusals_overflow) {
		struct caller other = { .uid = -1, .door = "any", .name = "others" };
		log_warnx("audit: %llu more refusals from sources past the first %d in the last minute",
			  (unsigned long long)refusals_overflow, REFUSAL_SOURCES);
		char *line = record_line(other.name, other.uid, other.door, "connect", NULL, NULL, "forbidden",
					 "refusals from too many sources to list", NULL, refusals_overflow, NULL);
		if (line) {
			batch = xrealloc(batch, len + strlen(line) + 1);
			memcpy(batch + len, line, strlen(line) + 1);
			len += strlen(line);
		}
		free(line);
		refusals_overflow = 0;
	}
	if (len)
		append(batch);
	free(batch);
}

static void on_refusal_timer(uv_timer_t *h)
{
	(void)h;
	audit_flush_refusals();
}

void audit_close(void)
{
	audit_flush_refusals();
	if (purged->audit_fd >= 0)
		close(purged->audit_fd);
	purged->audit_fd = -1;
	timer_ready = false; /* the loop's teardown closed the timer */
}
