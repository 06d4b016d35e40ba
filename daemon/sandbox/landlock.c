/*
 * Landlock: no filesystem access except read-only beneath the policy's
 * paths, and (ABI 4+) TCP connect only to the policy's ports, no bind.
 * ABI 6+ also scopes signals and abstract unix sockets to the sandbox, so an
 * executor cannot signal its parent. Returns -EOPNOTSUPP where the kernel has
 * no Landlock: seccomp still applies.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "daemon/sandbox/sandbox.h"

/* Newer than Debian 12's kernel headers: define what we use. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define LL_NET_BIND_TCP (1ULL << 0)
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)
#define LL_RULE_NET_PORT 2

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

static uint64_t fs_rights(int abi)
{
	uint64_t r = (1ULL << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

int sandbox_landlock(const struct sandbox_policy *p, struct sandbox_report *rep)
{
	struct ll_ruleset_attr attr = { 0 };
	size_t attr_size;
	int abi, fd, r = 0;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return -EOPNOTSUPP;
	attr.handled_access_fs = fs_rights(abi);
	attr_size = sizeof(uint64_t);
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size = 2 * sizeof(uint64_t);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		attr_size = 3 * sizeof(uint64_t);
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (fd < 0)
		return -errno;

	for (size_t i = 0; i < p->n_read_paths && r == 0; i++) {
		struct ll_path_beneath_attr pb = {
			.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR,
		};
		pb.parent_fd = open(p->read_paths[i], O_PATH | O_CLOEXEC);
		if (pb.parent_fd < 0)
			continue; /* a missing CA directory is the backend's problem to report */
		if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
			r = -errno;
		close(pb.parent_fd);
	}
	for (size_t i = 0; abi >= 4 && i < p->n_tcp_ports && r == 0; i++) {
		struct ll_net_port_attr np = { LL_NET_CONNECT_TCP, p->tcp_ports[i] };
		if (syscall(SYS_landlock_add_rule, fd, LL_RULE_NET_PORT, &np, 0) < 0)
			r = -errno;
	}
	if (r == 0 && syscall(SYS_landlock_restrict_self, fd, 0) < 0)
		r = -errno;
	close(fd);
	if (r == 0) {
		rep->landlock_abi = abi;
		rep->landlock_net = abi >= 4;
	}
	return r;
}
