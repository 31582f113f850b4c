/* test_cfg_docs.c - the annotated sample config (etc/policyd-dmarc.conf) and
 * the man page (docs/policyd-dmarc.conf.5) agree with the settings table:
 *
 *  - the sample has `#name = DEFAULT` for every row (`listen` may be active
 *    at its default instead), names no setting the table lacks, loads as it
 *    is, and with every setting uncommented still equals the defaults;
 *  - the man page has, for every row, `.B name` followed by the line
 *    `Type: T; default: D; range: R; reloadable: yes|no.` (range part only
 *    when the row has one), and documents no setting the table lacks.
 *
 * Fails when a setting is added to the table and not to the docs. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "tap.h"

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf;
    long n;

    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    n = (long)fread(buf, 1, (size_t)n, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static const struct cfg_info *row_named(const char *name, size_t len)
{
    for (size_t i = 0; i < cfg_table_size(); i++)
        if (strlen(cfg_table_row(i)->name) == len &&
            strncmp(cfg_table_row(i)->name, name, len) == 0)
            return cfg_table_row(i);
    return NULL;
}

/* Does text contain exactly this line? */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

/* A setting-looking line: optional '#', a lower-case word, optional blanks,
 * '='. Returns the word's length, 0 when not such a line. */
static size_t setting_word(const char *p, const char **word)
{
    size_t n = 0;

    if (*p == '#')
        p++;
    *word = p;
    while (islower((unsigned char)p[n]) || p[n] == '_' || isdigit((unsigned char)p[n]))
        n++;
    if (n == 0)
        return 0;
    for (p += n; *p == ' ' || *p == '\t'; p++)
        ;
    return *p == '=' ? n : 0;
}

static void test_sample(const char *src)
{
    char path[1024], want[512], tmp[] = "/tmp/test_cfg_docs.XXXXXX", err[512];
    char *text, *copy, *line, *save, *printed = NULL;
    struct pd_config *c;
    size_t plen = 0;
    FILE *fp, *out;
    int missing = 0, stale = 0, fd;

    snprintf(path, sizeof(path), "%s/etc/policyd-dmarc.conf", src);
    text = slurp(path);
    if (!ok(text != NULL, "read %s", path))
        return;
    for (size_t i = 0; i < cfg_table_size(); i++) {
        const struct cfg_info *r = cfg_table_row(i);

        snprintf(want, sizeof(want), "#%s =%s%s", r->name, r->dflt[0] ? " " : "", r->dflt);
        if (has_line(text, want))
            continue;
        if (strcmp(r->name, "listen") == 0 && has_line(text, want + 1))
            continue;
        missing++;
        diag("sample config lacks the line \"%s\"", want);
    }
    is_int(missing, 0, "sample config: every setting at its default");

    c = cfg_load(path, err, sizeof(err));
    ok(c != NULL, "sample config loads as shipped: %s", c ? "ok" : err);
    cfg_free(&c);

    /* uncomment every setting line; the result must still be the defaults */
    fd = mkstemp(tmp);
    fp = fdopen(fd, "w");
    copy = strdup(text);
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *word;
        size_t n = setting_word(line, &word);

        if (n == 0)
            continue;
        if (row_named(word, n) == NULL) {
            stale++;
            diag("sample config names an unknown setting: %s", line);
            continue;
        }
        fprintf(fp, "%s\n", line[0] == '#' ? line + 1 : line);
    }
    fclose(fp);
    is_int(stale, 0, "sample config: no unknown settings");
    c = cfg_load(tmp, err, sizeof(err));
    ok(c != NULL, "sample config with every setting uncommented loads: %s", c ? "ok" : err);
    if (c != NULL) {
        out = open_memstream(&printed, &plen);
        cfg_print_nondefault(c, out);
        fclose(out);
        is_str(printed, "", "uncommented sample = defaults");
        free(printed);
    }
    cfg_free(&c);
    unlink(tmp);
    free(copy);
    free(text);
}

/* The man page with the roff escapes we use undone: \- \& \e \fB \fI \fR. */
static char *unroff(char *s)
{
    char *o = s;

    for (char *p = s; *p;) {
        if (p[0] == '\\' && p[1] == '-') {
            *o++ = '-';
            p += 2;
        } else if (p[0] == '\\' && p[1] == 'e') {
            *o++ = '\\';
            p += 2;
        } else if (p[0] == '\\' && p[1] == '&') {
            p += 2;
        } else if (p[0] == '\\' && p[1] == 'f' && p[2]) {
            p += 3;
        } else
            *o++ = *p++;
    }
    *o = '\0';
    return s;
}

static void test_man(const char *src)
{
    char path[1024], want[1024];
    char *text, *p;
    int missing = 0, stale = 0;

    snprintf(path, sizeof(path), "%s/docs/policyd-dmarc.conf.5", src);
    text = slurp(path);
    if (!ok(text != NULL, "read %s", path))
        return;
    unroff(text);
    ok(strncmp(text, ".TH ", 4) == 0 || strstr(text, "\n.TH ") != NULL, "man page has .TH");
    for (size_t i = 0; i < cfg_table_size(); i++) {
        const struct cfg_info *r = cfg_table_row(i);
        char range[300] = "";

        if (r->range[0])
            snprintf(range, sizeof(range), "; range: %s", r->range);
        snprintf(want, sizeof(want), ".B %s\nType: %s; default: %s%s; reloadable: %s.", r->name,
                 r->type, r->dflt[0] ? r->dflt : "(empty)", range, r->reloadable ? "yes" : "no");
        if (strstr(text, want) == NULL) {
            missing++;
            diag("man page lacks:\n%s", want);
        }
    }
    is_int(missing, 0, "man page: every setting with type, default, range, reloadable");
    /* every ".B word" followed by a "Type:" line must be a table row */
    for (p = text; (p = strstr(p, "\n.B ")) != NULL; p++) {
        const char *w = p + 4, *nl = strchr(w, '\n');

        if (nl == NULL || strncmp(nl + 1, "Type: ", 6) != 0)
            continue;
        if (row_named(w, (size_t)(nl - w)) == NULL) {
            stale++;
            diag("man page documents an unknown setting: %.*s", (int)(nl - w), w);
        }
    }
    is_int(stale, 0, "man page: no unknown settings");
    free(text);
}

int main(void)
{
    const char *src = getenv("PD_SRC");

    if (src == NULL || *src == '\0')
        src = ".";
    test_sample(src);
    test_man(src);
    return tap_done();
}
