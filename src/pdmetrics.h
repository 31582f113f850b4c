/* pdmetrics.h - the daemon's Prometheus collector: reads the statistics of
 * the live modules (server, resolver, SPF pool, verdict; Redis counter writer
 * and greylisting when present) and writes them as policyd_dmarc_* metrics.
 *
 * The Redis counter writer and greylisting are reached through function
 * pointers, so this module links neither (they may be absent or disabled):
 * a NULL getter omits that group of metrics.
 *
 * Ownership: pdm_sources only borrows; every pointer must stay valid while
 * the metrics server can call pdm_collect. Loop thread only. */
#ifndef PD_PDMETRICS_H
#define PD_PDMETRICS_H

#include <stdint.h>

struct evbuffer;
struct srv;
struct dns_resolver;
struct spfw_pool;
struct vd;
struct rcount_stats;

/* Greylisting outcomes, counted per decision by the greylisting module. */
struct pdm_grey_stats {
    uint64_t pass;        /* triplet seen before, retried after the delay */
    uint64_t defer;       /* greylisted: asked to retry */
    uint64_t awl_pass;    /* client network on the automatic whitelist */
    uint64_t whitelisted; /* whitelist file (client or recipient) or exemption */
    uint64_t errors;      /* Redis unreachable or failing: passed (fail open) */
    uint64_t awl_cached;  /* AWL lookups answered without Redis (local cache) */
};

/* Every source may be NULL: its group of metrics is then left out (the
 * daemon sets all four; tests leave some out). */
struct pdm_sources {
    struct srv *srv;
    struct dns_resolver *dns;
    struct spfw_pool *pool;
    struct vd *vd;
    /* Redis counter writer, e.g. a wrapper calling rcount_get_stats(ctx, out);
     * NULL when counting is off. */
    void (*rcount_stats)(void *ctx, struct rcount_stats *out);
    void *rcount_ctx;
    /* Greylisting; NULL when greylisting is off. */
    void (*grey_stats)(void *ctx, struct pdm_grey_stats *out);
    void *grey_ctx;
};

/* pdm_collect: append every metric to out. Usable directly as a
 * metrics_collect_fn through pdm_collect_cb (arg = const struct pdm_sources *). */
void pdm_collect(struct evbuffer *out, const struct pdm_sources *s);
void pdm_collect_cb(struct evbuffer *out, void *arg);

#endif
