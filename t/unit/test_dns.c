/* test_dns.c - the resolver against an in-process ldns responder on loopback
 * (t/unit/dns_responder.c): status mapping, record data, TTLs, CNAME chains,
 * TCP fallback, anti-spoofing checks, cache/LRU/expiry, single flight, cancel,
 * asynchronous delivery, stats, server parsing and failover. No query ever
 * leaves 127.0.0.1/::1. */
#include "dns.h"
#include "dns_responder.h"
#include "tap.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SOA(ttl, min) "test. " #ttl " IN SOA ns.test. host.test. 1 7200 900 1209600 " #min

static struct event_base *base;
static int in_lookup; /* set around dns_lookup(): a callback seeing it ran synchronously */
static int sync_calls;

struct got {
    int called;
    struct dns_result *res;
    /* optional actions run from inside the callback */
    struct dns_resolver **free_me;
};

static void on_result(const struct dns_result *res, void *arg)
{
    struct got *g = arg;

    if (in_lookup)
        sync_calls++;
    g->called++;
    dnsrr_unref(&g->res);
    g->res = dnsrr_ref((struct dns_result *)res);
    if (g->free_me)
        dns_free(g->free_me);
}

static void got_reset(struct got *g)
{
    dnsrr_unref(&g->res);
    memset(g, 0, sizeof(*g));
}

static struct dns_query *lookup(struct dns_resolver *r, const char *name, uint16_t type,
                                struct got *g)
{
    struct dns_query *q;

    in_lookup = 1;
    q = dns_lookup(r, name, type, on_result, g);
    in_lookup = 0;
    return q;
}

static uint64_t ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* run: turn the loop until *done >= want or ms elapsed (want < 0: just run ms). */
static void run(const int *done, int want, unsigned ms)
{
    uint64_t end = ms_now() + ms;

    while (ms_now() < end && (done == NULL || want < 0 || *done < want))
        event_base_loop(base, EVLOOP_ONCE);
}

static void mkcfg(struct dns_config *c, const struct rsp *s, int family)
{
    char buf[64];

    dns_config_defaults(c);
    c->timeout_ms = 150;
    c->attempts = 2;
    snprintf(buf, sizeof(buf), family == AF_INET6 ? "[::1]:%d" : "127.0.0.1:%d", s->port);
    c->nservers = 0;
    if (dns_parse_server(buf, &c->servers[0], &c->server_lens[0]) == 0)
        c->nservers = 1;
}

/* E(name, type, mode, delay_ms, soa, answer rrs...) */
#define E(n, t, m, d, s, ...)                                                                      \
    {                                                                                              \
        .name = n, .type = t, .mode = m, .delay_ms = d, .soa = s, .rrs = { __VA_ARGS__ }           \
    }

static struct rsp_entry table[] = {
    E("a.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "a.test. 300 IN A 192.0.2.1",
      "a.test. 200 IN A 192.0.2.2"),
    E("mixed.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "MiXeD.TeSt. 100 IN A 192.0.2.7"),
    E("aaaa.test.", DNS_T_AAAA, RSP_ANSWER, 0, NULL, "aaaa.test. 300 IN AAAA 2001:db8::1"),
    E("txt.test.", DNS_T_TXT, RSP_ANSWER, 0, NULL, "txt.test. 300 IN TXT \"v=spf1 \" \"-all\"",
      "txt.test. 300 IN TXT \"abc\\000def\""),
    E("mx.test.", DNS_T_MX, RSP_ANSWER, 0, NULL, "mx.test. 300 IN MX 10 MX1.Example.COM.",
      "mx.test. 300 IN MX 20 mx2.example.com."),
    E("2.0.192.in-addr.arpa.", DNS_T_PTR, RSP_ANSWER, 0, NULL,
      "2.0.192.in-addr.arpa. 300 IN PTR Host.Example."),
    E("www.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "www.test. 100 IN CNAME w2.test.",
      "w2.test. 50 IN CNAME W3.test.", "w3.test. 300 IN A 192.0.2.9"),
    E("www.test.", DNS_T_CNAME, RSP_ANSWER, 0, NULL, "www.test. 100 IN CNAME w2.test."),
    E("p1.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "p1.test. 300 IN CNAME p2.test."),
    E("p2.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "p2.test. 40 IN A 192.0.2.22"),
    E("l1.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "l1.test. 300 IN CNAME l2.test.",
      "l2.test. 300 IN CNAME l1.test."),
    E("r1.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "r1.test. 300 IN CNAME r2.test."),
    E("r2.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "r2.test. 300 IN CNAME r1.test."),
    E("cnx.test.", DNS_T_A, RSP_NXDOMAIN, 0, SOA(900, 90), "cnx.test. 300 IN CNAME gone.test."),
    E("nx.test.", DNS_T_A, RSP_NXDOMAIN, 0, SOA(900, 120), NULL),
    E("nodata.test.", DNS_T_TXT, RSP_ANSWER, 0, SOA(30, 600), NULL),
    E("nosoa.test.", DNS_T_A, RSP_ANSWER, 0, NULL, NULL),
    E("bigneg.test.", DNS_T_A, RSP_NXDOMAIN, 0, SOA(86400, 86400), NULL),
    E("sf.test.", DNS_T_A, RSP_SERVFAIL, 0, NULL, NULL),
    E("ref.test.", DNS_T_A, RSP_REFUSED, 0, NULL, NULL),
    E("silent.test.", DNS_T_A, RSP_SILENT, 0, NULL, NULL),
    E("tc.test.", DNS_T_TXT, RSP_TC, 0, NULL, "tc.test. 300 IN TXT \"over tcp\"",
      "tc.test. 300 IN TXT \"second\""),
    E("wrongid.test.", DNS_T_A, RSP_WRONGID, 0, NULL, "wrongid.test. 300 IN A 192.0.2.66"),
    E("wrongq.test.", DNS_T_A, RSP_WRONGQ, 0, NULL, "wrongq.test. 300 IN A 192.0.2.66"),
    E("garbage.test.", DNS_T_A, RSP_GARBAGE, 0, NULL, NULL),
    E("ttl1.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "ttl1.test. 1 IN A 192.0.2.1"),
    E("slow.test.", DNS_T_A, RSP_ANSWER, 100, NULL, "slow.test. 300 IN A 192.0.2.5"),
    E("slow2.test.", DNS_T_A, RSP_ANSWER, 100, NULL, "slow2.test. 300 IN A 192.0.2.5"),
    E("e1.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "e1.test. 300 IN A 192.0.2.1"),
    E("e2.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "e2.test. 300 IN A 192.0.2.2"),
    E("e3.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "e3.test. 300 IN A 192.0.2.3"),
    E("e4.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "e4.test. 300 IN A 192.0.2.4"),
    E("clamp.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "clamp.test. 999999 IN A 192.0.2.1"),
    E("zero.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "zero.test. 0 IN A 192.0.2.1"),
    /* exactly DNS_MAX_HOPS (8) CNAMEs is fine, 9 is too many */
    E("hop8.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "hop8.test. 300 IN CNAME h1.test.",
      "h1.test. 300 IN CNAME h2.test.", "h2.test. 300 IN CNAME h3.test.",
      "h3.test. 300 IN CNAME h4.test.", "h4.test. 300 IN CNAME h5.test.",
      "h5.test. 300 IN CNAME h6.test.", "h6.test. 300 IN CNAME h7.test.",
      "h7.test. 300 IN CNAME h8.test.", "h8.test. 300 IN A 192.0.2.8"),
    E("hop9.test.", DNS_T_A, RSP_ANSWER, 0, NULL, "hop9.test. 300 IN CNAME h1.test.",
      "h1.test. 300 IN CNAME h2.test.", "h2.test. 300 IN CNAME h3.test.",
      "h3.test. 300 IN CNAME h4.test.", "h4.test. 300 IN CNAME h5.test.",
      "h5.test. 300 IN CNAME h6.test.", "h6.test. 300 IN CNAME h7.test.",
      "h7.test. 300 IN CNAME h8.test.", "h8.test. 300 IN CNAME h9.test.",
      "h9.test. 300 IN A 192.0.2.9"),
    {.name = NULL},
};

/* ---- pure parts */

static void test_parse_server(void)
{
    static const struct {
        const char *in;
        int rc, family, port;
        const char *addr;
    } t[] = {
        {"127.0.0.1", 0, AF_INET, 53, "127.0.0.1"},
        {"192.0.2.1:5353", 0, AF_INET, 5353, "192.0.2.1"},
        {"[::1]:5300", 0, AF_INET6, 5300, "::1"},
        {"[2001:db8::1]", 0, AF_INET6, 53, "2001:db8::1"},
        {"2001:db8::53", 0, AF_INET6, 53, "2001:db8::53"},
        {"", -1, 0, 0, NULL},
        {"1.2.3", -1, 0, 0, NULL},
        {"127.0.0.1:0", -1, 0, 0, NULL},
        {"127.0.0.1:65536", -1, 0, 0, NULL},
        {"127.0.0.1:x", -1, 0, 0, NULL},
        {"127.0.0.1:", -1, 0, 0, NULL},
        {"[::1", -1, 0, 0, NULL},
        {"[::1]x", -1, 0, 0, NULL},
        {"[::1]:", -1, 0, 0, NULL},
        {"ns.example", -1, 0, 0, NULL},
        {"[127.0.0.1]:53", -1, 0, 0, NULL},
        {"::g", -1, 0, 0, NULL},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int rc = dns_parse_server(t[i].in, &ss, &len);
        char buf[INET6_ADDRSTRLEN] = "";
        int port = 0;

        if (!is_int(rc, t[i].rc, "parse_server '%s' rc", t[i].in) || rc < 0)
            continue;
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (void *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
            port = ntohs(a->sin6_port);
            ok(len == sizeof(*a), "parse_server '%s' len", t[i].in);
        } else {
            struct sockaddr_in *a = (void *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
            port = ntohs(a->sin_port);
            ok(len == sizeof(*a), "parse_server '%s' len", t[i].in);
        }
        ok(ss.ss_family == t[i].family && port == t[i].port, "parse_server '%s' family/port %d",
           t[i].in, port);
        is_str(buf, t[i].addr, "parse_server '%s' address", t[i].in);
    }
}

static void test_resolv_conf(void)
{
    char path[] = "/tmp/pd-test-dns-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    struct dns_config c;
    int n;

    fputs("# comment\n; also comment\nsearch example.com\n"
          "nameserver 192.0.2.53\n"
          "nameserver\t2001:db8::35  # trailing\n"
          "nameserver bogus\n"
          "nameserver 192.0.2.1:5353\n" /* no port syntax in resolv.conf */
          "options ndots:2\n",
          f);
    for (int i = 0; i < 10; i++)
        fprintf(f, "nameserver 198.51.100.%d\n", i + 1);
    fclose(f);
    dns_config_defaults(&c);
    n = dns_servers_from_resolv_conf(&c, path);
    is_int(n, DNS_MAX_SERVERS, "resolv.conf: added up to DNS_MAX_SERVERS");
    is_int(c.nservers, DNS_MAX_SERVERS, "resolv.conf: nservers");
    ok(c.servers[0].ss_family == AF_INET &&
           ntohs(((struct sockaddr_in *)&c.servers[0])->sin_port) == 53,
       "resolv.conf: first is IPv4 port 53");
    ok(c.servers[1].ss_family == AF_INET6, "resolv.conf: second is IPv6");
    ok(((struct sockaddr_in *)&c.servers[2])->sin_addr.s_addr == inet_addr("198.51.100.1"),
       "resolv.conf: bogus and IP:PORT lines skipped");
    unlink(path);
    is_int(dns_servers_from_resolv_conf(&c, path), -1, "resolv.conf: missing file -> -1");
}

static void test_defaults(void)
{
    struct dns_config c;

    memset(&c, 0xff, sizeof(c));
    dns_config_defaults(&c);
    ok(c.nservers == 0 && c.timeout_ms == 2000 && c.attempts == 3 &&
           c.cache_max_entries == 100000 && c.cache_min_ttl == 0 && c.cache_max_ttl == 86400 &&
           c.neg_max_ttl == 3600 && c.servfail_ttl == 0,
       "config defaults");
}

static void test_invalid_names(struct dns_resolver *r)
{
    char l64[80], n254[300], n253[300];
    struct got g = {0};
    const char *bad[] = {"", ".", "..", "a..b", ".a", "a b", "a\tb", "a\x7f", l64, n254};

    memset(l64, 'x', 64);
    strcpy(l64 + 64, ".test");
    /* 254 chars: 63+1+63+1+63+1+62 = 254 */
    memset(n254, 'a', 254);
    n254[63] = n254[127] = n254[191] = '.';
    n254[254] = '\0';
    memcpy(n253, n254, 254);
    n253[253] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok(lookup(r, bad[i], DNS_T_A, &g) == NULL, "invalid name %zu rejected", i);
    ok(dns_lookup(r, NULL, DNS_T_A, on_result, &g) == NULL, "NULL name rejected");
    /* 253 (and 253 plus the trailing dot) is the limit: accepted, then cancelled */
    {
        struct dns_query *q = lookup(r, n253, DNS_T_A, &g);
        char with_dot[310];

        ok(q != NULL, "253-character name accepted");
        dns_cancel(&q);
        ok(q == NULL, "dns_cancel NULLs the handle");
        snprintf(with_dot, sizeof(with_dot), "%s.", n253);
        q = lookup(r, with_dot, DNS_T_A, &g);
        ok(q != NULL, "253 characters plus trailing dot accepted");
        dns_cancel(&q);
    }
    run(NULL, -1, 50);
    is_int(g.called, 0, "no callback for rejected or cancelled lookups");
}

/* ---- the table run */

struct expect {
    const char *name;
    uint16_t type;
    enum dns_status st;
    long ttl; /* -1: don't check */
    size_t n;
    const char *data[3]; /* expected text data (A: dotted quad, AAAA: text) */
    int lens[3];         /* for binary-safe TXT: expected len (0: strlen(data)) */
    int prefs[3];
};

static void render(const struct dns_result *res, size_t i, char *buf, size_t sz)
{
    if (res->type == DNS_T_A && res->rr[i].len == 4)
        inet_ntop(AF_INET, res->rr[i].data, buf, (socklen_t)sz);
    else if (res->type == DNS_T_AAAA && res->rr[i].len == 16)
        inet_ntop(AF_INET6, res->rr[i].data, buf, (socklen_t)sz);
    else
        snprintf(buf, sz, "%s", (const char *)res->rr[i].data);
}

static void check(const struct expect *e, const struct got *g)
{
    const struct dns_result *res = g->res;

    if (!is_int(g->called, 1, "%s/%s: called once", e->name, dnsrr_type_name(e->type)) || !res)
        return;
    is_str(dnsrr_status_name(res->status), dnsrr_status_name(e->st), "%s/%s: status", e->name,
           dnsrr_type_name(e->type));
    is_int(res->type, e->type, "%s: type", e->name);
    if (e->ttl >= 0)
        is_int(res->ttl, e->ttl, "%s/%s: ttl", e->name, dnsrr_type_name(e->type));
    if (!is_int((long long)res->n, (long long)e->n, "%s/%s: n", e->name, dnsrr_type_name(e->type)))
        return;
    for (size_t i = 0; i < e->n && i < 3; i++) {
        char buf[300];
        size_t want = e->lens[i] ? (size_t)e->lens[i] : strlen(e->data[i]);

        render(res, i, buf, sizeof(buf));
        if (res->type == DNS_T_TXT) {
            ok(res->rr[i].len == want && memcmp(res->rr[i].data, e->data[i], want) == 0 &&
                   res->rr[i].data[want] == '\0',
               "%s: rr[%zu] data (len %zu)", e->name, i, res->rr[i].len);
        } else {
            is_str(buf, e->data[i], "%s/%s: rr[%zu]", e->name, dnsrr_type_name(e->type), i);
        }
        is_int(res->rr[i].pref, e->prefs[i], "%s: rr[%zu] pref", e->name, i);
    }
}

/* X(name, type, status, ttl, n, data...) */
#define X(nm, t, s, tl, cnt, ...)                                                                  \
    {                                                                                              \
        .name = nm, .type = t, .st = s, .ttl = tl, .n = cnt, .data = { __VA_ARGS__ }               \
    }

static const struct expect expects[] = {
    X("a.test", DNS_T_A, DNS_OK, 200, 2, "192.0.2.1", "192.0.2.2"),
    X("MIXED.Test.", DNS_T_A, DNS_OK, 100, 1, "192.0.2.7"),
    X("aaaa.test", DNS_T_AAAA, DNS_OK, 300, 1, "2001:db8::1"),
    {.name = "txt.test",
     .type = DNS_T_TXT,
     .st = DNS_OK,
     .ttl = 300,
     .n = 2,
     .data = {"v=spf1 -all", "abc\0def"},
     .lens = {0, 7}},
    {.name = "mx.test",
     .type = DNS_T_MX,
     .st = DNS_OK,
     .ttl = 300,
     .n = 2,
     .data = {"mx1.example.com", "mx2.example.com"},
     .prefs = {10, 20}},
    X("2.0.192.in-addr.arpa", DNS_T_PTR, DNS_OK, 300, 1, "host.example"),
    X("www.test", DNS_T_A, DNS_OK, 50, 1, "192.0.2.9"),
    X("www.test", DNS_T_CNAME, DNS_OK, 100, 1, "w2.test"),
    X("p1.test", DNS_T_A, DNS_OK, 40, 1, "192.0.2.22"),
    X("l1.test", DNS_T_A, DNS_SERVFAIL, -1, 0, NULL),
    X("r1.test", DNS_T_A, DNS_SERVFAIL, -1, 0, NULL),
    X("cnx.test", DNS_T_A, DNS_NXDOMAIN, 90, 0, NULL),
    X("nx.test", DNS_T_A, DNS_NXDOMAIN, 120, 0, NULL),
    X("nodata.test", DNS_T_TXT, DNS_NODATA, 30, 0, NULL),
    X("nosoa.test", DNS_T_A, DNS_NODATA, 60, 0, NULL),
    X("bigneg.test", DNS_T_A, DNS_NXDOMAIN, 3600, 0, NULL),
    X("sf.test", DNS_T_A, DNS_SERVFAIL, 0, 0, NULL),
    X("ref.test", DNS_T_A, DNS_SERVFAIL, 0, 0, NULL),
    X("silent.test", DNS_T_A, DNS_TIMEOUT, 0, 0, NULL),
    X("tc.test", DNS_T_TXT, DNS_OK, 300, 2, "over tcp", "second"),
    X("wrongid.test", DNS_T_A, DNS_TIMEOUT, 0, 0, NULL),
    X("wrongq.test", DNS_T_A, DNS_TIMEOUT, 0, 0, NULL),
    X("garbage.test", DNS_T_A, DNS_SERVFAIL, 0, 0, NULL),
    X("clamp.test", DNS_T_A, DNS_OK, 86400, 1, "192.0.2.1"),
    X("hop8.test", DNS_T_A, DNS_OK, 300, 1, "192.0.2.8"),
    X("hop9.test", DNS_T_A, DNS_SERVFAIL, 0, 0, NULL),
};
#define NEXP (sizeof(expects) / sizeof(expects[0]))

static void test_table(struct dns_resolver *r, struct rsp *s)
{
    struct got g[NEXP];
    int before_sync = sync_calls, all;
    struct dns_stats st, st0;
    uint64_t t0 = ms_now();

    dns_get_stats(r, &st0);
    memset(g, 0, sizeof(g));
    /* all at once: the timeouts overlap, so the whole table takes ~2 x timeout */
    for (size_t i = 0; i < NEXP; i++)
        ok(lookup(r, expects[i].name, expects[i].type, &g[i]) != NULL, "lookup %s issued",
           expects[i].name);
    dns_get_stats(r, &st);
    ok(st.inflight >= 20, "inflight counts distinct questions (%llu)",
       (unsigned long long)st.inflight);
    for (;;) {
        all = 1;
        for (size_t i = 0; i < NEXP; i++)
            all &= g[i].called > 0;
        if (all || ms_now() - t0 > 3000)
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
    ok(all, "every lookup completed (%llu ms)", (unsigned long long)(ms_now() - t0));
    is_int(sync_calls - before_sync, 0, "no callback ran inside dns_lookup");
    for (size_t i = 0; i < NEXP; i++)
        check(&expects[i], &g[i]);

    is_int(s->last_edns, 1232, "queries carry EDNS0 with UDP size 1232");
    is_int(rsp_find(s, "p2.test", DNS_T_A)->count, 1, "partial CNAME chain: target asked once");
    is_int(rsp_find(s, "sf.test", DNS_T_A)->count, 2, "SERVFAIL retried until attempts end");
    is_int(rsp_find(s, "ref.test", DNS_T_A)->count, 2, "REFUSED retried until attempts end");
    is_int(rsp_find(s, "silent.test", DNS_T_A)->count, 2, "silence: one query per attempt");
    is_int(rsp_find(s, "wrongid.test", DNS_T_A)->count, 2, "wrong ID ignored, retried");
    is_int(rsp_find(s, "tc.test", DNS_T_TXT)->count, 2, "truncated: asked over UDP then TCP");
    is_int(s->tcp, 1, "exactly one TCP query");
    dns_get_stats(r, &st);
    is_int((long long)(st.lookups - st0.lookups), (long long)NEXP, "stats: lookups");
    is_int((long long)st.tcp_queries, 1, "stats: tcp_queries");
    is_int((long long)st.queries, s->udp + s->tcp, "stats: queries = packets the server saw");
    is_int((long long)(st.timeouts - st0.timeouts), 3, "stats: timeouts");
    is_int((long long)(st.errors - st0.errors), 6,
           "stats: errors (SERVFAIL/REFUSED/garbage/loops)");
    is_int((long long)(st.nxdomain - st0.nxdomain), 3, "stats: nxdomain");
    is_int((long long)st.inflight, 0, "stats: nothing in flight");
    is_int((long long)st.cache_hits, 0, "stats: no cache hits yet");
    /* cached: OK x12 (not the looping ones) + 5 negatives; failures not (servfail_ttl 0) */
    is_int((long long)st.cache_entries, 17, "stats: cache_entries");
    for (size_t i = 0; i < NEXP; i++)
        got_reset(&g[i]);
}

static void test_cache(struct dns_resolver *r, struct rsp *s)
{
    struct got g = {0}, g2 = {0};
    struct rsp_entry *a = rsp_find(s, "a.test", DNS_T_A);
    int before = a->count, udp = s->udp;
    struct dns_stats st0, st;
    struct dns_result *p;

    dns_get_stats(r, &st0);
    ok(lookup(r, "A.TEST.", DNS_T_A, &g) != NULL, "cached lookup issued");
    is_int(g.called, 0, "cache hit not delivered synchronously");
    run(&g.called, 1, 1000);
    ok(g.res && g.res->status == DNS_OK && g.res->n == 2, "cache hit: same answer");
    ok(g.res && g.res->ttl <= 200 && g.res->ttl >= 198, "cache hit: remaining TTL (%u)",
       g.res ? g.res->ttl : 0);
    is_int(a->count, before, "cache hit: server not asked");
    is_int(s->udp, udp, "cache hit: no packet at all");
    dns_get_stats(r, &st);
    is_int((long long)(st.cache_hits - st0.cache_hits), 1, "stats: cache_hits");
    is_int((long long)(st.queries - st0.queries), 0, "stats: no query for a hit");
    got_reset(&g);

    /* negative answers are cached too */
    lookup(r, "nx.test", DNS_T_A, &g);
    run(&g.called, 1, 1000);
    ok(g.res && g.res->status == DNS_NXDOMAIN, "NXDOMAIN from cache");
    is_int(rsp_find(s, "nx.test", DNS_T_A)->count, 1, "NXDOMAIN: server asked once");
    got_reset(&g);

    /* failures are not cached with servfail_ttl 0 */
    lookup(r, "sf.test", DNS_T_A, &g);
    run(&g.called, 1, 1000);
    is_int(rsp_find(s, "sf.test", DNS_T_A)->count, 4, "SERVFAIL not cached: asked again");
    got_reset(&g);

    p = dns_cache_peek(r, "a.test", DNS_T_A);
    ok(p && p->status == DNS_OK && p->n == 2, "dns_cache_peek: cached answer");
    dnsrr_unref(&p);
    ok(dns_cache_peek(r, "a.test", DNS_T_AAAA) == NULL, "dns_cache_peek: other type absent");
    ok(dns_cache_peek(r, "unknown.test", DNS_T_A) == NULL, "dns_cache_peek: unknown absent");
    ok(dns_cache_peek(r, "sf.test", DNS_T_A) == NULL, "dns_cache_peek: SERVFAIL not cached");

    /* cancel a pending cache-hit delivery; the other still arrives */
    {
        struct dns_query *q1 = lookup(r, "a.test", DNS_T_A, &g);

        lookup(r, "a.test", DNS_T_A, &g2);
        dns_cancel(&q1);
        run(&g2.called, 1, 500);
        run(NULL, -1, 20);
        is_int(g.called, 0, "cancelled cache hit: no callback");
        is_int(g2.called, 1, "other cache hit delivered");
        got_reset(&g);
        got_reset(&g2);
    }
    /* zero TTL: usable but not cached */
    lookup(r, "zero.test", DNS_T_A, &g);
    run(&g.called, 1, 1000);
    ok(g.res && g.res->status == DNS_OK && g.res->ttl == 0, "TTL 0 answer delivered");
    ok(dns_cache_peek(r, "zero.test", DNS_T_A) == NULL, "TTL 0 answer not cached");
    got_reset(&g);
}

static void *peek_thread(void *arg)
{
    struct dns_resolver *r = arg;
    struct dns_result *p = NULL;
    long hits = 0;

    for (int i = 0; i < 2000; i++) {
        p = dns_cache_peek(r, "a.test", DNS_T_A);
        hits += p != NULL;
        dnsrr_unref(&p);
    }
    return (void *)hits;
}

static void test_peek_threads(struct dns_resolver *r)
{
    pthread_t t[2];
    void *h0, *h1;
    struct got g = {0};

    pthread_create(&t[0], NULL, peek_thread, r);
    pthread_create(&t[1], NULL, peek_thread, r);
    /* the loop thread uses the cache at the same time */
    for (int i = 0; i < 50; i++) {
        lookup(r, "a.test", DNS_T_A, &g);
        run(&g.called, i + 1, 200);
    }
    pthread_join(t[0], &h0);
    pthread_join(t[1], &h1);
    ok((long)h0 == 2000 && (long)h1 == 2000, "dns_cache_peek from two threads while the loop runs");
    is_int(g.called, 50, "loop-thread lookups meanwhile");
    got_reset(&g);
}

static void test_expiry(struct dns_resolver *r, struct rsp *s)
{
    struct got g = {0};
    struct rsp_entry *e = rsp_find(s, "ttl1.test", DNS_T_A);

    lookup(r, "ttl1.test", DNS_T_A, &g);
    run(&g.called, 1, 1000);
    ok(g.res && g.res->ttl == 1, "TTL 1 answer");
    lookup(r, "ttl1.test", DNS_T_A, &g);
    run(&g.called, 2, 1000);
    is_int(e->count, 1, "TTL 1: second lookup from cache");
    run(NULL, -1, 1100);
    ok(dns_cache_peek(r, "ttl1.test", DNS_T_A) == NULL, "TTL 1: expired after 1.1 s");
    lookup(r, "ttl1.test", DNS_T_A, &g);
    run(&g.called, 3, 1000);
    is_int(e->count, 2, "TTL 1: asked again after expiry");
    got_reset(&g);
}

static void test_lru(struct rsp *s)
{
    struct dns_config c;
    struct dns_resolver *r;
    struct got g = {0};
    const char *order[] = {"e1.test", "e2.test", "e3.test", "e1.test", "e4.test"};
    struct dns_stats st;
    struct dns_result *p;

    mkcfg(&c, s, AF_INET);
    c.cache_max_entries = 3;
    r = dns_new(base, &c);
    for (int i = 0; i < 5; i++) {
        lookup(r, order[i], DNS_T_A, &g);
        run(&g.called, i + 1, 1000);
    }
    is_int(rsp_find(s, "e1.test", DNS_T_A)->count, 1, "LRU: e1 re-read from cache");
    ok((p = dns_cache_peek(r, "e1.test", DNS_T_A)) != NULL, "LRU: recently used e1 kept");
    dnsrr_unref(&p);
    ok((p = dns_cache_peek(r, "e2.test", DNS_T_A)) == NULL, "LRU: least recently used e2 evicted");
    dnsrr_unref(&p);
    ok((p = dns_cache_peek(r, "e3.test", DNS_T_A)) != NULL, "LRU: e3 kept");
    dnsrr_unref(&p);
    ok((p = dns_cache_peek(r, "e4.test", DNS_T_A)) != NULL, "LRU: e4 kept");
    dnsrr_unref(&p);
    dns_get_stats(r, &st);
    is_int((long long)st.cache_entries, 3, "LRU: bounded at cache_max_entries");

    /* reconfigure: same servers keep the cache, smaller bound trims it */
    c.cache_max_entries = 2;
    dns_reconfigure(r, &c);
    dns_get_stats(r, &st);
    is_int((long long)st.cache_entries, 2, "reconfigure: smaller bound trims");
    ok((p = dns_cache_peek(r, "e4.test", DNS_T_A)) != NULL, "reconfigure: same servers keep cache");
    dnsrr_unref(&p);
    c.servers[1] = c.servers[0];
    c.server_lens[1] = c.server_lens[0];
    c.nservers = 2;
    dns_reconfigure(r, &c);
    ok(dns_cache_peek(r, "e4.test", DNS_T_A) == NULL, "reconfigure: new server list flushes cache");

    /* cache disabled */
    c.cache_max_entries = 0;
    dns_reconfigure(r, &c);
    lookup(r, "e1.test", DNS_T_A, &g);
    run(&g.called, 6, 1000);
    lookup(r, "e1.test", DNS_T_A, &g);
    run(&g.called, 7, 1000);
    is_int(rsp_find(s, "e1.test", DNS_T_A)->count, 3, "cache_max_entries 0: no caching");
    got_reset(&g);
    dns_free(&r);
    ok(r == NULL, "dns_free NULLs the pointer");
}

static void test_single_flight(struct dns_resolver *r, struct rsp *s)
{
    struct got g1 = {0}, g2 = {0}, g3 = {0};
    struct rsp_entry *e = rsp_find(s, "slow.test", DNS_T_A);
    struct dns_query *q1, *q2, *q3;
    struct dns_stats st;
    int done;

    q1 = lookup(r, "slow.test", DNS_T_A, &g1);
    q2 = lookup(r, "SLOW.test.", DNS_T_A, &g2);
    q3 = lookup(r, "slow.test", DNS_T_A, &g3);
    ok(q1 && q2 && q3 && q1 != q2, "three handles");
    dns_get_stats(r, &st);
    is_int((long long)st.inflight, 1, "single flight: one question in flight");
    dns_cancel(&q2);
    for (uint64_t end = ms_now() + 1000; ms_now() < end && !(g1.called && g3.called);)
        event_base_loop(base, EVLOOP_ONCE);
    run(NULL, -1, 20);
    done = g1.called + g3.called;
    is_int(done, 2, "single flight: both remaining waiters called");
    is_int(g2.called, 0, "single flight: the cancelled waiter is not called");
    is_int(e->count, 1, "single flight: one query for three lookups");
    ok(g1.res && g3.res && g1.res->status == DNS_OK && g3.res->status == DNS_OK,
       "single flight: both OK");
    got_reset(&g1);
    got_reset(&g3);

    /* every waiter cancelled: the question finishes anyway and fills the cache */
    e = rsp_find(s, "slow2.test", DNS_T_A);
    q1 = lookup(r, "slow2.test", DNS_T_A, &g1);
    q2 = lookup(r, "slow2.test", DNS_T_A, &g2);
    dns_cancel(&q1);
    dns_cancel(&q2);
    run(NULL, -1, 300);
    is_int(g1.called + g2.called, 0, "all cancelled: no callback");
    is_int(e->count, 1, "all cancelled: question still asked once");
    {
        struct dns_result *p = dns_cache_peek(r, "slow2.test", DNS_T_A);

        ok(p && p->status == DNS_OK, "all cancelled: answer cached");
        dnsrr_unref(&p);
    }
    dns_get_stats(r, &st);
    is_int((long long)st.inflight, 0, "all cancelled: nothing left in flight");
}

static void test_failover(struct rsp *good)
{
    struct rsp dead;
    struct dns_config c;
    struct dns_resolver *r;
    struct got g = {0};
    char buf[64];
    struct dns_stats st;

    rsp_start(&dead, base, AF_INET, NULL); /* own counters: no table */
    dead.silent_all = 1;
    dns_config_defaults(&c);
    c.timeout_ms = 150;
    c.attempts = 2;
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", dead.port);
    dns_parse_server(buf, &c.servers[0], &c.server_lens[0]);
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", good->port);
    dns_parse_server(buf, &c.servers[1], &c.server_lens[1]);
    c.nservers = 2;
    r = dns_new(base, &c);
    lookup(r, "aaaa.test", DNS_T_AAAA, &g);
    run(&g.called, 1, 1000);
    ok(g.res && g.res->status == DNS_OK, "failover: answer from the second server");
    is_int(dead.udp, 1, "failover: first server asked once");
    is_int(rsp_find(good, "aaaa.test", DNS_T_AAAA)->count, 2, "failover: second server asked");
    dns_get_stats(r, &st);
    is_int((long long)st.queries, 2, "failover: two packets");
    got_reset(&g);

    /* servfail_ttl > 0 caches failures */
    c.servfail_ttl = 30;
    dns_reconfigure(r, &c);
    lookup(r, "silent.test", DNS_T_A, &g);
    run(&g.called, 1, 1000);
    ok(g.res && g.res->status == DNS_TIMEOUT && g.res->ttl == 30, "servfail_ttl: TIMEOUT ttl 30");
    {
        struct dns_result *p = dns_cache_peek(r, "silent.test", DNS_T_A);

        ok(p && p->status == DNS_TIMEOUT, "servfail_ttl: TIMEOUT cached");
        dnsrr_unref(&p);
    }
    got_reset(&g);
    dns_free(&r);
    rsp_stop(&dead);

    /* no server at all: SERVFAIL, still asynchronous */
    dns_config_defaults(&c);
    r = dns_new(base, &c);
    lookup(r, "a.test", DNS_T_A, &g);
    is_int(g.called, 0, "no servers: not synchronous");
    run(&g.called, 1, 500);
    ok(g.res && g.res->status == DNS_SERVFAIL, "no servers: SERVFAIL");
    got_reset(&g);
    dns_free(&r);
}

static void test_ipv6(void)
{
    struct rsp s6;
    struct dns_config c;
    struct dns_resolver *r;
    struct got g = {0};

    if (rsp_start(&s6, base, AF_INET6, table) < 0) {
        ok(1, "# SKIP no IPv6 loopback");
        return;
    }
    mkcfg(&c, &s6, AF_INET6);
    is_int(c.nservers, 1, "[::1]:port parsed");
    r = dns_new(base, &c);
    lookup(r, "a.test", DNS_T_A, &g);
    run(&g.called, 1, 1000);
    ok(g.res && g.res->status == DNS_OK && g.res->n == 2, "lookup over IPv6 loopback");
    is_int(s6.udp, 1, "IPv6 server asked");
    got_reset(&g);
    dns_free(&r);
    rsp_stop(&s6);
}

/* callbacks that re-enter: dns_lookup from a callback, dns_free from a callback */
struct chain {
    struct dns_resolver *r;
    struct got inner;
    int outer_called;
};

static void chain_cb(const struct dns_result *res, void *arg)
{
    struct chain *c = arg;

    c->outer_called++;
    in_lookup = 1;
    dns_lookup(c->r, "aaaa.test", DNS_T_AAAA, on_result, &c->inner);
    in_lookup = 0;
}

static void test_reentry(struct rsp *s)
{
    struct dns_config c;
    struct chain ch = {0};
    struct got g1 = {0}, g2 = {0};
    struct dns_resolver *r;
    int before = sync_calls;

    mkcfg(&c, s, AF_INET);
    r = dns_new(base, &c);
    ch.r = r;
    dns_lookup(r, "a.test", DNS_T_A, chain_cb, &ch);
    run(&ch.inner.called, 1, 1000);
    is_int(ch.outer_called, 1, "re-entry: outer callback");
    is_int(ch.inner.called, 1, "re-entry: lookup issued from a callback completes");
    is_int(sync_calls - before, 0, "re-entry: still never synchronous");
    got_reset(&ch.inner);

    /* the first callback frees the resolver: the second is dropped, nothing leaks */
    lookup(r, "a.test", DNS_T_A, &g1); /* cached now */
    lookup(r, "a.test", DNS_T_A, &g2);
    lookup(r, "slow.test", DNS_T_A, &g2); /* in flight when freed */
    g1.free_me = &r;
    run(&g1.called, 1, 1000);
    run(NULL, -1, 200);
    ok(r == NULL, "dns_free from a callback");
    is_int(g1.called, 1, "dns_free from a callback: the caller ran");
    is_int(g2.called, 0, "dns_free from a callback: later callbacks dropped");
    got_reset(&g1);
    got_reset(&g2);
}

int main(void)
{
    struct rsp s;
    struct dns_config c;
    struct dns_resolver *r;
    struct event *tk;
    struct timeval tv = {0, 20000};
    uint64_t t0 = ms_now();

    base = event_base_new();
    /* a ticking timer so EVLOOP_ONCE never blocks past a deadline */
    tk = event_new(base, -1, EV_PERSIST, tick, NULL);
    event_add(tk, &tv);

    test_parse_server();
    test_resolv_conf();
    test_defaults();

    if (!ok(rsp_start(&s, base, AF_INET, table) == 0, "responder on 127.0.0.1"))
        return tap_done();
    diag("responder on 127.0.0.1:%d", s.port);
    mkcfg(&c, &s, AF_INET);
    r = dns_new(base, &c);
    ok(r != NULL, "dns_new");
    test_invalid_names(r);
    test_table(r, &s);
    test_cache(r, &s);
    test_peek_threads(r);
    test_single_flight(r, &s);
    test_expiry(r, &s);
    dns_free(&r);
    test_lru(&s);
    test_failover(&s);
    test_ipv6();
    test_reentry(&s);

    rsp_stop(&s);
    event_free(tk);
    event_base_free(base);
    diag("elapsed %llu ms", (unsigned long long)(ms_now() - t0));
    return tap_done();
}
