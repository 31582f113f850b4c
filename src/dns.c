/* dns.c - the one DNS resolver (see dns.h): asynchronous stub resolution on
 * the libevent loop, ldns for building and parsing packets only, a TTL cache.
 *
 * Design notes (why it is built this way):
 * - One "question" per distinct (name, type) in flight; every dns_lookup() is a
 *   "waiter" hanging off a question (single flight), so N concurrent callers
 *   cost one packet. A cancelled waiter just leaves; a question without waiters
 *   still runs to completion and fills the cache (bounded by the timeouts).
 * - Every attempt uses a fresh, connected UDP socket: the kernel picks a random
 *   ephemeral source port and only delivers datagrams from the server's
 *   address/port, and with a random 16-bit ID and a checked question section an
 *   off-path spoofer has to guess ~32 bits per attempt. A shared long-lived
 *   socket would expose one fixed port for the process lifetime. It also makes
 *   a late answer to an abandoned attempt impossible to confuse with the next.
 * - Truncated answers are retried over TCP to the same server (length-prefixed,
 *   nonblocking connect, same per-attempt timeout).
 * - Callbacks never run inside dns_lookup() or inside the packet handlers:
 *   finished waiters go to a "ready" list drained by one event made active with
 *   event_active(). So user code never runs while our own objects are on the
 *   stack, and a callback may call dns_lookup/dns_cancel/dns_free (dns_free from
 *   a callback is deferred until the drain loop unwinds).
 * - The cache is the only state shared across threads: the SPF worker IPC may
 *   peek at it from another thread (dns_cache_peek), so it is guarded by a
 *   pthread mutex; everything else belongs to the loop thread. Entries are
 *   immutable dns_result objects (reference counted), hashed by (lower-case name
 *   without trailing dot, type), evicted LRU when full and dropped when expired.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#define DNS_EDNS_SIZE 1232
#define DNS_MAX_HOPS 8     /* CNAME links followed in total */
#define DNS_NEG_DEFAULT 60 /* negative TTL when no SOA came back */
#define DNS_INFLIGHT_BUCKETS 1024
#define DNS_CACHE_MIN_BUCKETS 256

/* ---------------------------------------------------------------- types */

enum wstate { W_WAITING, W_READY, W_CALLING };

/* A waiter: the handle dns_lookup() returns. */
struct dns_query {
    struct dns_resolver *r;
    struct dns_question *q;      /* while W_WAITING */
    TAILQ_ENTRY(dns_query) link; /* in its question's waiters, or in the ready list */
    enum wstate state;
    struct dns_result *res; /* while W_READY/W_CALLING */
    dns_cb cb;
    void *arg;
};

/* One network question (possibly several CNAME hops) shared by its waiters. */
struct dns_question {
    struct dns_resolver *r;
    struct dns_question *hnext; /* in-flight hash chain */
    TAILQ_HEAD(, dns_query) waiters;
    uint32_t hash;
    uint16_t type;
    char *key; /* asked name, canonical */

    unsigned char qname[256]; /* the name now asked (wire, lower-case) */
    size_t qnamelen;
    unsigned char seen[DNS_MAX_HOPS + 1][256]; /* names visited, for loop detection */
    int nseen;
    uint32_t chain_ttl; /* min TTL of the CNAMEs followed so far */

    unsigned attempt; /* attempts used for the current name */
    int got_error;    /* some server answered with an error */

    /* the current attempt */
    int fd;
    int tcp;
    int connecting;
    uint16_t id;
    struct sockaddr_storage srv;
    socklen_t srvlen;
    struct event *io;
    struct event *timer;
    unsigned char *out; /* query wire (TCP: with 2-byte prefix) */
    size_t outlen, outoff;
    unsigned char *in; /* TCP reply buffer */
    size_t inlen, inwant;
};

struct cache_ent {
    struct cache_ent *hnext;
    TAILQ_ENTRY(cache_ent) lru; /* LRU: the head is the most recently used */
    uint64_t expires_ms;
    uint32_t hash;
    uint16_t type;
    struct dns_result *res;
    char name[];
};

struct dns_resolver {
    struct event_base *base;
    struct dns_config cfg;

    struct dns_question *inflight[DNS_INFLIGHT_BUCKETS];
    uint64_t ninflight;

    TAILQ_HEAD(, dns_query) ready; /* to be called back */
    size_t nready;
    struct event *deliver_ev;
    int in_deliver;
    int dead; /* dns_free() called from a callback: free when the drain unwinds */

    pthread_mutex_t lock; /* guards everything below */
    struct cache_ent **buckets;
    size_t nbuckets;
    size_t nentries;
    TAILQ_HEAD(cache_lru, cache_ent) lru;
    size_t cache_max;

    struct dns_stats st; /* loop thread only, except cache_entries */
    unsigned char rbuf[65536];
};

static void q_send(struct dns_question *q);
static void q_close(struct dns_question *q);

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t hash_key(const char *name, uint16_t type)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    h = (h ^ (type & 0xff)) * 16777619u;
    h = (h ^ (type >> 8)) * 16777619u;
    return h;
}

/* name_parse: validate a text name and produce its canonical key (lower case,
 * no trailing dot) and wire form. Rejects empty labels, labels > 63, names >
 * 253 and control/space/DEL bytes. 0 or -1. */
static int name_parse(const char *name, char key[256], unsigned char wire[256], size_t *wlen)
{
    size_t len = strlen(name), llen = 0, w = 1;
    unsigned char *lab = wire;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c < 0x21 || c == 0x7f)
            return -1;
        c = (unsigned char)tolower(c);
        key[i] = (char)c;
        if (c == '.') {
            if (llen == 0)
                return -1;
            *lab = (unsigned char)llen;
            lab = wire + w++;
            llen = 0;
            continue;
        }
        if (++llen > 63)
            return -1;
        wire[w++] = c;
    }
    if (llen == 0)
        return -1;
    *lab = (unsigned char)llen;
    wire[w++] = 0;
    key[len] = '\0';
    *wlen = w;
    return 0;
}

/* wire names compare case-insensitively (length bytes are < 64, so tolower
 * leaves them alone). */
static int wire_eq(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (tolower(a[i]) != tolower(b[i]))
            return 0;
    return 1;
}

static int rdf_eq(const ldns_rdf *rdf, const unsigned char *w, size_t wlen)
{
    return rdf && ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME &&
           wire_eq(ldns_rdf_data(rdf), ldns_rdf_size(rdf), w, wlen);
}

/* dname_text: wire name -> lower-case text without trailing dot; bytes that
 * would make the text ambiguous ('.', '\\', controls, space) become \DDD.
 * Returns the length or -1. */
static int dname_text(const ldns_rdf *rdf, char *out, size_t outsz)
{
    const unsigned char *p, *end;
    size_t o = 0;

    if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
        return -1;
    p = ldns_rdf_data(rdf);
    end = p + ldns_rdf_size(rdf);
    while (p < end && *p) {
        size_t l = *p++;

        if (l > 63 || (size_t)(end - p) < l)
            return -1;
        if (o && o + 1 < outsz)
            out[o++] = '.';
        for (size_t i = 0; i < l; i++) {
            unsigned char c = (unsigned char)tolower(p[i]);

            if (c == '.' || c == '\\' || c < 0x21 || c == 0x7f) {
                if (o + 4 >= outsz)
                    return -1;
                o += (size_t)snprintf(out + o, outsz - o, "\\%03u", c);
            } else {
                if (o + 1 >= outsz)
                    return -1;
                out[o++] = (char)c;
            }
        }
        p += l;
    }
    out[o] = '\0';
    return (int)o;
}

static int sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

static uint32_t clamp_pos_ttl(const struct dns_resolver *r, uint32_t ttl)
{
    if (ttl < r->cfg.cache_min_ttl)
        ttl = r->cfg.cache_min_ttl;
    if (ttl > r->cfg.cache_max_ttl)
        ttl = r->cfg.cache_max_ttl;
    return ttl;
}

/* result_copy: the same records with another TTL (results are immutable). */
static struct dns_result *result_copy(const struct dns_result *src, uint32_t ttl)
{
    struct dns_result *d = dnsrr_new(src->status, src->type, ttl, src->n);

    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < src->n; i++)
        if (dnsrr_set(d, i, src->rr[i].data, src->rr[i].len, src->rr[i].pref) < 0) {
            dnsrr_unref(&d);
            return NULL;
        }
    return d;
}

/* ---------------------------------------------------------------- config */

void dns_config_defaults(struct dns_config *c)
{
    memset(c, 0, sizeof(*c));
    c->timeout_ms = 2000;
    c->attempts = 3;
    c->cache_max_entries = 100000;
    c->cache_min_ttl = 0;
    c->cache_max_ttl = 86400;
    c->neg_max_ttl = 3600;
    c->servfail_ttl = 0;
}

int dns_parse_server(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL, *colon;
    size_t hlen;
    unsigned long pn = 53;

    if (text == NULL)
        return -1;
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');

        if (rb == NULL)
            return -1;
        hlen = (size_t)(rb - text - 1);
        if (hlen >= sizeof(host))
            return -1;
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        if (strchr(host, ':') == NULL) /* brackets are for IPv6 only */
            return -1;
        if (rb[1] == ':')
            port = rb + 2;
        else if (rb[1] != '\0')
            return -1;
    } else {
        colon = strchr(text, ':');
        if (colon && strchr(colon + 1, ':') == NULL) { /* IPv4:port */
            hlen = (size_t)(colon - text);
            port = colon + 1;
        } else {
            hlen = strlen(text);
        }
        if (hlen >= sizeof(host))
            return -1;
        memcpy(host, text, hlen);
        host[hlen] = '\0';
    }
    if (port) {
        char *end;

        if (*port < '0' || *port > '9')
            return -1;
        errno = 0;
        pn = strtoul(port, &end, 10);
        if (errno || *end != '\0' || pn == 0 || pn > 65535)
            return -1;
    }
    memset(ss, 0, sizeof(*ss));
    if (strchr(host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)pn);
        *len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -1;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)pn);
        *len = sizeof(*s4);
    }
    return 0;
}

int dns_servers_from_resolv_conf(struct dns_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int added = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL, *kw = strtok_r(line, " \t\r\n", &save), *addr;

        if (kw == NULL || strcmp(kw, "nameserver") != 0)
            continue;
        addr = strtok_r(NULL, " \t\r\n", &save);
        if (addr == NULL || c->nservers >= DNS_MAX_SERVERS)
            continue;
        /* resolv.conf has no port syntax: "IP:PORT" would be a misreading */
        if (strchr(addr, '[') || (strchr(addr, ':') && !strchr(strchr(addr, ':') + 1, ':')))
            continue;
        if (dns_parse_server(addr, &c->servers[c->nservers], &c->server_lens[c->nservers]) == 0) {
            c->nservers++;
            added++;
        }
    }
    fclose(f);
    return added;
}

static void cfg_sanitize(struct dns_config *c)
{
    if (c->nservers < 0)
        c->nservers = 0;
    if (c->nservers > DNS_MAX_SERVERS)
        c->nservers = DNS_MAX_SERVERS;
    if (c->timeout_ms == 0)
        c->timeout_ms = 1;
    if (c->attempts == 0)
        c->attempts = 1;
    if (c->cache_max_ttl < c->cache_min_ttl)
        c->cache_max_ttl = c->cache_min_ttl;
}

/* ---------------------------------------------------------------- cache (lock held) */

static void cache_remove(struct dns_resolver *r, struct cache_ent *e)
{
    struct cache_ent **pp = &r->buckets[e->hash & (r->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    TAILQ_REMOVE(&r->lru, e, lru);
    dnsrr_unref(&e->res);
    free(e);
    r->nentries--;
}

static struct cache_ent *cache_find(struct dns_resolver *r, const char *key, uint16_t type,
                                    uint32_t h)
{
    struct cache_ent *e;

    if (r->buckets == NULL)
        return NULL;
    for (e = r->buckets[h & (r->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->type == type && strcmp(e->name, key) == 0)
            return e;
    return NULL;
}

static void cache_flush(struct dns_resolver *r)
{
    while (!TAILQ_EMPTY(&r->lru))
        cache_remove(r, TAILQ_FIRST(&r->lru));
}

static void cache_trim(struct dns_resolver *r, size_t max)
{
    while (r->nentries > max && !TAILQ_EMPTY(&r->lru))
        cache_remove(r, TAILQ_LAST(&r->lru, cache_lru));
}

/* cache_grow: keep the load factor <= 1 (a failed grow just means longer chains). */
static void cache_grow(struct dns_resolver *r)
{
    size_t n = r->nbuckets ? r->nbuckets * 2 : DNS_CACHE_MIN_BUCKETS;
    struct cache_ent **nb = calloc(n, sizeof(*nb));

    if (nb == NULL)
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct cache_ent *e = r->buckets[i], *next;

        for (; e; e = next) {
            next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(r->buckets);
    r->buckets = nb;
    r->nbuckets = n;
}

/* cache_lookup: a copy carrying the remaining TTL, or NULL (lock taken here). */
static struct dns_result *cache_lookup(struct dns_resolver *r, const char *key, uint16_t type)
{
    uint32_t h = hash_key(key, type);
    struct dns_result *out = NULL;
    struct cache_ent *e;
    uint64_t now = now_ms();

    pthread_mutex_lock(&r->lock);
    e = cache_find(r, key, type, h);
    if (e && e->expires_ms <= now) {
        cache_remove(r, e);
        e = NULL;
    }
    if (e) {
        uint32_t left = (uint32_t)((e->expires_ms - now + 999) / 1000);

        TAILQ_REMOVE(&r->lru, e, lru);
        TAILQ_INSERT_HEAD(&r->lru, e, lru);
        out = left == e->res->ttl ? dnsrr_ref(e->res) : result_copy(e->res, left);
    }
    r->st.cache_entries = r->nentries;
    pthread_mutex_unlock(&r->lock);
    return out;
}

static void cache_store(struct dns_resolver *r, const char *key, uint16_t type,
                        struct dns_result *res)
{
    uint32_t h = hash_key(key, type);
    struct cache_ent *e;
    size_t klen = strlen(key);

    if (res->ttl == 0)
        return;
    pthread_mutex_lock(&r->lock);
    if (r->cache_max == 0)
        goto out;
    if ((e = cache_find(r, key, type, h)) != NULL)
        cache_remove(r, e);
    cache_trim(r, r->cache_max - 1);
    if (r->nentries >= r->nbuckets)
        cache_grow(r);
    if (r->buckets == NULL || (e = malloc(sizeof(*e) + klen + 1)) == NULL)
        goto out;
    memcpy(e->name, key, klen + 1);
    e->hash = h;
    e->type = type;
    e->expires_ms = now_ms() + (uint64_t)res->ttl * 1000;
    e->res = dnsrr_ref(res);
    e->hnext = r->buckets[h & (r->nbuckets - 1)];
    r->buckets[h & (r->nbuckets - 1)] = e;
    TAILQ_INSERT_HEAD(&r->lru, e, lru);
    r->nentries++;
out:
    r->st.cache_entries = r->nentries;
    pthread_mutex_unlock(&r->lock);
}

struct dns_result *dns_cache_peek(struct dns_resolver *r, const char *name, uint16_t type)
{
    char key[256];
    unsigned char wire[256];
    size_t wlen;

    if (r == NULL || name == NULL || name_parse(name, key, wire, &wlen) < 0)
        return NULL;
    return cache_lookup(r, key, type);
}

/* ---------------------------------------------------------------- delivery */

static void ready_unlink(struct dns_resolver *r, struct dns_query *w)
{
    TAILQ_REMOVE(&r->ready, w, link);
    r->nready--;
}

static void ready_push(struct dns_resolver *r, struct dns_query *w, struct dns_result *res)
{
    w->state = W_READY;
    w->q = NULL;
    w->res = dnsrr_ref(res);
    TAILQ_INSERT_TAIL(&r->ready, w, link);
    r->nready++;
    event_active(r->deliver_ev, 0, 0);
}

static void resolver_release(struct dns_resolver *r);

/* deliver_cb: call back the waiters that were ready when the drain started;
 * anything queued by those callbacks runs on the next loop iteration, so a
 * callback that keeps hitting the cache cannot starve the loop. */
static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_resolver *r = arg;
    size_t budget = r->nready;

    r->in_deliver = 1;
    while (budget-- > 0 && !TAILQ_EMPTY(&r->ready) && !r->dead) {
        struct dns_query *w = TAILQ_FIRST(&r->ready);

        ready_unlink(r, w);
        w->state = W_CALLING;
        switch (w->res->status) {
        case DNS_TIMEOUT:
            r->st.timeouts++;
            break;
        case DNS_SERVFAIL:
            r->st.errors++;
            break;
        case DNS_NXDOMAIN:
            r->st.nxdomain++;
            break;
        default:
            break;
        }
        w->cb(w->res, w->arg);
        dnsrr_unref(&w->res);
        free(w);
    }
    r->in_deliver = 0;
    if (r->dead)
        resolver_release(r);
    else if (!TAILQ_EMPTY(&r->ready))
        event_active(r->deliver_ev, 0, 0);
}

/* ---------------------------------------------------------------- questions */

static struct dns_question **inflight_slot(struct dns_resolver *r, uint32_t h)
{
    return &r->inflight[h % DNS_INFLIGHT_BUCKETS];
}

static struct dns_question *inflight_find(struct dns_resolver *r, const char *key, uint16_t type,
                                          uint32_t h)
{
    for (struct dns_question *q = *inflight_slot(r, h); q; q = q->hnext)
        if (q->hash == h && q->type == type && strcmp(q->key, key) == 0)
            return q;
    return NULL;
}

static void inflight_remove(struct dns_question *q)
{
    struct dns_question **pp = inflight_slot(q->r, q->hash);

    while (*pp && *pp != q)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = q->hnext;
        q->r->ninflight--;
        q->r->st.inflight = q->r->ninflight;
    }
}

static void q_free(struct dns_question *q)
{
    q_close(q);
    if (q->timer)
        event_free(q->timer);
    free(q->key);
    free(q);
}

/* q_finish: cache the result, hand it to every waiter, free the question. */
static void q_finish(struct dns_question *q, struct dns_result *res)
{
    struct dns_resolver *r = q->r;
    struct dns_query *w, *next;

    if (res == NULL) /* out of memory building it: say SERVFAIL, do not cache */
        res = dnsrr_new(DNS_SERVFAIL, q->type, 0, 0);
    else if (res->status <= DNS_NXDOMAIN || r->cfg.servfail_ttl > 0)
        cache_store(r, q->key, q->type, res);
    inflight_remove(q);
    for (w = TAILQ_FIRST(&q->waiters); w; w = next) {
        next = TAILQ_NEXT(w, link); /* ready_push re-links w */
        if (res) {
            ready_push(r, w, res);
        } else { /* cannot even say SERVFAIL: drop silently rather than crash */
            free(w);
        }
    }
    TAILQ_INIT(&q->waiters);
    dnsrr_unref(&res);
    q_free(q);
}

static void q_fail(struct dns_question *q)
{
    /* silence from every server is a timeout; any error answer, or having no
     * server to ask at all, is a failure */
    enum dns_status st = q->got_error || q->r->cfg.nservers == 0 ? DNS_SERVFAIL : DNS_TIMEOUT;

    q_finish(q, dnsrr_new(st, q->type, q->r->cfg.servfail_ttl, 0));
}

static void q_close(struct dns_question *q)
{
    if (q->io) {
        event_free(q->io);
        q->io = NULL;
    }
    if (q->fd >= 0) {
        close(q->fd);
        q->fd = -1;
    }
    if (q->timer)
        evtimer_del(q->timer);
    free(q->out);
    q->out = NULL;
    free(q->in);
    q->in = NULL;
    q->outlen = q->outoff = q->inlen = q->inwant = 0;
    q->tcp = q->connecting = 0;
}

/* q_next_attempt: this attempt failed (error answer or local error when
 * is_error, silence otherwise); try the next server or give up. */
static void q_next_attempt(struct dns_question *q, int is_error)
{
    if (is_error)
        q->got_error = 1;
    q_close(q);
    q->attempt++;
    q_send(q);
}

/* rr_data: the record's data as dnsrr.h specifies. -1 on malformed rdata. */
static int rr_fill(struct dns_result *res, size_t i, const ldns_rr *rr)
{
    char name[1100];
    unsigned char *buf;
    size_t len = 0, cap = 0;
    int n, rc;

    switch (ldns_rr_get_type(rr)) {
    case LDNS_RR_TYPE_A:
    case LDNS_RR_TYPE_AAAA: {
        ldns_rdf *a = ldns_rr_rdf(rr, 0);
        size_t want = ldns_rr_get_type(rr) == LDNS_RR_TYPE_A ? 4 : 16;

        if (a == NULL || ldns_rdf_size(a) != want)
            return -1;
        return dnsrr_set(res, i, ldns_rdf_data(a), want, 0);
    }
    case LDNS_RR_TYPE_MX: {
        ldns_rdf *p = ldns_rr_rdf(rr, 0);

        if (p == NULL || ldns_rdf_size(p) != 2 ||
            (n = dname_text(ldns_rr_rdf(rr, 1), name, sizeof(name))) < 0)
            return -1;
        return dnsrr_set(res, i, name, (size_t)n, ldns_rdf2native_int16(p));
    }
    case LDNS_RR_TYPE_PTR:
    case LDNS_RR_TYPE_CNAME:
    case LDNS_RR_TYPE_NS:
        if ((n = dname_text(ldns_rr_rdf(rr, 0), name, sizeof(name))) < 0)
            return -1;
        return dnsrr_set(res, i, name, (size_t)n, 0);
    case LDNS_RR_TYPE_TXT:
    case LDNS_RR_TYPE_SPF:
        /* character-strings concatenated, without their length bytes */
        for (size_t k = 0; k < ldns_rr_rd_count(rr); k++)
            cap += ldns_rdf_size(ldns_rr_rdf(rr, k));
        buf = malloc(cap + 1);
        if (buf == NULL)
            return -1;
        for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
            ldns_rdf *s = ldns_rr_rdf(rr, k);
            const unsigned char *d = ldns_rdf_data(s);
            size_t sz = ldns_rdf_size(s);

            if (sz < 1 || (size_t)d[0] + 1 != sz) {
                free(buf);
                return -1;
            }
            memcpy(buf + len, d + 1, sz - 1);
            len += sz - 1;
        }
        rc = dnsrr_set(res, i, buf, len, 0);
        free(buf);
        return rc;
    default:
        /* other types: the raw rdata fields concatenated */
        for (size_t k = 0; k < ldns_rr_rd_count(rr); k++)
            cap += ldns_rdf_size(ldns_rr_rdf(rr, k));
        buf = malloc(cap + 1);
        if (buf == NULL)
            return -1;
        for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
            ldns_rdf *s = ldns_rr_rdf(rr, k);

            memcpy(buf + len, ldns_rdf_data(s), ldns_rdf_size(s));
            len += ldns_rdf_size(s);
        }
        rc = dnsrr_set(res, i, buf, len, 0);
        free(buf);
        return rc;
    }
}

static int q_seen(struct dns_question *q, const unsigned char *w, size_t wlen)
{
    for (int i = 0; i < q->nseen; i++)
        if (wire_eq(q->seen[i], (size_t)q->seen[i][255], w, wlen))
            return 1;
    return 0;
}

/* q_mark_seen: remember a name of the chain; -1 when the chain is too long. */
static int q_mark_seen(struct dns_question *q, const unsigned char *w, size_t wlen)
{
    if (q->nseen > DNS_MAX_HOPS || wlen > 255)
        return -1;
    memcpy(q->seen[q->nseen], w, wlen);
    q->seen[q->nseen][255] = (unsigned char)wlen; /* wire names stop at 255 with room */
    q->nseen++;
    return 0;
}

/* neg_ttl: RFC 2308 negative TTL from the authority section's SOA. */
static uint32_t neg_ttl(const struct dns_resolver *r, const ldns_pkt *pkt)
{
    ldns_rr_list *auth = ldns_pkt_authority(pkt);
    uint32_t ttl = DNS_NEG_DEFAULT;

    for (size_t i = 0; auth && i < ldns_rr_list_rr_count(auth); i++) {
        ldns_rr *rr = ldns_rr_list_rr(auth, i);
        ldns_rdf *min;

        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7)
            continue;
        min = ldns_rr_rdf(rr, 6);
        ttl = ldns_rr_ttl(rr);
        if (min && ldns_rdf_size(min) == 4 && ldns_rdf2native_int32(min) < ttl)
            ttl = ldns_rdf2native_int32(min);
        break;
    }
    return ttl < r->cfg.neg_max_ttl ? ttl : r->cfg.neg_max_ttl;
}

/* q_answer: a reply that matched our question (ID, source, question section). */
static void q_answer(struct dns_question *q, ldns_pkt *pkt)
{
    struct dns_resolver *r = q->r;
    ldns_rr_list *ans = ldns_pkt_answer(pkt);
    size_t nans = ans ? ldns_rr_list_rr_count(ans) : 0;
    ldns_pkt_rcode rc = ldns_pkt_get_rcode(pkt);
    unsigned char cur[256];
    size_t curlen = q->qnamelen, nfound = 0;
    uint32_t ttl = q->chain_ttl;
    int seen0 = q->nseen; /* to undo this answer's chain if we retry */
    uint32_t chain0 = q->chain_ttl;
    struct dns_result *res;

    if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN) {
        q_next_attempt(q, 1);
        return;
    }
    memcpy(cur, q->qname, curlen);
    for (;;) {
        ldns_rr *cname = NULL;

        for (size_t i = 0; i < nans; i++) {
            ldns_rr *rr = ldns_rr_list_rr(ans, i);

            if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
                !rdf_eq(ldns_rr_owner(rr), cur, curlen))
                continue;
            if (ldns_rr_get_type(rr) == q->type)
                nfound++;
            else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && cname == NULL)
                cname = rr;
        }
        if (nfound || cname == NULL)
            break;
        /* follow the CNAME inside this answer */
        {
            ldns_rdf *t = ldns_rr_rdf(cname, 0);

            if (t == NULL || ldns_rdf_get_type(t) != LDNS_RDF_TYPE_DNAME ||
                ldns_rdf_size(t) > 255 || q_seen(q, ldns_rdf_data(t), ldns_rdf_size(t)) ||
                q_mark_seen(q, ldns_rdf_data(t), ldns_rdf_size(t)) < 0) {
                /* loop or chain too long: unusable */
                q_finish(q, dnsrr_new(DNS_SERVFAIL, q->type, r->cfg.servfail_ttl, 0));
                return;
            }
            if (ldns_rr_ttl(cname) < ttl)
                ttl = ldns_rr_ttl(cname);
            curlen = ldns_rdf_size(t);
            memcpy(cur, ldns_rdf_data(t), curlen);
        }
    }
    q->chain_ttl = ttl;

    if (nfound) {
        size_t k = 0;

        res = dnsrr_new(DNS_OK, q->type, 0, nfound);
        for (size_t i = 0; res && i < nans; i++) {
            ldns_rr *rr = ldns_rr_list_rr(ans, i);

            if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN || ldns_rr_get_type(rr) != q->type ||
                !rdf_eq(ldns_rr_owner(rr), cur, curlen))
                continue;
            if (rr_fill(res, k, rr) < 0) {
                dnsrr_unref(&res);
                q->nseen = seen0;
                q->chain_ttl = chain0;
                q_next_attempt(q, 1); /* malformed rdata */
                return;
            }
            if (ldns_rr_ttl(rr) < ttl)
                ttl = ldns_rr_ttl(rr);
            k++;
        }
        if (res)
            res->ttl = clamp_pos_ttl(r, ttl);
        q_finish(q, res);
        return;
    }
    if (rc == LDNS_RCODE_NOERROR && !wire_eq(cur, curlen, q->qname, q->qnamelen)) {
        /* the chain ends at a name this answer says nothing about: ask for it */
        q_close(q);
        memcpy(q->qname, cur, curlen);
        q->qnamelen = curlen;
        q->attempt = 0;
        q->got_error = 0;
        q_send(q);
        return;
    }
    {
        uint32_t nt = neg_ttl(r, pkt);

        if (nt > ttl)
            nt = ttl;
        q_finish(q,
                 dnsrr_new(rc == LDNS_RCODE_NXDOMAIN ? DNS_NXDOMAIN : DNS_NODATA, q->type, nt, 0));
    }
}

/* q_match: does this reply belong to our current attempt? 1 yes, 0 no. */
static int q_match(struct dns_question *q, const ldns_pkt *pkt)
{
    ldns_rr_list *qs = ldns_pkt_question(pkt);
    ldns_rr *qr;

    if (ldns_pkt_id(pkt) != q->id || !ldns_pkt_qr(pkt) || qs == NULL ||
        ldns_rr_list_rr_count(qs) != 1)
        return 0;
    qr = ldns_rr_list_rr(qs, 0);
    return ldns_rr_get_type(qr) == q->type && ldns_rr_get_class(qr) == LDNS_RR_CLASS_IN &&
           rdf_eq(ldns_rr_owner(qr), q->qname, q->qnamelen);
}

static void q_tcp_io(evutil_socket_t fd, short what, void *arg);

/* q_tcp_start: the UDP answer was truncated: same question, same server, TCP. */
static void q_tcp_start(struct dns_question *q)
{
    struct dns_resolver *r = q->r;
    unsigned char *out;
    size_t len = q->outlen;
    struct timeval tv = {q->r->cfg.timeout_ms / 1000, (q->r->cfg.timeout_ms % 1000) * 1000};

    out = malloc(len + 2);
    if (out == NULL) {
        q_next_attempt(q, 1);
        return;
    }
    out[0] = (unsigned char)(len >> 8);
    out[1] = (unsigned char)len;
    memcpy(out + 2, q->out, len);
    if (q->io) {
        event_free(q->io);
        q->io = NULL;
    }
    close(q->fd);
    free(q->out);
    q->out = out;
    q->outlen = len + 2;
    q->outoff = 0;
    q->tcp = 1;
    q->fd = socket(q->srv.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0) {
        q_next_attempt(q, 1);
        return;
    }
    if (connect(q->fd, (struct sockaddr *)&q->srv, q->srvlen) < 0) {
        if (errno != EINPROGRESS) {
            q_next_attempt(q, 1);
            return;
        }
        q->connecting = 1;
    }
    q->io = event_new(r->base, q->fd, EV_WRITE | EV_PERSIST, q_tcp_io, q);
    if (q->io == NULL || event_add(q->io, NULL) < 0) {
        q_next_attempt(q, 1);
        return;
    }
    evtimer_add(q->timer, &tv);
    r->st.queries++;
    r->st.tcp_queries++;
}

static void q_tcp_io(evutil_socket_t fd, short what, void *arg)
{
    struct dns_question *q = arg;
    ssize_t n;

    if (q->out && q->outoff < q->outlen) {
        if (q->connecting) {
            int err = 0;
            socklen_t el = sizeof(err);

            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
                q_next_attempt(q, 1);
                return;
            }
            q->connecting = 0;
        }
        n = send(fd, q->out + q->outoff, q->outlen - q->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            q_next_attempt(q, 1);
            return;
        }
        q->outoff += (size_t)n;
        if (q->outoff < q->outlen)
            return;
        /* all sent: now wait for the reply */
        event_free(q->io);
        q->io = event_new(q->r->base, fd, EV_READ | EV_PERSIST, q_tcp_io, q);
        q->inwant = 2;
        q->in = malloc(65535 + 2);
        if (q->io == NULL || q->in == NULL || event_add(q->io, NULL) < 0)
            q_next_attempt(q, 1);
        return;
    }
    n = recv(fd, q->in + q->inlen, q->inwant - q->inlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        q_next_attempt(q, 1);
        return;
    }
    q->inlen += (size_t)n;
    if (q->inlen < q->inwant)
        return;
    if (q->inwant == 2) {
        size_t mlen = (size_t)q->in[0] << 8 | q->in[1];

        if (mlen < 12) {
            q_next_attempt(q, 1);
            return;
        }
        q->inwant = 2 + mlen;
        return;
    }
    {
        ldns_pkt *pkt = NULL;

        if (ldns_wire2pkt(&pkt, q->in + 2, q->inlen - 2) != LDNS_STATUS_OK || !q_match(q, pkt)) {
            /* over TCP nobody can inject: a mismatch is a broken server */
            ldns_pkt_free(pkt);
            q_next_attempt(q, 1);
            return;
        }
        q_answer(q, pkt);
        ldns_pkt_free(pkt);
    }
}

static void q_udp_read(evutil_socket_t fd, short what, void *arg)
{
    struct dns_question *q = arg;
    struct dns_resolver *r = q->r;

    for (;;) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ldns_pkt *pkt = NULL;
        ssize_t n = recvfrom(fd, r->rbuf, sizeof(r->rbuf), 0, (struct sockaddr *)&from, &flen);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            /* ECONNREFUSED (ICMP port unreachable) and the like: next server */
            q_next_attempt(q, 1);
            return;
        }
        if (!sa_equal(&from, &q->srv) || n < 12 || (r->rbuf[0] << 8 | r->rbuf[1]) != q->id)
            continue; /* not for us: possibly spoofed, keep waiting */
        if (ldns_wire2pkt(&pkt, r->rbuf, (size_t)n) != LDNS_STATUS_OK) {
            q_next_attempt(q, 1); /* our ID from our server, but garbage */
            return;
        }
        if (!q_match(q, pkt)) {
            ldns_pkt_free(pkt);
            continue;
        }
        if (ldns_pkt_tc(pkt))
            q_tcp_start(q);
        else
            q_answer(q, pkt);
        ldns_pkt_free(pkt);
        return;
    }
}

static void q_timeout(evutil_socket_t fd, short what, void *arg)
{
    q_next_attempt(arg, 0);
}

/* q_build: the query packet for the current name with a fresh random ID. */
static int q_build(struct dns_question *q)
{
    ldns_rdf *dn = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, q->qnamelen, q->qname);
    ldns_pkt *pkt;
    uint8_t *wire = NULL;
    size_t wlen = 0;
    ldns_status s;

    if (dn == NULL)
        return -1;
    pkt = ldns_pkt_query_new(dn, (ldns_rr_type)q->type, LDNS_RR_CLASS_IN, LDNS_RD);
    if (pkt == NULL) {
        ldns_rdf_deep_free(dn);
        return -1;
    }
    q->id = (uint16_t)arc4random();
    ldns_pkt_set_id(pkt, q->id);
    ldns_pkt_set_edns_udp_size(pkt, DNS_EDNS_SIZE);
    s = ldns_pkt2wire(&wire, pkt, &wlen);
    ldns_pkt_free(pkt);
    if (s != LDNS_STATUS_OK)
        return -1;
    /* ldns allocates with its own malloc (plain malloc): hand it over */
    q->out = wire;
    q->outlen = wlen;
    return 0;
}

/* q_send: start the next attempt, or finish when none are left. Local
 * failures consume an attempt; the loop keeps this from recursing. */
static void q_send(struct dns_question *q)
{
    struct dns_resolver *r = q->r;

    while (q->attempt < r->cfg.attempts && r->cfg.nservers > 0) {
        int si = (int)(q->attempt % (unsigned)r->cfg.nservers);
        struct timeval tv = {r->cfg.timeout_ms / 1000, (r->cfg.timeout_ms % 1000) * 1000};

        q->srv = r->cfg.servers[si];
        q->srvlen = r->cfg.server_lens[si];
        if (q_build(q) < 0)
            goto fail;
        q->fd = socket(q->srv.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (q->fd < 0)
            goto fail;
        /* connected: the kernel drops datagrams from anyone but the server and
         * reports ICMP unreachable as ECONNREFUSED */
        if (connect(q->fd, (struct sockaddr *)&q->srv, q->srvlen) < 0)
            goto fail;
        if (send(q->fd, q->out, q->outlen, 0) < 0)
            goto fail;
        r->st.queries++;
        q->io = event_new(r->base, q->fd, EV_READ | EV_PERSIST, q_udp_read, q);
        if (q->io == NULL || event_add(q->io, NULL) < 0)
            goto fail;
        evtimer_add(q->timer, &tv);
        return;
    fail:
        q->got_error = 1;
        q_close(q);
        q->attempt++;
    }
    q_fail(q);
}

/* ---------------------------------------------------------------- public API */

struct dns_resolver *dns_new(struct event_base *base, const struct dns_config *cfg)
{
    struct dns_resolver *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->base = base;
    TAILQ_INIT(&r->ready);
    TAILQ_INIT(&r->lru);
    r->cfg = *cfg;
    cfg_sanitize(&r->cfg);
    r->cache_max = r->cfg.cache_max_entries;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        errno = ENOMEM;
        return NULL;
    }
    r->deliver_ev = event_new(base, -1, 0, deliver_cb, r);
    if (r->deliver_ev == NULL) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        errno = ENOMEM;
        return NULL;
    }
    return r;
}

static int servers_differ(const struct dns_config *a, const struct dns_config *b)
{
    if (a->nservers != b->nservers)
        return 1;
    for (int i = 0; i < a->nservers; i++)
        if (a->server_lens[i] != b->server_lens[i] || !sa_equal(&a->servers[i], &b->servers[i]))
            return 1;
    return 0;
}

void dns_reconfigure(struct dns_resolver *r, const struct dns_config *cfg)
{
    struct dns_config c = *cfg;

    cfg_sanitize(&c);
    pthread_mutex_lock(&r->lock);
    if (servers_differ(&r->cfg, &c))
        cache_flush(r);
    r->cache_max = c.cache_max_entries;
    cache_trim(r, r->cache_max);
    r->st.cache_entries = r->nentries;
    pthread_mutex_unlock(&r->lock);
    /* in-flight questions pick the new servers/timeouts at their next attempt */
    r->cfg = c;
}

struct dns_query *dns_lookup(struct dns_resolver *r, const char *name, uint16_t type, dns_cb cb,
                             void *arg)
{
    char key[256];
    unsigned char wire[256];
    size_t wlen;
    uint32_t h;
    struct dns_query *w;
    struct dns_question *q;
    struct dns_result *hit;

    if (r == NULL || r->dead || name == NULL || cb == NULL ||
        name_parse(name, key, wire, &wlen) < 0) {
        errno = EINVAL;
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->r = r;
    w->cb = cb;
    w->arg = arg;
    r->st.lookups++;

    if ((hit = cache_lookup(r, key, type)) != NULL) {
        r->st.cache_hits++;
        ready_push(r, w, hit);
        dnsrr_unref(&hit);
        return w;
    }
    h = hash_key(key, type);
    q = inflight_find(r, key, type, h);
    if (q == NULL) {
        q = calloc(1, sizeof(*q));
        if (q == NULL || (q->key = strdup(key)) == NULL ||
            (q->timer = evtimer_new(r->base, q_timeout, q)) == NULL) {
            if (q)
                free(q->key);
            free(q);
            free(w);
            return NULL;
        }
        q->r = r;
        q->fd = -1;
        q->hash = h;
        q->type = type;
        memcpy(q->qname, wire, wlen);
        q->qnamelen = wlen;
        q->chain_ttl = UINT32_MAX;
        q_mark_seen(q, wire, wlen);
        q->hnext = *inflight_slot(r, h);
        *inflight_slot(r, h) = q;
        r->ninflight++;
        r->st.inflight = r->ninflight;
        /* the waiter goes in first: q_send may finish the question at once */
        w->q = q;
        w->state = W_WAITING;
        TAILQ_INIT(&q->waiters);
        TAILQ_INSERT_TAIL(&q->waiters, w, link);
        q_send(q);
        return w;
    }
    w->q = q;
    w->state = W_WAITING;
    TAILQ_INSERT_TAIL(&q->waiters, w, link);
    return w;
}

void dns_cancel(struct dns_query **qp)
{
    struct dns_query *w = qp ? *qp : NULL;

    if (w == NULL)
        return;
    *qp = NULL;
    switch (w->state) {
    case W_WAITING: {
        struct dns_question *q = w->q;

        /* the question keeps running without waiters: its answer fills the cache */
        TAILQ_REMOVE(&q->waiters, w, link);
        free(w);
        break;
    }
    case W_READY:
        ready_unlink(w->r, w);
        dnsrr_unref(&w->res);
        free(w);
        break;
    case W_CALLING:
        /* inside its own callback: deliver_cb frees it when the callback returns */
        break;
    }
}

/* resolver_teardown: drop every question and waiter without callbacks. */
static void resolver_teardown(struct dns_resolver *r)
{
    for (size_t b = 0; b < DNS_INFLIGHT_BUCKETS; b++) {
        while (r->inflight[b]) {
            struct dns_question *q = r->inflight[b];
            struct dns_query *w, *next;

            r->inflight[b] = q->hnext;
            for (w = TAILQ_FIRST(&q->waiters); w; w = next) {
                next = TAILQ_NEXT(w, link);
                free(w);
            }
            q_free(q);
        }
    }
    r->ninflight = 0;
    while (!TAILQ_EMPTY(&r->ready)) {
        struct dns_query *w = TAILQ_FIRST(&r->ready);

        ready_unlink(r, w);
        dnsrr_unref(&w->res);
        free(w);
    }
    pthread_mutex_lock(&r->lock);
    cache_flush(r);
    free(r->buckets);
    r->buckets = NULL;
    r->nbuckets = 0;
    pthread_mutex_unlock(&r->lock);
}

static void resolver_release(struct dns_resolver *r)
{
    event_free(r->deliver_ev);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void dns_free(struct dns_resolver **rp)
{
    struct dns_resolver *r = rp ? *rp : NULL;

    if (r == NULL)
        return;
    *rp = NULL;
    if (r->dead)
        return;
    resolver_teardown(r);
    if (r->in_deliver) {
        r->dead = 1; /* deliver_cb is on the stack: it frees r when it unwinds */
        return;
    }
    resolver_release(r);
}

void dns_get_stats(struct dns_resolver *r, struct dns_stats *out)
{
    pthread_mutex_lock(&r->lock);
    r->st.cache_entries = r->nentries;
    *out = r->st;
    pthread_mutex_unlock(&r->lock);
    out->inflight = r->ninflight;
}
