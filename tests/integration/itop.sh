#!/bin/bash
# iTop purges against a REAL iTop 3.2.0 behind nginx (itop_real.sh) when the team's
# ../shared/peers/itop-up.sh is there and we are root; otherwise, said as SKIPPED,
# against the fake iTop (tests/peers/fake_itop.py): plan, the class order,
# simulate-then-delete, the kept Person and Organization of the REST user, manifests,
# the codes (bad login, no REST profile, no delete right), a blocked class leaving
# nothing half deleted, and POST /purge/itop.
. "$(dirname "$0")/lib.sh"
PEERS=$(cd "$(dirname "$0")/../peers" && pwd)
if [ "${ITOP_FAKE:-0}" != 1 ] && [ -x "$PURGED_SOURCE_DIR/../shared/peers/itop-up.sh" ] && [ "$IS_ROOT" = 1 ]; then
	. "$(dirname "$0")/itop_real.sh" # ends the scenario
fi
WHY="../shared/peers absent"
[ -x "$PURGED_SOURCE_DIR/../shared/peers/itop-up.sh" ] && WHY="ITOP_FAKE=1"
[ -x "$PURGED_SOURCE_DIR/../shared/peers/itop-up.sh" ] && [ "$IS_ROOT" != 1 ] && WHY="not root"
skip_part "real iTop" "$WHY"
echo "SKIPPED: real iTop ($WHY): using the fake"

IPORT=$(free_port)
python3 "$PEERS/fake_itop.py" "$IPORT" --seed >"$T/itop.log" 2>&1 &
ITOP_PID=$!
trap 'kill $ITOP_PID 2>/dev/null; cleanup' EXIT
IURL=http://127.0.0.1:$IPORT/webservices/rest.php
check "the fake iTop answers" wait_until 10 sh -c "curl -s -X POST -d 'version=1.3&auth_user=rest&auth_pwd=rest-pw&json_data={\"operation\":\"list_operations\"}' '$IURL' | grep -q '\"code\": 0'"
icount() { # CLASS
	curl -s -X POST --data-urlencode version=1.3 --data-urlencode auth_user=rest --data-urlencode auth_pwd=rest-pw \
		--data-urlencode "json_data={\"operation\":\"core/get\",\"class\":\"$1\",\"key\":\"SELECT $1\",\"limit\":1}" \
		"$IURL" | jq -r '.message' | sed 's/Found: //'
}

install -m 0600 /dev/null "$T/pw"
echo rest-pw >"$T/pw"
PORT=$(free_port)
mint_token ci
write_config <<EOF2
$(rest_conf)

[target itop]
type = itop
url = $IURL
user = rest
password_file = $T/pw

[target itop-wrongorder]
type = itop
url = $IURL
user = rest
password_file = $T/pw
classes = Organization, Person

[target itop-norest]
type = itop
url = $IURL
user = admin-norest
password_file = $T/pw

[target itop-readonly]
type = itop
url = $IURL
user = readonly
password_file = $T/pw

[target itop-badversion]
type = itop
url = http://127.0.0.1:$IPORT/nothing-here.php
user = rest
password_file = $T/pw
insecure = yes

[target itop-bodycreds]
type = itop
url = $IURL
user = rest
password_file = $T/pw
accept_request_credentials = yes
EOF2
start_purged || { finish; exit 1; }

expect_code 0 "plan itop" ctl --json plan itop
expect_eq "30 user requests and 3 incidents, counted once under Ticket" "$(jf "$OUT" .counts.Ticket)" "33"
expect_eq "3 persons and 3 teams (the REST user's contact kept)" "$(jf "$OUT" .counts.Contact)" "6"
expect_eq "3 organizations (the admin's kept)" "$(jf "$OUT" .counts.Organization)" "3"
expect_eq "the plan deleted nothing" "$(icount UserRequest)" "30"
expect_contains "classes of the default scope this iTop lacks are skipped, and said" "$(cat "$LOG")" "this iTop has no class Attachment, WorkOrder, KnownError, FAQ"

expect_code 7 "a wrong class order" ctl --json purge itop-wrongorder --yes --wait
expect_contains "…is refused by the simulation, the blockers named" "$(jf "$OUT" .error)" "blocked by 15 objects outside the purge's classes: Location 1 'Site 0', Team"
expect_contains "…and the remedy said" "$(jf "$OUT" .error)" "add their classes to classes, or remove the classes override"
expect_eq "…and nothing was deleted" "$(icount Organization)" "4"
expect_code 7 "a user without the REST profile" ctl --json purge itop-norest --yes --wait
expect_contains "…code 1, explained" "$(jf "$OUT" .error)" "REST Services User"
expect_code 7 "a user without delete rights" ctl --json purge itop-readonly --yes --wait
expect_contains "…code 1" "$(jf "$OUT" .error)" "not allowed to delete"
expect_code 7 "not the rest.php endpoint" ctl --json purge itop-badversion --yes --wait
expect_contains "…HTTP 404 named" "$(jf "$OUT" .error)" "HTTP 404"
expect_eq "insecure = yes is a warning in the task" "$(jf "$OUT" '.warnings[0]')" "TLS certificates are not verified for this target (insecure = yes)"
expect_eq "still nothing deleted" "$(icount UserRequest)" "30"

# Body credentials: used only where the target accepts them, for that task only.
R=$(curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	-d '{"username":"rest","password":"body-pw-wrong"}' "http://127.0.0.1:$PORT/purge/itop-bodycreds")
expect_eq "accept_request_credentials: the body's (wrong) password is used" "$(printf '%s' "$R" | tail -n1)" "500"
expect_contains "…and iTop refuses it" "$(printf '%s' "$R" | head -n1 | jq -r .message)" "iTop code 1"

ireqs() { curl -s "http://127.0.0.1:$IPORT/stats" | jq -e .requests; }
REQS0=$(ireqs)
R=$(curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	-d "{\"server\":\"127.0.0.1\",\"port\":$IPORT,\"api_path\":\"/webservices/rest.php\",\"username\":\"x\",\"password\":\"body-pw-ignored\"}" \
	"http://127.0.0.1:$PORT/purge/itop")
REQS=$(($(ireqs) - REQS0)) # this purge's requests only (it has ended: no respond-async)
expect_eq "POST /purge/itop with the matching endpoint: 200" "$(printf '%s' "$R" | tail -n1)" "200"
expect_eq "…Lucid Chain's message" "$(printf '%s' "$R" | head -n1 | jq -r .message)" "Database from iTop successfully purged"
ID=$(ctl --json tasks --target itop --limit 1 | jq -r '.[0].id')
expect_code 0 "the task" ctl --json task "$ID"
expect_eq "33 tickets deleted" "$(jf "$OUT" .counts.Ticket)" "33"
expect_eq "3 organizations deleted" "$(jf "$OUT" .counts.Organization)" "3"
for cls in UserRequest Incident ServiceSubcategory Service CustomerContract SLA SLT Team Location ServiceFamily; do
	expect_eq "iTop has no $cls left" "$(icount "$cls")" "0"
done
expect_eq "the REST user's Person stays" "$(icount Person)" "1"
expect_eq "…and its Organization" "$(icount Organization)" "1"
expect_eq "the User account stays" "$(icount User)" "1"
expect_code 0 "manifest" ctl --json task "$ID" --manifest
expect_eq "one entry per deleted object" "$(jf "$OUT" length)" "$(ctl --json task "$ID" | jq '[.counts[]] | add')"
expect_contains "…with iTop's friendly names" "$OUT" '"name": "Customer 0"'
check "fewer requests than objects: $REQS for the purge of 70 objects in 12 classes" test "$REQS" -lt 70
expect_code 0 "a second purge finds nothing to do" ctl --json purge itop --yes --wait
expect_eq "…nothing deleted" "$(jf "$OUT" '.counts | length')" "0"
# O(classes), not O(objects): the same purge with 1 and with 150 user requests (one chunk either way).
add_requests() { # N: create N UserRequests through the REST API
	python3 - "$IURL" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
for k in range(n):
    op = {"operation": "core/create", "comment": "test", "class": "UserRequest", "fields": {"title": f"load {k}"}}
    form = {"version": "1.3", "auth_user": "rest", "auth_pwd": "rest-pw", "json_data": json.dumps(op)}
    assert json.load(urllib.request.urlopen(url, urllib.parse.urlencode(form).encode()))["code"] == 0
PY
}
purge_requests() { # N: the requests of one purge of N user requests
	local before
	add_requests "$1" && before=$(ireqs) && ctl --json purge itop --yes --wait >"$T/purge-$1.json" &&
		[ "$(jq .counts.Ticket "$T/purge-$1.json")" = "$1" ] && echo $(($(ireqs) - before))
}
R1=$(purge_requests 1)
R150=$(purge_requests 150)
check "requests do not grow with objects: $R1 for 1 user request, $R150 for 150" test -n "$R1" -a -n "$R150" -a "${R150:-0}" -le "$((${R1:-0} + 2))"
check "no password in the log" no_match -E 'rest-pw|body-pw' "$LOG"
check "no password in the journal or manifests" no_match -rE 'rest-pw|body-pw' "$T/state"
stop_purged TERM
finish
