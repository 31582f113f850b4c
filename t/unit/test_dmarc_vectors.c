/* test_dmarc_vectors.c - the shared DMARC policy vectors
 * ($PD_SHARED/testdata/dmarc/dmarc-policy-vectors.json, 67 vectors from mox,
 * mailauth, stalwart and Mail::DMARC) through discovery (dmarc_disc, fed
 * from each vector's mock zone) and disposition (dmarc_disp).
 *
 * t/dmarc/vectors.py converts the JSON to a line format and sorts each
 * expectation into: checked (discovery keys always; verdict keys when the SPF
 * identity is the header_from domain and DKIM cannot matter), replaced by our
 * documented reading ("divergent by design"), or not applicable (DKIM,
 * alignment between different domains). The not-applicable list is printed.
 *
 * Verdicts are taken with the weak-SPF rows set to follow the policy (what
 * these implementations do when DKIM gives nothing): the defaults are milder
 * on purpose, which is checked separately (never harsher than that). */
#include "dmarc_disc.h"
#include "dmarc_disp.h"
#include "psl.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAXZ 64
#define MAXE 24
#define FLD 1024

struct zrow {
    char name[256], type[8], value[FLD];
};

struct erow {
    char kind; /* 'E', 'D' or 'K' */
    char key[64], value[FLD], reason[FLD];
};

struct vec {
    char id[64], spec[16], pd[256], method[16], mode[8], spf[16], reason[FLD];
    int verdict_ok;
    struct zrow z[MAXZ];
    int nz;
    char servfail[8][256];
    int nsf;
    struct erow e[MAXE];
    int ne;
};

static struct psl_ctx *psl;
static int nvec, nna;
static char na_list[16384];

static void unesc(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (r[0] == '%' && r[1] && r[2]) {
            char hex[3] = {r[1], r[2], 0};

            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* split: TAB-separated fields of line (modified in place), unescaped. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    char *save = NULL;

    line[strcspn(line, "\n")] = '\0';
    for (char *t = strtok_r(line, "\t", &save); t && n < max; t = strtok_r(NULL, "\t", &save)) {
        unesc(t);
        f[n++] = t;
    }
    return n;
}

static int org_fn(void *ctx, const char *domain, char *out, size_t outlen)
{
    return psl_org_domain(ctx, domain, out, outlen);
}

static int is_servfail(const struct vec *v, const char *name)
{
    for (int i = 0; i < v->nsf; i++)
        if (strcasecmp(v->servfail[i], name) == 0)
            return 1;
    return 0;
}

/* name_exists: the mock zone has a record at name or below it (an empty
 * non-terminal exists too); otherwise NXDOMAIN. */
static int name_exists(const struct vec *v, const char *name)
{
    size_t nl = strlen(name);

    for (int i = 0; i < v->nz; i++) {
        size_t zl = strlen(v->z[i].name);

        if (strcmp(v->z[i].name, name) == 0 || (zl > nl && v->z[i].name[zl - nl - 1] == '.' &&
                                                strcmp(v->z[i].name + zl - nl, name) == 0))
            return 1;
    }
    return 0;
}

static const char *bool_s(int b)
{
    return b ? "true" : "false";
}

static void run_vec(struct vec *v)
{
    struct dmarc_disc d;
    const struct dmarc_disc_result *r;
    struct dmarc_disp_cfg strict, def;
    struct dmarc_disp_in in;
    struct dmarc_disp_out out, out_def;
    const char *name;
    uint16_t type;
    enum dmarc_exist exists = DMARC_EXIST_YES;
    int spf;
    char got[FLD];

    nvec++;
    dmarc_disc_start(
        &d, v->pd, strcmp(v->method, "psl") == 0 ? DMARC_DISC_PSL : DMARC_DISC_TREEWALK,
        strcmp(v->mode, "7489") == 0 ? DMARC_MODE_RFC7489 : DMARC_MODE_RFC9989, org_fn, psl);
    while (dmarc_disc_next(&d, &name, &type)) {
        const char *txt[16];
        size_t len[16], n = 0;

        if (is_servfail(v, name)) {
            dmarc_disc_feed(&d, DMARC_ANS_TEMPFAIL, NULL, NULL, 0);
            continue;
        }
        for (int i = 0; i < v->nz && n < 16; i++)
            if (strcmp(v->z[i].name, name) == 0 && strcmp(v->z[i].type, "TXT") == 0) {
                txt[n] = v->z[i].value;
                len[n++] = strlen(v->z[i].value);
            }
        if (n > 0)
            dmarc_disc_feed(&d, DMARC_ANS_OK, txt, len, n);
        else
            dmarc_disc_feed(&d, name_exists(v, name) ? DMARC_ANS_NODATA : DMARC_ANS_NXDOMAIN, NULL,
                            NULL, 0);
    }
    r = dmarc_disc_result(&d);
    /* The existence check, when dmarcq would make it. */
    if (r->status == DMARC_DISC_FOUND && !r->at_policy_domain && !r->pd_exists)
        exists = name_exists(v, r->policy_domain) ? DMARC_EXIST_YES : DMARC_EXIST_NO;

    spf = v->verdict_ok ? spf_res_from_name(v->spf) : SPF_RES_FAIL;
    dmarc_disp_cfg_defaults(&def);
    strict = def;
    strict.weak_reject = DMARC_SET_POLICY;
    strict.weak_quarantine = DMARC_SET_POLICY;
    memset(&in, 0, sizeof(in));
    in.spf = (enum spf_res)spf;
    in.disc = r;
    in.exists = exists;
    in.pct_sample = 99;
    dmarc_disp_eval(&strict, &in, &out);
    dmarc_disp_eval(&def, &in, &out_def);

    for (int i = 0; i < v->ne; i++) {
        const struct erow *e = &v->e[i];
        const char *k = e->key;

        if (e->kind == 'K')
            continue;
        if (e->kind == 'D')
            diag("%s: %s: divergent by design (%s)", v->id, k, e->reason);
        if (strcmp(k, "policy") == 0)
            snprintf(got, sizeof(got), "%s",
                     r->status == DMARC_DISC_FOUND ? dmarc_policy_name(out.policy) : "null");
        else if (strcmp(k, "policy_domain") == 0 || strcmp(k, "record_domain") == 0)
            snprintf(got, sizeof(got), "%s",
                     r->status == DMARC_DISC_FOUND ? r->record_domain : r->policy_domain);
        else if (strcmp(k, "record_found") == 0)
            snprintf(got, sizeof(got), "%s", bool_s(r->status == DMARC_DISC_FOUND));
        else if (strcmp(k, "dmarc_record") == 0)
            snprintf(got, sizeof(got), "%s", r->status == DMARC_DISC_FOUND ? "record" : "null");
        else if (strcmp(k, "org_domain") == 0)
            snprintf(got, sizeof(got), "%s", r->org_domain);
        else if (strcmp(k, "dmarc_txt_queries") == 0) {
            got[0] = '\0';
            for (unsigned j = 0; j < r->nq; j++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", j ? " " : "",
                         r->q[j]);
        } else if (strcmp(k, "lookup_status") == 0)
            snprintf(got, sizeof(got), "%s",
                     r->status == DMARC_DISC_TEMPERROR                             ? "temperror"
                     : r->status == DMARC_DISC_NONE && strstr(r->note, "unusable") ? "permerror"
                                                                                   : "none");
        else if (strcmp(k, "dmarc") == 0)
            snprintf(got, sizeof(got), "%s", dmarc_result_name(out.result));
        else if (strcmp(k, "effective_policy") == 0 || strcmp(k, "disposition") == 0)
            snprintf(got, sizeof(got), "%s", dmarc_disp_name(out.disposition));
        else if (strcmp(k, "reject") == 0)
            snprintf(got, sizeof(got), "%s",
                     bool_s(out.result == DMARC_RES_FAIL && out.policy == DMARC_P_REJECT));
        else if (strcmp(k, "use_result") == 0)
            snprintf(
                got, sizeof(got), "%s",
                bool_s(out.result != DMARC_RES_NONE && !(out.reasons & DMARC_REASON_SAMPLED_OUT)));
        else if (strcmp(k, "spf_aligned") == 0 || strcmp(k, "spf_aligned_pass") == 0)
            /* An aligned SPF pass is only observed where DMARC applies. */
            snprintf(got, sizeof(got), "%s", bool_s(out.result == DMARC_RES_PASS));
        else if (strcmp(k, "spf_aligned_result") == 0) {
            /* "pass", or anything else meaning "no aligned pass". */
            ok((out.result == DMARC_RES_PASS) == (strcmp(e->value, "pass") == 0), "%s: %s = %s",
               v->id, k, e->value);
            continue;
        } else {
            ok(0, "%s: unknown expectation key %s", v->id, k);
            continue;
        }
        is_str(got, e->value, "%s: %s", v->id, k);
    }
    if (v->verdict_ok)
        ok(out_def.disposition <= out.disposition, "%s: defaults never harsher (%s <= %s)", v->id,
           dmarc_disp_name(out_def.disposition), dmarc_disp_name(out.disposition));
    /* List what was not checked, and why. */
    {
        char keys[512] = "", why[FLD] = "";

        for (int i = 0; i < v->ne; i++) {
            if (v->e[i].kind != 'K' || strncmp(v->e[i].reason, "informational", 13) == 0)
                continue;
            snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s", keys[0] ? "," : "",
                     v->e[i].key);
            if (strncmp(v->e[i].key, "dkim", 4) != 0 || why[0] == '\0')
                snprintf(why, sizeof(why), "%s", v->e[i].reason);
        }
        if (keys[0]) {
            nna++;
            snprintf(na_list + strlen(na_list), sizeof(na_list) - strlen(na_list),
                     "#   %s: not applicable [%s]: %s\n", v->id, keys, why);
        }
    }
}

int main(void)
{
    const char *src = getenv("PD_SRC"), *shared = getenv("PD_SHARED");
    char cmd[4096], line[8192], err[256], path[2048];
    char *f[12];
    FILE *p;
    struct vec *v = NULL;

    if (!src || !shared) {
        ok(0, "PD_SRC and PD_SHARED are set (run through ctest)");
        return tap_done();
    }
    snprintf(path, sizeof(path), "%s/testdata/psl/public_suffix_list.dat", shared);
    psl = psl_open(path, err, sizeof(err));
    if (!ok(psl != NULL, "pinned PSL loads (%s)", psl ? "ok" : err))
        return tap_done();
    snprintf(cmd, sizeof(cmd),
             "python3 '%s/t/dmarc/vectors.py' '%s/testdata/dmarc/dmarc-policy-vectors.json'", src,
             shared);
    p = popen(cmd, "r");
    if (!ok(p != NULL, "converter runs"))
        return tap_done();
    v = calloc(1, sizeof(*v));
    while (fgets(line, sizeof(line), p)) {
        int n = split(line, f, 12);

        if (n == 0)
            continue;
        if (strcmp(f[0], ".") == 0) {
            run_vec(v);
            memset(v, 0, sizeof(*v));
        } else if (strcmp(f[0], "V") == 0 && n >= 9) {
            snprintf(v->id, sizeof(v->id), "%s", f[1]);
            snprintf(v->spec, sizeof(v->spec), "%s", f[2]);
            snprintf(v->pd, sizeof(v->pd), "%s", f[3]);
            snprintf(v->method, sizeof(v->method), "%s", f[4]);
            snprintf(v->mode, sizeof(v->mode), "%s", f[5]);
            snprintf(v->spf, sizeof(v->spf), "%s", f[6]);
            v->verdict_ok = atoi(f[7]);
            snprintf(v->reason, sizeof(v->reason), "%s", f[8]);
        } else if (strcmp(f[0], "Z") == 0 && n >= 4 && v->nz < MAXZ) {
            struct zrow *z = &v->z[v->nz++];

            snprintf(z->name, sizeof(z->name), "%s", f[1]);
            snprintf(z->type, sizeof(z->type), "%s", f[2]);
            snprintf(z->value, sizeof(z->value), "%s", f[3]);
        } else if (strcmp(f[0], "S") == 0 && n >= 2 && v->nsf < 8) {
            snprintf(v->servfail[v->nsf++], sizeof(v->servfail[0]), "%s", f[1]);
        } else if ((f[0][0] == 'E' || f[0][0] == 'D' || f[0][0] == 'K') && n >= 3 && v->ne < MAXE) {
            struct erow *e = &v->e[v->ne++];

            e->kind = f[0][0];
            snprintf(e->key, sizeof(e->key), "%s", f[1]);
            if (e->kind == 'K') {
                snprintf(e->reason, sizeof(e->reason), "%s", f[2]);
            } else {
                snprintf(e->value, sizeof(e->value), "%s", f[2]);
                if (n >= 4)
                    snprintf(e->reason, sizeof(e->reason), "%s", f[3]);
            }
        }
    }
    ok(pclose(p) == 0, "converter exits 0");
    is_int(nvec, 67, "all 67 vectors read");
    diag("%d vectors; expectations not applicable to envelope DMARC in %d of them:", nvec, nna);
    fputs(na_list, stdout);
    free(v);
    psl_close(&psl);
    return tap_done();
}
