/* cfg.c - the configuration table and the Postfix-style file parser.
 *
 * Every setting is one row of cfg_rows[]: name, type, default text, range,
 * reloadable flag, summary, and where it lives in struct pd_config. Defaults
 * are applied by parsing the default text with the same code that parses the
 * file, so the table is the single source of truth for the parser, `-n`
 * output, reload, the sample config and the man page (a test checks the last
 * two against the table).
 *
 * File syntax follows Postfix's main.cf (readlline(3)): a logical line starts
 * with non-whitespace; a line starting with whitespace continues it; blank
 * lines and lines whose first non-blank character is '#' are ignored (also
 * between a line and its continuation). '#' elsewhere is part of the value.
 * A setting given twice: the last one wins, silently, as in Postfix. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"

enum cfg_type { T_BOOL, T_UINT, T_DURATION, T_STRING, T_ENUM, T_LIST, T_MODE };

/* A checker validates one string value or one list item; on failure it
 * writes the reason into why and returns -1. */
typedef int (*cfg_check_fn)(const char *s, char *why, size_t whylen);

struct cfg_row {
    struct cfg_info info; /* first: cfg_table_row() hands out &row->info */
    enum cfg_type type;
    size_t off;                  /* offset into struct pd_config */
    unsigned long long min, max; /* uint: the value; duration: ms; mode: bits */
    const char *const *names;    /* enum: accepted words, NULL-terminated */
    const int *values;           /* enum: value stored for names[i] */
    cfg_check_fn check;          /* string values, list items; may be NULL */
    size_t min_items;            /* list: fewest items allowed */
};

static int check_listen(const char *s, char *why, size_t whylen);
static int check_dns_server(const char *s, char *why, size_t whylen);
static int check_cidr(const char *s, char *why, size_t whylen);
static int check_owner(const char *s, char *why, size_t whylen);
static int check_username(const char *s, char *why, size_t whylen);
static int check_abspath(const char *s, char *why, size_t whylen);
static int check_hostname(const char *s, char *why, size_t whylen);
static int check_domain(const char *s, char *why, size_t whylen);
static int check_reject_action(const char *s, char *why, size_t whylen);
static int check_quarantine_action(const char *s, char *why, size_t whylen);
static int check_redis(const char *s, char *why, size_t whylen);
static int check_prefix(const char *s, char *why, size_t whylen);
static int check_email(const char *s, char *why, size_t whylen);
static int check_text(const char *s, char *why, size_t whylen);
static int check_grey_action(const char *s, char *why, size_t whylen);
static int check_metrics_listen(const char *s, char *why, size_t whylen);

static const char *const hdr_names[] = {"received-spf", "authentication-results", "both", "none",
                                        NULL};
static const int hdr_values[] = {CFG_HDR_RECEIVED_SPF, CFG_HDR_AUTH_RESULTS, CFG_HDR_BOTH,
                                 CFG_HDR_NONE};
static const char *const target_names[] = {"syslog", "stderr", NULL};
static const int target_values[] = {LOG_T_SYSLOG, LOG_T_STDERR};
static const char *const level_names[] = {"error", "warning", "info", "debug", NULL};
static const int level_values[] = {LOG_L_ERROR, LOG_L_WARNING, LOG_L_INFO, LOG_L_DEBUG};
static const char *const dmode_names[] = {"rfc9989", "rfc7489", NULL};
static const int dmode_values[] = {CFG_DMARC_RFC9989, CFG_DMARC_RFC7489};
static const char *const org_names[] = {"treewalk", "psl", NULL};
static const int org_values[] = {CFG_ORG_TREEWALK, CFG_ORG_PSL};
static const char *const temperr_names[] = {"dunno", "defer", NULL};
static const int temperr_values[] = {CFG_TEMPERROR_DUNNO, CFG_TEMPERROR_DEFER};
static const char *const weak_names[] = {"none", "quarantine", "policy", NULL};
static const int weak_values[] = {CFG_WEAK_NONE, CFG_WEAK_QUARANTINE, CFG_WEAK_POLICY};
static const char *const disp_names[] = {"none", "quarantine", "reject", NULL};
static const int disp_values[] = {CFG_DISP_NONE, CFG_DISP_QUARANTINE, CFG_DISP_REJECT};
static const char *const stage_names[] = {"rcpt", "end-of-message", NULL};
static const int stage_values[] = {CFG_COUNT_RCPT, CFG_COUNT_EOM};
static const char *const rfmt_names[] = {"rfc9990", "rfc7489", NULL};
static const int rfmt_values[] = {CFG_REPORT_RFC9990, CFG_REPORT_RFC7489};

#define OFF(f) offsetof(struct pd_config, f)
#define MS_SEC 1000ULL
#define MS_MIN (60 * MS_SEC)
#define MS_HOUR (60 * MS_MIN)
#define MS_DAY (24 * MS_HOUR)
#define MS_WEEK (7 * MS_DAY)

/* One macro per type keeps each row on one or two lines. Strings have no
 * default text: they all default to empty (hostname and authserv_id are
 * computed at run time, see cfg_finish()). */
#define ROW(name, type, dflt, range, rel, summary, t, field, lo, hi, names, values, check, mi)     \
    {                                                                                              \
        {name, type, dflt, range, rel, summary}, t, OFF(field), lo, hi, names, values, check, mi   \
    }
#define ROW_LIST(name, dflt, rel, field, check, mi, summary)                                       \
    ROW(name, "list", dflt, "", rel, summary, T_LIST, field, 0, 0, NULL, NULL, check, mi)
#define ROW_STRING(name, rel, field, check, summary)                                               \
    ROW(name, "string", "", "", rel, summary, T_STRING, field, 0, 0, NULL, NULL, check, 0)
#define ROW_STRINGD(name, dflt, rel, field, check, summary)                                        \
    ROW(name, "string", dflt, "", rel, summary, T_STRING, field, 0, 0, NULL, NULL, check, 0)
#define ROW_BOOL(name, dflt, rel, field, summary)                                                  \
    ROW(name, "bool", dflt, "yes|no", rel, summary, T_BOOL, field, 0, 0, NULL, NULL, NULL, 0)
#define ROW_ENUM(name, dflt, range, rel, field, names, values, summary)                            \
    ROW(name, "enum", dflt, range, rel, summary, T_ENUM, field, 0, 0, names, values, NULL, 0)
#define ROW_UINT(name, dflt, range, rel, field, lo, hi, summary)                                   \
    ROW(name, "uint", dflt, range, rel, summary, T_UINT, field, lo, hi, NULL, NULL, NULL, 0)
#define ROW_DURATION(name, dflt, range, rel, field, lo, hi, summary)                               \
    ROW(name, "duration", dflt, range, rel, summary, T_DURATION, field, lo, hi, NULL, NULL, NULL, 0)
#define ROW_MODE(name, dflt, range, rel, field, lo, hi, summary)                                   \
    ROW(name, "mode", dflt, range, rel, summary, T_MODE, field, lo, hi, NULL, NULL, NULL, 0)

/* The range texts are what the docs show; test_cfg checks that each range's
 * end points are accepted and the values just outside are refused. */
static const struct cfg_row cfg_rows[] = {
    /* listeners and processes */
    ROW_LIST("listen", "inet:127.0.0.1:10040", 0, listen, check_listen, 1,
             "where to accept Postfix connections: inet:HOST:PORT, inet:[IPV6]:PORT, unix:/PATH"),
    ROW_MODE("socket_mode", "0666", "0000..0777", 0, socket_mode, 0, 0777,
             "permissions of unix listening sockets"),
    ROW_STRING("socket_owner", 0, socket_owner, check_owner,
               "user[:group] owning unix listening sockets (empty: unchanged)"),
    ROW_STRING("user", 0, user, check_username,
               "drop privileges to this user after binding (empty: stay)"),
    ROW_BOOL("allow_root", "no", 0, allow_root,
             "run as root when user is empty (otherwise the daemon refuses to start)"),
    ROW_STRING("pid_file", 0, pid_file, check_abspath,
               "absolute path of a PID file to write (empty: none)"),
    ROW_UINT("workers", "4", "1..256", 0, workers, 1, 256, "number of SPF worker processes"),
    ROW_UINT("max_connections", "1000", "1..1000000", 1, max_connections, 1, 1000000,
             "most simultaneous Postfix connections; more are refused"),
    ROW_DURATION("idle_timeout", "10m", "1s..1d", 1, idle_timeout_ms, MS_SEC, MS_DAY,
                 "close a Postfix connection idle this long"),

    /* DNS */
    ROW_LIST("dns_servers", "", 1, dns_servers, check_dns_server, 0,
             "resolvers to ask: IP, IP:PORT or [IPV6]:PORT (empty: /etc/resolv.conf)"),
    ROW_DURATION("dns_timeout", "2s", "100ms..60s", 1, dns_timeout_ms, 100, 60 * MS_SEC,
                 "wait this long for one DNS answer"),
    ROW_UINT("dns_retries", "2", "0..10", 1, dns_retries, 0, 10,
             "extra attempts after a DNS timeout"),
    ROW_UINT("dns_cache_size", "100000", "0..10000000", 1, dns_cache_size, 0, 10000000,
             "DNS answers kept in the cache (0: no cache)"),
    ROW_DURATION("evaluation_timeout", "10s", "1s..90s", 1, evaluation_timeout_ms, MS_SEC,
                 90 * MS_SEC, "deadline for one whole SPF evaluation (then temperror)"),

    /* decisions */
    ROW_LIST("trusted_networks", "127.0.0.0/8, ::1/128", 1, trusted_networks, check_cidr, 0,
             "clients in these networks (CIDR) are not checked"),
    ROW_BOOL("skip_authenticated", "yes", 1, skip_authenticated,
             "do not check SASL-authenticated clients"),
    ROW_STRING("hostname", 1, hostname, check_hostname,
               "our host name in Received-SPF headers (empty: the system host name)"),
    ROW_STRING("authserv_id", 1, authserv_id, check_hostname,
               "authserv-id of Authentication-Results headers (empty: hostname)"),
    ROW_ENUM("spf_headers", "received-spf", "received-spf|authentication-results|both|none", 1,
             spf_headers, hdr_names, hdr_values, "which SPF result headers to prepend"),
    ROW_UINT("instance_table_size", "50000", "100..10000000", 1, instance_table_size, 100, 10000000,
             "messages in flight remembered between RCPT requests"),
    ROW_DURATION("instance_timeout", "1h", "1m..1w", 1, instance_timeout_ms, MS_MIN, MS_WEEK,
                 "forget a message after this long"),
    ROW_DURATION("verdict_cache_ttl", "5m", "0s..1d", 1, verdict_cache_ttl_ms, 0, MS_DAY,
                 "reuse an SPF verdict for the same client and sender this long (0: never)"),

    /* envelope DMARC */
    ROW_BOOL("dmarc", "yes", 1, dmarc,
             "evaluate envelope DMARC (policy domain = MAIL FROM domain) and act on it"),
    ROW_ENUM("dmarc_mode", "rfc9989", "rfc9989|rfc7489", 1, dmarc_mode, dmode_names, dmode_values,
             "DMARC semantics: RFC 9989 (pct ignored) or RFC 7489 (pct sampling)"),
    ROW_ENUM("org_domain_method", "treewalk", "treewalk|psl", 1, org_domain_method, org_names,
             org_values, "organizational domain: RFC 9989 DNS tree walk or Public Suffix List"),
    ROW_STRINGD("psl_file", "/usr/share/publicsuffix/public_suffix_list.dat", 1, psl_file,
                check_abspath, "Public Suffix List file (org_domain_method = psl)"),
    ROW_STRINGD(
        "reject_action", "550 5.7.1", 1, reject_action, check_reject_action,
        "reply code for disposition reject (5XX X.Y.Z, 4XX X.Y.Z, REJECT or DEFER_IF_PERMIT)"),
    ROW_STRINGD("quarantine_action", "prepend", 1, quarantine_action, check_quarantine_action,
                "disposition quarantine: prepend, hold, filter:TRANSPORT:DESTINATION or reject"),
    ROW_ENUM("temperror_action", "dunno", "dunno|defer", 1, temperror_action, temperr_names,
             temperr_values, "SPF or DMARC temperror: accept (dunno) or DEFER_IF_PERMIT 4.7.1"),
    ROW_ENUM("weak_spf_disposition", "none", "none|quarantine|policy", 1, weak_spf_disposition,
             weak_names, weak_values,
             "SPF softfail/neutral/none/permerror under p=quarantine/reject: none, at most "
             "quarantine, or the policy as for fail"),
    ROW_ENUM("max_disposition", "reject", "none|quarantine|reject", 1, max_disposition, disp_names,
             disp_values, "cap on the disposition applied (lowered: local_policy)"),
    ROW_LIST("trusted_forwarders", "", 1, trusted_forwarders, check_cidr, 0,
             "forwarders (CIDR) whose mail gets disposition none (reason trusted_forwarder)"),
    ROW_LIST("whitelist_sender_domains", "", 1, whitelist_sender_domains, check_domain, 0,
             "sender domains (and subdomains) exempt from DMARC action (reason local_policy)"),
    ROW_BOOL("dmarc_header", "yes", 1, dmarc_header,
             "prepend an X-Envelope-DMARC header with the envelope-DMARC verdict"),

    /* counters in Redis */
    ROW_STRING("redis", 1, redis, check_redis,
               "Redis for counters: tcp:HOST:PORT or unix:/PATH (empty: no counting)"),
    ROW_STRING("redis_password", 1, redis_password, check_text, "Redis AUTH password"),
    ROW_UINT("redis_db", "0", "0..1000", 1, redis_db, 0, 1000, "Redis database number"),
    ROW_STRINGD("redis_prefix", "pd", 1, redis_prefix, check_prefix,
                "prefix of every Redis key (share one Redis between sites)"),
    ROW_DURATION("counter_retention", "7d", "1h..366d", 1, counter_retention_ms, MS_HOUR,
                 366 * MS_DAY, "counters expire this long after their last update"),
    ROW_ENUM("count_stage", "rcpt", "rcpt|end-of-message", 1, count_stage, stage_names,
             stage_values, "count a message at its first RCPT or at END-OF-MESSAGE (exact)"),
    ROW_UINT("counter_buffer", "100000", "0..10000000", 1, counter_buffer, 0, 10000000,
             "rows kept in memory while Redis is away (more are dropped and counted)"),

    /* the reporter */
    ROW_STRING("report_org_name", 1, report_org_name, check_text,
               "org_name in aggregate reports (empty: hostname)"),
    ROW_STRING("report_email", 1, report_email, check_email,
               "contact address in reports and their From: (required to mail reports)"),
    ROW_STRING("report_extra_contact", 1, report_extra_contact, check_text,
               "extra_contact_info in reports"),
    ROW_ENUM("report_format", "rfc9990", "rfc9990|rfc7489", 1, report_format, rfmt_names,
             rfmt_values, "aggregate report XML: RFC 9990 or RFC 7489"),
    ROW_STRINGD("sendmail_command", "/usr/sbin/sendmail", 1, sendmail_command, check_abspath,
                "program the reports are handed to (run as: -t -oi -f FROM, no shell)"),
    ROW_UINT("report_max_size", "10485760", "1024..1073741824", 1, report_max_size, 1024,
             1073741824, "largest compressed report sent to a rua without a smaller !size"),

    /* greylisting */
    ROW_BOOL("greylist", "no", 1, greylist, "greylist (triplets in Redis, shared by every MX)"),
    ROW_DURATION("greylist_delay", "5m", "1s..1d", 1, greylist_delay_ms, MS_SEC, MS_DAY,
                 "a retry is accepted this long after the first attempt"),
    ROW_DURATION("greylist_retry_window", "2d", "1m..30d", 1, greylist_retry_window_ms, MS_MIN,
                 30 * MS_DAY, "and no later than this after the first attempt"),
    ROW_DURATION("greylist_max_age", "35d", "1d..366d", 1, greylist_max_age_ms, MS_DAY,
                 366 * MS_DAY, "a passed triplet is remembered this long after its last use"),
    ROW_UINT("greylist_ipv4_prefix", "24", "8..32", 1, greylist_ipv4_prefix, 8, 32,
             "IPv4 clients are grouped by this prefix length"),
    ROW_UINT("greylist_ipv6_prefix", "64", "16..128", 1, greylist_ipv6_prefix, 16, 128,
             "IPv6 clients are grouped by this prefix length"),
    ROW_UINT("greylist_awl_count", "5", "0..1000", 1, greylist_awl_count, 0, 1000,
             "whitelist a client network after this many passed retries (0: never)"),
    ROW_STRINGD("greylist_action", "DEFER_IF_PERMIT", 1, greylist_action, check_grey_action,
                "action for a greylisted attempt: DEFER_IF_PERMIT, DEFER or 4XX [4.X.Y]"),
    ROW_STRINGD("greylist_text", "Greylisted, please try again in %s seconds", 1, greylist_text,
                check_text, "text after greylist_action (%s: seconds left, %r: recipient domain)"),
    ROW_LIST("greylist_whitelist_clients", "", 1, greylist_whitelist_clients, check_abspath, 0,
             "files of clients never greylisted (postgrey format; reread on SIGHUP)"),
    ROW_LIST("greylist_whitelist_recipients", "", 1, greylist_whitelist_recipients, check_abspath,
             0, "files of recipients never greylisted (postgrey format; reread on SIGHUP)"),
    ROW_BOOL("greylist_skip_authenticated", "yes", 1, greylist_skip_authenticated,
             "no greylisting when SPF passes for a domain publishing p=quarantine or p=reject"),

    /* metrics */
    ROW_STRING("metrics_listen", 0, metrics_listen, check_metrics_listen,
               "Prometheus metrics over HTTP on inet:HOST:PORT (empty: off)"),

    /* logging */
    ROW_ENUM("log", "syslog", "syslog|stderr", 1, log_target, target_names, target_values,
             "log to syslog (mail facility) or standard error"),
    ROW_ENUM("log_level", "info", "error|warning|info|debug", 1, log_level, level_names,
             level_values, "least severe level logged"),
};

#define CFG_NROWS (sizeof(cfg_rows) / sizeof(cfg_rows[0]))

size_t cfg_table_size(void)
{
    return CFG_NROWS;
}

const struct cfg_info *cfg_table_row(size_t i)
{
    return i < CFG_NROWS ? &cfg_rows[i].info : NULL;
}

static const struct cfg_row *cfg_find(const char *name)
{
    for (size_t i = 0; i < CFG_NROWS; i++)
        if (strcmp(cfg_rows[i].info.name, name) == 0)
            return &cfg_rows[i];
    return NULL;
}

#define FIELD(c, row, T) ((T *)(void *)((char *)(c) + (row)->off))
#define CFIELD(c, row, T) ((const T *)(const void *)((const char *)(c) + (row)->off))

static int whyf(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int whyf(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- scalar parsers ---- */

/* Decimal digits only: no sign, no spaces, no hex. *end gets the first
 * non-digit. Returns -1 on no digits or overflow. */
static int parse_digits(const char *s, unsigned long long *out, const char **end)
{
    unsigned long long v = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');

        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return 0;
}

static const struct {
    const char *unit;
    unsigned long long ms;
} dur_units[] = {{"w", MS_WEEK}, {"d", MS_DAY}, {"h", MS_HOUR},
                 {"m", MS_MIN},  {"s", MS_SEC}, {"ms", 1}};

static int parse_duration(const char *s, unsigned long long *ms)
{
    unsigned long long v, mult = MS_SEC;
    const char *end;
    size_t i;

    if (parse_digits(s, &v, &end) < 0)
        return -1;
    if (*end != '\0') {
        for (i = 0; i < sizeof(dur_units) / sizeof(dur_units[0]); i++)
            if (strcmp(end, dur_units[i].unit) == 0)
                break;
        if (i == sizeof(dur_units) / sizeof(dur_units[0]))
            return -1;
        mult = dur_units[i].ms;
    }
    if (v > ULLONG_MAX / mult)
        return -1;
    *ms = v * mult;
    return 0;
}

/* The most natural unit: the largest one that divides the value exactly. */
static void format_duration(unsigned long long ms, char *buf, size_t sz)
{
    if (ms == 0) {
        snprintf(buf, sz, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof(dur_units) / sizeof(dur_units[0]); i++)
        if (ms % dur_units[i].ms == 0) {
            snprintf(buf, sz, "%llu%s", ms / dur_units[i].ms, dur_units[i].unit);
            return;
        }
}

/* ---- list items and string checks ---- */

static int parse_port(const char *s)
{
    unsigned long long v;
    const char *end;

    if (parse_digits(s, &v, &end) < 0 || *end != '\0' || v < 1 || v > 65535)
        return -1;
    return (int)v;
}

static int is_ipv4(const char *s)
{
    struct in_addr a;

    return inet_pton(AF_INET, s, &a) == 1;
}

static int is_ipv6(const char *s)
{
    struct in6_addr a;

    return inet_pton(AF_INET6, s, &a) == 1;
}

/* "[V6]" followed by something: copy V6 into buf and return what follows the
 * closing bracket, or NULL when not bracketed or not an IPv6 address. */
static const char *bracketed_v6(const char *s, char *buf, size_t sz)
{
    const char *close;

    if (*s != '[' || (close = strchr(s, ']')) == NULL || (size_t)(close - s - 1) >= sz)
        return NULL;
    memcpy(buf, s + 1, (size_t)(close - s - 1));
    buf[close - s - 1] = '\0';
    return is_ipv6(buf) ? close + 1 : NULL;
}

static int hostchars(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
            return 0;
    return 1;
}

static int check_listen(const char *s, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *rest, *colon;

    if (strncmp(s, "unix:", 5) == 0) {
        if (s[5] != '/')
            return whyf(why, whylen, "\"%s\": the socket path must be absolute", s);
        if (strlen(s + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return whyf(why, whylen, "\"%s\": the socket path is too long", s);
        return 0;
    }
    if (strncmp(s, "inet:", 5) != 0)
        return whyf(why, whylen, "\"%s\": expected inet:HOST:PORT, inet:[IPV6]:PORT or unix:/PATH",
                    s);
    rest = s + 5;
    if (*rest == '[') {
        if ((colon = bracketed_v6(rest, host, sizeof(host))) == NULL)
            return whyf(why, whylen, "\"%s\": not an IPv6 address in brackets", s);
        if (*colon != ':')
            return whyf(why, whylen, "\"%s\": expected inet:[IPV6]:PORT", s);
    } else {
        if ((colon = strrchr(rest, ':')) == NULL)
            return whyf(why, whylen, "\"%s\": expected inet:HOST:PORT", s);
        if (colon == rest)
            return whyf(why, whylen, "\"%s\": missing host", s);
        if ((size_t)(colon - rest) >= 256)
            return whyf(why, whylen, "\"%s\": bad host", s);
        char name[256];

        memcpy(name, rest, (size_t)(colon - rest));
        name[colon - rest] = '\0';
        if (strchr(name, ':') != NULL)
            return whyf(why, whylen, "\"%s\": write an IPv6 address in brackets", s);
        if (!is_ipv4(name) && !hostchars(name))
            return whyf(why, whylen, "\"%s\": bad host", s);
    }
    if (parse_port(colon + 1) < 0)
        return whyf(why, whylen, "\"%s\": port must be 1..65535", s);
    return 0;
}

static int check_dns_server(const char *s, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;

    if (is_ipv4(s) || is_ipv6(s))
        return 0;
    if (*s == '[') {
        if ((colon = bracketed_v6(s, host, sizeof(host))) == NULL)
            return whyf(why, whylen, "\"%s\": not an IPv6 address in brackets", s);
        if (*colon == '\0')
            return 0;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
            return whyf(why, whylen, "\"%s\": expected IP, IP:PORT or [IPV6]:PORT", s);
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        if (!is_ipv4(host))
            return whyf(why, whylen, "\"%s\": expected IP, IP:PORT or [IPV6]:PORT", s);
    }
    if (*colon != ':' || parse_port(colon + 1) < 0)
        return whyf(why, whylen, "\"%s\": port must be 1..65535", s);
    return 0;
}

/* CIDR as cidr_list_parse() takes it: ADDR, ADDR/LEN, [V6], [V6]/LEN. Host
 * bits below the prefix are refused: 192.0.2.1/24 is usually a typo. */
static int check_cidr(const char *s, char *why, size_t whylen)
{
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bytes[16];
    const char *slash, *end;
    unsigned long long len;
    unsigned maxlen;
    int v6;

    if (*s == '[') {
        if ((slash = bracketed_v6(s, addr, sizeof(addr))) == NULL)
            return whyf(why, whylen, "\"%s\": not an IPv6 address in brackets", s);
        if (*slash != '\0' && *slash != '/')
            return whyf(why, whylen, "\"%s\": expected [IPV6]/LEN", s);
    } else {
        slash = strchr(s, '/');
        if (slash == NULL)
            slash = s + strlen(s);
        if ((size_t)(slash - s) >= sizeof(addr))
            return whyf(why, whylen, "\"%s\": not an IP address", s);
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
    }
    if (inet_pton(AF_INET, addr, bytes) == 1)
        v6 = 0;
    else if (inet_pton(AF_INET6, addr, bytes) == 1)
        v6 = 1;
    else
        return whyf(why, whylen, "\"%s\": not an IP address", s);
    maxlen = v6 ? 128 : 32;
    if (*slash == '\0')
        return 0;
    if (parse_digits(slash + 1, &len, &end) < 0 || *end != '\0' || len > maxlen)
        return whyf(why, whylen, "\"%s\": prefix length must be 0..%u", s, maxlen);
    for (unsigned bit = (unsigned)len; bit < maxlen; bit++)
        if (bytes[bit / 8] & (0x80 >> (bit % 8)))
            return whyf(why, whylen, "\"%s\": host bits set below the /%llu prefix", s, len);
    return 0;
}

/* User and group names: the portable POSIX set. */
static int namechars(const char *s, size_t n)
{
    if (n == 0 || *s == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static int check_username(const char *s, char *why, size_t whylen)
{
    if (*s != '\0' && !namechars(s, strlen(s)))
        return whyf(why, whylen, "not a user name");
    return 0;
}

static int check_owner(const char *s, char *why, size_t whylen)
{
    const char *colon = strchr(s, ':');

    if (*s == '\0')
        return 0;
    if (colon == NULL
            ? !namechars(s, strlen(s))
            : (!namechars(s, (size_t)(colon - s)) || !namechars(colon + 1, strlen(colon + 1))))
        return whyf(why, whylen, "expected user or user:group");
    return 0;
}

static int check_abspath(const char *s, char *why, size_t whylen)
{
    if (*s != '\0' && *s != '/')
        return whyf(why, whylen, "the path must be absolute");
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return whyf(why, whylen, "control character in path");
    return 0;
}

/* Goes into mail headers: letters, digits, '-', '.', '_' only. */
static int check_hostname(const char *s, char *why, size_t whylen)
{
    if (*s != '\0' && !hostchars(s))
        return whyf(why, whylen, "only letters, digits, '-', '.' and '_' are allowed");
    return 0;
}

/* A domain name: LDH labels of 1..63, 253 in all, no trailing dot needed. */
static int check_domain(const char *s, char *why, size_t whylen)
{
    size_t len = strlen(s), lab = 0;

    if (len == 0 || len > 253)
        return whyf(why, whylen, "not a domain name");
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (lab == 0)
                return whyf(why, whylen, "empty label");
            lab = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            if (++lab > 63)
                return whyf(why, whylen, "label longer than 63 characters");
        } else {
            return whyf(why, whylen, "not a domain name");
        }
    }
    return 0;
}

/* reject_action: what Postfix gets for a DMARC reject (the daemon appends the
 * explanation text). An empty action, a 2XX code or anything Postfix would not
 * read as a refusal is refused here rather than silently accepting mail. */
static int check_reject_action(const char *s, char *why, size_t whylen)
{
    if (strcasecmp(s, "REJECT") == 0 || strcasecmp(s, "DEFER_IF_PERMIT") == 0 ||
        strcasecmp(s, "DEFER") == 0)
        return 0;
    if ((s[0] == '4' || s[0] == '5') && isdigit((unsigned char)s[1]) &&
        isdigit((unsigned char)s[2]) && (s[3] == '\0' || s[3] == ' ')) {
        const char *d = s + 3;

        while (*d == ' ')
            d++;
        if (*d == '\0')
            return 0;
        /* enhanced status code X.Y.Z with X equal to the reply's first digit */
        if (d[0] == s[0] && d[1] == '.' && strspn(d + 2, "0123456789.") == strlen(d + 2) &&
            strchr(d + 2, '.') != NULL)
            return 0;
    }
    return whyf(why, whylen, "expected 5XX [X.Y.Z], 4XX [X.Y.Z], REJECT, DEFER or DEFER_IF_PERMIT");
}

static int check_quarantine_action(const char *s, char *why, size_t whylen)
{
    const char *colon;

    if (strcmp(s, "prepend") == 0 || strcmp(s, "hold") == 0 || strcmp(s, "reject") == 0)
        return 0;
    if (strncmp(s, "filter:", 7) == 0 && (colon = strchr(s + 7, ':')) != NULL && colon > s + 7 &&
        colon[1] != '\0' && strpbrk(s, " \t") == NULL)
        return 0;
    return whyf(why, whylen, "expected prepend, hold, reject or filter:TRANSPORT:DESTINATION");
}

/* redis: tcp:HOST:PORT (HOST may be [IPv6]) or unix:/ABSOLUTE/PATH. */
static int check_redis(const char *s, char *why, size_t whylen)
{
    const char *port;
    char *end;
    unsigned long v;

    if (*s == '\0')
        return 0;
    if (strncmp(s, "unix:/", 6) == 0 && strlen(s) - 5 < sizeof(((struct sockaddr_un *)0)->sun_path))
        return 0;
    if (strncmp(s, "tcp:", 4) != 0 || (port = strrchr(s + 4, ':')) == NULL || port == s + 4)
        return whyf(why, whylen, "expected tcp:HOST:PORT or unix:/PATH");
    errno = 0;
    v = strtoul(port + 1, &end, 10);
    if (port[1] == '\0' || *end != '\0' || errno || v == 0 || v > 65535)
        return whyf(why, whylen, "bad port");
    return 0;
}

/* redis_prefix: printable, no space, no '{' '}' (they would break the
 * Cluster hash tags) and no ':' at the end. */
static int check_prefix(const char *s, char *why, size_t whylen)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return whyf(why, whylen, "1..64 characters");
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '{' || *p == '}')
            return whyf(why, whylen, "no spaces, braces or control characters");
    if (s[n - 1] == ':')
        return whyf(why, whylen, "must not end with ':'");
    return 0;
}

/* report_email: local@domain, printable ASCII, no spaces or angle brackets. */
static int check_email(const char *s, char *why, size_t whylen)
{
    const char *at = strrchr(s, '@');

    if (*s == '\0')
        return 0;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '<' || *p == '>' || *p == '"' || *p == ',')
            return whyf(why, whylen, "not a plain mail address");
    if (at == NULL || at == s || at[1] == '\0' || check_domain(at + 1, why, whylen) < 0)
        return whyf(why, whylen, "expected local@domain");
    return 0;
}

/* Free text that ends up in report XML or mail headers: printable, no
 * control characters (UTF-8 allowed). */
static int check_text(const char *s, char *why, size_t whylen)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < ' ' || *p == 0x7f)
            return whyf(why, whylen, "control characters are not allowed");
    return 0;
}

/* greylist_action: a deferral Postfix understands; never a permit. */
static int check_grey_action(const char *s, char *why, size_t whylen)
{
    if (strcasecmp(s, "DEFER_IF_PERMIT") == 0 || strcasecmp(s, "DEFER") == 0)
        return 0;
    if (s[0] == '4' && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
        (s[3] == '\0' || (s[3] == ' ' && s[4] == '4' && s[5] == '.')))
        return 0;
    return whyf(why, whylen, "expected DEFER_IF_PERMIT, DEFER or 4XX [4.X.Y]");
}

/* metrics_listen: one inet listener, checked like a listen item. */
static int check_metrics_listen(const char *s, char *why, size_t whylen)
{
    if (*s == '\0')
        return 0;
    if (strncmp(s, "inet:", 5) != 0)
        return whyf(why, whylen, "expected inet:HOST:PORT");
    return check_listen(s, why, whylen);
}

/* ---- lists ---- */

static void list_clear(struct cfg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int list_push(struct cfg_list *l, const char *s, size_t n)
{
    char **items = realloc(l->items, (l->n + 1) * sizeof(*items));

    if (items == NULL)
        return -1;
    l->items = items;
    if ((l->items[l->n] = strndup(s, n)) == NULL)
        return -1;
    l->n++;
    return 0;
}

static int list_copy(struct cfg_list *dst, const struct cfg_list *src)
{
    struct cfg_list l = {NULL, 0};

    for (size_t i = 0; i < src->n; i++)
        if (list_push(&l, src->items[i], strlen(src->items[i])) < 0) {
            list_clear(&l);
            return -1;
        }
    list_clear(dst);
    *dst = l;
    return 0;
}

/* ---- one value ---- */

/* cfg_set: parse value into the row's field of c. On error writes the reason
 * into why and leaves c unchanged. */
static int cfg_set(const struct cfg_row *row, struct pd_config *c, const char *value, char *why,
                   size_t whylen)
{
    unsigned long long v;
    const char *end;
    switch (row->type) {
    case T_BOOL:
        if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 ||
            strcmp(value, "1") == 0)
            *FIELD(c, row, int) = 1;
        else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
                 strcmp(value, "0") == 0)
            *FIELD(c, row, int) = 0;
        else
            return whyf(why, whylen, "expected yes or no");
        return 0;
    case T_UINT:
        if (parse_digits(value, &v, &end) < 0 || *end != '\0')
            return whyf(why, whylen, "not a number");
        if (v < row->min || v > row->max)
            return whyf(why, whylen, "out of range %s", row->info.range);
        *FIELD(c, row, unsigned) = (unsigned)v;
        return 0;
    case T_DURATION:
        if (parse_duration(value, &v) < 0)
            return whyf(why, whylen, "not a duration (a number with unit ms, s, m, h, d or w)");
        if (v < row->min || v > row->max)
            return whyf(why, whylen, "out of range %s", row->info.range);
        *FIELD(c, row, unsigned) = (unsigned)v;
        return 0;
    case T_MODE:
        v = 0;
        if (*value == '\0')
            return whyf(why, whylen, "not an octal mode");
        for (end = value; *end; end++) {
            if (*end < '0' || *end > '7')
                return whyf(why, whylen, "not an octal mode");
            v = v * 8 + (unsigned)(*end - '0');
            if (v > row->max)
                return whyf(why, whylen, "out of range %s", row->info.range);
        }
        *FIELD(c, row, unsigned) = (unsigned)v;
        return 0;
    case T_ENUM:
        for (size_t i = 0; row->names[i] != NULL; i++)
            if (strcasecmp(value, row->names[i]) == 0) {
                *FIELD(c, row, int) = row->values[i];
                return 0;
            }
        return whyf(why, whylen, "expected one of %s", row->info.range);
    case T_STRING: {
        char *s;

        if (row->check != NULL && row->check(value, why, whylen) < 0)
            return -1;
        if ((s = strdup(value)) == NULL)
            return whyf(why, whylen, "out of memory");
        free(*FIELD(c, row, char *));
        *FIELD(c, row, char *) = s;
        return 0;
    }
    case T_LIST: {
        struct cfg_list l = {NULL, 0};
        const char *p = value;
        size_t n;

        for (;;) {
            p += strspn(p, ", \t");
            if (*p == '\0')
                break;
            n = strcspn(p, ", \t");
            if (list_push(&l, p, n) < 0) {
                list_clear(&l);
                return whyf(why, whylen, "out of memory");
            }
            if (row->check != NULL && row->check(l.items[l.n - 1], why, whylen) < 0) {
                list_clear(&l);
                return -1;
            }
            p += n;
        }
        if (l.n < row->min_items) {
            list_clear(&l);
            return whyf(why, whylen, "at least %zu item%s needed", row->min_items,
                        row->min_items == 1 ? "" : "s");
        }
        list_clear(FIELD(c, row, struct cfg_list));
        *FIELD(c, row, struct cfg_list) = l;
        return 0;
    }
    }
    return whyf(why, whylen, "internal error: unknown type");
}

/* cfg_format: the value as `-n` prints it (and as it would be written in a
 * file). Caller frees; NULL on allocation failure. */
static char *cfg_format(const struct cfg_row *row, const struct pd_config *c)
{
    char buf[64], *out;
    size_t len = 0;

    switch (row->type) {
    case T_BOOL:
        return strdup(*CFIELD(c, row, int) ? "yes" : "no");
    case T_UINT:
        snprintf(buf, sizeof(buf), "%u", *CFIELD(c, row, unsigned));
        return strdup(buf);
    case T_DURATION:
        format_duration(*CFIELD(c, row, unsigned), buf, sizeof(buf));
        return strdup(buf);
    case T_MODE:
        snprintf(buf, sizeof(buf), "%04o", *CFIELD(c, row, unsigned));
        return strdup(buf);
    case T_ENUM:
        for (size_t i = 0; row->names[i] != NULL; i++)
            if (row->values[i] == *CFIELD(c, row, int))
                return strdup(row->names[i]);
        snprintf(buf, sizeof(buf), "%d", *CFIELD(c, row, int));
        return strdup(buf);
    case T_STRING: {
        const char *s = *CFIELD(c, row, char *);

        return strdup(s ? s : "");
    }
    case T_LIST: {
        const struct cfg_list *l = CFIELD(c, row, struct cfg_list);

        for (size_t i = 0; i < l->n; i++)
            len += strlen(l->items[i]) + 2;
        if ((out = malloc(len + 1)) == NULL)
            return NULL;
        out[0] = '\0';
        len = 0;
        for (size_t i = 0; i < l->n; i++)
            len += (size_t)sprintf(out + len, "%s%s", i ? ", " : "", l->items[i]);
        return out;
    }
    }
    return NULL;
}

/* Copy one field from src to dst (deep for strings and lists). */
static int cfg_copy(const struct cfg_row *row, struct pd_config *dst, const struct pd_config *src)
{
    char *s;

    switch (row->type) {
    case T_BOOL:
    case T_ENUM:
        *FIELD(dst, row, int) = *CFIELD(src, row, int);
        return 0;
    case T_UINT:
    case T_DURATION:
    case T_MODE:
        *FIELD(dst, row, unsigned) = *CFIELD(src, row, unsigned);
        return 0;
    case T_STRING:
        if ((s = strdup(*CFIELD(src, row, char *) ? *CFIELD(src, row, char *) : "")) == NULL)
            return -1;
        free(*FIELD(dst, row, char *));
        *FIELD(dst, row, char *) = s;
        return 0;
    case T_LIST:
        return list_copy(FIELD(dst, row, struct cfg_list), CFIELD(src, row, struct cfg_list));
    }
    return -1;
}

/* ---- whole configs ---- */

/* Defaults computed at run time: hostname from the system, authserv_id from
 * hostname. Applied after the file so `hostname = x` also moves authserv_id. */
static int cfg_finish(struct pd_config *c)
{
    char host[256];
    char *s;

    if (c->hostname == NULL || c->hostname[0] == '\0') {
        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        if ((s = strdup(host)) == NULL)
            return -1;
        free(c->hostname);
        c->hostname = s;
    }
    if (c->authserv_id == NULL || c->authserv_id[0] == '\0') {
        if ((s = strdup(c->hostname)) == NULL)
            return -1;
        free(c->authserv_id);
        c->authserv_id = s;
    }
    return 0;
}

/* The table's defaults, without the run-time ones. */
static struct pd_config *cfg_table_defaults(void)
{
    struct pd_config *c = calloc(1, sizeof(*c));
    char why[256];

    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < CFG_NROWS; i++)
        if (cfg_set(&cfg_rows[i], c, cfg_rows[i].info.dflt, why, sizeof(why)) < 0) {
            /* A default that does not parse is a bug in the table. */
            log_msg(LOG_L_ERROR, "cfg: bad default for %s: %s", cfg_rows[i].info.name, why);
            abort();
        }
    return c;
}

struct pd_config *cfg_defaults(void)
{
    struct pd_config *c = cfg_table_defaults();

    if (c != NULL && cfg_finish(c) < 0)
        cfg_free(&c);
    return c;
}

void cfg_free(struct pd_config **cp)
{
    struct pd_config *c;

    if (cp == NULL || (c = *cp) == NULL)
        return;
    for (size_t i = 0; i < CFG_NROWS; i++) {
        if (cfg_rows[i].type == T_STRING)
            free(*FIELD(c, &cfg_rows[i], char *));
        else if (cfg_rows[i].type == T_LIST)
            list_clear(FIELD(c, &cfg_rows[i], struct cfg_list));
    }
    free(c);
    *cp = NULL;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* One logical line "name = value" starting at line lineno. */
static int cfg_apply_line(struct pd_config *c, const char *path, unsigned lineno, char *text,
                          char *err, size_t errlen)
{
    const struct cfg_row *row;
    char *eq = strchr(text, '='), *name, *value;
    char why[512];

    if (eq == NULL) {
        snprintf(err, errlen, "%s:%u: expected \"name = value\", got \"%s\"", path, lineno, text);
        return -1;
    }
    *eq = '\0';
    name = trim(text);
    value = trim(eq + 1);
    if (*name == '\0') {
        snprintf(err, errlen, "%s:%u: missing setting name before \"=\"", path, lineno);
        return -1;
    }
    if ((row = cfg_find(name)) == NULL) {
        snprintf(err, errlen, "%s:%u: unknown setting \"%s\"", path, lineno, name);
        return -1;
    }
    if (cfg_set(row, c, value, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s:%u: bad value \"%s\" for %s: %s", path, lineno, value, name, why);
        return -1;
    }
    return 0;
}

/* Append src to the growing logical line *buf, joined by one space. */
static int logical_append(char **buf, size_t *len, size_t *cap, const char *src)
{
    size_t n = strlen(src), need = *len + (*len ? 1 : 0) + n + 1;

    if (need > *cap) {
        size_t ncap = *cap ? *cap : 256;
        char *nb;

        while (ncap < need)
            ncap *= 2;
        if ((nb = realloc(*buf, ncap)) == NULL)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    if (*len)
        (*buf)[(*len)++] = ' ';
    memcpy(*buf + *len, src, n + 1);
    *len += n;
    return 0;
}

struct pd_config *cfg_load(const char *path, char *err, size_t errlen)
{
    struct pd_config *c;
    FILE *fp;
    char *line = NULL, *logical = NULL, *s;
    size_t linecap = 0, len = 0, cap = 0;
    unsigned lineno = 0, start = 0;
    int failed = 0, have = 0;
    char dummy[1];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if ((fp = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if ((c = cfg_table_defaults()) == NULL) {
        fclose(fp);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    while (!failed && getline(&line, &linecap, fp) != -1) {
        lineno++;
        s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;    /* blank and comment lines do not end a logical line */
        if (s != line) { /* leading whitespace: continuation */
            if (!have) {
                snprintf(err, errlen, "%s:%u: continuation line without a setting before it", path,
                         lineno);
                failed = 1;
            } else if (logical_append(&logical, &len, &cap, s) < 0) {
                snprintf(err, errlen, "%s:%u: out of memory", path, lineno);
                failed = 1;
            }
            continue;
        }
        if (have && cfg_apply_line(c, path, start, logical, err, errlen) < 0) {
            failed = 1;
            break;
        }
        len = 0;
        have = 1;
        start = lineno;
        if (logical_append(&logical, &len, &cap, s) < 0) {
            snprintf(err, errlen, "%s:%u: out of memory", path, lineno);
            failed = 1;
        }
    }
    if (!failed && ferror(fp)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        failed = 1;
    }
    if (!failed && have && cfg_apply_line(c, path, start, logical, err, errlen) < 0)
        failed = 1;
    if (!failed && cfg_finish(c) < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        failed = 1;
    }
    free(line);
    free(logical);
    fclose(fp);
    if (failed)
        cfg_free(&c);
    return c;
}

/* Whether the row's value in c differs from its default; d holds the table
 * defaults plus the system host name. authserv_id defaults to c's own
 * hostname, not the system's. */
static int cfg_differs(const struct cfg_row *row, const struct pd_config *c,
                       const struct pd_config *d)
{
    char *a, *b;
    int differs;

    if (row->off == OFF(authserv_id))
        return strcmp(c->authserv_id ? c->authserv_id : "", c->hostname ? c->hostname : "") != 0;
    a = cfg_format(row, c);
    b = cfg_format(row, d);
    differs = a == NULL || b == NULL || strcmp(a, b) != 0;
    free(a);
    free(b);
    return differs;
}

void cfg_print_nondefault(const struct pd_config *c, FILE *out)
{
    struct pd_config *d = cfg_defaults();
    char *v;

    if (d == NULL)
        return;
    for (size_t i = 0; i < CFG_NROWS; i++) {
        if (!cfg_differs(&cfg_rows[i], c, d))
            continue;
        if ((v = cfg_format(&cfg_rows[i], c)) != NULL)
            fprintf(out, "%s =%s%s\n", cfg_rows[i].info.name, *v ? " " : "", v);
        free(v);
    }
    cfg_free(&d);
}

int cfg_reload_merge(const struct pd_config *old, struct pd_config *next, char *msg, size_t msglen)
{
    size_t used = 0;
    int changed = 0;
    char *a, *b;

    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
    for (size_t i = 0; i < CFG_NROWS; i++) {
        const struct cfg_row *row = &cfg_rows[i];

        if (row->info.reloadable)
            continue;
        a = cfg_format(row, old);
        b = cfg_format(row, next);
        if (a == NULL || b == NULL || strcmp(a, b) != 0) {
            changed++;
            cfg_copy(row, next, old);
            if (msg != NULL && used < msglen) {
                int n = snprintf(msg + used, msglen - used, "%s%s: changed, restart needed",
                                 used ? "\n" : "", row->info.name);

                if (n > 0)
                    used += (size_t)n < msglen - used ? (size_t)n : msglen - used - 1;
            }
        }
        free(a);
        free(b);
    }
    return changed;
}
