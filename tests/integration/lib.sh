# Shared helpers for the integration scenarios: a private directory, a
# configuration, a real purged on a real Unix socket, purgectl, assertions.
# Each scenario sources this, calls its steps, and ends with `finish`.
# Everything is started in a temporary directory and stopped by PID.

set -uo pipefail

B=${PURGED_BUILD_DIR:?set PURGED_BUILD_DIR to the build directory}
# 1 for an ASan+UBSan build: its memory figures and speed are the sanitizer's, not purged's.
SANITIZED=0
ldd "$B/purged-executor" 2>/dev/null | grep -q libasan && SANITIZED=1
SCENARIO=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/purged-it-$SCENARIO.XXXXXX")
# Executors run as an unprivileged user when we are root: they must be able
# to exec their binary whatever the permissions of the checkout, so copy the
# programs into a world-readable directory.
chmod 755 "$T"
mkdir -p "$T/bin"
cp "$B/purged" "$B/purged-executor" "$B/purged-executor-http" "$B/purged-rest" "$B/purgectl" "$T/bin/"
chmod 755 "$T/bin" "$T/bin/"*
# `ctl` is also a program on PATH, so that `sh -c "ctl …"` and other subshells find it.
mkdir -p "$T/tools"
printf '#!/bin/sh\nexec "%s/bin/purgectl" -s "%s/control.sock" "$@"\n' "$T" "$T" >"$T/tools/ctl"
chmod 755 "$T/tools" "$T/tools/ctl"
export PATH="$T/tools:$PATH"
SOCK=$T/control.sock
CONF=$T/purged.conf
LOG=$T/purged.log
PURGED_PID=
PASSED=0
FAILED=0
IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

cleanup() {
	if [ -n "$PURGED_PID" ] && kill -0 "$PURGED_PID" 2>/dev/null; then
		kill -KILL "$PURGED_PID" 2>/dev/null
	fi
	# Executors orphaned by a killed supervisor: ours only, by their path.
	pkill -KILL -f "^$T/bin/purged-(executor|rest)" 2>/dev/null
	if [ "${KEEP_TMP:-0}" = 1 ] || [ "$FAILED" -gt 0 ]; then
		echo "# kept $T for inspection"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
not_ok() {
	FAILED=$((FAILED + 1))
	echo "not ok - $*"
	if [ -f "$LOG" ]; then echo "# last lines of the daemon log:"; tail -n 15 "$LOG" | sed 's/^/#   /'; fi
}

# check DESCRIPTION COMMAND...: passes when the command succeeds. A command a
# shell could not find (e.g. a function of this file inside `sh -c`), or a grep
# that could not read its file, fails the check even under `!`: "not found"
# must never read as "absent".
check() {
	local what=$1 st
	shift
	"$@" 2>"$T/check.err"
	st=$?
	cat "$T/check.err" >&2
	if grep -qE '(^|: )(line )?[0-9]+: [^ ]+: (command )?not found$' "$T/check.err" 2>/dev/null ||
		grep -qE 'failed to (execute|run command).*No such file or directory$' "$T/check.err" 2>/dev/null; then
		# The shell's own "not found", and exec wrappers' (nsenter, env, setpriv, timeout).
		not_ok "$what: a command was not found ($(grep -m1 -E 'not found$|No such file or directory$' "$T/check.err"))"
	elif grep -qE '^grep: .*: (No such file or directory|Permission denied)$' "$T/check.err" 2>/dev/null; then
		not_ok "$what: grep could not read its input ($(grep -m1 -E '^grep: ' "$T/check.err"))"
	elif [ "$st" = 0 ]; then ok "$what"; else not_ok "$what"; fi
}

# no_match GREP-ARGS...: grep finds nothing (status 1); a missing or unreadable
# file (status 2) is a failure, not an absence.
no_match() {
	grep -q "$@"
	[ $? = 1 ]
}

# expect_one_of DESCRIPTION VALUE ALLOWED...: VALUE is one of ALLOWED (empty never is).
expect_one_of() {
	local what=$1 value=$2 a
	shift 2
	for a in "$@"; do [ -n "$value" ] && [ "$value" = "$a" ] && { ok "$what ($value)"; return; }; done
	not_ok "$what: got '$value', want one of: $*"
}

# Processes: "PID exists and has property X". A missing PID, or one that ended
# or was reused during the check, fails it. proc_start PID: the kernel's start
# time of PID (field 22 of /proc/PID/stat), empty when there is no such process.
proc_start() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }'
}
# expect_proc DESCRIPTION PID COMMAND...: process PID exists, COMMAND succeeds, PID is still that process.
expect_proc() {
	local what=$1 pid=$2 before
	shift 2
	before=$(proc_start "$pid")
	if [ -z "$before" ]; then not_ok "$what: no process '$pid'"; return; fi
	if ! "$@"; then not_ok "$what (process $pid)"; return; fi
	if [ "$(proc_start "$pid")" != "$before" ]; then not_ok "$what: process $pid ended during the check"; return; fi
	ok "$what"
}
# proc_eq DESCRIPTION PID WANT COMMAND...: process PID exists, COMMAND prints WANT, PID is still that process.
proc_eq() {
	local what=$1 pid=$2 want=$3 before got
	shift 3
	before=$(proc_start "$pid")
	if [ -z "$before" ]; then not_ok "$what: no process '$pid'"; return; fi
	got=$("$@")
	if [ "$(proc_start "$pid")" != "$before" ]; then not_ok "$what: process $pid ended during the check"; return; fi
	expect_eq "$what" "$got" "$want"
}
# proc_field PID FILE KEY: the first value of "KEY:" in /proc/PID/FILE (e.g. status Uid).
proc_field() { awk -v k="$3:" '$1 == k { print $2; exit }' "/proc/$1/$2"; }
# bytes_of FILE: its size as read (for /proc files, whose stat size is 0); nothing when unreadable.
bytes_of() { [ -r "$1" ] && wc -c <"$1"; }
# fd_links PID [ERE]: "FD:TARGET" for each open fd of PID (those whose target matches ERE).
fd_links() {
	local fd
	[ -d "/proc/$1/fd" ] || { echo "# no /proc/$1/fd" >&2; return 1; }
	for fd in "/proc/$1/fd/"*; do printf '%s:%s\n' "${fd##*/}" "$(readlink "$fd")"; done | grep -E -- "${2:-.}"
	return 0
}
# not_dumpable PID: another process of the same uid cannot read /proc/PID/environ,
# while that uid can read its own (so a failing setpriv proves nothing).
not_dumpable() {
	local uid err
	uid=$(proc_field "$1" status Uid) || return 1
	setpriv --reuid="$uid" --regid=nogroup --clear-groups cat /proc/self/environ >/dev/null || { echo "# setpriv as uid $uid does not work" >&2; return 1; }
	err=$(setpriv --reuid="$uid" --regid=nogroup --clear-groups cat "/proc/$1/environ" 2>&1 >/dev/null) && return 1
	contains "$err" "Permission denied"
}

# skip_part WHAT WHY: a part of this scenario did not run. scripts/test.sh
# collects these "SKIP:" lines into its skip count and list.
SKIPPED=0
skip_part() { SKIPPED=$((SKIPPED + 1)); echo "SKIP: $SCENARIO: $1: $2"; }

# never_within SECONDS DESCRIPTION COMMAND...: COMMAND does not succeed once in SECONDS.
never_within() {
	local limit=$1 what=$2
	shift 2
	local end=$((SECONDS + limit))
	while [ $SECONDS -le $end ]; do
		if "$@"; then not_ok "$what"; return; fi
		sleep 0.05
	done
	ok "$what (watched ${limit} s)"
}

# expect_code CODE DESCRIPTION COMMAND...: the command's exit status must be CODE.
# Its stdout is kept in $OUT and stderr in $ERR.
expect_code() {
	local want=$1 what=$2
	shift 2
	OUT=$("$@" 2>"$T/stderr")
	local got=$?
	ERR=$(cat "$T/stderr")
	if [ "$got" = "$want" ]; then ok "$what (exit $got)"; else not_ok "$what: exit $got, want $want; stderr: $ERR"; fi
}

contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac }
expect_contains() {
	if contains "$2" "$3"; then ok "$1"; else not_ok "$1: '$3' not in: $2"; fi
}
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi
}

# write_config [EXTRA...]: the [daemon] section for this scenario, then stdin appended.
write_config() {
	{
		echo "[daemon]"
		echo "control_socket = $SOCK"
		echo "state_dir = $T/state"
		echo "executor_user = nobody"
		echo "cancel_grace = 1"
		for kv in "$@"; do echo "$kv"; done
		cat
	} >"$CONF"
}

ctl() { "$T/bin/purgectl" -s "$SOCK" "$@"; }

start_purged() { # PURGED_ARGS: extra options (e.g. --test-probes)
	"$T/bin/purged" ${PURGED_ARGS:-} -c "$CONF" -d >>"$LOG" 2>&1 &
	PURGED_PID=$!
	for _ in $(seq 1 100); do
		[ -S "$SOCK" ] && ctl status >/dev/null 2>&1 && return 0
		kill -0 "$PURGED_PID" 2>/dev/null || break
		sleep 0.05
	done
	not_ok "purged did not start"
	tail -n 20 "$LOG"
	return 1
}

# stop_purged [SIGNAL]: stop it and wait; sets STOP_STATUS.
stop_purged() {
	local sig=${1:-TERM}
	kill -"$sig" "$PURGED_PID" 2>/dev/null
	wait "$PURGED_PID" 2>/dev/null
	STOP_STATUS=$?
	PURGED_PID=
}

# json_field JSON JQ-FILTER
jf() { printf '%s' "$1" | jq -r "$2"; }

# wait_until SECONDS COMMAND...: poll until the command succeeds.
wait_until() {
	local limit=$1
	shift
	local end=$((SECONDS + limit))
	while [ $SECONDS -le $end ]; do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# A free TCP port on loopback (the kernel picks it; the race until use is small).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# mint_token NAME: a REST token in $TOKEN, its hash line in $T/tokens (mode 0600).
mint_token() {
	local out
	out=$("$T/bin/purgectl" token new "$1" 2>/dev/null)
	TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
	install -m 0600 /dev/null "$T/tokens"
	printf '%s\n' "$out" | sed -n 2p >"$T/tokens"
}

# rest_door NAME: a free $PORT for purged-rest, its base URL $U, a token of NAME ($TOKEN, in
# $T/tokens) and its header $AUTH; write the section with rest_conf.
rest_door() {
	PORT=$(free_port)
	U=http://127.0.0.1:$PORT
	mint_token "$1"
	AUTH="Authorization: Bearer $TOKEN"
}

# rest_conf: the [rest] section for purged-rest on $PORT with $T/tokens (see mint_token).
rest_conf() { printf '[rest]\nenabled = yes\nlisten = 127.0.0.1:%s\ntokens_file = %s/tokens\n' "$PORT" "$T"; }

task_status() { ctl --json task "$1" 2>/dev/null | jq -r .status; }
status_is() { [ "$(task_status "$1")" = "$2" ]; }

# The PID of the executor serving task $1 (its argv carries the task id).
executor_pid() { pgrep -f "^$T/bin/purged-executor(-http)? $1" | head -n 1; }

finish() {
	# A sanitizer build reports into the daemon's log (executors' stderr is relayed there).
	if [ -f "$LOG" ] && grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LOG"; then
		not_ok "sanitizer report in the daemon log"
		grep -E -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LOG" | head -n 40 | sed 's/^/#   /'
	fi
	# A scenario that checked nothing proves nothing.
	[ "$PASSED" -gt 0 ] || not_ok "the scenario ran no check"
	echo "$SCENARIO: $PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" = 0 ]
}

# proc_gone PID: process PID no longer exists. An empty or non-numeric PID fails: "gone" must
# never be read from "we never knew which one".
proc_gone() {
	case $1 in '' | *[!0-9]*) echo "# proc_gone: no PID given ('$1')" >&2; return 1 ;; esac
	! kill -0 "$1" 2>/dev/null
}

# redmine_up: a real Redmine (tests/peers/redmine-up.sh, $PEERS) on $RPORT with its state under
# $REDMINE_STATE: sets $RURL, $KEY (the admin's API key, in $T/redmine-key) and $DB (its SQLite
# file); api METHOD PATH [JSON] calls it. A Redmine that does not start ends the scenario.
redmine_up() {
	if ! RURL=$("$PEERS/redmine-up.sh" "$RPORT" "$T/redmine-key" 2>"$T/redmine-up.log"); then
		cat "$T/redmine-up.log"
		not_ok "Redmine did not start"
		finish
		exit 1
	fi
	ok "a real Redmine runs at $RURL"
	KEY=$(cat "$T/redmine-key")
	DB=$REDMINE_STATE/$RPORT/redmine.sqlite3
}
api() { # METHOD PATH [JSON]
	curl -s -X "$1" -H "X-Redmine-API-Key: $KEY" -H 'Content-Type: application/json' ${3:+-d "$3"} "$RURL$2"
}
