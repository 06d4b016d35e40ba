#!/bin/bash
# Load, on loopback, bounded in time: wrk with 100 connections for 30 s on
# /healthz and, at the same time, 100 on GET /v1/tasks, while 50 noop purges
# go through POST /purge/:target. Every answer must be 2xx, no socket error,
# every purge finished, and the supervisor's RSS afterwards within 10 % of
# its RSS before. LOAD_SECONDS shortens it (default 30).
. "$(dirname "$0")/../integration/lib.sh"
command -v wrk >/dev/null || { echo "1..0 # SKIP wrk not installed"; exit 77; }
SECS=${LOAD_SECONDS:-30}
mint_token load
PORT=$(free_port)
{
	printf '[rest]\nenabled = yes\nlisten = 127.0.0.1:%s\ntokens_file = %s\n' "$PORT" "$T/tokens"
	for i in $(seq -w 1 50); do printf '[target load%s]\ntype = noop\nobjects = 20\nstep_ms = 20\n' "$i"; done
} | write_config "max_executors = 4" "max_queue = 64"
"$T/bin/purged" -c "$CONF" >>"$LOG" 2>&1 &
PURGED_PID=$!
check "purged-rest answers" wait_until 10 curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null
U=http://127.0.0.1:$PORT
rss() { proc_field "$PURGED_PID" status VmRSS; } # nothing when purged is gone: the check below fails
# Warm up (first allocations of the loop, the tables, the REST link), then measure.
for _ in $(seq 1 200); do curl -s -H "Authorization: Bearer $TOKEN" "$U/v1/tasks" -o /dev/null; done
RSS_BEFORE=$(rss)

wrk -t1 -c100 -d"${SECS}s" --latency "$U/healthz" >"$T/wrk-healthz.txt" 2>&1 &
W1=$!
wrk -t1 -c100 -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "$U/v1/tasks?limit=20" >"$T/wrk-tasks.txt" 2>&1 &
W2=$!
IDS=()
for i in $(seq -w 1 50); do
	ID=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "Prefer: respond-async" "$U/purge/load$i" | jq -r .id)
	IDS+=("$ID")
done
wait $W1 $W2
cat "$T/wrk-healthz.txt" "$T/wrk-tasks.txt"
for f in healthz tasks; do
	check "wrk $f: no non-2xx answer" no_match 'Non-2xx or 3xx responses' "$T/wrk-$f.txt"
	check "wrk $f: no socket error" no_match 'Socket errors' "$T/wrk-$f.txt"
	check "wrk $f: requests were served" grep -qE "^Requests/sec: +[1-9]" "$T/wrk-$f.txt"
done
check "50 purges were accepted" test "$(printf '%s\n' "${IDS[@]}" | grep -c -- '-7')" = 50
check "every purge finishes" wait_until 120 sh -c "[ \"\$('$T/bin/purgectl' -s '$SOCK' --json tasks --limit 100 | jq '[.[] | select(.status == \"finished\")] | length')\" = 50 ]"
sleep 6 # one period of the supervisor's heap trim
RSS_AFTER=$(rss)
echo "supervisor RSS: ${RSS_BEFORE} KiB before, ${RSS_AFTER} KiB after"
check "supervisor RSS after within 10 % of before (${RSS_BEFORE} -> ${RSS_AFTER} KiB)" \
	awk -v a="$RSS_BEFORE" -v b="$RSS_AFTER" 'BEGIN { exit !(a > 0 && b > 0 && b <= a * 1.10) }'
stop_purged TERM
expect_eq "purged stops cleanly" "$STOP_STATUS" 0
finish
