/* rgrey.h - the greylist store: triplet state and the client auto-whitelist
 * in Redis, shared by every MX, asynchronously (hiredis + its libevent
 * adapter) on its own connection. The rules are policy/grey's; here they run
 * as two small Lua scripts (EVALSHA, EVAL when the server lost them), each
 * atomic on one key:
 *
 *   <prefix>:grey:{<triplet-key>}  HASH f=first seen ms, l=last seen ms, p=0|1
 *                                  TTL: retry window while pending (not
 *                                  extended by early retries), max age once
 *                                  passed (refreshed on every use)
 *   <prefix>:awl:{<client-net>}    HASH c=passes counted, l=last counted/seen ms
 *                                  TTL: max age, refreshed when touched
 *
 * The two keys carry different hash tags, so on Redis Cluster they live in
 * different slots and cannot be in one script. A check is therefore up to
 * three single-key steps on one connection, in order: (1) AWL lookup (skipped
 * when awl_count is 0): listed -> GREY_PASS_AWL, the triplet is not touched;
 * (2) the triplet step -> DEFER / PASS / PASS_NEW; (3) on PASS_NEW, the AWL
 * count is incremented (sent without waiting: the answer does not depend on
 * it). Between (1) and (3) another MX may count the same network; the worst
 * effect is one pass counted late, never a wrong verdict.
 *
 * Failure: Redis away, an error reply or no answer within timeout_ms ->
 * the callback gets GREY_ERROR (the caller fails open: DUNNO) and it is
 * counted; a request that times out drops the connection, which is remade
 * with backoff (100 ms doubling to 10 s). While the connection is down a
 * check fails at the next loop turn without waiting. Loop thread only.
 * The single-instance Redis protocol is spoken (no Cluster redirections);
 * the key layout is Cluster-ready. */
#ifndef PD_RGREY_H
#define PD_RGREY_H

#include <stdint.h>

#include "grey.h"

struct event_base;
struct rgrey;
struct rgrey_req;

struct rgrey_config {
    const char *redis;    /* "tcp:HOST:PORT" (HOST may be [v6]) or "unix:PATH" (copied) */
    const char *password; /* "" or NULL = no AUTH */
    unsigned db;
    const char *prefix;  /* key prefix, e.g. "pd" (copied) */
    unsigned timeout_ms; /* per check, all steps; 0 = 2000 */
};

struct rgrey_result {
    enum grey_verdict verdict; /* never GREY_ERROR with wait_s set */
    unsigned wait_s;           /* GREY_DEFER: seconds left (>= 1) for greylist_text's %s */
    const char *error;         /* GREY_ERROR: short reason (static string); else NULL */
};

/* The callback runs from the event loop, never inside rgrey_check(). r is
 * valid only during the call. It may call rgrey_check() and rgrey_cancel()
 * on other requests, but not rgrey_free(). The request handle is freed when
 * the callback returns. */
typedef void rgrey_cb(void *arg, const struct rgrey_result *r);

/* rgrey_new: starts connecting at once (asynchronously). NULL on a bad
 * config (address, empty prefix) or ENOMEM. */
struct rgrey *rgrey_new(struct event_base *base, const struct rgrey_config *c);
/* rgrey_reconfigure: new settings (SIGHUP). A changed address, password or db
 * reconnects; requests in flight then complete with GREY_ERROR. Returns -1
 * (settings unchanged) on a bad config. */
int rgrey_reconfigure(struct rgrey *rg, const struct rgrey_config *c);
/* rgrey_free: disconnect and free; pending requests are dropped WITHOUT their
 * callbacks (call it at shutdown, outside any rgrey callback). NULLs *rgp. */
void rgrey_free(struct rgrey **rgp);

/* rgrey_check: one greylist decision for the triplet key (grey_triplet_key,
 * 32 hex) from client_net (grey_client_net) at now_ms (unix ms; every MX
 * should run NTP: skew shortens or lengthens the delay). p gives delay,
 * window, max age, awl_count and awl_interval_ms (copied). The answer comes
 * through cb exactly once, unless cancelled. Returns the request handle
 * (owned by rgrey, valid until the callback returns or rgrey_cancel), or NULL
 * when out of memory or an argument is bad (no callback then: fail open). */
struct rgrey_req *rgrey_check(struct rgrey *rg, const char *triplet_key, const char *client_net,
                              long long now_ms, const struct grey_params *p, rgrey_cb *cb,
                              void *arg);
/* rgrey_cancel: the callback will not run; NULLs *reqp. A step already sent
 * still completes in Redis (the state change stands, as if the client had
 * gone away after asking). */
void rgrey_cancel(struct rgrey_req **reqp);

struct rgrey_stats {
    uint64_t checks; /* rgrey_check calls that got a handle */
    uint64_t defer;  /* verdicts delivered, by kind */
    uint64_t pass;   /* GREY_PASS */
    uint64_t pass_new;
    uint64_t pass_awl;
    uint64_t errors;      /* GREY_ERROR delivered (unavailable + error replies + timeouts) */
    uint64_t timeouts;    /* of which: no answer within timeout_ms */
    uint64_t unavailable; /* of which: connection down when asked */
    uint64_t awl_errors;  /* AWL increments refused/lost (verdict unaffected) */
    uint64_t awl_cached;  /* AWL lookups answered by the local cache (no Redis) */
    uint64_t reconnects;
    uint64_t cancelled;
    unsigned pending; /* requests not yet answered */
    int connected;    /* 1 when connected, authenticated and scripts loaded */
};
void rgrey_get_stats(const struct rgrey *rg, struct rgrey_stats *out);

#endif
