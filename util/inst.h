/* inst.h - the per-message table: Postfix's `instance` attribute -> what we
 * decided for that message, so later requests of the same message (more RCPTs,
 * DATA, END-OF-MESSAGE) reuse the decision and get no duplicate header.
 *
 * Bounded (oldest entry evicted when full) and expiring (entries older than the
 * timeout are gone). The table owns each entry's data through the destructor
 * given at creation. Clock supplied by the caller (testable). Loop thread only. */
#ifndef PD_INST_H
#define PD_INST_H

#include <stddef.h>
#include <stdint.h>

struct inst_table;

/* inst_new: max entries (>= 1), timeout in ms, free_data called on each entry's
 * data when it is removed, evicted, expired or the table freed. */
struct inst_table *inst_new(size_t max, uint64_t timeout_ms, void (*free_data)(void *));
void inst_free(struct inst_table **tp);
/* inst_set_limits: new bound/timeout (SIGHUP); shrinking evicts the oldest. */
void inst_set_limits(struct inst_table *t, size_t max, uint64_t timeout_ms);

/* inst_get: the data stored for key, or NULL when absent or expired at now_ms. */
void *inst_get(struct inst_table *t, const char *key, uint64_t now_ms);
/* inst_put: store data for key (replacing and freeing an older value), stamped
 * now_ms. Returns 0, or -1 on allocation failure (then data is NOT taken). */
int inst_put(struct inst_table *t, const char *key, void *data, uint64_t now_ms);
/* inst_del: remove key (frees its data). */
void inst_del(struct inst_table *t, const char *key);
/* inst_expire: drop entries older than the timeout (call from a timer). */
size_t inst_expire(struct inst_table *t, uint64_t now_ms);
size_t inst_count(const struct inst_table *t);
uint64_t inst_evictions(const struct inst_table *t); /* removed because full */

#endif
