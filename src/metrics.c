/* metrics.c - Prometheus metrics over HTTP (evhttp) and the text exposition
 * format writers. See metrics.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "metrics.h"

/* A scraper sends one small request: anything bigger is not one. */
#define METRICS_MAX_HEADERS 8192
#define METRICS_MAX_BODY 1024
#define METRICS_TIMEOUT_S 10
#define METRICS_BACKLOG 16

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics {
    struct evhttp *http;
    metrics_collect_fn fn;
    void *arg;
    unsigned port;
};

/* ---- listening socket ---- */

/* metrics_parse: "inet:HOST:PORT" / "inet:[V6]:PORT" with a numeric host into
 * ss. Port 0 (any) is accepted: the configuration checks 1..65535. */
static int metrics_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                         size_t errlen)
{
    char host[64];
    const char *rest, *hend, *pstart;
    char *end;
    unsigned long port;

    memset(ss, 0, sizeof(*ss));
    if (strncmp(spec, "inet:", 5) != 0)
        goto bad;
    rest = spec + 5;
    if (*rest == '[') {
        if ((hend = strchr(rest, ']')) == NULL || hend[1] != ':')
            goto bad;
        rest++;
        pstart = hend + 2;
    } else {
        if ((hend = strrchr(rest, ':')) == NULL)
            goto bad;
        pstart = hend + 1;
    }
    if (hend == rest || (size_t)(hend - rest) >= sizeof(host))
        goto bad;
    memcpy(host, rest, (size_t)(hend - rest));
    host[hend - rest] = '\0';
    errno = 0;
    port = strtoul(pstart, &end, 10);
    if (*pstart < '0' || *pstart > '9' || *end != '\0' || errno != 0 || port > 65535)
        goto bad;
    if (spec[5] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            goto bad;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        /* Numeric only: a name would need a lookup at start-up. */
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            goto bad;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*s4);
    }
    return 0;
bad:
    snprintf(err, errlen,
             "\"%s\": expected inet:IPV4:PORT or inet:[IPV6]:PORT with a numeric address", spec);
    return -1;
}

static int metrics_bind(const struct sockaddr_storage *ss, socklen_t sslen, unsigned *port,
                        char *err, size_t errlen)
{
    int fd, one = 1;
    struct sockaddr_storage got;
    socklen_t gotlen = sizeof(got);

    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, sslen) < 0 || listen(fd, METRICS_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&got, &gotlen) < 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                            : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
}

/* ---- requests ---- */

static void metrics_reply_text(struct evhttp_request *req, int code, const char *reason,
                               const char *text)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    if (b != NULL)
        evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, code, reason, b);
    if (b != NULL)
        evbuffer_free(b);
}

static void metrics_on_request(struct evhttp_request *req, void *arg)
{
    struct metrics *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *hdrs;
    struct evbuffer *body;
    char clen[32];

    if (path == NULL || strcmp(path, "/metrics") != 0) {
        metrics_reply_text(req, HTTP_NOTFOUND, "Not Found", "Not Found: try /metrics\n");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        metrics_reply_text(req, 405, "Method Not Allowed", "Method Not Allowed\n");
        return;
    }
    if ((body = evbuffer_new()) == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    m->fn(body, m->arg);
    hdrs = evhttp_request_get_output_headers(req);
    evhttp_add_header(hdrs, "Content-Type", METRICS_CONTENT_TYPE);
    /* Every scrape must see fresh numbers. */
    evhttp_add_header(hdrs, "Cache-Control", "no-store");
    /* evhttp omits Content-Length for HTTP/1.0, and sends the body for HEAD:
     * set the length of the GET body, and send it only for GET. */
    snprintf(clen, sizeof(clen), "%zu", evbuffer_get_length(body));
    evhttp_add_header(hdrs, "Content-Length", clen);
    if (cmd == EVHTTP_REQ_HEAD)
        evbuffer_drain(body, evbuffer_get_length(body));
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
}

struct metrics *metrics_new(struct event_base *base, const char *spec, metrics_collect_fn fn,
                            void *arg, char *err, size_t errlen)
{
    struct metrics *m;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd;

    if (metrics_parse(spec, &ss, &sslen, err, errlen) < 0)
        return NULL;
    if ((m = calloc(1, sizeof(*m))) == NULL || (m->http = evhttp_new(base)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(m);
        return NULL;
    }
    m->fn = fn;
    m->arg = arg;
    /* Accept every method evhttp knows, so that the handler answers 405
     * itself (evhttp would answer 501 for a method outside the set). */
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
    evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
    evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
    evhttp_set_gencb(m->http, metrics_on_request, m);
    if ((fd = metrics_bind(&ss, sslen, &m->port, err, errlen)) < 0) {
        metrics_free(&m);
        return NULL;
    }
    /* evhttp owns the socket from here (closed by evhttp_free). */
    if (evhttp_accept_socket_with_handle(m->http, fd) == NULL) {
        snprintf(err, errlen, "cannot accept on the metrics socket");
        close(fd);
        metrics_free(&m);
        return NULL;
    }
    return m;
}

unsigned metrics_port(const struct metrics *m)
{
    return m->port;
}

void metrics_free(struct metrics **mp)
{
    struct metrics *m = *mp;

    if (m == NULL)
        return;
    if (m->http != NULL)
        evhttp_free(m->http);
    free(m);
    *mp = NULL;
}

/* ---- exposition text ---- */

static const char *const type_names[] = {"counter", "gauge", "histogram", "untyped"};

const char *metrics_format_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    } else {
        /* The shortest digits that read back as v (0.005, not
         * 0.005000000000000001), laid out as Go's strconv 'g' with precision
         * -1 does, as the official clients do: exponent form below 1e-4 and
         * from 1e6 on ("1e-05", "1e+06"), positional otherwise ("10"). */
        int prec = 1, exp;
        char *e;

        for (; prec < 17; prec++) {
            snprintf(buf, len, "%.*e", prec - 1, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        snprintf(buf, len, "%.*e", prec - 1, v);
        exp = (e = strchr(buf, 'e')) != NULL ? atoi(e + 1) : 0;
        if (exp >= -4 && exp < 6)
            snprintf(buf, len, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, v);
    }
    return buf;
}

void metrics_family(struct evbuffer *out, const char *name, enum metrics_type type,
                    const char *help)
{
    evbuffer_add_printf(out, "# HELP %s ", name);
    /* HELP text escapes only backslash and newline. */
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            evbuffer_add(out, "\\\\", 2);
        else if (*p == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, p, 1);
    }
    evbuffer_add_printf(
        out, "\n# TYPE %s %s\n", name,
        (unsigned)type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type] : "untyped");
}

static void metrics_sample_name(struct evbuffer *out, const char *name, const char *labels)
{
    if (labels != NULL && *labels != '\0')
        evbuffer_add_printf(out, "%s{%s} ", name, labels);
    else
        evbuffer_add_printf(out, "%s ", name);
}

void metrics_sample(struct evbuffer *out, const char *name, const char *labels, uint64_t value)
{
    metrics_sample_name(out, name, labels);
    evbuffer_add_printf(out, "%" PRIu64 "\n", value);
}

void metrics_sample_double(struct evbuffer *out, const char *name, const char *labels, double value)
{
    char num[40];

    metrics_sample_name(out, name, labels);
    evbuffer_add_printf(out, "%s\n", metrics_format_double(num, sizeof(num), value));
}

void metrics_counter(struct evbuffer *out, const char *name, const char *help, const char *labels,
                     uint64_t value)
{
    metrics_family(out, name, METRICS_COUNTER, help);
    metrics_sample(out, name, labels, value);
}

void metrics_gauge(struct evbuffer *out, const char *name, const char *help, const char *labels,
                   uint64_t value)
{
    metrics_family(out, name, METRICS_GAUGE, help);
    metrics_sample(out, name, labels, value);
}

void metrics_histogram_sample(struct evbuffer *out, const char *name, const char *labels,
                              const double *bounds, size_t n, const uint64_t *cumulative,
                              uint64_t count, double sum)
{
    const char *sep = (labels != NULL && *labels != '\0') ? "," : "";
    char num[40], suffixed[256];

    if (labels == NULL)
        labels = "";
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
                            metrics_format_double(num, sizeof(num), bounds[i]), cumulative[i]);
    evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, count);
    snprintf(suffixed, sizeof(suffixed), "%s_sum", name);
    metrics_sample_double(out, suffixed, labels, sum);
    snprintf(suffixed, sizeof(suffixed), "%s_count", name);
    metrics_sample(out, suffixed, labels, count);
}

void metrics_histogram(struct evbuffer *out, const char *name, const char *help,
                       const double *bounds, size_t n, const uint64_t *cumulative, uint64_t count,
                       double sum)
{
    metrics_family(out, name, METRICS_HISTOGRAM, help);
    metrics_histogram_sample(out, name, "", bounds, n, cumulative, count, sum);
}

int metrics_label(char *buf, size_t len, const char *key, const char *value)
{
    size_t start = strlen(buf), o = start;

#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 >= len)                                                                          \
            goto full;                                                                             \
        buf[o++] = (c);                                                                            \
    } while (0)
    if (start > 0)
        PUT(',');
    for (const char *p = key; *p; p++)
        PUT(*p);
    PUT('=');
    PUT('"');
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"') {
            PUT('\\');
            PUT(*p);
        } else if (*p == '\n') {
            PUT('\\');
            PUT('n');
        } else {
            PUT(*p);
        }
    }
    PUT('"');
#undef PUT
    buf[o] = '\0';
    return 0;
full:
    if (len > start)
        buf[start] = '\0';
    return -1;
}
