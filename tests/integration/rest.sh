#!/bin/bash
# purged-rest with real clients (curl and Python's http.client/raw sockets):
# every route and status code, keep-alive, pipelining, a trickled body, a
# slow client cut by the timeout, 1100 connections, an oversized header
# block, tokens, the child's sandbox, and its respawn after a kill.
. "$(dirname "$0")/lib.sh"

PROBE="python3 $(dirname "$0")/http_probe.py"
rest_door ci

write_config "max_executors = 1" "max_queue = 1" <<EOF2
$(rest_conf)
idle_timeout = 2

[target demo]
type = noop
objects = 5
step_ms = 1
[target slow]
type = noop
objects = 400
step_ms = 10
[target other]
type = noop
objects = 1
step_ms = 0
[target broken]
type = noop
objects = 5
step_ms = 1
fail_at = 2
EOF2
start_purged || { finish; exit 1; }
wait_until 5 curl -sf "$U/healthz" -o /dev/null

# expect_http STATUS DESCRIPTION METHOD PATH [curl args...]: sets BODY and HEADERS.
expect_http() {
	local want=$1 what=$2 m=$3 p=$4
	shift 4
	local got
	: >"$T/h"
	: >"$T/b"
	got=$(curl -s -X "$m" -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" "$U$p")
	BODY=$(cat "$T/b")
	HEADERS=$(cat "$T/h")
	if [ "$got" = "$want" ]; then ok "$what ($got)"; else not_ok "$what: HTTP $got, want $want; body: $BODY"; fi
}

# --- health, auth
expect_http 200 "GET /healthz needs no token" GET /healthz
expect_eq "healthz body" "$BODY" '{"status":"ok"}'
expect_http 401 "no token" GET /v1/tasks
expect_contains "401 carries WWW-Authenticate" "$HEADERS" "WWW-Authenticate: Bearer"
expect_http 401 "wrong token" GET /v1/tasks -H "Authorization: Bearer nope"
expect_eq "wrong token error" "$(jf "$BODY" .error_code)" "unauthorized"
expect_http 401 "Basic is not a bearer token" GET /v1/tasks -u "a:b"
expect_http 401 "a token of bytes no token has (not UTF-8): refused here" GET /v1/tasks -H "$(printf 'Authorization: Bearer t\330\330')"
expect_contains "…as invalid, not missing" "$(jf "$BODY" .description)" "invalid bearer token"
expect_http 200 "…and the link to the supervisor is intact" GET /v1/tasks -H "Authorization: Bearer $TOKEN"
expect_http 401 "a token with a space inside" GET /v1/tasks -H "Authorization: Bearer ab cd"
expect_http 401 "POST /purge without token: Lucid style" POST /purge/demo
expect_eq "…with a message" "$(jf "$BODY" .message)" "Error: missing bearer token"
check "the wrong token is logged, never the token itself" grep -q "bearer token matches none" "$LOG"

# --- Lucid Chain /purge
expect_http 200 "POST /purge/demo (synchronous)" POST /purge/demo -H "$AUTH"
expect_eq "success message" "$(jf "$BODY" .message)" "Database from demo successfully purged"
expect_http 202 "Prefer: respond-async" POST /purge/demo -H "$AUTH" -H "Prefer: respond-async"
ID=$(jf "$BODY" .id)
expect_contains "Location names the task" "$HEADERS" "Location: /v1/tasks/$ID"
expect_http 500 "a failing purge" POST /purge/broken -H "$AUTH"
expect_contains "500 message" "$(jf "$BODY" .message)" "Error purging database on broken: noop: failing at object 2"
expect_http 404 "POST /purge" POST /purge -H "$AUTH"
expect_eq "no target message" "$(jf "$BODY" .message)" "Error: No target selected"
expect_http 404 "POST /purge/" POST /purge/ -H "$AUTH"
expect_http 400 "unknown target" POST /purge/nosuch -H "$AUTH"
expect_eq "unknown target message" "$(jf "$BODY" .message)" "Error: Please select a valid target to export from"
expect_http 400 "invalid target name" POST "/purge/..%2Fetc" -H "$AUTH"
expect_http 403 "endpoint mismatch" POST /purge/demo -H "$AUTH" -H 'Content-Type: application/json' -d '{"server":"db.example","port":5432}'
expect_contains "…names the mismatch" "$(jf "$BODY" .message)" "server \"db.example\" does not match target 'demo'"
expect_http 200 "credentials in the body are ignored" POST /purge/demo -H "$AUTH" -H 'Content-Type: application/json' -d '{"username":"u","password":"body-secret-pw"}'
check "…and never logged" no_match -F body-secret-pw "$LOG"
expect_http 400 "wrong JSON types" POST /purge/demo -H "$AUTH" -H 'Content-Type: application/json' -d '{"port":"80"}'
expect_http 400 "invalid JSON" POST /purge/demo -H "$AUTH" -H 'Content-Type: application/json' -d '{"server":'
expect_http 415 "non-JSON body" POST /purge/demo -H "$AUTH" -H 'Content-Type: text/plain' -d 'hello'
expect_http 202 "slow purge accepted" POST /purge/slow -H "$AUTH" -H "Prefer: respond-async"
SLOW=$(jf "$BODY" .id)
expect_http 409 "the same target again: conflict" POST /purge/slow -H "$AUTH"
expect_http 202 "another target waits in the queue" POST /purge/other -H "$AUTH" -H "Prefer: respond-async"
expect_http 429 "queue full" POST /purge/demo -H "$AUTH"
expect_contains "429 carries Retry-After" "$HEADERS" "Retry-After: 5"

# --- /v1 tasks and targets
expect_http 200 "POST /v1/tasks/ID/cancel" POST "/v1/tasks/$SLOW/cancel" -H "$AUTH"
expect_http 200 "GET /v1/tasks/ID" GET "/v1/tasks/$SLOW" -H "$AUTH"
expect_eq "same JSON as purgectl" "$(jf "$BODY" .id)" "$(ctl --json task "$SLOW" | jq -r .id)"
expect_http 200 "GET /v1/tasks" GET "/v1/tasks?limit=3" -H "$AUTH"
expect_eq "limit honoured" "$(jf "$BODY" length)" "3"
expect_http 400 "bad limit" GET "/v1/tasks?limit=abc" -H "$AUTH"
expect_http 400 "malformed task id" GET "/v1/tasks/..%2F..%2Fetc%2Fpasswd" -H "$AUTH"
expect_http 404 "unknown task id" GET "/v1/tasks/01a227ad-f7bc-7304-b19f-9b57b020426a" -H "$AUTH"
expect_eq "v1 error body" "$(jf "$BODY" .error_code)" "not_found"
expect_http 200 "GET /v1/targets" GET /v1/targets -H "$AUTH"
expect_eq "targets listed" "$(jf "$BODY" 'map(.name) | sort | join(",")')" "broken,demo,other,slow"
none_running() { [ "$(ctl --json status | jq -r '"\(.running)/\(.queued)"')" = 0/0 ]; }
# The cancelled task takes up to cancel_grace to end, and the queued one runs after it.
check "the cancelled and the queued tasks end" wait_until 10 none_running
expect_http 200 "POST /v1/targets/demo/plan" POST /v1/targets/demo/plan -H "$AUTH"
expect_eq "plan counts" "$(jf "$BODY" .counts.objects)" "5"
expect_http 404 "plan of an unknown target" POST /v1/targets/nosuch/plan -H "$AUTH"
expect_http 404 "unknown route" GET /v2/everything -H "$AUTH"
expect_http 405 "wrong method" DELETE /v1/tasks -H "$AUTH"
expect_contains "405 carries Allow" "$HEADERS" "Allow: GET"
expect_http 405 "GET /purge/demo" GET /purge/demo -H "$AUTH"
expect_contains "…Allow: POST" "$HEADERS" "Allow: POST"

# --- metrics
expect_http 200 "GET /metrics" GET /metrics -H "$AUTH"
expect_contains "requests by route and code" "$BODY" 'purged_http_requests_total{route="purge",code="409"} 1'
expect_contains "duration histogram" "$BODY" 'purged_http_request_duration_seconds_bucket{route="healthz",le="+Inf"}'
expect_contains "tasks by target and status" "$BODY" 'purged_tasks{target="broken",status="failed"} 1'
expect_contains "running executors" "$BODY" "purged_executors_running"
expect_contains "queue length" "$BODY" "purged_queue_length"
expect_contains "build info" "$BODY" 'purged_build_info{version="0.1.0"'
expect_http 401 "metrics need a token" GET /metrics

# --- the HTTP machinery
check "no task runs before the HTTP machinery checks" wait_until 10 none_running
expect_eq "keep-alive: 5 requests on one connection (http.client)" "$($PROBE keepalive "$PORT" "$TOKEN")" "200 200 200 200 200 connections=1"
expect_eq "curl reuses the connection" "$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$U/healthz" "$U/healthz" | tr '\n' ' ')" "1 0 "
expect_eq "pipelined requests answered in order" "$($PROBE pipeline "$PORT" "$TOKEN")" "200 404 200"
expect_eq "a body split into one-byte segments" "$($PROBE trickle "$PORT" "$TOKEN")" "403"
expect_eq "a header block over 8 KiB" "$($PROBE big_header "$PORT")" "431"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big.json"
expect_http 413 "a body over 64 KiB" POST /purge/demo -H "$AUTH" -H 'Content-Type: application/json' --data-binary "@$T/big.json"
SLOWLORIS=$($PROBE slow "$PORT")
check "a slow client is cut by idle_timeout (2 s), not served (${SLOWLORIS}s)" awk -v t="$SLOWLORIS" 'BEGIN { exit !(t >= 1.5 && t < 6) }'
FLOOD=$($PROBE flood "$PORT" 1100)
ANSWERED=${FLOOD#answered=}
ANSWERED=${ANSWERED%% *}
check "1100 connections: at most 1024 served ($FLOOD)" test "$ANSWERED" -le 1024 -a "$ANSWERED" -ge 900
check "…the extra ones refused" test "${FLOOD##*refused=}" -ge 76
expect_http 200 "and it answers the next client" GET /healthz
# Slowloris: 1100 connections holding half a request line; a client that asks and goes is still served,
# the connection idle longest giving way (hostile review of issue 15, F2).
python3 -c '
import resource, socket, sys, time, subprocess
port = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (2048, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
for _ in range(1100):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /healthz HT"); held.append(s)
time.sleep(0.3)
ok = 0
for _ in range(5):
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                        "http://127.0.0.1:%d/healthz" % port], capture_output=True, text=True)
    ok += r.stdout == "200"
print(ok)' "$PORT" >"$T/slowloris.out" 2>&1
expect_eq "1100 half-open requests held: 5 clients that ask and go are all served" "$(cat "$T/slowloris.out")" "5"

# --- the child process
RPID=$(pgrep -f "^$T/bin/purged-rest" | head -n 1)
check "purged-rest runs" test -n "$RPID"
if [ "$IS_ROOT" = 1 ]; then
	proc_eq "as nobody" "$RPID" "$(id -u nobody)" proc_field "$RPID" status Uid
	proc_eq "NoNewPrivs: 1" "$RPID" 1 proc_field "$RPID" status NoNewPrivs
	proc_eq "Seccomp: 2" "$RPID" 2 proc_field "$RPID" status Seccomp
	proc_eq "environment empty" "$RPID" 0 bytes_of "/proc/$RPID/environ"
	proc_eq "no token file among its fds" "$RPID" "" fd_links "$RPID" tokens
else
	skip_part "purged-rest's confinement (uid, no_new_privs, seccomp, environment)" "needs root (it runs as nobody only when started by root)"
fi
[ -n "$RPID" ] && kill -KILL "$RPID"
check "the supervisor logs the death" wait_until 5 grep -q "purged-rest (pid $RPID) was killed by signal 9" "$LOG"
check "…and respawns it" wait_until 10 curl -sf "$U/healthz" -o /dev/null
expect_http 200 "requests resume" GET /v1/targets -H "$AUTH"

# A supervisor that does not answer: /healthz says 503 within the deadline.
kill -STOP "$PURGED_PID"
sleep 3 # /healthz answers from the supervisor's last answer, at most 2 s old
expect_http 503 "healthz with a stopped supervisor" GET /healthz --max-time 10
kill -CONT "$PURGED_PID"
expect_http 200 "healthz once it is back" GET /healthz
stop_purged TERM
expect_eq "SIGTERM exits 0" "$STOP_STATUS" 0
check "purged-rest stopped with it" wait_until 5 sh -c "! pgrep -f '^$T/bin/purged-rest' >/dev/null"

# A tokens file others can read: purged refuses to start, naming it.
chmod 0640 "$T/tokens"
expect_code 1 "group-readable tokens file refused" "$T/bin/purged" -c "$CONF" -t
expect_contains "…naming the file and the fix" "$ERR" "secret file '$T/tokens' has mode 0640"
chmod 0600 "$T/tokens"
echo "garbage" >>"$T/tokens"
expect_code 1 "a malformed tokens file is refused" "$T/bin/purged" -c "$CONF" -t
expect_contains "…with its line" "$ERR" "$T/tokens:2: expected NAME:SHA256-HEX"
finish
