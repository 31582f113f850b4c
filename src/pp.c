/* pp.c - the Postfix policy delegation protocol codec: an incremental, bounded
 * parser for `name=value` requests and the reply formatter.
 *
 * An error is reported at the same byte, with the same reason, however the
 * input is split into reads: runs of ordinary bytes are copied at once, and
 * every byte that could end a line or break a limit is looked at alone.
 * Bytes of the request in progress are copied into a parser buffer (line ends
 * become NULs, the first '=' of each line too); a complete request is copied
 * into one allocation together with its struct, so freeing it is one free().
 *
 * Limits (see pp.h): a line's name=value bytes, without its CR/LF, may be
 * PP_MAX_LINE long; the whole request, counting every byte received including
 * line ends and the terminating empty line, may be PP_MAX_REQUEST long. */
#include "pp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After a big request the parser gives back its buffer: a connection that sat
 * through one 64 KiB request should not keep 64 KiB for the rest of its life. */
#define PP_KEEP_BUF 4096
#define PP_INIT_BUF 1024
_Static_assert(PP_MAX_ATTRS < 255, "pp_parser.seen holds attribute index + 1 in a byte");
_Static_assert(PP_MAX_REQUEST <= 65536, "pp_parser offsets are 16-bit");

struct pp_parser {
    char *buf;         /* bytes of the request in progress, NUL-separated */
    size_t len, cap;   /* bytes in buf; allocated size */
    size_t line_start; /* offset of the current line in buf */
    size_t total;      /* raw bytes of the request so far (PP_MAX_REQUEST) */
    size_t nattrs;     /* complete attribute lines so far */
    /* Offsets into buf, which never exceeds PP_MAX_REQUEST (64 KiB): 16 bits
     * keep the parser at ~1.4 KB, allocated again for every request. */
    uint16_t name_off[PP_MAX_ATTRS];
    uint32_t name_hash[PP_MAX_ATTRS];
    uint16_t value_off[PP_MAX_ATTRS];
    /* Names seen, by hash (open addressing, index + 1, 0 = free): the
     * duplicate check in O(1) per line. At most half full. */
    uint8_t seen[2 * PP_MAX_ATTRS];
    int failed;   /* PP_ERROR was returned: no more input */
    char err[96]; /* reason for PP_ERROR */
};

struct pp_parser *pp_parser_new(void)
{
    /* Not calloc: the offset and hash arrays are written before they are
     * read (entries below nattrs), so only the header and the hash table of
     * names seen need zeroing. */
    struct pp_parser *p = malloc(sizeof(*p));

    if (p == NULL)
        return NULL;
    p->buf = NULL;
    p->len = p->cap = p->line_start = p->total = p->nattrs = 0;
    p->failed = 0;
    p->err[0] = '\0';
    memset(p->seen, 0, sizeof(p->seen));
    return p;
}

void pp_parser_free(struct pp_parser **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    free((*pp)->buf);
    free(*pp);
    *pp = NULL;
}

const char *pp_parser_error(const struct pp_parser *p)
{
    return p->err[0] ? p->err : "no error";
}

int pp_parser_idle(const struct pp_parser *p)
{
    return p == NULL || p->total == 0;
}

static enum pp_status pp_fail(struct pp_parser *p, const char *reason)
{
    p->failed = 1;
    snprintf(p->err, sizeof(p->err), "%s", reason);
    return PP_ERROR;
}

/* pp_reset: forget the request in progress (after it was handed out). */
static void pp_reset(struct pp_parser *p)
{
    p->len = p->line_start = p->total = p->nattrs = 0;
    memset(p->seen, 0, sizeof(p->seen));
    if (p->cap > PP_KEEP_BUF) {
        free(p->buf);
        p->buf = NULL;
        p->cap = 0;
    }
}

/* pp_name_hash: a hash of an attribute name (the duplicate check and pp_get):
 * FNV-1a's multiply-xor over 8-byte words, then the tail byte by byte, then a
 * final mix. A byte at a time was 7% of a cached decision's instructions. */
uint32_t pp_name_hash(const char *name, size_t n)
{
    uint64_t h = 14695981039346656037u, w;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, name + i, 8);
        h = (h ^ w) * 1099511628211u;
    }
    for (; i < n; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211u;
    /* a multiply only carries differences upwards: mix the high bits down
     * (the table of names seen indexes by the low bits) */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* pp_grow: double the buffer (len never reaches PP_MAX_REQUEST: the request
 * size check in pp_parser_feed counts every byte stored). */
static int pp_grow(struct pp_parser *p)
{
    size_t ncap = p->cap ? p->cap * 2 : PP_INIT_BUF;
    char *nb;

    if (p->cap >= PP_MAX_REQUEST)
        return -1; /* cannot happen (see above); never loop on it */

    if (ncap > PP_MAX_REQUEST)
        ncap = PP_MAX_REQUEST;
    nb = realloc(p->buf, ncap);
    if (nb == NULL)
        return -1;
    p->buf = nb;
    p->cap = ncap;
    return 0;
}

/* pp_put: append one byte; the common case is inline (a request is parsed
 * byte by byte, so a call per byte showed in profiles). */
static inline int pp_put(struct pp_parser *p, char c)
{
    if (p->len == p->cap && pp_grow(p) < 0)
        return -1;
    p->buf[p->len++] = c;
    return 0;
}

/* pp_end_line: the LF of a non-empty line was stored as NUL at buf[len-1]. */
static enum pp_status pp_end_line(struct pp_parser *p, size_t content)
{
    char *line = p->buf + p->line_start;
    char *eq = memchr(line, '=', content);

    if (eq == NULL)
        return pp_fail(p, "line without '='");
    if (eq == line)
        return pp_fail(p, "empty attribute name");
    if (p->nattrs == PP_MAX_ATTRS)
        return pp_fail(p, "too many attributes");
    line[content] = '\0'; /* drops a CR before the LF */
    *eq = '\0';
    uint32_t h = pp_name_hash(line, (size_t)(eq - line));
    /* Duplicates: a hash table of the names so far, names compared only
     * when hashes match (comparing every pair showed in profiles). */
    size_t slot = h % (2 * PP_MAX_ATTRS);
    for (; p->seen[slot]; slot = (slot + 1) % (2 * PP_MAX_ATTRS)) {
        size_t i = p->seen[slot] - 1u;
        if (p->name_hash[i] == h && strcmp(p->buf + p->name_off[i], line) == 0) {
            /* the name is remote data: bounded here, escaped by the logger */
            snprintf(p->err, sizeof(p->err), "duplicate attribute %.64s", line);
            p->failed = 1;
            return PP_ERROR;
        }
    }
    p->seen[slot] = (uint8_t)(p->nattrs + 1);
    p->name_hash[p->nattrs] = h;
    p->name_off[p->nattrs] = (uint16_t)p->line_start;
    p->value_off[p->nattrs] = (uint16_t)(eq + 1 - p->buf);
    p->nattrs++;
    p->line_start = p->len;
    return PP_NEED_MORE;
}

/* pp_finish: copy the request out into one allocation. */
static struct pp_request *pp_finish(struct pp_parser *p)
{
    struct pp_request *req = malloc(sizeof(*req) + p->len);
    if (req == NULL)
        return NULL;
    req->buf = (char *)(req + 1);
    memcpy(req->buf, p->buf, p->len);
    req->nattrs = p->nattrs;
    for (size_t i = 0; i < p->nattrs; i++) {
        req->attrs[i].name = req->buf + p->name_off[i];
        req->attrs[i].value = req->buf + p->value_off[i];
        req->hash[i] = p->name_hash[i];
    }
    pp_reset(p);
    return req;
}

/* pp_safe_run: how many bytes from data[0..n) can be stored without looking
 * at each one: they are not LF or NUL, fit the request and line bounds, and
 * need no buffer growth check beyond the one done for the whole run. The byte
 * after the run (if any) goes through the byte-wise path below, which gives
 * the same error, at the same byte, as before. */
static size_t pp_safe_run(const struct pp_parser *p, const char *data, size_t n)
{
    size_t linelen = p->len - p->line_start;
    const char *stop;

    if (n > PP_MAX_REQUEST - p->total)
        n = PP_MAX_REQUEST - p->total;
    if (linelen >= PP_MAX_LINE)
        return 0;
    if (n > PP_MAX_LINE - linelen)
        n = PP_MAX_LINE - linelen;
    if ((stop = memchr(data, '\n', n)) != NULL)
        n = (size_t)(stop - data);
    if ((stop = memchr(data, '\0', n)) != NULL)
        n = (size_t)(stop - data);
    return n;
}

enum pp_status pp_parser_feed(struct pp_parser *p, const char *data, size_t len, size_t *consumed,
                              struct pp_request **out)
{
    *out = NULL;
    *consumed = 0;
    if (p->failed)
        return PP_ERROR;
    for (size_t i = 0; i < len; i++) {
        /* Fast path: copy the run of ordinary bytes up to the next line end
         * at once (byte-by-byte copying was 10% of the daemon's profile). */
        size_t run = pp_safe_run(p, data + i, len - i);

        if (run > 0) {
            while (p->cap - p->len < run)
                if (pp_grow(p) < 0)
                    return pp_fail(p, "out of memory");
            memcpy(p->buf + p->len, data + i, run);
            p->len += run;
            p->total += run;
            i += run;
            if (i == len)
                break;
        }

        char c = data[i];
        size_t linelen = p->len - p->line_start;

        if (p->total == PP_MAX_REQUEST)
            return pp_fail(p, "request too large");
        p->total++;
        if (c == '\0')
            return pp_fail(p, "NUL byte");
        if (c != '\n') {
            /* One byte past the limit is allowed only as the CR of a CRLF;
             * anything after it makes the line too long for certain. */
            if (linelen > PP_MAX_LINE || (linelen == PP_MAX_LINE && c != '\r'))
                return pp_fail(p, "line too long");
            if (pp_put(p, c) < 0)
                return pp_fail(p, "out of memory");
            continue;
        }
        size_t content = linelen;
        if (content > 0 && p->buf[p->line_start + content - 1] == '\r')
            content--;
        if (content > PP_MAX_LINE) /* not reachable given the check above */
            return pp_fail(p, "line too long");
        if (content == 0) {
            if (p->nattrs == 0)
                return pp_fail(p, "empty request");
            *consumed = i + 1;
            *out = pp_finish(p);
            if (*out == NULL)
                return pp_fail(p, "out of memory");
            return PP_REQUEST;
        }
        if (pp_put(p, '\0') < 0)
            return pp_fail(p, "out of memory");
        if (pp_end_line(p, content) == PP_ERROR)
            return PP_ERROR;
    }
    *consumed = len;
    return PP_NEED_MORE;
}

const char *pp_get(const struct pp_request *req, const char *name)
{
    uint32_t h = pp_name_hash(name, strlen(name));

    for (size_t i = 0; i < req->nattrs; i++)
        if (req->hash[i] == h && strcmp(req->attrs[i].name, name) == 0)
            return req->attrs[i].value;
    return "";
}

int pp_has(const struct pp_request *req, const char *name)
{
    uint32_t h = pp_name_hash(name, strlen(name));

    for (size_t i = 0; i < req->nattrs; i++)
        if (req->hash[i] == h && strcmp(req->attrs[i].name, name) == 0)
            return 1;
    return 0;
}

void pp_request_free(struct pp_request **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    free(*rp); /* buf lives in the same allocation */
    *rp = NULL;
}

int pp_format_reply(char *buf, size_t sz, const char *action)
{
    if (action == NULL || action[0] == '\0')
        return -1;
    size_t n = strnlen(action, PP_MAX_ACTION + 1);
    if (n > PP_MAX_ACTION || strpbrk(action, "\r\n") != NULL)
        return -1;
    if (sz < n + sizeof("action=\n\n")) /* sizeof counts the NUL */
        return -1;
    memcpy(buf, "action=", 7);
    memcpy(buf + 7, action, n);
    memcpy(buf + 7 + n, "\n\n", 3);
    return (int)(n + 9);
}
