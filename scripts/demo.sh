#!/bin/bash
# Install, build, and run purged in the foreground with a development
# configuration under ./demo-run: a `demo` target of type noop that pretends
# to delete 100 objects, and the REST listener on loopback with a bearer
# token minted for you. Ctrl-C stops it. Every line of the README's
# 30-second tour works against it (tests/integration/tour.sh checks that).
#
#   --no-build   use the programs in $PURGED_BUILD_DIR (default build/) as they are
#   DEMO_DIR     where the configuration and state go (default ./demo-run)
#   DEMO_PORT    the REST port on 127.0.0.1 (default 8470)
set -euo pipefail
cd "$(dirname "$0")/.."

B=${PURGED_BUILD_DIR:-build}
if [ "${1:-}" != --no-build ]; then
	scripts/deps.sh
	[ -f "$B/build.ninja" ] || meson setup "$B" >/dev/null
	ninja -C "$B" >/dev/null
fi

case $B in /*) BIN=$B ;; *) BIN=$PWD/$B ;; esac
RUN=${DEMO_DIR:-$PWD/demo-run}
PORT=${DEMO_PORT:-8470}
mkdir -p "$RUN"
chmod 755 "$RUN"
# When root, executors run as nobody: they must be able to exec their binary.
if [ "$(id -u)" = 0 ]; then
	EXEC_USER=nobody
else
	EXEC_USER=$(id -un) # ignored when not root: executors run as this user
fi

# A fresh token each start: only its hash is written down.
TOKEN_LINES=$("$B/purgectl" token new demo 2>/dev/null)
TOKEN=$(printf '%s\n' "$TOKEN_LINES" | sed -n 1p)
install -m 0600 /dev/null "$RUN/tokens"
printf '%s\n' "$TOKEN_LINES" | sed -n 2p >"$RUN/tokens"
printf '%s\n' "$TOKEN" >"$RUN/token" # the demo's own token, for the tour (mode 0600 below)
chmod 0600 "$RUN/token"

cat >"$RUN/purged.conf" <<CONF
; Development configuration written by scripts/demo.sh.
[daemon]
control_socket = $RUN/control.sock
state_dir      = $RUN/state
executor_user  = $EXEC_USER
max_executors  = 2
task_timeout   = 300

; Lucid Chain's POST /purge/:target and the task routes, on loopback only.
[rest]
enabled     = yes
listen      = 127.0.0.1:$PORT
tokens_file = $RUN/tokens

; A harmless target: pretends to delete 100 objects, 50 ms each.
[target demo]
type    = noop
objects = 100
step_ms = 50
CONF

cat <<MSG
purged is starting in the foreground (Ctrl-C stops it). In another terminal:

  export PATH=$BIN:\$PATH PURGED_SOCKET=$RUN/control.sock
  TOKEN=\$(cat $RUN/token)

then every line of the README's tour works, for example:

  purgectl status
  purgectl plan demo
  purgectl purge demo            # asks you to type 'demo'; shows a progress bar
  purgectl purge demo --yes --detach
  purgectl tasks
  curl -X POST -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$PORT/purge/demo

MSG
exec "$B/purged" -c "$RUN/purged.conf"
