#!/bin/bash
# test_dmarc.sh - envelope DMARC end to end: a real Postfix (smtpd on loopback,
# check_policy_service at RCPT and DATA) with swaks/XCLIENT against t-dnsd:
# SPF fail under p=reject is refused at RCPT with 550 (and stays refused for
# later recipients); p=quarantine gets the quarantine action (the
# X-Envelope-DMARC header first); t=y is downgraded; a subdomain uses sp, a
# non-existent subdomain uses np; a SERVFAILing _dmarc name follows the
# temperror setting; a domain with two DMARC records is treated as having
# none. Then, on the raw protocol, the other settings: temperror_action =
# defer, quarantine_action = hold / filter, max_disposition,
# trusted_forwarders, whitelist_sender_domains, weak_spf_disposition, and RFC
# 7489 mode with the PSL and pct.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init
h_chain_exit d_stop_all

cat > "$T/zone" <<'EOF'
$TTL 300
org.example.            IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
org.example.            IN A   192.0.2.1
_dmarc.org.example.     IN TXT "v=DMARC1; p=reject; sp=quarantine; np=reject; rua=mailto:dmarc@org.example"
sub.org.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
sub.org.example.        IN A   192.0.2.2
quar.example.           IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
quar.example.           IN A   192.0.2.3
_dmarc.quar.example.    IN TXT "v=DMARC1; p=quarantine"
testing.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
testing.example.        IN A   192.0.2.4
_dmarc.testing.example. IN TXT "v=DMARC1; p=reject; t=y"
sfail.example.          IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
sfail.example.          IN A   192.0.2.5
_dmarc.sfail.example.   IN TXT "v=DMARC1; p=reject"
$SERVFAIL _dmarc.sfail.example
two.example.            IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
two.example.            IN A   192.0.2.6
_dmarc.two.example.     IN TXT "v=DMARC1; p=reject"
_dmarc.two.example.     IN TXT "v=DMARC1; p=reject; adkim=s"
soft.example.           IN TXT "v=spf1 ip4:192.0.2.0/24 ~all"
soft.example.           IN A   192.0.2.7
_dmarc.soft.example.    IN TXT "v=DMARC1; p=reject"
pct.example.            IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
pct.example.            IN A   192.0.2.8
_dmarc.pct.example.     IN TXT "v=DMARC1; p=reject; pct=0"
EOF
h_dnsd "$T/zone"
d_config pd
d_start pd
h_postfix "inet:127.0.0.1:$PD_PORT_pd" \
    "smtpd_data_restrictions = check_policy_service { inet:127.0.0.1:$PD_PORT_pd, default_action=DUNNO }"

BAD=198.51.100.7 # not in any SPF record here

# send TAG FROM [TO...]: one message from the bad client; swaks output in $T/TAG.log.
send() {
    local tag=$1 from=$2; shift 2
    local to=${*:-bob@test.example}
    h_swaks --from "$from" --to "${to// /,}" --xclient-addr "$BAD" --xclient-helo mx.other.example \
        --header "Subject: $tag" --body "body-$tag" >"$T/$tag.log" 2>&1
}
mail_with() { grep -l -F -- "$1" $(h_mail_files) 2>/dev/null | head -1; }
first_header() { awk '/^$/ { exit } /^(Received-SPF|X-Envelope-DMARC|Authentication-Results):/ { print; exit }' "$1"; }

send reject a@org.example bob@test.example carol@test.example
t_like "$(grep -E '^<\*\* +550' "$T/reject.log" | head -1)" "550 5\.7\.1 <bob@test\.example>: Recipient address rejected: envelope DMARC: org\.example publishes policy reject and SPF fail for $BAD" "p=reject + SPF fail: 550 at RCPT naming the domain and SPF result"
t_is "$(grep -cE '^<\*\* +550 5\.7\.1 <[a-z]+@test\.example>: Recipient address rejected: envelope DMARC' "$T/reject.log")" "2" "the second recipient of the message gets the same reject"
t_is "$(grep -c 'decision .*sender=a@org.example' "$T/pd.log")" "1" "one decision (one evaluation) for the two recipients"

send quar a@quar.example
send testing a@testing.example
send sub a@sub.org.example
send nx a@nx.org.example
send sfail a@sfail.example
send two a@two.example
t_like "$(grep -E '^<\*\* +550' "$T/nx.log" | head -1)" "550 5\.7\.1 .*: Recipient address rejected: envelope DMARC: nx\.org\.example publishes policy reject" "non-existent subdomain: np=reject applies"
t_like "$(grep 'decision .*sender=a@nx.org.example' "$T/pd.log")" "tag=np .*disposition=reject" "np logged as the tag that applied"
h_wait_mail 5 30

f=$(mail_with body-quar)
t_like "$(first_header "$f")" "^X-Envelope-DMARC: fail .*domain=quar\.example; record=quar\.example; policy=quarantine; tag=p; spf=fail; disposition=quarantine" "p=quarantine: X-Envelope-DMARC marks the quarantine, first"
t_ok "p=quarantine: Received-SPF follows at DATA" grep -q '^Received-SPF: fail' "$f"

f=$(mail_with body-testing)
t_like "$(grep '^X-Envelope-DMARC:' "$f")" "policy=reject; tag=p; spf=fail; disposition=quarantine; reason=policy_test_mode" "t=y: reject lowered to quarantine, reason policy_test_mode"

f=$(mail_with body-sub)
t_like "$(grep '^X-Envelope-DMARC:' "$f")" "domain=sub\.org\.example; record=org\.example; policy=quarantine; tag=sp; spf=fail; disposition=quarantine" "existing subdomain: sp applies"

f=$(mail_with body-sfail)
t_ok "SERVFAIL on _dmarc (temperror_action = dunno): accepted" test -n "$f"
t_like "$(grep '^X-Envelope-DMARC:' "$f")" "^X-Envelope-DMARC: temperror .*disposition=none" "SERVFAIL on _dmarc: temperror, never 'no policy'"

f=$(mail_with body-two)
t_ok "two DMARC records: accepted" test -n "$f"
t_like "$(grep '^X-Envelope-DMARC:' "$f")" "^X-Envelope-DMARC: none .*domain=two\.example; spf=fail; disposition=none" "two DMARC records: treated as no policy"

h_swaks --from a@org.example --to bob@test.example --xclient-addr 192.0.2.9 \
    --xclient-helo mail.org.example --body body-pass >"$T/pass.log" 2>&1
h_wait_mail 6 30
f=$(mail_with body-pass)
t_like "$(grep '^X-Envelope-DMARC:' "$f")" "^X-Envelope-DMARC: pass .*policy=reject; tag=p; spf=pass; disposition=none" "SPF pass under p=reject: delivered, dmarc pass"
t_unlike "$(grep -i '^Authentication-Results:' "$f")" "dmarc=" "no dmarc= claimed in Authentication-Results"

# --- the other settings, on the raw protocol ---------------------------------
ask() { d_ask "$1" client_address=$BAD "instance=$2" "sender=$3"; }
d_config b "temperror_action = defer" "quarantine_action = hold" "trusted_forwarders = 203.0.113.0/24" \
    "whitelist_sender_domains = testing.example"
d_start b
t_like "$(ask b b1 a@sfail.example)" "^b'action=DEFER_IF_PERMIT 4\.7\.1 envelope DMARC: temporary DNS failure for sfail\.example" "temperror_action = defer: DEFER_IF_PERMIT 4.7.1"
t_like "$(ask b b2 a@quar.example)" "^b'action=HOLD envelope DMARC quarantine \(quar\.example\)" "quarantine_action = hold: HOLD"
t_like "$(ask b b2 a@quar.example)" "^b'action=PREPEND Received-SPF: fail" "... then the headers on the next requests"
t_like "$(ask b b2 a@quar.example)" "^b'action=PREPEND X-Envelope-DMARC: fail .*disposition=quarantine" "... X-Envelope-DMARC with disposition=quarantine"
t_like "$(d_ask b client_address=203.0.113.5 instance=b3 sender=a@org.example)" "^b'action=PREPEND Received-SPF: fail" "trusted forwarder: not rejected"
t_like "$(grep 'decision instance=b3 ' "$T/b.log")" "disposition=none reason=trusted_forwarder" "trusted forwarder: reason trusted_forwarder"
ask b b4 a@testing.example >/dev/null
t_like "$(grep 'decision instance=b4 ' "$T/b.log")" "disposition=none reason=(policy_test_mode,)?local_policy " "whitelisted sender domain: reason local_policy"

d_config c "max_disposition = quarantine" "quarantine_action = filter:smtp:[127.0.0.1]:10026" \
    "weak_spf_disposition = policy" "dmarc_mode = rfc7489" "org_domain_method = psl" \
    "psl_file = $PD_SHARED/testdata/psl/public_suffix_list.dat"
d_start c
t_is "$(ask c c1 a@org.example)" "b'action=FILTER smtp:[127.0.0.1]:10026\\n\\n'" "max_disposition = quarantine: reject lowered; quarantine_action = filter"
t_like "$(grep 'decision instance=c1 ' "$T/c.log")" "policy=reject .*disposition=quarantine reason=local_policy" "lowered by max_disposition: reason local_policy"
ask c c2 a@soft.example >/dev/null
t_like "$(grep 'decision instance=c2 ' "$T/c.log")" "spf=softfail .*policy=reject .*disposition=quarantine" "weak_spf_disposition = policy: softfail acts on p=reject (capped)"
ask c c3 a@pct.example >/dev/null
t_like "$(grep 'decision instance=c3 ' "$T/c.log")" "policy=reject .*disposition=quarantine reason=sampled_out" "RFC 7489 pct=0: sampled out, next lower policy"
ask b b5 a@pct.example >/dev/null
t_like "$(grep 'decision instance=b5 ' "$T/b.log")" "policy=reject .*disposition=reject" "RFC 9989 mode ignores pct"
ask c c4 a@sub.org.example >/dev/null
t_like "$(grep 'decision instance=c4 ' "$T/c.log")" "record=org\.example .*tag=sp" "PSL mode: org domain from the list, sp for the subdomain"

t_done
