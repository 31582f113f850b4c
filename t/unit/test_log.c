/* test_log.c - log line format, levels, key=value quoting with hostile
 * values (every byte value round-trips through the escapes and no line can
 * be split), truncation, thread safety, syslog mode and log_die. stderr is
 * redirected to a temporary file and read back. */
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static FILE *cap;     /* the file fd 2 points to */
static long cap_seen; /* bytes already returned by captured() */

/* Everything logged to stderr since the last call (static buffer). */
static const char *captured(void)
{
    static char buf[1 << 20];
    size_t n;

    fflush(stderr);
    fseek(cap, cap_seen, SEEK_SET);
    n = fread(buf, 1, sizeof(buf) - 1, cap);
    buf[n] = '\0';
    cap_seen += (long)n;
    return buf;
}

/* The message part of a single captured line: after "level: ", without the
 * newline. NULL unless exactly one line with the right prefix was logged. */
static const char *one_line(const char *level)
{
    static char msg[1 << 16];
    const char *all = captured(), *nl = strchr(all, '\n'), *p;
    char want[64];

    if (nl == NULL || nl[1] != '\0')
        return NULL;
    snprintf(want, sizeof(want), "]: %s: ", level);
    if ((p = strstr(all, want)) == NULL || p > nl)
        return NULL;
    p += strlen(want);
    snprintf(msg, sizeof(msg), "%.*s", (int)(nl - p), p);
    return msg;
}

/* Undo log_kv's quoting of one value (the text after "k="). Returns 0 on a
 * well-formed value that ends the string. */
static int unquote(const char *s, char *out, size_t sz)
{
    size_t o = 0;

    if (*s != '"') {
        snprintf(out, sz, "%s", s);
        return strpbrk(s, " \"=\\") ? -1 : 0;
    }
    for (s++; *s && *s != '"'; s++) {
        if (o + 1 >= sz)
            return -1;
        if (*s != '\\') {
            out[o++] = *s;
            continue;
        }
        switch (*++s) {
        case '"':
        case '\\':
            out[o++] = *s;
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'x': {
            unsigned v;

            if (sscanf(s + 1, "%2x", &v) != 1)
                return -1;
            out[o++] = (char)v;
            s += 2;
            break;
        }
        default:
            return -1;
        }
    }
    out[o] = '\0';
    return (*s == '"' && s[1] == '\0') ? 0 : -1;
}

static const struct {
    const char *value, *want;
} quoting[] = {
    {"pass", "k=pass"},
    {"192.0.2.7", "k=192.0.2.7"},
    {"user@example.org", "k=user@example.org"},
    {"<>#;:/,", "k=<>#;:/,"},
    {"", "k=\"\""},
    {"a b", "k=\"a b\""},
    {"say \"hi\"", "k=\"say \\\"hi\\\"\""},
    {"a=b", "k=\"a=b\""},
    {"c:\\dir", "k=\"c:\\\\dir\""},
    {"line1\nline2", "k=\"line1\\nline2\""},
    {"x\r\nfake: decision spf=pass", "k=\"x\\r\\nfake: decision spf=pass\""},
    {"tab\there", "k=\"tab\\there\""},
    {"\x01\x1f\x7f", "k=\"\\x01\\x1f\\x7f\""},
    {"\x1b[31mred", "k=\"\\x1b[31mred\""},
    {"caf\xc3\xa9", "k=\"caf\\xc3\\xa9\""},
    {"\xff\xfe", "k=\"\\xff\\xfe\""},
};

struct thr {
    int id;
};

static void *spam(void *arg)
{
    struct thr *t = arg;
    char val[300];

    memset(val, 'a' + t->id, sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 500; i++)
        log_kv(LOG_L_INFO, "spam", "thread", t->id == 0 ? "zero" : "other", "v", val, NULL);
    return NULL;
}

int main(void)
{
    char buf[64], big[10000], got[1024], val[2];
    const char *line;
    regex_t re;
    size_t len;
    pid_t pid;
    int status, fails;

    /* stdout carries TAP; stderr goes to a temp file. */
    cap = tmpfile();
    if (cap == NULL || dup2(fileno(cap), STDERR_FILENO) < 0) {
        ok(0, "redirect stderr");
        return tap_done();
    }
    log_open("test-ident", LOG_T_STDERR, LOG_L_INFO);

    /* format of a line */
    log_msg(LOG_L_INFO, "hello %d", 42);
    line = captured();
    regcomp(&re,
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
            "test-ident\\[[0-9]+\\]: info: hello 42\n$",
            REG_EXTENDED | REG_NOSUB);
    ok(regexec(&re, line, 0, NULL, 0) == 0, "stderr line format: %s", line);
    regfree(&re);
    snprintf(buf, sizeof(buf), "[%ld]:", (long)getpid());
    ok(strstr(line, buf) != NULL, "line carries our pid");

    /* levels */
    log_msg(LOG_L_DEBUG, "invisible");
    is_str(captured(), "", "debug suppressed at level info");
    ok(!log_enabled(LOG_L_DEBUG) && log_enabled(LOG_L_INFO) && log_enabled(LOG_L_ERROR),
       "log_enabled at info");
    log_msg(LOG_L_WARNING, "careful");
    is_str(one_line("warning"), "careful", "warning level word");
    log_msg(LOG_L_ERROR, "broken");
    is_str(one_line("error"), "broken", "error level word");
    log_set_level(LOG_L_DEBUG);
    ok(log_enabled(LOG_L_DEBUG), "log_set_level(debug)");
    log_msg(LOG_L_DEBUG, "visible");
    is_str(one_line("debug"), "visible", "debug shown at debug");
    log_set_level(LOG_L_ERROR);
    log_msg(LOG_L_WARNING, "quiet");
    log_kv(LOG_L_INFO, "quiet", "k", "v", NULL);
    is_str(captured(), "", "warning and info suppressed at error");
    log_open("test-ident", LOG_T_STDERR, LOG_L_INFO);

    /* log_kv quoting, table-driven */
    for (size_t i = 0; i < sizeof(quoting) / sizeof(quoting[0]); i++) {
        char want[256];

        log_kv(LOG_L_INFO, "ev", "k", quoting[i].value, NULL);
        snprintf(want, sizeof(want), "ev %s", quoting[i].want);
        is_str(one_line("info"), want, "log_kv quoting case %zu", i);
        len = log_kv_append(got, sizeof(got), 0, "k", quoting[i].value);
        snprintf(want, sizeof(want), " %s", quoting[i].want);
        is_str(got, want, "log_kv_append quoting case %zu", i);
        is_int((long long)len, (long long)strlen(want), "log_kv_append length case %zu", i);
    }

    /* every byte value: one line, printable ASCII only, exact round trip */
    fails = 0;
    for (int c = 1; c < 256; c++) {
        char in[8], back[8];
        const char *msg, *eq;

        snprintf(in, sizeof(in), "a%cb", c);
        log_kv(LOG_L_INFO, "byte", "k", in, NULL);
        msg = one_line("info");
        if (msg == NULL) {
            fails++;
            diag("byte 0x%02x: not exactly one line", c);
            continue;
        }
        for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
            if (*p < 0x20 || *p >= 0x7f) {
                fails++;
                diag("byte 0x%02x: raw byte 0x%02x in output", c, *p);
                break;
            }
        eq = strstr(msg, "k=");
        if (eq == NULL || unquote(eq + 2, back, sizeof(back)) < 0 || strcmp(back, in) != 0) {
            fails++;
            diag("byte 0x%02x: does not round-trip: %s", c, msg);
        }
    }
    is_int(fails, 0, "bytes 0x01..0xff: one safe line each, values round-trip");

    /* several pairs, NULL value ends the list */
    log_kv(LOG_L_INFO, "decision", "client", "192.0.2.7", "spf", "fail", "action", NULL, "x", "y",
           NULL);
    is_str(one_line("info"), "decision client=192.0.2.7 spf=fail", "NULL value ends the pairs");

    /* free text: control characters escaped, quotes kept */
    log_msg(LOG_L_WARNING, "bad helo %s from %s", "evil\r\nerror: forged", "x\"y");
    is_str(one_line("warning"), "bad helo evil\\r\\nerror: forged from x\"y",
           "log_msg escapes CR/LF, keeps quotes");
    len = log_kv_append(got, sizeof(got), 0, "sender", "a b");
    log_msg(LOG_L_INFO, "decision%s", got);
    is_str(one_line("info"), "decision sender=\"a b\"", "log_kv_append text passes log_msg intact");

    /* bounded lines */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_msg(LOG_L_INFO, "%s", big);
    line = one_line("info");
    ok(line != NULL && strlen(line) < 4096 && strlen(line) > 4000 &&
           strcmp(line + strlen(line) - 3, "...") == 0,
       "long free text cut at 4 KiB with \"...\"");
    log_kv(LOG_L_INFO, "big", "k", big, "after", "z", NULL);
    line = one_line("info");
    ok(line != NULL && strlen(line) < 4096 && strcmp(line + strlen(line) - 3, "...") == 0 &&
           strstr(line, "after=") == NULL,
       "long kv value cut with \"...\", later pairs dropped");
    big[5000] = '\n';
    log_kv(LOG_L_INFO, "big", "k", big, NULL);
    ok(one_line("info") != NULL, "long value with a newline is still one line");
    big[5000] = 'x';

    /* log_kv_append truncation */
    {
        char small[16];

        len = log_kv_append(small, sizeof(small), 0, "a", "1");
        is_str(small, " a=1", "small append fits");
        len = log_kv_append(small, sizeof(small), len, "bb", "22");
        is_str(small, " a=1 bb=22", "second append fits");
        len = log_kv_append(small, sizeof(small), len, "ccc", "333");
        is_str(small, " a=1 bb=22 c...", "third append cut with ...");
        is_int((long long)len, 15, "length is sz-1 after the cut");
        len = log_kv_append(small, sizeof(small), len, "d", "4");
        is_str(small, " a=1 bb=22 c...", "after a cut nothing more is appended");
        is_int((long long)len, 15, "length unchanged after the cut");
        len = log_kv_append(small, sizeof(small), 0, "k", "\x01\x02\x03\x04");
        is_str(small, " k=\"\\x01\\x02...", "cut never splits an escape");
        len = log_kv_append(small, sizeof(small), 0, "k", NULL);
        is_str(small, " k=\"\"", "NULL value written as empty");
        len = log_kv_append(small, 3, 0, "k", "v");
        ok(len < 3 && small[len] == '\0', "tiny buffer stays NUL-terminated");
        val[0] = 'q';
        val[1] = '\0';
        len = log_kv_append(small, sizeof(small), 0, "odd key=\"", val);
        is_str(small, " odd_key__=q", "unsafe key characters replaced");
    }

    /* threads: every line whole */
    {
        pthread_t th[4];
        struct thr ids[4];
        const char *all, *p;
        int lines = 0, badl = 0;

        captured();
        for (int i = 0; i < 4; i++) {
            ids[i].id = i;
            pthread_create(&th[i], NULL, spam, &ids[i]);
        }
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        all = captured();
        for (p = all; *p; lines++) {
            const char *nl = strchr(p, '\n'), *v = strstr(p, " v=");

            if (nl == NULL || v == NULL || v > nl || (size_t)(nl - v) != 3 + 299)
                badl++;
            else
                for (const char *q = v + 4; q < nl; q++)
                    if (*q != v[3]) {
                        badl++;
                        break;
                    }
            p = nl ? nl + 1 : p + strlen(p);
        }
        is_int(lines, 2000, "4 threads x 500 lines");
        is_int(badl, 0, "no interleaved or torn lines");
    }

    /* syslog: no stderr output, does not block or fail without a daemon */
    log_open("test-ident", LOG_T_SYSLOG, LOG_L_INFO);
    log_msg(LOG_L_INFO, "to syslog");
    log_kv(LOG_L_WARNING, "to_syslog", "k", "v w", NULL);
    is_str(captured(), "", "syslog target writes nothing to stderr");

    /* log_die: exit 1, and also on stderr when logging to syslog */
    fflush(stdout);
    if ((pid = fork()) == 0)
        log_die("cannot bind %s", "inet:127.0.0.1:1");
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "log_die exits 1");
    is_str(one_line("error"), "cannot bind inet:127.0.0.1:1", "log_die (syslog) also on stderr");
    log_open("test-ident", LOG_T_STDERR, LOG_L_INFO);
    if ((pid = fork()) == 0)
        log_die("fatal %d", 7);
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "log_die exits 1 (stderr)");
    is_str(one_line("error"), "fatal 7", "log_die line on stderr once");

    return tap_done();
}
