#!/bin/bash
# bench/callgrind.sh - instructions per request of the daemon's main process,
# counted by callgrind: a stable measure on a noisy machine, where rates and
# percentiles are not (docs/performance.md).
#
#   PD_BUILD=build bench/callgrind.sh [hot|grey] [N]
#
# hot:  cached decisions (bench scenario 1's keys: 4 domains x 4 clients)
# grey: greylisting with counters, every message a new triplet (scenario 3)
# N:    requests measured (default 20000)
#
# Method: the daemon runs under `valgrind --tool=callgrind` twice, each time
# warmed up alike and then given 2000 or 2000+N requests; the difference of
# the two totals, divided by N, is what one request costs, start-up and
# warm-up cancelled out. (callgrind_control -z hangs on a process blocked in
# epoll_wait, hence two runs.) Callgrind counts `rep stosb` once per byte:
# memset and memcpy look bigger than they are in time; use perf for time.
# The profiles stay in $OUT (callgrind_annotate them).
#
# Everything runs on loopback and is stopped by PID (t/lib/harness.sh). The
# daemon runs as root here (allow_root = yes): it must write its profile into
# a directory created before it starts.
. "$(dirname "${BASH_SOURCE[0]}")/../t/lib/harness.sh"
h_init
B=${PD_BUILD:-$PD_SRC/build}
MODE=${1:-hot}
N=${2:-20000}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/pd-callgrind.XXXXXX)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || h_bail "valgrind is not installed (apt-get install valgrind)"
for x in "$B/policyd-dmarc" "$B/t-dnsd" "$B/pd-loadgen"; do [[ -x $x ]] || h_bail "missing $x"; done

python3 "$PD_SRC/bench/gen-zone.py" -n 1000 -o "$T/zone" || h_bail "gen-zone"
h_dnsd "$T/zone" || h_bail "t-dnsd"
EXTRA=()
case $MODE in
hot) WARM=(--senders 4 --clients 4 --locals 1 --rcpt-card 1000)
     LOAD=("${WARM[@]}") ;;
grey) h_redis || h_bail "redis"
      EXTRA=("redis = tcp:127.0.0.1:$REDIS_PORT" "greylist = yes")
      WARM=(--senders 4 --clients 4 --rcpt-card 100)
      LOAD=(--seq --senders 4 --clients 4 --rcpt-card 1000000 --fail-pct 0) ;;
*) h_bail "mode: hot or grey" ;;
esac

# one COUNT: total instructions of the main process after warm-up + COUNT.
one() {
    local count=$1 port vp f
    port=$(h_free_port) || h_bail "no free port"
    {
        echo "listen = inet:127.0.0.1:$port"
        echo "log = stderr"
        echo "log_level = warning"
        echo "hostname = mx.bench.example"
        echo "allow_root = yes"
        echo "dns_servers = 127.0.0.1:$DNS_PORT"
        echo "workers = 4"
        for l in "${EXTRA[@]}"; do echo "$l"; done
    } >"$T/cg.conf"
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$MODE.$count.%p" \
        "$B/policyd-dmarc" -c "$T/cg.conf" 2>>"$OUT/valgrind.log" &
    vp=$!
    H_PIDS+=("$vp")
    h_wait_port "$port" 60 || h_bail "daemon under valgrind did not start"
    "$B/pd-loadgen" -p "$port" -c 4 -n 2000 --timeout 20000 "${WARM[@]}" >/dev/null
    "$B/pd-loadgen" -p "$port" -c 16 -n "$count" --offset $((count * 7)) --timeout 20000 \
        "${LOAD[@]}" >"$OUT/loadgen.$count.out" || h_bail "pd-loadgen failed (see $OUT)"
    h__stop_pid "$vp"
    wait "$vp" 2>/dev/null
    # the main process wrote the largest profile (the workers were idle)
    f=$(ls -S "$OUT/$MODE.$count."* | head -1)
    callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
[[ $MODE == grey ]] && h_redis_cli flushall >/dev/null
a=$(one 2000)
[[ $MODE == grey ]] && h_redis_cli flushall >/dev/null
b=$(one $((2000 + N)))
[[ -n $a && -n $b ]] || h_bail "no callgrind totals (see $OUT/valgrind.log)"
echo "callgrind $MODE: $(((b - a) / N)) instructions per request (main process; $N requests; profiles in $OUT)"
