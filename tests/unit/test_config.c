/* Unit tests for daemon/config.c and daemon/creds.c: good and bad configurations, FILE:LINE errors, secret files. */
#include <arpa/inet.h>
#include <check.h>
#include "unit.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/config.h"
#include "daemon/creds.h"

static char tmpdir[64];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/purged-test-config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static int parse(const char *text, struct daemon_conf **c, struct config_errors *errs)
{
	return config_parse("test.conf", text, strlen(text), c, errs);
}

static bool has_error(const struct config_errors *errs, const char *needle)
{
	for (size_t i = 0; i < errs->n; i++)
		if (strstr(errs->v[i], needle))
			return true;
	return false;
}

static void dump(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "  %s\n", errs->v[i]);
}

START_TEST(test_defaults)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };

	ck_assert_int_eq(parse("", &c, &errs), 0);
	ck_assert_str_eq(c->control_socket, "/run/purged/control.sock");
	ck_assert_str_eq(c->control_group, "purge-admin");
	ck_assert_str_eq(c->state_dir, "/var/lib/purged");
	ck_assert_str_eq(c->executor_user, "purged");
	ck_assert_uint_eq(c->max_executors, 4);
	ck_assert_uint_eq(c->max_queue, 64);
	ck_assert_uint_eq(c->task_timeout, 3600);
	ck_assert_uint_eq(c->n_targets, 0);
	config_free(c);
}
END_TEST

START_TEST(test_full)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };
	const char *text = "; comment\n"
			   "# another\n"
			   "[daemon]\n"
			   "control_socket = /tmp/x.sock   ; inline comment\n"
			   "max_executors = 2\n"
			   "task_timeout = 5\n"
			   "\n"
			   "[target demo]\n"
			   "type = noop\n"
			   "objects = 7\n"
			   "step_ms = 0\n"
			   "[target other]\n"
			   "type = noop\n";

	int r = parse(text, &c, &errs);
	if (r < 0)
		dump(&errs);
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(c->control_socket, "/tmp/x.sock");
	ck_assert_uint_eq(c->max_executors, 2);
	ck_assert_uint_eq(c->n_targets, 2);
	const struct target_conf *t = config_find_target(c, "demo");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->type, "noop");
	ck_assert_int_eq(json_integer_value(json_object_get(t->settings, "objects")), 7);
	ck_assert_int_eq(json_integer_value(json_object_get(t->settings, "step_ms")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(t->settings, "fail_at")), 0);
	t = config_find_target(c, "other");
	ck_assert_int_eq(json_integer_value(json_object_get(t->settings, "objects")), 100);
	ck_assert_ptr_null(config_find_target(c, "nope"));
	config_free(c);
}
END_TEST

/* listen = ...: libuv reads the address, the error names the wrong part. */
START_TEST(test_listen_parse)
{
	static const struct {
		const char *s;
		int family, port;
		bool loopback;
		const char *why; /* NULL: accepted */
	} cases[] = {
		{ "127.0.0.1:8470", AF_INET, 8470, true, NULL },
		{ "10.1.2.3:1", AF_INET, 1, false, NULL },
		{ "[::1]:65535", AF_INET6, 65535, true, NULL },
		{ "[2001:db8::5]:80", AF_INET6, 80, false, NULL },
		{ "127.0.0.1", 0, 0, false, "the port is missing" },
		{ "127.0.0.1:", 0, 0, false, "the port is not a number from 1 to 65535" },
		{ "127.0.0.1:0", 0, 0, false, "the port is not a number from 1 to 65535" },
		{ "127.0.0.1:65536", 0, 0, false, "the port is not a number from 1 to 65535" },
		{ "127.0.0.1:-1", 0, 0, false, "the port is not a number from 1 to 65535" },
		{ ":8470", 0, 0, false, "the address is missing" },
		{ "localhost:8470", 0, 0, false, "the address is not an IPv4 address" },
		{ "127.0.0.256:8470", 0, 0, false, "the address is not an IPv4 address" },
		{ "::1:8470", 0, 0, false, "the address is not an IPv4 address" },
		{ "[::1]8470", 0, 0, false, "an IPv6 address is written [ADDRESS]:PORT" },
		{ "[::g]:8470", 0, 0, false, "the address is not an IPv6 address" },
		{ "[]:8470", 0, 0, false, "the address is missing" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		bool loopback = !cases[i].loopback;
		const char *why = NULL;
		int r = listen_parse(cases[i].s, &ss, &loopback, &why);
		if (!cases[i].why) {
			ck_assert_msg(r == 0, "'%s' refused: %s", cases[i].s, why);
			ck_assert_int_eq(ss.ss_family, cases[i].family);
			ck_assert_int_eq(ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
								       : ((struct sockaddr_in6 *)&ss)->sin6_port),
					 cases[i].port);
			ck_assert_msg(loopback == cases[i].loopback, "'%s': loopback %d", cases[i].s, loopback);
		} else {
			ck_assert_msg(r == -EINVAL, "'%s' accepted", cases[i].s);
			ck_assert_msg(why && strstr(why, cases[i].why), "'%s': '%s', expected '%s'", cases[i].s,
				      why ? why : "(none)", cases[i].why);
		}
	}
	ck_assert_int_eq(listen_parse("127.0.0.1:8470", NULL, NULL, NULL), 0);
}
END_TEST

static const struct {
	const char *text;
	const char *error; /* expected substring, with the line number */
} bad[] = {
	{ "[rest]\nlisten = 127.0.0.1:99999\n",
	  "test.conf:2: listen = '127.0.0.1:99999': the port is not a number from 1 to 65535; expected ADDRESS:PORT" },
	{ "[daemon]\nbogus = 1\n", "test.conf:2: unknown key 'bogus' in [daemon]" },
	{ "[target d]\ntype = noop\nprotect = maybe\n", "test.conf:3: protect = 'maybe': expected yes or no" },
	{ "[target d]\ntype = noop\napprovals = 2\n", "test.conf:3: approvals = '2': expected a whole number from 0 to 1" },
	{ "[crdb 1d7741cc-1110-4e2f-bc6c-935292783d24]\ninstance.1 = redis://127.0.0.1:1\napproval_timeout = 0\n",
	  "test.conf:3: approval_timeout = '0': expected a whole number from 1 to 604800" },
	{ "[target d]\ntype = noop\narchive = sometimes\n", "test.conf:3: archive = 'sometimes': expected yes or no" },
	{ "[target d]\ntype = noop\narchive_max_bytes = 10\n", "test.conf:3: archive_max_bytes = '10': expected a size from 1M" },
	{ "[target d]\ntype = noop\narchive_max_bytes = 5X\n", "test.conf:3: archive_max_bytes = '5X': expected a size in bytes" },
	{ "[daemon]\narchive_max_bytes = -1G\n", "test.conf:2: archive_max_bytes = '-1G': expected a size" },
	{ "[daemon]\narchive_max_bytes = 2000T\n", "test.conf:2: archive_max_bytes = '2000T': expected a size from 1M to 1024T" },
	{ "[daemon]\narchive_max_bytes = 99999999999999999999G\n", "test.conf:2: archive_max_bytes" },
	{ "[daemon]\narchive_dir = archives\n", "test.conf:2: archive_dir = 'archives': expected an absolute path" },
	{ "[daemon]\narchive_keep_days = 36501\n", "test.conf:2: archive_keep_days = '36501': expected a whole number from 0 to 36500" },
	{ "[crdb 1d7741cc-1110-4e2f-bc6c-935292783d24]\ninstance.1 = redis://127.0.0.1:1\narchive = maybe\n",
	  "test.conf:3: archive = 'maybe': expected yes or no" },
	{ "[daemon]\nmax_executors = 0\n", "test.conf:2: max_executors = '0': expected a whole number from 1 to 256" },
	{ "[daemon]\nmax_executors = many\n", "test.conf:2: max_executors = 'many'" },
	{ "[daemon]\nmax_executors = -1\n", "test.conf:2: max_executors = '-1'" },
	{ "[daemon]\nmax_queue = 99999999999999999999\n", "test.conf:2: max_queue" },
	{ "[daemon]\nstate_dir = relative/dir\n", "test.conf:2: state_dir = 'relative/dir': expected an absolute path" },
	{ "\n\n[nonsense]\nx = 1\n", "test.conf:3: unknown section [nonsense]" },
	{ "[target demo]\nobjects = 3\n", "test.conf:1: target 'demo' has no 'type'" },
	{ "[target demo]\n", "test.conf:1: target 'demo' has no 'type'" },
	{ "[target demo]\ntype = mainframe\n", "test.conf:2: type = 'mainframe': unknown target type" },
	{ "[target demo]\ntype = noop\nurl = http://x\n", "test.conf:3: unknown key 'url' for a target of type noop" },
	{ "[target demo]\ntype = noop\nobjects = 1\nobjects = 2\n", "test.conf:4: key 'objects' repeats" },
	{ "[target a/b]\ntype = noop\n", "test.conf:1: target name 'a/b' is not valid" },
	{ "[target demo]\ntype = noop\n[target demo]\ntype = noop\n", "repeats" },
	/* An indented line continues the value above: an indented key is refused, not swallowed. */
	{ "[target demo]\ntype = noop\nobjects = 1\n  step_ms = 0\n",
	  "test.conf:4: this line is indented, so it continues the value of 'objects' above" },
	{ "[daemon]\nthis line has no equals sign\n", "test.conf:2: syntax error" },
	{ "[target demo]\ntype = noop\npassword_file = relative\n", "test.conf:3: password_file = 'relative'" },
	{ "[target demo]\ntype = noop\npassword_file = /nonexistent/secret\n",
	  "test.conf:3: cannot open secret file '/nonexistent/secret'" },
};

START_TEST(test_bad)
{
	struct daemon_conf *c = (struct daemon_conf *)0x1;
	struct config_errors errs = { 0 };

	ck_assert_int_lt(parse(bad[_i].text, &c, &errs), 0);
	ck_assert_ptr_eq(c, (struct daemon_conf *)0x1); /* untouched on failure */
	if (!has_error(&errs, bad[_i].error))
		dump(&errs);
	ck_assert_msg(has_error(&errs, bad[_i].error), "case %d: no error containing '%s'", _i, bad[_i].error);
	config_errors_clear(&errs);
}
END_TEST

START_TEST(test_long_line)
{
	char text[600];
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };
	snprintf(text, sizeof(text), "[daemon]\nstate_dir = /%0500d\n", 0);
	ck_assert_int_lt(parse(text, &c, &errs), 0);
	ck_assert(has_error(&errs, "test.conf:2: line longer than"));
	config_errors_clear(&errs);
}
END_TEST

START_TEST(test_all_errors_reported)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };
	ck_assert_int_lt(parse("[daemon]\na = 1\nb = 2\n[x]\n", &c, &errs), 0);
	ck_assert_uint_eq(errs.n, 3);
	config_errors_clear(&errs);
}
END_TEST

static void write_text(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static char *write_secret(const char *name, const char *content, mode_t mode)
{
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/%s", tmpdir, name), 0);
	write_text(path, content);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

START_TEST(test_secret_ok)
{
	char *path = write_secret("pw", "s3cret\n", 0600);
	char text[512], *val = NULL, err[256];
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };

	ck_assert_int_eq(creds_load_file(path, &val, err, sizeof(err)), 0);
	ck_assert_str_eq(val, "s3cret");
	free(val);
	snprintf(text, sizeof(text), "[target demo]\ntype = noop\npassword_file = %s\n", path);
	ck_assert_int_eq(parse(text, &c, &errs), 0);
	const struct target_conf *t = config_find_target(c, "demo");
	ck_assert_str_eq(json_string_value(json_object_get(t->secrets, "password")), "s3cret");
	/* The secret never lands among the settings handed around for display. */
	char *settings = json_dumps(t->settings, 0);
	ck_assert_ptr_null(strstr(settings, "s3cret"));
	free(settings);
	config_free(c);
	free(path);
}
END_TEST

/* A long list on several lines: the indented lines continue the value, joined by a space. */
START_TEST(test_continued_value)
{
	char *path = write_secret("pw", "s3cret\n", 0600);
	char text[512];
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };

	snprintf(text, sizeof(text), "[target itop]\ntype = itop\nurl = http://127.0.0.1:1/webservices/rest.php\n"
		 "user = rest\npassword_file = %s\nclasses = Ticket, FunctionalCI,\n  Contact,\n\tOrganization\n"
		 "chunk = 50\n", path);
	int r = parse(text, &c, &errs);
	if (r < 0)
		dump(&errs);
	ck_assert_int_eq(r, 0);
	const struct target_conf *t = config_find_target(c, "itop");
	ck_assert_str_eq(json_string_value(json_object_get(t->settings, "classes")),
			 "Ticket, FunctionalCI, Contact, Organization");
	ck_assert_int_eq(json_integer_value(json_object_get(t->settings, "chunk")), 50);
	config_free(c);
	free(path);
}
END_TEST

START_TEST(test_secret_mode)
{
	char *path = write_secret("pw", "s3cret", 0640);
	char *val = NULL, err[256];
	ck_assert_int_eq(creds_load_file(path, &val, err, sizeof(err)), -EPERM);
	ck_assert_ptr_null(val);
	ck_assert_ptr_nonnull(strstr(err, "mode 0640"));
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	free(path);
}
END_TEST

START_TEST(test_secret_owner)
{
	char *path = write_secret("pw", "s3cret", 0600);
	char *val = NULL, err[256];
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_int_eq(creds_load_file(path, &val, err, sizeof(err)), -EPERM);
		ck_assert_ptr_nonnull(strstr(err, "owned by uid 65534"));
	} else {
		/* Only root can give a file away; anyone can open one of root's readable files. */
		ck_assert_int_eq(creds_load_file("/etc/passwd", &val, err, sizeof(err)), -EPERM);
		ck_assert_ptr_nonnull(strstr(err, "owned by uid 0"));
	}
	ck_assert_ptr_null(val);
	free(path);
}
END_TEST

START_TEST(test_secret_empty_and_symlink)
{
	char *path = write_secret("empty", "\n", 0600);
	char *val = NULL, err[256], link[128];
	ck_assert_int_eq(creds_load_file(path, &val, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_lt(creds_load_file(link, &val, err, sizeof(err)), 0); /* O_NOFOLLOW */
	free(path);
}
END_TEST

START_TEST(test_load_missing_file)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };
	ck_assert_int_eq(config_load("/nonexistent/purged.conf", &c, &errs), -ENOENT);
	ck_assert(has_error(&errs, "/nonexistent/purged.conf: cannot open the configuration"));
	config_errors_clear(&errs);
}
END_TEST

START_TEST(test_dropins)
{
	char main_path[128], dir[160], drop[200], text[256];
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };

	snprintf(main_path, sizeof(main_path), "%s/purged.conf", tmpdir);
	snprintf(dir, sizeof(dir), "%s.d", main_path);
	write_text(main_path, "[daemon]\nmax_queue = 5\n");
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(drop, sizeof(drop), "%s/10-demo.conf", dir);
	write_text(drop, "[target demo]\ntype = noop\n");
	snprintf(drop, sizeof(drop), "%s/ignored.txt", dir);
	write_text(drop, "garbage\n");
	ck_assert_int_eq(config_load(main_path, &c, &errs), 0);
	ck_assert_uint_eq(c->max_queue, 5);
	ck_assert_ptr_nonnull(config_find_target(c, "demo"));
	config_free(c);

	/* An error in a drop-in names the drop-in and its own line. */
	snprintf(drop, sizeof(drop), "%s/20-bad.conf", dir);
	write_text(drop, "\n[target x]\ntype = noop\nbogus = 1\n");
	ck_assert_int_lt(config_load(main_path, &c, &errs), 0);
	snprintf(text, sizeof(text), "%s:4: unknown key 'bogus'", drop);
	if (!has_error(&errs, text))
		dump(&errs);
	ck_assert(has_error(&errs, text));
	config_errors_clear(&errs);

	/* A key before any section in a drop-in. */
	write_text(drop, "stray = 1\n");
	ck_assert_int_lt(config_load(main_path, &c, &errs), 0);
	snprintf(text, sizeof(text), "%s:1: key 'stray' is outside any section", drop);
	ck_assert(has_error(&errs, text));
	config_errors_clear(&errs);
}
END_TEST

/* protect, approvals and approval_timeout: every target type and [crdb GUID]; never in the executor's settings. */
START_TEST(test_protection_keys)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };
	const char *text = "[target a]\ntype = noop\nprotect = yes\n"
			   "[target b]\ntype = noop\napprovals = 1\napproval_timeout = 60\n"
			   "[crdb 1d7741cc-1110-4e2f-bc6c-935292783d24]\ninstance.1 = redis://127.0.0.1:1\n"
			   "protect = on\napprovals = 1\n";

	if (parse(text, &c, &errs) < 0)
		dump(&errs);
	ck_assert_ptr_nonnull(c);
	const struct target_conf *a = config_find_target(c, "a"), *b = config_find_target(c, "b");
	const struct target_conf *g = config_find_target(c, "1d7741cc-1110-4e2f-bc6c-935292783d24");
	ck_assert(a->protect);
	ck_assert_str_eq(a->protect_where, "test.conf:3");
	ck_assert_uint_eq(a->approvals, 0);
	ck_assert_uint_eq(a->approval_timeout, 3600);
	ck_assert(!b->protect);
	ck_assert_ptr_null(b->protect_where);
	ck_assert_uint_eq(b->approvals, 1);
	ck_assert_uint_eq(b->approval_timeout, 60);
	ck_assert(g->protect);
	ck_assert_str_eq(g->protect_where, "test.conf:10");
	ck_assert_uint_eq(g->approvals, 1);
	ck_assert_ptr_null(json_object_get(a->settings, "protect"));
	ck_assert_ptr_null(json_object_get(b->settings, "approvals"));
	ck_assert_ptr_null(json_object_get(g->settings, "protect"));
	config_free(c);
}
END_TEST

/* archive, archive_max_bytes per target and [crdb GUID]; archive_dir, archive_keep_days, archive_max_bytes in [daemon]. */
START_TEST(test_archive_keys)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };

	ck_assert_int_eq(parse("[daemon]\nstate_dir = /srv/p\n[target a]\ntype = noop\n", &c, &errs), 0);
	ck_assert_str_eq(c->archive_dir, "/srv/p/archives");
	ck_assert_uint_eq(c->archive_keep_days, 30);
	ck_assert_uint_eq(c->archive_max_bytes, 10ull << 30);
	ck_assert(!config_find_target(c, "a")->archive);
	ck_assert_uint_eq(config_find_target(c, "a")->archive_max_bytes, 10ull << 30);
	config_free(c);

	const char *text = "[daemon]\narchive_dir = /backup/purged\narchive_keep_days = 0\narchive_max_bytes = 2T\n"
			   "[target a]\ntype = noop\narchive = yes\n"
			   "[target b]\ntype = noop\narchive = yes\narchive_max_bytes = 500MiB\n"
			   "[crdb 1d7741cc-1110-4e2f-bc6c-935292783d24]\ninstance.1 = redis://127.0.0.1:1\n"
			   "archive = on\narchive_max_bytes = 1048576\n";
	if (parse(text, &c, &errs) < 0)
		dump(&errs);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->archive_dir, "/backup/purged");
	ck_assert_uint_eq(c->archive_keep_days, 0);
	ck_assert_uint_eq(c->archive_max_bytes, 2ull << 40);
	const struct target_conf *a = config_find_target(c, "a"), *b = config_find_target(c, "b");
	const struct target_conf *g = config_find_target(c, "1d7741cc-1110-4e2f-bc6c-935292783d24");
	ck_assert(a->archive && b->archive && g->archive);
	ck_assert_uint_eq(a->archive_max_bytes, 2ull << 40); /* [daemon]'s */
	ck_assert_uint_eq(b->archive_max_bytes, 500ull << 20);
	ck_assert_uint_eq(g->archive_max_bytes, 1048576);
	/* The supervisor's keys: never handed to the executor as settings. */
	ck_assert_ptr_null(json_object_get(a->settings, "archive"));
	ck_assert_ptr_null(json_object_get(b->settings, "archive_max_bytes"));
	ck_assert_ptr_null(json_object_get(g->settings, "archive"));
	config_free(c);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;
	tc = unit_case(s, "config:parse", NULL, NULL,
		       (const TTest *[]){ test_defaults, test_full, test_listen_parse, test_long_line,
					  test_all_errors_reported, test_load_missing_file,
					  test_archive_keys, NULL });
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tc = unit_case(s, "config:secrets", setup, teardown,
		       (const TTest *[]){ test_secret_ok, test_continued_value, test_secret_mode, test_secret_owner,
					  test_secret_empty_and_symlink, test_dropins, test_protection_keys,
					  NULL });
	(void)tc;
	return s;
}

int main(void)
{
	return unit_run(config_suite());
}
