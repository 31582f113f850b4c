/* raddr.h - the Redis address setting ("tcp:HOST:PORT", HOST may be [IPv6],
 * or "unix:PATH"), parsed the same way for the counter writer, the greylist
 * store and the reporter. Pure. */
#ifndef PD_RADDR_H
#define PD_RADDR_H

#include <stddef.h>

/* raddr_parse: on success 0 with either *host (caller frees) and *port set,
 * or *path (caller frees) set; the other pointer is NULL. -1 on a malformed
 * address or allocation failure (nothing to free). */
int raddr_parse(const char *a, char **host, int *port, char **path);

/* The connection settings of an asynchronous Redis user (the counter writer,
 * the greylist store): owned copies, with the address parsed. */
struct raddr_conf {
    char *addr, *password, *prefix; /* as configured */
    char *host, *path;              /* parsed addr: host + port, or unix path */
    int port;
    unsigned db;
};

/* raddr_conf_set: parse and copy the settings into c (replacing what it held).
 * Returns 1 when the connection changed (address, password or db: reconnect),
 * 0 when not, -1 on a bad setting or allocation failure (c unchanged).
 * prefix_max bounds the prefix length (0: no bound beyond non-empty). */
int raddr_conf_set(struct raddr_conf *c, const char *redis, const char *password, unsigned db,
                   const char *prefix, size_t prefix_max);
/* raddr_conf_clear: free what c holds and zero it. */
void raddr_conf_clear(struct raddr_conf *c);

#endif
