/* rgrey.c - the greylist store on Redis (see rgrey.h).
 *
 * Shape: one hiredis async context on the caller's event_base. The handshake
 * (AUTH, SELECT, SCRIPT LOAD of both scripts) is pipelined; the connection is
 * "up" when the last SCRIPT LOAD answers, and the SHA1s it returns are used
 * for EVALSHA. A NOSCRIPT reply (SCRIPT FLUSH, a failover to a server that
 * never saw the scripts) re-sends that step once as EVAL, which also caches
 * the script again.
 *
 * A request (struct rgrey_req) walks its steps one reply at a time. It is on
 * the list of live requests from rgrey_check() until freed; `in_redis` says a
 * hiredis callback still holds it, `done` that its callback ran or it was
 * cancelled. It is freed when both say nothing more can happen. hiredis
 * (0.14) guarantees every pending callback runs (with a NULL reply when the
 * context dies), so `in_redis` always clears. redisAsyncFree() is only called
 * from outside hiredis callbacks (timers, rgrey_free, reconfigure).
 *
 * The Lua mirrors grey_step() / grey_awl_check() / grey_awl_pass() line by
 * line; t/unit/test_rgrey.c replays random timelines through both and
 * compares. Instants travel as strings (ARGV) and are stored as given:
 * Lua numbers are doubles, exact for ms timestamps, but Redis would format
 * them with %.17g when writing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "inst.h"
#include "log.h"
#include "raddr.h"
#include "rgrey.h"

#define RG_BACKOFF_MIN_MS 100
#define RG_BACKOFF_MAX_MS 10000
#define RG_CONNECT_TIMEOUT_MS 5000
#define RG_DEFAULT_TIMEOUT_MS 2000
#define RG_LOG_EVERY_S 10
/* The local AWL cache (see awlc_get): how long an answer from Redis about a
 * client network is reused. "Not listed" briefly, because another MX may list
 * the network any time; "listed" for a minute at most: a listing checked now
 * lives at least max_age - awl_interval more (its last-seen stamp is at most
 * one interval old), which is days with the defaults. At most RG_AWLC_MAX
 * networks. Times are the caller's (the same clock as the scripts'). */
#define RG_AWLC_NEG_MS 1000
#define RG_AWLC_POS_MS 60000
#define RG_AWLC_MAX 4096

/* KEYS[1] triplet; ARGV now, delay, window, max_age (ms). -> wait_ms * 4 + code,
 * code 0 defer, 1 pass, 2 pass_new. Mirrors grey_step(). One integer rather
 * than a {code, wait} array: every greylisted message parses this reply, and
 * an array is three reply objects to allocate and free instead of one. */
static const char grey_lua[] =
    "local now=tonumber(ARGV[1]) local delay=tonumber(ARGV[2])\n"
    "local win=tonumber(ARGV[3]) local maxage=tonumber(ARGV[4])\n"
    "local s=redis.call('HMGET',KEYS[1],'f','l','p')\n"
    "local f=tonumber(s[1]) local l=tonumber(s[2])\n"
    "if f and l and s[3]=='1' and now-l<=maxage then\n"
    "  redis.call('HSET',KEYS[1],'l',ARGV[1]) redis.call('PEXPIRE',KEYS[1],ARGV[4])\n"
    "  return 1\n"
    "end\n"
    "if f and l and s[3]=='0' and f<=now and now-f<=win then\n"
    "  redis.call('HSET',KEYS[1],'l',ARGV[1])\n"
    "  if now-f>=delay then\n"
    "    redis.call('HSET',KEYS[1],'p','1') redis.call('PEXPIRE',KEYS[1],ARGV[4])\n"
    "    return 2\n"
    "  end\n"
    "  return (delay-(now-f))*4\n"
    "end\n"
    "redis.call('HSET',KEYS[1],'f',ARGV[1],'l',ARGV[1],'p','0')\n"
    "redis.call('PEXPIRE',KEYS[1],ARGV[3])\n"
    "return delay*4\n";

/* KEYS[1] awl; ARGV mode ("c" check, "p" pass), now, awl_count, interval,
 * max_age. "c" -> count when listed, else 0; "p" -> the new count.
 * Mirrors grey_awl_check() / grey_awl_pass(). */
static const char awl_lua[] =
    "local now=tonumber(ARGV[2]) local need=tonumber(ARGV[3]) local iv=tonumber(ARGV[4])\n"
    "local maxage=tonumber(ARGV[5])\n"
    "local v=redis.call('HMGET',KEYS[1],'c','l')\n"
    "local c=tonumber(v[1]) or 0 local l=tonumber(v[2])\n"
    "local due=(l==nil) or now>=l+iv or l>now\n"
    "if ARGV[1]=='c' then\n"
    "  if need==0 or l==nil or c<need or now-l>maxage then return 0 end\n"
    "  if due then redis.call('HSET',KEYS[1],'l',ARGV[2]) "
    "redis.call('PEXPIRE',KEYS[1],ARGV[5]) end\n"
    "  return c\n"
    "end\n"
    "if due then\n"
    "  if l==nil or now-l>maxage then c=0 end\n"
    "  c=c+1 redis.call('HSET',KEYS[1],'c',c,'l',ARGV[2]) redis.call('PEXPIRE',KEYS[1],ARGV[5])\n"
    "end\n"
    "return c\n";

enum rg_state { RG_DOWN, RG_CONNECTING, RG_UP };
enum { SC_GREY, SC_AWL, SC_N };
enum { HS_AUTH, HS_SELECT, HS_LOAD_GREY, HS_LOAD_AWL, HS_N };
enum { LK_CONN, LK_REPLY, LK_N };

struct hstok {
    struct rgrey *rg;
    int idx;
};

struct rgrey {
    struct event_base *base; /* borrowed */
    struct raddr_conf conf;  /* configuration (owned copies) */
    unsigned timeout_ms;

    redisAsyncContext *ac;
    enum rg_state state;
    int hs_failed, closing, freeing;
    unsigned backoff_ms;
    uint64_t attempts;
    struct event *retry_ev, *watchdog_ev;
    struct hstok hs[HS_N];
    char sha[SC_N][41];

    struct rgrey_req *reqs; /* every live request */
    /* The local AWL cache: client net -> struct awlc_ent. awl_epoch counts the
     * AWL increments sent: a lookup answered after one may predate it and is
     * not cached. */
    struct inst_table *awlc;
    uint64_t awl_epoch;
    struct rgrey_stats st;
    struct {
        int used;
        time_t last;
        uint64_t suppressed;
    } lk[LK_N];
};

enum rq_step { RQ_AWL, RQ_TRIPLET };

struct rgrey_req {
    struct rgrey *rg;
    struct rgrey_req *prev, *next;
    rgrey_cb *cb;
    void *arg;
    struct grey_params p;
    long long now;
    enum rq_step step;
    int in_redis; /* a hiredis callback will still run with this request */
    int done;     /* answered or cancelled */
    int in_cb;
    int eval;           /* this step was re-sent as EVAL after NOSCRIPT */
    int failnow;        /* the timer delivers "unavailable" */
    int awl_hit;        /* the timer delivers GREY_PASS_AWL (local AWL cache) */
    uint64_t awl_epoch; /* rg->awl_epoch when the AWL lookup was sent */
    struct event *tmo;
    char net[GREY_NET_MAX];
    char *gkey, *akey; /* point into keys[] */
    char keys[];
};

/* The AWL increment after a PASS_NEW: fire and forget (stats and a log). */
struct awltok {
    struct rgrey *rg;
    int eval;
    unsigned need;
    char now[24], need_s[16], iv[24], age[24];
    char net[GREY_NET_MAX];
    char key[];
};

/* ---- helpers ---- */

static void tv_ms(struct timeval *tv, unsigned ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* ---- the local AWL cache ---- */

struct awlc_ent {
    int listed;
    unsigned need;          /* greylist_awl_count it was answered for */
    long long at, until_ms; /* valid in [at, until_ms) of the caller's clock */
};

/* awlc_get: 1 listed, 0 not listed, -1 not known (ask Redis). A busy client
 * network (a bulk sender, a spam run) would otherwise cost one more Redis
 * round trip per message: the AWL lookup and the triplet step cannot share
 * a script, their keys live in different Cluster slots. */
static int awlc_get(struct rgrey *rg, const char *net, const struct grey_params *p, long long now)
{
    struct awlc_ent *e = rg->awlc && now >= 0 ? inst_get(rg->awlc, net, (uint64_t)now) : NULL;

    /* a clock that went backwards, or other settings: ask Redis */
    if (e == NULL || e->need != p->awl_count || now < e->at || now >= e->until_ms)
        return -1;
    return e->listed;
}

static void awlc_put(struct rgrey *rg, const char *net, const struct grey_params *p, long long now,
                     int listed)
{
    long long ttl = listed ? RG_AWLC_POS_MS : RG_AWLC_NEG_MS;
    struct awlc_ent *e;

    if (listed && p->max_age_ms - p->awl_interval_ms < ttl)
        ttl = p->max_age_ms - p->awl_interval_ms;
    if (rg->awlc == NULL || now < 0 || ttl <= 0 || (e = malloc(sizeof(*e))) == NULL)
        return;
    e->listed = listed;
    e->need = p->awl_count;
    e->at = now;
    e->until_ms = now + ttl;
    if (inst_put(rg->awlc, net, e, (uint64_t)now) < 0)
        free(e);
}

static int log_gate(struct rgrey *rg, int kind, char *sup, size_t sz)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (rg->lk[kind].used && ts.tv_sec - rg->lk[kind].last < RG_LOG_EVERY_S) {
        rg->lk[kind].suppressed++;
        return 0;
    }
    snprintf(sup, sz, "%llu", (unsigned long long)rg->lk[kind].suppressed);
    rg->lk[kind].used = 1;
    rg->lk[kind].last = ts.tv_sec;
    rg->lk[kind].suppressed = 0;
    return 1;
}

static void log_conn(struct rgrey *rg, const char *event, const char *err)
{
    char sup[32];

    if (log_gate(rg, LK_CONN, sup, sizeof(sup)))
        log_kv(LOG_L_WARNING, event, "redis", rg->conf.addr, "user", "greylist", "error",
               err ? err : "", "suppressed", sup, NULL);
}

/* ---- requests ---- */

static void req_free(struct rgrey_req *q)
{
    struct rgrey *rg = q->rg;

    if (q->prev)
        q->prev->next = q->next;
    else
        rg->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    if (q->tmo)
        event_free(q->tmo);
    free(q);
}

/* finish: deliver r (once) and free the request unless hiredis still holds it. */
static void finish(struct rgrey_req *q, enum grey_verdict v, unsigned wait_s, const char *error)
{
    struct rgrey *rg = q->rg;

    if (!q->done) {
        struct rgrey_result r = {v, wait_s, error};
        q->done = 1;
        rg->st.pending--;
        evtimer_del(q->tmo);
        switch (v) {
        case GREY_DEFER:
            rg->st.defer++;
            break;
        case GREY_PASS:
            rg->st.pass++;
            break;
        case GREY_PASS_NEW:
            rg->st.pass_new++;
            break;
        case GREY_PASS_AWL:
            rg->st.pass_awl++;
            break;
        case GREY_ERROR:
            rg->st.errors++;
            break;
        }
        q->in_cb = 1;
        q->cb(q->arg, &r);
        q->in_cb = 0;
    }
    if (!q->in_redis)
        req_free(q);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

/* ll_str: v in decimal into buf (24 bytes); snprintf per argument showed in
 * profiles of a greylisting daemon (five numbers per Redis call). */
static const char *ll_str(char buf[24], long long v)
{
    char *p = buf + 23;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    *p = '\0';
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

/* send_argv: a command in RESP, formatted here into a stack buffer and handed
 * to hiredis as is (its own formatting, through sds, showed in profiles);
 * long ones (EVAL with a script body) go through hiredis. */
static int send_argv(struct rgrey *rg, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *lens)
{
    char buf[1024], num[24], *p = buf, *end = buf + sizeof(buf);
    const char *cnt = ll_str(num, argc);
    size_t cl = strlen(cnt);

    *p++ = '*';
    memcpy(p, cnt, cl);
    p += cl;
    memcpy(p, "\r\n", 2);
    p += 2;
    for (int i = 0; i < argc; i++) {
        const char *d = ll_str(num, (long long)lens[i]);
        size_t dl = strlen(d);

        if ((size_t)(end - p) < 1 + dl + 2 + lens[i] + 2)
            return redisAsyncCommandArgv(rg->ac, fn, priv, argc, argv, lens);
        *p++ = '$';
        memcpy(p, d, dl);
        p += dl;
        memcpy(p, "\r\n", 2);
        p += 2;
        memcpy(p, argv[i], lens[i]);
        p += lens[i];
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    return redisAsyncFormattedCommand(rg->ac, fn, priv, buf, (size_t)(p - buf));
}

/* send_step: the request's current step on the connection; -1 when down. */
static int send_step(struct rgrey_req *q)
{
    struct rgrey *rg = q->rg;
    char now[24], a2[24], a3[24], a4[24], a5[24];
    const char *argv[10];
    size_t lens[10];
    int argc = 0, sc = q->step == RQ_AWL ? SC_AWL : SC_GREY;

    if (rg->state != RG_UP || rg->ac == NULL)
        return -1;
    argv[argc++] = q->eval ? "EVAL" : "EVALSHA";
    argv[argc++] = q->eval ? (sc == SC_AWL ? awl_lua : grey_lua) : rg->sha[sc];
    argv[argc++] = "1";
    if (q->step == RQ_AWL) {
        argv[argc++] = q->akey;
        argv[argc++] = "c";
        argv[argc++] = ll_str(now, q->now);
        argv[argc++] = ll_str(a3, q->p.awl_count);
        argv[argc++] = ll_str(a4, q->p.awl_interval_ms);
        argv[argc++] = ll_str(a5, q->p.max_age_ms);
    } else {
        argv[argc++] = q->gkey;
        argv[argc++] = ll_str(now, q->now);
        argv[argc++] = ll_str(a2, q->p.delay_ms);
        argv[argc++] = ll_str(a3, q->p.window_ms);
        argv[argc++] = ll_str(a4, q->p.max_age_ms);
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (send_argv(rg, on_reply, q, argc, argv, lens) != REDIS_OK)
        return -1;
    q->in_redis = 1;
    q->awl_epoch = rg->awl_epoch;
    return 0;
}

static void on_awl_reply(redisAsyncContext *ac, void *r, void *priv);

static void send_awl_pass(struct awltok *t)
{
    struct rgrey *rg = t->rg;
    const char *argv[] = {t->eval ? "EVAL" : "EVALSHA",
                          t->eval ? awl_lua : rg->sha[SC_AWL],
                          "1",
                          t->key,
                          "p",
                          t->now,
                          t->need_s,
                          t->iv,
                          t->age};
    size_t lens[9];

    for (int i = 0; i < 9; i++)
        lens[i] = strlen(argv[i]);
    if (rg->state != RG_UP || rg->ac == NULL ||
        redisAsyncCommandArgv(rg->ac, on_awl_reply, t, 9, argv, lens) != REDIS_OK) {
        rg->st.awl_errors++;
        free(t);
    }
}

static void on_awl_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct awltok *t = priv;
    struct rgrey *rg = t->rg;
    redisReply *reply = r;

    (void)ac;
    if (rg->freeing) {
        free(t);
        return;
    }
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !t->eval &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        t->eval = 1;
        send_awl_pass(t); /* frees t on failure */
        return;
    }
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        rg->st.awl_errors++;
    } else if (reply->integer == (long long)t->need) {
        char c[24];
        snprintf(c, sizeof(c), "%lld", reply->integer);
        log_kv(LOG_L_INFO, "greylist_awl_listed", "net", t->net, "passes", c, NULL);
    }
    free(t);
}

static void awl_pass(struct rgrey_req *q)
{
    size_t kl = strlen(q->akey);
    struct awltok *t = malloc(sizeof(*t) + kl + 1);

    if (t == NULL) {
        q->rg->st.awl_errors++;
        return;
    }
    memset(t, 0, sizeof(*t));
    t->rg = q->rg;
    t->need = q->p.awl_count;
    snprintf(t->now, sizeof(t->now), "%lld", q->now);
    snprintf(t->need_s, sizeof(t->need_s), "%u", q->p.awl_count);
    snprintf(t->iv, sizeof(t->iv), "%lld", q->p.awl_interval_ms);
    snprintf(t->age, sizeof(t->age), "%lld", q->p.max_age_ms);
    snprintf(t->net, sizeof(t->net), "%s", q->net);
    memcpy(t->key, q->akey, kl + 1);
    /* This may list the network: forget what we knew about it, and do not
     * cache lookups that were sent before this increment. */
    if (q->rg->awlc)
        inst_del(q->rg->awlc, q->net);
    q->rg->awl_epoch++;
    send_awl_pass(t);
}

static void reply_error(struct rgrey_req *q, const char *what, const char *detail)
{
    char sup[32];

    if (log_gate(q->rg, LK_REPLY, sup, sizeof(sup)))
        log_kv(LOG_L_WARNING, "greylist_redis_error", "redis", q->rg->conf.addr, "error", what,
               "detail", detail ? detail : "", "suppressed", sup, NULL);
    finish(q, GREY_ERROR, 0, what);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct rgrey_req *q = priv;
    redisReply *reply = r;

    (void)ac;
    q->in_redis = 0;
    if (q->rg->freeing) {
        req_free(q);
        return;
    }
    if (q->done) {
        req_free(q);
        return;
    }
    if (reply == NULL) {
        finish(q, GREY_ERROR, 0, "redis connection lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!q->eval && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            q->eval = 1;
            if (send_step(q) == 0)
                return;
            finish(q, GREY_ERROR, 0, "redis unavailable");
            return;
        }
        reply_error(q, "redis error reply", reply->str);
        return;
    }
    if (q->step == RQ_AWL) {
        if (reply->type != REDIS_REPLY_INTEGER) {
            reply_error(q, "unexpected redis reply", "awl");
            return;
        }
        if (q->awl_epoch == q->rg->awl_epoch)
            awlc_put(q->rg, q->net, &q->p, q->now, reply->integer > 0);
        if (reply->integer > 0) {
            finish(q, GREY_PASS_AWL, 0, NULL);
            return;
        }
        q->step = RQ_TRIPLET;
        q->eval = 0;
        if (send_step(q) < 0)
            finish(q, GREY_ERROR, 0, "redis unavailable");
        return;
    }
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 0) {
        reply_error(q, "unexpected redis reply", "grey");
        return;
    }
    switch (reply->integer & 3) {
    case 0: {
        long long ms = reply->integer >> 2;
        unsigned s = ms <= 0 ? 1 : (unsigned)((ms + 999) / 1000);
        finish(q, GREY_DEFER, s, NULL);
        return;
    }
    case 1:
        finish(q, GREY_PASS, 0, NULL);
        return;
    case 2:
        if (q->p.awl_count > 0)
            awl_pass(q); /* queued before any later request's AWL lookup */
        finish(q, GREY_PASS_NEW, 0, NULL);
        return;
    default:
        reply_error(q, "unexpected redis reply", "code");
        return;
    }
}

/* ---- connection ---- */

static void rg_connect(struct rgrey *rg);

static void schedule_retry(struct rgrey *rg)
{
    struct timeval tv;

    if (rg->freeing)
        return;
    tv_ms(&tv, rg->backoff_ms);
    evtimer_add(rg->retry_ev, &tv);
    rg->backoff_ms =
        rg->backoff_ms * 2 > RG_BACKOFF_MAX_MS ? RG_BACKOFF_MAX_MS : rg->backoff_ms * 2;
}

static void after_loss(struct rgrey *rg)
{
    rg->state = RG_DOWN;
    evtimer_del(rg->watchdog_ev);
    schedule_retry(rg);
}

/* drop_conn: close from outside hiredis callbacks; pending replies run with
 * NULL first (their requests complete with GREY_ERROR). */
static void drop_conn(struct rgrey *rg)
{
    redisAsyncContext *ac = rg->ac;

    if (ac == NULL)
        return;
    rg->ac = NULL;
    rg->state = RG_DOWN;
    redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rgrey *rg = ac->data;

    if (ac != rg->ac || status == REDIS_OK)
        return;
    rg->ac = NULL; /* hiredis frees ac after this returns */
    log_conn(rg, "redis_connect_failed", ac->errstr);
    after_loss(rg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rgrey *rg = ac->data;

    if (ac != rg->ac)
        return;
    rg->ac = NULL;
    if (!rg->freeing && !rg->closing)
        log_conn(rg, "redis_disconnected", status == REDIS_OK ? "closed" : ac->errstr);
    rg->closing = 0;
    after_loss(rg);
}

static void on_handshake(redisAsyncContext *ac, void *r, void *priv)
{
    struct hstok *t = priv;
    struct rgrey *rg = t->rg;
    redisReply *reply = r;

    if (ac != rg->ac || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR && !rg->hs_failed) {
        rg->hs_failed = 1;
        log_conn(rg, "redis_handshake_failed", reply->str);
    }
    if ((t->idx == HS_LOAD_GREY || t->idx == HS_LOAD_AWL) && reply->type == REDIS_REPLY_STRING &&
        reply->len == 40)
        memcpy(rg->sha[t->idx == HS_LOAD_GREY ? SC_GREY : SC_AWL], reply->str, 41);
    if (t->idx != HS_LOAD_AWL)
        return;
    if (rg->hs_failed) {
        rg->closing = 1;
        redisAsyncDisconnect(ac); /* deferred by hiredis; on_disconnect retries */
        return;
    }
    rg->state = RG_UP;
    rg->backoff_ms = RG_BACKOFF_MIN_MS;
    evtimer_del(rg->watchdog_ev);
    log_kv(LOG_L_INFO, "redis_connected", "redis", rg->conf.addr, "user", "greylist", NULL);
}

static void hs_cmd(struct rgrey *rg, int idx, int argc, const char **argv)
{
    size_t lens[4];

    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisAsyncCommandArgv(rg->ac, on_handshake, &rg->hs[idx], argc, argv, lens);
}

static void rg_connect(struct rgrey *rg)
{
    redisAsyncContext *ac;
    struct timeval tv;
    char dbs[16];

    if (rg->ac != NULL)
        return;
    if (rg->attempts++ > 0)
        rg->st.reconnects++;
    ac = rg->conf.path ? redisAsyncConnectUnix(rg->conf.path)
                       : redisAsyncConnect(rg->conf.host, rg->conf.port);
    if (ac == NULL || ac->err) {
        log_conn(rg, "redis_connect_failed", ac ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        after_loss(rg);
        return;
    }
    ac->data = rg;
    if (redisLibeventAttach(ac, rg->base) != REDIS_OK) {
        redisAsyncFree(ac);
        after_loss(rg);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rg->ac = ac;
    rg->state = RG_CONNECTING;
    rg->hs_failed = rg->closing = 0;
    if (rg->conf.password[0] != '\0') {
        const char *argv[] = {"AUTH", rg->conf.password};
        hs_cmd(rg, HS_AUTH, 2, argv);
    }
    if (rg->conf.db != 0) {
        snprintf(dbs, sizeof(dbs), "%u", rg->conf.db);
        const char *argv[] = {"SELECT", dbs};
        hs_cmd(rg, HS_SELECT, 2, argv);
    }
    {
        const char *a1[] = {"SCRIPT", "LOAD", grey_lua};
        const char *a2[] = {"SCRIPT", "LOAD", awl_lua};
        hs_cmd(rg, HS_LOAD_GREY, 3, a1);
        hs_cmd(rg, HS_LOAD_AWL, 3, a2);
    }
    tv_ms(&tv, RG_CONNECT_TIMEOUT_MS);
    evtimer_add(rg->watchdog_ev, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rgrey *rg = arg;

    (void)fd, (void)what;
    if (rg->state == RG_DOWN && rg->ac == NULL)
        rg_connect(rg);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rgrey *rg = arg;

    (void)fd, (void)what;
    if (rg->ac == NULL || rg->state == RG_UP)
        return;
    log_conn(rg, "redis_timeout", "connect");
    drop_conn(rg);
    after_loss(rg);
}

static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rgrey_req *q = arg;
    struct rgrey *rg = q->rg;

    (void)fd, (void)what;
    if (q->awl_hit) {
        finish(q, GREY_PASS_AWL, 0, NULL);
        return;
    }
    if (q->failnow) {
        rg->st.unavailable++;
        finish(q, GREY_ERROR, 0, "redis unavailable");
        return;
    }
    /* No answer in time: the connection is stuck (Redis answers in order,
     * so everything behind this request is stuck too). Answer, then remake
     * the connection; q may be freed by drop_conn. */
    rg->st.timeouts++;
    finish(q, GREY_ERROR, 0, "redis timeout");
    if (rg->ac != NULL) {
        log_conn(rg, "redis_timeout", "no reply to a greylist check");
        drop_conn(rg);
        after_loss(rg);
    }
}

/* ---- public API ---- */

/* apply_config: 1 when the connection settings changed, 0 not, -1 bad. */
static int apply_config(struct rgrey *rg, const struct rgrey_config *c)
{
    int changed;

    if (c == NULL ||
        (changed = raddr_conf_set(&rg->conf, c->redis, c->password, c->db, c->prefix, 0)) < 0)
        return -1;
    rg->timeout_ms = c->timeout_ms ? c->timeout_ms : RG_DEFAULT_TIMEOUT_MS;
    return changed;
}

struct rgrey *rgrey_new(struct event_base *base, const struct rgrey_config *c)
{
    struct rgrey *rg;

    if (base == NULL || (rg = calloc(1, sizeof(*rg))) == NULL)
        return NULL;
    rg->base = base;
    rg->backoff_ms = RG_BACKOFF_MIN_MS;
    for (int i = 0; i < HS_N; i++)
        rg->hs[i] = (struct hstok){rg, i};
    rg->retry_ev = evtimer_new(base, retry_cb, rg);
    rg->watchdog_ev = evtimer_new(base, watchdog_cb, rg);
    rg->awlc = inst_new(RG_AWLC_MAX, RG_AWLC_POS_MS, free);
    if (rg->retry_ev == NULL || rg->watchdog_ev == NULL || rg->awlc == NULL ||
        apply_config(rg, c) < 0) {
        rgrey_free(&rg);
        return NULL;
    }
    rg_connect(rg);
    return rg;
}

int rgrey_reconfigure(struct rgrey *rg, const struct rgrey_config *c)
{
    struct timeval tv = {0, 0};
    int changed = apply_config(rg, c);

    if (changed <= 0)
        return changed;
    /* Another server, database or prefix: what we knew is not about it. */
    inst_free(&rg->awlc);
    rg->awlc = inst_new(RG_AWLC_MAX, RG_AWLC_POS_MS, free);
    drop_conn(rg);
    evtimer_del(rg->watchdog_ev);
    rg->backoff_ms = RG_BACKOFF_MIN_MS;
    evtimer_add(rg->retry_ev, &tv); /* connect now, from the loop */
    return 0;
}

void rgrey_free(struct rgrey **rgp)
{
    struct rgrey *rg;

    if (rgp == NULL || (rg = *rgp) == NULL)
        return;
    *rgp = NULL;
    rg->freeing = 1;
    if (rg->ac != NULL) {
        redisAsyncContext *ac = rg->ac;
        rg->ac = NULL;
        redisAsyncFree(ac); /* in-redis requests are freed by on_reply(NULL) */
    }
    while (rg->reqs != NULL)
        req_free(rg->reqs);
    if (rg->retry_ev)
        event_free(rg->retry_ev);
    if (rg->watchdog_ev)
        event_free(rg->watchdog_ev);
    inst_free(&rg->awlc);
    raddr_conf_clear(&rg->conf);
    free(rg);
}

struct rgrey_req *rgrey_check(struct rgrey *rg, const char *triplet_key, const char *client_net,
                              long long now_ms, const struct grey_params *p, rgrey_cb *cb,
                              void *arg)
{
    struct rgrey_req *q;
    size_t pl, kl, nl, gl, al;
    struct timeval tv;

    if (rg == NULL || triplet_key == NULL || client_net == NULL || p == NULL || cb == NULL ||
        (nl = strlen(client_net)) >= GREY_NET_MAX || nl == 0 || strchr(client_net, '{') ||
        strchr(client_net, '}') || (kl = strlen(triplet_key)) == 0 || kl > 64)
        return NULL;
    pl = strlen(rg->conf.prefix);
    gl = pl + 8 + kl + 1; /* <p>:grey:{<key>} */
    al = pl + 7 + nl + 1; /* <p>:awl:{<net>} */
    if ((q = calloc(1, sizeof(*q) + gl + 1 + al + 1)) == NULL)
        return NULL;
    q->rg = rg;
    q->cb = cb;
    q->arg = arg;
    q->p = *p;
    q->now = now_ms;
    q->gkey = q->keys;
    q->akey = q->keys + gl + 1;
    /* "<p>:grey:{<key>}" and "<p>:awl:{<net>}" (calloc'd: NUL-terminated;
     * the lengths were computed above, snprintf showed in profiles) */
    memcpy(q->gkey, rg->conf.prefix, pl);
    memcpy(q->gkey + pl, ":grey:{", 7);
    memcpy(q->gkey + pl + 7, triplet_key, kl);
    q->gkey[pl + 7 + kl] = '}';
    memcpy(q->akey, rg->conf.prefix, pl);
    memcpy(q->akey + pl, ":awl:{", 6);
    memcpy(q->akey + pl + 6, client_net, nl);
    q->akey[pl + 6 + nl] = '}';
    memcpy(q->net, client_net, nl + 1);
    if ((q->tmo = evtimer_new(rg->base, req_timer_cb, q)) == NULL) {
        free(q);
        return NULL;
    }
    q->next = rg->reqs;
    if (rg->reqs)
        rg->reqs->prev = q;
    rg->reqs = q;
    rg->st.checks++;
    rg->st.pending++;
    q->step = p->awl_count > 0 ? RQ_AWL : RQ_TRIPLET;
    if (q->step == RQ_AWL) {
        int listed = awlc_get(rg, q->net, p, now_ms);

        if (listed >= 0)
            rg->st.awl_cached++;
        if (listed == 1)
            q->awl_hit = 1;
        else if (listed == 0)
            q->step = RQ_TRIPLET; /* known not listed: straight to the triplet */
    }
    if (q->awl_hit) {
        tv_ms(&tv, 0); /* answered from the loop, never from here */
    } else if (send_step(q) < 0) {
        q->failnow = 1; /* answered from the loop, never from here */
        tv_ms(&tv, 0);
    } else {
        tv_ms(&tv, rg->timeout_ms);
    }
    evtimer_add(q->tmo, &tv);
    return q;
}

void rgrey_cancel(struct rgrey_req **reqp)
{
    struct rgrey_req *q;

    if (reqp == NULL || (q = *reqp) == NULL)
        return;
    *reqp = NULL;
    if (q->done || q->in_cb)
        return;
    q->done = 1;
    q->rg->st.pending--;
    q->rg->st.cancelled++;
    evtimer_del(q->tmo);
    if (!q->in_redis)
        req_free(q);
}

void rgrey_get_stats(const struct rgrey *rg, struct rgrey_stats *out)
{
    *out = rg->st;
    out->connected = rg->state == RG_UP;
}
