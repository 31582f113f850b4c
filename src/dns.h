/* dns.h - the one DNS resolver: asynchronous lookups on the libevent loop
 * (ldns builds and parses packets; UDP with retries over the configured
 * servers, TCP when an answer is truncated), answers cached by TTL.
 *
 * Threading: a resolver belongs to the loop thread that created it; dns_lookup()
 * and dns_cancel() are called on that thread only. The cache inside is guarded
 * by a mutex, so dns_cache_peek() may be called from any thread.
 *
 * Nothing here ever reads /etc/resolv.conf unless dns_servers_from_resolv_conf()
 * is called explicitly (the daemon does so only when `dns_servers` is unset). */
#ifndef PD_DNS_H
#define PD_DNS_H

#include <stdint.h>
#include <sys/socket.h>

#include "dnsrr.h"

struct event_base;
struct dns_resolver;
struct dns_query;

#define DNS_MAX_SERVERS 8

struct dns_config {
    struct sockaddr_storage servers[DNS_MAX_SERVERS];
    socklen_t server_lens[DNS_MAX_SERVERS];
    int nservers;
    unsigned timeout_ms;      /* per attempt; default 2000 */
    unsigned attempts;        /* total tries per query over the servers; default 3 */
    size_t cache_max_entries; /* 0 disables the cache; default 100000 */
    uint32_t cache_min_ttl;   /* answers are kept at least this long; default 0 */
    uint32_t cache_max_ttl;   /* and at most this long; default 86400 */
    uint32_t neg_max_ttl;     /* cap for NXDOMAIN/NODATA (RFC 2308 SOA minimum); default 3600 */
    uint32_t servfail_ttl;    /* SERVFAIL/TIMEOUT are cached this long (0 = never); default 0 */
};

/* dns_config_defaults: fill the defaults above, no servers. */
void dns_config_defaults(struct dns_config *c);
/* dns_parse_server: "IP", "IP:PORT", "[IPv6]:PORT" or bare IPv6 -> sockaddr
 * (port 53 by default). 0 or -1. */
int dns_parse_server(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* dns_servers_from_resolv_conf: append the nameserver lines of path to c.
 * Returns the number added or -1 when the file cannot be read. */
int dns_servers_from_resolv_conf(struct dns_config *c, const char *path);

/* dns_new: a resolver on base. Copies cfg. NULL on failure (errno set). */
struct dns_resolver *dns_new(struct event_base *base, const struct dns_config *cfg);
/* dns_reconfigure: new servers/timeouts for future queries (SIGHUP); the cache
 * is kept unless the server list changed. */
void dns_reconfigure(struct dns_resolver *r, const struct dns_config *cfg);
/* dns_free: cancel every query (their callbacks are NOT called), free, NULL *rp. */
void dns_free(struct dns_resolver **rp);

/* Callback: res is borrowed for the duration of the call; dnsrr_ref() it to keep it.
 * It is never NULL: every failure is a status. */
typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/* dns_lookup: resolve (name, type). name may end with a dot; matching is
 * case-insensitive. The callback is always called later from the loop (never
 * from inside dns_lookup, even on a cache hit) exactly once unless cancelled.
 * CNAMEs are followed (bounded chain); the result is for the final target but
 * carries the name asked. Identical concurrent lookups share one query.
 * Returns a handle valid until the callback runs or dns_cancel(); NULL only on
 * allocation failure or an invalid name (then cb is not called). */
struct dns_query *dns_lookup(struct dns_resolver *r, const char *name, uint16_t type, dns_cb cb,
                             void *arg);
/* dns_cancel: the callback of *qp will not run; NULLs *qp. */
void dns_cancel(struct dns_query **qp);

/* dns_cache_peek: a cached, unexpired answer (new reference) or NULL. Any thread. */
struct dns_result *dns_cache_peek(struct dns_resolver *r, const char *name, uint16_t type);

struct dns_stats {
    uint64_t lookups;     /* dns_lookup calls */
    uint64_t cache_hits;  /* answered from the cache */
    uint64_t queries;     /* packets sent (UDP + TCP) */
    uint64_t tcp_queries; /* of which TCP after truncation */
    uint64_t timeouts;    /* lookups ended by DNS_TIMEOUT */
    uint64_t errors;      /* lookups ended by DNS_SERVFAIL (incl. malformed answers) */
    uint64_t nxdomain;
    uint64_t inflight; /* distinct questions now waiting for the network */
    uint64_t cache_entries;
};
void dns_get_stats(struct dns_resolver *r, struct dns_stats *out);

#endif
