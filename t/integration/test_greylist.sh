#!/bin/bash
# test_greylist.sh - greylisting with a real redis-server shared by two
# daemons ("two MX hosts"): first sight deferred, early retry deferred with
# fewer seconds, retry after the delay passes (on the other MX), the rest of
# the message's recipients accepted; IPv6 /64 grouping;
# whitelist files in postgrey's format; SPF pass for an enforcing domain
# skips greylisting; a DMARC reject comes before greylisting; greylisted
# attempts are not counted; Redis down fails open. Then a real Postfix: the
# first attempt gets 450, a retry after the delay is delivered.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init
h_chain_exit d_stop_all

cat > "$T/zone" <<'EOF'
$TTL 300
plain.example.          IN TXT "v=spf1 ?all"
none.example.           IN TXT "v=spf1 ?all"
_dmarc.none.example.    IN TXT "v=DMARC1; p=none; rua=mailto:d@none.example"
strict.example.         IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
strict.example.         IN A   192.0.2.1
_dmarc.strict.example.  IN TXT "v=DMARC1; p=reject"
EOF
h_dnsd "$T/zone"
h_redis
printf '# postgrey format\n203.0.113.0/24\n/^mail\\.friendly\\.example$/\n' > "$T/wl_clients"
printf 'postmaster@\nabuse@test.example\n' > "$T/wl_rcpts"
COMMON=("redis = tcp:127.0.0.1:$REDIS_PORT" "redis_prefix = g" "greylist = yes" "greylist_delay = 2s"
    "greylist_awl_count = 2" "dmarc_header = no" "greylist_whitelist_clients = $T/wl_clients"
    "greylist_whitelist_recipients = $T/wl_rcpts")
d_config a "${COMMON[@]}"
d_config b "${COMMON[@]}"
d_start a
d_start b

ask() { d_ask "$@"; }
DEFER="^b'action=DEFER_IF_PERMIT Greylisted, please try again in [12] seconds"

t_like "$(ask a instance=g1 client_address=198.51.100.7 sender=x@plain.example recipient=u1@test.example)" "$DEFER" "first sight: DEFER_IF_PERMIT with the seconds left"
t_like "$(grep 'decision instance=g1 ' "$T/a.log")" "greylist=defer action=DEFER_IF_PERMIT" "decision line says greylist"
t_like "$(ask a instance=g2 client_address=198.51.100.8 sender=x@plain.example recipient=u1@test.example)" "$DEFER" "early retry from the same /24: still deferred"
sleep 2.2
t_like "$(ask b instance=g3 client_address=198.51.100.9 sender=x@plain.example recipient=u1@test.example)" "^b'action=PREPEND Received-SPF: neutral" "retry after the delay on the OTHER daemon: passes (state shared in Redis)"
t_like "$(ask b instance=g3 client_address=198.51.100.9 sender=x@plain.example recipient=u2@test.example)" "^b'action=DUNNO" "the rest of that message's recipients: DUNNO"

# A message whose first RCPT is deferred and whose second RCPT passed before.
t_like "$(ask a instance=g4 client_address=198.51.100.7 sender=x@plain.example recipient=new@test.example)" "$DEFER" "message with a new recipient first: deferred"
t_like "$(ask a instance=g4 client_address=198.51.100.7 sender=x@plain.example recipient=u1@test.example)" "^b'action=PREPEND Received-SPF" "its second RCPT (a known triplet) passes and gets the header"
t_like "$(ask a instance=g4 client_address=198.51.100.7 sender=x@plain.example recipient=other@test.example)" "^b'action=DUNNO" "... and the rest of the message is accepted"

# Sender normalisation: +extension and case fold into the same triplet.
t_like "$(ask a instance=g5 client_address=198.51.100.7 sender=X+tag@PLAIN.example recipient=u1@test.example)" "^b'action=PREPEND" "sender +ext and case normalised: the same (passed) triplet"

# IPv6 grouping by /64.
t_like "$(ask a instance=g6 client_address=2001:db8:1:2::1 sender=v6@plain.example recipient=u1@test.example)" "$DEFER" "IPv6 first sight: deferred"
sleep 2.2
t_like "$(ask a instance=g7 client_address=2001:db8:1:2::99 sender=v6@plain.example recipient=u1@test.example)" "^b'action=PREPEND" "IPv6 retry from another address of the same /64: passes"

# Whitelists (postgrey formats) and the authenticated-sender exemption.
t_like "$(ask a instance=w1 client_address=203.0.113.5 sender=w@plain.example recipient=u9@test.example)" "^b'action=PREPEND" "whitelisted client network: not greylisted"
t_like "$(ask a instance=w2 client_address=198.51.100.50 client_name=mail.friendly.example sender=w@plain.example recipient=u9@test.example)" "^b'action=PREPEND" "whitelisted client name (/regex/): not greylisted"
t_like "$(ask a instance=w3 client_address=198.51.100.51 sender=w@plain.example recipient=postmaster@test.example)" "^b'action=PREPEND" "whitelisted recipient (postmaster@): not greylisted"
t_like "$(ask a instance=s1 client_address=192.0.2.7 sender=a@strict.example recipient=u9@test.example)" "^b'action=PREPEND Received-SPF: pass" "SPF pass for a p=reject domain: not greylisted"
t_like "$(ask a instance=s2 client_address=198.51.100.52 sender=a@strict.example recipient=u9@test.example)" "^b'action=550 5\.7\.1" "DMARC reject comes before greylisting"

# Greylisted attempts are not counted; a passed one is, once. (The
# auto-whitelist counts at most one pass per network per hour: t/unit/test_rgrey
# covers it with an injected clock.)
cnt() { redis-cli -p "$REDIS_PORT" --raw --scan --pattern 'g:rpt:{none.example}:*' | while read -r k; do redis-cli -p "$REDIS_PORT" --raw HVALS "$k"; done | awk '{ s += $1 } END { print s + 0 }'; }
ask a instance=c1 client_address=198.51.101.7 sender=n@none.example recipient=z@test.example >/dev/null
sleep 0.5
t_is "$(cnt)" "0" "a greylisted attempt is not counted"
sleep 2.2
t_like "$(ask b instance=c2 client_address=198.51.101.7 sender=n@none.example recipient=z@test.example)" "^b'action=PREPEND" "its retry passes"
for i in $(seq 30); do [ "$(cnt)" = 1 ] && break; sleep 0.1; done
t_is "$(cnt)" "1" "the accepted retry is counted once"
# A deferred first RCPT keeps no row; the message is evaluated again when a
# later RCPT is accepted, and counted then, once.
t_like "$(ask a instance=c3 client_address=198.51.101.7 sender=n@none.example recipient=new3@test.example)" "$DEFER" "a new recipient first: deferred"
sleep 0.5
t_is "$(cnt)" "1" "... not counted"
t_like "$(ask a instance=c3 client_address=198.51.101.7 sender=n@none.example recipient=z@test.example)" "^b'action=PREPEND Received-SPF: neutral" "its second RCPT (a passed triplet) gets the header"
t_like "$(ask a instance=c3 client_address=198.51.101.7 sender=n@none.example recipient=y@test.example)" "^b'action=DUNNO" "... and the rest of the message is accepted"
for i in $(seq 30); do [ "$(cnt)" = 2 ] && break; sleep 0.1; done
t_is "$(cnt)" "2" "... and the message is counted once, when accepted"
t_like "$(ask a instance=w4 client_address=198.51.100.53 sender=w@plain.example recipient=u9@test.example)" "$DEFER" "a new triplet first: deferred"
t_like "$(ask a instance=w4 client_address=198.51.100.53 sender=w@plain.example recipient=abuse@test.example)" "^b'action=PREPEND Received-SPF: neutral" "then a whitelisted recipient: accepted, with the header"

# Redis down: greylisting fails open.
h_redis_stop
t_like "$(ask a instance=r1 client_address=198.51.102.7 sender=down@plain.example recipient=u1@test.example)" "^b'action=PREPEND" "Redis down: not greylisted (fail open)"
t_like "$(grep 'decision instance=r1 ' "$T/a.log")" "greylist=error" "... logged as greylist=error"
h_redis_start_again

# --- a real Postfix: 450 first, delivered after the delay -----------------------------
h_postfix "inet:127.0.0.1:$PD_PORT_a"
h_swaks --from pf@plain.example --to bob@test.example --xclient-addr 198.51.103.7 \
    --xclient-helo mx.other.example --body body-grey >"$T/pf1.log" 2>&1
t_like "$(grep -E '^<\*\* +450' "$T/pf1.log" | head -1)" "450 4\.7\.1 <bob@test\.example>: Recipient address rejected: Greylisted, please try again in [12] seconds" "Postfix: first attempt refused with 450 4.7.1"
sleep 2.2
h_swaks --from pf@plain.example --to bob@test.example --xclient-addr 198.51.103.7 \
    --xclient-helo mx.other.example --body body-grey >"$T/pf2.log" 2>&1
t_ok "Postfix: the retry after the delay is queued" grep -q "250 2.0.0 Ok: queued" "$T/pf2.log"
h_wait_mail 1 30
t_ok "Postfix: and delivered" grep -l -q body-grey $(h_mail_files)

t_done
