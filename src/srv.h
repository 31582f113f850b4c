/* srv.h - listeners and client connections on the libevent loop.
 *
 * A connection moves through explicit states, logged on each transition
 * (`conn id=N state=reading->evaluating`):
 *   READING    accumulating a request (idle timer armed)
 *   EVALUATING a complete request was handed to the handler; input is not
 *              read further until the reply (one outstanding request, as smtpd)
 *   WRITING    reply queued, flushing
 *   CLOSING    peer gone, error, limit or shutdown; freed when nothing holds it
 * A peer that half-closes (FIN) while its request is evaluated still gets the
 * reply, then the connection is closed; a reset drops the reply.
 * A malformed or oversized request is logged (`malformed_request conn=N
 * client=... reason="..."`) and the connection closed without a reply.
 *
 * Ownership: the handler receives a connection reference it must hand back
 * with srv_reply() or srv_conn_release() exactly once. A connection whose peer
 * has gone is kept until then, and srv_reply() on it is a harmless no-op.
 * All functions run on the loop thread. */
#ifndef PD_SRV_H
#define PD_SRV_H

#include <stdint.h>

#include "pp.h"

struct event_base;
struct srv;
struct srv_conn;

/* The request handler: req is owned by the handler from here (pp_request_free).
 * It must eventually call srv_reply(c, action) or srv_conn_release(c). */
typedef void (*srv_request_fn)(struct srv_conn *c, struct pp_request *req, void *arg);

struct srv_limits {
    unsigned max_connections;    /* further accepts are closed at once and counted */
    unsigned idle_timeout_ms;    /* a connection with no request in progress and no input */
    unsigned request_timeout_ms; /* a started request must complete within this (slowloris) */
    unsigned socket_mode;        /* for unix listeners */
    const char *socket_owner;    /* "user[:group]" or NULL/"" */
};

struct srv *srv_new(struct event_base *base, const struct srv_limits *lim, srv_request_fn fn,
                    void *arg);
/* srv_listen: add a listener: "inet:HOST:PORT", "inet:[V6]:PORT", "unix:PATH"
 * (a stale unix socket file is replaced). 0, or -1 with a message in err. */
int srv_listen(struct srv *s, const char *spec, char *err, size_t errlen);
/* srv_set_limits: new limits for future events (SIGHUP). */
void srv_set_limits(struct srv *s, const struct srv_limits *lim);

/* srv_reply: send "action=<action>\n\n" and resume reading. An action that
 * pp_format_reply refuses is a bug in the caller: logged, the connection is
 * closed instead (Postfix then applies its default_action). */
void srv_reply(struct srv_conn *c, const char *action);
/* srv_conn_release: give the connection back without replying (closes it). */
void srv_conn_release(struct srv_conn *c);
/* srv_conn_id: a number unique for the process lifetime, for logs. */
uint64_t srv_conn_id(const struct srv_conn *c);
/* srv_conn_peer: "127.0.0.1:4711" / "unix" - the policy client, for logs. */
const char *srv_conn_peer(const struct srv_conn *c);

/* srv_shutdown: stop accepting (close listeners, unlink unix sockets), close idle
 * connections, let connections in EVALUATING finish their reply, then call
 * done(arg) once no connection is left. */
void srv_shutdown(struct srv *s, void (*done)(void *), void *arg);
void srv_free(struct srv **sp);

struct srv_stats {
    uint64_t accepted, refused_limit, closed_idle, closed_timeout, malformed, requests, replies;
    unsigned open;
};
void srv_get_stats(struct srv *s, struct srv_stats *out);

#endif
