#!/bin/bash
# bench/report.sh - scenario 6: policyd-dmarc-report drains ROWS distinct rows
# over DOMAINS policy domains (seeded with the daemon's own encodings through
# t-rseed and redis-cli --pipe) into .xml.gz files; prints wall time, peak RSS
# and the file count. Target: 1,000,000 rows over 10,000 domains in <= 30 s
# with peak RSS <= 100 MB. A private redis-server on loopback, stopped by PID.
#   PD_BUILD  build directory (default ./build)   DOMAINS (10000)   PER (100 rows each)
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../t/lib/harness.sh"
h_init
DOMAINS=${DOMAINS:-10000}
PER=${PER:-100}
day=20261120
h_redis
"$(h__python)" - "$DOMAINS" "$PER" "$day" >"$T/spec" <<'PY'
import sys
n, per, day = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for d in range(n):
    dom = "d%d.bench.example" % d
    print("pol %s %s 1763596800 1763683199 p=reject rua=mailto:dmarc@%s" % (dom, day, dom))
    print("rows %s %s %d 3" % (dom, day, per))
PY
"$PD_BUILD/t-rseed" -p rb <"$T/spec" | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
printf 'redis = tcp:127.0.0.1:%s\nredis_prefix = rb\nreport_org_name = bench\nreport_email = dmarc@bench.example\nallow_root = yes\ndns_servers = 127.0.0.1:9\nlog = stderr\nlog_level = warning\n' \
    "$REDIS_PORT" >"$T/rb.conf"
mkdir -p "$T/out"
/usr/bin/time -v "$PD_BUILD/policyd-dmarc-report" -c "$T/rb.conf" --day 2026-11-20 \
    --output-dir "$T/out" -q 2>"$T/time"
rc=$?
echo "rows=$((DOMAINS * PER)) domains=$DOMAINS rc=$rc files=$(ls "$T/out" | wc -l)" \
    "wall=$(awk -F': ' '/Elapsed/ { print $2 }' "$T/time")" \
    "peak_rss_kb=$(awk -F': ' '/Maximum resident/ { print $2 }' "$T/time")" \
    "redis_keys_left=$(redis-cli -p "$REDIS_PORT" dbsize)"
