#!/bin/bash
# Sandbox proofs: an executor (noop with probe = yes, allowed only under
# purged --test-probes) tries, once confined, to read /etc/shadow and the
# daemon's credential files, write in /tmp and in state_dir, ptrace and
# signal its parent, open a raw socket, load a kernel module, connect by TCP
# to a port other than its target's, and exec a shell. Each must fail, and
# the one allowed connection must work (so a failure to connect is not
# mistaken for a proof). purged-rest must not read token or credential files.
. "$(dirname "$0")/lib.sh"
[ "$IS_ROOT" = 1 ] || { echo "1..0 # SKIP needs root (executors as nobody, secrets owned by root)"; exit 77; }

install -m 0600 /dev/null "$T/secret"
echo "s3cret-probe" >"$T/secret"
mint_token ci
# Two listeners on ports the kernel picks, distinct by construction, bound before we go on.
mkfifo "$T/ports"
python3 -c '
import socket, sys, time
ss = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); ss.append(s)
with open(sys.argv[1], "w") as f:
    f.write(" ".join(str(s.getsockname()[1]) for s in ss) + "\n")
time.sleep(300)' "$T/ports" &
LISTENERS=$!
read -r -t 10 OTHER ALLOWED <>"$T/ports" || { not_ok "the two test listeners did not start"; finish; exit 1; }
trap 'kill $LISTENERS 2>/dev/null; cleanup' EXIT
RPORT=$(free_port)
write_config <<EOF2
[rest]
enabled = yes
listen = 127.0.0.1:$RPORT
tokens_file = $T/tokens

[target probe]
type = noop
objects = 1
step_ms = 0
probe = yes
password_file = $T/secret
probe_read = /etc/shadow:$T/secret:$T/tokens:$CONF:$T/state/journal
probe_write = /tmp:$T/state:$T
probe_port = $OTHER
probe_allowed_port = $ALLOWED
EOF2

# Without the test flag a probe target is refused.
start_purged || { finish; exit 1; }
expect_code 4 "a probe target is refused without --test-probes" ctl --json purge probe --yes --wait
expect_contains "…saying why" "$ERR" "runs only under purged --test-probes"
stop_purged TERM
# Its purged-rest ends when its link closes, a moment later: until then it holds the REST port.
check "the first purged-rest has ended" wait_until 5 eval '! pgrep -f "^$T/bin/purged-rest" >/dev/null'

"$T/bin/purged" -c "$CONF" -d --test-probes >>"$LOG" 2>&1 &
PURGED_PID=$!
check "purged --test-probes starts" wait_until 10 sh -c "'$T/bin/purgectl' -s '$SOCK' status >/dev/null 2>&1"
expect_code 0 "the probe task runs to its end" ctl --json purge probe --yes --wait
P=$OUT
errno_name() { python3 -c "import errno,sys; print(errno.errorcode.get(int(sys.argv[1]), 'SUCCEEDED') if int(sys.argv[1]) else 'SUCCEEDED')" "$1"; }
# Blocked means refused by a permission check (EACCES or EPERM): any other errno
# (ENOENT, EBADF...) would prove nothing about the sandbox.
blocked() { # KEY DESCRIPTION
	local v
	v=$(jf "$P" ".counts[\"probe.$1\"]")
	case $v in
	13 | 1) ok "$2: $(errno_name "$v")" ;;
	'' | null) not_ok "$2: no result" ;;
	*) not_ok "$2: $(errno_name "$v") is not a refusal (want EACCES or EPERM)" ;;
	esac
}
blocked read0 "read /etc/shadow"
blocked read1 "read the target's password file"
blocked read2 "read the REST tokens file"
blocked read3 "read purged.conf"
blocked read4 "read the task journal"
blocked write0 "write in /tmp"
blocked write1 "write in state_dir"
blocked write2 "write in the configuration directory"
blocked ptrace_parent "ptrace the supervisor"
blocked signal_parent "signal the supervisor"
blocked raw_socket "open a raw socket"
blocked load_module "load a kernel module"
blocked connect_other_port "TCP connect to another port than the target's"
blocked exec_shell "execve /bin/sh"
expect_eq "the allowed port connects (the control)" "$(jf "$P" '.counts["probe.connect_allowed_port"]')" "0"
check "no probe file was left in /tmp" eval '! compgen -G "/tmp/purged-probe-*" >/dev/null'
check "the attempts are in the log" grep -q "probe: exec_shell /bin/sh" "$LOG"

# purged-rest: the same files, from inside its sandbox.
check "purged-rest ran its probe" wait_until 5 grep -q "probe: open $T/tokens" "$LOG"
for f in "$T/tokens" "$T/state/journal" "$CONF" /etc/shadow; do
	check "purged-rest cannot read $f" sh -c "grep -qE 'probe: open $f: (Permission denied|Operation not permitted)' '$LOG'"
done
check "no probe succeeded" no_match -F 'SUCCEEDED (sandbox hole)' "$LOG"
RPID=$(pgrep -f "^$T/bin/purged-rest" | head -n 1)
# Beyond fds 0-4 it holds only what libuv made (epoll, eventfd, pipes, /dev/null kept for its EMFILE
# accept trick) and clients' sockets: no file.
files_beyond_stdio() { fd_links "$1" | awk -F: '$1 > 2 && $2 ~ /^\// && $2 != "/dev/null"'; }
proc_eq "purged-rest holds no file open (beyond stdio)" "$RPID" "" files_beyond_stdio "$RPID"
proc_eq "fds 3 and 4 are its link and its listener" "$RPID" "3:socket: 4:socket:" eval 'fd_links "$RPID" "^[34]:" | cut -d[ -f1 | tr "\n" " " | sed "s/ $//"'
proc_eq "purged-rest: empty environment" "$RPID" 0 bytes_of "/proc/$RPID/environ"
expect_proc "purged-rest is not dumpable" "$RPID" not_dumpable "$RPID"
stop_purged TERM
finish
