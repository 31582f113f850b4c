#!/bin/bash
# test_metrics.sh - the daemon's Prometheus endpoint (metrics_listen) end to
# end: policy requests against the test DNS server move the policyd_dmarc_*
# counters, gauges and the latency histogram by the expected amounts; the
# exposition is well formed (checked by a small parser: one HELP/TYPE per
# family, families contiguous, valid sample lines, unique series, histogram
# buckets cumulative with +Inf = _count); 404/405; the endpoint survives
# SIGHUP and goes away with the daemon.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init
h_chain_exit d_stop_all

cat > "$T/zone" <<'EOF'
$TTL 300
spf-pass.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
mail.spf-pass.example.   IN A   192.0.2.7
reject.example.          IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.reject.example.   IN TXT "v=DMARC1; p=reject"
EOF
h_dnsd "$T/zone" || h_bail "t-dnsd did not start"

MPORT=$(h_free_port) || h_bail "no free port"
d_config a "metrics_listen = inet:127.0.0.1:$MPORT" "trusted_networks = 10.0.0.0/8" "dmarc_header = no"
d_start a || h_bail "daemon did not start"
h_wait_port "$MPORT" 10 || h_bail "metrics port $MPORT does not accept connections"

# http METHOD PATH: raw HTTP/1.0 exchange on the metrics port (bash /dev/tcp:
# no proxy settings, no curl needed). Sets H_STATUS, H_HEAD, H_BODY.
http() {
    local raw
    raw=$(
        exec 3<>"/dev/tcp/127.0.0.1/$MPORT" || exit 1
        printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" "$2" >&3
        timeout 5 cat <&3
        echo . # $(...) strips trailing newlines: keep them
    ) || { H_STATUS=; H_HEAD=; H_BODY=; return 1; }
    raw=${raw%.}
    H_HEAD=${raw%%$'\r\n\r\n'*}
    H_BODY=${raw#*$'\r\n\r\n'}
    H_STATUS=$(sed -n '1s/^HTTP\/1\.[01] \([0-9]*\) .*/\1/p' <<<"$H_HEAD")
}

# metric SERIES: the value of one series, e.g. 'x_total{result="pass"}'; empty if absent.
metric() {
    awk -v s="$1" 'substr($0, 1, 1) != "#" { v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == s) print v }' <<<"$H_BODY"
}

# check_format: the text format rules a Prometheus parser enforces, and ours.
check_format() {
    "$(h__python)" - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
errs = []
if not text.endswith("\n"):
    errs.append("does not end with a newline")
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label_re = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample_re = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)$" % (name_re, label_re, label_re))
help_seen, type_of, done, series = set(), {}, set(), set()
current = None
hist = {}
for n, line in enumerate(text.splitlines(), 1):
    m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % name_re, line)
    if m:
        kind, fam, rest = m.groups()
        if fam != current:
            if fam in done:
                errs.append("%d: family %s appears twice" % (n, fam))
            if current:
                done.add(current)
            current = fam
        if kind == "HELP":
            if fam in help_seen:
                errs.append("%d: second HELP for %s" % (n, fam))
            help_seen.add(fam)
        else:
            if fam in type_of:
                errs.append("%d: second TYPE for %s" % (n, fam))
            if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                errs.append("%d: bad type %s" % (n, rest))
            type_of[fam] = rest
        continue
    if line.startswith("#") or line == "":
        errs.append("%d: unexpected line %r" % (n, line))
        continue
    m = sample_re.match(line)
    if not m:
        errs.append("%d: bad sample line %r" % (n, line))
        continue
    name, labels, value = m.group(1), m.group(2) or "", m.group(3)
    try:
        v = float(value.replace("Inf", "inf"))
    except ValueError:
        errs.append("%d: bad value %r" % (n, value))
        continue
    fam = name
    t = type_of.get(current)
    if t == "histogram":
        for suf in ("_bucket", "_sum", "_count"):
            if name == current + suf:
                fam = current
    if fam != current or current not in type_of:
        errs.append("%d: sample %s outside its family's block (TYPE first)" % (n, name))
    if t == "counter" and not name.endswith("_total"):
        errs.append("%d: counter %s without _total" % (n, name))
    if t in ("counter", "histogram") and v < 0:
        errs.append("%d: negative %s" % (n, name))
    key = (name, labels)
    if key in series:
        errs.append("%d: duplicate series %s{%s}" % (n, name, labels))
    series.add(key)
    if t == "histogram":
        base = re.sub(r',?le="[^"]*"', "", labels)
        h = hist.setdefault((current, base), {"b": [], "count": None})
        if name.endswith("_bucket"):
            le = re.search(r'le="([^"]*)"', labels)
            if not le:
                errs.append("%d: bucket without le" % n)
            else:
                h["b"].append((float(le.group(1).replace("Inf", "inf")), v))
        elif name.endswith("_count"):
            h["count"] = v
for (fam, base), h in hist.items():
    b = h["b"]
    if not b or b[-1][0] != float("inf"):
        errs.append("%s: no +Inf bucket last" % fam)
        continue
    if [x for x, _ in b] != sorted(x for x, _ in b):
        errs.append("%s: bucket bounds not ascending" % fam)
    if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
        errs.append("%s: buckets not cumulative" % fam)
    if h["count"] != b[-1][1]:
        errs.append("%s: _count %s != +Inf bucket %s" % (fam, h["count"], b[-1][1]))
for e in errs:
    print("#   " + e)
sys.exit(1 if errs else 0)
EOF
}

# --- before any request --------------------------------------------------------
# d_start's readiness probe (h_wait_port) opened and closed a connection to the
# policy port; on a loaded machine the daemon may not have seen that close when
# the first scrape arrives. Scrape until it has (2 s at most); the checks below
# then see a daemon that never had a request.
for _ in $(seq 40); do
    http GET /metrics
    [[ $(metric policyd_dmarc_connections_open) == 0 ]] && break
    sleep 0.05
done
t_is "$H_STATUS" "200" "GET /metrics: 200"
t_like "$H_HEAD" '^Content-Type: text/plain; version=0\.0\.4' "content type of the text format 0.0.4"
printf '%s' "$H_BODY" > "$T/m0.txt"
t_ok "exposition is well formed (fresh daemon)" check_format "$T/m0.txt"
t_is "$(metric 'policyd_dmarc_requests_total{protocol_state="RCPT"}')" "0" "requests_total 0 before any request"
t_is "$(metric policyd_dmarc_connections_open)" "0" "connections_open 0"
t_is "$(metric 'policyd_dmarc_build_info{version="'"$("$PD_BUILD/policyd-dmarc" -V | awk '{print $2}')"'"}')" "1" \
    "build_info carries the version"
missing=
for f in 'requests_total{protocol_state="RCPT"}' 'actions_total{action="PREPEND"}' \
    'dmarc_results_total{result="fail"}' messages_total dns_queries_total dns_cache_hits_total dns_timeouts_total \
    dns_errors_total spf_worker_queue_depth spf_workers_busy spf_evaluations_total \
    spf_worker_deaths_total connections_open connections_accepted_total \
    'connections_refused_total{reason="limit"}' 'connections_closed_total{reason="idle"}' \
    'connections_closed_total{reason="timeout"}' 'connections_closed_total{reason="malformed"}' \
    evaluation_duration_seconds_count 'spf_results_total{result="pass"}' \
    'dispositions_total{disposition="reject"}' dmarc_discovery_cache_hits_total \
    spf_verdict_cache_hits_total spf_verdict_cache_domain_hits_total; do
    [[ -n "$(metric "policyd_dmarc_$f")" ]] || missing="$missing $f"
done
t_is "${missing:-}" "" "every documented series is present"
t_unlike "$H_BODY" "policyd_dmarc_redis_|policyd_dmarc_greylist_" "no Redis/greylisting series when they are off"
t_is "$(grep -c '^policyd_dmarc_spf_workers_idle ' <<<"$H_BODY")" "1" "one sample per unlabelled gauge"
t_is "$(metric policyd_dmarc_spf_workers_idle)" "2" "spf_workers_idle = workers (2)"
accepted0=$(metric policyd_dmarc_connections_accepted_total) # d_start's port probe

# --- traffic -------------------------------------------------------------------
r=$(d_ask a instance=m1 sender=alice@spf-pass.example helo_name=mail.spf-pass.example)
t_like "$r" "Received-SPF: pass" "request 1: SPF pass"
r=$(d_ask a instance=m1 recipient=carol@test.example sender=alice@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "request 2: second RCPT reuses the decision"
r=$(d_ask a instance=m2 client_address=198.51.100.7 sender=bob@spf-pass.example)
t_like "$r" "Received-SPF: fail" "request 3: SPF fail"
r=$(d_ask a instance=m3 client_address=198.51.100.7 sender=eve@reject.example)
t_like "$r" "^b'action=(REJECT|5[0-9][0-9])" "request 4: SPF fail under p=reject: rejected"
r=$(d_ask a instance=m4 client_address=10.1.2.3 sender=bob@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "request 5: trusted network skipped"
# Another local part, same client, HELO and domain as m1: both caches answer
# (the SPF verdict by domain, the DMARC discovery by policy domain).
r=$(d_ask a instance=m5 sender=carol@spf-pass.example helo_name=mail.spf-pass.example)
t_like "$r" "Received-SPF: pass" "request 6: SPF pass from the caches"
t_like "$r" "envelope-from=\"carol@spf-pass.example\"" "request 6: the header names this sender"
printf 'garbage without equals sign\n\n' > "$T/bad"
t_is "$(d_ask a --raw "$T/bad")" "EOF" "malformed request closes the connection"

http GET /metrics
t_is "$H_STATUS" "200" "GET /metrics after traffic: 200"
printf '%s' "$H_BODY" > "$T/m1.txt"
t_ok "exposition is well formed (after traffic)" check_format "$T/m1.txt"
t_is "$(metric 'policyd_dmarc_requests_total{protocol_state="RCPT"}')" "6" "requests_total counts the 6 valid requests (RCPT)"
t_is "$(metric 'policyd_dmarc_actions_total{action="REJECT"}')" "1" "actions_total: one reject"
t_is "$(metric 'policyd_dmarc_dmarc_results_total{result="fail"}')" "1" "dmarc_results_total: one fail"
t_is "$(metric policyd_dmarc_messages_total)" "5" "messages_total 5"
t_is "$(metric policyd_dmarc_messages_evaluated_total)" "4" "messages_evaluated_total 4"
t_is "$(metric 'policyd_dmarc_messages_skipped_total{reason="trusted"}')" "1" "skipped trusted 1"
t_is "$(metric policyd_dmarc_decisions_reused_total)" "1" "decisions_reused_total 1"
t_is "$(metric 'policyd_dmarc_spf_results_total{result="pass"}')" "2" "spf_results_total{result=pass} 2"
t_is "$(metric 'policyd_dmarc_spf_results_total{result="fail"}')" "2" "spf_results_total{result=fail} 2"
t_is "$(metric 'policyd_dmarc_spf_results_total{result="softfail"}')" "0" "spf_results_total{result=softfail} 0"
t_is "$(metric 'policyd_dmarc_dispositions_total{disposition="reject"}')" "1" "dispositions_total{reject} 1"
t_is "$(metric policyd_dmarc_evaluation_duration_seconds_count)" "4" "latency histogram: 4 observations"
t_is "$(metric 'policyd_dmarc_evaluation_duration_seconds_bucket{le="+Inf"}')" "4" "latency histogram: +Inf bucket 4"
t_like "$(metric 'policyd_dmarc_evaluation_duration_seconds_bucket{le="10"}')" "^4$" "all evaluations under 10 s"
t_like "$(metric policyd_dmarc_evaluation_duration_seconds_sum)" "^[0-9.e+-]+$" "latency histogram: _sum is a number"
t_is "$(metric policyd_dmarc_spf_evaluations_total)" "3" "spf_evaluations_total 3 (m5 came from the cache)"
t_is "$(metric policyd_dmarc_spf_verdict_cache_domain_hits_total)" "1" "spf verdict shared by domain: 1 (m5)"
t_is "$(metric policyd_dmarc_dmarc_discovery_cache_hits_total)" "2" "DMARC discovery from the cache: 2 (m2, m5)"
t_like "$(metric policyd_dmarc_dns_queries_total)" "^[1-9][0-9]*$" "dns_queries_total > 0"
t_like "$(metric policyd_dmarc_dns_lookups_total)" "^[1-9][0-9]*$" "dns_lookups_total > 0"
t_is "$(metric policyd_dmarc_dns_timeouts_total)" "0" "dns_timeouts_total 0"
t_is "$(metric policyd_dmarc_spf_workers_busy)" "0" "no SPF worker busy when idle"
t_is "$(metric policyd_dmarc_spf_worker_queue_depth)" "0" "SPF queue empty when idle"
t_is "$(metric policyd_dmarc_spf_worker_deaths_total)" "0" "no SPF worker died"
t_is "$(($(metric policyd_dmarc_connections_accepted_total) - accepted0))" "7" "connections_accepted_total +7"
t_is "$(metric 'policyd_dmarc_connections_closed_total{reason="malformed"}')" "1" "connections closed as malformed: 1"
t_is "$(metric policyd_dmarc_connections_open)" "0" "connections_open back to 0"
# The same series across scrapes: families and label sets do not depend on traffic.
t_is "$(grep -v '^#' "$T/m1.txt" | awk '{print $1}' | md5sum)" \
    "$(grep -v '^#' "$T/m0.txt" | awk '{print $1}' | md5sum)" "the same series before and after traffic"

# --- HTTP edges ----------------------------------------------------------------
http GET /
t_is "$H_STATUS" "404" "GET /: 404"
http GET /metrics/x
t_is "$H_STATUS" "404" "GET /metrics/x: 404"
http POST /metrics
t_is "$H_STATUS" "405" "POST /metrics: 405"
t_like "$H_HEAD" '^Allow: GET, HEAD' "405 names the allowed methods"
http HEAD /metrics
t_is "$H_STATUS$H_BODY" "200" "HEAD /metrics: 200 without a body"
t_is "$(metric 'policyd_dmarc_requests_total{protocol_state="RCPT"}')" "" "HEAD body is empty"

# --- reload and stop -----------------------------------------------------------
kill -HUP "$(d_pid a)"
sleep 0.5
http GET /metrics
t_is "$H_STATUS" "200" "metrics still served after SIGHUP"
t_is "$(metric 'policyd_dmarc_requests_total{protocol_state="RCPT"}')" "6" "counters survive SIGHUP"
# A reload empties the DMARC discovery cache (the PSL, mode or method may
# have changed): the same policy domain is discovered again.
r=$(d_ask a instance=m6 sender=dave@spf-pass.example helo_name=mail.spf-pass.example)
t_like "$r" "Received-SPF: pass" "after SIGHUP: SPF pass"
http GET /metrics
t_is "$(metric policyd_dmarc_dmarc_discovery_cache_hits_total)" "2" "after SIGHUP: discovery not taken from the emptied cache"
t_is "$(metric policyd_dmarc_messages_evaluated_total)" "5" "after SIGHUP: the message was evaluated"
d_stop a
t_is "$D_RC" "0" "daemon exits 0 on SIGTERM"
t_ok "metrics port closed after exit" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$MPORT) 2>/dev/null"

# --- the Redis counter writer's metrics -----------------------------------------------
# wait_metric SERIES ERE: scrape until SERIES matches, up to 5 s.
wait_metric() {
    local n=50
    while ((n-- > 0)); do
        http GET /metrics && grep -qE -- "$2" <<<"$(metric "$1")" && return 0
        sleep 0.1
    done
    echo "#   $1 = '$(metric "$1")', want /$2/"
    return 1
}
h_redis || h_bail "redis did not start"
MPORT=$(h_free_port) || h_bail "no free port"
d_config c "metrics_listen = inet:127.0.0.1:$MPORT" "redis = tcp:127.0.0.1:$REDIS_PORT" "dmarc_header = no"
d_start c || h_bail "daemon c did not start"
t_ok "redis: redis_up 1 once connected" wait_metric policyd_dmarc_redis_up '^1$'
t_is "$(metric policyd_dmarc_redis_rows_written_total)" "0" "redis: nothing written yet"
# Counted: messages with a DMARC record; a reject at once (others at END-OF-MESSAGE).
d_ask c instance=r1 client_address=198.51.100.7 sender=eve@reject.example >/dev/null
t_ok "redis: a rejected message is written (rows_written_total 1)" wait_metric policyd_dmarc_redis_rows_written_total '^1$'
t_ok "exposition is well formed (with Redis)" check_format <(printf '%s' "$H_BODY")
h_redis_kill
t_ok "redis: redis_up 0 after Redis died" wait_metric policyd_dmarc_redis_up '^0$'
d_ask c instance=r2 client_address=198.51.100.7 sender=eve@reject.example >/dev/null
t_ok "redis: the row waits in the buffer (rows_buffered 1)" wait_metric policyd_dmarc_redis_rows_buffered '^1$'
t_is "$(metric policyd_dmarc_redis_rows_dropped_total)" "0" "redis: nothing dropped"
d_stop c

# --- a bad metrics_listen is a configuration error ---------------------------------
printf 'metrics_listen = inet:127.0.0.1\n' > "$T/bad.conf"
out=$("$PD_BUILD/policyd-dmarc" -n -c "$T/bad.conf" 2>&1); rc=$?
t_is "$rc" "1" "-n: metrics_listen without a port is refused"
t_like "$out" "bad\.conf:1" "... naming file:line"

# The port is taken: the daemon must not start without its metrics.
busy=$(h_free_port)
"$(h__python)" -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(30)' "$busy" &
H_PIDS+=("$!")
h_wait_port "$busy" 5
d_config b "metrics_listen = inet:127.0.0.1:$busy"
timeout 10 "$PD_BUILD/policyd-dmarc" -c "$T/b.conf" 2>"$T/b.log"; rc=$?
t_is "$rc" "1" "metrics port in use: the daemon exits 1 at start"
t_like "$(cat "$T/b.log")" "metrics" "... and says why"

t_done
