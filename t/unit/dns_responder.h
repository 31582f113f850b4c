/* dns_responder.h - a tiny authoritative DNS responder for the resolver's unit
 * tests, built on ldns and running on the test's own libevent loop (UDP and
 * TCP on one loopback port). It answers from a static table and can misbehave
 * on purpose: stay silent, SERVFAIL, truncate over UDP, reply with a wrong ID,
 * a wrong question or garbage, and delay per name. It counts what it receives.
 * Listens on 127.0.0.1 or ::1 only. */
#ifndef PD_DNS_RESPONDER_H
#define PD_DNS_RESPONDER_H

#include <stdint.h>

struct event_base;

enum rsp_mode {
    RSP_ANSWER = 0, /* NOERROR with the rrs (empty rrs = NODATA) */
    RSP_NXDOMAIN,
    RSP_SERVFAIL,
    RSP_REFUSED,
    RSP_SILENT,  /* never answer */
    RSP_TC,      /* UDP: empty answer with TC set; TCP: the full answer */
    RSP_WRONGID, /* the right answer with another ID */
    RSP_WRONGQ,  /* the right ID, another question name */
    RSP_GARBAGE, /* the right ID, an unparsable message */
};

struct rsp_entry {
    const char *name; /* with trailing dot; matched case-insensitively */
    uint16_t type;
    enum rsp_mode mode;
    unsigned delay_ms;
    const char *rrs[12]; /* answer section, zone-file syntax, NULL-terminated */
    const char *soa;     /* authority section (NULL: none) */
    int count;           /* queries received for this entry (UDP + TCP) */
};

struct rsp {
    struct event_base *base;
    int ufd, tfd, port;
    struct event *uev, *tev;
    struct rsp_entry *table; /* terminated by name == NULL */
    int silent_all;          /* answer nothing at all */
    int udp, tcp;            /* queries received */
    int last_edns;           /* EDNS UDP size of the last query (0: no EDNS) */
};

/* rsp_start: listen on family (AF_INET/AF_INET6) loopback, ephemeral port. 0 or -1. */
int rsp_start(struct rsp *s, struct event_base *base, int family, struct rsp_entry *table);
void rsp_stop(struct rsp *s);
/* rsp_find: the table entry for name/type (for its counter), or NULL. */
struct rsp_entry *rsp_find(struct rsp *s, const char *name, uint16_t type);

#endif
