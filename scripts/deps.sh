#!/bin/bash
# Install the Debian 12 packages purged needs to build, run and test.
# Idempotent: does nothing when everything is present. Needs root to install.
set -euo pipefail

PACKAGES=(
	# build
	meson ninja-build pkg-config gcc clang
	libuv1-dev libmsgpack-dev libjansson-dev libinih-dev libseccomp-dev
	libsystemd-dev zlib1g-dev nettle-dev node-llhttp libhiredis-dev libcurl4-openssl-dev libzstd-dev
	# packaging and its tests
	debhelper dpkg-dev fakeroot lintian rpm rpmlint systemd
	debootstrap systemd-container   # tests/packaging/systemd.sh: a Debian tree booted with systemd-nspawn
	# tests
	scdoc check jq procps util-linux bsdutils python3 redis-server curl sqlite3 wrk nginx-light hyperfine zstd
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The OpenAPI linter (spectral) runs on Node.js from npm.
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
	{ echo "deps: apt-get install failed for: ${missing[*]}" >&2; exit 1; }
