/* fl.h - a bounded free list of same-size blocks.
 *
 * For the few large blocks that every request allocates and frees (the
 * connection's input buffer, the evaluation context): glibc serves blocks over
 * 1 KB, and every calloc, from its bins rather than its per-thread cache, and
 * perf put malloc and free at 8% of the daemon's time under greylisting load
 * (docs/performance.md). A block put back is kept for the next fl_get, up to
 * `max` blocks; beyond that it is freed.
 *
 * Owned by the struct that embeds it; loop thread only. Blocks are not
 * zeroed. */
#ifndef PD_FL_H
#define PD_FL_H

#include <stdlib.h>

struct fl {
    void *head; /* a free block's first bytes hold the next one */
    unsigned n, max;
    size_t size; /* >= sizeof(void *) */
};

#define FL_INIT(size, max)                                                                         \
    {                                                                                              \
        NULL, 0, (max), (size) < sizeof(void *) ? sizeof(void *) : (size)                          \
    }

/* fl_get: a block of f->size bytes (not zeroed), or NULL on ENOMEM. */
static inline void *fl_get(struct fl *f)
{
    void *p = f->head;

    if (p == NULL)
        return malloc(f->size);
    f->head = *(void **)p;
    f->n--;
    return p;
}

/* fl_put: give back a block from fl_get (NULL is ignored). */
static inline void fl_put(struct fl *f, void *p)
{
    if (p == NULL)
        return;
    if (f->n >= f->max) {
        free(p);
        return;
    }
    *(void **)p = f->head;
    f->head = p;
    f->n++;
}

/* fl_drain: free every kept block. */
static inline void fl_drain(struct fl *f)
{
    while (f->head) {
        void *p = f->head;
        f->head = *(void **)p;
        free(p);
    }
    f->n = 0;
}

#endif
