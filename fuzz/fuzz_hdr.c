/* fuzz_hdr.c - libFuzzer target for the header lines we PREPEND
 * (policy/hdr.c) and the sanitiser under them (policy/san.c).
 *
 * Input: byte 0 = SPF result / identity / buffer-size choice, then up to 9
 * '\n'-separated fields (any other byte, controls and invalid UTF-8 included)
 * used as every remote-controlled value of struct hdr_spf and hdr_dmarc.
 * Checked: each header is "Name: value", one line, no byte < 0x20 or DEL,
 * the returned length is the string length and stays within HDR_MAX (HDR_REJECT_TEXT_MAX for
 * the reject text); a too-small buffer gives -1 or a fitting string; san_text
 * output is clean (san_is_clean), bounded and NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "hdr.h"
#include "san.h"

static void check_line(const char *buf, int n, size_t sz, size_t max, const char *name)
{
    if (n < 0)
        return;
    FZ_CHECK((size_t)n == strlen(buf) && (size_t)n < sz && (size_t)n <= max);
    FZ_CHECK(fz_no_ctl(buf, (size_t)n));
    if (name != NULL) {
        size_t nl = strlen(name);
        FZ_CHECK(strncmp(buf, name, nl) == 0 && buf[nl] == ':' && buf[nl + 1] == ' ');
    }
}

static const char *const policies[] = {"none", "quarantine", "reject", ""};
static const char *const spfs[] = {"none",     "neutral",   "pass",      "fail",
                                   "softfail", "temperror", "permerror", ""};
#define PICK(tab, x) (tab)[(x) % (sizeof(tab) / sizeof((tab)[0]))]

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int raw_words = fz_strict();
    struct fz f = {data, size};
    char fld[9][400];
    char buf[HDR_MAX + 64];
    uint8_t b = fz_byte(&f);
    size_t szs[2] = {sizeof(buf), 16 + (size_t)(b >> 3) * 16}; /* roomy and maybe too small */

    for (int i = 0; i < 9; i++)
        fz_str(&f, '\n', fld[i], sizeof(fld[i]));

    struct hdr_spf h = {
        .result = (enum spf_res)(b % 7),
        .identity_helo = (b >> 3) & 1,
        .client_ip = fld[0],
        .helo = fld[1],
        .envelope_from = fld[2],
        .domain = fld[3],
        .receiver = fld[4],
        .problem = fld[5],
        .authserv_id = fld[6],
    };
    struct hdr_dmarc d = {
        .result = fld[7],
        .receiver = fld[4],
        .policy_domain = fld[3],
        .record_domain = fld[8],
        .policy = fld[5],
        .tag = fld[6],
        .spf = fld[1],
        .disposition = fld[2],
        .reasons = fld[0],
    };
    for (int k = 0; k < 2; k++) {
        size_t sz = szs[k] < sizeof(buf) ? szs[k] : sizeof(buf);
        int n;
        n = hdr_received_spf(buf, sz, &h);
        FZ_CHECK(k == 1 || n >= 0);
        check_line(buf, n, sz, HDR_MAX, "Received-SPF");
        n = hdr_auth_results(buf, sz, &h);
        FZ_CHECK(k == 1 || n >= 0);
        check_line(buf, n, sz, HDR_MAX, "Authentication-Results");
        n = hdr_envelope_dmarc(buf, sz, &d);
        FZ_CHECK(k == 1 || n >= 0);
        check_line(buf, n, sz, HDR_MAX, HDR_ENVELOPE_DMARC);
        /* The only caller (src/vd.c) passes fixed words as policy and spf;
         * FUZZ_STRICT=1 passes input fields instead, which checks the header's
         * wider contract ("every argument sanitised, one line, at most
         * HDR_REJECT_TEXT_MAX bytes"). */
        const char *pol = raw_words ? fld[5] : PICK(policies, b >> 2);
        const char *spf = raw_words ? fld[1] : PICK(spfs, b >> 4);
        n = hdr_reject_text(buf, sz, fld[3], pol, spf, fld[0]);
        FZ_CHECK(k == 1 || n >= 0);
        /* hdr.h promises HDR_REJECT_TEXT_MAX, within RFC 5321's 512-octet
         * reply line ("550 5.7.1 " + text + CRLF). */
        check_line(buf, n, sz, HDR_REJECT_TEXT_MAX, NULL);
    }

    /* san_text on the raw input, with a few limits and buffer sizes */
    char raw[600], out[600];
    size_t rl = size < sizeof(raw) - 1 ? size : sizeof(raw) - 1;
    memcpy(raw, data, rl);
    raw[rl] = '\0';
    size_t maxl[3] = {0, 7 + (b & 63), sizeof(out) - 1};
    for (int k = 0; k < 3; k++) {
        size_t osz = k == 1 ? 1 + (size_t)(b & 31) : sizeof(out);
        memset(out, 'x', sizeof(out));
        size_t n = san_text(out, osz, raw, maxl[k]);
        FZ_CHECK(n < osz && strlen(out) == n);
        FZ_CHECK(san_is_clean(out));
        FZ_CHECK(fz_no_ctl(out, n));
    }
    (void)san_domain(raw, 0);
    (void)san_domain(raw, 1);
    if (san_domain(raw, 0))
        FZ_CHECK(san_domain(raw, 1) && strlen(raw) <= 254);
    return 0;
}
