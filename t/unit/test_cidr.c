/* test_cidr.c - parsing network lists (errors included) and matching IPv4,
 * IPv6 and IPv4-mapped IPv6 addresses against them. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cidr.h"
#include "tap.h"

struct bad_case {
    const char *item;
    const char *err_has; /* expected part of the error text */
};

static const struct bad_case bad_cases[] = {
    {"192.0.2.1/24", "host bits"},
    {"192.0.3.0/23", "host bits"},
    {"2001:db8::1/64", "host bits"},
    {"[2001:db8::1]/32", "host bits"},
    {"192.0.2.0/33", "out of range"},
    {"2001:db8::/129", "out of range"},
    {"192.0.2.0/", "bad prefix"},
    {"192.0.2.0/-1", "bad prefix"},
    {"192.0.2.0/+24", "bad prefix"},
    {"192.0.2.0/024", "bad prefix"},
    {"192.0.2.0/2 4", "bad prefix"},
    {"192.0.2.0/24/24", "bad prefix"},
    {"192.0.2.0/99999999999999999999", "bad prefix"},
    {"192.0.2", "not an IP"},
    {"192.0.2.256", "not an IP"},
    {"example.org", "not an IP"},
    {"2001:db8::g", "not an IP"},
    {"fe80::1%eth0", "not an IP"},
    {"[192.0.2.1]", "brackets"},
    {"[2001:db8::1", "'['"},
    {"2001:db8::1]", "not an IP"},
    {"[]", "not an IP"},
    {"", "empty"},
    {"   ", "empty"},
    {"/24", "not an IP"},
};

struct match_case {
    const char *addr;
    int want;
};

int main(void)
{
    const char *items[] = {
        "192.0.2.0/24",  "198.51.100.7",           " 203.0.113.128/25 ",
        "2001:db8::/32", "[2001:db8:ffff::1]/128", "[2001:db8:fffe::5]",
        "10.0.0.0/8",    "::ffff:172.16.0.0/108",  "0.0.0.0/32",
    };
    static const struct match_case match_cases[] = {
        {"192.0.2.0", 1},
        {"192.0.2.255", 1},
        {"192.0.3.0", 0},
        {"192.0.1.255", 0},
        {"198.51.100.7", 1},
        {"198.51.100.8", 0},
        {"203.0.113.128", 1},
        {"203.0.113.127", 0},
        {"203.0.113.255", 1},
        {"10.255.255.255", 1},
        {"11.0.0.0", 0},
        {"172.16.5.5", 1}, /* from the v4-mapped form ::ffff:172.16.0.0/108 = /12 */
        {"172.31.255.255", 1},
        {"172.32.0.0", 0},
        {"0.0.0.0", 1},
        {"2001:db8::1", 1},
        {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1},
        {"2001:db9::", 0},
        {"2001:db7:ffff::", 0},
        {"2001:db8:ffff::1", 1},
        {"2001:db8:fffe::5", 1},
        {"::ffff:192.0.2.9", 1}, /* v4-mapped matches v4 networks */
        {"::FFFF:198.51.100.7", 1},
        {"::ffff:c000:0209", 1}, /* same, hex form */
        {"::ffff:192.0.3.9", 0},
        {"::192.0.2.9", 0}, /* v4-compatible is not v4-mapped */
        {"64:ff9b::192.0.2.9", 0},
        {"", 0},
        {"garbage", 0},
        {"192.0.2.1/32", 0},
        {"[2001:db8::1]", 0},
        {"192.0.2.1 ", 0},
    };
    char err[256], item[64];
    struct cidr_list *l, *e, *all4, *all6;

    l = cidr_list_parse(items, sizeof items / sizeof items[0], err, sizeof err);
    if (!ok(l != NULL, "parse the good list"))
        diag("error: %s", err);
    is_int((long long)cidr_list_count(l), (long long)(sizeof items / sizeof items[0]), "count");
    for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++)
        is_int(cidr_list_match(l, match_cases[i].addr), match_cases[i].want, "match '%s'",
               match_cases[i].addr);
    ok(cidr_list_match(l, NULL) == 0, "NULL address does not match");

    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const char *one[] = {"192.0.2.0/24", bad_cases[i].item};
        err[0] = '\0';
        e = cidr_list_parse(one, 2, err, sizeof err);
        ok(e == NULL, "refused '%s'", bad_cases[i].item);
        ok(strstr(err, bad_cases[i].err_has) != NULL &&
               strncmp(err, bad_cases[i].item, strlen(bad_cases[i].item)) == 0,
           "error for '%s' names the item and says '%s' (got '%s')", bad_cases[i].item,
           bad_cases[i].err_has, err);
        cidr_list_free(&e);
    }

    e = cidr_list_parse(NULL, 0, err, sizeof err);
    ok(e != NULL, "empty list parses");
    is_int((long long)cidr_list_count(e), 0, "empty list count");
    is_int(cidr_list_match(e, "192.0.2.1"), 0, "empty list matches nothing (v4)");
    is_int(cidr_list_match(e, "::1"), 0, "empty list matches nothing (v6)");
    cidr_list_free(&e);
    ok(e == NULL, "free NULLs the pointer");
    cidr_list_free(&e);
    is_int(cidr_list_match(NULL, "192.0.2.1"), 0, "NULL list matches nothing");

    /* /0 is valid; families stay apart (::/0 does not match IPv4 clients). */
    {
        const char *a4[] = {"0.0.0.0/0"}, *a6[] = {"::/0"};
        all4 = cidr_list_parse(a4, 1, err, sizeof err);
        all6 = cidr_list_parse(a6, 1, err, sizeof err);
        ok(all4 && all6, "/0 accepted");
        is_int(cidr_list_match(all4, "203.0.113.1"), 1, "0.0.0.0/0 matches v4");
        is_int(cidr_list_match(all4, "::ffff:203.0.113.1"), 1, "0.0.0.0/0 matches v4-mapped");
        is_int(cidr_list_match(all4, "2001:db8::1"), 0, "0.0.0.0/0 does not match v6");
        is_int(cidr_list_match(all6, "2001:db8::1"), 1, "::/0 matches v6");
        is_int(cidr_list_match(all6, "203.0.113.1"), 0, "::/0 does not match v4");
        is_int(cidr_list_match(all6, "::ffff:203.0.113.1"), 0, "::/0 does not match v4-mapped");
        cidr_list_free(&all4);
        cidr_list_free(&all6);
    }

    /* Every prefix length: the network matches its first and last address
     * and not the address just past it. */
    for (unsigned p = 1; p <= 32; p++) {
        const char *one[1] = {item};
        unsigned long net = 0x0a000000UL, size = p == 32 ? 1 : (1UL << (32 - p));
        char first[32], last[32], past[32];
        net &= p == 0 ? 0 : (0xffffffffUL << (32 - p)) & 0xffffffffUL;
        snprintf(item, sizeof item, "%lu.%lu.%lu.%lu/%u", net >> 24, (net >> 16) & 255,
                 (net >> 8) & 255, net & 255, p);
        snprintf(first, sizeof first, "%lu.%lu.%lu.%lu", net >> 24, (net >> 16) & 255,
                 (net >> 8) & 255, net & 255);
        unsigned long l2 = net + size - 1, p2 = (net + size) & 0xffffffffUL;
        snprintf(last, sizeof last, "%lu.%lu.%lu.%lu", l2 >> 24, (l2 >> 16) & 255, (l2 >> 8) & 255,
                 l2 & 255);
        snprintf(past, sizeof past, "%lu.%lu.%lu.%lu", p2 >> 24, (p2 >> 16) & 255, (p2 >> 8) & 255,
                 p2 & 255);
        e = cidr_list_parse(one, 1, err, sizeof err);
        ok(e && cidr_list_match(e, first) && cidr_list_match(e, last) && !cidr_list_match(e, past),
           "%s: %s and %s in, %s out", item, first, last, past);
        cidr_list_free(&e);
    }

    /* Speed: a 50-entry list, 100k lookups, well under 3 s (even under
     * valgrind, which is ~50 times slower; natively it is about 15 ms). */
    {
        const char *many[50];
        char store[50][48];
        clock_t t0;
        int hits = 0;
        for (int i = 0; i < 50; i++) {
            if (i % 2)
                snprintf(store[i], sizeof store[i], "2001:db8:%x::/48", i);
            else
                snprintf(store[i], sizeof store[i], "198.18.%d.0/24", i);
            many[i] = store[i];
        }
        e = cidr_list_parse(many, 50, err, sizeof err);
        ok(e != NULL, "50-entry list");
        t0 = clock();
        for (int i = 0; i < 100000; i++)
            hits += cidr_list_match(e, (i & 1) ? "2001:db8:31::7" : "203.0.113.9");
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        is_int(hits, 50000, "hits: the v6 address matches, the v4 one does not");
        ok(secs < 3.0, "1e5 lookups in %.3f s", secs);
        cidr_list_free(&e);
    }
    cidr_list_free(&l);
    return tap_done();
}
