/*
 * The sandbox probe of the noop backend (probe = yes, only under purged
 * --test-probes): once confined, try what a compromised executor would, and
 * report each attempt's errno as a count "probe.WHAT" (0 = it succeeded,
 * which a test must treat as a failure of the sandbox). Executor only.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "daemon/executor/backend.h"
#include "purged/log.h"
#include "purged/util.h"

static void report(struct backend_ctx *ctx, const char *what, const char *detail, int ok, int err)
{
	char key[64];
	bool control = strcmp(what, "connect_allowed_port") == 0; /* the one attempt that should work */
	snprintf(key, sizeof(key), "probe.%s", what);
	log_info("probe: %s %s: %s", what, detail,
		 ok ? (control ? "connected, as allowed" : "SUCCEEDED (sandbox hole)") : strerror(err));
	backend_count(ctx, key, ok ? 0 : (uint64_t)err);
}

static void try_connect(struct backend_ctx *ctx, const char *what, unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char detail[32];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok = 0, err = errno;
	snprintf(detail, sizeof(detail), "127.0.0.1:%u", port);
	if (fd >= 0) {
		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		err = errno;
		close(fd);
	}
	report(ctx, what, detail, ok, err);
}

void backend_probe(struct backend_ctx *ctx)
{
	const char *reads = json_string_value(json_object_get(ctx->settings, "probe_read"));
	const char *writes = json_string_value(json_object_get(ctx->settings, "probe_write"));
	json_int_t port = json_integer_value(json_object_get(ctx->settings, "probe_port"));
	json_int_t allowed = json_integer_value(json_object_get(ctx->settings, "probe_allowed_port"));
	char *list, *save = NULL;
	int fd, n = 0;

	list = xstrdup(reads ? reads : "/etc/shadow");
	for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		char what[32];
		fd = open(p, O_RDONLY | O_CLOEXEC);
		int e = errno; /* read before anything else can change it */
		snprintf(what, sizeof(what), "read%d", n++);
		report(ctx, what, p, fd >= 0, e);
		if (fd >= 0)
			close(fd);
	}
	free(list);
	n = 0;
	list = xstrdup(writes ? writes : "/tmp");
	for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		char what[32], *f = xasprintf("%s/purged-probe-%d", p, getpid());
		fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		int e = errno;
		snprintf(what, sizeof(what), "write%d", n++);
		report(ctx, what, f, fd >= 0, e);
		if (fd >= 0) {
			close(fd);
			unlink(f);
		}
		free(f);
	}
	free(list);

	/* Each result and its errno are taken before the next call: argument order is unspecified in C. */
	int ok = ptrace(PTRACE_ATTACH, getppid(), NULL, NULL) == 0, e = errno;
	report(ctx, "ptrace_parent", "PTRACE_ATTACH", ok, e);
	ok = kill(getppid(), SIGCONT) == 0, e = errno;
	report(ctx, "signal_parent", "kill(parent, SIGCONT)", ok, e);
	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP), e = errno;
	report(ctx, "raw_socket", "socket(AF_INET, SOCK_RAW)", fd >= 0, e);
	if (fd >= 0)
		close(fd);
	ok = syscall(SYS_finit_module, 0, "", 0) == 0, e = errno;
	report(ctx, "load_module", "finit_module", ok, e);
	if (port)
		try_connect(ctx, "connect_other_port", (unsigned)port);
	if (allowed)
		try_connect(ctx, "connect_allowed_port", (unsigned)allowed); /* the control: this one may work */
	/* Last: if execve worked the executor would be gone and the task would fail without a result. */
	char *const argv[] = { "/bin/sh", "-c", "exit 0", NULL }, *const envp[] = { NULL };
	execve("/bin/sh", argv, envp);
	e = errno;
	report(ctx, "exec_shell", "/bin/sh", 0, e);
}
