/* tap.h - a minimal TAP producer for the C unit tests (run by ctest).
 *
 * ok(cond, fmt, ...) prints "ok N - ..." or "not ok N - ..." and returns cond;
 * tap_done() prints the plan and returns the process exit status (0 when every
 * check passed). A test binary's main() ends with `return tap_done();`. */
#ifndef PD_TAP_H
#define PD_TAP_H

#include <stdarg.h>

int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* is_str: compare strings (NULL-safe), print both on mismatch. */
int is_str(const char *got, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* is_int: compare integers, print both on mismatch. */
int is_int(long long got, long long want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tap_done(void);

#endif
