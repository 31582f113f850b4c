/* spfsuite.c - t-spfsuite: runs the RFC 7208 test suite (converted by
 * suite2lines.py) through the real adapter, spfa_eval(), with an in-process
 * zone behind the same spfa_lookup_fn interface the SPF workers use.
 *
 * usage: t-spfsuite SUITE.txt [EXPECTED-FAILURES.txt]
 * A test passes when the result is one of the acceptable results and, when the
 * test gives an explanation, ours is equal ("DEFAULT": no exp= was used, so ours
 * is empty). Prints each failure, then "N passed, M failed". Exit 0 when the
 * failures are exactly the expected-failure list (empty: all must pass). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spfa.h"
#include "zone.h"

/* "x<hex>" -> bytes (NUL-terminated; *len without it). */
static char *unhex(const char *s, size_t *len)
{
    size_t n, i;
    char *out;
    if (s[0] != 'x')
        return NULL;
    s++;
    n = strlen(s) / 2;
    out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (char)v;
    }
    out[n] = '\0';
    if (len)
        *len = n;
    return out;
}

static int zone_type(const char *t)
{
    static const struct {
        const char *n;
        int t;
    } tab[] = {{"A", DNS_T_A},           {"AAAA", DNS_T_AAAA},   {"MX", DNS_T_MX},
               {"PTR", DNS_T_PTR},       {"CNAME", DNS_T_CNAME}, {"TXT", DNS_T_TXT},
               {"TIMEOUT", ZONE_TIMEOUT}};
    size_t i;
    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(tab[i].n, t) == 0)
            return tab[i].t;
    return -1;
}

static int in_list(char **list, size_t n, const char *s)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    FILE *f;
    char line[65536], scen[64] = "", *expected[256], *failed[256];
    size_t nexp = 0, nfailed = 0, i;
    unsigned passed = 0, nfail = 0;
    struct zone *z = NULL;
    int mismatch = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s SUITE.txt [EXPECTED-FAILURES.txt]\n", argv[0]);
        return 2;
    }
    if (argc > 2 && (f = fopen(argv[2], "r")) != NULL) {
        while (fgets(line, sizeof(line), f) && nexp < 256) {
            line[strcspn(line, " \t\r\n#")] = '\0';
            if (line[0])
                expected[nexp++] = strdup(line);
        }
        fclose(f);
    }
    if ((f = fopen(argv[1], "r")) == NULL) {
        perror(argv[1]);
        return 2;
    }
    while (fgets(line, sizeof(line), f)) {
        char *tokv[8];
        int ntok = 0;
        char *save = NULL, *p;
        line[strcspn(line, "\n")] = '\0';
        for (p = strtok_r(line, " ", &save); p && ntok < 8; p = strtok_r(NULL, " ", &save))
            tokv[ntok++] = p;
        if (ntok == 0)
            continue;
        if (strcmp(tokv[0], "S") == 0 && ntok >= 2) {
            zone_free(&z);
            z = zone_new();
            snprintf(scen, sizeof(scen), "%s", tokv[1]);
        } else if (strcmp(tokv[0], "Z") == 0 && ntok == 5 && z) {
            size_t len = 0;
            char *name = unhex(tokv[1], NULL), *data = unhex(tokv[3], &len);
            int t = zone_type(tokv[2]);
            if (name && data && t >= 0) {
                if (t == DNS_T_A || t == DNS_T_AAAA) {
                    if (zone_add_str(z, name, (uint16_t)t, data, 0) < 0)
                        fprintf(stderr, "bad address %s for %s\n", data, name);
                } else {
                    zone_add(z, name, (uint16_t)t, data, len, (uint16_t)atoi(tokv[4]));
                }
            }
            free(name);
            free(data);
        } else if (strcmp(tokv[0], "T") == 0 && ntok == 7 && z) {
            char *name = unhex(tokv[1], NULL), *host = unhex(tokv[2], NULL);
            char *helo = unhex(tokv[3], NULL), *from = unhex(tokv[4], NULL);
            char *exp = strcmp(tokv[6], "-") ? unhex(tokv[6], NULL) : NULL;
            char id[256], results[256];
            struct spfa *a = spfa_new("receiver.example", zone_lookup, z);
            struct spf_verdict v;
            int ok_res = 0, ok_exp = 1, rc;
            snprintf(id, sizeof(id), "%s/%s", scen, name ? name : "?");
            snprintf(results, sizeof(results), ",%s,", tokv[5]);
            rc = a ? spfa_eval(a, host, helo, from, &v) : -1;
            if (rc == 0) {
                char want[32];
                snprintf(want, sizeof(want), ",%s,", spf_res_name(v.mfrom));
                ok_res = strstr(results, want) != NULL;
                if (exp != NULL)
                    ok_exp = strcmp(exp, "DEFAULT") == 0 ? v.explanation[0] == '\0'
                                                         : strcmp(exp, v.explanation) == 0;
            }
            if (ok_res && ok_exp) {
                passed++;
            } else {
                nfail++;
                if (nfailed < 256)
                    failed[nfailed++] = strdup(id);
                printf("FAIL %s: host=%s helo=%s from=%s want=%s got=%s%s%s%s%s%s%s\n", id, host,
                       helo, from, tokv[5], rc == 0 ? spf_res_name(v.mfrom) : "(error)",
                       exp ? " want-exp=\"" : "", exp ? exp : "", exp ? "\" got-exp=\"" : "",
                       exp ? v.explanation : "", exp ? "\"" : "",
                       rc == 0 && v.problem[0] ? " problem=" : "");
                if (rc == 0 && v.problem[0])
                    printf("    %s\n", v.problem);
            }
            spfa_free(&a);
            free(name);
            free(host);
            free(helo);
            free(from);
            free(exp);
        }
    }
    fclose(f);
    zone_free(&z);
    for (i = 0; i < nfailed; i++)
        if (!in_list(expected, nexp, failed[i])) {
            printf("unexpected failure: %s\n", failed[i]);
            mismatch = 1;
        }
    for (i = 0; i < nexp; i++)
        if (!in_list(failed, nfailed, expected[i])) {
            printf("expected failure now passes (update the list): %s\n", expected[i]);
            mismatch = 1;
        }
    printf("%u passed, %u failed\n", passed, nfail);
    for (i = 0; i < nfailed; i++)
        free(failed[i]);
    for (i = 0; i < nexp; i++)
        free(expected[i]);
    return mismatch || passed == 0 ? 1 : 0;
}
