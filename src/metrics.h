/* metrics.h - Prometheus metrics over HTTP (libevent's evhttp), and helpers
 * that write the text exposition format (version 0.0.4).
 *
 * The server answers GET (and HEAD) /metrics with what the collector appends
 * to a buffer, 404 for any other path and 405 for any other method. It binds
 * one numeric address ("inet:HOST:PORT", "inet:[V6]:PORT"): no name lookup,
 * so starting it never sends a DNS query. The only module using evhttp.
 *
 * Writing the exposition: a metric family is announced once with
 * metrics_family() (# HELP and # TYPE), followed by its samples, one per
 * label set, with metrics_sample*() or metrics_histogram_sample(). The
 * metrics_counter/gauge/histogram() shorthands do both for a family with a
 * single label set. Label strings are `k="v",k2="v2"` or "" and are written
 * as given: build them with metrics_label(), which escapes the value.
 * Names are the caller's constants and are not checked.
 *
 * Ownership: the collector's arg is borrowed; buffers are the caller's.
 * Loop thread only. */
#ifndef PD_METRICS_H
#define PD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct metrics;

/* metrics_collect_fn: append the whole exposition text to out; called once
 * per GET, on the loop thread. */
typedef void (*metrics_collect_fn)(struct evbuffer *out, void *arg);

/* metrics_new: listen on spec and serve /metrics. NULL with a message in err
 * (bad spec, non-numeric host, address in use...). base and arg are borrowed. */
struct metrics *metrics_new(struct event_base *base, const char *spec, metrics_collect_fn fn,
                            void *arg, char *err, size_t errlen);
/* metrics_port: the port bound (useful after listening on port 0). */
unsigned metrics_port(const struct metrics *m);
/* metrics_free: close the listener and connections; NULLs *mp. */
void metrics_free(struct metrics **mp);

/* ---- exposition text ---- */

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM, METRICS_UNTYPED };

/* metrics_family: "# HELP name help" (help escaped) and "# TYPE name type". */
void metrics_family(struct evbuffer *out, const char *name, enum metrics_type type,
                    const char *help);
/* metrics_sample: "name{labels} value", or "name value" when labels is "". */
void metrics_sample(struct evbuffer *out, const char *name, const char *labels, uint64_t value);
/* metrics_sample_double: the same with a float value (shortest exact form,
 * "+Inf", "-Inf", "NaN"). */
void metrics_sample_double(struct evbuffer *out, const char *name, const char *labels,
                           double value);

/* metrics_counter, metrics_gauge: a family with one sample. */
void metrics_counter(struct evbuffer *out, const char *name, const char *help, const char *labels,
                     uint64_t value);
void metrics_gauge(struct evbuffer *out, const char *name, const char *help, const char *labels,
                   uint64_t value);

/* metrics_histogram_sample: one histogram of family name: name_bucket{...,le="B"}
 * for each of the n upper bounds (seconds, ascending) with cumulative[i]
 * observations <= bounds[i], then le="+Inf" with count, name_sum, name_count. */
void metrics_histogram_sample(struct evbuffer *out, const char *name, const char *labels,
                              const double *bounds, size_t n, const uint64_t *cumulative,
                              uint64_t count, double sum);
/* metrics_histogram: a histogram family with one unlabelled histogram. */
void metrics_histogram(struct evbuffer *out, const char *name, const char *help,
                       const double *bounds, size_t n, const uint64_t *cumulative, uint64_t count,
                       double sum);

/* metrics_label: append key="value" to the label string buf (size len), after
 * a comma when buf is not empty; the value is escaped (\\, \", \n). 0, or -1
 * when it does not fit (buf is then unchanged). */
int metrics_label(char *buf, size_t len, const char *key, const char *value);

/* metrics_format_double: v in the shortest form that reads back exactly
 * ("0.005", "2.5", "10", "+Inf"); returns buf. len >= 32. */
const char *metrics_format_double(char *buf, size_t len, double v);

#endif
