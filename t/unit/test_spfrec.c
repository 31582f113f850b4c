/* test_spfrec.c - the RFC 7208 record validator and macro expander. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spfrec.h"
#include "tap.h"

static const struct {
    const char *rec;
    int valid;
} recs[] = {
    {"v=spf1", 1},
    {"v=spf1 -all", 1},
    {"V=SpF1 ~ALL ", 1},
    {"v=spf1  a  -all", 1},
    {"v=spf10", 0},
    {"v=spf1 a/0 mx//0 ip4:1.1.1.1/0 ip6:::/0", 1},
    {"v=spf1 ip4:1.2.3.4/032", 0},
    {"v=spf1 ip4:1.2.3.4/33", 0},
    {"v=spf1 ip6:::1/129", 0},
    {"v=spf1 ip4:1.2.3.4//32", 0},
    {"v=spf1 ip6:::1//33", 0},
    {"v=spf1 ip4:1.2.3", 0},
    {"v=spf1 a:example.com/24//64", 1},
    {"v=spf1 a:", 0},
    {"v=spf1 exists:", 0},
    {"v=spf1 redirect=", 0},
    {"v=spf1 a:foo.1", 0},
    {"v=spf1 a:foo.bar-", 0},
    {"v=spf1 a:foo.1-2", 1},
    {"v=spf1 a:%{d}", 1},
    {"v=spf1 a:%{d}.", 0},
    {"v=spf1 a:foo.com.", 1},
    {"v=spf1 a:localhost", 0},
    {"v=spf1 exists:%{ir}.%{l1r+-}.%{d2}", 1},
    {"v=spf1 exists:%{d0}.example.com", 0},
    {"v=spf1 exists:%(ir).example.com", 0},
    {"v=spf1 exists:foo%.example.com", 0},
    {"v=spf1 exists:%%%_%-.example.com", 1},
    {"v=spf1 a:%{c}.example.com", 0},
    {"v=spf1 -all exp=%{r}.example.com", 0},
    {"v=spf1 -all foo.bar=baz", 1},
    {"v=spf1 -all 1foo=baz", 0},
    {"v=spf1 redirect:example.com", 0},
    {"v=spf1 redirect=a.example redirect=b.example", 0},
    {"v=spf1 exp=a.example exp=b.example", 0},
    {"v=spf1 -redirect=a.example", 0},
    {"v=spf1 all:foo", 0},
    {"v=spf1 a:\xef\xbb\xbfgarbage.example.net -all", 0},
    {"v=spf1 a:ctrl.example.com\rptr -all", 0},
    {"v=spf1 ptr:%{p}.example.com", 1},
    {"v=spf1 include:example.com", 1},
    {"v=spf1 foo", 0},
};

struct exp_case {
    const char *macro;
    int mode;
    const char *want; /* NULL: syntax error */
};

static const struct exp_case exps[] = {
    {"%{s}", SPFREC_EXPAND_DOMAIN, "strong-bad@email.example.com"},
    {"%{o}", SPFREC_EXPAND_DOMAIN, "email.example.com"},
    {"%{d}", SPFREC_EXPAND_DOMAIN, "email.example.com"},
    {"%{d4}", SPFREC_EXPAND_DOMAIN, "email.example.com"},
    {"%{d3}", SPFREC_EXPAND_DOMAIN, "email.example.com"},
    {"%{d2}", SPFREC_EXPAND_DOMAIN, "example.com"},
    {"%{d1}", SPFREC_EXPAND_DOMAIN, "com"},
    {"%{dr}", SPFREC_EXPAND_DOMAIN, "com.example.email"},
    {"%{d2r}", SPFREC_EXPAND_DOMAIN, "example.email"},
    {"%{l}", SPFREC_EXPAND_DOMAIN, "strong-bad"},
    {"%{l-}", SPFREC_EXPAND_DOMAIN, "strong.bad"},
    {"%{lr}", SPFREC_EXPAND_DOMAIN, "strong-bad"},
    {"%{lr-}", SPFREC_EXPAND_DOMAIN, "bad.strong"},
    {"%{l1r-}", SPFREC_EXPAND_DOMAIN, "strong"},
    {"%{ir}.%{v}._spf.%{d2}", SPFREC_EXPAND_DOMAIN, "3.2.0.192.in-addr._spf.example.com"},
    {"%{lr-}.lp._spf.%{d2}", SPFREC_EXPAND_DOMAIN, "bad.strong.lp._spf.example.com"},
    {"%{d}.", SPFREC_EXPAND_DOMAIN, "email.example.com"},
    {"%%%_%-", SPFREC_EXPAND_EXPLAIN, "% %20"},
    {"%{L}", SPFREC_EXPAND_EXPLAIN, "strong-bad"},
    {"%{S}", SPFREC_EXPAND_EXPLAIN, "strong-bad%40email.example.com"},
    {"%{c} says %{r}", SPFREC_EXPAND_EXPLAIN, "192.0.2.3 says mx.example.org"},
    {"%{c}", SPFREC_EXPAND_DOMAIN, NULL},
    {"%{x}", SPFREC_EXPAND_EXPLAIN, NULL},
    {"%", SPFREC_EXPAND_EXPLAIN, NULL},
    {"This is a test.", SPFREC_EXPAND_EXPLAIN, "This is a test."},
    {"%{p}", SPFREC_EXPAND_DOMAIN, "mx.example.com"},
};

/* Which expansions carry the sender's local part (spfrec_env.local_used). */
static const struct {
    const char *macro;
    int mode;
    int used; /* 1: local_used must be set */
} locals[] = {
    {"%{l}", SPFREC_EXPAND_DOMAIN, 1},
    {"%{L}", SPFREC_EXPAND_EXPLAIN, 1},
    {"%{s}", SPFREC_EXPAND_DOMAIN, 1},
    {"%{S}", SPFREC_EXPAND_EXPLAIN, 1},
    {"%{l1r-}.x.example", SPFREC_EXPAND_DOMAIN, 1},
    {"%{d}.%{lr-}.lp._spf.%{d2}", SPFREC_EXPAND_DOMAIN, 1},
    {"%{s2}", SPFREC_EXPAND_DOMAIN, 1},
    {"you, %{L}, may not send", SPFREC_EXPAND_EXPLAIN, 1},
    {"%{x}", SPFREC_EXPAND_EXPLAIN, 1}, /* an expansion error: cannot vouch, so 1 */
    {"%{c}.%{l}", SPFREC_EXPAND_DOMAIN, 1},
    {"%{o}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{O}", SPFREC_EXPAND_EXPLAIN, 0},
    {"%{d}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{d2r}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{i}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{ir}.%{v}._spf.%{d2}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{h}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{p}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{v}", SPFREC_EXPAND_DOMAIN, 0},
    {"%{c} says %{r} at %{t}", SPFREC_EXPAND_EXPLAIN, 0},
    {"%%%_%-", SPFREC_EXPAND_EXPLAIN, 0},
    {"plain.example", SPFREC_EXPAND_DOMAIN, 0},
    {"lsLS.example", SPFREC_EXPAND_DOMAIN, 0}, /* the letters outside a macro */
};

static const char *fake_ptr(void *ctx, const char *domain)
{
    (void)ctx;
    (void)domain;
    return "mx.example.com";
}

int main(void)
{
    size_t i;
    struct spfrec_env env;
    struct spfrec *r;
    char *s, big[1200];
    int err;

    for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        r = spfrec_parse(recs[i].rec, strlen(recs[i].rec));
        ok(r != NULL && r->valid == recs[i].valid, "%s \"%s\"%s%s",
           recs[i].valid ? "valid" : "invalid", recs[i].rec, r && !r->valid ? ": " : "",
           r && !r->valid ? r->reason : "");
        spfrec_free(&r);
    }
    /* NUL inside the text is invalid, not a terminator */
    r = spfrec_parse("v=spf1 a:foo.example.com\0", 25);
    ok(r && !r->valid, "NUL byte: invalid (%s)", r ? r->reason : "");
    spfrec_free(&r);
    ok(r == NULL, "spfrec_free NULLs the pointer");

    /* facts */
    s = "v=spf1 a mx include:x.example redirect=y.example -all";
    r = spfrec_parse(s, strlen(s));
    ok(r && r->valid && r->redirect_ignored && r->has_all && r->n_dns == 3,
       "redirect ignored with all; 3 DNS terms");
    spfrec_free(&r);
    s = "v=spf1 ip4:1.2.3.4/0 a//64 ~all";
    r = spfrec_parse(s, strlen(s));
    ok(r && r->valid && r->nterms == 3 && r->terms[0].cidr4 == 0 && r->terms[1].cidr6 == 64 &&
           r->terms[1].cidr4 == -1 && r->terms[2].qual == '~',
       "terms parsed (cidrs, qualifier)");
    spfrec_free(&r);
    {
        char rec[1024];
        size_t o = (size_t)sprintf(rec, "v=spf1");
        for (i = 0; i < 64; i++)
            o += (size_t)sprintf(rec + o, " ip4:10.0.0.%zu", i);
        r = spfrec_parse(rec, o);
        ok(r && r->valid && r->est_mech_size > 511, "64 ip4 terms: estimated size %zu > 511",
           r ? r->est_mech_size : 0);
        spfrec_free(&r);
    }
    ok(spfrec_is_spf1("v=spf1 -all", 11) && spfrec_is_spf1("V=SPF1", 6) &&
           !spfrec_is_spf1("v=spf10", 7) && !spfrec_is_spf1("v=spf1\0x", 8),
       "record selection");

    memset(&env, 0, sizeof(env));
    env.sender = "strong-bad@email.example.com";
    env.local = "strong-bad";
    env.sdom = "email.example.com";
    env.domain = "email.example.com";
    env.helo = "mail.example.com";
    env.rname = "mx.example.org";
    env.af = AF_INET;
    inet_pton(AF_INET, "192.0.2.3", env.ip);
    env.ptr_name = fake_ptr;
    for (i = 0; i < sizeof(exps) / sizeof(exps[0]); i++) {
        s = spfrec_expand(exps[i].macro, strlen(exps[i].macro), exps[i].mode, &env, &err);
        if (exps[i].want)
            is_str(s, exps[i].want, "expand \"%s\"", exps[i].macro);
        else
            ok(s == NULL && err == -1, "expand \"%s\": syntax error", exps[i].macro);
        free(s);
    }
    for (i = 0; i < sizeof(locals) / sizeof(locals[0]); i++) {
        int used = 0;

        env.local_used = &used;
        s = spfrec_expand(locals[i].macro, strlen(locals[i].macro), locals[i].mode, &env, &err);
        is_int(used, locals[i].used, "\"%s\": local_used", locals[i].macro);
        ok(s != NULL || locals[i].used, "\"%s\": expanded", locals[i].macro);
        free(s);
    }
    {
        int used = 1;

        env.local_used = &used;
        s = spfrec_expand("%{d}", 4, SPFREC_EXPAND_DOMAIN, &env, &err);
        is_int(used, 1, "local_used is never cleared");
        free(s);
        env.local_used = NULL;
    }
    env.af = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::cb01", env.ip);
    s = spfrec_expand("%{ir}.%{v}._spf.%{d2}", 21, SPFREC_EXPAND_DOMAIN, &env, &err);
    is_str(s,
           "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com",
           "IPv6 nibbles");
    free(s);
    env.local = "~jack&jill=up-a_b3.c";
    s = spfrec_expand("l=%{L}", 6, SPFREC_EXPAND_EXPLAIN, &env, &err);
    is_str(s, "l=~jack%26jill%3Dup-a_b3.c", "URL escaping, upper-case hex");
    free(s);

    /* 253-character left truncation by whole labels */
    memset(big, 0, sizeof(big));
    for (i = 0; i < 30; i++)
        strcat(big, "abcdefghi.");
    strcat(big, "example.com");
    spfrec_truncate_domain(big);
    ok(strlen(big) <= 253 && strcmp(big + strlen(big) - 11, "example.com") == 0 && big[0] == 'a',
       "truncated to %zu chars at a label boundary", strlen(big));
    return tap_done();
}
