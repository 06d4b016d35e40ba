/* Per-task manifests of deleted objects; see manifest.h. Supervisor only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/manifest.h"
#include "purged/util.h"

static char *path_of(const char *state_dir, const char *task_id)
{
	return xasprintf("%s/manifests/%s.jsonl", state_dir, task_id);
}

int manifest_append(const char *state_dir, const char *task_id, int *fd, const json_t *entries)
{
	size_t i;
	json_t *e;

	if (*fd < 0) {
		char *dir = xasprintf("%s/manifests", state_dir), *p = path_of(state_dir, task_id);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			int r = -errno;
			free(dir);
			free(p);
			return r;
		}
		*fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		free(dir);
		free(p);
		if (*fd < 0)
			return -errno;
	}
	json_array_foreach(entries, i, e) {
		char *line = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
		if (!line)
			return -ENOMEM;
		size_t n = strlen(line);
		line = xrealloc(line, n + 2);
		line[n++] = '\n';
		ssize_t w = write(*fd, line, n);
		free(line);
		if (w != (ssize_t)n)
			return w < 0 ? -errno : -ENOSPC;
	}
	return 0;
}

void manifest_close(int *fd)
{
	if (*fd < 0)
		return;
	fdatasync(*fd);
	close(*fd);
	*fd = -1;
}

json_t *manifest_read(const char *state_dir, const char *task_id, size_t offset, size_t limit)
{
	char *p = path_of(state_dir, task_id), *line = NULL;
	size_t cap = 0, n = 0;
	json_t *entries = json_array();
	bool more = false;
	FILE *f = fopen(p, "re");

	free(p);
	if (!f && errno != ENOENT) {
		json_decref(entries);
		return NULL;
	}
	while (f && getline(&line, &cap, f) > 0) {
		if (n++ < offset)
			continue;
		if (json_array_size(entries) == limit) {
			more = true;
			break;
		}
		json_t *e = json_loads(line, 0, NULL);
		if (e)
			json_array_append_new(entries, e);
	}
	free(line);
	if (f)
		fclose(f);
	return json_pack("{s:o, s:I, s:b}", "entries", entries, "offset", (json_int_t)offset, "more", more);
}

json_t *manifest_count(const char *state_dir, const char *task_id)
{
	char *p = path_of(state_dir, task_id), *line = NULL;
	size_t cap = 0;
	json_t *counts = json_object();
	FILE *f = fopen(p, "re");

	free(p);
	while (f && getline(&line, &cap, f) > 0) {
		json_t *e = json_loads(line, 0, NULL);
		const char *kind = json_string_value(json_object_get(e, "kind"));
		if (kind) {
			json_t *c = json_object_get(counts, kind);
			if (c)
				json_integer_set(c, json_integer_value(c) + 1);
			else
				json_object_set_new(counts, kind, json_integer(1));
		}
		json_decref(e);
	}
	free(line);
	if (f)
		fclose(f);
	return counts;
}

void manifest_remove(const char *state_dir, const char *task_id)
{
	char *p = path_of(state_dir, task_id);
	unlink(p);
	free(p);
}
