/* spfres.h - SPF results and the verdict of one evaluation: plain data shared
 * by the SPF adapter (worker side), the worker pool (main side), header
 * formatting and the decision code. No behaviour here but naming. */
#ifndef PD_SPFRES_H
#define PD_SPFRES_H

#include <stdint.h>

/* RFC 7208 §2.6 results. */
enum spf_res {
    SPF_RES_NONE = 0,
    SPF_RES_NEUTRAL,
    SPF_RES_PASS,
    SPF_RES_FAIL,
    SPF_RES_SOFTFAIL,
    SPF_RES_TEMPERROR,
    SPF_RES_PERMERROR,
};

/* spf_res_name: RFC 7208 name in lower case ("pass", "softfail", ...). */
const char *spf_res_name(enum spf_res r);
/* spf_res_from_name: parse a lower/upper-case name; -1 when unknown. */
int spf_res_from_name(const char *name);

#define SPF_DOMAIN_MAX 256
#define SPF_TEXT_MAX 512

/* The outcome of evaluating one (client IP, HELO, MAIL FROM) triple. */
struct spf_verdict {
    enum spf_res mfrom;                /* MAIL FROM identity (or postmaster@HELO for <>) */
    enum spf_res helo;                 /* HELO identity; NONE when HELO is empty/not a domain */
    char mfrom_domain[SPF_DOMAIN_MAX]; /* the domain evaluated for mfrom ("" if none) */
    char helo_domain[SPF_DOMAIN_MAX];  /* the HELO name evaluated ("" if none) */
    /* Explanation for a fail (RFC 7208 §6.2, expanded), "" otherwise. Untrusted
     * remote text: sanitise before use in a reply. */
    char explanation[SPF_TEXT_MAX];
    /* Short machine-made reason for a permerror/temperror, e.g. "dns timeout
     * for example.com/TXT", "record too long", "" otherwise. */
    char problem[SPF_TEXT_MAX];
    uint32_t ttl; /* seconds this verdict may be reused (min TTL of the answers used) */
    /* 1 when the MAIL FROM evaluation expanded a macro carrying the sender's
     * local part (%{l} %{L} %{s} %{S}, in any record, include, redirect,
     * domain-spec or the explanation), or could not tell; 0 when the verdict
     * is the same for every local part at the domain (the SPF verdict cache
     * may then share it, see src/spfw.c). */
    int uses_local;
};

#endif
