/* rdrain.c - synchronous Redis access for the reporter (see rdrain.h): one
 * blocking hiredis connection, a command at a time; the reporter is a batch
 * program, so simplicity wins over pipelining here. Multi-key updates that
 * must be atomic are small Lua scripts on keys of one hash tag. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "raddr.h"
#include "rdrain.h"
#include "rkeys.h"

struct rdrain {
    redisContext *c;
    char *prefix;
    int broken;
    char err[256];
};

struct rdrain_scan {
    struct rdrain *d;
    char key[RKEY_MAX];
    char cursor[32];
    char count[16];
    redisReply *batch; /* the last HSCAN reply */
    size_t pos;        /* next field index in batch's element array */
    int done;          /* the cursor came back to 0 */
};

static void set_err(struct rdrain *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct rdrain *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof(d->err), fmt, ap);
    va_end(ap);
}

const char *rdrain_errstr(const struct rdrain *d)
{
    return d ? d->err : "";
}

int rdrain_broken(const struct rdrain *d)
{
    return d == NULL || d->broken;
}

/* cmd: run one command; the reply (caller frees) or NULL with d->err set.
 * An error reply is a failure of that command only; an I/O error breaks the
 * connection for good (hiredis contexts cannot be reused after one). */
static redisReply *cmd(struct rdrain *d, int argc, const char **argv, const size_t *lens)
{
    redisReply *r;
    size_t l[16];

    if (d->broken) {
        if (d->err[0] == '\0')
            set_err(d, "redis connection lost");
        return NULL;
    }
    if (lens == NULL) {
        for (int i = 0; i < argc && i < 16; i++)
            l[i] = strlen(argv[i]);
        lens = l;
    }
    r = redisCommandArgv(d->c, argc, argv, lens);
    if (r == NULL) {
        d->broken = 1;
        set_err(d, "redis: %s", d->c->errstr[0] ? d->c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_err(d, "redis %s: %.*s", argv[0], (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* cmd_ok: run a command, discard the reply. 0 or -1. */
static int cmd_ok(struct rdrain *d, int argc, const char **argv)
{
    redisReply *r = cmd(d, argc, argv, NULL);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* cmd_int: a command whose reply is an integer (nil counts as 0). */
static int cmd_int(struct rdrain *d, int argc, const char **argv, long long *out)
{
    redisReply *r = cmd(d, argc, argv, NULL);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        *out = r->integer;
    else if (r->type == REDIS_REPLY_NIL)
        *out = 0;
    else {
        set_err(d, "redis %s: unexpected reply type %d", argv[0], r->type);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

/* cmd_str: a command whose reply is a string or nil ("" then). */
static int cmd_str(struct rdrain *d, int argc, const char **argv, char *out, size_t outlen)
{
    redisReply *r = cmd(d, argc, argv, NULL);
    if (r == NULL)
        return -1;
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        snprintf(out, outlen, "%.*s", (int)r->len, r->str);
    else if (r->type != REDIS_REPLY_NIL) {
        set_err(d, "redis %s: unexpected reply type %d", argv[0], r->type);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

struct rdrain *rdrain_connect(const struct rdrain_config *c, char *err, size_t errlen)
{
    struct rdrain *d;
    char *host, *path, db[16];
    int port = 0;
    unsigned ms = c->timeout_ms ? c->timeout_ms : 10000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    if (raddr_parse(c->redis, &host, &port, &path) < 0) {
        snprintf(err, errlen, "redis: bad address \"%s\"", c->redis ? c->redis : "");
        return NULL;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL || (d->prefix = strdup(c->prefix)) == NULL) {
        free(d);
        free(host);
        free(path);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->c = path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
    free(host);
    free(path);
    if (d->c == NULL || d->c->err) {
        snprintf(err, errlen, "redis %s: %s", c->redis, d->c ? d->c->errstr : "out of memory");
        rdrain_free(&d);
        return NULL;
    }
    redisSetTimeout(d->c, tv);
    if (c->password && c->password[0]) {
        const char *argv[] = {"AUTH", c->password};
        if (cmd_ok(d, 2, argv) < 0)
            goto fail;
    }
    if (c->db != 0) {
        snprintf(db, sizeof(db), "%u", c->db);
        const char *argv[] = {"SELECT", db};
        if (cmd_ok(d, 2, argv) < 0)
            goto fail;
    }
    const char *ping[] = {"PING"};
    if (cmd_ok(d, 1, ping) < 0)
        goto fail;
    return d;
fail:
    snprintf(err, errlen, "%s", d->err);
    rdrain_free(&d);
    return NULL;
}

void rdrain_free(struct rdrain **dp)
{
    if (dp == NULL || *dp == NULL)
        return;
    if ((*dp)->c)
        redisFree((*dp)->c);
    free((*dp)->prefix);
    free(*dp);
    *dp = NULL;
}

void rdrain_list_free(struct rdrain_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* smembers_sorted: SMEMBERS key into out, sorted. Sets are small here (days,
 * domains of one day), so one reply is fine. */
static int smembers_sorted(struct rdrain *d, const char *key, struct rdrain_list *out)
{
    const char *argv[] = {"SMEMBERS", key};
    redisReply *r = cmd(d, 2, argv, NULL);

    out->v = NULL;
    out->n = 0;
    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        set_err(d, "redis SMEMBERS: unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    if (r->elements > 0 && (out->v = calloc(r->elements, sizeof(char *))) == NULL)
        goto oom;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || memchr(e->str, '\0', e->len))
            continue;
        if ((out->v[out->n] = strndup(e->str, e->len)) == NULL)
            goto oom;
        out->n++;
    }
    freeReplyObject(r);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(char *), cmp_str);
    return 0;
oom:
    freeReplyObject(r);
    rdrain_list_free(out);
    set_err(d, "out of memory");
    return -1;
}

int rdrain_days(struct rdrain *d, struct rdrain_list *out)
{
    char key[RKEY_MAX];
    rkey_days(key, sizeof(key), d->prefix);
    return smembers_sorted(d, key, out);
}

int rdrain_domains(struct rdrain *d, const char *day, struct rdrain_list *out)
{
    char key[RKEY_MAX];
    rkey_idx(key, sizeof(key), d->prefix, day);
    return smembers_sorted(d, key, out);
}

int rdrain_forget_day(struct rdrain *d, const char *day)
{
    char idx[RKEY_MAX], days[RKEY_MAX];
    long long n;

    rkey_idx(idx, sizeof(idx), d->prefix, day);
    rkey_days(days, sizeof(days), d->prefix);
    const char *scard[] = {"SCARD", idx};
    if (cmd_int(d, 2, scard, &n) < 0)
        return -1;
    if (n > 0)
        return 0;
    const char *srem[] = {"SREM", days, day};
    return cmd_int(d, 3, srem, &n) < 0 ? -1 : 1;
}

/* snap_key: "<p>:snap:{<domain>}:<day>", derived from the rpt key so the
 * domain escaping (and so the hash tag) is exactly rkeys.c's. */
static int snap_key(char *buf, size_t sz, const char *prefix, const char *domain, const char *day)
{
    char rpt[RKEY_MAX];
    size_t pl = strlen(prefix);
    int n = rkey_rpt(rpt, sizeof(rpt), prefix, domain, day);

    if (n < 0 || (size_t)n < pl + 5)
        return -1;
    n = snprintf(buf, sz, "%s:snap:%s", prefix, rpt + pl + 5); /* skip "<p>:rpt:" */
    return n < 0 || (size_t)n >= sz ? -1 : n;
}

/* Keys of one (domain, day). */
struct dkeys {
    char rpt[RKEY_MAX], pol[RKEY_MAX], snap[RKEY_MAX], lock[RKEY_MAX], sent[RKEY_MAX],
        rid[RKEY_MAX];
};

static int dkeys(struct rdrain *d, const char *domain, const char *day, struct dkeys *k)
{
    if (rkey_rpt(k->rpt, sizeof(k->rpt), d->prefix, domain, day) < 0 ||
        rkey_pol(k->pol, sizeof(k->pol), d->prefix, domain, day) < 0 ||
        snap_key(k->snap, sizeof(k->snap), d->prefix, domain, day) < 0 ||
        rkey_lock(k->lock, sizeof(k->lock), d->prefix, domain, day) < 0 ||
        rkey_sent(k->sent, sizeof(k->sent), d->prefix, domain, day) < 0 ||
        rkey_rid(k->rid, sizeof(k->rid), d->prefix, domain, day) < 0) {
        set_err(d, "key too long for domain \"%.64s\"", domain);
        return -1;
    }
    return 0;
}

int rdrain_status(struct rdrain *d, const char *domain, const char *day, struct rdrain_status *st)
{
    struct dkeys k;
    long long locked;

    memset(st, 0, sizeof(*st));
    if (dkeys(d, domain, day, &k) < 0)
        return -1;
    const char *a1[] = {"HLEN", k.snap};
    const char *a2[] = {"HLEN", k.rpt};
    const char *a3[] = {"GET", k.rid};
    const char *a4[] = {"GET", k.sent};
    const char *a5[] = {"EXISTS", k.lock};
    if (cmd_int(d, 2, a1, &st->snap_rows) < 0 || cmd_int(d, 2, a2, &st->live_rows) < 0 ||
        cmd_str(d, 2, a3, st->rid, sizeof(st->rid)) < 0 ||
        cmd_str(d, 2, a4, st->sent, sizeof(st->sent)) < 0 || cmd_int(d, 2, a5, &locked) < 0)
        return -1;
    st->locked = locked > 0;
    return 0;
}

static int random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[32];

    if (nbytes > sizeof(b) || getrandom(b, nbytes, 0) != (ssize_t)nbytes)
        return -1;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return 0;
}

int rdrain_claim(struct rdrain *d, const char *domain, const char *day, unsigned lease_ms,
                 struct rdrain_claim *c)
{
    struct dkeys k;
    char ms[16], res[16];

    if (dkeys(d, domain, day, &k) < 0)
        return -1;
    if (random_hex(c->token, 16) < 0) {
        set_err(d, "getrandom: %s", strerror(errno));
        return -1;
    }
    snprintf(c->domain, sizeof(c->domain), "%s", domain);
    snprintf(c->day, sizeof(c->day), "%s", day);
    snprintf(ms, sizeof(ms), "%u", lease_ms);
    const char *argv[] = {"SET", k.lock, c->token, "NX", "PX", ms};
    if (cmd_str(d, 6, argv, res, sizeof(res)) < 0)
        return -1;
    return strcmp(res, "OK") == 0 ? 1 : 0;
}

/* Compare-and-act on the lock: only the holder of the token may extend or
 * delete it (a run whose lease expired must not free a lock another run took). */
static const char lua_renew[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
static const char lua_release[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) end return 0";

int rdrain_renew(struct rdrain *d, const struct rdrain_claim *c, unsigned lease_ms)
{
    struct dkeys k;
    char ms[16];
    long long n;

    if (dkeys(d, c->domain, c->day, &k) < 0)
        return -1;
    snprintf(ms, sizeof(ms), "%u", lease_ms);
    const char *argv[] = {"EVAL", lua_renew, "1", k.lock, c->token, ms};
    if (cmd_int(d, 6, argv, &n) < 0)
        return -1;
    return n == 1 ? 1 : 0;
}

int rdrain_release(struct rdrain *d, const struct rdrain_claim *c)
{
    struct dkeys k;
    long long n;

    if (dkeys(d, c->domain, c->day, &k) < 0)
        return -1;
    const char *argv[] = {"EVAL", lua_release, "1", k.lock, c->token};
    return cmd_int(d, 5, argv, &n) < 0 ? -1 : 0;
}

/* KEYS: snap, rpt. A snapshot left by an earlier attempt is reported as it
 * is (same rows for the same report id); else the live hash becomes it. */
static const char lua_snapshot[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end "
                                   "if redis.call('EXISTS', KEYS[2]) == 1 then "
                                   "redis.call('RENAME', KEYS[2], KEYS[1]) return 1 end "
                                   "return 0";

int rdrain_snapshot(struct rdrain *d, const char *domain, const char *day)
{
    struct dkeys k;
    long long n;

    if (dkeys(d, domain, day, &k) < 0)
        return -1;
    const char *argv[] = {"EVAL", lua_snapshot, "2", k.snap, k.rpt};
    if (cmd_int(d, 5, argv, &n) < 0)
        return -1;
    return n == 1 ? 1 : 0;
}

int rdrain_policy(struct rdrain *d, const char *domain, const char *day, struct rrow_policy *pol,
                  long long *first, long long *last)
{
    struct dkeys k;
    redisReply *r;
    int rc = 0;

    *first = *last = 0;
    if (dkeys(d, domain, day, &k) < 0)
        return -1;
    const char *argv[] = {"HMGET", k.pol, "policy", "first", "last"};
    if ((r = cmd(d, 5, argv, NULL)) == NULL)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        set_err(d, "redis HMGET: unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING)
        set_err(d, "no policy snapshot");
    else if (rrow_policy_decode(r->element[0]->str, r->element[0]->len, pol) < 0)
        set_err(d, "malformed policy snapshot");
    else
        rc = 1;
    if (r->element[1]->type == REDIS_REPLY_STRING)
        *first = strtoll(r->element[1]->str, NULL, 10);
    if (r->element[2]->type == REDIS_REPLY_STRING)
        *last = strtoll(r->element[2]->str, NULL, 10);
    freeReplyObject(r);
    return rc;
}

int rdrain_rid(struct rdrain *d, const char *domain, const char *day, const char *candidate,
               unsigned long long ttl_ms, char *out, size_t outlen)
{
    struct dkeys k;
    char ms[32], res[16];

    if (dkeys(d, domain, day, &k) < 0)
        return -1;
    snprintf(ms, sizeof(ms), "%llu", ttl_ms);
    const char *set[] = {"SET", k.rid, candidate, "NX", "PX", ms};
    const char *get[] = {"GET", k.rid};
    if (cmd_str(d, 6, set, res, sizeof(res)) < 0 || cmd_str(d, 2, get, out, outlen) < 0)
        return -1;
    if (out[0] == '\0') {
        set_err(d, "report id vanished");
        return -1;
    }
    return 0;
}

int rdrain_mark_sent(struct rdrain *d, const char *domain, const char *day, const char *rid,
                     unsigned long long ttl_ms)
{
    struct dkeys k;
    char ms[32];

    if (dkeys(d, domain, day, &k) < 0)
        return -1;
    snprintf(ms, sizeof(ms), "%llu", ttl_ms);
    const char *argv[] = {"SET", k.sent, rid, "PX", ms};
    return cmd_ok(d, 5, argv);
}

/* KEYS: snap, rid, sent, rpt, pol. The policy hash goes only with the last
 * rows: rows that raced in after the snapshot still need it. */
static const char lua_delete[] = "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) "
                                 "if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end "
                                 "redis.call('DEL', KEYS[5]) return 1";

int rdrain_delete(struct rdrain *d, const char *domain, const char *day)
{
    struct dkeys k;
    char idx[RKEY_MAX];
    long long gone, n;

    if (dkeys(d, domain, day, &k) < 0)
        return -1;
    const char *argv[] = {"EVAL", lua_delete, "5", k.snap, k.rid, k.sent, k.rpt, k.pol};
    if (cmd_int(d, 8, argv, &gone) < 0)
        return -1;
    if (!gone)
        return 0;
    /* idx lives in another slot: plain commands. The daemon writes a row
     * (HINCRBY) before its SADD, so if no rpt exists after our SREM, any row
     * arriving later brings its own SADD; if one exists, put the domain back. */
    rkey_idx(idx, sizeof(idx), d->prefix, day);
    const char *srem[] = {"SREM", idx, domain};
    const char *exists[] = {"EXISTS", k.rpt};
    if (cmd_int(d, 3, srem, &n) < 0 || cmd_int(d, 2, exists, &n) < 0)
        return -1;
    if (n > 0) {
        const char *sadd[] = {"SADD", idx, domain};
        if (cmd_int(d, 3, sadd, &n) < 0)
            return -1;
        return 0;
    }
    return 1;
}

struct rdrain_scan *rdrain_scan_open(struct rdrain *d, const char *domain, const char *day,
                                     enum rdrain_which which, unsigned count)
{
    struct rdrain_scan *s;
    struct dkeys k;

    if (dkeys(d, domain, day, &k) < 0)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        set_err(d, "out of memory");
        return NULL;
    }
    s->d = d;
    snprintf(s->key, sizeof(s->key), "%s", which == RDRAIN_SNAP ? k.snap : k.rpt);
    snprintf(s->cursor, sizeof(s->cursor), "0");
    snprintf(s->count, sizeof(s->count), "%u", count ? count : 1000);
    return s;
}

/* fetch: the next HSCAN batch. 0 or -1. */
static int fetch(struct rdrain_scan *s)
{
    redisReply *r;
    const char *argv[] = {"HSCAN", s->key, s->cursor, "COUNT", s->count};

    if (s->batch) {
        freeReplyObject(s->batch);
        s->batch = NULL;
    }
    if ((r = cmd(s->d, 5, argv, NULL)) == NULL)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(s->cursor) ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2 != 0) {
        set_err(s->d, "redis HSCAN: unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    memcpy(s->cursor, r->element[0]->str, r->element[0]->len);
    s->cursor[r->element[0]->len] = '\0';
    s->done = strcmp(s->cursor, "0") == 0;
    s->batch = r;
    s->pos = 0;
    return 0;
}

int rdrain_scan_next(struct rdrain_scan *s, const char **field, size_t *flen, uint64_t *count)
{
    for (;;) {
        if (s->batch && s->pos + 1 < s->batch->element[1]->elements) {
            redisReply *f = s->batch->element[1]->element[s->pos];
            redisReply *v = s->batch->element[1]->element[s->pos + 1];
            char num[32], *end;
            s->pos += 2;
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            *field = f->str;
            *flen = f->len;
            *count = 0;
            if (v->len > 0 && v->len < sizeof(num) && v->str[0] >= '0' && v->str[0] <= '9') {
                memcpy(num, v->str, v->len);
                num[v->len] = '\0';
                errno = 0;
                unsigned long long c = strtoull(num, &end, 10);
                if (*end == '\0' && errno == 0)
                    *count = c;
            }
            return 1;
        }
        if (s->batch && s->done)
            return 0;
        if (fetch(s) < 0)
            return -1;
    }
}

void rdrain_scan_free(struct rdrain_scan **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    if ((*sp)->batch)
        freeReplyObject((*sp)->batch);
    free(*sp);
    *sp = NULL;
}
