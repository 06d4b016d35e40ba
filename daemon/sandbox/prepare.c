/* sandbox_prepare and sandbox_enter: the order of the steps. Executor (and purged-rest). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "daemon/sandbox/sandbox.h"
#include "purged/log.h"

static int close_above(int last_fd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)last_fd + 1, ~0U, 0) == 0)
		return 0;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = last_fd + 1; fd < max; fd++)
		close((int)fd);
	return 0;
}

int sandbox_prepare(int last_fd, unsigned max_fds, bool no_file_writes, char *err, size_t errlen)
{
	const struct {
		int res;
		rlim_t val;
		const char *name;
	} limits[] = {
		{ RLIMIT_CORE, 0, "RLIMIT_CORE" },   /* a core would hold the credentials */
		{ RLIMIT_FSIZE, 0, "RLIMIT_FSIZE" }, /* executors write no files */
		{ RLIMIT_NOFILE, max_fds, "RLIMIT_NOFILE" },
	};

	close_above(last_fd);
	if (clearenv() != 0) {
		snprintf(err, errlen, "clearenv failed");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if (limits[i].res == RLIMIT_FSIZE && !no_file_writes)
			continue;
		struct rlimit rl = { limits[i].val, limits[i].val };
		if (setrlimit(limits[i].res, &rl) < 0) {
			int e = errno;
			snprintf(err, errlen, "setrlimit(%s) failed: %s", limits[i].name, strerror(e));
			return -e;
		}
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "PR_SET_DUMPABLE failed: %s", strerror(e));
		return -e;
	}
	/* The supervisor drops to executor_user before exec; never go on with root's powers. */
	if (geteuid() == 0 || getuid() == 0) {
		snprintf(err, errlen, "refusing to run as root: the supervisor must start executors as executor_user");
		return -EPERM;
	}
	return 0;
}

int sandbox_enter(const struct sandbox_policy *p, struct sandbox_report *rep, char *err, size_t errlen)
{
	int r;

	*rep = (struct sandbox_report){ 0 };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS failed: %s", strerror(e));
		return -e;
	}
	r = sandbox_landlock(p, rep);
	if (r < 0 && r != -EOPNOTSUPP) {
		snprintf(err, errlen, "Landlock failed: %s", strerror(-r));
		return r;
	}
	/* Said at warning level: without it, file and port confinement rest on seccomp and the unit alone. */
	if (r == -EOPNOTSUPP)
		log_warnx("sandbox: Landlock is unavailable (a kernel without it, or a container's system-call filter "
			  "refusing landlock_*: allow them, e.g. systemd-nspawn --system-call-filter='landlock_create_ruleset "
			  "landlock_add_rule landlock_restrict_self'); going on with seccomp only");
	r = sandbox_seccomp(p);
	if (r < 0) {
		snprintf(err, errlen, "seccomp filter failed: %s", strerror(-r));
		return r;
	}
	return 0;
}
