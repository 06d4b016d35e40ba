/*
 * The archive a purge writes before it deletes, and a restore reads
 * (archive.h). zstd compresses the JSON lines here, in the executor, so the
 * supervisor's event loop never does; SHA-256 is taken of the bytes as they
 * are written, and the supervisor checks it again against the file.
 * Executor only.
 */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>
#include "daemon/executor/archive.h"
#include "purged/log.h"
#include "purged/util.h"

#define ZSTD_LEVEL 1                    /* fast: the export must cost no more than its reads */
#define RESERVE_MIN (64ull << 20)       /* free space left for the journal beside the archive */
#define LINE_MAX_BYTES (256u << 20)     /* one record when reading: a huge Redis value at most */

struct archive {
	bool writing;
	bool broken;               /* a write failed: nothing more is safe */
	int fd;
	uint64_t max_bytes;        /* writing: the limit, the smaller of archive_max_bytes and room */
	bool by_room;              /* ... which is the file system's room, not archive_max_bytes */
	uint64_t bytes;            /* compressed bytes written (or read) */
	uint64_t records;          /* records added (writing) or returned (reading) */
	uint64_t sealed;           /* writing: records made durable by the last seal */
	bool unsealed;             /* records added since the last seal */
	struct sha256_ctx sha;
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	unsigned char *zbuf;       /* compressed side */
	size_t zcap, zlen, zpos;
	char *line;                /* reading: decompressed bytes not yet returned */
	size_t lcap, llen;
	size_t whole;              /* reading: of those, the bytes of frames read to their end */
	bool cut;                  /* reading: the file ended inside a frame (never sealed) */
	bool eof, header_seen;
	bool mid_frame;            /* reading: the last zstd frame is not complete yet */
	char want_sha[65];
};

bool backend_archiving(const struct backend_ctx *ctx)
{
	return ctx->archive && ctx->archive->writing;
}

static int write_all(struct backend_ctx *ctx, struct archive *a, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0) {
		ssize_t w = write(a->fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			a->broken = true;
			if (e == EFBIG && a->by_room)
				return backend_fail(ctx, "archive: it reached the room archive_dir's file system had "
						    "for it (%llu bytes: free space less its reserve and other archives "
						    "being written) after %llu records: nothing more was deleted; free "
						    "space or point archive_dir at a larger file system, then purge again",
						    (unsigned long long)a->max_bytes, (unsigned long long)a->records);
			if (e == EFBIG)
				return backend_fail(ctx, "archive: it reached archive_max_bytes (%llu bytes) after %llu "
						    "records: nothing more was deleted; raise archive_max_bytes or purge "
						    "without an archive", (unsigned long long)a->max_bytes,
						    (unsigned long long)a->records);
			return backend_fail(ctx, "archive: writing it failed after %llu bytes: %s: nothing more was "
					    "deleted; free space in archive_dir (or point it elsewhere), then purge "
					    "again", (unsigned long long)a->bytes, strerror(e));
		}
		sha256_update(&a->sha, (size_t)w, b);
		a->bytes += (uint64_t)w;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Feed @n bytes to the compressor with @mode, writing what it gives out. */
static int compress_feed(struct backend_ctx *ctx, struct archive *a, const void *p, size_t n,
			 ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { p, n, 0 };
	size_t left;
	do {
		ZSTD_outBuffer out = { a->zbuf, a->zcap, 0 };
		left = ZSTD_compressStream2(a->cctx, &out, &in, mode);
		if (ZSTD_isError(left)) {
			a->broken = true;
			return backend_fail(ctx, "archive: compression failed: %s", ZSTD_getErrorName(left));
		}
		if (out.pos && write_all(ctx, a, a->zbuf, out.pos) < 0)
			return -1;
	} while (mode == ZSTD_e_continue ? in.pos < in.size : left != 0);
	return 0;
}

static int add_line(struct backend_ctx *ctx, struct archive *a, json_t *record)
{
	char *text = json_dumps(record, JSON_COMPACT | JSON_ENSURE_ASCII);
	int r;
	json_decref(record);
	if (!text) {
		a->broken = true;
		return backend_fail(ctx, "archive: a record could not be encoded (out of memory?): nothing more "
				    "was deleted");
	}
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps' NUL becomes the line's end */
	r = compress_feed(ctx, a, text, n + 1, ZSTD_e_continue);
	free(text);
	return r;
}

int backend_archive_add(struct backend_ctx *ctx, json_t *record)
{
	struct archive *a = ctx->archive;
	if (!a || !a->writing || a->broken || !json_is_object(record)) {
		json_decref(record);
		return backend_fail(ctx, "archive: %s", !a || !a->writing ? "this task writes no archive (a bug)"
					   : a->broken ? "an earlier write failed: nothing more may be deleted"
						       : "a record must be an object (a bug)");
	}
	if (add_line(ctx, a, record) < 0)
		return -1;
	a->records++;
	a->unsealed = true;
	return 0;
}

int backend_archive_seal(struct backend_ctx *ctx)
{
	struct archive *a = ctx->archive;
	if (!a || !a->writing || a->broken)
		return backend_fail(ctx, "archive: %s", !a || !a->writing ? "this task writes no archive (a bug)"
							: "an earlier write failed: nothing more may be deleted");
	if (!a->unsealed)
		return 0;
	if (compress_feed(ctx, a, NULL, 0, ZSTD_e_end) < 0)
		return -1;
	if (fsync(a->fd) < 0) {
		int e = errno;
		a->broken = true;
		return backend_fail(ctx, "archive: fsync failed: %s: nothing more was deleted; check archive_dir's "
				    "file system, then purge again", strerror(e));
	}
	a->unsealed = false;
	a->sealed = a->records;
	return 0;
}

int backend_archive_reserve(struct backend_ctx *ctx, uint64_t estimate)
{
	struct archive *a = ctx->archive;
	struct statvfs sv;
	if (!backend_archiving(ctx))
		return 0;
	if (a->max_bytes && estimate > a->max_bytes && a->by_room)
		return backend_fail(ctx, "archive: the export is estimated at %llu bytes, more than the %llu bytes "
				    "archive_dir's file system has room for (free space less its reserve and other "
				    "archives being written): nothing was deleted; free space or point archive_dir at a "
				    "larger file system, then purge again", (unsigned long long)estimate,
				    (unsigned long long)a->max_bytes);
	if (a->max_bytes && estimate > a->max_bytes)
		return backend_fail(ctx, "archive: the export is estimated at %llu bytes, over archive_max_bytes "
				    "(%llu): nothing was deleted; raise archive_max_bytes or purge without an archive",
				    (unsigned long long)estimate, (unsigned long long)a->max_bytes);
	if (fstatvfs(a->fd, &sv) < 0)
		return backend_fail(ctx, "archive: cannot see the free space of archive_dir's file system: %s: "
				    "nothing was deleted", strerror(errno));
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, total = (uint64_t)sv.f_blocks * sv.f_frsize;
	uint64_t reserve = total / 50 > RESERVE_MIN ? total / 50 : RESERVE_MIN;
	if (avail < reserve || avail - reserve < estimate)
		return backend_fail(ctx, "archive: the export is estimated at %llu bytes, and archive_dir's file "
				    "system has %llu bytes free (%llu kept in reserve): nothing was deleted; free "
				    "space or point archive_dir at a larger file system, then purge again",
				    (unsigned long long)estimate, (unsigned long long)avail,
				    (unsigned long long)reserve);
	return 0;
}

/* Reading: more decompressed bytes into a->line. 1 when some came, 0 at the end, -1 on error. */
static int read_more(struct backend_ctx *ctx, struct archive *a)
{
	for (;;) {
		if (a->zpos == a->zlen) {
			if (a->eof)
				return 0;
			ssize_t n = read(a->fd, a->zbuf, a->zcap);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return backend_fail(ctx, "archive: reading it failed: %s", strerror(errno));
			if (n == 0) {
				a->eof = true;
				/* A frame cut short is a seal that never completed: none of its records was deleted. */
				a->cut = a->mid_frame;
				return 0;
			}
			a->zlen = (size_t)n;
			a->zpos = 0;
		}
		if (a->lcap - a->llen < ZSTD_DStreamOutSize()) {
			if (a->lcap >= LINE_MAX_BYTES)
				return backend_fail(ctx, "archive: a record is longer than %u bytes: the archive is "
						    "damaged, or not purged's", LINE_MAX_BYTES);
			size_t cap = a->lcap ? a->lcap * 2 : 2 * ZSTD_DStreamOutSize();
			char *p = realloc(a->line, cap);
			if (!p)
				return backend_fail(ctx, "archive: out of memory reading a record");
			a->line = p;
			a->lcap = cap;
		}
		ZSTD_inBuffer in = { a->zbuf, a->zlen, a->zpos };
		ZSTD_outBuffer out = { a->line + a->llen, a->lcap - a->llen, 0 };
		size_t r = ZSTD_decompressStream(a->dctx, &out, &in);
		if (ZSTD_isError(r))
			return backend_fail(ctx, "archive: it cannot be decompressed: %s: the file is damaged",
					    ZSTD_getErrorName(r));
		a->zpos = in.pos;
		a->llen += out.pos;
		a->mid_frame = r != 0;
		if (r == 0)
			a->whole = a->llen; /* a frame ended: its records were sealed */
		if (out.pos)
			return 1;
	}
}

/* Hash the whole file and compare with the job's SHA-256, then rewind. */
static int verify_whole(struct backend_ctx *ctx, struct archive *a)
{
	unsigned char d[32];
	char hex[65];
	ssize_t n;
	struct sha256_ctx sha;

	sha256_init(&sha);
	while ((n = read(a->fd, a->zbuf, a->zcap)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return backend_fail(ctx, "archive: reading it failed: %s", strerror(errno));
		sha256_update(&sha, (size_t)n, a->zbuf);
		a->bytes += (uint64_t)n;
	}
	sha256_digest(&sha, sizeof(d), d);
	sha256_to_hex(d, hex);
	if (strcmp(hex, a->want_sha) != 0)
		return backend_fail(ctx, "archive: its SHA-256 is %s, not the %s recorded when it was written: the "
				    "file was changed or damaged; nothing was restored", hex, a->want_sha);
	if (lseek(a->fd, 0, SEEK_SET) < 0)
		return backend_fail(ctx, "archive: cannot rewind it: %s", strerror(errno));
	return 0;
}

json_t *backend_archive_next(struct backend_ctx *ctx)
{
	struct archive *a = ctx->archive;
	if (!a || a->writing) {
		backend_fail(ctx, "archive: this task reads no archive (a bug)");
		return NULL;
	}
	if (!a->header_seen && a->records == 0 && a->bytes == 0 && verify_whole(ctx, a) < 0)
		return NULL;
	for (;;) {
		/* Only records of frames read to their end: each frame is one seal of the purge. */
		char *nl = a->whole ? memchr(a->line, '\n', a->whole) : NULL;
		if (!nl) {
			int r = read_more(ctx, a);
			if (r < 0)
				return NULL;
			if (r == 0 && a->whole && memchr(a->line, '\n', a->whole))
				continue; /* the last read ended a frame without giving out bytes: its lines are whole */
			if (r == 0 && a->cut) {
				backend_warn(ctx, "the archive ends in a part its purge never sealed (it failed while "
					     "writing it): the %llu records of its sealed part were read; the records "
					     "after them were never deleted", (unsigned long long)a->records);
				a->cut = false;
				a->llen = a->whole = 0;
				return NULL;
			}
			if (r == 0) {
				if (a->llen)
					backend_fail(ctx, "archive: it ends in the middle of a record: the file is cut");
				return NULL;
			}
			continue;
		}
		json_error_t je;
		size_t len = (size_t)(nl - a->line);
		json_t *rec = json_loadb(a->line, len, JSON_REJECT_DUPLICATES, &je);
		memmove(a->line, nl + 1, a->llen - len - 1);
		a->llen -= len + 1;
		a->whole -= len + 1;
		if (!json_is_object(rec)) {
			json_decref(rec);
			backend_fail(ctx, "archive: record %llu is not a JSON object (%s): the file is damaged",
				     (unsigned long long)a->records + 1, je.text);
			return NULL;
		}
		if (!a->header_seen) {
			a->header_seen = true;
			bool ok = json_integer_value(json_object_get(rec, "purged_archive")) == 1;
			json_decref(rec);
			if (!ok) {
				backend_fail(ctx, "archive: its first line is not purged's archive header (version 1)");
				return NULL;
			}
			continue;
		}
		a->records++;
		return rec;
	}
}

int archive_open(struct backend_ctx *ctx, const json_t *spec, const char *type)
{
	struct stat st;
	int fl;

	if (!spec) {
		/* No archive: the fd is not ours to keep. */
		if (fstat(ARCHIVE_FD, &st) == 0)
			close(ARCHIVE_FD);
		return 0;
	}
	const char *mode = json_string_value(json_object_get(spec, "mode"));
	bool writing = mode && strcmp(mode, "write") == 0;
	if (!mode || (!writing && strcmp(mode, "read") != 0))
		return backend_fail(ctx, "archive: the job's mode is neither write nor read (a bug)");
	if (fstat(ARCHIVE_FD, &st) < 0 || !S_ISREG(st.st_mode) || (fl = fcntl(ARCHIVE_FD, F_GETFL)) < 0 ||
	    (fl & O_ACCMODE) != (writing ? O_WRONLY : O_RDONLY))
		return backend_fail(ctx, "archive: fd %d is not the archive file opened for %s: purged and "
				    "purged-executor disagree; restart purged", ARCHIVE_FD, writing ? "writing" : "reading");
	struct archive *a = calloc(1, sizeof(*a));
	if (!a)
		return backend_fail(ctx, "archive: out of memory");
	ctx->archive = a;
	a->fd = ARCHIVE_FD;
	a->writing = writing;
	sha256_init(&a->sha);
	if (writing) {
		/* The kernel holds the archive to its limit (EFBIG, not a signal): archive_max_bytes, or the room
		 * the supervisor found on archive_dir's file system when that is less. */
		a->max_bytes = (uint64_t)json_integer_value(json_object_get(spec, "max_bytes"));
		json_t *room = json_object_get(spec, "room");
		if (room && (!a->max_bytes || (uint64_t)json_integer_value(room) < a->max_bytes)) {
			a->max_bytes = (uint64_t)json_integer_value(room);
			a->by_room = true;
		}
		struct rlimit fs = { a->max_bytes ? a->max_bytes : RLIM_INFINITY,
				     a->max_bytes ? a->max_bytes : RLIM_INFINITY };
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &fs) < 0)
			return backend_fail(ctx, "setrlimit(RLIMIT_FSIZE) failed: %s", strerror(errno));
		if (st.st_size != 0)
			return backend_fail(ctx, "archive: the file is not empty: refusing to write after someone "
					    "else's bytes");
		a->cctx = ZSTD_createCCtx();
		a->zcap = ZSTD_CStreamOutSize();
		if (!a->cctx || ZSTD_isError(ZSTD_CCtx_setParameter(a->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(a->cctx, ZSTD_c_checksumFlag, 1)))
			return backend_fail(ctx, "archive: cannot set up the compressor");
	} else {
		const char *sha = json_string_value(json_object_get(spec, "sha256"));
		if (!sha || strlen(sha) != 64)
			return backend_fail(ctx, "archive: the job gives no SHA-256 to check the archive against");
		snprintf(a->want_sha, sizeof(a->want_sha), "%s", sha);
		a->dctx = ZSTD_createDCtx();
		a->zcap = ZSTD_DStreamInSize();
		if (!a->dctx)
			return backend_fail(ctx, "archive: cannot set up the decompressor");
	}
	a->zbuf = malloc(a->zcap);
	if (!a->zbuf)
		return backend_fail(ctx, "archive: out of memory");
	if (!writing)
		return 0;
	char when[32];
	json_t *hdr = json_pack("{s:i, s:s, s:s, s:s, s:s}", "purged_archive", 1, "task_id", ctx->task_id, "target",
				ctx->target, "type", type, "created", format_rfc3339(now_usec(), when, sizeof(when)));
	if (!hdr)
		return backend_fail(ctx, "archive: out of memory");
	if (add_line(ctx, a, hdr) < 0)
		return -1;
	a->unsealed = true;
	return 0;
}

void archive_close(struct backend_ctx *ctx, struct msg_result *res, char sha[65])
{
	struct archive *a = ctx->archive;
	if (!a)
		return;
	if (a->writing) {
		/* What a failed run added is ended and synced too: it is what the supervisor will keep. */
		if (!a->broken && a->unsealed) {
			char keep[sizeof(ctx->error)];
			memcpy(keep, ctx->error, sizeof(keep));
			if (backend_archive_seal(ctx) < 0)
				log_warnx("%s", ctx->error);
			memcpy(ctx->error, keep, sizeof(keep));
		}
		unsigned char d[32];
		sha256_digest(&a->sha, sizeof(d), d);
		sha256_to_hex(d, sha);
		res->has_archive = true;
		res->archive_bytes = a->bytes;
		res->archive_records = a->sealed; /* what a reader gets: records after the last seal are left out */
		res->archive_sha256 = sha;
	}
	ZSTD_freeCCtx(a->cctx);
	ZSTD_freeDCtx(a->dctx);
	free(a->zbuf);
	free(a->line);
	close(a->fd);
	free(a);
	ctx->archive = NULL;
}
