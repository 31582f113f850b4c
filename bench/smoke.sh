#!/bin/bash
# bench/smoke.sh - ctest bench_smoke: pd-loadgen for 1 s against pd-nullresp and
# against policyd-dmarc (hot cache), asserting that every reply is framed
# exactly ("action=...\n\n") and nothing errs. A few seconds; TAP output.
. "$PD_SRC/t/lib/harness.sh"
h_init
B=$PD_BUILD
for x in pd-loadgen pd-nullresp policyd-dmarc t-dnsd; do
    [[ -x $B/$x ]] || h_bail "missing $B/$x (build it)"
done
python3 "$PD_SRC/bench/gen-zone.py" -n 50 -o "$T/zone" || h_bail "gen-zone.py"
h_dnsd "$T/zone" || h_bail "t-dnsd"

# fields RESULT-LINE: sets the variables r_<key> from "key=value" words.
fields() {
    local w
    for w in $1; do
        [[ $w == *=* ]] && printf -v "r_${w%%=*}" '%s' "${w#*=}"
    done
}
check() { # LABEL RESULT-LINE
    local r_requests=0 r_framing=x r_closed=x r_timeouts=x
    fields "$2"
    h_diag "$2"
    h_check "$1: requests answered" test "$r_requests" -gt 100
    h_is "$r_framing" 0 "$1: no framing errors"
    h_is "$r_closed/$r_timeouts" 0/0 "$1: no closed or timed-out request"
}

NPORT=$(h_free_port)
"$B/pd-nullresp" -p "$NPORT" &
H_PIDS+=($!)
h_wait_port "$NPORT" || h_bail "pd-nullresp"
check nullresp "$("$B/pd-loadgen" -p "$NPORT" -c 8 -d 1 --rcpts 2 --per-conn 50 --label nullresp)"

DPORT=$(h_free_port)
cat >"$T/pd.conf" <<CONF
listen = inet:127.0.0.1:$DPORT
dns_servers = 127.0.0.1:$DNS_PORT
workers = 2
log = stderr
log_level = warning
user = nobody
hostname = mx.bench.example
CONF
"$B/policyd-dmarc" -c "$T/pd.conf" 2>>"$T/pd.log" &
H_PIDS+=($!)
h_wait_port "$DPORT" || { cat "$T/pd.log"; h_bail "policyd-dmarc"; }
out=$("$B/pd-loadgen" -p "$DPORT" -c 8 -d 1 --rcpts 2 --per-conn 50 --senders 50 --label daemon)
check daemon "$out"
h_like "$out" 'actions=.*(PREPEND|DUNNO)' "daemon: decisions seen"
h_done
