/* inst.c - the per-message table (see inst.h): a chained hash table on the
 * instance string, threaded by a doubly-linked list in insertion order, so
 * the oldest entry (eviction, expiry) is always the list head: O(1) per
 * removal, no scan.
 *
 * Entries are stamped when put (a get does not refresh them): a message's
 * requests all arrive within its SMTP transaction, so the timeout bounds how
 * long a decision may be reused, not how long it has been idle.
 *
 * The hash is FNV-1a: instance ids are made by Postfix, not by the client,
 * so there is no flooding input to defend against with a keyed hash. */
#include "inst.h"

#include <stdlib.h>
#include <string.h>

struct inst_ent {
    struct inst_ent *hnext;       /* hash chain */
    struct inst_ent *prev, *next; /* age list, oldest first */
    uint64_t stamp;
    uint64_t hash;
    void *data;
    char key[]; /* copied, NUL-terminated */
};

struct inst_table {
    struct inst_ent **bucket;
    size_t nbucket; /* power of two */
    size_t count, max;
    uint64_t timeout;
    uint64_t evictions;
    struct inst_ent *oldest, *newest;
    void (*free_data)(void *);
};

#define INST_MIN_BUCKETS 16

static uint64_t hash_key(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct inst_table *inst_new(size_t max, uint64_t timeout_ms, void (*free_data)(void *))
{
    struct inst_table *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->nbucket = INST_MIN_BUCKETS;
    t->bucket = calloc(t->nbucket, sizeof *t->bucket);
    if (t->bucket == NULL) {
        free(t);
        return NULL;
    }
    t->max = max ? max : 1;
    t->timeout = timeout_ms;
    t->free_data = free_data;
    return t;
}

/* unlink: take e out of its chain and the age list, free it and its data. */
static void unlink_free(struct inst_table *t, struct inst_ent *e)
{
    struct inst_ent **pp = &t->bucket[e->hash & (t->nbucket - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        t->oldest = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->newest = e->prev;
    t->count--;
    /* Unlinked before the destructor runs, so the table is consistent even
     * if free_data looks at it (it must not modify it). */
    if (t->free_data && e->data)
        t->free_data(e->data);
    free(e);
}

void inst_free(struct inst_table **tp)
{
    struct inst_table *t;

    if (tp == NULL || *tp == NULL)
        return;
    t = *tp;
    while (t->oldest)
        unlink_free(t, t->oldest);
    free(t->bucket);
    free(t);
    *tp = NULL;
}

static void evict_to(struct inst_table *t, size_t keep)
{
    while (t->count > keep && t->oldest) {
        unlink_free(t, t->oldest);
        t->evictions++;
    }
}

void inst_set_limits(struct inst_table *t, size_t max, uint64_t timeout_ms)
{
    t->max = max ? max : 1;
    t->timeout = timeout_ms;
    evict_to(t, t->max);
}

/* grow: double the bucket array once the load factor passes 1; on
 * allocation failure keep the old one (slower chains, still correct). */
static void grow(struct inst_table *t)
{
    size_t n = t->nbucket * 2;
    struct inst_ent **b;

    if (t->count <= t->nbucket || n > SIZE_MAX / sizeof *b)
        return;
    b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < t->nbucket; i++) {
        struct inst_ent *e = t->bucket[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(t->bucket);
    t->bucket = b;
    t->nbucket = n;
}

static struct inst_ent *find(const struct inst_table *t, const char *key, uint64_t h)
{
    struct inst_ent *e = t->bucket[h & (t->nbucket - 1)];

    for (; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* expired: a clock that went backwards (now < stamp) expires nothing. */
static int expired(const struct inst_table *t, const struct inst_ent *e, uint64_t now)
{
    return now >= e->stamp && now - e->stamp >= t->timeout;
}

void *inst_get(struct inst_table *t, const char *key, uint64_t now_ms)
{
    uint64_t h = hash_key(key);
    struct inst_ent *e = find(t, key, h);

    if (e == NULL)
        return NULL;
    if (expired(t, e, now_ms)) {
        unlink_free(t, e);
        return NULL;
    }
    return e->data;
}

static void append(struct inst_table *t, struct inst_ent *e)
{
    e->next = NULL;
    e->prev = t->newest;
    if (t->newest)
        t->newest->next = e;
    else
        t->oldest = e;
    t->newest = e;
}

int inst_put(struct inst_table *t, const char *key, void *data, uint64_t now_ms)
{
    uint64_t h = hash_key(key);
    struct inst_ent *e = find(t, key, h);
    size_t klen;

    if (e) { /* replace: the new value is the newest entry */
        void *old = e->data;
        e->data = data;
        e->stamp = now_ms;
        if (e != t->newest) {
            if (e->prev)
                e->prev->next = e->next;
            else
                t->oldest = e->next;
            e->next->prev = e->prev;
            append(t, e);
        }
        if (t->free_data && old && old != data)
            t->free_data(old);
        return 0;
    }
    klen = strlen(key);
    e = malloc(sizeof *e + klen + 1);
    if (e == NULL)
        return -1;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->stamp = now_ms;
    e->data = data;
    evict_to(t, t->max - 1); /* after the allocation: a failed put evicts nothing */
    e->hnext = t->bucket[h & (t->nbucket - 1)];
    t->bucket[h & (t->nbucket - 1)] = e;
    append(t, e);
    t->count++;
    grow(t);
    return 0;
}

void inst_del(struct inst_table *t, const char *key)
{
    struct inst_ent *e = find(t, key, hash_key(key));

    if (e)
        unlink_free(t, e);
}

size_t inst_expire(struct inst_table *t, uint64_t now_ms)
{
    size_t n = 0;

    /* Oldest first: the first entry still fresh ends the walk. */
    while (t->oldest && expired(t, t->oldest, now_ms)) {
        unlink_free(t, t->oldest);
        n++;
    }
    return n;
}

size_t inst_count(const struct inst_table *t)
{
    return t->count;
}

uint64_t inst_evictions(const struct inst_table *t)
{
    return t->evictions;
}
