/* psl.c - the Public Suffix List adapter over libpsl (see psl.h). It exists so
 * that the rest of the daemon sees one small function, and so that the input
 * normalisation libpsl leaves to its callers (case, trailing dot, empty
 * labels, UTF-8 validity) is done once, here. */
#include "psl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

struct psl_ctx {
    psl_ctx_t *psl; /* owned; read-only after load */
};

/* The longest name in presentation form without the trailing dot. */
#define PSL_NAME_MAX 253

struct psl_ctx *psl_open(const char *file, char *err, size_t errlen)
{
    struct psl_ctx *ctx;
    FILE *fp;

    if (file == NULL || *file == '\0')
        file = PSL_DEFAULT_FILE;
    /* Open it ourselves first: libpsl only says "NULL", and an operator
     * deserves to know whether the path or the content is wrong. */
    if ((fp = fopen(file, "r")) == NULL) {
        snprintf(err, errlen, "public suffix list %s: %s", file, strerror(errno));
        return NULL;
    }
    fclose(fp);
    if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((ctx->psl = psl_load_file(file)) == NULL) {
        snprintf(err, errlen, "public suffix list %s: not a list libpsl can load", file);
        free(ctx);
        return NULL;
    }
    /* A text file with no rules loads "successfully" and would make every
     * name's org domain its last two labels: refuse it. (The DAFSA form
     * reports -1, i.e. "unknown": accepted.) */
    if (psl_suffix_count(ctx->psl) == 0) {
        snprintf(err, errlen, "public suffix list %s: no rules", file);
        psl_close(&ctx);
        return NULL;
    }
    return ctx;
}

/* utf8_valid: strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
 * libpsl's lowercasing accepts invalid sequences silently. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        unsigned long cp;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k >= n) /* truncated sequence */
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

int psl_org_domain(struct psl_ctx *ctx, const char *domain, char *out, size_t outlen)
{
    char name[PSL_NAME_MAX + 2];
    char *lower = NULL;
    const char *reg;
    size_t n;
    int ascii = 1, rc = -1;

    if (out != NULL && outlen > 0)
        *out = '\0';
    if (ctx == NULL || domain == NULL || out == NULL || outlen == 0)
        return -1;
    n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--; /* one trailing dot: the FQDN form of the same name */
    if (n == 0 || n > PSL_NAME_MAX)
        return -1;
    memcpy(name, domain, n);
    name[n] = '\0';
    /* Empty labels (leading dot, "a..b", a second trailing dot): not a name.
     * libpsl answers inconsistently for these (text vs DAFSA form). */
    if (name[0] == '.' || strstr(name, "..") != NULL || name[n - 1] == '.')
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 0x80)
            ascii = 0;
        else if (c >= 'A' && c <= 'Z')
            name[i] = (char)(c - 'A' + 'a');
    }
    if (!ascii) {
        /* U-labels: libpsl wants lowercase UTF-8 and converts to A-labels
         * itself for the lookup; the answer keeps the input's form. */
        if (!utf8_valid((const unsigned char *)name, n))
            return -1;
        if (psl_str_to_utf8lower(name, "utf-8", NULL, &lower) != PSL_SUCCESS || lower == NULL)
            return -1;
    }
    reg = psl_registrable_domain(ctx->psl, lower != NULL ? lower : name);
    if (reg != NULL && strlen(reg) < outlen) {
        memcpy(out, reg, strlen(reg) + 1);
        rc = 0;
    }
    if (lower != NULL)
        psl_free_string(lower);
    return rc;
}

void psl_close(struct psl_ctx **ctxp)
{
    if (ctxp == NULL || *ctxp == NULL)
        return;
    psl_free((*ctxp)->psl);
    free(*ctxp);
    *ctxp = NULL;
}
