/* cidr.h - lists of IPv4/IPv6 networks (trusted_networks, trusted_forwarders,
 * greylist client whitelists) and matching an address against them.
 * An IPv4-mapped IPv6 address (::ffff:192.0.2.1) matches IPv4 networks. Pure. */
#ifndef PD_CIDR_H
#define PD_CIDR_H

#include <stddef.h>

struct cidr_list;

/* cidr_list_parse: items like "192.0.2.0/24", "2001:db8::/32", "192.0.2.7"
 * (host), "[2001:db8::1]/128". Host bits set below the prefix are an error
 * (a typo more often than intent). Returns a list (caller frees), or NULL with
 * "item: reason" in err. n == 0 gives an empty list. */
struct cidr_list *cidr_list_parse(const char *const *items, size_t n, char *err, size_t errlen);
void cidr_list_free(struct cidr_list **lp);
/* cidr_list_match: 1 when the address text (v4, v6, v4-mapped v6) is in the
 * list, 0 when not or when it is not an address. */
int cidr_list_match(const struct cidr_list *l, const char *addr);
size_t cidr_list_count(const struct cidr_list *l);

#endif
