/* dmarc.c - the DMARC policy record parser (RFC 9989 §4.7/§4.8 ABNF, with the
 * RFC 7489 tags pct/rf/ri and fo grammar in RFC 7489 mode). Works on
 * (pointer, length) so NUL bytes are seen, never cut off. The decisions and
 * their RFC reasons are summarised in dmarc.h and docs/conformance.md. */
#include "dmarc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Unknown tag names remembered for the duplicate check. Bounded so that a
 * hostile 64 KiB record cannot make the check quadratic; beyond it, repeats
 * of unknown tags go unnoticed (they are ignored anyway). */
#define UNKNOWN_TRACK 32

/* Known tag names, one bit each for the duplicate check. */
enum tag {
    T_V = 0,
    T_P,
    T_SP,
    T_NP,
    T_PSD,
    T_T,
    T_ADKIM,
    T_ASPF,
    T_FO,
    T_RUA,
    T_RUF,
    T_PCT,
    T_RF,
    T_RI,
    T_UNKNOWN,
};

static const char *const tag_names[] = {"v",    "p",  "sp",  "np",  "psd", "t",  "adkim",
                                        "aspf", "fo", "rua", "ruf", "pct", "rf", "ri"};

/* A (pointer, length) slice of the record. */
struct span {
    const char *s;
    size_t n;
};

/* Parser state: where errors go and the first ignored error is noted. */
struct pstate {
    struct dmarc_record *out;
    enum dmarc_mode mode;
    char *err;
    size_t errlen;
    int sp_invalid, np_invalid;
    size_t rua_valid; /* syntactically valid rua URIs, stored or not */
};

static int is_wsp(int c)
{
    return c == ' ' || c == '\t';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static struct span trim(struct span v)
{
    while (v.n > 0 && is_wsp((unsigned char)v.s[0]))
        v.s++, v.n--;
    while (v.n > 0 && is_wsp((unsigned char)v.s[v.n - 1]))
        v.n--;
    return v;
}

/* eq: case-insensitive comparison of a span with a word (RFC 5234 quoted
 * strings are case-insensitive). */
static int eq(struct span v, const char *word)
{
    size_t n = strlen(word);
    return v.n == n && strncasecmp(v.s, word, n) == 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ignored: a syntax error RFC 9989 §4.8 tells us to discard; count it and
 * describe the first one (for the log). */
static void ignored(struct pstate *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ignored(struct pstate *ps, const char *fmt, ...)
{
    va_list ap;

    if (ps->out->nignored++ == 0 && ps->err != NULL && ps->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(ps->err, ps->errlen, fmt, ap);
        va_end(ap);
    }
}

/* version_end: when txt starts with the version tag, the offset just after
 * it (at ";" or len), else 0. dmarc-version = "v" equals %s"DMARC1", followed
 * by dmarc-sep or the end of the record. */
static size_t version_end(const char *txt, size_t len)
{
    size_t i = 0;

    if (txt == NULL || len < 8 || (txt[0] != 'v' && txt[0] != 'V'))
        return 0;
    i = 1;
    while (i < len && is_wsp((unsigned char)txt[i]))
        i++;
    if (i >= len || txt[i] != '=')
        return 0;
    i++;
    while (i < len && is_wsp((unsigned char)txt[i]))
        i++;
    if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
        return 0;
    i += 6;
    while (i < len && is_wsp((unsigned char)txt[i]))
        i++;
    if (i < len && txt[i] != ';')
        return 0;
    return i;
}

int dmarc_record_is_dmarc(const char *txt, size_t len)
{
    return version_end(txt, len) != 0;
}

static enum dmarc_policy parse_request(struct span v)
{
    if (eq(v, "none"))
        return DMARC_P_NONE;
    if (eq(v, "quarantine"))
        return DMARC_P_QUARANTINE;
    if (eq(v, "reject"))
        return DMARC_P_REJECT;
    return DMARC_P_UNSET;
}

/* fo_valid: RFC 9989 dmarc-fo: 0/1 (at most one of them) and d/s, each at
 * most once, ":"-separated, no whitespace. RFC 7489: any of 0/1/d/s,
 * repeats allowed, *WSP around ":". */
static int fo_valid(struct span v, enum dmarc_mode mode)
{
    unsigned seen = 0;
    size_t i = 0;

    for (;;) {
        struct span tok;
        size_t s = i;
        unsigned bit;

        while (i < v.n && v.s[i] != ':')
            i++;
        tok.s = v.s + s, tok.n = i - s;
        if (mode == DMARC_MODE_RFC7489)
            tok = trim(tok);
        if (tok.n != 1)
            return 0;
        switch (tok.s[0]) {
        case '0':
            bit = 1;
            break;
        case '1':
            bit = 2;
            break;
        case 'd':
        case 'D':
            bit = 4;
            break;
        case 's':
        case 'S':
            bit = 8;
            break;
        default:
            return 0;
        }
        if (mode == DMARC_MODE_RFC9989 && ((seen & bit) || (bit <= 2 && (seen & 3))))
            return 0;
        seen |= bit;
        if (i == v.n)
            return 1;
        i++; /* past ':' */
    }
}

/* size_valid: obs-dmarc-report-size after the "!": 1*DIGIT [k/m/g/t]. RFC
 * 7489 adds that the number MUST fit in an unsigned 64-bit integer; RFC
 * 9989 dropped that (the suffix is obsolete and to be ignored). */
static int size_valid(struct span v, enum dmarc_mode mode)
{
    unsigned long long n = 0;
    size_t i = 0;

    for (; i < v.n && is_digit((unsigned char)v.s[i]); i++) {
        unsigned d = (unsigned)(v.s[i] - '0');
        if (mode == DMARC_MODE_RFC7489 && n > (ULLONG_MAX - d) / 10)
            return 0;
        n = n * 10 + d;
    }
    if (i == 0)
        return 0;
    if (i == v.n)
        return 1;
    return i + 1 == v.n && strchr("kmgtKMGT", v.s[i]) != NULL;
}

/* uri_valid: RFC 3986 URI at the character level: scheme ":" then only
 * URI characters (unreserved, sub-delims, ":@/?#[]", %HH), at most one "#";
 * "!" and "," must be percent-encoded (RFC 9989 §4.8), so a raw "!" starts
 * the obsolete size suffix. */
static int uri_valid(struct span v, enum dmarc_mode mode)
{
    size_t i = 0, bang;
    int hashes = 0;

    for (bang = 0; bang < v.n && v.s[bang] != '!'; bang++)
        ;
    if (bang < v.n) {
        struct span sz = {v.s + bang + 1, v.n - bang - 1};
        if (!size_valid(sz, mode))
            return 0;
        v.n = bang;
    }
    if (v.n == 0 || !is_alpha((unsigned char)v.s[0]))
        return 0;
    for (i = 1; i < v.n && v.s[i] != ':'; i++) {
        int c = (unsigned char)v.s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    if (i == v.n)
        return 0; /* no ":" after the scheme */
    for (i++; i < v.n; i++) {
        int c = (unsigned char)v.s[i];
        if (c == '%') {
            if (i + 2 >= v.n)
                return 0;
            if (!is_hex((unsigned char)v.s[i + 1]) || !is_hex((unsigned char)v.s[i + 2]))
                return 0;
            i += 2;
            continue;
        }
        if (c == '#' && ++hashes > 1)
            return 0;
        if (is_alpha(c) || is_digit(c) || strchr("-._~$&'()*+=:@/?#[]", c) != NULL)
            continue;
        return 0;
    }
    return 1;
}

/* parse_urilist: keep the valid URIs of a rua/ruf value, drop the others. */
static void parse_urilist(struct pstate *ps, const char *tag, struct span v,
                          char (*list)[DMARC_URI_MAX], size_t *nlist, size_t *nvalid)
{
    size_t i = 0;

    while (i <= v.n) {
        size_t s = i;
        struct span u;

        while (i < v.n && v.s[i] != ',')
            i++;
        u.s = v.s + s, u.n = i - s;
        u = trim(u);
        i++; /* past ',' (or the end) */
        if (!uri_valid(u, ps->mode)) {
            ignored(ps, "%s: invalid URI \"%.*s\" dropped", tag, (int)(u.n > 64 ? 64 : u.n), u.s);
            continue;
        }
        (*nvalid)++;
        if (u.n >= DMARC_URI_MAX || *nlist >= DMARC_MAX_URIS) {
            ignored(ps, "%s: URI \"%.*s\" dropped (too long or too many)", tag,
                    (int)(u.n > 64 ? 64 : u.n), u.s);
            continue;
        }
        memcpy(list[*nlist], u.s, u.n);
        list[*nlist][u.n] = '\0';
        (*nlist)++;
    }
}

/* parse_uint: 1*DIGIT (at most maxdigits when nonzero) <= max. */
static int parse_uint(struct span v, unsigned long max, size_t maxdigits, unsigned long *res)
{
    unsigned long n = 0;

    if (v.n == 0 || (maxdigits > 0 && v.n > maxdigits))
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        unsigned d;
        if (!is_digit((unsigned char)v.s[i]))
            return 0;
        d = (unsigned)(v.s[i] - '0');
        if (n > (max - d) / 10)
            return 0;
        n = n * 10 + d;
    }
    *res = n;
    return 1;
}

/* rf_valid (RFC 7489): Keyword *(*WSP ":" *WSP Keyword), Keyword = Ldh-str
 * of RFC 5321 (letters, digits, inner hyphens). */
static int rf_valid(struct span v)
{
    size_t i = 0;

    for (;;) {
        size_t s = i;
        struct span k;

        while (i < v.n && v.s[i] != ':')
            i++;
        k.s = v.s + s, k.n = i - s;
        k = trim(k);
        if (k.n == 0 || k.s[0] == '-' || k.s[k.n - 1] == '-')
            return 0;
        for (size_t j = 0; j < k.n; j++) {
            int c = (unsigned char)k.s[j];
            if (!is_alpha(c) && !is_digit(c) && c != '-')
                return 0;
        }
        if (i == v.n)
            return 1;
        i++;
    }
}

static enum tag tag_of(struct span name, enum dmarc_mode mode)
{
    for (size_t t = 0; t < sizeof(tag_names) / sizeof(tag_names[0]); t++) {
        if (eq(name, tag_names[t])) {
            /* RFC 9989 dropped pct, rf and ri: unknown tags there. */
            if (mode == DMARC_MODE_RFC9989 && (t == T_PCT || t == T_RF || t == T_RI))
                return T_UNKNOWN;
            return (enum tag)t;
        }
    }
    return T_UNKNOWN;
}

/* apply: interpret one well-formed tag. */
static void apply(struct pstate *ps, enum tag t, struct span v)
{
    struct dmarc_record *r = ps->out;
    enum dmarc_policy pol;
    unsigned long n;

    switch (t) {
    case T_P:
        if ((r->p = parse_request(v)) == DMARC_P_UNSET) {
            r->p_invalid = 1;
            ignored(ps, "invalid p value \"%.*s\"", (int)(v.n > 32 ? 32 : v.n), v.s);
        }
        break;
    case T_SP:
    case T_NP:
        if ((pol = parse_request(v)) == DMARC_P_UNSET) {
            *(t == T_SP ? &ps->sp_invalid : &ps->np_invalid) = 1;
            ignored(ps, "invalid %s value \"%.*s\"", tag_names[t], (int)(v.n > 32 ? 32 : v.n), v.s);
        } else {
            *(t == T_SP ? &r->sp : &r->np) = pol;
        }
        break;
    case T_PSD:
        if (eq(v, "y"))
            r->psd = DMARC_PSD_Y;
        else if (eq(v, "n"))
            r->psd = DMARC_PSD_N;
        else if (eq(v, "u"))
            r->psd = DMARC_PSD_U;
        else
            ignored(ps, "invalid psd value");
        break;
    case T_T:
        if (eq(v, "y"))
            r->testing = 1;
        else if (eq(v, "n"))
            r->testing = 0;
        else
            ignored(ps, "invalid t value");
        break;
    case T_ADKIM:
    case T_ASPF: {
        enum dmarc_align *a = t == T_ADKIM ? &r->adkim : &r->aspf;
        if (eq(v, "r"))
            *a = DMARC_ALIGN_RELAXED;
        else if (eq(v, "s"))
            *a = DMARC_ALIGN_STRICT;
        else
            ignored(ps, "invalid %s value", tag_names[t]);
        break;
    }
    case T_FO:
        if (fo_valid(v, ps->mode) && v.n < sizeof(r->fo)) {
            memcpy(r->fo, v.s, v.n);
            r->fo[v.n] = '\0';
        } else {
            ignored(ps, "invalid fo value");
        }
        break;
    case T_RUA:
        parse_urilist(ps, "rua", v, r->rua, &r->nrua, &ps->rua_valid);
        break;
    case T_RUF: {
        size_t nvalid = 0;
        parse_urilist(ps, "ruf", v, r->ruf, &r->nruf, &nvalid);
        break;
    }
    case T_PCT:
        if (parse_uint(v, 100, 3, &n))
            r->pct = (int)n;
        else
            ignored(ps, "invalid pct value");
        break;
    case T_RI:
        if (parse_uint(v, 4294967295UL, 0, &n))
            r->ri = (unsigned)n;
        else
            ignored(ps, "invalid ri value");
        break;
    case T_RF:
        if (!rf_valid(v))
            ignored(ps, "invalid rf value");
        break; /* afrf is the only format there is: nothing to keep */
    case T_V:
    case T_UNKNOWN:
        break; /* unknown tags MUST be ignored (RFC 9989 §4.7) */
    }
}

static void record_defaults(struct dmarc_record *r)
{
    memset(r, 0, sizeof(*r));
    r->pct = 100;
    r->ri = 86400;
    strcpy(r->fo, "0");
}

enum dmarc_parse dmarc_record_parse(const char *txt, size_t len, enum dmarc_mode mode,
                                    struct dmarc_record *out, char *err, size_t errlen)
{
    struct pstate ps = {.out = out, .mode = mode, .err = err, .errlen = errlen};
    struct span unknown[UNKNOWN_TRACK];
    size_t nunknown = 0, i;
    unsigned seen = 1u << T_V;

    record_defaults(out);
    seterr(err, errlen, "%s", "");
    if ((i = version_end(txt, len)) == 0) {
        seterr(err, errlen, "not a DMARC record (does not start with v=DMARC1)");
        return DMARC_PARSE_NOT_DMARC;
    }
    /* The record is text: printable ASCII, TAB allowed as WSP. A NUL or a
     * control byte means a damaged or hostile record, not a syntax slip. */
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)txt[k];
        if (c != '\t' && (c < 0x20 || c > 0x7e)) {
            seterr(err, errlen, "control or non-ASCII byte 0x%02x at offset %zu", c, k);
            return DMARC_PARSE_INVALID;
        }
    }
    /* i is at ";" or len. Each round takes one tag-spec up to the next ";". */
    while (i < len) {
        struct span spec, name, val;
        size_t s = ++i, eqpos;
        enum tag t;

        while (i < len && txt[i] != ';')
            i++;
        spec.s = txt + s, spec.n = i - s;
        spec = trim(spec);
        if (spec.n == 0) {
            if (i < len)
                ignored(&ps, "empty tag");
            continue; /* at the end: the optional trailing dmarc-sep */
        }
        for (eqpos = 0; eqpos < spec.n && spec.s[eqpos] != '='; eqpos++)
            ;
        if (eqpos == spec.n) {
            ignored(&ps, "tag without \"=\": \"%.*s\"", (int)(spec.n > 32 ? 32 : spec.n), spec.s);
            continue;
        }
        name.s = spec.s, name.n = eqpos;
        name = trim(name);
        val.s = spec.s + eqpos + 1, val.n = spec.n - eqpos - 1;
        val = trim(val);
        {
            size_t k;
            for (k = 0; k < name.n && is_alpha((unsigned char)name.s[k]); k++)
                ;
            if (name.n == 0 || k < name.n) {
                ignored(&ps, "invalid tag name \"%.*s\"", (int)(name.n > 32 ? 32 : name.n), name.s);
                continue;
            }
        }
        t = tag_of(name, mode);
        /* Duplicates make the whole tag-list invalid (RFC 6376 §3.2). */
        if (t != T_UNKNOWN) {
            if (seen & (1u << t)) {
                seterr(err, errlen, "duplicate tag \"%.*s\"", (int)name.n, name.s);
                return DMARC_PARSE_INVALID;
            }
            seen |= 1u << t;
        } else {
            for (size_t k = 0; k < nunknown; k++) {
                if (unknown[k].n == name.n && strncasecmp(unknown[k].s, name.s, name.n) == 0) {
                    seterr(err, errlen, "duplicate tag \"%.*s\"", (int)(name.n > 32 ? 32 : name.n),
                           name.s);
                    return DMARC_PARSE_INVALID;
                }
            }
            if (nunknown < UNKNOWN_TRACK)
                unknown[nunknown++] = name;
        }
        if (val.n == 0) {
            ignored(&ps, "tag \"%.*s\" without a value", (int)(name.n > 32 ? 32 : name.n), name.s);
            continue;
        }
        apply(&ps, t, val);
    }

    /* RFC 9989 §4.10.1 (RFC 7489 §6.6.3): no valid p, or an invalid sp/np. */
    if (out->p == DMARC_P_UNSET || ps.sp_invalid || ps.np_invalid) {
        const char *why = out->p_invalid            ? "invalid p value"
                          : out->p == DMARC_P_UNSET ? "no p tag"
                          : ps.sp_invalid           ? "invalid sp value"
                                                    : "invalid np value";
        if (ps.rua_valid == 0) {
            seterr(err, errlen, "%s and no valid rua URI: no policy", why);
            return DMARC_PARSE_INVALID;
        }
        out->p = DMARC_P_NONE;
        out->sp = out->np = DMARC_P_UNSET;
        out->p_implied = 1;
        if (out->nignored == 0)
            seterr(err, errlen, "%s: treated as p=none (valid rua present)", why);
    }
    return DMARC_PARSE_OK;
}

enum dmarc_parse dmarc_select(const char *const *txts, const size_t *lens, size_t n,
                              enum dmarc_mode mode, struct dmarc_record *out, char *err,
                              size_t errlen)
{
    size_t found = 0, which = 0;

    for (size_t k = 0; k < n; k++) {
        size_t len = txts[k] == NULL ? 0 : lens != NULL ? lens[k] : strlen(txts[k]);
        if (dmarc_record_is_dmarc(txts[k], len)) {
            found++;
            which = k;
        }
    }
    if (found == 0) {
        record_defaults(out);
        seterr(err, errlen, "no DMARC record");
        return DMARC_PARSE_NOT_DMARC;
    }
    if (found > 1) {
        record_defaults(out);
        seterr(err, errlen, "multiple DMARC records");
        return DMARC_PARSE_INVALID;
    }
    return dmarc_record_parse(txts[which], lens != NULL ? lens[which] : strlen(txts[which]), mode,
                              out, err, errlen);
}

size_t dmarc_uri_size(const char *uri, unsigned long long *max_bytes)
{
    const char *bang = strchr(uri, '!');
    unsigned long long n = 0;
    unsigned shift = 0;

    if (max_bytes != NULL)
        *max_bytes = 0;
    if (bang == NULL)
        return strlen(uri);
    for (const char *p = bang + 1; is_digit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        n = n > (ULLONG_MAX - d) / 10 ? ULLONG_MAX : n * 10 + d;
        if (!is_digit((unsigned char)p[1])) {
            switch (p[1]) {
            case 'k':
            case 'K':
                shift = 10;
                break;
            case 'm':
            case 'M':
                shift = 20;
                break;
            case 'g':
            case 'G':
                shift = 30;
                break;
            case 't':
            case 'T':
                shift = 40;
                break;
            }
        }
    }
    if (shift > 0 && n != ULLONG_MAX)
        n = n > (ULLONG_MAX >> shift) ? ULLONG_MAX : n << shift;
    if (max_bytes != NULL)
        *max_bytes = n;
    return (size_t)(bang - uri);
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    switch (p) {
    case DMARC_P_NONE:
        return "none";
    case DMARC_P_QUARANTINE:
        return "quarantine";
    case DMARC_P_REJECT:
        return "reject";
    case DMARC_P_UNSET:
        break;
    }
    return "";
}
