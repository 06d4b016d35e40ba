#!/bin/bash
# The .deb as an administrator gets it: build, lintian, install with apt,
# start the installed daemon by the unit's ExecStart line (no systemd as PID 1
# here), purgectl status and a purge of a noop target from a drop-in, then
# remove and purge the package and check what is left. Needs root.
. "$(dirname "$0")/../integration/lib.sh"
[ "$IS_ROOT" = 1 ] || { echo "1..0 # SKIP needs root (installs the package)"; exit 77; }
SRC=${PURGED_SOURCE_DIR:?}

check "dpkg-buildpackage builds the package" "$SRC/packaging/build-deb.sh" "$T/dist"
DEB=$(ls "$T"/dist/purged_*_*.deb | head -n 1)
lintian --no-tag-display-limit --fail-on error "$DEB" >"$T/lintian.txt" 2>&1
LINTIAN_STATUS=$?
cat "$T/lintian.txt"
# 0: it ran and found no error; 1: errors; 2 or 127: lintian itself failed, which proves nothing.
expect_eq "lintian ran and found no errors (exit status)" "$LINTIAN_STATUS" 0
check "…and printed no error tag" no_match '^E:' "$T/lintian.txt"
UNIT=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./lib/systemd/system/purged.service)
printf '%s\n' "$UNIT" >"$T/purged.service"
systemd-analyze security --offline=yes "$T/purged.service" >"$T/exposure.txt" 2>&1
cat "$T/exposure.txt"
EXPOSURE=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$T/exposure.txt")
check "unit exposure $EXPOSURE is OK (<= 2.0)" awk -v e="$EXPOSURE" 'BEGIN { exit !(e != "" && e <= 2.0) }'

expect_code 0 "apt installs it (Depends resolve)" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB"
[ -z "$OUT$ERR" ] || printf '%s\n%s\n' "$OUT" "$ERR" | tail -n 20 | sed 's/^/#   /'
expect_eq "…and dpkg says it is installed" "$(dpkg-query -W -f='${Status}' purged 2>&1)" "install ok installed"
for f in /usr/sbin/purged /usr/bin/purgectl /usr/libexec/purged/purged-executor /usr/libexec/purged/purged-executor-http /usr/libexec/purged/purged-rest \
	/lib/systemd/system/purged.service /usr/lib/sysusers.d/purged.conf /usr/lib/tmpfiles.d/purged.conf \
	/etc/purged/purged.conf /usr/share/man/man8/purged.8.gz /usr/share/man/man8/purgectl.8.gz \
	/usr/share/man/man5/purged.conf.5.gz /usr/share/bash-completion/completions/purgectl; do
	check "installed: $f" test -e "$f"
done
check "the purged user exists" getent passwd purged
check "the purge-admin group exists" getent group purge-admin
expect_eq "secrets directory is 0700" "$(stat -c %a /etc/purged/secrets)" "700"
check "the conffile is registered" sh -c "dpkg-query -W -f='\${Conffiles}' purged | grep -q /etc/purged/purged.conf"
check "the service is enabled" test -L /etc/systemd/system/multi-user.target.wants/purged.service
# Only in our PID namespace: a container booted on this machine (systemd.sh) runs its own.
# pgrep's exit 1 is "none"; 2 or 3 (it could not look) must not read as "not started".
not_started() { pgrep --ns $$ --nslist pid -f "^/usr/sbin/purged" >/dev/null; [ $? = 1 ]; }
check "…but not started" not_started
check "the default configuration is valid" /usr/sbin/purged -t -c /etc/purged/purged.conf
check "man purgectl documents the exit codes" sh -c "MANPAGER=cat man -l /usr/share/man/man8/purgectl.8.gz 2>/dev/null | grep -q 'confirmation not given'"

cat >/etc/purged/purged.conf.d/50-ci.conf <<'EOF2'
[target demo]
type = noop
objects = 10
step_ms = 1

[target slow]
type = noop
objects = 500
step_ms = 10
EOF2
EXEC=$(sed -n 's/^ExecStart=//p' "$T/purged.service")
$EXEC >"$LOG" 2>&1 &
PURGED_PID=$!
check "the installed daemon starts" wait_until 10 sh -c "/usr/bin/purgectl status >/dev/null 2>&1"
expect_code 0 "purgectl status" /usr/bin/purgectl status
expect_code 0 "purge the drop-in's noop target" /usr/bin/purgectl --json purge demo --yes --wait
expect_eq "…finished" "$(jf "$OUT" .status)" "finished"
expect_code 0 "a longer purge, detached" /usr/bin/purgectl --json purge slow --yes --detach
SLOW_ID=$(jf "$OUT" .id)
check "…runs" wait_until 5 eval '[ "$(/usr/bin/purgectl --json task "$SLOW_ID" | jq -r .status)" = started ]'
EPID=$(pgrep -f "^/usr/libexec/purged/purged-executor $SLOW_ID" | head -n 1)
proc_eq "…in an executor running as the purged user" "$EPID" "$(id -u purged)" proc_field "$EPID" status Uid
/usr/bin/purgectl cancel "$SLOW_ID" >/dev/null
expect_eq "socket group is purge-admin" "$(stat -c %G /run/purged/control.sock)" "purge-admin"
stop_purged TERM
expect_eq "SIGTERM: exit 0" "$STOP_STATUS" 0

expect_code 0 "apt-get remove" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq purged
check "removed: programs gone" sh -c "! test -e /usr/sbin/purged && ! test -e /usr/libexec/purged"
check "removed: the conffile stays until purge" test -e /etc/purged/purged.conf
expect_code 0 "apt-get purge" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq purged
expect_one_of "purged: no package left" "$(dpkg-query -W -f='${Status}' purged 2>/dev/null || echo none)" none "unknown ok not-installed"
for d in /etc/purged /var/lib/purged /run/purged /lib/systemd/system/purged.service /usr/share/doc/purged; do
	check "purged: $d is gone" test ! -e "$d"
done
check "the purged user stays (policy: system ids are not reused)" getent passwd purged
finish
