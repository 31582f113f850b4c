/* grey.c - greylisting rules, pure (see grey.h).
 *
 * postgrey (1.37) is what administrators know, so its observable rules are
 * kept: the triplet's parts, sender normalisation (BATV, +ext, stand-alone
 * digit runs), first-sight / retry-window / max-age handling, the AWL that
 * counts at most one pass per hour, and the whitelist file formats. Where it
 * is weak we do better and say so in docs/greylisting.md: the whole sender is
 * lowercased before BATV is recognised, SRS0 and btv1 are normalised too,
 * "a.b" in a client whitelist is the /16 its comment promises (postgrey uses
 * /24), the passed flag is stored instead of being inferred from the
 * timestamps, and keys are hashed (postgrey's --privacy, always on).
 *
 * SHA-256 is written here (FIPS 180-4, about 60 lines) because the project
 * links no crypto library and the key must be the same on every MX. */
#include "grey.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "san.h"

const char *grey_verdict_name(enum grey_verdict v)
{
    switch (v) {
    case GREY_DEFER:
        return "defer";
    case GREY_PASS:
        return "pass";
    case GREY_PASS_NEW:
        return "pass_new";
    case GREY_PASS_AWL:
        return "pass_awl";
    case GREY_ERROR:
        return "error";
    }
    return "?";
}

void grey_params_init(struct grey_params *p)
{
    p->delay_ms = 300000;
    p->window_ms = 2LL * 86400000;
    p->max_age_ms = 35LL * 86400000;
    p->awl_count = 5;
    p->awl_interval_ms = GREY_AWL_INTERVAL_MS;
    p->ipv4_prefix = 24;
    p->ipv6_prefix = 64;
}

/* ---- sender normalisation ---- */

static int is_word(int c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* is_batv_tag: perl's /^[0-9a-z]{10}/ (a prefix test, as postgrey). */
static int is_batv_tag(const char *s, size_t n)
{
    if (n < 10)
        return 0;
    for (size_t i = 0; i < 10; i++)
        if (!(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'z')))
            return 0;
    return 1;
}

/* strip_batv: local part (lowercased, len *n) of a BATV address -> the
 * original local part, moved to the start of buf. */
static void strip_batv(char *buf, size_t *n)
{
    size_t plen = 0;
    char *p, *q, *e = buf + *n;

    if (*n > 6 && memcmp(buf, "btv1==", 6) == 0) {
        /* btv1==TAG==user */
        p = buf + 6;
        for (q = p; q + 1 < e; q++)
            if (q[0] == '=' && q[1] == '=')
                break;
        if (q + 1 < e && q > p && q + 2 < e) {
            size_t ul = (size_t)(e - (q + 2));
            memmove(buf, q + 2, ul);
            *n = ul;
        }
        return;
    }
    if (*n > 5 && memcmp(buf, "prvs=", 5) == 0)
        plen = 5;
    else if (*n > 8 && memcmp(buf, "msprvs1=", 8) == 0)
        plen = 8;
    if (plen == 0)
        return;
    /* exactly two more fields: PREFIX=a=b */
    p = buf + plen;
    q = memchr(p, '=', (size_t)(e - p));
    if (q == NULL || memchr(q + 1, '=', (size_t)(e - q - 1)) != NULL)
        return;
    {
        size_t al = (size_t)(q - p), bl = (size_t)(e - q - 1);
        int at = is_batv_tag(p, al), bt = is_batv_tag(q + 1, bl);
        const char *u = q + 1;
        size_t ul = bl;
        if (al == 0 || bl == 0)
            return;
        if (bt && !at) { /* the swapped form prvs=user=TAG */
            u = p;
            ul = al;
        }
        memmove(buf, u, ul);
        *n = ul;
    }
}

/* srs0: "srs0=HASH=TT=domain=user" -> "srs0=#=#=domain=user". */
static void norm_srs0(char *buf, size_t *n, size_t cap)
{
    char *e = buf + *n, *h, *t, *d;
    char tmp[GREY_ADDR_MAX];
    int l;

    if (*n < 5 || (memcmp(buf, "srs0=", 5) != 0 && memcmp(buf, "srs0+", 5) != 0 &&
                   memcmp(buf, "srs0-", 5) != 0))
        return;
    h = buf + 5;
    if ((t = memchr(h, '=', (size_t)(e - h))) == NULL)
        return;
    if ((d = memchr(t + 1, '=', (size_t)(e - t - 1))) == NULL)
        return;
    if (memchr(d + 1, '=', (size_t)(e - d - 1)) == NULL)
        return; /* no "=domain=user" after the timestamp */
    l = snprintf(tmp, sizeof(tmp), "srs0=#=#=%.*s", (int)(e - d - 1), d + 1);
    if (l < 0 || (size_t)l >= cap || (size_t)l >= sizeof(tmp))
        return;
    memcpy(buf, tmp, (size_t)l);
    *n = (size_t)l;
}

/* digit_runs: perl's s/\b\d+\b/#/g on buf (len *n), in place (never grows). */
static void digit_runs(char *buf, size_t *n)
{
    size_t i = 0, w = 0;

    while (i < *n) {
        if (isdigit((unsigned char)buf[i]) && (i == 0 || !is_word(buf[i - 1]))) {
            size_t j = i;
            while (j < *n && isdigit((unsigned char)buf[j]))
                j++;
            if (j == *n || !is_word(buf[j])) {
                buf[w++] = '#';
                i = j;
                continue;
            }
            /* the run ends inside a word: copy it unchanged */
            while (i < j)
                buf[w++] = buf[i++];
            continue;
        }
        buf[w++] = buf[i++];
    }
    *n = w;
}

int grey_normalize_sender(const char *sender, char *out, size_t sz)
{
    char local[GREY_ADDR_MAX];
    const char *at;
    size_t len, ll, dl;

    if (sz == 0)
        return -1;
    out[0] = '\0';
    if (sender == NULL)
        return 0;
    len = strlen(sender);
    if (len >= sz || len >= sizeof(local))
        return -1;
    at = strrchr(sender, '@');
    if (at == NULL) {
        for (size_t i = 0; i <= len; i++)
            out[i] = (char)tolower((unsigned char)sender[i]);
        return (int)len;
    }
    ll = (size_t)(at - sender);
    dl = len - ll - 1;
    for (size_t i = 0; i < ll; i++)
        local[i] = (char)tolower((unsigned char)sender[i]);
    strip_batv(local, &ll);
    norm_srs0(local, &ll, sizeof(local));
    {
        char *plus = memchr(local, '+', ll);
        if (plus != NULL)
            ll = (size_t)(plus - local);
    }
    digit_runs(local, &ll);
    if (ll + 1 + dl >= sz)
        return -1;
    memcpy(out, local, ll);
    out[ll] = '@';
    for (size_t i = 0; i <= dl; i++)
        out[ll + 1 + i] = (char)tolower((unsigned char)at[1 + i]);
    return (int)(ll + 1 + dl);
}

int grey_normalize_rcpt(const char *rcpt, char *out, size_t sz)
{
    size_t len = rcpt ? strlen(rcpt) : 0;

    if (sz == 0)
        return -1;
    out[0] = '\0';
    if (len >= sz)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)rcpt[i]);
    out[len] = '\0';
    return (int)len;
}

/* ---- addresses ---- */

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* parse_ip: 4 or 16 (v4-mapped -> 4), 0 when not an address. */
static int parse_ip(const char *s, unsigned char *a)
{
    unsigned char b[16];

    if (s == NULL)
        return 0;
    if (inet_pton(AF_INET, s, a) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, b) != 1)
        return 0;
    if (memcmp(b, v4mapped, 12) == 0) {
        memcpy(a, b + 12, 4);
        return 4;
    }
    memcpy(a, b, 16);
    return 16;
}

static void mask_bits(unsigned char *a, unsigned prefix, unsigned bytes)
{
    for (unsigned b = prefix; b < bytes * 8; b++)
        a[b / 8] &= (unsigned char)~(0x80 >> (b % 8));
}

static int prefix_match(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;

    if (memcmp(a, net, whole) != 0)
        return 0;
    return rest == 0 || ((a[whole] ^ net[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

int grey_client_net(const char *addr, unsigned v4prefix, unsigned v6prefix, char *out, size_t sz)
{
    unsigned char a[16];
    char txt[INET6_ADDRSTRLEN];
    int fam = parse_ip(addr, a), l;
    unsigned pfx = fam == 4 ? (v4prefix > 32 ? 32 : v4prefix) : (v6prefix > 128 ? 128 : v6prefix);

    if (sz > 0)
        out[0] = '\0';
    if (fam == 0)
        return -1;
    mask_bits(a, pfx, (unsigned)fam);
    if (fam == 4) {
        /* The common case, by hand: inet_ntop + snprintf were 3% of a
         * greylisting daemon's instructions. */
        char *p = txt;
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = i < 3 ? '.' : '/';
        }
        if (pfx >= 10)
            *p++ = (char)('0' + pfx / 10);
        *p++ = (char)('0' + pfx % 10);
        l = (int)(p - txt);
        if ((size_t)l >= sz) {
            if (sz > 0)
                out[0] = '\0';
            return -1;
        }
        memcpy(out, txt, (size_t)l);
        out[l] = '\0';
        return l;
    }
    if (inet_ntop(AF_INET6, a, txt, sizeof(txt)) == NULL)
        return -1;
    l = snprintf(out, sz, "%s/%u", txt, pfx);
    if (l < 0 || (size_t)l >= sz) {
        if (sz > 0)
            out[0] = '\0';
        return -1;
    }
    return l;
}

/* ---- SHA-256 (FIPS 180-4) ---- */

struct sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
};

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* One round, with the eight working variables renamed instead of moved: the
 * rounds are unrolled eight at a time (SHA_R8), which halves the instructions
 * per block against the textbook loop (greylisting hashes two blocks per
 * triplet; bench/callgrind.sh grey). */
#define SHA_S0(x) (ROR32(x, 2) ^ ROR32(x, 13) ^ ROR32(x, 22))
#define SHA_S1(x) (ROR32(x, 6) ^ ROR32(x, 11) ^ ROR32(x, 25))
#define SHA_G0(x) (ROR32(x, 7) ^ ROR32(x, 18) ^ ((x) >> 3))
#define SHA_G1(x) (ROR32(x, 17) ^ ROR32(x, 19) ^ ((x) >> 10))
#define SHA_R(a, b, c, d, e, f, g, h, i)                                                           \
    do {                                                                                           \
        uint32_t t1_ = h + SHA_S1(e) + ((e & f) ^ (~e & g)) + K256[i] + w[i];                      \
        d += t1_;                                                                                  \
        h = t1_ + SHA_S0(a) + ((a & b) ^ (a & c) ^ (b & c));                                       \
    } while (0)
#define SHA_R8(i)                                                                                  \
    do {                                                                                           \
        SHA_R(a, b, c, d, e, f, g, h, (i));                                                        \
        SHA_R(h, a, b, c, d, e, f, g, (i) + 1);                                                    \
        SHA_R(g, h, a, b, c, d, e, f, (i) + 2);                                                    \
        SHA_R(f, g, h, a, b, c, d, e, (i) + 3);                                                    \
        SHA_R(e, f, g, h, a, b, c, d, (i) + 4);                                                    \
        SHA_R(d, e, f, g, h, a, b, c, (i) + 5);                                                    \
        SHA_R(c, d, e, f, g, h, a, b, (i) + 6);                                                    \
        SHA_R(b, c, d, e, f, g, h, a, (i) + 7);                                                    \
    } while (0)

static void sha256_block(struct sha256 *s, const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h;

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++)
        w[i] = w[i - 16] + SHA_G0(w[i - 15]) + w[i - 7] + SHA_G1(w[i - 2]);
    a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i += 8)
        SHA_R8(i);
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
    s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_init(struct sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof(h0));
    s->len = 0;
    s->n = 0;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
    const unsigned char *p = data;

    s->len += len;
    while (len > 0) {
        size_t k = 64 - s->n < len ? 64 - s->n : len;
        memcpy(s->buf + s->n, p, k);
        s->n += k;
        p += k;
        len -= k;
        if (s->n == 64) {
            sha256_block(s, s->buf);
            s->n = 0;
        }
    }
}

static void sha256_final(struct sha256 *s, unsigned char out[32])
{
    uint64_t bits = s->len * 8;

    /* Padding in place (it was fed a byte at a time: 4% of a greylisting
     * daemon's profile). s->n < 64 always holds here. */
    s->buf[s->n++] = 0x80;
    if (s->n > 56) {
        memset(s->buf + s->n, 0, 64 - s->n);
        sha256_block(s, s->buf);
        s->n = 0;
    }
    memset(s->buf + s->n, 0, 56 - s->n);
    for (int i = 0; i < 8; i++)
        s->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_block(s, s->buf);
    s->n = 0;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

void grey_triplet_key(const char *net, const char *nsender, const char *nrcpt, char *out)
{
    static const char hex[] = "0123456789abcdef";
    struct sha256 s;
    unsigned char d[32];

    sha256_init(&s);
    sha256_update(&s, "v1", 3); /* with its NUL: a version for the key scheme */
    sha256_update(&s, net, strlen(net) + 1);
    sha256_update(&s, nsender, strlen(nsender) + 1);
    sha256_update(&s, nrcpt, strlen(nrcpt));
    sha256_final(&s, d);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[32] = '\0';
}

/* Exposed for the unit test's FIPS vectors only (not in grey.h). */
void grey_sha256_hex(const void *data, size_t len, char out[65]);
void grey_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    struct sha256 s;
    unsigned char d[32];

    sha256_init(&s);
    sha256_update(&s, data, len);
    sha256_final(&s, d);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

int grey_triplet_make(const struct grey_params *p, const char *client_addr, const char *sender,
                      const char *recipient, struct grey_triplet *t)
{
    if (grey_client_net(client_addr, p->ipv4_prefix, p->ipv6_prefix, t->net, sizeof(t->net)) < 0 ||
        grey_normalize_sender(sender, t->sender, sizeof(t->sender)) < 0 ||
        grey_normalize_rcpt(recipient, t->rcpt, sizeof(t->rcpt)) < 0)
        return -1;
    grey_triplet_key(t->net, t->sender, t->rcpt, t->key);
    return 0;
}

/* ---- the state machine ---- */

static void defer(struct grey_step *o, long long wait_ms)
{
    o->verdict = GREY_DEFER;
    o->wait_ms = wait_ms > 0 ? wait_ms : 1;
    o->wait_s = (unsigned)((o->wait_ms + 999) / 1000);
}

void grey_step(const struct grey_state *cur, long long now_ms, const struct grey_params *p,
               struct grey_step *out)
{
    memset(out, 0, sizeof(*out));
    if (cur != NULL && cur->exists && cur->passed && now_ms - cur->last_ms <= p->max_age_ms) {
        out->verdict = GREY_PASS;
        out->next = *cur;
        out->next.last_ms = now_ms;
        out->ttl_ms = p->max_age_ms;
        return;
    }
    if (cur != NULL && cur->exists && !cur->passed && cur->first_ms <= now_ms &&
        now_ms - cur->first_ms <= p->window_ms) {
        long long elapsed = now_ms - cur->first_ms;
        out->next = *cur;
        out->next.last_ms = now_ms;
        if (elapsed >= p->delay_ms) {
            out->verdict = GREY_PASS_NEW;
            out->next.passed = 1;
            out->ttl_ms = p->max_age_ms;
            return;
        }
        defer(out, p->delay_ms - elapsed);
        out->ttl_ms = -1;
        return;
    }
    /* first sight of this cycle */
    out->next = (struct grey_state){1, now_ms, now_ms, 0};
    out->ttl_ms = p->window_ms;
    defer(out, p->delay_ms);
}

/* awl_due: last seen long enough ago (or in the future: another clock). */
static int awl_due(const struct grey_awl *cur, long long now_ms, const struct grey_params *p)
{
    return !cur->exists || now_ms >= cur->last_ms + p->awl_interval_ms || cur->last_ms > now_ms;
}

int grey_awl_check(const struct grey_awl *cur, long long now_ms, const struct grey_params *p,
                   struct grey_awl *next, int *write)
{
    *next = *cur;
    *write = 0;
    if (p->awl_count == 0 || !cur->exists || cur->count < p->awl_count ||
        now_ms - cur->last_ms > p->max_age_ms)
        return 0;
    if (awl_due(cur, now_ms, p)) {
        next->last_ms = now_ms;
        *write = 1;
    }
    return 1;
}

unsigned grey_awl_pass(const struct grey_awl *cur, long long now_ms, const struct grey_params *p,
                       struct grey_awl *next, int *write)
{
    *next = *cur;
    *write = 0;
    if (!cur->exists || now_ms - cur->last_ms > p->max_age_ms)
        next->count = 0; /* unknown, or stale (its TTL would have ended it) */
    if (awl_due(cur, now_ms, p)) {
        next->exists = 1;
        next->count++;
        next->last_ms = now_ms;
        *write = 1;
    }
    return next->count;
}

/* ---- the reply ---- */

size_t grey_format_reply(const char *action, const char *tmpl, unsigned wait_s,
                         const char *recipient, char *out, size_t sz)
{
    char raw[1024], num[16], *d = num + sizeof(num);
    const char *dom = recipient ? strrchr(recipient, '@') : NULL;
    size_t n = 0, numlen;

    dom = dom ? dom + 1 : (recipient ? recipient : "");
    /* every deferred message passes here: no printf */
    do {
        *--d = (char)('0' + wait_s % 10);
        wait_s /= 10;
    } while (wait_s > 0);
    numlen = (size_t)(num + sizeof(num) - d);
#define PUT(s, l)                                                                                  \
    do {                                                                                           \
        size_t l_ = (l);                                                                           \
        if (n + l_ >= sizeof(raw))                                                                 \
            l_ = sizeof(raw) - 1 - n;                                                              \
        memcpy(raw + n, (s), l_);                                                                  \
        n += l_;                                                                                   \
    } while (0)
    PUT(action, strlen(action));
    if (tmpl != NULL && tmpl[0] != '\0') {
        PUT(" ", 1);
        for (const char *t = tmpl; *t; t++) {
            const char *pct = strchr(t, '%');

            if (pct != t) { /* the literal run up to the next % */
                size_t run = pct ? (size_t)(pct - t) : strlen(t);
                PUT(t, run);
                t += run - 1;
            } else if (t[1] == 's') {
                PUT(d, numlen);
                t++;
            } else if (t[1] == 'r') {
                PUT(dom, strlen(dom));
                t++;
            } else if (t[1] == '%') {
                PUT("%", 1);
                t++;
            } else {
                PUT(t, 1);
            }
        }
    }
#undef PUT
    raw[n] = '\0';
    return san_text(out, sz, raw, 500);
}

/* ---- whitelists ---- */

enum wl_kind {
    WL_C_NAME, /* client name or a name below it */
    WL_C_NET,  /* client address in a network */
    WL_C_RE,   /* regex on the client name */
    WL_R_DOM,  /* recipient domain or below (s); exact domain when s2 = "@" */
    WL_R_USER, /* user[+ext]@ any domain */
    WL_R_UD,   /* user[+ext]@domain */
    WL_R_RE    /* regex on the recipient */
};

struct wl_ent {
    enum wl_kind kind;
    char *s, *s2;
    int fam; /* WL_C_NET: 4 or 16 */
    unsigned prefix;
    unsigned char a[16];
    regex_t re;
};

struct grey_wl {
    struct wl_ent *e;
    size_t n, cap;
};

struct grey_wl *grey_wl_new(void)
{
    return calloc(1, sizeof(struct grey_wl));
}

static void ent_free(struct wl_ent *e)
{
    if (e->kind == WL_C_RE || e->kind == WL_R_RE)
        regfree(&e->re);
    free(e->s);
    free(e->s2);
}

void grey_wl_free(struct grey_wl **wlp)
{
    struct grey_wl *wl;

    if (wlp == NULL || (wl = *wlp) == NULL)
        return;
    for (size_t i = 0; i < wl->n; i++)
        ent_free(&wl->e[i]);
    free(wl->e);
    free(wl);
    *wlp = NULL;
}

size_t grey_wl_count(const struct grey_wl *wl)
{
    return wl ? wl->n : 0;
}

static struct wl_ent *wl_push(struct grey_wl *wl)
{
    if (wl->n == wl->cap) {
        size_t nc = wl->cap ? wl->cap * 2 : 32;
        struct wl_ent *ne = realloc(wl->e, nc * sizeof(*ne));
        if (ne == NULL)
            return NULL;
        wl->e = ne;
        wl->cap = nc;
    }
    memset(&wl->e[wl->n], 0, sizeof(wl->e[0]));
    return &wl->e[wl->n++];
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

#define WHY_SZ 160

static void set_why(char *why, const char *s)
{
    snprintf(why, WHY_SZ, "%s", s);
}

/* perl_to_ere: translate the perl regex subset postgrey files use into a
 * POSIX ERE (glibc): \d \D -> [0-9] [^0-9] (glibc would read \d as 'd'),
 * (?:...) -> (...), lazy quantifiers -> greedy (same match or no match, which
 * is all we ask), \A \z \Z -> ^ $; \w \W \s \S \b \B pass (GNU extensions).
 * Backreferences, lookaround and other (?...) are refused. */
static int perl_to_ere(const char *src, size_t len, char *dst, size_t dsz, char *why)
{
    size_t o = 0, i = 0;
    int inb = 0, bfirst = 0;

#define EMIT(str)                                                                                  \
    do {                                                                                           \
        size_t l_ = strlen(str);                                                                   \
        if (o + l_ >= dsz) {                                                                       \
            set_why(why, "regex too long");                                                        \
            return -1;                                                                             \
        }                                                                                          \
        memcpy(dst + o, (str), l_);                                                                \
        o += l_;                                                                                   \
    } while (0)
    while (i < len) {
        char c = src[i], ch[2] = {c, 0};
        if (inb) {
            if (c == '\\' && i + 1 < len) {
                char e = src[i + 1];
                char lit[2] = {e, 0};
                if (e == 'd')
                    EMIT("0-9");
                else if (e == 'w')
                    EMIT("[:alnum:]_");
                else if (e == 's')
                    EMIT("[:space:]");
                else if (isalnum((unsigned char)e) || e == ']' || e == '-' || e == '^' ||
                         e == '\\') {
                    set_why(why, "unsupported escape inside [...]");
                    return -1;
                } else
                    EMIT(lit);
                i += 2;
                bfirst = 0;
                continue;
            }
            if (c == '[' && i + 1 < len && src[i + 1] == ':') {
                const char *end = strstr(src + i, ":]");
                if (end == NULL || (size_t)(end - src) >= len) {
                    set_why(why, "unterminated [: :] class");
                    return -1;
                }
                size_t l = (size_t)(end - (src + i)) + 2;
                if (o + l >= dsz) {
                    set_why(why, "regex too long");
                    return -1;
                }
                memcpy(dst + o, src + i, l);
                o += l;
                i += l;
                bfirst = 0;
                continue;
            }
            if (c == ']' && !bfirst)
                inb = 0;
            if (!(c == '^' && bfirst))
                bfirst = 0;
            EMIT(ch);
            i++;
            continue;
        }
        if (c == '\\') {
            char e = i + 1 < len ? src[i + 1] : '\0';
            char esc[3] = {'\\', e, 0};
            if (e == '\0') {
                set_why(why, "trailing backslash");
                return -1;
            }
            if (e == 'd')
                EMIT("[0-9]");
            else if (e == 'D')
                EMIT("[^0-9]");
            else if (e == 'A')
                EMIT("^");
            else if (e == 'z' || e == 'Z')
                EMIT("$");
            else if (strchr("wWsSbB", e) != NULL || !isalnum((unsigned char)e))
                EMIT(esc);
            else {
                set_why(why, isdigit((unsigned char)e) ? "backreferences are not supported"
                                                       : "unsupported escape");
                return -1;
            }
            i += 2;
            continue;
        }
        if (c == '(' && i + 1 < len && src[i + 1] == '?') {
            if (i + 2 < len && src[i + 2] == ':') {
                EMIT("(");
                i += 3;
                continue;
            }
            set_why(why, "unsupported (?...) group");
            return -1;
        }
        if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < len && src[i + 1] == '?') {
            EMIT(ch); /* lazy -> greedy: the same strings match */
            i += 2;
            continue;
        }
        if (c == '[') {
            inb = 1;
            bfirst = 1;
        }
        EMIT(ch);
        i++;
    }
#undef EMIT
    if (inb) {
        set_why(why, "unterminated [...]");
        return -1;
    }
    dst[o] = '\0';
    return 0;
}

static int add_regex(struct wl_ent *e, enum wl_kind kind, const char *re, size_t len, char *why)
{
    char ere[1024], rerr[128];
    int rc;

    if (perl_to_ere(re, len, ere, sizeof(ere), why) < 0)
        return -1;
    rc = regcomp(&e->re, ere, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &e->re, rerr, sizeof(rerr));
        snprintf(why, WHY_SZ, "bad regex: %s", rerr);
        return -1;
    }
    e->kind = kind;
    return 0;
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* v4_shape: postgrey's IPv4 shapes: count of dotted groups (1..3 digits
 * each) in s[0..n), or 0 when s is not groups of digits and dots. */
static int v4_groups(const char *s, size_t n)
{
    int groups = 0;
    size_t i = 0;

    while (i < n) {
        size_t j = i;
        while (j < n && isdigit((unsigned char)s[j]))
            j++;
        if (j == i || j - i > 3)
            return 0;
        groups++;
        if (j == n)
            break;
        if (s[j] != '.')
            return 0;
        i = j + 1;
        if (i == n)
            return 0;
    }
    return groups;
}

static int client_line(struct wl_ent *e, const char *s, size_t n, char *why)
{
    const char *slash = memchr(s, '/', n);
    char buf[80];
    size_t al = slash ? (size_t)(slash - s) : n;
    unsigned pfx = 0;
    int groups;

    if (n >= 3 && s[0] == '/' && s[n - 1] == '/')
        return add_regex(e, WL_C_RE, s + 1, n - 2, why);
    if (slash != NULL && slash != s) {
        if (!all_digits(slash + 1, n - al - 1) || n - al - 1 > 3) {
            set_why(why, "bad network prefix length");
            return -1;
        }
        pfx = (unsigned)atoi(slash + 1);
    }
    groups = v4_groups(s, al);
    if (groups >= 2 && groups <= 4 && (groups == 4 || slash == NULL)) {
        if (al >= sizeof(buf) - 8) {
            set_why(why, "bad IPv4 address");
            return -1;
        }
        memcpy(buf, s, al);
        buf[al] = '\0';
        if (groups < 4) {
            /* postgrey: a.b.c is a /24, a.b a /16 (its comment; its code says /24) */
            strcat(buf, groups == 3 ? ".0" : ".0.0");
            pfx = groups == 3 ? 24 : 16;
        } else if (slash == NULL) {
            pfx = 32;
        }
        if (inet_pton(AF_INET, buf, e->a) != 1 || pfx > 32) {
            set_why(why, "bad IPv4 address or prefix");
            return -1;
        }
        e->fam = 4;
    } else if (memchr(s, ':', al) != NULL) {
        if (al >= sizeof(buf)) {
            set_why(why, "bad IPv6 address");
            return -1;
        }
        memcpy(buf, s, al);
        buf[al] = '\0';
        if (slash == NULL)
            pfx = 128;
        e->fam = parse_ip(buf, e->a);
        if (e->fam == 0 || (e->fam == 16 && pfx > 128)) {
            set_why(why, "bad IPv6 address or prefix");
            return -1;
        }
        if (e->fam == 4) { /* written v4-mapped */
            if (slash != NULL && (pfx < 96 || pfx > 128)) {
                set_why(why, "bad IPv4-mapped prefix");
                return -1;
            }
            pfx = slash ? pfx - 96 : 32;
        }
    } else {
        if (s[0] == '/' || slash != NULL) {
            set_why(why, "doesn't look like a hostname (a regex is /.../)");
            return -1;
        }
        if (s[0] == '.') { /* ".example.com": postgrey would match nothing; mean the domain */
            s++;
            n--;
        }
        if (n == 0) {
            set_why(why, "doesn't look like a hostname");
            return -1;
        }
        e->kind = WL_C_NAME;
        if ((e->s = lower_dup(s, n)) == NULL) {
            set_why(why, "out of memory");
            return -1;
        }
        return 0;
    }
    e->kind = WL_C_NET;
    e->prefix = pfx;
    mask_bits(e->a, pfx, (unsigned)e->fam);
    return 0;
}

static int rcpt_line(struct wl_ent *e, const char *s, size_t n, char *why)
{
    const char *at = memchr(s, '@', n);

    if (n >= 3 && s[0] == '/' && s[n - 1] == '/')
        return add_regex(e, WL_R_RE, s + 1, n - 2, why);
    if (s[0] == '/') {
        set_why(why, "doesn't look like an address (a regex is /.../)");
        return -1;
    }
    if (at == NULL) {
        e->kind = WL_R_DOM;
        e->s = lower_dup(s, n);
    } else if (at == s) { /* "@domain": that domain exactly (access(5) style) */
        if (n == 1) {
            set_why(why, "doesn't look like an address");
            return -1;
        }
        e->kind = WL_R_DOM;
        e->s = lower_dup(s + 1, n - 1);
        e->s2 = strdup("@");
    } else if (at == s + n - 1) {
        e->kind = WL_R_USER;
        e->s = lower_dup(s, n - 1);
    } else {
        e->kind = WL_R_UD;
        e->s = lower_dup(s, (size_t)(at - s));
        e->s2 = lower_dup(at + 1, n - (size_t)(at - s) - 1);
        if (e->s2 == NULL) {
            free(e->s);
            e->s = NULL;
        }
    }
    if (e->s == NULL || (e->kind == WL_R_DOM && at == s && e->s2 == NULL)) {
        free(e->s);
        free(e->s2);
        e->s = e->s2 = NULL;
        set_why(why, "out of memory");
        return -1;
    }
    return 0;
}

/* parse_text: one file's text, all or nothing. */
static int parse_text(struct grey_wl *wl, const char *name, const char *text, int recipients,
                      char *err, size_t errlen)
{
    size_t start = wl->n, lineno = 0;
    const char *p = text;

    while (*p) {
        const char *eol = strchr(p, '\n'), *end, *hash;
        char why[WHY_SZ] = "";
        struct wl_ent *e;
        size_t n;

        if (eol == NULL)
            eol = p + strlen(p);
        lineno++;
        end = eol;
        hash = memchr(p, '#', (size_t)(end - p));
        if (hash != NULL)
            end = hash;
        while (p < end && isspace((unsigned char)*p))
            p++;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        n = (size_t)(end - p);
        if (n > 0) {
            for (size_t i = 0; i < n; i++)
                if (isspace((unsigned char)p[i]) || p[i] == '\0') {
                    set_why(why, recipients ? "doesn't look like an address"
                                            : "doesn't look like a hostname");
                    break;
                }
            if (why[0] == '\0') {
                if ((e = wl_push(wl)) == NULL)
                    set_why(why, "out of memory");
                else if ((recipients ? rcpt_line(e, p, n, why) : client_line(e, p, n, why)) < 0)
                    wl->n--;
            }
            if (why[0] != '\0') {
                snprintf(err, errlen, "%s:%zu: %s: %.*s", name, lineno, why, (int)(n > 80 ? 80 : n),
                         p);
                while (wl->n > start)
                    ent_free(&wl->e[--wl->n]);
                return -1;
            }
        }
        p = *eol ? eol + 1 : eol;
    }
    return 0;
}

int grey_wl_parse_clients(struct grey_wl *wl, const char *name, const char *text, char *err,
                          size_t errlen)
{
    return parse_text(wl, name, text, 0, err, errlen);
}

int grey_wl_parse_recipients(struct grey_wl *wl, const char *name, const char *text, char *err,
                             size_t errlen)
{
    return parse_text(wl, name, text, 1, err, errlen);
}

static int load_file(struct grey_wl *wl, const char *path, int recipients, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, cap = 0, r;
    int rc;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *nt;
            if (cap > (size_t)64 << 20 || (nt = realloc(text, cap + 65536)) == NULL) {
                snprintf(err, errlen, "%s: too large or out of memory", path);
                free(text);
                fclose(f);
                return -1;
            }
            text = nt;
            cap += 65536;
        }
        r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        free(text);
        fclose(f);
        return -1;
    }
    fclose(f);
    text[len] = '\0';
    if (strlen(text) != len) {
        snprintf(err, errlen, "%s: contains a NUL byte", path);
        free(text);
        return -1;
    }
    rc = parse_text(wl, path, text, recipients, err, errlen);
    free(text);
    return rc;
}

int grey_wl_load_clients(struct grey_wl *wl, const char *path, char *err, size_t errlen)
{
    return load_file(wl, path, 0, err, errlen);
}

int grey_wl_load_recipients(struct grey_wl *wl, const char *path, char *err, size_t errlen)
{
    return load_file(wl, path, 1, err, errlen);
}

/* ends_with_label: name == suf, or name ends with "." suf (case-insensitive). */
static int ends_with_label(const char *name, size_t nl, const char *suf, char sep)
{
    size_t sl = strlen(suf);

    if (nl < sl || strcasecmp(name + nl - sl, suf) != 0)
        return 0;
    return nl == sl || name[nl - sl - 1] == sep;
}

int grey_wl_match_client(const struct grey_wl *wl, const char *addr, const char *name)
{
    unsigned char a[16];
    int fam = parse_ip(addr, a);
    size_t nl = name ? strlen(name) : 0;

    if (wl == NULL)
        return 0;
    for (size_t i = 0; i < wl->n; i++) {
        const struct wl_ent *e = &wl->e[i];
        switch (e->kind) {
        case WL_C_NET:
            if (fam == e->fam && prefix_match(a, e->a, e->prefix))
                return 1;
            break;
        case WL_C_NAME:
            if (name != NULL && ends_with_label(name, nl, e->s, '.'))
                return 1;
            break;
        case WL_C_RE:
            if (name != NULL && regexec(&e->re, name, 0, NULL, 0) == 0)
                return 1;
            break;
        default:
            break;
        }
    }
    return 0;
}

/* local_is: the local part l (len ll) is user or user+something. */
static int local_is(const char *l, size_t ll, const char *user)
{
    size_t ul = strlen(user);

    if (ll < ul || strncasecmp(l, user, ul) != 0)
        return 0;
    return ll == ul || (l[ul] == '+' && ll > ul + 1);
}

int grey_wl_match_recipient(const struct grey_wl *wl, const char *rcpt)
{
    const char *at;
    size_t rl, ll;

    if (wl == NULL || rcpt == NULL)
        return 0;
    rl = strlen(rcpt);
    at = strrchr(rcpt, '@');
    ll = at ? (size_t)(at - rcpt) : 0;
    for (size_t i = 0; i < wl->n; i++) {
        const struct wl_ent *e = &wl->e[i];
        switch (e->kind) {
        case WL_R_DOM:
            if (e->s2 != NULL) { /* "@domain": exact */
                if (at != NULL && strcasecmp(at + 1, e->s) == 0)
                    return 1;
            } else if (ends_with_label(rcpt, rl, e->s, '.') && rl > strlen(e->s)) {
                return 1;
            } else if (at != NULL && strcasecmp(at + 1, e->s) == 0) {
                return 1;
            }
            break;
        case WL_R_USER:
            if (at != NULL && local_is(rcpt, ll, e->s))
                return 1;
            break;
        case WL_R_UD:
            if (at != NULL && local_is(rcpt, ll, e->s) && strcasecmp(at + 1, e->s2) == 0)
                return 1;
            break;
        case WL_R_RE:
            if (regexec(&e->re, rcpt, 0, NULL, 0) == 0)
                return 1;
            break;
        default:
            break;
        }
    }
    return 0;
}
