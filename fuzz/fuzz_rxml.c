/* fuzz_rxml.c - libFuzzer target for the aggregate report writer
 * (src/rxml.c): metadata, the published policy and rows from the input are
 * written as a gzip report; the result is read back with zlib and must parse
 * as XML (libxml2, no network, no entities) and, when the schema files from
 * ../shared/testdata/dmarc-aggregate are there, validate against the RFC 9990
 * or RFC 7489 XSD. Rows rxml_add_row() refuses are fine; rows it accepts must
 * never break the document.
 *
 * Input: byte 0 = flags (bit 0: RFC 7489 format), then '\n'-separated fields:
 * 5 metadata strings, the policy's free-text fields (domain, fo, rua), then
 * rows, each a selector byte (which IP/disposition/results/scope/reasons from
 * small tables, some invalid) and 4 '\t'-separated free-text fields
 * (spf_domain, envelope_from, header_from, a reason comment). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "rxml.h"

#ifndef PD_SHARED_DIR
#define PD_SHARED_DIR "../shared"
#endif

static char path[128];
static xmlSchemaPtr schema[2];
static char *doc;
static size_t doccap;

static void silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

/* Schema errors are printed: they explain a failed check. */
static void show(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    fprintf(stderr, "xsd: line %d: %s", e->line, e->message ? e->message : "?\n");
}

static xmlSchemaPtr load_schema(const char *file)
{
    char p[1024];
    xmlSchemaParserCtxtPtr pc;
    xmlSchemaPtr s;
    snprintf(p, sizeof(p), "%s/testdata/dmarc-aggregate/%s", PD_SHARED_DIR, file);
    if (access(p, R_OK) != 0)
        return NULL;
    pc = xmlSchemaNewParserCtxt(p);
    if (pc == NULL)
        return NULL;
    s = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    return s;
}

static void setup(void)
{
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof(path), "%s/fuzz_rxml.%ld.xml.gz", dir, (long)getpid());
    xmlSetGenericErrorFunc(NULL, silent);
    schema[RXML_RFC9990] = load_schema("rua-rfc9990.xsd");
    schema[RXML_RFC7489] = load_schema("rua-rfc7489.xsd");
}

/* read_back: the whole gunzipped file into doc; returns its length. */
static size_t read_back(void)
{
    gzFile gz = gzopen(path, "rb");
    size_t len = 0;
    int n;
    FZ_CHECK(gz != NULL);
    for (;;) {
        if (doccap - len < 65536) {
            doccap = doccap ? doccap * 2 : 1 << 20;
            doc = realloc(doc, doccap);
            FZ_CHECK(doc != NULL);
        }
        n = gzread(gz, doc + len, 65536);
        FZ_CHECK(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    gzclose(gz);
    return len;
}

static const char *const ips[] = {"192.0.2.1", "2001:db8::1", "::ffff:192.0.2.9", "1.2.3",
                                  "not-an-ip", "0.0.0.0",     "fe80::1%eth0",     "::"};
static const char *const disps[] = {"none", "quarantine", "reject", "pass", "bogus", ""};
static const char *const dspf[] = {"pass", "fail", "softfail"};
static const char *const spfres[] = {"none",     "neutral",   "pass",      "fail",
                                     "softfail", "temperror", "permerror", "policy"};
static const char *const scopes[] = {"mfrom", "helo", ""};
static const char *const pols[] = {"none", "quarantine", "reject"};

#define PICK(tab, x) (tab)[(x) % (sizeof(tab) / sizeof((tab)[0]))]

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f = {data, size};
    char meta[5][200], err[256];
    static struct rrow_policy pol;
    static struct rrow row;
    struct rxml_meta m;
    struct rxml *x;
    int added = 0;
    uint8_t flags;

    if (path[0] == '\0')
        setup();
    flags = fz_byte(&f);
    for (int i = 0; i < 5; i++)
        fz_str(&f, '\n', meta[i], sizeof(meta[i]));
    memset(&pol, 0, sizeof(pol));
    fz_str(&f, '\n', pol.domain, sizeof(pol.domain));
    fz_str(&f, '\n', pol.fo, sizeof(pol.fo));
    fz_str(&f, '\n', pol.rua, sizeof(pol.rua));
    snprintf(pol.p, sizeof(pol.p), "%s", PICK(pols, flags >> 1));
    snprintf(pol.sp, sizeof(pol.sp), "%s", (flags & 8) ? "" : PICK(pols, flags >> 4));
    snprintf(pol.np, sizeof(pol.np), "%s", (flags & 64) ? "" : PICK(pols, flags >> 5));
    snprintf(pol.adkim, sizeof(pol.adkim), "%s", (flags & 16) ? "s" : "r");
    snprintf(pol.aspf, sizeof(pol.aspf), "%s", (flags & 32) ? "s" : "r");
    snprintf(pol.testing, sizeof(pol.testing), "%s", (flags & 64) ? "y" : "n");
    snprintf(pol.psd, sizeof(pol.psd), "%s", (flags & 128) ? "y" : "u");
    snprintf(pol.discovery_method, sizeof(pol.discovery_method), "%s",
             (flags & 4) ? "psl" : "treewalk");
    pol.pct = flags % 101;

    memset(&m, 0, sizeof(m));
    m.format = (flags & 1) ? RXML_RFC7489 : RXML_RFC9990;
    m.org_name = meta[0];
    m.email = meta[1];
    m.extra_contact = meta[2];
    m.report_id = meta[3];
    m.generator = meta[4];
    m.begin = 1700000000;
    m.end = 1700086399;
    m.policy = &pol;
    x = rxml_open(path, &m, err, sizeof(err));
    FZ_CHECK(x != NULL);
    while (f.n > 0) {
        uint8_t sel = fz_byte(&f), sel2 = fz_byte(&f);
        size_t l;
        const uint8_t *line = fz_field(&f, '\n', &l);
        struct fz lf = {line, l};
        memset(&row, 0, sizeof(row));
        snprintf(row.source_ip, sizeof(row.source_ip), "%s", PICK(ips, sel));
        snprintf(row.disposition, sizeof(row.disposition), "%s", PICK(disps, sel >> 3));
        snprintf(row.dmarc_spf, sizeof(row.dmarc_spf), "%s", PICK(dspf, sel >> 6));
        snprintf(row.spf_result, sizeof(row.spf_result), "%s", PICK(spfres, sel2));
        snprintf(row.spf_scope, sizeof(row.spf_scope), "%s", PICK(scopes, sel2 >> 3));
        fz_str(&lf, '\t', row.spf_domain, sizeof(row.spf_domain));
        fz_str(&lf, '\t', row.envelope_from, sizeof(row.envelope_from));
        fz_str(&lf, '\t', row.header_from, sizeof(row.header_from));
        row.nreasons = (sel2 >> 5) % (RROW_MAX_REASONS + 1);
        for (size_t i = 0; i < row.nreasons; i++) {
            row.reasons[i].type = (enum rrow_reason)(1 + (sel + i) % RROW_R_OTHER);
            if (i == 0)
                fz_str(&lf, '\t', row.reasons[i].comment, sizeof(row.reasons[i].comment));
        }
        if (rxml_add_row(x, &row, (uint64_t)sel * sel2 + 1) == 0)
            added++;
        else
            FZ_CHECK(rxml_errstr(x)[0] != '\0');
    }
    if (added == 0) {
        /* a report without a record is refused by design */
        FZ_CHECK(rxml_close(&x, err, sizeof(err)) == -1);
        FZ_CHECK(x == NULL);
        unlink(path);
        return 0;
    }
    if (rxml_close(&x, err, sizeof(err)) != 0) {
        fprintf(stderr, "rxml_close: %s\n", err);
        FZ_CHECK(!"rxml_close failed");
    }
    FZ_CHECK(x == NULL);

    size_t len = read_back();
    xmlDocPtr d = xmlReadMemory(doc, (int)len, "report.xml", NULL, XML_PARSE_NONET);
    if (d == NULL) {
        fprintf(stderr, "not well-formed XML:\n%.*s\n", (int)(len < 4000 ? len : 4000), doc);
        FZ_CHECK(d != NULL);
    }
    if (schema[m.format] != NULL) {
        xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema[m.format]);
        FZ_CHECK(vc != NULL);
        xmlSchemaSetValidStructuredErrors(vc, show, NULL);
        int v = xmlSchemaValidateDoc(vc, d);
        xmlSchemaFreeValidCtxt(vc);
        if (v != 0) {
            fprintf(stderr, "schema-invalid report:\n%.*s\n", (int)(len < 4000 ? len : 4000), doc);
            FZ_CHECK(v == 0);
        }
    }
    xmlFreeDoc(d);
    unlink(path);
    return 0;
}
