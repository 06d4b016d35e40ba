/* Unit tests for daemon/journal.c: replay, torn tail, bad checksum, compaction. */
#include <check.h>
#include "unit.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/journal.h"

static char dir[64];
static char path[128];
static json_t *seen;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/purged-test-journal.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/journal", dir);
	seen = json_array();
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	json_decref(seen);
}

static void collect(const json_t *rec, void *ud)
{
	(void)ud;
	json_array_append(seen, (json_t *)rec);
}

static struct journal *open_j(struct journal_report *rep)
{
	struct journal *j = NULL;
	json_array_clear(seen);
	ck_assert_int_eq(journal_open(dir, collect, NULL, &j, rep), 0);
	return j;
}

static void append_n(struct journal *j, int from, int to)
{
	for (int i = from; i < to; i++) {
		json_t *r = json_pack("{s:i, s:s}", "n", i, "status", "queued");
		ck_assert_int_eq(journal_append(j, r, true), 0);
		json_decref(r);
	}
}

static off_t file_size(void)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

START_TEST(test_replay)
{
	struct journal_report rep;
	struct journal *j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 0);
	append_n(j, 0, 5);
	journal_close(j);

	j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 5);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	ck_assert_uint_eq(json_array_size(seen), 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(seen, (size_t)i), "n")), i);
	/* Appends after a replay follow the old records. */
	append_n(j, 5, 6);
	journal_close(j);
	j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 6);
	journal_close(j);
}
END_TEST

START_TEST(test_torn_tail)
{
	struct journal_report rep;
	struct journal *j = open_j(&rep);
	append_n(j, 0, 3);
	journal_close(j);
	off_t full = file_size();

	/* Cut the last record in half, as a crash during write would. */
	ck_assert_int_eq(truncate(path, full - 10), 0);
	j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 2);
	ck_assert_uint_gt(rep.torn_bytes, 0);
	ck_assert_uint_eq(json_array_size(seen), 2);
	/* The tail was cut: the file ends after the second record, and appends work. */
	ck_assert_int_lt(file_size(), full - 10);
	append_n(j, 10, 11);
	journal_close(j);
	j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 3);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(seen, 2), "n")), 10);
	journal_close(j);
}
END_TEST

/* Returns the offset where record @record (0-based) starts. */
static long flip_byte_in_record(int record)
{
	FILE *f = fopen(path, "r+");
	int line = 0, c;
	long off = 0;
	ck_assert_ptr_nonnull(f);
	while (line < record && (c = fgetc(f)) != EOF) {
		off++;
		if (c == '\n')
			line++;
	}
	/* Change a byte inside the JSON part, keeping the line structure. */
	fseek(f, off + 15, SEEK_SET);
	c = fgetc(f);
	fseek(f, off + 15, SEEK_SET);
	fputc(c == 'x' ? 'y' : 'x', f);
	fclose(f);
	return off;
}

START_TEST(test_bad_checksum_middle)
{
	struct journal_report rep;
	struct journal *j = open_j(&rep);
	append_n(j, 0, 4);
	journal_close(j);
	off_t full = file_size();

	long bad = flip_byte_in_record(1);
	j = open_j(&rep);
	/* The corrupt record is skipped and reported where it starts; the ones after it are kept. */
	ck_assert_uint_eq(rep.records, 3);
	ck_assert_uint_eq(rep.skipped, 1);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	ck_assert_int_gt(bad, 0);
	ck_assert_int_eq(rep.first_bad_offset, bad);
	ck_assert_int_eq(file_size(), full);
	journal_close(j);
}
END_TEST

START_TEST(test_bad_checksum_tail)
{
	struct journal_report rep;
	struct journal *j = open_j(&rep);
	append_n(j, 0, 3);
	journal_close(j);

	flip_byte_in_record(2);
	j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 2);
	ck_assert_uint_gt(rep.torn_bytes, 0);
	journal_close(j);
	j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 2);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	journal_close(j);
}
END_TEST

START_TEST(test_garbage)
{
	struct journal_report rep;
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_eq(write(fd, "not a journal\n\x01\x02\x03", 17), 17);
	close(fd);
	struct journal *j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 0);
	ck_assert_uint_eq(rep.torn_bytes, 17);
	ck_assert_int_eq(file_size(), 0);
	journal_close(j);
}
END_TEST

START_TEST(test_rewrite)
{
	struct journal_report rep;
	struct journal *j = open_j(&rep);
	append_n(j, 0, 50);
	ck_assert_uint_eq(journal_records(j), 50);
	json_t *keep[2] = { json_pack("{s:i}", "n", 100), json_pack("{s:i}", "n", 101) };
	ck_assert_int_eq(journal_rewrite(j, keep, 2), 0);
	ck_assert_uint_eq(journal_records(j), 2);
	append_n(j, 200, 201);
	journal_close(j);
	j = open_j(&rep);
	ck_assert_uint_eq(rep.records, 3);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(seen, 0), "n")), 100);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(seen, 2), "n")), 200);
	journal_close(j);
	json_decref(keep[0]);
	json_decref(keep[1]);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc;
	tc = unit_case(s, "journal:replay", setup, teardown,
		       (const TTest *[]){ test_replay, test_torn_tail, test_bad_checksum_middle,
					  test_bad_checksum_tail, test_garbage, test_rewrite, NULL });
	(void)tc;
	return s;
}

int main(void)
{
	return unit_run(journal_suite());
}
