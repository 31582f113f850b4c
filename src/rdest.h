/* rdest.h - where an aggregate report may go: the `mailto:` destinations of a
 * published rua value, and the rule that decides which of them are external
 * (and so need the RFC 9989 authorisation record). Pure; no DNS here.
 *
 * External rule (simple and documented in policyd-dmarc-report(8)): a
 * destination domain is internal to a policy domain when the two are equal,
 * one is a subdomain of the other (suffix at a label boundary), or their last
 * two labels are equal (a stand-in for "same organizational domain" that needs
 * no Public Suffix List: under a multi-label public suffix such as co.uk it
 * treats every sibling as internal, which only ever skips a check, never
 * sends somewhere unasked: the record still names that address). Otherwise it
 * is external and must publish `<policy>._report._dmarc.<dest>` TXT
 * starting with v=DMARC1. */
#ifndef PD_RDEST_H
#define PD_RDEST_H

#include <stddef.h>

#define RDEST_MAX 8        /* DMARC_MAX_URIS */
#define RDEST_ADDR_MAX 320 /* local@domain */
#define RDEST_DOMAIN_MAX 256

struct rdest {
    char addr[RDEST_ADDR_MAX];     /* the address (percent-decoded, no "mailto:", no ?query) */
    char domain[RDEST_DOMAIN_MAX]; /* its domain, lower case, no trailing dot */
    unsigned long long max_bytes;  /* the "!size" limit; 0 = none */
};

/* rdest_parse: the mailto: URIs of rua (comma-separated, as published), in
 * order, duplicates (same address) merged keeping the smallest limit. Other
 * schemes and malformed addresses are skipped and counted in *nskipped (may
 * be NULL). Returns the number written to out (at most max). */
size_t rdest_parse(const char *rua, struct rdest *out, size_t max, size_t *nskipped);

/* rdest_internal: 1 when dest_domain needs no authorisation record for
 * policy_domain (rule above), else 0. Case-insensitive; trailing dots ignored. */
int rdest_internal(const char *policy_domain, const char *dest_domain);

/* rdest_auth_name: "<policy>._report._dmarc.<dest>" into buf. Length or -1. */
int rdest_auth_name(char *buf, size_t sz, const char *policy_domain, const char *dest_domain);

#endif
