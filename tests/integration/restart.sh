#!/bin/bash
# Durability: kill -9 of purged with tasks queued and running, restart: every
# task is still listed, those in flight failed "interrupted by daemon
# restart", none re-run. A torn journal tail is cut and reported. SIGTERM
# cancels running tasks and records their end.
. "$(dirname "$0")/lib.sh"

{
	for i in $(seq -w 1 20); do printf '[target t%s]\ntype = noop\nobjects = 500\nstep_ms = 10\n' "$i"; done
	printf '[target done]\ntype = noop\nobjects = 1\nstep_ms = 0\n'
	# One object every 30 s: its executor writes nothing for long, so only its link can tell it purged died.
	printf '[target quiet]\ntype = noop\nobjects = 2\nstep_ms = 30000\n'
} | write_config "max_executors = 3" "max_queue = 20"
start_purged || { finish; exit 1; }

expect_code 0 "a finished task before the crash" ctl --json purge done --yes --wait
DONE=$(jf "$OUT" .id)
OUT=$(ctl --json purge quiet --yes --detach)
QUIET=$(jf "$OUT" .id)
check "a quiet purge runs" wait_until 5 status_is "$QUIET" started
QPID=$(executor_pid "$QUIET")
IDS=()
for i in $(seq -w 1 20); do
	OUT=$(ctl --json purge "t$i" --yes --detach)
	IDS+=("$(jf "$OUT" .id)")
done
check "two of the 20 tasks run" wait_until 5 status_is "${IDS[1]}" started
expect_eq "the others are queued" "$(ctl --json status | jq .queued)" "18"
stop_purged KILL
# An executor must not go on deleting beside a restarted supervisor that has marked its task failed.
check "the quiet purge's executor (pid $QPID) died with purged" wait_until 2 proc_gone "$QPID"
sleep 0.2
start_purged || { finish; exit 1; }

LISTED=$(ctl --json tasks --limit 100)
for id in "${IDS[@]}"; do
	expect_eq "task $id: listed, failed, interrupted by daemon restart" \
		"$(jf "$LISTED" ".[] | select(.id == \"$id\") | \"\(.status): \(.error)\"")" "failed: interrupted by daemon restart"
done
expect_eq "all 20, the quiet one and the finished one are listed, none lost" "$(jf "$LISTED" length)" "22"
expect_eq "the finished task stays finished" "$(task_status "$DONE")" "finished"
expect_code 0 "status after restart" ctl --json status
expect_eq "nothing was re-run" "$(jf "$OUT" .running)/$(jf "$OUT" .queued)" "0/0"
# Dispatch happens right after the journal is read: watch long enough for a re-run to show.
never_within 2 "no executor was started again" pgrep -f "^$T/bin/purged-executor"
check "restart is logged" grep -q "21 interrupted by the restart marked failed" "$LOG"

# A torn tail: half a record at the end of the journal.
stop_purged TERM
printf '1234abcd {"id":"01a2' >>"$T/state/journal"
start_purged || { finish; exit 1; }
check "the torn tail is reported" grep -q "torn or corrupt tail of 20 bytes truncated" "$LOG"
expect_code 0 "tasks survive the torn tail" ctl --json tasks --limit 100
expect_eq "all 22 tasks listed" "$(jf "$OUT" length)" "22"

# SIGTERM with a running task: cancelled, recorded, exit 0.
OUT=$(ctl --json purge t01 --yes --detach)
RUNNING=$(jf "$OUT" .id)
check "t01 runs" wait_until 5 status_is "$RUNNING" started
stop_purged TERM
expect_eq "SIGTERM exits 0" "$STOP_STATUS" 0
check "the executor is gone" test -z "$(executor_pid "$RUNNING")"
start_purged || { finish; exit 1; }
expect_eq "the running task was cancelled by the shutdown" "$(task_status "$RUNNING")" "cancelled"
expect_contains "…and says so" "$(ctl --json task "$RUNNING" | jq -r .error)" "daemon shutdown"
stop_purged TERM
finish
