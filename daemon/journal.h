/*
 * The durable task journal under state_dir: an append-only file of
 * checksummed records, each a whole task snapshot, fsync'ed before the state
 * change it records is acknowledged. Supervisor only. Returns errors; the
 * caller logs.
 *
 * Record format (one line, readable with less):  CRC32HEX SP JSON LF
 * where the CRC-32 covers the JSON bytes.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct journal;

struct journal_report {
	size_t records;        /* valid records replayed */
	size_t skipped;        /* corrupt records followed by valid ones: skipped */
	size_t torn_bytes;     /* bytes of a torn or corrupt tail, truncated away */
	long first_bad_offset; /* -1 if none */
};

/* Called once per valid record, in file order; @record is borrowed. */
typedef void (*journal_replay_fn)(const json_t *record, void *userdata);

/*
 * Open (create) @dir/journal, replay it through @fn, truncate a torn tail.
 * Returns 0 with *ret, or a negative errno.
 */
int journal_open(const char *dir, journal_replay_fn fn, void *userdata,
		 struct journal **ret, struct journal_report *report);
/*
 * Append one record; with @sync, fdatasync it (and every record before it).
 * Returns 0 or a negative errno (-ENOSPC...).
 */
int journal_append(struct journal *j, const json_t *record, bool sync);
/* Records appended since the last rewrite (or open): drives compaction. */
size_t journal_records(const struct journal *j);
/*
 * Replace the journal by @n records atomically (write a new file, fsync,
 * rename, fsync the directory). On failure the old journal stays in use.
 */
int journal_rewrite(struct journal *j, json_t *const *records, size_t n);
struct journal *journal_close(struct journal *j);
