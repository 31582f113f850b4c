/* dmarcq.c - DMARC discovery on the loop: dmarc_disc driven by dns_lookup,
 * plus the policy domain's existence check (see dmarcq.h). */
#include "dmarcq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NEXIST 3 /* A, AAAA, MX */

struct dmarcq {
    struct dns_resolver *r;
    struct dmarc_disc disc;
    struct dns_query *txtq; /* the `_dmarc` question in flight */
    /* Existence check: one slot per type. */
    struct dns_query *eq[NEXIST];
    int estarted, edone, enx, eyes;
    dmarcq_cb cb;
    void *arg;
};

static const uint16_t exist_types[NEXIST] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX};

static void ask_next(struct dmarcq *q);

static void free_q(struct dmarcq *q)
{
    dns_cancel(&q->txtq);
    for (int i = 0; i < NEXIST; i++)
        dns_cancel(&q->eq[i]);
    free(q);
}

/* exists_needed: the record found belongs to a parent, so sp/np and the
 * "does not exist" row depend on the answer, which we do not have yet. */
static int exists_needed(const struct dmarcq *q)
{
    const struct dmarc_disc_result *res = dmarc_disc_result(&q->disc);

    if (res->pd_exists)
        return 0;
    if (res->status == DMARC_DISC_FOUND)
        return !res->at_policy_domain;
    /* Still walking: a parent's record is already in hand, so start now and
     * overlap the check with the rest of the walk. */
    return res->status == DMARC_DISC_PENDING && q->disc.last.have;
}

static enum dmarc_exist exists_value(const struct dmarcq *q)
{
    if (!q->estarted || q->eyes)
        return DMARC_EXIST_YES;
    if (q->edone == NEXIST && q->enx == NEXIST)
        return DMARC_EXIST_NO;
    return DMARC_EXIST_UNKNOWN;
}

/* maybe_finish: report once discovery is over and, if it matters, existence
 * is known. */
static void maybe_finish(struct dmarcq *q)
{
    const struct dmarc_disc_result *res = dmarc_disc_result(&q->disc);
    enum dmarc_exist ex;

    if (res->status == DMARC_DISC_PENDING)
        return;
    if (res->status == DMARC_DISC_FOUND && q->estarted && !q->eyes && q->edone < NEXIST)
        return; /* wait for the existence answers */
    ex = exists_value(q);
    if (res->status != DMARC_DISC_FOUND || res->at_policy_domain)
        ex = DMARC_EXIST_YES; /* existence cannot matter: do not report guesses */
    for (int i = 0; i < NEXIST; i++)
        dns_cancel(&q->eq[i]);
    q->cb(res, ex, q->arg);
    free_q(q);
}

static void on_exist(const struct dns_result *res, void *arg)
{
    struct dmarcq *q = arg;
    int i;

    for (i = 0; i < NEXIST; i++)
        if (exist_types[i] == res->type && q->eq[i] != NULL)
            break;
    if (i < NEXIST)
        q->eq[i] = NULL; /* the handle is spent once its callback runs */
    q->edone++;
    if (res->status == DNS_OK || res->status == DNS_NODATA)
        q->eyes = 1;
    else if (res->status == DNS_NXDOMAIN)
        q->enx++;
    if (q->eyes) {
        /* One answer that the name exists is enough: drop the others. */
        for (int j = 0; j < NEXIST; j++)
            dns_cancel(&q->eq[j]);
        q->edone = NEXIST;
    }
    maybe_finish(q);
}

static void start_exist(struct dmarcq *q)
{
    const char *pd = dmarc_disc_result(&q->disc)->policy_domain;

    q->estarted = 1;
    for (int i = 0; i < NEXIST; i++) {
        q->eq[i] = dns_lookup(q->r, pd, exist_types[i], on_exist, q);
        if (q->eq[i] == NULL)
            q->edone++; /* counts as "not known", never as NXDOMAIN */
    }
}

static void on_txt(const struct dns_result *res, void *arg)
{
    struct dmarcq *q = arg;
    enum dmarc_disc_answer ans;
    const char *txt[32];
    size_t len[32], n = 0;

    q->txtq = NULL;
    switch (res->status) {
    case DNS_OK:
        ans = DMARC_ANS_OK;
        /* More TXT records than this at a _dmarc name is abuse; the first 32
         * decide (two DMARC records among them already mean "no policy"). */
        for (size_t i = 0; i < res->n && n < sizeof(txt) / sizeof(txt[0]); i++, n++) {
            txt[n] = (const char *)res->rr[i].data;
            len[n] = res->rr[i].len;
        }
        break;
    case DNS_NODATA:
        ans = DMARC_ANS_NODATA;
        break;
    case DNS_NXDOMAIN:
        ans = DMARC_ANS_NXDOMAIN;
        break;
    default:
        ans = DMARC_ANS_TEMPFAIL;
        break;
    }
    dmarc_disc_feed(&q->disc, ans, txt, len, n);
    ask_next(q);
}

static void ask_next(struct dmarcq *q)
{
    const char *name;
    uint16_t type;

    while (dmarc_disc_next(&q->disc, &name, &type)) {
        if (!q->estarted && exists_needed(q))
            start_exist(q);
        q->txtq = dns_lookup(q->r, name, type, on_txt, q);
        if (q->txtq != NULL)
            return;
        /* Allocation failure (names are validated): a temporary error. */
        dmarc_disc_feed(&q->disc, DMARC_ANS_TEMPFAIL, NULL, NULL, 0);
    }
    if (!q->estarted && exists_needed(q))
        start_exist(q);
    maybe_finish(q);
}

struct dmarcq *dmarcq_start(struct dns_resolver *r, const char *policy_domain,
                            enum dmarc_disc_method method, enum dmarc_mode mode,
                            dmarc_org_domain_fn org_fn, void *org_ctx, dmarcq_cb cb, void *arg)
{
    struct dmarcq *q = calloc(1, sizeof(*q));
    const char *name;
    uint16_t type;

    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    dmarc_disc_start(&q->disc, policy_domain, method, mode, org_fn, org_ctx);
    if (!dmarc_disc_next(&q->disc, &name, &type)) {
        free(q);
        errno = EINVAL;
        return NULL;
    }
    q->txtq = dns_lookup(r, name, type, on_txt, q);
    if (q->txtq == NULL) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    return q;
}

void dmarcq_cancel(struct dmarcq **qp)
{
    if (qp == NULL || *qp == NULL)
        return;
    free_q(*qp);
    *qp = NULL;
}
