/* test_pdmetrics.c - unit tests for the daemon's collector (src/pdmetrics.c).
 *
 * The server, resolver and SPF pool getters need live objects: those groups
 * are left out here (NULL sources, also checking that NULL omits a group)
 * and covered end to end by t/integration/test_metrics.sh. The verdict
 * statistics come from a fake vd_get_stats defined below (vd.c is part of
 * the daemon, not a library), the Redis and greylisting ones from fake
 * getters: the test checks the mapping of every field to its series. */
#include "pdmetrics.h"
#include "rcount.h"
#include "tap.h"
#include "vd.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct vd_stats fake_vd;

void vd_get_stats(struct vd *v, struct vd_stats *out)
{
    *out = fake_vd;
}

static void fake_rcount(void *ctx, struct rcount_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->connected = *(int *)ctx;
    out->buffered = 12;
    out->rows_added = 100;
    out->rows_written = 80;
    out->rows_dropped = 7;
    out->rows_failed = 1;
    out->batches = 9;
    out->errors = 3;
    out->reconnects = 2;
}

static void fake_grey(void *ctx, struct pdm_grey_stats *out)
{
    out->pass = 5;
    out->defer = 6;
    out->awl_pass = 7;
    out->whitelisted = 8;
    out->errors = 9;
}

static char *collect(const struct pdm_sources *s)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    char *text;

    pdm_collect(b, s);
    n = evbuffer_get_length(b);
    text = malloc(n + 1);
    evbuffer_remove(b, text, n);
    text[n] = '\0';
    evbuffer_free(b);
    return text;
}

/* has_line: text contains line as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

/* count: occurrences of needle in text. */
static int count(const char *text, const char *needle)
{
    int c = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        c++;
    return c;
}

int main(void)
{
    static const char *const want_vd[] = {
        "policyd_dmarc_requests_total{protocol_state=\"RCPT\"} 8",
        "policyd_dmarc_requests_total{protocol_state=\"DATA\"} 2",
        "policyd_dmarc_requests_total{protocol_state=\"END-OF-MESSAGE\"} 1",
        "policyd_dmarc_requests_total{protocol_state=\"other\"} 0",
        "policyd_dmarc_actions_total{action=\"DUNNO\"} 30",
        "policyd_dmarc_actions_total{action=\"REJECT\"} 32",
        "policyd_dmarc_actions_total{action=\"other\"} 36",
        "policyd_dmarc_dmarc_results_total{result=\"none\"} 40",
        "policyd_dmarc_dmarc_results_total{result=\"temperror\"} 43",
        "policyd_dmarc_bad_requests_total 1",
        "policyd_dmarc_messages_total 10",
        "policyd_dmarc_messages_skipped_total{reason=\"trusted\"} 2",
        "policyd_dmarc_messages_skipped_total{reason=\"authenticated\"} 3",
        "policyd_dmarc_messages_evaluated_total 5",
        "policyd_dmarc_decisions_reused_total 4",
        "policyd_dmarc_spf_results_total{result=\"none\"} 100",
        "policyd_dmarc_spf_results_total{result=\"neutral\"} 101",
        "policyd_dmarc_spf_results_total{result=\"pass\"} 102",
        "policyd_dmarc_spf_results_total{result=\"fail\"} 103",
        "policyd_dmarc_spf_results_total{result=\"softfail\"} 104",
        "policyd_dmarc_spf_results_total{result=\"temperror\"} 105",
        "policyd_dmarc_spf_results_total{result=\"permerror\"} 106",
        "policyd_dmarc_dispositions_total{disposition=\"none\"} 20",
        "policyd_dmarc_dispositions_total{disposition=\"quarantine\"} 21",
        "policyd_dmarc_dispositions_total{disposition=\"reject\"} 22",
        "# TYPE policyd_dmarc_evaluation_duration_seconds histogram",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.001\"} 1",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.005\"} 2",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.01\"} 3",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.025\"} 4",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.05\"} 5",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.1\"} 6",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.25\"} 7",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"0.5\"} 8",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"1\"} 9",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"2.5\"} 10",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"5\"} 11",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"10\"} 12",
        "policyd_dmarc_evaluation_duration_seconds_bucket{le=\"+Inf\"} 13",
        "policyd_dmarc_evaluation_duration_seconds_sum 4.25",
        "policyd_dmarc_evaluation_duration_seconds_count 13",
    };
    static const char *const want_redis[] = {
        "# TYPE policyd_dmarc_redis_up gauge",
        "policyd_dmarc_redis_up 1",
        "policyd_dmarc_redis_rows_buffered 12",
        "policyd_dmarc_redis_rows_added_total 100",
        "policyd_dmarc_redis_rows_written_total 80",
        "policyd_dmarc_redis_rows_dropped_total 7",
        "policyd_dmarc_redis_rows_failed_total 1",
        "policyd_dmarc_redis_batches_total 9",
        "policyd_dmarc_redis_errors_total 3",
        "policyd_dmarc_redis_reconnects_total 2",
        "# TYPE policyd_dmarc_greylist_total counter",
        "policyd_dmarc_greylist_total{outcome=\"pass\"} 5",
        "policyd_dmarc_greylist_total{outcome=\"defer\"} 6",
        "policyd_dmarc_greylist_total{outcome=\"awl_pass\"} 7",
        "policyd_dmarc_greylist_total{outcome=\"whitelisted\"} 8",
        "policyd_dmarc_greylist_total{outcome=\"error\"} 9",
    };
    struct pdm_sources s;
    int up = 1;
    char *text, line[128];

    fake_vd.requests = 11;
    fake_vd.requests_by_state[0] = 8;
    fake_vd.requests_by_state[1] = 2;
    fake_vd.requests_by_state[2] = 1;
    for (int i = 0; i < VD_ACTIONS; i++)
        fake_vd.replies_by_action[i] = 30 + (uint64_t)i;
    for (int i = 0; i < 4; i++)
        fake_vd.dmarc_results[i] = 40 + (uint64_t)i;
    fake_vd.bad_requests = 1;
    fake_vd.messages = 10;
    fake_vd.skipped_trusted = 2;
    fake_vd.skipped_authenticated = 3;
    fake_vd.evaluated = 5;
    fake_vd.reused = 4;
    for (int i = 0; i < 7; i++)
        fake_vd.spf[i] = 100 + (uint64_t)i;
    for (int i = 0; i < 3; i++)
        fake_vd.dispositions[i] = 20 + (uint64_t)i;
    for (int i = 0; i <= VD_LATENCY_BUCKETS; i++)
        fake_vd.latency_le[i] = 1 + (uint64_t)i;
    fake_vd.latency_count = 13;
    fake_vd.latency_sum_s = 4.25;

    /* Only the verdict module: the other groups are left out. */
    memset(&s, 0, sizeof(s));
    s.vd = (struct vd *)&fake_vd; /* opaque to pdm_collect, handed to the fake getter */
    text = collect(&s);
    for (size_t i = 0; i < sizeof(want_vd) / sizeof(want_vd[0]); i++)
        ok(has_line(text, want_vd[i]), "vd: %s", want_vd[i]);
    snprintf(line, sizeof(line), "policyd_dmarc_build_info{version=\"%s\"} 1", PD_VERSION);
    ok(has_line(text, line), "build_info with the version");
    is_int(count(text, "policyd_dmarc_connections_"), 0, "no srv group without srv");
    is_int(count(text, "policyd_dmarc_dns_"), 0, "no dns group without dns");
    is_int(count(text, "policyd_dmarc_spf_work"), 0, "no spfw group without pool");
    is_int(count(text, "policyd_dmarc_redis_"), 0, "no redis group without a getter");
    is_int(count(text, "policyd_dmarc_greylist_"), 0, "no greylist group without a getter");
    is_int(count(text, "# TYPE policyd_dmarc_spf_results_total "), 1,
           "spf_results_total: one TYPE for seven label sets");
    is_int(count(text, "# HELP policyd_dmarc_dispositions_total "), 1,
           "dispositions_total: one HELP for three label sets");
    is_int(count(text, "# TYPE "), count(text, "# HELP "), "a HELP for every TYPE");
    free(text);

    /* With the Redis and greylisting getters. */
    s.rcount_stats = fake_rcount;
    s.rcount_ctx = &up;
    s.grey_stats = fake_grey;
    text = collect(&s);
    for (size_t i = 0; i < sizeof(want_redis) / sizeof(want_redis[0]); i++)
        ok(has_line(text, want_redis[i]), "redis/grey: %s", want_redis[i]);
    free(text);
    up = 0;
    text = collect(&s);
    ok(has_line(text, "policyd_dmarc_redis_up 0"), "redis_up 0 when disconnected");
    free(text);
    return tap_done();
}
