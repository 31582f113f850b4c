/* dmarc_disp.c - the envelope-DMARC disposition table (see dmarc_disp.h). */
#include "dmarc_disp.h"

#include <string.h>
#include <strings.h>

void dmarc_disp_cfg_defaults(struct dmarc_disp_cfg *c)
{
    c->fail_reject = DMARC_SET_REJECT;
    c->fail_quarantine = DMARC_SET_QUARANTINE;
    /* DKIM, which we cannot see, could still have rescued these messages. */
    c->weak_reject = DMARC_SET_NONE;
    c->weak_quarantine = DMARC_SET_NONE;
    /* No SPF can pass for a name that does not exist, and no legitimate
     * sender uses one: do what the owner asked. */
    c->nxdomain = DMARC_SET_POLICY;
}

static enum dmarc_disp from_policy(enum dmarc_policy p)
{
    switch (p) {
    case DMARC_P_REJECT:
        return DMARC_DISP_REJECT;
    case DMARC_P_QUARANTINE:
        return DMARC_DISP_QUARANTINE;
    default:
        return DMARC_DISP_NONE;
    }
}

static enum dmarc_disp lower(enum dmarc_disp d)
{
    return d == DMARC_DISP_NONE ? DMARC_DISP_NONE : (enum dmarc_disp)(d - 1);
}

static enum dmarc_disp dmin(enum dmarc_disp a, enum dmarc_disp b)
{
    return a < b ? a : b;
}

/* select_policy: p at the policy domain itself; below it np (RFC 9989, when
 * the policy domain does not exist), else sp, else p. */
static void select_policy(const struct dmarc_disc_result *disc, enum dmarc_exist exists,
                          enum dmarc_policy *pol, enum dmarc_tag *tag)
{
    const struct dmarc_record *r = &disc->rec;

    *pol = r->p;
    *tag = DMARC_TAG_P;
    if (disc->at_policy_domain)
        return;
    if (exists == DMARC_EXIST_NO && disc->mode == DMARC_MODE_RFC9989 && r->np != DMARC_P_UNSET) {
        *pol = r->np;
        *tag = DMARC_TAG_NP;
    } else if (r->sp != DMARC_P_UNSET) {
        *pol = r->sp;
        *tag = DMARC_TAG_SP;
    }
}

static enum dmarc_disp row_setting(enum dmarc_disp_set set, enum dmarc_disp policy)
{
    if (set == DMARC_SET_POLICY)
        return policy;
    return dmin((enum dmarc_disp)set, policy); /* never harsher than the owner asked */
}

void dmarc_disp_eval(const struct dmarc_disp_cfg *cfg, const struct dmarc_disp_in *in,
                     struct dmarc_disp_out *out)
{
    const struct dmarc_disc_result *disc = in->disc;
    enum dmarc_disp P, L, T, S, fin;
    int sampled = 0;

    memset(out, 0, sizeof(*out));
    if (disc == NULL || disc->status == DMARC_DISC_NONE || disc->status == DMARC_DISC_PENDING) {
        out->row = DMARC_ROW_NO_POLICY;
        return;
    }
    if (disc->status == DMARC_DISC_TEMPERROR) {
        out->result = DMARC_RES_TEMPERROR;
        out->row = DMARC_ROW_TEMPERROR;
        return;
    }
    select_policy(disc, in->exists, &out->policy, &out->tag);
    if (in->spf == SPF_RES_PASS) {
        out->result = DMARC_RES_PASS;
        out->row = DMARC_ROW_PASS;
        return;
    }
    if (in->spf == SPF_RES_TEMPERROR) {
        out->result = DMARC_RES_TEMPERROR;
        out->row = DMARC_ROW_TEMPERROR;
        return;
    }
    out->result = DMARC_RES_FAIL;
    P = from_policy(out->policy);
    if (in->exists == DMARC_EXIST_NO && !disc->at_policy_domain) {
        out->row = DMARC_ROW_NXDOMAIN;
        L = row_setting(cfg->nxdomain, P);
    } else if (in->spf == SPF_RES_FAIL) {
        out->row = DMARC_ROW_FAIL;
        L = row_setting(P == DMARC_DISP_REJECT ? cfg->fail_reject : cfg->fail_quarantine, P);
    } else {
        out->row = DMARC_ROW_WEAK;
        L = row_setting(P == DMARC_DISP_REJECT ? cfg->weak_reject : cfg->weak_quarantine, P);
    }
    if (P == DMARC_DISP_NONE)
        L = DMARC_DISP_NONE;

    /* Owner-side softening: t=y (RFC 9989 §5.3 testing) and, in RFC 7489
     * mode only, pct sampling (RFC 7489 §6.6.4: the next lower policy). */
    T = disc->rec.testing ? lower(P) : P;
    if (disc->mode == DMARC_MODE_RFC7489 && disc->rec.pct < 100 && in->pct_sample >= disc->rec.pct)
        sampled = 1;
    S = sampled ? lower(T) : T;
    fin = dmin(L, S);

    /* A reason is reported when it made the disposition milder: without it
     * the result would have been harsher. */
    if (disc->rec.testing && dmin(L, sampled ? lower(P) : P) > fin)
        out->reasons |= DMARC_REASON_POLICY_TEST_MODE;
    if (sampled && dmin(L, T) > fin)
        out->reasons |= DMARC_REASON_SAMPLED_OUT;
    if (S > fin)
        out->reasons |= DMARC_REASON_LOCAL_POLICY;
    if (fin < P && out->reasons == 0) {
        /* A tie (e.g. t=y and a local setting both give quarantine): no single
         * cause, so name every one that lowered the disposition. */
        if (disc->rec.testing)
            out->reasons |= DMARC_REASON_POLICY_TEST_MODE;
        if (sampled)
            out->reasons |= DMARC_REASON_SAMPLED_OUT;
        if (L < P)
            out->reasons |= DMARC_REASON_LOCAL_POLICY;
    }
    if (in->override != DMARC_OVR_NONE && fin > DMARC_DISP_NONE) {
        out->reasons |= in->override == DMARC_OVR_TRUSTED_FORWARDER ? DMARC_REASON_TRUSTED_FORWARDER
                                                                    : DMARC_REASON_LOCAL_POLICY;
        fin = DMARC_DISP_NONE;
    }
    out->disposition = fin;
}

const char *dmarc_disp_name(enum dmarc_disp d)
{
    switch (d) {
    case DMARC_DISP_QUARANTINE:
        return "quarantine";
    case DMARC_DISP_REJECT:
        return "reject";
    default:
        return "none";
    }
}

const char *dmarc_result_name(enum dmarc_result r)
{
    switch (r) {
    case DMARC_RES_PASS:
        return "pass";
    case DMARC_RES_FAIL:
        return "fail";
    case DMARC_RES_TEMPERROR:
        return "temperror";
    default:
        return "none";
    }
}

const char *dmarc_tag_name(enum dmarc_tag t)
{
    switch (t) {
    case DMARC_TAG_P:
        return "p";
    case DMARC_TAG_SP:
        return "sp";
    case DMARC_TAG_NP:
        return "np";
    default:
        return "";
    }
}

const char *dmarc_row_name(enum dmarc_row r)
{
    switch (r) {
    case DMARC_ROW_PASS:
        return "pass";
    case DMARC_ROW_TEMPERROR:
        return "temperror";
    case DMARC_ROW_NXDOMAIN:
        return "nxdomain";
    case DMARC_ROW_FAIL:
        return "fail";
    case DMARC_ROW_WEAK:
        return "weak";
    default:
        return "no_policy";
    }
}

const char *dmarc_reason_name(unsigned bit)
{
    switch (bit) {
    case DMARC_REASON_POLICY_TEST_MODE:
        return "policy_test_mode";
    case DMARC_REASON_SAMPLED_OUT:
        return "sampled_out";
    case DMARC_REASON_LOCAL_POLICY:
        return "local_policy";
    case DMARC_REASON_TRUSTED_FORWARDER:
        return "trusted_forwarder";
    default:
        return "";
    }
}

int dmarc_disp_set_from_name(const char *name)
{
    static const struct {
        const char *n;
        enum dmarc_disp_set v;
    } t[] = {{"none", DMARC_SET_NONE},
             {"quarantine", DMARC_SET_QUARANTINE},
             {"reject", DMARC_SET_REJECT},
             {"policy", DMARC_SET_POLICY}};

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcasecmp(name, t[i].n) == 0)
            return (int)t[i].v;
    return -1;
}
