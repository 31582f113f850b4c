/* san.c - sanitising remote text (see san.h): UTF-8 validation, control
 * character replacement, bounded copies, domain syntax.
 *
 * Beyond the letter of san.h, C1 control characters (U+0080..U+009F, valid
 * UTF-8 as C2 80..C2 9F) are replaced too: NEL (U+0085) is a line break to
 * Unicode-aware readers, and none of them belong in a header. */
#include "san.h"

#include <string.h>

/* utf8_seq: length (2..4) of the valid, non-control UTF-8 sequence starting
 * at s (n bytes available), or 0 when s[0] does not start one. Rejects
 * overlong forms, surrogates (U+D800..U+DFFF), code points above U+10FFFF,
 * sequences cut by the end of input, and C1 controls. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */

    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0; /* ASCII, bare continuation, C0/C1 overlong lead, > U+10FFFF */
    if (c == 0xe0)
        lo = 0xa0; /* overlong 3-byte */
    else if (c == 0xed)
        hi = 0x9f; /* surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* overlong 4-byte */
    else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    if (c == 0xc2 && s[1] <= 0x9f)
        return 0; /* C1 control */
    return len;
}

/* unit: the length of the next output unit at s (1 for a kept or replaced
 * byte, 2..4 for a valid multibyte sequence) and whether it is kept. */
static size_t unit(const unsigned char *s, size_t n, int *keep)
{
    size_t len;

    if (s[0] < 0x80) {
        *keep = s[0] >= 0x20 && s[0] != 0x7f;
        return 1;
    }
    len = utf8_seq(s, n);
    *keep = len > 0;
    return len > 0 ? len : 1;
}

size_t san_text(char *dst, size_t sz, const char *src, size_t maxlen)
{
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    size_t n = strlen((const char *)s), limit, body, i = 0, out = 0;
    int keep;

    if (sz == 0)
        return 0;
    limit = maxlen < sz - 1 ? maxlen : sz - 1;
    /* Output length equals input length (replacement is byte for byte), so
     * the input tells whether a cut is needed; a cut keeps room for "...". */
    body = n <= limit ? n : (limit >= 3 ? limit - 3 : 0);
    while (i < n) {
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            /* printable ASCII, nearly all of what we see: no call per byte */
            if (out + 1 > body)
                break;
            dst[out++] = (char)s[i++];
            continue;
        }
        size_t len = unit(s + i, n - i, &keep);
        if (out + (keep ? len : 1) > body)
            break;
        if (keep) {
            memcpy(dst + out, s + i, len);
            out += len;
            i += len;
        } else {
            dst[out++] = '?';
            i++;
        }
    }
    if (i < n)
        for (size_t d = 0; d < 3 && out < limit; d++)
            dst[out++] = '.';
    dst[out] = '\0';
    return out;
}

int san_is_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), i = 0;
    int keep;

    while (i < n) {
        i += unit(p + i, n - i, &keep);
        if (!keep)
            return 0;
    }
    return 1;
}

static int ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

int san_domain(const char *s, int lenient)
{
    size_t n, label = 0;

    if (s == NULL)
        return 0;
    n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        n--; /* the root: "example.org." */
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? (unsigned char)s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63)
                return 0;
            /* LDH: a label neither starts nor ends with a hyphen. */
            if (!lenient && (s[i - label] == '-' || s[i - 1] == '-'))
                return 0;
            label = 0;
            continue;
        }
        if (lenient ? (c <= 0x20 || c >= 0x7f) : !ldh(c))
            return 0;
        label++;
    }
    return 1;
}
