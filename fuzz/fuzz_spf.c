/* fuzz_spf.c - libFuzzer target for the SPF path through libspf2: src/spfa.c's
 * spfa_eval() over an in-process zone (t/spf/zone.c) built from the input.
 * This is where remote record text meets libspf2 (CVE-2021-20314,
 * CVE-2021-33912/33913, CVE-2023-42118): fuzzed records, macros, exp= texts,
 * includes and redirects must never crash, hang or trip a sanitizer, in our
 * code or in the library behind our pre-screening.
 *
 * Input (lines, '\n'-separated; other bytes, NUL included, are data):
 *   line 1: client IP (v4, v6 or v4-mapped; unparsable -> 192.0.2.1)
 *   line 2: HELO name
 *   line 3: MAIL FROM address ("" = null sender)
 *   then one record per line: "<name> <TYPE> <data>", TYPE one of TXT A AAAA
 *   MX PTR CNAME TIMEOUT; MX data "<pref> <name>". The name "*" answers any
 *   question no other name answers (so macro-built names can be reached).
 * Checked: spfa_eval returns 0 with results in range, an explanation only with
 * a fail, NUL-terminated texts, and a bounded number of DNS questions
 * (RFC 7208 §4.6.4 limits: 10 DNS terms, 10 MX/PTR names, 2 void lookups). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsrr.h"
#include "fuzz_util.h"
#include "spfa.h"
#include "zone.h"

static struct zone *cur;
static unsigned nlookups;

/* zone_lookup plus the "*" catch-all. */
static struct dns_result *lookup(void *ctx, const char *name, uint16_t type)
{
    struct dns_result *r;
    (void)ctx;
    nlookups++;
    r = zone_lookup(cur, name, type);
    if (r != NULL && r->status == DNS_NXDOMAIN) {
        struct dns_result *w = zone_lookup(cur, "*", type);
        if (w != NULL && w->status != DNS_NXDOMAIN) {
            dnsrr_unref(&r);
            return w;
        }
        dnsrr_unref(&w);
    }
    return r;
}

static const struct {
    const char *name;
    uint16_t type;
} types[] = {
    {"TXT", DNS_T_TXT}, {"A", DNS_T_A},         {"AAAA", DNS_T_AAAA},      {"MX", DNS_T_MX},
    {"PTR", DNS_T_PTR}, {"CNAME", DNS_T_CNAME}, {"TIMEOUT", ZONE_TIMEOUT},
};

/* add_line: "<name> <TYPE> <data>"; malformed lines are skipped. */
static void add_line(struct zone *z, const uint8_t *s, size_t len)
{
    struct fz f = {s, len};
    char name[300], type[16];
    size_t dl;
    const uint8_t *data;

    fz_str(&f, ' ', name, sizeof(name));
    fz_str(&f, ' ', type, sizeof(type));
    data = fz_field(&f, '\n', &dl);
    if (name[0] == '\0')
        return;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(type, types[i].name) != 0)
            continue;
        switch (types[i].type) {
        case DNS_T_A:
        case DNS_T_AAAA: {
            char addr[64];
            struct fz af = {data, dl};
            fz_str(&af, '\n', addr, sizeof(addr));
            (void)zone_add_str(z, name, types[i].type, addr, 0);
            return;
        }
        case DNS_T_MX: {
            struct fz mf = {data, dl};
            char pref[8], target[300];
            fz_str(&mf, ' ', pref, sizeof(pref));
            fz_str(&mf, '\n', target, sizeof(target));
            (void)zone_add(z, name, DNS_T_MX, target, strlen(target),
                           (uint16_t)strtoul(pref, NULL, 10));
            return;
        }
        case DNS_T_PTR:
        case DNS_T_CNAME: {
            char target[300];
            struct fz tf = {data, dl};
            fz_str(&tf, '\n', target, sizeof(target));
            (void)zone_add(z, name, types[i].type, target, strlen(target), 0);
            return;
        }
        default: /* TXT (raw bytes) and TIMEOUT */
            (void)zone_add(z, name, types[i].type, data, dl, 0);
            return;
        }
    }
}

static int res_ok(enum spf_res r)
{
    return r >= SPF_RES_NONE && r <= SPF_RES_PERMERROR;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct spfa *a;
    struct fz f = {data, size};
    char ip[64], helo[300], sender[600];
    struct spf_verdict v;
    unsigned char tmp[16];
    int rc;

    if (a == NULL) {
        a = spfa_new("receiver.example.net", lookup, NULL);
        FZ_CHECK(a != NULL);
    }
    fz_str(&f, '\n', ip, sizeof(ip));
    fz_str(&f, '\n', helo, sizeof(helo));
    fz_str(&f, '\n', sender, sizeof(sender));
    if (inet_pton(AF_INET, ip, tmp) != 1 && inet_pton(AF_INET6, ip, tmp) != 1)
        snprintf(ip, sizeof(ip), "192.0.2.1");

    cur = zone_new();
    FZ_CHECK(cur != NULL);
    while (f.n > 0) {
        size_t l;
        const uint8_t *line = fz_field(&f, '\n', &l);
        add_line(cur, line, l);
    }
    nlookups = 0;
    memset(&v, 0xa5, sizeof(v));
    rc = spfa_eval(a, ip, helo, sender, &v);
    FZ_CHECK(rc == 0);
    FZ_CHECK(res_ok(v.mfrom) && res_ok(v.helo));
    FZ_CHECK(memchr(v.explanation, '\0', sizeof(v.explanation)) != NULL);
    FZ_CHECK(memchr(v.problem, '\0', sizeof(v.problem)) != NULL);
    FZ_CHECK(memchr(v.mfrom_domain, '\0', sizeof(v.mfrom_domain)) != NULL);
    FZ_CHECK(memchr(v.helo_domain, '\0', sizeof(v.helo_domain)) != NULL);
    FZ_CHECK(v.mfrom == SPF_RES_FAIL || v.explanation[0] == '\0');
    /* two identities, each bounded by the RFC 7208 §4.6.4 limits */
    if (nlookups > 400) {
        fprintf(stderr, "%u DNS lookups for one evaluation\n", nlookups);
        FZ_CHECK(nlookups <= 400);
    }
    zone_free(&cur);
    return 0;
}
