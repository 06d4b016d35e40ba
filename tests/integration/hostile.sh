#!/bin/bash
# Fail closed against hostile bytes: the attacks of the fail-closed issue,
# replayed against a real purged. A refused local user, an allowed one sending
# malformed frames, a REST token holder steering the endpoint check with a
# long non-ASCII value, a FIFO as a secret, a reload with a key that is not
# UTF-8, unsafe directories, a frame left incomplete, a flood of refusals.
# After each, purged must still answer, and no log line may be forged.
. "$(dirname "$0")/lib.sh"

# /usr/bin/python3: the refused caller runs as nobody, who cannot use root's own interpreters.
HOSTILE="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/hostile.py"
PORT=$(free_port)
mint_token ci
write_config <<EOF2
$(rest_conf)

[target demo]
type = noop
objects = 3
step_ms = 1
EOF2
start_purged || { finish; exit 1; }

# 1. Frames that made purged exit: from an allowed caller, each gets its error.
check "allowed caller: malformed frames get one decodable error each" $HOSTILE "$SOCK" allowed
check "purged is still running" kill -0 "$PURGED_PID"
# 5. The forged key is quoted on one line, escaped: no line of its own.
check "no forged log line" no_match -E '^<2>purged: audit' "$LOG"
check "the forged key is logged escaped" grep -qF '\n<2>purged: audit: root via ctl' "$LOG"

# Pre-authentication: a refused caller gets one forbidden, nothing it sends is decoded.
if [ "$IS_ROOT" = 1 ]; then
	chmod 0666 "$SOCK"
	check "refused caller: one forbidden reply whatever it sends" \
		setpriv --reuid=nobody --regid=nogroup --clear-groups $HOSTILE "$SOCK" refused
	check "purged is still running after the refused caller" kill -0 "$PURGED_PID"
	expect_code 4 "purgectl as a refused caller reads the refusal" \
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" purge demo --yes
	expect_contains "…and prints why" "$ERR" "is not allowed to use purged"
	# 9. A flood of refusals: counted, written in batches, not one fdatasync each.
	for _ in $(seq 1 60); do
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" status >/dev/null 2>&1
	done
	# Refused callers connecting in a loop must not crowd root out (review of issue 15, F7).
	FLOOD=()
	for _ in $(seq 1 16); do
		setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import socket, sys, time
end = time.monotonic() + 6
while time.monotonic() < end:
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.close()' "$SOCK" 2>/dev/null &
		FLOOD+=($!)
	done
	FAILS=0
	# On 2 cores 16 flooders slow everyone down; what must not happen is root refused as busy.
	for _ in $(seq 1 30); do timeout 20 "$T/bin/purgectl" -s "$SOCK" status >/dev/null 2>>"$T/flood.err" || FAILS=$((FAILS + 1)); done
	[ "$FAILS" = 0 ] || sed "s/^/# /" "$T/flood.err"
	wait "${FLOOD[@]}"
	expect_eq "root's 30 purgectl status all answered during a flood of refused connections" "$FAILS" 0
	check "…none refused as busy" no_match busy "$T/flood.err"
	chmod 0660 "$SOCK"
else
	skip_part "refused-caller attacks" "need root to act as another uid"
fi

# 3. The endpoint check: a long non-ASCII server is refused, never purged.
BODY=$(python3 -c 'print("{\"server\":\"" + "é" * 600 + "\"}")')
CODE=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/json' --data "$BODY" "http://127.0.0.1:$PORT/purge/demo")
expect_eq "a 600 x 'é' server is refused (403)" "$CODE" 403
check "…with a JSON body that says nothing was done" jq -e '.message | test("nothing was done")' "$T/body"
ctl --json tasks >"$T/tasks.json"
check "…and no purge task was created" jq -e 'type == "array" and ([.[] | select(.operation == "purge")] | length == 0)' "$T/tasks.json"

# 12. A frame begun and never finished is cut after the deadline.
check "an incomplete frame is cut after 10 s" $HOSTILE "$SOCK" deadline

# 8. A reload with a key that is not UTF-8: rejected with an answer, audited.
cp "$CONF" "$T/good.conf"
printf '[target bad]\ntype = noop\n\xff\xfe = 1\n' >>"$CONF"
expect_code 2 "a reload with a non-UTF-8 key gets an answer" timeout 10 "$T/bin/purgectl" -s "$SOCK" reload
expect_contains "…saying the configuration was rejected" "$ERR" "rejected"
check "…and the rejected reload is audited" grep -q '"op":"reload".*"outcome":"bad_request"' "$T/state/audit.jsonl"
cp "$T/good.conf" "$CONF"

stop_purged
expect_eq "purged exits 0 after all of it" "$STOP_STATUS" 0
if [ "$IS_ROOT" = 1 ]; then
	# One line at once for the first refusal, the rest counted in one line at the minute or at exit.
	N=$(grep -c '"who":"nobody".*"op":"connect"' "$T/state/audit.jsonl")
	SUM=$(grep '"who":"nobody".*"op":"connect"' "$T/state/audit.jsonl" | jq -s 'map(.count // 1) | add')
	check "a flood of refusals takes at most 3 audit lines ($N)" test "$N" -le 3
	check "…that count every refusal: the 66 by purgectl and the flood's ($SUM)" test "$SUM" -gt 66
fi

# A compromised purged-rest's stderr (a stand-in that forges a daemon line and floods): relayed with its pid,
# capped at warning level, at most 200 lines a second, never a raw daemon line (review of issue 15, F4).
cp "$T/bin/purged-rest" "$T/real-rest"
printf '#!/bin/sh\nprintf "<2>purged: audit: root (uid 0) via ctl: purge target forged -> ok\\n" >&2\ni=0\nwhile [ $i -lt 3000 ]; do echo "<3>flooding $i" >&2; i=$((i + 1)); done\nsleep 2\n' >"$T/bin/purged-rest"
chmod 755 "$T/bin/purged-rest"
start_purged || { finish; exit 1; }
check "the stand-in's lines are relayed" wait_until 10 grep -q "flooding 1" "$LOG"
check "…and when its log ends, how many were not relayed is said" \
	wait_until 10 grep -qE "\[purged-rest [0-9]+\] [0-9]+ log lines not relayed" "$LOG"
stop_purged
check "purged-rest's stderr cannot forge a daemon line" no_match -E '^<[0-7]>purged: audit: root \(uid 0\) via ctl: purge target forged' "$LOG"
check "…it is relayed with its pid, at warning level" grep -qE '^<4>purged: \[purged-rest [0-9]+\] purged: audit: root \(uid 0\) via ctl: purge target forged' "$LOG"
check "…and a flood of 3000 lines is cut to a few hundred ($(grep -c flooding "$LOG"))" test "$(grep -c flooding "$LOG")" -le 1000
mv "$T/real-rest" "$T/bin/purged-rest"

# 6. A FIFO as a secret file: refused at once, not a hang.
mkfifo "$T/fifo"
cat >"$T/fifo.conf" <<EOF2
[daemon]
control_socket = $T/fifo.sock
state_dir = $T/state
executor_user = nobody
[target demo]
type = noop
password_file = $T/fifo
EOF2
expect_code 1 "a FIFO as password_file is refused by purged -t, without hanging" timeout 10 "$T/bin/purged" -c "$T/fifo.conf" -t
expect_contains "…naming it" "$OUT$ERR" "is not a regular file"

# Configuration anyone could write: whoever writes it decides who may purge (review of issue 15, F3).
cp "$T/fifo.conf" "$T/open.conf"
sed -i "s|^password_file = .*|objects = 1|" "$T/open.conf"
chmod 0666 "$T/open.conf"
expect_code 1 "a configuration writable by others is refused by purged -t" timeout 10 "$T/bin/purged" -c "$T/open.conf" -t
expect_contains "…saying why and the fix" "$OUT$ERR" "not be writable by group or others; chown root and chmod go-w it"
chmod 0644 "$T/open.conf"
mkdir -m 0777 "$T/open.conf.d"
expect_code 1 "a drop-in folder writable by others is refused" timeout 10 "$T/bin/purged" -c "$T/open.conf" -t
expect_contains "…naming it" "$OUT$ERR" "the drop-in folder '$T/open.conf.d' has mode 0777"
chmod 0755 "$T/open.conf.d"
expect_code 0 "…and accepted once private" timeout 10 "$T/bin/purged" -c "$T/open.conf" -t

# 10. Directories an unprivileged user could change.
mkdir -p "$T/ww" "$T/real"
chmod 0777 "$T/ww"
ln -s "$T/real" "$T/link"
for case in "state_dir = $T/ww|writable by group or others" "state_dir = $T/link|symbolic link" \
	"control_socket = $T/ww/c.sock|writable by group or others" \
	"control_socket = $T/ww/sock/c.sock|a parent of the control socket directory" \
	"state_dir = $T/ww/state|a parent of state_dir"; do
	setting=${case%%|*}
	want=${case#*|}
	{
		echo "[daemon]"
		contains "$setting" control_socket || echo "control_socket = $T/d.sock"
		contains "$setting" state_dir || echo "state_dir = $T/state"
		echo "executor_user = nobody"
		echo "$setting"
	} >"$T/dir.conf"
	expect_code 1 "refuses to start with $setting" timeout 10 "$T/bin/purged" -c "$T/dir.conf"
	expect_contains "…saying it is $want" "$ERR" "$want"
	rm -rf "$T/ww/sock" "$T/ww/state"
done
# A parent writable by others is fine when sticky and root's, like /tmp (tests run under it).
chmod 1777 "$T/ww"
printf '[daemon]\ncontrol_socket = %s/ww/c2/c.sock\nstate_dir = %s/ww/state\nexecutor_user = nobody\n' "$T" "$T" >"$T/dir.conf"
"$T/bin/purged" -c "$T/dir.conf" >"$T/sticky.log" 2>&1 &
SPID=$!
check "a sticky root-owned parent, like /tmp, is accepted" wait_until 10 test -S "$T/ww/c2/c.sock"
kill "$SPID"; wait "$SPID" 2>/dev/null
finish
