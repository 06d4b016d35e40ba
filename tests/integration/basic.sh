#!/bin/bash
# The happy path through purgectl: status, targets, plan, purge --wait and
# --detach + wait, task listing, JSON documents, usage errors and exit codes.
. "$(dirname "$0")/lib.sh"

write_config <<'EOF2'
[target demo]
type = noop
objects = 20
step_ms = 5
EOF2
check "configuration check passes" "$T/bin/purged" -c "$CONF" -t
start_purged || { finish; exit 1; }

expect_code 0 "status" ctl status
expect_contains "status names the version" "$OUT" "purged 0.1.0"
expect_code 0 "status --json" ctl --json status
for key in version uptime running queued; do
	check "status --json has '$key'" test "$(jf "$OUT" "has(\"$key\")")" = true
done
PURGED_SOCKET=$SOCK expect_code 0 "PURGED_SOCKET selects the socket" "$T/bin/purgectl" status

expect_code 0 "targets" ctl targets
expect_contains "targets lists demo" "$OUT" "demo"
expect_code 0 "targets --json" ctl --json targets
expect_eq "targets --json is an array with demo" "$(jf "$OUT" '.[0].name')" "demo"

expect_code 0 "plan demo" ctl plan demo
expect_contains "plan prints kinds and counts" "$OUT" "objects  20"
expect_code 0 "plan --json" ctl --json plan demo
expect_eq "plan counts objects" "$(jf "$OUT" '.counts.objects')" "20"
expect_eq "plan is a finished task" "$(jf "$OUT" '.status')" "finished"

expect_code 0 "purge --yes --wait" ctl --json purge demo --yes --wait
expect_eq "purge finished" "$(jf "$OUT" '.status')" "finished"
expect_eq "purge counted 20 objects" "$(jf "$OUT" '.counts.objects')" "20"
expect_eq "progress reached 20/20" "$(jf "$OUT" '.progress.done')/$(jf "$OUT" '.progress.total')" "20/20"
expect_contains "--wait shows progress on stderr" "$ERR" "progress: 20/20 objects"

expect_code 0 "purge --detach" ctl --json purge demo --yes --detach
ID=$(jf "$OUT" .id)
expect_one_of "detach returns a queued or started task" "$(jf "$OUT" .status)" queued started
expect_code 0 "wait ID" ctl --json wait "$ID"
expect_eq "waited task finished" "$(jf "$OUT" .status)" "finished"
expect_code 0 "task ID" ctl task "$ID"
expect_contains "task shows its status" "$OUT" "status:     finished"
expect_code 0 "tasks" ctl tasks
expect_contains "tasks table has a header" "$OUT" "ID"
expect_contains "tasks table lists the task" "$OUT" "$ID"
expect_code 0 "tasks --json" ctl --json tasks --limit 2
expect_eq "tasks --json is an array, newest first" "$(jf "$OUT" '.[0].id')" "$ID"
expect_eq "tasks --limit is honoured" "$(jf "$OUT" 'length')" "2"
expect_code 0 "tasks --target filters" ctl --json tasks --target demo --offset 1 --limit 1
expect_eq "offset skips the newest" "$(jf "$OUT" 'length')" "1"
check "offset result is older" test "$(jf "$OUT" '.[0].id')" != "$ID"

# Errors and exit codes.
expect_code 2 "no command is a usage error" ctl
expect_code 2 "unknown command" ctl frobnicate
expect_contains "unknown command is named" "$ERR" "unknown command 'frobnicate'"
expect_code 2 "bad task id" ctl task nope
expect_code 2 "missing argument" ctl purge
expect_code 5 "unknown target" ctl plan nosuch
expect_contains "unknown target is named" "$ERR" "no target 'nosuch'"
expect_code 5 "unknown task" ctl task 01a227ad-f7bc-7304-b19f-9b57b020426a
expect_code 5 "unknown task with --json" ctl --json task 01a227ad-f7bc-7304-b19f-9b57b020426a
expect_eq "--json error document" "$(jf "$OUT" .error.code)" "not_found"
expect_code 9 "purge without --yes and no terminal is refused" ctl purge demo </dev/null
expect_contains "refusal says why" "$ERR" "pass --yes"
expect_code 3 "unreachable socket" "$T/bin/purgectl" -s "$T/nope.sock" status
expect_code 0 "--help" ctl --help
expect_contains "--help documents exit codes" "$OUT" "6 conflict"
expect_code 0 "--version" ctl --version
expect_code 0 "purged --version" "$T/bin/purged" --version
expect_code 0 "purged --help" "$T/bin/purged" --help

stop_purged TERM
expect_eq "SIGTERM exits 0" "$STOP_STATUS" 0
check "the socket is removed at exit" test ! -e "$SOCK"
check "the audit log recorded the purges" grep -q '"op":"purge"' "$T/state/audit.jsonl"
finish
