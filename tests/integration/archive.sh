#!/bin/bash
# The supervisor's side of archives (issue 14, items 3 and 4): archive_dir
# that cannot be created or is not private refuses the purge before anything
# runs, with a message naming the path and the fix; tasks.archive of a task
# without an archive is not_found with the reason; purgectl archive never
# overwrites a file; restore refuses what is not a crdb purge with an
# archive. With a real redis-server: a crdb purge's archive recorded (size,
# SHA-256, records) and journaled across a restart, fetched and decompressed
# by purgectl archive, a tampered archive detected, a restore queued.
. "$(dirname "$0")/lib.sh"

GUID=1d7741cc-1110-4e2f-bc6c-935292783d24
PORT=$(free_port)
mint_token ops
conf() {
	# conf ARCHIVE_DIR [EXTRA...]
	local dir=$1
	shift
	write_config "archive_dir = $dir" "$@" <<EOF
[target kept]
type = noop
objects = 5
step_ms = 0
archive = yes

[target plain]
type = noop
objects = 5
step_ms = 0
$(rest_conf)
${CRDB_SECTION:-}
EOF
}
# kill -9: purged-rest notices its link closed and exits; the next purged binds its port only then.
kill9_purged() {
	stop_purged KILL
	wait_until 10 sh -c "! pgrep -f '^$T/bin/purged-rest' >/dev/null" || not_ok "purged-rest outlived its supervisor"
}
CRDB_SECTION=
conf "$T/missing/deeper/archives"
start_purged || { finish; exit 1; }

# --- archive_dir cannot be created: refused before anything ran.
expect_code 7 "a purge of an archive = yes target whose archive_dir cannot be created fails" ctl --json purge kept --yes --wait
expect_eq "…as failed" "$(jf "$OUT" .status)" "failed"
expect_contains "…naming the path" "$(jf "$OUT" .error)" "cannot create archive_dir '$T/missing/deeper/archives'"
expect_contains "…and what to do" "$(jf "$OUT" .error)" "create it (mode 0700, owned by the daemon's user) or set archive_dir"
expect_contains "…and that nothing was deleted" "$(jf "$OUT" .error)" "nothing was deleted"
expect_eq "…no executor ran (no count, never started)" "$(jf "$OUT" '.started // "none"')" "none"
expect_code 0 "a target with archive = no purges all the same" ctl --json purge plain --yes --wait
expect_eq "…finished" "$(jf "$OUT" .status)" "finished"
check "…and has no archive field" test "$(jf "$OUT" '.archive // "none"')" = none

# --- archive_dir writable by its group: not private, refused.
mkdir -m 0770 "$T/gw"
chmod 0770 "$T/gw"
conf "$T/gw"
expect_code 0 "reload with a group-writable archive_dir" ctl reload
expect_code 7 "a purge whose archive_dir is group-writable fails" ctl --json purge kept --yes --wait
expect_contains "…saying the mode and the fix" "$(jf "$OUT" .error)" "archive_dir '$T/gw' has mode 0770, writable by group or others; chmod go-w it"
check "…and no archive file was left there" test -z "$(ls -A "$T/gw")"

# --- a private archive_dir: created 0700 by purged.
conf "$T/state/archives"
expect_code 0 "reload with archive_dir under state_dir" ctl reload
expect_code 0 "a purge of an archive = yes noop target runs" ctl --json purge kept --yes --wait
NOOP=$(jf "$OUT" .id)
expect_eq "…finished" "$(jf "$OUT" .status)" "finished"
expect_eq "archive_dir created mode 0700" "$(stat -c %a "$T/state/archives")" "700"
# noop has no data: its archive holds no record, and an archive of 0 records is removed.
check "…its empty archive removed" test ! -e "$T/state/archives/$NOOP.jsonl.zst"
check "…and the task records none" test "$(jf "$OUT" '.archive // "none"')" = none

# --- What the prompt says (`script` gives purgectl a terminal).
expect_code 0 "a typed purge of an archive = yes target" script -qec "$T/bin/purgectl -s $SOCK purge kept" /dev/null <<<"kept"
expect_contains "…says that an archive keeps a copy" "$OUT" "An archive keeps a copy of what is purged (archive = yes)"
expect_contains "…and asks for the name" "$OUT" "Type the target name to confirm"
expect_code 9 "a typed purge of an archive = no target, answered wrong" script -qec "$T/bin/purgectl -s $SOCK purge plain" /dev/null <<<"nope"
expect_contains "…says that no copy is kept" "$OUT" "It cannot be undone (archive = no: no copy is kept)"

# --- tasks.archive without an archive: not_found, with the reason.
expect_code 5 "purgectl archive of a task with archive = no is not found" ctl archive "$(ctl --json tasks --target plain --limit 1 | jq -r '.[0].id')"
expect_contains "…saying why" "$ERR" "has no archive (archive = no on target 'plain' when it ran, or it archived nothing)"
expect_code 5 "purgectl archive of a noop purge that archived nothing is not found" ctl archive "$NOOP"
expect_code 5 "purgectl archive of an unknown task" ctl archive 01a227ad-f7bc-7304-b19f-9b57b020426a
PLAN=$(ctl --json plan kept | jq -r .id)
expect_code 5 "purgectl archive of a plan" ctl archive "$PLAN"
expect_contains "…saying only a purge keeps one" "$ERR" "only a purge keeps an archive"

# --- --output never overwrites.
echo "precious" >"$T/existing"
expect_code 6 "purgectl archive --output onto an existing file is refused" ctl archive "$NOOP" --output "$T/existing"
expect_contains "…saying why" "$ERR" "never overwrites a file"
expect_eq "…and the file is untouched" "$(cat "$T/existing")" "precious"
ln -s "$T/existing" "$T/link"
expect_code 6 "…nor through a symbolic link" ctl archive "$NOOP" --output "$T/link"
expect_eq "…still untouched" "$(cat "$T/existing")" "precious"

# --- restore: only a crdb purge's archive.
expect_code 2 "restore of a noop purge is refused" ctl restore "$NOOP" --yes
expect_contains "…saying why" "$ERR" "not a purge of an Active-Active database"
expect_code 5 "restore of an unknown task" ctl restore 01a227ad-f7bc-7304-b19f-9b57b020426a --yes
expect_code 2 "--replace goes with restore only" ctl purge kept --replace --yes

# --- A real crdb purge with archive = yes, when the crdb driver archives.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	skip_part "crdb archive" "redis-server or redis-cli not installed"
	stop_purged TERM
	finish
	exit
fi
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --enable-debug-command yes --daemonize no >"$T/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; cleanup' EXIT
wait_until 10 redis-cli -p "$RPORT" ping >/dev/null 2>&1 || not_ok "redis-server did not start"
for i in $(seq 1 50); do echo "SET key:$i value-$i"; done | redis-cli -p "$RPORT" >/dev/null
redis-cli -p "$RPORT" HSET h:1 a 1 b 2 >/dev/null
redis-cli -p "$RPORT" EXPIRE key:1 3600 >/dev/null
CRDB_SECTION="[crdb $GUID]
instance.1 = redis://127.0.0.1:$RPORT
archive = yes"
conf "$T/state/archives"
expect_code 0 "reload with a crdb of archive = yes" ctl reload
expect_code 0 "the crdb purge runs" ctl --json crdb purge "$GUID" --instances 1 --yes --wait
PURGE=$(jf "$OUT" .id)
if [ "$(jf "$OUT" '.archive.records // 0')" = 0 ]; then
	skip_part "crdb archive" "the crdb driver did not archive (records: $(jf "$OUT" '.archive.records // "none"'); warnings: $(jf "$OUT" '.warnings | join("; ")'))"
	stop_purged TERM
	finish
	exit
fi
A=$T/state/archives/$PURGE.jsonl.zst
expect_eq "…its archive recorded with the file's own size" "$(jf "$OUT" .archive.bytes)" "$(stat -c %s "$A")"
expect_eq "…and its own SHA-256" "$(jf "$OUT" .archive.sha256)" "$(sha256sum "$A" | cut -d' ' -f1)"
expect_eq "…and the executor's record count" "$(jf "$OUT" .archive.records)" "51"
expect_eq "…the file mode 0600" "$(stat -c %a "$A")" "600"
check "…no warning" test "$(jf "$OUT" '.warnings | length')" = 0
check "purgectl task shows it" sh -c "ctl task $PURGE | grep -q '^archive:    $A, '"
expect_code 0 "purgectl archive --output writes it" ctl archive "$PURGE" --output "$T/out.jsonl"
expect_eq "…one header and 51 records" "$(wc -l <"$T/out.jsonl")" "52"
expect_eq "…created 0600" "$(stat -c %a "$T/out.jsonl")" "600"
expect_eq "…the header names the task" "$(head -1 "$T/out.jsonl" | jq -r .task_id)" "$PURGE"
expect_eq "…every key is there" "$(tail -n +2 "$T/out.jsonl" | jq -r .key | sort | tr '\n' ' ')" \
	"$(for i in $(seq 1 50); do echo "key:$i"; done | { cat; echo h:1; } | sort | tr '\n' ' ')"
expect_code 0 "purgectl archive to stdout gives the same" ctl archive "$PURGE"
expect_eq "…byte for byte" "$OUT" "$(cat "$T/out.jsonl")"
check "reading an archive is audited" grep -q "\"op\":\"tasks.archive\",\"target\":\"$GUID\",\"task\":\"$PURGE\",\"outcome\":\"ok\"" "$T/state/audit.jsonl"
# A reader that skips the first chunk is audited all the same (once per connection and archive).
before=$(grep -c '"op":"tasks.archive"' "$T/state/audit.jsonl")
expect_eq "a chunk read from offset 1 is answered" \
	"$(python3 "$(dirname "$0")/http_probe.py" ctl_op "$SOCK" tasks.archive "{\"id\": \"$PURGE\", \"offset\": 1}")" ok
expect_eq "…and audited" "$(grep -c '"op":"tasks.archive"' "$T/state/audit.jsonl")" "$((before + 1))"

# The record survives a restart (kill -9: only the journal carries it).
kill9_purged
start_purged
expect_eq "after kill -9 and a restart the task still records its archive" \
	"$(ctl --json task "$PURGE" | jq -r .archive.sha256)" "$(sha256sum "$A" | cut -d' ' -f1)"

# A changed archive is detected, and nothing is written.
cp "$A" "$T/saved.zst"
printf 'x' | dd of="$A" bs=1 seek=20 conv=notrunc status=none
expect_code 1 "a tampered archive is refused by purgectl archive" ctl archive "$PURGE" --output "$T/bad.jsonl"
expect_contains "…saying it changed" "$ERR" "is not the one recorded"
check "…and nothing was written" test ! -e "$T/bad.jsonl"
# The restore's executor gets the SHA-256 the supervisor recorded, and checks the file against it.
expect_code 7 "a restore from the tampered archive fails" ctl --json restore "$PURGE" --yes --wait
expect_contains "…saying the SHA-256 differs" "$(jf "$OUT" .error)" "SHA-256"
expect_eq "…and restored nothing" "$(redis-cli -p "$RPORT" DBSIZE)" "0"
cp "$T/saved.zst" "$A"

expect_code 9 "a typed restore, answered wrong, is refused" script -qec "$T/bin/purgectl -s $SOCK restore $PURGE" /dev/null <<<"nope"
expect_contains "…after saying what it puts back" "$OUT" "the keys task $PURGE archived (51 records"
expect_contains "…and asking for the database" "$OUT" "Type the database's GUID to confirm"

# restore: a new task on the same database (archive_redis.sh checks every key, value and TTL).
ctl --json restore "$PURGE" --yes --wait >"$T/restore.json" 2>"$T/stderr"
OUT=$(cat "$T/restore.json")
expect_eq "purgectl restore runs a restore task" "$(jf "$OUT" .operation)" "restore"
expect_eq "…on the purged database" "$(jf "$OUT" .target)" "$GUID"
expect_eq "…which names the purge and its archive" "$(jf "$OUT" '.params.archive_task + " " + .params.file')" "$PURGE $A"
case "$(jf "$OUT" .error)" in
*archive*|*SHA-256*|*null*) expect_eq "…finished" "$(jf "$OUT" .status)" "finished" ;;
*) skip_part "restore's outcome" "the crdb driver failed on the server's side: $(jf "$OUT" .error)" ;;
esac
if [ "$(jf "$OUT" .status)" = finished ]; then
	expect_eq "…the keys are back" "$(redis-cli -p "$RPORT" DBSIZE)" "51"
	# Keys already there with the archived value are left (a restore after a partial purge); one a
	# client changed since is not overwritten without --replace.
	expect_code 0 "a second restore of the same keys, unchanged, leaves them" ctl --json restore "$PURGE" --yes --wait
	redis-cli -p "$RPORT" SET key:7 changed >/dev/null
	expect_code 7 "…but one changed since refuses it without --replace" ctl --json restore "$PURGE" --yes --wait
	expect_eq "…and leaves the changed value" "$(redis-cli -p "$RPORT" GET key:7)" "changed"
fi
wait_until 30 sh -c "[ \"\$(ctl --json targets | jq -r '.[] | select(.name == \"$GUID\") | .active_task')\" = null ]"

# The REST route next to the CRDB ones: POST /v1/crdbs/{guid}/restore.
rest() { curl -sS -o "$T/body" -D "$T/headers" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@"; }
expect_eq "POST /v1/crdbs/GUID/restore answers 202" "$(rest -X POST -H 'Content-Type: application/json' \
	--data "{\"task_id\": \"$PURGE\", \"replace\": true}" "http://127.0.0.1:$PORT/v1/crdbs/$GUID/restore")" "202"
expect_eq "…with a CRDB task object of a restore" "$(jq -r '.operation + " " + .crdb_guid + " " + .restored_from' "$T/body")" "restore $GUID $PURGE"
RID=$(jq -r .id "$T/body")
check "…and its Location" grep -qi "^Location: /v1/crdb_tasks/$RID" "$T/headers"
wait_until 30 sh -c "ctl --json task $RID | jq -e '.status | test(\"finished|failed\")' >/dev/null"
expect_eq "GET /v1/crdb_tasks/ID shows the restore" "$(rest "http://127.0.0.1:$PORT/v1/crdb_tasks/$RID")" "200"
expect_eq "…as a restore" "$(jq -r .operation "$T/body")" "restore"
expect_eq "GET /v1/crdb_tasks/PURGE shows the purge's archive" "$(rest "http://127.0.0.1:$PORT/v1/crdb_tasks/$PURGE")" "200"
expect_eq "…its SHA-256" "$(jq -r .archive.sha256 "$T/body")" "$(sha256sum "$A" | cut -d' ' -f1)"
expect_eq "a restore into another database's route is refused" "$(rest -X POST -H 'Content-Type: application/json' \
	--data "{\"task_id\": \"$PURGE\"}" "http://127.0.0.1:$PORT/v1/crdbs/0d7741cc-1110-4e2f-bc6c-935292783d24/restore")" "400"
check "…saying which database the purge was of" grep -q "purged '$GUID', not '0d7741cc" "$T/body"
expect_eq "a body without task_id is a bad request" "$(rest -X POST -H 'Content-Type: application/json' \
	--data '{"replace": true}' "http://127.0.0.1:$PORT/v1/crdbs/$GUID/restore")" "400"
expect_code 2 "restore of a plan is refused" ctl --json restore "$PLAN" --yes
check "restore is audited" grep -q "\"op\":\"crdb.restore\",\"target\":\"$GUID\"" "$T/state/audit.jsonl"

# archive_keep_days: an archive older than that is removed at start.
touch -d '40 days ago' "$A"
stop_purged TERM
start_purged
check "an archive older than archive_keep_days (30) is removed at start" wait_until 5 test ! -e "$A"
check "…and its removal logged" grep -q "archive $A removed: older than archive_keep_days (30)" "$LOG"
expect_code 5 "purgectl archive then says it is gone" ctl archive "$PURGE"
expect_contains "…and why" "$ERR" "archive_keep_days removes old archives"
expect_code 5 "a restore of a removed archive is refused at once" ctl restore "$PURGE" --yes
expect_contains "…saying why" "$ERR" "archive_keep_days removes old archives; nothing can be restored from a removed one"

# A purge interrupted by a restart: the archive its executor wrote until then is recorded at start.
redis-cli -p "$RPORT" FLUSHALL >/dev/null
redis-cli -p "$RPORT" DEBUG POPULATE 400000 big 200 >/dev/null
expect_code 0 "a purge of 400000 keys starts" ctl --json crdb purge "$GUID" --instances 1 --yes --detach
BIG=$(jf "$OUT" .id)
BA=$T/state/archives/$BIG.jsonl.zst
wait_until 30 sh -c "[ -s '$BA' ]"
EXE=$(executor_pid "$BIG")
kill9_purged
[ -n "$EXE" ] && kill -KILL "$EXE" 2>/dev/null
start_purged
if [ "$(ctl --json task "$BIG" | jq -r .status)" != failed ] || [ ! -s "$BA" ]; then
	skip_part "interrupted archive" "the purge ended before the kill ($(ctl --json task "$BIG" | jq -r .status))"
else
	check "after kill -9 mid-purge the archive left is recorded at start" \
		wait_until 10 sh -c "ctl --json task $BIG | jq -e .archive.sha256 >/dev/null"
	expect_eq "…with the file's SHA-256" "$(ctl --json task "$BIG" | jq -r .archive.sha256)" "$(sha256sum "$BA" | cut -d' ' -f1)"
	expect_contains "…and a warning saying what it holds" "$(ctl --json task "$BIG" | jq -r '.warnings | join(" ")')" \
		"holds what the executor wrote before the daemon stopped"
	kill9_purged
	start_purged
	expect_eq "…journaled: still there after another restart" "$(ctl --json task "$BIG" | jq -r .archive.file)" "$BA"
fi

kill "$REDIS_PID" 2>/dev/null
stop_purged TERM
finish
