/* zone.c - the in-process test zone (see zone.h). */
#include "zone.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct zrec {
    char *name;
    uint16_t type, pref;
    unsigned char *data;
    size_t len;
};

struct zone {
    struct zrec *r;
    size_t n, cap;
    unsigned queries;
};

struct zone *zone_new(void)
{
    return calloc(1, sizeof(struct zone));
}

void zone_free(struct zone **zp)
{
    size_t i;
    if (zp == NULL || *zp == NULL)
        return;
    for (i = 0; i < (*zp)->n; i++) {
        free((*zp)->r[i].name);
        free((*zp)->r[i].data);
    }
    free((*zp)->r);
    free(*zp);
    *zp = NULL;
}

static int same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

int zone_add(struct zone *z, const char *name, uint16_t type, const void *data, size_t len,
             uint16_t pref)
{
    struct zrec *r;
    if (z->n == z->cap) {
        size_t nc = z->cap ? z->cap * 2 : 64;
        struct zrec *nr = realloc(z->r, nc * sizeof(*nr));
        if (nr == NULL)
            return -1;
        z->r = nr;
        z->cap = nc;
    }
    r = &z->r[z->n];
    r->name = strdup(name);
    r->data = malloc(len + 1);
    if (r->name == NULL || r->data == NULL)
        return -1;
    if (len)
        memcpy(r->data, data, len);
    r->data[len] = 0;
    r->len = len;
    r->type = type;
    r->pref = pref;
    z->n++;
    return 0;
}

int zone_add_str(struct zone *z, const char *name, uint16_t type, const char *data, uint16_t pref)
{
    unsigned char buf[16];
    if (type == DNS_T_A || type == DNS_T_AAAA) {
        if (inet_pton(type == DNS_T_A ? AF_INET : AF_INET6, data, buf) != 1)
            return -1;
        return zone_add(z, name, type, buf, type == DNS_T_A ? 4 : 16, 0);
    }
    return zone_add(z, name, type, data, strlen(data), pref);
}

struct dns_result *zone_lookup(void *ctx, const char *name, uint16_t type)
{
    struct zone *z = ctx;
    const char *cur = name;
    int hops;
    z->queries++;
    for (hops = 0; hops < 8; hops++) {
        size_t i, n = 0, k = 0;
        int exists = 0, timeout = 0;
        const char *cname = NULL;
        struct dns_result *res;
        for (i = 0; i < z->n; i++) {
            if (!same_name(z->r[i].name, cur))
                continue;
            exists = 1;
            if (z->r[i].type == ZONE_TIMEOUT)
                timeout = 1;
            else if (z->r[i].type == type)
                n++;
            else if (z->r[i].type == DNS_T_CNAME)
                cname = (const char *)z->r[i].data;
        }
        if (n == 0 && cname != NULL && type != DNS_T_CNAME) {
            cur = cname;
            continue;
        }
        if (n == 0 && timeout)
            return dnsrr_new(DNS_TIMEOUT, type, 0, 0);
        if (n == 0)
            return dnsrr_new(exists ? DNS_NODATA : DNS_NXDOMAIN, type, 60, 0);
        res = dnsrr_new(DNS_OK, type, 300, n);
        if (res == NULL)
            return dnsrr_new(DNS_SERVFAIL, type, 0, 0);
        for (i = 0; i < z->n; i++)
            if (z->r[i].type == type && same_name(z->r[i].name, cur))
                dnsrr_set(res, k++, z->r[i].data, z->r[i].len, z->r[i].pref);
        return res;
    }
    return dnsrr_new(DNS_SERVFAIL, type, 0, 0); /* CNAME loop */
}

unsigned zone_queries(const struct zone *z)
{
    return z->queries;
}
