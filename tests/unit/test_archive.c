/*
 * The executor's archive (daemon/executor/archive.c): what is written reads
 * back record for record, its SHA-256 is what the file hashes to, a limit or
 * a changed file is refused with a sentence, never a crash or a silent loss.
 * Each test runs in its own process (check forks): archive_open sets
 * RLIMIT_FSIZE and takes fd 4.
 */
#include <check.h>
#include "unit.h"
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include "daemon/executor/archive.h"
#include "purged/util.h"

static char path[64];

static void setup(void)
{
	snprintf(path, sizeof(path), "/tmp/purged-archive-test-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void teardown(void)
{
	unlink(path);
}

static void use_as_fd4(int flags)
{
	int fd = open(path, flags);
	ck_assert_int_ge(fd, 0);
	if (fd != ARCHIVE_FD) {
		ck_assert_int_eq(dup2(fd, ARCHIVE_FD), ARCHIVE_FD);
		close(fd);
	}
}

static struct backend_ctx new_ctx(void)
{
	struct backend_ctx ctx = { .task_id = "0b1e8a4e-5c1f-4b3e-9d7a-2f0c6a9e1d23", .target = "t", .fd = -1 };
	return ctx;
}

static void file_sha(char hex[65])
{
	unsigned char buf[4096], d[32];
	struct sha256_ctx s;
	ssize_t n;
	int fd = open(path, O_RDONLY);
	sha256_init(&s);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sha256_update(&s, (size_t)n, buf);
	close(fd);
	sha256_digest(&s, 32, d);
	sha256_to_hex(d, hex);
}

static char written_sha[65];

/* Write @n records {"kind":"k","id":i,"blob":<binary as base64>} in @seals batches; returns the result's fields. */
static struct msg_result write_records(int n, int seals, uint64_t max_bytes)
{
	struct backend_ctx ctx = new_ctx();
	use_as_fd4(O_WRONLY);
	json_t *spec = json_pack("{s:s, s:I}", "mode", "write", "max_bytes", (json_int_t)max_bytes);
	ck_assert_msg(archive_open(&ctx, spec, "crdb") == 0, "%s", ctx.error);
	ck_assert(backend_archiving(&ctx));
	for (int i = 0; i < n; i++) {
		unsigned char bin[5] = { 0, 0xff, (unsigned char)i, '\n', 0x80 };
		char *b = b64_encode(bin, sizeof(bin));
		ck_assert_int_eq(backend_archive_add(&ctx, json_pack("{s:s, s:i, s:s, s:s}", "kind", "k", "id", i, "blob", b,
								     "name", "é\"\n odd")), 0);
		free(b);
		if (seals && i % (n / seals + 1) == 0)
			ck_assert_int_eq(backend_archive_seal(&ctx), 0);
	}
	ck_assert_int_eq(backend_archive_seal(&ctx), 0);
	json_decref(spec);
	struct msg_result res = { 0 };
	archive_close(&ctx, &res, written_sha);
	return res;
}

START_TEST(test_roundtrip)
{
	struct msg_result res = write_records(5000, 7, 0);
	char hex[65];
	file_sha(hex);
	ck_assert(res.has_archive);
	ck_assert_str_eq(res.archive_sha256, hex);
	ck_assert_int_eq(res.archive_records, 5000);

	struct backend_ctx ctx = new_ctx();
	use_as_fd4(O_RDONLY);
	json_t *spec = json_pack("{s:s, s:s}", "mode", "read", "sha256", hex);
	ck_assert_int_eq(archive_open(&ctx, spec, "crdb"), 0);
	ck_assert(!backend_archiving(&ctx));
	json_t *rec;
	int i = 0;
	while ((rec = backend_archive_next(&ctx))) {
		unsigned char *bin;
		size_t len;
		ck_assert_int_eq(json_integer_value(json_object_get(rec, "id")), i);
		ck_assert_str_eq(json_string_value(json_object_get(rec, "name")), "é\"\n odd");
		ck_assert_int_eq(b64_decode(json_string_value(json_object_get(rec, "blob")),
					    json_string_length(json_object_get(rec, "blob")), &bin, &len), 0);
		ck_assert_int_eq(len, 5);
		ck_assert_int_eq(bin[2], (unsigned char)i);
		free(bin);
		json_decref(rec);
		i++;
	}
	ck_assert_str_eq(ctx.error, "");
	ck_assert_int_eq(i, 5000);
	archive_close(&ctx, &(struct msg_result){ 0 }, written_sha);
	json_decref(spec);
}
END_TEST

START_TEST(test_changed_file_refused)
{
	write_records(100, 0, 0);
	char hex[65];
	file_sha(hex);
	int fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);

	struct backend_ctx ctx = new_ctx();
	use_as_fd4(O_RDONLY);
	json_t *spec = json_pack("{s:s, s:s}", "mode", "read", "sha256", hex);
	ck_assert_int_eq(archive_open(&ctx, spec, "crdb"), 0);
	ck_assert_ptr_null(backend_archive_next(&ctx));
	ck_assert_ptr_nonnull(strstr(ctx.error, "SHA-256"));
	ck_assert_ptr_nonnull(strstr(ctx.error, "nothing was restored"));
	archive_close(&ctx, &(struct msg_result){ 0 }, written_sha);
	json_decref(spec);
}
END_TEST

/* A purge that failed while writing leaves a last frame never sealed: the reader gives every record of
 * the sealed frames (only those could have been deleted), none of the cut one, and a warning. */
START_TEST(test_cut_file_sealed_part)
{
	/* Frames of 10 001 records (~1 MB, several zstd blocks: a cut frame gives out data as it goes). */
	struct msg_result res = write_records(30000, 3, 0); /* a seal after records 0, 10001, 20002 */
	ck_assert_int_eq(truncate(path, (off_t)res.archive_bytes / 2), 0);
	char hex[65];
	file_sha(hex); /* the cut file's own hash, as the supervisor records it */

	struct backend_ctx ctx = new_ctx();
	use_as_fd4(O_RDONLY);
	json_t *spec = json_pack("{s:s, s:s}", "mode", "read", "sha256", hex);
	ck_assert_int_eq(archive_open(&ctx, spec, "crdb"), 0);
	json_t *rec;
	int n = 0;
	while ((rec = backend_archive_next(&ctx))) {
		ck_assert_int_eq(json_integer_value(json_object_get(rec, "id")), n);
		json_decref(rec);
		n++;
	}
	ck_assert_str_eq(ctx.error, "");
	ck_assert_int_gt(n, 1);
	ck_assert_int_lt(n, 30000);
	ck_assert_msg((n - 1) % 10001 == 0, "%d records: not a sealed boundary", n);
	ck_assert_int_eq(json_array_size(ctx.warnings), 1);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_array_get(ctx.warnings, 0)), "never sealed"));
	json_decref(ctx.warnings);
	archive_close(&ctx, &(struct msg_result){ 0 }, written_sha);
	json_decref(spec);
}
END_TEST

/* One archive of 100 random records and a last one of @tail base64 bytes, in one frame; its size. */
static off_t write_sized(size_t tail)
{
	struct backend_ctx ctx = new_ctx();
	ck_assert_int_eq(truncate(path, 0), 0);
	use_as_fd4(O_WRONLY);
	json_t *spec = json_pack("{s:s, s:i}", "mode", "write", "max_bytes", 0);
	ck_assert_int_eq(archive_open(&ctx, spec, "crdb"), 0);
	srandom(7);
	for (int i = 0; i <= 100; i++) {
		size_t n = i < 100 ? 900 : tail;
		unsigned char *bin = malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			bin[k] = (unsigned char)random();
		char *b = b64_encode(bin, n);
		ck_assert_int_eq(backend_archive_add(&ctx, json_pack("{s:i, s:s}", "id", i, "blob", b)), 0);
		free(b);
		free(bin);
	}
	ck_assert_int_eq(backend_archive_seal(&ctx), 0);
	archive_close(&ctx, &(struct msg_result){ 0 }, written_sha);
	json_decref(spec);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* A whole archive whose last read holds nothing but the frame's checksum (its size is 1 to 4 bytes past
 * a multiple of zstd's input buffer) reads whole: the frame's end comes with no bytes out. */
START_TEST(test_whole_file_any_size)
{
	const off_t z = (off_t)ZSTD_DStreamInSize();
	size_t lo = 0, hi = 120000;
	while (lo < hi) { /* the smallest tail whose archive reaches z + 1 bytes */
		size_t mid = (lo + hi) / 2;
		if (write_sized(mid) < z + 1)
			lo = mid + 1;
		else
			hi = mid;
	}
	off_t size = 0;
	for (size_t t = lo; t < lo + 64; t++) {
		size = write_sized(t);
		if (size % z >= 1 && size % z <= 4)
			break;
	}
	ck_assert_msg(size % z >= 1 && size % z <= 4, "no archive of the size sought (last %lld)", (long long)size);
	char hex[65];
	file_sha(hex);
	struct backend_ctx ctx = new_ctx();
	use_as_fd4(O_RDONLY);
	json_t *spec = json_pack("{s:s, s:s}", "mode", "read", "sha256", hex);
	ck_assert_int_eq(archive_open(&ctx, spec, "crdb"), 0);
	json_t *rec;
	int n = 0;
	while ((rec = backend_archive_next(&ctx))) {
		json_decref(rec);
		n++;
	}
	ck_assert_str_eq(ctx.error, "");
	ck_assert_int_eq(n, 101);
	ck_assert_ptr_null(ctx.warnings);
	archive_close(&ctx, &(struct msg_result){ 0 }, written_sha);
	json_decref(spec);
}
END_TEST

START_TEST(test_limit_is_a_refusal)
{
	struct backend_ctx ctx = new_ctx();
	use_as_fd4(O_WRONLY);
	json_t *spec = json_pack("{s:s, s:i}", "mode", "write", "max_bytes", 4096);
	ck_assert_int_eq(archive_open(&ctx, spec, "crdb"), 0);
	/* The estimate alone is refused before anything is written. */
	ck_assert_int_eq(backend_archive_reserve(&ctx, 1 << 20), -1);
	ck_assert_ptr_nonnull(strstr(ctx.error, "archive_max_bytes"));
	ctx.error[0] = '\0';
	/* Incompressible data past the limit: EFBIG, said, and nothing more accepted. */
	int r = 0, i;
	for (i = 0; i < 1000 && r == 0; i++) {
		unsigned char bin[512];
		for (size_t k = 0; k < sizeof(bin); k++)
			bin[k] = (unsigned char)random();
		char *b = b64_encode(bin, sizeof(bin));
		r = backend_archive_add(&ctx, json_pack("{s:s}", "b", b));
		if (r == 0)
			r = backend_archive_seal(&ctx);
		free(b);
	}
	ck_assert_int_eq(r, -1);
	ck_assert_ptr_nonnull(strstr(ctx.error, "archive_max_bytes"));
	ck_assert_int_eq(backend_archive_seal(&ctx), -1);
	ck_assert_int_eq(backend_archive_add(&ctx, json_object()), -1);
	archive_close(&ctx, &(struct msg_result){ 0 }, written_sha);
	json_decref(spec);
}
END_TEST

START_TEST(test_wrong_fd_mode_refused)
{
	struct backend_ctx ctx = new_ctx();
	use_as_fd4(O_RDONLY);
	json_t *spec = json_pack("{s:s, s:i}", "mode", "write", "max_bytes", 0);
	ck_assert_int_eq(archive_open(&ctx, spec, "crdb"), -1);
	ck_assert_ptr_nonnull(strstr(ctx.error, "restart purged"));
	archive_close(&ctx, &(struct msg_result){ 0 }, written_sha);
	json_decref(spec);
}
END_TEST

START_TEST(test_base64)
{
	unsigned char *out;
	size_t len;
	char *t = b64_encode("\0\1\2\377", 4);
	ck_assert_str_eq(t, "AAEC/w==");
	ck_assert_int_eq(b64_decode(t, strlen(t), &out, &len), 0);
	ck_assert_int_eq(len, 4);
	ck_assert_int_eq(memcmp(out, "\0\1\2\377", 4), 0);
	free(out);
	free(t);
	ck_assert_int_eq(b64_decode("not base64!", 11, &out, &len), -1);
}
END_TEST

int main(void)
{
	/* fd 4 is the archive's: keep check's own files (opened before the forks) off it. */
	while (open("/dev/null", O_RDONLY) < ARCHIVE_FD)
		;
	Suite *s = suite_create("archive");
	unit_case(s, "archive", setup, teardown,
		  (const TTest *[]){ test_roundtrip, test_changed_file_refused, test_cut_file_sealed_part,
				     test_whole_file_any_size, test_limit_is_a_refusal, test_wrong_fd_mode_refused,
				     test_base64, NULL });
	return unit_run(s);
}
