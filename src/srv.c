/* srv.c - listeners and policy client connections on the libevent loop.
 *
 * Each connection is a small state machine (READING, EVALUATING, WRITING,
 * CLOSING) driven by raw read/write/timer events; conn_set_state() is the one
 * place that changes state, logs the transition and arranges the events that
 * belong to the new state. Input is read into a fixed per-connection buffer
 * and parsed by pp; while a request is being evaluated the buffer is not
 * parsed further (one outstanding request per connection, as smtpd expects),
 * but it is still read into while it has room so that a peer that goes away
 * is noticed before the handler answers.
 *
 * Memory: a connection is never freed on the call stack that closed it. A
 * closed connection that the handler no longer holds is put on a reap list
 * freed from a zero-timeout event, so a handler may release a connection from
 * inside its own callback.
 *
 * Limits of 0 take defaults: idle 300 s, request 10 s, 1000 connections,
 * socket mode 0666. */
#include "srv.h"

#include "fl.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SRV_INBUF 4096     /* per connection; a Postfix request is ~700 bytes */
#define SRV_SPARE_INBUF 64 /* spare input buffers kept (256 KB at most) */
#define SRV_SPARE_PP 32    /* idle parsers kept (~5 KB each at most) */
#define SRV_OUTBUF (PP_MAX_ACTION + 16)
#define SRV_DEF_IDLE_MS 300000u
#define SRV_DEF_REQUEST_MS 10000u
#define SRV_DEF_MAXCONN 1000u
#define SRV_DEF_MODE 0666u
#define SRV_BACKLOG 1024
#define SRV_ACCEPT_RETRY_MS 100 /* pause after EMFILE & co. before accepting again */

enum conn_state { CS_READING, CS_EVALUATING, CS_WRITING, CS_CLOSING };
static const char *const conn_state_names[] = {"reading", "evaluating", "writing", "closing"};

struct srv_listener {
    struct srv *s;
    struct evconnlistener *lev;
    struct event *retry; /* re-enables accepting after a resource error */
    char *spec;          /* for logs */
    char *unix_path;     /* unix listeners: unlinked on close if still ours */
    dev_t dev;
    ino_t ino;
    struct srv_listener *next;
};

struct srv_conn {
    struct srv *s;
    struct srv_conn *prev, *next; /* all connections of s */
    struct srv_conn *reap_next;
    int on_reap;
    uint64_t id;
    int fd;
    enum conn_state state;
    int held;       /* the handler owns a reference (srv_reply/srv_conn_release) */
    int in_process; /* conn_process() is on the stack */
    int req_timer;  /* the request timer runs for the request in progress */
    int rd_eof;     /* the peer half-closed while we evaluated: reply, then close */
    struct event *rev, *wev, *tmr;
    /* Buffers exist only while they hold something: an idle connection (the
     * usual state of a Postfix policy connection) costs no buffer at all, so
     * ten thousand of them fit in a few MB. */
    struct pp_parser *pp; /* while a request is partly read */
    char *inbuf;          /* SRV_INBUF bytes while unparsed input is held */
    size_t inoff, inlen;  /* unparsed input is inbuf[inoff..inlen) */
    char *outbuf;         /* the reply being sent (heap only when send() was short) */
    int out_heap;         /* outbuf is ours to free */
    size_t outoff, outlen;
    char idstr[24];
    char peer[64];
};

struct srv {
    struct event_base *base;
    struct srv_limits lim; /* defaults applied; socket_owner points to owner */
    char *owner;
    srv_request_fn fn;
    void *arg;
    struct srv_listener *listeners;
    struct srv_conn *conns;
    unsigned nconns;
    struct srv_conn *reap;
    struct event *reap_ev;
    struct srv_stats st;
    int shutting;
    void (*done)(void *);
    void *done_arg;
    time_t refused_logged; /* rate limit for the max_connections warning */
    uint64_t refused_unlogged;
    /* Spare input buffers and idle parsers: a busy connection takes and
     * returns one of each per request (fl.h says why not malloc). */
    struct fl inbuf_fl;
    struct pp_parser *spare_pp[SRV_SPARE_PP];
    unsigned nspare_pp;
};

/* Process-wide so that ids stay unique across srv objects, as srv.h promises;
 * touched only on the loop thread. */
static uint64_t srv_conn_seq;

static void conn_process(struct srv_conn *c);
static void conn_flush(struct srv_conn *c);

/* ---------------------------------------------------------------- limits */

static void srv_apply_limits(struct srv *s, const struct srv_limits *lim)
{
    struct srv_limits l = lim ? *lim : (struct srv_limits){0};
    char *owner = (l.socket_owner && *l.socket_owner) ? strdup(l.socket_owner) : NULL;

    if (l.max_connections == 0)
        l.max_connections = SRV_DEF_MAXCONN;
    if (l.idle_timeout_ms == 0)
        l.idle_timeout_ms = SRV_DEF_IDLE_MS;
    if (l.request_timeout_ms == 0)
        l.request_timeout_ms = SRV_DEF_REQUEST_MS;
    if (l.socket_mode == 0)
        l.socket_mode = SRV_DEF_MODE;
    free(s->owner);
    s->owner = owner;
    l.socket_owner = owner;
    s->lim = l;
}

static void arm_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---------------------------------------------------------------- conns */

/* conn_parser: a parser for a request that starts (a spare one if any). */
static struct pp_parser *conn_parser(struct srv *s)
{
    return s->nspare_pp > 0 ? s->spare_pp[--s->nspare_pp] : pp_parser_new();
}

/* conn_parser_idle: the connection has no request in progress: its parser
 * (reset by the parser itself after each request) becomes a spare one. */
static void conn_parser_idle(struct srv *s, struct pp_parser **pp)
{
    if (*pp != NULL && s->nspare_pp < SRV_SPARE_PP) {
        s->spare_pp[s->nspare_pp++] = *pp;
        *pp = NULL;
    }
    pp_parser_free(pp);
}

static void conn_free(struct srv_conn *c)
{
    struct srv *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->tmr);
    if (c->fd >= 0)
        close(c->fd);
    pp_parser_free(&c->pp); /* maybe mid-request: never kept */
    fl_put(&s->inbuf_fl, c->inbuf);
    if (c->out_heap)
        free(c->outbuf);
    free(c);
}

/* conn_maybe_reap: a closed connection nobody holds is freed from the loop. */
static void conn_maybe_reap(struct srv_conn *c)
{
    if (c->state != CS_CLOSING || c->held || c->on_reap)
        return;
    c->on_reap = 1;
    c->reap_next = c->s->reap;
    c->s->reap = c;
    event_active(c->s->reap_ev, EV_TIMEOUT, 0);
}

/* conn_set_state: the one transition function. Entering a state sets up the
 * events that state needs; READING's are set by conn_process() because they
 * depend on what is buffered. */
static void conn_set_state(struct srv_conn *c, enum conn_state ns)
{
    enum conn_state os = c->state;
    if (os == ns)
        return;
    if (log_enabled(LOG_L_DEBUG)) {
        char tr[32];
        snprintf(tr, sizeof(tr), "%s->%s", conn_state_names[os], conn_state_names[ns]);
        log_kv(LOG_L_DEBUG, "conn", "id", c->idstr, "state", tr, NULL);
    }
    c->state = ns;
    switch (ns) {
    case CS_READING:
        break;
    case CS_EVALUATING:
        /* the handler has its own deadline; keep reading only to see EOF */
        evtimer_del(c->tmr);
        c->req_timer = 0;
        break;
    case CS_WRITING:
        /* a client that does not read its replies must not pin us forever */
        arm_ms(c->tmr, c->s->lim.request_timeout_ms);
        break;
    case CS_CLOSING:
        event_del(c->rev);
        event_del(c->wev);
        evtimer_del(c->tmr);
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
        conn_maybe_reap(c);
        break;
    }
}

static void conn_close(struct srv_conn *c)
{
    conn_set_state(c, CS_CLOSING);
}

/* conn_gone: the peer closed or the socket failed. */
static void conn_gone(struct srv_conn *c, const char *why)
{
    if (log_enabled(LOG_L_DEBUG))
        log_kv(LOG_L_DEBUG, "conn_closed", "id", c->idstr, "client", c->peer, "reason", why,
               "partial", (c->state == CS_READING && !pp_parser_idle(c->pp)) ? "yes" : "no", NULL);
    conn_close(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    struct srv *s = c->s;

    if (c->state == CS_READING && pp_parser_idle(c->pp)) {
        s->st.closed_idle++;
        log_kv(LOG_L_DEBUG, "idle_timeout", "conn", c->idstr, "client", c->peer, NULL);
    } else if (c->state == CS_READING || c->state == CS_WRITING) {
        s->st.closed_timeout++;
        log_kv(LOG_L_INFO, c->state == CS_READING ? "request_timeout" : "write_timeout", "conn",
               c->idstr, "client", c->peer, NULL);
    } else {
        return;
    }
    conn_close(c);
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    ssize_t n;

    if (c->state == CS_CLOSING)
        return;
    if (c->inbuf == NULL && (c->inbuf = fl_get(&c->s->inbuf_fl)) == NULL) {
        conn_gone(c, "out of memory");
        return;
    }
    if (c->inoff > 0) {
        memmove(c->inbuf, c->inbuf + c->inoff, c->inlen - c->inoff);
        c->inlen -= c->inoff;
        c->inoff = 0;
    }
    if (c->inlen == SRV_INBUF) {
        /* evaluating with a full buffer: wait for the reply (backpressure) */
        event_del(c->rev);
        return;
    }
    n = recv(fd, c->inbuf + c->inlen, SRV_INBUF - c->inlen, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_gone(c, strerror(errno));
        return;
    }
    if (n == 0) {
        /* A FIN is not a reset: a client may send its request and shut down
         * its side (nc does). Answer what it asked, then close. */
        if (c->state == CS_EVALUATING || c->state == CS_WRITING) {
            c->rd_eof = 1;
            event_del(c->rev);
            return;
        }
        conn_gone(c, "eof");
        return;
    }
    c->inlen += (size_t)n;
    if (c->state == CS_READING)
        conn_process(c);
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    if (c->state == CS_WRITING)
        conn_flush(c);
}

/* conn_process: parse buffered input while READING; hand out a complete
 * request; arm the timer and the read event for what is left. A handler that
 * replies at once re-enters here through conn_flush(); the in_process flag
 * turns that into a plain return, and this loop goes on with the next
 * buffered request instead of recursing. */
static void conn_process(struct srv_conn *c)
{
    struct srv *s = c->s;

    if (c->in_process)
        return;
    c->in_process = 1;
    while (c->state == CS_READING && !s->shutting && c->inoff < c->inlen) {
        size_t used = 0;
        struct pp_request *req = NULL;
        enum pp_status st;

        if (c->pp == NULL && (c->pp = conn_parser(s)) == NULL) {
            conn_gone(c, "out of memory");
            break;
        }
        st = pp_parser_feed(c->pp, c->inbuf + c->inoff, c->inlen - c->inoff, &used, &req);
        if (st == PP_ERROR) {
            s->st.malformed++;
            log_kv(LOG_L_WARNING, "malformed_request", "conn", c->idstr, "client", c->peer,
                   "reason", pp_parser_error(c->pp), NULL);
            conn_close(c);
            break;
        }
        c->inoff += used;
        if (st == PP_NEED_MORE)
            break;
        s->st.requests++;
        conn_set_state(c, CS_EVALUATING);
        c->held = 1;
        s->fn(c, req, s->arg);
    }
    c->in_process = 0;
    if (c->state != CS_READING)
        return;
    if (s->shutting) {
        conn_close(c);
        return;
    }
    if (c->inoff == c->inlen) {
        c->inoff = c->inlen = 0;
        fl_put(&s->inbuf_fl, c->inbuf);
        c->inbuf = NULL;
    }
    if (c->rd_eof) {
        /* Everything the half-closed peer sent has been answered. */
        conn_gone(c, "eof after reply");
        return;
    }
    if (c->pp == NULL || pp_parser_idle(c->pp)) {
        conn_parser_idle(s, &c->pp);
        c->req_timer = 0;
        arm_ms(c->tmr, s->lim.idle_timeout_ms);
    } else if (!c->req_timer) {
        /* started in the read just processed: the deadline runs from here and
         * is not pushed back by later bytes (slowloris) */
        c->req_timer = 1;
        arm_ms(c->tmr, s->lim.request_timeout_ms);
    }
    event_add(c->rev, NULL);
}

static void conn_flush(struct srv_conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->outbuf + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* The reply was formatted on the caller's stack: keep what is
                 * left of it until the socket takes it. */
                if (!c->out_heap) {
                    char *rest = malloc(c->outlen - c->outoff);
                    if (rest == NULL) {
                        c->outbuf = NULL;
                        conn_gone(c, "out of memory");
                        return;
                    }
                    memcpy(rest, c->outbuf + c->outoff, c->outlen - c->outoff);
                    c->outbuf = rest;
                    c->outlen -= c->outoff;
                    c->outoff = 0;
                    c->out_heap = 1;
                }
                event_add(c->wev, NULL);
                return;
            }
            conn_gone(c, strerror(errno));
            return;
        }
        c->outoff += (size_t)n;
    }
    if (c->out_heap)
        free(c->outbuf);
    c->outbuf = NULL;
    c->out_heap = 0;
    event_del(c->wev);
    c->s->st.replies++;
    conn_set_state(c, CS_READING);
    conn_process(c);
}

static void peer_name(const struct sockaddr *sa, char *buf, size_t sz)
{
    char a[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        snprintf(buf, sz, "%s:%u", a, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
        snprintf(buf, sz, "[%s]:%u", a, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, sz, "unix");
    }
}

static void srv_refused(struct srv *s)
{
    time_t now = time(NULL);
    s->st.refused_limit++;
    s->refused_unlogged++;
    if (now == s->refused_logged)
        return; /* at most one warning per second under a flood */
    char max[16], n[24];
    snprintf(max, sizeof(max), "%u", s->lim.max_connections);
    snprintf(n, sizeof(n), "%llu", (unsigned long long)s->refused_unlogged);
    log_kv(LOG_L_WARNING, "connection_limit", "max_connections", max, "refused", n, NULL);
    s->refused_logged = now;
    s->refused_unlogged = 0;
}

static void srv_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    struct srv_listener *l = arg;
    struct srv *s = l->s;
    struct srv_conn *c;

    if (s->shutting) {
        close(fd);
        return;
    }
    if (s->nconns >= s->lim.max_connections) {
        close(fd);
        srv_refused(s);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->s = s;
    c->fd = fd;
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
    c->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
    c->tmr = evtimer_new(s->base, conn_timer_cb, c);
    if (c->rev == NULL || c->wev == NULL || c->tmr == NULL)
        goto fail;
    c->id = ++srv_conn_seq;
    snprintf(c->idstr, sizeof(c->idstr), "%llu", (unsigned long long)c->id);
    peer_name(sa, c->peer, sizeof(c->peer));
    if (sa->sa_family != AF_UNIX) {
        /* replies are single writes; Nagle would delay pipelined ones */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->state = CS_READING;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->st.accepted++;
    if (log_enabled(LOG_L_DEBUG))
        log_kv(LOG_L_DEBUG, "conn_open", "id", c->idstr, "client", c->peer, "listener", l->spec,
               NULL);
    conn_process(c); /* arms the idle timer and the read event */
    return;
fail:
    log_kv(LOG_L_ERROR, "accept_failed", "reason", "out of memory", NULL);
    close(fd);
    if (c) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->tmr)
            event_free(c->tmr);
        pp_parser_free(&c->pp);
        free(c);
    }
}

static void srv_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_listener *l = arg;
    evconnlistener_enable(l->lev);
}

/* EMFILE and the like: the pending connection stays in the backlog and the
 * listener would fire again at once, so pause accepting for a moment. */
static void srv_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct srv_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_kv(LOG_L_WARNING, "accept_failed", "listener", l->spec, "reason", strerror(err), NULL);
    evconnlistener_disable(lev);
    arm_ms(l->retry, SRV_ACCEPT_RETRY_MS);
}

/* ---------------------------------------------------------------- listeners */

static void listener_free(struct srv_listener *l)
{
    struct stat st;
    if (l->lev)
        evconnlistener_free(l->lev); /* closes the socket */
    if (l->retry)
        event_free(l->retry);
    /* unlink only the socket we created, not one a newer process put there */
    if (l->unix_path && lstat(l->unix_path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->unix_path);
    free(l->unix_path);
    free(l->spec);
    free(l);
}

static int parse_owner(const char *owner, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    char user[256];
    const char *colon = strchr(owner, ':');
    size_t ulen = colon ? (size_t)(colon - owner) : strlen(owner);
    struct passwd *pw;

    if (ulen == 0 || ulen >= sizeof(user)) {
        snprintf(err, errlen, "socket owner \"%s\": bad user", owner);
        return -1;
    }
    memcpy(user, owner, ulen);
    user[ulen] = '\0';
    if ((pw = getpwnam(user)) == NULL) {
        snprintf(err, errlen, "socket owner: unknown user \"%s\"", user);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = (gid_t)-1;
    if (colon) {
        struct group *gr = getgrnam(colon + 1);
        if (gr == NULL) {
            snprintf(err, errlen, "socket owner: unknown group \"%s\"", colon + 1);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

/* parse_inet: "HOST:PORT" or "[V6]:PORT" into ss. */
static int parse_inet(const char *spec, const char *rest, struct sockaddr_storage *ss,
                      socklen_t *sslen, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    size_t hlen;
    int v6 = 0;

    if (rest[0] == '[') {
        const char *end = strchr(rest, ']');
        if (end == NULL || end[1] != ':') {
            snprintf(err, errlen, "%s: expected inet:[ADDRESS]:PORT", spec);
            return -1;
        }
        hlen = (size_t)(end - rest - 1);
        rest++;
        port = end + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(rest, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "%s: expected inet:HOST:PORT", spec);
            return -1;
        }
        hlen = (size_t)(colon - rest);
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(err, errlen, "%s: bad host", spec);
        return -1;
    }
    memcpy(host, rest, hlen);
    host[hlen] = '\0';
    if (!v6 && strchr(host, ':')) {
        snprintf(err, errlen, "%s: an IPv6 address needs brackets: inet:[ADDRESS]:PORT", spec);
        return -1;
    }
    char *endp;
    errno = 0;
    unsigned long pn = strtoul(port, &endp, 10);
    if (port[0] < '0' || port[0] > '9' || *endp != '\0' || errno || pn == 0 || pn > 65535) {
        snprintf(err, errlen, "%s: port must be a number from 1 to 65535", spec);
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)pn);
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
            snprintf(err, errlen, "%s: bad IPv6 address", spec);
            return -1;
        }
        *sslen = sizeof(*in6);
        return 0;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)pn);
    *sslen = sizeof(*in);
    if (strcmp(host, "*") == 0) {
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1)
        return 0;
    /* a name such as "localhost": resolved once at startup, before the loop */
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "%s: cannot resolve \"%s\": %s", spec, host, gai_strerror(rc));
        return -1;
    }
    memcpy(in, res->ai_addr, sizeof(*in));
    freeaddrinfo(res);
    return 0;
}

/* unix_alive: 1 when something accepts on the socket file; replacing it would
 * silently steal a running server's clients. */
static int unix_alive(const struct sockaddr_un *un)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), alive = 0;
    if (fd < 0)
        return 0;
    if (connect(fd, (const struct sockaddr *)un, sizeof(*un)) == 0 || errno == EAGAIN)
        alive = 1; /* EAGAIN: a full backlog, still someone's */
    close(fd);
    return alive;
}

int srv_listen(struct srv *s, const char *spec, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    struct srv_listener *l = NULL;
    const char *path = NULL;
    int fd = -1, one = 1;

    if (s->shutting) {
        snprintf(err, errlen, "%s: server is shutting down", spec);
        return -1;
    }
    if (strncmp(spec, "inet:", 5) == 0) {
        if (parse_inet(spec, spec + 5, &ss, &sslen, err, errlen) < 0)
            return -1;
    } else if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        struct stat st;
        path = spec + 5;
        if (path[0] == '\0' || strlen(path) >= sizeof(un->sun_path)) {
            snprintf(err, errlen, "%s: socket path empty or too long", spec);
            return -1;
        }
        memset(un, 0, sizeof(*un));
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        sslen = sizeof(*un);
        if (lstat(path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                snprintf(err, errlen, "%s: exists and is not a socket", spec);
                return -1;
            }
            if (unix_alive(un)) {
                snprintf(err, errlen, "%s: in use by a running server", spec);
                return -1;
            }
            unlink(path); /* stale socket from a previous run */
        }
    } else {
        snprintf(err, errlen, "%s: expected inet:HOST:PORT, inet:[V6]:PORT or unix:PATH", spec);
        return -1;
    }

    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", spec, strerror(errno));
        return -1;
    }
    if (ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* v6 sockets only v6, so "inet:*:P" and "inet:[::]:P" can coexist */
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
        snprintf(err, errlen, "%s: bind: %s", spec, strerror(errno));
        goto fail;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL || (l->spec = strdup(spec)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", spec);
        goto fail;
    }
    l->s = s;
    if (path) {
        struct stat st;
        if ((l->unix_path = strdup(path)) == NULL) {
            snprintf(err, errlen, "%s: out of memory", spec);
            goto fail;
        }
        if (chmod(path, s->lim.socket_mode) < 0) {
            snprintf(err, errlen, "%s: chmod: %s", spec, strerror(errno));
            goto fail;
        }
        if (s->owner) {
            uid_t uid;
            gid_t gid;
            if (parse_owner(s->owner, &uid, &gid, err, errlen) < 0)
                goto fail;
            if (chown(path, uid, gid) < 0) {
                snprintf(err, errlen, "%s: chown %s: %s", spec, s->owner, strerror(errno));
                goto fail;
            }
        }
        if (lstat(path, &st) == 0) {
            l->dev = st.st_dev;
            l->ino = st.st_ino;
        }
    }
    l->retry = evtimer_new(s->base, srv_accept_retry_cb, l);
    if (l->retry == NULL) {
        snprintf(err, errlen, "%s: out of memory", spec);
        goto fail;
    }
    l->lev = evconnlistener_new(s->base, srv_accept_cb, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, SRV_BACKLOG, fd);
    if (l->lev == NULL) {
        snprintf(err, errlen, "%s: listen: %s", spec, strerror(errno));
        goto fail;
    }
    evconnlistener_set_error_cb(l->lev, srv_accept_error_cb);
    l->next = s->listeners;
    s->listeners = l;
    log_kv(LOG_L_INFO, "listening", "listener", spec, NULL);
    return 0;
fail:
    close(fd);
    if (path)
        unlink(path);
    if (l) {
        if (l->retry)
            event_free(l->retry);
        free(l->unix_path);
        free(l->spec);
        free(l);
    }
    return -1;
}

/* ---------------------------------------------------------------- srv */

static void srv_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;
    while (s->reap) {
        struct srv_conn *c = s->reap;
        s->reap = c->reap_next;
        conn_free(c);
    }
    if (s->shutting && s->nconns == 0 && s->done) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        done(s->done_arg); /* last: done may free s */
    }
}

struct srv *srv_new(struct event_base *base, const struct srv_limits *lim, srv_request_fn fn,
                    void *arg)
{
    struct srv *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    s->inbuf_fl = (struct fl)FL_INIT(SRV_INBUF, SRV_SPARE_INBUF);
    s->fn = fn;
    s->arg = arg;
    s->reap_ev = event_new(base, -1, 0, srv_reap_cb, s);
    if (s->reap_ev == NULL) {
        free(s);
        return NULL;
    }
    srv_apply_limits(s, lim);
    return s;
}

void srv_set_limits(struct srv *s, const struct srv_limits *lim)
{
    srv_apply_limits(s, lim);
}

void srv_reply(struct srv_conn *c, const char *action)
{
    if (!c->held) {
        log_kv(LOG_L_ERROR, "srv_reply", "conn", c->idstr, "reason", "connection not held", NULL);
        return;
    }
    c->held = 0;
    if (c->state != CS_EVALUATING) {
        /* the peer went away meanwhile: the reply is dropped */
        conn_maybe_reap(c);
        return;
    }
    char out[SRV_OUTBUF];
    int n = pp_format_reply(out, sizeof(out), action);
    if (n < 0) {
        log_kv(LOG_L_ERROR, "bad_reply", "conn", c->idstr, "client", c->peer, "reason",
               "action empty, too long or with CR/LF", NULL);
        conn_close(c);
        return;
    }
    c->outbuf = out; /* conn_flush copies it to the heap if it cannot send it all now */
    c->out_heap = 0;
    c->outlen = (size_t)n;
    c->outoff = 0;
    conn_set_state(c, CS_WRITING);
    conn_flush(c);
    if (!c->out_heap)
        c->outbuf = NULL; /* never keep a pointer into this stack frame */
}

void srv_conn_release(struct srv_conn *c)
{
    if (!c->held) {
        log_kv(LOG_L_ERROR, "srv_conn_release", "conn", c->idstr, "reason", "connection not held",
               NULL);
        return;
    }
    c->held = 0;
    if (c->state == CS_CLOSING)
        conn_maybe_reap(c);
    else
        conn_close(c);
}

uint64_t srv_conn_id(const struct srv_conn *c)
{
    return c->id;
}

const char *srv_conn_peer(const struct srv_conn *c)
{
    return c->peer;
}

void srv_shutdown(struct srv *s, void (*done)(void *), void *arg)
{
    struct srv_conn *c;

    s->shutting = 1;
    s->done = done;
    s->done_arg = arg;
    while (s->listeners) {
        struct srv_listener *l = s->listeners;
        s->listeners = l->next;
        listener_free(l);
    }
    /* connections waiting for a request are closed; those with a request in
     * evaluation or a reply in flight finish it (conn_process then closes) */
    for (c = s->conns; c; c = c->next)
        if (c->state == CS_READING)
            conn_close(c);
    /* done is called from the reap event, never from inside this call */
    event_active(s->reap_ev, EV_TIMEOUT, 0);
}

void srv_free(struct srv **sp)
{
    struct srv *s;
    if (sp == NULL || (s = *sp) == NULL)
        return;
    while (s->listeners) {
        struct srv_listener *l = s->listeners;
        s->listeners = l->next;
        listener_free(l);
    }
    /* a connection still held by a handler is freed too: the handler must
     * not use it after srv_free (the daemon frees only after done) */
    while (s->conns)
        conn_free(s->conns);
    event_free(s->reap_ev);
    free(s->owner);
    fl_drain(&s->inbuf_fl);
    while (s->nspare_pp > 0)
        pp_parser_free(&s->spare_pp[--s->nspare_pp]);
    free(s);
    *sp = NULL;
}

void srv_get_stats(struct srv *s, struct srv_stats *out)
{
    *out = s->st;
    out->open = s->nconns;
}
