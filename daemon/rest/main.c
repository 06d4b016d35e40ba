/*
 * purged-rest: started by purged with fd 3 = the control link and fd 4 = a
 * listening TCP socket the supervisor bound. Sets up its loop, enters the
 * sandbox (no files, no new sockets but accepted ones), and serves until the
 * link closes or SIGTERM. Never run it by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "buildconf.h"
#include "daemon/rest/rest.h"
#include "daemon/sandbox/sandbox.h"
#include "purged/log.h"
#include "purged/util.h"

#define LINK_FD 3
#define LISTEN_FD 4

static uv_signal_t term;
static int exit_status;

/*
 * Close every handle, so that the loop ends and the process exits: on
 * SIGTERM, and when the link to the supervisor is gone (purged respawns us
 * with a fresh link; a purged-rest without one must not linger, holding the
 * listening socket).
 */
static void stop_serving(int status)
{
	exit_status = status;
	if (!uv_is_closing((uv_handle_t *)&term))
		uv_close((uv_handle_t *)&term, NULL);
	routes_stop();
	clients_stop();
	http_close_all();
}

static void on_link_lost(void)
{
	stop_serving(REST_EXIT_LINK_LOST);
}

static void on_term(uv_signal_t *h, int sig)
{
	(void)h, (void)sig;
	log_info("stopping on SIGTERM");
	upstream_close();
	stop_serving(0);
}

/* purged --test-probes: show that the credential and token files are out of reach once confined. */
static void probe(const char *paths)
{
	char *list = xstrdup(paths), *save = NULL;
	for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			log_warnx("probe: open %s: SUCCEEDED (sandbox hole)", p);
			close(fd);
		} else {
			log_info("probe: open %s: %s", p, strerror(errno));
		}
	}
	free(list);
}

int main(int argc, char **argv)
{
	struct sandbox_policy policy = { .serve = true };
	struct sandbox_report rep;
	struct stat st;
	char err[256];
	int r;

	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("purged-rest %s: the HTTP listener of purged(8); started by purged only\n", PURGED_VERSION);
		return 0;
	}
	log_init("purged-rest", false);
	if (fstat(LINK_FD, &st) < 0 || !S_ISSOCK(st.st_mode) || fstat(LISTEN_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "purged-rest: fds 3 and 4 are not sockets: this program is started by purged, not by hand\n");
		return 2;
	}
	/* Spawned by a supervisor of another build (the package upgraded under a running purged): refuse. */
	const char *their_build = NULL;
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--build=", 8) == 0)
			their_build = argv[i] + 8;
	if (!their_build || strcmp(their_build, PURGED_VERSION) != 0) {
		log_warnx("restart purged: it runs version %.32s, its helpers are version %s (systemctl restart purged); "
			  "not serving HTTP until then", their_build ? their_build : "older than 0.1.0", PURGED_VERSION);
		return 78; /* EX_CONFIG */
	}
	if (argc > 1)
		rest_idle_timeout_ms = (unsigned)strtoul(argv[1], NULL, 10) * 1000;
	if (rest_idle_timeout_ms == 0)
		rest_idle_timeout_ms = 30000;
	if (argc > 2 && strncmp(argv[2], "--upstream-timeout=", 19) == 0)
		rest_upstream_timeout_ms = (unsigned)strtoul(argv[2] + 19, NULL, 10) * 1000;
	if (rest_upstream_timeout_ms == 0)
		rest_upstream_timeout_ms = 30000;
	/*
	 * Die with the supervisor even if its end of the link stays open
	 * somewhere (a crash of purged). A supervisor already gone before this
	 * line closed the link: the first read sees EOF and we exit.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fatal("cannot ask to die with purged (prctl PR_SET_PDEATHSIG)");
	signal(SIGPIPE, SIG_IGN);
	/* 1024 clients, the two inherited sockets, the loop's own fds. */
	/*
	 * Its stderr is a pipe the supervisor relays into its log with our pid:
	 * no RLIMIT_FSIZE all the same (a debug run may hand it a file).
	 * Landlock denies it every file open.
	 */
	if (sandbox_prepare(LISTEN_FD, REST_MAX_CONNS + 64, false, err, sizeof(err)) < 0)
		fatalx("sandbox: %s", err);

	rest_loop = uv_default_loop();
	r = upstream_open(LINK_FD);
	if (r < 0)
		fatalx("cannot use the link to the supervisor: %s", uv_strerror(r));
	upstream_on_lost(on_link_lost);
	r = http_listen(LISTEN_FD);
	if (r < 0)
		fatalx("cannot listen on the socket purged handed over: %s", uv_strerror(r));
	routes_init();
	clients_init();
	uv_signal_init(rest_loop, &term);
	uv_signal_start(&term, on_term, SIGTERM);

	/* Everything is open: from here on, no files, no new sockets, no exec. */
	if (sandbox_enter(&policy, &rep, err, sizeof(err)) < 0)
		fatalx("sandbox: %s; refusing to serve unconfined", err);
	log_debug("sandbox entered: Landlock ABI %d, seccomp on", rep.landlock_abi);
	for (int i = 2; i < argc; i++)
		if (strncmp(argv[i], "--probe=", 8) == 0)
			probe(argv[i] + 8);

	uv_run(rest_loop, UV_RUN_DEFAULT);
	return exit_status;
}
