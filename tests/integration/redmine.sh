#!/bin/bash
# Redmine purges against a REAL Redmine 5.0 from Debian's packages, started on
# a free loopback port by tests/peers/redmine-up.sh and seeded through its
# REST API: nested projects with issues, users in groups and projects. Plan,
# purge (purgectl and POST /purge/redmine), manifest, idempotence, and the
# failures: wrong API key (401), REST API disabled (403), Redmine down, a
# non-administrator's key. The scope hidden from Redmine's lists: archived
# trees (status 9, never listed), an archived subproject of an active project,
# closed trees, private projects. The post-condition: a project that appears
# while the purge runs fails the task. Default settings on SQLite (parallel 4:
# "database is locked" answers). Redmine stopped mid-purge: the manifest is
# exactly what is gone from Redmine's own database.
. "$(dirname "$0")/lib.sh"
[ "$IS_ROOT" = 1 ] || { echo "1..0 # SKIP needs root (installs and runs Redmine)"; exit 77; }
PEERS=$(cd "$(dirname "$0")/../peers" && pwd)

RPORT=$(free_port)
export REDMINE_STATE=/var/lib/redmine-test
trap '"$PEERS/redmine-down.sh" "$RPORT" >/dev/null 2>&1; cleanup' EXIT
redmine_up
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
# What Redmine's lists do not show: a closed tree, an archived tree, an archived
# subproject of an active project, a private subproject.
PC=$(api POST /projects.json '{"project":{"name":"Closed","identifier":"closed"}}' | id_of project)
PC1=$(api POST /projects.json "{\"project\":{\"name\":\"Closed child\",\"identifier\":\"closed-child\",\"parent_id\":$PC}}" | id_of project)
PA=$(api POST /projects.json '{"project":{"name":"Old","identifier":"old"}}' | id_of project)
PA1=$(api POST /projects.json "{\"project\":{\"name\":\"Old child\",\"identifier\":\"old-child\",\"parent_id\":$PA}}" | id_of project)
PO=$(api POST /projects.json "{\"project\":{\"name\":\"Ops secret\",\"identifier\":\"ops-secret\",\"parent_id\":$P2}}" | id_of project)
PP=$(api POST /projects.json "{\"project\":{\"name\":\"Legal private\",\"identifier\":\"legal-private\",\"is_public\":false,\"parent_id\":$P3}}" | id_of project)
for p in "$PC" "$PC1" "$PA" "$PA1" "$PO"; do
	api POST /issues.json "{\"issue\":{\"project_id\":$p,\"subject\":\"issue of $p\"}}" >/dev/null
done
api PUT "/projects/$PC/close.json" '{}' >/dev/null
api PUT "/projects/$PA/archive.json" '{}' >/dev/null
api PUT "/projects/$PO/archive.json" '{}' >/dev/null
expect_eq "Redmine: 3 archived (a tree, a subproject), 2 closed, 2 private projects" \
	"$(sqlite3 "$DB" "SELECT sum(status=9), sum(status=5), sum(is_public=0) FROM projects")" "3|2|2"
expect_eq "…the archived ones answer 403" "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Redmine-API-Key: $KEY" "$RURL/projects/$PA1.json")" "403"
expect_eq "…and are not listed, even with every status" \
	"$(api GET '/projects.json?status=1%7C5&limit=100' | jq '[.projects[].id] | map(select(. == '"$PA"' or . == '"$PA1"' or . == '"$PO"')) | length')" "0"
# A user who is no administrator, with an API key of his own.
DAVE=$(api POST /users.json '{"user":{"login":"dave","firstname":"Dave","lastname":"Test","mail":"dave@example.invalid","password":"secret-pass-123"}}' | id_of user)
DAVEKEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
sqlite3 "$DB" "INSERT INTO tokens (user_id, action, value, created_on, updated_on) VALUES ($DAVE, 'api', '$DAVEKEY', datetime('now'), datetime('now'))"
api POST "/projects/$P3/memberships.json" "{\"membership\":{\"user_id\":$DAVE,\"role_ids\":[3]}}" >/dev/null

install -m 0600 /dev/null "$T/key"
printf '%s\n' "$KEY" >"$T/key"
install -m 0600 /dev/null "$T/badkey"
echo 0000000000000000000000000000000000000000 >"$T/badkey"
install -m 0600 /dev/null "$T/davekey"
printf '%s\n' "$DAVEKEY" >"$T/davekey"
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

[target redmine-dave]
type = redmine
url = $RURL
api_key_file = $T/davekey

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
expect_eq "11 projects (children, closed, private and archived counted)" "$(jf "$OUT" .counts.projects)" "11"
expect_eq "12 issues (those of archived projects cannot be seen)" "$(jf "$OUT" .counts.issues)" "12"
expect_eq "4 users (not the admin)" "$(jf "$OUT" .counts.users)" "4"
expect_eq "2 groups (not the builtin ones)" "$(jf "$OUT" .counts.groups)" "2"
expect_eq "plan deleted nothing" "$(sqlite3 "$DB" "SELECT count(*) FROM projects")" "11"
check "the plan's log says what probing found" \
	grep -qE "3 archived or unlisted found by probing ids 1 to [0-9]+" "$LOG"
expect_contains "…and the plan itself says up to where it looked for archived projects" "$(jf "$OUT" '.warnings[0]')" \
	"Redmine's API never lists archived projects: ids 1 to"

# --- failures first, while there is data
expect_code 7 "a non-administrator's key: refused" ctl --json purge redmine-dave --yes --wait
expect_contains "…saying who and what to do" "$(jf "$OUT" .error)" "the API key is the one of 'dave' (user $DAVE), who is not a Redmine administrator"
expect_code 1 "…for a plan too" ctl --json plan redmine-dave
expect_contains "…saying so" "$ERR" "who is not a Redmine administrator"
expect_code 7 "wrong API key" ctl --json purge redmine-badkey --yes --wait
expect_contains "…401 named" "$(jf "$OUT" .error)" "refused the API key (401)"
expect_code 7 "Redmine down" ctl --json purge redmine-down --yes --wait
expect_contains "…connection refused named" "$(jf "$OUT" .error)" "cannot reach http://127.0.0.1:$DOWN"
sqlite3 "$DB" "UPDATE settings SET value='0', updated_on=strftime('%Y-%m-%d %H:%M:%f','now') WHERE name='rest_api_enabled'"
expect_code 7 "REST API disabled" ctl --json purge redmine --yes --wait
expect_contains "…403 explained" "$(jf "$OUT" .error)" "is the REST API enabled"
sqlite3 "$DB" "UPDATE settings SET value='1', updated_on=strftime('%Y-%m-%d %H:%M:%f','now') WHERE name='rest_api_enabled'"
expect_eq "nothing was deleted by the failures" "$(sqlite3 "$DB" "SELECT count(*) FROM projects")" "11"

# --- the purge, through the Lucid Chain route
START=$(date +%s%N)
R=$(curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/purge/redmine")
echo "# the purge of the test data (11 projects, 3 of them archived, 4 users, 2 groups) took" \
	"$(( ($(date +%s%N) - START) / 1000000 )) ms; $(grep -oE "[0-9]+ HTTP request\(s\) over [0-9]+ connection\(s\)" "$LOG" | tail -n1)"
expect_eq "POST /purge/redmine: 200" "$(printf '%s' "$R" | tail -n1)" "200"
# Archived projects past the probed ids cannot be seen: the message must not claim more than was checked.
expect_contains "…Lucid Chain's message, with what could not be looked at" "$(printf '%s' "$R" | head -n1 | jq -r .message)" \
	"Database from Redmine purged, with warnings: Redmine's API never lists archived projects: ids 1 to"
ID=$(ctl --json tasks --target redmine --limit 1 | jq -r '.[0].id')
expect_code 0 "the task" ctl --json task "$ID"
expect_eq "finished" "$(jf "$OUT" .status)" "finished"
expect_contains "…warning that archived projects past the probed ids would not be seen" "$(jf "$OUT" '.warnings[0]')" \
	"an archived project with a higher id cannot be seen, and would be left"
expect_contains "…and that the issues of archived projects are not counted" "$(jf "$OUT" '.warnings[1]')" \
	"the issues of the 3 archived project(s) go with them but cannot be counted"
expect_eq "11 projects deleted" "$(jf "$OUT" .counts.projects)" "11"
expect_eq "12 issues deleted (those seen)" "$(jf "$OUT" .counts.issues)" "12"
expect_eq "4 users deleted" "$(jf "$OUT" .counts.users)" "4"
expect_eq "2 groups deleted" "$(jf "$OUT" .counts.groups)" "2"
expect_eq "progress: 3 archived + 4 top-level projects + 4 users + 2 groups" "$(jf "$OUT" '.progress.total')" "13"
expect_eq "Redmine's database: no project, issue, user but the admin, group" \
	"$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM projects), (SELECT count(*) FROM issues), (SELECT group_concat(login) FROM users WHERE type = 'User'), (SELECT count(*) FROM users WHERE type = 'Group')")" "0|0|admin|0"
expect_eq "Redmine lists no project" "$(api GET '/projects.json?status=1%7C5&limit=1' | jq .total_count)" "0"
expect_eq "…no issue" "$(api GET '/issues.json?status_id=*&limit=1' | jq .total_count)" "0"
expect_eq "…only the admin user" "$(api GET '/users.json?status=&limit=100' | jq -r '[.users[].login] | join(",")')" "admin"
expect_eq "…no group" "$(api GET '/groups.json' | jq '.groups | length')" "0"
for p in "$P1" "$P111" "$P3"; do
	expect_eq "project $p answers 404" "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Redmine-API-Key: $KEY" "$RURL/projects/$p.json")" "404"
done

# --- manifest
expect_code 0 "purgectl task ID --manifest" ctl task "$ID" --manifest
expect_eq "one line per deleted object" "$(printf '%s\n' "$OUT" | wc -l)" "17"
expect_contains "…projects with their names" "$OUT" '"name":"Web API v2"'
expect_contains "…users" "$OUT" '"kind":"users"'
check "…at state_dir/manifests/ID.jsonl" test -s "$T/state/manifests/$ID.jsonl"
expect_code 0 "--manifest --json" ctl --json task "$ID" --manifest
expect_eq "an array of 17" "$(jf "$OUT" length)" "17"
expect_eq "…every project id of the database, archived ones too" \
	"$(jf "$OUT" '[.[] | select(.kind == "projects") | .id] | sort | map(tostring) | join(" ")')" \
	"$(printf '%s\n' "$P1" "$P11" "$P111" "$P2" "$P3" "$PC" "$PC1" "$PA" "$PA1" "$PO" "$PP" | sort -n | tr '\n' ' ' | sed 's/ $//')"
expect_eq "…subprojects of listed trees marked as cascaded" \
	"$(jf "$OUT" '[.[] | select(.cascade) | .id] | sort | map(tostring) | join(" ")')" \
	"$(printf '%s\n' "$P11" "$P111" "$PC1" "$PP" | sort -n | tr '\n' ' ' | sed 's/ $//')"

# --- efficiency: requests O(projects), connections within the parallelism
check "HTTP requests and connections are logged" grep -qE "HTTP request\(s\) over [0-9]+ connection\(s\)" "$LOG"
CONNS=$(grep -oE "HTTP request\(s\) over [0-9]+ connection" "$LOG" | tail -n1 | grep -oE "[0-9]+" | tail -n1)
check "connections ($CONNS) at most parallel + 1" test "${CONNS:-99}" -le 4

# --- idempotent: a second run finds nothing and succeeds
expect_code 0 "purging again" ctl --json purge redmine --yes --wait
expect_eq "…nothing left to delete" "$(jf "$OUT" '.counts.projects // 0')" "0"
check "no API key in the log" sh -c "! grep -qF '$KEY' '$LOG'"
check "no API key in the journal or manifests" sh -c "! grep -rqF '$KEY' '$T/state'"

# --- the post-condition: a project that appears while the purge runs (a trigger in
# Redmine's database creates it when project 'seed' is deleted) fails the task.
PS=$(api POST /projects.json '{"project":{"name":"Seed","identifier":"seed"}}' | id_of project)
sqlite3 "$DB" "CREATE TRIGGER phoenix AFTER DELETE ON projects WHEN old.identifier = 'seed' BEGIN
	INSERT INTO projects (id, name, identifier, status, is_public, lft, rgt, inherit_members, created_on, updated_on)
	VALUES (999, 'Phoenix', 'phoenix', 1, 1, 1000, 1001, 0, datetime('now'), datetime('now')); END"
expect_code 7 "a project created during the purge: the task fails" ctl --json purge redmine --yes --wait
PHOENIX=$(sqlite3 "$DB" "SELECT id FROM projects WHERE identifier = 'phoenix'")
expect_contains "…naming what remains and what to do" "$(jf "$OUT" .error)" "1 object remains after the purge: projects $PHOENIX 'Phoenix'"
expect_contains "…and what to do" "$(jf "$OUT" .error)" "run the purge again"
expect_eq "…yet the deleted project is in its counts" "$(jf "$OUT" .counts.projects)" "1"
expect_eq "…and manifest" "$(ctl --json task "$(jf "$OUT" .id)" --manifest | jq -c 'map([.kind, .id])')" "[[\"projects\",$PS]]"
sqlite3 "$DB" "DROP TRIGGER phoenix"
expect_code 0 "purging again removes it" ctl --json purge redmine --yes --wait
expect_eq "…and finishes" "$(jf "$OUT" .status)/$(sqlite3 "$DB" "SELECT count(*) FROM projects")" "finished/0"

# --- default settings (parallel = 4) on SQLite, where concurrent DELETEs get
# "database is locked" (HTTP 500): the window shrinks and the purge succeeds.
seed_trees() { # N: N top-level projects, each with a subproject and 3 issues
	for n in $(seq 1 "$1"); do
		local top sub
		top=$(api POST /projects.json "{\"project\":{\"name\":\"Tree $n\",\"identifier\":\"tree-$n-$RANDOM\"}}" | id_of project)
		sub=$(api POST /projects.json "{\"project\":{\"name\":\"Tree $n sub\",\"identifier\":\"tree-$n-sub-$RANDOM\",\"parent_id\":$top}}" | id_of project)
		for p in "$top" "$top" "$sub"; do
			api POST /issues.json "{\"issue\":{\"project_id\":$p,\"subject\":\"work in $p\"}}" >/dev/null
		done
	done
}
seed_trees 12
printf '[target redmine-default]\ntype = redmine\nurl = %s\napi_key_file = %s\n' "$RURL" "$T/key" >>"$CONF"
expect_code 0 "reload" ctl reload
BUSY0=$(grep -c "HTTP 500 (server error" "$LOG")
START=$(date +%s%N)
expect_code 0 "default settings on SQLite: the purge succeeds" ctl --json purge redmine-default --yes --wait
echo "# 12 trees, 24 projects, 36 issues in $(( ($(date +%s%N) - START) / 1000000 )) ms;" \
	"$(( $(grep -c "HTTP 500 (server error" "$LOG") - BUSY0 )) DELETE(s) answered 500 and retried;" \
	"$(grep -oE "[0-9]+ HTTP request\(s\) over [0-9]+ connection\(s\)" "$LOG" | tail -n1)"
expect_eq "…24 projects, 36 issues" "$(jf "$OUT" .counts.projects)/$(jf "$OUT" .counts.issues)" "24/36"
expect_eq "…none left in the database" "$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM projects), (SELECT count(*) FROM issues)")" "0|0"

# gone_since LIST: the project ids of LIST no longer in Redmine's database; manifest_projects ID: those in task ID's manifest.
gone_since() { comm -23 <(printf '%s\n' "$1" | sort) <(sqlite3 "$DB" "SELECT id FROM projects" | sort) | sort -n | tr '\n' ' ' | sed 's/ $//'; }
manifest_projects() { ctl --json task "$1" --manifest | jq -r '[.[] | select(.kind == "projects") | .id] | sort | map(tostring) | join(" ")'; }

# --- a cancel mid-purge: no DELETE once the executor is asked to stop; the task is
# cancelled with exactly what is gone.
seed_trees 15
BEFORE=$(sqlite3 "$DB" "SELECT id FROM projects ORDER BY id")
expect_code 0 "a purge started" ctl --json purge redmine-default --yes --detach
ID=$(jf "$OUT" .id)
check "…that deleted a tree" wait_until 60 sh -c "[ \"\$(ctl --json task $ID | jq '.progress.done // 0')\" -ge 1 ]"
expect_code 0 "cancel it" ctl --json cancel "$ID"
expect_code 8 "…cancelled" ctl --json wait "$ID"
expect_contains "…the driver stopped on request" "$(jf "$OUT" .error)" "redmine 'redmine-default': stopped on request; projects: "
GONE=$(gone_since "$BEFORE")
check "…before the end ($(printf '%s' "$GONE" | wc -w) of 30 projects gone)" test "$(sqlite3 "$DB" "SELECT count(*) FROM projects")" -gt 0
expect_eq "…its manifest is exactly the projects gone" "$(manifest_projects "$ID")" "$GONE"
expect_eq "…and so are its counts" "$(jf "$OUT" '.counts.projects // 0')" "$(printf '%s' "$GONE" | wc -w)"
expect_code 0 "a purge finishes the job" ctl --json purge redmine-default --yes --wait

# --- Redmine stopped mid-purge: the task fails at once (not three tries of every
# DELETE left), and its manifest and counts are exactly what is gone.
seed_trees 20
BEFORE=$(sqlite3 "$DB" "SELECT id FROM projects ORDER BY id")
expect_code 0 "a purge started" ctl --json purge redmine-default --yes
ID=$(jf "$OUT" .id)
check "…that deleted a few trees" wait_until 60 sh -c "[ \"\$(ctl --json task $ID | jq '.progress.done // 0')\" -ge 4 ]"
"$PEERS/redmine-down.sh" "$RPORT" 2>/dev/null
STOPPED=$SECONDS
check "…then fails once Redmine is stopped" wait_until 30 sh -c "ctl --json task $ID | jq -e '.status == \"failed\"' >/dev/null"
check "…within seconds ($((SECONDS - STOPPED)) s)" test $((SECONDS - STOPPED)) -le 8
expect_code 0 "the task" ctl --json task "$ID"
expect_contains "…says Redmine stopped answering" "$(jf "$OUT" .error)" "Redmine stopped answering"
AFTER=$(sqlite3 "$DB" "SELECT id FROM projects ORDER BY id")
GONE=$(gone_since "$BEFORE")
check "…some trees deleted, some not ($(printf '%s' "$GONE" | wc -w) of 40 projects gone)" \
	test "$(printf '%s' "$GONE" | wc -w)" -ge 8 -a -n "$AFTER"
expect_eq "…the manifest is exactly the projects gone from Redmine's database" "$(manifest_projects "$ID")" "$GONE"
expect_eq "…and so are the counts" "$(jf "$OUT" .counts.projects)" "$(printf '%s' "$GONE" | wc -w)"
expect_eq "…issues counted are those gone" "$(jf "$OUT" .counts.issues)" \
	"$(( 60 - $(sqlite3 "$DB" "SELECT count(*) FROM issues") ))"
stop_purged TERM
finish
