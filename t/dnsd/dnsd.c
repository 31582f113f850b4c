/*
 * t-dnsd: a scriptable authoritative DNS server for tests and benchmarks.
 *
 * Serves the RRs of one master file over UDP and TCP on loopback, plus
 * per-name misbehaviour read from `$` directives in the same file (delay,
 * silence, SERVFAIL, REFUSED, truncation, garbage, oversized answers).
 * SIGHUP re-reads the file; SIGTERM/SIGINT exit. Every query is logged as
 * "qname qtype" to an optional query log so tests can assert what was asked.
 * The file format is described in t/dnsd/README.md.
 *
 * Names are keyed by their canonical (lower-case) presentation form in a
 * chained hash table, built once per (re)load; a query costs a few lookups
 * and never touches the disk.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <ldns/ldns.h>

#define MAX_ADDRS 8
#define MAX_CNAME_HOPS 8
#define TCP_IDLE_SECS 30
#define OVERSIZE_MAX_RRS 1200
#define OVERSIZE_TXT_LEN 40

/* ---- a small string-keyed chained hash table ---- */

struct ht_ent {
    char *key; /* owned */
    void *val; /* owned by the table's user (freed via ht_free's callback) */
    struct ht_ent *next;
};

struct ht {
    struct ht_ent **b;
    size_t nb, n;
};

static uint64_t ht_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void ht_init(struct ht *t)
{
    t->nb = 64;
    t->n = 0;
    t->b = calloc(t->nb, sizeof(*t->b));
    if (!t->b)
        abort();
}

static void *ht_get(const struct ht *t, const char *key)
{
    for (struct ht_ent *e = t->b[ht_hash(key) & (t->nb - 1)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

static void ht_grow(struct ht *t)
{
    size_t nb = t->nb * 2;
    struct ht_ent **b = calloc(nb, sizeof(*b));
    if (!b)
        abort();
    for (size_t i = 0; i < t->nb; i++) {
        struct ht_ent *e = t->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t j = ht_hash(e->key) & (nb - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

/* Insert key (copied) -> val; the key must not be present yet. */
static void ht_put(struct ht *t, const char *key, void *val)
{
    if (t->n >= t->nb)
        ht_grow(t);
    struct ht_ent *e = malloc(sizeof(*e));
    if (!e || !(e->key = strdup(key)))
        abort();
    size_t j = ht_hash(key) & (t->nb - 1);
    e->val = val;
    e->next = t->b[j];
    t->b[j] = e;
    t->n++;
}

static void ht_free(struct ht *t, void (*freeval)(void *))
{
    if (!t->b)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        struct ht_ent *e = t->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            if (freeval)
                freeval(e->val);
            free(e->key);
            free(e);
        }
    }
    free(t->b);
    t->b = NULL;
}

/* ---- zone data ---- */

/* One owner name; rrs == NULL marks an empty non-terminal. */
struct node {
    ldns_rr_list *rrs;
};

enum {
    B_SILENT = 1 << 0,
    B_SERVFAIL = 1 << 1,
    B_REFUSED = 1 << 2,
    B_TRUNCATE = 1 << 3,
    B_MALFORMED = 1 << 4,
    B_OVERSIZE = 1 << 5,
};

/* Behaviour attached to a name (or to every name below a suffix). */
struct behave {
    unsigned flags;
    long delay_ms; /* -1: not set here */
};

struct zone {
    struct ht names;    /* canonical name -> struct node */
    struct ht exact;    /* canonical name -> struct behave */
    struct ht below;    /* canonical suffix -> struct behave (from "*.suffix") */
    long default_delay; /* ms */
    uint32_t negttl;    /* SOA minimum/TTL in negative answers */
};

static void node_free(void *p)
{
    struct node *n = p;
    if (n->rrs)
        ldns_rr_list_deep_free(n->rrs);
    free(n);
}

static void zone_free(struct zone **zp)
{
    struct zone *z = *zp;
    if (!z)
        return;
    ht_free(&z->names, node_free);
    ht_free(&z->exact, free);
    ht_free(&z->below, free);
    free(z);
    *zp = NULL;
}

/* Canonical key of a dname: lower-case presentation form with trailing dot.
 * Caller frees. */
static char *dname_key(const ldns_rdf *d)
{
    char *s = ldns_rdf2str(d);
    if (!s)
        abort();
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return s;
}

/* Lower-cases a directive name and makes it absolute. Caller frees. */
static char *text_key(const char *name)
{
    size_t n = strlen(name);
    char *s = malloc(n + 2);
    if (!s)
        abort();
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower((unsigned char)name[i]);
    if (n == 0 || s[n - 1] != '.')
        s[n++] = '.';
    s[n] = '\0';
    return s;
}

/* The parent of a canonical key ("a.b." -> "b.", "b." -> "."), NULL for the
 * root. Returns a pointer into key, or to a static "." for the root. */
static const char *key_parent(const char *key)
{
    if (strcmp(key, ".") == 0)
        return NULL;
    for (const char *p = key; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '.')
            return p[1] ? p + 1 : ".";
    }
    return ".";
}

static struct node *zone_node(const struct zone *z, const char *key)
{
    return ht_get(&z->names, key);
}

static void zone_add_rr(struct zone *z, ldns_rr *rr)
{
    char *key = dname_key(ldns_rr_owner(rr));
    struct node *n = zone_node(z, key);
    if (!n) {
        n = calloc(1, sizeof(*n));
        if (!n)
            abort();
        ht_put(&z->names, key, n);
        /* Ancestors exist as empty non-terminals; once one is present, all
         * of its own ancestors are too. */
        for (const char *p = key_parent(key); p; p = key_parent(p)) {
            if (zone_node(z, p))
                break;
            struct node *ent = calloc(1, sizeof(*ent));
            if (!ent)
                abort();
            ht_put(&z->names, p, ent);
        }
    }
    if (!n->rrs)
        n->rrs = ldns_rr_list_new();
    ldns_rr_list_push_rr(n->rrs, rr);
    free(key);
}

static struct behave *behave_at(struct ht *t, const char *key)
{
    struct behave *b = ht_get(t, key);
    if (!b) {
        b = malloc(sizeof(*b));
        if (!b)
            abort();
        b->flags = 0;
        b->delay_ms = -1;
        ht_put(t, key, b);
    }
    return b;
}

static bool parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

/* Parses one "$NAME args" directive line. Returns false with *err set. */
static bool zone_directive(struct zone *z, char *line, const char **err)
{
    char *save = NULL;
    char *semi = strchr(line, ';'); /* comments end the directive */
    if (semi)
        *semi = '\0';
    char *kw = strtok_r(line, " \t\r\n", &save);
    char *a1 = strtok_r(NULL, " \t\r\n", &save);
    char *a2 = strtok_r(NULL, " \t\r\n", &save);
    char *a3 = strtok_r(NULL, " \t\r\n", &save);
    long v;
    if (a3) {
        *err = "too many arguments";
        return false;
    }
    if (strcasecmp(kw, "$DEFAULT_DELAY") == 0 || strcasecmp(kw, "$NEGTTL") == 0) {
        if (!a1 || a2 || !parse_long(a1, &v)) {
            *err = "expects one non-negative number";
            return false;
        }
        if (strcasecmp(kw, "$DEFAULT_DELAY") == 0)
            z->default_delay = v;
        else
            z->negttl = (uint32_t)v;
        return true;
    }
    static const struct {
        const char *kw;
        unsigned flag;
    } flags[] = {
        {"$SILENT", B_SILENT},
        {"$SERVFAIL", B_SERVFAIL},
        {"$REFUSED", B_REFUSED},
        {"$TRUNCATE", B_TRUNCATE},
        {"$MALFORMED", B_MALFORMED},
        {"$OVERSIZE", B_OVERSIZE},
        {"$DELAY", 0},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strcasecmp(kw, flags[i].kw) != 0)
            continue;
        bool is_delay = flags[i].flag == 0;
        if (!a1 || (is_delay && !a2)) {
            *err = "missing argument";
            return false;
        }
        if (!is_delay && a2) {
            *err = "too many arguments";
            return false;
        }
        if (is_delay && !parse_long(a2, &v)) {
            *err = "delay must be a non-negative number of ms";
            return false;
        }
        struct behave *b;
        if (strncmp(a1, "*.", 2) == 0 || strcmp(a1, "*") == 0) {
            char *k = text_key(a1[1] ? a1 + 2 : ".");
            b = behave_at(&z->below, k);
            free(k);
        } else {
            char *k = text_key(a1);
            b = behave_at(&z->exact, k);
            free(k);
        }
        if (is_delay)
            b->delay_ms = v;
        else
            b->flags |= flags[i].flag;
        return true;
    }
    *err = "unknown directive";
    return false;
}

/* Reads a whole file, NUL-terminated. Caller frees; NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, n = 0, r;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap && !(buf = realloc(buf, cap *= 2)))
            abort();
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static bool is_ldns_directive(const char *s)
{
    return strncasecmp(s, "$TTL", 4) == 0 || strncasecmp(s, "$ORIGIN", 7) == 0 ||
           strncasecmp(s, "$INCLUDE", 8) == 0;
}

/* Loads a zone file. Returns NULL after printing "file:line: error". */
static struct zone *zone_load(const char *path)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "t-dnsd: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct zone *z = calloc(1, sizeof(*z));
    if (!z)
        abort();
    ht_init(&z->names);
    ht_init(&z->exact);
    ht_init(&z->below);
    z->negttl = 300;
    bool ok = true;

    /* Our directives are handled here and blanked out (line numbers stay
     * right), so that ldns only sees standard master-file syntax. */
    int lineno = 1;
    for (char *line = buf; *line;) {
        char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        char *p = line;
        while (p < line + ll && (*p == ' ' || *p == '\t'))
            p++;
        if (p == line && *p == '$' && !is_ldns_directive(p)) {
            char *copy = strndup(line, ll);
            const char *err = NULL;
            if (!copy)
                abort();
            if (!zone_directive(z, copy, &err)) {
                fprintf(stderr, "t-dnsd: %s:%d: %s\n", path, lineno, err);
                ok = false;
            }
            free(copy);
            memset(line, ' ', ll);
        }
        lineno++;
        line = eol ? eol + 1 : line + ll;
    }

    FILE *fp = len ? fmemopen(buf, len, "r") : NULL;
    if (len && !fp)
        abort();
    uint32_t ttl = 3600;
    ldns_rdf *origin = NULL, *prev = NULL;
    int line_nr = 0;
    while (ok && fp && !feof(fp)) {
        ldns_rr *rr = NULL;
        ldns_status st = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin, &prev, &line_nr);
        if (st == LDNS_STATUS_OK) {
            zone_add_rr(z, rr);
        } else if (st == LDNS_STATUS_SYNTAX_EMPTY || st == LDNS_STATUS_SYNTAX_TTL ||
                   st == LDNS_STATUS_SYNTAX_ORIGIN) {
            continue;
        } else if (feof(fp) && (st == LDNS_STATUS_SYNTAX_ERR || st == LDNS_STATUS_SYNTAX_EMPTY)) {
            break;
        } else {
            fprintf(stderr, "t-dnsd: %s:%d: %s\n", path, line_nr, ldns_get_errorstr_by_id(st));
            ok = false;
        }
    }
    if (fp)
        fclose(fp);
    if (origin)
        ldns_rdf_deep_free(origin);
    if (prev)
        ldns_rdf_deep_free(prev);
    free(buf);
    if (!ok)
        zone_free(&z);
    return z;
}

/* ---- answering ---- */

struct answer {
    ldns_pkt_rcode rcode;
    ldns_rr_list *an, *ns; /* owned */
};

static void push_type(ldns_rr_list *out, const struct node *n, ldns_rr_type t,
                      const ldns_rdf *owner)
{
    for (size_t i = 0; n->rrs && i < ldns_rr_list_rr_count(n->rrs); i++) {
        ldns_rr *rr = ldns_rr_list_rr(n->rrs, i);
        if (ldns_rr_get_type(rr) != t)
            continue;
        ldns_rr *c = ldns_rr_clone(rr);
        if (owner) { /* wildcard synthesis: the answer carries the query name */
            ldns_rdf_deep_free(ldns_rr_owner(c));
            ldns_rr_set_owner(c, ldns_rdf_clone(owner));
        }
        ldns_rr_list_push_rr(out, c);
    }
}

static bool has_type(const struct node *n, ldns_rr_type t)
{
    for (size_t i = 0; n->rrs && i < ldns_rr_list_rr_count(n->rrs); i++)
        if (ldns_rr_get_type(ldns_rr_list_rr(n->rrs, i)) == t)
            return true;
    return false;
}

/* Finds the node for key, synthesising from "*.<closest encloser>" when the
 * name does not exist (RFC 4592). *wild tells whether it was synthesised. */
static const struct node *zone_find(const struct zone *z, const char *key, bool *wild)
{
    *wild = false;
    const struct node *n = zone_node(z, key);
    if (n)
        return n;
    for (const char *p = key_parent(key); p; p = key_parent(p)) {
        if (!zone_node(z, p))
            continue;
        char wk[LDNS_MAX_DOMAINLEN * 4 + 8];
        snprintf(wk, sizeof(wk), "*.%s", strcmp(p, ".") == 0 ? "" : p);
        n = zone_node(z, wk);
        if (n && n->rrs) {
            *wild = true;
            return n;
        }
        return NULL;
    }
    return NULL;
}

/* The SOA put in the authority section of negative answers: the zone's own
 * SOA (closest enclosing owner of one) or a made-up one, with $NEGTTL as TTL
 * and minimum. */
static ldns_rr *neg_soa(const struct zone *z, const char *key)
{
    ldns_rr *soa = NULL;
    for (const char *p = key; p && !soa; p = key_parent(p)) {
        const struct node *n = zone_node(z, p);
        for (size_t i = 0; n && n->rrs && i < ldns_rr_list_rr_count(n->rrs); i++)
            if (ldns_rr_get_type(ldns_rr_list_rr(n->rrs, i)) == LDNS_RR_TYPE_SOA) {
                soa = ldns_rr_clone(ldns_rr_list_rr(n->rrs, i));
                break;
            }
    }
    if (!soa) {
        /* No SOA in the data: pretend the last two labels are the zone. */
        const char *apex, *p = key;
        int labels = 0;
        for (const char *q = key; q; q = key_parent(q))
            labels++;
        for (int i = 0; i < labels - 3 && p; i++)
            p = key_parent(p);
        apex = p ? p : ".";
        char txt[LDNS_MAX_DOMAINLEN * 8 + 64];
        const char *sfx = strcmp(apex, ".") == 0 ? "" : apex;
        snprintf(txt, sizeof(txt), "%s 300 IN SOA ns.%s hostmaster.%s 1 3600 600 86400 300", apex,
                 sfx, sfx);
        if (ldns_rr_new_frm_str(&soa, txt, 300, NULL, NULL) != LDNS_STATUS_OK)
            return NULL;
    }
    ldns_rr_set_ttl(soa, z->negttl);
    ldns_rdf *min = ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, z->negttl);
    ldns_rdf *old = ldns_rr_set_rdf(soa, min, 6);
    if (old)
        ldns_rdf_deep_free(old);
    return soa;
}

static void zone_answer(const struct zone *z, const ldns_rdf *qname, ldns_rr_type qtype,
                        struct answer *a)
{
    a->rcode = LDNS_RCODE_NOERROR;
    a->an = ldns_rr_list_new();
    a->ns = ldns_rr_list_new();
    ldns_rdf *name = ldns_rdf_clone(qname);
    char *key = dname_key(name);
    for (int hop = 0;; hop++) {
        bool wild;
        const struct node *n = zone_find(z, key, &wild);
        if (n && has_type(n, qtype)) {
            push_type(a->an, n, qtype, wild ? name : NULL);
            break;
        }
        if (n && qtype != LDNS_RR_TYPE_CNAME && has_type(n, LDNS_RR_TYPE_CNAME)) {
            push_type(a->an, n, LDNS_RR_TYPE_CNAME, wild ? name : NULL);
            if (hop >= MAX_CNAME_HOPS)
                break;
            ldns_rr *cn = NULL;
            for (size_t i = 0; i < ldns_rr_list_rr_count(n->rrs); i++)
                if (ldns_rr_get_type(ldns_rr_list_rr(n->rrs, i)) == LDNS_RR_TYPE_CNAME)
                    cn = ldns_rr_list_rr(n->rrs, i);
            ldns_rdf_deep_free(name);
            name = ldns_rdf_clone(ldns_rr_rdf(cn, 0));
            free(key);
            key = dname_key(name);
            continue;
        }
        if (!n)
            a->rcode = LDNS_RCODE_NXDOMAIN;
        ldns_rr *soa = neg_soa(z, key);
        if (soa)
            ldns_rr_list_push_rr(a->ns, soa);
        break;
    }
    free(key);
    ldns_rdf_deep_free(name);
}

/* Many TXT RRs at qname: bigger than any UDP answer, still fits in TCP. */
static void oversize_answer(const ldns_rdf *qname, struct answer *a)
{
    a->rcode = LDNS_RCODE_NOERROR;
    a->an = ldns_rr_list_new();
    a->ns = ldns_rr_list_new();
    size_t per = ldns_rdf_size(qname) + 10 + 1 + OVERSIZE_TXT_LEN;
    size_t count = 60000 / per;
    if (count > OVERSIZE_MAX_RRS)
        count = OVERSIZE_MAX_RRS;
    for (size_t i = 0; i < count; i++) {
        uint8_t txt[1 + OVERSIZE_TXT_LEN];
        char head[32];
        int hl = snprintf(head, sizeof(head), "oversize-%06zu-", i);
        txt[0] = OVERSIZE_TXT_LEN;
        memset(txt + 1, 'x', OVERSIZE_TXT_LEN);
        memcpy(txt + 1, head, (size_t)hl);
        ldns_rr *rr = ldns_rr_new();
        ldns_rr_set_owner(rr, ldns_rdf_clone(qname));
        ldns_rr_set_type(rr, LDNS_RR_TYPE_TXT);
        ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
        ldns_rr_set_ttl(rr, 300);
        ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, sizeof(txt), txt));
        ldns_rr_list_push_rr(a->an, rr);
    }
}

/* Encodes the reply to query. With strip, answer/authority are left out and
 * TC is set. Returns malloc'ed wire (caller frees) or NULL. */
static uint8_t *encode_reply(const ldns_pkt *q, const struct answer *a, bool strip, size_t *len)
{
    ldns_pkt *r = ldns_pkt_new();
    ldns_pkt_set_id(r, ldns_pkt_id(q));
    ldns_pkt_set_qr(r, true);
    ldns_pkt_set_aa(r, true);
    ldns_pkt_set_rd(r, ldns_pkt_rd(q));
    ldns_pkt_set_cd(r, ldns_pkt_cd(q));
    ldns_pkt_set_opcode(r, LDNS_PACKET_QUERY);
    ldns_pkt_set_rcode(r, (uint8_t)a->rcode);
    ldns_rr_list *qs = ldns_pkt_question(q);
    for (size_t i = 0; i < ldns_rr_list_rr_count(qs); i++)
        ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(qs, i)));
    if (strip) {
        ldns_pkt_set_tc(r, true);
    } else {
        for (size_t i = 0; a->an && i < ldns_rr_list_rr_count(a->an); i++)
            ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(a->an, i)));
        for (size_t i = 0; a->ns && i < ldns_rr_list_rr_count(a->ns); i++)
            ldns_pkt_push_rr(r, LDNS_SECTION_AUTHORITY, ldns_rr_clone(ldns_rr_list_rr(a->ns, i)));
    }
    if (ldns_pkt_edns(q))
        ldns_pkt_set_edns_udp_size(r, 1232);
    uint8_t *wire = NULL;
    if (ldns_pkt2wire(&wire, r, len) != LDNS_STATUS_OK)
        wire = NULL;
    ldns_pkt_free(r);
    return wire;
}

/* A bare header reply (FORMERR/NOTIMP to unparsable or odd queries). */
static uint8_t *header_reply(const uint8_t *qbuf, size_t qlen, int rcode, size_t *len)
{
    uint8_t *w = calloc(1, 12);
    if (!w)
        abort();
    if (qlen >= 2)
        memcpy(w, qbuf, 2);
    w[2] = 0x80 | (qlen >= 3 ? (qbuf[2] & 0x79) : 0); /* QR, opcode, RD */
    w[3] = (uint8_t)rcode;
    *len = 12;
    return w;
}

/* Garbage that starts like a reply with the right ID but cannot be parsed. */
static uint8_t *malformed_reply(const ldns_pkt *q, size_t *len)
{
    static const uint8_t junk[] = {0x84, 0x00, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,
                                   0x3f, 0xff, 0xc0, 0xff, 0xc0, 0xfe, 0x07, 'g',  'a',  'r',
                                   'b',  'a',  'g',  'e',  0xff, 0xff, 0xff, 0xff};
    uint8_t *w = malloc(2 + sizeof(junk));
    if (!w)
        abort();
    w[0] = (uint8_t)(ldns_pkt_id(q) >> 8);
    w[1] = (uint8_t)(ldns_pkt_id(q) & 0xff);
    memcpy(w + 2, junk, sizeof(junk));
    *len = 2 + sizeof(junk);
    return w;
}

/* ---- server ---- */

struct server;

struct tcpconn {
    struct server *srv;
    struct bufferevent *bev;
    struct pending *pend; /* delayed replies still to send on this connection */
    bool eof;             /* peer closed its side: finish the replies, then close */
};

/* A reply waiting for its $DELAY. */
struct pending {
    struct pending *next, **prevp; /* on the tcpconn's list (TCP only) */
    struct event *timer;
    uint8_t *wire;
    size_t len;
    int udp_fd;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    struct tcpconn *conn;
};

/* Global only through this struct (passed to every callback as arg). */
struct server {
    struct event_base *base;
    const char *zonefile;
    struct zone *zone;
    FILE *qlog;
    const char *pidfile;
};

static void pending_free(struct pending **pp)
{
    struct pending *p = *pp;
    if (!p)
        return;
    if (p->conn) {
        *p->prevp = p->next;
        if (p->next)
            p->next->prevp = p->prevp;
    }
    event_free(p->timer);
    free(p->wire);
    free(p);
    *pp = NULL;
}

static void tcpconn_free(struct tcpconn **cp)
{
    struct tcpconn *c = *cp;
    if (!c)
        return;
    while (c->pend) {
        struct pending *p = c->pend;
        pending_free(&p);
    }
    bufferevent_free(c->bev);
    free(c);
    *cp = NULL;
}

static void send_now(int udp_fd, const struct sockaddr *peer, socklen_t peerlen,
                     struct tcpconn *conn, const uint8_t *wire, size_t len)
{
    if (conn) {
        uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)(len & 0xff)};
        bufferevent_write(conn->bev, hdr, 2);
        bufferevent_write(conn->bev, wire, len);
    } else {
        /* Loopback UDP: a full socket buffer is the only failure; drop like
         * a real network would. */
        (void)sendto(udp_fd, wire, len, 0, peer, peerlen);
    }
}

/* After the peer's EOF, a connection lives until its replies are written. */
static void tcpconn_maybe_close(struct tcpconn *c)
{
    if (c->eof && !c->pend && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        tcpconn_free(&c);
}

static void pending_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct tcpconn *c = p->conn;
    send_now(p->udp_fd, (struct sockaddr *)&p->peer, p->peerlen, c, p->wire, p->len);
    pending_free(&p);
    if (c)
        tcpconn_maybe_close(c);
}

static void log_query(struct server *s, const ldns_rdf *qname, ldns_rr_type qtype)
{
    if (!s->qlog)
        return;
    char *name = dname_key(qname);
    char *type = ldns_rr_type2str(qtype);
    fprintf(s->qlog, "%s %s\n", name, type ? type : "?");
    fflush(s->qlog);
    free(name);
    free(type);
}

/* Merges the behaviour for key: the exact entry, then "*.suffix" entries from
 * the nearest suffix up. Flags add up; the nearest delay wins. */
static struct behave lookup_behave(const struct zone *z, const char *key)
{
    struct behave out = {0, -1};
    const struct behave *b = ht_get(&z->exact, key);
    if (b) {
        out = *b;
    }
    for (const char *p = key_parent(key); p; p = key_parent(p)) {
        b = ht_get(&z->below, p);
        if (!b)
            continue;
        out.flags |= b->flags;
        if (out.delay_ms < 0)
            out.delay_ms = b->delay_ms;
    }
    if (out.delay_ms < 0)
        out.delay_ms = z->default_delay;
    return out;
}

/* Handles one query message from UDP (conn == NULL) or TCP. */
static void handle_query(struct server *s, const uint8_t *buf, size_t len, int udp_fd,
                         const struct sockaddr *peer, socklen_t peerlen, struct tcpconn *conn)
{
    ldns_pkt *q = NULL;
    uint8_t *wire = NULL;
    size_t wlen = 0;
    long delay = 0;
    if (len < 12 || (buf[2] & 0x80))
        return; /* too short to answer, or a response: ignore */
    if (ldns_wire2pkt(&q, buf, len) != LDNS_STATUS_OK) {
        wire = header_reply(buf, len, LDNS_RCODE_FORMERR, &wlen);
    } else if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY) {
        wire = header_reply(buf, len, LDNS_RCODE_NOTIMPL, &wlen);
    } else if (ldns_pkt_qdcount(q) != 1) {
        wire = header_reply(buf, len, LDNS_RCODE_FORMERR, &wlen);
    } else {
        ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
        const ldns_rdf *qname = ldns_rr_owner(qrr);
        ldns_rr_type qtype = ldns_rr_get_type(qrr);
        log_query(s, qname, qtype);
        char *key = dname_key(qname);
        struct behave b = lookup_behave(s->zone, key);
        free(key);
        delay = b.delay_ms;
        if (b.flags & B_SILENT) {
            ldns_pkt_free(q);
            return;
        }
        struct answer a = {LDNS_RCODE_NOERROR, NULL, NULL};
        if (b.flags & B_MALFORMED) {
            wire = malformed_reply(q, &wlen);
        } else {
            if (b.flags & B_SERVFAIL)
                a.rcode = LDNS_RCODE_SERVFAIL;
            else if (b.flags & B_REFUSED)
                a.rcode = LDNS_RCODE_REFUSED;
            else if (b.flags & B_OVERSIZE)
                oversize_answer(qname, &a);
            else
                zone_answer(s->zone, qname, qtype, &a);
            bool strip = !conn && (b.flags & B_TRUNCATE);
            wire = encode_reply(q, &a, strip, &wlen);
            size_t limit = 65535;
            if (!conn) {
                limit = 512;
                if (ldns_pkt_edns(q) && ldns_pkt_edns_udp_size(q) > 512)
                    limit = ldns_pkt_edns_udp_size(q) > 4096 ? 4096 : ldns_pkt_edns_udp_size(q);
            }
            if (wire && wlen > limit) {
                free(wire);
                wire = encode_reply(q, &a, true, &wlen);
            }
            if (a.an)
                ldns_rr_list_deep_free(a.an);
            if (a.ns)
                ldns_rr_list_deep_free(a.ns);
        }
    }
    if (q)
        ldns_pkt_free(q);
    if (!wire)
        return;
    if (delay <= 0) {
        send_now(udp_fd, peer, peerlen, conn, wire, wlen);
        free(wire);
        return;
    }
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    p->wire = wire;
    p->len = wlen;
    p->udp_fd = udp_fd;
    if (!conn) {
        memcpy(&p->peer, peer, peerlen);
        p->peerlen = peerlen;
    } else {
        p->conn = conn;
        p->next = conn->pend;
        if (p->next)
            p->next->prevp = &p->next;
        conn->pend = p;
        p->prevp = &conn->pend;
    }
    p->timer = evtimer_new(s->base, pending_cb, p);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

static void udp_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    uint8_t buf[65536];
    /* Drain a bounded batch so one busy socket cannot starve the others. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof(peer);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &pl);
        if (n < 0)
            return;
        handle_query(s, buf, (size_t)n, fd, (struct sockaddr *)&peer, pl, NULL);
    }
}

static void tcp_read_cb(struct bufferevent *bev, void *arg)
{
    struct tcpconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t hdr[2];
        if (evbuffer_copyout(in, hdr, 2) < 2)
            return;
        size_t mlen = ((size_t)hdr[0] << 8) | hdr[1];
        if (evbuffer_get_length(in) < 2 + mlen)
            return;
        evbuffer_drain(in, 2);
        uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)mlen);
        if (mlen && msg)
            handle_query(c->srv, msg, mlen, -1, NULL, 0, c);
        evbuffer_drain(in, mlen);
    }
}

static void tcp_write_cb(struct bufferevent *bev, void *arg)
{
    tcpconn_maybe_close(arg);
}

static void tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct tcpconn *c = arg;
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        c->eof = true;
        bufferevent_disable(bev, EV_READ);
        tcpconn_maybe_close(c);
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        tcpconn_free(&c);
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
                      void *arg)
{
    struct server *s = arg;
    struct tcpconn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, c);
    struct timeval idle = {TCP_IDLE_SECS, 0};
    bufferevent_set_timeouts(c->bev, &idle, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    struct zone *z = zone_load(s->zonefile);
    if (!z) {
        fprintf(stderr, "t-dnsd: reload failed, keeping the old zone\n");
        return;
    }
    /* Delayed replies are already encoded: nothing points into the old zone. */
    zone_free(&s->zone);
    s->zone = z;
    fprintf(stderr, "t-dnsd: reloaded %s (%zu names)\n", s->zonefile, z->names.n);
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    event_base_loopbreak(s->base);
}

/* Writes text to path atomically (tmp + rename), so pollers never see half. */
static bool write_atomic(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    fputs(text, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return false;
    }
    return true;
}

static int make_socket(const char *addr, int port, int type)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*s6);
    } else {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (type == SOCK_DGRAM) {
        int sz = 4 << 20; /* benchmarks burst; the kernel clamps this */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
        (type == SOCK_STREAM && listen(fd, 1024) != 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Binds UDP+TCP on every address with one common port. With port 0 the first
 * UDP socket picks it; retried if another process holds it on TCP. */
static int bind_all(const char **addrs, int naddrs, int port, int *fds)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int p = port, i, n = 0;
        for (i = 0; i < naddrs; i++) {
            int u = make_socket(addrs[i], p, SOCK_DGRAM);
            if (u < 0)
                break;
            fds[n++] = u;
            if (p == 0)
                p = bound_port(u);
            int t = make_socket(addrs[i], p, SOCK_STREAM);
            if (t < 0)
                break;
            fds[n++] = t;
        }
        if (i == naddrs)
            return p;
        int e = errno;
        while (n > 0)
            close(fds[--n]);
        if (port != 0 || e != EADDRINUSE) {
            fprintf(stderr, "t-dnsd: bind %s port %d: %s\n", addrs[i], p, strerror(e));
            return -1;
        }
    }
    fprintf(stderr, "t-dnsd: could not find a free common port\n");
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: t-dnsd -z ZONEFILE [-a ADDR]... [-p PORT] [-o PORTFILE] "
                    "[-P PIDFILE] [-l QUERYLOG] [-f]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *addrs[MAX_ADDRS];
    int naddrs = 0, port = 0, opt;
    const char *portfile = NULL, *qlogfile = NULL;
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    while ((opt = getopt(argc, argv, "z:a:p:o:P:l:fh")) != -1) {
        switch (opt) {
        case 'z':
            srv.zonefile = optarg;
            break;
        case 'a':
            if (naddrs == MAX_ADDRS)
                usage();
            addrs[naddrs++] = optarg;
            break;
        case 'p': {
            long v;
            if (!parse_long(optarg, &v) || v > 65535)
                usage();
            port = (int)v;
            break;
        }
        case 'o':
            portfile = optarg;
            break;
        case 'P':
            srv.pidfile = optarg;
            break;
        case 'l':
            qlogfile = optarg;
            break;
        case 'f':
            break; /* always in the foreground */
        default:
            usage();
        }
    }
    if (!srv.zonefile || optind != argc)
        usage();
    if (naddrs == 0)
        addrs[naddrs++] = "127.0.0.1";

    signal(SIGPIPE, SIG_IGN);
    srv.zone = zone_load(srv.zonefile);
    if (!srv.zone)
        return 1;
    if (qlogfile && !(srv.qlog = fopen(qlogfile, "a"))) {
        fprintf(stderr, "t-dnsd: %s: %s\n", qlogfile, strerror(errno));
        return 1;
    }
    int fds[MAX_ADDRS * 2];
    port = bind_all(addrs, naddrs, port, fds);
    if (port < 0)
        return 1;

    srv.base = event_base_new();
    if (!srv.base)
        abort();
    struct event *uev[MAX_ADDRS];
    struct evconnlistener *lst[MAX_ADDRS];
    for (int i = 0; i < naddrs; i++) {
        uev[i] = event_new(srv.base, fds[2 * i], EV_READ | EV_PERSIST, udp_cb, &srv);
        event_add(uev[i], NULL);
        lst[i] = evconnlistener_new(srv.base, accept_cb, &srv, LEV_OPT_CLOSE_ON_FREE, -1,
                                    fds[2 * i + 1]);
        if (!lst[i])
            abort();
    }
    struct event *ehup = evsignal_new(srv.base, SIGHUP, sighup_cb, &srv);
    struct event *eterm = evsignal_new(srv.base, SIGTERM, sigterm_cb, &srv);
    struct event *eint = evsignal_new(srv.base, SIGINT, sigterm_cb, &srv);
    event_add(ehup, NULL);
    event_add(eterm, NULL);
    event_add(eint, NULL);

    char text[32];
    if (srv.pidfile) {
        snprintf(text, sizeof(text), "%ld\n", (long)getpid());
        if (!write_atomic(srv.pidfile, text)) {
            fprintf(stderr, "t-dnsd: %s: %s\n", srv.pidfile, strerror(errno));
            return 1;
        }
    }
    /* The port file is written last: once it exists, the server answers. */
    if (portfile) {
        snprintf(text, sizeof(text), "%d\n", port);
        if (!write_atomic(portfile, text)) {
            fprintf(stderr, "t-dnsd: %s: %s\n", portfile, strerror(errno));
            return 1;
        }
    }

    event_base_dispatch(srv.base);

    if (srv.pidfile)
        unlink(srv.pidfile);
    for (int i = 0; i < naddrs; i++) {
        event_free(uev[i]);
        close(fds[2 * i]);
        evconnlistener_free(lst[i]);
    }
    event_free(ehup);
    event_free(eterm);
    event_free(eint);
    /* Open TCP connections and their pending replies die with the process. */
    event_base_free(srv.base);
    zone_free(&srv.zone);
    if (srv.qlog)
        fclose(srv.qlog);
    return 0;
}
