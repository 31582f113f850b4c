/* fuzz_util.h - small helpers shared by the libFuzzer targets in fuzz/:
 * splitting the input into fields and failing loudly on a broken invariant.
 * Header-only (static inline) so each target stays one translation unit. */
#ifndef PD_FUZZ_UTIL_H
#define PD_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FZ_CHECK: an invariant of the code under test. abort() so that libFuzzer
 * records the input as a crash, with the broken condition on stderr. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* fz_strict: 1 when FUZZ_STRICT=1 is set. By default targets call the code
 * the way the daemon does (e.g. NUL-terminated buffers, fixed words where the
 * callers pass fixed words); strict mode checks a function's documented
 * contract beyond that, to reproduce findings that are latent in the daemon. */
static inline int fz_strict(void)
{
    static int strict = -1;
    if (strict < 0) {
        const char *e = getenv("FUZZ_STRICT");
        strict = e != NULL && strcmp(e, "1") == 0;
    }
    return strict;
}

/* A cursor over the fuzz input. */
struct fz {
    const uint8_t *p;
    size_t n;
};

/* fz_byte: next byte, 0 when the input is exhausted. */
static inline uint8_t fz_byte(struct fz *f)
{
    uint8_t b;
    if (f->n == 0)
        return 0;
    b = *f->p++;
    f->n--;
    return b;
}

/* fz_field: the bytes up to the next sep (not included; sep consumed), or the
 * rest of the input. *len gets the length; returns a pointer into the input
 * (borrowed, not NUL-terminated). */
static inline const uint8_t *fz_field(struct fz *f, uint8_t sep, size_t *len)
{
    const uint8_t *start = f->p;
    const uint8_t *e = f->n ? memchr(f->p, sep, f->n) : NULL;
    size_t l = e ? (size_t)(e - f->p) : f->n;
    *len = l;
    f->p += l;
    f->n -= l;
    if (e) {
        f->p++;
        f->n--;
    }
    return start;
}

/* fz_str: like fz_field, as a NUL-terminated copy (cut at an embedded NUL, at
 * most max-1 bytes) into dst[max]. */
static inline char *fz_str(struct fz *f, uint8_t sep, char *dst, size_t max)
{
    size_t l;
    const uint8_t *s = fz_field(f, sep, &l);
    l = strnlen((const char *)s, l); /* cut at an embedded NUL */
    if (l > max - 1)
        l = max - 1;
    memcpy(dst, s, l);
    dst[l] = '\0';
    return dst;
}

/* fz_no_ctl: 1 when s (n bytes) has no byte < 0x20 and no DEL. */
static inline int fz_no_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

#endif
