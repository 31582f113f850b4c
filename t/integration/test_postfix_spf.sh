#!/bin/bash
# test_postfix_spf.sh - a real Postfix (private instance, smtpd on a loopback
# port, check_policy_service -> policyd-dmarc) driven by swaks with XCLIENT:
# SPF pass and fail from different client addresses arrive with the right
# header; a three-recipient message carries exactly one SPF header; a
# malformed request on a raw socket closes that connection while Postfix
# traffic continues. spf_headers = both with the daemon also listed in
# smtpd_data_restrictions (docs/postfix.md): every message, single-recipient
# ones included, gets exactly one Received-SPF and one Authentication-Results.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init
h_chain_exit d_stop_all

cat > "$T/zone" <<'EOF'
$TTL 300
spf-pass.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
spf-pass.example.        IN A   192.0.2.1
mail.spf-pass.example.   IN A   192.0.2.7
EOF
h_dnsd "$T/zone"
d_config pd "spf_headers = both" "dmarc_header = no"
d_start pd
h_postfix "inet:127.0.0.1:$PD_PORT_pd" \
    "smtpd_data_restrictions = check_policy_service { inet:127.0.0.1:$PD_PORT_pd, default_action=DUNNO }"

# header_of FILE NAME: the values of header NAME (unfolded) in a message file.
header_of() {
    awk -v h="$2" 'BEGIN { IGNORECASE = 1 }
        /^$/ { exit }
        /^[ \t]/ { if (on) v = v $0; next }
        { if (on) print v; on = 0 }
        tolower(substr($0, 1, length(h) + 1)) == tolower(h) ":" { on = 1; v = $0 }
        END { if (on) print v }' "$1"
}

# newest_mail_with TEXT: the delivered message file whose body contains TEXT.
mail_with() {
    grep -l -F -- "$1" $(h_mail_files) 2>/dev/null | head -1
}

h_swaks --from alice@spf-pass.example --to bob@test.example \
    --xclient-addr 192.0.2.7 --xclient-helo mail.spf-pass.example \
    --header "Subject: pass-test" --body "pass-body" >"$T/swaks1.log" 2>&1
t_ok "SPF pass message accepted" grep -q "250 2.0.0 Ok: queued" "$T/swaks1.log"
h_swaks --from bob@spf-pass.example --to bob@test.example \
    --xclient-addr 198.51.100.7 --xclient-helo mx.other.example \
    --header "Subject: fail-test" --body "fail-body" >"$T/swaks2.log" 2>&1
t_ok "SPF fail message accepted (no DMARC enforcement yet)" grep -q "250 2.0.0 Ok: queued" "$T/swaks2.log"
h_swaks --from alice@spf-pass.example --to a@test.example,b@test.example,c@test.example \
    --xclient-addr 192.0.2.8 --xclient-helo mail.spf-pass.example \
    --header "Subject: three-rcpt" --body "three-body" >"$T/swaks3.log" 2>&1
t_ok "three-recipient message accepted" grep -q "250 2.0.0 Ok: queued" "$T/swaks3.log"

# A malformed request on a raw socket to the policy daemon, then more mail.
printf 'this is not a policy request\n\n' > "$T/bad"
t_is "$(d_ask pd --raw "$T/bad")" "EOF" "malformed request on a raw socket: closed, no reply"
h_swaks --from alice@spf-pass.example --to bob@test.example \
    --xclient-addr 192.0.2.9 --xclient-helo mail.spf-pass.example \
    --header "Subject: after-bad" --body "after-body" >"$T/swaks4.log" 2>&1
t_ok "Postfix traffic continues after the malformed request" grep -q "250 2.0.0 Ok: queued" "$T/swaks4.log"

h_wait_mail 6 30
f=$(mail_with pass-body)
t_ok "pass message delivered" test -n "$f"
h=$(header_of "$f" Received-SPF)
t_like "$h" "^Received-SPF: pass \(mx\.test\.example: domain of alice@spf-pass\.example designates 192\.0\.2\.7 as permitted sender\)" "pass message: Received-SPF pass"
t_like "$h" "client-ip=192\.0\.2\.7;" "pass message: client-ip is the XCLIENT address"
t_like "$h" "helo=mail\.spf-pass\.example;" "pass message: helo from XCLIENT"

t_is "$(grep -c '^Received-SPF:' "$f")" "1" "pass message (one recipient): one Received-SPF"
t_like "$(header_of "$f" Authentication-Results)" "^Authentication-Results: mx\.test\.example; spf=pass smtp\.mailfrom=spf-pass\.example$" "pass message (one recipient): Authentication-Results from the DATA request"
t_is "$(grep -c '^Authentication-Results: mx.test.example' "$f")" "1" "pass message: exactly one Authentication-Results of ours"

f=$(mail_with fail-body)
t_like "$(header_of "$f" Received-SPF)" "^Received-SPF: fail .*client-ip=198\.51\.100\.7;" "fail message: Received-SPF fail"
t_like "$(header_of "$f" Authentication-Results)" "spf=fail smtp\.mailfrom=spf-pass\.example" "fail message: Authentication-Results spf=fail"

n=0
for f in $(grep -l -F three-body $(h_mail_files)); do
    n=$((n + 1))
    t_is "$(grep -c '^Received-SPF:' "$f")" "1" "three-recipient message copy $n: exactly one Received-SPF header"
    t_is "$(grep -c '^Authentication-Results: mx.test.example' "$f")" "1" "three-recipient message copy $n: exactly one Authentication-Results header"
done
t_is "$n" "3" "three-recipient message: three copies delivered"
t_is "$(grep -c 'decision instance=.* sender=alice@spf-pass.example rcpt=a@test.example' "$T/pd.log")" "1" "one decision line for the three-recipient message"

f=$(mail_with after-body)
t_like "$(header_of "$f" Received-SPF)" "^Received-SPF: pass" "message after the malformed request has its header"

t_done
