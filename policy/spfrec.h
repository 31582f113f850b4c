/* spfrec.h - RFC 7208 SPF record parser/validator and macro expander (pure C,
 * no libspf2, no DNS).
 *
 * spfrec_parse() checks a record against the ABNF of RFC 7208 §12 (version,
 * mechanisms with qualifiers, dual-cidr-length, modifiers, macro-string and
 * domain-spec syntax, only SP and %x21-7E bytes) and returns either a verdict
 * "valid" with the parsed terms, or "invalid" (permerror) with a reason.
 * spfrec_expand() expands a macro-string (RFC 7208 §7.3) for a domain name
 * (left-truncated to 253 characters) or for an explanation text.
 *
 * The SPF adapter (src/spfa.c) uses both so that libspf2 only ever compiles
 * text we generated ourselves (see ../shared/spec/libspf2-findings.md). */
#ifndef PD_SPFREC_H
#define PD_SPFREC_H

#include <stddef.h>

enum spfrec_kind {
    SPFREC_ALL = 0,
    SPFREC_INCLUDE,
    SPFREC_A,
    SPFREC_MX,
    SPFREC_PTR,
    SPFREC_IP4,
    SPFREC_IP6,
    SPFREC_EXISTS,
    SPFREC_REDIRECT, /* modifier */
    SPFREC_EXP,      /* modifier */
    SPFREC_UNKNOWN,  /* unknown modifier (valid, ignored) */
};

/* One term of a parsed record. Strings point into spfrec.text (borrowed). */
struct spfrec_term {
    enum spfrec_kind kind;
    char qual;              /* '+', '-', '~' or '?' ('+' when absent; '+' for modifiers) */
    const char *spec;       /* domain-spec / modifier value, NULL when absent */
    size_t spec_len;        /* bytes of spec */
    int cidr4, cidr6;       /* prefix lengths, -1 when absent (ip4: cidr4, ip6: cidr6) */
    unsigned char addr[16]; /* ip4 (4 bytes) / ip6 network address */
};

/* The parsed record. Created by spfrec_parse(), freed by spfrec_free(). */
struct spfrec {
    int valid;        /* 1: valid record; 0: permerror, see reason */
    char reason[160]; /* why invalid ("" when valid) */
    char *text;       /* owned copy of the record text (NUL-terminated) */
    size_t len;
    size_t nterms; /* mechanisms and modifiers, in record order */
    struct spfrec_term *terms;
    int redirect;         /* index of redirect= in terms, -1 if none */
    int exp;              /* index of exp= in terms, -1 if none */
    int has_all;          /* an "all" mechanism is present */
    int redirect_ignored; /* redirect= present but ignored because of "all" (§6.1) */
    unsigned n_dns;       /* DNS-querying terms in this record (include a mx ptr exists,
                             plus an effective redirect) */
    /* Estimated size of libspf2's compiled form of this record (mechanism and
     * modifier areas); libspf2 1.2.10 silently loses terms beyond 511 bytes. */
    size_t est_mech_size, est_mod_size;
};

/* spfrec_is_spf1: does this TXT string select as an SPF record (RFC 7208
 * §4.5: "v=spf1", case-insensitive, followed by SP or the end)? len bytes,
 * NUL bytes included. */
int spfrec_is_spf1(const char *txt, size_t len);

/* spfrec_parse: parse and validate len bytes of record text (NUL bytes are
 * invalid). Returns a new record (check ->valid), NULL only on ENOMEM.
 * Caller frees with spfrec_free(). */
struct spfrec *spfrec_parse(const char *txt, size_t len);
void spfrec_free(struct spfrec **rp);

/* spfrec_check_domain_spec: 0 when spec (len bytes) is a valid RFC 7208
 * domain-spec, else -1 with a reason in why[whysz] (why may be NULL). */
int spfrec_check_domain_spec(const char *spec, size_t len, char *why, size_t whysz);

/* spfrec_check_explain: 0 when txt is a valid explanation string
 * (explain-string of §6.2: macro-strings and SP, c/r/t letters allowed). */
int spfrec_check_explain(const char *txt, size_t len);

/* What the macros stand for (RFC 7208 §7.3). All strings borrowed. */
struct spfrec_env {
    const char *sender; /* s: <sender> (local-part@domain) */
    const char *local;  /* l: local-part of sender */
    const char *sdom;   /* o: domain of sender */
    const char *domain; /* d: current domain */
    const char *helo;   /* h: HELO/EHLO name */
    const char *rname;  /* r: receiver name ("unknown" when NULL) */
    int af;             /* AF_INET or AF_INET6: the client's family (i, c, v) */
    unsigned char ip[16];
    long long now; /* t: seconds since the epoch */
    /* p: the validated domain name of the client for target domain d; called
     * only when a %{p} is expanded; NULL function or result means "unknown". */
    const char *(*ptr_name)(void *ctx, const char *domain);
    void *ptr_ctx;
    /* When not NULL, spfrec_expand() sets *local_used = 1 (never clears it)
     * when it expands a macro that carries the sender's local part (l, L, s,
     * S), and also when an expansion fails (it cannot vouch for what it did
     * not finish). Lets a caller tell whether a result depends on the local
     * part at all (the SPF verdict cache keys on the domain when it does
     * not). Borrowed; a pointer so that env itself can stay const. */
    int *local_used;
};

enum {
    SPFREC_EXPAND_DOMAIN = 0,  /* domain-spec: c/r/t invalid, trailing dot removed,
                                  left-truncated to 253 characters */
    SPFREC_EXPAND_EXPLAIN = 1, /* explanation text: c/r/t allowed, SP kept */
};

/* spfrec_expand: expand len bytes of macro-string src. Returns a new string
 * (caller frees), or NULL with *err set: -1 syntax error, -2 out of memory,
 * -3 expansion larger than 1 MiB. */
char *spfrec_expand(const char *src, size_t len, int mode, const struct spfrec_env *env, int *err);

/* spfrec_truncate_domain: RFC 7208 §7.3 left truncation of an expanded name
 * to at most 253 characters by removing whole labels, in place. */
void spfrec_truncate_domain(char *name);

#endif
