/* test_dmarc_record.c - the DMARC record parser.
 *
 * Part 1 runs all 66 vectors of shared/testdata/dmarc/dmarc-record-parse-
 * vectors.json (converted to a line format by python3 at test time) in both
 * modes. The vectors record what OpenDMARC, mox and stalwart assert; where
 * they disagree with RFC 9989 we follow the RFC, and the table below says,
 * for every vector, what WE return, plus why when that differs from the
 * source (docs/conformance.md, "DMARC record parsing", has the same list).
 * Part 2: our own table (mode differences, whitespace, case, duplicates,
 * bytes, the p=none fallback, URI lists). Part 3: dmarc_select(),
 * dmarc_uri_size(), dmarc_policy_name(). */
#include "dmarc.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK DMARC_PARSE_OK
#define NOT DMARC_PARSE_NOT_DMARC
#define INV DMARC_PARSE_INVALID

/* Our verdict for each vector: result in RFC 9989 and RFC 7489 mode, a
 * deviation note when we differ from the source (NULL: we agree), and
 * overrides of the source's "parsed" values (space-separated key=value;
 * "rua=" = empty list), checked in the source's mode. */
static const struct vexp {
    const char *id;
    enum dmarc_parse r9989, r7489;
    const char *dev;
    const char *override;
} vexp[] = {
    {"opendmarc-parse-01", OK, OK, NULL, NULL},
    {"opendmarc-parse-02", OK, OK, NULL, NULL},
    {"opendmarc-parse-03", OK, OK, NULL, NULL},
    {"opendmarc-parse-04", OK, OK, NULL, NULL},
    {"opendmarc-parse-05", INV, INV, "p=n is not dmarc-request; no rua -> no policy (9989 4.10.1)",
     NULL},
    {"opendmarc-parse-06", NOT, NOT, NULL, NULL},
    {"opendmarc-parse-07", NOT, NOT, NULL, NULL},
    {"opendmarc-parse-08", INV, INV, NULL, NULL},
    {"opendmarc-parse-09", INV, INV, NULL, NULL},
    {"opendmarc-parse-10", OK, OK, "invalid adkim ignored, default r (9989 4.8)", NULL},
    {"opendmarc-parse-11", OK, OK, "invalid aspf ignored, default r (9989 4.8)", NULL},
    {"opendmarc-parse-12", OK, OK, "rf: unknown tag in 9989; ignored in 7489 (4.8)", NULL},
    {"opendmarc-parse-13", OK, OK, "invalid ri ignored, default 86400 (4.8)", NULL},
    {"opendmarc-parse-14", OK, OK, "invalid pct ignored, default 100 (7489 6.3)", NULL},
    {"opendmarc-parse-15", INV, INV, NULL, NULL},
    {"opendmarc-parse-16", OK, OK, NULL, NULL},
    {"opendmarc-parse-17", OK, OK, NULL, NULL},
    {"opendmarc-parse-18", OK, OK, NULL, NULL},
    {"opendmarc-parse-19", OK, OK, "rf value ignored (4.8)", NULL},
    {"mox-parse-bad-01", NOT, NOT, NULL, NULL},
    {"mox-parse-bad-02", NOT, NOT, NULL, NULL},
    {"mox-parse-bad-03", NOT, NOT, NULL, NULL},
    {"mox-parse-bad-04", INV, INV, NULL, NULL},
    {"mox-parse-bad-05", NOT, NOT, NULL, NULL},
    {"mox-parse-bad-06", NOT, NOT, NULL, NULL},
    {"mox-parse-bad-07", INV, INV, NULL, NULL},
    {"mox-parse-bad-08", INV, INV, NULL, NULL},
    {"mox-parse-bad-09", OK, OK, "tag order is free after v (9989 ABNF, 7489 6.3 text)", NULL},
    {"mox-parse-bad-10", INV, INV, NULL, NULL},
    {"mox-parse-bad-11", INV, INV, NULL, NULL},
    {"mox-parse-bad-12", INV, INV, NULL, NULL},
    {"mox-parse-bad-13", INV, INV, NULL, NULL},
    {"mox-parse-bad-14", INV, INV, NULL, NULL},
    {"mox-parse-bad-15", INV, INV, NULL, NULL},
    {"mox-parse-bad-16", INV, INV, NULL, NULL},
    {"mox-parse-bad-17", INV, INV, NULL, NULL},
    {"mox-parse-bad-18", INV, INV, NULL, NULL},
    {"mox-parse-bad-19", INV, INV, NULL, NULL},
    {"mox-parse-bad-20", INV, INV, NULL, NULL},
    {"mox-parse-bad-21", INV, INV, NULL, NULL},
    {"mox-parse-bad-22", INV, INV, NULL, NULL},
    {"mox-parse-bad-23", INV, INV, NULL, NULL},
    {"mox-parse-bad-24", INV, INV, NULL, NULL},
    {"mox-parse-bad-25", INV, INV, NULL, NULL},
    {"mox-parse-bad-26", INV, INV, NULL, NULL},
    {"mox-parse-bad-27", INV, INV, NULL, NULL},
    {"mox-parse-bad-28", INV, INV, NULL, NULL},
    {"mox-parse-bad-29", INV, INV, NULL, NULL},
    {"mox-parse-bad-30", INV, INV, NULL, NULL},
    {"mox-parse-bad-31", INV, INV, NULL, NULL},
    {"mox-parse-bad-32", INV, INV, NULL, NULL},
    {"mox-parse-bad-33", INV, INV, NULL, NULL},
    /* RFC 7489 mode: the size must fit in 64 bits (so mox agrees); RFC 9989
     * has no bound and the valid rua makes it p=none. */
    {"mox-parse-bad-34", OK, INV, NULL, NULL},
    {"mox-parse-bad-35", INV, INV, NULL, NULL},
    {"mox-parse-valid-01", OK, OK, NULL, NULL},
    {"mox-parse-valid-02", OK, OK, NULL, NULL},
    {"mox-parse-valid-03", OK, OK, NULL, NULL},
    {"mox-parse-valid-04", OK, OK, NULL, NULL},
    {"mox-parse-valid-05", OK, OK, NULL, NULL},
    {"mox-parse-valid-06", OK, OK, NULL, NULL},
    {"stalwart-parse-01", OK, OK, NULL, NULL},
    {"stalwart-parse-02", OK, OK, NULL, NULL},
    {"stalwart-parse-03", OK, OK, NULL, NULL},
    {"stalwart-parse-04", OK, OK, NULL, NULL},
    {"stalwart-parse-05", OK, OK, "WSP inside a rua entry/size is not URI syntax: both dropped",
     "rua="},
    {"stalwart-parse-06", OK, OK, NULL, NULL},
};
#define NVEXP (sizeof(vexp) / sizeof(vexp[0]))

/* Converts the JSON vectors to lines: id TAB expect TAB hex(record) then
 * TAB key=hex(value) per parsed value (lists: entries joined by LF; a URI
 * entry is "uri SP bytes-limit"). No single quotes: it goes inside '...'. */
static const char py[] =
    "import json,sys\n"
    "d=json.load(open(sys.argv[1]))\n"
    "M={\"\":1,\"k\":1<<10,\"m\":1<<20,\"g\":1<<30,\"t\":1<<40}\n"
    "def u(x):\n"
    "  if isinstance(x,str): return x+\" 0\"\n"
    "  if \"max_size_bytes\" in x: return x[\"uri\"]+\" %d\"%x[\"max_size_bytes\"]\n"
    "  return x[\"uri\"]+\" %d\"%(x[\"max_size\"]*M[x.get(\"unit\",\"\").lower()])\n"
    "for v in d[\"vectors\"]:\n"
    "  f=[v[\"id\"],v[\"expect\"],v[\"record\"].encode().hex()]\n"
    "  for k,x in v.get(\"parsed\",{}).items():\n"
    "    if k in (\"rua\",\"ruf\"): x=\"\\n\".join(u(e) for e in x)\n"
    "    elif isinstance(x,list): x=\":\".join(x)\n"
    "    elif isinstance(x,bool): x=\"y\" if x else \"n\"\n"
    "    f.append(k+\"=\"+str(x).encode().hex())\n"
    "  print(\"\\t\".join(f))\n";

static size_t unhex(const char *h, size_t hn, char *out, size_t outlen)
{
    size_t n = 0;

    for (size_t i = 0; i + 1 < hn && n + 1 < outlen; i += 2) {
        unsigned v;
        if (sscanf(h + i, "%2x", &v) != 1)
            break;
        out[n++] = (char)v;
    }
    out[n] = '\0';
    return n;
}

static const char *pname(enum dmarc_policy p)
{
    return p == DMARC_P_UNSET ? "-" : dmarc_policy_name(p);
}

/* field: our value of a "parsed" key, as the vectors spell it. sp/np are the
 * effective policies (the sources report them with inheritance applied). */
static int field(const struct dmarc_record *r, const char *k, char *buf, size_t len)
{
    enum dmarc_policy sp = r->sp ? r->sp : r->p;

    if (strcmp(k, "p") == 0)
        snprintf(buf, len, "%s", pname(r->p));
    else if (strcmp(k, "sp") == 0)
        snprintf(buf, len, "%s", pname(sp));
    else if (strcmp(k, "np") == 0)
        snprintf(buf, len, "%s", pname(r->np ? r->np : sp));
    else if (strcmp(k, "adkim") == 0 || strcmp(k, "aspf") == 0)
        snprintf(buf, len, "%s",
                 (k[1] == 'd' ? r->adkim : r->aspf) == DMARC_ALIGN_STRICT ? "s" : "r");
    else if (strcmp(k, "fo") == 0)
        snprintf(buf, len, "%s", r->fo);
    else if (strcmp(k, "pct") == 0)
        snprintf(buf, len, "%d", r->pct);
    else if (strcmp(k, "ri") == 0)
        snprintf(buf, len, "%u", r->ri);
    else if (strcmp(k, "t") == 0)
        snprintf(buf, len, "%s", r->testing ? "y" : "n");
    else if (strcmp(k, "psd") == 0)
        snprintf(buf, len, "%s", r->psd == DMARC_PSD_Y ? "y" : r->psd == DMARC_PSD_N ? "n" : "u");
    else
        return 0;
    return 1;
}

/* uris_match: our list against "uri bytes\n..." from the vectors. A source
 * that strips "mailto:" (stalwart) is compared without it; the "!size"
 * suffix is compared as a byte count through dmarc_uri_size(). */
static int uris_match(const char (*list)[DMARC_URI_MAX], size_t n, const char *want, char *why,
                      size_t whylen)
{
    char copy[2048], *save = NULL, *line;
    size_t i = 0;

    snprintf(copy, sizeof(copy), "%s", want);
    for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strrchr(line, ' ');
        unsigned long long wbytes = strtoull(sp + 1, NULL, 10), bytes;
        size_t ulen, off = 0;

        *sp = '\0';
        if (i >= n) {
            snprintf(why, whylen, "missing entry %zu (%s)", i, line);
            return 0;
        }
        ulen = dmarc_uri_size(list[i], &bytes);
        if (strncmp(line, "mailto:", 7) != 0 && strncmp(list[i], "mailto:", 7) == 0)
            off = 7;
        if (ulen - off != strlen(line) || strncmp(list[i] + off, line, ulen - off) != 0 ||
            bytes != wbytes) {
            snprintf(why, whylen, "entry %zu: ours '%s', source '%s' (%llu bytes)", i, list[i],
                     line, wbytes);
            return 0;
        }
        i++;
    }
    if (i != n) {
        snprintf(why, whylen, "we keep %zu entries, source %zu", n, i);
        return 0;
    }
    return 1;
}

/* check_parsed: every parsed key of the vector (after overrides) against r.
 * Returns 1 when all match; reports each mismatch when report is set. */
static int check_parsed(const struct dmarc_record *r, char *kvs, const char *override,
                        const char *id, int report)
{
    char *save = NULL, *kv;
    int all = 1;

    for (kv = strtok_r(kvs, "\t", &save); kv != NULL; kv = strtok_r(NULL, "\t", &save)) {
        char want[2048], got[256], why[512];
        char *eqs = strchr(kv, '=');
        const char *ov;
        size_t klen;
        int match;

        if (eqs == NULL)
            continue;
        *eqs = '\0';
        unhex(eqs + 1, strlen(eqs + 1), want, sizeof(want));
        klen = strlen(kv);
        /* An override "key=value" replaces the source's value. */
        if (override != NULL && (ov = strstr(override, kv)) != NULL && ov[klen] == '=' &&
            (ov == override || ov[-1] == ' ')) {
            size_t vl = strcspn(ov + klen + 1, " ");
            snprintf(want, sizeof(want), "%.*s", (int)vl, ov + klen + 1);
        }
        if (strcmp(kv, "v") == 0 || strcmp(kv, "rf") == 0)
            continue; /* v is implied by OK; rf has no field (afrf only) */
        if (strcmp(kv, "rua") == 0 || strcmp(kv, "ruf") == 0) {
            why[0] = '\0';
            match = kv[1] == 'u' && kv[2] == 'a'
                        ? uris_match(r->rua, r->nrua, want, why, sizeof(why))
                        : uris_match(r->ruf, r->nruf, want, why, sizeof(why));
            if (report)
                ok(match, "%s: parsed %s (%s)", id, kv, why);
        } else {
            if (!field(r, kv, got, sizeof(got))) {
                if (report)
                    ok(0, "%s: parsed key %s not checked by this test", id, kv);
                all = 0;
                continue;
            }
            if (strcmp(kv, "psd") == 0 && strcmp(want, "default") == 0)
                strcpy(want, "u");
            match = strcasecmp(got, want) == 0;
            if (report)
                is_str(got, want, "%s: parsed %s", id, kv);
        }
        all &= match;
    }
    return all;
}

static int run_vectors(void)
{
    const char *shared = getenv("PD_SHARED");
    char cmd[8192], line[16384];
    FILE *fp;
    int n = 0, ndev = 0;
    int done[NVEXP] = {0};

    snprintf(cmd, sizeof(cmd),
             "python3 -c '%s' '%s/testdata/dmarc/dmarc-record-parse-vectors.json'", py,
             shared ? shared : "../shared");
    if ((fp = popen(cmd, "r")) == NULL) {
        ok(0, "popen python3");
        return 0;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char rec[4096], kvs[16384], err[256];
        char *id = line, *expect, *hex, *rest;
        const struct vexp *e = NULL;
        struct dmarc_record r9, r7;
        enum dmarc_parse g9, g7, gsrc;
        size_t rlen;
        int src_valid, agree, is9989;

        line[strcspn(line, "\n")] = '\0';
        if ((expect = strchr(id, '\t')) == NULL || (hex = strchr(expect + 1, '\t')) == NULL) {
            ok(0, "bad converter line '%s'", line);
            continue;
        }
        *expect++ = '\0';
        *hex++ = '\0';
        rest = strchr(hex, '\t');
        rlen = unhex(hex, rest ? (size_t)(rest - hex) : strlen(hex), rec, sizeof(rec));
        snprintf(kvs, sizeof(kvs), "%s", rest ? rest + 1 : "");
        for (size_t k = 0; k < NVEXP; k++) {
            if (strcmp(vexp[k].id, id) == 0) {
                e = &vexp[k];
                done[k] = 1;
            }
        }
        n++;
        if (!ok(e != NULL, "%s: has an entry in our table", id))
            continue;
        g9 = dmarc_record_parse(rec, rlen, DMARC_MODE_RFC9989, &r9, err, sizeof(err));
        is_int(g9, e->r9989, "%s: RFC 9989 mode result (%s)", id, err);
        g7 = dmarc_record_parse(rec, rlen, DMARC_MODE_RFC7489, &r7, err, sizeof(err));
        is_int(g7, e->r7489, "%s: RFC 7489 mode result (%s)", id, err);

        /* The source's own mode: stalwart implements RFC 9989, the others
         * RFC 7489. Our agreement with it must be what the table says. */
        is9989 = strncmp(id, "stalwart", 8) == 0;
        gsrc = is9989 ? g9 : g7;
        src_valid = strcmp(expect, "valid") == 0;
        agree = src_valid == (gsrc == DMARC_PARSE_OK);
        if (agree && gsrc == DMARC_PARSE_OK && kvs[0] != '\0') {
            char copy[16384];
            snprintf(copy, sizeof(copy), "%s", kvs);
            agree = check_parsed(is9989 ? &r9 : &r7, copy, NULL, id, 0);
        }
        if (e->dev != NULL) {
            ndev++;
            ok(!agree, "%s: deviates from the source as documented: %s", id, e->dev);
        } else {
            ok(agree, "%s: agrees with the source (%s)", id, expect);
        }
        if (gsrc == DMARC_PARSE_OK && kvs[0] != '\0')
            check_parsed(is9989 ? &r9 : &r7, kvs, e->override, id, 1);
    }
    pclose(fp);
    for (size_t k = 0; k < NVEXP; k++)
        if (!done[k])
            ok(0, "%s: in our table but not in the vector file", vexp[k].id);
    diag("%d vectors, %d documented deviations from their source", n, ndev);
    return n;
}

/* Own cases: mode, record, result, checks ("key=value ..."; keys: p sp np
 * raw ("-" = unset), pct ri fo adkim aspf psd t implied ignored nrua nruf
 * rua0.. ruf0.., err~substring). */
static const struct own {
    enum dmarc_mode mode;
    const char *rec;
    enum dmarc_parse want;
    const char *checks;
} own[] = {
    /* pct, ri, rf: RFC 7489 only */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; pct=25", OK, "p=reject pct=100 ignored=0"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; pct=25", OK, "p=reject pct=25 ignored=0"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; pct=0", OK, "pct=0"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; pct=101", OK, "pct=100 ignored=1 err~pct"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; pct=0100", OK, "pct=100 ignored=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; pct=bogus", OK, "pct=100 ignored=0"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; ri=3600", OK, "ri=86400"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; ri=3600", OK, "ri=3600"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; ri=4294967295", OK, "ri=4294967295"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; ri=4294967296", OK, "ri=86400 ignored=1"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; rf=afrf:iodef", OK, "ignored=0"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=reject; rf=-x", OK, "ignored=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; rf=-x", OK, "ignored=0"},
    /* pct/rf/ri are unknown tags in RFC 9989 but still may not repeat */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; pct=5; pct=6", INV, "err~duplicate"},
    /* fo: RFC 9989 grammar vs RFC 7489 grammar */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; fo=0:1", OK, "fo=0 ignored=1"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=none; fo=0:1", OK, "fo=0:1 ignored=0"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; fo=d:d", OK, "fo=0 ignored=1"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=none; fo=d:d", OK, "fo=d:d"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; fo=0 : d", OK, "fo=0 ignored=1"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=none; fo=0 : d", OK, "fo=0_:_d"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; fo=d:s:1", OK, "fo=d:s:1 ignored=0"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; fo=D", OK, "fo=D"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; fo=1:", OK, "fo=0 ignored=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; fo=2", OK, "fo=0 ignored=1"},
    /* whitespace */
    {DMARC_MODE_RFC9989, "v = DMARC1 ;\tp = quarantine\t;", OK, "p=quarantine ignored=0"},
    {DMARC_MODE_RFC9989, "v=DMARC1;p=reject", OK, "p=reject"},
    {DMARC_MODE_RFC9989, "v=DMARC1 ; p=reject ; ", OK, "p=reject ignored=0"},
    {DMARC_MODE_RFC9989, "v=DMARC1\t; p=reject", OK, "p=reject"},
    {DMARC_MODE_RFC9989, " v=DMARC1; p=reject", NOT, ""},
    {DMARC_MODE_RFC9989, "v=DMARC1 p=reject", NOT, ""},
    {DMARC_MODE_RFC9989, "v=DMARC1 ", INV, "err~no_p_tag"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=re ject", INV, "err~invalid_p"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; adkim=s s", OK, "adkim=r ignored=1"},
    /* case */
    {DMARC_MODE_RFC9989, "V=DMARC1; P=REJECT; SP=Quarantine; NP=None; ADKIM=S; Aspf=S", OK,
     "p=reject sp=quarantine np=none adkim=s aspf=s"},
    {DMARC_MODE_RFC9989, "v=Dmarc1; p=reject", NOT, ""},
    {DMARC_MODE_RFC7489, "v=dmarc1; p=reject", NOT, ""},
    {DMARC_MODE_RFC9989, "v=DMARC1; PSD=Y; T=Y; p=none", OK, "psd=y t=y"},
    /* duplicates (RFC 6376 3.2) */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; P=none", INV, "err~duplicate"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; x=1; X=2", INV, "err~duplicate"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; v=DMARC1", INV, "err~duplicate"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; rua=; rua=mailto:a@example.com", INV, "err~duplicate"},
    /* bytes */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; rua=mailto:a@example.com\r\n", INV, "err~0x0d"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; x=\xc3\xa9", INV, "err~non-ASCII"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; x=\x7f", INV, ""},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; x=a\tb", OK, ""},
    /* the p=none fallback (RFC 9989 4.10.1) */
    {DMARC_MODE_RFC9989, "v=DMARC1; rua=mailto:a@example.com", OK, "p=none implied=1 nrua=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; np=bogus; rua=mailto:a@example.com", OK,
     "p=none np=- sp=- implied=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; sp=bogus; np=reject; rua=mailto:a@example.com", OK,
     "p=none np=- sp=- implied=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=bogus; rua=bogus, mailto:a@example.com", OK,
     "p=none implied=1 nrua=1 rua0=mailto:a@example.com"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=bogus; rua=mailto:a@example.com", OK, "p=none implied=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; sp=bogus", INV, "err~invalid_sp"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; np=", OK, "p=reject implied=0 ignored=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=bogus; ruf=mailto:a@example.com", INV, "err~invalid_p"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=reject; sp=none; np=reject", OK,
     "p=reject sp=none np=reject implied=0 ignored=0"},
    /* URI lists */
    {DMARC_MODE_RFC9989,
     "v=DMARC1; p=none; rua= mailto:a@example.com , mailto:b@example.com!10m ,\tftp://x.example",
     OK, "nrua=3 rua0=mailto:a@example.com rua1=mailto:b@example.com!10m rua2=ftp://x.example"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; rua=mailto:a@example.com,,mailto:b@example.com", OK,
     "nrua=2 ignored=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; rua=mailto:a%2cb@example.com,mailto:a%2@x", OK,
     "nrua=1 rua0=mailto:a%2cb@example.com ignored=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; rua=mailto:a b@x,1x:y,:y,mailto", OK,
     "nrua=0 ignored=4"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; ruf=mailto:a@x!1T,mailto:b@x!1x,mailto:c@x!", OK,
     "nruf=1 ruf0=mailto:a@x!1T ignored=2"},
    {DMARC_MODE_RFC9989,
     "v=DMARC1; p=none; rua=mailto:1@x,mailto:2@x,mailto:3@x,mailto:4@x,mailto:5@x,mailto:6@x,"
     "mailto:7@x,mailto:8@x,mailto:9@x",
     OK, "nrua=8 rua7=mailto:8@x ignored=1"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; rua=mailto:a@x!18446744073709551616", OK, "nrua=1"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=none; rua=mailto:a@x!18446744073709551616", OK,
     "nrua=0 ignored=1"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=none; rua=mailto:a@x!18446744073709551615k", OK, "nrua=1"},
    /* malformed tag-specs are ignored (RFC 9989 4.8) */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; bogus;", OK, "p=none ignored=1 err~without"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; =x; ab_c=1; 1=2", OK, "ignored=3"},
    {DMARC_MODE_RFC9989, "v=DMARC1;; p=none;;", OK, "ignored=2"},
    /* psd / t */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; psd=n; t=n", OK, "psd=n t=n"},
    {DMARC_MODE_RFC9989, "v=DMARC1; p=none; psd=x; t=yes", OK, "psd=u t=n ignored=2"},
    {DMARC_MODE_RFC7489, "v=DMARC1; p=none; psd=y; t=y", OK, "psd=y t=y"},
    /* defaults */
    {DMARC_MODE_RFC9989, "v=DMARC1; p=quarantine", OK,
     "p=quarantine sp=- np=- adkim=r aspf=r fo=0 pct=100 ri=86400 psd=u t=n nrua=0 nruf=0 "
     "implied=0 ignored=0"},
    /* not DMARC at all */
    {DMARC_MODE_RFC9989, "v=spf1 -all", NOT, "err~not_a_DMARC"},
    {DMARC_MODE_RFC9989, "v=DMARC10; p=none", NOT, ""},
    {DMARC_MODE_RFC9989, "vx=DMARC1; p=none", NOT, ""},
    {DMARC_MODE_RFC9989, "p=none; v=DMARC1", NOT, ""},
    {DMARC_MODE_RFC9989, "v:DMARC1; p=none", NOT, ""},
};

static int own_check(const struct dmarc_record *r, const char *err, const char *checks, char *why,
                     size_t whylen)
{
    char copy[1024], *save = NULL, *kv;

    snprintf(copy, sizeof(copy), "%s", checks);
    for (kv = strtok_r(copy, " ", &save); kv != NULL; kv = strtok_r(NULL, " ", &save)) {
        char got[300];
        char *v = strchr(kv, '=');
        const char *k = kv;

        if (strncmp(kv, "err~", 4) == 0) {
            for (char *c = kv + 4; *c; c++)
                if (*c == '_')
                    *c = ' ';
            if (strstr(err, kv + 4) == NULL) {
                snprintf(why, whylen, "err '%s' lacks '%s'", err, kv + 4);
                return 0;
            }
            continue;
        }
        *v++ = '\0';
        for (char *c = v; *c; c++)
            if (*c == '_')
                *c = ' ';
        if (strcmp(k, "p") == 0)
            snprintf(got, sizeof(got), "%s", pname(r->p));
        else if (strcmp(k, "sp") == 0)
            snprintf(got, sizeof(got), "%s", pname(r->sp));
        else if (strcmp(k, "np") == 0)
            snprintf(got, sizeof(got), "%s", pname(r->np));
        else if (strcmp(k, "implied") == 0)
            snprintf(got, sizeof(got), "%d", r->p_implied);
        else if (strcmp(k, "ignored") == 0)
            snprintf(got, sizeof(got), "%u", r->nignored);
        else if (strcmp(k, "nrua") == 0)
            snprintf(got, sizeof(got), "%zu", r->nrua);
        else if (strcmp(k, "nruf") == 0)
            snprintf(got, sizeof(got), "%zu", r->nruf);
        else if (strncmp(k, "rua", 3) == 0 && k[3] >= '0' && k[3] <= '9')
            snprintf(got, sizeof(got), "%s",
                     (size_t)(k[3] - '0') < r->nrua ? r->rua[k[3] - '0'] : "");
        else if (strncmp(k, "ruf", 3) == 0 && k[3] >= '0' && k[3] <= '9')
            snprintf(got, sizeof(got), "%s",
                     (size_t)(k[3] - '0') < r->nruf ? r->ruf[k[3] - '0'] : "");
        else if (!field(r, k, got, sizeof(got))) {
            snprintf(why, whylen, "unknown check key %s", k);
            return 0;
        }
        if (strcmp(got, v) != 0) {
            snprintf(why, whylen, "%s: got '%s', want '%s'", k, got, v);
            return 0;
        }
    }
    return 1;
}

static void run_own(void)
{
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        struct dmarc_record r;
        char err[256], why[512] = "";
        enum dmarc_parse g;
        const char *m = own[i].mode == DMARC_MODE_RFC9989 ? "9989" : "7489";

        g = dmarc_record_parse(own[i].rec, strlen(own[i].rec), own[i].mode, &r, err, sizeof(err));
        if (!is_int(g, own[i].want, "own %zu [%s] '%s' -> result (%s)", i, m, own[i].rec, err))
            continue;
        ok(own_check(&r, err, own[i].checks, why, sizeof(why)), "own %zu [%s] '%s': %s %s", i, m,
           own[i].rec, own[i].checks, why);
    }
}

static void run_misc(void)
{
    struct dmarc_record r;
    char err[256];
    unsigned long long bytes;

    /* NUL bytes are seen, not cut off. */
    static const char nul[] = "v=DMARC1; p=reject\0; x=y";
    is_int(dmarc_record_parse(nul, sizeof(nul) - 1, DMARC_MODE_RFC9989, &r, err, sizeof(err)), INV,
           "NUL inside -> invalid (%s)", err);
    static const char nul2[] = "v=DMARC1\0; p=reject";
    is_int(dmarc_record_parse(nul2, sizeof(nul2) - 1, DMARC_MODE_RFC9989, &r, err, sizeof(err)),
           NOT, "NUL inside the version tag -> not DMARC");
    /* Not NUL-terminated: only len bytes are read. */
    is_int(dmarc_record_parse("v=DMARC1; p=reject; p=none", 19, DMARC_MODE_RFC9989, &r, err,
                              sizeof(err)),
           OK, "only len bytes are parsed");
    is_str(pname(r.p), "reject", "... p=reject");
    is_int(dmarc_record_parse(NULL, 0, DMARC_MODE_RFC9989, &r, NULL, 0), NOT,
           "NULL text -> not DMARC, NULL err allowed");
    /* *out reset on failure. */
    dmarc_record_parse("v=DMARC1; p=reject", 18, DMARC_MODE_RFC9989, &r, err, sizeof(err));
    dmarc_record_parse("nope", 4, DMARC_MODE_RFC9989, &r, err, sizeof(err));
    ok(r.p == DMARC_P_UNSET && r.pct == 100, "*out reset by a NOT_DMARC parse");
    /* A record of 64 KiB of unknown tags parses (bounded work). */
    {
        static char big[65536];
        size_t n = (size_t)snprintf(big, sizeof(big), "v=DMARC1; p=reject");
        while (n + 8 < sizeof(big))
            n += (size_t)snprintf(big + n, sizeof(big) - n, "; %c%c%c=1", 'a' + (int)(n % 26),
                                  'a' + (int)(n / 26 % 26), 'a' + (int)(n / 676 % 26));
        ok(dmarc_record_parse(big, n, DMARC_MODE_RFC9989, &r, err, sizeof(err)) != NOT,
           "64 KiB record handled (%s)", err);
    }

    /* dmarc_select */
    {
        const char *none[] = {"v=spf1 -all", "hello"};
        const char *one[] = {"v=DMARC1; p=reject", "other"};
        const char *two[] = {"v=DMARC1; p=reject", "v=DMARC1; p=none"};
        const char *twocase[] = {"V=DMARC1; p=reject", "v = DMARC1;p=none"};
        const char *almost[] = {"v=DMARC1; p=reject", "v=DMARC1 p=none", "v=dmarc1; p=none"};
        const char *bad[] = {"x", "v=DMARC1; p=bogus"};
        const char *withnul[] = {"v=DMARC1; p=reject\0x"};
        size_t lens[] = {20};

        is_int(dmarc_select(none, NULL, 2, DMARC_MODE_RFC9989, &r, err, sizeof(err)), NOT,
               "select: no DMARC record -> NOT_DMARC (%s)", err);
        is_int(dmarc_select(NULL, NULL, 0, DMARC_MODE_RFC9989, &r, err, sizeof(err)), NOT,
               "select: empty set -> NOT_DMARC");
        is_int(dmarc_select(one, NULL, 2, DMARC_MODE_RFC9989, &r, err, sizeof(err)), OK,
               "select: one DMARC among others -> OK");
        is_str(pname(r.p), "reject", "select: ... its p");
        is_int(dmarc_select(two, NULL, 2, DMARC_MODE_RFC9989, &r, err, sizeof(err)), INV,
               "select: two -> INVALID");
        is_str(err, "multiple DMARC records", "select: ... reason");
        is_int(dmarc_select(twocase, NULL, 2, DMARC_MODE_RFC7489, &r, err, sizeof(err)), INV,
               "select: two (spelt differently) -> INVALID");
        is_int(dmarc_select(almost, NULL, 3, DMARC_MODE_RFC9989, &r, err, sizeof(err)), OK,
               "select: look-alikes are not DMARC records");
        is_int(dmarc_select(bad, NULL, 2, DMARC_MODE_RFC9989, &r, err, sizeof(err)), INV,
               "select: the one is unusable -> INVALID (%s)", err);
        is_int(dmarc_select(withnul, lens, 1, DMARC_MODE_RFC9989, &r, err, sizeof(err)), INV,
               "select: lens honoured (NUL inside) -> INVALID");
    }

    /* dmarc_uri_size */
    is_int((long long)dmarc_uri_size("mailto:a@b!10m", &bytes), 10, "uri_size: length w/o suffix");
    is_int((long long)bytes, 10LL << 20, "uri_size: 10m");
    is_int((long long)dmarc_uri_size("mailto:a@b", &bytes), 10, "uri_size: no suffix");
    is_int((long long)bytes, 0, "uri_size: no suffix -> 0");
    dmarc_uri_size("mailto:a@b!5", &bytes);
    is_int((long long)bytes, 5, "uri_size: bytes");
    dmarc_uri_size("mailto:a@b!1K", &bytes);
    is_int((long long)bytes, 1024, "uri_size: 1K");
    dmarc_uri_size("mailto:a@b!2g", &bytes);
    is_int((long long)bytes, 2LL << 30, "uri_size: 2g");
    dmarc_uri_size("mailto:a@b!99999999999999999999999999", &bytes);
    ok(bytes == ~0ULL, "uri_size: saturates");
    dmarc_uri_size("mailto:a@b!99999999t", &bytes);
    ok(bytes == ~0ULL, "uri_size: unit overflow saturates");
    ok(dmarc_uri_size("x:y", NULL) == 3, "uri_size: NULL max_bytes");

    is_str(dmarc_policy_name(DMARC_P_NONE), "none", "policy name none");
    is_str(dmarc_policy_name(DMARC_P_QUARANTINE), "quarantine", "policy name quarantine");
    is_str(dmarc_policy_name(DMARC_P_REJECT), "reject", "policy name reject");
    is_str(dmarc_policy_name(DMARC_P_UNSET), "", "policy name unset");
    ok(dmarc_record_is_dmarc("v=DMARC1", 8) && !dmarc_record_is_dmarc("v=DMARC", 7),
       "is_dmarc: exact prefix");
}

int main(void)
{
    is_int(run_vectors(), 66, "all 66 vectors of dmarc-record-parse-vectors.json were run");
    run_own();
    run_misc();
    return tap_done();
}
