/*
 * The supervisor's side of purged-rest: bind the listening socket (so the
 * child needs no right to bind), spawn the child with fd 3 = control link
 * and fd 4 = the listener, watch it, and respawn it with backoff when it
 * dies. The supervisor never parses HTTP. Supervisor only.
 *
 * Nobody accepts on the listening socket while no child runs: it is shut
 * down then (queued clients are reset, new ones refused, none left
 * hanging), and listens again just before the next child starts. A child
 * whose link closed (the supervisor cut it, or it broke) is told to stop,
 * and killed if it has not within LINK_GRACE_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "daemon/childlog.h"
#include "buildconf.h"
#include "daemon/purged.h"
#include "daemon/rest/rest.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define STABLE_USEC (60 * 1000000LL) /* up this long: the next crash starts the backoff over */
#define LINK_GRACE_MS 5000 /* it may be finishing a burst of replies first */

static struct {
	int listen_fd;
	char *path;
	uv_process_t proc;
	bool running, stopping;
	uv_timer_t retry;
	uv_timer_t reaper;  /* SIGKILL for a child that outlives its link */
	struct ctl_conn *link;
	unsigned backoff_ms;
	int64_t started;
	char idle[16];
	char upstream_timeout[48];
	char *probe;  /* --test-probes: files purged-rest must fail to read */
} rc = { .listen_fd = -1 };

static void spawn_child(void);

/*
 * purged-rest's stderr: a pipe relayed line by line into our log with its
 * pid, never its raw bytes on our stderr (a compromised child could forge a
 * daemon line or flood the journal). Static slots: an old child's pipe may
 * still drain while its successor starts.
 */
static struct rest_log {
	uv_pipe_t pipe;
	struct childlog log;
	bool used;
} rest_logs[4];

static void on_rest_log_closed(uv_handle_t *h)
{
	((struct rest_log *)h->data)->used = false;
}

static void on_rest_log(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rest_log *l = s->data;
	if (nread < 0) {
		childlog_flush(&l->log);
		uv_close((uv_handle_t *)s, on_rest_log_closed);
	} else {
		childlog_feed(&l->log, buf->base, (size_t)nread);
	}
}

static void on_retry(uv_timer_t *t)
{
	(void)t;
	spawn_child();
}

struct ctl_conn *rest_child_link(void)
{
	return rc.link;
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
	rc.running = false;
	uv_close((uv_handle_t *)p, NULL);
	uv_timer_stop(&rc.reaper);
	if (rc.stopping)
		return;
	/* Refuse clients until the next child listens: connect() fails at once instead of hanging. */
	if (shutdown(rc.listen_fd, SHUT_RDWR) < 0 && errno != ENOTCONN)
		log_warn("rest: cannot stop listening on %s while purged-rest is down", purged->conf->rest_listen);
	/*
	 * Left in order (its link was closed, or SIGTERM): back at once, or a
	 * token holder who makes us cut the link (a burst of huge replies) could
	 * keep the REST door down for the backoff's 30 s.
	 */
	if (!sig && (status == 0 || status == REST_EXIT_LINK_LOST)) {
		log_warnx("rest: purged-rest (pid %d) left after its link closed; restarting in %d ms", p->pid,
			  BACKOFF_MIN_MS);
		uv_timer_start(&rc.retry, on_retry, BACKOFF_MIN_MS, 0);
		return;
	}
	if (mono_usec() - rc.started > STABLE_USEC)
		rc.backoff_ms = BACKOFF_MIN_MS;
	if (sig)
		log_warnx("rest: purged-rest (pid %d) was killed by signal %d (%s); restarting in %u ms", p->pid, sig,
			  sigdescr_np(sig) ? sigdescr_np(sig) : "?", rc.backoff_ms);
	else
		log_warnx("rest: purged-rest (pid %d) exited with status %lld; restarting in %u ms", p->pid,
			  (long long)status, rc.backoff_ms);
	uv_timer_start(&rc.retry, on_retry, rc.backoff_ms, 0);
	rc.backoff_ms = rc.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc.backoff_ms * 2;
}

static void on_reaper(uv_timer_t *t)
{
	(void)t;
	if (!rc.running)
		return;
	log_warnx("rest: purged-rest (pid %d) did not exit %d ms after its link closed; killing it", rc.proc.pid,
		  LINK_GRACE_MS);
	uv_process_kill(&rc.proc, SIGKILL);
}

/*
 * The link closed: the child is dying or dead, or the supervisor cut it. A
 * child without a link serves nobody: stop it; on_child_exit respawns it.
 */
static void on_link_closed(void)
{
	rc.link = NULL;
	if (!rc.running || rc.stopping)
		return;
	uv_process_kill(&rc.proc, SIGTERM);
	uv_timer_start(&rc.reaper, on_reaper, LINK_GRACE_MS, 0);
}

static void spawn_child(void)
{
	uv_process_options_t opt = { 0 };
	uv_stdio_container_t stdio[5];
	/* --build: purged-rest refuses to serve for a supervisor of another build (an upgrade not yet restarted). */
	char *args[] = { rc.path, rc.idle, rc.upstream_timeout, (char *)"--build=" PURGED_VERSION, rc.probe, NULL };
	int sv[2], r;

	if (listen(rc.listen_fd, 511) < 0) {
		log_warn("rest: cannot listen on %s again; retrying in %u ms", purged->conf->rest_listen, rc.backoff_ms);
		uv_timer_start(&rc.retry, on_retry, rc.backoff_ms, 0);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("rest: socketpair for purged-rest failed; retrying in %u ms", rc.backoff_ms);
		uv_timer_start(&rc.retry, on_retry, rc.backoff_ms, 0);
		return;
	}
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_IGNORE;
	struct rest_log *log = NULL;
	for (size_t i = 0; i < sizeof(rest_logs) / sizeof(rest_logs[0]) && !log; i++)
		if (!rest_logs[i].used)
			log = &rest_logs[i];
	if (!log) {
		log_warnx("rest: the log pipes of earlier purged-rest processes are still open; retrying in %u ms",
			  rc.backoff_ms);
		close(sv[0]);
		close(sv[1]);
		uv_timer_start(&rc.retry, on_retry, rc.backoff_ms, 0);
		return;
	}
	log->used = true;
	uv_pipe_init(purged->loop, &log->pipe, 0);
	log->pipe.data = log;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&log->pipe;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = sv[1];
	stdio[4].flags = UV_INHERIT_FD;
	stdio[4].data.fd = rc.listen_fd;
	opt.file = rc.path;
	opt.args = args;
	exec_child_options(&opt);
	opt.stdio = stdio;
	opt.stdio_count = 5;
	opt.exit_cb = on_child_exit;
	r = uv_spawn(purged->loop, &rc.proc, &opt);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		uv_close((uv_handle_t *)&log->pipe, on_rest_log_closed);
		uv_close((uv_handle_t *)&rc.proc, NULL);
		log_warnx("rest: cannot start '%s': %s; retrying in %u ms", rc.path, uv_strerror(r), rc.backoff_ms);
		uv_timer_start(&rc.retry, on_retry, rc.backoff_ms, 0);
		return;
	}
	childlog_init(&log->log, "[purged-rest %d]", rc.proc.pid);
	uv_read_start((uv_stream_t *)&log->pipe, uvio_read_buf, on_rest_log);
	rc.running = true;
	rc.started = mono_usec();
	rc.link = ctl_adopt_rest(sv[0], on_link_closed);
	if (!rc.link)
		uv_process_kill(&rc.proc, SIGKILL);
	log_info("rest: purged-rest (pid %d) serving http://%s", rc.proc.pid, purged->conf->rest_listen);
}

void rest_child_start(void)
{
	struct sockaddr_storage ss;
	int one = 1, fd;

	if (!purged->conf->rest_enabled)
		return;
	const char *why;
	if (listen_parse(purged->conf->rest_listen, &ss, NULL, &why) < 0)
		fatalx("rest: listen = '%s' in [rest]: %s; expected ADDRESS:PORT, e.g. 127.0.0.1:8470",
		       purged->conf->rest_listen, why);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fatal("rest: cannot create the listening socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0)
		fatal("rest: cannot bind %s (in use by another program? change listen in [rest])",
		      purged->conf->rest_listen);
	if (listen(fd, 511) < 0)
		fatal("rest: cannot listen on %s", purged->conf->rest_listen);
	rc.listen_fd = fd;
	rc.path = exec_find_helper("purged-rest");
	rc.backoff_ms = BACKOFF_MIN_MS;
	snprintf(rc.idle, sizeof(rc.idle), "%u", purged->conf->rest_idle_timeout);
	snprintf(rc.upstream_timeout, sizeof(rc.upstream_timeout), "--upstream-timeout=%u",
		 purged->conf->rest_upstream_timeout);
	if (access(rc.path, X_OK) < 0)
		fatal("rest: cannot run '%s'; reinstall purged or set enabled = no in [rest]", rc.path);
	if (purged->test_probes)
		rc.probe = xasprintf("--probe=%s:%s/journal:%s:/etc/shadow", purged->conf->rest_tokens_file,
				     purged->conf->state_dir, purged->conf_path);
	uv_timer_init(purged->loop, &rc.retry);
	uv_timer_init(purged->loop, &rc.reaper);
	spawn_child();
}

void rest_child_stop(void)
{
	if (rc.listen_fd < 0)
		return;
	rc.stopping = true;
	uv_timer_stop(&rc.retry);
	uv_timer_stop(&rc.reaper);
	if (rc.running)
		uv_process_kill(&rc.proc, SIGTERM);
	/* The loop ends before its pipe's end is read: say now what it had not finished saying. */
	for (size_t i = 0; i < sizeof(rest_logs) / sizeof(rest_logs[0]); i++)
		if (rest_logs[i].used)
			childlog_flush(&rest_logs[i].log);
	close(rc.listen_fd);
	rc.listen_fd = -1;
	free(rc.path);
	rc.path = NULL;
	free(rc.probe);
	rc.probe = NULL;
}
