/*
 * Manifests: one JSON line per object a task deleted ({kind, id, name}),
 * under state_dir/manifests/TASK-ID.jsonl. Executors write no files: they
 * stream entries, the supervisor appends them here. Supervisor only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* Append @entries (an array) for @task_id, opening the file on first use (*fd = -1 before). 0 or -errno. */
int manifest_append(const char *state_dir, const char *task_id, int *fd, const json_t *entries);
/* Sync and close. */
void manifest_close(int *fd);
/*
 * Up to @limit entries from @offset. Returns a new {entries, offset, more}
 * object; an absent manifest is an empty one. NULL on I/O errors.
 */
json_t *manifest_read(const char *state_dir, const char *task_id, size_t offset, size_t limit);
/*
 * Entries per kind in @task_id's manifest ({kind: n}), for a task whose
 * supervisor died while it ran. New reference; an absent manifest is {}.
 */
json_t *manifest_count(const char *state_dir, const char *task_id);
/* Remove the manifest of a pruned task. */
void manifest_remove(const char *state_dir, const char *task_id);
