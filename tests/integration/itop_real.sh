# iTop purges against a REAL iTop 3.2.0 behind nginx + php-fpm + MariaDB, started by
# ../shared/peers/itop-up.sh (sourced by itop.sh when that script exists; lib.sh is loaded).
# Seeded by tests/peers/itop_seed.py (REST core/create, and UserRequests copied in SQL).
# Checks: the exact URL (rest.php, and the 404 of rest.php/ named with the URL sent); a
# custom classes blocked by objects outside it (named, the remedy said, nothing deleted);
# cascades (plan = counts = manifest, marked); the default scope (the whole database,
# 500 UserRequests in 3 chunks, plan = counts, what is kept, REST user and admin working
# afterwards, a second purge quick); the REST user's rights (no REST profile; every
# profile but Administrator); a delete answered too late (reconciled: every manifest
# entry really gone); the post-condition failing on an object created during the purge.
SHARED_PEERS=$(cd "$PURGED_SOURCE_DIR/../shared/peers" && pwd)
# One port per machine: iTop's first start on a port installs it (about a minute), later
# starts restore its pristine database in seconds. Another port if that one is taken.
IPORT=${ITOP_TEST_PORT:-18632}
if (exec 3<>"/dev/tcp/127.0.0.1/$IPORT") 2>/dev/null; then IPORT=$(free_port); fi
ISTATE=${ITOP_STATE_ROOT:-/var/tmp/itop-peer}/$IPORT
PROXY_PID=
trap '[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; "$SHARED_PEERS/itop-down.sh" "$IPORT" >/dev/null 2>&1; cleanup' EXIT
itop_up() { # fresh data: the pristine database of the installation
	local t0=$SECONDS
	if ! IURL=$("$SHARED_PEERS/itop-up.sh" "$IPORT" "$T/pw" 2>"$T/itop-up.log"); then
		cat "$T/itop-up.log"
		not_ok "the real iTop did not start"
		finish
		exit 1
	fi
	IURL=$(printf '%s\n' "$IURL" | head -n 1) # then the REST user's login
	ok "a real iTop 3.2.0 behind nginx at $IURL ($((SECONDS - t0)) s to start)"
}
itop_up
ADMINPW=$ISTATE/secrets/admin-password
SOCKET=$ISTATE/mysql/mysqld.sock
is() { python3 "$PEERS/itop_seed.py" "$IURL" purger "$T/pw" "$@"; }
icount() { is count "SELECT $1${2:+ WHERE $2}"; }
# PWFILE CLASS: does LOGIN (with the password in PWFILE) still get answers?
works_as() { python3 "$PEERS/itop_seed.py" "$IURL" "$1" "$2" count "SELECT $3" >/dev/null 2>&1; }
manifest_ids() { # TASK KIND: the ids of KIND in the task's manifest, comma-separated
	ctl --json task "$1" --manifest | jq -r --arg k "$2" '[.[] | select(.kind == $k) | .id] | join(",")'
}
sumcounts() { jq '[.counts[]] | add // 0'; }

# iTop's password policy: 8+ characters, upper and lower case, a digit, a special character.
(umask 077 && printf 'Ot-%s-5q!' "$(head -c 16 /dev/urandom | base64 | tr -d '+/=')" >"$T/other-pw")
other_users() { # after each itop_up: the pristine database has only admin and purger
	is user norest "$T/other-pw" "Configuration Manager" >/dev/null &&
		is user nonadmin "$T/other-pw" "REST Services User" "Configuration Manager" "Service Desk Agent" \
			"Support Agent" "Problem Manager" "Change Implementor" "Change Supervisor" "Change Approver" \
			"Service Manager" "Document author" >/dev/null
}

# A real iTop cannot be made to answer late on demand: tests/peers/fault_proxy.py in front of
# it holds back the answer of one real delete (the delete itself goes to iTop and happens).
PPORT=$(free_port)
python3 "$PEERS/fault_proxy.py" "$PPORT" "$IPORT" >"$T/proxy.log" 2>&1 &
PROXY_PID=$!
PORT=$(free_port)
mint_token ci
write_config <<EOF2
$(rest_conf)

[target itop]
type = itop
url = $IURL
user = purger
password_file = $T/pw

[target itop-slash]
type = itop
url = $IURL/
user = purger
password_file = $T/pw

[target itop-orgs]
type = itop
url = $IURL
user = purger
password_file = $T/pw
classes = Organization

[target itop-typologies]
type = itop
url = $IURL
user = purger
password_file = $T/pw
classes = Typology

[target itop-links]
type = itop
url = $IURL
user = purger
password_file = $T/pw
classes = Ticket
chunk = 100

[target itop-cascade]
type = itop
url = $IURL
user = purger
password_file = $T/pw
classes = FunctionalCI, Document, KnownError, Contact, Location, Contract, ServiceSubcategory, SLA, Service, ServiceFamily, Organization

[target itop-norest]
type = itop
url = $IURL
user = norest
password_file = $T/other-pw

[target itop-nonadmin]
type = itop
url = $IURL
user = nonadmin
password_file = $T/other-pw

[target itop-late]
type = itop
url = http://127.0.0.1:$PPORT/webservices/rest.php
user = purger
password_file = $T/pw
timeout = 8
chunk = 300

[target itop-bodycreds]
type = itop
url = $IURL
user = purger
password_file = $T/pw
accept_request_credentials = yes
EOF2
# A cancel lets the executor finish the delete in flight (a few seconds) and stop.
sed -i 's/^cancel_grace = 1$/cancel_grace = 60/' "$CONF"
start_purged || { finish; exit 1; }

# ---- phase 1: 20 user requests; what blocks a custom classes; cascades
S1=$(is seed P1 20 "$SOCKET") && ok "seeded: $S1" || not_ok "seeding failed"
ORGS0=$(icount Organization)
expect_code 7 "url ending in rest.php/ (a 404 behind Debian's nginx PHP location)" ctl --json purge itop-slash --yes --wait
expect_contains "…the error names HTTP 404 and the URL sent, slash included" "$(jf "$OUT" .error)" "HTTP 404 from $IURL/ "

expect_code 7 "classes = Organization: blocked" ctl --json purge itop-orgs --yes --wait
E=$(jf "$OUT" .error)
expect_contains "…the blocking objects named" "$E" "blocked by"
expect_contains "…a Person among them" "$E" "Person $(jq .persons[0] <<<"$S1") 'P1 John Doe'"
expect_contains "…the remedy" "$E" "add their classes to classes, or remove the classes override"
expect_eq "…and nothing deleted" "$(icount Organization)" "$ORGS0"

expect_code 0 "plan of a classes without tickets" ctl --json plan itop-cascade
PLAN=$(jf "$OUT" '.counts | to_entries | sort_by(.key) | from_entries')
expect_eq "…the 20 user requests that go in cascade with their Organization are in the plan" "$(jf "$PLAN" .UserRequest)" "20"
expect_eq "…the NormalChange and the Problem too" "$(jf "$PLAN" '[.NormalChange, .Problem] | join(",")')" "1,1"
expect_code 0 "purge it" ctl --json purge itop-cascade --yes --wait
ID=$(jf "$OUT" .id)
expect_eq "…finished" "$(jf "$OUT" .status)" "finished"
expect_eq "…its counts are the plan's" "$(jf "$OUT" '.counts | to_entries | sort_by(.key) | from_entries')" "$PLAN"
expect_code 0 "…manifest" ctl --json task "$ID" --manifest
expect_eq "…one entry per count" "$(jf "$OUT" length)" "$(jf "$PLAN" '[.[]] | add')"
expect_eq "…the 22 tickets marked as cascades" "$(jf "$OUT" '[.[] | select(.cascade and (.kind == "UserRequest" or .kind == "NormalChange" or .kind == "Problem"))] | length')" "22"
expect_eq "…and really gone" "$(icount Ticket)" "0"

# ---- phase 2: the default scope, the whole database; 500 user requests in chunks of 200
itop_up
S2=$(is seed P2 500 "$SOCKET") && ok "seeded with 500 user requests" || not_ok "seeding failed"
check "users without the REST profile, and with every profile but Administrator" other_users
expect_code 7 "a user without the REST Services User profile" ctl --json purge itop-norest --yes --wait
expect_contains "…code 1, iTop's reason" "$(jf "$OUT" .error)" "iTop code 1"
expect_contains "…explained" "$(jf "$OUT" .error)" "REST Services User"
expect_code 7 "every profile but Administrator" ctl --json purge itop-nonadmin --yes --wait
expect_contains "…is refused (it may not even read the User accounts)" "$(jf "$OUT" .error)" "iTop code 1"
expect_contains "…for lack of permissions" "$(jf "$OUT" .error)" "does not have enough permissions"
expect_code 0 "plan" ctl --json plan itop
PLAN=$(jf "$OUT" '.counts | to_entries | sort_by(.key) | from_entries')
expect_eq "…502 tickets (500 requests, a change, a problem)" "$(jf "$PLAN" .Ticket)" "502"
expect_eq "…3 functional CIs (whatever their leaf class)" "$(jf "$PLAN" .FunctionalCI)" "3"
expect_eq "…3 contacts (the admin's and the REST user's Persons kept)" "$(jf "$PLAN" .Contact)" "3"
expect_eq "…2 organizations (the one holding the kept Persons stays)" "$(jf "$PLAN" .Organization)" "2"
expect_eq "…cascades outside the scope: the team membership, the CI linked to a ticket" \
	"$(jf "$PLAN" '[.lnkPersonToTeam, .lnkFunctionalCIToTicket] | join(",")')" "1,1"
expect_eq "…the plan deleted nothing" "$(icount UserRequest)" "500"
T0=$SECONDS
expect_code 0 "purge the whole database" ctl --json purge itop --yes --wait
WALL=$((SECONDS - T0))
ID=$(jf "$OUT" .id)
expect_eq "…finished" "$(jf "$OUT" .status)" "finished"
expect_eq "…counts are the plan's" "$(jf "$OUT" '.counts | to_entries | sort_by(.key) | from_entries')" "$PLAN"
REQS=$(grep "$ID: itop 'itop': purge of" "$LOG" | sed -n 's/.*: \([0-9]*\) requests.*/\1/p')
echo "# for the record: purge of $(jf "$PLAN" '[.[]] | add') objects (500 user requests) in $WALL s, $REQS requests"
CHUNKS=$(grep "$ID: itop 'itop': deleted [0-9]* Ticket " "$LOG" | sed -n 's/.*deleted \([0-9]*\) Ticket .* in \([0-9.]*\) s$/\1 \2/p')
echo "# tickets deleted per request, and seconds: $(printf '%s' "$CHUNKS" | tr '\n' ';')"
expect_eq "…tickets deleted in 3 chunks (200, 200, 102)" "$(printf '%s\n' "$CHUNKS" | cut -d' ' -f1 | tr '\n' ' ')" "200 200 102 "
check "…each well under the 60 s timeout (30 s at most)" test -n "$CHUNKS" -a \
	"$(printf '%s\n' "$CHUNKS" | awk '$2 > 30 { bad = 1 } END { print bad + 0 }')" = 0
check "…requests O(chunks + classes), not O(objects): $REQS" test -n "$REQS" -a "${REQS:-999}" -le 140
expect_code 0 "…manifest" ctl --json task "$ID" --manifest
expect_eq "…one entry per count" "$(jf "$OUT" length)" "$(jf "$PLAN" '[.[]] | add')"
expect_eq "…cascades marked" "$(jf "$OUT" '[.[] | select(.cascade) | .kind] | sort | join(",")')" "lnkFunctionalCIToTicket,lnkPersonToTeam"
for cls in Ticket FunctionalCI Document KnownError Contract Service ServiceFamily SLA Location Team; do
	expect_eq "iTop has no $cls left" "$(icount "$cls")" "0"
done
expect_eq "the admin's and the REST user's Persons stay" "$(icount Person)" "2"
expect_eq "…and their Organization" "$(icount Organization)" "1"
expect_eq "the User accounts stay" "$(icount User)" "4"
check "the REST user still works" works_as purger "$T/pw" Organization
check "admin still works" works_as admin "$ADMINPW" Organization
T0=$SECONDS
expect_code 0 "a second purge" ctl --json purge itop --yes --wait
WALL2=$((SECONDS - T0))
expect_eq "…finished, nothing deleted" "$(jf "$OUT" '[.status, (.counts | length)] | join(",")')" "finished,0"
check "…quickly: $WALL2 s" test "$WALL2" -le 15

# ---- phase 3: a delete answered too late (timeout = 8, chunk = 300): reconciled, truthful
S3=$(is seed P3 300 "$SOCKET") && ok "seeded with 300 user requests" || not_ok "seeding failed"
check "the proxy will hold back the answer of the first real delete" curl -sf -X POST \
	"http://127.0.0.1:$PPORT/__fault?mode=late&count=1&match=%22simulate%22%3Afalse"
expect_code 7 "a delete of 300 answered too late" ctl --json purge itop-late --yes --wait
ID=$(jf "$OUT" .id)
E=$(jf "$OUT" .error)
expect_contains "…no answer within 8 s" "$E" "no answer within 8 s from http://127.0.0.1:$PPORT/webservices/rest.php "
check "…not 'cannot reach'" sh -c "! printf '%s' \"\$1\" | grep -q 'cannot reach'" _ "$E"
expect_contains "…reconciled, and said" "$E" "re-listed to reconcile"
N=$(jf "$OUT" '.counts.Ticket // 0')
IDS=$(manifest_ids "$ID" Ticket)
check "…some confirmed deleted (iTop deletes tens a second): $N of 300" test "$N" -gt 0
expect_eq "…manifest = counts" "$(printf '%s' "$IDS" | tr ',' '\n' | grep -c .)" "$N"
expect_eq "…every ticket in the manifest is really gone" "$(is present Ticket "$IDS")" "0"
settled() { # iTop went on deleting that chunk: wait until the tickets stop going (2 left at most)
	local a b
	a=$(icount Ticket)
	for _ in $(seq 60); do
		sleep 1
		b=$(icount Ticket)
		[ "$a" = "$b" ] && [ "${b:-9}" -le 2 ] && return 0
		a=$b
	done
	return 1
}
check "…iTop finished that delete on its own" settled
expect_code 0 "…a purge afterwards finishes the job" ctl --json purge itop --yes --wait

# ---- a delete that iTop carried out but that was answered by a gateway's 504 (or a PHP crash's 500):
# an uncertain outcome, reconciled like a timeout, never "nothing was deleted" (review of issue 11, F1)
S4=$(is seed P4 100 "$SOCKET") && ok "seeded with 100 user requests" || not_ok "seeding failed"
BEFORE=$(icount Ticket)
check "the proxy will answer the first real delete with a gateway's 504, after iTop did it" curl -sf -X POST \
	"http://127.0.0.1:$PPORT/__fault?mode=gw504&count=1&match=%22simulate%22%3Afalse"
expect_code 7 "a delete answered 504 fails the task" ctl --json purge itop-late --yes --wait
ID=$(jf "$OUT" .id)
E=$(jf "$OUT" .error)
expect_contains "…naming the status and where to look, not the url" "$E" "HTTP 504 from http://127.0.0.1:$PPORT/webservices/rest.php: iTop or its web server failed on this request; see their error logs"
expect_contains "…reconciled, and said" "$E" "re-listed to reconcile"
N=$(jf "$OUT" '.counts.Ticket // 0')
IDS=$(manifest_ids "$ID" Ticket)
expect_eq "…every ticket iTop deleted is recorded ($BEFORE before, $(icount Ticket) after)" "$N" "$((BEFORE - $(icount Ticket)))"
check "…and that is at least the 100 seeded" test "$N" -ge 100
expect_eq "…manifest = counts" "$(printf '%s' "$IDS" | tr ',' '\n' | grep -c .)" "$N"
expect_eq "…every ticket in the manifest is really gone" "$(is present Ticket "$IDS")" "0"
expect_code 0 "…a purge afterwards finishes the job" ctl --json purge itop --yes --wait

# ---- a cancel: the delete in flight ends and is recorded, then the executor stops
S5=$(is seed P5 500 "$SOCKET") && ok "seeded with 500 user requests" || not_ok "seeding failed"
expect_code 0 "purge (detached)" ctl --json purge itop --yes --detach
ID=$(jf "$OUT" .id)
check "…a first chunk deleted, counted live" wait_until 60 sh -c "ctl --json task $ID | jq -e '.counts.Ticket >= 200' >/dev/null"
expect_code 0 "cancel it" ctl --json cancel "$ID"
expect_code 8 "…cancelled" ctl --json wait "$ID"
expect_contains "…the driver stopped between requests" "$(jf "$OUT" .error)" "stopped on request after"
N=$(jf "$OUT" '.counts.Ticket // 0')
IDS=$(manifest_ids "$ID" Ticket)
expect_eq "…manifest = counts ($N)" "$(printf '%s' "$IDS" | tr ',' '\n' | grep -c .)" "$N"
expect_eq "…every one of them gone" "$(is present Ticket "$IDS")" "0"
expect_eq "…and every other ticket still there: nothing deleted unrecorded" "$(icount Ticket)" "$((502 - N))"
expect_code 0 "…a purge afterwards finishes the job" ctl --json purge itop --yes --wait

# ---- phase 4: the post-condition: an object created during the purge
S4=$(is seed P4 200 "$SOCKET") && ok "seeded with 200 user requests" || not_ok "seeding failed"
ID=$(ctl --json purge itop --yes | jq -r .id)
# Its scope is listed (the first progress has a total) and 202 tickets take seconds to delete.
check "purge started" wait_until 30 sh -c "ctl --json task $ID | jq -e '.progress.total > 0' >/dev/null"
INTRUDER=$(is create Location '{"name":"intruder","org_id":"SELECT Organization WHERE id = 1"}')
check "a Location created meanwhile" test -n "$INTRUDER"
wait_until 120 sh -c "ctl --json task $ID | jq -e '.ended' >/dev/null"
expect_code 0 "the task" ctl --json task "$ID"
expect_eq "…failed" "$(jf "$OUT" .status)" "failed"
expect_contains "…the object left named" "$(jf "$OUT" .error)" "1 object remains after the purge: Location $INTRUDER 'intruder'"
expect_eq "…what was deleted is recorded" "$(jf "$OUT" .counts.Ticket)" "202"

# ---- issue 12: Typology in classes is every typology but the reference lists, as in the default
MODEL=$(is create Model '{"name":"purged model","brand_id":"SELECT Brand WHERE name = '"'Dell'"'","type":"Server"}')
check "a Model created" test -n "$MODEL"
expect_code 0 "a plan of classes = Typology" ctl --json plan itop-typologies
expect_eq "…counts the Model, not the reference typologies (Brand, OSFamily, OSVersion)" "$(jf "$OUT" '.counts | tojson')" '{"Typology":1}'
expect_code 0 "…the purge" ctl --json purge itop-typologies --yes --wait
expect_eq "…the Model gone, the 13 Brands kept" "$(icount Model)/$(icount Brand)" "0/13"

# ---- issue 12: tickets with 5 links each, which go in cascade: a simulation's answer holds the
# set and its cascades, so sets are sized from the last answer (a set of 2 000 such tickets took
# 33 MiB; review of issue 12, F2)
S6=$(is seed P6 600 "$SOCKET") && ok "seeded with 600 user requests" || not_ok "seeding failed"
mariadb --no-defaults --socket="$SOCKET" -uroot itop -e "
	INSERT INTO lnkcontacttoticket (ticket_id, contact_id, role, impact_code)
		SELECT t.id, c.id, 'a role', 'manual' FROM ticket t JOIN (SELECT id FROM contact LIMIT 3) c;
	INSERT INTO lnkfunctionalcitoticket (ticket_id, functionalci_id, impact, impact_code)
		SELECT t.id, f.id, 'an impact', 'manual' FROM ticket t JOIN (SELECT id FROM functionalci LIMIT 2) f;" &&
	ok "5 links per ticket" || not_ok "linking failed"
expect_code 0 "purge the tickets, chunk = 100" ctl --json purge itop-links --yes --wait
ID=$(jf "$OUT" .id)
expect_eq "…all of them" "$(icount Ticket)" "0"
SIMS=$(grep "$ID: itop 'itop-links': simulated the delete of" "$LOG" | sed -n 's/.*delete of \([0-9]*\) Ticket: \([0-9]*\) objects.*/\1:\2/p' | tr '\n' ' ')
echo "# simulations (tickets asked: objects answered): $SIMS"
check "…the first set a chunk, the next ones sized from its answer" sh -c "printf '%s' '$SIMS' | grep -qE '^100:[0-9]+ [0-9]+:'"
check "…no answer far past 2000 objects" test "$(printf '%s' "$SIMS" | tr ' ' '\n' | cut -d: -f2 | sort -n | tail -n 1)" -le 2600
RSS=$(grep "$ID: done: peak RSS" "$LOG" | grep -o '[0-9]* KiB' | grep -o '[0-9]*')
if [ "$SANITIZED" = 1 ]; then
	echo "# the executor's peak RSS: $RSS KiB (ASan's shadow memory and quarantine: not checked)"
else
	check "…the executor's peak RSS under 16 MiB: $RSS KiB" test "${RSS:-99999}" -le 16384
fi

# ---- Lucid Chain's route, with the body's credentials where accepted
R=$(curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	-d '{"username":"purger","password":"body-pw-wrong"}' "http://127.0.0.1:$PORT/purge/itop-bodycreds")
expect_eq "accept_request_credentials: the body's (wrong) password is used" "$(printf '%s' "$R" | tail -n1)" "500"
expect_contains "…and iTop refuses it" "$(printf '%s' "$R" | head -n1 | jq -r .message)" "iTop code 1"
R=$(curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	-d "{\"server\":\"127.0.0.1\",\"port\":$IPORT,\"api_path\":\"/webservices/rest.php\",\"username\":\"x\",\"password\":\"body-pw-ignored\"}" \
	"http://127.0.0.1:$PORT/purge/itop")
expect_eq "POST /purge/itop: 200" "$(printf '%s' "$R" | tail -n1)" "200"
expect_eq "…Lucid Chain's message" "$(printf '%s' "$R" | head -n1 | jq -r .message)" "Database from iTop successfully purged"
expect_eq "…the intruder is gone too" "$(icount Location)" "0"

PW=$(cat "$T/pw")
check "no password in the log" no_match -F "$PW" "$LOG"
check "no password in the journal or manifests" no_match -rF "$PW" "$T/state"
check "no body password in the log" no_match -E 'body-pw' "$LOG"
stop_purged TERM
finish
exit $?
