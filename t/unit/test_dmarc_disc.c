/* test_dmarc_disc.c - the DMARC discovery state machine, table-driven: each
 * case is a mock zone (TXT answers per `_dmarc` name; absent names are
 * NXDOMAIN), a policy domain and method, the exact question sequence we
 * expect, and the outcome (status, record domain, org domain, p/sp place). */
#include "dmarc_disc.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

struct zent {
    const char *name; /* "_dmarc.x" */
    enum dmarc_disc_answer ans;
    const char *txt[4];
};

struct tcase {
    const char *label;
    const char *pd;
    enum dmarc_disc_method method;
    struct zent zone[6];
    const char *q[10]; /* expected questions, in order */
    enum dmarc_disc_status status;
    const char *record_domain;
    const char *org_domain;
    int at_pd;
    int psd_policy;
    enum dmarc_policy p; /* p of the record applied (FOUND) */
    int pd_exists;
};

#define OK DMARC_ANS_OK
#define NODATA DMARC_ANS_NODATA
#define TEMP DMARC_ANS_TEMPFAIL
#define FOUND DMARC_DISC_FOUND
#define NONE DMARC_DISC_NONE
#define TEMPERR DMARC_DISC_TEMPERROR
#define TW DMARC_DISC_TREEWALK
#define PSL DMARC_DISC_PSL

static const struct tcase cases[] = {
    {"record at the policy domain",
     "example.com",
     TW,
     {{"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.example.com"},
     FOUND,
     "example.com",
     "",
     1,
     0,
     DMARC_P_REJECT,
     1},
    {"subdomain walks to the parent and on to the TLD",
     "mail.example.com",
     TW,
     {{"_dmarc.example.com", OK, {"v=DMARC1; p=quarantine"}}},
     {"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_QUARANTINE,
     0},
    {"13 labels: 8 questions, skipping to 7 labels (RFC 9989 B.4.2)",
     "a.b.c.d.e.f.g.h.i.j.k.example.com",
     TW,
     {{"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com", "_dmarc.g.h.i.j.k.example.com",
      "_dmarc.h.i.j.k.example.com", "_dmarc.i.j.k.example.com", "_dmarc.j.k.example.com",
      "_dmarc.k.example.com", "_dmarc.example.com", "_dmarc.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_REJECT,
     0},
    {"13 labels, no record anywhere (RFC 9989 §4.10 example)",
     "a.b.c.d.e.f.g.h.i.j.mail.example.com",
     TW,
     {{NULL}},
     {"_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com", "_dmarc.g.h.i.j.mail.example.com",
      "_dmarc.h.i.j.mail.example.com", "_dmarc.i.j.mail.example.com", "_dmarc.j.mail.example.com",
      "_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     NONE,
     "",
     "a.b.c.d.e.f.g.h.i.j.mail.example.com",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"exactly 8 labels: parent has 7, 8 questions",
     "a.b.c.d.e.f.example.com",
     TW,
     {{NULL}},
     {"_dmarc.a.b.c.d.e.f.example.com", "_dmarc.b.c.d.e.f.example.com",
      "_dmarc.c.d.e.f.example.com", "_dmarc.d.e.f.example.com", "_dmarc.e.f.example.com",
      "_dmarc.f.example.com", "_dmarc.example.com", "_dmarc.com"},
     NONE,
     "",
     "a.b.c.d.e.f.example.com",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"9 labels: skip to 7, 8 questions",
     "x.a.b.c.d.e.f.example.com",
     TW,
     {{NULL}},
     {"_dmarc.x.a.b.c.d.e.f.example.com", "_dmarc.b.c.d.e.f.example.com",
      "_dmarc.c.d.e.f.example.com", "_dmarc.d.e.f.example.com", "_dmarc.e.f.example.com",
      "_dmarc.f.example.com", "_dmarc.example.com", "_dmarc.com"},
     NONE,
     "",
     "x.a.b.c.d.e.f.example.com",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"psd=n at an intermediate name stops the walk; that name is the org domain",
     "a.b.example.com",
     TW,
     {{"_dmarc.b.example.com", OK, {"v=DMARC1; p=reject; psd=n"}},
      {"_dmarc.example.com", OK, {"v=DMARC1; p=none"}}},
     {"_dmarc.a.b.example.com", "_dmarc.b.example.com"},
     FOUND,
     "b.example.com",
     "b.example.com",
     0,
     0,
     DMARC_P_REJECT,
     0},
    {"psd=y: org domain one label below, its own record applies (RFC 9989 B.4.3)",
     "mail.giant.bank.example",
     TW,
     {{"_dmarc.giant.bank.example", OK, {"v=DMARC1; p=quarantine"}},
      {"_dmarc.bank.example", OK, {"v=DMARC1; p=reject; psd=y; rua=mailto:psd@bank.example"}}},
     {"_dmarc.mail.giant.bank.example", "_dmarc.giant.bank.example", "_dmarc.bank.example"},
     FOUND,
     "giant.bank.example",
     "giant.bank.example",
     0,
     0,
     DMARC_P_QUARANTINE,
     0},
    {"psd=y and the org domain has no record: the PSD policy applies",
     "mail.mega.bank.example",
     TW,
     {{"_dmarc.bank.example", OK, {"v=DMARC1; p=reject; psd=y"}}},
     {"_dmarc.mail.mega.bank.example", "_dmarc.mega.bank.example", "_dmarc.bank.example"},
     FOUND,
     "bank.example",
     "mega.bank.example",
     0,
     1,
     DMARC_P_REJECT,
     0},
    {"psd=y: a record below the org domain is not the org domain's",
     "a.b.c.bank.example",
     TW,
     {{"_dmarc.b.c.bank.example", OK, {"v=DMARC1; p=none"}},
      {"_dmarc.bank.example", OK, {"v=DMARC1; p=reject; psd=y"}}},
     {"_dmarc.a.b.c.bank.example", "_dmarc.b.c.bank.example", "_dmarc.c.bank.example",
      "_dmarc.bank.example"},
     FOUND,
     "bank.example",
     "c.bank.example",
     0,
     1,
     DMARC_P_REJECT,
     0},
    {"psd=y record at the policy domain itself applies with p",
     "bank.example",
     TW,
     {{"_dmarc.bank.example", OK, {"v=DMARC1; p=reject; psd=y"}}},
     {"_dmarc.bank.example"},
     FOUND,
     "bank.example",
     "",
     1,
     0,
     DMARC_P_REJECT,
     1},
    {"psd=n at the policy domain: it is the org domain",
     "anchor.test",
     TW,
     {{"_dmarc.anchor.test", OK, {"v=DMARC1; p=none; psd=n"}}},
     {"_dmarc.anchor.test"},
     FOUND,
     "anchor.test",
     "anchor.test",
     1,
     0,
     DMARC_P_NONE,
     1},
    {"no psd: the record with the fewest labels is the org domain's",
     "a.mail.example.com",
     TW,
     {{"_dmarc.mail.example.com", OK, {"v=DMARC1; p=none"}},
      {"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.a.mail.example.com", "_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_REJECT,
     0},
    {"several DMARC records at the policy domain: discarded, the walk goes on",
     "mail.example.com",
     TW,
     {{"_dmarc.mail.example.com", OK, {"v=DMARC1; p=reject", "v=DMARC1; p=quarantine"}},
      {"_dmarc.example.com", OK, {"v=DMARC1; p=none"}}},
     {"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_NONE,
     1},
    {"several DMARC records at an intermediate name: that name has none",
     "a.mail.example.com",
     TW,
     {{"_dmarc.mail.example.com", OK, {"v=DMARC1; p=reject; psd=n", "v=DMARC1; p=none"}}},
     {"_dmarc.a.mail.example.com", "_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     NONE,
     "",
     "a.mail.example.com",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"non-DMARC TXT records are ignored",
     "mail.example.com",
     TW,
     {{"_dmarc.mail.example.com", OK, {"some other txt record", "and another one"}},
      {"_dmarc.example.com", OK, {"spf1 nonsense", "v=DMARC1; p=quarantine"}}},
     {"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_QUARANTINE,
     1},
    {"SERVFAIL at the policy domain: temperror, not 'no policy'",
     "example.com",
     TW,
     {{"_dmarc.example.com", TEMP, {NULL}}},
     {"_dmarc.example.com"},
     TEMPERR,
     "",
     "",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"SERVFAIL above a record already found: temperror",
     "mail.example.com",
     TW,
     {{"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}, {"_dmarc.com", TEMP, {NULL}}},
     {"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     TEMPERR,
     "",
     "",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"unusable record with psd=y still stops the walk and fixes the org domain",
     "deep.sub.psd.test",
     TW,
     {{"_dmarc.psd.test", OK, {"v=DMARC1; psd=y"}}},
     {"_dmarc.deep.sub.psd.test", "_dmarc.sub.psd.test", "_dmarc.psd.test"},
     NONE,
     "",
     "sub.psd.test",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"unusable psd=n record: stop, org domain there, no policy",
     "a.b.example.com",
     TW,
     {{"_dmarc.b.example.com", OK, {"v=DMARC1; psd=n"}},
      {"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.a.b.example.com", "_dmarc.b.example.com"},
     NONE,
     "",
     "b.example.com",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"unusable record at the policy domain (no p, no rua): walk on",
     "mail.example.com",
     TW,
     {{"_dmarc.mail.example.com", OK, {"v=DMARC1; adkim=s"}},
      {"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_REJECT,
     1},
    {"p-less record with a valid rua is p=none",
     "example.org",
     TW,
     {{"_dmarc.example.org", OK, {"v=DMARC1; rua=mailto:d@example.org"}}},
     {"_dmarc.example.org"},
     FOUND,
     "example.org",
     "",
     1,
     0,
     DMARC_P_NONE,
     1},
    {"NODATA at the policy domain proves it exists",
     "sub.example.com",
     TW,
     {{"_dmarc.sub.example.com", NODATA, {NULL}}},
     {"_dmarc.sub.example.com", "_dmarc.example.com", "_dmarc.com"},
     NONE,
     "",
     "sub.example.com",
     0,
     0,
     DMARC_P_UNSET,
     1},
    {"case and trailing dot are normalised",
     "Mail.Example.COM.",
     TW,
     {{"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_REJECT,
     0},
    {"single label: one question",
     "localhost",
     TW,
     {{NULL}},
     {"_dmarc.localhost"},
     NONE,
     "",
     "localhost",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"not a domain: no question",
     "a..b",
     TW,
     {{NULL}},
     {NULL},
     NONE,
     "",
     "",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"empty: no question", "", TW, {{NULL}}, {NULL}, NONE, "", "", 0, 0, DMARC_P_UNSET, 0},
    {"space inside: no question",
     "a b.example",
     TW,
     {{NULL}},
     {NULL},
     NONE,
     "",
     "",
     0,
     0,
     DMARC_P_UNSET,
     0},

    /* RFC 7489 mode: the policy domain, then the PSL organizational domain. */
    {"PSL: subdomain falls back to the org domain",
     "sub.example.com",
     PSL,
     {{"_dmarc.example.com", OK, {"v=DMARC1; p=none"}}},
     {"_dmarc.sub.example.com", "_dmarc.example.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_NONE,
     0},
    {"PSL: record at the policy domain",
     "example.com",
     PSL,
     {{"_dmarc.example.com", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.example.com"},
     FOUND,
     "example.com",
     "example.com",
     1,
     0,
     DMARC_P_REJECT,
     1},
    {"PSL: policy domain is the org domain, no record: one question",
     "absent.example",
     PSL,
     {{NULL}},
     {"_dmarc.absent.example"},
     NONE,
     "",
     "absent.example",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"PSL: several records at the policy domain: ask the org domain (RFC 7489 6.6.3)",
     "a.multiple.example",
     PSL,
     {{"_dmarc.a.multiple.example", OK, {"v=DMARC1; p=none", "v=DMARC1; p=none"}},
      {"_dmarc.multiple.example", OK, {"v=DMARC1; p=reject"}}},
     {"_dmarc.a.multiple.example", "_dmarc.multiple.example"},
     FOUND,
     "multiple.example",
     "multiple.example",
     0,
     0,
     DMARC_P_REJECT,
     1},
    {"PSL: deep name asks only two names",
     "a.b.c.d.e.f.g.h.i.j.k.example.com",
     PSL,
     {{NULL}},
     {"_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com", "_dmarc.example.com"},
     NONE,
     "",
     "example.com",
     0,
     0,
     DMARC_P_UNSET,
     0},
    {"PSL: psd= is not consulted",
     "a.b.example.com",
     PSL,
     {{"_dmarc.b.example.com", OK, {"v=DMARC1; p=reject; psd=n"}},
      {"_dmarc.example.com", OK, {"v=DMARC1; p=quarantine"}}},
     {"_dmarc.a.b.example.com", "_dmarc.example.com"},
     FOUND,
     "example.com",
     "example.com",
     0,
     0,
     DMARC_P_QUARANTINE,
     0},
    {"PSL: timeout at the org domain: temperror",
     "sub.example.com",
     PSL,
     {{"_dmarc.example.com", TEMP, {NULL}}},
     {"_dmarc.sub.example.com", "_dmarc.example.com"},
     TEMPERR,
     "",
     "example.com",
     0,
     0,
     DMARC_P_UNSET,
     0},
};

/* A stand-in for the PSL: the last two labels (enough for these names). */
static int last2(void *ctx, const char *domain, char *out, size_t outlen)
{
    const char *p = domain + strlen(domain);
    int dots = 0;

    (void)ctx;
    while (p > domain && dots < 2)
        if (*--p == '.' && ++dots == 2)
            p++;
    if (strchr(p, '.') == NULL)
        return -1; /* a bare TLD is a public suffix */
    snprintf(out, outlen, "%s", p);
    return 0;
}

static const struct zent *zone_find(const struct tcase *c, const char *name)
{
    for (int i = 0; i < 6 && c->zone[i].name; i++)
        if (strcmp(c->zone[i].name, name) == 0)
            return &c->zone[i];
    return NULL;
}

static void run_case(const struct tcase *c)
{
    struct dmarc_disc d;
    const struct dmarc_disc_result *r;
    const char *name;
    uint16_t type;
    char got[1024] = "", want[1024] = "";
    int nq = 0;

    dmarc_disc_start(&d, c->pd, c->method, DMARC_MODE_RFC9989, last2, NULL);
    while (dmarc_disc_next(&d, &name, &type) && nq < 20) {
        const struct zent *z = zone_find(c, name);
        const char *txt[4];
        size_t len[4], n = 0;

        ok(type == DMARC_DISC_T_TXT, "%s: question %d is TXT", c->label, nq);
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", nq ? " " : "", name);
        nq++;
        if (z == NULL) {
            dmarc_disc_feed(&d, DMARC_ANS_NXDOMAIN, NULL, NULL, 0);
            continue;
        }
        for (; n < 4 && z->txt[n]; n++) {
            txt[n] = z->txt[n];
            len[n] = strlen(z->txt[n]);
        }
        dmarc_disc_feed(&d, z->ans, txt, len, n);
    }
    for (int i = 0; c->q[i]; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? " " : "", c->q[i]);
    is_str(got, want, "%s: questions", c->label);
    r = dmarc_disc_result(&d);
    is_str(dmarc_disc_status_name(r->status), dmarc_disc_status_name(c->status), "%s: status",
           c->label);
    is_str(r->record_domain, c->record_domain, "%s: record domain", c->label);
    is_str(r->org_domain, c->org_domain, "%s: org domain", c->label);
    is_int(r->at_policy_domain, c->at_pd, "%s: at policy domain", c->label);
    is_int(r->psd_policy, c->psd_policy, "%s: psd policy", c->label);
    is_int(r->pd_exists, c->pd_exists, "%s: pd_exists", c->label);
    is_int(r->nq, nq, "%s: questions recorded", c->label);
    if (c->status == FOUND)
        is_int(r->rec.p, c->p, "%s: p of the applied record", c->label);
    if (c->status == TEMPERR)
        is_str(r->tempfail_name, c->q[nq - 1], "%s: failing name", c->label);
    if (c->status == NONE)
        ok(r->note[0] != '\0', "%s: a note says why (%s)", c->label, r->note);
    /* Once over, further answers change nothing. */
    dmarc_disc_feed(&d, DMARC_ANS_TEMPFAIL, NULL, NULL, 0);
    ok(r->status == c->status && !dmarc_disc_next(&d, &name, &type), "%s: stays over", c->label);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);

    /* No tree walk ever asks more than 8 names, whatever the depth. */
    for (int labels = 1; labels <= 40; labels++) {
        char pd[200] = "";
        struct dmarc_disc d;
        const char *name;
        uint16_t type;
        int nq = 0;

        for (int i = 0; i < labels; i++)
            strcat(pd, i ? ".x" : "x");
        dmarc_disc_start(&d, pd, TW, DMARC_MODE_RFC9989, NULL, NULL);
        while (dmarc_disc_next(&d, &name, &type) && nq < 100) {
            nq++;
            dmarc_disc_feed(&d, DMARC_ANS_NXDOMAIN, NULL, NULL, 0);
        }
        if (!ok(nq == (labels <= 8 ? labels : 8), "%d labels: %d questions", labels, nq))
            break;
    }

    /* PSL mode without an org-domain function: only the policy domain. */
    {
        struct dmarc_disc d;
        const char *name;
        uint16_t type;
        int nq = 0;

        dmarc_disc_start(&d, "sub.example.com", PSL, DMARC_MODE_RFC7489, NULL, NULL);
        while (dmarc_disc_next(&d, &name, &type) && nq < 10) {
            nq++;
            dmarc_disc_feed(&d, DMARC_ANS_NXDOMAIN, NULL, NULL, 0);
        }
        is_int(nq, 1, "PSL without org function: one question");
        is_str(dmarc_disc_method_name(PSL), "psl", "method name psl");
        is_str(dmarc_disc_method_name(TW), "treewalk", "method name treewalk");
    }
    return tap_done();
}
