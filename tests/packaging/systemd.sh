#!/bin/bash
# The packaged service under a real systemd (issue 17). The .deb built from
# this tree is installed in a minimal Debian 12 tree (debootstrap, cached in
# $PURGED_CI_CACHE, default /var/cache/purged-ci) whose systemd runs as PID 1
# in a container (systemd-nspawn --boot, its own PID, mount and network
# namespaces; never this machine's root file system). Then the unit as shipped
# is used as an administrator uses it: start, every hardening line as systemd
# parsed it (against the list below) and as the supervisor lives it (its
# mounts, seccomp filters), status, a noop purge (executor as `purged`,
# NoNewPrivs, its own seccomp filter), a cancel, Landlock under the unit's
# filter, a CRDB purge of the tree's own redis-server, the REST listener on
# loopback, reload with a broken file and a good one, a remote backend refused
# by IPAddressDeny until the documented drop-in allows it, stop, journal
# priorities. The .rpm's unit must be the same file. Needs root. Measured on 2
# cores: 2 min 47 s cold (debootstrap 1 min 50 s), 47 s with the cached tree.
#
#   PURGED_CI_CACHE   where the Debian tree is kept between runs
#   PURGED_CI_MIRROR  Debian mirror for debootstrap (default http://deb.debian.org/debian)
. "$(dirname "$0")/../integration/lib.sh"
[ "$IS_ROOT" = 1 ] || { echo "1..0 # SKIP needs root (debootstrap, systemd-nspawn)"; exit 77; }
for tool in debootstrap systemd-nspawn nsenter dpkg-buildpackage; do
	command -v "$tool" >/dev/null || {
		echo "1..0 # SKIP $tool not installed (scripts/deps.sh installs debootstrap, systemd-container, dpkg-dev)"
		exit 77
	}
done
SRC=${PURGED_SOURCE_DIR:?}
CACHE=${PURGED_CI_CACHE:-/var/cache/purged-ci}
MIRROR=${PURGED_CI_MIRROR:-http://deb.debian.org/debian}
LOCAL_GUID=11111111-1111-4111-8111-111111111111
REMOTE_GUID=22222222-2222-4222-8222-222222222222
REMOTE_ADDR=192.0.2.10 # TEST-NET-1, only ever on the container's own loopback device
REMOTE_PORT=6380

NSPAWN_PID=
LEADER=
MERGED=$T/merged
T_START=$SECONDS
T_PHASE=$SECONDS
phase() { echo "# time: $1 took $((SECONDS - T_PHASE)) s (total $((SECONDS - T_START)) s)"; T_PHASE=$SECONDS; }

# Stop the container (SIGTERM: nspawn asks its systemd to power off), then
# unmount the overlay; then lib.sh's cleanup. All by PID and path.
sd_cleanup() {
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		if [ "$FAILED" -gt 0 ] && [ -n "$LEADER" ]; then
			echo "# the container's journal for purged (last 40 lines):"
			X journalctl -u purged --no-pager -n 40 2>&1 | sed 's/^/#   /'
		fi
		kill -TERM "$NSPAWN_PID"
		wait_until 30 sh -c "! kill -0 $NSPAWN_PID 2>/dev/null" || kill -KILL "$NSPAWN_PID"
		wait "$NSPAWN_PID" 2>/dev/null
	fi
	if mountpoint -q "$MERGED" 2>/dev/null; then
		umount "$MERGED" 2>/dev/null || umount -l "$MERGED"
	fi
	cleanup
}
trap sd_cleanup EXIT

# X COMMAND...: run COMMAND inside the container (all its namespaces), as root.
X() { nsenter -t "$LEADER" -a "$@"; }
# cstatus PID KEY: the value of KEY in the container's /proc/PID/status.
cstatus() { X awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status" 2>/dev/null; }
# cprop PROPERTY: a property of purged.service as systemd sees it.
cprop() { X systemctl show -p "$1" --value purged.service; }
# jmsg PRIORITY ERE: purged.service's journal has a line matching ERE at PRIORITY (syslog number).
jmsg() { X journalctl -u purged.service -o json --no-pager | jq -e -s --arg p "$1" --arg re "$2" \
	'any(.[]; (.MESSAGE | type) == "string" and (.MESSAGE | test($re)) and .PRIORITY == $p)' >/dev/null; }
# matches STRING ERE: STRING matches ERE; says what it got when not.
matches() { [[ $1 =~ $2 ]] || { echo "# got '$1', want a match of /$2/" >&2; return 1; }; }
# cmount PID MOUNTPOINT N: field N of the mount on MOUNTPOINT (the top one) that
# process PID of the container sees: 1 major:minor, 2 root, 3 mount options,
# 4 file system type, 5 its super options. Empty when there is none.
cmount() {
	X awk -v m="$2" -v n="$3" '{
		i = index($0, " - "); split(substr($0, 1, i - 1), a, " "); split(substr($0, i + 3), b, " ")
		if (a[5] == m) { f[1] = a[3]; f[2] = a[4]; f[3] = a[6]; f[4] = b[1]; f[5] = b[3]; r = f[n] }
	} END { print r }' "/proc/$1/mountinfo" 2>/dev/null
}

# Every hardening line of purged.service.in, as `systemctl show` prints it once
# systemd 252 has parsed it. The two SystemCallFilter= lines are the unit's
# own; the list systemd resolves them to is compared below (on systemd 252
# the ~ line takes nothing out of @system-service: measured, that list is the
# same without it; it guards against the groups growing). SecureBits=2 is
# noroot-locked alone. DeviceAllow= (char-rtc r, from ProtectClock=) is no
# line of the unit.
HARDENING=$(cat <<'EOF'
CapabilityBoundingSet=cap_kill cap_setgid cap_setuid
AmbientCapabilities=
NoNewPrivileges=yes
SecureBits=2
UMask=0077
PrivateMounts=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
KeyringMode=private
RemoveIPC=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service landlock_create_ruleset landlock_add_rule landlock_restrict_self
SystemCallFilter=~@mount @swap @reboot @raw-io @module @obsolete @cpu-emulation @debug @clock
SystemCallErrorNumber=1
IPAddressAllow=::1/128 127.0.0.0/8
IPAddressDeny=0.0.0.0/0 ::/0
IPAccounting=yes
EOF
)
# The [Service] lines of the unit that are not hardening (checked by use).
NOT_HARDENING='Type NotifyAccess ExecStartPre ExecStart ExecReload Restart RestartSec TimeoutStopSec
RuntimeDirectory RuntimeDirectoryMode StateDirectory StateDirectoryMode ConfigurationDirectory ConfigurationDirectoryMode'
# same_lines WANT GOT: equal; the difference on stderr when not (and an empty WANT never is).
same_lines() {
	[ -n "$1" ] && [ "$1" = "$2" ] && return 0
	echo "# < expected, > systemd:" >&2
	diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | sed -n 's/^[<>]/#   &/p' >&2
	return 1
}
# words_sorted: each KEY=VALUE line of stdin with VALUE's words in order (systemd
# prints some sets, e.g. IPAddressAllow=, in no fixed order), the lines sorted.
words_sorted() {
	local key value
	while IFS='=' read -r key value; do
		printf '%s=%s\n' "$key" "$(printf '%s\n' $value | sort | paste -sd ' ')"
	done | sort
}
# syscall_list ALLOW DENY (stdin: systemd-analyze syscall-filter): the names
# of ALLOW's calls and groups, expanded, less DENY's.
syscall_list() {
	awk -v allow="$1" -v deny="$2" '
		function expand(name, set,   n, i, parts) {
			if (name !~ /^@/) { set[name] = 1; return }
			if (!(name in members)) { print "# unknown group " name >"/dev/stderr"; bad = 1; return }
			n = split(members[name], parts, " ")
			for (i = 1; i <= n; i++) expand(parts[i], set)
		}
		/^@/ { g = $1; members[g] = ""; next }
		/^#/ { g = ""; next }
		g != "" && NF == 1 && $1 !~ /^#/ { members[g] = members[g] " " $1 }
		END {
			n = split(allow, a, " "); for (i = 1; i <= n; i++) expand(a[i], A)
			n = split(deny, d, " "); for (i = 1; i <= n; i++) expand(d[i], D)
			for (s in A) if (!(s in D)) print s
			exit bad
		}'
}

# ---------------------------------------------------------------- packages
# The .rpm builds meanwhile (its unit is compared at the end).
RPM_PID=
if command -v rpmbuild >/dev/null && command -v rpm2cpio >/dev/null; then
	"$SRC/packaging/build-rpm.sh" "$T/rpm" >"$T/rpm-build.log" 2>&1 &
	RPM_PID=$!
fi
check "dpkg-buildpackage builds the .deb" "$SRC/packaging/build-deb.sh" "$T/dist"
DEB=$(ls "$T"/dist/purged_*_*.deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || { not_ok "no .deb in $T/dist: see the build output above"; finish; exit 1; }
dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./lib/systemd/system/purged.service >"$T/deb.service"
phase "building the .deb"

# ---------------------------------------------------------------- the Debian tree
# Base system + systemd + what the checks use + the .deb's Depends (so that
# dpkg installs it offline: the container has no network). The cache key is
# that list: a new dependency makes a new tree.
BASE="systemd systemd-sysv dbus iproute2 procps curl redis-server"
DEPS=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' | grep .)
PKGS=$(printf '%s\n' $BASE $DEPS | sort -u | tr '\n' ',' | sed 's/,$//')
KEY=$(printf 'bookworm %s %s v1' "$MIRROR" "$PKGS" | sha256sum | cut -c1-16)
TREE=$CACHE/bookworm-$KEY
mkdir -p "$CACHE"
TREE_CACHED=no
[ -f "$TREE/.purged-ci-complete" ] && TREE_CACHED=yes
(
	flock 9
	if [ ! -f "$TREE/.purged-ci-complete" ]; then
		echo "# no cached tree $TREE: debootstrap bookworm from $MIRROR with $PKGS"
		rm -rf "$TREE.new"
		if ! debootstrap --variant=minbase --include="$PKGS" bookworm "$TREE.new" "$MIRROR" >"$T/debootstrap.log" 2>&1; then
			tail -n 30 "$T/debootstrap.log"
			echo "# debootstrap failed (log above): is $MIRROR reachable? Set PURGED_CI_MIRROR to another Debian mirror." >&2
			rm -rf "$TREE.new"
			exit 1
		fi
		# The tree only ever boots as a container: no timers or consoles to wait for.
		chroot "$TREE.new" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
			dpkg-db-backup.timer console-getty.service >/dev/null 2>&1
		touch "$TREE.new/.purged-ci-complete"
		rm -rf "$TREE" && mv "$TREE.new" "$TREE"
		# Older trees (other package lists) are not used any more.
		for old in "$CACHE"/bookworm-*; do
			[ "$old" = "$TREE" ] || rm -rf "$old"
		done
	fi
) 9>"$CACHE/.lock"
check "a Debian 12 tree with systemd ($TREE)" test -f "$TREE/.purged-ci-complete"
[ -f "$TREE/.purged-ci-complete" ] || { finish; exit 1; }
phase "the Debian tree (cached: $TREE_CACHED)"

# ---------------------------------------------------------------- boot
# An overlay keeps the cached tree pristine: everything this run writes goes
# to $T/upper and is thrown away.
mkdir -p "$T/upper" "$T/work" "$MERGED"
check "overlay of the cached tree" mount -t overlay overlay \
	-o "lowerdir=$TREE,upperdir=$T/upper,workdir=$T/work" "$MERGED"
cp "$DEB" "$MERGED/root/"
# --private-network: the container has only its own loopback device.
# --system-call-filter: nspawn's own seccomp filter (systemd 252) refuses
# bpf(2) and the landlock_* calls. Without bpf the container's systemd cannot
# attach IPAddressDeny's cgroup BPF programs: it runs the unit WITHOUT its IP
# firewall and says so only at debug level (measured: the remote purge below
# then succeeds). Without landlock_* every executor runs without Landlock, as
# on a kernel that lacks it (measured: the probe below then reads purged.conf).
# --register=no --keep-unit: this machine's PID 1 may not be systemd.
systemd-nspawn --quiet -D "$MERGED" -M "purged-ci-$$" --boot --private-network \
	--register=no --keep-unit --console=read-only \
	--system-call-filter='bpf landlock_create_ruleset landlock_add_rule landlock_restrict_self' \
	>"$T/boot.log" 2>&1 &
NSPAWN_PID=$!
find_leader() { LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd | head -n 1); [ -n "$LEADER" ]; }
check "systemd-nspawn starts systemd as PID 1 of the container" wait_until 30 find_leader
[ -n "$LEADER" ] || { sed 's/^/#   /' "$T/boot.log"; finish; exit 1; }
expect_eq "…it is PID 1 there" "$(X cat /proc/1/comm)" systemd
# Its private bus exists once it runs; then wait for the boot to end.
check "…its manager answers" wait_until 30 sh -c "nsenter -t $LEADER -a test -S /run/systemd/private"
STATE=$(X timeout 60 systemctl is-system-running --wait 2>&1)
expect_one_of "the container's systemd finished booting" "$STATE" running degraded
[ "$STATE" = degraded ] && X systemctl --failed --no-pager | sed 's/^/#   /'
phase "booting the container"

# ---------------------------------------------------------------- install
check "dpkg installs the .deb (offline: its Depends are in the tree)" \
	X env DEBIAN_FRONTEND=noninteractive dpkg -i "/root/$(basename "$DEB")"
expect_eq "the unit is enabled by the install" "$(X systemctl is-enabled purged.service 2>&1)" enabled
expect_eq "…and not started (the administrator starts it once configured)" "$(X systemctl is-active purged.service 2>&1)" inactive
check "systemd-analyze verify: the installed unit" X systemd-analyze verify --man=no purged.service
PURGED_UID=$(X id -u purged)
case $PURGED_UID in
'' | *[!0-9]*) not_ok "the package made the purged user: id -u purged says '$PURGED_UID'" ;;
*) ok "the package made the purged user (uid $PURGED_UID)" ;;
esac
# The expected list names every hardening line of the unit as shipped.
UNIT_KEYS=$(sed -n '/^\[Service\]/,/^\[/{ /^[A-Za-z]/s/=.*//p; }' "$T/deb.service" |
	grep -vxF -f <(printf '%s\n' $NOT_HARDENING) | sort -u)
check "the expected hardening list covers every hardening line of the shipped unit" \
	same_lines "$(printf '%s\n' "$HARDENING" | sed 's/=.*//' | sort -u)" "$UNIT_KEYS"

# The administrator's configuration: a noop target, a CRDB on the tree's
# redis-server, another on a "remote" host, the REST listener with a token.
TOKEN_OUT=$(X purgectl token new ci)
TOKEN=$(printf '%s\n' "$TOKEN_OUT" | sed -n 1p)
printf '%s\n' "$TOKEN_OUT" | sed -n 2p | X sh -c 'umask 077; cat >/etc/purged/secrets/tokens'
printf 'Authorization: Bearer %s\n' "$TOKEN" | X sh -c 'umask 077; cat >/root/auth-header'
X sh -c 'cat >/etc/purged/purged.conf.d/50-ci.conf' <<EOF
[target demo]
type = noop
objects = 30
step_ms = 100

[rest]
enabled = yes
listen = 127.0.0.1:8470
tokens_file = /etc/purged/secrets/tokens

[crdb $LOCAL_GUID]
instance.1 = redis://127.0.0.1:6379/0

[crdb $REMOTE_GUID]
instance.1 = redis://$REMOTE_ADDR:$REMOTE_PORT/0
EOF
check "purged -t accepts the configuration" X purged -t -c /etc/purged/purged.conf

# ---------------------------------------------------------------- start
expect_code 0 "systemctl start purged" X systemctl start purged.service
expect_eq "…active" "$(X systemctl is-active purged.service)" active
MAIN=$(cprop MainPID)
# proc_eq_c DESCRIPTION PID KEY WANT: /proc/PID/status of a process in the
# container; a missing PID, an empty value or an empty WANT fails.
proc_eq_c() {
	local what=$1 pid=$2 key=$3 want=$4 got
	case $pid in '' | *[!0-9]*) not_ok "$what ($key): no process '$pid'"; return ;; esac
	got=$(cstatus "$pid" "$key")
	if [ -z "$got" ] || [ -z "$want" ]; then
		not_ok "$what ($key): got '$got' from /proc/$pid/status, want '$want' (empty proves nothing)"
		return
	fi
	expect_eq "$what ($key)" "$got" "$want"
}
# proc_gt_c DESCRIPTION PID OTHER KEY: KEY of /proc/PID/status, a number, exceeds OTHER's.
proc_gt_c() {
	local what=$1 a b
	a=$(cstatus "$2" "$4")
	b=$(cstatus "$3" "$4")
	case "$a:$b" in
	:* | *: | *[!0-9:]*) not_ok "$what ($4): process '$2' has '$a', process '$3' '$b'" ;;
	*) if [ "$a" -gt "$b" ]; then ok "$what ($4: $a > $b)"; else not_ok "$what ($4): $a, not more than $b"; fi ;;
	esac
}
proc_eq_c "the supervisor runs as root" "$MAIN" Uid 0
proc_eq_c "…with no_new_privs (NoNewPrivileges=yes)" "$MAIN" NoNewPrivs 1
# nspawn gives every process of the container its seccomp filters (Seccomp 2
# proves nothing): the unit's come on top of those PID 1 has.
proc_gt_c "…under the unit's seccomp filters, on top of the container's (SystemCallFilter= and co.)" "$MAIN" 1 Seccomp_filters
proc_eq_c "…bounded to CAP_SETUID CAP_SETGID CAP_KILL (CapabilityBoundingSet=)" "$MAIN" CapBnd 00000000000000e0
# The hardening lines as systemd parsed them.
check "systemctl show: every hardening property of purged.service has its expected value" same_lines \
	"$(printf '%s\n' "$HARDENING" | grep -v '^SystemCallFilter=' | words_sorted)" \
	"$(X systemctl show $(printf '%s\n' "$HARDENING" | sed -n '/^SystemCallFilter=/!s/=.*//p' | sed 's/^/-p /') purged.service | words_sorted)"
# Its SystemCallFilter: the unit's groups expanded by systemd-analyze, less
# the names this systemd cannot resolve (it drops them; those of a unit
# allowing @known are the ones it can).
printf '[Service]\nExecStart=/bin/true\nSystemCallFilter=@known\n' | X sh -c 'cat >/run/systemd/system/purged-ci-known.service'
KNOWN=$(X systemctl show -p SystemCallFilter --value purged-ci-known.service | tr ' ' '\n')
check "…its SystemCallFilter= is the unit's two lines' (allowed, less denied)" same_lines \
	"$(X systemd-analyze syscall-filter --no-pager 2>/dev/null | syscall_list \
		"$(printf '%s\n' "$HARDENING" | sed -n 's/^SystemCallFilter=\([^~]\)/\1/p')" \
		"$(printf '%s\n' "$HARDENING" | sed -n 's/^SystemCallFilter=~//p')" | grep -xF -f <(printf '%s\n' $KNOWN) | sort)" \
	"$(cprop SystemCallFilter | tr ' ' '\n' | sort)"
# The supervisor's mounts (PID 1 of the container sees its own).
expect_eq "ProtectSystem=strict: / is read-only for the supervisor" "$(cmount "$MAIN" / 3 | cut -d, -f1)" ro
expect_eq "…and writable for the container's PID 1 (the control)" "$(cmount 1 / 3 | cut -d, -f1)" rw
check "PrivateTmp=yes: its /tmp is the unit's own" \
	matches "$(cmount "$MAIN" /tmp 2)" '^/systemd-private-[0-9a-f]+-purged\.service-[^/]+/tmp$'
private_dev() {
	local fs dev pid1
	fs=$(cmount "$MAIN" /dev 4) dev=$(cmount "$MAIN" /dev 1) pid1=$(cmount 1 /dev 1)
	[ "$fs" = tmpfs ] && [ -n "$dev" ] && [ "$dev" != "$pid1" ] && return 0
	echo "# the supervisor's /dev: a $fs, device '$dev'; PID 1's: device '$pid1'" >&2
	return 1
}
check "PrivateDevices=yes: its /dev is a tmpfs of its own, not the container's" private_dev
check "ProtectProc=invisible: its /proc is mounted hidepid=invisible" matches "$(cmount "$MAIN" /proc 5)" '(^|,)hidepid=invisible(,|$)'
check "ProcSubset=pid: …and subset=pid" matches "$(cmount "$MAIN" /proc 5)" '(^|,)subset=pid(,|$)'
check "ProtectHome=yes: its /home and /root are inaccessible" \
	matches "$(cmount "$MAIN" /home 2) $(cmount "$MAIN" /root 2)" '^[^ ]*/inaccessible/dir [^ ]*/inaccessible/dir$'
expect_code 0 "purgectl status" X purgectl status
expect_eq "the control socket is in RuntimeDirectory, group purge-admin" \
	"$(X stat -c '%U:%G %a' /run/purged/control.sock)" "root:purge-admin 660"
expect_eq "the state directory is StateDirectory's, mode 0700" "$(X stat -c '%U %a' /var/lib/purged)" "root 700"

# ---------------------------------------------------------------- noop purge
expect_code 0 "purgectl purge demo --detach" X purgectl --json purge demo --yes --detach
ID=$(jf "$OUT" .id)
exe_pid() { EXE=$(X pgrep -f "^/usr/libexec/purged/purged-executor $ID" | head -n 1); [ -n "$EXE" ]; }
check "…an executor runs it" wait_until 10 exe_pid
proc_eq_c "…as the purged user" "$EXE" Uid "$PURGED_UID"
proc_eq_c "…with no_new_privs" "$EXE" NoNewPrivs 1
proc_gt_c "…under its own seccomp filter, on top of the supervisor's" "$EXE" "$MAIN" Seccomp_filters
proc_eq_c "…with no capability" "$EXE" CapEff 0000000000000000
expect_eq "…in purged.service's cgroup" "$(X cat "/proc/$EXE/cgroup" 2>/dev/null | sed -n 's/^0:://p')" "/system.slice/purged.service"
expect_code 0 "…finishes (purgectl wait)" X purgectl --json wait "$ID"
expect_eq "…status finished" "$(X purgectl --json task "$ID" | jq -r .status)" finished
expect_eq "…30 objects deleted" "$(X purgectl --json task "$ID" | jq -r .progress.done)" 30
# A cancel signals the executor, a process of another user: CAP_KILL.
expect_code 0 "another noop purge --detach" X purgectl --json purge demo --yes --detach
ID=$(jf "$OUT" .id)
check "…its executor runs" wait_until 10 exe_pid
expect_code 0 "purgectl cancel it" X purgectl cancel "$ID"
check "…cancelled" wait_until 10 sh -c "nsenter -t $LEADER -a purgectl --json task $ID | jq -e '.status == \"cancelled\"' >/dev/null"
# gone_c PID: process PID of the container ends within 10 s (no PID: fails).
gone_c() {
	case $1 in '' | *[!0-9]*) echo "# no executor PID: '$1'" >&2; return 1 ;; esac
	wait_until 10 sh -c "! nsenter -t $LEADER -a kill -0 $1 2>/dev/null"
}
check "…its executor is gone" gone_c "$EXE"

# ---------------------------------------------------------------- CRDB on the local redis-server
expect_eq "the tree's redis-server runs (its own unit)" "$(X systemctl is-active redis-server.service)" active
expect_eq "three keys in the local redis-server (redis-cli mset)" "$(X redis-cli mset k1 a k2 b k3 c)" OK
expect_eq "…its DBSIZE is 3" "$(X redis-cli dbsize)" 3
expect_code 0 "CRDB purge of the local redis-server (loopback, allowed)" \
	X purgectl --json crdb purge "$LOCAL_GUID" --instances 1 --yes --wait
expect_eq "…the task counts 3 keys deleted" "$(jf "$OUT" '.counts["instance 1"]')" 3
expect_eq "…its DBSIZE is 0" "$(X redis-cli dbsize)" 0

# ---------------------------------------------------------------- REST on loopback
REST=$(X pgrep -x purged-rest | head -n 1)
proc_eq_c "purged-rest runs as the purged user" "${REST:-none}" Uid "$PURGED_UID"
expect_eq "purged listens on 127.0.0.1:8470 only" "$(X ss -Hltnp | awk '/purged/ { print $4 }' | sort -u | tr '\n' ' ')" "127.0.0.1:8470 "
expect_eq "GET /healthz: 200" "$(X curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8470/healthz)" 200
expect_eq "GET /v1/targets with the token: 200" \
	"$(X curl -s -o /dev/null -w '%{http_code}' -H @/root/auth-header http://127.0.0.1:8470/v1/targets)" 200
expect_eq "GET /v1/targets without it: 401" "$(X curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8470/v1/targets)" 401

# ---------------------------------------------------------------- reload
printf '[target broken]\ntype = nosuch\n' | X sh -c 'cat >/etc/purged/purged.conf.d/60-ci.conf'
expect_code 2 "purgectl reload with a broken file: rejected by purged" X purgectl reload
expect_contains "…it says the old configuration stays" "$ERR" "the old one stays"
expect_code 1 "systemctl reload with a broken file fails" X systemctl reload purged.service
expect_eq "…purged stays active" "$(X systemctl is-active purged.service)" active
expect_eq "…the same process" "$(cprop MainPID)" "$MAIN"
expect_eq "…with the old configuration" "$(X purgectl --json targets | jq -r '[.[].name] | sort | join(" ")')" \
	"$LOCAL_GUID $REMOTE_GUID demo"
check "…the journal names the error (err, from ExecReload's purged -t)" jmsg 3 "60-ci.conf:2: type = 'nosuch'"
check "…and says the reload failed" sh -c "nsenter -t $LEADER -a journalctl -u purged.service --no-pager | grep -q 'Reload failed for purged.service'"
printf '[target demo2]\ntype = noop\nobjects = 1\n' | X sh -c 'cat >/etc/purged/purged.conf.d/60-ci.conf'
expect_code 0 "systemctl reload with a good file" X systemctl reload purged.service
check "…applied (demo2 is a target)" wait_until 5 sh -c "nsenter -t $LEADER -a purgectl --json targets | jq -e 'any(.[]; .name == \"demo2\")' >/dev/null"
expect_eq "…the same process" "$(cprop MainPID)" "$MAIN"

# ---------------------------------------------------------------- IPAddressDeny
X ip addr add "$REMOTE_ADDR/32" dev lo
X redis-server --bind "$REMOTE_ADDR" --port "$REMOTE_PORT" --protected-mode no --daemonize yes --save '' \
	--appendonly no --logfile /var/log/redis-remote.log --pidfile /run/redis-remote.pid
check "a \"remote\" redis-server on $REMOTE_ADDR:$REMOTE_PORT (outside the unit)" \
	wait_until 5 sh -c "nsenter -t $LEADER -a redis-cli -h $REMOTE_ADDR -p $REMOTE_PORT mset r1 a r2 b 2>/dev/null | grep -q OK"
check "IPAccounting=yes: its cgroup BPF program is attached (it counted the unit's egress)" sh -c "[ \"\$(nsenter -t $LEADER -a systemctl show -p IPEgressBytes --value purged.service)\" -gt 0 ]"
expect_code 7 "CRDB purge of $REMOTE_ADDR: refused by IPAddressDeny=any" \
	X purgectl --json crdb purge "$REMOTE_GUID" --instances 1 --yes --wait
expect_contains "…the task says it cannot connect" "$OUT" "cannot connect"
expect_eq "…nothing deleted there" "$(X redis-cli -h "$REMOTE_ADDR" -p "$REMOTE_PORT" dbsize)" 2
# The drop-in the unit's comment and the README document.
X mkdir -p /etc/systemd/system/purged.service.d
printf '[Service]\nIPAddressAllow=%s\n' "$REMOTE_ADDR" | X sh -c 'cat >/etc/systemd/system/purged.service.d/50-backend.conf'
check "daemon-reload with the drop-in" X systemctl daemon-reload
expect_eq "…IPAddressAllow has it" "$(cprop IPAddressAllow | tr ' ' '\n' | sort | tr '\n' ' ')" "127.0.0.0/8 $REMOTE_ADDR/32 ::1/128 "
expect_code 0 "CRDB purge of $REMOTE_ADDR after the drop-in" \
	X purgectl --json crdb purge "$REMOTE_GUID" --instances 1 --yes --wait
expect_eq "…its DBSIZE is 0" "$(X redis-cli -h "$REMOTE_ADDR" -p "$REMOTE_PORT" dbsize)" 0
X sh -c 'kill "$(cat /run/redis-remote.pid)"'

# ---------------------------------------------------------------- Landlock under the unit's filter
# The executor's Landlock needs landlock_* through systemd's SystemCallFilter;
# were they refused, it would go on without Landlock (a kernel without it).
# The noop probe (only under purged --test-probes, set here by a drop-in that
# changes nothing else), given a TCP port as a network backend is, opens a
# world-readable file once confined: DAC, ProtectSystem= and the executor's
# seccomp filter (openat allowed for network backends; its refusals are EPERM)
# all let it, so only Landlock answers EACCES. Same for a TCP connect to
# purged-rest's loopback port, which IPAddressAllow=localhost lets through.
check "the purged user may read /etc/purged/purged.conf outside the sandbox (the control)" \
	X setpriv --reuid=purged --regid=purged --clear-groups cat /etc/purged/purged.conf >/dev/null
printf '[Service]\nExecStart=\nExecStart=/usr/sbin/purged --test-probes -c /etc/purged/purged.conf\n' |
	X sh -c 'cat >/etc/systemd/system/purged.service.d/90-ci-probes.conf'
printf '[target probe]\ntype = noop\nobjects = 1\nprobe = yes\nprobe_read = /etc/purged/purged.conf\nprobe_port = 8470\nprobe_allowed_port = 6379\n' |
	X sh -c 'cat >/etc/purged/purged.conf.d/70-ci.conf'
X systemctl daemon-reload
expect_code 0 "restart with --test-probes (a drop-in)" X systemctl restart purged.service
expect_code 0 "the probe task runs" X purgectl --json purge probe --yes --wait
expect_eq "…its executor could not open purged.conf: EACCES, Landlock (13)" "$(jf "$OUT" '.counts["probe.read0"]')" 13
expect_eq "…nor connect to 127.0.0.1:8470: EACCES, Landlock's TCP rules (13)" "$(jf "$OUT" '.counts["probe.connect_other_port"]')" 13
expect_eq "…but to its own port 6379 (the control: 0)" "$(jf "$OUT" '.counts["probe.connect_allowed_port"]')" 0
X rm /etc/systemd/system/purged.service.d/90-ci-probes.conf /etc/purged/purged.conf.d/70-ci.conf
X systemctl daemon-reload
expect_code 0 "restart with the unit as shipped again" X systemctl restart purged.service

# ---------------------------------------------------------------- stop and the journal
expect_code 0 "systemctl stop purged" X systemctl stop purged.service
expect_eq "…inactive" "$(X systemctl is-active purged.service)" inactive
expect_eq "…a clean exit (Result)" "$(cprop Result)" success
expect_eq "…exit status 0" "$(cprop ExecMainStatus)" 0
expect_eq "…no process of purged left" "$(X pgrep -f '^/usr/(sbin/purged|libexec/purged/)' | wc -l)" 0
check "journal: ExecStartPre's check at info" jmsg 6 "configuration OK"
check "journal: ready at info" jmsg 6 "purged 0.1.0 ready: "
check "journal: the stop at info" jmsg 6 "received TERM: no new requests"
check "journal: the rejected reload (purgectl reload) at warning" jmsg 4 "rejected; the running configuration stays"
# no_prefix: the journal of purged.service has purged's own messages, none starting with <N>.
no_prefix() {
	local j
	j=$(X journalctl -u purged.service -o cat --no-pager) || { echo "# journalctl failed" >&2; return 1; }
	contains "$j" "ready: " || { echo "# purged's messages are not in the journal ($(printf '%s\n' "$j" | grep -c .) lines)" >&2; return 1; }
	printf '%s\n' "$j" | no_match -E '^<[0-7]>'
}
check "journal: no priority prefix left in a message" no_prefix
phase "the checks in the container"

# ---------------------------------------------------------------- the .rpm's unit
if [ -n "$RPM_PID" ]; then
	wait "$RPM_PID"
	RPM_STATUS=$?
	[ "$RPM_STATUS" = 0 ] || tail -n 30 "$T/rpm-build.log"
	expect_eq "rpmbuild built the .rpm (exit status, built while the .deb did)" "$RPM_STATUS" 0
	RPM=$(ls "$T"/rpm/purged-*.x86_64.rpm 2>/dev/null | head -n 1)
	(cd "$T" && rpm2cpio "$RPM" | cpio -i --quiet --to-stdout ./usr/lib/systemd/system/purged.service >"$T/rpm.service")
	check "the .rpm's unit is byte for byte the .deb's: the checks above hold for it" cmp "$T/deb.service" "$T/rpm.service"
	phase "the .rpm's unit"
else
	skip_part "the .rpm's unit" "rpmbuild is not installed (scripts/deps.sh installs rpm)"
fi
echo "# time: total $((SECONDS - T_START)) s"
finish
