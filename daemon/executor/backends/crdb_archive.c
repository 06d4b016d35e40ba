/*
 * crdb with archive = yes: the purge that archives every key before it
 * deletes it, and the restore of such an archive (issue 14, items 3 and 4).
 *
 * Purge, per instance, one round trip per SCAN page: the next SCAN, then
 * PEXPIRETIME and DUMP of each key of the page (its type is the DUMP's first
 * byte; on a server before Redis 7.0, without PEXPIRETIME: TIME, PTTL and
 * DUMP of each key, the expiry being TIME + PTTL read together); the next trip is sent as soon as a trip's SCAN is answered, so the
 * server works while this process archives. Each key becomes an archive
 * record ({kind: "key", instance, key or key_b64, type, expire_at_ms:
 * absolute unix ms or -1, dump: base64}); a key gone between SCAN and DUMP is
 * skipped. Every SEAL_KEYS keys (or SEAL_BYTES of records) the archive is
 * sealed (written, fsync'd), and then exactly those keys are deleted by name,
 * sent with the next trip's commands, by a script (DELETE_SCRIPT) that
 * UNLINKs a key only if its DUMP's CRC-64 and its expiry are still what was
 * archived (PEXPIRETIME equal; without it, TIME + PTTL read together within
 * EXP_SLACK_MS: Redis does not freeze time inside a script, so one TIME for a
 * script of large DUMPs drifts; that archived a 100 MB key with a TTL again
 * and again as "changed"), atomically: "nothing unarchived is deleted" holds even for a key
 * written after its DUMP. Its answers are the confirmed deletions; a key that
 * changed is read and archived again in the next round trip (a restore keeps
 * the last record of a key). (WATCH/MULTI would do the same, but Redis checks
 * each WATCHed key against the connection's list of them: quadratic, 11 s for
 * 100 000 keys in batches of 8192.) SCAN returns every key present for the
 * whole scan; keys written meanwhile are found by up to EXTRA_PASSES further
 * passes, then crdb.c's post-condition reports what remains. A stop request
 * stops between pages, before the next delete.
 *
 * Restore: every record is read first (the archive is checked whole by
 * archive.c) and kept compactly, the last record of a key winning. Nothing is
 * restored unless every instance answers and, without options.replace, none
 * of the keys to restore exists with another value or expiry (DUMP and
 * PEXPIRETIME, pipelined): a key identical to its record (what a purge that
 * stopped midway archived but did not delete) is "already present", said in
 * a warning and left as it is. Then RESTORE key ttl
 * payload [REPLACE] ABSTTL, pipelined; a key whose expire_at_ms has passed
 * (by the server's TIME) is counted under "expired", not restored.
 * Executor only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/archive.h"
#include "daemon/executor/backends/crdb.h"
#include "purged/log.h"
#include "purged/util.h"

#define PAGE_KEYS "1000"          /* SCAN COUNT */
#define SEAL_KEYS 8192            /* keys archived between two seals (and one delete batch) */
#define SEAL_BYTES (8u << 20)     /* ... or that many bytes of records */
#define EXTRA_PASSES 2            /* further SCAN passes for keys written meanwhile */
#define RECORD_OVERHEAD 128       /* a record's JSON besides its key and payload, with margin */
#define MAX_DUMP (180u << 20)     /* base64 of it stays under archive.c's record limit */
#define RESTORE_CHUNK 1000        /* commands per round trip in a restore */
#define SHOWN 20                  /* keys named in an error */
#define EXP_SLACK_MS "100"        /* without PEXPIRETIME: TIME + PTTL of an unchanged key, read twice */
#define DELETE_CHUNK 500          /* keys per script call: the server is busy about 1.5 ms */

/* KEYS: names; ARGV[i]: the archived DUMP's last 8 bytes (its CRC-64), ARGV[#KEYS + i]: its archived
 * expire_at_ms. UNLINKs the keys unchanged since; returns {deleted, index of each changed key...}.
 * The expiry is compared exactly: PEXPIRETIME is absolute, what the export read (Redis >= 7.0). */
static const char DELETE_SCRIPT[] =
	"local n, out = #KEYS, {0}\n"
	"for i = 1, n do\n"
	"  local d = redis.call('DUMP', KEYS[i])\n"
	"  if d then\n"
	"    if string.sub(d, -8) == ARGV[i] and redis.call('PEXPIRETIME', KEYS[i]) == tonumber(ARGV[n + i]) then\n"
	"      out[1] = out[1] + redis.call('UNLINK', KEYS[i])\n"
	"    else out[#out + 1] = i end\n"
	"  end\n"
	"end\n"
	"return out\n";

/* The same without PEXPIRETIME (before Redis 7.0): per key TIME right before PTTL, PTTL before DUMP,
 * the sum compared within EXP_SLACK_MS (a DUMP between them would be counted as drift). */
static const char DELETE_SCRIPT_PTTL[] =
	"local n, out = #KEYS, {0}\n"
	"for i = 1, n do\n"
	"  local t = redis.call('TIME')\n"
	"  local p = redis.call('PTTL', KEYS[i])\n"
	"  local d = redis.call('DUMP', KEYS[i])\n"
	"  if d then\n"
	"    local ok, want = string.sub(d, -8) == ARGV[i], tonumber(ARGV[n + i])\n"
	"    if ok then\n"
	"      local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"      if p < 0 then ok = want < 0 else ok = want >= 0 and math.abs(now + p - want) <= " EXP_SLACK_MS " end\n"
	"    end\n"
	"    if ok then out[1] = out[1] + redis.call('UNLINK', KEYS[i]) else out[#out + 1] = i end\n"
	"  end\n"
	"end\n"
	"return out\n";

/* ------------------------------------------------------------------ purge */

/* A key archived, to be deleted: its name, and what its archived DUMP and expiry were. */
struct bkey {
	const char *k;
	size_t len;
	uint64_t crc;             /* the DUMP's last 8 bytes: its CRC-64 */
	int64_t exp;              /* the archived expire_at_ms */
};

struct batch {
	redisReply **pages;       /* SCAN answers the keys point into */
	size_t npages, pcap;
	char **owned;             /* ... or copies of the names of keys read again */
	size_t nowned, ocap;
	struct bkey *keys;
	size_t nkeys, kcap;
	size_t bytes;             /* of records added */
};

struct run {
	struct backend_ctx *ctx;
	json_t *errors;
	struct instance *in;
	char kind[64];            /* "instance N" */
	bool abs;                 /* the server has PEXPIRETIME: expiries read and compared absolute */
	uint64_t *done, total;
	struct batch b;           /* archived, not yet sealed and deleted */
	struct bkey *rk;          /* keys the delete found changed, to read and archive again (names owned) */
	size_t nrk, rkcap;
	uint64_t archived, changed;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	p = realloc(p, c * size);
	if (!p)
		abort(); /* out of memory: the executor dies, the supervisor records it */
	*cap = c;
	return p;
}

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->npages; i++)
		freeReplyObject(b->pages[i]);
	for (size_t i = 0; i < b->nowned; i++)
		free(b->owned[i]);
	b->npages = b->nowned = b->nkeys = b->bytes = 0;
}

static void batch_free(struct batch *b)
{
	batch_clear(b);
	free(b->pages);
	free(b->owned);
	free(b->keys);
}

static void batch_keep(struct batch *b, redisReply *page)
{
	b->pages = grow(b->pages, &b->pcap, b->npages + 1, sizeof(*b->pages));
	b->pages[b->npages++] = page;
}

static void batch_own(struct batch *b, char *name)
{
	b->owned = grow(b->owned, &b->ocap, b->nowned + 1, sizeof(*b->owned));
	b->owned[b->nowned++] = name;
}

static void batch_key(struct batch *b, struct bkey k)
{
	b->keys = grow(b->keys, &b->kcap, b->nkeys + 1, sizeof(*b->keys));
	b->keys[b->nkeys++] = k;
}

/* A key the delete found changed since its DUMP: read and archived again in the next round trip. */
static void recheck(struct run *r, const struct bkey *k)
{
	char *c = malloc(k->len ? k->len : 1);
	if (!c)
		abort();
	memcpy(c, k->k, k->len);
	r->rk = grow(r->rk, &r->rkcap, r->nrk + 1, sizeof(*r->rk));
	r->rk[r->nrk] = *k;
	r->rk[r->nrk++].k = c;
}

static void recheck_free(struct bkey *rk, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)rk[i].k);
	free(rk);
}

/* A SCAN answer: [cursor, [keys...]]. */
static bool scan_ok(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
	       r->element[1]->type == REDIS_REPLY_ARRAY;
}

static uint64_t dump_crc(const redisReply *dump)
{
	uint64_t c = 0;
	if (dump->len >= 8)
		memcpy(&c, dump->str + dump->len - 8, 8);
	return c;
}

/* The type a DUMP payload holds (its first byte: the RDB object type), as TYPE would name it. */
static const char *dump_type(const redisReply *dump)
{
	static const char *const names[] = {
		[0] = "string", [1] = "list", [2] = "set", [3] = "zset", [4] = "hash", [5] = "zset", [6] = "module",
		[7] = "module", [9] = "hash", [10] = "list", [11] = "set", [12] = "zset", [13] = "hash", [14] = "list",
		[15] = "stream", [16] = "hash", [17] = "zset", [18] = "list", [19] = "stream", [20] = "set",
		[21] = "stream", [22] = "hash", [23] = "hash", [24] = "hash", [25] = "hash",
	};
	unsigned char t = dump->len ? (unsigned char)dump->str[0] : 255;
	return t < sizeof(names) / sizeof(names[0]) && names[t] ? names[t] : "unknown";
}

/* The record of one key. */
static json_t *record(const struct instance *in, const char *name, size_t len, const redisReply *dump, int64_t exp)
{
	char *payload = b64_encode(dump->str, dump->len);
	json_t *key = json_stringn(name, len); /* NULL when not UTF-8 */
	json_t *rec = json_pack("{s:s, s:s, s:s, s:I, s:s}", "kind", "key", "instance", in->id, "type",
				dump_type(dump), "expire_at_ms", (json_int_t)exp, "dump", payload ? payload : "");
	if (!payload || !rec)
		abort();
	free(payload);
	if (key) {
		json_object_set_new(rec, "key", key);
	} else {
		char *b = b64_encode(name, len);
		if (!b)
			abort();
		json_object_set_new(rec, "key_b64", json_string(b));
		free(b);
	}
	return rec;
}

/* Read one queued answer; NULL when the connection broke (the instance failed). Errors are answers. */
static redisReply *next_reply(struct run *r, const char *step)
{
	redisReply *x = NULL;
	if (redisGetReply(r->in->rc, (void **)&x) != REDIS_OK || !x) {
		crdb_fail_instance(r->ctx, r->errors, r->in, "unreachable", "instance %s: %s failed: %s after %llu "
				   "keys archived and deleted", r->in->id, step,
				   r->in->rc->errstr[0] ? r->in->rc->errstr : "connection lost",
				   (unsigned long long)*r->done);
		return NULL;
	}
	return x;
}

static void refused(struct run *r, const char *step, const redisReply *x)
{
	crdb_fail_instance(r->ctx, r->errors, r->in, "redis_error",
			   "instance %s: %s refused: %s: %llu keys were archived and deleted before, nothing else; "
			   "allow SCAN, TIME, PTTL, DUMP, UNLINK and EVAL (and PEXPIRETIME on Redis 7) to purged's "
			   "connection (ACL), then purge again", r->in->id, step, x->str, (unsigned long long)*r->done);
}

/*
 * One round trip's commands, in this order: [SCAN cursor] [DELETE_SCRIPT over @del's keys] [PEXPIRETIME
 * and DUMP (or TIME, PTTL and DUMP) of each of @page's keys and of the keys to read again]. The next trip is sent as soon
 * as this one's SCAN is answered, before its other answers are read: the server works on it while
 * this process archives.
 */
struct trip {
	bool scan;
	struct batch del;         /* sealed keys this trip deletes (and what backs their names) */
	size_t nscripts;
	redisReply *page;         /* the SCAN answer whose keys this trip reads */
	struct bkey *rk;          /* ... and keys read again (names owned until moved to the batch) */
	size_t nrk, nread;
	bool rk_moved;
};

static void trip_free(struct trip *t)
{
	batch_free(&t->del);
	freeReplyObject(t->page);
	if (t->rk_moved)
		free(t->rk);
	else
		recheck_free(t->rk, t->nrk);
	memset(t, 0, sizeof(*t));
}

static bool trip_empty(const struct trip *t)
{
	return !t->scan && !t->nscripts && !t->nread;
}

/* Queue and send a trip (its parts are taken). 0, or 1 when the instance failed. */
static int trip_send(struct run *r, struct trip *t, const char *cursor, struct batch *del, redisReply *page)
{
	redisContext *rc = r->in->rc;
	size_t np = page ? page->element[1]->elements : 0, i;

	memset(t, 0, sizeof(*t));
	t->page = page;
	t->rk = r->rk;
	t->nrk = r->nrk;
	r->rk = NULL;
	r->nrk = r->rkcap = 0;
	t->nread = np + t->nrk;
	if (del) {
		t->del = *del;
		memset(del, 0, sizeof(*del));
	}
	if (cursor) {
		redisAppendCommand(rc, "SCAN %s COUNT " PAGE_KEYS, cursor);
		t->scan = true;
	}
	for (i = 0; i < t->del.nkeys; i += DELETE_CHUNK, t->nscripts++) {
		static const char *argv[3 + 3 * DELETE_CHUNK];
		static size_t argl[3 + 3 * DELETE_CHUNK];
		static char exps[DELETE_CHUNK][24], nkeys[16];
		size_t m = t->del.nkeys - i < DELETE_CHUNK ? t->del.nkeys - i : DELETE_CHUNK;
		snprintf(nkeys, sizeof(nkeys), "%zu", m);
		argv[0] = "EVAL";
		argl[0] = 4;
		argv[1] = r->abs ? DELETE_SCRIPT : DELETE_SCRIPT_PTTL;
		argl[1] = r->abs ? sizeof(DELETE_SCRIPT) - 1 : sizeof(DELETE_SCRIPT_PTTL) - 1;
		argv[2] = nkeys;
		argl[2] = strlen(nkeys);
		for (size_t j = 0; j < m; j++) {
			const struct bkey *k = &t->del.keys[i + j];
			argv[3 + j] = k->k;
			argl[3 + j] = k->len;
			argv[3 + m + j] = (const char *)&k->crc;
			argl[3 + m + j] = 8;
			snprintf(exps[j], sizeof(exps[j]), "%lld", (long long)k->exp);
			argv[3 + 2 * m + j] = exps[j];
			argl[3 + 2 * m + j] = strlen(exps[j]);
		}
		redisAppendCommandArgv(rc, (int)(3 + 3 * m), argv, argl);
	}
	for (i = 0; i < t->nread; i++) {
		const char *k = i < np ? page->element[1]->element[i]->str : t->rk[i - np].k;
		size_t len = i < np ? page->element[1]->element[i]->len : t->rk[i - np].len;
		if (r->abs) {
			redisAppendCommand(rc, "PEXPIRETIME %b", k, len);
		} else { /* the time right before the PTTL, not after the DUMPs of the keys before */
			redisAppendCommand(rc, "TIME");
			redisAppendCommand(rc, "PTTL %b", k, len);
		}
		redisAppendCommand(rc, "DUMP %b", k, len);
	}
	if (crdb_send_queued(r->in) != 0) {
		crdb_fail_instance(r->ctx, r->errors, r->in, "unreachable", "instance %s: cannot send: %s after %llu "
				   "keys archived and deleted", r->in->id, rc->errstr[0] ? rc->errstr : "out of memory",
				   (unsigned long long)*r->done);
		return 1;
	}
	return 0;
}

/* The trip's SCAN answer (first of its answers): *page, or NULL when the trip had no SCAN. 0 or 1. */
static int trip_scan(struct run *r, struct trip *t, redisReply **page)
{
	*page = NULL;
	if (!t->scan)
		return 0;
	redisReply *s = next_reply(r, "SCAN");
	if (!s)
		return 1;
	if (!scan_ok(s)) {
		if (s->type == REDIS_REPLY_ERROR)
			refused(r, "SCAN", s);
		else
			crdb_fail_instance(r->ctx, r->errors, r->in, "redis_error", "instance %s: SCAN gave an "
					   "unexpected answer", r->in->id);
		freeReplyObject(s);
		return 1;
	}
	*page = s;
	return 0;
}

/* The trip's delete answers: confirmed deletions counted, changed keys queued to be read again. 0 or 1. */
static int trip_deleted(struct run *r, struct trip *t)
{
	uint64_t n = 0;
	int ret = 0;
	for (size_t c = 0; c < t->nscripts; c++) {
		redisReply *x = NULL;
		if (redisGetReply(r->in->rc, (void **)&x) != REDIS_OK || !x) {
			/* Whether the scripts in flight ran is unknown; say what a new connection finds. */
			char lost[200], found[120];
			snprintf(lost, sizeof(lost), "%s", r->in->rc->errstr[0] ? r->in->rc->errstr : "connection lost");
			long long left = crdb_reconnect(r->ctx, r->in);
			if (left >= 0)
				snprintf(found, sizeof(found), "reconnected: DBSIZE says %lld keys remain", left);
			else
				snprintf(found, sizeof(found), "could not reconnect to see what remains");
			crdb_fail_instance(r->ctx, r->errors, r->in, "unreachable", "instance %s: the answer to a "
					   "delete of %zu archived keys was lost (%s), so how many it deleted is unknown "
					   "(they are all in the archive); %s: check the instance, then purge again",
					   r->in->id, t->del.nkeys - c * DELETE_CHUNK, lost, found);
			ret = 1;
			break;
		}
		if (x->type != REDIS_REPLY_ARRAY || x->elements < 1 || x->element[0]->type != REDIS_REPLY_INTEGER) {
			if (x->type == REDIS_REPLY_ERROR)
				refused(r, "the delete (EVAL of a script: DUMP, PTTL, UNLINK)", x);
			else
				crdb_fail_instance(r->ctx, r->errors, r->in, "redis_error", "instance %s: the delete "
						   "script gave an unexpected answer", r->in->id);
			freeReplyObject(x);
			ret = 1;
			break;
		}
		n += (uint64_t)x->element[0]->integer;
		for (size_t i = 1; i < x->elements; i++) {
			long long at = x->element[i]->type == REDIS_REPLY_INTEGER ? x->element[i]->integer : 0;
			if (at >= 1 && (size_t)at <= DELETE_CHUNK && c * DELETE_CHUNK + (size_t)at <= t->del.nkeys) {
				recheck(r, &t->del.keys[c * DELETE_CHUNK + (size_t)at - 1]);
				r->changed++;
			}
		}
		freeReplyObject(x);
	}
	if (t->nscripts) {
		backend_deleted_n(r->ctx, r->kind, n);
		*r->done += n;
		backend_progress(r->ctx, "keys", *r->done < r->total ? *r->done : r->total, r->total);
	}
	batch_clear(&t->del);
	return ret;
}

/* The trip's reads: one record per key still there, added to the archive and to the batch. 0; 1 when
 * the instance failed; -1 when the archive failed (ctx->error). */
static int trip_read(struct run *r, struct trip *t)
{
	size_t np = t->page ? t->page->element[1]->elements : 0, i;
	redisReply *tm, *tr[2];
	const char *step = r->abs ? "PEXPIRETIME" : "PTTL";

	if (!t->nread)
		return 0;
	/* The batch keeps the names: the page, and the names read again. */
	if (t->page)
		batch_keep(&r->b, t->page);
	t->page = NULL;
	for (i = 0; i < t->nrk; i++)
		batch_own(&r->b, (char *)t->rk[i].k);
	t->rk_moved = true;
	const redisReply *page = r->b.npages ? r->b.pages[r->b.npages - 1] : NULL;
	for (i = 0; i < t->nread; i++) {
		const char *k = i < np ? page->element[1]->element[i]->str : t->rk[i - np].k;
		size_t len = i < np ? page->element[1]->element[i]->len : t->rk[i - np].len;
		long long now_ms = 0; /* PEXPIRETIME is absolute already */
		if (!r->abs) {
			if (!(tm = next_reply(r, "TIME")))
				return 1;
			if (tm->type != REDIS_REPLY_ARRAY || tm->elements != 2 ||
			    tm->element[0]->type != REDIS_REPLY_STRING) {
				if (tm->type == REDIS_REPLY_ERROR)
					refused(r, "TIME", tm);
				else
					crdb_fail_instance(r->ctx, r->errors, r->in, "redis_error", "instance %s: TIME "
							   "gave no time", r->in->id);
				freeReplyObject(tm);
				return 1;
			}
			now_ms = strtoll(tm->element[0]->str, NULL, 10) * 1000 +
				 strtoll(tm->element[1]->str, NULL, 10) / 1000;
			freeReplyObject(tm);
		}
		if (!(tr[0] = next_reply(r, step)))
			return 1;
		if (!(tr[1] = next_reply(r, "DUMP"))) {
			freeReplyObject(tr[0]);
			return 1;
		}
		int ret = 0;
		for (int e = 0; e < 2 && !ret; e++)
			if (tr[e]->type == REDIS_REPLY_ERROR) {
				refused(r, e ? "DUMP" : step, tr[e]);
				ret = 1;
			}
		if (!ret && tr[1]->type == REDIS_REPLY_STRING && tr[1]->len > MAX_DUMP) {
			crdb_fail_instance(r->ctx, r->errors, r->in, "too_large", "instance %s: key '%.*s' is %zu bytes "
					   "dumped, over what one archive record holds (%u): nothing more was deleted; "
					   "purge without an archive", r->in->id, (int)(len < 100 ? len : 100), k,
					   tr[1]->len, MAX_DUMP);
			ret = 1;
		}
		bool gone = tr[1]->type != REDIS_REPLY_STRING || tr[0]->type != REDIS_REPLY_INTEGER ||
			    tr[0]->integer < -1;
		struct bkey bk = { k, len, 0, -1 };
		json_t *rec = NULL;
		if (!ret && !gone) {
			bk.crc = dump_crc(tr[1]);
			bk.exp = tr[0]->integer >= 0 ? now_ms + tr[0]->integer : -1;
			rec = record(r->in, k, len, tr[1], bk.exp);
		}
		freeReplyObject(tr[0]);
		freeReplyObject(tr[1]);
		if (ret)
			return 1;
		if (!rec)
			continue; /* gone since the SCAN (or since its last DUMP) */
		r->b.bytes += len + RECORD_OVERHEAD;
		if (backend_archive_add(r->ctx, rec) < 0)
			return -1;
		batch_key(&r->b, bk);
		r->archived++;
	}
	return 0;
}

/*
 * One SCAN pass over the instance: archive, seal, delete, the trips overlapped. 0, 1 (the instance
 * failed), -1 (the archive failed). A stop request sends nothing more.
 */
static int scan_pass(struct run *r)
{
	struct trip cur, next;
	struct batch sealed = { 0 }; /* sealed, to be deleted by the next trip sent */
	bool scanning = true;
	int rt, tail = 0;

	memset(&next, 0, sizeof(next));
	rt = trip_send(r, &cur, "0", NULL, NULL);
	while (rt == 0) {
		redisReply *page = NULL;
		rt = trip_scan(r, &cur, &page);
		if (rt)
			break;
		const char *cursor = page ? page->element[0]->str : NULL;
		if (cur.scan)
			scanning = strcmp(cursor, "0") != 0;
		/* Send the next trip before this one's answers are read; after the scan, a few more trips
		 * delete what is sealed and read again what changed (the next pass finds what goes on
		 * changing). */
		bool stop = backend_stopping(r->ctx) || (!scanning && !page && tail > 6);
		if (!stop)
			rt = trip_send(r, &next, scanning ? cursor : NULL, &sealed, page);
		else
			freeReplyObject(page);
		if (rt == 0)
			rt = trip_deleted(r, &cur);
		if (rt == 0)
			rt = trip_read(r, &cur);
		trip_free(&cur);
		if (rt != 0 || stop)
			break;
		if (!scanning)
			tail++;
		/* Seal what was archived: in batches while scanning, all of it after. */
		if (r->b.nkeys >= SEAL_KEYS || r->b.bytes >= SEAL_BYTES || (!scanning && r->b.nkeys)) {
			if (backend_archive_seal(r->ctx) < 0) {
				rt = -1;
				break;
			}
			if (sealed.nkeys) { /* still there when nothing was sent: merge */
				for (size_t i = 0; i < r->b.nkeys; i++)
					batch_key(&sealed, r->b.keys[i]);
				for (size_t i = 0; i < r->b.npages; i++)
					batch_keep(&sealed, r->b.pages[i]);
				for (size_t i = 0; i < r->b.nowned; i++)
					batch_own(&sealed, r->b.owned[i]);
				r->b.nkeys = r->b.npages = r->b.nowned = r->b.bytes = 0;
			} else {
				struct batch tmp = sealed;
				sealed = r->b;
				r->b = tmp;
			}
		}
		cur = next;
		memset(&next, 0, sizeof(next));
		if (trip_empty(&cur) && !sealed.nkeys && !r->nrk && !r->b.nkeys)
			break;
	}
	trip_free(&cur);
	trip_free(&next);
	batch_free(&sealed);
	recheck_free(r->rk, r->nrk);
	r->rk = NULL;
	r->nrk = r->rkcap = 0;
	if (rt != 0)
		crdb_drop_connection(r->in);
	return rt;
}

/* Whether the server has PEXPIRETIME (Redis >= 7.0; an ACL may refuse it too): then expiries are read
 * and compared as absolute times, exactly. */
static bool has_pexpiretime(struct instance *in)
{
	redisReply *x = redisCommand(in->rc, "PEXPIRETIME %s", "purged:probe");
	bool ok = x && x->type == REDIS_REPLY_INTEGER;
	if (x && !ok)
		log_info("instance %s: PEXPIRETIME refused (%s): expiries read as TIME + PTTL and compared within "
			 EXP_SLACK_MS " ms", in->id, x->type == REDIS_REPLY_ERROR ? x->str : "unexpected answer");
	freeReplyObject(x);
	return ok;
}

/* What the instance's records will weigh (uncompressed JSON), conservatively: twice the server's
 * used_memory_dataset, the database's share of it by key count (INFO keyspace), or twice a
 * sample's average. */
static uint64_t estimate(struct backend_ctx *ctx, struct instance *in)
{
	uint64_t fixed = (uint64_t)in->keys * RECORD_OVERHEAD;
	redisReply *x = redisCommand(in->rc, "INFO memory");
	const char *p = x && x->type == REDIS_REPLY_STRING ? strstr(x->str, "used_memory_dataset:") : NULL;
	if (p) {
		long long ds = strtoll(p + 20, NULL, 10), all = 0;
		freeReplyObject(x);
		x = redisCommand(in->rc, "INFO keyspace");
		for (const char *q = x && x->type == REDIS_REPLY_STRING ? x->str : ""; (q = strstr(q, ":keys=")); q += 6)
			all += strtoll(q + 6, NULL, 10);
		freeReplyObject(x);
		if (ds <= 0)
			return fixed;
		if (all > in->keys) /* other databases hold the rest */
			return fixed + (uint64_t)((double)ds * 2 * (double)in->keys / (double)all);
		return fixed + (uint64_t)ds * 2;
	}
	freeReplyObject(x);
	/* INFO refused (ACL): the first page's DUMPs. */
	uint64_t sum = 0, n = 0;
	x = redisCommand(in->rc, "SCAN 0 COUNT 100");
	if (scan_ok(x)) {
		redisReply *k = x->element[1];
		for (size_t i = 0; i < k->elements; i++)
			redisAppendCommand(in->rc, "DUMP %b", k->element[i]->str, k->element[i]->len);
		for (size_t i = 0; i < k->elements; i++) {
			redisReply *d = NULL;
			if (redisGetReply(in->rc, (void **)&d) != REDIS_OK || !d)
				break;
			if (d->type == REDIS_REPLY_STRING) {
				sum += k->element[i]->len + d->len;
				n++;
			}
			freeReplyObject(d);
		}
	}
	freeReplyObject(x);
	log_debug("instance %s: INFO refused, estimate from %llu sampled keys", in->id, (unsigned long long)n);
	(void)ctx;
	return fixed + (n ? sum / n * 2 : 1024) * (uint64_t)in->keys;
}

int crdb_archive_purge(struct backend_ctx *ctx, json_t *errors, struct instance *v, size_t n, uint64_t *done,
		       uint64_t total)
{
	uint64_t est = 0;
	size_t k;

	for (k = 0; k < n; k++)
		if (!v[k].failed && v[k].rc)
			est += estimate(ctx, &v[k]);
	log_info("the archive is estimated at %llu bytes before compression", (unsigned long long)est);
	if (backend_archive_reserve(ctx, est) < 0)
		return -1;
	for (k = 0; k < n; k++) {
		struct run r = { .ctx = ctx, .errors = errors, .in = &v[k], .done = done, .total = total };
		if (v[k].failed || !v[k].rc)
			continue;
		snprintf(r.kind, sizeof(r.kind), "instance %s", v[k].id);
		r.abs = has_pexpiretime(&v[k]);
		backend_deleted_n(ctx, r.kind, 0); /* the instance shows in the counts even with nothing to delete */
		uint64_t first = 0;
		int rt = 0;
		for (int pass = 0; pass <= EXTRA_PASSES && rt == 0 && !backend_stopping(ctx); pass++) {
			rt = scan_pass(&r);
			if (pass == 0)
				first = r.archived;
			if (rt != 0 || backend_stopping(ctx))
				break;
			redisReply *d = redisCommand(v[k].rc, "DBSIZE");
			long long left = d && d->type == REDIS_REPLY_INTEGER ? d->integer : -1;
			freeReplyObject(d);
			if (left == 0)
				break;
			log_info("instance %s: %lld keys after pass %d (written meanwhile, or changed after their "
				 "DUMP): another pass", v[k].id, left, pass + 1);
		}
		if (r.archived > first)
			backend_warn(ctx, "instance %s: %llu keys written or changed while the purge ran were archived "
				     "(again) and deleted in further passes", v[k].id,
				     (unsigned long long)(r.archived - first));
		log_info("instance %s: %llu key records archived; %llu keys found changed after their DUMP by the "
			 "delete, archived again", v[k].id, (unsigned long long)r.archived, (unsigned long long)r.changed);
		batch_free(&r.b);
		recheck_free(r.rk, r.nrk);
		if (rt < 0)
			return -1;
	}
	return backend_archive_seal(ctx);
}

/* ------------------------------------------------------------------ restore */

struct rkey {
	size_t off;               /* key bytes, then payload bytes, in the arena */
	size_t plen;
	int64_t exp;              /* absolute unix ms, -1: none */
	uint32_t klen, inst;
	bool dead;                /* replaced by a later record of the same key */
	bool present;             /* exists already, identical: not restored */
};

struct store {
	struct rkey *k;
	size_t n, cap;
	char *arena;
	size_t used, acap;
	uint32_t *slot;           /* open addressing: index + 1, 0 empty */
	size_t nslots;
};

static uint64_t key_hash(uint32_t inst, const char *k, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ inst;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h;
}

static const char *key_of(const struct store *s, const struct rkey *k)
{
	return s->arena + k->off;
}

static void store_rehash(struct store *s)
{
	free(s->slot);
	s->nslots = s->nslots ? s->nslots * 2 : 1024;
	s->slot = calloc(s->nslots, sizeof(*s->slot));
	if (!s->slot)
		abort();
	for (size_t i = 0; i < s->n; i++) {
		if (s->k[i].dead)
			continue;
		size_t j = key_hash(s->k[i].inst, key_of(s, &s->k[i]), s->k[i].klen) & (s->nslots - 1);
		while (s->slot[j])
			j = (j + 1) & (s->nslots - 1);
		s->slot[j] = (uint32_t)i + 1;
	}
}

/* Keep a record; an earlier record of the same key is marked dead. */
static void store_add(struct store *s, uint32_t inst, const char *key, size_t klen, const unsigned char *p,
		      size_t plen, int64_t exp)
{
	if ((s->n + 1) * 2 > s->nslots)
		store_rehash(s);
	size_t j = key_hash(inst, key, klen) & (s->nslots - 1);
	for (; s->slot[j]; j = (j + 1) & (s->nslots - 1)) {
		struct rkey *o = &s->k[s->slot[j] - 1];
		if (o->inst == inst && o->klen == klen && memcmp(key_of(s, o), key, klen) == 0) {
			o->dead = true;
			break;
		}
	}
	s->k = grow(s->k, &s->cap, s->n + 1, sizeof(*s->k));
	s->arena = grow(s->arena, &s->acap, s->used + klen + plen, 1);
	struct rkey *k = &s->k[s->n];
	*k = (struct rkey){ .off = s->used, .plen = plen, .exp = exp, .klen = (uint32_t)klen, .inst = inst };
	memcpy(s->arena + s->used, key, klen);
	memcpy(s->arena + s->used + klen, p, plen);
	s->used += klen + plen;
	s->slot[j] = (uint32_t)++s->n;
}

static void store_free(struct store *s)
{
	free(s->k);
	free(s->arena);
	free(s->slot);
}

/* A key for a message: at most 60 bytes (made safe by backend_fail / the errors' text). */
static void shown(char *out, size_t size, const char *k, size_t len)
{
	snprintf(out, size, "'%.*s'%s", (int)(len < 60 ? len : 60), k, len > 60 ? "..." : "");
}

/* Read every record into @s. 0, or -1 with ctx->error set. */
static int read_archive(struct backend_ctx *ctx, struct store *s, struct instance *v, size_t n)
{
	json_t *rec;
	uint64_t no = 0;

	while ((rec = backend_archive_next(ctx))) {
		const char *kind = json_string_value(json_object_get(rec, "kind"));
		const char *inst = json_string_value(json_object_get(rec, "instance"));
		json_t *key = json_object_get(rec, "key"), *kb = json_object_get(rec, "key_b64");
		json_t *dump = json_object_get(rec, "dump"), *exp = json_object_get(rec, "expire_at_ms");
		unsigned char *kbuf = NULL, *pbuf = NULL;
		size_t klen = 0, plen = 0;
		uint32_t i;

		no++;
		if (!kind || strcmp(kind, "key") != 0 || !inst || !json_is_string(dump) || !json_is_integer(exp) ||
		    json_is_string(key) == json_is_string(kb)) {
			json_decref(rec);
			return backend_fail(ctx, "crdb restore: record %llu of the archive is not a Redis key record "
					    "(kind, instance, key or key_b64, expire_at_ms, dump): nothing was restored; "
					    "is it a crdb purge's archive?", (unsigned long long)no);
		}
		for (i = 0; i < n && strcmp(v[i].id, inst) != 0; i++)
			;
		if (i == n) {
			int r = backend_fail(ctx, "crdb restore: the archive holds keys of instance %s, which is not "
					     "configured in [crdb %s]: nothing was restored; add instance.%s back, "
					     "then restore again", inst, ctx->target, inst);
			json_decref(rec);
			return r;
		}
		if ((kb && b64_decode(json_string_value(kb), json_string_length(kb), &kbuf, &klen) < 0) ||
		    b64_decode(json_string_value(dump), json_string_length(dump), &pbuf, &plen) < 0) {
			free(kbuf);
			json_decref(rec);
			return backend_fail(ctx, "crdb restore: record %llu of the archive has a key_b64 or dump that "
					    "is not base64: the archive is damaged; nothing was restored",
					    (unsigned long long)no);
		}
		store_add(s, i, kbuf ? (const char *)kbuf : json_string_value(key),
			  kbuf ? klen : json_string_length(key), pbuf, plen, json_integer_value(exp));
		free(kbuf);
		free(pbuf);
		json_decref(rec);
	}
	return ctx->error[0] ? -1 : 0;
}

/* The server's clock in unix ms (RESTORE ABSTTL reads it), or -1 (the instance failed). */
static long long server_ms(struct backend_ctx *ctx, json_t *errors, struct instance *in)
{
	const char *argv[] = { "TIME" };
	redisReply *t = crdb_command(ctx, errors, in, "TIME", 1, argv);
	long long ms = -1;
	if (t && t->type == REDIS_REPLY_ARRAY && t->elements == 2 && t->element[0]->type == REDIS_REPLY_STRING)
		ms = strtoll(t->element[0]->str, NULL, 10) * 1000 + strtoll(t->element[1]->str, NULL, 10) / 1000;
	else if (t)
		crdb_fail_instance(ctx, errors, in, "redis_error", "instance %s: TIME gave no time", in->id);
	freeReplyObject(t);
	return ms;
}

/* Which live keys of instance @i exist already: one identical to its record (the same DUMP payload
 * and expiry: PEXPIRETIME equal, or TIME + PTTL within EXP_SLACK_MS without it) is marked present and
 * counted in *present; the others are counted (the first named in @names). -1: the instance failed. */
static long long count_existing(struct backend_ctx *ctx, json_t *errors, struct store *s, struct instance *in,
				uint32_t i, long long now, bool abs, uint64_t *present, char *names, size_t size,
				int *named)
{
	long long found = 0, slack = abs ? 0 : strtoll(EXP_SLACK_MS, NULL, 10);
	size_t j = 0;
	while (j < s->n && !in->failed) {
		size_t sent[RESTORE_CHUNK], m = 0;
		for (; j < s->n && m < RESTORE_CHUNK; j++) {
			struct rkey *k = &s->k[j];
			if (k->inst != i || k->dead || (k->exp >= 0 && k->exp <= now))
				continue;
			if (abs) {
				redisAppendCommand(in->rc, "PEXPIRETIME %b", key_of(s, k), (size_t)k->klen);
			} else {
				redisAppendCommand(in->rc, "TIME");
				redisAppendCommand(in->rc, "PTTL %b", key_of(s, k), (size_t)k->klen);
			}
			redisAppendCommand(in->rc, "DUMP %b", key_of(s, k), (size_t)k->klen);
			sent[m++] = j;
		}
		for (size_t e = 0; e < m; e++) {
			struct rkey *k = &s->k[sent[e]];
			long long base = 0, exp;
			redisReply *x;
			if (!abs) {
				if (!(x = crdb_answer(ctx, errors, in, "TIME")))
					return -1;
				if (x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
				    x->element[0]->type == REDIS_REPLY_STRING && x->element[1]->type == REDIS_REPLY_STRING)
					base = strtoll(x->element[0]->str, NULL, 10) * 1000 +
					       strtoll(x->element[1]->str, NULL, 10) / 1000;
				freeReplyObject(x);
			}
			if (!(x = crdb_answer(ctx, errors, in, abs ? "PEXPIRETIME" : "PTTL")))
				return -1;
			exp = x->type == REDIS_REPLY_INTEGER ? x->integer : -2;
			freeReplyObject(x);
			if (exp >= 0)
				exp += base;
			if (!(x = crdb_answer(ctx, errors, in, "DUMP")))
				return -1;
			if (x->type == REDIS_REPLY_STRING) {
				bool same = x->len == k->plen && memcmp(x->str, key_of(s, k) + k->klen, k->plen) == 0 &&
					    (k->exp < 0 ? exp == -1 : exp >= 0 && llabs(exp - k->exp) <= slack);
				if (same) {
					k->present = true;
					(*present)++;
				} else {
					found++;
					if (*named < SHOWN) {
						size_t l = strlen(names);
						char one[120];
						shown(one, sizeof(one), key_of(s, k), k->klen);
						snprintf(names + l, size - l, "%s%s", *named ? ", " : "", one);
						(*named)++;
					}
				}
			}
			freeReplyObject(x);
		}
	}
	return in->failed ? -1 : found;
}

/* RESTORE the live keys of instance @i. Returns the keys restored; *expired counts those not restored
 * because their time had passed. An error fails the instance (after the chunk it happened in). */
static uint64_t restore_keys(struct backend_ctx *ctx, json_t *errors, struct store *s, struct instance *in,
			     uint32_t i, bool replace, uint64_t *expired, uint64_t *done, uint64_t total)
{
	uint64_t ok = 0;
	size_t j = 0;
	char kind[64];

	snprintf(kind, sizeof(kind), "instance %s", in->id);
	while (j < s->n && !in->failed) {
		if (backend_stopping(ctx))
			break;
		long long now = server_ms(ctx, errors, in);
		if (now < 0)
			break;
		size_t sent[RESTORE_CHUNK], m = 0;
		for (; j < s->n && m < RESTORE_CHUNK; j++) {
			struct rkey *k = &s->k[j];
			char ttl[24];
			if (k->inst != i || k->dead || k->present)
				continue;
			if (k->exp >= 0 && k->exp <= now) {
				(*expired)++;
				continue;
			}
			snprintf(ttl, sizeof(ttl), "%lld", (long long)(k->exp >= 0 ? k->exp : 0));
			/* RESTORE key ttl payload [REPLACE] ABSTTL */
			const char *argv[] = { "RESTORE", key_of(s, k), ttl, key_of(s, k) + k->klen, "REPLACE", "ABSTTL" };
			size_t argl[] = { 7, k->klen, strlen(ttl), k->plen, 7, 6 };
			if (!replace) {
				argv[4] = argv[5];
				argl[4] = argl[5];
			}
			redisAppendCommandArgv(in->rc, replace ? 6 : 5, argv, argl);
			sent[m++] = j;
		}
		uint64_t here = 0;
		for (size_t e = 0; e < m; e++) {
			redisReply *x = NULL;
			struct rkey *k = &s->k[sent[e]];
			char name[120];
			if (redisGetReply(in->rc, (void **)&x) != REDIS_OK || !x) {
				crdb_fail_instance(ctx, errors, in, "unreachable", "instance %s: RESTORE failed: %s; %llu "
						   "keys were restored before", in->id,
						   in->rc->errstr[0] ? in->rc->errstr : "connection lost",
						   (unsigned long long)(ok + here));
				break;
			}
			shown(name, sizeof(name), key_of(s, k), k->klen);
			if (x->type == REDIS_REPLY_STATUS && strcmp(x->str, "OK") == 0)
				here++;
			else if (in->failed)
				; /* the first error of the chunk is the one said */
			else if (x->type == REDIS_REPLY_ERROR && strstr(x->str, "payload version or checksum"))
				crdb_fail_instance(ctx, errors, in, "payload", "instance %s: the server cannot load the "
						   "archived payload of key %s (archived from a newer Redis?): %s; restore "
						   "into a Redis at least as new as the purged one", in->id, name, x->str);
			else if (x->type == REDIS_REPLY_ERROR && strncmp(x->str, "BUSYKEY", 7) == 0)
				crdb_fail_instance(ctx, errors, in, "exists", "instance %s: key %s was created while the "
						   "restore ran (%s); restore again with --replace to overwrite it",
						   in->id, name, x->str);
			else
				crdb_fail_instance(ctx, errors, in, "redis_error", "instance %s: RESTORE of key %s was "
						   "refused: %s%s", in->id, name, x->type == REDIS_REPLY_ERROR ? x->str :
						   "unexpected answer", x->type == REDIS_REPLY_ERROR &&
						   strstr(x->str, "syntax") ? " (RESTORE ... ABSTTL needs Redis 5.0 or newer)" :
						   " (allow RESTORE to purged's connection?)");
			freeReplyObject(x);
		}
		ok += here;
		*done += here;
		backend_deleted_n(ctx, kind, here);
		backend_progress(ctx, "keys", *done < total ? *done : total, total);
	}
	return ok;
}

int crdb_restore(struct backend_ctx *ctx)
{
	const json_t *inst = json_object_get(ctx->settings, "instances");
	size_t n = json_object_size(inst), k = 0, failed = 0;
	struct instance *v = calloc(n ? n : 1, sizeof(*v));
	size_t *per = calloc(n ? n : 1, sizeof(*per));
	bool replace = json_is_true(json_object_get(ctx->options, "replace"));
	struct store s = { 0 };
	json_t *errors = json_array();
	uint64_t expired = 0, done = 0, total = 0, exists = 0, present = 0;
	int ret = -1;

	if (!v || !per)
		abort();
	crdb_instances(ctx, v);
	if (read_archive(ctx, &s, v, n) < 0)
		goto out;
	for (size_t j = 0; j < s.n; j++)
		if (!s.k[j].dead) {
			per[s.k[j].inst]++;
			total++;
		}
	log_info("crdb restore: %llu keys in the archive (%zu records)", (unsigned long long)total, s.n);
	/* Every instance of the archive answers, and holds none of its keys with another value or expiry (or
	 * --replace), before anything. */
	char names[SHOWN * 70] = "";
	int named = 0;
	for (k = 0; k < n; k++) {
		if (!per[k])
			continue;
		crdb_open_instance(ctx, errors, &v[k]);
		long long now = v[k].failed ? -1 : server_ms(ctx, errors, &v[k]);
		long long e = now < 0 || replace ? 0 : count_existing(ctx, errors, &s, &v[k], (uint32_t)k, now,
								     has_pexpiretime(&v[k]), &present, names,
								     sizeof(names), &named);
		if (v[k].failed || e < 0) {
			backend_fail(ctx, "crdb restore: %s: nothing was restored",
				     json_string_value(json_object_get(json_array_get(errors, 0), "description")));
			goto out;
		}
		exists += (uint64_t)e;
	}
	if (exists) {
		backend_fail(ctx, "crdb restore: %llu of the archive's keys exist already with another value or expiry: "
			     "%s%s: nothing was restored; restore with --replace to overwrite them (which also reverts "
			     "what clients changed since the purge), or delete them first",
			     (unsigned long long)exists, names, exists > SHOWN ? ", ..." : "");
		goto out;
	}
	if (present) {
		total -= present;
		backend_deleted_n(ctx, "already present", present);
		backend_warn(ctx, "%llu of the archive's keys are already present with the archived value and expiry "
			     "(a purge that stopped before deleting them?): left as they are", (unsigned long long)present);
	}
	backend_progress(ctx, "keys", 0, total);
	for (k = 0; k < n; k++)
		if (per[k])
			restore_keys(ctx, errors, &s, &v[k], (uint32_t)k, replace, &expired, &done, total);
	backend_progress(ctx, "keys", done < total ? done : total, total);
	if (expired) {
		backend_deleted_n(ctx, "expired", expired);
		backend_warn(ctx, "%llu archived keys were not restored: their TTL had passed", (unsigned long long)expired);
	}
	for (k = 0; k < n; k++)
		failed += v[k].failed;
	if (backend_stopping(ctx))
		backend_fail(ctx, "crdb restore: stopped on request after %llu of %llu keys restored",
			     (unsigned long long)done, (unsigned long long)total);
	else if (failed)
		backend_fail(ctx, "crdb restore: %zu instance(s) failed after %llu of %llu keys restored: %s", failed,
			     (unsigned long long)done, (unsigned long long)total,
			     json_string_value(json_object_get(json_array_get(errors, 0), "description")));
	else
		ret = 0;
out:
	for (k = 0; k < n; k++)
		crdb_drop_connection(&v[k]);
	if (json_array_size(errors))
		ctx->errors = errors;
	else
		json_decref(errors);
	store_free(&s);
	free(per);
	free(v);
	return ret;
}
