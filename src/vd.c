/* vd.c - the verdict for each policy request (see vd.h).
 *
 * A message (instance) goes through three states:
 *   PENDING  the first RCPT started the evaluation: SPF on the worker pool and
 *            DMARC discovery on the loop, in parallel, under one deadline
 *            (evaluation_timeout). Requests of the same message that arrive
 *            meanwhile (a second policy connection of the same smtpd) wait
 *            and get the same answer
 *   DONE     decided; a reject (or a deferral) is repeated for every later
 *            request; otherwise the remaining headers go out one per later
 *            request, then DUNNO
 *   SKIPPED  trusted or authenticated: DUNNO for every request
 * The message entry lives in the instance table (bounded, expiring). If the
 * table drops a PENDING entry (full), its waiters are answered DUNNO at once,
 * which is Postfix's own default_action, so nothing is lost but a header.
 *
 * Memory: the evaluation context (SPF verdict, discovery result: several KiB)
 * exists only while PENDING; a decided message keeps its repeat action and
 * the headers not yet sent, allocated to their length. A message whose first
 * RCPT was greylisted keeps neither: only the greylisting context, and it is
 * evaluated again if a later RCPT is accepted (vd_grey_accept). */
#include "vd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "cfg.h"
#include "cidr.h"
#include "dmarc_disc.h"
#include "dmarc_disp.h"
#include "dmarcq.h"
#include "fl.h"
#include "grey.h"
#include "hdr.h"
#include "inst.h"
#include "log.h"
#include "pp.h"
#include "psl.h"
#include "rcount.h"
#include "rgrey.h"
#include "rrow.h"
#include "san.h"
#include "spfres.h"
#include "spfw.h"
#include "srv.h"

#define VD_MAX_HEADERS 3
#define VD_MAX_WAITERS 8 /* more concurrent requests for one message is abuse */
/* SPF has its own deadline in the pool (the same evaluation_timeout); ours
 * fires a little later so the pool's temperror verdict normally arrives first. */
#define VD_DEADLINE_SLACK_MS 200
/* Policy domains whose finished discovery is kept (~8.5 KB each): the busy
 * senders fit, and the worst case stays under 9 MB. */
#define VD_DMARC_CACHE_SIZE 1024

enum vd_msg_state { VD_PENDING, VD_DONE, VD_SKIPPED };

/* What is needed only while the message is being evaluated. */
struct vd_eval {
    char client[64], helo[SPF_DOMAIN_MAX], sender[SPF_DOMAIN_MAX * 2], rcpt[SPF_DOMAIN_MAX * 2];
    char policy_domain[SPF_DOMAIN_MAX]; /* "" when there is none usable */
    char client_name[SPF_DOMAIN_MAX];   /* for greylist client whitelists */
    struct spfw_job *job;
    struct dmarcq *dq;
    struct event *deadline;
    uint64_t started_ms; /* for the latency histogram */
    int spf_done, dmarc_done;
    struct spf_verdict sv;
    /* DMARC discovery: disc points into dres (a shared, cached result we hold
     * a reference to) or at one of the static results below. */
    struct dmarcq_res *dres;
    const struct dmarc_disc_result *disc;
    enum dmarc_exist exists;
    /* Decided, kept while the first RCPT's greylist check runs. */
    int use_dmarc;
    struct dmarc_disp_out d;
    char reasons[128];
    struct rgrey_req *greq;
    /* A re-evaluation after a later RCPT of a greylisted message passed
     * (vd_grey_accept): no greylisting, and the metrics were counted once. */
    int again;
    /* Requests waiting for the decision; the first started it. Here rather
     * than in struct vd_msg: only a message being evaluated has any, and
     * every remembered message would otherwise carry the array. */
    struct srv_conn *waiters[VD_MAX_WAITERS];
    size_t nwaiters;
};

/* What a message gets when there is no discovery to run (vd_no_dmarc) or
 * when it overran evaluation_timeout. */
static const struct dmarc_disc_result vd_disc_none = {.status = DMARC_DISC_NONE};
static const struct dmarc_disc_result vd_disc_timeout = {.status = DMARC_DISC_TEMPERROR,
                                                         .tempfail_name = "evaluation timeout"};

struct vd_msg {
    struct vd *vd;
    enum vd_msg_state state;
    char *instance;                /* in the same block, after the struct */
    struct vd_eval *ev;            /* PENDING only (it holds the requests waiting) */
    char *repeat;                  /* DONE: answer every request with this (reject, defer) */
    char *first;                   /* DONE: the first reply when it is not a header (HOLD...) */
    char *headers[VD_MAX_HEADERS]; /* DONE: headers still to send, in order */
    size_t nheaders, next_header;
    char *count; /* DONE: the row to count at END-OF-MESSAGE, packed by vd_count_pack:
                  * ~0.3 KB instead of the 2.8 KB struct vd_count, which every remembered
                  * message would otherwise hold */
    /* Greylisting: while active, each RCPT is checked as its own triplet
     * until one passes; then the message is evaluated again for that RCPT
     * (vd_grey_accept) and accepted for the rest. A deferred message keeps
     * no headers and no row: most never come back under the same instance,
     * and building them was a third of the work per greylisted message. */
    int grey_active;
    char *grey_ctx;             /* "client\0sender\0helo\0client_name\0", for the next RCPTs */
    struct rgrey_req *greq;     /* a later RCPT's check in flight */
    struct srv_conn *grey_conn; /* ... and the request waiting for it */
    char *grey_rcpt;            /* ... for that recipient (owned) */
};

/* A row waiting for END-OF-MESSAGE (count_stage = end-of-message). */
struct vd_count {
    struct rrow row;
    struct rrow_policy pol;
};

struct vd {
    const struct pd_config *cfg;
    struct event_base *base;
    struct spfw_pool *pool;
    struct dns_resolver *dns;
    struct psl_ctx *psl; /* org_domain_method = psl only */
    char *psl_file;      /* the file psl was loaded from */
    struct cidr_list *trusted, *forwarders;
    struct rcount *rc;           /* counters in Redis; NULL when `redis` is not set */
    struct rgrey *rg;            /* greylist store; NULL unless greylist = yes and redis is set */
    struct grey_wl *wl;          /* greylist whitelists (files), NULL when none */
    struct dmarcq_cache *dcache; /* finished DMARC discoveries (verdict_cache_ttl) */
    struct grey_params gp;
    uint64_t rng; /* xorshift64 state for the RFC 7489 pct sample */
    struct inst_table *msgs;
    struct vd_stats st;
    uint64_t anon_seq; /* for requests without an instance attribute */
    struct fl ev_fl;   /* spare evaluation contexts (~3.7 KB each, one per message) */
};

static uint64_t vd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* vd_reply: srv_reply, counted by the action's first word (a reply code
 * counts as REJECT for 5XX and DEFER for 4XX). */
static void vd_reply(struct vd *v, struct srv_conn *c, const char *action)
{
    static const char *const names[VD_ACTIONS] = VD_ACTION_NAMES;
    size_t i, n = strcspn(action, " ");

    if (action[0] == '5')
        i = 2;
    else if (action[0] == '4' || strncmp(action, "DEFER_IF_PERMIT", n) == 0)
        i = 3;
    else
        for (i = 0; i < VD_ACTIONS - 1; i++)
            if (strlen(names[i]) == n && strncmp(action, names[i], n) == 0)
                break;
    v->st.replies_by_action[i]++;
    srv_reply(c, action);
}

/* vd_copy: bounded copy of a request value into a fixed field. Values are
 * kept raw here (SPF needs them exact); they are sanitised where they are
 * written into a header, a reply or a log line. */
static void vd_copy(char *dst, size_t sz, const char *src)
{
    size_t n = 0;

    /* A loop rather than strnlen: sources include short literals, which
     * gcc's overread check would flag for a bound larger than them. */
    while (n + 1 < sz && src[n] != '\0') {
        dst[n] = src[n];
        n++;
    }
    dst[n] = '\0';
}

/* vd_eval_new: a zeroed evaluation context, NULL on ENOMEM. */
static struct vd_eval *vd_eval_new(struct vd *v)
{
    struct vd_eval *ev = fl_get(&v->ev_fl);

    if (ev != NULL)
        memset(ev, 0, sizeof(*ev));
    return ev;
}

/* vd_eval_free: end m's evaluation (cancelling what still runs). */
static void vd_eval_free(struct vd_msg *m)
{
    struct vd_eval *ev = m->ev;

    if (ev == NULL)
        return;
    m->ev = NULL;
    spfw_cancel(&ev->job);
    dmarcq_cancel(&ev->dq);
    dmarcq_res_unref(&ev->dres);
    rgrey_cancel(&ev->greq);
    if (ev->deadline)
        event_free(ev->deadline);
    fl_put(&m->vd->ev_fl, ev);
}

static void vd_msg_free(void *p)
{
    struct vd_msg *m = p;

    if (m == NULL)
        return;
    /* Evicted while an evaluation runs: answer the waiters with Postfix's own
     * default rather than leaving smtpd waiting for its policy timeout. */
    if (m->state == VD_PENDING && m->ev != NULL) {
        for (size_t i = 0; i < m->ev->nwaiters; i++)
            vd_reply(m->vd, m->ev->waiters[i], "DUNNO");
        m->ev->nwaiters = 0;
    }
    vd_eval_free(m);
    if (m->greq) {
        rgrey_cancel(&m->greq);
        vd_reply(m->vd, m->grey_conn, "DUNNO");
    }
    free(m->grey_ctx);
    free(m->grey_rcpt);
    for (size_t i = 0; i < m->nheaders; i++)
        free(m->headers[i]);
    free(m->repeat);
    free(m->first);
    free(m->count);
    free(m); /* the instance key lives in the same block */
}

/* vd_psl_org: the dmarc_org_domain_fn for PSL mode. */
static int vd_psl_org(void *ctx, const char *domain, char *out, size_t outlen)
{
    return psl_org_domain(ctx, domain, out, outlen);
}

/* vd_grey_apply: the greylist whitelists, parameters and store for cfg.
 * The files are read here only (start-up and SIGHUP), never per request. */
static int vd_grey_apply(struct vd *v, const struct pd_config *cfg, char *err, size_t errlen)
{
    struct grey_wl *wl = NULL;
    struct rgrey_config rc;
    int on = cfg->greylist && cfg->redis && *cfg->redis;

    if (on && (cfg->greylist_whitelist_clients.n || cfg->greylist_whitelist_recipients.n)) {
        if ((wl = grey_wl_new()) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < cfg->greylist_whitelist_clients.n; i++)
            if (grey_wl_load_clients(wl, cfg->greylist_whitelist_clients.items[i], err, errlen) < 0)
                goto fail;
        for (size_t i = 0; i < cfg->greylist_whitelist_recipients.n; i++)
            if (grey_wl_load_recipients(wl, cfg->greylist_whitelist_recipients.items[i], err,
                                        errlen) < 0)
                goto fail;
    }
    memset(&rc, 0, sizeof(rc));
    rc.redis = cfg->redis;
    rc.password = cfg->redis_password;
    rc.db = cfg->redis_db;
    rc.prefix = cfg->redis_prefix;
    if (on && v->rg == NULL) {
        if ((v->rg = rgrey_new(v->base, &rc)) == NULL) {
            snprintf(err, errlen, "greylist: cannot use redis %s", cfg->redis);
            goto fail;
        }
    } else if (on) {
        if (rgrey_reconfigure(v->rg, &rc) < 0) {
            snprintf(err, errlen, "greylist: cannot use redis %s", cfg->redis);
            goto fail;
        }
    } else {
        rgrey_free(&v->rg);
    }
    grey_wl_free(&v->wl);
    v->wl = wl;
    grey_params_init(&v->gp);
    v->gp.delay_ms = cfg->greylist_delay_ms;
    v->gp.window_ms = cfg->greylist_retry_window_ms;
    v->gp.max_age_ms = cfg->greylist_max_age_ms;
    v->gp.awl_count = cfg->greylist_awl_count;
    v->gp.ipv4_prefix = cfg->greylist_ipv4_prefix;
    v->gp.ipv6_prefix = cfg->greylist_ipv6_prefix;
    return 0;
fail:
    grey_wl_free(&wl);
    return -1;
}

static int vd_apply(struct vd *v, const struct pd_config *cfg, char *err, size_t errlen)
{
    struct cidr_list *t, *f;
    struct psl_ctx *psl = NULL;

    t = cidr_list_parse((const char *const *)cfg->trusted_networks.items, cfg->trusted_networks.n,
                        err, errlen);
    if (t == NULL)
        return -1;
    f = cidr_list_parse((const char *const *)cfg->trusted_forwarders.items,
                        cfg->trusted_forwarders.n, err, errlen);
    if (f == NULL) {
        cidr_list_free(&t);
        return -1;
    }
    if (vd_grey_apply(v, cfg, err, errlen) < 0) {
        cidr_list_free(&t);
        cidr_list_free(&f);
        return -1;
    }
    /* The list is read at start and on reload only (never per request). */
    if (cfg->dmarc && cfg->org_domain_method == CFG_ORG_PSL) {
        if (v->psl && v->psl_file && strcmp(v->psl_file, cfg->psl_file) == 0) {
            psl = v->psl;
            v->psl = NULL;
        } else if ((psl = psl_open(cfg->psl_file, err, errlen)) == NULL) {
            cidr_list_free(&t);
            cidr_list_free(&f);
            return -1;
        }
    }
    psl_close(&v->psl);
    free(v->psl_file);
    v->psl = psl;
    v->psl_file = psl ? strdup(cfg->psl_file) : NULL;
    cidr_list_free(&v->trusted);
    cidr_list_free(&v->forwarders);
    v->trusted = t;
    v->forwarders = f;
    v->cfg = cfg;
    if (v->msgs)
        inst_set_limits(v->msgs, cfg->instance_table_size, cfg->instance_timeout_ms);
    /* A reload starts the discovery cache afresh: the PSL file, the mode or
     * the method may have changed, and SIGHUP is when an administrator
     * expects that to take effect. */
    dmarcq_cache_set_ttl(v->dcache, 0);
    dmarcq_cache_set_ttl(v->dcache, cfg->verdict_cache_ttl_ms);
    return 0;
}

struct vd *vd_new(const struct pd_config *cfg, struct event_base *base, struct spfw_pool *pool,
                  struct dns_resolver *dns, char *err, size_t errlen)
{
    struct vd *v = calloc(1, sizeof(*v));

    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    v->ev_fl = (struct fl)FL_INIT(sizeof(struct vd_eval), 64);
    v->base = base;
    v->pool = pool;
    v->dns = dns;
    v->rng = ((uint64_t)arc4random() << 32 | arc4random()) | 1; /* never 0 */
    v->msgs = inst_new(cfg->instance_table_size, cfg->instance_timeout_ms, vd_msg_free);
    v->dcache = dmarcq_cache_new(VD_DMARC_CACHE_SIZE, cfg->verdict_cache_ttl_ms);
    if (v->msgs == NULL || v->dcache == NULL) {
        snprintf(err, errlen, "out of memory");
        vd_free(&v);
        return NULL;
    }
    if (vd_apply(v, cfg, err, errlen) < 0) {
        vd_free(&v);
        return NULL;
    }
    return v;
}

int vd_reconfigure(struct vd *v, const struct pd_config *cfg, char *err, size_t errlen)
{
    return vd_apply(v, cfg, err, errlen);
}

void vd_free(struct vd **vp)
{
    struct vd *v = *vp;

    if (v == NULL)
        return;
    *vp = NULL;
    inst_free(&v->msgs);
    dmarcq_cache_free(&v->dcache);
    rgrey_free(&v->rg);
    grey_wl_free(&v->wl);
    cidr_list_free(&v->trusted);
    cidr_list_free(&v->forwarders);
    psl_close(&v->psl);
    free(v->psl_file);
    fl_drain(&v->ev_fl);
    free(v);
}

void vd_expire(struct vd *v)
{
    inst_expire(v->msgs, vd_now_ms());
}

void vd_get_stats(struct vd *v, struct vd_stats *out)
{
    *out = v->st;
    if (v->rg) {
        struct rgrey_stats rs;

        rgrey_get_stats(v->rg, &rs);
        out->grey_awl_cached = rs.awl_cached;
    }
}

/* vd_policy_domain: the envelope-DMARC policy domain: the MAIL FROM domain,
 * or the HELO name for the null sender (as RFC 7208 does for SPF). Lower
 * case, no trailing dot; "" when that is not a usable domain name (an address
 * literal, garbage): then DMARC does not apply. */
static void vd_policy_domain(const char *sender, const char *helo, char *out, size_t sz)
{
    const char *at = strrchr(sender, '@');
    const char *d = *sender ? (at ? at + 1 : "") : helo;
    size_t n = strlen(d);

    out[0] = '\0';
    if (n && d[n - 1] == '.')
        n--;
    if (n == 0 || n >= sz)
        return;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)((d[i] >= 'A' && d[i] <= 'Z') ? d[i] + 32 : d[i]);
    out[n] = '\0';
    /* A domain must have at least two labels to carry a policy of its own;
     * strict LDH syntax keeps hostile bytes out of DNS names and headers. */
    if (!san_domain(out, 0) || strchr(out, '.') == NULL)
        out[0] = '\0';
}

/* vd_eval_fill: the message's identities, as the first RCPT gave them (a
 * new message, or one evaluated again for a later RCPT). */
static void vd_eval_fill(struct vd_eval *ev, const char *client, const char *helo,
                         const char *sender, const char *rcpt, const char *client_name)
{
    vd_copy(ev->client, sizeof(ev->client), client);
    vd_copy(ev->helo, sizeof(ev->helo), helo);
    vd_copy(ev->sender, sizeof(ev->sender), sender);
    vd_copy(ev->rcpt, sizeof(ev->rcpt), rcpt);
    vd_copy(ev->client_name, sizeof(ev->client_name), client_name);
    vd_policy_domain(ev->sender, ev->helo, ev->policy_domain, sizeof(ev->policy_domain));
}

/* vd_domain_listed: domain equals an entry of the list or is below one. */
static int vd_domain_listed(const struct cfg_list *l, const char *domain)
{
    size_t dl = strlen(domain);

    for (size_t i = 0; i < l->n; i++) {
        const char *e = l->items[i];
        size_t el = strlen(e);

        if (el && e[el - 1] == '.')
            el--;
        if (el == 0 || el > dl)
            continue;
        if (strncasecmp(domain + dl - el, e, el) == 0 && (el == dl || domain[dl - el - 1] == '.'))
            return 1;
    }
    return 0;
}

static void vd_disp_cfg(const struct pd_config *cfg, struct dmarc_disp_cfg *dc)
{
    dmarc_disp_cfg_defaults(dc);
    switch (cfg->weak_spf_disposition) {
    case CFG_WEAK_QUARANTINE:
        dc->weak_reject = DMARC_SET_QUARANTINE;
        dc->weak_quarantine = DMARC_SET_QUARANTINE;
        break;
    case CFG_WEAK_POLICY:
        dc->weak_reject = DMARC_SET_POLICY;
        dc->weak_quarantine = DMARC_SET_POLICY;
        break;
    default:
        dc->weak_reject = DMARC_SET_NONE;
        dc->weak_quarantine = DMARC_SET_NONE;
        break;
    }
}

/* vd_reasons: the reason bits as a comma-separated list. */
static void vd_reasons(unsigned bits, char *buf, size_t sz)
{
    size_t len = 0;

    buf[0] = '\0';
    for (unsigned bit = 1; bit && bit <= DMARC_REASON_TRUSTED_FORWARDER; bit <<= 1)
        if (bits & bit) {
            int n = snprintf(buf + len, sz - len, "%s%s", len ? "," : "", dmarc_reason_name(bit));
            if (n < 0 || (size_t)n >= sz - len)
                break;
            len += (size_t)n;
        }
}

static void vd_log_decision(const struct vd_msg *m, const struct vd_eval *ev,
                            const struct dmarc_disp_out *d, const char *reasons, const char *grey,
                            const char *action)
{
    char line[2048];
    size_t len = 0;
    const char *verb_end = strchr(action, ' ');
    char verb[32];

    snprintf(verb, sizeof(verb), "%.*s", verb_end ? (int)(verb_end - action) : (int)strlen(action),
             action);
    line[0] = '\0';
    len = log_kv_append(line, sizeof(line), len, "instance", m->instance);
    len = log_kv_append(line, sizeof(line), len, "client", ev->client);
    len = log_kv_append(line, sizeof(line), len, "helo", ev->helo);
    len = log_kv_append(line, sizeof(line), len, "sender", ev->sender);
    len = log_kv_append(line, sizeof(line), len, "rcpt", ev->rcpt);
    len = log_kv_append(line, sizeof(line), len, "spf", spf_res_name(ev->sv.mfrom));
    len = log_kv_append(line, sizeof(line), len, "spf_domain", ev->sv.mfrom_domain);
    len = log_kv_append(line, sizeof(line), len, "helo_spf", spf_res_name(ev->sv.helo));
    if (d) {
        len = log_kv_append(line, sizeof(line), len, "policy_domain", ev->policy_domain);
        len = log_kv_append(line, sizeof(line), len, "dmarc", dmarc_result_name(d->result));
        if (ev->disc->status == DMARC_DISC_FOUND) {
            len = log_kv_append(line, sizeof(line), len, "record", ev->disc->record_domain);
            len = log_kv_append(line, sizeof(line), len, "policy", dmarc_policy_name(d->policy));
            len = log_kv_append(line, sizeof(line), len, "tag", dmarc_tag_name(d->tag));
        }
        len =
            log_kv_append(line, sizeof(line), len, "disposition", dmarc_disp_name(d->disposition));
        if (*reasons)
            len = log_kv_append(line, sizeof(line), len, "reason", reasons);
    }
    if (grey)
        len = log_kv_append(line, sizeof(line), len, "greylist", grey);
    len = log_kv_append(line, sizeof(line), len, "action", verb);
    if (*ev->sv.problem)
        len = log_kv_append(line, sizeof(line), len, "problem", ev->sv.problem);
    if (ev->disc->status == DMARC_DISC_TEMPERROR)
        len = log_kv_append(line, sizeof(line), len, "dmarc_problem", ev->disc->tempfail_name);
    log_msg(LOG_L_INFO, "decision%s", line);
}

static void vd_log_skip(const struct vd_msg *m, const struct vd_eval *ev, const char *reason)
{
    char line[1024];
    size_t len = 0;

    line[0] = '\0';
    len = log_kv_append(line, sizeof(line), len, "instance", m->instance);
    len = log_kv_append(line, sizeof(line), len, "client", ev->client);
    len = log_kv_append(line, sizeof(line), len, "helo", ev->helo);
    len = log_kv_append(line, sizeof(line), len, "sender", ev->sender);
    len = log_kv_append(line, sizeof(line), len, "rcpt", ev->rcpt);
    len = log_kv_append(line, sizeof(line), len, "action", "DUNNO");
    len = log_kv_append(line, sizeof(line), len, "reason", reason);
    log_msg(LOG_L_INFO, "decision%s", line);
}

/* vd_next_action: the action for a request of a decided message. A pending
 * header is never spent on an END-OF-MESSAGE request: Postfix cannot PREPEND
 * there (access(5)), so it would be lost. */
static void vd_next_action(struct vd_msg *m, const char *state, char *action, size_t sz)
{
    if (m->state == VD_DONE && m->repeat) {
        snprintf(action, sz, "%s", m->repeat);
    } else if (m->state == VD_DONE && m->first) {
        snprintf(action, sz, "%s", m->first);
        free(m->first);
        m->first = NULL;
    } else if (m->state == VD_DONE && m->next_header < m->nheaders &&
               strcasecmp(state, "END-OF-MESSAGE") != 0) {
        snprintf(action, sz, "PREPEND %s", m->headers[m->next_header]);
        free(m->headers[m->next_header]);
        m->headers[m->next_header++] = NULL;
    } else {
        snprintf(action, sz, "DUNNO");
    }
}

static void vd_add_header(struct vd_msg *m, const char *h)
{
    if (h && *h && m->nheaders < VD_MAX_HEADERS && (m->headers[m->nheaders] = strdup(h)) != NULL)
        m->nheaders++;
}

/* vd_reject_action: reject_action + the explanation. */
static char *vd_reject_action(const struct pd_config *cfg, const struct vd_eval *ev,
                              const struct dmarc_disp_out *d)
{
    char text[512], out[PP_MAX_ACTION];
    const char *ra = cfg->reject_action;

    if (hdr_reject_text(text, sizeof(text), ev->policy_domain, dmarc_policy_name(d->policy),
                        spf_res_name(ev->sv.mfrom), ev->client) < 0)
        snprintf(text, sizeof(text), "envelope DMARC policy reject");
    snprintf(out, sizeof(out), "%s %s", ra, text);
    return strdup(out);
}

void vd_set_counter(struct vd *v, struct rcount *rc)
{
    v->rc = rc;
}

static enum rrow_reason vd_rrow_reason(unsigned bit)
{
    switch (bit) {
    case DMARC_REASON_POLICY_TEST_MODE:
        return RROW_R_POLICY_TEST_MODE;
    case DMARC_REASON_SAMPLED_OUT:
        return RROW_R_SAMPLED_OUT;
    case DMARC_REASON_LOCAL_POLICY:
        return RROW_R_LOCAL_POLICY;
    case DMARC_REASON_TRUSTED_FORWARDER:
        return RROW_R_TRUSTED_FORWARDER;
    }
    return RROW_R_OTHER;
}

static void vd_uris(const char (*uris)[DMARC_URI_MAX], size_t n, char *out, size_t sz)
{
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(out + len, sz - len, "%s%s", len ? "," : "", uris[i]);
        if (k < 0 || (size_t)k >= sz - len)
            break;
        len += (size_t)k;
    }
}

/* vd_make_count: the RFC 9990 row and policy snapshot of a decided message.
 * Reports go to the domain whose record was used (record_domain): its
 * subdomains' rows carry their own header_from. */
static void vd_make_count(const struct vd_eval *ev, const struct dmarc_disp_out *d,
                          struct vd_count *c)
{
    const struct dmarc_record *r = &ev->disc->rec;
    const char *at = strrchr(ev->sender, '@');

    memset(c, 0, sizeof(*c));
    vd_copy(c->row.source_ip, sizeof(c->row.source_ip), ev->client);
    vd_copy(c->row.disposition, sizeof(c->row.disposition), dmarc_disp_name(d->disposition));
    vd_copy(c->row.dmarc_spf, sizeof(c->row.dmarc_spf),
            d->result == DMARC_RES_PASS ? "pass" : "fail");
    vd_copy(c->row.spf_domain, sizeof(c->row.spf_domain),
            ev->sv.mfrom_domain[0] ? ev->sv.mfrom_domain : ev->policy_domain);
    vd_copy(c->row.spf_scope, sizeof(c->row.spf_scope), ev->sender[0] ? "mfrom" : "helo");
    vd_copy(c->row.spf_result, sizeof(c->row.spf_result), spf_res_name(ev->sv.mfrom));
    vd_copy(c->row.envelope_from, sizeof(c->row.envelope_from),
            ev->sender[0] && at ? ev->policy_domain : "");
    vd_copy(c->row.header_from, sizeof(c->row.header_from), ev->policy_domain);
    for (unsigned bit = 1; bit && bit <= DMARC_REASON_TRUSTED_FORWARDER; bit <<= 1)
        if ((d->reasons & bit) && c->row.nreasons < RROW_MAX_REASONS)
            c->row.reasons[c->row.nreasons++].type = vd_rrow_reason(bit);

    vd_copy(c->pol.domain, sizeof(c->pol.domain), ev->disc->record_domain);
    vd_copy(c->pol.p, sizeof(c->pol.p), dmarc_policy_name(r->p));
    vd_copy(c->pol.sp, sizeof(c->pol.sp), r->sp ? dmarc_policy_name(r->sp) : "");
    vd_copy(c->pol.np, sizeof(c->pol.np), r->np ? dmarc_policy_name(r->np) : "");
    vd_copy(c->pol.adkim, sizeof(c->pol.adkim), r->adkim == DMARC_ALIGN_STRICT ? "s" : "r");
    vd_copy(c->pol.aspf, sizeof(c->pol.aspf), r->aspf == DMARC_ALIGN_STRICT ? "s" : "r");
    vd_copy(c->pol.fo, sizeof(c->pol.fo), r->fo[0] ? r->fo : "0");
    vd_copy(c->pol.testing, sizeof(c->pol.testing), r->testing ? "y" : "n");
    vd_copy(c->pol.psd, sizeof(c->pol.psd),
            r->psd == DMARC_PSD_Y   ? "y"
            : r->psd == DMARC_PSD_N ? "n"
                                    : "u");
    vd_copy(c->pol.discovery_method, sizeof(c->pol.discovery_method),
            ev->disc->method == DMARC_DISC_PSL ? "psl" : "treewalk");
    c->pol.pct = r->pct;
    vd_uris(r->rua, r->nrua, c->pol.rua, sizeof(c->pol.rua));
}

static void vd_count_now(struct vd *v, const struct vd_count *c)
{
    if (rcount_add(v->rc, &c->row, &c->pol, (long long)time(NULL)) < 0)
        v->st.count_dropped++;
    else
        v->st.counted++;
}

/* vd_count_pack: a row kept for later, as rrow's two encodings one after the
 * other (each NUL-terminated), in memory of their own length. NULL on ENOMEM
 * (the row is then not counted, as when malloc of the struct failed). */
static char *vd_count_pack(const struct vd_count *c)
{
    char row[RROW_ENC_WORST], pol[RROW_ENC_WORST], *s;
    int rl = rrow_encode(&c->row, row, sizeof(row));
    int pl = rrow_policy_encode(&c->pol, pol, sizeof(pol));

    if (rl < 0 || pl < 0 || (s = malloc((size_t)rl + 1 + (size_t)pl + 1)) == NULL)
        return NULL;
    memcpy(s, row, (size_t)rl + 1);
    memcpy(s + rl + 1, pol, (size_t)pl + 1);
    return s;
}

/* vd_count_packed: count a row kept by vd_count_pack. */
static void vd_count_packed(struct vd *v, const char *s)
{
    struct vd_count c;
    size_t rl = strlen(s);

    if (rrow_decode(s, rl, &c.row) < 0 ||
        rrow_policy_decode(s + rl + 1, strlen(s + rl + 1), &c.pol) < 0) {
        v->st.count_dropped++;
        return;
    }
    vd_count_now(v, &c);
}

static void vd_finish(struct vd_msg *m, int grey, unsigned wait_s);
static void vd_grey_first_cb(void *arg, const struct rgrey_result *r);
static int vd_start(struct vd *v, struct vd_msg *m);

/* vd_unix_ms: wall-clock milliseconds: greylist times are shared between MX
 * hosts (run NTP). */
static long long vd_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* vd_grey_applies: whether the first RCPT of a decided message is
 * greylisted. Order: trusted/skip (before) -> DMARC refusal -> greylist. */
static int vd_grey_applies(struct vd *v, struct vd_msg *m, const struct vd_eval *ev,
                           const struct dmarc_disp_out *d, int use_dmarc)
{
    const struct pd_config *cfg = v->cfg;

    if (!cfg->greylist || v->rg == NULL || m->repeat)
        return 0;
    if (v->wl && (grey_wl_match_client(v->wl, ev->client, ev->client_name) ||
                  grey_wl_match_recipient(v->wl, ev->rcpt))) {
        v->st.grey_whitelisted++;
        return 0;
    }
    /* Big senders retry from other addresses: a message whose SPF passes for
     * a domain that enforces DMARC is authenticated enough. */
    if (cfg->greylist_skip_authenticated && use_dmarc && ev->sv.mfrom == SPF_RES_PASS &&
        ev->disc->status == DMARC_DISC_FOUND &&
        (d->policy == DMARC_P_QUARANTINE || d->policy == DMARC_P_REJECT)) {
        v->st.grey_skipped_authenticated++;
        return 0;
    }
    return 1;
}

/* vd_rand100: uniform enough in 0..99 for sampling (xorshift64). */
static int vd_rand100(struct vd *v)
{
    v->rng ^= v->rng << 13;
    v->rng ^= v->rng >> 7;
    v->rng ^= v->rng << 17;
    return (int)(v->rng % 100);
}

static void vd_observe_latency(struct vd_stats *st, uint64_t ms)
{
    static const uint64_t bounds[VD_LATENCY_BUCKETS] = VD_LATENCY_BOUNDS_MS;

    /* Cumulative buckets, as Prometheus histograms are exposed. */
    for (size_t i = 0; i < VD_LATENCY_BUCKETS; i++)
        if (ms <= bounds[i])
            st->latency_le[i]++;
    st->latency_le[VD_LATENCY_BUCKETS]++;
    st->latency_count++;
    st->latency_sum_s += (double)ms / 1000.0;
}

/* vd_ctx_make: the greylisting context a deferred message keeps for its next
 * RCPTs, in one allocation. NULL on ENOMEM. */
static char *vd_ctx_make(const struct vd_eval *ev)
{
    const char *f[4] = {ev->client, ev->sender, ev->helo, ev->client_name};
    size_t len[4], total = 0;
    char *ctx, *p;

    for (int i = 0; i < 4; i++)
        total += (len[i] = strlen(f[i])) + 1;
    if ((ctx = p = malloc(total)) == NULL)
        return NULL;
    for (int i = 0; i < 4; i++) {
        memcpy(p, f[i], len[i] + 1);
        p += len[i] + 1;
    }
    return ctx;
}

/* vd_ctx_field: field i (0 client, 1 sender, 2 helo, 3 client_name). */
static const char *vd_ctx_field(const char *ctx, int i)
{
    while (i-- > 0)
        ctx += strlen(ctx) + 1;
    return ctx;
}

/* vd_decide: SPF and DMARC are known: the disposition, then greylisting (which
 * may answer later), then vd_finish. */
static void vd_decide(struct vd_msg *m)
{
    struct vd *v = m->vd;
    const struct pd_config *cfg = v->cfg;
    struct vd_eval *ev = m->ev;
    struct dmarc_disp_cfg dc;
    struct dmarc_disp_in in;
    struct dmarc_disp_out d;
    char action[PP_MAX_ACTION + 16];
    int use_dmarc = cfg->dmarc && ev->policy_domain[0];

    /* Decided: the deadline must not fire again (e.g. during greylisting,
     * which has its own timeout). */
    if (ev->deadline)
        event_del(ev->deadline);
    if (!ev->again) {
        if ((unsigned)ev->sv.mfrom < sizeof(v->st.spf) / sizeof(v->st.spf[0]))
            v->st.spf[ev->sv.mfrom]++;
        vd_observe_latency(&v->st, vd_now_ms() - ev->started_ms);
    }

    /* The disposition. */
    memset(&d, 0, sizeof(d));
    ev->reasons[0] = '\0';
    if (use_dmarc) {
        vd_disp_cfg(cfg, &dc);
        memset(&in, 0, sizeof(in));
        in.spf = ev->sv.mfrom;
        in.disc = ev->disc;
        in.exists = ev->exists;
        /* pct matters in RFC 7489 mode only; a cheap generator seeded once
         * (glibc's arc4random is a getrandom syscall per call). */
        if (cfg->dmarc_mode == CFG_DMARC_RFC7489)
            in.pct_sample = vd_rand100(v);
        if (cidr_list_match(v->forwarders, ev->client))
            in.override = DMARC_OVR_TRUSTED_FORWARDER;
        else if (vd_domain_listed(&cfg->whitelist_sender_domains, ev->policy_domain))
            in.override = DMARC_OVR_LOCAL_POLICY;
        dmarc_disp_eval(&dc, &in, &d);
        /* The site's own cap comes last and is a local policy. */
        if ((int)d.disposition > cfg->max_disposition) {
            d.disposition = (enum dmarc_disp)cfg->max_disposition;
            d.reasons |= DMARC_REASON_LOCAL_POLICY;
        }
        vd_reasons(d.reasons, ev->reasons, sizeof(ev->reasons));
        if (!ev->again) {
            v->st.dispositions[d.disposition]++;
            if ((unsigned)d.result < 4)
                v->st.dmarc_results[d.result]++;
        }
    }
    ev->use_dmarc = use_dmarc;
    ev->d = d;

    /* A refusal is repeated for every request of the message. */
    if (use_dmarc &&
        (d.disposition == DMARC_DISP_REJECT || (d.disposition == DMARC_DISP_QUARANTINE &&
                                                strcmp(cfg->quarantine_action, "reject") == 0))) {
        m->repeat = vd_reject_action(cfg, ev, &d);
    } else if (use_dmarc && d.disposition != DMARC_DISP_QUARANTINE &&
               d.result == DMARC_RES_TEMPERROR && cfg->temperror_action == CFG_TEMPERROR_DEFER) {
        snprintf(action, sizeof(action),
                 "DEFER_IF_PERMIT 4.7.1 envelope DMARC: temporary DNS failure for %s, try again "
                 "later",
                 ev->policy_domain);
        m->repeat = strdup(action);
    }

    /* Greylisting comes after a DMARC refusal and before acceptance: the
     * headers and the row are made only once a RCPT is accepted (vd_finish). */
    if (!ev->again && vd_grey_applies(v, m, ev, &d, use_dmarc)) {
        struct grey_triplet t;

        if (grey_triplet_make(&v->gp, ev->client, ev->sender, ev->rcpt, &t) == 0 &&
            (m->grey_ctx = vd_ctx_make(ev)) != NULL &&
            (ev->greq = rgrey_check(v->rg, t.key, t.net, vd_unix_ms(), &v->gp, vd_grey_first_cb,
                                    m)) != NULL) {
            m->grey_active = 1;
            v->st.grey_checks++;
            return; /* vd_finish() when the store answers */
        }
        /* Not greylistable (address, length) or out of memory: fail open. */
    }
    vd_finish(m, -1, 0);
}

/* vd_headers: the headers of an accepted message, and the first action of a
 * quarantine that is not a refusal (HOLD, FILTER). */
static void vd_headers(struct vd_msg *m)
{
    const struct pd_config *cfg = m->vd->cfg;
    struct vd_eval *ev = m->ev;
    const struct dmarc_disp_out *d = &ev->d;
    struct hdr_spf h;
    struct hdr_dmarc hd;
    char spf_hdr[2][HDR_MAX + 1], dmarc_hdr[HDR_MAX + 1];
    char action[PP_MAX_ACTION + 16];
    int nspf = 0, dmarc_first = 0, use_dmarc = ev->use_dmarc;

    memset(&h, 0, sizeof(h));
    h.result = ev->sv.mfrom;
    h.identity_helo = ev->sender[0] == '\0';
    h.client_ip = ev->client;
    h.helo = ev->helo;
    h.envelope_from = ev->sender;
    h.domain = ev->sv.mfrom_domain;
    h.receiver = cfg->hostname;
    h.problem = ev->sv.problem;
    h.authserv_id = cfg->authserv_id;
    if (cfg->spf_headers == CFG_HDR_RECEIVED_SPF || cfg->spf_headers == CFG_HDR_BOTH)
        if (hdr_received_spf(spf_hdr[nspf], sizeof(spf_hdr[0]), &h) > 0)
            nspf++;
    if (cfg->spf_headers == CFG_HDR_AUTH_RESULTS || cfg->spf_headers == CFG_HDR_BOTH)
        if (hdr_auth_results(spf_hdr[nspf], sizeof(spf_hdr[0]), &h) > 0)
            nspf++;

    dmarc_hdr[0] = '\0';
    if (use_dmarc) {
        memset(&hd, 0, sizeof(hd));
        hd.result = dmarc_result_name(d->result);
        hd.receiver = cfg->hostname;
        hd.policy_domain = ev->policy_domain;
        hd.record_domain = ev->disc->status == DMARC_DISC_FOUND ? ev->disc->record_domain : "";
        hd.policy = ev->disc->status == DMARC_DISC_FOUND ? dmarc_policy_name(d->policy) : "";
        hd.tag = dmarc_tag_name(d->tag);
        hd.spf = spf_res_name(ev->sv.mfrom);
        hd.disposition = dmarc_disp_name(d->disposition);
        hd.reasons = ev->reasons;
        if (hdr_envelope_dmarc(dmarc_hdr, sizeof(dmarc_hdr), &hd) < 0)
            dmarc_hdr[0] = '\0';
    }

    /* vd_decide made quarantine_action = reject a refusal. */
    if (use_dmarc && d->disposition == DMARC_DISP_QUARANTINE) {
        const char *qa = cfg->quarantine_action;

        if (strcmp(qa, "hold") == 0) {
            snprintf(action, sizeof(action), "HOLD envelope DMARC quarantine (%s)",
                     ev->policy_domain);
            m->first = strdup(action);
        } else if (strncmp(qa, "filter:", 7) == 0) {
            snprintf(action, sizeof(action), "FILTER %s", qa + 7);
            m->first = strdup(action);
        } else {
            dmarc_first = 1; /* prepend: the marking header must be the one sent */
        }
    }
    if (dmarc_first)
        vd_add_header(m, dmarc_hdr);
    for (int i = 0; i < nspf; i++)
        vd_add_header(m, spf_hdr[i]);
    if (!dmarc_first && use_dmarc && cfg->dmarc_header)
        vd_add_header(m, dmarc_hdr);
    m->next_header = 0;
}

/* vd_count_msg: one count per message, with the disposition actually
 * applied: only messages with a DMARC record (someone may want the report),
 * never a deferred attempt, never the reporter's own mail. A reject is
 * counted now at either stage: the message will not reach END-OF-MESSAGE. */
static void vd_count_msg(struct vd_msg *m)
{
    struct vd *v = m->vd;
    const struct pd_config *cfg = v->cfg;
    struct vd_eval *ev = m->ev;
    struct vd_count c;
    int rejected = m->repeat != NULL; /* deferrals are excluded below */

    if (v->rc == NULL || !ev->use_dmarc || ev->disc->status != DMARC_DISC_FOUND ||
        (m->repeat && strncmp(m->repeat, "DEFER", 5) == 0) ||
        (*cfg->report_email && strcasecmp(ev->sender, cfg->report_email) == 0))
        return;
    vd_make_count(ev, &ev->d, &c);
    if (rejected) /* quarantine_action = reject: what was applied is a reject */
        snprintf(c.row.disposition, sizeof(c.row.disposition), "reject");
    if (cfg->count_stage == CFG_COUNT_EOM && !rejected)
        m->count = vd_count_pack(&c);
    else
        vd_count_now(v, &c);
}

/* vd_accept: the message has an accepted RCPT: greylisting is over for it. */
static void vd_accept(struct vd_msg *m)
{
    m->grey_active = 0;
    free(m->grey_ctx);
    free(m->grey_rcpt);
    m->grey_ctx = m->grey_rcpt = NULL;
}

static void vd_grey_stat(struct vd *v, int verdict)
{
    switch (verdict) {
    case GREY_DEFER:
        v->st.grey_defer++;
        break;
    case GREY_PASS:
    case GREY_PASS_NEW:
        v->st.grey_pass++;
        break;
    case GREY_PASS_AWL:
        v->st.grey_pass_awl++;
        break;
    case GREY_ERROR:
        v->st.grey_errors++;
        break;
    }
}

/* vd_finish: answer the first RCPT (and any request that waited with it).
 * grey is the greylist verdict for it, or -1 when greylisting did not apply. */
static void vd_finish(struct vd_msg *m, int grey, unsigned wait_s)
{
    struct vd *v = m->vd;
    struct vd_eval *ev = m->ev;
    char action[PP_MAX_ACTION + 16];

    m->state = VD_DONE;
    if (grey >= 0)
        vd_grey_stat(v, grey);
    if (grey == GREY_DEFER) {
        grey_format_reply(v->cfg->greylist_action, v->cfg->greylist_text, wait_s, ev->rcpt, action,
                          sizeof(action));
    } else {
        vd_accept(m);          /* passed, not greylisted, or Redis away (fail open) */
        if (m->repeat == NULL) /* a refusal is all a refused message gets */
            vd_headers(m);
        vd_count_msg(m);
        vd_next_action(m, "RCPT", action, sizeof(action));
    }
    if (log_enabled(LOG_L_INFO)) /* the line is built only when it is written */
        vd_log_decision(m, ev, ev->use_dmarc ? &ev->d : NULL, ev->reasons,
                        grey >= 0 ? grey_verdict_name((enum grey_verdict)grey) : NULL, action);
    /* The first waiter is the request that started the evaluation. */
    for (size_t i = 0; i < m->ev->nwaiters; i++) {
        if (i > 0 && grey != GREY_DEFER)
            vd_next_action(m, "RCPT", action, sizeof(action));
        vd_reply(v, m->ev->waiters[i], action);
    }
    m->ev->nwaiters = 0;
    vd_eval_free(m);
}

static void vd_grey_first_cb(void *arg, const struct rgrey_result *r)
{
    struct vd_msg *m = arg;

    m->ev->greq = NULL; /* freed by rgrey when this returns */
    vd_finish(m, (int)r->verdict, r->wait_s);
}

/* vd_grey_accept: a later RCPT of a greylisted message is accepted (its
 * triplet passed, its recipient is whitelisted, or the store failed open):
 * the message is evaluated again for it, from the caches in the common case,
 * and that RCPT gets the first header. */
static void vd_grey_accept(struct vd *v, struct vd_msg *m, struct srv_conn *c, const char *rcpt)
{
    struct vd_eval *ev = vd_eval_new(v);

    if (ev == NULL) {
        vd_accept(m);
        vd_reply(v, c, "DUNNO");
        return;
    }
    vd_eval_fill(ev, vd_ctx_field(m->grey_ctx, 0), vd_ctx_field(m->grey_ctx, 2),
                 vd_ctx_field(m->grey_ctx, 1), rcpt, vd_ctx_field(m->grey_ctx, 3));
    ev->again = 1;
    vd_accept(m);
    m->ev = ev;
    m->state = VD_PENDING;
    ev->waiters[ev->nwaiters++] = c;
    if (vd_start(v, m) < 0) {
        log_msg(LOG_L_ERROR, "cannot evaluate message %s again", m->instance);
        ev->nwaiters = 0;
        vd_eval_free(m);
        m->state = VD_DONE;
        vd_reply(v, c, "DUNNO");
    }
}

/* vd_grey_rcpt_cb: the answer for a later RCPT of a greylisted message. */
static void vd_grey_rcpt_cb(void *arg, const struct rgrey_result *r)
{
    struct vd_msg *m = arg;
    struct vd *v = m->vd;
    struct srv_conn *c = m->grey_conn;
    char action[PP_MAX_ACTION + 16], rcpt[SPF_DOMAIN_MAX * 2];

    m->greq = NULL;
    m->grey_conn = NULL;
    vd_grey_stat(v, (int)r->verdict);
    log_kv(LOG_L_INFO, "greylist", "instance", m->instance, "rcpt", m->grey_rcpt, "result",
           grey_verdict_name(r->verdict), NULL);
    if (r->verdict == GREY_DEFER) {
        grey_format_reply(v->cfg->greylist_action, v->cfg->greylist_text, r->wait_s, m->grey_rcpt,
                          action, sizeof(action));
        vd_reply(v, c, action);
        return;
    }
    vd_copy(rcpt, sizeof(rcpt), m->grey_rcpt);
    vd_grey_accept(v, m, c, rcpt);
}

/* vd_grey_rcpt: a later RCPT of a message whose earlier RCPTs were all
 * greylisted: its own triplet decides. */
static void vd_grey_rcpt(struct vd *v, struct vd_msg *m, struct srv_conn *c, const char *rcpt)
{
    struct grey_triplet t;
    int listed = v->wl && grey_wl_match_recipient(v->wl, rcpt);

    if (listed) {
        v->st.grey_whitelisted++;
    } else if (m->greq == NULL && v->rg &&
               grey_triplet_make(&v->gp, vd_ctx_field(m->grey_ctx, 0), vd_ctx_field(m->grey_ctx, 1),
                                 rcpt, &t) == 0) {
        free(m->grey_rcpt);
        m->grey_rcpt = strdup(rcpt);
        m->greq = m->grey_rcpt
                      ? rgrey_check(v->rg, t.key, t.net, vd_unix_ms(), &v->gp, vd_grey_rcpt_cb, m)
                      : NULL;
        if (m->greq) {
            m->grey_conn = c;
            v->st.grey_checks++;
            return;
        }
    }
    /* Whitelisted recipient, or the check cannot run: accept (fail open). */
    vd_grey_accept(v, m, c, rcpt);
}

static void vd_maybe_decide(struct vd_msg *m)
{
    if (m->ev->spf_done && m->ev->dmarc_done)
        vd_decide(m);
}

static void vd_spf_done(const struct spf_verdict *sv, void *arg)
{
    struct vd_msg *m = arg;

    m->ev->job = NULL;
    m->ev->sv = *sv;
    m->ev->spf_done = 1;
    vd_maybe_decide(m);
}

static void vd_dmarc_done(struct dmarcq_res *res, void *arg)
{
    struct vd_msg *m = arg;

    m->ev->dq = NULL; /* freed by dmarcq when this returns */
    m->ev->dres = res;
    m->ev->disc = &res->res;
    m->ev->exists = res->exists;
    m->ev->dmarc_done = 1;
    vd_maybe_decide(m);
}

/* vd_deadline: the whole evaluation overran evaluation_timeout: what is not
 * known yet is a temperror (never a hang, never "no policy"). */
static void vd_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct vd_msg *m = arg;
    struct vd_eval *ev = m->ev;

    if (!ev->spf_done) {
        spfw_cancel(&ev->job);
        ev->sv.mfrom = SPF_RES_TEMPERROR;
        ev->sv.helo = ev->helo[0] ? SPF_RES_TEMPERROR : SPF_RES_NONE;
        snprintf(ev->sv.problem, sizeof(ev->sv.problem), "evaluation timeout");
        ev->spf_done = 1;
    }
    if (!ev->dmarc_done) {
        dmarcq_cancel(&ev->dq);
        ev->disc = &vd_disc_timeout;
        ev->exists = DMARC_EXIST_UNKNOWN;
        ev->dmarc_done = 1;
    }
    vd_decide(m);
}

static void vd_reply_dunno(struct vd *v, struct srv_conn *c, struct pp_request **req)
{
    pp_request_free(req);
    vd_reply(v, c, "DUNNO");
}

/* vd_no_dmarc: there is no discovery to run (DMARC off, no usable policy
 * domain): the message has no policy. */
static void vd_no_dmarc(struct vd_eval *ev)
{
    ev->disc = &vd_disc_none;
    ev->exists = DMARC_EXIST_UNKNOWN;
    ev->dmarc_done = 1;
}

/* vd_start: begin evaluating a new message. What the caches already know is
 * taken at once; when they know everything (the common case for busy
 * senders), the message is decided before this returns, with no timer, no
 * worker job and no DNS callback. 0, or -1 when nothing could be started
 * (then the caller answers DUNNO and forgets the message). */
static int vd_start(struct vd *v, struct vd_msg *m)
{
    const struct pd_config *cfg = v->cfg;
    struct vd_eval *ev = m->ev;
    unsigned ms = cfg->evaluation_timeout_ms + VD_DEADLINE_SLACK_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    enum dmarc_disc_method method =
        cfg->org_domain_method == CFG_ORG_PSL ? DMARC_DISC_PSL : DMARC_DISC_TREEWALK;
    enum dmarc_mode mode =
        cfg->dmarc_mode == CFG_DMARC_RFC7489 ? DMARC_MODE_RFC7489 : DMARC_MODE_RFC9989;

    ev->started_ms = vd_now_ms();
    if (spfw_cached(v->pool, ev->client, ev->helo, ev->sender, &ev->sv))
        ev->spf_done = 1;
    if (!cfg->dmarc || ev->policy_domain[0] == '\0') {
        vd_no_dmarc(ev);
    } else if ((ev->dres = dmarcq_cached(v->dcache, ev->policy_domain, method, mode)) != NULL) {
        ev->disc = &ev->dres->res;
        ev->exists = ev->dres->exists;
        ev->dmarc_done = 1;
        v->st.dmarc_cache_hits++;
    }
    if (ev->spf_done && ev->dmarc_done) {
        vd_decide(m);
        return 0;
    }
    ev->deadline = evtimer_new(v->base, vd_deadline, m);
    if (ev->deadline == NULL || evtimer_add(ev->deadline, &tv) < 0)
        return -1;
    if (!ev->spf_done) {
        ev->job = spfw_eval(v->pool, ev->client, ev->helo, ev->sender, vd_spf_done, m);
        if (ev->job == NULL)
            return -1;
    }
    if (!ev->dmarc_done) {
        ev->dq = dmarcq_start(v->dns, v->dcache, ev->policy_domain, method, mode,
                              v->psl ? vd_psl_org : NULL, v->psl, vd_dmarc_done, m);
        if (ev->dq == NULL) {
            if (errno == ENOMEM)
                return -1;
            vd_no_dmarc(ev); /* not a usable domain name after all */
            vd_maybe_decide(m);
        }
    }
    return 0;
}

void vd_handle(struct srv_conn *c, struct pp_request *req, void *arg)
{
    struct vd *v = arg;
    const struct pd_config *cfg = v->cfg;
    const char *state, *instance, *client;
    char anon[32], action[PP_MAX_ACTION + 16];
    struct vd_msg *m;
    struct vd_eval *ev;
    uint64_t now = vd_now_ms();
    int trusted, own;

    v->st.requests++;
    if (strcmp(pp_get(req, "request"), "smtpd_access_policy") != 0) {
        /* Not a Postfix policy request: log and close without a reply, as for
         * any request we cannot parse (Postfix would retry). */
        char line[512];

        line[0] = '\0';
        log_kv_append(line, sizeof(line), 0, "request", pp_get(req, "request"));
        log_msg(LOG_L_WARNING, "malformed_request conn=%llu peer=%s reason=\"bad request type\"%s",
                (unsigned long long)srv_conn_id(c), srv_conn_peer(c), line);
        v->st.bad_requests++;
        pp_request_free(&req);
        srv_conn_release(c);
        return;
    }
    state = pp_get(req, "protocol_state");
    {
        static const char *const states[VD_STATES] = VD_STATE_NAMES;
        size_t i;

        for (i = 0; i < VD_STATES - 1 && strcasecmp(state, states[i]) != 0; i++)
            ;
        v->st.requests_by_state[i]++;
    }
    instance = pp_get(req, "instance");
    if (*instance == '\0') {
        /* No instance: nothing to correlate later requests with. */
        snprintf(anon, sizeof(anon), "anon-%llu", (unsigned long long)++v->anon_seq);
        instance = anon;
    }

    m = inst_get(v->msgs, instance, now);
    if (m != NULL) {
        v->st.reused++;
        if (m->state == VD_PENDING && m->ev != NULL) {
            if (m->ev->nwaiters < VD_MAX_WAITERS) {
                m->ev->waiters[m->ev->nwaiters++] = c;
                pp_request_free(&req);
                return;
            }
            vd_reply_dunno(v, c, &req);
            return;
        }
        if (m->grey_active) {
            /* Greylisting is still deciding this message's recipients. */
            if (strcasecmp(state, "RCPT") == 0) {
                char rcpt[SPF_DOMAIN_MAX * 2];

                vd_copy(rcpt, sizeof(rcpt), pp_get(req, "recipient"));
                pp_request_free(&req);
                vd_grey_rcpt(v, m, c, rcpt);
                return;
            }
            vd_reply_dunno(v, c, &req);
            return;
        }
        if (m->count && strcasecmp(state, "END-OF-MESSAGE") == 0) {
            /* count_stage = end-of-message: the message was received. */
            if (v->rc)
                vd_count_packed(v, m->count);
            free(m->count);
            m->count = NULL;
        }
        vd_next_action(m, state, action, sizeof(action));
        pp_request_free(&req);
        vd_reply(v, c, action);
        return;
    }

    /* Decisions are taken once per message, at its first RCPT. */
    if (strcasecmp(state, "RCPT") != 0) {
        vd_reply_dunno(v, c, &req);
        return;
    }

    {
        /* The message and its instance key in one block; malloc + memset
         * rather than calloc, which glibc serves without its thread cache. */
        size_t il = strlen(instance);

        if ((m = malloc(sizeof(*m) + il + 1)) != NULL) {
            memset(m, 0, sizeof(*m));
            m->instance = memcpy((char *)(m + 1), instance, il + 1);
        }
    }
    ev = vd_eval_new(v);
    if (m == NULL || ev == NULL) {
        free(m);
        fl_put(&v->ev_fl, ev);
        log_msg(LOG_L_ERROR, "out of memory for message %s", instance);
        vd_reply_dunno(v, c, &req);
        return;
    }
    m->vd = v;
    m->ev = ev;
    client = pp_get(req, "client_address");
    vd_eval_fill(ev, client, pp_get(req, "helo_name"), pp_get(req, "sender"),
                 pp_get(req, "recipient"), pp_get(req, "client_name"));
    v->st.messages++;

    trusted = cidr_list_match(v->trusted, client);
    own = *cfg->report_email && strcasecmp(ev->sender, cfg->report_email) == 0;
    if (trusted || own || (cfg->skip_authenticated && *pp_get(req, "sasl_username") != '\0')) {
        if (trusted)
            v->st.skipped_trusted++;
        else if (own)
            v->st.skipped_own++;
        else
            v->st.skipped_authenticated++;
        m->state = VD_SKIPPED;
        if (log_enabled(LOG_L_INFO))
            vd_log_skip(m, ev, trusted ? "trusted_network" : own ? "own_reports" : "authenticated");
        vd_eval_free(m);
        if (inst_put(v->msgs, m->instance, m, now) < 0)
            vd_msg_free(m);
        vd_reply_dunno(v, c, &req);
        return;
    }

    m->state = VD_PENDING;
    m->ev->waiters[m->ev->nwaiters++] = c;
    pp_request_free(&req);
    if (inst_put(v->msgs, m->instance, m, now) < 0) {
        m->ev->nwaiters = 0;
        vd_msg_free(m);
        vd_reply(v, c, "DUNNO");
        return;
    }
    v->st.evaluated++;
    if (vd_start(v, m) < 0) {
        /* Out of memory: answer now and forget the message. */
        char key[256];

        /* The table frees m (and its key copy) while deleting: use our own. */
        snprintf(key, sizeof(key), "%s", m->instance);
        log_msg(LOG_L_ERROR, "cannot start the evaluation of message %s", key);
        if (m->ev != NULL)
            m->ev->nwaiters = 0;
        m->state = VD_SKIPPED;
        vd_reply(v, c, "DUNNO");
        inst_del(v->msgs, key);
    }
}
