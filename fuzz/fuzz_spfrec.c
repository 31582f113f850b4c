/* fuzz_spfrec.c - libFuzzer target for the RFC 7208 record parser and the
 * macro expander (policy/spfrec.c), the text checks that stand in front of
 * libspf2.
 *
 * Input: byte 0 = flags (bit 0: IPv6 client, bit 1: %{p} known, bit 2: the
 * sender has no local-part), then the record text (NUL bytes included).
 * Checked: the parse is self-consistent (terms point into the copy, redirect/
 * exp indexes in range, invalid <=> a reason); every domain-spec of a valid
 * record expands in domain mode to at most 253 characters without a syntax
 * error; a text that spfrec_check_explain() accepts expands as an explanation;
 * a valid record is an SPF record by spfrec_is_spf1(). FUZZ_STRICT=1: see below. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "spfrec.h"

static const char *ptr_known(void *ctx, const char *domain)
{
    (void)domain;
    return ctx;
}

static void expand_check(const char *src, size_t len, int mode, const struct spfrec_env *env,
                         int must_ok)
{
    int err = 0;
    char *out = spfrec_expand(src, len, mode, env, &err);
    if (out == NULL) {
        FZ_CHECK(err == -1 || err == -2 || err == -3);
        FZ_CHECK(!must_ok || err != -1);
        return;
    }
    if (mode == SPFREC_EXPAND_DOMAIN)
        FZ_CHECK(strlen(out) <= 253);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spfrec_env env;
    struct spfrec *rec;
    const char *txt;
    size_t len;
    uint8_t flags;

    if (size == 0)
        return 0;
    flags = data[0];
    txt = (const char *)data + 1;
    len = size - 1;

    memset(&env, 0, sizeof(env));
    env.sender = (flags & 4) ? "postmaster@example.com" : "strong-bad@email.example.com";
    env.local = (flags & 4) ? "postmaster" : "strong-bad";
    env.sdom = "email.example.com";
    env.domain = "email.example.com";
    env.helo = "mx.example.org";
    env.rname = (flags & 8) ? NULL : "receiver.example.net";
    env.af = (flags & 1) ? AF_INET6 : AF_INET;
    if (flags & 1)
        memcpy(env.ip, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    else
        memcpy(env.ip, "\xc0\x00\x02\x03", 4);
    env.now = 1234567890;
    env.ptr_name = (flags & 2) ? ptr_known : NULL;
    env.ptr_ctx = "mx.email.example.com";

    rec = spfrec_parse(txt, len);
    if (rec == NULL)
        return 0; /* ENOMEM only */
    FZ_CHECK(rec->text != NULL && rec->len == len && memcmp(rec->text, txt, len) == 0);
    FZ_CHECK(rec->valid ? rec->reason[0] == '\0' : rec->reason[0] != '\0');
    FZ_CHECK(memchr(rec->reason, '\0', sizeof(rec->reason)) != NULL);
    if (rec->valid) {
        FZ_CHECK(spfrec_is_spf1(txt, len));
        FZ_CHECK(memchr(txt, '\0', len) == NULL);
        FZ_CHECK(rec->redirect >= -1 && rec->redirect < (int)rec->nterms);
        FZ_CHECK(rec->exp >= -1 && rec->exp < (int)rec->nterms);
        if (rec->redirect >= 0)
            FZ_CHECK(rec->terms[rec->redirect].kind == SPFREC_REDIRECT);
        if (rec->exp >= 0)
            FZ_CHECK(rec->terms[rec->exp].kind == SPFREC_EXP);
        for (size_t i = 0; i < rec->nterms; i++) {
            const struct spfrec_term *t = &rec->terms[i];
            FZ_CHECK(t->kind >= SPFREC_ALL && t->kind <= SPFREC_UNKNOWN);
            FZ_CHECK(t->qual == '+' || t->qual == '-' || t->qual == '~' || t->qual == '?');
            FZ_CHECK(t->cidr4 >= -1 && t->cidr4 <= 32 && t->cidr6 >= -1 && t->cidr6 <= 128);
            if (t->spec == NULL)
                continue;
            FZ_CHECK(t->spec >= rec->text && t->spec + t->spec_len <= rec->text + rec->len);
            if (t->kind == SPFREC_UNKNOWN || t->kind == SPFREC_IP4 || t->kind == SPFREC_IP6 ||
                t->kind == SPFREC_ALL)
                continue; /* not a domain-spec (unknown modifiers are never expanded) */
            FZ_CHECK(spfrec_check_domain_spec(t->spec, t->spec_len, NULL, 0) == 0);
            expand_check(t->spec, t->spec_len, SPFREC_EXPAND_DOMAIN, &env, 1);
        }
    }
    spfrec_free(&rec);
    FZ_CHECK(rec == NULL);

    /* The whole text as a domain-spec and as an explanation. The daemon's
     * callers pass NUL-terminated text (spfrec_parse's copy, dnsrr data);
     * FUZZ_STRICT=1 passes the unterminated input, as the len-based API allows. */
    char *term = malloc(len + 1);
    FZ_CHECK(term != NULL);
    memcpy(term, txt, len);
    term[len] = '\0';
    if (!fz_strict())
        txt = term;
    char why[128];
    int dok = spfrec_check_domain_spec(txt, len, why, sizeof(why)) == 0;
    expand_check(txt, len, SPFREC_EXPAND_DOMAIN, &env, dok);
    expand_check(txt, len, SPFREC_EXPAND_EXPLAIN, &env, spfrec_check_explain(txt, len) == 0);

    /* left truncation never grows a name and never leaves more than 253 */
    char *copy = strndup(txt, len);
    if (copy != NULL) {
        size_t before = strlen(copy);
        spfrec_truncate_domain(copy);
        FZ_CHECK(strlen(copy) <= before && strlen(copy) <= 253);
        free(copy);
    }
    free(term);
    return 0;
}
