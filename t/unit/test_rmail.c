/* test_rmail.c - the report mail: headers exact (checked raw here and parsed
 * back by python3's email package), base64 attachment decodes to the file
 * bytes for sizes around the 57-byte line boundary; rmail_send through
 * t/lib/capture-sendmail: argv exactly "-t -oi -f FROM", stdin = rmail_write
 * output, non-zero exit / early exit (EPIPE) / signal -> -1 with the status,
 * shell metacharacters passed literally (no shell ran). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmail.h"
#include "tap.h"

static char tmp[256];
static const char *src_dir;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    size_t n = 0, cap = 0, k;

    if (f == NULL)
        return NULL;
    do {
        if (cap - n < 65536) {
            cap = cap * 2 + 65536;
            b = realloc(b, cap + 1);
        }
        k = fread(b + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

static void spew(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static void spew_str(const char *path, const char *s)
{
    spew(path, s, strlen(s));
}

/* A message's lines, by index. */
static int has_line(const char *msg, const char *line)
{
    size_t l = strlen(line);
    const char *p = msg;

    while (p && *p) {
        if (strncmp(p, line, l) == 0 && (p[l] == '\n' || p[l] == '\0'))
            return 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

/* header_block: the header part (up to the first empty line), caller frees. */
static char *header_block(const char *msg)
{
    const char *e = strstr(msg, "\n\n");
    return e ? strndup(msg, (size_t)(e - msg) + 1) : strdup(msg);
}

/* parsed: the key\tvalue file written by the python checker. */
static char parsed[16384];

static const char *pget(const char *key)
{
    static char v[4096];
    size_t kl = strlen(key);
    const char *p = parsed;

    while (*p) {
        const char *e = strchr(p, '\n');
        size_t ll = e ? (size_t)(e - p) : strlen(p);
        if (ll > kl && strncmp(p, key, kl) == 0 && p[kl] == '\t') {
            snprintf(v, sizeof(v), "%.*s", (int)(ll - kl - 1), p + kl + 1);
            return v;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return "(missing)";
}

static const char *checker_py =
    "import sys, email, email.policy, email.utils\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "msg = email.message_from_bytes(raw, policy=email.policy.default)\n"
    "out = open(sys.argv[2] + '/parsed.txt', 'w')\n"
    "def put(k, v): out.write('%s\\t%s\\n' % (k, str(v).replace('\\n', '\\\\n')))\n"
    "for h in ['From', 'Message-ID', 'MIME-Version', 'Auto-Submitted', 'Subject']:\n"
    "    put(h, msg[h])\n"
    "put('To', ','.join(a.addr_spec for a in msg['To'].addresses))\n"
    "put('ncount-To', len(msg.get_all('To')))\n"
    "put('ncount-Subject', len(msg.get_all('Subject')))\n"
    "put('Bcc', msg['Bcc'])\n"
    "d = email.utils.parsedate_to_datetime(str(msg['Date']))\n"
    "put('date-utc', d.utcoffset().total_seconds() == 0)\n"
    "put('type', msg.get_content_type())\n"
    "parts = list(msg.iter_parts())\n"
    "put('nparts', len(parts))\n"
    "put('p1-type', parts[0].get_content_type())\n"
    "put('p1-charset', parts[0].get_content_charset())\n"
    "put('p1-text', parts[0].get_content())\n"
    "a = parts[1]\n"
    "put('p2-type', a.get_content_type())\n"
    "put('p2-name', a.get_param('name'))\n"
    "put('p2-filename', a.get_filename())\n"
    "put('p2-disposition', a.get_content_disposition())\n"
    "put('p2-cte', a['Content-Transfer-Encoding'])\n"
    "open(sys.argv[2] + '/decoded.bin', 'wb').write(a.get_payload(decode=True))\n"
    "put('defects', len(msg.defects) + sum(len(p.defects) for p in parts))\n";

/* check_b64_lines: every base64 line of the attachment is 76 chars but the
 * last, which is 1..76. Returns 1 when so. */
static int check_b64_lines(const char *msg)
{
    const char *p = strstr(msg, "Content-Transfer-Encoding: base64\n\n");
    int last_short = 0;

    if (p == NULL)
        return 0;
    p += strlen("Content-Transfer-Encoding: base64\n\n");
    while (*p && *p != '\n' && strncmp(p, "--", 2) != 0) {
        const char *e = strchr(p, '\n');
        size_t l;
        if (e == NULL)
            return 0;
        l = (size_t)(e - p);
        if (last_short || l == 0 || l > 76 || l % 4 != 0)
            return 0;
        if (l < 76)
            last_short = 1;
        p = e + 1;
    }
    return 1;
}

static void init_msg(struct rmail_msg *m, const char *const *to, size_t n_to, const char *att)
{
    memset(m, 0, sizeof(*m));
    m->from = "dmarc-reports@mx.example.net";
    m->to = to;
    m->n_to = n_to;
    m->domain = "example.com";
    m->org_name = "Example Net";
    m->report_id = "1700000000.abc123";
    m->attachment_path = att;
    m->attachment_name = "Example_Net!example.com!1699920000!1700006399!1700000000.abc123.xml.gz";
    m->message_id_domain = "mx.example.net";
}

/* write_and_parse: rmail_write to tmp/msg.eml and run the python checker. */
static char *write_and_parse(const struct rmail_msg *m, const char *what)
{
    char path[512], cmd[1200], err[256] = "";
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/msg.eml", tmp);
    f = fopen(path, "w");
    rc = rmail_write(f, m, err, sizeof(err));
    fclose(f);
    if (!is_int(rc, 0, "%s: rmail_write ok (%s)", what, err))
        return NULL;
    snprintf(cmd, sizeof(cmd), "python3 %s/check.py %s %s", tmp, path, tmp);
    unlink(strcat(strcpy(parsed, tmp), "/parsed.txt"));
    if (!is_int(system(cmd), 0, "%s: python email parses it", what))
        return NULL;
    snprintf(cmd, sizeof(cmd), "%s/parsed.txt", tmp);
    {
        char *p = slurp(cmd, NULL);
        snprintf(parsed, sizeof(parsed), "%s", p ? p : "");
        free(p);
    }
    return slurp(path, NULL);
}

static void test_sizes(void)
{
    static const size_t sizes[] = {0, 1, 2, 3, 56, 57, 58, 114, 57 * 64, 57 * 64 + 1, 100003};
    static const char *const to[] = {"rua@example.com"};
    char att[512], dec[512];
    unsigned char *data = malloc(100003);
    size_t i, j;

    for (j = 0; j < 100003; j++)
        data[j] = (unsigned char)(j * 7 + j / 251);
    snprintf(att, sizeof(att), "%s/att.bin", tmp);
    snprintf(dec, sizeof(dec), "%s/decoded.bin", tmp);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct rmail_msg m;
        char what[64], *msg, *got;
        size_t gl = 0;

        snprintf(what, sizeof(what), "attachment of %zu bytes", sizes[i]);
        spew(att, data, sizes[i]);
        init_msg(&m, to, 1, att);
        msg = write_and_parse(&m, what);
        if (msg == NULL)
            continue;
        got = slurp(dec, &gl);
        ok(got && gl == sizes[i] && memcmp(got, data, gl) == 0, "%s: base64 decodes to the file",
           what);
        ok(check_b64_lines(msg), "%s: base64 lines are 76 characters (last shorter)", what);
        is_str(pget("defects"), "0", "%s: no MIME defects", what);
        free(got);
        free(msg);
    }
    free(data);
}

static void test_headers(void)
{
    static const char *const to[] = {"rua@example.com", "dmarc-feedback@reports.example.org",
                                     "agg+x@third.example",
                                     "a-very-long-mailbox-name@"
                                     "aggregate-reports.example.info"};
    char att[512], *msg, *hdr;
    struct rmail_msg m;
    int y, d, hh, mm, ss, lines_ok = 1;
    char wd[8], mon[8], tz[8];
    const char *p;

    snprintf(att, sizeof(att), "%s/att.gz", tmp);
    spew_str(att, "not really gzip");
    init_msg(&m, to, 4, att);
    msg = write_and_parse(&m, "headers");
    if (msg == NULL)
        return;
    hdr = header_block(msg);
    ok(has_line(hdr, "From: dmarc-reports@mx.example.net"), "From: line exact");
    ok(has_line(hdr, "MIME-Version: 1.0"), "MIME-Version: 1.0");
    ok(has_line(hdr, "Auto-Submitted: auto-generated"), "Auto-Submitted: auto-generated");
    ok(has_line(hdr, "Message-ID: <1700000000.abc123@mx.example.net>"), "Message-ID exact");
    ok(has_line(hdr, "Subject: Report Domain: example.com Submitter: Example Net Report-ID:") &&
           has_line(hdr, " 1700000000.abc123"),
       "Subject exact, folded before 78 characters");
    p = strstr(hdr, "\nDate: ");
    ok(p &&
           sscanf(p, "\nDate: %3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %5s", wd, &d, mon, &y, &hh,
                  &mm, &ss, tz) == 8 &&
           strcmp(tz, "+0000") == 0,
       "Date in RFC 5322 form, UTC");
    ok(strstr(hdr, "Content-Type: multipart/mixed;") != NULL, "multipart/mixed");
    for (p = hdr; *p;) {
        const char *e = strchr(p, '\n');
        if ((e ? (size_t)(e - p) : strlen(p)) > 78)
            lines_ok = 0;
        p = e ? e + 1 : p + strlen(p);
    }
    ok(lines_ok, "header lines folded to <= 78 characters");
    is_str(pget("From"), "dmarc-reports@mx.example.net", "parsed From");
    is_str(pget("To"),
           "rua@example.com,dmarc-feedback@reports.example.org,agg+x@third.example,"
           "a-very-long-mailbox-name@aggregate-reports.example.info",
           "parsed To: all recipients");
    is_str(pget("ncount-To"), "1", "one To: header");
    is_str(pget("Subject"),
           "Report Domain: example.com Submitter: Example Net Report-ID: 1700000000.abc123",
           "parsed Subject");
    is_str(pget("Message-ID"), "<1700000000.abc123@mx.example.net>", "parsed Message-ID");
    is_str(pget("Auto-Submitted"), "auto-generated", "parsed Auto-Submitted");
    is_str(pget("date-utc"), "True", "parsed Date is UTC");
    is_str(pget("type"), "multipart/mixed", "parsed type");
    is_str(pget("nparts"), "2", "two parts");
    is_str(pget("p1-type"), "text/plain", "part 1 text/plain");
    ok(strstr(pget("p1-text"), "Report Domain: example.com") != NULL, "text part names the domain");
    is_str(pget("p2-type"), "application/gzip", "part 2 application/gzip");
    is_str(pget("p2-name"), m.attachment_name, "Content-Type name=");
    is_str(pget("p2-filename"), m.attachment_name, "Content-Disposition filename=");
    is_str(pget("p2-disposition"), "attachment", "attachment disposition");
    is_str(pget("p2-cte"), "base64", "base64 transfer encoding");
    is_str(pget("defects"), "0", "no MIME defects");
    free(hdr);
    free(msg);
}

static void test_hostile_headers(void)
{
    static const char *const to[] = {"rua@example.com\r\nBcc: victim@evil.example"};
    static const char *const clean_to[] = {"rua@example.com"};
    char att[512], *msg, *hdr;
    struct rmail_msg m;

    snprintf(att, sizeof(att), "%s/att.gz", tmp);
    init_msg(&m, to, 1, att);
    m.org_name = "Evil\r\nBcc: victim@evil.example";
    m.domain = "example.com\nX-Injected: 1";
    m.report_id = "id\r\n\r\nbody";
    m.attachment_name = "a\"b\\c\r\n.xml.gz";
    msg = write_and_parse(&m, "CR/LF injection");
    if (msg == NULL)
        return;
    hdr = header_block(msg);
    ok(strstr(hdr, "\nBcc:") == NULL && strstr(hdr, "\nX-Injected") == NULL,
       "no injected header line");
    is_str(pget("Bcc"), "None", "parsed: no Bcc header");
    is_str(pget("Subject"),
           "Report Domain: example.com X-Injected: 1 Submitter: Evil Bcc: victim@evil.example "
           "Report-ID: id body",
           "controls in the Subject became (folding) white space");
    is_str(pget("ncount-Subject"), "1", "one Subject");
    is_str(pget("p2-filename"), "a_b_c__.xml.gz", "quotes/backslash/controls out of filename");
    free(hdr);
    free(msg);

    /* non-ASCII: RFC 2047, long enough for several encoded words */
    init_msg(&m, clean_to, 1, att);
    m.org_name = "Bücher & Söhne GmbH — Dépôt Ünïcödé ÆØÅ 日本語の組織名前テスト";
    msg = write_and_parse(&m, "non-ASCII submitter");
    if (msg == NULL)
        return;
    hdr = header_block(msg);
    ok(strstr(hdr, "Subject: =?UTF-8?B?") != NULL, "Subject RFC 2047-encoded");
    {
        const char *p;
        int ascii = 1;
        for (p = hdr; *p; p++)
            if ((unsigned char)*p >= 0x80)
                ascii = 0;
        ok(ascii, "header block is pure ASCII");
    }
    is_str(pget("Subject"),
           "Report Domain: example.com Submitter: Bücher & Söhne GmbH — Dépôt Ünïcödé ÆØÅ "
           "日本語の組織名前テスト Report-ID: 1700000000.abc123",
           "decoded Subject exact");
    is_str(pget("p1-charset"), "utf-8", "text part utf-8");
    is_str(pget("defects"), "0", "no MIME defects");
    free(hdr);
    free(msg);

    /* a long ASCII subject is folded and unfolds to the original */
    init_msg(&m, clean_to, 1, att);
    m.domain = "a-rather-long-subdomain-label.another-long-label.yet-another-label."
               "example-organisation.example";
    m.org_name = "A Reporting Organisation With A Long Name Incorporated";
    msg = write_and_parse(&m, "long subject");
    if (msg == NULL)
        return;
    is_str(pget("Subject"),
           "Report Domain: a-rather-long-subdomain-label.another-long-label.yet-another-label."
           "example-organisation.example Submitter: A Reporting Organisation With A Long Name "
           "Incorporated Report-ID: 1700000000.abc123",
           "folded Subject unfolds exact");
    free(msg);
}

/* normalise: drop the Date line and replace the boundary by a fixed word,
 * the only parts of the message that differ between two writes. */
static char *normalise(const char *msg)
{
    char bnd[128], *out = malloc(strlen(msg) + 1), *o = out;
    const char *b = strstr(msg, "boundary=\"");
    size_t bl = 0;

    if (b && sscanf(b, "boundary=\"%127[^\"]", bnd) == 1)
        bl = strlen(bnd);
    const char *start = msg;

    while (*msg) {
        if (strncmp(msg, "Date: ", 6) == 0 && (msg == start || msg[-1] == '\n')) {
            const char *e = strchr(msg, '\n');
            msg = e ? e + 1 : msg + strlen(msg);
            continue;
        }
        if (bl && strncmp(msg, bnd, bl) == 0) {
            o += sprintf(o, "B");
            msg += bl;
            continue;
        }
        *o++ = *msg++;
    }
    *o = '\0';
    return out;
}

static char *capfile(const char *dir, int n, const char *ext)
{
    static char p[600];
    snprintf(p, sizeof(p), "%s/%d.%s", dir, n, ext);
    return p;
}

static void test_send(void)
{
    static const char *const to[] = {"rua@example.com", "other@example.org"};
    char cmd[512], dir[512], att[512], path[600], err[512] = "";
    char *got, *want, *nw, *ng;
    struct rmail_msg m;
    struct sigaction sa;
    FILE *f;
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/t/lib/capture-sendmail", src_dir);
    snprintf(dir, sizeof(dir), "%s/cap", tmp);
    mkdir(dir, 0700);
    setenv("CAPTURE_SENDMAIL_DIR", dir, 1);
    snprintf(att, sizeof(att), "%s/send.gz", tmp);
    {
        unsigned char b[5000];
        size_t i;
        for (i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)(i * 13);
        spew(att, b, sizeof(b));
    }
    init_msg(&m, to, 2, att);

    rc = rmail_send(cmd, &m, err, sizeof(err));
    is_int(rc, 0, "rmail_send via capture-sendmail (%s)", err);
    got = slurp(capfile(dir, 1, "argv"), NULL);
    is_str(got, "-t\n-oi\n-f\ndmarc-reports@mx.example.net\n", "argv exactly -t -oi -f FROM");
    free(got);
    snprintf(path, sizeof(path), "%s/direct.eml", tmp);
    f = fopen(path, "w");
    rmail_write(f, &m, err, sizeof(err));
    fclose(f);
    want = slurp(path, NULL);
    got = slurp(capfile(dir, 1, "msg"), NULL);
    nw = normalise(want);
    ng = got ? normalise(got) : strdup("");
    ok(strlen(ng) > 6000, "sendmail received the whole message (%zu bytes)", strlen(ng));
    is_str(ng, nw, "stdin equals rmail_write output (Date, boundary aside)");
    free(got);
    free(want);
    free(nw);
    free(ng);

    /* fails twice with 75 (EX_TEMPFAIL), then works */
    snprintf(path, sizeof(path), "%s/fail", dir);
    spew_str(path, "2 75\n");
    rc = rmail_send(cmd, &m, err, sizeof(err));
    ok(rc == -1 && strstr(err, "exited with status 75") != NULL, "exit 75 -> -1 (%s)", err);
    rc = rmail_send(cmd, &m, err, sizeof(err));
    ok(rc == -1 && strstr(err, "status 75") != NULL, "second failure too");
    rc = rmail_send(cmd, &m, err, sizeof(err));
    is_int(rc, 0, "third call succeeds (%s)", err);
    ok(access(capfile(dir, 4, "msg"), F_OK) == 0, "fourth call captured");

    /* exits before reading: EPIPE for us, not SIGPIPE; status reported */
    {
        size_t n = 3u << 20, i;
        unsigned char *big = malloc(n);
        uint32_t x = 12345;
        for (i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            big[i] = (unsigned char)(x >> 24);
        }
        spew(att, big, n);
        free(big);
    }
    spew_str(path, "1 3 early\n");
    rc = rmail_send(cmd, &m, err, sizeof(err));
    ok(rc == -1 && strstr(err, "exited with status 3") != NULL,
       "early exit with a 3 MB message -> -1, status 3, we survived (%s)", err);
    sigaction(SIGPIPE, NULL, &sa);
    ok(sa.sa_handler == SIG_DFL, "SIGPIPE disposition restored");

    /* shell metacharacters are data */
    {
        char marker[300], from[1024], *argv_got, want_argv[1200];
        struct rmail_msg h;

        snprintf(marker, sizeof(marker), "%s/pwned", tmp);
        snprintf(from, sizeof(from), "$(touch %s)`touch %s`;touch %s|x&y@ex'am\"ple.net", marker,
                 marker, marker);
        spew(att, "x", 1);
        init_msg(&h, to, 1, att);
        h.from = from;
        h.domain = from;
        h.org_name = from;
        rc = rmail_send(cmd, &h, err, sizeof(err));
        is_int(rc, 0, "metacharacter sender sent (%s)", err);
        argv_got = slurp(capfile(dir, 6, "argv"), NULL);
        snprintf(want_argv, sizeof(want_argv), "-t\n-oi\n-f\n%s\n", from);
        is_str(argv_got, want_argv, "sender passed literally as one argument");
        ok(access(marker, F_OK) != 0, "no shell ran (marker absent)");
        free(argv_got);
    }

    /* killed by a signal */
    {
        char killer[600];
        snprintf(killer, sizeof(killer), "%s/killer", tmp);
        spew_str(killer, "#!/bin/sh\nkill -TERM $$\n");
        chmod(killer, 0755);
        rc = rmail_send(killer, &m, err, sizeof(err));
        ok(rc == -1 && strstr(err, "signal 15") != NULL, "killed by SIGTERM -> -1 (%s)", err);
    }
    rc = rmail_send("/nonexistent/sendmail", &m, err, sizeof(err));
    ok(rc == -1 && strstr(err, "/nonexistent/sendmail") != NULL, "missing command -> -1 (%s)", err);
    m.attachment_path = "/nonexistent/att.gz";
    rc = rmail_send(cmd, &m, err, sizeof(err));
    ok(rc == -1 && strstr(err, "att.gz") != NULL, "missing attachment -> -1 (%s)", err);
}

int main(void)
{
    char path[512];

    src_dir = getenv("PD_SRC") ? getenv("PD_SRC") : ".";
    snprintf(tmp, sizeof(tmp), "/tmp/test_rmail.XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/check.py", tmp);
    spew_str(path, checker_py);

    test_headers();
    test_sizes();
    test_hostile_headers();
    test_send();

    if (tap_done() == 0) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            diag("could not remove %s", tmp);
        return 0;
    }
    diag("files kept in %s", tmp);
    return 1;
}
