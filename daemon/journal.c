/* Append-only, checksummed task journal with torn-tail recovery. Supervisor only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "daemon/journal.h"
#include "purged/util.h"

struct journal {
	int fd;
	int dirfd;
	char *path;
	size_t records;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Encode one record line; NULL on ENOMEM. */
static char *record_line(const json_t *record, size_t *ret_len)
{
	char *js = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
	char *line;
	if (!js)
		return NULL;
	uLong crc = crc32(0L, (const Bytef *)js, (uInt)strlen(js));
	line = xasprintf("%08lx %s\n", crc, js);
	free(js);
	*ret_len = strlen(line);
	return line;
}

/* Parse one line (without its LF). Returns a new JSON record, or NULL if it is not valid. */
static json_t *record_parse(const char *p, size_t n)
{
	char hex[9];
	unsigned long want;
	char *end;

	if (n < 11 || p[8] != ' ')
		return NULL;
	memcpy(hex, p, 8);
	hex[8] = '\0';
	want = strtoul(hex, &end, 16);
	if (*end)
		return NULL;
	if (crc32(0L, (const Bytef *)p + 9, (uInt)(n - 9)) != want)
		return NULL;
	json_t *j = json_loadb(p + 9, n - 9, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int replay(int fd, journal_replay_fn fn, void *userdata, struct journal_report *rep, off_t *ret_good_end)
{
	struct stat st;
	char *buf;
	size_t len = 0, off = 0;
	off_t good_end = 0;
	size_t bad_pending = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + len, (size_t)st.st_size - len, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}

	while (off < len) {
		char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
		json_t *rec = nl ? record_parse(buf + off, n) : NULL;

		if (rec) {
			fn(rec, userdata);
			json_decref(rec);
			rep->records++;
			rep->skipped += bad_pending;
			bad_pending = 0;
			good_end = (off_t)(off + n + 1);
		} else {
			if (rep->first_bad_offset < 0)
				rep->first_bad_offset = (long)off;
			bad_pending++;
		}
		off += n + (nl != NULL);
	}
	rep->torn_bytes = len - (size_t)good_end;
	free(buf);
	*ret_good_end = good_end;
	return 0;
}

int journal_open(const char *dir, journal_replay_fn fn, void *userdata,
		 struct journal **ret, struct journal_report *report)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	off_t good_end = 0;
	int r;

	*report = (struct journal_report){ .first_bad_offset = -1 };
	j->fd = j->dirfd = -1;
	j->path = xasprintf("%s/journal", dir);
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		r = -errno;
		goto fail;
	}
	j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j->fd < 0) {
		r = -errno;
		goto fail;
	}
	r = replay(j->fd, fn, userdata, report, &good_end);
	if (r < 0)
		goto fail;
	if (report->torn_bytes > 0) {
		/* Cut the torn tail so that new records follow the last good one. */
		if (ftruncate(j->fd, good_end) < 0 || fsync(j->fd) < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (lseek(j->fd, 0, SEEK_END) < 0) {
		r = -errno;
		goto fail;
	}
	j->records = report->records;
	*ret = j;
	return 0;
fail:
	journal_close(j);
	return r;
}

int journal_append(struct journal *j, const json_t *record, bool sync)
{
	size_t n;
	char *line = record_line(record, &n);
	off_t before;
	int r;

	if (!line)
		return -ENOMEM;
	before = lseek(j->fd, 0, SEEK_END);
	r = write_all(j->fd, line, n);
	if (r >= 0 && sync && fdatasync(j->fd) < 0)
		r = -errno;
	if (r < 0 && before >= 0) {
		/* Leave no half record behind (ENOSPC mid-write): the next append starts clean. */
		if (ftruncate(j->fd, before) < 0) {
			/* Replay will treat it as a torn tail. */
		}
	}
	free(line);
	if (r >= 0)
		j->records++;
	return r;
}

size_t journal_records(const struct journal *j)
{
	return j->records;
}

int journal_rewrite(struct journal *j, json_t *const *records, size_t n)
{
	char *tmp = xasprintf("%s.new", j->path);
	int fd, r = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto finish;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		size_t len;
		char *line = record_line(records[i], &len);
		r = line ? write_all(fd, line, len) : -ENOMEM;
		free(line);
	}
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && rename(tmp, j->path) < 0)
		r = -errno;
	if (r >= 0 && fsync(j->dirfd) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		unlink(tmp);
		goto finish;
	}
	close(j->fd);
	j->fd = fd;
	/* The new file was opened write-only: reopen for append, keeping O_RDWR semantics. */
	j->fd = open(j->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	close(fd);
	if (j->fd < 0) {
		r = -errno;
		goto finish;
	}
	if (lseek(j->fd, 0, SEEK_END) < 0)
		r = -errno;
	j->records = n;
finish:
	free(tmp);
	return r;
}

struct journal *journal_close(struct journal *j)
{
	if (!j)
		return NULL;
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->path);
	free(j);
	return NULL;
}
