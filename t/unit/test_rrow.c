/* test_rrow.c - the row / policy encoding (exact golden strings, round trips
 * with hostile bytes, strict decoding, garbage never crashing) and the Redis
 * key schema (hash tags, escaping, UTC days). */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rkeys.h"
#include "raddr.h"
#include "rrow.h"
#include "tap.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void set(char *dst, size_t sz, const char *s)
{
    snprintf(dst, sz, "%s", s);
}

static struct rrow base_row(void)
{
    struct rrow r;
    memset(&r, 0, sizeof(r));
    set(r.source_ip, sizeof(r.source_ip), "192.0.2.1");
    set(r.disposition, sizeof(r.disposition), "none");
    set(r.dmarc_spf, sizeof(r.dmarc_spf), "pass");
    set(r.spf_domain, sizeof(r.spf_domain), "example.org");
    set(r.spf_scope, sizeof(r.spf_scope), "mfrom");
    set(r.spf_result, sizeof(r.spf_result), "pass");
    set(r.envelope_from, sizeof(r.envelope_from), "example.org");
    set(r.header_from, sizeof(r.header_from), "example.org");
    return r;
}

static struct rrow_policy base_pol(void)
{
    struct rrow_policy p;
    memset(&p, 0, sizeof(p));
    set(p.domain, sizeof(p.domain), "example.org");
    set(p.p, sizeof(p.p), "reject");
    set(p.sp, sizeof(p.sp), "quarantine");
    set(p.adkim, sizeof(p.adkim), "r");
    set(p.aspf, sizeof(p.aspf), "s");
    set(p.fo, sizeof(p.fo), "0:d");
    set(p.testing, sizeof(p.testing), "n");
    set(p.psd, sizeof(p.psd), "u");
    set(p.discovery_method, sizeof(p.discovery_method), "treewalk");
    p.pct = 100;
    set(p.rua, sizeof(p.rua), "mailto:dmarc@example.org,mailto:x@example.net!10m");
    return p;
}

/* rows_equal: every field, with a description of the first difference. */
static int rows_equal(const struct rrow *a, const struct rrow *b, char *why, size_t wsz)
{
#define F(f)                                                                                       \
    do {                                                                                           \
        if (strcmp(a->f, b->f) != 0) {                                                             \
            snprintf(why, wsz, #f);                                                                \
            return 0;                                                                              \
        }                                                                                          \
    } while (0)
    F(source_ip);
    F(disposition);
    F(dmarc_spf);
    F(spf_domain);
    F(spf_scope);
    F(spf_result);
    F(envelope_from);
    F(header_from);
#undef F
    if (a->nreasons != b->nreasons) {
        snprintf(why, wsz, "nreasons %zu != %zu", a->nreasons, b->nreasons);
        return 0;
    }
    for (size_t i = 0; i < a->nreasons; i++)
        if (a->reasons[i].type != b->reasons[i].type ||
            strcmp(a->reasons[i].comment, b->reasons[i].comment) != 0) {
            snprintf(why, wsz, "reason %zu", i);
            return 0;
        }
    return 1;
}

static int pols_equal(const struct rrow_policy *a, const struct rrow_policy *b)
{
    return strcmp(a->domain, b->domain) == 0 && strcmp(a->p, b->p) == 0 &&
           strcmp(a->sp, b->sp) == 0 && strcmp(a->np, b->np) == 0 &&
           strcmp(a->adkim, b->adkim) == 0 && strcmp(a->aspf, b->aspf) == 0 &&
           strcmp(a->fo, b->fo) == 0 && strcmp(a->testing, b->testing) == 0 &&
           strcmp(a->psd, b->psd) == 0 && strcmp(a->discovery_method, b->discovery_method) == 0 &&
           a->pct == b->pct && strcmp(a->rua, b->rua) == 0;
}

static int roundtrip(const struct rrow *r, char *why, size_t wsz)
{
    static char buf[RROW_ENC_WORST];
    struct rrow d;
    int n = rrow_encode(r, buf, sizeof(buf));

    if (n < 0) {
        snprintf(why, wsz, "encode failed");
        return 0;
    }
    if ((size_t)n != strlen(buf)) {
        snprintf(why, wsz, "length");
        return 0;
    }
    for (int i = 0; i < n; i++) /* only the safe set, '%', '&', '=' appear */
        if (!(buf[i] >= 0x21 && buf[i] < 0x7f) || buf[i] == ' ') {
            snprintf(why, wsz, "raw byte 0x%02x in encoding", (unsigned char)buf[i]);
            return 0;
        }
    if (rrow_decode(buf, (size_t)n, &d) != 0) {
        snprintf(why, wsz, "decode failed: %.80s", buf);
        return 0;
    }
    return rows_equal(r, &d, why, wsz);
}

/* the string fields of a row, to put hostile values in each one */
struct sfield {
    const char *name;
    size_t off, sz;
};
static const struct sfield sfields[] = {
    {"source_ip", offsetof(struct rrow, source_ip), RROW_IP_MAX},
    {"disposition", offsetof(struct rrow, disposition), 16},
    {"dmarc_spf", offsetof(struct rrow, dmarc_spf), 8},
    {"spf_domain", offsetof(struct rrow, spf_domain), RROW_DOMAIN_MAX},
    {"spf_scope", offsetof(struct rrow, spf_scope), 8},
    {"spf_result", offsetof(struct rrow, spf_result), 16},
    {"envelope_from", offsetof(struct rrow, envelope_from), RROW_DOMAIN_MAX},
    {"header_from", offsetof(struct rrow, header_from), RROW_DOMAIN_MAX},
};
#define NSF (sizeof(sfields) / sizeof(sfields[0]))

static void test_reason_names(void)
{
    static const struct {
        enum rrow_reason r;
        const char *name;
    } t[] = {
        {RROW_R_LOCAL_POLICY, "local_policy"},
        {RROW_R_TRUSTED_FORWARDER, "trusted_forwarder"},
        {RROW_R_POLICY_TEST_MODE, "policy_test_mode"},
        {RROW_R_SAMPLED_OUT, "sampled_out"},
        {RROW_R_MAILING_LIST, "mailing_list"},
        {RROW_R_OTHER, "other"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        is_str(rrow_reason_name(t[i].r), t[i].name, "reason name %s", t[i].name);
        is_int(rrow_reason_from_name(t[i].name), t[i].r, "reason from name %s", t[i].name);
    }
    is_str(rrow_reason_name(RROW_R_NONE), "", "NONE has no name");
    is_str(rrow_reason_name((enum rrow_reason)99), "", "out of range has no name");
    is_int(rrow_reason_from_name("bogus"), -1, "unknown reason name");
    is_int(rrow_reason_from_name(""), -1, "empty reason name");
    is_int(rrow_reason_from_name("Local_Policy"), -1, "reason names are exact");
}

static void test_golden(void)
{
    char buf[RROW_ENC_MAX];
    struct rrow r = base_row();
    struct rrow_policy p = base_pol();

    r.nreasons = 2;
    r.reasons[0].type = RROW_R_LOCAL_POLICY;
    set(r.reasons[0].comment, sizeof(r.reasons[0].comment), "a b&c=d%");
    r.reasons[1].type = RROW_R_TRUSTED_FORWARDER;
    int len = rrow_encode(&r, buf, sizeof(buf));
    is_int(len, (long long)strlen(buf), "encode returns length");
    is_str(buf,
           "ip=192.0.2.1&disp=none&dspf=pass&spfd=example.org&spfs=mfrom&spfr=pass"
           "&envf=example.org&hdrf=example.org&rt=local_policy&rc=a%20b%26c%3Dd%25"
           "&rt=trusted_forwarder&rc=",
           "golden row encoding (fixed key order, escaping)");
    r = base_row();
    set(r.source_ip, sizeof(r.source_ip), "2001:db8::1");
    r.envelope_from[0] = '\0';
    rrow_encode(&r, buf, sizeof(buf));
    is_str(buf,
           "ip=2001:db8::1&disp=none&dspf=pass&spfd=example.org&spfs=mfrom&spfr=pass"
           "&envf=&hdrf=example.org",
           "IPv6 needs no escaping; empty value; no reasons");
    len = rrow_policy_encode(&p, buf, sizeof(buf));
    is_int(len, (long long)strlen(buf), "policy length");
    is_str(buf,
           "dom=example.org&p=reject&sp=quarantine&np=&adkim=r&aspf=s&fo=0:d&t=n&psd=u"
           "&disc=treewalk&pct=100&rua=mailto:dmarc@example.org%2Cmailto:x@example.net%2110m",
           "golden policy encoding");

    /* exact buffer boundary: len+1 fits, len does not */
    int n = rrow_encode(&r, buf, sizeof(buf));
    char small[RROW_ENC_MAX];
    is_int(rrow_encode(&r, small, (size_t)n + 1), n, "sz = len+1 fits");
    is_int(rrow_encode(&r, small, (size_t)n), -1, "sz = len is too small");
    is_int(rrow_encode(&r, small, 0), -1, "sz = 0");
    is_int(rrow_policy_encode(&p, small, 10), -1, "policy: too small");

    /* equal rows encode equally (they must meet on one hash field) */
    struct rrow a = base_row(), b;
    char e1[RROW_ENC_MAX], e2[RROW_ENC_MAX];
    memset(&b, 0x55, sizeof(b)); /* different padding/garbage after the NULs */
    b = base_row();
    rrow_encode(&a, e1, sizeof(e1));
    rrow_encode(&b, e2, sizeof(e2));
    is_str(e1, e2, "equal rows, equal encodings");
}

static void test_hostile(void)
{
    static const char *hostile[] = {
        "a&b",
        "a=b",
        "100%",
        "%41",
        "a:b",
        "{example.org}",
        "}{",
        "with space",
        "cr\rlf\n",
        "\"quoted\" 'single'",
        "caf\xc3\xa9.example",
        "\xe2\x9c\x89\xef\xb8\x8f",
        "&=%&=%",
        "rt=local_policy",
        "&rt=other&rc=x",
        "%",
        "%%",
        "%zz",
        "+@-._:",
        "\t\x01\x7f\xff",
    };
    char why[200];
    int bad = 0;

    for (size_t h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++)
        for (size_t f = 0; f < NSF; f++) {
            struct rrow r = base_row();
            snprintf((char *)&r + sfields[f].off, sfields[f].sz, "%s", hostile[h]);
            r.nreasons = 1;
            r.reasons[0].type = RROW_R_OTHER;
            set(r.reasons[0].comment, sizeof(r.reasons[0].comment), hostile[h]);
            if (!roundtrip(&r, why, sizeof(why))) {
                diag("hostile %zu in %s: %s", h, sfields[f].name, why);
                bad++;
            }
        }
    is_int(bad, 0, "hostile values round-trip in every field");

    /* 255-byte domains and every byte 0x01..0xff */
    struct rrow r = base_row();
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    memset(r.spf_domain, 'a', 255);
    r.spf_domain[255] = '\0';
    for (int i = 0; i < 255; i += 64) /* a realistic long name: labels of 63 */
        r.spf_domain[i] = '.';
    memcpy(r.envelope_from, all, 256);
    memcpy(r.header_from, all, 256);
    r.nreasons = RROW_MAX_REASONS;
    for (int i = 0; i < RROW_MAX_REASONS; i++) {
        r.reasons[i].type = (enum rrow_reason)(1 + i);
        memcpy(r.reasons[i].comment, all + 128 * (i % 2), 127);
        r.reasons[i].comment[127] = '\0';
    }
    ok(roundtrip(&r, why, sizeof(why)), "255-byte domains, all bytes 0x01..0xff: %s",
       roundtrip(&r, why, sizeof(why)) ? "ok" : why);

    /* the worst case fits RROW_ENC_WORST */
    static char buf[RROW_ENC_WORST];
    struct rrow w;
    memset(&w, 0, sizeof(w));
    for (size_t f = 0; f < NSF; f++) {
        memset((char *)&w + sfields[f].off, '&', sfields[f].sz - 1);
    }
    w.nreasons = RROW_MAX_REASONS;
    for (int i = 0; i < RROW_MAX_REASONS; i++) {
        w.reasons[i].type = RROW_R_TRUSTED_FORWARDER;
        memset(w.reasons[i].comment, '\n', RROW_COMMENT_MAX - 1);
    }
    int n = rrow_encode(&w, buf, sizeof(buf));
    ok(n > RROW_ENC_MAX && n < RROW_ENC_WORST, "worst-case row %d bytes < RROW_ENC_WORST", n);
    ok(roundtrip(&w, why, sizeof(why)), "worst-case row round-trips");
    struct rrow_policy wp, dp;
    memset(&wp, 0, sizeof(wp));
    memset(wp.domain, '{', sizeof(wp.domain) - 1);
    memset(wp.rua, ',', sizeof(wp.rua) - 1);
    memset(wp.fo, '=', sizeof(wp.fo) - 1);
    memset(wp.discovery_method, '%', sizeof(wp.discovery_method) - 1);
    wp.pct = INT_MIN;
    n = rrow_policy_encode(&wp, buf, sizeof(buf));
    ok(n > RROW_ENC_MAX && n < RROW_ENC_WORST, "worst-case policy %d bytes", n);
    ok(rrow_policy_decode(buf, (size_t)n, &dp) == 0 && pols_equal(&wp, &dp),
       "worst-case policy round-trips (pct INT_MIN)");

    /* a field without its NUL is read up to its size, never beyond */
    struct rrow nn = base_row();
    memset(nn.disposition, 'x', sizeof(nn.disposition));
    n = rrow_encode(&nn, buf, sizeof(buf));
    ok(n > 0 && strstr(buf, "disp=xxxxxxxxxxxxxxxx&dspf=") != NULL,
       "unterminated field read to its size");
}

static void rand_str(char *dst, size_t sz)
{
    size_t n = rnd((unsigned)sz);
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)(1 + rnd(255));
    dst[n] = '\0';
}

static void test_random(void)
{
    char why[200];
    int bad = 0, pbad = 0;
    static char buf[RROW_ENC_WORST];

    for (int it = 0; it < 3000; it++) {
        struct rrow r;
        memset(&r, 0, sizeof(r));
        for (size_t f = 0; f < NSF; f++)
            rand_str((char *)&r + sfields[f].off, sfields[f].sz);
        r.nreasons = rnd(RROW_MAX_REASONS + 1);
        for (size_t i = 0; i < r.nreasons; i++) {
            r.reasons[i].type = (enum rrow_reason)(1 + rnd(6));
            rand_str(r.reasons[i].comment, RROW_COMMENT_MAX);
        }
        if (!roundtrip(&r, why, sizeof(why))) {
            if (bad++ < 3)
                diag("random row %d: %s", it, why);
        }
        struct rrow_policy p, d;
        memset(&p, 0, sizeof(p));
        rand_str(p.domain, sizeof(p.domain));
        rand_str(p.p, sizeof(p.p));
        rand_str(p.sp, sizeof(p.sp));
        rand_str(p.np, sizeof(p.np));
        rand_str(p.adkim, sizeof(p.adkim));
        rand_str(p.aspf, sizeof(p.aspf));
        rand_str(p.fo, sizeof(p.fo));
        rand_str(p.testing, sizeof(p.testing));
        rand_str(p.psd, sizeof(p.psd));
        rand_str(p.discovery_method, sizeof(p.discovery_method));
        rand_str(p.rua, sizeof(p.rua));
        p.pct = (int)rnd(202) - 1;
        int n = rrow_policy_encode(&p, buf, sizeof(buf));
        if (n < 0 || rrow_policy_decode(buf, (size_t)n, &d) != 0 || !pols_equal(&p, &d))
            pbad++;
    }
    is_int(bad, 0, "3000 random rows round-trip");
    is_int(pbad, 0, "3000 random policies round-trip");
}

static void test_strict(void)
{
    static const struct {
        const char *s;
        int want;
        const char *what;
    } t[] = {
        {"", -1, "empty"},
        {"&", -1, "lone separator"},
        {"ip", -1, "no '='"},
        {"=x", -1, "empty key"},
        {"ip=1.2.3.4&", -1, "trailing '&'"},
        {"&ip=1.2.3.4", -1, "leading '&'"},
        {"ip=1.2.3.4&&disp=none", -1, "empty item"},
        {"ip=a%", -1, "truncated escape"},
        {"ip=a%4", -1, "half escape"},
        {"ip=a%zz", -1, "bad hex"},
        {"ip=%00", -1, "escaped NUL"},
        {"ip=a b", -1, "raw space"},
        {"ip=a=b", -1, "raw '='"},
        {"ip=a\nb", -1, "raw LF"},
        {"ip=a\xc3\xa9", -1, "raw UTF-8"},
        {"IP=1.2.3.4", -1, "upper-case key"},
        {"i p=1", -1, "space in key"},
        {"ip=1&ip=2", -1, "repeated key"},
        {"rc=x", -1, "comment without reason"},
        {"rt=local_policy&rc=a&rc=b", -1, "two comments"},
        {"rt=bogus", -1, "unknown reason type"},
        {"rt=", -1, "empty reason type"},
        {"rt=other&rt=other&rt=other&rt=other&rt=other", -1, "too many reasons"},
        {"disp=0123456789abcdef", -1, "value longer than its field"},
        {"zz=%G1", -1, "unknown key with a bad value"},
        {"zz=a b&ip=1", -1, "unknown key with a raw space"},
        {"ip=1.2.3.4", 0, "minimal"},
        {"ip=%3a%3A", 0, "lower/upper hex"},
        {"future=x%20y&ip=1.2.3.4&later=", 0, "unknown keys skipped"},
        {"rt=other", 0, "reason without comment"},
        {"rt=other&rt=other&rt=other&rt=other", 0, "four reasons"},
        {"disp=0123456789abcde", 0, "value filling its field"},
    };
    struct rrow r;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        is_int(rrow_decode(t[i].s, strlen(t[i].s), &r), t[i].want, "decode: %s", t[i].what);
    ok(rrow_decode("future=x%20y&ip=1.2.3.4&later=", 30, &r) == 0 &&
           strcmp(r.source_ip, "1.2.3.4") == 0 && r.disposition[0] == '\0',
       "unknown keys skipped, known kept, missing empty");
    ok(rrow_decode("ip=%3a%3A", 9, &r) == 0 && strcmp(r.source_ip, "::") == 0, "hex case");
    /* len is honoured: the bytes after it are not read */
    ok(rrow_decode("ip=1.2.3.4&disp=none", 10, &r) == 0 && strcmp(r.source_ip, "1.2.3.4") == 0 &&
           r.disposition[0] == '\0',
       "decoding stops at len");
    is_int(rrow_decode("ip=1.2.3.4&disp=none", 11, &r), -1, "cut after '&' is malformed");
    is_int(rrow_decode(NULL, 0, &r), -1, "NULL");

    static const struct {
        const char *s;
        int want, pct;
    } pt[] = {
        {"dom=a&pct=0", 0, 0},      {"dom=a&pct=100", 0, 100},
        {"dom=a", 0, 100},          {"dom=a&pct=-1", 0, -1},
        {"dom=a&pct=1x", -1, 0},    {"dom=a&pct=-", -1, 0},
        {"dom=a&pct=+5", -1, 0},    {"dom=a&pct=99999999999", -1, 0},
        {"dom=a&pct=%2035", -1, 0}, {"dom=a&dom=b", -1, 0},
        {"p=none&x=1", 0, 100},     {"dom=a&rua=mailto:a%2Cmailto:b", 0, 100},
    };
    for (size_t i = 0; i < sizeof(pt) / sizeof(pt[0]); i++) {
        struct rrow_policy p;
        int rv = rrow_policy_decode(pt[i].s, strlen(pt[i].s), &p);
        is_int(rv, pt[i].want, "policy decode: %s", pt[i].s);
        if (rv == 0 && pt[i].want == 0)
            is_int(p.pct, pt[i].pct, "policy pct: %s", pt[i].s);
    }
}

/* Garbage never crashes, and whatever decodes re-encodes to something that
 * decodes to the same row (stability). */
static void test_garbage(void)
{
    static const char alpha[] = "&=%%&=%0123456789ABCDEFabcdefipdsrtcnvhfxyz.:-_ \n\xff";
    static char buf[RROW_ENC_WORST], enc[RROW_ENC_WORST];
    int decoded = 0, unstable = 0;
    char why[200];

    for (int it = 0; it < 200000; it++) {
        size_t n = rnd(120);
        struct rrow r, r2;
        struct rrow_policy p;
        int mode = rnd(3);
        for (size_t i = 0; i < n; i++)
            buf[i] = mode == 0 ? (char)rnd(256) : alpha[rnd(sizeof(alpha) - 1)];
        if (mode == 2 && it % 2) { /* start from a valid encoding and damage it */
            struct rrow b = base_row();
            int l = rrow_encode(&b, buf, sizeof(buf));
            n = (size_t)l;
            for (int k = 0, m = 1 + (int)rnd(3); k < m; k++)
                buf[rnd((unsigned)l)] = alpha[rnd(sizeof(alpha) - 1)];
        }
        if (rrow_decode(buf, n, &r) == 0) {
            decoded++;
            int l = rrow_encode(&r, enc, sizeof(enc));
            if (l < 0 || rrow_decode(enc, (size_t)l, &r2) != 0 || !rows_equal(&r, &r2, why, 200))
                unstable++;
        }
        (void)rrow_policy_decode(buf, n, &p);
    }
    ok(1, "200000 garbage inputs decoded without crashing (%d accepted)", decoded);
    ok(decoded > 0, "some damaged encodings still decode (unknown keys)");
    is_int(unstable, 0, "accepted garbage re-encodes stably");
}

static void test_keys(void)
{
    char k[RKEY_MAX];
    static const struct {
        int (*fn)(char *, size_t, const char *, const char *, const char *);
        const char *want;
    } t[] = {
        {rkey_rpt, "pd:rpt:{example.org}:20240102"},
        {rkey_pol, "pd:pol:{example.org}:20240102"},
        {rkey_lock, "pd:lock:{example.org}:20240102"},
        {rkey_sent, "pd:sent:{example.org}:20240102"},
        {rkey_rid, "pd:rid:{example.org}:20240102"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int n = t[i].fn(k, sizeof(k), "pd", "example.org", "20240102");
        is_str(k, t[i].want, "key %s", t[i].want);
        is_int(n, (long long)strlen(t[i].want), "key length %s", t[i].want);
    }
    is_int(rkey_idx(k, sizeof(k), "pd", "20240102"), 15, "idx length");
    is_str(k, "pd:idx:20240102", "idx key");
    is_int(rkey_days(k, sizeof(k), "my.prefix"), 14, "days length");
    is_str(k, "my.prefix:days", "days key");
    rkey_rpt(k, sizeof(k), "pd", "a{b}c%d", "20240102");
    is_str(k, "pd:rpt:{a%7Bb%7Dc%25d}:20240102", "braces and '%%' escaped: the tag holds");
    ok(strchr(strchr(k, '{') + 1, '{') == NULL && strchr(k, '}') == strrchr(k, '}'),
       "exactly one '{' and one '}' in the key");
    rkey_pol(k, sizeof(k), "pd", "}}}", "20240102");
    is_str(k, "pd:pol:{%7D%7D%7D}:20240102", "only-braces domain");

    char longd[256];
    memset(longd, 'x', 255);
    longd[255] = '\0';
    ok(rkey_lock(k, sizeof(k), "0123456789012345678901234567890123456789012345678901234567890123",
                 longd, "20240102") > 0,
       "255-byte domain and 64-byte prefix fit RKEY_MAX");
    memset(longd, '{', 255);
    is_int(rkey_rpt(k, sizeof(k), "pd", longd, "20240102"), -1, "does not fit: -1");
    is_int(rkey_rpt(k, 10, "pd", "example.org", "20240102"), -1, "small buffer: -1");
    is_int(rkey_idx(k, 5, "pd", "20240102"), -1, "idx small buffer: -1");

    static const struct {
        long long t;
        const char *day;
    } d[] = {
        {0, "19700101"},
        {1704153600LL, "20240102"},
        {1704153599LL, "20240101"},
        {951782400LL, "20000229"},
        {-1, "19691231"},
        {253402300799LL, "99991231"},
        {253402300800LL, "00000000"},
        {4000000000000000000LL, "00000000"},
    };
    /* UTC whatever the local zone says */
    setenv("TZ", "Pacific/Kiritimati", 1);
    tzset();
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        char day[9];
        rkey_day(day, sizeof(day), d[i].t);
        is_str(day, d[i].day, "day of %lld", d[i].t);
    }
}

int main(void)
{
    test_reason_names();
    test_golden();
    test_hostile();
    test_random();
    test_strict();
    test_garbage();
    test_keys();
    /* raddr: the one parser of the redis address setting. */
    {
        static const struct {
            const char *in, *host, *path;
            int port, rc;
        } ac[] = {
            {"tcp:127.0.0.1:6379", "127.0.0.1", NULL, 6379, 0},
            {"tcp:[::1]:6380", "::1", NULL, 6380, 0},
            {"tcp:redis.example:1", "redis.example", NULL, 1, 0},
            {"unix:/run/redis/redis.sock", NULL, "/run/redis/redis.sock", 0, 0},
            {"tcp:127.0.0.1", NULL, NULL, 0, -1},
            {"tcp:127.0.0.1:0", NULL, NULL, 0, -1},
            {"tcp:127.0.0.1:65536", NULL, NULL, 0, -1},
            {"tcp::6379", NULL, NULL, 0, -1},
            {"tcp:[::1:6379", NULL, NULL, 0, -1},
            {"unix:", NULL, NULL, 0, -1},
            {"redis://127.0.0.1:6379", NULL, NULL, 0, -1},
        };
        for (size_t i = 0; i < sizeof(ac) / sizeof(ac[0]); i++) {
            char *host, *path;
            int port = 0, rc = raddr_parse(ac[i].in, &host, &port, &path);

            is_int(rc, ac[i].rc, "raddr_parse(%s) rc", ac[i].in);
            if (rc == 0) {
                is_str(host, ac[i].host, "raddr_parse(%s) host", ac[i].in);
                is_str(path, ac[i].path, "raddr_parse(%s) path", ac[i].in);
                is_int(port, ac[i].port, "raddr_parse(%s) port", ac[i].in);
            }
            free(host);
            free(path);
        }
    }
    return tap_done();
}
