# daemon.sh - start/stop policyd-dmarc for integration tests (sourced after
# harness.sh and h_init). Everything lives under $T; the daemon is stopped by its
# PID from the EXIT trap that h_init installed (d_stop_all is registered there).

# d_config NAME [extra lines...]: write $T/NAME.conf listening on a free port
# (sets PD_PORT_<NAME>), pointed at the test DNS server ($DNS_PORT).
d_config() {
    local name=$1; shift
    local port; port=$(h_free_port)
    eval "PD_PORT_$name=$port"
    {
        echo "listen = inet:127.0.0.1:$port"
        echo "dns_servers = 127.0.0.1:$DNS_PORT"
        echo "dns_timeout = 1s"
        echo "dns_retries = 0"
        echo "evaluation_timeout = 3s"
        echo "workers = 2"
        echo "log = stderr"
        echo "log_level = info"
        echo "hostname = mx.test.example"
        echo "pid_file = $T/$name.pid"
        # Tests run as root; the privilege drop has its own test (user = nobody).
        echo "allow_root = yes"
        for l in "$@"; do echo "$l"; done
    } > "$T/$name.conf"
}

# d_start NAME: start the daemon with $T/NAME.conf, log in $T/NAME.log; wait
# until it accepts connections on its port.
d_start() {
    local name=$1 port
    eval "port=\$PD_PORT_$name"
    "$PD_BUILD/policyd-dmarc" -c "$T/$name.conf" 2>>"$T/$name.log" &
    eval "PD_PID_$name=$!"
    D_STARTED="$D_STARTED $name"
    h_wait_port "$port" || { cat "$T/$name.log" >&2; return 1; }
}

# d_pid NAME: the daemon's PID.
d_pid() { eval "echo \$PD_PID_$1"; }

# d_stop NAME: SIGTERM and wait; the exit status goes to D_RC. Call it in the
# test's own shell (not in $(...)): only the parent shell can wait for it.
d_stop() {
    local pid; pid=$(d_pid "$1")
    D_RC=
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    D_RC=0
    wait "$pid" 2>/dev/null || D_RC=$?
    eval "PD_PID_$1="
}

# d_stop_all: at exit, TERM every daemon still running, KILL after 5 s.
d_stop_all() {
    local n pid i
    for n in $D_STARTED; do
        pid=$(d_pid "$n")
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || continue
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    return 0
}

# d_ask NAME name=value...: one request to daemon NAME, prints the reply line(s).
d_ask() {
    local name=$1 port; shift
    eval "port=\$PD_PORT_$name"
    "$(h__python)" "$PD_SRC/t/lib/policy_client.py" --port "$port" "$@"
}

D_STARTED=""

# --- TAP helpers for shell tests -------------------------------------------
T_N=0
T_FAILED=0
t_pass() { T_N=$((T_N + 1)); echo "ok $T_N - $*"; }
t_fail() { T_N=$((T_N + 1)); T_FAILED=$((T_FAILED + 1)); echo "not ok $T_N - $*"; }
# t_ok DESC CMD...: passes when CMD exits 0.
t_ok() { local d=$1; shift; if "$@"; then t_pass "$d"; else t_fail "$d"; fi; }
# t_is GOT WANT DESC
t_is() {
    if [ "$1" = "$2" ]; then t_pass "$3"; else
        t_fail "$3"; printf '#   got:  %s\n#   want: %s\n' "$1" "$2"; fi
}
# t_like GOT ERE DESC
t_like() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then t_pass "$3"; else
        t_fail "$3"; printf '#   got:  %s\n#   want match: %s\n' "$1" "$2"; fi
}
# t_unlike GOT ERE DESC
t_unlike() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        t_fail "$3"; printf '#   got:  %s\n#   must not match: %s\n' "$1" "$2"; else t_pass "$3"; fi
}
# t_done: plan line; exit status 1 when any check failed.
t_done() {
    echo "1..$T_N"
    [ "$T_FAILED" -eq 0 ] || { echo "# $T_FAILED of $T_N failed"; return 1; }
}
