#!/bin/bash
# The bad-input tables (tests/integration/badinput.py): 70 malformed HTTP
# requests and 40 malformed control frames, each with its documented answer
# and connection fate, the daemon answering the next good request each time.
. "$(dirname "$0")/lib.sh"
mint_token ci
PORT=$(free_port)
write_config <<EOF2
$(rest_conf)

[target demo]
type = noop
objects = 1
step_ms = 0

[crdb 1d7741cc-1110-4e2f-bc6c-935292783d24]
instance.1 = redis://127.0.0.1:1
EOF2
start_purged || { finish; exit 1; }
check "purged-rest answers" wait_until 10 curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null
python3 "$(dirname "$0")/badinput.py" "$PORT" "$TOKEN" "$SOCK" | tee "$T/table.txt"
check "every row of the bad-input table holds" test "${PIPESTATUS[0]}" = 0
check "at least 50 HTTP cases and 30 control frames" sh -c "grep -qE '^([5-9][0-9]|[1-9][0-9]{2}) HTTP requests, ([3-9][0-9]|[1-9][0-9]{2}) control frames' '$T/table.txt'"
check "purged-rest was never restarted" test "$(grep -c 'serving http' "$LOG")" = 1
check "the bad frames are logged" grep -q "bad request from root" "$LOG"
stop_purged TERM
expect_eq "and purged stops cleanly" "$STOP_STATUS" 0
finish
