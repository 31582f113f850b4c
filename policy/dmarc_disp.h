/* dmarc_disp.h - the envelope-DMARC disposition table (product.md §2): from
 * the SPF result of the policy domain, the discovered record, the policy
 * domain's existence, the mode and local settings, decide none / quarantine /
 * reject, which published policy (p, sp or np) applied, and the RFC 9990
 * reason types that explain a disposition milder than the policy.
 *
 * Envelope DMARC: the SPF identity is the policy domain, so alignment is
 * trivial: the DMARC result is pass when SPF passes and fail otherwise ("no
 * aligned SPF pass observed; DKIM not evaluated").
 *
 * Order of the rows (first match wins):
 *   1. no record (discovery NONE)             -> result none, disposition none
 *   2. discovery TEMPERROR                    -> temperror, none
 *   3. SPF pass                               -> pass, none
 *   4. SPF temperror                          -> temperror, none
 *   5. policy domain does not exist           -> fail, per policy (np, else sp, else p)
 *   6. SPF fail                               -> fail, per policy (rows fail_*)
 *   7. softfail/neutral/none/permerror        -> fail, none by default (rows weak_*)
 * Each enforcing row's disposition is configurable but never harsher than the
 * policy asks. Then t=y lowers one step (policy_test_mode), and in RFC 7489
 * mode a message outside pct is lowered one step (sampled_out). A reason is
 * reported only when it made the disposition milder (without it the result
 * would have been harsher); on a tie (e.g. t=y and a local setting both give
 * quarantine) every mechanism that lowered it is named. A local override
 * (trusted forwarder, whitelisted sender) then sets none, with its reason.
 *
 * Pure: no DNS, no clock; the pct sample is supplied by the caller. */
#ifndef PD_DMARC_DISP_H
#define PD_DMARC_DISP_H

#include "dmarc.h"
#include "dmarc_disc.h"
#include "spfres.h"

enum dmarc_disp { DMARC_DISP_NONE = 0, DMARC_DISP_QUARANTINE, DMARC_DISP_REJECT };

/* A row setting: a fixed disposition, or "as the policy says". */
enum dmarc_disp_set {
    DMARC_SET_NONE = DMARC_DISP_NONE,
    DMARC_SET_QUARANTINE = DMARC_DISP_QUARANTINE,
    DMARC_SET_REJECT = DMARC_DISP_REJECT,
    DMARC_SET_POLICY, /* follow the published policy */
};

enum dmarc_result { DMARC_RES_NONE = 0, DMARC_RES_PASS, DMARC_RES_FAIL, DMARC_RES_TEMPERROR };

/* Which policy tag supplied the policy (after RFC fallbacks np -> sp -> p). */
enum dmarc_tag { DMARC_TAG_NONE = 0, DMARC_TAG_P, DMARC_TAG_SP, DMARC_TAG_NP };

/* Local overrides the caller found (trusted forwarder list, whitelisted
 * sender domain): disposition none, reported with the matching reason. */
enum dmarc_override { DMARC_OVR_NONE = 0, DMARC_OVR_TRUSTED_FORWARDER, DMARC_OVR_LOCAL_POLICY };

/* RFC 9990 policy override reason types (bit set). */
enum {
    DMARC_REASON_POLICY_TEST_MODE = 1 << 0,
    DMARC_REASON_SAMPLED_OUT = 1 << 1,
    DMARC_REASON_LOCAL_POLICY = 1 << 2,
    DMARC_REASON_TRUSTED_FORWARDER = 1 << 3,
};

/* The table's rows (for logs, metrics and the per-row settings). */
enum dmarc_row {
    DMARC_ROW_NO_POLICY = 0,
    DMARC_ROW_PASS,
    DMARC_ROW_TEMPERROR,
    DMARC_ROW_NXDOMAIN,
    DMARC_ROW_FAIL,
    DMARC_ROW_WEAK, /* softfail, neutral, none, permerror */
};

/* Per-row settings; dmarc_disp_cfg_defaults() gives product.md §2's defaults. */
struct dmarc_disp_cfg {
    enum dmarc_disp_set fail_reject;     /* SPF fail, policy reject: REJECT */
    enum dmarc_disp_set fail_quarantine; /* SPF fail, policy quarantine: QUARANTINE */
    enum dmarc_disp_set weak_reject;     /* weak SPF, policy reject: NONE */
    enum dmarc_disp_set weak_quarantine; /* weak SPF, policy quarantine: NONE */
    enum dmarc_disp_set nxdomain;        /* policy domain does not exist: POLICY */
};

struct dmarc_disp_in {
    enum spf_res spf;                     /* SPF result of the policy domain */
    const struct dmarc_disc_result *disc; /* borrowed; status FOUND/NONE/TEMPERROR */
    enum dmarc_exist exists;              /* of the policy domain */
    int pct_sample;                       /* 0..99, uniform; used in RFC 7489 mode only */
    enum dmarc_override override;
};

struct dmarc_disp_out {
    enum dmarc_result result;
    enum dmarc_disp disposition;
    enum dmarc_row row;
    enum dmarc_tag tag;       /* which tag supplied policy (NONE without a record) */
    enum dmarc_policy policy; /* the published policy for this domain (UNSET without a record) */
    unsigned reasons;         /* DMARC_REASON_* */
};

void dmarc_disp_cfg_defaults(struct dmarc_disp_cfg *c);

/* dmarc_disp_eval: apply the table. Never fails: missing/odd input degrades
 * to result none (no record) or temperror, disposition none. */
void dmarc_disp_eval(const struct dmarc_disp_cfg *cfg, const struct dmarc_disp_in *in,
                     struct dmarc_disp_out *out);

const char *dmarc_disp_name(enum dmarc_disp d);     /* "none", "quarantine", "reject" */
const char *dmarc_result_name(enum dmarc_result r); /* "none", "pass", "fail", "temperror" */
const char *dmarc_tag_name(enum dmarc_tag t);       /* "", "p", "sp", "np" */
const char *dmarc_row_name(enum dmarc_row r);       /* "no_policy", "pass", ... */
/* dmarc_reason_name: RFC 9990 name of one DMARC_REASON_* bit ("policy_test_mode", ...). */
const char *dmarc_reason_name(unsigned bit);
/* dmarc_disp_set_from_name: "none", "quarantine", "reject", "policy" -> value; -1 if unknown. */
int dmarc_disp_set_from_name(const char *name);

#endif
