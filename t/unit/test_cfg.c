/* test_cfg.c - the config parser and table: every default, every type's good
 * and bad values with the exact `file:line:` errors, range end points of every
 * row, continuation lines, comments, duplicates, `-n` output and reload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "tap.h"

static char conf_path[256];

/* Write text into the test's config file (same path every time). */
static void put_conf(const char *text)
{
    FILE *fp = fopen(conf_path, "w");

    if (fp == NULL) {
        perror(conf_path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
}

static struct pd_config *load_text(const char *text, char *err, size_t errlen)
{
    put_conf(text);
    return cfg_load(conf_path, err, errlen);
}

/* cfg_print_nondefault into a string (caller frees). */
static char *nondefault(const struct pd_config *c)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *fp = open_memstream(&buf, &sz);

    cfg_print_nondefault(c, fp);
    fclose(fp);
    return buf;
}

/* Good values: the file, and the exact `-n` output it must give. */
static const struct {
    const char *text, *printed;
} good[] = {
    {"", ""},
    {"workers = 8\n", "workers = 8\n"},
    {"workers=8", "workers = 8\n"},
    {"workers\t=\t8  \n", "workers = 8\n"},
    {"workers = 4\n", ""},
    {"max_connections = 1000000\n", "max_connections = 1000000\n"},
    {"dns_retries = 0\n", "dns_retries = 0\n"},
    {"dns_cache_size = 0\n", "dns_cache_size = 0\n"},
    {"dns_timeout = 500ms\n", "dns_timeout = 500ms\n"},
    {"dns_timeout = 3\n", "dns_timeout = 3s\n"},
    {"dns_timeout = 2000ms\n", ""},
    {"dns_timeout = 60000ms\n", "dns_timeout = 1m\n"},
    {"dns_timeout = 1500ms\n", "dns_timeout = 1500ms\n"},
    {"idle_timeout = 600\n", ""},
    {"idle_timeout = 2h\n", "idle_timeout = 2h\n"},
    {"idle_timeout = 1d\n", "idle_timeout = 1d\n"},
    {"idle_timeout = 90s\n", "idle_timeout = 90s\n"},
    {"instance_timeout = 1w\n", "instance_timeout = 1w\n"},
    {"instance_timeout = 120m\n", "instance_timeout = 2h\n"},
    {"instance_timeout = 7d\n", "instance_timeout = 1w\n"},
    {"verdict_cache_ttl = 0\n", "verdict_cache_ttl = 0s\n"},
    {"verdict_cache_ttl = 0ms\n", "verdict_cache_ttl = 0s\n"},
    {"evaluation_timeout = 90s\n", "evaluation_timeout = 90s\n"},
    {"skip_authenticated = no\n", "skip_authenticated = no\n"},
    {"skip_authenticated = false\n", "skip_authenticated = no\n"},
    {"skip_authenticated = 0\n", "skip_authenticated = no\n"},
    {"skip_authenticated = NO\n", "skip_authenticated = no\n"},
    {"skip_authenticated = true\n", ""},
    {"skip_authenticated = 1\n", ""},
    {"socket_mode = 0660\n", "socket_mode = 0660\n"},
    {"socket_mode = 660\n", "socket_mode = 0660\n"},
    {"socket_mode = 0\n", "socket_mode = 0000\n"},
    {"socket_mode = 666\n", ""},
    {"spf_headers = both\n", "spf_headers = both\n"},
    {"spf_headers = Authentication-Results\n", "spf_headers = authentication-results\n"},
    {"spf_headers = none\n", "spf_headers = none\n"},
    {"log = stderr\n", "log = stderr\n"},
    {"reject_action = 550 5.7.1\n", ""},
    {"reject_action = 554\n", "reject_action = 554\n"},
    {"reject_action = 451 4.7.1\n", "reject_action = 451 4.7.1\n"},
    {"reject_action = DEFER_IF_PERMIT\n", "reject_action = DEFER_IF_PERMIT\n"},
    {"quarantine_action = hold\n", "quarantine_action = hold\n"},
    {"quarantine_action = filter:smtp:[127.0.0.1]:10025\n",
     "quarantine_action = filter:smtp:[127.0.0.1]:10025\n"},
    {"dmarc_mode = rfc7489\norg_domain_method = psl\n",
     "dmarc_mode = rfc7489\norg_domain_method = psl\n"},
    {"whitelist_sender_domains = example.org, Lists.Example.NET\n",
     "whitelist_sender_domains = example.org, Lists.Example.NET\n"},
    {"trusted_forwarders = 192.0.2.0/24 2001:db8::/32\n",
     "trusted_forwarders = 192.0.2.0/24, 2001:db8::/32\n"},
    {"log_level = debug\n", "log_level = debug\n"},
    {"log_level = warning\n", "log_level = warning\n"},
    {"listen = inet:[::1]:10040, unix:/run/policyd-dmarc/p.sock\n",
     "listen = inet:[::1]:10040, unix:/run/policyd-dmarc/p.sock\n"},
    {"listen = inet:localhost:1  inet:0.0.0.0:65535\n",
     "listen = inet:localhost:1, inet:0.0.0.0:65535\n"},
    {"listen = ,inet:127.0.0.1:10040,\n", ""},
    {"dns_servers = 127.0.0.1 ::1 192.0.2.1:5353 [2001:db8::1]:53 [::1]\n",
     "dns_servers = 127.0.0.1, ::1, 192.0.2.1:5353, [2001:db8::1]:53, [::1]\n"},
    {"trusted_networks = 10.0.0.0/8,192.168.0.0/16 2001:db8::/32 192.0.2.7 [2001:db8::1]/128 "
     "0.0.0.0/0 ::/0\n",
     "trusted_networks = 10.0.0.0/8, 192.168.0.0/16, 2001:db8::/32, 192.0.2.7, "
     "[2001:db8::1]/128, 0.0.0.0/0, ::/0\n"},
    {"trusted_networks =\n", "trusted_networks =\n"},
    {"trusted_networks = 127.0.0.0/8 ::1/128\n", ""},
    {"user = postfix\n", "user = postfix\n"},
    {"socket_owner = postfix:mail\n", "socket_owner = postfix:mail\n"},
    {"socket_owner = postfix\n", "socket_owner = postfix\n"},
    {"pid_file = /run/policyd-dmarc.pid\n", "pid_file = /run/policyd-dmarc.pid\n"},
    {"pid_file = /run/a#b\n", "pid_file = /run/a#b\n"},
    {"hostname = mx.example.org\n", "hostname = mx.example.org\n"},
    {"authserv_id = example.org\n", "authserv_id = example.org\n"},
    {"hostname = mx.example.org\nauthserv_id = mx.example.org\n", "hostname = mx.example.org\n"},
    /* table order, not file order */
    {"log_level = debug\nworkers = 2\n", "workers = 2\nlog_level = debug\n"},
    /* the last one wins */
    {"workers = 3\nworkers = 5\n", "workers = 5\n"},
    /* comments and blank lines */
    {"# comment\n\n   \n  # indented comment\nworkers = 3\n#workers = 9\n", "workers = 3\n"},
    {"workers = 3\r\n", "workers = 3\n"},
    {"workers = 3", "workers = 3\n"},
    /* continuation lines, also across a comment (as Postfix does) */
    {"listen = inet:127.0.0.1:1,\n  inet:127.0.0.1:2\n\tunix:/x\n",
     "listen = inet:127.0.0.1:1, inet:127.0.0.1:2, unix:/x\n"},
    {"listen = inet:127.0.0.1:1\n# comment\n\n  inet:127.0.0.1:2\n",
     "listen = inet:127.0.0.1:1, inet:127.0.0.1:2\n"},
    {"workers\n  = 7\n", "workers = 7\n"},
};

/* Bad files: the exact error (%s is the file's path). */
static const struct {
    const char *text, *err;
} bad[] = {
    {"foo = 1\n", "%s:1: unknown setting \"foo\""},
    {"Workers = 1\n", "%s:1: unknown setting \"Workers\""},
    {"\n\n# c\nworkers = 0\n", "%s:4: bad value \"0\" for workers: out of range 1..256"},
    {"workers = 257\n", "%s:1: bad value \"257\" for workers: out of range 1..256"},
    {"workers = x\n", "%s:1: bad value \"x\" for workers: not a number"},
    {"workers = -1\n", "%s:1: bad value \"-1\" for workers: not a number"},
    {"workers = 4.5\n", "%s:1: bad value \"4.5\" for workers: not a number"},
    {"workers = 0x10\n", "%s:1: bad value \"0x10\" for workers: not a number"},
    {"workers =\n", "%s:1: bad value \"\" for workers: not a number"},
    {"workers = 99999999999999999999999\n",
     "%s:1: bad value \"99999999999999999999999\" for workers: not a number"},
    {"dns_cache_size = 4294967297\n",
     "%s:1: bad value \"4294967297\" for dns_cache_size: out of range 0..10000000"},
    {"workers = 3 # not a comment\n",
     "%s:1: bad value \"3 # not a comment\" for workers: not a number"},
    {"dns_timeout = 50ms\n", "%s:1: bad value \"50ms\" for dns_timeout: out of range 100ms..60s"},
    {"dns_timeout = 61s\n", "%s:1: bad value \"61s\" for dns_timeout: out of range 100ms..60s"},
    {"dns_timeout = 2 s\n", "%s:1: bad value \"2 s\" for dns_timeout: not a duration (a number "
                            "with unit ms, s, m, h, d or w)"},
    {"dns_timeout = 2sec\n", "%s:1: bad value \"2sec\" for dns_timeout: not a duration (a number "
                             "with unit ms, s, m, h, d or w)"},
    {"dns_timeout = 1.5s\n", "%s:1: bad value \"1.5s\" for dns_timeout: not a duration (a number "
                             "with unit ms, s, m, h, d or w)"},
    {"dns_timeout = s\n", "%s:1: bad value \"s\" for dns_timeout: not a duration (a number "
                          "with unit ms, s, m, h, d or w)"},
    {"dns_timeout = 2S\n", "%s:1: bad value \"2S\" for dns_timeout: not a duration (a number "
                           "with unit ms, s, m, h, d or w)"},
    {"instance_timeout = 99999999999999999w\n",
     "%s:1: bad value \"99999999999999999w\" for instance_timeout: not a duration (a number "
     "with unit ms, s, m, h, d or w)"},
    {"instance_timeout = 8d\n", "%s:1: bad value \"8d\" for instance_timeout: out of range 1m..1w"},
    {"skip_authenticated = maybe\n",
     "%s:1: bad value \"maybe\" for skip_authenticated: expected yes or no"},
    {"skip_authenticated =\n", "%s:1: bad value \"\" for skip_authenticated: expected yes or no"},
    {"socket_mode = 0999\n", "%s:1: bad value \"0999\" for socket_mode: not an octal mode"},
    {"socket_mode = rw\n", "%s:1: bad value \"rw\" for socket_mode: not an octal mode"},
    {"socket_mode = 01777\n", "%s:1: bad value \"01777\" for socket_mode: out of range 0000..0777"},
    {"spf_headers = all\n", "%s:1: bad value \"all\" for spf_headers: expected one of "
                            "received-spf|authentication-results|both|none"},
    {"reject_action = 250 ok\n", "%s:1: bad value \"250 ok\" for reject_action: expected 5XX "
                                 "[X.Y.Z], 4XX [X.Y.Z], REJECT, DEFER or DEFER_IF_PERMIT"},
    {"reject_action = 550 4.7.1\n", "%s:1: bad value \"550 4.7.1\" for reject_action: expected "
                                    "5XX [X.Y.Z], 4XX [X.Y.Z], REJECT, DEFER or DEFER_IF_PERMIT"},
    {"reject_action = OK\n", "%s:1: bad value \"OK\" for reject_action: expected 5XX [X.Y.Z], "
                             "4XX [X.Y.Z], REJECT, DEFER or DEFER_IF_PERMIT"},
    {"quarantine_action = filter:smtp\n",
     "%s:1: bad value \"filter:smtp\" for quarantine_action: expected prepend, hold, reject or "
     "filter:TRANSPORT:DESTINATION"},
    {"whitelist_sender_domains = exa mple..org\n",
     "%s:1: bad value \"exa mple..org\" for whitelist_sender_domains: empty label"},
    {"log = file\n", "%s:1: bad value \"file\" for log: expected one of syslog|stderr"},
    {"log_level = notice\n",
     "%s:1: bad value \"notice\" for log_level: expected one of error|warning|info|debug"},
    {"listen =\n", "%s:1: bad value \"\" for listen: at least 1 item needed"},
    {"listen = inet:127.0.0.1\n", "%s:1: bad value \"inet:127.0.0.1\" for listen: "
                                  "\"inet:127.0.0.1\": expected inet:HOST:PORT"},
    {"listen = inet:127.0.0.1:10040 inet:127.0.0.1:0\n",
     "%s:1: bad value \"inet:127.0.0.1:10040 inet:127.0.0.1:0\" for listen: "
     "\"inet:127.0.0.1:0\": port must be 1..65535"},
    {"listen = inet:127.0.0.1:65536\n", "%s:1: bad value \"inet:127.0.0.1:65536\" for listen: "
                                        "\"inet:127.0.0.1:65536\": port must be 1..65535"},
    {"listen = inet:127.0.0.1:\n", "%s:1: bad value \"inet:127.0.0.1:\" for listen: "
                                   "\"inet:127.0.0.1:\": port must be 1..65535"},
    {"listen = inet::10040\n",
     "%s:1: bad value \"inet::10040\" for listen: \"inet::10040\": missing host"},
    {"listen = inet:::1:25\n",
     "%s:1: bad value \"inet:::1:25\" for listen: \"inet:::1:25\": write an IPv6 address in "
     "brackets"},
    {"listen = inet:[::1]\n",
     "%s:1: bad value \"inet:[::1]\" for listen: \"inet:[::1]\": expected inet:[IPV6]:PORT"},
    {"listen = inet:[1.2.3.4]:25\n", "%s:1: bad value \"inet:[1.2.3.4]:25\" for listen: "
                                     "\"inet:[1.2.3.4]:25\": not an IPv6 address in brackets"},
    {"listen = inet:bad!host:25\n",
     "%s:1: bad value \"inet:bad!host:25\" for listen: \"inet:bad!host:25\": bad host"},
    {"listen = unix:run/p.sock\n", "%s:1: bad value \"unix:run/p.sock\" for listen: "
                                   "\"unix:run/p.sock\": the socket path must be absolute"},
    {"listen = tcp:1.2.3.4:25\n",
     "%s:1: bad value \"tcp:1.2.3.4:25\" for listen: \"tcp:1.2.3.4:25\": expected "
     "inet:HOST:PORT, inet:[IPV6]:PORT or unix:/PATH"},
    {"listen = 127.0.0.1:10040\n",
     "%s:1: bad value \"127.0.0.1:10040\" for listen: \"127.0.0.1:10040\": expected "
     "inet:HOST:PORT, inet:[IPV6]:PORT or unix:/PATH"},
    {"dns_servers = 1.2.3\n",
     "%s:1: bad value \"1.2.3\" for dns_servers: \"1.2.3\": expected IP, IP:PORT or [IPV6]:PORT"},
    {"dns_servers = dns.example:53\n", "%s:1: bad value \"dns.example:53\" for dns_servers: "
                                       "\"dns.example:53\": expected IP, IP:PORT or [IPV6]:PORT"},
    {"dns_servers = 1.2.3.4:0\n",
     "%s:1: bad value \"1.2.3.4:0\" for dns_servers: \"1.2.3.4:0\": port must be 1..65535"},
    {"dns_servers = [::1]:x\n",
     "%s:1: bad value \"[::1]:x\" for dns_servers: \"[::1]:x\": port must be 1..65535"},
    {"dns_servers = [::1]53\n",
     "%s:1: bad value \"[::1]53\" for dns_servers: \"[::1]53\": port must be 1..65535"},
    {"dns_servers = [1.2.3.4]:53\n", "%s:1: bad value \"[1.2.3.4]:53\" for dns_servers: "
                                     "\"[1.2.3.4]:53\": not an IPv6 address in brackets"},
    {"trusted_networks = 10.0.0.1/8\n", "%s:1: bad value \"10.0.0.1/8\" for trusted_networks: "
                                        "\"10.0.0.1/8\": host bits set below the /8 prefix"},
    {"trusted_networks = 2001:db8::1/32\n",
     "%s:1: bad value \"2001:db8::1/32\" for trusted_networks: \"2001:db8::1/32\": host bits set "
     "below the /32 prefix"},
    {"trusted_networks = 192.0.2.128/24\n",
     "%s:1: bad value \"192.0.2.128/24\" for trusted_networks: \"192.0.2.128/24\": host bits set "
     "below the /24 prefix"},
    {"trusted_networks = 10.0.0.0/33\n", "%s:1: bad value \"10.0.0.0/33\" for trusted_networks: "
                                         "\"10.0.0.0/33\": prefix length must be 0..32"},
    {"trusted_networks = ::/129\n",
     "%s:1: bad value \"::/129\" for trusted_networks: \"::/129\": prefix length must be 0..128"},
    {"trusted_networks = 10.0.0.0/\n", "%s:1: bad value \"10.0.0.0/\" for trusted_networks: "
                                       "\"10.0.0.0/\": prefix length must be 0..32"},
    {"trusted_networks = 10.0.0.0/8x\n", "%s:1: bad value \"10.0.0.0/8x\" for trusted_networks: "
                                         "\"10.0.0.0/8x\": prefix length must be 0..32"},
    {"trusted_networks = 300.1.1.0/24\n",
     "%s:1: bad value \"300.1.1.0/24\" for trusted_networks: \"300.1.1.0/24\": not an IP "
     "address"},
    {"trusted_networks = example.org\n", "%s:1: bad value \"example.org\" for trusted_networks: "
                                         "\"example.org\": not an IP address"},
    {"trusted_networks = [10.0.0.0]/8\n",
     "%s:1: bad value \"[10.0.0.0]/8\" for trusted_networks: \"[10.0.0.0]/8\": not an IPv6 "
     "address in brackets"},
    {"hostname = mx example\n", "%s:1: bad value \"mx example\" for hostname: only letters, "
                                "digits, '-', '.' and '_' are allowed"},
    {"authserv_id = a;b\n", "%s:1: bad value \"a;b\" for authserv_id: only letters, digits, "
                            "'-', '.' and '_' are allowed"},
    {"user = -x\n", "%s:1: bad value \"-x\" for user: not a user name"},
    {"user = us er\n", "%s:1: bad value \"us er\" for user: not a user name"},
    {"socket_owner = postfix:\n",
     "%s:1: bad value \"postfix:\" for socket_owner: expected user or user:group"},
    {"socket_owner = :mail\n",
     "%s:1: bad value \":mail\" for socket_owner: expected user or user:group"},
    {"pid_file = run/x.pid\n",
     "%s:1: bad value \"run/x.pid\" for pid_file: the path must be absolute"},
    /* syntax */
    {"workers 4\n", "%s:1: expected \"name = value\", got \"workers 4\""},
    {"= 4\n", "%s:1: missing setting name before \"=\""},
    {" workers = 4\n", "%s:1: continuation line without a setting before it"},
    {"# c\n\n\tworkers = 4\n", "%s:3: continuation line without a setting before it"},
    /* a continued line reports the line it starts on */
    {"workers = 2\nworkers =\n   0\n", "%s:2: bad value \"0\" for workers: out of range 1..256"},
    /* an error after a good line still fails the whole file */
    {"workers = 2\nbogus = 1\nworkers = 3\n", "%s:2: unknown setting \"bogus\""},
};

/* Duration text to ms, for checking the table's range texts. */
static long long dur_ms(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (strcmp(end, "ms") == 0)
        return v;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v * 1000;
    if (strcmp(end, "m") == 0)
        return v * 60000;
    if (strcmp(end, "h") == 0)
        return v * 3600000;
    if (strcmp(end, "d") == 0)
        return v * 86400000;
    if (strcmp(end, "w") == 0)
        return v * 604800000;
    return -1;
}

/* Whether `name = value` loads. */
static int accepts(const char *name, const char *value)
{
    char text[512], err[512];
    struct pd_config *c;

    snprintf(text, sizeof(text), "%s = %s\n", name, value);
    c = load_text(text, err, sizeof(err));
    if (c == NULL)
        return 0;
    cfg_free(&c);
    return 1;
}

static void test_defaults(void)
{
    struct pd_config *d = cfg_defaults(), *e;
    char host[256] = "", err[512], *s;

    ok(d != NULL, "cfg_defaults");
    gethostname(host, sizeof(host));
    is_int((long long)d->listen.n, 1, "listen: one item");
    is_str(d->listen.n ? d->listen.items[0] : NULL, "inet:127.0.0.1:10040", "listen default");
    is_int(d->socket_mode, 0666, "socket_mode default");
    is_str(d->socket_owner, "", "socket_owner default");
    is_str(d->user, "", "user default");
    is_str(d->pid_file, "", "pid_file default");
    is_int(d->workers, 4, "workers default");
    is_int(d->max_connections, 1000, "max_connections default");
    is_int(d->idle_timeout_ms, 600000, "idle_timeout default");
    is_int((long long)d->dns_servers.n, 0, "dns_servers default empty");
    is_int(d->dns_timeout_ms, 2000, "dns_timeout default");
    is_int(d->dns_retries, 2, "dns_retries default");
    is_int(d->dns_cache_size, 100000, "dns_cache_size default");
    is_int(d->evaluation_timeout_ms, 10000, "evaluation_timeout default");
    is_int((long long)d->trusted_networks.n, 2, "trusted_networks: two items");
    if (d->trusted_networks.n == 2) {
        is_str(d->trusted_networks.items[0], "127.0.0.0/8", "trusted_networks[0]");
        is_str(d->trusted_networks.items[1], "::1/128", "trusted_networks[1]");
    }
    is_int(d->skip_authenticated, 1, "skip_authenticated default");
    is_str(d->hostname, host, "hostname default = gethostname()");
    is_str(d->authserv_id, host, "authserv_id default = hostname");
    is_int(d->spf_headers, CFG_HDR_RECEIVED_SPF, "spf_headers default");
    is_int(d->instance_table_size, 50000, "instance_table_size default");
    is_int(d->instance_timeout_ms, 3600000, "instance_timeout default");
    is_int(d->verdict_cache_ttl_ms, 300000, "verdict_cache_ttl default");
    is_int(d->log_target, LOG_T_SYSLOG, "log_target default");
    is_int(d->log_level, LOG_L_INFO, "log_level default");
    s = nondefault(d);
    is_str(s, "", "defaults print nothing for -n");
    free(s);

    e = load_text("", err, sizeof(err));
    ok(e != NULL, "empty file loads");
    if (e != NULL) {
        s = nondefault(e);
        is_str(s, "", "empty file = defaults");
        free(s);
        is_int(e->workers, d->workers, "empty file: workers");
        is_int((long long)e->trusted_networks.n, 2, "empty file: trusted_networks");
        is_int(e->idle_timeout_ms, d->idle_timeout_ms, "empty file: idle_timeout");
        is_int(e->log_target, d->log_target, "empty file: log_target");
        is_str(e->authserv_id, d->authserv_id, "empty file: authserv_id");
        cfg_free(&e);
    }
    cfg_free(&d);
    ok(d == NULL, "cfg_free NULLs the pointer");
    cfg_free(&d); /* harmless */

    /* every setting written out at its table default = the defaults */
    {
        char text[8192];
        size_t len = 0;

        for (size_t i = 0; i < cfg_table_size(); i++)
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s = %s\n",
                                    cfg_table_row(i)->name, cfg_table_row(i)->dflt);
        e = load_text(text, err, sizeof(err));
        ok(e != NULL, "every default written out loads: %s", e ? "" : err);
        if (e != NULL) {
            s = nondefault(e);
            is_str(s, "", "every default written out = defaults");
            free(s);
            cfg_free(&e);
        }
    }
}

static void test_table(void)
{
    static const char *const fixed[] = {"listen",   "socket_mode", "socket_owner",   "user",
                                        "pid_file", "workers",     "metrics_listen", "allow_root"};
    size_t n = cfg_table_size(), nfixed = 0;
    int bad_rows = 0;

    ok(n >= 23, "table has every setting of struct pd_config (%zu rows)", n);
    ok(cfg_table_row(n) == NULL, "row past the end is NULL");
    for (size_t i = 0; i < n; i++) {
        const struct cfg_info *r = cfg_table_row(i);
        int is_fixed = 0;

        for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
            is_fixed |= strcmp(r->name, fixed[k]) == 0;
        nfixed += !r->reloadable;
        if (r->reloadable == is_fixed) {
            bad_rows++;
            diag("%s: reloadable=%d", r->name, r->reloadable);
        }
        if (!r->summary[0] || !r->name[0] ||
            !strstr(" bool uint duration string enum list mode ", r->type)) {
            bad_rows++;
            diag("%s: bad type or summary", r->name);
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(cfg_table_row(k)->name, r->name) == 0) {
                bad_rows++;
                diag("%s: duplicate", r->name);
            }
        if (strchr(r->dflt, '#') || strchr(r->dflt, '\n')) {
            bad_rows++;
            diag("%s: unwritable default", r->name);
        }
    }
    is_int(bad_rows, 0, "rows well-formed, reloadable flags as documented");
    is_int((long long)nfixed, 8, "eight settings need a restart");
}

/* Each range text's end points load, the values just outside do not; every
 * enum word loads. */
static void test_ranges(void)
{
    int fails = 0;

    for (size_t i = 0; i < cfg_table_size(); i++) {
        const struct cfg_info *r = cfg_table_row(i);
        char lo[64], hi[64], v[64];
        const char *dots = strstr(r->range, "..");

        if (strcmp(r->type, "enum") == 0) {
            char words[256], *w, *save;

            snprintf(words, sizeof(words), "%s", r->range);
            for (w = strtok_r(words, "|", &save); w; w = strtok_r(NULL, "|", &save))
                if (!accepts(r->name, w)) {
                    fails++;
                    diag("%s: enum word %s refused", r->name, w);
                }
            if (accepts(r->name, "bogus")) {
                fails++;
                diag("%s: accepts bogus", r->name);
            }
            continue;
        }
        if (dots == NULL)
            continue;
        snprintf(lo, sizeof(lo), "%.*s", (int)(dots - r->range), r->range);
        snprintf(hi, sizeof(hi), "%s", dots + 2);
        if (!accepts(r->name, lo) || !accepts(r->name, hi)) {
            fails++;
            diag("%s: end point of %s refused", r->name, r->range);
        }
        if (strcmp(r->type, "uint") == 0) {
            long long l = atoll(lo), h = atoll(hi);

            snprintf(v, sizeof(v), "%lld", l - 1);
            if (l > 0 && accepts(r->name, v)) {
                fails++;
                diag("%s: accepts %s below %s", r->name, v, r->range);
            }
            snprintf(v, sizeof(v), "%lld", h + 1);
            if (accepts(r->name, v)) {
                fails++;
                diag("%s: accepts %s above %s", r->name, v, r->range);
            }
        } else if (strcmp(r->type, "duration") == 0) {
            long long l = dur_ms(lo), h = dur_ms(hi);

            snprintf(v, sizeof(v), "%lldms", l - 1);
            if (l > 0 && accepts(r->name, v)) {
                fails++;
                diag("%s: accepts %s below %s", r->name, v, r->range);
            }
            snprintf(v, sizeof(v), "%lldms", h + 1);
            if (accepts(r->name, v)) {
                fails++;
                diag("%s: accepts %s above %s", r->name, v, r->range);
            }
        } else if (strcmp(r->type, "mode") == 0) {
            if (accepts(r->name, "1000")) {
                fails++;
                diag("%s: accepts 1000", r->name);
            }
        }
    }
    is_int(fails, 0, "range end points and enum words of every row");
}

static void test_values(void)
{
    char err[1024], want[1024], *s;
    struct pd_config *c;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        c = load_text(good[i].text, err, sizeof(err));
        if (!ok(c != NULL, "good %zu loads", i)) {
            diag("error: %s", err);
            continue;
        }
        s = nondefault(c);
        is_str(s, good[i].printed, "good %zu prints", i);
        free(s);
        cfg_free(&c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        c = load_text(bad[i].text, err, sizeof(err));
        ok(c == NULL, "bad %zu refused", i);
        cfg_free(&c);
        /* bad[i].err starts with "%s": the path */
        snprintf(want, sizeof(want), "%s%s", conf_path, bad[i].err + 2);
        is_str(err, want, "bad %zu error text", i);
    }

    c = cfg_load("/nonexistent/policyd-dmarc.conf", err, sizeof(err));
    ok(c == NULL, "missing file refused");
    is_str(err, "/nonexistent/policyd-dmarc.conf: cannot open: No such file or directory",
           "missing file error");
    c = cfg_load("/nonexistent/x", NULL, 0);
    ok(c == NULL, "NULL err buffer is allowed");
    put_conf("workers = 0\n");
    c = cfg_load(conf_path, err, 12);
    ok(c == NULL && strlen(err) == 11, "error text truncated to errlen");

    /* typed fields land where they should */
    c = load_text("log = stderr\nlog_level = debug\nspf_headers = both\n"
                  "skip_authenticated = no\nsocket_mode = 0600\ndns_timeout = 250ms\n"
                  "hostname = mx1.example.org\n",
                  err, sizeof(err));
    if (ok(c != NULL, "typed config loads")) {
        is_int(c->log_target, LOG_T_STDERR, "log_target field");
        is_int(c->log_level, LOG_L_DEBUG, "log_level field");
        is_int(c->spf_headers, CFG_HDR_BOTH, "spf_headers field");
        is_int(c->skip_authenticated, 0, "skip_authenticated field");
        is_int(c->socket_mode, 0600, "socket_mode field");
        is_int(c->dns_timeout_ms, 250, "dns_timeout field in ms");
        is_str(c->hostname, "mx1.example.org", "hostname field");
        is_str(c->authserv_id, "mx1.example.org", "authserv_id follows hostname");
    }
    cfg_free(&c);
    /* a long continued list */
    {
        char text[20000];
        size_t len = (size_t)snprintf(text, sizeof(text), "trusted_networks =");

        for (int i = 0; i < 500; i++)
            len += (size_t)snprintf(text + len, sizeof(text) - len, "\n  10.%d.%d.0/24", i / 256,
                                    i % 256);
        c = load_text(text, err, sizeof(err));
        ok(c != NULL && c->trusted_networks.n == 500, "500 continued list items");
        if (c != NULL)
            is_str(c->trusted_networks.items[499], "10.1.243.0/24", "last item");
        cfg_free(&c);
    }
}

static void test_reload(void)
{
    char err[512], msg[1024];
    struct pd_config *old, *next;
    char *s;
    int n;

    old = load_text("listen = inet:127.0.0.1:10040\nworkers = 4\ndns_timeout = 1s\n", err,
                    sizeof(err));
    next = load_text("listen = inet:127.0.0.1:10041 unix:/run/p.sock\nworkers = 8\n"
                     "dns_timeout = 5s\nsocket_mode = 0600\nuser = nobody\n"
                     "pid_file = /run/p.pid\nsocket_owner = postfix\nlog_level = debug\n",
                     err, sizeof(err));
    if (!ok(old != NULL && next != NULL, "reload configs load")) {
        cfg_free(&old);
        cfg_free(&next);
        return;
    }
    n = cfg_reload_merge(old, next, msg, sizeof(msg));
    is_int(n, 6, "six non-reloadable settings changed");
    is_str(msg,
           "listen: changed, restart needed\n"
           "socket_mode: changed, restart needed\n"
           "socket_owner: changed, restart needed\n"
           "user: changed, restart needed\n"
           "pid_file: changed, restart needed\n"
           "workers: changed, restart needed",
           "reload message lines");
    s = nondefault(next);
    is_str(s, "dns_timeout = 5s\nlog_level = debug\n",
           "merged config: old non-reloadable values, new reloadable ones");
    free(s);
    is_int((long long)next->listen.n, 1, "listen reverted to the old list");
    is_str(next->listen.items[0], "inet:127.0.0.1:10040", "old listen item");
    is_int(next->workers, 4, "old workers");
    is_str(next->user, "", "old user");
    n = cfg_reload_merge(old, next, msg, sizeof(msg));
    is_int(n, 0, "second merge: nothing left to revert");
    is_str(msg, "", "second merge: empty message");

    cfg_free(&next);
    next = load_text("workers = 9\nuser = x\n", err, sizeof(err));
    n = cfg_reload_merge(old, next, msg, 20);
    is_int(n, 2, "count is right even when msg is short");
    ok(strlen(msg) < 20, "short msg stays terminated: %s", msg);
    is_int(next->workers, 4, "workers reverted with short msg");
    n = cfg_reload_merge(old, next, NULL, 0);
    is_int(n, 0, "NULL msg allowed");
    cfg_free(&old);
    cfg_free(&next);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    int fd;

    snprintf(conf_path, sizeof(conf_path), "%s/test_cfg.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if ((fd = mkstemp(conf_path)) < 0) {
        perror("mkstemp");
        return 2;
    }
    close(fd);
    log_open("test_cfg", LOG_T_STDERR, LOG_L_WARNING);

    test_defaults();
    test_table();
    test_ranges();
    test_values();
    test_reload();

    unlink(conf_path);
    return tap_done();
}
