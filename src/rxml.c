/* rxml.c - DMARC aggregate report XML written with libxml2's xmlTextWriter
 * through an xmlOutputBuffer whose callbacks feed a zlib gzFile: one element
 * at a time, nothing kept per row, so memory does not grow with the number of
 * records.
 *
 * Two schemas (shared/testdata/dmarc-aggregate): RFC 9990 (namespace
 * urn:ietf:params:xml:ns:dmarc-2.0, the default) and RFC 7489 (no namespace,
 * as real-world reports are sent). Where a value we hold has no place in the
 * chosen schema we write what the schema allows and say so here:
 *   - RFC 9990 has no <psd> in policy_published, no "sampled_out" reason, and
 *     SPF <scope> only "mfrom" (optional): psd is not written, sampled_out
 *     becomes type "other" with comment "sampled_out", a helo scope is omitted.
 *   - RFC 7489 requires <sp>, <pct>, <fo>, <envelope_from> and SPF <scope>,
 *     has no "policy_test_mode" reason and no "pass" disposition, and only
 *     accepts dotted IPv4 or 8-group IPv6: sp defaults to p, fo to "0", a null
 *     sender gives an empty <envelope_from>, policy_test_mode becomes "other"
 *     with that comment, "pass" becomes "none", IPv6 is written in full form.
 * Every string goes through xml_clean(): invalid UTF-8 and characters XML 1.0
 * forbids (or that are control characters) become '?', so no input can make
 * the document ill-formed; the writer escapes <>&. */
#include "rxml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/xmlIO.h>
#include <libxml/xmlwriter.h>
#include <zlib.h>

#define RXML_NS "urn:ietf:params:xml:ns:dmarc-2.0"
#define RXML_FLUSH_EVERY 256 /* records between writer flushes (early I/O errors) */

struct rxml {
    enum rxml_format fmt;
    char *path;
    gzFile gz;
    xmlTextWriterPtr w;
    uint64_t nrecords;
    int failed;    /* a write failed: the document is unusable */
    char err[256]; /* first failure */
    char *buf;     /* scratch for xml_clean, reused */
    size_t bufsz;
};

static void set_err(struct rxml *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* set_err: a write failed, the document is lost; the first cause is kept. */
static void set_err(struct rxml *x, const char *fmt, ...)
{
    va_list ap;

    if (x->failed)
        return;
    x->failed = 1;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
}

/* row_err: a row was refused before anything of it was written; the
 * document is still good (the caller may skip the row). */
static void row_err(struct rxml *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void row_err(struct rxml *x, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
}

/* ---- gzip sink for the xmlOutputBuffer ---------------------------------- */

static int gz_write_cb(void *ctx, const char *b, int len)
{
    struct rxml *x = ctx;
    int errnum = 0;
    const char *msg;

    if (len <= 0)
        return 0;
    if (gzwrite(x->gz, b, (unsigned)len) == len)
        return len;
    msg = gzerror(x->gz, &errnum);
    if (errnum == Z_ERRNO)
        set_err(x, "%s: write: %s", x->path, strerror(errno));
    else
        set_err(x, "%s: gzip: %s", x->path, msg ? msg : "error");
    return -1;
}

static int gz_close_cb(void *ctx)
{
    (void)ctx; /* gzclose() is called by us, where its result can be seen */
    return 0;
}

/* ---- text cleaning ------------------------------------------------------ */

/* utf8_char: length of the UTF-8 character at s (n bytes available): > 0
 * when it is valid, allowed in XML and not a control; < 0 (minus its
 * length) when well-formed but unwanted (control, surrogate, U+FFFE/FFFF);
 * 0 when the byte starts no valid sequence. */
static int utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    uint32_t cp;
    size_t len, i;

    if (c < 0x80)
        return (c < 0x20 || c == 0x7f) ? -1 : 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0; /* overlong or out of range */
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f) || cp == 0xfffe ||
        cp == 0xffff)
        return -(int)len; /* surrogate, C1 control, not an XML Char */
    return (int)len;
}

/* xml_clean: s made safe for XML text, in x's scratch buffer (valid until the
 * next call). NULL on allocation failure. */
static const char *xml_clean(struct rxml *x, const char *s)
{
    size_t n, i = 0, o = 0;

    if (s == NULL)
        s = "";
    n = strlen(s);
    if (n + 1 > x->bufsz) {
        char *nb = realloc(x->buf, n + 1);
        if (nb == NULL)
            return NULL;
        x->buf = nb;
        x->bufsz = n + 1;
    }
    while (i < n) {
        int l = utf8_char((const unsigned char *)s + i, n - i);
        if (l <= 0) {
            x->buf[o++] = '?'; /* one mark per unwanted character or bad byte */
            i += l < 0 ? (size_t)-l : 1;
        } else {
            memcpy(x->buf + o, s + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        }
    }
    x->buf[o] = '\0';
    return x->buf;
}

/* ---- element helpers (all record failure in x) -------------------------- */

static int el_text(struct rxml *x, const char *name, const char *value)
{
    const char *v;

    if (x->failed)
        return -1;
    v = xml_clean(x, value);
    if (v == NULL) {
        set_err(x, "out of memory");
        return -1;
    }
    if (xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST v) < 0) {
        set_err(x, "%s: cannot write <%s>", x->path, name);
        return -1;
    }
    return 0;
}

static int el_num(struct rxml *x, const char *name, long long v)
{
    char b[32];

    snprintf(b, sizeof(b), "%lld", v);
    return el_text(x, name, b);
}

static int el_start(struct rxml *x, const char *name)
{
    if (x->failed)
        return -1;
    if (xmlTextWriterStartElement(x->w, BAD_CAST name) < 0) {
        set_err(x, "%s: cannot write <%s>", x->path, name);
        return -1;
    }
    return 0;
}

static int el_end(struct rxml *x)
{
    if (x->failed)
        return -1;
    if (xmlTextWriterEndElement(x->w) < 0) {
        set_err(x, "%s: cannot end an element", x->path);
        return -1;
    }
    return 0;
}

static int one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(v, *set) == 0)
            return 1;
    return 0;
}

static const char *const dispositions[] = {"none", "quarantine", "reject", NULL};
static const char *const alignments[] = {"r", "s", NULL};
static const char *const discoveries[] = {"psl", "treewalk", NULL};
static const char *const testings[] = {"n", "y", NULL};
static const char *const dmarc_results[] = {"pass", "fail", NULL};
static const char *const spf_results[] = {"none",     "neutral",   "pass",      "fail",
                                          "softfail", "temperror", "permerror", NULL};

/* ---- document ----------------------------------------------------------- */

static void write_policy(struct rxml *x, const struct rrow_policy *p)
{
    const char *pv = one_of(p->p, dispositions) ? p->p : "none";

    el_start(x, "policy_published");
    el_text(x, "domain", p->domain);
    if (x->fmt == RXML_RFC9990) {
        /* XSD order; all optional fields omitted when unknown/absent. */
        el_text(x, "p", pv);
        if (one_of(p->sp, dispositions))
            el_text(x, "sp", p->sp);
        if (one_of(p->np, dispositions))
            el_text(x, "np", p->np);
        if (one_of(p->adkim, alignments))
            el_text(x, "adkim", p->adkim);
        if (one_of(p->aspf, alignments))
            el_text(x, "aspf", p->aspf);
        if (one_of(p->discovery_method, discoveries))
            el_text(x, "discovery_method", p->discovery_method);
        if (p->fo[0])
            el_text(x, "fo", p->fo);
        if (one_of(p->testing, testings))
            el_text(x, "testing", p->testing);
    } else {
        /* RFC 7489: adkim?, aspf?, then p, sp, pct, fo all required. */
        if (one_of(p->adkim, alignments))
            el_text(x, "adkim", p->adkim);
        if (one_of(p->aspf, alignments))
            el_text(x, "aspf", p->aspf);
        el_text(x, "p", pv);
        el_text(x, "sp", one_of(p->sp, dispositions) ? p->sp : pv); /* sp defaults to p */
        el_num(x, "pct", p->pct < 0 ? 0 : p->pct > 100 ? 100 : p->pct);
        el_text(x, "fo", p->fo[0] ? p->fo : "0");
    }
    el_end(x);
}

struct rxml *rxml_open(const char *path, const struct rxml_meta *m, char *err, size_t errlen)
{
    struct rxml *x;
    xmlOutputBufferPtr out;
    int fd;

    if (m == NULL || m->policy == NULL || path == NULL) {
        snprintf(err, errlen, "rxml_open: missing metadata or policy");
        return NULL;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL || (x->path = strdup(path)) == NULL) {
        free(x);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->fmt = m->format == RXML_RFC7489 ? RXML_RFC7489 : RXML_RFC9990;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(x->path);
        free(x);
        return NULL;
    }
    x->gz = gzdopen(fd, "wb6");
    if (x->gz == NULL) {
        snprintf(err, errlen, "%s: gzdopen failed", path);
        close(fd);
        goto fail_unlink;
    }
    out = xmlOutputBufferCreateIO(gz_write_cb, gz_close_cb, x, NULL);
    if (out == NULL || (x->w = xmlNewTextWriter(out)) == NULL) {
        if (out)
            xmlOutputBufferClose(out);
        snprintf(err, errlen, "libxml2: cannot create the writer");
        goto fail_unlink;
    }
    xmlTextWriterSetIndent(x->w, 1);
    xmlTextWriterSetIndentString(x->w, BAD_CAST "  ");

    if (xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL) < 0)
        set_err(x, "%s: cannot start the document", path);
    if (x->fmt == RXML_RFC9990) {
        if (!x->failed &&
            xmlTextWriterStartElementNS(x->w, NULL, BAD_CAST "feedback", BAD_CAST RXML_NS) < 0)
            set_err(x, "%s: cannot write <feedback>", path);
    } else {
        el_start(x, "feedback");
    }
    el_text(x, "version", "1.0");

    el_start(x, "report_metadata");
    el_text(x, "org_name", m->org_name);
    el_text(x, "email", m->email);
    if (m->extra_contact && m->extra_contact[0])
        el_text(x, "extra_contact_info", m->extra_contact);
    el_text(x, "report_id", m->report_id);
    el_start(x, "date_range");
    el_num(x, "begin", m->begin);
    el_num(x, "end", m->end);
    el_end(x);
    if (x->fmt == RXML_RFC9990 && m->generator && m->generator[0])
        el_text(x, "generator", m->generator);
    el_end(x);

    write_policy(x, m->policy);
    if (!x->failed && xmlTextWriterFlush(x->w) < 0)
        set_err(x, "%s: flush failed", path);
    if (x->failed) {
        snprintf(err, errlen, "%s", x->err);
        rxml_abort(&x);
        return NULL;
    }
    return x;

fail_unlink:
    if (x->w)
        xmlFreeTextWriter(x->w);
    if (x->gz)
        gzclose(x->gz);
    unlink(path);
    free(x->path);
    free(x);
    return NULL;
}

/* source_ip: RFC 7489's pattern takes dotted IPv4 or 8-group IPv6 only. */
static const char *source_ip(const struct rxml *x, const char *ip, char *b, size_t sz)
{
    struct in6_addr a6;
    const uint8_t *u;

    if (x->fmt != RXML_RFC7489 || inet_pton(AF_INET6, ip, &a6) != 1)
        return ip;
    u = a6.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a6))
        snprintf(b, sz, "%u.%u.%u.%u", u[12], u[13], u[14], u[15]);
    else
        snprintf(b, sz, "%x:%x:%x:%x:%x:%x:%x:%x", u[0] << 8 | u[1], u[2] << 8 | u[3],
                 u[4] << 8 | u[5], u[6] << 8 | u[7], u[8] << 8 | u[9], u[10] << 8 | u[11],
                 u[12] << 8 | u[13], u[14] << 8 | u[15]);
    return b;
}

/* reason_type: the schema's name for r; *note gets the original name when
 * the schema has no such type and "other" is written instead. */
static const char *reason_type(enum rxml_format fmt, enum rrow_reason r, const char **note)
{
    *note = NULL;
    switch (r) {
    case RROW_R_LOCAL_POLICY:
        return "local_policy";
    case RROW_R_TRUSTED_FORWARDER:
        return "trusted_forwarder";
    case RROW_R_MAILING_LIST:
        return "mailing_list";
    case RROW_R_POLICY_TEST_MODE:
        if (fmt == RXML_RFC9990)
            return "policy_test_mode";
        *note = "policy_test_mode";
        return "other";
    case RROW_R_SAMPLED_OUT:
        if (fmt == RXML_RFC7489)
            return "sampled_out";
        *note = "sampled_out";
        return "other";
    case RROW_R_NONE:
    case RROW_R_OTHER:
    default:
        return "other";
    }
}

static void write_reason(struct rxml *x, const struct rrow_reason_item *ri)
{
    const char *note, *type = reason_type(x->fmt, ri->type, &note);
    char comment[RROW_COMMENT_MAX + 32];

    if (note && ri->comment[0])
        snprintf(comment, sizeof(comment), "%s: %s", note, ri->comment);
    else
        snprintf(comment, sizeof(comment), "%s", note ? note : ri->comment);
    el_start(x, "reason");
    el_text(x, "type", type);
    if (comment[0])
        el_text(x, "comment", comment);
    el_end(x);
}

int rxml_add_row(struct rxml *x, const struct rrow *row, uint64_t count)
{
    char ipb[64], cnt[32];
    const char *disp = row->disposition, *scope;
    struct in_addr a4;
    struct in6_addr a6;
    size_t i, nr;

    if (x == NULL || row == NULL)
        return -1;
    if (x->failed)
        return -1;
    if (x->fmt == RXML_RFC7489 && strcmp(disp, "pass") == 0)
        disp = "none"; /* no action was taken: 7489 has no "pass" */
    /* Values outside the schema would make the whole report invalid: refuse
     * the row (the rest of the report is unaffected). */
    if (inet_pton(AF_INET, row->source_ip, &a4) != 1 &&
        inet_pton(AF_INET6, row->source_ip, &a6) != 1) {
        row_err(x, "row refused: source_ip \"%.64s\" is not an IP address", row->source_ip);
        return -1;
    }
    if (!one_of(disp, dispositions) && !(x->fmt == RXML_RFC9990 && strcmp(disp, "pass") == 0)) {
        row_err(x, "row %s refused: invalid disposition \"%.16s\"", row->source_ip,
                row->disposition);
        return -1;
    }
    if (!one_of(row->dmarc_spf, dmarc_results) || !one_of(row->spf_result, spf_results)) {
        row_err(x, "row %s refused: invalid SPF result", row->source_ip);
        return -1;
    }
    /* Our SPF identity is MAIL FROM, or HELO for the null sender. */
    if (strcmp(row->spf_scope, "mfrom") == 0 || strcmp(row->spf_scope, "helo") == 0)
        scope = row->spf_scope;
    else
        scope = row->envelope_from[0] ? "mfrom" : "helo";

    el_start(x, "record");
    el_start(x, "row");
    el_text(x, "source_ip", source_ip(x, row->source_ip, ipb, sizeof(ipb)));
    snprintf(cnt, sizeof(cnt), "%" PRIu64, count);
    el_text(x, "count", cnt);
    el_start(x, "policy_evaluated");
    el_text(x, "disposition", disp);
    el_text(x, "dkim", "fail"); /* no aligned DKIM pass observed: DKIM not evaluated */
    el_text(x, "spf", row->dmarc_spf);
    nr = row->nreasons < RROW_MAX_REASONS ? row->nreasons : RROW_MAX_REASONS;
    for (i = 0; i < nr; i++)
        if (row->reasons[i].type != RROW_R_NONE)
            write_reason(x, &row->reasons[i]);
    el_end(x); /* policy_evaluated */
    el_end(x); /* row */

    el_start(x, "identifiers");
    if (x->fmt == RXML_RFC9990) {
        el_text(x, "header_from", row->header_from);
        if (row->envelope_from[0])
            el_text(x, "envelope_from", row->envelope_from);
    } else {
        el_text(x, "envelope_from", row->envelope_from); /* required, "" for <> */
        el_text(x, "header_from", row->header_from);
    }
    el_end(x);

    el_start(x, "auth_results"); /* no <dkim>: we never saw a signature */
    el_start(x, "spf");
    el_text(x, "domain", row->spf_domain);
    if (x->fmt == RXML_RFC7489 || strcmp(scope, "mfrom") == 0)
        el_text(x, "scope", scope);
    el_text(x, "result", row->spf_result);
    el_end(x);
    el_end(x); /* auth_results */
    el_end(x); /* record */

    if (x->failed)
        return -1;
    if (++x->nrecords % RXML_FLUSH_EVERY == 0 && xmlTextWriterFlush(x->w) < 0) {
        set_err(x, "%s: flush failed", x->path);
        return -1;
    }
    return 0;
}

const char *rxml_errstr(const struct rxml *x)
{
    return x && x->err[0] ? x->err : "";
}

/* finish: free the writer (flushing it) and close the gzip stream; 0 or -1. */
static int finish(struct rxml *x)
{
    int zr;

    if (x->w) {
        xmlFreeTextWriter(x->w); /* flushes through gz_write_cb */
        x->w = NULL;
    }
    if (x->gz) {
        zr = gzclose(x->gz);
        x->gz = NULL;
        if (zr != Z_OK)
            set_err(x, "%s: close: %s", x->path, zr == Z_ERRNO ? strerror(errno) : "gzip error");
    }
    return x->failed ? -1 : 0;
}

static void destroy(struct rxml **xp)
{
    struct rxml *x = *xp;

    free(x->buf);
    free(x->path);
    free(x);
    *xp = NULL;
}

int rxml_close(struct rxml **xp, char *err, size_t errlen)
{
    struct rxml *x = xp ? *xp : NULL;

    if (x == NULL) {
        snprintf(err, errlen, "rxml_close: no report");
        return -1;
    }
    if (!x->failed && x->nrecords == 0)
        set_err(x, "%s: no record (both schemas require one)", x->path);
    if (!x->failed && xmlTextWriterEndDocument(x->w) < 0)
        set_err(x, "%s: cannot end the document", x->path);
    if (finish(x) < 0) {
        snprintf(err, errlen, "%s", x->err);
        destroy(xp);
        return -1;
    }
    destroy(xp);
    return 0;
}

void rxml_abort(struct rxml **xp)
{
    struct rxml *x = xp ? *xp : NULL;

    if (x == NULL)
        return;
    x->failed = 1;
    finish(x);
    unlink(x->path);
    destroy(xp);
}

/* fname_part: copy s into b (at most max bytes), bytes outside a portable
 * file-name set (and so '/', '!', controls, spaces) replaced by '_'. */
static size_t fname_part(char *b, const char *s, size_t max)
{
    size_t i;

    for (i = 0; s && s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        int safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '-' || c == '_' || c == '+' || c == '=' || c == '@';
        b[i] = safe ? (char)c : '_';
    }
    b[i] = '\0';
    return i;
}

int rxml_filename(char *buf, size_t sz, const char *submitter, const char *domain, long long begin,
                  long long end, const char *report_id)
{
    /* The name must fit NAME_MAX (255): free-text parts are capped at 64
     * bytes and the domain gets what is left. */
    char sub[65], id[65], dom[256];
    char tail[128];
    size_t fixed;
    int n;

    fname_part(sub, submitter, 64);
    fname_part(id, report_id, 64);
    n = snprintf(tail, sizeof(tail), "!%lld!%lld!%s.xml.gz", begin, end, id);
    if (n < 0 || (size_t)n >= sizeof(tail))
        return -1;
    fixed = strlen(sub) + 1 + (size_t)n;
    if (fixed >= 255)
        return -1;
    fname_part(dom, domain, 255 - fixed);
    n = snprintf(buf, sz, "%s!%s%s", sub, dom, tail);
    if (n < 0 || (size_t)n >= sz)
        return -1;
    return n;
}
