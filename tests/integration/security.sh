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
expect_eq "the supervisor dumps no core" "$(awk '/Max core file size/ {print $5}' /proc/$PURGED_PID/limits)" "0"
# A caller that is neither root nor in the control group. The socket is 0660,
# so make it reachable to prove the refusal comes from SO_PEERCRED.
chmod 0666 "$SOCK"
expect_code 4 "nobody is forbidden" setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" status
expect_contains "forbidden says why" "$ERR" "not allowed"
expect_code 4 "nobody cannot purge" setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" purge demo --yes
check "the refusal is logged" grep -q "refused status from nobody" "$LOG"
check "the refused purge is audited" grep -q '"who":"nobody".*"outcome":"forbidden"' "$T/state/audit.jsonl"
chmod 0660 "$SOCK"
expect_code 4 "without 0666, the socket itself refuses nobody" setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/bin/purgectl" -s "$SOCK" status

expect_code 0 "purge demo" ctl --json purge demo --yes --detach
ID=$(jf "$OUT" .id)
check "it runs" wait_until 5 status_is "$ID" started
EPID=$(executor_pid "$ID")
check "executor found" test -n "$EPID"
if [ -n "$EPID" ]; then
	expect_eq "executor uid is nobody's" "$(awk '/^Uid:/{print $2}' /proc/$EPID/status)" "$(id -u nobody)"
	expect_eq "no supplementary groups" "$(awk '/^Groups:/{print $2}' /proc/$EPID/status)" ""
	expect_eq "NoNewPrivs: 1" "$(awk '/^NoNewPrivs:/{print $2}' /proc/$EPID/status)" "1"
	expect_eq "Seccomp: 2" "$(awk '/^Seccomp:/{print $2}' /proc/$EPID/status)" "2"
	expect_eq "only fds 0-3 are open" "$(ls /proc/$EPID/fd | sort -n | tr '\n' ' ')" "0 1 2 3 "
	expect_eq "environment is empty" "$(wc -c </proc/$EPID/environ)" "0"
	check "secret not in its cmdline" sh -c "! tr '\0' ' ' </proc/$EPID/cmdline | grep -qF '$SECRET'"
	check "secret not in its environment" sh -c "! grep -qF '$SECRET' /proc/$EPID/environ"
	check "secret not in ps" sh -c "! ps -eo args | grep -v grep | grep -qF '$SECRET'"
	check "secret not in the supervisor's environment or cmdline" sh -c "! cat /proc/$PURGED_PID/environ /proc/$PURGED_PID/cmdline | grep -qF '$SECRET'"
	# Not dumpable: /proc/PID/mem and ptrace are closed even to its own uid.
	check "executor is not dumpable" sh -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups cat /proc/$EPID/environ 2>/dev/null"
fi
OUTS=$(ctl --json task "$ID"; ctl targets; ctl --json targets; ctl tasks; ctl cancel "$ID"; ctl --json wait "$ID")
check "secret not in purgectl output" sh -c "! printf '%s' \"\$1\" | grep -qF '$SECRET'" _ "$OUTS"
expect_contains "targets show which secrets exist" "$(ctl --json targets)" '"password"'
stop_purged TERM
check "secret not in the daemon's log" sh -c "! grep -qF '$SECRET' '$LOG'"
check "secret not in the journal or audit log" sh -c "! grep -rqF '$SECRET' '$T/state'"

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
