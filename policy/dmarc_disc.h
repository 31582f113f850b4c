/* dmarc_disc.h - DMARC policy discovery as a pure state machine: which
 * `_dmarc` TXT names to ask, in which order, and which record (if any) then
 * governs the policy domain. Two methods:
 *
 *  - DMARC_DISC_TREEWALK (RFC 9989 §4.10): ask `_dmarc.<policy domain>`; when
 *    that holds no single valid record, walk up the tree (a name of more than
 *    eight labels is first shortened to seven, so at most eight questions),
 *    stopping at the first record carrying psd=y or psd=n. The organizational
 *    domain is then: the psd=n name; the name one label below a psd=y name; or
 *    the name with the fewest labels that had a valid record. The record
 *    applied is the organizational domain's, else (psd=y) the PSD's.
 *  - DMARC_DISC_PSL (RFC 7489 §6.6.3): ask `_dmarc.<policy domain>`, then, when
 *    it holds no single valid record, `_dmarc.<organizational domain>` as the
 *    caller's org-domain function (the Public Suffix List) names it.
 *
 * Decisions (docs/dmarc.md):
 *  - several DMARC records at one name: that name has no policy and the walk
 *    goes on (RFC 9989 §4.10 step 2 "they are all discarded", then step 3;
 *    RFC 7489 §6.6.3 says the same for PSL mode);
 *  - a DMARC record that is unusable (no valid p and no valid rua) gives no
 *    policy at its name, but a psd=y/psd=n tag in it still stops the walk and
 *    fixes the organizational domain (§4.10 step 2 looks only at v= and psd=);
 *  - SERVFAIL or timeout of any `_dmarc` question ends discovery with
 *    TEMPERROR: a record we could not see might have changed the outcome;
 *  - NXDOMAIN and NODATA both mean "no record at that name".
 *
 * Pure: no DNS, no clock, no allocation. The caller owns struct dmarc_disc
 * (a few KiB: it holds up to two parsed records) and drives it:
 *
 *     dmarc_disc_start(&d, domain, method, mode, org_fn, org_ctx);
 *     while (dmarc_disc_next(&d, &name, &type))
 *         dmarc_disc_feed(&d, answer_status, txts, lens, n);   (answer for name)
 *     res = dmarc_disc_result(&d);
 */
#ifndef PD_DMARC_DISC_H
#define PD_DMARC_DISC_H

#include <stddef.h>
#include <stdint.h>

#include "dmarc.h"

#define DMARC_DOMAIN_MAX 256 /* a domain name in text form, with its NUL */
#define DMARC_DISC_MAX_Q 8   /* RFC 9989 §4.10: at most eight tree-walk questions */
#define DMARC_DISC_T_TXT 16  /* the only question type asked (IANA TXT) */
#define DMARC_DISC_NOTE_MAX 320

enum dmarc_disc_method { DMARC_DISC_TREEWALK = 0, DMARC_DISC_PSL };

/* Outcome of one `_dmarc` TXT question, as the caller's resolver saw it. */
enum dmarc_disc_answer {
    DMARC_ANS_OK = 0,   /* NOERROR with >= 1 TXT record (texts given) */
    DMARC_ANS_NODATA,   /* NOERROR, no TXT record */
    DMARC_ANS_NXDOMAIN, /* the name does not exist */
    DMARC_ANS_TEMPFAIL, /* SERVFAIL, timeout, unusable answer */
};

enum dmarc_disc_status {
    DMARC_DISC_PENDING = 0, /* questions remain */
    DMARC_DISC_FOUND,       /* a record governs the policy domain (rec, record_domain) */
    DMARC_DISC_NONE,        /* no applicable record: DMARC does not apply */
    DMARC_DISC_TEMPERROR,   /* a `_dmarc` lookup failed temporarily (tempfail_name) */
};

/* Does the policy domain exist? Found by the caller (A, AAAA and MX lookups,
 * see src/dmarcq.h); used by dmarc_disp to choose np. */
enum dmarc_exist {
    DMARC_EXIST_UNKNOWN = 0, /* not checked, or a lookup failed: treated as existing */
    DMARC_EXIST_YES,
    DMARC_EXIST_NO, /* NXDOMAIN for A, AAAA and MX */
};

/* Organizational domain lookup for PSL mode: write the org domain of domain
 * (lower case, no trailing dot) into out and return 0; return -1 when there is
 * none (domain is itself a public suffix, or not a domain). Must not block.
 * ctx is the caller's (e.g. the libpsl context). */
typedef int (*dmarc_org_domain_fn)(void *ctx, const char *domain, char *out, size_t outlen);

struct dmarc_disc_result {
    enum dmarc_disc_status status;
    enum dmarc_disc_method method;
    enum dmarc_mode mode;
    char policy_domain[DMARC_DOMAIN_MAX]; /* normalised: lower case, no trailing dot */
    /* FOUND: the domain whose record is applied (RFC 9990 policy_published/domain). */
    char record_domain[DMARC_DOMAIN_MAX];
    /* The organizational domain as discovery determined it; "" when it was not
     * needed and so not determined (a record at the policy domain without psd). */
    char org_domain[DMARC_DOMAIN_MAX];
    /* FOUND and record_domain == policy_domain: the p tag applies; otherwise the
     * policy domain is below record_domain and sp/np apply (dmarc_disp). */
    int at_policy_domain;
    int psd_policy;          /* FOUND: the record applied is a PSD's (psd=y, org domain had none) */
    struct dmarc_record rec; /* FOUND only */
    /* What the `_dmarc.<policy domain>` answer says about the policy domain's
     * existence: 1 = it exists (that answer was NOERROR, so the policy domain
     * is at least an empty non-terminal), 0 = not known (NXDOMAIN, or the
     * question not asked). Lets the caller skip the A/AAAA/MX existence check. */
    int pd_exists;
    char tempfail_name[DMARC_DOMAIN_MAX + 8]; /* TEMPERROR: the name whose lookup failed */
    char note[DMARC_DISC_NOTE_MAX]; /* why NONE / what was skipped, for logs ("" if nothing) */
    /* Every question asked, in order (names without trailing dot). */
    unsigned nq;
    char q[DMARC_DISC_MAX_Q + 1][DMARC_DOMAIN_MAX + 8];
};

/* One record retained during the walk (internal; public so the caller can
 * allocate struct dmarc_disc). */
struct dmarc_disc_cand {
    int have;
    int usable; /* a valid record (policy can come from it) */
    enum dmarc_psd psd;
    char domain[DMARC_DOMAIN_MAX];
    struct dmarc_record rec;
};

struct dmarc_disc {
    struct dmarc_disc_result res;
    dmarc_org_domain_fn org_fn;
    void *org_ctx;
    int step;                       /* index of the current question in the plan */
    int nplan;                      /* questions planned (tree walk: targets; PSL: 1 or 2) */
    int nlabels;                    /* labels of the policy domain */
    char cur[DMARC_DOMAIN_MAX + 8]; /* the current question ("_dmarc.<target>") */
    char target[DMARC_DOMAIN_MAX];  /* the current target domain */
    struct dmarc_disc_cand last;    /* shortest-named valid/psd record seen so far */
    struct dmarc_disc_cand prev;    /* the one before it (the org domain's, when last is psd=y) */
};

/* dmarc_disc_normalise: name as discovery keys it (lower case, no trailing
 * dot) into out; 0, or -1 when it is not a usable domain name or does not
 * fit in outlen. */
int dmarc_disc_normalise(const char *name, char *out, size_t outlen);

/* dmarc_disc_start: begin discovery for policy_domain (a trailing dot is
 * dropped, case folded). A name that is not a usable domain ends at once with
 * NONE (note says why). org_fn is required for DMARC_DISC_PSL (NULL there:
 * only the policy domain is asked) and ignored for the tree walk. */
void dmarc_disc_start(struct dmarc_disc *d, const char *policy_domain,
                      enum dmarc_disc_method method, enum dmarc_mode mode,
                      dmarc_org_domain_fn org_fn, void *org_ctx);

/* dmarc_disc_next: 1 and the next question (*name borrowed from d, valid until
 * the next feed; *type is always DMARC_DISC_T_TXT) while discovery needs an
 * answer; 0 when it is over (then see dmarc_disc_result). */
int dmarc_disc_next(const struct dmarc_disc *d, const char **name, uint16_t *type);

/* dmarc_disc_feed: the answer to the current question. For DMARC_ANS_OK,
 * txt[i]/len[i] (i < n) are the TXT records, each one's character-strings
 * already joined; borrowed for the call. Ignored once discovery is over. */
void dmarc_disc_feed(struct dmarc_disc *d, enum dmarc_disc_answer ans, const char *const *txt,
                     const size_t *len, size_t n);

/* dmarc_disc_result: the result (status PENDING until next() returns 0). Borrowed from d. */
const struct dmarc_disc_result *dmarc_disc_result(const struct dmarc_disc *d);

const char *dmarc_disc_status_name(enum dmarc_disc_status s); /* "found", "none", ... */
const char *dmarc_disc_method_name(enum dmarc_disc_method m); /* "treewalk", "psl" (RFC 9990) */

#endif
