# Shared helpers for the integration scenarios: a private directory, a
# configuration, a real purged on a real Unix socket, purgectl, assertions.
# Each scenario sources this, calls its steps, and ends with `finish`.
# Everything is started in a temporary directory and stopped by PID.

set -uo pipefail

B=${PURGED_BUILD_DIR:?set PURGED_BUILD_DIR to the build directory}
SCENARIO=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/purged-it-$SCENARIO.XXXXXX")
# Executors run as an unprivileged user when we are root: they must be able
# to exec their binary whatever the permissions of the checkout, so copy the
# programs into a world-readable directory.
chmod 755 "$T"
mkdir -p "$T/bin"
cp "$B/purged" "$B/purged-executor" "$B/purged-executor-http" "$B/purged-rest" "$B/purgectl" "$T/bin/"
chmod 755 "$T/bin" "$T/bin/"*
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

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
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

start_purged() {
	"$T/bin/purged" -c "$CONF" -d >>"$LOG" 2>&1 &
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
	echo "$SCENARIO: $PASSED passed, $FAILED failed"
	[ "$FAILED" = 0 ]
}
