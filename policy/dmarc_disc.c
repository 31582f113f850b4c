/* dmarc_disc.c - DMARC policy discovery: the RFC 9989 DNS tree walk and the
 * RFC 7489 PSL lookup as a pure state machine (see dmarc_disc.h). */
#include "dmarc_disc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Longest policy domain we accept: "_dmarc." (7) + name must stay a legal
 * 253-character DNS name. */
#define PD_NAME_MAX (253 - 7)

static void set_note(struct dmarc_disc_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_note(struct dmarc_disc_result *r, const char *fmt, ...)
{
    va_list ap;

    /* Keep the first note: it is the one that explains the outcome. */
    if (r->note[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof(r->note), fmt, ap);
    va_end(ap);
}

/* normalise: lower-case copy without trailing dot; 0 when name is a usable
 * domain (LDH + '_' labels of 1..63 octets), -1 otherwise. Sets *nlabels. */
static int normalise(const char *name, char *out, size_t outlen, int *nlabels)
{
    size_t len = strlen(name), lab = 0;
    int n = 1;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > PD_NAME_MAX || len >= outlen)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c == '.') {
            if (lab == 0)
                return -1;
            lab = 0;
            n++;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++lab > 63)
                return -1;
        } else {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    if (lab == 0)
        return -1;
    out[len] = '\0';
    *nlabels = n;
    return 0;
}

int dmarc_disc_normalise(const char *name, char *out, size_t outlen)
{
    int nlabels;

    return name == NULL ? -1 : normalise(name, out, outlen, &nlabels);
}

/* suffix: the last k labels of name (k >= 1, k <= labels of name). */
static const char *suffix(const char *name, int nlabels, int k)
{
    const char *p = name;

    for (int skip = nlabels - k; skip > 0; skip--)
        p = strchr(p, '.') + 1;
    return p;
}

static int count_labels(const char *name)
{
    int n = 1;

    for (; *name; name++)
        n += *name == '.';
    return n;
}

/* psd_scan: the psd= tag of a record the parser rejected. §4.10 step 2 looks
 * only at v= and psd=, so an otherwise unusable record still steers the walk. */
static enum dmarc_psd psd_scan(const char *txt, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t s = i, e, eq;

        while (i < len && txt[i] != ';')
            i++;
        e = i++;
        while (s < e && (txt[s] == ' ' || txt[s] == '\t'))
            s++;
        for (eq = s; eq < e && txt[eq] != '='; eq++)
            ;
        if (eq == e)
            continue;
        size_t te = eq;
        while (te > s && (txt[te - 1] == ' ' || txt[te - 1] == '\t'))
            te--;
        if (te - s != 3 || strncasecmp(txt + s, "psd", 3) != 0)
            continue;
        size_t v = eq + 1, ve = e;
        while (v < ve && (txt[v] == ' ' || txt[v] == '\t'))
            v++;
        while (ve > v && (txt[ve - 1] == ' ' || txt[ve - 1] == '\t'))
            ve--;
        if (ve - v == 1 && (txt[v] == 'y' || txt[v] == 'Y'))
            return DMARC_PSD_Y;
        if (ve - v == 1 && (txt[v] == 'n' || txt[v] == 'N'))
            return DMARC_PSD_N;
        return DMARC_PSD_U;
    }
    return DMARC_PSD_U;
}

/* What one answer holds: nothing, or one DMARC record (usable or not). */
struct found {
    int dmarc;  /* DMARC records seen (v=DMARC1 first) */
    int usable; /* the single one is valid */
    enum dmarc_psd psd;
    struct dmarc_record rec;
};

static void classify(struct dmarc_disc *d, const char *const *txt, const size_t *len, size_t n,
                     struct found *f)
{
    char err[128] = "";
    enum dmarc_parse pr;
    size_t one = 0;

    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++)
        if (dmarc_record_is_dmarc(txt[i], len[i]) && f->dmarc++ == 0)
            one = i;
    if (f->dmarc == 0)
        return;
    if (f->dmarc > 1) {
        /* §4.10 step 2: all discarded; no policy at this name, walk on. */
        set_note(&d->res, "several DMARC records at _dmarc.%s: ignored", d->target);
        return;
    }
    pr = dmarc_select(txt, len, n, d->res.mode, &f->rec, err, sizeof(err));
    if (pr == DMARC_PARSE_OK && f->rec.p != DMARC_P_UNSET) {
        f->usable = 1;
        f->psd = f->rec.psd;
        return;
    }
    /* Unusable (no valid p and no valid rua, ...): no policy here, but its
     * psd= tag, if any, still steers the walk. */
    f->psd = psd_scan(txt[one], len[one]);
    set_note(&d->res, "unusable DMARC record at _dmarc.%s", d->target);
}

static void finish_found(struct dmarc_disc *d, const struct dmarc_disc_cand *c, int psd_policy)
{
    struct dmarc_disc_result *r = &d->res;

    r->status = DMARC_DISC_FOUND;
    r->rec = c->rec;
    snprintf(r->record_domain, sizeof(r->record_domain), "%s", c->domain);
    r->at_policy_domain = strcmp(c->domain, r->policy_domain) == 0;
    r->psd_policy = psd_policy;
    r->note[0] = '\0'; /* a policy was found: earlier skips are not the story */
}

static void finish_none(struct dmarc_disc *d)
{
    d->res.status = DMARC_DISC_NONE;
    set_note(&d->res, "%s", "no DMARC record");
}

/* Tree walk over: decide the org domain and the record from what was kept. */
static void walk_finish(struct dmarc_disc *d)
{
    struct dmarc_disc_result *r = &d->res;
    const struct dmarc_disc_cand *last = &d->last, *prev = &d->prev;

    if (!last->have) {
        /* §4.10.2: nothing determined it, so the start is the org domain. */
        snprintf(r->org_domain, sizeof(r->org_domain), "%s", r->policy_domain);
        finish_none(d);
        return;
    }
    if (last->psd == DMARC_PSD_Y) {
        /* The org domain is the name one label below the PSD, on our path. */
        const char *org = suffix(r->policy_domain, d->nlabels, count_labels(last->domain) + 1);

        snprintf(r->org_domain, sizeof(r->org_domain), "%s", org);
        if (prev->have && prev->usable && strcmp(prev->domain, org) == 0)
            finish_found(d, prev, 0);
        else if (last->usable)
            finish_found(d, last, 1);
        else
            finish_none(d);
        return;
    }
    /* psd=n: that name; no psd: the valid record with the fewest labels. */
    snprintf(r->org_domain, sizeof(r->org_domain), "%s", last->domain);
    if (last->usable)
        finish_found(d, last, 0);
    else
        finish_none(d);
}

static void set_question(struct dmarc_disc *d, const char *target)
{
    snprintf(d->target, sizeof(d->target), "%s", target);
    snprintf(d->cur, sizeof(d->cur), "_dmarc.%s", target);
}

/* Tree walk: target of question number step (0 = the policy domain). */
static const char *walk_target(const struct dmarc_disc *d, int step)
{
    int first = d->nlabels <= 8 ? d->nlabels - 1 : 7; /* labels of the first walk target */

    if (step == 0)
        return d->res.policy_domain;
    return suffix(d->res.policy_domain, d->nlabels, first - (step - 1));
}

void dmarc_disc_start(struct dmarc_disc *d, const char *policy_domain,
                      enum dmarc_disc_method method, enum dmarc_mode mode,
                      dmarc_org_domain_fn org_fn, void *org_ctx)
{
    memset(d, 0, sizeof(*d));
    d->res.method = method;
    d->res.mode = mode;
    d->org_fn = org_fn;
    d->org_ctx = org_ctx;
    if (policy_domain == NULL || normalise(policy_domain, d->res.policy_domain,
                                           sizeof(d->res.policy_domain), &d->nlabels) < 0) {
        d->res.policy_domain[0] = '\0';
        d->res.status = DMARC_DISC_NONE;
        set_note(&d->res, "%s", "policy domain is not a domain name");
        return;
    }
    d->res.status = DMARC_DISC_PENDING;
    if (method == DMARC_DISC_TREEWALK)
        d->nplan = 1 + (d->nlabels <= 8 ? d->nlabels - 1 : 7);
    else
        d->nplan = 1; /* the org-domain question is added when needed */
    set_question(d, d->res.policy_domain);
}

int dmarc_disc_next(const struct dmarc_disc *d, const char **name, uint16_t *type)
{
    if (d->res.status != DMARC_DISC_PENDING)
        return 0;
    *name = d->cur;
    *type = DMARC_DISC_T_TXT;
    return 1;
}

static void keep(struct dmarc_disc *d, const struct found *f)
{
    d->prev = d->last;
    memset(&d->last, 0, sizeof(d->last));
    d->last.have = 1;
    d->last.usable = f->usable;
    d->last.psd = f->psd;
    d->last.rec = f->rec;
    snprintf(d->last.domain, sizeof(d->last.domain), "%s", d->target);
}

static void feed_walk(struct dmarc_disc *d, const struct found *f)
{
    struct dmarc_disc_result *r = &d->res;

    if (d->step == 0) {
        if (f->usable) {
            /* §4.10.1: the policy domain's own record applies. It is also the
             * org domain when it says psd=n; otherwise finding the org domain
             * would cost queries that change nothing for envelope DMARC. */
            if (f->psd == DMARC_PSD_N)
                snprintf(r->org_domain, sizeof(r->org_domain), "%s", r->policy_domain);
            keep(d, f);
            finish_found(d, &d->last, 0);
            return;
        }
        /* No valid record at the policy domain (§4.10.1: walk on, even when an
         * unusable record there carries psd=). */
    } else if (f->dmarc == 1 && (f->usable || f->psd != DMARC_PSD_U)) {
        keep(d, f);
        if (f->psd != DMARC_PSD_U) {
            walk_finish(d); /* §4.10 step 6: psd=y or psd=n stops the walk */
            return;
        }
    }
    if (++d->step >= d->nplan) {
        walk_finish(d);
        return;
    }
    set_question(d, walk_target(d, d->step));
}

static void feed_psl(struct dmarc_disc *d, const struct found *f)
{
    struct dmarc_disc_result *r = &d->res;
    char org[DMARC_DOMAIN_MAX];

    if (f->usable) {
        keep(d, f);
        if (d->step == 0 && d->org_fn &&
            d->org_fn(d->org_ctx, r->policy_domain, org, sizeof(org)) == 0)
            snprintf(r->org_domain, sizeof(r->org_domain), "%s", org);
        else if (d->step == 1)
            snprintf(r->org_domain, sizeof(r->org_domain), "%s", d->target);
        finish_found(d, &d->last, 0);
        return;
    }
    if (d->step == 0 && d->org_fn &&
        d->org_fn(d->org_ctx, r->policy_domain, org, sizeof(org)) == 0) {
        int dummy;
        char norm[DMARC_DOMAIN_MAX];

        if (normalise(org, norm, sizeof(norm), &dummy) == 0) {
            snprintf(r->org_domain, sizeof(r->org_domain), "%s", norm);
            if (strcmp(norm, r->policy_domain) != 0) {
                /* RFC 7489 §6.6.3: ask the organizational domain instead. */
                d->step = 1;
                d->nplan = 2;
                set_question(d, norm);
                return;
            }
        }
    }
    finish_none(d);
}

void dmarc_disc_feed(struct dmarc_disc *d, enum dmarc_disc_answer ans, const char *const *txt,
                     const size_t *len, size_t n)
{
    struct dmarc_disc_result *r = &d->res;
    struct found f;

    if (r->status != DMARC_DISC_PENDING)
        return;
    if (r->nq < sizeof(r->q) / sizeof(r->q[0]))
        snprintf(r->q[r->nq++], sizeof(r->q[0]), "%s", d->cur);
    if (ans == DMARC_ANS_TEMPFAIL) {
        r->status = DMARC_DISC_TEMPERROR;
        snprintf(r->tempfail_name, sizeof(r->tempfail_name), "%s", d->cur);
        snprintf(r->note, sizeof(r->note), "temporary DNS failure for %s", d->cur);
        return;
    }
    if (d->step == 0 && ans != DMARC_ANS_NXDOMAIN)
        r->pd_exists = 1;
    if (ans == DMARC_ANS_OK)
        classify(d, txt, len, n, &f);
    else
        memset(&f, 0, sizeof(f));
    if (r->method == DMARC_DISC_TREEWALK)
        feed_walk(d, &f);
    else
        feed_psl(d, &f);
}

const struct dmarc_disc_result *dmarc_disc_result(const struct dmarc_disc *d)
{
    return &d->res;
}

const char *dmarc_disc_status_name(enum dmarc_disc_status s)
{
    switch (s) {
    case DMARC_DISC_PENDING:
        return "pending";
    case DMARC_DISC_FOUND:
        return "found";
    case DMARC_DISC_NONE:
        return "none";
    case DMARC_DISC_TEMPERROR:
        return "temperror";
    }
    return "?";
}

const char *dmarc_disc_method_name(enum dmarc_disc_method m)
{
    return m == DMARC_DISC_PSL ? "psl" : "treewalk";
}
