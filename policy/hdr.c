/* hdr.c - formatting the Received-SPF and Authentication-Results header
 * lines we PREPEND (see hdr.h; docs/headers.md explains every choice).
 *
 * Every remote value goes through san_text() (no control characters, valid
 * UTF-8 only) and then through the quoting its place needs:
 *  - Received-SPF values (RFC 7208 §9.1: dot-atom / quoted-string): bare
 *    only when a plain dot-atom without '='; else a quoted-string in which
 *    '"' and '\' are escaped as RFC 5322 requires and ';', '=', '(' and ')'
 *    are escaped too (a quoted-pair of them means the same character, and
 *    OpenDMARC's Received-SPF reader treats them as separators even inside
 *    quotes);
 *  - the Received-SPF comment: '(' ')' '\' from remote text become '[' ']'
 *    '?', so the comment is balanced for every reader, escaping-aware or not;
 *  - Authentication-Results values (RFC 8601 value: RFC 2045 token /
 *    quoted-string).
 * Each field has an output budget; the budgets add up to at most HDR_MAX, so
 * a hostile 2000-byte HELO cuts its own field ("..." marks the cut) and the
 * line stays whole and well-formed. */
#include "hdr.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "san.h"

/* Output budgets (bytes, quotes included). Received-SPF worst case:
 * 14 "Received-SPF: " + 9 result + 2 " (" + comment 275 + 1 ")"
 * + 10+66 receiver + 12+48 client-ip + 16+260 envelope-from + 7+100 helo
 * + 19 identity + 10+100 problem = 949 <= HDR_MAX. */
#define B_RECEIVER 66
#define B_IP 48
#define B_EFROM 260 /* an RFC 5321 path is at most 256 bytes */
#define B_HELO 100
#define B_PROBLEM 100
#define B_C_RECEIVER 64 /* inside the comment */
#define B_C_IP 46
#define B_C_WHO 100
/* Authentication-Results: 24 + 128 authserv-id + 6+9 result + 8+200 reason
 * + 15+256 property = 646. */
#define B_AUTHSERV 128
#define B_REASON 200
#define B_PVALUE 256

#define SCRATCH 1024 /* larger than any budget: the budget makes the cut */

/* The line under construction: appends past sz set over and write nothing. */
struct sb {
    char *buf;
    size_t sz, len;
    int over;
};

static void sb_putn(struct sb *b, const char *s, size_t n)
{
    if (b->over || b->len + n >= b->sz) {
        b->over = 1;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* seqlen: length of the unit at s in sanitised text (valid UTF-8 only). */
static size_t seqlen(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c < 0xe0)
        return 2;
    if (c < 0xf0)
        return 3;
    return 4;
}

/* A set of ASCII characters, for per-byte membership tests without strchr
 * (headers are built for every message: strchr per byte showed in profiles). */
struct cset {
    uint64_t w[2];
};

static struct cset cset_of(const char *chars)
{
    struct cset c = {{0, 0}};

    for (; *chars; chars++)
        c.w[(unsigned char)*chars >> 6] |= (uint64_t)1 << ((unsigned char)*chars & 63);
    return c;
}

static int cset_has(const struct cset *c, unsigned char ch)
{
    return ch < 128 && ((c->w[ch >> 6] >> (ch & 63)) & 1);
}

/* put_quoted: s (sanitised) as a quoted-string of at most budget bytes,
 * escaping the characters in esc; cut with "..." inside the quotes. */
static void put_quoted(struct sb *b, const char *s, size_t budget, const char *esc_chars)
{
    size_t avail = budget - 2, total = 0, used = 0, n = strlen(s);
    char out[2 * SCRATCH + 2];
    struct cset esc = cset_of(esc_chars);

    for (size_t i = 0; i < n; i += seqlen((unsigned char)s[i]))
        total += cset_has(&esc, (unsigned char)s[i]) ? 2 : seqlen((unsigned char)s[i]);
    out[used++] = '"';
    for (size_t i = 0; i < n;) {
        size_t u = seqlen((unsigned char)s[i]);
        int e = cset_has(&esc, (unsigned char)s[i]);
        size_t w = e ? 2 : u;
        if (total > avail && used - 1 + w > avail - 3)
            break;
        if (e)
            out[used++] = '\\';
        if (u == 1) {
            out[used++] = s[i++];
        } else {
            memcpy(out + used, s + i, u);
            used += u;
            i += u;
        }
    }
    if (total > avail) {
        memcpy(out + used, "...", 3);
        used += 3;
    }
    out[used++] = '"';
    sb_putn(b, out, used);
}

/* RFC 5322 atext, less '=' (a separator to OpenDMARC's reader). */
static int atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/?^_`{|}~", c));
}

static int dot_atom(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '.' && !atext((unsigned char)s[i]))
            return 0;
    return 1;
}

/* put_spf_value: a Received-SPF key-value value (dot-atom / quoted-string). */
static void put_spf_value(struct sb *b, const char *raw, size_t budget)
{
    char s[SCRATCH];
    size_t n = san_text(s, sizeof s, raw, sizeof s - 1);

    if (n <= budget && dot_atom(s))
        sb_putn(b, s, n);
    else
        put_quoted(b, s, budget, "\"\\;=()");
}

/* RFC 2045 token: printable ASCII but tspecials. */
static int token(const char *s)
{
    if (*s == '\0')
        return 0;
    static const char tspecials[] = "()<>@,;:\\\"/[]?=";
    struct cset ts = cset_of(tspecials);

    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
            cset_has(&ts, (unsigned char)*s))
            return 0;
    return 1;
}

/* put_ar_value: an RFC 8601 value (token / quoted-string). */
static void put_ar_value(struct sb *b, const char *raw, size_t budget)
{
    char s[SCRATCH];
    size_t n = san_text(s, sizeof s, raw, sizeof s - 1);

    if (n <= budget && token(s))
        sb_putn(b, s, n);
    else
        put_quoted(b, s, budget, "\"\\");
}

/* put_comment_text: remote text inside the Received-SPF comment. */
static void put_comment_text(struct sb *b, const char *raw, size_t budget)
{
    char s[SCRATCH];
    size_t n = san_text(s, sizeof s, raw, budget);

    for (size_t i = 0; i < n; i++)
        if (s[i] == '(')
            s[i] = '[';
        else if (s[i] == ')')
            s[i] = ']';
        else if (s[i] == '\\')
            s[i] = '?';
    sb_putn(b, s, n);
}

/* envelope_from: the MAIL FROM identity. For the null sender RFC 7208 §2.4
 * defines it as postmaster@<HELO>; with no HELO either it stays empty. */
static const char *envelope_from(const struct hdr_spf *h, char *tmp, size_t tmplen)
{
    if (*nz(h->envelope_from))
        return h->envelope_from;
    if (*nz(h->helo) == '\0')
        return "";
    snprintf(tmp, tmplen, "postmaster@%.*s", (int)(tmplen - 12), h->helo);
    return tmp;
}

static int finish(struct sb *b)
{
    if (b->over) {
        if (b->sz)
            b->buf[0] = '\0';
        return -1;
    }
    return (int)b->len;
}

int hdr_received_spf(char *buf, size_t sz, const struct hdr_spf *h)
{
    struct sb b = {buf, sz, 0, sz == 0};
    char tmp[SCRATCH];
    const char *ef = envelope_from(h, tmp, sizeof tmp);
    const char *who, *dom = nz(h->domain);
    int err = h->result == SPF_RES_TEMPERROR || h->result == SPF_RES_PERMERROR;

    /* Whose policy the result is about, for the human-readable comment. */
    if (h->identity_helo)
        who = *dom ? dom : nz(h->helo);
    else
        who = *ef ? ef : dom;

    if (sz)
        buf[0] = '\0';
    sb_puts(&b, "Received-SPF: ");
    sb_puts(&b, spf_res_name(h->result));
    sb_puts(&b, " (");
    put_comment_text(&b, nz(h->receiver), B_C_RECEIVER);
    sb_puts(&b, ": ");
    switch (h->result) {
    case SPF_RES_PASS:
    case SPF_RES_FAIL:
    case SPF_RES_SOFTFAIL:
        sb_puts(&b, h->result == SPF_RES_SOFTFAIL ? "domain of transitioning " : "domain of ");
        put_comment_text(&b, who, B_C_WHO);
        sb_puts(&b, h->result == SPF_RES_PASS ? " designates " : " does not designate ");
        put_comment_text(&b, nz(h->client_ip), B_C_IP);
        sb_puts(&b, " as permitted sender");
        break;
    case SPF_RES_NONE:
    case SPF_RES_NEUTRAL:
        put_comment_text(&b, nz(h->client_ip), B_C_IP);
        sb_puts(&b, " is neither permitted nor denied by domain of ");
        put_comment_text(&b, who, B_C_WHO);
        break;
    default:
        sb_puts(&b, "error in processing during lookup of ");
        put_comment_text(&b, *dom ? dom : who, B_C_WHO);
        break;
    }
    sb_puts(&b, ") receiver=");
    put_spf_value(&b, nz(h->receiver), B_RECEIVER);
    sb_puts(&b, "; client-ip=");
    put_spf_value(&b, nz(h->client_ip), B_IP);
    sb_puts(&b, "; envelope-from=");
    put_spf_value(&b, ef, B_EFROM);
    sb_puts(&b, "; helo=");
    put_spf_value(&b, nz(h->helo), B_HELO);
    sb_puts(&b, h->identity_helo ? "; identity=helo" : "; identity=mailfrom");
    if (err && *nz(h->problem)) {
        sb_puts(&b, "; problem=");
        put_spf_value(&b, h->problem, B_PROBLEM);
    }
    return finish(&b);
}

int hdr_auth_results(char *buf, size_t sz, const struct hdr_spf *h)
{
    struct sb b = {buf, sz, 0, sz == 0};
    const char *id = *nz(h->authserv_id) ? h->authserv_id : nz(h->receiver);
    const char *ef = nz(h->envelope_from), *at;
    int err = h->result == SPF_RES_TEMPERROR || h->result == SPF_RES_PERMERROR;

    if (sz)
        buf[0] = '\0';
    sb_puts(&b, "Authentication-Results: ");
    put_ar_value(&b, *id ? id : "localhost", B_AUTHSERV);
    sb_puts(&b, "; spf=");
    sb_puts(&b, spf_res_name(h->result));
    if (err && *nz(h->problem)) {
        sb_puts(&b, " reason=");
        put_ar_value(&b, h->problem, B_REASON);
    }
    if (h->identity_helo) {
        sb_puts(&b, " smtp.helo=");
        put_ar_value(&b, *nz(h->helo) ? h->helo : nz(h->domain), B_PVALUE);
    } else {
        /* The domain only (RFC 8601 Appendix B form): the SPF result is about
         * the domain, and OpenDMARC 1.4 matches this property against the
         * envelope domain as a whole (docs/headers.md). */
        const char *d = nz(h->domain);
        if (*d == '\0')
            d = (at = strrchr(ef, '@')) != NULL ? at + 1 : ef;
        if (*d == '\0')
            d = nz(h->helo);
        sb_puts(&b, " smtp.mailfrom=");
        put_ar_value(&b, d, B_PVALUE);
    }
    return finish(&b);
}

/* Envelope-DMARC header budgets: 18 name + 12 result + comment 120 + 8+256
 * domain + 8+256 record + 8+12 policy + 5+3 tag + 5+10 spf + 13+11 disposition
 * + 8+120 reasons = 873 <= HDR_MAX. */
#define B_D_DOMAIN 256
#define B_D_WORD 12
#define B_D_REASONS 120

static void put_word(struct sb *b, const char *key, const char *raw, size_t budget)
{
    if (*nz(raw) == '\0')
        return;
    if (b->len > 0 && b->buf[b->len - 1] != ' ')
        sb_puts(b, "; ");
    sb_puts(b, key);
    sb_puts(b, "=");
    put_ar_value(b, raw, budget);
}

int hdr_envelope_dmarc(char *buf, size_t sz, const struct hdr_dmarc *d)
{
    struct sb b = {buf, sz, 0, sz == 0};

    if (sz)
        buf[0] = '\0';
    sb_puts(&b, HDR_ENVELOPE_DMARC ": ");
    put_ar_value(&b, *nz(d->result) ? d->result : "none", B_D_WORD);
    sb_puts(&b, " (");
    put_comment_text(&b, *nz(d->receiver) ? d->receiver : "localhost", B_C_RECEIVER);
    sb_puts(&b, ": envelope DMARC, DKIM not evaluated) ");
    put_word(&b, "domain", d->policy_domain, B_D_DOMAIN);
    put_word(&b, "record", d->record_domain, B_D_DOMAIN);
    put_word(&b, "policy", d->policy, B_D_WORD);
    put_word(&b, "tag", d->tag, B_D_WORD);
    put_word(&b, "spf", d->spf, B_D_WORD);
    put_word(&b, "disposition", d->disposition, B_D_WORD);
    put_word(&b, "reason", d->reasons, B_D_REASONS);
    return finish(&b);
}

int hdr_reject_text(char *buf, size_t sz, const char *policy_domain, const char *policy,
                    const char *spf, const char *client_ip)
{
    char dom[SCRATCH], ip[64], pol[16], res[16];
    int n;

    /* The text is free-form (no quoting grammar), so sanitising is enough;
     * every argument is sanitised and bounded (the policy and SPF words too:
     * the header promises it, whoever calls): 87 fixed + 253 + 10 + 9 + 45 =
     * 404 bytes at most, well within an SMTP reply line. */
    san_text(dom, sizeof dom, nz(policy_domain), 253);
    san_text(ip, sizeof ip, nz(client_ip), 45);
    san_text(pol, sizeof pol, *nz(policy) ? policy : "reject", 10);
    san_text(res, sizeof res, *nz(spf) ? spf : "fail", 9);
    n = snprintf(buf, sz,
                 "envelope DMARC: %s publishes policy %s and SPF %s for %s (MAIL FROM domain; DKIM "
                 "not evaluated)",
                 dom, pol, res, ip);
    if (n < 0 || (size_t)n >= sz || n > HDR_REJECT_TEXT_MAX) {
        if (sz)
            buf[0] = '\0';
        return -1;
    }
    return n;
}
