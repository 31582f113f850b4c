/* test_spfa.c - regression tests for the libspf2 adapter, on findings outside
 * the RFC 7208 suite: the two CVE-2023-42118 crash shapes (this process would
 * die if libspf2 saw them), loopback clients, over-long records, HELO and
 * verdict fields. DNS comes from the in-process test zone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spfa.h"
#include "tap.h"
#include "zone.h"

static struct zone *z;
static struct spfa *a;

static void txt(const char *name, const char *text)
{
    zone_add(z, name, DNS_T_TXT, text, strlen(text), 0);
}

static struct spf_verdict eval(const char *ip, const char *helo, const char *from)
{
    struct spf_verdict v;
    int rc = spfa_eval(a, ip, helo, from, &v);
    ok(rc == 0, "spfa_eval(%s, %s, %s) returns 0", ip, helo, from);
    return v;
}

/* verdict.uses_local: does the MAIL FROM verdict depend on the local part?
 * Each row is evaluated for alice@ and bob@ its domain (HELO helo). The zone
 * rows (name, type, data) are added first; A data is address text. */
static const struct {
    const char *what;
    const char *ip, *helo, *domain;
    const char *zone[4][3];
    int uses_local;
    const char *alice, *bob; /* expected mfrom results */
} local_rows[] = {
    {"ip4 only",
     "192.0.2.1",
     "",
     "ul1.example",
     {{"ul1.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"}},
     0,
     "pass",
     "pass"},
    {"exists:%{l}",
     "192.0.2.1",
     "",
     "ul2.example",
     {{"ul2.example", "TXT", "v=spf1 exists:%{l}.x.ul2.example -all"},
      {"alice.x.ul2.example", "A", "127.0.0.2"}},
     1,
     "pass",
     "fail"},
    {"include:%{s}",
     "192.0.2.1",
     "",
     "ul3.example",
     {{"ul3.example", "TXT", "v=spf1 include:%{s}.inc.example ~all"}},
     1,
     "permerror",
     "permerror"},
    {"redirect=%{l1r-}",
     "192.0.2.1",
     "",
     "ul4.example",
     {{"ul4.example", "TXT", "v=spf1 redirect=%{l1r-}.r.ul4.example"},
      {"alice.r.ul4.example", "TXT", "v=spf1 +all"},
      {"bob.r.ul4.example", "TXT", "v=spf1 -all"}},
     1,
     "pass",
     "fail"},
    {"a:%{d} mx:%{o} %{i} %{h}",
     "192.0.2.1",
     "mx.ul5.example",
     "ul5.example",
     {{"ul5.example", "TXT", "v=spf1 a:%{d}.ul5.example mx:%{o} exists:%{i}.%{h} -all"}},
     0,
     "permerror",
     "permerror"}, /* 3 void lookups; the problem names them */
    {"exp text with %{L}",
     "192.0.2.1",
     "",
     "ul6.example",
     {{"ul6.example", "TXT", "v=spf1 -all exp=why.ul6.example"},
      {"why.ul6.example", "TXT", "%{L} may not send"}},
     1,
     "fail",
     "fail"},
    {"exp text with %{o} %{c}",
     "192.0.2.1",
     "",
     "ul7.example",
     {{"ul7.example", "TXT", "v=spf1 -all exp=why.ul7.example"},
      {"why.ul7.example", "TXT", "%{o} does not send from %{c}"}},
     0,
     "fail",
     "fail"},
    {"exp= domain-spec with %{l}",
     "192.0.2.1",
     "",
     "ul8.example",
     {{"ul8.example", "TXT", "v=spf1 -all exp=%{l}.why.ul8.example"},
      {"alice.why.ul8.example", "TXT", "no"}},
     1,
     "fail",
     "fail"},
    {"%{l} inside an include",
     "192.0.2.1",
     "",
     "ul9.example",
     {{"ul9.example", "TXT", "v=spf1 include:inc.ul9.example -all"},
      {"inc.ul9.example", "TXT", "v=spf1 exists:%{l}.e.ul9.example ~all"}},
     1,
     "fail",
     "fail"},
    {"%{l} after a matching ip4: never expanded",
     "192.0.2.1",
     "",
     "ul10.example",
     {{"ul10.example", "TXT", "v=spf1 ip4:192.0.2.1 exists:%{l}.x.ul10.example -all"}},
     0,
     "pass",
     "pass"},
    {"%{l} reached when the ip4 does not match",
     "192.0.2.2",
     "",
     "ul10.example",
     {{NULL}},
     1,
     "fail",
     "fail"},
    {"ptr:%{l}",
     "192.0.2.1",
     "",
     "ul11.example",
     {{"ul11.example", "TXT", "v=spf1 ptr:%{l}.ul11.example -all"}},
     1,
     "fail",
     "fail"},
    {"%{l} only in the HELO record",
     "192.0.2.1",
     "h.ul12.example",
     "ul12.example",
     {{"ul12.example", "TXT", "v=spf1 ?all"},
      {"h.ul12.example", "TXT", "v=spf1 exists:%{l}.h.ul12.example -all"}},
     0,
     "neutral",
     "neutral"},
    {"%{s} in exists",
     "192.0.2.1",
     "",
     "ul13.example",
     {{"ul13.example", "TXT", "v=spf1 exists:%{s2}.ul13.example -all"}},
     1,
     "fail",
     "fail"},
};

static void test_uses_local(void)
{
    for (size_t i = 0; i < sizeof(local_rows) / sizeof(local_rows[0]); i++) {
        char from_a[64], from_b[64];
        struct spf_verdict va, vb;

        for (size_t k = 0; k < 4 && local_rows[i].zone[k][0]; k++) {
            const char *const *zr = local_rows[i].zone[k];

            if (strcmp(zr[1], "TXT") == 0)
                txt(zr[0], zr[2]);
            else
                zone_add_str(z, zr[0], DNS_T_A, zr[2], 0);
        }
        snprintf(from_a, sizeof(from_a), "alice@%s", local_rows[i].domain);
        snprintf(from_b, sizeof(from_b), "bob@%s", local_rows[i].domain);
        va = eval(local_rows[i].ip, local_rows[i].helo, from_a);
        vb = eval(local_rows[i].ip, local_rows[i].helo, from_b);
        is_int(va.uses_local, local_rows[i].uses_local, "%s: uses_local (alice)",
               local_rows[i].what);
        is_int(vb.uses_local, local_rows[i].uses_local, "%s: uses_local (bob)", local_rows[i].what);
        is_str(spf_res_name(va.mfrom), local_rows[i].alice, "%s: alice's result",
               local_rows[i].what);
        is_str(spf_res_name(vb.mfrom), local_rows[i].bob, "%s: bob's result", local_rows[i].what);
        if (local_rows[i].uses_local == 0) {
            /* a shared verdict must be right for every local part */
            ok(va.mfrom == vb.mfrom && va.helo == vb.helo &&
                   strcmp(va.explanation, vb.explanation) == 0 &&
                   strcmp(va.problem, vb.problem) == 0,
               "%s: the same verdict for both local parts", local_rows[i].what);
            ok(strstr(va.explanation, "alice") == NULL && strstr(va.problem, "alice") == NULL,
               "%s: no local part in explanation \"%s\" / problem \"%s\"", local_rows[i].what,
               va.explanation, va.problem);
        }
    }
    {
        struct spf_verdict v;

        /* the exp= text carries the local part when it says so */
        v = eval("192.0.2.1", "", "alice@ul6.example");
        is_str(v.explanation, "alice may not send", "%%{L} expanded in the explanation");
        /* the null sender and senders without a local part: postmaster is used */
        v = eval("192.0.2.1", "ul2.example", "");
        is_int(v.uses_local, 1, "null sender, %%{l} record: uses_local");
        ok(spfa_eval(a, "bad-ip", "", "alice@ul1.example", &v) == -1 && v.uses_local == 1,
           "an internal failure reports uses_local = 1");
    }
}

int main(void)
{
    struct spf_verdict v;
    char *rec;
    size_t i, o;

    z = zone_new();
    a = spfa_new("mx.receiver.example", zone_lookup, z);
    ok(a != NULL, "spfa_new");

    /* Crash shape 1: exists: + 127 %{d} + a ~4000-character label, as the
     * multi-string TXT record it must be (joined by the zone). */
    rec = malloc(8192);
    o = (size_t)sprintf(rec, "v=spf1 exists:");
    for (i = 0; i < 127; i++)
        o += (size_t)sprintf(rec + o, "%%{d}");
    for (i = 0; i < 4000; i++)
        rec[o++] = 'a';
    o += (size_t)sprintf(rec + o, ".example -all");
    zone_add(z, "crash1.example", DNS_T_TXT, rec, o, 0);
    v = eval("192.0.2.1", "mail.crash1.example", "x@crash1.example");
    is_str(spf_res_name(v.mfrom), "fail", "crash shape 1 (exists + 127 %%{d} + long label): fail");

    /* Crash shape 2: an exp= target of 43 x "x%{d}" + 250 characters. */
    o = 0;
    for (i = 0; i < 43; i++)
        o += (size_t)sprintf(rec + o, "x%%{d}");
    for (i = 0; i < 250; i++)
        rec[o++] = 'y';
    rec[o] = '\0';
    txt("crash2.example", "v=spf1 -all exp=why.crash2.example");
    zone_add(z, "why.crash2.example", DNS_T_TXT, rec, o, 0);
    v = eval("192.0.2.1", "", "x@crash2.example");
    is_str(spf_res_name(v.mfrom), "fail", "crash shape 2 (exp= with 43 x%%{d}): fail");
    ok(strncmp(v.explanation, "xcrash2.examplexcrash2.example", 30) == 0,
       "crash shape 2: explanation expanded by us (\"%.40s...\")", v.explanation);
    ok(strlen(v.explanation) == SPF_TEXT_MAX - 1, "explanation bounded to %d bytes",
       SPF_TEXT_MAX - 1);

    /* Loopback: no free pass; 127.0.0.1 and ::1 evaluated like any address. */
    txt("lo.example", "v=spf1 -all");
    v = eval("127.0.0.1", "", "x@lo.example");
    is_str(spf_res_name(v.mfrom), "fail", "127.0.0.1 gets no free pass");
    v = eval("::1", "", "x@lo.example");
    is_str(spf_res_name(v.mfrom), "fail", "::1 gets no free pass");
    txt("lo2.example", "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all");
    v = eval("127.0.0.7", "", "x@lo2.example");
    is_str(spf_res_name(v.mfrom), "pass", "loopback passes when the record lists it");
    v = eval("::ffff:127.0.0.7", "", "x@lo2.example");
    is_str(spf_res_name(v.mfrom), "pass", "v4-mapped client evaluated as IPv4");

    /* Over-long records: 80 ip4 terms (compiled > 511 bytes in libspf2), the
     * match at the end; 40 ip6 terms likewise. Evaluated correctly. */
    o = (size_t)sprintf(rec, "v=spf1");
    for (i = 0; i < 80; i++)
        o += (size_t)sprintf(rec + o, " ip4:198.51.100.%zu", i);
    o += (size_t)sprintf(rec + o, " ~all");
    txt("long4.example", rec);
    v = eval("198.51.100.79", "", "x@long4.example");
    is_str(spf_res_name(v.mfrom), "pass", "80 ip4 terms: the last one matches");
    v = eval("198.51.100.200", "", "x@long4.example");
    is_str(spf_res_name(v.mfrom), "softfail", "80 ip4 terms: no match reaches ~all");
    o = (size_t)sprintf(rec, "v=spf1");
    for (i = 0; i < 40; i++)
        o += (size_t)sprintf(rec + o, " ip6:2001:db8::%zx", i + 1);
    o += (size_t)sprintf(rec + o, " -all");
    txt("long6.example", rec);
    v = eval("2001:db8::28", "", "x@long6.example");
    is_str(spf_res_name(v.mfrom), "pass", "40 ip6 terms: the last one matches");

    /* Verdict fields: HELO identity, domains, problem, ttl. */
    txt("helo.example", "v=spf1 a -all");
    zone_add_str(z, "helo.example", DNS_T_A, "192.0.2.9", 0);
    txt("from.example", "v=spf1 ip4:192.0.2.0/24 -all");
    v = eval("192.0.2.9", "helo.example", "Bob@From.Example");
    is_str(spf_res_name(v.mfrom), "pass", "mfrom pass");
    is_str(spf_res_name(v.helo), "pass", "helo pass");
    is_str(v.mfrom_domain, "from.example", "mfrom_domain lower-cased");
    is_str(v.helo_domain, "helo.example", "helo_domain");
    is_int(v.ttl, 300, "ttl = min TTL of the answers used");
    v = eval("192.0.2.99", "helo.example", "");
    is_str(spf_res_name(v.mfrom), "fail", "null sender: postmaster@helo evaluated");
    is_str(v.mfrom_domain, "helo.example", "null sender: mfrom_domain is the HELO name");
    v = eval("192.0.2.9", "[192.0.2.9]", "x@from.example");
    is_str(spf_res_name(v.helo), "none", "HELO literal: helo none");
    txt("bad.example", "v=spf1 ip4:192.0.2.1/033 -all");
    v = eval("192.0.2.9", "", "x@bad.example");
    is_str(spf_res_name(v.mfrom), "permerror", "invalid record: permerror");
    ok(strstr(v.problem, "CIDR") != NULL, "problem names the cause: %s", v.problem);
    zone_add(z, "slow.example", ZONE_TIMEOUT, "", 0, 0);
    v = eval("192.0.2.9", "", "x@slow.example");
    is_str(spf_res_name(v.mfrom), "temperror", "DNS timeout: temperror");
    ok(strstr(v.problem, "timeout") != NULL, "problem: %s", v.problem);
    is_int(v.ttl, 0, "temperror verdict is not reusable (ttl 0)");
    ok(spfa_eval(a, "not-an-ip", "", "x@from.example", &v) == -1 && v.mfrom == SPF_RES_TEMPERROR,
       "bad client address: -1 and temperror");

    /* Limits across includes: 6 + 6 DNS terms. */
    txt("inc1.example", "v=spf1 include:inc2.example a a a a a -all");
    txt("inc2.example", "v=spf1 a a a a a ?all");
    zone_add_str(z, "inc1.example", DNS_T_A, "192.0.2.200", 0);
    zone_add_str(z, "inc2.example", DNS_T_A, "192.0.2.201", 0);
    v = eval("192.0.2.9", "", "x@inc1.example");
    is_str(spf_res_name(v.mfrom), "permerror", "11 DNS terms across an include: permerror");

    test_uses_local();

    free(rec);
    spfa_free(&a);
    ok(a == NULL, "spfa_free NULLs the pointer");
    zone_free(&z);
    return tap_done();
}
