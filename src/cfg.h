/* cfg.h - the configuration: one typed table (name, type, default, range or
 * enum, reloadable) and the parser for Postfix-style files:
 *
 *     # comment
 *     name = value
 *     name = value that continues
 *         on lines starting with whitespace
 *
 * Lists (listen, dns_servers, trusted_networks) take comma- and/or
 * whitespace-separated items. Durations take a number with an optional unit
 * (ms, s, m, h, d, w; no unit = seconds). Booleans are yes/no (true/false, 1/0).
 * Every error is reported as `file:line: message`.
 *
 * Ownership: a struct pd_config owns all its strings; cfg_free() frees them. */
#ifndef PD_CFG_H
#define PD_CFG_H

#include <stddef.h>
#include <stdio.h>

#define CFG_DEFAULT_PATH "/etc/policyd-dmarc/policyd-dmarc.conf"

struct cfg_list {
    char **items; /* each owned */
    size_t n;
};

enum cfg_spf_headers {
    CFG_HDR_RECEIVED_SPF = 0,
    CFG_HDR_AUTH_RESULTS,
    CFG_HDR_BOTH,
    CFG_HDR_NONE,
};

enum { CFG_DMARC_RFC9989 = 0, CFG_DMARC_RFC7489 };
enum { CFG_ORG_TREEWALK = 0, CFG_ORG_PSL };
enum { CFG_TEMPERROR_DUNNO = 0, CFG_TEMPERROR_DEFER };
enum { CFG_WEAK_NONE = 0, CFG_WEAK_QUARANTINE, CFG_WEAK_POLICY };
enum { CFG_DISP_NONE = 0, CFG_DISP_QUARANTINE, CFG_DISP_REJECT };
enum { CFG_COUNT_RCPT = 0, CFG_COUNT_EOM };
enum { CFG_REPORT_RFC9990 = 0, CFG_REPORT_RFC7489 };

struct pd_config {
    /* listeners and processes (not reloadable) */
    struct cfg_list
        listen; /* "inet:HOST:PORT", "inet:[V6]:PORT", "unix:PATH"; default inet:127.0.0.1:10040 */
    unsigned socket_mode;     /* unix socket mode; default 0666 */
    char *socket_owner;       /* "user[:group]" for unix sockets; default "" = unchanged */
    char *user;               /* drop privileges to this user after binding; default "" = stay */
    int allow_root;           /* run as root when user is empty; default no */
    char *pid_file;           /* default "" = none */
    unsigned workers;         /* SPF worker processes; default 4, 1..256 */
    unsigned max_connections; /* default 1000, 1..1000000 (reloadable) */
    unsigned idle_timeout_ms; /* default 600s (reloadable) */

    /* DNS (reloadable) */
    struct cfg_list dns_servers;    /* "IP[:PORT]"; default empty = /etc/resolv.conf */
    unsigned dns_timeout_ms;        /* per attempt; default 2s, 100ms..60s */
    unsigned dns_retries;           /* extra attempts; default 2, 0..10 */
    unsigned dns_cache_size;        /* entries; default 100000, 0..10000000 */
    unsigned evaluation_timeout_ms; /* total SPF deadline; default 10s, 1s..90s */

    /* decisions (reloadable) */
    struct cfg_list trusted_networks; /* CIDR; default "127.0.0.0/8 ::1/128" */
    int skip_authenticated;           /* default yes */
    char *hostname;                   /* our name (Received-SPF receiver); default gethostname() */
    char *authserv_id;                /* Authentication-Results id; default = hostname */
    enum cfg_spf_headers spf_headers; /* default received-spf */
    unsigned instance_table_size;     /* messages remembered; default 50000, 100..10000000 */
    unsigned instance_timeout_ms;     /* how long a message is remembered; default 1h */
    unsigned verdict_cache_ttl_ms;    /* SPF verdict reuse cap; default 300s, 0 disables */

    /* envelope DMARC (reloadable) */
    int dmarc;               /* evaluate envelope DMARC; default yes */
    int dmarc_mode;          /* CFG_DMARC_RFC9989 (default) | CFG_DMARC_RFC7489 */
    int org_domain_method;   /* CFG_ORG_TREEWALK (default) | CFG_ORG_PSL */
    char *psl_file;          /* default /usr/share/publicsuffix/public_suffix_list.dat */
    char *reject_action;     /* Postfix action + code for reject; default "550 5.7.1" */
    char *quarantine_action; /* "prepend" (default) | "hold" | "filter:TRANSPORT:DEST" | "reject" */
    int temperror_action;    /* CFG_TEMPERROR_DUNNO (default) | CFG_TEMPERROR_DEFER */
    int weak_spf_disposition; /* CFG_WEAK_NONE (default) | CFG_WEAK_QUARANTINE | CFG_WEAK_POLICY */
    int max_disposition;      /* CFG_DISP_NONE | CFG_DISP_QUARANTINE | CFG_DISP_REJECT (default) */
    struct cfg_list trusted_forwarders;       /* CIDR; reason trusted_forwarder */
    struct cfg_list whitelist_sender_domains; /* domains (and their subdomains); local_policy */
    int dmarc_header;                         /* prepend X-Envelope-DMARC; default yes */

    /* counters in Redis (reloadable) */
    char *redis;                   /* "tcp:HOST:PORT" or "unix:PATH"; default "" = no counting */
    char *redis_password;          /* AUTH; default "" */
    unsigned redis_db;             /* SELECT; default 0, 0..1000 */
    char *redis_prefix;            /* key prefix; default "pd" */
    unsigned counter_retention_ms; /* key TTL; default 7d, 1h..366d */
    int count_stage;               /* CFG_COUNT_RCPT (default) | CFG_COUNT_EOM */
    unsigned counter_buffer;       /* rows kept while Redis is away; default 100000 */

    /* the reporter (policyd-dmarc-report) */
    char *report_org_name;      /* <org_name>; default = hostname */
    char *report_email;         /* <email> and the From: address; default "" (required to mail) */
    char *report_extra_contact; /* <extra_contact_info>; default "" */
    int report_format;          /* CFG_REPORT_RFC9990 (default) | CFG_REPORT_RFC7489 */
    char *sendmail_command;     /* default /usr/sbin/sendmail (argv[0], no shell) */
    unsigned report_max_size;   /* bytes of one gzip attachment; default 10485760 */

    /* greylisting (reloadable) */
    int greylist;                                  /* default no */
    unsigned greylist_delay_ms;                    /* default 300s */
    unsigned greylist_retry_window_ms;             /* default 2d */
    unsigned greylist_max_age_ms;                  /* default 35d */
    unsigned greylist_ipv4_prefix;                 /* default 24, 8..32 */
    unsigned greylist_ipv6_prefix;                 /* default 64, 16..128 */
    unsigned greylist_awl_count;                   /* default 5, 0 disables */
    char *greylist_action;                         /* default "DEFER_IF_PERMIT" */
    char *greylist_text;                           /* %s = seconds left, %r = recipient domain */
    struct cfg_list greylist_whitelist_clients;    /* files, postgrey format */
    struct cfg_list greylist_whitelist_recipients; /* files, postgrey format */
    int greylist_skip_authenticated; /* SPF pass for p=quarantine/reject; default yes */

    /* metrics (not reloadable) */
    char *metrics_listen; /* "inet:HOST:PORT" for Prometheus; default "" = off */

    /* logging (reloadable) */
    int log_target; /* enum log_target: "syslog" (default) or "stderr" */
    int log_level;  /* enum log_level: error, warning, info (default), debug */
};

/* cfg_defaults: a config holding every default. NULL on allocation failure. */
struct pd_config *cfg_defaults(void);
/* cfg_load: parse path into a fresh config (defaults + file). On error returns
 * NULL and writes "file:line: message" (or "file: message") into err. */
struct pd_config *cfg_load(const char *path, char *err, size_t errlen);
void cfg_free(struct pd_config **cp);

/* cfg_print_nondefault: `name = value` for every setting that differs from its
 * default, in table order (the `-n` output). */
void cfg_print_nondefault(const struct pd_config *c, FILE *out);

/* cfg_reload_check: compare old and new; for each non-reloadable setting that
 * differs, write "name: changed, restart needed" lines into msg (newline-separated)
 * and copy the OLD value into *next (so a reload applies only reloadable ones).
 * Returns the number of such settings. */
int cfg_reload_merge(const struct pd_config *old, struct pd_config *next, char *msg, size_t msglen);

/* Table introspection (for tests and docs checks). */
struct cfg_info {
    const char *name;
    const char *type;  /* "bool", "uint", "duration", "string", "enum", "list", "mode" */
    const char *dflt;  /* default as written in a file ("" when empty/computed) */
    const char *range; /* "1..256", "syslog|stderr", ... or "" */
    int reloadable;
    const char *summary; /* one line */
};
size_t cfg_table_size(void);
const struct cfg_info *cfg_table_row(size_t i);

#endif
