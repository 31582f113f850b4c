/* log.c - one-line log events to stderr or syslog (LOG_MAIL).
 *
 * Every event is built in a local buffer (at most LOG_LINE_MAX bytes, cut
 * with "..." when longer) and handed to the kernel in one write(2) or one
 * syslog(3) call, so lines from concurrent threads never interleave. Control
 * characters never reach the output unescaped: a remote value cannot end a
 * line early or forge another one.
 *
 * The logger is process-wide state (ident, target, level): there is exactly
 * one log per process and every module reaches it without a handle, as in
 * Postfix's msg(3). The level is atomic so log_enabled() is lock-free; ident
 * and target change only in log_open() and are read under a mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 4096

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_ident[64] = "policyd-dmarc"; /* openlog() keeps this pointer */
static _Atomic int log_target_cur = LOG_T_STDERR;
static _Atomic int log_level_cur = LOG_L_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

static const char *level_name(enum log_level level)
{
    if ((unsigned)level < sizeof(level_names) / sizeof(level_names[0]))
        return level_names[level];
    return "debug";
}

static int level_prio(enum log_level level)
{
    switch (level) {
    case LOG_L_ERROR:
        return LOG_ERR;
    case LOG_L_WARNING:
        return LOG_WARNING;
    case LOG_L_INFO:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

void log_open(const char *ident, enum log_target target, enum log_level level)
{
    pthread_mutex_lock(&log_lock);
    if (atomic_load(&log_target_cur) == LOG_T_SYSLOG)
        closelog();
    if (ident != NULL && ident != log_ident)
        snprintf(log_ident, sizeof(log_ident), "%s", ident);
    /* No LOG_NDELAY, no LOG_CONS: without a syslog daemon (containers, CI)
     * glibc then drops messages quietly instead of writing to the console. */
    if (target == LOG_T_SYSLOG)
        openlog(log_ident, LOG_PID, LOG_MAIL);
    atomic_store(&log_target_cur, target == LOG_T_SYSLOG ? LOG_T_SYSLOG : LOG_T_STDERR);
    atomic_store(&log_level_cur, level);
    pthread_mutex_unlock(&log_lock);
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_cur, level);
}

int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_level_cur);
}

/* Write all of buf to fd, retrying on EINTR and short writes (a pipe or a
 * terminal may accept part of it; a regular file or journal socket takes it
 * whole, which is what keeps lines atomic). */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Emit one finished message body (no newline, no control characters).
 * force_stderr: also write to stderr when logging to syslog (log_die, so a
 * fatal startup error is visible even where no syslog daemon runs). */
static void log_emit(enum log_level level, const char *body, int force_stderr)
{
    char line[LOG_LINE_MAX + 128];
    char ts[32];
    struct timespec now;
    struct tm tm;
    int target, n;

    pthread_mutex_lock(&log_lock);
    target = atomic_load(&log_target_cur);
    if (target == LOG_T_SYSLOG) {
        /* Postfix convention: info lines carry no level word. */
        if (level == LOG_L_INFO)
            syslog(level_prio(level), "%s", body);
        else
            syslog(level_prio(level), "%s: %s", level_name(level), body);
    }
    if (target == LOG_T_STDERR || force_stderr) {
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld]: %s: %s\n", ts, now.tv_nsec / 1000000L,
                     log_ident, (long)getpid(), level_name(level), body);
        if (n < 0)
            n = 0;
        if ((size_t)n >= sizeof(line)) { /* cannot happen: body is bounded */
            n = sizeof(line) - 1;
            line[n - 1] = '\n';
        }
        write_all(STDERR_FILENO, line, (size_t)n);
    }
    pthread_mutex_unlock(&log_lock);
}

/* Free text: escape control characters only (quotes and backslashes stay,
 * so pre-quoted key=value text from log_kv_append passes through intact). */
static void log_vmsg(enum log_level level, int force_stderr, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void log_vmsg(enum log_level level, int force_stderr, const char *fmt, va_list ap)
{
    char raw[LOG_LINE_MAX], body[LOG_LINE_MAX];
    size_t i, o = 0, limit = sizeof(body) - 4; /* room for "..." and NUL */
    int n, cut;

    n = vsnprintf(raw, sizeof(raw), fmt, ap);
    cut = n < 0 || (size_t)n >= sizeof(raw);
    for (i = 0; raw[i] != '\0'; i++) {
        unsigned char c = (unsigned char)raw[i];
        char esc[5];
        size_t el;

        if (c == '\n')
            el = (size_t)snprintf(esc, sizeof(esc), "\\n");
        else if (c == '\r')
            el = (size_t)snprintf(esc, sizeof(esc), "\\r");
        else if (c == '\t')
            el = (size_t)snprintf(esc, sizeof(esc), "\\t");
        else if (c < 0x20 || c == 0x7f)
            el = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
        else {
            esc[0] = (char)c;
            el = 1;
        }
        if (o + el > limit) {
            cut = 1;
            break;
        }
        memcpy(body + o, esc, el);
        o += el;
    }
    if (cut) { /* o <= limit, so the marker always fits */
        memcpy(body + o, "...", 3);
        o += 3;
    }
    body[o] = '\0';
    log_emit(level, body, force_stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    log_vmsg(level, 0, fmt, ap);
    va_end(ap);
}

void log_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(LOG_L_ERROR, 1, fmt, ap);
    va_end(ap);
    exit(1);
}

/* A value needs quotes when it is empty or holds a byte that would make the
 * line ambiguous (space, quote, '=', backslash) or unsafe (control, DEL,
 * non-ASCII: escaped so that every log line is plain ASCII). */
static int needs_quotes(const char *v)
{
    const unsigned char *p = (const unsigned char *)v;

    if (*p == '\0')
        return 1;
    for (; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
            return 1;
    return 0;
}

/* One output unit for byte c inside quotes; returns its length. */
static size_t quote_unit(unsigned char c, char out[5])
{
    switch (c) {
    case '"':
        memcpy(out, "\\\"", 2);
        return 2;
    case '\\':
        memcpy(out, "\\\\", 2);
        return 2;
    case '\n':
        memcpy(out, "\\n", 2);
        return 2;
    case '\r':
        memcpy(out, "\\r", 2);
        return 2;
    case '\t':
        memcpy(out, "\\t", 2);
        return 2;
    default:
        if (c < 0x20 || c >= 0x7f) {
            static const char hex[] = "0123456789abcdef";

            out[0] = '\\';
            out[1] = 'x';
            out[2] = hex[c >> 4];
            out[3] = hex[c & 15];
            return 4;
        }
        out[0] = (char)c;
        return 1;
    }
}

/* Keys are program constants, but a bad one must not break the line either:
 * anything outside a conservative set becomes '_'. */
static size_t key_unit(unsigned char c, char out[5])
{
    out[0] = (c > ' ' && c < 0x7f && c != '=' && c != '"' && c != '\\') ? (char)c : '_';
    return 1;
}

size_t log_kv_append(char *buf, size_t sz, size_t len, const char *key, const char *value)
{
    char unit[5];
    size_t need = 0, ul, limit;
    const unsigned char *p;
    int quote;

    if (buf == NULL || sz == 0)
        return 0;
    if (len >= sz)
        len = sz - 1;
    buf[len] = '\0';
    if (key == NULL)
        key = "";
    if (value == NULL)
        value = "";
    quote = needs_quotes(value);

    /* Measure the whole piece first: it is appended whole or cut with "...". */
    need = 1 + strlen(key) + 1 + (quote ? 2 : 0);
    for (p = (const unsigned char *)value; *p; p++)
        need += quote ? quote_unit(*p, unit) : 1;
    if (len + need <= sz - 1)
        limit = sz - 1;
    else {
        /* Already cut once: the line ends in "..." and stays as it is. */
        if (len >= 3 && memcmp(buf + len - 3, "...", 3) == 0)
            return len;
        if (sz < 4) /* no room even for the marker */
            return len;
        limit = sz - 4;
        if (len > limit)
            len = limit;
    }

#define PUT(s, n)                                                                                  \
    do {                                                                                           \
        if (len + (n) > limit)                                                                     \
            goto cut;                                                                              \
        memcpy(buf + len, (s), (n));                                                               \
        len += (n);                                                                                \
    } while (0)

    PUT(" ", 1);
    for (p = (const unsigned char *)key; *p; p++) {
        ul = key_unit(*p, unit);
        PUT(unit, ul);
    }
    PUT("=", 1);
    if (quote)
        PUT("\"", 1);
    for (p = (const unsigned char *)value; *p; p++) {
        ul = quote ? quote_unit(*p, unit) : (unit[0] = (char)*p, (size_t)1);
        PUT(unit, ul);
    }
    if (quote)
        PUT("\"", 1);
#undef PUT
    buf[len] = '\0';
    return len;
cut:
    memcpy(buf + len, "...", 3);
    len += 3;
    buf[len] = '\0';
    return len;
}

void log_kv(enum log_level level, const char *event, ...)
{
    char body[LOG_LINE_MAX];
    size_t len = 0;
    const char *k, *v;
    va_list ap;

    if (!log_enabled(level))
        return;
    body[0] = '\0';
    /* The event word is a program constant; escape it like a key anyway. */
    for (const unsigned char *p = (const unsigned char *)(event ? event : "");
         *p && len < sizeof(body) - 1; p++) {
        char unit[5];

        key_unit(*p, unit);
        body[len++] = unit[0];
    }
    body[len] = '\0';
    va_start(ap, event);
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        if (v == NULL)
            break;
        len = log_kv_append(body, sizeof(body), len, k, v);
    }
    va_end(ap);
    log_emit(level, body, 0);
}
