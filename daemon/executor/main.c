/*
 * purged-executor: one per task. Locks itself down, reads its job from fd 3,
 * enters the sandbox the job's backend needs, runs the backend, streams
 * progress, sends one result, exits. Logs go to fd 2, relayed by the
 * supervisor. Executor only; never run it by hand.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "buildconf.h"
#include "daemon/executor/archive.h"
#include "daemon/executor/family.h"
#include "purged/messages.h"
#include "purged/log.h"
#include "purged/util.h"

#define MSG_FD 3

static const struct backend_ops *find_backend(const char *type)
{
	for (size_t i = 0; family_backends[i]; i++)
		if (strcmp(family_backends[i]->type, type) == 0)
			return family_backends[i];
	return NULL;
}

static int send_result(int fd, const struct msg_result *res)
{
	json_t *msg = msg_result_pack(res);
	int r = msg ? frame_send(fd, msg) : -ENOMEM;
	json_decref(msg);
	return r;
}

/*
 * The supervisor that sent the job is not of this build: the package was
 * upgraded under a running purged, which spawns the new helpers. Refuse,
 * saying so, in the form the supervisor reads: protocol 1 had no "kind" and
 * called the result "outcome".
 */
static int refuse_skew(int their_protocol, const char *their_build)
{
	char why[300];
	json_t *msg;

	if (their_build)
		snprintf(why, sizeof(why), "restart purged: it runs version %s, its helpers are version %s "
			 "(systemctl restart purged); nothing was done", their_build, PURGED_VERSION);
	else
		snprintf(why, sizeof(why), "restart purged: it runs protocol %d, its helpers are version %s (protocol "
			 "%d) (systemctl restart purged); nothing was done", their_protocol, PURGED_VERSION,
			 PURGE_PROTO_VERSION);
	log_warnx("%s", why);
	if (their_protocol == 1)
		msg = json_pack("{s:{s:b, s:s}}", "outcome", "ok", 0, "error", why); /* protocol 1's result */
	else
		msg = msg_result_pack(&(struct msg_result){ .ok = false, .error = why });
	int r = msg ? frame_send(MSG_FD, msg) : -ENOMEM;
	json_decref(msg);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct backend_ctx ctx = { .fd = MSG_FD };
	struct sandbox_policy policy = { 0 };
	struct sandbox_report rep;
	struct proto_reader rd;
	struct proto_error perr = { 0 };
	enum purge_msg_type type;
	const struct backend_ops *ops;
	json_t *msg = NULL;
	struct stat st;
	char err[256];
	int r;

	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("purged-executor %s: runs one purge task for purged(8); started by purged only\n",
		       PURGED_VERSION);
		return 0;
	}
	log_init("executor", false);
	if (fstat(MSG_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "purged-executor: fd 3 is not a socket: this program is started by purged, not by hand\n");
		return 2;
	}
	if (argc > 1)
		log_settag(argv[1]); /* the task id */
	/*
	 * Die with the supervisor: an executor whose supervisor is gone would go
	 * on deleting beside a restarted one that has already marked its task
	 * failed, with nobody to record what it deletes. A supervisor already
	 * gone before this line closed the link: reading the job sees EOF.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fatal("cannot ask to die with purged (prctl PR_SET_PDEATHSIG)");
	/* SIGTERM is the supervisor's stop request (cancel, task timeout): drivers see it through
	 * backend_stopping() and reconcile before they end; SIGKILL follows after stop_grace. */
	backend_stop_init();
	/* A backend that closes its end (Redis' protected mode, a proxy) is an error to report, not a death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	/* Everything that needs no input first: fds (the archive's, fd 4, kept until the job says whether
	 * there is one), environment, limits, dumpable. */
	if (sandbox_prepare(ARCHIVE_FD, 64, false, err, sizeof(err)) < 0)
		fatalx("sandbox: %s", err);

	proto_reader_init(&rd);
	r = frame_recv(MSG_FD, &rd, PURGE_MSG_MASK(PURGE_MSG_JOB), &type, &msg, &perr);
	if (r < 0 && perr.peer_build[0])
		return refuse_skew(PURGE_PROTO_VERSION, perr.peer_build);
	if (r < 0 && perr.peer_version)
		return refuse_skew(perr.peer_version, NULL);
	if (r < 0)
		fatalx("no valid job from the supervisor: %s", r == -EPIPE ? "connection closed" : perr.message);
	struct msg_job job;
	msg_job_unpack(msg, &job);
	if (strcmp(job.build, PURGED_VERSION) != 0)
		return refuse_skew(PURGE_PROTO_VERSION, job.build);
	ctx.task_id = job.task_id;
	ctx.target = job.target;
	ctx.settings = job.settings;
	ctx.secrets = job.secrets;
	ctx.dry_run = job.dry_run;
	ctx.operation = job.operation;
	if (!ctx.operation)
		ctx.operation = ctx.dry_run ? "plan" : "purge";
	ctx.options = job.options;
	json_t *no_options = json_object();
	if (!ctx.options)
		ctx.options = no_options;
	ctx.counts = json_object();

	ops = find_backend(job.type);
	if (!ops)
		fatalx("backend type '%s' (target '%s') is not served by %s", job.type,
		       ctx.target, argv[0]);
	family_init();
	/* The archive (or none: then RLIMIT_FSIZE 0, no file written) before any backend byte is read. */
	r = archive_open(&ctx, job.archive, ops->type);
	if (r == 0 && !backend_archiving(&ctx)) {
		/* No archive to write: this process writes no file at all. */
		struct rlimit none = { 0, 0 };
		if (setrlimit(RLIMIT_FSIZE, &none) < 0)
			r = backend_fail(&ctx, "setrlimit(RLIMIT_FSIZE) failed: %s", strerror(errno));
	}
	if (r == 0)
		r = ops->prepare(&ctx, &policy);
	if (sandbox_enter(&policy, &rep, err, sizeof(err)) < 0)
		fatalx("sandbox: %s; refusing to run the backend unconfined", err);
	log_debug("sandbox entered: Landlock ABI %d%s, seccomp on", rep.landlock_abi,
		  rep.landlock_net ? " with TCP rules" : "");

	if (r == 0)
		r = ops->run(&ctx);
	family_finish(&ctx);
	json_wipe_strings((json_t *)ctx.secrets);
	backend_flush(&ctx); /* every confirmed deletion before the result */
	struct msg_result res = { .ok = r == 0, .counts = ctx.counts, .error = r == 0 ? NULL : ctx.error,
				  .errors = ctx.errors, .warnings = ctx.warnings };
	char sha[65];
	archive_close(&ctx, &res, sha);
	r = send_result(MSG_FD, &res);
	if (r < 0)
		fatalx("cannot send the result to the supervisor: %s", strerror(-r));
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		log_info("done: peak RSS %ld KiB (%s)", ru.ru_maxrss, ctx.dry_run ? "plan" : "purge");
	json_decref(ctx.counts);
	json_decref(ctx.errors);
	json_decref(ctx.warnings);
	json_decref(ctx.remaining);
	json_decref(no_options);
	json_decref(msg);
	proto_reader_free(&rd);
	return 0;
}
