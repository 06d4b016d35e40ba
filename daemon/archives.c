/*
 * The supervisor's side of archives (archive = yes): it owns archive_dir,
 * opens each TASK.jsonl.zst for the executor (fd 4), hashes the file itself
 * once the executor has ended (off the event loop: archives are large),
 * hands chunks of it to tasks.archive, and prunes old ones
 * (archive_keep_days). The executor compresses and writes; nothing here
 * reads an archive's content. Supervisor only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/creds.h"
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/util.h"

#define ARCHIVE_SUFFIX ".jsonl.zst"

char *archives_path(const char *task_id)
{
	return xasprintf("%s/%s" ARCHIVE_SUFFIX, purged->conf->archive_dir, task_id);
}

int archives_create(const struct task *task, int *ret_fd, char **ret_path, char *why, size_t whylen)
{
	const char *dir = purged->conf->archive_dir;
	char err[512];
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(why, whylen, "cannot create archive_dir '%s' for this purge's archive (archive = yes on target "
			 "'%s'): %s; create it (mode 0700, owned by the daemon's user) or set archive_dir, then purge "
			 "again; nothing was deleted", dir, task->target, strerror(errno));
		return -1;
	}
	if (creds_check_private_dir(dir, "archive_dir", err, sizeof(err)) < 0) {
		/* Whoever may write there may read or swap what a purge keeps. */
		snprintf(why, whylen, "%s; the archive of this purge (archive = yes on target '%s') would not be "
			 "private there; fix it and purge again; nothing was deleted", err, task->target);
		return -1;
	}
	char *path = archives_path(task->id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "cannot create the archive '%s' (archive = yes on target '%s'): %s; free space "
			 "or fix archive_dir, then purge again; nothing was deleted", path, task->target, strerror(errno));
		free(path);
		return -1;
	}
	*ret_fd = fd;
	*ret_path = path;
	return 0;
}

int archives_open_read(const char *path, int *ret_fd, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0) {
		snprintf(why, whylen, "cannot open the archive '%s': %s%s", path, strerror(errno),
			 errno == ENOENT ? " (archive_keep_days removes old archives; nothing can be restored from "
					   "a removed one)" : "; fix its permissions and try again");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "the archive '%s' is not a regular file; nothing was restored", path);
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*ret_fd = fd;
	return 0;
}


/* ------------------------------------------------------------- hashing */

struct hash_work {
	uv_work_t req;
	char *path;
	int err;                 /* 0 or an errno */
	uint64_t bytes;
	char hex[65];
	archives_hash_cb done;
	void *data;
};

static void hash_run(uv_work_t *req)
{
	struct hash_work *w = req->data;
	struct sha256_ctx ctx;
	unsigned char digest[32];
	static __thread unsigned char buf[1 << 16];
	int fd = open(w->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		w->err = errno;
		return;
	}
	/*
	 * purged's executor writes an archive front to back: a file with holes (a hostile executor's
	 * lseek past the end) would keep this thread hashing zeros for minutes and be recorded as an
	 * archive of that size. Refused (EFBIG), said by the caller; the file is kept for inspection.
	 */
	struct stat st;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_blocks * 512 + (1u << 20) < (uint64_t)st.st_size) {
		w->err = EFBIG;
		close(fd);
		return;
	}
	sha256_init(&ctx);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		sha256_update(&ctx, (size_t)n, buf);
		w->bytes += (uint64_t)n;
	}
	if (n < 0)
		w->err = errno;
	close(fd);
	sha256_digest(&ctx, sizeof(digest), digest);
	sha256_to_hex(digest, w->hex);
}

static void hash_after(uv_work_t *req, int status)
{
	struct hash_work *w = req->data;
	if (status < 0 && !w->err)
		w->err = ECANCELED;
	w->done(w->data, w->err, w->bytes, w->hex);
	free(w->path);
	free(w);
}

int archives_hash(const char *path, archives_hash_cb done, void *data)
{
	struct hash_work *w = xcalloc(1, sizeof(*w));
	w->path = xstrdup(path);
	w->done = done;
	w->data = data;
	w->req.data = w;
	int r = uv_queue_work(purged->loop, &w->req, hash_run, hash_after);
	if (r < 0) {
		free(w->path);
		free(w);
	}
	return r;
}

/* ------------------------------------------------------------- chunks */

json_t *archives_read_chunk(const struct task *task, uint64_t offset, char *why, size_t whylen)
{
	const char *path = json_string_value(json_object_get(task->archive, "file"));
	const char *sha = json_string_value(json_object_get(task->archive, "sha256"));
	struct stat st;
	int fd;

	if (!path || archives_open_read(path, &fd, why, whylen) < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		snprintf(why, whylen, "cannot stat the archive '%s': %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (offset > (uint64_t)st.st_size) {
		snprintf(why, whylen, "offset %llu is past the end of the archive '%s' (%lld bytes)",
			 (unsigned long long)offset, path, (long long)st.st_size);
		close(fd);
		return NULL;
	}
	size_t want = (uint64_t)st.st_size - offset < ARCHIVE_CHUNK_MAX ? (size_t)((uint64_t)st.st_size - offset)
									 : ARCHIVE_CHUNK_MAX;
	unsigned char *buf = xmalloc(want ? want : 1);
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, (off_t)(offset + got));
		if (n <= 0) {
			snprintf(why, whylen, "cannot read the archive '%s': %s", path, n < 0 ? strerror(errno)
										: "it shrank while read");
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)n;
	}
	close(fd);
	char *text = b64_encode(buf, got);
	free(buf);
	if (!text) {
		snprintf(why, whylen, "out of memory encoding a chunk of the archive '%s'", path);
		return NULL;
	}
	json_t *res = json_pack("{s:I, s:s?, s:I, s:s, s:b}", "size", (json_int_t)st.st_size, "sha256", sha, "offset",
				(json_int_t)offset, "data", text, "eof", offset + got >= (uint64_t)st.st_size);
	free(text);
	return res;
}

/* ------------------------------------------------------------- pruning */

static uv_timer_t prune_timer;
static bool prune_ready, prune_busy;

struct prune_work {
	uv_work_t req;
	char *dir;
	unsigned days;
	size_t removed, failed;
	char **names;            /* what was removed or failed: logged on the loop, not in the worker */
	int *errs;               /* 0 (removed) or the errno */
	size_t n;
};

static void prune_run(uv_work_t *req)
{
	struct prune_work *w = req->data;
	DIR *d = opendir(w->dir);
	struct dirent *de;
	time_t limit = time(NULL) - (time_t)w->days * 86400;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name), sl = strlen(ARCHIVE_SUFFIX);
		struct stat st;
		char id[PURGE_TASK_ID_LEN + 1];
		if (n != PURGE_TASK_ID_LEN + sl || strcmp(de->d_name + PURGE_TASK_ID_LEN, ARCHIVE_SUFFIX) != 0)
			continue;
		/* Only purged's own names (a task id): anything else put there is not ours to remove. */
		snprintf(id, sizeof(id), "%.*s", PURGE_TASK_ID_LEN, de->d_name);
		if (!proto_is_task_id(id))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_mtime >= limit)
			continue;
		int r = unlinkat(dirfd(d), de->d_name, 0) == 0 ? 0 : errno;
		if (r)
			w->failed++;
		else
			w->removed++;
		if (w->n < 1000) {
			w->names = xrealloc(w->names, (w->n + 1) * sizeof(*w->names));
			w->errs = xrealloc(w->errs, (w->n + 1) * sizeof(*w->errs));
			w->names[w->n] = xstrdup(de->d_name);
			w->errs[w->n++] = r;
		}
	}
	closedir(d);
}

static void prune_after(uv_work_t *req, int status)
{
	struct prune_work *w = req->data;
	(void)status;
	for (size_t i = 0; i < w->n; i++) {
		if (w->errs[i])
			log_warnx("cannot remove the archive %s/%s, older than archive_keep_days (%u): %s; remove it by "
				  "hand or fix archive_dir's permissions", w->dir, w->names[i], w->days, strerror(w->errs[i]));
		else
			log_info("archive %s/%s removed: older than archive_keep_days (%u)", w->dir, w->names[i], w->days);
		free(w->names[i]);
	}
	free(w->names);
	free(w->errs);
	if (w->removed || w->failed)
			log_info("archives: %zu older than %u days removed from %s%s", w->removed, w->days, w->dir,
			 w->failed ? " (some could not be: see above)" : "");
	prune_busy = false;
	free(w->dir);
	free(w);
}

void archives_prune(void)
{
	unsigned days = purged->conf->archive_keep_days;
	struct stat st;
	/* No archive_dir yet (no purge archived anything): nothing to prune, no thread pool started for it. */
	if (days == 0 || prune_busy || stat(purged->conf->archive_dir, &st) < 0)
		return;
	struct prune_work *w = xcalloc(1, sizeof(*w));
	w->dir = xstrdup(purged->conf->archive_dir);
	w->days = days;
	w->req.data = w;
	if (uv_queue_work(purged->loop, &w->req, prune_run, prune_after) < 0) {
		free(w->dir);
		free(w);
		return;
	}
	prune_busy = true;
}

static void on_prune_timer(uv_timer_t *h)
{
	(void)h;
	archives_prune();
}

void archives_start(void)
{
	if (!prune_ready) {
		uv_timer_init(purged->loop, &prune_timer);
		uv_unref((uv_handle_t *)&prune_timer);
		prune_ready = true;
	}
	archives_prune();
	uv_timer_start(&prune_timer, on_prune_timer, 3600 * 1000, 3600 * 1000);
}
