#!/bin/bash
# The .rpm, built here with rpmbuild: its file list, its scriptlets, rpmlint.
. "$(dirname "$0")/../integration/lib.sh"
SRC=${PURGED_SOURCE_DIR:?}
command -v rpmbuild >/dev/null || { echo "1..0 # SKIP rpmbuild not installed"; exit 77; }

check "rpmbuild builds the package" "$SRC/packaging/build-rpm.sh" "$T/dist"
RPM=$(ls "$T"/dist/purged-*.x86_64.rpm 2>/dev/null | head -n 1)
FILES=$(rpm -qlp "$RPM" 2>/dev/null)
for f in /usr/sbin/purged /usr/bin/purgectl /usr/libexec/purged/purged-executor /usr/libexec/purged/purged-executor-http /usr/libexec/purged/purged-rest \
	/usr/lib/systemd/system/purged.service /usr/lib/sysusers.d/purged.conf /usr/lib/tmpfiles.d/purged.conf \
	/etc/purged/purged.conf /etc/purged/secrets /usr/share/man/man8/purged.8 /usr/share/man/man8/purgectl.8 \
	/usr/share/man/man5/purged.conf.5 /usr/share/bash-completion/completions/purgectl; do
	check "rpm lists $f" sh -c "printf '%s\n' \"\$1\" | grep -qx '$f'" _ "$FILES"
done
CONF=$(rpm -qp --configfiles "$RPM" 2>/dev/null)
expect_contains "purged.conf is a config file" "$CONF" "/etc/purged/purged.conf"
expect_contains "…kept on upgrade (noreplace)" "$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" 2>/dev/null | grep '^/etc/purged/purged.conf ')" "cn"
expect_eq "secrets directory 0700" "$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$RPM" 2>/dev/null | awk '$2 == "/etc/purged/secrets" {print $1}')" "drwx------"
SCRIPTS=$(rpm -qp --scripts "$RPM" 2>/dev/null)
expect_contains "%pre creates the purged user" "$SCRIPTS" "useradd -r -U"
expect_contains "%pre creates the purge-admin group" "$SCRIPTS" "groupadd -r purge-admin"
expect_contains "%post enables without starting (preset)" "$SCRIPTS" "systemctl --no-reload preset purged.service"
expect_contains "%preun stops and disables on erase" "$SCRIPTS" "disable --now purged.service"
if command -v rpmlint >/dev/null; then
	rpmlint -r "$SRC/packaging/rpm/purged.rpmlintrc" "$RPM" >"$T/rpmlint.txt" 2>&1
	RPMLINT_STATUS=$?
	tail -n 1 "$T/rpmlint.txt"
	expect_eq "rpmlint ran and passed (exit status)" "$RPMLINT_STATUS" 0
	check "rpmlint: no errors" grep -qE "[0-9]+ packages and [0-9]+ specfiles checked; 0 errors" "$T/rpmlint.txt"
else
	skip_part "rpmlint" "not installed (scripts/deps.sh installs it)"
fi
finish
