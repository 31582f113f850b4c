/* fake_spfa.c - test double for src/spfa.h, used by test_spfw (the real
 * libspf2 adapter, src/spfa.c, is written in parallel by someone else).
 *
 * It runs inside the pool's worker processes. The identity's domain (the
 * sender's domain, or the HELO name for the null sender) is looked up as TXT
 * through the caller's lookup function, and its text says what to do:
 *   "pass", "fail", "softfail", ...  that result (fail gets an explanation)
 *   "dns:<name>"  look up <name> (TXT) and do what its text says
 *   "crash"       abort() (as libspf2 does on CVE-2023-42118 records)
 *   "hang"        never return
 *   "badframe"    write a hostile frame on the IPC socket, then wait
 *   "receiver"    neutral, explanation = the receiver name given to spfa_new
 *   "nolocal:<text>"  as <text>, but the verdict reports uses_local = 0 (like
 *                 a record without local-part macros); every other verdict
 *                 reports uses_local = 1, as the real adapter does when unsure
 *   "local"       uses_local = 1: pass when the local part starts with "ok",
 *                 else fail with the explanation "<local> not allowed"
 * spfa_new fails for the receiver name "failnew" (a worker that cannot start).
 * A TIMEOUT/SERVFAIL answer gives temperror, NXDOMAIN/NODATA gives none; the
 * verdict's TTL is the smallest TTL seen. The HELO identity is always none. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spfa.h"

struct spfa {
    char *receiver;
    spfa_lookup_fn lookup;
    void *ctx;
};

struct spfa *spfa_new(const char *receiver_name, spfa_lookup_fn lookup, void *ctx)
{
    struct spfa *a;

    if (strcmp(receiver_name, "failnew") == 0)
        return NULL;
    a = calloc(1, sizeof(*a));
    if (a == NULL || (a->receiver = strdup(receiver_name)) == NULL) {
        free(a);
        return NULL;
    }
    a->lookup = lookup;
    a->ctx = ctx;
    return a;
}

void spfa_free(struct spfa **ap)
{
    if (*ap == NULL)
        return;
    free((*ap)->receiver);
    free(*ap);
    *ap = NULL;
}

/* badframe: a length far beyond any frame limit, on every socket we hold. */
static void badframe(void)
{
    static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xf0, 4, 0, 0, 0, 1};
    struct stat st;

    for (int fd = 3; fd < 64; fd++)
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            if (write(fd, junk, sizeof(junk)) < 0)
                _exit(9);
}

int spfa_eval(struct spfa *a, const char *client_ip, const char *helo, const char *sender,
              struct spf_verdict *out)
{
    const char *at = strrchr(sender, '@');
    char name[SPF_DOMAIN_MAX];
    uint32_t ttl = UINT32_MAX;

    memset(out, 0, sizeof(*out));
    out->helo = SPF_RES_NONE;
    out->uses_local = 1;
    snprintf(out->mfrom_domain, sizeof(out->mfrom_domain), "%s",
             sender[0] ? (at ? at + 1 : sender) : helo);
    snprintf(name, sizeof(name), "%s", out->mfrom_domain);
    for (int depth = 0; depth < 8; depth++) {
        struct dns_result *r = a->lookup(a->ctx, name, DNS_T_TXT);
        const char *txt;
        int res;

        if (r->ttl < ttl)
            ttl = r->ttl;
        if (r->status == DNS_TIMEOUT || r->status == DNS_SERVFAIL) {
            out->mfrom = SPF_RES_TEMPERROR;
            snprintf(out->problem, sizeof(out->problem), "dns %s for %s/TXT",
                     dnsrr_status_name(r->status), name);
            dnsrr_unref(&r);
            break;
        }
        if (r->status != DNS_OK || r->n < 1) {
            out->mfrom = SPF_RES_NONE;
            dnsrr_unref(&r);
            break;
        }
        txt = (const char *)r->rr[0].data;
        if (strncmp(txt, "nolocal:", 8) == 0) {
            out->uses_local = 0;
            txt += 8;
        }
        if (strcmp(txt, "crash") == 0) {
            struct rlimit no = {0, 0};

            setrlimit(RLIMIT_CORE, &no); /* no core files from the test */
            abort();
        }
        if (strcmp(txt, "hang") == 0)
            for (;;)
                pause();
        if (strcmp(txt, "badframe") == 0) {
            badframe();
            for (;;)
                pause();
        }
        if (strncmp(txt, "dns:", 4) == 0) {
            snprintf(name, sizeof(name), "%s", txt + 4);
            dnsrr_unref(&r);
            continue;
        }
        if (strcmp(txt, "local") == 0) {
            size_t ll = at ? (size_t)(at - sender) : 0;

            out->uses_local = 1;
            out->mfrom = ll >= 2 && strncmp(sender, "ok", 2) == 0 ? SPF_RES_PASS : SPF_RES_FAIL;
            if (out->mfrom == SPF_RES_FAIL)
                snprintf(out->explanation, sizeof(out->explanation), "%.*s not allowed", (int)ll,
                         sender);
        } else if (strcmp(txt, "receiver") == 0) {
            out->mfrom = SPF_RES_NEUTRAL;
            snprintf(out->explanation, sizeof(out->explanation), "%s", a->receiver);
        } else if ((res = spf_res_from_name(txt)) >= 0) {
            out->mfrom = (enum spf_res)res;
            if (res == SPF_RES_FAIL)
                snprintf(out->explanation, sizeof(out->explanation), "%s rejects %s", name,
                         client_ip);
        } else {
            out->mfrom = SPF_RES_PERMERROR;
            snprintf(out->problem, sizeof(out->problem), "unknown fake record");
        }
        dnsrr_unref(&r);
        break;
    }
    out->ttl = ttl == UINT32_MAX ? 0 : ttl;
    return 0;
}
