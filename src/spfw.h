/* spfw.h - the SPF worker pool (main-process side).
 *
 * `workers` child processes each run spfa (libspf2) for one evaluation at a
 * time. A worker asks the main process for every DNS answer over its socketpair;
 * the pool answers through dns_lookup() (so all DNS runs on the loop with one
 * cache). Jobs queue when every worker is busy. Identical concurrent jobs
 * (same client IP, HELO, sender) share one evaluation (single flight).
 *
 * Deadlines: each job has eval_timeout_ms from submission. When it passes the
 * job's callbacks get a verdict with temperror for the identities not yet known
 * ("evaluation timeout"); the worker's pending and later DNS questions for it are
 * answered DNS_TIMEOUT at once, and a worker that does not come back within a
 * grace period is killed and replaced. A worker that dies mid-job gives its
 * job temperror ("worker died") and is replaced. The daemon never hangs.
 *
 * Verdict cache: a finished verdict is kept for min(verdict.ttl,
 * verdict_cache_ttl_s) and later matching jobs complete from it on the loop,
 * without a worker, but still through a deferred callback. The key is (client
 * IP, HELO, sender), or (client IP, HELO, @domain) when the sender has a
 * non-empty local part and the evaluation expanded no macro carrying it
 * (verdict.uses_local == 0): such a verdict serves every local part at the
 * domain. Lookups try the domain key first. Temperror verdicts are not kept.
 *
 * All functions run on the loop thread. */
#ifndef PD_SPFW_H
#define PD_SPFW_H

#include <stdint.h>

#include "spfres.h"

struct event_base;
struct dns_resolver;
struct spfw_pool;
struct spfw_job;

struct spfw_config {
    unsigned workers;             /* processes, >= 1 */
    unsigned eval_timeout_ms;     /* total deadline per evaluation */
    const char *receiver;         /* our host name for Received-SPF / %{r} (copied) */
    unsigned verdict_cache_size;  /* entries, 0 disables; default 100000 */
    unsigned verdict_cache_ttl_s; /* cap on reuse of a verdict; default 300 */
};

/* Callback: v is borrowed for the duration of the call. Called exactly once per
 * job unless cancelled, always later from the loop (never inside spfw_eval). */
typedef void (*spfw_cb)(const struct spf_verdict *v, void *arg);

/* spfw_new: fork the workers (they inherit nothing but their socketpair end and
 * stderr). NULL on failure. */
struct spfw_pool *spfw_new(struct event_base *base, struct dns_resolver *dns,
                           const struct spfw_config *cfg);
/* spfw_reconfigure: new timeout/worker count for future jobs. */
void spfw_reconfigure(struct spfw_pool *p, const struct spfw_config *cfg);
/* spfw_free: kill and reap the workers, cancel jobs (callbacks not called). */
void spfw_free(struct spfw_pool **pp);

/* spfw_eval: submit an evaluation; the strings are copied. NULL only on
 * allocation failure (cb not called). */
struct spfw_job *spfw_eval(struct spfw_pool *p, const char *client_ip, const char *helo,
                           const char *sender, spfw_cb cb, void *arg);
/* spfw_cached: a synchronous probe of the verdict cache for the caller's fast
 * path (same keys as spfw_eval). 1 and *out filled on a hit, counted in
 * cache_hits exactly like a hit in spfw_eval; 0 on a miss, and nothing else
 * happens (no evaluation starts, *out untouched). No allocation unless the
 * inputs are huge. */
int spfw_cached(struct spfw_pool *p, const char *client_ip, const char *helo, const char *sender,
                struct spf_verdict *out);
/* spfw_cancel: the callback will not run; NULLs *jp. The evaluation itself may
 * continue for other waiters. */
void spfw_cancel(struct spfw_job **jp);

struct spfw_stats {
    uint64_t evaluations;       /* evaluations started on a worker */
    uint64_t shared;            /* jobs that joined an evaluation already running */
    uint64_t cache_hits;        /* jobs answered from the verdict cache (spfw_cached included) */
    uint64_t cache_domain_hits; /* of which from a domain-key entry (any local part) */
    uint64_t timeouts;          /* evaluations ended by the deadline */
    uint64_t worker_deaths;
    uint64_t dns_questions; /* DNS questions workers asked */
    unsigned busy, idle, queued;
};
void spfw_get_stats(struct spfw_pool *p, struct spfw_stats *out);

#endif
