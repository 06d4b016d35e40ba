#!/bin/bash
# Build the .deb with dpkg-buildpackage from a clean copy of the tree, with
# packaging/debian placed where dpkg expects it. Output: dist/ (or $1).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$src/dist}")
version=$(sed -n "s/^\tversion : '\(.*\)',/\1/p" "$src/meson.build")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$out" "$work/purged-$version"
tar -C "$src" --exclude='./build*' --exclude=./dist --exclude=./.git --exclude=./demo-run \
	--exclude=./tools/openapi/node_modules -cf - . | tar -C "$work/purged-$version" -xf -
cp -r "$src/packaging/debian" "$work/purged-$version/debian"
(cd "$work/purged-$version" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
	tail -n 40 "$work/build.log"
	exit 1
}
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out/"
ls "$out"/*.deb
