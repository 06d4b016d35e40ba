#!/bin/bash
# Configuration: -t checks, reload through purgectl and SIGHUP, broken
# configurations rejected with FILE:LINE while the old one stays.
. "$(dirname "$0")/lib.sh"

write_config <<'EOF2'
[target demo]
type = noop
objects = 2
step_ms = 1
EOF2
expect_code 0 "-t accepts a good file" "$T/bin/purged" -c "$CONF" -t
expect_contains "-t says OK" "$OUT" "configuration OK"
cp "$CONF" "$T/good.conf"
printf '[target broken]\nobjects = x\n[daemon]\nmax_queue = -3\n' >>"$CONF"
expect_code 1 "-t rejects a bad file" "$T/bin/purged" -c "$CONF" -t
expect_contains "…with FILE:LINE" "$ERR" "$CONF:10: target 'broken' has no 'type'"
expect_contains "…every error" "$ERR" "$CONF:13: max_queue = '-3'"
expect_code 1 "a missing file" "$T/bin/purged" -c "$T/missing.conf" -t
expect_contains "…says it cannot be opened" "$ERR" "cannot open the configuration"
cp "$T/good.conf" "$CONF"
start_purged || { finish; exit 1; }

# Reload through purgectl: a new target appears.
printf '[target extra]\ntype = noop\nobjects = 1\nstep_ms = 0\n' >>"$CONF"
expect_code 0 "reload" ctl reload
expect_contains "reload reports targets" "$OUT" "2 target(s)"
expect_code 0 "the new target is there" ctl --json targets
expect_eq "two targets" "$(jf "$OUT" length)" "2"
check "reload is audited" grep -q '"op":"reload".*"outcome":"ok"' "$T/state/audit.jsonl"

# A broken configuration through purgectl: rejected with FILE:LINE; the old one stays.
cp "$CONF" "$T/good2.conf"
printf '[target oops]\ntype = noop\nbogus = 1\n' >>"$CONF"
expect_code 2 "reload of a broken file fails" ctl reload
expect_contains "…naming the line" "$ERR" "$CONF:16: unknown key 'bogus'"
expect_code 0 "old targets still work" ctl --json purge extra --yes --wait

# The same through SIGHUP.
kill -HUP "$PURGED_PID"
check "SIGHUP rejection is logged with FILE:LINE" wait_until 5 grep -q "$CONF:16: unknown key 'bogus'" "$LOG"
check "the daemon is alive" kill -0 "$PURGED_PID"
expect_code 0 "targets unchanged" ctl --json targets
expect_eq "still two targets" "$(jf "$OUT" length)" "2"
cp "$T/good.conf" "$CONF"
kill -HUP "$PURGED_PID"
check "SIGHUP with a good file reloads" wait_until 5 grep -q "reload: $CONF loaded, 1 target" "$LOG"
expect_code 5 "the removed target is gone" ctl plan extra
# Startup-only keys are kept, and the log says so.
sed -i "s|^state_dir = .*|state_dir = $T/elsewhere|" "$CONF"
expect_code 0 "reload with a changed state_dir" ctl reload
check "…warns it needs a restart" grep -q "state_dir changed .* next restart" "$LOG"
stop_purged TERM
finish
