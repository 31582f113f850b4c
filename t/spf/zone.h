/* zone.h - an in-process DNS zone for the SPF tests: answers spfa_lookup_fn
 * calls from a list of records, as a resolver would (CNAME chains followed,
 * NXDOMAIN vs NODATA, names marked TIMEOUT time out). Test code only. */
#ifndef PD_T_ZONE_H
#define PD_T_ZONE_H

#include <stddef.h>
#include <stdint.h>

#include "dnsrr.h"

#define ZONE_TIMEOUT 0 /* pseudo type: queries for the name time out */

struct zone;

struct zone *zone_new(void);
void zone_free(struct zone **zp);
/* zone_add: data as in dnsrr.h (A 4 bytes, AAAA 16, TXT raw, names text). */
int zone_add(struct zone *z, const char *name, uint16_t type, const void *data, size_t len,
             uint16_t pref);
/* zone_add_str: like zone_add; A/AAAA data given as address text. */
int zone_add_str(struct zone *z, const char *name, uint16_t type, const char *data, uint16_t pref);
/* zone_lookup: an spfa_lookup_fn; ctx is the struct zone. */
struct dns_result *zone_lookup(void *ctx, const char *name, uint16_t type);
/* zone_queries: lookups answered so far. */
unsigned zone_queries(const struct zone *z);

#endif
