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
