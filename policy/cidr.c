/* cidr.c - parsing and matching lists of IPv4/IPv6 networks (see cidr.h).
 *
 * Entries are kept per family: an IPv4 network matches IPv4 addresses and
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, which is how a dual-stack
 * socket reports an IPv4 client); an IPv6 network matches IPv6 addresses. A
 * network written in v4-mapped form (::ffff:192.0.2.0/120) is stored as the
 * IPv4 network it names. So "::/0" does not quietly match every IPv4 client.
 *
 * Matching is a linear scan: the lists this serves (trusted networks,
 * forwarders, whitelists) hold tens of entries, one scan is a few hundred
 * byte comparisons per request, which is far below the cost of anything else
 * a request does; a trie would add code without a measurable gain. */
#include "cidr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cidr_net {
    int v6;              /* 0: IPv4 (4 bytes of addr used), 1: IPv6 */
    unsigned prefix;     /* 0..32 or 0..128 */
    unsigned char a[16]; /* network address, host bits zero */
};

struct cidr_list {
    size_t n;
    struct cidr_net net[]; /* n entries */
};

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* prefix_ok: 1 when the bits of a below prefix (of bits total) are zero. */
static int host_bits_zero(const unsigned char *a, unsigned prefix, unsigned bits)
{
    for (unsigned b = prefix; b < bits; b++)
        if (a[b / 8] & (0x80 >> (b % 8)))
            return 0;
    return 1;
}

static int prefix_match(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;

    if (memcmp(a, net, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[whole] ^ net[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

/* parse_addr: text (no brackets, no prefix) into a; returns 4, 16 or 0. A
 * v4-mapped IPv6 address is returned as its IPv4 address. */
static int parse_addr(const char *s, unsigned char *a)
{
    unsigned char b[16];

    if (inet_pton(AF_INET, s, a) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, b) != 1)
        return 0;
    if (memcmp(b, v4mapped, 12) == 0) {
        memcpy(a, b + 12, 4);
        return 4;
    }
    memcpy(a, b, 16);
    return 16;
}

/* parse_item: one list item into *net; on error writes the reason (without
 * the item) to why and returns -1. */
static int parse_item(const char *item, struct cidr_net *net, char *why, size_t whylen)
{
    char buf[80], addr[INET6_ADDRSTRLEN + 8];
    const char *p, *slash;
    size_t len;
    unsigned bits, prefix;
    int mapped_v6 = 0;
    unsigned char raw[16];

    while (isspace((unsigned char)*item))
        item++;
    len = strlen(item);
    while (len > 0 && isspace((unsigned char)item[len - 1]))
        len--;
    if (len == 0 || len >= sizeof buf) {
        snprintf(why, whylen, len == 0 ? "empty item" : "too long");
        return -1;
    }
    memcpy(buf, item, len);
    buf[len] = '\0';

    slash = strchr(buf, '/');
    p = buf;
    len = slash ? (size_t)(slash - buf) : strlen(buf);
    if (*p == '[') { /* [v6] or [v6]/len */
        if (len < 2 || p[len - 1] != ']') {
            snprintf(why, whylen, "unbalanced '['");
            return -1;
        }
        p++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof addr) {
        snprintf(why, whylen, "not an IP address");
        return -1;
    }
    memcpy(addr, p, len);
    addr[len] = '\0';
    if (buf[0] == '[' && strchr(addr, ':') == NULL) {
        snprintf(why, whylen, "brackets are for IPv6 addresses");
        return -1;
    }

    memset(net, 0, sizeof *net);
    if (inet_pton(AF_INET, addr, raw) == 1) {
        net->v6 = 0;
        memcpy(net->a, raw, 4);
        bits = 32;
    } else if (inet_pton(AF_INET6, addr, raw) == 1) {
        net->v6 = 1;
        memcpy(net->a, raw, 16);
        bits = 128;
        mapped_v6 = memcmp(raw, v4mapped, 12) == 0;
    } else {
        snprintf(why, whylen, "not an IP address");
        return -1;
    }

    prefix = bits;
    if (slash) {
        const char *d = slash + 1;
        unsigned long v = 0;

        /* Decimal digits only, no sign, no leading zero ("/024" is a typo). */
        if (*d == '\0' || strspn(d, "0123456789") != strlen(d) || (d[0] == '0' && d[1]) ||
            strlen(d) > 3) {
            snprintf(why, whylen, "bad prefix length");
            return -1;
        }
        v = strtoul(d, NULL, 10);
        if (v > bits) {
            snprintf(why, whylen, "prefix length %lu out of range 0..%u", v, bits);
            return -1;
        }
        prefix = (unsigned)v;
    }
    if (!host_bits_zero(net->a, prefix, bits)) {
        snprintf(why, whylen, "host bits set below /%u", prefix);
        return -1;
    }
    net->prefix = prefix;
    if (mapped_v6 && prefix >= 96) { /* ::ffff:192.0.2.0/120 is 192.0.2.0/24 */
        memmove(net->a, net->a + 12, 4);
        memset(net->a + 4, 0, 12);
        net->v6 = 0;
        net->prefix = prefix - 96;
    }
    return 0;
}

struct cidr_list *cidr_list_parse(const char *const *items, size_t n, char *err, size_t errlen)
{
    struct cidr_list *l;
    char why[96];

    if (err && errlen)
        err[0] = '\0';
    if (n > (SIZE_MAX - sizeof *l) / sizeof l->net[0]) {
        if (err && errlen)
            snprintf(err, errlen, "too many items");
        return NULL;
    }
    l = calloc(1, sizeof *l + n * sizeof l->net[0]);
    if (l == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL || parse_item(items[i], &l->net[i], why, sizeof why) < 0) {
            if (err && errlen)
                snprintf(err, errlen, "%.100s: %s", items[i] ? items[i] : "(null)",
                         items[i] ? why : "missing item");
            free(l);
            return NULL;
        }
    }
    l->n = n;
    return l;
}

void cidr_list_free(struct cidr_list **lp)
{
    if (lp == NULL || *lp == NULL)
        return;
    free(*lp);
    *lp = NULL;
}

int cidr_list_match(const struct cidr_list *l, const char *addr)
{
    unsigned char a[16];
    int fam;

    if (l == NULL || addr == NULL || l->n == 0)
        return 0;
    fam = parse_addr(addr, a);
    if (fam == 0)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct cidr_net *net = &l->net[i];
        if ((fam == 16) == (net->v6 != 0) && prefix_match(a, net->a, net->prefix))
            return 1;
    }
    return 0;
}

size_t cidr_list_count(const struct cidr_list *l)
{
    return l ? l->n : 0;
}
