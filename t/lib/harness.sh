# shellcheck shell=bash
# t/lib/harness.sh: shared shell harness for integration tests and benchmarks.
#
# Sourced by t/integration/*.sh. Starts private servers on 127.0.0.1 (t-dnsd,
# redis-server, a private Postfix instance, a fake policy server), all under a
# per-test temp dir $T, and stops every one of them from an EXIT trap, by
# pidfile/PID only (never by process name). Prints TAP.
#
#   . "$PD_SRC/t/lib/harness.sh"     (or relative to the script)
#   h_init
#   h_dnsd zone.txt                  -> DNS_PORT, DNS_PID, DNS_QLOG
#   h_redis                          -> REDIS_PORT
#   h_fake_policy 'DUNNO'            -> POLICY_PORT, POLICY_LOG
#   h_postfix inet:127.0.0.1:$PORT   -> SMTP_PORT, PF_DIR, PF_LOG
#   out=$(h_swaks --to bob@test.example ...)
#   h_wait_mail 1 && h_ok "delivered" || h_fail "delivered"
#   h_done                           (prints the plan, exits 0 or 1)
#
# Works under `set -u`; do not use `set -e` (checks return non-zero on failure).
#
# Environment: PD_SRC (repo root), PD_BUILD (build dir, default $PD_SRC/build),
# PD_SHARED (default $PD_SRC/../shared), KEEP=1 keeps $T, TMPDIR.

H_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---------------------------------------------------------------- TAP output

H_TESTNUM=0
H_FAILED=0
H_DONE=0

h_diag() { printf '# %s\n' "$*"; }

h_ok() {
    H_TESTNUM=$((H_TESTNUM + 1))
    printf 'ok %d - %s\n' "$H_TESTNUM" "$*"
}

h_fail() {
    H_TESTNUM=$((H_TESTNUM + 1))
    H_FAILED=$((H_FAILED + 1))
    printf 'not ok %d - %s\n' "$H_TESTNUM" "$*"
}

# h_check MSG CMD [ARGS...]: ok if CMD succeeds.
h_check() {
    local msg=$1
    shift
    if "$@"; then h_ok "$msg"; else h_fail "$msg"; return 1; fi
}

# h_is GOT WANT MSG
h_is() {
    if [[ "$1" == "$2" ]]; then
        h_ok "$3"
    else
        h_fail "$3"
        h_diag "  got:      '$1'"
        h_diag "  expected: '$2'"
        return 1
    fi
}

# h_like TEXT ERE MSG: ok if TEXT matches the extended regex (grep -E).
h_like() {
    if grep -qE -- "$2" <<<"$1"; then
        h_ok "$3"
    else
        h_fail "$3"
        h_diag "  no match for /$2/ in:"
        sed 's/^/#   /' <<<"$1" | head -20
        return 1
    fi
}

# h_unlike TEXT ERE MSG
h_unlike() {
    if grep -qE -- "$2" <<<"$1"; then
        h_fail "$3"
        h_diag "  unexpected match for /$2/"
        return 1
    fi
    h_ok "$3"
}

# h_bail MSG: the infrastructure is broken; stop the script (trap cleans up).
h_bail() {
    printf 'Bail out! %s\n' "$*"
    H_FAILED=$((H_FAILED + 1))
    exit 1
}

# h_done: prints the plan and exits 0 if every test passed.
h_done() {
    H_DONE=1
    printf '1..%d\n' "$H_TESTNUM"
    [[ $H_FAILED -eq 0 ]] && exit 0
    exit 1
}

# ---------------------------------------------------------------- lifecycle

H_EXIT_HOOKS=() # functions to run first at exit (h_chain_exit)
H_PIDS=()       # plain processes we started (killed TERM, then KILL)
H_PF_DIRS=()    # Postfix config dirs to stop
H_REDIS_PIDFILE=
H_PF_GLOBAL_LOCK=/etc/postfix/.pd-harness.lock

h__python() {
    if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3; fi
}

h_init() {
    PD_SRC=${PD_SRC:-$(cd "$H_LIB_DIR/../.." && pwd)}
    PD_BUILD=${PD_BUILD:-$PD_SRC/build}
    PD_SHARED=${PD_SHARED:-$PD_SRC/../shared}
    export PD_SRC PD_BUILD PD_SHARED
    H_PYTHON=$(h__python)
    T=$(mktemp -d "${TMPDIR:-/tmp}/pdtest.XXXXXX") || h_bail "mktemp failed"
    # Postfix daemons run as the postfix user and must reach the queue and
    # the maildir below $T.
    chmod 755 "$T"
    export T
    trap h__cleanup EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    T_DNSD=$PD_BUILD/t-dnsd
}

# h_chain_exit FUNC: run FUNC at exit before the harness stops its servers
# (e.g. stop the daemon under test before Postfix). Re-installs the harness'
# EXIT trap, in case the caller replaced it.
h_chain_exit() {
    H_EXIT_HOOKS+=("$1")
    trap h__cleanup EXIT
}

# Waits until pid $1 is gone, up to $2 tenths of a second. 0 when gone.
h__wait_gone() {
    local pid=$1 n=${2:-50}
    while ((n-- > 0)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$pid" 2>/dev/null
}

# Stops one PID we started: TERM, wait, then KILL.
h__stop_pid() {
    local pid=$1
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    h__wait_gone "$pid" 50 && return 0
    kill -KILL "$pid" 2>/dev/null
    h__wait_gone "$pid" 20
}

h__cleanup() {
    local rc=$?
    trap - EXIT HUP INT TERM
    local d p
    for p in "${H_EXIT_HOOKS[@]}"; do "$p"; done
    for d in "${H_PF_DIRS[@]}"; do h__postfix_stop_dir "$d"; done
    h_redis_stop >/dev/null 2>&1
    for p in "${H_PIDS[@]}"; do h__stop_pid "$p"; done
    for d in "${H_PF_DIRS[@]}"; do h__postfix_unregister "$d"; done
    if [[ -n "${T:-}" && -f "$T/.port-locks" ]]; then
        while read -r p; do rmdir "$p" 2>/dev/null; done <"$T/.port-locks"
    fi
    if [[ $H_DONE -eq 0 && $H_TESTNUM -gt 0 ]]; then
        h_diag "script ended before h_done (status $rc)"
        printf '1..%d\n' "$H_TESTNUM"
        [[ $rc -eq 0 ]] && rc=1
    fi
    [[ $H_FAILED -gt 0 && $rc -eq 0 ]] && rc=1
    if [[ -n "${T:-}" && -d "$T" ]]; then
        if [[ "${KEEP:-0}" == 1 ]]; then
            h_diag "kept $T"
        else
            rm -rf "$T"
        fi
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- ports

# h_port_free PORT: 0 when PORT can be bound on 127.0.0.1 for TCP and UDP.
h_port_free() {
    "$H_PYTHON" - "$1" <<'EOF'
import socket, sys
p = int(sys.argv[1])
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}

# h_free_port: prints a port free on 127.0.0.1 for TCP and UDP. Chosen below
# the kernel's ephemeral range (so outgoing connections do not grab it) and
# reserved under ${TMPDIR:-/tmp}/pd-ports until the test exits, so parallel
# tests do not pick the same one (the reservation is recorded in $T, so
# port=$(h_free_port) works). Also sets H_PORT when not run in a subshell.
h_free_port() {
    local dir=${TMPDIR:-/tmp}/pd-ports port i
    mkdir -p "$dir"
    for ((i = 0; i < 200; i++)); do
        port=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
        mkdir "$dir/$port" 2>/dev/null || continue
        if h_port_free "$port"; then
            echo "$dir/$port" >>"$T/.port-locks"
            H_PORT=$port
            echo "$port"
            return 0
        fi
        rmdir "$dir/$port"
    done
    return 1
}

# h_wait_port PORT [TIMEOUT_S]: waits until 127.0.0.1:PORT accepts TCP.
h_wait_port() {
    local port=$1 n=$((${2:-10} * 20))
    while ((n-- > 0)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# Waits until file $1 exists and is non-empty, up to $2 seconds.
h__wait_file() {
    local n=$((${2:-10} * 20))
    while ((n-- > 0)); do
        [[ -s "$1" ]] && return 0
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- t-dnsd

# h_dnsd ZONEFILE [EXTRA t-dnsd ARGS]: starts t-dnsd on an ephemeral port of
# 127.0.0.1 (it binds port 0 itself, no race). Sets DNS_PORT, DNS_PID,
# DNS_QLOG (the "qname qtype" query log) and DNS_LOG (its stderr).
h_dnsd() {
    local zone=$1
    shift
    [[ -x "$T_DNSD" ]] || { h_diag "no $T_DNSD (build target t-dnsd)"; return 1; }
    DNS_QLOG=$T/dnsd.query.log
    DNS_LOG=$T/dnsd.log
    rm -f "$T/dnsd.port"
    "$T_DNSD" -z "$zone" -a 127.0.0.1 -p 0 -o "$T/dnsd.port" -l "$DNS_QLOG" "$@" \
        2>>"$DNS_LOG" </dev/null &
    DNS_PID=$!
    H_PIDS+=("$DNS_PID")
    if ! h__wait_file "$T/dnsd.port" 10; then
        h_diag "t-dnsd did not start:"
        sed 's/^/#   /' "$DNS_LOG"
        return 1
    fi
    DNS_PORT=$(<"$T/dnsd.port")
    export DNS_PORT DNS_PID DNS_QLOG
}

# h_dnsd_reload: SIGHUP t-dnsd and wait until it has re-read the zone file.
# Non-zero if the new file was rejected (the old data stays served).
h_dnsd_reload() {
    local before after n=100
    local re='^t-dnsd: (reloaded |reload failed)'
    before=$(grep -cE "$re" "$DNS_LOG" 2>/dev/null)
    kill -HUP "$DNS_PID" || return 1
    while ((n-- > 0)); do
        after=$(grep -cE "$re" "$DNS_LOG" 2>/dev/null)
        if [[ $after -gt $before ]]; then
            grep -E "$re" "$DNS_LOG" | tail -n 1 | grep -q '^t-dnsd: reloaded ' && return 0
            sed 's/^/#   /' "$DNS_LOG" | tail -3
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# h_dig ARGS...: dig against the test server only (never the system resolver).
h_dig() {
    dig @127.0.0.1 -p "$DNS_PORT" +tries=1 +time=2 "$@"
}

# ---------------------------------------------------------------- Redis

# h_redis: starts a throwaway redis-server. Sets REDIS_PORT.
h_redis() {
    if [[ -z "${REDIS_PORT:-}" ]]; then
        h_free_port >/dev/null || return 1
        REDIS_PORT=$H_PORT
    fi
    export REDIS_PORT
    h_redis_start_again
}

# h_redis_start_again: (re)starts Redis on the same REDIS_PORT, empty.
h_redis_start_again() {
    mkdir -p "$T/redis"
    H_REDIS_PIDFILE=$T/redis/redis.pid
    rm -f "$H_REDIS_PIDFILE"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$H_REDIS_PIDFILE" --dir "$T/redis" \
        --logfile "$T/redis/redis.log" >/dev/null || return 1
    local n=100
    while ((n-- > 0)); do
        if [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then
            REDIS_PID=$(<"$H_REDIS_PIDFILE")
            export REDIS_PID
            return 0
        fi
        sleep 0.05
    done
    h_diag "redis did not start:"
    sed 's/^/#   /' "$T/redis/redis.log" | tail -10
    return 1
}

# h_redis_stop: shuts Redis down (nosave) and waits until its PID is gone.
h_redis_stop() {
    [[ -n "$H_REDIS_PIDFILE" && -s "$H_REDIS_PIDFILE" ]] || return 0
    local pid
    pid=$(<"$H_REDIS_PIDFILE")
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
    h__wait_gone "$pid" 30 || h__stop_pid "$pid"
    rm -f "$H_REDIS_PIDFILE"
}

# h_redis_kill: SIGKILLs Redis (a crash, not a shutdown).
h_redis_kill() {
    [[ -s "$H_REDIS_PIDFILE" ]] || return 0
    local pid
    pid=$(<"$H_REDIS_PIDFILE")
    kill -KILL "$pid" 2>/dev/null
    h__wait_gone "$pid" 30
    rm -f "$H_REDIS_PIDFILE"
}

h_redis_cli() { redis-cli -p "$REDIS_PORT" "$@"; }

# ---------------------------------------------------------------- fake policy

# h_fake_policy ACTION [EXTRA fake_policy.py ARGS]: a Postfix policy server that
# answers "action=ACTION" to every request and logs each request (one JSON
# object a line) to POLICY_LOG. Sets POLICY_PORT, POLICY_PID.
h_fake_policy() {
    local action=$1
    shift
    POLICY_LOG=$T/policy.requests
    rm -f "$T/policy.port"
    "$H_PYTHON" "$H_LIB_DIR/fake_policy.py" --action "$action" --portfile "$T/policy.port" \
        --log "$POLICY_LOG" "$@" 2>>"$T/policy.err" </dev/null &
    POLICY_PID=$!
    H_PIDS+=("$POLICY_PID")
    if ! h__wait_file "$T/policy.port" 10; then
        h_diag "fake policy server did not start:"
        sed 's/^/#   /' "$T/policy.err"
        return 1
    fi
    POLICY_PORT=$(<"$T/policy.port")
    export POLICY_PORT POLICY_LOG
}

# ---------------------------------------------------------------- Postfix

# Adds/removes DIR to alternate_config_directories of the default main.cf,
# under a lock (parallel tests edit the same file). Entries whose directory no
# longer exists (tests killed by SIGKILL) are pruned on the way.
h__postfix_edit_global() {
    local op=$1 dir=$2
    mkdir -p /etc/postfix
    (
        flock 9
        if [[ ! -s /etc/postfix/main.cf ]]; then
            # The package was installed with "No configuration": give the
            # postfix command a minimal default main.cf to read.
            printf '%s\n' '# minimal main.cf written by t/lib/harness.sh' \
                'compatibility_level = 3.6' > /etc/postfix/main.cf
        fi
        local cur new=() e
        cur=$(postconf -h alternate_config_directories 2>/dev/null)
        for e in ${cur//,/ }; do
            [[ "$e" == "$dir" ]] && continue
            [[ "$e" == */pdtest.*/* && ! -d "$e" ]] && continue
            new+=("$e")
        done
        [[ "$op" == add ]] && new+=("$dir")
        postconf -e "alternate_config_directories = ${new[*]}"
    ) 9>>"$H_PF_GLOBAL_LOCK"
}

h__postfix_unregister() { h__postfix_edit_global remove "$1" 2>/dev/null; }

# h_postfix POLICY_SPEC [EXTRA main.cf LINES...]: a private Postfix instance:
# smtpd on 127.0.0.1:SMTP_PORT, check_policy_service POLICY_SPEC at RCPT,
# everything for @test.example delivered to the maildir $T/mail/box/.
# Sets SMTP_PORT, PF_DIR (config dir), PF_LOG (its maillog).
h_postfix() {
    local spec=$1
    shift
    local base=$T/postfix
    PF_DIR=$base/etc
    PF_LOG=$base/maillog
    mkdir -p "$PF_DIR" "$base/spool" "$base/data" "$T/mail"
    chown postfix: "$base/data" "$T/mail"
    chmod 700 "$base/data"
    h_free_port >/dev/null || return 1
    SMTP_PORT=$H_PORT
    local uid gid
    if ! uid=$(id -u postfix) || ! gid=$(id -g postfix); then
        h_diag "no postfix user"
        return 1
    fi

    cat >"$PF_DIR/main.cf" <<EOF
# Private Postfix instance written by t/lib/harness.sh
compatibility_level = 3.6
queue_directory = $base/spool
data_directory = $base/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF_LOG
maillog_file_prefixes = $T
myhostname = pd-test.invalid
mydomain = invalid
myorigin = \$myhostname
mydestination =
relay_domains =
inet_interfaces = loopback-only
inet_protocols = ipv4
disable_dns_lookups = yes
smtp_dns_support_level = disabled
# Nothing is trusted by address: the tests pose as clients through XCLIENT
# and the policy server must see every one. (Empty, not unset: unset would
# default to mynetworks_style = host, i.e. 127.0.0.1.)
mynetworks =
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination,
    check_policy_service { $spec, default_action=DUNNO }
smtpd_policy_service_timeout = 20s
smtpd_policy_service_max_idle = 60s
smtpd_policy_service_max_ttl = 300s
smtpd_policy_service_try_limit = 1
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
in_flow_delay = 0
smtpd_banner = \$myhostname ESMTP pd-test
biff = no
append_dot_mydomain = no
readme_directory = no
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is disabled in tests
default_transport = error:outbound mail is disabled in tests
relay_transport = error:outbound mail is disabled in tests
virtual_mailbox_domains = test.example
virtual_mailbox_base = $T/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
virtual_minimum_uid = 1
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
    # Our own master.cf: no chroot (Debian's chroots most services, which
    # needs a populated jail) and nothing on port 25.
    cat >"$PF_DIR/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    local line
    for line in "$@"; do
        postconf -c "$PF_DIR" -e "$line" || { h_diag "bad main.cf line: $line"; return 1; }
    done
    h__postfix_edit_global add "$PF_DIR" || { h_diag "cannot edit /etc/postfix/main.cf"; return 1; }
    H_PF_DIRS+=("$PF_DIR")
    if ! postfix -c "$PF_DIR" start >>"$base/start.log" 2>&1; then
        h_diag "postfix start failed:"
        sed 's/^/#   /' "$base/start.log" "$PF_LOG" 2>/dev/null | tail -20
        return 1
    fi
    if ! h_wait_port "$SMTP_PORT" 15; then
        h_diag "postfix smtpd does not listen on $SMTP_PORT:"
        sed 's/^/#   /' "$PF_LOG" 2>/dev/null | tail -20
        return 1
    fi
    export SMTP_PORT PF_DIR PF_LOG
}

h__postfix_stop_dir() {
    local dir=$1 qdir pid
    qdir=$(postconf -c "$dir" -h queue_directory 2>/dev/null) || return 0
    [[ -s "$qdir/pid/master.pid" ]] || return 0
    pid=$(tr -dc 0-9 <"$qdir/pid/master.pid")
    [[ -n "$pid" ]] || return 0
    postfix -c "$dir" stop >>"$qdir/../stop.log" 2>&1
    # master exits after its children; make sure it is gone.
    h__wait_gone "$pid" 100 || h__stop_pid "$pid"
    rm -f "$qdir/pid/master.pid"
}

# h_postfix_stop: stops the instance started by h_postfix.
h_postfix_stop() { h__postfix_stop_dir "$PF_DIR"; }

# h_swaks ARGS...: swaks against the private smtpd. The transcript goes to
# stdout (capture it: out=$(h_swaks ...)); the exit status is swaks'.
# swaks sends EHLO again after XCLIENT, which replaces the XCLIENT HELO name:
# so --xclient-helo NAME also becomes --helo NAME unless --helo/--ehlo is given.
h_swaks() {
    local a prev='' xhelo='' has_helo=0
    for a in "$@"; do
        case $a in
        --helo | --ehlo | --lhlo | -h | --helo=* | --ehlo=*) has_helo=1 ;;
        --xclient-helo=*) xhelo=${a#*=} ;;
        esac
        [[ "$prev" == --xclient-helo ]] && xhelo=$a
        prev=$a
    done
    local extra=()
    [[ -n "$xhelo" && $has_helo -eq 0 ]] && extra=(--helo "$xhelo")
    swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout 30 "${extra[@]}" "$@" 2>&1
}

# h_mail_files: the delivered messages, one path a line, oldest first.
h_mail_files() {
    local d=$T/mail/box
    [[ -d "$d" ]] || return 0
    find "$d/new" "$d/cur" -type f -printf '%T@ %p\n' 2>/dev/null | sort -n | cut -d' ' -f2-
}

# h_wait_mail N [TIMEOUT_S]: waits until at least N messages are delivered.
h_wait_mail() {
    local want=$1 n=$((${2:-15} * 10)) have
    while ((n-- > 0)); do
        have=$(h_mail_files | wc -l)
        [[ $have -ge $want ]] && return 0
        sleep 0.1
    done
    h_diag "waited for $want messages, have $have"
    return 1
}
