/* spfa.c - SPF evaluation around Debian 12's libspf2 1.2.10 (the only file
 * that includes libspf2).
 *
 * How libspf2 is kept away from its weak paths (../shared/spec/libspf2-findings.md):
 *  - Every record is fetched by us, validated by policy/spfrec (RFC 7208 ABNF),
 *    and libspf2 compiles only a short canonical record WE generate from the
 *    parse: each DNS-querying term names an opaque token ("t<N>.spfa.invalid")
 *    whose domain-spec our DNS layer expands (spfrec_expand) when libspf2
 *    looks the token up. So libspf2 never compiles or expands remote macro
 *    text (CVE-2023-42118 shapes), never sees /0 CIDRs, bad bytes, NULs or
 *    redirect/exp quirks, and the compiled form stays far below its 511-byte
 *    limit: ip4/ip6 terms are matched by us (a run of them becomes the one
 *    matching term, or nothing), and terms after "all", after a matching ip
 *    term or after the 11th DNS-querying term are unreachable and dropped.
 *  - Our SPF_dns_server_t layer answers every lookup through the caller's
 *    spfa_lookup_fn, counts the RFC 7208 §4.6.4 limits across includes and
 *    redirects (10 DNS terms, 2 void lookups, 10 MX names, first 10 PTR names)
 *    and, when a limit or a DNS failure ends the evaluation, records the
 *    outcome ("abort") and makes libspf2 stop with TRY_AGAIN.
 *  - Explanations: the get_exp hook only returns a marker; we fetch and
 *    expand the exp= text ourselves after the evaluation.
 *  - The top level is run with SPF_record_interpret() directly, which skips
 *    SPF_request_query_mailfrom()'s free pass for loopback clients; IPv4-mapped
 *    IPv6 clients are given to libspf2 as IPv4.
 *  - Results are mapped explicitly ((invalid) -> permerror/temperror). */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <spf2/spf.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "spfa.h"
#include "spfrec.h"

#define TOK_SUFFIX ".spfa.invalid"
#define MATCH_NAME "match.spfa.invalid" /* answers with the client address */
#define NOMATCH_DOMAIN "nomatch.spfa.invalid"
#define EXP_MARK "spfa-exp:"
#define MAX_DNS_TERMS 10
#define MAX_VOID 2
#define MAX_NAMES 10 /* MX and PTR names */

enum tok_kind { TK_A, TK_MX, TK_EXISTS, TK_INCLUDE, TK_REDIRECT, TK_EXP };

struct tok {
    enum tok_kind kind;
    char *spec; /* unexpanded domain-spec (NULL: the current domain) */
    char *dom;  /* current domain of the record that holds the term */
    int any;    /* CIDR length 0 for the client's family: any address matches */
};

/* One evaluation of one identity (lives on spfa_eval's stack). */
struct ev {
    struct spfa *a;
    int af;
    unsigned char ip[16];
    const char *sender, *local, *sdom, *helo;
    struct tok *toks;
    size_t ntok, captok;
    unsigned terms, voids;
    enum spf_res abort_res; /* 0 (NONE) = no abort */
    char problem[SPF_TEXT_MAX];
    uint32_t ttl;
    int used_answer;
    char *ptr_names[MAX_NAMES]; /* names of the last PTR answer (errors skip them) */
    size_t nptr_names;
    char *pname, *pname_for; /* %{p} cache */
    int local_used;          /* a macro expanded l/L/s/S (spfrec_env.local_used) */
};

struct spfa {
    SPF_server_t *srv;
    SPF_dns_server_t *dns;
    char *rname;
    spfa_lookup_fn lookup;
    void *ctx;
    struct ev *ev; /* the evaluation under way, NULL otherwise */
};

static void ev_abort(struct ev *ev, enum spf_res res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ev_abort(struct ev *ev, enum spf_res res, const char *fmt, ...)
{
    va_list ap;
    if (ev->abort_res != SPF_RES_NONE)
        return; /* the first cause wins */
    ev->abort_res = res;
    va_start(ap, fmt);
    vsnprintf(ev->problem, sizeof(ev->problem), fmt, ap);
    va_end(ap);
}

/* All DNS goes through here: the caller's lookup plus TTL bookkeeping. */
static struct dns_result *ev_lookup(struct ev *ev, const char *name, uint16_t type)
{
    struct dns_result *r = ev->a->lookup(ev->a->ctx, name, type);
    if (r == NULL)
        r = dnsrr_new(DNS_SERVFAIL, type, 0, 0);
    if (r != NULL && r->status != DNS_TIMEOUT && r->status != DNS_SERVFAIL) {
        if (!ev->used_answer || r->ttl < ev->ttl)
            ev->ttl = r->ttl;
        ev->used_answer = 1;
    } else {
        ev->ttl = 0; /* a temporary failure is not to be reused */
        ev->used_answer = 1;
    }
    return r;
}

static int dns_temp(const struct dns_result *r)
{
    return r == NULL || r->status == DNS_TIMEOUT || r->status == DNS_SERVFAIL;
}

/* A name we may query: 1-253 chars, labels 1-63, no empty label, printable
 * ASCII (SP included: "%_" expands to a space, and DNS labels may hold it). */
static int query_name_ok(const char *n)
{
    size_t len = strlen(n), lab = 0, i;
    if (len == 0 || len > 253)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        if (c < 0x20 || c > 0x7e)
            return 0;
        if (c == '.') {
            if (lab == 0)
                return 0;
            lab = 0;
        } else if (++lab > 63) {
            return 0;
        }
    }
    return 1;
}

static int has_suffix_ci(const char *s, const char *suf)
{
    size_t l = strlen(s), m = strlen(suf);
    return l >= m && strcasecmp(s + l - m, suf) == 0;
}

/* ---- %{p}: the validated domain name of the client (RFC 7208 §5.5, §7.3) ---- */

static void reverse_name(const struct ev *ev, char *buf, size_t sz)
{
    if (ev->af == AF_INET) {
        snprintf(buf, sz, "%u.%u.%u.%u.in-addr.arpa", ev->ip[3], ev->ip[2], ev->ip[1], ev->ip[0]);
    } else {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        int k;
        for (k = 15; k >= 0 && o + 4 < sz; k--) {
            buf[o++] = hex[ev->ip[k] & 15];
            buf[o++] = '.';
            buf[o++] = hex[ev->ip[k] >> 4];
            buf[o++] = '.';
        }
        snprintf(buf + o, sz - o, "ip6.arpa");
    }
}

static int addr_in(const struct ev *ev, const struct dns_result *r)
{
    size_t i, alen = ev->af == AF_INET ? 4 : 16;
    if (r == NULL || r->status != DNS_OK)
        return 0;
    for (i = 0; i < r->n; i++)
        if (r->rr[i].len == alen && memcmp(r->rr[i].data, ev->ip, alen) == 0)
            return 1;
    return 0;
}

static int in_domain(const char *name, const char *dom)
{
    size_t n = strlen(name), d = strlen(dom);
    if (n == d)
        return strcasecmp(name, dom) == 0;
    return n > d && name[n - d - 1] == '.' && strcasecmp(name + n - d, dom) == 0;
}

static const char *ev_ptr_name(void *ctx, const char *domain)
{
    struct ev *ev = ctx;
    char rev[80];
    struct dns_result *pr;
    const char *exact = NULL, *sub = NULL, *any = NULL;
    size_t i;

    if (ev->pname && ev->pname_for && strcasecmp(ev->pname_for, domain) == 0)
        return ev->pname;
    free(ev->pname);
    free(ev->pname_for);
    ev->pname = ev->pname_for = NULL;
    reverse_name(ev, rev, sizeof(rev));
    pr = ev_lookup(ev, rev, DNS_T_PTR);
    for (i = 0; pr && pr->status == DNS_OK && i < pr->n && i < MAX_NAMES; i++) {
        const char *nm = (const char *)pr->rr[i].data;
        struct dns_result *ar;
        if (!query_name_ok(nm))
            continue;
        ar = ev_lookup(ev, nm, ev->af == AF_INET ? DNS_T_A : DNS_T_AAAA);
        if (addr_in(ev, ar)) {
            if (strcasecmp(nm, domain) == 0 && !exact)
                exact = nm;
            else if (in_domain(nm, domain) && !sub)
                sub = nm;
            else if (!any)
                any = nm;
        }
        dnsrr_unref(&ar);
    }
    ev->pname = strdup(exact ? exact : sub ? sub : any ? any : "unknown");
    ev->pname_for = strdup(domain);
    dnsrr_unref(&pr);
    return ev->pname ? ev->pname : "unknown";
}

static char *ev_expand(struct ev *ev, const char *spec, const char *dom, int mode, int *err)
{
    struct spfrec_env env;
    memset(&env, 0, sizeof(env));
    env.sender = ev->sender;
    env.local = ev->local;
    env.sdom = ev->sdom;
    env.domain = dom;
    env.helo = ev->helo;
    env.rname = ev->a->rname;
    env.af = ev->af;
    memcpy(env.ip, ev->ip, 16);
    env.now = (long long)time(NULL);
    env.ptr_name = ev_ptr_name;
    env.ptr_ctx = ev;
    env.local_used = &ev->local_used;
    return spfrec_expand(spec, strlen(spec), mode, &env, err);
}

/* The real target name of a token (caller frees), or NULL after an abort. */
static char *tok_target(struct ev *ev, const struct tok *t)
{
    int err;
    char *n;
    if (t->spec == NULL)
        return strdup(t->dom);
    n = ev_expand(ev, t->spec, t->dom, SPFREC_EXPAND_DOMAIN, &err);
    if (n == NULL)
        ev_abort(ev, err == -1 ? SPF_RES_PERMERROR : SPF_RES_TEMPERROR,
                 "macro expansion failed for \"%.80s\"", t->spec);
    return n;
}

static struct tok *tok_find(struct ev *ev, const char *name)
{
    char *end;
    unsigned long n;
    if (name[0] != 't' || !isdigit((unsigned char)name[1]))
        return NULL;
    n = strtoul(name + 1, &end, 10);
    if (strcasecmp(end, TOK_SUFFIX) != 0 || n >= ev->ntok)
        return NULL;
    return &ev->toks[n];
}

static int tok_add(struct ev *ev, enum tok_kind kind, const char *spec, size_t spec_len,
                   const char *dom, int any)
{
    struct tok *t;
    if (ev->ntok == ev->captok) {
        size_t nc = ev->captok ? ev->captok * 2 : 16;
        struct tok *nt = realloc(ev->toks, nc * sizeof(*nt));
        if (nt == NULL)
            return -1;
        ev->toks = nt;
        ev->captok = nc;
    }
    t = &ev->toks[ev->ntok];
    t->kind = kind;
    t->any = any;
    t->spec = spec ? strndup(spec, spec_len) : NULL;
    t->dom = strdup(dom);
    if ((spec && t->spec == NULL) || t->dom == NULL) {
        free(t->spec);
        free(t->dom);
        return -1;
    }
    return (int)ev->ntok++;
}

/* ---- records ---- */

enum fetch { FETCH_OK, FETCH_NONE, FETCH_TEMP, FETCH_PERM };

/* Fetch and validate the SPF record of name (RFC 7208 §4.4, §4.5). */
static enum fetch fetch_record(struct ev *ev, const char *name, struct spfrec **out)
{
    struct dns_result *r;
    size_t i, found = 0, idx = 0;
    *out = NULL;
    if (!query_name_ok(name))
        return FETCH_NONE;
    r = ev_lookup(ev, name, DNS_T_TXT);
    if (dns_temp(r)) {
        ev_abort(ev, SPF_RES_TEMPERROR, "dns %s for %.200s/TXT",
                 dnsrr_status_name(r ? r->status : DNS_SERVFAIL), name);
        dnsrr_unref(&r);
        return FETCH_TEMP;
    }
    for (i = 0; r->status == DNS_OK && i < r->n; i++) {
        if (spfrec_is_spf1((const char *)r->rr[i].data, r->rr[i].len)) {
            found++;
            idx = i;
        }
    }
    if (found == 0) {
        dnsrr_unref(&r);
        return FETCH_NONE;
    }
    if (found > 1) {
        ev_abort(ev, SPF_RES_PERMERROR, "multiple SPF records for %.200s", name);
        dnsrr_unref(&r);
        return FETCH_PERM;
    }
    *out = spfrec_parse((const char *)r->rr[idx].data, r->rr[idx].len);
    dnsrr_unref(&r);
    if (*out == NULL) {
        ev_abort(ev, SPF_RES_TEMPERROR, "out of memory");
        return FETCH_TEMP;
    }
    if (!(*out)->valid) {
        ev_abort(ev, SPF_RES_PERMERROR, "invalid SPF record for %.200s: %s", name, (*out)->reason);
        spfrec_free(out);
        return FETCH_PERM;
    }
    return FETCH_OK;
}

static int ip_term_matches(const struct ev *ev, const struct spfrec_term *t)
{
    int bits, alen = ev->af == AF_INET ? 4 : 16, k;
    if ((t->kind == SPFREC_IP4) != (ev->af == AF_INET))
        return 0;
    bits = t->kind == SPFREC_IP4 ? (t->cidr4 < 0 ? 32 : t->cidr4) : (t->cidr6 < 0 ? 128 : t->cidr6);
    for (k = 0; k < alen && bits > 0; k++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((t->addr[k] & mask) != (ev->ip[k] & mask))
            return 0;
    }
    return 1;
}

struct cbuf {
    char s[1024];
    size_t len;
};

static void cb_add(struct cbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cb_add(struct cbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(b->s + b->len, sizeof(b->s) - b->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n < sizeof(b->s) - b->len ? (size_t)n : sizeof(b->s) - b->len - 1;
}

/* Build the canonical record libspf2 compiles (see the file comment).
 * Returns 0, or -1 after an abort. */
static int canon_record(struct ev *ev, const struct spfrec *rec, const char *dom, struct cbuf *b)
{
    size_t i;
    unsigned dns = 0;
    int stopped = 0, id;
    char addr[INET6_ADDRSTRLEN];

    b->len = 0;
    b->s[0] = '\0';
    cb_add(b, "v=spf1");
    for (i = 0; i < rec->nterms && !stopped; i++) {
        const struct spfrec_term *t = &rec->terms[i];
        int cidr, any = 0;
        enum tok_kind tk;
        switch (t->kind) {
        case SPFREC_IP4:
        case SPFREC_IP6:
            if (ip_term_matches(ev, t)) {
                inet_ntop(ev->af, ev->ip, addr, sizeof(addr));
                cb_add(b, " %c%s:%s", t->qual, ev->af == AF_INET ? "ip4" : "ip6", addr);
                stopped = 1;
            }
            continue;
        case SPFREC_ALL:
            cb_add(b, " %call", t->qual);
            stopped = 1;
            continue;
        case SPFREC_REDIRECT:
        case SPFREC_EXP:
        case SPFREC_UNKNOWN:
            continue;
        default:
            break;
        }
        /* a DNS-querying term: the 11th is kept (it ends the evaluation with
         * permerror when reached), later ones are unreachable */
        if (++dns > MAX_DNS_TERMS + 1)
            break;
        if (t->kind == SPFREC_PTR) {
            char *target = NULL;
            int err = 0;
            if (t->spec) {
                char *sp = strndup(t->spec, t->spec_len);
                target = sp ? ev_expand(ev, sp, dom, SPFREC_EXPAND_DOMAIN, &err) : NULL;
                free(sp);
                if (target == NULL) {
                    ev_abort(ev, err == -1 ? SPF_RES_PERMERROR : SPF_RES_TEMPERROR,
                             "macro expansion failed in ptr");
                    return -1;
                }
            } else {
                target = strdup(dom);
            }
            /* only plain host-name characters reach libspf2 */
            if (target && target[0] &&
                strspn(target, "abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == strlen(target) &&
                strlen(target) <= 253 && !has_suffix_ci(target, TOK_SUFFIX))
                cb_add(b, " %cptr:%s", t->qual, target);
            else
                cb_add(b, " %cptr:%s", t->qual, NOMATCH_DOMAIN);
            free(target);
            continue;
        }
        cidr = ev->af == AF_INET ? t->cidr4 : t->cidr6;
        if (cidr == 0)
            any = 1;
        tk = t->kind == SPFREC_A        ? TK_A
             : t->kind == SPFREC_MX     ? TK_MX
             : t->kind == SPFREC_EXISTS ? TK_EXISTS
                                        : TK_INCLUDE;
        if ((id = tok_add(ev, tk, t->spec, t->spec_len, dom, any)) < 0) {
            ev_abort(ev, SPF_RES_TEMPERROR, "out of memory");
            return -1;
        }
        cb_add(b, " %c%s:t%d" TOK_SUFFIX, t->qual,
               tk == TK_A        ? "a"
               : tk == TK_MX     ? "mx"
               : tk == TK_EXISTS ? "exists"
                                 : "include",
               id);
        if (cidr > 0)
            cb_add(b, ev->af == AF_INET ? "/%d" : "//%d", cidr);
    }
    if (!stopped && dns <= MAX_DNS_TERMS && rec->redirect >= 0 && !rec->redirect_ignored) {
        const struct spfrec_term *t = &rec->terms[rec->redirect];
        if ((id = tok_add(ev, TK_REDIRECT, t->spec, t->spec_len, dom, 0)) < 0) {
            ev_abort(ev, SPF_RES_TEMPERROR, "out of memory");
            return -1;
        }
        cb_add(b, " redirect=t%d" TOK_SUFFIX, id);
    }
    if (rec->exp >= 0) {
        const struct spfrec_term *t = &rec->terms[rec->exp];
        if ((id = tok_add(ev, TK_EXP, t->spec, t->spec_len, dom, 0)) < 0) {
            ev_abort(ev, SPF_RES_TEMPERROR, "out of memory");
            return -1;
        }
        cb_add(b, " exp=t%d" TOK_SUFFIX, id);
    }
    return 0;
}

/* Compile the canonical form of rec for domain dom. NULL after an abort. */
static SPF_record_t *compile_record(struct ev *ev, SPF_response_t *resp, const struct spfrec *rec,
                                    const char *dom)
{
    struct cbuf b;
    SPF_record_t *r = NULL;
    SPF_errcode_t err;
    if (canon_record(ev, rec, dom, &b) < 0)
        return NULL;
    err = SPF_record_compile(ev->a->srv, resp, &r, b.s);
    if (err != SPF_E_SUCCESS) {
        if (r)
            SPF_record_free(r);
        ev_abort(ev, SPF_RES_TEMPERROR, "internal: libspf2 rejected generated record (%s)",
                 SPF_strerror(err));
        return NULL;
    }
    return r;
}

/* ---- the DNS layer under libspf2 ---- */

static SPF_dns_rr_t *mkrr(SPF_dns_server_t *d, const char *domain, ns_type t, int herrno)
{
    return SPF_dns_rr_new_init(d, domain, t, 0, herrno);
}

static int herrno_of(enum dns_status s)
{
    switch (s) {
    case DNS_OK:
        return NETDB_SUCCESS;
    case DNS_NODATA:
        return NO_DATA;
    case DNS_NXDOMAIN:
        return HOST_NOT_FOUND;
    default:
        return TRY_AGAIN;
    }
}

static void rr_add(SPF_dns_rr_t *rr, const void *data, size_t len, int is_name)
{
    int i = rr->num_rr;
    if (SPF_dns_rr_buf_realloc(rr, i, is_name ? len + 1 : len) != SPF_E_SUCCESS)
        return;
    memcpy(rr->rr[i], data, len);
    if (is_name)
        ((char *)rr->rr[i])[len] = '\0';
    rr->num_rr++;
}

static void rr_add_client(const struct ev *ev, SPF_dns_rr_t *rr)
{
    rr_add(rr, ev->ip, ev->af == AF_INET ? 4 : 16, 0);
}

/* Copy an OK answer of the asked type into a libspf2 RR set. */
static SPF_dns_rr_t *rr_from(SPF_dns_server_t *d, const char *domain, ns_type t,
                             const struct dns_result *r, size_t max)
{
    SPF_dns_rr_t *rr = mkrr(d, domain, t, herrno_of(r->status));
    size_t i;
    if (rr == NULL || r->status != DNS_OK)
        return rr;
    for (i = 0; i < r->n && (size_t)rr->num_rr < max; i++) {
        const struct dns_rr *x = &r->rr[i];
        if (t == ns_t_a && x->len == 4)
            rr_add(rr, x->data, 4, 0);
        else if (t == ns_t_aaaa && x->len == 16)
            rr_add(rr, x->data, 16, 0);
        else if ((t == ns_t_mx || t == ns_t_ptr) &&
                 !has_suffix_ci((const char *)x->data, TOK_SUFFIX) &&
                 !has_suffix_ci((const char *)x->data, MATCH_NAME))
            rr_add(rr, x->data, strlen((const char *)x->data), 1);
    }
    if (rr->num_rr == 0)
        rr->herrno = NO_DATA;
    return rr;
}

/* A lookup for a token: a, mx or exists term. */
static SPF_dns_rr_t *lookup_token(struct ev *ev, SPF_dns_server_t *d, const char *domain, ns_type t,
                                  const struct tok *tk)
{
    char *target;
    struct dns_result *r;
    SPF_dns_rr_t *rr;
    uint16_t qt = (uint16_t)t;

    if (tk->kind != TK_A && tk->kind != TK_MX && tk->kind != TK_EXISTS) {
        ev_abort(ev, SPF_RES_TEMPERROR, "internal: unexpected lookup of %s", domain);
        return mkrr(d, domain, t, TRY_AGAIN);
    }
    if (++ev->terms > MAX_DNS_TERMS) {
        ev_abort(ev, SPF_RES_PERMERROR, "more than %d DNS-querying terms", MAX_DNS_TERMS);
        return mkrr(d, domain, t, TRY_AGAIN);
    }
    if ((target = tok_target(ev, tk)) == NULL)
        return mkrr(d, domain, t, TRY_AGAIN);
    if (!query_name_ok(target))
        r = dnsrr_new(DNS_NXDOMAIN, qt, 0, 0);
    else
        r = ev_lookup(ev, target, qt);
    if (dns_temp(r)) {
        ev_abort(ev, SPF_RES_TEMPERROR, "dns %s for %.200s/%s",
                 dnsrr_status_name(r ? r->status : DNS_SERVFAIL), target, dnsrr_type_name(qt));
        free(target);
        dnsrr_unref(&r);
        return mkrr(d, domain, t, TRY_AGAIN);
    }
    if (r->status != DNS_OK || r->n == 0) {
        if (++ev->voids > MAX_VOID) {
            ev_abort(ev, SPF_RES_PERMERROR, "more than %d void lookups (%.200s)", MAX_VOID, target);
            free(target);
            dnsrr_unref(&r);
            return mkrr(d, domain, t, TRY_AGAIN);
        }
        rr = mkrr(d, domain, t, herrno_of(r->status == DNS_OK ? DNS_NODATA : r->status));
        free(target);
        dnsrr_unref(&r);
        return rr;
    }
    if (tk->kind == TK_MX) {
        if (r->n > MAX_NAMES) {
            ev_abort(ev, SPF_RES_PERMERROR, "more than %d MX names for %.200s", MAX_NAMES, target);
            rr = mkrr(d, domain, t, TRY_AGAIN);
        } else if (tk->any) {
            /* mx/0: a match when any MX name has an address of the client's family */
            size_t i;
            int found = 0;
            for (i = 0; i < r->n && !found && ev->abort_res == SPF_RES_NONE; i++) {
                const char *nm = (const char *)r->rr[i].data;
                struct dns_result *ar;
                if (!query_name_ok(nm))
                    continue;
                ar = ev_lookup(ev, nm, ev->af == AF_INET ? DNS_T_A : DNS_T_AAAA);
                if (dns_temp(ar))
                    ev_abort(ev, SPF_RES_TEMPERROR, "dns %s for %.200s",
                             dnsrr_status_name(ar ? ar->status : DNS_SERVFAIL), nm);
                else if (ar->status == DNS_OK && ar->n > 0)
                    found = 1;
                dnsrr_unref(&ar);
            }
            if (ev->abort_res != SPF_RES_NONE) {
                rr = mkrr(d, domain, t, TRY_AGAIN);
            } else {
                rr = mkrr(d, domain, t, found ? NETDB_SUCCESS : NO_DATA);
                if (rr && found)
                    rr_add(rr, MATCH_NAME, strlen(MATCH_NAME), 1);
            }
        } else {
            rr = rr_from(d, domain, t, r, MAX_NAMES);
        }
    } else if (tk->any && (qt == DNS_T_A || qt == DNS_T_AAAA)) {
        /* a/0: a match when the name has any address of the client's family */
        rr = mkrr(d, domain, t, NETDB_SUCCESS);
        if (rr)
            rr_add_client(ev, rr);
    } else {
        rr = rr_from(d, domain, t, r, (size_t)-1);
    }
    free(target);
    dnsrr_unref(&r);
    return rr;
}

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *d, const char *domain, ns_type t,
                                  int should_cache)
{
    struct spfa *a = d->hook;
    struct ev *ev = a->ev;
    struct tok *tk;
    struct dns_result *r;
    SPF_dns_rr_t *rr;
    size_t i;
    int is_ptr_name = 0;

    (void)should_cache;
    if (ev == NULL || ev->abort_res != SPF_RES_NONE)
        return mkrr(d, domain, t, TRY_AGAIN);
    if ((tk = tok_find(ev, domain)) != NULL)
        return lookup_token(ev, d, domain, t, tk);
    if (strcasecmp(domain, MATCH_NAME) == 0) {
        rr = mkrr(d, domain, t, NETDB_SUCCESS);
        if (rr && (t == (ev->af == AF_INET ? ns_t_a : ns_t_aaaa)))
            rr_add_client(ev, rr);
        return rr;
    }
    if (t == ns_t_ptr) {
        /* the ptr mechanism (%{p} never reaches libspf2): a DNS-querying term */
        if (++ev->terms > MAX_DNS_TERMS) {
            ev_abort(ev, SPF_RES_PERMERROR, "more than %d DNS-querying terms", MAX_DNS_TERMS);
            return mkrr(d, domain, t, TRY_AGAIN);
        }
        r = ev_lookup(ev, domain, DNS_T_PTR);
        for (i = 0; i < ev->nptr_names; i++)
            free(ev->ptr_names[i]);
        ev->nptr_names = 0;
        if (dns_temp(r)) {
            /* RFC 7208 §5.5: a DNS error on the PTR lookup is just no match */
            dnsrr_unref(&r);
            return mkrr(d, domain, t, NO_DATA);
        }
        if (r->status != DNS_OK || r->n == 0) {
            if (++ev->voids > MAX_VOID) {
                ev_abort(ev, SPF_RES_PERMERROR, "more than %d void lookups (%.200s)", MAX_VOID,
                         domain);
                dnsrr_unref(&r);
                return mkrr(d, domain, t, TRY_AGAIN);
            }
        }
        /* only the first 10 names are used (§4.6.4) */
        rr = rr_from(d, domain, t, r, MAX_NAMES);
        for (i = 0; rr && i < (size_t)rr->num_rr && i < MAX_NAMES; i++)
            ev->ptr_names[ev->nptr_names++] = strdup(rr->rr[i]->ptr);
        dnsrr_unref(&r);
        return rr;
    }
    /* address lookups of MX or PTR names */
    for (i = 0; i < ev->nptr_names; i++)
        if (ev->ptr_names[i] && strcasecmp(ev->ptr_names[i], domain) == 0)
            is_ptr_name = 1;
    if (!query_name_ok(domain))
        return mkrr(d, domain, t, HOST_NOT_FOUND);
    r = ev_lookup(ev, domain, (uint16_t)t);
    if (dns_temp(r)) {
        if (is_ptr_name) { /* §5.5: that name is skipped */
            dnsrr_unref(&r);
            return mkrr(d, domain, t, NO_DATA);
        }
        ev_abort(ev, SPF_RES_TEMPERROR, "dns %s for %.200s/%s",
                 dnsrr_status_name(r ? r->status : DNS_SERVFAIL), domain,
                 dnsrr_type_name((uint16_t)t));
        dnsrr_unref(&r);
        return mkrr(d, domain, t, TRY_AGAIN);
    }
    rr = rr_from(d, domain, t, r, (size_t)-1);
    dnsrr_unref(&r);
    return rr;
}

/* get_spf: include/redirect targets (the top level is fetched by eval_one). */
static SPF_errcode_t layer_get_spf(SPF_server_t *srv, SPF_request_t *req, SPF_response_t *resp,
                                   SPF_record_t **recp)
{
    struct spfa *a = srv->resolver->hook;
    struct ev *ev = a->ev;
    struct tok *tk;
    struct spfrec *rec = NULL;
    char *target;
    enum fetch f;

    *recp = NULL;
    if (ev == NULL || ev->abort_res != SPF_RES_NONE)
        return SPF_E_DNS_ERROR;
    tk = tok_find(ev, req->cur_dom);
    if (tk == NULL || (tk->kind != TK_INCLUDE && tk->kind != TK_REDIRECT)) {
        ev_abort(ev, SPF_RES_TEMPERROR, "internal: unexpected record fetch");
        return SPF_E_DNS_ERROR;
    }
    if (++ev->terms > MAX_DNS_TERMS) {
        ev_abort(ev, SPF_RES_PERMERROR, "more than %d DNS-querying terms", MAX_DNS_TERMS);
        return SPF_E_BIG_DNS;
    }
    if ((target = tok_target(ev, tk)) == NULL)
        return SPF_E_DNS_ERROR;
    f = fetch_record(ev, target, &rec);
    if (f == FETCH_NONE)
        ev_abort(ev, SPF_RES_PERMERROR, "%s target %.200s has no SPF record",
                 tk->kind == TK_INCLUDE ? "include" : "redirect", target);
    if (f == FETCH_OK)
        *recp = compile_record(ev, resp, rec, target);
    spfrec_free(&rec);
    free(target);
    if (*recp == NULL)
        return ev->abort_res == SPF_RES_TEMPERROR ? SPF_E_DNS_ERROR : SPF_E_NOT_SPF;
    return SPF_E_SUCCESS;
}

/* get_exp: only a marker; the explanation is fetched and expanded by us. */
static SPF_errcode_t layer_get_exp(SPF_server_t *srv, const char *domain, char **buf,
                                   size_t *buflen)
{
    /* libspf2 passes its own *buf as domain: copy it first */
    char *dom = strdup(domain);
    size_t need;
    (void)srv;
    if (dom == NULL)
        return SPF_E_NO_MEMORY;
    need = strlen(EXP_MARK) + strlen(dom) + 1;
    if (*buflen < need) {
        char *nb = realloc(*buf, need);
        if (nb == NULL) {
            free(dom);
            return SPF_E_NO_MEMORY;
        }
        *buf = nb;
        *buflen = need;
    }
    snprintf(*buf, *buflen, "%s%s", EXP_MARK, dom);
    free(dom);
    return SPF_E_SUCCESS;
}

/* ---- evaluation ---- */

static enum spf_res map_result(SPF_result_t r)
{
    switch (r) {
    case SPF_RESULT_PASS:
        return SPF_RES_PASS;
    case SPF_RESULT_FAIL:
        return SPF_RES_FAIL;
    case SPF_RESULT_SOFTFAIL:
        return SPF_RES_SOFTFAIL;
    case SPF_RESULT_NEUTRAL:
        return SPF_RES_NEUTRAL;
    case SPF_RESULT_NONE:
        return SPF_RES_NONE;
    case SPF_RESULT_TEMPERROR:
        return SPF_RES_TEMPERROR;
    default: /* PERMERROR, (invalid) */
        return SPF_RES_PERMERROR;
    }
}

/* RFC 7208 §4.3: a domain we evaluate at all (else the result is none). */
static int identity_ok(const char *d)
{
    return d[0] != '[' && query_name_ok(d) && strchr(d, '.') != NULL && strchr(d, ' ') == NULL;
}

/* The explanation of exp token tk (RFC 7208 §6.2), into out ("" when none). */
static void explain(struct ev *ev, const struct tok *tk, char *out, size_t outsz)
{
    char *name, *text;
    struct dns_result *r;
    int err;
    out[0] = '\0';
    name = ev_expand(ev, tk->spec, tk->dom, SPFREC_EXPAND_DOMAIN, &err);
    if (name == NULL || !query_name_ok(name)) {
        free(name);
        return;
    }
    r = ev_lookup(ev, name, DNS_T_TXT);
    free(name);
    if (r && r->status == DNS_OK && r->n == 1 &&
        spfrec_check_explain((const char *)r->rr[0].data, r->rr[0].len) == 0) {
        text = ev_expand(ev, (const char *)r->rr[0].data, tk->dom, SPFREC_EXPAND_EXPLAIN, &err);
        if (text)
            snprintf(out, outsz, "%s", text);
        free(text);
    }
    dnsrr_unref(&r);
}

/* Evaluate one identity: domain with sender local@sdom. */
static enum spf_res eval_one(struct ev *ev, const char *domain, char *explanation, size_t expsz)
{
    struct spfrec *rec = NULL;
    enum fetch f;
    SPF_request_t *req = NULL;
    SPF_response_t *resp = NULL;
    SPF_record_t *crec = NULL;
    enum spf_res res = SPF_RES_TEMPERROR;
    char top[64];
    int id;
    const char *expl;

    explanation[0] = '\0';
    if (!identity_ok(domain))
        return SPF_RES_NONE;
    f = fetch_record(ev, domain, &rec);
    if (f == FETCH_NONE)
        return SPF_RES_NONE;
    if (f != FETCH_OK)
        return ev->abort_res;
    /* the top-level domain is a token too, so libspf2 sees no remote text */
    if ((id = tok_add(ev, TK_INCLUDE, NULL, 0, domain, 0)) < 0) {
        spfrec_free(&rec);
        ev_abort(ev, SPF_RES_TEMPERROR, "out of memory");
        return ev->abort_res;
    }
    snprintf(top, sizeof(top), "t%d" TOK_SUFFIX, id);
    req = SPF_request_new(ev->a->srv);
    if (req == NULL) {
        spfrec_free(&rec);
        ev_abort(ev, SPF_RES_TEMPERROR, "out of memory");
        return ev->abort_res;
    }
    if (ev->af == AF_INET) {
        struct in_addr in;
        memcpy(&in, ev->ip, 4);
        SPF_request_set_ipv4(req, in);
    } else {
        struct in6_addr in6;
        memcpy(&in6, ev->ip, 16);
        SPF_request_set_ipv6(req, in6);
    }
    req->cur_dom = top;
    resp = SPF_response_new(req);
    if (resp != NULL)
        crec = compile_record(ev, resp, rec, domain);
    spfrec_free(&rec);
    if (resp != NULL && crec != NULL) {
        /* SPF_record_interpret directly: no loopback free pass */
        resp->spf_record_exp = crec;
        SPF_record_interpret(crec, req, resp, 0);
        res = map_result(SPF_response_result(resp));
        if (ev->abort_res != SPF_RES_NONE) {
            res = ev->abort_res;
        } else if (res == SPF_RES_FAIL) {
            expl = SPF_response_get_explanation(resp);
            if (expl && strncmp(expl, EXP_MARK, strlen(EXP_MARK)) == 0) {
                const struct tok *tk = tok_find(ev, expl + strlen(EXP_MARK));
                if (tk && tk->kind == TK_EXP)
                    explain(ev, tk, explanation, expsz);
            }
        } else if (res == SPF_RES_PERMERROR || res == SPF_RES_TEMPERROR) {
            snprintf(ev->problem, sizeof(ev->problem), "libspf2: %s",
                     SPF_strerror(SPF_response_errcode(resp)));
        }
        SPF_record_free(crec);
    } else if (ev->abort_res != SPF_RES_NONE) {
        res = ev->abort_res;
    } else {
        snprintf(ev->problem, sizeof(ev->problem), "out of memory");
    }
    if (resp)
        SPF_response_free(resp);
    req->cur_dom = NULL;
    SPF_request_free(req);
    return res;
}

static void ev_reset(struct ev *ev)
{
    size_t i;
    for (i = 0; i < ev->ntok; i++) {
        free(ev->toks[i].spec);
        free(ev->toks[i].dom);
    }
    free(ev->toks);
    for (i = 0; i < ev->nptr_names; i++)
        free(ev->ptr_names[i]);
    free(ev->pname);
    free(ev->pname_for);
}

static void copy_lower(char *dst, size_t sz, const char *src)
{
    size_t i;
    for (i = 0; src[i] && i + 1 < sz; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* Evaluate identity domain (sender local@sdom) into *res, merging ttl. */
static int run(struct spfa *a, int af, const unsigned char *ip, const char *helo, const char *local,
               const char *sdom, enum spf_res *res, char *explanation, size_t expsz, char *problem,
               size_t probsz, uint32_t *ttl, int *local_used)
{
    struct ev ev;
    char *sender;
    memset(&ev, 0, sizeof(ev));
    ev.a = a;
    ev.af = af;
    memcpy(ev.ip, ip, af == AF_INET ? 4 : 16);
    if (asprintf(&sender, "%s@%s", local, sdom) < 0)
        return -1;
    ev.sender = sender;
    ev.local = local;
    ev.sdom = sdom;
    ev.helo = helo;
    a->ev = &ev;
    *res = eval_one(&ev, sdom, explanation, expsz);
    a->ev = NULL;
    if ((*res == SPF_RES_PERMERROR || *res == SPF_RES_TEMPERROR) && problem && !problem[0])
        snprintf(problem, probsz, "%s", ev.problem[0] ? ev.problem : "SPF evaluation error");
    if (ev.used_answer && ev.ttl < *ttl)
        *ttl = ev.ttl;
    *local_used = ev.local_used;
    ev_reset(&ev);
    free(sender);
    return 0;
}

struct spfa *spfa_new(const char *receiver_name, spfa_lookup_fn lookup, void *ctx)
{
    struct spfa *a = calloc(1, sizeof(*a));
    SPF_response_t *resp = NULL;
    if (a == NULL)
        return NULL;
    a->lookup = lookup;
    a->ctx = ctx;
    a->rname = strdup(receiver_name && receiver_name[0] ? receiver_name : "unknown");
    a->dns = calloc(1, sizeof(*a->dns));
    if (a->rname == NULL || a->dns == NULL)
        goto fail;
    a->dns->destroy = NULL; /* we free it ourselves */
    a->dns->lookup = layer_lookup;
    a->dns->get_spf = layer_get_spf;
    a->dns->get_exp = layer_get_exp;
    a->dns->name = "spfa";
    a->dns->hook = a;
    a->srv = SPF_server_new_dns(a->dns, 0);
    if (a->srv == NULL)
        goto fail;
    /* a constant default explanation: libspf2 expands nothing of its own */
    SPF_server_set_explanation(a->srv, "spfa-default", &resp);
    if (resp)
        SPF_response_free(resp);
    SPF_server_set_rec_dom(a->srv, a->rname);
    return a;
fail:
    spfa_free(&a);
    return NULL;
}

void spfa_free(struct spfa **ap)
{
    struct spfa *a;
    if (ap == NULL || (a = *ap) == NULL)
        return;
    if (a->srv)
        SPF_server_free(a->srv);
    free(a->dns);
    free(a->rname);
    free(a);
    *ap = NULL;
}

/* Parse the client address; IPv4-mapped IPv6 becomes IPv4 (RFC 7208 §5). */
static int parse_ip(const char *s, int *af, unsigned char ip[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (inet_pton(AF_INET, s, ip) == 1) {
        *af = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, ip) == 1) {
        *af = AF_INET6;
        if (memcmp(ip, mapped, 12) == 0) {
            memmove(ip, ip + 12, 4);
            *af = AF_INET;
        }
        return 0;
    }
    return -1;
}

static void strip_dot(char *dst, size_t sz, const char *src)
{
    size_t n;
    snprintf(dst, sz, "%s", src);
    n = strlen(dst);
    if (n > 1 && dst[n - 1] == '.')
        dst[n - 1] = '\0';
}

int spfa_eval(struct spfa *a, const char *client_ip, const char *helo, const char *sender,
              struct spf_verdict *out)
{
    int af;
    unsigned char ip[16];
    char heloname[SPF_DOMAIN_MAX], local[SPF_TEXT_MAX], dom[SPF_DOMAIN_MAX];
    char scratch[SPF_TEXT_MAX], hprob[SPF_TEXT_MAX];
    const char *at;
    uint32_t ttl = UINT32_MAX;
    int helo_is_domain, helo_local;

    memset(out, 0, sizeof(*out));
    out->mfrom = out->helo = SPF_RES_TEMPERROR;
    out->uses_local = 1; /* until the MAIL FROM evaluation says otherwise */
    if (a == NULL || client_ip == NULL || parse_ip(client_ip, &af, ip) < 0) {
        snprintf(out->problem, sizeof(out->problem), "invalid client address");
        return -1;
    }
    if (helo == NULL)
        helo = "";
    if (sender == NULL)
        sender = "";
    strip_dot(heloname, sizeof(heloname), helo);
    helo_is_domain = identity_ok(heloname);

    /* MAIL FROM identity, or postmaster@HELO for the null sender (§2.4) */
    if (sender[0] == '\0') {
        snprintf(local, sizeof(local), "postmaster");
        snprintf(dom, sizeof(dom), "%s", heloname);
    } else if ((at = strrchr(sender, '@')) != NULL) {
        snprintf(local, sizeof(local), "%.*s", (int)(at - sender), sender);
        if (local[0] == '\0')
            snprintf(local, sizeof(local), "postmaster");
        strip_dot(dom, sizeof(dom), at + 1);
    } else {
        snprintf(local, sizeof(local), "postmaster");
        strip_dot(dom, sizeof(dom), sender);
    }
    if (identity_ok(dom))
        copy_lower(out->mfrom_domain, sizeof(out->mfrom_domain), dom);
    if (run(a, af, ip, helo, local, dom, &out->mfrom, out->explanation, sizeof(out->explanation),
            out->problem, sizeof(out->problem), &ttl, &out->uses_local) < 0)
        return -1;

    if (!helo_is_domain) {
        out->helo = SPF_RES_NONE;
    } else {
        copy_lower(out->helo_domain, sizeof(out->helo_domain), heloname);
        if (sender[0] == '\0') {
            out->helo = out->mfrom; /* the same evaluation */
        } else {
            hprob[0] = '\0';
            /* the HELO identity's local part is always "postmaster": whatever
             * it expands does not depend on the sender's local part */
            if (run(a, af, ip, helo, "postmaster", heloname, &out->helo, scratch, sizeof(scratch),
                    hprob, sizeof(hprob), &ttl, &helo_local) < 0)
                return -1;
            if (out->problem[0] == '\0' &&
                (out->helo == SPF_RES_PERMERROR || out->helo == SPF_RES_TEMPERROR))
                snprintf(out->problem, sizeof(out->problem), "helo: %.500s", hprob);
        }
    }
    if (out->mfrom != SPF_RES_FAIL)
        out->explanation[0] = '\0';
    out->ttl = ttl == UINT32_MAX ? 0 : ttl;
    return 0;
}
