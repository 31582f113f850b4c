#!/bin/bash
# test_install.sh - `cmake --install` of the existing build ($PD_BUILD) into a
# DESTDIR under $T, for --prefix /usr and --prefix /opt/pd: every file lands
# where the FHS and GNUInstallDirs say; the installed program runs (-V, -n on
# the installed sample config); the man pages render without warnings; the
# systemd unit names the installed paths and passes systemd-analyze verify
# (when systemd-analyze exists); the Postfix snippet parses with postconf; a
# reinstall keeps an edited configuration file. Nothing is written outside $T
# except the build directory's install_manifest.txt and install-gen/.
set -u
. "$PD_SRC/t/lib/harness.sh"
. "$PD_SRC/t/lib/daemon.sh"
h_init

[[ -x "$PD_BUILD/policyd-dmarc" ]] || h_bail "no $PD_BUILD/policyd-dmarc: build it first"

# inst PREFIX DESTDIR: cmake --install, log in $T/install.log.
inst() {
    DESTDIR=$2 cmake --install "$PD_BUILD" --prefix "$1" >>"$T/install.log" 2>&1
}

# has_files ROOT PATH...: every PATH (relative to ROOT) is a regular file.
has_files() {
    local root=$1 f missing=
    shift
    for f in "$@"; do [[ -f "$root/$f" ]] || missing="$missing $f"; done
    [[ -z "$missing" ]] || { echo "#   missing:$missing"; return 1; }
}

man_pages=()
for f in "$PD_SRC"/docs/*.5 "$PD_SRC"/docs/*.8; do
    [[ -e "$f" ]] && man_pages+=("$f")
done
have_report=0
[[ -x "$PD_BUILD/policyd-dmarc-report" ]] && have_report=1
have_cron=0
[[ -f "$PD_SRC/etc/policyd-dmarc-report.cron" ]] && have_cron=1

# --- prefix /usr ----------------------------------------------------------------
R=$T/root
t_ok "cmake --install --prefix /usr into DESTDIR" inst /usr "$R"
t_ok "install log names DESTDIR paths only" \
    bash -c "! grep -E '^-- (Installing|Up-to-date): ' '$T/install.log' | grep -v ' $R/'"
want=(usr/sbin/policyd-dmarc etc/policyd-dmarc/policyd-dmarc.conf
    usr/lib/systemd/system/policyd-dmarc.service
    usr/share/doc/policyd-dmarc/postfix-main.cf.snippet)
for f in "${man_pages[@]}"; do
    n=$(basename "$f")
    want+=("usr/share/man/man${n##*.}/$n")
done
((have_report)) && want+=(usr/sbin/policyd-dmarc-report)
((have_cron)) && want+=(etc/cron.d/policyd-dmarc-report)
t_ok "every file landed (${#want[@]} files)" has_files "$R" "${want[@]}"
t_ok "man pages: policyd-dmarc.8 and policyd-dmarc.conf.5 among them" \
    has_files "$R" usr/share/man/man8/policyd-dmarc.8 usr/share/man/man5/policyd-dmarc.conf.5
t_ok "the program is executable" test -x "$R/usr/sbin/policyd-dmarc"
t_ok "the sample config is the repository's" cmp -s "$PD_SRC/etc/policyd-dmarc.conf" \
    "$R/etc/policyd-dmarc/policyd-dmarc.conf"
t_is "$(stat -c %a "$R/etc/policyd-dmarc/policyd-dmarc.conf")" "644" "config mode 0644"
if ((have_report)); then
    t_ok "the reporter is executable" test -x "$R/usr/sbin/policyd-dmarc-report"
fi

# --- the installed program ------------------------------------------------------------
t_is "$("$R/usr/sbin/policyd-dmarc" -V)" "$("$PD_BUILD/policyd-dmarc" -V)" "installed -V prints the version"
t_like "$("$R/usr/sbin/policyd-dmarc" -V)" "^policyd-dmarc [0-9]+\.[0-9]+" "... policyd-dmarc N.N"
out=$("$R/usr/sbin/policyd-dmarc" -n -c "$R/etc/policyd-dmarc/policyd-dmarc.conf" 2>&1)
rc=$?
if grep -qE '^[[:space:]]*nameserver[[:space:]]' /etc/resolv.conf 2>/dev/null; then
    t_is "$rc" "0" "-n on the installed sample config exits 0"
    [[ $rc -eq 0 ]] || printf '#   %s\n' "$out"
else
    # -n only reads resolv.conf (never queries it) but wants a server there
    # when dns_servers is unset.
    t_like "$out" "dns_servers is not set" "-n on the sample config: only the missing resolver is reported (no nameserver here)"
fi
out=$(printf 'dns_servers = 127.0.0.1\n' | cat "$R/etc/policyd-dmarc/policyd-dmarc.conf" - >"$T/sample+dns.conf";
    "$R/usr/sbin/policyd-dmarc" -n -c "$T/sample+dns.conf" 2>&1)
t_is "$?" "0" "-n on the sample config plus dns_servers exits 0"

# --- man pages ----------------------------------------------------------------------
for f in "${man_pages[@]}"; do
    n=$(basename "$f")
    p=$R/usr/share/man/man${n##*.}/$n
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null)
    t_is "$w" "" "man --warnings -l $n: no warnings"
    t_like "$(LC_ALL=C.UTF-8 MANWIDTH=80 man -E UTF-8 -l "$p" 2>/dev/null | head -n 1)" \
        "^POLICYD-DMARC" "man renders $n (title line)"
done

# --- systemd unit ---------------------------------------------------------------------
U=$R/usr/lib/systemd/system/policyd-dmarc.service
unit=$(cat "$U")
t_like "$unit" '^ExecStart=/usr/sbin/policyd-dmarc -c /etc/policyd-dmarc/policyd-dmarc\.conf$' "unit: ExecStart with the installed paths"
t_like "$unit" '^ExecReload=/bin/kill -HUP \$MAINPID$' "unit: ExecReload sends SIGHUP"
missing=
for d in 'Type=simple' 'User=policyd-dmarc' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
    'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' 'ProtectKernelTunables=yes' \
    'ProtectKernelModules=yes' 'ProtectControlGroups=yes' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' 'RestrictNamespaces=yes' \
    'LockPersonality=yes' 'MemoryDenyWriteExecute=yes' 'SystemCallArchitectures=native' \
    'RuntimeDirectory=policyd-dmarc' 'CapabilityBoundingSet=' 'AmbientCapabilities=' \
    'WantedBy=multi-user.target'; do
    grep -qxF -- "$d" "$U" || missing="$missing [$d]"
done
t_is "$missing" "" "unit: every hardening directive present"
if command -v systemd-analyze >/dev/null; then
    # verify checks that ExecStart exists: point it at the staged binary.
    mkdir -p "$T/unit"
    sed "s|^ExecStart=/usr/sbin/|ExecStart=$R/usr/sbin/|" "$U" >"$T/unit/policyd-dmarc.service"
    out=$(systemd-analyze verify --man=no "$T/unit/policyd-dmarc.service" 2>&1)
    rc=$?
    t_is "$rc:$out" "0:" "systemd-analyze verify: no complaint"
else
    t_pass "# SKIP systemd-analyze is not installed"
fi

# --- Postfix snippet --------------------------------------------------------------------
S=$R/usr/share/doc/policyd-dmarc/postfix-main.cf.snippet
mkdir -p "$T/pf"
{ echo "compatibility_level = 3.6"; cat "$S"; } >"$T/pf/main.cf"
touch "$T/pf/master.cf"
rr=$(postconf -c "$T/pf" -h smtpd_recipient_restrictions 2>"$T/pf/err" | tr -s ' \t\n' ' ')
rr=${rr% }
t_like "$rr" 'reject_unauth_destination,? check_policy_service \{ inet:127\.0\.0\.1:10040, default_action=DUNNO \}$' \
    "snippet: check_policy_service last, after reject_unauth_destination, default_action=DUNNO"
t_is "$(cat "$T/pf/err")" "" "snippet: postconf reads it without warnings"
t_is "$(postconf -c "$T/pf" -n smtpd_data_restrictions 2>/dev/null)" "" "snippet: smtpd_data_restrictions stays commented out"
t_like "$(grep -A1 '^#smtpd_data_restrictions' "$S")" 'check_policy_service' "snippet: the data restriction is there to uncomment"
listen=$(sed -n 's/^listen = inet://p' "$R/etc/policyd-dmarc/policyd-dmarc.conf")
t_like "$rr" "inet:$listen," "snippet address = the sample config's listen ($listen)"

# --- reinstall over an edited config -------------------------------------------------
echo "workers = 3 # local edit" >>"$R/etc/policyd-dmarc/policyd-dmarc.conf"
t_ok "reinstall over the same DESTDIR" inst /usr "$R"
t_like "$(tail -n 1 "$R/etc/policyd-dmarc/policyd-dmarc.conf")" "local edit" "reinstall keeps the edited config"
t_ok "... and puts the new sample beside it" cmp -s "$PD_SRC/etc/policyd-dmarc.conf" \
    "$R/etc/policyd-dmarc/policyd-dmarc.conf.new"
rm -f "$R/etc/policyd-dmarc/policyd-dmarc.conf.new"
cp "$PD_SRC/etc/policyd-dmarc.conf" "$R/etc/policyd-dmarc/policyd-dmarc.conf"
inst /usr "$R"
t_ok "reinstall over an unchanged config writes no .new" test ! -e "$R/etc/policyd-dmarc/policyd-dmarc.conf.new"

# --- prefix /opt/pd -----------------------------------------------------------------------
O=$T/opt-root
t_ok "cmake --install --prefix /opt/pd into DESTDIR" inst /opt/pd "$O"
want=(opt/pd/sbin/policyd-dmarc opt/pd/lib/systemd/system/policyd-dmarc.service
    opt/pd/share/doc/policyd-dmarc/postfix-main.cf.snippet
    etc/opt/pd/policyd-dmarc/policyd-dmarc.conf)
for f in "${man_pages[@]}"; do
    n=$(basename "$f")
    want+=("opt/pd/share/man/man${n##*.}/$n")
done
((have_report)) && want+=(opt/pd/sbin/policyd-dmarc-report)
((have_cron)) && want+=(etc/cron.d/policyd-dmarc-report)
t_ok "/opt/pd: every file landed under the prefix (config in /etc/opt/pd, FHS)" has_files "$O" "${want[@]}"
t_is "$(cd "$O" && find . -type f | grep -vE '^\./(opt/pd|etc/opt/pd|etc/cron\.d)/' | sort)" "" \
    "/opt/pd: nothing outside opt/pd, etc/opt/pd and etc/cron.d"
t_like "$(cat "$O/opt/pd/lib/systemd/system/policyd-dmarc.service")" \
    '^ExecStart=/opt/pd/sbin/policyd-dmarc -c /etc/opt/pd/policyd-dmarc/policyd-dmarc\.conf$' \
    "/opt/pd: the unit names the prefix's program and config"
t_is "$("$O/opt/pd/sbin/policyd-dmarc" -V)" "$("$PD_BUILD/policyd-dmarc" -V)" "/opt/pd: installed -V"

# --- the reporter's cron file (when shipped) ---------------------------------------------
if ((have_cron)); then
    t_unlike "$(grep -v '^#' "$R/etc/cron.d/policyd-dmarc-report")" '/usr/local/|/opt/' "cron (/usr): no foreign prefix"
    if grep -q '/usr/sbin/policyd-dmarc' "$PD_SRC/etc/policyd-dmarc-report.cron"; then
        t_like "$(cat "$O/etc/cron.d/policyd-dmarc-report")" '/opt/pd/sbin/policyd-dmarc' "cron (/opt/pd): names the prefix's program"
    fi
else
    t_pass "# SKIP etc/policyd-dmarc-report.cron is not in the tree yet"
fi

t_done
