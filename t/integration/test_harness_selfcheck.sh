#!/bin/bash
# test_harness_selfcheck.sh: proves the integration harness itself works:
# t-dnsd answers and misbehaves as its zone file says, Redis starts and stops,
# and a private Postfix consults a policy server and delivers to the maildir.
set -u
. "$(dirname "$0")/../lib/harness.sh"
h_init

# ---- t-dnsd ----
cat >"$T/zone" <<'EOF'
$TTL 300
example.com. IN SOA ns1.example.com. admin.example.com. 1 3600 600 86400 3600
example.com. IN A 192.0.2.1
example.com. IN TXT "v=spf1 ip4:192.0.2.0/24" " -all"
www.example.com. IN CNAME example.com.
deep.sub.example.com. IN A 192.0.2.9
slow.example.com. IN A 192.0.2.2
silent.example.com. IN A 192.0.2.3
tc.example.com. IN TXT "truncated over udp"
$DELAY slow.example.com 400
$SILENT silent.example.com
$TRUNCATE tc.example.com
$SERVFAIL *.sf.example.com
$NEGTTL 77
EOF
h_dnsd "$T/zone" || h_bail "t-dnsd did not start"
h_ok "t-dnsd started on port $DNS_PORT"

h_is "$(h_dig +short example.com A)" "192.0.2.1" "A record"
h_is "$(h_dig +short example.com TXT)" '"v=spf1 ip4:192.0.2.0/24" " -all"' "TXT with two strings"
out=$(h_dig nope.example.com A)
h_like "$out" 'status: NXDOMAIN' "NXDOMAIN for a missing name"
h_like "$out" 'example\.com\.[[:space:]]+77[[:space:]]+IN[[:space:]]+SOA.* 77$' \
    "negative answer carries SOA with \$NEGTTL"
out=$(h_dig example.com MX)
h_like "$out" 'status: NOERROR.*' "NODATA is NOERROR"
h_like "$out" 'ANSWER: 0, AUTHORITY: 1' "NODATA: empty answer, SOA in authority"
h_like "$(h_dig sub.example.com A)" 'status: NOERROR' "empty non-terminal is NODATA"
out=$(h_dig +noall +answer WWW.Example.COM A)
# (ldns compresses names case-insensitively: the target may take the
# question's case, which DNS allows.)
h_like "$out" '^WWW\.Example\.COM\.[[:space:]].*CNAME[[:space:]]+[Ee]xample\.[Cc][Oo][Mm]\.' \
    "CNAME in answer, question case echoed"
h_like "$(tr "[:upper:]" "[:lower:]" <<<"$out")" '^example\.com\..*a[[:space:]]+192\.0\.2\.1' "CNAME target chased"

t0=$(date +%s%N)
ans=$(h_dig +short slow.example.com A)
ms=$((($(date +%s%N) - t0) / 1000000))
h_is "$ans" "192.0.2.2" "delayed name answers"
if [[ $ms -ge 300 ]]; then h_ok "\$DELAY took ${ms} ms (>= 300)"; else h_fail "\$DELAY took ${ms} ms"; fi

t0=$(date +%s%N)
out=$(dig @127.0.0.1 -p "$DNS_PORT" +tries=1 +time=1 silent.example.com A 2>&1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [[ $rc -ne 0 && $ms -ge 900 ]] && grep -qE 'timed out|no servers' <<<"$out"; then
    h_ok "\$SILENT times out (${ms} ms)"
else
    h_fail "\$SILENT times out (rc=$rc, ${ms} ms)"
fi

h_like "$(h_dig +notcp +ignore tc.example.com TXT)" 'flags: qr aa tc' "\$TRUNCATE sets TC over UDP"
h_like "$(h_dig +notcp +ignore tc.example.com TXT)" 'ANSWER: 0,' "\$TRUNCATE: no records over UDP"
h_is "$(h_dig +tcp +short tc.example.com TXT)" '"truncated over udp"' "\$TRUNCATE: TCP gets data"
h_like "$(h_dig x.sf.example.com A)" 'status: SERVFAIL' "\$SERVFAIL on *.suffix"
h_like "$(h_dig sf.example.com A)" 'status: NXDOMAIN' "*.suffix does not match suffix itself"
h_like "$(cat "$DNS_QLOG")" '^silent\.example\.com\. A$' "query log records the silent query"

# Reload: a name appears mid-run.
echo 'new.example.com. IN A 192.0.2.50' >>"$T/zone"
h_check "SIGHUP reload" h_dnsd_reload
h_is "$(h_dig +short new.example.com A)" "192.0.2.50" "reloaded data served"
cp "$T/zone" "$T/zone.good"
echo 'broken.example.com. IN A not-an-address' >>"$T/zone"
if h_dnsd_reload >/dev/null; then h_fail "broken zone rejected"; else h_ok "broken zone rejected"; fi
h_is "$(h_dig +short new.example.com A)" "192.0.2.50" "old data still served after a failed reload"
cp "$T/zone.good" "$T/zone"

# ---- Redis ----
h_redis || h_bail "redis did not start"
h_is "$(h_redis_cli ping)" "PONG" "redis PING on port $REDIS_PORT"
rpid=$REDIS_PID
h_redis_stop
if kill -0 "$rpid" 2>/dev/null; then h_fail "redis stopped"; else h_ok "redis stopped"; fi
h_redis_start_again || h_bail "redis did not restart"
h_is "$(h_redis_cli ping)" "PONG" "redis restarted on the same port"

# ---- Postfix + policy server ----
h_fake_policy 'PREPEND X-Selfcheck: yes' || h_bail "policy server did not start"
h_postfix "inet:127.0.0.1:$POLICY_PORT" || h_bail "postfix did not start"
h_ok "postfix smtpd on port $SMTP_PORT"
h_is "$(postconf -c "$PF_DIR" -h mynetworks)" "" "mynetworks is empty (loopback not trusted)"

out=$(h_swaks --to bob@test.example --from a@example.org \
    --xclient-addr 192.0.2.7 --xclient-helo mail.example.org)
rc=$?
h_is "$rc" 0 "swaks delivered the message" || sed 's/^/#   /' <<<"$out" | tail -15
if h_wait_mail 1 15; then
    f=$(h_mail_files | head -1)
    h_like "$(cat "$f")" '^X-Selfcheck: yes' "delivered message carries the policy's header"
else
    h_fail "message delivered to the maildir"
    sed 's/^/#   /' "$PF_LOG" | tail -15
fi
req=$(head -1 "$POLICY_LOG")
h_like "$req" '"client_address": "192\.0\.2\.7"' "policy saw the XCLIENT address"
h_like "$req" '"helo_name": "mail\.example\.org"' "policy saw the XCLIENT HELO"

# An unrelated domain is refused before the policy server (no open relay).
out=$(h_swaks --to x@elsewhere.example --from a@example.org --xclient-addr 192.0.2.7 \
    --quit-after RCPT)
h_like "$out" '<\*\* 554 5\.7\.1' "relay to another domain is refused"

h_postfix_stop
mpid=$(cat "$T/postfix/spool/pid/master.pid" 2>/dev/null)
if [[ -z "$mpid" ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; then
    h_ok "postfix stopped"
else
    h_fail "postfix stopped"
fi

h_done
