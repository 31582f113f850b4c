/* rdrain.h - the reporter's side of Redis: synchronous hiredis calls that
 * list pending work, claim a (policy domain, day) with a lock, stream its rows
 * and delete them once the report was handed off. Keys are those of rkeys.h,
 * plus one owned here:
 *
 *   <p>:snap:{<domain>}:<day>   HASH  the rows being reported: the rpt hash
 *                                     RENAMEd at the first attempt (keeps its TTL)
 *
 * Why a snapshot: the daemon may still add rows to a day (the current day with
 * --day, or rows buffered through a Redis outage and flushed after midnight).
 * Reporting from a renamed hash means a retry re-sends exactly the same rows
 * under the same report id, HSCAN never sees the hash change (so it returns
 * each field once), and deleting the snapshot never loses a count written
 * meanwhile: those land in a fresh rpt hash and make a later report.
 *
 * Every key touched in one Lua script carries the same hash tag, so it all
 * works on Redis Cluster; the idx/days sets are updated with plain commands.
 *
 * Errors: functions return -1 and leave a reason in rdrain_errstr(). A lost
 * connection makes rdrain_broken() true; every later call then fails at once.
 * Not thread-safe (one connection, one caller). */
#ifndef PD_RDRAIN_H
#define PD_RDRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "rrow.h"

#define RDRAIN_DAY_MAX 9    /* "YYYYMMDD" + NUL */
#define RDRAIN_RID_MAX 128  /* report ids we store are far shorter */
#define RDRAIN_TOKEN_MAX 33 /* 32 hex digits + NUL */

struct rdrain;

struct rdrain_config {
    const char *redis;    /* "tcp:HOST:PORT" (HOST may be [IPv6]) or "unix:PATH" */
    const char *password; /* "" = no AUTH */
    unsigned db;
    const char *prefix;
    unsigned timeout_ms; /* connect and per-command timeout; 0 = 10 s */
};

/* rdrain_connect: connect, AUTH, SELECT, PING. NULL with the reason in err. */
struct rdrain *rdrain_connect(const struct rdrain_config *c, char *err, size_t errlen);
void rdrain_free(struct rdrain **dp);
const char *rdrain_errstr(const struct rdrain *d); /* borrowed; "" when none */
int rdrain_broken(const struct rdrain *d);         /* 1 once the connection is lost */

/* A list of strings; owned by the list. */
struct rdrain_list {
    char **v;
    size_t n;
};
void rdrain_list_free(struct rdrain_list *l);

/* rdrain_days: the days set, sorted ascending. rdrain_domains: the policy
 * domains indexed for day, sorted. 0 or -1. */
int rdrain_days(struct rdrain *d, struct rdrain_list *out);
int rdrain_domains(struct rdrain *d, const char *day, struct rdrain_list *out);
/* rdrain_forget_day: drop day from the days set when its index is empty.
 * Call it for closed days only (the daemon adds to idx before days, so for a
 * day still written to the check could race). 1 dropped, 0 kept, -1 error. */
int rdrain_forget_day(struct rdrain *d, const char *day);

/* What is stored for one (domain, day). */
struct rdrain_status {
    long long snap_rows;       /* fields in the snapshot (0 = none) */
    long long live_rows;       /* fields in the rpt hash */
    char rid[RDRAIN_RID_MAX];  /* the assigned report id, "" if none */
    char sent[RDRAIN_RID_MAX]; /* the id once handed off, "" if not */
    int locked;                /* a reporter holds the lock */
};
int rdrain_status(struct rdrain *d, const char *domain, const char *day, struct rdrain_status *st);

/* The lock. rdrain_claim: SET lock <random token> NX PX lease_ms; 1 claimed
 * (c filled), 0 held by another run, -1 error. rdrain_renew: extend the lease
 * if the lock is still ours; 1 yes, 0 lost, -1 error. rdrain_release: delete
 * it if still ours (compare-and-delete in Lua: never another run's lock). */
struct rdrain_claim {
    char domain[RROW_DOMAIN_MAX];
    char day[RDRAIN_DAY_MAX];
    char token[RDRAIN_TOKEN_MAX];
};
int rdrain_claim(struct rdrain *d, const char *domain, const char *day, unsigned lease_ms,
                 struct rdrain_claim *c);
int rdrain_renew(struct rdrain *d, const struct rdrain_claim *c, unsigned lease_ms);
int rdrain_release(struct rdrain *d, const struct rdrain_claim *c);

/* rdrain_snapshot: make sure the snapshot exists: keep it if there is one,
 * else RENAME the rpt hash to it (atomically, in Lua). 1 = a snapshot to
 * report, 0 = no data at all, -1 error. Call it holding the lock. */
int rdrain_snapshot(struct rdrain *d, const char *domain, const char *day);

/* rdrain_policy: the policy snapshot and first/last seen of (domain, day).
 * 1 found and decoded, 0 absent or undecodable (reason in errstr), -1 error.
 * first/last are 0 when absent. */
int rdrain_policy(struct rdrain *d, const char *domain, const char *day, struct rrow_policy *pol,
                  long long *first, long long *last);

/* rdrain_rid: the report id of (domain, day): SET rid candidate NX PX ttl_ms,
 * then GET, so the first attempt's id wins and re-sends reuse it. The id is
 * written into out. 0 or -1. */
int rdrain_rid(struct rdrain *d, const char *domain, const char *day, const char *candidate,
               unsigned long long ttl_ms, char *out, size_t outlen);
/* rdrain_mark_sent: SET sent rid PX ttl_ms (the hand-off happened). 0 or -1. */
int rdrain_mark_sent(struct rdrain *d, const char *domain, const char *day, const char *rid,
                     unsigned long long ttl_ms);
/* rdrain_delete: the report is done: DEL snapshot, rid and sent; when no new
 * rows arrived meanwhile (no rpt hash), also DEL pol and SREM the domain from
 * the day index (re-added if a row raced in). 1 all gone, 0 new rows remain
 * for a later report, -1 error. */
int rdrain_delete(struct rdrain *d, const char *domain, const char *day);

/* Streaming the rows: HSCAN in batches of about `count` fields, so memory is
 * bounded by one batch whatever the size of the hash. */
enum rdrain_which { RDRAIN_SNAP = 0, RDRAIN_LIVE };
struct rdrain_scan;
struct rdrain_scan *rdrain_scan_open(struct rdrain *d, const char *domain, const char *day,
                                     enum rdrain_which which, unsigned count);
/* rdrain_scan_next: 1 with the next row (field borrowed until the next call;
 * *count parsed from the value, 0 if it is not a positive integer), 0 at the
 * end, -1 on error. */
int rdrain_scan_next(struct rdrain_scan *s, const char **field, size_t *flen, uint64_t *count);
void rdrain_scan_free(struct rdrain_scan **sp);

#endif
