#!/bin/bash
# Tasks that end badly: cancel, timeout, backend failure, executor crash
# (abort) and kill -9 of an executor. The daemon stays up and runs the next task.
. "$(dirname "$0")/lib.sh"

write_config "task_timeout = 2" <<'EOF2'
[target slow]
type = noop
objects = 1000
step_ms = 20
[target crash]
type = noop
objects = 10
step_ms = 1
crash_at = 3
[target failing]
type = noop
objects = 10
step_ms = 1
fail_at = 4
[target quick]
type = noop
objects = 3
step_ms = 1
EOF2
start_purged || { finish; exit 1; }

# Cancel a running task.
expect_code 0 "purge slow (detached)" ctl --json purge slow --yes --detach
ID=$(jf "$OUT" .id)
check "slow task starts" wait_until 5 status_is "$ID" started
expect_code 0 "cancel it" ctl --json cancel "$ID"
expect_code 8 "wait reports cancelled" ctl --json wait "$ID"
expect_eq "status cancelled" "$(jf "$OUT" .status)" "cancelled"
expect_contains "cancel says who" "$(jf "$OUT" .error)" "cancelled by"
expect_code 6 "cancelling an ended task is a conflict" ctl cancel "$ID"

# Timeout: 1000 x 20 ms exceeds task_timeout = 2 s.
expect_code 7 "timed out task fails" ctl --json purge slow --yes --wait
expect_contains "timeout reason" "$(jf "$OUT" .error)" "timed out after 2 s"

# Backend failure.
expect_code 7 "fail_at fails the task" ctl --json purge failing --yes --wait
expect_contains "backend's reason is kept" "$(jf "$OUT" .error)" "failing at object 4 of 10"
expect_eq "counts of what was done" "$(jf "$OUT" .counts.objects)" "3"

# Crash: abort() in the executor.
expect_code 7 "crashing executor fails the task" ctl --json purge crash --yes --wait
expect_eq "signal 6 reported" "$(jf "$OUT" .error)" "executor killed by signal 6 (Aborted)"

# kill -9 of an executor.
expect_code 0 "purge slow again" ctl --json purge slow --yes --detach
ID=$(jf "$OUT" .id)
check "started" wait_until 5 status_is "$ID" started
EPID=$(executor_pid "$ID")
check "its executor is found" test -n "$EPID"
kill -KILL "$EPID"
check "task fails" wait_until 5 status_is "$ID" failed
expect_eq "signal 9 reported" "$(ctl --json task "$ID" | jq -r .error)" "executor killed by signal 9 (Killed)"

check "the daemon is still alive" kill -0 "$PURGED_PID"
expect_code 0 "the next task runs" ctl --json purge quick --yes --wait
expect_eq "and finishes" "$(jf "$OUT" .status)" "finished"
check "log names the failures" grep -q "executor killed by signal 6" "$LOG"
stop_purged TERM
finish
