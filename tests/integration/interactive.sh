#!/bin/bash
# What an administrator sees on a terminal: the typed confirmation, a wrong
# answer refused, the progress bar; and sd_notify READY=1 / STOPPING=1.
. "$(dirname "$0")/lib.sh"

write_config <<'EOF2'
[target demo]
type = noop
objects = 30
step_ms = 5
EOF2

# sd_notify: a datagram socket stands in for systemd.
NOTIFY=$T/notify.sock
python3 - "$NOTIFY" >"$T/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
seen = []
while "STOPPING=1" not in seen:
    for line in s.recv(4096).decode().split("\n"):
        seen.append(line)
        print(line, flush=True)
PY
LISTENER=$!
wait_until 5 test -S "$NOTIFY"
NOTIFY_SOCKET=$NOTIFY start_purged || { finish; exit 1; }
check "READY=1 sent once listening" wait_until 5 grep -q "READY=1" "$T/notify.out"

# `script` gives purgectl a terminal on stdin, stdout and stderr.
expect_code 0 "typed confirmation purges" script -qec "$T/bin/purgectl -s $SOCK purge demo" /dev/null <<<"demo"
expect_contains "it asked for the name" "$OUT" "Type the target name to confirm"
expect_contains "it drew a progress bar" "$OUT" "[##############################] 30/30 objects"
expect_contains "it reported the end" "$OUT" "finished"
expect_code 9 "a wrong answer is refused" script -qec "$T/bin/purgectl -s $SOCK purge demo" /dev/null <<<"prod"
expect_contains "…and nothing is done" "$OUT" "does not match 'demo'; nothing done"
expect_eq "only one purge ran" "$(ctl --json tasks | jq '[.[] | select(.operation == "purge")] | length')" "1"

stop_purged TERM
check "STOPPING=1 sent at shutdown" wait_until 5 grep -q "STOPPING=1" "$T/notify.out"
kill "$LISTENER" 2>/dev/null
finish
