#!/bin/bash
# Install what is needed, build, and run every test: unit and integration
# tests on a -Werror build, the same under ASan+UBSan, then each libFuzzer
# target for a bounded time. Ends with one line: "N passed, N failed".
#
#   FUZZ_SECONDS   seconds per fuzz target (default 60; 0 skips fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
passed=0
failed=0
failures=()

step() { printf '\n==> %s\n' "$*"; }

# count_meson BUILDDIR: add the meson test results to the totals.
count_meson() {
	local log=$1/meson-logs/testlog.json p f
	[ -f "$log" ] || { failed=$((failed + 1)); failures+=("$1: no test log"); return; }
	p=$(jq -s '[.[] | select(.result == "OK" or .result == "SKIP")] | length' "$log")
	f=$(jq -s '[.[] | select(.result != "OK" and .result != "SKIP")] | length' "$log")
	passed=$((passed + p))
	failed=$((failed + f))
	while read -r name; do failures+=("$1: $name"); done < <(jq -r 'select(.result != "OK" and .result != "SKIP") | .name' "$log")
}

build_and_test() {
	local dir=$1
	shift
	step "build $dir ($*)"
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || { failed=$((failed + 1)); failures+=("$dir: meson setup"); return; }
	fi
	if ! ninja -C "$dir"; then
		failed=$((failed + 1))
		failures+=("$dir: build")
		return
	fi
	step "test $dir"
	meson test -C "$dir" --print-errorlogs
	count_meson "$dir"
}

step "dependencies"
scripts/deps.sh || exit 1

build_and_test build -Dwerror=true
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	build_and_test build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

step "load (wrk, ${LOAD_SECONDS:-30} s)"
PURGED_BUILD_DIR=build PURGED_SOURCE_DIR=$PWD bash tests/load/load.sh | grep -vE '^ +[0-9.]+%'
case ${PIPESTATUS[0]} in
0) passed=$((passed + 1)) ;;
77) echo "load skipped" ;;
*) failed=$((failed + 1)); failures+=("load") ;;
esac

step "packages (.deb and .rpm)"
# Installs and removes the .deb on this machine: root only.
for t in deb rpm; do
	PURGED_BUILD_DIR=build PURGED_SOURCE_DIR=$PWD bash tests/packaging/$t.sh
	case $? in
	0) passed=$((passed + 1)) ;;
	77) echo "packaging/$t skipped" ;;
	*) failed=$((failed + 1)); failures+=("packaging: $t") ;;
	esac
done

step "OpenAPI document"
# Every route of purged-rest's table must be documented, and the document must lint clean.
missing_routes=$(grep -oE '\{ HTTP_[A-Z]+, "[^"]+"' daemon/rest/routes.c | sed -E 's/.*"(.*)"/\1/' |
	sed -E 's#/\*#/{x}#g' | while read -r route; do
		re=$(printf '%s' "$route" | sed -E 's#\{x\}#\\{[a-z_]+\\}#g')
		grep -qE "^  ${re%/}:" docs/openapi.yaml || echo "$route"
	done)
if [ -n "$missing_routes" ]; then
	echo "routes missing from docs/openapi.yaml: $missing_routes"
	failed=$((failed + 1)); failures+=("openapi: undocumented routes")
elif (cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error >/dev/null) &&
	tools/openapi/node_modules/.bin/spectral lint --fail-severity=warn docs/openapi.yaml; then
	passed=$((passed + 1))
else
	failed=$((failed + 1)); failures+=("openapi: spectral lint")
fi

if [ "$FUZZ_SECONDS" -gt 0 ]; then
	if [ ! -f build-fuzz/build.ninja ]; then
		CC=clang meson setup build-fuzz -Dfuzzing=true -Dtests=false -Db_sanitize=address,undefined \
			-Db_lundef=false >/dev/null
	fi
	if ninja -C build-fuzz; then
		for target in proto errors config http tokens backends; do
			step "fuzz $target for ${FUZZ_SECONDS}s"
			work=$(mktemp -d)
			cp tests/fuzz/corpus/$target/* "$work/"
			if (cd "$work" && "$OLDPWD/build-fuzz/tests/fuzz/fuzz_$target" -max_total_time="$FUZZ_SECONDS" \
				-max_len=8192 -timeout=10 -print_final_stats=1 . 2>"$work/log"); then
				tail -n 3 "$work/log"
				passed=$((passed + 1))
				rm -rf "$work"
			else
				tail -n 40 "$work/log"
				failed=$((failed + 1))
				failures+=("fuzz_$target: crash, leak or timeout (input kept in $work)")
			fi
		done
	else
		failed=$((failed + 1))
		failures+=("build-fuzz: build")
	fi
fi

step "benchmarks (quick: they must still run; figures are not checked)"
if BENCH_QUICK=1 timeout 600 bash bench/run.sh build; then
	passed=$((passed + 1))
else
	failed=$((failed + 1)); failures+=("bench/run.sh")
fi

step "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
