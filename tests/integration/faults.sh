#!/bin/bash
# Faults: a backend that answers 500, closes connections or stops answering
# mid-purge (through tests/peers/fault_proxy.py, in front of the fake iTop);
# idempotent steps retried as documented; a second run completes the job.
# The journal's filesystem full (a small tmpfs): new purges refused clearly,
# the daemon up, old records readable, and all well once space returns.
# A control socket whose directory cannot be made: a clear error at start.
. "$(dirname "$0")/lib.sh"
PEERS=$(cd "$(dirname "$0")/../peers" && pwd)

IPORT=$(free_port)
PPORT=$(free_port)
python3 "$PEERS/fake_itop.py" "$IPORT" --seed >"$T/itop.log" 2>&1 &
ITOP_PID=$!
python3 "$PEERS/fault_proxy.py" "$PPORT" "$IPORT" >"$T/proxy.log" 2>&1 &
PROXY_PID=$!
trap 'kill $ITOP_PID $PROXY_PID 2>/dev/null; mountpoint -q "$T/state" && umount "$T/state"; cleanup' EXIT
check "fake iTop and fault proxy answer" wait_until 10 curl -sf "http://127.0.0.1:$PPORT/__stats" -o /dev/null
fault() { curl -s -X POST "http://127.0.0.1:${2:-$PPORT}/__fault?$1" >/dev/null; }
icount() {
	curl -s -X POST --data-urlencode version=1.3 --data-urlencode auth_user=rest --data-urlencode auth_pwd=rest-pw \
		--data-urlencode "json_data={\"operation\":\"core/get\",\"class\":\"$1\",\"key\":\"SELECT $1\",\"limit\":1}" \
		"http://127.0.0.1:$IPORT/webservices/rest.php" | jq -r '.message' | sed 's/Found: //'
}
install -m 0600 /dev/null "$T/pw"
echo rest-pw >"$T/pw"
write_config <<EOF2
[target itop]
type = itop
url = http://127.0.0.1:$PPORT/webservices/rest.php
user = rest
password_file = $T/pw
connect_timeout = 2
timeout = 2
EOF2
start_purged || { finish; exit 1; }

# 500 in the middle: iTop's calls are POSTs, not idempotent: no retry, a precise failure.
fault "mode=500&count=1&after=45"
expect_code 7 "an HTTP 500 mid-purge fails the task" ctl --json purge itop --yes --wait
expect_contains "…naming the step and the status" "$(jf "$OUT" .error)" "HTTP 500 from http://127.0.0.1:$PPORT"
DONE1=$(jf "$OUT" '[.counts[]] | add // 0')
check "…after some classes were purged ($DONE1 objects)" test "$DONE1" -gt 0
expect_eq "…and not the rest" "$(icount Organization)" "4"
check "…all listed in the manifest" test "$(ctl --json task "$(jf "$OUT" .id)" --manifest | jq length)" -ge "$DONE1"

# libcurl resends, once, a request whose reused connection died before any answer: close twice.
fault "mode=close&count=2&after=2"
expect_code 7 "a connection closed mid-purge fails the task" ctl --json purge itop --yes --wait
expect_contains "…saying so" "$(jf "$OUT" .error)" "Empty reply from server"

fault "mode=hang&count=1&after=2"
START=$(date +%s%N)
expect_code 7 "a backend that stops answering: the request times out" ctl --json purge itop --yes --wait
ELAPSED_MS=$((($(date +%s%N) - START) / 1000000))
expect_contains "…with curl's reason" "$(jf "$OUT" .error)" "Operation timed out"
# timeout = 2: the request waits 2 s, then the task ends (a margin for a sanitizer build, not a second timeout).
check "…after the configured timeout (2 s), not the task's: ${ELAPSED_MS} ms" test "$ELAPSED_MS" -ge 1900 -a "$ELAPSED_MS" -lt 3500
check "the daemon is alive" kill -0 "$PURGED_PID"

fault "mode=none"
expect_code 0 "a second run completes the job" ctl --json purge itop --yes --wait
expect_eq "…nothing left but what is kept" "$(icount Organization)/$(icount UserRequest)/$(icount Person)" "1/0/1"

# Retries of idempotent steps (Redmine's GETs and DELETEs), with the real Redmine behind the proxy.
if [ "$IS_ROOT" = 1 ]; then # redmine-up.sh installs Redmine when it is missing
	RPORT=$(free_port)
	RPPORT=$(free_port)
	export REDMINE_STATE=/var/lib/redmine-test
	if RURL=$("$PEERS/redmine-up.sh" "$RPORT" "$T/rkey" 2>"$T/redmine-up.log"); then
		python3 "$PEERS/fault_proxy.py" "$RPPORT" "$RPORT" >>"$T/proxy.log" 2>&1 &
		RPROXY=$!
		trap 'kill $ITOP_PID $PROXY_PID $RPROXY 2>/dev/null; "$PEERS/redmine-down.sh" "$RPORT" >/dev/null 2>&1; mountpoint -q "$T/state" && umount "$T/state"; cleanup' EXIT
		wait_until 10 curl -sf "http://127.0.0.1:$RPPORT/__stats" -o /dev/null
		RKEY=$(cat "$T/rkey")
		projects() { # N...: top-level projects PN
			local n
			for n in "$@"; do
				curl -s -X POST -H "X-Redmine-API-Key: $RKEY" -H 'Content-Type: application/json' \
					-d "{\"project\":{\"name\":\"P$n\",\"identifier\":\"p$n\"}}" "$RURL/projects.json" >/dev/null
			done
		}
		projects 1 2 3
		install -m 0600 /dev/null "$T/rkeyfile"
		cat "$T/rkey" >"$T/rkeyfile"
		printf '[target redmine]\ntype = redmine\nurl = http://127.0.0.1:%s/\napi_key_file = %s\nparallel = 2\ntimeout = 5\n' \
			"$RPPORT" "$T/rkeyfile" >>"$CONF"
		ctl reload >/dev/null
		fault "mode=close&count=50&method=GET&after=1" "$RPPORT"
		expect_code 7 "a GET whose connection closes three times in a row fails after its retries" ctl --json purge redmine --yes --wait
		expect_contains "…with the transport error" "$(jf "$OUT" .error)" "Empty reply from server"
		check "…after two retries of that GET" test "$(grep -cE 'GET projects.*retrying \(' "$LOG")" -ge 2
		fault "mode=500&count=2&method=DELETE" "$RPPORT"
		expect_code 0 "DELETEs answered 500 twice are retried and succeed" ctl --json purge redmine --yes --wait
		expect_eq "…3 projects deleted" "$(jf "$OUT" .counts.projects)" "3"
		check "…the retries are logged, with the smaller window" grep -q "DELETE projects/.*HTTP 500 (server error); retrying (try 2), at most 1 at once now" "$LOG"
		expect_eq "Redmine has no project left" "$(curl -s -H "X-Redmine-API-Key: $RKEY" "$RURL/projects.json" | jq .total_count)" "0"
		# A DELETE failing while another of ours is in flight (SQLite's "database is locked"):
		# the server cannot take two writes at once, so one at a time from then on, without
		# growing back into the same wall (issue 12: each time cost a failed DELETE).
		projects 7 8 9 10 11 12
		fault "mode=500&count=1&method=DELETE&after=1" "$RPPORT"
		expect_code 0 "a DELETE answered 500 while another was in flight is retried and the purge succeeds" ctl --json purge redmine --yes --wait
		expect_eq "…6 projects deleted" "$(jf "$OUT" .counts.projects)" "6"
		check "…and from then on one DELETE at a time" grep -q "Redmine failed a DELETE while 2 were in flight: at most 1 at once from now on" "$LOG"
		# DELETEs answered 500 every time after the first: the record is what is gone, nothing more.
		projects 4 5 6
		fault "mode=500&count=1000&method=DELETE&after=1" "$RPPORT"
		expect_code 7 "DELETEs answered 500 after their retries: the task fails" ctl --json purge redmine --yes --wait
		expect_contains "…naming the DELETE and the status" "$(jf "$OUT" .error)" "2 DELETE(s) of projects failed (first: DELETE projects/"
		MAN=$(ctl --json task "$(jf "$OUT" .id)" --manifest | jq -r '[.[] | select(.kind == "projects") | .id] | join(" ")')
		expect_eq "…one project in the manifest and the counts" "$(printf '%s' "$MAN" | wc -w)/$(jf "$OUT" '.counts.projects // 0')" "1/1"
		expect_eq "…that one is gone from Redmine, the two others are there" \
			"$(curl -s -o /dev/null -w '%{http_code}' -H "X-Redmine-API-Key: $RKEY" "$RURL/projects/$MAN.json")/$(curl -s -H "X-Redmine-API-Key: $RKEY" "$RURL/projects.json" | jq .total_count)" "404/2"
		# DELETEs that Redmine carries out but whose answers are lost: after three in a row the
		# purge stops, asks whether those projects still exist, and records the ones gone.
		fault "mode=none" "$RPPORT"
		projects 7 8 9 10 11 12
		fault "mode=drop&count=1000&method=DELETE" "$RPPORT"
		expect_code 7 "DELETEs done but never answered: the task fails" ctl --json purge redmine --yes --wait
		expect_contains "…saying Redmine stopped answering" "$(jf "$OUT" .error)" "Redmine stopped answering (3 requests in a row failed"
		check "…after checking the projects whose DELETE got no answer" grep -q "reconciled: projects/[0-9]*.json (its DELETE got no answer) is gone" "$LOG"
		MAN=$(ctl --json task "$(jf "$OUT" .id)" --manifest | jq -r '[.[] | select(.kind == "projects") | .id] | sort | map(tostring) | join(" ")')
		LEFT=$(curl -s -H "X-Redmine-API-Key: $RKEY" "$RURL/projects.json?status=1%7C5&limit=100" | jq -r '[.projects[].id] | map(tostring) | join(" ")')
		expect_eq "…the manifest and Redmine's projects make the 8 exactly, none in both" \
			"$(printf '%s %s\n' "$MAN" "$LEFT" | tr ' ' '\n' | grep . | sort -n | uniq | wc -l)/$(printf '%s %s\n' "$MAN" "$LEFT" | wc -w)" "8/8"
		check "…some were deleted ($MAN)" test -n "$MAN"
		fault "mode=none" "$RPPORT"
		# An id freed before the purge and given again during it (SQLite gives max(id) + 1: 1 in an
		# empty table) to a project archived at once: the final check probes every id again and finds
		# it (review of issue 12, F1: probing only the ids that held a project in the plan missed it).
		expect_code 0 "a clean slate" ctl --json purge redmine --yes --wait
		projects 21 22 23 24 25
		for n in 21 22 23 24; do curl -s -o /dev/null -X DELETE -H "X-Redmine-API-Key: $RKEY" "$RURL/projects/p$n.json"; done
		fault "mode=late&count=1&method=DELETE" "$RPPORT"
		expect_code 0 "a purge of one project (ids below it freed), detached" ctl --json purge redmine --yes --detach
		ID=$(jf "$OUT" .id)
		check "…its DELETE went out" wait_until 30 sh -c "curl -s http://127.0.0.1:$RPPORT/__stats | jq -e '.faults >= 1' >/dev/null"
		sleep 1 # Redmine 5.0 deletes synchronously: the project is gone, its answer held back
		NEW=$(curl -s -X POST -H "X-Redmine-API-Key: $RKEY" -H 'Content-Type: application/json' \
			-d '{"project":{"name":"Sneak","identifier":"sneak"}}' "$RURL/projects.json" | jq .project.id)
		curl -s -o /dev/null -X PUT -H "X-Redmine-API-Key: $RKEY" -H 'Content-Type: application/json' -d '{}' \
			"$RURL/projects/sneak/archive.json"
		expect_code 7 "…a project created meanwhile (id $NEW, freed before) and archived: the purge fails" ctl --json wait "$ID"
		expect_contains "…naming it" "$(jf "$OUT" .error)" "projects $NEW '(archived: not visible)'"
		curl -s -o /dev/null -X DELETE -H "X-Redmine-API-Key: $RKEY" "$RURL/projects/$NEW.json"
	else
		not_ok "Redmine did not start for the retry case"
		cat "$T/redmine-up.log"
	fi
else
	skip_part "Redmine retries of idempotent steps" "needs root (tests/peers/redmine-up.sh installs and runs Redmine)"
fi

# The journal's filesystem full.
MOUNT_ERR="needs root (mounts a small tmpfs)"
if [ "$IS_ROOT" = 1 ] && stop_purged TERM && mkdir -p "$T/state2" && cp -a "$T/state/." "$T/state2/" &&
	{ MOUNT_ERR=$(mount -t tmpfs -o size=192k,mode=0700 tmpfs "$T/state" 2>&1) || { MOUNT_ERR="mount failed: $MOUNT_ERR"; false; }; }; then
	cp -a "$T/state2/." "$T/state/"
	printf '[target demo]\ntype = noop\nobjects = 1\nstep_ms = 0\n' >>"$CONF"
	start_purged || { finish; exit 1; }
	expect_code 0 "a purge while there is room" ctl --json purge demo --yes --wait
	dd if=/dev/zero of="$T/state/filler" bs=4k 2>/dev/null
	# The journal's last page may have room for a record or two: purge until the refusal comes.
	for _ in $(seq 1 30); do
		BEFORE=$(ctl --json tasks --limit 1000 | jq length)
		ctl --json purge demo --yes --wait >/dev/null 2>&1 || break
	done
	expect_code 3 "filesystem full: a new purge is refused" ctl --json purge demo --yes --wait
	expect_contains "…saying why and what to do" "$ERR" "No space left on device; free space"
	expect_eq "…as unavailable" "$(jf "$OUT" .error.code)" "unavailable"
	check "the daemon is still up" ctl status
	expect_eq "existing records are still listed" "$(ctl --json tasks --limit 1000 | jq length)" "$BEFORE"
	rm -f "$T/state/filler"
	expect_code 0 "space back: purges work again" ctl --json purge demo --yes --wait
	stop_purged TERM
	start_purged || { finish; exit 1; }
	expect_eq "…and every record survives a restart" "$(ctl --json tasks --limit 1000 | jq length)" "$((BEFORE + 1))"
	stop_purged TERM
	umount "$T/state"
else
	skip_part "the journal's filesystem full" "$MOUNT_ERR"
fi

# The control socket's directory cannot be made.
touch "$T/not-a-dir"
sed -i "s|^control_socket = .*|control_socket = $T/not-a-dir/control.sock|" "$CONF"
expect_code 1 "a control socket under a file: purged refuses to start" "$T/bin/purged" -c "$CONF"
expect_contains "…naming the path and the fix" "$ERR" "the control socket directory '$T/not-a-dir' is not a directory; fix control_socket"
sed -i "s|^control_socket = .*|control_socket = /proc/purged-it/control.sock|" "$CONF"
expect_code 1 "a control socket directory that cannot be created" "$T/bin/purged" -c "$CONF"
expect_contains "…naming it" "$ERR" "cannot create the control socket directory '/proc/purged-it'"
finish
