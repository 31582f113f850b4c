#!/bin/bash
# test_counters.sh - counters in Redis shared by two daemons ("two MX
# hosts"): one count per message with the disposition applied, grouped as RFC
# 9990 rows under the domain whose record was used; skipped, deferred and the
# reporter's own mail not counted; redis-server killed and restarted in the
# middle of a run loses no count (within the buffer); count_stage =
# end-of-message counts at END-OF-MESSAGE only. Redis is read directly here;
# test_report.sh drains the same data into reports.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init
h_chain_exit d_stop_all

cat > "$T/zone" <<'EOF'
$TTL 300
org.example.            IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
org.example.            IN A   192.0.2.1
_dmarc.org.example.     IN TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@org.example"
sub.org.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
sub.org.example.        IN A   192.0.2.2
nodmarc.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
nodmarc.example.        IN A   192.0.2.3
EOF
h_dnsd "$T/zone"
h_redis
COMMON=("redis = tcp:127.0.0.1:$REDIS_PORT" "redis_prefix = t" "trusted_networks = 10.0.0.0/8"
    "report_email = dmarc-reports@org.example" "dmarc_header = no")
d_config a "${COMMON[@]}"
d_config b "${COMMON[@]}"
d_start a
d_start b

n=0
# msg DAEMON CLIENT SENDER: one message (instance unique), first RCPT only.
msg() {
    n=$((n + 1))
    d_ask "$1" "instance=c$n" "client_address=$2" "sender=$3" >/dev/null
}
for i in 1 2 3 4 5; do
    msg a 192.0.2.7 alice@org.example      # pass
    msg b 192.0.2.7 alice@org.example      # pass (other MX)
    msg a 198.51.100.7 bob@org.example     # fail -> reject
    msg b 198.51.100.8 bob@sub.org.example # fail under sp -> quarantine
done
msg a 10.1.2.3 x@org.example                # trusted: not counted
msg b 198.51.100.7 x@nodmarc.example        # no DMARC record: not counted
msg a 198.51.100.7 dmarc-reports@org.example # the reporter's own mail: not counted

# rows NAME: "count source_ip disposition spf_result header_from" lines for
# every row under prefix t, sorted.
rows() {
    "$(h__python)" - "$REDIS_PORT" <<'PY'
import subprocess, sys, urllib.parse
port = sys.argv[1]
def cli(*a):
    return subprocess.run(["redis-cli", "-p", port, "--raw", *a], capture_output=True, text=True).stdout.splitlines()
out = []
for key in cli("--scan", "--pattern", "t:rpt:*"):
    kv = cli("HGETALL", key)
    for field, count in zip(kv[0::2], kv[1::2]):
        d = dict((k, urllib.parse.unquote(v)) for k, _, v in (i.partition("=") for i in field.split("&")))
        # Field names of redis/rrow.c's encoding.
        out.append("%s %s %s %s %s %s" % (count, key, d.get("ip"), d.get("disp"), d.get("spfr"),
                   d.get("hdrf")))
print("\n".join(sorted(out)))
PY
}
total() { rows | awk '{ s += $1 } END { print s + 0 }'; }

for i in $(seq 50); do [ "$(total)" = 20 ] && break; sleep 0.1; done
t_is "$(total)" "20" "20 counted messages from two daemons: counts sum to 20"
day=$(date -u +%Y%m%d)
r=$(rows)
t_like "$r" "^10 t:rpt:\{org\.example\}:$day 192\.0\.2\.7 none pass org\.example" "one row for the passes of both MX hosts (count 10)"
t_like "$r" "5 t:rpt:\{org\.example\}:$day 198\.51\.100\.7 reject fail org\.example" "rejects counted as reject"
t_like "$r" "5 t:rpt:\{org\.example\}:$day 198\.51\.100\.8 quarantine fail sub\.org\.example" "subdomain rows under the record's domain, header_from = policy domain"
t_unlike "$r" "nodmarc|10\.1\.2\.3|dmarc-reports" "trusted, no-record and the reporter's own mail not counted"
t_like "$(grep 'sender=dmarc-reports@org.example' "$T/a.log")" "action=DUNNO reason=own_reports" "the reporter's own mail is skipped (DUNNO) with its reason"
t_is "$(redis-cli -p "$REDIS_PORT" --raw SMEMBERS "t:idx:$day")" "org.example" "day index lists the policy domain"
ttl=$(redis-cli -p "$REDIS_PORT" TTL "t:rpt:{org.example}:$day")
t_ok "row hash has a TTL (counter_retention, got $ttl s)" test "$ttl" -gt 500000 -a "$ttl" -le 604800
t_like "$(redis-cli -p "$REDIS_PORT" --raw HGET "t:pol:{org.example}:$day" policy)" "p=reject" "policy snapshot stored beside the rows"

# --- the reporter turns the two daemons' counts into one report ----------------
today=$(date -u +%Y-%m-%d)
mkdir -p "$T/out"
"$PD_BUILD/policyd-dmarc-report" -c "$T/a.conf" --day "$today" --output-dir "$T/out" --keep -q
t_is "$?" "0" "reporter (--day today --output-dir --keep) exits 0"
t_is "$(ls "$T/out" | grep -c '!org\.example!.*\.xml\.gz$')" "1" "one report for org.example from both daemons"
sum=$(gzip -dc "$T"/out/*org.example*.xml.gz | "$(h__python)" -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
ns = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"}
rows = []
for rec in root.findall("d:record", ns):
    r = rec.find("d:row", ns)
    rows.append("%s/%s/%s" % (r.find("d:source_ip", ns).text, r.find("d:policy_evaluated/d:disposition", ns).text, r.find("d:count", ns).text))
print(sum(int(x.rsplit("/", 1)[1]) for x in rows), " ".join(sorted(rows)))')
t_is "$sum" "20 192.0.2.7/none/10 198.51.100.7/reject/5 198.51.100.8/quarantine/5" "the report's counts sum to the 20 messages, rows per source IP and disposition"

# --- Redis killed and restarted mid-run ------------------------------------------
h_redis_kill
for i in $(seq 10); do msg a 198.51.100.9 bob@org.example; msg b 198.51.100.9 bob@org.example; done
t=$(d_ask a --time instance=while-down client_address=198.51.100.9 sender=bob@org.example 2>&1 >/dev/null)
t_ok "decisions while Redis is down are not delayed ($t s)" awk -v t="$t" 'BEGIN { exit !(t < 0.5) }'
h_redis_start_again
# The test Redis keeps nothing on disk, so the restarted one starts empty:
# what must arrive is every row counted while it was away.
for i in $(seq 100); do [ "$(total)" = 21 ] && break; sleep 0.1; done
t_is "$(total)" "21" "Redis killed and restarted: the 21 rows buffered meanwhile arrive, none lost"
t_like "$(cat "$T/a.log")" "redis" "the outage is logged"

# --- count_stage = end-of-message -------------------------------------------------
d_config c "${COMMON[@]}" "count_stage = end-of-message"
d_start c
d_ask c instance=eom1 client_address=192.0.2.7 sender=alice@org.example >/dev/null
sleep 0.5
t_is "$(total)" "21" "end-of-message stage: not counted at RCPT"
d_ask c instance=eom1 protocol_state=END-OF-MESSAGE client_address=192.0.2.7 sender=alice@org.example >/dev/null
for i in $(seq 50); do [ "$(total)" = 22 ] && break; sleep 0.1; done
t_is "$(total)" "22" "end-of-message stage: counted at END-OF-MESSAGE"
d_ask c instance=eom2 client_address=198.51.100.7 sender=bob@org.example >/dev/null
for i in $(seq 50); do [ "$(total)" = 23 ] && break; sleep 0.1; done
t_is "$(total)" "23" "end-of-message stage: a reject is counted at once (it never reaches END-OF-MESSAGE)"

t_done
