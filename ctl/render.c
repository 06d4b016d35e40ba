/*
 * purgectl's output: one JSON document with --json, aligned tables and short
 * summaries otherwise, a progress bar on a terminal. purgectl only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctl/purgectl.h"
#include "purged/exitcodes.h"
#include "purged/util.h"

bool opt_json;

void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s)
		printf("%s\n", s);
	free(s);
}

int print_error(const json_t *error)
{
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *msg = json_string_value(json_object_get(error, "message"));
	enum purge_err e = purge_err_from_string(code);

	fprintf(stderr, "purgectl: %s (%s)\n", msg ? msg : "unknown error", code ? code : "?");
	if (opt_json) {
		json_t *doc = json_pack("{s:O}", "error", error);
		print_json(doc);
		json_decref(doc);
	}
	return purge_err_exit_code(e);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

static json_int_t num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void print_duration(json_int_t s)
{
	if (s >= 86400)
		printf("%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		printf("%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		printf("%lldm %llds", (long long)(s / 60), (long long)(s % 60));
	else
		printf("%llds", (long long)s);
}

void render_status(const json_t *st)
{
	printf("purged %s (protocol %lld), up ", str(st, "version"), (long long)num(st, "protocol"));
	print_duration(num(st, "uptime"));
	printf("\n");
	printf("tasks:   %lld running, %lld queued (limits: %lld running, %lld queued); %lld in the table\n",
	       (long long)num(st, "running"), (long long)num(st, "queued"), (long long)num(st, "max_executors"),
	       (long long)num(st, "max_queue"), (long long)num(st, "tasks"));
	printf("targets: %lld\n", (long long)num(st, "targets"));
	printf("config:  %s\n", str(st, "config"));
	printf("state:   %s\n", str(st, "state_dir"));
}

/* A table: column widths from the data, then the rows. @cells is rows x cols. */
static void table(const char *const *head, size_t cols, char **cells, size_t rows)
{
	size_t w[16] = { 0 };
	for (size_t c = 0; c < cols; c++) {
		w[c] = strlen(head[c]);
		for (size_t r = 0; r < rows; r++)
			if (strlen(cells[r * cols + c]) > w[c])
				w[c] = strlen(cells[r * cols + c]);
	}
	for (size_t r = 0; r <= rows; r++)
		for (size_t c = 0; c < cols; c++) {
			const char *cell = r == 0 ? head[c] : cells[(r - 1) * cols + c];
			if (c + 1 < cols)
				printf("%-*s  ", (int)w[c], cell);
			else
				printf("%s\n", cell);
		}
}

static void free_cells(char **cells, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(cells[i]);
	free(cells);
}

void render_targets(const json_t *arr)
{
	static const char *const head[] = { "TARGET", "TYPE", "GUARD", "ACTIVE TASK", "SETTINGS" };
	size_t rows = json_array_size(arr), i;
	char **cells = xcalloc(rows * 5 + 1, sizeof(char *));
	json_t *t;

	json_array_foreach(arr, i, t) {
		char *settings = json_dumps(json_object_get(t, "settings"), JSON_COMPACT | JSON_SORT_KEYS);
		cells[i * 5] = xstrdup(str(t, "name"));
		cells[i * 5 + 1] = xstrdup(str(t, "type"));
		/* protect = yes, or approvals = 1: how a purge of it is guarded. */
		const char *guard = "-";
		if (json_is_true(json_object_get(t, "protect")))
			guard = "protected";
		else if (num(t, "approvals") > 0)
			guard = "two-person";
		/* archive = yes: a purge keeps a copy of what it deletes. */
		cells[i * 5 + 2] = json_is_true(json_object_get(t, "archive"))
					   ? xasprintf("%s%s", strcmp(guard, "-") ? guard : "", strcmp(guard, "-") ? "+archive" : "archive")
					   : xstrdup(guard);
		cells[i * 5 + 3] = xstrdup(str(t, "active_task"));
		cells[i * 5 + 4] = settings ? settings : xstrdup("{}");
	}
	if (rows == 0)
		printf("no targets configured\n");
	else
		table(head, 5, cells, rows);
	free_cells(cells, rows * 5);
}

static char *progress_cell(const json_t *t)
{
	const json_t *p = json_object_get(t, "progress");
	return xasprintf("%lld/%lld", (long long)num(p, "done"), (long long)num(p, "total"));
}

void render_tasks(const json_t *arr)
{
	static const char *const head[] = { "ID", "STATUS", "TARGET", "OPERATION", "CREATED", "PROGRESS", "BY" };
	size_t rows = json_array_size(arr), i;
	char **cells = xcalloc(rows * 7 + 1, sizeof(char *));
	json_t *t;

	json_array_foreach(arr, i, t) {
		cells[i * 7] = xstrdup(str(t, "id"));
		cells[i * 7 + 1] = xstrdup(str(t, "status"));
		cells[i * 7 + 2] = xstrdup(str(t, "target"));
		cells[i * 7 + 3] = xstrdup(str(t, "operation"));
		cells[i * 7 + 4] = xstrdup(str(t, "created"));
		cells[i * 7 + 5] = progress_cell(t);
		cells[i * 7 + 6] = xstrdup(str(json_object_get(t, "requested_by"), "name"));
	}
	if (rows == 0)
		printf("no tasks\n");
	else
		table(head, 7, cells, rows);
	free_cells(cells, rows * 7);
}

void render_counts(const json_t *counts)
{
	static const char *const head[] = { "KIND", "COUNT" };
	size_t rows = json_object_size(counts), i = 0;
	char **cells = xcalloc(rows * 2 + 1, sizeof(char *));
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)counts, k, v) {
		cells[i * 2] = xstrdup(k);
		cells[i * 2 + 1] = xasprintf("%lld", (long long)json_integer_value(v));
		i++;
	}
	if (rows == 0)
		printf("nothing counted\n");
	else
		table(head, 2, cells, rows);
	free_cells(cells, rows * 2);
}

void render_warnings(const json_t *t)
{
	const json_t *w;
	size_t i;
	json_array_foreach(json_object_get(t, "warnings"), i, w)
		printf("warning:    %s\n", json_string_value(w) ?: "?");
}

void render_task(const json_t *t)
{
	const json_t *by = json_object_get(t, "requested_by");
	const json_t *p = json_object_get(t, "progress");
	char *prog = progress_cell(t);

	printf("id:         %s\n", str(t, "id"));
	printf("target:     %s\n", str(t, "target"));
	printf("operation:  %s\n", str(t, "operation"));
	printf("status:     %s\n", str(t, "status"));
	printf("created:    %s\n", str(t, "created"));
	printf("started:    %s\n", str(t, "started"));
	printf("ended:      %s\n", str(t, "ended"));
	printf("requested:  %s via %s\n", str(by, "name"), str(by, "door"));
	printf("progress:   %s %s\n", prog, str(p, "step"));
	if (json_object_size(json_object_get(t, "counts"))) {
		char *c = json_dumps(json_object_get(t, "counts"), JSON_COMPACT | JSON_SORT_KEYS);
		printf("counts:     %s\n", c ? c : "{}");
		free(c);
	}
	if (json_is_string(json_object_get(t, "error")))
		printf("error:      %s\n", str(t, "error"));
	render_warnings(t);
	const json_t *ar = json_object_get(t, "archive");
	if (ar) {
		const json_t *rec = json_object_get(ar, "records");
		printf("archive:    %s, %lld bytes, ", str(ar, "file"), (long long)num(ar, "bytes"));
		if (json_is_integer(rec))
			printf("%lld records (as the executor counted)", (long long)json_integer_value(rec));
		else
			printf("records uncounted");
		printf(", SHA-256 %s; read it with 'purgectl archive %s'\n", str(ar, "sha256"), str(t, "id"));
	}
	const json_t *ap = json_object_get(t, "approval");
	if (ap) {
		printf("approval:   asked by %s; %s %s\n", str(ap, "requester"),
		       json_is_string(json_object_get(ap, "decided_by")) ? "decided by" : "may approve:",
		       json_is_string(json_object_get(ap, "decided_by")) ? str(ap, "decided_by") : str(ap, "may_approve"));
		if (strcmp(str(t, "status"), "awaiting_approval") == 0)
			printf("deadline:   %s (then it expires; approve with 'purgectl approve %s')\n", str(ap, "deadline"),
			       str(t, "id"));
	}
	free(prog);
}

void render_progress(const json_t *task, bool final)
{
	static int64_t started, last_line;
	const json_t *p = json_object_get(task, "progress");
	json_int_t done = num(p, "done"), total = num(p, "total");
	int64_t now = mono_usec();

	if (!started)
		started = now;
	double elapsed = (double)(now - started) / 1e6;
	if (isatty(STDERR_FILENO)) {
		int width = 30, fill = total > 0 ? (int)(done * width / total) : 0;
		char bar[64];
		for (int i = 0; i < width; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[width] = '\0';
		fprintf(stderr, "\r[%s] %lld/%lld %s  %.1fs %s", bar, (long long)done, (long long)total,
			str(p, "step"), elapsed, final ? "\n" : "");
		fflush(stderr);
		return;
	}
	/* Not a terminal: a line at most every second, and the last one. */
	if (!final && now - last_line < 1000000)
		return;
	last_line = now;
	fprintf(stderr, "progress: %lld/%lld %s, %.1fs, %s\n", (long long)done, (long long)total, str(p, "step"),
		elapsed, str(task, "status"));
}

int task_exit_code(const json_t *task)
{
	const char *s = str(task, "status");
	if (strcmp(s, "finished") == 0)
		return EXIT_PURGECTL_OK;
	if (strcmp(s, "cancelled") == 0)
		return EXIT_PURGECTL_CANCELLED;
	return EXIT_PURGECTL_TASK_FAILED;
}
