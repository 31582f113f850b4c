/* test_pp.c - unit tests for the policy protocol codec (src/pp.c).
 *
 * Every table case is fed three ways: in one piece, byte by byte, and in
 * random chunk sizes; all three must give the same status, reason, attributes
 * and consumed count. Limits are tested exactly at and one past each bound. */
#include "pp.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The outcome of feeding one input until the first request or error. */
struct outcome {
    enum pp_status st;
    char reason[128];
    size_t consumed; /* offset just past the request (PP_REQUEST) */
    char *attrs;     /* "name=value|name=value|" with nattrs, malloc'd */
    size_t nattrs;
};

static char *serialize(const struct pp_request *r)
{
    size_t sz = 1;
    for (size_t i = 0; i < r->nattrs; i++)
        sz += strlen(r->attrs[i].name) + strlen(r->attrs[i].value) + 2;
    char *s = malloc(sz);
    s[0] = '\0';
    for (size_t i = 0; i < r->nattrs; i++) {
        strcat(s, r->attrs[i].name);
        strcat(s, "=");
        strcat(s, r->attrs[i].value);
        strcat(s, "|");
    }
    return s;
}

/* run: feed in chunks; chunk == 0 means random sizes 1..64, else fixed size. */
static struct outcome run(const char *in, size_t len, size_t chunk)
{
    struct outcome o = {PP_NEED_MORE, "", 0, NULL, 0};
    struct pp_parser *p = pp_parser_new();
    size_t off = 0;
    while (off < len) {
        size_t n = chunk ? chunk : (size_t)(rand() % 64) + 1;
        if (n > len - off)
            n = len - off;
        size_t used = 12345;
        struct pp_request *req = NULL;
        enum pp_status st = pp_parser_feed(p, in + off, n, &used, &req);
        if (st == PP_NEED_MORE) {
            if (used != n || req != NULL) {
                o.st = 99; /* contract broken */
                break;
            }
            off += n;
            continue;
        }
        o.st = st;
        if (st == PP_ERROR) {
            snprintf(o.reason, sizeof(o.reason), "%s", pp_parser_error(p));
        } else {
            o.consumed = off + used;
            o.attrs = serialize(req);
            o.nattrs = req->nattrs;
            pp_request_free(&req);
        }
        break;
    }
    pp_parser_free(&p);
    return o;
}

struct pcase {
    const char *name;
    const char *in;
    enum pp_status st;
    const char *want; /* attrs (PP_REQUEST) or reason (PP_ERROR) */
    long consumed;    /* -1: whole input */
};

static const struct pcase cases[] = {
    {"simple", "request=smtpd_access_policy\nsender=a@b\n\n", PP_REQUEST,
     "request=smtpd_access_policy|sender=a@b|", -1},
    {"crlf", "a=1\r\nb=2\r\n\r\n", PP_REQUEST, "a=1|b=2|", -1},
    {"mixed line ends", "a=1\r\nb=2\n\r\n", PP_REQUEST, "a=1|b=2|", -1},
    {"split at first =", "a=b=c==\n\n", PP_REQUEST, "a=b=c==|", -1},
    {"empty value", "queue_id=\nx=\n\n", PP_REQUEST, "queue_id=|x=|", -1},
    {"inner CR kept", "a=b\rc\n\n", PP_REQUEST, "a=b\rc|", -1},
    {"only one CR stripped", "a=b\r\r\n\n", PP_REQUEST, "a=b\r|", -1},
    {"spaces verbatim", " a = b \n\n", PP_REQUEST, " a = b |", -1},
    {"tail unconsumed", "a=1\n\nb=2\n\n", PP_REQUEST, "a=1|", 5},
    {"unknown attrs kept", "zz=1\nrequest=x\n\n", PP_REQUEST, "zz=1|request=x|", -1},
    {"incomplete", "a=1\nb=2\n", PP_NEED_MORE, "", -1},
    {"incomplete line", "a=1\nb", PP_NEED_MORE, "", -1},
    {"no =", "a=1\nbogus\n\n", PP_ERROR, "line without '='", -1},
    {"empty name", "=x\n\n", PP_ERROR, "empty attribute name", -1},
    {"only =", "=\n\n", PP_ERROR, "empty attribute name", -1},
    {"duplicate", "a=1\nb=2\na=3\n\n", PP_ERROR, "duplicate attribute a", -1},
    {"duplicate empty", "a=\na=\n\n", PP_ERROR, "duplicate attribute a", -1},
    {"names case-sensitive", "a=1\nA=2\n\n", PP_REQUEST, "a=1|A=2|", -1},
    {"empty request", "\n", PP_ERROR, "empty request", -1},
    {"empty request crlf", "\r\na=1\n\n", PP_ERROR, "empty request", -1},
    {"lone CR line", "a=1\n\r\r\n\n", PP_ERROR, "line without '='", -1},
};

static void check(const char *what, const char *in, size_t len, enum pp_status st, const char *want,
                  long consumed)
{
    size_t wc = consumed < 0 ? len : (size_t)consumed;
    struct outcome whole = run(in, len, len ? len : 1);
    int same = 1;

    is_int(whole.st, st, "%s: status", what);
    if (st == PP_REQUEST) {
        if (want != NULL)
            is_str(whole.attrs, want, "%s: attributes", what);
        is_int((long long)whole.consumed, (long long)wc, "%s: consumed", what);
    } else if (st == PP_ERROR) {
        is_str(whole.reason, want, "%s: reason", what);
    }
    for (int k = 0; k < 21; k++) {
        struct outcome o = run(in, len, k == 0 ? 1 : 0); /* byte by byte, then random */
        if (o.st != whole.st || strcmp(o.reason, whole.reason) != 0 ||
            o.consumed != whole.consumed ||
            (o.attrs && whole.attrs && strcmp(o.attrs, whole.attrs) != 0)) {
            diag("%s: %s split differs: st=%d reason=%s consumed=%zu", what,
                 k == 0 ? "byte-by-byte" : "random", o.st, o.reason, o.consumed);
            same = 0;
        }
        free(o.attrs);
    }
    ok(same, "%s: same result byte by byte and in random chunks", what);
    free(whole.attrs);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A line of exactly `content` name=value bytes: "a=" + filler. */
static void test_line_limit(void)
{
    char *fill = repeat('x', PP_MAX_LINE - 2);
    char *in = malloc(PP_MAX_LINE + 16);
    char *want = malloc(PP_MAX_LINE + 16);

    snprintf(in, PP_MAX_LINE + 16, "a=%s\n\n", fill);
    snprintf(want, PP_MAX_LINE + 16, "a=%s|", fill);
    check("line at limit", in, strlen(in), PP_REQUEST, want, -1);
    snprintf(in, PP_MAX_LINE + 16, "a=%s\r\n\r\n", fill);
    check("line at limit, CRLF", in, strlen(in), PP_REQUEST, want, -1);
    snprintf(in, PP_MAX_LINE + 16, "a=%sy\n\n", fill);
    check("line one past limit", in, strlen(in), PP_ERROR, "line too long", -1);
    snprintf(in, PP_MAX_LINE + 16, "a=%sy\r\n\n", fill);
    check("line one past limit, CRLF", in, strlen(in), PP_ERROR, "line too long", -1);
    snprintf(in, PP_MAX_LINE + 16, "a=%s\rz\n\n", fill); /* the CR is content here */
    check("line at limit plus inner CR", in, strlen(in), PP_ERROR, "line too long", -1);
    free(fill);
    free(in);
    free(want);
}

/* A request of exactly `total` raw bytes, final empty line included. */
static char *make_request(size_t total)
{
    char *in = malloc(total + 1), *p = in;
    size_t left = total - 1; /* the final LF */
    int n = 0;
    while (left > 0) {
        size_t line = left > PP_MAX_LINE + 1 ? PP_MAX_LINE + 1 : left; /* incl. LF */
        if (left - line > 0 && left - line < 4)
            line -= 4; /* leave room for a minimal "n=\n" line */
        int h = sprintf(p, "n%d=", n++);
        memset(p + h, 'v', line - 1 - (size_t)h);
        p[line - 1] = '\n';
        p += line;
        left -= line;
    }
    *p++ = '\n';
    *p = '\0';
    return in;
}

static void test_request_limit(void)
{
    char *in = make_request(PP_MAX_REQUEST);
    is_int((long long)strlen(in), PP_MAX_REQUEST, "request generator builds %d bytes",
           PP_MAX_REQUEST);
    struct outcome o = run(in, strlen(in), 4096);
    is_int(o.st, PP_REQUEST, "request at limit accepted");
    is_int((long long)o.consumed, PP_MAX_REQUEST, "request at limit consumed whole");
    free(o.attrs);
    check("request at limit", in, strlen(in), PP_REQUEST, NULL, -1);
    free(in);
    in = make_request(PP_MAX_REQUEST + 1);
    check("request one past limit", in, strlen(in), PP_ERROR, "request too large", -1);
    free(in);
}

static void test_attr_limit(void)
{
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = PP_MAX_ATTRS + (size_t)extra;
        char *in = malloc(n * 12 + 2), *p = in;
        for (size_t i = 0; i < n; i++)
            p += sprintf(p, "a%zu=%zu\n", i, i);
        strcpy(p, "\n");
        struct outcome o = run(in, strlen(in), 7);
        if (extra == 0) {
            is_int(o.st, PP_REQUEST, "%d attributes accepted", PP_MAX_ATTRS);
            is_int((long long)o.nattrs, PP_MAX_ATTRS, "all %d attributes kept", PP_MAX_ATTRS);
        } else {
            is_int(o.st, PP_ERROR, "%d attributes refused", PP_MAX_ATTRS + 1);
            is_str(o.reason, "too many attributes", "reason for too many attributes");
        }
        free(o.attrs);
        free(in);
    }
}

static void test_nul(void)
{
    static const char in[] = "a=1\nb=x\0y\n\n";
    check("NUL byte", in, sizeof(in) - 1, PP_ERROR, "NUL byte", -1);
}

/* The request Postfix 3.7 sends at RCPT (shared/spec/testing-notes.md). */
static const char *const postfix_attrs[][2] = {
    {"request", "smtpd_access_policy"},
    {"protocol_state", "RCPT"},
    {"protocol_name", "ESMTP"},
    {"client_address", "127.0.0.1"},
    {"client_name", "localhost"},
    {"client_port", "33942"},
    {"reverse_client_name", "localhost"},
    {"server_address", "127.0.0.1"},
    {"server_port", "10025"},
    {"helo_name", "mail.example"},
    {"sender", "alice@sender.example"},
    {"recipient", "bob@test.example"},
    {"recipient_count", "0"},
    {"queue_id", ""},
    {"instance", "38bd.6b0263c2.bfa5b.0"},
    {"size", "0"},
    {"etrn_domain", ""},
    {"stress", ""},
    {"sasl_method", ""},
    {"sasl_username", ""},
    {"sasl_sender", ""},
    {"ccert_subject", ""},
    {"ccert_issuer", ""},
    {"ccert_fingerprint", ""},
    {"ccert_pubkey_fingerprint", ""},
    {"encryption_protocol", ""},
    {"encryption_cipher", ""},
    {"encryption_keysize", "0"},
    {"policy_context", ""},
};

static void test_postfix(void)
{
    size_t n = sizeof(postfix_attrs) / sizeof(postfix_attrs[0]);
    char in[2048], want[2048];
    size_t il = 0, wl = 0;
    for (size_t i = 0; i < n; i++) {
        il += (size_t)snprintf(in + il, sizeof(in) - il, "%s=%s\n", postfix_attrs[i][0],
                               postfix_attrs[i][1]);
        wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s=%s|", postfix_attrs[i][0],
                               postfix_attrs[i][1]);
    }
    snprintf(in + il, sizeof(in) - il, "\n");
    check("postfix 3.7 request", in, strlen(in), PP_REQUEST, want, -1);

    /* and through the accessors, with a second request pipelined behind it */
    char two[4096];
    snprintf(two, sizeof(two), "%srequest=smtpd_access_policy\nprotocol_state=DATA\n\n", in);
    struct pp_parser *p = pp_parser_new();
    struct pp_request *req = NULL;
    size_t used = 0;
    ok(pp_parser_idle(p), "new parser is idle");
    is_int(pp_parser_feed(p, two, 10, &used, &req), PP_NEED_MORE, "first 10 bytes: need more");
    ok(!pp_parser_idle(p), "parser with a partial request is not idle");
    is_int(pp_parser_feed(p, two + 10, strlen(two) - 10, &used, &req), PP_REQUEST,
           "postfix request complete");
    is_int((long long)(used + 10), (long long)strlen(in), "consumed stops at the empty line");
    ok(pp_parser_idle(p), "parser idle after a complete request");
    is_int((long long)req->nattrs, (long long)n, "attribute count");
    is_str(pp_get(req, "instance"), "38bd.6b0263c2.bfa5b.0", "pp_get instance");
    is_str(pp_get(req, "queue_id"), "", "pp_get empty value");
    ok(pp_has(req, "queue_id"), "pp_has for an empty value");
    is_str(pp_get(req, "nonexistent"), "", "pp_get absent is empty string");
    ok(!pp_has(req, "nonexistent"), "pp_has absent");
    ok(!pp_has(req, "Sender"), "pp_has is case-sensitive");
    pp_request_free(&req);
    ok(req == NULL, "pp_request_free NULLs the pointer");
    size_t off = 10 + used;
    is_int(pp_parser_feed(p, two + off, strlen(two) - off, &used, &req), PP_REQUEST,
           "parser reused for the next request");
    is_str(pp_get(req, "protocol_state"), "DATA", "second request's attribute");
    is_int((long long)req->nattrs, 2, "second request has only its own attributes");
    pp_request_free(&req);

    /* after an error the parser stays failed */
    is_int(pp_parser_feed(p, "x\n", 2, &used, &req), PP_ERROR, "line without = fails");
    is_int(pp_parser_feed(p, "a=1\n\n", 5, &used, &req), PP_ERROR, "failed parser stays failed");
    ok(req == NULL, "no request from a failed parser");
    pp_parser_free(&p);
    ok(p == NULL, "pp_parser_free NULLs the pointer");
    pp_parser_free(&p); /* harmless on NULL */
}

struct rcase {
    const char *action;
    size_t sz;
    int want;
    const char *out;
};

static void test_reply(void)
{
    static char big[PP_MAX_ACTION + 2];
    static char buf[PP_MAX_ACTION + 64];
    const struct rcase rc[] = {
        {"DUNNO", 64, 14, "action=DUNNO\n\n"},
        {"PREPEND Received-SPF: pass (x)", 64, 39, "action=PREPEND Received-SPF: pass (x)\n\n"},
        {"DUNNO", 15, 14, "action=DUNNO\n\n"}, /* exactly fits with the NUL */
        {"DUNNO", 14, -1, NULL},               /* no room for the NUL */
        {"", 64, -1, NULL},
        {"DUNNO\n", 64, -1, NULL},
        {"450 4.7.1 a\rb", 64, -1, NULL},
        {"a\nb", 64, -1, NULL},
    };
    for (size_t i = 0; i < sizeof(rc) / sizeof(rc[0]); i++) {
        memset(buf, 0, sizeof(buf));
        int n = pp_format_reply(buf, rc[i].sz, rc[i].action);
        is_int(n, rc[i].want, "reply %zu length", i);
        if (rc[i].out)
            ok(n > 0 && memcmp(buf, rc[i].out, (size_t)n + 1) == 0, "reply %zu bytes", i);
    }
    memset(big, 'A', PP_MAX_ACTION);
    big[PP_MAX_ACTION] = '\0';
    is_int(pp_format_reply(buf, sizeof(buf), big), PP_MAX_ACTION + 9, "action at PP_MAX_ACTION");
    ok(memcmp(buf + 7 + PP_MAX_ACTION, "\n\n", 3) == 0, "long reply framed");
    big[PP_MAX_ACTION] = 'A';
    big[PP_MAX_ACTION + 1] = '\0';
    is_int(pp_format_reply(buf, sizeof(buf), big), -1, "action one past PP_MAX_ACTION refused");
}

int main(void)
{
    srand(12345); /* random chunking, but reproducible */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check(cases[i].name, cases[i].in, strlen(cases[i].in), cases[i].st, cases[i].want,
              cases[i].consumed);
    test_nul();
    test_line_limit();
    test_request_limit();
    test_attr_limit();
    test_postfix();
    test_reply();
    return tap_done();
}
