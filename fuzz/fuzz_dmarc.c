/* fuzz_dmarc.c - libFuzzer target for the DMARC record parser
 * (policy/dmarc.c): dmarc_record_parse, dmarc_record_is_dmarc, dmarc_select
 * and dmarc_uri_size.
 *
 * Input: byte 0 chooses the mode (bit 0: RFC 7489); the rest is parsed as one
 * record (NUL bytes included), then split at '\n' into up to 8 records for
 * dmarc_select, whose answer must follow its rule: none DMARC -> NOT_DMARC,
 * several -> INVALID "multiple DMARC records", one -> that record's parse. */
#include <stdint.h>
#include <string.h>

#include "dmarc.h"
#include "fuzz_util.h"

static int pol_ok(enum dmarc_policy p)
{
    return p >= DMARC_P_UNSET && p <= DMARC_P_REJECT;
}

static void check_uris(char (*u)[DMARC_URI_MAX], size_t n)
{
    FZ_CHECK(n <= DMARC_MAX_URIS);
    for (size_t i = 0; i < n; i++) {
        unsigned long long max;
        size_t l = strnlen(u[i], DMARC_URI_MAX);
        FZ_CHECK(l > 0 && l < DMARC_URI_MAX);
        FZ_CHECK(dmarc_uri_size(u[i], &max) <= l);
        FZ_CHECK(dmarc_uri_size(u[i], NULL) <= l);
    }
}

static void check_record(enum dmarc_parse r, const struct dmarc_record *rec, const char *err,
                         size_t errlen)
{
    FZ_CHECK(r == DMARC_PARSE_OK || r == DMARC_PARSE_NOT_DMARC || r == DMARC_PARSE_INVALID);
    FZ_CHECK(memchr(err, '\0', errlen) != NULL);
    if (r != DMARC_PARSE_OK) {
        FZ_CHECK(err[0] != '\0'); /* a reason is given */
        return;
    }
    FZ_CHECK(rec->p != DMARC_P_UNSET && pol_ok(rec->p));
    FZ_CHECK(pol_ok(rec->sp) && pol_ok(rec->np));
    FZ_CHECK(rec->psd >= DMARC_PSD_U && rec->psd <= DMARC_PSD_N);
    FZ_CHECK(rec->pct >= 0 && rec->pct <= 100);
    FZ_CHECK(memchr(rec->fo, '\0', sizeof(rec->fo)) != NULL && rec->fo[0] != '\0');
    /* p_implied with nrua == 0 is possible and documented: a valid rua URI
     * longer than DMARC_URI_MAX-1 implies p=none but is not stored. */
    check_uris((char(*)[DMARC_URI_MAX])rec->rua, rec->nrua);
    check_uris((char(*)[DMARC_URI_MAX])rec->ruf, rec->nruf);
    FZ_CHECK(dmarc_policy_name(rec->p)[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_record rec, one;
    char err[256], err1[256];
    enum dmarc_mode mode;
    enum dmarc_parse r;
    struct fz f;
    const char *txts[8];
    size_t lens[8], n = 0, ndmarc = 0, which = 0;

    if (size == 0)
        return 0;
    mode = (data[0] & 1) ? DMARC_MODE_RFC7489 : DMARC_MODE_RFC9989;
    f.p = data + 1;
    f.n = size - 1;

    /* the whole input as one record */
    memset(err, 'x', sizeof(err));
    r = dmarc_record_parse((const char *)f.p, f.n, mode, &rec, err, sizeof(err));
    check_record(r, &rec, err, sizeof(err));
    /* the version test of dmarc_select and the parser agree */
    FZ_CHECK((r == DMARC_PARSE_NOT_DMARC) == !dmarc_record_is_dmarc((const char *)f.p, f.n));
    /* no err buffer at all */
    (void)dmarc_record_parse((const char *)f.p, f.n, mode, &rec, NULL, 0);

    /* the lines as the TXT records at one name */
    while (f.n > 0 && n < 8) {
        size_t l;
        const uint8_t *s = fz_field(&f, '\n', &l);
        txts[n] = (const char *)s;
        lens[n] = l;
        if (dmarc_record_is_dmarc(txts[n], l)) {
            ndmarc++;
            which = n;
        }
        n++;
    }
    memset(err, 'x', sizeof(err));
    r = dmarc_select(txts, lens, n, mode, &rec, err, sizeof(err));
    check_record(r, &rec, err, sizeof(err));
    if (ndmarc == 0) {
        FZ_CHECK(r == DMARC_PARSE_NOT_DMARC);
    } else if (ndmarc > 1) {
        FZ_CHECK(r == DMARC_PARSE_INVALID && strcmp(err, "multiple DMARC records") == 0);
    } else {
        enum dmarc_parse r1 =
            dmarc_record_parse(txts[which], lens[which], mode, &one, err1, sizeof(err1));
        FZ_CHECK(r == r1 && strcmp(err, err1) == 0);
        if (r == DMARC_PARSE_OK) {
            FZ_CHECK(rec.p == one.p && rec.sp == one.sp && rec.np == one.np);
            FZ_CHECK(rec.psd == one.psd && rec.pct == one.pct && rec.ri == one.ri);
            FZ_CHECK(rec.nrua == one.nrua && rec.nruf == one.nruf);
            FZ_CHECK(strcmp(rec.fo, one.fo) == 0);
        }
    }
    return 0;
}
