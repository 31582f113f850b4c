/* t-rseed.c - test helper: turns a small line format into the Redis writes
 * the daemon makes (keys from rkeys.h, encodings from rrow.h), printed as
 * RESP for `redis-cli --pipe`. Lines (whitespace-separated, '#' comments):
 *
 *   pol DOMAIN DAY FIRST LAST [p=..] [sp=..] [np=..] [adkim=..] [aspf=..]
 *       [fo=..] [t=..] [psd=..] [disc=..] [pct=..] [rua=..]
 *   row DOMAIN DAY COUNT ip=.. [disp=none] [dspf=fail] [spfd=DOMAIN]
 *       [scope=mfrom] [res=fail] [env=DOMAIN] [reason=TYPE[:COMMENT]]
 *   rows DOMAIN DAY N COUNT    N distinct rows (ip 10.x.y.z), COUNT each
 *
 * Usage: t-rseed [-p PREFIX] < spec | redis-cli -p PORT --pipe */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rkeys.h"
#include "rrow.h"

static void resp(int argc, const char **argv)
{
    printf("*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        printf("$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
}

static void bookkeeping(const char *prefix, const char *domain, const char *day)
{
    char k[RKEY_MAX];
    rkey_idx(k, sizeof(k), prefix, day);
    resp(3, (const char *[]){"SADD", k, domain});
    rkey_days(k, sizeof(k), prefix);
    resp(3, (const char *[]){"SADD", k, day});
}

static void add_row(const char *prefix, const char *domain, const char *day, const struct rrow *r,
                    const char *count)
{
    char k[RKEY_MAX], enc[RROW_ENC_WORST];
    if (rrow_encode(r, enc, sizeof(enc)) < 0) {
        fprintf(stderr, "t-rseed: row does not encode\n");
        exit(1);
    }
    rkey_rpt(k, sizeof(k), prefix, domain, day);
    resp(4, (const char *[]){"HINCRBY", k, enc, count});
    resp(3, (const char *[]){"EXPIRE", k, "604800"});
    bookkeeping(prefix, domain, day);
}

#define SET(dst, v) snprintf(dst, sizeof(dst), "%s", v)

int main(int argc, char **argv)
{
    const char *prefix = "pd";
    char line[4096];
    int opt;

    while ((opt = getopt(argc, argv, "p:")) != -1) {
        if (opt != 'p') {
            fprintf(stderr, "usage: t-rseed [-p PREFIX]\n");
            return 2;
        }
        prefix = optarg;
    }
    while (fgets(line, sizeof(line), stdin)) {
        char *save = NULL, *kind = strtok_r(line, " \t\r\n", &save), *tok;
        if (kind == NULL || kind[0] == '#')
            continue;
        char *domain = strtok_r(NULL, " \t\r\n", &save), *day = strtok_r(NULL, " \t\r\n", &save);
        if (domain == NULL || day == NULL) {
            fprintf(stderr, "t-rseed: short line\n");
            return 1;
        }
        if (strcmp(kind, "pol") == 0) {
            struct rrow_policy p = {0};
            char k[RKEY_MAX], enc[RROW_ENC_WORST];
            char *first = strtok_r(NULL, " \t\r\n", &save),
                 *last = strtok_r(NULL, " \t\r\n", &save);
            SET(p.domain, domain);
            SET(p.p, "none");
            SET(p.adkim, "r");
            SET(p.aspf, "r");
            SET(p.fo, "0");
            SET(p.testing, "n");
            SET(p.psd, "u");
            SET(p.discovery_method, "treewalk");
            p.pct = 100;
            while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
                char *v = strchr(tok, '=');
                if (!v)
                    continue;
                *v++ = '\0';
                if (!strcmp(tok, "p"))
                    SET(p.p, v);
                else if (!strcmp(tok, "sp"))
                    SET(p.sp, v);
                else if (!strcmp(tok, "np"))
                    SET(p.np, v);
                else if (!strcmp(tok, "adkim"))
                    SET(p.adkim, v);
                else if (!strcmp(tok, "aspf"))
                    SET(p.aspf, v);
                else if (!strcmp(tok, "fo"))
                    SET(p.fo, v);
                else if (!strcmp(tok, "t"))
                    SET(p.testing, v);
                else if (!strcmp(tok, "psd"))
                    SET(p.psd, v);
                else if (!strcmp(tok, "disc"))
                    SET(p.discovery_method, v);
                else if (!strcmp(tok, "pct"))
                    p.pct = atoi(v);
                else if (!strcmp(tok, "rua"))
                    SET(p.rua, v);
            }
            if (!first || !last || rrow_policy_encode(&p, enc, sizeof(enc)) < 0) {
                fprintf(stderr, "t-rseed: bad pol line\n");
                return 1;
            }
            rkey_pol(k, sizeof(k), prefix, domain, day);
            resp(6, (const char *[]){"HSET", k, "policy", enc, "last", last});
            resp(4, (const char *[]){"HSETNX", k, "first", first});
            resp(3, (const char *[]){"EXPIRE", k, "604800"});
            bookkeeping(prefix, domain, day);
        } else if (strcmp(kind, "row") == 0 || strcmp(kind, "rows") == 0) {
            struct rrow r = {0};
            char *count = strtok_r(NULL, " \t\r\n", &save);
            long nrows = 1;
            if (strcmp(kind, "rows") == 0) {
                nrows = count ? atol(count) : 0;
                count = strtok_r(NULL, " \t\r\n", &save);
            }
            if (!count) {
                fprintf(stderr, "t-rseed: bad row line\n");
                return 1;
            }
            SET(r.disposition, "none");
            SET(r.dmarc_spf, "fail");
            SET(r.spf_domain, domain);
            SET(r.spf_scope, "mfrom");
            SET(r.spf_result, "fail");
            SET(r.envelope_from, domain);
            SET(r.header_from, domain);
            SET(r.source_ip, "192.0.2.1");
            while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
                char *v = strchr(tok, '=');
                if (!v)
                    continue;
                *v++ = '\0';
                if (!strcmp(tok, "ip"))
                    SET(r.source_ip, v);
                else if (!strcmp(tok, "disp"))
                    SET(r.disposition, v);
                else if (!strcmp(tok, "dspf"))
                    SET(r.dmarc_spf, v);
                else if (!strcmp(tok, "spfd"))
                    SET(r.spf_domain, v);
                else if (!strcmp(tok, "scope"))
                    SET(r.spf_scope, v);
                else if (!strcmp(tok, "res"))
                    SET(r.spf_result, v);
                else if (!strcmp(tok, "env"))
                    SET(r.envelope_from, v);
                else if (!strcmp(tok, "reason") && r.nreasons < RROW_MAX_REASONS) {
                    char *cm = strchr(v, ':');
                    if (cm)
                        *cm++ = '\0';
                    int t = rrow_reason_from_name(v);
                    r.reasons[r.nreasons].type = t < 0 ? RROW_R_OTHER : (enum rrow_reason)t;
                    SET(r.reasons[r.nreasons].comment, cm ? cm : "");
                    r.nreasons++;
                }
            }
            for (long i = 0; i < nrows; i++) {
                if (strcmp(kind, "rows") == 0)
                    snprintf(r.source_ip, sizeof(r.source_ip), "10.%ld.%ld.%ld", (i >> 16) & 255,
                             (i >> 8) & 255, i & 255);
                add_row(prefix, domain, day, &r, count);
            }
        } else {
            fprintf(stderr, "t-rseed: unknown line kind %s\n", kind);
            return 1;
        }
    }
    return 0;
}
