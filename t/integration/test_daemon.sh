#!/bin/bash
# test_daemon.sh - policyd-dmarc on the raw policy protocol, against the test
# DNS server on loopback: SPF verdict headers, once per message, skips, reply
# framing, malformed and oversized requests, header injection, the evaluation
# deadline (silent DNS) without head-of-line blocking, listeners (TCP v4/v6,
# unix), -n, SIGHUP (good and broken file) and SIGTERM with a request in flight.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init
h_chain_exit d_stop_all

cat > "$T/zone" <<'EOF'
$TTL 300
spf-pass.example.        IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
spf-pass.example.        IN A   192.0.2.1
mail.spf-pass.example.   IN TXT "v=spf1 ip4:192.0.2.7 -all"
mail.spf-pass.example.   IN A   192.0.2.7
split.example.           IN TXT "v=spf1 ip4:203.0.113.0/24 " "ip4:192.0.2.0/24 -all"
silent.example.          IN A   192.0.2.99
$SILENT silent.example
EOF
h_dnsd "$T/zone"

# DNS may wait longer (3 x 2 s) than the evaluation deadline (3 s): the
# deadline, not the resolver, must end a silent evaluation.
d_config a "trusted_networks = 127.0.0.0/8, ::1/128, 10.0.0.0/8" "dns_timeout = 2s" "dns_retries = 2" "dmarc_header = no"
d_start a

# --- verdicts and framing ---------------------------------------------------
r=$(d_ask a instance=m1 sender=alice@spf-pass.example helo_name=mail.spf-pass.example)
t_like "$r" "^b'action=PREPEND Received-SPF: pass \(mx\.test\.example: domain of alice@spf-pass\.example designates 192\.0\.2\.7 as permitted sender\) " "SPF pass: PREPEND Received-SPF pass"
t_like "$r" "envelope-from=\"alice@spf-pass\.example\"; helo=mail\.spf-pass\.example; identity=mailfrom" "Received-SPF carries envelope-from, helo, identity"
t_like "$r" "[^\\\\]\\\\n\\\\n'$" "reply ends with exactly one blank line"
t_unlike "$(printf '%s' "$r" | sed 's/\\n\\n.$//')" '\\n' "no newline inside the reply before its end"

r=$(d_ask a instance=m2 client_address=198.51.100.7 sender=bob@spf-pass.example)
t_like "$r" "^b'action=PREPEND Received-SPF: fail " "SPF fail from an unlisted address"

r=$(d_ask a instance=m1 recipient=carol@test.example sender=alice@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "second RCPT of the same message: DUNNO, no second header"

r=$(d_ask a --count 3 instance=m3 sender=alice@split.example)
t_is "$(echo "$r" | head -1 | cut -c1-40)" "b'action=PREPEND Received-SPF: pass (mx." "multi-string TXT record joined: pass"
t_is "$(echo "$r" | sed -n '2p;3p' | tr '\n' ' ')" "b'action=DUNNO\\n\\n' b'action=DUNNO\\n\\n' " "persistent connection: three requests, one header"

r=$(d_ask a instance=m4 client_address=10.1.2.3 sender=bob@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "trusted network: DUNNO"
r=$(d_ask a instance=m5 client_address=198.51.100.7 sasl_username=bob sender=bob@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "SASL-authenticated session: DUNNO"

r=$(d_ask a instance=m6 sender= helo_name=mail.spf-pass.example)
t_like "$r" "^b'action=PREPEND Received-SPF: pass .*identity=helo" "null sender: HELO identity (postmaster@helo)"

r=$(d_ask a instance=m7 protocol_state=DATA sender=alice@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "DATA request of an unknown message starts no evaluation"

# --- hostile input ------------------------------------------------------------
r=$(d_ask a 'instance=m8' 'client_address=198.51.100.7' 'helo_name=evil\rX-Injected: yes' 'sender=x\x01"y@spf-pass.example')
t_like "$r" "^b'action=PREPEND Received-SPF: fail " "hostile HELO/sender still get a verdict"
t_unlike "$r" '\\r|\\x01|\\x7f' "no CR or control byte reaches the reply"
t_unlike "$(printf '%s' "$r" | sed 's/\\n\\n.$//')" '\\n' "the header stays one line"

printf 'garbage without equals sign\n\n' > "$T/bad1"
r=$(d_ask a --raw "$T/bad1")
t_is "$r" "EOF" "malformed request: connection closed without a reply"
python3 -c 'import sys; sys.stdout.write("request=smtpd_access_policy\nhelo_name=" + "a"*9000 + "\n\n")' > "$T/bad2"
r=$(d_ask a --raw "$T/bad2")
t_is "$r" "EOF" "line over 8 KiB: closed without a reply"
printf 'protocol_state=RCPT\nrequest=smtpd_access_policy\nrequest=smtpd_access_policy\n\n' > "$T/bad3"
t_is "$(d_ask a --raw "$T/bad3")" "EOF" "duplicated attribute: closed without a reply"
t_like "$(grep -c malformed_request "$T/a.log")" "^[3-9]$" "malformed requests are logged"
r=$(d_ask a instance=m9 sender=alice@spf-pass.example)
t_like "$r" "^b'action=PREPEND Received-SPF: pass" "daemon keeps serving after malformed requests"

# --- the deadline, without head-of-line blocking ------------------------------
d_ask a --time instance=slow1 sender=a@silent.example 2>"$T/slow.time" >"$T/slow.out" &
slow=$!
sleep 0.3
d_ask a --time instance=fast1 sender=alice@spf-pass.example 2>"$T/fast.time" >"$T/fast.out"
wait $slow
t_like "$(cat "$T/slow.out")" "^b'action=PREPEND Received-SPF: temperror " "silent DNS: temperror header"
t_ok "silent DNS: answered within evaluation_timeout (3 s) + 1 s ($(cat "$T/slow.time") s)" \
    awk -v t="$(cat "$T/slow.time")" 'BEGIN { exit !(t >= 2.0 && t <= 4.0) }'
t_like "$(cat "$T/fast.out")" "^b'action=PREPEND Received-SPF: pass" "a request during the slow one is answered"
t_ok "... and not delayed by it ($(cat "$T/fast.time") s)" \
    awk -v t="$(cat "$T/fast.time")" 'BEGIN { exit !(t < 1.0) }'

# --- one decision line per message -------------------------------------------
t_is "$(grep -c 'decision instance=m1 ' "$T/a.log")" "1" "one decision log line for a message with two requests"
t_like "$(grep 'decision instance=m2 ' "$T/a.log")" "client=198\.51\.100\.7 .*spf=fail .*action=PREPEND" "decision line has client, spf, action"
t_like "$(grep 'decision instance=m4 ' "$T/a.log")" "reason=trusted_network" "skip reason logged"

# --- -n and config errors ------------------------------------------------------
out=$("$PD_BUILD/policyd-dmarc" -n -c "$T/a.conf"); rc=$?
t_is "$rc" "0" "-n on a good file exits 0"
t_like "$out" "workers = 2" "-n prints non-default settings"
printf 'workers = 2\nbogus_setting = 1\n' > "$T/bad.conf"
out=$("$PD_BUILD/policyd-dmarc" -n -c "$T/bad.conf" 2>&1); rc=$?
t_is "$rc" "1" "-n on a bad file exits 1"
t_like "$out" "bad\.conf:2: unknown setting" "error names file:line"

# --- SIGHUP ------------------------------------------------------------------------
cp "$T/a.conf" "$T/a.conf.good"
echo "workers = many" >> "$T/a.conf"
kill -HUP "$(d_pid a)"; sleep 0.5
t_like "$(cat "$T/a.log")" "reload failed, keeping the running configuration: .*a\.conf:[0-9]+: bad value" "broken file on SIGHUP: logged with file:line"
r=$(d_ask a instance=h1 sender=alice@spf-pass.example)
t_like "$r" "^b'action=PREPEND Received-SPF: pass" "old configuration still serving"
cp "$T/a.conf.good" "$T/a.conf"
echo "spf_headers = authentication-results" >> "$T/a.conf"
kill -HUP "$(d_pid a)"; sleep 0.5
r=$(d_ask a instance=h2 sender=alice@spf-pass.example)
t_like "$r" "^b'action=PREPEND Authentication-Results: mx\.test\.example; spf=pass smtp\.mailfrom=" "SIGHUP applied spf_headers"

# --- SIGTERM with a request in flight ----------------------------------------------
d_ask a --time instance=slow2 sender=b@silent.example 2>/dev/null >"$T/slow2.out" &
slow=$!
sleep 0.5
d_stop a
wait $slow
t_like "$(cat "$T/slow2.out")" "^b'action=PREPEND Authentication-Results: .*spf=temperror" "SIGTERM: the request in flight is answered"
t_is "$D_RC" "0" "SIGTERM: exit status 0"

# --- listeners: unix socket and IPv6 ----------------------------------------------
p6=$(h_free_port)
d_config b "listen = unix:$T/policy.sock, inet:[::1]:$p6, inet:127.0.0.1:\$PORT" "socket_mode = 0660" "spf_headers = both" "dmarc_header = no"
sed -i "s/\\\$PORT/$PD_PORT_b/" "$T/b.conf"
d_start b
r=$("$(h__python)" "$PD_SRC/t/lib/policy_client.py" --unix "$T/policy.sock" instance=u1 sender=alice@spf-pass.example)
t_like "$r" "^b'action=PREPEND Received-SPF: pass" "unix socket listener"
t_is "$(stat -c %a "$T/policy.sock")" "660" "unix socket mode from socket_mode"

# spf_headers = both: the second header goes out with the next request of the
# same message (here DATA), then DUNNO.
r=$(d_ask b instance=both1 sender=alice@spf-pass.example)
t_like "$r" "^b'action=PREPEND Received-SPF: pass" "both: first RCPT gets Received-SPF"
r=$(d_ask b instance=both1 protocol_state=END-OF-MESSAGE sender=alice@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "both: no header spent on END-OF-MESSAGE (Postfix cannot PREPEND there)"
r=$(d_ask b instance=both1 protocol_state=DATA sender=alice@spf-pass.example)
t_is "$r" "b'action=PREPEND Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=spf-pass.example\\n\\n'" "both: DATA of the same message gets Authentication-Results"
r=$(d_ask b instance=both1 protocol_state=END-OF-MESSAGE sender=alice@spf-pass.example)
t_is "$r" "b'action=DUNNO\\n\\n'" "both: then DUNNO"
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    r=$("$(h__python)" "$PD_SRC/t/lib/policy_client.py" --host ::1 --port "$p6" instance=v6 client_address=2001:db8::7 sender=alice@spf-pass.example)
    t_like "$r" "^b'action=PREPEND Received-SPF: fail .*client-ip=\"2001:db8::7\"" "IPv6 listener, IPv6 client address"
else
    t_pass "# SKIP no IPv6 loopback on this machine"
fi
d_stop b
t_is "$D_RC" "0" "second daemon stops cleanly"
t_ok "unix socket removed on exit" test ! -e "$T/policy.sock"

# --- privileges ---------------------------------------------------------------------
d_config r "allow_root = no"
out=$("$PD_BUILD/policyd-dmarc" -c "$T/r.conf" 2>&1); rc=$?
t_is "$rc" "1" "root without user (and without allow_root): refuses to start"
t_like "$out" "refusing to run as root: set user" "... and says why"
d_config u "allow_root = no" "user = nobody"
d_start u
pid=$(d_pid u)
nobody=$(id -u nobody)
t_is "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' /proc/$pid/status)" "$nobody$nobody$nobody$nobody" "user = nobody: the daemon runs as nobody (real, effective, saved, fs uid)"
t_is "$(awk '/^Groups:/ { print $2 }' /proc/$pid/status)" "$(id -g nobody)" "supplementary groups reset (setgroups)"
w=$(pgrep -P "$pid" | head -1)
t_ok "SPF workers run as nobody too" test "$(awk '/^Uid:/ { print $3 }' /proc/$w/status)" = "$nobody"
t_like "$(d_ask u instance=priv1 sender=alice@spf-pass.example)" "^b'action=PREPEND Received-SPF: pass" "and still answers"
d_stop u
t_is "$D_RC" "0" "stops cleanly as nobody"

t_done
