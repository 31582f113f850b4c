/* spfa.h - the libspf2 adapter: the only module that includes libspf2.
 *
 * It runs inside an SPF worker process (or a test harness), one SPF_server_t
 * per struct spfa, and gets every DNS answer through the caller's blocking
 * lookup function (the worker forwards it to the main process over IPC; the
 * RFC 7208 suite harness answers from an in-memory zone). libspf2's own resolv
 * layer is never used.
 *
 * Around the library (see ../shared/spec/libspf2-findings.md): record text is
 * validated by policy/spfrec before libspf2 compiles it, explanations are
 * expanded by us (get_exp hook), results are mapped explicitly, IPv4-mapped
 * IPv6 clients are evaluated as IPv4, and loopback gets no free pass. */
#ifndef PD_SPFA_H
#define PD_SPFA_H

#include <stdint.h>

#include "dnsrr.h"
#include "spfres.h"

/* Blocking lookup: returns a new reference (caller unrefs), never NULL (use a
 * DNS_SERVFAIL result for internal errors). Called only from inside spfa_eval(). */
typedef struct dns_result *(*spfa_lookup_fn)(void *ctx, const char *name, uint16_t type);

struct spfa;

/* spfa_new: receiver_name is our host name as used in Received-SPF / %{r}
 * macros. NULL on failure. */
struct spfa *spfa_new(const char *receiver_name, spfa_lookup_fn lookup, void *ctx);
void spfa_free(struct spfa **ap);

/* spfa_eval: evaluate SPF for client_ip (v4, v6 or v4-mapped v6 text), the HELO
 * name (may be "" or not a domain) and sender (MAIL FROM address, "" for the null
 * sender: then the identity is postmaster@helo). Fills *out completely (the
 * HELO identity is evaluated too when helo is a domain). out->uses_local says
 * whether the MAIL FROM evaluation expanded a macro carrying the local part
 * (1 also whenever that cannot be vouched for). Returns 0, or -1 on an
 * internal failure (then out->mfrom = out->helo = SPF_RES_TEMPERROR). */
int spfa_eval(struct spfa *a, const char *client_ip, const char *helo, const char *sender,
              struct spf_verdict *out);

#endif
