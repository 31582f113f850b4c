/* rmail.c - the aggregate-report mail: a multipart/mixed MIME message (short
 * text part + base64 gzip attachment, 76-character lines, streamed from the
 * file so memory does not depend on its size) and its hand-off to the local
 * MTA through `sendmail -t -oi -f FROM` run with fork + execv: no shell ever
 * sees the configured command or the addresses, so nothing in them is
 * interpreted. Header values are ours or the operator's, but are still
 * cleaned: CR, LF and other controls become spaces (no header injection),
 * and a Subject with non-ASCII text is RFC 2047-encoded. */
#include "rmail.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FOLD_AT 78 /* RFC 5322 §2.1.1 recommended line length */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* clean: s with controls (CR and LF included) turned into spaces; caller
 * frees. NULL on allocation failure. */
static char *clean(const char *s)
{
    char *d = strdup(s ? s : "");
    char *p;

    if (d == NULL)
        return NULL;
    for (p = d; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return d;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* b64_block: encode n (1..3) bytes of in as 4 characters into out. */
static void b64_block(const unsigned char *in, size_t n, char *out)
{
    uint32_t v = (uint32_t)in[0] << 16 | (n > 1 ? (uint32_t)in[1] << 8 : 0) | (n > 2 ? in[2] : 0);

    out[0] = b64[v >> 18 & 63];
    out[1] = b64[v >> 12 & 63];
    out[2] = n > 1 ? b64[v >> 6 & 63] : '=';
    out[3] = n > 2 ? b64[v & 63] : '=';
}

/* b64_line: encode n bytes (n <= 57) as one line of at most 76 characters. */
static void b64_line(FILE *fp, const unsigned char *in, size_t n)
{
    char out[80];
    size_t i, o = 0;

    for (i = 0; i < n; i += 3) {
        b64_block(in + i, n - i < 3 ? n - i : 3, out + o);
        o += 4;
    }
    out[o++] = '\n';
    fwrite(out, 1, o, fp);
}

/* write_subject: "Subject: ..." folded at FOLD_AT; RFC 2047 B-encoded
 * words (UTF-8, 45 input bytes each, never splitting a character) when the
 * text is not ASCII. */
static void write_subject(FILE *fp, const char *s)
{
    size_t col, n = strlen(s), i, wl;

    if (is_ascii(s)) {
        fputs("Subject:", fp);
        col = 8;
        while (*s) {
            while (*s == ' ')
                s++;
            if (*s == '\0')
                break;
            wl = strcspn(s, " ");
            if (col > 9 && col + 1 + wl > FOLD_AT) {
                fputs("\n", fp);
                col = 0;
            }
            fputc(' ', fp);
            fwrite(s, 1, wl, fp);
            col += 1 + wl;
            s += wl;
        }
        fputc('\n', fp);
        return;
    }
    fputs("Subject:", fp);
    for (i = 0; i < n;) {
        char enc[64];
        size_t k = n - i > 45 ? 45 : n - i, j, o = 0;

        while (k > 1 && i + k < n && ((unsigned char)s[i + k] & 0xc0) == 0x80)
            k--; /* do not cut a UTF-8 sequence */
        for (j = 0; j < k; j += 3) {
            b64_block((const unsigned char *)s + i + j, k - j < 3 ? k - j : 3, enc + o);
            o += 4;
        }
        fprintf(fp, "%s =?UTF-8?B?%.*s?=", i ? "\n" : "", (int)o, enc);
        i += k;
    }
    fputc('\n', fp);
}

/* msgid_part: s restricted to RFC 5322 atext and '.', others as '_'. */
static void msgid_part(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c && strchr("!#$%&'*+-/=?^_`{|}~.", c));
        fputc(ok ? c : '_', fp);
    }
}

/* fname_quoted: a file name safe inside a quoted-string. */
static void fname_quoted(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '_' : c, fp);
    }
}

static void write_date(FILE *fp)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm); /* fixed English names: no locale in a header */
    fprintf(fp, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\n", wd[tm.tm_wday], tm.tm_mday,
            mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void make_boundary(char *b, size_t sz)
{
    unsigned char r[12];
    size_t i, o;

    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        /* randomness only avoids a collision with the text part */
        uint64_t v = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        memcpy(r, &v, sizeof(v));
        memset(r + sizeof(v), 0x5a, sizeof(r) - sizeof(v));
    }
    /* "=_" cannot occur in base64 or in our text part */
    o = (size_t)snprintf(b, sz, "=_policyd-dmarc_");
    for (i = 0; i < sizeof(r) && o + 2 < sz; i++)
        o += (size_t)snprintf(b + o, sz - o, "%02x", r[i]);
}

int rmail_write(FILE *fp, const struct rmail_msg *m, char *err, size_t errlen)
{
    char *from = NULL, *dom = NULL, *org = NULL, *id = NULL, *subj = NULL, *to = NULL;
    char boundary[64];
    unsigned char buf[57 * 64];
    FILE *att;
    size_t i, col, n, k;
    int rc = -1;

    if (m == NULL || m->n_to == 0 || m->to == NULL || m->attachment_path == NULL) {
        snprintf(err, errlen, "rmail: no recipient or no attachment");
        return -1;
    }
    att = fopen(m->attachment_path, "rbe");
    if (att == NULL) {
        snprintf(err, errlen, "%s: %s", m->attachment_path, strerror(errno));
        return -1;
    }
    from = clean(m->from);
    dom = clean(m->domain);
    org = clean(m->org_name);
    id = clean(m->report_id);
    if (!from || !dom || !org || !id ||
        asprintf(&subj, "Report Domain: %s Submitter: %s Report-ID: %s", dom, org, id) < 0) {
        subj = NULL;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    make_boundary(boundary, sizeof(boundary));

    fprintf(fp, "From: %s\n", from);
    fputs("To:", fp);
    col = 3;
    for (i = 0; i < m->n_to; i++) {
        free(to);
        if ((to = clean(m->to[i])) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (i > 0) {
            fputc(',', fp);
            col++;
            if (col + 1 + strlen(to) > FOLD_AT) {
                fputc('\n', fp);
                col = 0;
            }
        }
        fprintf(fp, " %s", to);
        col += 1 + strlen(to);
    }
    fputc('\n', fp);
    write_subject(fp, subj);
    write_date(fp);
    fputs("Message-ID: <", fp);
    msgid_part(fp, id[0] ? id : "report");
    fputc('@', fp);
    msgid_part(fp, m->message_id_domain && m->message_id_domain[0] ? m->message_id_domain
                                                                   : "localhost");
    fputs(">\n", fp);
    fputs("MIME-Version: 1.0\n", fp);
    fputs("Auto-Submitted: auto-generated\n", fp);
    fprintf(fp, "Content-Type: multipart/mixed;\n boundary=\"%s\"\n\n", boundary);
    fputs("This is a multi-part message in MIME format.\n\n", fp);

    fprintf(fp, "--%s\n", boundary);
    fprintf(fp, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: %s\n\n",
            is_ascii(subj) ? "7bit" : "8bit");
    fprintf(fp,
            "This is a DMARC aggregate report.\n\n"
            "Report Domain: %s\nSubmitter: %s\nReport-ID: %s\n\n"
            "The attachment is the report: XML, gzip-compressed.\n"
            "Results are envelope DMARC: SPF was checked for the MAIL FROM domain\n"
            "(the HELO name for the null sender); DKIM and the header From were not\n"
            "evaluated, so DKIM results are reported as fail.\n",
            dom, org, id);

    fprintf(fp, "\n--%s\n", boundary);
    fputs("Content-Type: application/gzip; name=\"", fp);
    fname_quoted(fp, m->attachment_name);
    fputs("\"\nContent-Disposition: attachment; filename=\"", fp);
    fname_quoted(fp, m->attachment_name);
    fputs("\"\nContent-Transfer-Encoding: base64\n\n", fp);
    for (;;) {
        /* fill buf completely (short reads are allowed) so every line but
         * the last carries 57 bytes = 76 characters */
        n = 0;
        while (n < sizeof(buf) && (k = fread(buf + n, 1, sizeof(buf) - n, att)) > 0)
            n += k;
        for (i = 0; i < n; i += 57)
            b64_line(fp, buf + i, n - i < 57 ? n - i : 57);
        if (n < sizeof(buf))
            break;
        if (ferror(fp))
            break;
    }
    if (ferror(att)) {
        snprintf(err, errlen, "%s: read error", m->attachment_path);
        goto out;
    }
    fprintf(fp, "\n--%s--\n", boundary);
    if (fflush(fp) != 0 || ferror(fp)) {
        snprintf(err, errlen, "writing the message: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    fclose(att);
    free(from);
    free(dom);
    free(org);
    free(id);
    free(subj);
    free(to);
    return rc;
}

int rmail_send(const char *sendmail_command, const struct rmail_msg *m, char *err, size_t errlen)
{
    char *argv[6];
    struct sigaction ign, old;
    char werr[256] = "";
    int fds[2], status, wrc;
    FILE *fp;
    pid_t pid, r;

    if (sendmail_command == NULL || m == NULL || m->from == NULL) {
        snprintf(err, errlen, "rmail_send: no command or sender");
        return -1;
    }
    if (access(sendmail_command, X_OK) != 0) {
        snprintf(err, errlen, "%s: %s", sendmail_command, strerror(errno));
        return -1;
    }
    /* Fixed argv, built before fork: the child only dup2s and execs. */
    argv[0] = (char *)sendmail_command;
    argv[1] = (char *)"-t";
    argv[2] = (char *)"-oi";
    argv[3] = (char *)"-f";
    argv[4] = (char *)m->from;
    argv[5] = NULL;

    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        struct sigaction dfl;

        /* async-signal-safe calls only from here on */
        if (fds[0] == STDIN_FILENO)
            fcntl(STDIN_FILENO, F_SETFD, 0); /* dup2 would keep FD_CLOEXEC */
        else if (dup2(fds[0], STDIN_FILENO) < 0)
            _exit(126);
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL; /* an ignored SIGPIPE would survive exec */
        sigaction(SIGPIPE, &dfl, NULL);
        execv(sendmail_command, argv);
        _exit(127);
    }
    close(fds[0]);

    /* A sendmail that exits early must give us EPIPE, not kill us. */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old);
    fp = fdopen(fds[1], "w");
    if (fp == NULL) {
        snprintf(werr, sizeof(werr), "fdopen: %s", strerror(errno));
        close(fds[1]);
        wrc = -1;
    } else {
        wrc = rmail_write(fp, m, werr, sizeof(werr));
        if (fclose(fp) != 0 && wrc == 0) {
            snprintf(werr, sizeof(werr), "writing to %s: %s", sendmail_command, strerror(errno));
            wrc = -1;
        }
    }
    sigaction(SIGPIPE, &old, NULL);

    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        snprintf(err, errlen, "waitpid: %s", strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "%s exited with status %d%s%s%s", sendmail_command,
                 WEXITSTATUS(status), WEXITSTATUS(status) == 127 ? " (cannot execute)" : "",
                 wrc ? "; " : "", wrc ? werr : "");
        return -1;
    }
    if (WIFSIGNALED(status)) {
        snprintf(err, errlen, "%s killed by signal %d", sendmail_command, WTERMSIG(status));
        return -1;
    }
    if (wrc != 0) {
        snprintf(err, errlen, "%s exited 0 but the message was not fully written: %s",
                 sendmail_command, werr);
        return -1;
    }
    return 0;
}
