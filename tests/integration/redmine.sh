#!/bin/bash
# Redmine purges against a REAL Redmine 5.0 from Debian's packages, started on
# a free loopback port by tests/peers/redmine-up.sh and seeded through its
# REST API: nested projects with issues, users in groups and projects. Plan,
# purge (purgectl and POST /purge/redmine), manifest, idempotence, and the
# failures: wrong API key (401), REST API disabled (403), Redmine down.
. "$(dirname "$0")/lib.sh"
[ "$IS_ROOT" = 1 ] || { echo "1..0 # SKIP needs root (installs and runs Redmine)"; exit 77; }
PEERS=$(cd "$(dirname "$0")/../peers" && pwd)

RPORT=$(free_port)
export REDMINE_STATE=/var/lib/redmine-test
trap '"$PEERS/redmine-down.sh" "$RPORT" >/dev/null 2>&1; cleanup' EXIT
if ! RURL=$("$PEERS/redmine-up.sh" "$RPORT" "$T/redmine-key" 2>"$T/redmine-up.log"); then
	cat "$T/redmine-up.log"
	not_ok "Redmine did not start"
	finish
	exit 1
fi
ok "a real Redmine runs at $RURL"
KEY=$(cat "$T/redmine-key")
DB=$REDMINE_STATE/$RPORT/redmine.sqlite3
api() { # METHOD PATH [JSON]
	curl -s -X "$1" -H "X-Redmine-API-Key: $KEY" -H 'Content-Type: application/json' \
		${3:+-d "$3"} "$RURL$2"
}
id_of() { jq -r ".$1.id"; }

# --- seed: 3 top-level projects, 2 nested levels, issues, users, groups
P1=$(api POST /projects.json '{"project":{"name":"Web","identifier":"web"}}' | id_of project)
P11=$(api POST /projects.json "{\"project\":{\"name\":\"Web API\",\"identifier\":\"web-api\",\"parent_id\":$P1}}" | id_of project)
P111=$(api POST /projects.json "{\"project\":{\"name\":\"Web API v2\",\"identifier\":\"web-api-v2\",\"parent_id\":$P11}}" | id_of project)
P2=$(api POST /projects.json '{"project":{"name":"Ops","identifier":"ops"}}' | id_of project)
P3=$(api POST /projects.json '{"project":{"name":"Legal","identifier":"legal","is_public":false}}' | id_of project)
check "projects created" test -n "$P1" -a -n "$P111" -a -n "$P3" -a "$P3" != null
for p in "$P1" "$P11" "$P111" "$P2" "$P3"; do
	for i in 1 2; do api POST /issues.json "{\"issue\":{\"project_id\":$p,\"subject\":\"issue $i of $p\"}}" >/dev/null; done
done
U=()
for n in alice bob carol; do
	U+=("$(api POST /users.json "{\"user\":{\"login\":\"$n\",\"firstname\":\"$n\",\"lastname\":\"Test\",\"mail\":\"$n@example.invalid\",\"password\":\"secret-pass-123\"}}" | id_of user)")
done
G1=$(api POST /groups.json '{"group":{"name":"Developers"}}' | id_of group)
G2=$(api POST /groups.json '{"group":{"name":"Managers"}}' | id_of group)
api POST "/groups/$G1/users.json" "{\"user_id\":${U[0]}}" >/dev/null
api POST "/projects/$P1/memberships.json" "{\"membership\":{\"user_id\":${U[1]},\"role_ids\":[3]}}" >/dev/null
expect_eq "10 issues seeded" "$(api GET '/issues.json?status_id=*&limit=1' | jq .total_count)" "10"

install -m 0600 /dev/null "$T/key"
printf '%s\n' "$KEY" >"$T/key"
install -m 0600 /dev/null "$T/badkey"
echo 0000000000000000000000000000000000000000 >"$T/badkey"
DOWN=$(free_port)
PORT=$(free_port)
mint_token ci
write_config <<EOF2
$(rest_conf)

[target redmine]
type = redmine
url = $RURL
api_key_file = $T/key
scope = projects, users, groups
parallel = 3

[target redmine-badkey]
type = redmine
url = $RURL
api_key_file = $T/badkey

[target redmine-down]
type = redmine
url = http://127.0.0.1:$DOWN/
api_key_file = $T/key
connect_timeout = 2
EOF2
start_purged || { finish; exit 1; }

# --- plan
expect_code 0 "plan redmine" ctl --json plan redmine
expect_eq "5 projects (children counted)" "$(jf "$OUT" .counts.projects)" "5"
expect_eq "10 issues" "$(jf "$OUT" .counts.issues)" "10"
expect_eq "3 users (not the admin)" "$(jf "$OUT" .counts.users)" "3"
expect_eq "2 groups (not the builtin ones)" "$(jf "$OUT" .counts.groups)" "2"
expect_eq "plan deleted nothing" "$(api GET '/projects.json?limit=1' | jq .total_count)" "5"

# --- failures first, while there is data
expect_code 7 "wrong API key" ctl --json purge redmine-badkey --yes --wait
expect_contains "…401 named" "$(jf "$OUT" .error)" "refused the API key (401)"
expect_code 7 "Redmine down" ctl --json purge redmine-down --yes --wait
expect_contains "…connection refused named" "$(jf "$OUT" .error)" "cannot reach http://127.0.0.1:$DOWN"
sqlite3 "$DB" "UPDATE settings SET value='0', updated_on=strftime('%Y-%m-%d %H:%M:%f','now') WHERE name='rest_api_enabled'"
expect_code 7 "REST API disabled" ctl --json purge redmine --yes --wait
expect_contains "…403 explained" "$(jf "$OUT" .error)" "is the REST API enabled"
sqlite3 "$DB" "UPDATE settings SET value='1', updated_on=strftime('%Y-%m-%d %H:%M:%f','now') WHERE name='rest_api_enabled'"
expect_eq "nothing was deleted by the failures" "$(api GET '/projects.json?limit=1' | jq .total_count)" "5"

# --- the purge, through the Lucid Chain route
R=$(curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/purge/redmine")
expect_eq "POST /purge/redmine: 200" "$(printf '%s' "$R" | tail -n1)" "200"
expect_eq "…Lucid Chain's message" "$(printf '%s' "$R" | head -n1 | jq -r .message)" "Database from Redmine successfully purged"
ID=$(ctl --json tasks --target redmine --limit 1 | jq -r '.[0].id')
expect_code 0 "the task" ctl --json task "$ID"
expect_eq "finished" "$(jf "$OUT" .status)" "finished"
expect_eq "5 projects deleted" "$(jf "$OUT" .counts.projects)" "5"
expect_eq "3 users deleted" "$(jf "$OUT" .counts.users)" "3"
expect_eq "2 groups deleted" "$(jf "$OUT" .counts.groups)" "2"
expect_eq "progress: 3 top-level projects + 3 users + 2 groups" "$(jf "$OUT" '.progress.total')" "8"
expect_eq "Redmine lists no project" "$(api GET '/projects.json?status=1%7C5&limit=1' | jq .total_count)" "0"
expect_eq "…no issue" "$(api GET '/issues.json?status_id=*&limit=1' | jq .total_count)" "0"
expect_eq "…only the admin user" "$(api GET '/users.json?status=&limit=100' | jq -r '[.users[].login] | join(",")')" "admin"
expect_eq "…no group" "$(api GET '/groups.json' | jq '.groups | length')" "0"
for p in "$P1" "$P111" "$P3"; do
	expect_eq "project $p answers 404" "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Redmine-API-Key: $KEY" "$RURL/projects/$p.json")" "404"
done

# --- manifest
expect_code 0 "purgectl task ID --manifest" ctl task "$ID" --manifest
expect_eq "one line per deleted object" "$(printf '%s\n' "$OUT" | wc -l)" "10"
expect_contains "…projects with their names" "$OUT" '"name":"Web API v2"'
expect_contains "…users" "$OUT" '"kind":"users"'
check "…at state_dir/manifests/ID.jsonl" test -s "$T/state/manifests/$ID.jsonl"
expect_code 0 "--manifest --json" ctl --json task "$ID" --manifest
expect_eq "an array of 10" "$(jf "$OUT" length)" "10"

# --- efficiency: requests O(projects), connections within the parallelism
check "HTTP requests and connections are logged" grep -qE "HTTP request\(s\) over [0-9]+ connection\(s\)" "$LOG"
CONNS=$(grep -oE "HTTP request\(s\) over [0-9]+ connection" "$LOG" | tail -n1 | grep -oE "[0-9]+" | tail -n1)
check "connections ($CONNS) at most parallel + 1" test "${CONNS:-99}" -le 4

# --- idempotent: a second run finds nothing and succeeds
expect_code 0 "purging again" ctl --json purge redmine --yes --wait
expect_eq "…nothing left to delete" "$(jf "$OUT" .counts.projects)" "0"
check "no API key in the log" sh -c "! grep -qF '$KEY' '$LOG'"
check "no API key in the journal or manifests" sh -c "! grep -rqF '$KEY' '$T/state'"
stop_purged TERM
finish
