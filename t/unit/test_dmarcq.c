/* test_dmarcq.c - DMARC discovery end to end on a real libevent loop: the
 * resolver (src/dns.c) against the loopback test responder
 * (t/unit/dns_responder.c). Checks the questions that reach the wire, the
 * existence check (asked only when it can matter, in parallel, NXDOMAIN x3 ->
 * does not exist), SERVFAIL and timeout -> temperror, split TXT strings, PSL
 * mode, cancellation and deferred callbacks, and the result cache (what is
 * kept, for how long, under which key). Nothing leaves 127.0.0.1. */
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
    /* a record with a one-second TTL (the result cache must not outlive it) */
    E("_dmarc.short.test.", DNS_T_TXT, RSP_ANSWER,
      "_dmarc.short.test. 1 IN TXT \"v=DMARC1; p=quarantine\""),
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

static void on_done(struct dmarcq_res *res, void *arg)
{
    struct got *g = arg;

    g->called++;
    g->res = res->res;
    g->exists = res->exists;
    dmarcq_res_unref(&res);
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

    struct dmarcq_cache *cache = dmarcq_cache_new(16, 60000);

    ok(cache != NULL, "result cache");
    for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++) {
        const struct qcase *c = &qcases[i];
        struct got g = {0};
        struct dmarcq *q;
        struct dmarcq_res *hit;

        q = dmarcq_start(r, cache, c->pd, c->method, DMARC_MODE_RFC9989, org_last2, NULL, on_done,
                         &g);
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
        /* Kept only when every answer was conclusive: not a temperror, not an
         * existence check that failed. */
        hit = dmarcq_cached(cache, c->pd, c->method, DMARC_MODE_RFC9989);
        if (c->status == DMARC_DISC_TEMPERROR || c->exists == DMARC_EXIST_UNKNOWN) {
            ok(hit == NULL, "%s: not cached", c->label);
        } else if (ok(hit != NULL, "%s: cached", c->label)) {
            is_str(dmarc_disc_status_name(hit->res.status), dmarc_disc_status_name(c->status),
                   "%s: cached status", c->label);
            is_str(hit->res.record_domain, c->record_domain, "%s: cached record domain", c->label);
            is_int(hit->exists, c->exists, "%s: cached existence", c->label);
        }
        dmarcq_res_unref(&hit);
    }

    /* The cache key: case and a trailing dot do not matter; method and mode do. */
    {
        struct dmarcq_res *a =
            dmarcq_cached(cache, "HOST.Example.TEST.", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989);
        struct dmarcq_res *b =
            dmarcq_cached(cache, "host.example.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989);

        ok(a != NULL && a == b, "cache: one shared result whatever the spelling");
        ok(a == NULL || a->refs == 3, "cache: the cache and both callers hold references");
        dmarcq_res_unref(&a);
        ok(a == NULL, "unref NULLs the pointer");
        dmarcq_res_unref(&b);
        ok(dmarcq_cached(cache, "host.example.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC7489) ==
               NULL,
           "cache: another mode misses");
        ok(dmarcq_cached(cache, "host.example.test", DMARC_DISC_PSL, DMARC_MODE_RFC9989) == NULL,
           "cache: another method misses");
        ok(dmarcq_cached(cache, "bad..name", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989) == NULL,
           "cache: a bad name misses");
        ok(dmarcq_cached(NULL, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989) == NULL,
           "cache: NULL cache misses");
    }

    /* The shortest DNS TTL bounds the entry: a record with TTL 1 s is gone
     * after it, and asked again. */
    {
        struct got g = {0};
        struct dmarcq_res *hit;
        int before;

        dmarcq_start(r, cache, "short.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
                     on_done, &g);
        run_until(&g.called, 3000);
        before = count("_dmarc.short.test.", DNS_T_TXT);
        hit = dmarcq_cached(cache, "short.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989);
        ok(hit != NULL && hit->res.rec.p == DMARC_P_QUARANTINE, "TTL 1: cached at first");
        dmarcq_res_unref(&hit);
        run_until(NULL, 1100);
        ok(dmarcq_cached(cache, "short.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989) == NULL,
           "TTL 1: gone after a second");
        g.called = 0;
        dmarcq_start(r, cache, "short.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
                     on_done, &g);
        run_until(&g.called, 3000);
        is_int(count("_dmarc.short.test.", DNS_T_TXT), before + 1, "TTL 1: asked again");
    }

    /* The configured cap (verdict_cache_ttl) bounds it too; 0 disables. */
    {
        struct dmarcq_cache *c2 = dmarcq_cache_new(16, 50);
        struct got g = {0};
        struct dmarcq_res *hit;

        dmarcq_start(r, c2, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
                     on_done, &g);
        run_until(&g.called, 3000);
        hit = dmarcq_cached(c2, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989);
        ok(hit != NULL, "cap 50 ms: cached at first");
        dmarcq_res_unref(&hit);
        run_until(NULL, 120);
        ok(dmarcq_cached(c2, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989) == NULL,
           "cap 50 ms: gone after 120 ms");
        dmarcq_cache_set_ttl(c2, 60000);
        g.called = 0;
        dmarcq_start(r, c2, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
                     on_done, &g);
        run_until(&g.called, 3000);
        is_int((int)dmarcq_cache_count(c2), 1, "cap raised: one entry");
        dmarcq_cache_set_ttl(c2, 0);
        is_int((int)dmarcq_cache_count(c2), 0, "cap 0: emptied");
        ok(dmarcq_cached(c2, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989) == NULL,
           "cap 0: misses");
        g.called = 0;
        dmarcq_start(r, c2, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
                     on_done, &g);
        run_until(&g.called, 3000);
        is_int((int)dmarcq_cache_count(c2), 0, "cap 0: nothing kept");
        dmarcq_cache_free(&c2);
        ok(c2 == NULL, "cache_free NULLs the pointer");
    }

    /* Bounded: the oldest entry goes first. */
    {
        struct dmarcq_cache *c3 = dmarcq_cache_new(1, 60000);
        const char *names[2] = {"own.test", "nothing.test"};

        for (int i = 0; i < 2; i++) {
            struct got g = {0};

            dmarcq_start(r, c3, names[i], DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
                         on_done, &g);
            run_until(&g.called, 3000);
        }
        is_int((int)dmarcq_cache_count(c3), 1, "size 1: one entry");
        ok(dmarcq_cached(c3, "own.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989) == NULL,
           "size 1: the older one was evicted");
        struct dmarcq_res *hit =
            dmarcq_cached(c3, "nothing.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989);
        ok(hit != NULL && hit->res.status == DMARC_DISC_NONE, "size 1: the newer NONE is kept");
        dmarcq_res_unref(&hit);
        dmarcq_cache_free(&c3);
    }
    dmarcq_cache_free(&cache);

    /* The walk asks what the state machine says, in order, and no more. */
    is_int(count("_dmarc.ghost.example.test.", DNS_T_TXT), 1, "walk: _dmarc.ghost asked once");
    is_int(count("_dmarc.test.", DNS_T_TXT) > 0, 1, "walk: reached _dmarc.test");
    is_int(count("_dmarc.broken.test.", DNS_T_TXT) >= 1, 1, "SERVFAIL name was asked");

    /* SERVFAIL above a record found: temperror, the existence check dropped. */
    {
        struct got g = {0};
        struct dmarcq *q = dmarcq_start(r, NULL, "a.sfparent.test", DMARC_DISC_TREEWALK,
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

            q = dmarcq_start(r2, NULL, "a.sfparent.test", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989,
                             NULL, NULL, on_done, &g);
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
        struct dmarcq *q = dmarcq_start(r, NULL, "nothing.test", DMARC_DISC_TREEWALK,
                                        DMARC_MODE_RFC9989, NULL, NULL, on_done, &g);

        ok(q != NULL, "cancel case started");
        dmarcq_cancel(&q);
        run_until(NULL, 300);
        is_int(g.called, 0, "cancelled: no callback");
        dmarcq_cancel(&q); /* NULL-safe */
    }

    /* A cached answer still completes later, never inside dmarcq_start. */
    {
        struct got g = {0};
        struct dmarcq *q = dmarcq_start(r, NULL, "own.test", DMARC_DISC_TREEWALK,
                                        DMARC_MODE_RFC9989, NULL, NULL, on_done, &g);

        is_int(g.called, 0, "cached: not called synchronously");
        run_until(&g.called, 1000);
        is_int(g.called, 1, "cached: called from the loop");
        (void)q;
    }

    /* Not a domain: NULL, EINVAL, no callback. */
    {
        struct got g = {0};

        errno = 0;
        ok(dmarcq_start(r, NULL, "bad..name", DMARC_DISC_TREEWALK, DMARC_MODE_RFC9989, NULL, NULL,
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
