/* tap.c - see tap.h. */
#include "tap.h"

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static int tap_vreport(int cond, const char *fmt, va_list ap)
{
    tap_n++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(cond, fmt, ap);
    va_end(ap);
    return cond;
}

int is_str(const char *got, const char *want, const char *fmt, ...)
{
    int cond = (got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0);
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(cond, fmt, ap);
    va_end(ap);
    if (!cond)
        printf("#   got:  '%s'\n#   want: '%s'\n", got ? got : "(null)", want ? want : "(null)");
    return cond;
}

int is_int(long long got, long long want, const char *fmt, ...)
{
    int cond = got == want;
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(cond, fmt, ap);
    va_end(ap);
    if (!cond)
        printf("#   got:  %lld\n#   want: %lld\n", got, want);
    return cond;
}

void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

int tap_done(void)
{
    printf("1..%d\n", tap_n);
    if (tap_failed)
        printf("# %d of %d checks failed\n", tap_failed, tap_n);
    return tap_failed ? 1 : 0;
}
