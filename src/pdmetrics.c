/* pdmetrics.c - the daemon's Prometheus collector (policyd_dmarc_* metrics).
 * See pdmetrics.h. Names follow the Prometheus conventions: a _total suffix
 * on counters, base units (seconds), one family per quantity with labels for
 * its breakdown. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "dmarc_disp.h"
#include "dns.h"
#include "metrics.h"
#include "pdmetrics.h"
#include "rcount.h"
#include "spfres.h"
#include "spfw.h"
#include "srv.h"
#include "vd.h"

#define P "policyd_dmarc_"

/* pdm_labelled: one sample of family name with a single label key=value. */
static void pdm_labelled(struct evbuffer *out, const char *name, const char *key, const char *value,
                         uint64_t v)
{
    char labels[128] = "";

    metrics_label(labels, sizeof(labels), key, value);
    metrics_sample(out, name, labels, v);
}

static void pdm_srv(struct evbuffer *out, struct srv *srv)
{
    struct srv_stats st;

    memset(&st, 0, sizeof(st));
    srv_get_stats(srv, &st);
    metrics_gauge(out, P "connections_open", "Policy client connections open now.", "", st.open);
    metrics_counter(out, P "connections_accepted_total", "Policy client connections accepted.", "",
                    st.accepted);
    metrics_family(out, P "connections_refused_total", METRICS_COUNTER,
                   "Policy client connections closed at once, by reason.");
    pdm_labelled(out, P "connections_refused_total", "reason", "limit", st.refused_limit);
    metrics_family(out, P "connections_closed_total", METRICS_COUNTER,
                   "Policy client connections closed by the daemon, by reason.");
    pdm_labelled(out, P "connections_closed_total", "reason", "idle", st.closed_idle);
    pdm_labelled(out, P "connections_closed_total", "reason", "timeout", st.closed_timeout);
    pdm_labelled(out, P "connections_closed_total", "reason", "malformed", st.malformed);
    metrics_counter(out, P "replies_total", "Policy replies sent.", "", st.replies);
}

static void pdm_vd(struct evbuffer *out, struct vd *vd)
{
    static const uint64_t bounds_ms[VD_LATENCY_BUCKETS] = VD_LATENCY_BOUNDS_MS;
    double bounds[VD_LATENCY_BUCKETS];
    struct vd_stats st;

    memset(&st, 0, sizeof(st));
    vd_get_stats(vd, &st);
    {
        static const char *const states[VD_STATES] = VD_STATE_NAMES;
        static const char *const actions[VD_ACTIONS] = VD_ACTION_NAMES;
        static const char *const results[4] = {"none", "pass", "fail", "temperror"};

        metrics_family(out, P "requests_total", METRICS_COUNTER,
                       "Policy requests received, by protocol_state.");
        for (size_t i = 0; i < VD_STATES; i++)
            pdm_labelled(out, P "requests_total", "protocol_state", states[i],
                         st.requests_by_state[i]);
        metrics_family(out, P "actions_total", METRICS_COUNTER,
                       "Replies sent, by action (reply codes: 5XX as REJECT, 4XX as DEFER).");
        for (size_t i = 0; i < VD_ACTIONS; i++)
            pdm_labelled(out, P "actions_total", "action", actions[i], st.replies_by_action[i]);
        metrics_family(out, P "dmarc_results_total", METRICS_COUNTER,
                       "Envelope-DMARC results of evaluated messages, by result.");
        for (size_t i = 0; i < 4; i++)
            pdm_labelled(out, P "dmarc_results_total", "result", results[i], st.dmarc_results[i]);
    }
    metrics_counter(out, P "bad_requests_total", "Policy requests refused as invalid.", "",
                    st.bad_requests);
    metrics_counter(out, P "messages_total", "Messages seen (first request of an instance).", "",
                    st.messages);
    metrics_family(out, P "messages_skipped_total", METRICS_COUNTER,
                   "Messages answered DUNNO without evaluation, by reason.");
    pdm_labelled(out, P "messages_skipped_total", "reason", "trusted", st.skipped_trusted);
    pdm_labelled(out, P "messages_skipped_total", "reason", "authenticated",
                 st.skipped_authenticated);
    pdm_labelled(out, P "messages_skipped_total", "reason", "own_reports", st.skipped_own);
    metrics_counter(out, P "messages_evaluated_total", "Messages evaluated (SPF and DMARC).", "",
                    st.evaluated);
    metrics_counter(out, P "decisions_reused_total",
                    "Later requests of a message answered from its decision.", "", st.reused);
    metrics_counter(out, P "dmarc_discovery_cache_hits_total",
                    "Messages whose DMARC policy came from the discovery cache.", "",
                    st.dmarc_cache_hits);

    metrics_family(out, P "spf_results_total", METRICS_COUNTER,
                   "SPF results of the MAIL FROM identity, by result.");
    for (int r = SPF_RES_NONE; r <= SPF_RES_PERMERROR; r++)
        pdm_labelled(out, P "spf_results_total", "result", spf_res_name((enum spf_res)r),
                     st.spf[r]);
    metrics_family(out, P "dispositions_total", METRICS_COUNTER,
                   "DMARC dispositions of evaluated messages, by disposition.");
    for (int d = DMARC_DISP_NONE; d <= DMARC_DISP_REJECT; d++)
        pdm_labelled(out, P "dispositions_total", "disposition",
                     dmarc_disp_name((enum dmarc_disp)d), st.dispositions[d]);

    for (size_t i = 0; i < VD_LATENCY_BUCKETS; i++)
        bounds[i] = (double)bounds_ms[i] / 1000.0;
    metrics_histogram(out, P "evaluation_duration_seconds",
                      "Time from the first RCPT of a message to its decision.", bounds,
                      VD_LATENCY_BUCKETS, st.latency_le, st.latency_count, st.latency_sum_s);
}

static void pdm_dns(struct evbuffer *out, struct dns_resolver *dns)
{
    struct dns_stats st;

    memset(&st, 0, sizeof(st));
    dns_get_stats(dns, &st);
    metrics_counter(out, P "dns_lookups_total", "DNS lookups asked of the resolver.", "",
                    st.lookups);
    metrics_counter(out, P "dns_cache_hits_total", "DNS lookups answered from the cache.", "",
                    st.cache_hits);
    metrics_counter(out, P "dns_queries_total", "DNS query packets sent (UDP and TCP).", "",
                    st.queries);
    metrics_counter(out, P "dns_tcp_queries_total", "DNS queries retried over TCP.", "",
                    st.tcp_queries);
    metrics_counter(out, P "dns_timeouts_total", "DNS lookups that timed out.", "", st.timeouts);
    metrics_counter(out, P "dns_errors_total", "DNS lookups that failed (SERVFAIL, malformed).", "",
                    st.errors);
    metrics_counter(out, P "dns_nxdomain_total", "DNS lookups answered NXDOMAIN.", "", st.nxdomain);
    metrics_gauge(out, P "dns_inflight", "Distinct DNS questions waiting for the network now.", "",
                  st.inflight);
    metrics_gauge(out, P "dns_cache_entries", "Entries in the DNS cache.", "", st.cache_entries);
}

static void pdm_spfw(struct evbuffer *out, struct spfw_pool *pool)
{
    struct spfw_stats st;

    memset(&st, 0, sizeof(st));
    spfw_get_stats(pool, &st);
    metrics_gauge(out, P "spf_worker_queue_depth", "SPF jobs waiting for a free worker.", "",
                  st.queued);
    metrics_gauge(out, P "spf_workers_busy", "SPF worker processes evaluating now.", "", st.busy);
    metrics_gauge(out, P "spf_workers_idle", "SPF worker processes waiting for a job.", "",
                  st.idle);
    metrics_counter(out, P "spf_evaluations_total", "SPF evaluations started on a worker.", "",
                    st.evaluations);
    metrics_counter(out, P "spf_evaluations_shared_total",
                    "SPF jobs that joined an identical evaluation already running.", "", st.shared);
    metrics_counter(out, P "spf_verdict_cache_hits_total",
                    "SPF jobs answered from the verdict cache.", "", st.cache_hits);
    metrics_counter(out, P "spf_verdict_cache_domain_hits_total",
                    "Verdict cache hits shared by every local part of the sender's domain.", "",
                    st.cache_domain_hits);
    metrics_counter(out, P "spf_timeouts_total", "SPF evaluations ended by the deadline.", "",
                    st.timeouts);
    metrics_counter(out, P "spf_worker_deaths_total", "SPF worker processes that died.", "",
                    st.worker_deaths);
    metrics_counter(out, P "spf_dns_questions_total", "DNS questions asked by SPF workers.", "",
                    st.dns_questions);
}

static void pdm_rcount(struct evbuffer *out, const struct pdm_sources *s)
{
    struct rcount_stats st;

    memset(&st, 0, sizeof(st));
    s->rcount_stats(s->rcount_ctx, &st);
    metrics_gauge(out, P "redis_up", "1 when the counter writer's Redis connection is up.", "",
                  st.connected ? 1 : 0);
    metrics_gauge(out, P "redis_rows_buffered", "Counter rows waiting to be written to Redis.", "",
                  st.buffered);
    metrics_counter(out, P "redis_rows_added_total", "Counter rows accepted into the buffer.", "",
                    st.rows_added);
    metrics_counter(out, P "redis_rows_written_total", "Counter rows acknowledged by Redis.", "",
                    st.rows_written);
    metrics_counter(out, P "redis_rows_dropped_total",
                    "Counter rows dropped because the buffer was full.", "", st.rows_dropped);
    metrics_counter(out, P "redis_rows_failed_total",
                    "Counter rows refused by Redis and discarded.", "", st.rows_failed);
    metrics_counter(out, P "redis_batches_total", "Pipelined batches written to Redis.", "",
                    st.batches);
    metrics_counter(out, P "redis_errors_total",
                    "Redis error replies and connection failures of the counter writer.", "",
                    st.errors);
    metrics_counter(out, P "redis_reconnects_total", "Reconnections of the counter writer.", "",
                    st.reconnects);
}

static void pdm_grey(struct evbuffer *out, const struct pdm_sources *s)
{
    struct pdm_grey_stats st;

    memset(&st, 0, sizeof(st));
    s->grey_stats(s->grey_ctx, &st);
    metrics_family(out, P "greylist_total", METRICS_COUNTER,
                   "Greylisting decisions, by outcome (error: Redis failed, passed).");
    pdm_labelled(out, P "greylist_total", "outcome", "pass", st.pass);
    pdm_labelled(out, P "greylist_total", "outcome", "defer", st.defer);
    pdm_labelled(out, P "greylist_total", "outcome", "awl_pass", st.awl_pass);
    pdm_labelled(out, P "greylist_total", "outcome", "whitelisted", st.whitelisted);
    pdm_labelled(out, P "greylist_total", "outcome", "error", st.errors);
    metrics_counter(out, P "greylist_awl_cache_hits_total",
                    "Automatic-whitelist lookups answered from the local cache, not Redis.", "",
                    st.awl_cached);
}

void pdm_collect(struct evbuffer *out, const struct pdm_sources *s)
{
    char labels[64] = "";

    metrics_label(labels, sizeof(labels), "version", PD_VERSION);
    metrics_gauge(out, P "build_info", "The running version (value 1).", labels, 1);
    if (s->srv != NULL)
        pdm_srv(out, s->srv);
    if (s->vd != NULL)
        pdm_vd(out, s->vd);
    if (s->dns != NULL)
        pdm_dns(out, s->dns);
    if (s->pool != NULL)
        pdm_spfw(out, s->pool);
    if (s->rcount_stats != NULL)
        pdm_rcount(out, s);
    if (s->grey_stats != NULL)
        pdm_grey(out, s);
}

void pdm_collect_cb(struct evbuffer *out, void *arg)
{
    pdm_collect(out, arg);
}
