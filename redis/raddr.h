/* raddr.h - the Redis address setting ("tcp:HOST:PORT", HOST may be [IPv6],
 * or "unix:PATH"), parsed the same way for the counter writer, the greylist
 * store and the reporter. Pure. */
#ifndef PD_RADDR_H
#define PD_RADDR_H

/* raddr_parse: on success 0 with either *host (caller frees) and *port set,
 * or *path (caller frees) set; the other pointer is NULL. -1 on a malformed
 * address or allocation failure (nothing to free). */
int raddr_parse(const char *a, char **host, int *port, char **path);

#endif
