/* rkeys.c - the Redis key schema (see rkeys.h): pure string formatting.
 *
 * The policy domain goes inside `{}`, the Redis Cluster hash tag. Domains that
 * reach here are validated DNS names, but a '{' or '}' in one would end the
 * tag early and move the key to another slot (or merge two domains' tags), so
 * they are percent-escaped, as is '%' itself to keep the mapping one-to-one.
 * Every function returns the key's length, or -1 if it did not fit in buf
 * (which cannot happen with sz >= RKEY_MAX, a prefix <= 64 bytes and a
 * domain <= 255 bytes without braces). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rkeys.h"

/* tagged: "<prefix>:<kind>:{<domain escaped>}:<day>" (day NULL = no day). */
static int tagged(char *buf, size_t sz, const char *prefix, const char *kind, const char *domain,
                  const char *day)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len;
    int n;

    if (sz == 0)
        return -1;
    n = snprintf(buf, sz, "%s:%s:{", prefix, kind);
    if (n < 0 || (size_t)n >= sz)
        return -1;
    len = (size_t)n;
    for (const char *p = domain; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '{' || c == '}' || c == '%') {
            if (len + 3 >= sz)
                return -1;
            buf[len++] = '%';
            buf[len++] = hex[c >> 4];
            buf[len++] = hex[c & 15];
        } else {
            if (len + 1 >= sz)
                return -1;
            buf[len++] = (char)c;
        }
    }
    n = snprintf(buf + len, sz - len, "}%s%s", day ? ":" : "", day ? day : "");
    if (n < 0 || (size_t)n >= sz - len)
        return -1;
    return (int)(len + (size_t)n);
}

int rkey_rpt(char *buf, size_t sz, const char *prefix, const char *domain, const char *day)
{
    return tagged(buf, sz, prefix, "rpt", domain, day);
}

int rkey_pol(char *buf, size_t sz, const char *prefix, const char *domain, const char *day)
{
    return tagged(buf, sz, prefix, "pol", domain, day);
}

int rkey_lock(char *buf, size_t sz, const char *prefix, const char *domain, const char *day)
{
    return tagged(buf, sz, prefix, "lock", domain, day);
}

int rkey_sent(char *buf, size_t sz, const char *prefix, const char *domain, const char *day)
{
    return tagged(buf, sz, prefix, "sent", domain, day);
}

int rkey_rid(char *buf, size_t sz, const char *prefix, const char *domain, const char *day)
{
    return tagged(buf, sz, prefix, "rid", domain, day);
}

int rkey_idx(char *buf, size_t sz, const char *prefix, const char *day)
{
    int n = snprintf(buf, sz, "%s:idx:%s", prefix, day);
    return n < 0 || (size_t)n >= sz ? -1 : n;
}

int rkey_days(char *buf, size_t sz, const char *prefix)
{
    int n = snprintf(buf, sz, "%s:days", prefix);
    return n < 0 || (size_t)n >= sz ? -1 : n;
}

void rkey_day(char *buf, size_t sz, long long t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (sz == 0)
        return;
    /* A time gmtime_r cannot represent, or a year outside 4 digits, gives the
     * all-zero day rather than a key of another shape. */
    if ((long long)tt != t || gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 0 ||
        tm.tm_year + 1900 > 9999) {
        snprintf(buf, sz, "00000000");
        return;
    }
    snprintf(buf, sz, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
