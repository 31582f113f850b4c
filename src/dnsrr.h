/* dnsrr.h - the DNS answer as every module sees it: an immutable, reference-
 * counted RRset of one type for one name, plus its wire encoding for the IPC
 * between the main process and the SPF workers.
 *
 * Data per type (rr[i].data, rr[i].len):
 *   A     4 bytes, network order        AAAA  16 bytes
 *   TXT   the RR's character-strings concatenated (may contain NUL bytes;
 *         always followed by a terminating NUL not counted in len)
 *   MX    exchange name, text, no trailing dot, NUL-terminated; rr[i].pref set
 *   PTR, CNAME, NS   target name, text, no trailing dot, NUL-terminated
 * Names are lower-case ASCII as received (IDN stays in A-label form).
 *
 * Ownership: dnsrr_new() returns one reference; dnsrr_ref() adds one;
 * dnsrr_unref(&p) drops one and NULLs p. The object is never modified after the
 * creator filled it (so sharing it between waiters needs no lock; the count is
 * atomic). */
#ifndef PD_DNSRR_H
#define PD_DNSRR_H

#include <stddef.h>
#include <stdint.h>

/* Outcome of one lookup. TIMEOUT and SERVFAIL are both "temporary": callers
 * map them to temperror, never to "no record". */
enum dns_status {
    DNS_OK = 0,   /* n >= 1 records of the asked type */
    DNS_NODATA,   /* name exists, no record of that type (n == 0) */
    DNS_NXDOMAIN, /* name does not exist (n == 0) */
    DNS_SERVFAIL, /* server said SERVFAIL/REFUSED/... or the answer was unusable */
    DNS_TIMEOUT,  /* no answer within the per-query timeout and retries */
};

/* RR types we use (numeric values are the IANA ones). */
enum {
    DNS_T_A = 1,
    DNS_T_NS = 2,
    DNS_T_CNAME = 5,
    DNS_T_PTR = 12,
    DNS_T_MX = 15,
    DNS_T_TXT = 16,
    DNS_T_AAAA = 28,
    DNS_T_SPF = 99,
};

struct dns_rr {
    unsigned char *data; /* owned by the dns_result */
    size_t len;
    uint16_t pref; /* MX preference, 0 otherwise */
};

struct dns_result {
    int refs; /* atomic; use dnsrr_ref/dnsrr_unref */
    enum dns_status status;
    uint16_t type;
    uint32_t ttl; /* seconds the answer may be cached (negative TTL for NODATA/NXDOMAIN) */
    size_t n;
    struct dns_rr rr[]; /* n entries */
};

/* dnsrr_new: a result with room for n records, all data NULL. Returns NULL on
 * allocation failure. */
struct dns_result *dnsrr_new(enum dns_status status, uint16_t type, uint32_t ttl, size_t n);
/* dnsrr_set: copy len bytes into rr[i] (adds a terminating NUL). 0 or -1 (ENOMEM). */
int dnsrr_set(struct dns_result *r, size_t i, const void *data, size_t len, uint16_t pref);
struct dns_result *dnsrr_ref(struct dns_result *r);
void dnsrr_unref(struct dns_result **rp);

const char *dnsrr_status_name(enum dns_status s); /* "ok", "nodata", "nxdomain", ... */
const char *dnsrr_type_name(uint16_t type);       /* "A", "TXT", ... or "TYPE<n>" (static buf) */

/* Wire form (for the worker IPC): a self-delimiting byte string.
 * dnsrr_encoded_size(r) bytes are written by dnsrr_encode(r, buf).
 * dnsrr_decode(buf, len, &used) returns a new result (one reference) or NULL on
 * malformed input; *used is set to the bytes consumed. */
size_t dnsrr_encoded_size(const struct dns_result *r);
void dnsrr_encode(const struct dns_result *r, unsigned char *buf);
struct dns_result *dnsrr_decode(const unsigned char *buf, size_t len, size_t *used);

#endif
