#!/bin/bash
# Install, build, and run purged in the foreground with a development
# configuration under ./demo-run, including a `demo` target of type noop that
# pretends to delete 100 objects. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

RUN=$PWD/demo-run
mkdir -p "$RUN"
chmod 755 "$RUN"
# When root, executors run as nobody: they must be able to exec their binary.
if [ "$(id -u)" = 0 ]; then
	EXEC_USER=nobody
else
	EXEC_USER=$(id -un) # ignored when not root: executors run as this user
fi
cat >"$RUN/purged.conf" <<CONF
; Development configuration written by scripts/demo.sh.
[daemon]
control_socket = $RUN/control.sock
state_dir      = $RUN/state
executor_user  = $EXEC_USER
max_executors  = 2
task_timeout   = 300

; A harmless target: pretends to delete 100 objects, 50 ms each.
[target demo]
type    = noop
objects = 100
step_ms = 50
CONF

C="./build/purgectl -s $RUN/control.sock"
cat <<MSG
purged is starting in the foreground (Ctrl-C stops it). In another terminal, try:

  $C status
  $C targets
  $C plan demo
  $C purge demo            # asks you to type 'demo'; shows a progress bar
  $C purge demo --yes --detach
  $C tasks
  $C --json tasks
  $C cancel TASK-ID
  $C reload

MSG
exec ./build/purged -c "$RUN/purged.conf"
