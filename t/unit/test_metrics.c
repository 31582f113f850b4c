/* test_metrics.c - unit tests for the metrics server and the exposition
 * writers (src/metrics.c).
 *
 * The writers are checked line for line against the text format (HELP/TYPE
 * once per family, label escaping, cumulative histogram buckets with +Inf,
 * _sum and _count, float forms). The server runs on an ephemeral port of
 * 127.0.0.1 on the test's own event loop; the test is the HTTP client, with
 * a nonblocking socket, pumping the loop (EVLOOP_NONBLOCK) while it waits for
 * the answer, as test_srv.c does. */
#include "metrics.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct event_base *base;

/* text_of: the buffer's contents as a string (caller frees); drains it. */
static char *text_of(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);

    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

/* ---- exposition writers ---- */

static void test_format_double(void)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.001, "0.001"},   {0.005, "0.005"},
        {0.25, "0.25"},     {2.5, "2.5"},
        {10, "10"},         {0, "0"},
        {1e-9, "1e-09"},    {1e6, "1e+06"},
        {123456, "123456"}, {0.0001, "0.0001"},
        {1e-5, "1e-05"},    {12.75, "12.75"},
        {-3.5, "-3.5"},     {0.1 + 0.2, "0.30000000000000004"},
    };
    char buf[40];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        is_str(metrics_format_double(buf, sizeof(buf), cases[i].v), cases[i].want,
               "format_double %s", cases[i].want);
    is_str(metrics_format_double(buf, sizeof(buf), INFINITY), "+Inf", "format_double +Inf");
    is_str(metrics_format_double(buf, sizeof(buf), -INFINITY), "-Inf", "format_double -Inf");
    is_str(metrics_format_double(buf, sizeof(buf), NAN), "NaN", "format_double NaN");
}

static void test_labels(void)
{
    static const struct {
        const char *value, *want;
    } cases[] = {
        {"plain", "k=\"plain\""},
        {"a\"b", "k=\"a\\\"b\""},
        {"back\\slash", "k=\"back\\\\slash\""},
        {"two\nlines", "k=\"two\\nlines\""},
        {"", "k=\"\""},
        {"\\\"\n", "k=\"\\\\\\\"\\n\""},
        {"tab\tstays", "k=\"tab\tstays\""},
    };
    char buf[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf[0] = '\0';
        is_int(metrics_label(buf, sizeof(buf), "k", cases[i].value), 0, "label %zu fits", i);
        is_str(buf, cases[i].want, "label value escaped (case %zu)", i);
    }
    buf[0] = '\0';
    metrics_label(buf, sizeof(buf), "a", "1");
    metrics_label(buf, sizeof(buf), "b", "2");
    is_str(buf, "a=\"1\",b=\"2\"", "second label after a comma");

    /* Too long: -1, and the string is left as it was. */
    char small[12] = "x=\"1\"";
    is_int(metrics_label(small, sizeof(small), "key", "value"), -1, "label that does not fit: -1");
    is_str(small, "x=\"1\"", "label that does not fit leaves the buffer unchanged");
    char exact[9] = "";
    is_int(metrics_label(exact, sizeof(exact), "k", "abcd"), 0, "label filling the buffer exactly");
    is_str(exact, "k=\"abcd\"", "exact fit, terminated");
    char one_short[9] = "";
    is_int(metrics_label(one_short, sizeof(one_short), "k", "abcde"), -1, "one byte short: -1");
    is_str(one_short, "", "one byte short: empty again");
}

static void test_families(void)
{
    struct evbuffer *b = evbuffer_new();
    char labels[64] = "";
    char *s;

    metrics_counter(b, "pd_x_total", "Things.", "", 42);
    metrics_gauge(b, "pd_open", "Open now.", "", 0);
    metrics_family(b, "pd_res_total", METRICS_COUNTER, "By result,\nwith a \\ in help.");
    metrics_label(labels, sizeof(labels), "result", "pass");
    metrics_sample(b, "pd_res_total", labels, 7);
    labels[0] = '\0';
    metrics_label(labels, sizeof(labels), "result", "we\"ird\\");
    metrics_sample(b, "pd_res_total", labels, 18446744073709551615ULL);
    metrics_sample_double(b, "pd_ratio", "", 0.5);
    s = text_of(b);
    is_str(s,
           "# HELP pd_x_total Things.\n"
           "# TYPE pd_x_total counter\n"
           "pd_x_total 42\n"
           "# HELP pd_open Open now.\n"
           "# TYPE pd_open gauge\n"
           "pd_open 0\n"
           "# HELP pd_res_total By result,\\nwith a \\\\ in help.\n"
           "# TYPE pd_res_total counter\n"
           "pd_res_total{result=\"pass\"} 7\n"
           "pd_res_total{result=\"we\\\"ird\\\\\"} 18446744073709551615\n"
           "pd_ratio 0.5\n",
           "counter, gauge, one family with two label sets, escaped HELP");
    free(s);
    evbuffer_free(b);
}

static void test_histogram(void)
{
    static const double bounds[] = {0.005, 0.1, 2.5};
    static const uint64_t cum[] = {1, 3, 3};
    struct evbuffer *b = evbuffer_new();
    char *s;

    metrics_histogram(b, "pd_dur_seconds", "Duration.", bounds, 3, cum, 5, 12.75);
    s = text_of(b);
    is_str(s,
           "# HELP pd_dur_seconds Duration.\n"
           "# TYPE pd_dur_seconds histogram\n"
           "pd_dur_seconds_bucket{le=\"0.005\"} 1\n"
           "pd_dur_seconds_bucket{le=\"0.1\"} 3\n"
           "pd_dur_seconds_bucket{le=\"2.5\"} 3\n"
           "pd_dur_seconds_bucket{le=\"+Inf\"} 5\n"
           "pd_dur_seconds_sum 12.75\n"
           "pd_dur_seconds_count 5\n",
           "histogram: cumulative buckets, +Inf = count, _sum, _count");
    free(s);

    /* Two label sets under one family: le comes after the caller's labels. */
    metrics_family(b, "pd_lat_seconds", METRICS_HISTOGRAM, "Latency.");
    metrics_histogram_sample(b, "pd_lat_seconds", "op=\"a\"", bounds, 1, cum, 1, 0.001);
    metrics_histogram_sample(b, "pd_lat_seconds", "op=\"b\"", bounds, 1, cum, 0, 0);
    s = text_of(b);
    is_str(s,
           "# HELP pd_lat_seconds Latency.\n"
           "# TYPE pd_lat_seconds histogram\n"
           "pd_lat_seconds_bucket{op=\"a\",le=\"0.005\"} 1\n"
           "pd_lat_seconds_bucket{op=\"a\",le=\"+Inf\"} 1\n"
           "pd_lat_seconds_sum{op=\"a\"} 0.001\n"
           "pd_lat_seconds_count{op=\"a\"} 1\n"
           "pd_lat_seconds_bucket{op=\"b\",le=\"0.005\"} 1\n"
           "pd_lat_seconds_bucket{op=\"b\",le=\"+Inf\"} 0\n"
           "pd_lat_seconds_sum{op=\"b\"} 0\n"
           "pd_lat_seconds_count{op=\"b\"} 0\n",
           "labelled histograms share one HELP/TYPE");
    free(s);

    metrics_histogram(b, "pd_empty_seconds", "No bounds.", NULL, 0, NULL, 2, 0.5);
    s = text_of(b);
    ok(strstr(s, "pd_empty_seconds_bucket{le=\"+Inf\"} 2\npd_empty_seconds_sum 0.5\n"
                 "pd_empty_seconds_count 2\n") != NULL,
       "histogram without finite bounds has the +Inf bucket");
    free(s);
    evbuffer_free(b);
}

/* ---- HTTP ---- */

static int ncollect;

static void collect(struct evbuffer *out, void *arg)
{
    const char *tag = arg;
    char labels[64] = "";

    ncollect++;
    metrics_label(labels, sizeof(labels), "tag", tag);
    metrics_counter(out, "t_scrapes_total", "Scrapes.", labels, (uint64_t)ncollect);
}

struct reply {
    int status;
    char *head; /* status line and headers */
    char *body;
};

static void reply_free(struct reply *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* http_exchange: send raw to 127.0.0.1:port (or [::1] when v6), read until
 * the server closes, pumping the loop; 0 with r filled, -1 on timeout. */
static int http_exchange(unsigned port, int v6, const char *raw, struct reply *r)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd;
    char *all = NULL, *sep;
    size_t n = 0, sent = 0, len = strlen(raw);
    struct timespec t0, now;

    memset(r, 0, sizeof(*r));
    memset(&ss, 0, sizeof(ss));
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sslen = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sslen = sizeof(*a);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        char chunk[4096];
        ssize_t got;

        event_base_loop(base, EVLOOP_NONBLOCK);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 5) {
            free(all);
            close(fd);
            return -1;
        }
        if (poll(&p, 1, 5) <= 0)
            continue;
        if (sent < len && (p.revents & POLLOUT)) {
            ssize_t w = send(fd, raw + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            got = recv(fd, chunk, sizeof(chunk), 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got <= 0)
                break;
            all = realloc(all, n + (size_t)got + 1);
            memcpy(all + n, chunk, (size_t)got);
            n += (size_t)got;
            all[n] = '\0';
        }
    }
    close(fd);
    if (all == NULL)
        return -1;
    if ((sep = strstr(all, "\r\n\r\n")) == NULL) {
        free(all);
        return -1;
    }
    r->body = strdup(sep + 4);
    sep[2] = '\0';
    r->head = all;
    if (sscanf(all, "HTTP/1.%*d %d", &r->status) != 1)
        r->status = -1;
    return 0;
}

/* header: the value of header name in head ("" when absent); static buffer. */
static const char *header(const char *head, const char *name)
{
    static char val[256];
    size_t nl = strlen(name);

    val[0] = '\0';
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(val, sizeof(val), "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
            break;
        }
    }
    return val;
}

static void test_http(void)
{
    static const char body1[] = "# HELP t_scrapes_total Scrapes.\n"
                                "# TYPE t_scrapes_total counter\n"
                                "t_scrapes_total{tag=\"a\\\"b\"} 1\n";
    static const struct {
        const char *raw;
        int status;
        const char *allow; /* Allow header, NULL: not checked */
        int collects;      /* collector calls expected */
    } cases[] = {
        {"GET /metrics/ HTTP/1.0\r\n\r\n", 404, NULL, 0},
        {"GET / HTTP/1.0\r\n\r\n", 404, NULL, 0},
        {"GET /metricsx HTTP/1.0\r\n\r\n", 404, NULL, 0},
        {"POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", 405, "GET, HEAD", 0},
        {"PUT /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 405, "GET, HEAD", 0},
        {"DELETE /metrics HTTP/1.0\r\n\r\n", 405, "GET, HEAD", 0},
        {"OPTIONS /metrics HTTP/1.0\r\n\r\n", 405, "GET, HEAD", 0},
        {"GET /metrics?name[]=x HTTP/1.0\r\n\r\n", 200, NULL, 1},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, NULL, 1},
    };
    char err[256];
    struct metrics *m;
    struct reply r;
    unsigned port;

    m = metrics_new(base, "inet:127.0.0.1:0", collect, "a\"b", err, sizeof(err));
    if (!ok(m != NULL, "metrics_new on 127.0.0.1:0")) {
        diag("%s", err);
        return;
    }
    port = metrics_port(m);
    ok(port > 0, "ephemeral port %u", port);

    ncollect = 0;
    if (ok(http_exchange(port, 0, "GET /metrics HTTP/1.0\r\n\r\n", &r) == 0, "GET /metrics")) {
        is_int(r.status, 200, "GET /metrics: 200");
        is_str(header(r.head, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8",
               "content type of the text format 0.0.4");
        is_str(r.body, body1, "body is the collector's exposition text");
        is_int(atoi(header(r.head, "Content-Length")), (long long)strlen(body1),
               "Content-Length matches");
        reply_free(&r);
    }
    is_int(ncollect, 1, "collector called once per scrape");
    if (ok(http_exchange(port, 0, "GET /metrics HTTP/1.0\r\n\r\n", &r) == 0, "second scrape")) {
        ok(strstr(r.body, "t_scrapes_total{tag=\"a\\\"b\"} 2\n") != NULL,
           "a new scrape sees fresh values");
        reply_free(&r);
    }
    if (ok(http_exchange(port, 0, "HEAD /metrics HTTP/1.0\r\n\r\n", &r) == 0, "HEAD")) {
        is_int(r.status, 200, "HEAD /metrics: 200");
        is_str(r.body, "", "HEAD: no body");
        is_int(atoi(header(r.head, "Content-Length")), (long long)strlen(body1),
               "HEAD: Content-Length of the GET body");
        reply_free(&r);
    }

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = ncollect;

        if (!ok(http_exchange(port, 0, cases[i].raw, &r) == 0, "request %zu answered", i))
            continue;
        is_int(r.status, cases[i].status, "%.*s: %d", (int)strcspn(cases[i].raw, "\r"),
               cases[i].raw, cases[i].status);
        /* Exactly one Content-Length (evhttp adds its own for HTTP/1.1
         * only when the handler did not). */
        if (r.status == 200)
            ok(strstr(r.head, "Content-Length") == strcasestr(r.head, "content-length:") &&
                   strcasestr(strcasestr(r.head, "content-length:") + 1, "content-length:") == NULL,
               "one Content-Length header");
        if (cases[i].allow)
            is_str(header(r.head, "Allow"), cases[i].allow, "405 names the allowed methods");
        is_int(ncollect - before, cases[i].collects, "collector calls for request %zu", i);
        reply_free(&r);
    }
    metrics_free(&m);
    ok(m == NULL, "metrics_free NULLs the pointer");
    metrics_free(&m);
    ok(1, "metrics_free(NULL) is harmless");
}

static void test_v6(void)
{
    char err[256];
    struct metrics *m;
    struct reply r;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);

    if (fd < 0) {
        ok(1, "# SKIP no IPv6");
        return;
    }
    close(fd);
    m = metrics_new(base, "inet:[::1]:0", collect, "v6", err, sizeof(err));
    if (m == NULL) {
        diag("IPv6 loopback not usable: %s", err);
        ok(1, "# SKIP no ::1");
        return;
    }
    if (ok(http_exchange(metrics_port(m), 1, "GET /metrics HTTP/1.0\r\n\r\n", &r) == 0,
           "GET over [::1]")) {
        is_int(r.status, 200, "[::1]: 200");
        ok(strstr(r.body, "tag=\"v6\"") != NULL, "[::1]: collector output");
        reply_free(&r);
    }
    metrics_free(&m);
}

static void test_bad_specs(void)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1:9100",
        "unix:/tmp/metrics.sock",
        "inet:127.0.0.1",
        "inet:127.0.0.1:",
        "inet:127.0.0.1:65536",
        "inet:127.0.0.1:-1",
        "inet:127.0.0.1:91x",
        "inet::9100",
        "inet:localhost:9100", /* numeric only: no lookup at start-up */
        "inet:::1:9100",
        "inet:[::1]9100",
        "inet:[127.0.0.1]:9100",
        "inet:[::1:9100",
        "inet:256.0.0.1:9100",
    };
    char err[256];
    struct metrics *m, *m2;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        m = metrics_new(base, bad[i], collect, NULL, err, sizeof(err));
        ok(m == NULL && err[0] != '\0', "bad listen spec \"%s\" refused (%s)", bad[i], err);
        metrics_free(&m);
    }

    /* The same port twice: the second bind fails with a message. */
    m = metrics_new(base, "inet:127.0.0.1:0", collect, NULL, err, sizeof(err));
    if (ok(m != NULL, "first listener")) {
        char spec[64];

        snprintf(spec, sizeof(spec), "inet:127.0.0.1:%u", metrics_port(m));
        err[0] = '\0';
        m2 = metrics_new(base, spec, collect, NULL, err, sizeof(err));
        ok(m2 == NULL && strstr(err, "in use") != NULL, "port in use refused: %s", err);
        metrics_free(&m2);
    }
    metrics_free(&m);
}

int main(void)
{
    base = event_base_new();
    test_format_double();
    test_labels();
    test_families();
    test_histogram();
    test_http();
    test_v6();
    test_bad_specs();
    event_base_free(base);
    return tap_done();
}
