/* test_rdest.c - rua destination parsing and the internal/external rule. */
#include <stdio.h>
#include <string.h>

#include "rdest.h"
#include "tap.h"

static void parse_cases(void)
{
    static const struct {
        const char *rua;
        size_t n, skipped;
        const char *addr0, *dom0;
        unsigned long long max0;
        const char *addr1;
    } t[] = {
        {"mailto:dmarc@example.com", 1, 0, "dmarc@example.com", "example.com", 0, NULL},
        {" mailto:a@Example.COM!10m , mailto:b@x.example", 2, 0, "a@example.com", "example.com",
         10ull << 20, "b@x.example"},
        {"MAILTO:a@example.com!500", 1, 0, "a@example.com", "example.com", 500, NULL},
        {"https://example.com/r, mailto:a@example.com", 1, 1, "a@example.com", "example.com", 0,
         NULL},
        {"mailto:r%2Bdmarc@example.com?subject=x", 1, 0, "r+dmarc@example.com", "example.com", 0,
         NULL},
        {"mailto:a@example.com!1k,mailto:a@example.com", 1, 0, "a@example.com", "example.com", 1024,
         NULL},
        {"mailto:a@example.com,mailto:a@example.com!2k", 1, 0, "a@example.com", "example.com", 2048,
         NULL},
        {"mailto:no-at-sign, mailto:a b@example.com, mailto:<a@example.com>", 0, 3, NULL, NULL, 0,
         NULL},
        {"mailto:a@bad..example, mailto:@example.com, mailto:a@", 0, 3, NULL, NULL, 0, NULL},
        {"mailto:a%0d%0aBcc:x@example.com@example.com", 0, 1, NULL, NULL, 0, NULL},
        {"", 0, 0, NULL, NULL, 0, NULL},
        {",,", 0, 0, NULL, NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct rdest d[RDEST_MAX];
        size_t skipped = 99, n = rdest_parse(t[i].rua, d, RDEST_MAX, &skipped);
        is_int((int)n, (int)t[i].n, "\"%s\": %zu destinations", t[i].rua, t[i].n);
        is_int((int)skipped, (int)t[i].skipped, "\"%s\": %zu skipped", t[i].rua, t[i].skipped);
        if (t[i].addr0 && n > 0) {
            is_str(d[0].addr, t[i].addr0, "\"%s\": address", t[i].rua);
            is_str(d[0].domain, t[i].dom0, "\"%s\": domain", t[i].rua);
            ok(d[0].max_bytes == t[i].max0, "\"%s\": limit %llu", t[i].rua, t[i].max0);
        }
        if (t[i].addr1 && n > 1)
            is_str(d[1].addr, t[i].addr1, "\"%s\": second address", t[i].rua);
    }
    /* more URIs than room: the rest are counted as skipped */
    struct rdest d[2];
    size_t sk = 0,
           n = rdest_parse("mailto:a@x.example,mailto:b@x.example,mailto:c@x.example", d, 2, &sk);
    is_int((int)n, 2, "capacity respected");
    is_int((int)sk, 1, "overflow counted as skipped");
}

static void internal_cases(void)
{
    static const struct {
        const char *pol, *dest;
        int internal;
    } t[] = {
        {"example.com", "example.com", 1},
        {"example.com", "EXAMPLE.com.", 1},
        {"example.com", "reports.example.com", 1},
        {"mail.example.com", "example.com", 1},
        {"a.example.com", "b.example.com", 1}, /* same last two labels */
        {"example.com", "example.net", 0},
        {"example.com", "otherexample.com", 0}, /* suffix but not at a label boundary */
        {"example.com", "dmarc.vendor.example", 0},
        {"example.co.uk", "other.co.uk", 1}, /* the documented simplification */
        {"", "example.com", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        is_int(rdest_internal(t[i].pol, t[i].dest), t[i].internal, "%s -> %s: %s", t[i].pol,
               t[i].dest, t[i].internal ? "internal" : "external");
    char buf[600];
    ok(rdest_auth_name(buf, sizeof(buf), "Example.com.", "vendor.example") > 0 &&
           strcmp(buf, "example.com._report._dmarc.vendor.example") == 0,
       "authorisation name");
    ok(rdest_auth_name(buf, 10, "example.com", "vendor.example") == -1, "too small a buffer");
}

int main(void)
{
    parse_cases();
    internal_cases();
    return tap_done();
}
