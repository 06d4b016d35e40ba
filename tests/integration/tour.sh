#!/bin/bash
# The README's 30-second tour, run as written against scripts/demo.sh's
# configuration: every "$ " line of its first block after the tour's
# heading, with the example task id replaced by the one the tour's own
# detached purge got, and the demo's port for 8470. The interactive purge is
# typed into a terminal (script(1)). Each line must exit 0, and the lines
# whose output the README shows must print it.
. "$(dirname "$0")/lib.sh"

SRC=${PURGED_SOURCE_DIR:?}
PORT=$(free_port)
export DEMO_DIR=$T/demo DEMO_PORT=$PORT PURGED_BUILD_DIR=$T/bin
"$SRC/scripts/demo.sh" --no-build >"$T/demo.out" 2>"$LOG" &
PURGED_PID=$!
SOCK=$T/demo/control.sock
check "the demo starts" wait_until 10 sh -c "[ -S '$SOCK' ] && '$T/bin/purgectl' -s '$SOCK' status >/dev/null 2>&1"
check "the demo prints how to reach it" grep -q "PURGED_SOCKET=$T/demo/control.sock" "$T/demo.out"

# The tour's commands, in order (the first fenced block with "$ " lines after the heading).
awk '/^## A 30-second tour/ { on = 1; next } /^## / { on = 0 } on && /^```/ { inblock = !inblock; if (!inblock && n) exit; next }
	on && inblock && /^\$ / { n++; sub(/^\$ /, ""); sub(/ +# .*$/, ""); print }' "$SRC/README.md" >"$T/tour.txt"
check "the tour has at least 9 commands" test "$(wc -l <"$T/tour.txt")" -ge 9
EXAMPLE_ID=$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$T/tour.txt" | head -n 1)

export PATH="$T/bin:$PATH" PURGED_SOCKET=$SOCK
TOKEN=$(cat "$T/demo/token")
export TOKEN
ID=
while IFS= read -r line; do
	line=${line//127.0.0.1:8470/127.0.0.1:$PORT}
	[ -n "$ID" ] && [ -n "$EXAMPLE_ID" ] && line=${line//$EXAMPLE_ID/$ID}
	case $line in
	"purgectl purge demo")
		# Typed at a terminal, as a person would.
		printf 'demo\n' | script -qec "$line" /dev/null >"$T/line.out" 2>&1
		st=$?
		;;
	*)
		bash -c "$line" >"$T/line.out" 2>&1 </dev/null
		st=$?
		;;
	esac
	if [ "$st" = 0 ]; then ok "tour: $line"; else not_ok "tour: $line (exit $st): $(head -c 300 "$T/line.out")"; fi
	case $line in
	"purgectl purge demo --yes --detach")
		ID=$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$T/line.out" | head -n 1)
		check "…it names its task" test -n "$ID"
		;;
	"purgectl status") check "…prints the version line" grep -q '^purged .* (protocol [0-9]*), up' "$T/line.out" ;;
	"purgectl plan demo") check "…lists 100 objects" grep -qE '^objects +100$' "$T/line.out" ;;
	curl*) check "…Lucid Chain's answer" grep -qF '{"message":"Database from demo successfully purged"}' "$T/line.out" ;;
	esac
done <"$T/tour.txt"
check "the interactive purge finished" sh -c "purgectl --json tasks | jq -e '[.[] | select(.operation == \"purge\" and .status == \"finished\")] | length >= 2' >/dev/null"
check "the detached purge was cancelled by the tour" sh -c "[ \"\$(purgectl --json task '$ID' | jq -r .status)\" = cancelled ]"
stop_purged
expect_eq "the demo stops cleanly" "$STOP_STATUS" 0
finish
