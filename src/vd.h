/* vd.h - the verdict: what the daemon answers to one policy request.
 *
 * Per message (Postfix `instance`), at the first RCPT: skip trusted clients
 * and (by default) SASL-authenticated sessions with DUNNO; otherwise evaluate
 * SPF on the worker pool and answer PREPEND with the configured header. The
 * decision is kept in the instance table so later requests of the same message
 * reuse it: no second evaluation, no duplicate header. With spf_headers = both
 * the second header goes out with the next request of the same message
 * (second RCPT or DATA; never END-OF-MESSAGE, where Postfix cannot PREPEND):
 * Postfix takes one action per reply.
 * One `decision` log line per message.
 *
 * Ownership: vd borrows the pool and the config it is given; vd_handle takes
 * the request and the connection reference (see srv.h). Loop thread only. */
#ifndef PD_VD_H
#define PD_VD_H

#include <stddef.h>
#include <stdint.h>

struct pd_config;
struct spfw_pool;
struct srv_conn;
struct pp_request;
struct vd;

/* vd_new: NULL with a message in err on a bad trusted_networks list. */
struct vd *vd_new(const struct pd_config *cfg, struct spfw_pool *pool, char *err, size_t errlen);
/* vd_reconfigure: take the reloadable decision settings of cfg (SIGHUP). cfg must
 * stay valid until the next vd_reconfigure or vd_free. 0, or -1 with err. */
int vd_reconfigure(struct vd *v, const struct pd_config *cfg, char *err, size_t errlen);
void vd_free(struct vd **vp);

/* vd_handle: the srv request handler (srv_request_fn with arg = struct vd *). */
void vd_handle(struct srv_conn *c, struct pp_request *req, void *arg);

/* vd_expire: drop expired message entries (called from a periodic timer). */
void vd_expire(struct vd *v);

struct vd_stats {
    uint64_t requests, messages, skipped_trusted, skipped_authenticated, evaluated, reused,
        bad_requests;
    uint64_t spf[7]; /* by enum spf_res, MAIL FROM identity */
};
void vd_get_stats(struct vd *v, struct vd_stats *out);

#endif
