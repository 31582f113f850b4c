/* dmarcq.h - DMARC policy discovery on the event loop: runs the pure
 * dmarc_disc state machine (policy/dmarc_disc.h) with the daemon's resolver,
 * and checks whether the policy domain exists (A, AAAA and MX asked in
 * parallel) when that can change the policy: only when the record found
 * belongs to a parent domain (sp vs np, and the "domain does not exist" row)
 * and the `_dmarc.<policy domain>` answer did not already prove existence.
 * Finished discoveries are kept in a small cache (dmarcq_cached), so a busy
 * domain's policy is not walked and parsed again for every message.
 *
 * Threading: the loop thread of the resolver only (like dns.h). */
#ifndef PD_DMARCQ_H
#define PD_DMARCQ_H

#include <stddef.h>
#include <stdint.h>

#include "dmarc_disc.h"
#include "dns.h"

struct dmarcq;
struct dmarcq_cache;

/* A finished discovery: what dmarc_disc found, plus the existence of the
 * policy domain. Immutable once handed out and reference counted, so the
 * cache and every message decided from it share one copy (the struct is
 * ~8 KB: copying it per message showed in profiles). */
struct dmarcq_res {
    int refs;
    /* res.status is FOUND, NONE or TEMPERROR. */
    struct dmarc_disc_result res;
    /* Of the policy domain: DMARC_EXIST_YES when not checked because it
     * could not matter (record at the policy domain itself, or an answer that
     * proved it), UNKNOWN when a check was needed but a lookup failed (treat
     * as existing), NO when A, AAAA and MX all said NXDOMAIN. */
    enum dmarc_exist exists;
    uint64_t expires_ms; /* cached: monotonic ms when it must not be used any more */
};

struct dmarcq_res *dmarcq_res_ref(struct dmarcq_res *r);
/* dmarcq_res_unref: drop one reference, NULL *rp; NULL-safe. */
void dmarcq_res_unref(struct dmarcq_res **rp);

/* Callback: res is a reference the callee owns (dmarcq_res_unref it when
 * done). Called exactly once, always later from the loop (never from inside
 * dmarcq_start), unless cancelled. The handle is freed when the callback
 * returns: do not cancel it from inside. */
typedef void (*dmarcq_cb)(struct dmarcq_res *res, void *arg);

/* The result cache: finished discoveries by (policy domain, method, mode),
 * for as long as the shortest TTL of the DNS answers they were made from,
 * capped by max_ttl_ms. At most max_entries (the oldest goes first). Only
 * FOUND and NONE results whose every answer was conclusive are kept: a
 * temporary failure, or an existence check that failed, is asked again.
 * Loop thread only. max_ttl_ms == 0 disables it (dmarcq_cached misses). */
struct dmarcq_cache *dmarcq_cache_new(size_t max_entries, uint64_t max_ttl_ms);
void dmarcq_cache_free(struct dmarcq_cache **cp);
/* dmarcq_cache_set_ttl: a new cap (reload); 0 empties and disables it. */
void dmarcq_cache_set_ttl(struct dmarcq_cache *c, uint64_t max_ttl_ms);
/* dmarcq_cached: a new reference to the cached result for policy_domain
 * (any case, trailing dot allowed), or NULL. */
struct dmarcq_res *dmarcq_cached(struct dmarcq_cache *c, const char *policy_domain,
                                 enum dmarc_disc_method method, enum dmarc_mode mode);
size_t dmarcq_cache_count(const struct dmarcq_cache *c);

/* dmarcq_start: discover the DMARC policy of policy_domain (the MAIL FROM
 * domain, or the HELO name for the null sender). org_fn/org_ctx: the
 * organizational-domain function for DMARC_DISC_PSL (e.g. psl_org_domain
 * through a small wrapper), ignored for the tree walk. cache (NULL: none)
 * receives the result when it is cacheable; dmarcq_start does not look in it
 * (call dmarcq_cached first). The cache must outlive the handle.
 * Returns a handle valid until the callback runs or dmarcq_cancel(); NULL
 * (cb never called) with errno EINVAL when policy_domain is not a usable
 * domain name (the caller treats that as "no policy"), or ENOMEM. */
struct dmarcq *dmarcq_start(struct dns_resolver *r, struct dmarcq_cache *cache,
                            const char *policy_domain, enum dmarc_disc_method method,
                            enum dmarc_mode mode, dmarc_org_domain_fn org_fn, void *org_ctx,
                            dmarcq_cb cb, void *arg);

/* dmarcq_cancel: stop (outstanding DNS lookups cancelled, callback not
 * called), free, NULL *qp. NULL-safe. */
void dmarcq_cancel(struct dmarcq **qp);

#endif
