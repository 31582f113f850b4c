/* rrow.h - what the daemon counts and the reporter reports: one RFC 9990
 * aggregate-report row (without its count) and the published-policy snapshot,
 * with an unambiguous text encoding used as Redis hash fields/values.
 *
 * Encoding: `key=value` items joined by '&', every value percent-encoded
 * (bytes outside [A-Za-z0-9._:@+-] become %XX), so no separator can appear in
 * a value and decoding is exact for any byte string (NUL excepted: values are
 * C strings). Keys appear in a fixed order; unknown keys are skipped when
 * decoding (forward compatible), a malformed item fails. Pure. */
#ifndef PD_RROW_H
#define PD_RROW_H

#include <stddef.h>

#define RROW_IP_MAX 46
#define RROW_DOMAIN_MAX 256
#define RROW_MAX_REASONS 4
#define RROW_COMMENT_MAX 128
#define RROW_ENC_MAX 2048 /* an encoded row or policy never exceeds this */
/* ...when its strings are validated names/values. With hostile bytes in every
 * field (each escaped as %XX) an encoding can reach ~4.3 KB: buffers that must
 * take anything use RROW_ENC_WORST. */
#define RROW_ENC_WORST 8192

/* RFC 9990 PolicyOverrideType values we use. */
enum rrow_reason {
    RROW_R_NONE = 0,
    RROW_R_LOCAL_POLICY,
    RROW_R_TRUSTED_FORWARDER,
    RROW_R_POLICY_TEST_MODE,
    RROW_R_SAMPLED_OUT,
    RROW_R_MAILING_LIST,
    RROW_R_OTHER,
};

struct rrow_reason_item {
    enum rrow_reason type;
    char comment[RROW_COMMENT_MAX]; /* "" = none */
};

/* One row: the grouping key of RFC 9990 <record> for our envelope DMARC. */
struct rrow {
    char source_ip[RROW_IP_MAX];
    char disposition[16]; /* "none", "quarantine", "reject" (RFC 9990 ActionDispositionType) */
    char dmarc_spf[8];    /* policy_evaluated/spf: "pass" or "fail" */
    char spf_domain[RROW_DOMAIN_MAX];
    char spf_scope[8];   /* "mfrom" or "helo" */
    char spf_result[16]; /* RFC 9990 SPFResultType: none neutral pass fail softfail temperror
                            permerror */
    char envelope_from[RROW_DOMAIN_MAX]; /* the MAIL FROM domain ("" for the null sender) */
    char header_from[RROW_DOMAIN_MAX];   /* = the policy domain (envelope DMARC) */
    struct rrow_reason_item reasons[RROW_MAX_REASONS];
    size_t nreasons;
};

/* The DMARC record in force for a policy domain that day (last seen wins). */
struct rrow_policy {
    char domain[RROW_DOMAIN_MAX]; /* the policy domain (published_policy/domain) */
    char p[16], sp[16], np[16];   /* "none"/"quarantine"/"reject"; sp/np "" when absent */
    char adkim[2], aspf[2];       /* "r" or "s" */
    char fo[32];
    char testing[2];           /* "y" or "n" */
    char psd[2];               /* "y", "n" or "u" */
    char discovery_method[16]; /* "treewalk" or "psl" */
    int pct;                   /* 0..100, RFC 7489 reports only */
    char rua[1024];            /* the record's rua value as published (comma-separated URIs) */
};

const char *rrow_reason_name(enum rrow_reason r); /* "local_policy", ... ; "" for NONE */
int rrow_reason_from_name(const char *name);      /* -1 when unknown */

/* rrow_encode / rrow_policy_encode: write the encoding (NUL-terminated) into
 * buf; returns its length or -1 if sz is too small. */
int rrow_encode(const struct rrow *r, char *buf, size_t sz);
int rrow_policy_encode(const struct rrow_policy *p, char *buf, size_t sz);
/* rrow_decode / rrow_policy_decode: 0, or -1 on malformed input (*out undefined). */
int rrow_decode(const char *s, size_t len, struct rrow *out);
int rrow_policy_decode(const char *s, size_t len, struct rrow_policy *out);

#endif
