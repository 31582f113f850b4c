/* rrow.c - the unambiguous text encoding of a report row and of the
 * published-policy snapshot (Redis hash fields and values).
 *
 * An encoding is `key=value` items joined by '&' in a fixed key order, so two
 * equal rows always give the same bytes (they must land on the same hash
 * field to be counted together). Values are percent-encoded: every byte
 * outside [A-Za-z0-9._:@+-] becomes %XX (upper-case hex), so '&', '=' and '%'
 * never appear raw in a value and any byte string (NUL excepted) round-trips.
 *
 * Decoding is strict because the reporter trusts what it decodes: a raw byte
 * outside the safe set, a bad %XX, %00, an empty or key-less item, a value too
 * long for its field or a repeated key makes the whole string malformed (-1).
 * Unknown keys (well-formed) are skipped so a newer writer can add fields.
 *
 * Worst case sizes: every byte escaped triples a value; a row is then about
 * 4.3 KB and a policy 4.2 KB, which is why RROW_ENC_WORST exists beside
 * RROW_ENC_MAX (the latter holds every row built from validated names). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rrow.h"

static const char *const reason_names[] = {
    [RROW_R_NONE] = "",
    [RROW_R_LOCAL_POLICY] = "local_policy",
    [RROW_R_TRUSTED_FORWARDER] = "trusted_forwarder",
    [RROW_R_POLICY_TEST_MODE] = "policy_test_mode",
    [RROW_R_SAMPLED_OUT] = "sampled_out",
    [RROW_R_MAILING_LIST] = "mailing_list",
    [RROW_R_OTHER] = "other",
};
#define NREASON_NAMES (sizeof(reason_names) / sizeof(reason_names[0]))

const char *rrow_reason_name(enum rrow_reason r)
{
    if ((unsigned)r < NREASON_NAMES)
        return reason_names[r];
    return "";
}

int rrow_reason_from_name(const char *name)
{
    if (name == NULL || *name == '\0')
        return -1;
    for (size_t i = 1; i < NREASON_NAMES; i++)
        if (strcmp(name, reason_names[i]) == 0)
            return (int)i;
    return -1;
}

/* ---- encoding ---- */

static int safe_byte(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '@' || c == '+' || c == '-';
}

/* An output cursor: writes stop (and `bad` is set) when the buffer is full. */
struct out {
    char *buf;
    size_t sz, len;
    int bad;
};

static void out_bytes(struct out *o, const char *s, size_t n)
{
    if (o->bad || o->len + n >= o->sz) {
        o->bad = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* out_item: "&key=" + percent-encoded value of a field of size fsz (read up
 * to its NUL, never past the field even if the caller forgot the NUL). */
static void out_item(struct out *o, const char *key, const char *val, size_t fsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strnlen(val, fsz);

    if (o->len > 0)
        out_bytes(o, "&", 1);
    out_bytes(o, key, strlen(key));
    out_bytes(o, "=", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)val[i];
        if (safe_byte(c)) {
            out_bytes(o, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            out_bytes(o, e, 3);
        }
    }
}

static int out_done(struct out *o)
{
    if (o->bad || o->sz == 0)
        return -1;
    o->buf[o->len] = '\0';
    return (int)o->len;
}

int rrow_encode(const struct rrow *r, char *buf, size_t sz)
{
    struct out o = {buf, sz, 0, 0};
    size_t n = r->nreasons < RROW_MAX_REASONS ? r->nreasons : RROW_MAX_REASONS;

    out_item(&o, "ip", r->source_ip, sizeof(r->source_ip));
    out_item(&o, "disp", r->disposition, sizeof(r->disposition));
    out_item(&o, "dspf", r->dmarc_spf, sizeof(r->dmarc_spf));
    out_item(&o, "spfd", r->spf_domain, sizeof(r->spf_domain));
    out_item(&o, "spfs", r->spf_scope, sizeof(r->spf_scope));
    out_item(&o, "spfr", r->spf_result, sizeof(r->spf_result));
    out_item(&o, "envf", r->envelope_from, sizeof(r->envelope_from));
    out_item(&o, "hdrf", r->header_from, sizeof(r->header_from));
    /* Each reason is a pair, type then comment (always present, maybe empty),
     * in the caller's order. */
    for (size_t i = 0; i < n; i++) {
        const char *name = rrow_reason_name(r->reasons[i].type);
        out_item(&o, "rt", name, strlen(name) + 1);
        out_item(&o, "rc", r->reasons[i].comment, sizeof(r->reasons[i].comment));
    }
    return out_done(&o);
}

int rrow_policy_encode(const struct rrow_policy *p, char *buf, size_t sz)
{
    struct out o = {buf, sz, 0, 0};
    char pct[16];

    snprintf(pct, sizeof(pct), "%d", p->pct);
    out_item(&o, "dom", p->domain, sizeof(p->domain));
    out_item(&o, "p", p->p, sizeof(p->p));
    out_item(&o, "sp", p->sp, sizeof(p->sp));
    out_item(&o, "np", p->np, sizeof(p->np));
    out_item(&o, "adkim", p->adkim, sizeof(p->adkim));
    out_item(&o, "aspf", p->aspf, sizeof(p->aspf));
    out_item(&o, "fo", p->fo, sizeof(p->fo));
    out_item(&o, "t", p->testing, sizeof(p->testing));
    out_item(&o, "psd", p->psd, sizeof(p->psd));
    out_item(&o, "disc", p->discovery_method, sizeof(p->discovery_method));
    out_item(&o, "pct", pct, sizeof(pct));
    out_item(&o, "rua", p->rua, sizeof(p->rua));
    return out_done(&o);
}

/* ---- decoding ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* unescape: the value v[0..n) into dst (size dsz, NUL-terminated). -1 when
 * malformed or too long for dst. */
static int unescape(const char *v, size_t n, char *dst, size_t dsz)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '%') {
            int h, l;
            if (n - i < 3 || (h = hexval(v[i + 1])) < 0 || (l = hexval(v[i + 2])) < 0)
                return -1;
            c = (unsigned char)(h << 4 | l);
            if (c == 0)
                return -1;
            i += 2;
        } else if (!safe_byte(c)) {
            return -1;
        }
        if (o + 1 >= dsz)
            return -1;
        dst[o++] = (char)c;
    }
    if (dsz == 0)
        return -1;
    dst[o] = '\0';
    return 0;
}

static int key_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* A known key: where its value goes. */
struct field {
    const char *key;
    char *dst;
    size_t dsz;
};

/* next_item: split s[*pos..len) at the next '&' into key and raw value.
 * 1 when an item was read, 0 at the end, -1 when malformed. */
static int next_item(const char *s, size_t len, size_t *pos, const char **k, size_t *klen,
                     const char **v, size_t *vlen)
{
    size_t i = *pos, start = i, eq = 0;
    int have_eq = 0;

    if (i >= len)
        return 0;
    for (; i < len && s[i] != '&'; i++)
        if (s[i] == '=' && !have_eq) {
            have_eq = 1;
            eq = i;
        }
    if (!have_eq || eq == start)
        return -1;
    for (size_t j = start; j < eq; j++)
        if (!key_byte((unsigned char)s[j]))
            return -1;
    *k = s + start;
    *klen = eq - start;
    *v = s + eq + 1;
    *vlen = i - eq - 1;
    if (i < len) { /* at '&': an item must follow */
        i++;
        if (i >= len)
            return -1;
    }
    *pos = i;
    return 1;
}

/* check_value: a value of an unknown key must still be well-formed. */
static int check_value(const char *v, size_t n)
{
    char tmp[4];

    for (size_t i = 0; i < n; i++) {
        if (v[i] == '%') {
            if (unescape(v + i, n - i < 3 ? n - i : 3, tmp, sizeof(tmp)) < 0)
                return -1;
            i += 2;
        } else if (!safe_byte((unsigned char)v[i])) {
            return -1;
        }
    }
    return 0;
}

static int keyeq(const char *k, size_t klen, const char *want)
{
    return strlen(want) == klen && memcmp(k, want, klen) == 0;
}

/* decode_fields: the common loop. The reasons hook handles "rt"/"rc" for
 * rows (NULL for policies). */
static int decode_fields(const char *s, size_t len, struct field *f, size_t nf, struct rrow *row)
{
    size_t pos = 0;
    unsigned long seen = 0;
    const char *k, *v;
    size_t klen, vlen;
    int rv, items = 0, last_rt = 0;

    if (s == NULL)
        return -1;
    while ((rv = next_item(s, len, &pos, &k, &klen, &v, &vlen)) == 1) {
        size_t i;
        items++;
        if (row != NULL && keyeq(k, klen, "rt")) {
            char name[32];
            int t;
            if (row->nreasons >= RROW_MAX_REASONS || unescape(v, vlen, name, sizeof(name)) < 0 ||
                (t = rrow_reason_from_name(name)) < 0)
                return -1;
            memset(&row->reasons[row->nreasons], 0, sizeof(row->reasons[0]));
            row->reasons[row->nreasons++].type = (enum rrow_reason)t;
            last_rt = 1;
            continue;
        }
        if (row != NULL && keyeq(k, klen, "rc")) {
            /* A comment belongs to the reason just before it, once. */
            if (!last_rt)
                return -1;
            last_rt = 0;
            if (unescape(v, vlen, row->reasons[row->nreasons - 1].comment,
                         sizeof(row->reasons[0].comment)) < 0)
                return -1;
            continue;
        }
        last_rt = 0;
        for (i = 0; i < nf; i++)
            if (keyeq(k, klen, f[i].key))
                break;
        if (i == nf) {
            if (check_value(v, vlen) < 0)
                return -1;
            continue; /* unknown key: a newer writer's field */
        }
        if (seen & (1UL << i))
            return -1;
        seen |= 1UL << i;
        if (unescape(v, vlen, f[i].dst, f[i].dsz) < 0)
            return -1;
    }
    if (rv < 0 || items == 0)
        return -1;
    return 0;
}

int rrow_decode(const char *s, size_t len, struct rrow *out)
{
    struct field f[] = {
        {"ip", out->source_ip, sizeof(out->source_ip)},
        {"disp", out->disposition, sizeof(out->disposition)},
        {"dspf", out->dmarc_spf, sizeof(out->dmarc_spf)},
        {"spfd", out->spf_domain, sizeof(out->spf_domain)},
        {"spfs", out->spf_scope, sizeof(out->spf_scope)},
        {"spfr", out->spf_result, sizeof(out->spf_result)},
        {"envf", out->envelope_from, sizeof(out->envelope_from)},
        {"hdrf", out->header_from, sizeof(out->header_from)},
    };

    memset(out, 0, sizeof(*out));
    return decode_fields(s, len, f, sizeof(f) / sizeof(f[0]), out);
}

int rrow_policy_decode(const char *s, size_t len, struct rrow_policy *out)
{
    char pct[16] = "";
    char *end;
    long v;
    struct field f[] = {
        {"dom", out->domain, sizeof(out->domain)},
        {"p", out->p, sizeof(out->p)},
        {"sp", out->sp, sizeof(out->sp)},
        {"np", out->np, sizeof(out->np)},
        {"adkim", out->adkim, sizeof(out->adkim)},
        {"aspf", out->aspf, sizeof(out->aspf)},
        {"fo", out->fo, sizeof(out->fo)},
        {"t", out->testing, sizeof(out->testing)},
        {"psd", out->psd, sizeof(out->psd)},
        {"disc", out->discovery_method, sizeof(out->discovery_method)},
        {"pct", pct, sizeof(pct)},
        {"rua", out->rua, sizeof(out->rua)},
    };

    memset(out, 0, sizeof(*out));
    if (decode_fields(s, len, f, sizeof(f) / sizeof(f[0]), NULL) < 0)
        return -1;
    if (pct[0] == '\0') /* absent (an older writer): RFC 7489's default */
        out->pct = 100;
    else {
        /* Strictly a decimal int, as rrow_policy_encode writes it. */
        const char *d = pct[0] == '-' ? pct + 1 : pct;
        if (*d < '0' || *d > '9')
            return -1;
        v = strtol(pct, &end, 10);
        if (*end != '\0' || v < -2147483647L - 1 || v > 2147483647L)
            return -1;
        out->pct = (int)v;
    }
    return 0;
}
