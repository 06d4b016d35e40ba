#!/bin/bash
# Truthful records (the truthful-purges issue): a purge's counts and manifest
# are what its executor confirmed as it went, kept when the task fails, is
# cancelled, times out or its executor is killed; a cancel or timeout lets the
# executor stop and reconcile within cancel_grace, then kills it, and the task
# says which; the post-condition fails a purge that leaves objects behind (noop
# leave = N; a real redis-server written to during a CRDB purge). Then a
# compromised executor (the fail-closed issue): whatever it sends, it is
# killed, its task fails with a precise reason that is journaled and shown,
# and purged stays up.
. "$(dirname "$0")/lib.sh"

REDIS_PID=
WRITER_PID=
stop_peers() {
	[ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
}
trap 'stop_peers; cleanup' EXIT

# config GRACE [EXTRA...]: write_config (stdin, EXTRA), with cancel_grace = GRACE instead of lib.sh's 1.
config() {
	local grace=$1
	shift
	write_config "$@"
	sed -i "s/^cancel_grace = 1\$/cancel_grace = $grace/" "$CONF"
}
# manifest_ids ID: the ids of task ID's manifest, one a line.
manifest_ids() { ctl --json task "$1" --manifest | jq -r '.[].id'; }
# contiguous FILE: the lines of FILE are 1..N in order.
contiguous() { awk '$0 != NR { bad = 1 } END { exit bad }' "$1"; }

config 10 "task_timeout = 2" <<'EOF2'
[target slow]
type = noop
objects = 1000
step_ms = 20
[target failing]
type = noop
objects = 10
step_ms = 1
fail_at = 4
[target stubborn]
type = noop
objects = 1000
step_ms = 20
reconcile_ms = 30000
[target leaky]
type = noop
objects = 30
step_ms = 1
leave = 25
[target clean]
type = noop
objects = 30
step_ms = 1
EOF2
start_purged || { finish; exit 1; }

# --- a backend failure keeps what was confirmed
expect_code 7 "fail_at fails the task" ctl --json purge failing --yes --wait
ID=$(jf "$OUT" .id)
expect_eq "…counting the 3 objects deleted before it" "$(jf "$OUT" .counts.objects)" "3"
manifest_ids "$ID" >"$T/ids"
expect_eq "…which the manifest lists" "$(tr '\n' ' ' <"$T/ids")" "1 2 3 "

# --- a cancel: the executor stops and reconciles, well within cancel_grace
expect_code 0 "purge slow (detached)" ctl --json purge slow --yes --detach
ID=$(jf "$OUT" .id)
check "…deletes" wait_until 5 sh -c "[ \"\$(ctl --json task $ID | jq -r '.counts.objects // 0')\" -ge 5 ]"
check "…its confirmed count is live in the task" test "$(ctl --json task "$ID" | jq -r .counts.objects)" -ge 5
S0=$SECONDS
expect_code 0 "cancel it" ctl --json cancel "$ID"
expect_code 8 "wait reports cancelled" ctl --json wait "$ID"
check "…in less than the 10 s grace" test $((SECONDS - S0)) -le 3
expect_contains "…saying who cancelled" "$(jf "$OUT" .error)" "cancelled by"
expect_contains "…and that the executor reconciled" "$(jf "$OUT" .error)" "the executor stopped and reconciled within 10 s"
expect_contains "…with the driver's own account" "$(jf "$OUT" .error)" "noop: stopped on request after"
N=$(jf "$OUT" .counts.objects)
check "…counts are kept ($N)" test "$N" -gt 0
manifest_ids "$ID" >"$T/ids"
expect_eq "…the manifest holds as many" "$(wc -l <"$T/ids")" "$N"
check "…objects 1..$N, each once" contiguous "$T/ids"
expect_contains "…and the driver's count agrees" "$(jf "$OUT" .error)" "after $N of 1000 objects"

# --- a task timeout: the same stop, then failed
expect_code 7 "a timed-out task fails" ctl --json purge slow --yes --wait
ID=$(jf "$OUT" .id)
expect_contains "…saying it timed out" "$(jf "$OUT" .error)" "timed out after 2 s (task_timeout); the executor stopped and reconciled"
N=$(jf "$OUT" .counts.objects)
check "…keeping its counts ($N)" test "$N" -gt 10
expect_eq "…and as many manifest entries" "$(manifest_ids "$ID" | wc -l)" "$N"

# --- an executor that does not stop within the grace is killed, and the task says so
expect_code 0 "purge stubborn (reconciles for 30 s)" ctl --json purge stubborn --yes --detach
ID=$(jf "$OUT" .id)
check "…deletes" wait_until 5 sh -c "[ \"\$(ctl --json task $ID | jq -r '.counts.objects // 0')\" -ge 3 ]"
S0=$SECONDS
expect_code 0 "cancel it" ctl --json cancel "$ID"
expect_code 8 "…cancelled" ctl --json wait "$ID"
check "…when the 10 s grace ran out, not before ($((SECONDS - S0)) s)" test $((SECONDS - S0)) -ge 9 -a $((SECONDS - S0)) -le 13
expect_contains "…saying it was killed without reconciling" "$(jf "$OUT" .error)" "did not stop within 10 s (cancel_grace) and was killed"
N=$(jf "$OUT" .counts.objects)
check "…keeping what it had reported ($N)" test "$N" -ge 3
expect_eq "…in counts and manifest alike" "$(manifest_ids "$ID" | wc -l)" "$N"

# --- kill -9 mid-purge keeps what had been reported
expect_code 0 "purge slow again" ctl --json purge slow --yes --detach
ID=$(jf "$OUT" .id)
check "…deletes" wait_until 5 sh -c "[ \"\$(ctl --json task $ID | jq -r '.counts.objects // 0')\" -ge 10 ]"
EPID=$(executor_pid "$ID")
check "its executor is found" test -n "$EPID"
kill -KILL "$EPID"
check "the task fails" wait_until 5 status_is "$ID" failed
OUT=$(ctl --json task "$ID")
expect_eq "…killed by signal 9" "$(jf "$OUT" .error)" "executor killed by signal 9 (Killed)"
N=$(jf "$OUT" .counts.objects)
check "…keeping its counts ($N)" test "$N" -ge 10
manifest_ids "$ID" >"$T/ids"
expect_eq "…and its manifest" "$(wc -l <"$T/ids")" "$N"
check "…objects 1..$N" contiguous "$T/ids"

# --- kill -9 of purged itself mid-purge: the restart keeps what had been confirmed
expect_code 0 "purge slow once more" ctl --json purge slow --yes --detach
ID=$(jf "$OUT" .id)
check "…deletes for over a second" wait_until 5 sh -c "[ \"\$(ctl --json task $ID | jq -r '.counts.objects // 0')\" -ge 60 ]"
EPID=$(executor_pid "$ID")
stop_purged KILL
check "the orphaned executor ends with its link" wait_until 5 proc_gone "$EPID"
start_purged || { finish; exit 1; }
OUT=$(ctl --json task "$ID")
expect_eq "the task failed" "$(jf "$OUT" .error)" "interrupted by daemon restart"
N=$(jf "$OUT" .counts.objects)
check "…keeping its counts ($N)" test "$N" -ge 60
manifest_ids "$ID" >"$T/ids"
expect_eq "…equal to its manifest's entries" "$(wc -l <"$T/ids")" "$N"
check "…objects 1..$N" contiguous "$T/ids"
expect_contains "…and warning that more may have gone" "$(jf "$OUT" '.warnings[0]')" "the executor may have deleted more: plan the target again"

# --- the post-condition
expect_code 7 "a purge that leaves objects behind fails" ctl --json purge leaky --yes --wait
ID=$(jf "$OUT" .id)
expect_contains "…saying how many remain, naming 20" "$(jf "$OUT" .error)" "25 objects remain after the purge: objects 6 'object 6', objects 7 'object 7'"
expect_contains "…20 shown, and what to do" "$(jf "$OUT" .error)" "objects 25 'object 25' (20 shown); noop leaves objects behind when 'leave' is set: set leave = 0"
expect_eq "…counting the 5 deleted" "$(jf "$OUT" .counts.objects)" "5"
expect_eq "…listed in the manifest" "$(manifest_ids "$ID" | wc -l)" "5"
expect_code 0 "a purge that leaves nothing finishes" ctl --json purge clean --yes --wait
expect_eq "…with counts = objects" "$(jf "$OUT" .counts.objects)" "30"
expect_code 0 "a plan keeps the plan's counts" ctl --json plan leaky
expect_eq "…all 30" "$(jf "$OUT" .counts.objects)" "30"

# --- every end above is journaled: a restart shows the same records
ctl --json tasks --limit 100 | jq -c '[.[] | {id, status, error, counts}]' >"$T/before"
stop_purged TERM
start_purged || { finish; exit 1; }
ctl --json tasks --limit 100 | jq -c '[.[] | {id, status, error, counts}]' >"$T/after"
check "after a restart, every task's status, error and counts are as before" cmp -s "$T/before" "$T/after"

# --- a real redis-server written to during a CRDB purge
if command -v redis-server >/dev/null; then
	RP=$(free_port)
	mkdir -p "$T/redis"
	redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/redis" \
		--enable-debug-command yes --daemonize no >"$T/redis/log" 2>&1 &
	REDIS_PID=$!
	check "redis answers" wait_until 10 sh -c "redis-cli -p $RP PING | grep -q PONG"
	G=4aa074ff-4443-4152-8f9f-268525016057
	stop_purged TERM
	write_config <<EOF2
[crdb $G]
instance.1 = redis://127.0.0.1:$RP
EOF2
	start_purged || { finish; exit 1; }
	redis-cli -p "$RP" DEBUG POPULATE 300000 >/dev/null
	# A client that keeps writing new keys as fast as it can (pipelined: a flush takes
	# microseconds, and keys must still land between it and the post-condition), counting
	# those Redis acknowledged; told to stop, it sends no more and reads every answer.
	python3 - "$RP" "$T/written" <<'PY' &
import socket, sys, signal, threading
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
acked = 0
def reader():
    global acked
    f = s.makefile("rb")
    while True:
        line = f.readline()
        if line == b"+PONG\r\n":
            return
        if line != b"+OK\r\n":
            raise SystemExit("writer: unexpected answer %r" % line)
        acked += 1
t = threading.Thread(target=reader)
t.start()
n = 0
while not stop:
    s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nx\r\n" % (len(k), k)
                       for k in (b"writer:%d" % i for i in range(n, n + 100))))
    n += 100
s.sendall(b"PING\r\n")
t.join()
open(sys.argv[2], "w").write("%d\n" % acked)
PY
	WRITER_PID=$!
	check "the writer writes" wait_until 10 sh -c "[ \"\$(redis-cli -p $RP DBSIZE)\" -gt 300100 ]"
	expect_code 7 "a CRDB purge while a client writes fails its post-condition" ctl --json crdb purge "$G" --instances 1 --yes --wait
	kill "$WRITER_PID"
	wait "$WRITER_PID"
	WRITER_PID=
	expect_contains "…saying keys remain, naming them" "$(jf "$OUT" .error)" "remain after the purge: instance 1 'writer:"
	expect_contains "…20 of them" "$(jf "$OUT" .error)" "' (20 shown); "
	expect_contains "…and what to do" "$(jf "$OUT" .error)" "something still writes to the database: stop its clients, then purge again"
	expect_eq "…as not_empty on instance 1" "$(jf "$OUT" '.errors[0] | "\(.cluster_name) \(.error_code)"')" "1 not_empty"
	DEL=$(jf "$OUT" '.counts["instance 1"]')
	LEFT=$(redis-cli -p "$RP" DBSIZE)
	WROTE=$(cat "$T/written")
	check "…its count ($DEL) is exactly what went: 300000 + $WROTE written - $LEFT left" test "$DEL" -eq $((300000 + WROTE - LEFT))
	redis-cli -p "$RP" FLUSHALL >/dev/null
	redis-cli -p "$RP" DEBUG POPULATE 1000 >/dev/null
	expect_code 0 "without the writer it finishes" ctl --json crdb purge "$G" --instances 1 --yes --wait
	expect_eq "…counting the 1000 keys" "$(jf "$OUT" '.counts["instance 1"]')" "1000"
	expect_eq "…leaving none" "$(redis-cli -p "$RP" DBSIZE)" "0"
	# A cancel before the flush (the flush itself takes microseconds: DEBUG SLEEP holds the
	# server while the executor waits for it): the driver flushes nothing and says what
	# DBSIZE leaves.
	redis-cli -p "$RP" DEBUG POPULATE 1000000 >/dev/null
	redis-cli -p "$RP" DEBUG SLEEP 0.8 >/dev/null &
	SLEEPER=$!
	sleep 0.1
	expect_code 0 "a CRDB purge of 1 000 000 keys (detached) while the server sleeps" ctl --json crdb purge "$G" --instances 1 --yes --detach
	ID=$(jf "$OUT" .id)
	check "…starts" wait_until 5 sh -c "ctl --json task $ID | jq -r .status | grep -q started"
	expect_code 0 "cancel it" ctl --json cancel "$ID"
	expect_code 8 "…cancelled" ctl --json wait "$ID"
	wait "$SLEEPER"
	DEL=$(jf "$OUT" '.counts["instance 1"]')
	LEFT=$(redis-cli -p "$RP" DBSIZE)
	check "…before the end ($DEL deleted, $LEFT left)" test "$LEFT" -gt 0
	expect_eq "…its count and what is left make the 1 000 000" "$((DEL + LEFT))" "1000000"
	expect_contains "…the driver says so" "$(jf "$OUT" .error)" "the executor stopped and reconciled within 1 s (cancel_grace): crdb: stopped on request after $DEL keys; reconciled: DBSIZE says $LEFT keys remain"
else
	skip_part "crdb post-condition" "redis-server not installed"
fi

# --- a compromised executor
stop_purged TERM
config 2 <<'EOF2'
[target demo]
type = noop
objects = 10
step_ms = 1
EOF2
cp "$(dirname "$0")/hostile_executor.py" "$T/bin/purged-executor"
cp "$(dirname "$0")/msgpack_min.py" "$T/bin/" && chmod 644 "$T/bin/msgpack_min.py"
chmod 755 "$T/bin/purged-executor"
start_purged || { finish; exit 1; }
# attack NAME OP: run task OP (purge or plan) with the hostile executor; its task in $OUT, $ID.
attack() {
	echo "$1" >"$T/bin/purged-executor.attack"
	chmod 644 "$T/bin/purged-executor.attack"
	if [ "$2" = plan ]; then
		ctl --json plan demo >/dev/null 2>&1
		OUT=$(ctl --json tasks --limit 1 | jq '.[0]')
	else
		OUT=$(ctl --json purge demo --yes --detach)
	fi
	ID=$(jf "$OUT" .id)
	wait_until 15 sh -c "ctl --json task $ID | jq -e '.status == \"failed\" or .status == \"finished\"' >/dev/null"
	OUT=$(ctl --json task "$ID")
}
# killed NAME OP WANT: the attack's task failed with WANT in its reason, purged is up and lists it.
killed() {
	attack "$1" "$2"
	expect_eq "$1: the task failed" "$(jf "$OUT" .status)" "failed"
	expect_contains "$1: …saying why" "$(jf "$OUT" .error)" "$3"
	expect_proc "$1: purged is still up" "$PURGED_PID" true
	check "$1: …and lists the task" sh -c "ctl --json tasks --limit 5 | jq -e '.[] | select(.id == \"$ID\")' >/dev/null"
}
killed badkey purge "protocol violation by the executor: map key"
killed badname purge "protocol violation by the executor: string is not valid UTF-8"
expect_eq "badname: …the 2 deletions before it are kept" "$(jf "$OUT" .counts.objects)" "2"
killed longname purge "protocol violation by the executor: key 'manifest' must be an array of {kind, id, name, cascade} entries"
expect_eq "longname: …the deletion before it is kept" "$(jf "$OUT" .counts.objects)" "1"
killed badkind purge "protocol violation by the executor: key 'manifest' must be an array of {kind, id, name, cascade} entries"
killed countkind purge "protocol violation by the executor: a result count that is not a kind"
killed overflow purge "protocol violation by the executor: a confirmed count over 2^53"
killed flood purge "protocol violation by the executor: a flood of messages"
killed after purge "protocol violation by the executor: message after the result"
killed plandelete plan "protocol violation by the executor: a plan reported a deletion"
killed error80k purge "protocol violation by the executor: "
killed vanish purge "executor exited without sending a result"
expect_eq "vanish: …keeping its 3 confirmed deletions" "$(jf "$OUT" .counts.objects)" "3"
attack logflood purge
expect_eq "a log flood: the task ends as the executor said" "$(jf "$OUT" .error)" "logged a lot"
check "…its log lines beyond 200 a second are counted, not relayed" grep -qE "[0-9]+ log lines not relayed \(more than 200 a second\)" "$LOG"
check "…so that at most a few hundred reach the log ($(grep -c 'flooding the log' "$LOG"))" test "$(grep -c 'flooding the log' "$LOG")" -le 1000
attack error600 purge
expect_eq "600 x é: the task failed" "$(jf "$OUT" .status)" "failed"
expect_eq "…with exactly that text" "$(jf "$OUT" .error)" "$(python3 -c 'print("é" * 600)')"
attack error60k purge
expect_eq "30000 x é: the task failed" "$(jf "$OUT" .status)" "failed"
E=$(jf "$OUT" .error)
check "…with the text cut to at most 4 KiB, on a character boundary (${#E} characters)" sh -c "[ ${#E} -ge 1000 ] && [ \"\$(printf '%s' '$E' | wc -c)\" -le 4096 ] && printf '%s' '$E' | iconv -f UTF-8 -t UTF-8 >/dev/null"
expect_proc "purged is still up after every attack" "$PURGED_PID" true
ctl --json tasks --limit 100 | jq -c '[.[] | {id, status, error, counts}]' >"$T/before"
check "every attack's task is listed" test "$(jq length "$T/before")" -ge 14
stop_purged TERM
expect_eq "purged stopped cleanly" "$STOP_STATUS" "0"
start_purged || { finish; exit 1; }
ctl --json tasks --limit 100 | jq -c '[.[] | {id, status, error, counts}]' >"$T/after"
check "after a restart, the attacks' tasks are as they were (journaled)" cmp -s "$T/before" "$T/after"
check "no 'cannot record task' in the log" no_match "cannot record task" "$LOG"
stop_purged TERM
finish
