/* fuzz_cfg.c - libFuzzer target for the configuration parser (src/cfg.c).
 *
 * cfg_load() reads only from a path, so each input is written to one memfd
 * (created once, truncated per run) and loaded as /proc/self/fd/<n>: no file
 * system writes. A loaded config is also printed (cfg_print_nondefault) and
 * merged with the defaults (cfg_reload_merge); a refused one must say why as
 * "path:line: message" or "path: message". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cfg.h"
#include "fuzz_util.h"

static int memfd = -1;
static char path[64];
static FILE *devnull;
static struct pd_config *defaults;

static void setup(void)
{
    memfd = memfd_create("fuzz_cfg", 0);
    FZ_CHECK(memfd >= 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    devnull = fopen("/dev/null", "w");
    FZ_CHECK(devnull != NULL);
    defaults = cfg_defaults();
    FZ_CHECK(defaults != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], msg[2048];
    struct pd_config *c;
    size_t off = 0;

    if (memfd < 0)
        setup();
    FZ_CHECK(ftruncate(memfd, 0) == 0);
    FZ_CHECK(lseek(memfd, 0, SEEK_SET) == 0);
    while (off < size) {
        ssize_t w = write(memfd, data + off, size - off);
        FZ_CHECK(w > 0);
        off += (size_t)w;
    }

    memset(err, 'x', sizeof(err));
    c = cfg_load(path, err, sizeof(err));
    FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (c == NULL) {
        size_t pl = strlen(path);
        FZ_CHECK(strncmp(err, path, pl) == 0 && err[pl] == ':' && err[pl + 1] != '\0');
        return 0;
    }
    FZ_CHECK(c->hostname != NULL && c->authserv_id != NULL);
    FZ_CHECK(c->listen.n == 0 || c->listen.items != NULL);
    for (size_t i = 0; i < c->listen.n; i++)
        FZ_CHECK(c->listen.items[i] != NULL);
    cfg_print_nondefault(c, devnull);
    /* old = defaults, next = the file: non-reloadable changes are reported
     * and reverted, so the merge of a merged config finds nothing more */
    int changed = cfg_reload_merge(defaults, c, msg, sizeof(msg));
    FZ_CHECK(changed >= 0);
    FZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL);
    FZ_CHECK(cfg_reload_merge(defaults, c, msg, sizeof(msg)) == 0);
    cfg_free(&c);
    FZ_CHECK(c == NULL);
    return 0;
}
