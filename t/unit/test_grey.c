/* test_grey.c - the pure greylisting rules: sender normalisation, client
 * networks, the triplet key (SHA-256 vectors), the triplet and AWL state
 * machines on an injected clock, the reply text, and postgrey-format
 * whitelists (parsing, matching, file:line errors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grey.h"
#include "tap.h"

void grey_sha256_hex(const void *data, size_t len, char out[65]); /* grey.c, test-only */

#define S 1000LL
#define MIN (60 * S)
#define HOUR (3600 * S)
#define DAY (86400 * S)
#define T0 1704196800000LL /* 2024-01-02 12:00:00 UTC, ms */

static void test_normalize(void)
{
    static const struct {
        const char *in, *want;
    } t[] = {
        {"", ""},
        {"User@Example.COM", "user@example.com"},
        {"user+tag@example.com", "user@example.com"},
        {"user+a+b@example.com", "user@example.com"},
        {"john-doe@example.com", "john-doe@example.com"},
        {"prvs=1234567890=user@example.com", "user@example.com"},
        {"PRVS=0123abcdef=User@Example.com", "user@example.com"},
        {"prvs=user=0123abcdef@example.com", "user@example.com"}, /* swapped form */
        {"prvs=0123abcdef=fedcba9876@example.com",
         "fedcba9876@example.com"},                           /* both tags: the standard form */
        {"prvs=a=b=c@example.com", "prvs=a=b=c@example.com"}, /* not BATV-shaped */
        {"prvs=1234567890=user+ext@example.com", "user@example.com"},
        {"msprvs1=17abcdefgh12=bounces-123@example.com", "bounces-#@example.com"},
        {"btv1==0d5b6a1f93a==user@example.com", "user@example.com"},
        {"btv1==@example.com", "btv1==@example.com"},
        {"bounce-123-456@list.example", "bounce-#-#@list.example"},
        {"user123@example.com", "user123@example.com"},
        {"123@example.com", "#@example.com"},
        {"a_123@example.com", "a_123@example.com"},
        {"a.1.b@example.com", "a.#.b@example.com"},
        {"12ab34@example.com", "12ab34@example.com"},
        {"x-2024-01-02-77@example.com", "x-#-#-#-#@example.com"},
        {"user@mx1.1.example", "user@mx1.1.example"}, /* the domain keeps its digits */
        {"SRS0=HhHh=TT=orig.example=alice@fwd.example", "srs0=#=#=orig.example=alice@fwd.example"},
        {"srs0=abcd=zz=orig.example=bob+x@fwd.example", "srs0=#=#=orig.example=bob@fwd.example"},
        {"MAILER-DAEMON", "mailer-daemon"},
        {"\"a@b\"@example.com", "\"a@b\"@example.com"},
    };
    char out[GREY_ADDR_MAX];

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int n = grey_normalize_sender(t[i].in, out, sizeof(out));
        is_str(out, t[i].want, "normalize \"%s\"", t[i].in);
        is_int(n, (long long)strlen(t[i].want), "normalize \"%s\": length", t[i].in);
    }
    {
        char big[600];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        is_int(grey_normalize_sender(big, out, sizeof(out)), -1, "over-long sender refused");
        is_str(out, "", "over-long sender: out empty");
        is_int(grey_normalize_sender("User@X", out, 4), -1, "does not fit: -1");
    }
    is_int(grey_normalize_rcpt("Bob+List@Example.ORG", out, sizeof(out)), 20, "rcpt length");
    is_str(out, "bob+list@example.org", "rcpt lowercased, +ext kept (postgrey)");
}

static void test_net(void)
{
    static const struct {
        const char *addr;
        unsigned v4, v6;
        const char *want;
    } t[] = {
        {"192.0.2.77", 24, 64, "192.0.2.0/24"},
        {"192.0.2.77", 32, 64, "192.0.2.77/32"},
        {"192.0.2.77", 16, 64, "192.0.0.0/16"},
        /* every octet width and a one-digit prefix (IPv4 is formatted by hand) */
        {"255.10.9.200", 32, 64, "255.10.9.200/32"},
        {"203.0.113.9", 8, 64, "203.0.0.0/8"},
        {"10.1.2.3", 0, 64, "0.0.0.0/0"},
        {"::ffff:192.0.2.77", 24, 64, "192.0.2.0/24"},
        {"2001:db8:1:2:3:4:5:6", 24, 64, "2001:db8:1:2::/64"},
        {"2001:DB8:1:2::99", 24, 64, "2001:db8:1:2::/64"},
        {"2001:db8:1:2:3:4:5:6", 24, 48, "2001:db8:1::/48"},
        {"2001:db8:1:2:3:4:5:6", 24, 128, "2001:db8:1:2:3:4:5:6/128"},
        {"unknown", 24, 64, ""},
        {"192.0.2", 24, 64, ""},
        {"", 24, 64, ""},
    };
    char out[GREY_NET_MAX];

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int n = grey_client_net(t[i].addr, t[i].v4, t[i].v6, out, sizeof(out));
        is_str(out, t[i].want, "net %s /%u /%u", t[i].addr, t[i].v4, t[i].v6);
        ok((n < 0) == (t[i].want[0] == '\0'), "net %s: return %d", t[i].addr, n);
        if (n >= 0)
            is_int(n, (int)strlen(t[i].want), "net %s: returns the length", t[i].addr);
    }
    /* too small an output: -1 and an empty string, never a cut network */
    {
        char small[16];
        int n = grey_client_net("192.0.2.77", 24, 64, small, 12);
        ok(n == -1 && small[0] == '\0', "net into 12 bytes (needs 13): refused");
        n = grey_client_net("192.0.2.77", 24, 64, small, 13);
        ok(n == 12 && strcmp(small, "192.0.2.0/24") == 0, "net into 13 bytes: fits");
    }
}

static void test_key(void)
{
    static const struct {
        const char *in, *want;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65], k1[GREY_KEY_MAX], k2[GREY_KEY_MAX];
    struct grey_params p;
    struct grey_triplet a, b;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        grey_sha256_hex(v[i].in, strlen(v[i].in), hex);
        is_str(hex, v[i].want, "sha256 \"%.10s\"", v[i].in);
    }
    {
        size_t n = 1000000;
        char *m = malloc(n);
        memset(m, 'a', n);
        grey_sha256_hex(m, n, hex);
        is_str(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
               "sha256 a million a");
        free(m);
    }
    /* pinned: the key must never change between versions (state in Redis) */
    grey_triplet_key("192.0.2.0/24", "user@example.com", "rcpt@example.net", k1);
    is_str(k1, "ac1a55456da54994da88f56beb5b3365", "triplet key pinned");
    grey_triplet_key("192.0.2.0/24", "", "rcpt@example.net", k2);
    is_str(k2, "01e8b4a76a671a4c699503a0b1a1ad5c", "null-sender key pinned");
    /* the separators matter: ("a","bc") != ("ab","c") */
    grey_triplet_key("n", "a", "bc", k1);
    grey_triplet_key("n", "ab", "c", k2);
    ok(strcmp(k1, k2) != 0, "field boundaries are part of the key");

    grey_params_init(&p);
    ok(grey_triplet_make(&p, "192.0.2.7", "Bounce-123@X.com", "Rcpt@Example.net", &a) == 0,
       "triplet a");
    ok(grey_triplet_make(&p, "192.0.2.200", "bounce-456@x.com", "rcpt@example.net", &b) == 0,
       "triplet b");
    is_str(a.key, b.key, "VERP numbers, case and /24 give one triplet");
    is_str(a.net, "192.0.2.0/24", "triplet net");
    is_str(a.sender, "bounce-#@x.com", "triplet sender");
    ok(grey_triplet_make(&p, "192.0.3.7", "bounce-456@x.com", "rcpt@example.net", &b) == 0 &&
           strcmp(a.key, b.key) != 0,
       "another /24 is another triplet");
    ok(grey_triplet_make(&p, "192.0.2.7", "bounce-456@x.com", "other@example.net", &b) == 0 &&
           strcmp(a.key, b.key) != 0,
       "another recipient is another triplet");
    /* IPv6: one /64 is one client */
    ok(grey_triplet_make(&p, "2001:db8:1:2::1", "", "r@example.net", &a) == 0 &&
           grey_triplet_make(&p, "2001:db8:1:2:ffff:ffff:ffff:fffe", "", "r@example.net", &b) == 0,
       "v6 triplets");
    is_str(a.key, b.key, "IPv6 /64 grouping: same triplet");
    ok(grey_triplet_make(&p, "2001:db8:1:3::1", "", "r@example.net", &b) == 0 &&
           strcmp(a.key, b.key) != 0,
       "IPv6 next /64: another triplet");
    p.ipv6_prefix = 48;
    ok(grey_triplet_make(&p, "2001:db8:1:3::1", "", "r@example.net", &b) == 0 &&
           grey_triplet_make(&p, "2001:db8:1:2::1", "", "r@example.net", &a) == 0 &&
           strcmp(a.key, b.key) == 0,
       "IPv6 with greylist_ipv6_prefix = 48: same triplet");
    is_int(grey_triplet_make(&p, "unknown", "", "r@example.net", &a), -1, "no IP: skip");
}

/* The state machine on a timeline: each step is an attempt at T0 + at. */
struct step {
    long long at;
    enum grey_verdict want;
    unsigned wait_s;
    long long ttl; /* -1 keep, else expected TTL */
    const char *what;
};

static void run_steps(const char *name, const struct grey_params *p, const struct step *s, size_t n)
{
    struct grey_state st = {0};
    struct grey_step o;

    for (size_t i = 0; i < n; i++) {
        grey_step(&st, T0 + s[i].at, p, &o);
        is_str(grey_verdict_name(o.verdict), grey_verdict_name(s[i].want), "%s: %s: verdict", name,
               s[i].what);
        is_int(o.wait_s, s[i].wait_s, "%s: %s: seconds left", name, s[i].what);
        is_int(o.ttl_ms, s[i].ttl, "%s: %s: ttl", name, s[i].what);
        st = o.next;
    }
}

static void test_state(void)
{
    struct grey_params p;
    grey_params_init(&p);
    const long long W = p.window_ms, M = p.max_age_ms;

    const struct step basic[] = {
        {0, GREY_DEFER, 300, 2 * DAY, "first sight: full delay"},
        {100 * S, GREY_DEFER, 200, -1, "early retry: seconds left"},
        {299 * S + 1, GREY_DEFER, 1, -1, "1 ms short: rounds up to 1 s"},
        {300 * S, GREY_PASS_NEW, 0, 35 * DAY, "retry after the delay: pass (new)"},
        {301 * S, GREY_PASS, 0, 35 * DAY, "passed: pass"},
        {30 * DAY, GREY_PASS, 0, 35 * DAY, "passed, used again within max age"},
        {65 * DAY, GREY_PASS, 0, 35 * DAY, "max age counts from the last use"},
        {100 * DAY + 1, GREY_DEFER, 300, 2 * DAY, "unused longer than max age: first sight"},
    };
    run_steps("basic", &p, basic, sizeof(basic) / sizeof(basic[0]));

    const struct step window[] = {
        {0, GREY_DEFER, 300, W, "first sight"},
        {W + 1, GREY_DEFER, 300, W, "retry after the window: new first sight"},
        {W + 1 + 200 * S, GREY_DEFER, 100, -1, "the delay runs from the new first sight"},
        {2 * W + 1, GREY_PASS_NEW, 0, M, "retry exactly at the window's end: pass"},
    };
    run_steps("window", &p, window, sizeof(window) / sizeof(window[0]));

    {
        struct grey_state st = {1, T0 + 10 * S, T0 + 10 * S, 0};
        struct grey_step o;
        grey_step(&st, T0, &p, &o);
        is_int(o.verdict, GREY_DEFER, "first sight in the future (skewed MX clock): defer");
        is_int(o.wait_s, 300, "... with the full delay");
        is_int(o.next.first_ms, T0, "... and first sight corrected to now");
        st = (struct grey_state){1, T0 - 100 * DAY, T0 - M - 1, 1};
        grey_step(&st, T0, &p, &o);
        is_int(o.verdict, GREY_DEFER, "passed but stale state: first sight");
        grey_step(NULL, T0, &p, &o);
        is_int(o.verdict, GREY_DEFER, "NULL state: first sight");
        is_int(o.next.exists && o.next.first_ms == T0 && !o.next.passed, 1, "NULL state: stored");
    }
    /* short settings as the Redis test uses them */
    p.delay_ms = 2 * S;
    p.window_ms = 5 * S;
    p.max_age_ms = 8 * S;
    const struct step shrt[] = {
        {0, GREY_DEFER, 2, 5 * S, "first"},
        {1500, GREY_DEFER, 1, -1, "1.5 s: 1 s left"},
        {2000, GREY_PASS_NEW, 0, 8 * S, "2 s: pass"},
        {10000, GREY_PASS, 0, 8 * S, "8 s after the last use: still pass"},
        {18001, GREY_DEFER, 2, 5 * S, "8.001 s idle: expired"},
    };
    run_steps("short", &p, shrt, sizeof(shrt) / sizeof(shrt[0]));
}

static void test_awl(void)
{
    struct grey_params p;
    struct grey_awl a = {0}, n;
    int w;
    static const struct {
        long long at;
        unsigned count;
        int write;
        int listed;
        const char *what;
    } t[] = {
        {0, 1, 1, 0, "first pass counted"},
        {10 * MIN, 1, 0, 0, "second pass within the hour: not counted"},
        {HOUR, 2, 1, 0, "an hour later: counted"},
        {HOUR + 1, 2, 0, 0, "burst: not counted"},
        {2 * HOUR, 3, 1, 1, "third hourly pass: auto-whitelisted (awl_count 3)"},
    };

    grey_params_init(&p);
    p.awl_count = 3;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        unsigned c = grey_awl_pass(&a, T0 + t[i].at, &p, &n, &w);
        is_int(c, t[i].count, "awl: %s: count", t[i].what);
        is_int(w, t[i].write, "awl: %s: write", t[i].what);
        a = n;
        is_int(grey_awl_check(&a, T0 + t[i].at + 1, &p, &n, &w), t[i].listed, "awl: %s: listed",
               t[i].what);
    }
    is_int(grey_awl_check(&a, T0 + 2 * HOUR + 5 * MIN, &p, &n, &w), 1, "listed");
    is_int(w, 0, "listed, touched less than an hour ago: no write");
    is_int(grey_awl_check(&a, T0 + 3 * HOUR, &p, &n, &w), 1, "listed an hour later");
    is_int(w, 1, "... touched (last seen, TTL refreshed)");
    is_int(n.last_ms, T0 + 3 * HOUR, "... last = now");
    is_int(n.count, 3, "... count unchanged by a check");
    a = n;
    is_int(grey_awl_check(&a, T0 + 3 * HOUR + p.max_age_ms, &p, &n, &w), 1,
           "listed up to max age after the last touch");
    is_int(grey_awl_check(&a, T0 + 3 * HOUR + p.max_age_ms + 1, &p, &n, &w), 0,
           "stale (idle longer than max age): not listed");
    is_int(grey_awl_pass(&a, T0 + 3 * HOUR + p.max_age_ms + 1, &p, &n, &w), 1,
           "stale: counting starts again");
    p.awl_count = 0;
    is_int(grey_awl_check(&a, T0 + 3 * HOUR, &p, &n, &w), 0, "awl_count 0: never listed");
    p.awl_count = 3;
    a.last_ms = T0 + 10 * DAY;
    is_int(grey_awl_pass(&a, T0 + 3 * HOUR, &p, &n, &w), 4, "last in the future: counted");
}

static void test_reply(void)
{
    static const struct {
        const char *action, *tmpl;
        unsigned wait;
        const char *rcpt, *want;
    } t[] = {
        {"DEFER_IF_PERMIT", "Greylisted, please try again in %s seconds", 300, "bob@example.org",
         "DEFER_IF_PERMIT Greylisted, please try again in 300 seconds"},
        {"450 4.7.1", "Greylisted for %r, see https://example.org/grey?d=%r (%s s, 100%%)", 7,
         "bob@Example.ORG",
         "450 4.7.1 Greylisted for Example.ORG, see https://example.org/grey?d=Example.ORG (7 s, "
         "100%)"},
        {"DEFER_IF_PERMIT", "", 5, "bob@example.org", "DEFER_IF_PERMIT"},
        {"DEFER_IF_PERMIT", "%x %", 5, "x", "DEFER_IF_PERMIT %x %"},
        {"DEFER_IF_PERMIT", "for %r", 5, "bob@evil\r\nX-Injected: 1",
         "DEFER_IF_PERMIT for evil??X-Injected: 1"},
        {"DEFER_IF_PERMIT", "for %r", 5, "no-at-sign", "DEFER_IF_PERMIT for no-at-sign"},
        {"DEFER_IF_PERMIT", "in %s s", 0, "a@b", "DEFER_IF_PERMIT in 0 s"},
        {"DEFER_IF_PERMIT", "%s", 4294967295u, "a@b", "DEFER_IF_PERMIT 4294967295"},
    };
    char out[600];

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n =
            grey_format_reply(t[i].action, t[i].tmpl, t[i].wait, t[i].rcpt, out, sizeof(out));
        is_str(out, t[i].want, "reply %zu", i);
        is_int((long long)n, (long long)strlen(t[i].want), "reply %zu: length", i);
    }
    {
        char big[2000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        grey_format_reply("DEFER_IF_PERMIT", big, 1, "a@b", out, sizeof(out));
        ok(strlen(out) <= 500 && strchr(out, '\n') == NULL, "long text bounded (%zu)", strlen(out));
    }
}

static const char clients_txt[] = "# postgrey whitelist_clients\n"
                                  "\n"
                                  "example.com\n"
                                  "  mail.other.org   # trailing comment\n"
                                  "192.0.2.7\n"
                                  "198.51.100.0/24\n"
                                  "203.0.113\n"
                                  "10.1\n"
                                  "172.16.5.9/16\n"
                                  "2001:db8:77::/48\n"
                                  "2001:db8:99::5\n"
                                  "/^mail\\d+\\.telekom\\.de$/\n"
                                  "/^(?:smtp\\w*|postfix)[0-9]+-g[0-9]+\\.free\\.fr$/\n"
                                  "/^.*?.server.arvato-systems.de$/\n"
                                  "/^mta[12].siol.net$/\n"
                                  "/^p?smtp.*\\.wxs\\.nl$/\n"
                                  "/^m\\d+-\\d+\\.126\\.com$/\n"
                                  ".dotted.example\n"
                                  "\tlast.example"; /* no final newline */

static void test_wl_clients(void)
{
    static const struct {
        const char *addr, *name;
        int want;
    } t[] = {
        {"1.1.1.1", "example.com", 1},
        {"1.1.1.1", "mx.Example.COM", 1},
        {"1.1.1.1", "badexample.com", 0},
        {"1.1.1.1", "example.com.evil.net", 0},
        {"1.1.1.1", "other.org", 0},
        {"1.1.1.1", "x.mail.other.org", 1},
        {"192.0.2.7", "unknown", 1},
        {"192.0.2.8", "unknown", 0},
        {"::ffff:192.0.2.7", "unknown", 1},
        {"198.51.100.200", NULL, 1},
        {"198.51.101.1", NULL, 0},
        {"203.0.113.9", NULL, 1},
        {"10.1.250.3", NULL, 1},
        {"10.2.0.1", NULL, 0},
        {"172.16.200.1", NULL, 1}, /* host bits in the file are masked, as postgrey */
        {"2001:db8:77:ffff::1", NULL, 1},
        {"2001:db8:78::1", NULL, 0},
        {"2001:db8:99::5", NULL, 1},
        {"2001:db8:99::6", NULL, 0},
        {"1.1.1.1", "mail12.telekom.de", 1},
        {"1.1.1.1", "MAIL12.TELEKOM.DE", 1},
        {"1.1.1.1", "mailx.telekom.de", 0},
        {"1.1.1.1", "mail12.telekom.de.evil", 0},
        {"1.1.1.1", "smtp5-g21.free.fr", 1},
        {"1.1.1.1", "postfix3-g1.free.fr", 1},
        {"1.1.1.1", "smtpx3-g1.free.fr", 1},
        {"1.1.1.1", "relay3-g1.free.fr", 0},
        {"1.1.1.1", "x.server.arvato-systems.de", 1},
        {"1.1.1.1", "mta2.siol.net", 1},
        {"1.1.1.1", "mta3.siol.net", 0},
        {"1.1.1.1", "psmtp9.a.wxs.nl", 1},
        {"1.1.1.1", "m12-34.126.com", 1},
        {"1.1.1.1", "a.dotted.example", 1},
        {"1.1.1.1", "last.example", 1},
        {"1.1.1.1", "unknown", 0},
        {"1.1.1.1", NULL, 0},
    };
    char err[256] = "";
    struct grey_wl *wl = grey_wl_new();

    is_int(grey_wl_parse_clients(wl, "clients", clients_txt, err, sizeof(err)), 0,
           "clients parse (%s)", err);
    is_int((long long)grey_wl_count(wl), 17, "clients: entries");
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        is_int(grey_wl_match_client(wl, t[i].addr, t[i].name), t[i].want, "client %s %s", t[i].addr,
               t[i].name ? t[i].name : "(null)");
    grey_wl_free(&wl);
    ok(wl == NULL, "free NULLs the pointer");
}

static void test_wl_errors(void)
{
    static const struct {
        int rcpt;
        const char *text, *want;
    } t[] = {
        {0, "ok.example\n\nfoo bar\n", "f:3: doesn't look like a hostname: foo bar"},
        {0, "/(?=x)/\n", "f:1: unsupported (?...) group"},
        {0, "# c\n/a(b)\\1/\n", "f:2: backreferences are not supported"},
        {0, "192.0.2.0/33\n", "f:1: bad IPv4 address or prefix"},
        {0, "192.0.2.0/x\n", "f:1: bad network prefix length"},
        {0, "2001:db8::/129\n", "f:1: bad IPv6 address or prefix"},
        {0, "2001:zz8::/64\n", "f:1: bad IPv6 address or prefix"},
        {0, "/unterminated\n", "f:1: doesn't look like a hostname (a regex is /.../)"},
        {0, "/a[b/\n", "f:1: unterminated [...]"},
        {0, "/a\\pL/\n", "f:1: unsupported escape"},
        {0, "/a{2,1}/\n", "f:1: bad regex: "},
        {0, "999.1.1.1\n", "f:1: bad IPv4 address or prefix"},
        {1, "postmaster@\nfoo bar@example.com\n", "f:2: doesn't look like an address"},
        {1, "/^x\n", "f:1: doesn't look like an address (a regex is /.../)"},
        {1, "@\n", "f:1: doesn't look like an address"},
    };
    char err[256];
    struct grey_wl *wl = grey_wl_new();

    grey_wl_parse_clients(wl, "pre", "example.com\n", err, sizeof(err));
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rc;
        err[0] = '\0';
        rc = t[i].rcpt ? grey_wl_parse_recipients(wl, "f", t[i].text, err, sizeof(err))
                       : grey_wl_parse_clients(wl, "f", t[i].text, err, sizeof(err));
        is_int(rc, -1, "bad line %zu refused", i);
        ok(strncmp(err, t[i].want, strlen(t[i].want)) == 0, "error %zu: \"%s\" starts with \"%s\"",
           i, err, t[i].want);
        is_int((long long)grey_wl_count(wl), 1, "error %zu: list unchanged", i);
    }
    ok(grey_wl_match_client(wl, "1.1.1.1", "ok.example") == 0, "nothing of a refused file kept");
    grey_wl_free(&wl);
}

static void test_wl_recipients(void)
{
    static const char txt[] = "postmaster@\n"
                              "abuse@ # RFC 2142\n"
                              "example.org\n"
                              "User@Example.net\n"
                              "@exact.example\n"
                              "/^list-.*@lists\\.example\\.com$/\n";
    static const struct {
        const char *rcpt;
        int want;
    } t[] = {
        {"postmaster@anything.tld", 1}, {"Postmaster+x@y.tld", 1},
        {"postmasterx@y.tld", 0},       {"postmaster+@y.tld", 0},
        {"abuse@example.com", 1},       {"bob@example.org", 1},
        {"bob@sub.example.org", 1},     {"bob@notexample.org", 0},
        {"bob@example.org.evil", 0},    {"user@example.net", 1},
        {"user+tag@EXAMPLE.net", 1},    {"user@other.net", 0},
        {"other@example.net", 0},       {"a@exact.example", 1},
        {"a@sub.exact.example", 0},     {"list-dev@lists.example.com", 1},
        {"dev@lists.example.com", 0},
    };
    char err[256] = "";
    struct grey_wl *wl = grey_wl_new();

    is_int(grey_wl_parse_recipients(wl, "rcpts", txt, err, sizeof(err)), 0, "recipients parse (%s)",
           err);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        is_int(grey_wl_match_recipient(wl, t[i].rcpt), t[i].want, "recipient %s", t[i].rcpt);
    ok(grey_wl_match_client(wl, "1.1.1.1", "example.org") == 0,
       "recipient entries never match a client");
    grey_wl_free(&wl);
}

static void test_wl_files(void)
{
    char dir[] = "/tmp/test_grey.XXXXXX", path[128], err[256] = "";
    struct grey_wl *wl = grey_wl_new();
    FILE *f;

    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof(path), "%s/whitelist_clients", dir);
    f = fopen(path, "w");
    fputs("# Debian's /etc/postgrey/whitelist_clients, as-is\nexample.com\n192.0.2.0/24\n", f);
    fclose(f);
    is_int(grey_wl_load_clients(wl, path, err, sizeof(err)), 0, "load file (%s)", err);
    ok(grey_wl_match_client(wl, "192.0.2.9", "unknown"), "file entry matches");
    f = fopen(path, "w");
    fputs("fine.example\nbad entry\n", f);
    fclose(f);
    is_int(grey_wl_load_clients(wl, path, err, sizeof(err)), -1, "bad file refused");
    {
        char want[200];
        snprintf(want, sizeof(want), "%s:2: doesn't look like a hostname", path);
        ok(strncmp(err, want, strlen(want)) == 0, "file:line error: %s", err);
    }
    unlink(path);
    is_int(grey_wl_load_recipients(wl, path, err, sizeof(err)), -1, "missing file refused");
    ok(strstr(err, path) != NULL && strstr(err, "No such file") != NULL, "missing: %s", err);
    is_int((long long)grey_wl_count(wl), 2, "earlier entries kept");
    rmdir(dir);
    grey_wl_free(&wl);
    grey_wl_free(&wl); /* second free is harmless */
    ok(grey_wl_match_client(NULL, "1.1.1.1", "x") == 0, "NULL list matches nothing");
}

int main(void)
{
    test_normalize();
    test_net();
    test_key();
    test_state();
    test_awl();
    test_reply();
    test_wl_clients();
    test_wl_errors();
    test_wl_recipients();
    test_wl_files();
    return tap_done();
}
