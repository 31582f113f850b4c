/* rdest.c - mailto: destinations of a rua value and the internal/external
 * rule (see rdest.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"
#include "rdest.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* addr_ok: a plain local@domain we can put on sendmail's To: line: printable
 * ASCII without spaces or the characters that delimit or group addresses. */
static int addr_ok(const char *a, const char **at_out)
{
    const char *at = strrchr(a, '@');
    int label = 0;

    if (at == NULL || at == a || at[1] == '\0')
        return 0;
    for (const char *p = a; p < at; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("<>()[],;:\"\\@", *p))
            return 0;
    for (const char *p = at + 1; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            label++;
        } else {
            return 0;
        }
    }
    *at_out = at;
    return 1;
}

/* one: parse one URI (NUL-terminated, trimmed) into d. 0 or -1. */
static int one(const char *uri, struct rdest *d)
{
    unsigned long long max;
    size_t n = dmarc_uri_size(uri, &max), o = 0;
    const char *at;

    if (n < 7 || strncasecmp(uri, "mailto:", 7) != 0)
        return -1;
    for (size_t i = 7; i < n && uri[i] != '?'; i++) {
        int c = (unsigned char)uri[i];
        if (c == '%' && i + 2 < n && hexval(uri[i + 1]) >= 0 && hexval(uri[i + 2]) >= 0) {
            c = hexval(uri[i + 1]) * 16 + hexval(uri[i + 2]);
            i += 2;
        }
        if (c == 0 || o + 1 >= sizeof(d->addr))
            return -1;
        d->addr[o++] = (char)c;
    }
    d->addr[o] = '\0';
    if (!addr_ok(d->addr, &at))
        return -1;
    snprintf(d->domain, sizeof(d->domain), "%s", at + 1);
    for (char *p = d->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    /* the domain part of the address itself is lower-cased too: it is
     * case-insensitive, and duplicates are found by plain comparison */
    for (char *p = d->addr + (at - d->addr) + 1; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    d->max_bytes = max;
    return 0;
}

size_t rdest_parse(const char *rua, struct rdest *out, size_t max, size_t *nskipped)
{
    size_t n = 0, skipped = 0;
    const char *p = rua ? rua : "";

    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char uri[DMARC_URI_MAX * 2];
        struct rdest d;
        const char *s = p, *e = p + len;

        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            if ((size_t)(e - s) >= sizeof(uri) ||
                (snprintf(uri, sizeof(uri), "%.*s", (int)(e - s), s), one(uri, &d) < 0)) {
                skipped++;
            } else {
                size_t i;
                for (i = 0; i < n; i++)
                    if (strcmp(out[i].addr, d.addr) == 0)
                        break;
                if (i < n) {
                    /* the same mailbox twice: the tighter limit holds */
                    if (d.max_bytes && (!out[i].max_bytes || d.max_bytes < out[i].max_bytes))
                        out[i].max_bytes = d.max_bytes;
                } else if (n < max) {
                    out[n++] = d;
                } else {
                    skipped++;
                }
            }
        }
        p = end ? end + 1 : p + len;
    }
    if (nskipped)
        *nskipped = skipped;
    return n;
}

/* norm: lower-case copy without a trailing dot. */
static void norm(char *buf, size_t sz, const char *s)
{
    size_t n = 0;
    for (; *s && n + 1 < sz; s++)
        buf[n++] = (char)tolower((unsigned char)*s);
    while (n > 0 && buf[n - 1] == '.')
        n--;
    buf[n] = '\0';
}

/* under: a is b or a subdomain of b. */
static int under(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la == lb)
        return strcmp(a, b) == 0;
    return la > lb && a[la - lb - 1] == '.' && strcmp(a + la - lb, b) == 0;
}

/* last2: the last two labels of a (all of it if it has fewer). */
static const char *last2(const char *a)
{
    const char *dot = strrchr(a, '.');
    if (dot == NULL)
        return a;
    while (dot > a && dot[-1] != '.')
        dot--;
    return dot;
}

int rdest_internal(const char *policy_domain, const char *dest_domain)
{
    char a[RDEST_DOMAIN_MAX], b[RDEST_DOMAIN_MAX];

    norm(a, sizeof(a), policy_domain);
    norm(b, sizeof(b), dest_domain);
    if (a[0] == '\0' || b[0] == '\0')
        return 0;
    return under(a, b) || under(b, a) || strcmp(last2(a), last2(b)) == 0;
}

int rdest_auth_name(char *buf, size_t sz, const char *policy_domain, const char *dest_domain)
{
    char a[RDEST_DOMAIN_MAX], b[RDEST_DOMAIN_MAX];
    int n;

    norm(a, sizeof(a), policy_domain);
    norm(b, sizeof(b), dest_domain);
    n = snprintf(buf, sz, "%s._report._dmarc.%s", a, b);
    return n < 0 || (size_t)n >= sz ? -1 : n;
}
