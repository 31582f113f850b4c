/* fake_dns.c - test double for src/dns.h, used by test_spfw (the real
 * resolver, src/dns.c, is written in parallel by someone else).
 *
 * Answers come from an in-memory table filled with fake_dns_set(): one TXT
 * text (or a status) per name, a TTL and a per-name delay. Like the real
 * resolver, every callback runs later from the loop (a timer, even for a
 * delay of 0), exactly once unless dns_cancel()ed. Names not in the table
 * are NXDOMAIN. Nothing here touches the network. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "dns.h"

struct fake_rec {
    struct fake_rec *next;
    char *name;
    enum dns_status status;
    char *txt;
    uint32_t ttl;
    unsigned delay_ms;
};

struct dns_query {
    struct dns_resolver *r;
    struct dns_query *next, *prev;
    struct event *ev;
    struct dns_result *res;
    dns_cb cb;
    void *arg;
};

struct dns_resolver {
    struct event_base *base;
    struct fake_rec *recs;
    struct dns_query *queries; /* outstanding */
    struct dns_stats st;
};

/* fake_dns_set: (re)define name: status, TXT text (for DNS_OK), TTL, delay. */
void fake_dns_set(struct dns_resolver *r, const char *name, enum dns_status status, const char *txt,
                  uint32_t ttl, unsigned delay_ms);
void fake_dns_set(struct dns_resolver *r, const char *name, enum dns_status status, const char *txt,
                  uint32_t ttl, unsigned delay_ms)
{
    struct fake_rec *f;

    for (f = r->recs; f; f = f->next)
        if (strcasecmp(f->name, name) == 0)
            break;
    if (f == NULL) {
        f = calloc(1, sizeof(*f));
        f->name = strdup(name);
        f->next = r->recs;
        r->recs = f;
    }
    free(f->txt);
    f->txt = strdup(txt ? txt : "");
    f->status = status;
    f->ttl = ttl;
    f->delay_ms = delay_ms;
}

void dns_config_defaults(struct dns_config *c)
{
    memset(c, 0, sizeof(*c));
    c->timeout_ms = 2000;
    c->attempts = 3;
    c->cache_max_entries = 100000;
    c->cache_max_ttl = 86400;
    c->neg_max_ttl = 3600;
}

int dns_parse_server(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
        return -1;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(53);
    *len = sizeof(*sin);
    return 0;
}

int dns_servers_from_resolv_conf(struct dns_config *c, const char *path)
{
    return -1; /* the fake never reads the system configuration */
}

struct dns_resolver *dns_new(struct event_base *base, const struct dns_config *cfg)
{
    struct dns_resolver *r = calloc(1, sizeof(*r));

    if (r != NULL)
        r->base = base;
    return r;
}

void dns_reconfigure(struct dns_resolver *r, const struct dns_config *cfg)
{
}

static void query_free(struct dns_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        q->r->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    event_free(q->ev);
    dnsrr_unref(&q->res);
    free(q);
}

void dns_free(struct dns_resolver **rp)
{
    struct dns_resolver *r = *rp;

    if (r == NULL)
        return;
    *rp = NULL;
    while (r->queries)
        query_free(r->queries);
    while (r->recs) {
        struct fake_rec *f = r->recs;

        r->recs = f->next;
        free(f->name);
        free(f->txt);
        free(f);
    }
    free(r);
}

static void query_fire(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;

    q->cb(q->res, q->arg);
    query_free(q);
}

struct dns_query *dns_lookup(struct dns_resolver *r, const char *name, uint16_t type, dns_cb cb,
                             void *arg)
{
    size_t len = strlen(name);
    struct fake_rec *f;
    struct dns_query *q;
    struct timeval tv = {0, 0};

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return NULL;
    r->st.lookups++;
    for (f = r->recs; f; f = f->next)
        if (strlen(f->name) == len && strncasecmp(f->name, name, len) == 0)
            break;
    q = calloc(1, sizeof(*q));
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    if (f == NULL) {
        q->res = dnsrr_new(DNS_NXDOMAIN, type, 300, 0);
        r->st.nxdomain++;
    } else if (f->status != DNS_OK) {
        q->res = dnsrr_new(f->status, type, f->ttl, 0);
    } else if (type != DNS_T_TXT) {
        q->res = dnsrr_new(DNS_NODATA, type, f->ttl, 0);
    } else {
        q->res = dnsrr_new(DNS_OK, type, f->ttl, 1);
        dnsrr_set(q->res, 0, f->txt, strlen(f->txt), 0);
    }
    if (f != NULL) {
        tv.tv_sec = f->delay_ms / 1000;
        tv.tv_usec = (f->delay_ms % 1000) * 1000;
    }
    q->ev = evtimer_new(r->base, query_fire, q);
    q->next = r->queries;
    if (q->next)
        q->next->prev = q;
    r->queries = q;
    evtimer_add(q->ev, &tv);
    return q;
}

void dns_cancel(struct dns_query **qp)
{
    if (*qp == NULL)
        return;
    query_free(*qp);
    *qp = NULL;
}

struct dns_result *dns_cache_peek(struct dns_resolver *r, const char *name, uint16_t type)
{
    return NULL;
}

void dns_get_stats(struct dns_resolver *r, struct dns_stats *out)
{
    struct dns_query *q;

    *out = r->st;
    out->inflight = 0;
    for (q = r->queries; q; q = q->next)
        out->inflight++;
}
