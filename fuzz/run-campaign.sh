#!/bin/sh
# run-campaign.sh - run libFuzzer campaigns and print, per target, the
# executions, the coverage reached and the crashes found.
#
#   fuzz/run-campaign.sh [-t SECONDS] [-j JOBS] [-b BUILD_DIR] [target...]
#
# Defaults: 60 seconds per target, 2 targets at a time, ./build-fuzz (configure
# it with: CC=clang cmake -S . -B build-fuzz -DPD_FUZZ=ON -DPD_SANITIZE=ON), and
# every fuzz_* target built there. Each target starts from its seeds in
# fuzz/corpus/<target>/ (only read) and a working corpus in
# BUILD_DIR/fuzz-work/<target>/ (kept between campaigns); crash inputs land in
# BUILD_DIR/fuzz-artifacts/<target>/ and the log in BUILD_DIR/fuzz-logs/.
# Exit status 1 when any target crashed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=60
jobs=2
build="$top/build-fuzz"
while getopts t:j:b: opt; do
    case $opt in
    t) secs=$OPTARG ;;
    j) jobs=$OPTARG ;;
    b) build=$(cd "$OPTARG" && pwd) ;;
    *) echo "usage: $0 [-t SECONDS] [-j JOBS] [-b BUILD_DIR] [target...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
    set --
    for t in "$top"/fuzz/fuzz_*.c; do
        t=$(basename "$t" .c)
        [ -x "$build/$t" ] && set -- "$@" "$t"
    done
fi
[ $# -gt 0 ] || { echo "run-campaign: no fuzz targets built in $build" >&2; exit 2; }
mkdir -p "$build/fuzz-logs"

# Longer inputs where a record or a report needs room (the CVE-2023-42118
# shapes are ~4.5 KB records).
maxlen() {
    case $1 in
    fuzz_spf | fuzz_rxml | fuzz_cfg | fuzz_pp) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

run_one() {
    t=$1
    work="$build/fuzz-work/$t"
    art="$build/fuzz-artifacts/$t"
    log="$build/fuzz-logs/$t.log"
    mkdir -p "$work" "$art"
    # -fork=1 keeps the campaign going after a crash (each crash is saved);
    # leaks are reported as crashes too.
    "$build/$t" -max_total_time="$secs" -max_len="$(maxlen "$t")" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 -fork=1 -ignore_crashes=1 \
        -ignore_timeouts=1 -ignore_ooms=1 -artifact_prefix="$art/" \
        "$work" "$top/fuzz/corpus/$t" >"$log" 2>&1 || true
}

summary() {
    t=$1
    log="$build/fuzz-logs/$t.log"
    # fork mode prints "#N: cov: C ft: F corp: ... exec/s: E ... oom/timeout/crash: a/b/c"
    last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -n 1)
    execs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    crashes=$(find "$build/fuzz-artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' \
        -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    printf '%-12s %6ss  execs %-10s cov %-6s artifacts %s\n' "$t" "$secs" "${execs:-?}" \
        "${cov:-?}" "$crashes"
    [ "$crashes" -eq 0 ]
}

# A simple job pool: at most $jobs campaigns at a time.
pids=""
for t in "$@"; do
    while [ "$(echo "$pids" | wc -w)" -ge "$jobs" ]; do
        sleep 1
        np=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && np="$np $p"; done
        pids=$np
    done
    echo "run-campaign: $t for ${secs}s" >&2
    run_one "$t" &
    pids="$pids $!"
done
wait

status=0
for t in "$@"; do
    summary "$t" || status=1
done
exit $status
