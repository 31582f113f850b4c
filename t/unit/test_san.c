/* test_san.c - sanitising hostile text: control characters, header
 * injection, invalid and cut UTF-8, length bounds; domain syntax. */
#include <string.h>

#include "san.h"
#include "tap.h"

struct text_case {
    const char *in;
    size_t maxlen;
    const char *want;
    int clean; /* san_is_clean(in) */
};

static const struct text_case text_cases[] = {
    {"mail.example.org", 100, "mail.example.org", 1},
    {"", 100, "", 1},
    {"a\rb", 100, "a?b", 0},
    {"a\nb", 100, "a?b", 0},
    {"evil\r\nX-Injected: yes", 100, "evil??X-Injected: yes", 0},
    {"tab\there", 100, "tab?here", 0},
    {"\x01\x02\x1f", 100, "???", 0},
    {"del\x7f", 100, "del?", 0},
    {"\x1b[31mred", 100, "?[31mred", 0},
    /* valid UTF-8 kept: U+00E9, U+20AC, U+1F600, U+10FFFF */
    {"caf\xc3\xa9", 100, "caf\xc3\xa9", 1},
    {"\xe2\x82\xac", 100, "\xe2\x82\xac", 1},
    {"\xf0\x9f\x98\x80", 100, "\xf0\x9f\x98\x80", 1},
    {"\xf4\x8f\xbf\xbf", 100, "\xf4\x8f\xbf\xbf", 1},
    {"\xc2\xa0", 100, "\xc2\xa0", 1}, /* U+00A0 is not a C1 control */
    /* invalid: overlongs, surrogates, > U+10FFFF, bare continuations, C1 */
    {"\xc0\xaf", 100, "??", 0},               /* overlong '/' */
    {"\xc1\xbf", 100, "??", 0},               /* overlong */
    {"\xe0\x80\xaf", 100, "???", 0},          /* overlong 3-byte */
    {"\xe0\x9f\xbf", 100, "???", 0},          /* overlong 3-byte, top */
    {"\xf0\x80\x80\xaf", 100, "????", 0},     /* overlong 4-byte */
    {"\xf0\x8f\xbf\xbf", 100, "????", 0},     /* overlong 4-byte, top */
    {"\xed\xa0\x80", 100, "???", 0},          /* U+D800 surrogate */
    {"\xed\xbf\xbf", 100, "???", 0},          /* U+DFFF surrogate */
    {"\xed\x9f\xbf", 100, "\xed\x9f\xbf", 1}, /* U+D7FF fine */
    {"\xf4\x90\x80\x80", 100, "????", 0},     /* U+110000 */
    {"\xf5\x80\x80\x80", 100, "????", 0},
    {"\xff\xfe", 100, "??", 0},
    {"\x80", 100, "?", 0},
    {"a\xbf"
     "b",
     100, "a?b", 0},
    {"\xc2\x85", 100, "??", 0}, /* NEL (C1 control) */
    {"\xc2\x9f", 100, "??", 0},
    /* sequences cut by the end of the input */
    {"x\xc3", 100, "x?", 0},
    {"x\xe2\x82", 100, "x??", 0},
    {"x\xf0\x9f\x98", 100, "x???", 0},
    {"\xe2\x82x", 100, "??x", 0}, /* cut by an ASCII byte */
    /* length bounds: exactly maxlen is kept whole, one more is cut */
    {"abcdefghij", 10, "abcdefghij", 1},
    {"abcdefghijk", 10, "abcdefg...", 1},
    {"abcdef", 3, "...", 1},
    {"abcdef", 2, "..", 1},
    {"abcdef", 0, "", 1},
    /* the cut never splits a multibyte sequence */
    {"abcdefg\xc3\xa9xyz", 10, "abcdefg...", 1},
    {"abcdef\xc3\xa9xyz", 10, "abcdef...", 1},
    {"abcde\xc3\xa9wxyz", 10, "abcde\xc3\xa9...", 1},
    {"abcd\xf0\x9f\x98\x80xyz", 10, "abcd...", 1},
    {"abc\xf0\x9f\x98\x80wxyz", 10, "abc\xf0\x9f\x98\x80...", 1},
    {"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 1},
    {"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac!", 9, "\xe2\x82\xac\xe2\x82\xac...", 1},
    /* replaced bytes count one each toward the bound */
    {"\r\n\r\n\r\n\r\n\r\n", 8, "?????...", 0},
};

struct dom_case {
    const char *in;
    int strict, lenient;
};

static char label63[64], label64[65], long253[254], long254[255], long253dot[255];

static const struct dom_case dom_cases[] = {
    {"example.org", 1, 1},
    {"example.org.", 1, 1},
    {"a", 1, 1},
    {"xn--bcher-kva.example", 1, 1},
    {"a-b.c", 1, 1},
    {"", 0, 0},
    {".", 0, 0},
    {"..", 0, 0},
    {".example.org", 0, 0},
    {"example..org", 0, 0},
    {"example.org..", 0, 0},
    {"-a.example", 0, 1},
    {"a-.example", 0, 1},
    {"under_score.example", 0, 1},
    {"[192.0.2.1]", 0, 1},
    {"sp ace.example", 0, 0},
    {"tab\t.example", 0, 0},
    {"cr\r.example", 0, 0},
    {"del\x7f.example", 0, 0},
    {"caf\xc3\xa9.example", 0, 0},
    {"evil\r\nX-Injected: yes", 0, 0},
};

int main(void)
{
    char buf[64], big[4096];
    size_t n;

    for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
        const struct text_case *c = &text_cases[i];
        n = san_text(buf, sizeof buf, c->in, c->maxlen);
        is_str(buf, c->want, "san_text case %zu", i);
        is_int((long long)n, (long long)strlen(c->want), "san_text case %zu length", i);
        is_int(san_is_clean(c->in), c->clean, "san_is_clean case %zu", i);
        is_int(san_is_clean(buf), 1, "san_text output %zu is clean", i);
    }

    /* NUL ends the input: nothing after it can leak through. */
    n = san_text(buf, sizeof buf, "ok\0\r\nX-Injected: 1", 100);
    is_str(buf, "ok", "NUL ends the input");

    /* dst smaller than maxlen: sz wins, still NUL-terminated, still marked. */
    n = san_text(buf, 8, "abcdefghijklmnop", 100);
    is_str(buf, "abcd...", "bounded by sz");
    is_int((long long)n, 7, "bounded by sz: length");
    n = san_text(buf, 1, "abc", 100);
    is_str(buf, "", "sz 1 gives the empty string");
    memcpy(buf, "untouched", 10);
    n = san_text(buf, 0, "abc", 100);
    is_int((long long)n, 0, "sz 0 writes nothing");
    is_str(buf, "untouched", "sz 0 leaves dst alone");
    n = san_text(buf, sizeof buf, NULL, 100);
    is_str(buf, "", "NULL source is empty");

    /* A long hostile mix: every output byte is safe, the bound holds. */
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (char)(1 + (i * 37) % 255);
    big[sizeof big - 1] = '\0';
    n = san_text(buf, sizeof buf, big, 40);
    ok(n <= 40 && strlen(buf) == n, "hostile mix bounded (%zu)", n);
    ok(san_is_clean(buf), "hostile mix output clean");
    ok(strchr(buf, '\r') == NULL && strchr(buf, '\n') == NULL, "no CR/LF in output");
    ok(n >= 3 && strcmp(buf + n - 3, "...") == 0, "cut marked");

    memset(label63, 'a', 63);
    memset(label64, 'a', 64);
    /* 253 bytes: three 63-byte labels and a 61-byte one, dot-separated */
    memset(long253, 'b', 253);
    long253[63] = long253[127] = long253[191] = '.';
    memcpy(long254, long253, 253);
    long254[253] = 'c';
    memcpy(long253dot, long253, 253);
    long253dot[253] = '.';
    is_int(san_domain(label63, 0), 1, "63-byte label");
    is_int(san_domain(label64, 1), 0, "64-byte label refused (lenient too)");
    is_int(san_domain(long253, 0), 1, "253-byte name");
    is_int(san_domain(long253dot, 0), 1, "253-byte name with trailing dot");
    is_int(san_domain(long254, 1), 0, "254-byte name refused");
    is_int(san_domain(NULL, 1), 0, "NULL refused");
    for (size_t i = 0; i < sizeof dom_cases / sizeof dom_cases[0]; i++) {
        const struct dom_case *c = &dom_cases[i];
        is_int(san_domain(c->in, 0), c->strict, "san_domain strict case %zu", i);
        is_int(san_domain(c->in, 1), c->lenient, "san_domain lenient case %zu", i);
    }
    return tap_done();
}
