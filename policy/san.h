/* san.h - sanitising remote text before it reaches a header, a reply or a log.
 *
 * Everything a client or a DNS record controls (HELO, sender, SPF explanation,
 * domain names) passes through here before it is copied into a PREPENDed
 * header or an action text: no CR, LF, NUL, other C0 controls or DEL ever
 * reach Postfix, and the length is bounded. Pure functions, no allocation. */
#ifndef PD_SAN_H
#define PD_SAN_H

#include <stddef.h>

/* san_text: copy src into dst (size sz, always NUL-terminated), replacing each
 * byte < 0x20, 0x7f and each byte >= 0x80 that is not part of valid UTF-8 with
 * '?', and cutting at maxlen bytes (never inside a UTF-8 sequence; "..." marks a
 * cut). Returns the length written. */
size_t san_text(char *dst, size_t sz, const char *src, size_t maxlen);

/* san_is_clean: 1 when s has no byte san_text would replace. */
int san_is_clean(const char *s);

/* san_domain: 1 when s is a syntactically valid domain name (LDH labels, or
 * any printable non-space labels when lenient is 1; 1..63-byte labels, total
 * <= 253, optional trailing dot). */
int san_domain(const char *s, int lenient);

#endif
