/* fuzz_disc.c - libFuzzer target for DMARC policy discovery
 * (policy/dmarc_disc.c): the RFC 9989 tree walk and the RFC 7489 PSL lookup
 * over a zone the input invents as the questions come.
 *
 * Input (lines):
 *   line 1: byte 0 = flags (bit 0: PSL method, bit 1: RFC 7489 mode,
 *           bit 2: PSL without an org-domain function), then the policy domain
 *   line k+1: the answer to the k-th question: 'O' + TXT records separated
 *           by '|' (NUL bytes kept), 'D' NODATA, 'T' tempfail, anything else
 *           or no line NXDOMAIN.
 * Checked: at most DMARC_DISC_MAX_Q+1 questions, each "_dmarc.<name>" of TXT
 * type and recorded in res->q; the outcome is consistent (FOUND has a record
 * with a policy whose domain is the policy domain or one of its parents;
 * TEMPERROR names the failed question). */
#include <stdint.h>
#include <string.h>

#include "dmarc_disc.h"
#include "fuzz_util.h"

/* A stand-in Public Suffix List: the org domain is the last two labels, or
 * the last three under a "co" second-level suffix; -1 for a public suffix. */
static const char *prev_dot(const char *start, const char *p)
{
    while (p > start && p[-1] != '.')
        p--;
    return p; /* the first byte of the label that ends before the old p */
}

static int org_fn(void *ctx, const char *domain, char *out, size_t outlen)
{
    const char *end = domain + strlen(domain);
    const char *tld = prev_dot(domain, end), *sld, *org;
    (void)ctx;
    if (tld == domain)
        return -1; /* one label */
    sld = prev_dot(domain, tld - 1);
    org = sld;
    if ((size_t)(tld - 1 - sld) == 2 && strncmp(sld, "co", 2) == 0) {
        if (sld == domain)
            return -1; /* "co.<tld>" is a public suffix */
        org = prev_dot(domain, sld - 1);
    }
    if ((size_t)(end - org) >= outlen)
        return -1;
    memcpy(out, org, (size_t)(end - org) + 1);
    return 0;
}

/* is_suffix_domain: 1 when d equals s or ends with "." s. */
static int is_suffix_domain(const char *d, const char *s)
{
    size_t dl = strlen(d), sl = strlen(s);
    if (dl == sl)
        return strcmp(d, s) == 0;
    return dl > sl && d[dl - sl - 1] == '.' && strcmp(d + dl - sl, s) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dmarc_disc d; /* a few KiB: keep it off the stack */
    struct fz f = {data, size};
    char domain[512];
    const char *name;
    uint16_t type;
    unsigned asked = 0;
    uint8_t flags = fz_byte(&f);

    fz_str(&f, '\n', domain, sizeof(domain));
    dmarc_disc_start(&d, domain, (flags & 1) ? DMARC_DISC_PSL : DMARC_DISC_TREEWALK,
                     (flags & 2) ? DMARC_MODE_RFC7489 : DMARC_MODE_RFC9989,
                     (flags & 4) ? NULL : org_fn, NULL);
    while (dmarc_disc_next(&d, &name, &type)) {
        const char *txt[16];
        size_t len[16], n = 0, l;
        const uint8_t *line;
        enum dmarc_disc_answer ans = DMARC_ANS_NXDOMAIN;

        FZ_CHECK(++asked <= DMARC_DISC_MAX_Q + 1);
        FZ_CHECK(type == DMARC_DISC_T_TXT);
        FZ_CHECK(strncmp(name, "_dmarc.", 7) == 0 && strlen(name) < DMARC_DOMAIN_MAX + 8);
        FZ_CHECK(dmarc_disc_result(&d)->status == DMARC_DISC_PENDING);
        line = fz_field(&f, '\n', &l);
        if (l > 0 && line[0] == 'O') {
            struct fz rf = {line + 1, l - 1};
            ans = DMARC_ANS_OK;
            do {
                size_t rl;
                const uint8_t *r = fz_field(&rf, '|', &rl);
                txt[n] = (const char *)r;
                len[n++] = rl;
            } while (rf.n > 0 && n < 16);
        } else if (l > 0 && line[0] == 'D') {
            ans = DMARC_ANS_NODATA;
        } else if (l > 0 && line[0] == 'T') {
            ans = DMARC_ANS_TEMPFAIL;
        }
        dmarc_disc_feed(&d, ans, txt, len, n);
    }
    /* feeding after the end is ignored */
    dmarc_disc_feed(&d, DMARC_ANS_TEMPFAIL, NULL, NULL, 0);

    const struct dmarc_disc_result *r = dmarc_disc_result(&d);
    FZ_CHECK(r->status == DMARC_DISC_FOUND || r->status == DMARC_DISC_NONE ||
             r->status == DMARC_DISC_TEMPERROR);
    FZ_CHECK(r->nq == asked);
    FZ_CHECK(memchr(r->note, '\0', sizeof(r->note)) != NULL);
    FZ_CHECK(dmarc_disc_status_name(r->status)[0] != '\0');
    FZ_CHECK(dmarc_disc_method_name(r->method)[0] != '\0');
    for (unsigned i = 0; i < r->nq; i++)
        FZ_CHECK(strncmp(r->q[i], "_dmarc.", 7) == 0);
    if (r->status == DMARC_DISC_FOUND) {
        FZ_CHECK(r->rec.p != DMARC_P_UNSET);
        FZ_CHECK(r->record_domain[0] != '\0');
        FZ_CHECK(is_suffix_domain(r->policy_domain, r->record_domain));
        FZ_CHECK(r->at_policy_domain == (strcmp(r->policy_domain, r->record_domain) == 0));
        if (r->org_domain[0] != '\0')
            FZ_CHECK(is_suffix_domain(r->policy_domain, r->org_domain));
    } else if (r->status == DMARC_DISC_TEMPERROR) {
        FZ_CHECK(strncmp(r->tempfail_name, "_dmarc.", 7) == 0);
    }
    return 0;
}
