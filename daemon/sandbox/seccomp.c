/*
 * The seccomp allowlist (libseccomp). Anything not listed fails with EPERM:
 * the process stays alive to report the failure, and cannot do the thing.
 * Network calls are added only for backends that need them, and socket()
 * only for AF_UNIX/AF_INET/AF_INET6, never raw sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <sched.h>
#include <sys/socket.h>
#include "daemon/sandbox/sandbox.h"

static const int base_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
	SCMP_SYS(close), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(sigaltstack),
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(mprotect), SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(getrandom),
	SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(prlimit64), SCMP_SYS(fcntl), SCMP_SYS(getrusage),
	SCMP_SYS(fsync), SCMP_SYS(fstatfs), /* the archive, fd 4: sealed before deleting; free space */
	/* abort() raises SIGABRT on itself: a crash must still be reported as a signal. */
	SCMP_SYS(tgkill),
};

/* Talking on sockets that exist, and waiting on them: servers and clients alike. */
static const int io_syscalls[] = {
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendmmsg),
	SCMP_SYS(recvmmsg), SCMP_SYS(shutdown), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(eventfd2), SCMP_SYS(ioctl),
	SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(uname),
};

/* A server only accepts on the listener it was handed: no socket(), bind() or connect(). */
static const int serve_syscalls[] = {
	SCMP_SYS(accept), SCMP_SYS(accept4),
};

/* A backend client: new connections (socket() itself is filtered below), name resolution files. */
static const int client_syscalls[] = {
	SCMP_SYS(connect), SCMP_SYS(pipe2), SCMP_SYS(socketpair), SCMP_SYS(openat), SCMP_SYS(statx),
};

static int add_all(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
		if (r < 0)
			return r;
	}
	return 0;
}

int sandbox_seccomp(const struct sandbox_policy *p)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int r;

	if (!ctx)
		return -ENOMEM;
	r = add_all(ctx, base_syscalls, sizeof(base_syscalls) / sizeof(base_syscalls[0]));
	if (r == 0 && (p->network || p->serve))
		r = add_all(ctx, io_syscalls, sizeof(io_syscalls) / sizeof(io_syscalls[0]));
	if (r == 0 && p->serve)
		r = add_all(ctx, serve_syscalls, sizeof(serve_syscalls) / sizeof(serve_syscalls[0]));
	if (r == 0 && p->network) {
		r = add_all(ctx, client_syscalls, sizeof(client_syscalls) / sizeof(client_syscalls[0]));
		/* socket(): only the families a backend speaks, never SOCK_RAW or SOCK_PACKET. */
		static const int families[] = { AF_UNIX, AF_INET, AF_INET6 };
		for (size_t i = 0; r == 0 && i < 3; i++) {
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, families[i]),
					     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
			if (r == 0)
				r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
						     SCMP_A0(SCMP_CMP_EQ, families[i]),
						     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM));
		}
		/* Threads for libcurl's resolver, never new processes. */
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
					     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
		if (r == 0) /* glibc falls back to clone() when clone3 is refused with ENOSYS */
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	}
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}
