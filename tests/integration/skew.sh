#!/bin/bash
# Version skew (issue 13): the package upgraded under a running purged, so an old supervisor
# spawns new helpers. The real purged-executor is given, on its fd 3, the job an old supervisor
# would send; it must do nothing and answer, in the form that supervisor reads, "restart purged:
# it runs version X, its helpers are version Y". (purgectl of protocol 1 against this daemon is
# badinput.py's "protocol 1 request"; a journal state from a newer purged, test_task.c.)
. "$(dirname "$0")/lib.sh"

# The executor refuses to run as root: run it as nobody when we are root.
AS=()
[ "$IS_ROOT" = 1 ] && AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)

# old_supervisor MODE: play the supervisor's side on a socketpair; print the one answer, as JSON.
old_supervisor() {
	PYTHONPATH="$(dirname "$0")" "${AS[@]}" /usr/bin/python3 - "$T/bin/purged-executor" "$1" <<'EOF'
import json, os, socket, struct, subprocess, sys
from msgpack_min import frame, pk, unpk
exe, mode = sys.argv[1], sys.argv[2]
job = {"task_id": "01a227ad-f7bc-7304-b19f-9b57b020426a", "operation": "purge", "target": "demo",
       "type": "noop", "dry_run": False, "settings": {"objects": 3, "step_ms": 0}, "secrets": {}}
if mode == "protocol1":   # what purged 0.1 of protocol 1 sent: no kind, no build
    msg = {"v": 1, "job": job}
else:                     # same protocol, another build, with a field this build does not know
    msg = {"kind": "job", "v": 2, "build": "0.0.9", "job": dict(job, future_field=1)}
a, b = socket.socketpair()
if a.fileno() == 3:  # fd 3 is the child's end: keep ours elsewhere
    a2 = a.dup()
    a.close()
    a = a2
if b.fileno() != 3:
    os.dup2(b.fileno(), 3)
p = subprocess.Popen([exe, job["task_id"]], pass_fds=[3], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
b.close()
if a.fileno() != 3:
    os.close(3)
a.sendall(frame(pk(msg)))
a.settimeout(10)
data = b""
while True:
    chunk = a.recv(65536)
    if not chunk:
        break
    data += chunk
p.wait(timeout=10)
frames = []
while len(data) >= 4:
    n = struct.unpack(">I", data[:4])[0]
    frames.append(unpk(data[4:4 + n])[0])
    data = data[4 + n:]
print(json.dumps({"frames": frames, "exit": p.returncode, "stderr": p.stderr.read().decode(errors="replace")}))
EOF
}

OUT=$(old_supervisor protocol1)
check "protocol 1 job: one answer" test "$(jf "$OUT" '.frames | length')" = 1
check "... in protocol 1's form (outcome, no kind)" test "$(jf "$OUT" '.frames[0] | has("outcome") and (has("kind") | not)')" = true
check "... a failure" test "$(jf "$OUT" '.frames[0].outcome.ok')" = false
expect_contains "... saying to restart purged, with both versions" "$(jf "$OUT" '.frames[0].outcome.error')" \
	"restart purged: it runs protocol 1, its helpers are version"
check "... nothing deleted: no progress, no manifest" test "$(jf "$OUT" '[.frames[] | select(has("progress") or has("manifest"))] | length')" = 0
check "... and said in its log" grep -q "restart purged" <<<"$(jf "$OUT" .stderr)"

OUT=$(old_supervisor build)
check "another build: one answer" test "$(jf "$OUT" '.frames | length')" = 1
check "... a result of this protocol" test "$(jf "$OUT" '.frames[0].kind')" = result
expect_contains "... 'restart purged: it runs version X, its helpers are version Y'" \
	"$(jf "$OUT" '.frames[0].result.error')" "restart purged: it runs version 0.0.9, its helpers are version"
check "... nothing deleted" test "$(jf "$OUT" '.frames[0].result | has("counts") | not')" = true

# purged-rest spawned by a supervisor of another build: it refuses to serve, saying why.
old_rest() {
	"${AS[@]}" /usr/bin/python3 - "$T/bin/purged-rest" "$@" <<'EOF'
import os, socket, subprocess, sys
exe, args = sys.argv[1], sys.argv[2:]
link_a, link_b = socket.socketpair()
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
keep = [os.dup(link_b.fileno()), os.dup(lst.fileno())]
os.dup2(keep[0], 3)
os.dup2(keep[1], 4)
p = subprocess.run([exe] + args, pass_fds=[3, 4], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
print(p.returncode)
print(p.stderr.decode(errors="replace"))
EOF
}
OUT=$(old_rest 30 --upstream-timeout=30)
check "purged-rest started as protocol 1's supervisor did (no --build): refuses (exit 78)" test "$(head -n1 <<<"$OUT")" = 78
expect_contains "... saying 'restart purged'" "$OUT" "restart purged: it runs version older than 0.1.0, its helpers are version"
OUT=$(old_rest 30 --upstream-timeout=30 --build=0.0.9)
check "purged-rest of another build: refuses (exit 78)" test "$(head -n1 <<<"$OUT")" = 78
expect_contains "... naming both versions" "$OUT" "restart purged: it runs version 0.0.9, its helpers are version"

finish
