/* test_hdr.c - the Received-SPF and Authentication-Results lines: exact
 * text for every result, the null sender, IPv6, hostile HELO/sender values
 * (header injection, quotes, parentheses, backslashes, 2000-byte values),
 * and that a reader built like OpenDMARC's takes the right result, identity
 * and envelope domain out of what we write. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hdr.h"
#include "tap.h"

static struct hdr_spf base(enum spf_res r)
{
    struct hdr_spf h = {
        .result = r,
        .identity_helo = 0,
        .client_ip = "192.0.2.7",
        .helo = "mail.a.example",
        .envelope_from = "alice@a.example",
        .domain = "a.example",
        .receiver = "mx.example.org",
        .problem = "",
        .authserv_id = "mx.example.org",
    };
    return h;
}

#define TAIL                                                                                       \
    " receiver=mx.example.org; client-ip=192.0.2.7; envelope-from=\"alice@a.example\"; "           \
    "helo=mail.a.example; identity=mailfrom"

struct exact {
    enum spf_res r;
    const char *problem;
    const char *rspf, *ar;
};

static const struct exact exact_cases[] = {
    {SPF_RES_PASS, "",
     "Received-SPF: pass (mx.example.org: domain of alice@a.example designates 192.0.2.7 as "
     "permitted sender)" TAIL,
     "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example"},
    {SPF_RES_FAIL, "",
     "Received-SPF: fail (mx.example.org: domain of alice@a.example does not designate "
     "192.0.2.7 as permitted sender)" TAIL,
     "Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=a.example"},
    {SPF_RES_SOFTFAIL, "",
     "Received-SPF: softfail (mx.example.org: domain of transitioning alice@a.example does not "
     "designate 192.0.2.7 as permitted sender)" TAIL,
     "Authentication-Results: mx.example.org; spf=softfail smtp.mailfrom=a.example"},
    {SPF_RES_NEUTRAL, "",
     "Received-SPF: neutral (mx.example.org: 192.0.2.7 is neither permitted nor denied by "
     "domain of alice@a.example)" TAIL,
     "Authentication-Results: mx.example.org; spf=neutral smtp.mailfrom=a.example"},
    {SPF_RES_NONE, "",
     "Received-SPF: none (mx.example.org: 192.0.2.7 is neither permitted nor denied by "
     "domain of alice@a.example)" TAIL,
     "Authentication-Results: mx.example.org; spf=none smtp.mailfrom=a.example"},
    {SPF_RES_TEMPERROR, "dns timeout for a.example/TXT",
     "Received-SPF: temperror (mx.example.org: error in processing during lookup of "
     "a.example)" TAIL "; problem=\"dns timeout for a.example/TXT\"",
     "Authentication-Results: mx.example.org; spf=temperror reason=\"dns timeout for "
     "a.example/TXT\" smtp.mailfrom=a.example"},
    {SPF_RES_PERMERROR, "",
     "Received-SPF: permerror (mx.example.org: error in processing during lookup of "
     "a.example)" TAIL,
     "Authentication-Results: mx.example.org; spf=permerror smtp.mailfrom=a.example"},
    {SPF_RES_PERMERROR, "too-many-lookups",
     "Received-SPF: permerror (mx.example.org: error in processing during lookup of "
     "a.example)" TAIL "; problem=too-many-lookups",
     "Authentication-Results: mx.example.org; spf=permerror reason=too-many-lookups "
     "smtp.mailfrom=a.example"},
    /* a problem on a non-error result is not ours to print */
    {SPF_RES_PASS, "stray",
     "Received-SPF: pass (mx.example.org: domain of alice@a.example designates 192.0.2.7 as "
     "permitted sender)" TAIL,
     "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example"},
};

/* well_formed: one line, no control bytes, <= HDR_MAX, the comment (if any)
 * balanced and free of backslashes, quotes balanced outside it. */
static int well_formed(const char *s, const char *name)
{
    size_t n = strlen(s), nl = strlen(name);
    int depth = 0, quoted = 0, esc = 0, comment_seen = 0;

    if (n > HDR_MAX || strncmp(s, name, nl) != 0 || strncmp(s + nl, ": ", 2) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (esc) {
            esc = 0;
            continue;
        }
        if (depth > 0) {
            if (c == '\\')
                return 0; /* no quoted-pairs in our comments */
            if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
            continue;
        }
        if (quoted) {
            if (c == '\\')
                esc = 1;
            else if (c == '"')
                quoted = 0;
            continue;
        }
        if (c == '"')
            quoted = 1;
        else if (c == '(') {
            if (comment_seen++)
                return 0;
            depth = 1;
        } else if (c == ')' || c == '\\')
            return 0;
    }
    return depth == 0 && !quoted && !esc;
}

/* rspf_read: a Received-SPF reader that follows OpenDMARC 1.4's rules:
 * first word = result; comments skipped, '\' escapes the next character,
 * '"' toggles quoting, unquoted spaces separate, and '=' / ';' separate keys
 * from values even inside quotes. Fills result, identity and the domain of
 * envelope-from (after its first '@'). */
static void rspf_read(const char *line, char *result, char *identity, char *envdom)
{
    char key[1024] = "", value[1024] = "", *r = result, *end = result + 31;
    int in_result = 1, esc = 0, quoting = 0, parens = 0;
    const char *p = strchr(line, ':') + 1, *at;

    *result = *identity = *envdom = '\0';
    while (*p == ' ')
        p++;
    for (;; p++) {
        int c = *p;
        if (c != '\0' && esc) {
            if (parens == 0 && r < end)
                *r++ = (char)c, *r = '\0';
            esc = 0;
        } else if (c == '\\') {
            esc = 1;
        } else if (c == '(') {
            parens++;
        } else if (c == ')' && parens > 0) {
            parens--;
        } else if (parens == 0 || c == '\0') {
            if (c == '"') {
                quoting = !quoting;
            } else if (c == ' ') {
                if (!quoting && in_result) {
                    in_result = 0;
                    r = key, end = key + sizeof key - 1;
                }
            } else if (!in_result && c == '=') {
                memset(value, 0, sizeof value);
                r = value, end = value + sizeof value - 1;
            } else if (!in_result && (c == ';' || c == '\0')) {
                if (strcasecmp(key, "identity") == 0)
                    strcpy(identity, value);
                if (strcasecmp(key, "envelope-from") == 0)
                    strcpy(envdom, (at = strchr(value, '@')) ? at + 1 : value);
                memset(key, 0, sizeof key);
                memset(value, 0, sizeof value);
                r = key, end = key + sizeof key - 1;
            } else if (r < end && c != '\0') {
                *r++ = (char)c, *r = '\0';
            }
        }
        if (c == '\0')
            break;
    }
}

int main(void)
{
    char buf[HDR_MAX + 1], big[2001], bigq[2001], res[32], ident[1024], dom[1024];
    struct hdr_spf h;
    int n;

    for (size_t i = 0; i < sizeof exact_cases / sizeof exact_cases[0]; i++) {
        const struct exact *c = &exact_cases[i];
        h = base(c->r);
        h.problem = c->problem;
        n = hdr_received_spf(buf, sizeof buf, &h);
        is_str(buf, c->rspf, "Received-SPF %s (case %zu)", spf_res_name(c->r), i);
        is_int(n, (long long)strlen(c->rspf), "Received-SPF length (case %zu)", i);
        ok(well_formed(buf, "Received-SPF"), "well-formed (case %zu)", i);
        rspf_read(buf, res, ident, dom);
        ok(strcmp(res, spf_res_name(c->r)) == 0 && strcmp(ident, "mailfrom") == 0 &&
               strcmp(dom, "a.example") == 0,
           "OpenDMARC-style reader: %s identity=%s envelope domain=%s", res, ident, dom);
        n = hdr_auth_results(buf, sizeof buf, &h);
        is_str(buf, c->ar, "Authentication-Results %s (case %zu)", spf_res_name(c->r), i);
        is_int(n, (long long)strlen(c->ar), "Authentication-Results length (case %zu)", i);
        ok(strstr(buf, "dmarc") == NULL, "never dmarc=");
    }

    /* The null sender: the HELO identity; envelope-from is the RFC 7208 §2.4
     * MAIL FROM identity postmaster@<HELO>. */
    h = base(SPF_RES_PASS);
    h.envelope_from = "";
    h.identity_helo = 1;
    h.domain = "mail.a.example";
    hdr_received_spf(buf, sizeof buf, &h);
    is_str(buf,
           "Received-SPF: pass (mx.example.org: domain of mail.a.example designates 192.0.2.7 "
           "as permitted sender) receiver=mx.example.org; client-ip=192.0.2.7; "
           "envelope-from=\"postmaster@mail.a.example\"; helo=mail.a.example; identity=helo",
           "null sender Received-SPF");
    rspf_read(buf, res, ident, dom);
    is_str(ident, "helo", "null sender: identity=helo (OpenDMARC will not use it for DMARC)");
    hdr_auth_results(buf, sizeof buf, &h);
    is_str(buf, "Authentication-Results: mx.example.org; spf=pass smtp.helo=mail.a.example",
           "null sender Authentication-Results");

    /* Null sender and no HELO either: empty quoted values, still well-formed. */
    h.helo = "";
    h.domain = "";
    h.result = SPF_RES_NONE;
    hdr_received_spf(buf, sizeof buf, &h);
    is_str(buf,
           "Received-SPF: none (mx.example.org: 192.0.2.7 is neither permitted nor denied by "
           "domain of ) receiver=mx.example.org; client-ip=192.0.2.7; envelope-from=\"\"; "
           "helo=\"\"; identity=helo",
           "no sender, no HELO");
    hdr_auth_results(buf, sizeof buf, &h);
    is_str(buf, "Authentication-Results: mx.example.org; spf=none smtp.helo=\"\"",
           "no sender, no HELO: AR");

    /* IPv6 client: ':' is not atext, so client-ip is quoted. */
    h = base(SPF_RES_FAIL);
    h.client_ip = "2001:db8::25";
    hdr_received_spf(buf, sizeof buf, &h);
    is_str(buf,
           "Received-SPF: fail (mx.example.org: domain of alice@a.example does not designate "
           "2001:db8::25 as permitted sender) receiver=mx.example.org; "
           "client-ip=\"2001:db8::25\"; envelope-from=\"alice@a.example\"; "
           "helo=mail.a.example; identity=mailfrom",
           "IPv6 client");

    /* Header injection through the HELO. */
    h = base(SPF_RES_PASS);
    h.helo = "evil\r\nX-Injected: 1";
    hdr_received_spf(buf, sizeof buf, &h);
    ok(strstr(buf, "helo=\"evil??X-Injected: 1\"; identity=mailfrom") != NULL,
       "injected HELO neutralised and quoted: %s", buf);
    ok(well_formed(buf, "Received-SPF"), "injected HELO: well-formed");
    h.identity_helo = 1;
    h.domain = h.helo;
    hdr_received_spf(buf, sizeof buf, &h);
    ok(strstr(buf, "(mx.example.org: domain of evil??X-Injected: 1 designates") != NULL,
       "injected HELO in the comment: %s", buf);
    ok(strstr(buf, "envelope-from=\"alice@a.example\"") != NULL,
       "a real sender stays the envelope-from even for identity=helo");
    hdr_auth_results(buf, sizeof buf, &h);
    is_str(buf,
           "Authentication-Results: mx.example.org; spf=pass smtp.helo=\"evil??X-Injected: 1\"",
           "injected HELO in AR");

    /* Quotes, backslashes, parentheses, ';' and '=' in the sender. */
    h = base(SPF_RES_PASS);
    h.envelope_from = "a\"b\\c(d)e;f=g@x.example";
    h.domain = "x.example";
    hdr_received_spf(buf, sizeof buf, &h);
    is_str(buf,
           "Received-SPF: pass (mx.example.org: domain of a\"b?c[d]e;f=g@x.example designates "
           "192.0.2.7 as permitted sender) receiver=mx.example.org; client-ip=192.0.2.7; "
           "envelope-from=\"a\\\"b\\\\c\\(d\\)e\\;f\\=g@x.example\"; helo=mail.a.example; "
           "identity=mailfrom",
           "hostile sender escaped in the value, defused in the comment");
    ok(well_formed(buf, "Received-SPF"), "hostile sender: well-formed");
    rspf_read(buf, res, ident, dom);
    ok(strcmp(res, "pass") == 0 && strcmp(ident, "mailfrom") == 0 && strcmp(dom, "x.example") == 0,
       "hostile sender: reader gets pass/mailfrom/x.example (got %s/%s/%s)", res, ident, dom);

    /* VERP sender with '=' (OpenDMARC issues #206/#221). */
    h.envelope_from = "bounces+123-ab=c.example@mail.b.example";
    h.domain = "mail.b.example";
    hdr_received_spf(buf, sizeof buf, &h);
    ok(strstr(buf, "envelope-from=\"bounces+123-ab\\=c.example@mail.b.example\"") != NULL,
       "VERP '=' escaped: %s", buf);
    rspf_read(buf, res, ident, dom);
    is_str(dom, "mail.b.example", "VERP: reader gets the envelope domain");
    hdr_auth_results(buf, sizeof buf, &h);
    is_str(buf, "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=mail.b.example",
           "VERP: AR domain");

    /* Hostile problem text and authserv-id. */
    h = base(SPF_RES_PERMERROR);
    h.problem = "bad \"record\" \\ (x)\r\n";
    h.authserv_id = "mx.example.org";
    hdr_received_spf(buf, sizeof buf, &h);
    ok(strstr(buf, "; problem=\"bad \\\"record\\\" \\\\ \\(x\\)??\"") != NULL, "problem quoted: %s",
       buf);
    ok(well_formed(buf, "Received-SPF"), "hostile problem: well-formed");
    hdr_auth_results(buf, sizeof buf, &h);
    is_str(buf,
           "Authentication-Results: mx.example.org; spf=permerror reason=\"bad \\\"record\\\" "
           "\\\\ (x)??\" smtp.mailfrom=a.example",
           "hostile problem in AR");
    h.authserv_id = "";
    hdr_auth_results(buf, sizeof buf, &h);
    ok(strncmp(buf, "Authentication-Results: mx.example.org; ", 40) == 0,
       "empty authserv-id falls back to the receiver");

    /* 2000-byte values everywhere: cut ("..."), one well-formed line. */
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memset(bigq, '"', sizeof bigq - 1); /* the worst case: every byte escaped */
    bigq[sizeof bigq - 1] = '\0';
    for (int pass = 0; pass < 4; pass++) {
        const char *v = pass % 2 ? bigq : big;
        h = base(SPF_RES_SOFTFAIL + (pass / 2)); /* softfail; temperror */
        h.client_ip = v;
        h.helo = v;
        h.envelope_from = v;
        h.domain = v;
        h.receiver = v;
        h.problem = v;
        h.authserv_id = v;
        h.identity_helo = 0;
        n = hdr_received_spf(buf, sizeof buf, &h);
        ok(n > 0 && n <= HDR_MAX && (size_t)n == strlen(buf), "2000-byte %s values: %d bytes",
           pass % 2 ? "quote" : "plain", n);
        ok(well_formed(buf, "Received-SPF"), "2000-byte values: well-formed");
        ok(strstr(buf, "...") != NULL, "2000-byte values: cut is marked");
        ok(strstr(buf, "; identity=mailfrom") != NULL, "2000-byte values: identity kept");
        n = hdr_auth_results(buf, sizeof buf, &h);
        ok(n > 0 && n <= HDR_MAX, "AR with 2000-byte values: %d bytes", n);
        ok(well_formed(buf, "Authentication-Results"), "AR 2000-byte values: well-formed");
        h.identity_helo = 1;
        n = hdr_received_spf(buf, sizeof buf, &h);
        ok(n > 0 && n <= HDR_MAX && well_formed(buf, "Received-SPF"),
           "2000-byte values, helo identity: %d bytes, well-formed", n);
    }

    /* Random hostile values of every length: always one well-formed line
     * within HDR_MAX, and the reader still finds the identity. */
    {
        static const char *const alphabet[] = {"a", ".",  "\"", "\\",       "(",    ")", ";", "=",
                                               " ", "\r", "\n", "\xc3\xa9", "\xff", "@", ":"};
        static char f[7][1200];
        unsigned long seed = 12345;
        int bad = 0, worst = 0;
        for (int it = 0; it < 3000 && !bad; it++) {
            for (int k = 0; k < 7; k++) {
                size_t len = 0, want;
                seed = seed * 6364136223846793005UL + 1442695040888963407UL;
                want = (seed >> 33) % 400;
                int cls = (int)((seed >> 20) % 3); /* plain, escapes only, mixed */
                while (len < want) {
                    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
                    const char *a = cls == 0 ? "a" : cls == 1 ? "\"" : alphabet[(seed >> 33) % 15];
                    memcpy(f[k] + len, a, strlen(a));
                    len += strlen(a);
                }
                f[k][len] = '\0';
            }
            h.result = (enum spf_res)(seed % 7);
            h.identity_helo = (int)((seed >> 8) & 1);
            h.client_ip = f[0];
            h.helo = f[1];
            h.envelope_from = f[2];
            h.domain = f[3];
            h.receiver = f[4];
            h.problem = f[5];
            h.authserv_id = f[6];
            n = hdr_received_spf(buf, sizeof buf, &h);
            if (n > worst)
                worst = n;
            rspf_read(buf, res, ident, dom);
            if (n <= 0 || n > HDR_MAX || !well_formed(buf, "Received-SPF") ||
                strcmp(ident, h.identity_helo ? "helo" : "mailfrom") != 0 ||
                strcmp(res, spf_res_name(h.result)) != 0) {
                diag("iteration %d: %s", it, buf);
                bad = 1;
            }
            n = hdr_auth_results(buf, sizeof buf, &h);
            if (n <= 0 || n > HDR_MAX || !well_formed(buf, "Authentication-Results")) {
                diag("iteration %d: %s", it, buf);
                bad = 1;
            }
        }
        ok(!bad, "3000 random hostile headers well-formed (longest %d bytes)", worst);
    }

    /* Multibyte text is cut between characters, never inside one. */
    {
        char euro[3 * 200 + 1];
        for (int i = 0; i < 200; i++)
            memcpy(euro + 3 * i, "\xe2\x82\xac", 3);
        euro[600] = '\0';
        h = base(SPF_RES_PASS);
        h.helo = euro;
        hdr_received_spf(buf, sizeof buf, &h);
        const char *v = strstr(buf, "helo=\"");
        const char *e = v ? strstr(v, "...\"") : NULL;
        ok(v && e && (size_t)(e - (v + 6)) % 3 == 0, "UTF-8 HELO cut on a character boundary");
    }

    /* Too small a buffer: -1 and an empty string, never a partial line. */
    h = base(SPF_RES_PASS);
    n = hdr_received_spf(buf, sizeof buf, &h);
    {
        char small[HDR_MAX + 1];
        int m = hdr_received_spf(small, (size_t)n, &h);
        is_int(m, -1, "buffer of exactly the length (no room for NUL): -1");
        is_str(small, "", "and an empty string");
        m = hdr_received_spf(small, (size_t)n + 1, &h);
        is_int(m, n, "buffer of length + 1: fits");
        is_int(hdr_received_spf(small, 0, &h), -1, "size 0: -1");
        is_int(hdr_auth_results(small, 10, &h), -1, "AR too small: -1");
    }

    /* NULL fields read as empty. */
    {
        struct hdr_spf z = {.result = SPF_RES_NONE};
        n = hdr_received_spf(buf, sizeof buf, &z);
        ok(n > 0 && well_formed(buf, "Received-SPF"), "all-NULL fields: %s", buf);
        n = hdr_auth_results(buf, sizeof buf, &z);
        is_str(buf, "Authentication-Results: localhost; spf=none smtp.mailfrom=\"\"",
               "all-NULL fields AR");
    }

    /* Envelope-DMARC header and reject text. */
    {
        struct hdr_dmarc d = {"fail", "mx.example.org", "a.example", "a.example", "reject",
                              "p",    "fail",           "reject",    ""};
        int dn = hdr_envelope_dmarc(buf, sizeof buf, &d);

        is_str(buf,
               "X-Envelope-DMARC: fail (mx.example.org: envelope DMARC, DKIM not evaluated) "
               "domain=a.example; record=a.example; policy=reject; tag=p; spf=fail; "
               "disposition=reject",
               "envelope DMARC header");
        is_int(dn, (long long)strlen(buf), "envelope DMARC length");
        d.result = "none";
        d.record_domain = d.policy = d.tag = "";
        d.spf = "pass";
        d.disposition = "none";
        hdr_envelope_dmarc(buf, sizeof buf, &d);
        is_str(buf,
               "X-Envelope-DMARC: none (mx.example.org: envelope DMARC, DKIM not evaluated) "
               "domain=a.example; spf=pass; disposition=none",
               "envelope DMARC header without a record");
        d.reasons = "policy_test_mode,local_policy";
        d.policy_domain = "evil.example\r\nX-Injected: yes";
        hdr_envelope_dmarc(buf, sizeof buf, &d);
        ok(strchr(buf, '\r') == NULL && strchr(buf, '\n') == NULL,
           "no CR/LF from a hostile domain");
        ok(strstr(buf, "reason=\"policy_test_mode,local_policy\"") != NULL ||
               strstr(buf, "reason=policy_test_mode,local_policy") != NULL,
           "reasons listed");
        ok(hdr_envelope_dmarc(buf, 20, &d) == -1 && buf[0] == '\0', "too small a buffer: -1");

        dn = hdr_reject_text(buf, sizeof buf, "a.example", "reject", "fail", "192.0.2.7");
        ok(dn > 0, "reject text length");
        is_str(buf,
               "envelope DMARC: a.example publishes policy reject and SPF fail for 192.0.2.7 "
               "(MAIL FROM domain; DKIM not evaluated)",
               "reject text");
        hdr_reject_text(buf, sizeof buf, "a.example\r\n250 ok", "reject", "fail", "192.0.2.7");
        ok(strchr(buf, '\r') == NULL && strchr(buf, '\n') == NULL, "reject text sanitised");
    }
    return tap_done();
}
