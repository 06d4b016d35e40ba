/*
 * The audit trail: one JSON line per request that changes something
 * (purge, cancel, reload), refused ones included, in state_dir/audit.jsonl,
 * and the same in the log. Supervisor only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/util.h"

int audit_open(const char *state_dir)
{
	char *path = xasprintf("%s/audit.jsonl", state_dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int r = fd < 0 ? -errno : 0;
	free(path);
	if (fd >= 0)
		purged->audit_fd = fd;
	return r;
}

void audit_record(const struct caller *who, const char *op, const char *target, const char *task_id,
		  const char *outcome, const char *detail)
{
	char ts[32];
	json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:s, s:o}",
			      "time", format_rfc3339(now_usec(), ts, sizeof(ts)),
			      "who", who->name,
			      "uid", who->uid >= 0 ? json_integer(who->uid) : json_null(),
			      "door", who->door,
			      "op", op,
			      "target", target ? json_string(target) : json_null(),
			      "task", task_id ? json_string(task_id) : json_null(),
			      "outcome", outcome,
			      "detail", detail ? json_string(detail) : json_null());
	char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;

	log_info("audit: %s (uid %lld) via %s: %s%s%s%s%s%s -> %s%s%s", who->name, (long long)who->uid, who->door,
		 op, target ? " target '" : "", target ? target : "", target ? "'" : "", task_id ? " task " : "",
		 task_id ? task_id : "", outcome, detail ? ": " : "", detail ? detail : "");
	if (line && purged->audit_fd >= 0) {
		char *nl = xasprintf("%s\n", line);
		if (write(purged->audit_fd, nl, strlen(nl)) < 0 || fdatasync(purged->audit_fd) < 0)
			log_warn("audit: cannot append to %s/audit.jsonl", purged->conf->state_dir);
		free(nl);
	}
	free(line);
	json_decref(j);
}

void audit_close(void)
{
	if (purged->audit_fd >= 0)
		close(purged->audit_fd);
	purged->audit_fd = -1;
}
