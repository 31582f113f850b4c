/* dmarcq.h - DMARC policy discovery on the event loop: runs the pure
 * dmarc_disc state machine (policy/dmarc_disc.h) with the daemon's resolver,
 * and checks whether the policy domain exists (A, AAAA and MX asked in
 * parallel) when that can change the policy: only when the record found
 * belongs to a parent domain (sp vs np, and the "domain does not exist" row)
 * and the `_dmarc.<policy domain>` answer did not already prove existence.
 *
 * Threading: the loop thread of the resolver only (like dns.h). */
#ifndef PD_DMARCQ_H
#define PD_DMARCQ_H

#include "dmarc_disc.h"
#include "dns.h"

struct dmarcq;

/* Callback: res is borrowed for the duration of the call (copy what you
 * keep). res->status is FOUND, NONE or TEMPERROR. exists: of the policy
 * domain; DMARC_EXIST_YES when not checked because it could not matter
 * (record at the policy domain itself, or an answer that proved it), UNKNOWN
 * when a check was needed but a lookup failed (treat as existing), NO when A,
 * AAAA and MX all said NXDOMAIN. Called exactly once, always later from the
 * loop (never from inside dmarcq_start), unless cancelled. The handle is
 * freed when the callback returns: do not cancel it from inside. */
typedef void (*dmarcq_cb)(const struct dmarc_disc_result *res, enum dmarc_exist exists, void *arg);

/* dmarcq_start: discover the DMARC policy of policy_domain (the MAIL FROM
 * domain, or the HELO name for the null sender). org_fn/org_ctx: the
 * organizational-domain function for DMARC_DISC_PSL (e.g. psl_org_domain
 * through a small wrapper), ignored for the tree walk.
 * Returns a handle valid until the callback runs or dmarcq_cancel(); NULL
 * (cb never called) with errno EINVAL when policy_domain is not a usable
 * domain name (the caller treats that as "no policy"), or ENOMEM. */
struct dmarcq *dmarcq_start(struct dns_resolver *r, const char *policy_domain,
                            enum dmarc_disc_method method, enum dmarc_mode mode,
                            dmarc_org_domain_fn org_fn, void *org_ctx, dmarcq_cb cb, void *arg);

/* dmarcq_cancel: stop (outstanding DNS lookups cancelled, callback not
 * called), free, NULL *qp. NULL-safe. */
void dmarcq_cancel(struct dmarcq **qp);

#endif
