#!/bin/bash
# test_quickstart.sh - the README's first command as a new user runs it:
# scripts/run-demo (with SKIP_BUILD=1: this tree is already built and must
# not be rebuilt under the tests) serves the demo zone on loopback and runs the daemon in the
# foreground with etc/policyd-dmarc.conf; the README's printf | nc request
# gets a PREPEND, and its 198.51.100.7 variant the 550 the README shows. The
# demo (its own process group) is stopped by its PID.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init

# The sample config listens on 127.0.0.1:10040: wait until it is free.
for i in $(seq 50); do h_port_free 10040 && break; sleep 0.2; done
dns=$(h_free_port)
SKIP_BUILD=1 BUILD_DIR=$PD_BUILD DEMO_DNS_PORT=$dns setsid "$PD_SRC/scripts/run-demo" >"$T/demo.log" 2>&1 &
demo=$!
stop_demo() { kill -TERM -- "-$demo" 2>/dev/null; wait "$demo" 2>/dev/null; return 0; }
h_chain_exit stop_demo
h_wait_port 10040 || { cat "$T/demo.log"; exit 1; }

req='request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.7\nhelo_name=mail.pass.demo.example\nsender=alice@pass.demo.example\nrecipient=bob@example.net\ninstance=demo.1\n\n'
r=$(printf "$req" | nc -q 2 127.0.0.1 10040)
t_like "$r" "^action=PREPEND Received-SPF: pass " "README request: PREPEND Received-SPF: pass"
r=$(printf "${req//192.0.2.7/198.51.100.7}" | sed 's/demo\.1/demo.2/' | nc -q 2 127.0.0.1 10040)
t_like "$r" "^action=550 5\.7\.1 envelope DMARC: pass\.demo\.example publishes policy reject and SPF fail" "README variant: 550 5.7.1 envelope DMARC ..."
t_like "$(cat "$T/demo.log")" "decision instance=demo\.1 .*spf=pass" "the demo logs a decision line to the terminal"
t_like "$(cat "$T/demo.log")" "running as user nobody" "the demo daemon runs unprivileged"
stop_demo
t_ok "demo stopped: nothing listens on 10040 any more" h_port_free 10040
t_done
