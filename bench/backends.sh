#!/bin/bash
# Backend purges against the fastest way to do the same by hand, measured in the
# same run (issue 12). Prints one line per figure (bench/run.sh copies them into
# bench/RESULTS.md and fails when a figure is missing); prints "SKIP: WHAT: WHY"
# for a part whose peer is absent, and exits 1 when a command failed.
#
#   bench/backends.sh BUILD_DIR [redis] [itop] [redmine]   (as root; default: all)
#   BENCH_QUICK=1   small data, one run each (a smoke test, < 2 minutes)
#   BENCH_ARCHIVE=0 iTop and Redmine without the archive = yes runs (a third of the time)
#   BENCH_LOGS=DIR  keep the logs there: purged's, and one line per request the peers got
#
# iTop and Redmine, archive = yes vs no (issue 14): in each run the same data is purged a
#   third time with archive = yes, after the export's own reads done by hand (iTop: one
#   core/get "*" per leaf class; Redmine: the same GETs by one curl, 4 at once); the table
#   compares what the archive adds (yes - no) with those reads.
# Redis: 1 000 000 keys of 32 bytes in one redis-server: `purgectl crdb purge
#   --wait` against a synchronous `redis-cli FLUSHDB` of the same data, a client
#   sending PING in a loop meanwhile (its longest single wait); 4 redis-servers
#   of 250 000 keys against one of 250 000; runs alternated, medians. Archive on vs off
#   (issue 14): the same 1 000 000 keys purged with archive = yes, against the export's own
#   reads by hand in the same run (redis-cli --scan, then one DUMP per key, pipelined by
#   redis-cli --pipe); what the archive adds (yes - no) is compared with those reads.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$SRC/build}" && pwd)
shift
PARTS=${*:-redis itop redmine}
QUICK=${BENCH_QUICK:-0}
ARCH=${BENCH_ARCHIVE:-1}
T=$(mktemp -d /tmp/purged-bbench.XXXXXX)
chmod 755 "$T"
mkdir "$T/bin"
cp "$B/purged" "$B/purged-executor" "$B/purged-executor-http" "$B/purgectl" "$T/bin/"
chmod 755 "$T/bin" "$T/bin/"*
PIDS=()
ITOP_DOWN=
REDMINE_DOWN=
cleanup() {
	# BENCH_LOGS=DIR keeps purged's log and the proxies' request logs (profiles by request).
	[ -n "${BENCH_LOGS:-}" ] && mkdir -p "$BENCH_LOGS" && cp "$T"/*.log "$BENCH_LOGS/" 2>/dev/null
	[ -n "$ITOP_DOWN" ] && $ITOP_DOWN >/dev/null 2>&1
	[ -n "$REDMINE_DOWN" ] && $REDMINE_DOWN >/dev/null 2>&1
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
FAILS=()
trap 'FAILS+=("line $LINENO: $BASH_COMMAND (exit $?)")' ERR
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SOCK=$T/control.sock
CTL="$T/bin/purgectl -s $SOCK"
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; } # T0 T1 -> seconds
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : -1) }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= 0 && r <= t ? "met" : "MISSED") }'; } # VALUE LIMIT
# COST READS: what the archive adds at most 1.2 x the export's own reads by hand (a cost under 0 is noise: met).
cost_verdict() { awk -v c="$1" -v r="$2" 'BEGIN { print (r > 0 && c <= 1.2 * r ? "met" : "MISSED") }'; }
# profile LOG FIRST LAST: a proxy's requests FIRST..LAST (FAULT_PROXY_LOG lines) by kind, with
# the time the peer took: iTop by operation (simulations apart), Redmine by method, path and status.
profile() {
	sed -n "$2,$3p" "$1" | awk '{ k = $7 != "" ? $7 ($9 == "simulate" ? " (simulate)" : "") : $3 " " $4 " " $5
		gsub(/\/[0-9]+/, "/ID", k); n[k]++; t[k] += $2 }
		END { for (k in n) printf "%d x %s %.2f s; ", n[k], k, t[k] / 1000 }'
}
peak_rss() { grep -o 'done: peak RSS [0-9]* KiB (purge)' "$T/purged.log" | tail -n 1 | grep -o '[0-9]*'; }

# purged with the sections the parts add to $T/targets.conf (reloaded as they grow).
: >"$T/targets.conf"
write_conf() {
	{
		printf '[daemon]\ncontrol_socket = %s\nstate_dir = %s/state\nexecutor_user = nobody\n' "$SOCK" "$T"
		printf 'max_executors = 4\nmax_queue = 100\n'
		cat "$T/targets.conf"
	} >"$T/purged.conf"
}
write_conf
"$T/bin/purged" -c "$T/purged.conf" -d >>"$T/purged.log" 2>&1 &
PURGED_PID=$!
PIDS+=("$PURGED_PID")
for _ in $(seq 1 100); do $CTL status >/dev/null 2>&1 && break; sleep 0.05; done
reload() { write_conf && $CTL reload >/dev/null; }

# ------------------------------------------------------------------ Redis
bench_redis() {
	if ! command -v redis-server >/dev/null; then
		echo "SKIP: bench: Redis purges: redis-server not installed"
		return
	fi
	local KEYS=1000000 SMALL=250000 RUNS=${BENCH_REDIS_RUNS:-5}
	[ "$QUICK" = 1 ] && KEYS=100000 SMALL=25000 RUNS=1
	local G=5bb185aa-5554-4263-9a9f-379636127168 ports=() p i
	for i in 1 2 3 4; do
		p=$(free_port)
		mkdir -p "$T/redis$i"
		redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/redis$i" \
			--enable-debug-command yes --daemonize no >"$T/redis$i/log" 2>&1 &
		PIDS+=($!)
		ports+=("$p")
	done
	for p in "${ports[@]}"; do
		for _ in $(seq 1 100); do redis-cli -p "$p" PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
	done
	{
		printf '[crdb %s]\n' "$G"
		for i in 1 2 3 4; do printf 'instance.%d = redis://127.0.0.1:%s\n' "$i" "${ports[$((i - 1))]}"; done
	} >>"$T/targets.conf"
	reload
	# A client that PINGs in a loop and says its longest single wait (ms) when told to stop.
	cat >"$T/pinger.py" <<'PY'
import signal, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
open(sys.argv[2] + ".ready", "w").close()
worst, n = 0.0, 0
while not stop:
    t = time.perf_counter()
    s.sendall(b"PING\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        got += s.recv(64)
    worst = max(worst, time.perf_counter() - t)
    n += 1
open(sys.argv[2], "w").write("%.1f %d\n" % (worst * 1000, n))
PY
	fill() { # PORT KEYS: KEYS keys of 32 bytes, once the server's background frees are done
		for _ in $(seq 1 200); do
			[ "$(redis-cli -p "$1" INFO memory | tr -d '\r' | awk -F: '$1 == "lazyfree_pending_objects" {print $2}')" = 0 ] && break
			sleep 0.05
		done
		redis-cli -p "$1" DEBUG POPULATE "$2" key 32 >/dev/null
		[ "$(redis-cli -p "$1" DBSIZE)" = "$2" ] || FAILS+=("redis on $1 holds $(redis-cli -p "$1" DBSIZE) keys, not $2")
	}
	# PORT COMMAND...: run COMMAND while a client PINGs PORT; prints "SECONDS WORST_MS SERVER_MS":
	# the client's longest wait (the machine's scheduling included) and the server's own longest
	# event (its latency monitor, threshold 1 ms: 0 when none).
	pinged() {
		local port=$1 pp t0 t1 ev
		shift
		redis-cli -p "$port" CONFIG SET latency-monitor-threshold 1 >/dev/null
		redis-cli -p "$port" LATENCY RESET >/dev/null
		rm -f "$T/ping.out" "$T/ping.out.ready"
		python3 "$T/pinger.py" "$port" "$T/ping.out" &
		pp=$!
		# Started (connected, its SIGTERM handler set) before anything is measured.
		for _ in $(seq 1 200); do [ -e "$T/ping.out.ready" ] && break; sleep 0.05; done
		[ -e "$T/ping.out.ready" ] || FAILS+=("the PINGing client did not start")
		sleep 0.2
		t0=$(now)
		"$@" >"$T/cmd.out" 2>"$T/cmd.err" || FAILS+=("$* failed: $(head -c 300 "$T/cmd.err")")
		t1=$(now)
		sleep 0.1
		kill "$pp"
		wait "$pp"
		[ -s "$T/ping.out" ] || FAILS+=("the PINGing client said nothing")
		# LATENCY LATEST: event, time, latest ms, max ms (flat, four lines per event)
		ev=$(redis-cli -p "$port" LATENCY LATEST | awk 'NR % 4 == 0 && $1 > m { m = $1 } END { print m + 0 }')
		echo "$(secs "$t0" "$t1") $(cut -d' ' -f1 "$T/ping.out" 2>/dev/null) $ev"
	}
	local ref=() refw=() refs=() pur=() purw=() purs=() idlew=() one=() four=() freed=() r out t0
	for r in $(seq 1 "$RUNS"); do
		fill "${ports[0]}" "$KEYS"
		out=$(pinged "${ports[0]}" sleep 0.1)
		idlew+=("$(cut -d' ' -f2 <<<"$out")")
		out=$(pinged "${ports[0]}" redis-cli -p "${ports[0]}" FLUSHDB)
		read -r a b c <<<"$out"
		ref+=("$a") refw+=("$b") refs+=("$c")
		fill "${ports[0]}" "$KEYS"
		out=$(pinged "${ports[0]}" $CTL --json crdb purge "$G" --instances 1 --yes --wait)
		t0=$(now)
		read -r a b c <<<"$out"
		pur+=("$a") purw+=("$b") purs+=("$c")
		[ "$(jq -r '.counts["instance 1"]' "$T/cmd.out")" = "$KEYS" ] || FAILS+=("the purge did not count $KEYS keys: $(head -c 300 "$T/cmd.out")")
		[ "$(redis-cli -p "${ports[0]}" DBSIZE)" = 0 ] || FAILS+=("instance 1 is not empty after the purge")
		for _ in $(seq 1 400); do
			[ "$(redis-cli -p "${ports[0]}" INFO memory | tr -d '\r' | awk -F: '$1 == "lazyfree_pending_objects" {print $2}')" = 0 ] && break
			sleep 0.01
		done
		freed+=("$(secs "$t0" "$(now)")")
	done
	local RSS hone=() hfour=()
	RSS=$(peak_rss)
	byhand() { # PORTS...
		local p w=()
		for p in "$@"; do
			(redis-cli -p "$p" FLUSHDB ASYNC >/dev/null && [ "$(redis-cli -p "$p" DBSIZE)" = 0 ]) &
			w+=($!)
		done
		for p in "${w[@]}"; do wait "$p" || FAILS+=("by hand: an instance was not empty after FLUSHDB ASYNC"); done
	}
	for r in $(seq 1 "$RUNS"); do
		fill "${ports[0]}" "$SMALL"
		t0=$(now)
		$CTL crdb purge "$G" --instances 1 --yes --wait >/dev/null 2>&1 || FAILS+=("purge of one instance of $SMALL failed")
		one+=("$(secs "$t0" "$(now)")")
		for p in "${ports[@]}"; do fill "$p" "$SMALL"; done
		t0=$(now)
		$CTL --json crdb purge "$G" --instances 1,2,3,4 --yes --wait >"$T/cmd.out" 2>"$T/cmd.err" || FAILS+=("purge of 4 instances failed: $(head -c 300 "$T/cmd.err")")
		four+=("$(secs "$t0" "$(now)")")
		[ "$(jq '[.counts[]] | add' "$T/cmd.out")" = $((4 * SMALL)) ] || FAILS+=("the 4-instance purge did not count $((4 * SMALL)) keys")
		# The backend's floor, by hand: FLUSHDB ASYNC then DBSIZE on each instance, all at once.
		fill "${ports[0]}" "$SMALL"
		t0=$(now)
		byhand "${ports[0]}"
		hone+=("$(secs "$t0" "$(now)")")
		for p in "${ports[@]}"; do fill "$p" "$SMALL"; done
		t0=$(now)
		byhand "${ports[@]}"
		hfour+=("$(secs "$t0" "$(now)")")
	done
	local mref mpur mone mfour rp rf a b c
	mref=$(median "${ref[@]}")
	mpur=$(median "${pur[@]}")
	mone=$(median "${one[@]}")
	mfour=$(median "${four[@]}")
	rp=$(ratio "$mpur" "$mref")
	rf=$(ratio "$mfour" "$mone")
	echo "## Redis purges (redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -c3-), keys of 32 bytes, $RUNS alternated runs, medians)"
	echo "| work | reference | purged | ratio | target |"
	echo "|---|---|---|---|---|"
	echo "| $KEYS keys, one instance: wall time | redis-cli FLUSHDB $mref s | purgectl crdb purge --wait $mpur s | $rp | <= 1.2: $(verdict "$rp" 1.2) |"
	echo "| same, a client PINGing meanwhile: its longest wait | $(median "${refw[@]}") ms | $(median "${purw[@]}") ms | | <= 20 ms: $(verdict "$(median "${purw[@]}")" 20) |"
	echo "| same: the server's longest event (latency monitor, 0 = none >= 1 ms) | $(median "${refs[@]}") ms | $(median "${purs[@]}") ms | | |"
	echo "| 4 instances x $SMALL keys (4 redis-servers) | one instance of $SMALL $mone s | $mfour s | $rf | <= 2.5: $(verdict "$rf" 2.5) |"
	echo "| same, by hand (redis-cli FLUSHDB ASYNC then DBSIZE per instance, all at once): the backend's floor | one instance $(median "${hone[@]}") s, 4 instances $(median "${hfour[@]}") s ($(ratio "$(median "${hfour[@]}")" "$(median "${hone[@]}")")) | $mfour s | $(ratio "$mfour" "$(median "${hfour[@]}")") | |"
	echo "the PINGing client's longest wait with nothing else asked of the server (this machine's scheduling): $(median "${idlew[@]}") ms; longest over the runs: $(printf '%s\n' "${purw[@]}" | sort -g | tail -n 1) ms during purges, $(printf '%s\n' "${idlew[@]}" | sort -g | tail -n 1) ms idle"
	echo "each run, FLUSHDB then purge (s / client's longest wait ms / server's longest event ms): $(for i in "${!ref[@]}"; do printf '%s/%s/%s vs %s/%s/%s; ' "${ref[$i]}" "${refw[$i]}" "${refs[$i]}" "${pur[$i]}" "${purw[$i]}" "${purs[$i]}"; done | sed 's/; $//')"
	echo "after the purge of $KEYS keys the server's background thread freed their memory within $(median "${freed[@]}") s (lazyfree_pending_objects = 0; median)"
	echo "crdb executor peak RSS ($KEYS keys): $RSS KiB (target <= 16384: $(verdict "$RSS" 16384))"
	# Archive on vs off (issue 14): the same data purged with archive = yes, against the export's
	# own reads by hand: redis-cli --scan, then one DUMP per key pipelined (redis-cli --pipe).
	local GA=5bb185aa-5554-4263-9a9f-37963612716a ARUNS=${BENCH_REDIS_ARCHIVE_RUNS:-3} aref=() aon=() aonw=() aons=() arss=() ainfo
	[ "$QUICK" = 1 ] && ARUNS=1
	printf '[crdb %s]\ninstance.1 = redis://127.0.0.1:%s\narchive = yes\n' "$GA" "${ports[0]}" >>"$T/targets.conf"
	reload
	for r in $(seq 1 "$ARUNS"); do
		fill "${ports[0]}" "$KEYS"
		t0=$(now)
		redis-cli -p "${ports[0]}" --scan |
			LC_ALL=C awk '{ printf "*2\r\n$4\r\nDUMP\r\n$%d\r\n%s\r\n", length($0), $0 }' |
			redis-cli -p "${ports[0]}" --pipe >"$T/pipe.out" 2>&1
		aref+=("$(secs "$t0" "$(now)")")
		grep -q "errors: 0, replies: $KEYS" "$T/pipe.out" || FAILS+=("the DUMP pass by hand did not read $KEYS keys: $(tail -c 200 "$T/pipe.out")")
		out=$(pinged "${ports[0]}" $CTL --json crdb purge "$GA" --instances 1 --yes --wait)
		read -r a b c <<<"$out"
		aon+=("$a") aonw+=("$b") aons+=("$c")
		[ "$(jq -r '.counts["instance 1"]' "$T/cmd.out")" = "$KEYS" ] || FAILS+=("the purge with archive = yes did not count $KEYS keys: $(head -c 300 "$T/cmd.out")")
		[ "$(redis-cli -p "${ports[0]}" DBSIZE)" = 0 ] || FAILS+=("instance 1 is not empty after the purge with archive = yes")
		ainfo=$(jq -r '"\(.archive.records) records, \(.archive.bytes) bytes (zstd)"' "$T/cmd.out")
		arss+=("$(peak_rss)")
	done
	local mon mexp madd
	mon=$(median "${aon[@]}")
	mexp=$(median "${aref[@]}")
	madd=$(awk -v a="$mon" -v b="$mpur" 'BEGIN { printf "%.3f", a - b }')
	echo "| $KEYS keys, one instance, archive = yes vs no: what the archive adds ($ARUNS runs) | the export's own reads by hand (redis-cli --scan, then DUMP of each key by redis-cli --pipe) $mexp s | archive = yes $mon s, archive = no $mpur s: adds $madd s | $(ratio "$madd" "$mexp") | <= 1.0: $(verdict "$(ratio "$madd" "$mexp")" 1.0) |"
	echo "| same, archive = yes, a client PINGing meanwhile: its longest wait; the server's longest event | | $(median "${aonw[@]}") ms; $(median "${aons[@]}") ms | | |"
	echo "archive = yes, each run (reads by hand s vs purge s / client's longest wait ms / server's longest event ms): $(for i in "${!aref[@]}"; do printf '%s vs %s/%s/%s; ' "${aref[$i]}" "${aon[$i]}" "${aonw[$i]}" "${aons[$i]}"; done | sed 's/; $//'); the last archive: $ainfo; crdb executor peak RSS with archive = yes: $(printf '%s\n' "${arss[@]}" | sort -g | tail -n 1) KiB (target <= 16384: $(verdict "$(printf '%s\n' "${arss[@]}" | sort -g | tail -n 1)" 16384))"
}

# ------------------------------------------------------------------ iTop
# A real iTop 3.2.0 (../shared/peers/itop-up.sh: nginx + php-fpm + MariaDB) behind
# tests/peers/fault_proxy.py, which counts requests and TCP connections. Data seeded by
# tests/peers/itop_seed.py (a few of each class through REST, UserRequests copied in SQL),
# dumped once, restored with MariaDB before every run. Reference: one bulk core/delete per
# class of purged's default scope, in its order (VirtualMachines first among the FunctionalCIs),
# keeping what it keeps (the Persons of User accounts and their Organizations), each by curl;
# the password read from a file. Both must leave the same objects.
bench_itop() {
	local peers=$SRC/../shared/peers
	if [ ! -x "$peers/itop-up.sh" ] || [ "$(id -u)" != 0 ]; then
		echo "SKIP: bench: iTop purges: needs root and ../shared/peers/itop-up.sh (a real iTop), absent here"
		return
	fi
	local IPORT=${ITOP_BENCH_PORT:-18690} S URL SOCKET PXP RUNS_S=5 RUNS_L=3 sets="small large"
	[ "$QUICK" = 1 ] && RUNS_S=1 sets=small
	S=${ITOP_STATE_ROOT:-/var/tmp/itop-peer}/$IPORT
	install -m 0600 /dev/null "$T/itop-pw"
	# Not "| head -n 1": itop-up.sh prints two lines, and under pipefail its SIGPIPE on the second
	# read as a failed start.
	if ! URL=$("$peers/itop-up.sh" "$IPORT" "$T/itop-pw" 2>"$T/itop-up.log"); then
		FAILS+=("the real iTop did not start: $(tail -n 3 "$T/itop-up.log" | tr '\n' ' ')")
		return
	fi
	URL=$(printf '%s\n' "$URL" | head -n 1)
	ITOP_DOWN="$peers/itop-down.sh $IPORT"
	SOCKET=$S/mysql/mysqld.sock
	PXP=$(free_port)
	FAULT_PROXY_LOG=$T/itop-requests.log python3 "$SRC/tests/peers/fault_proxy.py" "$PXP" "$IPORT" >"$T/itop-proxy.log" 2>&1 &
	PIDS+=($!)
	local PURL=http://127.0.0.1:$PXP/webservices/rest.php
	for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PXP/__stats" -o /dev/null && break; sleep 0.05; done
	local sql="mariadb --no-defaults --socket=$SOCKET -uroot"
	seed() { python3 "$SRC/tests/peers/itop_seed.py" "$URL" purger "$T/itop-pw" seed "$@" "$SOCKET" >/dev/null; }
	dump() { mariadb-dump --no-defaults --socket="$SOCKET" -uroot --single-transaction --skip-dump-date itop >"$1"; }
	restore() {
		$sql -e 'DROP DATABASE IF EXISTS itop; CREATE DATABASE itop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' &&
			$sql itop <"$1"
	}
	# ~150 objects across the classes; then one class of 2 500 more.
	local t
	for t in S1 S2 $([ "$QUICK" = 1 ] || echo S3 S4); do seed "$t" 18 || FAILS+=("seeding iTop ($t) failed"); done
	dump "$T/itop-small.sql"
	if [ "$QUICK" != 1 ]; then
		seed L 2500 || FAILS+=("seeding iTop (2 500 UserRequests) failed")
		dump "$T/itop-large.sql"
	fi
	# The request body in a 0600 file: version, user, password (url-encoded) and json_data.
	install -m 0600 /dev/null "$T/itop-auth"
	printf 'version=1.3&auth_user=purger&auth_pwd=%s' "$(jq -sRr @uri <"$T/itop-pw")" >"$T/itop-auth"
	icall() { # JSON -> iTop's answer
		install -m 0600 /dev/null "$T/itop-req"
		{ cat "$T/itop-auth"; printf '&json_data='; printf '%s' "$1" | jq -sRr @uri; } >"$T/itop-req"
		curl -s --data-binary @"$T/itop-req" "$PURL"
	}
	local CLASSES
	CLASSES=$(sed -n '/default_classes\[\] =/,/;/p' "$SRC/daemon/executor/backends/itop.c" | grep -o '"[^"]*"' | tr -d '"\n' | tr , ' ')
	# By hand, the VirtualMachines must go before the other FunctionalCIs: in one bulk delete
	# iTop refuses a Hypervisor that a VirtualMachine of the same request uses (code 100).
	local REFCLASSES=${CLASSES/ FunctionalCI / VirtualMachine FunctionalCI }
	# The typologies purged deletes (not the reference lists iTop's installer ships).
	local TYPOLOGIES
	TYPOLOGIES=$(sed -n 's/.*typologies_purged\[\] = "\(.*\)";/\1/p' "$SRC/daemon/executor/backends/itop.c")
	# reference [floor|simulated]: prints the objects iTop reported deleted. With "floor", each
	# class is also listed once before the deletes and once after them (core/get, ids only): the
	# least a purge that knows what it deletes and checks what is left must ask. "simulated" adds
	# one simulation of each class right before its delete: the issue's own budget (a real delete
	# stops at its first blocked object, and a cascade could take what keeps access).
	reference() {
		local persons orgs cls key n=0 keys=()
		persons=$(icall '{"operation":"core/get","class":"User","key":"SELECT User","output_fields":"contactid"}' |
			jq -r '[.objects // {} | .[] | .fields.contactid | tostring | select(. != "0")] | join(",")')
		orgs=$(icall "{\"operation\":\"core/get\",\"class\":\"Person\",\"key\":\"SELECT Person WHERE id IN (${persons:-0})\",\"output_fields\":\"org_id\"}" |
			jq -r '[.objects // {} | .[] | .fields.org_id | tostring] | unique | join(",")')
		for cls in $REFCLASSES; do
			key="SELECT $cls"
			case $cls in
			Contact | Person) [ -n "$persons" ] && key="$key WHERE id NOT IN ($persons)" ;;
			Organization) [ -n "$orgs" ] && key="$key WHERE id NOT IN ($orgs)" ;;
			Typology) key=$TYPOLOGIES ;;
			esac
			keys+=("$cls|$key")
		done
		listall() {
			local ck
			for ck in "${keys[@]}"; do
				[ "${ck%%|*}" = VirtualMachine ] && continue # FunctionalCI lists them
				icall "{\"operation\":\"core/get\",\"class\":\"${ck%%|*}\",\"key\":\"${ck#*|}\",\"output_fields\":\"id\"}" >/dev/null
			done
		}
		[ -n "${1:-}" ] && listall
		for ck in "${keys[@]}"; do
			cls=${ck%%|*} key=${ck#*|}
			[ "${1:-}" = simulated ] &&
				icall "{\"operation\":\"core/delete\",\"class\":\"$cls\",\"key\":\"$key\",\"simulate\":true,\"comment\":\"bench reference\"}" >/dev/null
			n=$((n + $(icall "{\"operation\":\"core/delete\",\"class\":\"$cls\",\"key\":\"$key\",\"simulate\":false,\"comment\":\"bench reference\"}" |
				jq '[.objects // {} | .[] | select(.code == 0)] | length')))
		done
		[ -n "${1:-}" ] && listall
		echo "$n"
	}
	left() { # objects of the default classes still there (straight to nginx: not counted)
		python3 - "$SRC/tests/peers" "$URL" "$T/itop-pw" $CLASSES <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from itop_seed import ITop
it = ITop(sys.argv[2], "purger", sys.argv[3])
print(sum(it.count("SELECT " + c) for c in sys.argv[4:]))
PY
	}
	stats() { curl -s "http://127.0.0.1:$PXP/__stats" | jq -r '"\(.requests) \(.connections)"'; }
	# by_hand MODE: the reference in MODE (floor, simulated) on the set's data restored: its
	# seconds in HAND_S, its requests in HAND_REQ.
	by_hand() {
		local h0 h1 hc t
		restore "$T/itop-$set.sql" || FAILS+=("restoring iTop's $set data failed")
		read -r h0 hc <<<"$(stats)"
		t=$(now)
		reference "$1" >/dev/null
		HAND_S=$(secs "$t" "$(now)")
		read -r h1 hc <<<"$(stats)"
		HAND_REQ=$((h1 - h0))
	}
	# Archive on vs off (issue 14): the export's own reads by hand are one core/get with every
	# field ("*") per leaf class of the data, by curl; its leaf classes are listed before, untimed.
	leaves() {
		local cls
		for cls in $CLASSES; do
			icall "{\"operation\":\"core/get\",\"class\":\"$cls\",\"key\":\"SELECT $cls\",\"output_fields\":\"id\"}" |
				jq -r '.objects // {} | .[] | .class'
		done | sort -u
	}
	exportref() { # LEAVES: prints the bytes iTop answered
		local cls
		for cls in $1; do
			icall "{\"operation\":\"core/get\",\"class\":\"$cls\",\"key\":\"SELECT $cls\",\"output_fields\":\"*\"}" | wc -c
		done | awk '{ s += $1 } END { print s + 0 }'
	}
	install -m 0600 /dev/null "$T/itop-pw-purged"
	cat "$T/itop-pw" >"$T/itop-pw-purged"
	printf '[target itop]\ntype = itop\nurl = %s\nuser = purger\npassword_file = %s/itop-pw-purged\n' "$PURL" "$T" >>"$T/targets.conf"
	printf '[target itop-archive]\ntype = itop\nurl = %s\nuser = purger\npassword_file = %s/itop-pw-purged\narchive = yes\n' "$PURL" "$T" >>"$T/targets.conf"
	reload
	local ARC=()
	local set runs r t0 s0 s1 ref=() pur=() flo=() fls=() a b floreq flsreq FLOOR=() PROF PROFILES=() HAND_S HAND_REQ
	echo "## iTop purges (a real iTop 3.2.0 behind nginx + php-fpm, through a counting proxy; alternated runs, medians)"
	echo "| data | reference: one bulk core/delete per class by curl | purged (default scope) | ratio | target |"
	echo "|---|---|---|---|---|"
	for set in $sets; do
		runs=$([ "$set" = small ] && echo "$RUNS_S" || echo "$RUNS_L")
		ref=() pur=() flo=() fls=()
		local exp=() arc=() expbytes expreq arcreq arcinfo arcleft
		local refreq refconn purreq purconn refdel purdel refleft purleft objs
		for r in $(seq 1 "$runs"); do
			restore "$T/itop-$set.sql" || FAILS+=("restoring iTop's $set data failed")
			[ -z "${objs:-}" ] && objs=$(left)
			read -r s0 a <<<"$(stats)"
			t0=$(now)
			refdel=$(reference)
			ref+=("$(secs "$t0" "$(now)")")
			read -r s1 b <<<"$(stats)"
			refreq=$((s1 - s0)) refconn=$((b - a))
			refleft=$(left)
			by_hand floor
			flo+=("$HAND_S") floreq=$HAND_REQ
			by_hand simulated
			fls+=("$HAND_S") flsreq=$HAND_REQ
			restore "$T/itop-$set.sql" || FAILS+=("restoring iTop's $set data failed")
			read -r s0 a <<<"$(stats)"
			t0=$(now)
			$CTL --json purge itop --yes --wait >"$T/cmd.out" 2>"$T/cmd.err" || FAILS+=("iTop purge ($set) failed: $(jq -r .error "$T/cmd.out" 2>/dev/null | head -c 300)")
			pur+=("$(secs "$t0" "$(now)")")
			read -r s1 b <<<"$(stats)"
			purreq=$((s1 - s0)) purconn=$((b - a))
			PROF=$(profile "$T/itop-requests.log" $((s0 + 1)) "$s1")
			purdel=$(jq '[.counts[]] | add // 0' "$T/cmd.out")
			purleft=$(left)
			# The same purge with archive = yes, after the export's own reads by hand.
			[ "$ARCH" = 1 ] || continue
			restore "$T/itop-$set.sql" || FAILS+=("restoring iTop's $set data failed")
			local lv
			lv=$(leaves)
			read -r s0 a <<<"$(stats)"
			t0=$(now)
			expbytes=$(exportref "$lv")
			exp+=("$(secs "$t0" "$(now)")")
			read -r s1 b <<<"$(stats)"
			expreq=$((s1 - s0))
			read -r s0 a <<<"$(stats)"
			t0=$(now)
			$CTL --json purge itop-archive --yes --wait >"$T/cmd.out" 2>"$T/cmd.err" || FAILS+=("iTop purge with archive ($set) failed: $(jq -r .error "$T/cmd.out" 2>/dev/null | head -c 300)")
			arc+=("$(secs "$t0" "$(now)")")
			read -r s1 b <<<"$(stats)"
			arcreq=$((s1 - s0))
			arcinfo=$(jq -r '"\(.archive.records) records, \(.archive.bytes) bytes compressed"' "$T/cmd.out")
			arcleft=$(left)
		done
		local mr mp rr lim
		mr=$(median "${ref[@]}")
		mp=$(median "${pur[@]}")
		rr=$(ratio "$mp" "$mr")
		lim=$([ "$set" = small ] && echo 1.3 || echo 1.1)
		[ "$refleft" = "$purleft" ] || FAILS+=("iTop ($set): the reference left $refleft objects, purged $purleft: they must do the same")
		local mf ms
		mf=$(median "${flo[@]}")
		ms=$(median "${fls[@]}")
		FLOOR+=("| $set | $mr s | $mf s, $floreq requests | $(ratio "$mf" "$mr") | $ms s, $flsreq requests | $(ratio "$ms" "$mr") | $mp s | $(ratio "$mp" "$mf") | $(ratio "$mp" "$ms") |")
		echo "| $set: $objs objects in the default classes ($runs runs) | $mr s, $refreq requests over $refconn connection(s), $refdel deleted, $refleft left | $mp s, $purreq requests over $purconn connection(s), $purdel deleted (confirmed), $purleft left | $rr | <= $lim: $(verdict "$rr" "$lim") |"
		PROFILES+=("$set, the last run's purge, at the peer: $PROF")
		[ "$ARCH" != 1 ] || [ "$arcleft" = "$purleft" ] || FAILS+=("iTop ($set): with archive = yes $arcleft objects were left, without $purleft: they must do the same")
		local me ma extra er
		me=$(median "${exp[@]}")
		ma=$(median "${arc[@]}")
		extra=$(awk -v a="$ma" -v b="$mp" 'BEGIN { printf "%.3f", a - b }')
		er=$(ratio "$extra" "$me")
		[ "$ARCH" = 1 ] && ARC+=("| $set ($runs runs) | $mp s, $purreq requests | $ma s, $arcreq requests, $arcinfo | $extra s | $me s, $expreq requests, $expbytes bytes | $er | <= 1.2: $(cost_verdict "$extra" "$me") |")
		objs=
	done
	echo "the truthful floor by hand: the reference plus one core/get per class before the deletes and one after; then also one simulation per class before its delete (same runs, medians)"
	echo "| data | reference | floor by hand | floor / reference | floor with simulations | / reference | purged | purged / floor | purged / floor with simulations |"
	echo "|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${FLOOR[@]}"
	echo "where purged's time went, by request kind (at the peer; the last run of each data set)"
	printf -- '- %s\n' "${PROFILES[@]}"
	echo "itop executor peak RSS: $(peak_rss) KiB (target <= 16384)"
	if [ "$ARCH" = 1 ]; then
		echo "## iTop purges, archive = yes vs no (same data, same runs, medians; the export's own reads: one core/get \"*\" per leaf class by curl)"
		echo "| data | archive = no | archive = yes | the archive's cost (yes - no) | the export's own reads by hand | cost / reads | target |"
		echo "|---|---|---|---|---|---|---|"
		printf '%s\n' "${ARC[@]}"
	fi
	"$peers/itop-down.sh" "$IPORT" >/dev/null 2>&1
	ITOP_DOWN=
}

# ------------------------------------------------------------------ Redmine
# A real Redmine 5.0 (tests/peers/redmine-up.sh: Debian's packages, SQLite, WEBrick) behind
# tests/peers/fault_proxy.py, which counts requests. Seeded through REST (top-level projects
# each with a subproject and an issue, users, groups with a member), the issues copied in SQL
# up to ~1 000; the database saved once and restored (sqlite3 .restore) before every run.
# Reference: a sequential curl DELETE loop over the same top-level projects, users and groups
# (the API key read from a file). purged: scope = projects, users, groups, default parallel.
bench_redmine() {
	if [ "$(id -u)" != 0 ] || [ ! -d /usr/share/redmine ] || ! command -v sqlite3 >/dev/null; then
		echo "SKIP: bench: Redmine purges: needs root, Redmine's Debian packages (tests/peers/redmine-up.sh installs them) and sqlite3"
		return
	fi
	local NT=30 NU=20 NG=5 NI=1000 RUNS=5 RMP PXP RURL KEY DB i
	[ "$QUICK" = 1 ] && NT=5 NU=5 NG=2 NI=100 RUNS=1
	RMP=$(free_port)
	export REDMINE_STATE=/var/lib/redmine-test
	if ! RURL=$("$SRC/tests/peers/redmine-up.sh" "$RMP" "$T/rm-key" 2>"$T/redmine-up.log"); then
		FAILS+=("Redmine did not start: $(tail -n 3 "$T/redmine-up.log" | tr '\n' ' ')")
		return
	fi
	REDMINE_DOWN="$SRC/tests/peers/redmine-down.sh $RMP"
	DB=$REDMINE_STATE/$RMP/redmine.sqlite3
	PXP=$(free_port)
	FAULT_PROXY_LOG=$T/rm-requests.log python3 "$SRC/tests/peers/fault_proxy.py" "$PXP" "$RMP" >"$T/rm-proxy.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PXP/__stats" -o /dev/null && break; sleep 0.05; done
	local PURL=http://127.0.0.1:$PXP
	install -m 0600 /dev/null "$T/rm-header"
	printf 'X-Redmine-API-Key: %s\n' "$(cat "$T/rm-key")" >"$T/rm-header"
	api() { curl -s -X "$1" -H @"$T/rm-header" -H 'Content-Type: application/json' ${3:+-d "$3"} "$RURL$2"; }
	local tops=() users=() groups=() p c u g
	for i in $(seq 1 "$NT"); do
		p=$(api POST /projects.json "{\"project\":{\"name\":\"Bench $i\",\"identifier\":\"bench-$i\"}}" | jq -r .project.id)
		c=$(api POST /projects.json "{\"project\":{\"name\":\"Bench $i child\",\"identifier\":\"bench-$i-child\",\"parent_id\":$p}}" | jq -r .project.id)
		tops+=("$p")
		for p in "$p" "$c"; do api POST /issues.json "{\"issue\":{\"project_id\":$p,\"subject\":\"issue of $p\"}}" >/dev/null; done
	done
	for i in $(seq 1 "$NU"); do
		users+=("$(api POST /users.json "{\"user\":{\"login\":\"bench$i\",\"firstname\":\"B$i\",\"lastname\":\"Bench\",\"mail\":\"bench$i@example.invalid\",\"password\":\"secret-pass-123\"}}" | jq -r .user.id)")
	done
	for i in $(seq 1 "$NG"); do
		g=$(api POST /groups.json "{\"group\":{\"name\":\"Bench group $i\"}}" | jq -r .group.id)
		groups+=("$g")
		api POST "/groups/$g/users.json" "{\"user_id\":${users[$((i - 1))]}}" >/dev/null
	done
	# ~NI issues: each seeded issue copied K times in SQL.
	local K=$(((NI + 2 * NT - 1) / (2 * NT) - 1))
	sqlite3 "$DB" "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $K)
		INSERT INTO issues (tracker_id, project_id, subject, status_id, priority_id, author_id, lock_version,
			created_on, updated_on, start_date, done_ratio, is_private, lft, rgt)
		SELECT tracker_id, project_id, subject || ' copy ' || n, status_id, priority_id, author_id, 0,
			created_on, updated_on, start_date, 0, 0, 1, 2 FROM issues, seq;
		UPDATE issues SET root_id = id WHERE root_id IS NULL;" || FAILS+=("copying Redmine issues failed")
	NI=$(sqlite3 "$DB" 'SELECT count(*) FROM issues')
	case " ${tops[*]} ${users[*]} ${groups[*]} " in *" null "* | *"  "*) FAILS+=("seeding Redmine failed (an id is missing)") ;; esac
	sqlite3 "$DB" ".backup $T/rm-seed.db"
	restore() { sqlite3 "$DB" ".restore $T/rm-seed.db"; }
	left() { sqlite3 "$DB" "SELECT (SELECT count(*) FROM projects) || ' projects, ' || (SELECT count(*) FROM issues) || ' issues, ' || (SELECT count(*) FROM users WHERE type = 'User' AND admin = 0) || ' users, ' || (SELECT count(*) FROM users WHERE type = 'Group') || ' groups'"; }
	reference() {
		local x bad=0
		for x in "${tops[@]/#/projects/}" "${users[@]/#/users/}" "${groups[@]/#/groups/}"; do
			case $(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H @"$T/rm-header" "$PURL/$x.json") in 204 | 200) ;; *) bad=$((bad + 1)) ;; esac
		done
		[ "$bad" = 0 ] || FAILS+=("Redmine reference: $bad DELETEs not answered 204")
	}
	reqs() { curl -s "$PURL/__stats" | jq .requests; }
	# The truthful floor by hand: the reference's DELETEs plus the reads a purge that knows what it
	# deletes and checks what is left needs on Redmine 5.0: before, the key's user, the project
	# list, every issue page, and the ids past the highest known (archived projects are never
	# listed: 403 vs 404); after, the lists again and every id again, by curl, the
	# lists one at a time and the ids 4 at once like purged. The ids are taken from the
	# database beforehand, untimed.
	floor() {
		local ids maxid o k
		ids=$(sqlite3 "$DB" 'SELECT id FROM projects ORDER BY id')
		maxid=$(tail -n 1 <<<"$ids")
		lists() { # OFFSETS_OF_ISSUE_PAGES
			printf 'url = "%s/users/current.json"\noutput = "/dev/null"\n' "$PURL"
			printf 'url = "%s/projects.json?status=1%%7C5&limit=100"\noutput = "/dev/null"\n' "$PURL"
			for o in $1; do
				printf 'url = "%s/issues.json?status_id=*&sort=id&limit=100&offset=%s"\noutput = "/dev/null"\n' "$PURL" "$o"
			done
			printf 'url = "%s/users.json?status=&limit=100"\noutput = "/dev/null"\n' "$PURL"
			printf 'url = "%s/groups.json"\noutput = "/dev/null"\n' "$PURL"
		}
		probes() { for k in "$@"; do printf 'url = "%s/projects/%s.json"\noutput = "/dev/null"\n' "$PURL" "$k"; done; }
		lists "$(seq 0 100 $((NI - 1)))" >"$T/rm-floor-before"
		probes $(seq $((maxid + 1)) $((maxid + 50))) >"$T/rm-floor-probes-before"
		lists 0 >"$T/rm-floor-after"
		probes $(seq 1 $((maxid + 50))) >"$T/rm-floor-probes-after"
		curl -s -H @"$T/rm-header" -K "$T/rm-floor-before"
		curl -s --parallel --parallel-max 4 -H @"$T/rm-header" -K "$T/rm-floor-probes-before"
		reference
		curl -s -H @"$T/rm-header" -K "$T/rm-floor-after"
		curl -s --parallel --parallel-max 4 -H @"$T/rm-header" -K "$T/rm-floor-probes-after"
	}
	install -m 0600 /dev/null "$T/rm-key-purged"
	cat "$T/rm-key" >"$T/rm-key-purged"
	printf '[target redmine]\ntype = redmine\nurl = %s/\napi_key_file = %s/rm-key-purged\nscope = projects, users, groups\n' "$PURL" "$T" >>"$T/targets.conf"
	printf '[target redmine-archive]\ntype = redmine\nurl = %s/\napi_key_file = %s/rm-key-purged\nscope = projects, users, groups\narchive = yes\n' "$PURL" "$T" >>"$T/targets.conf"
	reload
	# Archive on vs off (issue 14): the export's own reads by hand are the GETs purged's export
	# makes (each project with its versions, memberships, wiki index and issue list; each issue
	# with its journals; each user and group), listed from Redmine's lists (untimed) into a curl
	# config and fetched by one curl, 4 at once over reused connections like purged (parallel 4).
	exporturls() {
		local p i o x
		for p in $(api GET '/projects.json?status=1%7C5&limit=100' | jq -r '.projects[].id'); do
			for x in ".json?include=trackers,issue_categories,enabled_modules" /versions.json "/memberships.json?limit=100" \
				/wiki/index.json "/issues.json?status_id=*&subproject_id=!*&sort=id&limit=100"; do
				printf 'url = "%s/projects/%s%s"\noutput = "/dev/null"\n' "$PURL" "$p" "$x"
			done
		done
		for o in $(seq 0 100 $((NI + 100))); do
			for i in $(api GET "/issues.json?status_id=*&limit=100&offset=$o" | jq -r '.issues[].id'); do
				printf 'url = "%s/issues/%s.json?include=journals,attachments,relations,watchers"\noutput = "/dev/null"\n' "$PURL" "$i"
			done
		done
		for i in $(api GET '/users.json?status=&limit=100' | jq -r '.users[] | select(.admin | not) | .id'); do
			printf 'url = "%s/users/%s.json?include=memberships,groups"\noutput = "/dev/null"\n' "$PURL" "$i"
		done
		for i in $(api GET '/groups.json' | jq -r '.groups[].id'); do
			printf 'url = "%s/groups/%s.json?include=users,memberships"\noutput = "/dev/null"\n' "$PURL" "$i"
		done
	}
	local exp=() arc=() expreq arcreq arcinfo arcleft
	local ref=() pur=() flo=() r t0 a refreq purreq floreq refleft purleft before PROF
	before=$(left)
	for r in $(seq 1 "$RUNS"); do
		restore || FAILS+=("restoring Redmine's database failed")
		a=$(reqs)
		t0=$(now)
		reference
		ref+=("$(secs "$t0" "$(now)")")
		refreq=$(($(reqs) - a))
		refleft=$(left)
		restore || FAILS+=("restoring Redmine's database failed")
		a=$(reqs)
		t0=$(now)
		floor
		flo+=("$(secs "$t0" "$(now)")")
		floreq=$(($(reqs) - a))
		restore || FAILS+=("restoring Redmine's database failed")
		a=$(reqs)
		t0=$(now)
		$CTL --json purge redmine --yes --wait >"$T/cmd.out" 2>"$T/cmd.err" || FAILS+=("Redmine purge failed: $(jq -r .error "$T/cmd.out" 2>/dev/null | head -c 300)")
		pur+=("$(secs "$t0" "$(now)")")
		purreq=$(($(reqs) - a))
		PROF=$(profile "$T/rm-requests.log" $((a + 1)) $((a + purreq)))
		purleft=$(left)
		[ "$ARCH" = 1 ] || continue
		restore || FAILS+=("restoring Redmine's database failed")
		exporturls >"$T/rm-urls"
		a=$(reqs)
		t0=$(now)
		curl -s --no-progress-meter --parallel --parallel-max 4 -H @"$T/rm-header" -K "$T/rm-urls" || FAILS+=("Redmine: the export's reads by curl failed")
		exp+=("$(secs "$t0" "$(now)")")
		expreq=$(($(reqs) - a))
		a=$(reqs)
		t0=$(now)
		$CTL --json purge redmine-archive --yes --wait >"$T/cmd-arc.out" 2>"$T/cmd.err" || FAILS+=("Redmine purge with archive failed: $(jq -r .error "$T/cmd-arc.out" 2>/dev/null | head -c 300)")
		arc+=("$(secs "$t0" "$(now)")")
		arcreq=$(($(reqs) - a))
		arcinfo=$(jq -r '"\(.archive.records) records, \(.archive.bytes) bytes compressed"' "$T/cmd-arc.out")
		arcleft=$(left)
	done
	[ "$ARCH" != 1 ] || [ "$arcleft" = "$purleft" ] || FAILS+=("Redmine: with archive = yes $arcleft were left, without $purleft: they must do the same")
	[ "$refleft" = "$purleft" ] || FAILS+=("Redmine: the reference left $refleft, purged $purleft: they must do the same")
	local mr mp rr
	mr=$(median "${ref[@]}")
	mp=$(median "${pur[@]}")
	rr=$(ratio "$mp" "$mr")
	echo "## Redmine purges (a real Redmine 5.0, SQLite, WEBrick, through a counting proxy; $RUNS alternated runs, medians)"
	echo "| data | reference: sequential curl DELETE loop | purged (scope projects, users, groups; parallel default) | ratio | target |"
	echo "|---|---|---|---|---|"
	echo "| $NT project trees, $NI issues, $NU users, $NG groups ($before in all) | $mr s, $refreq requests | $mp s, $purreq requests, counts $(jq -c .counts "$T/cmd.out") | $rr | <= 1.1: $(verdict "$rr" 1.1) |"
	echo "left after each: reference $refleft; purged $purleft"
	echo "where purged's time went (the last run, at the peer, by request kind): $PROF"
	local mf
	mf=$(median "${flo[@]}")
	echo "the truthful floor by hand (the reference's DELETEs plus the reads a checked purge needs, see floor()): $mf s, $floreq requests; floor / reference $(ratio "$mf" "$mr"); purged / floor $(ratio "$mp" "$mf")"
	echo "redmine executor peak RSS: $(peak_rss) KiB (target <= 16384)"
	if [ "$ARCH" != 1 ]; then
		$REDMINE_DOWN >/dev/null 2>&1
		REDMINE_DOWN=
		return
	fi
	local me ma extra er
	me=$(median "${exp[@]}")
	ma=$(median "${arc[@]}")
	extra=$(awk -v a="$ma" -v b="$mp" 'BEGIN { printf "%.3f", a - b }')
	er=$(ratio "$extra" "$me")
	echo "## Redmine purges, archive = yes vs no (same data, same runs, medians; the export's own reads: the same GETs by one curl, 4 at once)"
	echo "| data | archive = no | archive = yes | the archive's cost (yes - no) | the export's own reads by hand | cost / reads | target |"
	echo "|---|---|---|---|---|---|---|"
	echo "| $NT project trees, $NI issues, $NU users, $NG groups | $mp s, $purreq requests | $ma s, $arcreq requests, $arcinfo | $extra s | $me s, $expreq requests | $er | <= 1.2: $(cost_verdict "$extra" "$me") |"
	$REDMINE_DOWN >/dev/null 2>&1
	REDMINE_DOWN=
}

for part in $PARTS; do
	case $part in
	redmine) bench_redmine ;;
	redis) bench_redis ;;
	itop) bench_itop ;;
	*) FAILS+=("unknown part '$part' (redis, itop, redmine)") ;;
	esac
done
trap - ERR
if [ ${#FAILS[@]} -gt 0 ]; then
	printf 'bench/backends.sh: FAILED: %s\n' "${FAILS[@]}" >&2
	exit 1
fi
