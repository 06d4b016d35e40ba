#!/bin/bash
# Limits: one running purge per target (conflict), max_executors running at
# once, max_queue queued (busy beyond).
. "$(dirname "$0")/lib.sh"

write_config "max_executors = 1" "max_queue = 1" <<'EOF2'
[target a]
type = noop
objects = 200
step_ms = 10
[target b]
type = noop
objects = 1
step_ms = 1
[target c]
type = noop
objects = 1
step_ms = 1
EOF2
start_purged || { finish; exit 1; }

expect_code 0 "purge a" ctl --json purge a --yes --detach
A=$(jf "$OUT" .id)
check "a runs" wait_until 5 status_is "$A" started
expect_code 6 "a second purge of a is a conflict" ctl --json purge a --yes --detach
expect_eq "conflict code" "$(jf "$OUT" .error.code)" "conflict"
expect_contains "conflict names the running task" "$(jf "$OUT" .error.message)" "$A"
expect_code 0 "purge b is queued (one executor slot)" ctl --json purge b --yes --detach
B_ID=$(jf "$OUT" .id)
expect_eq "b waits in the queue" "$(task_status "$B_ID")" "queued"
expect_code 6 "purge c: queue full" ctl --json purge c --yes --detach
expect_eq "busy code" "$(jf "$OUT" .error.code)" "busy"
expect_code 0 "status while busy" ctl --json status
expect_eq "one running" "$(jf "$OUT" .running)" "1"
expect_eq "one queued" "$(jf "$OUT" .queued)" "1"
expect_code 0 "cancel a frees the slot" ctl cancel "$A"
expect_code 0 "b then runs to the end" ctl --json wait "$B_ID"
expect_eq "b finished" "$(jf "$OUT" .status)" "finished"
expect_code 0 "c is accepted now" ctl --json purge c --yes --wait
check "audit recorded the refusals" grep -q '"outcome":"busy"' "$T/state/audit.jsonl"
check "audit recorded the conflict" grep -q '"outcome":"conflict"' "$T/state/audit.jsonl"
stop_purged TERM
finish
