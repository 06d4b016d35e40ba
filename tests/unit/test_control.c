/*
 * Unit tests for daemon/control.c's decisions, apart from its sockets: who
 * may use purged (SO_PEERCRED's uid and gid), the connection limits, the
 * replies to a bad frame, and the login uid read from /proc.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/purged.h"
#include "unit.h"

static struct purged state;

static void setup(void)
{
	purged = &state;
	purged->have_control_gid = false;
}

START_TEST(test_peer_allowed)
{
	/* root and the daemon's own user, always. */
	ck_assert(ctl_peer_allowed(0, 0, "root"));
	ck_assert(ctl_peer_allowed(geteuid(), getegid(), NULL));
	/* Anyone else only through the control group: none configured, no one. */
	uid_t other = geteuid() == 4242 ? 4243 : 4242;
	ck_assert(!ctl_peer_allowed(other, 4242, "nobody"));
	/* The group as the caller's primary gid. */
	purged->have_control_gid = true;
	purged->control_gid = 4242;
	ck_assert(ctl_peer_allowed(other, 4242, NULL));
	ck_assert(!ctl_peer_allowed(other, 4241, NULL)); /* no name: no supplementary groups to look up */
	/* A supplementary group, looked up by name: any group of /etc/group that lists a member. */
	struct group *g;
	setgrent();
	while ((g = getgrent()) && !(g->gr_mem && g->gr_mem[0]))
		;
	if (g) {
		purged->control_gid = g->gr_gid;
		ck_assert_msg(ctl_peer_allowed(other, 4241, g->gr_mem[0]), "%s in %s", g->gr_mem[0], g->gr_name);
		ck_assert(!ctl_peer_allowed(other, 4241, "no-such-user-here"));
	}
	endgrent();
}
END_TEST

START_TEST(test_limits)
{
	/* 128 allowed connections in all, 32 of one uid: the next one is refused. */
	ck_assert(!ctl_over_limits(0, 0));
	ck_assert(!ctl_over_limits(127, 31));
	ck_assert(ctl_over_limits(128, 0));
	ck_assert(ctl_over_limits(5, 32));
}
END_TEST

/* Feed @bytes to a fresh reader: what proto_reader_next says, and control's reply to it. */
static int frame(const uint8_t *bytes, size_t n, enum purge_err *code, const char **why)
{
	struct proto_reader rd;
	const uint8_t *p;
	size_t len;

	proto_reader_init(&rd);
	ck_assert_int_eq(proto_reader_feed(&rd, bytes, n), 0);
	int r = proto_reader_next(&rd, &p, &len);
	if (r < 0)
		*why = ctl_frame_error(r, code);
	proto_reader_free(&rd);
	return r;
}

START_TEST(test_frames)
{
	enum purge_err code = 0;
	const char *why = NULL;

	/* 1 MiB of payload is a frame; one byte more is refused before any of it is read. */
	const uint8_t max[4] = { 0x00, 0x10, 0x00, 0x00 }, over[4] = { 0x00, 0x10, 0x00, 0x01 };
	ck_assert_int_eq(frame(max, sizeof(max), &code, &why), 0); /* waits for the payload */
	ck_assert_int_eq(frame(over, sizeof(over), &code, &why), -EMSGSIZE);
	ck_assert_int_eq(code, PURGE_ERR_TOO_LARGE);
	ck_assert_str_eq(why, "frame longer than the 1 MiB limit");
	/* An empty frame is a bad request. */
	const uint8_t empty[4] = { 0 };
	ck_assert_int_eq(frame(empty, sizeof(empty), &code, &why), -EBADMSG);
	ck_assert_int_eq(code, PURGE_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "empty frame");
	/* A header cut short, and a payload cut short, wait (the deadline handles trickles). */
	ck_assert_int_eq(frame(over, 3, &code, &why), 0);
	const uint8_t part[6] = { 0, 0, 0, 5, 0x80, 0x80 };
	ck_assert_int_eq(frame(part, sizeof(part), &code, &why), 0);
}
END_TEST

START_TEST(test_login_uid)
{
	const unsigned long unset = 4294967295UL;
	unsigned long want = unset;
	FILE *f = fopen("/proc/self/loginuid", "r");
	if (f) {
		if (fscanf(f, "%lu", &want) != 1)
			want = unset;
		fclose(f);
	}
	/* Ours, read through /proc/PID as for a peer. */
	ck_assert_uint_eq(ctl_peer_login_uid(getpid(), geteuid()), want);
	/* A pid that runs as another uid now (reused) is not taken for the caller. */
	ck_assert_uint_eq(ctl_peer_login_uid(getpid(), geteuid() + 1), unset);
	/* A pid that does not exist. */
	ck_assert_uint_eq(ctl_peer_login_uid(0x3fffffff, geteuid()), unset);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	unit_case(s, "decisions", setup, NULL,
		  (const TTest *[]){ test_peer_allowed, test_limits, test_frames, test_login_uid, NULL });
	return unit_run(s);
}
