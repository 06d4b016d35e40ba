/*
 * Unit tests for daemon/runner.c (admission limits, the queue, one purge per
 * target) and spawn.c's task outcome from how an executor ended. The
 * "executor" is a real process (a script that sleeps until it is killed):
 * the runner and spawn.c run as in purged, on a real libuv loop.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/journal.h"
#include "daemon/purged.h"
#include "purged/uvio.h"
#include "unit.h"

/* ------------------------------------------------------------ spawn.c's outcome */

static enum task_state outcome(const struct exec_end *x, char *why, size_t len)
{
	return exec_end_outcome(x, why, len);
}

START_TEST(test_outcome_process_end)
{
	char why[1024];

	/* A result that says ok, and exit 0: finished, no error. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .has_result = true, .result_ok = true }, why, sizeof(why)),
			 TASK_FINISHED);
	ck_assert_str_eq(why, "");
	/* Killed by a signal, no result. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .term_signal = SIGKILL }, why, sizeof(why)), TASK_FAILED);
	ck_assert_str_eq(why, "executor killed by signal 9 (Killed)");
	ck_assert_int_eq(outcome(&(struct exec_end){ .term_signal = SIGSEGV }, why, sizeof(why)), TASK_FAILED);
	ck_assert_str_eq(why, "executor killed by signal 11 (Segmentation fault)");
	/* An exit status, with and without a result before it. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .exit_status = 3 }, why, sizeof(why)), TASK_FAILED);
	ck_assert_str_eq(why, "executor exited with status 3 without a result (see the daemon's log)");
	ck_assert_int_eq(outcome(&(struct exec_end){ .exit_status = 70, .has_result = true, .result_ok = true }, why,
				 sizeof(why)),
			 TASK_FAILED);
	ck_assert_str_eq(why, "executor exited with status 70 after its result");
	/* Exit 0 without a word. */
	ck_assert_int_eq(outcome(&(struct exec_end){ 0 }, why, sizeof(why)), TASK_FAILED);
	ck_assert_str_eq(why, "executor exited without sending a result");
	/* The backend's failure comes before how the process ended. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .has_result = true, .backend_error = "HTTP 403 on /issues",
						     .exit_status = 1 },
				 why, sizeof(why)),
			 TASK_FAILED);
	ck_assert_str_eq(why, "HTTP 403 on /issues");
	ck_assert_int_eq(outcome(&(struct exec_end){ .has_result = true }, why, sizeof(why)), TASK_FAILED);
	ck_assert_str_eq(why, "the backend reported a failure without a reason");
	/* The supervisor's own reason comes before everything. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .fail_reason = "protocol violation: frame 3 is not a message",
						     .has_result = true, .result_ok = true, .term_signal = SIGKILL },
				 why, sizeof(why)),
			 TASK_FAILED);
	ck_assert_str_eq(why, "protocol violation: frame 3 is not a message");
}
END_TEST

START_TEST(test_outcome_stops)
{
	char why[1024];

	/* The task timeout: SIGTERM, the executor reconciled and reported a failure. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .stop_reason = "timed out after 5 s (task_timeout)",
						     .stop_sent = true, .stop_grace = 60, .has_result = true,
						     .backend_error = "stopped" },
				 why, sizeof(why)),
			 TASK_FAILED);
	ck_assert_str_eq(why, "timed out after 5 s (task_timeout); the executor stopped and reconciled within 60 s "
			      "(cancel_grace): stopped");
	/* ... or had to be killed when the grace ran out. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .stop_reason = "timed out after 5 s (task_timeout)",
						     .stop_sent = true, .stop_killed = true, .stop_grace = 2,
						     .term_signal = SIGKILL },
				 why, sizeof(why)),
			 TASK_FAILED);
	ck_assert_ptr_nonnull(strstr(why, "timed out after 5 s (task_timeout); the executor did not stop within 2 s "
					  "(cancel_grace) and was killed"));
	/* A cancel is cancelled, with the canceller's words first. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .cancel_requested = true, .cancel_error = "cancelled by alice",
						     .stop_sent = true, .stop_grace = 0, .term_signal = SIGTERM },
				 why, sizeof(why)),
			 TASK_CANCELLED);
	ck_assert_str_eq(why, "cancelled by alice; the executor ended without reconciling; plan the target again to "
			      "see what is left");
	/* A stop that arrives as the purge completed: finished. */
	ck_assert_int_eq(outcome(&(struct exec_end){ .cancel_requested = true, .cancel_error = "cancelled by alice",
						     .stop_sent = true, .has_result = true, .result_ok = true },
				 why, sizeof(why)),
			 TASK_FINISHED);
	ck_assert_str_eq(why, "");
	/* A long backend error is cut to the buffer, never overrun. */
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char small[64];
	outcome(&(struct exec_end){ .has_result = true, .backend_error = big }, small, sizeof(small));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

/* ------------------------------------------------------------ the runner */

static char dir[] = "/tmp/test_runner.XXXXXX";
static struct purged state;
static const struct caller root = { .uid = 0, .gid = 0, .pid = 1, .name = "root", .identity = "uid 0",
				    .door = "ctl", .allowed = true };

static void setup(void)
{
	char path[256], text[2048];
	struct config_errors errs = { 0 };
	struct daemon_conf *conf = NULL;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* The executor: a process that lives until it is killed, like a purge that takes long. */
	snprintf(path, sizeof(path), "%s/executor", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("#!/bin/sh\nexec sleep 60\n", f);
	fclose(f);
	chmod(path, 0755);
	snprintf(text, sizeof(text),
		 "[daemon]\nstate_dir = %s\nmax_executors = 2\nmax_queue = 2\ncancel_grace = 0\n"
		 "[target a]\ntype = noop\n[target b]\ntype = noop\n[target c]\ntype = noop\n"
		 "[target d]\ntype = noop\n[target e]\ntype = noop\n",
		 dir);
	int r = config_parse("test.conf", text, strlen(text), &conf, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	ck_assert_int_eq(r, 0);

	purged = &state;
	purged->loop = uv_default_loop();
	outq_setup(purged->loop);
	purged->conf = conf;
	purged->conf_path = strdup("test.conf");
	purged->audit_fd = -1;
	purged->executor_path = strdup(path);
	purged->executor_http_path = strdup(path);
	task_table_init(&purged->tasks);
	runner_restore();
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct task *submit(const char *target, const char *op, enum purge_err *e)
{
	char msg[512];
	struct task *t = runner_submit(target, op, NULL, &root, e, msg, sizeof(msg));
	if (t)
		runner_schedule(); /* as ops.c does after each admission */
	return t;
}

/* Run the loop until @t has ended (its executor's exit settled), or 10 s. */
static void run_until_final(const struct task *t)
{
	for (int i = 0; i < 1000 && !task_state_is_final(t->state); i++) {
		uv_run(purged->loop, UV_RUN_NOWAIT);
		usleep(10000);
	}
	ck_assert_msg(task_state_is_final(t->state), "task %s still %s", t->id, task_state_to_string(t->state));
}

static void expect(const struct task *t, enum task_state want)
{
	ck_assert_ptr_nonnull(t);
	ck_assert_msg(t->state == want, "task %s is %s, expected %s", t->id, task_state_to_string(t->state),
		      task_state_to_string(want));
}

START_TEST(test_limits_and_queue)
{
	enum purge_err e = 0;
	char msg[512];
	struct task *a = submit("a", "purge", &e), *b = submit("b", "purge", &e);

	/* max_executors = 2: the first two start, in the order they came. */
	expect(a, TASK_STARTED);
	expect(b, TASK_STARTED);
	ck_assert_uint_eq(purged->running, 2);
	/* One active purge per target, whatever its state; a plan of it is not one. */
	ck_assert_ptr_null(submit("a", "purge", &e));
	ck_assert_int_eq(e, PURGE_ERR_CONFLICT);
	ck_assert_ptr_eq(runner_active_purge("a"), a);
	ck_assert_ptr_null(runner_active_purge("c"));
	/* Then the queue: max_queue = 2. */
	struct task *c = submit("c", "purge", &e), *d = submit("d", "purge", &e);
	expect(c, TASK_QUEUED);
	expect(d, TASK_QUEUED);
	ck_assert_uint_eq(purged->queued, 2);
	ck_assert_ptr_null(runner_submit("e", "purge", NULL, &root, &e, msg, sizeof(msg)));
	ck_assert_int_eq(e, PURGE_ERR_BUSY);
	ck_assert_str_eq(msg, "queue full: 2 tasks running and 2 queued (max_queue = 2); try again later");
	ck_assert_ptr_null(submit("c", "purge", &e)); /* a queued purge is the target's active one too */
	ck_assert_int_eq(e, PURGE_ERR_CONFLICT);
	ck_assert_ptr_null(runner_submit("nope", "purge", NULL, &root, &e, msg, sizeof(msg)));
	ck_assert_int_eq(e, PURGE_ERR_NOT_FOUND);

	/* A freed slot goes to the oldest queued task: c, not d. */
	ck_assert_int_eq(runner_cancel(a, &root, &e, msg, sizeof(msg)), 0);
	run_until_final(a);
	ck_assert_int_eq(a->state, TASK_CANCELLED);
	ck_assert_ptr_nonnull(strstr(a->error, "cancelled by root"));
	ck_assert_int_eq(c->state, TASK_STARTED);
	ck_assert_int_eq(d->state, TASK_QUEUED);
	ck_assert_uint_eq(purged->running, 2);
	ck_assert_uint_eq(purged->queued, 1);
	/* An ended task cannot be cancelled again; a queued one ends at once and frees its place. */
	ck_assert_int_eq(runner_cancel(a, &root, &e, msg, sizeof(msg)), -EALREADY);
	ck_assert_int_eq(e, PURGE_ERR_CONFLICT);
	ck_assert_int_eq(runner_cancel(d, &root, &e, msg, sizeof(msg)), 0);
	ck_assert_int_eq(d->state, TASK_CANCELLED);
	ck_assert_uint_eq(purged->queued, 0);
	struct task *a2 = submit("a", "purge", &e); /* a's purge has ended: a may be purged again */
	ck_assert_ptr_nonnull(a2);
	ck_assert_int_eq(a2->state, TASK_QUEUED);

	/* Shutdown: every started executor is stopped, queued tasks end. */
	purged->stopping = true;
	runner_stop_all();
	run_until_final(b);
	run_until_final(c);
	ck_assert_int_eq(a2->state, TASK_CANCELLED);
	ck_assert_uint_eq(purged->running, 0);
	ck_assert_uint_eq(purged->queued, 0);
	ck_assert_ptr_null(runner_submit("e", "purge", NULL, &root, &e, msg, sizeof(msg)));
	ck_assert_int_eq(e, PURGE_ERR_UNAVAILABLE);
	purged->journal = journal_close(purged->journal);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runner");
	unit_case(s, "outcome", NULL, NULL, (const TTest *[]){ test_outcome_process_end, test_outcome_stops, NULL });
	unit_case(s, "queue", setup, teardown, (const TTest *[]){ test_limits_and_queue, NULL });
	return unit_run(s);
}
