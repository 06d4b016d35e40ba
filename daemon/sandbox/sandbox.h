/*
 * Sandboxing shared by purged-executor (and later purged-rest), in the
 * shape of OpenSSH's ssh-sandbox.h: sandbox_prepare() first thing in the
 * child, sandbox_enter() once the policy is known. One file per mechanism.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SANDBOX_MAX_PORTS 8
#define SANDBOX_MAX_PATHS 8

/* What a backend needs once locked down; everything else is refused. */
struct sandbox_policy {
	bool network;                           /* a client: socket() and connect() for TCP/UDP/unix */
	bool serve;                             /* a server: accept and talk on fds it was given */
	uint16_t tcp_ports[SANDBOX_MAX_PORTS];  /* Landlock: TCP connect only to these */
	size_t n_tcp_ports;
	const char *read_paths[SANDBOX_MAX_PATHS]; /* Landlock: read-only beneath these */
	size_t n_read_paths;
};

/* What sandbox_enter managed to apply, for the log. */
struct sandbox_report {
	int landlock_abi;   /* 0: Landlock not available */
	bool landlock_net;  /* TCP port rules enforced */
};

/*
 * Close every fd above @last_fd, empty the environment, set rlimits (no core
 * dumps; with @no_file_writes no byte written to a regular file), mark the
 * process not dumpable, and refuse to go on as root. Returns 0 or a negative
 * errno with @err set.
 */
int sandbox_prepare(int last_fd, unsigned max_fds, bool no_file_writes, char *err, size_t errlen);
/* no_new_privs, Landlock where the kernel has it, then the seccomp allowlist. */
int sandbox_enter(const struct sandbox_policy *p, struct sandbox_report *rep, char *err, size_t errlen);

/* Mechanisms (one file each). */
int sandbox_landlock(const struct sandbox_policy *p, struct sandbox_report *rep);
int sandbox_seccomp(const struct sandbox_policy *p);
