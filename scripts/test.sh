#!/bin/bash
# Install what is needed, build, and run every test: unit and integration
# tests on a -Werror build, the same under ASan+UBSan, the load test, the
# packages, the OpenAPI document, each libFuzzer target for a bounded time
# and the benchmarks as a smoke test. Ends with one line:
# "N passed, N failed, N skipped", after the list of what failed and of what
# was skipped and why. A step passes only when it exited 0; a meson run only
# when `meson test` exited 0 with a test log written by this very run.
# Skips are counted: meson SKIP (exit 77), a step's exit 77, and the
# "SKIP: WHAT: WHY" lines a passing scenario prints for a part it could not run.
#
#   FUZZ_SECONDS   seconds per fuzz target (default 60; 0 skips fuzzing, and says so)
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
passed=0
failed=0
skipped=0
failures=()
skips=()

step() { printf '\n==> %s\n' "$*"; }
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); failures+=("$*"); }
skip() { skipped=$((skipped + 1)); skips+=("$*"); }
# skip_lines STEP FILE: each "SKIP: WHAT: WHY" line of a step's output is a skip.
skip_lines() {
	local line
	while IFS= read -r line; do skip "$1: ${line#SKIP: }"; done < <(grep -aE '^SKIP: ' "$2")
}
# skip_reason FILE: the reason a step gave with its exit 77 ("1..0 # SKIP why").
skip_reason() { grep -aoE -m1 '# SKIP .*' "$1" | sed 's/^# SKIP //' || true; }
# run_step NAME COMMAND...: exit 0 passes, 77 is a skip, anything else fails; SKIP lines are counted.
run_step() {
	local name=$1 out st
	shift
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	st=${PIPESTATUS[0]}
	case $st in
	0) pass; skip_lines "$name" "$out" ;;
	77) skip "$name: $(skip_reason "$out")" ;;
	*) fail "$name (exit $st)" ;;
	esac
	rm -f "$out"
}

# count_meson BUILDDIR MESON_STATUS: add the results of the meson run that just ended.
count_meson() {
	local dir=$1 st=$2 log=$1/meson-logs/testlog.json p f s name why
	if [ ! -f "$log" ] || [ ! "$log" -nt "$dir/.test-started" ]; then
		fail "$dir: meson test wrote no test log of its own (exit $st)"
		return
	fi
	p=$(jq -s '[.[] | select(.result == "OK")] | length' "$log")
	f=$(jq -s '[.[] | select(.result != "OK" and .result != "SKIP")] | length' "$log")
	s=$(jq -s '[.[] | select(.result == "SKIP")] | length' "$log")
	if [ "$((p + f + s))" = 0 ]; then
		fail "$dir: the test log lists no test"
		return
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	while read -r name; do failures+=("$dir: $name"); done < <(jq -r 'select(.result != "OK" and .result != "SKIP") | .name' "$log")
	while IFS=$'\t' read -r name why; do skip "$dir: $name: $why"; done < <(jq -r 'select(.result == "SKIP") |
		[.name, ((.stdout // "") | capture("# SKIP (?<w>[^\n]*)").w // "no reason given")] | @tsv' "$log")
	# Parts of passing scenarios that could not run.
	while IFS=$'\t' read -r name why; do skip "$dir: $name: $why"; done < <(jq -r 'select(.result == "OK") |
		.name as $n | (.stdout // "") | split("\n")[] | select(startswith("SKIP: ")) | [$n, .[6:]] | @tsv' "$log")
	if [ "$st" != 0 ] && [ "$f" = 0 ]; then
		fail "$dir: meson test exited $st with no failed test in its log"
	fi
}

build_and_test() {
	local dir=$1 st
	shift
	step "build $dir ($*)"
	# A reused directory is reconfigured: its options (-Werror, sanitizers) are this run's, not a past one's.
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || { fail "$dir: meson setup"; return; }
	else
		meson setup --reconfigure "$dir" "$@" >/dev/null || { fail "$dir: meson setup --reconfigure"; return; }
	fi
	if ! ninja -C "$dir"; then
		fail "$dir: build"
		return
	fi
	step "test $dir"
	# A test log left by an earlier run must not be counted.
	rm -f "$dir/meson-logs/testlog.json"
	touch "$dir/.test-started"
	sleep 1 # the log must be strictly newer than the marker, whatever the file system's time granularity
	meson test -C "$dir" --print-errorlogs
	st=$?
	count_meson "$dir" "$st"
}

step "dependencies"
scripts/deps.sh || exit 1

build_and_test build -Dwerror=true
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	build_and_test build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

step "load (wrk, ${LOAD_SECONDS:-30} s)"
load() { PURGED_BUILD_DIR=build PURGED_SOURCE_DIR=$PWD bash tests/load/load.sh | grep -vE '^ +[0-9.]+%'; return "${PIPESTATUS[0]}"; }
run_step load load

step "packages (.deb and .rpm; the .deb's unit under systemd as PID 1)"
# Installs and removes the .deb on this machine: root only. systemd.sh boots a
# Debian 12 tree (debootstrap, cached in /var/cache/purged-ci) with systemd-nspawn.
for t in deb rpm systemd; do
	run_step "packaging/$t" env PURGED_BUILD_DIR=build PURGED_SOURCE_DIR="$PWD" bash "tests/packaging/$t.sh"
done

step "OpenAPI document"
# Every route of purged-rest's table must be documented, and the document must lint clean.
n_routes=$(grep -cE '\{ HTTP_[A-Z]+, "[^"]+"' daemon/rest/routes.c)
missing_routes=$(grep -oE '\{ HTTP_[A-Z]+, "[^"]+"' daemon/rest/routes.c | sed -E 's/.*"(.*)"/\1/' |
	sed -E 's#/\*#/{x}#g' | while read -r route; do
		re=$(printf '%s' "$route" | sed -E 's#\{x\}#\\{[a-z_]+\\}#g')
		grep -qE "^  ${re%/}:" docs/openapi.yaml || echo "$route"
	done)
if [ "${n_routes:-0}" -lt 10 ]; then
	# The route table moved or changed shape: checking nothing must not read as "all documented".
	echo "only ${n_routes:-0} routes found in daemon/rest/routes.c: update this check"
	fail "openapi: the route table was not found"
elif [ -n "$missing_routes" ]; then
	echo "routes missing from docs/openapi.yaml: $missing_routes"
	fail "openapi: undocumented routes"
elif (cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error >/dev/null) &&
	tools/openapi/node_modules/.bin/spectral lint --fail-severity=warn docs/openapi.yaml; then
	pass
else
	fail "openapi: spectral lint"
fi

FUZZ_TARGETS="proto errors config http tokens backends executor"
if [ "$FUZZ_SECONDS" -gt 0 ]; then
	if [ ! -f build-fuzz/build.ninja ]; then
		CC=clang meson setup build-fuzz -Dfuzzing=true -Dtests=false -Db_sanitize=address,undefined \
			-Db_lundef=false >/dev/null
	fi
	if ninja -C build-fuzz; then
		for target in $FUZZ_TARGETS; do
			step "fuzz $target for ${FUZZ_SECONDS}s"
			work=$(mktemp -d)
			cp tests/fuzz/corpus/$target/* "$work/"
			# Undefined behaviour stops the run like a crash (UBSan only logs it by default).
			if (cd "$work" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
				"$OLDPWD/build-fuzz/tests/fuzz/fuzz_$target" -max_total_time="$FUZZ_SECONDS" \
				-max_len=8192 -timeout=10 -print_final_stats=1 . 2>"$work/log"); then
				tail -n 3 "$work/log"
				pass
				rm -rf "$work"
			else
				tail -n 40 "$work/log"
				fail "fuzz_$target: crash, leak, timeout or broken property (input kept in $work)"
			fi
		done
	else
		fail "build-fuzz: build"
	fi
else
	for target in $FUZZ_TARGETS; do skip "fuzz_$target: FUZZ_SECONDS=0"; done
fi

step "benchmarks (quick: they must run and print every figure; figures are not checked)"
run_step bench env BENCH_QUICK=1 timeout 600 bash bench/run.sh build

step "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
for s in "${skips[@]}"; do echo "SKIPPED: $s"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
