/* test_spfw.c - the SPF worker pool: real processes, real IPC, real deadlines.
 *
 * The pool code is the real src/spfw.c; the two modules it talks to are test
 * doubles, because they were written in parallel and did not exist yet:
 * fake_dns.c (src/dns.h: an in-memory table with per-name delays) and
 * fake_spfa.c (src/spfa.h: runs in the workers; the TXT text of the
 * sender's domain says "pass", "crash", "hang", "badframe", "dns:<name>"...).
 * Timings are loose (the machine may be loaded) but tight enough to tell
 * "concurrent" from "serial" and "deadline" from "never". */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns.h"
#include "spfw.h"
#include "tap.h"

/* test hooks: spfw.c (not in spfw.h) and fake_dns.c */
size_t spfw_worker_pids(struct spfw_pool *p, int *out, size_t max);
void fake_dns_set(struct dns_resolver *r, const char *name, enum dns_status status, const char *txt,
                  uint32_t ttl, unsigned delay_ms);

static struct event_base *base;
static struct dns_resolver *dns;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One job's outcome, recorded by cb(). */
struct res {
    int called;
    uint64_t at;
    struct spf_verdict v;
    struct spfw_job *job;
    /* optional actions inside the callback */
    struct spfw_job **cancel_other;
    struct spfw_pool **free_pool;
};

static void cb(const struct spf_verdict *v, void *arg)
{
    struct res *r = arg;

    r->called++;
    r->at = now_ms();
    r->v = *v;
    r->job = NULL;
    if (r->cancel_other)
        spfw_cancel(r->cancel_other);
    if (r->free_pool)
        spfw_free(r->free_pool);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* wait_all: run the loop until every res in rs[0..n) was called, or timeout. */
static int wait_all(struct res *rs, int n, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 10000};
    int done = 0;

    event_add(t, &tv);
    while (now_ms() < end) {
        done = 1;
        for (int i = 0; i < n; i++)
            if (!rs[i].called)
                done = 0;
        if (done)
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(t);
    return done;
}

static void run_ms(unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static struct spfw_pool *pool_new(unsigned workers, unsigned timeout_ms, unsigned cache_size,
                                  const char *receiver)
{
    struct spfw_config c = {.workers = workers,
                            .eval_timeout_ms = timeout_ms,
                            .receiver = receiver,
                            .verdict_cache_size = cache_size,
                            .verdict_cache_ttl_s = 300};

    return spfw_new(base, dns, &c);
}

static struct spfw_stats stats(struct spfw_pool *p)
{
    struct spfw_stats s;

    spfw_get_stats(p, &s);
    return s;
}

/* reaped: pid is no child of ours any more, not even a zombie. WNOWAIT: the
 * test must not reap the pool's children itself. */
static int reaped(int pid)
{
    siginfo_t si;

    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

/* gone: within timeout_ms (running the loop, where the pool reaps), pid is
 * reaped and no longer exists. */
static int gone(int pid, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;

    for (;;) {
        if (reaped(pid) && kill(pid, 0) < 0 && errno == ESRCH)
            return 1;
        if (now_ms() >= end)
            return 0;
        run_ms(10);
    }
}

/* wait_idle: until n workers are idle (respawns and grace kills settle). */
static int wait_idle(struct spfw_pool *p, unsigned n, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;

    while (now_ms() < end) {
        if (stats(p).idle == n)
            return 1;
        run_ms(10);
    }
    return 0;
}

static void test_basic(void)
{
    static const struct {
        const char *helo, *sender;
        enum spf_res want;
        const char *domain, *explanation;
        unsigned questions;
    } rows[] = {
        {"mx.a.example", "user@a.example", SPF_RES_PASS, "a.example", "", 1},
        {"h.example", "", SPF_RES_FAIL, "h.example", "h.example rejects 192.0.2.1", 1},
        {"mx.c.example", "x@c.example", SPF_RES_SOFTFAIL, "c.example", "", 2},
        {"mx.s.example", "x@s.example", SPF_RES_TEMPERROR, "s.example", "", 1},
        {"mx.n.example", "x@nowhere.example", SPF_RES_NONE, "nowhere.example", "", 1},
        {"mx.r.example", "x@r.example", SPF_RES_NEUTRAL, "r.example", "mx.test.example", 1},
    };
    struct spfw_pool *p = pool_new(1, 3000, 0, "mx.test.example");
    struct spfw_stats s;

    fake_dns_set(dns, "a.example", DNS_OK, "pass", 300, 0);
    fake_dns_set(dns, "h.example", DNS_OK, "fail", 300, 0);
    fake_dns_set(dns, "c.example", DNS_OK, "dns:d.example", 300, 0);
    fake_dns_set(dns, "d.example", DNS_OK, "softfail", 300, 0);
    fake_dns_set(dns, "s.example", DNS_SERVFAIL, NULL, 0, 0);
    fake_dns_set(dns, "r.example", DNS_OK, "receiver", 300, 0);
    ok(p != NULL, "pool created");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct res r = {0};
        uint64_t q0 = stats(p).dns_questions;

        r.job = spfw_eval(p, "192.0.2.1", rows[i].helo, rows[i].sender, cb, &r);
        ok(r.job != NULL && r.called == 0, "row %zu: submitted, callback not synchronous", i);
        ok(wait_all(&r, 1, 3000), "row %zu: completed", i);
        is_int(r.called, 1, "row %zu: called once", i);
        is_str(spf_res_name(r.v.mfrom), spf_res_name(rows[i].want), "row %zu: result", i);
        is_str(r.v.mfrom_domain, rows[i].domain, "row %zu: domain", i);
        is_str(r.v.explanation, rows[i].explanation, "row %zu: explanation", i);
        is_int((long long)(stats(p).dns_questions - q0), rows[i].questions,
               "row %zu: DNS questions proxied", i);
    }
    s = stats(p);
    is_int((long long)s.evaluations, 6, "6 evaluations");
    is_int(s.idle, 1, "worker idle again");
    is_int(s.busy + s.queued, 0, "nothing busy or queued");
    spfw_free(&p);
    ok(p == NULL, "spfw_free NULLs the pointer");
}

static void test_concurrency(void)
{
    struct spfw_pool *p = pool_new(2, 5000, 0, "mx.test.example");
    struct res r[6] = {{0}};
    struct spfw_stats s;
    uint64_t t0;
    int all = 1;

    for (int i = 0; i < 6; i++) {
        char name[32];

        snprintf(name, sizeof(name), "w%d.example", i);
        fake_dns_set(dns, name, DNS_OK, "pass", 300, 300);
    }
    t0 = now_ms();
    for (int i = 0; i < 6; i++) {
        char sender[32];

        snprintf(sender, sizeof(sender), "u@w%d.example", i);
        r[i].job = spfw_eval(p, "192.0.2.2", "mx.example", sender, cb, &r[i]);
    }
    s = stats(p);
    is_int(s.busy, 2, "2 workers busy");
    is_int(s.queued, 4, "4 evaluations queued");
    ok(wait_all(r, 6, 5000), "6 jobs completed");
    for (int i = 0; i < 6; i++)
        all &= r[i].v.mfrom == SPF_RES_PASS;
    ok(all, "all pass");
    diag("6 jobs x 300 ms DNS on 2 workers: %llu ms", (unsigned long long)(now_ms() - t0));
    ok(now_ms() - t0 >= 850 && now_ms() - t0 < 1500, "wall time ~ 3 x delay, not 6 x");
    ok(r[0].at < r[2].at && r[2].at < r[4].at, "FIFO order across rounds");
    spfw_free(&p);
}

static void test_single_flight_and_cache(void)
{
    struct spfw_pool *p = pool_new(2, 3000, 100, "mx.test.example");
    struct res r[3] = {{0}}, c = {0}, t[2] = {{0}}, z[2] = {{0}};
    struct spfw_stats s;

    fake_dns_set(dns, "sf.example", DNS_OK, "pass", 300, 200);
    for (int i = 0; i < 3; i++)
        r[i].job = spfw_eval(p, "192.0.2.3", "mx.sf.example", "a@sf.example", cb, &r[i]);
    r[0].cancel_other = &r[2].job; /* cancelled from inside another job's callback */
    s = stats(p);
    is_int((long long)s.evaluations, 1, "3 identical jobs: 1 evaluation");
    is_int((long long)s.shared, 2, "2 joined it");
    is_int(s.busy, 1, "1 worker busy");
    ok(wait_all(r, 2, 3000), "both remaining waiters called");
    run_ms(50);
    is_int(r[2].called, 0, "job cancelled in a callback is not called");
    ok(r[0].v.mfrom == SPF_RES_PASS && r[1].v.mfrom == SPF_RES_PASS, "shared verdict");

    c.job = spfw_eval(p, "192.0.2.3", "mx.sf.example", "a@sf.example", cb, &c);
    ok(c.job != NULL && c.called == 0, "cache hit is not synchronous");
    ok(wait_all(&c, 1, 1000), "cache hit completes");
    s = stats(p);
    is_int((long long)s.cache_hits, 1, "1 cache hit");
    is_int((long long)s.evaluations, 1, "no new evaluation");
    is_int(c.v.mfrom, SPF_RES_PASS, "cached verdict");
    is_int((int)c.v.ttl, 300, "cached verdict keeps its TTL");

    /* a cache hit cancelled before its deferred callback runs */
    c.called = 0;
    c.job = spfw_eval(p, "192.0.2.3", "mx.sf.example", "a@sf.example", cb, &c);
    spfw_cancel(&c.job);
    ok(c.job == NULL, "cancel NULLs the handle");
    run_ms(50);
    is_int(c.called, 0, "cancelled cache hit not called");

    /* a temperror is kept (2 s, test_spfw_cache shows the expiry); TTL 0 is
     * not cached */
    fake_dns_set(dns, "tf.example", DNS_TIMEOUT, NULL, 0, 0);
    fake_dns_set(dns, "z.example", DNS_OK, "pass", 0, 0);
    for (int i = 0; i < 2; i++) {
        t[i].job = spfw_eval(p, "192.0.2.3", "mx", "a@tf.example", cb, &t[i]);
        ok(wait_all(&t[i], 1, 2000), "temperror job %d done", i);
        z[i].job = spfw_eval(p, "192.0.2.3", "mx", "a@z.example", cb, &z[i]);
        ok(wait_all(&z[i], 1, 2000), "ttl-0 job %d done", i);
    }
    is_int(t[1].v.mfrom, SPF_RES_TEMPERROR, "temperror");
    s = stats(p);
    is_int((long long)s.evaluations, 4, "TTL 0 evaluated again, temperror not");
    is_int((long long)s.cache_hits, 3, "the second temperror from the cache");
    is_int(t[1].v.mfrom, SPF_RES_TEMPERROR, "... still a temperror");
    spfw_free(&p);

    /* bounded cache: size 2, oldest entry evicted */
    p = pool_new(1, 3000, 2, "mx.test.example");
    for (int i = 0; i < 4; i++) {
        static const char *const senders[] = {"a@a.example", "b@a.example", "c@a.example",
                                              "a@a.example"};
        struct res x = {0};

        x.job = spfw_eval(p, "192.0.2.4", "mx", senders[i], cb, &x);
        wait_all(&x, 1, 2000);
    }
    s = stats(p);
    is_int((long long)s.evaluations, 4, "size-2 cache: the oldest entry was evicted");
    {
        struct res x = {0};

        x.job = spfw_eval(p, "192.0.2.4", "mx", "a@a.example", cb, &x);
        wait_all(&x, 1, 2000);
        is_int((long long)stats(p).cache_hits, 1, "the newest entry is kept");
    }
    spfw_free(&p);
}

/* The domain key (fake_spfa: "nolocal:" reports uses_local = 0, "local"
 * decides on the local part and reports 1; everything else reports 1). */
static void test_domain_key(void)
{
    static const struct {
        const char *sender;
        int probe_hit; /* spfw_cached before evaluating this sender */
        enum spf_res want;
        const char *explanation;
    } rows[] = {
        {"a@nl.example", 0, SPF_RES_FAIL, "nl.example rejects 192.0.2.11"},
        {"b@nl.example", 1, SPF_RES_FAIL, "nl.example rejects 192.0.2.11"},
        {"@nl.example", 0, SPF_RES_FAIL, "nl.example rejects 192.0.2.11"},
        {"nl.example", 0, SPF_RES_FAIL, "nl.example rejects 192.0.2.11"},
        {"x@y@nl.example", 1, SPF_RES_FAIL, "nl.example rejects 192.0.2.11"},
        {"ok1@lp.example", 0, SPF_RES_PASS, ""},
        {"bad@lp.example", 0, SPF_RES_FAIL, "bad not allowed"},
        {"ok2@lp.example", 0, SPF_RES_PASS, ""},
        {"a@dflt.example", 0, SPF_RES_PASS, ""},
        {"b@dflt.example", 0, SPF_RES_PASS, ""},
    };
    struct spfw_pool *p = pool_new(1, 3000, 100, "mx.test.example");
    struct spf_verdict v;
    uint64_t hits = 0;

    fake_dns_set(dns, "nl.example", DNS_OK, "nolocal:fail", 300, 0);
    fake_dns_set(dns, "lp.example", DNS_OK, "local", 300, 0);
    fake_dns_set(dns, "dflt.example", DNS_OK, "pass", 300, 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct res r = {0};
        uint64_t ev0 = stats(p).evaluations;

        is_int(spfw_cached(p, "192.0.2.11", "", rows[i].sender, &v), rows[i].probe_hit,
               "%s: spfw_cached before", rows[i].sender);
        hits += (uint64_t)rows[i].probe_hit;
        r.job = spfw_eval(p, "192.0.2.11", "", rows[i].sender, cb, &r);
        ok(wait_all(&r, 1, 3000), "%s: completed", rows[i].sender);
        hits += (uint64_t)rows[i].probe_hit;
        is_int((long long)(stats(p).evaluations - ev0), !rows[i].probe_hit, "%s: evaluated",
               rows[i].sender);
        is_str(spf_res_name(r.v.mfrom), spf_res_name(rows[i].want), "%s: result", rows[i].sender);
        is_str(r.v.explanation, rows[i].explanation, "%s: explanation", rows[i].sender);
        is_int(spfw_cached(p, "192.0.2.11", "", rows[i].sender, &v), 1, "%s: spfw_cached after",
               rows[i].sender);
        hits++;
        is_int((long long)stats(p).cache_hits, (long long)hits, "%s: cache hits", rows[i].sender);
    }
    is_int((long long)stats(p).cache_domain_hits, 7, "domain-key hits (a, b, x@y: 1 + 3 + 3)");

    /* keys beyond the probe's stack buffer (a 700-byte HELO) */
    {
        char helo[712], s1[32], s2[32];
        struct res r = {0};

        memset(helo, 'h', 700);
        strcpy(helo + 700, ".nl.example");
        for (int i = 0; i < 2; i++) {
            snprintf(s1, sizeof(s1), "%s@%s.example", i ? "ok1" : "a", i ? "lp" : "nl");
            snprintf(s2, sizeof(s2), "%s@%s.example", i ? "ok2" : "b", i ? "lp" : "nl");
            memset(&r, 0, sizeof(r));
            r.job = spfw_eval(p, "192.0.2.11", helo, s1, cb, &r);
            ok(wait_all(&r, 1, 3000), "long key %d: completed", i);
            is_int(spfw_cached(p, "192.0.2.11", helo, s1, &v), 1, "long key %d: hit", i);
            is_int(spfw_cached(p, "192.0.2.11", helo, s2, &v), !i,
                   "long key %d: other local part %s", i, i ? "misses" : "hits");
        }
    }
    spfw_free(&p);
}

static void test_deadline(void)
{
    struct spfw_pool *p = pool_new(2, 600, 100, "mx.test.example");
    struct res slow = {0}, fast = {0}, again = {0};
    struct spfw_stats s;
    uint64_t t0 = now_ms();

    fake_dns_set(dns, "slow.example", DNS_OK, "pass", 300, 5000);
    fake_dns_set(dns, "fast.example", DNS_OK, "dns:fast2.example", 300, 100);
    fake_dns_set(dns, "fast2.example", DNS_OK, "pass", 300, 100);
    slow.job = spfw_eval(p, "192.0.2.5", "mx.slow.example", "u@slow.example", cb, &slow);
    fast.job = spfw_eval(p, "192.0.2.5", "mx.fast.example", "u@fast.example", cb, &fast);
    ok(wait_all(&fast, 1, 2000), "fast job done");
    is_int(fast.v.mfrom, SPF_RES_PASS, "fast job passes on the other worker");
    ok(fast.at - t0 < 550, "fast job not held up (%llu ms)", (unsigned long long)(fast.at - t0));
    ok(wait_all(&slow, 1, 2000), "slow job done");
    diag("deadline 600 ms, slow job answered after %llu ms", (unsigned long long)(slow.at - t0));
    ok(slow.at - t0 >= 590 && slow.at - t0 < 900, "slow job answered at its deadline");
    is_int(slow.v.mfrom, SPF_RES_TEMPERROR, "mfrom temperror");
    is_int(slow.v.helo, SPF_RES_TEMPERROR, "helo temperror (it is a domain)");
    is_str(slow.v.problem, "evaluation timeout", "problem");
    is_str(slow.v.mfrom_domain, "slow.example", "mfrom domain filled");
    s = stats(p);
    is_int((long long)s.timeouts, 1, "1 timeout");

    /* its pending DNS question was answered TIMEOUT at once: the worker is
     * back well before the 5 s DNS delay and without being killed */
    ok(wait_idle(p, 2, 1000), "both workers idle again");
    s = stats(p);
    is_int((long long)s.worker_deaths, 0, "no worker killed");

    /* the same triple again starts afresh (not joined to the dead evaluation) */
    fake_dns_set(dns, "slow.example", DNS_OK, "pass", 300, 0);
    again.job = spfw_eval(p, "192.0.2.5", "mx.slow.example", "u@slow.example", cb, &again);
    ok(wait_all(&again, 1, 2000), "same job again");
    is_int(again.v.mfrom, SPF_RES_PASS, "evaluated afresh: pass");

    /* a job that waits in the queue past its deadline */
    {
        struct spfw_pool *one = pool_new(1, 300, 0, "mx.test.example");
        struct res a = {0}, b = {0};

        fake_dns_set(dns, "q1.example", DNS_OK, "hang", 300, 0); /* busy past b's deadline */
        a.job = spfw_eval(one, "192.0.2.6", "", "u@q1.example", cb, &a);
        b.job = spfw_eval(one, "192.0.2.6", "", "u@q2.example", cb, &b);
        is_int(stats(one).queued, 1, "second job queued");
        ok(wait_all(&b, 1, 1000), "queued job answered at its deadline");
        is_int(b.v.mfrom, SPF_RES_TEMPERROR, "queued: temperror");
        is_int(b.v.helo, SPF_RES_NONE, "empty HELO: helo none");
        is_int((long long)stats(one).evaluations, 1, "it never reached a worker");
        spfw_free(&one);
    }
    spfw_free(&p);
}

static void test_hang_crash_badframe(void)
{
    static const struct {
        const char *domain, *txt, *problem;
        unsigned deaths;
    } rows[] = {
        {"hang.example", "hang", "evaluation timeout", 1},
        {"crash.example", "crash", "spf worker died", 1},
        {"bad.example", "badframe", "spf worker died", 1},
    };
    struct spfw_pool *p = pool_new(1, 400, 100, "mx.test.example");

    fake_dns_set(dns, "ok.example", DNS_OK, "pass", 300, 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct res r = {0}, after = {0};
        struct spfw_stats s0 = stats(p), s;
        int pid0 = 0, pid1 = 0;
        char sender[64];
        uint64_t t0 = now_ms();

        fake_dns_set(dns, rows[i].domain, DNS_OK, rows[i].txt, 300, 0);
        snprintf(sender, sizeof(sender), "x@%s", rows[i].domain);
        spfw_worker_pids(p, &pid0, 1);
        r.job = spfw_eval(p, "192.0.2.7", "mx.example", sender, cb, &r);
        ok(wait_all(&r, 1, 2000), "%s: answered", rows[i].txt);
        diag("%s: answered after %llu ms", rows[i].txt, (unsigned long long)(now_ms() - t0));
        is_int(r.v.mfrom, SPF_RES_TEMPERROR, "%s: temperror", rows[i].txt);
        is_str(r.v.problem, rows[i].problem, "%s: problem", rows[i].txt);
        ok(wait_idle(p, 1, 3000), "%s: a worker is idle again", rows[i].txt);
        s = stats(p);
        is_int((long long)(s.worker_deaths - s0.worker_deaths), rows[i].deaths,
               "%s: worker death counted", rows[i].txt);
        spfw_worker_pids(p, &pid1, 1);
        ok(pid1 > 0 && pid1 != pid0, "%s: replaced by a new process", rows[i].txt);
        ok(gone(pid0, 1000), "%s: old worker killed and reaped", rows[i].txt);
        after.job = spfw_eval(p, "192.0.2.7", "mx.example", "x@ok.example", cb, &after);
        ok(wait_all(&after, 1, 2000) && after.v.mfrom == SPF_RES_PASS, "%s: pool works afterwards",
           rows[i].txt);
    }
    ok(wait_idle(p, 1, 3000), "settled");
    spfw_free(&p);
}

static void test_cancel_and_free(void)
{
    struct spfw_pool *p = pool_new(2, 5000, 100, "mx.test.example");
    struct res a = {0}, b = {0}, c = {0}, d = {0};
    int pids[4] = {0};
    size_t n;
    int all_gone = 1;

    fake_dns_set(dns, "hang2.example", DNS_OK, "hang", 300, 0);
    fake_dns_set(dns, "slow2.example", DNS_OK, "pass", 300, 200);
    fake_dns_set(dns, "cx.example", DNS_OK, "pass", 300, 100);

    /* a running job cancelled: not called; its evaluation still fills the cache */
    a.job = spfw_eval(p, "192.0.2.8", "", "u@cx.example", cb, &a);
    spfw_cancel(&a.job);
    run_ms(300);
    is_int(a.called, 0, "cancelled running job not called");
    b.job = spfw_eval(p, "192.0.2.8", "", "u@cx.example", cb, &b);
    ok(wait_all(&b, 1, 1000), "same job again");
    is_int((long long)stats(p).cache_hits, 1, "the cancelled job's evaluation was cached");

    /* a queued job cancelled: never evaluated */
    {
        struct spfw_stats s0 = stats(p);

        a = (struct res){0};
        b = (struct res){0};
        c = (struct res){0};
        a.job = spfw_eval(p, "192.0.2.8", "", "u@slow2.example", cb, &a);
        b.job = spfw_eval(p, "192.0.2.8", "", "v@slow2.example", cb, &b);
        c.job = spfw_eval(p, "192.0.2.8", "", "w@slow2.example", cb, &c);
        is_int(stats(p).queued, 1, "third job queued");
        spfw_cancel(&c.job);
        is_int(stats(p).queued, 0, "cancelled: queue empty");
        ok(wait_all(&a, 1, 2000) && wait_all(&b, 1, 2000), "the other two done");
        run_ms(50);
        is_int(c.called, 0, "cancelled queued job not called");
        is_int((long long)(stats(p).evaluations - s0.evaluations), 2,
               "cancelled queued job never evaluated");
    }

    /* spfw_free with a hung worker, a queued job and a pending cache hit */
    a = (struct res){0};
    b = (struct res){0};
    c = (struct res){0};
    a.job = spfw_eval(p, "192.0.2.9", "", "u@hang2.example", cb, &a);
    b.job = spfw_eval(p, "192.0.2.9", "", "v@hang2.example", cb, &b);
    c.job = spfw_eval(p, "192.0.2.9", "", "w@hang2.example", cb, &c);
    d.job = spfw_eval(p, "192.0.2.8", "", "u@cx.example", cb, &d);
    run_ms(100);
    n = spfw_worker_pids(p, pids, 4);
    is_int((long long)n, 2, "2 worker pids");
    ok(d.called == 1, "cache hit done");
    d = (struct res){0};
    d.job = spfw_eval(p, "192.0.2.8", "", "u@cx.example", cb, &d);
    spfw_free(&p);
    for (size_t i = 0; i < n; i++)
        all_gone &= reaped(pids[i]) && kill(pids[i], 0) < 0; /* at once */
    ok(all_gone, "spfw_free: no worker left, none a zombie");
    run_ms(100);
    ok(!a.called && !b.called && !c.called && !d.called, "spfw_free: callbacks not called");

    /* spfw_free from inside a callback, with more completions pending */
    p = pool_new(1, 5000, 100, "mx.test.example");
    a = (struct res){0};
    b = (struct res){0};
    a.job = spfw_eval(p, "192.0.2.8", "", "u@cx.example", cb, &a);
    b.job = spfw_eval(p, "192.0.2.8", "", "u@cx.example", cb, &b);
    n = spfw_worker_pids(p, pids, 4);
    a.free_pool = &p;
    ok(wait_all(&a, 1, 2000), "first callback ran");
    run_ms(50);
    ok(p == NULL, "pool freed from inside the callback");
    is_int(b.called, 0, "the other waiter is not called after spfw_free");
    ok(n == 1 && reaped(pids[0]), "its worker is gone");
}

static void test_reconfigure(void)
{
    struct spfw_pool *p = pool_new(1, 3000, 0, "one.example");
    struct spfw_config c = {.workers = 3,
                            .eval_timeout_ms = 3000,
                            .receiver = "two.example",
                            .verdict_cache_size = 0,
                            .verdict_cache_ttl_s = 300};
    struct res r = {0};

    fake_dns_set(dns, "r.example", DNS_OK, "receiver", 300, 0);
    spfw_reconfigure(p, &c);
    is_int(stats(p).idle, 3, "grown to 3 workers");
    r.job = spfw_eval(p, "192.0.2.10", "", "x@r.example", cb, &r);
    ok(wait_all(&r, 1, 2000), "done");
    is_str(r.v.explanation, "two.example", "new receiver name reaches the worker");
    c.workers = 1;
    spfw_reconfigure(p, &c);
    is_int(stats(p).idle, 1, "shrunk to 1 worker");
    spfw_free(&p);
}

/* workers that die at start are respawned with backoff, not in a fork loop */
static void test_backoff(void)
{
    struct spfw_pool *p = pool_new(1, 3000, 0, "failnew");
    struct spfw_config c = {.workers = 1,
                            .eval_timeout_ms = 3000,
                            .receiver = "fixed.example",
                            .verdict_cache_size = 0,
                            .verdict_cache_ttl_s = 300};
    struct spfw_stats s;

    ok(p != NULL, "pool created");
    run_ms(1000);
    s = stats(p);
    diag("1 s of failing starts: %llu deaths", (unsigned long long)s.worker_deaths);
    ok(s.worker_deaths >= 2 && s.worker_deaths <= 8, "respawned with backoff");
    spfw_reconfigure(p, &c);
    ok(wait_idle(p, 1, 3000), "a worker starts once the cause is gone");
    spfw_free(&p);
}

int main(void)
{
    struct dns_config dc;
    uint64_t t0 = now_ms();

    setvbuf(stdout, NULL, _IOLBF, 0);
    base = event_base_new();
    dns_config_defaults(&dc);
    dns = dns_new(base, &dc);

    test_basic();
    test_concurrency();
    test_single_flight_and_cache();
    test_domain_key();
    test_deadline();
    test_hang_crash_badframe();
    test_cancel_and_free();
    test_reconfigure();
    test_backoff();

    {
        siginfo_t si;

        ok(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD,
           "no child process left at all, not even a zombie");
    }
    diag("total %llu ms", (unsigned long long)(now_ms() - t0));
    dns_free(&dns);
    event_base_free(base);
    return tap_done();
}
