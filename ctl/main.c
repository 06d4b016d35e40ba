/*
 * purgectl: the administrator's tool. Parses the command line, runs one
 * command against purged's control socket, prints the outcome, and exits
 * with a documented status. purgectl only.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <nettle/sha2.h>
#include <zstd.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "buildconf.h"
#include "ctl/purgectl.h"
#include "purged/exitcodes.h"
#include "purged/messages.h"
#include "purged/util.h"

/* Options that belong to some verbs only (struct verb.options). Given to another verb, --output and
 * --replace are a usage error (they would change nothing the user expects); the others are ignored,
 * as they always were, so that scripts passing --yes or --limit everywhere keep working. */
enum {
	OPT_YES = 1 << 0,       /* --yes */
	OPT_WAIT = 1 << 1,      /* --wait, --detach */
	OPT_LIMIT = 1 << 2,
	OPT_OFFSET = 1 << 3,
	OPT_TARGET = 1 << 4,
	OPT_INSTANCES = 1 << 5,
	OPT_MANIFEST = 1 << 6,
	OPT_REPLACE = 1 << 7,
	OPT_OUTPUT = 1 << 8,
};
#define OPT_STRICT (OPT_OUTPUT | OPT_REPLACE)

struct options {
	unsigned given;      /* OPT_* seen on the command line */
	const char *socket;
	bool yes;
	int wait; /* -1: default (wait on a terminal) */
	long limit, offset;
	const char *target;
	const char *instances;
	bool manifest;
	bool replace;        /* restore: overwrite keys that exist */
	const char *output;  /* archive: write here (created, never overwritten) instead of stdout */
};

static void usage(FILE *f);

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "purgectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'purgectl --help'.\n");
	return EXIT_PURGECTL_USAGE;
}

/* Follow task @id until it ends; prints progress, then the outcome. */
static int follow(struct client *c, const char *id)
{
	uint64_t req = client_send(c, PURGE_OP_TASKS_WATCH, json_pack("{s:s}", "id", id));
	json_t *last = NULL, *msg;
	bool told = false;
	int r = 0;

	if (!req)
		return EXIT_PURGECTL_UNREACHABLE;
	for (;;) {
		r = client_recv(c, &msg);
		if (r)
			break;
		/* The watch's first reply (the task as it is), then its events. */
		struct msg_reply rp;
		struct msg_event ev = { 0 };
		bool is_reply = msg_reply_unpack(msg, &rp);
		if (is_reply && !rp.ok) {
			r = print_error(rp.error);
			json_decref(msg);
			break;
		}
		if (!is_reply)
			msg_event_unpack(msg, &ev);
		json_t *task = is_reply ? rp.result : ev.task;
		bool end = ev.event && strcmp(ev.event, "end") == 0;
		json_decref(last);
		last = json_incref(task);
		if (!told && !end && strcmp(json_string_value(json_object_get(task, "status")) ?: "",
					    "awaiting_approval") == 0) {
			told = true;
			fprintf(stderr, "task %s awaits approval by another person until %s: ask one to run 'purgectl "
				"approve %s'; waiting (Ctrl-C leaves it awaiting)\n", id,
				json_string_value(json_object_get(json_object_get(task, "approval"), "deadline")) ?: "?",
				id);
		}
		render_progress(task, end); /* stderr: stdout keeps its one JSON document */
		json_decref(msg);
		if (end)
			break;
	}
	if (!r && last) {
		if (opt_json) {
			print_json(last);
		} else {
			printf("task %s %s", json_string_value(json_object_get(last, "id")),
			       json_string_value(json_object_get(last, "status")));
			if (json_is_string(json_object_get(last, "error")))
				printf(": %s", json_string_value(json_object_get(last, "error")));
			printf("\n");
			if (json_object_size(json_object_get(last, "counts")))
				render_counts(json_object_get(last, "counts"));
			render_warnings(last);
		}
		r = task_exit_code(last);
	}
	json_decref(last);
	return r;
}

/*
 * What the prompt says of a purge of @target: whether an archive keeps a copy
 * (archive = yes), and what it is good for. NULL when the daemon does not say.
 */
static char *purge_warning(struct client *c, const char *target)
{
	json_t *res = NULL, *t;
	size_t i;
	char *text = NULL;

	if (client_call(c, PURGE_OP_TARGETS_LIST, NULL, &res))
		return NULL;
	json_array_foreach(res, i, t) {
		if (strcmp(json_string_value(json_object_get(t, "name")) ?: "", target) != 0)
			continue;
		if (!json_is_true(json_object_get(t, "archive")))
			text = xasprintf("This deletes ALL data of target '%s'. It cannot be undone (archive = no: no copy "
					 "is kept).\n", target);
		else if (strcmp(json_string_value(json_object_get(t, "type")) ?: "", "crdb") == 0)
			text = xasprintf("This deletes ALL keys of the instances named of '%s'. An archive keeps a copy of "
					 "every key it deletes (archive = yes): 'purgectl restore TASK' puts them back.\n",
					 target);
		else
			text = xasprintf("This deletes ALL data of target '%s'. An archive keeps a copy of what is purged "
					 "(archive = yes), readable with 'purgectl archive TASK'; it cannot be put back "
					 "as it was (see purgectl(8)).\n", target);
	}
	json_decref(res);
	return text;
}

/* @what: what the action does, said before the question (NULL: a purge's default text). */
static int confirm(const char *target, const char *what, bool restore)
{
	char line[256];

	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "purgectl: refusing to %s '%s' without confirmation: standard input is not a "
			"terminal; pass --yes to confirm\n", restore ? "restore into" : "purge", target);
		return EXIT_PURGECTL_REFUSED;
	}
	if (what)
		fprintf(stderr, "%sType the %s to confirm: ", what, restore ? "database's GUID" : "target name");
	else
		fprintf(stderr, "This deletes ALL data of target '%s'. It cannot be undone.\n"
			"Type the target name to confirm: ", target);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin)) {
		fprintf(stderr, "\npurgectl: no confirmation; nothing done\n");
		return EXIT_PURGECTL_REFUSED;
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (strcmp(line, target) != 0) {
		fprintf(stderr, "purgectl: '%s' does not match '%s'; nothing done\n", line, target);
		return EXIT_PURGECTL_REFUSED;
	}
	return 0;
}

/* @prompt: what the confirmation says (NULL: ask the daemon whether the target archives). */
static int cmd_purge(struct client *c, const struct options *o, const char *target, enum purge_op op, json_t *args,
		     const char *prompt)
{
	bool wait = o->wait >= 0 ? o->wait : isatty(STDOUT_FILENO);
	bool restore = op == PURGE_OP_CRDB_RESTORE;
	json_t *task = NULL;
	int r;

	if (!o->yes) {
		char *said = prompt || !isatty(STDIN_FILENO) ? NULL : purge_warning(c, target);
		r = confirm(target, prompt ? prompt : said, restore);
		free(said);
		if (r) {
			json_decref(args);
			return r;
		}
	}
	r = client_call(c, op, args, &task);
	if (r)
		return r;
	if (wait) {
		char *id = xstrdup(json_string_value(json_object_get(task, "id")));
		json_decref(task);
		if (!opt_json)
			fprintf(stderr, "task %s: %s of '%s' queued\n", id, restore ? "restore" : "purge", target);
		r = follow(c, id);
		free(id);
		return r;
	}
	const char *tid = json_string_value(json_object_get(task, "id"));
	if (opt_json)
		print_json(task);
	else if (strcmp(json_string_value(json_object_get(task, "status")) ?: "", "awaiting_approval") == 0)
		printf("task %s: purge of '%s' awaits approval by another person until %s: ask one to run 'purgectl "
		       "approve %s'; follow it with 'purgectl wait %s'\n", tid, target,
		       json_string_value(json_object_get(json_object_get(task, "approval"), "deadline")) ?: "?", tid, tid);
	else
		printf("task %s: %s of '%s' queued; follow it with 'purgectl wait %s'\n", tid,
		       restore ? "restore" : "purge", target, tid);
	json_decref(task);
	return 0;
}

/* restore ID: the crdb purge's database and archive, said in the prompt, then crdb.restore. */
static int cmd_restore(struct client *c, const struct options *o, const char *id)
{
	json_t *src = NULL;
	int r = client_call(c, PURGE_OP_TASKS_GET, json_pack("{s:s}", "id", id), &src);
	if (r)
		return r;
	const char *guid = json_string_value(json_object_get(src, "target")) ?: "?";
	const json_t *ar = json_object_get(src, "archive");
	char records[32] = "?";
	if (json_is_integer(json_object_get(ar, "records")))
		snprintf(records, sizeof(records), "%lld", (long long)json_integer_value(json_object_get(ar, "records")));
	char *prompt = xasprintf("This puts back into Active-Active database '%s' the keys task %s archived (%s "
				 "records, %lld bytes compressed), with their TTLs; keys whose TTL has passed are "
				 "counted, not restored. %s\n", guid, id, records,
				 (long long)json_integer_value(json_object_get(ar, "bytes")),
				 o->replace ? "Keys that exist now are OVERWRITTEN (--replace)."
					    : "If any key exists now, nothing is restored (--replace overwrites).");
	char *g = xstrdup(guid);
	json_decref(src);
	json_t *args = json_pack("{s:s, s:b, s:s}", "task", id, "replace", o->replace, "guid", g);
	r = cmd_purge(c, o, g, PURGE_OP_CRDB_RESTORE, args, prompt);
	free(prompt);
	free(g);
	return r;
}

/*
 * archive ID: every chunk into an anonymous temporary file, its size and
 * SHA-256 checked against the task's record, and only then decompressed
 * (zstd) into the output: what is written was the purge's archive.
 */
static int cmd_archive(struct client *c, const struct options *o, const char *id)
{
	struct sha256_ctx sha;
	uint64_t offset = 0, size = 0;
	char want[65] = "", got[65];
	unsigned char digest[32];
	int out = -1, r = 0;
	FILE *tmp = tmpfile();

	if (!tmp) {
		fprintf(stderr, "purgectl: cannot create a temporary file for the archive of task %s: %s; set TMPDIR "
			"to a directory with room\n", id, strerror(errno));
		return EXIT_PURGECTL_FAILURE;
	}
	if (o->output) {
		out = open(o->output, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0) {
			fprintf(stderr, "purgectl: cannot create '%s': %s%s\n", o->output, strerror(errno),
				errno == EEXIST ? " (purgectl archive never overwrites a file: choose another name or "
						  "remove it)" : "");
			fclose(tmp);
			return errno == EEXIST ? EXIT_PURGECTL_CONFLICT : EXIT_PURGECTL_FAILURE;
		}
	}
	sha256_init(&sha);
	for (;;) {
		json_t *res = NULL;
		r = client_call(c, PURGE_OP_TASKS_ARCHIVE, json_pack("{s:s, s:I}", "id", id, "offset", (json_int_t)offset),
				&res);
		if (r)
			goto out;
		const char *data = json_string_value(json_object_get(res, "data")) ?: "";
		unsigned char *buf = NULL;
		size_t n = 0;
		if (b64_decode(data, strlen(data), &buf, &n) < 0 ||
		    json_integer_value(json_object_get(res, "offset")) != (json_int_t)offset) {
			fprintf(stderr, "purgectl: the daemon sent a malformed chunk of the archive of task %s at offset "
				"%llu\n", id, (unsigned long long)offset);
			free(buf);
			json_decref(res);
			r = EXIT_PURGECTL_FAILURE;
			goto out;
		}
		if (offset == 0) {
			size = (uint64_t)json_integer_value(json_object_get(res, "size"));
			snprintf(want, sizeof(want), "%s", json_string_value(json_object_get(res, "sha256")) ?: "");
		}
		sha256_update(&sha, n, buf);
		if (n && fwrite(buf, 1, n, tmp) != n) {
			fprintf(stderr, "purgectl: cannot write the archive to a temporary file: %s; set TMPDIR to a "
				"directory with room\n", strerror(errno));
			free(buf);
			json_decref(res);
			r = EXIT_PURGECTL_FAILURE;
			goto out;
		}
		free(buf);
		offset += n;
		bool eof = json_is_true(json_object_get(res, "eof"));
		json_decref(res);
		if (eof)
			break;
		if (n == 0) {
			fprintf(stderr, "purgectl: the archive of task %s ended early at offset %llu\n", id,
				(unsigned long long)offset);
			r = EXIT_PURGECTL_FAILURE;
			goto out;
		}
	}
	sha256_digest(&sha, sizeof(digest), digest);
	sha256_to_hex(digest, got);
	if (offset != size || strcmp(got, want) != 0) {
		fprintf(stderr, "purgectl: the archive of task %s is not the one recorded (%llu bytes, SHA-256 %s; the "
			"task recorded %llu bytes, SHA-256 %s): it was changed or damaged since the purge; nothing "
			"written\n", id, (unsigned long long)offset, got, (unsigned long long)size, want[0] ? want : "none");
		r = EXIT_PURGECTL_FAILURE;
		goto out;
	}
	/* Verified: decompress into the output. */
	rewind(tmp);
	ZSTD_DStream *z = ZSTD_createDStream();
	size_t inlen = ZSTD_DStreamInSize(), outlen = ZSTD_DStreamOutSize(), zr = 0, nread;
	char *inb = xmalloc(inlen), *outb = xmalloc(outlen);
	FILE *dst = out >= 0 ? fdopen(out, "w") : stdout;
	bool any = false;
	/* A frame's output is held until the frame ends: each frame is one seal of the purge, and only
	 * what was sealed was ever deleted; a frame cut short (the purge failed while writing it) is
	 * dropped, the sealed part kept. */
	char *frame = NULL;
	size_t flen = 0, fcap = 0;
	if (!z || !dst) {
		fprintf(stderr, "purgectl: out of memory\n");
		r = EXIT_PURGECTL_FAILURE;
	}
	while (!r && (nread = fread(inb, 1, inlen, tmp)) > 0) {
		ZSTD_inBuffer in = { inb, nread, 0 };
		any = true;
		while (!r && in.pos < in.size) {
			ZSTD_outBuffer ob = { outb, outlen, 0 };
			zr = ZSTD_decompressStream(z, &ob, &in);
			if (ZSTD_isError(zr)) {
				fprintf(stderr, "purgectl: the archive of task %s cannot be decompressed: %s\n", id,
					ZSTD_getErrorName(zr));
				r = EXIT_PURGECTL_FAILURE;
			} else {
				if (flen + ob.pos > fcap) {
					fcap = (flen + ob.pos) * 2;
					frame = xrealloc(frame, fcap);
				}
				memcpy(frame + flen, outb, ob.pos);
				flen += ob.pos;
				if (zr == 0 && flen) {
					if (fwrite(frame, 1, flen, dst) != flen) {
						fprintf(stderr, "purgectl: cannot write %s: %s\n",
							o->output ? o->output : "the output", strerror(errno));
						r = EXIT_PURGECTL_FAILURE;
					}
					flen = 0;
				}
			}
		}
	}
	if (!r && any && zr != 0)
		fprintf(stderr, "purgectl: warning: the archive of task %s ends in a part its purge never sealed (the "
			"purge failed while writing it): its sealed part is written; the %zu bytes of records after it "
			"were never deleted (they were not sealed), and are left out\n", id, flen);
	free(frame);
	if (dst && fflush(dst) != 0 && !r) {
		fprintf(stderr, "purgectl: cannot write %s: %s\n", o->output ? o->output : "the output", strerror(errno));
		r = EXIT_PURGECTL_FAILURE;
	}
	if (out >= 0 && dst) {
		if (fsync(out) < 0 && !r) {
			fprintf(stderr, "purgectl: cannot sync %s: %s\n", o->output, strerror(errno));
			r = EXIT_PURGECTL_FAILURE;
		}
		fclose(dst);
		out = -1;
	}
	if (!r && o->output && !opt_json)
		fprintf(stderr, "task %s: archive written to %s (%llu bytes compressed, SHA-256 %s checked)\n", id,
			o->output, (unsigned long long)size, got);
	ZSTD_freeDStream(z);
	free(inb);
	free(outb);
out:
	if (out >= 0)
		close(out);
	if (r && o->output)
		unlink(o->output); /* created by us above: never leave a partial or unverified copy */
	fclose(tmp);
	return r;
}

static int simple(struct client *c, enum purge_op op, json_t *args, void (*render)(const json_t *),
		  const char *member)
{
	json_t *res = NULL;
	int r = client_call(c, op, args, &res);
	if (r)
		return r;
	const json_t *shown = member ? json_object_get(res, member) : res;
	if (opt_json)
		print_json(shown);
	else
		render(shown);
	json_decref(res);
	return 0;
}

static void render_plan(const json_t *task)
{
	printf("plan of '%s': what a purge would delete\n", json_string_value(json_object_get(task, "target")));
	render_counts(json_object_get(task, "counts"));
}

static void render_cancel(const json_t *task)
{
	printf("task %s: cancel requested (status now %s)\n", json_string_value(json_object_get(task, "id")),
	       json_string_value(json_object_get(task, "status")));
}

/*
 * Cancel and wait for the end, as systemctl stop does: the executor first
 * reconciles what it had in flight (up to cancel_grace), and only then is
 * the target free again. "cancelled" is success here.
 */
static int cmd_cancel(struct client *c, const char *id)
{
	json_t *res = NULL;
	int r = client_call(c, PURGE_OP_TASKS_CANCEL, json_pack("{s:s}", "id", id), &res);
	if (r)
		return r;
	const char *st = json_string_value(json_object_get(res, "status"));
	if (st && !strcmp(st, "cancelled")) { /* it was queued: nothing ran */
		if (opt_json)
			print_json(res);
		else
			render_cancel(res);
		json_decref(res);
		return EXIT_PURGECTL_OK;
	}
	json_decref(res);
	if (!opt_json)
		fprintf(stderr, "task %s: stop requested; waiting for it to stop and reconcile (--detach returns at "
			"once)\n", id);
	r = follow(c, id);
	/* Finished all the same (the stop came after its last delete): the cancel did not take. */
	return r == EXIT_PURGECTL_CANCELLED ? EXIT_PURGECTL_OK : r == EXIT_PURGECTL_OK ? EXIT_PURGECTL_CONFLICT : r;
}

static void render_decision(const json_t *task)
{
	const char *s = json_string_value(json_object_get(task, "status")) ?: "?";
	printf("task %s: %s (status now %s)\n", json_string_value(json_object_get(task, "id")),
	       strcmp(s, "cancelled") == 0 ? "rejected" : "approved", s);
}

static void render_reload(const json_t *res)
{
	printf("configuration reloaded: %lld target(s)\n",
	       (long long)json_integer_value(json_object_get(res, "targets")));
}

/* A new bearer token: 32 random bytes as hex. Only its hash is ever stored. */
static int cmd_token_new(const char *name)
{
	unsigned char raw[32];
	char token[65], hash[65];

	if (!proto_is_name(name))
		return usage_error("'%s' is not a valid token name (letters, digits, '.', '_', '-')", name);
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		fprintf(stderr, "purgectl: cannot get random bytes: %s\n", strerror(errno));
		return EXIT_PURGECTL_FAILURE;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	sha256_hex(token, hash);
	if (opt_json) {
		json_t *j = json_pack("{s:s, s:s, s:s}", "name", name, "token", token, "tokens_file_line", "");
		json_object_set_new(j, "tokens_file_line", json_sprintf("%s:%s", name, hash));
		print_json(j);
		json_decref(j);
	} else {
		printf("%s\n%s:%s\n", token, name, hash);
		fprintf(stderr, "The first line is the token: give it to the client now, it is not stored.\n"
			"Add the second line to the tokens_file of [rest], then run 'purgectl reload'.\n");
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(token, sizeof(token));
	return 0;
}

/* Every manifest entry of a task, page by page. */
static int cmd_manifest(struct client *c, const char *id)
{
	json_t *all = opt_json ? json_array() : NULL;
	size_t offset = 0;
	int r = 0;

	for (;;) {
		json_t *res = NULL, *e;
		size_t i;
		r = client_call(c, PURGE_OP_TASKS_MANIFEST,
				json_pack("{s:s, s:I, s:i}", "id", id, "offset", (json_int_t)offset, "limit", 1000), &res);
		if (r)
			break;
		json_array_foreach(json_object_get(res, "entries"), i, e) {
			if (all) {
				json_array_append(all, e);
			} else {
				char *line = json_dumps(e, JSON_COMPACT);
				printf("%s\n", line ? line : "{}");
				free(line);
			}
		}
		offset += json_array_size(json_object_get(res, "entries"));
		bool more = json_is_true(json_object_get(res, "more"));
		json_decref(res);
		if (!more)
			break;
	}
	if (!r && all)
		print_json(all);
	json_decref(all);
	return r;
}

/* "1,2,5" into a JSON array of ids; NULL if malformed. */
static json_t *parse_ids(const char *s)
{
	json_t *arr = json_array();
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > 65535 || (*end && *end != ',')) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, json_integer(v));
		s = *end ? end + 1 : end;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

static bool valid_id(const char *id)
{
	if (proto_is_task_id(id))
		return true;
	fprintf(stderr, "purgectl: '%s' is not a task id (a UUID as shown by 'purgectl tasks')\n", id);
	return false;
}

/* ---------------------------------------------------------------- verbs */

/* What a verb's one argument is, checked before anything is sent. */
enum verb_arg {
	ARG_NONE,
	ARG_TARGET,  /* a target name */
	ARG_TASK,    /* a task id */
	ARG_GUID,    /* a crdb GUID (a name) */
	ARG_TOKEN,   /* a token name (a name); no daemon needed */
};

struct verb {
	const char *name;       /* one word, or two ("crdb purge") */
	enum verb_arg arg;
	unsigned options;       /* OPT_* it accepts */
	int (*run)(struct client *c, const struct options *o, const char *arg);
	const char *synopsis;   /* what follows the name in --help */
	const char *help;       /* --help's text; '\n' starts a new line */
};

static int v_status(struct client *c, const struct options *o, const char *arg)
{
	return simple(c, PURGE_OP_STATUS, NULL, render_status, NULL);
}

static int v_targets(struct client *c, const struct options *o, const char *arg)
{
	return simple(c, PURGE_OP_TARGETS_LIST, NULL, render_targets, NULL);
}

static int v_plan(struct client *c, const struct options *o, const char *arg)
{
	return simple(c, PURGE_OP_PLAN, json_pack("{s:s}", "target", arg), render_plan, NULL);
}

static int v_purge(struct client *c, const struct options *o, const char *arg)
{
	return cmd_purge(c, o, arg, PURGE_OP_PURGE, json_pack("{s:s}", "target", arg), NULL);
}

static int v_tasks(struct client *c, const struct options *o, const char *arg)
{
	json_t *a = json_object();
	if (o->limit > 0)
		json_object_set_new(a, "limit", json_integer(o->limit));
	if (o->offset >= 0)
		json_object_set_new(a, "offset", json_integer(o->offset));
	if (o->target)
		json_object_set_new(a, "target", json_string(o->target));
	return simple(c, PURGE_OP_TASKS_LIST, a, render_tasks, "tasks");
}

static int v_task(struct client *c, const struct options *o, const char *arg)
{
	if (o->manifest)
		return cmd_manifest(c, arg);
	return simple(c, PURGE_OP_TASKS_GET, json_pack("{s:s}", "id", arg), render_task, NULL);
}

static int v_cancel(struct client *c, const struct options *o, const char *arg)
{
	if (o->wait == 0)
		return simple(c, PURGE_OP_TASKS_CANCEL, json_pack("{s:s}", "id", arg), render_cancel, NULL);
	return cmd_cancel(c, arg);
}

static int v_approve(struct client *c, const struct options *o, const char *arg)
{
	return simple(c, PURGE_OP_TASKS_APPROVE, json_pack("{s:s}", "id", arg), render_decision, NULL);
}

static int v_reject(struct client *c, const struct options *o, const char *arg)
{
	return simple(c, PURGE_OP_TASKS_REJECT, json_pack("{s:s}", "id", arg), render_decision, NULL);
}

static int v_wait(struct client *c, const struct options *o, const char *arg)
{
	return follow(c, arg);
}

static int v_archive(struct client *c, const struct options *o, const char *arg)
{
	return cmd_archive(c, o, arg);
}

static int v_restore(struct client *c, const struct options *o, const char *arg)
{
	return cmd_restore(c, o, arg);
}

static int v_reload(struct client *c, const struct options *o, const char *arg)
{
	return simple(c, PURGE_OP_RELOAD, NULL, render_reload, NULL);
}

static int v_crdb_purge(struct client *c, const struct options *o, const char *arg)
{
	json_t *ids = parse_ids(o->instances); /* checked by run_verb */
	return cmd_purge(c, o, arg, PURGE_OP_CRDB_PURGE, json_pack("{s:s, s:o}", "guid", arg, "instances", ids), NULL);
}

static int v_crdb_tasks(struct client *c, const struct options *o, const char *arg)
{
	json_t *a = json_pack("{s:s}", "operation", purge_op_to_string(PURGE_OP_CRDB_PURGE));
	if (o->limit > 0)
		json_object_set_new(a, "limit", json_integer(o->limit));
	return simple(c, PURGE_OP_TASKS_LIST, a, render_tasks, "tasks");
}

static int v_token_new(struct client *c, const struct options *o, const char *arg)
{
	return cmd_token_new(arg);
}

/* Every verb, one row (as systemctl's verbs[]): --help, the argument checks and the dispatch come from here;
 * the completion script and purgectl(8) are checked against --help by tests/integration/rows.sh. */
static const struct verb verbs[] = {
	{ "status", ARG_NONE, 0, v_status, "", "daemon version, uptime, running and queued tasks" },
	{ "targets", ARG_NONE, 0, v_targets, "", "configured targets" },
	{ "plan", ARG_TARGET, 0, v_plan, "TARGET", "dry run: what a purge would delete, per kind" },
	{ "purge", ARG_TARGET, OPT_YES | OPT_WAIT, v_purge, "TARGET [--yes] [--wait|--detach]",
	  "purge a target (asks you to type its name unless --yes)" },
	{ "tasks", ARG_NONE, OPT_LIMIT | OPT_OFFSET | OPT_TARGET, v_tasks, "[--limit N] [--offset N] [--target NAME]",
	  "tasks, newest first" },
	{ "task", ARG_TASK, OPT_MANIFEST, v_task, "ID [--manifest]",
	  "one task; with --manifest, what it deleted, one JSON\nline per object (a JSON array with --json)" },
	{ "cancel", ARG_TASK, OPT_WAIT, v_cancel, "ID [--detach]",
	  "cancel a queued or running task and wait until it has\nstopped and reconciled (--detach: return at once)" },
	{ "approve", ARG_TASK, 0, v_approve, "ID",
	  "approve a purge awaiting approval (approvals = 1):\nonly another person than the one who asked may" },
	{ "reject", ARG_TASK, 0, v_reject, "ID", "reject a purge awaiting approval (it ends cancelled)" },
	{ "wait", ARG_TASK, 0, v_wait, "ID", "follow a task until it ends" },
	{ "archive", ARG_TASK, OPT_OUTPUT, v_archive, "ID [--output FILE]",
	  "what a purge archived (archive = yes), as JSON lines,\nits size and SHA-256 checked (--output: a new file)" },
	{ "restore", ARG_TASK, OPT_REPLACE | OPT_YES | OPT_WAIT, v_restore, "ID [--replace] [--yes] [--wait|--detach]",
	  "put back the keys a crdb purge archived, with their\nTTLs; keys that exist are refused unless --replace" },
	{ "reload", ARG_NONE, 0, v_reload, "", "re-read the daemon's configuration" },
	{ "crdb purge", ARG_GUID, OPT_INSTANCES | OPT_YES | OPT_WAIT, v_crdb_purge,
	  "GUID --instances 1,2 [--yes] [--wait|--detach]", "purge instances of an Active-Active database" },
	{ "crdb tasks", ARG_NONE, OPT_LIMIT, v_crdb_tasks, "[--limit N]", "CRDB purge tasks, newest first" },
	{ "token new", ARG_TOKEN, 0, v_token_new, "NAME",
	  "mint a REST bearer token: prints the token once, then\nthe NAME:SHA256 line for tokens_file (no daemon needed)" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: purgectl [-s SOCKET] [--json] COMMAND [ARGS]\n"
		   "Control purged, the purge service.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		const struct verb *v = &verbs[i];
		char head[128];
		int n = snprintf(head, sizeof(head), "%s%s%s", v->name, *v->synopsis ? " " : "", v->synopsis);
		/* Help beside a short head, else on the next line; continuation lines aligned under it. */
		fprintf(f, n < 32 ? "  %-32s" : "  %s\n%34s", head, "");
		for (const char *h = v->help; *h; h++) {
			if (*h == '\n')
				fprintf(f, "\n%34s", "");
			else
				fputc(*h, f);
		}
		fputc('\n', f);
	}
	fprintf(f,
		"\n"
		"Options:\n"
		"  -s, --socket PATH  control socket (default $PURGED_SOCKET, else %s)\n"
		"  -j, --json         print exactly one JSON document\n"
		"  -y, --yes          purge without asking for confirmation\n"
		"  -w, --wait         follow the purge until it ends (default on a terminal)\n"
		"  -d, --detach       return as soon as the purge is queued\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"\n"
		"Exit status:\n"
		"  0 success; 1 failure (internal or backend error); 2 usage or bad request;\n"
		"  3 purged unreachable; 4 forbidden; 5 target or task not found;\n"
		"  6 conflict (target busy) or queue full; 7 task failed; 8 task cancelled;\n"
		"  9 confirmation not given.\n"
		"See purgectl(8).\n",
		PURGED_DEFAULT_SOCKET);
}

static const char *const option_names[] = { "--yes", "--wait/--detach", "--limit", "--offset", "--target",
					     "--instances", "--manifest", "--replace", "--output" };

/* Find the verb @words name (one or two words), check its argument and options, connect, run it. */
static int run_verb(struct options *o, int nwords, char **words)
{
	const struct verb *v = NULL;
	size_t used = 0;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]) && !v; i++) {
		const char *sp = strchr(verbs[i].name, ' ');
		if (!sp && strcmp(verbs[i].name, words[0]) == 0)
			v = &verbs[i], used = 1;
		else if (sp && nwords >= 2 && strncmp(verbs[i].name, words[0], (size_t)(sp - verbs[i].name)) == 0 &&
			 words[0][sp - verbs[i].name] == '\0' && strcmp(sp + 1, words[1]) == 0)
			v = &verbs[i], used = 2;
	}
	if (!v) {
		/* A known first word with a wrong second one: that family's usages, joined by '|'. */
		char family[512] = "";
		for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
			const char *sp = strchr(verbs[i].name, ' ');
			if (sp && strncmp(verbs[i].name, words[0], (size_t)(sp - verbs[i].name)) == 0 &&
			    words[0][sp - verbs[i].name] == '\0')
				snprintf(family + strlen(family), sizeof(family) - strlen(family), "%spurgectl %s%s%s",
					 family[0] ? " | " : "", verbs[i].name, *verbs[i].synopsis ? " " : "",
					 verbs[i].synopsis);
		}
		if (family[0])
			return usage_error("usage: %s", family);
		return usage_error("unknown command '%s'", words[0]);
	}
	int nargs = nwords - (int)used;
	const char *arg = nargs > 0 ? words[used] : NULL;
	if (nargs != (v->arg != ARG_NONE))
		return usage_error("usage: purgectl %s%s%s", v->name, *v->synopsis ? " " : "", v->synopsis);
	unsigned stray = o->given & ~v->options & OPT_STRICT;
	for (unsigned b = 0; stray && b < sizeof(option_names) / sizeof(option_names[0]); b++)
		if (stray & (1u << b))
			return usage_error("%s does not go with '%s' (usage: purgectl %s%s%s)", option_names[b], v->name,
					   v->name, *v->synopsis ? " " : "", v->synopsis);
	switch (v->arg) {
	case ARG_TASK:
		if (!valid_id(arg))
			return EXIT_PURGECTL_USAGE;
		break;
	case ARG_TARGET:
	case ARG_GUID:
		if (!proto_is_name(arg))
			return usage_error("'%s' is not a valid %s name", arg, v->arg == ARG_GUID ? "database" : "target");
		break;
	case ARG_TOKEN:
		return v->run(NULL, o, arg); /* minted here: no daemon */
	case ARG_NONE:
		break;
	}
	if (o->target && !proto_is_name(o->target))
		return usage_error("'%s' is not a valid target name", o->target);
	if (v->options & OPT_INSTANCES) {
		json_t *ids = o->instances ? parse_ids(o->instances) : NULL;
		if (!ids)
			return usage_error(o->instances ? "--instances takes instance ids such as 1,2, not '%s'"
							: "%s--instances is required: which instances to purge (1,2)",
					   o->instances ? o->instances : "");
		json_decref(ids);
	}
	struct client c;
	int r = client_connect(&c, o->socket);
	if (r)
		return r;
	r = v->run(&c, o, arg);
	client_close(&c);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "yes", no_argument, NULL, 'y' },
		{ "wait", no_argument, NULL, 'w' },
		{ "detach", no_argument, NULL, 'D' },
		{ "limit", required_argument, NULL, 'l' },
		{ "offset", required_argument, NULL, 'o' },
		{ "target", required_argument, NULL, 't' },
		{ "instances", required_argument, NULL, 'i' },
		{ "manifest", no_argument, NULL, 'm' },
		{ "replace", no_argument, NULL, 'R' },
		{ "output", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { .wait = -1, .limit = -1, .offset = -1 };
	int ch;

	/* A write to a daemon that closed on us is an error to report (EPIPE), not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	o.socket = getenv("PURGED_SOCKET");
	if (!o.socket || !*o.socket)
		o.socket = PURGED_DEFAULT_SOCKET;
	while ((ch = getopt_long(argc, argv, "s:jywdhV", opts, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 's': o.socket = optarg; break;
		case 'j': opt_json = true; break;
		case 'y': o.yes = true; o.given |= OPT_YES; break;
		case 'w': o.wait = 1; o.given |= OPT_WAIT; break;
		case 'd':
		case 'D': o.wait = 0; o.given |= OPT_WAIT; break;
		case 'l':
		case 'o': {
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || (ch == 'l' && (v < 1 || v > 1000)))
				return usage_error("--%s takes a number %s, not '%s'", ch == 'l' ? "limit" : "offset",
						   ch == 'l' ? "from 1 to 1000" : ">= 0", optarg);
			*(ch == 'l' ? &o.limit : &o.offset) = v;
			o.given |= ch == 'l' ? OPT_LIMIT : OPT_OFFSET;
			break;
		}
		case 't': o.target = optarg; o.given |= OPT_TARGET; break;
		case 'i': o.instances = optarg; o.given |= OPT_INSTANCES; break;
		case 'm': o.manifest = true; o.given |= OPT_MANIFEST; break;
		case 'R': o.replace = true; o.given |= OPT_REPLACE; break;
		case 'O': o.output = optarg; o.given |= OPT_OUTPUT; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("purgectl %s (protocol %d)\n", PURGED_VERSION, PURGE_PROTO_VERSION); return 0;
		default: fprintf(stderr, "Try 'purgectl --help'.\n"); return EXIT_PURGECTL_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_PURGECTL_USAGE;
	}
	return run_verb(&o, argc - optind, argv + optind);
}
