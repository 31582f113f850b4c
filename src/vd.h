/* vd.h - the verdict: what the daemon answers to one policy request.
 *
 * Per message (Postfix `instance`), at the first RCPT: skip trusted clients
 * and (by default) SASL-authenticated sessions with DUNNO; otherwise evaluate
 * SPF (worker pool) and discover the DMARC policy of the policy domain (the
 * MAIL FROM domain, or HELO for the null sender) in parallel, under one
 * deadline; then apply the disposition table (policy/dmarc_disp.h), local
 * overrides (trusted_forwarders, whitelist_sender_domains, max_disposition)
 * and map the disposition to a Postfix action: reject -> reject_action + text,
 * quarantine -> quarantine_action, temperror -> temperror_action, otherwise
 * PREPEND of the headers (Received-SPF / Authentication-Results as
 * spf_headers says, X-Envelope-DMARC when dmarc_header = yes).
 *
 * The decision is kept in the instance table so later requests of the same
 * message reuse it without DNS work: a reject stays a reject; headers not yet
 * sent go out one per later request (second RCPT or DATA; never
 * END-OF-MESSAGE, where Postfix cannot PREPEND), as Postfix takes one action
 * per reply. One `decision` log line per message.
 *
 * Ownership: vd borrows the base, pool, resolver and config it is given;
 * vd_handle takes the request and the connection reference (see srv.h). Loop
 * thread only. */
#ifndef PD_VD_H
#define PD_VD_H

#include <stddef.h>
#include <stdint.h>

struct pd_config;
struct event_base;
struct dns_resolver;
struct spfw_pool;
struct srv_conn;
struct pp_request;
struct vd;

/* vd_new: NULL with a message in err (bad network list, unreadable PSL file).
 * base, pool and dns are borrowed for the life of the vd. */
struct vd *vd_new(const struct pd_config *cfg, struct event_base *base, struct spfw_pool *pool,
                  struct dns_resolver *dns, char *err, size_t errlen);
/* vd_reconfigure: take the reloadable decision settings of cfg (SIGHUP). cfg must
 * stay valid until the next vd_reconfigure or vd_free. 0, or -1 with err. */
int vd_reconfigure(struct vd *v, const struct pd_config *cfg, char *err, size_t errlen);
void vd_free(struct vd **vp);

/* vd_set_counter: count decided messages into rc (NULL: stop counting).
 * Borrowed until the next call or vd_free. */
struct rcount;
void vd_set_counter(struct vd *v, struct rcount *rc);

/* vd_handle: the srv request handler (srv_request_fn with arg = struct vd *). */
void vd_handle(struct srv_conn *c, struct pp_request *req, void *arg);

/* vd_expire: drop expired message entries (called from a periodic timer). */
void vd_expire(struct vd *v);

#define VD_STATES 4
#define VD_STATE_NAMES                                                                             \
    {                                                                                              \
        "RCPT", "DATA", "END-OF-MESSAGE", "other"                                                  \
    }
#define VD_ACTIONS 7
#define VD_ACTION_NAMES                                                                            \
    {                                                                                              \
        "DUNNO", "PREPEND", "REJECT", "DEFER", "HOLD", "FILTER", "other"                           \
    }
#define VD_LATENCY_BUCKETS 12
#define VD_LATENCY_BOUNDS_MS                                                                       \
    {                                                                                              \
        1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000                                   \
    }

struct vd_stats {
    uint64_t requests_by_state[VD_STATES];  /* VD_STATE_NAMES order */
    uint64_t replies_by_action[VD_ACTIONS]; /* VD_ACTION_NAMES order, by the reply's first word */
    uint64_t dmarc_results[4];              /* by enum dmarc_result: none, pass, fail, temperror */
    uint64_t requests, messages, skipped_trusted, skipped_authenticated, evaluated, reused,
        bad_requests;
    uint64_t spf[7];                 /* by enum spf_res, MAIL FROM identity */
    uint64_t dispositions[3];        /* by enum dmarc_disp: none, quarantine, reject */
    uint64_t counted, count_dropped; /* rows handed to / refused by the counter writer */
    uint64_t skipped_own;            /* mail from report_email itself: not checked, not counted */
    uint64_t dmarc_cache_hits;       /* discoveries taken from the dmarcq cache */
    uint64_t grey_checks, grey_defer, grey_pass, grey_pass_awl, grey_errors, grey_whitelisted,
        grey_skipped_authenticated;
    uint64_t grey_awl_cached; /* AWL lookups the greylist store answered locally */
    /* Evaluation latency (first RCPT to decision), cumulative histogram with
     * the upper bounds of VD_LATENCY_BOUNDS_MS; the last bucket is +Inf. */
    uint64_t latency_le[VD_LATENCY_BUCKETS + 1];
    uint64_t latency_count;
    double latency_sum_s;
};
void vd_get_stats(struct vd *v, struct vd_stats *out);

#endif
