#!/bin/bash
# Build the .rpm on this (Debian) machine with rpmbuild. BuildRequires name
# Fedora packages that dpkg does not know, so --nodeps: the Debian build
# dependencies (scripts/deps.sh) provide the same libraries. Output: dist/ (or $1).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$src/dist}")
version=$(sed -n 's/^Version: *//p' "$src/packaging/rpm/purged.spec")
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT

mkdir -p "$out" "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
tar -C "$src" --exclude='./build*' --exclude=./dist --exclude=./.git --exclude=./demo-run \
	--exclude=./tools/openapi/node_modules --transform "s|^\./|purged-$version/|" \
	-czf "$top/SOURCES/purged-$version.tar.gz" .
cp "$src/packaging/rpm/purged.spec" "$top/SPECS/"
# Debian's rpm lacks Fedora's path macros for systemd files: define them.
rpmbuild -bb --nodeps --define "_topdir $top" \
	--define "_unitdir /usr/lib/systemd/system" \
	--define "_sysusersdir /usr/lib/sysusers.d" \
	--define "_tmpfilesdir /usr/lib/tmpfiles.d" \
	"$top/SPECS/purged.spec" >"$top/build.log" 2>&1 || { tail -n 40 "$top/build.log"; exit 1; }
find "$top/RPMS" -name '*.rpm' -exec mv {} "$out/" \;
ls "$out"/*.rpm
