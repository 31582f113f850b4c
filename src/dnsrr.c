/* dnsrr.c - reference-counted DNS RRsets and their IPC wire form (see dnsrr.h).
 *
 * Wire form, all integers big-endian:
 *   u8 status, u16 type, u32 ttl, u32 n, then n x (u16 pref, u32 len, len bytes).
 * Decoding checks every length against the buffer: a worker must never be able
 * to make the main process read out of bounds, and vice versa. */
#include "dnsrr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that no legitimate answer exceeds (a 64 KiB DNS message cannot carry
 * more records or longer data); decoding refuses anything larger. */
#define DNSRR_MAX_RRS 4096
#define DNSRR_MAX_DATA 65535

struct dns_result *dnsrr_new(enum dns_status status, uint16_t type, uint32_t ttl, size_t n)
{
    struct dns_result *r;

    if (n > DNSRR_MAX_RRS)
        return NULL;
    r = calloc(1, sizeof(*r) + n * sizeof(r->rr[0]));
    if (r == NULL)
        return NULL;
    r->refs = 1;
    r->status = status;
    r->type = type;
    r->ttl = ttl;
    r->n = n;
    return r;
}

int dnsrr_set(struct dns_result *r, size_t i, const void *data, size_t len, uint16_t pref)
{
    unsigned char *p;

    if (i >= r->n || len > DNSRR_MAX_DATA)
        return -1;
    p = malloc(len + 1);
    if (p == NULL)
        return -1;
    if (len)
        memcpy(p, data, len);
    p[len] = '\0';
    free(r->rr[i].data);
    r->rr[i].data = p;
    r->rr[i].len = len;
    r->rr[i].pref = pref;
    return 0;
}

struct dns_result *dnsrr_ref(struct dns_result *r)
{
    if (r)
        __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
    return r;
}

void dnsrr_unref(struct dns_result **rp)
{
    struct dns_result *r = *rp;

    *rp = NULL;
    if (r == NULL || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->rr[i].data);
    free(r);
}

const char *dnsrr_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK:
        return "ok";
    case DNS_NODATA:
        return "nodata";
    case DNS_NXDOMAIN:
        return "nxdomain";
    case DNS_SERVFAIL:
        return "servfail";
    case DNS_TIMEOUT:
        return "timeout";
    }
    return "unknown";
}

const char *dnsrr_type_name(uint16_t type)
{
    static __thread char buf[16];

    switch (type) {
    case DNS_T_A:
        return "A";
    case DNS_T_NS:
        return "NS";
    case DNS_T_CNAME:
        return "CNAME";
    case DNS_T_PTR:
        return "PTR";
    case DNS_T_MX:
        return "MX";
    case DNS_T_TXT:
        return "TXT";
    case DNS_T_AAAA:
        return "AAAA";
    case DNS_T_SPF:
        return "SPF";
    }
    snprintf(buf, sizeof(buf), "TYPE%u", (unsigned)type);
    return buf;
}

size_t dnsrr_encoded_size(const struct dns_result *r)
{
    size_t sz = 1 + 2 + 4 + 4;

    for (size_t i = 0; i < r->n; i++)
        sz += 2 + 4 + r->rr[i].len;
    return sz;
}

static unsigned char *put16(unsigned char *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v & 0xff;
    return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = (v >> 16) & 0xff;
    p[2] = (v >> 8) & 0xff;
    p[3] = v & 0xff;
    return p + 4;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void dnsrr_encode(const struct dns_result *r, unsigned char *p)
{
    *p++ = (unsigned char)r->status;
    p = put16(p, r->type);
    p = put32(p, r->ttl);
    p = put32(p, (uint32_t)r->n);
    for (size_t i = 0; i < r->n; i++) {
        p = put16(p, r->rr[i].pref);
        p = put32(p, (uint32_t)r->rr[i].len);
        if (r->rr[i].len)
            memcpy(p, r->rr[i].data, r->rr[i].len);
        p += r->rr[i].len;
    }
}

struct dns_result *dnsrr_decode(const unsigned char *buf, size_t len, size_t *used)
{
    const unsigned char *p = buf, *end = buf + len;
    struct dns_result *r;
    uint32_t n;

    if (len < 11 || buf[0] > DNS_TIMEOUT)
        return NULL;
    n = get32(buf + 7);
    if (n > DNSRR_MAX_RRS || (n > 0 && buf[0] != DNS_OK))
        return NULL;
    r = dnsrr_new((enum dns_status)buf[0], get16(buf + 1), get32(buf + 3), n);
    if (r == NULL)
        return NULL;
    p += 11;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t pref;
        uint32_t l;

        if (end - p < 6)
            goto bad;
        pref = get16(p);
        l = get32(p + 2);
        p += 6;
        if (l > DNSRR_MAX_DATA || (size_t)(end - p) < l)
            goto bad;
        if (dnsrr_set(r, i, p, l, pref) < 0)
            goto bad;
        p += l;
    }
    *used = (size_t)(p - buf);
    return r;
bad:
    dnsrr_unref(&r);
    return NULL;
}
