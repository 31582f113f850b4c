/* vd.c - the verdict for each policy request (see vd.h).
 *
 * A message (instance) goes through three states:
 *   PENDING  the first RCPT started an SPF evaluation; requests of the same
 *            message that arrive meanwhile wait for it (they cannot normally:
 *            smtpd waits for our answer, but a second policy connection of
 *            the same smtpd could) and are answered with the same decision
 *   DONE     decided; the remaining headers (spf_headers = both) go out one
 *            per later request, then DUNNO
 *   SKIPPED  trusted or authenticated: DUNNO for every request
 * The message entry lives in the instance table (bounded, expiring). If the
 * table drops a PENDING entry (full), its waiters are answered DUNNO at once,
 * which is Postfix's own default_action, so nothing is lost but a header. */
#include "vd.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "cidr.h"
#include "hdr.h"
#include "inst.h"
#include "log.h"
#include "pp.h"
#include "san.h"
#include "spfres.h"
#include "spfw.h"
#include "srv.h"

#define VD_MAX_HEADERS 2
#define VD_MAX_WAITERS 8 /* more concurrent requests for one message is abuse */
#define VD_LOG_VALUE_MAX 256

enum vd_msg_state { VD_PENDING, VD_DONE, VD_SKIPPED };

struct vd_msg {
    struct vd *vd;
    enum vd_msg_state state;
    char *instance;                           /* owned copy (key of the table entry) */
    struct spfw_job *job;                     /* while PENDING */
    struct srv_conn *waiters[VD_MAX_WAITERS]; /* first = the request that started it */
    size_t nwaiters;
    char headers[VD_MAX_HEADERS][HDR_MAX + 1];
    size_t nheaders, next_header;
    /* Request values needed when the verdict arrives (copied: the request is
     * freed as soon as the evaluation starts). */
    char client[64], helo[SPF_DOMAIN_MAX], sender[SPF_DOMAIN_MAX * 2], rcpt[SPF_DOMAIN_MAX * 2];
};

struct vd {
    const struct pd_config *cfg;
    struct spfw_pool *pool;
    struct cidr_list *trusted;
    struct inst_table *msgs;
    struct vd_stats st;
    uint64_t anon_seq; /* for requests without an instance attribute */
};

static uint64_t vd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* vd_copy: bounded copy of a request value into a fixed field. Values are
 * kept raw here (SPF needs them exact); they are sanitised where they are
 * written into a header or a log line. */
static void vd_copy(char *dst, size_t sz, const char *src)
{
    size_t n = strnlen(src, sz - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void vd_msg_free(void *p)
{
    struct vd_msg *m = p;

    if (m == NULL)
        return;
    /* Evicted while an evaluation runs: answer the waiters with Postfix's own
     * default rather than leaving smtpd waiting for its policy timeout. */
    if (m->state == VD_PENDING) {
        spfw_cancel(&m->job);
        for (size_t i = 0; i < m->nwaiters; i++)
            srv_reply(m->waiters[i], "DUNNO");
        m->nwaiters = 0;
    }
    free(m->instance);
    free(m);
}

static int vd_apply(struct vd *v, const struct pd_config *cfg, char *err, size_t errlen)
{
    struct cidr_list *t;

    t = cidr_list_parse((const char *const *)cfg->trusted_networks.items, cfg->trusted_networks.n,
                        err, errlen);
    if (t == NULL)
        return -1;
    cidr_list_free(&v->trusted);
    v->trusted = t;
    v->cfg = cfg;
    if (v->msgs)
        inst_set_limits(v->msgs, cfg->instance_table_size, cfg->instance_timeout_ms);
    return 0;
}

struct vd *vd_new(const struct pd_config *cfg, struct spfw_pool *pool, char *err, size_t errlen)
{
    struct vd *v = calloc(1, sizeof(*v));

    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    v->pool = pool;
    v->msgs = inst_new(cfg->instance_table_size, cfg->instance_timeout_ms, vd_msg_free);
    if (v->msgs == NULL || vd_apply(v, cfg, err, errlen) < 0) {
        if (v->msgs == NULL)
            snprintf(err, errlen, "out of memory");
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
    cidr_list_free(&v->trusted);
    free(v);
}

void vd_expire(struct vd *v)
{
    inst_expire(v->msgs, vd_now_ms());
}

void vd_get_stats(struct vd *v, struct vd_stats *out)
{
    *out = v->st;
}

/* vd_log_decision: the one line per message. */
static void vd_log_decision(const struct vd_msg *m, const char *spf, const char *spf_domain,
                            const char *helo_spf, const char *action, const char *reason,
                            const char *problem)
{
    char line[2048];
    size_t len = 0;

    line[0] = '\0';
    len = log_kv_append(line, sizeof(line), len, "instance", m->instance);
    len = log_kv_append(line, sizeof(line), len, "client", m->client);
    len = log_kv_append(line, sizeof(line), len, "helo", m->helo);
    len = log_kv_append(line, sizeof(line), len, "sender", m->sender);
    len = log_kv_append(line, sizeof(line), len, "rcpt", m->rcpt);
    if (spf) {
        len = log_kv_append(line, sizeof(line), len, "spf", spf);
        len = log_kv_append(line, sizeof(line), len, "spf_domain", spf_domain);
        len = log_kv_append(line, sizeof(line), len, "helo_spf", helo_spf);
    }
    len = log_kv_append(line, sizeof(line), len, "action", action);
    if (reason && *reason)
        len = log_kv_append(line, sizeof(line), len, "reason", reason);
    if (problem && *problem)
        len = log_kv_append(line, sizeof(line), len, "problem", problem);
    log_msg(LOG_L_INFO, "decision%s", line);
}

/* vd_next_action: the action for a request of a decided message. A pending
 * header is never spent on an END-OF-MESSAGE request: Postfix cannot PREPEND
 * there (access(5)), so it would be lost. */
static void vd_next_action(struct vd_msg *m, const char *state, char *action, size_t sz)
{
    if (m->state == VD_DONE && m->next_header < m->nheaders &&
        strcasecmp(state, "END-OF-MESSAGE") != 0)
        snprintf(action, sz, "PREPEND %s", m->headers[m->next_header++]);
    else
        snprintf(action, sz, "DUNNO");
}

static void vd_spf_done(const struct spf_verdict *sv, void *arg)
{
    struct vd_msg *m = arg;
    struct vd *v = m->vd;
    const struct pd_config *cfg = v->cfg;
    struct hdr_spf h;
    char action[HDR_MAX + 16];
    int null_sender = m->sender[0] == '\0';

    m->job = NULL;
    if ((unsigned)sv->mfrom < sizeof(v->st.spf) / sizeof(v->st.spf[0]))
        v->st.spf[sv->mfrom]++;

    memset(&h, 0, sizeof(h));
    h.result = sv->mfrom;
    h.identity_helo = null_sender;
    h.client_ip = m->client;
    h.helo = m->helo;
    h.envelope_from = m->sender;
    h.domain = sv->mfrom_domain;
    h.receiver = cfg->hostname;
    h.problem = sv->problem;
    h.authserv_id = cfg->authserv_id;

    m->nheaders = 0;
    if (cfg->spf_headers == CFG_HDR_RECEIVED_SPF || cfg->spf_headers == CFG_HDR_BOTH)
        if (hdr_received_spf(m->headers[m->nheaders], sizeof(m->headers[0]), &h) > 0)
            m->nheaders++;
    if (cfg->spf_headers == CFG_HDR_AUTH_RESULTS || cfg->spf_headers == CFG_HDR_BOTH)
        if (hdr_auth_results(m->headers[m->nheaders], sizeof(m->headers[0]), &h) > 0)
            m->nheaders++;
    m->next_header = 0;
    m->state = VD_DONE;

    /* The first waiter is the request that started the evaluation. */
    for (size_t i = 0; i < m->nwaiters; i++) {
        vd_next_action(m, "RCPT", action, sizeof(action));
        if (i == 0)
            vd_log_decision(m, spf_res_name(sv->mfrom), sv->mfrom_domain, spf_res_name(sv->helo),
                            m->nheaders ? "PREPEND" : "DUNNO", NULL, sv->problem);
        srv_reply(m->waiters[i], action);
    }
    m->nwaiters = 0;
}

static void vd_reply_dunno(struct srv_conn *c, struct pp_request **req)
{
    pp_request_free(req);
    srv_reply(c, "DUNNO");
}

void vd_handle(struct srv_conn *c, struct pp_request *req, void *arg)
{
    struct vd *v = arg;
    const struct pd_config *cfg = v->cfg;
    const char *state, *instance, *client;
    char anon[32], action[HDR_MAX + 16];
    struct vd_msg *m;
    uint64_t now = vd_now_ms();

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
    instance = pp_get(req, "instance");
    if (*instance == '\0') {
        /* No instance: nothing to correlate later requests with. */
        snprintf(anon, sizeof(anon), "anon-%llu", (unsigned long long)++v->anon_seq);
        instance = anon;
    }

    m = inst_get(v->msgs, instance, now);
    if (m != NULL) {
        v->st.reused++;
        if (m->state == VD_PENDING) {
            if (m->nwaiters < VD_MAX_WAITERS) {
                m->waiters[m->nwaiters++] = c;
                pp_request_free(&req);
                return;
            }
            vd_reply_dunno(c, &req);
            return;
        }
        vd_next_action(m, state, action, sizeof(action));
        pp_request_free(&req);
        srv_reply(c, action);
        return;
    }

    /* Decisions are taken once per message, at its first RCPT. */
    if (strcasecmp(state, "RCPT") != 0) {
        vd_reply_dunno(c, &req);
        return;
    }

    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->instance = strdup(instance)) == NULL) {
        free(m);
        log_msg(LOG_L_ERROR, "out of memory for message %s", instance);
        vd_reply_dunno(c, &req);
        return;
    }
    m->vd = v;
    client = pp_get(req, "client_address");
    vd_copy(m->client, sizeof(m->client), client);
    vd_copy(m->helo, sizeof(m->helo), pp_get(req, "helo_name"));
    vd_copy(m->sender, sizeof(m->sender), pp_get(req, "sender"));
    vd_copy(m->rcpt, sizeof(m->rcpt), pp_get(req, "recipient"));
    v->st.messages++;

    if (cidr_list_match(v->trusted, client) ||
        (cfg->skip_authenticated && *pp_get(req, "sasl_username") != '\0')) {
        int trusted = cidr_list_match(v->trusted, client);

        if (trusted)
            v->st.skipped_trusted++;
        else
            v->st.skipped_authenticated++;
        m->state = VD_SKIPPED;
        vd_log_decision(m, NULL, NULL, NULL, "DUNNO", trusted ? "trusted_network" : "authenticated",
                        NULL);
        if (inst_put(v->msgs, m->instance, m, now) < 0)
            vd_msg_free(m);
        vd_reply_dunno(c, &req);
        return;
    }

    m->state = VD_PENDING;
    m->waiters[m->nwaiters++] = c;
    pp_request_free(&req);
    if (inst_put(v->msgs, m->instance, m, now) < 0) {
        m->nwaiters = 0;
        m->state = VD_SKIPPED;
        vd_msg_free(m);
        srv_reply(c, "DUNNO");
        return;
    }
    v->st.evaluated++;
    m->job = spfw_eval(v->pool, m->client, m->helo, m->sender, vd_spf_done, m);
    if (m->job == NULL) {
        /* Out of memory: answer now and forget the message. */
        log_msg(LOG_L_ERROR, "cannot start SPF evaluation for message %s", m->instance);
        m->nwaiters = 0;
        m->state = VD_SKIPPED;
        srv_reply(c, "DUNNO");
        inst_del(v->msgs, instance);
    }
}
