#!/bin/bash
# Deletion protection (protect = yes) and the two-person rule (approvals = 1),
# issue 14 points 1 and 2, through every door: purgectl as two real users of
# the control group (created here, as root), Lucid Chain's route and the
# /v1 routes with two tokens, the CRDB route; expiry, reject, and a kill -9
# while a purge awaits approval.
. "$(dirname "$0")/lib.sh"

if [ "$IS_ROOT" != 1 ]; then
	echo "1..0 # SKIP needs root (creates two users and a group)"
	exit 77
fi

# Two administrators and their group, unique to this run, removed at the end.
GRP=pgap$$
U1=pgap1x$$
U2=pgap2x$$
groupadd "$GRP" && useradd -M -N -g "$GRP" -s /usr/sbin/nologin "$U1" && useradd -M -N -g "$GRP" -s /usr/sbin/nologin "$U2" || {
	echo "cannot create test users"; exit 1; }
trap 'userdel "$U1" 2>/dev/null; userdel "$U2" 2>/dev/null; groupdel "$GRP" 2>/dev/null; cleanup' EXIT
UID1=$(id -u "$U1")
UID2=$(id -u "$U2")
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$GRP" --clear-groups "$T/bin/purgectl" -s "$SOCK" "$@"; }
# login LOGINUID USER ARGS...: purgectl as USER in a login session of LOGINUID (as pam_loginuid sets it, then su/sudo).
login() {
	local luid=$1 u=$2
	shift 2
	sh -c 'echo "$1" >/proc/self/loginuid || exit 99; shift; exec "$@"' sh "$luid" \
		setpriv --reuid="$u" --regid="$GRP" --clear-groups "$T/bin/purgectl" -s "$SOCK" "$@"
}

# Two REST tokens: alice and bob.
PORT=$(free_port)
out=$("$T/bin/purgectl" token new alice 2>/dev/null)
TA=$(printf '%s\n' "$out" | sed -n 1p)
install -m 0600 /dev/null "$T/tokens"
printf '%s\n' "$out" | sed -n 2p >>"$T/tokens"
out=$("$T/bin/purgectl" token new bob 2>/dev/null)
TB=$(printf '%s\n' "$out" | sed -n 1p)
printf '%s\n' "$out" | sed -n 2p >>"$T/tokens"
U=http://127.0.0.1:$PORT
G=1d7741cc-1110-4e2f-bc6c-935292783d24
G2=2e8852dd-2221-4f30-bd7d-046303894e35
RP=$(free_port) # no redis listens there: nothing may ever be sent to it

write_config "control_group = $GRP" "max_executors = 1" <<EOF2
$(rest_conf)

[target vault]
type = noop
objects = 5
step_ms = 1
protect = yes

[crdb $G]
instance.1 = redis://127.0.0.1:$RP
protect = yes

[crdb $G2]
instance.1 = redis://127.0.0.1:$RP
approvals = 1

[target twoman]
type = noop
objects = 5
step_ms = 1
approvals = 1

[target slow]
type = noop
objects = 100000
step_ms = 10

[target brief]
type = noop
objects = 1
approvals = 1
approval_timeout = 2

[target lucid]
type = noop
objects = 3
step_ms = 1
approvals = 1

[target creds]
type = itop
url = http://127.0.0.1:$RP/webservices/rest.php
user = purge
password_file = $T/itop-pw
accept_request_credentials = yes
approvals = 1
EOF2
install -m 0600 /dev/null "$T/itop-pw"
echo "configured-password" >"$T/itop-pw"
PROTECT_LINE=$(grep -n '^protect = yes' "$CONF" | head -n 1 | cut -d: -f1)
start_purged || { finish; exit 1; }
expect_code 0 "purgectl targets" ctl targets
check "…shows vault protected" grep -qE '^vault +noop +protected ' <<<"$OUT"
check "…and twoman under the two-person rule" grep -qE '^twoman +noop +two-person ' <<<"$OUT"
check "purged-rest answers" wait_until 10 curl -sf "$U/healthz" -o /dev/null
AUDIT=$T/state/audit.jsonl

# expect_http STATUS DESCRIPTION TOKEN METHOD PATH [curl args...]: sets BODY and HEADERS.
expect_http() {
	local want=$1 what=$2 tok=$3 m=$4 p=$5 got
	shift 5
	got=$(curl -s -X "$m" -D "$T/h" -o "$T/b" -w '%{http_code}' -H "Authorization: Bearer $tok" "$@" "$U$p")
	BODY=$(cat "$T/b")
	HEADERS=$(cat "$T/h")
	if [ "$got" = "$want" ]; then ok "$what ($got)"; else not_ok "$what: HTTP $got, want $want: $BODY"; fi
}

# ---------------------------------------------------------------- 1. protection
echo "# protect = yes"
expect_code 4 "purgectl purge of a protected target is forbidden" ctl purge vault --yes
expect_contains "…saying where and what to do" "$ERR" \
	"target 'vault' is protected (protect = yes in $CONF:$PROTECT_LINE); change the configuration and reload to purge it"
expect_code 0 "plan of a protected target still works" ctl --json plan vault
expect_eq "…and counts what a purge would delete" "$(jf "$OUT" .counts.objects)" "5"
expect_http 403 "Lucid's route refuses a protected target" "$TA" POST /purge/vault
expect_contains "…in Lucid's words, saying why" "$(jf "$BODY" .message)" "Error: target 'vault' is protected (protect = yes in"
expect_code 4 "purgectl crdb purge of a protected database is forbidden" ctl crdb purge "$G" --instances 1 --yes
expect_contains "…saying why" "$ERR" "target '$G' is protected (protect = yes in $CONF:"
expect_http 403 "the CRDB route refuses a protected database" "$TA" PUT "/v1/crdbs/$G/purge" \
	-H 'Content-Type: application/json' --data '{"instances":[1]}'
expect_eq "…as forbidden" "$(jf "$BODY" .error_code)" "forbidden"
expect_eq "no task was created for any of them" "$(ctl --json tasks | jq '[.[] | select(.operation != "plan")] | length')" "0"
check "the refusals are audited" grep -q '"op":"purge","target":"vault","task":null,"outcome":"forbidden"' "$AUDIT"
check "…the CRDB one too" grep -q "\"op\":\"crdb.purge\",\"target\":\"$G\",\"task\":null,\"outcome\":\"forbidden\"" "$AUDIT"
sed -i 's/^protect = yes$/protect = no/' "$CONF"
expect_code 0 "reload with protect = no" ctl reload
expect_code 0 "…then the purge runs" ctl --json purge vault --yes --wait
expect_eq "…and finishes" "$(jf "$OUT" .status)" "finished"

# ---------------------------------------------------------------- 2. the two-person rule
echo "# approvals = 1: purgectl as two users of the control group"
expect_code 0 "$U1 asks for a purge of an approvals = 1 target" as "$U1" --json purge twoman --yes --detach
ID=$(jf "$OUT" .id)
expect_eq "…the task awaits approval" "$(jf "$OUT" .status)" "awaiting_approval"
expect_eq "…the requester is $U1's identity" "$(jf "$OUT" .approval.requester)" "uid $UID1"
expect_code 0 "without --json, purgectl says how to approve" as "$U1" task "$ID"
expect_contains "…who may approve" "$OUT" "may approve: anyone allowed to use purged"
expect_contains "…and the command" "$OUT" "purgectl approve $ID"
expect_eq "it counts as the target's active purge" "$(ctl --json targets | jq -r '.[] | select(.name == "twoman") | .active_task')" "$ID"
expect_code 6 "a second purge of the target is a conflict" as "$U2" purge twoman --yes --detach
never_within 1 "nothing runs while it awaits" executor_pid "$ID"
expect_code 4 "$U1 cannot approve their own request" as "$U1" approve "$ID"
expect_contains "…and is told who can" "$ERR" "asked for this purge and cannot approve it: another person must"
expect_code 4 "…nor through another connection of the same uid" as "$U1" --json approve "$ID"
expect_eq "the task still awaits approval" "$(task_status "$ID")" "awaiting_approval"
check "the refused approval is audited" grep -q "\"who\":\"$U1\",\"uid\":$UID1,\"door\":\"ctl\",\"op\":\"tasks.approve\",\"target\":\"twoman\",\"task\":\"$ID\",\"outcome\":\"forbidden\"" "$AUDIT"
expect_code 0 "$U2 approves" as "$U2" approve "$ID"
expect_contains "…purgectl says so" "$OUT" "task $ID: approved"
expect_code 0 "…and the purge runs to its end" ctl --json wait "$ID"
expect_eq "…finished" "$(jf "$OUT" .status)" "finished"
expect_eq "…with every object" "$(jf "$OUT" .counts.objects)" "5"
expect_eq "…recording who approved" "$(jf "$OUT" .approval.decided_by)" "$U2 (uid $UID2)"
check "who asked is audited" grep -q "\"who\":\"$U1\",\"uid\":$UID1,\"door\":\"ctl\",\"op\":\"purge\",\"target\":\"twoman\",\"task\":\"$ID\",\"outcome\":\"ok\"" "$AUDIT"
check "who approved is audited" grep -q "\"who\":\"$U2\",\"uid\":$UID2,\"door\":\"ctl\",\"op\":\"tasks.approve\",\"target\":\"twoman\",\"task\":\"$ID\",\"outcome\":\"ok\"" "$AUDIT"

echo "# reject"
expect_code 0 "$U1 asks again" as "$U1" --json purge twoman --yes --detach
ID=$(jf "$OUT" .id)
expect_code 0 "$U2 rejects" as "$U2" reject "$ID"
expect_contains "…purgectl says so" "$OUT" "task $ID: rejected"
expect_eq "…the task is cancelled" "$(task_status "$ID")" "cancelled"
expect_contains "…saying by whom" "$(ctl --json task "$ID" | jq -r .error)" "rejected by $U2 (uid $UID2)"
check "who rejected is audited" grep -q "\"who\":\"$U2\",\"uid\":$UID2,\"door\":\"ctl\",\"op\":\"tasks.reject\",\"target\":\"twoman\",\"task\":\"$ID\",\"outcome\":\"ok\"" "$AUDIT"
expect_code 6 "a rejected task cannot be approved" as "$U1" approve "$ID"

echo "# the login uid decides, not the uid"
if sh -c 'echo 4242 >/proc/self/loginuid' 2>/dev/null; then
	expect_code 0 "$U1 in login session 1500 asks" login 1500 "$U1" --json purge twoman --yes --detach
	ID=$(jf "$OUT" .id)
	expect_eq "…the requester is the login uid" "$(jf "$OUT" .approval.requester)" "uid 1500"
	expect_code 4 "$U2 in the same login session (one person, two accounts) cannot approve" login 1500 "$U2" approve "$ID"
	expect_code 4 "…nor root in that session (sudo)" login 1500 root approve "$ID"
	expect_code 0 "root in another login session (another administrator who used sudo) approves" login 1600 root approve "$ID"
	check "…and the purge finishes" wait_until 10 status_is "$ID" finished
	check "the audit line names the approver's identity" grep -q "\"who\":\"root\",\"uid\":0,\"door\":\"ctl\",\"op\":\"tasks.approve\",\"target\":\"twoman\",\"task\":\"$ID\",\"outcome\":\"ok\",.*\"identity\":\"uid 1600\"" "$AUDIT"
else
	skip_part "login uid" "this kernel or container does not let root set /proc/self/loginuid"
fi

echo "# cancel"
expect_code 0 "$U1 asks" as "$U1" --json purge twoman --yes --detach
ID=$(jf "$OUT" .id)
expect_code 0 "a task awaiting approval can be cancelled like a queued one" as "$U1" cancel "$ID"
expect_eq "…cancelled" "$(task_status "$ID")" "cancelled"

echo "# expiry"
expect_code 0 "a purge of a target with approval_timeout = 2" ctl --json purge brief --yes --detach
ID=$(jf "$OUT" .id)
check "…is cancelled once the timeout passes" wait_until 6 status_is "$ID" cancelled
expect_contains "…saying why" "$(ctl --json task "$ID" | jq -r .error)" "not approved within approval_timeout (2 s)"
check "…audited" grep -q "\"op\":\"tasks.expire\",\"target\":\"brief\",\"task\":\"$ID\",\"outcome\":\"expired\"" "$AUDIT"
expect_code 0 "purgectl wait follows through approval" ctl --json purge twoman --yes --detach
ID=$(jf "$OUT" .id)
: >"$T/wait.err"
ctl --json wait "$ID" >"$T/wait.out" 2>"$T/wait.err" &
WAITER=$!
check "…the waiter says it awaits approval" wait_until 5 grep -q "awaits approval by another person" "$T/wait.err"
expect_code 0 "$U2 approves root's request" as "$U2" approve "$ID"
wait "$WAITER"
expect_eq "…the waiter ends with the purge, exit 0" "$?" "0"
expect_eq "…finished" "$(jq -r .status "$T/wait.out")" "finished"

echo "# kill -9 while a purge awaits approval"
expect_code 0 "$U1 asks" as "$U1" --json purge twoman --yes --detach
ID=$(jf "$OUT" .id)
DEADLINE=$(jf "$OUT" .approval.deadline)
stop_purged KILL
start_purged || { finish; exit 1; }
expect_eq "after the restart the task still awaits approval" "$(task_status "$ID")" "awaiting_approval"
expect_eq "…its deadline intact" "$(ctl --json task "$ID" | jq -r .approval.deadline)" "$DEADLINE"
expect_code 4 "…$U1 still cannot approve it" as "$U1" approve "$ID"
expect_code 0 "…$U2 can" as "$U2" approve "$ID"
check "…and it finishes" wait_until 10 status_is "$ID" finished
expect_code 0 "a graceful stop keeps an awaiting task too" as "$U1" --json purge twoman --yes --detach
ID=$(jf "$OUT" .id)
stop_purged TERM
start_purged || { finish; exit 1; }
expect_eq "…still awaiting" "$(task_status "$ID")" "awaiting_approval"
expect_code 0 "a purge with approval_timeout = 2" ctl --json purge brief --yes --detach
BRIEF=$(jf "$OUT" .id)
stop_purged KILL
sleep 2.5
start_purged || { finish; exit 1; }
check "…whose deadline passed while purged was down expires at the restart" wait_until 3 status_is "$BRIEF" cancelled
expect_contains "…saying why" "$(ctl --json task "$BRIEF" | jq -r .error)" "not approved within approval_timeout (2 s)"

echo "# re-checked at approval against the running configuration"
sed -i '/^\[target twoman\]/a protect = yes' "$CONF"
expect_code 0 "reload protecting the target meanwhile" ctl reload
expect_code 4 "$U2's approval is refused" as "$U2" approve "$ID"
expect_contains "…saying why" "$ERR" "target 'twoman' is protected"
expect_eq "…the task ended without running" "$(task_status "$ID")" "failed"
sed -i '/^protect = yes$/d' "$CONF"
expect_code 0 "reload unprotecting it" ctl reload
echo "# ... and again at start"
expect_code 0 "a long purge holds the only executor (max_executors = 1)" ctl --json purge slow --yes --detach
SLOW=$(jf "$OUT" .id)
check "…it runs" wait_until 5 status_is "$SLOW" started
expect_code 0 "$U1 asks" as "$U1" --json purge twoman --yes --detach
ID=$(jf "$OUT" .id)
expect_code 0 "$U2 approves" as "$U2" --json approve "$ID"
expect_eq "…the task is queued behind the long one" "$(jf "$OUT" .status)" "queued"
sed -i '/^\[target twoman\]/a protect = yes' "$CONF"
expect_code 0 "reload protecting the target before it starts" ctl reload
expect_code 0 "the long purge is cancelled, freeing the executor" ctl cancel "$SLOW"
check "…the approved task fails instead of starting" wait_until 10 status_is "$ID" failed
expect_contains "…saying why" "$(ctl --json task "$ID" | jq -r .error)" "target 'twoman' is protected (protect = yes in $CONF:"
expect_eq "…it never started" "$(ctl --json task "$ID" | jq -r .started)" "null"
sed -i '/^protect = yes$/d' "$CONF"
expect_code 0 "reload unprotecting it" ctl reload

echo "# REST: two tokens"
check "purged-rest answers after the restarts" wait_until 10 curl -sf "$U/healthz" -o /dev/null
expect_http 409 "Lucid's synchronous route: an error naming the task" "$TA" POST /purge/lucid
ID=$(jf "$BODY" .message | grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' | head -n 1)
expect_contains "…and how to approve it" "$(jf "$BODY" .message)" "POST /v1/tasks/$ID/approve with another token"
expect_http 200 "the task awaits approval" "$TA" GET "/v1/tasks/$ID"
expect_eq "…as the task object says" "$(jf "$BODY" .status)" "awaiting_approval"
expect_eq "…asked by token alice" "$(jf "$BODY" .approval.requester)" "token alice"
expect_http 403 "alice cannot approve her own request" "$TA" POST "/v1/tasks/$ID/approve"
expect_eq "…forbidden" "$(jf "$BODY" .error_code)" "forbidden"
expect_http 200 "bob approves" "$TB" POST "/v1/tasks/$ID/approve"
check "…and the purge finishes" wait_until 10 status_is "$ID" finished
check "bob's approval is audited" grep -q "\"who\":\"bob\",\"uid\":null,\"door\":\"rest\",\"op\":\"tasks.approve\",\"target\":\"lucid\",\"task\":\"$ID\",\"outcome\":\"ok\"" "$AUDIT"
expect_http 202 "with Prefer: respond-async, 202" "$TA" POST /purge/lucid -H 'Prefer: respond-async'
ID=$(jf "$BODY" .id)
expect_contains "…and the task's Location" "$HEADERS" "Location: /v1/tasks/$ID"
expect_eq "…awaiting approval" "$(jf "$BODY" .status)" "awaiting_approval"
expect_http 200 "bob rejects it" "$TB" POST "/v1/tasks/$ID/reject"
expect_eq "…cancelled" "$(jf "$BODY" .status)" "cancelled"
expect_http 200 "the CRDB route accepts a purge that needs approval" "$TA" PUT "/v1/crdbs/$G2/purge" \
	-H 'Content-Type: application/json' --data '{"instances":[1]}'
ID=$(jf "$BODY" .id)
expect_eq "…Redis Enterprise's task object says queued" "$(jf "$BODY" .status)" "queued"
expect_eq "…and why" "$(jf "$BODY" .pending_reason)" "awaiting_approval"
expect_http 200 "GET /v1/crdb_tasks/ID says the same" "$TA" GET "/v1/crdb_tasks/$ID"
expect_eq "…queued, awaiting approval" "$(jf "$BODY" '.status + " " + .pending_reason')" "queued awaiting_approval"
expect_http 200 "bob rejects it" "$TB" POST "/v1/tasks/$ID/reject"
expect_eq "…cancelled" "$(jf "$BODY" .status)" "cancelled"
expect_http 400 "a malformed task id is a bad request" "$TB" POST "/v1/tasks/nope/approve"

echo "# credentials from a REST body are never journaled"
expect_http 202 "a purge with credentials in its body awaits approval" "$TA" POST /purge/creds \
	-H 'Prefer: respond-async' -H 'Content-Type: application/json' --data '{"username":"u","password":"BODY-SECRET-42"}'
ID=$(jf "$BODY" .id)
expect_eq "…the task says they are held" "$(jf "$BODY" .approval.request_credentials)" "true"
check "…the journal never holds the password" no_match -r "BODY-SECRET-42" "$T/state"
stop_purged KILL
start_purged || { finish; exit 1; }
expect_eq "after a restart that task fails" "$(task_status "$ID")" "failed"
expect_contains "…saying why" "$(ctl --json task "$ID" | jq -r .error)" "are never journaled and were lost at the daemon's restart"
check "…and the log never held the password" no_match "BODY-SECRET-42" "$LOG"

stop_purged TERM
finish
