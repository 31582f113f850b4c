/* raddr.c - parsing the Redis address setting (see raddr.h). */
#include "raddr.h"

#include <stdlib.h>
#include <string.h>

int raddr_parse(const char *a, char **host, int *port, char **path)
{
    *host = *path = NULL;
    if (a == NULL)
        return -1;
    if (strncmp(a, "unix:", 5) == 0) {
        if (a[5] == '\0')
            return -1;
        *path = strdup(a + 5);
        return *path ? 0 : -1;
    }
    if (strncmp(a, "tcp:", 4) == 0) {
        const char *h = a + 4, *colon = strrchr(h, ':');
        char *end;
        long p;
        size_t hl;

        if (colon == NULL || colon == h)
            return -1;
        p = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || p <= 0 || p > 65535)
            return -1;
        hl = (size_t)(colon - h);
        if (h[0] == '[') {
            if (hl < 3 || h[hl - 1] != ']')
                return -1;
            h++;
            hl -= 2;
        }
        *host = strndup(h, hl);
        *port = (int)p;
        return *host ? 0 : -1;
    }
    return -1;
}

int raddr_conf_set(struct raddr_conf *c, const char *redis, const char *password, unsigned db,
                   const char *prefix, size_t prefix_max)
{
    char *host, *path, *addr, *pw, *pfx;
    int port = 0, changed;

    if (prefix == NULL || prefix[0] == '\0' || (prefix_max && strlen(prefix) > prefix_max) ||
        raddr_parse(redis, &host, &port, &path) < 0)
        return -1;
    addr = strdup(redis);
    pw = strdup(password ? password : "");
    pfx = strdup(prefix);
    if (addr == NULL || pw == NULL || pfx == NULL) {
        free(addr);
        free(pw);
        free(pfx);
        free(host);
        free(path);
        return -1;
    }
    changed = c->addr == NULL || strcmp(c->addr, addr) != 0 || strcmp(c->password, pw) != 0 ||
              c->db != db;
    raddr_conf_clear(c);
    c->addr = addr;
    c->password = pw;
    c->prefix = pfx;
    c->host = host;
    c->path = path;
    c->port = port;
    c->db = db;
    return changed;
}

void raddr_conf_clear(struct raddr_conf *c)
{
    free(c->addr);
    free(c->password);
    free(c->prefix);
    free(c->host);
    free(c->path);
    memset(c, 0, sizeof(*c));
}
