/* psl.h - the Public Suffix List adapter: the organizational domain of a name
 * for RFC 7489 mode (RFC 9989 mode uses the DNS tree walk instead). The only
 * module that includes libpsl.
 *
 * The list is loaded once (psl_open) and is read-only afterwards, so one
 * context may be shared by every thread. Both the text form
 * (public_suffix_list.dat) and libpsl's binary DAFSA form
 * (public_suffix_list.dafsa) are accepted: libpsl's loader tells them apart by
 * the file's header. The whole list is used, private section included (as
 * OpenDMARC and most DMARC receivers do). */
#ifndef PD_PSL_H
#define PD_PSL_H

#include <stddef.h>

/* Where Debian 12's `publicsuffix` package installs the list. */
#define PSL_DEFAULT_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

struct psl_ctx;

/* psl_open: load the list from `file` (NULL or "" = PSL_DEFAULT_FILE).
 * Returns a context the caller frees with psl_close(), or NULL with a reason
 * in err (file missing/unreadable, not a list, list without rules). */
struct psl_ctx *psl_open(const char *file, char *err, size_t errlen);

/* psl_org_domain: the registrable domain of `domain` (its organizational
 * domain in RFC 7489 terms: the public suffix plus one label) into out.
 *  - `domain` may be in any case and carry one trailing dot; A-labels
 *    (xn--...) and U-labels (UTF-8) are both accepted, and the answer is in
 *    the same form as the input (lowercased, no trailing dot);
 *  - unlisted TLDs follow the list's implicit "*" rule (example.example ->
 *    example.example).
 * Returns 0, or -1 when there is none: the name is itself a public suffix,
 * is empty/NULL, is not a valid name (empty label, leading dot, longer than
 * 253 octets, invalid UTF-8), or out is too small (then out is ""). */
int psl_org_domain(struct psl_ctx *ctx, const char *domain, char *out, size_t outlen);

/* psl_close: free the context and NULL the pointer (NULL-safe). */
void psl_close(struct psl_ctx **ctxp);

#endif
