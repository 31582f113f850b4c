/* dns_responder.c - the test DNS responder (see dns_responder.h). Test code:
 * failures print to stderr and drop the query; it never exits the process. */
#include "dns_responder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct rsp_delayed {
    struct rsp *s;
    struct event *ev;
    struct sockaddr_storage to;
    socklen_t tolen;
    uint8_t *wire;
    size_t len;
};

struct rsp_tcp {
    struct rsp *s;
    int fd;
    struct event *ev;
    uint8_t buf[4096];
    size_t len;
};

struct rsp_entry *rsp_find(struct rsp *s, const char *name, uint16_t type)
{
    size_t nl = strlen(name);

    for (struct rsp_entry *e = s->table; e && e->name; e++) {
        size_t el = strlen(e->name);

        if (e->type != type)
            continue;
        /* compare ignoring one trailing dot on either side */
        if (el && e->name[el - 1] == '.')
            el--;
        if (nl && name[nl - 1] == '.')
            nl--;
        if (el == nl && strncasecmp(e->name, name, el) == 0)
            return e;
        nl = strlen(name);
    }
    return NULL;
}

static void push_rrs(ldns_pkt *p, ldns_pkt_section sec, const char *const *rrs, size_t n)
{
    for (size_t i = 0; i < n && rrs[i]; i++) {
        ldns_rr *rr = NULL;

        if (ldns_rr_new_frm_str(&rr, rrs[i], 3600, NULL, NULL) != LDNS_STATUS_OK) {
            fprintf(stderr, "responder: bad rr '%s'\n", rrs[i]);
            continue;
        }
        ldns_pkt_push_rr(p, sec, rr);
    }
}

/* build_reply: the reply wire for query q (NULL: no reply). tcp says which
 * transport asks (for RSP_TC). */
static uint8_t *build_reply(struct rsp *s, ldns_pkt *q, int tcp, size_t *len, unsigned *delay)
{
    ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    char *qname;
    struct rsp_entry *e;
    ldns_pkt *p;
    uint8_t *wire = NULL;
    enum rsp_mode mode;

    *delay = 0;
    if (qrr == NULL)
        return NULL;
    qname = ldns_rdf2str(ldns_rr_owner(qrr));
    e = rsp_find(s, qname, ldns_rr_get_type(qrr));
    free(qname);
    if (e) {
        e->count++;
        *delay = e->delay_ms;
    }
    mode = e ? e->mode : RSP_REFUSED;
    if (s->silent_all || mode == RSP_SILENT)
        return NULL;
    if (mode == RSP_GARBAGE) {
        wire = calloc(1, 12);
        wire[0] = (uint8_t)(ldns_pkt_id(q) >> 8);
        wire[1] = (uint8_t)ldns_pkt_id(q);
        wire[2] = 0x81;
        wire[3] = 0x80;
        wire[5] = 3; /* three questions announced, none present */
        *len = 12;
        return wire;
    }
    p = ldns_pkt_new();
    ldns_pkt_set_id(p, mode == RSP_WRONGID ? (uint16_t)(ldns_pkt_id(q) ^ 0x5a5a) : ldns_pkt_id(q));
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_aa(p, true);
    ldns_pkt_set_rd(p, ldns_pkt_rd(q));
    if (mode == RSP_WRONGQ) {
        ldns_rr *w = ldns_rr_clone(qrr);

        ldns_rdf_deep_free(ldns_rr_owner(w));
        ldns_rr_set_owner(w, ldns_dname_new_frm_str("zzz-other.test."));
        ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, w);
    } else {
        ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, ldns_rr_clone(qrr));
    }
    switch (mode) {
    case RSP_NXDOMAIN:
        ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
        break;
    case RSP_SERVFAIL:
        ldns_pkt_set_rcode(p, LDNS_RCODE_SERVFAIL);
        break;
    case RSP_REFUSED:
        ldns_pkt_set_rcode(p, LDNS_RCODE_REFUSED);
        break;
    case RSP_TC:
        if (!tcp) {
            ldns_pkt_set_tc(p, true);
            break;
        }
        /* fall through */
    default:
        push_rrs(p, LDNS_SECTION_ANSWER, e->rrs, sizeof(e->rrs) / sizeof(e->rrs[0]));
        break;
    }
    if (e && e->soa && mode != RSP_SERVFAIL && mode != RSP_REFUSED)
        push_rrs(p, LDNS_SECTION_AUTHORITY, &e->soa, 1);
    if (ldns_pkt2wire(&wire, p, len) != LDNS_STATUS_OK)
        wire = NULL;
    ldns_pkt_free(p);
    return wire;
}

static void delayed_send(evutil_socket_t fd, short what, void *arg)
{
    struct rsp_delayed *d = arg;

    sendto(d->s->ufd, d->wire, d->len, 0, (struct sockaddr *)&d->to, d->tolen);
    event_free(d->ev);
    free(d->wire);
    free(d);
}

static void udp_read(evutil_socket_t fd, short what, void *arg)
{
    struct rsp *s = arg;
    uint8_t buf[4096];
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
    ldns_pkt *q = NULL;
    uint8_t *wire;
    size_t len = 0;
    unsigned delay;

    if (n <= 0 || ldns_wire2pkt(&q, buf, (size_t)n) != LDNS_STATUS_OK)
        return;
    s->udp++;
    s->last_edns = ldns_pkt_edns(q) ? ldns_pkt_edns_udp_size(q) : 0;
    wire = build_reply(s, q, 0, &len, &delay);
    ldns_pkt_free(q);
    if (wire == NULL)
        return;
    if (delay == 0) {
        sendto(fd, wire, len, 0, (struct sockaddr *)&from, flen);
        free(wire);
    } else {
        struct rsp_delayed *d = calloc(1, sizeof(*d));
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};

        d->s = s;
        d->to = from;
        d->tolen = flen;
        d->wire = wire;
        d->len = len;
        d->ev = evtimer_new(s->base, delayed_send, d);
        evtimer_add(d->ev, &tv);
    }
}

static void tcp_read(evutil_socket_t fd, short what, void *arg)
{
    struct rsp_tcp *c = arg;
    ssize_t n = recv(fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    ldns_pkt *q = NULL;
    size_t want, len = 0;
    uint8_t *wire;
    unsigned delay;

    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0)
        goto done;
    c->len += (size_t)n;
    if (c->len < 2)
        return;
    want = (size_t)c->buf[0] << 8 | c->buf[1];
    if (c->len < 2 + want)
        return;
    if (ldns_wire2pkt(&q, c->buf + 2, want) != LDNS_STATUS_OK)
        goto done;
    c->s->tcp++;
    wire = build_reply(c->s, q, 1, &len, &delay);
    ldns_pkt_free(q);
    if (wire) {
        uint8_t pfx[2] = {(uint8_t)(len >> 8), (uint8_t)len};

        /* small replies on loopback: the socket buffer takes them whole */
        (void)!send(fd, pfx, 2, MSG_NOSIGNAL | MSG_MORE);
        (void)!send(fd, wire, len, MSG_NOSIGNAL);
        free(wire);
    }
done:
    event_free(c->ev);
    close(c->fd);
    free(c);
}

static void tcp_accept(evutil_socket_t fd, short what, void *arg)
{
    struct rsp *s = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct rsp_tcp *c;

    if (cfd < 0)
        return;
    c = calloc(1, sizeof(*c));
    c->s = s;
    c->fd = cfd;
    c->ev = event_new(s->base, cfd, EV_READ | EV_PERSIST, tcp_read, c);
    event_add(c->ev, NULL);
}

int rsp_start(struct rsp *s, struct event_base *base, int family, struct rsp_entry *table)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    memset(s, 0, sizeof(*s));
    s->base = base;
    s->table = table;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    /* UDP takes an ephemeral port and TCP must get the same number; with
     * tests running in parallel another socket may hold it for TCP, so try
     * a few ports before giving up. */
    for (int attempt = 0; attempt < 50; attempt++) {
        socklen_t l = len;

        if (family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
        else
            ((struct sockaddr_in *)&ss)->sin_port = 0;
        s->ufd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->ufd < 0 || bind(s->ufd, (struct sockaddr *)&ss, len) < 0 ||
            getsockname(s->ufd, (struct sockaddr *)&ss, &l) < 0)
            return -1;
        s->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
        s->tfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->tfd < 0)
            return -1;
        setsockopt(s->tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s->tfd, (struct sockaddr *)&ss, len) == 0 && listen(s->tfd, 16) == 0)
            break;
        close(s->tfd);
        close(s->ufd);
        s->tfd = s->ufd = -1;
    }
    if (s->tfd < 0)
        return -1;
    s->uev = event_new(base, s->ufd, EV_READ | EV_PERSIST, udp_read, s);
    s->tev = event_new(base, s->tfd, EV_READ | EV_PERSIST, tcp_accept, s);
    event_add(s->uev, NULL);
    event_add(s->tev, NULL);
    return 0;
}

void rsp_stop(struct rsp *s)
{
    if (s->uev)
        event_free(s->uev);
    if (s->tev)
        event_free(s->tev);
    s->uev = s->tev = NULL;
    if (s->ufd >= 0)
        close(s->ufd);
    if (s->tfd >= 0)
        close(s->tfd);
    s->ufd = s->tfd = -1;
}
