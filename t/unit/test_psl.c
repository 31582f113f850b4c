/* test_psl.c - the PSL adapter: every active case of the PSL project's
 * tests.txt against the pinned list in shared/testdata/psl, then our own
 * cases (trailing dot, case of U-labels, bad input, loading errors). */
#include "psl.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char shared[4096];

static void path_of(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/testdata/psl/%s", shared, rel);
}

/* check: psl_org_domain(in) must give want (NULL = -1 and ""). */
static void check(struct psl_ctx *ctx, const char *in, const char *want, const char *what)
{
    char out[256];
    int rc = psl_org_domain(ctx, in, out, sizeof(out));

    if (want == NULL)
        ok(rc == -1 && out[0] == '\0', "%s: %s -> none (rc %d, out '%s')", what, in ? in : "(null)",
           rc, out);
    else
        ok(rc == 0 && strcmp(out, want) == 0, "%s: %s -> %s (rc %d, out '%s')", what, in, want, rc,
           out);
}

/* The PSL project's tests.txt: "input expected" per line, "null" for none,
 * "//" comments (commented-out cases are the inactive ones). */
static int run_tests_txt(struct psl_ctx *ctx)
{
    char path[4200], line[1024];
    FILE *fp;
    int n = 0;

    path_of(path, sizeof(path), "tests.txt");
    if ((fp = fopen(path, "r")) == NULL) {
        ok(0, "open %s", path);
        return 0;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char in[512], want[512];

        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || strncmp(line, "//", 2) == 0)
            continue;
        if (sscanf(line, "%511s %511s", in, want) != 2) {
            ok(0, "tests.txt: unreadable line '%s'", line);
            continue;
        }
        check(ctx, strcmp(in, "null") == 0 ? NULL : in, strcmp(want, "null") == 0 ? NULL : want,
              "tests.txt");
        n++;
    }
    fclose(fp);
    return n;
}

int main(void)
{
    const char *env = getenv("PD_SHARED");
    char path[4200], err[512], out[256];
    struct psl_ctx *ctx;
    int n;

    snprintf(shared, sizeof(shared), "%s", env ? env : "../shared");
    path_of(path, sizeof(path), "public_suffix_list.dat");
    err[0] = '\0';
    ctx = psl_open(path, err, sizeof(err));
    if (!ok(ctx != NULL, "psl_open pinned list (%s)", err))
        return tap_done();

    n = run_tests_txt(ctx);
    is_int(n, 78, "all 78 active cases of tests.txt were run");

    /* Ours. */
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"example.com.", "example.com"}, /* FQDN form */
        {"WWW.Example.COM.", "example.com"},
        {"com.", NULL},
        {"example.com..", NULL}, /* two trailing dots: empty label */
        {"a..example.com", NULL},
        {".", NULL},
        {"", NULL},
        {"www.食狮.公司.CN", "食狮.公司.cn"}, /* ASCII labels of a U-label name */
        {"WWW.XN--85X722F.XN--55QX5D.CN", "xn--85x722f.xn--55qx5d.cn"},
        {"www.ÉCOLE.fr", "école.fr"},   /* non-ASCII uppercase */
        {"\xff\xfe.example.com", NULL}, /* not UTF-8 */
        {"\xe9\x63ole.fr", NULL},       /* Latin-1 é */
        {"mail.sub.example.co.uk", "example.co.uk"},
        {"co.uk", NULL},
        {"x.blogspot.com", "x.blogspot.com"}, /* private section is used */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check(ctx, cases[i].in, cases[i].want, "own");

    /* 254 octets: too long. 253 (with an org domain) is fine. */
    {
        char name[300];
        memset(name, 'a', sizeof(name));
        /* "aaa...a.example.com": total 253 */
        memcpy(name + 253 - 12, ".example.com", 12);
        name[253] = '\0';
        check(ctx, name, "example.com", "253 octets");
        name[253] = '.';
        name[254] = '\0';
        check(ctx, name, "example.com", "253 octets + trailing dot");
        memset(name, 'a', sizeof(name));
        memcpy(name + 254 - 12, ".example.com", 12);
        name[254] = '\0';
        check(ctx, name, NULL, "254 octets");
    }
    ok(psl_org_domain(ctx, "www.example.com", out, 12) == 0 && strcmp(out, "example.com") == 0,
       "out of exactly strlen+1 bytes is enough");
    ok(psl_org_domain(ctx, "www.example.com", out, 11) == -1 && out[0] == '\0',
       "out too small -> -1 and empty");
    ok(psl_org_domain(NULL, "example.com", out, sizeof(out)) == -1, "NULL ctx -> -1");
    psl_close(&ctx);
    ok(ctx == NULL, "psl_close NULLs the pointer");
    psl_close(&ctx);

    /* Loading errors. */
    ok(psl_open("/nonexistent/psl.dat", err, sizeof(err)) == NULL &&
           strstr(err, "No such file") != NULL,
       "missing file -> NULL with reason (%s)", err);
    ok(psl_open("/dev/null", err, sizeof(err)) == NULL && err[0] != '\0',
       "empty file -> NULL with reason (%s)", err);
    {
        char tmp[] = "/tmp/test_psl_XXXXXX";
        int fd = mkstemp(tmp);
        if (fd >= 0) {
            const char *txt = "// only comments\n// nothing else\n";
            ok(write(fd, txt, strlen(txt)) == (ssize_t)strlen(txt), "write temp list");
            close(fd);
            ok(psl_open(tmp, err, sizeof(err)) == NULL && strstr(err, "no rules") != NULL,
               "list without rules -> NULL (%s)", err);
            unlink(tmp);
        }
    }

    /* The default (Debian publicsuffix) file and its DAFSA twin, when the
     * package is installed: the same answers as the text form. */
    if (access(PSL_DEFAULT_FILE, R_OK) == 0) {
        ctx = psl_open(NULL, err, sizeof(err));
        ok(ctx != NULL, "psl_open(NULL) loads %s (%s)", PSL_DEFAULT_FILE, err);
        check(ctx, "a.b.example.co.uk", "example.co.uk", "default list");
        psl_close(&ctx);
    } else {
        diag("skip: %s not installed", PSL_DEFAULT_FILE);
    }
    if (access("/usr/share/publicsuffix/public_suffix_list.dafsa", R_OK) == 0) {
        ctx = psl_open("/usr/share/publicsuffix/public_suffix_list.dafsa", err, sizeof(err));
        ok(ctx != NULL, "psl_open loads the DAFSA form (%s)", err);
        check(ctx, "WWW.Example.COM.", "example.com", "dafsa");
        check(ctx, "example.com..", NULL, "dafsa");
        check(ctx, "www.食狮.公司.cn", "食狮.公司.cn", "dafsa");
        psl_close(&ctx);
    } else {
        diag("skip: DAFSA list not installed");
    }
    return tap_done();
}
