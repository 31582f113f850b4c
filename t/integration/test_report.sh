#!/bin/bash
# test_report.sh - policyd-dmarc-report end to end against a private Redis
# (rows seeded with t-rseed, exactly as rkeys.h/rrow.h define them), t-dnsd
# (external destination authorisation) and t/lib/capture-sendmail:
# --list, --dry-run (changes nothing), --output-dir with --keep and without,
# XSD validation of both formats, mail hand-off with internal, authorised and
# unauthorised external destinations, a failed hand-off re-sent with the same
# Report-ID, two reporters racing (one report per domain and day), the
# current day only on --day, streaming over several HSCAN batches, exit codes.
set -u
. "$PD_SRC/t/lib/harness.sh"
h_init

REPORT=$PD_BUILD/policyd-dmarc-report
RSEED=$PD_BUILD/t-rseed
XSD9990=$PD_SHARED/testdata/dmarc-aggregate/rua-rfc9990.xsd
XSD7489=$T/rua-rfc7489-nons.xsd
for b in "$REPORT" "$RSEED" "$T_DNSD"; do
    [[ -x "$b" ]] || h_bail "missing $b (build policyd-dmarc-report t-rseed t-dnsd)"
done
command -v xmllint >/dev/null || h_bail "xmllint not installed (libxml2-utils)"
# RFC 7489 reports carry no namespace: the schema's targetNamespace goes.
sed 's/targetNamespace="http:\/\/dmarc.org\/dmarc-xml\/0.1"//' \
    "$PD_SHARED/testdata/dmarc-aggregate/rua-rfc7489-maildmarc-2015.xsd" >"$XSD7489"

cat >"$T/zone" <<'EOF'
$TTL 300
b.example._report._dmarc.vendor.example. IN TXT "v=DMARC1"
race.example._report._dmarc.vendor.example. IN TXT "v=DMARC1; "
EOF
h_dnsd "$T/zone" || h_bail "t-dnsd"
h_redis || h_bail "redis"

MAIL=$T/mail
mkdir -p "$MAIL"
export CAPTURE_SENDMAIL_DIR=$MAIL

# conf NAME [extra lines]: a config in $T/NAME.conf
conf() {
    local name=$1
    shift
    {
        echo "redis = tcp:127.0.0.1:${CONF_REDIS_PORT:-$REDIS_PORT}"
        echo "redis_prefix = pd"
        echo "dns_servers = 127.0.0.1:$DNS_PORT"
        echo "dns_timeout = 1s"
        echo "dns_retries = 0"
        echo "hostname = mx.test.example"
        echo "report_org_name = Test Org"
        echo "report_email = dmarc-reports@test.example"
        echo "sendmail_command = $PD_SRC/t/lib/capture-sendmail"
        echo "log = stderr"
        echo "log_level = info"
        for l in "$@"; do echo "$l"; done
    } >"$T/$name.conf"
}
conf main
conf r7489 "report_format = rfc7489"
conf quiet "log_level = warning"

seed() { "$RSEED" -p pd | redis-cli -p "$REDIS_PORT" --pipe >/dev/null; }
# run CONF ARGS...: the reporter; stdout in $OUT, stderr in $ERR, status in $RC.
run() {
    local conf=$1
    shift
    "$REPORT" -c "$T/$conf.conf" "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(<"$T/out")
    ERR=$(<"$T/err")
}
keys() { h_redis_cli --scan --pattern '*' | sort; }
# dump: every key with its content (hash fields sorted): a change detector.
dump() {
    local k
    for k in $(keys); do
        case $(h_redis_cli type "$k") in
        hash) echo "$k $(h_redis_cli hgetall "$k" | paste - - | sort | tr '\n' ' ')" ;;
        set) echo "$k $(h_redis_cli smembers "$k" | sort | tr '\n' ' ')" ;;
        *) echo "$k $(h_redis_cli get "$k")" ;;
        esac
    done
}
nmail() { cat "$MAIL/count" 2>/dev/null || echo 0; }
# xml_of MSGFILE: the report XML of a captured mail on stdout; prints
# "subject|filename" to $T/mailinfo.
mail_xml() {
    "$H_PYTHON" - "$1" "$T/mailinfo" <<'EOF'
import email, gzip, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for part in m.walk():
    if part.get_filename():
        open(sys.argv[2], "w").write("%s|%s|%s\n" % (" ".join(str(m["Subject"]).split()), part.get_filename(), m["To"]))
        sys.stdout.write(gzip.decompress(part.get_payload(decode=True)).decode())
EOF
}
# xml_sum FILE: sum of <count> in a report
xml_sum() { grep -o '<count>[0-9]*</count>' "$1" | tr -dc '0-9\n' | awk '{ s += $1 } END { print s + 0 }'; }
xml_rid() { grep -o '<report_id>[^<]*</report_id>' "$1" | sed 's/<[^>]*>//g'; }
validate() { xmllint --noout --schema "$1" "$2" 2>"$T/xmllint.err"; }

D1=20261110
D1P=2026-11-10
TODAY=$(date -u +%Y%m%d)
TODAYP=$(date -u +%Y-%m-%d)
BEGIN1=$(date -u -d "$D1P" +%s)
END1=$((BEGIN1 + 86399))

# ---------------------------------------------------------------- day 1
seed <<EOF
pol a.example $D1 $((BEGIN1 + 100)) $((BEGIN1 + 5000)) p=reject rua=mailto:dmarc@a.example!10m
row a.example $D1 5 ip=192.0.2.1 disp=reject res=fail
row a.example $D1 7 ip=192.0.2.2 disp=none dspf=pass res=pass
row a.example $D1 2 ip=2001:db8::1 disp=none res=softfail reason=local_policy:whitelisted
pol b.example $D1 $((BEGIN1 + 10)) $((BEGIN1 + 20)) p=quarantine sp=none rua=mailto:rua@vendor.example
row b.example $D1 3 ip=198.51.100.1 disp=quarantine res=fail
pol c.example $D1 $((BEGIN1 + 10)) $((BEGIN1 + 20)) p=none rua=mailto:rua@other.example
row c.example $D1 4 ip=198.51.100.2 res=none scope=helo env=
pol n.example $D1 $((BEGIN1 + 10)) $((BEGIN1 + 20)) p=none
row n.example $D1 1 ip=203.0.113.9 res=neutral
EOF
h_is "$(h_redis_cli hlen "pd:rpt:{a.example}:$D1")" 3 "seeded: 3 rows for a.example"

run main --list
h_is "$RC" 0 "--list exits 0"
h_like "$OUT" "^$D1P +a\.example +3 +14 +pending" "--list: a.example 3 rows 14 messages, pending"
h_like "$OUT" "^$D1P +n\.example +1 +1 " "--list: n.example"
h_is "$(grep -c "^$D1P" <<<"$OUT")" 4 "--list: four domains"

before=$(dump)
run main --dry-run
h_is "$RC" 0 "--dry-run exits 0"
h_like "$OUT" "^$D1P a\.example send to=dmarc@a\.example size=[0-9]+ rows=3 messages=14 id=$D1\.[0-9a-f]{8}\.[0-9a-f]{8} \(new\)" \
    "--dry-run: recipient, size, report id of a.example"
h_like "$OUT" "^$D1P b\.example send to=rua@vendor\.example " "--dry-run: authorised external destination"
h_unlike "$OUT" "c\.example send" "--dry-run: unauthorised external destination not sent to"
h_like "$ERR" "rua@other\.example not authorised" "--dry-run: says why"
h_is "$(dump)" "$before" "--dry-run changed nothing in Redis (no lock, rid, snapshot, deletion)"
h_is "$(nmail)" 0 "--dry-run mailed nothing"

# ---------------------------------------------------------------- files, both formats
mkdir -p "$T/out9990" "$T/out7489"
run main --output-dir "$T/out9990" --keep
h_is "$RC" 0 "--output-dir --keep exits 0"
h_is "$(dump)" "$before" "--keep: data untouched"
h_is "$(ls "$T/out9990" | wc -l)" 4 "one file per domain (rua or not)"
f=$T/out9990/Test_Org!a.example!$BEGIN1!$END1!
h_check "file named <submitter>!<domain>!<begin>!<end>!<id>.xml.gz" test -n "$(compgen -G "$f$D1.*.xml.gz")"
total=0
ok=1
for z in "$T"/out9990/*.xml.gz; do
    gunzip -c "$z" >"${z%.gz}"
    validate "$XSD9990" "${z%.gz}" || { ok=0; h_diag "$(cat "$T/xmllint.err")"; }
    total=$((total + $(xml_sum "${z%.gz}")))
done
h_is "$ok" 1 "RFC 9990 reports validate against rua-rfc9990.xsd"
h_is "$total" 22 "counts in the files sum to what was seeded"
x=$(ls "$T"/out9990/*a.example*.xml)
h_like "$(<"$x")" "<begin>$BEGIN1</begin>" "date_range begins at the UTC day start"
h_like "$(<"$x")" "<end>$END1</end>" "date_range ends at the UTC day end"
h_is "$(xml_rid "$x")" "$(basename "$x" .xml | sed 's/.*!//')" "report_id in the XML = id in the file name"

run r7489 --output-dir "$T/out7489" --keep
ok=1
for z in "$T"/out7489/*.xml.gz; do
    gunzip -c "$z" >"${z%.gz}"
    validate "$XSD7489" "${z%.gz}" || { ok=0; h_diag "$(cat "$T/xmllint.err")"; }
done
h_is "$(ls "$T"/out7489/*.xml | wc -l)" 4 "RFC 7489: four files"
h_is "$ok" 1 "RFC 7489 reports validate against the 2015 schema (no namespace)"

# ---------------------------------------------------------------- mail
run main
h_is "$RC" 0 "mail run exits 0"
h_is "$(nmail)" 2 "two mails: a.example (internal) and b.example (authorised external)"
for n in 1 2; do
    mail_xml "$MAIL/$n.msg" >"$T/m$n.xml"
    validate "$XSD9990" "$T/m$n.xml" || h_diag "$(cat "$T/xmllint.err")"
    cp "$T/mailinfo" "$T/m$n.info"
done
info=$(cat "$T"/m1.info "$T"/m2.info)
h_like "$info" "^Report Domain: a\.example Submitter: Test Org Report-ID: $D1\.[0-9a-f.]+\|Test_Org!a\.example!$BEGIN1!$END1!$D1\.[0-9a-f.]+\.xml\.gz\|dmarc@a\.example$" \
    "a.example: Subject, attachment name, To"
h_like "$info" "^Report Domain: b\.example .*\|rua@vendor\.example$" "b.example mailed to the authorised vendor"
h_like "$(cat "$MAIL"/1.argv "$MAIL"/2.argv | sort -u | tr '\n' ' ')" "^-f -oi -t dmarc-reports@test\.example $" \
    "sendmail argv: -t -oi -f report_email"
h_like "$ERR" "rua@other\.example not authorised" "unauthorised destination logged"
h_is "$(keys | grep -c ":$D1" )" 0 "every key of the day deleted (sent, dropped ones too)"
h_is "$(h_redis_cli sismember pd:days $D1)" 0 "the day left the days set"
run main
h_is "$RC:$(nmail)" "0:2" "a second run has nothing to do"
run quiet
h_is "$RC:$ERR:$OUT" "0::" "quiet under cron when nothing to do"

# ---------------------------------------------------------------- authorisation added
D2=20261111
B2=$(date -u -d 2026-11-11 +%s)
seed <<EOF
pol c.example $D2 $B2 $B2 p=none rua=mailto:rua@other.example
row c.example $D2 9 ip=198.51.100.2
EOF
echo 'c.example._report._dmarc.other.example. IN TXT "v=DMARC1"' >>"$T/zone"
h_dnsd_reload || h_bail "t-dnsd reload"
run main
h_is "$RC:$(nmail)" "0:3" "with the _report._dmarc record the external destination gets it"
mail_xml "$MAIL/3.msg" >/dev/null
h_like "$(<"$T/mailinfo")" "^Report Domain: c\.example .*\|rua@other\.example$" "c.example mailed to other.example"

# ---------------------------------------------------------------- failed hand-off
D3=20261112
B3=$(date -u -d 2026-11-12 +%s)
seed <<EOF
pol a.example $D3 $B3 $B3 p=reject rua=mailto:dmarc@a.example
row a.example $D3 11 ip=192.0.2.7
EOF
echo "1 75" >"$MAIL/fail"
run main
h_is "$RC" 3 "a failed hand-off exits 3"
h_like "$ERR" "hand-off failed" "the failure is reported"
h_is "$(h_redis_cli hlen "pd:snap:{a.example}:$D3")" 1 "data kept (in the snapshot)"
rid=$(h_redis_cli get "pd:rid:{a.example}:$D3")
h_like "$rid" "^$D3\.[0-9a-f]{8}\.[0-9a-f]{8}$" "report id stored at the first attempt"
h_is "$(h_redis_cli exists "pd:lock:{a.example}:$D3")" 0 "lock released"
run main --list
h_like "$OUT" "^2026-11-12 +a\.example +1 +11 +retry +$rid" "--list shows the retry with its id"
# a row arriving meanwhile (buffered by a daemon) must not join the re-sent report
seed <<EOF
row a.example $D3 100 ip=192.0.2.99
EOF
run main
h_is "$RC:$(nmail)" "0:5" "the next run re-sends"
mail_xml "$MAIL/4.msg" >"$T/f1.xml"
cp "$T/mailinfo" "$T/f1.info"
mail_xml "$MAIL/5.msg" >"$T/f2.xml"
cp "$T/mailinfo" "$T/f2.info"
h_is "$(cut -d'|' -f1,2 "$T/f2.info")" "$(cut -d'|' -f1,2 "$T/f1.info")" "same Subject and file name on the re-send"
h_is "$(xml_rid "$T/f2.xml")" "$rid" "same report_id in the XML"
h_is "$(xml_rid "$T/f1.xml")" "$rid" "(the failed attempt had it too)"
h_is "$(xml_sum "$T/f2.xml")" 11 "the re-send reports the same rows"
h_is "$(h_redis_cli hget "pd:rpt:{a.example}:$D3" "$(h_redis_cli hkeys "pd:rpt:{a.example}:$D3" | head -1)")" 100 \
    "the late row stays for a later report"
h_is "$(h_redis_cli exists "pd:rid:{a.example}:$D3" "pd:snap:{a.example}:$D3" "pd:sent:{a.example}:$D3")" 0 \
    "rid, snapshot and sent deleted after the hand-off"
run main
h_is "$RC:$(nmail)" "0:6" "the late row goes out in its own report"
mail_xml "$MAIL/6.msg" >"$T/f3.xml"
h_is "$(xml_sum "$T/f3.xml")" 100 "with its count"
h_unlike "$(xml_rid "$T/f3.xml")" "^$rid$" "under a new report id"

# crash after the hand-off, before deletion: sent is set -> no re-send
D4=20261113
B4=$(date -u -d 2026-11-13 +%s)
seed <<EOF
pol a.example $D4 $B4 $B4 p=reject rua=mailto:dmarc@a.example
row a.example $D4 1 ip=192.0.2.7
EOF
# as left by a run that stopped after SET sent: snapshot, rid and sent exist
h_redis_cli rename "pd:rpt:{a.example}:$D4" "pd:snap:{a.example}:$D4" >/dev/null
h_redis_cli set "pd:rid:{a.example}:$D4" "$D4.00000000.00000000" >/dev/null
h_redis_cli set "pd:sent:{a.example}:$D4" "$D4.00000000.00000000" >/dev/null
run main
h_is "$RC:$(nmail)" "0:6" "sent already set: no second mail"
h_is "$(keys | grep -c ":$D4")" 0 "...and the data is deleted"

# ---------------------------------------------------------------- race
D5=20261114
B5=$(date -u -d 2026-11-14 +%s)
{
    for i in 1 2 3 4 5 6 7 8; do
        echo "pol d$i.example $D5 $B5 $B5 p=none rua=mailto:r@d$i.example"
        echo "rows d$i.example $D5 40 2"
    done
    echo "pol race.example $D5 $B5 $B5 p=none rua=mailto:rua@vendor.example"
    echo "rows race.example $D5 300 1"
} | seed
mkdir -p "$T/mailA" "$T/mailB"
CAPTURE_SENDMAIL_DIR=$T/mailA "$REPORT" -v -c "$T/main.conf" >/dev/null 2>"$T/errA" &
pa=$!
CAPTURE_SENDMAIL_DIR=$T/mailB "$REPORT" -v -c "$T/main.conf" >/dev/null 2>"$T/errB" &
pb=$!
wait $pa
ra=$?
wait $pb
rb=$?
h_is "$ra:$rb" "0:0" "two reporters at once both exit 0"
na=$(cat "$T/mailA/count" 2>/dev/null || echo 0)
nb=$(cat "$T/mailB/count" 2>/dev/null || echo 0)
h_is "$((na + nb))" 9 "exactly one report per domain and day between them ($na + $nb)"
doms=$(for f in "$T"/mailA/*.msg "$T"/mailB/*.msg; do [[ -f $f ]] && grep -m1 '^Subject:' "$f"; done |
    sed 's/.*Report Domain: \([^ ]*\).*/\1/' | sort | uniq -c | awk '$1 != 1' | wc -l)
h_is "$doms" 0 "no domain reported twice"
h_is "$(keys | grep -c ":$D5")" 0 "all data of the day deleted"
h_diag "race: A sent $na, B sent $nb; skipped as locked by the other: $(cat "$T/errA" "$T/errB" | grep -c ': locked by another run, skipped')"

# ---------------------------------------------------------------- the current day; streaming
seed <<EOF
pol big.example $TODAY $(date +%s) $(date +%s) p=none rua=mailto:r@big.example
rows big.example $TODAY 5000 3
EOF
run main
h_is "$RC:$(nmail)" "0:6" "the current day is not reported by default"
h_is "$(h_redis_cli hlen "pd:rpt:{big.example}:$TODAY")" 5000 "...and kept"
mkdir -p "$T/outbig"
# maxrss CMD...: run CMD (stdout/stderr to $T/out, $T/err), print its peak RSS in KiB; status in $T/rc
maxrss() {
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0 "$H_PYTHON" -c '
import resource, subprocess, sys
with open(sys.argv[1] + "/out", "w") as o, open(sys.argv[1] + "/err", "w") as e:
    rc = subprocess.call(sys.argv[2:], stdout=o, stderr=e)
open(sys.argv[1] + "/rc", "w").write(str(rc))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$T" "$@"
    # (under AddressSanitizer, freed memory sits in its quarantine: none here)
}
rss1=$(maxrss "$REPORT" -c "$T/main.conf" --day "$TODAYP" --domain BIG.example. --output-dir "$T/outbig")
h_is "$(<"$T/rc")" 0 "--day today --domain --output-dir exits 0"
z=$(ls "$T"/outbig/*.xml.gz)
gunzip -c "$z" >"$T/big.xml"
h_is "$(grep -c '<record>' "$T/big.xml"):$(xml_sum "$T/big.xml")" "5000:15000" \
    "5000 rows over several HSCAN batches, each once"
validate "$XSD9990" "$T/big.xml"
h_is "$?" 0 "the big report validates"
h_is "$(keys | grep -c "big.example")" 0 "--output-dir without --keep deletes the data"
seed <<EOF
pol huge.example $TODAY $(date +%s) $(date +%s) p=none rua=mailto:r@huge.example
rows huge.example $TODAY 60000 1
EOF
mkdir -p "$T/outhuge"
rss2=$(maxrss "$REPORT" -c "$T/main.conf" --day "$TODAYP" --domain huge.example --output-dir "$T/outhuge")
h_is "$(<"$T/rc"):$(gunzip -c "$T"/outhuge/*.xml.gz | grep -c '<record>')" "0:60000" "60000 rows reported"
h_check "memory bounded: peak RSS $rss1 KiB for 5000 rows, $rss2 KiB for 60000" test "$rss2" -lt $((rss1 + 4096))

# ---------------------------------------------------------------- errors
run main --day 2026-13-01
h_is "$RC" 1 "bad --day: exit 1"
run main --keep
h_is "$RC" 1 "--keep without --output-dir: exit 1"
echo "no_such_setting = 1" >"$T/bad.conf"
run bad
h_is "$RC" 1 "bad config: exit 1"
h_like "$ERR" "bad\.conf:1" "config error names file:line"
port=$(h_free_port)
CONF_REDIS_PORT=$port conf noredis
run noredis
h_is "$RC" 2 "Redis unreachable: exit 2"

h_done
