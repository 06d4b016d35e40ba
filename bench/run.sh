#!/bin/bash
# purged's benchmarks, with references measured in the same run. Prints its
# figures and writes bench/RESULTS.md (date, machine, commands, figures,
# targets). Not a test: CI runs it with BENCH_QUICK=1 only to see that it works:
# it exits 1 when a command of a benchmark failed or a figure is missing from
# its output, and prints "SKIP: WHAT: WHY" for a part it could not run.
#
#   bench/run.sh [BUILD_DIR]      (as root: executors run as nobody)
#   BENCH_QUICK=1                 short runs (2 s wrk, 100 iterations; small backend data)
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$SRC/build}" && pwd)
QUICK=${BENCH_QUICK:-0}
DUR=$([ "$QUICK" = 1 ] && echo 2 || echo 5)
REPS=$([ "$QUICK" = 1 ] && echo 1 || echo 3) # nginx and purged alternate, REPS runs each
N=$([ "$QUICK" = 1 ] && echo 100 || echo 1000)
NRTT=$([ "$QUICK" = 1 ] && echo 1000 || echo 10000)
T=$(mktemp -d /tmp/purged-bench.XXXXXX)
chmod 755 "$T"
mkdir "$T/bin"
cp "$B/purged" "$B/purged-executor" "$B/purged-executor-http" "$B/purged-rest" "$B/purgectl" "$B/bench/purged-bench" "$B/bench/trivial" "$T/bin/"
chmod 755 "$T/bin" "$T/bin/"*
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null
	pkill -f "^$T/bin/" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
# Every failed command of the run (outside conditions) is remembered, and fails the run at the end.
BENCH_FAILS=()
trap 'BENCH_FAILS+=("line $LINENO: $BASH_COMMAND (exit $?)")' ERR
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SOCK=$T/control.sock
CTL="$T/bin/purgectl -s $SOCK"
OUT=$T/results.txt
say() { printf '%s\n' "$*" | tee -a "$OUT"; }
CPU_SERVER=0
CPU_CLIENT=1
[ "$(nproc)" -lt 2 ] && CPU_CLIENT=0

# -------------------------------------------------------------- configuration
TOKEN_OUT=$("$T/bin/purgectl" token new bench 2>/dev/null)
TOKEN=$(printf '%s\n' "$TOKEN_OUT" | sed -n 1p)
install -m 0600 /dev/null "$T/tokens"
printf '%s\n' "$TOKEN_OUT" | sed -n 2p >"$T/tokens"
RPORT=$(free_port)
write_conf() { # MAX_EXECUTORS [TARGETS]
	local targets=${2:-400}
	{
		printf '[daemon]\ncontrol_socket = %s\nstate_dir = %s/state\nexecutor_user = nobody\n' "$SOCK" "$T"
		printf 'max_executors = %s\nmax_queue = 1000\nkeep_tasks = 20000\n' "$1"
		printf '[rest]\nenabled = yes\nlisten = 127.0.0.1:%s\ntokens_file = %s/tokens\n' "$RPORT" "$T"
		printf '[target demo]\ntype = noop\nobjects = 1\nstep_ms = 0\n'
		for i in $(seq 1 "$targets"); do printf '[target b%d]\ntype = noop\nobjects = 1\nstep_ms = 0\n' "$i"; done
	} >"$T/purged.conf"
}
start_purged() {
	taskset -c "$CPU_SERVER" "$T/bin/purged" -c "$T/purged.conf" -d >>"$T/purged.log" 2>&1 &
	PURGED_PID=$!
	PIDS+=("$PURGED_PID")
	for _ in $(seq 1 100); do $CTL status >/dev/null 2>&1 && break; sleep 0.05; done
	for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$RPORT/healthz" -o /dev/null && break; sleep 0.05; done
}
stop_purged() { kill "$PURGED_PID"; wait "$PURGED_PID" 2>/dev/null; }
rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
rest_pid() { pgrep -f "^$T/bin/purged-rest" | head -n 1; }
cpu_ticks() { # PIDS... -> utime+stime in clock ticks
	local sum=0
	for p in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	echo "$sum"
}

: >"$OUT"
# -------------------------------------------------------------- memory at rest
say "## Memory"
write_conf 4 0
start_purged
sleep 1
say "idle supervisor RSS (one target, REST on): $(rss_of "$PURGED_PID") KiB (target <= 4096)"
stop_purged
write_conf 4
start_purged

# -------------------------------------------------------------- control round trip
# The floor is measured too: servers that only answer each frame with the
# bytes of purged's status reply, one blocking, one on libuv (epoll) like
# purged; and the client runs on purged's CPU, then on the other one (a
# wakeup across CPUs costs tens of microseconds on a virtual machine).
say "## Control round trip (status, $NRTT requests on one connection, purged on CPU $CPU_SERVER)"
taskset -c "$CPU_SERVER" "$T/bin/purged-bench" echo "$T/echo.sock" "$SOCK" &
PIDS+=($!)
taskset -c "$CPU_SERVER" "$T/bin/purged-bench" echo-uv "$T/echo-uv.sock" "$SOCK" &
PIDS+=($!)
sleep 0.3
p50_of() { sed -n 's/.*p50 \([0-9]*\) us.*/\1/p'; }
p99_of() { sed -n 's/.*p99 \([0-9]*\) us.*/\1/p'; }
say "| client on | purged p50 / p99 | blocking echo p50 / p99 | libuv echo p50 / p99 | purged / libuv echo (p50) |"
say "|---|---|---|---|---|"
for cpu in "$CPU_SERVER" "$CPU_CLIENT"; do
	P=$(taskset -c "$cpu" "$T/bin/purged-bench" rtt "$SOCK" "$NRTT")
	E=$(taskset -c "$cpu" "$T/bin/purged-bench" rtt "$T/echo.sock" "$NRTT")
	U=$(taskset -c "$cpu" "$T/bin/purged-bench" rtt "$T/echo-uv.sock" "$NRTT")
	where=$([ "$cpu" = "$CPU_SERVER" ] && echo "purged's CPU ($cpu)" || echo "the other CPU ($cpu)")
	say "| $where | $(p50_of <<<"$P") / $(p99_of <<<"$P") us | $(p50_of <<<"$E") / $(p99_of <<<"$E") us | $(p50_of <<<"$U") / $(p99_of <<<"$U") us | $(awk -v a="$(p50_of <<<"$P")" -v b="$(p50_of <<<"$U")" 'BEGIN { printf "%.2f", a / b }') |"
done
say "target: p50 <= 50 us"
if command -v hyperfine >/dev/null; then
	hyperfine -N --warmup 20 --runs "$([ "$QUICK" = 1 ] && echo 50 || echo 300)" --export-json "$T/hf.json" \
		"$T/bin/purgectl -s $SOCK --json status" >/dev/null 2>&1
	say "purgectl --json status, whole process: p50 $(jq '.results[0].median * 1e6 | floor' "$T/hf.json") us, mean $(jq '.results[0].mean * 1e6 | floor' "$T/hf.json") us (target p50 <= 3000 us)"
else
	echo "SKIP: bench: purgectl's whole-process time: hyperfine not installed"
fi

# -------------------------------------------------------------- executor start
say "## Executor start"
START=$("$T/bin/purged-bench" start "$SOCK" demo "$N")
SPAWN=$("$T/bin/purged-bench" spawn "$T/bin/trivial" "$N")
say "$START (target p50 <= 2000 us)"
say "$SPAWN"
P50_START=$(printf '%s' "$START" | sed -n 's/.*p50 \([0-9]*\) us.*/\1/p')
P50_SPAWN=$(printf '%s' "$SPAWN" | sed -n 's/.*p50 \([0-9]*\) us.*/\1/p')
say "ratio executor start / bare fork+exec: $(awk -v a="$P50_START" -v b="$P50_SPAWN" 'BEGIN { printf "%.1f", a / b }')"

# -------------------------------------------------------------- task throughput
say "## Task throughput (noop, objects = 1)"
for m in 1 2 4; do
	write_conf "$m"
	$CTL reload >/dev/null
	say "max_executors = $m: $("$T/bin/purged-bench" throughput "$SOCK" b "$([ "$QUICK" = 1 ] && echo 50 || echo 400)")"
done

# -------------------------------------------------------------- REST vs nginx
say "## REST throughput (server on CPU $CPU_SERVER, wrk on CPU $CPU_CLIENT; nginx and purged alternate, $REPS runs of $DUR s each: the median run's requests/s and latency, CPU over all runs)"
TASK_ID=$($CTL --json tasks --limit 1 | jq -r '.[0].id')
TASK_BODY=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$RPORT/v1/tasks/$TASK_ID")
NPORT=$(free_port)
mkdir -p "$T/nginx"
printf '%s\n' "$TASK_BODY" >"$T/nginx/task.json"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 2048; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $T/nginx; proxy_temp_path $T/nginx; fastcgi_temp_path $T/nginx;
	uwsgi_temp_path $T/nginx; scgi_temp_path $T/nginx;
	server {
		listen 127.0.0.1:$NPORT;
		location = /healthz { default_type application/json; return 200 '{"status":"ok"}\n'; }
		location /v1/tasks/ { default_type application/json; return 200 '$TASK_BODY\n'; }
	}
}
EOF
taskset -c "$CPU_SERVER" nginx -c "$T/nginx/nginx.conf" >/dev/null 2>&1 &
NGINX_PID=$!
sleep 0.5
# The master and its worker (whose command line does not name the configuration).
NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
PURGED_PIDS="$PURGED_PID $(rest_pid)"
TCK=$(getconf CLK_TCK)
run_wrk() { # NAME URL CONNS PIDS...
	local name=$1 url=$2 conns=$3
	shift 3
	local before after
	before=$(cpu_ticks "$@")
	taskset -c "$CPU_CLIENT" wrk -t1 -c"$conns" -d"${DUR}s" --latency -H "Authorization: Bearer $TOKEN" "$url" >"$T/wrk.txt" 2>&1
	after=$(cpu_ticks "$@")
	local rps p50 p99 cpu
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$T/wrk.txt")
	p50=$(awk '$1 == "50%" {print $2}' "$T/wrk.txt")
	p99=$(awk '$1 == "99%" {print $2}' "$T/wrk.txt")
	cpu=$(awk -v a="$before" -v b="$after" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
	local reqs
	reqs=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
	local per_cpu
	per_cpu=$(awk -v r="$reqs" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }')
	grep -qE "Non-2xx|Socket errors" "$T/wrk.txt" && name="$name (ERRORS: $(grep -E 'Non-2xx|Socket errors' "$T/wrk.txt" | tr '\n' ' '))"
	printf '%s|%s|%s|%s|%s|%s|%s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$per_cpu" "$reqs"
}
# Lines of run_wrk -> the median run by requests/s, with CPU seconds and
# requests per CPU second taken over all the runs.
summarize() {
	local median
	median=$(printf '%s\n' "$@" | sort -t'|' -k2,2g | sed -n "$((($# + 1) / 2))p")
	printf '%s\n' "$@" | awk -F'|' -v m="$median" '
		{ cpu += $5; reqs += $7; if (index($1, "ERRORS")) err = 1 }
		END {
			split(m, f, "|")
			if (err && !index(f[1], "ERRORS")) f[1] = f[1] " (ERRORS in another run)"
			printf "%s|%s|%s|%s|%.2f|%.0f\n", f[1], f[2], f[3], f[4], cpu, (cpu > 0 ? reqs / cpu : 0)
		}'
}
say "| run | requests/s | p50 | p99 | server CPU s | requests per CPU s | ratio to nginx (req/s, req/CPU s) |"
say "|---|---|---|---|---|---|---|"
for route in healthz task; do
	for conns in 50 1; do
		if [ "$route" = healthz ]; then pu=/healthz; nu=/healthz; else pu=/v1/tasks/$TASK_ID; nu=/v1/tasks/$TASK_ID; fi
		NGS=()
		PGS=()
		for _ in $(seq 1 "$REPS"); do
			NGS+=("$(run_wrk "nginx $route c=$conns" "http://127.0.0.1:$NPORT$nu" "$conns" $NGINX_PIDS)")
			PGS+=("$(run_wrk "purged $route c=$conns" "http://127.0.0.1:$RPORT$pu" "$conns" $PURGED_PIDS)")
		done
		NG=$(summarize "${NGS[@]}")
		PG=$(summarize "${PGS[@]}")
		IFS='|' read -r nn nr n50 n99 nc npc <<<"$NG"
		IFS='|' read -r pn pr p50 p99 pc ppc <<<"$PG"
		say "| $nn | $nr | $n50 | $n99 | $nc | $npc | |"
		say "| $pn | $pr | $p50 | $p99 | $pc | $ppc | $(awk -v a="$pr" -v b="$nr" -v c="$ppc" -v d="$npc" 'BEGIN { printf "%.2f, %.2f", a / b, (d > 0 ? c / d : 0) }') |"
	done
done
say "targets: /healthz >= 0.90 x nginx requests/s at c=50 and >= 1.0 x nginx requests per CPU s; /v1/tasks/ID >= 0.5 x nginx requests/s"
kill "$NGINX_PID" 2>/dev/null
NGINX_PID=

# -------------------------------------------------------------- purged-rest with 1000 idle connections
say "## purged-rest memory"
say "purged-rest RSS, no client: $(rss_of "$(rest_pid)") KiB"
python3 - "$RPORT" <<'PY' &
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
socks = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
for s in socks:
    s.recv(4096)
time.sleep(4)
PY
HOLDER=$!
sleep 3
say "purged-rest RSS with 1000 idle keep-alive connections: $(rss_of "$(rest_pid)") KiB (target <= 8192)"
wait "$HOLDER"

# -------------------------------------------------------------- executor peak memory per backend
say "## Executor peak RSS (getrusage, logged by the executor)"
say "noop: $(grep -o 'done: peak RSS [0-9]* KiB (purge)' "$T/purged.log" | tail -n 1 | grep -o '[0-9]*') KiB (target <= 16384)"
if command -v redis-server >/dev/null; then
	RP=$(free_port)
	redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --enable-debug-command yes --daemonize no >/dev/null 2>&1 &
	PIDS+=($!)
	sleep 0.5
	redis-cli -p "$RP" DEBUG POPULATE 100000 >/dev/null
	printf '[crdb 1d7741cc-1110-4e2f-bc6c-935292783d24]\ninstance.1 = redis://127.0.0.1:%s\n' "$RP" >>"$T/purged.conf"
	$CTL reload >/dev/null
	$CTL crdb purge 1d7741cc-1110-4e2f-bc6c-935292783d24 --instances 1 --yes --wait >/dev/null 2>&1
	say "crdb (100 000 keys): $(grep -o 'done: peak RSS [0-9]* KiB (purge)' "$T/purged.log" | tail -n 1 | grep -o '[0-9]*') KiB"
else
	echo "SKIP: bench: crdb executor peak RSS: redis-server not installed"
fi
IP=$(free_port)
python3 "$SRC/tests/peers/fake_itop.py" "$IP" --seed >/dev/null 2>&1 &
PIDS+=($!)
sleep 1
install -m 0600 /dev/null "$T/pw"
echo rest-pw >"$T/pw"
printf '[target itop]\ntype = itop\nurl = http://127.0.0.1:%s/webservices/rest.php\nuser = rest\npassword_file = %s/pw\n' "$IP" "$T" >>"$T/purged.conf"
$CTL reload >/dev/null
$CTL purge itop --yes --wait >/dev/null 2>&1
say "itop: $(grep -o 'done: peak RSS [0-9]* KiB (purge)' "$T/purged.log" | tail -n 1 | grep -o '[0-9]*') KiB"

# -------------------------------------------------------------- backend efficiency
say "## Backend efficiency (counted at the peer)"
STATS=$(curl -s "http://127.0.0.1:$IP/stats")
NCLASSES=$(sed -n '/default_classes\[\] =/,/;/p' "$SRC/daemon/executor/backends/itop.c" | grep -o '"[^"]*"' | tr -d '"\n' | tr , '\n' | grep -c .)
say "iTop (the fake), default scope ($NCLASSES classes), 70 objects: $(jf() { printf '%s' "$1" | jq -r "$2"; }; jf "$STATS" .requests) requests over $(printf '%s' "$STATS" | jq .connections) connection(s)"
if [ "$(id -u)" = 0 ] && [ -d /usr/share/redmine ]; then
	RMP=$(free_port)
	PXP=$(free_port)
	export REDMINE_STATE=/var/lib/redmine-test
	if RURL=$("$SRC/tests/peers/redmine-up.sh" "$RMP" "$T/rkey" 2>/dev/null); then
		python3 "$SRC/tests/peers/fault_proxy.py" "$PXP" "$RMP" >/dev/null 2>&1 &
		PIDS+=($!)
		sleep 0.5
		KEY=$(cat "$T/rkey")
		NP=$([ "$QUICK" = 1 ] && echo 10 || echo 40)
		for i in $(seq 1 "$NP"); do
			curl -s -X POST -H "X-Redmine-API-Key: $KEY" -H 'Content-Type: application/json' \
				-d "{\"project\":{\"name\":\"P$i\",\"identifier\":\"p$i\"}}" "$RURL/projects.json" >/dev/null
		done
		install -m 0600 /dev/null "$T/rk"
		echo "$KEY" >"$T/rk"
		printf '[target redmine]\ntype = redmine\nurl = http://127.0.0.1:%s/\napi_key_file = %s/rk\nparallel = 4\n' "$PXP" "$T" >>"$T/purged.conf"
		$CTL reload >/dev/null
		$CTL purge redmine --yes --wait >/dev/null 2>&1
		PS=$(curl -s "http://127.0.0.1:$PXP/__stats")
		say "Redmine, $NP projects, parallel = 4: $(printf '%s' "$PS" | jq .requests) requests over $(printf '%s' "$PS" | jq .connections) connection(s)"
		say "redmine executor peak RSS: $(grep -o 'done: peak RSS [0-9]* KiB (purge)' "$T/purged.log" | tail -n 1 | grep -o '[0-9]*') KiB"
		"$SRC/tests/peers/redmine-down.sh" "$RMP" >/dev/null 2>&1
	else
		BENCH_FAILS+=("Redmine did not start (tests/peers/redmine-up.sh)")
	fi
else
	echo "SKIP: bench: Redmine efficiency: needs root and Redmine (tests/peers/redmine-up.sh installs it)"
fi

# -------------------------------------------------------------- backend purges against the fastest way by hand
# bench/backends.sh: Redis, iTop and Redmine purges with their references measured in the same
# run (issue 12); its SKIP lines are printed, its figures go into the results.
"$SRC/bench/backends.sh" "$B" >"$T/backends.txt" 2>"$T/backends.err" ||
	BENCH_FAILS+=("bench/backends.sh failed: $(tail -n 5 "$T/backends.err" | tr '\n' ' ')")
while IFS= read -r line; do
	case $line in
	SKIP:*) echo "$line" ;;
	*) say "$line" ;;
	esac
done <"$T/backends.txt"

# -------------------------------------------------------------- 100 vs 10 000 tasks
say "## Task table: 100 vs 10 100 tasks (status / tasks.get, client on purged's CPU, 2000 round trips each)"
stop_purged
rm -rf "$T/state" # a fresh journal: exactly 100 tasks
start_purged
"$T/bin/purged-bench" throughput "$SOCK" b 100 >/dev/null
TASK_ID=$($CTL --json tasks --limit 1 | jq -r '.[0].id')
say "at $($CTL --json status | jq .tasks) tasks: $(taskset -c "$CPU_SERVER" "$T/bin/purged-bench" rtt "$SOCK" 2000) / $(taskset -c "$CPU_SERVER" "$T/bin/purged-bench" rtt "$SOCK" 2000 "$TASK_ID")"
stop_purged
# 10 000 finished tasks, written as the journal a long-running daemon would have.
python3 - "$T/state/journal" <<'PY'
import json, sys, zlib, uuid, time
with open(sys.argv[1], "a") as f:
    base = int(time.time() * 1000) - 10_000_000
    for i in range(10000):
        ms = base + i
        u = uuid.UUID(int=(ms << 80) | (0x7 << 76) | (i << 64) | (0x8 << 60) | i)
        rec = {"id": str(u), "target": f"b{i % 400 + 1}", "operation": "purge", "status": "finished",
               "created": "2026-11-29T00:00:00Z", "started": "2026-11-29T00:00:00Z", "ended": "2026-11-29T00:00:01Z",
               "requested_by": {"name": "bench", "uid": 0, "door": "ctl"},
               "progress": {"step": "objects", "done": 1, "total": 1}, "counts": {"objects": 1},
               "error": None, "errors": [], "warnings": []}
        js = json.dumps(rec, separators=(",", ":"), sort_keys=True)
        f.write("%08x %s\n" % (zlib.crc32(js.encode()), js))
PY
start_purged
say "at $($CTL --json status | jq .tasks) tasks: $(taskset -c "$CPU_SERVER" "$T/bin/purged-bench" rtt "$SOCK" 2000) / $(taskset -c "$CPU_SERVER" "$T/bin/purged-bench" rtt "$SOCK" 2000 "$TASK_ID")"
say "supervisor RSS holding $($CTL --json status | jq .tasks) tasks: $(rss_of "$PURGED_PID") KiB (target <= 32768)"
stop_purged

# -------------------------------------------------------------- RESULTS.md
{
	echo "# purged benchmark results"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "- load average (1, 5, 15 min) when the run ended: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine moves every figure)"
	echo "- machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -m | awk '/^Mem:/ {print $2}') MiB, kernel $(uname -r)"
	echo "- commit: $(cd "$SRC" && git rev-parse --short HEAD 2>/dev/null)$(cd "$SRC" && git diff --quiet HEAD -- 2>/dev/null || echo " with uncommitted changes to $(git diff --name-only HEAD -- | tr '\n' ' ')(the build measured is the work tree's)")"
	echo "- command: \`bench/run.sh\`$([ "$QUICK" = 1 ] && echo ' (BENCH_QUICK=1: short runs, figures are rough)')"
	echo "- references measured in the same run: nginx (1 worker, same CPU pinning) for REST; a bare fork+exec of a static program for executor start; for backend purges, the fastest way by hand named in each table (bench/backends.sh)"
	echo
	sed 's/^## /### /' "$OUT"
	echo
	cat "$SRC/bench/history.md"
} >"$T/RESULTS.md"
if [ "$QUICK" != 1 ]; then cp "$T/RESULTS.md" "$SRC/bench/RESULTS.md"; fi
echo
echo "written: $([ "$QUICK" != 1 ] && echo "$SRC/bench/RESULTS.md" || echo "(quick mode: not written)")"

# A figure that could not be measured shows as a double space (an empty
# substitution), a unit with no number before it, a line ending in ':',
# nan/inf/null, or a wrk run of 0 requests/s; wrk's error mark says that some
# answers were errors. Each fails the run.
trap - ERR
while IFS= read -r line; do BENCH_FAILS+=("errors during: $line"); done < <(grep -F '(ERRORS:' "$OUT")
while IFS= read -r line; do BENCH_FAILS+=("no figure: $line"); done < <(sed 's/ (ERRORS:[^)]*)//' "$OUT" |
	grep -P '  |: *$|(?<![0-9] )\b(KiB|us|requests over)\b|\b(nan|inf|null)\b|^\| (nginx|purged) [^|]*\| 0(\.0+)? \|')
if [ ${#BENCH_FAILS[@]} -gt 0 ]; then
	printf 'bench: FAILED: %s\n' "${BENCH_FAILS[@]}" >&2
	exit 1
fi
