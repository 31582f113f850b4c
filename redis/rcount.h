/* rcount.h - the daemon's counter writer: one count per message into Redis,
 * asynchronously (hiredis + its libevent adapter), pipelined, never delaying a
 * decision. The only module of the daemon including hiredis.
 *
 * rcount_add() only queues: rows wait in a bounded memory buffer (counter_buffer
 * rows) and are written in pipelined batches (HINCRBY on the row hash, HSET of
 * the policy snapshot and first/last seen, SADD to the day index, EXPIRE on each
 * key) whenever the connection is up. While Redis is away the buffer keeps
 * them; reconnection uses exponential backoff (100 ms .. 10 s); rows beyond the
 * buffer are dropped, counted and logged (rate-limited), never silently.
 * A batch is removed from the buffer only when Redis has replied to it, so a
 * connection lost mid-batch re-sends that batch (at-least-once within the
 * buffer; a count can be doubled only if Redis applied a batch whose replies
 * were lost - documented). Loop thread only. */
#ifndef PD_RCOUNT_H
#define PD_RCOUNT_H

#include <stdint.h>

#include "rrow.h"

struct event_base;
struct rcount;

struct rcount_config {
    const char *redis;    /* "tcp:HOST:PORT" or "unix:PATH" (copied) */
    const char *password; /* "" = no AUTH */
    unsigned db;
    const char *prefix;
    unsigned retention_s; /* TTL set on every key written */
    unsigned buffer_rows; /* max rows waiting */
};

/* rcount_new: starts connecting at once (asynchronously). NULL on bad config
 * or allocation failure. */
struct rcount *rcount_new(struct event_base *base, const struct rcount_config *c);
/* rcount_reconfigure: new settings; a changed address/password/db reconnects. */
void rcount_reconfigure(struct rcount *rc, const struct rcount_config *c);
/* rcount_free: try to flush what is buffered for up to flush_ms (0 = no wait:
 * drop), then disconnect and free; NULLs *rcp. Blocking only at shutdown: it
 * runs the base itself, so call it after event_base_dispatch() returned. */
void rcount_free(struct rcount **rcp, unsigned flush_ms);

/* rcount_add: count one message: row under policy domain pol->domain on the
 * UTC day of now (unix seconds). Copies everything. Returns 0 when queued, -1
 * when the buffer was full (the row is dropped and counted). */
int rcount_add(struct rcount *rc, const struct rrow *row, const struct rrow_policy *pol,
               long long now);

struct rcount_stats {
    uint64_t rows_added;   /* accepted into the buffer */
    uint64_t rows_written; /* acknowledged by Redis */
    uint64_t rows_dropped; /* buffer full */
    uint64_t batches;      /* pipelined round trips */
    uint64_t errors;       /* error replies / connection failures */
    uint64_t reconnects;   /* connection attempts after the first */
    unsigned buffered;     /* rows waiting now */
    int connected;         /* 1 when the connection is up and authenticated */
    uint64_t rows_failed;  /* refused by Redis (error reply, not a transient one such as
                            * LOADING/READONLY/OOM) on RCOUNT_MAX_TRIES batches, or not
                            * encodable; discarded and logged */
};
#define RCOUNT_MAX_TRIES 10
void rcount_get_stats(struct rcount *rc, struct rcount_stats *out);

#endif
