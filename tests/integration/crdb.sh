#!/bin/bash
# CRDB purges against real redis-server processes on free ports and a unix
# socket, seeded with thousands of keys: one instance, two, one of them
# down, a password-protected one, a wrong password; through purgectl and
# PUT /v1/crdbs/{guid}/purge.
. "$(dirname "$0")/lib.sh"

command -v redis-server >/dev/null || { echo "1..0 # SKIP redis-server not installed"; exit 77; }

REDIS_PIDS=()
start_redis() { # NAME PORT [extra args...]
	local name=$1 port=$2
	shift 2
	mkdir -p "$T/$name"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/$name" \
		--enable-debug-command yes --daemonize no "$@" >"$T/$name/log" 2>&1 &
	REDIS_PIDS+=($!)
}
stop_redis() { for p in "${REDIS_PIDS[@]}"; do kill "$p" 2>/dev/null; done; }
trap 'stop_redis; cleanup' EXIT
rcli() { redis-cli --no-auth-warning "$@"; }

P1=$(free_port)
P2=$(free_port)
PDOWN=$(free_port)
SOCK1=$T/r3/redis.sock
start_redis r1 "$P1"
start_redis r2 "$P2" --requirepass "pw-for-two"
start_redis r3 0 --unixsocket "$SOCK1" --unixsocketperm 777
check "redis on TCP answers" wait_until 10 sh -c "redis-cli -p $P1 PING | grep -q PONG"
check "redis with a password answers" wait_until 10 sh -c "redis-cli --no-auth-warning -p $P2 -a pw-for-two PING | grep -q PONG"
check "redis on a unix socket answers" wait_until 10 sh -c "redis-cli -s $SOCK1 PING | grep -q PONG"
rcli -p "$P1" DEBUG POPULATE 5000 >/dev/null
rcli -p "$P2" -a pw-for-two DEBUG POPULATE 3000 >/dev/null
rcli -s "$SOCK1" DEBUG POPULATE 2000 >/dev/null
rcli -p "$P1" SELECT 1 >/dev/null

install -m 0600 /dev/null "$T/pw2"
echo "pw-for-two" >"$T/pw2"
install -m 0600 /dev/null "$T/pwbad"
echo "not-the-password" >"$T/pwbad"
G=1d7741cc-1110-4e2f-bc6c-935292783d24
G2=2e8852dd-2221-4f30-bd7d-046303894e35
G3=3f9963ee-3332-4041-be8e-157414905f46
PORT=$(free_port)
mint_token ci

write_config <<EOF2
$(rest_conf)

[crdb $G]
instance.1 = redis://127.0.0.1:$P1/0
instance.2 = redis://localhost:$P2
password_file.2 = $T/pw2
instance.3 = unix:$SOCK1
instance.4 = redis://127.0.0.1:$PDOWN

[crdb $G2]
instance.1 = redis://127.0.0.1:$P2
password_file.1 = $T/pwbad

[crdb $G3]
instance.1 = redis://127.0.0.1:$P1
EOF2
start_purged || { finish; exit 1; }

expect_code 0 "targets lists the CRDB" ctl --json targets
expect_eq "…as type crdb" "$(jf "$OUT" ".[] | select(.name == \"$G\") | .type")" "crdb"
check "…never with its password" eval '! contains "$OUT" pw-for-two'

# One instance.
expect_code 0 "purge instance 1" ctl --json crdb purge "$G" --instances 1 --yes --wait
expect_eq "5000 keys deleted" "$(jf "$OUT" '.counts["instance 1"]')" "5000"
expect_eq "instance 1 is empty" "$(rcli -p "$P1" DBSIZE)" "0"
expect_eq "instance 2 untouched" "$(rcli -p "$P2" -a pw-for-two DBSIZE)" "3000"

# Two instances, one with a password, one on a unix socket.
rcli -p "$P1" DEBUG POPULATE 1500 >/dev/null
expect_code 0 "purge instances 2 and 3" ctl --json crdb purge "$G" --instances 2,3 --yes --wait
expect_eq "3000 keys deleted on 2" "$(jf "$OUT" '.counts["instance 2"]')" "3000"
expect_eq "2000 keys deleted on 3" "$(jf "$OUT" '.counts["instance 3"]')" "2000"
expect_eq "instance 2 is empty" "$(rcli -p "$P2" -a pw-for-two DBSIZE)" "0"
expect_eq "instance 3 is empty" "$(rcli -s "$SOCK1" DBSIZE)" "0"
expect_eq "instance 1 untouched this time" "$(rcli -p "$P1" DBSIZE)" "1500"

# One of them down: only its part fails.
expect_code 7 "purge 1 and 4 (4 is down)" ctl --json crdb purge "$G" --instances 1,4 --yes --wait
expect_eq "the task failed" "$(jf "$OUT" .status)" "failed"
expect_eq "the error names instance 4" "$(jf "$OUT" '.errors[0].cluster_name')" "4"
expect_eq "…as unreachable" "$(jf "$OUT" '.errors[0].error_code')" "unreachable"
expect_eq "instance 1 was still purged" "$(jf "$OUT" '.counts["instance 1"]')" "1500"
expect_eq "instance 1 is empty" "$(rcli -p "$P1" DBSIZE)" "0"

# A wrong password.
rcli -p "$P2" -a pw-for-two DEBUG POPULATE 10 >/dev/null
expect_code 7 "wrong password" ctl --json crdb purge "$G2" --instances 1 --yes --wait
expect_eq "…is an auth error" "$(jf "$OUT" '.errors[0].error_code')" "auth"
expect_contains "…saying what to check" "$(jf "$OUT" '.errors[0].description')" "check password_file"
expect_eq "nothing deleted" "$(rcli -p "$P2" -a pw-for-two DBSIZE)" "10"
check "no password in the log" no_match -E 'pw-for-two|not-the-password' "$LOG"
check "no password in the journal" no_match -rE 'pw-for-two|not-the-password' "$T/state"

# Unknown instance or database: refused before anything is deleted.
expect_code 5 "unknown instance" ctl crdb purge "$G" --instances 2,9 --yes
expect_contains "…named" "$ERR" "instance 9 is not configured"
expect_eq "instance 2 untouched" "$(rcli -p "$P2" -a pw-for-two DBSIZE)" "10"
expect_code 5 "unknown database" ctl crdb purge 00000000-0000-0000-0000-000000000000 --instances 1 --yes
expect_code 2 "bad --instances" ctl crdb purge "$G" --instances 1,x --yes
expect_code 2 "a plain purge of a CRDB is refused" ctl purge "$G" --yes
expect_code 1 "a plan that cannot reach an instance fails" ctl --json plan "$G"
expect_contains "…naming it" "$ERR" "instance 4"
rcli -p "$P1" DEBUG POPULATE 42 >/dev/null
expect_code 0 "plan counts keys per instance" ctl --json plan "$G3"
expect_eq "…42 on instance 1" "$(jf "$OUT" '.counts["instance 1"]')" "42"
expect_eq "…and deletes nothing" "$(rcli -p "$P1" DBSIZE)" "42"
rcli -p "$P1" FLUSHALL >/dev/null
expect_code 0 "crdb tasks" ctl crdb tasks
expect_eq "…lists the three purges of $G" "$(printf '%s\n' "$OUT" | grep -c -- "$G")" "3"

# The flush refused when queued (an ACL without FLUSHDB): nothing is deleted, and the error says what to allow.
rcli -p "$P1" DEBUG POPULATE 300 >/dev/null
rcli -p "$P1" ACL SETUSER default -flushdb >/dev/null
expect_code 7 "a purge whose FLUSHDB is refused fails" ctl --json crdb purge "$G3" --instances 1 --yes --wait
expect_contains "…saying the flush was refused, why and what to allow" "$(jf "$OUT" '.errors[0].description')" "the flush (MULTI; DBSIZE; FLUSHDB ASYNC; EXEC) was refused: NOPERM"
expect_contains "…that nothing was deleted" "$(jf "$OUT" .error)" "nothing was deleted; allow those commands"
expect_eq "…counting 0" "$(jf "$OUT" '.counts["instance 1"]')" "0"
expect_eq "…and deleting none" "$(rcli -p "$P1" DBSIZE)" "300"
rcli -p "$P1" ACL SETUSER default +@all >/dev/null
# The flush's answer lost: CLIENT PAUSE WRITE holds the transaction, then the connection is
# killed. The driver reconnects, says what DBSIZE finds, and claims no count.
rcli -p "$P1" CLIENT PAUSE 5000 WRITE >/dev/null
expect_code 0 "a purge whose flush is held (detached)" ctl --json crdb purge "$G3" --instances 1 --yes --detach
ID=$(jf "$OUT" .id)
check "…its transaction waits" wait_until 5 sh -c "redis-cli -p $P1 CLIENT LIST | grep -q 'flags=[a-zA-Z]*b'"
rcli -p "$P1" CLIENT KILL TYPE normal SKIPME yes >/dev/null
expect_code 7 "…its connection killed, the purge fails" ctl --json wait "$ID"
rcli -p "$P1" CLIENT UNPAUSE >/dev/null
expect_contains "…saying the answer was lost and no count is claimed" "$(jf "$OUT" .error)" "instance 1: the answer to the flush was lost ("
expect_contains "…and what a new connection finds" "$(jf "$OUT" .error)" "reconnected: DBSIZE says 300 keys remain (300 before): check the instance"
expect_eq "…counting 0" "$(jf "$OUT" '.counts["instance 1"]')" "0"
expect_eq "…and the keys are there" "$(rcli -p "$P1" DBSIZE)" "300"
rcli -p "$P1" FLUSHALL >/dev/null

# The Redis Enterprise route.
U=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer $TOKEN"
rcli -p "$P1" DEBUG POPULATE 700 >/dev/null
R=$(curl -s -w '\n%{http_code}' -X PUT -H "$AUTH" -H 'Content-Type: application/json' -d '{"instances":[1]}' "$U/v1/crdbs/$G/purge")
expect_eq "PUT /v1/crdbs/GUID/purge" "$(printf '%s' "$R" | tail -n1)" "200"
TASK=$(printf '%s' "$R" | head -n1)
ID=$(jf "$TASK" .id)
expect_eq "a CRDB task object" "$(jf "$TASK" '[.crdb_guid, .operation] | join(" ")')" "$G purge"
check "…with a Redis Enterprise status" sh -c "printf '%s' '$(jf "$TASK" .status)' | grep -qE '^(queued|started|finished)$'"
check "the task finishes" wait_until 10 sh -c "curl -s -H '$AUTH' $U/v1/crdb_tasks/$ID | jq -r .status | grep -q finished"
TASK=$(curl -s -H "$AUTH" "$U/v1/crdb_tasks/$ID")
expect_eq "progress per instance" "$(jf "$TASK" '.progress.clusters[0] | "\(.name) \(.progress)"')" "1 purged"
for k in id crdb_guid operation status errors progress started ended worker_name; do
	check "task object has '$k'" test "$(jf "$TASK" "has(\"$k\")")" = true
done
expect_eq "instance 1 is empty" "$(rcli -p "$P1" DBSIZE)" "0"
expect_eq "GET /v1/crdb_tasks lists CRDB tasks only" "$(curl -s -H "$AUTH" "$U/v1/crdb_tasks" | jq -r '[.[].operation] | unique | join(",")')" "purge"
expect_eq "unknown instance: 404" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$AUTH" -H 'Content-Type: application/json' -d '{"instances":[8]}' "$U/v1/crdbs/$G/purge")" "404"
expect_eq "unknown guid: 404" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$AUTH" -H 'Content-Type: application/json' -d '{"instances":[1]}' "$U/v1/crdbs/nope/purge")" "404"
for body in '{"instances":[]}' '{"instances":[1,1]}' '{"instances":["1"]}' '{"instances":[0]}' '{}' '[1]' '{"instances":[1],"x":1}' 'nope'; do
	expect_eq "malformed body $body: 400" "$(curl -s -o "$T/b" -w '%{http_code}' -X PUT -H "$AUTH" -H 'Content-Type: application/json' -d "$body" "$U/v1/crdbs/$G/purge")" "400"
done
expect_contains "the last 400 says what is wrong" "$(cat "$T/b")" "instances"
check "purged-rest was not restarted by bad bodies" sh -c "! grep -q 'purged-rest (pid' '$LOG' || [ \$(grep -c 'serving http' '$LOG') = 1 ]"
expect_eq "no token: 401" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' -d '{"instances":[1]}' "$U/v1/crdbs/$G/purge")" "401"
expect_eq "unknown CRDB task: 404" "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$U/v1/crdb_tasks/01a227ad-f7bc-7304-b19f-9b57b020426a")" "404"
stop_purged TERM
finish
