/* fuzz_rrow.c - libFuzzer target for the report-row encoding
 * (redis/rrow.c), both directions:
 *  - decode: any bytes as a row and as a policy; what decodes must encode
 *    (into RROW_ENC_WORST) and decode again to the same struct;
 *  - encode: a row and a policy filled from the input (any bytes but NUL in
 *    every string field) must encode, decode and compare equal, and the
 *    encoding must hold only the safe bytes, '&', '=' and "%XX". */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "rrow.h"

static void check_encoding(const char *s, int n)
{
    FZ_CHECK(n >= 0 && (size_t)n == strlen(s));
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        FZ_CHECK(c > 0x20 && c < 0x7f);
        if (c == '%') { /* "%XX", upper-case hex */
            FZ_CHECK(i + 2 < n && strchr("0123456789ABCDEF", s[i + 1]) != NULL &&
                     strchr("0123456789ABCDEF", s[i + 2]) != NULL);
        }
    }
}

static void roundtrip_row(const struct rrow *a)
{
    static char buf[RROW_ENC_WORST];
    static struct rrow b;
    int n = rrow_encode(a, buf, sizeof(buf));
    FZ_CHECK(n >= 0);
    check_encoding(buf, n);
    FZ_CHECK(rrow_decode(buf, (size_t)n, &b) == 0);
    FZ_CHECK(memcmp(a, &b, sizeof(b)) == 0);
    /* a buffer one byte short is refused, not overrun */
    FZ_CHECK(rrow_encode(a, buf, (size_t)n) == -1);
}

static void roundtrip_policy(const struct rrow_policy *a)
{
    static char buf[RROW_ENC_WORST];
    static struct rrow_policy b;
    int n = rrow_policy_encode(a, buf, sizeof(buf));
    FZ_CHECK(n >= 0);
    check_encoding(buf, n);
    FZ_CHECK(rrow_policy_decode(buf, (size_t)n, &b) == 0);
    FZ_CHECK(memcmp(a, &b, sizeof(b)) == 0);
    FZ_CHECK(rrow_policy_encode(a, buf, (size_t)n) == -1);
}

/* fill: a string field from the next '\n'-separated input field. */
#define FILL(f, field) fz_str((f), '\n', (field), sizeof(field))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rrow row, row2;
    static struct rrow_policy pol, pol2;
    struct fz f = {data, size};

    /* direction 1: decode arbitrary text */
    if (rrow_decode((const char *)data, size, &row) == 0) {
        FZ_CHECK(row.nreasons <= RROW_MAX_REASONS);
        for (size_t i = 0; i < row.nreasons; i++)
            FZ_CHECK(row.reasons[i].type > RROW_R_NONE && row.reasons[i].type <= RROW_R_OTHER);
        roundtrip_row(&row);
    }
    if (rrow_policy_decode((const char *)data, size, &pol) == 0)
        roundtrip_policy(&pol);

    /* direction 2: encode structs built from the input */
    uint8_t b = fz_byte(&f);
    memset(&row2, 0, sizeof(row2));
    FILL(&f, row2.source_ip);
    FILL(&f, row2.disposition);
    FILL(&f, row2.dmarc_spf);
    FILL(&f, row2.spf_domain);
    FILL(&f, row2.spf_scope);
    FILL(&f, row2.spf_result);
    FILL(&f, row2.envelope_from);
    FILL(&f, row2.header_from);
    row2.nreasons = b % (RROW_MAX_REASONS + 1);
    for (size_t i = 0; i < row2.nreasons; i++) {
        row2.reasons[i].type = (enum rrow_reason)(1 + fz_byte(&f) % RROW_R_OTHER);
        FILL(&f, row2.reasons[i].comment);
    }
    roundtrip_row(&row2);

    memset(&pol2, 0, sizeof(pol2));
    FILL(&f, pol2.domain);
    FILL(&f, pol2.p);
    FILL(&f, pol2.sp);
    FILL(&f, pol2.np);
    FILL(&f, pol2.adkim);
    FILL(&f, pol2.aspf);
    FILL(&f, pol2.fo);
    FILL(&f, pol2.testing);
    FILL(&f, pol2.psd);
    FILL(&f, pol2.discovery_method);
    FILL(&f, pol2.rua);
    uint32_t pct = 0;
    for (int i = 0; i < 4; i++)
        pct = pct << 8 | fz_byte(&f);
    pol2.pct = (int)pct;
    roundtrip_policy(&pol2);
    return 0;
}
