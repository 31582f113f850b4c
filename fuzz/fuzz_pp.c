/* fuzz_pp.c - libFuzzer target for the policy protocol codec (src/pp.c).
 *
 * Input: byte 0 seeds the chunking, the rest is the stream a client sends.
 * The stream is parsed twice, in one piece and in pseudo-random chunks (1 to
 * 64 bytes, as TCP may deliver them); both runs must produce the same
 * transcript (requests, attributes, error reason, idle state). Every request
 * is checked (no NUL/LF/'=' in names, no LF in values, pp_get/pp_has agree)
 * and the input is also used as an action for pp_format_reply(), whose output
 * must be exactly "action=<text>\n\n" with no CR or LF inside the text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "pp.h"

/* A growing text transcript of one parse. */
struct tr {
    char *s;
    size_t len, cap;
};

static void tr_add(struct tr *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t nc = t->cap ? t->cap : 256;
        while (nc < t->len + n + 1)
            nc *= 2;
        t->s = realloc(t->s, nc);
        FZ_CHECK(t->s != NULL);
        t->cap = nc;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void check_request(const struct pp_request *req, struct tr *t)
{
    FZ_CHECK(req->nattrs >= 1 && req->nattrs <= PP_MAX_ATTRS);
    tr_add(t, "R\n", 2);
    for (size_t i = 0; i < req->nattrs; i++) {
        const char *n = req->attrs[i].name, *v = req->attrs[i].value;
        size_t nl = strlen(n), vl = strlen(v);
        FZ_CHECK(nl > 0 && nl <= PP_MAX_LINE);
        FZ_CHECK(vl <= PP_MAX_LINE);
        FZ_CHECK(strchr(n, '=') == NULL && strchr(n, '\n') == NULL);
        FZ_CHECK(strchr(v, '\n') == NULL);
        /* duplicates are refused, so pp_get finds this very value */
        FZ_CHECK(pp_has(req, n));
        FZ_CHECK(strcmp(pp_get(req, n), v) == 0);
        tr_add(t, n, nl);
        tr_add(t, "=", 1);
        tr_add(t, v, vl);
        tr_add(t, "\n", 1);
    }
    /* names that no attribute can have: empty, or holding '=' */
    FZ_CHECK(!pp_has(req, "") && !pp_has(req, "a=b"));
    FZ_CHECK(strcmp(pp_get(req, ""), "") == 0 && strcmp(pp_get(req, "a=b"), "") == 0);
}

/* parse: feed data in chunks (chunk_seed 0: all at once) and record what happens. */
static void parse(const uint8_t *data, size_t len, unsigned chunk_seed, struct tr *t)
{
    struct pp_parser *p = pp_parser_new();
    size_t off = 0;
    unsigned x = chunk_seed * 2654435761u + 1;
    int failed = 0;

    FZ_CHECK(p != NULL);
    while (off < len && !failed) {
        size_t chunk = len - off;
        if (chunk_seed != 0) {
            x = x * 1103515245u + 12345u;
            size_t c = 1 + (x >> 16) % 64;
            if (c < chunk)
                chunk = c;
        }
        /* feed one chunk until it is used up (several requests may be in it) */
        const char *d = (const char *)data + off;
        size_t left = chunk;
        while (left > 0) {
            size_t consumed = (size_t)-1;
            struct pp_request *req = NULL;
            enum pp_status st = pp_parser_feed(p, d, left, &consumed, &req);
            if (st == PP_ERROR) {
                const char *why = pp_parser_error(p);
                FZ_CHECK(why != NULL && why[0] != '\0');
                tr_add(t, "E ", 2);
                tr_add(t, why, strlen(why));
                failed = 1;
                break;
            }
            FZ_CHECK(consumed <= left);
            if (st == PP_NEED_MORE) {
                FZ_CHECK(consumed == left);
                FZ_CHECK(req == NULL);
                break;
            }
            FZ_CHECK(st == PP_REQUEST && req != NULL && consumed >= 1);
            check_request(req, t);
            pp_request_free(&req);
            FZ_CHECK(req == NULL);
            d += consumed;
            left -= consumed;
        }
        off += chunk;
    }
    if (!failed)
        tr_add(t, pp_parser_idle(p) ? "I" : "P", 1);
    pp_parser_free(&p);
    FZ_CHECK(p == NULL);
}

static void check_reply(const uint8_t *data, size_t len)
{
    char action[PP_MAX_ACTION + 64], out[PP_MAX_ACTION + 64];
    size_t n = len < sizeof(action) - 1 ? len : sizeof(action) - 1;
    memcpy(action, data, n);
    action[n] = '\0';
    size_t alen = strlen(action);
    /* an exact-fit buffer, a generous one and a too-small one */
    size_t sizes[3] = {alen + 10, sizeof(out), alen + 9};
    for (int k = 0; k < 3; k++) {
        int r = pp_format_reply(out, sizes[k], action);
        int should = alen > 0 && alen <= PP_MAX_ACTION && strpbrk(action, "\r\n") == NULL &&
                     sizes[k] >= alen + 10;
        FZ_CHECK((r >= 0) == should);
        if (r < 0)
            continue;
        FZ_CHECK((size_t)r == alen + 9 && strlen(out) == (size_t)r);
        FZ_CHECK(memcmp(out, "action=", 7) == 0);
        FZ_CHECK(out[r - 2] == '\n' && out[r - 1] == '\n');
        for (int i = 0; i < r - 2; i++)
            FZ_CHECK(out[i] != '\r' && out[i] != '\n');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tr whole = {0}, chunked = {0};
    unsigned seed;

    if (size == 0)
        return 0;
    seed = data[0] | 1u; /* never 0: that means "in one piece" */
    data++;
    size--;
    parse(data, size, 0, &whole);
    parse(data, size, seed, &chunked);
    if (whole.len != chunked.len || memcmp(whole.s, chunked.s, whole.len) != 0) {
        fprintf(stderr, "whole:\n%s\nchunked:\n%s\n", whole.s, chunked.s);
        FZ_CHECK(!"chunking changed the parse");
    }
    free(whole.s);
    free(chunked.s);
    check_reply(data, size);
    return 0;
}
