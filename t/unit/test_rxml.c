/* test_rxml.c - aggregate report XML: reports in both formats for a full and
 * a minimal policy and rows covering every disposition, SPF result and reason
 * type, IPv4/IPv6, hostile strings (XML specials, controls, invalid UTF-8)
 * and empty optional fields; each is gunzipped with gzip -dc and validated
 * with `xmllint --schema` and in-process with xmlSchemaValidateDoc (RFC 9990
 * XSD as shipped; RFC 7489 Mail::DMARC XSD with targetNamespace removed, made
 * here in a temp dir), then read back with XPath. Also: rxml_filename,
 * errors (no record, bad row, full disk), and bounded memory for 200k rows. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <libxml/xpath.h>

#include "rxml.h"
#include "tap.h"

static char tmp[256];
static char xsd9990[512], xsd7489[512];

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    b[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return b;
}

/* make_schemas: the RFC 7489 no-namespace copy (reports carry none). */
static int make_schemas(void)
{
    const char *shared = getenv("PD_SHARED");
    char src[512], *s, *p;
    const char *tns = " targetNamespace=\"http://dmarc.org/dmarc-xml/0.1\"";
    FILE *f;

    if (shared == NULL)
        shared = "../shared";
    snprintf(xsd9990, sizeof(xsd9990), "%s/testdata/dmarc-aggregate/rua-rfc9990.xsd", shared);
    snprintf(src, sizeof(src), "%s/testdata/dmarc-aggregate/rua-rfc7489-maildmarc-2015.xsd",
             shared);
    s = slurp(src, NULL);
    if (!ok(s != NULL && access(xsd9990, R_OK) == 0, "schemas found under %s", shared))
        return -1;
    p = strstr(s, tns);
    ok(p != NULL, "RFC 7489 schema has the targetNamespace to remove");
    if (p)
        memmove(p, p + strlen(tns), strlen(p + strlen(tns)) + 1);
    snprintf(xsd7489, sizeof(xsd7489), "%s/rfc7489-nons.xsd", tmp);
    f = fopen(xsd7489, "w");
    fputs(s, f);
    fclose(f);
    free(s);
    return 0;
}

/* ---- XPath helpers: paths written "/feedback/record[2]/row", matched on
 * local names so one expression serves both formats ------------------------ */

static void lp(char *out, size_t sz, const char *path)
{
    size_t o = 0;
    const char *p = path;

    out[0] = '\0';
    while (*p && o + 40 < sz) {
        size_t nl;
        if (*p == '/') {
            out[o++] = '/';
            p++;
            continue;
        }
        nl = strcspn(p, "/[");
        o += (size_t)snprintf(out + o, sz - o, "*[local-name()='%.*s']", (int)nl, p);
        p += nl;
        if (*p == '[') {
            size_t bl = strcspn(p, "]") + 1;
            o += (size_t)snprintf(out + o, sz - o, "%.*s", (int)bl, p);
            p += bl;
        }
    }
    out[o] = '\0';
}

static char xbuf[4096];

/* xs: string value of the first node at path ("" if none). */
static const char *xs(xmlDocPtr doc, const char *path)
{
    char e[2048], q[2100];
    xmlXPathContextPtr c = xmlXPathNewContext(doc);
    xmlXPathObjectPtr r;

    lp(e, sizeof(e), path);
    snprintf(q, sizeof(q), "string(%s)", e);
    r = xmlXPathEvalExpression(BAD_CAST q, c);
    snprintf(xbuf, sizeof(xbuf), "%s", r && r->stringval ? (const char *)r->stringval : "");
    xmlXPathFreeObject(r);
    xmlXPathFreeContext(c);
    return xbuf;
}

/* xn: number of nodes at path. */
static int xn(xmlDocPtr doc, const char *path)
{
    char e[2048];
    xmlXPathContextPtr c = xmlXPathNewContext(doc);
    xmlXPathObjectPtr r;
    int n;

    lp(e, sizeof(e), path);
    r = xmlXPathEvalExpression(BAD_CAST e, c);
    n = r && r->nodesetval ? r->nodesetval->nodeNr : -1;
    xmlXPathFreeObject(r);
    xmlXPathFreeContext(c);
    return n;
}

/* xchildren: local names of the element children at path, comma-joined. */
static const char *xchildren(xmlDocPtr doc, const char *path)
{
    char e[2048];
    xmlXPathContextPtr c = xmlXPathNewContext(doc);
    xmlXPathObjectPtr r;
    size_t o = 0;
    int i;

    lp(e, sizeof(e), path);
    strcat(e, "/*");
    r = xmlXPathEvalExpression(BAD_CAST e, c);
    xbuf[0] = '\0';
    for (i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr; i++)
        o += (size_t)snprintf(xbuf + o, sizeof(xbuf) - o, "%s%s", i ? "," : "",
                              (const char *)r->nodesetval->nodeTab[i]->name);
    xmlXPathFreeObject(r);
    xmlXPathFreeContext(c);
    return xbuf;
}

/* ---- the data ---------------------------------------------------------- */

static const char *const dispositions[] = {"none", "quarantine", "reject"};
static const char *const spf_results[] = {"none",     "neutral",   "pass",     "fail",
                                          "softfail", "temperror", "permerror"};
static const char *const ips[] = {"192.0.2.1", "2001:db8::1",    "::ffff:192.0.2.7",
                                  "fe80::1",   "198.51.100.254", "2001:db8:0:1:2:3:4:5",
                                  "0.0.0.0",   "255.255.255.255"};
static const char *const env_froms[] = {
    "",                                        /* null sender: HELO identity */
    "<a&b>\"'.example",                        /* XML specials */
    "ctl\x01\x1f\x7f.example",                 /* controls */
    "bad\xff\xfe\xc0\xaf\xed\xa0\x80.example", /* invalid UTF-8, surrogate */
    "b\xc3\xbc"
    "cher.example", /* valid UTF-8 */
};
#define HOSTILE_ORG "Org <&> \"q\" 'a' ]]> \x01\x1b[31m\x7f \xff \xc3\xbc\xef\xbf\xbe end"
#define HOSTILE_ORG_CLEAN "Org <&> \"q\" 'a' ]]> ??[31m? ? \xc3\xbc? end"

static void fill_row(struct rrow *r, int idx)
{
    const char *ef = env_froms[idx % 5];
    const char *res = spf_results[idx % 7];

    memset(r, 0, sizeof(*r));
    snprintf(r->source_ip, sizeof(r->source_ip), "%s", ips[idx % 8]);
    snprintf(r->disposition, sizeof(r->disposition), "%s", dispositions[(idx / 7) % 3]);
    snprintf(r->dmarc_spf, sizeof(r->dmarc_spf), "%s", strcmp(res, "pass") ? "fail" : "pass");
    snprintf(r->spf_result, sizeof(r->spf_result), "%s", res);
    snprintf(r->envelope_from, sizeof(r->envelope_from), "%s", ef);
    snprintf(r->spf_domain, sizeof(r->spf_domain), "%s", ef[0] ? ef : "helo.sender.example");
    snprintf(r->spf_scope, sizeof(r->spf_scope), "%s", ef[0] ? "mfrom" : "helo");
    snprintf(r->header_from, sizeof(r->header_from), "example.com");
    /* reasons: type cycles through every enum value (0 = none written) */
    r->reasons[0].type = (enum rrow_reason)(idx % 7);
    if (idx % 2)
        snprintf(r->reasons[0].comment, RROW_COMMENT_MAX, "c%d ]]> <x> & \x02", idx);
    r->nreasons = 1;
    if (idx % 4 == 3) {
        r->reasons[1].type = RROW_R_OTHER;
        r->nreasons = 2;
    }
}

#define NGEN 42 /* 3 dispositions x 7 results x 2 */

static void set_policy(struct rrow_policy *p, int full)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->domain, sizeof(p->domain), "example.com");
    snprintf(p->p, sizeof(p->p), "reject");
    if (full) {
        snprintf(p->sp, sizeof(p->sp), "quarantine");
        snprintf(p->np, sizeof(p->np), "reject");
        snprintf(p->adkim, sizeof(p->adkim), "s");
        snprintf(p->aspf, sizeof(p->aspf), "r");
        snprintf(p->fo, sizeof(p->fo), "1:d");
        snprintf(p->testing, sizeof(p->testing), "y");
        snprintf(p->psd, sizeof(p->psd), "n");
        snprintf(p->discovery_method, sizeof(p->discovery_method), "treewalk");
        p->pct = 50;
    } else {
        p->pct = 100;
    }
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static int validate_in_process(const char *xsd, xmlDocPtr doc)
{
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(xsd);
    xmlSchemaPtr s = pc ? xmlSchemaParse(pc) : NULL;
    xmlSchemaValidCtxtPtr vc = s ? xmlSchemaNewValidCtxt(s) : NULL;
    int rc = vc ? xmlSchemaValidateDoc(vc, doc) : -1;

    if (vc)
        xmlSchemaFreeValidCtxt(vc);
    if (s)
        xmlSchemaFree(s);
    if (pc)
        xmlSchemaFreeParserCtxt(pc);
    return rc;
}

static void test_report(enum rxml_format fmt, int full)
{
    const int is9990 = fmt == RXML_RFC9990;
    const char *fname = is9990 ? "RFC 9990" : "RFC 7489";
    const char *xsd = is9990 ? xsd9990 : xsd7489;
    char gz[512], xml[512], cmd[2048], err[256] = "", what[64];
    struct rrow_policy pol;
    struct rxml_meta m;
    struct rxml *x;
    struct rrow r;
    xmlDocPtr doc;
    unsigned char magic[2] = {0, 0};
    FILE *f;
    int i, rc;

    snprintf(what, sizeof(what), "%s %s policy", fname, full ? "full" : "minimal");
    snprintf(gz, sizeof(gz), "%s/r%d%d.xml.gz", tmp, (int)fmt, full);
    snprintf(xml, sizeof(xml), "%s/r%d%d.xml", tmp, (int)fmt, full);
    set_policy(&pol, full);
    memset(&m, 0, sizeof(m));
    m.format = fmt;
    m.org_name = full ? HOSTILE_ORG : "mx.example.net";
    m.email = "dmarc-reports@mx.example.net";
    m.extra_contact = full ? "https://mx.example.net/dmarc <info>" : "";
    m.report_id = "1700000000.abc&<123>";
    m.begin = 1699920000;
    m.end = 1700006399;
    m.generator = "policyd-dmarc 0.1.0";
    m.policy = &pol;

    x = rxml_open(gz, &m, err, sizeof(err));
    if (!ok(x != NULL, "%s: rxml_open (%s)", what, err))
        return;
    rc = 0;
    for (i = 0; i < NGEN; i++) {
        fill_row(&r, i);
        rc |= rxml_add_row(x, &r, (uint64_t)i + 1);
    }
    /* a huge count, a 9990-only "pass" disposition, a row of empty fields */
    fill_row(&r, 2);
    rc |= rxml_add_row(x, &r, UINT64_MAX);
    fill_row(&r, 9);
    snprintf(r.disposition, sizeof(r.disposition), "pass");
    r.nreasons = 0;
    rc |= rxml_add_row(x, &r, 7);
    memset(&r, 0, sizeof(r));
    snprintf(r.source_ip, sizeof(r.source_ip), "2001:db8::2");
    snprintf(r.disposition, sizeof(r.disposition), "none");
    snprintf(r.dmarc_spf, sizeof(r.dmarc_spf), "fail");
    snprintf(r.spf_result, sizeof(r.spf_result), "none");
    rc |= rxml_add_row(x, &r, 1);
    is_int(rc, 0, "%s: %d rows added (%s)", what, NGEN + 3, rxml_errstr(x));
    rc = rxml_close(&x, err, sizeof(err));
    is_int(rc, 0, "%s: rxml_close (%s)", what, err);
    ok(x == NULL, "%s: rxml_close NULLs the handle", what);

    f = fopen(gz, "rb");
    if (f) {
        if (fread(magic, 1, 2, f) != 2)
            magic[0] = 0;
        fclose(f);
    }
    ok(magic[0] == 0x1f && magic[1] == 0x8b, "%s: gzip magic", what);
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s' > '%s'", gz, xml);
    is_int(run(cmd), 0, "%s: gzip -dc reads it", what);
    snprintf(cmd, sizeof(cmd), "xmllint --noout --schema '%s' '%s' 2>'%s.log'", xsd, xml, xml);
    if (!is_int(run(cmd), 0, "%s: xmllint --schema %s validates", what, fname)) {
        char lp_[600], *log;
        snprintf(lp_, sizeof(lp_), "%s.log", xml);
        log = slurp(lp_, NULL);
        diag("%s", log ? log : "");
        free(log);
    }

    doc = xmlReadFile(xml, NULL, XML_PARSE_NONET);
    if (!ok(doc != NULL, "%s: libxml2 parses it", what))
        return;
    is_int(validate_in_process(xsd, doc), 0, "%s: xmlSchemaValidateDoc", what);
    /* gzipped input read directly must give the same document */
    {
        xmlDocPtr d2 = xmlReadFile(gz, NULL, XML_PARSE_NONET);
        ok(d2 != NULL && xn(d2, "/feedback/record") == NGEN + 3, "%s: read from .gz too", what);
        xmlFreeDoc(d2);
    }

    {
        xmlXPathContextPtr c = xmlXPathNewContext(doc);
        xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST "string(namespace-uri(/*))", c);
        is_str((const char *)o->stringval, is9990 ? "urn:ietf:params:xml:ns:dmarc-2.0" : "",
               "%s: root namespace", what);
        xmlXPathFreeObject(o);
        xmlXPathFreeContext(c);
    }
    is_str(xs(doc, "/feedback/version"), "1.0", "%s: version 1.0", what);
    ok(strncmp(xchildren(doc, "/feedback"), "version,report_metadata,policy_published,record,",
               48) == 0,
       "%s: feedback children in schema order", what);
    is_int(xn(doc, "/feedback/record"), NGEN + 3, "%s: one record per row", what);
    is_str(xs(doc, "/feedback/report_metadata/org_name"),
           full ? HOSTILE_ORG_CLEAN : "mx.example.net", "%s: org_name escaped/cleaned", what);
    is_str(xs(doc, "/feedback/report_metadata/report_id"), "1700000000.abc&<123>",
           "%s: report_id round-trips", what);
    is_str(xs(doc, "/feedback/report_metadata/date_range/begin"), "1699920000", "%s: begin", what);
    is_str(xs(doc, "/feedback/report_metadata/date_range/end"), "1700006399", "%s: end", what);
    is_str(xchildren(doc, "/feedback/report_metadata"),
           is9990 ? (full ? "org_name,email,extra_contact_info,report_id,date_range,generator"
                          : "org_name,email,report_id,date_range,generator")
                  : (full ? "org_name,email,extra_contact_info,report_id,date_range"
                          : "org_name,email,report_id,date_range"),
           "%s: report_metadata elements", what);
    if (is9990)
        is_str(xs(doc, "/feedback/report_metadata/generator"), "policyd-dmarc 0.1.0",
               "%s: generator", what);
    is_str(xchildren(doc, "/feedback/policy_published"),
           is9990 ? (full ? "domain,p,sp,np,adkim,aspf,discovery_method,fo,testing" : "domain,p")
                  : (full ? "domain,adkim,aspf,p,sp,pct,fo" : "domain,p,sp,pct,fo"),
           "%s: policy_published elements (no psd: not in the schema)", what);
    if (!is9990) {
        is_str(xs(doc, "/feedback/policy_published/sp"), full ? "quarantine" : "reject",
               "%s: sp (defaults to p)", what);
        is_str(xs(doc, "/feedback/policy_published/pct"), full ? "50" : "100", "%s: pct", what);
        is_str(xs(doc, "/feedback/policy_published/fo"), full ? "1:d" : "0", "%s: fo", what);
    }

    /* no DKIM was evaluated: no <dkim> auth result, policy dkim = fail */
    is_int(xn(doc, "/feedback/record/auth_results/dkim"), 0, "%s: no dkim auth result", what);
    is_int(xn(doc, "/feedback/record/row/policy_evaluated/dkim"), NGEN + 3,
           "%s: policy_evaluated dkim everywhere", what);
    {
        int nfail = 0;
        char p[128];
        for (i = 1; i <= NGEN + 3; i++) {
            snprintf(p, sizeof(p), "/feedback/record[%d]/row/policy_evaluated/dkim", i);
            nfail += strcmp(xs(doc, p), "fail") == 0;
        }
        is_int(nfail, NGEN + 3, "%s: policy_evaluated dkim = fail", what);
    }

    /* record 1 = row 0: null sender, reason type NONE */
    is_str(xs(doc, "/feedback/record[1]/row/source_ip"), "192.0.2.1", "%s: IPv4", what);
    is_str(xs(doc, "/feedback/record[1]/row/count"), "1", "%s: count", what);
    is_int(xn(doc, "/feedback/record[1]/row/policy_evaluated/reason"), 0,
           "%s: reason NONE not written", what);
    is_int(xn(doc, "/feedback/record[1]/identifiers/envelope_from"), is9990 ? 0 : 1,
           "%s: empty envelope_from %s", what, is9990 ? "omitted" : "kept (required)");
    is_str(xchildren(doc, "/feedback/record[1]/identifiers"),
           is9990 ? "header_from" : "envelope_from,header_from", "%s: identifiers order", what);
    is_str(xs(doc, "/feedback/record[1]/auth_results/spf/domain"), "helo.sender.example",
           "%s: spf domain", what);
    is_int(xn(doc, "/feedback/record[1]/auth_results/spf/scope"), is9990 ? 0 : 1,
           "%s: helo scope %s", what, is9990 ? "omitted (9990: mfrom only)" : "written");
    /* record 2 = row 1: IPv6, specials, local_policy + comment */
    is_str(xs(doc, "/feedback/record[2]/row/source_ip"),
           is9990 ? "2001:db8::1" : "2001:db8:0:0:0:0:0:1", "%s: IPv6 form", what);
    is_str(xs(doc, "/feedback/record[2]/identifiers/envelope_from"), "<a&b>\"'.example",
           "%s: XML specials round-trip", what);
    is_str(xs(doc, "/feedback/record[2]/auth_results/spf/scope"), "mfrom", "%s: mfrom scope", what);
    is_str(xs(doc, "/feedback/record[2]/auth_results/spf/result"), "neutral", "%s: spf result",
           what);
    is_str(xs(doc, "/feedback/record[2]/row/policy_evaluated/reason/type"), "local_policy",
           "%s: reason local_policy", what);
    is_str(xs(doc, "/feedback/record[2]/row/policy_evaluated/reason/comment"), "c1 ]]> <x> & ?",
           "%s: reason comment escaped, control replaced", what);
    /* record 3: v4-mapped; controls in envelope_from */
    is_str(xs(doc, "/feedback/record[3]/row/source_ip"), is9990 ? "::ffff:192.0.2.7" : "192.0.2.7",
           "%s: v4-mapped IPv6", what);
    is_str(xs(doc, "/feedback/record[3]/identifiers/envelope_from"), "ctl???.example",
           "%s: controls replaced", what);
    is_str(xs(doc, "/feedback/record[3]/row/policy_evaluated/reason/type"), "trusted_forwarder",
           "%s: reason trusted_forwarder", what);
    /* record 4 = row 3: policy_test_mode, invalid UTF-8; two reasons */
    is_str(xs(doc, "/feedback/record[4]/identifiers/envelope_from"), "bad?????.example",
           "%s: invalid UTF-8 replaced", what);
    is_str(xs(doc, "/feedback/record[4]/row/policy_evaluated/reason[1]/type"),
           is9990 ? "policy_test_mode" : "other", "%s: policy_test_mode", what);
    is_str(xs(doc, "/feedback/record[4]/row/policy_evaluated/reason[1]/comment"),
           is9990 ? "c3 ]]> <x> & ?" : "policy_test_mode: c3 ]]> <x> & ?",
           "%s: policy_test_mode comment", what);
    is_str(xs(doc, "/feedback/record[4]/row/policy_evaluated/reason[2]/type"), "other",
           "%s: second reason", what);
    /* record 5 = row 4: sampled_out, valid UTF-8 */
    is_str(xs(doc, "/feedback/record[5]/identifiers/envelope_from"),
           "b\xc3\xbc"
           "cher.example",
           "%s: valid UTF-8 kept", what);
    is_str(xs(doc, "/feedback/record[5]/row/policy_evaluated/reason/type"),
           is9990 ? "other" : "sampled_out", "%s: sampled_out", what);
    is_str(xs(doc, "/feedback/record[5]/row/policy_evaluated/reason/comment"),
           is9990 ? "sampled_out" : "", "%s: sampled_out note", what);
    is_str(xs(doc, "/feedback/record[6]/row/policy_evaluated/reason/type"), "mailing_list",
           "%s: mailing_list", what);
    is_str(xs(doc, "/feedback/record[7]/row/policy_evaluated/reason/type"), "other", "%s: other",
           what);
    is_str(xs(doc, "/feedback/record[15]/row/policy_evaluated/disposition"), "reject",
           "%s: disposition reject", what);
    is_str(xs(doc, "/feedback/record[8]/row/policy_evaluated/disposition"), "quarantine",
           "%s: disposition quarantine", what);
    is_str(xs(doc, "/feedback/record[3]/row/policy_evaluated/spf"), "pass", "%s: policy spf pass",
           what);
    is_str(xs(doc, "/feedback/record[43]/row/count"), "18446744073709551615", "%s: 64-bit count",
           what);
    is_str(xs(doc, "/feedback/record[44]/row/policy_evaluated/disposition"),
           is9990 ? "pass" : "none", "%s: disposition pass", what);
    is_str(xs(doc, "/feedback/record[45]/identifiers/header_from"), "", "%s: empty row", what);
    is_int(xn(doc, "/feedback/record[45]/row/policy_evaluated/reason"), 0, "%s: no reason", what);
    is_int(xn(doc, "/feedback/record[45]/identifiers/envelope_from"), is9990 ? 0 : 1,
           "%s: empty envelope_from", what);
    is_str(xs(doc, "/feedback/record[45]/auth_results/spf/scope"), is9990 ? "" : "helo",
           "%s: no scope known: helo for the null sender", what);
    xmlFreeDoc(doc);
}

static void test_filename(void)
{
    static const struct {
        const char *sub, *dom, *id;
        long long b, e;
        size_t sz;
        const char *want; /* NULL: -1 */
    } t[] = {
        {"mx.example.net", "example.com", "1700000000.abc", 1699920000, 1700006399, 256,
         "mx.example.net!example.com!1699920000!1700006399!1700000000.abc.xml.gz"},
        {"Evil/Org!x y", "ex/am!ple.com", "../id!$(x)", 1, 2, 256,
         "Evil_Org_x_y!ex_am_ple.com!1!2!.._id___x_.xml.gz"},
        {"a\nb\x01\xc3\xbc", "d", "", 0, 86399, 256, "a_b___!d!0!86399!.xml.gz"},
        {"o", "example.com", "i", 1, 2, 20, NULL},
        {"o", "example.com", "i", 1, 2, 27, "o!example.com!1!2!i.xml.gz"},
        {"o", "example.com", "i", 1, 2, 26, NULL},
    };
    char buf[512];
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int n = rxml_filename(buf, t[i].sz, t[i].sub, t[i].dom, t[i].b, t[i].e, t[i].id);
        if (t[i].want == NULL) {
            is_int(n, -1, "filename %zu: too small a buffer -> -1", i);
        } else {
            is_int(n, (long long)strlen(t[i].want), "filename %zu: length", i);
            is_str(n >= 0 ? buf : "", t[i].want, "filename %zu", i);
        }
    }
    {
        char sub[300], dom[254];
        int n;
        memset(sub, 'S', sizeof(sub) - 1);
        sub[sizeof(sub) - 1] = '\0';
        memset(dom, 'd', sizeof(dom) - 1);
        dom[sizeof(dom) - 1] = '\0';
        n = rxml_filename(buf, sizeof(buf), sub, dom, 1700000000, 1700086399, sub);
        ok(n > 0 && n <= 255 && strstr(buf, "!1700000000!1700086399!") && strstr(buf, ".xml.gz"),
           "long parts: name fits NAME_MAX (%d)", n);
    }
}

static void test_errors(void)
{
    struct rrow_policy pol;
    struct rxml_meta m;
    struct rxml *x;
    struct rrow r;
    char path[512], err[256];
    struct rlimit old, lim;
    int i, rc = 0;

    set_policy(&pol, 1);
    memset(&m, 0, sizeof(m));
    m.org_name = "o";
    m.email = "e@x";
    m.report_id = "r";
    m.policy = &pol;

    err[0] = '\0';
    x = rxml_open("/nonexistent/dir/r.xml.gz", &m, err, sizeof(err));
    ok(x == NULL && strstr(err, "No such file") != NULL, "open in a missing dir fails (%s)", err);

    snprintf(path, sizeof(path), "%s/empty.xml.gz", tmp);
    x = rxml_open(path, &m, err, sizeof(err));
    rc = rxml_close(&x, err, sizeof(err));
    ok(rc == -1 && strstr(err, "no record"), "a report without records is refused (%s)", err);

    snprintf(path, sizeof(path), "%s/bad.xml.gz", tmp);
    x = rxml_open(path, &m, err, sizeof(err));
    fill_row(&r, 1);
    snprintf(r.disposition, sizeof(r.disposition), "discard");
    rc = rxml_add_row(x, &r, 1);
    ok(rc == -1 && strstr(rxml_errstr(x), "disposition"), "invalid disposition -> -1 (%s)",
       rxml_errstr(x));
    {
        static const char *const bad_ips[] = {"", "not-an-ip", "192.0.2.256", "1.2.3.4 ", "::g"};
        for (i = 0; i < 5; i++) {
            fill_row(&r, 1);
            snprintf(r.source_ip, sizeof(r.source_ip), "%s", bad_ips[i]);
            rc = rxml_add_row(x, &r, 1);
            ok(rc == -1 && strstr(rxml_errstr(x), "not an IP"), "source_ip \"%s\" refused",
               bad_ips[i]);
        }
    }
    fill_row(&r, 1);
    snprintf(r.spf_result, sizeof(r.spf_result), "pass<");
    ok(rxml_add_row(x, &r, 1) == -1 && strstr(rxml_errstr(x), "SPF"), "invalid SPF result refused");
    fill_row(&r, 1);
    is_int(rxml_add_row(x, &r, 1), 0, "a good row is still accepted after refused ones");
    is_int(rxml_close(&x, err, sizeof(err)), 0, "and the report closes fine (%s)", err);
    {
        char cmd[2400];
        snprintf(cmd, sizeof(cmd),
                 "gzip -dc '%s' | xmllint --noout --schema '%s' - 2>/dev/null && "
                 "test \"$(gzip -dc '%s' | grep -c '<record>')\" = 1",
                 path, xsd9990, path);
        is_int(run(cmd), 0, "only the good row is in it, and it validates");
    }
    x = rxml_open(path, &m, err, sizeof(err));
    fill_row(&r, 1);
    rxml_add_row(x, &r, 1);
    rxml_abort(&x);
    ok(x == NULL && access(path, F_OK) != 0, "rxml_abort frees and unlinks");

    /* a full disk, simulated with RLIMIT_FSIZE */
    snprintf(path, sizeof(path), "%s/big.xml.gz", tmp);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 8192;
    setrlimit(RLIMIT_FSIZE, &lim);
    x = rxml_open(path, &m, err, sizeof(err));
    rc = 0;
    for (i = 0; x && i < 20000 && rc == 0; i++) {
        fill_row(&r, i);
        snprintf(r.source_ip, sizeof(r.source_ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255,
                 i & 255);
        rc = rxml_add_row(x, &r, (uint64_t)i * 7919);
    }
    ok(x != NULL && rc == -1, "a write error is seen by rxml_add_row (row %d: %s)", i,
       rxml_errstr(x));
    rc = rxml_close(&x, err, sizeof(err));
    ok(rc == -1 && strstr(err, "too large") != NULL, "rxml_close reports it (%s)", err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
}

static long rss_kb(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_memory(void)
{
    struct rrow_policy pol;
    struct rxml_meta m;
    struct rxml *x;
    struct rrow r;
    char path[512], cmd[1200], err[256];
    long before, after;
    int i, rc = 0;
    FILE *p;

    set_policy(&pol, 1);
    memset(&m, 0, sizeof(m));
    m.org_name = "o";
    m.email = "e@x";
    m.report_id = "r";
    m.generator = "g";
    m.policy = &pol;
    snprintf(path, sizeof(path), "%s/many.xml.gz", tmp);
    x = rxml_open(path, &m, err, sizeof(err));
    if (!ok(x != NULL, "open for 200k rows"))
        return;
    for (i = 0; i < 5000; i++) {
        fill_row(&r, i);
        rc |= rxml_add_row(x, &r, 1);
    }
    before = rss_kb();
    for (; i < 200000; i++) {
        fill_row(&r, i);
        snprintf(r.source_ip, sizeof(r.source_ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255,
                 i & 255);
        rc |= rxml_add_row(x, &r, (uint64_t)i);
    }
    after = rss_kb();
    is_int(rc, 0, "200k rows written");
#ifdef __SANITIZE_ADDRESS__
    /* ASan's quarantine keeps freed blocks out of reuse: RSS means nothing */
    diag("RSS growth over 195k rows: %ld kB (not checked under ASan)", after - before);
#else
    ok(after - before < 1024, "RSS growth over 195k rows: %ld kB (< 1 MB)", after - before);
#endif
    is_int(rxml_close(&x, err, sizeof(err)), 0, "closed (%s)", err);
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s' | grep -c '<record>'", path);
    p = popen(cmd, "r");
    if (p) {
        long n = 0;
        if (fscanf(p, "%ld", &n) != 1)
            n = -1;
        pclose(p);
        is_int(n, 200000, "200k records in the file");
    }
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/test_rxml.XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    if (make_schemas() == 0) {
        test_report(RXML_RFC9990, 1);
        test_report(RXML_RFC9990, 0);
        test_report(RXML_RFC7489, 1);
        test_report(RXML_RFC7489, 0);
    }
    test_filename();
    test_errors();
    test_memory();
    xmlCleanupParser();
    if (tap_done() == 0) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            diag("could not remove %s", tmp);
        return 0;
    }
    diag("files kept in %s", tmp);
    return 1;
}
