/* test_dnsrr.c - reference counting and the IPC wire form of DNS RRsets,
 * including truncated and hostile encodings. */
#include <stdlib.h>
#include <string.h>

#include "dnsrr.h"
#include "tap.h"

int main(void)
{
    struct dns_result *r = dnsrr_new(DNS_OK, DNS_T_TXT, 300, 2), *d, *e;
    unsigned char *buf;
    size_t sz, used = 0;

    ok(r != NULL, "new");
    ok(dnsrr_set(r, 0, "v=spf1 -all", 11, 0) == 0, "set 0");
    ok(dnsrr_set(r, 1, "a\0b", 3, 7) == 0, "set 1 with NUL inside");
    ok(dnsrr_set(r, 2, "x", 1, 0) < 0, "set out of range refused");
    is_str((char *)r->rr[0].data, "v=spf1 -all", "data NUL-terminated");

    sz = dnsrr_encoded_size(r);
    buf = malloc(sz + 5);
    dnsrr_encode(r, buf);
    memcpy(buf + sz, "tail!", 5);
    d = dnsrr_decode(buf, sz + 5, &used);
    ok(d != NULL, "decode");
    is_int((long long)used, (long long)sz, "decode consumed exactly the encoding");
    is_int(d->status, DNS_OK, "status");
    is_int(d->type, DNS_T_TXT, "type");
    is_int(d->ttl, 300, "ttl");
    is_int((long long)d->n, 2, "count");
    ok(d->rr[1].len == 3 && memcmp(d->rr[1].data, "a\0b", 3) == 0, "binary data kept");
    is_int(d->rr[1].pref, 7, "pref kept");

    for (size_t cut = 0; cut < sz; cut++)
        if ((e = dnsrr_decode(buf, cut, &used)) != NULL) {
            ok(0, "truncated encoding (%zu of %zu bytes) must not decode", cut, sz);
            dnsrr_unref(&e);
        }
    ok(1, "no truncated prefix decodes");

    buf[0] = 9;
    ok(dnsrr_decode(buf, sz, &used) == NULL, "bad status refused");
    buf[0] = DNS_NXDOMAIN;
    ok(dnsrr_decode(buf, sz, &used) == NULL, "records with a negative status refused");
    buf[0] = DNS_OK;
    buf[7] = 0xff; /* n = huge */
    ok(dnsrr_decode(buf, sz, &used) == NULL, "absurd record count refused");

    e = dnsrr_ref(d);
    dnsrr_unref(&e);
    ok(e == NULL, "unref NULLs the pointer");
    is_int(d->refs, 1, "ref/unref balance");
    dnsrr_unref(&d);
    dnsrr_unref(&r);
    dnsrr_unref(&r); /* NULL: harmless */
    is_str(dnsrr_type_name(DNS_T_MX), "MX", "type name");
    is_str(dnsrr_type_name(4711), "TYPE4711", "unknown type name");
    is_str(dnsrr_status_name(DNS_SERVFAIL), "servfail", "status name");
    free(buf);
    return tap_done();
}
