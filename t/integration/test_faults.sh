#!/bin/bash
# test_faults.sh - faults and abuse with real parts: the DNS server slow,
# silent, SERVFAIL, truncating (TCP retry), oversized and malformed - every
# request still answers within evaluation_timeout with the documented
# temperror; an SPF worker killed mid-evaluation; slowloris clients neither
# delay others nor stay forever; 10,000 idle connections; NUL-bearing and
# non-UTF-8 attributes.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init
h_chain_exit d_stop_all
PY=$(h__python)

cat > "$T/zone" <<'EOF'
$TTL 300
ok.example.          IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
slow.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
$DELAY slow.example 700
silent.example.      IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
$SILENT silent.example
servfail.example.    IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
$SERVFAIL servfail.example
trunc.example.       IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
$TRUNCATE trunc.example
oversize.example.    IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
$OVERSIZE oversize.example
malformed.example.   IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
$MALFORMED malformed.example
EOF
h_dnsd "$T/zone"
# DNS may wait up to 2 x 2 s per question: longer than the 3 s deadline.
d_config a "dns_timeout = 2s" "dns_retries = 1" "evaluation_timeout = 3s" "dmarc_header = no" \
    "max_connections = 12000" "workers = 2"
ulimit -n 30000 2>/dev/null || true
d_start a

# timed NAME SENDER: reply and seconds into $T/NAME.out / $T/NAME.time
timed() {
    d_ask a --time "instance=$1" "sender=x@$2" 2>"$T/$1.time" >"$T/$1.out"
}
within() { awk -v t="$(cat "$T/$1.time")" -v m="$2" 'BEGIN { exit !(t <= m) }'; }

timed f1 slow.example
t_like "$(cat "$T/f1.out")" "Received-SPF: pass" "slow DNS (700 ms): pass"
timed f2 silent.example
t_like "$(cat "$T/f2.out")" "Received-SPF: temperror" "silent DNS: temperror"
t_ok "silent DNS: within evaluation_timeout + 0.5 s ($(cat "$T/f2.time") s)" within f2 3.5
timed f3 servfail.example
t_like "$(cat "$T/f3.out")" "Received-SPF: temperror" "SERVFAIL: temperror"
t_ok "SERVFAIL: answered at once ($(cat "$T/f3.time") s)" within f3 1.0
timed f4 trunc.example
t_like "$(cat "$T/f4.out")" "Received-SPF: pass" "truncated UDP answer: retried over TCP, pass"
timed f5 oversize.example
t_like "$(cat "$T/f5.out")" "^b'action=PREPEND Received-SPF: [a-z]+ " "oversized answer (~47 KB over TCP): a verdict"
t_ok "oversized answer: within the deadline ($(cat "$T/f5.time") s)" within f5 3.5
timed f6 malformed.example
t_like "$(cat "$T/f6.out")" "Received-SPF: temperror" "malformed answers: temperror"
t_ok "malformed answers: within the deadline ($(cat "$T/f6.time") s)" within f6 3.5
timed f7 ok.example
t_like "$(cat "$T/f7.out")" "Received-SPF: pass" "daemon healthy after the DNS faults"

# --- an SPF worker killed mid-evaluation ------------------------------------------
d_ask a --time instance=k1 sender=y@silent.example 2>"$T/k1.time" >"$T/k1.out" &
asker=$!
sleep 0.5
for w in $(pgrep -P "$(d_pid a)"); do kill -KILL "$w"; done
wait $asker
t_like "$(cat "$T/k1.out")" "Received-SPF: temperror" "worker killed mid-evaluation: temperror"
t_ok "... answered without waiting for the deadline ($(cat "$T/k1.time") s)" within k1 1.5
t_like "$(grep 'decision instance=k1 ' "$T/a.log")" "problem=\"spf worker died\"" "... logged as a worker death"
sleep 0.3
t_like "$(d_ask a instance=k2 sender=z@ok.example)" "Received-SPF: pass" "workers replaced: the next evaluation works"

# --- slowloris ---------------------------------------------------------------------------
"$PY" - "$PD_PORT_a" > "$T/slowloris.out" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
payload = b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
start = time.monotonic()
closed = 0
i = 0
while time.monotonic() - start < 14 and closed < len(socks):
    closed = 0
    for s in socks:
        try:
            s.send(payload[i % len(payload):i % len(payload) + 1])
            s.settimeout(0.001)
            if s.recv(1) == b"":
                closed += 1
        except (BlockingIOError, socket.timeout):
            pass
        except OSError:
            closed += 1
    i += 1
    time.sleep(0.5)
print("closed=%d after=%.1f" % (closed, time.monotonic() - start))
PY
slow=$!
sleep 1
d_ask a --time instance=s1 sender=z@ok.example 2>"$T/s1.time" >"$T/s1.out"
t_like "$(cat "$T/s1.out")" "Received-SPF: pass" "a normal request while 20 slowloris clients trickle bytes"
t_ok "... is not delayed ($(cat "$T/s1.time") s)" within s1 0.5
wait $slow
t_like "$(cat "$T/slowloris.out")" "^closed=20 after=1[0-3]\." "slowloris clients are cut by the request timeout (10 s)"

# --- 10,000 idle connections --------------------------------------------------------------
"$PY" - "$PD_PORT_a" "$T/idle.ready" > "$T/idle.out" 2>&1 <<'PY' &
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
port, ready = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(10000):
    socks.append(socket.create_connection(("127.0.0.1", port)))
open(ready, "w").close()
time.sleep(8)
alive = 0
for s in socks:
    s.settimeout(0.0)
    try:
        alive += s.recv(1) != b""
    except BlockingIOError:
        alive += 1
print("alive=%d" % alive)
PY
idle=$!
for i in $(seq 300); do [ -e "$T/idle.ready" ] && break; sleep 0.1; done
t_ok "10,000 idle connections opened" test -e "$T/idle.ready"
d_ask a --time instance=i1 sender=z@ok.example 2>"$T/i1.time" >"$T/i1.out"
t_like "$(cat "$T/i1.out")" "Received-SPF: pass" "a request with 10,000 idle connections open"
t_ok "... answered promptly ($(cat "$T/i1.time") s)" within i1 0.5
rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$(d_pid a)"/status)
t_ok "daemon RSS with 10,000 connections: ${rss} kB (<= 50 MB)" test "$rss" -le 51200
wait $idle
t_is "$(cat "$T/idle.out")" "alive=10000" "idle connections are kept (idle_timeout not reached)"

# --- hostile bytes ----------------------------------------------------------------------------
printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nhelo_name=a\000b\ninstance=n1\n\n' > "$T/nul"
t_is "$(d_ask a --raw "$T/nul")" "EOF" "NUL inside an attribute: closed without a reply"
r=$(d_ask a 'instance=u1' 'client_address=198.51.100.7' 'helo_name=h\xff\xfe.example' 'sender=\xc3\x28x@ok.example')
t_like "$r" "^b'action=PREPEND Received-SPF: " "non-UTF-8 HELO/sender: a verdict"
t_unlike "$r" '\\x(ff|fe|c3)' "... with the invalid bytes replaced, never copied"
t_like "$(d_ask a instance=z1 sender=z@ok.example)" "Received-SPF: pass" "still serving at the end"

t_done
