/* spfw.c - the SPF worker pool (see spfw.h).
 *
 * Main side: one bufferevent per worker socketpair, a FIFO of evaluations
 * waiting for an idle worker, an index of evaluations in flight (single
 * flight), a bounded LRU verdict cache, and one deferred "done" event through
 * which every user callback runs (so no callback is ever synchronous, and
 * spfw_cancel/spfw_free are safe from inside any callback).
 *
 * Cache keys: the full key is "ip NUL helo NUL sender NUL". A verdict whose
 * MAIL FROM evaluation expanded no local-part macro (verdict.uses_local == 0,
 * reported by the adapter) for a sender with a non-empty local part is the
 * same for every local part at that domain, so it is kept under the domain
 * key "ip NUL helo NUL @domain NUL NUL" instead. The extra NUL makes the two
 * forms disjoint: a full key holds exactly three NULs (its parts are C
 * strings), so the literal sender "@domain" can never hit a domain entry.
 *
 * Worker side (after fork, never returns): blocking reads of job frames, one
 * struct spfa, DNS questions sent to the main process and answered by it.
 *
 * IPC frames (both directions), integers big-endian:
 *   u32 body length, then body = u8 type, u32 job id, payload
 *   JOB      main->worker  receiver NUL ip NUL helo NUL sender NUL
 *   ANSWER   main->worker  dnsrr wire form (dnsrr.h)
 *   QUESTION worker->main  u16 type, name NUL
 *   RESULT   worker->main  u8 mfrom, u8 helo, u32 ttl, u8 flags (bit 0: uses_local,
 *                          other bits 0), 4 x (u16 len, bytes):
 *                          mfrom_domain, helo_domain, explanation, problem
 * The worker runs libspf2 on attacker-controlled records, so everything it
 * sends is checked (lengths, state, job id); any violation is treated as the
 * worker's death: it is killed, its job gets temperror, a new one is forked. */
#include "spfw.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dns.h"
#include "dnsrr.h"
#include "log.h"
#include "spfa.h"

/* ---- IPC framing ---- */

enum { FR_JOB = 1, FR_ANSWER = 2, FR_QUESTION = 3, FR_RESULT = 4 };
#define FR_HDR 4
#define FR_BODY_MIN 5            /* type + job id */
#define FR_W2M_MAX 4096          /* a question or a result always fits */
#define FR_M2W_MAX (1024 * 1024) /* a job or an answer; larger answers -> SERVFAIL */
#define QNAME_MAX 1024           /* longer question names are refused locally */
#define WORKER_FD 3              /* the socket's number inside a worker */
#define GRACE_MIN_MS 100         /* after a deadline, a worker gets eval_timeout/2 */
#define GRACE_MAX_MS 2000        /*   clamped to this range, to come back */
#define FAST_DEATH_MS 2000       /* an idle worker dying this soon after its start */
#define BACKOFF_MAX_MS 5000      /*   is respawned with exponential backoff */
#define REAP_INTERVAL_MS 50
#define DEFAULT_TIMEOUT_MS 10000
/* A temperror a worker reported (DNS SERVFAIL, timeout, unreachable) is
 * reused this long: during a DNS outage the same sender's next messages get
 * the same answer without a worker (one evaluation per key per 2 s instead of
 * one per message), and a recovered DNS is seen again within 2 s. */
#define TEMPERROR_TTL_S 2

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v & 0xff;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = (v >> 16) & 0xff;
    p[2] = (v >> 8) & 0xff;
    p[3] = v & 0xff;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* frame_new: a buffer holding header + type + id with room for plen payload
 * bytes at frame + FR_HDR + FR_BODY_MIN. Caller frees. */
static unsigned char *frame_new(uint8_t type, uint32_t id, size_t plen)
{
    unsigned char *f = malloc(FR_HDR + FR_BODY_MIN + plen);

    if (f == NULL)
        return NULL;
    put32(f, (uint32_t)(FR_BODY_MIN + plen));
    f[FR_HDR] = type;
    put32(f + FR_HDR + 1, id);
    return f;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* ---- a small chained hash table keyed by byte strings (intrusive) ---- */

struct ht_node {
    struct ht_node *next;
    uint32_t hash;
    size_t klen;
    const char *key;
};

struct ht {
    struct ht_node **b;
    size_t nb; /* power of two, or 0 before the first insert */
    size_t n;
};

static uint32_t ht_hash(const char *k, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

static struct ht_node *ht_find(struct ht *t, const char *k, size_t klen, uint32_t h)
{
    if (t->nb == 0)
        return NULL;
    for (struct ht_node *n = t->b[h & (t->nb - 1)]; n; n = n->next)
        if (n->hash == h && n->klen == klen && memcmp(n->key, k, klen) == 0)
            return n;
    return NULL;
}

/* ht_insert: the table grows when it is fuller than one entry per bucket; a
 * failed growth just leaves longer chains. */
static void ht_insert(struct ht *t, struct ht_node *n)
{
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct ht_node **b = calloc(nb, sizeof(*b));

        if (b != NULL) {
            for (size_t i = 0; i < t->nb; i++)
                while (t->b[i]) {
                    struct ht_node *x = t->b[i];

                    t->b[i] = x->next;
                    x->next = b[x->hash & (nb - 1)];
                    b[x->hash & (nb - 1)] = x;
                }
            free(t->b);
            t->b = b;
            t->nb = nb;
        } else if (t->nb == 0) {
            return; /* cannot index at all; callers treat the entry as unindexed */
        }
    }
    n->next = t->b[n->hash & (t->nb - 1)];
    t->b[n->hash & (t->nb - 1)] = n;
    t->n++;
}

static void ht_remove(struct ht *t, struct ht_node *n)
{
    if (t->nb == 0)
        return;
    for (struct ht_node **pp = &t->b[n->hash & (t->nb - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            t->n--;
            return;
        }
}

/* ---- pool data ---- */

enum eval_state { E_QUEUED, E_RUNNING };

/* One evaluation of a (client IP, HELO, sender) triple, shared by its waiters. */
struct eval {
    struct ht_node hn; /* in pool->inflight while indexed */
    struct spfw_pool *p;
    TAILQ_ENTRY(eval) qlink; /* pool->queue while E_QUEUED */
    TAILQ_HEAD(, spfw_job) waiters;
    struct worker *w; /* while E_RUNNING */
    struct event *deadline;
    uint32_t id;
    enum eval_state state;
    int indexed;
    int orphan; /* deadline passed: waiters answered, the worker's result is discarded */
    const char *ip, *helo, *sender; /* point into key */
    size_t klen;
    char key[]; /* ip NUL helo NUL sender NUL */
};

enum job_state { J_WAITING, J_DONE, J_FIRING };

struct spfw_job {
    struct spfw_pool *p;
    struct eval *e;             /* while J_WAITING */
    TAILQ_ENTRY(spfw_job) link; /* e->waiters (J_WAITING) or p->done (J_DONE) */
    enum job_state state;
    uint64_t gen; /* done-list generation, so a drain never runs jobs added during it */
    spfw_cb cb;
    void *arg;
    struct spf_verdict v; /* set when J_DONE */
};

enum worker_state { W_DOWN, W_IDLE, W_BUSY };

struct worker {
    struct spfw_pool *p;
    TAILQ_ENTRY(worker) link;
    enum worker_state state;
    pid_t pid; /* -1 while down */
    struct bufferevent *bev;
    struct eval *e;      /* W_BUSY: the evaluation it runs (maybe orphaned) */
    struct dns_query *q; /* the DNS question it waits for, if any */
    uint16_t qtype;
    struct event *grace;   /* after the deadline: kill if not back in time */
    struct event *respawn; /* backoff timer while W_DOWN */
    uint64_t started_ms;
    unsigned fast_deaths;
    int status; /* wait status of the last process, -1 if not known yet */
};

struct centry {
    struct ht_node hn;
    TAILQ_ENTRY(centry) lru; /* head = most recently used */
    uint64_t expires_ms;
    struct spf_verdict v;
    size_t klen;
    char key[];
};

struct spfw_pool {
    struct event_base *base;
    struct dns_resolver *dns;
    struct spfw_config cfg; /* cfg.receiver points to receiver */
    char *receiver;

    TAILQ_HEAD(, worker) workers;
    unsigned nworkers; /* slots, including those waiting to respawn */

    TAILQ_HEAD(, eval) queue;
    unsigned nqueued;
    struct ht inflight;
    uint32_t next_id;

    struct ht cache;
    TAILQ_HEAD(centry_lru, centry) lru;

    TAILQ_HEAD(, spfw_job) done;
    struct event *done_ev;
    uint64_t done_gen;
    int in_done;      /* inside done_cb: spfw_free must leave p to it */
    int free_pending; /* spfw_free was called from a callback */

    pid_t *zombies; /* killed workers not reaped yet */
    size_t nzombies, zcap;
    struct event *reap_ev;

    struct spfw_stats st;
};

static void pool_dispatch(struct spfw_pool *p);
static void worker_died(struct worker *w, const char *reason);
static int worker_spawn(struct worker *w);
static void worker_main(int fd, const char *receiver) __attribute__((noreturn));

/* ---- verdicts ---- */

static void copy_str(char *dst, size_t sz, const char *src)
{
    size_t n = strlen(src);

    if (n >= sz)
        n = sz - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* helo_is_domain: the same rough test the adapter applies ("" and address
 * literals are not evaluated as HELO identities). */
static int helo_is_domain(const char *helo)
{
    return helo[0] != '\0' && helo[0] != '[' && strchr(helo, '.') != NULL &&
           strspn(helo, "0123456789.") != strlen(helo);
}

/* verdict_unknown: what waiters get when the evaluation did not finish: every
 * identity that would have been evaluated is temperror. */
static void verdict_unknown(struct spf_verdict *v, const struct eval *e, const char *problem)
{
    const char *at = strrchr(e->sender, '@');

    memset(v, 0, sizeof(*v));
    v->mfrom = SPF_RES_TEMPERROR;
    if (e->sender[0] == '\0')
        copy_str(v->mfrom_domain, sizeof(v->mfrom_domain), e->helo);
    else
        copy_str(v->mfrom_domain, sizeof(v->mfrom_domain), at ? at + 1 : e->sender);
    if (helo_is_domain(e->helo)) {
        v->helo = SPF_RES_TEMPERROR;
        copy_str(v->helo_domain, sizeof(v->helo_domain), e->helo);
    } else {
        v->helo = SPF_RES_NONE;
    }
    copy_str(v->problem, sizeof(v->problem), problem);
    v->uses_local = 1; /* not known; never cached anyway (temperror) */
}

/* ---- verdict cache ---- */

#define KEY_STACK 512 /* cache keys up to this size are built on the stack */

/* key_domain: the '@' that starts the sender's domain when the domain key
 * applies (a non-empty local part before the last '@', as the adapter splits
 * it), else NULL: the null sender, a sender without '@' and "@domain" keep
 * the full key. */
static const char *key_domain(const char *sender)
{
    const char *at = strrchr(sender, '@');

    return at != NULL && at != sender ? at : NULL;
}

/* key_make: the key "ip NUL helo NUL tail NUL" (plus one more NUL for a domain
 * key, whose tail is "@domain") into buf. Returns its length; when that is
 * more than bufsz nothing is written and the caller retries with a larger buf. */
static size_t key_make(char *buf, size_t bufsz, const char *ip, const char *helo, const char *tail,
                       int domain_key)
{
    size_t li = strlen(ip), lh = strlen(helo), lt = strlen(tail);
    size_t n = li + lh + lt + 3 + (domain_key ? 1 : 0);

    if (n > bufsz)
        return n;
    memcpy(buf, ip, li + 1);
    memcpy(buf + li + 1, helo, lh + 1);
    memcpy(buf + li + lh + 2, tail, lt + 1);
    if (domain_key)
        buf[n - 1] = '\0';
    return n;
}

/* key_build: key_make into stack[KEY_STACK], or into a malloc'd buffer for a
 * huge key (*k != stack: caller frees). 0 when out of memory. */
static size_t key_build(char *stack, char **k, const char *ip, const char *helo, const char *tail,
                        int domain_key)
{
    size_t n = key_make(stack, KEY_STACK, ip, helo, tail, domain_key);

    *k = stack;
    if (n > KEY_STACK) {
        if ((*k = malloc(n)) == NULL)
            return 0;
        key_make(*k, n, ip, helo, tail, domain_key);
    }
    return n;
}

static void cache_drop(struct spfw_pool *p, struct centry *c)
{
    ht_remove(&p->cache, &c->hn);
    TAILQ_REMOVE(&p->lru, c, lru);
    free(c);
}

static void cache_trim(struct spfw_pool *p, size_t max)
{
    struct centry *c;

    while (p->cache.n > max && (c = TAILQ_LAST(&p->lru, centry_lru)) != NULL)
        cache_drop(p, c);
}

static int cache_get(struct spfw_pool *p, const char *k, size_t klen, uint32_t h,
                     struct spf_verdict *out)
{
    struct ht_node *n = ht_find(&p->cache, k, klen, h);
    struct centry *c;

    if (n == NULL)
        return 0;
    c = (struct centry *)((char *)n - offsetof(struct centry, hn));
    if (c->expires_ms <= now_ms()) {
        cache_drop(p, c);
        return 0;
    }
    TAILQ_REMOVE(&p->lru, c, lru);
    TAILQ_INSERT_HEAD(&p->lru, c, lru);
    *out = c->v;
    return 1;
}

/* cache_probe: the cached verdict for a job, domain key first, then the full
 * key. Counts the hit. 1 on a hit (*out filled), else 0. No allocation unless
 * a key is larger than KEY_STACK. */
static int cache_probe(struct spfw_pool *p, const char *ip, const char *helo, const char *sender,
                       struct spf_verdict *out)
{
    const char *at = key_domain(sender);
    char stack[KEY_STACK], *k;
    int hit = 0;

    if (p->cfg.verdict_cache_size == 0 || p->cache.n == 0)
        return 0;
    for (int dom = at != NULL; dom >= 0 && !hit; dom--) {
        size_t klen = key_build(stack, &k, ip, helo, dom ? at : sender, dom);

        if (klen == 0)
            return 0;
        hit = cache_get(p, k, klen, ht_hash(k, klen), out);
        if (hit && dom)
            p->st.cache_domain_hits++;
        if (k != stack)
            free(k);
    }
    if (hit)
        p->st.cache_hits++;
    return hit;
}

/* cache_put: temperror verdicts are kept TEMPERROR_TTL_S at most (the next
 * try may succeed). Under the domain key when the verdict does not depend on the local part
 * (see the file comment), else under the evaluation's full key. */
static void cache_put(struct spfw_pool *p, const struct eval *e, const struct spf_verdict *v)
{
    int temp = v->mfrom == SPF_RES_TEMPERROR || v->helo == SPF_RES_TEMPERROR;
    uint32_t ttl = temp ? TEMPERROR_TTL_S : v->ttl;
    const char *at = key_domain(e->sender), *k = e->key;
    char stack[KEY_STACK], *dk = NULL;
    size_t klen = e->klen;
    uint32_t h = e->hn.hash;
    struct ht_node *n;
    struct centry *c;

    if (ttl > p->cfg.verdict_cache_ttl_s)
        ttl = p->cfg.verdict_cache_ttl_s;
    if (p->cfg.verdict_cache_size == 0 || ttl == 0)
        return;
    if (v->uses_local == 0 && at != NULL) {
        if ((klen = key_build(stack, &dk, e->ip, e->helo, at, 1)) == 0)
            return;
        k = dk;
        h = ht_hash(k, klen);
    }
    if ((n = ht_find(&p->cache, k, klen, h)) != NULL)
        cache_drop(p, (struct centry *)((char *)n - offsetof(struct centry, hn)));
    cache_trim(p, p->cfg.verdict_cache_size - 1);
    c = malloc(sizeof(*c) + klen);
    if (c != NULL)
        memcpy(c->key, k, klen);
    if (dk != NULL && dk != stack)
        free(dk);
    if (c == NULL)
        return;
    c->klen = klen;
    c->hn.key = c->key;
    c->hn.klen = c->klen;
    c->hn.hash = h;
    c->v = *v;
    c->expires_ms = now_ms() + (uint64_t)ttl * 1000;
    ht_insert(&p->cache, &c->hn);
    if (ht_find(&p->cache, c->key, c->klen, c->hn.hash) != &c->hn) {
        free(c); /* the table could not be allocated */
        return;
    }
    TAILQ_INSERT_HEAD(&p->lru, c, lru);
}

/* ---- completion: every callback runs from done_cb ---- */

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct spfw_pool *p = arg;
    uint64_t gen = p->done_gen++;
    struct spfw_job *j;

    p->in_done = 1;
    while ((j = TAILQ_FIRST(&p->done)) != NULL && j->gen <= gen) {
        TAILQ_REMOVE(&p->done, j, link);
        j->state = J_FIRING;
        j->cb(&j->v, j->arg);
        free(j);
        if (p->free_pending) {
            event_free(p->done_ev);
            free(p);
            return;
        }
    }
    p->in_done = 0;
    if (!TAILQ_EMPTY(&p->done))
        event_active(p->done_ev, EV_READ, 0);
}

static void job_done(struct spfw_pool *p, struct spfw_job *j, const struct spf_verdict *v)
{
    j->v = *v;
    j->e = NULL;
    j->state = J_DONE;
    j->gen = p->done_gen;
    if (TAILQ_EMPTY(&p->done))
        event_active(p->done_ev, EV_READ, 0);
    TAILQ_INSERT_TAIL(&p->done, j, link);
}

/* ---- evaluations ---- */

static void eval_deadline_cb(evutil_socket_t fd, short what, void *arg);

static struct eval *eval_new(struct spfw_pool *p, const char *k, size_t klen, uint32_t h)
{
    struct eval *e = calloc(1, sizeof(*e) + klen);
    unsigned ms = p->cfg.eval_timeout_ms;
    struct timeval tv = ms_tv(ms);

    if (e == NULL)
        return NULL;
    if ((e->deadline = evtimer_new(p->base, eval_deadline_cb, e)) == NULL) {
        free(e);
        return NULL;
    }
    e->p = p;
    memcpy(e->key, k, klen);
    e->klen = klen;
    e->ip = e->key;
    e->helo = e->ip + strlen(e->ip) + 1;
    e->sender = e->helo + strlen(e->helo) + 1;
    e->hn.key = e->key;
    e->hn.klen = klen;
    e->hn.hash = h;
    e->id = ++p->next_id;
    TAILQ_INIT(&e->waiters);
    ht_insert(&p->inflight, &e->hn);
    e->indexed = ht_find(&p->inflight, k, klen, h) == &e->hn;
    e->state = E_QUEUED;
    TAILQ_INSERT_TAIL(&p->queue, e, qlink);
    p->nqueued++;
    evtimer_add(e->deadline, &tv);
    return e;
}

static void eval_unindex(struct eval *e)
{
    if (e->indexed) {
        ht_remove(&e->p->inflight, &e->hn);
        e->indexed = 0;
    }
}

/* eval_free: the waiters must have been moved or freed already. */
static void eval_free(struct eval *e)
{
    eval_unindex(e);
    if (e->state == E_QUEUED) {
        TAILQ_REMOVE(&e->p->queue, e, qlink);
        e->p->nqueued--;
    }
    if (e->w != NULL)
        e->w->e = NULL;
    event_free(e->deadline);
    free(e);
}

static void eval_complete_waiters(struct eval *e, const struct spf_verdict *v)
{
    struct spfw_job *j;

    while ((j = TAILQ_FIRST(&e->waiters)) != NULL) {
        TAILQ_REMOVE(&e->waiters, j, link);
        job_done(e->p, j, v);
    }
}

/* ---- main side of a worker ---- */

static unsigned grace_ms(const struct spfw_pool *p)
{
    unsigned g = p->cfg.eval_timeout_ms / 2;

    return g < GRACE_MIN_MS ? GRACE_MIN_MS : g > GRACE_MAX_MS ? GRACE_MAX_MS : g;
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct spfw_pool *p = arg;
    size_t i = 0;

    while (i < p->nzombies) {
        pid_t r;

        do
            r = waitpid(p->zombies[i], NULL, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r != 0) /* reaped, or ECHILD (someone else reaped it) */
            p->zombies[i] = p->zombies[--p->nzombies];
        else
            i++;
    }
    if (p->nzombies > 0) {
        struct timeval tv = ms_tv(REAP_INTERVAL_MS);
        evtimer_add(p->reap_ev, &tv);
    }
}

/* kill_and_reap: a killed process needs a moment to die; what is not reaped at
 * once is retried from a timer, so there are no lasting zombies. */
static int kill_and_reap(struct spfw_pool *p, pid_t pid)
{
    int status = -1;
    pid_t r;

    kill(pid, SIGKILL); /* nothing for a process that already died */
    do
        r = waitpid(pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r != 0)
        return r == pid ? status : -1;
    if (p->nzombies == p->zcap) {
        size_t cap = p->zcap ? p->zcap * 2 : 8;
        pid_t *z = realloc(p->zombies, cap * sizeof(*z));

        if (z == NULL) { /* cannot remember it: wait now (it was SIGKILLed) */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return status;
        }
        p->zombies = z;
        p->zcap = cap;
    }
    p->zombies[p->nzombies++] = pid;
    if (!evtimer_pending(p->reap_ev, NULL)) {
        struct timeval tv = ms_tv(REAP_INTERVAL_MS);
        evtimer_add(p->reap_ev, &tv);
    }
    return -1;
}

static void worker_send(struct worker *w, unsigned char *frame)
{
    if (frame != NULL && w->bev != NULL)
        bufferevent_write(w->bev, frame, FR_HDR + get32(frame));
    free(frame);
}

static void worker_answer(struct worker *w, const struct dns_result *res)
{
    size_t sz = dnsrr_encoded_size(res);
    unsigned char *f;

    if (FR_BODY_MIN + sz > FR_M2W_MAX) {
        struct dns_result *fail = dnsrr_new(DNS_SERVFAIL, res->type, 0, 0);

        if (fail != NULL)
            worker_answer(w, fail);
        dnsrr_unref(&fail);
        return;
    }
    if ((f = frame_new(FR_ANSWER, w->e ? w->e->id : 0, sz)) != NULL)
        dnsrr_encode(res, f + FR_HDR + FR_BODY_MIN);
    worker_send(w, f);
}

static void worker_answer_status(struct worker *w, enum dns_status st, uint16_t type)
{
    struct dns_result *r = dnsrr_new(st, type, 0, 0);

    if (r == NULL) {
        worker_died(w, "out of memory"); /* cannot answer: do not leave it blocked */
        return;
    }
    worker_answer(w, r);
    dnsrr_unref(&r);
}

static void worker_dns_cb(const struct dns_result *res, void *arg)
{
    struct worker *w = arg;

    w->q = NULL;
    worker_answer(w, res);
}

/* worker_down: stop the process and detach its evaluation. A live evaluation's
 * waiters get temperror; an orphaned one is just dropped. */
static void worker_down(struct worker *w, const char *problem)
{
    struct spfw_pool *p = w->p;
    struct eval *e = w->e;

    if (w->q != NULL)
        dns_cancel(&w->q);
    if (w->bev != NULL) {
        bufferevent_free(w->bev);
        w->bev = NULL;
    }
    evtimer_del(w->grace);
    if (w->pid > 0) {
        w->status = kill_and_reap(p, w->pid);
        w->pid = -1;
    }
    if (e != NULL) {
        if (!e->orphan && problem != NULL) {
            struct spf_verdict v;

            verdict_unknown(&v, e, problem);
            eval_complete_waiters(e, &v);
        } else {
            struct spfw_job *j;

            while ((j = TAILQ_FIRST(&e->waiters)) != NULL) { /* teardown only */
                TAILQ_REMOVE(&e->waiters, j, link);
                free(j);
            }
        }
        eval_free(e); /* clears w->e */
    }
    w->state = W_DOWN;
}

static void worker_remove(struct worker *w)
{
    struct spfw_pool *p = w->p;

    worker_down(w, "spf worker died");
    TAILQ_REMOVE(&p->workers, w, link);
    p->nworkers--;
    event_free(w->grace);
    event_free(w->respawn);
    free(w);
}

static void schedule_respawn(struct worker *w)
{
    unsigned ms = 0;

    if (w->fast_deaths > 0) {
        unsigned shift = w->fast_deaths - 1 < 10 ? w->fast_deaths - 1 : 10;

        ms = 100u << shift;
        if (ms > BACKOFF_MAX_MS)
            ms = BACKOFF_MAX_MS;
    }
    struct timeval tv = ms_tv(ms);
    evtimer_add(w->respawn, &tv);
}

/* respawn: fork again now; a failed fork counts as a fast death (backoff). */
static void respawn(struct worker *w)
{
    if (worker_spawn(w) == 0) {
        pool_dispatch(w->p);
        return;
    }
    log_kv(LOG_L_ERROR, "spf_worker_spawn_failed", "error", strerror(errno), NULL);
    w->fast_deaths++;
    schedule_respawn(w);
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    respawn(arg);
}

/* worker_died: EOF, error, protocol violation or overrun. The slot is
 * respawned (later, with backoff, when workers keep dying idle right after
 * their start: a broken setup must not become a fork loop) or dropped when the
 * pool shrinks. */
static void worker_died(struct worker *w, const char *reason)
{
    struct spfw_pool *p = w->p;
    int idle = w->e == NULL;
    const char *job = idle ? "none" : w->e->orphan ? "timed-out" : "temperror";
    char pid[16], how[32] = "unknown";

    p->st.worker_deaths++;
    snprintf(pid, sizeof(pid), "%d", (int)w->pid);
    worker_down(w, "spf worker died");
    if (w->status >= 0 && WIFSIGNALED(w->status))
        snprintf(how, sizeof(how), "signal %d", WTERMSIG(w->status));
    else if (w->status >= 0 && WIFEXITED(w->status))
        snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(w->status));
    log_kv(LOG_L_WARNING, "spf_worker_died", "pid", pid, "reason", reason, "status", how, "job",
           job, NULL);
    if (p->nworkers > p->cfg.workers) {
        worker_remove(w);
        return;
    }
    if (idle && now_ms() - w->started_ms < FAST_DEATH_MS)
        w->fast_deaths++;
    else
        w->fast_deaths = 0;
    if (w->fast_deaths == 0)
        respawn(w);
    else
        schedule_respawn(w);
}

/* parse_str16: u16 length + bytes into a fixed field; -1 when it does not fit. */
static int parse_str16(const unsigned char **pp, const unsigned char *end, char *dst, size_t sz)
{
    size_t len;

    if (end - *pp < 2)
        return -1;
    len = get16(*pp);
    *pp += 2;
    if (len >= sz || (size_t)(end - *pp) < len)
        return -1;
    memcpy(dst, *pp, len);
    dst[len] = '\0';
    *pp += len;
    return 0;
}

static int parse_result(const unsigned char *b, size_t len, struct spf_verdict *v)
{
    const unsigned char *end = b + len;

    memset(v, 0, sizeof(*v));
    if (len < 7 || b[0] > SPF_RES_PERMERROR || b[1] > SPF_RES_PERMERROR || b[6] > 1)
        return -1;
    v->mfrom = (enum spf_res)b[0];
    v->helo = (enum spf_res)b[1];
    v->ttl = get32(b + 2);
    v->uses_local = b[6] & 1;
    b += 7;
    if (parse_str16(&b, end, v->mfrom_domain, sizeof(v->mfrom_domain)) < 0 ||
        parse_str16(&b, end, v->helo_domain, sizeof(v->helo_domain)) < 0 ||
        parse_str16(&b, end, v->explanation, sizeof(v->explanation)) < 0 ||
        parse_str16(&b, end, v->problem, sizeof(v->problem)) < 0 || b != end)
        return -1;
    return 0;
}

/* worker_idle: back from a job; shrink the pool or give it the next job. */
static void worker_idle(struct worker *w)
{
    struct spfw_pool *p = w->p;

    evtimer_del(w->grace);
    w->state = W_IDLE;
    w->fast_deaths = 0; /* it works: a later death is not a start-up failure */
    if (p->nworkers > p->cfg.workers)
        worker_remove(w);
    pool_dispatch(p);
}

/* handle_frame: 0 to go on reading, 1 when w was replaced or removed. */
static int handle_frame(struct worker *w, const unsigned char *b, size_t len)
{
    struct spfw_pool *p = w->p;
    struct eval *e = w->e;
    uint8_t type = b[0];
    uint32_t id = get32(b + 1);

    b += FR_BODY_MIN;
    len -= FR_BODY_MIN;
    if (e == NULL || id != e->id || w->q != NULL)
        goto violation; /* nothing asked, wrong job, or talking while it should wait */
    if (type == FR_QUESTION) {
        uint16_t qtype;
        const char *name;

        if (len < 3 || len - 2 > QNAME_MAX + 1 || b[len - 1] != '\0' ||
            memchr(b + 2, '\0', len - 3) != NULL)
            goto violation;
        qtype = get16(b);
        name = (const char *)b + 2;
        p->st.dns_questions++;
        w->qtype = qtype;
        if (e->orphan) {
            worker_answer_status(w, DNS_TIMEOUT, qtype);
            return 1; /* w may be gone if even that failed */
        }
        w->q = dns_lookup(p->dns, name, qtype, worker_dns_cb, w);
        if (w->q == NULL) { /* invalid name (or no memory) */
            worker_answer_status(w, DNS_SERVFAIL, qtype);
            return 1;
        }
        return 0;
    }
    if (type == FR_RESULT) {
        struct spf_verdict v;

        if (parse_result(b, len, &v) < 0)
            goto violation;
        if (!e->orphan) {
            eval_unindex(e);
            cache_put(p, e, &v);
            eval_complete_waiters(e, &v);
        }
        eval_free(e);
        worker_idle(w);
        return 1; /* w may be gone; the next read callback goes on */
    }
violation:
    worker_died(w, "protocol violation");
    return 1;
}

static void worker_read_cb(struct bufferevent *bev, void *arg)
{
    struct worker *w = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned char body[FR_W2M_MAX];

    for (;;) {
        size_t avail = evbuffer_get_length(in);
        unsigned char hdr[FR_HDR];
        uint32_t len;

        if (avail < FR_HDR)
            return;
        evbuffer_copyout(in, hdr, FR_HDR);
        len = get32(hdr);
        if (len < FR_BODY_MIN || len > FR_W2M_MAX) {
            worker_died(w, "bad frame length");
            return;
        }
        if (avail < FR_HDR + (size_t)len)
            return;
        evbuffer_drain(in, FR_HDR);
        evbuffer_remove(in, body, len);
        if (handle_frame(w, body, len) != 0) {
            /* w (if it still exists) may hold more frames: only a live
             * worker's buffer is looked at again, by the next callback. */
            return;
        }
    }
}

static void worker_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        worker_died(arg, what & BEV_EVENT_EOF ? "exited" : "socket error");
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_died(arg, "overran its deadline"); /* and the grace period: kill it */
}

/* worker_spawn: a socketpair and a child process for slot w. 0 or -1. */
static int worker_spawn(struct worker *w)
{
    struct spfw_pool *p = w->p;
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        int err = errno;

        close(sv[0]);
        close(sv[1]);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        worker_main(sv[1], p->receiver);
    }
    close(sv[1]);
    evutil_make_socket_nonblocking(sv[0]);
    w->bev = bufferevent_socket_new(p->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    if (w->bev == NULL) {
        close(sv[0]);
        kill_and_reap(p, pid);
        return -1;
    }
    bufferevent_setcb(w->bev, worker_read_cb, NULL, worker_event_cb, w);
    bufferevent_enable(w->bev, EV_READ);
    w->pid = pid;
    w->status = -1;
    w->state = W_IDLE;
    w->started_ms = now_ms();
    return 0;
}

static struct worker *worker_new(struct spfw_pool *p)
{
    struct worker *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->p = p;
    w->pid = -1;
    w->state = W_DOWN;
    w->grace = evtimer_new(p->base, grace_cb, w);
    w->respawn = evtimer_new(p->base, respawn_cb, w);
    if (w->grace == NULL || w->respawn == NULL) {
        if (w->grace)
            event_free(w->grace);
        if (w->respawn)
            event_free(w->respawn);
        free(w);
        return NULL;
    }
    TAILQ_INSERT_TAIL(&p->workers, w, link);
    p->nworkers++;
    return w;
}

/* worker_start_job: e leaves the queue, for w or (when it cannot be sent)
 * with temperror. */
static void worker_start_job(struct worker *w, struct eval *e)
{
    struct spfw_pool *p = w->p;
    size_t rlen = strlen(p->receiver) + 1;
    unsigned char *f = NULL;

    if (FR_BODY_MIN + rlen + e->klen > FR_M2W_MAX ||
        (f = frame_new(FR_JOB, e->id, rlen + e->klen)) == NULL) {
        struct spf_verdict v;

        verdict_unknown(&v, e, "spf job too large or out of memory");
        eval_complete_waiters(e, &v);
        eval_free(e);
        return;
    }
    TAILQ_REMOVE(&p->queue, e, qlink);
    p->nqueued--;
    e->state = E_RUNNING;
    e->w = w;
    w->e = e;
    w->state = W_BUSY;
    p->st.evaluations++;
    memcpy(f + FR_HDR + FR_BODY_MIN, p->receiver, rlen);
    memcpy(f + FR_HDR + FR_BODY_MIN + rlen, e->key, e->klen);
    worker_send(w, f);
}

static void pool_dispatch(struct spfw_pool *p)
{
    struct worker *w;

    while (!TAILQ_EMPTY(&p->queue)) {
        TAILQ_FOREACH(w, &p->workers, link)
        if (w->state == W_IDLE)
            break;
        if (w == NULL)
            return;
        worker_start_job(w, TAILQ_FIRST(&p->queue));
    }
}

static void eval_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct eval *e = arg;
    struct spfw_pool *p = e->p;
    struct worker *w = e->w;
    struct spf_verdict v;

    p->st.timeouts++;
    verdict_unknown(&v, e, "evaluation timeout");
    eval_unindex(e); /* later identical jobs start afresh */
    eval_complete_waiters(e, &v);
    if (e->state == E_QUEUED) {
        eval_free(e);
        return;
    }
    e->orphan = 1;
    struct timeval tv = ms_tv(grace_ms(p));
    evtimer_add(w->grace, &tv);
    if (w->q != NULL) {
        dns_cancel(&w->q);
        worker_answer_status(w, DNS_TIMEOUT, w->qtype);
    }
}

/* ---- worker side (child process) ---- */

struct wctx {
    int fd;
    uint32_t job;
    unsigned char *buf;
    size_t cap;
};

static int wr_all(int fd, const unsigned char *b, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, b, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int rd_all(int fd, unsigned char *b, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, b, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* w_recv: the next frame from the main process. The worker exits when the
 * main process is gone or talks nonsense: there is no one to report to. */
static size_t w_recv(struct wctx *c, uint8_t *type, uint32_t *id)
{
    unsigned char hdr[FR_HDR];
    uint32_t len;

    if (rd_all(c->fd, hdr, FR_HDR) < 0)
        _exit(0);
    len = get32(hdr);
    if (len < FR_BODY_MIN || len > FR_M2W_MAX)
        _exit(3);
    if (len > c->cap) {
        unsigned char *nb = realloc(c->buf, len);

        if (nb == NULL)
            _exit(4);
        c->buf = nb;
        c->cap = len;
    }
    if (rd_all(c->fd, c->buf, len) < 0)
        _exit(0);
    *type = c->buf[0];
    *id = get32(c->buf + 1);
    return len - FR_BODY_MIN;
}

static struct dns_result *w_lookup(void *ctx, const char *name, uint16_t type)
{
    struct wctx *c = ctx;
    size_t nlen = strlen(name) + 1, plen;
    struct dns_result *r;
    unsigned char *f;
    uint8_t ftype;
    uint32_t id;
    size_t used;

    if (nlen > QNAME_MAX + 1) {
        if ((r = dnsrr_new(DNS_SERVFAIL, type, 0, 0)) == NULL)
            _exit(4);
        return r;
    }
    if ((f = frame_new(FR_QUESTION, c->job, 2 + nlen)) == NULL)
        _exit(4);
    put16(f + FR_HDR + FR_BODY_MIN, type);
    memcpy(f + FR_HDR + FR_BODY_MIN + 2, name, nlen);
    if (wr_all(c->fd, f, FR_HDR + FR_BODY_MIN + 2 + nlen) < 0)
        _exit(0);
    free(f);
    plen = w_recv(c, &ftype, &id);
    if (ftype != FR_ANSWER || id != c->job)
        _exit(3);
    r = dnsrr_decode(c->buf + FR_BODY_MIN, plen, &used);
    if (r == NULL && (r = dnsrr_new(DNS_SERVFAIL, type, 0, 0)) == NULL)
        _exit(4);
    return r;
}

static unsigned char *put_str16(unsigned char *p, const char *s, size_t max)
{
    size_t n = strnlen(s, max - 1);

    put16(p, (uint16_t)n);
    memcpy(p + 2, s, n);
    return p + 2 + n;
}

static void w_send_result(struct wctx *c, const struct spf_verdict *v)
{
    unsigned char f[FR_HDR + FR_W2M_MAX], *p = f + FR_HDR + FR_BODY_MIN;

    f[FR_HDR] = FR_RESULT;
    put32(f + FR_HDR + 1, c->job);
    p[0] = (unsigned char)v->mfrom;
    p[1] = (unsigned char)v->helo;
    put32(p + 2, v->ttl);
    p[6] = v->uses_local ? 1 : 0;
    p += 7;
    p = put_str16(p, v->mfrom_domain, sizeof(v->mfrom_domain));
    p = put_str16(p, v->helo_domain, sizeof(v->helo_domain));
    p = put_str16(p, v->explanation, sizeof(v->explanation));
    p = put_str16(p, v->problem, sizeof(v->problem));
    put32(f, (uint32_t)(p - f - FR_HDR));
    if (wr_all(c->fd, f, (size_t)(p - f)) < 0)
        _exit(0);
}

/* worker_isolate: leave nothing of the main process but the socket (as fd 3)
 * and stderr; default signal handling (the main process' handlers write to
 * its own pipes); die with the main process. */
static void worker_isolate(int fd)
{
    sigset_t all;
    int s, nul;

    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if ((s = fcntl(fd, F_DUPFD, WORKER_FD)) < 0)
        _exit(5);
    if (s != WORKER_FD && dup2(s, WORKER_FD) < 0)
        _exit(5);
    if ((nul = open("/dev/null", O_RDWR)) >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
    }
    if (close_range(WORKER_FD + 1, ~0U, 0) < 0) /* kernels before 5.9 */
        for (long i = WORKER_FD + 1, max = sysconf(_SC_OPEN_MAX); i < max && i < 65536; i++)
            close((int)i);
}

static void worker_main(int fd, const char *receiver)
{
    pid_t parent = getppid();
    struct wctx c = {.fd = WORKER_FD};
    char *rcv = strdup(receiver);
    struct spfa *a;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* it died before prctl took effect */
        _exit(0);
    prctl(PR_SET_NAME, "spf-worker");
    worker_isolate(fd);
    if (rcv == NULL || (a = spfa_new(rcv, w_lookup, &c)) == NULL)
        _exit(2);
    for (;;) {
        const char *f[4]; /* receiver, ip, helo, sender */
        struct spf_verdict v;
        uint8_t type;
        size_t plen = w_recv(&c, &type, &c.job), off = 0;
        const char *pl = (const char *)c.buf + FR_BODY_MIN;

        if (type != FR_JOB)
            _exit(3);
        for (int i = 0; i < 4; i++) {
            const char *nul = off < plen ? memchr(pl + off, '\0', plen - off) : NULL;

            if (nul == NULL)
                _exit(3);
            f[i] = pl + off;
            off = (size_t)(nul - pl) + 1;
        }
        if (strcmp(f[0], rcv) != 0) { /* spfw_reconfigure changed our name */
            spfa_free(&a);
            free(rcv);
            if ((rcv = strdup(f[0])) == NULL || (a = spfa_new(rcv, w_lookup, &c)) == NULL)
                _exit(2);
        }
        memset(&v, 0, sizeof(v));
        /* copies: a lookup inside spfa_eval reuses c.buf */
        char *ip = strdup(f[1]), *helo = strdup(f[2]), *sender = strdup(f[3]);

        if (ip == NULL || helo == NULL || sender == NULL)
            _exit(4);
        if (spfa_eval(a, ip, helo, sender, &v) < 0) {
            v.mfrom = SPF_RES_TEMPERROR;
            if (v.helo != SPF_RES_NONE)
                v.helo = SPF_RES_TEMPERROR;
        }
        free(ip);
        free(helo);
        free(sender);
        w_send_result(&c, &v);
    }
}

/* ---- public API ---- */

static int pool_set_config(struct spfw_pool *p, const struct spfw_config *cfg)
{
    char *r = strdup(cfg->receiver ? cfg->receiver : "");

    if (r == NULL)
        return -1;
    free(p->receiver);
    p->receiver = r;
    p->cfg = *cfg;
    p->cfg.receiver = p->receiver;
    if (p->cfg.workers == 0)
        p->cfg.workers = 1;
    if (p->cfg.eval_timeout_ms == 0)
        p->cfg.eval_timeout_ms = DEFAULT_TIMEOUT_MS;
    cache_trim(p, p->cfg.verdict_cache_size);
    return 0;
}

/* pool_resize: add slots up to cfg.workers, or remove idle/down ones above it
 * (busy ones go when they come back, see worker_idle). */
static int pool_resize(struct spfw_pool *p)
{
    struct worker *w, *next;

    while (p->nworkers < p->cfg.workers) {
        if ((w = worker_new(p)) == NULL)
            return -1;
        if (worker_spawn(w) < 0) {
            w->fast_deaths++;
            schedule_respawn(w);
            return -1;
        }
    }
    for (w = TAILQ_FIRST(&p->workers); w && p->nworkers > p->cfg.workers; w = next) {
        next = TAILQ_NEXT(w, link);
        if (w->state != W_BUSY)
            worker_remove(w);
    }
    return 0;
}

static void pool_teardown(struct spfw_pool *p)
{
    struct spfw_job *j;
    struct worker *w;
    struct eval *e;
    struct centry *c;

    while ((j = TAILQ_FIRST(&p->done)) != NULL) {
        TAILQ_REMOVE(&p->done, j, link);
        free(j);
    }
    while ((e = TAILQ_FIRST(&p->queue)) != NULL) {
        while ((j = TAILQ_FIRST(&e->waiters)) != NULL) {
            TAILQ_REMOVE(&e->waiters, j, link);
            free(j);
        }
        eval_free(e);
    }
    /* SIGKILL every worker first, then wait for each: no zombies left behind. */
    TAILQ_FOREACH(w, &p->workers, link)
    if (w->pid > 0)
        kill(w->pid, SIGKILL);
    TAILQ_FOREACH(w, &p->workers, link)
    if (w->pid > 0) {
        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        w->pid = -1;
    }
    while ((w = TAILQ_FIRST(&p->workers)) != NULL) {
        worker_down(w, NULL); /* frees the running evaluation and its waiters */
        TAILQ_REMOVE(&p->workers, w, link);
        event_free(w->grace);
        event_free(w->respawn);
        free(w);
    }
    p->nworkers = 0;
    for (size_t i = 0; i < p->nzombies; i++)
        while (waitpid(p->zombies[i], NULL, 0) < 0 && errno == EINTR)
            ;
    free(p->zombies);
    if (p->reap_ev)
        event_free(p->reap_ev);
    while ((c = TAILQ_FIRST(&p->lru)) != NULL)
        cache_drop(p, c);
    free(p->cache.b);
    free(p->inflight.b);
    free(p->receiver);
}

struct spfw_pool *spfw_new(struct event_base *base, struct dns_resolver *dns,
                           const struct spfw_config *cfg)
{
    struct spfw_pool *p = calloc(1, sizeof(*p));
    struct sigaction sa;

    if (p == NULL)
        return NULL;
    p->base = base;
    p->dns = dns;
    TAILQ_INIT(&p->workers);
    TAILQ_INIT(&p->queue);
    TAILQ_INIT(&p->lru);
    TAILQ_INIT(&p->done);
    /* A worker may die while we write to it: that must be an EPIPE for its
     * bufferevent, not a SIGPIPE for the daemon. Only the default disposition
     * is changed; a handler the program installed is left alone. */
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    p->done_ev = event_new(base, -1, 0, done_cb, p);
    p->reap_ev = evtimer_new(base, reap_cb, p);
    if (p->done_ev == NULL || p->reap_ev == NULL || pool_set_config(p, cfg) < 0 ||
        pool_resize(p) < 0) {
        spfw_free(&p);
        return NULL;
    }
    return p;
}

void spfw_reconfigure(struct spfw_pool *p, const struct spfw_config *cfg)
{
    if (pool_set_config(p, cfg) == 0)
        pool_resize(p); /* a failed spawn is retried by its respawn timer */
    pool_dispatch(p);
}

void spfw_free(struct spfw_pool **pp)
{
    struct spfw_pool *p = *pp;

    if (p == NULL)
        return;
    *pp = NULL;
    pool_teardown(p);
    if (p->in_done) {
        p->free_pending = 1; /* done_cb frees p when the callback returns */
        return;
    }
    if (p->done_ev)
        event_free(p->done_ev);
    free(p);
}

struct spfw_job *spfw_eval(struct spfw_pool *p, const char *client_ip, const char *helo,
                           const char *sender, spfw_cb cb, void *arg)
{
    char stack[KEY_STACK], *key;
    struct spfw_job *j;
    struct ht_node *n;
    struct eval *e;
    size_t klen;
    uint32_t h;

    client_ip = client_ip ? client_ip : "";
    helo = helo ? helo : "";
    sender = sender ? sender : "";
    if ((j = calloc(1, sizeof(*j))) == NULL)
        return NULL;
    j->p = p;
    j->cb = cb;
    j->arg = arg;
    if (cache_probe(p, client_ip, helo, sender, &j->v)) {
        struct spf_verdict v = j->v;

        job_done(p, j, &v);
        return j;
    }
    /* single flight stays on the full key */
    if ((klen = key_build(stack, &key, client_ip, helo, sender, 0)) == 0) {
        free(j);
        return NULL;
    }
    h = ht_hash(key, klen);
    if ((n = ht_find(&p->inflight, key, klen, h)) != NULL) {
        e = (struct eval *)((char *)n - offsetof(struct eval, hn));
        p->st.shared++;
    } else if ((e = eval_new(p, key, klen, h)) == NULL) {
        if (key != stack)
            free(key);
        free(j);
        return NULL;
    }
    if (key != stack)
        free(key);
    j->e = e;
    j->state = J_WAITING;
    TAILQ_INSERT_TAIL(&e->waiters, j, link);
    pool_dispatch(p);
    return j;
}

int spfw_cached(struct spfw_pool *p, const char *client_ip, const char *helo, const char *sender,
                struct spf_verdict *out)
{
    return cache_probe(p, client_ip ? client_ip : "", helo ? helo : "", sender ? sender : "", out);
}

void spfw_cancel(struct spfw_job **jp)
{
    struct spfw_job *j = *jp;

    if (j == NULL)
        return;
    *jp = NULL;
    switch (j->state) {
    case J_WAITING: {
        struct eval *e = j->e;

        TAILQ_REMOVE(&e->waiters, j, link);
        /* a queued evaluation nobody waits for is dropped; a running one goes
         * on (its verdict fills the cache) */
        if (TAILQ_EMPTY(&e->waiters) && e->state == E_QUEUED)
            eval_free(e);
        break;
    }
    case J_DONE:
        TAILQ_REMOVE(&j->p->done, j, link);
        break;
    case J_FIRING:
        return; /* its own callback is running; done_cb frees it */
    }
    free(j);
}

void spfw_get_stats(struct spfw_pool *p, struct spfw_stats *out)
{
    struct worker *w;

    *out = p->st;
    out->busy = out->idle = 0;
    TAILQ_FOREACH(w, &p->workers, link)
    {
        if (w->state == W_BUSY)
            out->busy++;
        else if (w->state == W_IDLE)
            out->idle++;
    }
    out->queued = p->nqueued;
}

/* spfw_worker_pids: test hook (declared by the unit test, not in spfw.h):
 * the pids of the live workers, up to max. Returns how many. */
size_t spfw_worker_pids(struct spfw_pool *p, int *out, size_t max);
size_t spfw_worker_pids(struct spfw_pool *p, int *out, size_t max)
{
    struct worker *w;
    size_t n = 0;

    TAILQ_FOREACH(w, &p->workers, link)
    if (w->pid > 0 && n < max)
        out[n++] = (int)w->pid;
    return n;
}
