#!/bin/bash
# A scripted session of 1000 purgectl calls and 1000 REST calls. In the
# ASan+UBSan build every purgectl exit and the daemon's exit are checked by
# LeakSanitizer, and any report in the daemon's log (executors and
# purged-rest included) fails the test: no leak, no invalid access.
. "$(dirname "$0")/lib.sh"
mint_token session
PORT=$(free_port)
write_config "max_executors = 4" <<EOF2
$(rest_conf)
[target a]
type = noop
objects = 2
step_ms = 0
[target b]
type = noop
objects = 2
step_ms = 0
fail_at = 1
EOF2
start_purged || { finish; exit 1; }
U=http://127.0.0.1:$PORT
check "purged-rest answers" wait_until 10 curl -sf "$U/healthz" -o /dev/null

CTL_FAILS=0
for i in $(seq 1 1000); do
	case $((i % 10)) in
	0) ctl --json purge a --yes --wait >/dev/null 2>&1; rc=$? ;;
	1) ctl --json purge b --yes --wait >/dev/null 2>&1; [ $? = 7 ] && rc=0 || rc=1 ;;
	2) ctl plan a >/dev/null 2>&1; rc=$? ;;
	3) ctl --json tasks --limit 5 >/dev/null 2>&1; rc=$? ;;
	4) ctl targets >/dev/null 2>&1; rc=$? ;;
	5) ctl task 01a227ad-f7bc-7304-b19f-9b57b020426a >/dev/null 2>&1; [ $? = 5 ] && rc=0 || rc=1 ;;
	6) ctl frobnicate >/dev/null 2>&1; [ $? = 2 ] && rc=0 || rc=1 ;;
	7) ctl --json task "$(ctl --json tasks --limit 1 | jq -r '.[0].id')" --manifest >/dev/null 2>&1; rc=$? ;;
	*) ctl --json status >/dev/null 2>&1; rc=$? ;;
	esac
	[ "$rc" = 0 ] || CTL_FAILS=$((CTL_FAILS + 1))
done
expect_eq "1000 purgectl calls, each exit as expected (LeakSanitizer-checked in the ASan build)" "$CTL_FAILS" 0

# 1000 REST calls: 100 curl processes of 10 requests, keep-alive within each.
AUTH="Authorization: Bearer $TOKEN"
REST_BAD=0
for i in $(seq 1 100); do
	args=()
	for p in /healthz "/v1/tasks?limit=3" /v1/targets /metrics /v1/crdb_tasks \
		/v1/tasks/01a227ad-f7bc-7304-b19f-9b57b020426a /nope /healthz "/v1/tasks?limit=1" /healthz; do
		args+=(-o /dev/null "$U$p") # one -o per URL: curl applies it to one only
	done
	codes=$(curl -s -H "$AUTH" -w '%{http_code}\n' "${args[@]}")
	[ "$(printf '%s\n' "$codes" | tr '\n' ' ')" = "200 200 200 200 200 404 404 200 200 200 " ] || REST_BAD=$((REST_BAD + 1))
	if [ $((i % 10)) = 0 ]; then
		c=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AUTH" -H 'Content-Type: application/json' -d '{"port":1}' "$U/purge/a")
		[ "$c" = 403 ] || REST_BAD=$((REST_BAD + 1))
	fi
done
expect_eq "1000 REST calls answered as expected" "$REST_BAD" 0
stop_purged TERM
expect_eq "purged exits 0 (LeakSanitizer-checked in the ASan build)" "$STOP_STATUS" 0
finish
