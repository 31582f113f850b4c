/* test_rgrey.c - the greylist store against a real redis-server the test
 * starts on a free loopback port and stops by the PID in its pidfile.
 * Skipped (with a diag) when redis-server is not installed.
 *
 * Checks: the timeline on an injected clock (keys, fields, TTLs); the Lua
 * against the C reference on random timelines (verdicts and seconds left,
 * AWL included); real short delays, windows and max ages expiring by TTL;
 * the AWL after N passes; two instances ("two MX") sharing state; NOSCRIPT
 * fallback; db selection; cancel; callbacks never synchronous; Redis down ->
 * GREY_ERROR at once, Redis stopped (SIGSTOP) -> GREY_ERROR at the timeout,
 * then recovery. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "grey.h"
#include "rgrey.h"
#include "redis_srv.h"
#include "tap.h"

#define S 1000LL
#define HOUR (3600 * S)
#define DAY (86400 * S)
#define T0 1704196800000LL

static struct event_base *base;
static char tmpdir[64];
static struct rsrv rs; /* the redis-server of this test */
static char addr[64];

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* cmd_int: run a command on a fresh sync connection; integer reply or -999. */
static long long cmd_int(const char *fmt, ...)
{
    redisContext *c = rsrv_conn(&rs);
    redisReply *r;
    long long v = -999;
    va_list ap;

    if (c == NULL)
        return v;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

static void run_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

struct ans {
    int called;
    struct rgrey_result r;
};

static void on_ans(void *arg, const struct rgrey_result *r)
{
    struct ans *a = arg;
    a->called++;
    a->r = *r;
}

static void loop_until(int *flag, int timeout_ms)
{
    double t0 = mono();
    while (!*flag && (mono() - t0) * 1000 < timeout_ms)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(500);
}

static int wait_connected(struct rgrey *rg, int timeout_ms)
{
    struct rgrey_stats st;
    double t0 = mono();

    for (;;) {
        rgrey_get_stats(rg, &st);
        if (st.connected || (mono() - t0) * 1000 >= timeout_ms)
            return st.connected;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static int sync_calls;

/* check: one decision, waited for; also asserts the callback came later. */
static struct rgrey_result check(struct rgrey *rg, const char *key, const char *net, long long now,
                                 const struct grey_params *p)
{
    struct ans a = {0};
    struct rgrey_req *q = rgrey_check(rg, key, net, now, p, on_ans, &a);

    if (q == NULL) {
        a.r.verdict = GREY_ERROR;
        a.r.error = "no handle";
        return a.r;
    }
    if (a.called)
        sync_calls++;
    loop_until(&a.called, 5000);
    if (!a.called) {
        a.r.verdict = GREY_ERROR;
        a.r.error = "no callback";
    }
    return a.r;
}

static struct rgrey *mk(const char *prefix, unsigned db, unsigned timeout_ms)
{
    struct rgrey_config c = {addr, "", db, prefix, timeout_ms};
    struct rgrey *rg = rgrey_new(base, &c);

    if (rg != NULL && rsrv_pid(&rs) > 0 && !wait_connected(rg, 3000))
        diag("rgrey did not connect");
    return rg;
}

/* The timeline on an injected clock, keys and TTLs as documented. */
static void t_timeline(void)
{
    struct grey_params p;
    struct rgrey *rg = mk("t1", 0, 0);
    char key[GREY_KEY_MAX], gk[128];
    struct rgrey_result r;

    grey_params_init(&p);
    p.awl_count = 0;
    grey_triplet_key("192.0.2.0/24", "a@example.com", "b@example.net", key);
    snprintf(gk, sizeof(gk), "t1:grey:{%s}", key);

    r = check(rg, key, "192.0.2.0/24", T0, &p);
    is_str(grey_verdict_name(r.verdict), "defer", "first sight: defer");
    is_int(r.wait_s, 300, "first sight: 300 s left");
    ok(r.error == NULL, "no error text on a verdict");
    {
        long long ttl = cmd_int("PTTL %s", gk);
        ok(ttl > 2 * DAY - 5 * S && ttl <= 2 * DAY, "pending TTL = retry window (%lld)", ttl);
    }
    is_int(cmd_int("HEXISTS %s f", gk), 1, "key %s holds f", gk);
    r = check(rg, key, "192.0.2.0/24", T0 + 100 * S, &p);
    is_str(grey_verdict_name(r.verdict), "defer", "early retry: defer");
    is_int(r.wait_s, 200, "early retry: 200 s left");
    r = check(rg, key, "192.0.2.0/24", T0 + 299 * S + 1, &p);
    is_int(r.wait_s, 1, "1 ms short: 1 s left");
    r = check(rg, key, "192.0.2.0/24", T0 + 301 * S, &p);
    is_str(grey_verdict_name(r.verdict), "pass_new", "retry after the delay: pass_new");
    {
        long long ttl = cmd_int("PTTL %s", gk);
        ok(ttl > 35 * DAY - 5 * S && ttl <= 35 * DAY, "passed TTL = max age (%lld)", ttl);
    }
    cmd_int("PEXPIRE %s 100000", gk);
    r = check(rg, key, "192.0.2.0/24", T0 + 5 * DAY, &p);
    is_str(grey_verdict_name(r.verdict), "pass", "passed: pass");
    ok(cmd_int("PTTL %s", gk) > 34 * DAY, "max age TTL refreshed on use");
    r = check(rg, key, "192.0.2.0/24", T0 + 41 * DAY, &p);
    is_str(grey_verdict_name(r.verdict), "defer", "unused past max age: defer again");
    r = check(rg, key, "192.0.2.0/24", T0 + 41 * DAY + 2 * DAY + 1, &p);
    is_int(r.wait_s, 300, "retry after the window: full delay again");
    rgrey_free(&rg);
    ok(rg == NULL, "free NULLs");
}

/* The Lua against grey_step / grey_awl_*: random timelines, several
 * triplets and networks, clocks that jump (days) and go back (skew). */
static void t_mirror(const char *prefix, unsigned awl_count, unsigned seed)
{
    struct grey_params p;
    struct rgrey *rg = mk(prefix, 0, 0);
    struct grey_state st[8] = {{0}};
    struct grey_awl aw[4] = {{0}};
    const char *nets[4] = {"198.51.100.0/24", "2001:db8:1:2::/64", "192.0.2.0/24",
                           "2001:db8:ffff::/48"};
    char keys[8][GREY_KEY_MAX];
    long long now = T0;
    int mism = 0, n = 600, seen[5] = {0}, edges = 0;

    grey_params_init(&p);
    p.delay_ms = 300 * S;
    p.window_ms = 1 * DAY;
    p.max_age_ms = 5 * DAY;
    p.awl_count = awl_count;
    for (int i = 0; i < 8; i++) {
        char rc[32];
        snprintf(rc, sizeof(rc), "r%d@example.org", i);
        grey_triplet_key(nets[i % 4], "s@example.com", rc, keys[i]);
    }
    srand(seed);
    for (int i = 0; i < n; i++) {
        int t = rand() % 8, net = t % 4, kind = rand() % 10;
        long long step = 0, target = 0;
        /* mostly the exact edge or 1 ms either side, sometimes up to 1 s */
        long long jit = rand() % 4 == 0 ? rand() % 2001 - 1000 : rand() % 3 - 1;

        /* kinds 6..9: aim at an edge of some triplet's (or network's) state */
        for (int k = 0; k < 8 && kind >= 6 && target == 0; k++) {
            int u = (t + k) % 8;
            const struct grey_state *x = &st[u];
            long long tg = 0;
            if (kind == 6 && x->exists && !x->passed)
                tg = x->first_ms + p.delay_ms;
            else if (kind == 7 && x->exists && !x->passed)
                tg = x->first_ms + p.window_ms;
            else if (kind == 8 && x->exists && x->passed)
                tg = x->last_ms + p.max_age_ms;
            else if (kind == 9 && aw[u % 4].exists)
                tg = aw[u % 4].last_ms + (rand() % 2 ? p.awl_interval_ms : p.max_age_ms);
            if (tg + jit > now - 60 * S) {
                target = tg + jit;
                t = u;
                net = u % 4;
            }
        }
        if (target > 0) {
            step = target - now;
            edges++;
        } else {
            switch (kind % 6) {
            case 0:
                step = rand() % (10 * S);
                break;
            case 1:
                step = rand() % (400 * S);
                break;
            case 2:
                step = rand() % (2 * HOUR);
                break;
            case 3:
                step = rand() % (2 * DAY);
                break;
            case 4:
                step = -(rand() % (60 * S)); /* another MX's clock */
                break;
            default:
                step = rand() % (4 * DAY);
                break;
            }
        }
        now += step;
        /* the C reference */
        struct grey_step o;
        struct grey_awl na;
        int w;
        enum grey_verdict want;
        unsigned want_wait = 0;
        if (grey_awl_check(&aw[net], now, &p, &na, &w)) {
            want = GREY_PASS_AWL;
            aw[net] = na;
        } else {
            grey_step(&st[t], now, &p, &o);
            st[t] = o.next;
            want = o.verdict;
            want_wait = o.wait_s;
            if (want == GREY_PASS_NEW && p.awl_count > 0) {
                grey_awl_pass(&aw[net], now, &p, &na, &w);
                aw[net] = na;
            }
        }
        struct rgrey_result r = check(rg, keys[t], nets[net], now, &p);
        seen[want]++;
        if (r.verdict != want || r.wait_s != want_wait) {
            if (mism++ < 5)
                diag("step %d: redis %s/%u, C %s/%u", i, grey_verdict_name(r.verdict), r.wait_s,
                     grey_verdict_name(want), want_wait);
        }
    }
    is_int(mism, 0, "mirror (awl %u): Lua and C agree on %d random attempts (%d at edges)",
           awl_count, n, edges);
    ok(seen[GREY_DEFER] > 20 && seen[GREY_PASS] > 20 && seen[GREY_PASS_NEW] > 5 &&
           (awl_count == 0 || seen[GREY_PASS_AWL] > 5),
       "mirror (awl %u): verdicts exercised (defer %d pass %d new %d awl %d)", awl_count, seen[0],
       seen[1], seen[2], seen[3]);
    rgrey_free(&rg);
}

/* Real time, short durations: the TTLs do the expiring. */
static void t_realtime(void)
{
    struct grey_params p;
    struct rgrey *rg = mk("t3", 0, 0);
    char key[GREY_KEY_MAX], key2[GREY_KEY_MAX], gk[128];
    struct rgrey_result r;
    long long t;

    grey_params_init(&p);
    p.delay_ms = 1 * S;
    p.window_ms = 2 * S;
    p.max_age_ms = 3 * S;
    p.awl_count = 0;
    grey_triplet_key("203.0.113.0/24", "rt@example.com", "x@example.net", key);
    grey_triplet_key("203.0.113.0/24", "rt@example.com", "y@example.net", key2);
    snprintf(gk, sizeof(gk), "t3:grey:{%s}", key);

    r = check(rg, key, "203.0.113.0/24", wall_ms(), &p);
    is_int(r.verdict, GREY_DEFER, "rt: first sight defer");
    r = check(rg, key2, "203.0.113.0/24", wall_ms(), &p);
    is_int(r.verdict, GREY_DEFER, "rt: second triplet defer");
    usleep(1100 * 1000);
    r = check(rg, key, "203.0.113.0/24", wall_ms(), &p);
    is_int(r.verdict, GREY_PASS_NEW, "rt: retry after 1.1 s passes");
    usleep(1200 * 1000); /* 2.3 s after first sight: the pending key2 has expired */
    is_int(cmd_int("EXISTS t3:grey:{%s}", key2), 0, "rt: pending triplet gone after the window");
    r = check(rg, key2, "203.0.113.0/24", wall_ms(), &p);
    is_int(r.verdict, GREY_DEFER, "rt: retry after the window: defer");
    is_int(r.wait_s, 1, "rt: ... with the full delay");
    r = check(rg, key, "203.0.113.0/24", wall_ms(), &p);
    is_int(r.verdict, GREY_PASS, "rt: passed triplet passes");
    t = cmd_int("PTTL %s", gk);
    ok(t > 2000 && t <= 3000, "rt: passed TTL = max age (%lld ms)", t);
    usleep(3200 * 1000);
    is_int(cmd_int("EXISTS %s", gk), 0, "rt: passed triplet gone after max age idle");
    r = check(rg, key, "203.0.113.0/24", wall_ms(), &p);
    is_int(r.verdict, GREY_DEFER, "rt: after max age: defer");
    rgrey_free(&rg);
}

static void t_awl(void)
{
    struct grey_params p;
    struct rgrey *rg = mk("t4", 0, 0);
    char key[GREY_KEY_MAX], other[GREY_KEY_MAX];
    struct rgrey_result r;
    long long now = T0;
    const char *net = "192.0.2.0/24";

    grey_params_init(&p);
    p.awl_count = 2;
    for (int i = 0; i < 2; i++) {
        char rc[32];
        snprintf(rc, sizeof(rc), "u%d@example.org", i);
        grey_triplet_key(net, "s@example.com", rc, key);
        r = check(rg, key, net, now, &p);
        is_int(r.verdict, GREY_DEFER, "awl: triplet %d deferred", i);
        now += 10 * 60 * S;
        r = check(rg, key, net, now, &p);
        is_int(r.verdict, GREY_PASS_NEW, "awl: triplet %d passes", i);
        now += HOUR;
    }
    run_ms(50); /* the increment is fire-and-forget */
    is_int(cmd_int("HGET t4:awl:{%s} c", net), 2, "awl: two passes counted");
    {
        long long ttl = cmd_int("PTTL t4:awl:{%s}", net);
        ok(ttl > 35 * DAY - 5 * S && ttl <= 35 * DAY, "awl: TTL = max age (%lld)", ttl);
    }
    grey_triplet_key(net, "new@example.com", "new@example.org", key);
    r = check(rg, key, net, now, &p);
    is_int(r.verdict, GREY_PASS_AWL, "awl: a new triplet from the network passes (AWL)");
    is_int(cmd_int("EXISTS t4:grey:{%s}", key), 0, "awl: the triplet was not stored");
    grey_triplet_key("192.0.3.0/24", "new@example.com", "new@example.org", other);
    r = check(rg, other, "192.0.3.0/24", now, &p);
    is_int(r.verdict, GREY_DEFER, "awl: another network is greylisted");
    p.awl_count = 0;
    r = check(rg, key, net, now, &p);
    is_int(r.verdict, GREY_DEFER, "awl: awl_count 0 disables the AWL");
    rgrey_free(&rg);
}

/* The local AWL cache: "not listed" is reused for 1 s of the caller's clock,
 * "listed" for up to a minute; an AWL increment sent by this store forgets
 * what it knew about the network. */
static void t_awl_cache(void)
{
    struct grey_params p;
    struct rgrey *rg = mk("t8", 0, 0);
    char key[GREY_KEY_MAX];
    struct rgrey_result r;
    struct rgrey_stats st;
    const char *net = "192.0.2.0/24";
    long long now = T0;
    uint64_t c0;

    grey_params_init(&p);
    p.awl_count = 1;
    p.delay_ms = 100; /* the first retry passes 0.1 s later (caller's clock) */
    grey_triplet_key(net, "s@example.com", "a@example.org", key);
    r = check(rg, key, net, now, &p);
    is_int(r.verdict, GREY_DEFER, "awl cache: first triplet deferred (net not listed)");
    rgrey_get_stats(rg, &st);
    c0 = st.awl_cached;
    is_int((int)c0, 0, "awl cache: the first lookup went to Redis");

    /* A second new triplet 0.5 s later: "not listed" comes from the cache,
     * and the verdict is the same as Redis would give. */
    grey_triplet_key(net, "s@example.com", "b@example.org", key);
    r = check(rg, key, net, now + 500, &p);
    is_int(r.verdict, GREY_DEFER, "awl cache: second triplet deferred");
    rgrey_get_stats(rg, &st);
    is_int((int)(st.awl_cached - c0), 1, "awl cache: its AWL lookup came from the cache");

    /* 1 s later the negative answer is stale: Redis is asked again. */
    grey_triplet_key(net, "s@example.com", "c@example.org", key);
    r = check(rg, key, net, now + 1100, &p);
    is_int(r.verdict, GREY_DEFER, "awl cache: third triplet deferred");
    rgrey_get_stats(rg, &st);
    is_int((int)(st.awl_cached - c0), 1, "awl cache: after 1 s Redis was asked");

    /* The third triplet retried: PASS_NEW lists the network (awl_count 1).
     * The "not listed" cached at +1.1 s must not hide that at +1.3 s. */
    r = check(rg, key, net, now + 1250, &p);
    is_int(r.verdict, GREY_PASS_NEW, "awl cache: the retry passes and lists the network");
    grey_triplet_key(net, "s@example.com", "d@example.org", key);
    r = check(rg, key, net, now + 1300, &p);
    is_int(r.verdict, GREY_PASS_AWL, "awl cache: listed at once (the increment forgot the entry)");

    /* "listed" is now cached: with Redis stopped, the network still passes,
     * at once, without a Redis round trip. */
    {
        long pid = rsrv_pid(&rs);
        double t0;

        kill((pid_t)pid, SIGSTOP);
        t0 = mono();
        grey_triplet_key(net, "s@example.com", "e@example.org", key);
        r = check(rg, key, net, now + 30 * S, &p);
        kill((pid_t)pid, SIGCONT);
        is_int(r.verdict, GREY_PASS_AWL, "awl cache: listed network passes with Redis stopped");
        ok(mono() - t0 < 0.5, "awl cache: ... without waiting for Redis (%.3f s)", mono() - t0);
        rgrey_get_stats(rg, &st);
        is_int((int)st.pass_awl, 2, "awl cache: counted as an AWL pass");
    }
    /* A minute later it is asked again (Redis back). */
    grey_triplet_key(net, "s@example.com", "f@example.org", key);
    c0 = st.awl_cached;
    r = check(rg, key, net, now + 62 * S, &p);
    is_int(r.verdict, GREY_PASS_AWL, "awl cache: still listed after a minute (from Redis)");
    rgrey_get_stats(rg, &st);
    is_int((int)(st.awl_cached - c0), 0, "awl cache: ... which was asked");
    /* Another awl_count: the cached answer is not used. */
    p.awl_count = 5;
    grey_triplet_key(net, "s@example.com", "g@example.org", key);
    r = check(rg, key, net, now + 63 * S, &p);
    is_int(r.verdict, GREY_DEFER, "awl cache: awl_count 5 -> not listed (1 pass), asked Redis");
    rgrey_free(&rg);
}

/* Two daemons (two MX) on one Redis: a retry through the other passes. */
static void t_two(void)
{
    struct grey_params p;
    struct rgrey *a = mk("t5", 0, 0), *b = mk("t5", 0, 0);
    char key[GREY_KEY_MAX];
    struct rgrey_result r;
    struct grey_triplet t1, t2;

    grey_params_init(&p);
    ok(grey_triplet_make(&p, "192.0.2.10", "Bounce-77@Lists.Example", "rcpt@example.org", &t1) ==
               0 &&
           grey_triplet_make(&p, "192.0.2.99", "bounce-78@lists.example", "RCPT@example.org",
                             &t2) == 0,
       "two triplets computed on two hosts");
    memcpy(key, t1.key, sizeof(key));
    r = check(a, t1.key, t1.net, T0, &p);
    is_int(r.verdict, GREY_DEFER, "two: MX a defers");
    r = check(b, t2.key, t2.net, T0 + 60 * S, &p);
    is_int(r.verdict, GREY_DEFER, "two: MX b, early: defer");
    is_int(r.wait_s, 240, "two: MX b knows the time left");
    r = check(b, t2.key, t2.net, T0 + 301 * S, &p);
    is_int(r.verdict, GREY_PASS_NEW, "two: retry through MX b passes");
    r = check(a, key, t1.net, T0 + 400 * S, &p);
    is_int(r.verdict, GREY_PASS, "two: and MX a sees it passed");
    rgrey_free(&a);
    rgrey_free(&b);
}

static void t_misc(void)
{
    struct grey_params p;
    struct rgrey *rg = mk("t6", 3, 0);
    char key[GREY_KEY_MAX];
    struct rgrey_result r;
    struct rgrey_stats st;

    grey_params_init(&p);
    grey_triplet_key("192.0.2.0/24", "m@example.com", "m@example.org", key);
    r = check(rg, key, "192.0.2.0/24", T0, &p);
    is_int(r.verdict, GREY_DEFER, "db 3: defer");
    is_int(cmd_int("EXISTS t6:grey:{%s}", key), 0, "db 3: nothing in db 0");
    {
        redisContext *c = rsrv_conn(&rs);
        redisReply *x = redisCommand(c, "SELECT 3");
        freeReplyObject(x);
        x = redisCommand(c, "EXISTS t6:grey:{%s}", key);
        is_int(x && x->type == REDIS_REPLY_INTEGER ? x->integer : -1, 1, "db 3: key there");
        freeReplyObject(x);
        x = redisCommand(c, "SCRIPT FLUSH");
        freeReplyObject(x);
        redisFree(c);
    }
    r = check(rg, key, "192.0.2.0/24", T0 + 400 * S, &p);
    is_int(r.verdict, GREY_PASS_NEW, "after SCRIPT FLUSH: EVAL fallback works");
    r = check(rg, key, "192.0.2.0/24", T0 + 500 * S, &p);
    is_int(r.verdict, GREY_PASS, "and EVALSHA again");

    /* cancel: the callback never runs */
    {
        struct ans a = {0};
        struct rgrey_req *q = rgrey_check(rg, key, "192.0.2.0/24", T0, &p, on_ans, &a);
        rgrey_cancel(&q);
        ok(q == NULL, "cancel NULLs the handle");
        run_ms(200);
        is_int(a.called, 0, "cancelled: no callback");
        rgrey_cancel(&q); /* harmless */
    }
    /* bad arguments: NULL, no callback */
    ok(rgrey_check(rg, key, "{x}", T0, &p, on_ans, NULL) == NULL, "net with braces refused");
    ok(rgrey_check(rg, "", "192.0.2.0/24", T0, &p, on_ans, NULL) == NULL, "empty key refused");
    rgrey_get_stats(rg, &st);
    is_int((long long)st.cancelled, 1, "stats: cancelled");
    is_int((long long)st.pending, 0, "stats: nothing pending");
    ok(st.connected, "stats: connected");
    rgrey_free(&rg);
}

/* Redis away: GREY_ERROR quickly, never a hang; then recovery. */
static void t_down(void)
{
    struct grey_params p;
    struct rgrey *rg = mk("t7", 0, 300);
    char key[GREY_KEY_MAX];
    struct rgrey_result r;
    struct rgrey_stats st;
    double t0;
    long pid;

    grey_params_init(&p);
    grey_triplet_key("192.0.2.0/24", "d@example.com", "d@example.org", key);
    r = check(rg, key, "192.0.2.0/24", T0, &p);
    is_int(r.verdict, GREY_DEFER, "down: up first");

    /* stopped (SIGSTOP): no answer -> timeout */
    pid = rsrv_pid(&rs);
    kill((pid_t)pid, SIGSTOP);
    t0 = mono();
    r = check(rg, key, "192.0.2.0/24", T0 + 400 * S, &p);
    is_int(r.verdict, GREY_ERROR, "stopped: GREY_ERROR (%s)", r.error ? r.error : "");
    ok(mono() - t0 < 1.0, "stopped: answered at the timeout (%.3f s)", mono() - t0);
    kill((pid_t)pid, SIGCONT);
    ok(wait_connected(rg, 3000), "stopped: reconnected after SIGCONT");
    r = check(rg, key, "192.0.2.0/24", T0 + 401 * S, &p);
    is_int(r.verdict, GREY_PASS_NEW, "stopped: recovery, state kept");

    /* gone: the connection drops, checks fail at once */
    rsrv_stop(&rs, SIGTERM);
    t0 = mono();
    r = check(rg, key, "192.0.2.0/24", T0 + 402 * S, &p);
    is_int(r.verdict, GREY_ERROR, "down: GREY_ERROR (%s)", r.error ? r.error : "");
    ok(mono() - t0 < 0.5, "down: quick (%.3f s)", mono() - t0);
    for (int i = 0; i < 3; i++) {
        t0 = mono();
        r = check(rg, key, "192.0.2.0/24", T0 + 403 * S, &p);
        ok(r.verdict == GREY_ERROR && mono() - t0 < 0.1, "down: check %d fails at once (%.3f s)", i,
           mono() - t0);
    }
    {
        struct ans a = {0};
        struct rgrey_req *q = rgrey_check(rg, key, "192.0.2.0/24", T0, &p, on_ans, &a);
        ok(q != NULL && a.called == 0, "down: never a synchronous callback");
        rgrey_cancel(&q);
        run_ms(20);
        is_int(a.called, 0, "down: cancelled before the deferred error: no callback");
    }
    rgrey_get_stats(rg, &st);
    ok(!st.connected, "down: stats say disconnected");
    ok(st.errors >= 5 && st.timeouts >= 1 && st.unavailable >= 3,
       "down: counted (errors %llu timeouts %llu unavailable %llu)", (unsigned long long)st.errors,
       (unsigned long long)st.timeouts, (unsigned long long)st.unavailable);
    ok(rsrv_start(&rs) == 0, "down: redis restarted");
    ok(wait_connected(rg, 15000), "down: reconnected with backoff");
    r = check(rg, key, "192.0.2.0/24", T0 + 404 * S, &p);
    is_int(r.verdict, GREY_DEFER, "down: works again (fresh server: first sight)");
    rgrey_get_stats(rg, &st);
    ok(st.reconnects >= 1, "down: reconnects counted (%llu)", (unsigned long long)st.reconnects);
    rgrey_free(&rg);

    /* absent at start */
    rsrv_stop(&rs, SIGTERM);
    rg = mk("t8", 0, 0);
    r = check(rg, key, "192.0.2.0/24", T0, &p);
    is_int(r.verdict, GREY_ERROR, "absent at start: GREY_ERROR");
    ok(rsrv_start(&rs) == 0, "absent at start: redis started");
    ok(wait_connected(rg, 15000), "absent at start: connects later");
    r = check(rg, key, "192.0.2.0/24", T0, &p);
    is_int(r.verdict, GREY_DEFER, "absent at start: then works");
    rgrey_free(&rg);
}

int main(void)
{
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        diag("redis-server not installed: skipping");
        ok(1, "skipped");
        return tap_done();
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pd-rgrey-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        ok(0, "mkdtemp");
        return tap_done();
    }
    base = event_base_new();
    rsrv_set_dir(tmpdir);
    rs.port = rsrv_free_port();
    snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", rs.port);
    if (!ok(rsrv_start(&rs) == 0, "redis-server started on 127.0.0.1:%d", rs.port))
        return tap_done();
    {
        struct rgrey_config bad = {"nonsense", "", 0, "pd", 0};
        ok(rgrey_new(base, &bad) == NULL, "bad address refused");
    }
    t_timeline();
    t_mirror("t2a", 0, 12345);
    t_mirror("t2b", 2, 54321);
    t_realtime();
    t_awl();
    t_awl_cache();
    t_two();
    t_misc();
    t_down();
    is_int(sync_calls, 0, "no callback ever ran inside rgrey_check");
    rsrv_stop(&rs, SIGTERM);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            diag("could not remove %s", tmpdir);
    }
    event_base_free(base);
    return tap_done();
}
