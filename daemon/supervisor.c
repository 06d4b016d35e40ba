/*
 * The supervisor's event loop: start-up checks, signals (SIGHUP reload,
 * SIGTERM/SIGINT orderly stop), reload, sd_notify, and tearing everything
 * down. Wiring only: no backend logic, no protocol parsing.
 */
#include <errno.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "buildconf.h"
#include "daemon/journal.h"
#include "daemon/creds.h"
#include "daemon/purged.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"
#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

struct purged *purged;

static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t stop_timer;
static uv_timer_t trim_timer;

/*
 * Bursts (a REST client reading many task lists, many executors at once)
 * leave freed heap that glibc keeps: give it back, so a daemon that runs for
 * months stays at its idle size. Microseconds when there is nothing to return.
 */
static void on_trim(uv_timer_t *t)
{
	(void)t;
	malloc_trim(0);
}
static int64_t stop_deadline;

static void notify(const char *state)
{
#if HAVE_LIBSYSTEMD
	if (getenv("NOTIFY_SOCKET"))
		sd_notify(0, state);
#else
	(void)state;
#endif
}

/* Keys that are bound at start-up: a reload keeps the running values and says so. */
static void keep_startup_keys(struct daemon_conf *next)
{
	struct {
		const char *name;
		char **cur, **nxt;
	} keys[] = {
		{ "control_socket", &purged->conf->control_socket, &next->control_socket },
		{ "control_group", &purged->conf->control_group, &next->control_group },
		{ "state_dir", &purged->conf->state_dir, &next->state_dir },
		{ "executor_user", &purged->conf->executor_user, &next->executor_user },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(*keys[i].cur, *keys[i].nxt) == 0)
			continue;
		log_warnx("reload: %s changed from '%s' to '%s'; it takes effect at the next restart, ignoring",
			  keys[i].name, *keys[i].cur, *keys[i].nxt);
		free(*keys[i].nxt);
		*keys[i].nxt = xstrdup(*keys[i].cur);
	}
	/* The listener is bound at start; its tokens, though, are re-read at every reload. */
	if (next->rest_enabled != purged->conf->rest_enabled || strcmp(next->rest_listen, purged->conf->rest_listen) ||
	    next->rest_allow_remote != purged->conf->rest_allow_remote) {
		log_warnx("reload: [rest] enabled/listen/allow_remote changed; they take effect at the next restart, "
			  "ignoring");
		next->rest_enabled = purged->conf->rest_enabled;
		next->rest_allow_remote = purged->conf->rest_allow_remote;
		free(next->rest_listen);
		next->rest_listen = xstrdup(purged->conf->rest_listen);
	}
	if (next->rest_enabled && !next->tokens) { /* still serving: keep the tokens it was started with */
		next->tokens = purged->conf->tokens;
		purged->conf->tokens = NULL;
	}
}

int supervisor_reload(struct config_errors *errs)
{
	struct daemon_conf *next = NULL;
	int r = config_load(purged->conf_path, &next, errs);

	if (r < 0) {
		log_warnx("reload: %s rejected; the running configuration stays:", purged->conf_path);
		for (size_t i = 0; i < errs->n; i++)
			log_warnx("  %s", errs->v[i]);
		return -EINVAL;
	}
	notify("RELOADING=1");
	keep_startup_keys(next);
	config_free(purged->conf);
	purged->conf = next;
	log_info("reload: %s loaded, %zu target(s)", purged->conf_path, next->n_targets);
	notify("READY=1");
	runner_schedule();
	return 0;
}

static void on_stop_tick(uv_timer_t *t)
{
	(void)t;
	if (purged->running > 0 && mono_usec() < stop_deadline)
		return;
	if (purged->running > 0)
		log_warnx("shutdown: %u executor(s) still alive after the grace period; leaving them", purged->running);
	uv_timer_stop(&stop_timer);
	uv_stop(purged->loop);
}

static void begin_stop(int signum)
{
	if (purged->stopping)
		return;
	purged->stopping = true;
	notify("STOPPING=1");
	log_info("received %s: no new requests; stopping %u running task(s)", sigabbrev_np(signum), purged->running);
	ctl_close_listener();
	rest_child_stop();
	runner_stop_all();
	/* Executors get cancel_grace to go after SIGTERM, then SIGKILL; allow a moment more to reap them. */
	stop_deadline = mono_usec() + ((int64_t)purged->conf->cancel_grace + 2) * 1000000;
	uv_timer_start(&stop_timer, on_stop_tick, 0, 20);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	if (signum == SIGHUP) {
		struct config_errors errs = { 0 };
		log_info("received SIGHUP: reloading %s", purged->conf_path);
		supervisor_reload(&errs);
		config_errors_clear(&errs);
		return;
	}
	begin_stop(signum);
}

static void prepare_state_dir(const char *dir)
{
	const char *sub[] = { "manifests" };
	char err[512];

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		fatal("cannot create state_dir '%s'", dir);
	if (creds_check_private_dir(dir, "state_dir", err, sizeof(err)) < 0)
		fatalx("%s; purged keeps its journal and audit log there and refuses to start", err);
	if (access(dir, W_OK | X_OK) < 0)
		fatal("state_dir '%s' is not writable by the daemon (uid %u)", dir, (unsigned)geteuid());
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		char *p = xasprintf("%s/%s", dir, sub[i]);
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			fatal("cannot create '%s'", p);
		if (creds_check_private_dir(p, "state_dir's folder", err, sizeof(err)) < 0)
			fatalx("%s; purged refuses to start", err);
		free(p);
	}
}

static void resolve_executor_user(void)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		log_info("running as uid %u, not root: executors run as this uid (development mode)",
			 (unsigned)geteuid());
		return;
	}
	pw = getpwnam(purged->conf->executor_user);
	if (!pw)
		fatalx("executor_user '%s' does not exist; create it (useradd --system --no-create-home %s) or set "
		       "executor_user to an unprivileged user", purged->conf->executor_user, purged->conf->executor_user);
	if (pw->pw_uid == 0)
		fatalx("executor_user '%s' is root; executors must run unprivileged", purged->conf->executor_user);
	purged->drop_privileges = true;
	purged->executor_uid = pw->pw_uid;
	purged->executor_gid = pw->pw_gid;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int supervisor_run(struct daemon_conf *conf, const char *conf_path, bool test_probes)
{
	static struct purged state;

	purged = &state;
	purged->loop = uv_default_loop();
	outq_setup(purged->loop);
	purged->conf = conf;
	purged->conf_path = xstrdup(conf_path);
	purged->audit_fd = -1;
	purged->test_probes = test_probes;
	purged->started_mono = mono_usec();
	task_table_init(&purged->tasks);
	umask(077);
	/* This process holds every credential: no core dumps, and no ptrace or /proc/PID/mem for other uids. */
	struct rlimit no_core = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &no_core) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("cannot turn core dumps off");
	signal(SIGPIPE, SIG_IGN);

	resolve_executor_user();
	purged->executor_path = exec_find_helper("purged-executor");
	purged->executor_http_path = exec_find_helper("purged-executor-http");
	if (access(purged->executor_path, X_OK) < 0)
		fatal("cannot run the executor '%s'; reinstall purged", purged->executor_path);
	if (access(purged->executor_http_path, X_OK) < 0)
		fatal("cannot run the executor '%s'; reinstall purged", purged->executor_http_path);
	prepare_state_dir(conf->state_dir);
	if (audit_open(conf->state_dir) < 0)
		fatal("cannot open the audit log in '%s'", conf->state_dir);
	runner_restore();
	archives_start();
	ctl_listen(conf->control_socket, conf->control_group);
	rest_child_start();

	uv_signal_init(purged->loop, &sig_term);
	uv_signal_init(purged->loop, &sig_int);
	uv_signal_init(purged->loop, &sig_hup);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_signal_start(&sig_hup, on_signal, SIGHUP);
	uv_timer_init(purged->loop, &stop_timer);
	uv_timer_init(purged->loop, &trim_timer);
	uv_timer_start(&trim_timer, on_trim, 5000, 5000);
	uv_unref((uv_handle_t *)&trim_timer);

	log_info("purged %s ready: %zu target(s), executor %s, state in %s", PURGED_VERSION, conf->n_targets,
		 purged->executor_path, conf->state_dir);
	notify("READY=1");
	uv_run(purged->loop, UV_RUN_DEFAULT);

	/* Teardown: close every handle, let their callbacks run, free what is left. */
	ctl_close_all();
	ctl_close_listener();
	uv_walk(purged->loop, close_walk, NULL);
	uv_run(purged->loop, UV_RUN_DEFAULT);
	uv_loop_close(purged->loop);
	log_info("stopped");

	purged->journal = journal_close(purged->journal);
	audit_close();
	task_table_free(&purged->tasks);
	purged->conf = config_free(purged->conf);
	free(purged->executor_path);
	free(purged->executor_http_path);
	free(purged->conf_path);
	return 0;
}
