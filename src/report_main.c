/* report_main.c - policyd-dmarc-report: drains the counters the daemon keeps
 * in Redis into DMARC aggregate reports, one per policy domain and UTC day,
 * and hands them to the local MTA (or writes them to a directory).
 *
 * For each (day, domain), in this order (the order is what makes a report go
 * out exactly once; docs/policyd-dmarc-report.8 explains it to operators):
 *   1. claim the lock (SET NX PX, a random token; skip if another run has it);
 *   2. if `sent` is set, the hand-off already happened: only delete the data;
 *   3. snapshot: the rows hash is RENAMEd aside (kept if an earlier attempt
 *      made it), so a retry reports exactly the same rows;
 *   4. the report id: SET rid NX (the first attempt's id wins forever after);
 *   5. stream the rows (HSCAN batches) into the gzip XML file;
 *   6. check the destinations (mailto:, size limits, external authorisation);
 *   7. renew the lock (still ours?), hand the mail to sendmail;
 *   8. on success SET sent, then delete the data; on failure keep everything;
 *   9. release the lock (compare-and-delete).
 * A crash between 7 and 8 re-sends the same report (same id) on the next run;
 * a crash between 8's two steps does not re-send (sent is set).
 *
 * Exit codes (cron): 0 done or nothing to do, 1 usage/config error, 2 Redis
 * unreachable, 3 some reports failed (data kept for the next run), 4 the run
 * was cut short (Redis lost mid-run, or a signal): what was done is done. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sys/random.h>

#include "cfg.h"
#include "dmarc.h"
#include "dns.h"
#include "log.h"
#include "rdest.h"
#include "rdrain.h"
#include "rkeys.h"
#include "rmail.h"
#include "rxml.h"

enum {
    EX_DONE = 0,
    EX_USAGE = 1,
    EX_REDIS = 2,
    EX_FAILED = 3,
    EX_CUT = 4,
};

#define LEASE_MS 60000u /* lock lease; renewed every RENEW_S while working */
#define RENEW_S 15
#define SCAN_BATCH 1000u /* HSCAN COUNT: rows held in memory at once, about */
#define DAY_S 86400LL

/* The only global: set from the signal handler, read between steps. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

struct opts {
    const char *config;
    char day[RDRAIN_DAY_MAX]; /* --day as YYYYMMDD, "" = every closed day */
    char domain[RROW_DOMAIN_MAX];
    const char *output_dir;
    int list, dry_run, keep, verbose, quiet;
};

struct run {
    struct opts o;
    struct pd_config *cfg;
    struct rdrain *rd;
    struct event_base *base; /* private loop for DNS lookups, made on first need */
    struct dns_resolver *dns;
    char tmpdir[256]; /* mail mode: where report files are built */
    char today[RDRAIN_DAY_MAX];
    const char *org;
    int progress; /* a line per domain on stderr */
    unsigned done, failed, dropped, locked;
    int cut; /* Redis lost or signal: stop */
};

/* ---------------------------------------------------------------- output */

/* say: a progress line for a human (terminal or -v). */
static void say(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct run *r, const char *fmt, ...)
{
    va_list ap;
    if (!r->progress)
        return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* problem: logged, and on stderr too (cron mails it) unless -q or the log
 * already goes to stderr. */
static void problem(const struct run *r, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(const struct run *r, enum log_level lvl, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_msg(lvl, "%s", buf);
    if (!r->o.quiet && (r->cfg == NULL || r->cfg->log_target != LOG_T_STDERR))
        fprintf(stderr, "policyd-dmarc-report: %s\n", buf);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: policyd-dmarc-report [-c FILE] [--day YYYY-MM-DD] [--domain DOMAIN]\n"
                 "                            [--list | --dry-run | --output-dir DIR [--keep]]\n"
                 "                            [-v | -q]\n"
                 "  -c, --config FILE    configuration file (default " CFG_DEFAULT_PATH ")\n"
                 "      --day DAY        only this UTC day (the current one allowed)\n"
                 "      --domain DOMAIN  only this policy domain\n"
                 "      --list           list pending work (day, domain, rows, messages)\n"
                 "  -n, --dry-run        say what would be sent; change nothing\n"
                 "  -o, --output-dir DIR write the .xml.gz reports to DIR instead of mailing\n"
                 "      --keep           with --output-dir: keep the data in Redis\n"
                 "  -v, --verbose        progress lines even when not on a terminal\n"
                 "  -q, --quiet          nothing on stderr but usage/config errors\n"
                 "  -V, --version, -h, --help\n"
                 "exit: 0 done, 1 usage/config, 2 Redis unreachable, 3 reports failed\n"
                 "      (kept for the next run), 4 run cut short\n");
}

/* ---------------------------------------------------------------- days */

/* day_start: unix time of 00:00 UTC of "YYYYMMDD", -1 if not a date. */
static long long day_start(const char *day)
{
    struct tm tm = {0};
    int y, m, d;
    char chk[32];

    if (strlen(day) != 8 || strspn(day, "0123456789") != 8 ||
        sscanf(day, "%4d%2d%2d", &y, &m, &d) != 3)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    time_t t = timegm(&tm);
    snprintf(chk, sizeof(chk), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (t == (time_t)-1 || strcmp(chk, day) != 0) /* 20260231 normalised away */
        return -1;
    return (long long)t;
}

static void day_pretty(char *buf, size_t sz, const char *day)
{
    snprintf(buf, sz, "%.4s-%.2s-%.2s", day, day + 4, day + 6);
}

/* ---------------------------------------------------------------- DNS */

struct txtwait {
    int done;
    enum dns_status status;
    int authorised;
};

static void on_txt(const struct dns_result *res, void *arg)
{
    struct txtwait *w = arg;
    w->status = res->status;
    for (size_t i = 0; res->status == DNS_OK && i < res->n; i++)
        if (dmarc_record_is_dmarc((const char *)res->rr[i].data, res->rr[i].len))
            w->authorised = 1;
    w->done = 1;
}

static int dns_setup(struct run *r, char *err, size_t errlen)
{
    struct dns_config dc;

    if (r->dns)
        return 0;
    dns_config_defaults(&dc);
    dc.timeout_ms = r->cfg->dns_timeout_ms;
    dc.attempts = r->cfg->dns_retries + 1;
    for (size_t i = 0; i < r->cfg->dns_servers.n; i++) {
        if (dc.nservers == DNS_MAX_SERVERS ||
            dns_parse_server(r->cfg->dns_servers.items[i], &dc.servers[dc.nservers],
                             &dc.server_lens[dc.nservers]) < 0) {
            snprintf(err, errlen, "dns_servers: bad server \"%s\"", r->cfg->dns_servers.items[i]);
            return -1;
        }
        dc.nservers++;
    }
    if (dc.nservers == 0 && dns_servers_from_resolv_conf(&dc, "/etc/resolv.conf") <= 0) {
        snprintf(err, errlen, "dns_servers is not set and /etc/resolv.conf names no server");
        return -1;
    }
    if ((r->base = event_base_new()) == NULL || (r->dns = dns_new(r->base, &dc)) == NULL) {
        snprintf(err, errlen, "cannot create the DNS resolver");
        return -1;
    }
    return 0;
}

/* authorised: the RFC 9989 check for an external destination. 1 yes, 0 no
 * (the answer says so), -1 temporary failure (try again next run). */
static int authorised(struct run *r, const char *policy_domain, const char *dest_domain)
{
    char name[600], err[256];
    struct txtwait w = {0};
    struct dns_query *q;

    if (rdest_auth_name(name, sizeof(name), policy_domain, dest_domain) < 0)
        return 0;
    if (dns_setup(r, err, sizeof(err)) < 0) {
        problem(r, LOG_L_ERROR, "%s", err);
        return -1;
    }
    if ((q = dns_lookup(r->dns, name, DNS_T_TXT, on_txt, &w)) == NULL)
        return 0; /* not a valid name: nobody can have authorised it */
    while (!w.done)
        if (event_base_loop(r->base, EVLOOP_ONCE) < 0)
            return -1;
    if (w.status == DNS_SERVFAIL || w.status == DNS_TIMEOUT)
        return -1;
    return w.authorised;
}

/* ---------------------------------------------------------------- one report */

/* Where one report goes. */
struct plan {
    struct rdest dest[RDEST_MAX];
    size_t ndest;
    int temporary; /* a destination could not be checked now */
};

/* plan_dests: the destinations of pol's rua that may receive the report
 * (size limits are applied later, once the size is known). */
static void plan_dests(struct run *r, const char *day, const struct rrow_policy *pol,
                       struct plan *p)
{
    struct rdest all[RDEST_MAX];
    size_t skipped, n = rdest_parse(pol->rua, all, RDEST_MAX, &skipped);

    p->ndest = 0;
    p->temporary = 0;
    if (skipped)
        log_kv(LOG_L_INFO, "rua_skipped", "domain", pol->domain, "day", day, "rua", pol->rua,
               "reason", "not a usable mailto: URI", NULL);
    for (size_t i = 0; i < n; i++) {
        if (!rdest_internal(pol->domain, all[i].domain)) {
            int a = authorised(r, pol->domain, all[i].domain);
            if (a == 0) {
                problem(r, LOG_L_WARNING,
                        "%s %s: %s not authorised (no v=DMARC1 TXT at %s._report._dmarc.%s): "
                        "not sent there",
                        day, pol->domain, all[i].addr, pol->domain, all[i].domain);
                continue;
            }
            if (a < 0) {
                problem(r, LOG_L_WARNING,
                        "%s %s: cannot verify %s now (DNS temporary failure): report kept", day,
                        pol->domain, all[i].addr);
                p->temporary = 1;
                continue;
            }
        }
        p->dest[p->ndest++] = all[i];
    }
}

static void make_rid(char *buf, size_t sz, const char *day, const char *domain)
{
    uint32_t h = 2166136261u; /* FNV-1a: a short, stable tag of the domain */
    unsigned char rnd[4] = {0};

    for (const char *p = domain; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        memcpy(rnd, &ts.tv_nsec, sizeof(rnd));
    }
    snprintf(buf, sz, "%s.%08x.%02x%02x%02x%02x", day, (unsigned)h, rnd[0], rnd[1], rnd[2], rnd[3]);
}

struct built {
    char path[1024];
    unsigned long long rows, messages, refused;
    long long size;
};

/* build: stream the rows of (domain, day) into a report at path. 1 written,
 * 0 nothing reportable (no valid row), -1 failure (reason logged). The lock
 * c (may be NULL) is renewed along the way; losing it is a failure. */
static int build(struct run *r, const char *day, const char *domain, enum rdrain_which which,
                 const struct rxml_meta *meta, const struct rdrain_claim *c, struct built *b)
{
    char err[512];
    struct rxml *x;
    struct rdrain_scan *s;
    const char *field;
    size_t flen;
    uint64_t count;
    struct rrow row;
    time_t renewed = time(NULL);
    struct stat st;
    int rc;

    b->rows = b->messages = b->refused = 0;
    if ((x = rxml_open(b->path, meta, err, sizeof(err))) == NULL) {
        problem(r, LOG_L_ERROR, "%s %s: %s", day, domain, err);
        return -1;
    }
    if ((s = rdrain_scan_open(r->rd, domain, day, which, SCAN_BATCH)) == NULL) {
        rxml_abort(&x);
        return -1;
    }
    while ((rc = rdrain_scan_next(s, &field, &flen, &count)) == 1) {
        if (g_stop) {
            rc = -1;
            break;
        }
        if (c && time(NULL) - renewed >= RENEW_S) {
            if (rdrain_renew(r->rd, c, LEASE_MS) != 1) {
                problem(r, LOG_L_ERROR, "%s %s: lost the lock while reading rows", day, domain);
                rc = -1;
                break;
            }
            renewed = time(NULL);
        }
        if (count == 0 || rrow_decode(field, flen, &row) < 0) {
            log_kv(LOG_L_WARNING, "row_skipped", "domain", domain, "day", day, "reason",
                   count == 0 ? "bad count" : "undecodable row", NULL);
            b->refused++;
            continue;
        }
        if (rxml_add_row(x, &row, count) < 0) {
            /* rxml refuses rows the schema cannot hold ("row ..."), the
             * report stays usable; anything else is an I/O failure. */
            if (strncmp(rxml_errstr(x), "row", 3) == 0) {
                log_kv(LOG_L_WARNING, "row_skipped", "domain", domain, "day", day, "reason",
                       rxml_errstr(x), NULL);
                b->refused++;
                continue;
            }
            problem(r, LOG_L_ERROR, "%s %s: %s", day, domain, rxml_errstr(x));
            rc = -1;
            break;
        }
        b->rows++;
        b->messages += count;
    }
    rdrain_scan_free(&s);
    if (rc < 0) {
        if (rdrain_broken(r->rd))
            problem(r, LOG_L_ERROR, "%s %s: %s", day, domain, rdrain_errstr(r->rd));
        rxml_abort(&x);
        return -1;
    }
    if (b->rows == 0) {
        rxml_abort(&x);
        return 0;
    }
    if (rxml_close(&x, err, sizeof(err)) < 0) {
        problem(r, LOG_L_ERROR, "%s %s: %s", day, domain, err);
        unlink(b->path);
        return -1;
    }
    b->size = stat(b->path, &st) == 0 ? (long long)st.st_size : 0;
    return 1;
}

/* finish: the hand-off succeeded (or the data is to be dropped): mark sent
 * (when rid is given) and delete. 0 or -1. */
static int finish(struct run *r, const char *day, const char *domain, const char *rid)
{
    unsigned long long ttl = r->cfg->counter_retention_ms;

    if (rid && rdrain_mark_sent(r->rd, domain, day, rid, ttl) < 0)
        goto fail;
    if (rdrain_delete(r->rd, domain, day) < 0)
        goto fail;
    return 0;
fail:
    problem(r, LOG_L_ERROR, "%s %s: cannot delete the reported data: %s", day, domain,
            rdrain_errstr(r->rd));
    return -1;
}

/* join: "a, b" of the destinations (for logs and the listing). */
static void join(char *buf, size_t sz, const struct rdest *d, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < sz; i++) {
        int k = snprintf(buf + len, sz - len, "%s%s", i ? "," : "", d[i].addr);
        if (k < 0)
            break;
        len += (size_t)k;
    }
}

enum outcome { OUT_DONE, OUT_NOTHING, OUT_LOCKED, OUT_DROPPED, OUT_FAILED };

/* one_report: everything for (day, domain) under its lock. */
static enum outcome one_report(struct run *r, const char *day, const char *domain)
{
    const int mutate = !r->o.dry_run && !r->o.keep;
    const int mail = r->o.output_dir == NULL;
    struct rdrain_claim claim, *c = NULL;
    struct rdrain_status st;
    struct rrow_policy pol;
    struct plan plan = {0};
    struct built b = {0};
    struct rxml_meta meta;
    enum rdrain_which which;
    enum outcome out = OUT_FAILED;
    char rid[RDRAIN_RID_MAX], cand[RDRAIN_RID_MAX], fname[512], pday[16], to[2048], err[512];
    long long first, last, begin = day_start(day);
    int k;

    day_pretty(pday, sizeof(pday), day);
    if (begin < 0) {
        problem(r, LOG_L_WARNING, "day \"%s\" in Redis is not a date: skipped", day);
        return OUT_FAILED;
    }
    /* A dry run takes no lock: it must not make a real run skip the pair. */
    if (!r->o.dry_run) {
        k = rdrain_claim(r->rd, domain, day, LEASE_MS, &claim);
        if (k < 0)
            goto redis_err;
        if (k == 0) {
            say(r, "%s %s: locked by another run, skipped", pday, domain);
            return OUT_LOCKED;
        }
        c = &claim;
    }
    if (rdrain_status(r->rd, domain, day, &st) < 0)
        goto redis_err;
    if (st.sent[0]) {
        /* handed off by an earlier run that stopped before deleting */
        if (mutate && finish(r, day, domain, NULL) < 0)
            goto out;
        say(r, "%s %s: already sent (report id %s)%s", pday, domain, st.sent,
            mutate ? ", data deleted" : "");
        out = OUT_DONE;
        goto out;
    }
    if (mutate) {
        if ((k = rdrain_snapshot(r->rd, domain, day)) < 0)
            goto redis_err;
        which = RDRAIN_SNAP;
    } else {
        k = st.snap_rows > 0 || st.live_rows > 0;
        which = st.snap_rows > 0 ? RDRAIN_SNAP : RDRAIN_LIVE;
    }
    if (k == 0) {
        out = OUT_NOTHING; /* another run finished it meanwhile */
        goto out;
    }
    k = rdrain_policy(r->rd, domain, day, &pol, &first, &last);
    if (k < 0)
        goto redis_err;
    if (k == 0) {
        problem(r, LOG_L_WARNING, "%s %s: %s: cannot report, data %s", pday, domain,
                rdrain_errstr(r->rd), mutate ? "dropped" : "kept");
        if (mutate && finish(r, day, domain, NULL) < 0)
            goto out;
        out = OUT_DROPPED;
        goto out;
    }
    if (mail) {
        plan_dests(r, pday, &pol, &plan);
        if (plan.ndest == 0 && !plan.temporary) {
            log_kv(LOG_L_INFO, "report_dropped", "domain", domain, "day", pday, "rua", pol.rua,
                   "reason", "no destination may receive it", NULL);
            say(r, "%s %s: no usable rua destination, data %s", pday, domain,
                mutate ? "dropped" : "would be dropped");
            if (mutate && finish(r, day, domain, NULL) < 0)
                goto out;
            out = OUT_DROPPED;
            goto out;
        }
        if (plan.temporary) /* all or nothing: no destination gets it twice */
            goto out;
    }

    /* the report id: the stored one, else a new one (stored unless read-only) */
    make_rid(cand, sizeof(cand), day, domain);
    if (mutate) {
        if (rdrain_rid(r->rd, domain, day, cand, r->cfg->counter_retention_ms, rid, sizeof(rid)) <
            0)
            goto redis_err;
    } else {
        snprintf(rid, sizeof(rid), "%s", st.rid[0] ? st.rid : cand);
    }

    meta = (struct rxml_meta){
        .format = r->cfg->report_format == CFG_REPORT_RFC7489 ? RXML_RFC7489 : RXML_RFC9990,
        .org_name = r->org,
        .email = r->cfg->report_email,
        .extra_contact = r->cfg->report_extra_contact ? r->cfg->report_extra_contact : "",
        .report_id = rid,
        .begin = begin,
        .end = begin + DAY_S - 1,
        .generator = "policyd-dmarc " PD_VERSION,
        .policy = &pol,
    };
    if (rxml_filename(fname, sizeof(fname), r->org, domain, meta.begin, meta.end, rid) < 0) {
        problem(r, LOG_L_ERROR, "%s %s: report file name too long", pday, domain);
        goto out;
    }
    if (mail || r->o.dry_run)
        snprintf(b.path, sizeof(b.path), "%s/%s", r->tmpdir, fname);
    else
        snprintf(b.path, sizeof(b.path), "%s/.%s.part", r->o.output_dir, fname);
    k = build(r, day, domain, which, &meta, c, &b);
    if (k < 0) {
        if (rdrain_broken(r->rd))
            goto redis_err;
        goto out;
    }
    if (k == 0) {
        problem(r, LOG_L_WARNING, "%s %s: no reportable row (%llu refused), data %s", pday, domain,
                b.refused, mutate ? "dropped" : "kept");
        if (mutate && finish(r, day, domain, NULL) < 0)
            goto out;
        out = OUT_DROPPED;
        goto out;
    }

    if (!mail) {
        char final[1024];
        snprintf(final, sizeof(final), "%s/%s", r->o.output_dir, fname);
        if (r->o.dry_run) {
            say(r, "%s %s: would write %s (%lld bytes, %llu rows, %llu messages)", pday, domain,
                final, b.size, b.rows, b.messages);
            printf("%s %s write %s size=%lld rows=%llu messages=%llu id=%s\n", pday, domain, final,
                   b.size, b.rows, b.messages, rid);
            out = OUT_DONE;
            goto out;
        }
        if (rename(b.path, final) < 0) {
            problem(r, LOG_L_ERROR, "%s %s: rename to %s: %s", pday, domain, final,
                    strerror(errno));
            goto out;
        }
        b.path[0] = '\0';
        if (mutate && finish(r, day, domain, rid) < 0)
            goto out;
        log_kv(LOG_L_INFO, "report_written", "domain", domain, "day", pday, "id", rid, "file",
               final, NULL);
        say(r, "%s %s: wrote %s (%llu rows, %llu messages)%s", pday, domain, final, b.rows,
            b.messages, r->o.keep ? ", data kept" : "");
        out = OUT_DONE;
        goto out;
    }

    /* mail: size limits, ours first */
    if ((unsigned long long)b.size > r->cfg->report_max_size) {
        problem(r, LOG_L_ERROR,
                "%s %s: report is %lld bytes, over report_max_size (%u): not sent, data kept "
                "(raise report_max_size or use --output-dir)",
                pday, domain, b.size, r->cfg->report_max_size);
        goto out;
    }
    {
        size_t n = 0;
        for (size_t i = 0; i < plan.ndest; i++) {
            if (plan.dest[i].max_bytes && (unsigned long long)b.size > plan.dest[i].max_bytes) {
                problem(r, LOG_L_WARNING,
                        "%s %s: report (%lld bytes) over the %llu-byte limit of %s: not sent "
                        "there",
                        pday, domain, b.size, plan.dest[i].max_bytes, plan.dest[i].addr);
                continue;
            }
            plan.dest[n++] = plan.dest[i];
        }
        plan.ndest = n;
    }
    join(to, sizeof(to), plan.dest, plan.ndest);
    if (plan.ndest == 0) {
        log_kv(LOG_L_INFO, "report_dropped", "domain", domain, "day", pday, "reason",
               "too big for every destination", NULL);
        say(r, "%s %s: too big for every destination, data %s", pday, domain,
            mutate ? "dropped" : "would be dropped");
        if (mutate && finish(r, day, domain, NULL) < 0)
            goto out;
        out = OUT_DROPPED;
        goto out;
    }
    if (r->o.dry_run) {
        printf("%s %s send to=%s size=%lld rows=%llu messages=%llu id=%s%s\n", pday, domain, to,
               b.size, b.rows, b.messages, rid, st.rid[0] ? "" : " (new)");
        say(r, "%s %s: would send to %s (%lld bytes, id %s)", pday, domain, to, b.size, rid);
        out = OUT_DONE;
        goto out;
    }
    /* Still ours? Another run may have taken over if we stalled past the lease. */
    if ((k = rdrain_renew(r->rd, c, LEASE_MS)) != 1) {
        if (k < 0)
            goto redis_err;
        problem(r, LOG_L_ERROR, "%s %s: lost the lock before sending: not sent", pday, domain);
        c = NULL;
        goto out;
    }
    {
        const char *addrs[RDEST_MAX];
        for (size_t i = 0; i < plan.ndest; i++)
            addrs[i] = plan.dest[i].addr;
        struct rmail_msg m = {
            .from = r->cfg->report_email,
            .to = addrs,
            .n_to = plan.ndest,
            .domain = domain,
            .org_name = r->org,
            .report_id = rid,
            .attachment_path = b.path,
            .attachment_name = fname,
            .message_id_domain = r->cfg->hostname,
        };
        if (rmail_send(r->cfg->sendmail_command, &m, err, sizeof(err)) < 0) {
            problem(r, LOG_L_ERROR, "%s %s: hand-off failed: %s; data kept, report id %s", pday,
                    domain, err, rid);
            goto out;
        }
    }
    log_kv(LOG_L_INFO, "report_sent", "domain", domain, "day", pday, "id", rid, "to", to, NULL);
    if (finish(r, day, domain, rid) < 0)
        goto out;
    say(r, "%s %s: sent to %s (%llu rows, %llu messages, %lld bytes, id %s)", pday, domain, to,
        b.rows, b.messages, b.size, rid);
    out = OUT_DONE;
    goto out;

redis_err:
    problem(r, LOG_L_ERROR, "%s %s: %s", pday, domain, rdrain_errstr(r->rd));
out:
    if (b.path[0])
        unlink(b.path);
    if (c && !rdrain_broken(r->rd))
        rdrain_release(r->rd, c);
    return out;
}

/* ---------------------------------------------------------------- modes */

static int wanted_domain(const struct run *r, const char *domain)
{
    return r->o.domain[0] == '\0' || strcasecmp(r->o.domain, domain) == 0;
}

/* selected_days: --day, or every day in the days set (closed ones only
 * unless listing). */
static int selected_days(struct run *r, struct rdrain_list *days, int closed_only)
{
    if (r->o.day[0]) {
        days->v = calloc(1, sizeof(char *));
        if (days->v == NULL || (days->v[0] = strdup(r->o.day)) == NULL) {
            free(days->v);
            return -1;
        }
        days->n = 1;
        return 0;
    }
    if (rdrain_days(r->rd, days) < 0)
        return -1;
    if (closed_only) {
        size_t n = 0;
        for (size_t i = 0; i < days->n; i++) {
            if (strcmp(days->v[i], r->today) < 0)
                days->v[n++] = days->v[i];
            else
                free(days->v[i]);
        }
        days->n = n;
    }
    return 0;
}

static int sum_messages(struct run *r, const char *day, const char *domain, enum rdrain_which which,
                        unsigned long long *msgs)
{
    struct rdrain_scan *s = rdrain_scan_open(r->rd, domain, day, which, SCAN_BATCH);
    const char *f;
    size_t fl;
    uint64_t cnt;
    int rc;

    if (s == NULL)
        return -1;
    while ((rc = rdrain_scan_next(s, &f, &fl, &cnt)) == 1)
        *msgs += cnt;
    rdrain_scan_free(&s);
    return rc;
}

static int do_list(struct run *r)
{
    struct rdrain_list days = {0}, doms = {0};
    char pday[16];
    int header = 0;

    if (selected_days(r, &days, 0) < 0)
        goto err;
    for (size_t i = 0; i < days.n; i++) {
        if (rdrain_domains(r->rd, days.v[i], &doms) < 0)
            goto err;
        day_pretty(pday, sizeof(pday), days.v[i]);
        for (size_t j = 0; j < doms.n; j++) {
            struct rdrain_status st;
            unsigned long long msgs = 0;
            const char *d = doms.v[j], *state;
            if (!wanted_domain(r, d))
                continue;
            if (rdrain_status(r->rd, d, days.v[i], &st) < 0 ||
                sum_messages(r, days.v[i], d, RDRAIN_SNAP, &msgs) < 0 ||
                sum_messages(r, days.v[i], d, RDRAIN_LIVE, &msgs) < 0)
                goto err;
            if (st.locked)
                state = "locked";
            else if (st.sent[0])
                state = "sent";
            else if (strcmp(days.v[i], r->today) >= 0)
                state = "open";
            else if (st.rid[0])
                state = "retry";
            else
                state = "pending";
            if (!header++)
                printf("%-10s %-40s %8s %10s %-8s %s\n", "DAY", "DOMAIN", "ROWS", "MESSAGES",
                       "STATE", "REPORT-ID");
            printf("%-10s %-40s %8lld %10llu %-8s %s\n", pday, d, st.snap_rows + st.live_rows, msgs,
                   state,
                   st.sent[0]  ? st.sent
                   : st.rid[0] ? st.rid
                               : "-");
        }
        rdrain_list_free(&doms);
    }
    rdrain_list_free(&days);
    return EX_DONE;
err:
    rdrain_list_free(&doms);
    rdrain_list_free(&days);
    problem(r, LOG_L_ERROR, "%s", rdrain_errstr(r->rd));
    return rdrain_broken(r->rd) ? EX_REDIS : EX_FAILED;
}

static int do_reports(struct run *r)
{
    struct rdrain_list days = {0}, doms = {0};

    if (selected_days(r, &days, 1) < 0) {
        problem(r, LOG_L_ERROR, "%s", rdrain_errstr(r->rd));
        return rdrain_broken(r->rd) ? EX_REDIS : EX_FAILED;
    }
    for (size_t i = 0; i < days.n && !r->cut; i++) {
        if (rdrain_domains(r->rd, days.v[i], &doms) < 0) {
            problem(r, LOG_L_ERROR, "%s", rdrain_errstr(r->rd));
            r->failed++;
            if (rdrain_broken(r->rd))
                r->cut = 1;
            continue;
        }
        for (size_t j = 0; j < doms.n && !r->cut; j++) {
            if (!wanted_domain(r, doms.v[j]))
                continue;
            switch (one_report(r, days.v[i], doms.v[j])) {
            case OUT_DONE:
                r->done++;
                break;
            case OUT_NOTHING:
                break;
            case OUT_LOCKED:
                r->locked++;
                break;
            case OUT_DROPPED:
                r->dropped++;
                break;
            case OUT_FAILED:
                r->failed++;
                break;
            }
            if (rdrain_broken(r->rd) || g_stop)
                r->cut = 1;
        }
        rdrain_list_free(&doms);
        /* a closed day whose every domain is done leaves the days set */
        if (!r->cut && !r->o.dry_run && !r->o.keep && strcmp(days.v[i], r->today) < 0)
            rdrain_forget_day(r->rd, days.v[i]);
    }
    rdrain_list_free(&days);
    if (r->done + r->failed + r->dropped + r->locked > 0)
        say(r, "%u done, %u failed (kept), %u dropped, %u locked by another run", r->done,
            r->failed, r->dropped, r->locked);
    if (r->cut) {
        if (g_stop)
            problem(r, LOG_L_WARNING, "interrupted: the rest is left for the next run");
        return EX_CUT;
    }
    return r->failed ? EX_FAILED : EX_DONE;
}

/* ---------------------------------------------------------------- main */

static int parse_day_opt(const char *arg, char *out)
{
    /* YYYY-MM-DD (or YYYYMMDD) */
    char d[RDRAIN_DAY_MAX];
    if (strlen(arg) == 10 && arg[4] == '-' && arg[7] == '-')
        snprintf(d, sizeof(d), "%.4s%.2s%.2s", arg, arg + 5, arg + 8);
    else if (strlen(arg) == 8)
        snprintf(d, sizeof(d), "%s", arg);
    else
        return -1;
    if (day_start(d) < 0)
        return -1;
    memcpy(out, d, sizeof(d));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"config", required_argument, NULL, 'c'}, {"day", required_argument, NULL, 'D'},
        {"domain", required_argument, NULL, 'd'}, {"list", no_argument, NULL, 'l'},
        {"dry-run", no_argument, NULL, 'n'},      {"output-dir", required_argument, NULL, 'o'},
        {"keep", no_argument, NULL, 'k'},         {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    struct run r = {0};
    char err[1024];
    int opt, rc;
    struct stat sb;

    r.o.config = CFG_DEFAULT_PATH;
    log_open("policyd-dmarc-report", LOG_T_STDERR, LOG_L_WARNING);
    while ((opt = getopt_long(argc, argv, "c:no:vqhV", lopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            r.o.config = optarg;
            break;
        case 'D':
            if (parse_day_opt(optarg, r.o.day) < 0) {
                fprintf(stderr, "policyd-dmarc-report: --day: \"%s\" is not YYYY-MM-DD\n", optarg);
                return EX_USAGE;
            }
            break;
        case 'd': {
            size_t n = strlen(optarg);
            while (n > 0 && optarg[n - 1] == '.')
                n--;
            if (n == 0 || n >= sizeof(r.o.domain)) {
                fprintf(stderr, "policyd-dmarc-report: --domain: bad domain\n");
                return EX_USAGE;
            }
            for (size_t i = 0; i < n; i++)
                r.o.domain[i] = (char)tolower((unsigned char)optarg[i]);
            r.o.domain[n] = '\0';
            break;
        }
        case 'l':
            r.o.list = 1;
            break;
        case 'n':
            r.o.dry_run = 1;
            break;
        case 'o':
            r.o.output_dir = optarg;
            break;
        case 'k':
            r.o.keep = 1;
            break;
        case 'v':
            r.o.verbose = 1;
            break;
        case 'q':
            r.o.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return EX_DONE;
        case 'V':
            printf("policyd-dmarc-report %s\n", PD_VERSION);
            return EX_DONE;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc || (r.o.list && (r.o.dry_run || r.o.output_dir || r.o.keep)) ||
        (r.o.keep && !r.o.output_dir) || (r.o.verbose && r.o.quiet)) {
        if (optind != argc)
            fprintf(stderr, "policyd-dmarc-report: unexpected argument \"%s\"\n", argv[optind]);
        else if (r.o.keep && !r.o.output_dir)
            fprintf(stderr, "policyd-dmarc-report: --keep needs --output-dir\n");
        usage(stderr);
        return EX_USAGE;
    }
    if (r.o.output_dir && (stat(r.o.output_dir, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
        fprintf(stderr, "policyd-dmarc-report: --output-dir %s: not a directory\n", r.o.output_dir);
        return EX_USAGE;
    }

    if ((r.cfg = cfg_load(r.o.config, err, sizeof(err))) == NULL) {
        fprintf(stderr, "policyd-dmarc-report: %s\n", err);
        return EX_USAGE;
    }
    log_open("policyd-dmarc-report", (enum log_target)r.cfg->log_target,
             (enum log_level)r.cfg->log_level);
    r.org = r.cfg->report_org_name && r.cfg->report_org_name[0] ? r.cfg->report_org_name
                                                                : r.cfg->hostname;
    r.progress = !r.o.quiet && (r.o.verbose || isatty(STDERR_FILENO));
    if (r.cfg->redis == NULL || r.cfg->redis[0] == '\0') {
        problem(&r, LOG_L_ERROR, "%s: redis is not set: no counters to report", r.o.config);
        rc = EX_USAGE;
        goto done;
    }
    if (!r.o.list && !r.o.output_dir && !r.o.dry_run &&
        (r.cfg->report_email == NULL || r.cfg->report_email[0] == '\0')) {
        problem(&r, LOG_L_ERROR, "%s: report_email is not set: cannot mail reports", r.o.config);
        rc = EX_USAGE;
        goto done;
    }
    if (!r.o.list && !r.o.output_dir && access(r.cfg->sendmail_command, X_OK) != 0) {
        problem(&r, LOG_L_ERROR, "sendmail_command %s: %s", r.cfg->sendmail_command,
                strerror(errno));
        rc = EX_USAGE;
        goto done;
    }
    rkey_day(r.today, sizeof(r.today), (long long)time(NULL));

    {
        struct rdrain_config rcfg = {
            .redis = r.cfg->redis,
            .password = r.cfg->redis_password ? r.cfg->redis_password : "",
            .db = r.cfg->redis_db,
            .prefix = r.cfg->redis_prefix,
            .timeout_ms = 10000,
        };
        if ((r.rd = rdrain_connect(&rcfg, err, sizeof(err))) == NULL) {
            problem(&r, LOG_L_ERROR, "%s", err);
            rc = EX_REDIS;
            goto done;
        }
    }
    {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }

    if (r.o.list) {
        rc = do_list(&r);
        goto done;
    }
    if (!r.o.output_dir || r.o.dry_run) {
        const char *tmp = getenv("TMPDIR");
        snprintf(r.tmpdir, sizeof(r.tmpdir), "%s/policyd-dmarc-report.XXXXXX",
                 tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(r.tmpdir) == NULL) {
            problem(&r, LOG_L_ERROR, "mkdtemp %s: %s", r.tmpdir, strerror(errno));
            r.tmpdir[0] = '\0';
            rc = EX_FAILED;
            goto done;
        }
    }
    rc = do_reports(&r);

done:
    if (r.tmpdir[0])
        rmdir(r.tmpdir);
    dns_free(&r.dns);
    if (r.base)
        event_base_free(r.base);
    rdrain_free(&r.rd);
    cfg_free(&r.cfg);
    return rc;
}
