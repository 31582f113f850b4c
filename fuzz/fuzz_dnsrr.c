/* fuzz_dnsrr.c - libFuzzer target for the DNS answer wire form of the worker
 * IPC (src/dnsrr.c): dnsrr_decode must refuse or accept any bytes safely, and
 * what it accepts must re-encode to exactly the bytes it consumed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsrr.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t used = (size_t)-1, used2 = (size_t)-1;
    struct dns_result *r = dnsrr_decode(data, size, &used), *r2;
    unsigned char *buf;

    if (r == NULL)
        return 0;
    FZ_CHECK(used <= size && used >= 11);
    FZ_CHECK(r->refs >= 1 && r->status <= DNS_TIMEOUT);
    FZ_CHECK(r->n == 0 || r->status == DNS_OK);
    for (size_t i = 0; i < r->n; i++) {
        FZ_CHECK(r->rr[i].len == 0 || r->rr[i].data != NULL);
        if (r->rr[i].data != NULL)
            FZ_CHECK(r->rr[i].data[r->rr[i].len] == '\0'); /* the promised terminator */
    }
    FZ_CHECK(dnsrr_encoded_size(r) == used);
    buf = malloc(used);
    FZ_CHECK(buf != NULL);
    dnsrr_encode(r, buf);
    FZ_CHECK(memcmp(buf, data, used) == 0);
    r2 = dnsrr_decode(buf, used, &used2);
    FZ_CHECK(r2 != NULL && used2 == used);
    FZ_CHECK(r2->status == r->status && r2->type == r->type && r2->ttl == r->ttl && r2->n == r->n);
    (void)dnsrr_status_name(r->status);
    (void)dnsrr_type_name(r->type);
    struct dns_result *r3 = dnsrr_ref(r2);
    FZ_CHECK(r3 == r2);
    dnsrr_unref(&r3);
    FZ_CHECK(r3 == NULL);
    dnsrr_unref(&r2);
    FZ_CHECK(r2 == NULL);
    dnsrr_unref(&r);
    free(buf);
    return 0;
}
