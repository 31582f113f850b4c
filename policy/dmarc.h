/* dmarc.h - DMARC records (RFC 9989, with RFC 7489 compatibility): the parsed
 * form every DMARC module shares, and the record parser. Pure: no DNS, no
 * clock, no allocation beyond the caller's struct.
 *
 * Semantics decided for policyd-dmarc (../shared/spec/product.md §3; the RFC
 * reasons are in docs/conformance.md, "DMARC record parsing"):
 *  - `v=DMARC1` must be the first tag (prefix match, not substring): "v"
 *    in any case, *WSP "=" *WSP, then exactly "DMARC1" (case-sensitive,
 *    RFC 9989 §4.7 and its %s"DMARC1"), then *WSP and ";" or the end.
 *    Anything else is not a DMARC record at all (NOT_DMARC);
 *  - tags p, sp, np, psd, t, adkim, aspf, fo, rua, ruf; rf, ri, pct only
 *    interpreted in RFC 7489 mode (parsed but ignored in RFC 9989 mode);
 *    unknown tags ignored; tag names and keyword values case-insensitive;
 *    tags in any order after v (both modes); RFC 7489 mode uses RFC 7489's
 *    value grammars where they differ (fo, the 64-bit bound of "!size");
 *  - a tag whose value is not valid for it, or a malformed tag-spec (empty,
 *    no "=", empty value), is ignored and the default kept (RFC 9989 §4.8);
 *    invalid URIs in rua/ruf are dropped one by one;
 *  - a tag name given twice -> INVALID (RFC 6376 §3.2, whose tag-value syntax
 *    DMARC uses); a control or non-ASCII byte (TAB excepted) -> INVALID;
 *  - a record without a valid `p`, or with an invalid `sp`/`np`: RFC 9989
 *    §4.10.1 rules, applied here: treated as p=none (p_implied = 1, sp and np
 *    UNSET) when rua holds at least one valid URI, otherwise INVALID ("no
 *    policy");
 *  - several DMARC records at one name -> no policy (the caller decides this;
 *    dmarc_select() helps). */
#ifndef PD_DMARC_H
#define PD_DMARC_H

#include <stddef.h>

enum dmarc_mode { DMARC_MODE_RFC9989 = 0, DMARC_MODE_RFC7489 };

enum dmarc_policy {
    DMARC_P_UNSET = 0, /* tag absent */
    DMARC_P_NONE,
    DMARC_P_QUARANTINE,
    DMARC_P_REJECT,
};

enum dmarc_align { DMARC_ALIGN_RELAXED = 0, DMARC_ALIGN_STRICT };
enum dmarc_psd { DMARC_PSD_U = 0, DMARC_PSD_Y, DMARC_PSD_N }; /* absent = u */

#define DMARC_MAX_URIS 8
#define DMARC_URI_MAX 256

struct dmarc_record {
    /* p: the policy to apply to the domain itself. After DMARC_PARSE_OK it is
     * never UNSET: an absent/invalid p (or invalid sp/np) with a valid rua
     * reads DMARC_P_NONE with p_implied = 1. UNSET only on other returns. */
    enum dmarc_policy p;
    int p_invalid;        /* a p= tag was present with an invalid value */
    int p_implied;        /* (added) p=none implied by RFC 9989 §4.10.1 (see p) */
    enum dmarc_policy sp; /* UNSET when absent: then p applies */
    enum dmarc_policy np; /* UNSET when absent: then sp (else p) applies */
    enum dmarc_psd psd;
    int testing; /* t=y */
    enum dmarc_align adkim, aspf;
    int pct;     /* 0..100; 100 when absent (RFC 7489 mode only; 100 in RFC 9989) */
    unsigned ri; /* seconds; 86400 when absent (RFC 7489 mode only) */
    char fo[32]; /* as published (trimmed), "0" when absent/invalid; meaningful
                    only when nruf > 0 (RFC 9989 §4.7) */
    /* rua/ruf: the valid URIs as published (trimmed), "!size" suffix kept
     * (see dmarc_uri_size()); any scheme (the reporter uses mailto: only).
     * URIs beyond DMARC_MAX_URIS or longer than DMARC_URI_MAX-1 are dropped. */
    char rua[DMARC_MAX_URIS][DMARC_URI_MAX];
    size_t nrua;
    char ruf[DMARC_MAX_URIS][DMARC_URI_MAX];
    size_t nruf;
    unsigned nignored; /* (added) syntax errors ignored per RFC 9989 §4.8 */
};

enum dmarc_parse {
    DMARC_PARSE_OK = 0,    /* a DMARC record; *out filled */
    DMARC_PARSE_NOT_DMARC, /* does not start with v=DMARC1: not a DMARC record at all */
    DMARC_PARSE_INVALID,   /* starts like one but is unusable (reason in err) */
};

/* dmarc_record_parse: parse one TXT record's text (character-strings already
 * joined; len bytes, may contain NUL -> invalid). txt need not be
 * NUL-terminated. err (may be NULL when errlen is 0) gets the reason for
 * INVALID/NOT_DMARC; after OK it describes the first ignored syntax error,
 * or is "" when there was none. *out is fully written on every return but is
 * meaningful only after OK. */
enum dmarc_parse dmarc_record_parse(const char *txt, size_t len, enum dmarc_mode mode,
                                    struct dmarc_record *out, char *err, size_t errlen);

/* (added) dmarc_record_is_dmarc: 1 when txt starts with the version tag as
 * defined above (the test RFC 9989 §4.10 uses to keep or discard a TXT
 * record at a _dmarc name), else 0. */
int dmarc_record_is_dmarc(const char *txt, size_t len);

/* (added) dmarc_select: the "several TXT records at one name" rule (RFC 9989
 * §4.10 steps 2 and 6). txts[i] has lens[i] bytes (lens NULL: NUL-terminated
 * strings). Records failing dmarc_record_is_dmarc() are discarded. Returns
 *  - DMARC_PARSE_NOT_DMARC when none is a DMARC record (err "no DMARC record");
 *  - DMARC_PARSE_INVALID with err "multiple DMARC records" when more than one
 *    is (all are discarded: no policy at this name);
 *  - else dmarc_record_parse() of the one (OK, or INVALID with its reason). */
enum dmarc_parse dmarc_select(const char *const *txts, const size_t *lens, size_t n,
                              enum dmarc_mode mode, struct dmarc_record *out, char *err,
                              size_t errlen);

/* (added) dmarc_uri_size: split a stored rua/ruf entry. Returns the length of
 * the URI without its "!size" suffix; *max_bytes (may be NULL) gets the size
 * limit in bytes (k/m/g/t = 2^10/2^20/2^30/2^40, no unit = bytes), 0 when
 * there is none, saturated at ULLONG_MAX. RFC 9989 calls the suffix obsolete
 * (reporters should ignore it); product.md asks us to honour it. */
size_t dmarc_uri_size(const char *uri, unsigned long long *max_bytes);

const char *dmarc_policy_name(enum dmarc_policy p); /* "none", "quarantine", "reject", "" */

#endif
