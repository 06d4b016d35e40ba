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
lintian --no-tag-display-limit "$DEB" >"$T/lintian.txt" 2>&1
cat "$T/lintian.txt"
check "lintian: no errors" sh -c "! grep -q '^E:' '$T/lintian.txt'"
UNIT=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./lib/systemd/system/purged.service)
printf '%s\n' "$UNIT" >"$T/purged.service"
systemd-analyze security --offline=yes "$T/purged.service" >"$T/exposure.txt" 2>&1
cat "$T/exposure.txt"
EXPOSURE=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$T/exposure.txt")
check "unit exposure $EXPOSURE is OK (<= 2.0)" awk -v e="$EXPOSURE" 'BEGIN { exit !(e != "" && e <= 2.0) }'

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB" >"$T/install.log" 2>&1
check "apt installs it (Depends resolve)" dpkg-query -W -f='${Status}' purged
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
check "…but not started" sh -c "! pgrep -f '^/usr/sbin/purged' >/dev/null"
check "the default configuration is valid" /usr/sbin/purged -t -c /etc/purged/purged.conf
check "man purgectl documents the exit codes" sh -c "MANPAGER=cat man -l /usr/share/man/man8/purgectl.8.gz 2>/dev/null | grep -q 'confirmation not given'"

cat >/etc/purged/purged.conf.d/50-ci.conf <<'EOF2'
[target demo]
type = noop
objects = 10
step_ms = 1
EOF2
EXEC=$(sed -n 's/^ExecStart=//p' "$T/purged.service")
$EXEC >"$LOG" 2>&1 &
PURGED_PID=$!
check "the installed daemon starts" wait_until 10 sh -c "/usr/bin/purgectl status >/dev/null 2>&1"
expect_code 0 "purgectl status" /usr/bin/purgectl status
expect_code 0 "purge the drop-in's noop target" /usr/bin/purgectl --json purge demo --yes --wait
expect_eq "…finished" "$(jf "$OUT" .status)" "finished"
expect_eq "…as the purged user's executor" "$(getent passwd purged >/dev/null && echo yes)" "yes"
expect_eq "socket group is purge-admin" "$(stat -c %G /run/purged/control.sock)" "purge-admin"
stop_purged TERM
expect_eq "SIGTERM: exit 0" "$STOP_STATUS" 0

DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq purged >"$T/remove.log" 2>&1
check "removed: programs gone" sh -c "! test -e /usr/sbin/purged && ! test -e /usr/libexec/purged"
check "removed: the conffile stays until purge" test -e /etc/purged/purged.conf
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq purged >>"$T/remove.log" 2>&1
check "purged: no package left" sh -c "! dpkg-query -W purged 2>/dev/null | grep -q ."
for d in /etc/purged /var/lib/purged /run/purged /lib/systemd/system/purged.service /usr/share/doc/purged; do
	check "purged: $d is gone" test ! -e "$d"
done
check "the purged user stays (policy: system ids are not reused)" getent passwd purged
finish
