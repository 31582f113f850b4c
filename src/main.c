/* main.c - policyd-dmarc, the daemon: configuration, start-up order, signals.
 *
 * Start-up order matters:
 *   1. read and check the configuration (fatal errors name file:line);
 *   2. bind every listener (may need root for low ports or socket paths);
 *   3. drop privileges to `user` (setgroups + setgid + setuid);
 *   4. fork the SPF workers (they inherit the unprivileged identity);
 *   5. run the loop.
 * SIGTERM/SIGINT: stop accepting, answer the requests in flight, exit 0.
 * SIGHUP: reload the reloadable settings; a broken file keeps the old config. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfg.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "pdmetrics.h"
#include "rcount.h"
#include "spfw.h"
#include "srv.h"
#include "vd.h"

#define MAIN_EXPIRE_INTERVAL_S 10
#define MAIN_SHUTDOWN_GRACE_MS 5000
#define MAIN_COUNTER_FLUSH_MS 2000 /* at shutdown, try this long to write buffered rows */

struct daemon {
    const char *config_path;
    struct pd_config *cfg;
    struct event_base *base;
    struct dns_resolver *dns;
    struct spfw_pool *pool;
    struct srv *srv;
    struct vd *vd;
    struct metrics *metrics;
    struct pdm_sources msrc; /* what the metrics collector reads */
    struct rcount *rc;       /* NULL when `redis` is not set */
    struct event *ev_term, *ev_int, *ev_hup, *ev_expire, *ev_hard_stop;
    int stopping;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: policyd-dmarc [-c FILE] [-n] [-V]\n"
                 "  -c FILE  configuration file (default " CFG_DEFAULT_PATH ")\n"
                 "  -n       check the configuration, print non-default settings, exit 0/1\n"
                 "  -V       print the version\n");
}

/* main_dns_config: the resolver settings from the config. The machine's
 * resolv.conf is read only when dns_servers is not set. */
static int main_dns_config(const struct pd_config *cfg, struct dns_config *dc, char *err,
                           size_t errlen)
{
    dns_config_defaults(dc);
    dc->timeout_ms = cfg->dns_timeout_ms;
    dc->attempts = cfg->dns_retries + 1;
    dc->cache_max_entries = cfg->dns_cache_size;
    for (size_t i = 0; i < cfg->dns_servers.n; i++) {
        if (dc->nservers == DNS_MAX_SERVERS) {
            snprintf(err, errlen, "dns_servers: at most %d servers", DNS_MAX_SERVERS);
            return -1;
        }
        if (dns_parse_server(cfg->dns_servers.items[i], &dc->servers[dc->nservers],
                             &dc->server_lens[dc->nservers]) < 0) {
            snprintf(err, errlen, "dns_servers: bad server \"%s\"", cfg->dns_servers.items[i]);
            return -1;
        }
        dc->nservers++;
    }
    if (dc->nservers == 0 && dns_servers_from_resolv_conf(dc, "/etc/resolv.conf") <= 0) {
        snprintf(err, errlen, "dns_servers is not set and /etc/resolv.conf names no server");
        return -1;
    }
    return 0;
}

static void main_spfw_config(const struct pd_config *cfg, struct spfw_config *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->workers = cfg->workers;
    pc->eval_timeout_ms = cfg->evaluation_timeout_ms;
    pc->receiver = cfg->hostname;
    pc->verdict_cache_size = cfg->verdict_cache_ttl_ms ? 100000 : 0;
    pc->verdict_cache_ttl_s = cfg->verdict_cache_ttl_ms / 1000;
}

static void main_srv_limits(const struct pd_config *cfg, struct srv_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->max_connections = cfg->max_connections;
    l->idle_timeout_ms = cfg->idle_timeout_ms;
    /* A request Postfix sends arrives in one write; a client that needs longer
     * than this to finish one is broken or hostile (slowloris). */
    l->request_timeout_ms = 10000;
    l->socket_mode = cfg->socket_mode;
    l->socket_owner = cfg->socket_owner;
}

/* main_drop_privileges: become cfg->user (if set). Fatal on failure: running
 * with more privilege than configured is not an acceptable fallback. */
static void main_drop_privileges(const struct pd_config *cfg)
{
    struct passwd *pw;

    if (cfg->user == NULL || *cfg->user == '\0') {
        /* A policy daemon parses the whole Internet's input: it must not
         * keep root by accident. */
        if (geteuid() == 0 && !cfg->allow_root)
            log_die("refusing to run as root: set user = <unprivileged user> (or allow_root = "
                    "yes)");
        return;
    }
    errno = 0;
    pw = getpwnam(cfg->user);
    if (pw == NULL)
        log_die("user: unknown user \"%s\"", cfg->user);
    if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        log_die("cannot drop privileges to %s: %s", cfg->user, strerror(errno));
    if (setuid(0) == 0 && pw->pw_uid != 0)
        log_die("privileges could be regained after dropping them to %s", cfg->user);
    log_msg(LOG_L_INFO, "running as user %s (uid %ld)", cfg->user, (long)pw->pw_uid);
}

static void main_write_pidfile(const struct pd_config *cfg)
{
    FILE *f;

    if (cfg->pid_file == NULL || *cfg->pid_file == '\0')
        return;
    f = fopen(cfg->pid_file, "w");
    if (f == NULL)
        log_die("pid_file %s: %s", cfg->pid_file, strerror(errno));
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
}

static void main_rcount_config(const struct pd_config *cfg, struct rcount_config *rcc)
{
    memset(rcc, 0, sizeof(*rcc));
    rcc->redis = cfg->redis;
    rcc->password = cfg->redis_password;
    rcc->db = cfg->redis_db;
    rcc->prefix = cfg->redis_prefix;
    rcc->retention_s = cfg->counter_retention_ms / 1000;
    rcc->buffer_rows = cfg->counter_buffer;
}

/* main_rcount_stats: the counter writer's statistics for the metrics. */
static void main_rcount_stats(void *ctx, struct rcount_stats *out)
{
    rcount_get_stats(ctx, out);
}

/* main_grey_stats: greylisting outcomes, as the verdict module counted them. */
static void main_grey_stats(void *ctx, struct pdm_grey_stats *out)
{
    struct vd_stats st;

    vd_get_stats(ctx, &st);
    out->pass = st.grey_pass;
    out->defer = st.grey_defer;
    out->awl_pass = st.grey_pass_awl;
    out->whitelisted = st.grey_whitelisted;
    out->errors = st.grey_errors;
    out->awl_cached = st.grey_awl_cached;
}

/* main_counter_metrics: the Redis metrics follow the counter writer (none
 * when it is off), the greylist metrics follow greylisting. */
static void main_counter_metrics(struct daemon *d, const struct pd_config *cfg)
{
    d->msrc.rcount_stats = d->rc ? main_rcount_stats : NULL;
    d->msrc.rcount_ctx = d->rc;
    d->msrc.grey_stats = cfg->greylist ? main_grey_stats : NULL;
    d->msrc.grey_ctx = d->vd;
}

/* main_apply_counter: start, reconfigure or stop the counter writer to match
 * cfg (start-up and SIGHUP). */
static void main_apply_counter(struct daemon *d, const struct pd_config *cfg)
{
    struct rcount_config rcc;

    main_rcount_config(cfg, &rcc);
    if (cfg->redis == NULL || *cfg->redis == '\0') {
        if (d->rc) {
            struct rcount_stats st;

            /* We are inside the loop here, and rcount_free() would have to run
             * it to flush: drop what is buffered instead, and say how much. */
            rcount_get_stats(d->rc, &st);
            vd_set_counter(d->vd, NULL);
            rcount_free(&d->rc, 0);
            main_counter_metrics(d, cfg);
            log_msg(LOG_L_WARNING, "counting stopped (redis unset); %u buffered row(s) dropped",
                    st.buffered);
        }
        main_counter_metrics(d, cfg);
        return;
    }
    if (d->rc) {
        rcount_reconfigure(d->rc, &rcc);
        main_counter_metrics(d, cfg);
        return;
    }
    d->rc = rcount_new(d->base, &rcc);
    if (d->rc == NULL)
        log_msg(LOG_L_ERROR, "redis %s: cannot start the counter writer; not counting", cfg->redis);
    vd_set_counter(d->vd, d->rc);
    main_counter_metrics(d, cfg);
}

static void main_shutdown_done(void *arg)
{
    struct daemon *d = arg;

    event_base_loopexit(d->base, NULL);
}

static void main_on_hard_stop(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;

    log_msg(LOG_L_WARNING, "shutdown: requests still in flight after %d ms, exiting",
            MAIN_SHUTDOWN_GRACE_MS);
    event_base_loopexit(d->base, NULL);
}

static void main_on_term(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct timeval tv;
    unsigned grace = d->cfg->evaluation_timeout_ms + MAIN_SHUTDOWN_GRACE_MS;

    if (d->stopping)
        return;
    d->stopping = 1;
    log_msg(LOG_L_INFO, "signal %d: stopping (finishing requests in flight)", (int)sig);
    /* Requests in flight finish within evaluation_timeout; the hard stop only
     * guards against a bug keeping a connection forever. */
    tv.tv_sec = grace / 1000;
    tv.tv_usec = (grace % 1000) * 1000;
    d->ev_hard_stop = evtimer_new(d->base, main_on_hard_stop, d);
    if (d->ev_hard_stop)
        evtimer_add(d->ev_hard_stop, &tv);
    srv_shutdown(d->srv, main_shutdown_done, d);
}

static void main_on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct pd_config *next;
    struct dns_config dc;
    struct spfw_config pc;
    struct srv_limits lim;
    char err[1024], msg[2048];

    next = cfg_load(d->config_path, err, sizeof(err));
    if (next == NULL) {
        log_msg(LOG_L_ERROR, "reload failed, keeping the running configuration: %s", err);
        return;
    }
    if (cfg_reload_merge(d->cfg, next, msg, sizeof(msg)) > 0)
        log_msg(LOG_L_WARNING, "reload: not applied until restart: %s", msg);
    if (main_dns_config(next, &dc, err, sizeof(err)) < 0 ||
        vd_reconfigure(d->vd, next, err, sizeof(err)) < 0) {
        log_msg(LOG_L_ERROR, "reload failed, keeping the running configuration: %s", err);
        vd_reconfigure(d->vd, d->cfg, err, sizeof(err));
        cfg_free(&next);
        return;
    }
    log_open("policyd-dmarc", next->log_target, next->log_level);
    dns_reconfigure(d->dns, &dc);
    main_spfw_config(next, &pc);
    spfw_reconfigure(d->pool, &pc);
    main_srv_limits(next, &lim);
    srv_set_limits(d->srv, &lim);
    main_apply_counter(d, next);
    cfg_free(&d->cfg);
    d->cfg = next;
    log_msg(LOG_L_INFO, "configuration reloaded from %s", d->config_path);
}

/* main_on_request: forwards to the verdict module. The server exists before
 * the verdict module (listeners are bound before privileges are dropped and
 * the workers forked), but no request is read before the loop runs. */
static void main_on_request(struct srv_conn *c, struct pp_request *req, void *arg)
{
    struct daemon *d = arg;

    vd_handle(c, req, d->vd);
}

static void main_on_expire(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;

    vd_expire(d->vd);
}

int main(int argc, char **argv)
{
    struct daemon d;
    struct dns_config dc;
    struct spfw_config pc;
    struct srv_limits lim;
    char err[1024];
    int opt, check_only = 0;
    struct timeval expire_tv = {MAIN_EXPIRE_INTERVAL_S, 0};

    memset(&d, 0, sizeof(d));
    d.config_path = CFG_DEFAULT_PATH;
    while ((opt = getopt(argc, argv, "c:nVh")) != -1) {
        switch (opt) {
        case 'c':
            d.config_path = optarg;
            break;
        case 'n':
            check_only = 1;
            break;
        case 'V':
            printf("policyd-dmarc %s\n", PD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 1;
    }

    d.cfg = cfg_load(d.config_path, err, sizeof(err));
    if (d.cfg == NULL) {
        fprintf(stderr, "policyd-dmarc: %s\n", err);
        return 1;
    }
    if (check_only) {
        /* Settings that only make sense together are checked here too. */
        if (main_dns_config(d.cfg, &dc, err, sizeof(err)) < 0) {
            fprintf(stderr, "policyd-dmarc: %s: %s\n", d.config_path, err);
            cfg_free(&d.cfg);
            return 1;
        }
        cfg_print_nondefault(d.cfg, stdout);
        cfg_free(&d.cfg);
        return 0;
    }

    log_open("policyd-dmarc", d.cfg->log_target, d.cfg->log_level);
    if (main_dns_config(d.cfg, &dc, err, sizeof(err)) < 0)
        log_die("%s: %s", d.config_path, err);

    /* A policy client that goes away must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    d.base = event_base_new();
    if (d.base == NULL)
        log_die("cannot create the event loop");

    main_srv_limits(d.cfg, &lim);
    d.srv = srv_new(d.base, &lim, main_on_request, &d);
    if (d.srv == NULL)
        log_die("cannot create the server");
    for (size_t i = 0; i < d.cfg->listen.n; i++)
        if (srv_listen(d.srv, d.cfg->listen.items[i], err, sizeof(err)) < 0)
            log_die("listen %s: %s", d.cfg->listen.items[i], err);
    /* Bound with the listeners, before privileges are dropped. The collector
     * reads d.msrc, filled in below once the modules exist; the loop (and so
     * a scrape) does not run before that. */
    if (d.cfg->metrics_listen != NULL && *d.cfg->metrics_listen != '\0') {
        d.metrics =
            metrics_new(d.base, d.cfg->metrics_listen, pdm_collect_cb, &d.msrc, err, sizeof(err));
        if (d.metrics == NULL)
            log_die("metrics_listen %s: %s", d.cfg->metrics_listen, err);
    }
    main_write_pidfile(d.cfg);
    main_drop_privileges(d.cfg);

    d.dns = dns_new(d.base, &dc);
    if (d.dns == NULL)
        log_die("cannot create the DNS resolver: %s", strerror(errno));
    main_spfw_config(d.cfg, &pc);
    d.pool = spfw_new(d.base, d.dns, &pc);
    if (d.pool == NULL)
        log_die("cannot start the SPF workers: %s", strerror(errno));
    d.vd = vd_new(d.cfg, d.base, d.pool, d.dns, err, sizeof(err));
    if (d.vd == NULL)
        log_die("%s: %s", d.config_path, err);

    main_apply_counter(&d, d.cfg);

    d.msrc.srv = d.srv;
    d.msrc.dns = d.dns;
    d.msrc.pool = d.pool;
    d.msrc.vd = d.vd;

    d.ev_term = evsignal_new(d.base, SIGTERM, main_on_term, &d);
    d.ev_int = evsignal_new(d.base, SIGINT, main_on_term, &d);
    d.ev_hup = evsignal_new(d.base, SIGHUP, main_on_hup, &d);
    d.ev_expire = event_new(d.base, -1, EV_PERSIST, main_on_expire, &d);
    if (!d.ev_term || !d.ev_int || !d.ev_hup || !d.ev_expire)
        log_die("cannot set up signal handling");
    evsignal_add(d.ev_term, NULL);
    evsignal_add(d.ev_int, NULL);
    evsignal_add(d.ev_hup, NULL);
    evtimer_add(d.ev_expire, &expire_tv);

    log_msg(LOG_L_INFO, "policyd-dmarc %s ready (%zu listener(s), %u SPF worker(s))", PD_VERSION,
            d.cfg->listen.n, d.cfg->workers);
    event_base_dispatch(d.base);

    log_msg(LOG_L_INFO, "stopped");
    metrics_free(&d.metrics);
    vd_free(&d.vd);
    /* After the last decision: rows still buffered get a last chance. */
    rcount_free(&d.rc, MAIN_COUNTER_FLUSH_MS);
    spfw_free(&d.pool);
    dns_free(&d.dns);
    srv_free(&d.srv);
    event_free(d.ev_term);
    event_free(d.ev_int);
    event_free(d.ev_hup);
    event_free(d.ev_expire);
    if (d.ev_hard_stop)
        event_free(d.ev_hard_stop);
    if (d.cfg->pid_file && *d.cfg->pid_file)
        unlink(d.cfg->pid_file);
    event_base_free(d.base);
    cfg_free(&d.cfg);
    return 0;
}
