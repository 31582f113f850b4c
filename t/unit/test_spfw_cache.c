/* test_spfw_cache.c - the SPF verdict cache's domain key, end to end: the real
 * pool (src/spfw.c) forks workers that run the real adapter (src/spfa.c,
 * libspf2), whose DNS goes over IPC to the real resolver (src/dns.c) and from
 * there to the loopback test responder (t/unit/dns_responder.c). Nothing
 * leaves 127.0.0.1.
 *
 * What is checked: a verdict that expanded no local-part macro serves every
 * local part at the domain (pool stats: no new evaluation; spfw_cached hits),
 * one that did (%{l} in exists, %{l} in the exp= text) is kept per sender,
 * and a shared verdict's explanation/problem never carry a local part. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <event2/event.h>

#include "dns.h"
#include "dns_responder.h"
#include "spfw.h"
#include "tap.h"

#define SOA "test. 300 IN SOA ns.test. host.test. 1 7200 900 1209600 60"
#define E(n, t, m, ...)                                                                            \
    {                                                                                              \
        .name = n, .type = t, .mode = m, .soa = SOA, .rrs = { __VA_ARGS__ }                        \
    }
#define TXT(n, text) E(n, DNS_T_TXT, RSP_ANSWER, n " 300 IN TXT \"" text "\"")
#define NX(n, t) E(n, t, RSP_NXDOMAIN, NULL)

static struct rsp_entry table[] = {
    /* no macro at all: one verdict for the whole domain */
    TXT("nolocal.test.", "v=spf1 ip4:192.0.2.1 -all"),
    /* %{l} decides: alice passes, bob fails */
    TXT("exists.test.", "v=spf1 exists:%{l}.x.exists.test -all"),
    E("alice.x.exists.test.", DNS_T_A, RSP_ANSWER, "alice.x.exists.test. 300 IN A 127.0.0.2"),
    NX("bob.x.exists.test.", DNS_T_A),
    /* the explanation carries the local part */
    TXT("exp.test.", "v=spf1 -all exp=why.exp.test"),
    TXT("why.exp.test.", "%{l} is not allowed"),
    /* the explanation carries only the domain and the client */
    TXT("expo.test.", "v=spf1 -all exp=why.expo.test"),
    TXT("why.expo.test.", "%{o} rejects %{c}"),
    /* a temporary failure is kept 2 s only */
    E("sf.test.", DNS_T_TXT, RSP_SERVFAIL, NULL),
    {.name = NULL},
};

static struct event_base *base;
static struct rsp rsp;

struct res {
    int called;
    struct spf_verdict v;
};

static void cb(const struct spf_verdict *v, void *arg)
{
    struct res *r = arg;

    r->called++;
    r->v = *v;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* eval: one spfw_eval, run to completion (or 5 s). */
static struct res eval(struct spfw_pool *p, const char *ip, const char *sender)
{
    struct res r = {0};
    struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 10000};
    uint64_t end = now_ms() + 5000;

    event_add(t, &tv);
    if (spfw_eval(p, ip, "", sender, cb, &r) == NULL)
        diag("spfw_eval failed");
    while (r.called == 0 && now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    ok(r.called == 1, "%s from %s: completed", sender, ip);
    return r;
}

static struct spfw_stats stats(struct spfw_pool *p)
{
    struct spfw_stats s;

    spfw_get_stats(p, &s);
    return s;
}

static int queries(const char *name, uint16_t type)
{
    struct rsp_entry *e = rsp_find(&rsp, name, type);

    return e ? e->count : -1;
}

static void test_domain_key(struct spfw_pool *p)
{
    struct spf_verdict v, fresh;
    struct res r;
    struct spfw_stats s;

    /* the probe on an empty cache: a miss, and no evaluation starts */
    memset(&v, 0x5a, sizeof(v));
    fresh = v;
    is_int(spfw_cached(p, "192.0.2.1", "", "alice@nolocal.test", &v), 0,
           "spfw_cached before any evaluation: miss");
    ok(memcmp(&v, &fresh, sizeof(v)) == 0, "a miss leaves *out alone");
    s = stats(p);
    ok(s.evaluations == 0 && s.queued == 0 && s.busy == 0 && s.cache_hits == 0,
       "a miss starts nothing and counts nothing");

    r = eval(p, "192.0.2.1", "alice@nolocal.test");
    is_str(spf_res_name(r.v.mfrom), "pass", "alice@nolocal.test: pass");
    is_int(r.v.uses_local, 0, "no local-part macro: uses_local 0 (carried over IPC)");
    is_int(queries("nolocal.test.", DNS_T_TXT), 1, "nolocal.test TXT asked once");

    is_int(spfw_cached(p, "192.0.2.1", "", "bob@nolocal.test", &v), 1,
           "spfw_cached for another local part: hit");
    is_str(spf_res_name(v.mfrom), "pass", "the shared verdict");
    is_str(v.mfrom_domain, "nolocal.test", "its domain");
    s = stats(p);
    is_int((long long)s.cache_hits, 1, "the probe's hit counts as a cache hit");
    is_int((long long)s.cache_domain_hits, 1, "... from the domain key");
    is_int((long long)s.evaluations, 1, "still one evaluation");

    r = eval(p, "192.0.2.1", "carol@nolocal.test");
    is_str(spf_res_name(r.v.mfrom), "pass", "carol@nolocal.test: pass");
    s = stats(p);
    is_int((long long)s.evaluations, 1, "spfw_eval for a third local part: no evaluation");
    is_int((long long)s.cache_hits, 2, "spfw_eval's cache hit counted");
    is_int((long long)s.dns_questions, 1, "no DNS question from a worker");
    is_int(queries("nolocal.test.", DNS_T_TXT), 1, "the responder saw no second query");

    /* the key still holds the client and the HELO, and only senders with a
     * local part share: "@domain", a bare domain and <> keep their own key */
    is_int(spfw_cached(p, "192.0.2.2", "", "bob@nolocal.test", &v), 0, "another client: miss");
    is_int(spfw_cached(p, "192.0.2.1", "mx.other.test", "bob@nolocal.test", &v), 0,
           "another HELO: miss");
    is_int(spfw_cached(p, "192.0.2.1", "", "@nolocal.test", &v), 0,
           "sender \"@nolocal.test\": no hit on the domain entry");
    is_int(spfw_cached(p, "192.0.2.1", "", "nolocal.test", &v), 0, "sender without '@': miss");
    is_int(spfw_cached(p, "192.0.2.1", "", "bob@NOLOCAL.test.", &v), 0,
           "another spelling of the domain: its own key");
    is_int(spfw_cached(p, "192.0.2.1", "", "alice@nolocal.test", &v), 1,
           "the evaluated sender itself: hit");
    is_int((long long)stats(p).cache_hits, 3, "misses are not counted");
}

static void test_local_macros(struct spfw_pool *p)
{
    struct spf_verdict v;
    struct res a, b;
    uint64_t ev0 = stats(p).evaluations;
    int nq;

    /* exists:%{l}: one evaluation per local part, with different results */
    a = eval(p, "192.0.2.1", "alice@exists.test");
    b = eval(p, "192.0.2.1", "bob@exists.test");
    is_str(spf_res_name(a.v.mfrom), "pass", "exists:%%{l}: alice passes");
    is_str(spf_res_name(b.v.mfrom), "fail", "exists:%%{l}: bob fails");
    ok(a.v.uses_local && b.v.uses_local, "exists:%%{l}: uses_local 1");
    is_int((long long)(stats(p).evaluations - ev0), 2, "exists:%%{l}: both evaluated");
    is_int(queries("alice.x.exists.test.", DNS_T_A), 1, "alice's name asked");
    is_int(queries("bob.x.exists.test.", DNS_T_A), 1, "bob's name asked");
    is_int(spfw_cached(p, "192.0.2.1", "", "alice@exists.test", &v), 1,
           "exists:%%{l}: alice's verdict kept under her full key");
    is_str(spf_res_name(v.mfrom), "pass", "... and it is hers");
    is_int(spfw_cached(p, "192.0.2.1", "", "carol@exists.test", &v), 0,
           "exists:%%{l}: no hit for another local part");

    /* exp= text with %{l}: not shared, each sender gets its own explanation */
    ev0 = stats(p).evaluations;
    a = eval(p, "192.0.2.1", "alice@exp.test");
    b = eval(p, "192.0.2.1", "bob@exp.test");
    is_str(a.v.explanation, "alice is not allowed", "exp %%{l}: alice's explanation");
    is_str(b.v.explanation, "bob is not allowed", "exp %%{l}: bob's explanation");
    is_int((long long)(stats(p).evaluations - ev0), 2, "exp %%{l}: both evaluated");
    is_int(spfw_cached(p, "192.0.2.1", "", "carol@exp.test", &v), 0,
           "exp %%{l}: no hit for another local part");

    /* exp= text without it: shared, and the text is right for everyone */
    ev0 = stats(p).evaluations;
    a = eval(p, "192.0.2.1", "alice@expo.test");
    b = eval(p, "192.0.2.1", "bob@expo.test");
    is_str(a.v.explanation, "expo.test rejects 192.0.2.1", "exp %%{o} %%{c}: explanation");
    is_int(a.v.uses_local, 0, "exp %%{o} %%{c}: uses_local 0");
    is_int((long long)(stats(p).evaluations - ev0), 1, "exp %%{o} %%{c}: bob from the cache");
    is_str(b.v.explanation, a.v.explanation, "bob gets the same explanation");
    ok(strstr(b.v.explanation, "alice") == NULL && strstr(b.v.problem, "alice") == NULL,
       "a shared verdict carries no local part");

    /* temperror: kept 2 s (a DNS outage must not send every message to a
     * worker), then evaluated again (a recovered DNS is seen) */
    ev0 = stats(p).evaluations;
    a = eval(p, "192.0.2.1", "alice@sf.test");
    is_str(spf_res_name(a.v.mfrom), "temperror", "SERVFAIL: temperror");
    nq = queries("sf.test.", DNS_T_TXT); /* the resolver retries a SERVFAIL */
    ok(nq >= 1, "sf.test TXT asked (%d)", nq);
    is_int(spfw_cached(p, "192.0.2.1", "", "alice@sf.test", &v), 1, "temperror: kept");
    is_str(spf_res_name(v.mfrom), "temperror", "... as a temperror");
    is_int(spfw_cached(p, "192.0.2.1", "", "bob@sf.test", &v), 1,
           "temperror before any macro: kept for the domain");
    b = eval(p, "192.0.2.1", "carol@sf.test");
    is_str(spf_res_name(b.v.mfrom), "temperror", "carol@sf.test within 2 s: temperror");
    is_int((long long)(stats(p).evaluations - ev0), 1, "... from the cache, no evaluation");
    is_int(queries("sf.test.", DNS_T_TXT), nq, "... and no DNS query");
    {
        struct timespec ts = {2, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    is_int(spfw_cached(p, "192.0.2.1", "", "bob@sf.test", &v), 0, "after 2 s: gone");
    b = eval(p, "192.0.2.1", "bob@sf.test");
    is_int((long long)(stats(p).evaluations - ev0), 2, "temperror after 2 s: evaluated again");
    ok(queries("sf.test.", DNS_T_TXT) > nq, "... and DNS asked again");
}

int main(void)
{
    struct dns_config dc;
    struct dns_resolver *dns;
    struct spfw_pool *p;
    struct spfw_config sc = {.workers = 1,
                             .eval_timeout_ms = 5000,
                             .receiver = "mx.receiver.test",
                             .verdict_cache_size = 100,
                             .verdict_cache_ttl_s = 300};
    char buf[64];

    setvbuf(stdout, NULL, _IOLBF, 0);
    base = event_base_new();
    if (!ok(rsp_start(&rsp, base, AF_INET, table) == 0, "responder on 127.0.0.1"))
        return tap_done();
    dns_config_defaults(&dc);
    dc.timeout_ms = 500;
    dc.attempts = 2;
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", rsp.port);
    ok(dns_parse_server(buf, &dc.servers[0], &dc.server_lens[0]) == 0, "server %s", buf);
    dc.nservers = 1;
    dns = dns_new(base, &dc);
    ok(dns != NULL, "resolver");
    p = spfw_new(base, dns, &sc);
    if (!ok(p != NULL, "pool with real workers"))
        return tap_done();

    test_domain_key(p);
    test_local_macros(p);

    spfw_free(&p);
    {
        siginfo_t si;

        ok(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD,
           "no worker left behind");
    }
    dns_free(&dns);
    rsp_stop(&rsp);
    event_base_free(base);
    return tap_done();
}
