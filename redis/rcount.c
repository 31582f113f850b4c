/* rcount.c - the asynchronous, pipelined counter writer (see rcount.h).
 *
 * Shape: rcount_add() encodes the row and its policy, appends one heap record
 * to a ring buffer and arms a zero-delay "kick" timer; nothing touches the
 * network there, so adding never blocks and adds made in one loop turn are
 * sent together. When connected, the head of the ring (up to RC_BATCH rows)
 * is sent as one pipelined batch: identical rows are coalesced into one
 * HINCRBY by N, and the idempotent bookkeeping (policy snapshot, first/last
 * seen, day index, days set, EXPIREs) is written once per key. The next batch
 * leaves when the last reply of the previous one arrived, so there is exactly
 * one batch in flight and its rows are still in the ring.
 *
 * At-least-once: a row leaves the ring only when Redis acknowledged its
 * HINCRBY *and* every bookkeeping command of its batch. A row whose HINCRBY
 * was acknowledged but whose bookkeeping was not is marked `counted` and only
 * its bookkeeping is re-sent. A connection lost mid-batch re-sends the
 * un-acknowledged rows on reconnect: if Redis had applied an HINCRBY whose
 * reply was lost, that count is doubled (documented in docs/data-model.md).
 *
 * Connection: hiredis' async context on the caller's event_base (libevent
 * adapter). AUTH, SELECT and a PING are pipelined first; the connection is
 * "up" when the PING answers. Failures reconnect with exponential backoff
 * (100 ms doubling to 10 s, reset once up). A watchdog bounds the connect +
 * handshake (5 s) and each batch's replies (10 s), so a Redis that stops
 * answering (SIGSTOP, blackholed route) is treated as lost.
 *
 * hiredis (0.14) rules this file relies on: a reply is valid only inside its
 * callback; when a context dies every pending callback runs with a NULL reply
 * *before* the disconnect callback, and the context is freed after it; a
 * connect failure calls the connect callback (not the disconnect one).
 * redisAsyncFree() is only called from outside hiredis callbacks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "log.h"
#include "rcount.h"
#include "raddr.h"
#include "rkeys.h"

#define RC_BATCH 256 /* rows per pipelined batch */
#define RC_TAB 512   /* coalescing hash table slots (> 2 * RC_BATCH) */
#define RC_BACKOFF_MIN_MS 100
#define RC_BACKOFF_MAX_MS 10000
#define RC_CONNECT_TIMEOUT_MS 5000
#define RC_REPLY_TIMEOUT_MS 10000
#define RC_UNBUF_MAX 10000 /* buffer_rows = 0: rows in flight while connected */
#define RC_LOG_EVERY_S 10  /* at most one line per kind per 10 s */
#define RC_KEY_SZ (2 * RKEY_MAX)

enum rc_state { RC_DOWN, RC_CONNECTING, RC_UP };

/* One queued row, one allocation: data = domain NUL row-encoding NUL
 * policy-encoding NUL. */
struct rrec {
    long long now;
    unsigned tries;        /* batches refused by an error reply */
    unsigned char counted; /* HINCRBY acknowledged: only bookkeeping pending */
    uint32_t hash;         /* domain + day + row, for coalescing */
    uint32_t ghash;        /* domain + day, for the per-key bookkeeping */
    size_t dlen, rlen, plen;
    char day[9];
    char data[];
};

/* Callback cookie: which command of the batch a reply belongs to. */
struct rtok {
    struct rcount *rc;
    int idx; /* >= 0: HINCRBY of batch row idx; TOK_META; TOK_HS; TOK_HS_LAST */
};
#define TOK_META (-1)
#define TOK_HS (-2)
#define TOK_HS_LAST (-3)

enum { LK_CONN, LK_REPLY, LK_DROP, LK_FAIL, LK_N };
struct rlogk {
    int used;
    time_t last;
    uint64_t suppressed;
};

struct rcount {
    struct event_base *base; /* borrowed */
    struct raddr_conf conf;  /* configuration (owned copies) */
    unsigned retention_s, buffer_rows;

    /* connection */
    redisAsyncContext *ac;
    enum rc_state state;
    int hs_failed;
    int closing; /* we asked hiredis to close (reason already logged) */
    unsigned backoff_ms;
    uint64_t attempts;
    struct event *retry_ev, *watchdog_ev, *kick_ev;
    int freeing;

    /* the ring of pending rows (in flight ones included, at the head) */
    struct rrec **ring;
    size_t cap, head, len;

    /* the batch in flight */
    redisAsyncContext *b_ac;
    int inflight;
    size_t bn;
    unsigned pending;
    int b_conn_failed, b_meta_failed, b_err, b_transient;
    char b_errstr[128];
    int leader[RC_BATCH];
    unsigned char ok[RC_BATCH];
    struct rtok tok[RC_BATCH], meta_tok, hs_tok, hs_last_tok;

    struct rcount_stats st;
    struct rlogk lk[LK_N];
};

/* ---- small helpers ---- */

static uint32_t fnv(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static const char *rec_domain(const struct rrec *r)
{
    return r->data;
}
static const char *rec_row(const struct rrec *r)
{
    return r->data + r->dlen + 1;
}
static const char *rec_pol(const struct rrec *r)
{
    return r->data + r->dlen + 1 + r->rlen + 1;
}

static struct rrec *at(struct rcount *rc, size_t i)
{
    return rc->ring[(rc->head + i) % rc->cap];
}
static void set_at(struct rcount *rc, size_t i, struct rrec *r)
{
    rc->ring[(rc->head + i) % rc->cap] = r;
}

static void tv_ms(struct timeval *tv, unsigned ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* log_gate: 1 when a line of this kind may be logged now; *suppressed gets
 * how many were held back since the last one. */
static int log_gate(struct rcount *rc, int kind, char *suppressed, size_t sz)
{
    struct rlogk *k = &rc->lk[kind];
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (k->used && ts.tv_sec - k->last < RC_LOG_EVERY_S) {
        k->suppressed++;
        return 0;
    }
    snprintf(suppressed, sz, "%llu", (unsigned long long)k->suppressed);
    k->used = 1;
    k->last = ts.tv_sec;
    k->suppressed = 0;
    return 1;
}

static size_t cap_limit(const struct rcount *rc)
{
    if (rc->buffer_rows > 0)
        return rc->buffer_rows;
    return rc->state == RC_UP ? RC_UNBUF_MAX : 0;
}

static int ring_push(struct rcount *rc, struct rrec *r)
{
    if (rc->len == rc->cap) {
        size_t ncap = rc->cap ? rc->cap * 2 : 64;
        struct rrec **n = malloc(ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        for (size_t i = 0; i < rc->len; i++)
            n[i] = at(rc, i);
        free(rc->ring);
        rc->ring = n;
        rc->cap = ncap;
        rc->head = 0;
    }
    rc->ring[(rc->head + rc->len) % rc->cap] = r;
    rc->len++;
    return 0;
}

/* drop_all: discard every pending row (unbuffered mode lost its connection,
 * or the final flush gave up); counted as dropped. */
static void drop_all(struct rcount *rc, const char *why)
{
    char n[32], sup[32];
    size_t cnt = 0;

    for (size_t i = 0; i < rc->len; i++) {
        struct rrec *r = at(rc, i);
        if (!r->counted) {
            rc->st.rows_dropped++;
            cnt++;
        }
        free(r);
    }
    rc->len = 0;
    rc->head = 0;
    if (cnt > 0 && log_gate(rc, LK_DROP, sup, sizeof(sup))) {
        snprintf(n, sizeof(n), "%zu", cnt);
        log_kv(LOG_L_WARNING, "redis_rows_dropped", "reason", why, "rows", n, "suppressed", sup,
               NULL);
    }
}

/* ---- connection ---- */

static void rc_connect(struct rcount *rc);
static void send_batch(struct rcount *rc);

static void schedule_retry(struct rcount *rc)
{
    struct timeval tv;

    if (rc->freeing)
        return;
    tv_ms(&tv, rc->backoff_ms);
    evtimer_add(rc->retry_ev, &tv);
    rc->backoff_ms =
        rc->backoff_ms * 2 > RC_BACKOFF_MAX_MS ? RC_BACKOFF_MAX_MS : rc->backoff_ms * 2;
}

static void log_conn(struct rcount *rc, const char *event, const char *err)
{
    char sup[32];

    if (log_gate(rc, LK_CONN, sup, sizeof(sup)))
        log_kv(LOG_L_WARNING, event, "redis", rc->conf.addr, "error", err ? err : "", "suppressed",
               sup, NULL);
}

/* after_loss: the connection is gone (rc->ac already NULL). */
static void after_loss(struct rcount *rc)
{
    rc->state = RC_DOWN;
    evtimer_del(rc->watchdog_ev);
    if (rc->buffer_rows == 0)
        drop_all(rc, "redis_unavailable");
    schedule_retry(rc);
}

/* drop_conn: close the current connection from outside hiredis callbacks.
 * Pending replies run with NULL (the batch completes as failed) first. */
static void drop_conn(struct rcount *rc)
{
    redisAsyncContext *ac = rc->ac;

    if (ac == NULL)
        return;
    rc->ac = NULL; /* its disconnect callback must not act any more */
    rc->state = RC_DOWN;
    redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rcount *rc = ac->data;

    if (ac != rc->ac || status == REDIS_OK)
        return;
    /* hiredis frees ac after this returns (no disconnect callback). */
    rc->ac = NULL;
    rc->st.errors++;
    log_conn(rc, "redis_connect_failed", ac->errstr);
    after_loss(rc);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rcount *rc = ac->data;

    if (ac != rc->ac)
        return;
    rc->ac = NULL;
    if (!rc->freeing && !rc->closing) {
        rc->st.errors++;
        log_conn(rc, "redis_disconnected", status == REDIS_OK ? "closed" : ac->errstr);
    }
    rc->closing = 0;
    after_loss(rc);
}

static void on_handshake(redisAsyncContext *ac, void *r, void *priv)
{
    struct rtok *t = priv;
    struct rcount *rc = t->rc;
    redisReply *reply = r;

    if (ac != rc->ac || reply == NULL) /* stale, or dying: the loss is handled elsewhere */
        return;
    if (reply->type == REDIS_REPLY_ERROR && !rc->hs_failed) {
        rc->hs_failed = 1;
        rc->st.errors++;
        log_conn(rc, "redis_handshake_failed", reply->str);
    }
    if (t->idx != TOK_HS_LAST)
        return;
    if (rc->hs_failed) {
        rc->closing = 1;
        redisAsyncDisconnect(ac); /* deferred by hiredis; on_disconnect retries */
        return;
    }
    rc->state = RC_UP;
    rc->backoff_ms = RC_BACKOFF_MIN_MS;
    evtimer_del(rc->watchdog_ev);
    log_kv(LOG_L_INFO, "redis_connected", "redis", rc->conf.addr, NULL);
    send_batch(rc);
}

static void rc_connect(struct rcount *rc)
{
    redisAsyncContext *ac;
    struct timeval tv;
    char dbs[16];

    if (rc->ac != NULL)
        return;
    if (rc->attempts++ > 0)
        rc->st.reconnects++;
    ac = rc->conf.path ? redisAsyncConnectUnix(rc->conf.path)
                       : redisAsyncConnect(rc->conf.host, rc->conf.port);
    if (ac == NULL || ac->err) {
        rc->st.errors++;
        log_conn(rc, "redis_connect_failed", ac ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        after_loss(rc);
        return;
    }
    ac->data = rc;
    if (redisLibeventAttach(ac, rc->base) != REDIS_OK) {
        redisAsyncFree(ac);
        rc->st.errors++;
        after_loss(rc);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rc->ac = ac;
    rc->state = RC_CONNECTING;
    rc->hs_failed = rc->closing = 0;
    /* Queued now, written once the socket connects; before anything else. */
    if (rc->conf.password[0] != '\0') {
        const char *argv[] = {"AUTH", rc->conf.password};
        size_t lens[] = {4, strlen(rc->conf.password)};
        redisAsyncCommandArgv(ac, on_handshake, &rc->hs_tok, 2, argv, lens);
    }
    if (rc->conf.db != 0) {
        snprintf(dbs, sizeof(dbs), "%u", rc->conf.db);
        const char *argv[] = {"SELECT", dbs};
        size_t lens[] = {6, strlen(dbs)};
        redisAsyncCommandArgv(ac, on_handshake, &rc->hs_tok, 2, argv, lens);
    }
    {
        const char *argv[] = {"PING"};
        size_t lens[] = {4};
        redisAsyncCommandArgv(ac, on_handshake, &rc->hs_last_tok, 1, argv, lens);
    }
    tv_ms(&tv, RC_CONNECT_TIMEOUT_MS);
    evtimer_add(rc->watchdog_ev, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rcount *rc = arg;

    if (rc->state == RC_DOWN && rc->ac == NULL)
        rc_connect(rc);
    else if (rc->state == RC_UP)
        send_batch(rc);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    send_batch(arg);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rcount *rc = arg;

    if (rc->ac == NULL)
        return;
    rc->st.errors++;
    log_conn(rc, "redis_timeout", rc->state == RC_UP ? "no reply to a batch" : "connect");
    drop_conn(rc);
    after_loss(rc);
}

/* ---- batches ---- */

/* transient: an error reply that says "not now" rather than "never": the
 * rows are kept without spending a try, and the connection is re-made
 * (after a failover READONLY means we talk to a replica). */
static int transient(const char *s)
{
    static const char *const pfx[] = {"LOADING",    "BUSY",      "TRYAGAIN", "CLUSTERDOWN",
                                      "MASTERDOWN", "READONLY",  "NOAUTH",   "OOM",
                                      "MISCONF",    "NOREPLICAS"};
    for (size_t i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++)
        if (strncmp(s, pfx[i], strlen(pfx[i])) == 0)
            return 1;
    return 0;
}

static void batch_done(struct rcount *rc)
{
    size_t n = rc->bn, w = n, nfailed = 0;
    char sup[32], cnt[32];

    rc->inflight = 0;
    rc->b_ac = NULL;
    rc->st.batches++;
    evtimer_del(rc->watchdog_ev);
    for (size_t i = 0; i < n; i++) {
        struct rrec *r = at(rc, i);
        if (!r->counted && rc->leader[i] >= 0 && rc->ok[rc->leader[i]]) {
            r->counted = 1;
            rc->st.rows_written++;
        }
    }
    /* Compact: kept rows move towards the end of the batch window, in
     * order, and the head advances past the finished ones. */
    for (size_t i = n; i-- > 0;) {
        struct rrec *r = at(rc, i);
        int keep = !(r->counted && !rc->b_meta_failed && !rc->b_conn_failed);
        if (keep && rc->b_err && !rc->b_transient && !rc->b_conn_failed &&
            ++r->tries >= RCOUNT_MAX_TRIES) {
            keep = 0;
            if (!r->counted) {
                rc->st.rows_failed++;
                nfailed++;
            }
        }
        if (keep)
            set_at(rc, --w, r);
        else
            free(r);
    }
    rc->head = (rc->head + w) % rc->cap;
    rc->len -= w;
    if (nfailed > 0 && log_gate(rc, LK_FAIL, sup, sizeof(sup))) {
        snprintf(cnt, sizeof(cnt), "%zu", nfailed);
        log_kv(LOG_L_ERROR, "redis_rows_failed", "rows", cnt, "error", rc->b_errstr, "suppressed",
               sup, NULL);
    }
    if (rc->b_conn_failed || rc->freeing)
        return; /* the loss path reconnects */
    if (rc->b_transient) {
        if (rc->ac != NULL) {
            rc->closing = 1;
            redisAsyncDisconnect(rc->ac); /* in a callback: hiredis defers it */
        }
        return;
    }
    if (rc->b_err) {
        schedule_retry(rc); /* back off before re-sending refused rows */
        return;
    }
    rc->backoff_ms = RC_BACKOFF_MIN_MS;
    send_batch(rc);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct rtok *t = priv;
    struct rcount *rc = t->rc;
    redisReply *reply = r;
    char sup[32];

    if (!rc->inflight || ac != rc->b_ac)
        return;
    if (reply == NULL) {
        rc->b_conn_failed = 1;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        rc->st.errors++;
        rc->b_err = 1;
        if (transient(reply->str))
            rc->b_transient = 1;
        if (t->idx < 0)
            rc->b_meta_failed = 1;
        snprintf(rc->b_errstr, sizeof(rc->b_errstr), "%s", reply->str);
        if (log_gate(rc, LK_REPLY, sup, sizeof(sup)))
            log_kv(LOG_L_WARNING, "redis_error_reply", "redis", rc->conf.addr, "error", reply->str,
                   "suppressed", sup, NULL);
    } else if (t->idx >= 0) {
        rc->ok[t->idx] = 1;
    }
    if (--rc->pending == 0)
        batch_done(rc);
}

static void issue(struct rcount *rc, struct rtok *t, int argc, const char **argv,
                  const size_t *lens)
{
    if (rc->b_conn_failed)
        return;
    if (redisAsyncCommandArgv(rc->ac, on_reply, t, argc, argv, lens) == REDIS_OK)
        rc->pending++;
    else
        rc->b_conn_failed = 1;
}

static int same_row(const struct rrec *a, const struct rrec *b)
{
    return a->hash == b->hash && a->dlen == b->dlen && a->rlen == b->rlen &&
           strcmp(a->day, b->day) == 0 && memcmp(a->data, b->data, a->dlen + 1 + a->rlen) == 0;
}

static int same_group(const struct rrec *a, const struct rrec *b)
{
    return a->ghash == b->ghash && a->dlen == b->dlen && strcmp(a->day, b->day) == 0 &&
           memcmp(a->data, b->data, a->dlen) == 0;
}

/* expire: EXPIRE key retention (skipped when retention is 0: EXPIRE 0 would
 * delete the key). */
static void expire(struct rcount *rc, const char *key, size_t klen, const char *ret)
{
    const char *argv[] = {"EXPIRE", key, ret};
    size_t lens[] = {6, klen, strlen(ret)};

    if (rc->retention_s > 0)
        issue(rc, &rc->meta_tok, 3, argv, lens);
}

static void send_batch(struct rcount *rc)
{
    const char *argv_days[RC_BATCH + 2], *argv_idx[RC_BATCH + 2];
    size_t lens_days[RC_BATCH + 2], lens_idx[RC_BATCH + 2];
    int tab[RC_TAB], gtab[RC_TAB];
    long long gmin[RC_BATCH], gmax[RC_BATCH];
    size_t glast[RC_BATCH], ng = 0, ndays = 0;
    unsigned cnt[RC_BATCH];
    const char *days[RC_BATCH];
    char k1[RC_KEY_SZ], k2[RC_KEY_SZ], num[32], num2[32], ret[16];
    int l1, l2;
    size_t n;

    if (rc->state != RC_UP || rc->inflight || rc->len == 0 || rc->ac == NULL)
        return;
    n = rc->len < RC_BATCH ? rc->len : RC_BATCH;
    snprintf(ret, sizeof(ret), "%u", rc->retention_s);
    for (size_t i = 0; i < RC_TAB; i++)
        tab[i] = gtab[i] = -1;

    /* Group: rows (coalesced HINCRBY) and (domain, day) keys. */
    for (size_t i = 0; i < n; i++) {
        struct rrec *r = at(rc, i);
        size_t s;
        rc->ok[i] = 0;
        cnt[i] = 0;
        rc->leader[i] = -1;
        if (!r->counted) {
            for (s = r->hash % RC_TAB; tab[s] >= 0; s = (s + 1) % RC_TAB)
                if (same_row(at(rc, (size_t)tab[s]), r))
                    break;
            if (tab[s] < 0)
                tab[s] = (int)i;
            rc->leader[i] = tab[s];
            cnt[tab[s]]++;
        }
        for (s = r->ghash % RC_TAB; gtab[s] >= 0; s = (s + 1) % RC_TAB)
            if (same_group(at(rc, glast[gtab[s]]), r))
                break;
        if (gtab[s] < 0) {
            gtab[s] = (int)ng;
            gmin[ng] = gmax[ng] = r->now;
            ng++;
        }
        glast[gtab[s]] = i; /* the latest policy seen wins */
        if (r->now < gmin[gtab[s]])
            gmin[gtab[s]] = r->now;
        if (r->now > gmax[gtab[s]])
            gmax[gtab[s]] = r->now;
    }

    rc->bn = n;
    rc->b_ac = rc->ac;
    rc->pending = 0;
    rc->b_conn_failed = rc->b_meta_failed = rc->b_err = rc->b_transient = 0;
    rc->b_errstr[0] = '\0';
    rc->inflight = 1; /* replies never run inside redisAsyncCommandArgv */

    for (size_t i = 0; i < n; i++) {
        struct rrec *r = at(rc, i);
        if (rc->leader[i] != (int)i)
            continue;
        l1 = rkey_rpt(k1, sizeof(k1), rc->conf.prefix, rec_domain(r), r->day);
        snprintf(num, sizeof(num), "%u", cnt[i]);
        const char *argv[] = {"HINCRBY", k1, rec_row(r), num};
        size_t lens[] = {7, (size_t)l1, r->rlen, strlen(num)};
        issue(rc, &rc->tok[i], 4, argv, lens);
    }
    for (size_t g = 0; g < ng; g++) {
        struct rrec *r = at(rc, glast[g]);
        l1 = rkey_rpt(k1, sizeof(k1), rc->conf.prefix, rec_domain(r), r->day);
        l2 = rkey_pol(k2, sizeof(k2), rc->conf.prefix, rec_domain(r), r->day);
        snprintf(num, sizeof(num), "%lld", gmax[g]);
        snprintf(num2, sizeof(num2), "%lld", gmin[g]);
        {
            const char *argv[] = {"HSET", k2, "policy", rec_pol(r), "last", num};
            size_t lens[] = {4, (size_t)l2, 6, r->plen, 4, strlen(num)};
            issue(rc, &rc->meta_tok, 6, argv, lens);
        }
        {
            const char *argv[] = {"HSETNX", k2, "first", num2};
            size_t lens[] = {6, (size_t)l2, 5, strlen(num2)};
            issue(rc, &rc->meta_tok, 4, argv, lens);
        }
        expire(rc, k1, (size_t)l1, ret);
        expire(rc, k2, (size_t)l2, ret);
        /* distinct days */
        size_t d;
        for (d = 0; d < ndays; d++)
            if (strcmp(days[d], r->day) == 0)
                break;
        if (d == ndays)
            days[ndays++] = r->day;
    }
    /* SADD idx:<day> domain... per day, then SADD days day... */
    for (size_t d = 0; d < ndays; d++) {
        int argc = 2;
        l1 = rkey_idx(k1, sizeof(k1), rc->conf.prefix, days[d]);
        argv_idx[0] = "SADD";
        lens_idx[0] = 4;
        argv_idx[1] = k1;
        lens_idx[1] = (size_t)l1;
        for (size_t g = 0; g < ng; g++) {
            struct rrec *r = at(rc, glast[g]);
            if (strcmp(r->day, days[d]) == 0) {
                argv_idx[argc] = rec_domain(r);
                lens_idx[argc++] = r->dlen;
            }
        }
        issue(rc, &rc->meta_tok, argc, argv_idx, lens_idx);
        expire(rc, k1, (size_t)l1, ret);
    }
    l1 = rkey_days(k1, sizeof(k1), rc->conf.prefix);
    argv_days[0] = "SADD";
    lens_days[0] = 4;
    argv_days[1] = k1;
    lens_days[1] = (size_t)l1;
    for (size_t d = 0; d < ndays; d++) {
        argv_days[2 + d] = days[d];
        lens_days[2 + d] = strlen(days[d]);
    }
    issue(rc, &rc->meta_tok, (int)(2 + ndays), argv_days, lens_days);
    expire(rc, k1, (size_t)l1, ret);

    if (rc->pending == 0) { /* nothing could be queued: the context is dying */
        rc->inflight = 0;
        rc->b_ac = NULL;
        return;
    }
    {
        struct timeval tv;
        tv_ms(&tv, RC_REPLY_TIMEOUT_MS);
        evtimer_add(rc->watchdog_ev, &tv);
    }
}

/* ---- public API ---- */

/* apply_config: copy c into rc. 1 when the connection settings changed, 0
 * when not, -1 on a bad config (rc unchanged). */
static int apply_config(struct rcount *rc, const struct rcount_config *c)
{
    int changed;

    /* prefix bounded so every key fits RC_KEY_SZ (cfg allows 64) */
    if (c == NULL ||
        (changed = raddr_conf_set(&rc->conf, c->redis, c->password, c->db, c->prefix, 200)) < 0)
        return -1;
    rc->retention_s = c->retention_s;
    rc->buffer_rows = c->buffer_rows;
    return changed;
}

struct rcount *rcount_new(struct event_base *base, const struct rcount_config *c)
{
    struct rcount *rc;

    if (base == NULL || (rc = calloc(1, sizeof(*rc))) == NULL)
        return NULL;
    rc->base = base;
    rc->backoff_ms = RC_BACKOFF_MIN_MS;
    rc->meta_tok = (struct rtok){rc, TOK_META};
    rc->hs_tok = (struct rtok){rc, TOK_HS};
    rc->hs_last_tok = (struct rtok){rc, TOK_HS_LAST};
    for (int i = 0; i < RC_BATCH; i++)
        rc->tok[i] = (struct rtok){rc, i};
    rc->retry_ev = evtimer_new(base, retry_cb, rc);
    rc->watchdog_ev = evtimer_new(base, watchdog_cb, rc);
    rc->kick_ev = evtimer_new(base, kick_cb, rc);
    if (rc->retry_ev == NULL || rc->watchdog_ev == NULL || rc->kick_ev == NULL ||
        apply_config(rc, c) < 0) {
        rc->freeing = 1;
        rcount_free(&rc, 0);
        return NULL;
    }
    rc_connect(rc);
    return rc;
}

void rcount_reconfigure(struct rcount *rc, const struct rcount_config *c)
{
    struct timeval tv = {0, 0};
    int changed = apply_config(rc, c);

    if (changed < 0) {
        log_kv(LOG_L_ERROR, "redis_reconfigure_refused", "redis", c && c->redis ? c->redis : "",
               NULL);
        return;
    }
    if (changed == 0)
        return;
    drop_conn(rc);
    rc->state = RC_DOWN;
    evtimer_del(rc->watchdog_ev);
    rc->backoff_ms = RC_BACKOFF_MIN_MS;
    if (rc->buffer_rows == 0)
        drop_all(rc, "redis_reconfigured");
    evtimer_add(rc->retry_ev, &tv); /* connect now, from the loop */
}

static void flush_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    *(int *)arg = 1;
}

void rcount_free(struct rcount **rcp, unsigned flush_ms)
{
    struct rcount *rc;

    if (rcp == NULL || (rc = *rcp) == NULL)
        return;
    *rcp = NULL;
    if (flush_ms > 0 && rc->len > 0 && !rc->freeing) {
        /* Drive the loop (the caller's, which must not be running: call this
         * after event_base_dispatch returned) until flushed or the deadline. */
        int timed_out = 0;
        struct timeval tv;
        struct event *dl = evtimer_new(rc->base, flush_deadline_cb, &timed_out);
        if (dl != NULL) {
            tv_ms(&tv, flush_ms);
            evtimer_add(dl, &tv);
            if (rc->state == RC_DOWN && rc->ac == NULL) {
                evtimer_del(rc->retry_ev);
                rc->backoff_ms = RC_BACKOFF_MIN_MS;
                rc_connect(rc);
            }
            while (rc->len > 0 && !timed_out)
                if (event_base_loop(rc->base, EVLOOP_ONCE) < 0)
                    break;
            event_free(dl);
        }
    }
    rc->freeing = 1;
    if (rc->ac != NULL) {
        redisAsyncContext *ac = rc->ac;
        rc->ac = NULL;
        redisAsyncFree(ac); /* pending replies run with NULL now */
    }
    if (rc->len > 0)
        drop_all(rc, "shutdown");
    if (rc->retry_ev)
        event_free(rc->retry_ev);
    if (rc->watchdog_ev)
        event_free(rc->watchdog_ev);
    if (rc->kick_ev)
        event_free(rc->kick_ev);
    free(rc->ring);
    raddr_conf_clear(&rc->conf);
    free(rc);
}

int rcount_add(struct rcount *rc, const struct rrow *row, const struct rrow_policy *pol,
               long long now)
{
    char renc[RROW_ENC_WORST], penc[RROW_ENC_WORST], key[RC_KEY_SZ], day[9], sup[32];
    int rl, pl;
    size_t dl;
    struct rrec *r;

    if (rc->len >= cap_limit(rc)) {
        rc->st.rows_dropped++;
        if (log_gate(rc, LK_DROP, sup, sizeof(sup))) {
            char b[32];
            snprintf(b, sizeof(b), "%zu", rc->len);
            log_kv(LOG_L_WARNING, "redis_buffer_full", "redis", rc->conf.addr, "buffered", b,
                   "suppressed", sup, NULL);
        }
        return -1;
    }
    rkey_day(day, sizeof(day), now);
    dl = strnlen(pol->domain, sizeof(pol->domain));
    rl = rrow_encode(row, renc, sizeof(renc));
    pl = rrow_policy_encode(pol, penc, sizeof(penc));
    if (rl < 0 || pl < 0 || dl == sizeof(pol->domain) ||
        rkey_lock(key, sizeof(key), rc->conf.prefix, pol->domain, day) < 0 ||
        (r = malloc(sizeof(*r) + dl + 1 + (size_t)rl + 1 + (size_t)pl + 1)) == NULL) {
        rc->st.rows_failed++;
        if (log_gate(rc, LK_FAIL, sup, sizeof(sup)))
            log_kv(LOG_L_ERROR, "redis_row_refused", "domain", pol->domain, "error",
                   "not encodable or out of memory", "suppressed", sup, NULL);
        return -1;
    }
    memset(r, 0, sizeof(*r));
    r->now = now;
    r->dlen = dl;
    r->rlen = (size_t)rl;
    r->plen = (size_t)pl;
    memcpy(r->day, day, sizeof(day));
    memcpy(r->data, pol->domain, dl + 1);
    memcpy(r->data + dl + 1, renc, (size_t)rl + 1);
    memcpy(r->data + dl + 1 + rl + 1, penc, (size_t)pl + 1);
    r->ghash = fnv(fnv(2166136261u, r->data, dl + 1), day, 8);
    r->hash = fnv(r->ghash, renc, (size_t)rl);
    if (ring_push(rc, r) < 0) {
        free(r);
        rc->st.rows_failed++;
        return -1;
    }
    rc->st.rows_added++;
    if (rc->state == RC_UP && !rc->inflight && !evtimer_pending(rc->kick_ev, NULL)) {
        struct timeval tv = {0, 0};
        evtimer_add(rc->kick_ev, &tv);
    }
    return 0;
}

void rcount_get_stats(struct rcount *rc, struct rcount_stats *out)
{
    *out = rc->st;
    out->buffered = (unsigned)rc->len;
    out->connected = rc->state == RC_UP;
}
