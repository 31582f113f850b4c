/* test_dmarcq.c - DMARC discovery end to end on a real libevent loop: the
 * resolver (src/dns.c) against the loopback test responder
 * (t/unit/dns_responder.c). Checks the questions that reach the wire, the
 * existence check (asked only when it can matter, in parallel, NXDOMAIN x3 ->
 * does not exist), SERVFAIL and timeout -> temperror, split TXT strings, PSL
 * mode, cancellation and deferred callbacks. Nothing leaves 127.0.0.1. */
#include "dmarcq.h"
#include "dns_responder.h"
#include "tap.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SOA "test. 300 IN SOA ns.test. host.test. 1 7200 900 1209600 60"
#define E(n, t, m, ...)                                                                            \
    {                                                                                              \
        .name = n, .type = t, .mode = m, .soa = SOA, .rrs = { __VA_ARGS__ }                        \
    }
#define NX(n, t) E(n, t, RSP_NXDOMAIN, NULL)

static struct rsp_entry table[] = {
    NX("_dmarc.test.", DNS_T_TXT),
    /* a subdomain that does not exist, under a domain with a record */
    NX("_dmarc.ghost.example.test.", DNS_T_TXT),
    E("_dmarc.example.test.", DNS_T_TXT, RSP_ANSWER,
      "_dmarc.example.test. 300 IN TXT \"v=DMARC1; p=reject; sp=quarantine; np=\" \"reject\""),
    NX("ghost.example.test.", DNS_T_A),
    NX("ghost.example.test.", DNS_T_AAAA),
    NX("ghost.example.test.", DNS_T_MX),
    /* an existing subdomain (A), no _dmarc of its own */
    NX("_dmarc.host.example.test.", DNS_T_TXT),
    E("host.example.test.", DNS_T_A, RSP_ANSWER, "host.example.test. 300 IN A 192.0.2.1"),
    E("host.example.test.", DNS_T_AAAA, RSP_ANSWER, NULL),
    E("host.example.test.", DNS_T_MX, RSP_ANSWER, NULL),
    /* existence unknown: one lookup fails */
    NX("_dmarc.flaky.example.test.", DNS_T_TXT),
    E("flaky.example.test.", DNS_T_A, RSP_SERVFAIL, NULL),
    NX("flaky.example.test.", DNS_T_AAAA),
    NX("flaky.example.test.", DNS_T_MX),
    /* the record at the policy domain itself: no existence check */
    E("_dmarc.own.test.", DNS_T_TXT, RSP_ANSWER, "_dmarc.own.test. 300 IN TXT \"v=DMARC1; p=none\"",
      "_dmarc.own.test. 300 IN TXT \"unrelated text\""),
    NX("own.test.", DNS_T_A),
    /* SERVFAIL and silence at a _dmarc name */
    E("_dmarc.broken.test.", DNS_T_TXT, RSP_SERVFAIL, NULL),
    E("_dmarc.silent.test.", DNS_T_TXT, RSP_SILENT, NULL),
    /* SERVFAIL above a found record */
    NX("_dmarc.a.sfparent.test.", DNS_T_TXT),
    E("_dmarc.sfparent.test.", DNS_T_TXT, RSP_ANSWER,
      "_dmarc.sfparent.test. 300 IN TXT \"v=DMARC1; p=reject\""),
    /* no record anywhere */
    NX("_dmarc.nothing.test.", DNS_T_TXT),
    NX("nothing.test.", DNS_T_A),
    /* PSL mode: org domain by the caller's function */
    NX("_dmarc.x.y.org.test.", DNS_T_TXT),
    E("_dmarc.org.test.", DNS_T_TXT, RSP_ANSWER,
      "_dmarc.org.test. 300 IN TXT \"v=DMARC1; p=quarantine; psd=n\""),
    NX("x.y.org.test.", DNS_T_A),
    NX("x.y.org.test.", DNS_T_AAAA),
    NX("x.y.org.test.", DNS_T_MX),
    {.name = NULL},
};

static struct event_base *base;
static struct rsp rsp;

struct got {
    int called;
    struct dmarc_disc_result res;
    enum dmarc_exist exists;
};

static void on_done(const struct dmarc_disc_result *res, enum dmarc_exist exists, void *arg)
{
    struct got *g = arg;

    g->called++;
    g->res = *res;
    g->exists = exists;
}

static void run_until(const int *flag, unsigned ms)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (flag && *flag)
            return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > (long)ms)
            return;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
}

static int count(const char *name, uint16_t type)
{
    struct rsp_entry *e = rsp_find(&rsp, name, type);

    return e ? e->count : -1;
}

static int org_last2(void *ctx, const char *domain, char *out, size_t outlen)
{
    const char *p = domain + strlen(domain);
    int dots = 0;

    (void)ctx;
    while (p > domain)
        if (*--p == '.' && ++dots == 2) {
            p++;
            break;
        }
    snprintf(out, outlen, "%s", p);
    return 0;
}

struct qcase {
    const char *label, *pd;
    enum dmarc_disc_method method;
    enum dmarc_disc_status status;
    const char *record_domain;
    enum dmarc_exist exists;
    enum dmarc_policy p, np;
    int exist_queries; /* A+AAAA+MX lookups that reached the responder (-1: skip) */
    const char *exist_name;
};

static const struct qcase qcases[] = {
    {"nonexistent subdomain: record of the parent, NXDOMAIN x3", "ghost.example.test",
     DMARC_DISC_TREEWALK, DMARC_DISC_FOUND, "example.test", DMARC_EXIST_NO, DMARC_P_REJECT,
     DMARC_P_REJECT, 3, "ghost.example.test."},
    {"existing subdomain: exists", "host.example.test", DMARC_DISC_TREEWALK, DMARC_DISC_FOUND,
     "example.test", DMARC_EXIST_YES, DMARC_P_REJECT, DMARC_P_REJECT, -1, NULL},
    {"existence lookup fails: unknown", "flaky.example.test", DMARC_DISC_TREEWALK, DMARC_DISC_FOUND,
     "example.test", DMARC_EXIST_UNKNOWN, DMARC_P_REJECT, DMARC_P_REJECT, -1,
     NULL}, /* (the resolver may retry the SERVFAIL: no exact count) */
    {"record at the policy domain: no existence check", "own.test", DMARC_DISC_TREEWALK,
     DMARC_DISC_FOUND, "own.test", DMARC_EXIST_YES, DMARC_P_NONE, DMARC_P_UNSET, 0, "own.test."},
    {"SERVFAIL at _dmarc: temperror", "broken.test", DMARC_DISC_TREEWALK, DMARC_DISC_TEMPERROR, "",
     DMARC_EXIST_YES, DMARC_P_UNSET, DMARC_P_UNSET, -1, NULL},
    {"timeout at _dmarc: temperror", "silent.test", DMARC_DISC_TREEWALK, DMARC_DISC_TEMPERROR, "",
     DMARC_EXIST_YES, DMARC_P_UNSET, DMARC_P_UNSET, -1, NULL},
    {"no record anywhere: none, no existence check", "nothing.test", DMARC_DISC_TREEWALK,
     DMARC_DISC_NONE, "", DMARC_EXIST_YES, DMARC_P_UNSET, DMARC_P_UNSET, 0, "nothing.test."},
    {"PSL mode: org domain's record", "x.y.org.test", DMARC_DISC_PSL, DMARC_DISC_FOUND, "org.test",
     DMARC_EXIST_NO, DMARC_P_QUARANTINE, DMARC_P_UNSET, 3, "x.y.org.test."},
};

static int exist_count(const char *name)
{
    int n = 0;
    uint16_t t[3] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX};

    for (int i = 0; i < 3; i++) {
        int c = count(name, t[i]);

        n += c > 0 ? c : 0;
    }
    return n;
}

int main(void)
{
    struct dns_config cfg;
    struct dns_resolver *r;
    char buf[64];

    base = event_base_new();
    if (!ok(rsp_start(&rsp, base, AF_INET, table) == 0, "responder on 127.0.0.1"))
        return tap_done();
    dns_config_defaults(&cfg);
    cfg.timeout_ms = 150;
    cfg.attempts = 2;
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", rsp.port);
    ok(dns_parse_server(buf, &cfg.servers[0], &cfg.server_lens[0]) == 0, "server %s", buf);
    cfg.nservers = 1;
    r = dns_new(base, &cfg);
    ok(r != NULL, "resolver");

    for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++) {
        const struct qcase *c = &qcases[i];
        struct got g = {0};
        struct dmarcq *q;

        q = dmarcq_start(r, c->pd, c->method, DMARC_MODE_RFC9989, org_last2, NULL, on_done, &g);
        ok(q != NULL, "%s: started", c->label);
        is_int(g.called, 0, "%s: callback deferred", c->label);
        run_until(&g.called, 3000);
        is_int(g.called, 1, "%s: called once", c->label);
        is_str(dmarc_disc_status_name(g.res.status), dmarc_disc_status_name(c->status),
               "%s: status", c->label);
        is_str(g.res.record_domain, c->record_domain, "%s: record domain", c->label);
        is_int(g.exists, c->exists, "%s: exists", c->label);
        if (c->status == DMARC_DISC_FOUND) {
            is_int(g.res.rec.p, c->p, "%s: p", c->label);
            is_int(g.res.rec.np, c->np, "%s: np (split TXT strings joined)", c->label);
        }
        if (c->exist_queries >= 0)
            is_int(exist_count(c->exist_name), c->exist_queries, "%s: existence questions",
                   c->label);
    }

    /* The walk asks what the state machine says, in order, and no more. */
    is_int(count("_dmarc.ghost.example.test.", DNS_T_TXT), 1, "walk: _dmarc.ghost asked once");
    is_int(count("_dmarc.test.", DNS_T_TXT) > 0, 1, "walk: reached _dmarc.test");
    is_int(count("_dmarc.broken.test.", DNS_T_TXT) >= 1, 1, "SERVFAIL name was asked");

    /* SERVFAIL above a record found: temperror, the existence check dropped. */
    {
        struct got g = {0};
        struct dmarcq *q = dmarcq_start(r, "a.sfparent.test", DMARC_DISC_TREEWALK,
                                        DMARC_MODE_RFC9989, NULL, NULL, on_done, &g);
        struct rsp_entry *e = rsp_find(&rsp, "_dmarc.test.", DNS_T_TXT);

        /* Make the TLD lookup fail this time (the cache holds an NXDOMAIN
         * for _dmarc.test only as long as its negative TTL, so use a fresh
         * resolver to be sure the failure is seen). */
        dmarcq_cancel(&q);
        ok(q == NULL, "cancel NULLs the handle");
        e->mode = RSP_SERVFAIL;
        {
            struct dns_resolver *r2 = dns_new(base, &cfg);

            q = dmarcq_start(r2, "a.sfparent.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL,
                             NULL, on_done, &g);
            run_until(&g.called, 3000);
            is_int(g.called, 1, "SERVFAIL above a record: called once");
            is_str(dmarc_disc_status_name(g.res.status), "temperror",
                   "SERVFAIL above a record: temperror, not the record");
            is_str(g.res.tempfail_name, "_dmarc.test", "SERVFAIL above a record: failing name");
            dns_free(&r2);
        }
        e->mode = RSP_NXDOMAIN;
    }

    /* Cancel before any answer: the callback never runs. */
    {
        struct got g = {0};
        struct dmarcq *q = dmarcq_start(r, "nothing.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989,
                                        NULL, NULL, on_done, &g);

        ok(q != NULL, "cancel case started");
        dmarcq_cancel(&q);
        run_until(NULL, 300);
        is_int(g.called, 0, "cancelled: no callback");
        dmarcq_cancel(&q); /* NULL-safe */
    }

    /* A cached answer still completes later, never inside dmarcq_start. */
    {
        struct got g = {0};
        struct dmarcq *q = dmarcq_start(r, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989,
                                        NULL, NULL, on_done, &g);

        is_int(g.called, 0, "cached: not called synchronously");
        run_until(&g.called, 1000);
        is_int(g.called, 1, "cached: called from the loop");
        (void)q;
    }

    /* Not a domain: NULL, EINVAL, no callback. */
    {
        struct got g = {0};

        errno = 0;
        ok(dmarcq_start(r, "bad..name", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
                        on_done, &g) == NULL &&
               errno == EINVAL,
           "invalid domain: NULL, EINVAL");
        run_until(NULL, 50);
        is_int(g.called, 0, "invalid domain: no callback");
    }

    dns_free(&r);
    rsp_stop(&rsp);
    event_base_free(base);
    return tap_done();
}
