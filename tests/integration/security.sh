#!/bin/bash
# Who may ask, and what leaks: control group and SO_PEERCRED, the executor's
# sandbox as seen from outside, secrets kept out of argv, environment, logs
# and replies, secret files with a bad mode refused at start.
. "$(dirname "$0")/lib.sh"

if [ "$IS_ROOT" != 1 ]; then
	echo "1..0 # SKIP needs root (setpriv, executor_user)"
	exit 77
fi

SECRET="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
install -m 0600 /dev/null "$T/secret"
printf '%s\n' "$SECRET" >"$T/secret"
write_config "control_group = purge-it-nogroup" <<EOF2
[target demo]
type = noop
objects = 300
step_ms = 10
password_file = $T/secret
EOF2
start_purged || { finish; exit 1; }

check "socket mode is 0660" test "$(stat -c %a "$SOCK")" = 660
proc_eq "the supervisor dumps no core" "$PURGED_PID" 0 awk '/Max core file size/ {print $5}' "/proc/$PURGED_PID/limits"
# A caller that is neither root nor in the control group. The socket is 0660,
# so make it reachable to prove the refusal comes from SO_PEERCRED.
chmod 0666 "$SOCK"
expect_code 4 "nobody is forbidden" setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" status
expect_contains "forbidden says why" "$ERR" "not allowed"
expect_code 4 "nobody cannot purge" setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" purge demo --yes
check "the refusal is logged" grep -q "audit: refused nobody (uid [0-9]*) via ctl: not root and not in control_group" "$LOG"
check "the refused purge is audited" grep -q '"who":"nobody".*"outcome":"forbidden"' "$T/state/audit.jsonl"
chmod 0660 "$SOCK"
expect_code 4 "without 0666, the socket itself refuses nobody" setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" status

expect_code 0 "purge demo" ctl --json purge demo --yes --detach
ID=$(jf "$OUT" .id)
check "it runs" wait_until 5 status_is "$ID" started
EPID=$(executor_pid "$ID")
proc_eq "executor uid is nobody's" "$EPID" "$(id -u nobody)" proc_field "$EPID" status Uid
proc_eq "no supplementary groups" "$EPID" "" proc_field "$EPID" status Groups
proc_eq "NoNewPrivs: 1" "$EPID" 1 proc_field "$EPID" status NoNewPrivs
proc_eq "Seccomp: 2" "$EPID" 2 proc_field "$EPID" status Seccomp
proc_eq "only fds 0-3 are open" "$EPID" "0 1 2 3 " eval 'ls "/proc/$EPID/fd" | sort -n | tr "\n" " "'
proc_eq "environment is empty" "$EPID" 0 bytes_of "/proc/$EPID/environ"
expect_proc "secret not in its cmdline" "$EPID" no_match -aF "$SECRET" "/proc/$EPID/cmdline"
expect_proc "secret not in its environment" "$EPID" no_match -aF "$SECRET" "/proc/$EPID/environ"
ps -eo args >"$T/ps.txt"
expect_proc "secret not in ps" "$EPID" no_match -F "$SECRET" "$T/ps.txt"
expect_proc "secret not in the supervisor's environment or cmdline" "$PURGED_PID" no_match -aF "$SECRET" "/proc/$PURGED_PID/environ" "/proc/$PURGED_PID/cmdline"
# Not dumpable: /proc/PID/mem and ptrace are closed even to its own uid.
expect_proc "executor is not dumpable" "$EPID" not_dumpable "$EPID"
OUTS=$(ctl --json task "$ID"; ctl targets; ctl --json targets; ctl tasks; ctl cancel "$ID"; ctl --json wait "$ID")
printf '%s' "$OUTS" >"$T/outs.txt"
check "secret not in purgectl output" no_match -F "$SECRET" "$T/outs.txt"
expect_contains "targets show which secrets exist" "$(ctl --json targets)" '"password"'
stop_purged TERM
check "secret not in the daemon's log" no_match -F "$SECRET" "$LOG"
check "secret not in the journal or audit log" no_match -rF "$SECRET" "$T/state"

# A secret file readable by others: purged refuses to start and says why.
chmod 0644 "$T/secret"
expect_code 1 "group/other-readable secret refused" "$T/bin/purged" -c "$CONF" -t
expect_contains "the error names the file and the fix" "$ERR" "secret file '$T/secret' has mode 0644"
expect_contains "…with its line" "$ERR" "$CONF:"
expect_code 1 "purged does not start either" "$T/bin/purged" -c "$CONF"
chmod 0600 "$T/secret"
chown nobody "$T/secret"
expect_code 1 "a secret owned by another user is refused" "$T/bin/purged" -c "$CONF" -t
expect_contains "…naming the owner" "$ERR" "owned by uid $(id -u nobody)"
finish
