/* spfrec.c - RFC 7208 record validation (ABNF of §12) and macro expansion
 * (§7.3), without libspf2. Everything here works on (pointer, length) so
 * that NUL bytes inside TXT data are seen and rejected, never cut off. */
#include "spfrec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define EXPAND_MAX (1u << 20)

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_delim(int c)
{
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

static void setwhy(char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void setwhy(char *why, size_t whysz, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || whysz == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whysz, fmt, ap);
    va_end(ap);
}

int spfrec_is_spf1(const char *txt, size_t len)
{
    if (len < 6 || strncasecmp(txt, "v=spf1", 6) != 0)
        return 0;
    return len == 6 || txt[6] == ' ';
}

/* Scan one macro-expand starting at s[i] == '%'. Returns the length of the
 * token (2 for %%, %_, %-; whole %{...}), or 0 on a syntax error.
 * explain: c/r/t letters allowed. */
static size_t scan_macro(const char *s, size_t len, size_t i, int explain)
{
    size_t j;
    int c;
    if (i + 1 >= len)
        return 0;
    c = (unsigned char)s[i + 1];
    if (c == '%' || c == '_' || c == '-')
        return 2;
    if (c != '{')
        return 0;
    j = i + 2;
    if (j >= len)
        return 0;
    c = tolower((unsigned char)s[j]);
    if (!strchr("slodiphv", c) || c == 0) {
        if (!(explain && (c == 'c' || c == 'r' || c == 't')))
            return 0;
    }
    j++;
    if (j < len && is_digit((unsigned char)s[j])) {
        size_t d0 = j;
        while (j < len && is_digit((unsigned char)s[j]))
            j++;
        size_t z = d0;

        /* the number of parts must be nonzero (§7.3); count zeros within the
         * digits only: s need not be NUL-terminated at len */
        while (z < j && s[z] == '0')
            z++;
        if (z == j)
            return 0;
    }
    if (j < len && (s[j] == 'r' || s[j] == 'R'))
        j++;
    while (j < len && is_delim((unsigned char)s[j]))
        j++;
    if (j >= len || s[j] != '}')
        return 0;
    return j + 1 - i;
}

/* macro-string check; *last_macro_end is set to the offset just after the last
 * macro-expand token (0 if none). */
static int check_macro_string(const char *s, size_t len, int explain, size_t *last_macro_end,
                              char *why, size_t whysz)
{
    size_t i = 0, n;
    if (last_macro_end)
        *last_macro_end = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            n = scan_macro(s, len, i, explain);
            if (n == 0) {
                setwhy(why, whysz, "invalid macro at \"%.*s\"", (int)(len - i < 20 ? len - i : 20),
                       s + i);
                return -1;
            }
            i += n;
            if (last_macro_end)
                *last_macro_end = i;
            continue;
        }
        if (c == ' ' && explain) {
            i++;
            continue;
        }
        if (c < 0x21 || c > 0x7e) {
            setwhy(why, whysz, "invalid byte 0x%02x", c);
            return -1;
        }
        i++;
    }
    return 0;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static int is_toplabel(const char *s, size_t len)
{
    size_t i;
    int alpha = 0;
    if (len == 0 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (is_alpha(c))
            alpha = 1;
        else if (c == '-')
            alpha = 1; /* the second form: a hyphen makes it non-numeric */
        else if (!is_digit(c))
            return 0;
    }
    return alpha;
}

int spfrec_check_domain_spec(const char *spec, size_t len, char *why, size_t whysz)
{
    size_t last_macro, end, dot;
    if (len == 0) {
        setwhy(why, whysz, "empty domain-spec");
        return -1;
    }
    if (check_macro_string(spec, len, 0, &last_macro, why, whysz) < 0)
        return -1;
    if (last_macro == len)
        return 0; /* domain-end = macro-expand */
    /* domain-end = "." toplabel [ "." ], all literal */
    end = len;
    if (spec[end - 1] == '.')
        end--;
    dot = end;
    while (dot > last_macro && spec[dot - 1] != '.')
        dot--;
    if (dot == last_macro || dot == 0 || spec[dot - 1] != '.' ||
        !is_toplabel(spec + dot, end - dot)) {
        setwhy(why, whysz, "domain-spec \"%.*s\" lacks a valid top label",
               (int)(len > 60 ? 60 : len), spec);
        return -1;
    }
    return 0;
}

int spfrec_check_explain(const char *txt, size_t len)
{
    return check_macro_string(txt, len, 1, NULL, NULL, 0);
}

/* "/" ("0" / %x31-39 *DIGIT), value <= max. Returns the value or -1. */
static int parse_cidr(const char *s, size_t len, int max)
{
    int v = 0;
    size_t i;
    if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
        return -1;
    for (i = 0; i < len; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* Split a trailing dual-cidr-length off [s, s+*len): sets cidr4/cidr6.
 * Returns -1 on an invalid CIDR. */
static int split_dual_cidr(const char *s, size_t *len, int *cidr4, int *cidr6)
{
    size_t n = *len, d;
    *cidr4 = *cidr6 = -1;
    d = n;
    while (d > 0 && is_digit((unsigned char)s[d - 1]))
        d--;
    if (d < n && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
        if ((*cidr6 = parse_cidr(s + d, n - d, 128)) < 0)
            return -1;
        n = d - 2;
        d = n;
        while (d > 0 && is_digit((unsigned char)s[d - 1]))
            d--;
    }
    if (d < n && d >= 1 && s[d - 1] == '/') {
        if ((*cidr4 = parse_cidr(s + d, n - d, 32)) < 0)
            return -1;
        n = d - 1;
    }
    *len = n;
    return 0;
}

static int mech_kind(const char *name, size_t len)
{
    static const struct {
        const char *name;
        int kind;
    } tab[] = {
        {"all", SPFREC_ALL}, {"include", SPFREC_INCLUDE}, {"a", SPFREC_A},
        {"mx", SPFREC_MX},   {"ptr", SPFREC_PTR},         {"ip4", SPFREC_IP4},
        {"ip6", SPFREC_IP6}, {"exists", SPFREC_EXISTS},
    };
    size_t i;
    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strlen(tab[i].name) == len && strncasecmp(tab[i].name, name, len) == 0)
            return tab[i].kind;
    return -1;
}

/* Rough size of libspf2's compiled data for a domain-spec: a 4-byte header per
 * literal run or macro, literal bytes rounded up to 4. */
static size_t est_spec_size(const char *s, size_t len)
{
    size_t i = 0, sz = 0, lit = 0, n;
    while (i < len) {
        if (s[i] == '%' && i + 1 < len && s[i + 1] == '{' && (n = scan_macro(s, len, i, 1))) {
            if (lit)
                sz += 4 + ((lit + 3) & ~(size_t)3);
            lit = 0;
            sz += 4;
            i += n;
        } else {
            lit++;
            i++;
        }
    }
    if (lit)
        sz += 4 + ((lit + 3) & ~(size_t)3);
    return sz;
}

static int parse_term(struct spfrec *r, const char *t, size_t len, struct spfrec_term *term)
{
    size_t i = 0, nlen;
    int kind;
    char *why = r->reason;
    size_t whysz = sizeof(r->reason);

    memset(term, 0, sizeof(*term));
    term->cidr4 = term->cidr6 = -1;
    term->qual = '+';
    if (t[0] == '+' || t[0] == '-' || t[0] == '~' || t[0] == '?') {
        term->qual = t[0];
        i = 1;
    }
    nlen = 0;
    while (i + nlen < len && (is_alnum((unsigned char)t[i + nlen]) || t[i + nlen] == '-' ||
                              t[i + nlen] == '_' || t[i + nlen] == '.'))
        nlen++;
    /* modifier: name "=" ... */
    if (i + nlen < len && t[i + nlen] == '=') {
        const char *val = t + i + nlen + 1;
        size_t vlen = len - i - nlen - 1;
        if (i != 0) {
            setwhy(why, whysz, "qualifier before modifier \"%.*s\"", (int)nlen, t + i);
            return -1;
        }
        if (nlen == 0 || !is_alpha((unsigned char)t[0])) {
            setwhy(why, whysz, "invalid modifier name");
            return -1;
        }
        term->spec = val;
        term->spec_len = vlen;
        if (nlen == 8 && strncasecmp(t, "redirect", 8) == 0)
            term->kind = SPFREC_REDIRECT;
        else if (nlen == 3 && strncasecmp(t, "exp", 3) == 0)
            term->kind = SPFREC_EXP;
        else {
            term->kind = SPFREC_UNKNOWN;
            return check_macro_string(val, vlen, 1, NULL, why, whysz);
        }
        return spfrec_check_domain_spec(val, vlen, why, whysz);
    }
    kind = mech_kind(t + i, nlen);
    if (kind < 0) {
        setwhy(why, whysz, "unknown mechanism \"%.*s\"", (int)(len > 40 ? 40 : len), t);
        return -1;
    }
    term->kind = (enum spfrec_kind)kind;
    t += i + nlen;
    len -= i + nlen;
    switch (term->kind) {
    case SPFREC_ALL:
        if (len != 0) {
            setwhy(why, whysz, "\"all\" takes no argument");
            return -1;
        }
        return 0;
    case SPFREC_INCLUDE:
    case SPFREC_EXISTS:
    case SPFREC_PTR:
        if (len == 0 && term->kind == SPFREC_PTR)
            return 0;
        if (len == 0 || t[0] != ':') {
            setwhy(why, whysz, "mechanism needs \":domain-spec\"");
            return -1;
        }
        term->spec = t + 1;
        term->spec_len = len - 1;
        return spfrec_check_domain_spec(term->spec, term->spec_len, why, whysz);
    case SPFREC_A:
    case SPFREC_MX: {
        size_t n = len;
        if (split_dual_cidr(t, &n, &term->cidr4, &term->cidr6) < 0) {
            setwhy(why, whysz, "invalid CIDR length");
            return -1;
        }
        if (n == 0)
            return 0;
        if (t[0] != ':') {
            setwhy(why, whysz, "unexpected \"%.*s\" after mechanism", (int)(n > 40 ? 40 : n), t);
            return -1;
        }
        term->spec = t + 1;
        term->spec_len = n - 1;
        return spfrec_check_domain_spec(term->spec, term->spec_len, why, whysz);
    }
    case SPFREC_IP4:
    case SPFREC_IP6: {
        char buf[64];
        size_t alen;
        const char *slash;
        int v6 = term->kind == SPFREC_IP6;
        if (len < 2 || t[0] != ':') {
            setwhy(why, whysz, "%s needs an address", v6 ? "ip6" : "ip4");
            return -1;
        }
        t++;
        len--;
        slash = memchr(t, '/', len);
        alen = slash ? (size_t)(slash - t) : len;
        if (alen == 0 || alen >= sizeof(buf)) {
            setwhy(why, whysz, "invalid %s address", v6 ? "ip6" : "ip4");
            return -1;
        }
        memcpy(buf, t, alen);
        buf[alen] = '\0';
        if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, term->addr) != 1) {
            setwhy(why, whysz, "invalid %s address \"%s\"", v6 ? "ip6" : "ip4", buf);
            return -1;
        }
        if (slash) {
            int c = parse_cidr(slash + 1, len - alen - 1, v6 ? 128 : 32);
            if (c < 0) {
                setwhy(why, whysz, "invalid %s CIDR length", v6 ? "ip6" : "ip4");
                return -1;
            }
            if (v6)
                term->cidr6 = c;
            else
                term->cidr4 = c;
        }
        return 0;
    }
    default:
        break;
    }
    setwhy(why, whysz, "internal: unexpected mechanism");
    return -1;
}

struct spfrec *spfrec_parse(const char *txt, size_t len)
{
    struct spfrec *r = calloc(1, sizeof(*r));
    size_t i, cap = 8;
    if (r == NULL)
        return NULL;
    r->redirect = r->exp = -1;
    r->text = malloc(len + 1);
    r->terms = calloc(cap, sizeof(*r->terms));
    if (r->text == NULL || r->terms == NULL) {
        spfrec_free(&r);
        return NULL;
    }
    memcpy(r->text, txt, len);
    r->text[len] = '\0';
    r->len = len;
    r->est_mech_size = 0;
    r->est_mod_size = 0;

    if (!spfrec_is_spf1(txt, len)) {
        snprintf(r->reason, sizeof(r->reason), "not a v=spf1 record");
        return r;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)txt[i];
        if (c != ' ' && (c < 0x21 || c > 0x7e)) {
            snprintf(r->reason, sizeof(r->reason), "invalid byte 0x%02x at offset %zu", c, i);
            return r;
        }
    }
    i = 6;
    while (i < len) {
        size_t start, tlen;
        struct spfrec_term *term;
        while (i < len && r->text[i] == ' ')
            i++;
        if (i >= len)
            break;
        start = i;
        while (i < len && r->text[i] != ' ')
            i++;
        tlen = i - start;
        if (r->nterms == cap) {
            struct spfrec_term *nt = realloc(r->terms, 2 * cap * sizeof(*nt));
            if (nt == NULL) {
                spfrec_free(&r);
                return NULL;
            }
            r->terms = nt;
            cap *= 2;
        }
        term = &r->terms[r->nterms];
        if (parse_term(r, r->text + start, tlen, term) < 0)
            return r;
        switch (term->kind) {
        case SPFREC_REDIRECT:
        case SPFREC_EXP: {
            int *slot = term->kind == SPFREC_REDIRECT ? &r->redirect : &r->exp;
            if (*slot >= 0) {
                snprintf(r->reason, sizeof(r->reason), "duplicate %s= modifier",
                         term->kind == SPFREC_REDIRECT ? "redirect" : "exp");
                return r;
            }
            *slot = (int)r->nterms;
            r->est_mod_size += 4 + 4 + est_spec_size(term->spec, term->spec_len);
            break;
        }
        case SPFREC_UNKNOWN:
            break;
        case SPFREC_ALL:
            r->has_all = 1;
            r->est_mech_size += 4;
            break;
        case SPFREC_IP4:
            r->est_mech_size += 4 + 4;
            break;
        case SPFREC_IP6:
            r->est_mech_size += 4 + 16;
            break;
        default:
            r->n_dns++;
            r->est_mech_size += 4 + (term->spec ? est_spec_size(term->spec, term->spec_len) : 0) +
                                (term->cidr4 >= 0 || term->cidr6 >= 0 ? 4 : 0);
            break;
        }
        r->nterms++;
    }
    if (r->redirect >= 0) {
        if (r->has_all)
            r->redirect_ignored = 1;
        else
            r->n_dns++;
    }
    r->reason[0] = '\0';
    r->valid = 1;
    return r;
}

void spfrec_free(struct spfrec **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    free((*rp)->text);
    free((*rp)->terms);
    free(*rp);
    *rp = NULL;
}

/* ---- expansion ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > EXPAND_MAX) {
        b->err = -3;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        char *np;
        while (nc < b->len + n + 1)
            nc *= 2;
        np = realloc(b->p, nc);
        if (np == NULL) {
            b->err = -2;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_addc(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

/* The raw value of a macro letter. buf holds computed values. */
static const char *macro_value(int letter, const struct spfrec_env *env, char *buf, size_t bufsz)
{
    const char *v = NULL;
    switch (letter) {
    case 's':
        v = env->sender;
        break;
    case 'l':
        v = env->local;
        break;
    case 'o':
        v = env->sdom;
        break;
    case 'd':
        v = env->domain;
        break;
    case 'h':
        v = env->helo;
        break;
    case 'r':
        v = env->rname ? env->rname : "unknown";
        break;
    case 'v':
        v = env->af == AF_INET6 ? "ip6" : "in-addr";
        break;
    case 't':
        snprintf(buf, bufsz, "%lld", env->now);
        v = buf;
        break;
    case 'c':
        if (inet_ntop(env->af == AF_INET6 ? AF_INET6 : AF_INET, env->ip, buf, bufsz) == NULL)
            buf[0] = '\0';
        v = buf;
        break;
    case 'i':
        if (env->af == AF_INET6) {
            /* 32 dot-separated nibbles, upper-case hex as the RFC 7208 suite expects */
            static const char hex[] = "0123456789ABCDEF";
            size_t k, o = 0;
            for (k = 0; k < 16 && o + 4 < bufsz; k++) {
                buf[o++] = hex[env->ip[k] >> 4];
                buf[o++] = '.';
                buf[o++] = hex[env->ip[k] & 15];
                buf[o++] = '.';
            }
            buf[o ? o - 1 : 0] = '\0';
        } else if (inet_ntop(AF_INET, env->ip, buf, bufsz) == NULL) {
            buf[0] = '\0';
        }
        v = buf;
        break;
    case 'p':
        if (env->ptr_name)
            v = env->ptr_name(env->ptr_ctx, env->domain ? env->domain : "");
        if (v == NULL)
            v = "unknown";
        break;
    default:
        break;
    }
    return v ? v : "";
}

/* Apply transformers to value and append it (URL-escaped when upper). */
static void expand_one(struct sbuf *b, const char *value, unsigned digits, int reverse,
                       const char *delims, int upper)
{
    size_t vlen = strlen(value), nparts = 0, k, first;
    const char **ps;
    size_t *pl;
    struct sbuf t = {0};
    const char *s;

    /* split on the delimiters (default ".") */
    for (k = 0; k <= vlen; k++)
        if (k == vlen || strchr(delims, value[k]))
            nparts++;
    ps = malloc(nparts * sizeof(*ps));
    pl = malloc(nparts * sizeof(*pl));
    if (ps == NULL || pl == NULL) {
        free(ps);
        free(pl);
        b->err = -2;
        return;
    }
    nparts = 0;
    s = value;
    for (k = 0; k <= vlen; k++) {
        if (k == vlen || strchr(delims, value[k])) {
            ps[nparts] = s;
            pl[nparts] = (size_t)(value + k - s);
            nparts++;
            s = value + k + 1;
        }
    }
    if (reverse) {
        for (k = 0; k < nparts / 2; k++) {
            const char *tp = ps[k];
            size_t tl = pl[k];
            ps[k] = ps[nparts - 1 - k];
            pl[k] = pl[nparts - 1 - k];
            ps[nparts - 1 - k] = tp;
            pl[nparts - 1 - k] = tl;
        }
    }
    first = (digits && digits < nparts) ? nparts - digits : 0;
    for (k = first; k < nparts; k++) {
        if (k > first)
            sb_addc(&t, '.');
        sb_add(&t, ps[k], pl[k]);
    }
    free(ps);
    free(pl);
    if (t.err) {
        b->err = t.err;
        free(t.p);
        return;
    }
    if (!upper) {
        sb_add(b, t.p ? t.p : "", t.len);
    } else {
        for (k = 0; k < t.len; k++) {
            unsigned char c = (unsigned char)t.p[k];
            if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
                sb_addc(b, (char)c);
            } else {
                char esc[4];
                snprintf(esc, sizeof(esc), "%%%02X", c);
                sb_add(b, esc, 3);
            }
        }
    }
    free(t.p);
}

void spfrec_truncate_domain(char *name)
{
    size_t len = strlen(name);
    char *p = name;
    while (len > 253) {
        char *dot = memchr(p, '.', len);
        if (dot == NULL) {
            /* a single label longer than 253: nothing sensible remains */
            p += len;
            len = 0;
            break;
        }
        len -= (size_t)(dot + 1 - p);
        p = dot + 1;
    }
    memmove(name, p, len + 1);
}

char *spfrec_expand(const char *src, size_t len, int mode, const struct spfrec_env *env, int *err)
{
    struct sbuf b = {0};
    size_t i = 0;
    int explain = mode == SPFREC_EXPAND_EXPLAIN;
    int dummy;

    if (err == NULL)
        err = &dummy;
    *err = 0;
    if (check_macro_string(src, len, explain, NULL, NULL, 0) < 0) {
        *err = -1;
        if (env->local_used)
            *env->local_used = 1; /* conservative: see spfrec.h */
        return NULL;
    }
    sb_add(&b, "", 0);
    while (i < len && !b.err) {
        size_t n;
        if (src[i] != '%') {
            sb_addc(&b, src[i++]);
            continue;
        }
        n = scan_macro(src, len, i, explain);
        if (src[i + 1] == '%') {
            sb_addc(&b, '%');
        } else if (src[i + 1] == '_') {
            sb_addc(&b, ' ');
        } else if (src[i + 1] == '-') {
            sb_add(&b, "%20", 3);
        } else {
            char vbuf[160], delims[16];
            size_t j = i + 2, nd = 0;
            int letter = (unsigned char)src[j];
            int upper = letter >= 'A' && letter <= 'Z';
            unsigned digits = 0;
            int reverse = 0;
            j++;
            while (is_digit((unsigned char)src[j])) {
                if (digits < 1000)
                    digits = digits * 10 + (unsigned)(src[j] - '0');
                j++;
            }
            if (src[j] == 'r' || src[j] == 'R') {
                reverse = 1;
                j++;
            }
            while (src[j] != '}') {
                if (nd < sizeof(delims) - 1 && !memchr(delims, src[j], nd))
                    delims[nd++] = src[j];
                j++;
            }
            if (nd == 0)
                delims[nd++] = '.';
            delims[nd] = '\0';
            if (env->local_used && (tolower(letter) == 'l' || tolower(letter) == 's'))
                *env->local_used = 1;
            expand_one(&b, macro_value(tolower(letter), env, vbuf, sizeof(vbuf)), digits, reverse,
                       delims, upper);
        }
        i += n;
    }
    if (b.err) {
        *err = b.err;
        free(b.p);
        if (env->local_used)
            *env->local_used = 1; /* the unexpanded rest may have used it */
        return NULL;
    }
    if (!explain) {
        if (b.len > 0 && b.p[b.len - 1] == '.')
            b.p[--b.len] = '\0';
        spfrec_truncate_domain(b.p);
    }
    return b.p;
}
