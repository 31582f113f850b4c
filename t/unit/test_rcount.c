/* test_rcount.c - the counter writer against a real redis-server started by
 * the test on loopback (a free port, or a unix socket in a temporary
 * directory) and stopped by the PID in its pidfile. Skipped (with a diag) when
 * redis-server is not installed.
 *
 * Checks: keys, hash tags, counts, policy snapshot, first/last, TTLs; 10,000
 * rows pipelined (batches << rows); Redis absent at start then started; Redis
 * SIGKILLed mid-stream and restarted (AOF, fsync always) with no count lost;
 * buffer overflow counted exactly; AUTH + SELECT; unix socket; error replies
 * retried; reconfigure; flush at free; adds never block. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "rcount.h"
#include "rkeys.h"
#include "rrow.h"
#include "redis_srv.h"
#include "tap.h"

#define NOW 1704196800LL /* 2024-01-02 12:00:00 UTC */
#define DAY "20240102"

static struct event_base *base;
static char tmpdir[64];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static struct rcount_stats stats(struct rcount *rc)
{
    struct rcount_stats st;
    rcount_get_stats(rc, &st);
    return st;
}

/* wait_written: run the loop until `want` rows are acknowledged and nothing
 * is buffered, or timeout. */
static int wait_written(struct rcount *rc, uint64_t want, int timeout_ms)
{
    double t0 = now_s();
    while ((now_s() - t0) * 1000 < timeout_ms) {
        struct rcount_stats st = stats(rc);
        if (st.rows_written >= want && st.buffered == 0)
            return 1;
        run_ms(10);
    }
    return 0;
}

static int wait_connected(struct rcount *rc, int timeout_ms)
{
    double t0 = now_s();
    while ((now_s() - t0) * 1000 < timeout_ms) {
        if (stats(rc).connected)
            return 1;
        run_ms(10);
    }
    return 0;
}

static void mkrow(struct rrow *r, struct rrow_policy *p, const char *dom, int i)
{
    static const char *const disp[] = {"none", "quarantine", "reject"};
    static const char *const res[] = {"pass", "fail", "softfail", "none", "temperror"};

    memset(r, 0, sizeof(*r));
    memset(p, 0, sizeof(*p));
    snprintf(r->source_ip, sizeof(r->source_ip), "192.0.2.%d", i % 250);
    snprintf(r->disposition, sizeof(r->disposition), "%s", disp[i % 3]);
    snprintf(r->dmarc_spf, sizeof(r->dmarc_spf), "%s", i % 5 == 0 ? "pass" : "fail");
    snprintf(r->spf_domain, sizeof(r->spf_domain), "%s", dom);
    snprintf(r->spf_scope, sizeof(r->spf_scope), "mfrom");
    snprintf(r->spf_result, sizeof(r->spf_result), "%s", res[i % 5]);
    snprintf(r->envelope_from, sizeof(r->envelope_from), "%s", dom);
    snprintf(r->header_from, sizeof(r->header_from), "%s", dom);
    if (i % 7 == 0) {
        r->nreasons = 1;
        r->reasons[0].type = RROW_R_LOCAL_POLICY;
        snprintf(r->reasons[0].comment, sizeof(r->reasons[0].comment), "whitelist & co");
    }
    snprintf(p->domain, sizeof(p->domain), "%s", dom);
    snprintf(p->p, sizeof(p->p), "reject");
    snprintf(p->adkim, sizeof(p->adkim), "r");
    snprintf(p->aspf, sizeof(p->aspf), "r");
    snprintf(p->fo, sizeof(p->fo), "0");
    snprintf(p->testing, sizeof(p->testing), "n");
    snprintf(p->psd, sizeof(p->psd), "u");
    snprintf(p->discovery_method, sizeof(p->discovery_method), "treewalk");
    p->pct = 100;
    snprintf(p->rua, sizeof(p->rua), "mailto:dmarc@%s", dom);
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return r;
}

static long long cmd_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = -999;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    else if (r && r->type == REDIS_REPLY_NIL)
        v = -1000;
    if (r)
        freeReplyObject(r);
    return v;
}

/* sum_counts: the sum of every count in <prefix>:rpt:* */
static long long sum_counts(const struct rsrv *s, const char *prefix, int db)
{
    redisContext *c = rsrv_conn(s);
    redisReply *keys, *v;
    long long sum = 0;

    if (c == NULL)
        return -1;
    if (db)
        freeReplyObject(cmd(c, "SELECT %d", db));
    keys = cmd(c, "KEYS %s:rpt:*", prefix);
    for (size_t i = 0; keys && i < keys->elements; i++) {
        v = cmd(c, "HVALS %s", keys->element[i]->str);
        for (size_t j = 0; v && j < v->elements; j++)
            sum += strtoll(v->element[j]->str, NULL, 10);
        if (v)
            freeReplyObject(v);
    }
    if (keys)
        freeReplyObject(keys);
    redisFree(c);
    return sum;
}

static struct rcount *mk(const char *addr, const char *prefix, const char *pw, unsigned db,
                         unsigned buffer)
{
    struct rcount_config c = {addr, pw ? pw : "", db, prefix, 3600, buffer};
    return rcount_new(base, &c);
}

static char addr_buf[8][192];
static const char *tcp_addr(int slot, int port)
{
    snprintf(addr_buf[slot], sizeof(addr_buf[slot]), "tcp:127.0.0.1:%d", port);
    return addr_buf[slot];
}

/* ---- the tests ---- */

static void t_basic(struct rsrv *s)
{
    struct rcount *rc = mk(tcp_addr(0, s->port), "t1", NULL, 0, 1000);
    struct rrow x, y, d;
    struct rrow_policy px, py, dp;
    char key[RKEY_MAX], ex[RROW_ENC_MAX], ey[RROW_ENC_MAX];
    redisContext *c;
    redisReply *r;

    ok(rc != NULL, "basic: rcount_new");
    ok(wait_connected(rc, 3000), "basic: connected");
    mkrow(&x, &px, "example.org", 7);
    mkrow(&y, &py, "example.net", 8);
    is_int(rcount_add(rc, &x, &px, NOW), 0, "add x");
    snprintf(px.p, sizeof(px.p), "quarantine"); /* the last policy seen wins */
    is_int(rcount_add(rc, &x, &px, NOW + 5), 0, "add x again");
    is_int(rcount_add(rc, &y, &py, NOW - 3), 0, "add y");
    is_int(rcount_add(rc, &y, &py, NOW - 43200 - 1), 0, "add y the day before");
    ok(wait_written(rc, 4, 3000), "basic: 4 rows written");
    rrow_encode(&x, ex, sizeof(ex));
    rrow_encode(&y, ey, sizeof(ey));
    c = rsrv_conn(s);
    ok(c != NULL, "sync connection");
    if (c == NULL)
        return;
    is_int(cmd_int(c, "HGET t1:rpt:{example.org}:" DAY " %s", ex), 2, "x counted twice");
    is_int(cmd_int(c, "HLEN t1:rpt:{example.org}:" DAY), 1, "one field for x");
    is_int(cmd_int(c, "HGET t1:rpt:{example.net}:" DAY " %s", ey), 1, "y counted once");
    is_int(cmd_int(c, "HGET t1:rpt:{example.net}:20240101 %s", ey), 1, "y the day before");
    r = cmd(c, "HGETALL t1:rpt:{example.org}:" DAY);
    ok(r && r->elements == 2 && rrow_decode(r->element[0]->str, r->element[0]->len, &d) == 0 &&
           strcmp(d.source_ip, x.source_ip) == 0 && d.nreasons == 1 &&
           strcmp(d.reasons[0].comment, "whitelist & co") == 0,
       "HGETALL field decodes back to the row");
    if (r)
        freeReplyObject(r);
    r = cmd(c, "HGET t1:pol:{example.org}:" DAY " policy");
    ok(r && r->type == REDIS_REPLY_STRING && rrow_policy_decode(r->str, r->len, &dp) == 0 &&
           strcmp(dp.p, "quarantine") == 0 && strcmp(dp.rua, "mailto:dmarc@example.org") == 0,
       "policy snapshot: last seen wins");
    if (r)
        freeReplyObject(r);
    is_int(cmd_int(c, "HGET t1:pol:{example.org}:" DAY " first"), NOW, "first seen");
    is_int(cmd_int(c, "HGET t1:pol:{example.org}:" DAY " last"), NOW + 5, "last seen");
    is_int(cmd_int(c, "SCARD t1:idx:" DAY), 2, "idx has both domains");
    is_int(cmd_int(c, "SISMEMBER t1:idx:" DAY " example.net"), 1, "idx member");
    is_int(cmd_int(c, "SISMEMBER t1:idx:20240101 example.net"), 1, "idx of the day before");
    is_int(cmd_int(c, "SISMEMBER t1:days " DAY), 1, "days has the day");
    is_int(cmd_int(c, "SCARD t1:days"), 2, "days has both days");
    static const char *const ttl_keys[] = {"t1:rpt:{example.org}:" DAY, "t1:pol:{example.org}:" DAY,
                                           "t1:idx:" DAY, "t1:days",
                                           "t1:rpt:{example.net}:20240101"};
    for (size_t i = 0; i < sizeof(ttl_keys) / sizeof(ttl_keys[0]); i++) {
        long long ttl = cmd_int(c, "TTL %s", ttl_keys[i]);
        ok(ttl > 3500 && ttl <= 3600, "TTL of %s = %lld", ttl_keys[i], ttl);
    }
    /* the key schema's own formatting is what is in Redis */
    rkey_rpt(key, sizeof(key), "t1", "example.org", DAY);
    is_int(cmd_int(c, "EXISTS %s", key), 1, "rkey_rpt names the key written");
    redisFree(c);
    struct rcount_stats st = stats(rc);
    is_int((long long)st.rows_added, 4, "stats: added");
    is_int((long long)st.rows_written, 4, "stats: written");
    is_int((long long)st.errors, 0, "stats: no errors");
    is_int((long long)st.rows_dropped, 0, "stats: none dropped");
    ok(st.batches >= 1 && st.batches <= 4, "stats: %llu batches", (unsigned long long)st.batches);
    rcount_free(&rc, 0);
    ok(rc == NULL, "free NULLs the pointer");
}

static void t_pipeline(struct rsrv *s)
{
    struct rcount *rc = mk(tcp_addr(0, s->port), "t2", NULL, 0, 20000);
    static const char *const doms[] = {"a.example", "b.example", "c.example"};
    static int expect[600];
    struct rrow r;
    struct rrow_policy p;
    char enc[RROW_ENC_MAX];
    int bad = 0;

    ok(wait_connected(rc, 3000), "pipeline: connected");
    memset(expect, 0, sizeof(expect));
    for (int i = 0; i < 10000; i++) {
        int k = (i * 7919) % 600;
        mkrow(&r, &p, doms[k % 3], k);
        expect[k]++;
        if (rcount_add(rc, &r, &p, NOW) != 0)
            bad++;
        if (i % 1000 == 999) /* let some replies in between */
            event_base_loop(base, EVLOOP_NONBLOCK);
    }
    is_int(bad, 0, "10000 adds accepted");
    ok(wait_written(rc, 10000, 10000), "10000 rows written");
    is_int(sum_counts(s, "t2", 0), 10000, "counts sum exactly to 10000");
    redisContext *c = rsrv_conn(s);
    int wrong = 0;
    for (int k = 0; c && k < 600; k++) {
        mkrow(&r, &p, doms[k % 3], k);
        rrow_encode(&r, enc, sizeof(enc));
        if (cmd_int(c, "HGET t2:rpt:{%s}:" DAY " %s", doms[k % 3], enc) != expect[k])
            wrong++;
    }
    if (c)
        redisFree(c);
    is_int(wrong, 0, "every row's count exact");
    struct rcount_stats st = stats(rc);
    ok(st.batches <= 10000 / 50, "pipelined: %llu batches for 10000 rows",
       (unsigned long long)st.batches);
    rcount_free(&rc, 0);
}

static void t_absent_at_start(void)
{
    struct rsrv s = {.port = rsrv_free_port()};
    struct rcount *rc = mk(tcp_addr(1, s.port), "t3", NULL, 0, 1000);
    struct rrow r;
    struct rrow_policy p;
    int bad = 0;

    ok(rc != NULL, "absent: rcount_new with Redis away");
    for (int i = 0; i < 500; i++) {
        mkrow(&r, &p, "absent.example", i);
        bad += rcount_add(rc, &r, &p, NOW) != 0;
    }
    is_int(bad, 0, "absent: 500 rows buffered");
    run_ms(300);
    struct rcount_stats st = stats(rc);
    ok(!st.connected && st.buffered == 500 && st.errors > 0,
       "absent: not connected, 500 buffered, errors %llu", (unsigned long long)st.errors);
    ok(rsrv_start(&s) == 0, "absent: redis started on port %d", s.port);
    ok(wait_written(rc, 500, 15000), "absent: all flushed after Redis came");
    is_int(sum_counts(&s, "t3", 0), 500, "absent: exact counts");
    ok(stats(rc).reconnects >= 1, "absent: reconnects counted");
    rcount_free(&rc, 0);
    rsrv_stop(&s, SIGTERM);
}

/* t_killed: Redis SIGKILLed while rows keep coming, restarted on the same
 * port 100 ms later. AOF with fsync always, so what Redis acknowledged
 * survives the kill.
 * quiesce = 1: killed when nothing is in flight (all acknowledged): the rows
 *   added while it is down wait in the buffer; the sum must be exact.
 * quiesce = 0: killed at any moment, possibly with a batch in flight: no
 *   count may be lost; a batch Redis applied (and logged) but could not answer
 *   is re-sent, the documented at-least-once window: at most one batch. */
static void t_killed(int quiesce)
{
    struct rsrv s = {.port = rsrv_free_port()};
    const char *what = quiesce ? "killed (quiescent)" : "killed (mid-batch)";
    char prefix[16];
    struct rcount *rc;
    struct rrow r;
    struct rrow_policy p;
    int added = 0;

    snprintf(prefix, sizeof(prefix), "t4%c", quiesce ? 'q' : 'm');
    snprintf(s.extra, sizeof(s.extra), "--appendonly yes --appendfsync always");
    if (rsrv_start(&s) != 0) {
        ok(0, "%s: redis start", what);
        return;
    }
    rc = mk(tcp_addr(2, s.port), prefix, NULL, 0, 100000);
    ok(wait_connected(rc, 3000), "%s: connected", what);
    for (int round = 0; round < 30; round++) {
        for (int i = 0; i < 200; i++) {
            mkrow(&r, &p, round % 2 ? "k1.example" : "k2.example", round * 200 + i);
            added += rcount_add(rc, &r, &p, NOW) == 0;
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        run_ms(5);
        if (round == 10) {
            if (quiesce)
                ok(wait_written(rc, (uint64_t)added, 3000), "%s: quiescent before the kill", what);
            else
                event_base_loop(base, EVLOOP_NONBLOCK); /* a batch leaves now */
            rsrv_stop(&s, SIGKILL);
        }
        if (round == 20)
            ok(rsrv_start(&s) == 0, "%s: restarted on the same port", what);
    }
    is_int(added, 6000, "%s: every add accepted", what);
    ok(wait_written(rc, 6000, 20000), "%s: buffer flushed after the restart", what);
    struct rcount_stats st = stats(rc);
    long long sum = sum_counts(&s, prefix, 0);
    if (quiesce)
        is_int(sum, added, "%s: sum equals rows added (%lld)", what, sum);
    else
        ok(sum >= added && sum - added <= 256, "%s: no count lost (sum %lld, added %d)", what, sum,
           added);
    if (sum != added)
        diag("%s: %lld counts doubled by the at-least-once window", what, sum - added);
    is_int((long long)st.rows_written, added, "%s: rows_written", what);
    ok(st.errors > 0 && st.reconnects > 0, "%s: loss seen and reconnected", what);
    rcount_free(&rc, 0);
    rsrv_stop(&s, SIGTERM);
}

static void t_overflow(void)
{
    struct rsrv s = {.port = rsrv_free_port()};
    struct rcount *rc = mk(tcp_addr(3, s.port), "t5", NULL, 0, 100);
    struct rrow r;
    struct rrow_policy p;
    int refused = 0;

    for (int i = 0; i < 150; i++) {
        mkrow(&r, &p, "full.example", i);
        refused += rcount_add(rc, &r, &p, NOW) != 0;
    }
    struct rcount_stats st = stats(rc);
    is_int(refused, 50, "overflow: 50 adds refused");
    is_int((long long)st.rows_dropped, 50, "overflow: rows_dropped exact");
    is_int((long long)st.rows_added, 100, "overflow: rows_added");
    is_int(st.buffered, 100, "overflow: 100 buffered");
    ok(rsrv_start(&s) == 0, "overflow: redis started");
    ok(wait_written(rc, 100, 15000), "overflow: the 100 flushed");
    is_int(sum_counts(&s, "t5", 0), 100, "overflow: sum 100");
    rcount_free(&rc, 0);

    /* buffer 0: nothing kept while away */
    struct rsrv none = {.port = rsrv_free_port()};
    rc = mk(tcp_addr(3, none.port), "t5b", NULL, 0, 0);
    refused = 0;
    for (int i = 0; i < 10; i++) {
        mkrow(&r, &p, "zero.example", i);
        refused += rcount_add(rc, &r, &p, NOW) != 0;
    }
    is_int(refused, 10, "buffer 0, Redis away: every add dropped");
    is_int((long long)stats(rc).rows_dropped, 10, "buffer 0: counted");
    rcount_free(&rc, 0);
    /* buffer 0 while connected: written */
    rc = mk(tcp_addr(3, s.port), "t5c", NULL, 0, 0);
    ok(wait_connected(rc, 3000), "buffer 0: connected");
    for (int i = 0; i < 10; i++) {
        mkrow(&r, &p, "zero.example", i);
        rcount_add(rc, &r, &p, NOW);
    }
    ok(wait_written(rc, 10, 3000), "buffer 0 while connected: written");
    is_int(sum_counts(&s, "t5c", 0), 10, "buffer 0: sum 10");
    rcount_free(&rc, 0);
    rsrv_stop(&s, SIGTERM);
}

static void t_auth(void)
{
    struct rsrv s = {.port = rsrv_free_port(), .password = "s3cret pass"};
    struct rcount *rc, *bad;
    struct rrow r;
    struct rrow_policy p;

    if (rsrv_start(&s) != 0) {
        ok(0, "auth: redis start");
        return;
    }
    rc = mk(tcp_addr(4, s.port), "t6", "s3cret pass", 3, 100);
    bad = mk(tcp_addr(4, s.port), "t6bad", "wrong", 0, 100);
    mkrow(&r, &p, "auth.example", 1);
    rcount_add(rc, &r, &p, NOW);
    rcount_add(bad, &r, &p, NOW);
    ok(wait_written(rc, 1, 3000), "auth: written with AUTH + SELECT 3");
    is_int(sum_counts(&s, "t6", 3), 1, "auth: the count is in db 3");
    is_int(sum_counts(&s, "t6", 0), 0, "auth: nothing in db 0");
    run_ms(300);
    struct rcount_stats st = stats(bad);
    ok(!st.connected && st.buffered == 1 && st.errors > 0 && st.rows_written == 0,
       "auth: wrong password never counts as connected, row kept");
    is_int(sum_counts(&s, "t6bad", 0), 0, "auth: nothing written with a wrong password");
    /* reconfigure the bad one with the right password: it flushes */
    struct rcount_config good = {tcp_addr(4, s.port), "s3cret pass", 0, "t6bad", 3600, 100};
    rcount_reconfigure(bad, &good);
    ok(wait_written(bad, 1, 3000), "reconfigure: new password, row flushed");
    is_int(sum_counts(&s, "t6bad", 0), 1, "reconfigure: sum 1");
    rcount_free(&rc, 0);
    rcount_free(&bad, 0);
    rsrv_stop(&s, SIGTERM);
}

static void t_unix(void)
{
    struct rsrv s = {.port = 0};
    char addr[192];
    struct rcount *rc;
    struct rrow r;
    struct rrow_policy p;

    snprintf(s.sock, sizeof(s.sock), "%s/redis.sock", tmpdir);
    if (rsrv_start(&s) != 0) {
        ok(0, "unix: redis start");
        return;
    }
    snprintf(addr, sizeof(addr), "unix:%s", s.sock);
    rc = mk(addr, "t7", NULL, 0, 2000);
    for (int i = 0; i < 20; i++) {
        mkrow(&r, &p, "unix.example", i);
        rcount_add(rc, &r, &p, NOW);
    }
    ok(wait_written(rc, 20, 3000), "unix: written over the socket");
    is_int(sum_counts(&s, "t7", 0), 20, "unix: sum 20");
    /* flush at free: rows added and freed at once still arrive */
    for (int i = 0; i < 1000; i++) {
        mkrow(&r, &p, "flush.example", i);
        rcount_add(rc, &r, &p, NOW);
    }
    double t0 = now_s();
    rcount_free(&rc, 3000);
    ok(now_s() - t0 < 3, "free: flush returned in %.3f s", now_s() - t0);
    is_int(sum_counts(&s, "t7", 0), 1020, "free: the buffered 1000 were flushed");
    rsrv_stop(&s, SIGTERM);
}

static void t_error_reply(struct rsrv *s)
{
    struct rcount *rc = mk(tcp_addr(5, s->port), "t8", NULL, 0, 100);
    redisContext *c = rsrv_conn(s);
    struct rrow r;
    struct rrow_policy p;

    /* A key of the wrong type: HINCRBY is refused until it is fixed. */
    freeReplyObject(cmd(c, "SET t8:rpt:{bad.example}:" DAY " oops"));
    ok(wait_connected(rc, 3000), "error: connected");
    mkrow(&r, &p, "bad.example", 1);
    rcount_add(rc, &r, &p, NOW);
    mkrow(&r, &p, "good.example", 2);
    rcount_add(rc, &r, &p, NOW);
    double t0 = now_s();
    while (stats(rc).rows_written < 1 && now_s() - t0 < 3)
        run_ms(10);
    struct rcount_stats st = stats(rc);
    ok(st.rows_written == 1 && st.buffered == 1 && st.errors >= 1,
       "error: good row written, refused row kept (errors %llu)", (unsigned long long)st.errors);
    freeReplyObject(cmd(c, "DEL t8:rpt:{bad.example}:" DAY));
    ok(wait_written(rc, 2, 5000), "error: refused row written once the key is fixed");
    is_int(sum_counts(s, "t8", 0), 2, "error: sum 2");
    is_int((long long)stats(rc).rows_failed, 0, "error: nothing discarded");
    redisFree(c);
    rcount_free(&rc, 0);
}

static void t_never_blocks(void)
{
    int port = rsrv_free_port();
    struct rcount *rc = mk(tcp_addr(6, port), "t9", NULL, 0, 200000);
    struct rrow r;
    struct rrow_policy p;
    int bad = 0;
    double t0;

    run_ms(50); /* the first connect attempt has failed by now */
    t0 = now_s();
    for (int i = 0; i < 100000; i++) {
        mkrow(&r, &p, "fast.example", i);
        bad += rcount_add(rc, &r, &p, NOW) != 0;
    }
    double dt = now_s() - t0;
    /* Not a speed target (bench/ has those): a blocking add would cost at
     * least a connect attempt (>= 1 ms) each, i.e. >= 100 s; 10 s leaves room
     * for sanitizer builds on a loaded machine. */
    ok(dt < 10.0, "100k adds with Redis down never block (%.3f s)", dt);
    is_int(bad, 0, "100k adds buffered");
    t0 = now_s();
    rcount_free(&rc, 200);
    ok(now_s() - t0 < 1.0, "free with Redis down waits at most flush_ms (%.3f s)", now_s() - t0);

    /* bad configurations */
    ok(mk("tcp:127.0.0.1", "x", NULL, 0, 1) == NULL, "bad config: no port");
    ok(mk("tcp:127.0.0.1:0", "x", NULL, 0, 1) == NULL, "bad config: port 0");
    ok(mk("tcp:[::1:6379", "x", NULL, 0, 1) == NULL, "bad config: open bracket");
    ok(mk("udp:1.2.3.4:1", "x", NULL, 0, 1) == NULL, "bad config: scheme");
    ok(mk("unix:", "x", NULL, 0, 1) == NULL, "bad config: empty path");
    ok(mk(tcp_addr(6, port), "", NULL, 0, 1) == NULL, "bad config: empty prefix");
}

static void t_ipv6(void)
{
    struct rsrv s = {.port = rsrv_free_port()};
    char addr[64];
    struct rcount *rc;
    struct rrow r;
    struct rrow_policy p;

    snprintf(s.extra, sizeof(s.extra), "--bind 127.0.0.1 ::1");
    if (rsrv_start(&s) != 0) {
        diag("skipping IPv6: redis cannot bind ::1 here");
        rsrv_stop(&s, SIGTERM);
        return;
    }
    snprintf(addr, sizeof(addr), "tcp:[::1]:%d", s.port);
    rc = mk(addr, "t10", NULL, 0, 10);
    mkrow(&r, &p, "v6.example", 1);
    rcount_add(rc, &r, &p, NOW);
    ok(wait_written(rc, 1, 3000), "IPv6: written to %s", addr);
    rcount_free(&rc, 0);
    rsrv_stop(&s, SIGTERM);
}

int main(void)
{
    struct rsrv main_srv = {0};

    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        diag("redis-server not installed: skipping");
        ok(1, "skipped");
        return tap_done();
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pd-rcount-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        ok(0, "mkdtemp");
        return tap_done();
    }
    rsrv_set_dir(tmpdir);
    base = event_base_new();
    main_srv.port = rsrv_free_port();
    if (!ok(rsrv_start(&main_srv) == 0, "redis-server started on 127.0.0.1:%d", main_srv.port))
        return tap_done();
    t_basic(&main_srv);
    t_pipeline(&main_srv);
    t_error_reply(&main_srv);
    rsrv_stop(&main_srv, SIGTERM);
    t_absent_at_start();
    t_killed(1);
    t_killed(0);
    t_overflow();
    t_auth();
    t_unix();
    t_never_blocks();
    t_ipv6();
    event_base_free(base);
    {
        char rm[128];
        snprintf(rm, sizeof(rm), "rm -rf %s", tmpdir);
        if (system(rm) != 0)
            diag("could not remove %s", tmpdir);
    }
    return tap_done();
}
