/* dmarcq.c - DMARC discovery on the loop: dmarc_disc driven by dns_lookup,
 * plus the policy domain's existence check (see dmarcq.h). */
#include "dmarcq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inst.h"

#define NEXIST 3 /* A, AAAA, MX */

struct dmarcq_cache {
    struct inst_table *t; /* key -> struct dmarcq_res (one reference each) */
    uint64_t max_ttl_ms;
    size_t max;
};

struct dmarcq {
    struct dns_resolver *r;
    struct dmarcq_cache *cache;
    struct dmarcq_res *out; /* allocated at start, so finishing cannot fail */
    /* Cacheability: the shortest TTL seen (seconds), and whether every
     * answer was conclusive (no SERVFAIL, timeout, allocation failure). */
    uint32_t min_ttl;
    int inconclusive;
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

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct dmarcq_res *dmarcq_res_ref(struct dmarcq_res *r)
{
    if (r)
        r->refs++;
    return r;
}

void dmarcq_res_unref(struct dmarcq_res **rp)
{
    struct dmarcq_res *r = *rp;

    if (r == NULL)
        return;
    *rp = NULL;
    if (--r->refs == 0)
        free(r);
}

static void res_free_data(void *p)
{
    struct dmarcq_res *r = p;

    dmarcq_res_unref(&r);
}

struct dmarcq_cache *dmarcq_cache_new(size_t max_entries, uint64_t max_ttl_ms)
{
    struct dmarcq_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->max = max_entries ? max_entries : 1;
    c->max_ttl_ms = max_ttl_ms;
    /* The table's own timeout is the cap; each entry's TTL is checked on use. */
    c->t = inst_new(c->max, max_ttl_ms ? max_ttl_ms : 1, res_free_data);
    if (c->t == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void dmarcq_cache_free(struct dmarcq_cache **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    inst_free(&(*cp)->t);
    free(*cp);
    *cp = NULL;
}

void dmarcq_cache_set_ttl(struct dmarcq_cache *c, uint64_t max_ttl_ms)
{
    if (c == NULL)
        return;
    c->max_ttl_ms = max_ttl_ms;
    if (max_ttl_ms == 0) { /* shrink to one entry, then drop it by expiry */
        inst_set_limits(c->t, c->max, 1);
        inst_expire(c->t, UINT64_MAX);
    } else {
        inst_set_limits(c->t, c->max, max_ttl_ms);
    }
}

size_t dmarcq_cache_count(const struct dmarcq_cache *c)
{
    return c ? inst_count(c->t) : 0;
}

/* cache_key: "<method><mode>:<domain>", the domain as dmarc_disc normalises
 * it. -1 when it is not a usable domain name. */
static int cache_key(char *key, size_t sz, const char *domain, enum dmarc_disc_method method,
                     enum dmarc_mode mode)
{
    key[0] = (char)('0' + (int)method);
    key[1] = (char)('0' + (int)mode);
    key[2] = ':';
    return dmarc_disc_normalise(domain, key + 3, sz - 3);
}

struct dmarcq_res *dmarcq_cached(struct dmarcq_cache *c, const char *policy_domain,
                                 enum dmarc_disc_method method, enum dmarc_mode mode)
{
    char key[DMARC_DOMAIN_MAX + 8];
    struct dmarcq_res *r;
    uint64_t now;

    if (c == NULL || c->max_ttl_ms == 0 || policy_domain == NULL ||
        cache_key(key, sizeof(key), policy_domain, method, mode) < 0)
        return NULL;
    now = now_ms();
    if ((r = inst_get(c->t, key, now)) == NULL)
        return NULL;
    if (r->expires_ms <= now) {
        inst_del(c->t, key);
        return NULL;
    }
    return dmarcq_res_ref(r);
}

/* cache_put: keep a finished result when every answer behind it was
 * conclusive and it may live at least a second. */
static void cache_put(struct dmarcq *q, struct dmarcq_res *r)
{
    struct dmarcq_cache *c = q->cache;
    char key[DMARC_DOMAIN_MAX + 8];
    uint64_t ttl_ms;

    if (c == NULL || c->max_ttl_ms == 0 || q->inconclusive || q->min_ttl == 0 ||
        r->res.status == DMARC_DISC_TEMPERROR || r->exists == DMARC_EXIST_UNKNOWN ||
        cache_key(key, sizeof(key), r->res.policy_domain, q->disc.res.method, q->disc.res.mode) < 0)
        return;
    ttl_ms = (uint64_t)q->min_ttl * 1000;
    if (ttl_ms > c->max_ttl_ms)
        ttl_ms = c->max_ttl_ms;
    r->expires_ms = now_ms() + ttl_ms;
    if (inst_put(c->t, key, r, now_ms()) == 0)
        dmarcq_res_ref(r);
}

/* note_answer: fold one DNS answer into the cacheability of the result. */
static void note_answer(struct dmarcq *q, const struct dns_result *res)
{
    if (res->status != DNS_OK && res->status != DNS_NODATA && res->status != DNS_NXDOMAIN)
        q->inconclusive = 1;
    else if (res->ttl < q->min_ttl)
        q->min_ttl = res->ttl;
}

static void free_q(struct dmarcq *q)
{
    dns_cancel(&q->txtq);
    for (int i = 0; i < NEXIST; i++)
        dns_cancel(&q->eq[i]);
    dmarcq_res_unref(&q->out);
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
    struct dmarcq_res *out;
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
    out = q->out;
    q->out = NULL; /* the callback's reference */
    out->res = *res;
    out->exists = ex;
    cache_put(q, out);
    q->cb(out, q->arg);
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
    note_answer(q, res);
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
        if (q->eq[i] == NULL) {
            q->edone++; /* counts as "not known", never as NXDOMAIN */
            q->inconclusive = 1;
        }
    }
}

static void on_txt(const struct dns_result *res, void *arg)
{
    struct dmarcq *q = arg;
    enum dmarc_disc_answer ans;
    const char *txt[32];
    size_t len[32], n = 0;

    q->txtq = NULL;
    note_answer(q, res);
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
        q->inconclusive = 1;
        dmarc_disc_feed(&q->disc, DMARC_ANS_TEMPFAIL, NULL, NULL, 0);
    }
    if (!q->estarted && exists_needed(q))
        start_exist(q);
    maybe_finish(q);
}

struct dmarcq *dmarcq_start(struct dns_resolver *r, struct dmarcq_cache *cache,
                            const char *policy_domain, enum dmarc_disc_method method,
                            enum dmarc_mode mode, dmarc_org_domain_fn org_fn, void *org_ctx,
                            dmarcq_cb cb, void *arg)
{
    struct dmarcq *q = calloc(1, sizeof(*q));
    const char *name;
    uint16_t type;

    if (q == NULL || (q->out = calloc(1, sizeof(*q->out))) == NULL) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->out->refs = 1;
    q->r = r;
    q->cache = cache;
    q->min_ttl = UINT32_MAX;
    q->cb = cb;
    q->arg = arg;
    dmarc_disc_start(&q->disc, policy_domain, method, mode, org_fn, org_ctx);
    if (!dmarc_disc_next(&q->disc, &name, &type)) {
        free_q(q);
        errno = EINVAL;
        return NULL;
    }
    q->txtq = dns_lookup(r, name, type, on_txt, q);
    if (q->txtq == NULL) {
        free_q(q);
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
